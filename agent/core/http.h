/* The outbound HTTPS engine the Graph resolver and the SafeTitan dispatcher
 * share, which mail.c's SMTP transfers run on too (http_start_easy):
 * libcurl's multi_socket interface driven by one libevent base (the
 * delivery thread's), as curl's docs/examples/multi-event.c does: one event
 * per socket curl asks about, one timer (a timeout of 0 becomes 1 ms),
 * finished transfers mapped back through CURLOPT_PRIVATE and removed
 * outside libcurl's callbacks. Nothing here blocks the loop.
 *
 * Every HTTP transfer is HTTPS only (CURLOPT_PROTOCOLS_STR "https", redirects
 * never followed), verifies the peer and its host name against the system
 * CAs plus, when set, the request's ca_file (added to them, not replacing
 * them), has a connect and a total timeout, and caps the response body it
 * keeps: a longer body is cut, flagged and the transfer aborted. No header
 * or body is ever logged (they carry secrets: the API key, the client
 * secret, bearer tokens). Single-threaded: the base's thread only. */
#ifndef RTR_HTTP_H
#define RTR_HTTP_H

#include <stddef.h>

#include <curl/curl.h>
#include <event2/event.h>

struct http;

struct http_request {
    const char *method; /* "GET", "POST" or "PATCH" */
    const char *url;    /* https:// (anything else fails the request) */
    /* "Name: value" lines, NULL-terminated (NULL: none). Copied. */
    const char *const *headers;
    const char *body; /* POST or PATCH body (copied), or NULL */
    size_t body_len;
    const char *ca_file;      /* PEM bundle added to the system CAs, or NULL */
    long connect_timeout_ms;  /* > 0 */
    long timeout_ms;          /* whole transfer, > 0 */
    size_t max_response_body; /* bytes kept; over it: truncated, transfer aborted */
};

struct http_response {
    int status; /* HTTP status, 0 when no response came (see error) */
    /* Body received (NUL-terminated, at most max_response_body bytes). */
    const char *body;
    size_t body_len;
    int truncated; /* the body was longer than max_response_body */
    /* The Retry-After header's value as received (trimmed), or NULL. */
    const char *retry_after;
    /* The Date header's value (trimmed), or NULL: the server's clock, which
     * an HTTP-date Retry-After is relative to (retry_after_s). */
    const char *date;
    /* Why no usable response came ("connect timeout", "TLS: certificate
     * verify failed", "response body over 65536 bytes"), else NULL: curl's
     * error text, never a URL or a header. */
    const char *error;
    long elapsed_ms; /* from http_start to completion */
};

/* Runs once per http_start, from the loop (never inside http_start), with
 * res valid during the call only. It may start new requests. */
typedef void (*http_cb)(void *arg, const struct http_response *res);

/* An engine on base. Returns 0 and *out (free with http_free), or
 * ERR_NOMEM / ERR_IO (curl_multi_init failed; logged). curl_global_init is
 * the caller's (main does it once). */
int http_new(struct event_base *base, struct http **out);

/* Starts req. Returns 0 (cb will run exactly once) or ERR_NOMEM /
 * ERR_INVALID (a URL that is not https://: cb will not run). */
int http_start(struct http *h, const struct http_request *req, http_cb cb, void *arg);

/* A transfer of another protocol on the engine, for the module that speaks
 * it (mail.c: SMTP), so that it shares the loop, the sockets' events and
 * the CA stores instead of a second copy of them. easy comes prepared with
 * its protocol's options: CURLOPT_URL and the protocol's own (upload, mail
 * envelope, login), its read, write and header callbacks (their data must
 * outlive cb's call; nothing of easy is used after it). The engine sets, as
 * for http_start, and the caller must not: CURLOPT_PRIVATE, the error
 * buffer, CURLOPT_PROTOCOLS_STR from protocols (redirects never followed),
 * peer and host name verification, TLS 1.2 or later, the CA store (system
 * CAs plus ca_file), the connect and total timeouts, no signals. */
struct http_transfer {
    CURL *easy;              /* taken by http_start_easy in every case */
    const char *protocols;   /* e.g. "smtp,smtps"; HTTP is http_start's alone */
    const char *ca_file;     /* PEM bundle added to the system CAs, or NULL */
    long connect_timeout_ms; /* > 0 */
    long timeout_ms;         /* whole transfer, > 0 */
};

/* Starts t. Returns 0 (cb will run exactly once, as for http_start: status
 * is CURLINFO_RESPONSE_CODE, for SMTP the last reply code; error as for
 * http_start; no body, retry_after or date) or ERR_NOMEM / ERR_INVALID
 * (engine freeing, a timeout <= 0, protocols NULL or naming http: cb will
 * not run). t->easy is the engine's from the call on, freed after cb. */
int http_start_easy(struct http *h, const struct http_transfer *t, http_cb cb, void *arg);

/* Transfers in flight. */
size_t http_in_flight(const struct http *h);

/* Completes every transfer still in flight with status 0 and error
 * "shutting down" (their callbacks must not start new ones: http_start
 * fails with ERR_INVALID once freeing began), then frees h. NULL is fine. */
void http_free(struct http *h);

#endif
