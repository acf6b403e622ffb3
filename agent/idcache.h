/* The identity cache in front of every resolver: identifier (compared
 * without ASCII case) -> email, or -> "not found" for a shorter time, with a
 * hard entry cap (least recently used entries go first). Single-threaded:
 * one per identity instance. Time is passed in (seconds on a monotonic
 * clock) so tests can move it. */
#ifndef RTR_IDCACHE_H
#define RTR_IDCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "str.h"

struct idcache;

enum idcache_result {
    IDCACHE_MISS,
    IDCACHE_FOUND,     /* *email set */
    IDCACHE_NOT_FOUND, /* a cached negative answer */
};

/* ttl_s: positive entries; negative_ttl_s: "not found" entries (0 = never
 * cached); max_entries >= 1. Returns 0 and *out, ERR_NOMEM, or ERR_INVALID
 * (a negative TTL, max_entries 0). Free with idcache_free. */
int idcache_new(int ttl_s, int negative_ttl_s, size_t max_entries, struct idcache **out);
void idcache_free(struct idcache *c); /* NULL is fine */

/* *email (when IDCACHE_FOUND) is valid until the next call on c. */
enum idcache_result idcache_get(struct idcache *c, struct str id, int64_t now, const char **email);

/* email NULL records "not found". Returns 0 or ERR_NOMEM (nothing cached). */
int idcache_put(struct idcache *c, struct str id, const char *email, int64_t now);

void idcache_clear(struct idcache *c);
size_t idcache_count(const struct idcache *c);

#endif
