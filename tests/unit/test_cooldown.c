/* Cool-downs of policy actions (cooldown.h): a key is held back while its
 * cool-down runs and may run again once it ended; keys are independent;
 * more keys than the probe range of one home slot push out the one ending
 * first (never a loop, never a refusal of a new key); key 0 is an ordinary
 * key, not an empty slot. */
#include "deliver/cooldown.h"
#include "errors.h"
#include "unit.h"

/* Keys with the same home slot: the table index is the key's low bits. */
#define SAME_HOME(i) (((uint64_t)(i) << 32) | 7)

static void test_take_hold_expiry(void)
{
    struct cooldown *c = NULL;

    CHECK_INT(cooldown_new(&c), 0);
    if (c == NULL)
        return;
    CHECK_INT(cooldown_take(c, 42, 1000, 500), 1);
    CHECK_INT(cooldown_take(c, 42, 1000, 500), 0);
    CHECK_INT(cooldown_take(c, 42, 1499, 500), 0);
    /* another key is independent */
    CHECK_INT(cooldown_take(c, 43, 1001, 500), 1);
    /* a refusal changes nothing: still ends at 1500 */
    CHECK_INT(cooldown_take(c, 42, 1499, 100000), 0);
    CHECK_INT(cooldown_take(c, 42, 1500, 500), 1);
    /* that take started a new one, to 2000 */
    CHECK_INT(cooldown_take(c, 42, 1999, 500), 0);
    CHECK_INT(cooldown_take(c, 42, 2000, 10), 1);
    CHECK_INT(cooldown_take(c, 42, 2009, 10), 0);
    CHECK_INT(cooldown_take(c, 42, 2010, 10), 1);
    /* key 0 is a key like any other (an empty slot is until 0, not key 0) */
    CHECK_INT(cooldown_take(c, 0, 5000, 100), 1);
    CHECK_INT(cooldown_take(c, 0, 5050, 100), 0);
    CHECK_INT(cooldown_take(c, 0, 5100, 100), 1);
    cooldown_free(c);
    cooldown_free(NULL);
}

/* COOLDOWN_PROBE keys of one home fill its range; one more pushes out the
 * one that ends first, and only it. */
static void test_full_range(void)
{
    struct cooldown *c = NULL;

    CHECK_INT(cooldown_new(&c), 0);
    if (c == NULL)
        return;
    /* key i ends at 10000 + 100 * i: key 0 first */
    for (int i = 0; i < COOLDOWN_PROBE; i++)
        CHECK_INT(cooldown_take(c, SAME_HOME(i), 0, 10000 + 100 * (i == 0 ? 5 : i)), 1);
    /* all held */
    for (int i = 0; i < COOLDOWN_PROBE; i++)
        CHECK_INT(cooldown_take(c, SAME_HOME(i), 1, 1), 0);
    /* a new key runs, pushing out key 1 (ends at 10100, the soonest) */
    CHECK_INT(cooldown_take(c, SAME_HOME(100), 1, 50000), 1);
    CHECK_INT(cooldown_take(c, SAME_HOME(100), 2, 1), 0);
    CHECK_INT(cooldown_take(c, SAME_HOME(1), 2, 1), 1);
    /* ... which pushed out the next soonest (key 2, 10200); the others
     * still held */
    CHECK_INT(cooldown_take(c, SAME_HOME(0), 3, 1), 0);
    for (int i = 3; i < COOLDOWN_PROBE; i++)
        CHECK_INT(cooldown_take(c, SAME_HOME(i), 3, 1), 0);
    CHECK_INT(cooldown_take(c, SAME_HOME(2), 3, 1), 1);
    /* many more keys than the range, each ending later than the one
     * before: each runs at once (no loop, no refusal), pushing out the
     * one ending first (a check of a held key changes nothing) */
    for (int i = 1000; i < 1000 + 10 * COOLDOWN_PROBE; i++)
        CHECK_INT(cooldown_take(c, SAME_HOME(i), 10, 1000000 + i), 1);
    /* the range now holds the last COOLDOWN_PROBE of them */
    for (int i = 1000 + 9 * COOLDOWN_PROBE; i < 1000 + 10 * COOLDOWN_PROBE; i++)
        CHECK_INT(cooldown_take(c, SAME_HOME(i), 11, 1), 0);
    /* an ended slot is reused before a running one is pushed out */
    CHECK_INT(cooldown_take(c, SAME_HOME(1), 2000000, 10), 1);
    cooldown_free(c);
}

/* Keys whose probe ranges wrap past the table's end. */
static void test_wrap(void)
{
    struct cooldown *c = NULL;
    uint64_t last = COOLDOWN_ENTRIES - 1;

    CHECK_INT(cooldown_new(&c), 0);
    if (c == NULL)
        return;
    for (uint64_t i = 0; i < COOLDOWN_PROBE; i++)
        CHECK_INT(cooldown_take(c, (i << 32) | last, 0, 100), 1);
    for (uint64_t i = 0; i < COOLDOWN_PROBE; i++)
        CHECK_INT(cooldown_take(c, (i << 32) | last, 50, 100), 0);
    /* slot 0..14 were used by the wrap: a key at home 0 still finds room
     * (slot 15 and on) */
    CHECK_INT(cooldown_take(c, 1ULL << 40, 50, 100), 1);
    CHECK_INT(cooldown_take(c, 1ULL << 40, 60, 100), 0);
    for (uint64_t i = 0; i < COOLDOWN_PROBE; i++)
        CHECK_INT(cooldown_take(c, (i << 32) | last, 60, 100), 0);
    cooldown_free(c);
}

int main(void)
{
    test_take_hold_expiry();
    test_full_range();
    test_wrap();
    return unit_report("test_cooldown");
}
