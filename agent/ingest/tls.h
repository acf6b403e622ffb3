/* The server side of RFC 5425 listeners: one SSL_CTX per TLS listener,
 * shared by every worker (OpenSSL 3 contexts are thread-safe once built). */
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
 * lc->crl_file (read now, never again) and against lc->allowed_names.
 * The context reads lc->allowed_names at each handshake: lc must outlive it.
 * Returns 0 and *out (free with SSL_CTX_free), or ERR_CONFIG after logging a
 * line naming the file and OpenSSL's reason. */
int tls_server_ctx_new(const struct listen_config *lc, SSL_CTX **out);

/* When the certificate ctx serves expires (its notAfter), Unix seconds,
 * into *out. Reads the context only: call it from the thread that built
 * it, or once the context is shared. Returns 0, or ERR_INVALID when ctx has
 * no certificate or its notAfter does not convert. */
int tls_cert_not_after(SSL_CTX *ctx, int64_t *out);

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
