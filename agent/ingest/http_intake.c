#include "http_intake.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "core/escape.h"
#include "core/evloop.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "errors.h"
#include "http_key.h"
#include "http_watch.h"
#include "json.h"
#include "tls.h"
#include "webhook.h"

/* An Idempotency-Key longer than this is refused (400). */
#define HTTP_IDEM_MAX 256
/* An event reference a decision record keeps whole (longer: hashed). */
#define HTTP_REF_MAX 255
/* Seconds a 503 asks the client to wait before it sends again. */
#define HTTP_RETRY_AFTER "5"
/* A 202's body: a decision takes at most a few hundred bytes. */
#define HTTP_RESPONSE_MAX (4 * 1024 * 1024)
/* An ack's seq: the request's number, then the alert's place in it (the
 * config caps max_alerts at 100000, below 1 << 20). */
#define HTTP_SEQ_ALERT_BITS 20
#define HTTP_BACKLOG        128
/* Approvers' decisions a listener hands the delivery thread at once: the
 * route asks for no API key (the token is checked there), so a client
 * sending forged tokens must not fill the decision queue. */
#define HTTP_APPROVALS_MAX 16

TAILQ_HEAD(http_req_list, http_req);

/* A request whose body validated: its objects are handed to the pipeline
 * in order, then it waits for their acks. */
struct http_req {
    struct http_intake *h;
    struct evhttp_request *req;
    uint64_t seq; /* its number; alert i's decision_ack.seq adds i (HTTP_SEQ_ALERT_BITS) */
    struct webhook_request w; /* its route, query and alerts (slices of its input buffer) */
    size_t next;              /* the next alert to hand over */
    size_t records;           /* alerts that made decisions (acks due) */
    size_t acked;             /* acks come back */
    int lost;                 /* an ack said "not durable" */
    /* The decision records the alerts made, copied alert after alert (the
     * answer is written once every ack came, with each decision's
     * outcome): alert i's is recs[rec_end[i - 1] .. rec_end[i]). */
    char *recs;
    size_t recs_len, recs_cap;
    size_t *rec_end;
    unsigned *duplicates; /* per alert: its decisions that were duplicates */
    int approve;          /* an approval's POST: what it decides */
    int approval_waits;   /* ... counted in h->approvals_waiting */
    int approval;         /* ... and what became of it (enum decision_approval_outcome) */
    struct event *timer;  /* request_timeout_s from the request's arrival */
    char idem[HTTP_IDEM_MAX + 1];
    char ref[HTTP_REF_MAX + 1]; /* the alert being handed over's (http_alert_ref) */
    size_t idem_len;
    char peer[SOCKADDR_TEXT_MAX];
    struct sockaddr_storage peer_addr;
    TAILQ_ENTRY(http_req) link;
};

struct http_intake {
    struct input in; /* first: the worker's handle */
    const struct input_ctx *ctx;
    struct endpoint *ep;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct input_acker *acker;
    struct http_req_list feeding; /* at most one: its objects not all handed over */
    struct http_req_list waiting; /* every object handed over, acks due */
    struct http_watch *watch;     /* every connection, from its accept */
    uint64_t next_seq;
    size_t approvals_waiting; /* approval POSTs the delivery thread has not answered */
    int stopping;
};

static struct log_ratelimit http_rl = LOG_RATELIMIT_INIT(10, 10);

static const char *http_transport(const struct http_intake *h)
{
    return h->ep->tls != NULL ? "https" : "http";
}

/* The statuses the intake answers with, in the order stats.h counts them
 * per route. */
static const struct {
    int code;
    const char *reason;
} http_statuses[] = {
    {200, "OK"},
    {202, "Accepted"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {410, "Gone"},
    {503, "Service Unavailable"},
};

#define HTTP_STATUSES (sizeof(http_statuses) / sizeof(http_statuses[0]))
_Static_assert(STAT_http_logpoint_200 - STAT_http_alerts_200 == HTTP_STATUSES,
               "stats.h counts each route's statuses in http_statuses' order");
_Static_assert(STAT_http_other_200 - STAT_http_alerts_200 == WEBHOOK_ROUTES * HTTP_STATUSES,
               "stats.h counts the routes in enum webhook_route's order, then other");

/* Sends code with body (JSON, may be empty), counted under route
 * (WEBHOOK_ROUTES: none, the path was not one); close_after: the
 * connection ends after it; retry: with Retry-After. A request whose
 * client is gone is freed by evhttp here. */
static void http_send_typed(struct http_intake *h, struct evhttp_request *req, int route, int code,
                            const char *type, const char *body, size_t len, int close_after,
                            int retry)
{
    struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct evbuffer *buf = evbuffer_new();
    size_t i = 0;

    while (i < HTTP_STATUSES - 1 && http_statuses[i].code != code)
        i++; /* the last, 503, for anything else */
    evhttp_add_header(hdr, "Content-Type", type);
    if (retry)
        evhttp_add_header(hdr, "Retry-After", HTTP_RETRY_AFTER);
    if (close_after)
        evhttp_add_header(hdr, "Connection", "close");
    if (buf != NULL && len > 0)
        evbuffer_add(buf, body, len);
    stats_add(h->ctx->stats,
              (enum stats_counter)(STAT_http_alerts_200 + (size_t)route * HTTP_STATUSES + i), 1);
    if (!close_after && evcon != NULL)
        http_watch_answered(h->watch, evhttp_connection_get_bufferevent(evcon));
    evhttp_send_reply(req, http_statuses[i].code, http_statuses[i].reason, buf);
    if (buf != NULL)
        evbuffer_free(buf);
}

static void http_send(struct http_intake *h, struct evhttp_request *req, int route, int code,
                      const char *body, size_t len, int close_after, int retry)
{
    http_send_typed(h, req, route, code, "application/json", body, len, close_after, retry);
}

/* {"error": why}. */
static void http_send_error(struct http_intake *h, struct evhttp_request *req, int route, int code,
                            const char *why, int close_after, int retry)
{
    struct jsonw w;

    jsonw_init(&w, 4096);
    jsonw_object_begin(&w);
    jsonw_key_literal(&w, "error");
    jsonw_cstr(&w, why);
    jsonw_object_end(&w);
    http_send(h, req, route, code, w.err ? "" : w.buf, w.err ? 0 : w.len, close_after, retry);
    jsonw_free(&w);
}

static void http_req_free(struct http_req *r)
{
    if (r == NULL)
        return;
    if (r->approval_waits)
        r->h->approvals_waiting--;
    evloop_event_free(&r->timer);
    free(r->recs);
    free(r->rec_end);
    free(r->duplicates);
    webhook_request_free(&r->w);
    free(r);
}

/* The answer's body: {"decisions": [{"index", "mapping", "rule", "event",
 * "key", "outcome"}, ...]}, outcome "accepted" (durable: spooled, or
 * decided in a dry run) or "duplicate" (the agent already held or sent
 * that alert: nothing new will be sent). Returns the writer's error. */
static int http_req_answer(struct http_req *r, struct jsonw *out)
{
    jsonw_init(out, HTTP_RESPONSE_MAX);
    jsonw_object_begin(out);
    jsonw_key_literal(out, "decisions");
    jsonw_array_begin(out);
    for (size_t i = 0; i < r->w.n_alerts; i++) {
        size_t start = i > 0 ? r->rec_end[i - 1] : 0, pos = 0;
        struct str rec = str_make(r->recs + start, r->rec_end[i] - start);
        struct decision_record d;

        for (unsigned k = 0; rec.len > 0 && decision_next(rec, &pos, &d) == 0; k++) {
            jsonw_object_begin(out);
            jsonw_key_literal(out, "index");
            jsonw_int(out, (long long)i);
            jsonw_member_literal(out, "mapping", d.mapping);
            jsonw_member_literal(out, "rule", d.rule);
            jsonw_member_literal(out, "event", d.event);
            jsonw_member_literal(out, "key", d.key);
            jsonw_key_literal(out, "outcome");
            jsonw_cstr(out, r->duplicates[i] & (1u << k) ? "duplicate" : "accepted");
            jsonw_object_end(out);
        }
    }
    jsonw_array_end(out);
    jsonw_object_end(out);
    return out->err;
}

/* An approver's decision came back from the delivery thread. */
static void http_approval_finish(struct http_req *r)
{
    static const struct {
        int code;
        const char *text;
    } outcomes[] = {
        [DECISION_APPROVAL_NONE] = {503, "{\"error\": \"no answer\"}"},
        [DECISION_APPROVAL_DECIDED] = {200, NULL},
        [DECISION_APPROVAL_GONE] = {410, "{\"error\": \"this approval was decided already or "
                                         "has expired\"}"},
        [DECISION_APPROVAL_UNKNOWN] = {404, "{\"error\": \"no such approval\"}"},
        [DECISION_APPROVAL_UNAVAILABLE] = {503, "{\"error\": \"this approval cannot be decided "
                                                "now (no spool, or its emails are being sent): "
                                                "try again later\"}"},
    };
    int o = r->approval >= 0 && r->approval <= DECISION_APPROVAL_UNAVAILABLE && !r->lost
                ? r->approval
                : DECISION_APPROVAL_NONE;
    const char *text = outcomes[o].text;

    if (o == DECISION_APPROVAL_DECIDED)
        text = r->approve ? "{\"approval\": \"approved\"}" : "{\"approval\": \"denied\"}";
    http_send(r->h, r->req, WEBHOOK_APPROVAL, outcomes[o].code, text, strlen(text), 0,
              outcomes[o].code == 503);
    http_req_free(r);
}

/* The request is answered: 202 with its decisions, 200 when it made none,
 * 503 when one could not be made durable. r is unlinked and freed. */
static void http_req_finish(struct http_req *r)
{
    struct http_intake *h = r->h;
    int code = r->records > 0 ? 202 : 200;
    struct jsonw out;

    if (r->w.route == WEBHOOK_APPROVAL) {
        http_approval_finish(r);
        return;
    }
    if (r->lost) {
        http_send_error(h, r->req, (int)r->w.route, 503,
                        "an alert could not be made durable: send the request again", 0, 1);
    } else if (http_req_answer(r, &out) != 0) {
        jsonw_free(&out);
        http_send(h, r->req, (int)r->w.route, code, "{\"decisions\": null}", 19, 0, 0);
    } else {
        http_send(h, r->req, (int)r->w.route, code, out.buf, out.len, 0, 0);
        jsonw_free(&out);
    }
    http_req_free(r);
}

/* The request was not handed over whole, or its acks did not all come,
 * within request_timeout_s: the spool is full (or slow). What was handed
 * over may still be spooled; the client's retry carries the same
 * idempotency keys. */
static void http_on_req_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct http_req *r = arg;
    struct http_intake *h = r->h;

    (void)fd;
    (void)what;
    /* Still being handed over: paused for a queue the delivery thread
     * blocked (alerts held for spool space). */
    TAILQ_REMOVE(r->next < r->w.n_alerts ? &h->feeding : &h->waiting, r, link);
    log_limited(&http_rl, LOG_LVL_WARNING,
                "%s %s: alerts not spooled within %d s (spool full?): answered 503",
                http_transport(h), r->peer, h->ep->lc->request_timeout_s);
    http_send_error(h, r->req, (int)r->w.route, 503,
                    "the spool did not take the alerts in time: send the request again", 0, 1);
    http_req_free(r);
}

/* Keeps a copy of the record alert i made (the answer reads it once the
 * acks came); rec absent: none. Returns 0, or ERR_NOMEM. */
static int http_req_keep_record(struct http_req *r, size_t i, struct str rec)
{
    if (rec.len > r->recs_cap - r->recs_len) {
        size_t cap = r->recs_cap > 0 ? r->recs_cap : 4096;
        char *p;

        while (cap - r->recs_len < rec.len)
            cap *= 2;
        p = realloc(r->recs, cap);
        if (p == NULL)
            return ERR_NOMEM;
        r->recs = p;
        r->recs_cap = cap;
    }
    if (rec.len > 0)
        memcpy(r->recs + r->recs_len, rec.p, rec.len);
    r->recs_len += rec.len;
    r->rec_end[i] = r->recs_len;
    return 0;
}

/* "sha256:" and the hash of parts[0..n) (each followed by a NUL) into
 * r->ref; absent when out of memory (the pipeline then hashes the alert's
 * text alone). */
static struct str http_digest_ref(struct http_req *r, const struct str *parts, size_t n)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;

    for (size_t k = 0; ok && k < n; k++)
        ok = (parts[k].len == 0 || EVP_DigestUpdate(c, parts[k].p, parts[k].len) == 1) &&
             EVP_DigestUpdate(c, "", 1) == 1;
    ok = ok && EVP_DigestFinal_ex(c, md, NULL) == 1;
    EVP_MD_CTX_free(c);
    if (!ok)
        return STR_ABSENT;
    memcpy(r->ref, "sha256:", 7);
    return str_make(r->ref, 7 + hex_encode(md, sizeof(md), r->ref + 7));
}

/* The event reference of alert i, which its idempotency key hashes:
 *  - the request's Idempotency-Key, else the alert's idempotency_field,
 *    with "#<i>" when the request holds several alerts (a DTEX body's
 *    documents repeat its top-level fields: one value would otherwise
 *    give every (entry, hit) of the same user and rule one key);
 *    hashed when that is longer than a decision record keeps;
 *  - else the hash of the route's source, the query and the alert's
 *    text, so that the same request sent again keeps its keys (the
 *    duplicate window drops it) while a query-only alert of another
 *    source, or with other parameters, does not share them. */
static struct str http_alert_ref(struct http_req *r, size_t i)
{
    const struct webhook_request *w = &r->w;
    struct str base = r->idem_len > 0   ? str_make(r->idem, r->idem_len)
                      : w->refs != NULL ? w->refs[i]
                                        : STR_ABSENT;
    char index[24] = "";
    int n = w->n_alerts > 1 ? snprintf(index, sizeof(index), "#%zu", i) : 0;

    if (base.len > 0 && base.len + (size_t)n <= HTTP_REF_MAX) {
        memcpy(r->ref, base.p, base.len);
        memcpy(r->ref + base.len, index, (size_t)n);
        return str_make(r->ref, base.len + (size_t)n);
    }
    if (base.len > 0)
        return http_digest_ref(r, (struct str[]){base, str_make(index, (size_t)n)}, 2);
    return http_digest_ref(
        r, (struct str[]){str_make(w->source, strlen(w->source)), w->query, w->alerts[i]}, 3);
}

/* Hands r's objects to the pipeline from r->next on. Returns 0 when every
 * object was handed over, ERR_BUSY when the pipeline refused one (the rest
 * waits for http_resume). */
static int http_req_feed(struct http_req *r)
{
    struct http_intake *h = r->h;
    struct pipeline *pipe = h->ctx->pipe;
    struct pipeline_source src = {
        .addr = (const struct sockaddr *)&r->peer_addr,
        .name = r->peer,
        .transport = http_transport(h),
        .http_source = str_make(r->w.source, strlen(r->w.source)),
        .http_query = r->w.query,
    };

    while (r->next < r->w.n_alerts) {
        size_t i = r->next;
        int rc;

        src.event_ref = http_alert_ref(r, i);
        src.ack = (struct decision_ack){(uint64_t)(uintptr_t)h->acker,
                                        r->seq << HTTP_SEQ_ALERT_BITS | i, h->ctx->worker};
        rc = pipeline_handle(pipe, r->w.alerts[i], 0, &src);
        if (rc == ERR_BUSY)
            return ERR_BUSY;
        r->next++;
        if (rc == PIPELINE_ACK_LATER) {
            r->records++;
            h->acker->outstanding++;
            /* Out of memory: the alert is spooled all the same, the
             * client is told to send again (the same keys: a duplicate). */
            r->lost |= http_req_keep_record(r, i, pipeline_last_record(pipe)) != 0;
        } else {
            r->rec_end[i] = r->recs_len;
        }
    }
    return 0;
}

/* Every object of r is handed over: answer now, or wait for the acks (its
 * timer runs since the request came). */
static void http_req_fed(struct http_req *r)
{
    if (r->acked == r->records) {
        http_req_finish(r);
        return;
    }
    TAILQ_INSERT_TAIL(&r->h->waiting, r, link);
}

/* input_acker: the alerts of one alert of a request are durable (or
 * lost), some maybe duplicates. */
static void http_acked(void *input, uint64_t seq, struct decision_answer answer)
{
    struct http_intake *h = input;
    uint64_t number = seq >> HTTP_SEQ_ALERT_BITS;
    size_t i = (size_t)(seq & ((1u << HTTP_SEQ_ALERT_BITS) - 1));
    struct http_req *r, *feeding = TAILQ_FIRST(&h->feeding);
    int waiting = 1;

    TAILQ_FOREACH(r, &h->waiting, link)
    {
        if (r->seq == number)
            break;
    }
    if (r == NULL && feeding != NULL && feeding->seq == number) {
        /* Alerts of the request still being handed over: counted now,
         * answered once the last is (http_req_fed). */
        r = feeding;
        waiting = 0;
    }
    if (r == NULL)
        return; /* answered already (timed out, or the agent stopped) */
    r->acked++;
    r->lost |= !answer.durable;
    r->approval = answer.approval;
    if (i < r->w.n_alerts)
        r->duplicates[i] = answer.duplicates;
    if (waiting && r->acked == r->records) {
        TAILQ_REMOVE(&h->waiting, r, link);
        http_req_finish(r);
    }
}

static int http_resume(struct input *in)
{
    struct http_intake *h = (struct http_intake *)in;
    struct http_req *r;

    while ((r = TAILQ_FIRST(&h->feeding)) != NULL) {
        if (http_req_feed(r) == ERR_BUSY) {
            h->ctx->ops->pause(h->ctx->owner, in);
            return ERR_BUSY;
        }
        TAILQ_REMOVE(&h->feeding, r, link);
        http_req_fed(r);
    }
    return 0;
}

/* The agent stops: no more connections; every request not answered yet
 * gets 503 (the client sends it again to the next agent: what was handed
 * over keeps its idempotency keys). */
static void http_stop(struct input *in)
{
    struct http_intake *h = (struct http_intake *)in;
    struct http_req_list *lists[] = {&h->feeding, &h->waiting};
    struct http_req *r;

    h->stopping = 1;
    if (h->bound != NULL)
        evhttp_del_accept_socket(h->http, h->bound);
    h->bound = NULL;
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        while ((r = TAILQ_FIRST(lists[i])) != NULL) {
            TAILQ_REMOVE(lists[i], r, link);
            http_send_error(h, r->req, (int)r->w.route, 503, "the agent is stopping", 1, 1);
            http_req_free(r);
        }
    }
    h->ctx->ops->done(h->ctx->owner, in);
}

static void http_on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    struct http_intake *h = arg;

    http_watch_closed(h->watch, evhttp_connection_get_bufferevent(evcon));
}

/* The connection of a request that came whole: refused at its first look
 * (the allow list, the caps: http_watch.h), or watched again once the
 * request is answered. Returns 0 when the request may go on, else it was
 * answered and the connection closes. */
static int http_conn_admit(struct http_intake *h, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    int status = http_watch_request(h->watch, evhttp_connection_get_bufferevent(evcon));

    if (status == 403) {
        http_send_error(h, req, WEBHOOK_ROUTES, 403, "forbidden", 1, 0);
        return -1;
    }
    if (status != 0) {
        http_send_error(h, req, WEBHOOK_ROUTES, 503, "too many connections", 1, 1);
        return -1;
    }
    evhttp_connection_set_closecb(evcon, http_on_conn_close, h);
    return 0;
}

/* The client is who it must be: its certificate was verified at the
 * handshake (auth "client_cert"), or it sent the key in the header or as
 * the code parameter (the orchestrator's form). */
static int http_authorized(const struct http_intake *h, struct evhttp_request *req,
                           const struct webhook_request *w)
{
    const char *v;

    if (h->ep->lc->auth == LISTEN_AUTH_CLIENT_CERT)
        return 1;
    v = evhttp_find_header(evhttp_request_get_input_headers(req), h->ep->lc->api_key_header);
    if (v != NULL && http_key_matches(h->ep->key, v, strlen(v)))
        return 1;
    return w->code != NULL && http_key_matches(h->ep->key, w->code, w->code_len);
}

/* The Idempotency-Key header, when sent, into r. Returns -1 when it is too
 * long or holds a control character. */
static int http_idempotency_key(struct http_req *r, struct evhttp_request *req)
{
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), "Idempotency-Key");
    size_t len;

    if (v == NULL)
        return 0;
    len = strlen(v);
    if (len > HTTP_IDEM_MAX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return -1;
    }
    memcpy(r->idem, v, len + 1);
    r->idem_len = len;
    return 0;
}

/* The client's address: evhttp records it for plain connections only; a
 * TLS one is rebuilt from the text evhttp keeps. NULL when unknown. */
static const struct sockaddr *http_peer(struct evhttp_connection *evcon,
                                        struct sockaddr_storage *ss)
{
    const struct sockaddr *sa;
    char *host = NULL;
    ev_uint16_t port = 0;

    if (evcon == NULL)
        return NULL;
    sa = evhttp_connection_get_addr(evcon);
    if (sa != NULL)
        return sa;
    evhttp_connection_get_peer(evcon, &host, &port);
    memset(ss, 0, sizeof(*ss));
    if (host == NULL)
        return NULL;
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
        return (const struct sockaddr *)ss;
    }
    if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
        return (const struct sockaddr *)ss;
    }
    return NULL;
}

/* A request that may go on to its body: r made, or the answer sent. */
static struct http_req *http_req_new(struct http_intake *h, struct evhttp_request *req,
                                     const struct sockaddr *sa, const char *peer)
{
    static const struct {
        enum evhttp_cmd_type cmd;
        enum webhook_method method;
    } methods[] = {{EVHTTP_REQ_GET, WEBHOOK_GET}, {EVHTTP_REQ_POST, WEBHOOK_POST}};
    enum webhook_method method = WEBHOOK_OTHER;
    const char *target = evhttp_request_get_uri(req);
    char why[WEBHOOK_WHY_MAX];
    struct http_req *r = calloc(1, sizeof(*r));
    int status, route;

    if (r == NULL) {
        http_send_error(h, req, WEBHOOK_ROUTES, 503, "out of memory", 0, 1);
        return NULL;
    }
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (evhttp_request_get_command(req) == methods[i].cmd)
            method = methods[i].method;
    }
    status = webhook_target(&r->w, method, target != NULL ? target : "", why, sizeof(why));
    route = status == 404 ? WEBHOOK_ROUTES : (int)r->w.route;
    /* Who asks comes first: a client without the key learns nothing of the
     * routes. Never the key, nor what was sent in its place. */
    if (!(status == 0 && r->w.route == WEBHOOK_APPROVAL) && !http_authorized(h, req, &r->w)) {
        log_limited(&http_rl, LOG_LVL_WARNING, "%s %s: missing or wrong API key: 401",
                    http_transport(h), peer);
        http_send_error(h, req, route, 401, "unauthorized", 0, 0);
    } else if (status == 405) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", r->w.allow);
        http_send_error(h, req, route, 405, why, 0, 0);
    } else if (status == 404) {
        http_send_error(h, req, route, 404, why, 0, 0);
    } else if (status != 0) {
        log_limited(&http_rl, LOG_LVL_WARNING, "%s %s: %d: %s", http_transport(h), peer, status,
                    why);
        http_send_error(h, req, route, status, why, 0, status != 400);
    } else if (h->stopping) {
        http_send_error(h, req, route, 503, "the agent is stopping", 1, 1);
    } else if (!TAILQ_EMPTY(&h->feeding) || pipeline_blocked(h->ctx->pipe)) {
        http_send_error(h, req, route, 503,
                        "the spool is full or the queue is busy: send the request again later", 0,
                        1);
    } else if (http_idempotency_key(r, req) != 0) {
        http_send_error(h, req, route, 400,
                        "Idempotency-Key: longer than 256 bytes or holds a control character", 0,
                        0);
    } else {
        r->h = h;
        r->req = req;
        memcpy(r->peer, peer, sizeof(r->peer));
        memcpy(&r->peer_addr, sa, sockaddr_size(sa));
        return r;
    }
    http_req_free(r);
    return NULL;
}

/* ---- approvals: /v1/approvals/{token} (approval.h in deliver/) ---- */

/* The "decision" of a POST (a form's decision=approve, a JSON body's
 * "decision", else the query's) or of a GET's query: 1 approve, 0 deny, -1
 * none or another word. */
static int http_decision(const struct webhook_request *w, struct str body)
{
    struct str v = STR_ABSENT;
    char shadow[256];

    if (body.len > 0 && body.len < sizeof(shadow) &&
        json_kind_of(body.p, body.len) == JSON_OBJECT) {
        if (json_validate(body.p, body.len, NULL, NULL) != 0 ||
            json_lookup(body.p, body.len, STR_LIT("decision"), shadow, &v, NULL) != 0)
            return -1;
    } else if (body.len > 0) {
        for (size_t at = 0; at < body.len;) {
            size_t end = at;

            while (end < body.len && body.p[end] != '&')
                end++;
            if (end - at > 9 && memcmp(body.p + at, "decision=", 9) == 0)
                v = str_make(body.p + at + 9, end - at - 9);
            at = end + 1;
        }
    } else {
        for (size_t at = 0; at < w->query.len;) {
            const char *name = w->query.p + at, *value = name + strlen(name) + 1;

            if (strcmp(name, "decision") == 0)
                v = str_make(value, strlen(value));
            at = (size_t)(value + strlen(value) + 1 - w->query.p);
        }
    }
    if (str_eq(v, STR_LIT("approve")))
        return 1;
    if (str_eq(v, STR_LIT("deny")))
        return 0;
    return -1;
}

/* The page a link opens. It decides nothing, so a mail scanner that
 * follows links cannot approve: its buttons POST the decision. */
static void http_approval_page(struct http_req *r)
{
    static const char head[] =
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>rtr-agent: approval</title>"
        "</head>\n<body><h1>rtr-agent: an approval waits for you</h1>\n<p>The alert and what "
        "it would run are in the email that brought you here.</p>\n<form method=\"post\">\n";
    static const char approve[] =
        "<button name=\"decision\" value=\"approve\">Approve: run the actions</button>\n";
    static const char deny[] = "<button name=\"decision\" value=\"deny\">Deny</button>\n";
    static const char tail[] = "</form>\n</body></html>\n";
    char page[sizeof(head) + sizeof(approve) + sizeof(deny) + sizeof(tail)];
    int decision = http_decision(&r->w, STR_ABSENT);
    int n = snprintf(page, sizeof(page), "%s%s%s%s", head, decision != 0 ? approve : "",
                     decision != 1 ? deny : "", tail);

    http_send_typed(r->h, r->req, WEBHOOK_APPROVAL, 200, "text/html; charset=utf-8", page,
                    (size_t)n, 0, 0);
    http_req_free(r);
}

/* An approval's request: a GET shows the page; a POST hands the decision
 * to the delivery thread and waits for its answer (http_acked). */
static void http_approval(struct http_req *r, struct str body, const char *peer)
{
    struct http_intake *h = r->h;
    struct decision_approval a;
    int rc;

    if (evhttp_request_get_command(r->req) == EVHTTP_REQ_GET) {
        http_approval_page(r);
        return;
    }
    r->approve = http_decision(&r->w, body);
    if (r->approve < 0) {
        http_send_error(h, r->req, WEBHOOK_APPROVAL, 400,
                        "decision: expected approve or deny (a form field, a JSON member or a "
                        "query parameter)",
                        0, 0);
        http_req_free(r);
        return;
    }
    a = (struct decision_approval){
        .token = str_make(r->w.source, strlen(r->w.source)),
        .approve = r->approve,
        .source = str_make(peer, strlen(peer)),
        .ack = {(uint64_t)(uintptr_t)h->acker, r->seq << HTTP_SEQ_ALERT_BITS, h->ctx->worker},
    };
    rc = !TAILQ_EMPTY(&h->feeding) || h->approvals_waiting >= HTTP_APPROVALS_MAX
             ? ERR_BUSY
             : pipeline_approval(h->ctx->pipe, &a);
    if (rc != PIPELINE_ACK_LATER) {
        http_send_error(h, r->req, WEBHOOK_APPROVAL, 503,
                        rc == ERR_BUSY ? "the queue is busy: send the decision again later"
                                       : "approvals are not available here",
                        0, 1);
        http_req_free(r);
        return;
    }
    r->records = 1;
    r->approval_waits = 1;
    h->approvals_waiting++;
    h->acker->outstanding++;
    event_add(r->timer, &(struct timeval){h->ep->lc->request_timeout_s, 0});
    TAILQ_INSERT_TAIL(&h->waiting, r, link);
}

static void http_on_request(struct evhttp_request *req, void *arg)
{
    struct http_intake *h = arg;
    const struct listen_config *lc = h->ep->lc;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct sockaddr_storage ss;
    const struct sockaddr *sa = http_peer(evcon, &ss);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    struct webhook_limits lim = {
        .max_alerts = (size_t)lc->max_alerts,
        .max_alert_bytes = h->ctx->cfg->limits.max_message_bytes,
        .idempotency_field = lc->idempotency_field != NULL
                                 ? str_make(lc->idempotency_field, strlen(lc->idempotency_field))
                                 : STR_ABSENT,
    };
    char peer[SOCKADDR_TEXT_MAX], why[WEBHOOK_WHY_MAX];
    struct http_req *r;
    struct str body;
    int status;

    if (sa == NULL) { /* evhttp hands over only connected requests: cannot happen */
        http_send_error(h, req, WEBHOOK_ROUTES, 503, "no peer address", 1, 0);
        return;
    }
    sockaddr_format(sa, peer, sizeof(peer));
    if (http_conn_admit(h, req) != 0)
        return;
    r = http_req_new(h, req, sa, peer);
    if (r == NULL)
        return;
    r->seq = h->next_seq++;
    r->timer = evtimer_new(h->ctx->base, http_on_req_timeout, r);
    if (r->timer == NULL) {
        http_send_error(h, req, (int)r->w.route, 503, "out of memory", 0, 1);
        http_req_free(r);
        return;
    }
    body = str_make((const char *)evbuffer_pullup(in, -1), evbuffer_get_length(in));
    if (body.p == NULL && body.len > 0) { /* the body could not be made one piece */
        http_send_error(h, req, (int)r->w.route, 503, "out of memory", 0, 1);
        http_req_free(r);
        return;
    }
    if (r->w.route == WEBHOOK_APPROVAL) {
        http_approval(r, body, peer);
        return;
    }
    status = webhook_body(&r->w, body, &lim, why, sizeof(why));
    if (status != 0) {
        log_limited(&http_rl, LOG_LVL_WARNING, "%s %s: %s: %d: %s", http_transport(h), peer,
                    r->w.source, status, why);
        http_send_error(h, req, (int)r->w.route, status, why, 0, status != 400);
        http_req_free(r);
        return;
    }
    r->rec_end = calloc(r->w.n_alerts > 0 ? r->w.n_alerts : 1, sizeof(*r->rec_end));
    r->duplicates = calloc(r->w.n_alerts > 0 ? r->w.n_alerts : 1, sizeof(*r->duplicates));
    if (r->rec_end == NULL || r->duplicates == NULL) {
        http_send_error(h, req, (int)r->w.route, 503, "out of memory", 0, 1);
        http_req_free(r);
        return;
    }
    input_count_bytes(h->ctx, h->ep, body.len);
    event_add(r->timer, &(struct timeval){lc->request_timeout_s, 0});
    TAILQ_INSERT_TAIL(&h->feeding, r, link);
    http_resume(&h->in);
}

/* evhttp's bevcb: each connection's bufferevent, over TLS with an SSL of
 * the listener's context (libevent's sample/https-server.c), watched from
 * now on (http_watch.h). NULL: evhttp makes a plain one itself, which a TLS
 * client cannot talk to, and which is not watched (out of memory). */
static struct bufferevent *http_on_bev(struct event_base *base, void *arg)
{
    struct http_intake *h = arg;
    struct bufferevent *bev = NULL;

    if (h->ep->tls != NULL) {
        SSL *ssl = tls_server_ssl(h->ep->tls);

        if (ssl != NULL)
            bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                 BEV_OPT_CLOSE_ON_FREE);
        if (bev != NULL)
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        ERR_clear_error();
    } else {
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    if (bev != NULL && http_watch_accepted(h->watch, bev) == 0)
        return bev;
    if (bev != NULL)
        bufferevent_free(bev);
    log_limited(&http_rl, LOG_LVL_ERROR, "listen %s: out of memory at accept", h->ep->name);
    return NULL;
}

int http_intake_new(const struct input_ctx *ctx, struct endpoint *ep, struct http_intake **out)
{
    const struct listen_config *lc = ep->lc;
    struct http_intake *h = calloc(1, sizeof(*h));
    struct evconnlistener *l;
    const struct sockaddr *sa;
    socklen_t salen;
    int rc = ERR_NOMEM;

    *out = NULL;
    if (h == NULL)
        return ERR_NOMEM;
    h->ctx = ctx;
    h->ep = ep;
    h->in.resume = http_resume;
    h->in.stop = http_stop;
    TAILQ_INIT(&h->feeding);
    TAILQ_INIT(&h->waiting);
    rc = ERR_NOMEM;
    h->acker = input_acker_new(http_acked, h);
    h->http = evhttp_new(ctx->base);
    if (h->acker == NULL || h->http == NULL ||
        http_watch_new(ctx->base, ep, ctx->cfg->limits.max_connections,
                       ctx->cfg->limits.max_connections_per_source, ctx->stats, &h->watch) != 0)
        goto out;
    /* GET and POST are routes' methods; HEAD, PUT and DELETE reach
     * http_on_request for a 405; the other methods get evhttp's 501. */
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    evhttp_set_max_body_size(h->http, (ev_ssize_t)lc->max_body_bytes);
    evhttp_set_max_headers_size(h->http, (ev_ssize_t)lc->max_header_bytes);
    evhttp_set_timeout(h->http, lc->request_timeout_s);
    evhttp_set_gencb(h->http, http_on_request, h);
    evhttp_set_bevcb(h->http, http_on_bev, h);
    sa = input_endpoint_addr(ep, &salen);
    l = evconnlistener_new_bind(ctx->base, NULL, NULL,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
                                HTTP_BACKLOG, sa, (int)salen);
    if (l == NULL) {
        log_error("listen %s (%s): cannot bind: %s", lc->address, input_proto_name(lc),
                  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        rc = ERR_IO;
        goto out;
    }
    h->bound = evhttp_bind_listener(h->http, l);
    if (h->bound == NULL) {
        evconnlistener_free(l);
        goto out;
    }
    rc = input_endpoint_bound(ep, evconnlistener_get_fd(l));
    if (rc != 0)
        goto out;
    ctx->ops->add(ctx->owner, &h->in);
    log_info("listen %s (%s): webhooks (POST /v1/alerts/{source}, the orchestrator's /api/...), "
             "authenticated by %s",
             ep->name, input_proto_name(lc),
             lc->auth == LISTEN_AUTH_CLIENT_CERT ? "client certificate" : "API key");
    *out = h; /* transferred */
    h = NULL;
out:
    http_intake_free(h);
    return rc;
}

void http_intake_free(struct http_intake *h)
{
    struct http_req_list *lists[2];
    struct http_req *r;

    if (h == NULL)
        return;
    lists[0] = &h->feeding;
    lists[1] = &h->waiting;
    /* Requests still held (a free without a stop): their clients see the
     * connection close. */
    for (size_t i = 0; i < 2; i++) {
        while ((r = TAILQ_FIRST(lists[i])) != NULL) {
            TAILQ_REMOVE(lists[i], r, link);
            http_req_free(r);
        }
    }
    if (h->http != NULL)
        evhttp_free(h->http); /* runs the close callbacks of open connections */
    http_watch_free(h->watch);
    if (h->acker != NULL)
        h->ctx->ops->acker_release(h->ctx->owner, h->acker);
    free(h);
}
