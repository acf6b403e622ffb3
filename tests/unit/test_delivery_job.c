/* The delivery state machine (job.h) driven through fake ops: no thread,
 * no event loop, no file, no socket. The fakes record what the machine
 * asks (appends, completions, lookups, requests, audit and dead-letter
 * lines, timers) and the tests answer each one when they choose, on a
 * fixed clock with fixed jitter. The duplicate window and the counters
 * are the real ones. Covered: 503 with Retry-After then 2xx; Retry-After 0
 * still waits the backoff; a 4xx to the dead letters, completed in the
 * spool only after its dead-letter line was durably written (a line that
 * cannot be written stays in the spool and is written again after a
 * backoff, then completed; a stop meanwhile leaves it in the spool); a
 * full spool holds the job
 * and the intake, and the hold timer resumes both; a write the disk
 * refused holds it too; recovery after a crash (pending entries resent,
 * done ones refill the duplicate window, unreadable ones left); a stop
 * while a job waits on its timer, while one is sent, and while one is
 * held; a duplicate inside the window; an unresolved user; a resolver
 * failure retried; one dispatch slot for two jobs; the dry run; a request
 * the dispatcher refused (out of memory) retried; a retry timer that
 * cannot be made (the job is left in the spool); the hold timer made with
 * the set, so a refusal always arms it; the jitter without random bits;
 * the intake told once per tagged job when its alert is durable (or lost
 * at a stop), and a duplicate of an alert not yet durable told with it. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stats.h"
#include "deliver/dedup.h"
#include "deliver/job.h"
#include "decide/mapping.h"
#include "decide/policy.h"
#include "errors.h"
#include "unit.h"

#define MAX_EVENTS 32
#define JITTER     2345u /* the fake's random bits: backoff 343 ms, then 344 ms (1..60 s) */

struct fake_timer {
    int armed;
    int64_t ms;
    void (*fire)(void *arg);
    void *arg;
};

struct fake_line {
    char outcome[32], detail[64], email[40], key[DECISION_KEY_SIZE], action[32];
    int status, attempts, dead;
    size_t completed_before; /* completions journaled when it was written */
    long latency_ms;
};

static struct fake {
    /* spool */
    int append_rc; /* what the next append returns */
    uint64_t next_id;
    size_t appends;
    struct {
        spool_durable_cb cb;
        void *arg;
    } durable[MAX_EVENTS];
    size_t n_durable;
    char payload[MAX_EVENTS][1024]; /* what each append spooled */
    uint64_t completed[MAX_EVENTS];
    size_t n_completed;
    const char *recovered[4]; /* payloads the spool lists at start */
    int recovered_done[4];
    size_t n_recovered;
    /* identity */
    struct {
        identity_cb cb;
        void *arg;
        char user[32];
    } lookups[MAX_EVENTS];
    size_t n_lookups, lookups_made;
    /* dispatch */
    int send_rc;
    struct {
        dispatch_cb cb;
        void *arg;
        char email[40], key[DECISION_KEY_SIZE];
        const struct policy_action *action;
    } sends[MAX_EVENTS];
    size_t n_sends, sends_made;
    /* audit */
    struct fake_line lines[MAX_EVENTS];
    size_t n_lines;
    int dead_rc; /* what a dead-letter write returns */
    /* clock */
    int random_rc; /* what random returns (non-zero: no bits) */
    /* timers */
    int timer_new_rc; /* what timer_new returns */
    struct fake_timer *timers[MAX_EVENTS];
    size_t n_timers;
    /* intake */
    int settled, resumed;
    struct {
        void *tag;
        unsigned index;
        int durable, duplicate;
    } intake[MAX_EVENTS];
    size_t n_intake, n_job_settled;
} fk;

/* ---- the fake ops ---- */

static int fake_spool_append(void *ctx, struct str payload, spool_durable_cb cb, void *arg,
                             uint64_t *id)
{
    (void)ctx;
    fk.appends++;
    if (fk.append_rc != 0)
        return fk.append_rc;
    snprintf(fk.payload[fk.n_durable], sizeof(fk.payload[0]), "%.*s", (int)payload.len, payload.p);
    *id = ++fk.next_id;
    fk.durable[fk.n_durable].cb = cb;
    fk.durable[fk.n_durable].arg = arg;
    fk.n_durable++;
    return 0;
}

static void fake_spool_complete(void *ctx, uint64_t id)
{
    (void)ctx;
    fk.completed[fk.n_completed++] = id;
}

static void fake_spool_recovered(void *ctx,
                                 void (*each)(void *arg, uint64_t id, struct str payload, int done,
                                              int64_t age_ms),
                                 void *arg)
{
    (void)ctx;
    for (size_t i = 0; i < fk.n_recovered; i++)
        each(arg, 100 + i, str_make(fk.recovered[i], strlen(fk.recovered[i])), fk.recovered_done[i],
             0);
}

static void fake_resolve(void *ctx, struct str user, enum user_kind kind, identity_cb cb, void *arg)
{
    (void)ctx;
    (void)kind;
    fk.lookups_made++;
    fk.lookups[fk.n_lookups].cb = cb;
    fk.lookups[fk.n_lookups].arg = arg;
    snprintf(fk.lookups[fk.n_lookups].user, sizeof(fk.lookups[0].user), "%.*s", (int)user.len,
             user.p);
    fk.n_lookups++;
}

static int fake_send(void *ctx, const struct dispatch_alert *a, dispatch_cb cb, void *arg)
{
    (void)ctx;
    if (fk.send_rc != 0)
        return fk.send_rc;
    fk.sends_made++;
    fk.sends[fk.n_sends].cb = cb;
    fk.sends[fk.n_sends].arg = arg;
    snprintf(fk.sends[fk.n_sends].email, sizeof(fk.sends[0].email), "%s", a->email);
    snprintf(fk.sends[fk.n_sends].key, sizeof(fk.sends[0].key), "%s", a->key);
    fk.sends[fk.n_sends].action = a->action;
    fk.n_sends++;
    return 0;
}

static int fake_audit(void *ctx, int to_dead, const struct audit_record *r)
{
    struct fake_line *l = &fk.lines[fk.n_lines++];

    (void)ctx;
    snprintf(l->outcome, sizeof(l->outcome), "%s", r->outcome);
    snprintf(l->detail, sizeof(l->detail), "%s", r->detail ? r->detail : "");
    snprintf(l->email, sizeof(l->email), "%s", r->email ? r->email : "");
    snprintf(l->key, sizeof(l->key), "%s", r->key ? r->key : "");
    snprintf(l->action, sizeof(l->action), "%s", r->action ? r->action : "");
    l->status = r->status;
    l->attempts = r->attempts;
    l->latency_ms = r->latency_ms;
    l->dead = to_dead;
    l->completed_before = fk.n_completed;
    return to_dead ? fk.dead_rc : 0;
}

static struct timespec fake_realtime(void *ctx)
{
    (void)ctx;
    return (struct timespec){1000, 500000000}; /* 1.5 s after the decisions' receipt */
}

static int fake_random(void *ctx, uint64_t *out)
{
    (void)ctx;
    *out = JITTER;
    return fk.random_rc;
}

static int fake_timer_new(void *ctx, void (*fire)(void *arg), void *arg, void **out)
{
    struct fake_timer *ft;

    (void)ctx;
    *out = NULL;
    if (fk.timer_new_rc != 0)
        return fk.timer_new_rc;
    ft = calloc(1, sizeof(*ft));
    if (ft == NULL)
        abort();
    ft->fire = fire;
    ft->arg = arg;
    fk.timers[fk.n_timers++] = ft;
    *out = ft;
    return 0;
}

static void fake_timer_arm(void *ctx, void *t, int64_t ms)
{
    struct fake_timer *ft = t;

    (void)ctx;
    ft->armed = 1;
    ft->ms = ms;
}

static int fake_timer_pending(void *ctx, void *t)
{
    (void)ctx;
    return t != NULL && ((struct fake_timer *)t)->armed;
}

static void fake_timer_free(void *ctx, void **t)
{
    (void)ctx;
    for (size_t i = 0; *t != NULL && i < fk.n_timers; i++) {
        if (fk.timers[i] == *t) {
            fk.timers[i] = fk.timers[--fk.n_timers];
            break;
        }
    }
    free(*t);
    *t = NULL;
}

static void fake_settled(void *ctx)
{
    (void)ctx;
    fk.settled++;
}

static void fake_resume(void *ctx)
{
    (void)ctx;
    fk.resumed++;
}

static void fake_job_settled(void *ctx, void *intake, unsigned index, int durable, int duplicate)
{
    (void)ctx;
    fk.n_job_settled++;
    if (intake == NULL)
        return;
    fk.intake[fk.n_intake].tag = intake;
    fk.intake[fk.n_intake].index = index;
    fk.intake[fk.n_intake].durable = durable;
    fk.intake[fk.n_intake].duplicate = duplicate;
    fk.n_intake++;
}

static const struct job_ops fake_ops = {
    .spool_append = fake_spool_append,
    .spool_complete = fake_spool_complete,
    .spool_recovered = fake_spool_recovered,
    .resolve = fake_resolve,
    .send = fake_send,
    .audit = fake_audit,
    .realtime = fake_realtime,
    .random = fake_random,
    .timer_new = fake_timer_new,
    .timer_arm = fake_timer_arm,
    .timer_pending = fake_timer_pending,
    .timer_free = fake_timer_free,
    .settled = fake_settled,
    .resume = fake_resume,
    .job_settled = fake_job_settled,
};

/* ---- driving the machine ---- */

static struct stats *stats;
static struct dedup *dedup;
static uint64_t base[STAT_COUNT];

static const char key_a[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char key_b[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/* A set with one slot (or more), a fresh duplicate window and fakes. */
static struct jobs *set(int live, int slots)
{
    struct job_config cfg = {live, slots, 1, 60, 1000};
    struct jobs *s;

    memset(&fk, 0, sizeof(fk));
    dedup_free(dedup);
    if (dedup_new(300, 64 * DEDUP_ENTRY_BYTES, &dedup) != 0 ||
        jobs_new(&cfg, &fake_ops, dedup, stats, &s) != 0)
        abort();
    stats_sum(base);
    return s;
}

/* How much counter c moved since set(). */
static uint64_t moved(enum stats_counter c)
{
    uint64_t now[STAT_COUNT];

    stats_sum(now);
    return now[c] - base[c];
}

/* One decision for user, with key, received at 999 s and nsec ns, tagged
 * for its intake with tag (NULL: untagged). */
static void take_tagged(struct jobs *s, const char *user, const char *key, long nsec, void *tag)
{
    struct decision_record d = {
        .received = {999, nsec},
        .source = STR_LIT("10.0.0.5:514"),
        .mapping = STR_LIT("m"),
        .rule = STR_LIT("a rule"),
        .user = str_make(user, strlen(user)),
        .event = STR_LIT("an event"),
        .user_kind = USER_KIND_UPN,
        .key = str_make(key, strlen(key)),
    };
    struct job *job;

    if (job_new(s, &d, &job) != 0)
        abort();
    if (tag != NULL)
        job_set_intake(job, tag, (unsigned)nsec % 8);
    jobs_start(s, &job, 1);
}

static void take_at(struct jobs *s, const char *user, const char *key, long nsec)
{
    take_tagged(s, user, key, nsec, NULL);
}

/* One decision for user, with key, received at 999 s. */
static void take(struct jobs *s, const char *user, const char *key)
{
    take_at(s, user, key, 0);
}

/* The spool says append i is durable (rc 0) or refused. */
static void durable(size_t i, int rc)
{
    fk.durable[i].cb(fk.durable[i].arg, rc);
}

static void answer_lookup(size_t i, enum identity_status st, const char *email, const char *detail)
{
    fk.lookups[i].cb(fk.lookups[i].arg, st, email, detail);
}

static void answer_send(size_t i, int status, int64_t retry_after_s, const char *reason)
{
    struct dispatch_result res = {retry_classify(status), status, retry_after_s, reason};

    fk.sends[i].cb(fk.sends[i].arg, &res);
}

/* The armed timer made last, or NULL. */
static struct fake_timer *armed(void)
{
    for (size_t i = fk.n_timers; i > 0; i--) {
        if (fk.timers[i - 1]->armed)
            return fk.timers[i - 1];
    }
    return NULL;
}

static void fire(struct fake_timer *t)
{
    t->armed = 0;
    t->fire(t->arg);
}

static void check_line(const char *ctx, size_t i, const char *outcome, const char *detail,
                       int status, int dead)
{
    struct fake_line *l;

    if (i >= fk.n_lines) {
        UNIT_FAIL("%s: no line %zu (%zu lines)", ctx, i, fk.n_lines);
        return;
    }
    l = &fk.lines[i];
    CHECK_STR(ctx, str_make(l->outcome, strlen(l->outcome)), outcome);
    CHECK_STR(ctx, str_make(l->detail, strlen(l->detail)), detail);
    CHECK_INT(l->status, status);
    CHECK_INT(l->dead, dead);
}

/* ---- tests ---- */

/* 503 with Retry-After: 120 waits 120 s (over the 343 ms backoff), then
 * the lookup runs again and a 2xx completes the spool entry. */
static void test_retry_after_then_2xx(void)
{
    struct jobs *s = set(1, 4);
    struct fake_timer *t;

    take(s, "jdoe@example.com", key_a);
    CHECK_INT(fk.appends, 1);
    CHECK_INT(jobs_count(s, JOB_SPOOLING), 1);
    CHECK_INT(jobs_in_flight(s), 1);
    durable(0, 0);
    CHECK_INT(jobs_in_flight(s), 0);
    CHECK_INT(fk.settled, 1);
    CHECK_INT(jobs_count(s, JOB_RESOLVING), 1);
    check_line("spooled", 0, "spooled", "", 0, 0);
    CHECK_STR("spooled key", str_make(fk.lines[0].key, strlen(fk.lines[0].key)), key_a);
    CHECK_INT(fk.lines[0].latency_ms, 1500);
    answer_lookup(0, IDENTITY_FOUND, "jdoe@corp.example", "static");
    CHECK_INT(jobs_count(s, JOB_SENDING), 1);
    CHECK_STR("email sent", str_make(fk.sends[0].email, strlen(fk.sends[0].email)),
              "jdoe@corp.example");
    answer_send(0, 503, 120, "HTTP 503: busy");
    CHECK_INT(jobs_count(s, JOB_WAITING), 1);
    check_line("retry", 1, "retry", "HTTP 503: busy", 503, 0);
    t = armed();
    CHECK(t != NULL);
    if (t == NULL)
        goto out;
    CHECK_INT(t->ms, 120000);
    CHECK_INT(moved(STAT_dispatch_retries), 1);
    CHECK_INT(fk.n_completed, 0);
    fire(t);
    CHECK_INT(jobs_count(s, JOB_RESOLVING), 1);
    CHECK_INT(fk.lookups_made, 2);
    answer_lookup(1, IDENTITY_FOUND, "jdoe@corp.example", "cache");
    answer_send(1, 201, -1, NULL);
    check_line("dispatched", 2, "dispatched", "", 201, 0);
    CHECK_INT(fk.lines[2].attempts, 2);
    CHECK_INT(fk.n_completed, 1);
    CHECK_INT(fk.completed[0], 1);
    CHECK_INT(moved(STAT_outcome_dispatched), 1);
    CHECK_INT(moved(STAT_outcome_spooled), 1);
    CHECK_INT(moved(STAT_dispatch_requests), 2);
    CHECK_INT(moved(STAT_audit_lines), 3);
    CHECK_INT(jobs_count(s, JOB_SENDING) + jobs_count(s, JOB_WAITING), 0);
out:
    jobs_free(s);
    CHECK_INT(fk.n_timers, 0);
}

/* Retry-After is a floor: "0" still waits the backoff, which grows. */
static void test_retry_after_zero(void)
{
    struct jobs *s = set(1, 4);
    struct fake_timer *t;

    take(s, "jdoe@example.com", key_a);
    durable(0, 0);
    answer_lookup(0, IDENTITY_FOUND, "jdoe@corp.example", "static");
    answer_send(0, 429, 0, "HTTP 429");
    t = armed();
    CHECK(t != NULL && t->ms == 343);
    if (t == NULL)
        goto out;
    fire(t);
    answer_lookup(1, IDENTITY_FOUND, "jdoe@corp.example", "static");
    answer_send(1, 0, -1, "timeout after 30 s");
    t = armed();
    CHECK(t != NULL && t->ms == 344);
    CHECK_INT(moved(STAT_dispatch_retries), 2);
out:
    jobs_free(s);
}

/* A 4xx is final: audited and dead-lettered with its status and reason,
 * and completed in the spool. */
static void test_4xx_dead_letter(void)
{
    struct jobs *s = set(1, 4);

    take(s, "jdoe@example.com", key_a);
    durable(0, 0);
    answer_lookup(0, IDENTITY_FOUND, "jdoe@corp.example", "static");
    answer_send(0, 400, -1, "HTTP 400: bad event");
    check_line("4xx audit", 1, "failed", "HTTP 400: bad event", 400, 0);
    check_line("4xx dead", 2, "failed", "HTTP 400: bad event", 400, 1);
    CHECK_INT(fk.n_lines, 3);
    CHECK_INT(fk.n_completed, 1);
    CHECK_INT(moved(STAT_outcome_failed), 1);
    CHECK_INT(moved(STAT_outcome_dead_letter), 1);
    CHECK_INT(moved(STAT_dispatch_retries), 0);
    CHECK(armed() == NULL);
    /* The line was written (durably: ops->audit said 0) before the
     * completion, never after it. */
    CHECK_INT(fk.lines[2].completed_before, 0);
    jobs_free(s);
}

/* The dead-letter file refuses the line (a full disk): the alert is not
 * completed but waits in the spool, and its line is written again after
 * the backoff (343 ms, then 344 ms with the fake's jitter) until the file
 * takes it; only then is it completed. The outcome and its audit line
 * count once; each failed write counts in dead_letter_errors. */
static void test_dead_letter_retried(void)
{
    struct jobs *s = set(1, 4);
    struct fake_timer *t;

    fk.dead_rc = ERR_IO;
    take(s, "jdoe@example.com", key_a);
    durable(0, 0);
    answer_lookup(0, IDENTITY_FOUND, "jdoe@corp.example", "static");
    answer_send(0, 403, -1, "HTTP 403: no such user");
    CHECK_INT(fk.n_completed, 0);
    CHECK_INT(moved(STAT_dead_letter_errors), 1);
    CHECK_INT(moved(STAT_outcome_dead_letter), 0);
    CHECK_INT(moved(STAT_outcome_failed), 1);
    CHECK_INT(jobs_count(s, JOB_SENDING), 0);
    CHECK_INT(jobs_count(s, JOB_DEAD_WAIT), 1);
    t = armed();
    CHECK(t != NULL && t->ms == 343);
    if (t == NULL)
        goto out;
    fire(t);
    CHECK_INT(fk.n_completed, 0);
    CHECK_INT(moved(STAT_dead_letter_errors), 2);
    CHECK(armed() == t && t->ms == 344);
    fk.dead_rc = 0;
    fire(t);
    CHECK_INT(fk.n_completed, 1);
    CHECK_INT(fk.completed[0], 1);
    CHECK_INT(moved(STAT_outcome_dead_letter), 1);
    CHECK_INT(moved(STAT_outcome_failed), 1);
    CHECK_INT(moved(STAT_dead_letter_errors), 2);
    /* spooled, failed (audit), then three dead-letter tries, the same line
     * each time; the one that went through came before the completion. */
    CHECK_INT(fk.n_lines, 5);
    check_line("audited once", 1, "failed", "HTTP 403: no such user", 403, 0);
    for (size_t i = 2; i < 5; i++)
        check_line("dead again", i, "failed", "HTTP 403: no such user", 403, 1);
    CHECK_INT(fk.lines[4].completed_before, 0);
    CHECK_STR("dead email", str_make(fk.lines[4].email, strlen(fk.lines[4].email)),
              "jdoe@corp.example");
    CHECK_INT(jobs_count(s, JOB_DEAD_WAIT), 0);
    CHECK(armed() == NULL);
    jobs_free(s);

    /* A stop while it waits: freed, not completed (the next start sends it
     * again), its timer with it. */
    s = set(1, 4);
    fk.dead_rc = ERR_IO;
    take(s, "jdoe@example.com", key_a);
    durable(0, 0);
    answer_lookup(0, IDENTITY_NOT_FOUND, NULL, "static: not listed");
    CHECK_INT(jobs_count(s, JOB_DEAD_WAIT), 1);
    CHECK(armed() != NULL);
    jobs_stop(s);
out:
    jobs_free(s);
    CHECK_INT(fk.n_completed, 0);
    CHECK_INT(fk.n_timers, 0);
    CHECK_INT(moved(STAT_decisions_dropped), 0);
}

/* A full spool holds the job (and tells the intake it may end: only held
 * jobs are left); the hold timer tries again and, once the spool took it
 * (its answer, not the timer's sending it again), the intake resumes. A
 * write the disk refused holds it the same way, and the intake stays
 * paused through the timer's next try until the spool says it is in. */
static void test_spool_full_hold_resume(void)
{
    struct jobs *s = set(1, 4);
    struct fake_timer *t;

    fk.append_rc = ERR_TOOBIG;
    take(s, "jdoe@example.com", key_a);
    CHECK_INT(jobs_count(s, JOB_HELD), 1);
    CHECK_INT(jobs_held(s), 1);
    CHECK_INT(jobs_in_flight(s), 1);
    CHECK_INT(fk.settled, 1);
    CHECK_INT(moved(STAT_spool_full), 1);
    t = armed();
    CHECK(t != NULL && t->ms == 1000);
    if (t == NULL)
        goto out;
    /* Still full: held again, the timer armed again. */
    fire(t);
    CHECK_INT(jobs_count(s, JOB_HELD), 1);
    CHECK_INT(fk.resumed, 0);
    CHECK(t->armed);
    CHECK_INT(moved(STAT_spool_full), 2);
    fk.append_rc = 0;
    fire(t);
    CHECK_INT(jobs_count(s, JOB_SPOOLING), 1);
    CHECK_INT(jobs_held(s), 1); /* sent again, not yet answered */
    CHECK_INT(fk.resumed, 0);
    CHECK_INT(fk.appends, 3);
    /* The disk refuses the write: held again until the timer, the intake
     * still paused. */
    durable(0, ERR_IO);
    CHECK_INT(jobs_count(s, JOB_HELD), 1);
    CHECK_INT(jobs_held(s), 1);
    CHECK_INT(fk.resumed, 0);
    CHECK_INT(moved(STAT_spool_full), 3);
    fire(t);
    CHECK_INT(fk.resumed, 0);
    durable(1, 0);
    CHECK_INT(jobs_count(s, JOB_RESOLVING), 1);
    CHECK_INT(jobs_held(s), 0);
    CHECK_INT(fk.resumed, 1);
    CHECK_INT(jobs_in_flight(s), 0);
    check_line("spooled after hold", 0, "spooled", "", 0, 0);
out:
    jobs_free(s);
}

/* At start the spool lists what a crash left: the pending entry is
 * resolved and sent again (and completed under its old id), the done one
 * refills the duplicate window (a new decision with its key is a
 * duplicate), an unreadable one is left alone. */
static void test_recovery(void)
{
    static char pending[512], done[512];
    struct jobs *s = set(1, 4);

    snprintf(pending, sizeof(pending),
             "{\"v\":1,\"sec\":999,\"nsec\":0,\"source\":\"s\",\"mapping\":\"m\",\"rule\":\"r\","
             "\"user\":\"old@example.com\",\"kind\":2,\"event\":\"e\",\"key\":\"%s\"}",
             key_a);
    snprintf(done, sizeof(done),
             "{\"v\":1,\"sec\":999,\"nsec\":0,\"source\":\"s\",\"mapping\":\"m\",\"rule\":\"r\","
             "\"user\":\"done@example.com\",\"kind\":2,\"event\":\"e\",\"key\":\"%s\"}",
             key_b);
    fk.recovered[0] = pending;
    fk.recovered[1] = done;
    fk.recovered_done[1] = 1;
    fk.recovered[2] = "{\"v\":9}";
    fk.n_recovered = 3;
    jobs_recover(s);
    CHECK_INT(moved(STAT_spool_recovered), 1);
    CHECK_INT(fk.lookups_made, 1);
    CHECK_STR("resent user", str_make(fk.lookups[0].user, strlen(fk.lookups[0].user)),
              "old@example.com");
    CHECK_INT(jobs_in_flight(s), 0);
    CHECK_INT(fk.appends, 0);
    take(s, "done@example.com", key_b);
    CHECK_INT(moved(STAT_outcome_duplicate), 1);
    CHECK_INT(fk.appends, 0);
    answer_lookup(0, IDENTITY_FOUND, "old@corp.example", "static");
    answer_send(0, 200, -1, NULL);
    CHECK_INT(fk.n_completed, 1);
    CHECK_INT(fk.completed[0], 100);
    jobs_free(s);
}

/* A stop while one job waits on its retry timer, one is being sent and
 * one is held: nothing more is audited or completed (the spool sends the
 * first two again at the next start), the late answer only frees its
 * job, the held one is counted as lost, and every timer is freed. */
static void test_stop(void)
{
    struct jobs *s = set(1, 4);
    size_t lines;

    take(s, "a@example.com", key_a);
    durable(0, 0);
    answer_lookup(0, IDENTITY_ERROR, NULL, "graph: HTTP 503");
    CHECK_INT(jobs_count(s, JOB_WAITING), 1);
    take(s, "b@example.com", key_b);
    durable(1, 0);
    answer_lookup(1, IDENTITY_FOUND, "b@corp.example", "static");
    CHECK_INT(jobs_count(s, JOB_SENDING), 1);
    fk.append_rc = ERR_TOOBIG;
    take(s, "c@example.com", "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc");
    CHECK_INT(jobs_count(s, JOB_HELD), 1);
    lines = fk.n_lines;
    jobs_stop(s);
    answer_send(0, 200, -1, NULL);
    CHECK_INT(fk.n_lines, lines);
    CHECK_INT(fk.n_completed, 0);
    CHECK_INT(jobs_count(s, JOB_SENDING), 0);
    CHECK_INT(jobs_count(s, JOB_WAITING), 1);
    jobs_free(s);
    CHECK_INT(fk.n_lines, lines);
    CHECK_INT(fk.n_completed, 0);
    CHECK_INT(fk.n_timers, 0);
    CHECK_INT(moved(STAT_decisions_dropped), 1);
    CHECK_INT(moved(STAT_outcome_dispatched), 0);
}

/* The same key inside the window: audited as a duplicate, never spooled. */
static void test_duplicate(void)
{
    struct jobs *s = set(1, 4);

    take(s, "jdoe@example.com", key_a);
    take(s, "jdoe@example.com", key_a);
    CHECK_INT(fk.appends, 1);
    check_line("duplicate", 0, "duplicate", "same idempotency key inside dispatch.dedup_window_s",
               0, 0);
    CHECK_INT(moved(STAT_outcome_duplicate), 1);
    CHECK_INT(jobs_in_flight(s), 1);
    take(s, "jdoe@example.com", key_b);
    CHECK_INT(fk.appends, 2);
    jobs_free(s);
}

/* The intake hears of a tagged job once, when it stops counting in flight:
 * durable once spooled (not when appended, nor when sent), at once for a
 * duplicate, "lost" for one held at a stop; never for an untagged job. */
static void test_intake_answers(void)
{
    struct jobs *s = set(1, 4);
    int a, b, c;

    take_tagged(s, "a@example.com", key_a, 0, &a);
    CHECK_INT(fk.n_intake, 0);
    durable(0, 0);
    CHECK_INT(fk.n_intake, 1);
    CHECK(fk.intake[0].tag == &a && fk.intake[0].durable == 1 && !fk.intake[0].duplicate);
    answer_lookup(0, IDENTITY_FOUND, "a@corp.example", "static");
    answer_send(0, 200, -1, NULL);
    CHECK_INT(fk.n_intake, 1);
    take_tagged(s, "a@example.com", key_a, 0, &b);
    CHECK_INT(fk.n_intake, 2);
    CHECK(fk.intake[1].tag == &b && fk.intake[1].durable == 1 && fk.intake[1].duplicate);
    take(s, "untagged@example.com",
         "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
    fk.append_rc = ERR_TOOBIG;
    take_tagged(s, "c@example.com", key_b, 0, &c);
    CHECK_INT(jobs_count(s, JOB_HELD), 1);
    CHECK_INT(fk.n_intake, 2);
    jobs_stop(s);
    jobs_free(s);
    CHECK_INT(fk.n_intake, 3);
    CHECK(fk.intake[2].tag == &c && fk.intake[2].durable == 0);
    /* a, b, the untagged one (spooled: the fake takes appends at once
     * unless told otherwise) and c. */
    CHECK_INT(fk.n_job_settled, 3);
}

/* A resend of an alert that is not durable yet (held for spool space, or
 * appended and not yet fsynced) is a duplicate, but it is answered only
 * with the first: durable when the first is, lost when the first is lost
 * at a stop. Answering it at once would acknowledge an alert that could
 * still be lost. */
static void test_duplicate_waits_for_first(void)
{
    struct jobs *s = set(1, 4);
    int first, again, third, fourth;

    take_tagged(s, "a@example.com", key_a, 0, &first);
    take_tagged(s, "a@example.com", key_a, 5, &again); /* decision 5 of its record */
    CHECK_INT(moved(STAT_outcome_duplicate), 1);
    CHECK_INT(fk.n_intake, 0);
    durable(0, 0);
    CHECK_INT(fk.n_intake, 2);
    CHECK(fk.intake[0].tag == &first && fk.intake[1].tag == &again);
    CHECK(fk.intake[1].durable == 1);
    /* The first is no duplicate; its repeat is, with its own index. */
    CHECK(!fk.intake[0].duplicate && fk.intake[1].duplicate && fk.intake[1].index == 5);
    /* Durable by now: a later repeat is answered at once. */
    take_tagged(s, "a@example.com", key_a, 0, &third);
    CHECK_INT(fk.n_intake, 3);
    CHECK(fk.intake[2].tag == &third && fk.intake[2].durable == 1 && fk.intake[2].duplicate);
    /* Held when the agent stops: the first and its repeat are both lost. */
    fk.append_rc = ERR_TOOBIG;
    take(s, "b@example.com", key_b);
    take_tagged(s, "b@example.com", key_b, 0, &fourth);
    CHECK_INT(fk.n_intake, 3);
    jobs_stop(s);
    jobs_free(s);
    CHECK_INT(fk.n_intake, 4);
    CHECK(fk.intake[3].tag == &fourth && fk.intake[3].durable == 0);
}

/* No resolver knows the user: dead-lettered with the detail, completed,
 * no request made. */
static void test_unresolved(void)
{
    struct jobs *s = set(1, 4);

    take(s, "ghost@example.com", key_a);
    durable(0, 0);
    answer_lookup(0, IDENTITY_NOT_FOUND, NULL, "static: not listed");
    check_line("unresolved", 1, "unresolved-user", "static: not listed", 0, 0);
    check_line("unresolved dead", 2, "unresolved-user", "static: not listed", 0, 1);
    CHECK_INT(fk.sends_made, 0);
    CHECK_INT(fk.n_completed, 1);
    CHECK_INT(moved(STAT_outcome_unresolved_user), 1);
    jobs_free(s);
}

/* A resolver failure waits the backoff and asks again; the second answer
 * sends the alert. */
static void test_resolver_failed(void)
{
    struct jobs *s = set(1, 4);
    struct fake_timer *t;

    take(s, "jdoe@example.com", key_a);
    durable(0, 0);
    answer_lookup(0, IDENTITY_ERROR, NULL, "graph: timeout");
    check_line("lookup retry", 1, "retry", "graph: timeout", 0, 0);
    CHECK_INT(jobs_count(s, JOB_WAITING), 1);
    CHECK_INT(fk.sends_made, 0);
    t = armed();
    CHECK(t != NULL && t->ms == 343);
    if (t == NULL)
        goto out;
    fire(t);
    CHECK_INT(fk.lookups_made, 2);
    answer_lookup(1, IDENTITY_FOUND, "jdoe@corp.example", "graph");
    CHECK_INT(fk.sends_made, 1);
    CHECK_INT(moved(STAT_dispatch_retries), 1);
out:
    jobs_free(s);
}

/* One dispatch slot: the second resolved job is READY until the first
 * answer frees the slot. */
static void test_one_slot(void)
{
    struct jobs *s = set(1, 1);

    take(s, "a@example.com", key_a);
    take(s, "b@example.com", key_b);
    durable(0, 0);
    durable(1, 0);
    answer_lookup(0, IDENTITY_FOUND, "a@corp.example", "static");
    answer_lookup(1, IDENTITY_FOUND, "b@corp.example", "static");
    CHECK_INT(jobs_count(s, JOB_SENDING), 1);
    CHECK_INT(jobs_count(s, JOB_READY), 1);
    answer_send(0, 200, -1, NULL);
    CHECK_INT(jobs_count(s, JOB_SENDING), 1);
    CHECK_INT(jobs_count(s, JOB_READY), 0);
    CHECK_STR("second", str_make(fk.sends[1].email, strlen(fk.sends[1].email)), "b@corp.example");
    jobs_free(s);
}

/* The dry run: nothing spooled or sent; the lookup's answer is audited,
 * without a key, and ends the job. */
static void test_dry_run(void)
{
    struct jobs *s = set(0, 4);

    take(s, "jdoe@example.com", key_a);
    CHECK_INT(fk.appends, 0);
    CHECK_INT(jobs_in_flight(s), 1);
    answer_lookup(0, IDENTITY_FOUND, "jdoe@corp.example", "static");
    check_line("dry run", 0, "would-dispatch", "", 0, 0);
    CHECK_STR("dry run email", str_make(fk.lines[0].email, strlen(fk.lines[0].email)),
              "jdoe@corp.example");
    CHECK_INT(fk.lines[0].key[0], '\0');
    CHECK_INT(jobs_in_flight(s), 0);
    CHECK_INT(fk.settled, 1);
    CHECK_INT(fk.sends_made, 0);
    CHECK_INT(moved(STAT_outcome_would_dispatch), 1);
    jobs_free(s);
}

/* The dispatcher refuses the request (out of memory): audited as a retry
 * with that reason, no request counted, and the retry timer armed; the
 * next try sends it. */
static void test_send_refused(void)
{
    struct jobs *s = set(1, 4);
    struct fake_timer *t;

    fk.send_rc = ERR_NOMEM;
    take(s, "jdoe@example.com", key_a);
    durable(0, 0);
    answer_lookup(0, IDENTITY_FOUND, "jdoe@corp.example", "static");
    check_line("send refused", 1, "retry", "out of memory", 0, 0);
    CHECK_INT(fk.lines[1].attempts, 0);
    CHECK_INT(jobs_count(s, JOB_WAITING), 1);
    CHECK_INT(fk.sends_made, 0);
    CHECK_INT(moved(STAT_dispatch_requests), 0);
    CHECK_INT(moved(STAT_dispatch_retries), 1);
    t = armed();
    CHECK(t != NULL && t->ms == 343);
    if (t == NULL)
        goto out;
    fk.send_rc = 0;
    fire(t);
    answer_lookup(1, IDENTITY_FOUND, "jdoe@corp.example", "static");
    CHECK_INT(fk.sends_made, 1);
    CHECK_INT(jobs_count(s, JOB_SENDING), 1);
out:
    jobs_free(s);
}

/* No retry timer can be made: the job cannot wait, so it is freed and
 * left in the spool (not completed) for the next start. */
static void test_retry_timer_fails(void)
{
    struct jobs *s = set(1, 4);

    take(s, "jdoe@example.com", key_a);
    durable(0, 0);
    fk.timer_new_rc = ERR_NOMEM;
    answer_lookup(0, IDENTITY_ERROR, NULL, "graph: timeout");
    check_line("retry without timer", 1, "retry", "graph: timeout", 0, 0);
    for (int st = 0; st < JOB_STATES; st++)
        CHECK_INT(jobs_count(s, (enum job_state)st), 0);
    CHECK_INT(fk.n_completed, 0);
    CHECK_INT(fk.n_lines, 2);
    CHECK(armed() == NULL);
    jobs_free(s);
    CHECK_INT(fk.n_completed, 0);
    CHECK_INT(fk.n_timers, 0);
    CHECK_INT(moved(STAT_decisions_dropped), 0);
}

/* The hold timer is made with the set: a set without it is not made, and
 * once made, a full spool arms it even when no timer can be made any
 * more (else the intake would stay paused for good). */
static void test_hold_timer_up_front(void)
{
    struct job_config cfg = {1, 4, 1, 60, 1000};
    struct jobs *s = set(1, 4);
    struct jobs *none = s;
    struct fake_timer *t;

    CHECK_INT(fk.n_timers, 1);
    fk.timer_new_rc = ERR_NOMEM;
    fk.append_rc = ERR_TOOBIG;
    take(s, "jdoe@example.com", key_a);
    CHECK_INT(jobs_held(s), 1);
    t = armed();
    CHECK(t != NULL && t->ms == 1000);
    if (t == NULL)
        goto out;
    fk.append_rc = 0;
    fire(t);
    CHECK_INT(jobs_count(s, JOB_SPOOLING), 1);
    durable(0, 0);
    CHECK_INT(jobs_held(s), 0);
    CHECK_INT(fk.resumed, 1);
out:
    jobs_free(s);
    CHECK_INT(fk.n_timers, 0);

    CHECK_INT(jobs_new(&cfg, &fake_ops, dedup, stats, &none), ERR_NOMEM);
    CHECK(none == NULL);
    CHECK_INT(fk.n_timers, 0);
}

/* Without random bits the jitter comes from each job's receipt time, so
 * two jobs that fail together do not come back together. */
static void test_jitter_without_random(void)
{
    struct jobs *s = set(1, 4);
    struct fake_timer *t1, *t2;
    int64_t ms1 = retry_backoff_ms(1, 1, 60, 1 * 0x9e3779b97f4a7c15ull);
    int64_t ms2 = retry_backoff_ms(1, 1, 60, 2 * 0x9e3779b97f4a7c15ull);

    fk.random_rc = ERR_IO;
    take_at(s, "a@example.com", key_a, 1);
    take_at(s, "b@example.com", key_b, 2);
    durable(0, 0);
    durable(1, 0);
    answer_lookup(0, IDENTITY_ERROR, NULL, "graph: timeout");
    t1 = armed();
    answer_lookup(1, IDENTITY_ERROR, NULL, "graph: timeout");
    t2 = armed();
    CHECK(t1 != NULL && t2 != NULL && t1 != t2);
    if (t1 == NULL || t2 == NULL)
        goto out;
    CHECK(ms1 != ms2);
    CHECK_INT(t1->ms, ms1);
    CHECK_INT(t2->ms, ms2);
out:
    jobs_free(s);
}

/* ---- policies: one job per action ---- */

static char tmpdir[32];

static void write_file(const char *name, const char *text, char *path)
{
    FILE *f;

    snprintf(path, PATH_MAX, "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

/* Priority high runs a SafeTitan event, a webhook and an email (both with
 * a cool-down); low runs nothing. */
static struct mapping_set *policies(void)
{
    char mpath[PATH_MAX], ppath[PATH_MAX], err[4096];
    char *mglobs[1] = {mpath}, *pglobs[1] = {ppath};
    struct mapping_set *ps = NULL;

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/rtr-test-job.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    write_file("m.json",
               "{\"mappings\": [{\"name\": \"m\", \"when\": [{\"field\": \"cef.vendor\", "
               "\"equals\": \"V\"}], \"rule\": {\"field\": \"cef.name\"}, \"user\": {\"field\": "
               "\"cef.ext.suser\"}}]}",
               mpath);
    write_file("p.json",
               "{\"policies\": [{\"name\": \"p\", \"tiers\": [{\"priority\": \"high\"}], "
               "\"actions\": {\"low\": [], \"high\": [{\"name\": \"st\", \"type\": \"safetitan\"}, "
               "{\"name\": \"hook\", \"type\": \"webhook\", \"url\": \"https://h.example/x\", "
               "\"body\": {\"r\": \"{{rule}}\"}, \"cooldown_s\": 600}, {\"name\": \"mail\", "
               "\"type\": \"email\", \"to\": [\"soc@example.com\"], \"subject\": \"{{rule}}\", "
               "\"text\": \"t\", \"cooldown_s\": 600}], \"medium\": [{\"name\": \"ask\", "
               "\"type\": \"approval\", \"to\": [\"soc@example.com\"], \"subject\": \"s\", "
               "\"text\": \"{{approve_url}}\", \"then\": [\"st2\"]}, {\"name\": \"st2\", "
               "\"type\": \"safetitan\"}]}}]}",
               ppath);
    unit_capture_begin();
    if (mapping_set_load(mglobs, 1, 0, &ps) != 0 || policy_load(ps, pglobs, 1, 0) != 0) {
        unit_capture_end(err, sizeof(err));
        fprintf(stderr, "policies do not load:\n%s", err);
        exit(2);
    }
    unit_capture_end(err, sizeof(err));
    unlink(mpath);
    unlink(ppath);
    rmdir(tmpdir);
    return ps;
}

#define BLOCK_HIGH                                                                                 \
    "{\"policy\":\"p\",\"priority\":\"high\",\"tier\":0,\"why\":\"tiers[0] (always)\","            \
    "\"fields\":{},\"corr\":{\"user\":\"00000000000000ff\",\"host\":\"0000000000000001\"}}"

/* Expands and starts one decision with block for user, key. Returns how
 * many jobs it made. */
static size_t take_policy(struct jobs *s, const char *block, const char *user, const char *key)
{
    struct decision_record d = {
        .received = {999, 0},
        .source = STR_LIT("10.0.0.5:514"),
        .mapping = STR_LIT("m"),
        .rule = STR_LIT("a rule"),
        .user = str_make(user, strlen(user)),
        .event = STR_LIT("an event"),
        .user_kind = USER_KIND_UPN,
        .key = str_make(key, strlen(key)),
        .policy = str_make(block, strlen(block)),
    };
    struct job *jobs[POLICY_MAX_ACTIONS];
    size_t n = 0;

    if (jobs_expand(s, &d, jobs, POLICY_MAX_ACTIONS, &n) != 0)
        abort();
    jobs_start(s, jobs, n);
    return n;
}

static int has(const char *text, const char *want)
{
    return strstr(text, want) != NULL;
}

/* One job per action, each with its own key from the decision's; only the
 * first job's payload keeps "corr"; a priority without actions makes no
 * job; a block whose policy is gone makes today's one SafeTitan job. */
static void test_policy_expand(void)
{
    struct mapping_set *ps = policies();
    struct jobs *s = set(1, 8);

    jobs_set_policies(s, ps, NULL);
    CHECK_INT(take_policy(s, BLOCK_HIGH, "jdoe@example.com", key_a), 3);
    CHECK_INT(fk.appends, 3);
    CHECK(has(fk.payload[0], "\"action\":\"st\"") && has(fk.payload[0], "\"corr\""));
    CHECK(has(fk.payload[1], "\"action\":\"hook\"") && !has(fk.payload[1], "\"corr\""));
    CHECK(has(fk.payload[2], "\"action\":\"mail\"") && !has(fk.payload[2], "\"corr\""));
    CHECK(has(fk.payload[1], "\"policy\":{\"policy\":\"p\",\"priority\":\"high\""));
    /* the payload keeps the decision's key; each job's key is its own */
    CHECK(has(fk.payload[1], key_a));
    for (size_t i = 0; i < 3; i++)
        durable(i, 0);
    CHECK_INT(fk.n_lines, 3);
    CHECK(strcmp(fk.lines[0].key, key_a) != 0 && strlen(fk.lines[0].key) == DECISION_KEY_LEN);
    CHECK(strcmp(fk.lines[0].key, fk.lines[1].key) != 0);
    CHECK(strcmp(fk.lines[1].key, fk.lines[2].key) != 0);
    CHECK(strcmp(fk.lines[0].action, "st") == 0 && strcmp(fk.lines[2].action, "mail") == 0);
    for (size_t i = 0; i < 3; i++)
        answer_lookup(i, IDENTITY_FOUND, "jdoe@corp.example", "static");
    CHECK_INT(fk.sends_made, 3);
    CHECK(fk.sends[0].action == NULL); /* SafeTitan: dispatch_send's event */
    CHECK(fk.sends[1].action != NULL && strcmp(fk.sends[1].action->name, "hook") == 0);
    CHECK(fk.sends[2].action != NULL && strcmp(fk.sends[2].action->name, "mail") == 0);
    CHECK(strcmp(fk.sends[1].key, fk.lines[1].key) == 0);
    for (size_t i = 0; i < 3; i++)
        answer_send(i, 200, -1, NULL);
    CHECK_INT(fk.n_completed, 3);
    /* the same decision again: every action a duplicate */
    CHECK_INT(take_policy(s, BLOCK_HIGH, "jdoe@example.com", key_a), 3);
    CHECK_INT(fk.appends, 3);
    CHECK_INT(moved(STAT_outcome_duplicate), 3);
    /* low runs nothing */
    CHECK_INT(take_policy(s, "{\"policy\":\"p\",\"priority\":\"low\",\"tier\":0}", "x@example.com",
                          key_b),
              0);
    /* a policy no longer loaded: one SafeTitan job, without an action
     * (its warning shares a rate limit with other lines: not checked) */
    unit_capture_begin();
    CHECK_INT(take_policy(s, "{\"policy\":\"gone\",\"priority\":\"high\",\"tier\":0}",
                          "x@example.com", key_b),
              1);
    {
        char err[1024];

        unit_capture_end(err, sizeof(err));
    }
    CHECK_INT(fk.appends, 4);
    CHECK(!has(fk.payload[3], "\"action\"") && has(fk.payload[3], "\"policy\":{"));
    jobs_free(s);
    mapping_set_unref(ps);
}

/* A cool-down holds back the second webhook and email for the same user
 * (any case of the email), never the SafeTitan event. */
static void test_policy_cooldown(void)
{
    struct mapping_set *ps = policies();
    struct jobs *s = set(1, 8);

    jobs_set_policies(s, ps, NULL);
    CHECK_INT(take_policy(s, BLOCK_HIGH, "jdoe@example.com", key_a), 3);
    for (size_t i = 0; i < 3; i++)
        durable(i, 0);
    for (size_t i = 0; i < 3; i++)
        answer_lookup(i, IDENTITY_FOUND, "jdoe@corp.example", "static");
    for (size_t i = 0; i < 3; i++)
        answer_send(i, 200, -1, NULL);
    CHECK_INT(fk.sends_made, 3);
    CHECK_INT(take_policy(s, BLOCK_HIGH, "JDOE@example.com", key_b), 3);
    for (size_t i = 3; i < 6; i++)
        durable(i, 0);
    for (size_t i = 3; i < 6; i++)
        answer_lookup(i, IDENTITY_FOUND, "JDoe@Corp.Example", "static");
    CHECK_INT(fk.sends_made, 4);
    CHECK(fk.sends[3].action == NULL);
    CHECK_INT(moved(STAT_outcome_cooldown), 2);
    CHECK_INT(fk.n_completed, 5); /* the two held back are done */
    {
        size_t cooled = 0;

        for (size_t i = 0; i < fk.n_lines; i++)
            cooled += strcmp(fk.lines[i].outcome, "cooldown") == 0;
        CHECK_INT(cooled, 2);
    }
    /* another user: not held */
    CHECK_INT(take_policy(s, BLOCK_HIGH, "other@example.com",
                          "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"),
              3);
    for (size_t i = 6; i < 9; i++)
        durable(i, 0);
    for (size_t i = 6; i < 9; i++)
        answer_lookup(i, IDENTITY_FOUND, "other@corp.example", "static");
    CHECK_INT(fk.sends_made, 7);
    jobs_free(s);
    mapping_set_unref(ps);
}

/* A spooled action the policies no longer have is dead-lettered; one they
 * have is sent again with its action. */
static void test_policy_recovered(void)
{
    static char gone[1024], kept[1024];
    struct mapping_set *ps = policies();
    struct jobs *s = set(1, 8);
    size_t dead = 0;

    snprintf(gone, sizeof(gone),
             "{\"v\":1,\"sec\":999,\"nsec\":0,\"source\":\"s\",\"mapping\":\"m\",\"rule\":\"r\","
             "\"user\":\"old@example.com\",\"kind\":2,\"event\":\"e\",\"key\":\"%s\",\"policy\":"
             "%s,\"action\":\"pager\"}",
             key_a, BLOCK_HIGH);
    snprintf(kept, sizeof(kept),
             "{\"v\":1,\"sec\":999,\"nsec\":0,\"source\":\"s\",\"mapping\":\"m\",\"rule\":\"r\","
             "\"user\":\"old@example.com\",\"kind\":2,\"event\":\"e\",\"key\":\"%s\",\"policy\":"
             "%s,\"action\":\"hook\"}",
             key_b, BLOCK_HIGH);
    jobs_set_policies(s, ps, NULL);
    fk.recovered[0] = gone;
    fk.recovered[1] = kept;
    fk.n_recovered = 2;
    unit_capture_begin();
    jobs_recover(s);
    {
        char err[2048];

        unit_capture_end(err, sizeof(err));
    }
    for (size_t i = 0; i < fk.n_lines; i++) {
        if (fk.lines[i].dead) {
            dead++;
            CHECK_STR("gone", str_make(fk.lines[i].detail, strlen(fk.lines[i].detail)),
                      "its policy action is no longer in the policies");
            CHECK_STR("gone", str_make(fk.lines[i].action, strlen(fk.lines[i].action)), "pager");
        }
    }
    CHECK_INT(dead, 1);
    CHECK_INT(fk.n_completed, 1);
    CHECK(fk.n_completed == 1 && fk.completed[0] == 100);
    CHECK_INT(fk.lookups_made, 1);
    if (fk.n_lookups == 1) {
        answer_lookup(0, IDENTITY_FOUND, "old@corp.example", "static");
        CHECK_INT(fk.sends_made, 1);
        CHECK(fk.sends[0].action != NULL && strcmp(fk.sends[0].action->name, "hook") == 0);
    }
    jobs_free(s);
    mapping_set_unref(ps);
}

/* A denial's marker found at start: its approval (spooled, not completed:
 * the crash came before its completion was written) is not asked again,
 * and both are completed, the approval first. */
static void test_policy_denial_marker(void)
{
    static char ask[1024], marker[1100];
    struct mapping_set *ps = policies();
    struct jobs *s = set(1, 8);

    snprintf(ask, sizeof(ask),
             "{\"v\":1,\"sec\":999,\"nsec\":0,\"source\":\"s\",\"mapping\":\"m\",\"rule\":\"r\","
             "\"user\":\"u@example.com\",\"kind\":2,\"event\":\"e\",\"key\":\"%s\",\"policy\":"
             "{\"policy\":\"p\",\"priority\":\"medium\",\"tier\":0,\"why\":\"w\",\"fields\":{}},"
             "\"action\":\"ask\"}",
             key_a);
    snprintf(marker, sizeof(marker), "%.*s,\"decided\":\"denied\"}", (int)strlen(ask) - 1, ask);
    jobs_set_policies(s, ps, NULL);
    fk.recovered[0] = ask;
    fk.recovered[1] = marker;
    fk.n_recovered = 2;
    jobs_recover(s);
    CHECK_INT(fk.lookups_made, 0);
    CHECK_INT(fk.n_completed, 2);
    CHECK(fk.n_completed == 2 && fk.completed[0] == 100 && fk.completed[1] == 101);
    jobs_free(s);
    mapping_set_unref(ps);
}

/* A dry run audits one line per action. */
static void test_policy_dry_run(void)
{
    struct mapping_set *ps = policies();
    struct jobs *s = set(0, 8);

    jobs_set_policies(s, ps, NULL);
    CHECK_INT(take_policy(s, BLOCK_HIGH, "jdoe@example.com", key_a), 3);
    CHECK_INT(fk.appends, 0);
    CHECK_INT(fk.lookups_made, 3);
    for (size_t i = 0; i < fk.n_lookups; i++)
        answer_lookup(i, IDENTITY_FOUND, "jdoe@corp.example", "static");
    CHECK_INT(fk.n_lines, 3);
    CHECK(fk.n_lines == 3 && strcmp(fk.lines[0].action, "st") == 0 &&
          strcmp(fk.lines[1].action, "hook") == 0 && strcmp(fk.lines[2].action, "mail") == 0);
    for (size_t i = 0; i < fk.n_lines; i++)
        CHECK_STR("dry", str_make(fk.lines[i].outcome, strlen(fk.lines[i].outcome)),
                  "would-dispatch");
    CHECK_INT(fk.sends_made, 0);
    jobs_free(s);
    mapping_set_unref(ps);
}

int main(void)
{
    stats = stats_register();
    test_retry_after_then_2xx();
    test_retry_after_zero();
    test_4xx_dead_letter();
    test_dead_letter_retried();
    test_spool_full_hold_resume();
    test_recovery();
    test_stop();
    test_duplicate();
    test_intake_answers();
    test_duplicate_waits_for_first();
    test_unresolved();
    test_resolver_failed();
    test_one_slot();
    test_dry_run();
    test_send_refused();
    test_retry_timer_fails();
    test_hold_timer_up_front();
    test_jitter_without_random();
    test_policy_expand();
    test_policy_cooldown();
    test_policy_recovered();
    test_policy_denial_marker();
    test_policy_dry_run();
    dedup_free(dedup);
    return unit_report("delivery_job");
}
