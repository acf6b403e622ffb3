/* The correlation counts: the arguments correlate_new refuses and the
 * capacity a byte cap gives; window edges, exact with 1 s buckets and with
 * the documented rounding (the oldest bucket counted whole) with wider ones,
 * the ring covering the longest window; saturation of a bucket; adds in the
 * past in any order (the rebuild at start) giving the same counts; a clock
 * stepped back and one far in the future; key 0 (calloc's zero keys are not
 * keys); slots that hold stale keys reused without an eviction, then evictions
 * counted at the cap, the table never larger, recent keys kept over stale ones
 * and no older key pushing out a newer one; keys differing only in their high
 * bits spread over the table; and four threads adding to the same keys, every
 * alert counted. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "errors.h"
#include "decide/correlate.h"
#include "unit.h"

#define SEED 42

static struct correlate *table(size_t entries, int64_t longest)
{
    struct correlate *c = NULL;

    if (correlate_new_seeded(entries * CORRELATE_ENTRY_BYTES, longest, SEED, &c) != 0) {
        fprintf(stderr, "correlate_new_seeded failed\n");
        exit(2);
    }
    return c;
}

static struct correlate_stats stats(struct correlate *c)
{
    struct correlate_stats s;

    correlate_stats(c, &s);
    return s;
}

static void test_new(void)
{
    struct correlate *c = (struct correlate *)&c;

    CHECK_INT(correlate_new(CORRELATE_ENTRY_BYTES - 1, 60, &c), ERR_INVALID);
    CHECK(c == NULL);
    CHECK_INT(correlate_new(CORRELATE_ENTRY_BYTES, 0, &c), ERR_INVALID);
    CHECK_INT(correlate_new(CORRELATE_ENTRY_BYTES, -60, &c), ERR_INVALID);
    CHECK_INT(correlate_new(CORRELATE_ENTRY_BYTES, CORRELATE_WINDOW_MAX + 1, &c), ERR_INVALID);
    CHECK_INT(correlate_new_seeded(0, 60, SEED, &c), ERR_INVALID);

    CHECK_INT(correlate_new(CORRELATE_ENTRY_BYTES, CORRELATE_WINDOW_MAX, &c), 0);
    CHECK_INT(stats(c).capacity, 1);
    CHECK_INT(correlate_add(c, 7, 1000, CORRELATE_WINDOW_MAX), 1);
    correlate_free(c);
    correlate_free(NULL);

    /* The largest power of two of entries within the cap. */
    static const struct {
        size_t bytes, capacity;
    } caps[] = {
        {CORRELATE_ENTRY_BYTES * 2 - 1, 1},         {CORRELATE_ENTRY_BYTES * 2, 2},
        {CORRELATE_ENTRY_BYTES * 1023, 512},        {CORRELATE_ENTRY_BYTES * 1024, 1024},
        {CORRELATE_ENTRY_BYTES * 1024 + 100, 1024},
    };
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        CHECK_INT(correlate_new(caps[i].bytes, 60, &c), 0);
        CHECK_INT(stats(c).capacity, caps[i].capacity);
        CHECK(stats(c).capacity * CORRELATE_ENTRY_BYTES <= caps[i].bytes);
        CHECK_INT(stats(c).keys, 0);
        correlate_free(c);
    }
}

/* longest 60: 1 s buckets, exact counts over (now - window, now]. */
static void test_window_exact(void)
{
    struct correlate *c = table(64, 60);

    CHECK_INT(correlate_add(c, 1, 1000, 60), 1);
    CHECK_INT(correlate_add(c, 1, 1010, 60), 2);
    CHECK_INT(correlate_add(c, 1, 1059, 60), 3);
    CHECK_INT(correlate_add(c, 2, 1059, 60), 1); /* another key */
    CHECK_INT(correlate_count(c, 1, 1059, 60), 3);
    CHECK_INT(correlate_count(c, 1, 1060, 60), 2); /* 1000 is 60 s old: out */
    CHECK_INT(correlate_count(c, 1, 1059, 50), 2); /* (1009, 1059] */
    CHECK_INT(correlate_count(c, 1, 1059, 49), 1); /* (1010, 1059] */
    CHECK_INT(correlate_count(c, 1, 1059, 1), 1);
    CHECK_INT(correlate_count(c, 1, 1058, 1), 0);
    CHECK_INT(correlate_count(c, 1, 1069, 60), 2);
    CHECK_INT(correlate_count(c, 1, 1070, 60), 1);
    CHECK_INT(correlate_count(c, 1, 1119, 60), 0);
    CHECK_INT(correlate_count(c, 3, 1059, 60), 0); /* never seen */
    /* The window parameter: over the longest counts the longest, none or a
     * negative one counts nothing (the add still counts). */
    CHECK_INT(correlate_count(c, 1, 1060, 1000000), 2);
    CHECK_INT(correlate_count(c, 1, 1060, INT64_MAX), 2);
    CHECK_INT(correlate_count(c, 1, 1059, 0), 0);
    CHECK_INT(correlate_count(c, 1, 1059, -5), 0);
    CHECK_INT(correlate_count(c, 1, 1059, INT64_MIN), 0);
    CHECK_INT(correlate_add(c, 1, 1059, 0), 0);
    CHECK_INT(correlate_count(c, 1, 1059, 60), 4);
    correlate_free(c);
}

/* longest 630: 10 s buckets ([1000, 1010) is bucket 100); a count takes its
 * oldest bucket whole, so it may see alerts up to 9 s older than the window,
 * never miss one inside it. */
static void test_window_rounding(void)
{
    struct correlate *c = table(64, 630);

    correlate_add(c, 1, 1000, 630);
    correlate_add(c, 1, 1009, 630);
    CHECK_INT(correlate_count(c, 1, 1628, 620), 2); /* (1008, 1628]: 1000 is 8 s too old */
    CHECK_INT(correlate_count(c, 1, 1629, 620), 0); /* (1009, 1629] starts in bucket 101 */
    CHECK_INT(correlate_count(c, 1, 1009, 1), 2);   /* the whole bucket: 1000 is 9 s too old */
    CHECK_INT(correlate_count(c, 1, 1010, 1), 0);
    CHECK_INT(correlate_count(c, 1, 1629, 630), 2); /* (999, 1629]: exact */
    CHECK_INT(correlate_count(c, 1, 1638, 630), 2); /* (1008, 1638] */
    CHECK_INT(correlate_count(c, 1, 1639, 630), 0);
    CHECK_INT(correlate_count(c, 1, 1639, 25), 0);
    /* The ring holds the longest window at any offset: bucket 163 is the
     * 64th from 100, and both stay. 1639's alert is in now's bucket for a
     * count at 1638 (the newest bucket is whole too). */
    CHECK_INT(correlate_add(c, 1, 1639, 630), 1);
    CHECK_INT(correlate_count(c, 1, 1638, 630), 3);
    CHECK_INT(correlate_count(c, 1, 1630, 25), 1); /* (1605, 1630]: 1639 is in 163 */
    CHECK_INT(correlate_count(c, 1, 1629, 25), 0);
    /* A window that is no multiple of the width: (1614, 1639] from bucket
     * 161, so 1610 and 1611 count though 4 and 3 s too old. */
    correlate_add(c, 1, 1610, 630);
    correlate_add(c, 1, 1611, 630);
    CHECK_INT(correlate_count(c, 1, 1639, 25), 3);
    CHECK_INT(correlate_count(c, 1, 1639, 20), 1); /* (1619, 1639] from bucket 162 */
    correlate_free(c);
}

/* Whatever the longest window and wherever it starts within a bucket, two
 * alerts at its two ends both count: the ring is long enough. Then negative
 * times with buckets wider than 1 s ([-10, 0) is bucket -1). */
static void test_window_ends(void)
{
    static const int64_t longest[] = {1, 2, 59, 63, 64, 100, 630, 640, 1000, 3600, 86400};
    struct correlate *c;

    for (size_t i = 0; i < sizeof(longest) / sizeof(longest[0]); i++) {
        int64_t l = longest[i];
        int bad = 0;

        c = table(256, l);
        for (uint64_t j = 0; j < 100; j++) {
            int64_t t0 = 1000000 + (int64_t)j;

            correlate_add(c, j, t0, l);
            bad += correlate_add(c, j, t0 + l - 1, l) != 2;
            bad += correlate_count(c, j, t0 + l - 1, l) != 2;
            /* t0 is out (or in, by rounding); t0 + l - 1 is in. */
            bad += l > 1 && correlate_count(c, j, t0 + l, l) < 1;
            bad += correlate_count(c, j, t0 + 3 * l, l) != 0; /* past any rounding */
        }
        if (bad != 0)
            UNIT_FAIL("longest %lld: %d wrong counts", (long long)l, bad);
        else
            unit_passed++;
        correlate_free(c);
    }

    c = table(16, 630);
    CHECK_INT(correlate_add(c, 1, -1, 630), 1);
    CHECK_INT(correlate_add(c, 1, -10, 630), 2);
    CHECK_INT(correlate_add(c, 1, 0, 630), 3);
    CHECK_INT(correlate_count(c, 1, 0, 1), 1);
    CHECK_INT(correlate_count(c, 1, -1, 1), 2);
    CHECK_INT(correlate_count(c, 1, -11, 1), 0);
    correlate_free(c);
}

static void test_saturation(void)
{
    struct correlate *c = table(16, 60);
    uint32_t got = 0;

    for (int i = 0; i < 70000; i++)
        got = correlate_add(c, 5, 2000, 60);
    CHECK_INT(got, UINT16_MAX);
    CHECK_INT(correlate_count(c, 5, 2000, 60), UINT16_MAX);
    CHECK_INT(correlate_add(c, 5, 2001, 60), UINT16_MAX + 1); /* another bucket */
    CHECK_INT(correlate_count(c, 5, 2001, 1), 1);
    correlate_free(c);
}

/* The rebuild: the spool's records in any order give the same counts; one
 * out of the ring once the key's newest is known is not counted whatever
 * came first. longest 600: 10 s buckets. */
static void test_past_adds(void)
{
    static const int64_t ages[] = {0, 590, 300, 599, 700, 650, 5};
    static const int orders[][7] = {
        {0, 1, 2, 3, 4, 5, 6}, {6, 5, 4, 3, 2, 1, 0}, {4, 0, 5, 1, 6, 2, 3}, {5, 3, 1, 6, 0, 4, 2}};
    const int64_t now = 100000;

    for (size_t o = 0; o < sizeof(orders) / sizeof(orders[0]); o++) {
        struct correlate *c = table(64, 600);

        for (int i = 0; i < 7; i++)
            correlate_add(c, 9, now - ages[orders[o][i]], 600);
        /* (99400, 100000]: ages 0, 5, 300, 590, 599. */
        CHECK_INT(correlate_count(c, 9, now, 600), 5);
        CHECK_INT(correlate_count(c, 9, now, 10), 2);
        CHECK_INT(correlate_count(c, 9, now - 300, 1), 1);
        /* The ring ends at the newest: 700 (bucket 9930) is gone though a
         * count at now - 300 would have it in its window. */
        CHECK_INT(correlate_count(c, 9, now - 300, 600), 3);
        CHECK_INT(stats(c).evictions, 0);
        correlate_free(c);
    }
}

/* longest 60, 1 s buckets. */
static void test_clock_steps(void)
{
    struct correlate *c = table(16, 60);

    correlate_add(c, 1, 10000, 60);
    correlate_add(c, 1, 10000, 60);
    /* 10 s back: into its own bucket; the later two are not in its window. */
    CHECK_INT(correlate_add(c, 1, 9990, 60), 1);
    CHECK_INT(correlate_count(c, 1, 10000, 60), 3);
    CHECK_INT(correlate_count(c, 1, 10000, 10), 2);
    /* Far ahead: the ring is emptied and starts again there. */
    CHECK_INT(correlate_add(c, 1, 10000 + 1000000, 60), 1);
    CHECK_INT(correlate_count(c, 1, 10000, 60), 0);
    /* Back to the old time: out of the key's ring, dropped. */
    CHECK_INT(correlate_add(c, 1, 10001, 60), 0);
    CHECK_INT(stats(c).dropped, 1);
    CHECK_INT(correlate_count(c, 1, 10000 + 1000000, 60), 1);
    /* Ahead by less than the ring: the skipped buckets are zeroed, the ones
     * still in it kept. */
    correlate_add(c, 2, 5000, 60);
    correlate_add(c, 2, 5030, 60);
    CHECK_INT(correlate_add(c, 2, 5059, 60), 3);
    CHECK_INT(correlate_add(c, 2, 5100, 60), 2);
    CHECK_INT(correlate_count(c, 2, 5100, 60), 2);
    CHECK_INT(correlate_count(c, 2, 5130, 60), 1);
    /* Times at the ends of int64_t neither crash nor overflow (UBSan). */
    correlate_add(c, 3, INT64_MAX, 60);
    correlate_add(c, 3, INT64_MIN, 60);
    correlate_add(c, 3, INT64_MIN, INT64_MAX);
    CHECK_INT(correlate_count(c, 3, INT64_MAX, 60), 1);
    CHECK_INT(correlate_count(c, 3, INT64_MIN, INT64_MAX), 0);
    CHECK_INT(correlate_add(c, 4, -1, 60), 1); /* before 1970: floor division */
    CHECK_INT(correlate_add(c, 4, 0, 60), 2);
    CHECK_INT(correlate_count(c, 4, 0, 1), 1);
    CHECK_INT(correlate_count(c, 4, 58, 60), 2);
    CHECK_INT(correlate_count(c, 4, 59, 60), 1);
    correlate_free(c);
}

static void test_key_zero(void)
{
    struct correlate *c = table(16, 60);

    CHECK_INT(correlate_count(c, 0, 1000, 60), 0);
    CHECK_INT(correlate_count(c, 0, 0, 60), 0);
    CHECK_INT(stats(c).keys, 0);
    CHECK_INT(correlate_add(c, 0, 1000, 60), 1);
    CHECK_INT(correlate_add(c, 0, 1001, 60), 2);
    CHECK_INT(correlate_add(c, UINT64_MAX, 1001, 60), 1);
    CHECK_INT(correlate_count(c, 0, 1001, 60), 2);
    CHECK_INT(stats(c).keys, 2);
    correlate_free(c);
}

/* 16 entries: one probe range is the whole table. */
static void test_reuse(void)
{
    struct correlate *c = table(16, 60);

    for (uint64_t k = 0; k < 16; k++)
        correlate_add(c, k, 1000, 60);
    CHECK_INT(stats(c).keys, 16);
    CHECK_INT(stats(c).evictions, 0);
    /* At 1060 the keys of 1000 are out of the longest window: their slots
     * are free, no eviction, and the new keys start from nothing. */
    for (uint64_t k = 100; k < 116; k++)
        CHECK_INT(correlate_add(c, k, 1060, 60), 1);
    CHECK_INT(stats(c).keys, 16);
    CHECK_INT(stats(c).evictions, 0);
    CHECK_INT(stats(c).dropped, 0);
    for (uint64_t k = 0; k < 16; k++)
        CHECK_INT(correlate_count(c, k, 1060, 60), 0);
    /* 59 s later they are still in it: the oldest goes, counted. */
    for (uint64_t k = 200; k < 216; k++)
        correlate_add(c, k, 1060 + 59, 60);
    CHECK_INT(stats(c).evictions, 16);
    /* An add older than every key held pushes none of them out. */
    CHECK_INT(correlate_add(c, 300, 1100, 60), 0);
    CHECK_INT(stats(c).evictions, 16);
    CHECK_INT(stats(c).dropped, 1);
    for (uint64_t k = 200; k < 216; k++)
        CHECK_INT(correlate_count(c, k, 1119, 60), 1);
    /* Re-adding a key whose slot was taken finds none and starts again. */
    CHECK_INT(correlate_add(c, 0, 1119, 60), 1);
    correlate_free(c);
}

/* 64 entries, many more keys. Keys are spread like SHA-256 bits. */
static uint64_t spread(uint64_t i)
{
    uint64_t z = i * 0x9e3779b97f4a7c15ull + 1;

    z = (z ^ (z >> 31)) * 0xd6e8feb86659fd93ull;
    return z ^ (z >> 32);
}

static void test_cap(void)
{
    struct correlate *c = table(64, 600);
    struct correlate_stats before, after;
    unsigned stale_left = 0, recent_left = 0;

    for (uint64_t i = 0; i < 1000; i++)
        CHECK_INT(correlate_add(c, spread(i), 1000, 600), 1);
    before = stats(c);
    CHECK_INT(before.capacity, 64);
    CHECK(before.keys <= 64);
    CHECK(before.keys >= 60); /* probing fills the table */
    CHECK(before.evictions >= 1000 - 64);
    /* 32 recent keys, twice each: they take stale keys' slots. */
    for (int round = 0; round < 2; round++)
        for (uint64_t i = 5000; i < 5032; i++)
            correlate_add(c, spread(i), 1300 + round, 600);
    after = stats(c);
    CHECK_INT(after.capacity, 64);
    CHECK_INT(after.dropped, 0);
    /* Each first add of a recent key took an empty slot or evicted. */
    CHECK_INT((after.evictions - before.evictions) + (after.keys - before.keys), 32);
    for (uint64_t i = 5000; i < 5032; i++)
        recent_left += correlate_count(c, spread(i), 1301, 600) == 2;
    for (uint64_t i = 936; i < 1000; i++) /* the last stale ones: most are held */
        stale_left += correlate_count(c, spread(i), 1301, 600) == 1;
    CHECK_INT(recent_left, 32);
    CHECK(stale_left < 64 - 32 + 1);
    correlate_free(c);

    /* Keys that differ only above bit 32 do not share a slot range: the
     * slot comes from every bit of the key. */
    c = table(64, 600);
    for (uint64_t i = 0; i < 48; i++)
        correlate_add(c, i << 40, 1000, 600);
    CHECK(stats(c).evictions < 8);
    correlate_free(c);
}

#define THREADS       4
#define THREAD_KEYS   100
#define THREAD_ROUNDS 500

static void *adder(void *arg)
{
    struct correlate *c = arg;

    for (int r = 0; r < THREAD_ROUNDS; r++)
        for (uint64_t k = 0; k < THREAD_KEYS; k++)
            correlate_add(c, spread(k), 5000 + (r + (int)k) % 60, 60);
    return NULL;
}

static void test_threads(void)
{
    struct correlate *c = table(4096, 60);
    pthread_t t[THREADS];
    int counted = 0;

    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, adder, c) != 0) {
            perror("pthread_create");
            exit(2);
        }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (uint64_t k = 0; k < THREAD_KEYS; k++)
        counted += correlate_count(c, spread(k), 5059, 60) == THREADS * THREAD_ROUNDS;
    CHECK_INT(counted, THREAD_KEYS);
    CHECK_INT(stats(c).keys, THREAD_KEYS);
    CHECK_INT(stats(c).evictions, 0);
    CHECK_INT(stats(c).dropped, 0);
    correlate_free(c);
}

int main(void)
{
    test_new();
    test_window_exact();
    test_window_rounding();
    test_window_ends();
    test_saturation();
    test_past_adds();
    test_clock_steps();
    test_key_zero();
    test_reuse();
    test_cap();
    test_threads();
    return unit_report("test_correlate");
}
