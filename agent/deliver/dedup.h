/* The exact-duplicate window: an alert whose idempotency key was seen less
 * than dispatch.dedup_window_s ago is not sent again. Nothing else is
 * suppressed (SafeTitan counts repeats itself). Entries expire in the order
 * they came; at max_entries the oldest goes first (a key forgotten early
 * only means a resend with the same key, which the far side drops).
 * Single-threaded. */
#ifndef RTR_DEDUP_H
#define RTR_DEDUP_H

#include <stddef.h>
#include <stdint.h>

struct dedup;

/* Returns 0 and *out (free with dedup_free), or ERR_NOMEM. window_s 0:
 * nothing is ever a duplicate. */
int dedup_new(int window_s, size_t max_entries, struct dedup **out);

/* key: the hex idempotency key (decision.h, 64 characters). when_s: the
 * alert's receipt time (Unix seconds). Returns 1 when the same key came
 * within the window before when_s (a duplicate: nothing recorded), else
 * records it and returns 0 (also when out of memory: better a resend). */
int dedup_check(struct dedup *d, const char *key, int64_t when_s);

size_t dedup_count(const struct dedup *d);

void dedup_free(struct dedup *d); /* NULL is fine */

#endif
