/* Counter blocks: sums across blocks (as across workers), names and help
 * texts in the order of the X-macro, which is the /metrics contract. */
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
    for (int i = 0; i < STAT_COUNT; i++) {
        const char *name = stats_name((enum stats_counter)i);
        const char *help = stats_help((enum stats_counter)i);
        /* Prometheus metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; help on one line. */
        CHECK(name != NULL && name[0] != '\0' &&
              strspn(name, "abcdefghijklmnopqrstuvwxyz_0123456789") == strlen(name));
        CHECK(help != NULL && help[0] != '\0' && strchr(help, '\n') == NULL);
    }
    return unit_report("test_stats");
}
