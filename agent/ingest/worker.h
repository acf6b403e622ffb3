/* A worker thread: its own event_base, its own SO_REUSEPORT socket for
 * every listener, its pipeline, and the inputs (TCP/TLS connections, the UDP
 * sockets) that backpressure pauses and resumes.
 *
 * Everything but worker_stop() runs on the worker's own thread once it has
 * started; before that (worker_new) on the thread that creates it. */
#ifndef RTR_WORKER_H
#define RTR_WORKER_H

#include <stddef.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "core/config.h"
#include "decide/mapping.h"
#include "decide/pipeline.h"
#include "core/queue.h"
#include "core/sockaddr.h"
#include "core/stats.h"

/* One per cfg->listen[i], shared by every worker; owned by the daemon. */
struct endpoint {
    const struct listen_config *lc;
    SSL_CTX *tls;                  /* TLS listeners */
    struct sockaddr_storage bound; /* the address the first worker bound (port 0 resolved) */
    socklen_t bound_len;           /* 0 until then */
    char name[SOCKADDR_TEXT_MAX];  /* bound as text, for logs; lc->address until bound */
    int open;                      /* TCP/TLS connections open across workers (atomic) */
};

/* What the workers share; owned by the daemon, outlives them. */
struct worker_env {
    const struct config *cfg;
    struct endpoint *ep;
    size_t n_ep;
    struct queue *decisions; /* the response thread's queue */
    /* The set workers start with (each takes a reference); NULL = nothing
     * decides. Only worker_new reads it: the daemon clears it once every
     * worker exists, since a SIGHUP may free that set. */
    struct mapping_set *mappings;
    struct queue *tap;  /* NULL without --tap */
    int *inputs_paused; /* inputs paused now, across workers (atomic) */
    /* Called on the worker's thread when it has stopped (thread-safe). */
    void (*exited)(void *arg);
    void *exited_arg;
};

/* Something that reads input and that a full queue pauses. Embedded first in
 * a connection or in the UDP socket set. */
struct input {
    /* Offers again the work that hit ERR_BUSY. Returns ERR_BUSY when it hit
     * it again (the input paused itself once more), else 0; the input may
     * have ended (and been freed) by then. */
    int (*resume)(struct input *in);
    /* Stop reading (a connection first reads what the kernel already holds);
     * finish what is buffered (maybe after a pause); end with
     * worker_input_done(). */
    void (*stop)(struct input *in);
    TAILQ_ENTRY(input) all;
    TAILQ_ENTRY(input) paused_link;
    int paused;
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

struct event_base *worker_base(struct worker *w);
struct stats *worker_stats(struct worker *w);
struct pipeline *worker_pipeline(struct worker *w);
const struct config *worker_config(struct worker *w);
int worker_id(const struct worker *w);

void worker_input_add(struct worker *w, struct input *in);
/* in has finished: it is unlinked, and no longer the worker's. Whoever owns
 * in frees it: a connection frees itself right after; the UDP input
 * belongs to the worker (udp_free in worker_free). */
void worker_input_done(struct worker *w, struct input *in);
/* in hit ERR_BUSY and stopped reading: resume it when the queue drains. */
void worker_pause(struct worker *w, struct input *in);

/* Where an endpoint's socket binds: the port the first worker got when the
 * configuration asks for port 0, else the configured address. */
const struct sockaddr *worker_endpoint_addr(const struct endpoint *ep, socklen_t *len);
/* Records the address fd was bound to (and its text in ep->name), when it
 * is the endpoint's first socket. Returns 0 or ERR_IO (logged). */
int worker_endpoint_bound(struct endpoint *ep, int fd);

/* UDP datagrams the kernel dropped at w's sockets so far (udp.h). Any
 * thread, while w exists. */
uint64_t worker_udp_drops(struct worker *w);

#endif
