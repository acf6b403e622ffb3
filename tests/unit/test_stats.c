/* Counter blocks: sums across blocks (as across workers), names, metrics
 * and help texts in the order of the X-macro, which is the /metrics
 * contract: Prometheus names, counters in _total, families together. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "core/stats.h"
#include "unit.h"

enum { THREADS = 4, ADDS = 100000, BLOCKS = 8 };

/* Each block starts a cache line of its own, so two workers' counters never
 * share one (the blocks are single-writer; sharing would bounce the line). */
static void test_alignment(void)
{
    for (int i = 0; i < BLOCKS; i++) {
        struct stats *s = stats_register();

        CHECK_INT((uintptr_t)s % 64, 0);
        CHECK_INT(s->v[STAT_tap_lines], 0);
    }
}

static void *add_many(void *arg)
{
    struct stats *s = stats_register();

    (void)arg;
    for (int i = 0; i < ADDS; i++) {
        stats_add(s, STAT_messages_received, 1);
        stats_add(s, STAT_bytes_received, 3);
    }
    return NULL;
}

/* Whether a and b are members of one metric family (same name before the
 * labels). */
static int same_family(enum stats_counter a, enum stats_counter b)
{
    size_t n = strcspn(stats_metric(a), "{");

    return strcspn(stats_metric(b), "{") == n && strncmp(stats_metric(a), stats_metric(b), n) == 0;
}

int main(void)
{
    uint64_t before[STAT_COUNT], after[STAT_COUNT];
    pthread_t th[THREADS];
    struct stats *a;

    stats_sum(before);
    for (int i = 0; i < STAT_COUNT; i++)
        CHECK_INT(before[i], 0);
    a = stats_register();
    stats_add(a, STAT_tap_lines, 7);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, add_many, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    stats_sum(after);
    CHECK_INT(after[STAT_messages_received], THREADS * ADDS);
    CHECK_INT(after[STAT_bytes_received], 3 * THREADS * ADDS);
    CHECK_INT(after[STAT_tap_lines], 7);
    CHECK_INT(after[STAT_frames_truncated], 0);
    test_alignment();

    CHECK(strcmp(stats_name(STAT_messages_received), "messages_received") == 0);
    CHECK(strcmp(stats_name(STAT_tap_lines), "tap_lines") == 0);
    CHECK(strcmp(stats_name(STAT_connections_refused_allowlist), "connections_refused_allowlist") ==
          0);
    CHECK(strcmp(stats_metric(STAT_bytes_received), "received_bytes_total") == 0);
    CHECK(strcmp(stats_metric(STAT_connections_refused_allowlist),
                 "connections_refused_total{reason=\"allowlist\"}") == 0);
    CHECK_INT(stats_kind(STAT_messages_received), STATS_COUNTER);
    CHECK_INT(stats_kind(STAT_dead_letter_bytes), STATS_GAUGE);
    CHECK_INT(stats_kind(STAT_spool_oldest_pending), STATS_AGE);
    for (int i = 0; i < STAT_COUNT; i++) {
        enum stats_counter c = (enum stats_counter)i;
        const char *name = stats_name(c);
        const char *metric = stats_metric(c);
        const char *help = stats_help(c);
        size_t family = strcspn(metric, "{");
        int counter = stats_kind(c) == STATS_COUNTER;

        CHECK(name != NULL && name[0] != '\0' &&
              strspn(name, "abcdefghijklmnopqrstuvwxyz_0123456789") == strlen(name));
        /* Prometheus metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; then the labels. */
        CHECK(family > 0 && strspn(metric, "abcdefghijklmnopqrstuvwxyz_0123456789") == family);
        CHECK(metric[family] == '\0' || metric[strlen(metric) - 1] == '}');
        /* Counters, and only they, end in _total (promtool check metrics). */
        CHECK(counter == (family > 6 && strncmp(metric + family - 6, "_total", 6) == 0));
        CHECK(help != NULL && help[0] != '\0' && strchr(help, '\n') == NULL &&
              strchr(help, '\\') == NULL);
        /* A family is one run of entries (one HELP and TYPE), of one kind
         * and one help text. */
        if (i > 0 && same_family(c - 1, c)) {
            CHECK_INT(stats_kind(c - 1), stats_kind(c));
            CHECK(strcmp(stats_help(c - 1), help) == 0);
        }
        for (int j = i + 2; j < STAT_COUNT; j++)
            CHECK(!same_family(c, (enum stats_counter)j) ||
                  same_family((enum stats_counter)(j - 1), (enum stats_counter)j));
    }
    return unit_report("test_stats");
}
