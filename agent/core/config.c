/* The agent's configuration (config.h): one table per section, read by
 * the engine (config_engine.h), with the rules that span keys in each
 * section's check function. */
#include "config.h"

#include <errno.h>
#include <libgen.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>
#include <ldap.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config_engine.h"
#include "sockaddr.h"
#include "errors.h"
#include "json_file.h"
#include "mail.h"

#define MIB (1024LL * 1024)

/* CFG_ENUM stores an int into enum fields. */
_Static_assert(sizeof(enum listen_proto) == sizeof(int), "enum size");
_Static_assert(sizeof(enum framing_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum listen_tls_version) == sizeof(int), "enum size");
_Static_assert(sizeof(enum oversize_policy) == sizeof(int), "enum size");
_Static_assert(sizeof(enum identity_source) == sizeof(int), "enum size");
_Static_assert(sizeof(enum graph_cloud) == sizeof(int), "enum size");
_Static_assert(sizeof(enum graph_attribute) == sizeof(int), "enum size");
_Static_assert(sizeof(enum ldapdir_attribute) == sizeof(int), "enum size");
_Static_assert(sizeof(enum dispatch_mode) == sizeof(int), "enum size");

/* ---- listen[] ---- */

static const char *const proto_names[] = {"udp", "tcp", "tls", "relp", "http", NULL};
static const char *const framing_names[] = {"auto", "lf", "octet", NULL};
static const char *const tls_version_names[] = {"1.2", "1.3", NULL};
static const char *const http_auth_names[] = {"api_key", "client_cert", NULL};

/* The keys of a TLS stream, on proto "tls" or on "relp" with "tls": true. */
static const char *const tls_keys[] = {
    "cert",        "key",     "client_ca",    "handshake_timeout_s",
    "min_version", "ciphers", "ciphersuites", "allowed_names",
    "crl_file",    NULL};

/* allowed_names: the engine has no list of plain strings; this is one, with
 * what makes a name a certificate could carry. */
static void set_allowed_names(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                              struct json_object *v, char *base)
{
    struct listen_config *l = (struct listen_config *)base;
    char sub[JSON_FILE_PATH_MAX], got[JSON_FILE_DESCRIBE_MAX];
    size_t n;

    (void)k;
    if (v == NULL) /* null: the same as leaving it out */
        return;
    if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0) {
        json_file_error(&ld->rep, path, "expected an array of at least 1 name, got %s",
                        json_file_describe(v, got, sizeof(got)));
        return;
    }
    n = json_object_array_length(v);
    l->allowed_names = cfg_alloc(n, sizeof(*l->allowed_names));
    l->n_allowed_names = n;
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(v, i);
        const char *s = json_object_get_string(e);
        size_t bad = 0;

        json_file_index_path(sub, path, i);
        if (!json_object_is_type(e, json_type_string) || s[0] == '\0') {
            json_file_error(&ld->rep, sub, "expected a certificate name, got %s",
                            json_file_describe(e, got, sizeof(got)));
            continue;
        }
        while (s[bad] != '\0' && (unsigned char)s[bad] >= 0x20 && s[bad] != 0x7f)
            bad++;
        if ((size_t)json_object_get_string_len(e) != bad) {
            json_file_error(&ld->rep, sub, "contains a control character");
            continue;
        }
        /* Matching is exact: a pattern would silently match nothing but a
         * certificate that carries the very same pattern. */
        if (s[0] == '*') {
            json_file_error(&ld->rep, sub,
                            "wildcards are not supported: list each name a client certificate "
                            "carries");
            continue;
        }
        l->allowed_names[i] = cfg_strdup(s);
    }
}

static void release_allowed_names(const struct cfg_key *k, char *base)
{
    struct listen_config *l = (struct listen_config *)base;

    (void)k;
    for (size_t i = 0; i < l->n_allowed_names; i++)
        free(l->allowed_names[i]);
    free(l->allowed_names);
}

static const struct cfg_type listen_names_type = {"array of strings", set_allowed_names,
                                                  release_allowed_names};

/* OpenSSL's reason for its last failure ("no cipher match"), without the
 * code and library names that mean nothing in a config error. */
static const char *openssl_reason(void)
{
    const char *reason = ERR_reason_error_string(ERR_peek_last_error());

    return reason != NULL ? reason : "unknown reason";
}

/* Counts the suites a TLS server built as ctx would negotiate, by version
 * class: what the cipher strings select less what the security level and
 * the missing PSK/SRP set-up rule out. */
static void count_usable_suites(SSL_CTX *ctx, size_t *tls12, size_t *tls13)
{
    SSL *ssl = SSL_new(ctx);
    STACK_OF(SSL_CIPHER) *usable = ssl != NULL ? SSL_get1_supported_ciphers(ssl) : NULL;

    *tls12 = *tls13 = 0;
    for (int i = 0; i < sk_SSL_CIPHER_num(usable); i++) {
        if (strcmp(SSL_CIPHER_get_version(sk_SSL_CIPHER_value(usable, i)), "TLSv1.3") == 0)
            (*tls13)++;
        else
            (*tls12)++;
    }
    sk_SSL_CIPHER_free(usable);
    SSL_free(ssl);
}

/* "ciphers" and "ciphersuites" must be strings OpenSSL accepts, leaving a
 * suite it would use for each version the listener takes: else every
 * client would fail its handshake, and only once one connects. */
static void check_listen_suites(struct cfg_loader *ld, const char *path,
                                const struct listen_config *l)
{
    char sub[JSON_FILE_PATH_MAX];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    size_t tls12, tls13;
    int errors = ld->rep.errors;

    if (ctx == NULL) {
        json_file_error(&ld->rep, path, "cannot create a TLS context to check the ciphers: %s",
                        openssl_reason());
        goto out;
    }
    SSL_CTX_set_min_proto_version(ctx, l->min_version == LISTEN_TLS_1_3 ? TLS1_3_VERSION
                                                                        : TLS1_2_VERSION);
    if (SSL_CTX_set_cipher_list(ctx, l->ciphers) != 1) {
        json_file_key_path(sub, path, "ciphers");
        json_file_error(&ld->rep, sub, "OpenSSL takes no TLS 1.2 cipher from \"%s\" (%s)",
                        l->ciphers, openssl_reason());
        ERR_clear_error();
    }
    if (l->ciphersuites != NULL && SSL_CTX_set_ciphersuites(ctx, l->ciphersuites) != 1) {
        json_file_key_path(sub, path, "ciphersuites");
        json_file_error(&ld->rep, sub, "OpenSSL takes no TLS 1.3 cipher suite from \"%s\" (%s)",
                        l->ciphersuites, openssl_reason());
        ERR_clear_error();
    }
    if (ld->rep.errors != errors)
        goto out;
    count_usable_suites(ctx, &tls12, &tls13);
    if (tls12 == 0 && l->min_version == LISTEN_TLS_1_2) {
        json_file_key_path(sub, path, "ciphers");
        json_file_error(&ld->rep, sub,
                        "\"%s\" selects no TLS 1.2 cipher OpenSSL would use here (below its "
                        "security level, or anonymous, null or PSK ciphers)",
                        l->ciphers);
    }
    if (tls13 == 0 && l->ciphersuites != NULL) {
        json_file_key_path(sub, path, "ciphersuites");
        json_file_error(&ld->rep, sub, "\"%s\" selects no TLS 1.3 cipher suite OpenSSL would use",
                        l->ciphersuites);
    }
out:
    ERR_clear_error();
    SSL_CTX_free(ctx);
}

/* The transports that take the TLS keys (with "tls": true but for "tls"). */
#define LISTEN_TLS_PROTOS ((1u << LISTEN_TLS) | (1u << LISTEN_RELP) | (1u << LISTEN_HTTP))

/* A json path: non-empty segments separated by '.' (event.h's json.<path>). */
static int config_json_path_ok(const char *p)
{
    size_t len = strlen(p);

    if (len == 0 || p[0] == '.' || p[len - 1] == '.')
        return 0;
    return strstr(p, "..") == NULL;
}

/* An HTTP listener: a key to check clients with, and plain HTTP only where
 * nobody else can read the key off the wire unless explicitly forced. */
static void check_listen_http(struct cfg_loader *ld, const char *path, struct json_object *obj,
                              const struct listen_config *l)
{
    char sub[JSON_FILE_PATH_MAX];

    if (l->auth == LISTEN_AUTH_API_KEY && !json_file_has_key(obj, "api_key_file")) {
        json_file_key_path(sub, path, "api_key_file");
        json_file_error(&ld->rep, sub, "required with proto \"http\" (and \"auth\": \"api_key\")");
    }
    if (l->auth == LISTEN_AUTH_CLIENT_CERT && (!l->tls || l->client_ca == NULL)) {
        json_file_key_path(sub, path, "auth");
        json_file_error(&ld->rep, sub,
                        "\"client_cert\" needs \"tls\": true and \"client_ca\" (the CA that "
                        "issues the clients' certificates)");
    }
    if (l->auth == LISTEN_AUTH_CLIENT_CERT && json_file_has_key(obj, "api_key_file")) {
        json_file_key_path(sub, path, "api_key_file");
        json_file_error(&ld->rep, sub,
                        "not used with \"auth\": \"client_cert\" (the certificate is the "
                        "credential): remove it, or use \"auth\": \"api_key\"");
    }
    if (l->idempotency_field != NULL && !config_json_path_ok(l->idempotency_field)) {
        json_file_key_path(sub, path, "idempotency_field");
        json_file_error(&ld->rep, sub,
                        "a path into the alert's JSON: keys and array indexes separated by '.', "
                        "none empty (\"SystemAlertId\", \"result.sid\")");
    }
    if (!l->tls && !l->plain_beyond_loopback && l->address != NULL &&
        !sockaddr_is_loopback((const struct sockaddr *)&l->addr)) {
        json_file_key_path(sub, path, "tls");
        json_file_error(&ld->rep, sub,
                        "plain HTTP beyond loopback sends the API key in clear: set \"tls\": "
                        "true (or \"plain_beyond_loopback\": true behind a TLS proxy)");
    }
}

static void check_listen(struct cfg_loader *ld, const char *path, struct json_object *obj,
                         char *base)
{
    /* Keys that only some transports use; elsewhere they are mistakes. */
    static const struct {
        const char *key;
        unsigned protos; /* 1 << enum listen_proto */
    } only[] = {
        {"framing", (1u << LISTEN_TCP) | (1u << LISTEN_TLS)},
        {"tls", (1u << LISTEN_RELP) | (1u << LISTEN_HTTP)},
        {"cert", LISTEN_TLS_PROTOS},
        {"key", LISTEN_TLS_PROTOS},
        {"client_ca", LISTEN_TLS_PROTOS},
        {"handshake_timeout_s", LISTEN_TLS_PROTOS},
        {"min_version", LISTEN_TLS_PROTOS},
        {"ciphers", LISTEN_TLS_PROTOS},
        {"ciphersuites", LISTEN_TLS_PROTOS},
        {"allowed_names", LISTEN_TLS_PROTOS},
        {"crl_file", LISTEN_TLS_PROTOS},
        {"auth", 1u << LISTEN_HTTP},
        {"idempotency_field", 1u << LISTEN_HTTP},
        {"api_key_file", 1u << LISTEN_HTTP},
        {"api_key_header", 1u << LISTEN_HTTP},
        {"max_body_bytes", 1u << LISTEN_HTTP},
        {"max_header_bytes", 1u << LISTEN_HTTP},
        {"request_timeout_s", 1u << LISTEN_HTTP},
        {"max_alerts", 1u << LISTEN_HTTP},
        {"plain_beyond_loopback", 1u << LISTEN_HTTP},
    };
    /* Keys that act on verified client certificates. */
    static const char *const verify_keys[] = {"allowed_names", "crl_file"};
    struct listen_config *l = (struct listen_config *)base;
    char sub[JSON_FILE_PATH_MAX], list[64];
    const char *with = l->proto == LISTEN_TLS ? "proto \"tls\"" : "\"tls\": true";
    struct json_object *tls;

    if (!json_file_has_key(obj, "proto"))
        return;
    for (size_t i = 0; i < sizeof(only) / sizeof(only[0]); i++) {
        size_t n = 0;

        if (!json_file_has_key(obj, only[i].key) || (only[i].protos & (1u << l->proto)))
            continue;
        list[0] = '\0';
        for (int p = 0; proto_names[p] != NULL; p++) {
            if (only[i].protos & (1u << p))
                n += (size_t)snprintf(list + n, sizeof(list) - n, "%s\"%s\"", n ? " or " : "",
                                      proto_names[p]);
        }
        json_file_key_path(sub, path, only[i].key);
        json_file_error(&ld->rep, sub, "not used with proto \"%s\" (only with %s)",
                        proto_names[l->proto], list);
    }
    if (!json_file_has_key(obj, "rcvbuf") && l->proto != LISTEN_UDP)
        l->rcvbuf = LISTEN_STREAM_RCVBUF;
    /* A "tls" that is not a boolean is reported already; the keys that
     * depend on it cannot be judged. */
    if (json_object_object_get_ex(obj, "tls", &tls) && !json_object_is_type(tls, json_type_boolean))
        return;
    if (l->proto == LISTEN_TLS)
        l->tls = 1;
    for (size_t i = 0;
         (l->proto == LISTEN_RELP || l->proto == LISTEN_HTTP) && !l->tls && tls_keys[i] != NULL;
         i++) {
        if (!json_file_has_key(obj, tls_keys[i]))
            continue;
        json_file_key_path(sub, path, tls_keys[i]);
        json_file_error(&ld->rep, sub, "only used with \"tls\": true");
    }
    if (l->tls) {
        if (!json_file_has_key(obj, "cert")) {
            json_file_key_path(sub, path, "cert");
            json_file_error(&ld->rep, sub, "required with %s", with);
        }
        if (!json_file_has_key(obj, "key")) {
            json_file_key_path(sub, path, "key");
            json_file_error(&ld->rep, sub, "required with %s", with);
        }
        for (size_t i = 0; i < sizeof(verify_keys) / sizeof(verify_keys[0]); i++) {
            if (!json_file_has_key(obj, verify_keys[i]) || l->client_ca != NULL)
                continue;
            json_file_key_path(sub, path, verify_keys[i]);
            json_file_error(&ld->rep, sub,
                            "needs client_ca (it applies to the client certificates verified "
                            "against it)");
        }
        if (l->ciphers != NULL)
            check_listen_suites(ld, path, l);
    }
    if (l->proto == LISTEN_HTTP)
        check_listen_http(ld, path, obj, l);
}

#define LO(f) offsetof(struct listen_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key listen_keys[] = {
    {.name = "proto", .type = &CFG_ENUM, .offset = LO(proto), .choices = proto_names, .required = 1,
     .doc = "transport (tls: RFC 5425; relp: RELP, as rsyslog's omrelp sends, acknowledged once "
            "the message is decided and its alert spooled; http: webhooks POST JSON alerts to "
            "/v1/alerts/{source}, answered 202 once they are spooled)"},
    {.name = "address", .type = &CFG_ADDRESS, .offset = LO(address), .aux_offset = LO(addr),
     .count_offset = LO(addr_len), .required = 1,
     .doc = "numeric \"IPv4:port\" or \"[IPv6]:port\"; port 0 binds any free port"},
    {.name = "framing", .type = &CFG_ENUM, .offset = LO(framing), .choices = framing_names,
     .def = "\"auto\"",
     .doc = "tcp/tls: RFC 6587 framing, LF trailers, octet counting or auto-detected per frame"},
    {.name = "tls", .type = &CFG_BOOL, .offset = LO(tls), .def = "false",
     .doc = "relp, http: over TLS (as rsyslog imrelp's tls=\"on\"), with the tls keys below"},
    {.name = "cert", .type = &CFG_PATH, .offset = LO(cert),
     .doc = "tls, relp with tls: server certificate chain (PEM); required there"},
    {.name = "key", .type = &CFG_PATH, .offset = LO(key),
     .doc = "tls, relp with tls: server private key (PEM); required there"},
    {.name = "client_ca", .type = &CFG_PATH, .offset = LO(client_ca),
     .doc = "tls, relp with tls: require client certificates issued by this CA (PEM)"},
    {.name = "handshake_timeout_s", .type = &CFG_INT, .offset = LO(handshake_timeout_s), .min = 1,
     .max = 300, .def = "10",
     .doc = "tls, relp with tls: seconds a client has to finish the handshake"},
    {.name = "min_version", .type = &CFG_ENUM, .offset = LO(min_version),
     .choices = tls_version_names, .def = "\"1.2\"",
     .doc = "tls, relp with tls: the lowest TLS version a client may use"},
    {.name = "ciphers", .type = &CFG_STRING, .offset = LO(ciphers),
     .def = "\"" LISTEN_TLS12_CIPHERS "\"",
     .doc = "tls, relp with tls: TLS 1.2 ciphers, an OpenSSL cipher string (the default: ECDHE "
            "with AES-GCM or ChaCha20-Poly1305 only)"},
    {.name = "ciphersuites", .type = &CFG_STRING, .offset = LO(ciphersuites),
     .doc = "tls, relp with tls: TLS 1.3 cipher suites, OpenSSL's colon-separated list; "
            "default OpenSSL's"},
    {.name = "allowed_names", .type = &listen_names_type,
     .doc = "tls, relp with tls, with client_ca: a client certificate must carry one of these "
            "names as a subjectAltName DNS (any case) or URI entry or, only when it has neither, "
            "as its subject CN (any case); exact, no wildcards; default any name"},
    {.name = "crl_file", .type = &CFG_PATH, .offset = LO(crl_file),
     .doc = "tls, relp with tls, with client_ca: PEM CRLs of the CAs that issue client "
            "certificates, read at start and at each SIGHUP; refused: a revoked client "
            "certificate, and any whose issuer has no unexpired CRL here (the leaf only: "
            "intermediate CAs are not checked)"},
    {.name = "allow", .type = &CFG_CIDR_LIST, .offset = LO(allow), .count_offset = LO(n_allow),
     .doc = "source networks allowed (\"10.0.0.0/8\", \"2001:db8::/32\"); empty = all"},
    {.name = "rcvbuf", .type = &CFG_INT, .offset = LO(rcvbuf), .min = 0, .max = 256 * MIB,
     .doc = "SO_RCVBUF bytes; 0 = system default (tcp, tls, relp: Linux autotuning up to "
            "tcp_rmem's max); default 0 for udp, 65536 for the others: what the kernel "
            "acknowledges while inputs are paused"},
    {.name = "port_file", .type = &CFG_PATH, .offset = LO(port_file),
     .doc = "write the bound port here once listening (tests bind port 0)"},
    {.name = "auth", .type = &CFG_ENUM, .offset = LO(auth), .choices = http_auth_names,
     .def = "\"api_key\"",
     .doc = "http: \"api_key\": clients send api_key_file's key in api_key_header or as the "
            "query parameter code (the orchestrator's form); \"client_cert\": a client "
            "certificate client_ca verified is the credential (needs tls and client_ca)"},
    {.name = "api_key_file", .type = &CFG_PATH, .offset = LO(api_key_file),
     .doc = "http: the API key clients must send (a file or systemd credential, 16..4096 "
            "bytes), read at start and at each SIGHUP; required with auth \"api_key\""},
    {.name = "api_key_header", .type = &CFG_STRING, .offset = LO(api_key_header),
     .def = "\"" LISTEN_HTTP_API_KEY_HEADER "\"", .doc = "http: the request header that carries the API key"},
    {.name = "max_body_bytes", .type = &CFG_SIZE, .offset = LO(max_body_bytes), .min = 2,
     .max = 64 * MIB, .def = "1048576", .doc = "http: larger request bodies get 413"},
    {.name = "max_header_bytes", .type = &CFG_SIZE, .offset = LO(max_header_bytes), .min = 1024,
     .max = MIB, .def = "16384", .doc = "http: the request line and headers at most"},
    {.name = "request_timeout_s", .type = &CFG_INT, .offset = LO(request_timeout_s), .min = 1,
     .max = 3600, .def = "30",
     .doc = "http: seconds a request has to arrive whole (from the accept, or from the "
            "answer before it on a keep-alive connection), a connection may stay silent, and a "
            "request may wait for its alerts to be spooled before 503"},
    {.name = "max_alerts", .type = &CFG_INT, .offset = LO(max_alerts), .min = 1, .max = 100000,
     .def = "1000", .doc = "http: JSON objects in one request body at most (else 400)"},
    {.name = "plain_beyond_loopback", .type = &CFG_BOOL, .offset = LO(plain_beyond_loopback),
     .def = "false",
     .doc = "http: allow plain HTTP on an address other than loopback (behind a TLS proxy)"},
    {.name = "idempotency_field", .type = &CFG_STRING, .offset = LO(idempotency_field),
     .doc = "http: a path into each alert's JSON (\"SystemAlertId\") whose value identifies "
            "the alert when its request has no Idempotency-Key header, so that a webhook "
            "sent again does not respond twice; default none"},
    {0},
};
/* clang-format on */
#undef LO
static const struct cfg_section listen_section = {listen_keys, sizeof(struct listen_config),
                                                  check_listen};

/* ---- limits ---- */

static const char *const oversize_names[] = {"truncate", "reject", NULL};

static void check_limits(struct cfg_loader *ld, const char *path, struct json_object *obj,
                         char *base)
{
    struct limits_config *l = (struct limits_config *)base;
    /* The framer may hold a whole frame plus its octet count and trailer. */
    size_t floor = l->max_message_bytes + FRAMING_MAX_LEN_DIGITS + 2;
    char sub[JSON_FILE_PATH_MAX];

    if (!json_file_has_key(obj, "max_connection_buffer")) {
        l->max_connection_buffer = 4 * l->max_message_bytes;
    } else if (l->max_connection_buffer < floor) {
        json_file_key_path(sub, path, "max_connection_buffer");
        json_file_error(&ld->rep, sub, "must be at least max_message_bytes + %d (%zu), got %zu",
                        FRAMING_MAX_LEN_DIGITS + 2, floor, l->max_connection_buffer);
    }
}

#define LI(f) offsetof(struct limits_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key limits_keys[] = {
    /* RFC 5424 6.1: receivers must take 480 octets (2048 should); 16 MiB is
     * far past any real alarm and still bounds a connection's memory. */
    {.name = "max_message_bytes", .type = &CFG_SIZE, .offset = LI(max_message_bytes), .min = 480,
     .max = 16 * MIB, .def = "65536", .doc = "longest message accepted"},
    {.name = "oversize", .type = &CFG_ENUM, .offset = LI(oversize), .choices = oversize_names,
     .def = "\"truncate\"", .doc = "what happens to longer messages"},
    {.name = "max_connections", .type = &CFG_INT, .offset = LI(max_connections), .min = 1,
     .max = 1000000, .def = "1024", .doc = "open connections per listener"},
    {.name = "max_connections_per_source", .type = &CFG_INT,
     .offset = LI(max_connections_per_source), .min = 0, .max = 1000000, .def = "64",
     .doc = "open connections per listener from one source address (tcp, tls, relp); 0 = no "
            "limit but max_connections"},
    {.name = "idle_timeout_s", .type = &CFG_INT, .offset = LI(idle_timeout_s), .min = 0,
     .max = 86400, .def = "300", .doc = "seconds before a silent connection is closed; 0 = never"},
    {.name = "frame_timeout_s", .type = &CFG_INT, .offset = LI(frame_timeout_s), .min = 0,
     .max = 86400, .def = "60",
     .doc = "tcp, tls: seconds a message that began to arrive has to arrive whole (a trickle "
            "resets no idle timeout); 0 = no limit"},
    {.name = "max_connection_buffer", .type = &CFG_SIZE, .offset = LI(max_connection_buffer),
     .min = 0, .max = 256 * MIB,
     .doc = "input bytes buffered per connection; default 4 x max_message_bytes"},
    {.name = "queue_messages", .type = &CFG_SIZE, .offset = LI(queue_messages), .min = 1,
     .max = 16 * MIB, .def = "256",
     .doc = "decision records (one per message that produced alerts) queued between the "
            "workers and the delivery thread; inputs pause above it"},
    {.name = "drain_timeout_s", .type = &CFG_INT, .offset = LI(drain_timeout_s), .min = 0,
     .max = 300, .def = "5",
     .doc = "at a stop, seconds to wait for senders to close and for spool space before exiting"},
    {.name = "regex_match_limit", .type = &CFG_INT, .offset = LI(regex_match_limit), .min = 1,
     .max = 100000000, .def = "100000", .doc = "PCRE2 match limit per mapping regex"},
    {.name = "regex_depth_limit", .type = &CFG_INT, .offset = LI(regex_depth_limit), .min = 1,
     .max = 100000000, .def = "10000", .doc = "PCRE2 depth limit per mapping regex"},
    {.name = "regex_jit", .type = &CFG_BOOL, .offset = LI(regex_jit), .def = "true",
     .doc = "JIT-compile mapping regexes (several times faster); false runs PCRE2's "
            "interpreter, which allows MemoryDenyWriteExecute=yes in the unit"},
    {.name = "correlation_max_bytes", .type = &CFG_SIZE, .offset = LI(correlation_max_bytes),
     .min = 4096, .max = (int64_t)1 << 32, .def = "16777216",
     .doc = "memory for the counts of recent alerts per user, host and user and rule that "
            "policies' alerts_for conditions read; the least recently seen keys go first"},
    {0},
};
/* clang-format on */
#undef LI
static const struct cfg_section limits_section = {limits_keys, 0, check_limits};

/* ---- identity ---- */

static const char *const identity_names[] = {"static", "graph", "ldap", NULL};

const char *config_identity_name(enum identity_source src)
{
    return identity_names[src];
}
static const char *const cloud_names[] = {"global", "usgov", "usgov-dod", "china", NULL};
static const char *const attribute_names[] = {"mail", "userPrincipalName", NULL};

/* Token and Graph hosts per national cloud, in enum graph_cloud order. */
static const struct {
    const char *authority, *graph;
} cloud_urls[] = {
    {"https://login.microsoftonline.com", "https://graph.microsoft.com"},
    {"https://login.microsoftonline.us", "https://graph.microsoft.us"},
    {"https://login.microsoftonline.us", "https://dod-graph.microsoft.us"},
    {"https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"},
};

/* One credential, the one way the token request authenticates: a client
 * secret, or a certificate with its key (graph_assertion.h). Two would
 * leave which one is used, and so which to rotate, to a guess. */
static void check_graph_credential(struct cfg_loader *ld, const char *path,
                                   const struct graph_config *g)
{
    int secret = g->client_secret_file != NULL, cert = g->client_certificate_file != NULL,
        key = g->client_key_file != NULL;
    char sub[JSON_FILE_PATH_MAX];

    if (secret && (cert || key)) {
        snprintf(sub, sizeof(sub), "%s.%s", path,
                 cert ? "client_certificate_file" : "client_key_file");
        json_file_error(&ld->rep, sub,
                        "client_secret_file is set too: set either client_secret_file, or "
                        "client_certificate_file and client_key_file");
    } else if (cert != key) {
        snprintf(sub, sizeof(sub), "%s.%s", path,
                 cert ? "client_key_file" : "client_certificate_file");
        json_file_error(&ld->rep, sub, "required with %s",
                        cert ? "client_certificate_file" : "client_key_file");
    } else if (!secret && !cert) {
        json_file_error(&ld->rep, path,
                        "no credential: set client_secret_file, or client_certificate_file and "
                        "client_key_file");
    }
}

static void check_graph(struct cfg_loader *ld, const char *path, struct json_object *obj,
                        char *base)
{
    struct graph_config *g = (struct graph_config *)base;

    if (obj != NULL)
        check_graph_credential(ld, path, g);
    if (g->authority_url == NULL)
        g->authority_url = cfg_strdup(cloud_urls[g->cloud].authority);
    if (g->graph_url == NULL)
        g->graph_url = cfg_strdup(cloud_urls[g->cloud].graph);
}

#define GO(f) offsetof(struct graph_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key graph_keys[] = {
    {.name = "tenant_id", .type = &CFG_STRING, .offset = GO(tenant_id), .required = 1,
     .doc = "Entra ID tenant (GUID or domain)"},
    {.name = "client_id", .type = &CFG_STRING, .offset = GO(client_id), .required = 1,
     .doc = "application (client) id of the app registration"},
    {.name = "client_secret_file", .type = &CFG_PATH, .offset = GO(client_secret_file),
     .doc = "file holding the client secret, e.g. a systemd credential under "
            "/run/credentials/rtr-agent.service/; or, instead, client_certificate_file and "
            "client_key_file"},
    {.name = "client_certificate_file", .type = &CFG_PATH, .offset = GO(client_certificate_file),
     .doc = "certificate credential instead of a client secret: the PEM certificate uploaded "
            "to the app registration (RSA)"},
    {.name = "client_key_file", .type = &CFG_PATH, .offset = GO(client_key_file),
     .doc = "its PEM private key, unencrypted, read as a secret: e.g. a systemd credential "
            "under /run/credentials/rtr-agent.service/"},
    {.name = "cloud", .type = &CFG_ENUM, .offset = GO(cloud), .choices = cloud_names,
     .def = "\"global\"", .doc = "national cloud"},
    {.name = "attribute", .type = &CFG_ENUM, .offset = GO(attribute), .choices = attribute_names,
     .def = "\"mail\"", .doc = "user attribute sent as the email"},
    {.name = "authority_url", .type = &CFG_URL, .offset = GO(authority_url),
     .doc = "token endpoint host; default: the cloud's"},
    {.name = "graph_url", .type = &CFG_URL, .offset = GO(graph_url),
     .doc = "Graph API host; default: the cloud's"},
    {.name = "ca_file", .type = &CFG_PATH, .offset = GO(ca_file),
     .doc = "extra CA bundle for the token and Graph hosts (PEM); system CAs always apply"},
    {.name = "max_concurrent", .type = &CFG_INT, .offset = GO(max_concurrent), .min = 1, .max = 64,
     .def = "4", .doc = "Graph requests in flight"},
    {.name = "timeout_s", .type = &CFG_INT, .offset = GO(timeout_s), .min = 1, .max = 300,
     .def = "30", .doc = "seconds per Graph request"},
    {0},
};
/* clang-format on */
#undef GO
static const struct cfg_section graph_section = {graph_keys, 0, check_graph};

/* ---- identity.ldap ---- */

static const char *const ldapdir_attr_names[] = {"mail", "userPrincipalName", NULL};

/* The length of an ldap:// or ldaps:// scheme at the start of s (any
 * case, as libldap takes it), or 0. *tls: ldaps. */
static size_t uri_ldap_scheme(const char *s, int *tls)
{
    *tls = strncasecmp(s, "ldaps://", 8) == 0;
    if (*tls)
        return 8;
    return strncasecmp(s, "ldap://", 7) == 0 ? 7 : 0;
}

/* Why s is not "ldap[s]://host[:port]" (NULL when it is; a lone trailing
 * '/' is allowed): libldap would take a path as a DN, a query as
 * attributes and a blank as the start of a second URI, each silently. */
static const char *uri_ldap_problem(const char *s)
{
    int tls;
    size_t n = uri_ldap_scheme(s, &tls);
    const char *p = s + n;
    char *end;
    long port;

    if (n == 0)
        return "expected an ldaps:// or ldap:// URI";
    for (const char *c = s; *c != '\0'; c++) {
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return "contains a blank or a control character (one URI per entry)";
    }
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (close == NULL || close == p + 1)
            return "expected an IPv6 address inside [ ]";
        p = close + 1;
    } else {
        size_t host = strcspn(p, ":/?#@");
        if (host == 0)
            return "names no host";
        p += host;
    }
    if (*p == ':') {
        port = (p[1] >= '0' && p[1] <= '9') ? strtol(p + 1, &end, 10) : 0;
        if (port < 1 || port > 65535)
            return "expected a port from 1 to 65535 after ':'";
        p = end;
    }
    if (*p == '\0' || (p[0] == '/' && p[1] == '\0'))
        return NULL;
    if (*p == '/' || *p == '?')
        return "has a path or DN part: the search base is base_dn";
    return "expected ldaps://host[:port] or ldap://host[:port]";
}

/* uris: the engine has no list of plain strings; this is one of URIs. */
static void set_ldap_uris(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                          struct json_object *v, char *base)
{
    struct ldapdir_config *l = (struct ldapdir_config *)base;
    char sub[JSON_FILE_PATH_MAX], got[JSON_FILE_DESCRIBE_MAX];
    size_t n;

    (void)k;
    if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0 ||
        json_object_array_length(v) > LDAPDIR_MAX_URIS) {
        json_file_error(&ld->rep, path, "expected an array of 1 to %d URIs, got %s",
                        LDAPDIR_MAX_URIS, json_file_describe(v, got, sizeof(got)));
        return;
    }
    n = json_object_array_length(v);
    l->uris = cfg_alloc(n, sizeof(*l->uris));
    l->n_uris = n;
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(v, i);
        const char *s = json_object_get_string(e), *why;

        json_file_index_path(sub, path, i);
        if (!json_object_is_type(e, json_type_string) ||
            (size_t)json_object_get_string_len(e) != strlen(s)) {
            json_file_error(&ld->rep, sub, "expected an ldaps:// or ldap:// URI, got %s",
                            json_file_describe(e, got, sizeof(got)));
            continue;
        }
        why = uri_ldap_problem(s);
        if (why != NULL) {
            json_file_error(&ld->rep, sub, "%s, got %s", why,
                            json_file_describe(e, got, sizeof(got)));
            continue;
        }
        l->uris[i] = cfg_strdup(s);
    }
}

static void release_ldapdir_uris(const struct cfg_key *k, char *base)
{
    struct ldapdir_config *l = (struct ldapdir_config *)base;

    (void)k;
    for (size_t i = 0; i < l->n_uris; i++)
        free(l->uris[i]);
    free(l->uris);
}

static const struct cfg_type ldapdir_uris_type = {"array of URIs", set_ldap_uris,
                                                  release_ldapdir_uris};

/* Whether s parses as an LDAPv3 DN (RFC 4514), as libldap would send it
 * (the empty DN, the root DSE, is no search base); else reports it at
 * path. libldap's own reason ("Decoding error") says nothing more. */
static int dn_valid(struct cfg_loader *ld, const char *path, const char *s)
{
    LDAPDN dn = NULL;
    int rc = ldap_str2dn(s, &dn, LDAP_DN_FORMAT_LDAPV3);

    ldap_dnfree(dn);
    if (rc == LDAP_SUCCESS && s[0] != '\0')
        return 1;
    json_file_error(&ld->rep, path,
                    "not a distinguished name (RFC 4514: \"dc=corp,dc=example,dc=com\")");
    return 0;
}

/* domains: NetBIOS domain name -> base DN, names unique in any case. */
static void set_ldap_domains(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                             struct json_object *v, char *base)
{
    struct ldapdir_config *l = (struct ldapdir_config *)base;
    char sub[JSON_FILE_PATH_MAX], got[JSON_FILE_DESCRIBE_MAX];
    size_t n = 0;

    (void)k;
    if (v == NULL)
        return;
    if (!json_object_is_type(v, json_type_object)) {
        json_file_error(&ld->rep, path,
                        "expected an object of NetBIOS domain names to base DNs, got %s",
                        json_file_describe(v, got, sizeof(got)));
        return;
    }
    l->domains = cfg_alloc((size_t)json_object_object_length(v) + 1, sizeof(*l->domains));
    json_object_object_foreach(v, name, dn)
    {
        const char *s = json_object_get_string(dn);
        int dup = 0;

        json_file_key_path(sub, path, name);
        for (size_t i = 0; i < n; i++)
            dup |= strcasecmp(l->domains[i].name, name) == 0;
        if (name[0] == '\0' || strchr(name, '\\') != NULL) {
            json_file_error(&ld->rep, sub, "expected a NetBIOS domain name (as in DOMAIN\\user)");
            continue;
        }
        if (dup) {
            json_file_error(&ld->rep, sub, "listed twice (domain names are compared in any case)");
            continue;
        }
        if (!json_object_is_type(dn, json_type_string) ||
            (size_t)json_object_get_string_len(dn) != strlen(s)) {
            json_file_error(&ld->rep, sub, "expected a base DN, got %s",
                            json_file_describe(dn, got, sizeof(got)));
            continue;
        }
        if (!dn_valid(ld, sub, s))
            continue;
        l->domains[n].name = cfg_strdup(name);
        l->domains[n].base_dn = cfg_strdup(s);
        n++;
    }
    l->n_domains = n;
}

static void release_ldap_domains(const struct cfg_key *k, char *base)
{
    struct ldapdir_config *l = (struct ldapdir_config *)base;

    (void)k;
    for (size_t i = 0; i < l->n_domains; i++) {
        free(l->domains[i].name);
        free(l->domains[i].base_dn);
    }
    free(l->domains);
}

static const struct cfg_type ldapdir_domains_type = {"object", set_ldap_domains,
                                                     release_ldap_domains};

/* A warning about a key, in the form of the loader's errors but not
 * counted: the file still loads. */
static void cfg_warn(struct cfg_loader *ld, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void cfg_warn(struct cfg_loader *ld, const char *path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    json_file_vreport(LOG_LVL_WARNING, ld->rep.file, path, fmt, ap);
    va_end(ap);
}

/* One credential, as for Graph: a simple bind (bind_dn and its password)
 * or SASL EXTERNAL (the TLS client certificate); a client certificate and
 * its key come as a pair. */
static void check_ldap_credential(struct cfg_loader *ld, const char *path,
                                  const struct ldapdir_config *l)
{
    int dn = l->bind_dn != NULL, pw = l->bind_password_file != NULL,
        cert = l->client_certificate_file != NULL, key = l->client_key_file != NULL;
    char sub[JSON_FILE_PATH_MAX];

    if (cert != key) {
        json_file_key_path(sub, path, cert ? "client_key_file" : "client_certificate_file");
        json_file_error(&ld->rep, sub, "required with %s",
                        cert ? "client_certificate_file" : "client_key_file");
    }
    if (l->sasl_external) {
        if (dn || pw) {
            json_file_key_path(sub, path, dn ? "bind_dn" : "bind_password_file");
            json_file_error(&ld->rep, sub,
                            "sasl_external is set too: set either bind_dn and "
                            "bind_password_file, or sasl_external");
        }
        if (!cert && !key) {
            json_file_key_path(sub, path, "client_certificate_file");
            json_file_error(&ld->rep, sub, "required with sasl_external");
            json_file_key_path(sub, path, "client_key_file");
            json_file_error(&ld->rep, sub, "required with sasl_external");
        }
        return;
    }
    if (dn != pw) {
        json_file_key_path(sub, path, dn ? "bind_password_file" : "bind_dn");
        json_file_error(&ld->rep, sub, "required with %s", dn ? "bind_dn" : "bind_password_file");
    } else if (!dn) {
        json_file_error(&ld->rep, path,
                        "no credential: set bind_dn and bind_password_file, or sasl_external with "
                        "client_certificate_file and client_key_file");
    }
}

static void check_ldap(struct cfg_loader *ld, const char *path, struct json_object *obj, char *base)
{
    struct ldapdir_config *l = (struct ldapdir_config *)base;
    char sub[JSON_FILE_PATH_MAX];
    size_t plain = 0;
    int tls;

    if (obj == NULL)
        return;
    check_ldap_credential(ld, path, l);
    if (l->base_dn != NULL) {
        json_file_key_path(sub, path, "base_dn");
        (void)dn_valid(ld, sub, l->base_dn);
    }
    /* user@domain is AD's other name for a bind account; anything else
     * must be a DN, or the server refuses every bind. */
    if (l->bind_dn != NULL && strchr(l->bind_dn, '=') != NULL) {
        json_file_key_path(sub, path, "bind_dn");
        (void)dn_valid(ld, sub, l->bind_dn);
    }
    for (size_t i = 0; i < l->n_uris; i++)
        plain += l->uris[i] != NULL && uri_ldap_scheme(l->uris[i], &tls) > 0 && !tls;
    if (!l->insecure_plaintext)
        return;
    json_file_key_path(sub, path, "insecure_plaintext");
    if (plain == 0) {
        cfg_warn(ld, sub, "has no effect: every URI is ldaps://");
    } else if (l->sasl_external) {
        json_file_error(&ld->rep, sub,
                        "sasl_external authenticates with the TLS client certificate: it needs "
                        "TLS on every URI");
    } else {
        cfg_warn(ld, sub, "the bind password and lookups cross the network unencrypted");
    }
}

#define LD(f) offsetof(struct ldapdir_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key ldapdir_keys[] = {
    {.name = "uris", .type = &ldapdir_uris_type, .required = 1,
     .doc = "directory servers, 1 to 8, tried in order (failover): \"ldaps://dc1.corp.example."
            "com\" (636; 3269 for the Global Catalog) or \"ldap://dc1.corp.example.com\" (389, "
            "3268), which always starts TLS (StartTLS) unless insecure_plaintext; host[:port] "
            "only, the name the server's certificate carries; setting it selects \"ldap\""},
    {.name = "base_dn", .type = &CFG_STRING, .offset = LD(base_dn), .required = 1,
     .doc = "search base, e.g. \"dc=corp,dc=example,dc=com\"; on a Global Catalog port, the "
            "forest root, so that every domain's users are found"},
    {.name = "domains", .type = &ldapdir_domains_type,
     .doc = "NetBIOS domain to base DN, e.g. {\"CORP\": \"dc=corp,dc=example,dc=com\"}: "
            "DOMAIN\\user is searched under its domain's base DN (names in any case), and a "
            "domain not listed is not found; empty: DOMAIN\\ is ignored and base_dn searched"},
    {.name = "bind_dn", .type = &CFG_STRING, .offset = LD(bind_dn),
     .doc = "the service account's DN or user@domain (simple bind, with bind_password_file); "
            "it needs read access to the users' attributes only"},
    {.name = "bind_password_file", .type = &CFG_PATH, .offset = LD(bind_password_file),
     .doc = "file holding the service account's password (a trailing line end is dropped), "
            "e.g. a systemd credential under /run/credentials/rtr-agent.service/; read once at "
            "start (restart to change it); never logged"},
    {.name = "sasl_external", .type = &CFG_BOOL, .offset = LD(sasl_external), .def = "false",
     .doc = "bind with SASL EXTERNAL (the TLS client certificate: client_certificate_file and "
            "client_key_file) instead of bind_dn and a password"},
    {.name = "client_certificate_file", .type = &CFG_PATH, .offset = LD(client_certificate_file),
     .doc = "TLS client certificate (PEM), with client_key_file; required with sasl_external. "
            "Read once at start, before the agent drops its privileges (restart to change it)"},
    {.name = "client_key_file", .type = &CFG_PATH, .offset = LD(client_key_file),
     .doc = "its PEM private key, unencrypted; read once at start like the certificate (root "
            "may be its only reader)"},
    {.name = "ca_file", .type = &CFG_PATH, .offset = LD(ca_file),
     .doc = "CA bundle (PEM) the servers' certificates must chain to (default: the system "
            "CAs); certificates and host names are always verified. Read once at start"},
    {.name = "insecure_plaintext", .type = &CFG_BOOL, .offset = LD(insecure_plaintext),
     .def = "false",
     .doc = "ldap:// URIs without StartTLS: the password and the lookups travel in clear "
            "(check warns); for a test lab only"},
    {.name = "attribute", .type = &CFG_ENUM, .offset = LD(attribute),
     .choices = ldapdir_attr_names, .def = "\"mail\"",
     .doc = "user attribute sent as the email"},
    {.name = "exclude_disabled", .type = &CFG_BOOL, .offset = LD(exclude_disabled),
     .def = "true",
     .doc = "disabled accounts (userAccountControl bit 2) are not found"},
    {.name = "connect_timeout_s", .type = &CFG_INT, .offset = LD(connect_timeout_s), .min = 1,
     .max = 60, .def = "5",
     .doc = "seconds to connect, start TLS and bind, per URI; then the next URI is tried"},
    {.name = "timeout_s", .type = &CFG_INT, .offset = LD(timeout_s), .min = 1, .max = 300,
     .def = "10",
     .doc = "seconds per search; a server that does not answer in time is disconnected"},
    {.name = "idle_timeout_s", .type = &CFG_INT, .offset = LD(idle_timeout_s), .min = 0,
     .max = 86400, .def = "300",
     .doc = "seconds without a search before a connection is closed; 0 = never"},
    {.name = "max_connections", .type = &CFG_INT, .offset = LD(max_connections), .min = 1,
     .max = 16, .def = "2",
     .doc = "connections to the directory at most; another opens when each has 8 searches "
            "waiting"},
    {0},
};
/* clang-format on */
#undef LD
static const struct cfg_section ldapdir_section = {ldapdir_keys, 0, check_ldap};

/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key static_dir_keys[] = {
    {.name = "file", .type = &CFG_PATH, .offset = offsetof(struct static_dir_config, file),
     .required = 1, .doc = "CSV of identifier,email (RFC 4180 quoting, # comments)"},
    {0},
};
/* clang-format on */
static const struct cfg_section static_dir_section = {static_dir_keys, 0, NULL};

#define CA(f) offsetof(struct identity_cache_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key cache_keys[] = {
    {.name = "ttl_s", .type = &CFG_INT, .offset = CA(ttl_s), .min = 0, .max = 7 * 86400,
     .def = "3600", .doc = "seconds a resolved email is reused"},
    {.name = "negative_ttl_s", .type = &CFG_INT, .offset = CA(negative_ttl_s), .min = 0,
     .max = 7 * 86400, .def = "300", .doc = "seconds a \"not found\" is reused"},
    {.name = "max_entries", .type = &CFG_SIZE, .offset = CA(max_entries), .min = 1,
     .max = 100000000, .def = "100000",
     .doc = "resolved emails kept; \"not found\" answers have a quarter of this (at least 1) "
            "of their own, so made-up users never evict an email"},
    {0},
};
/* clang-format on */
#undef CA
static const struct cfg_section cache_section = {cache_keys, 0, NULL};

static void check_identity(struct cfg_loader *ld, const char *path, struct json_object *obj,
                           char *base)
{
    struct identity_config *id = (struct identity_config *)base;
    const int configured[] = {
        [IDENTITY_STATIC] = id->static_dir.file != NULL,
        [IDENTITY_GRAPH] = id->graph.tenant_id != NULL,
        [IDENTITY_LDAP] = id->ldap.n_uris > 0,
    };
    /* The local file first, then the on-premises directory, then the
     * cloud: the cheaper and more specific answer first. */
    static const enum identity_source natural[] = {IDENTITY_STATIC, IDENTITY_LDAP, IDENTITY_GRAPH};
    char sub[JSON_FILE_PATH_MAX];

    if (!json_file_has_key(obj, "order")) {
        int *order = cfg_alloc(sizeof(natural) / sizeof(natural[0]), sizeof(*order));
        size_t n = 0;

        for (size_t i = 0; i < sizeof(natural) / sizeof(natural[0]); i++) {
            if (configured[natural[i]])
                order[n++] = (int)natural[i];
        }
        cfg_store_ptr((char *)&id->order, order);
        id->n_order = n;
        return;
    }
    for (size_t i = 0; i < id->n_order; i++) {
        if (configured[id->order[i]])
            continue;
        snprintf(sub, sizeof(sub), "%s.order[%zu]", path, i);
        json_file_error(&ld->rep, sub, "\"%s\" is listed but identity.%s is not configured",
                        identity_names[id->order[i]], identity_names[id->order[i]]);
    }
}

#define IO(f) offsetof(struct identity_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key identity_keys[] = {
    {.name = "order", .type = &CFG_ENUM_LIST, .offset = IO(order), .count_offset = IO(n_order),
     .min = 1, .choices = identity_names,
     .doc = "resolvers in the order tried; default: those configured, in the order static, "
            "ldap, graph"},
    {.name = "static", .type = &CFG_OBJECT, .offset = IO(static_dir),
     .section = &static_dir_section, .doc = "the static directory"},
    {.name = "graph", .type = &CFG_OBJECT, .offset = IO(graph), .section = &graph_section,
     .doc = "Microsoft Graph lookups (client credentials)"},
    {.name = "ldap", .type = &CFG_OBJECT, .offset = IO(ldap), .section = &ldapdir_section,
     .doc = "Active Directory (or another LDAP directory) lookups, verified TLS"},
    {.name = "cache", .type = &CFG_OBJECT, .offset = IO(cache), .section = &cache_section,
     .doc = "resolved identities, in memory"},
    {0},
};
/* clang-format on */
#undef IO
static const struct cfg_section identity_section = {identity_keys, 0, check_identity};

/* ---- dispatch, spool, status, audit ---- */

static const char *const dispatch_names[] = {"dry-run", "direct", "orchestrator", NULL};

static void check_dispatch(struct cfg_loader *ld, const char *path, struct json_object *obj,
                           char *base)
{
    /* What each mode cannot work without, in enum dispatch_mode order. */
    static const char *const needs[][6] = {
        [DISPATCH_DRY_RUN] = {NULL},
        [DISPATCH_DIRECT] = {"url", "api_key_file", NULL},
        [DISPATCH_ORCHESTRATOR] = {"url", "api_key_file", "source", "orch_id", "org_id", NULL},
    };
    struct dispatch_config *d = (struct dispatch_config *)base;
    char sub[JSON_FILE_PATH_MAX];

    for (size_t i = 0; needs[d->mode][i] != NULL; i++) {
        if (json_file_has_key(obj, needs[d->mode][i]))
            continue;
        json_file_key_path(sub, path, needs[d->mode][i]);
        json_file_error(&ld->rep, sub, "required with mode \"%s\"", dispatch_names[d->mode]);
    }
    if (d->retry_min_s > d->retry_max_s) {
        json_file_key_path(sub, path, "retry_min_s");
        json_file_error(&ld->rep, sub, "must not exceed retry_max_s (%d), got %d", d->retry_max_s,
                        d->retry_min_s);
    }
}

/* RFC 9110 5.6.2: a field name is a token of these and letters and digits. */
static int http_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A header name is checked here, not when a request is made: a CR, LF, ':'
 * or space in it makes every request malformed, and each would be retried
 * forever. What is not a string is left to CFG_STRING's own message. */
static void set_header_name(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                            struct json_object *v, char *base)
{
    char got[JSON_FILE_DESCRIBE_MAX], bad[16];
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v), i = 0;

    while (json_object_is_type(v, json_type_string) && i < len && http_tchar((unsigned char)s[i]))
        i++;
    if (!json_object_is_type(v, json_type_string) || i == len) {
        CFG_STRING.set(ld, k, path, v, base);
        return;
    }
    if (s[i] > ' ' && s[i] < 0x7f)
        snprintf(bad, sizeof(bad), "'%c'", s[i]);
    else
        snprintf(bad, sizeof(bad), "byte 0x%02x", (unsigned char)s[i]);
    json_file_error(&ld->rep, path,
                    "expected an HTTP header name (letters, digits and !#$%%&'*+-.^_`|~), got %s: "
                    "%s is not allowed",
                    json_file_describe(v, got, sizeof(got)), s[i] == ' ' ? "a space" : bad);
}

static void release_header_name(const struct cfg_key *k, char *base)
{
    CFG_STRING.release(k, base);
}

/* Named as a string in the key reference: it is one, with the rule above. */
static const struct cfg_type CFG_HEADER_NAME = {"string", set_header_name, release_header_name};

#define DF(f) offsetof(struct dispatch_fields, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key fields_keys[] = {
    {.name = "event", .type = &CFG_STRING, .offset = DF(event), .def = "\"event\"",
     .doc = "body field of the event name"},
    {.name = "email", .type = &CFG_STRING, .offset = DF(email), .def = "\"email\"",
     .doc = "body field of the user's email"},
    {.name = "id", .type = &CFG_STRING, .offset = DF(id), .def = "\"id\"",
     .doc = "body field of the idempotency key"},
    {.name = "occurred_at", .type = &CFG_STRING, .offset = DF(occurred_at),
     .def = "\"occurred_at\"", .doc = "body field of when the alert was received (RFC 3339)"},
    {0},
};
/* clang-format on */
#undef DF
static const struct cfg_section fields_section = {fields_keys, 0, NULL};

#define DO(f) offsetof(struct dispatch_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key dispatch_keys[] = {
    {.name = "mode", .type = &CFG_ENUM, .offset = DO(mode), .choices = dispatch_names,
     .def = "\"dry-run\"",
     .doc = "how alerts are sent; dry-run decides and audits but sends nothing"},
    {.name = "url", .type = &CFG_URL, .offset = DO(url),
     .doc = "direct: the POST URL; orchestrator: the base URL"},
    {.name = "api_key_file", .type = &CFG_PATH, .offset = DO(api_key_file),
     .doc = "file holding the API key (orchestrator: the code); never logged"},
    {.name = "api_key_header", .type = &CFG_HEADER_NAME, .offset = DO(api_key_header),
     .def = "\"X-API-Key\"", .doc = "direct: header that carries the API key"},
    {.name = "fields", .type = &CFG_OBJECT, .offset = DO(fields), .section = &fields_section,
     .doc = "direct: names of the JSON body's fields"},
    {.name = "ca_file", .type = &CFG_PATH, .offset = DO(ca_file),
     .doc = "extra CA bundle for outbound TLS (PEM); system CAs always apply"},
    {.name = "source", .type = &CFG_STRING, .offset = DO(source),
     .doc = "orchestrator: {source} in /api/event/{source}/alert"},
    {.name = "orch_id", .type = &CFG_STRING, .offset = DO(orch_id),
     .doc = "orchestrator: the orchid parameter"},
    {.name = "org_id", .type = &CFG_STRING, .offset = DO(org_id),
     .doc = "orchestrator: the orgId parameter"},
    {.name = "connect_timeout_s", .type = &CFG_INT, .offset = DO(connect_timeout_s), .min = 1,
     .max = 300, .def = "10", .doc = "seconds to connect"},
    {.name = "timeout_s", .type = &CFG_INT, .offset = DO(timeout_s), .min = 1, .max = 600,
     .def = "30", .doc = "seconds per request, all included"},
    {.name = "retry_min_s", .type = &CFG_INT, .offset = DO(retry_min_s), .min = 1, .max = 3600,
     .def = "1", .doc = "first retry delay (exponential backoff, full jitter)"},
    {.name = "retry_max_s", .type = &CFG_INT, .offset = DO(retry_max_s), .min = 1, .max = 86400,
     .def = "600", .doc = "longest retry delay; also caps Retry-After"},
    {.name = "dedup_window_s", .type = &CFG_INT, .offset = DO(dedup_window_s), .min = 0,
     .max = 86400, .def = "600", .doc = "an exact duplicate inside this window is not resent"},
    {.name = "dedup_max_bytes", .type = &CFG_SIZE, .offset = DO(dedup_max_bytes),
     .min = 4096, .max = 1024 * MIB, .def = "16777216",
     .doc = "memory for the window's keys, 128 bytes each; when full the oldest goes first"},
    {.name = "max_concurrent", .type = &CFG_INT, .offset = DO(max_concurrent), .min = 1, .max = 256,
     .def = "16", .doc = "SafeTitan requests in flight; the others wait their turn"},
    {0},
};
/* clang-format on */
#undef DO
static const struct cfg_section dispatch_section = {dispatch_keys, 0, check_dispatch};

static void check_spool(struct cfg_loader *ld, const char *path, struct json_object *obj,
                        char *base)
{
    struct spool_config *s = (struct spool_config *)base;
    static const char name[] = "/dead-letter.jsonl";

    (void)ld;
    (void)path;
    (void)obj;
    if (s->dir != NULL && s->dead_letter == NULL) {
        s->dead_letter = cfg_alloc(strlen(s->dir) + sizeof(name), 1);
        sprintf(s->dead_letter, "%s%s", s->dir, name);
    }
}

#define SO(f) offsetof(struct spool_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key spool_keys[] = {
    {.name = "dir", .type = &CFG_PATH, .offset = SO(dir),
     .doc = "journal folder; required unless dispatch.mode is \"dry-run\""},
    {.name = "max_bytes", .type = &CFG_SIZE, .offset = SO(max_bytes), .min = 1 * MIB,
     .max = 1024 * 1024 * MIB, .def = "1073741824",
     .doc = "size cap of the segments plus the dead-letter file; when reached, new alerts are "
            "held (inputs pause), counted and logged"},
    {.name = "fsync_delay_ms", .type = &CFG_INT, .offset = SO(fsync_delay_ms), .min = 0,
     .max = 1000, .def = "50",
     .doc = "appends are fsynced in batches at once; one not durable within this is counted "
            "(spool_slow_syncs) and logged"},
    {.name = "dead_letter", .type = &CFG_PATH, .offset = SO(dead_letter),
     .doc = "JSON lines of permanently failed alerts, each synced before the spool lets the "
            "alert go; counts against max_bytes; reopened on SIGHUP; default "
            "dir/dead-letter.jsonl"},
    {0},
};
/* clang-format on */
#undef SO
static const struct cfg_section spool_section = {spool_keys, 0, check_spool};

#define ST(f) offsetof(struct status_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key status_keys[] = {
    {.name = "address", .type = &CFG_ADDRESS, .offset = ST(address), .aux_offset = ST(addr),
     .count_offset = ST(addr_len),
     .doc = "HTTP status endpoint, e.g. \"127.0.0.1:9514\"; absent = off"},
    {.name = "port_file", .type = &CFG_PATH, .offset = ST(port_file),
     .doc = "write the bound port here (tests bind port 0)"},
    {.name = "unhealthy_after_s", .type = &CFG_INT, .offset = ST(unhealthy_after_s), .min = 0,
     .max = 7 * 86400, .def = "600",
     .doc = "/healthz answers 503 once dispatch has failed this long with no 2xx while an alert "
            "waits to be sent again; 0 = never"},
    {0},
};
/* clang-format on */
#undef ST
static const struct cfg_section status_section = {status_keys, 0, NULL};

/* A key means hashing: saying otherwise next to it is a contradiction. */
static void check_audit(struct cfg_loader *ld, const char *path, struct json_object *obj,
                        char *base)
{
    struct audit_config *a = (struct audit_config *)base;
    char sub[JSON_FILE_PATH_MAX];

    if (a->hash_key_file == NULL)
        return;
    if (json_file_has_key(obj, "hash_users") && !a->hash_users) {
        json_file_key_path(sub, path, "hash_users");
        json_file_error(&ld->rep, sub, "false contradicts %s.hash_key_file, which hashes users",
                        path);
    }
    a->hash_users = 1;
}

#define AU(f) offsetof(struct audit_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key audit_keys[] = {
    {.name = "file", .type = &CFG_PATH, .offset = AU(file),
     .doc = "JSON lines: each decision and dispatch outcome; absent = none"},
    {.name = "hash_users", .type = &CFG_BOOL, .offset = AU(hash_users), .def = "false",
     .doc = "write user and email as SHA-256 instead of in clear; without hash_key_file this "
            "only pseudonymises (a dictionary of staff emails reverses it): set a key"},
    {.name = "hash_key_file", .type = &CFG_PATH, .offset = AU(hash_key_file),
     .doc = "file holding a secret key (at least 16 bytes, e.g. `openssl rand -hex 32`; a "
            "trailing line end is dropped): user and email are written as HMAC-SHA256 under "
            "it; implies hash_users; never logged"},
    {0},
};
/* clang-format on */
#undef AU
static const struct cfg_section audit_section = {audit_keys, 0, check_audit};

/* ---- smtp ---- */

/* What mail_send would refuse, refused at load: a URL that is not smtp://
 * or smtps:// (or carries a login), a from that is not a bare address (a
 * line break in it would add headers), a login without its password. */
static void check_smtp(struct cfg_loader *ld, const char *path, struct json_object *obj, char *base)
{
    struct smtp_config *m = (struct smtp_config *)base;
    char sub[JSON_FILE_PATH_MAX];
    int loopback;

    if (obj == NULL)
        return;
    if (m->url != NULL && mail_url_parse(m->url, &loopback) != 0) {
        json_file_key_path(sub, path, "url");
        json_file_error(&ld->rep, sub,
                        "expected smtp://host[:port] (STARTTLS) or smtps://host[:port], without "
                        "a user or password, got \"%s\"",
                        m->url);
    }
    if (m->from != NULL && !mail_address_valid(m->from)) {
        json_file_key_path(sub, path, "from");
        json_file_error(&ld->rep, sub,
                        "expected a bare address (local@domain: no name, brackets, spaces or "
                        "control characters)");
    }
    if (m->username != NULL && strpbrk(m->username, "\r\n") != NULL) {
        json_file_key_path(sub, path, "username");
        json_file_error(&ld->rep, sub, "holds a line break");
    }
    if ((m->username != NULL) != (m->password_file != NULL)) {
        json_file_key_path(sub, path, m->username != NULL ? "password_file" : "username");
        json_file_error(&ld->rep, sub, "required with %s",
                        m->username != NULL ? "username" : "password_file");
    }
}

#define SM(f) offsetof(struct smtp_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key smtp_keys[] = {
    {.name = "url", .type = &CFG_STRING, .offset = SM(url), .required = 1,
     .doc = "smtp://host[:port] (STARTTLS required unless the host is loopback) or "
            "smtps://host[:port] (TLS from the start)"},
    {.name = "from", .type = &CFG_STRING, .offset = SM(from), .required = 1,
     .doc = "sender address (envelope and From:), a bare local@domain"},
    {.name = "username", .type = &CFG_STRING, .offset = SM(username),
     .doc = "AUTH as this user (with password_file); absent = no AUTH"},
    {.name = "password_file", .type = &CFG_PATH, .offset = SM(password_file),
     .doc = "file holding the AUTH password, e.g. a systemd credential; never logged"},
    {.name = "ca_file", .type = &CFG_PATH, .offset = SM(ca_file),
     .doc = "extra CA bundle for the server's certificate (PEM); system CAs always apply"},
    {.name = "connect_timeout_s", .type = &CFG_INT, .offset = SM(connect_timeout_s), .min = 1,
     .max = 300, .def = "10", .doc = "seconds to connect"},
    {.name = "timeout_s", .type = &CFG_INT, .offset = SM(timeout_s), .min = 1, .max = 600,
     .def = "60", .doc = "seconds per message, all included"},
    {0},
};
/* clang-format on */
#undef SM
static const struct cfg_section smtp_section = {smtp_keys, 0, check_smtp};

/* ---- approvals ---- */

/* The links approvers click reach the agent's HTTP listener from where
 * they read their mail: an https:// URL (a plain http:// one only on
 * loopback, for a test bench). */
static void check_approvals(struct cfg_loader *ld, const char *path, struct json_object *obj,
                            char *base)
{
    struct approvals_config *a = (struct approvals_config *)base;
    char sub[JSON_FILE_PATH_MAX];

    if (obj == NULL || a->url == NULL)
        return;
    if (strncmp(a->url, "https://", 8) != 0 && strncmp(a->url, "http://127.", 11) != 0 &&
        strncmp(a->url, "http://localhost", 16) != 0 && strncmp(a->url, "http://[::1]", 12) != 0) {
        json_file_key_path(sub, path, "url");
        json_file_error(&ld->rep, sub,
                        "expected https://host[:port] (http:// only on loopback), got \"%s\"",
                        a->url);
    } else if (strpbrk(a->url, "?#\"<> \t\r\n") != NULL) {
        json_file_key_path(sub, path, "url");
        json_file_error(&ld->rep, sub, "must be a plain base URL (no query, quotes or spaces)");
    }
}

#define AP(f) offsetof(struct approvals_config, f)
/* clang-format off */
static const struct cfg_key approvals_keys[] = {
    {.name = "url", .type = &CFG_STRING, .offset = AP(url), .required = 1,
     .doc = "the agent's HTTP listener as approvers reach it (https://host:port): their links "
            "are <url>/v1/approvals/<token>"},
    {0},
};
/* clang-format on */
#undef AP
static const struct cfg_section approvals_section = {approvals_keys, 0, check_approvals};

/* ---- the file ---- */

static const char *const log_level_names[] = {"error", "warning", "info", "debug", NULL};
static const char *const log_format_names[] = {"text", "json", NULL};

static int same_endpoint(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port != 0 && x->sin_port == y->sin_port &&
               x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port != 0 && x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

/* SO_REUSEPORT would let two identical listeners bind and silently split
 * the traffic between them, so duplicates are caught here. TCP and TLS share
 * the stream port space, and so does the status endpoint. */
static void check_endpoints(struct cfg_loader *ld, const struct config *cfg)
{
    char sub[JSON_FILE_PATH_MAX];

    for (size_t j = 0; j < cfg->n_listen; j++) {
        const struct listen_config *b = &cfg->listen[j];

        for (size_t i = 0; i < j; i++) {
            const struct listen_config *a = &cfg->listen[i];

            if ((a->proto == LISTEN_UDP) != (b->proto == LISTEN_UDP) ||
                !same_endpoint(&a->addr, &b->addr))
                continue;
            snprintf(sub, sizeof(sub), "listen[%zu].address", j);
            json_file_error(&ld->rep, sub, "%s is already used by listen[%zu]", b->address, i);
            break;
        }
    }
    for (size_t i = 0; cfg->status.address != NULL && i < cfg->n_listen; i++) {
        if (cfg->listen[i].proto != LISTEN_UDP &&
            same_endpoint(&cfg->status.addr, &cfg->listen[i].addr)) {
            json_file_error(&ld->rep, "status.address", "%s is already used by listen[%zu]",
                            cfg->status.address, i);
            break;
        }
    }
}

static void check_root(struct cfg_loader *ld, const char *path, struct json_object *obj, char *base)
{
    struct config *cfg = (struct config *)base;

    (void)path;
    (void)obj;
    if (cfg->workers == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = cores < 1 ? 1 : cores > 256 ? 256 : (int)cores;
    }
    if (cfg->dispatch.mode != DISPATCH_DRY_RUN && cfg->spool.dir == NULL)
        json_file_error(&ld->rep, "spool.dir", "required when dispatch.mode is \"%s\"",
                        dispatch_names[cfg->dispatch.mode]);
    if (cfg->group != NULL && cfg->user == NULL)
        json_file_error(&ld->rep, "group", "needs \"user\" (the agent drops to both at once)");
    check_endpoints(ld, cfg);
}

#define CO(f) offsetof(struct config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key root_keys[] = {
    {.name = "listen", .type = &CFG_OBJECT_ARRAY, .offset = CO(listen),
     .count_offset = CO(n_listen),
     .min = 1, .section = &listen_section, .required = 1, .doc = "syslog listeners (at least one)"},
    {.name = "limits", .type = &CFG_OBJECT, .offset = CO(limits), .section = &limits_section,
     .doc = "bounds on messages, connections and queues"},
    {.name = "workers", .type = &CFG_INT, .offset = CO(workers), .min = 0, .max = 256, .def = "0",
     .doc = "worker threads; 0 = one per core"},
    {.name = "mappings", .type = &CFG_PATH_LIST, .offset = CO(mappings),
     .count_offset = CO(n_mappings), .doc = "mapping file globs, loaded in this order"},
    {.name = "policies", .type = &CFG_PATH_LIST, .offset = CO(policies),
     .count_offset = CO(n_policies),
     .doc = "response policy file globs (mappings/README.md): risk and recent alerts choose "
            "a priority, each priority runs its actions; none = one SafeTitan event per alert"},
    {.name = "identity", .type = &CFG_OBJECT, .offset = CO(identity), .section = &identity_section,
     .doc = "how user identifiers become email addresses"},
    {.name = "dispatch", .type = &CFG_OBJECT, .offset = CO(dispatch), .section = &dispatch_section,
     .doc = "how SafeTitan is told"},
    {.name = "spool", .type = &CFG_OBJECT, .offset = CO(spool), .section = &spool_section,
     .doc = "the durable journal of alerts not yet delivered"},
    {.name = "status", .type = &CFG_OBJECT, .offset = CO(status), .section = &status_section,
     .doc = "the HTTP status endpoint"},
    {.name = "audit", .type = &CFG_OBJECT, .offset = CO(audit), .section = &audit_section,
     .doc = "the audit log"},
    {.name = "smtp", .type = &CFG_OBJECT, .offset = CO(smtp), .section = &smtp_section,
     .doc = "the mail server email actions go through; absent = no email actions"},
    {.name = "approvals", .type = &CFG_OBJECT, .offset = CO(approvals),
     .section = &approvals_section,
     .doc = "where the links of policies' approval emails point; needed by approval actions"},
    {.name = "log_level", .type = &CFG_STRING, .offset = CO(log_level), .choices = log_level_names,
     .def = "\"info\"", .doc = "least severe level logged"},
    {.name = "log_format", .type = &CFG_STRING, .offset = CO(log_format),
     .choices = log_format_names, .def = "\"text\"",
     .doc = "log lines as text (\"TIME level: message\") or one JSON object each "
            "(time, level, msg) for collectors"},
    {.name = "summary_interval_s", .type = &CFG_INT, .offset = CO(summary_interval_s), .min = 0,
     .max = 86400, .def = "3600",
     .doc = "seconds between one-line summaries of what was received, decided and sent "
            "since the previous one; 0 = none"},
    {.name = "user", .type = &CFG_STRING, .offset = CO(user),
     .doc = "started as root: the user it runs as once its sockets are bound and its keys read"},
    {.name = "group", .type = &CFG_STRING, .offset = CO(group),
     .doc = "with user: the group it runs as; default the user's own group"},
    {0},
};
/* clang-format on */
#undef CO
static const struct cfg_section root_section = {root_keys, 0, check_root};

/* The absolute folder of path (the file itself may be a symlink elsewhere:
 * relative paths follow the name the admin gave, as nginx's do). */
static char *config_folder(const char *path)
{
    char *copy = cfg_strdup(path);
    char *dir = realpath(dirname(copy), NULL);

    free(copy);
    return dir;
}

/* config_load; with partial, a file that parsed as JSON but has key errors
 * is returned too, what did load in place. */
static int config_read(const char *path, int partial, struct config **out)
{
    struct cfg_loader ld = {.rep = {.file = path}};
    struct json_object *root = NULL;
    struct config *cfg = NULL;
    char got[JSON_FILE_DESCRIBE_MAX];
    int rc;

    *out = NULL;
    rc = json_file_read(path, "config", &root);
    if (rc != 0)
        goto out;
    rc = ERR_CONFIG;
    cfg = cfg_alloc(1, sizeof(*cfg));
    cfg->path = cfg_strdup(path);
    cfg->dir = config_folder(path);
    if (cfg->dir == NULL) {
        json_file_error(&ld.rep, "", "cannot resolve its folder: %s", strerror(errno));
        goto out;
    }
    ld.dir = cfg->dir;
    if (!json_object_is_type(root, json_type_object)) {
        json_file_error(&ld.rep, "", "expected a JSON object at the top level, got %s",
                        json_file_describe(root, got, sizeof(got)));
        goto out;
    }
    cfg_parse_section(&ld, "", root, (char *)cfg, &root_section);
    rc = ld.rep.errors > 0 ? ERR_CONFIG : 0;
    if (rc == 0 || partial) {
        *out = cfg;
        cfg = NULL; /* transferred */
    }
out:
    json_object_put(root);
    config_free(cfg);
    return rc;
}

int config_load(const char *path, struct config **out)
{
    return config_read(path, 0, out);
}

int config_load_partial(const char *path, struct config **out)
{
    return config_read(path, 1, out);
}

void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    cfg_release_section(&root_section, (char *)cfg);
    free(cfg->path);
    free(cfg->dir);
    free(cfg);
}

void config_write_reference(FILE *out)
{
    cfg_write_reference(out, &root_section, CFG_REFERENCE_MARKDOWN);
}

void config_write_man_reference(FILE *out)
{
    cfg_write_reference(out, &root_section, CFG_REFERENCE_ROFF);
}
