#include "input.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "core/log.h"

const char *input_proto_name(const struct listen_config *lc)
{
    switch (lc->proto) {
    case LISTEN_UDP:
        return "udp";
    case LISTEN_TCP:
        return "tcp";
    case LISTEN_TLS:
        return "tls";
    case LISTEN_RELP:
        return lc->tls ? "relp+tls" : "relp";
    case LISTEN_HTTP:
        return lc->tls ? "https" : "http";
    }
    return "?";
}

void input_warn_open_listeners(const struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_listen; i++) {
        const struct listen_config *lc = &cfg->listen[i];

        /* No address: its key did not load (check goes on past such errors). */
        if (lc->address == NULL || sockaddr_is_loopback((const struct sockaddr *)&lc->addr) ||
            lc->n_allow > 0 || (lc->tls && lc->client_ca != NULL))
            continue;
        log_warning("%s: listen[%zu]: %s (%s) takes alerts from anyone who can reach it: set "
                    "\"allow\" to the senders' addresses%s",
                    cfg->path, i, lc->address, input_proto_name(lc),
                    lc->proto == LISTEN_UDP ? " (UDP source addresses can be forged: prefer TCP or "
                                              "TLS with \"client_ca\" for alerts)"
                    : lc->tls               ? ", or \"client_ca\" to require client certificates"
                                            : ", or use TLS with \"client_ca\"");
    }
}

const struct sockaddr *input_endpoint_addr(const struct endpoint *ep, socklen_t *len)
{
    if (ep->bound_len > 0) {
        *len = ep->bound_len;
        return (const struct sockaddr *)&ep->bound;
    }
    *len = ep->lc->addr_len;
    return (const struct sockaddr *)&ep->lc->addr;
}

int input_endpoint_bound(struct endpoint *ep, int fd)
{
    socklen_t len = sizeof(ep->bound);

    if (ep->bound_len > 0)
        return 0;
    if (getsockname(fd, (struct sockaddr *)&ep->bound, &len) == -1) {
        int err = errno;
        log_error("listen %s: getsockname: %s", ep->lc->address, strerror(err));
        return ERR_IO;
    }
    ep->bound_len = len;
    sockaddr_format((const struct sockaddr *)&ep->bound, ep->name, sizeof(ep->name));
    return 0;
}

struct input_acker *input_acker_new(void (*acked)(void *input, uint64_t seq,
                                                  struct decision_answer answer),
                                    void *input)
{
    struct input_acker *a = calloc(1, sizeof(*a));

    if (a != NULL) {
        a->acked = acked;
        a->input = input;
    }
    return a;
}

void input_count_bytes(const struct input_ctx *ctx, const struct endpoint *ep, uint64_t n)
{
    uint64_t *slot = &ctx->ep_bytes[ep - ctx->ep0];

    stats_add(ctx->stats, STAT_bytes_received, n);
    /* Like stats_add: a single writer, read by the status endpoint. */
    __atomic_store_n(slot, __atomic_load_n(slot, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}
