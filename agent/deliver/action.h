/* The response actions a policy runs besides SafeTitan (policy.h): one
 * request each, on the delivery thread's engines.
 *
 *   webhook  POST <url> with the rendered JSON body (template.h: every value
 *            JSON-escaped), Content-Type: application/json, Idempotency-Key:
 *            <the action's key>, the rendered headers and the secret header
 *            (its file's content, never logged). HTTPS only; the answer is
 *            classified as dispatch's is (retry.h): 2xx done, 408/425/429/
 *            5xx and no answer again (Retry-After a floor), other 4xx dead.
 *   email    SMTP submission (core/mail.h) to the action's recipients from
 *            the config's smtp section, subject and text rendered; the
 *            Message-ID carries the action's key, so a resend after a crash
 *            is recognisable. 4xx and no answer again, 5xx dead.
 *   approval one such email per approver, whose {{approve_url}} and
 *            {{deny_url}} carry that approver's token (approval.h) under
 *            the config's approvals.url; answered once every message was:
 *            one to send again sends them all again (same Message-IDs).
 *   graph    the containment on the identity layer's Graph client
 *            (identity/graph.h: graph_contain, its token and classification)
 *            for the resolved email: revoke the user's sessions or disable
 *            the account.
 *
 * A reason quotes at most the first bytes of a webhook's answer, escaped
 * (never a header). Single-threaded: the loop's. */
#ifndef RTR_ACTION_H
#define RTR_ACTION_H

#include "core/config.h"
#include "core/http.h"
#include "decide/policy.h"
#include "decide/template.h"
#include "dispatch.h"
#include "identity/graph.h"

struct actions;
struct approval_secret;

/* Reads smtp.password_file (when smtp has a username) and keeps cfg (which
 * must outlive the set) for the timeouts and the SMTP server, and graph
 * (identity_graph: NULL when there is none; it must outlive the set's
 * sends) for graph actions. Errors are logged naming the key and the file.
 * Returns 0 and *out (free with actions_free), ERR_CONFIG, ERR_IO or
 * ERR_NOMEM. */
int actions_new(const struct config *cfg, struct http *http, struct graph *graph,
                struct actions **out);

/* Sends a (a webhook, an email, an approval or a graph containment) for the
 * alert whose texts are v, received at occurred (an approval's links name
 * it); key: the action's idempotency key. cb runs exactly once,
 * from the loop, never before this returns. Returns 0, or ERR_NOMEM /
 * ERR_INVALID (a rendering that does not fit, an email without an smtp
 * section, a graph action without a Graph resolver) / ERR_BUSY with no
 * callback. */
int actions_send(struct actions *s, const struct policy_action *a, const struct template_values *v,
                 const char *key, struct timespec occurred, dispatch_cb cb, void *arg);

/* The secret approvals' links are made with (approval.h); borrowed. */
void actions_set_approval_secret(struct actions *s, const struct approval_secret *secret);

/* NULL is fine. Requests in flight complete through http_free first. */
void actions_free(struct actions *s);

#endif
