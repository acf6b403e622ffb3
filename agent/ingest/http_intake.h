/* The HTTP intake (listen proto "http"): webhooks on libevent's evhttp,
 * on the routes webhook.h names (the generic /v1/alerts/{source} and the
 * orchestrator's endpoints), acknowledged only once every alert they
 * produced is spooled and fsynced.
 *
 * One worker (worker 0) owns each HTTP listener, on its own loop: webhooks
 * arrive at a few per second, far below what one loop decides, and one
 * evhttp per listener keeps the connection caps and the per-request state
 * in one thread (evhttp cannot share a listener between bases).
 *
 * A connection is watched from its accept (http_watch.h: the allow list
 * and the caps at once, a whole request within request_timeout_s). A
 * request, in order: the API key, in its header or as the code parameter,
 * or a verified client certificate (401, no detail); the route and its
 * method (404, 405 with Allow) and the query (400); the agent stopping or
 * the spool refusing alerts (503 with Retry-After); then the whole body is
 * split into alerts and validated (400 {"error": ...} naming the path)
 * before any alert is decided. Each alert becomes one message (payload
 * json, raw = its text; http.source and http.query.<name> from the
 * request) run through the worker's pipeline with an ack (decision_ack);
 * the answer is 202 {"decisions": [...]} (each with its outcome: accepted,
 * or a duplicate of an alert already held or sent) once every ack came
 * back durable,
 * 200 {"decisions": []} when nothing was decided, 503 with Retry-After when
 * an alert could not be made durable or the spool did not take it within
 * request_timeout_s (a retry with the same body or Idempotency-Key has the
 * same idempotency keys, so the duplicate window drops what did reach the
 * spool).
 *
 * evhttp itself answers 501 for a method no route takes, 413 for a body
 * over max_body_bytes and 400/431 for oversize headers, and closes a
 * connection silent for request_timeout_s (mid-request: the request is
 * dropped undecided, as evhttp only hands over whole requests). */
#ifndef RTR_HTTP_INTAKE_H
#define RTR_HTTP_INTAKE_H

#include "input.h"

struct http_intake;

/* Binds ep's address (its API key is ep->key, http_key.h) and starts
 * serving on ctx->base; the intake is one of ctx's inputs (stopped with
 * the worker). ctx must outlive it. Returns 0 and *out (free with
 * http_intake_free), or ERR_IO / ERR_NOMEM (logged). */
int http_intake_new(const struct input_ctx *ctx, struct endpoint *ep, struct http_intake **out);

/* Closes the listener and every connection. NULL is fine. */
void http_intake_free(struct http_intake *h);

#endif
