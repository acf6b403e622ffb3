/* What an input (a TCP/TLS connection, the UDP sockets of a worker) needs
 * from the worker that runs it, handed down as one context so that the
 * inputs never include worker.h: the worker includes them, not the other
 * way round. Also the endpoints the inputs bind. */
#ifndef RTR_INPUT_H
#define RTR_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "core/config.h"
#include "core/sockaddr.h"
#include "core/stats.h"
#include "decide/pipeline.h"
#include "sources.h"

struct tls_server;
struct http_key;

/* One per cfg->listen[i], shared by every worker; owned by the daemon. */
struct endpoint {
    const struct listen_config *lc;
    struct tls_server *tls;        /* TLS listeners (tls.h) */
    struct http_key *key;          /* HTTP listeners with auth "api_key" (http_key.h) */
    struct sockaddr_storage bound; /* the address the first worker bound (port 0 resolved) */
    socklen_t bound_len;           /* 0 until then */
    char name[SOCKADDR_TEXT_MAX];  /* bound as text, for logs; lc->address until bound */
    int open;                      /* TCP/TLS connections open across workers (atomic) */
    struct sources *sources;       /* TCP/TLS/RELP: connections open per source address */
    uint64_t frames_truncated;     /* frames cut by the end of their connection (atomic) */
};

/* Something that reads input and that a full queue pauses. Embedded first in
 * a connection or in the UDP socket set. */
struct input {
    /* Offers again the work that hit ERR_BUSY. Returns ERR_BUSY when it hit
     * it again (the input paused itself once more), else 0; the input may
     * have ended (and been freed) by then. */
    int (*resume)(struct input *in);
    /* Stop reading (a connection first reads what the kernel already holds);
     * finish what is buffered (maybe after a pause); end with ops->done. */
    void (*stop)(struct input *in);
    TAILQ_ENTRY(input) all;
    TAILQ_ENTRY(input) paused_link;
    int paused;
};

/* What an input that acknowledges a message only once its alerts are
 * durable (RELP) names in the decision_acks it hands the pipeline (owner:
 * this address, worker: its worker's id). The answers come back on the
 * worker's loop, through acked(input, seq, answer). Allocated by the
 * input (input_acker_new); an input that ends gives it to its worker
 * (input_ops.acker_release), which frees it once the answers still
 * outstanding have come, or at its own end. */
struct input_acker {
    void (*acked)(void *input, uint64_t seq, struct decision_answer answer);
    void *input;        /* NULL once released */
    size_t outstanding; /* acks handed out, not yet answered */
    TAILQ_ENTRY(input_acker) released_link;
};

/* Returns a new acker (free it through input_ops.acker_release) or NULL. */
struct input_acker *input_acker_new(void (*acked)(void *input, uint64_t seq,
                                                  struct decision_answer answer),
                                    void *input);

/* How an input reports to whoever runs it (the worker); each is called on
 * that owner's loop with input_ctx.owner. */
struct input_ops {
    /* in starts reading: stop and resume it from now on. */
    void (*add)(void *owner, struct input *in);
    /* in has finished: it is unlinked, and no longer the owner's. Whoever
     * owns in frees it: a connection frees itself right after; the UDP
     * input belongs to the worker (udp_free in worker_free). */
    void (*done)(void *owner, struct input *in);
    /* in hit ERR_BUSY and stopped reading: resume it when the queue drains. */
    void (*pause)(void *owner, struct input *in);
    /* The input is done with a (it will call nothing of it any more). */
    void (*acker_release)(void *owner, struct input_acker *a);
};

/* Everything an input uses of its worker. Owned by the worker, which
 * outlives its inputs; the inputs keep a pointer to it. */
struct input_ctx {
    struct event_base *base;
    struct stats *stats;
    struct pipeline *pipe;
    const struct config *cfg;
    int first_worker; /* worker 0: the first to bind each endpoint; logs socket settings once */
    uint32_t worker;  /* the worker's id: decision_ack.worker */
    const struct input_ops *ops;
    void *owner;
    /* Bytes read per endpoint, at [ep - ep0]: this worker's own slots (one
     * writer), summed across workers when scraped (worker_received_bytes). */
    const struct endpoint *ep0;
    uint64_t *ep_bytes;
};

/* Counts n bytes read from ep: in bytes_received and in ep's slot. */
void input_count_bytes(const struct input_ctx *ctx, const struct endpoint *ep, uint64_t n);

/* The listener's protocol for logs: "udp", "tcp", "tls", "relp" or
 * "relp+tls". Static text. */
const char *input_proto_name(const struct listen_config *lc);

/* Warns, for each listener of cfg beyond loopback that takes any sender (no
 * "allow" list, no client certificates), that anyone who reaches it may
 * inject alerts. For check and for the start. */
void input_warn_open_listeners(const struct config *cfg);

/* Where an endpoint's socket binds: the port the first worker got when the
 * configuration asks for port 0, else the configured address. */
const struct sockaddr *input_endpoint_addr(const struct endpoint *ep, socklen_t *len);

/* Records the address fd was bound to (and its text in ep->name), when it
 * is the endpoint's first socket. Returns 0 or ERR_IO (logged). */
int input_endpoint_bound(struct endpoint *ep, int fd);

#endif
