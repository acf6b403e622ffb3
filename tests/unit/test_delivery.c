/* The delivery thread with a stand-in identity layer: this file defines
 * identity_new/_free/_resolve/_reload, so the linker takes them instead of
 * identity.o from libagent.a, and each test says what a lookup answers and
 * whether the directory reloads. The queue, the thread, the audit log and
 * the counters are the real ones. Covered: the audit outcome of each
 * identity status (a failed lookup is "failed" with its detail, counted in
 * outcome_failed); a SIGHUP whose mappings failed still reopens the audit
 * log and reloads the directory (from the new configuration's file) and is
 * counted once, as a failure; one whose configuration did not load only
 * reopens the audit log; a moved audit.file opens the new file (and a
 * removed one ends the audit log); reloads asked for before the thread
 * runs are done once, with the last configuration that loaded. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/thread.h>

#include "core/config.h"
#include "decide/decision.h"
#include "errors.h"
#include "identity/identity.h"
#include "decide/mapping.h"
#include "core/queue.h"
#include "deliver/delivery.h"
#include "core/stats.h"
#include "unit.h"

/* ---- the stand-in identity layer (runs on the delivery thread) ---- */

struct identity {
    int unused;
};

/* Set before the thread starts or while it waits for nothing. */
static enum identity_status fake_status;
static const char *fake_email, *fake_detail;
static int fake_reload_rc;
static int fake_reloads;           /* atomic: release after fake_reload_file is set */
static char fake_reload_file[256]; /* the file the last reload was given ("" for NULL) */

int identity_new(const struct identity_config *cfg, struct event_base *base, struct http *http,
                 struct stats *stats, struct identity **out)
{
    (void)cfg;
    (void)base;
    (void)http;
    (void)stats;
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? 0 : ERR_NOMEM;
}

int identity_uses_network(const struct identity_config *cfg)
{
    (void)cfg;
    return 0;
}

void identity_free(struct identity *id)
{
    free(id);
}

struct graph *identity_graph(struct identity *id)
{
    (void)id;
    return NULL;
}

void identity_resolve(struct identity *id, struct str user, enum user_kind kind, identity_cb cb,
                      void *arg)
{
    (void)id;
    (void)user;
    (void)kind;
    cb(arg, fake_status, fake_email, fake_detail);
}

int identity_reload(struct identity *id, const char *file)
{
    (void)id;
    snprintf(fake_reload_file, sizeof(fake_reload_file), "%s", file ? file : "");
    __atomic_add_fetch(&fake_reloads, 1, __ATOMIC_RELEASE);
    return fake_reload_rc;
}

static int reloads_seen(void)
{
    return __atomic_load_n(&fake_reloads, __ATOMIC_ACQUIRE);
}

/* ---- helpers ---- */

static char tmpdir[] = "/tmp/rtr-test-response.XXXXXX";
static char audit_path[PATH_MAX], moved_path[PATH_MAX];

static void done(void *arg)
{
    (void)arg;
}

/* The running configuration: outlives every response. */
static struct config running;

static struct delivery *create(void)
{
    struct delivery *r = NULL;

    running.limits.queue_messages = 16;
    running.audit.file = audit_path;
    unlink(audit_path);
    CHECK_INT(delivery_new(&running, &r), 0);
    if (r == NULL)
        exit(2);
    CHECK(access(audit_path, F_OK) == -1); /* files are delivery_open's */
    CHECK_INT(delivery_open(r, &running), 0);
    return r;
}

static struct delivery *start(void)
{
    struct delivery *r = create();

    CHECK_INT(delivery_start(r, done, NULL), 0);
    return r;
}

/* Queues one decision of user u. */
static void push(struct delivery *r, const char *u)
{
    struct mapping_decision d = {.mapping = "m",
                                 .file = "f.json",
                                 .rule = STR_LIT("a rule"),
                                 .event = STR_LIT("an event"),
                                 .user_kind = USER_KIND_AUTO};
    struct timespec now = {1791018764, 0};
    char rec[DECISION_RECORD_MAX];
    struct decision_hasher *h;
    size_t dropped, len;

    d.user = str_make(u, strlen(u));
    if (decision_hasher_new(&h) != 0)
        exit(2);
    len = decision_encode(h, &d, NULL, 1,
                          &(struct decision_origin){now,
                                                    STR_LIT("192.0.2.7:5140"),
                                                    STR_LIT("192.0.2.7"),
                                                    STR_LIT("sha256:ab"),
                                                    {0},
                                                    STR_LIT("tcp")},
                          rec, sizeof(rec), &dropped);
    decision_hasher_free(h);
    CHECK_INT(queue_push(delivery_queue(r), rec, len, NULL), 0);
}

/* Closes the queue, joins the thread and frees r. */
static void finish(struct delivery *r)
{
    queue_close(delivery_queue(r));
    delivery_free(r);
}

static uint64_t counter(enum stats_counter c)
{
    uint64_t sum[STAT_COUNT];

    stats_sum(sum);
    return sum[c];
}

/* Waits (up to 10 s) for counter c to reach want. */
static int wait_counter(enum stats_counter c, uint64_t want)
{
    struct timespec ms = {0, 1000000};

    for (int i = 0; i < 10000 && counter(c) < want; i++)
        nanosleep(&ms, NULL);
    return counter(c) >= want;
}

/* ---- tests ---- */

static const struct {
    enum identity_status status;
    const char *email, *detail;
    const char *want; /* the audit line's tail */
    enum stats_counter counter;
    const char *outcome; /* delivery_dry_run_outcome */
} outcomes[] = {
    {IDENTITY_FOUND, "jdoe@example.com", "static",
     "\"email\":\"jdoe@example.com\",\"resolver\":\"static\",\"event\":\"an event\",\"outcome\":"
     "\"would-dispatch\"}\n",
     STAT_outcome_would_dispatch, "would-dispatch"},
    {IDENTITY_NOT_FOUND, NULL, "static: not listed",
     "\"email\":null,\"event\":\"an event\",\"outcome\":\"unresolved-user\",\"detail\":\"static: "
     "not listed\"}\n",
     STAT_outcome_unresolved_user, "unresolved-user"},
    {IDENTITY_ERROR, NULL, "graph: HTTP 503",
     "\"email\":null,\"event\":\"an event\",\"outcome\":\"failed\",\"detail\":\"graph: HTTP "
     "503\"}\n",
     STAT_outcome_failed, "failed"},
};

static void test_outcomes(void)
{
    for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++) {
        uint64_t before[STAT_COUNT], after[STAT_COUNT];
        char line[2048];
        const char *outcome;
        size_t n;
        struct delivery *r;

        unlink(audit_path);
        fake_status = outcomes[i].status;
        fake_email = outcomes[i].email;
        fake_detail = outcomes[i].detail;
        stats_sum(before);
        r = start();
        push(r, "jdoe");
        finish(r);
        stats_sum(after);
        n = unit_read_file(audit_path, line, sizeof(line));
        if (n < strlen(outcomes[i].want) ||
            strcmp(line + n - strlen(outcomes[i].want), outcomes[i].want) != 0)
            UNIT_FAIL("outcome %zu: audit line %s, want it to end in %s", i, line,
                      outcomes[i].want);
        else
            unit_passed++;
        for (int c = STAT_outcome_would_dispatch; c <= STAT_outcome_failed; c++)
            CHECK_INT(after[c] - before[c], c == (int)outcomes[i].counter);
        CHECK_INT(after[STAT_audit_lines] - before[STAT_audit_lines], 1);
        outcome = delivery_dry_run_outcome(outcomes[i].status);
        CHECK_STR("dry-run outcome", str_make(outcome, outcome != NULL ? strlen(outcome) : 0),
                  outcomes[i].outcome);
    }
}

/* A configuration as a SIGHUP reads it: static.file and audit.file. */
static struct config reloaded(const char *static_file, char *audit_file)
{
    struct config next = {0};

    next.identity.static_dir.file = (char *)static_file;
    next.audit.file = audit_file;
    return next;
}

/* SIGHUP with mappings that did not load: the audit log is reopened (the
 * next line lands in a new file after a rename) and the directory reloaded
 * from the new configuration's file all the same; the reload counts once,
 * as a failure. Then a clean one counts as a reload, a directory that fails
 * as a failure, and a configuration that did not load reopens the audit
 * log only (the directory is not reloaded) and is a failure. */
static void test_reload(void)
{
    char rotated[PATH_MAX + 8], text[2048];
    struct delivery *r;
    uint64_t ok = counter(STAT_reloads), failed = counter(STAT_reload_failures), lines;
    struct config next = reloaded("/new/users.csv", audit_path);
    int seen = reloads_seen();
    struct stat st;

    unlink(audit_path);
    fake_status = IDENTITY_FOUND;
    fake_email = "jdoe@example.com";
    fake_reload_rc = 0;
    lines = counter(STAT_audit_lines);
    r = start();
    push(r, "before");
    snprintf(rotated, sizeof(rotated), "%s.1", audit_path);
    CHECK(wait_counter(STAT_audit_lines, lines + 1) && rename(audit_path, rotated) == 0);

    unit_capture_begin();
    delivery_reload(r, &next, 1);
    CHECK(wait_counter(STAT_reload_failures, failed + 1));
    unit_capture_end(text, sizeof(text));
    CHECK(strstr(text,
                 "reload incomplete: the mappings and TLS certificates kept where they did not "
                 "load (above), the static directory reloaded, "
                 "the audit log reopened") != NULL);
    CHECK_INT(reloads_seen(), seen + 1);
    CHECK(strcmp(fake_reload_file, "/new/users.csv") == 0);
    CHECK_INT(counter(STAT_reloads), ok);
    CHECK_INT(stat(audit_path, &st), 0); /* reopened: created anew */
    push(r, "after");

    unit_capture_begin();
    delivery_reload(r, &next, 0);
    CHECK(wait_counter(STAT_reloads, ok + 1));
    fake_reload_rc = ERR_CONFIG;
    delivery_reload(r, &next, 0);
    CHECK(wait_counter(STAT_reload_failures, failed + 2));
    unit_capture_end(text, sizeof(text));
    CHECK(strstr(text, "reload complete") != NULL && strstr(text, "the static directory kept"));
    CHECK_INT(counter(STAT_reloads), ok + 1);
    CHECK_INT(reloads_seen(), seen + 3);

    /* The configuration did not load: logrotate moved the file again. */
    fake_reload_rc = 0;
    CHECK(wait_counter(STAT_audit_lines, lines + 2) && rename(audit_path, rotated) == 0);
    unit_capture_begin();
    delivery_reload(r, NULL, 0);
    CHECK(wait_counter(STAT_reload_failures, failed + 3));
    unit_capture_end(text, sizeof(text));
    CHECK(strstr(text,
                 "reload incomplete: the mappings and TLS certificates kept where they did not "
                 "load (above), the static directory kept, the "
                 "audit log reopened") != NULL);
    CHECK_INT(reloads_seen(), seen + 3); /* the directory was not touched */
    CHECK_INT(counter(STAT_reloads), ok + 1);
    push(r, "after failure");
    finish(r);

    unit_read_file(audit_path, text, sizeof(text));
    CHECK(strstr(text, "\"user\":\"after failure\"") != NULL && strstr(text, "before") == NULL);
    unit_read_file(rotated, text, sizeof(text));
    CHECK(strstr(text, "\"user\":\"after\"") != NULL && strstr(text, "before") == NULL);
    unlink(rotated);
}

/* audit.file moved: the next line goes to the new file, the old one gets
 * nothing more; a new file that cannot be opened keeps the old one (a
 * failure); audit.file removed: no audit log (nothing written, nothing
 * counted in audit_lines). */
static void test_audit_moves(void)
{
    char text[2048], missing[PATH_MAX + 16];
    struct config moved = reloaded(NULL, moved_path), off = reloaded(NULL, NULL), bad;
    uint64_t ok = counter(STAT_reloads), failed = counter(STAT_reload_failures), lines;
    struct delivery *r;

    snprintf(missing, sizeof(missing), "%s/no/such/dir", moved_path);
    bad = reloaded(NULL, missing);
    unlink(audit_path);
    unlink(moved_path);
    fake_status = IDENTITY_FOUND;
    fake_email = "jdoe@example.com";
    fake_reload_rc = 0;
    lines = counter(STAT_audit_lines);
    r = start();
    push(r, "first");
    CHECK(wait_counter(STAT_audit_lines, lines + 1));

    unit_capture_begin();
    delivery_reload(r, &moved, 0);
    CHECK(wait_counter(STAT_reloads, ok + 1));
    unit_capture_end(text, sizeof(text));
    CHECK(strstr(text, "the audit log is now ") != NULL && strstr(text, moved_path) != NULL);
    push(r, "second");
    CHECK(wait_counter(STAT_audit_lines, lines + 2));

    unit_capture_begin();
    delivery_reload(r, &bad, 0);
    CHECK(wait_counter(STAT_reload_failures, failed + 1));
    unit_capture_end(text, sizeof(text));
    CHECK(strstr(text, "the audit log stays ") != NULL && strstr(text, "kept on its previous"));
    push(r, "third");
    CHECK(wait_counter(STAT_audit_lines, lines + 3));

    unit_capture_begin();
    delivery_reload(r, &off, 0);
    CHECK(wait_counter(STAT_reloads, ok + 2));
    unit_capture_end(text, sizeof(text));
    CHECK(strstr(text, "the audit log is now off") != NULL);
    push(r, "fourth");
    finish(r);
    CHECK_INT(counter(STAT_audit_lines), lines + 3);

    unit_read_file(audit_path, text, sizeof(text));
    CHECK(strstr(text, "\"user\":\"first\"") != NULL && strstr(text, "second") == NULL);
    unit_read_file(moved_path, text, sizeof(text));
    CHECK(strstr(text, "\"user\":\"second\"") != NULL && strstr(text, "third") != NULL &&
          strstr(text, "first") == NULL && strstr(text, "fourth") == NULL);
    unlink(moved_path);
}

/* Reloads asked for before the thread runs: done once, counted once (a
 * failure: the last configuration did not load), with the directory of
 * the last configuration that loaded. */
static void test_reloads_coalesce(void)
{
    struct config first = reloaded("/first.csv", audit_path);
    struct config second = reloaded("/second.csv", audit_path);
    uint64_t ok = counter(STAT_reloads), failed = counter(STAT_reload_failures);
    int seen = reloads_seen();
    char text[2048];
    struct delivery *r = create();

    fake_reload_rc = 0;
    delivery_reload(r, &first, 0);
    delivery_reload(r, &second, 0);
    delivery_reload(r, NULL, 1);
    unit_capture_begin();
    CHECK_INT(delivery_start(r, done, NULL), 0);
    CHECK(wait_counter(STAT_reload_failures, failed + 1));
    unit_capture_end(text, sizeof(text));
    CHECK_INT(reloads_seen(), seen + 1);
    CHECK(strcmp(fake_reload_file, "/second.csv") == 0);
    finish(r);
    CHECK_INT(counter(STAT_reload_failures), failed + 1);
    CHECK_INT(counter(STAT_reloads), ok);
}

int main(void)
{
    /* As the daemon does: other threads wake the delivery thread's loop. */
    if (evthread_use_pthreads() == -1) {
        fprintf(stderr, "libevent: no pthreads support\n");
        return 2;
    }
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(audit_path, sizeof(audit_path), "%s/audit.jsonl", tmpdir);
    snprintf(moved_path, sizeof(moved_path), "%s/moved.jsonl", tmpdir);
    test_outcomes();
    test_reload();
    test_audit_moves();
    test_reloads_coalesce();
    unlink(audit_path);
    CHECK_INT(rmdir(tmpdir), 0);
    return unit_report("test_delivery");
}
