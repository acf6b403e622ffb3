/* Identity resolution: the cache, then each resolver of identity.order in
 * turn. A resolver is a small function table (resolver.h): the static
 * directory, LDAP (Active Directory) and Microsoft Graph, each completing a
 * request through identity_on_answer, which moves it to the next resolver
 * or finishes it. Resolvers that answer at once complete inside their
 * resolve call; the recursion is as deep as identity.order is long.
 *
 * A lookup of an identifier already in flight (same kind, compared as the
 * cache compares) joins that request instead of asking the resolvers
 * again: a burst of alerts about one user costs one directory search. The
 * requests in flight are found through IDENTITY_BUCKETS hash chains keyed
 * as the cache's (SipHash under a random key), so a sender cannot make
 * them collide. */
#include "identity.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "directory.h"
#include "errors.h"
#include "graph.h"
#include "idcache.h"
#include "ldapdir.h"
#include "core/log.h"
#include "core/clock.h"

/* Hash chains of the requests in flight: a power of two. */
#define IDENTITY_BUCKETS 1024

/* A caller that joined a request in flight for the same identifier. */
struct identity_waiter {
    struct identity_waiter *next;
    identity_cb cb;
    void *arg;
};

/* One lookup that missed the cache. Owned by the identity from
 * identity_resolve until it finishes; resolvers only borrow it. */
struct identity_request {
    struct identity_request *prev, *next; /* the identity's in-flight list */
    struct identity_request *chain;       /* next in its bucket */
    struct identity *id;
    struct str user; /* points at text */
    enum user_kind kind;
    uint64_t hash;
    identity_cb cb;
    void *arg;
    struct identity_waiter *waiters, **waiters_end; /* joined later, answered after cb, in order */
    size_t pos;                                     /* the resolver it is at, in identity.order */
    char text[];
};

struct identity {
    struct resolver **resolvers; /* in identity.order */
    size_t n_resolvers;
    struct idcache *cache;
    struct directory *dir; /* the static resolver's, swapped by identity_reload */
    struct graph *graph;   /* the Graph resolver's (identity_graph), or NULL */
    char *static_file;
    struct stats *stats;
    struct identity_request *in_flight;
    struct identity_request *buckets[IDENTITY_BUCKETS]; /* in_flight, by hash */
    struct directory_hash_key key;
    int closing; /* identity_free has begun: new requests fail at once */
};

static void identity_count(struct identity *id, enum stats_counter c)
{
    if (id->stats != NULL)
        stats_add(id->stats, c, 1);
}

/* The bucket hash of (kind, user), as the identity cache's (idcache.c):
 * the same text asked as another kind is another question. */
static uint64_t identity_hash(const struct identity *id, enum user_kind kind, struct str user)
{
    return directory_id_hash(&id->key, user) ^ ((uint64_t)kind * 0x9e3779b97f4a7c15ULL);
}

static struct identity_request **identity_bucket(struct identity *id, uint64_t hash)
{
    return &id->buckets[hash & (IDENTITY_BUCKETS - 1)];
}

/* The request in flight for (kind, user), or NULL. */
static struct identity_request *identity_in_flight(struct identity *id, enum user_kind kind,
                                                   struct str user, uint64_t hash)
{
    for (struct identity_request *r = *identity_bucket(id, hash); r != NULL; r = r->chain) {
        if (r->hash == hash && r->kind == kind && directory_id_equal(r->user, user))
            return r;
    }
    return NULL;
}

static void identity_count_answer(struct identity *id, enum identity_status status)
{
    if (status == IDENTITY_NOT_FOUND)
        identity_count(id, STAT_identity_not_found);
    else if (status == IDENTITY_ERROR)
        identity_count(id, STAT_identity_errors);
}

/* Unlinks req (so that what its callers ask now starts afresh), reports
 * status to its caller and to each caller that joined it, and frees it. */
static void identity_finish(struct identity_request *req, enum identity_status status,
                            const char *email, const char *detail)
{
    struct identity *id = req->id;
    struct identity_request **link = identity_bucket(id, req->hash);
    struct identity_waiter *w = req->waiters, *next;

    if (req->prev != NULL)
        req->prev->next = req->next;
    else
        id->in_flight = req->next;
    if (req->next != NULL)
        req->next->prev = req->prev;
    while (*link != req)
        link = &(*link)->chain;
    *link = req->chain;
    identity_count_answer(id, status);
    req->cb(req->arg, status, email, detail);
    for (; w != NULL; w = next) {
        next = w->next;
        identity_count_answer(id, status);
        w->cb(w->arg, status, email, detail);
        free(w);
    }
    free(req);
}

static void identity_on_answer(void *arg, enum identity_status status, const char *email,
                               const char *detail);

/* Hands req to the resolver at req->pos, or, past the last one, records and
 * reports "not found" (detail: why the last one said no). */
static void identity_next(struct identity_request *req, const char *detail)
{
    struct identity *id = req->id;
    struct resolver *r;

    if (req->pos == id->n_resolvers) {
        /* Not cached means asked again next time: nothing is lost. */
        (void)idcache_put(id->cache, req->kind, req->user, NULL, now_ms() / 1000);
        identity_finish(req, IDENTITY_NOT_FOUND, NULL, detail);
        return;
    }
    r = id->resolvers[req->pos];
    r->ops->resolve(r, req->kind, req->user, identity_on_answer, req);
}

/* How a resolver answers: FOUND (email set) and ERROR finish the request;
 * NOT_FOUND moves it to the next resolver. detail names the resolver
 * ("static: not listed"). */
static void identity_on_answer(void *arg, enum identity_status status, const char *email,
                               const char *detail)
{
    struct identity_request *req = arg;

    switch (status) {
    case IDENTITY_FOUND:
        (void)idcache_put(req->id->cache, req->kind, req->user, email, now_ms() / 1000);
        /* The resolver's name, static text, whatever its detail said. */
        identity_finish(req, IDENTITY_FOUND, email, req->id->resolvers[req->pos]->ops->name);
        break;
    case IDENTITY_NOT_FOUND:
        req->pos++;
        identity_next(req, detail);
        break;
    case IDENTITY_ERROR:
        identity_finish(req, IDENTITY_ERROR, NULL, detail);
        break;
    }
}

/* ---- the static directory ---- */

struct static_resolver {
    struct resolver base;
    struct identity *id; /* id->dir: identity_reload swaps it */
};

static void static_resolve(struct resolver *self, enum user_kind kind, struct str user,
                           identity_cb cb, void *arg)
{
    struct static_resolver *r = (struct static_resolver *)self;
    const char *email = directory_lookup(r->id->dir, user);

    (void)kind; /* the directory lists every kind of identifier alike */
    if (email != NULL)
        cb(arg, IDENTITY_FOUND, email, "static");
    else
        cb(arg, IDENTITY_NOT_FOUND, NULL, "static: not listed");
}

static void static_free(struct resolver *self)
{
    free(self);
}

static const struct resolver_ops static_ops = {"static", static_resolve, static_free};

/* Loads the directory the static resolver answers from. */
static int static_new(struct identity *id, const struct identity_config *cfg, struct resolver **out)
{
    struct static_resolver *r;
    int rc;

    if (cfg->static_dir.file == NULL) {
        log_error("identity.order: \"static\" is listed but identity.static.file is not set");
        return ERR_CONFIG;
    }
    id->static_file = strdup(cfg->static_dir.file);
    r = calloc(1, sizeof(*r));
    if (id->static_file == NULL || r == NULL) {
        free(r);
        return ERR_NOMEM;
    }
    rc = directory_load(id->static_file, &id->dir);
    if (rc != 0) {
        free(r);
        return rc;
    }
    log_info("identity: static directory %s: %zu identifiers", id->static_file,
             directory_count(id->dir));
    r->base.ops = &static_ops;
    r->id = id;
    *out = &r->base;
    return 0;
}

/* ---- Microsoft Graph ---- */

struct graph_resolver {
    struct resolver base;
    struct graph *graph;
};

static void graph_resolve(struct resolver *self, enum user_kind kind, struct str user,
                          identity_cb cb, void *arg)
{
    struct graph_resolver *g = (struct graph_resolver *)self;

    graph_lookup(g->graph, kind, user, cb, arg);
}

static void graph_resolver_free(struct resolver *self)
{
    struct graph_resolver *g = (struct graph_resolver *)self;

    graph_free(g->graph);
    free(g);
}

static const struct resolver_ops graph_ops = {"graph", graph_resolve, graph_resolver_free};

static int graph_resolver_new(struct identity *id, const struct identity_config *cfg,
                              struct event_base *base, struct http *http, struct resolver **out)
{
    struct graph_resolver *g = calloc(1, sizeof(*g));
    int rc;

    if (g == NULL)
        return ERR_NOMEM;
    rc = graph_new(&cfg->graph, base, http, id->stats, &g->graph);
    if (rc != 0) {
        free(g);
        return rc;
    }
    g->base.ops = &graph_ops;
    id->graph = g->graph;
    *out = &g->base;
    return 0;
}

/* ---- LDAP (Active Directory) ---- */

struct ldapdir_resolver {
    struct resolver base;
    struct ldapdir *dir;
};

static void ldapdir_resolver_resolve(struct resolver *self, enum user_kind kind, struct str user,
                                     identity_cb cb, void *arg)
{
    struct ldapdir_resolver *r = (struct ldapdir_resolver *)self;

    ldapdir_lookup(r->dir, kind, user, cb, arg);
}

static void ldapdir_resolver_free(struct resolver *self)
{
    struct ldapdir_resolver *r = (struct ldapdir_resolver *)self;

    ldapdir_free(r->dir);
    free(r);
}

static const struct resolver_ops ldapdir_resolver_ops = {"ldap", ldapdir_resolver_resolve,
                                                         ldapdir_resolver_free};

static int ldapdir_resolver_new(struct identity *id, const struct identity_config *cfg,
                                struct event_base *base, struct resolver **out)
{
    struct ldapdir_resolver *r = calloc(1, sizeof(*r));
    int rc;

    if (r == NULL)
        return ERR_NOMEM;
    rc = ldapdir_new(&cfg->ldap, base, id->stats, &r->dir);
    if (rc != 0) {
        free(r);
        return rc;
    }
    r->base.ops = &ldapdir_resolver_ops;
    *out = &r->base;
    return 0;
}

/* ---- the identity ---- */

static int identity_add_resolver(struct identity *id, const struct identity_config *cfg,
                                 struct event_base *base, struct http *http,
                                 enum identity_source src)
{
    struct resolver *r = NULL;
    int rc = ERR_CONFIG;

    switch (src) {
    case IDENTITY_STATIC:
        rc = static_new(id, cfg, &r);
        break;
    case IDENTITY_GRAPH:
        rc = graph_resolver_new(id, cfg, base, http, &r);
        break;
    case IDENTITY_LDAP:
        rc = ldapdir_resolver_new(id, cfg, base, &r);
        break;
    }
    if (rc == 0)
        id->resolvers[id->n_resolvers++] = r; /* transferred */
    return rc;
}

struct graph *identity_graph(struct identity *id)
{
    return id->graph;
}

int identity_uses_network(const struct identity_config *cfg)
{
    for (size_t i = 0; i < cfg->n_order; i++) {
        if (cfg->order[i] == IDENTITY_GRAPH || cfg->order[i] == IDENTITY_LDAP)
            return 1;
    }
    return 0;
}

int identity_new(const struct identity_config *cfg, struct event_base *base, struct http *http,
                 struct stats *stats, struct identity **out)
{
    struct identity *id;
    int rc = ERR_NOMEM;

    *out = NULL;
    id = calloc(1, sizeof(*id));
    if (id == NULL)
        return ERR_NOMEM;
    id->stats = stats;
    id->resolvers = calloc(cfg->n_order ? cfg->n_order : 1, sizeof(*id->resolvers));
    if (id->resolvers == NULL)
        goto out;
    rc = directory_hash_key_init(&id->key);
    if (rc == 0)
        rc = idcache_new(cfg->cache.ttl_s, cfg->cache.negative_ttl_s, cfg->cache.max_entries,
                         &id->cache);
    /* config_load lets each source appear at most once. */
    for (size_t i = 0; rc == 0 && i < cfg->n_order; i++)
        rc = identity_add_resolver(id, cfg, base, http, cfg->order[i]);
    if (rc == 0) {
        *out = id; /* transferred */
        id = NULL;
    }
out:
    identity_free(id);
    return rc;
}

void identity_free(struct identity *id)
{
    size_t n_resolvers;

    if (id == NULL)
        return;
    /* Callers hear of their requests while everything still exists; what
     * their callbacks ask now fails at once, before any resolver. */
    id->closing = 1;
    n_resolvers = id->n_resolvers;
    /* Each resolver first: it completes what it still holds (a network
     * resolver's lookups, as errors) while those requests exist; then
     * whatever is left. */
    for (size_t i = 0; i < n_resolvers; i++)
        id->resolvers[i]->ops->free(id->resolvers[i]);
    id->n_resolvers = 0;
    while (id->in_flight != NULL)
        identity_finish(id->in_flight, IDENTITY_ERROR, NULL, "identity: shutting down");
    free(id->resolvers);
    idcache_free(id->cache);
    directory_free(id->dir);
    free(id->static_file);
    free(id);
}

void identity_resolve(struct identity *id, struct str user, enum user_kind kind, identity_cb cb,
                      void *arg)
{
    struct identity_request *req;
    struct identity_waiter *w;
    const char *email = NULL;
    uint64_t hash;

    if (id->closing) {
        identity_count(id, STAT_identity_errors);
        cb(arg, IDENTITY_ERROR, NULL, "identity: shutting down");
        return;
    }
    /* replay hands over whatever a mapping captured: no directory holds
     * such a name, and the cache should not hold it either. */
    if (user.p == NULL || user.len == 0 || user.len > IDENTITY_MAX_ID) {
        identity_count(id, STAT_identity_not_found);
        cb(arg, IDENTITY_NOT_FOUND, NULL,
           user.len > IDENTITY_MAX_ID ? "identity: identifier too long"
                                      : "identity: empty identifier");
        return;
    }
    kind = userid_resolve_kind(kind, user);
    switch (idcache_get(id->cache, kind, user, now_ms() / 1000, &email)) {
    case IDCACHE_FOUND:
        identity_count(id, STAT_identity_cache_hits);
        cb(arg, IDENTITY_FOUND, email, "cache");
        return;
    case IDCACHE_NOT_FOUND:
        identity_count(id, STAT_identity_cache_hits);
        identity_count(id, STAT_identity_not_found);
        cb(arg, IDENTITY_NOT_FOUND, NULL, "cache: not found");
        return;
    case IDCACHE_MISS:
        break;
    }
    identity_count(id, STAT_identity_cache_misses);
    hash = identity_hash(id, kind, user);
    req = identity_in_flight(id, kind, user, hash);
    if (req != NULL) {
        w = malloc(sizeof(*w));
        if (w == NULL) {
            identity_count(id, STAT_identity_errors);
            cb(arg, IDENTITY_ERROR, NULL, "identity: out of memory");
            return;
        }
        *w = (struct identity_waiter){NULL, cb, arg};
        *req->waiters_end = w;
        req->waiters_end = &w->next;
        identity_count(id, STAT_identity_coalesced);
        return;
    }
    req = malloc(sizeof(*req) + user.len + 1);
    if (req == NULL) {
        identity_count(id, STAT_identity_errors);
        cb(arg, IDENTITY_ERROR, NULL, "identity: out of memory");
        return;
    }
    memcpy(req->text, user.p, user.len);
    req->text[user.len] = '\0';
    req->user = str_make(req->text, user.len);
    req->kind = kind;
    req->hash = hash;
    req->id = id;
    req->cb = cb;
    req->arg = arg;
    req->waiters = NULL;
    req->waiters_end = &req->waiters;
    req->pos = 0;
    req->chain = *identity_bucket(id, hash);
    *identity_bucket(id, hash) = req;
    req->prev = NULL;
    req->next = id->in_flight;
    if (id->in_flight != NULL)
        id->in_flight->prev = req;
    id->in_flight = req;
    identity_next(req, "identity: no resolver configured");
}

int identity_reload(struct identity *id, const char *file)
{
    struct directory *dir = NULL;
    char *path;
    int rc;

    if (id->static_file == NULL)
        return 0;
    path = strdup(file != NULL ? file : id->static_file);
    if (path == NULL)
        return ERR_NOMEM;
    rc = directory_load(path, &dir);
    if (rc != 0) {
        log_error("static directory %s not loaded: the one loaded from %s stays in use", path,
                  id->static_file);
        free(path);
        return rc;
    }
    directory_free(id->dir);
    id->dir = dir; /* transferred */
    free(id->static_file);
    id->static_file = path; /* transferred */
    idcache_clear(id->cache);
    log_info("static directory %s reloaded: %zu identifiers", path, directory_count(dir));
    return 0;
}

void identity_warn_unresolvable(const struct identity_config *cfg, size_t n_mappings,
                                const char *config_path)
{
    /* Allowed (a first run may only watch the tap), but with mappings every
     * decision would end as unresolved-user. */
    if (n_mappings > 0 && cfg->n_order == 0)
        log_warning("%s: identity: no resolver is configured (identity.static.file): every "
                    "decision will be unresolved-user",
                    config_path);
}
