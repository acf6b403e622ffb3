/* The HTTP status endpoint. GET /metrics: the Prometheus text format
 * (promtool check metrics clean): every entry of stats.h as
 * rtr_agent_<its metric> (counters end in _total, a family's members are
 * one name with labels), the UDP kernel drop counter read from the
 * sockets, gauges: connections open, the decision queue's depth in records
 * and bytes, inputs paused, each TLS listener's certificate expiry (read
 * at start); decisions per mapping (mapping_counts.h); backpressure_seconds_total from
 * queue_held_seconds; rtr_agent_build_info and process_start_time_seconds. GET /readyz: 200 once
 * the listeners are bound and the spool is open, 503 while starting or stopping. GET /healthz: 200
 * "ok", or 503 with a one-line reason while the spool holds alerts (it is full) or dispatch has
 * failed for over status.unhealthy_after_s. It runs on the daemon's main event loop and bounds what
 * a client can take: 32 connections, 10 s per request (from the accept or the previous request,
 * however slowly the bytes come), a pause in accepting when descriptors run out; it warns at start
 * when bound beyond loopback. */
#ifndef RTR_STATUS_H
#define RTR_STATUS_H

#include <event2/event.h>

#include <stdint.h>

#include "core/config.h"
#include "core/queue.h"
#include "deliver/mapping_counts.h"
#include "ingest/worker.h"

struct status;

/* Where the daemon is in its life, for /readyz. */
enum status_phase {
    STATUS_STARTING, /* listeners or the spool not yet there */
    STATUS_READY,    /* listeners bound, the spool open */
    STATUS_STOPPING, /* a SIGTERM came: no new input */
};

/* What the metrics read besides the counters; owned by the daemon, it
 * outlives the status endpoint. */
struct status_feed {
    const struct endpoint *ep; /* [n_ep]: the connections gauge, TLS contexts */
    size_t n_ep;
    struct queue *decisions;                  /* the decision queue (deliver/delivery.h) */
    const struct mapping_counts *per_mapping; /* decisions by mapping */
    const int *inputs_paused;                 /* atomic */
    const int *phase;                         /* atomic: an enum status_phase */
    /* UDP datagrams the kernel dropped so far, and bytes read from ep[i]
     * so far (thread-safe). */
    uint64_t (*udp_drops)(void *arg);
    uint64_t (*listener_bytes)(void *arg, size_t i);
    void *arg;
};

/* Binds sc->address on base; feed is kept (not copied); reads the expiry
 * of every TLS listener's certificate now. Returns 0 and *out (free with
 * status_free), or ERR_IO (logged). */
int status_new(struct event_base *base, const struct status_config *sc,
               const struct status_feed *feed, struct status **out);

/* The address it is bound to (port 0 resolved). */
const struct sockaddr *status_addr(const struct status *s);

/* Stops serving and frees s. NULL is fine. */
void status_free(struct status *s);

#endif
