#include "http_watch.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

#include "allowlist.h"
#include "core/clock.h"
#include "core/evloop.h"
#include "core/log.h"
#include "core/sockaddr.h"
#include "errors.h"
#include "sources.h"

/* How often a connection is looked at: a closed one that never completed
 * a request is let go (its descriptor closed) within this. */
#define HTTP_WATCH_TICK_MS 1000

TAILQ_HEAD(http_watched_list, http_watched);

struct http_watched {
    struct http_watch *w;
    struct bufferevent *bev; /* a reference held */
    struct event *tick;
    struct sockaddr_storage peer;
    int admitted;        /* passed the allow list and the caps (counted in sources) */
    int refused;         /* shut down at its first look, waiting for evhttp to free it */
    int64_t deadline_ms; /* a request must be whole by then; 0: none */
    TAILQ_ENTRY(http_watched) link;
};

struct http_watch {
    struct event_base *base;
    const struct endpoint *ep;
    int max_connections, max_connections_per_source;
    struct stats *stats;
    struct http_watched_list all;
    size_t admitted;
};

static struct log_ratelimit http_watch_rl = LOG_RATELIMIT_INIT(10, 10);

static void http_watch_release(struct http_watched *c)
{
    struct http_watch *w = c->w;

    TAILQ_REMOVE(&w->all, c, link);
    if (c->admitted) {
        w->admitted--;
        sources_release(w->ep->sources, (const struct sockaddr *)&c->peer);
    }
    evloop_event_free(&c->tick);
    bufferevent_decref(c->bev); /* evhttp's own reference, if any, keeps it */
    free(c);
}

static struct http_watched *http_watch_find(struct http_watch *w, struct bufferevent *bev)
{
    struct http_watched *c;

    TAILQ_FOREACH(c, &w->all, link)
    {
        if (c->bev == bev)
            return c;
    }
    return NULL;
}

/* evhttp has freed the bufferevent (bufferevent_free clears the
 * callbacks): only the reference held here keeps it. */
static int http_watch_freed(struct bufferevent *bev)
{
    bufferevent_data_cb readcb, writecb;
    bufferevent_event_cb eventcb;
    void *arg;

    bufferevent_getcb(bev, &readcb, &writecb, &eventcb, &arg);
    return eventcb == NULL;
}

/* Ends the connection: evhttp reads the end and frees it. */
static void http_watch_cut(struct http_watched *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);

    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    c->deadline_ms = 0;
}

/* The first look at a connection, right after its accept (or at its first
 * request, if that came first): the allow list and the caps. Returns 0
 * when it may go on, else 403 (the allow list) or 503 (a cap). */
static int http_watch_admit(struct http_watched *c)
{
    struct http_watch *w = c->w;
    const struct listen_config *lc = w->ep->lc;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    socklen_t len = sizeof(c->peer);
    char peer[SOCKADDR_TEXT_MAX];
    const char *why = NULL;
    int limit = 0;

    if (fd < 0 || getpeername(fd, (struct sockaddr *)&c->peer, &len) != 0)
        return 503; /* gone already */
    sockaddr_format((const struct sockaddr *)&c->peer, peer, sizeof(peer));
    if (!allowlist_allows(lc->allow, lc->n_allow, (const struct sockaddr *)&c->peer)) {
        stats_add(w->stats, STAT_connections_refused_allowlist, 1);
        log_limited(&http_watch_rl, LOG_LVL_WARNING, "listen %s: refused %s: not in the allow list",
                    w->ep->name, peer);
        return 403;
    }
    if (w->admitted >= (size_t)w->max_connections) {
        why = "max_connections";
        limit = w->max_connections;
    } else if (sources_take(w->ep->sources, (const struct sockaddr *)&c->peer,
                            w->max_connections_per_source) != 0) {
        why = "max_connections_per_source";
        limit = w->max_connections_per_source;
    }
    if (why != NULL) {
        stats_add(w->stats, STAT_connections_refused_limit, 1);
        log_limited(&http_watch_rl, LOG_LVL_WARNING, "listen %s: refused %s: %s (%d) reached",
                    w->ep->name, peer, why, limit);
        return 503;
    }
    c->admitted = 1;
    w->admitted++;
    stats_add(w->stats, STAT_connections_accepted, 1);
    /* An answer goes out in two writes (headers, body; two records over
     * TLS): with Nagle the second waits for the client's delayed ACK, some
     * 40 ms a request on a keep-alive connection. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    return 0;
}

static void http_watch_on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct http_watched *c = arg;
    struct http_watch *w = c->w;
    int64_t now = now_ms();

    (void)fd;
    (void)what;
    if (http_watch_freed(c->bev)) {
        /* Closed without a request evhttp handed over (that one would
         * have let it go at its close): over TLS, maybe in the handshake. */
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

        if (ssl != NULL && !c->refused && !SSL_is_init_finished(ssl))
            stats_add(w->stats, STAT_tls_handshake_failures, 1);
        http_watch_release(c);
        return;
    }
    if (!c->admitted && !c->refused) {
        if (http_watch_admit(c) != 0) {
            c->refused = 1;
            http_watch_cut(c); /* let go once evhttp has freed it */
        }
    } else if (c->deadline_ms != 0 && now >= c->deadline_ms) {
        char peer[SOCKADDR_TEXT_MAX];

        sockaddr_format((const struct sockaddr *)&c->peer, peer, sizeof(peer));
        stats_add(w->stats, STAT_connections_closed_slow, 1);
        log_limited(&http_watch_rl, LOG_LVL_WARNING,
                    "listen %s: %s sent no whole request within request_timeout_s (%d s): "
                    "closed",
                    w->ep->name, peer, w->ep->lc->request_timeout_s);
        http_watch_cut(c);
    }
    event_add(c->tick, &(struct timeval){0, HTTP_WATCH_TICK_MS * 1000});
}

int http_watch_new(struct event_base *base, const struct endpoint *ep, int max_connections,
                   int max_connections_per_source, struct stats *stats, struct http_watch **out)
{
    struct http_watch *w = calloc(1, sizeof(*w));

    *out = NULL;
    if (w == NULL)
        return ERR_NOMEM;
    w->base = base;
    w->ep = ep;
    w->max_connections = max_connections;
    w->max_connections_per_source = max_connections_per_source;
    w->stats = stats;
    TAILQ_INIT(&w->all);
    *out = w;
    return 0;
}

int http_watch_accepted(struct http_watch *w, struct bufferevent *bev)
{
    struct http_watched *c = calloc(1, sizeof(*c));

    if (c != NULL)
        c->tick = evtimer_new(w->base, http_watch_on_tick, c);
    if (c == NULL || c->tick == NULL) {
        free(c);
        return ERR_NOMEM;
    }
    c->w = w;
    c->bev = bev;
    bufferevent_incref(bev);
    c->deadline_ms = now_ms() + (int64_t)w->ep->lc->request_timeout_s * 1000;
    TAILQ_INSERT_TAIL(&w->all, c, link);
    /* At once, on the loop's next turn: evhttp sets the descriptor after
     * the bevcb that called this returns. */
    event_add(c->tick, &(struct timeval){0, 0});
    return 0;
}

int http_watch_request(struct http_watch *w, struct bufferevent *bev)
{
    struct http_watched *c = http_watch_find(w, bev);
    int status = 0;

    if (c == NULL) /* not watched (no memory at its accept) */
        return 0;
    if (c->refused)
        return 503;
    if (!c->admitted)
        status = http_watch_admit(c);
    if (status != 0) {
        c->refused = 1; /* answered, then closed by the caller */
        return status;
    }
    c->deadline_ms = 0;
    return 0;
}

void http_watch_answered(struct http_watch *w, struct bufferevent *bev)
{
    struct http_watched *c = http_watch_find(w, bev);

    if (c != NULL && c->admitted)
        c->deadline_ms = now_ms() + (int64_t)w->ep->lc->request_timeout_s * 1000;
}

void http_watch_closed(struct http_watch *w, struct bufferevent *bev)
{
    struct http_watched *c = http_watch_find(w, bev);

    if (c != NULL)
        http_watch_release(c);
}

void http_watch_free(struct http_watch *w)
{
    struct http_watched *c;

    if (w == NULL)
        return;
    while ((c = TAILQ_FIRST(&w->all)) != NULL)
        http_watch_release(c);
    free(w);
}
