#include "udp.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sock_diag.h>

#include "allowlist.h"
#include "errors.h"
#include "framing.h"
#include "core/log.h"
#include "core/evloop.h"

/* Datagrams per recvmmsg call, and calls per readiness event: a full socket
 * yields to the loop's other events after UDP_ROUNDS batches. */
#define UDP_BATCH  32
#define UDP_ROUNDS 8

/* The largest UDP payload is 65535 - 8 bytes (IPv4 and IPv6 alike, jumbograms
 * aside), so a buffer of 65536 holds any datagram whole: past that a bigger
 * max_message_bytes would only waste memory. */
#define UDP_DATAGRAM_MAX 65536

struct udp_sock {
    struct udp *u;
    struct endpoint *ep;
    int fd;
    struct event *ev;
};

struct udp {
    struct input in; /* first: the worker hands back a struct input * */
    const struct input_ctx *ctx;
    struct udp_sock *socks;
    size_t n_socks;
    /* One batch for all sockets: while a batch is half delivered (a full
     * queue), no socket is polled. */
    char *bufs; /* UDP_BATCH buffers of buf_size bytes */
    size_t buf_size;
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    struct sockaddr_storage from[UDP_BATCH];
    struct udp_sock *pending; /* the socket the batch came from */
    unsigned next, count;     /* datagrams delivered, received */
    int polling;
    int stopping;
};

static struct log_ratelimit udp_rl_refused = LOG_RATELIMIT_INIT(10, 5);
static struct log_ratelimit udp_rl_oversize = LOG_RATELIMIT_INIT(10, 5);
static struct log_ratelimit udp_rl_recv = LOG_RATELIMIT_INIT(10, 5);

static void udp_poll(struct udp *u, int on)
{
    if (on == u->polling)
        return;
    for (size_t i = 0; i < u->n_socks; i++) {
        if (on)
            event_add(u->socks[i].ev, NULL);
        else
            event_del(u->socks[i].ev);
    }
    u->polling = on;
}

uint64_t udp_kernel_drops(struct udp *u)
{
    uint64_t sum = 0;

    for (size_t i = 0; u != NULL && i < u->n_socks; i++) {
        uint32_t info[SK_MEMINFO_VARS] = {0};
        socklen_t len = sizeof(info);

        /* Older kernels fill fewer fields; drops (since 4.x) is what counts. */
        if (getsockopt(u->socks[i].fd, SOL_SOCKET, SO_MEMINFO, info, &len) == 0 &&
            len > SK_MEMINFO_DROPS * sizeof(info[0]))
            sum += info[SK_MEMINFO_DROPS];
    }
    return sum;
}

/* Hands on the datagrams of the batch from u->next. Returns 0 when all are
 * done, or ERR_BUSY (u->next is the one the pipeline refused). */
static int udp_deliver(struct udp *u)
{
    const struct config *cfg = u->ctx->cfg;
    const struct listen_config *lc = u->pending->ep->lc;
    struct stats *st = u->ctx->stats;
    size_t max = cfg->limits.max_message_bytes;
    char name[SOCKADDR_TEXT_MAX];

    for (; u->next < u->count; u->next++) {
        unsigned i = u->next;
        const struct sockaddr *sa = (const struct sockaddr *)&u->from[i];
        struct pipeline_source src = {.addr = sa, .transport = "udp"};
        struct str frame = framer_trim_trailer(u->iov[i].iov_base, u->msgs[i].msg_len);
        int oversized = (u->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) || frame.len > max;

        if (!allowlist_allows(lc->allow, lc->n_allow, sa)) {
            stats_add(st, STAT_udp_datagrams, 1);
            stats_add(st, STAT_udp_datagrams_refused_allowlist, 1);
            sockaddr_format(sa, name, sizeof(name));
            log_limited(&udp_rl_refused, LOG_LVL_WARNING,
                        "listen %s: dropped a datagram from %s: not in the allow list",
                        u->pending->ep->name, name);
            continue;
        }
        if (oversized) /* truncated to max, or rejected: nothing to hand on */
            frame.len = cfg->limits.oversize == OVERSIZE_TRUNCATE ? max : 0;
        if (frame.len > 0 &&
            pipeline_handle(u->ctx->pipe, frame, oversized ? FRAME_TRUNCATED : 0, &src) == ERR_BUSY)
            return ERR_BUSY;
        stats_add(st, STAT_udp_datagrams, 1);
        if (oversized) {
            stats_add(st, STAT_frames_oversized, 1);
            sockaddr_format(sa, name, sizeof(name));
            log_limited(&udp_rl_oversize, LOG_LVL_WARNING,
                        "listen %s: datagram from %s over max_message_bytes (%zu) %s",
                        u->pending->ep->name, name, max,
                        cfg->limits.oversize == OVERSIZE_TRUNCATE ? "truncated" : "dropped");
        }
    }
    return 0;
}

static void udp_pause(struct udp *u)
{
    udp_poll(u, 0);
    u->ctx->ops->pause(u->ctx->owner, &u->in);
}

static void udp_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct udp_sock *s = arg;
    struct udp *u = s->u;

    (void)what;
    for (int round = 0; round < UDP_ROUNDS; round++) {
        uint64_t bytes = 0;
        int n;

        for (unsigned i = 0; i < UDP_BATCH; i++)
            u->msgs[i].msg_hdr.msg_namelen = sizeof(u->from[i]);
        n = recvmmsg(fd, u->msgs, UDP_BATCH, 0, NULL); /* the socket is non-blocking */
        if (n == -1) {
            int err = errno;
            if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR)
                log_limited(&udp_rl_recv,
                            err == ENOMEM || err == ENOBUFS ? LOG_LVL_ERROR : LOG_LVL_WARNING,
                            "listen %s: recvmmsg: %s", s->ep->name, strerror(err));
            return;
        }
        for (int i = 0; i < n; i++)
            bytes += u->msgs[i].msg_len;
        input_count_bytes(u->ctx, s->ep, bytes);
        u->pending = s;
        u->next = 0;
        u->count = (unsigned)n;
        if (udp_deliver(u) == ERR_BUSY) {
            udp_pause(u);
            return;
        }
        if (n < UDP_BATCH)
            return;
    }
}

static int udp_resume(struct input *in)
{
    struct udp *u = (struct udp *)in;

    if (udp_deliver(u) == ERR_BUSY) {
        udp_pause(u);
        return ERR_BUSY;
    }
    if (u->stopping)
        u->ctx->ops->done(u->ctx->owner, &u->in);
    else
        udp_poll(u, 1);
    return 0;
}

static void udp_stop(struct input *in)
{
    struct udp *u = (struct udp *)in;

    u->stopping = 1;
    udp_poll(u, 0);
    if (!u->in.paused) /* else udp_resume finishes the batch first */
        u->ctx->ops->done(u->ctx->owner, &u->in);
}

/* Asks for rcvbuf bytes: SO_RCVBUFFORCE passes rmem_max when we may
 * (CAP_NET_ADMIN), else SO_RCVBUF is capped by it; logs what was granted. */
static void udp_set_rcvbuf(struct udp_sock *s, int rcvbuf, int log_it)
{
    int got = 0;
    socklen_t len = sizeof(got);

    if (setsockopt(s->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) == -1 &&
        setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) == -1) {
        int err = errno;
        log_warning("listen %s: SO_RCVBUF %d: %s", s->ep->name, rcvbuf, strerror(err));
        return;
    }
    if (log_it && getsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &got, &len) != -1)
        log_info("listen %s: receive buffer %d bytes (asked for %d; the kernel doubles what "
                 "it grants, capped by net.core.rmem_max without CAP_NET_ADMIN)",
                 s->ep->name, got, rcvbuf);
}

static int udp_open(struct udp_sock *s, int first_worker)
{
    const struct listen_config *lc = s->ep->lc;
    const struct sockaddr *sa;
    socklen_t len;
    int one = 1;
    int err;

    sa = input_endpoint_addr(s->ep, &len);
    s->fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd == -1) {
        err = errno;
        log_error("listen %s (udp): socket: %s", lc->address, strerror(err));
        return ERR_IO;
    }
    /* SO_REUSEPORT alone: it lets the workers share the port, and Linux
     * lets only sockets of the same user join them. SO_REUSEADDR would let
     * any local user's socket with that option bind the port too and take
     * a share of the alerts. */
    if (setsockopt(s->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1) {
        err = errno;
        log_error("listen %s (udp): SO_REUSEPORT: %s", lc->address, strerror(err));
        return ERR_IO;
    }
    if (lc->rcvbuf > 0)
        udp_set_rcvbuf(s, lc->rcvbuf, first_worker);
    if (bind(s->fd, sa, len) == -1) {
        err = errno;
        log_error("listen %s (udp): bind: %s", lc->address, strerror(err));
        return ERR_IO;
    }
    return input_endpoint_bound(s->ep, s->fd);
}

int udp_new(const struct input_ctx *ctx, struct endpoint *ep, size_t n, struct udp **out)
{
    size_t max = ctx->cfg->limits.max_message_bytes;
    struct udp *u = NULL;
    size_t n_udp = 0;
    int rc = ERR_NOMEM;

    *out = NULL;
    for (size_t i = 0; i < n; i++)
        n_udp += ep[i].lc->proto == LISTEN_UDP;
    if (n_udp == 0)
        return 0;
    u = calloc(1, sizeof(*u));
    if (u == NULL)
        goto out;
    u->ctx = ctx;
    u->in.resume = udp_resume;
    u->in.stop = udp_stop;
    /* One byte over the limit tells an oversized datagram from a full one;
     * no datagram is larger than UDP_DATAGRAM_MAX. */
    u->buf_size = max < UDP_DATAGRAM_MAX ? max + 1 : UDP_DATAGRAM_MAX;
    u->bufs = malloc(u->buf_size * UDP_BATCH);
    u->socks = calloc(n_udp, sizeof(*u->socks));
    if (u->bufs == NULL || u->socks == NULL)
        goto out;
    for (unsigned i = 0; i < UDP_BATCH; i++) {
        u->iov[i] = (struct iovec){u->bufs + i * u->buf_size, u->buf_size};
        u->msgs[i].msg_hdr = (struct msghdr){
            .msg_name = &u->from[i],
            .msg_iov = &u->iov[i],
            .msg_iovlen = 1,
        };
    }
    for (size_t i = 0; i < n; i++) {
        struct udp_sock *s;
        if (ep[i].lc->proto != LISTEN_UDP)
            continue;
        s = &u->socks[u->n_socks++];
        s->u = u;
        s->ep = &ep[i];
        rc = udp_open(s, ctx->first_worker);
        if (rc != 0)
            goto out;
        s->ev = event_new(ctx->base, s->fd, EV_READ | EV_PERSIST, udp_on_read, s);
        if (s->ev == NULL) {
            rc = ERR_NOMEM;
            goto out;
        }
    }
    udp_poll(u, 1);
    ctx->ops->add(ctx->owner, &u->in);
    *out = u; /* transferred */
    u = NULL;
    rc = 0;
out:
    udp_free(u);
    return rc;
}

void udp_free(struct udp *u)
{
    if (u == NULL)
        return;
    for (size_t i = 0; i < u->n_socks; i++) {
        evloop_event_free(&u->socks[i].ev);
        if (u->socks[i].fd != -1)
            close(u->socks[i].fd);
    }
    free(u->socks);
    free(u->bufs);
    free(u);
}
