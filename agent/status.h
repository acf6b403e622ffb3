/* The HTTP status endpoint: GET /metrics (Prometheus text format: every
 * counter of stats.h as rtr_agent_<name>, plus the rtr_agent_connections_open
 * gauge) and GET /healthz. It runs on the daemon's main event loop. */
#ifndef RTR_STATUS_H
#define RTR_STATUS_H

#include <event2/event.h>

#include "config.h"
#include "worker.h"

struct status;

/* Binds sc->address on base. ep[0..n_ep) feed the connections gauge.
 * Returns 0 and *out (free with status_free), or ERR_IO (logged). */
int status_new(struct event_base *base, const struct status_config *sc, const struct endpoint *ep,
               size_t n_ep, struct status **out);

/* The address it is bound to (port 0 resolved). */
const struct sockaddr *status_addr(const struct status *s);

void status_free(struct status *s);

#endif
