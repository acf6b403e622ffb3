/* The agent's configuration: loaded from JSON (comments allowed) by one
 * declarative table per section; every error names the file and the key.
 * The shape of the file is the contract in design.md. */
#ifndef RTR_CONFIG_H
#define RTR_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "framing.h"

enum listen_proto {
    LISTEN_UDP,
    LISTEN_TCP,
    LISTEN_TLS,
};

/* One allowlist entry: an IPv4 or IPv6 network. */
struct cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned prefix;
};

struct listen_config {
    enum listen_proto proto;
    char *address;          /* "host:port" / "[v6]:port" as written */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    enum framing_mode framing; /* "auto" (default), "lf", "octet"; TCP/TLS only */
    char *cert, *key;       /* TLS: server certificate chain and key (PEM) */
    char *client_ca;        /* TLS: verify client certificates against this CA */
    int handshake_timeout_s; /* TLS, default 10 */
    struct cidr *allow;     /* empty = everyone */
    size_t n_allow;
    int rcvbuf;             /* UDP SO_RCVBUF bytes, 0 = system default */
    char *port_file;        /* write the bound port here (tests bind port 0) */
};

struct limits_config {
    size_t max_message_bytes;      /* default 65536 */
    enum oversize_policy oversize; /* "truncate" (default) or "reject" */
    int max_connections;           /* per listener, default 1024 */
    int idle_timeout_s;            /* default 300 */
    size_t max_connection_buffer;  /* per-connection input cap, default 4 x max message */
    size_t queue_messages;         /* downstream queue high mark, default 65536 */
};

struct status_config {
    char *address;          /* HTTP status endpoint ("127.0.0.1:9514"); NULL = off */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char *port_file;
};

struct config {
    char *path; /* the file it was loaded from */
    char *dir;  /* its folder: relative paths resolve against it */
    struct listen_config *listen;
    size_t n_listen;
    struct limits_config limits;
    int workers; /* 0 = one per core (resolved by config_load) */
    char **mappings; /* glob patterns, in order */
    size_t n_mappings;
    struct status_config status;
    char *log_level; /* "error", "warning", "info" (default), "debug" */
};

/* Loads and validates path. On success returns 0 and *out (free with
 * config_free). On failure returns ERR_CONFIG after printing one line per
 * problem to stderr, each naming the file and the key ("FILE: listen[1].port:
 * expected ..."). Unknown keys and wrong types are errors. Relative paths in
 * the result are already resolved against the config file's folder. */
int config_load(const char *path, struct config **out);

void config_free(struct config *cfg);

/* Parses "1.2.3.4:514", "[::1]:514", "0.0.0.0:6514", ":514" into *ss.
 * Returns 0 or ERR_INVALID. Used by config and tests. */
int config_parse_address(const char *text, struct sockaddr_storage *ss, socklen_t *len);

/* Parses "10.0.0.0/8", "::1", "fe80::/10" into *c. Returns 0 or ERR_INVALID. */
int config_parse_cidr(const char *text, struct cidr *c);

/* Nonzero when sa is inside one of the n networks (n == 0 allows all). */
int cidr_allows(const struct cidr *list, size_t n, const struct sockaddr *sa);

#endif
