/* The connections of one HTTP listener, from their accept on: evhttp 2.1
 * has no accept hook and its timeout is a silence between two reads, so
 * without this a client could hold a connection by never completing a
 * request, or by sending it a byte at a time, outside every cap.
 *
 * Each connection's bufferevent is made by the intake (evhttp's bevcb) and
 * handed here at once; a reference is held, so its descriptor stays the
 * connection's until the watch lets go (a closed connection's descriptor
 * is released at once when evhttp says so, else within a second). Right
 * after the accept, the allow list and limits.max_connections are checked;
 * a refused connection is shut down (evhttp then frees it). A request must
 * arrive whole within request_timeout_s of the accept, or of the answer to
 * the one before on a keep-alive connection; a connection that does not
 * manage it is shut down and counted (connections_closed_total{reason=
 * "slow"}). While a request is being answered it has no deadline (the
 * intake's own timer bounds that). A TLS connection that ends in its
 * handshake counts in tls_handshake_failures_total. Single-threaded: the
 * listener's loop. */
#ifndef RTR_HTTP_WATCH_H
#define RTR_HTTP_WATCH_H

#include <stddef.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "core/stats.h"
#include "input.h"

struct http_watch;

/* Watches the connections of ep's listener on base with the limits'
 * caps (max_connections_per_source 0: none), counting in stats (the
 * worker's block). Returns 0 and *out, or ERR_NOMEM. */
int http_watch_new(struct event_base *base, const struct endpoint *ep, int max_connections,
                   int max_connections_per_source, struct stats *stats, struct http_watch **out);

/* A connection was accepted: bev is its bufferevent, its descriptor not
 * set yet (evhttp sets it after its bevcb returns). Returns 0, or ERR_NOMEM
 * (the caller frees bev and refuses the connection). */
int http_watch_accepted(struct http_watch *w, struct bufferevent *bev);

/* A request of bev's connection arrived whole: no deadline until it is
 * answered. Returns 0; or, for a connection refused (at its first look,
 * made now if the request came before it), 403 (the allow list) or 503 (a
 * cap): the caller answers that and closes the connection. */
int http_watch_request(struct http_watch *w, struct bufferevent *bev);

/* bev's request was answered and the connection stays open: the next
 * request has request_timeout_s from now. */
void http_watch_answered(struct http_watch *w, struct bufferevent *bev);

/* evhttp is closing bev's connection: let it go now. */
void http_watch_closed(struct http_watch *w, struct bufferevent *bev);

/* Lets every connection go (after evhttp_free: their descriptors close).
 * NULL is fine. */
void http_watch_free(struct http_watch *w);

#endif
