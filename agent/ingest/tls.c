#include "tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "errors.h"
#include "core/escape.h"
#include "core/log.h"

/* Names this application's sessions: OpenSSL refuses to resume a session
 * without one once client certificates are verified ("session id context
 * uninitialized"), which made every resumption a failed handshake. */
static const unsigned char tls_session_context[] = "rtr-agent";

/* The names of a client certificate, as a refusal shows them:
 * `DNS:"a.example", URI:"spiffe://b"` (JSON-escaped), the list cut with
 * "...". */
#define TLS_NAMES_MAX  512
#define TLS_NAME_SHOWN 128 /* bytes of one name */

struct tls_names {
    char text[TLS_NAMES_MAX];
    size_t len;
    int cut;
};

/* Where tls_verify_client leaves, for tls_client_refusal, the names of a
 * certificate allowed_names refused: a string freed with its SSL. */
static int tls_refusal_index = -1;
static pthread_once_t tls_refusal_once = PTHREAD_ONCE_INIT;

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

static void tls_free_refusal(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                             void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    free(ptr);
}

static void tls_refusal_index_new(void)
{
    tls_refusal_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, tls_free_refusal);
}

/* Appends label:"name" to the list; past TLS_NAMES_MAX the list ends in
 * "...". */
static void tls_names_add(struct tls_names *n, const char *label, const unsigned char *name,
                          size_t len)
{
    /* Room kept for ", ..." and the NUL once the list is full. */
    const size_t cap = sizeof(n->text) - sizeof(", ...");
    char escaped[TLS_NAME_SHOWN * ESCAPE_MAX_EXPANSION];
    size_t elen;
    int w;

    if (n->cut)
        return;
    elen = escape_text(escaped, sizeof(escaped), (const char *)name,
                       len < TLS_NAME_SHOWN ? len : TLS_NAME_SHOWN, ESCAPE_JSON);
    w = snprintf(n->text + n->len, cap - n->len, "%s%s:\"%.*s%s\"", n->len > 0 ? ", " : "", label,
                 (int)elen, escaped, len > TLS_NAME_SHOWN ? "..." : "");
    if (w < 0 || (size_t)w >= cap - n->len) {
        snprintf(n->text + n->len, sizeof(n->text) - n->len, "%s...", n->len > 0 ? ", " : "");
        n->cut = 1;
        return;
    }
    n->len += (size_t)w;
}

static int tls_ascii_equal_nocase(const char *a, const unsigned char *b, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char x = (unsigned char)a[i], y = b[i];

        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return 0;
    }
    return 1;
}

/* Whether name[0..len) is in allowed_names. A name with a NUL inside
 * ("a.example\0.evil") has the wrong length for any configured one. */
static int tls_name_listed(const struct listen_config *lc, const unsigned char *name, size_t len,
                           int ignore_case)
{
    for (size_t i = 0; i < lc->n_allowed_names; i++) {
        const char *want = lc->allowed_names[i];

        if (strlen(want) != len)
            continue;
        if (ignore_case ? tls_ascii_equal_nocase(want, name, len) : memcmp(want, name, len) == 0)
            return 1;
    }
    return 0;
}

/* Whether cert carries a name of allowed_names: a subjectAltName dNSName
 * (ignoring ASCII case, as DNS does) or URI (exactly), or, only when it
 * has neither, its subject's most specific CN (ignoring case: in practice
 * a host name). No wildcards on either side: "*.example" in a certificate
 * only equals "*.example", which the config refuses. The names looked at
 * go to seen. */
static int tls_cert_named(const struct listen_config *lc, X509 *cert, struct tls_names *seen)
{
    int crit = -1, found = 0, has_names = 0, last = -1;
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
    const X509_NAME *subject = X509_get_subject_name(cert);
    unsigned char *cn = NULL;
    int cn_len;

    /* Present but undecodable, or twice: no fallback to the CN. */
    if (sans == NULL && crit != -1) {
        snprintf(seen->text, sizeof(seen->text), "an unreadable subjectAltName");
        return 0;
    }
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        const ASN1_IA5STRING *s;
        const char *label;

        if (gn->type == GEN_DNS) {
            s = gn->d.dNSName;
            label = "DNS";
        } else if (gn->type == GEN_URI) {
            s = gn->d.uniformResourceIdentifier;
            label = "URI";
        } else {
            continue;
        }
        has_names = 1;
        tls_names_add(seen, label, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
        found |= tls_name_listed(lc, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s),
                                 gn->type == GEN_DNS);
    }
    GENERAL_NAMES_free(sans);
    if (has_names)
        return found;
    for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;)
        last = i;
    if (last < 0) {
        snprintf(seen->text, sizeof(seen->text), "no DNS or URI subjectAltName and no CN");
        return 0;
    }
    cn_len = ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, last)));
    if (cn_len < 0) {
        snprintf(seen->text, sizeof(seen->text), "an unreadable CN");
        return 0;
    }
    tls_names_add(seen, "CN", cn, (size_t)cn_len);
    found = tls_name_listed(lc, cn, (size_t)cn_len, 1);
    OPENSSL_free(cn);
    return found;
}

/* The client certificate check with allowed_names: OpenSSL's own (the chain
 * to client_ca, revocation with crl_file), then the names. A refusal fails
 * the handshake with a handshake_failure alert. */
static int tls_verify_client(X509_STORE_CTX *store, void *arg)
{
    const struct listen_config *lc = arg;
    struct tls_names seen = {.len = 0};
    SSL *ssl;

    if (X509_verify_cert(store) != 1)
        return 0;
    if (tls_cert_named(lc, X509_STORE_CTX_get0_cert(store), &seen))
        return 1;
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    if (ssl != NULL && tls_refusal_index >= 0) {
        free(SSL_get_ex_data(ssl, tls_refusal_index));
        /* Without memory the refusal is logged without the names. */
        SSL_set_ex_data(ssl, tls_refusal_index, strdup(seen.text));
    }
    return 0;
}

const char *tls_client_refusal(const SSL *ssl, char *buf, size_t len)
{
    long result = SSL_get_verify_result(ssl);
    const char *names;

    if (result == X509_V_OK)
        return NULL;
    names = tls_refusal_index >= 0 ? SSL_get_ex_data(ssl, tls_refusal_index) : NULL;
    if (result == X509_V_ERR_APPLICATION_VERIFICATION && names != NULL)
        snprintf(buf, len, "client certificate refused: its names are not in allowed_names: %s",
                 names);
    else
        snprintf(buf, len, "client certificate refused: %s", X509_verify_cert_error_string(result));
    return buf;
}

void tls_keep_session(SSL *ssl)
{
    /* What SSL_free checks: a close_notify "sent" marks a clean end. Nothing
     * is written: a sender that never reads must not get data it would have
     * to discard at its close (see the ticket note in tls_server_ctx_new). */
    SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_SENT_SHUTDOWN);
}

/* Whether a CA certificate in store (client_ca) signed crl. */
static int tls_crl_from_store(X509_STORE *store, X509_CRL *crl)
{
    STACK_OF(X509_OBJECT) *objects = X509_STORE_get0_objects(store);

    for (int i = 0; i < sk_X509_OBJECT_num(objects); i++) {
        X509 *ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objects, i));

        if (ca != NULL && X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) == 0 &&
            X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1)
            return 1;
    }
    return 0;
}

/* Adds the CRLs of lc->crl_file to ctx's store (client_ca loaded already)
 * and turns on the revocation check of client certificates. Only the leaf
 * is checked (X509_V_FLAG_CRL_CHECK, not CRL_CHECK_ALL, which would need a
 * CRL from every CA of the chain, the root's too); its issuer's CRL must be
 * in the file, unexpired, or the certificate is refused. Each CRL must be
 * signed by a CA of client_ca: one that is not can never apply. */
static int tls_load_crls(const struct listen_config *lc, SSL_CTX *ctx)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    BIO *in = BIO_new_file(lc->crl_file, "r");
    X509_CRL *crl = NULL;
    const ASN1_TIME *next;
    char issuer[256];
    int n = 0, rc = ERR_CONFIG;

    if (in == NULL)
        return tls_fail(lc, "cannot read CRL file", lc->crl_file);
    ERR_clear_error(); /* the end of the file is told by the error it leaves */
    while ((crl = PEM_read_bio_X509_CRL(in, NULL, NULL, NULL)) != NULL) {
        X509_NAME_oneline(X509_CRL_get_issuer(crl), issuer, sizeof(issuer));
        if (!tls_crl_from_store(store, crl)) {
            ERR_clear_error();
            log_error("listen %s: CRL file %s: the CRL of %s is not signed by a CA of %s",
                      lc->address, lc->crl_file, issuer, lc->client_ca);
            goto out;
        }
        next = X509_CRL_get0_nextUpdate(crl);
        if (next != NULL && X509_cmp_current_time(next) < 0)
            log_warning("listen %s: CRL file %s: the CRL of %s has expired: the client "
                        "certificates of that CA are refused until a fresh CRL is in the file "
                        "and the agent restarted",
                        lc->address, lc->crl_file, issuer);
        if (X509_STORE_add_crl(store, crl) != 1) {
            rc = tls_fail(lc, "cannot add a CRL of", lc->crl_file);
            goto out;
        }
        X509_CRL_free(crl);
        crl = NULL;
        n++;
    }
    /* The loop ends at the end of the file (no more PEM: "no start line")
     * or at a broken CRL. */
    if (n == 0 || ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
        rc = tls_fail(lc, n == 0 ? "no PEM CRL in" : "a broken CRL in", lc->crl_file);
        goto out;
    }
    ERR_clear_error();
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    rc = 0;
out:
    X509_CRL_free(crl);
    BIO_free(in);
    return rc;
}

/* Client certificates: required, verified against client_ca, then against
 * crl_file and allowed_names when set. */
static int tls_verify_clients(const struct listen_config *lc, SSL_CTX *ctx)
{
    STACK_OF(X509_NAME) * names;

    if (SSL_CTX_load_verify_locations(ctx, lc->client_ca, NULL) != 1)
        return tls_fail(lc, "cannot load client CA", lc->client_ca);
    /* Tells clients which CAs we accept, so they pick the right cert. */
    names = SSL_load_client_CA_file(lc->client_ca);
    if (names == NULL)
        return tls_fail(lc, "no CA certificate names in", lc->client_ca);
    SSL_CTX_set_client_CA_list(ctx, names); /* transferred */
    if (lc->crl_file != NULL && tls_load_crls(lc, ctx) != 0)
        return ERR_CONFIG;
    if (lc->n_allowed_names > 0) {
        if (pthread_once(&tls_refusal_once, tls_refusal_index_new) != 0 || tls_refusal_index < 0)
            return tls_fail(lc, "cannot set up allowed_names for", lc->client_ca);
        SSL_CTX_set_cert_verify_callback(ctx, tls_verify_client, (void *)lc);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    return 0;
}

int tls_server_ctx_new(const struct listen_config *lc, SSL_CTX **out)
{
    SSL_CTX *ctx = NULL;
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
    if (SSL_CTX_set_min_proto_version(
            ctx, lc->min_version == LISTEN_TLS_1_3 ? TLS1_3_VERSION : TLS1_2_VERSION) != 1) {
        rc = tls_fail(lc, "cannot set the lowest TLS version for", lc->cert);
        goto out;
    }
    /* config_load has tried both strings on a context already. */
    if (SSL_CTX_set_cipher_list(ctx, lc->ciphers) != 1) {
        rc = tls_fail(lc, "cannot set the TLS 1.2 ciphers for", lc->cert);
        goto out;
    }
    if (lc->ciphersuites != NULL && SSL_CTX_set_ciphersuites(ctx, lc->ciphersuites) != 1) {
        rc = tls_fail(lc, "cannot set the TLS 1.3 cipher suites for", lc->cert);
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
     * this reason. */
    if (SSL_CTX_set_num_tickets(ctx, 0) != 1) {
        rc = tls_fail(lc, "cannot turn off TLS 1.3 session tickets for", lc->cert);
        goto out;
    }
    /* An idle connection then holds no read and write buffers (about 34 KB);
     * syslog senders often keep a connection open and quiet for long. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* IGNORE_UNEXPECTED_EOF: many senders close without close_notify; a
     * frame left unterminated by that is delivered flagged truncated (as over
     * TCP), so the truncation OpenSSL 3 would report adds nothing.
     * NO_TICKET: no TLS 1.2 session tickets either. Their key would be one
     * per context for the life of the process, never rotated: whoever reads
     * it decrypts every recorded session resumed with a ticket. TLS 1.2
     * resumes by session id instead, from the server-side cache (only
     * sessions whose client certificate passed, as the checks ran then). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 SSL_OP_NO_TICKET);
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
    if (lc->client_ca != NULL && tls_verify_clients(lc, ctx) != 0)
        goto out;
    *out = ctx; /* transferred */
    ctx = NULL;
    rc = 0;
out:
    SSL_CTX_free(ctx);
    return rc;
}

static int tls_ctx_not_after(SSL_CTX *ctx, int64_t *out)
{
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    const ASN1_TIME *end = cert != NULL ? X509_get0_notAfter(cert) : NULL;
    struct tm tm;

    if (end == NULL || ASN1_TIME_to_tm(end, &tm) != 1)
        return ERR_INVALID;
    *out = (int64_t)timegm(&tm); /* ASN1_TIME_to_tm gives UTC */
    return 0;
}

struct tls_server {
    const struct listen_config *lc;
    /* Guards ctx between a worker's SSL_new (which takes its own reference
     * to it) and a SIGHUP's swap (which drops the listener's). */
    pthread_mutex_t lock;
    SSL_CTX *ctx;
    /* Its files cannot be read by the user the agent now runs as (they
     * were read as root): a SIGHUP leaves the listener as it is. */
    int frozen;
};

void tls_server_check_readable(struct tls_server *ts)
{
    const char *files[] = {ts->lc->cert, ts->lc->key, ts->lc->client_ca, ts->lc->crl_file};

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (files[i] == NULL || access(files[i], R_OK) == 0)
            continue;
        log_warning("listen %s: %s: %s as uid %u: a SIGHUP will not read this listener's TLS "
                    "files again (restart the agent after renewing them)",
                    ts->lc->address, files[i], strerror(errno), (unsigned)geteuid());
        ts->frozen = 1;
        return;
    }
}

int tls_server_new(const struct listen_config *lc, struct tls_server **out)
{
    struct tls_server *ts = calloc(1, sizeof(*ts));
    int rc;

    *out = NULL;
    if (ts == NULL)
        return ERR_NOMEM;
    rc = tls_server_ctx_new(lc, &ts->ctx);
    if (rc != 0) {
        free(ts);
        return rc;
    }
    ts->lc = lc;
    pthread_mutex_init(&ts->lock, NULL);
    *out = ts;
    return 0;
}

SSL *tls_server_ssl(struct tls_server *ts)
{
    SSL *ssl;

    pthread_mutex_lock(&ts->lock);
    ssl = SSL_new(ts->ctx);
    pthread_mutex_unlock(&ts->lock);
    return ssl;
}

int tls_server_reload(struct tls_server *ts)
{
    SSL_CTX *next = NULL, *old;
    int rc;

    if (ts->frozen)
        return 0; /* said at start (tls_server_check_readable) */
    rc = tls_server_ctx_new(ts->lc, &next);
    if (rc != 0) {
        log_error("listen %s: the TLS certificate, key or CRLs did not load again: connections "
                  "go on with the ones loaded before",
                  ts->lc->address);
        return rc;
    }
    pthread_mutex_lock(&ts->lock);
    old = ts->ctx;
    ts->ctx = next;
    pthread_mutex_unlock(&ts->lock);
    SSL_CTX_free(old); /* connections that use it hold their own reference */
    return 0;
}

int tls_server_not_after(struct tls_server *ts, int64_t *out)
{
    int rc;

    pthread_mutex_lock(&ts->lock);
    rc = tls_ctx_not_after(ts->ctx, out);
    pthread_mutex_unlock(&ts->lock);
    return rc;
}

void tls_server_free(struct tls_server *ts)
{
    if (ts == NULL)
        return;
    SSL_CTX_free(ts->ctx);
    pthread_mutex_destroy(&ts->lock);
    free(ts);
}
