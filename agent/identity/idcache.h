/* The identity cache in front of every resolver: (kind, identifier) ->
 * email, or -> "not found" for a shorter time. Identifiers compare as the
 * directory's do (directory_id_equal); the kind is part of the key, since a
 * resolver asks a different question per kind. Resolved emails and "not
 * found" answers each have their own cap and least-recently-used list, so a
 * flood of made-up users only ever evicts other "not found" answers, never
 * an email. Buckets are hashed under a random key per cache (SipHash), so a
 * sender cannot pick identifiers that collide. Single-threaded: one per
 * identity instance. Time is passed in (seconds on a monotonic clock) so
 * tests can move it. */
#ifndef RTR_IDCACHE_H
#define RTR_IDCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "str.h"
#include "core/userid.h"

struct idcache;

enum idcache_result {
    IDCACHE_MISS,
    IDCACHE_FOUND,     /* *email set */
    IDCACHE_NOT_FOUND, /* a cached negative answer */
};

/* ttl_s: resolved emails; negative_ttl_s: "not found" answers (0 = never
 * cached); max_entries >= 1 resolved emails, and max_entries / 4 (at least
 * 1) "not found" answers besides. Returns 0 and *out, ERR_NOMEM, ERR_IO (no
 * random key: logged) or ERR_INVALID (a negative TTL, max_entries 0). Free
 * with idcache_free. */
int idcache_new(int ttl_s, int negative_ttl_s, size_t max_entries, struct idcache **out);
void idcache_free(struct idcache *c); /* NULL is fine */

/* *email (when IDCACHE_FOUND) is valid until the next call on c. kind is
 * the resolved kind (userid_resolve_kind), compared exactly. */
enum idcache_result idcache_get(struct idcache *c, enum user_kind kind, struct str id, int64_t now,
                                const char **email);

/* email NULL records "not found". Returns 0 or ERR_NOMEM (nothing cached). */
int idcache_put(struct idcache *c, enum user_kind kind, struct str id, const char *email,
                int64_t now);

void idcache_clear(struct idcache *c);
size_t idcache_count(const struct idcache *c); /* both kinds of answer */

#endif
