/* The agent's configuration: loaded from JSON (comments allowed) by one
 * declarative table per section (config.c, read by config_engine.h);
 * every error names the file and the key. The shape of the file is the
 * contract in design.md. The address and network parsers are in
 * config_net.h. */
#ifndef RTR_CONFIG_H
#define RTR_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "config_net.h"
#include "framing.h"

enum listen_proto {
    LISTEN_UDP,
    LISTEN_TCP,
    LISTEN_TLS,
    LISTEN_RELP, /* plain, or over TLS when tls is set */
    LISTEN_HTTP, /* HTTP intake (POST /v1/alerts/{source}), over TLS when tls is set */
};

/* HTTP intake defaults. */
#define LISTEN_HTTP_API_KEY_HEADER "X-API-Key"
#define LISTEN_HTTP_MAX_BODY       (1024 * 1024)

/* The lowest TLS version a listener takes ("min_version"). */
enum listen_tls_version {
    LISTEN_TLS_1_2,
    LISTEN_TLS_1_3,
};

/* TLS 1.2 suites unless "ciphers" says otherwise: ECDHE key exchange
 * (forward secrecy) with an AEAD cipher only, as Mozilla's "intermediate"
 * profile less DHE: no CBC (the Lucky 13 family of padding oracles) and no
 * static-RSA key exchange. */
#define LISTEN_TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"

/* A stream listener's SO_RCVBUF unless set: it bounds what the kernel
 * acknowledges to a sender while the agent has paused reading. */
#define LISTEN_STREAM_RCVBUF 65536

/* How an HTTP listener authenticates a client. */
enum listen_http_auth {
    LISTEN_AUTH_API_KEY,     /* the key in a header or as the code parameter */
    LISTEN_AUTH_CLIENT_CERT, /* a client certificate client_ca verified */
};

struct listen_config {
    enum listen_proto proto;
    char *address; /* "host:port" / "[v6]:port" as written */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    enum framing_mode framing; /* "auto" (default), "lf", "octet"; TCP/TLS only */
    /* Nonzero when the stream is TLS: proto "tls", or "relp" with "tls": true
     * (as rsyslog's imrelp tls="on"). The keys below apply then. */
    int tls;
    char *cert, *key;                    /* TLS: server certificate chain and key (PEM) */
    char *client_ca;                     /* TLS: verify client certificates against this CA */
    int handshake_timeout_s;             /* TLS, default 10 */
    enum listen_tls_version min_version; /* TLS, default "1.2" */
    char *ciphers;      /* TLS 1.2 cipher string (OpenSSL's syntax), default LISTEN_TLS12_CIPHERS */
    char *ciphersuites; /* TLS 1.3 suites; NULL = OpenSSL's */
    /* With client_ca: the names a client certificate must carry, one of them
     * as a SAN dNSName or URI or, without those, as its subject CN. */
    char **allowed_names;
    size_t n_allowed_names; /* 0 = any certificate client_ca issued */
    char *crl_file;         /* with client_ca: PEM CRLs, read at start */
    struct cidr *allow;     /* empty = everyone */
    size_t n_allow;
    /* SO_RCVBUF bytes, 0 = system default (for streams: Linux autotuning up
     * to tcp_rmem's max). Default: 0 for UDP, LISTEN_STREAM_RCVBUF for the
     * stream transports (resolved by config_load). */
    int rcvbuf;
    char *port_file; /* write the bound port here (tests bind port 0) */
    /* HTTP intake (proto "http"). */
    enum listen_http_auth auth; /* "api_key" (default) or "client_cert" */
    char *api_key_file;         /* the API key clients send (secret.h); required with api_key */
    char *api_key_header;       /* the header that carries it, default "X-API-Key" */
    size_t max_body_bytes;      /* larger bodies get 413, default 1 MiB */
    size_t max_header_bytes;    /* request line and headers, default 16 KiB */
    int request_timeout_s;      /* read/write/idle timeout and the wait for the spool, default 30 */
    int max_alerts;             /* objects per request, default 1000 */
    int plain_beyond_loopback;  /* plain HTTP on an address other than loopback: default false */
    /* A json path (webhook.h) whose value identifies an alert when its
     * request has no Idempotency-Key; NULL = none. */
    char *idempotency_field;
};

struct limits_config {
    size_t max_message_bytes;       /* default 65536 */
    enum oversize_policy oversize;  /* "truncate" (default) or "reject" */
    int max_connections;            /* per listener, default 1024 */
    int max_connections_per_source; /* per listener and source address, default 64; 0 = none */
    int idle_timeout_s;             /* default 300 */
    int frame_timeout_s;            /* a begun TCP/TLS message must end within it, default 60 */
    size_t max_connection_buffer;   /* per-connection input cap, default 4 x max message */
    /* Decision records (one per message that produced alerts) queued between
     * the workers and the delivery thread; inputs pause above it. Default 256. */
    size_t queue_messages;
    int drain_timeout_s;   /* at a stop: wait for senders to close and for spool space, default 5 */
    int regex_match_limit; /* PCRE2 match limit per mapping regex, default 100000 */
    int regex_depth_limit; /* PCRE2 depth limit, default 10000 */
    int regex_jit;         /* PCRE2 JIT-compiles mapping regexes, default true */
    size_t correlation_max_bytes; /* the policies' alert counter (correlate.h) */
};

struct status_config {
    char *address; /* HTTP status endpoint ("127.0.0.1:9514"); NULL = off */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char *port_file;
    int unhealthy_after_s; /* /healthz fails after dispatch failing this long, default 600; 0 never
                            */
};

/* Identity resolvers, tried in identity.order (names: "static", "graph",
 * "ldap", in this order). */
enum identity_source {
    IDENTITY_STATIC,
    IDENTITY_GRAPH,
    IDENTITY_LDAP,
};

/* "static", "graph", "ldap": the name identity.order uses for src. */
const char *config_identity_name(enum identity_source src);

/* Microsoft Graph national clouds ("global", "usgov", "usgov-dod", "china"). */
enum graph_cloud {
    GRAPH_CLOUD_GLOBAL,
    GRAPH_CLOUD_USGOV,
    GRAPH_CLOUD_USGOV_DOD,
    GRAPH_CLOUD_CHINA,
};

/* Which user attribute Graph lookups return as the email. */
enum graph_attribute {
    GRAPH_ATTR_MAIL,                /* "mail" (default) */
    GRAPH_ATTR_USER_PRINCIPAL_NAME, /* "userPrincipalName" */
};

struct static_dir_config {
    char *file; /* identity.static.file: CSV identifier,email; NULL = no static directory */
};

/* identity.graph: configured when tenant_id is set (then client_id is
 * required too, and one credential: client_secret_file, or
 * client_certificate_file with client_key_file). */
struct graph_config {
    char *tenant_id;
    char *client_id;
    char *client_secret_file;       /* NULL: a certificate credential instead */
    char *client_certificate_file;  /* PEM; set with client_key_file, or neither */
    char *client_key_file;          /* PEM RSA private key, read as a secret */
    enum graph_cloud cloud;         /* default "global" */
    enum graph_attribute attribute; /* default "mail" */
    /* Token and API hosts ("https://login.microsoftonline.com",
     * "https://graph.microsoft.com"): the cloud's unless set; never NULL after
     * config_load. Tests point them at a local stand-in. */
    char *authority_url;
    char *graph_url;
    char *ca_file;      /* extra CA bundle for the token and Graph hosts; NULL = system CAs */
    int max_concurrent; /* Graph requests in flight, default 4 */
    int timeout_s;      /* per request, default 30 */
};

/* Which attribute LDAP lookups return as the email. */
enum ldapdir_attribute {
    LDAPDIR_ATTR_MAIL,                /* "mail" (default) */
    LDAPDIR_ATTR_USER_PRINCIPAL_NAME, /* "userPrincipalName" */
};

/* The most URIs identity.ldap.uris takes: failover, not a server farm. */
#define LDAPDIR_MAX_URIS 8

/* One NetBIOS domain of identity.ldap.domains: DOMAIN\user is searched
 * under its base DN. */
struct ldapdir_domain {
    char *name; /* "CORP", compared case-insensitively */
    char *base_dn;
};

/* identity.ldap (Active Directory over LDAP): configured when uris is set
 * (then base_dn is required too, and one credential: bind_dn with
 * bind_password_file, or sasl_external with client_certificate_file and
 * client_key_file). */
struct ldapdir_config {
    char **uris; /* "ldaps://host[:port]" or "ldap://host[:port]", tried in order */
    size_t n_uris;
    char *base_dn; /* the search base (the forest root on a Global Catalog port) */
    struct ldapdir_domain *domains;
    size_t n_domains;
    char *bind_dn;                    /* a DN or user@domain (simple bind) */
    char *bind_password_file;         /* read as a secret */
    int sasl_external;                /* SASL EXTERNAL with the client certificate instead */
    char *client_certificate_file;    /* PEM; set with client_key_file, or neither */
    char *client_key_file;            /* PEM */
    char *ca_file;                    /* verifies the servers; NULL = system CAs */
    int insecure_plaintext;           /* ldap:// without StartTLS */
    enum ldapdir_attribute attribute; /* default "mail" */
    int exclude_disabled;             /* default true */
    int connect_timeout_s;            /* TCP, TLS and bind, per URI, default 5 */
    int timeout_s;                    /* per search, default 10 */
    int idle_timeout_s;               /* 0 = never, default 300 */
    int max_connections;              /* default 2 */
};

struct identity_cache_config {
    int ttl_s;          /* default 3600 */
    int negative_ttl_s; /* "not found" results, default 300 */
    size_t max_entries; /* resolved emails, default 100000; "not found" gets a quarter more */
};

struct identity_config {
    /* Default: "static" when static.file is set, then "ldap" when ldap.uris
     * is, then "graph" when graph is. */
    enum identity_source *order;
    size_t n_order;
    struct static_dir_config static_dir; /* the "static" key */
    struct graph_config graph;
    struct ldapdir_config ldap;
    struct identity_cache_config cache;
};

enum dispatch_mode {
    DISPATCH_DRY_RUN,      /* "dry-run" (default): decide and audit, send nothing */
    DISPATCH_DIRECT,       /* "direct": POST JSON to url with an API key header */
    DISPATCH_ORCHESTRATOR, /* "orchestrator": the hosted orchestrator's endpoint */
};

/* direct: the names of the JSON body's fields (defaults: their own names). */
struct dispatch_fields {
    char *event, *email, *id, *occurred_at;
};

struct dispatch_config {
    enum dispatch_mode mode;
    char *url;            /* https only; direct: the POST URL; orchestrator: the base URL */
    char *api_key_file;   /* direct: the API key; orchestrator: the `code` secret */
    char *api_key_header; /* direct: default "X-API-Key" */
    struct dispatch_fields fields;
    char *ca_file;          /* extra CA bundle for outbound TLS; NULL = system CAs only */
    char *source;           /* orchestrator: {source} in /api/event/{source}/alert */
    char *orch_id;          /* orchestrator: orchid */
    char *org_id;           /* orchestrator: orgId */
    int connect_timeout_s;  /* default 10 */
    int timeout_s;          /* whole request, default 30 */
    int retry_min_s;        /* first backoff, default 1 */
    int retry_max_s;        /* backoff cap, also caps Retry-After, default 600 */
    int dedup_window_s;     /* exact duplicates (same idempotency key) dropped, default 600 */
    size_t dedup_max_bytes; /* the window's memory, default 16 MiB */
    int max_concurrent;     /* SafeTitan requests in flight, default 16 */
};

struct spool_config {
    char *dir;          /* required unless dispatch.mode is "dry-run" */
    size_t max_bytes;   /* size cap: past it new alerts are held (backpressure), default 1 GiB */
    int fsync_delay_ms; /* an append slower to be durable is counted and logged, default 50 */
    char *dead_letter;  /* default <dir>/dead-letter.jsonl (filled in by config_load) */
};

struct audit_config {
    char *file;     /* JSON lines; NULL = no audit log */
    int hash_users; /* write user and email hashed, default false (set by hash_key_file) */
    /* Secret key file: hashes are HMAC-SHA256 under it; NULL = plain SHA-256,
     * which a dictionary of staff emails reverses. */
    char *hash_key_file;
};

/* smtp: the server email actions are submitted to (core/mail.h). The
 * section is optional: absent (url NULL), no email action can be sent. */
struct smtp_config {
    char *url;             /* smtp://host[:port] (STARTTLS unless loopback) or smtps:// */
    char *from;            /* envelope sender and From:, a bare address */
    char *username;        /* AUTH as this user; NULL: no AUTH */
    char *password_file;   /* with username: the password (a secret file, never logged) */
    char *ca_file;         /* extra CA bundle for the server's certificate; NULL = system CAs */
    int connect_timeout_s; /* default 10 */
    int timeout_s;         /* one submission, all included, default 60 */
};

/* approvals: the base of the links approval emails carry (policy.h). */
struct approvals_config {
    char *url; /* https://host[:port] of an http listener; NULL: none */
};

struct config {
    char *path; /* the file it was loaded from */
    char *dir;  /* its folder: relative paths resolve against it */
    struct listen_config *listen;
    size_t n_listen;
    struct limits_config limits;
    int workers;     /* 0 = one per core (resolved by config_load) */
    char **mappings; /* glob patterns, in order */
    size_t n_mappings;
    char **policies; /* policy file globs, in order (policy.h) */
    size_t n_policies;
    struct status_config status;
    char *log_level;        /* "error", "warning", "info" (default), "debug" */
    char *log_format;       /* "text" (default) or "json" */
    int summary_interval_s; /* run's periodic summary line, default 3600; 0 = none */
    /* Started as root: after binding and reading its keys, the agent drops
     * to this user (and group: default the user's). NULL = stays as started. */
    char *user, *group;
    struct identity_config identity;
    struct dispatch_config dispatch;
    struct spool_config spool;
    struct audit_config audit;
    struct smtp_config smtp;
    struct approvals_config approvals;
};

/* Loads and validates path. On success returns 0 and *out (free with
 * config_free). On failure returns ERR_CONFIG after printing one line per
 * problem to stderr, each naming the file and the key ("FILE: listen[1].port:
 * expected ..."). Unknown keys and wrong types are errors. Relative paths in
 * the result are already resolved against the config file's folder. */
int config_load(const char *path, struct config **out);

/* config_load for `check`, which reports every problem in one run: when
 * the file is JSON but some keys are wrong (ERR_CONFIG, each reported),
 * *out still holds the rest, the keys in error left unset or at their
 * defaults, so that the files the others name can be checked too. *out is
 * NULL only when the file could not be read or parsed. */
int config_load_partial(const char *path, struct config **out);

/* Frees cfg and everything in it; NULL is fine. */
void config_free(struct config *cfg);

/* Writes the agent's key reference (the tables config_load parses by), as
 * systemd/README.md carries it (a Markdown table). */
void config_write_reference(FILE *out);

/* The same reference as roff paragraphs, the body of rtr-agent.json(5). */
void config_write_man_reference(FILE *out);

#endif
