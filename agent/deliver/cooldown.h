/* Cool-downs of policy actions (policy.h "cooldown_s"): the same action
 * for the same user is held back while its last run is younger than the
 * action's cool-down, so one burst of alerts pages the analysts once.
 *
 * A fixed table of COOLDOWN_ENTRIES (key, until) pairs made once: keys are
 * 64-bit hashes the caller makes; a key lives in one of COOLDOWN_PROBE
 * slots from its hash, and when they are all taken by cool-downs still
 * running, the one ending first makes room (a cool-down cut short sends
 * one page more, never one less). Kept in memory only: a restart forgets
 * them. Single-threaded (the delivery loop's). */
#ifndef RTR_COOLDOWN_H
#define RTR_COOLDOWN_H

#include <stddef.h>
#include <stdint.h>

#define COOLDOWN_ENTRIES 65536
#define COOLDOWN_PROBE   16

struct cooldown;

/* Returns 0 and *out (free with cooldown_free), or ERR_NOMEM. */
int cooldown_new(struct cooldown **out);
void cooldown_free(struct cooldown *c); /* NULL is fine */

/* Whether key may run at now_ms: 1 (it starts a cool-down of period_ms
 * from now), or 0 while an earlier one still runs (nothing changes). */
int cooldown_take(struct cooldown *c, uint64_t key, int64_t now_ms, int64_t period_ms);

#endif
