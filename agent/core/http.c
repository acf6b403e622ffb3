/* The shared HTTPS engine: libcurl multi_socket on libevent, after curl's
 * docs/examples/multi-event.c. Finished transfers are taken off the multi
 * handle right after curl_multi_socket_action returns (never inside one of
 * libcurl's callbacks) and queued; a zero-delay event then runs the
 * callbacks, so a callback never runs inside http_start and may start new
 * transfers. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "clock.h"
#include "errors.h"
#include "http.h"
#include "log.h"
#include "evloop.h"

/* Longest Retry-After or Date value kept: an HTTP date is 29 bytes, so
 * anything longer is not one and is dropped rather than stored. */
#define HTTP_HEADER_VALUE_MAX 64
/* First body allocation; it doubles up to max_response_body + 1. */
#define HTTP_BODY_START 4096
#define HTTP_CA_TTL_S   600

struct http_xfer;

/* A verify store (the system CAs plus one ca_file, or none) built once and
 * shared by every new connection that wants it: loading the system bundle
 * takes tens of milliseconds, which the loop cannot spend per connection.
 * Rebuilt after HTTP_CA_TTL_S so that a renewed bundle or ca_file is taken
 * up without a restart. */
struct http_ca {
    struct http_ca *next;
    char *ca_file;     /* NULL: the system CAs alone */
    X509_STORE *store; /* NULL until a connection needs it */
    int64_t built_ms;  /* now_ms() when built */
};

struct http {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;                     /* curl's single timeout */
    struct event *done_ev;                   /* zero-delay: runs the queued completions */
    struct http_xfer *live;                  /* every transfer whose callback has not run */
    struct http_xfer *done_head, *done_tail; /* finished, callback pending */
    struct http_ca *cas;
    size_t in_flight;
    int freeing;
};

/* One per socket curl asks us to watch (curl_multi_assign keeps it). */
struct http_sock {
    struct http *h;
    struct event *ev;
};

struct http_xfer {
    struct http *h;
    CURL *easy;
    struct curl_slist *headers;
    struct http_ca *ca; /* h's; the store new connections get */
    http_cb cb;
    void *arg;
    struct http_xfer *prev, *next; /* h->live */
    struct http_xfer *done_next;   /* h->done_head */
    int64_t started;               /* now_ms() at http_start */
    CURLcode result;
    const char *fixed_error; /* set instead of result's text: static text or error */
    int truncated;
    int in_multi;
    char *body; /* NUL-terminated when body_cap > 0 */
    size_t body_len, body_cap, body_max;
    char *retry_after, *date;
    char errbuf[CURL_ERROR_SIZE];
    char error[CURL_ERROR_SIZE + 64];
};

static struct log_ratelimit http_rl = LOG_RATELIMIT_INIT(60, 5);

/* Headers carry the API key or a bearer token, a response body may be an
 * access token: wiped before they go back to the heap. (curl's own copies,
 * of the POST body and of the URL, are beyond reach.) */
static void http_xfer_free(struct http_xfer *x)
{
    if (x == NULL)
        return;
    curl_easy_cleanup(x->easy);
    for (struct curl_slist *l = x->headers; l != NULL; l = l->next)
        OPENSSL_cleanse(l->data, strlen(l->data));
    curl_slist_free_all(x->headers);
    if (x->body != NULL)
        OPENSSL_cleanse(x->body, x->body_cap);
    free(x->body);
    free(x->retry_after);
    free(x->date);
    free(x);
}

/* Queues x for its callback from the loop (x has left the multi handle). */
static void http_finish(struct http_xfer *x)
{
    struct http *h = x->h;

    x->done_next = NULL;
    if (h->done_tail != NULL)
        h->done_tail->done_next = x;
    else
        h->done_head = x;
    h->done_tail = x;
    event_active(h->done_ev, 0, 0);
}

/* The error text the callback sees: ours when we know better than curl,
 * else the layer that failed and curl's detail (its error buffer names at
 * most the host) or the CURLcode's text: "DNS: Could not resolve host:
 * graph.example", "TLS: SSL certificate problem: self-signed certificate". */
/* Which step of reaching the server failed, for an operator to know where
 * to look: "DNS", "TCP", "TLS" (curl's text then names the certificate
 * problem), "timeout", else "network". */
static const char *http_error_layer(CURLcode result)
{
    switch (result) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return "DNS";
    case CURLE_COULDNT_CONNECT:
        return "TCP";
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
        return "TLS";
    default:
        return "network";
    }
}

static const char *http_error_text(struct http_xfer *x)
{
    const char *url = NULL, *query, *layer;

    if (x->truncated) {
        snprintf(x->error, sizeof(x->error), "response body over %zu bytes", x->body_max);
        return x->error;
    }
    if (x->fixed_error != NULL)
        return x->fixed_error;
    if (x->result == CURLE_OK)
        return NULL;
    layer = http_error_layer(x->result);
    snprintf(x->error, sizeof(x->error), "%s: %s", layer,
             x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(x->result));
    /* The query string can carry a secret (the orchestrator's code=): should
     * a curl message ever quote it, fall back to the CURLcode's fixed text. */
    curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &url);
    query = url != NULL ? strchr(url, '?') : NULL;
    if (query != NULL && query[1] != '\0' && strstr(x->error, query + 1) != NULL)
        snprintf(x->error, sizeof(x->error), "%s: %s", layer, curl_easy_strerror(x->result));
    return x->error;
}

/* Runs x's callback and frees x. x is off the multi handle. */
static void http_complete(struct http_xfer *x)
{
    struct http *h = x->h;
    struct http_response res = {0};
    long code = 0;

    if (x->prev != NULL)
        x->prev->next = x->next;
    else
        h->live = x->next;
    if (x->next != NULL)
        x->next->prev = x->prev;
    h->in_flight--;

    if (x->fixed_error == NULL)
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    res.status = (int)code;
    res.body = x->body != NULL ? x->body : "";
    res.body_len = x->body_len;
    res.truncated = x->truncated;
    res.retry_after = x->retry_after;
    res.date = x->date;
    res.error = http_error_text(x);
    res.elapsed_ms = (long)(now_ms() - x->started);
    x->cb(x->arg, &res);
    http_xfer_free(x);
}

/* Runs every queued completion; ones queued meanwhile (a callback's own
 * http_start failing) wait for the next activation. */
static void http_on_done(evutil_socket_t fd, short what, void *arg)
{
    struct http *h = arg;
    struct http_xfer *x = h->done_head;

    (void)fd;
    (void)what;
    h->done_head = h->done_tail = NULL;
    while (x != NULL) {
        struct http_xfer *next = x->done_next;

        http_complete(x);
        x = next;
    }
}

/* Takes finished transfers off the multi handle; called after every
 * curl_multi_socket_action, so outside libcurl's callbacks. */
static void http_check_multi(struct http *h)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
        struct http_xfer *x;
        char *priv = NULL;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        x = (struct http_xfer *)priv;
        x->result = msg->data.result;
        curl_multi_remove_handle(h->multi, x->easy);
        x->in_multi = 0;
        http_finish(x);
    }
}

static void http_action(struct http *h, curl_socket_t fd, int flags)
{
    int running;
    CURLMcode rc = curl_multi_socket_action(h->multi, fd, flags, &running);

    if (rc != CURLM_OK)
        log_limited(&http_rl, LOG_LVL_ERROR, "http: curl_multi_socket_action: %s",
                    curl_multi_strerror(rc));
    http_check_multi(h);
}

static void http_on_socket(evutil_socket_t fd, short what, void *arg)
{
    struct http_sock *s = arg;

    http_action(s->h, fd,
                ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
                    ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0));
}

static void http_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http_action(arg, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION: (re)arms or drops the socket's one event. */
static int http_socket_cb(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
    struct http *h = arg;
    struct http_sock *s = sockp;
    short kind = EV_PERSIST;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            event_free(s->ev);
            free(s);
            curl_multi_assign(h->multi, fd, NULL);
        }
        return 0;
    }
    if (what & CURL_POLL_IN)
        kind |= EV_READ;
    if (what & CURL_POLL_OUT)
        kind |= EV_WRITE;
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL)
            goto oom;
        s->h = h;
        s->ev = event_new(h->base, fd, kind, http_on_socket, s);
        if (s->ev == NULL) {
            free(s);
            goto oom;
        }
        curl_multi_assign(h->multi, fd, s);
    } else {
        event_del(s->ev);
        event_assign(s->ev, h->base, fd, kind, http_on_socket, s);
    }
    event_add(s->ev, NULL);
    return 0;
oom:
    log_limited(&http_rl, LOG_LVL_ERROR, "http: out of memory watching a socket");
    return -1;
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer; 0 means "now": a zero timer,
 * which the loop runs on its next turn, so curl is never re-entered from
 * its own callback. (curl's multi-event.c rounds 0 up to 1 ms; that
 * millisecond was a third of the agent's whole dispatch latency.) */
static int http_timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
    struct http *h = arg;
    struct timeval tv;

    (void)multi;
    if (timeout_ms < 0) {
        evtimer_del(h->timer);
        return 0;
    }
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    evtimer_add(h->timer, &tv);
    return 0;
}

/* Grows x's body buffer to hold need bytes plus the NUL. */
static int http_body_reserve(struct http_xfer *x, size_t need)
{
    size_t cap = x->body_cap != 0 ? x->body_cap : HTTP_BODY_START;
    char *p;

    if (need < x->body_cap)
        return 0;
    while (cap <= need)
        cap *= 2;
    if (cap - 1 > x->body_max)
        cap = x->body_max + 1;
    p = realloc(x->body, cap);
    if (p == NULL)
        return ERR_NOMEM;
    x->body = p;
    x->body_cap = cap;
    return 0;
}

/* CURLOPT_WRITEFUNCTION: keeps up to body_max bytes; a short count past
 * the cap makes curl abort the transfer. */
static size_t http_on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct http_xfer *x = arg;
    size_t len = size * nmemb, take = x->body_max - x->body_len;

    if (take > len)
        take = len;
    if (take > 0) {
        if (http_body_reserve(x, x->body_len + take) != 0) {
            x->fixed_error = "out of memory";
            return 0;
        }
        memcpy(x->body + x->body_len, data, take);
        x->body_len += take;
        x->body[x->body_len] = '\0';
    }
    if (take < len)
        x->truncated = 1;
    return take;
}

/* Stores the header line's value (trimmed) in *slot when the line is
 * name's; a value over HTTP_HEADER_VALUE_MAX is dropped rather than
 * stored. Returns 0, or -1 out of memory. */
static int http_keep_header(const char *data, size_t len, const char *name, char **slot)
{
    size_t n = strlen(name);
    const char *v, *end = data + len;

    if (len < n || strncasecmp(data, name, n) != 0)
        return 0;
    for (v = data + n; v < end && (*v == ' ' || *v == '\t'); v++)
        ;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    free(*slot);
    *slot = NULL;
    if (end - v > HTTP_HEADER_VALUE_MAX)
        return 0;
    *slot = strndup(v, (size_t)(end - v));
    return *slot != NULL ? 0 : -1;
}

/* CURLOPT_HEADERFUNCTION: keeps the last Retry-After and Date of the last
 * response (a status line, as after "100 Continue", starts afresh). */
static size_t http_on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct http_xfer *x = arg;
    size_t len = size * nmemb;

    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        free(x->retry_after);
        x->retry_after = NULL;
        free(x->date);
        x->date = NULL;
        return len;
    }
    if (http_keep_header(data, len, "retry-after:", &x->retry_after) != 0 ||
        http_keep_header(data, len, "date:", &x->date) != 0) {
        x->fixed_error = "out of memory";
        return 0;
    }
    return len;
}

/* A new store: the CAs curl would load by default (its built-in bundle
 * and CA folder, else OpenSSL's default paths) plus ca_file, with the
 * verify flags curl sets on its own stores. NULL when something does not
 * load, with *failed naming it. */
static X509_STORE *http_ca_build(CURL *easy, const char *ca_file, const char **failed)
{
    X509_STORE *store = X509_STORE_new();
    char *bundle = NULL, *dir = NULL;

    curl_easy_getinfo(easy, CURLINFO_CAINFO, &bundle);
    curl_easy_getinfo(easy, CURLINFO_CAPATH, &dir);
    *failed = "the verify store";
    if (store == NULL)
        goto fail;
    *failed = "the default CA locations";
    if (bundle == NULL && dir == NULL && X509_STORE_set_default_paths(store) != 1)
        goto fail;
    *failed = bundle;
    if (bundle != NULL && X509_STORE_load_file(store, bundle) != 1)
        goto fail;
    *failed = dir;
    if (dir != NULL && X509_STORE_load_path(store, dir) != 1)
        goto fail;
    *failed = ca_file;
    if (ca_file != NULL && X509_STORE_load_file(store, ca_file) != 1)
        goto fail;
    *failed = "the verify store";
    if (X509_STORE_set_flags(store, X509_V_FLAG_TRUSTED_FIRST | X509_V_FLAG_PARTIAL_CHAIN) != 1)
        goto fail;
    return store;
fail:
    X509_STORE_free(store);
    ERR_clear_error();
    return NULL;
}

/* CURLOPT_SSL_CTX_FUNCTION: gives a new connection the transfer's shared
 * store in place of the one curl made. curl fills the store it finds after
 * this call (7.88 does) or before it: from CAINFO alone (see
 * http_xfer_setup), which is ca_file, already in the shared store (a
 * duplicate is ignored), or nothing. */
static CURLcode http_ssl_ctx_cb(CURL *easy, void *ssl_ctx, void *arg)
{
    struct http_xfer *x = arg;
    struct http_ca *ca = x->ca;
    int64_t now = now_ms();

    if (ca->store == NULL || now - ca->built_ms >= (int64_t)HTTP_CA_TTL_S * 1000) {
        const char *failed;
        X509_STORE *store = http_ca_build(easy, ca->ca_file, &failed);

        if (store == NULL) {
            snprintf(x->error, sizeof(x->error), "cannot load CA certificates from %s", failed);
            x->fixed_error = x->error;
            return CURLE_SSL_CACERT_BADFILE;
        }
        X509_STORE_free(ca->store);
        ca->store = store;
        ca->built_ms = now;
    }
    if (X509_STORE_up_ref(ca->store) != 1) {
        x->fixed_error = "out of memory";
        return CURLE_OUT_OF_MEMORY;
    }
    SSL_CTX_set_cert_store(ssl_ctx, ca->store); /* takes the reference */
    return CURLE_OK;
}

/* h's entry for ca_file (NULL: none), added when new; NULL when out of
 * memory. Entries live as long as h: callers use a handful of files. */
static struct http_ca *http_ca_get(struct http *h, const char *ca_file)
{
    struct http_ca *ca;

    for (ca = h->cas; ca != NULL; ca = ca->next)
        if (ca->ca_file == NULL ? ca_file == NULL
                                : ca_file != NULL && strcmp(ca->ca_file, ca_file) == 0)
            return ca;
    ca = calloc(1, sizeof(*ca));
    if (ca == NULL)
        return NULL;
    if (ca_file != NULL && (ca->ca_file = strdup(ca_file)) == NULL) {
        free(ca);
        return NULL;
    }
    ca->next = h->cas;
    h->cas = ca;
    return ca;
}

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)

/* The options every transfer gets, whatever its protocol: protocols alone,
 * no redirect, verified TLS 1.2+, the shared CA store, timeouts. */
static CURLcode http_xfer_common(struct http_xfer *x, const char *protocols, const char *ca_file,
                                 long connect_timeout_ms, long timeout_ms)
{
    CURL *e = x->easy;
    CURLcode rc = CURLE_OK;

    SET(CURLOPT_PRIVATE, (void *)x);
    SET(CURLOPT_PROTOCOLS_STR, protocols);
    SET(CURLOPT_REDIR_PROTOCOLS_STR, protocols);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, timeout_ms);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    /* curl loads no CAs of its own (the callback brings the shared store)
     * but ca_file, a small file: as CAINFO it is part of what curl compares
     * when it picks a cached connection, so a connection verified with a
     * ca_file is never reused by a transfer without it. */
    SET(CURLOPT_CAINFO, ca_file);
    SET(CURLOPT_CAPATH, NULL);
    SET(CURLOPT_CA_CACHE_TIMEOUT, 0L);
    SET(CURLOPT_SSL_CTX_FUNCTION, http_ssl_ctx_cb);
    SET(CURLOPT_SSL_CTX_DATA, (void *)x);
    return rc;
}

/* Every option of one HTTPS transfer; a failure is the first failing
 * option's code (out of memory or an option this libcurl lacks). */
static CURLcode http_xfer_setup(struct http_xfer *x, const struct http_request *req)
{
    CURL *e = x->easy;
    CURLcode rc =
        http_xfer_common(x, "https", req->ca_file, req->connect_timeout_ms, req->timeout_ms);

    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_WRITEFUNCTION, http_on_body);
    SET(CURLOPT_WRITEDATA, (void *)x);
    SET(CURLOPT_HEADERFUNCTION, http_on_header);
    SET(CURLOPT_HEADERDATA, (void *)x);
    SET(CURLOPT_HTTPHEADER, x->headers);
    if (strcmp(req->method, "GET") != 0) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        SET(CURLOPT_COPYPOSTFIELDS, req->body != NULL ? req->body : "");
    }
    /* A POST with another method's name (Graph's PATCH /users/{id}). */
    if (strcmp(req->method, "PATCH") == 0)
        SET(CURLOPT_CUSTOMREQUEST, "PATCH");
    return rc;
}
#undef SET

/* The header list as curl wants it, plus an empty "Expect:" so a POST is
 * never held back waiting for "100 Continue". NULL when out of memory. */
static struct curl_slist *http_header_list(const char *const *headers)
{
    struct curl_slist *list = NULL, *l;

    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        l = curl_slist_append(list, headers[i]);
        if (l == NULL)
            goto fail;
        list = l;
    }
    l = curl_slist_append(list, "Expect:");
    if (l != NULL)
        return l;
fail:
    curl_slist_free_all(list);
    return NULL;
}

static int http_request_valid(const struct http_request *req)
{
    if (req->url == NULL || strncasecmp(req->url, "https://", 8) != 0 || req->method == NULL ||
        (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0 &&
         strcmp(req->method, "PATCH") != 0) ||
        req->connect_timeout_ms <= 0 || req->timeout_ms <= 0)
        return 0;
    /* A line break in a header would smuggle in headers of its own. */
    for (size_t i = 0; req->headers != NULL && req->headers[i] != NULL; i++)
        if (strpbrk(req->headers[i], "\r\n") != NULL)
            return 0;
    return 1;
}

int http_new(struct event_base *base, struct http **out)
{
    struct http *h = calloc(1, sizeof(*h));
    int ret = ERR_NOMEM;

    *out = NULL;
    if (h == NULL)
        goto out;
    h->base = base;
    h->multi = curl_multi_init();
    if (h->multi == NULL) {
        log_error("http: curl_multi_init failed");
        ret = ERR_IO;
        goto out;
    }
    h->timer = evtimer_new(base, http_on_timer, h);
    h->done_ev = event_new(base, -1, 0, http_on_done, h);
    if (h->timer == NULL || h->done_ev == NULL)
        goto out;
    if (curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, http_socket_cb) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, (void *)h) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, http_timer_cb) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, (void *)h) != CURLM_OK) {
        log_error("http: cannot set up curl's multi handle");
        ret = ERR_IO;
        goto out;
    }
    *out = h;
    h = NULL; /* transferred */
    ret = 0;
out:
    http_free(h);
    return ret;
}

/* Hands x, its options set with rc, to curl and h's live list. From here
 * on the callback runs: a transfer curl will not take still completes,
 * with its reason, from the loop. */
static void http_launch(struct http *h, struct http_xfer *x, CURLcode rc)
{
    CURLMcode mrc;

    if (rc != CURLE_OK) {
        x->fixed_error = curl_easy_strerror(rc);
        http_finish(x);
    } else if ((mrc = curl_multi_add_handle(h->multi, x->easy)) != CURLM_OK) {
        x->fixed_error = curl_multi_strerror(mrc);
        http_finish(x);
    } else {
        x->in_multi = 1;
    }
    x->next = h->live;
    if (h->live != NULL)
        h->live->prev = x;
    h->live = x;
    h->in_flight++;
}

/* A transfer of h's for cb, started now; NULL when out of memory. */
static struct http_xfer *http_xfer_new(struct http *h, http_cb cb, void *arg)
{
    struct http_xfer *x = calloc(1, sizeof(*x));

    if (x == NULL)
        return NULL;
    x->started = now_ms();
    x->h = h;
    x->cb = cb;
    x->arg = arg;
    return x;
}

int http_start(struct http *h, const struct http_request *req, http_cb cb, void *arg)
{
    struct http_xfer *x = NULL;
    int ret = ERR_INVALID;

    if (h->freeing || !http_request_valid(req))
        goto out;
    ret = ERR_NOMEM;
    x = http_xfer_new(h, cb, arg);
    if (x == NULL)
        goto out;
    x->body_max = req->max_response_body;
    x->easy = curl_easy_init();
    x->headers = http_header_list(req->headers);
    x->ca = http_ca_get(h, req->ca_file);
    if (x->easy == NULL || x->headers == NULL || x->ca == NULL)
        goto out;

    http_launch(h, x, http_xfer_setup(x, req));
    x = NULL; /* transferred */
    ret = 0;
out:
    http_xfer_free(x);
    return ret;
}

int http_start_easy(struct http *h, const struct http_transfer *t, http_cb cb, void *arg)
{
    struct http_xfer *x = NULL;
    CURL *easy = t->easy;
    int ret = ERR_INVALID;

    if (h->freeing || t->easy == NULL || t->protocols == NULL ||
        strcasestr(t->protocols, "http") != NULL || t->connect_timeout_ms <= 0 ||
        t->timeout_ms <= 0)
        goto out;
    ret = ERR_NOMEM;
    x = http_xfer_new(h, cb, arg);
    if (x == NULL)
        goto out;
    x->easy = easy;
    easy = NULL; /* transferred */
    x->ca = http_ca_get(h, t->ca_file);
    if (x->ca == NULL)
        goto out;
    http_launch(
        h, x, http_xfer_common(x, t->protocols, t->ca_file, t->connect_timeout_ms, t->timeout_ms));
    x = NULL; /* transferred */
    ret = 0;
out:
    curl_easy_cleanup(easy);
    http_xfer_free(x);
    return ret;
}

size_t http_in_flight(const struct http *h)
{
    return h->in_flight;
}

void http_free(struct http *h)
{
    if (h == NULL)
        return;
    h->freeing = 1;
    /* Finished transfers keep their real outcome; the rest are cut short. */
    http_on_done(-1, 0, h);
    while (h->live != NULL) {
        struct http_xfer *x = h->live;

        if (x->in_multi)
            curl_multi_remove_handle(h->multi, x->easy);
        x->fixed_error = "shutting down";
        x->truncated = 0;
        http_complete(x);
    }
    curl_multi_cleanup(h->multi);
    while (h->cas != NULL) {
        struct http_ca *ca = h->cas;

        h->cas = ca->next;
        X509_STORE_free(ca->store);
        free(ca->ca_file);
        free(ca);
    }
    evloop_event_free(&h->timer);
    evloop_event_free(&h->done_ev);
    free(h);
}
