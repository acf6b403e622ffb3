/* The delivery thread: the wiring of the delivery state machine (job.h)
 * to the real collaborators. Its loop wakes when a worker's push makes the
 * decision queue non-empty, and when the queue is closed
 * (queue_set_notify): then it ends once the queue is drained and no
 * decision is in flight (in dry-run), or once every decision is in the
 * spool (direct, orchestrator: what the spool holds is sent again at the
 * next start).
 *
 * What happens to each decision (duplicate window, spool, lookup,
 * dispatch, retries, dead letters, audit lines) is job.c's. This file
 * drains the queue, pauses it while the machine holds alerts for spool
 * space (the queue fills and TCP/TLS inputs stop reading), and gives the
 * machine its ops: the spool, the identity layer, the dispatcher, the
 * audit and dead-letter files, the clock, libevent timers.
 *
 * Each record is decoded and its decisions copied into jobs (one
 * allocation per decision: decisions are rare), so the record goes back to
 * the queue at once and the workers are not held up by an identity lookup
 * that completes later from the loop.
 *
 * Counters: the thread's own block, registered in delivery_new and handed
 * to the identity layer and the machine, is written only from the thread
 * once it has started (stats blocks have a single writer). A SIGHUP is
 * counted here, as reloads or reload_failures, once the directory and the
 * audit log are done, with what the daemon says of the configuration and
 * the mappings (delivery_reload), and sets the gauges last_reload_ok and
 * last_reload_success (which delivery_new sets for the start). The gauges
 * of the spool and of the machine (jobs_gauges) are set every second, from
 * the thread, for the status endpoint. What a reload needs of the new
 * configuration, two paths, is copied into the pending request: the daemon
 * frees that configuration at once. */
#include "delivery.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "audit.h"
#include "core/clock.h"
#include "core/evloop.h"
#include "core/http.h"
#include "core/log.h"
#include "core/stats.h"
#include "decide/decision.h"
#include "dedup.h"
#include "dispatch.h"
#include "errors.h"
#include "identity/identity.h"
#include "action.h"
#include "decide/correlate.h"
#include "approval.h"
#include "job.h"
#include "mapping_counts.h"
#include "spool.h"

/* The ring holds this many of the largest records without policy blocks
 * (real ones take a few hundred bytes: some ten thousand of those), at
 * least 8 of the largest with them, and at least DELIVERY_RING_MIN. It is allocated once and, under
 * a sustained load, walked whole: this is what the queue costs in memory. */
#define DELIVERY_RING_RECORDS 128
#define DELIVERY_RING_MIN     ((size_t)4 << 20)
/* Records handled per loop iteration before the loop gets a turn (reload
 * events) and the handler re-activates itself. */
#define DELIVERY_BATCH 256
/* How often a held decision tries the spool again. */
#define DELIVERY_SPOOL_RETRY_MS 1000
/* How often the gauges of the spool and of the machine are set. */
#define DELIVERY_GAUGES_S 1

/* A message whose input waits to hear that its alerts are durable
 * (decision_ack): answered once every job of its record has settled. */
struct delivery_ack {
    struct decision_ack ack;
    size_t left;                   /* jobs not yet settled */
    struct decision_answer answer; /* durable: every job settled so far was */
};

/* What the daemon asked of the next reload (delivery_reload). */
struct delivery_reload_req {
    int asked;         /* a reload is pending */
    int failed;        /* the configuration or the mappings did not load */
    int has_paths;     /* a configuration loaded: the two paths below apply */
    char *static_file; /* identity.static.file (NULL: the file in use) */
    char *audit_file;  /* audit.file (NULL: no audit log) */
};

struct delivery {
    struct queue *q;
    struct event_base *base;
    struct event *ev_drain;   /* activated by a push or the close (queue notify) */
    struct event *ev_reload;  /* activated by delivery_reload */
    struct event *ev_give_up; /* stopping with held alerts: limits.drain_timeout_s */
    struct event *ev_gauges;  /* every DELIVERY_GAUGES_S */
    int drain_timeout_s;
    size_t max_in_flight; /* jobs taken and not yet durable: limits.queue_messages */
    int capped;           /* the drain stopped at max_in_flight */
    int giving_up;        /* ev_give_up armed */
    int gave_up;          /* it fired: the held alerts are lost */
    struct identity *id;
    struct audit *audit;
    const struct audit_config *audit_cfg; /* the running one (its hash settings) */
    char *audit_file;                     /* the file audit writes to; NULL: none */
    int live;                             /* direct or orchestrator: spool and send */
    struct http *http;                    /* live, or a network resolver */
    struct dispatch *dispatch;
    struct actions *actions; /* live: policies' webhooks and emails */
    struct spool *spool;
    struct audit *dead; /* the dead-letter file (live) */
    struct dedup *dedup;
    struct stats *stats;
    struct mapping_counts *per_mapping; /* every decision taken, by mapping */
    struct job_ops ops;                 /* ctx: this */
    struct jobs *jobs;
    delivery_ack_fn ack_fn; /* answers decision_acks; NULL: none asked */
    void *ack_arg;
    void (*reload_done)(void *arg, int ok); /* NULL: nobody asked */
    void *reload_done_arg;
    int no_pause; /* atomic: delivery_stop_intake_pause was called */
    pthread_mutex_t reload_lock;
    struct delivery_reload_req reload; /* guarded by reload_lock; taken by the thread */
    /* delivery_set_policies: the set jobs expand decisions with next,
     * guarded by reload_lock, taken by the thread (policies_new); the
     * counter the policies count in (fixed at the start). */
    struct mapping_set *policies_next;
    int policies_new;
    struct correlate *correlate;
    /* The secret of approval links, read (or made) in spool.dir once the
     * policies have an approval (live only). */
    struct approval_secret approval_secret;
    int approval_secret_loaded;
    const char *spool_dir;
    pthread_t thread;
    int started;
    void (*done)(void *arg);
    void *done_arg;
};

/* A machine's timer (job_ops.timer_*): a libevent timer and what it calls. */
struct delivery_timer {
    struct event *ev;
    void (*fire)(void *arg);
    void *arg;
};

static struct log_ratelimit delivery_rl = LOG_RATELIMIT_INIT(60, 1);

const char *delivery_dry_run_outcome(enum identity_status status)
{
    return job_dry_run_outcome(status);
}

/* Copies s (NULL stays NULL) to *out. Returns 0 or ERR_NOMEM. */
static int delivery_dup(const char *s, char **out)
{
    *out = s != NULL ? strdup(s) : NULL;
    return s != NULL && *out == NULL ? ERR_NOMEM : 0;
}

/* The loop ends once the queue is closed and drained and no job waits
 * for the spool. Alerts held for spool space keep it waiting up to
 * limits.drain_timeout_s (the hold timer goes on trying the spool); then
 * it ends without them (jobs_free logs each as lost, with its key). */
static void delivery_check_done(struct delivery *r)
{
    struct timeval give_up = {r->drain_timeout_s, 0};

    if (jobs_in_flight(r->jobs) != jobs_held(r->jobs) || !queue_done(r->q))
        return;
    if (jobs_held(r->jobs) == 0 || r->gave_up) {
        event_base_loopbreak(r->base);
        return;
    }
    if (!r->giving_up) {
        r->giving_up = 1;
        log_warning("stopping with %zu alerts held for spool space: waiting up to %d s "
                    "(limits.drain_timeout_s) for the spool to take them",
                    jobs_held(r->jobs), r->drain_timeout_s);
        evtimer_add(r->ev_give_up, &give_up);
    }
}

static void delivery_on_give_up(evutil_socket_t fd, short what, void *arg)
{
    struct delivery *r = arg;

    (void)fd;
    (void)what;
    r->gave_up = 1;
    delivery_check_done(r);
}

/* ---- the machine's ops ---- */

static int delivery_op_spool_append(void *ctx, struct str payload, spool_durable_cb cb, void *arg,
                                    uint64_t *id)
{
    struct delivery *r = ctx;

    return spool_append(r->spool, payload, cb, arg, id);
}

static void delivery_op_spool_complete(void *ctx, uint64_t id)
{
    struct delivery *r = ctx;

    spool_complete(r->spool, id);
}

static void delivery_op_spool_recovered(void *ctx,
                                        void (*each)(void *arg, uint64_t id, struct str payload,
                                                     int done, int64_t age_ms),
                                        void *arg)
{
    struct delivery *r = ctx;

    spool_recovered(r->spool, each, arg);
}

static void delivery_op_resolve(void *ctx, struct str user, enum user_kind kind, identity_cb cb,
                                void *arg)
{
    struct delivery *r = ctx;

    identity_resolve(r->id, user, kind, cb, arg);
}

static int delivery_op_send(void *ctx, const struct dispatch_alert *a, dispatch_cb cb, void *arg)
{
    struct delivery *r = ctx;

    if (a->action != NULL)
        return actions_send(r->actions, a->action, a->values, a->key, a->occurred, cb, arg);
    return dispatch_send(r->dispatch, a, cb, arg);
}

/* The dead-letter file's size counts against spool.max_bytes with the
 * spool's segments, and is the dead_letter_bytes gauge: after its open,
 * each write (a cut one too) and each reopen. */
static void delivery_dead_bytes(struct delivery *r)
{
    size_t n = audit_bytes(r->dead);

    if (r->spool != NULL)
        spool_share_cap(r->spool, n);
    stats_set(r->stats, STAT_dead_letter_bytes, n);
}

/* The gauges scrapes read: how much the spool holds, and the machine's
 * (jobs_gauges). The spool's counts change with every append and
 * completion: a second's delay costs nothing and keeps them off that path. */
static void delivery_gauges(struct delivery *r)
{
    if (r->spool != NULL) {
        stats_set(r->stats, STAT_spool_pending, spool_pending(r->spool));
        stats_set(r->stats, STAT_spool_bytes, spool_bytes(r->spool));
    }
    jobs_gauges(r->jobs);
    if (r->correlate != NULL) {
        struct correlate_stats cs;

        correlate_stats(r->correlate, &cs);
        stats_set(r->stats, STAT_correlation_keys, cs.keys);
        stats_set(r->stats, STAT_correlation_evictions, cs.evictions);
    }
}

static void delivery_on_gauges(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    delivery_gauges(arg);
}

/* A dead-letter line is written durably (audit_new's durable): 0 means
 * synced, so the machine may complete the alert in the spool. */
static int delivery_op_audit(void *ctx, int to_dead, const struct audit_record *ar)
{
    struct delivery *r = ctx;
    struct audit *a = to_dead ? r->dead : r->audit;
    int rc;

    if (a == NULL)
        return JOB_AUDIT_NONE;
    rc = audit_write(a, ar);
    if (to_dead)
        delivery_dead_bytes(r);
    return rc;
}

static struct timespec delivery_op_realtime(void *ctx)
{
    struct timespec now;

    (void)ctx;
    clock_gettime(CLOCK_REALTIME, &now);
    return now;
}

static int delivery_op_random(void *ctx, uint64_t *out)
{
    (void)ctx;
    return RAND_bytes((unsigned char *)out, sizeof(*out)) == 1 ? 0 : ERR_IO;
}

static void delivery_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct delivery_timer *t = arg;

    (void)fd;
    (void)what;
    t->fire(t->arg);
}

static int delivery_op_timer_new(void *ctx, void (*fire)(void *arg), void *arg, void **out)
{
    struct delivery *r = ctx;
    struct delivery_timer *t = calloc(1, sizeof(*t));

    *out = NULL;
    if (t == NULL)
        return ERR_NOMEM;
    t->ev = evtimer_new(r->base, delivery_on_timer, t);
    if (t->ev == NULL) {
        free(t);
        return ERR_NOMEM;
    }
    t->fire = fire;
    t->arg = arg;
    *out = t; /* transferred */
    return 0;
}

static void delivery_op_timer_arm(void *ctx, void *tp, int64_t ms)
{
    struct delivery_timer *t = tp;
    struct timeval tv = clock_tv(ms);

    (void)ctx;
    /* libevent fails only to grow its timer heap, by one slot, for a timer
     * not yet pending: out of memory then, and the process has bigger
     * troubles; the job set's timers are made up front (job.h). */
    if (evtimer_add(t->ev, &tv) == -1)
        log_limited(&delivery_rl, LOG_LVL_ERROR, "out of memory: a delivery timer was not armed");
}

static int delivery_op_timer_pending(void *ctx, void *tp)
{
    struct delivery_timer *t = tp;

    (void)ctx;
    return t != NULL && evtimer_pending(t->ev, NULL);
}

static void delivery_op_timer_free(void *ctx, void **tp)
{
    struct delivery_timer *t = *tp;

    (void)ctx;
    if (t == NULL)
        return;
    evloop_event_free(&t->ev);
    free(t);
    *tp = NULL;
}

/* Also where a refusal of the spool lands: from then on the queue is
 * blocked, so inputs pause at their next message instead of filling the
 * queue (RELP stops answering, TCP stops reading), until the held alerts
 * are in the spool. A stopping agent takes everything (delivery_stop_intake_pause). */
static void delivery_op_settled(void *ctx)
{
    struct delivery *r = ctx;

    if (jobs_held(r->jobs) > 0 && !__atomic_load_n(&r->no_pause, __ATOMIC_ACQUIRE))
        queue_block(r->q, 1);
    delivery_check_done(r);
}

static void delivery_op_resume(void *ctx)
{
    struct delivery *r = ctx;

    queue_block(r->q, 0);
    event_active(r->ev_drain, 0, 0);
}

static void delivery_answer(struct delivery *r, struct delivery_ack *a)
{
    if (r->ack_fn != NULL)
        r->ack_fn(r->ack_arg, &a->ack, a->answer);
    free(a);
}

/* A job is durable (or lost): its message may be answered, and the queue
 * may be read again when the in-flight cap had stopped it. */
static void delivery_op_job_settled(void *ctx, void *intake, unsigned index, int durable,
                                    int duplicate)
{
    struct delivery *r = ctx;
    struct delivery_ack *a = intake;

    if (a != NULL) {
        a->answer.durable &= durable;
        if (duplicate)
            a->answer.duplicates |= 1u << index;
        if (--a->left == 0)
            delivery_answer(r, a);
    }
    if (r->capped) {
        r->capped = 0;
        event_active(r->ev_drain, 0, 0);
    }
}

/* The record's ack, when its input waits for one, to tag jobs[0..n) with:
 * the answer goes out once all have settled (at once when there are none:
 * every decision was dropped, and the answer is "not durable"). A record
 * with an ack that cannot be tracked for lack of memory is answered "not
 * durable" at once: the sender keeps the message and sends it again.
 * index[i]: which decision of the record jobs[i] is for (several actions
 * of one decision share it). */
static void delivery_track(struct delivery *r, const struct decision_ack *ack, struct job **jobs,
                           const unsigned *index, size_t n, int all_taken)
{
    struct delivery_ack *a;

    if (ack->owner == 0)
        return;
    a = malloc(sizeof(*a));
    if (a == NULL) {
        if (r->ack_fn != NULL)
            r->ack_fn(r->ack_arg, ack, (struct decision_answer){0, 0, DECISION_APPROVAL_NONE});
        return;
    }
    *a = (struct delivery_ack){*ack, n, {all_taken, 0, DECISION_APPROVAL_NONE}};
    if (n == 0) {
        delivery_answer(r, a);
        return;
    }
    for (size_t i = 0; i < n; i++)
        job_set_intake(jobs[i], a, index[i]);
}

/* Approvals need the secret of their links: read once the policies have
 * one (a small file in spool.dir, made at the first start that needs it). */
static void delivery_approval_secret(struct delivery *r, const struct mapping_set *set)
{
    if (r->approval_secret_loaded || r->spool_dir == NULL || set == NULL ||
        !policy_needs_approvals(set))
        return;
    if (approval_secret_load(r->spool_dir, &r->approval_secret) != 0)
        return; /* logged: approvals are sent and decided once it loads (a reload) */
    r->approval_secret_loaded = 1;
    jobs_set_approval_secret(r->jobs, &r->approval_secret);
    actions_set_approval_secret(r->actions, &r->approval_secret);
}

/* The policies delivery_set_policies handed over last, when new: jobs
 * made from now on expand with them. */
static void delivery_take_policies(struct delivery *r)
{
    struct mapping_set *set = NULL;
    int fresh;

    pthread_mutex_lock(&r->reload_lock);
    fresh = r->policies_new;
    if (fresh) {
        set = r->policies_next;
        r->policies_next = NULL;
        r->policies_new = 0;
    }
    pthread_mutex_unlock(&r->reload_lock);
    if (!fresh)
        return;
    delivery_approval_secret(r, set);
    jobs_set_policies(r->jobs, set, r->correlate);
    mapping_set_unref(set);
}

/* An approver's decision (decision_approval): the jobs decide it, and its
 * ack is answered once what it releases is durable (or at once). Returns
 * whether rec was one (released then). */
static int delivery_take_approval(struct delivery *r, struct str rec)
{
    struct decision_approval a;
    struct delivery_ack *ack = NULL;
    struct job *jobs[POLICY_MAX_ACTIONS];
    size_t n = 0;
    int rc = decision_approval_read(rec, &a), outcome;

    if (rc == 0)
        return 0;
    if (rc < 0) {
        log_limited(&delivery_rl, LOG_LVL_ERROR, "a corrupt approval record was dropped");
        queue_release(r->q);
        return 1;
    }
    if (a.ack.owner != 0) {
        ack = malloc(sizeof(*ack));
        if (ack != NULL)
            *ack = (struct delivery_ack){a.ack, 0, {1, 0, DECISION_APPROVAL_DECIDED}};
    }
    outcome = r->spool != NULL ? jobs_approval_decide(r->jobs, &a, jobs, POLICY_MAX_ACTIONS, &n)
                               : DECISION_APPROVAL_UNAVAILABLE;
    queue_release(r->q);
    if (n > 0) {
        /* What it releases: the last of them to be durable answers
         * (delivery_op_job_settled). */
        for (size_t i = 0; ack != NULL && i < n; i++)
            job_set_intake(jobs[i], ack, 0);
        if (ack != NULL)
            ack->left = n;
        jobs_start(r->jobs, jobs, n);
        return 1;
    }
    if (ack != NULL) {
        ack->answer.approval = outcome;
        delivery_answer(r, ack);
    } else if (a.ack.owner != 0 && r->ack_fn != NULL) {
        r->ack_fn(r->ack_arg, &a.ack, (struct decision_answer){0, 0, DECISION_APPROVAL_NONE});
    }
    return 1;
}

/* Copies the record's decisions out, releases it, then starts each: one
 * job per decision, or one per action of its policy (jobs_expand). */
static void delivery_take(struct delivery *r, struct str rec)
{
    struct job *jobs[MAPPING_MAX_DECISIONS * POLICY_MAX_ACTIONS];
    unsigned index[MAPPING_MAX_DECISIONS * POLICY_MAX_ACTIONS];
    struct decision_record d;
    struct decision_ack ack = {0};
    size_t n = 0, pos = 0, made, decisions = 0;
    int rc = 0, all_taken = 1;

    delivery_take_policies(r);
    if (delivery_take_approval(r, rec))
        return;
    /* decision_next checks the whole record first: all or nothing. */
    while (decisions < MAPPING_MAX_DECISIONS && (rc = decision_next(rec, &pos, &d)) == 0) {
        ack = d.ack;
        mapping_counts_add(r->per_mapping, d.mapping);
        if (jobs_expand(r->jobs, &d, jobs + n, sizeof(jobs) / sizeof(jobs[0]) - n, &made) == 0) {
            for (size_t i = 0; i < made; i++)
                index[n + i] = (unsigned)decisions;
            n += made;
            decisions++;
            continue;
        }
        decisions++;
        all_taken = 0;
        stats_add(r->stats, STAT_decisions_dropped, 1);
        log_limited(&delivery_rl, LOG_LVL_ERROR,
                    "out of memory: a decision of mapping %.*s was dropped", (int)d.mapping.len,
                    d.mapping.p);
    }
    if (rc == ERR_INVALID)
        log_limited(&delivery_rl, LOG_LVL_ERROR, "a corrupt decision record was dropped");
    queue_release(r->q);
    delivery_track(r, &ack, jobs, index, n, all_taken);
    jobs_start(r->jobs, jobs, n);
}

static void delivery_on_drain(evutil_socket_t fd, short what, void *arg)
{
    struct delivery *r = arg;
    struct str rec;

    (void)fd;
    (void)what;
    /* Blocking and unblocking happen on this thread only, so a stop cannot
     * lose the race with a refusal that blocks the queue again. */
    if (__atomic_load_n(&r->no_pause, __ATOMIC_ACQUIRE))
        queue_block(r->q, 0);
    for (int i = 0; i < DELIVERY_BATCH; i++) {
        /* Held for spool space: the queue waits (backpressure), unless
         * the agent is stopping: then what is left is taken (and held too
         * if it does not fit), so that the workers and the stop can end
         * (jobs_free reports what was never spooled). */
        if (jobs_held(r->jobs) > 0 && !__atomic_load_n(&r->no_pause, __ATOMIC_ACQUIRE))
            return;
        /* What is taken and not yet durable is lost on a crash like what
         * waits in the queue: both stay within limits.queue_messages. */
        if (jobs_in_flight(r->jobs) >= r->max_in_flight &&
            !__atomic_load_n(&r->no_pause, __ATOMIC_ACQUIRE)) {
            r->capped = 1;
            return;
        }
        if (queue_peek(r->q, &rec) != 0) {
            delivery_check_done(r);
            return;
        }
        delivery_take(r, rec);
    }
    event_active(r->ev_drain, 0, 0);
}

/* From the pushing worker's thread. */
static void delivery_notify(void *arg)
{
    struct delivery *r = arg;

    event_active(r->ev_drain, 0, 0);
}

/* audit.file changed: the new file is opened with the running hash
 * settings; only when it opens does it replace the old one. file (NULL: no
 * audit log) is transferred. Returns 0 or the audit_open error. */
static int delivery_move_audit(struct delivery *r, char *file)
{
    struct audit_config ac = *r->audit_cfg;
    struct audit *a = NULL;
    int rc;

    ac.file = file;
    rc = audit_open(&ac, &a);
    if (rc != 0) {
        log_error("SIGHUP: the audit log stays %s", r->audit_file ? r->audit_file : "off");
        free(file);
        return rc;
    }
    audit_free(r->audit);
    r->audit = a; /* transferred */
    free(r->audit_file);
    r->audit_file = file; /* transferred */
    log_info("SIGHUP: the audit log is now %s", file ? file : "off (no audit.file)");
    return 0;
}

static int delivery_same_path(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* Every part is reloaded whatever became of the others, then the reload
 * is counted once. The dead-letter file is reopened like the audit log
 * (logrotate renamed it, or `create` made a new one); its path is
 * spool.dead_letter as the agent started, like the rest of spool. */
static void delivery_log_incomplete(const struct delivery *r, const struct delivery_reload_req *req,
                                    int directory, int audit, int dead);

static void delivery_on_reload(evutil_socket_t fd, short what, void *arg)
{
    struct delivery *r = arg;
    struct delivery_reload_req req;
    int directory, audit, dead;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&r->reload_lock);
    req = r->reload;
    r->reload = (struct delivery_reload_req){0};
    pthread_mutex_unlock(&r->reload_lock);
    /* The request of an activation that came after this thread had already
     * taken it (with the one before): done and counted. */
    if (!req.asked)
        return;
    /* identity_reload logs what it did. */
    directory = !req.has_paths || identity_reload(r->id, req.static_file) != 0;
    if (req.has_paths && !delivery_same_path(req.audit_file, r->audit_file)) {
        audit = delivery_move_audit(r, req.audit_file) != 0;
        req.audit_file = NULL; /* transferred */
    } else {
        audit = r->audit != NULL && audit_reopen(r->audit) != 0;
    }
    dead = audit_reopen(r->dead) != 0;
    delivery_dead_bytes(r);
    free(req.static_file);
    free(req.audit_file);
    stats_set(r->stats, STAT_last_reload_ok, !req.failed && !directory && !audit && !dead);
    if (!req.failed && !directory && !audit && !dead) {
        stats_add(r->stats, STAT_reloads, 1);
        stats_set(r->stats, STAT_last_reload_success, (uint64_t)(clock_wall_ms() / 1000));
        log_info("SIGHUP: reload complete%s%s", r->audit != NULL ? ", the audit log reopened" : "",
                 r->dead != NULL ? ", the dead-letter file reopened" : "");
    } else {
        stats_add(r->stats, STAT_reload_failures, 1);
        delivery_log_incomplete(r, &req, directory, audit, dead);
    }
    if (r->reload_done != NULL)
        r->reload_done(r->reload_done_arg, !req.failed && !directory && !audit && !dead);
}

void delivery_set_reload_done(struct delivery *r, void (*fn)(void *arg, int ok), void *arg)
{
    r->reload_done = fn;
    r->reload_done_arg = arg;
}

/* What a failed reload kept (each part logged its own reason already). */
static void delivery_log_incomplete(const struct delivery *r, const struct delivery_reload_req *req,
                                    int directory, int audit, int dead)
{
    log_error("SIGHUP: reload incomplete: the mappings and TLS certificates %s, the static "
              "directory %s, the audit log %s%s",
              req->failed ? "kept where they did not load (above)" : "reloaded",
              directory ? "kept" : "reloaded", audit ? "kept on its previous file" : "reopened",
              r->dead == NULL ? ""
              : dead          ? ", the dead-letter file kept on its previous file"
                              : ", the dead-letter file reopened");
}

int delivery_new(const struct config *cfg, struct delivery **out)
{
    struct delivery *r;
    /* Sized for records without policy blocks (the common case); one at
     * the largest with blocks always fits a few times over. */
    size_t ring = DELIVERY_RING_RECORDS * (size_t)DECISION_RECORD_BASE_MAX;
    int rc = ERR_NOMEM;

    *out = NULL;
    if (ring < DELIVERY_RING_MIN)
        ring = DELIVERY_RING_MIN;
    if (ring < 8 * (size_t)DECISION_RECORD_MAX)
        ring = 8 * (size_t)DECISION_RECORD_MAX;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return ERR_NOMEM;
    pthread_mutex_init(&r->reload_lock, NULL);
    r->audit_cfg = &cfg->audit;
    rc = queue_new(cfg->limits.queue_messages, ring, &r->q);
    if (rc != 0) {
        log_error("cannot create the decision queue (%zu records, %zu bytes): %s",
                  cfg->limits.queue_messages, ring, err_name(rc));
        goto out;
    }
    rc = ERR_NOMEM;
    r->base = event_base_new();
    if (r->base == NULL)
        goto out;
    r->ev_drain = event_new(r->base, -1, 0, delivery_on_drain, r);
    r->ev_reload = event_new(r->base, -1, 0, delivery_on_reload, r);
    r->ev_give_up = evtimer_new(r->base, delivery_on_give_up, r);
    r->ev_gauges = event_new(r->base, -1, EV_PERSIST, delivery_on_gauges, r);
    if (r->ev_drain == NULL || r->ev_reload == NULL || r->ev_give_up == NULL ||
        r->ev_gauges == NULL || mapping_counts_new(&r->per_mapping) != 0)
        goto out;
    r->drain_timeout_s = cfg->limits.drain_timeout_s;
    r->max_in_flight = cfg->limits.queue_messages;
    r->stats = stats_register();
    /* The configuration loaded at start: the last reload gauges' start. */
    stats_set(r->stats, STAT_last_reload_ok, 1);
    stats_set(r->stats, STAT_last_reload_success, (uint64_t)(clock_wall_ms() / 1000));
    r->live = cfg->dispatch.mode != DISPATCH_DRY_RUN;
    r->ops = (struct job_ops){
        .ctx = r,
        .spool_append = delivery_op_spool_append,
        .spool_complete = delivery_op_spool_complete,
        .spool_recovered = delivery_op_spool_recovered,
        .resolve = delivery_op_resolve,
        .send = delivery_op_send,
        .audit = delivery_op_audit,
        .realtime = delivery_op_realtime,
        .random = delivery_op_random,
        .timer_new = delivery_op_timer_new,
        .timer_arm = delivery_op_timer_arm,
        .timer_pending = delivery_op_timer_pending,
        .timer_free = delivery_op_timer_free,
        .settled = delivery_op_settled,
        .resume = delivery_op_resume,
        .job_settled = delivery_op_job_settled,
    };
    rc = dedup_new(cfg->dispatch.dedup_window_s, cfg->dispatch.dedup_max_bytes, &r->dedup);
    if (rc == 0) {
        struct job_config jc = {
            .live = r->live,
            .max_concurrent = cfg->dispatch.max_concurrent,
            .retry_min_s = cfg->dispatch.retry_min_s,
            .retry_max_s = cfg->dispatch.retry_max_s,
            .hold_retry_ms = DELIVERY_SPOOL_RETRY_MS,
        };

        rc = jobs_new(&jc, &r->ops, r->dedup, r->stats, &r->jobs);
    }
    if (rc == 0 && (r->live || identity_uses_network(&cfg->identity)))
        rc = http_new(r->base, &r->http);
    if (rc != 0)
        goto out;
    rc = identity_new(&cfg->identity, r->base, r->http, r->stats, &r->id);
    if (rc != 0)
        goto out;
    /* The audit log is not synced (audit.h); dead letters are. */
    rc = audit_new(&cfg->audit, "audit.file", 0, &r->audit);
    if (rc != 0)
        goto out;
    if (r->live) {
        struct audit_config dead = {.file = cfg->spool.dead_letter};

        rc = dispatch_new(&cfg->dispatch, r->http, &r->dispatch);
        if (rc == 0)
            rc = actions_new(cfg, r->http, identity_graph(r->id), &r->actions);
        if (rc == 0)
            rc = audit_new(&dead, "spool.dead_letter", 1, &r->dead);
        if (rc != 0)
            goto out;
    }
    rc = delivery_dup(cfg->audit.file, &r->audit_file);
    if (rc != 0)
        goto out;
    queue_set_notify(r->q, delivery_notify, r);
    *out = r; /* transferred */
    r = NULL;
out:
    delivery_free(r);
    return rc;
}

/* Done alerts stay in the spool for the duplicate window, and for the
 * policies' longest count window: their counts are rebuilt from it. */
static int64_t delivery_keep_done_ms(struct delivery *r, const struct config *cfg)
{
    int64_t keep = (int64_t)cfg->dispatch.dedup_window_s;
    int64_t counts = r->policies_next != NULL ? policy_longest_window(r->policies_next) : 0;

    return (counts > keep ? counts : keep) * 1000;
}

void delivery_set_policies(struct delivery *r, struct mapping_set *set, struct correlate *c)
{
    if (set != NULL)
        mapping_set_ref(set);
    pthread_mutex_lock(&r->reload_lock);
    mapping_set_unref(r->policies_next);
    r->policies_next = set;
    r->policies_new = 1;
    if (c != NULL)
        r->correlate = c;
    pthread_mutex_unlock(&r->reload_lock);
}

int delivery_open(struct delivery *r, const struct config *cfg)
{
    int rc;

    if (r->live) {
        /* The spool first: it creates spool.dir, where the dead letters go
         * by default. */
        rc = spool_open(&cfg->spool, r->base, r->stats, &r->spool);
        if (rc != 0)
            return rc;
        r->spool_dir = cfg->spool.dir;
        spool_keep_done(r->spool, delivery_keep_done_ms(r, cfg));
        rc = audit_reopen(r->dead);
        if (rc != 0)
            return rc;
        delivery_dead_bytes(r);
    }
    return audit_reopen(r->audit);
}

void delivery_set_ack(struct delivery *r, delivery_ack_fn fn, void *arg)
{
    r->ack_fn = fn;
    r->ack_arg = arg;
}

const struct mapping_counts *delivery_mapping_counts(const struct delivery *r)
{
    return r->per_mapping;
}

struct queue *delivery_queue(struct delivery *r)
{
    return r->q;
}

/* After the loop, on the thread: what is in flight ends here, and stays in
 * the spool for the next start. Lookups and requests still running
 * complete now (as failures, which only free their jobs); jobs waiting on
 * a retry timer are simply freed; jobs held for spool space were never
 * durable: jobs_free counts and logs them as lost. */
static void delivery_stop(struct delivery *r)
{
    jobs_stop(r->jobs);
    identity_free(r->id);
    r->id = NULL;
    http_free(r->http);
    r->http = NULL;
    jobs_free(r->jobs);
    r->jobs = NULL;
    /* What the next start sends again: the operator's first question at a
     * stop. */
    if (r->spool != NULL)
        log_info("stopping: %zu alert%s remain%s in the spool for the next start",
                 spool_pending(r->spool), spool_pending(r->spool) == 1 ? "" : "s",
                 spool_pending(r->spool) == 1 ? "s" : "");
    spool_free(r->spool);
    r->spool = NULL;
}

static void *delivery_main(void *arg)
{
    struct delivery *r = arg;
    struct timeval every = {DELIVERY_GAUGES_S, 0};

    delivery_take_policies(r);
    if (r->spool != NULL)
        jobs_recover(r->jobs);
    delivery_gauges(r);
    event_add(r->ev_gauges, &every);
    /* Only activated events wake it, so it must not end when none is added:
     * delivery_check_done ends it. */
    event_base_loop(r->base, EVLOOP_NO_EXIT_ON_EMPTY);
    delivery_stop(r);
    r->done(r->done_arg);
    return NULL;
}

int delivery_start(struct delivery *r, void (*done)(void *arg), void *arg)
{
    int e;

    r->done = done;
    r->done_arg = arg;
    e = pthread_create(&r->thread, NULL, delivery_main, r);
    if (e != 0) {
        log_error("cannot start the delivery thread: %s", strerror(e));
        return ERR_IO;
    }
    r->started = 1;
    return 0;
}

void delivery_reload(struct delivery *r, const struct config *next, int daemon_failed)
{
    struct delivery_reload_req req = {.failed = next == NULL || daemon_failed};

    if (next != NULL) {
        req.has_paths = delivery_dup(next->identity.static_dir.file, &req.static_file) == 0 &&
                        delivery_dup(next->audit.file, &req.audit_file) == 0;
        if (!req.has_paths) {
            log_error("SIGHUP: out of memory: the static directory and the audit log stay as they "
                      "are");
            req.failed = 1;
        }
    }
    pthread_mutex_lock(&r->reload_lock);
    r->reload.asked = 1;
    r->reload.failed |= req.failed;
    if (req.has_paths) {
        /* The later configuration wins: swap, and free the earlier paths. */
        struct delivery_reload_req old = r->reload;

        r->reload.has_paths = 1;
        r->reload.static_file = req.static_file;
        r->reload.audit_file = req.audit_file;
        req.static_file = old.static_file;
        req.audit_file = old.audit_file;
    }
    pthread_mutex_unlock(&r->reload_lock);
    free(req.static_file);
    free(req.audit_file);
    event_active(r->ev_reload, 0, 0);
}

void delivery_stop_intake_pause(struct delivery *r)
{
    __atomic_store_n(&r->no_pause, 1, __ATOMIC_RELEASE);
    event_active(r->ev_drain, 0, 0);
}

void delivery_free(struct delivery *r)
{
    if (r == NULL)
        return;
    if (r->started)
        pthread_join(r->thread, NULL);
    /* After the thread (delivery_stop), nothing is in flight; without one
     * (a start that failed) nothing ever was. */
    if (r->jobs != NULL)
        jobs_stop(r->jobs);
    identity_free(r->id);
    http_free(r->http);
    jobs_free(r->jobs);
    spool_free(r->spool);
    dispatch_free(r->dispatch);
    actions_free(r->actions);
    mapping_set_unref(r->policies_next);
    dedup_free(r->dedup);
    mapping_counts_free(r->per_mapping);
    audit_free(r->dead);
    audit_free(r->audit);
    free(r->audit_file);
    free(r->reload.static_file);
    free(r->reload.audit_file);
    pthread_mutex_destroy(&r->reload_lock);
    evloop_event_free(&r->ev_drain);
    evloop_event_free(&r->ev_reload);
    evloop_event_free(&r->ev_give_up);
    evloop_event_free(&r->ev_gauges);
    if (r->base != NULL)
        event_base_free(r->base);
    queue_free(r->q);
    free(r);
}
