/* Email to analysts: one message per mail_send, submitted over SMTP by
 * libcurl on the HTTPS engine's multi handle (http_start_easy), so on the
 * same loop and never blocking it.
 *
 * Security: only smtp:// and smtps:// URLs, without user or password in
 * them. smtp:// must upgrade with STARTTLS (a server that does not offer it
 * fails the send) unless its host is loopback (127.0.0.0/8, [::1],
 * "localhost"), where STARTTLS is tried and plain text accepted; smtps://
 * is TLS from the start. TLS verifies the peer and its host name against
 * the system CAs plus ca_file. AUTH only when username is set (the
 * mechanism is the best both sides know). The password and the body are
 * never logged, nor kept past the call (curl keeps its copy of the
 * password for the transfer).
 *
 * The message is built by mail_format: a header field with CR, LF or
 * another control character in from, a recipient or the subject is
 * refused before anything is sent, so a rendered template cannot add
 * headers or recipients. The body is sent as it is after its line ends
 * become CRLF: libcurl dot-stuffs an SMTP upload itself (a line starting
 * with "." goes out as ".."), so mail_format does not.
 *
 * All recipients or none: one refused recipient fails the whole send
 * before DATA (nobody got it), so a retry never sends anyone a copy twice
 * (and Message-ID names a message a retried send repeats). */
#ifndef RTR_MAIL_H
#define RTR_MAIL_H

#include <stddef.h>
#include <time.h>

#include "http.h"
#include "retry.h"

/* The longest subject and body mail_send takes (ERR_INVALID beyond). */
#define MAIL_SUBJECT_MAX 1024
#define MAIL_BODY_MAX    (1024 * 1024)
/* The most recipients of one message. */
#define MAIL_RCPT_MAX 100

struct mail_request {
    const char *url;         /* smtp://host[:port] (STARTTLS) or smtps://host[:port] */
    const char *from;        /* envelope sender and From: (a bare address) */
    const char *const *to;   /* NULL-terminated recipients (bare addresses), at least one */
    const char *username;    /* AUTH as this user, or NULL: no AUTH */
    const char *password;    /* with username */
    const char *subject;     /* already rendered; UTF-8 */
    const char *body;        /* text/plain; charset=utf-8; LF or CRLF line ends */
    size_t body_len;         /* no NUL in it */
    const char *message_id;  /* Message-ID: <message_id@rtr-agent>, or NULL: none */
    const char *ca_file;     /* PEM bundle added to the system CAs, or NULL */
    long connect_timeout_ms; /* > 0 */
    long timeout_ms;         /* the whole submission, > 0 */
};

/* How a send ended:
 * - RETRY_DONE: the server took the message (250 after the data);
 *   smtp_code 250, reason NULL.
 * - RETRY_AGAIN: try again later: no connection (refused, DNS, timeout),
 *   TLS failed (the certificate, or STARTTLS required and not offered: the
 *   server's set-up, not the message), the connection dropped, a 4xx reply
 *   (451 local error, 421 closing, 452 storage...), the engine shutting
 *   down. smtp_code is the 4xx or 0.
 * - RETRY_DEAD: a 5xx reply: the message will never go as it is (550
 *   mailbox unavailable, 553 address refused, 535 authentication failed,
 *   554 rejected); a dead letter. smtp_code is the 5xx.
 * reason: "SMTP 451: <the start of the server's reply line>" when a 4xx or
 * 5xx came, else curl's text with the layer that failed ("TCP: Failed to
 * connect...", "TLS: SSL certificate problem: ...", "timeout: ...").
 * Valid during the callback only. */
struct mail_result {
    enum retry_verdict verdict;
    int smtp_code;
    const char *reason;
};

typedef void (*mail_cb)(void *arg, const struct mail_result *r);

/* Builds req's message and starts sending it on h. Returns 0 (cb runs
 * exactly once, from the loop, never inside mail_send), ERR_INVALID (a URL
 * that is not smtp:// or smtps:// or carries a user, a from, recipient or
 * subject with a control character, no recipient, an address that is not
 * one, a body with NUL or over MAIL_BODY_MAX, a bad message_id, timeouts
 * <= 0, h shutting down: cb will not run) or ERR_NOMEM. Nothing of req is
 * used after the call. */
int mail_send(struct http *h, const struct mail_request *req, mail_cb cb, void *arg);

/* Pure: the RFC 5322 message mail_send sends, at now: Date (UTC), From,
 * To, Subject (RFC 2047 "B" encoded words when it is not printable ASCII
 * or too long for one line), Message-ID (when set), MIME-Version,
 * Content-Type text/plain; charset=utf-8, Content-Transfer-Encoding 8bit,
 * then the body with CRLF line ends (bare LF or CR become CRLF; a final
 * CRLF is added when missing; lines are not wrapped: a template's line
 * over RFC 5322's 998 bytes is the template's to avoid). Returns 0 and *out (*len bytes, NUL
 * terminated; free with free), or ERR_INVALID (as mail_send, url and
 * timeouts aside) or ERR_NOMEM. */
int mail_format(const struct mail_request *req, time_t now, char **out, size_t *len);

/* Checks url as mail_send does: smtp:// or smtps://, no user or password
 * in it. Returns 0 and whether its host is loopback (127.0.0.0/8, [::1],
 * "localhost": plain smtp:// is accepted there), or ERR_INVALID (or
 * ERR_NOMEM). */
int mail_url_parse(const char *url, int *loopback);

/* Whether s is a bare mail address as from and recipients must be:
 * local@domain, printable ASCII or UTF-8 without spaces, '<', '>', ','
 * or control characters, at most 254 bytes. */
int mail_address_valid(const char *s);

#endif
