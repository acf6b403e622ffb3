/* Correlation counts for response policies: how many alerts came for one key
 * (a user, a host, a user and rule: the caller hashes the key's text to 64
 * bits, e.g. the first 8 bytes of its SHA-256) within the last W seconds, so
 * that "N or more within W minutes" can raise an alert's priority.
 *
 * Memory: one table allocated at creation and never grown; nothing is
 * allocated afterwards. An entry costs CORRELATE_ENTRY_BYTES: its key, the
 * index of its newest bucket and CORRELATE_BUCKETS counts (uint16, saturating
 * at 65535 per bucket) in a ring. The capacity is the largest power of two of
 * entries whose table fits max_bytes (plus a fixed header of about a hundred
 * bytes outside the cap).
 *
 * Time: at_s / now_s are unix seconds, chosen by the caller. A bucket is
 * width = ceil(longest_window_s / (CORRELATE_BUCKETS - 1)) seconds (at least
 * 1) and bucket b holds the seconds [b * width, (b + 1) * width), so the ring
 * always covers the longest window whichever second it starts at. A count
 * over window_s at now sums the buckets that overlap (now - window_s, now]:
 * - rounding: the oldest bucket is counted whole, so a count may include
 *   alerts up to width - 1 seconds older than the window (never fewer than
 *   those inside it); with longest_window_s <= CORRELATE_BUCKETS - 1 the
 *   width is 1 s and counts are exact;
 * - the newest bucket is also whole: alerts added with a time later than now
 *   but in now's bucket count (only after a clock step backwards).
 * A window_s over longest_window_s counts the longest window; one <= 0
 * counts nothing (0). Times are clamped to +-2^61 s.
 *
 * Out-of-order times (the rebuild at start, from the spool's records in any
 * order; a clock stepped back): an add whose bucket is older than the key's
 * newest goes into that older bucket while it is still in the key's ring
 * (within about the longest window of the key's newest alert), else it is
 * dropped (counted in stats.dropped). An add later than the newest advances
 * the ring and zeroes the buckets it skips (all of them after a jump of the
 * whole ring: a time far in the future empties the key, nothing else). Note
 * that after a key's clock jumps forward, adds at the old times are dropped
 * for that key until they are within the ring again: a caller that wants
 * counting to go on across a large step back passes max(now, last time).
 *
 * Eviction: a key's entry lies within CORRELATE_PROBE slots of its hash
 * (mixed with a random odd multiplier and offset drawn at creation, so that
 * which keys collide cannot be predicted from the keys). An add for a new key
 * takes a slot in that range that is empty or whose buckets are all older
 * than the longest window before the add's time (reuse, not counted), else
 * evicts the entry whose newest alert is oldest (stats.evictions) unless that
 * alert is newer than the one being added, which is then dropped instead
 * (a rebuild never pushes out newer keys for older ones). Evicting loses
 * that key's counts: it starts again from 0.
 *
 * Thread safety: every call takes one internal mutex (an add or a count is a
 * few hundred nanoseconds: at most CORRELATE_PROBE key compares and
 * CORRELATE_BUCKETS additions), so any thread may call any function;
 * correlate_free only once nobody else uses the table. */
#ifndef RTR_CORRELATE_H
#define RTR_CORRELATE_H

#include <stddef.h>
#include <stdint.h>

#define CORRELATE_BUCKETS     64  /* the ring of one entry; a power of two */
#define CORRELATE_PROBE       16  /* slots a key may lie in, from its hash */
#define CORRELATE_ENTRY_BYTES 144 /* key 8, newest bucket 8, counts 2 * CORRELATE_BUCKETS */
#define CORRELATE_WINDOW_MAX  ((int64_t)1 << 32) /* longest_window_s at most (136 years) */

struct correlate;

struct correlate_stats {
    size_t keys;        /* entries holding a key (some may have expired, free for reuse) */
    size_t capacity;    /* entries in the table */
    uint64_t evictions; /* keys pushed out with counts still inside the longest window */
    uint64_t dropped;   /* adds not counted: older than their key's ring, or no room */
};

/* A table of at most max_bytes (at least CORRELATE_ENTRY_BYTES) for windows
 * up to longest_window_s (1 .. CORRELATE_WINDOW_MAX), the hash multiplier
 * from getrandom(2). Returns 0 and *out (free with correlate_free), else
 * *out = NULL and ERR_INVALID (bad arguments), ERR_NOMEM or ERR_IO
 * (getrandom failed; errno says why). */
int correlate_new(size_t max_bytes, int64_t longest_window_s, struct correlate **out);

/* The same with the hash multiplier derived from seed (tests: repeatable
 * slots). */
int correlate_new_seeded(size_t max_bytes, int64_t longest_window_s, uint64_t seed,
                         struct correlate **out);

void correlate_free(struct correlate *c); /* NULL is fine */

/* Counts one alert for key at at_s and returns the count over window_s
 * ending at at_s, this alert included (0 when it was dropped and nothing
 * else is in the window), so that one call both adds and reads. */
uint32_t correlate_add(struct correlate *c, uint64_t key, int64_t at_s, int64_t window_s);

/* The count for key over window_s ending at now_s, without adding (0 for a
 * key never seen or evicted). Any window up to the longest may be asked of
 * the same key (several policies). */
uint32_t correlate_count(struct correlate *c, uint64_t key, int64_t now_s, int64_t window_s);

/* For /metrics and tests: a snapshot of the counters. */
void correlate_stats(struct correlate *c, struct correlate_stats *out);

#endif
