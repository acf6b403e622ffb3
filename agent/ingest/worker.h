/* A worker thread: its own event_base, its own SO_REUSEPORT socket for
 * every listener, its pipeline, and the inputs (TCP/TLS connections, the UDP
 * sockets) that backpressure pauses and resumes. The inputs see the worker
 * only through the struct input_ctx it hands them (input.h).
 *
 * Everything but worker_stop() runs on the worker's own thread once it has
 * started; before that (worker_new) on the thread that creates it. */
#ifndef RTR_WORKER_H
#define RTR_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/queue.h"
#include "decide/decision.h"
#include "decide/mapping.h"
#include "decide/tap.h"
#include "input.h"

/* What the workers share; owned by the daemon, outlives them. */
struct worker_env {
    const struct config *cfg;
    struct endpoint *ep;
    size_t n_ep;
    struct queue *decisions; /* the delivery thread's queue */
    /* The set workers start with (each takes a reference); NULL = nothing
     * decides. Only worker_new reads it: the daemon clears it once every
     * worker exists, since a SIGHUP may free that set. */
    struct mapping_set *mappings;
    struct correlate *correlate; /* the policies' counts (pipeline.h), or NULL */
    struct tap *tap;             /* NULL without --tap */
    int *inputs_paused;          /* inputs paused now, across workers (atomic) */
    /* Called on the worker's thread when it has stopped (thread-safe). */
    void (*exited)(void *arg);
    void *exited_arg;
};

struct worker;

/* Creates worker id (0 first: it binds port 0 listeners and records the
 * port in env->ep for the others) with its base, pipeline and sockets.
 * Returns 0 and *out (free with worker_free), or a negative ERR_* (logged). */
int worker_new(const struct worker_env *env, int id, struct worker **out);

/* Runs the worker's loop on a new thread. Returns 0 or ERR_IO (logged). */
int worker_start(struct worker *w);

/* From any thread: stop accepting and reading, finish what is buffered
 * (what the pipeline holds pending included), then end the thread
 * (env->exited is called). */
void worker_stop(struct worker *w);

/* From any thread: the worker runs set (not NULL; it takes a reference)
 * from its next frame on. The swap happens on the worker's loop; a set
 * handed over before an earlier one was swapped in replaces it. */
void worker_set_mappings(struct worker *w, struct mapping_set *set);

/* Waits for the thread to end (when started; it ends after worker_stop).
 * Afterwards nothing runs on w's loop, though a queue may still hold w's
 * waiter: close and drain the queue before worker_free. */
void worker_join(struct worker *w);

/* Joins the thread (when started) and frees w. NULL is fine. */
void worker_free(struct worker *w);

/* From any thread (the delivery thread): the answer to a decision_ack
 * one of w's inputs handed out; delivered to it on w's loop. */
void worker_ack(struct worker *w, const struct decision_ack *ack, struct decision_answer answer);

/* UDP datagrams the kernel dropped at w's sockets so far (udp.h). Any
 * thread, while w exists. */
uint64_t worker_udp_drops(struct worker *w);

/* Bytes w's inputs read from endpoint ep (its index in worker_env.ep) so
 * far. Any thread, while w exists. */
uint64_t worker_received_bytes(const struct worker *w, size_t ep);

#endif
