/* What a resolver is: a small function table (as redis connection.h does
 * for transports) that answers user identifier -> email through a
 * completion callback. identity.c drives the resolvers of identity.order
 * through it; a resolver (graph.h, the static directory) needs only this
 * header, never identity.h, so the identity includes its resolvers and not
 * the other way round. */
#ifndef RTR_RESOLVER_H
#define RTR_RESOLVER_H

#include "core/userid.h"
#include "str.h"

enum identity_status {
    IDENTITY_FOUND,     /* email set */
    IDENTITY_NOT_FOUND, /* every resolver said no (cached for negative_ttl_s) */
    IDENTITY_ERROR,     /* a resolver failed (network, throttling): not cached */
};

/* email and detail (for logs: "static: not listed", "graph: HTTP 503") are
 * valid during the call. identity_resolve's callers get, with
 * IDENTITY_FOUND, the name of what found the email as detail: "cache" or
 * the resolver's ops->name, static text that stays valid (the audit line
 * names it). */
typedef void (*identity_cb)(void *arg, enum identity_status status, const char *email,
                            const char *detail);

/* Longest identifier resolved: longer ones (and empty ones) complete at
 * once as IDENTITY_NOT_FOUND without reaching the cache or a resolver. No
 * directory holds such a name (directory.h caps its own at the same). */
#define IDENTITY_MAX_ID 1024

struct resolver;

struct resolver_ops {
    const char *name;
    /* Starts resolving user (valid until cb has run) as kind (never
     * USER_KIND_AUTO) and calls cb exactly once, before returning or later
     * from the event loop. IDENTITY_NOT_FOUND hands the request on to the
     * next resolver; detail starts with the resolver's name. */
    void (*resolve)(struct resolver *self, enum user_kind kind, struct str user, identity_cb cb,
                    void *arg);
    /* Frees self, first completing (as IDENTITY_ERROR) every request it
     * still holds: identity_free calls it while those requests exist. */
    void (*free)(struct resolver *self);
};

/* Embedded first in each resolver's own struct. */
struct resolver {
    const struct resolver_ops *ops;
};

#endif
