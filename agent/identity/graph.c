/* The Microsoft Graph resolver (graph.h). Unfinished lookups are found by
 * identifier in a hash table keyed as the identity cache is (kind and
 * folded identifier, SipHash under a random key), so coalescing costs the
 * same with one lookup pending or GRAPH_MAX_PENDING. A lookup waits in one
 * FIFO queue until a token, a free slot and the end of any throttling let
 * it out; the HTTP requests it and the token make each go through a small
 * struct graph_req, which outlives graph_free while its transfer is still
 * on the engine: http_free completes it later, and the request, detached,
 * then only frees itself. The token is fetched when a queued lookup needs
 * one and the cached one is missing or due for renewal. */
#include "graph.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <time.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "directory.h"
#include "errors.h"
#include "graph_assertion.h"
#include "core/log.h"
#include "core/retry.h"
#include "core/secret.h"
#include "core/clock.h"
#include "core/evloop.h"

#define GRAPH_CONNECT_MAX_MS 10000
/* The longest request path: the fallback filter names an identifier of up
 * to IDENTITY_MAX_ID bytes twice, each byte at worst a doubled quote
 * ("%27%27"), plus the fixed text. */
#define GRAPH_PATH_MAX   (2 * 6 * IDENTITY_MAX_ID + 256)
#define GRAPH_DETAIL_MAX 256
#define GRAPH_CODE_MAX   64
/* The backoff after a failed token request: from about a second (a blip,
 * a restarted proxy, is over by then) doubling to a minute (Entra ID down
 * or a wrong secret: one request a minute is nothing to it, and a fixed
 * secret is used within a minute). Full jitter, so agents that failed
 * together do not come back together. */
#define GRAPH_TOKEN_BACKOFF_MIN_S 1
#define GRAPH_TOKEN_BACKOFF_MAX_S 60

_Static_assert((GRAPH_MAX_PENDING & (GRAPH_MAX_PENDING - 1)) == 0, "buckets are masked");

struct graph_req;

/* Someone waiting for a lookup: coalesced lookups have several. */
struct waiter {
    struct waiter *next;
    identity_cb cb;
    void *arg;
};

/* One identifier being looked up, from graph_lookup to its answer; or a
 * containment (contain set, graph_contain): queued, sent and re-sent after
 * a 401 the same way, but never in g->pending (never coalesced) and
 * answered through contain_cb. */
struct lookup {
    TAILQ_ENTRY(lookup) all;   /* g->lookups: unfinished ones (shutdown) */
    TAILQ_ENTRY(lookup) queue; /* g->queue while queued */
    struct lookup *chain;      /* next in its g->pending bucket */
    uint64_t hash;             /* graph_hash of kind and user */
    struct graph *g;
    enum user_kind kind;
    struct str user; /* points at text */
    struct waiter *waiters, **tail;
    struct graph_req *req; /* the request in flight, or NULL */
    struct event *timer;   /* the backoff after a failure; made on first use */
    int queued;
    int fallback; /* upn/email: the $filter on mail and proxyAddresses (after a 404) */
    int advanced; /* ConsistencyLevel: eventual and $count=true */
    int reauthed; /* a 401 made it fetch a new token once already */
    int attempts; /* failed tries (throttled, 5xx, no answer) */
    int contain;
    enum graph_contain op;
    graph_contain_cb contain_cb;
    void *contain_arg;
    char text[];
};

TAILQ_HEAD(lookup_list, lookup);

/* One HTTP request. lk is NULL for the token request; g is NULL once
 * graph_free has run. */
struct graph_req {
    struct graph *g;
    struct lookup *lk;
    uint64_t token_gen; /* the token it was sent with */
};

struct graph {
    const struct graph_config *cfg;
    struct event_base *base;
    struct http *http;
    struct stats *stats;
    char *secret; /* wiped on free; NULL with a certificate credential */
    size_t secret_len;
    struct graph_assertion *assertion; /* the certificate credential, or NULL */
    char *token_url, *graph_base, *scope;
    char *token; /* NULL: none; wiped on free */
    size_t token_len;
    int64_t token_renew_at; /* monotonic ms: from then on a new token is fetched first */
    uint64_t token_gen;     /* bumped with each new token */
    struct graph_req *token_req;
    unsigned token_failures; /* token requests failed in a row */
    int64_t token_retry_at;  /* monotonic ms: no token request before it */
    struct lookup_list lookups, queue;
    struct lookup **pending; /* GRAPH_MAX_PENDING buckets of g->lookups, by hash */
    size_t n_pending;        /* g->lookups' length, containments aside */
    size_t n_contain;        /* containments unfinished */
    struct directory_hash_key hash_key;
    int in_flight, max_in_flight;
    long timeout_ms, connect_timeout_ms;
    int64_t throttled_until; /* monotonic ms */
    struct event *wake;      /* ends the throttling or the token backoff */
    int closed;
    struct log_ratelimit rl_token, rl_throttled, rl_full;
};

static void graph_pump(struct graph *g);

static void graph_count(struct graph *g, enum stats_counter c)
{
    if (g->stats != NULL)
        stats_add(g->stats, c, 1);
}

/* ---- building paths and bodies ---- */

/* Text appended to a caller's buffer; what does not fit is counted, not
 * written, so the end tells whether it all fit. */
struct wbuf {
    char *p;
    size_t cap;
    size_t len;
};

static void wbuf_add(struct wbuf *b, const char *s, size_t n)
{
    if (b->len < b->cap)
        memcpy(b->p + b->len, s, n < b->cap - b->len ? n : b->cap - b->len);
    b->len += n;
}

static void wbuf_cstr(struct wbuf *b, const char *s)
{
    wbuf_add(b, s, strlen(s));
}

enum {
    ENC_KEEP_DOLLAR = 1, /* '$' stays: legal in a path segment, as Graph's docs write it */
    ENC_LITERAL = 2,     /* inside an OData string literal: single quotes doubled */
};

static int graph_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Appends s with every byte but RFC 3986's unreserved ones as %XX. */
static void wbuf_encode(struct wbuf *b, struct str s, int flags)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};

        if (graph_unreserved(c) || (c == '$' && (flags & ENC_KEEP_DOLLAR)))
            wbuf_add(b, s.p + i, 1);
        else
            for (int n = c == '\'' && (flags & ENC_LITERAL) ? 2 : 1; n > 0; n--)
                wbuf_add(b, esc, 3);
    }
}

static void wbuf_encode_cstr(struct wbuf *b, const char *s, int flags)
{
    wbuf_encode(b, str_make(s, strlen(s)), flags);
}

/* NUL-terminates b: its length, or ERR_TOOBIG. */
static int wbuf_end(struct wbuf *b)
{
    if (b->len >= b->cap || b->len > INT_MAX)
        return ERR_TOOBIG;
    b->p[b->len] = '\0';
    return (int)b->len;
}

static int graph_has_query(enum user_kind kind)
{
    return kind == USER_KIND_EMAIL || kind == USER_KIND_UPN || kind == USER_KIND_SAM ||
           kind == USER_KIND_SID || kind == USER_KIND_GUID || kind == USER_KIND_EMPLOYEE_ID;
}

/* No directory value holds a control byte. */
static int graph_no_controls(struct str key)
{
    for (size_t i = 0; i < key.len; i++)
        if ((unsigned char)key.p[i] < ' ' || key.p[i] == 0x7f)
            return 0;
    return 1;
}

/* A UPN or an email: a name, '@' and a domain. The name holds no control
 * byte, blank, '/', '\\' or '?' (Entra ID allows none in a UPN; a mail
 * address holding one is too rare to be worth a path that a proxy
 * decoding %2F or %5C would route elsewhere); '#' stays, as a guest's UPN
 * holds "#EXT#". The domain is letters, digits, '-' and '.' (UTF-8 too: an
 * internationalized one). So "." and "..", which as a path segment would
 * climb out of /users, are no names. */
static int graph_valid_name(struct str key)
{
    size_t at = key.len;

    while (at > 0 && key.p[at - 1] != '@')
        at--;
    if (at <= 1 || at == key.len)
        return 0;
    for (size_t i = 0; i < at - 1; i++) {
        unsigned char c = (unsigned char)key.p[i];

        if (c <= ' ' || c == 0x7f || c == '/' || c == '\\' || c == '?')
            return 0;
    }
    for (size_t i = at; i < key.len; i++) {
        unsigned char c = (unsigned char)key.p[i];

        if (!(c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              str_is_digit((char)c) || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* Whether Graph can be asked about key as kind: a name as above, a GUID
 * and a SID in the shape userid_detect knows them by; a sAMAccountName
 * (AD allows blanks in one) and an employee id go into a $filter literal,
 * where only control bytes have no business. */
static int graph_valid_key(enum user_kind kind, struct str key)
{
    switch (kind) {
    case USER_KIND_UPN:
    case USER_KIND_EMAIL:
        return graph_valid_name(key);
    case USER_KIND_GUID:
    case USER_KIND_SID:
        return userid_detect(key) == kind;
    case USER_KIND_SAM:
    case USER_KIND_EMPLOYEE_ID:
        return graph_no_controls(key);
    case USER_KIND_AUTO:
        break;
    }
    return 0;
}

/* The value Graph is asked about: a sAMAccountName without its DOMAIN\, a
 * GUID without braces. ERR_INVALID when there is no query for kind,
 * nothing to ask (*key empty) or user is no valid identifier of kind:
 * then no request is built for it. */
static int graph_key(enum user_kind kind, struct str user, struct str *key)
{
    *key = kind == USER_KIND_SAM ? userid_sam_account(user) : user;
    if (kind == USER_KIND_GUID && key->len >= 2 && key->p[0] == '{' && key->p[key->len - 1] == '}')
        *key = str_make(key->p + 1, key->len - 2);
    return graph_has_query(kind) && key->p != NULL && key->len > 0 && graph_valid_key(kind, *key)
               ? 0
               : ERR_INVALID;
}

/* Whether the request is GET /users/{id} (else a $filter). */
static int graph_by_id(enum user_kind kind, int fallback)
{
    return !fallback &&
           (kind == USER_KIND_UPN || kind == USER_KIND_EMAIL || kind == USER_KIND_GUID);
}

static const char *graph_attribute(const struct graph_config *cfg)
{
    return cfg->attribute == GRAPH_ATTR_USER_PRINCIPAL_NAME ? "userPrincipalName" : "mail";
}

/* The $filter value of kind, percent-encoded, key quoted as a literal. */
static void graph_filter(struct wbuf *b, enum user_kind kind, struct str key, int fallback)
{
    const char *field = kind == USER_KIND_SAM   ? "onPremisesSamAccountName"
                        : kind == USER_KIND_SID ? "onPremisesSecurityIdentifier"
                                                : "employeeId";

    if (fallback) {
        wbuf_encode_cstr(b, "mail eq '", 0);
        wbuf_encode(b, key, ENC_LITERAL);
        wbuf_encode_cstr(b, "' or proxyAddresses/any(p:p eq 'smtp:", 0);
        wbuf_encode(b, key, ENC_LITERAL);
        wbuf_encode_cstr(b, "')", 0);
    } else {
        wbuf_encode_cstr(b, field, 0);
        wbuf_encode_cstr(b, " eq '", 0);
        wbuf_encode(b, key, ENC_LITERAL);
        wbuf_encode_cstr(b, "'", 0);
    }
}

/* /v1.0/users/{key}, percent-encoded. */
static void graph_user_path(struct wbuf *b, struct str key)
{
    if (key.p[0] == '$') {
        /* A segment starting with '$' would name an OData system resource. */
        wbuf_cstr(b, "/v1.0/users('");
        wbuf_encode(b, key, ENC_KEEP_DOLLAR | ENC_LITERAL);
        wbuf_cstr(b, "')");
    } else {
        wbuf_cstr(b, "/v1.0/users/");
        wbuf_encode(b, key, ENC_KEEP_DOLLAR);
    }
}

int graph_lookup_path(const struct graph_config *cfg, enum user_kind kind, struct str user,
                      int advanced, int fallback, char *buf, size_t cap)
{
    struct wbuf b = {buf, cap, 0};
    struct str key;

    if (graph_key(kind, user, &key) != 0 ||
        (fallback && kind != USER_KIND_UPN && kind != USER_KIND_EMAIL))
        return ERR_INVALID;
    if (graph_by_id(kind, fallback)) {
        graph_user_path(&b, key);
        wbuf_cstr(&b, "?");
    } else {
        wbuf_cstr(&b, "/v1.0/users?$filter=");
        graph_filter(&b, kind, key, fallback);
        wbuf_cstr(&b, "&");
    }
    wbuf_cstr(&b, "$select=id,");
    wbuf_cstr(&b, graph_attribute(cfg));
    if (advanced)
        wbuf_cstr(&b, "&$count=true");
    return wbuf_end(&b);
}

int graph_contain_path(enum graph_contain op, struct str user, char *buf, size_t cap)
{
    struct wbuf b = {buf, cap, 0};

    if (user.len == 0 || user.len > IDENTITY_MAX_ID ||
        (!graph_valid_name(user) && userid_detect(user) != USER_KIND_GUID))
        return ERR_INVALID;
    graph_user_path(&b, user);
    if (op == GRAPH_REVOKE_SESSIONS)
        wbuf_cstr(&b, "/revokeSignInSessions");
    return wbuf_end(&b);
}

/* ---- answers ---- */

/* The body as one JSON value (NULL: malformed, or text after it). Free
 * with json_object_put. */
static struct json_object *graph_parse(const struct http_response *res)
{
    struct json_tokener *tok;
    struct json_object *v;
    size_t end;

    if (res->body == NULL || res->body_len == 0 || res->body_len > INT_MAX ||
        (tok = json_tokener_new()) == NULL)
        return NULL;
    v = json_tokener_parse_ex(tok, res->body, (int)res->body_len);
    end = json_tokener_get_parse_end(tok);
    while (v != NULL && end < res->body_len && res->body[end] != '\0' &&
           strchr(" \t\r\n", res->body[end]) != NULL)
        end++;
    if (v != NULL && end != res->body_len) {
        json_object_put(v);
        v = NULL;
    }
    json_tokener_free(tok);
    return v;
}

/* The code of a Graph error body ({"error":{"code":"Request_UnsupportedQuery"}})
 * or an OAuth one ({"error":"invalid_client"}), cut at the first byte that
 * is not a letter, digit, '_', '-' or '.', in buf ("" when there is none).
 * Error descriptions are never taken: they may quote the request. */
static const char *graph_error_code(const struct http_response *res, char *buf, size_t cap)
{
    struct json_object *root = graph_parse(res), *err, *code = NULL;
    const char *s = "";
    size_t n = 0;

    if (json_object_object_get_ex(root, "error", &err)) {
        if (json_object_is_type(err, json_type_string))
            code = err;
        else
            json_object_object_get_ex(err, "code", &code);
        if (json_object_is_type(code, json_type_string))
            s = json_object_get_string(code);
    }
    for (; n + 1 < cap && graph_unreserved((unsigned char)s[n]) && s[n] != '~'; n++)
        buf[n] = s[n];
    buf[n] = '\0';
    json_object_put(root);
    return buf;
}

/* ---- lookups: finishing, queueing ---- */

/* Answers every waiter of lk and frees it. lk leaves the lists first, so a
 * callback that looks the same user up again starts a new lookup. */
static void graph_finish(struct lookup *lk, enum identity_status status, const char *email,
                         const char *detail)
{
    struct graph *g = lk->g;
    struct waiter *w = lk->waiters, *next;
    struct lookup **link = &g->pending[lk->hash & (GRAPH_MAX_PENDING - 1)];

    while (*link != lk)
        link = &(*link)->chain;
    *link = lk->chain;
    g->n_pending--;
    TAILQ_REMOVE(&g->lookups, lk, all);
    if (lk->queued)
        TAILQ_REMOVE(&g->queue, lk, queue);
    /* Shutting down is not a Graph failure. */
    if (status == IDENTITY_ERROR && !g->closed)
        graph_count(g, STAT_graph_errors);
    for (; w != NULL; w = next) {
        next = w->next;
        w->cb(w->arg, status, email, detail);
        free(w);
    }
    evloop_event_free(&lk->timer);
    free(lk);
}

static void graph_enqueue(struct lookup *lk, int at_head)
{
    lk->queued = 1;
    if (at_head)
        TAILQ_INSERT_HEAD(&lk->g->queue, lk, queue);
    else
        TAILQ_INSERT_TAIL(&lk->g->queue, lk, queue);
}

/* Answers containment lk and frees it (it leaves the lists first). */
static void graph_contain_finish(struct lookup *lk, enum retry_verdict verdict, int status,
                                 int64_t retry_after_s, const char *reason)
{
    struct graph *g = lk->g;
    struct graph_contain_result r = {verdict, status, retry_after_s, reason};

    TAILQ_REMOVE(&g->lookups, lk, all);
    if (lk->queued)
        TAILQ_REMOVE(&g->queue, lk, queue);
    g->n_contain--;
    if (verdict != RETRY_DONE && !g->closed)
        graph_count(g, STAT_graph_errors);
    lk->contain_cb(lk->contain_arg, &r);
    evloop_event_free(&lk->timer);
    free(lk);
}

/* lk failed before any answer (no token, shutting down): a lookup is an
 * error, a containment is tried again later. */
static void graph_fail(struct lookup *lk, const char *detail)
{
    if (lk->contain)
        graph_contain_finish(lk, RETRY_AGAIN, 0, -1, detail);
    else
        graph_finish(lk, IDENTITY_ERROR, NULL, detail);
}

/* Fails every queued lookup: they were all waiting for the token. They
 * leave the queue first, so lookups their callbacks start wait for a new
 * one instead of failing with this one. */
static void graph_fail_queue(struct graph *g, const char *detail)
{
    struct lookup_list failed = TAILQ_HEAD_INITIALIZER(failed);
    struct lookup *lk;

    TAILQ_CONCAT(&failed, &g->queue, queue);
    while ((lk = TAILQ_FIRST(&failed)) != NULL) {
        TAILQ_REMOVE(&failed, lk, queue);
        lk->queued = 0;
        graph_fail(lk, detail);
    }
}

/* ---- requests ---- */

static void graph_req_done(void *arg, const struct http_response *res);

/* Starts a request for lk (NULL: the token). Returns 0 or http_start's
 * error. */
static int graph_send(struct graph *g, struct lookup *lk, const char *method, const char *url,
                      const char *const *headers, const char *body, size_t body_len)
{
    struct http_request req = {
        .method = method,
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = body_len,
        .ca_file = g->cfg->ca_file,
        .connect_timeout_ms = g->connect_timeout_ms,
        .timeout_ms = g->timeout_ms,
        .max_response_body = GRAPH_MAX_BODY,
    };
    struct graph_req *r = malloc(sizeof(*r));
    int rc;

    if (r == NULL)
        return ERR_NOMEM;
    *r = (struct graph_req){g, lk, g->token_gen};
    rc = http_start(g->http, &req, graph_req_done, r);
    if (rc != 0) {
        free(r);
        return rc;
    }
    g->in_flight++;
    if (lk != NULL)
        lk->req = r;
    else
        g->token_req = r;
    graph_count(g, STAT_graph_requests);
    return 0;
}

static void graph_token_drop(struct graph *g)
{
    secret_free(g->token, g->token_len);
    g->token = NULL;
    g->token_len = 0;
}

/* A token request failed (res: its answer, NULL when none was sent): no
 * new one before a backoff, and not before the answer's Retry-After
 * (capped like Graph's throttling). The lookups that waited for it fail
 * now with detail; the delivery layer retries their alerts on its own
 * backoff. Lookups that come during the backoff wait in the queue for the
 * next attempt rather than failing at once: either way that attempt is the
 * only token request of the period, whatever the alert rate, and waiting
 * lets them succeed as soon as the token endpoint is back instead of each
 * alert spending a delivery retry on a failure no request was made for.
 * They wait at most one backoff (GRAPH_RETRY_CAP_S), as throttled lookups
 * already do. */
static void graph_token_failed(struct graph *g, const struct http_response *res, const char *detail)
{
    int64_t delay_ms, after;
    uint64_t bits;

    if (g->token_failures < UINT_MAX)
        g->token_failures++;
    /* Without random bits the jitter still differs from agent to agent. */
    if (getrandom(&bits, sizeof(bits), GRND_NONBLOCK) != (ssize_t)sizeof(bits))
        bits = (uint64_t)now_ms() * 0x9e3779b97f4a7c15ull;
    delay_ms = retry_backoff_ms(g->token_failures, GRAPH_TOKEN_BACKOFF_MIN_S,
                                GRAPH_TOKEN_BACKOFF_MAX_S, bits);
    after = res != NULL ? retry_after_s(res->retry_after, res->date, time(NULL), GRAPH_RETRY_CAP_S)
                        : -1;
    if (after * 1000 > delay_ms)
        delay_ms = after * 1000;
    g->token_retry_at = now_ms() + delay_ms;
    log_limited(&g->rl_token, LOG_LVL_WARNING, "%s (next attempt in %lld ms)", detail,
                (long long)delay_ms);
    graph_fail_queue(g, detail);
}

/* The token request's body. Its credential is the client secret or a
 * client assertion made for this request alone (a fresh jti and exp, as
 * Entra ID may refuse an assertion it has seen). Returns 0 and *body (a
 * credential: wipe it with secret_free(*body, *cap)), or an error. */
static int graph_token_body(struct graph *g, char **body, size_t *cap, size_t *len)
{
    static const char assertion_type[] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    char *credential = g->secret;
    size_t credential_len = g->secret_len;
    struct wbuf b;
    int rc;

    *body = NULL;
    if (g->assertion != NULL) {
        rc = graph_assertion_sign(g->assertion, g->token_url, g->cfg->client_id, &credential,
                                  &credential_len);
        if (rc != 0)
            return rc;
    }
    *cap = 3 * (strlen(g->cfg->client_id) + credential_len + strlen(g->scope) +
                sizeof(assertion_type)) +
           128;
    b = (struct wbuf){malloc(*cap), *cap, 0};
    rc = ERR_NOMEM;
    if (b.p != NULL) {
        wbuf_cstr(&b, "grant_type=client_credentials&client_id=");
        wbuf_encode_cstr(&b, g->cfg->client_id, 0);
        if (g->assertion != NULL) {
            wbuf_cstr(&b, "&client_assertion_type=");
            wbuf_encode_cstr(&b, assertion_type, 0);
            wbuf_cstr(&b, "&client_assertion=");
        } else {
            wbuf_cstr(&b, "&client_secret=");
        }
        wbuf_encode(&b, str_make(credential, credential_len), 0);
        wbuf_cstr(&b, "&scope=");
        wbuf_encode_cstr(&b, g->scope, 0);
        rc = wbuf_end(&b);
    }
    if (g->assertion != NULL)
        secret_free(credential, credential_len);
    if (rc < 0) {
        secret_free(b.p, *cap);
        return rc;
    }
    *body = b.p; /* transferred */
    *len = b.len;
    return 0;
}

static void graph_token_start(struct graph *g)
{
    static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded",
                                          "Accept: application/json", NULL};
    char detail[GRAPH_DETAIL_MAX], *body = NULL;
    size_t cap = 0, len = 0;
    int rc = graph_token_body(g, &body, &cap, &len);

    /* The engine copies the body: it is wiped here at once. */
    if (rc == 0)
        rc = graph_send(g, NULL, "POST", g->token_url, headers, body, len);
    secret_free(body, cap);
    if (rc == 0) {
        graph_count(g, STAT_graph_token_requests);
        return;
    }
    snprintf(detail, sizeof(detail), "graph: token request failed: %s", err_name(rc));
    graph_token_failed(g, NULL, detail);
}

/* How long a token is used: until 90% of its life, at least a minute
 * before it expires; a life of a minute or less, half of it. A life over a
 * day (Entra ID gives an hour or so) counts as a day. */
static int64_t graph_token_use_ms(int64_t expires_in)
{
    int64_t early;

    if (expires_in > 86400)
        expires_in = 86400;
    early = expires_in / 10 > 60 ? expires_in / 10 : 60;
    return expires_in <= 60 ? expires_in * 500 : (expires_in - early) * 1000;
}

/* Takes the token of a token response, or says in detail why not. */
static int graph_token_take(struct graph *g, const struct http_response *res, char *detail,
                            size_t cap)
{
    struct json_object *root = NULL, *tok = NULL, *exp = NULL;
    char code[GRAPH_CODE_MAX];
    const char *s;
    size_t len;
    int rc = -1;

    if (res->status == 0 || res->truncated) {
        snprintf(detail, cap, "graph: token request failed: %s",
                 res->error != NULL ? res->error : "no response");
        return -1;
    }
    if (res->status != 200) {
        graph_error_code(res, code, sizeof(code));
        snprintf(detail, cap, "graph: token request failed: HTTP %d%s%s", res->status,
                 code[0] != '\0' ? " " : "", code);
        return -1;
    }
    root = graph_parse(res);
    if (!json_object_is_type(root, json_type_object)) {
        snprintf(detail, cap, "graph: malformed token response");
        goto out;
    }
    json_object_object_get_ex(root, "access_token", &tok);
    json_object_object_get_ex(root, "expires_in", &exp);
    s = json_object_is_type(tok, json_type_string) ? json_object_get_string(tok) : "";
    len = json_object_is_type(tok, json_type_string) ? (size_t)json_object_get_string_len(tok) : 0;
    if (len == 0) {
        snprintf(detail, cap, "graph: token response without access_token");
        goto out;
    }
    /* It goes into a header line: nothing but visible ASCII. */
    for (size_t i = 0; i < len; i++)
        if (s[i] <= ' ' || s[i] > '~') {
            snprintf(detail, cap, "graph: token response with a malformed access_token");
            goto out;
        }
    if (!json_object_is_type(exp, json_type_int) || json_object_get_int64(exp) <= 0) {
        snprintf(detail, cap, "graph: token response without expires_in");
        goto out;
    }
    graph_token_drop(g);
    g->token = malloc(len + 1);
    if (g->token == NULL) {
        snprintf(detail, cap, "graph: out of memory");
        goto out;
    }
    memcpy(g->token, s, len + 1);
    g->token_len = len;
    g->token_renew_at = now_ms() + graph_token_use_ms(json_object_get_int64(exp));
    g->token_gen++;
    rc = 0;
out:
    json_object_put(root);
    return rc;
}

/* A 200 for lk: a user object (GET /users/{id}) or {"value": [users]}. */
static void graph_answer(struct lookup *lk, const struct http_response *res)
{
    const char *name = graph_attribute(lk->g->cfg), *email = NULL;
    struct json_object *root = graph_parse(res), *user = root, *value, *attr;
    enum identity_status status = IDENTITY_ERROR;
    char detail[GRAPH_DETAIL_MAX];
    size_t n;

    if (!json_object_is_type(root, json_type_object)) {
        snprintf(detail, sizeof(detail), "graph: malformed JSON in the response");
        goto out;
    }
    if (!graph_by_id(lk->kind, lk->fallback)) {
        if (!json_object_object_get_ex(root, "value", &value) ||
            !json_object_is_type(value, json_type_array)) {
            snprintf(detail, sizeof(detail), "graph: response without a value array");
            goto out;
        }
        n = json_object_array_length(value);
        if (n != 1) {
            /* Several users (one sAMAccountName in two synced forests) is
             * no answer either, and asking again will not change it: the
             * alert must not wait for it, nor go to either user. */
            status = IDENTITY_NOT_FOUND;
            if (n == 0)
                snprintf(detail, sizeof(detail), "graph: no user matches");
            else
                snprintf(detail, sizeof(detail), "graph: %zu users match (ambiguous)", n);
            goto out;
        }
        user = json_object_array_get_idx(value, 0);
        if (!json_object_is_type(user, json_type_object)) {
            snprintf(detail, sizeof(detail), "graph: a user in the response is not an object");
            goto out;
        }
    }
    if (!json_object_object_get_ex(user, name, &attr) ||
        json_object_is_type(attr, json_type_null) ||
        (json_object_is_type(attr, json_type_string) && json_object_get_string_len(attr) == 0)) {
        status = IDENTITY_NOT_FOUND;
        snprintf(detail, sizeof(detail), "graph: user has no %s", name);
    } else if (!json_object_is_type(attr, json_type_string)) {
        snprintf(detail, sizeof(detail), "graph: the user's %s is not a string", name);
    } else if (strlen(json_object_get_string(attr)) != (size_t)json_object_get_string_len(attr)) {
        snprintf(detail, sizeof(detail), "graph: the user's %s holds a NUL byte", name);
    } else {
        status = IDENTITY_FOUND;
        email = json_object_get_string(attr);
        snprintf(detail, sizeof(detail), "graph: found");
    }
out:
    graph_finish(lk, status, email, detail);
    json_object_put(root);
}

static void graph_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lookup *lk = arg;

    (void)fd;
    (void)what;
    graph_enqueue(lk, 1);
    graph_pump(lk->g);
}

/* A throttled (429, 503), failed (5xx) or unanswered request for lk: again
 * after Retry-After (every request waits) or a backoff, up to
 * GRAPH_MAX_ATTEMPTS tries. */
static void graph_retry(struct lookup *lk, const struct http_response *res)
{
    struct graph *g = lk->g;
    int throttled = res->status == 429 || res->status == 503;
    int64_t delay_ms = (int64_t)1000 << lk->attempts, after, now = now_ms();
    char detail[GRAPH_DETAIL_MAX];
    struct timeval tv;

    lk->attempts++;
    if (throttled)
        graph_count(g, STAT_graph_throttled);
    if (lk->attempts >= GRAPH_MAX_ATTEMPTS) {
        if (throttled)
            snprintf(detail, sizeof(detail), "graph: throttled (HTTP %d) %d times", res->status,
                     lk->attempts);
        else if (res->status != 0)
            snprintf(detail, sizeof(detail), "graph: HTTP %d (%d attempts)", res->status,
                     lk->attempts);
        else
            snprintf(detail, sizeof(detail), "graph: %s (%d attempts)",
                     res->error != NULL ? res->error : "no response", lk->attempts);
        graph_finish(lk, IDENTITY_ERROR, NULL, detail);
        return;
    }
    if (throttled) {
        after = retry_after_s(res->retry_after, res->date, time(NULL), GRAPH_RETRY_CAP_S);
        if (after > 0)
            delay_ms = after * 1000;
        if (now + delay_ms > g->throttled_until)
            g->throttled_until = now + delay_ms;
        log_limited(&g->rl_throttled, LOG_LVL_INFO,
                    "graph: throttled (HTTP %d), pausing for %lld ms", res->status,
                    (long long)delay_ms);
        graph_enqueue(lk, 1);
        return;
    }
    if (lk->timer == NULL)
        lk->timer = evtimer_new(g->base, graph_retry_cb, lk);
    tv = clock_tv(delay_ms);
    if (lk->timer == NULL || evtimer_add(lk->timer, &tv) != 0)
        graph_finish(lk, IDENTITY_ERROR, NULL, "graph: cannot arm the retry timer");
}

/* A 401 the first time: the token is dropped (unless a newer one came
 * meanwhile) and the request queued again with the next. Whether it was. */
static int graph_reauth(struct lookup *lk, int status, uint64_t gen)
{
    if (status != 401 || lk->reauthed)
        return 0;
    lk->reauthed = 1;
    if (gen == lk->g->token_gen)
        graph_token_drop(lk->g);
    graph_enqueue(lk, 1);
    return 1;
}

/* What a non-200 answer (or none) means for lk. gen: the token it was sent
 * with. */
static void graph_lookup_done(struct lookup *lk, const struct http_response *res, uint64_t gen)
{
    char code[GRAPH_CODE_MAX], detail[GRAPH_DETAIL_MAX];
    int status = res->status;

    if (res->truncated) {
        snprintf(detail, sizeof(detail), "graph: %s",
                 res->error != NULL ? res->error : "response body too long");
        graph_finish(lk, IDENTITY_ERROR, NULL, detail);
        return;
    }
    if (status == 200) {
        graph_answer(lk, res);
        return;
    }
    if (status == 404 && graph_by_id(lk->kind, lk->fallback) && lk->kind != USER_KIND_GUID) {
        /* Not a UPN: maybe a mail address or an alias. */
        lk->fallback = 1;
        lk->advanced = 1;
        graph_enqueue(lk, 1);
        return;
    }
    if (status == 404) {
        graph_finish(lk, IDENTITY_NOT_FOUND, NULL, "graph: no such user");
        return;
    }
    graph_error_code(res, code, sizeof(code));
    if (status == 400 && lk->kind == USER_KIND_SID && !lk->advanced &&
        strcmp(code, "Request_UnsupportedQuery") == 0) {
        lk->advanced = 1;
        graph_enqueue(lk, 1);
        return;
    }
    if (graph_reauth(lk, status, gen))
        return;
    if (status == 0 || status == 429 || status >= 500) {
        graph_retry(lk, res);
        return;
    }
    snprintf(detail, sizeof(detail), "graph: HTTP %d%s%s", status, code[0] != '\0' ? " " : "",
             code);
    /* A 400 is Graph refusing this identifier's query (a character it will
     * not take, a malformed SID): asking again will not change it, so the
     * user is unresolved. Anything else (401 again, 403: the app lacks
     * User.Read.All) is the agent's configuration: an error, retried until
     * it is fixed. */
    graph_finish(lk, status == 400 ? IDENTITY_NOT_FOUND : IDENTITY_ERROR, NULL, detail);
}

/* A containment's answer (or none). gen: the token it was sent with. */
static void graph_contain_done(struct lookup *lk, const struct http_response *res, uint64_t gen)
{
    struct graph *g = lk->g;
    char code[GRAPH_CODE_MAX], detail[GRAPH_DETAIL_MAX];
    int status = res->status;
    int64_t after, now = now_ms();
    enum retry_verdict verdict = retry_classify(status);

    if (graph_reauth(lk, status, gen))
        return;
    if (verdict == RETRY_DONE) {
        graph_contain_finish(lk, RETRY_DONE, status, -1,
                             lk->op == GRAPH_REVOKE_SESSIONS ? "graph: sessions revoked"
                                                             : "graph: account disabled");
        return;
    }
    if (status == 0) {
        snprintf(detail, sizeof(detail), "graph: %s",
                 res->error != NULL ? res->error : "no response");
        graph_contain_finish(lk, RETRY_AGAIN, 0, -1, detail);
        return;
    }
    after = retry_after_s(res->retry_after, res->date, time(NULL), GRAPH_RETRY_CAP_S);
    if (status == 429 || status == 503) {
        /* Graph throttles the app, not this request: every request waits. */
        graph_count(g, STAT_graph_throttled);
        if (after > 0 && now + after * 1000 > g->throttled_until)
            g->throttled_until = now + after * 1000;
    }
    graph_error_code(res, code, sizeof(code));
    if (status == 403)
        snprintf(detail, sizeof(detail),
                 "graph: HTTP 403%s%s: the app lacks the application permission %s (admin "
                 "consent)",
                 code[0] != '\0' ? " " : "", code,
                 lk->op == GRAPH_REVOKE_SESSIONS ? "User.RevokeSessions.All"
                                                 : "User.EnableDisableAccount.All (with "
                                                   "User.Read.All)");
    else if (status == 404)
        snprintf(detail, sizeof(detail),
                 "graph: HTTP 404%s%s: no user with that id or userPrincipalName",
                 code[0] != '\0' ? " " : "", code);
    else
        snprintf(detail, sizeof(detail), "graph: HTTP %d%s%s", status, code[0] != '\0' ? " " : "",
                 code);
    graph_contain_finish(lk, verdict, status, after, detail);
}

static void graph_req_done(void *arg, const struct http_response *res)
{
    struct graph_req *r = arg;
    struct graph *g = r->g;
    struct lookup *lk = r->lk;
    uint64_t gen = r->token_gen;
    char detail[GRAPH_DETAIL_MAX];

    free(r);
    if (g == NULL)
        return; /* graph_free has run */
    g->in_flight--;
    if (lk != NULL && lk->contain) {
        lk->req = NULL;
        graph_contain_done(lk, res, gen);
    } else if (lk != NULL) {
        lk->req = NULL;
        graph_lookup_done(lk, res, gen);
    } else {
        g->token_req = NULL;
        if (graph_token_take(g, res, detail, sizeof(detail)) != 0) {
            graph_token_failed(g, res, detail);
        } else {
            g->token_failures = 0;
            g->token_retry_at = 0;
        }
    }
    graph_pump(g);
}

static void graph_lookup_send(struct lookup *lk)
{
    static const char bearer[] = "Authorization: Bearer ";
    struct graph *g = lk->g;
    size_t base_len = strlen(g->graph_base), auth_len = sizeof(bearer) + g->token_len;
    char *url = malloc(base_len + GRAPH_PATH_MAX), *auth = malloc(auth_len);
    const char *headers[4] = {auth, "Accept: application/json", NULL, NULL};
    char detail[GRAPH_DETAIL_MAX];
    int rc = ERR_NOMEM;

    if (url == NULL || auth == NULL)
        goto out;
    memcpy(url, g->graph_base, base_len);
    rc = graph_lookup_path(g->cfg, lk->kind, lk->user, lk->advanced, lk->fallback, url + base_len,
                           GRAPH_PATH_MAX);
    if (rc < 0)
        goto out;
    snprintf(auth, auth_len, "%s%s", bearer, g->token);
    if (lk->advanced)
        headers[2] = "ConsistencyLevel: eventual";
    rc = graph_send(g, lk, "GET", url, headers, NULL, 0);
out:
    free(url);
    secret_free(auth, auth_len);
    if (rc < 0) {
        snprintf(detail, sizeof(detail), "graph: cannot send a request: %s", err_name(rc));
        graph_finish(lk, IDENTITY_ERROR, NULL, detail);
    }
}

static void graph_contain_send(struct lookup *lk)
{
    static const char bearer[] = "Authorization: Bearer ";
    static const char disable[] = "{\"accountEnabled\":false}";
    struct graph *g = lk->g;
    size_t base_len = strlen(g->graph_base), auth_len = sizeof(bearer) + g->token_len;
    char *url = malloc(base_len + GRAPH_PATH_MAX), *auth = malloc(auth_len);
    const char *headers[] = {auth, "Accept: application/json", "Content-Type: application/json",
                             NULL};
    char detail[GRAPH_DETAIL_MAX];
    int rc = ERR_NOMEM, path = 0;

    if (url == NULL || auth == NULL)
        goto out;
    memcpy(url, g->graph_base, base_len);
    path = graph_contain_path(lk->op, lk->user, url + base_len, GRAPH_PATH_MAX);
    if (path < 0)
        goto out;
    snprintf(auth, auth_len, "%s%s", bearer, g->token);
    if (lk->op == GRAPH_REVOKE_SESSIONS)
        rc = graph_send(g, lk, "POST", url, headers, "{}", 2);
    else
        rc = graph_send(g, lk, "PATCH", url, headers, disable, sizeof(disable) - 1);
out:
    free(url);
    secret_free(auth, auth_len);
    if (path < 0) {
        /* No request can name this user: asking again will not help. */
        graph_contain_finish(lk, RETRY_DEAD, 0, -1,
                             "graph: the user is no userPrincipalName or id Graph could be "
                             "asked about");
    } else if (rc < 0) {
        snprintf(detail, sizeof(detail), "graph: cannot send a request: %s", err_name(rc));
        graph_contain_finish(lk, RETRY_AGAIN, 0, -1, detail);
    }
}

/* Starts what may start: nothing while throttled; the token first when
 * none is usable, once its backoff is over; then queued lookups while
 * slots are free. */
static void graph_pump(struct graph *g)
{
    int64_t now = now_ms();
    struct lookup *lk;
    struct timeval tv;

    if (g->closed || TAILQ_EMPTY(&g->queue))
        return;
    if (now < g->throttled_until) {
        tv = clock_tv(g->throttled_until - now);
        evtimer_add(g->wake, &tv);
        return;
    }
    if ((g->token == NULL || now >= g->token_renew_at) && now >= g->token_retry_at) {
        if (g->token_req == NULL && g->in_flight < g->max_in_flight)
            graph_token_start(g);
        return;
    }
    if (g->token == NULL) {
        tv = clock_tv(g->token_retry_at - now);
        evtimer_add(g->wake, &tv);
        return;
    }
    /* Here the token is usable, or due for renewal but its renewal is
     * backing off: it is used until then (it is renewed well before it
     * expires, and a 401 drops it). */
    while (g->in_flight < g->max_in_flight && (lk = TAILQ_FIRST(&g->queue)) != NULL) {
        TAILQ_REMOVE(&g->queue, lk, queue);
        lk->queued = 0;
        if (lk->contain)
            graph_contain_send(lk);
        else
            graph_lookup_send(lk);
    }
}

static void graph_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    graph_pump(arg);
}

/* ---- the resolver ---- */

/* Length of url without its trailing slashes. */
static size_t graph_url_len(const char *url)
{
    size_t n = strlen(url);

    while (n > 0 && url[n - 1] == '/')
        n--;
    return n;
}

static char *graph_token_url(const struct graph_config *cfg)
{
    size_t alen = graph_url_len(cfg->authority_url),
           cap = alen + 3 * strlen(cfg->tenant_id) + sizeof("//oauth2/v2.0/token");
    struct wbuf b = {malloc(cap), cap, 0};

    if (b.p == NULL)
        return NULL;
    wbuf_add(&b, cfg->authority_url, alen);
    wbuf_cstr(&b, "/");
    wbuf_encode_cstr(&b, cfg->tenant_id, 0);
    wbuf_cstr(&b, "/oauth2/v2.0/token");
    wbuf_end(&b);
    return b.p;
}

/* The client secret, or the certificate and its key: whichever cfg names
 * (config_load lets only one through). Errors are logged naming the key. */
static int graph_credential_load(struct graph *g, char *why, size_t cap)
{
    const struct graph_config *cfg = g->cfg;
    enum graph_assertion_file bad;
    int rc;

    if (cfg->client_certificate_file == NULL) {
        rc = secret_read(cfg->client_secret_file, 1, SECRET_MAX, 1, &g->secret, &g->secret_len, why,
                         cap);
        if (rc != 0)
            log_error("identity.graph.client_secret_file: %s: %s", cfg->client_secret_file, why);
        return rc;
    }
    rc = graph_assertion_load(cfg->client_certificate_file, cfg->client_key_file, &g->assertion,
                              &bad, why, cap);
    if (rc != 0)
        log_error("identity.graph.%s: %s: %s",
                  bad == GRAPH_ASSERTION_CERT ? "client_certificate_file" : "client_key_file",
                  bad == GRAPH_ASSERTION_CERT ? cfg->client_certificate_file : cfg->client_key_file,
                  why);
    return rc;
}

int graph_new(const struct graph_config *cfg, struct event_base *base, struct http *http,
              struct stats *stats, struct graph **out)
{
    struct graph *g = calloc(1, sizeof(*g));
    char why[PATH_MAX + 256]; /* may name the certificate file too */
    int rc = ERR_NOMEM;

    *out = NULL;
    if (g == NULL)
        return ERR_NOMEM;
    g->cfg = cfg;
    g->base = base;
    g->http = http;
    g->stats = stats;
    g->rl_token = (struct log_ratelimit)LOG_RATELIMIT_INIT(10, 5);
    g->rl_throttled = (struct log_ratelimit)LOG_RATELIMIT_INIT(10, 5);
    g->rl_full = (struct log_ratelimit)LOG_RATELIMIT_INIT(10, 5);
    TAILQ_INIT(&g->lookups);
    TAILQ_INIT(&g->queue);
    g->max_in_flight = cfg->max_concurrent > 0 ? cfg->max_concurrent : 1;
    g->timeout_ms = (cfg->timeout_s > 0 ? cfg->timeout_s : 30) * 1000L;
    g->connect_timeout_ms =
        g->timeout_ms < GRAPH_CONNECT_MAX_MS ? g->timeout_ms : GRAPH_CONNECT_MAX_MS;
    g->pending = calloc(GRAPH_MAX_PENDING, sizeof(*g->pending));
    if (g->pending == NULL)
        goto out;
    rc = directory_hash_key_init(&g->hash_key);
    if (rc != 0)
        goto out;
    rc = graph_credential_load(g, why, sizeof(why));
    if (rc != 0)
        goto out;
    rc = ERR_NOMEM;
    g->graph_base = strndup(cfg->graph_url, graph_url_len(cfg->graph_url));
    g->token_url = graph_token_url(cfg);
    if (g->graph_base == NULL || g->token_url == NULL ||
        asprintf(&g->scope, "%s/.default", g->graph_base) == -1) {
        g->scope = NULL;
        goto out;
    }
    g->wake = evtimer_new(base, graph_wake_cb, g);
    if (g->wake == NULL)
        goto out;
    *out = g; /* transferred */
    g = NULL;
    rc = 0;
out:
    graph_free(g);
    return rc;
}

/* The bucket hash of (kind, user), as the identity cache's (idcache.c):
 * identifiers directory_id_equal calls equal hash alike, and the kind
 * moves the same text elsewhere. */
static uint64_t graph_hash(const struct graph *g, enum user_kind kind, struct str user)
{
    return directory_id_hash(&g->hash_key, user) ^ ((uint64_t)kind * 0x9e3779b97f4a7c15ULL);
}

/* The unfinished lookup of the same kind and identifier, compared as the
 * identity cache compares them (case folded, as Entra ID does): what the
 * cache would answer for one it may as well ask once for all. NULL when
 * there is none. */
static struct lookup *graph_find(struct graph *g, enum user_kind kind, struct str user,
                                 uint64_t hash)
{
    struct lookup *lk = g->pending[hash & (GRAPH_MAX_PENDING - 1)];

    while (lk != NULL &&
           (lk->hash != hash || lk->kind != kind || !directory_id_equal(lk->user, user)))
        lk = lk->chain;
    return lk;
}

void graph_lookup(struct graph *g, enum user_kind kind, struct str user, identity_cb cb, void *arg)
{
    struct lookup *lk, **bucket;
    struct waiter *w;
    struct str key;
    char detail[GRAPH_DETAIL_MAX];
    uint64_t hash;

    if (g->closed) {
        cb(arg, IDENTITY_ERROR, NULL, "graph: shutting down");
        return;
    }
    if (!graph_has_query(kind)) {
        snprintf(detail, sizeof(detail), "graph: no query for %s identifiers",
                 userid_kind_name(kind));
        cb(arg, IDENTITY_ERROR, NULL, detail);
        return;
    }
    if (graph_key(kind, user, &key) != 0) {
        /* Graph would refuse it or, as a path, misread it: "." or "..". */
        if (key.len == 0)
            snprintf(detail, sizeof(detail), "graph: empty identifier");
        else
            snprintf(detail, sizeof(detail), "graph: not a valid %s identifier",
                     userid_kind_name(kind));
        cb(arg, IDENTITY_NOT_FOUND, NULL, detail);
        return;
    }
    if (user.len > IDENTITY_MAX_ID) {
        cb(arg, IDENTITY_NOT_FOUND, NULL, "graph: identifier too long");
        return;
    }
    hash = graph_hash(g, kind, user);
    lk = graph_find(g, kind, user, hash);
    if (lk == NULL && g->n_pending >= GRAPH_MAX_PENDING) {
        /* More users than Graph could answer before their alerts' own
         * retry: those alerts wait on the delivery side's backoff (they
         * are spooled) rather than here, unbounded. */
        graph_count(g, STAT_graph_errors);
        log_limited(&g->rl_full, LOG_LVL_WARNING,
                    "graph: %d lookups pending: further users are retried later",
                    GRAPH_MAX_PENDING);
        cb(arg, IDENTITY_ERROR, NULL, "graph: too many lookups pending");
        return;
    }
    w = malloc(sizeof(*w));
    if (w == NULL) {
        cb(arg, IDENTITY_ERROR, NULL, "graph: out of memory");
        return;
    }
    *w = (struct waiter){NULL, cb, arg};
    if (lk != NULL) {
        *lk->tail = w;
        lk->tail = &w->next;
        graph_count(g, STAT_graph_coalesced);
        return;
    }
    lk = calloc(1, sizeof(*lk) + user.len + 1);
    if (lk == NULL) {
        free(w);
        cb(arg, IDENTITY_ERROR, NULL, "graph: out of memory");
        return;
    }
    memcpy(lk->text, user.p, user.len);
    lk->g = g;
    lk->kind = kind;
    lk->user = str_make(lk->text, user.len);
    lk->hash = hash;
    lk->waiters = w;
    lk->tail = &w->next;
    /* onPremisesSamAccountName is only filterable as an advanced query. */
    lk->advanced = kind == USER_KIND_SAM;
    TAILQ_INSERT_TAIL(&g->lookups, lk, all);
    bucket = &g->pending[hash & (GRAPH_MAX_PENDING - 1)];
    lk->chain = *bucket;
    *bucket = lk;
    g->n_pending++;
    graph_enqueue(lk, 0);
    graph_pump(g);
}

int graph_contain(struct graph *g, enum graph_contain op, struct str user, graph_contain_cb cb,
                  void *arg)
{
    struct lookup *lk;

    if (g->closed || g->n_contain >= GRAPH_MAX_PENDING)
        return ERR_BUSY;
    lk = calloc(1, sizeof(*lk) + user.len + 1);
    if (lk == NULL)
        return ERR_NOMEM;
    memcpy(lk->text, user.p, user.len);
    lk->g = g;
    lk->user = str_make(lk->text, user.len);
    lk->contain = 1;
    lk->op = op;
    lk->contain_cb = cb;
    lk->contain_arg = arg;
    TAILQ_INSERT_TAIL(&g->lookups, lk, all);
    g->n_contain++;
    graph_enqueue(lk, 0);
    /* The pump runs from the loop: cb never runs inside graph_contain. */
    event_active(g->wake, EV_TIMEOUT, 0);
    return 0;
}

void graph_free(struct graph *g)
{
    struct lookup *lk;

    if (g == NULL)
        return;
    g->closed = 1;
    if (g->token_req != NULL)
        g->token_req->g = NULL;
    while ((lk = TAILQ_FIRST(&g->lookups)) != NULL) {
        if (lk->req != NULL)
            lk->req->g = NULL;
        graph_fail(lk, "graph: shutting down");
    }
    evloop_event_free(&g->wake);
    graph_token_drop(g);
    secret_free(g->secret, g->secret_len);
    graph_assertion_free(g->assertion);
    free(g->pending);
    free(g->token_url);
    free(g->graph_base);
    free(g->scope);
    free(g);
}
