/* The server side of RFC 5425 listeners: one SSL_CTX per TLS listener,
 * shared by every worker (OpenSSL 3 contexts are thread-safe once built),
 * rebuilt from its files on SIGHUP (tls_server). */
#ifndef RTR_TLS_H
#define RTR_TLS_H

#include <openssl/ssl.h>

#include <stdint.h>

#include "core/config.h"

/* Builds the context for lc as config_load filled it: TLS lc->min_version
 * or later with lc->ciphers and lc->ciphersuites, certificate chain
 * lc->cert and key lc->key (checked to match), no compression or
 * renegotiation, no session tickets (TLS 1.2 resumes by session id),
 * buffers released while idle, and with lc->client_ca set, client
 * certificates required and verified against it, against the CRLs of
 * lc->crl_file (read now; tls_server_reload reads them again) and against
 * lc->allowed_names.
 * The context reads lc->allowed_names at each handshake: lc must outlive it.
 * Returns 0 and *out (free with SSL_CTX_free), or ERR_CONFIG after logging a
 * line naming the file and OpenSSL's reason. */
int tls_server_ctx_new(const struct listen_config *lc, SSL_CTX **out);

/* A TLS listener's context, which a SIGHUP may replace while workers
 * accept with it: connections keep the context they started with. */
struct tls_server;

/* tls_server_ctx_new's context for lc, held for the listener. lc must
 * outlive it. Returns 0 and *out, or ERR_CONFIG (logged) / ERR_NOMEM. */
int tls_server_new(const struct listen_config *lc, struct tls_server **out);

/* A new SSL for a connection accepted on the listener, with the context in
 * use now, or NULL. Thread-safe. */
SSL *tls_server_ssl(struct tls_server *ts);

/* Builds the context again from the listener's files (a renewed
 * certificate or key, a new CRL) and swaps it in for connections accepted
 * from now on. Returns 0 (also for a listener tls_server_check_readable
 * froze), or ERR_CONFIG (logged, naming the file) with the running context
 * kept. Thread-safe. */
int tls_server_reload(struct tls_server *ts);

/* When the certificate the listener serves now expires (its notAfter),
 * Unix seconds, into *out: after a SIGHUP, the reloaded one's. Returns 0,
 * or ERR_INVALID when the context has no certificate or its notAfter does
 * not convert. Thread-safe. */
int tls_server_not_after(struct tls_server *ts, int64_t *out);

/* After the privilege drop: when a file of the listener cannot be read by
 * the user the agent now runs as, says so once, and tls_server_reload then
 * leaves the listener as it is (a SIGHUP is not a failure for it). */
void tls_server_check_readable(struct tls_server *ts);

void tls_server_free(struct tls_server *ts); /* NULL is fine */

/* Call as a connection whose handshake completed is closed: its session
 * stays in the cache for the client to resume by id. OpenSSL drops the
 * session of a connection freed before it sent a close_notify, and the
 * agent sends none (libevent frees without SSL_shutdown). A connection
 * that ended with a fatal alert had its session dropped then (RFC 5246
 * 7.2.2); this does not bring it back. */
void tls_keep_session(SSL *ssl);

/* Why the handshake of ssl refused the client's certificate, into buf
 * (returned): "client certificate refused: certificate revoked", or, for
 * allowed_names, the names it carries, escaped. NULL when its certificate
 * was not refused (none was verified, or it passed). */
const char *tls_client_refusal(const SSL *ssl, char *buf, size_t len);

/* OpenSSL's text for err (an ERR_get_error() code; 0 gives "unknown"),
 * written into buf, which is returned. */
const char *tls_error_reason(unsigned long err, char *buf, size_t len);

#endif
