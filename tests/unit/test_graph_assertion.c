/* Graph client assertions: base64url against RFC 4648's vectors (and the
 * two characters it swaps), then with keys and certificates made here: an
 * assertion's three parts decode to the header Microsoft documents (PS256,
 * JWT, x5t#S256 the certificate's SHA-256) and the claims (aud, iss, sub,
 * jti as a version 4 UUID, nbf = iat = now, exp = now + the life), its
 * signature verifies with the certificate's key as RSASSA-PSS, two signed
 * now carry different jtis; refused at load: a missing certificate, a file
 * that is none, a missing or empty key, an EC key, an encrypted key and
 * the key of another certificate, each naming the file at fault. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <json-c/json.h>

#include "errors.h"
#include "core/secret.h"
#include "identity/graph_assertion.h"
#include "unit.h"

static char tmpdir[] = "/tmp/rtr-test-assertion.XXXXXX";

static const struct {
    const char *in, *want;
} b64_cases[] = {
    {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
    {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"},
};

static void test_base64url(void)
{
    char out[32];

    for (size_t i = 0; i < sizeof(b64_cases) / sizeof(b64_cases[0]); i++) {
        size_t n = graph_assertion_base64url((const unsigned char *)b64_cases[i].in,
                                             strlen(b64_cases[i].in), out, sizeof(out));

        CHECK_INT(n, strlen(b64_cases[i].want));
        CHECK_STR(b64_cases[i].in, str_make(out, strlen(out)), b64_cases[i].want);
    }
    /* What does not fit is not written; the length needed comes back. */
    out[0] = 'x';
    CHECK_INT(graph_assertion_base64url((const unsigned char *)"foobar", 6, out, 8), 8);
    CHECK(out[0] == 'x');
}

/* base64url (no padding) to bytes in out; returns the length or -1. */
static int b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    char buf[2048] = {0};
    size_t len = 0;
    int got;

    if (n + 4 > sizeof(buf) || (n + 3) / 4 * 3 > cap)
        return -1;
    for (size_t i = 0; i < n; i++)
        buf[len++] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    while (len % 4 != 0)
        buf[len++] = '=';
    got = EVP_DecodeBlock(out, (const unsigned char *)buf, (int)len);
    if (got < 0)
        return -1;
    return got - (n % 4 == 2 ? 2 : n % 4 == 3 ? 1 : 0);
}

static void write_key(const char *path, EVP_PKEY *key, const char *pass)
{
    FILE *f = fopen(path, "w");

    if (f == NULL ||
        PEM_write_PrivateKey(f, key, pass != NULL ? EVP_aes_256_cbc() : NULL, (unsigned char *)pass,
                             pass != NULL ? (int)strlen(pass) : 0, NULL, NULL) != 1) {
        perror(path);
        exit(2);
    }
    fclose(f);
    chmod(path, 0600);
}

/* A self-signed certificate for key, in path. */
static X509 *write_cert(const char *path, EVP_PKEY *key)
{
    X509 *x = X509_new();
    FILE *f = fopen(path, "w");

    if (x == NULL || f == NULL || fchmod(fileno(f), 0600) == -1) {
        perror(path);
        exit(2);
    }
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"rtr-agent test", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    if (X509_sign(x, key, EVP_sha256()) == 0 || PEM_write_X509(f, x) != 1) {
        fprintf(stderr, "cannot make %s\n", path);
        exit(2);
    }
    fclose(f);
    return x;
}

static struct json_object *part_json(const char *p, size_t n)
{
    unsigned char buf[1024];
    int len = b64url_decode(p, n, buf, sizeof(buf) - 1);

    if (len < 0)
        return NULL;
    buf[len] = '\0';
    return json_tokener_parse((const char *)buf);
}

static const char *member(struct json_object *o, const char *name)
{
    struct json_object *v = NULL;

    return json_object_object_get_ex(o, name, &v) ? json_object_get_string(v) : NULL;
}

static int64_t member_int(struct json_object *o, const char *name)
{
    struct json_object *v = NULL;

    return json_object_object_get_ex(o, name, &v) && json_object_is_type(v, json_type_int)
               ? json_object_get_int64(v)
               : -1;
}

/* The assertion's parts decode to what Microsoft documents and its
 * signature verifies with cert's key. */
static void check_assertion(const char *jwt, size_t len, X509 *cert, int64_t now, const char *jti)
{
    const char *dot1 = memchr(jwt, '.', len), *dot2;
    struct json_object *header = NULL, *claims = NULL;
    unsigned char md[EVP_MAX_MD_SIZE], sig[1024];
    unsigned int md_len = 0;
    char thumb[64];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int sig_len;

    CHECK(strlen(jwt) == len);
    if (dot1 == NULL || (dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - jwt))) == NULL) {
        UNIT_FAIL("not three parts: %s", jwt);
        EVP_MD_CTX_free(ctx);
        return;
    }
    CHECK(strspn(jwt, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") == len);
    header = part_json(jwt, (size_t)(dot1 - jwt));
    claims = part_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    CHECK(header != NULL && claims != NULL);
    CHECK_INT(json_object_object_length(header), 3);
    CHECK_STR("alg", str_make(member(header, "alg"), 5), "PS256");
    CHECK_STR("typ", str_make(member(header, "typ"), 3), "JWT");
    X509_digest(cert, EVP_sha256(), md, &md_len);
    graph_assertion_base64url(md, md_len, thumb, sizeof(thumb));
    CHECK(member(header, "x5t#S256") != NULL && strcmp(member(header, "x5t#S256"), thumb) == 0);
    CHECK(member(claims, "aud") != NULL &&
          strcmp(member(claims, "aud"), "https://login.example/tenant-x/oauth2/v2.0/token") == 0);
    CHECK(member(claims, "iss") != NULL && strcmp(member(claims, "iss"), "client \"7\"") == 0);
    CHECK(member(claims, "sub") != NULL && strcmp(member(claims, "sub"), "client \"7\"") == 0);
    if (jti != NULL)
        CHECK(member(claims, "jti") != NULL && strcmp(member(claims, "jti"), jti) == 0);
    CHECK(member(claims, "jti") != NULL && strlen(member(claims, "jti")) == 36 &&
          member(claims, "jti")[14] == '4');
    if (now >= 0) {
        CHECK_INT(member_int(claims, "nbf"), now);
        CHECK_INT(member_int(claims, "iat"), now);
        CHECK_INT(member_int(claims, "exp"), now + GRAPH_ASSERTION_LIFE_S);
    }
    sig_len = b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - jwt), sig, sizeof(sig));
    CHECK(sig_len == 256);
    CHECK(EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, X509_get0_pubkey(cert)) == 1 &&
          EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
          EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) > 0 &&
          EVP_DigestVerify(ctx, sig, sig_len > 0 ? (size_t)sig_len : 0, (const unsigned char *)jwt,
                           (size_t)(dot2 - jwt)) == 1);
    EVP_MD_CTX_free(ctx);
    json_object_put(header);
    json_object_put(claims);
}

static const char aud[] = "https://login.example/tenant-x/oauth2/v2.0/token";
static const char client[] = "client \"7\"";

static void test_assertion(const char *cert_path, const char *key_path, X509 *cert)
{
    static const unsigned char jti[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                          0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
    struct graph_assertion *a = NULL;
    enum graph_assertion_file bad;
    char why[512], *jwt = NULL, *jwt2 = NULL;
    size_t len = 0, len2 = 0;

    CHECK_INT(graph_assertion_load(cert_path, key_path, &a, &bad, why, sizeof(why)), 0);
    if (a == NULL) {
        UNIT_FAIL("load: %s", why);
        return;
    }
    CHECK_INT(graph_assertion_make(a, aud, client, 1700000000, jti, &jwt, &len), 0);
    if (jwt != NULL)
        check_assertion(jwt, len, cert, 1700000000, "00112233-4455-4677-8899-aabbccddeeff");
    secret_free(jwt, len);
    /* Signed now: fresh jtis, the wall clock. */
    CHECK_INT(graph_assertion_sign(a, aud, client, &jwt, &len), 0);
    CHECK_INT(graph_assertion_sign(a, aud, client, &jwt2, &len2), 0);
    if (jwt != NULL && jwt2 != NULL) {
        struct json_object *c1, *c2;
        const char *d1 = strchr(jwt, '.'), *d2 = strchr(jwt2, '.');
        int64_t now = (int64_t)time(NULL);

        check_assertion(jwt, len, cert, -1, NULL);
        c1 = part_json(d1 + 1, (size_t)(strchr(d1 + 1, '.') - d1 - 1));
        c2 = part_json(d2 + 1, (size_t)(strchr(d2 + 1, '.') - d2 - 1));
        CHECK(c1 != NULL && c2 != NULL && member(c1, "jti") != NULL && member(c2, "jti") != NULL &&
              strcmp(member(c1, "jti"), member(c2, "jti")) != 0);
        CHECK(member_int(c1, "nbf") >= now - 5 && member_int(c1, "nbf") <= now + 5);
        json_object_put(c1);
        json_object_put(c2);
    }
    secret_free(jwt, len);
    secret_free(jwt2, len2);
    graph_assertion_free(a);
}

static const struct {
    const char *name, *cert, *key; /* file names in tmpdir */
    enum graph_assertion_file bad;
    int rc;
    const char *why; /* its start */
} load_cases[] = {
    {"no certificate", "missing.pem", "rsa.key", GRAPH_ASSERTION_CERT, ERR_IO, "cannot open: "},
    {"a key as certificate", "rsa.key", "rsa.key", GRAPH_ASSERTION_CERT, ERR_CONFIG,
     "no PEM certificate: "},
    {"no key", "rsa.pem", "missing.key", GRAPH_ASSERTION_KEY, ERR_IO, "cannot open: "},
    {"empty key", "rsa.pem", "empty.key", GRAPH_ASSERTION_KEY, ERR_CONFIG, "empty"},
    {"certificate as key", "rsa.pem", "rsa.pem", GRAPH_ASSERTION_KEY, ERR_CONFIG,
     "no unencrypted PEM private key: "},
    {"encrypted key", "rsa.pem", "encrypted.key", GRAPH_ASSERTION_KEY, ERR_CONFIG,
     "no unencrypted PEM private key: "},
    {"EC key", "ec.pem", "ec.key", GRAPH_ASSERTION_KEY, ERR_CONFIG,
     "an EC key: Entra ID takes RSA keys only (PS256)"},
    {"another certificate's key", "rsa.pem", "other.key", GRAPH_ASSERTION_KEY, ERR_CONFIG,
     "does not match the certificate in "},
};

static void test_load_errors(void)
{
    char cert[256], key[256], why[512];

    for (size_t i = 0; i < sizeof(load_cases) / sizeof(load_cases[0]); i++) {
        struct graph_assertion *a = (struct graph_assertion *)1;
        enum graph_assertion_file bad = !load_cases[i].bad;
        int rc;

        snprintf(cert, sizeof(cert), "%s/%s", tmpdir, load_cases[i].cert);
        snprintf(key, sizeof(key), "%s/%s", tmpdir, load_cases[i].key);
        why[0] = '\0';
        rc = graph_assertion_load(cert, key, &a, &bad, why, sizeof(why));
        if (rc != load_cases[i].rc || bad != load_cases[i].bad || a != NULL ||
            strncmp(why, load_cases[i].why, strlen(load_cases[i].why)) != 0)
            UNIT_FAIL("%s: rc %d bad %d why '%s'", load_cases[i].name, rc, (int)bad, why);
        else
            unit_passed++;
        graph_assertion_free(a);
    }
}

int main(void)
{
    char path[256], key_path[256];
    EVP_PKEY *rsa, *other, *ec;
    X509 *cert, *ec_cert;

    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    unsetenv("JOURNAL_STREAM");
    test_base64url();
    rsa = EVP_RSA_gen(2048);
    other = EVP_RSA_gen(2048);
    ec = EVP_EC_gen("P-256");
    if (rsa == NULL || other == NULL || ec == NULL) {
        fprintf(stderr, "cannot make keys\n");
        return 2;
    }
#define TMP(name) (snprintf(path, sizeof(path), "%s/%s", tmpdir, name), path)
    write_key(TMP("rsa.key"), rsa, NULL);
    snprintf(key_path, sizeof(key_path), "%s", path);
    cert = write_cert(TMP("rsa.pem"), rsa);
    write_key(TMP("other.key"), other, NULL);
    write_key(TMP("encrypted.key"), rsa, "passphrase");
    write_key(TMP("ec.key"), ec, NULL);
    ec_cert = write_cert(TMP("ec.pem"), ec);
    close(open(TMP("empty.key"), O_WRONLY | O_CREAT | O_TRUNC, 0600));
    test_assertion(TMP("rsa.pem"), key_path, cert);
    test_load_errors();
    for (const char *const *f =
             (const char *const[]){"rsa.key", "rsa.pem", "other.key", "encrypted.key", "ec.key",
                                   "ec.pem", "empty.key", NULL};
         *f != NULL; f++)
        unlink(TMP(*f));
#undef TMP
    CHECK_INT(rmdir(tmpdir), 0);
    X509_free(cert);
    X509_free(ec_cert);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(other);
    EVP_PKEY_free(ec);
    return unit_report("test_graph_assertion");
}
