/* The Microsoft Graph resolver: user identifier -> email through Entra ID,
 * fully asynchronous on the shared HTTPS engine (http.h), so on the
 * delivery thread's loop.
 *
 * Token: OAuth2 client credentials, POST
 * <authority_url>/<tenant_id>/oauth2/v2.0/token (client_id, scope
 * <graph_url>/.default, and the credential: the secret read from
 * client_secret_file, or a client assertion signed with client_key_file for
 * client_certificate_file, made anew for each request: graph_assertion.h);
 * cached and renewed
 * before it expires (at 90% of expires_in, at least a minute early); one
 * token request at a time, lookups wait for it. A 401 from Graph drops the
 * token and the lookup is tried once more with a new one.
 *
 * Lookups by kind (select only id and the configured attribute):
 *   upn, email  GET /v1.0/users/{id} (percent-encoded: a guest's "#EXT#" is
 *               "%23EXT%23"; an id starting with '$' as /users('{id}')),
 *               and when Graph says 404, $filter=mail eq '{id}' or
 *               proxyAddresses/any(p:p eq 'smtp:{id}') (email and upn both)
 *   sam         $filter=onPremisesSamAccountName eq '{name}' (DOMAIN\ cut)
 *               with ConsistencyLevel: eventual and $count=true
 *   sid         $filter=onPremisesSecurityIdentifier eq '{sid}', again with
 *               the advanced-query parameters when Graph answers 400
 *               Request_UnsupportedQuery
 *   guid        GET /v1.0/users/{guid}
 *   employee_id $filter=employeeId eq '{id}'
 * Single quotes are doubled inside literals; every query is
 * percent-encoded. A filter that matches no user, or a 404, is "not found";
 * so is one that matches several ("graph: 2 users match (ambiguous)"),
 * which no retry resolves, and so is a 400 (Graph refusing the identifier's
 * query); a user without the attribute is "not found" ("graph: user has no
 * mail").
 *
 * 429 and 503 are retried after Retry-After (capped at GRAPH_RETRY_CAP_S)
 * or a backoff, up to GRAPH_MAX_ATTEMPTS per lookup, then the lookup fails
 * (IDENTITY_ERROR: the caller retries the alert later); while throttled, no
 * request starts. A failed token request fails the lookups waiting for it
 * ("graph: token request failed: ...") and is not repeated before a backoff
 * (exponential with full jitter, 1 s doubling to 60 s, at least the
 * answer's Retry-After up to GRAPH_RETRY_CAP_S; reset by a success);
 * lookups that come meanwhile wait for that next attempt. At most
 * graph.max_concurrent requests are in flight; the rest queue. Concurrent
 * lookups of the same kind and identifier (compared as the identity cache
 * compares them: case folded) share one request (identity.c already lets
 * only one of each out: this is for graph's own callers, check --probe and
 * the tests, and keeps the contract whoever calls); at most GRAPH_MAX_PENDING
 * distinct ones are unfinished at a time, and a lookup of yet another one
 * fails at once (IDENTITY_ERROR, "graph: too many lookups pending"), so its
 * alert is retried on the delivery side's backoff instead of queueing here
 * without bound. An identifier not valid for its kind is "not found"
 * without a request ("graph: not a valid upn identifier"): a UPN or an
 * email that is not name@domain, its name without a control byte, blank,
 * '/', '\\' or '?' and its domain only letters, digits, '-', '.' and
 * UTF-8; a GUID or a SID not shaped as userid_detect knows them; a
 * sAMAccountName or an employee id holding a control byte. So "." and
 * ".." never become a path. Malformed or wrongly typed JSON, a body over
 * GRAPH_MAX_BODY, a timeout or a TLS failure is an error naming what went
 * wrong, never the secret, an assertion or the token.
 *
 * Containment (graph_contain: a response policy's graph action) goes
 * through the same queue, token, slots and throttling as the lookups:
 *   revoke_sessions  POST /v1.0/users/{id}/revokeSignInSessions, body {}:
 *                    200 (User.RevokeSessions.All)
 *   disable_account  PATCH /v1.0/users/{id}, body {"accountEnabled":false}:
 *                    204 (User.EnableDisableAccount.All and User.Read.All)
 * {id} an id or a userPrincipalName, percent-encoded as above. Its answer
 * is classified as dispatch's is (retry.h): 2xx done; a 401 drops the token
 * and the request is sent once more with a new one; 408, 425, 429, 5xx and
 * no answer again (429 and 503 also pause every Graph request for their
 * Retry-After, which the result carries); 403 dead, naming the permission
 * the app lacks; 404 and other 4xx dead. Never coalesced: each call is one
 * request (the caller's job is idempotent; both operations are too).
 * Single-threaded (the loop's). */
#ifndef RTR_GRAPH_H
#define RTR_GRAPH_H

#include <stddef.h>

#include <event2/event.h>

#include "core/config.h"
#include "core/http.h"
#include "core/retry.h"
#include "core/stats.h"
#include "core/userid.h"
#include "resolver.h"
#include "str.h"

#define GRAPH_MAX_ATTEMPTS 4
#define GRAPH_RETRY_CAP_S  120
#define GRAPH_MAX_BODY     ((size_t)256 * 1024)
/* Distinct lookups unfinished at once: at the default 4 requests in flight
 * and a tenth of a second each, some 100 s of Graph's time already, and
 * far more than one agent's users. A power of two: it is also the number
 * of buckets they are found by. */
#define GRAPH_MAX_PENDING 4096

struct graph;

/* Reads the client secret, or the certificate and its key (files, or
 * systemd credentials named by the paths), and builds the resolver on
 * http, whose loop base is (the retry and throttling timers run there).
 * cfg must outlive g. stats (the loop thread's block) may be NULL. Errors
 * are logged naming the key ("identity.graph.client_secret_file: FILE:
 * empty", "identity.graph.client_key_file: FILE: does not match the
 * certificate in CERT"). Returns 0 and *out (free with graph_free),
 * ERR_CONFIG / ERR_IO or ERR_NOMEM. */
int graph_new(const struct graph_config *cfg, struct event_base *base, struct http *http,
              struct stats *stats, struct graph **out);

/* Looks user up (copied) as kind (never USER_KIND_AUTO: the caller has
 * detected it). cb runs exactly once, from the loop or, for an identifier
 * Graph cannot be asked about (a kind it has no query for, one not valid
 * for its kind) or when GRAPH_MAX_PENDING others are pending, before
 * graph_lookup returns: IDENTITY_FOUND with the email, IDENTITY_NOT_FOUND,
 * or IDENTITY_ERROR; detail starts with "graph". */
void graph_lookup(struct graph *g, enum user_kind kind, struct str user, identity_cb cb, void *arg);

enum graph_contain {
    GRAPH_REVOKE_SESSIONS,
    GRAPH_DISABLE_ACCOUNT,
};

/* A containment's answer, as dispatch's (deliver/dispatch.h) so the
 * delivery layer maps it one to one. reason: "graph: HTTP 403
 * Authorization_RequestDenied: the app lacks User.RevokeSessions.All ...",
 * valid during the callback. */
struct graph_contain_result {
    enum retry_verdict verdict;
    int status;            /* HTTP status; 0 when no answer came */
    int64_t retry_after_s; /* Retry-After (capped at GRAPH_RETRY_CAP_S), or -1 */
    const char *reason;
};

typedef void (*graph_contain_cb)(void *arg, const struct graph_contain_result *res);

/* Runs op on the user Graph knows as user (an id or a userPrincipalName;
 * copied). cb runs exactly once, from the loop, never before this returns;
 * a user that is no name@domain nor a GUID is RETRY_DEAD without a
 * request. Returns 0, or ERR_NOMEM / ERR_BUSY (shutting down, or
 * GRAPH_MAX_PENDING containments unfinished) with no callback to come. */
int graph_contain(struct graph *g, enum graph_contain op, struct str user, graph_contain_cb cb,
                  void *arg);

/* For tests: the request path of op for user (after graph_url), in buf
 * (NUL-terminated). Returns the length, or ERR_INVALID / ERR_TOOBIG. */
int graph_contain_path(enum graph_contain op, struct str user, char *buf, size_t cap);

/* Completes every lookup still waiting with IDENTITY_ERROR ("graph:
 * shutting down") and every containment with RETRY_AGAIN, then frees g
 * (its requests on http are completed by http_free, which must come
 * after). NULL is fine. */
void graph_free(struct graph *g);

/* For tests and `check`: the request path and query (after graph_url) that
 * looks user up as kind, in buf (NUL-terminated). advanced adds $count=true
 * (and the caller sends ConsistencyLevel: eventual). fallback 0 is the first
 * request of a kind, 1 the $filter on mail / proxyAddresses of upn and
 * email. Returns the length, or ERR_TOOBIG / ERR_INVALID (no such query, or
 * user is not valid for kind). */
int graph_lookup_path(const struct graph_config *cfg, enum user_kind kind, struct str user,
                      int advanced, int fallback, char *buf, size_t cap);

#endif
