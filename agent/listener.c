#include "listener.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event_struct.h>
#include <event2/listener.h>
#include <openssl/err.h>

#include "errors.h"
#include "framing.h"
#include "log.h"
#include "tls.h"

/* After EMFILE/ENFILE, accepting resumes after this long (nginx waits
 * accept_mutex_delay, 500 ms): long enough for descriptors to free up,
 * short enough that senders barely notice. */
#define LISTENER_RETRY_MS 500

/* Largest TLS record plaintext (SSL3_RT_MAX_PLAIN_LENGTH). */
#define LISTENER_TLS_RECORD 16384

struct listener {
    struct worker *w;
    struct endpoint *ep;
    struct evconnlistener *el;
    struct event *retry;
};

struct conn {
    struct input in; /* first: the worker hands back a struct input * */
    struct worker *w;
    struct endpoint *ep;
    struct bufferevent *bev;
    struct framer framer;
    struct event handshake; /* TLS: armed from accept to BEV_EVENT_CONNECTED */
    struct pipeline_source src;
    struct sockaddr_storage peer;
    char name[PIPELINE_ADDR_MAX];
    int connected; /* TCP: always; TLS: handshake done */
    int reading;   /* EV_READ enabled */
    int ending;    /* EOF, error, idle or stop: frame what is left, then close */
};

static struct log_ratelimit listener_rl_refused = LOG_RATELIMIT_INIT(10, 5);
static struct log_ratelimit listener_rl_accept = LOG_RATELIMIT_INIT(10, 5);
static struct log_ratelimit listener_rl_tls = LOG_RATELIMIT_INIT(10, 10);
static struct log_ratelimit listener_rl_frame = LOG_RATELIMIT_INIT(10, 10);
static struct log_ratelimit listener_rl_conn = LOG_RATELIMIT_INIT(10, 10);

static int conn_run(struct conn *c);

/* Bytes the framer may need to see at once (framing.h). */
static size_t conn_hold(const struct conn *c)
{
    return c->framer.max_frame + FRAMING_MAX_LEN_DIGITS + 2;
}

static void conn_close(struct conn *c)
{
    if (c->ep->tls != NULL)
        event_del(&c->handshake);
    bufferevent_free(c->bev);
    __atomic_fetch_sub(&c->ep->open, 1, __ATOMIC_RELAXED);
    worker_input_done(c->w, &c->in);
    free(c);
}

static void conn_count_framing(struct conn *c, int rc)
{
    const struct config *cfg = worker_config(c->w);

    if (rc == ERR_TOOBIG || (rc == 0 && (c->framer.flags & FRAME_TRUNCATED))) {
        stats_add(worker_stats(c->w), STAT_frames_oversized, 1);
        log_limited(&listener_rl_frame, LOG_LVL_WARNING,
                    "%s %s: frame over max_message_bytes (%zu) %s", c->src.transport, c->name,
                    cfg->limits.max_message_bytes, rc == 0 ? "truncated" : "dropped");
    } else if (rc == ERR_INVALID) {
        stats_add(worker_stats(c->w), STAT_frames_bad_octet_count, 1);
        log_limited(&listener_rl_frame, LOG_LVL_WARNING,
                    "%s %s: malformed octet count, skipped to the next line", c->src.transport,
                    c->name);
    }
}

/* Frames and hands on every complete frame buffered. Returns 0 when the
 * framer needs more bytes, ERR_BUSY when the pipeline refused a frame (it
 * stays buffered, the framer as it was before it). */
static int conn_frame(struct conn *c, struct evbuffer *in)
{
    size_t hold = conn_hold(c);

    for (;;) {
        size_t n = evbuffer_get_length(in);
        size_t take = n < hold ? n : hold;
        struct framer saved = c->framer;
        struct str frame;
        size_t used;
        const char *p;
        int rc;

        if (n == 0)
            return 0;
        /* Contiguous bytes for the framer, at most one maximal frame: a
         * frame trickling in costs a rescan per read, bounded by that. */
        p = (const char *)evbuffer_pullup(in, (ev_ssize_t)take);
        rc = framer_next(&c->framer, p, take, &frame, &used);
        if (rc == 0 && pipeline_handle(worker_pipeline(c->w), frame, &c->src) == ERR_BUSY) {
            c->framer = saved;
            return ERR_BUSY;
        }
        conn_count_framing(c, rc);
        evbuffer_drain(in, used);
        if (rc == ERR_AGAIN && used == 0)
            return 0;
    }
}

/* At the end of the stream: the bytes left, as a last unterminated frame. */
static int conn_frame_last(struct conn *c, struct evbuffer *in)
{
    size_t n = evbuffer_get_length(in);
    size_t take = n < conn_hold(c) ? n : conn_hold(c);
    struct framer saved = c->framer;
    struct str frame;

    if (n == 0)
        return 0;
    if (framer_finish(&c->framer, (const char *)evbuffer_pullup(in, (ev_ssize_t)take), take,
                      &frame) == 0 &&
        pipeline_handle(worker_pipeline(c->w), frame, &c->src) == ERR_BUSY) {
        c->framer = saved;
        return ERR_BUSY;
    }
    evbuffer_drain(in, n);
    return 0;
}

static void conn_read_enable(struct conn *c, int on)
{
    if (on == c->reading)
        return;
    if (on)
        bufferevent_enable(c->bev, EV_READ);
    else
        bufferevent_disable(c->bev, EV_READ);
    c->reading = on;
}

/* Frames what is buffered, then: pauses on ERR_BUSY (the bytes stay), closes
 * when the stream has ended or broke its buffer cap, else reads on. Returns
 * ERR_BUSY or 0 (c may be gone). */
static int conn_run(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    int rc = conn_frame(c, in);

    if (rc == 0 && c->ending)
        rc = conn_frame_last(c, in);
    if (rc == ERR_BUSY) {
        conn_read_enable(c, 0);
        worker_pause(c->w, &c->in);
        return ERR_BUSY;
    }
    if (c->ending) {
        conn_close(c);
        return 0;
    }
    conn_read_enable(c, 1);
    return 0;
}

static int conn_resume(struct input *in)
{
    return conn_run((struct conn *)in);
}

static void conn_stop(struct input *in)
{
    struct conn *c = (struct conn *)in;

    if (!c->connected) { /* mid-handshake: nothing was received yet */
        conn_close(c);
        return;
    }
    c->ending = 1;
    if (c->in.paused)
        return; /* conn_resume finishes it */
    conn_read_enable(c, 0);
    conn_run(c);
}

/* Our own cap on what a connection holds (redis client_max_querybuf_len):
 * the read watermark stops reading at max_connection_buffer, but a TLS
 * bufferevent goes on to drain the record OpenSSL has decrypted, up to one
 * record past it. Past that, the input is not bounded as it must be. */
static void conn_on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    size_t cap = worker_config(c->w)->limits.max_connection_buffer;
    size_t held = evbuffer_get_length(bufferevent_get_input(bev));

    if (c->ep->tls != NULL)
        cap += LISTENER_TLS_RECORD;
    if (held > cap) {
        stats_add(worker_stats(c->w), STAT_connections_closed_buffer, 1);
        log_limited(&listener_rl_conn, LOG_LVL_WARNING,
                    "%s %s: %zu bytes buffered, over max_connection_buffer: closing",
                    c->src.transport, c->name, held);
        conn_close(c);
        return;
    }
    conn_run(c);
}

/* Why the connection failed, into buf: for TLS, OpenSSL's reason when it
 * queued one, else the socket error err, else fallback. libevent hands its
 * saved errors back newest first, after the SSL_get_error() code (no
 * library): the earliest real one says what went wrong. */
static const char *conn_error_reason(struct conn *c, int err, const char *fallback, char *buf,
                                     size_t len)
{
    unsigned long e, found = 0;

    while (c->ep->tls != NULL && (e = bufferevent_get_openssl_error(c->bev)) != 0) {
        if (ERR_GET_LIB(e) != 0)
            found = e;
    }
    if (found != 0)
        return tls_error_reason(found, buf, len);
    return err != 0 ? strerror(err) : fallback;
}

static void conn_handshake_failed(struct conn *c, const char *reason)
{
    stats_add(worker_stats(c->w), STAT_tls_handshake_failures, 1);
    log_limited(&listener_rl_tls, LOG_LVL_WARNING, "tls %s: handshake failed: %s", c->name, reason);
    conn_close(c);
}

static void conn_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    int err = (what & BEV_EVENT_ERROR) ? EVUTIL_SOCKET_ERROR() : 0;
    char reason[256];

    if (what & BEV_EVENT_CONNECTED) {
        event_del(&c->handshake);
        c->connected = 1;
        return;
    }
    if (!c->connected) {
        conn_handshake_failed(c, conn_error_reason(c, err,
                                                   what & BEV_EVENT_TIMEOUT
                                                       ? "idle timeout"
                                                       : "the peer closed the connection",
                                                   reason, sizeof(reason)));
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        stats_add(worker_stats(c->w), STAT_connections_closed_idle, 1);
        log_debug("%s %s: idle for %d s: closing", c->src.transport, c->name,
                  worker_config(c->w)->limits.idle_timeout_s);
    } else if (what & BEV_EVENT_ERROR) {
        /* A peer reset is routine; anything else is worth a line. */
        log_limited(&listener_rl_conn, err == ECONNRESET ? LOG_LVL_DEBUG : LOG_LVL_WARNING,
                    "%s %s: %s", c->src.transport, c->name,
                    conn_error_reason(c, err, "connection error", reason, sizeof(reason)));
    }
    /* EOF, error or idle: frame what came, then close. The TLS bufferevent
     * leaves reading on after a timeout, so turn it off here. */
    bufferevent_disable(bev, EV_READ);
    c->reading = 0;
    c->ending = 1;
    conn_run(c);
}

static void conn_on_handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_handshake_failed(arg, "timed out");
}

/* One transport interface, two implementations (libevent sample/becat.c). */
static struct bufferevent *listener_transport_new(struct listener *l, evutil_socket_t fd)
{
    struct event_base *base = worker_base(l->w);
    SSL *ssl;

    if (l->ep->tls == NULL)
        return bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    ssl = SSL_new(l->ep->tls);
    if (ssl == NULL)
        return NULL;
    /* Deferred callbacks: libevent 2.1's do_read() reports EOF before it
     * commits the bytes it decrypted in the same call, so a direct EOF
     * callback would close the connection without its last record. */
    return bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
}

/* Takes over fd (closed on failure). */
static void conn_new(struct listener *l, evutil_socket_t fd, const struct sockaddr *sa,
                     socklen_t salen)
{
    const struct config *cfg = worker_config(l->w);
    const struct listen_config *lc = l->ep->lc;
    struct timeval idle = {cfg->limits.idle_timeout_s, 0};
    struct timeval hs = {lc->handshake_timeout_s, 0};
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL || (c->bev = listener_transport_new(l, fd)) == NULL) {
        log_limited(&listener_rl_accept, LOG_LVL_ERROR, "listen %s: out of memory at accept",
                    lc->address);
        free(c);
        close(fd);
        __atomic_fetch_sub(&l->ep->open, 1, __ATOMIC_RELAXED);
        return;
    }
    c->in.resume = conn_resume;
    c->in.stop = conn_stop;
    c->w = l->w;
    c->ep = l->ep;
    memcpy(&c->peer, sa, salen < sizeof(c->peer) ? salen : sizeof(c->peer));
    pipeline_addr_format(sa, c->name, sizeof(c->name));
    c->src = (struct pipeline_source){(struct sockaddr *)&c->peer, c->name,
                                      l->ep->tls != NULL ? "tls" : "tcp"};
    framer_init(&c->framer, lc->framing, cfg->limits.max_message_bytes, cfg->limits.oversize);
    bufferevent_setcb(c->bev, conn_on_read, NULL, conn_on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, cfg->limits.max_connection_buffer);
    if (cfg->limits.idle_timeout_s > 0)
        bufferevent_set_timeouts(c->bev, &idle, NULL);
    if (l->ep->tls != NULL) {
        /* Many senders close without close_notify; what came is still good. */
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        event_assign(&c->handshake, worker_base(l->w), -1, 0, conn_on_handshake_timeout, c);
        if (lc->handshake_timeout_s > 0)
            event_add(&c->handshake, &hs);
    } else {
        c->connected = 1;
    }
    conn_read_enable(c, 1);
    stats_add(worker_stats(l->w), STAT_connections_accepted, 1);
    worker_input_add(l->w, &c->in);
}

static void listener_on_accept(struct evconnlistener *el, evutil_socket_t fd, struct sockaddr *sa,
                               int salen, void *arg)
{
    struct listener *l = arg;
    const struct listen_config *lc = l->ep->lc;
    const struct config *cfg = worker_config(l->w);
    char name[PIPELINE_ADDR_MAX];

    (void)el;
    if (!cidr_allows(lc->allow, lc->n_allow, sa)) {
        stats_add(worker_stats(l->w), STAT_connections_refused_allowlist, 1);
        pipeline_addr_format(sa, name, sizeof(name));
        log_limited(&listener_rl_refused, LOG_LVL_WARNING,
                    "listen %s: refused %s: not in the allow list", lc->address, name);
        close(fd);
        return;
    }
    if (__atomic_fetch_add(&l->ep->open, 1, __ATOMIC_RELAXED) >= cfg->limits.max_connections) {
        __atomic_fetch_sub(&l->ep->open, 1, __ATOMIC_RELAXED);
        stats_add(worker_stats(l->w), STAT_connections_refused_limit, 1);
        pipeline_addr_format(sa, name, sizeof(name));
        log_limited(&listener_rl_refused, LOG_LVL_WARNING,
                    "listen %s: refused %s: max_connections (%d) reached", lc->address, name,
                    cfg->limits.max_connections);
        close(fd);
        return;
    }
    conn_new(l, fd, sa, (socklen_t)salen);
}

static void listener_on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct listener *l = arg;

    (void)fd;
    (void)what;
    evconnlistener_enable(l->el);
}

/* libevent handles the retriable accept errors (EAGAIN, EINTR,
 * ECONNABORTED) itself; what reaches here is resource exhaustion. */
static void listener_on_error(struct evconnlistener *el, void *arg)
{
    struct listener *l = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval delay = {0, LISTENER_RETRY_MS * 1000};

    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        /* The pending connection keeps the socket readable: without a pause
         * the loop would spin on accept. */
        log_limited(&listener_rl_accept, LOG_LVL_ERROR,
                    "listen %s: accept: %s; not accepting for %d ms", l->ep->lc->address,
                    strerror(err), LISTENER_RETRY_MS);
        evconnlistener_disable(el);
        event_add(l->retry, &delay);
        return;
    }
    log_limited(&listener_rl_accept, LOG_LVL_WARNING, "listen %s: accept: %s", l->ep->lc->address,
                strerror(err));
}

int listener_new(struct worker *w, struct endpoint *ep, struct listener **out)
{
    struct listener *l;
    const struct sockaddr *sa;
    socklen_t len;
    int rc = ERR_IO;

    *out = NULL;
    l = calloc(1, sizeof(*l));
    if (l == NULL)
        return ERR_NOMEM;
    l->w = w;
    l->ep = ep;
    l->retry = evtimer_new(worker_base(w), listener_on_retry, l);
    if (l->retry == NULL) {
        rc = ERR_NOMEM;
        goto out;
    }
    sa = worker_endpoint_addr(ep, &len);
    l->el = evconnlistener_new_bind(worker_base(w), listener_on_accept, l,
                                    LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT |
                                        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                    SOMAXCONN, sa, (int)len);
    if (l->el == NULL) {
        int err = errno;
        log_error("listen %s (%s): %s", ep->lc->address, ep->tls ? "tls" : "tcp", strerror(err));
        goto out;
    }
    evconnlistener_set_error_cb(l->el, listener_on_error);
    rc = worker_endpoint_bound(ep, evconnlistener_get_fd(l->el));
    if (rc != 0)
        goto out;
    *out = l; /* transferred */
    l = NULL;
out:
    listener_free(l);
    return rc;
}

void listener_free(struct listener *l)
{
    if (l == NULL)
        return;
    if (l->el != NULL)
        evconnlistener_free(l->el);
    if (l->retry != NULL)
        event_free(l->retry);
    free(l);
}
