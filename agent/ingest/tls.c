#include "tls.h"

#include <openssl/err.h>

#include "errors.h"
#include "core/log.h"

/* Names this application's sessions: OpenSSL refuses to resume a session
 * without one once client certificates are verified ("session id context
 * uninitialized"), which made every resumption a failed handshake. */
static const unsigned char tls_session_context[] = "rtr-agent";

/* TLS 1.2 suites: ECDHE key exchange (forward secrecy) with an AEAD cipher
 * only, as Mozilla's "intermediate" profile less DHE: no CBC (the Lucky 13
 * family of padding oracles) and no static-RSA key exchange. TLS 1.3's
 * suites, all AEAD, stay OpenSSL's. */
static const char tls12_ciphers[] = "ECDHE+AESGCM:ECDHE+CHACHA20";

const char *tls_error_reason(unsigned long err, char *buf, size_t len)
{
    if (err == 0) {
        snprintf(buf, len, "unknown");
        return buf;
    }
    ERR_error_string_n(err, buf, len);
    return buf;
}

/* Logs what failed with OpenSSL's last reason, and clears its queue. */
static int tls_fail(const struct listen_config *lc, const char *what, const char *file)
{
    char reason[256];

    /* The first error names the cause ("No such file or directory"); later
     * ones only say which layer passed it on. */
    tls_error_reason(ERR_peek_error(), reason, sizeof(reason));
    ERR_clear_error();
    log_error("listen %s: %s %s: %s", lc->address, what, file, reason);
    return ERR_CONFIG;
}

int tls_server_ctx_new(const struct listen_config *lc, SSL_CTX **out)
{
    SSL_CTX *ctx = NULL;
    STACK_OF(X509_NAME) * names;
    int rc = ERR_CONFIG;

    *out = NULL;
    if (lc->cert == NULL || lc->key == NULL) {
        log_error("listen %s: a TLS listener needs \"cert\" and \"key\"", lc->address);
        goto out;
    }
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        rc = tls_fail(lc, "cannot create a TLS context for", lc->cert);
        goto out;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        rc = tls_fail(lc, "cannot require TLS 1.2 or later for", lc->cert);
        goto out;
    }
    if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1) {
        rc = tls_fail(lc, "cannot set the TLS 1.2 ciphers for", lc->cert);
        goto out;
    }
    if (SSL_CTX_set_session_id_context(ctx, tls_session_context, sizeof(tls_session_context) - 1) !=
        1) {
        rc = tls_fail(lc, "cannot set the session id context for", lc->cert);
        goto out;
    }
    /* No TLS 1.3 session tickets (OpenSSL sends two after the handshake by
     * default): a syslog sender never reads, so the unread tickets turn its
     * close() into an RST and its kernel discards what it had not yet
     * transmitted (419 of 2,000 frames arrived). syslog-ng sends none for
     * this reason. TLS 1.2 resumption by session id is unaffected. */
    if (SSL_CTX_set_num_tickets(ctx, 0) != 1) {
        rc = tls_fail(lc, "cannot turn off TLS 1.3 session tickets for", lc->cert);
        goto out;
    }
    /* An idle connection then holds no read and write buffers (about 34 KB);
     * syslog senders often keep a connection open and quiet for long. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* IGNORE_UNEXPECTED_EOF: many senders close without close_notify; a
     * frame left unterminated by that is delivered flagged truncated (as over
     * TCP), so the truncation OpenSSL 3 would report adds nothing. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (SSL_CTX_use_certificate_chain_file(ctx, lc->cert) != 1) {
        rc = tls_fail(lc, "cannot load certificate chain", lc->cert);
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, lc->key, SSL_FILETYPE_PEM) != 1) {
        rc = tls_fail(lc, "cannot load private key", lc->key);
        goto out;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        rc = tls_fail(lc, "private key does not match the certificate in", lc->cert);
        goto out;
    }
    if (lc->client_ca != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, lc->client_ca, NULL) != 1) {
            rc = tls_fail(lc, "cannot load client CA", lc->client_ca);
            goto out;
        }
        /* Tells clients which CAs we accept, so they pick the right cert. */
        names = SSL_load_client_CA_file(lc->client_ca);
        if (names == NULL) {
            rc = tls_fail(lc, "no CA certificate names in", lc->client_ca);
            goto out;
        }
        SSL_CTX_set_client_CA_list(ctx, names); /* transferred */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    *out = ctx; /* transferred */
    ctx = NULL;
    rc = 0;
out:
    SSL_CTX_free(ctx);
    return rc;
}
