/* The exact-duplicate window on the monotonic clock (milliseconds): same
 * key inside the window is a duplicate, at the window's end it is not;
 * other keys never are; entries expire and the oldest are evicted at the
 * cap, a budget in bytes; a window of 0 suppresses nothing. The refill at start: an entry
 * stays for what is left of the window given its age, an unknown age (0)
 * keeps it the whole window, one older than the window is not kept, and
 * one refilled out of time order neither hides a newer key nor expires
 * early. */
#include <stdio.h>
#include <string.h>

#include "deliver/dedup.h"
#include "unit.h"

static void key(char out[65], unsigned n)
{
    /* Distinct keys that share their first 16 digits too (one bucket). */
    snprintf(out, 65, "%016x%048x", n % 3, n);
}

/* dedup_seen without an owner to wait for. */
static int seen(struct dedup *d, const char *k, int64_t now)
{
    const void *owner = NULL;

    return dedup_seen(d, k, now, NULL, &owner);
}

static void test_window(void)
{
    struct dedup *d = NULL;
    char a[65], b[65];

    CHECK_INT(dedup_new(600, 4 * DEDUP_ENTRY_BYTES, &d), 0);
    key(a, 1);
    key(b, 4);
    CHECK_INT(seen(d, a, 1000000), 0);
    CHECK_INT(seen(d, a, 1000000), 1);
    CHECK_INT(seen(d, a, 1599999), 1);
    CHECK_INT(seen(d, b, 1001000), 0); /* same bucket, another key */
    CHECK_INT(seen(d, a, 1600000), 0); /* the window ended: sent, and recorded again */
    CHECK_INT(seen(d, a, 1700000), 1);
    CHECK_INT(seen(d, "short", 1700000), 0);
    CHECK_INT(seen(d, "short", 1700000), 0);
    /* Expiry: b (1001 s) is gone by 1601 s. */
    CHECK_INT(seen(d, b, 1650000), 0);
    CHECK_INT((long long)dedup_count(d), 2);
    /* The cap: 4 entries; a fifth evicts the oldest (a at 1600 s). */
    for (unsigned i = 10; i < 13; i++) {
        char k[65];
        key(k, i);
        CHECK_INT(seen(d, k, 1700000), 0);
    }
    CHECK_INT((long long)dedup_count(d), 4);
    CHECK_INT(seen(d, a, 1701000), 0);
    dedup_free(d);

    CHECK_INT(dedup_new(0, 4 * DEDUP_ENTRY_BYTES, &d), 0);
    CHECK_INT(seen(d, a, 1), 0);
    CHECK_INT(seen(d, a, 1), 0);
    dedup_refill(d, a, 1, 0);
    CHECK_INT((long long)dedup_count(d), 0);
    dedup_free(d);
}

static void test_refill(void)
{
    const int64_t now = 5000000; /* the monotonic clock at start: 5000 s */
    struct dedup *d = NULL;
    char fresh[65], half[65], old[65], unknown[65], late[65];

    CHECK_INT(dedup_new(600, 16 * DEDUP_ENTRY_BYTES, &d), 0);
    key(fresh, 1);
    key(half, 2);
    key(old, 3);
    key(unknown, 4);
    key(late, 5);
    dedup_refill(d, half, now, 300000);  /* 300 s old: 300 s left */
    dedup_refill(d, fresh, now, 10000);  /* 10 s old: 590 s left */
    dedup_refill(d, old, now, 600000);   /* a whole window old: not kept */
    dedup_refill(d, unknown, now, 0);    /* age unknown: the whole window */
    dedup_refill(d, late, now, -5000);   /* a negative age counts as 0 */
    dedup_refill(d, fresh, now, 500000); /* already there: left as it is */
    CHECK_INT((long long)dedup_count(d), 4);
    CHECK_INT(seen(d, old, now), 0);
    CHECK_INT(seen(d, half, now + 299999), 1);
    CHECK_INT(seen(d, fresh, now + 589999), 1);
    CHECK_INT(seen(d, unknown, now + 599999), 1);
    CHECK_INT(seen(d, late, now + 599999), 1);
    /* half ran out first and fresh after it, whatever their order. */
    CHECK_INT(seen(d, half, now + 300000), 0);
    CHECK_INT(seen(d, half, now + 300001), 1);
    CHECK_INT(seen(d, fresh, now + 590000), 0);
    CHECK_INT(seen(d, unknown, now + 600000), 0);
    dedup_free(d);

    /* Out of time order: an older entry refilled after a younger one is
     * not kept longer than its age allows, and does not make the younger
     * one expire early. */
    CHECK_INT(dedup_new(600, 16 * DEDUP_ENTRY_BYTES, &d), 0);
    dedup_refill(d, fresh, now, 0);
    dedup_refill(d, old, now, 550000);
    CHECK_INT(seen(d, old, now + 50000), 0);
    CHECK_INT(seen(d, old, now + 50001), 1); /* recorded afresh at +50 s */
    CHECK_INT(seen(d, fresh, now + 599999), 1);
    CHECK_INT(seen(d, old, now + 649999), 1);
    CHECK_INT(seen(d, old, now + 650000), 0);
    dedup_free(d);
}

/* The budget is in bytes: max_bytes / DEDUP_ENTRY_BYTES keys (a part of
 * an entry buys nothing), at least one; past it the oldest goes first, and
 * the default 16 MiB holds 131,072 keys. */
static void test_budget(void)
{
    struct dedup *d = NULL;
    char k[65], first[65];

    CHECK_INT(dedup_new(600, 10 * DEDUP_ENTRY_BYTES + DEDUP_ENTRY_BYTES - 1, &d), 0);
    for (unsigned i = 0; i < 11; i++) {
        key(k, 100 + i);
        CHECK_INT(seen(d, k, 1000 + i), 0);
    }
    CHECK_INT((long long)dedup_count(d), 10);
    key(first, 100);
    CHECK_INT(seen(d, first, 2000), 0); /* evicted: not a duplicate any more */
    key(k, 110);
    CHECK_INT(seen(d, k, 2000), 1);
    dedup_free(d);
    CHECK_INT(dedup_new(600, 1, &d), 0);
    CHECK_INT(seen(d, first, 1000), 0);
    CHECK_INT(seen(d, first, 1001), 1);
    CHECK_INT((long long)dedup_count(d), 1);
    dedup_free(d);
    CHECK_INT(dedup_new(600, (size_t)16 << 20, &d), 0);
    for (unsigned i = 0; i < 131073; i++) {
        /* Spread over the buckets, as SHA-256 keys are. */
        snprintf(k, sizeof(k), "%016llx%048x", (unsigned long long)i * 0x9E3779B97F4A7C15ull, i);
        seen(d, k, 1000);
    }
    CHECK_INT((long long)dedup_count(d), 131072);
    dedup_free(d);
}

/* A duplicate learns who recorded its key while that one has not
 * settled (its alert not yet durable), and nobody once it has; only the
 * recorder can settle the key. */
static void test_owner(void)
{
    struct dedup *d = NULL;
    const void *owner = NULL;
    int first, other;
    char a[65];

    key(a, 7);
    CHECK_INT(dedup_new(600, 4 * DEDUP_ENTRY_BYTES, &d), 0);
    CHECK_INT(dedup_seen(d, a, 1000, &first, &owner), 0);
    CHECK_INT(dedup_seen(d, a, 1001, &other, &owner), 1);
    CHECK(owner == &first);
    dedup_settled(d, a, &other); /* not the recorder: no change */
    CHECK_INT(dedup_seen(d, a, 1002, &other, &owner), 1);
    CHECK(owner == &first);
    dedup_settled(d, a, &first);
    CHECK_INT(dedup_seen(d, a, 1003, &other, &owner), 1);
    CHECK(owner == NULL);
    dedup_free(d);
}

int main(void)
{
    test_owner();
    test_window();
    test_budget();
    test_refill();
    return unit_report("test_dedup");
}
