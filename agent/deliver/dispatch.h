/* SafeTitan dispatch: one alert, one HTTPS request, on the shared engine
 * (http.h). The modes of design.md:
 *
 *   direct        POST <dispatch.url>, JSON body {"event", "email", "id",
 *                 "occurred_at"} (names from dispatch.fields), headers
 *                 Content-Type: application/json, Idempotency-Key: <key>
 *                 and <dispatch.api_key_header>: <the API key>.
 *   orchestrator  POST <url>/api/event/<source>/alert?code=<API key>
 *                 &orchid=<orch_id>&orgId=<org_id>&user=<email>
 *                 &ruleName=<event>, with Idempotency-Key too. The code is
 *                 a secret: the URL is never logged or audited.
 *
 * Nothing else leaves: not the raw log, the source host, its IP or the
 * user's other identifiers. The verdict follows retry.h. A response body
 * is read up to DISPATCH_MAX_BODY and only its first bytes, escaped, make
 * it into a dead-letter reason. Single-threaded (the loop's). */
#ifndef RTR_DISPATCH_H
#define RTR_DISPATCH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/config.h"
#include "core/http.h"
#include "core/retry.h"
#include "str.h"

#define DISPATCH_MAX_BODY ((size_t)64 * 1024)

struct dispatch;

struct policy_action;
struct template_values;

struct dispatch_alert {
    struct str event;         /* the event name SafeTitan's subscription expects */
    const char *email;        /* the resolved user */
    const char *key;          /* the idempotency key (decision_key, or the action's) */
    struct timespec occurred; /* when the agent received the message */
    /* A policy's webhook or email action (action.h) and the texts its
     * templates read; NULL: a SafeTitan event (dispatch_send). */
    const struct policy_action *action;
    const struct template_values *values;
};

struct dispatch_result {
    enum retry_verdict verdict;
    int status;            /* HTTP status; 0 when no answer came */
    int64_t retry_after_s; /* Retry-After in seconds (capped), or -1 */
    /* For the audit and dead-letter lines: "HTTP 400: <first bytes of the
     * body>", "timeout after 30 s", "TLS: certificate verify failed". */
    const char *reason;
};

typedef void (*dispatch_cb)(void *arg, const struct dispatch_result *res);

/* Room for a reason. */
#define DISPATCH_REASON_MAX 1400

/* Classifies an HTTPS answer as dispatch does (retry.h: the verdict, the
 * status, Retry-After capped at retry_max_s) with its reason, written to
 * reason[0..cap): "HTTP 400: <the body's first bytes, escaped>" when
 * quote_body, else "HTTP 400", or why no answer came. For every sender of
 * this kind (action.h). */
void dispatch_classify(const struct http_response *res, int timeout_s, int retry_max_s,
                       int quote_body, char *reason, size_t cap, struct dispatch_result *out);

/* Reads the API key (dispatch.api_key_file; a key with control characters
 * is refused: it would split a header) and builds the dispatcher. cfg must
 * outlive d. Errors are logged naming the key and the file, never the
 * secret. Returns 0 and *out (free with dispatch_free), ERR_CONFIG, ERR_IO
 * or ERR_NOMEM. Dry-run: there is nothing to build; *out is NULL. */
int dispatch_new(const struct dispatch_config *cfg, struct http *http, struct dispatch **out);

/* Sends a. cb runs exactly once, from the loop. Returns 0, or ERR_NOMEM
 * with no callback to come. */
int dispatch_send(struct dispatch *d, const struct dispatch_alert *a, dispatch_cb cb, void *arg);

/* Frees d. Requests in flight complete through http_free, after which
 * their callbacks must not reach d: free the http engine first. NULL is
 * fine. */
void dispatch_free(struct dispatch *d);

#endif
