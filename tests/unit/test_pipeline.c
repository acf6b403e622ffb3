/* The pipeline stage on its own: a real mapping set (a file in a temporary
 * folder), a real decision queue, no threads. A truncated frame is never
 * decided on (a cut user value could name someone else), is counted and
 * logged with its source; a record a full queue refused is counted once in
 * decision_queue_full however often it is offered again, and arrives once
 * the queue drains. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/config.h"
#include "decide/decision.h"
#include "cef.h"
#include "errors.h"
#include "framing.h"
#include "decide/mapping.h"
#include "decide/pipeline.h"
#include "core/queue.h"
#include "unit.h"

/* "user=jsmith2" cut to "user=jsmith" names another user. */
#define MAPPING                                                                                    \
    "{\"mappings\": [{\"name\": \"cut\", \"when\": [{\"field\": \"msg\", \"regex\": \"user=\"}], " \
    "\"rule\": {\"value\": \"cut test\"}, "                                                        \
    "\"user\": {\"field\": \"msg\", \"regex\": \"user=(?<user>\\\\S+)\"}}]}"
#define WHOLE "<13>Oct  2 09:13:05 host app: alert user=jsmith2"
#define CUT   "<13>Oct  2 09:13:05 host app: alert user=jsmith"

static char tmpdir[] = "/tmp/rtr-test-pipeline.XXXXXX";
static char mapping_path[PATH_MAX];

static const struct pipeline_source src = {.name = "192.0.2.7:5140", .transport = "tcp"};

static void wake_count(void *arg)
{
    (*(int *)arg)++;
}

static struct mapping_set *load_set(void)
{
    char *globs[] = {mapping_path};
    struct mapping_set *set = NULL;

    unit_write_file(mapping_path, MAPPING);
    if (mapping_set_load(globs, 1, 0, &set) != 0) {
        fprintf(stderr, "the test mapping does not load\n");
        exit(2);
    }
    return set;
}

/* A pipeline over set with a decision queue of high records and no tap. */
static struct pipeline *pipeline_for(struct mapping_set *set, struct stats *stats, struct queue **q,
                                     struct queue_waiter *w, size_t high)
{
    struct config cfg = {.limits = {.max_message_bytes = 480,
                                    .regex_match_limit = 100000,
                                    .regex_depth_limit = 10000}};
    struct pipeline_outputs pq;
    struct pipeline *p = NULL;

    CHECK_INT(queue_new(high, 1 << 16, q), 0);
    pq = (struct pipeline_outputs){.decisions = *q, .decisions_waiter = w};
    CHECK_INT(pipeline_new(&cfg, stats, set, &pq, &p), 0);
    return p;
}

static int handle(struct pipeline *p, const char *frame, unsigned flags)
{
    return pipeline_handle(p, str_make(frame, strlen(frame)), flags, &src);
}

/* Pops the oldest record and returns its first decision's user. */
static void check_next_user(struct queue *q, const char *want)
{
    struct decision_record d;
    struct str rec;
    size_t pos = 0;

    CHECK_INT(queue_peek(q, &rec), 0);
    CHECK_INT(decision_next(rec, &pos, &d), 0);
    CHECK_STR("record", d.user, want);
    CHECK_STR("record", d.source, src.name);
    queue_release(q);
}

static void test_truncated_frame_is_not_decided(struct mapping_set *set)
{
    struct stats *stats = stats_register();
    int wakes = 0;
    struct queue_waiter w = {.wake = wake_count, .arg = &wakes};
    struct queue *q = NULL;
    struct pipeline *p = pipeline_for(set, stats, &q, &w, 16);
    char log[4096];

    unit_capture_begin();
    CHECK_INT(handle(p, CUT, FRAME_TRUNCATED), 0);
    unit_capture_end(log, sizeof(log));
    CHECK_INT(queue_length(q), 0);
    CHECK_INT(stats->v[STAT_messages_received], 1);
    CHECK_INT(stats->v[STAT_messages_truncated_undecided], 1);
    CHECK_INT(stats->v[STAT_messages_decided], 0);
    CHECK(strstr(log, "192.0.2.7:5140") != NULL && strstr(log, "not decided on") != NULL);

    /* The same bytes whole decide, and the whole value is the user. */
    CHECK_INT(handle(p, WHOLE, 0), 0);
    CHECK_INT(handle(p, WHOLE, FRAME_OCTET), 0);
    CHECK_INT(stats->v[STAT_messages_decided], 2);
    CHECK_INT(stats->v[STAT_messages_truncated_undecided], 1);
    check_next_user(q, "jsmith2");
    check_next_user(q, "jsmith2");
    pipeline_free(p);
    queue_free(q);

    /* No mappings: nothing was held back, nothing is counted. */
    p = pipeline_for(NULL, stats, &q, &w, 16);
    CHECK_INT(handle(p, CUT, FRAME_TRUNCATED), 0);
    CHECK_INT(stats->v[STAT_messages_truncated_undecided], 1);
    pipeline_free(p);
    queue_free(q);
}

static void test_queue_full_counted_once_per_record(struct mapping_set *set)
{
    struct stats *stats = stats_register();
    int wakes = 0;
    struct queue_waiter w = {.wake = wake_count, .arg = &wakes};
    struct queue *q = NULL;
    struct pipeline *p = pipeline_for(set, stats, &q, &w, 1);

    CHECK_INT(handle(p, WHOLE, 0), 0); /* queued */
    CHECK_INT(handle(p, WHOLE, 0), 0); /* consumed, its record pending */
    CHECK(pipeline_pending(p));
    CHECK_INT(stats->v[STAT_decision_queue_full], 1);
    /* Offered again (a paused input) and flushed again (a wake): the same
     * refused record, not new ones. */
    for (int i = 0; i < 3; i++) {
        CHECK_INT(handle(p, WHOLE, 0), ERR_BUSY);
        CHECK_INT(pipeline_flush(p), ERR_BUSY);
    }
    CHECK_INT(stats->v[STAT_decision_queue_full], 1);
    CHECK_INT(stats->v[STAT_messages_received], 2);

    check_next_user(q, "jsmith2");
    CHECK_INT(wakes, 1);
    CHECK_INT(pipeline_flush(p), 0);
    CHECK(!pipeline_pending(p));
    CHECK_INT(queue_length(q), 1);
    /* A new record refused is a new count. */
    CHECK_INT(handle(p, WHOLE, 0), 0);
    CHECK_INT(stats->v[STAT_decision_queue_full], 2);
    check_next_user(q, "jsmith2");
    CHECK_INT(pipeline_flush(p), 0);
    check_next_user(q, "jsmith2");
    CHECK_INT(stats->v[STAT_decisions_dropped], 0);
    pipeline_free(p);
    queue_free(q);
}

/* What the idempotency key is made of: the syslog HOSTNAME, else the
 * sender's address without its port; and, without an event id of the
 * source's own, the SHA-256 of the whole frame. */
static void test_origin(struct mapping_set *set)
{
    static const struct {
        const char *frame, *host, *event_ref;
    } cases[] = {
        {WHOLE, "host", "sha256:acfb5077788fba45d922c08cceb9ba1dd05132d4fbfdc9e8ad50683ad24b12d8"},
        {"<13>1 2026-10-02T09:13:05Z - app - - - alert user=jsmith2", "192.0.2.7",
         "sha256:6cc16bdbf3633df1bd1bba4a07aa678e6a2bbf146c1fbf6ab3338a62952ceee8"},
    };
    struct stats *stats = stats_register();
    struct queue *q = NULL;
    struct pipeline *p = pipeline_for(set, stats, &q, NULL, 16);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct decision_record d;
        struct str rec;
        size_t pos = 0;

        CHECK_INT(handle(p, cases[i].frame, 0), 0);
        CHECK_INT(queue_peek(q, &rec), 0);
        CHECK_INT(decision_next(rec, &pos, &d), 0);
        CHECK_STR(cases[i].frame, d.host, cases[i].host);
        CHECK_STR(cases[i].frame, d.event_ref, cases[i].event_ref);
        queue_release(q);
    }
    pipeline_free(p);
    queue_free(q);
}

/* A frame handed in with an ack: PIPELINE_ACK_LATER when it made
 * decisions, whose record carries the ack (also when a full queue left it
 * pending); 0 when it made none (nothing will answer: the input answers at
 * once), and 0 for a cut frame, which is never decided. */
static void test_ack_later(struct mapping_set *set)
{
    struct stats *stats = stats_register();
    struct queue *q = NULL;
    struct pipeline *p = pipeline_for(set, stats, &q, NULL, 1);
    struct pipeline_source acked = src;
    struct decision_record d;
    struct str rec;
    size_t pos = 0;

    acked.ack = (struct decision_ack){.owner = 77, .seq = 5, .worker = 1};
    CHECK_INT(pipeline_handle(p, STR_LIT(WHOLE), 0, &acked), PIPELINE_ACK_LATER);
    acked.ack.seq = 6;
    CHECK_INT(pipeline_handle(p, STR_LIT(WHOLE), 0, &acked), PIPELINE_ACK_LATER); /* pending */
    CHECK(pipeline_pending(p));
    CHECK_INT(queue_peek(q, &rec), 0);
    CHECK_INT(decision_next(rec, &pos, &d), 0);
    CHECK(d.ack.owner == 77 && d.ack.seq == 5 && d.ack.worker == 1);
    queue_release(q);
    CHECK_INT(pipeline_flush(p), 0);
    pos = 0;
    CHECK_INT(queue_peek(q, &rec), 0);
    CHECK_INT(decision_next(rec, &pos, &d), 0);
    CHECK(d.ack.seq == 6);
    queue_release(q);
    CHECK_INT(pipeline_handle(p, STR_LIT("<13>Oct  2 09:13:05 host app: nothing here"), 0, &acked),
              0);
    CHECK_INT(pipeline_handle(p, STR_LIT(CUT), FRAME_TRUNCATED, &acked), 0);
    CHECK_INT(queue_length(q), 0);
    /* Without an ack, a deciding frame is plain 0. */
    CHECK_INT(handle(p, WHOLE, 0), 0);
    pipeline_free(p);
    queue_free(q);
}

/* Each parse error is counted once, in its format's counter; a frame the
 * transport cut is counted there, not here; CEF pairs past the parser's
 * table are counted one by one. */
static void test_parse_errors_counted(struct mapping_set *set)
{
    static const struct {
        const char *frame;
        unsigned flags;
        enum stats_counter counter; /* STAT_COUNT: none */
    } cases[] = {
        {"<192>x", 0, STAT_parse_errors_syslog},
        {"<13>1 2026-10-02T09:13:05Z", 0, STAT_parse_errors_syslog},
        {"<13>Oct  2 09:13:05 host app: CEF:0|a|b", 0, STAT_parse_errors_cef},
        {"LEEF:2.0|a", 0, STAT_parse_errors_leef},
        {"<13>Oct  2 09:13:05 host app: cut", FRAME_TRUNCATED, STAT_COUNT},
        {"<13>Oct  2 09:13:05 host app: fine", 0, STAT_COUNT},
    };
    static const enum stats_counter all[] = {STAT_parse_errors_syslog, STAT_parse_errors_cef,
                                             STAT_parse_errors_leef};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct stats *stats = stats_register();
        struct queue *q = NULL;
        int wakes = 0;
        struct queue_waiter w = {.wake = wake_count, .arg = &wakes};
        struct pipeline *p = pipeline_for(set, stats, &q, &w, 16);
        char log[4096];

        unit_capture_begin();
        CHECK_INT(handle(p, cases[i].frame, cases[i].flags), 0);
        unit_capture_end(log, sizeof(log));
        for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++)
            CHECK_INT(stats->v[all[k]], all[k] == cases[i].counter);
        pipeline_free(p);
        queue_free(q);
    }
}

/* A CEF event with more pairs than the parser's table: the rest are
 * counted, with the error, however many there are. */
static void test_cef_pairs_dropped_counted(struct mapping_set *set)
{
    struct stats *stats = stats_register();
    struct config cfg = {.limits = {.max_message_bytes = 1 << 16,
                                    .regex_match_limit = 100000,
                                    .regex_depth_limit = 10000}};
    struct pipeline_outputs pq;
    struct pipeline *p = NULL;
    struct queue *q = NULL;
    int wakes = 0;
    struct queue_waiter w = {.wake = wake_count, .arg = &wakes};
    size_t cap = 1 << 16, len;
    char *frame = malloc(cap), log[4096];

    len = (size_t)snprintf(frame, cap, "CEF:0|V|P|1|1|N|5|");
    for (int i = 0; i < CEF_MAX_EXT + 6; i++)
        len += (size_t)snprintf(frame + len, cap - len, "k%d=v ", i);
    CHECK_INT(queue_new(16, 1 << 16, &q), 0);
    pq = (struct pipeline_outputs){.decisions = q, .decisions_waiter = &w};
    CHECK_INT(pipeline_new(&cfg, stats, set, &pq, &p), 0);
    unit_capture_begin();
    CHECK_INT(pipeline_handle(p, str_make(frame, len), 0, &src), 0);
    unit_capture_end(log, sizeof(log));
    CHECK_INT(stats->v[STAT_cef_pairs_dropped], 6);
    CHECK_INT(stats->v[STAT_parse_errors_cef], 1);
    pipeline_free(p);
    queue_free(q);
    free(frame);
}

int main(void)
{
    struct mapping_set *set;

    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(mapping_path, sizeof(mapping_path), "%s/cut.json", tmpdir);
    set = load_set();
    test_truncated_frame_is_not_decided(set);
    test_queue_full_counted_once_per_record(set);
    test_origin(set);
    test_ack_later(set);
    test_parse_errors_counted(set);
    test_cef_pairs_dropped_counted(set);
    mapping_set_unref(set);
    unlink(mapping_path);
    CHECK_INT(rmdir(tmpdir), 0);
    return unit_report("test_pipeline");
}
