/* Cool-downs (cooldown.h): open addressing over COOLDOWN_PROBE slots. An
 * empty slot has until 0 (a cool-down always ends after the epoch). */
#include "cooldown.h"

#include <stdlib.h>

#include "errors.h"

struct cooldown_slot {
    uint64_t key;
    int64_t until_ms; /* 0: empty */
};

struct cooldown {
    struct cooldown_slot slots[COOLDOWN_ENTRIES];
};

_Static_assert((COOLDOWN_ENTRIES & (COOLDOWN_ENTRIES - 1)) == 0, "a power of two");

int cooldown_new(struct cooldown **out)
{
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? 0 : ERR_NOMEM;
}

void cooldown_free(struct cooldown *c)
{
    free(c);
}

int cooldown_take(struct cooldown *c, uint64_t key, int64_t now_ms, int64_t period_ms)
{
    /* The keys are SHA-256 bits already: their low bits spread well. */
    size_t home = (size_t)key & (COOLDOWN_ENTRIES - 1), pick = home;
    int64_t soonest = INT64_MAX;

    for (size_t i = 0; i < COOLDOWN_PROBE; i++) {
        struct cooldown_slot *s = &c->slots[(home + i) & (COOLDOWN_ENTRIES - 1)];

        if (s->until_ms != 0 && s->key == key) {
            if (s->until_ms > now_ms)
                return 0;
            s->until_ms = now_ms + period_ms;
            return 1;
        }
        /* Room: an empty or ended slot, else the one ending first. */
        if (s->until_ms <= now_ms) {
            if (soonest > INT64_MIN) {
                soonest = INT64_MIN;
                pick = (home + i) & (COOLDOWN_ENTRIES - 1);
            }
        } else if (s->until_ms < soonest) {
            soonest = s->until_ms;
            pick = (home + i) & (COOLDOWN_ENTRIES - 1);
        }
    }
    /* Not found: the key is in none of its slots. */
    c->slots[pick] = (struct cooldown_slot){key, now_ms + period_ms};
    return 1;
}
