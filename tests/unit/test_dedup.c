/* The exact-duplicate window: same key inside the window is a duplicate,
 * at the window's end it is not; other keys never are; entries expire and
 * the oldest are evicted at the cap; a window of 0 suppresses nothing. */
#include <stdio.h>
#include <string.h>

#include "deliver/dedup.h"
#include "unit.h"

static void key(char out[65], unsigned n)
{
    /* Distinct keys that share their first 16 digits too (one bucket). */
    snprintf(out, 65, "%016x%048x", n % 3, n);
}

int main(void)
{
    struct dedup *d = NULL;
    char a[65], b[65];

    CHECK_INT(dedup_new(600, 4, &d), 0);
    key(a, 1);
    key(b, 4);
    CHECK_INT(dedup_check(d, a, 1000), 0);
    CHECK_INT(dedup_check(d, a, 1000), 1);
    CHECK_INT(dedup_check(d, a, 1599), 1);
    CHECK_INT(dedup_check(d, b, 1001), 0); /* same bucket, another key */
    CHECK_INT(dedup_check(d, a, 1600), 0); /* the window ended: sent, and recorded again */
    CHECK_INT(dedup_check(d, a, 1700), 1);
    CHECK_INT(dedup_check(d, "short", 1700), 0);
    CHECK_INT(dedup_check(d, "short", 1700), 0);
    /* Expiry: b (1001) is gone by 1601. */
    CHECK_INT(dedup_check(d, b, 1650), 0);
    CHECK_INT((long long)dedup_count(d), 2);
    /* The cap: 4 entries; a fifth evicts the oldest (a at 1600). */
    for (unsigned i = 10; i < 13; i++) {
        char k[65];
        key(k, i);
        CHECK_INT(dedup_check(d, k, 1700), 0);
    }
    CHECK_INT((long long)dedup_count(d), 4);
    CHECK_INT(dedup_check(d, a, 1701), 0);
    dedup_free(d);

    CHECK_INT(dedup_new(0, 4, &d), 0);
    CHECK_INT(dedup_check(d, a, 1), 0);
    CHECK_INT(dedup_check(d, a, 1), 0);
    dedup_free(d);
    return unit_report("test_dedup");
}
