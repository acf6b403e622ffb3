/* The response thread. Its loop wakes when a worker's push makes the
 * decision queue non-empty, and when the queue is closed (queue_set_notify):
 * then it ends once the queue is drained and no decision is in flight.
 *
 * Each record is decoded and its decisions copied into jobs owned by this
 * module (one allocation per decision: decisions are rare), so the record
 * goes back to the queue at once and the workers are not held up by an
 * identity lookup that completes later from the loop.
 *
 * Counters: the thread's own block, registered in response_new and handed
 * to the identity layer, is written only from the thread once it has
 * started (stats blocks have a single writer). A SIGHUP is counted here,
 * as reloads or reload_failures, once the directory and the audit log are
 * done, with what the daemon says of the configuration and the mappings
 * (response_reload). What a reload needs of the new configuration, two
 * paths, is copied into the pending request: the daemon frees that
 * configuration at once. */
#include "response.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "audit.h"
#include "decision.h"
#include "errors.h"
#include "identity.h"
#include "log.h"
#include "stats.h"

/* The ring holds this many of the largest records (real ones take a few
 * hundred bytes: some ten thousand of those), and at least
 * RESPONSE_RING_MIN. It is allocated once and, under a sustained load,
 * walked whole: this is what the queue costs in memory. */
#define RESPONSE_RING_RECORDS 128
#define RESPONSE_RING_MIN     ((size_t)4 << 20)
/* Records handled per loop iteration before the loop gets a turn (reload
 * events) and the handler re-activates itself. */
#define RESPONSE_BATCH 256

/* What the daemon asked of the next reload (response_reload). */
struct response_reload_req {
    int asked;         /* a reload is pending */
    int failed;        /* the configuration or the mappings did not load */
    int has_paths;     /* a configuration loaded: the two paths below apply */
    char *static_file; /* identity.static.file (NULL: the file in use) */
    char *audit_file;  /* audit.file (NULL: no audit log) */
};

struct response {
    struct queue *q;
    struct event_base *base;
    struct event *ev_drain;  /* activated by a push or the close (queue notify) */
    struct event *ev_reload; /* activated by response_reload */
    struct identity *id;
    struct audit *audit;
    const struct audit_config *audit_cfg; /* the running one (its hash settings) */
    char *audit_file;                     /* the file audit writes to; NULL: none */
    struct stats *stats;
    size_t in_flight; /* jobs waiting for their identity */
    pthread_mutex_t reload_lock;
    struct response_reload_req reload; /* guarded by reload_lock; taken by the thread */
    pthread_t thread;
    int started;
    void (*done)(void *arg);
    void *done_arg;
};

/* One decision from its record to its audit line. The texts are copies in
 * text[] (NUL-terminated). Freed by response_on_identity. */
struct response_job {
    struct response *r;
    struct timespec received;
    const char *source, *mapping;
    struct str rule, user, event;
    enum user_kind kind;
    char text[];
};

static struct log_ratelimit response_rl = LOG_RATELIMIT_INIT(60, 1);

/* By enum identity_status. */
static const struct {
    const char *outcome;
    enum stats_counter counter;
} response_outcomes[] = {
    [IDENTITY_FOUND] = {"would-dispatch", STAT_outcome_would_dispatch},
    [IDENTITY_NOT_FOUND] = {"unresolved-user", STAT_outcome_unresolved_user},
    [IDENTITY_ERROR] = {"failed", STAT_outcome_failed},
};

const char *response_dry_run_outcome(enum identity_status status)
{
    return response_outcomes[status].outcome;
}

/* Copies s to *at (NUL-terminated), advancing it. */
static struct str response_copy(char **at, struct str s)
{
    char *p = *at;

    if (s.len > 0)
        memcpy(p, s.p, s.len);
    p[s.len] = '\0';
    *at = p + s.len + 1;
    return str_make(p, s.len);
}

/* Copies s (NULL stays NULL) to *out. Returns 0 or ERR_NOMEM. */
static int response_dup(const char *s, char **out)
{
    *out = s != NULL ? strdup(s) : NULL;
    return s != NULL && *out == NULL ? ERR_NOMEM : 0;
}

/* Returns the job (free with free()), or NULL when out of memory. */
static struct response_job *response_job_new(struct response *r, const struct decision_record *d)
{
    size_t n = d->source.len + d->mapping.len + d->rule.len + d->user.len + d->event.len + 5;
    struct response_job *job = malloc(sizeof(*job) + n);
    char *at;

    if (job == NULL)
        return NULL;
    at = job->text;
    job->r = r;
    job->received = d->received;
    job->kind = d->user_kind;
    job->source = response_copy(&at, d->source).p;
    job->mapping = response_copy(&at, d->mapping).p;
    job->rule = response_copy(&at, d->rule);
    job->user = response_copy(&at, d->user);
    job->event = response_copy(&at, d->event);
    return job;
}

/* The loop ends once the queue is closed and drained and no job waits. */
static void response_check_done(struct response *r)
{
    if (r->in_flight == 0 && queue_done(r->q))
        event_base_loopbreak(r->base);
}

/* In dry-run a decision ends here: audited as what would be sent, with
 * why it would not be when the user was not found or the lookup failed.
 * The outcome is counted whether or not its audit line could be written
 * (see response.h). */
static void response_on_identity(void *arg, enum identity_status status, const char *email,
                                 const char *detail)
{
    struct response_job *job = arg;
    struct response *r = job->r;
    int found = status == IDENTITY_FOUND;
    struct audit_record ar = {
        .time = job->received,
        .source = job->source,
        .mapping = job->mapping,
        .rule = job->rule,
        .user = job->user,
        .email = found ? email : NULL,
        .event = job->event,
        .outcome = response_outcomes[status].outcome,
        .detail = found ? NULL : detail,
    };

    stats_add(r->stats, response_outcomes[status].counter, 1);
    if (r->audit != NULL)
        stats_add(r->stats, audit_write(r->audit, &ar) == 0 ? STAT_audit_lines : STAT_audit_errors,
                  1);
    free(job);
    r->in_flight--;
    response_check_done(r);
}

/* Copies the record's decisions out, releases it, then resolves each. */
static void response_take(struct response *r, struct str rec)
{
    struct response_job *jobs[MAPPING_MAX_DECISIONS];
    struct decision_record d;
    size_t n = 0, pos = 0;
    int rc = 0;

    /* decision_next checks the whole record first: all or nothing. */
    while (n < MAPPING_MAX_DECISIONS && (rc = decision_next(rec, &pos, &d)) == 0) {
        jobs[n] = response_job_new(r, &d);
        if (jobs[n] != NULL) {
            n++;
            continue;
        }
        stats_add(r->stats, STAT_decisions_dropped, 1);
        log_limited(&response_rl, LOG_LVL_ERROR,
                    "out of memory: a decision of mapping %.*s was dropped", (int)d.mapping.len,
                    d.mapping.p);
    }
    if (rc == ERR_INVALID)
        log_limited(&response_rl, LOG_LVL_ERROR, "a corrupt decision record was dropped");
    queue_release(r->q);
    /* All of them first: a job that completes at once must not see the
     * count at zero while its siblings still wait. */
    r->in_flight += n;
    for (size_t i = 0; i < n; i++) {
        identity_resolve(r->id, jobs[i]->user, jobs[i]->kind, response_on_identity, jobs[i]);
    }
}

static void response_on_drain(evutil_socket_t fd, short what, void *arg)
{
    struct response *r = arg;
    struct str rec;

    (void)fd;
    (void)what;
    for (int i = 0; i < RESPONSE_BATCH; i++) {
        if (queue_peek(r->q, &rec, 0) != 0) {
            response_check_done(r);
            return;
        }
        response_take(r, rec);
    }
    event_active(r->ev_drain, 0, 0);
}

/* From the pushing worker's thread. */
static void response_notify(void *arg)
{
    struct response *r = arg;

    event_active(r->ev_drain, 0, 0);
}

/* audit.file changed: the new file is opened with the running hash
 * settings; only when it opens does it replace the old one. file (NULL: no
 * audit log) is transferred. Returns 0 or the audit_open error. */
static int response_move_audit(struct response *r, char *file)
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

static int response_same_path(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* Every part is reloaded whatever became of the others, then the reload
 * is counted once. */
static void response_on_reload(evutil_socket_t fd, short what, void *arg)
{
    struct response *r = arg;
    struct response_reload_req req;
    int directory, audit;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&r->reload_lock);
    req = r->reload;
    r->reload = (struct response_reload_req){0};
    pthread_mutex_unlock(&r->reload_lock);
    /* The request of an activation that came after this thread had already
     * taken it (with the one before): done and counted. */
    if (!req.asked)
        return;
    /* identity_reload logs what it did. */
    directory = !req.has_paths || identity_reload(r->id, req.static_file) != 0;
    if (req.has_paths && !response_same_path(req.audit_file, r->audit_file)) {
        audit = response_move_audit(r, req.audit_file) != 0;
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

int response_new(const struct config *cfg, struct response **out)
{
    struct response *r;
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
    r->ev_drain = event_new(r->base, -1, 0, response_on_drain, r);
    r->ev_reload = event_new(r->base, -1, 0, response_on_reload, r);
    if (r->ev_drain == NULL || r->ev_reload == NULL)
        goto out;
    r->stats = stats_register();
    rc = identity_new(&cfg->identity, r->base, r->stats, &r->id);
    if (rc != 0)
        goto out;
    rc = audit_open(&cfg->audit, &r->audit);
    if (rc != 0)
        goto out;
    rc = response_dup(cfg->audit.file, &r->audit_file);
    if (rc != 0)
        goto out;
    queue_set_notify(r->q, response_notify, r);
    *out = r; /* transferred */
    r = NULL;
out:
    response_free(r);
    return rc;
}

struct queue *response_queue(struct response *r)
{
    return r->q;
}

static void *response_main(void *arg)
{
    struct response *r = arg;

    /* Only activated events wake it, so it must not end when none is added:
     * response_check_done ends it. */
    event_base_loop(r->base, EVLOOP_NO_EXIT_ON_EMPTY);
    r->done(r->done_arg);
    return NULL;
}

int response_start(struct response *r, void (*done)(void *arg), void *arg)
{
    int e;

    r->done = done;
    r->done_arg = arg;
    e = pthread_create(&r->thread, NULL, response_main, r);
    if (e != 0) {
        log_error("cannot start the response thread: %s", strerror(e));
        return ERR_IO;
    }
    r->started = 1;
    return 0;
}

void response_reload(struct response *r, const struct config *next, int mappings_failed)
{
    struct response_reload_req req = {.failed = next == NULL || mappings_failed};

    if (next != NULL) {
        req.has_paths = response_dup(next->identity.static_dir.file, &req.static_file) == 0 &&
                        response_dup(next->audit.file, &req.audit_file) == 0;
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
        struct response_reload_req old = r->reload;

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

void response_free(struct response *r)
{
    if (r == NULL)
        return;
    if (r->started)
        pthread_join(r->thread, NULL);
    /* After the thread, nothing is in flight: identity_free completes no job. */
    identity_free(r->id);
    audit_free(r->audit);
    free(r->audit_file);
    free(r->reload.static_file);
    free(r->reload.audit_file);
    pthread_mutex_destroy(&r->reload_lock);
    if (r->ev_drain != NULL)
        event_free(r->ev_drain);
    if (r->ev_reload != NULL)
        event_free(r->ev_reload);
    if (r->base != NULL)
        event_base_free(r->base);
    queue_free(r->q);
    free(r);
}
