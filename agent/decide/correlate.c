/* An open-addressed table of fixed size with bounded probing: no chains, no
 * tombstones (a key is looked for in all CORRELATE_PROBE slots of its range,
 * so slots can be reused or evicted in place), no allocation after
 * correlate_new. The three columns are apart so that a probe reads the keys
 * and newest buckets of its range (4 cache lines) and only the one ring it
 * uses (2 lines, aligned). */
#include "correlate.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "errors.h"

#define CORRELATE_EMPTY      INT64_MIN /* newest of a slot that never held a key */
#define CORRELATE_TIME_LIMIT ((int64_t)1 << 61)

_Static_assert((CORRELATE_BUCKETS & (CORRELATE_BUCKETS - 1)) == 0, "a power of two ring");
_Static_assert(CORRELATE_ENTRY_BYTES ==
                   sizeof(uint64_t) + sizeof(int64_t) + CORRELATE_BUCKETS * sizeof(uint16_t),
               "CORRELATE_ENTRY_BYTES is what an entry costs");
/* The largest count, every bucket saturated, fits the uint32_t returned. */
_Static_assert(UINT32_MAX / CORRELATE_BUCKETS >= UINT16_MAX, "counts fit");

struct correlate_ring {
    _Alignas(64) uint16_t counts[CORRELATE_BUCKETS];
};

struct correlate {
    pthread_mutex_t lock;
    int64_t width;   /* seconds per bucket */
    int64_t longest; /* seconds */
    uint64_t mult;   /* odd: slot = ((key ^ offset) * mult) >> shift */
    uint64_t offset;
    unsigned shift; /* 64 - log2(capacity); 64 for one slot */
    size_t mask;    /* capacity - 1 */
    size_t probe;   /* min(CORRELATE_PROBE, capacity) */
    uint64_t *keys;
    int64_t *newest; /* bucket index, CORRELATE_EMPTY */
    struct correlate_ring *rings;
    size_t keys_held;
    uint64_t evictions, dropped;
};

/* splitmix64: a seed (any, 0 included) to well-mixed bits. */
static uint64_t correlate_mix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int correlate_new_seeded(size_t max_bytes, int64_t longest_window_s, uint64_t seed,
                         struct correlate **out)
{
    struct correlate *c;
    size_t cap = 1;
    unsigned bits = 0;

    *out = NULL;
    if (max_bytes < CORRELATE_ENTRY_BYTES || longest_window_s <= 0 ||
        longest_window_s > CORRELATE_WINDOW_MAX)
        return ERR_INVALID;
    while (cap <= max_bytes / CORRELATE_ENTRY_BYTES / 2 && bits < 62) {
        cap *= 2;
        bits++;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return ERR_NOMEM;
    c->keys = calloc(cap, sizeof(*c->keys));
    c->newest = malloc(cap * sizeof(*c->newest));
    c->rings = aligned_alloc(_Alignof(struct correlate_ring), cap * sizeof(*c->rings));
    if (c->keys == NULL || c->newest == NULL || c->rings == NULL ||
        pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->keys);
        free(c->newest);
        free(c->rings);
        free(c);
        return ERR_NOMEM;
    }
    for (size_t i = 0; i < cap; i++)
        c->newest[i] = CORRELATE_EMPTY;
    /* Touched now, so that the table's memory is all there from the start. */
    memset(c->rings, 0, cap * sizeof(*c->rings));
    c->longest = longest_window_s;
    c->width = (longest_window_s + CORRELATE_BUCKETS - 2) / (CORRELATE_BUCKETS - 1);
    c->mult = correlate_mix(&seed) | 1;
    c->offset = correlate_mix(&seed);
    c->shift = 64 - bits;
    c->mask = cap - 1;
    c->probe = cap < CORRELATE_PROBE ? cap : CORRELATE_PROBE;
    *out = c;
    return 0;
}

int correlate_new(size_t max_bytes, int64_t longest_window_s, struct correlate **out)
{
    uint64_t seed;
    ssize_t n;

    *out = NULL;
    do
        n = getrandom(&seed, sizeof(seed), 0);
    while (n == -1 && errno == EINTR);
    if (n != (ssize_t)sizeof(seed)) {
        if (n != -1)
            errno = EIO;
        return ERR_IO;
    }
    return correlate_new_seeded(max_bytes, longest_window_s, seed, out);
}

void correlate_free(struct correlate *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c->keys);
    free(c->newest);
    free(c->rings);
    free(c);
}

static int64_t correlate_clamp(int64_t t)
{
    return t < -CORRELATE_TIME_LIMIT  ? -CORRELATE_TIME_LIMIT
           : t > CORRELATE_TIME_LIMIT ? CORRELATE_TIME_LIMIT
                                      : t;
}

/* The bucket of second t (floor division: times before 1970 too). */
static int64_t correlate_bucket(const struct correlate *c, int64_t t)
{
    int64_t b = t / c->width;

    return t % c->width < 0 ? b - 1 : b;
}

static size_t correlate_ring_slot(int64_t b)
{
    /* Modulo 2^64 then modulo the ring: the same as b mod the ring. */
    return (size_t)((uint64_t)b & (CORRELATE_BUCKETS - 1));
}

/* The slot key starts its probe range at: the top bits of a product with a
 * random odd multiplier depend on every bit of the key and on the secret, so
 * keys cannot be chosen to crowd one range (keys are SHA-256 bits already;
 * this guards against a caller that ever hashes less well). */
static size_t correlate_home(const struct correlate *c, uint64_t key)
{
    uint64_t h = (key ^ c->offset) * c->mult;

    return c->shift >= 64 ? 0 : (size_t)(h >> c->shift);
}

/* The slot holding key, or SIZE_MAX. */
static size_t correlate_find(const struct correlate *c, uint64_t key)
{
    size_t home = correlate_home(c, key);

    for (size_t i = 0; i < c->probe; i++) {
        size_t s = (home + i) & c->mask;

        if (c->keys[s] == key && c->newest[s] != CORRELATE_EMPTY)
            return s;
    }
    return SIZE_MAX;
}

/* Slot s's count over the buckets that overlap (now - window, now]. */
static uint32_t correlate_sum(const struct correlate *c, size_t s, int64_t now, int64_t window)
{
    const uint16_t *counts = c->rings[s].counts;
    int64_t newest = c->newest[s], lo, hi;
    uint32_t sum = 0;

    if (window <= 0)
        return 0;
    if (window > c->longest)
        window = c->longest;
    hi = correlate_bucket(c, now);
    lo = correlate_bucket(c, now - window + 1);
    if (hi > newest)
        hi = newest;
    if (lo < newest - (CORRELATE_BUCKETS - 1))
        lo = newest - (CORRELATE_BUCKETS - 1);
    for (int64_t b = lo; b <= hi; b++)
        sum += counts[correlate_ring_slot(b)];
    return sum;
}

/* A slot for a new key whose alert is in bucket b at time at, or SIZE_MAX
 * (the add is dropped). The eviction victim is the entry whose newest alert
 * is oldest: reads do not keep a key (a key nobody adds to fades anyway). */
static size_t correlate_claim(struct correlate *c, uint64_t key, int64_t at, int64_t b)
{
    int64_t expired_before = correlate_bucket(c, at - c->longest + 1), oldest = INT64_MAX;
    size_t home = correlate_home(c, key), victim = SIZE_MAX;

    for (size_t i = 0; i < c->probe; i++) {
        size_t s = (home + i) & c->mask;

        if (c->newest[s] == CORRELATE_EMPTY) {
            c->keys_held++;
            return s;
        }
        if (c->newest[s] < expired_before)
            return s;
        if (c->newest[s] < oldest) {
            oldest = c->newest[s];
            victim = s;
        }
    }
    if (oldest > b)
        return SIZE_MAX;
    c->evictions++;
    return victim;
}

uint32_t correlate_add(struct correlate *c, uint64_t key, int64_t at_s, int64_t window_s)
{
    int64_t at = correlate_clamp(at_s), b = correlate_bucket(c, at);
    uint16_t *count;
    uint32_t sum = 0;
    size_t s;

    pthread_mutex_lock(&c->lock);
    s = correlate_find(c, key);
    if (s == SIZE_MAX) {
        s = correlate_claim(c, key, at, b);
        if (s == SIZE_MAX) {
            c->dropped++;
            goto out;
        }
        c->keys[s] = key;
        c->newest[s] = b;
        memset(c->rings[s].counts, 0, sizeof(c->rings[s].counts));
    } else if (b > c->newest[s]) {
        /* Forward: the buckets skipped, and the one reached, start empty. */
        if (b - c->newest[s] >= CORRELATE_BUCKETS)
            memset(c->rings[s].counts, 0, sizeof(c->rings[s].counts));
        else
            for (int64_t i = c->newest[s] + 1; i <= b; i++)
                c->rings[s].counts[correlate_ring_slot(i)] = 0;
        c->newest[s] = b;
    } else if (b <= c->newest[s] - CORRELATE_BUCKETS) {
        /* Out of the ring: too old to count. */
        c->dropped++;
        sum = correlate_sum(c, s, at, window_s);
        goto out;
    }
    count = &c->rings[s].counts[correlate_ring_slot(b)];
    if (*count < UINT16_MAX)
        (*count)++;
    sum = correlate_sum(c, s, at, window_s);
out:
    pthread_mutex_unlock(&c->lock);
    return sum;
}

uint32_t correlate_count(struct correlate *c, uint64_t key, int64_t now_s, int64_t window_s)
{
    uint32_t sum = 0;
    size_t s;

    pthread_mutex_lock(&c->lock);
    s = correlate_find(c, key);
    if (s != SIZE_MAX)
        sum = correlate_sum(c, s, correlate_clamp(now_s), window_s);
    pthread_mutex_unlock(&c->lock);
    return sum;
}

void correlate_stats(struct correlate *c, struct correlate_stats *out)
{
    pthread_mutex_lock(&c->lock);
    out->keys = c->keys_held;
    out->capacity = c->mask + 1;
    out->evictions = c->evictions;
    out->dropped = c->dropped;
    pthread_mutex_unlock(&c->lock);
}
