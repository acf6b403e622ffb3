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
    int64_t when;
    char key[DEDUP_KEY];
};

struct dedup {
    int window_s;
    size_t max, count, mask;
    struct dedup_entry **buckets;
    struct dedup_entry *oldest, *youngest;
};

int dedup_new(int window_s, size_t max_entries, struct dedup **out)
{
    struct dedup *d = calloc(1, sizeof(*d));
    size_t n = 1024;

    *out = NULL;
    if (d == NULL)
        return ERR_NOMEM;
    while (n < max_entries && n < ((size_t)1 << 24))
        n *= 2;
    d->buckets = calloc(n, sizeof(*d->buckets));
    if (d->buckets == NULL) {
        free(d);
        return ERR_NOMEM;
    }
    d->window_s = window_s;
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

int dedup_check(struct dedup *d, const char *key, int64_t when_s)
{
    struct dedup_entry *e;
    size_t b;

    if (d->window_s == 0 || strlen(key) != DEDUP_KEY)
        return 0;
    while (d->oldest != NULL && d->oldest->when <= when_s - d->window_s)
        dedup_drop_oldest(d);
    b = dedup_bucket(d, key);
    for (e = d->buckets[b]; e != NULL; e = e->chain) {
        if (memcmp(e->key, key, DEDUP_KEY) == 0 && when_s - e->when < d->window_s &&
            when_s >= e->when)
            return 1;
    }
    if (d->count == d->max)
        dedup_drop_oldest(d);
    e = malloc(sizeof(*e));
    if (e == NULL)
        return 0;
    memcpy(e->key, key, DEDUP_KEY);
    e->when = when_s;
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
    return 0;
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
