/* Counter blocks: one per thread that counts, chained in a list that only
 * grows, so readers walk it without holding the lock for long. */
#include "stats.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Aligned, hence also padded, to a cache line: two workers' counters never
 * share one, so their stores do not bounce it between cores. */
struct stats_block {
    _Alignas(STATS_ALIGN) struct stats s; /* first member: a struct stats * is the block */
    struct stats_block *next;
};

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct stats_block *stats_blocks;

static const char *const stats_names[STAT_COUNT] = {
#define STATS_NAME(name, kind, metric, help) #name,
    STATS_COUNTERS(STATS_NAME)
#undef STATS_NAME
};

static const char *const stats_metrics[STAT_COUNT] = {
#define STATS_METRIC(name, kind, metric, help) metric,
    STATS_COUNTERS(STATS_METRIC)
#undef STATS_METRIC
};

static const char *const stats_helps[STAT_COUNT] = {
#define STATS_HELP(name, kind, metric, help) help,
    STATS_COUNTERS(STATS_HELP)
#undef STATS_HELP
};

static const enum stats_kind stats_kinds[STAT_COUNT] = {
#define STATS_KIND(name, kind, metric, help) STATS_##kind,
    STATS_COUNTERS(STATS_KIND)
#undef STATS_KIND
};

struct stats *stats_register(void)
{
    /* sizeof is a multiple of the alignment, as aligned_alloc wants. */
    struct stats_block *b = aligned_alloc(_Alignof(struct stats_block), sizeof(*b));

    /* A few hundred bytes per thread at start-up: running out of memory here
     * leaves nothing sensible to do. */
    if (b == NULL)
        abort();
    memset(b, 0, sizeof(*b));
    pthread_mutex_lock(&stats_lock);
    b->next = stats_blocks;
    stats_blocks = b;
    pthread_mutex_unlock(&stats_lock);
    return &b->s;
}

void stats_sum(uint64_t out[STAT_COUNT])
{
    struct stats_block *b;

    for (int i = 0; i < STAT_COUNT; i++)
        out[i] = 0;
    pthread_mutex_lock(&stats_lock);
    for (b = stats_blocks; b != NULL; b = b->next) {
        for (int i = 0; i < STAT_COUNT; i++)
            out[i] += __atomic_load_n(&b->s.v[i], __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&stats_lock);
}

const char *stats_name(enum stats_counter c)
{
    return stats_names[c];
}

const char *stats_metric(enum stats_counter c)
{
    return stats_metrics[c];
}

enum stats_kind stats_kind(enum stats_counter c)
{
    return stats_kinds[c];
}

const char *stats_help(enum stats_counter c)
{
    return stats_helps[c];
}
