/* The response thread. Its loop wakes when a worker's push makes the
 * decision queue non-empty, and when the queue is closed (queue_set_notify):
 * then it ends once the queue is drained and no decision is in flight (in
 * dry-run), or once every decision is in the spool (direct, orchestrator:
 * what the spool holds is sent again at the next start).
 *
 * A decision's way in the live modes: its idempotency key is checked
 * against the duplicate window (a duplicate is audited and ends there);
 * it is appended to the spool; once the spool says it is on disk, the user
 * is resolved and the alert dispatched. 2xx completes it; a retryable
 * failure (or an identity lookup error) waits on a timer, with full-jitter
 * backoff or Retry-After, and starts again from the lookup; any other 4xx,
 * and a user no resolver knows, go to the dead-letter file and complete
 * it. A spool that is full or refuses a write holds the decision: the
 * thread stops taking records (the queue fills and TCP/TLS inputs stop
 * reading) and tries again each second. Every step is audited.
 *
 * Each record is decoded and its decisions copied into jobs owned by this
 * module (one allocation per decision: decisions are rare), so the record
 * goes back to the queue at once and the workers are not held up by an
 * identity lookup that completes later from the loop.
 *
 * Counters: the thread's own block, registered in delivery_new and handed
 * to the identity layer, is written only from the thread once it has
 * started (stats blocks have a single writer). A SIGHUP is counted here,
 * as reloads or reload_failures, once the directory and the audit log are
 * done, with what the daemon says of the configuration and the mappings
 * (delivery_reload). What a reload needs of the new configuration, two
 * paths, is copied into the pending request: the daemon frees that
 * configuration at once. */
#include "delivery.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <json-c/json.h>
#include <openssl/rand.h>

#include "audit.h"
#include "decide/decision.h"
#include "dedup.h"
#include "dispatch.h"
#include "errors.h"
#include "core/http.h"
#include "identity/identity.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/retry.h"
#include "spool.h"
#include "core/stats.h"
#include "core/evloop.h"

/* The ring holds this many of the largest records (real ones take a few
 * hundred bytes: some ten thousand of those), and at least
 * RESPONSE_RING_MIN. It is allocated once and, under a sustained load,
 * walked whole: this is what the queue costs in memory. */
#define RESPONSE_RING_RECORDS 128
#define RESPONSE_RING_MIN     ((size_t)4 << 20)
/* Records handled per loop iteration before the loop gets a turn (reload
 * events) and the handler re-activates itself. */
#define RESPONSE_BATCH 256
/* How often a held decision tries the spool again. */
#define RESPONSE_SPOOL_RETRY_MS 1000
/* Keys remembered for the duplicate window. */
#define RESPONSE_DEDUP_MAX ((size_t)1 << 20)
/* The spool payload's version. */
#define RESPONSE_PAYLOAD_VERSION 1

/* What the daemon asked of the next reload (delivery_reload). */
struct delivery_reload_req {
    int asked;         /* a reload is pending */
    int failed;        /* the configuration or the mappings did not load */
    int has_paths;     /* a configuration loaded: the two paths below apply */
    char *static_file; /* identity.static.file (NULL: the file in use) */
    char *audit_file;  /* audit.file (NULL: no audit log) */
};

struct delivery_job;

struct delivery {
    struct queue *q;
    struct event_base *base;
    struct event *ev_drain;       /* activated by a push or the close (queue notify) */
    struct event *ev_reload;      /* activated by delivery_reload */
    struct event *ev_spool_retry; /* held decisions try the spool again */
    struct identity *id;
    struct audit *audit;
    const struct audit_config *audit_cfg; /* the running one (its hash settings) */
    char *audit_file;                     /* the file audit writes to; NULL: none */
    const struct dispatch_config *dispatch_cfg;
    int live;          /* direct or orchestrator: spool and send */
    struct http *http; /* live, or a network resolver */
    struct dispatch *dispatch;
    struct spool *spool;
    struct audit *dead; /* the dead-letter file (live) */
    struct dedup *dedup;
    struct jsonw payload; /* a spool record being written */
    struct stats *stats;
    size_t in_flight;               /* jobs not yet finished (dry-run) or not yet spooled (live) */
    size_t n_held;                  /* of those, held for spool space */
    struct delivery_job *jobs;      /* every live job, for the end */
    struct delivery_job *held;      /* waiting for spool space, oldest first */
    struct delivery_job **held_end; /* where the next held job goes */
    struct delivery_job *ready;     /* resolved, waiting for a dispatch slot, oldest first */
    struct delivery_job **ready_end;
    int dispatching; /* requests in flight, at most dispatch.max_concurrent */
    int stopping;    /* the loop has ended: completions only free */
    int no_pause;    /* atomic: delivery_stop_intake_pause was called */
    pthread_mutex_t reload_lock;
    struct delivery_reload_req reload; /* guarded by reload_lock; taken by the thread */
    pthread_t thread;
    int started;
    void (*done)(void *arg);
    void *done_arg;
};

/* One decision from its record to its last audit line. The texts are
 * copies in text[] (NUL-terminated). */
struct delivery_job {
    struct delivery *r;
    struct delivery_job *prev, *next; /* r->jobs (live) */
    struct delivery_job *held_next;   /* r->held or r->ready (never both) */
    struct timespec received;
    const char *source, *mapping;
    struct str rule, user, event;
    enum user_kind kind;
    char key[DISPATCH_KEY_SIZE];
    uint64_t spool_id;
    int spooled;        /* in the spool: an end without completion is resent later */
    int attempts;       /* dispatch requests made */
    int failures;       /* failed tries (dispatch or lookup): the backoff's exponent */
    struct event *wait; /* the retry timer, once needed */
    char *email;        /* once resolved */
    char text[];
};

static struct log_ratelimit delivery_rl = LOG_RATELIMIT_INIT(60, 1);
static struct log_ratelimit delivery_rl_full = LOG_RATELIMIT_INIT(60, 1);
static struct log_ratelimit delivery_rl_retry = LOG_RATELIMIT_INIT(60, 1);

/* By enum identity_status. */
static const struct {
    const char *outcome;
    enum stats_counter counter;
} delivery_outcomes[] = {
    [IDENTITY_FOUND] = {"would-dispatch", STAT_outcome_would_dispatch},
    [IDENTITY_NOT_FOUND] = {"unresolved-user", STAT_outcome_unresolved_user},
    [IDENTITY_ERROR] = {"failed", STAT_outcome_failed},
};

const char *delivery_dry_run_outcome(enum identity_status status)
{
    return delivery_outcomes[status].outcome;
}

/* Copies s to *at (NUL-terminated), advancing it. */
static struct str delivery_copy(char **at, struct str s)
{
    char *p = *at;

    if (s.len > 0)
        memcpy(p, s.p, s.len);
    p[s.len] = '\0';
    *at = p + s.len + 1;
    return str_make(p, s.len);
}

/* Copies s (NULL stays NULL) to *out. Returns 0 or ERR_NOMEM. */
static int delivery_dup(const char *s, char **out)
{
    *out = s != NULL ? strdup(s) : NULL;
    return s != NULL && *out == NULL ? ERR_NOMEM : 0;
}

/* Returns the job (free with delivery_job_free), or NULL when out of
 * memory. key: the idempotency key. */
static struct delivery_job *delivery_job_new(struct delivery *r, struct timespec received,
                                             struct str source, struct str mapping, struct str rule,
                                             struct str user, struct str event, enum user_kind kind,
                                             const char *key)
{
    size_t n = source.len + mapping.len + rule.len + user.len + event.len + 5;
    struct delivery_job *job = calloc(1, sizeof(*job) + n);
    char *at;

    if (job == NULL)
        return NULL;
    at = job->text;
    job->r = r;
    job->received = received;
    job->kind = kind;
    job->source = delivery_copy(&at, source).p;
    job->mapping = delivery_copy(&at, mapping).p;
    job->rule = delivery_copy(&at, rule);
    job->user = delivery_copy(&at, user);
    job->event = delivery_copy(&at, event);
    memcpy(job->key, key, DISPATCH_KEY_SIZE);
    if (r->live) {
        job->next = r->jobs;
        if (r->jobs != NULL)
            r->jobs->prev = job;
        r->jobs = job;
    }
    return job;
}

static void delivery_job_free(struct delivery_job *job)
{
    struct delivery *r = job->r;

    if (r->live) {
        if (job->prev != NULL)
            job->prev->next = job->next;
        else
            r->jobs = job->next;
        if (job->next != NULL)
            job->next->prev = job->prev;
    }
    evloop_event_free(&job->wait);
    free(job->email);
    free(job);
}

/* The loop ends once the queue is closed and drained and no job waits
 * (live: none waits for the spool; the rest is in it). */
static void delivery_check_done(struct delivery *r)
{
    /* Once the queue is closed, jobs held for spool space do not keep the
     * thread: a full spool must not hold up a stop (delivery_stop reports
     * them). */
    if (r->in_flight == r->n_held && queue_done(r->q))
        event_base_loopbreak(r->base);
}

/* Milliseconds from the job's receipt to now. */
static long delivery_latency_ms(const struct delivery_job *job)
{
    struct timespec now;
    long ms;

    clock_gettime(CLOCK_REALTIME, &now);
    ms = (long)(now.tv_sec - job->received.tv_sec) * 1000 +
         (now.tv_nsec - job->received.tv_nsec) / 1000000;
    return ms > 0 ? ms : 0;
}

/* Writes the job's line with this outcome to the audit log (counted), or
 * to the dead-letter file (to_dead: counted there). Returns the write's
 * result. */
static int delivery_audit(struct delivery_job *job, const char *outcome, const char *detail,
                          int status, int to_dead)
{
    struct delivery *r = job->r;
    struct audit *a = to_dead ? r->dead : r->audit;
    struct audit_record ar = {
        .time = job->received,
        .source = job->source,
        .mapping = job->mapping,
        .rule = job->rule,
        .user = job->user,
        .email = job->email,
        .event = job->event,
        .outcome = outcome,
        .detail = detail,
        .key = r->live ? job->key : NULL,
        .status = status,
        .attempts = job->attempts,
        .latency_ms = delivery_latency_ms(job),
    };
    int rc;

    if (a == NULL)
        return 0;
    rc = audit_write(a, &ar);
    if (to_dead)
        stats_add(r->stats, rc == 0 ? STAT_outcome_dead_letter : STAT_dead_letter_errors, 1);
    else
        stats_add(r->stats, rc == 0 ? STAT_audit_lines : STAT_audit_errors, 1);
    return rc;
}

/* ---- dry-run ---- */

/* In dry-run a decision ends here: audited as what would be sent, with
 * why it would not be when the user was not found or the lookup failed.
 * The outcome is counted whether or not its audit line could be written
 * (see delivery.h). */
static void delivery_on_dry_identity(void *arg, enum identity_status status, const char *email,
                                     const char *detail)
{
    struct delivery_job *job = arg;
    struct delivery *r = job->r;
    int found = status == IDENTITY_FOUND;

    job->email = found ? (char *)email : NULL; /* borrowed for the line */
    stats_add(r->stats, delivery_outcomes[status].counter, 1);
    delivery_audit(job, delivery_outcomes[status].outcome, found ? NULL : detail, 0, 0);
    job->email = NULL;
    delivery_job_free(job);
    r->in_flight--;
    delivery_check_done(r);
}

/* ---- live: spool, resolve, dispatch, retry ---- */

static void delivery_resolve(struct delivery_job *job);
static void delivery_append(struct delivery_job *job);
static void delivery_next_ready(struct delivery *r);

/* The job is finished: its completion is journaled (a crash before it is
 * written only means a resend with the same key). */
static void delivery_finish(struct delivery_job *job)
{
    if (job->spooled)
        spool_complete(job->r->spool, job->spool_id);
    delivery_job_free(job);
}

/* Dead-letters the job: the file keeps it with the reason; counted. When
 * the line cannot be written the alert stays in the spool (not completed)
 * and is tried again at the next start: never dropped silently. */
static void delivery_dead_letter(struct delivery_job *job, const char *outcome,
                                 enum stats_counter counter, const char *detail, int status)
{
    struct delivery *r = job->r;

    stats_add(r->stats, counter, 1);
    log_limited(&delivery_rl, LOG_LVL_WARNING,
                "mapping %s: alert \"%s\" %s (%s): written to the dead-letter file", job->mapping,
                job->rule.p, outcome, detail);
    delivery_audit(job, outcome, detail, status, 0);
    if (delivery_audit(job, outcome, detail, status, 1) != 0) {
        job->spooled = 0; /* not completed: the spool sends it again at the next start */
        delivery_job_free(job);
        return;
    }
    delivery_finish(job);
}

static void delivery_on_wait(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    delivery_resolve(arg);
}

/* Tries again later: after Retry-After when the far side named a time,
 * else after a full-jitter backoff. */
static void delivery_retry_later(struct delivery_job *job, int64_t retry_after_s,
                                 const char *detail, int status)
{
    struct delivery *r = job->r;
    const struct dispatch_config *c = r->dispatch_cfg;
    uint64_t random = 0;
    int64_t ms;
    struct timeval tv;

    job->failures++;
    stats_add(r->stats, STAT_dispatch_retries, 1);
    if (RAND_bytes((unsigned char *)&random, sizeof(random)) != 1)
        random = (uint64_t)job->received.tv_nsec * 0x9e3779b97f4a7c15ull;
    /* Retry-After is a floor, never a licence to hammer: "0" or a past
     * date still waits for the backoff. */
    ms = retry_backoff_ms((unsigned)job->failures, c->retry_min_s, c->retry_max_s, random);
    if (retry_after_s * 1000 > ms)
        ms = retry_after_s * 1000;
    delivery_audit(job, "retry", detail, status, 0);
    log_limited(&delivery_rl_retry, LOG_LVL_WARNING,
                "mapping %s: alert not delivered yet (%s): trying again in %lld ms (more such "
                "lines are counted in dispatch_retries)",
                job->mapping, detail, (long long)ms);
    if (job->wait == NULL)
        job->wait = evtimer_new(r->base, delivery_on_wait, job);
    if (job->wait == NULL) {
        /* Without a timer it cannot wait: it stays spooled for the next start. */
        log_limited(&delivery_rl, LOG_LVL_ERROR,
                    "out of memory: an alert waits for the next start");
        job->spooled = 0;
        delivery_job_free(job);
        return;
    }
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    evtimer_add(job->wait, &tv);
}

static void delivery_on_dispatch(void *arg, const struct dispatch_result *res)
{
    struct delivery_job *job = arg;
    struct delivery *r = job->r;

    r->dispatching--;
    if (r->stopping) {
        /* Shutting down: the spool sends it again at the next start. */
        delivery_job_free(job);
        return;
    }
    delivery_next_ready(r);
    switch (res->verdict) {
    case RETRY_DONE:
        stats_add(r->stats, STAT_outcome_dispatched, 1);
        delivery_audit(job, "dispatched", NULL, res->status, 0);
        delivery_finish(job);
        break;
    case RETRY_AGAIN:
        delivery_retry_later(job, res->retry_after_s, res->reason, res->status);
        break;
    case RETRY_DEAD:
        delivery_dead_letter(job, "failed", STAT_outcome_failed, res->reason, res->status);
        break;
    }
}

/* Sends the job's alert (a slot is free). */
static void delivery_send(struct delivery_job *job)
{
    struct delivery *r = job->r;
    struct dispatch_alert a = {job->event, job->email, job->key, job->received};

    /* dispatch_send never calls back before it returns. */
    if (dispatch_send(r->dispatch, &a, delivery_on_dispatch, job) != 0) {
        delivery_retry_later(job, -1, "out of memory", 0);
        return;
    }
    job->attempts++;
    r->dispatching++;
    stats_add(r->stats, STAT_dispatch_requests, 1);
}

/* A slot came free: the oldest ready job goes. */
static void delivery_next_ready(struct delivery *r)
{
    struct delivery_job *job = r->ready;

    if (job == NULL || r->dispatching >= r->dispatch_cfg->max_concurrent)
        return;
    r->ready = job->held_next;
    if (r->ready == NULL)
        r->ready_end = &r->ready;
    job->held_next = NULL;
    delivery_send(job);
}

static void delivery_on_identity(void *arg, enum identity_status status, const char *email,
                                 const char *detail)
{
    struct delivery_job *job = arg;
    struct delivery *r = job->r;

    if (r->stopping) {
        delivery_job_free(job);
        return;
    }
    switch (status) {
    case IDENTITY_NOT_FOUND:
        delivery_dead_letter(job, "unresolved-user", STAT_outcome_unresolved_user, detail, 0);
        return;
    case IDENTITY_ERROR:
        delivery_retry_later(job, -1, detail, 0);
        return;
    case IDENTITY_FOUND:
        break;
    }
    free(job->email);
    job->email = strdup(email);
    if (job->email == NULL) {
        delivery_retry_later(job, -1, "out of memory", 0);
        return;
    }
    if (r->dispatching < r->dispatch_cfg->max_concurrent) {
        delivery_send(job);
        return;
    }
    *r->ready_end = job;
    r->ready_end = &job->held_next;
}

static void delivery_resolve(struct delivery_job *job)
{
    identity_resolve(job->r->id, job->user, job->kind, delivery_on_identity, job);
}

/* Takes the held jobs again (a timer: space may have been freed). */
static void delivery_on_spool_retry(evutil_socket_t fd, short what, void *arg)
{
    struct delivery *r = arg;
    struct delivery_job *held = r->held;

    (void)fd;
    (void)what;
    r->held = NULL;
    r->held_end = &r->held;
    r->n_held = 0;
    while (held != NULL) {
        struct delivery_job *job = held;

        held = job->held_next;
        job->held_next = NULL;
        delivery_append(job);
    }
    if (r->held == NULL)
        event_active(r->ev_drain, 0, 0);
}

/* The spool could not take the job: it waits (the queue waits too). */
static void delivery_hold(struct delivery_job *job, const char *why)
{
    struct delivery *r = job->r;
    struct timeval tv = {RESPONSE_SPOOL_RETRY_MS / 1000, (RESPONSE_SPOOL_RETRY_MS % 1000) * 1000};

    stats_add(r->stats, STAT_spool_full, 1);
    log_limited(&delivery_rl_full, LOG_LVL_ERROR,
                "spool: %s: alerts are held and inputs paused until it takes them (spool_full "
                "counts each wait)",
                why);
    *r->held_end = job;
    r->held_end = &job->held_next;
    r->n_held++;
    if (!evtimer_pending(r->ev_spool_retry, NULL))
        evtimer_add(r->ev_spool_retry, &tv);
    delivery_check_done(r);
}

static void delivery_on_durable(void *arg, int rc)
{
    struct delivery_job *job = arg;
    struct delivery *r = job->r;

    if (rc != 0) {
        delivery_hold(job, "the disk refused the write");
        return;
    }
    job->spooled = 1;
    stats_add(r->stats, STAT_outcome_spooled, 1);
    delivery_audit(job, "spooled", NULL, 0, 0);
    r->in_flight--;
    delivery_check_done(r);
    if (!r->stopping)
        delivery_resolve(job);
}

/* The spool payload: what sending the alert again needs. */
static int delivery_payload(struct delivery *r, const struct delivery_job *job)
{
    struct jsonw *w = &r->payload;

    jsonw_reset(w);
    jsonw_object_begin(w);
    jsonw_key(w, "v");
    jsonw_int(w, RESPONSE_PAYLOAD_VERSION);
    jsonw_key(w, "sec");
    jsonw_int(w, (long long)job->received.tv_sec);
    jsonw_key(w, "nsec");
    jsonw_int(w, job->received.tv_nsec);
    jsonw_key(w, "source");
    jsonw_cstr(w, job->source);
    jsonw_key(w, "mapping");
    jsonw_cstr(w, job->mapping);
    jsonw_key(w, "rule");
    jsonw_str(w, job->rule);
    jsonw_key(w, "user");
    jsonw_str(w, job->user);
    jsonw_key(w, "kind");
    jsonw_int(w, job->kind);
    jsonw_key(w, "event");
    jsonw_str(w, job->event);
    jsonw_key(w, "key");
    jsonw_cstr(w, job->key);
    jsonw_object_end(w);
    return w->err;
}

static void delivery_append(struct delivery_job *job)
{
    struct delivery *r = job->r;
    int rc = delivery_payload(r, job);

    if (rc == 0)
        rc = spool_append(r->spool, str_make(r->payload.buf, r->payload.len), delivery_on_durable,
                          job, &job->spool_id);
    /* Only a full spool holds an alert: anything else that keeps it out of
     * the spool would hold it, and every alert behind it, for good. */
    switch (rc) {
    case 0:
        return;
    case ERR_TOOBIG:
        delivery_hold(job, "full (spool.max_bytes)");
        return;
    case ERR_NOMEM:
        delivery_hold(job, "out of memory");
        return;
    default:
        /* Too big for a spool record (the caps make it unreachable): it
         * cannot be made durable, ever, so it goes to the dead letters. */
        r->in_flight--;
        delivery_dead_letter(job, "failed", STAT_outcome_failed,
                             "the alert does not fit a spool record", 0);
        delivery_check_done(r);
    }
}

/* A new decision: dropped as an exact duplicate, or spooled (live) /
 * resolved (dry-run). */
static void delivery_start_job(struct delivery *r, struct delivery_job *job)
{
    if (dedup_check(r->dedup, job->key, (int64_t)job->received.tv_sec)) {
        stats_add(r->stats, STAT_outcome_duplicate, 1);
        delivery_audit(job, "duplicate", "same idempotency key inside dispatch.dedup_window_s", 0,
                       0);
        delivery_job_free(job);
        r->in_flight--;
        delivery_check_done(r);
        return;
    }
    if (r->live)
        delivery_append(job);
    else
        identity_resolve(r->id, job->user, job->kind, delivery_on_dry_identity, job);
}

/* Copies the record's decisions out, releases it, then starts each. */
static void delivery_take(struct delivery *r, struct str rec)
{
    struct delivery_job *jobs[MAPPING_MAX_DECISIONS];
    struct decision_record d;
    size_t n = 0, pos = 0;
    int rc = 0;

    /* decision_next checks the whole record first: all or nothing. */
    while (n < MAPPING_MAX_DECISIONS && (rc = decision_next(rec, &pos, &d)) == 0) {
        char key[DISPATCH_KEY_SIZE];

        dispatch_key(d.host, d.rule, d.user, d.event_ref, key);
        jobs[n] = delivery_job_new(r, d.received, d.source, d.mapping, d.rule, d.user, d.event,
                                   d.user_kind, key);
        if (jobs[n] != NULL) {
            n++;
            continue;
        }
        stats_add(r->stats, STAT_decisions_dropped, 1);
        log_limited(&delivery_rl, LOG_LVL_ERROR,
                    "out of memory: a decision of mapping %.*s was dropped", (int)d.mapping.len,
                    d.mapping.p);
    }
    if (rc == ERR_INVALID)
        log_limited(&delivery_rl, LOG_LVL_ERROR, "a corrupt decision record was dropped");
    queue_release(r->q);
    /* All of them first: a job that completes at once must not see the
     * count at zero while its siblings still wait. */
    r->in_flight += n;
    for (size_t i = 0; i < n; i++)
        delivery_start_job(r, jobs[i]);
}

static void delivery_on_drain(evutil_socket_t fd, short what, void *arg)
{
    struct delivery *r = arg;
    struct str rec;

    (void)fd;
    (void)what;
    for (int i = 0; i < RESPONSE_BATCH; i++) {
        /* Held for spool space: the queue waits (backpressure), unless
         * the agent is stopping: then what is left is taken (and held too
         * if it does not fit), so that the workers and the stop can end
         * (delivery_stop reports what was never spooled). */
        if (r->held != NULL && !__atomic_load_n(&r->no_pause, __ATOMIC_ACQUIRE))
            return;
        if (queue_peek(r->q, &rec, 0) != 0) {
            delivery_check_done(r);
            return;
        }
        delivery_take(r, rec);
    }
    event_active(r->ev_drain, 0, 0);
}

/* A spool payload back into a job (recovery). Returns it, or NULL for a
 * payload this version does not read (logged by the caller). */
static struct delivery_job *delivery_job_from_payload(struct delivery *r, struct str payload)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *o =
        tok != NULL ? json_tokener_parse_ex(tok, payload.p, (int)payload.len) : NULL;
    struct json_object *v[10];
    static const char *const names[] = {"v",    "sec",  "nsec", "source", "mapping",
                                        "rule", "user", "kind", "event",  "key"};
    struct delivery_job *job = NULL;
    int ok = o != NULL && json_object_is_type(o, json_type_object);

    for (size_t i = 0; ok && i < 10; i++)
        ok = json_object_object_get_ex(o, names[i], &v[i]);
    ok = ok && json_object_get_int(v[0]) == RESPONSE_PAYLOAD_VERSION &&
         json_object_is_type(v[9], json_type_string) &&
         json_object_get_string_len(v[9]) == DISPATCH_KEY_SIZE - 1;
    for (size_t i = 3; ok && i < 9; i++)
        ok = i == 7 || json_object_is_type(v[i], json_type_string);
    if (ok) {
        struct timespec ts = {(time_t)json_object_get_int64(v[1]), json_object_get_int(v[2])};
        int kind = json_object_get_int(v[7]);
#define S(i) str_make(json_object_get_string(v[i]), (size_t)json_object_get_string_len(v[i]))
        if (kind >= USER_KIND_AUTO && kind <= USER_KIND_EMPLOYEE_ID && ts.tv_nsec >= 0 &&
            ts.tv_nsec < 1000000000)
            job = delivery_job_new(r, ts, S(3), S(4), S(5), S(6), S(8), (enum user_kind)kind,
                                   json_object_get_string(v[9]));
#undef S
    }
    json_object_put(o);
    json_tokener_free(tok);
    return job;
}

struct delivery_recovery {
    struct delivery *r;
    size_t resent, unreadable;
    struct delivery_job *resend, **resend_end; /* started once the spool has listed them */
};

/* Each alert of the spool at start: those done refill the duplicate
 * window; the others are sent again. */
static void delivery_recover_one(void *arg, uint64_t id, struct str payload, int done)
{
    struct delivery_recovery *rec = arg;
    struct delivery *r = rec->r;
    struct delivery_job *job = delivery_job_from_payload(r, payload);

    if (job == NULL) {
        /* Never completed: it stays in the spool for a version that reads it. */
        rec->unreadable++;
        return;
    }
    (void)dedup_check(r->dedup, job->key, (int64_t)job->received.tv_sec);
    if (done) {
        delivery_job_free(job);
        return;
    }
    job->spool_id = id;
    job->spooled = 1;
    rec->resent++;
    stats_add(r->stats, STAT_spool_recovered, 1);
    /* Not from inside the spool's listing: resolving may complete it. */
    *rec->resend_end = job;
    rec->resend_end = &job->held_next;
}

static void delivery_recover(struct delivery *r)
{
    struct delivery_recovery rec = {r, 0, 0, NULL, NULL};

    rec.resend_end = &rec.resend;
    spool_recovered(r->spool, delivery_recover_one, &rec);
    while (rec.resend != NULL) {
        struct delivery_job *job = rec.resend;

        rec.resend = job->held_next;
        job->held_next = NULL;
        delivery_resolve(job);
    }
    if (rec.resent > 0)
        log_info("spool: %zu alerts not yet delivered before the last stop are being sent again",
                 rec.resent);
    if (rec.unreadable > 0)
        log_error("spool: %zu records this version cannot read were left in the spool",
                  rec.unreadable);
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
 * is counted once. */
static void delivery_on_reload(evutil_socket_t fd, short what, void *arg)
{
    struct delivery *r = arg;
    struct delivery_reload_req req;
    int directory, audit;

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
    free(req.static_file);
    free(req.audit_file);
    if (!req.failed && !directory && !audit) {
        stats_add(r->stats, STAT_reloads, 1);
        log_info("SIGHUP: reload complete");
        return;
    }
    stats_add(r->stats, STAT_reload_failures, 1);
    log_error("SIGHUP: reload incomplete: the mappings %s, the static directory %s, the audit "
              "log %s",
              req.failed ? "kept" : "reloaded", directory ? "kept" : "reloaded",
              audit ? "kept on its previous file" : "reopened");
}

int delivery_new(const struct config *cfg, struct delivery **out)
{
    struct delivery *r;
    size_t ring = RESPONSE_RING_RECORDS * (size_t)DECISION_RECORD_MAX;
    int rc = ERR_NOMEM;

    *out = NULL;
    if (ring < RESPONSE_RING_MIN)
        ring = RESPONSE_RING_MIN;
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
    r->ev_spool_retry = evtimer_new(r->base, delivery_on_spool_retry, r);
    if (r->ev_drain == NULL || r->ev_reload == NULL || r->ev_spool_retry == NULL)
        goto out;
    r->held_end = &r->held;
    r->ready_end = &r->ready;
    r->stats = stats_register();
    r->dispatch_cfg = &cfg->dispatch;
    r->live = cfg->dispatch.mode != DISPATCH_DRY_RUN;
    jsonw_init(&r->payload, SPOOL_MAX_PAYLOAD);
    rc = dedup_new(cfg->dispatch.dedup_window_s, RESPONSE_DEDUP_MAX, &r->dedup);
    if (rc == 0 && (r->live || identity_uses_network(&cfg->identity)))
        rc = http_new(r->base, &r->http);
    if (rc != 0)
        goto out;
    rc = identity_new(&cfg->identity, r->base, r->http, r->stats, &r->id);
    if (rc != 0)
        goto out;
    rc = audit_open(&cfg->audit, &r->audit);
    if (rc != 0)
        goto out;
    if (r->live) {
        struct audit_config dead = {.file = cfg->spool.dead_letter};

        rc = dispatch_new(&cfg->dispatch, r->http, &r->dispatch);
        /* The spool first: it creates spool.dir, where the dead letters go
         * by default. */
        if (rc == 0)
            rc = spool_open(&cfg->spool, r->base, r->stats, &r->spool);
        if (rc == 0)
            rc = audit_open_as(&dead, "spool.dead_letter", &r->dead);
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

struct queue *delivery_queue(struct delivery *r)
{
    return r->q;
}

/* After the loop, on the thread: what is in flight ends here, and stays in
 * the spool for the next start. Lookups and requests still running
 * complete now (as failures, which only free their jobs); jobs waiting on
 * a retry timer are simply freed; jobs held for spool space were never
 * durable: they are counted and logged as lost. */
static void delivery_stop(struct delivery *r)
{
    size_t lost = 0;

    r->stopping = 1;
    identity_free(r->id);
    r->id = NULL;
    http_free(r->http);
    r->http = NULL;
    for (struct delivery_job *job = r->held; job != NULL; job = job->held_next)
        lost++;
    r->held = NULL;
    while (r->jobs != NULL)
        delivery_job_free(r->jobs);
    if (lost > 0) {
        stats_add(r->stats, STAT_decisions_dropped, lost);
        log_error("stopping with %zu alerts the spool could not take (full or failing): they "
                  "were not spooled and are lost (counted in decisions_dropped)",
                  lost);
    }
    spool_free(r->spool);
    r->spool = NULL;
}

static void *delivery_main(void *arg)
{
    struct delivery *r = arg;

    if (r->spool != NULL)
        delivery_recover(r);
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
        log_error("cannot start the response thread: %s", strerror(e));
        return ERR_IO;
    }
    r->started = 1;
    return 0;
}

void delivery_reload(struct delivery *r, const struct config *next, int mappings_failed)
{
    struct delivery_reload_req req = {.failed = next == NULL || mappings_failed};

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
    r->stopping = 1;
    identity_free(r->id);
    http_free(r->http);
    while (r->jobs != NULL)
        delivery_job_free(r->jobs);
    spool_free(r->spool);
    dispatch_free(r->dispatch);
    dedup_free(r->dedup);
    jsonw_free(&r->payload);
    audit_free(r->dead);
    audit_free(r->audit);
    free(r->audit_file);
    free(r->reload.static_file);
    free(r->reload.audit_file);
    pthread_mutex_destroy(&r->reload_lock);
    evloop_event_free(&r->ev_drain);
    evloop_event_free(&r->ev_reload);
    evloop_event_free(&r->ev_spool_retry);
    if (r->base != NULL)
        event_base_free(r->base);
    queue_free(r->q);
    free(r);
}
