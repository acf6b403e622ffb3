/* The response thread: the single consumer of the decision queue the
 * workers fill. It runs its own event loop (so the network resolvers and
 * the dispatcher of the next stage run there without blocking anyone):
 * for each decision it resolves the user (identity.h) and, in dry-run,
 * writes the decision to the audit log with outcome "would-dispatch" or
 * "unresolved-user". The queue is bounded: when it is full the workers
 * stop reading TCP/TLS (backpressure) and count it. */
#ifndef RTR_RESPONSE_H
#define RTR_RESPONSE_H

#include "config.h"
#include "queue.h"

struct response;

/* Creates the decision queue, the identity layer (loading the static
 * directory) and the audit log. Errors are logged. Returns 0 and *out (free
 * with response_free), or ERR_CONFIG / ERR_IO / ERR_NOMEM. */
int response_new(const struct config *cfg, struct response **out);

/* The queue workers push decision records (decision.h) into. */
struct queue *response_queue(struct response *r);

/* Starts the thread. It runs until the queue is closed, drained and every
 * decision in flight has finished, then calls done(arg) from its thread
 * (thread-safe) and ends. Returns 0 or ERR_IO. */
int response_start(struct response *r, void (*done)(void *arg), void *arg);

/* From any thread: re-read the static directory (swapped in only when it
 * loads cleanly; the cache is cleared) and reopen the audit log. */
void response_reload(struct response *r);

/* Joins the thread (if started; call after queue_close) and frees r. NULL
 * is fine. */
void response_free(struct response *r);

#endif
