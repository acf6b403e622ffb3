/* The HTTP status endpoint: GET /metrics (Prometheus text format: every
 * counter of stats.h as rtr_agent_<name>, the UDP kernel drop counter read
 * from the sockets, gauges: connections open, the depth of the decision
 * queue in records and bytes, inputs paused; and
 * backpressure_seconds_total from queue_held_seconds) and GET /healthz. It
 * runs on the daemon's main event loop and bounds what a client can take:
 * 32 connections, 10 s per request (from the accept or the previous
 * request, however slowly the bytes come), a pause in accepting when
 * descriptors run out; it warns at start when bound beyond loopback. */
#ifndef RTR_STATUS_H
#define RTR_STATUS_H

#include <event2/event.h>

#include <stdint.h>

#include "core/config.h"
#include "core/queue.h"
#include "ingest/worker.h"

struct status;

/* What the metrics read besides the counters; owned by the daemon, it
 * outlives the status endpoint. */
struct status_feed {
    const struct endpoint *ep; /* [n_ep]: the connections gauge */
    size_t n_ep;
    struct queue *decisions;  /* the decision queue (deliver/delivery.h) */
    const int *inputs_paused; /* atomic */
    /* UDP datagrams the kernel dropped so far (thread-safe). */
    uint64_t (*udp_drops)(void *arg);
    void *arg;
};

/* Binds sc->address on base; feed is kept (not copied). Returns 0 and *out
 * (free with status_free), or ERR_IO (logged). */
int status_new(struct event_base *base, const struct status_config *sc,
               const struct status_feed *feed, struct status **out);

/* The address it is bound to (port 0 resolved). */
const struct sockaddr *status_addr(const struct status *s);

/* Stops serving and frees s. NULL is fine. */
void status_free(struct status *s);

#endif
