#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "core/evloop.h"
#include "core/log.h"
#include "http_intake.h"
#include "tcp.h"
#include "udp.h"

/* How long a tap line may wait for others to share its write. */
#define TAP_DELAY_US 1000
/* struct worker's ep_bytes for n endpoints: whole cache lines (at least
 * one), as aligned_alloc wants a multiple of the alignment. */
#define WORKER_EP_BYTES_SIZE(n) (((n) * sizeof(uint64_t) / STATS_ALIGN + 1) * STATS_ALIGN)

TAILQ_HEAD(input_list, input);
TAILQ_HEAD(acker_list, input_acker);

/* An answer to a decision_ack, on its way from the delivery thread. */
struct worker_answer {
    struct input_acker *acker;
    uint64_t seq;
    struct decision_answer answer;
};

/* Answers the delivery thread posted, taken in one swap by the loop. */
struct worker_answers {
    struct worker_answer *v;
    size_t n, cap;
};

struct worker {
    int id;
    const struct worker_env *env;
    struct event_base *base;
    struct stats *stats;
    struct pipeline *pipe;
    struct input_ctx ctx; /* what the inputs see of the worker: the above and the ops */
    struct queue_waiter decisions_waiter;
    struct event *ev_wake;     /* activated by the decision queue's consumer */
    struct event *ev_notify;   /* activated when a push owes the consumer a notification */
    struct event *ev_tap;      /* a timer from when the pipeline starts a tap batch */
    struct event *ev_stop;     /* activated by worker_stop */
    struct event *ev_mappings; /* activated by worker_set_mappings */
    struct event *ev_answers;  /* activated by worker_ack */
    pthread_mutex_t answers_lock;
    struct worker_answers answers;   /* posted; guarded by answers_lock */
    struct worker_answers answering; /* taken by the loop (reused) */
    struct acker_list released;      /* released ackers still owed answers */
    pthread_mutex_t mappings_lock;
    struct mapping_set *mappings_next; /* handed over, not swapped in yet */
    struct tcp **listeners;            /* [n_ep], NULL for UDP and HTTP endpoints */
    struct http_intake **intakes;      /* [n_ep]: worker 0's HTTP endpoints, else NULL */
    uint64_t *ep_bytes;                /* [n_ep]: input_ctx.ep_bytes, cache-line aligned */
    struct udp *udp;
    struct input_list inputs;
    struct input_list paused;
    pthread_t thread;
    int started;
    int stopping;
};

/* SO_REUSEPORT, which spreads an endpoint over the workers, would as well
 * let a second rtr-agent (same user, same config) bind the same address
 * and silently take a share of the traffic. Before the first socket binds
 * it, a throwaway socket without SO_REUSEPORT tries the address: EADDRINUSE
 * means another process holds it. TCP sets SO_REUSEADDR, so that
 * connections of a previous run in TIME_WAIT do not count (only a
 * listening socket does); UDP must not, as there it would allow a second
 * bind too. Any other bind error is left for the real bind to report.
 * Returns 0 or ERR_IO (logged). */
static int worker_endpoint_probe(const struct listen_config *lc)
{
    int udp = lc->proto == LISTEN_UDP, one = 1, fd, err = 0;
    const char *proto = input_proto_name(lc);

    if (sockaddr_port((const struct sockaddr *)&lc->addr) == 0)
        return 0; /* the kernel picks a port nobody holds */
    fd = socket(lc->addr.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        err = errno;
        log_error("listen %s (%s): socket: %s", lc->address, proto, strerror(err));
        return ERR_IO;
    }
    if (!udp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
        err = errno;
    else if (bind(fd, (const struct sockaddr *)&lc->addr, lc->addr_len) == -1)
        err = errno;
    close(fd);
    if (err == EADDRINUSE) {
        log_error("listen %s (%s): address already in use by another process (a second "
                  "rtr-agent?)",
                  lc->address, proto);
        return ERR_IO;
    }
    return 0;
}

uint64_t worker_udp_drops(struct worker *w)
{
    return udp_kernel_drops(w->udp);
}

uint64_t worker_received_bytes(const struct worker *w, size_t ep)
{
    return __atomic_load_n(&w->ep_bytes[ep], __ATOMIC_RELAXED);
}

static void worker_unpause(struct worker *w, struct input *in)
{
    TAILQ_REMOVE(&w->paused, in, paused_link);
    in->paused = 0;
    __atomic_sub_fetch(w->env->inputs_paused, 1, __ATOMIC_RELAXED);
}

/* A stopping worker ends once its inputs have finished and the pipeline
 * has queued everything they produced. */
static void worker_check_done(struct worker *w)
{
    if (w->stopping && TAILQ_EMPTY(&w->inputs) && !pipeline_pending(w->pipe))
        event_base_loopbreak(w->base);
}

static void worker_input_add(void *owner, struct input *in)
{
    struct worker *w = owner;

    TAILQ_INSERT_TAIL(&w->inputs, in, all);
}

static void worker_input_done(void *owner, struct input *in)
{
    struct worker *w = owner;

    if (in->paused)
        worker_unpause(w, in);
    TAILQ_REMOVE(&w->inputs, in, all);
    worker_check_done(w);
}

static void worker_pause(void *owner, struct input *in)
{
    struct worker *w = owner;

    if (in->paused)
        return;
    in->paused = 1;
    TAILQ_INSERT_TAIL(&w->paused, in, paused_link);
    __atomic_add_fetch(w->env->inputs_paused, 1, __ATOMIC_RELAXED);
    stats_add(w->stats, STAT_backpressure_pauses, 1);
}

static void worker_acker_release(void *owner, struct input_acker *a)
{
    struct worker *w = owner;

    if (a == NULL)
        return;
    if (a->outstanding == 0) {
        free(a);
        return;
    }
    a->input = NULL;
    TAILQ_INSERT_TAIL(&w->released, a, released_link);
}

static const struct input_ops worker_input_ops = {
    .add = worker_input_add,
    .done = worker_input_done,
    .pause = worker_pause,
    .acker_release = worker_acker_release,
};

void worker_ack(struct worker *w, const struct decision_ack *ack, struct decision_answer answer)
{
    struct worker_answers *q = &w->answers;
    int grown = 1;

    pthread_mutex_lock(&w->answers_lock);
    if (q->n == q->cap) {
        size_t cap = q->cap > 0 ? 2 * q->cap : 64;
        struct worker_answer *v = realloc(q->v, cap * sizeof(*v));

        if (v != NULL) {
            q->v = v;
            q->cap = cap;
        } else {
            grown = 0;
        }
    }
    if (grown)
        q->v[q->n++] =
            (struct worker_answer){(struct input_acker *)(uintptr_t)ack->owner, ack->seq, answer};
    pthread_mutex_unlock(&w->answers_lock);
    if (!grown) /* the input never hears: its sender times out and sends again */
        log_error("worker %d: out of memory: an acknowledgement was lost", w->id);
    event_active(w->ev_answers, 0, 0);
}

static void worker_answer(struct worker *w, const struct worker_answer *an)
{
    struct input_acker *a = an->acker;

    a->outstanding--;
    if (a->input != NULL) {
        a->acked(a->input, an->seq, an->answer);
    } else if (a->outstanding == 0) {
        TAILQ_REMOVE(&w->released, a, released_link);
        free(a);
    }
}

static void worker_on_answers(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct worker_answers taken;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&w->answers_lock);
    taken = w->answers;
    w->answers = w->answering;
    w->answers.n = 0;
    pthread_mutex_unlock(&w->answers_lock);
    for (size_t i = 0; i < taken.n; i++)
        worker_answer(w, &taken.v[i]);
    w->answering = taken;
}

/* A push made the decision queue non-empty: the delivery thread is told
 * once this loop turn's reads are done, so that their decisions share one
 * wake-up. */
static void worker_notify_later(void *arg)
{
    struct worker *w = arg;

    event_active(w->ev_notify, 0, 0);
}

static void worker_on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    queue_notify(w->env->decisions);
}

/* The delivery thread drained the decision queue below its low mark. */
static void worker_wake(void *arg)
{
    struct worker *w = arg;

    event_active(w->ev_wake, 0, 0);
}

/* Queues what the pipeline holds pending, then resumes paused inputs in
 * the order they paused, until one finds a queue full again (it pauses
 * itself anew and a waiter is armed again). */
/* The pipeline began a tap batch: it is written TAP_DELAY_US later (or when
 * it fills), so that a trickle of datagrams, each read on its own, still
 * shares one write(2) with its neighbours. */
static void worker_tap_batch_started(void *arg)
{
    static const struct timeval delay = {0, TAP_DELAY_US};
    struct worker *w = arg;

    event_add(w->ev_tap, &delay);
}

static void worker_on_tap(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    pipeline_tap_flush(w->pipe);
}

static void worker_on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct input *in;

    (void)fd;
    (void)what;
    if (pipeline_flush(w->pipe) == ERR_BUSY)
        return;
    while ((in = TAILQ_FIRST(&w->paused)) != NULL) {
        worker_unpause(w, in);
        if (in->resume(in) == ERR_BUSY)
            break;
    }
    worker_check_done(w);
}

void worker_set_mappings(struct worker *w, struct mapping_set *set)
{
    struct mapping_set *old;

    mapping_set_ref(set);
    pthread_mutex_lock(&w->mappings_lock);
    old = w->mappings_next;
    w->mappings_next = set;
    pthread_mutex_unlock(&w->mappings_lock);
    mapping_set_unref(old);
    event_active(w->ev_mappings, 0, 0);
}

static void worker_on_mappings(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct mapping_set *set;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&w->mappings_lock);
    set = w->mappings_next;
    w->mappings_next = NULL;
    pthread_mutex_unlock(&w->mappings_lock);
    if (set == NULL)
        return;
    pipeline_set_mappings(w->pipe, set);
    mapping_set_unref(set); /* the pipeline holds its own reference */
}

static void worker_on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct input *in, *next;

    (void)fd;
    (void)what;
    w->stopping = 1;
    for (size_t i = 0; i < w->env->n_ep; i++) {
        tcp_free(w->listeners[i]);
        w->listeners[i] = NULL;
    }
    /* Stopping one input never ends another, so next stays valid. */
    for (in = TAILQ_FIRST(&w->inputs); in != NULL; in = next) {
        next = TAILQ_NEXT(in, all);
        in->stop(in);
    }
    worker_check_done(w);
}

int worker_new(const struct worker_env *env, int id, struct worker **out)
{
    struct pipeline_outputs outputs;
    struct worker *w;
    int rc = ERR_NOMEM;

    *out = NULL;
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return ERR_NOMEM;
    w->id = id;
    w->env = env;
    TAILQ_INIT(&w->inputs);
    TAILQ_INIT(&w->paused);
    pthread_mutex_init(&w->mappings_lock, NULL);
    pthread_mutex_init(&w->answers_lock, NULL);
    TAILQ_INIT(&w->released);
    w->stats = stats_register();
    w->decisions_waiter =
        (struct queue_waiter){.wake = worker_wake, .notify_later = worker_notify_later, .arg = w};
    w->base = event_base_new();
    w->listeners = calloc(env->n_ep, sizeof(*w->listeners));
    w->intakes = calloc(env->n_ep, sizeof(*w->intakes));
    /* Whole cache lines of its own: the other workers' slots never share
     * one with it. */
    w->ep_bytes = aligned_alloc(STATS_ALIGN, WORKER_EP_BYTES_SIZE(env->n_ep));
    if (w->base == NULL || w->listeners == NULL || w->intakes == NULL || w->ep_bytes == NULL)
        goto out;
    memset(w->ep_bytes, 0, WORKER_EP_BYTES_SIZE(env->n_ep));
    w->ev_wake = event_new(w->base, -1, 0, worker_on_wake, w);
    w->ev_stop = event_new(w->base, -1, 0, worker_on_stop, w);
    w->ev_mappings = event_new(w->base, -1, 0, worker_on_mappings, w);
    w->ev_answers = event_new(w->base, -1, 0, worker_on_answers, w);
    w->ev_tap = evtimer_new(w->base, worker_on_tap, w);
    w->ev_notify = event_new(w->base, -1, 0, worker_on_notify, w);
    if (w->ev_wake == NULL || w->ev_stop == NULL || w->ev_mappings == NULL ||
        w->ev_answers == NULL || w->ev_tap == NULL || w->ev_notify == NULL)
        goto out;
    outputs = (struct pipeline_outputs){
        .decisions = env->decisions,
        .correlate = env->correlate,
        .decisions_waiter = &w->decisions_waiter,
        .tap = env->tap,
        .tap_batch_started = worker_tap_batch_started,
        .tap_arg = w,
    };
    rc = pipeline_new(env->cfg, w->stats, env->mappings, &outputs, &w->pipe);
    if (rc != 0)
        goto out;
    w->ctx = (struct input_ctx){
        .base = w->base,
        .stats = w->stats,
        .pipe = w->pipe,
        .cfg = env->cfg,
        .first_worker = id == 0,
        .worker = (uint32_t)id,
        .ops = &worker_input_ops,
        .owner = w,
        .ep0 = env->ep,
        .ep_bytes = w->ep_bytes,
    };
    /* Every endpoint before any binds: two of ours that overlap (the
     * wildcard and a specific address, both SO_REUSEPORT) must not look
     * like another process. */
    for (size_t i = 0; id == 0 && i < env->n_ep; i++) {
        rc = worker_endpoint_probe(env->ep[i].lc);
        if (rc != 0)
            goto out;
    }
    for (size_t i = 0; i < env->n_ep; i++) {
        if (env->ep[i].lc->proto == LISTEN_UDP)
            continue;
        /* Webhooks come a few a second: one worker serves each HTTP
         * listener (http_intake.h). */
        if (env->ep[i].lc->proto == LISTEN_HTTP) {
            rc = id == 0 ? http_intake_new(&w->ctx, &env->ep[i], &w->intakes[i]) : 0;
            if (rc != 0)
                goto out;
            continue;
        }
        rc = tcp_new(&w->ctx, &env->ep[i], &w->listeners[i]);
        if (rc != 0)
            goto out;
    }
    rc = udp_new(&w->ctx, env->ep, env->n_ep, &w->udp);
    if (rc != 0)
        goto out;
    *out = w; /* transferred */
    w = NULL;
out:
    worker_free(w);
    return rc;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    /* Wake, stop and mappings events are only ever activated, never added:
     * keep looping while nothing else is pending. */
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    /* The loop broke before its tap and notification events ran. */
    pipeline_tap_flush(w->pipe);
    queue_notify(w->env->decisions);
    w->env->exited(w->env->exited_arg);
    return NULL;
}

int worker_start(struct worker *w)
{
    int r = pthread_create(&w->thread, NULL, worker_main, w);

    if (r != 0) {
        log_error("worker %d: cannot start its thread: %s", w->id, strerror(r));
        return ERR_IO;
    }
    w->started = 1;
    return 0;
}

void worker_stop(struct worker *w)
{
    event_active(w->ev_stop, 0, 0);
}

void worker_join(struct worker *w)
{
    if (w->started)
        pthread_join(w->thread, NULL);
    w->started = 0;
}

void worker_free(struct worker *w)
{
    if (w == NULL)
        return;
    worker_join(w);
    if (w->listeners != NULL) {
        for (size_t i = 0; i < w->env->n_ep; i++)
            tcp_free(w->listeners[i]);
    }
    /* Before the answers below: an intake hands its acker back here. */
    for (size_t i = 0; w->intakes != NULL && i < w->env->n_ep; i++)
        http_intake_free(w->intakes[i]);
    free(w->intakes);
    udp_free(w->udp);
    pipeline_free(w->pipe);
    evloop_event_free(&w->ev_wake);
    evloop_event_free(&w->ev_stop);
    evloop_event_free(&w->ev_mappings);
    evloop_event_free(&w->ev_answers);
    evloop_event_free(&w->ev_tap);
    evloop_event_free(&w->ev_notify);
    mapping_set_unref(w->mappings_next);
    pthread_mutex_destroy(&w->mappings_lock);
    /* The delivery thread has ended (it posts answers): those it posted after
     * this loop's end are for inputs gone by now. */
    for (size_t i = 0; i < w->answers.n; i++)
        worker_answer(w, &w->answers.v[i]);
    while (!TAILQ_EMPTY(&w->released)) {
        struct input_acker *a = TAILQ_FIRST(&w->released);

        TAILQ_REMOVE(&w->released, a, released_link);
        free(a);
    }
    free(w->answers.v);
    free(w->answering.v);
    pthread_mutex_destroy(&w->answers_lock);
    if (w->base != NULL) {
        /* A TLS connection closed just before the stop (its bufferevent has
         * deferred callbacks) is only released on the loop's next turn;
         * event_base_free alone would drop that turn and leak it. Every
         * event with a callback of ours is gone by now. */
        event_base_loop(w->base, EVLOOP_NONBLOCK);
        event_base_free(w->base);
    }
    free(w->listeners);
    free(w->ep_bytes);
    free(w);
}
