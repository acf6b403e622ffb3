#include "tcp.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event_struct.h>
#include <event2/listener.h>
#include <openssl/err.h>

#include "allowlist.h"
#include "errors.h"
#include "framing.h"
#include "core/log.h"
#include "relp_session.h"
#include "tls.h"
#include "core/evloop.h"

/* Largest TLS record plaintext (SSL3_RT_MAX_PLAIN_LENGTH). */
#define TCP_TLS_RECORD 16384

/* At stop, how long a connection may stay silent before it is taken to
 * have sent everything: long enough for a TLS record already in flight on
 * a healthy link, short enough not to delay the exit. */
#define TCP_QUIET_MS 200

/* How long a closing connection may take to write its last answers. */
#define TCP_LINGER_S 5

struct tcp {
    const struct input_ctx *ctx;
    struct endpoint *ep;
    struct evconnlistener *el;
    struct event *retry;
};

struct conn {
    struct input in; /* first: the worker hands back a struct input * */
    const struct input_ctx *ctx;
    struct endpoint *ep;
    struct bufferevent *bev;
    struct framer framer;
    struct event handshake;    /* TLS: armed from accept to BEV_EVENT_CONNECTED */
    struct event drain;        /* stopping: ends the drain at limits.drain_timeout_s */
    struct event frame_late;   /* armed while a frame has begun and not ended */
    struct relp_session *relp; /* RELP listeners: the session on this stream */
    struct pipeline_source src;
    struct sockaddr_storage peer;
    char name[SOCKADDR_TEXT_MAX];
    size_t held;   /* input bytes after the last framing: more were read since */
    int ended;     /* the stream has ended: frame what is left, then close */
    int connected; /* TCP: always; TLS: handshake done */
    int reading;   /* EV_READ enabled */
    int stopping;  /* worker_stop: drain what the sender sends until it ends */
    int finishing; /* RELP: closes once its last answers are written */
    int owed;      /* RELP: answers are due, the idle timeout is off */
};

static struct log_ratelimit tcp_rl_refused = LOG_RATELIMIT_INIT(10, 5);
static struct log_ratelimit tcp_rl_accept = LOG_RATELIMIT_INIT(10, 5);
static struct log_ratelimit tcp_rl_tls = LOG_RATELIMIT_INIT(10, 10);
static struct log_ratelimit tcp_rl_frame = LOG_RATELIMIT_INIT(10, 10);
static struct log_ratelimit tcp_rl_conn = LOG_RATELIMIT_INIT(10, 10);
static struct log_ratelimit tcp_rl_cut = LOG_RATELIMIT_INIT(10, 10);

static int conn_run(struct conn *c);
static void conn_on_event(struct bufferevent *bev, short what, void *arg);

/* Bytes the framer may need to see at once (framing.h). */
static size_t conn_hold(const struct conn *c)
{
    return c->framer.max_frame + FRAMING_MAX_LEN_DIGITS + 2;
}

/* Gives back the slot tcp_on_accept took for a connection from peer. */
static void tcp_slot_release(struct endpoint *ep, const struct sockaddr *peer)
{
    sources_release(ep->sources, peer);
    __atomic_fetch_sub(&ep->open, 1, __ATOMIC_RELAXED);
}

static void conn_close(struct conn *c)
{
    if (c->ep->tls != NULL && c->connected)
        tls_keep_session(bufferevent_openssl_get_ssl(c->bev));
    if (c->ep->tls != NULL)
        event_del(&c->handshake);
    event_del(&c->drain);
    event_del(&c->frame_late);
    relp_session_free(c->relp);
    bufferevent_free(c->bev);
    tcp_slot_release(c->ep, (const struct sockaddr *)&c->peer);
    c->ctx->ops->done(c->ctx->owner, &c->in);
    free(c);
}

static void conn_count_framing(struct conn *c, int rc)
{
    const struct config *cfg = c->ctx->cfg;

    if (rc == ERR_TOOBIG || (rc == 0 && (c->framer.flags & FRAME_TRUNCATED))) {
        stats_add(c->ctx->stats, STAT_frames_oversized, 1);
        log_limited(&tcp_rl_frame, LOG_LVL_WARNING, "%s %s: frame over max_message_bytes (%zu) %s",
                    c->src.transport, c->name, cfg->limits.max_message_bytes,
                    rc == 0 ? "truncated" : "dropped");
    } else if (rc == ERR_INVALID) {
        stats_add(c->ctx->stats, STAT_frames_bad_octet_count, 1);
        log_limited(&tcp_rl_frame, LOG_LVL_WARNING,
                    "%s %s: malformed octet count, skipped to the next line", c->src.transport,
                    c->name);
    }
}

/* Hands on every complete frame of the contiguous bytes p[0..len), *done of
 * them consumed. Returns ERR_AGAIN when the rest is no whole frame (or
 * nothing is left), ERR_BUSY when the pipeline refused a frame (it is not
 * consumed, the framer as it was before it). */
static int conn_frame_span(struct conn *c, const char *p, size_t len, size_t *done)
{
    *done = 0;
    while (*done < len) {
        struct framer saved = c->framer;
        struct str frame;
        size_t used;
        int rc = framer_next(&c->framer, p + *done, len - *done, &frame, &used);

        if (rc == 0 && pipeline_handle(c->ctx->pipe, frame, c->framer.flags, &c->src) == ERR_BUSY) {
            c->framer = saved;
            return ERR_BUSY;
        }
        conn_count_framing(c, rc);
        *done += used;
        if (rc == ERR_AGAIN && used == 0)
            break;
    }
    return ERR_AGAIN;
}

/* Frames and hands on every complete frame buffered. Returns 0 when the
 * framer needs more bytes, ERR_BUSY when the pipeline refused a frame (it
 * stays buffered, the framer as it was before it). Frames are read where
 * the first chain of the buffer holds them, and what they took is drained
 * at once: only a frame that spans chains is made contiguous (copied). */
static int conn_frame(struct conn *c, struct evbuffer *in)
{
    size_t hold = conn_hold(c);

    for (;;) {
        size_t n = evbuffer_get_length(in), done;
        struct evbuffer_iovec first;
        int rc;

        if (n == 0 || evbuffer_peek(in, -1, NULL, &first, 1) < 1)
            return 0;
        rc = conn_frame_span(c, first.iov_base, first.iov_len, &done);
        if (rc == ERR_AGAIN && done == 0 && first.iov_len < n) {
            /* At most one maximal frame: a frame trickling in costs a
             * rescan per read, bounded by that. */
            size_t take = n < hold ? n : hold;
            rc = conn_frame_span(c, (const char *)evbuffer_pullup(in, (ev_ssize_t)take), take,
                                 &done);
        }
        evbuffer_drain(in, done);
        if (rc == ERR_BUSY)
            return ERR_BUSY;
        if (done == 0)
            return 0;
    }
}

/* At the end of the stream: the bytes left, as a last frame flagged and
 * counted as truncated. Even at a clean EOF a line without its LF may be
 * cut (a sender killed mid-write, a TLS peer gone without close_notify):
 * "suser=EXAMPLE\amorgan_adm" cut to "suser=EXAMPLE\amorgan" would name
 * someone else, so it is never decided. */
static int conn_frame_last(struct conn *c, struct evbuffer *in)
{
    size_t n = evbuffer_get_length(in);
    size_t take = n < conn_hold(c) ? n : conn_hold(c);
    struct framer saved = c->framer;
    struct str frame;
    unsigned flags;

    if (n == 0)
        return 0;
    if (framer_finish(&c->framer, (const char *)evbuffer_pullup(in, (ev_ssize_t)take), take,
                      &frame) == 0) {
        /* framer_finish flags an octet-counted frame as truncated (its count
         * was not met); a truncated line is one over max_message_bytes. */
        flags = c->framer.flags;
        if (pipeline_handle(c->ctx->pipe, frame, flags | FRAME_TRUNCATED, &c->src) == ERR_BUSY) {
            c->framer = saved;
            return ERR_BUSY;
        }
        if ((flags & FRAME_TRUNCATED) && !(flags & FRAME_OCTET))
            conn_count_framing(c, 0);
        stats_add(c->ctx->stats, STAT_frames_truncated, 1);
        __atomic_add_fetch(&c->ep->frames_truncated, 1, __ATOMIC_RELAXED);
        log_limited(&tcp_rl_cut, LOG_LVL_WARNING,
                    "%s %s: the connection ended inside a frame (no terminator): delivered as "
                    "truncated, not decided",
                    c->src.transport, c->name);
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

/* Counts the bytes read since the last call (the input grew by them). */
static void conn_count_read(struct conn *c)
{
    size_t now = evbuffer_get_length(bufferevent_get_input(c->bev));
    size_t added = now > c->held ? now - c->held : 0;

    input_count_bytes(c->ctx, c->ep, added);
    c->held = now;
}

/* The stream has ended (EOF, an error, the idle timeout, a stop): read no
 * more; what is left unterminated becomes a truncated last frame. */
static void conn_set_end(struct conn *c)
{
    c->ended = 1;
    conn_read_enable(c, 0);
}

static void conn_pause(struct conn *c)
{
    conn_read_enable(c, 0);
    c->ctx->ops->pause(c->ctx->owner, &c->in);
}

/* bufferevent write callback of a finishing connection: its output is out. */
static void conn_on_written(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_close(arg);
}

/* RELP: closes once what the session wrote is out (its last answers, a
 * serverclose), within TCP_LINGER_S. */
static void conn_finish(struct conn *c)
{
    struct timeval linger = {TCP_LINGER_S, 0};

    if (c->finishing)
        return;
    c->finishing = 1;
    conn_read_enable(c, 0);
    event_del(&c->drain);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        conn_close(c);
        return;
    }
    bufferevent_set_timeouts(c->bev, NULL, &linger);
    bufferevent_setcb(c->bev, NULL, conn_on_written, conn_on_event, c);
}

/* A RELP client that waits for its answers is not idle, however long the
 * spool takes: the idle timeout runs only while nothing is owed to it. */
static void conn_relp_idle_timeout(struct conn *c)
{
    struct timeval idle = {c->ctx->cfg->limits.idle_timeout_s, 0};
    int owed = !relp_session_idle(c->relp);

    if (owed == c->owed || c->ctx->cfg->limits.idle_timeout_s == 0)
        return;
    c->owed = owed;
    bufferevent_set_timeouts(c->bev, owed ? NULL : &idle, NULL);
}

/* The RELP session takes what is buffered. A stream that ended (the
 * client went away) closes at once: a command it left unfinished, like
 * every message not yet answered, is the client's to send again. */
static int conn_run_relp(struct conn *c)
{
    enum relp_want want = relp_session_input(c->relp, bufferevent_get_input(c->bev), &c->src);

    c->held = evbuffer_get_length(bufferevent_get_input(c->bev));
    if (c->ended) {
        conn_close(c);
        return 0;
    }
    if (want == RELP_WANT_BUSY) {
        conn_pause(c);
        return ERR_BUSY;
    }
    if (c->stopping)
        relp_session_serverclose(c->relp);
    if (want == RELP_WANT_CLOSE || relp_session_closing(c->relp)) {
        conn_finish(c);
        return 0;
    }
    conn_relp_idle_timeout(c);
    conn_read_enable(c, want == RELP_WANT_MORE && !c->stopping);
    return 0;
}

/* Answers went out: the window may have room again, a stopping session
 * may be done. */
static void conn_relp_wake(void *arg)
{
    struct conn *c = arg;

    if (!c->in.paused && !c->finishing)
        conn_run(c);
}

/* A frame that began must end within limits.frame_timeout_s: each byte
 * resets the idle timeout, so a sender trickling one now and then would
 * otherwise hold its connection (and a slot) forever. After framing, what
 * is left is the start of a frame: the deadline runs from when it began
 * (from now when framing handed frames on: a busy stream mostly ends its
 * reads mid-frame), and is off when nothing is left or while the
 * connection is paused. */
static void conn_frame_deadline(struct conn *c, int handed_on)
{
    struct timeval limit = {c->ctx->cfg->limits.frame_timeout_s, 0};

    if (c->held == 0 || limit.tv_sec == 0)
        event_del(&c->frame_late);
    else if (handed_on || !event_pending(&c->frame_late, EV_TIMEOUT, NULL))
        event_add(&c->frame_late, &limit);
}

static void conn_on_frame_late(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    stats_add(c->ctx->stats, STAT_connections_closed_slow, 1);
    log_limited(&tcp_rl_conn, LOG_LVL_WARNING,
                "%s %s: a message took more than limits.frame_timeout_s (%d s) to arrive whole: "
                "closing",
                c->src.transport, c->name, c->ctx->cfg->limits.frame_timeout_s);
    conn_set_end(c);
    if (!c->in.paused)
        conn_run(c);
}

/* Frames what is buffered, then: pauses on ERR_BUSY (the bytes stay), closes
 * when the stream has ended or broke its buffer cap, else reads on. Returns
 * ERR_BUSY or 0 (c may be gone). */
static int conn_run(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t before;
    int rc;

    conn_count_read(c);
    if (c->relp != NULL)
        return conn_run_relp(c);
    before = c->held;
    rc = conn_frame(c, in);
    if (rc == 0 && c->ended)
        rc = conn_frame_last(c, in);
    c->held = evbuffer_get_length(in);
    if (rc == ERR_BUSY) {
        event_del(&c->frame_late); /* the agent is slow here, not the sender */
        conn_pause(c);
        return ERR_BUSY;
    }
    if (c->ended) {
        conn_close(c);
        return 0;
    }
    conn_frame_deadline(c, c->held < before);
    conn_read_enable(c, 1);
    return 0;
}

static int conn_resume(struct input *in)
{
    return conn_run((struct conn *)in);
}

/* The stop's drain ran out of time (limits.drain_timeout_s): a syslog
 * stream ends here (what is left unterminated going on as a truncated
 * frame); a RELP session closes with its answers still due (the client
 * sends those messages again). */
static void conn_on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    log_limited(&tcp_rl_conn, LOG_LVL_WARNING,
                "%s %s: still sending (or unanswered) after limits.drain_timeout_s: closing",
                c->src.transport, c->name);
    if (c->relp != NULL) {
        conn_close(c);
        return;
    }
    conn_set_end(c);
    if (!c->in.paused)
        conn_run(c);
}

/* A stop loses nothing a sender has sent: a syslog stream is half-closed
 * (a sender that checks its socket, as rsyslog does before each send, sees
 * the end and keeps the rest in its own queue) and read until the sender
 * closes, stays quiet for TCP_QUIET_MS, or limits.drain_timeout_s passes.
 * A RELP session reads no more commands, answers what it read as it
 * becomes durable, then sends serverclose and closes. */
static void conn_stop(struct input *in)
{
    struct conn *c = (struct conn *)in;
    struct timeval quiet = {0, TCP_QUIET_MS * 1000};
    struct timeval drain = {c->ctx->cfg->limits.drain_timeout_s, 0};

    if (!c->connected) { /* mid-handshake: nothing was received yet */
        conn_close(c);
        return;
    }
    c->stopping = 1;
    if (c->finishing)
        return; /* its last answers are on their way (TCP_LINGER_S) */
    /* From now, not from when this loop iteration began: a long one
     * would otherwise eat the drain time before the first read. */
    event_base_update_cache_time(c->ctx->base);
    event_add(&c->drain, &drain);
    if (c->relp == NULL) {
        if (c->ep->tls == NULL)
            shutdown(bufferevent_getfd(c->bev), SHUT_WR);
        bufferevent_set_timeouts(c->bev, &quiet, NULL);
    }
    if (c->in.paused)
        return; /* conn_resume goes on */
    conn_run(c);
}

/* Our own cap on what a connection holds (redis client_max_querybuf_len).
 * TCP: the read watermark stops reading at max_connection_buffer. TLS has
 * none (see conn_new): each read takes what the socket offers plus the rest
 * of the record OpenSSL decrypted, so up to one record past the cap. Past
 * that, the input is not bounded as it must be. */
static void conn_on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    size_t cap = c->ctx->cfg->limits.max_connection_buffer;
    size_t held = evbuffer_get_length(bufferevent_get_input(bev));

    if (c->ep->tls != NULL)
        cap += TCP_TLS_RECORD;
    if (held > cap) {
        conn_count_read(c);
        stats_add(c->ctx->stats, STAT_connections_closed_buffer, 1);
        log_limited(&tcp_rl_conn, LOG_LVL_WARNING,
                    "%s %s: %zu bytes buffered, over max_connection_buffer: closing",
                    c->src.transport, c->name, held);
        conn_close(c);
        return;
    }
    conn_run(c);
}

/* OpenSSL's reason for a TLS connection's failure, into buf, or NULL when
 * it queued none (a socket error or EOF). libevent saved the errors when
 * they happened (this callback is deferred: errno is stale by now) and hands
 * them back newest first, with the SSL_get_error() code (no library) among
 * them: the earliest real one says what went wrong. */
static const char *conn_tls_reason(struct conn *c, char *buf, size_t len)
{
    unsigned long e, found = 0;

    while ((e = bufferevent_get_openssl_error(c->bev)) != 0) {
        if (ERR_GET_LIB(e) != 0)
            found = e;
    }
    return found != 0 ? tls_error_reason(found, buf, len) : NULL;
}

static void conn_handshake_failed(struct conn *c, const char *reason)
{
    stats_add(c->ctx->stats, STAT_tls_handshake_failures, 1);
    log_limited(&tcp_rl_tls, LOG_LVL_WARNING, "tls %s: handshake failed: %s", c->name, reason);
    conn_close(c);
}

/* The TLS connection ended before its handshake completed. */
static void conn_handshake_ended(struct conn *c, short what)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    const char *reason;
    char buf[256];

    /* Connect and close without a byte: a port probe or a health check,
     * not a client that failed to talk TLS. */
    if ((what & BEV_EVENT_EOF) && BIO_number_read(SSL_get_rbio(ssl)) == 0) {
        log_debug("tls %s: closed before the handshake began", c->name);
        conn_close(c);
        return;
    }
    /* OpenSSL's reason for a refused client certificate is only
     * "certificate verify failed": say which check refused it. */
    reason = tls_client_refusal(ssl, buf, sizeof(buf));
    if (reason == NULL)
        reason = conn_tls_reason(c, buf, sizeof(buf));
    if (reason == NULL && (what & BEV_EVENT_TIMEOUT))
        reason = "idle timeout";
    else if (reason == NULL)
        reason = (what & BEV_EVENT_EOF) ? "the peer closed the connection"
                                        : "connection reset or I/O error";
    conn_handshake_failed(c, reason);
}

/* Bytes wait in the socket's receive queue (for TLS, records not yet
 * decrypted). */
static int conn_socket_has_bytes(struct conn *c)
{
    int queued = 0;

    return ioctl(bufferevent_getfd(c->bev), FIONREAD, &queued) == 0 && queued > 0;
}

static void conn_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    const char *reason = NULL;
    char buf[256];
    int err = 0;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        event_del(&c->handshake);
        c->connected = 1;
        return;
    }
    if (!c->connected) {
        conn_handshake_ended(c, what);
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) && c->stopping && conn_socket_has_bytes(c)) {
        /* Not quiet: a loop turn slower than TCP_QUIET_MS (under valgrind,
         * a long batch) ran the timer before the read of what did come. */
        bufferevent_enable(bev, EV_READ);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        if (!c->stopping) { /* else the drain at stop ran out of time */
            stats_add(c->ctx->stats, STAT_connections_closed_idle, 1);
            log_debug("%s %s: idle for %d s: closing", c->src.transport, c->name,
                      c->ctx->cfg->limits.idle_timeout_s);
        }
    } else if (what & BEV_EVENT_ERROR) {
        /* Plain TCP runs this straight from the failed read, so errno is
         * its error; TLS runs it deferred, with OpenSSL's saved errors. */
        if (c->ep->tls == NULL) {
            err = EVUTIL_SOCKET_ERROR();
            reason = strerror(err);
        } else {
            reason = conn_tls_reason(c, buf, sizeof(buf));
        }
        /* A peer reset is routine (TLS without an OpenSSL reason is a socket
         * error, most likely that); anything else is worth a line. */
        log_limited(&tcp_rl_conn,
                    reason == NULL || err == ECONNRESET ? LOG_LVL_DEBUG : LOG_LVL_WARNING,
                    "%s %s: %s", c->src.transport, c->name,
                    reason != NULL ? reason : "connection reset or I/O error");
    }
    /* Frame what came, then close. The TLS bufferevent leaves reading on
     * after a timeout: conn_set_end turns it off. */
    conn_set_end(c);
    conn_run(c);
}

static void conn_on_handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_handshake_failed(arg, "timed out");
}

/* One transport interface, two implementations (libevent sample/becat.c). */
static struct bufferevent *tcp_transport_new(struct tcp *t, evutil_socket_t fd)
{
    struct event_base *base = t->ctx->base;
    SSL *ssl;

    if (t->ep->tls == NULL)
        return bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    ssl = tls_server_ssl(t->ep->tls);
    if (ssl == NULL) {
        ERR_clear_error(); /* the caller logs; leave no stale error for the next */
        return NULL;
    }
    /* Deferred callbacks: libevent 2.1's do_read() reports EOF before it
     * commits the bytes it decrypted in the same call, so a direct EOF
     * callback would close the connection without its last record. */
    return bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
}

/* Takes over fd (closed on failure). */
static void conn_new(struct tcp *t, evutil_socket_t fd, const struct sockaddr *sa, socklen_t salen)
{
    const struct config *cfg = t->ctx->cfg;
    const struct listen_config *lc = t->ep->lc;
    struct timeval idle = {cfg->limits.idle_timeout_s, 0};
    struct timeval hs = {lc->handshake_timeout_s, 0};
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL || (c->bev = tcp_transport_new(t, fd)) == NULL) {
        log_limited(&tcp_rl_accept, LOG_LVL_ERROR, "listen %s: out of memory at accept",
                    t->ep->name);
        free(c);
        close(fd);
        tcp_slot_release(t->ep, sa);
        return;
    }
    /* RELP answers are small writes the sender waits for (its window): with
     * Nagle they would wait for the sender's delayed ACK, 40 ms a window. */
    if (lc->proto == LISTEN_RELP)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    c->in.resume = conn_resume;
    c->in.stop = conn_stop;
    c->ctx = t->ctx;
    c->ep = t->ep;
    memcpy(&c->peer, sa, salen < sizeof(c->peer) ? salen : sizeof(c->peer));
    sockaddr_format(sa, c->name, sizeof(c->name));
    c->src = (struct pipeline_source){.addr = (struct sockaddr *)&c->peer,
                                      .name = c->name,
                                      .transport = lc->proto == LISTEN_RELP ? "relp"
                                                   : t->ep->tls != NULL     ? "tls"
                                                                            : "tcp"};
    framer_init(&c->framer, lc->framing, cfg->limits.max_message_bytes, cfg->limits.oversize);
    event_assign(&c->drain, t->ctx->base, -1, 0, conn_on_drain_timeout, c);
    event_assign(&c->frame_late, t->ctx->base, -1, 0, conn_on_frame_late, c);
    if (lc->proto == LISTEN_RELP && relp_session_new(t->ctx, bufferevent_get_output(c->bev),
                                                     conn_relp_wake, c, &c->relp) != 0) {
        log_limited(&tcp_rl_accept, LOG_LVL_ERROR, "listen %s: out of memory at accept",
                    t->ep->name);
        bufferevent_free(c->bev);
        free(c);
        tcp_slot_release(t->ep, sa);
        return;
    }
    bufferevent_setcb(c->bev, conn_on_read, NULL, conn_on_event, c);
    if (cfg->limits.idle_timeout_s > 0) /* 0: never */
        bufferevent_set_timeouts(c->bev, &idle, NULL);
    if (t->ep->tls != NULL) {
        /* No read watermark: libevent 2.1 stops reading mid-record at it, and
         * the plaintext OpenSSL then holds raises no socket event, so it
         * would sit there until the connection ends, and be lost with it.
         * conn_on_read's own cap bounds the input instead. */
        /* Many senders close without close_notify; what came is still good. */
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        event_assign(&c->handshake, t->ctx->base, -1, 0, conn_on_handshake_timeout, c);
        event_add(&c->handshake, &hs);
    } else {
        bufferevent_setwatermark(c->bev, EV_READ, 0, cfg->limits.max_connection_buffer);
        c->connected = 1;
    }
    conn_read_enable(c, 1);
    stats_add(t->ctx->stats, STAT_connections_accepted, 1);
    t->ctx->ops->add(t->ctx->owner, &c->in);
}

/* Closes fd, a connection over limit (its slot counted in ep->open given
 * back), counted and logged. */
static void tcp_refuse_at_limit(struct tcp *t, evutil_socket_t fd, const struct sockaddr *sa,
                                const char *limit, int value)
{
    char name[SOCKADDR_TEXT_MAX];

    __atomic_fetch_sub(&t->ep->open, 1, __ATOMIC_RELAXED);
    stats_add(t->ctx->stats, STAT_connections_refused_limit, 1);
    sockaddr_format(sa, name, sizeof(name));
    log_limited(&tcp_rl_refused, LOG_LVL_WARNING, "listen %s: refused %s: %s (%d) reached",
                t->ep->name, name, limit, value);
    close(fd);
}

static void tcp_on_accept(struct evconnlistener *el, evutil_socket_t fd, struct sockaddr *sa,
                          int salen, void *arg)
{
    struct tcp *t = arg;
    const struct listen_config *lc = t->ep->lc;
    const struct config *cfg = t->ctx->cfg;
    char name[SOCKADDR_TEXT_MAX];

    (void)el;
    if (!allowlist_allows(lc->allow, lc->n_allow, sa)) {
        stats_add(t->ctx->stats, STAT_connections_refused_allowlist, 1);
        sockaddr_format(sa, name, sizeof(name));
        log_limited(&tcp_rl_refused, LOG_LVL_WARNING,
                    "listen %s: refused %s: not in the allow list", t->ep->name, name);
        close(fd);
        return;
    }
    if (__atomic_fetch_add(&t->ep->open, 1, __ATOMIC_RELAXED) >= cfg->limits.max_connections) {
        tcp_refuse_at_limit(t, fd, sa, "max_connections", cfg->limits.max_connections);
        return;
    }
    if (sources_take(t->ep->sources, sa, cfg->limits.max_connections_per_source) != 0) {
        tcp_refuse_at_limit(t, fd, sa, "max_connections_per_source",
                            cfg->limits.max_connections_per_source);
        return;
    }
    conn_new(t, fd, sa, (socklen_t)salen);
}

static void tcp_on_error(struct evconnlistener *el, void *arg)
{
    struct tcp *t = arg;
    char who[16 + SOCKADDR_TEXT_MAX];

    snprintf(who, sizeof(who), "listen %s", t->ep->name);
    evloop_accept_error(el, t->retry, who);
}

/* The endpoint's listening socket, bound, not yet listening (libevent
 * listens). SO_REUSEPORT spreads it over the workers. rcvbuf is set here,
 * before listen(), so that every accepted connection inherits it and its
 * window scale is chosen for it: a bounded buffer is what bounds the bytes
 * the kernel acknowledges to a sender while the agent has paused reading
 * (Linux autotuning would grow it to tcp_rmem's maximum, megabytes). Returns
 * the socket or -1 (logged). */
static int tcp_socket(const struct endpoint *ep, const struct sockaddr *sa, socklen_t len)
{
    const struct listen_config *lc = ep->lc;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    const char *what = "socket";

    if (fd == -1)
        goto fail;
    what = "SO_REUSEADDR";
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
        goto fail;
    what = "SO_REUSEPORT";
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
        goto fail;
    what = "SO_RCVBUF";
    if (lc->rcvbuf > 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &lc->rcvbuf, sizeof(lc->rcvbuf)) == -1)
        goto fail;
    what = "bind";
    if (bind(fd, sa, len) == -1)
        goto fail;
    return fd;
fail:
    log_error("listen %s (%s): %s: %s", lc->address, input_proto_name(lc), what, strerror(errno));
    if (fd != -1)
        close(fd);
    return -1;
}

int tcp_new(const struct input_ctx *ctx, struct endpoint *ep, struct tcp **out)
{
    struct tcp *t;
    const struct sockaddr *sa;
    socklen_t len;
    int rc = ERR_IO, fd;

    *out = NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return ERR_NOMEM;
    t->ctx = ctx;
    t->ep = ep;
    sa = input_endpoint_addr(ep, &len);
    fd = tcp_socket(ep, sa, len);
    if (fd == -1)
        goto out;
    t->el = evconnlistener_new(ctx->base, tcp_on_accept, t, LEV_OPT_CLOSE_ON_FREE, SOMAXCONN, fd);
    if (t->el == NULL) {
        log_error("listen %s (%s): %s", ep->lc->address, input_proto_name(ep->lc), strerror(errno));
        close(fd);
        goto out;
    }
    t->retry = evtimer_new(ctx->base, evloop_accept_resume, t->el);
    if (t->retry == NULL) {
        rc = ERR_NOMEM;
        goto out;
    }
    evconnlistener_set_error_cb(t->el, tcp_on_error);
    rc = input_endpoint_bound(ep, evconnlistener_get_fd(t->el));
    if (rc != 0)
        goto out;
    *out = t; /* transferred */
    t = NULL;
out:
    tcp_free(t);
    return rc;
}

void tcp_free(struct tcp *t)
{
    if (t == NULL)
        return;
    if (t->el != NULL)
        evconnlistener_free(t->el);
    evloop_event_free(&t->retry);
    free(t);
}
