/* The delivery state machine (job.h). Each event has its transition
 * function below (job_durable, job_spool_refused, job_resolved, ...); the
 * callbacks the collaborators call (spool_durable_cb, identity_cb,
 * dispatch_cb, the timers) only route to them. */
#include "job.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/clock.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/retry.h"
#include "approval.h"
#include "cooldown.h"
#include "decide/correlate.h"
#include "decide/template.h"
#include "errors.h"

struct jobs {
    struct job_config cfg;
    const struct job_ops *ops;
    struct dedup *dedup;
    struct stats *stats;
    struct jsonw payload;           /* a spool record being written */
    size_t in_flight;               /* jobs not yet ended (dry-run) or not yet spooled (live) */
    size_t n_held;                  /* of those, held for spool space */
    size_t n_retrying;              /* of those, held ones sent to the spool again, unanswered */
    struct job *all;                /* every job */
    struct job *held, **held_end;   /* HELD, oldest first */
    struct job *ready, **ready_end; /* READY, oldest first */
    void *hold_timer;               /* held jobs try the spool again */
    int dispatching;                /* SENDING jobs, at most cfg.max_concurrent */
    int stopping;                   /* jobs_stop was called: callbacks only free */
    int64_t failing_since;          /* the dispatch_failing_since gauge: Unix s, 0: not failing */
    struct mapping_set *policies;   /* the actions decisions expand to (jobs_set_policies) */
    struct correlate *correlate;    /* rebuilt from the spool at recovery; NULL: none */
    struct decision_hasher *hasher; /* action keys */
    struct cooldown *cooldown;      /* policy actions' cooldown_s */
    const struct approval_secret *approval_secret; /* NULL: approvals cannot be decided */
};

/* The intake tag of a duplicate that came while the job that first had its
 * key was not yet durable: it is answered with that job. */
struct job_follower {
    struct job_follower *next;
    void *intake;
    unsigned index;
};

/* One decision from its record to its last audit line. d's texts are
 * copies in text[] (NUL-terminated). */
struct job {
    struct jobs *s;
    struct job *prev, *next; /* s->all */
    struct job *queue_next;  /* s->held, s->ready or a recovery list (one at a time) */
    enum job_state state;
    struct decision_record d;
    uint64_t spool_id;
    int spooled;  /* in the spool: an end without completion is resent later */
    int retrying; /* was HELD, sent to the spool again: counted in s->n_retrying */
    int attempts; /* dispatch requests made */
    int failures; /* failed tries (dispatch or lookup; then dead-letter writes): the backoff's
                     exponent */
    void *wait;   /* the retry timer, once needed */
    /* DEAD_WAIT: the dead-letter line to write again (outcome: static text). */
    const char *dead_outcome;
    char *dead_detail;
    int dead_status;
    void *intake; /* told once the job stops counting in flight (job_ops.job_settled) */
    unsigned intake_index;
    struct job_follower *followers; /* duplicates answered when this job settles */
    char *email;                    /* once resolved */
    const char *resolver;           /* what found it (static text: identity.h) */
    /* A policy's action (NULL: today's one SafeTitan event), from set (a
     * reference: a reload may replace the set while the job waits); the
     * decision's policy block read back (its priority, why, and the fields
     * templates name); the action's idempotency key. missing: a recovered
     * action the policies no longer have (dead-lettered once resolved). */
    const struct policy_action *action;
    struct mapping_set *set;
    struct policy_block block;
    int missing;
    int cooled; /* its cooldown_s let it through once: a retry is no repeat */
    /* An approval's released actions not yet durable (it ends when the
     * last is), and a released action's approval. */
    size_t children;
    struct job *parent;
    /* The marker of an approval's denial: spooled, then it ends its
     * approval and itself (nothing is sent). */
    int marker;
    const char *key; /* action_key, or d.key without an action */
    char action_key[DECISION_KEY_SIZE];
    char text[];
};

static struct log_ratelimit job_rl = LOG_RATELIMIT_INIT(60, 1);
static struct log_ratelimit job_rl_full = LOG_RATELIMIT_INIT(60, 1);
static struct log_ratelimit job_rl_retry = LOG_RATELIMIT_INIT(60, 1);
static struct log_ratelimit job_rl_dead = LOG_RATELIMIT_INIT(60, 1);

static const char *const job_state_names[JOB_STATES] = {
    [JOB_NEW] = "new",
    [JOB_SPOOLING] = "spooling",
    [JOB_HELD] = "held",
    [JOB_RESOLVING] = "resolving",
    [JOB_READY] = "ready",
    [JOB_SENDING] = "sending",
    [JOB_WAITING] = "waiting",
    [JOB_DEAD_WAIT] = "dead-letter-wait",
    [JOB_APPROVAL] = "awaiting-approval",
    [JOB_RELEASING] = "releasing",
};

/* The dry run's outcome by enum identity_status. */
static const struct {
    const char *outcome;
    enum stats_counter counter;
} job_dry_outcomes[] = {
    [IDENTITY_FOUND] = {"would-dispatch", STAT_outcome_would_dispatch},
    [IDENTITY_NOT_FOUND] = {"unresolved-user", STAT_outcome_unresolved_user},
    [IDENTITY_ERROR] = {"failed", STAT_outcome_failed},
};

const char *job_state_name(enum job_state st)
{
    return st < JOB_STATES ? job_state_names[st] : "?";
}

const char *job_dry_run_outcome(enum identity_status status)
{
    return job_dry_outcomes[status].outcome;
}

/* Copies s to *at (NUL-terminated), advancing it. */
static struct str job_copy(char **at, struct str s)
{
    char *p = *at;

    if (s.len > 0)
        memcpy(p, s.p, s.len);
    p[s.len] = '\0';
    *at = p + s.len + 1;
    return str_make(p, s.len);
}

static void jobs_hold_timer(void *arg);

int jobs_new(const struct job_config *cfg, const struct job_ops *ops, struct dedup *dedup,
             struct stats *stats, struct jobs **out)
{
    struct jobs *s = calloc(1, sizeof(*s));

    *out = NULL;
    if (s == NULL)
        return ERR_NOMEM;
    s->cfg = *cfg;
    s->ops = ops;
    s->dedup = dedup;
    s->stats = stats;
    s->held_end = &s->held;
    s->ready_end = &s->ready;
    /* Made now, not when the spool first refuses an alert: a hold timer
     * that could not be made then would leave the intake paused for good. */
    if (ops->timer_new(ops->ctx, jobs_hold_timer, s, &s->hold_timer) != 0) {
        free(s);
        return ERR_NOMEM;
    }
    if (decision_hasher_new(&s->hasher) != 0 || cooldown_new(&s->cooldown) != 0) {
        decision_hasher_free(s->hasher);
        ops->timer_free(ops->ctx, &s->hold_timer);
        free(s);
        return ERR_NOMEM;
    }
    jsonw_init(&s->payload, SPOOL_MAX_PAYLOAD);
    *out = s; /* transferred */
    return 0;
}

int job_new(struct jobs *s, const struct decision_record *d, struct job **out)
{
    size_t n = d->source.len + d->transport.len + d->mapping.len + d->rule.len + d->user.len +
               d->event.len + d->key.len + d->policy.len + d->action.len + d->decided.len + 10;
    struct job *job = calloc(1, sizeof(*job) + n);
    char *at;

    *out = NULL;
    if (job == NULL)
        return ERR_NOMEM;
    at = job->text;
    job->s = s;
    job->state = JOB_NEW;
    job->d.received = d->received;
    job->d.user_kind = d->user_kind;
    job->d.source = job_copy(&at, d->source);
    job->d.transport = job_copy(&at, d->transport);
    job->d.mapping = job_copy(&at, d->mapping);
    job->d.rule = job_copy(&at, d->rule);
    job->d.user = job_copy(&at, d->user);
    job->d.event = job_copy(&at, d->event);
    job->d.key = job_copy(&at, d->key);
    job->d.policy = job_copy(&at, d->policy);
    job->d.action = job_copy(&at, d->action);
    job->d.decided = job_copy(&at, d->decided);
    job->key = job->d.key.p;
    job->next = s->all;
    if (s->all != NULL)
        s->all->prev = job;
    s->all = job;
    *out = job;
    return 0;
}

static void job_free(struct job *job)
{
    struct jobs *s = job->s;

    if (job->prev != NULL)
        job->prev->next = job->next;
    else
        s->all = job->next;
    if (job->next != NULL)
        job->next->prev = job->prev;
    s->ops->timer_free(s->ops->ctx, &job->wait);
    policy_block_free(&job->block);
    mapping_set_unref(job->set);
    free(job->email);
    free(job->dead_detail);
    free(job);
}

/* The key of action name of policy for the decision whose key is key: the
 * decision's and the action's names hashed, so each action of an alert is
 * sent (and deduplicated) on its own, and a resend keeps it. */
static void job_action_key(struct jobs *s, struct job *job, struct str policy, struct str action)
{
    decision_key(s->hasher, job->d.key, policy, action, STR_LIT("action"), job->action_key);
    job->key = job->action_key;
}

/* Makes job the one of action a (of set) for its decision's policy block:
 * counts says whether its payload keeps the block's correlation keys (one
 * job per decision does: the counts are rebuilt from the spool once per
 * alert). Returns 0, ERR_INVALID (an unreadable block) or ERR_NOMEM. */
static int job_set_action(struct job *job, struct mapping_set *set, const struct policy_action *a,
                          int counts)
{
    const char *text;

    if (policy_block_read(job->d.policy, &job->block) != 0 || job->block.policy.p == NULL)
        return ERR_INVALID;
    if (!counts)
        json_object_object_del(job->block.json, "corr");
    text = json_object_to_json_string_ext(job->block.json, JSON_C_TO_STRING_PLAIN);
    if (text == NULL)
        return ERR_NOMEM;
    job->d.policy = str_make(text, strlen(text));
    job->d.action = str_make(a->name, strlen(a->name));
    mapping_set_ref(set);
    job->set = set;
    job->action = a;
    job_action_key(job->s, job, job->block.policy, job->d.action);
    return 0;
}

void jobs_set_policies(struct jobs *s, struct mapping_set *set, struct correlate *c)
{
    if (set != NULL)
        mapping_set_ref(set);
    mapping_set_unref(s->policies);
    s->policies = set;
    s->correlate = c;
}

/* The action named name of the priority of policy, in set; NULL when the
 * set no longer has it. */
static const struct policy_action *jobs_find_action(const struct mapping_set *set,
                                                    const struct policy_block *b, struct str name)
{
    struct policy_actions acts;

    if (set == NULL)
        return NULL;
    acts = policy_actions(set, b->policy, b->priority);
    for (size_t i = 0; i < acts.n; i++) {
        if (str_eq(str_make(acts.v[i].name, strlen(acts.v[i].name)), name))
            return &acts.v[i];
    }
    return NULL;
}

int jobs_expand(struct jobs *s, const struct decision_record *d, struct job **out, size_t cap,
                size_t *n)
{
    struct policy_block b = {0};
    struct policy_actions acts = {NULL, 0};
    int rc;

    *n = 0;
    if (d->policy.len > 0 && s->policies != NULL && policy_block_read(d->policy, &b) == 0 &&
        b.policy.p != NULL) {
        acts = policy_actions(s->policies, b.policy, b.priority);
        if (acts.n == 0 && !policy_has(s->policies, b.policy))
            log_limited(&job_rl, LOG_LVL_WARNING,
                        "policy %.*s is no longer loaded: its alert gets one SafeTitan event",
                        (int)b.policy.len, b.policy.p);
        else if (acts.n == 0)
            goto out; /* the priority runs nothing */
    }
    if (acts.n == 0) {
        rc = job_new(s, d, &out[0]);
        *n = rc == 0;
        policy_block_free(&b);
        return rc;
    }
    for (size_t i = 0; i < acts.n && *n < cap; i++) {
        if (acts.v[i].gated)
            continue; /* made when its approval approves */
        rc = job_new(s, d, &out[*n]);
        if (rc == 0 && (rc = job_set_action(out[*n], s->policies, &acts.v[i], *n == 0)) != 0)
            job_free(out[*n]);
        if (rc != 0) {
            while (*n > 0)
                job_free(out[--*n]);
            policy_block_free(&b);
            return rc;
        }
        ++*n;
    }
out:
    policy_block_free(&b);
    return 0;
}

/* The job no longer counts in flight: its alert is durable (spooled, or
 * it needs no spool: a duplicate, a dry run decided, a dead letter), or it
 * is lost (held at a stop). Whoever handed the decision in hears it once. */
static void job_finish(struct job *job);

static void job_settle(struct job *job, int durable, int duplicate)
{
    struct jobs *s = job->s;

    /* A released action is in the spool (or needs none): its approval
     * ends with the last of them, never before (a crash in between keeps
     * the approval pending, and a second decision's actions have the same
     * keys: duplicates). */
    if (job->parent != NULL && !s->stopping) {
        struct job *parent = job->parent;

        job->parent = NULL;
        if (--parent->children == 0)
            job_finish(parent);
    }
    s->in_flight--;
    s->ops->job_settled(s->ops->ctx, job->intake, job->intake_index, durable, duplicate);
    job->intake = NULL;
    while (job->followers != NULL) {
        struct job_follower *f = job->followers;

        job->followers = f->next;
        s->ops->job_settled(s->ops->ctx, f->intake, f->index, durable, 1);
        free(f);
    }
    dedup_settled(s->dedup, job->key, job);
}

/* dup repeats the key of first, which has not settled: dup's intake is
 * answered when first's alert is durable, not before (a resend must not be
 * acknowledged while the alert it repeats could still be lost). Without
 * memory to wait, it is answered as lost: the sender keeps it. */
static void job_follow(struct job *first, struct job *dup)
{
    struct job_follower *f = malloc(sizeof(*f));

    if (f == NULL) {
        dup->s->ops->job_settled(dup->s->ops->ctx, dup->intake, dup->intake_index, 0, 1);
    } else {
        *f = (struct job_follower){first->followers, dup->intake, dup->intake_index};
        first->followers = f;
    }
    dup->intake = NULL;
}

/* The intake may end once no job waits for the spool but the held ones: a
 * full spool must not hold up a stop (jobs_free reports them). */
static void jobs_check_settled(struct jobs *s)
{
    if (s->in_flight == s->n_held)
        s->ops->settled(s->ops->ctx);
}

/* Milliseconds from the job's receipt to now. */
static long job_latency_ms(const struct job *job)
{
    struct timespec now = job->s->ops->realtime(job->s->ops->ctx);
    long ms = (long)(now.tv_sec - job->d.received.tv_sec) * 1000 +
              (now.tv_nsec - job->d.received.tv_nsec) / 1000000;

    return ms > 0 ? ms : 0;
}

/* Writes the job's line with this outcome to the audit log (counted), or
 * to the dead-letter file (to_dead: counted there). Returns the write's
 * result (0 when there is no such file). */
static int job_audit(struct job *job, const char *outcome, const char *detail, int status,
                     int to_dead)
{
    struct jobs *s = job->s;
    struct audit_record ar = {
        .time = job->d.received,
        .source = job->d.source.p,
        .transport = job->d.transport.p,
        .mapping = job->d.mapping.p,
        .rule = job->d.rule,
        .user = job->d.user,
        .email = job->email,
        .resolver = job->email != NULL ? job->resolver : NULL,
        .event = job->d.event,
        .outcome = outcome,
        .detail = detail,
        .key = s->cfg.live ? job->key : NULL,
        .status = status,
        .attempts = job->attempts,
        .latency_ms = job_latency_ms(job),
    };
    char priority[16];

    if (job->block.policy.p != NULL) {
        ar.policy = job->block.policy.p;
        snprintf(priority, sizeof(priority), "%s", policy_priority_name(job->block.priority));
        ar.priority = priority;
        ar.why = job->block.why.p != NULL ? job->block.why.p : "";
        ar.action = job->d.action.p;
    }
    int rc = s->ops->audit(s->ops->ctx, to_dead, &ar);

    if (rc == JOB_AUDIT_NONE)
        return 0;
    if (to_dead)
        stats_add(s->stats, rc == 0 ? STAT_outcome_dead_letter : STAT_dead_letter_errors, 1);
    else
        stats_add(s->stats, rc == 0 ? STAT_audit_lines : STAT_audit_errors, 1);
    return rc;
}

static void job_append(struct job *job);
static void job_resolve(struct job *job);

/* ---- ends ---- */

/* Finished (dispatched or dead-lettered): its completion is journaled (a
 * crash before it is written only means a resend with the same key). */
static void job_finish(struct job *job)
{
    if (job->spooled)
        job->s->ops->spool_complete(job->s->ops->ctx, job->spool_id);
    job_free(job);
}

/* The alert cannot wait in memory (no memory for its timer or its
 * dead-letter line): it is freed without completion, so the spool sends it
 * again at the next start. */
static void job_leave_to_restart(struct job *job)
{
    log_limited(&job_rl, LOG_LVL_ERROR, "out of memory: an alert waits for the next start");
    job->spooled = 0;
    job_free(job);
}

/* The full-jitter backoff after job->failures failed tries. */
static int64_t job_backoff_ms(struct job *job)
{
    struct jobs *s = job->s;
    uint64_t random;

    /* Without random bits the jitter still differs from job to job (jobs
     * retried in the same millisecond must not come back together): the
     * receipt time's nanoseconds, spread over the 64 bits. */
    if (s->ops->random(s->ops->ctx, &random) != 0)
        random = (uint64_t)job->d.received.tv_nsec * 0x9e3779b97f4a7c15ull;
    return retry_backoff_ms((unsigned)job->failures, s->cfg.retry_min_s, s->cfg.retry_max_s,
                            random);
}

static void job_timer(void *arg);

/* Arms the job's retry timer (made on first use). When no timer can be
 * made the job is gone (job_leave_to_restart): the caller's last act. */
static void job_wait(struct job *job, int64_t ms)
{
    struct jobs *s = job->s;

    if (job->wait == NULL && s->ops->timer_new(s->ops->ctx, job_timer, job, &job->wait) != 0) {
        job_leave_to_restart(job);
        return;
    }
    s->ops->timer_arm(s->ops->ctx, job->wait, ms);
}

/* Writes the job's dead-letter line. Only once ops->audit says it is
 * durable is the alert completed in the spool: a crash or a full disk
 * before that leaves it in the spool, never in neither. A line that cannot
 * be written: -> DEAD_WAIT, written again after a backoff (freeing space
 * or rotating the file lets it through without a restart). */
static void job_dead_write(struct job *job, const char *outcome, const char *detail, int status)
{
    int64_t ms;

    if (job_audit(job, outcome, detail, status, 1) == 0) {
        job_finish(job);
        return;
    }
    if (job->state != JOB_DEAD_WAIT) {
        job->state = JOB_DEAD_WAIT;
        job->dead_outcome = outcome;
        job->dead_status = status;
        if (detail != NULL && (job->dead_detail = strdup(detail)) == NULL) {
            job_leave_to_restart(job);
            return;
        }
    }
    job->failures++;
    ms = job_backoff_ms(job);
    log_limited(&job_rl_dead, LOG_LVL_ERROR,
                "mapping %s: alert \"%s\": its dead-letter line was not written: it stays in the "
                "spool and is tried again in %lld ms (dead_letter_errors counts each failure)",
                job->d.mapping.p, job->d.rule.p, (long long)ms);
    job_wait(job, ms);
}

/* Dead-letters the job: the file keeps it with the reason; counted (the
 * outcome once, however often its line has to be written). */
static void job_dead_letter(struct job *job, const char *outcome, enum stats_counter counter,
                            const char *detail, int status)
{
    stats_add(job->s->stats, counter, 1);
    log_limited(&job_rl, LOG_LVL_WARNING,
                "mapping %s: alert \"%s\" %s (%s): written to the dead-letter file",
                job->d.mapping.p, job->d.rule.p, outcome, detail);
    job_audit(job, outcome, detail, status, 0);
    job->failures = 0; /* the dead-letter file's backoff starts afresh */
    job_dead_write(job, outcome, detail, status);
}

/* ---- WAITING, DEAD_WAIT ---- */

/* Event: the retry timer fired. WAITING -> RESOLVING; DEAD_WAIT -> the
 * dead-letter line is written again. */
static void job_approval_expired(struct job *job);

static void job_timer(void *arg)
{
    struct job *job = arg;

    if (job->state == JOB_APPROVAL)
        job_approval_expired(job);
    else if (job->state == JOB_DEAD_WAIT)
        job_dead_write(job, job->dead_outcome, job->dead_detail, job->dead_status);
    else
        job_resolve(job);
}

/* Tries again later: after Retry-After when the far side named a time (a
 * floor, never a licence to hammer: "0" or a past date still waits for the
 * backoff), else after a full-jitter backoff. -> WAITING. */
static void job_retry_later(struct job *job, int64_t retry_after_s, const char *detail, int status)
{
    struct jobs *s = job->s;
    int64_t ms;

    job->failures++;
    stats_add(s->stats, STAT_dispatch_retries, 1);
    ms = job_backoff_ms(job);
    if (retry_after_s * 1000 > ms)
        ms = retry_after_s * 1000;
    job_audit(job, "retry", detail, status, 0);
    log_limited(&job_rl_retry, LOG_LVL_WARNING,
                "mapping %s: alert not delivered yet (%s): trying again in %lld ms (more such "
                "lines are counted in dispatch_retries)",
                job->d.mapping.p, detail, (long long)ms);
    job->state = JOB_WAITING;
    job_wait(job, ms);
}

/* ---- SENDING ---- */

static void job_next_ready(struct jobs *s);

/* The dispatch gauges (jobs_gauges): a 2xx ends a failing period, and the
 * first retryable failure after one starts it. */
static void jobs_set_failing(struct jobs *s, int failing)
{
    if (failing && s->failing_since != 0)
        return;
    s->failing_since = failing ? (int64_t)s->ops->realtime(s->ops->ctx).tv_sec : 0;
    stats_set(s->stats, STAT_dispatch_failing_since, (uint64_t)s->failing_since);
}

/* Event: 2xx. SENDING -> done. */
static void job_sent_ok(struct job *job, const struct dispatch_result *res)
{
    struct jobs *s = job->s;

    stats_add(s->stats, STAT_outcome_dispatched, 1);
    stats_set(s->stats, STAT_last_dispatch_success, (uint64_t)s->ops->realtime(s->ops->ctx).tv_sec);
    jobs_set_failing(s, 0);
    job_audit(job, "dispatched", NULL, res->status, 0);
    job_finish(job);
}

/* ---- approvals ---- */

static int64_t job_received_ms(const struct job *job)
{
    return (int64_t)job->d.received.tv_sec * 1000 + job->d.received.tv_nsec / 1000000;
}

static int64_t job_realtime_ms(struct jobs *s)
{
    struct timespec t = s->ops->realtime(s->ops->ctx);

    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* When an approval's time is up: its alert's receipt plus expires_s (the
 * same after a restart). */
static int64_t job_approval_deadline_ms(const struct job *job)
{
    return job_received_ms(job) + job->action->expires_s * 1000;
}

/* The actions approval job held back, made from its decision into
 * out[0..*n) (not started), each ending the approval once durable. Returns
 * 0 or ERR_NOMEM (none made). */
static int job_release(struct job *job, struct job **out, size_t cap, size_t *n)
{
    struct jobs *s = job->s;
    struct policy_actions acts = policy_actions(job->set, job->block.policy, job->block.priority);
    struct decision_record d = job->d;

    *n = 0;
    d.action = STR_ABSENT; /* job_set_action names each */
    for (size_t i = 0; i < job->action->n_then && *n < cap; i++) {
        size_t at = job->action->then[i];
        struct job *child;

        if (at >= acts.n)
            continue;
        if (job_new(s, &d, &child) != 0) {
            child = NULL;
        } else if (job_set_action(child, job->set, &acts.v[at], 0) != 0) {
            job_free(child);
            child = NULL;
        }
        if (child == NULL) {
            while (*n > 0)
                job_free(out[--*n]);
            return ERR_NOMEM;
        }
        child->parent = job;
        out[(*n)++] = child;
    }
    job->children = *n;
    return 0;
}

/* A denial is durable before it is answered: a marker (the approval's own
 * payload, "decided": "denied") goes to the spool as a child of the
 * approval, which ends once it is durable (job_durable), and a start that
 * finds one does not ask again (jobs_recover). Returns 0 with *out, or
 * ERR_NOMEM. */
static int job_deny_marker(struct job *job, struct job **out)
{
    struct decision_record d = job->d;
    struct job *m;

    d.decided = STR_LIT("denied");
    if (job_new(job->s, &d, &m) != 0)
        return ERR_NOMEM;
    m->marker = 1;
    memcpy(m->action_key, job->key, DECISION_KEY_SIZE);
    m->key = m->action_key;
    m->parent = job;
    job->children = 1;
    *out = m;
    return 0;
}

/* Decides approval job: approved, its held-back actions are made into
 * out[0..*n) and it ends once they are durable (RELEASING); denied (or
 * with nothing to release), it ends now. who: the approver and where the
 * decision came from, or the expiry. */
static void job_approval_end(struct job *job, int approve, const char *who, struct job **out,
                             size_t cap, size_t *n)
{
    struct jobs *s = job->s;

    *n = 0;
    job->s->ops->timer_free(s->ops->ctx, &job->wait);
    stats_add(s->stats, approve ? STAT_approvals_approved : STAT_approvals_denied, 1);
    job_audit(job, approve ? "approved" : "denied", who, 0, 0);
    if (!approve && cap > 0 && job_deny_marker(job, out) == 0) {
        *n = 1;
    } else if (!approve) {
        /* No memory for the marker: ended all the same, durable with the
         * spool's next write. */
    } else if (job_release(job, out, cap, n) != 0) {
        /* The approval stays in the spool: the next start asks again. */
        job_leave_to_restart(job);
        return;
    }
    if (*n == 0) {
        job_finish(job);
        return;
    }
    job->state = JOB_RELEASING;
}

/* Event: nobody decided before the deadline: the default applies. */
static void job_approval_expired(struct job *job)
{
    struct job *out[POLICY_MAX_ACTIONS];
    size_t n;

    stats_add(job->s->stats, STAT_approvals_expired, 1);
    job_approval_end(job, job->action->default_approve,
                     job->action->default_approve
                         ? "nobody decided before the deadline: the default, approve"
                         : "nobody decided before the deadline: the default, deny",
                     out, POLICY_MAX_ACTIONS, &n);
    if (n > 0)
        jobs_start(job->s, out, n);
}

/* Event: the approvers' emails went out. SENDING -> APPROVAL, until a
 * decision or the deadline. */
static void job_approval_sent(struct job *job, const struct dispatch_result *res)
{
    int64_t left = job_approval_deadline_ms(job) - job_realtime_ms(job->s);
    char until[LOG_TIME_SIZE], detail[LOG_TIME_SIZE + 64 + DISPATCH_REASON_MAX];
    struct timespec deadline = {(time_t)(job_approval_deadline_ms(job) / 1000),
                                (long)(job_approval_deadline_ms(job) % 1000) * 1000000};

    log_format_time(deadline, until);
    snprintf(detail, sizeof(detail), "until %s, then %s%s%s", until,
             job->action->default_approve ? "approve" : "deny",
             res->reason != NULL && res->reason[0] != '\0' ? "; not sent to every approver: " : "",
             res->reason != NULL ? res->reason : "");
    job->state = JOB_APPROVAL;
    job_audit(job, "awaiting-approval", detail, res->status, 0);
    job_wait(job, left > 0 ? left : 0);
}

void jobs_set_approval_secret(struct jobs *s, const struct approval_secret *secret)
{
    s->approval_secret = secret;
}

int jobs_approval_decide(struct jobs *s, const struct decision_approval *a, struct job **out,
                         size_t cap, size_t *n)
{
    struct approval_ref ref;
    char who[512];
    struct job *job;
    size_t approvers = 0;
    unsigned approver;

    *n = 0;
    if (s->approval_secret == NULL)
        return DECISION_APPROVAL_UNAVAILABLE;
    if (approval_token_read(s->approval_secret, a->token, &ref) != 0)
        return DECISION_APPROVAL_UNKNOWN;
    approver = ref.approver;
    /* The same approval (key) about the same alert (its receipt): a link
     * to an earlier one of that key finds nothing. */
    for (job = s->all; job != NULL; job = job->next) {
        if (job->action != NULL && job->action->type == POLICY_ACTION_APPROVAL &&
            strncmp(job->key, ref.id, APPROVAL_ID_LEN) == 0 && !job->marker &&
            job_received_ms(job) == ref.stamp_ms)
            break;
    }
    if (job == NULL || job->state == JOB_RELEASING)
        return DECISION_APPROVAL_GONE;
    if (job->state != JOB_APPROVAL)
        return DECISION_APPROVAL_UNAVAILABLE; /* its emails are (being) sent again: later */
    while (job->action->to[approvers] != NULL)
        approvers++;
    if (approver >= approvers)
        return DECISION_APPROVAL_UNKNOWN;
    snprintf(who, sizeof(who), "by %s from %.*s", job->action->to[approver], (int)a->source.len,
             a->source.p);
    job_approval_end(job, a->approve, who, out, cap, n);
    return DECISION_APPROVAL_DECIDED;
}

/* Event: a retryable answer (or none). SENDING -> WAITING. */
static void job_sent_retryable(struct job *job, const struct dispatch_result *res)
{
    jobs_set_failing(job->s, 1);
    job_retry_later(job, res->retry_after_s, res->reason, res->status);
}

/* Event: a refusal (any other 4xx). SENDING -> dead letter. */
static void job_sent_permanent(struct job *job, const struct dispatch_result *res)
{
    job_dead_letter(job, "failed", STAT_outcome_failed, res->reason, res->status);
}

/* dispatch_cb: routes the answer to its event. */
static void job_on_sent(void *arg, const struct dispatch_result *res)
{
    struct job *job = arg;
    struct jobs *s = job->s;

    s->dispatching--;
    if (s->stopping) {
        /* Shutting down: the spool sends it again at the next start. */
        job_free(job);
        return;
    }
    job_next_ready(s);
    switch (res->verdict) {
    case RETRY_DONE:
        if (job->action != NULL && job->action->type == POLICY_ACTION_APPROVAL)
            job_approval_sent(job, res);
        else
            job_sent_ok(job, res);
        break;
    case RETRY_AGAIN:
        job_sent_retryable(job, res);
        break;
    case RETRY_DEAD:
        job_sent_permanent(job, res);
        break;
    }
}

/* A captured field of the job's policy block, for its templates. */
static struct str job_field(void *arg, struct str name)
{
    const struct job *job = arg;

    return policy_block_field(&job->block, name);
}

/* Sends the job's alert or action (a slot is free). READY/RESOLVING ->
 * SENDING. */
static void job_send(struct job *job)
{
    struct jobs *s = job->s;
    struct dispatch_alert a = {job->d.event, job->email, job->key, job->d.received, NULL, NULL};
    struct template_values v = {.field = job_field, .arg = job};
    char received[LOG_TIME_SIZE], expires[LOG_TIME_SIZE], event[TEMPLATE_VALUE_MAX + 1];
    const char *priority;
    size_t len;
    int rc;

    if (job->action != NULL && job->action->type == POLICY_ACTION_APPROVAL) {
        int64_t deadline = job_approval_deadline_ms(job);

        log_format_time(
            (struct timespec){(time_t)(deadline / 1000), (long)(deadline % 1000) * 1000000},
            expires);
        v.vars[TEMPLATE_EXPIRES] = str_make(expires, strlen(expires));
    }
    if (job->action != NULL) {
        priority = policy_priority_name(job->block.priority);
        log_format_time(job->d.received, received);
        v.vars[TEMPLATE_RULE] = job->d.rule;
        v.vars[TEMPLATE_USER] = job->d.user;
        v.vars[TEMPLATE_EMAIL] = str_make(job->email, strlen(job->email));
        v.vars[TEMPLATE_PRIORITY] = str_make(priority, strlen(priority));
        v.vars[TEMPLATE_EVENT] = job->d.event;
        v.vars[TEMPLATE_MAPPING] = job->d.mapping;
        v.vars[TEMPLATE_POLICY] = job->block.policy;
        v.vars[TEMPLATE_KEY] = str_make(job->key, strlen(job->key));
        v.vars[TEMPLATE_RECEIVED] = str_make(received, strlen(received));
        a.values = &v;
        if (job->action->type != POLICY_ACTION_SAFETITAN)
            a.action = job->action;
        else if (job->action->event != NULL &&
                 template_render(job->action->event, &v, event, sizeof(event), &len) == 0 &&
                 len > 0)
            a.event = str_make(event, len); /* dispatch copies it into its request */
    }
    rc = s->ops->send(s->ops->ctx, &a, job_on_sent, job);
    if (rc == ERR_INVALID) {
        /* Sending again would not change it: no smtp section, approvals.url
         * or Graph client for the action, or a message mail refuses (check
         * and the start refuse the first three). */
        job_dead_letter(job, "failed", STAT_outcome_failed,
                        "the action cannot be sent: its server is not configured, or its message "
                        "is invalid (a subject over 1024 bytes, over 100 recipients)",
                        0);
        return;
    }
    if (rc != 0) {
        job_retry_later(job, -1, "out of memory", 0);
        return;
    }
    job->state = JOB_SENDING;
    job->attempts++;
    s->dispatching++;
    stats_add(s->stats, STAT_dispatch_requests, 1);
}

/* Event: a dispatch slot came free: the oldest READY job goes. */
static void job_next_ready(struct jobs *s)
{
    struct job *job = s->ready;

    if (job == NULL || s->dispatching >= s->cfg.max_concurrent)
        return;
    s->ready = job->queue_next;
    if (s->ready == NULL)
        s->ready_end = &s->ready;
    job->queue_next = NULL;
    job_send(job);
}

/* ---- RESOLVING ---- */

/* Whether the job's action ran for this user (by email: one person under
 * any identifier) less than its cooldown_s ago. Not SafeTitan:
 * SafeTitan counts repeats itself. The first job of a burst starts the
 * cool-down when it goes out, so the rest of the burst is held back. */
static int job_cooling(struct job *job)
{
    struct jobs *s = job->s;
    const struct policy_action *a = job->action;
    char lower[MAPPING_MAX_VALUE + 256];
    size_t n = strlen(job->email) < sizeof(lower) ? strlen(job->email) : sizeof(lower);
    struct str parts[3];

    if (a == NULL || a->cooldown_s == 0 || a->type == POLICY_ACTION_SAFETITAN || job->cooled)
        return 0;
    for (size_t i = 0; i < n; i++)
        lower[i] = (char)((job->email[i] >= 'A' && job->email[i] <= 'Z') ? job->email[i] + 32
                                                                         : job->email[i]);
    parts[0] = job->block.policy;
    parts[1] = job->d.action;
    parts[2] = str_make(lower, n);
    if (!cooldown_take(s->cooldown, decision_hash64(s->hasher, parts, 3), now_ms(),
                       (int64_t)a->cooldown_s * 1000))
        return 1;
    job->cooled = 1;
    return 0;
}

/* Event: the user was found. RESOLVING -> SENDING, or READY when every
 * slot is busy; an action in its cool-down ends here (audited, done). */
static void job_resolved(struct job *job, const char *email, const char *resolver)
{
    struct jobs *s = job->s;

    job->resolver = resolver;
    free(job->email);
    job->email = strdup(email);
    if (job->email == NULL) {
        job_retry_later(job, -1, "out of memory", 0);
        return;
    }
    if (job_cooling(job)) {
        stats_add(s->stats, STAT_outcome_cooldown, 1);
        job_audit(job, "cooldown", "the same action ran for this user within its cooldown_s", 0, 0);
        job_finish(job);
        return;
    }
    if (s->dispatching < s->cfg.max_concurrent) {
        job_send(job);
        return;
    }
    job->state = JOB_READY;
    *s->ready_end = job;
    s->ready_end = &job->queue_next;
}

/* Event: no resolver knows the user. RESOLVING -> dead letter. */
static void job_unresolved(struct job *job, const char *detail)
{
    job_dead_letter(job, "unresolved-user", STAT_outcome_unresolved_user, detail, 0);
}

/* Event: a resolver failed (it may answer later). RESOLVING -> WAITING. */
static void job_resolver_failed(struct job *job, const char *detail)
{
    job_retry_later(job, -1, detail, 0);
}

/* identity_cb (live): routes the answer to its event. */
static void job_on_identity(void *arg, enum identity_status status, const char *email,
                            const char *detail)
{
    struct job *job = arg;

    if (job->s->stopping) {
        job_free(job);
        return;
    }
    switch (status) {
    case IDENTITY_NOT_FOUND:
        job_unresolved(job, detail);
        break;
    case IDENTITY_ERROR:
        job_resolver_failed(job, detail);
        break;
    case IDENTITY_FOUND:
        job_resolved(job, email, detail);
        break;
    }
}

static void job_resolve(struct job *job)
{
    if (job->missing) {
        job_dead_letter(job, "failed", STAT_outcome_failed,
                        "its policy action is no longer in the policies", 0);
        return;
    }
    if (job->action != NULL && job->action->type == POLICY_ACTION_APPROVAL &&
        job_realtime_ms(job->s) >= job_approval_deadline_ms(job)) {
        /* Its time ran out while it was not pending (the agent was down,
         * or its emails kept failing): nobody can decide now. */
        job_approval_expired(job);
        return;
    }
    job->state = JOB_RESOLVING;
    job->s->ops->resolve(job->s->ops->ctx, job->d.user, job->d.user_kind, job_on_identity, job);
}

/* identity_cb (dry-run), the only event of a dry run: the decision ends
 * here, audited as what would be sent, with why it would not be when the
 * user was not found or the lookup failed. The outcome is counted whether
 * or not its audit line could be written (delivery.h). */
static void job_on_dry_identity(void *arg, enum identity_status status, const char *email,
                                const char *detail)
{
    struct job *job = arg;
    struct jobs *s = job->s;
    int found = status == IDENTITY_FOUND;

    job->email = found ? (char *)email : NULL; /* borrowed for the line */
    job->resolver = found ? detail : NULL;
    stats_add(s->stats, job_dry_outcomes[status].counter, 1);
    job_audit(job, job_dry_outcomes[status].outcome, found ? NULL : detail, 0, 0);
    job->email = NULL;
    job_settle(job, 1, 0);
    job_free(job);
    jobs_check_settled(s);
}

/* ---- SPOOLING, HELD ---- */

/* The intake resumes once no alert is held or being tried again: the
 * spool took every one. Not when the hold timer only sent them again: the
 * spool answers later (its flusher thread), and until then the disk may
 * still refuse them. */
static void jobs_resume_if_clear(struct jobs *s)
{
    if (s->held == NULL && s->n_retrying == 0)
        s->ops->resume(s->ops->ctx);
}

/* A job sent to the spool again has its answer (or none is coming). */
static void job_retry_answered(struct job *job)
{
    if (job->retrying) {
        job->retrying = 0;
        job->s->n_retrying--;
    }
}

/* Event: the hold timer fired: every HELD job tries the spool again
 * (HELD -> SPOOLING, or HELD again); the intake resumes once the spool
 * took them all (job_on_durable). */
static void jobs_hold_timer(void *arg)
{
    struct jobs *s = arg;
    struct job *held = s->held;

    s->held = NULL;
    s->held_end = &s->held;
    s->n_held = 0;
    while (held != NULL) {
        struct job *job = held;

        held = job->queue_next;
        job->queue_next = NULL;
        job->retrying = 1;
        s->n_retrying++;
        job_append(job);
    }
    jobs_resume_if_clear(s);
}

/* Event: the spool is full or refused the write. SPOOLING -> HELD (the
 * intake waits too). */
static void job_spool_refused(struct job *job, const char *why)
{
    struct jobs *s = job->s;

    stats_add(s->stats, STAT_spool_full, 1);
    log_limited(&job_rl_full, LOG_LVL_ERROR,
                "spool: %s: alerts are held and inputs paused until it takes them (spool_full "
                "counts each wait)",
                why);
    job->state = JOB_HELD;
    *s->held_end = job;
    s->held_end = &job->queue_next;
    s->n_held++;
    if (!s->ops->timer_pending(s->ops->ctx, s->hold_timer))
        s->ops->timer_arm(s->ops->ctx, s->hold_timer, s->cfg.hold_retry_ms);
    jobs_check_settled(s);
}

/* Event: the spool says the job is on disk. SPOOLING -> RESOLVING. */
static void job_durable(struct job *job)
{
    struct jobs *s = job->s;

    job->spooled = 1;
    if (job->marker) {
        /* Its approval ends first (its completion is journaled before the
         * marker's): a marker without its approval's completion at a
         * start still ends the approval. */
        job_settle(job, 1, 0);
        job_finish(job);
        jobs_check_settled(s);
        return;
    }
    stats_add(s->stats, STAT_outcome_spooled, 1);
    job_audit(job, "spooled", NULL, 0, 0);
    job_settle(job, 1, 0);
    jobs_check_settled(s);
    if (!s->stopping)
        job_resolve(job);
}

/* spool_durable_cb: routes the result to its event. */
static void job_on_durable(void *arg, int rc)
{
    struct job *job = arg;
    struct jobs *s = job->s;
    int retried = job->retrying;

    job_retry_answered(job);
    if (rc != 0) {
        job_spool_refused(job, "the disk refused the write");
        return;
    }
    job_durable(job);
    if (retried && !s->stopping)
        jobs_resume_if_clear(s);
}

/* -> SPOOLING, or HELD when the spool cannot take it now. */
static void job_append(struct job *job)
{
    struct jobs *s = job->s;
    int rc = decision_payload_write(&job->d, &s->payload);

    job->state = JOB_SPOOLING;
    if (rc == 0)
        rc = s->ops->spool_append(s->ops->ctx, str_make(s->payload.buf, s->payload.len),
                                  job_on_durable, job, &job->spool_id);
    /* Only a full spool holds an alert: anything else that keeps it out of
     * the spool would hold it, and every alert behind it, for good. */
    if (rc != 0)
        job_retry_answered(job);
    switch (rc) {
    case 0:
        return;
    case ERR_TOOBIG:
        job_spool_refused(job, "full (spool.max_bytes)");
        return;
    case ERR_NOMEM:
        job_spool_refused(job, "out of memory");
        return;
    default:
        /* Too big for a spool record (the caps make it unreachable): it
         * cannot be made durable, ever, so it goes to the dead letters. */
        job_settle(job, 1, 0);
        job_dead_letter(job, "failed", STAT_outcome_failed, "the alert does not fit a spool record",
                        0);
        jobs_check_settled(s);
    }
}

/* ---- NEW ---- */

/* Event: a new decision. A duplicate inside the window ends here; the
 * others are spooled (live) or resolved (dry-run). */
static void job_start(struct job *job)
{
    struct jobs *s = job->s;
    const void *first = NULL;

    if (!job->marker && dedup_seen(s->dedup, job->key, now_ms(), job, &first)) {
        stats_add(s->stats, STAT_outcome_duplicate, 1);
        job_audit(job, "duplicate", "same idempotency key inside dispatch.dedup_window_s", 0, 0);
        if (first != NULL && job->intake != NULL)
            job_follow((struct job *)first, job);
        job_settle(job, 1, 1);
        job_free(job);
        jobs_check_settled(s);
        return;
    }
    if (s->cfg.live) {
        job_append(job);
        return;
    }
    job->state = JOB_RESOLVING;
    s->ops->resolve(s->ops->ctx, job->d.user, job->d.user_kind, job_on_dry_identity, job);
}

void job_set_intake(struct job *job, void *intake, unsigned index)
{
    job->intake = intake;
    job->intake_index = index;
}

void jobs_start(struct jobs *s, struct job **jobs, size_t n)
{
    /* All of them first: a job that ends at once must not see the count at
     * zero while its siblings still wait. */
    s->in_flight += n;
    for (size_t i = 0; i < n; i++)
        job_start(jobs[i]);
}

/* ---- recovery ---- */

/* A spooled action finds its definition again in the policies loaded now
 * (by policy, priority and name); one they no longer have is dead-lettered
 * once due (job_resolve). Returns 0, or ERR_INVALID for a block it cannot
 * read. */
static int job_recover_action(struct jobs *s, struct job *job)
{
    const struct policy_action *a;

    if (job->d.action.len == 0)
        return 0;
    if (policy_block_read(job->d.policy, &job->block) != 0 || job->block.policy.p == NULL)
        return ERR_INVALID;
    job_action_key(s, job, job->block.policy, job->d.action);
    a = jobs_find_action(s->policies, &job->block, job->d.action);
    if (a == NULL) {
        job->missing = 1;
        return 0;
    }
    mapping_set_ref(s->policies);
    job->set = s->policies;
    job->action = a;
    return 0;
}

/* The counts policies read are rebuilt from the spool: every alert it
 * still holds (done or not) counts once, from its first job's payload
 * (job_set_action: the others carry no "corr"). */
static void job_recount(struct jobs *s, const struct job *job)
{
    uint64_t keys[POLICY_SCOPES];
    enum policy_scope scopes[POLICY_SCOPES];
    struct policy_block b;
    const struct policy_block *bp = &job->block;
    size_t n;

    if (s->correlate == NULL || job->d.policy.len == 0)
        return;
    if (bp->json == NULL) {
        if (policy_block_read(job->d.policy, &b) != 0)
            return;
        bp = &b;
    }
    n = policy_block_corr(bp, keys, scopes);
    for (size_t i = 0; i < n; i++)
        correlate_add(s->correlate, keys[i], (int64_t)job->d.received.tv_sec,
                      policy_longest_window(s->policies));
    if (bp != &job->block)
        policy_block_free(&b);
}

struct jobs_recovery {
    struct jobs *s;
    size_t resent, unreadable;
    struct job *resend, **resend_end; /* resolved once the spool has listed them */
    /* Approvals denied durably (their markers' keys), and the markers
     * still pending: completed once their approvals are. */
    char (*denied)[DECISION_KEY_SIZE];
    uint64_t *markers;
    size_t n_denied, n_markers, cap;
};

/* A denial's marker at start: its approval is not asked again. Returns 0
 * or ERR_NOMEM (the approval is then asked again: as before the marker). */
static int jobs_recover_marker(struct jobs_recovery *rec, const struct job *job, uint64_t id,
                               int done)
{
    if (rec->n_denied == rec->cap) {
        size_t cap = rec->cap != 0 ? rec->cap * 2 : 16;
        char(*denied)[DECISION_KEY_SIZE] = realloc(rec->denied, cap * sizeof(*denied));
        uint64_t *markers = denied != NULL ? realloc(rec->markers, cap * sizeof(*markers)) : NULL;

        if (denied != NULL)
            rec->denied = denied;
        if (markers == NULL)
            return ERR_NOMEM;
        rec->markers = markers;
        rec->cap = cap;
    }
    snprintf(rec->denied[rec->n_denied++], DECISION_KEY_SIZE, "%s", job->key);
    if (!done)
        rec->markers[rec->n_markers++] = id;
    return 0;
}

/* Whether the approval job is one a marker denied. */
static int jobs_recovery_denied(const struct jobs_recovery *rec, const struct job *job)
{
    for (size_t i = 0;
         job->action != NULL && job->action->type == POLICY_ACTION_APPROVAL && i < rec->n_denied;
         i++) {
        if (strcmp(rec->denied[i], job->key) == 0)
            return 1;
    }
    return 0;
}

/* Each alert of the spool at start: those done refill the duplicate
 * window; the others are sent again. */
static void jobs_recover_one(void *arg, uint64_t id, struct str payload, int done, int64_t age_ms)
{
    struct jobs_recovery *rec = arg;
    struct jobs *s = rec->s;
    struct decision_payload p;
    struct job *job = NULL;

    if (decision_payload_read(payload, &p) == 0 && job_new(s, &p.rec, &job) == 0 &&
        job_recover_action(s, job) != 0) {
        job_free(job);
        job = NULL;
    }
    decision_payload_free(&p);
    if (job == NULL) {
        /* Never completed: it stays in the spool for a version that reads it. */
        rec->unreadable++;
        return;
    }
    if (job->d.decided.len > 0) {
        (void)jobs_recover_marker(rec, job, id, done);
        job_free(job);
        return;
    }
    job_recount(s, job);
    dedup_refill(s->dedup, job->key, now_ms(), age_ms);
    if (done) {
        job_free(job);
        return;
    }
    job->spool_id = id;
    job->spooled = 1;
    rec->resent++;
    stats_add(s->stats, STAT_spool_recovered, 1);
    /* Not from inside the spool's listing: resolving may complete it. */
    *rec->resend_end = job;
    rec->resend_end = &job->queue_next;
}

void jobs_recover(struct jobs *s)
{
    struct jobs_recovery rec = {.s = s};

    rec.resend_end = &rec.resend;
    s->ops->spool_recovered(s->ops->ctx, jobs_recover_one, &rec);
    while (rec.resend != NULL) {
        struct job *job = rec.resend;

        rec.resend = job->queue_next;
        job->queue_next = NULL;
        if (jobs_recovery_denied(&rec, job)) {
            rec.resent--;
            job_finish(job); /* denied before the stop: its completion was not written */
            continue;
        }
        job_resolve(job);
    }
    /* After the approvals they end: a crash in between finds them again. */
    for (size_t i = 0; i < rec.n_markers; i++)
        s->ops->spool_complete(s->ops->ctx, rec.markers[i]);
    free(rec.denied);
    free(rec.markers);
    if (rec.resent > 0)
        log_info("spool: %zu alerts not yet delivered before the last stop are being sent again",
                 rec.resent);
    if (rec.unreadable > 0)
        log_error("spool: %zu records this version cannot read were left in the spool",
                  rec.unreadable);
}

/* ---- the set ---- */

size_t jobs_in_flight(const struct jobs *s)
{
    return s->in_flight;
}

size_t jobs_held(const struct jobs *s)
{
    return s->n_held + s->n_retrying;
}

void jobs_gauges(struct jobs *s)
{
    int64_t oldest = 0;
    int retrying = 0;

    for (const struct job *job = s->all; job != NULL; job = job->next) {
        /* An approval waits for people by design (hours): not a stuck alert. */
        if (job->spooled && job->state != JOB_APPROVAL && job->state != JOB_RELEASING &&
            (oldest == 0 || job->d.received.tv_sec < oldest))
            oldest = job->d.received.tv_sec;
        /* A job being sent counts its request in attempts already. */
        if (job->state != JOB_DEAD_WAIT && job->state != JOB_APPROVAL &&
            job->state != JOB_RELEASING && job->attempts > (job->state == JOB_SENDING))
            retrying = 1;
    }
    stats_set(s->stats, STAT_spool_held, jobs_held(s));
    stats_set(s->stats, STAT_spool_oldest_pending, (uint64_t)(oldest > 0 ? oldest : 0));
    if (!retrying)
        jobs_set_failing(s, 0);
}

size_t jobs_count(const struct jobs *s, enum job_state st)
{
    size_t n = 0;

    for (const struct job *job = s->all; job != NULL; job = job->next)
        n += job->state == st;
    return n;
}

void jobs_stop(struct jobs *s)
{
    s->stopping = 1;
}

void jobs_free(struct jobs *s)
{
    size_t lost = 0;

    if (s == NULL)
        return;
    s->stopping = 1;
    /* Each by its key, so that an operator can match the sender's log (a
     * RELP sender was never answered for these and sends them again). */
    for (struct job *job = s->held; job != NULL; job = job->queue_next) {
        log_error("lost at stop, never spooled: mapping %s, rule \"%s\", key %s", job->d.mapping.p,
                  job->d.rule.p, job->key);
        lost++;
    }
    s->held = NULL;
    /* A job still owed an answer (held, with duplicates following it) has
     * not settled: it never will be durable. */
    while (s->all != NULL) {
        struct job *job = s->all;

        if (job->intake != NULL || job->followers != NULL)
            job_settle(job, 0, 0);
        job_free(job);
    }
    if (lost > 0) {
        stats_add(s->stats, STAT_decisions_dropped, lost);
        log_error("stopping with %zu alerts the spool could not take (full or failing): they "
                  "were not spooled and are lost (counted in decisions_dropped)",
                  lost);
    }
    s->ops->timer_free(s->ops->ctx, &s->hold_timer);
    jsonw_free(&s->payload);
    mapping_set_unref(s->policies);
    decision_hasher_free(s->hasher);
    cooldown_free(s->cooldown);
    free(s);
}
