/* Identity resolution: user identifier -> email, through the cache and then
 * the resolvers identity.order names, in that order (the static directory,
 * LDAP (Active Directory) and Microsoft Graph; resolver.h says what a
 * resolver is). Asynchronous: a request completes through a callback, which
 * a resolver that answers at once (the cache, the static directory) calls
 * before identity_resolve returns, and a network resolver (LDAP, Graph)
 * calls later from the thread's event loop. A lookup of an identifier
 * already being resolved joins that request (one directory search for a
 * burst of alerts about one user). One identity per thread that resolves
 * (the delivery thread in `run`; `replay`); not thread-safe. */
#ifndef RTR_IDENTITY_H
#define RTR_IDENTITY_H

#include <stddef.h>

#include <event2/event.h>

#include "core/config.h"
#include "core/stats.h"
#include "core/userid.h"
#include "resolver.h" /* enum identity_status, identity_cb, IDENTITY_MAX_ID */
#include "str.h"

struct identity;

struct graph;
struct http;

/* Builds the resolvers cfg names, loading the static directory (errors
 * logged as directory_load does) and reading Graph's client secret and
 * the LDAP bind password. None
 * at all is allowed, with a warning: every lookup is then
 * IDENTITY_NOT_FOUND. base and http: the event loop and the HTTPS engine
 * network resolvers run on (NULL when identity_uses_network says none is
 * configured). cfg must outlive id. stats may be NULL. Returns 0 and *out
 * (free with identity_free, before http_free), ERR_CONFIG / ERR_IO, or
 * ERR_NOMEM. */
int identity_new(const struct identity_config *cfg, struct event_base *base, struct http *http,
                 struct stats *stats, struct identity **out);

/* Nonzero when identity.order names a network resolver (LDAP, Microsoft
 * Graph): the caller then runs an event loop and an HTTPS engine for it
 * (LDAP needs only the loop). */
int identity_uses_network(const struct identity_config *cfg);

/* The Microsoft Graph client of the graph resolver (graph.h: a policy's
 * containment actions use its token), or NULL when identity.order names
 * none. Owned by id. */
struct graph *identity_graph(struct identity *id);

/* Frees id; requests still in flight complete first with IDENTITY_ERROR
 * ("identity: shutting down"), and an identity_resolve their callbacks make
 * fails at once the same way. NULL is fine. */
void identity_free(struct identity *id);

/* Resolves user (copied: the caller's buffer may go at once). kind
 * USER_KIND_AUTO is detected (userid_detect); the cache keeps answers per
 * resolved kind. An empty user, or one longer than IDENTITY_MAX_ID bytes,
 * is IDENTITY_NOT_FOUND ("identity: empty identifier", "identity:
 * identifier too long"). A user of the same kind already being resolved
 * (compared as the cache compares) waits for that answer. With
 * IDENTITY_FOUND, detail names what found the email (resolver.h). cb runs
 * exactly once; it may call identity_resolve again, but must not free
 * id. */
void identity_resolve(struct identity *id, struct str user, enum user_kind kind, identity_cb cb,
                      void *arg);

/* Re-reads the static directory from file (SIGHUP: the configuration's
 * identity.static.file now; NULL: the file in use). On success swaps it in,
 * keeps a copy of file as the file in use and clears the cache; on failure
 * keeps the directory and the file in use (errors logged). Without a static
 * resolver (identity.order) there is nothing to reload: returns 0. Returns
 * 0, the load error or ERR_NOMEM. */
int identity_reload(struct identity *id, const char *file);

/* Warns (naming config_path) when mappings can decide but no resolver is
 * configured: every decision would be unresolved-user. run, replay and check
 * call it once the mappings have loaded. */
void identity_warn_unresolvable(const struct identity_config *cfg, size_t n_mappings,
                                const char *config_path);

#endif
