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
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/sha.h>

#include "allowlist.h"
#include "core/evloop.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/secret.h"
#include "errors.h"
#include "json.h"
#include "tls.h"

#define HTTP_ROUTE "/v1/alerts/"
/* {source}: a short name made of [A-Za-z0-9._-]. */
#define HTTP_SOURCE_MAX 64
/* An Idempotency-Key longer than this is refused (400). */
#define HTTP_IDEM_MAX 256
/* Seconds a 503 asks the client to wait before it sends again. */
#define HTTP_RETRY_AFTER "5"
/* A 202's body: a decision takes at most a few hundred bytes. */
#define HTTP_RESPONSE_MAX (4 * 1024 * 1024)
#define HTTP_BACKLOG      128

TAILQ_HEAD(http_req_list, http_req);
TAILQ_HEAD(http_conn_list, http_conn);

/* A connection that passed the allow list and the cap, counted until its
 * close callback. */
struct http_conn {
    struct http_intake *h;
    struct evhttp_connection *evcon;
    TAILQ_ENTRY(http_conn) link;
};

/* A request whose body validated: its objects are handed to the pipeline
 * in order, then it waits for their acks. */
struct http_req {
    struct http_intake *h;
    struct evhttp_request *req;
    uint64_t seq;        /* its decision_ack.seq */
    struct str *objs;    /* slices into the request's input buffer */
    size_t n, next;      /* objects, and the next to hand over */
    size_t records;      /* objects that made decisions (acks due) */
    size_t acked;        /* acks come back */
    int lost;            /* an ack said "not durable" */
    struct jsonw out;    /* {"decisions": [ ... */
    struct event *timer; /* request_timeout_s from the request's arrival */
    char source[HTTP_SOURCE_MAX + 1];
    char idem[HTTP_IDEM_MAX + 1];
    char ref[HTTP_IDEM_MAX + 24]; /* idem, and "#<index>" for a body of several */
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
    unsigned char key_hash[SHA256_DIGEST_LENGTH];
    struct http_req_list feeding; /* at most one: its objects not all handed over */
    struct http_req_list waiting; /* every object handed over, acks due */
    struct http_conn_list conns;
    size_t n_conns;
    uint64_t next_seq;
    int stopping;
};

static struct log_ratelimit http_rl = LOG_RATELIMIT_INIT(10, 10);

static const char *http_transport(const struct http_intake *h)
{
    return h->ep->tls != NULL ? "https" : "http";
}

static void http_count(struct http_intake *h, int code)
{
    enum stats_counter c;

    switch (code) {
    case 200:
        c = STAT_http_requests_200;
        break;
    case 202:
        c = STAT_http_requests_202;
        break;
    case 400:
        c = STAT_http_requests_400;
        break;
    case 401:
        c = STAT_http_requests_401;
        break;
    case 403:
        c = STAT_http_requests_403;
        break;
    case 404:
        c = STAT_http_requests_404;
        break;
    case 405:
        c = STAT_http_requests_405;
        break;
    default:
        c = STAT_http_requests_503;
        break;
    }
    stats_add(h->ctx->stats, c, 1);
}

/* Sends code with body (JSON, may be empty); close_after: the connection
 * ends after it; retry: with Retry-After. A request whose client is gone is
 * freed by evhttp here. */
static void http_send(struct http_intake *h, struct evhttp_request *req, int code,
                      const char *reason, const char *body, size_t len, int close_after, int retry)
{
    struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
    struct evbuffer *buf = evbuffer_new();

    evhttp_add_header(hdr, "Content-Type", "application/json");
    if (retry)
        evhttp_add_header(hdr, "Retry-After", HTTP_RETRY_AFTER);
    if (close_after)
        evhttp_add_header(hdr, "Connection", "close");
    if (buf != NULL && len > 0)
        evbuffer_add(buf, body, len);
    http_count(h, code);
    evhttp_send_reply(req, code, reason, buf);
    if (buf != NULL)
        evbuffer_free(buf);
}

/* {"error": why}. */
static void http_send_error(struct http_intake *h, struct evhttp_request *req, int code,
                            const char *reason, const char *why, int close_after, int retry)
{
    struct jsonw w;

    jsonw_init(&w, 4096);
    jsonw_object_begin(&w);
    jsonw_key_literal(&w, "error");
    jsonw_cstr(&w, why);
    jsonw_object_end(&w);
    http_send(h, req, code, reason, w.err ? "" : w.buf, w.err ? 0 : w.len, close_after, retry);
    jsonw_free(&w);
}

static void http_req_free(struct http_req *r)
{
    if (r == NULL)
        return;
    evloop_event_free(&r->timer);
    jsonw_free(&r->out);
    free(r->objs);
    free(r);
}

/* The request is answered: 202 with its decisions, 200 when it made none,
 * 503 when one could not be made durable. r is unlinked and freed. */
static void http_req_finish(struct http_req *r)
{
    struct http_intake *h = r->h;

    if (r->lost) {
        http_send_error(h, r->req, 503, "Service Unavailable",
                        "an alert could not be made durable: send the request again", 0, 1);
    } else {
        jsonw_array_end(&r->out);
        jsonw_object_end(&r->out);
        if (r->out.err)
            http_send(h, r->req, r->records > 0 ? 202 : 200, r->records > 0 ? "Accepted" : "OK",
                      "{\"decisions\": null}", 19, 0, 0);
        else
            http_send(h, r->req, r->records > 0 ? 202 : 200, r->records > 0 ? "Accepted" : "OK",
                      r->out.buf, r->out.len, 0, 0);
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
    TAILQ_REMOVE(r->next < r->n ? &h->feeding : &h->waiting, r, link);
    log_limited(&http_rl, LOG_LVL_WARNING,
                "%s %s: alerts not spooled within %d s (spool full?): answered 503",
                http_transport(h), r->peer, h->ep->lc->request_timeout_s);
    http_send_error(h, r->req, 503, "Service Unavailable",
                    "the spool did not take the alerts in time: send the request again", 0, 1);
    http_req_free(r);
}

/* Adds the decisions of object i (the record the pipeline made) to r's
 * answer. */
static void http_req_add_decisions(struct http_req *r, size_t i, struct str rec)
{
    struct decision_record d;
    size_t pos = 0;

    while (decision_next(rec, &pos, &d) == 0) {
        jsonw_object_begin(&r->out);
        jsonw_key_literal(&r->out, "index");
        jsonw_int(&r->out, (long long)i);
        jsonw_member_literal(&r->out, "mapping", d.mapping);
        jsonw_member_literal(&r->out, "rule", d.rule);
        jsonw_member_literal(&r->out, "event", d.event);
        jsonw_member_literal(&r->out, "key", d.key);
        jsonw_object_end(&r->out);
    }
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
        .http_source = str_make(r->source, strlen(r->source)),
    };

    while (r->next < r->n) {
        size_t i = r->next;
        int rc;

        src.event_ref = STR_ABSENT;
        if (r->idem_len > 0 && r->n == 1) {
            src.event_ref = str_make(r->idem, r->idem_len);
        } else if (r->idem_len > 0) {
            int n = snprintf(r->ref, sizeof(r->ref), "%s#%zu", r->idem, i);
            src.event_ref = str_make(r->ref, (size_t)n);
        }
        src.ack = (struct decision_ack){(uint64_t)(uintptr_t)h->acker, r->seq, h->ctx->worker};
        rc = pipeline_handle(pipe, r->objs[i], 0, &src);
        if (rc == ERR_BUSY)
            return ERR_BUSY;
        r->next++;
        if (rc == PIPELINE_ACK_LATER) {
            r->records++;
            h->acker->outstanding++;
            http_req_add_decisions(r, i, pipeline_last_record(pipe));
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

/* input_acker: the alerts of one object of request seq are durable (or lost). */
static void http_acked(void *input, uint64_t seq, int durable)
{
    struct http_intake *h = input;
    struct http_req *r;

    TAILQ_FOREACH(r, &h->waiting, link)
    {
        if (r->seq == seq)
            break;
    }
    if (r == NULL) {
        /* Objects of the request still being handed over: counted now,
         * answered once the last is (http_req_fed). */
        r = TAILQ_FIRST(&h->feeding);
        if (r != NULL && r->seq == seq) {
            r->acked++;
            r->lost |= !durable;
        }
        return; /* else answered already (timed out, or the agent stopped) */
    }
    r->acked++;
    r->lost |= !durable;
    if (r->acked == r->records) {
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
            http_send_error(h, r->req, 503, "Service Unavailable", "the agent is stopping", 1, 1);
            http_req_free(r);
        }
    }
    h->ctx->ops->done(h->ctx->owner, in);
}

static void http_on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    struct http_conn *c = arg;

    (void)evcon;
    TAILQ_REMOVE(&c->h->conns, c, link);
    c->h->n_conns--;
    free(c);
}

/* A connection's first request: the allow list and the connection cap
 * (evhttp 2.1 has no hook at accept). Returns 0 when it may go on, else
 * the request was answered and the connection closes. */
static int http_conn_admit(struct http_intake *h, struct evhttp_request *req,
                           const struct sockaddr *sa, const char *peer)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    const struct listen_config *lc = h->ep->lc;
    int max = h->ctx->cfg->limits.max_connections;
    struct http_conn *c;

    TAILQ_FOREACH(c, &h->conns, link)
    {
        if (c->evcon == evcon)
            return 0;
    }
    if (!allowlist_allows(lc->allow, lc->n_allow, sa)) {
        stats_add(h->ctx->stats, STAT_connections_refused_allowlist, 1);
        log_limited(&http_rl, LOG_LVL_WARNING, "listen %s: refused %s: not in the allow list",
                    h->ep->name, peer);
        http_send_error(h, req, 403, "Forbidden", "forbidden", 1, 0);
        return -1;
    }
    c = calloc(1, sizeof(*c));
    if (h->n_conns >= (size_t)max || c == NULL) {
        free(c);
        stats_add(h->ctx->stats, STAT_connections_refused_limit, 1);
        log_limited(&http_rl, LOG_LVL_WARNING,
                    "listen %s: refused %s: max_connections (%d) reached", h->ep->name, peer, max);
        http_send_error(h, req, 503, "Service Unavailable", "too many connections", 1, 1);
        return -1;
    }
    c->h = h;
    c->evcon = evcon;
    TAILQ_INSERT_TAIL(&h->conns, c, link);
    h->n_conns++;
    stats_add(h->ctx->stats, STAT_connections_accepted, 1);
    evhttp_connection_set_closecb(evcon, http_on_conn_close, c);
    return 0;
}

/* The API key, compared in constant time (over hashes, so that its length
 * is not timed either). */
static int http_authorized(const struct http_intake *h, struct evhttp_request *req)
{
    const char *v =
        evhttp_find_header(evhttp_request_get_input_headers(req), h->ep->lc->api_key_header);
    unsigned char md[SHA256_DIGEST_LENGTH];

    if (v == NULL)
        return 0;
    SHA256((const unsigned char *)v, strlen(v), md);
    return CRYPTO_memcmp(md, h->key_hash, sizeof(md)) == 0;
}

/* {source} of /v1/alerts/{source} into out, or -1 for another path. */
static int http_route(struct evhttp_request *req, char out[HTTP_SOURCE_MAX + 1])
{
    const char *uri = evhttp_request_get_uri(req);
    size_t n = 0;

    if (uri == NULL || strncmp(uri, HTTP_ROUTE, sizeof(HTTP_ROUTE) - 1) != 0)
        return -1;
    uri += sizeof(HTTP_ROUTE) - 1;
    for (; uri[n] != '\0' && uri[n] != '?' && uri[n] != '#'; n++) {
        char c = uri[n];

        if (n == HTTP_SOURCE_MAX || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return -1;
    }
    if (n == 0)
        return -1;
    memcpy(out, uri, n);
    out[n] = '\0';
    return 0;
}

static int http_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static struct str http_trim(const char *p, size_t len)
{
    while (len > 0 && http_blank(p[0])) {
        p++;
        len--;
    }
    while (len > 0 && http_blank(p[len - 1]))
        len--;
    return str_make(p, len);
}

/* The elements of a validated array a, into out[0..) when out is not NULL.
 * Returns how many. */
static size_t http_array_split(struct str a, struct str *out)
{
    size_t n = 0, start = 1, depth = 0;
    int in_string = 0;

    if (http_trim(a.p + 1, a.len - 2).len == 0)
        return 0;
    for (size_t i = 1; i < a.len; i++) {
        char c = a.p[i];

        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
            continue;
        }
        if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if ((c == ',' && depth == 0) || ((c == '}' || c == ']') && depth-- == 0)) {
            if (out != NULL)
                out[n] = http_trim(a.p + start, i - start);
            n++;
            start = i + 1;
        }
    }
    return n;
}

/* Checks one object of the body (the index names it in errors). */
static int http_check_object(const struct http_intake *h, struct str o, const char *what, size_t i,
                             char *why, size_t cap)
{
    size_t max = h->ctx->cfg->limits.max_message_bytes;

    if (json_kind_of(o.p, o.len) != JSON_OBJECT) {
        snprintf(why, cap, "%s %zu is not a JSON object", what, i);
        return -1;
    }
    if (o.len > max) {
        snprintf(why, cap, "%s %zu is longer than limits.max_message_bytes (%zu)", what, i, max);
        return -1;
    }
    return 0;
}

/* Splits body into r's objects: one object, an array of objects, or JSON
 * lines (one object per line). Everything is checked before anything is
 * decided. Returns 0, or -1 with why set. */
static int http_split(struct http_intake *h, struct http_req *r, struct str body, char *why,
                      size_t cap)
{
    size_t max_alerts = (size_t)h->ep->lc->max_alerts, lines = 1;
    struct json_limits lim = JSON_LIMITS_DEFAULT;
    struct json_error err;
    const char *nl;

    if (lim.max_members < max_alerts)
        lim.max_members = max_alerts;
    body = http_trim(body.p, body.len);
    if (body.len == 0) {
        snprintf(why, cap, "empty body: expected a JSON object, an array of objects or JSON lines");
        return -1;
    }
    if (json_validate(body.p, body.len, &lim, &err) == 0) {
        enum json_kind kind = json_kind_of(body.p, body.len);

        if (kind == JSON_OBJECT) {
            r->objs = malloc(sizeof(*r->objs));
            if (r->objs == NULL)
                goto nomem;
            r->objs[0] = body;
            r->n = 1;
            return http_check_object(h, body, "object", 0, why, cap);
        }
        if (kind != JSON_ARRAY) {
            snprintf(why, cap, "expected a JSON object, an array of objects or JSON lines");
            return -1;
        }
        r->n = http_array_split(body, NULL);
        if (r->n > max_alerts) {
            snprintf(why, cap, "%zu objects: more than max_alerts (%zu)", r->n, max_alerts);
            return -1;
        }
        r->objs = calloc(r->n > 0 ? r->n : 1, sizeof(*r->objs));
        if (r->objs == NULL)
            goto nomem;
        http_array_split(body, r->objs);
        for (size_t i = 0; i < r->n; i++) {
            if (http_check_object(h, r->objs[i], "element", i, why, cap) != 0)
                return -1;
        }
        return 0;
    }
    /* Not one document: JSON lines when its first line is an object on
     * its own; otherwise the validator's reason for the whole body. */
    nl = memchr(body.p, '\n', body.len);
    if (nl == NULL || json_validate(body.p, (size_t)(nl - body.p), &lim, NULL) != 0 ||
        json_kind_of(body.p, (size_t)(nl - body.p)) != JSON_OBJECT) {
        snprintf(why, cap, "%s", err.text);
        return -1;
    }
    for (const char *p = body.p; (p = memchr(p, '\n', body.len - (size_t)(p - body.p))) != NULL;
         p++)
        lines++;
    r->objs = calloc(lines, sizeof(*r->objs));
    if (r->objs == NULL)
        goto nomem;
    for (size_t line = 1, off = 0; off < body.len; line++) {
        const char *end = memchr(body.p + off, '\n', body.len - off);
        size_t len = end != NULL ? (size_t)(end - body.p) - off : body.len - off;
        struct str o = http_trim(body.p + off, len);

        off += len + 1;
        if (o.len == 0)
            continue;
        if (r->n == max_alerts) {
            snprintf(why, cap, "more than max_alerts (%zu) objects", max_alerts);
            return -1;
        }
        if (json_validate(o.p, o.len, &lim, &err) != 0) {
            snprintf(why, cap, "line %zu: %s", line, err.text);
            return -1;
        }
        if (http_check_object(h, o, "line", line, why, cap) != 0)
            return -1;
        r->objs[r->n++] = o;
    }
    return 0;
nomem:
    snprintf(why, cap, "out of memory");
    return -1;
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

static void http_on_request(struct evhttp_request *req, void *arg)
{
    struct http_intake *h = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct sockaddr_storage ss;
    const struct sockaddr *sa = http_peer(evcon, &ss);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    char peer[SOCKADDR_TEXT_MAX], why[JSON_ERROR_MAX + 64], source[HTTP_SOURCE_MAX + 1];
    struct http_req *r;
    struct str body;

    if (sa == NULL) { /* evhttp hands over only connected requests: cannot happen */
        http_send_error(h, req, 503, "Service Unavailable", "no peer address", 1, 0);
        return;
    }
    sockaddr_format(sa, peer, sizeof(peer));
    if (http_conn_admit(h, req, sa, peer) != 0)
        return;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        http_send_error(h, req, 405, "Method Not Allowed", "only POST", 0, 0);
        return;
    }
    if (!http_authorized(h, req)) {
        /* Never the key nor what was sent in its place. */
        log_limited(&http_rl, LOG_LVL_WARNING, "%s %s: missing or wrong API key: 401",
                    http_transport(h), peer);
        http_send_error(h, req, 401, "Unauthorized", "unauthorized", 0, 0);
        return;
    }
    if (http_route(req, source) != 0) {
        http_send_error(h, req, 404, "Not Found", "no such route: POST /v1/alerts/{source}", 0, 0);
        return;
    }
    if (h->stopping) {
        http_send_error(h, req, 503, "Service Unavailable", "the agent is stopping", 1, 1);
        return;
    }
    if (!TAILQ_EMPTY(&h->feeding) || pipeline_blocked(h->ctx->pipe)) {
        http_send_error(h, req, 503, "Service Unavailable",
                        "the spool is full or the queue is busy: send the request again later", 0,
                        1);
        return;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        http_send_error(h, req, 503, "Service Unavailable", "out of memory", 0, 1);
        return;
    }
    r->h = h;
    r->req = req;
    r->seq = h->next_seq++;
    memcpy(r->source, source, sizeof(source));
    memcpy(r->peer, peer, sizeof(peer));
    memcpy(&r->peer_addr, sa, sockaddr_size(sa));
    jsonw_init(&r->out, HTTP_RESPONSE_MAX);
    jsonw_object_begin(&r->out);
    jsonw_key_literal(&r->out, "decisions");
    jsonw_array_begin(&r->out);
    r->timer = evtimer_new(h->ctx->base, http_on_req_timeout, r);
    if (r->timer == NULL) {
        http_send_error(h, req, 503, "Service Unavailable", "out of memory", 0, 1);
        http_req_free(r);
        return;
    }
    if (http_idempotency_key(r, req) != 0) {
        http_send_error(h, req, 400, "Bad Request",
                        "Idempotency-Key: longer than 256 bytes or holds a control character", 0,
                        0);
        http_req_free(r);
        return;
    }
    body = str_make((const char *)evbuffer_pullup(in, -1), evbuffer_get_length(in));
    if (body.p == NULL)
        body = str_make("", 0);
    if (http_split(h, r, body, why, sizeof(why)) != 0) {
        log_limited(&http_rl, LOG_LVL_WARNING, "%s %s: /v1/alerts/%s: 400: %s", http_transport(h),
                    peer, source, why);
        http_send_error(h, req, 400, "Bad Request", why, 0, 0);
        http_req_free(r);
        return;
    }
    input_count_bytes(h->ctx, h->ep, body.len);
    event_add(r->timer, &(struct timeval){h->ep->lc->request_timeout_s, 0});
    TAILQ_INSERT_TAIL(&h->feeding, r, link);
    http_resume(&h->in);
}

/* TLS listeners: each connection gets an SSL of the listener's context
 * (libevent's sample/https-server.c). */
static struct bufferevent *http_on_bev(struct event_base *base, void *arg)
{
    struct http_intake *h = arg;
    SSL *ssl = tls_server_ssl(h->ep->tls);
    struct bufferevent *bev;

    if (ssl == NULL) {
        ERR_clear_error();
        log_limited(&http_rl, LOG_LVL_ERROR, "listen %s: out of memory at accept", h->ep->name);
        return NULL;
    }
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev != NULL)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/* The key's SHA-256, kept instead of the key. */
static int http_read_key(struct http_intake *h)
{
    const struct listen_config *lc = h->ep->lc;
    char why[128], *key = NULL;
    size_t len = 0;
    int rc = secret_read(lc->api_key_file, HTTP_INTAKE_KEY_MIN, SECRET_MAX, 1, &key, &len, why,
                         sizeof(why));

    if (rc != 0) {
        log_error("listen %s: api_key_file %s: %s", lc->address, lc->api_key_file, why);
        return rc;
    }
    SHA256((const unsigned char *)key, len, h->key_hash);
    secret_free(key, len);
    return 0;
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
    TAILQ_INIT(&h->conns);
    rc = http_read_key(h);
    if (rc != 0)
        goto out;
    rc = ERR_NOMEM;
    h->acker = input_acker_new(http_acked, h);
    h->http = evhttp_new(ctx->base);
    if (h->acker == NULL || h->http == NULL)
        goto out;
    /* GET, HEAD, PUT and DELETE reach http_on_request for a 405; the
     * other methods get evhttp's 501. */
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    evhttp_set_max_body_size(h->http, (ev_ssize_t)lc->max_body_bytes);
    evhttp_set_max_headers_size(h->http, (ev_ssize_t)lc->max_header_bytes);
    evhttp_set_timeout(h->http, lc->request_timeout_s);
    evhttp_set_gencb(h->http, http_on_request, h);
    if (ep->tls != NULL)
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
    log_info("listen %s (%s): POST %s{source}", ep->name, input_proto_name(lc), HTTP_ROUTE);
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
    struct http_conn *c;

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
    while ((c = TAILQ_FIRST(&h->conns)) != NULL) {
        TAILQ_REMOVE(&h->conns, c, link);
        free(c);
    }
    if (h->acker != NULL)
        h->ctx->ops->acker_release(h->ctx->owner, h->acker);
    free(h);
}
