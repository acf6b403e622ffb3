/* A chained hash of keys plus a FIFO of the same entries by arrival, so
 * that expiry and eviction are O(1) each. Keys are SHA-256 hex: their
 * leading 16 digits are already uniform, and nobody picks SHA-256 outputs,
 * so the bucket is taken from them directly. */
#include "dedup.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"

#define DEDUP_KEY 64

struct dedup_entry {
    struct dedup_entry *chain;           /* next in its bucket */
    struct dedup_entry *older, *younger; /* the FIFO */
    int64_t when;                        /* ms, the monotonic clock */
    const void *pending;                 /* who has yet to make the key's alert durable */
    char key[DEDUP_KEY];
};

struct dedup {
    int64_t window_ms;
    size_t max, count, mask;
    struct dedup_entry **buckets;
    struct dedup_entry *oldest, *youngest;
};

_Static_assert(sizeof(struct dedup_entry) + 2 * sizeof(void *) + sizeof(struct dedup_entry *) <=
                   DEDUP_ENTRY_BYTES,
               "an entry, malloc's header and a bucket pointer fit DEDUP_ENTRY_BYTES");

int dedup_new(int window_s, size_t max_bytes, struct dedup **out)
{
    struct dedup *d = calloc(1, sizeof(*d));
    size_t max_entries = max_bytes / DEDUP_ENTRY_BYTES, n = 1024;

    *out = NULL;
    if (d == NULL)
        return ERR_NOMEM;
    /* At most one bucket per entry, so the table stays within the budget. */
    while (2 * n <= max_entries && n < ((size_t)1 << 24))
        n *= 2;
    d->buckets = calloc(n, sizeof(*d->buckets));
    if (d->buckets == NULL) {
        free(d);
        return ERR_NOMEM;
    }
    d->window_ms = (int64_t)window_s * 1000;
    d->max = max_entries > 0 ? max_entries : 1;
    d->mask = n - 1;
    *out = d;
    return 0;
}

static size_t dedup_bucket(const struct dedup *d, const char *key)
{
    uint64_t h = 0;

    for (int i = 0; i < 16; i++) {
        char c = key[i];
        h = h << 4 | (uint64_t)(c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0');
    }
    return (size_t)(h & d->mask);
}

/* Unlinks and frees the oldest entry. */
static void dedup_drop_oldest(struct dedup *d)
{
    struct dedup_entry *e = d->oldest, **at = &d->buckets[dedup_bucket(d, e->key)];

    while (*at != e)
        at = &(*at)->chain;
    *at = e->chain;
    d->oldest = e->younger;
    if (d->oldest != NULL)
        d->oldest->older = NULL;
    else
        d->youngest = NULL;
    d->count--;
    free(e);
}

static void dedup_expire(struct dedup *d, int64_t now)
{
    while (d->oldest != NULL && d->oldest->when <= now - d->window_ms)
        dedup_drop_oldest(d);
}

/* The entry for key, or NULL. */
static struct dedup_entry *dedup_find(const struct dedup *d, const char *key)
{
    for (struct dedup_entry *e = d->buckets[dedup_bucket(d, key)]; e != NULL; e = e->chain)
        if (memcmp(e->key, key, DEDUP_KEY) == 0)
            return e;
    return NULL;
}

/* Records key as seen at when, the youngest in the FIFO. */
static void dedup_add(struct dedup *d, const char *key, int64_t when, const void *pending)
{
    size_t b = dedup_bucket(d, key);
    struct dedup_entry *e;

    if (d->count == d->max)
        dedup_drop_oldest(d);
    e = malloc(sizeof(*e));
    if (e == NULL)
        return;
    memcpy(e->key, key, DEDUP_KEY);
    e->when = when;
    e->pending = pending;
    e->chain = d->buckets[b];
    d->buckets[b] = e;
    e->younger = NULL;
    e->older = d->youngest;
    if (d->youngest != NULL)
        d->youngest->younger = e;
    else
        d->oldest = e;
    d->youngest = e;
    d->count++;
}

int dedup_seen(struct dedup *d, const char *key, int64_t now, const void *pending,
               const void **owner)
{
    struct dedup_entry *e;

    if (d->window_ms == 0 || strlen(key) != DEDUP_KEY)
        return 0;
    dedup_expire(d, now);
    e = dedup_find(d, key);
    /* An entry still there but out of its window sits behind an older
     * refilled one (dedup_refill): it counts as gone, and a fresh one is
     * recorded. */
    if (e != NULL && now - e->when < d->window_ms) {
        *owner = e->pending;
        return 1;
    }
    dedup_add(d, key, now, pending);
    return 0;
}

void dedup_settled(struct dedup *d, const char *key, const void *pending)
{
    struct dedup_entry *e;

    if (d->window_ms == 0 || strlen(key) != DEDUP_KEY)
        return;
    e = dedup_find(d, key);
    if (e != NULL && e->pending == pending)
        e->pending = NULL;
}

void dedup_refill(struct dedup *d, const char *key, int64_t now, int64_t age_ms)
{
    if (d->window_ms == 0 || strlen(key) != DEDUP_KEY || age_ms >= d->window_ms)
        return;
    if (dedup_find(d, key) == NULL)
        dedup_add(d, key, now - (age_ms > 0 ? age_ms : 0), NULL);
}

size_t dedup_count(const struct dedup *d)
{
    return d->count;
}

void dedup_free(struct dedup *d)
{
    if (d == NULL)
        return;
    while (d->oldest != NULL)
        dedup_drop_oldest(d);
    free(d->buckets);
    free(d);
}
