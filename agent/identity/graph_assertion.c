/* Client assertions (graph_assertion.h). The header depends only on the
 * certificate, so it is encoded once at load; each assertion encodes its
 * claims, signs and joins the parts. OpenSSL never prompts: the key's PEM
 * is parsed with a passphrase callback that refuses, so an encrypted key
 * is an error, not a read from the terminal of a daemon. */
#include "graph_assertion.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "errors.h"
#include "core/clock.h"
#include "core/jsonw.h"
#include "core/secret.h"

/* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" and its NUL. */
#define GRAPH_ASSERTION_UUID_LEN 37

struct graph_assertion {
    EVP_PKEY *key;
    char *header; /* base64url of the header JSON */
};

size_t graph_assertion_base64url(const unsigned char *in, size_t n, char *out, size_t cap)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t need = n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1), o = 0;

    if (need >= cap)
        return need;
    for (size_t i = 0; i < n; i += 3) {
        unsigned long v = (unsigned long)in[i] << 16;
        size_t chars = n - i >= 3 ? 4 : n - i + 1;

        if (i + 1 < n)
            v |= (unsigned long)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        for (size_t c = 0; c < chars; c++)
            out[o++] = abc[(v >> (18 - 6 * c)) & 63];
    }
    out[o] = '\0';
    return o;
}

/* A malloc'd base64url copy of in, or NULL. */
static char *assertion_encode(const unsigned char *in, size_t n)
{
    size_t cap = graph_assertion_base64url(in, n, NULL, 0) + 1;
    char *out = malloc(cap);

    if (out != NULL)
        graph_assertion_base64url(in, n, out, cap);
    return out;
}

/* OpenSSL's reason for its last error ("no start line"), or fallback. */
static const char *assertion_ssl_reason(const char *fallback)
{
    const char *r = ERR_reason_error_string(ERR_peek_last_error());

    return r != NULL ? r : fallback;
}

static int assertion_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static int assertion_read_cert(const char *path, X509 **cert, char *why, size_t cap)
{
    FILE *f = fopen(path, "re");

    if (f == NULL) {
        snprintf(why, cap, "cannot open: %s", strerror(errno));
        return ERR_IO;
    }
    *cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (*cert == NULL) {
        snprintf(why, cap, "no PEM certificate: %s", assertion_ssl_reason("unreadable"));
        return ERR_CONFIG;
    }
    return 0;
}

/* The key of path, read as a secret; what was read is wiped. */
static int assertion_read_key(const char *path, EVP_PKEY **key, char *why, size_t cap)
{
    char *pem = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    int rc = secret_read(path, 1, SECRET_MAX, 0, &pem, &len, why, cap);

    if (rc != 0)
        return rc;
    rc = ERR_NOMEM;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL) {
        snprintf(why, cap, "out of memory");
        goto out;
    }
    rc = ERR_CONFIG;
    *key = PEM_read_bio_PrivateKey(bio, NULL, assertion_no_passphrase, NULL);
    if (*key == NULL) {
        snprintf(why, cap, "no unencrypted PEM private key: %s",
                 assertion_ssl_reason("unreadable"));
        goto out;
    }
    rc = 0;
out:
    BIO_free(bio);
    secret_free(pem, len);
    return rc;
}

/* The header's base64url: it names the certificate by its SHA-256
 * thumbprint, which Entra ID finds the uploaded certificate by. */
static char *assertion_header(X509 *cert)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char thumb[64], json[128];
    int n;

    if (X509_digest(cert, EVP_sha256(), md, &md_len) != 1)
        return NULL;
    graph_assertion_base64url(md, md_len, thumb, sizeof(thumb));
    n = snprintf(json, sizeof(json), "{\"alg\":\"PS256\",\"typ\":\"JWT\",\"x5t#S256\":\"%s\"}",
                 thumb);
    return assertion_encode((const unsigned char *)json, (size_t)n);
}

int graph_assertion_load(const char *cert_file, const char *key_file, struct graph_assertion **out,
                         enum graph_assertion_file *bad, char *why_buf, size_t why_cap)
{
    struct graph_assertion *a = NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int rc;

    *out = NULL;
    *bad = GRAPH_ASSERTION_CERT;
    rc = assertion_read_cert(cert_file, &cert, why_buf, why_cap);
    if (rc != 0)
        goto out;
    *bad = GRAPH_ASSERTION_KEY;
    rc = assertion_read_key(key_file, &key, why_buf, why_cap);
    if (rc != 0)
        goto out;
    rc = ERR_CONFIG;
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
        snprintf(why_buf, why_cap, "an %s key: Entra ID takes RSA keys only (PS256)",
                 EVP_PKEY_get0_type_name(key) != NULL ? EVP_PKEY_get0_type_name(key) : "unknown");
        goto out;
    }
    if (X509_check_private_key(cert, key) != 1) {
        snprintf(why_buf, why_cap, "does not match the certificate in %s", cert_file);
        goto out;
    }
    rc = ERR_NOMEM;
    snprintf(why_buf, why_cap, "out of memory");
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        goto out;
    a->header = assertion_header(cert);
    if (a->header == NULL)
        goto out;
    a->key = key; /* transferred */
    key = NULL;
    *out = a; /* transferred */
    a = NULL;
    rc = 0;
out:
    ERR_clear_error();
    graph_assertion_free(a);
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}

static void assertion_uuid(const unsigned char b[16], char out[GRAPH_ASSERTION_UUID_LEN])
{
    snprintf(out, GRAPH_ASSERTION_UUID_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], (b[6] & 0x0f) | 0x40, b[7], (b[8] & 0x3f) | 0x80, b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
}

/* The signature of tbs (len bytes) in *sig (malloc'd, *sig_len bytes). */
static int assertion_sign_bytes(EVP_PKEY *key, const char *tbs, size_t len, unsigned char **sig,
                                size_t *sig_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int rc = ERR_NOMEM;

    *sig = NULL;
    if (md == NULL)
        goto out;
    rc = ERR_INVALID;
    if (EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0 ||
        EVP_DigestSign(md, NULL, sig_len, (const unsigned char *)tbs, len) != 1)
        goto out;
    rc = ERR_NOMEM;
    *sig = malloc(*sig_len);
    if (*sig == NULL)
        goto out;
    rc = ERR_INVALID;
    if (EVP_DigestSign(md, *sig, sig_len, (const unsigned char *)tbs, len) != 1)
        goto out;
    rc = 0;
out:
    if (rc != 0) {
        free(*sig);
        *sig = NULL;
    }
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    return rc;
}

int graph_assertion_make(const struct graph_assertion *a, const char *aud, const char *client_id,
                         int64_t now_s, const unsigned char jti[16], char **out, size_t *len)
{
    char uuid[GRAPH_ASSERTION_UUID_LEN], *claims = NULL, *signature = NULL, *tbs = NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0, tbs_len = 0, cap = 0;
    struct jsonw w;
    int rc = ERR_NOMEM;

    *out = NULL;
    *len = 0;
    assertion_uuid(jti, uuid);
    jsonw_init(&w, 0);
    jsonw_object_begin(&w);
    jsonw_key_literal(&w, "aud");
    jsonw_cstr(&w, aud);
    jsonw_key_literal(&w, "iss");
    jsonw_cstr(&w, client_id);
    jsonw_key_literal(&w, "sub");
    jsonw_cstr(&w, client_id);
    jsonw_key_literal(&w, "jti");
    jsonw_cstr(&w, uuid);
    jsonw_key_literal(&w, "nbf");
    jsonw_int(&w, now_s);
    jsonw_key_literal(&w, "iat");
    jsonw_int(&w, now_s);
    jsonw_key_literal(&w, "exp");
    jsonw_int(&w, now_s + GRAPH_ASSERTION_LIFE_S);
    jsonw_object_end(&w);
    if (w.err != 0)
        goto out;
    claims = assertion_encode((const unsigned char *)w.buf, w.len);
    if (claims == NULL)
        goto out;
    tbs_len = strlen(a->header) + 1 + strlen(claims);
    tbs = malloc(tbs_len + 1);
    if (tbs == NULL)
        goto out;
    snprintf(tbs, tbs_len + 1, "%s.%s", a->header, claims);
    rc = assertion_sign_bytes(a->key, tbs, tbs_len, &sig, &sig_len);
    if (rc != 0)
        goto out;
    rc = ERR_NOMEM;
    signature = assertion_encode(sig, sig_len);
    if (signature == NULL)
        goto out;
    cap = tbs_len + 1 + strlen(signature) + 1;
    *out = malloc(cap);
    if (*out == NULL)
        goto out;
    *len = (size_t)snprintf(*out, cap, "%s.%s", tbs, signature);
    rc = 0;
out:
    jsonw_free(&w);
    free(claims);
    /* With the signature, the signed part is the bearer assertion itself. */
    if (tbs != NULL)
        secret_free(tbs, strlen(tbs));
    free(sig);
    if (signature != NULL)
        secret_free(signature, strlen(signature));
    return rc;
}

int graph_assertion_sign(const struct graph_assertion *a, const char *aud, const char *client_id,
                         char **out, size_t *len)
{
    unsigned char jti[16];

    *out = NULL;
    *len = 0;
    if (getrandom(jti, sizeof(jti), 0) != (ssize_t)sizeof(jti))
        return ERR_IO;
    return graph_assertion_make(a, aud, client_id, clock_wall_ms() / 1000, jti, out, len);
}

void graph_assertion_free(struct graph_assertion *a)
{
    if (a == NULL)
        return;
    EVP_PKEY_free(a->key);
    free(a->header);
    free(a);
}
