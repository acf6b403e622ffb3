/* The exact-duplicate window: an alert whose idempotency key was seen less
 * than dispatch.dedup_window_s ago is not sent again. Nothing else is
 * suppressed (SafeTitan counts repeats itself). Entries expire in the order
 * they came; at its memory budget (dispatch.dedup_max_bytes) the oldest
 * goes first (a key forgotten early only means a resend with the same
 * key, which the far side drops).
 *
 * Times are the monotonic clock's (core/clock.h now_ms()): a wall clock
 * stepped back would re-send repeats inside the window, one stepped
 * forward would empty it. Across a restart the spool says how old each
 * entry is (dedup_refill). Single-threaded. */
#ifndef RTR_DEDUP_H
#define RTR_DEDUP_H

#include <stddef.h>
#include <stdint.h>

struct dedup;

/* What one remembered key costs: its entry, the allocator's header and its
 * share of the bucket table. */
#define DEDUP_ENTRY_BYTES 128

/* Remembers at most max_bytes / DEDUP_ENTRY_BYTES keys (at least one):
 * when that many are held, the oldest is dropped for the new one (its
 * repeat, inside the window, would then be sent again). Returns 0 and
 * *out (free with dedup_free), or ERR_NOMEM. window_s 0: nothing is ever
 * a duplicate. */
int dedup_new(int window_s, size_t max_bytes, struct dedup **out);

/* key: the hex idempotency key (decision.h, 64 characters). now: now_ms(),
 * never less than in the call before. Returns 1 when the same key came
 * within the window before now (a duplicate: nothing recorded; *owner is
 * the pending of its first sighting while that one has not settled, else
 * NULL), else records it with pending (its owner until dedup_settled) and
 * returns 0 (also when out of memory: better a resend). */
int dedup_seen(struct dedup *d, const char *key, int64_t now, const void *pending,
               const void **owner);

/* pending, which recorded key, has settled (its alert is durable, or will
 * never be): duplicates of key have no owner to wait for from now on. */
void dedup_settled(struct dedup *d, const char *key, const void *pending);

/* At start, for each alert the spool holds: key was first seen age_ms
 * before now (now_ms()). It stays for what is left of the window: an age
 * under 0 or unknown (pass 0) keeps it the whole window, one of a window
 * or more is not recorded. A key already there is left as it is. Entries
 * keep the order they are refilled in; one out of time order expires when
 * those before it do (later, never earlier). */
void dedup_refill(struct dedup *d, const char *key, int64_t now, int64_t age_ms);

size_t dedup_count(const struct dedup *d);

void dedup_free(struct dedup *d); /* NULL is fine */

#endif
