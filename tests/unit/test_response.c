/* The response thread with a stand-in identity layer: this file defines
 * identity_new/_free/_resolve/_reload, so the linker takes them instead of
 * identity.o from libagent.a, and each test says what a lookup answers and
 * whether the directory reloads. The queue, the thread, the audit log and
 * the counters are the real ones. Covered: the audit outcome of each
 * identity status (a failed lookup is "failed" with its detail, counted in
 * outcome_failed); a SIGHUP whose mappings failed still reopens the audit
 * log and reloads the directory and is counted once, as a failure. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/thread.h>

#include "config.h"
#include "decision.h"
#include "errors.h"
#include "identity.h"
#include "mapping.h"
#include "queue.h"
#include "response.h"
#include "stats.h"
#include "unit.h"

/* ---- the stand-in identity layer (runs on the response thread) ---- */

struct identity {
    int unused;
};

/* Set before the thread starts or while it waits for nothing. */
static enum identity_status fake_status;
static const char *fake_email, *fake_detail;
static int fake_reload_rc;
static int fake_reloads; /* atomic */

int identity_new(const struct identity_config *cfg, struct event_base *base, struct stats *stats,
                 struct identity **out)
{
    (void)cfg;
    (void)base;
    (void)stats;
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? 0 : ERR_NOMEM;
}

void identity_free(struct identity *id)
{
    free(id);
}

void identity_resolve(struct identity *id, struct str user, enum user_kind kind, identity_cb cb,
                      void *arg)
{
    (void)id;
    (void)user;
    (void)kind;
    cb(arg, fake_status, fake_email, fake_detail);
}

int identity_reload(struct identity *id)
{
    (void)id;
    __atomic_add_fetch(&fake_reloads, 1, __ATOMIC_RELAXED);
    return fake_reload_rc;
}

/* ---- helpers ---- */

static char tmpdir[] = "/tmp/rtr-test-response.XXXXXX";
static char audit_path[PATH_MAX];

static void done(void *arg)
{
    (void)arg;
}

static struct response *start(void)
{
    static struct config cfg;
    struct response *r = NULL;

    cfg.limits.queue_messages = 16;
    cfg.audit.file = audit_path;
    CHECK_INT(response_new(&cfg, &r), 0);
    if (r == NULL)
        exit(2);
    CHECK_INT(response_start(r, done, NULL), 0);
    return r;
}

/* Queues one decision of user u. */
static void push(struct response *r, const char *u)
{
    struct mapping_decision d = {.mapping = "m",
                                 .file = "f.json",
                                 .rule = STR_LIT("a rule"),
                                 .event = STR_LIT("an event"),
                                 .user_kind = USER_KIND_AUTO};
    struct timespec now = {1791018764, 0};
    char rec[DECISION_RECORD_MAX];
    size_t dropped, len;

    d.user = str_make(u, strlen(u));
    len = decision_encode(&d, 1, now, STR_LIT("192.0.2.7:5140"), rec, sizeof(rec), &dropped);
    CHECK_INT(queue_push(response_queue(r), rec, len, NULL), 0);
}

/* Closes the queue, joins the thread and frees r. */
static void finish(struct response *r)
{
    queue_close(response_queue(r));
    response_free(r);
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
} outcomes[] = {
    {IDENTITY_FOUND, "jdoe@example.com", "static",
     "\"email\":\"jdoe@example.com\",\"event\":\"an event\",\"outcome\":\"would-dispatch\"}\n",
     STAT_outcome_would_dispatch},
    {IDENTITY_NOT_FOUND, NULL, "static: not listed",
     "\"email\":null,\"event\":\"an event\",\"outcome\":\"unresolved-user\",\"detail\":\"static: "
     "not listed\"}\n",
     STAT_outcome_unresolved_user},
    {IDENTITY_ERROR, NULL, "graph: HTTP 503",
     "\"email\":null,\"event\":\"an event\",\"outcome\":\"failed\",\"detail\":\"graph: HTTP "
     "503\"}\n",
     STAT_outcome_failed},
};

static void test_outcomes(void)
{
    for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++) {
        uint64_t before[STAT_COUNT], after[STAT_COUNT];
        char line[2048];
        size_t n;
        struct response *r;

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
        CHECK_INT(response_dry_run_outcome(outcomes[i].status) != NULL, 1);
    }
}

/* SIGHUP with mappings that did not load: the audit log is reopened (the
 * next line lands in a new file after a rename) and the directory reloaded
 * all the same; the reload counts once, as a failure. Then a clean one
 * counts as a reload, and a directory that fails as a failure. */
static void test_reload(void)
{
    char rotated[PATH_MAX + 8], text[2048];
    struct response *r;
    uint64_t ok = counter(STAT_reloads), failed = counter(STAT_reload_failures), lines;
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
    response_reload(r, 1);
    CHECK(wait_counter(STAT_reload_failures, failed + 1));
    unit_capture_end(text, sizeof(text));
    CHECK(strstr(text, "reload incomplete: the mappings kept, the static directory reloaded, "
                       "the audit log reopened") != NULL);
    CHECK_INT(__atomic_load_n(&fake_reloads, __ATOMIC_RELAXED), 1);
    CHECK_INT(counter(STAT_reloads), ok);
    CHECK_INT(stat(audit_path, &st), 0); /* reopened: created anew */
    push(r, "after");

    unit_capture_begin();
    response_reload(r, 0);
    CHECK(wait_counter(STAT_reloads, ok + 1));
    fake_reload_rc = ERR_CONFIG;
    response_reload(r, 0);
    CHECK(wait_counter(STAT_reload_failures, failed + 2));
    unit_capture_end(text, sizeof(text));
    CHECK(strstr(text, "reload complete") != NULL && strstr(text, "the static directory kept"));
    CHECK_INT(counter(STAT_reloads), ok + 1);
    finish(r);

    unit_read_file(audit_path, text, sizeof(text));
    CHECK(strstr(text, "\"user\":\"after\"") != NULL && strstr(text, "before") == NULL);
    unit_read_file(rotated, text, sizeof(text));
    CHECK(strstr(text, "\"user\":\"before\"") != NULL && strstr(text, "after") == NULL);
    unlink(rotated);
}

int main(void)
{
    /* As the daemon does: other threads wake the response thread's loop. */
    if (evthread_use_pthreads() == -1) {
        fprintf(stderr, "libevent: no pthreads support\n");
        return 2;
    }
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(audit_path, sizeof(audit_path), "%s/audit.jsonl", tmpdir);
    test_outcomes();
    test_reload();
    unlink(audit_path);
    CHECK_INT(rmdir(tmpdir), 0);
    return unit_report("test_response");
}
