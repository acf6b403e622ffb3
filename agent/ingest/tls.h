/* The server side of RFC 5425 listeners: one SSL_CTX per TLS listener,
 * shared by every worker (OpenSSL 3 contexts are thread-safe once built). */
#ifndef RTR_TLS_H
#define RTR_TLS_H

#include <openssl/ssl.h>

#include "core/config.h"

/* Builds the context for lc: TLS 1.2 minimum, certificate chain lc->cert and
 * key lc->key (checked to match), no compression or renegotiation, session
 * resumption, buffers released while idle, and with lc->client_ca set,
 * client certificates required and verified against it.
 * Returns 0 and *out (free with SSL_CTX_free), or ERR_CONFIG after logging a
 * line naming the file and OpenSSL's reason. */
int tls_server_ctx_new(const struct listen_config *lc, SSL_CTX **out);

/* OpenSSL's text for err (an ERR_get_error() code; 0 gives "unknown"),
 * written into buf, which is returned. */
const char *tls_error_reason(unsigned long err, char *buf, size_t len);

#endif
