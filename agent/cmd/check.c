#include "check.h"

#include <ctype.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "deliver/audit.h"
#include "core/config.h"
#include "identity/directory.h"
#include "identity/graph_assertion.h"
#include "ingest/http_key.h"
#include "ingest/input.h"
#include "errors.h"
#include "identity/identity.h"
#include "identity/ldapdir.h"
#include "core/log.h"
#include "core/secret.h"
#include "decide/mapping.h"
#include "decide/policy.h"
#include "ingest/tls.h"
#include "privilege.h"

/* One check run: how many problems were reported, and what loaded. */
struct check {
    const struct config *cfg;
    const struct check_options *opt;
    /* Set while checking what this config does not use yet (the SafeTitan
     * key of a dry run): problems are warnings then, with this reason. */
    const char *advisory;
    int problems;
    size_t mappings, mapping_files, identifiers, policies;
};

/* Where systemd puts a unit's credentials at start: CHECK_CREDENTIALS/UNIT/NAME. */
#define CHECK_CREDENTIALS "/run/credentials/"

/* The folders the shipped unit has systemd create at start
 * (systemd/rtr-agent.service: StateDirectory=, LogsDirectory=). */
static const char *const check_systemd_folders[] = {"/var/lib/rtr-agent", "/var/log/rtr-agent",
                                                    NULL};

/* Reports one problem as "CONFIGFILE: key: what". */
static void check_fail(struct check *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void check_fail(struct check *c, const char *key, const char *fmt, ...)
{
    char what[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (c->advisory != NULL) {
        log_warning("%s: %s: %s (%s)", c->cfg->path, key, what, c->advisory);
        return;
    }
    log_error("%s: %s: %s", c->cfg->path, key, what);
    c->problems++;
}

/* Opens path for reading, or reports why it cannot be and returns -1. The
 * loaders report a missing file by its own name only; this names the key. */
static int check_open(struct check *c, const char *key, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd == -1)
        check_fail(c, key, "%s: cannot open: %s", path, strerror(errno));
    return fd;
}

/* Opens (and closes) path when set; 0 when it opened or is not set. */
static int check_file(struct check *c, const char *key, const char *path)
{
    int fd;

    if (path == NULL)
        return 0;
    fd = check_open(c, key, path);
    if (fd == -1)
        return -1;
    close(fd);
    return 0;
}

/* path, or with --credentials-from DIR and path a credential
 * (/run/credentials/UNIT/NAME), DIR/NAME written into buf. */
static const char *check_credential(const struct check *c, const char *path, char *buf, size_t len)
{
    const char *unit, *name;

    if (path == NULL || c->opt->credentials_from == NULL ||
        strncmp(path, CHECK_CREDENTIALS, strlen(CHECK_CREDENTIALS)) != 0)
        return path;
    unit = path + strlen(CHECK_CREDENTIALS);
    name = strchr(unit, '/');
    if (name == NULL || name == unit || name[1] == '\0' || strchr(name + 1, '/') != NULL)
        return path;
    snprintf(buf, len, "%s/%s", c->opt->credentials_from, name + 1);
    return buf;
}

/* The folder of check_systemd_folders that path is or lies in, when it is
 * not there yet (systemd makes it at start); else NULL. */
static const char *check_systemd_folder(const char *path)
{
    struct stat st;

    for (const char *const *f = check_systemd_folders; path != NULL && *f != NULL; f++) {
        size_t n = strlen(*f);

        if (strncmp(path, *f, n) == 0 && (path[n] == '\0' || path[n] == '/') &&
            stat(*f, &st) == -1 && errno == ENOENT)
            return *f;
    }
    return NULL;
}

/* Says that key's path is in a folder systemd creates at start. */
static void check_note_systemd_folder(const struct check *c, const char *key, const char *path,
                                      const char *folder)
{
    log_info("%s: %s: %s: not checked: %s is not there yet, and systemd creates it when it "
             "starts rtr-agent.service (StateDirectory=, LogsDirectory=)",
             c->cfg->path, key, path, folder);
}

/* 0 when dir is a folder this process may create files in; else -1 with
 * errno set. */
static int folder_writable(const char *dir)
{
    struct stat st;

    if (stat(dir, &st) == -1)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return access(dir, W_OK | X_OK);
}

/* Calls fn with the folder of path (dirname(3) works on a copy). Returns
 * fn's result, or -1 with errno ENOMEM. */
static int with_parent(const char *path, int (*fn)(const char *dir))
{
    char *copy = strdup(path);
    int rc;

    if (copy == NULL) {
        errno = ENOMEM;
        return -1;
    }
    rc = fn(dirname(copy));
    free(copy);
    return rc;
}

/* What each policy action sends: the minimal-data rule made visible. */
static void check_policy_line(void *arg, const char *text)
{
    (void)arg;
    log_info("%s", text);
}

/* Whether the delivery thread will have a Graph client for graph actions:
 * identity.graph configured and named in identity.order. */
/* What the policies need of the config (policy_config_check), missing. */
static void check_policy_problem(void *arg, const char *key, const char *why)
{
    check_fail(arg, key, "%s", why);
}

static void check_mappings(struct check *c)
{
    struct mapping_set *set = NULL;

    /* policy_set_load names the file and the key of each problem. */
    if (policy_set_load(c->cfg, mapping_regex_flags(&c->cfg->limits), &set) != 0) {
        c->problems++;
        return;
    }
    c->mappings = mapping_set_count(set);
    if (c->mappings == 0)
        check_fail(c, "mappings",
                   "no mapping loaded: no message could ever decide (the shipped "
                   "ones are in the install's share/rtr-agent/mappings/)");
    identity_warn_unresolvable(&c->cfg->identity, c->mappings, c->cfg->path);
    c->mapping_files = mapping_set_files(set);
    c->policies = policy_count(set);
    policy_describe(set, check_policy_line, c);
    policy_config_check(set, c->cfg, check_policy_problem, c);
    mapping_set_unref(set);
}

static void check_directory(struct check *c)
{
    const char *path = c->cfg->identity.static_dir.file;
    struct directory *d = NULL;

    if (path == NULL || check_file(c, "identity.static.file", path) != 0)
        return;
    /* directory_load reports each problem as FILE:LINE. */
    if (directory_load(path, &d) != 0) {
        c->problems++;
        return;
    }
    c->identifiers = directory_count(d);
    directory_free(d);
}

static void check_secret_min(struct check *c, const char *key, const char *path, size_t min);

static void check_listeners(struct check *c)
{
    char key[48];

    for (size_t i = 0; i < c->cfg->n_listen; i++) {
        struct listen_config copy = c->cfg->listen[i];
        const struct listen_config *lc = &copy;
        char files[4][PATH_MAX];
        SSL_CTX *ctx = NULL;
        int missing = 0;

        if (lc->proto == LISTEN_HTTP) {
            snprintf(key, sizeof(key), "listen[%zu].api_key_file", i);
            check_secret_min(c, key, lc->api_key_file, HTTP_KEY_MIN);
        }
        if (!lc->tls)
            continue;
        copy.cert = (char *)check_credential(c, copy.cert, files[0], sizeof(files[0]));
        copy.key = (char *)check_credential(c, copy.key, files[1], sizeof(files[1]));
        copy.client_ca = (char *)check_credential(c, copy.client_ca, files[2], sizeof(files[2]));
        copy.crl_file = (char *)check_credential(c, copy.crl_file, files[3], sizeof(files[3]));
        /* A missing file is reported by its key; OpenSSL would only say
         * "system lib". */
        snprintf(key, sizeof(key), "listen[%zu].cert", i);
        missing |= check_file(c, key, lc->cert);
        snprintf(key, sizeof(key), "listen[%zu].key", i);
        missing |= check_file(c, key, lc->key);
        snprintf(key, sizeof(key), "listen[%zu].client_ca", i);
        missing |= check_file(c, key, lc->client_ca);
        snprintf(key, sizeof(key), "listen[%zu].crl_file", i);
        missing |= check_file(c, key, lc->crl_file);
        if (missing)
            continue;
        /* tls_server_ctx_new names the listener by its address and the
         * file; this line adds the key. */
        if (tls_server_ctx_new(lc, &ctx) != 0) {
            snprintf(key, sizeof(key), "listen[%zu]", i);
            check_fail(c, key, "the TLS listener %s cannot start (see above)", lc->address);
        }
        SSL_CTX_free(ctx);
    }
}

/* A secret file must load as run loads it (secret_read, as text). Its
 * content is never printed. */
static void check_secret_min(struct check *c, const char *key, const char *path, size_t min)
{
    char why[256], file[PATH_MAX], *secret = NULL;
    size_t len = 0;

    path = check_credential(c, path, file, sizeof(file));
    if (path == NULL || check_file(c, key, path) != 0)
        return;
    if (secret_read(path, min, SECRET_MAX, 1, &secret, &len, why, sizeof(why)) != 0)
        check_fail(c, key, "%s: %s", path, why);
    secret_free(secret, len);
}

static void check_secret(struct check *c, const char *key, const char *path)
{
    check_secret_min(c, key, path, 1);
}

/* A Graph certificate credential must load as run loads it
 * (graph_assertion_load: an RSA key matching the certificate). */
static void check_graph_certificate(struct check *c, const struct graph_config *g)
{
    static const char *const keys[] = {[GRAPH_ASSERTION_CERT] =
                                           "identity.graph.client_certificate_file",
                                       [GRAPH_ASSERTION_KEY] = "identity.graph.client_key_file"};
    char why[PATH_MAX + 256], files[2][PATH_MAX];
    const char *paths[2];
    struct graph_assertion *a = NULL;
    enum graph_assertion_file bad;

    if (g->client_certificate_file == NULL || g->client_key_file == NULL)
        return;
    paths[GRAPH_ASSERTION_CERT] =
        check_credential(c, g->client_certificate_file, files[GRAPH_ASSERTION_CERT], PATH_MAX);
    paths[GRAPH_ASSERTION_KEY] =
        check_credential(c, g->client_key_file, files[GRAPH_ASSERTION_KEY], PATH_MAX);
    if ((check_file(c, keys[GRAPH_ASSERTION_CERT], paths[GRAPH_ASSERTION_CERT]) |
         check_file(c, keys[GRAPH_ASSERTION_KEY], paths[GRAPH_ASSERTION_KEY])) != 0)
        return;
    if (graph_assertion_load(paths[GRAPH_ASSERTION_CERT], paths[GRAPH_ASSERTION_KEY], &a, &bad, why,
                             sizeof(why)) != 0)
        check_fail(c, keys[bad], "%s: %s", paths[bad], why);
    graph_assertion_free(a);
}

/* An extra CA bundle for outbound TLS must load as the HTTPS engine will
 * load it. */
static void check_ca_file(struct check *c, const char *key, const char *path)
{
    X509_STORE *store;
    char reason[256];

    if (path == NULL || check_file(c, key, path) != 0)
        return;
    store = X509_STORE_new();
    if (store == NULL || X509_STORE_load_file(store, path) != 1) {
        check_fail(c, key, "%s: no PEM CA certificate loads: %s", path,
                   tls_error_reason(ERR_peek_last_error(), reason, sizeof(reason)));
        ERR_clear_error();
    }
    X509_STORE_free(store);
}

/* identity.ldap's files as a start reads them: the bind password (a
 * secret), then the CA bundle, the client certificate and its key, which
 * make libldap's TLS context (ldapdir_tls_load: PEM, the key the
 * certificate's). */
static void check_ldap(struct check *c, const struct ldapdir_config *l)
{
    char files[2][PATH_MAX];
    struct ldapdir_config tls = *l;
    int missing = 0;

    if (l->n_uris == 0)
        return;
    check_secret(c, "identity.ldap.bind_password_file", l->bind_password_file);
    check_ca_file(c, "identity.ldap.ca_file", l->ca_file);
    tls.client_certificate_file =
        (char *)check_credential(c, l->client_certificate_file, files[0], sizeof(files[0]));
    tls.client_key_file =
        (char *)check_credential(c, l->client_key_file, files[1], sizeof(files[1]));
    missing |= check_file(c, "identity.ldap.client_certificate_file", tls.client_certificate_file);
    missing |= check_file(c, "identity.ldap.client_key_file", tls.client_key_file);
    /* check_ca_file said what is wrong with it already. */
    missing |= l->ca_file != NULL && access(l->ca_file, R_OK) != 0;
    if (!missing && ldapdir_tls_load(&tls) != 0)
        check_fail(c, "identity.ldap", "the TLS context does not load (see above)");
}

/* audit_open's own checks, without creating the log; audit_check names
 * the config file, the key and the file. */
static void check_audit(struct check *c)
{
    struct audit_config audit = c->cfg->audit;
    const char *folder = check_systemd_folder(audit.file);
    char key[PATH_MAX];

    audit.hash_key_file = (char *)check_credential(c, audit.hash_key_file, key, sizeof(key));
    if (folder != NULL) {
        check_note_systemd_folder(c, "audit.file", audit.file, folder);
        audit.file = NULL; /* the hash key is still checked */
    }
    if (audit_check(&audit, c->cfg->path) != 0)
        c->problems++;
}

/* A port file is written beside itself, then renamed over it: its folder
 * must take new files. */
static void check_port_file(struct check *c, const char *key, const char *path)
{
    if (path != NULL && with_parent(path, folder_writable) == -1)
        check_fail(c, key, "%s: its folder does not take new files: %s", path, strerror(errno));
}

static void check_port_files(struct check *c)
{
    char key[48];

    for (size_t i = 0; i < c->cfg->n_listen; i++) {
        snprintf(key, sizeof(key), "listen[%zu].port_file", i);
        check_port_file(c, key, c->cfg->listen[i].port_file);
    }
    if (c->cfg->status.address != NULL)
        check_port_file(c, "status.port_file", c->cfg->status.port_file);
}

/* Nonzero when ss is the wildcard, a loopback address or an address of one
 * of this host's interfaces (ifs). A v4-mapped IPv6 address is compared as
 * the IPv4 address it carries. */
static int address_is_local(const struct sockaddr_storage *ss, const struct ifaddrs *ifs)
{
    struct in_addr v4 = {0};
    const struct in6_addr *v6 = NULL;
    int family = ss->ss_family;

    if (family == AF_INET) {
        v4 = ((const struct sockaddr_in *)ss)->sin_addr;
    } else {
        v6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(v6)) {
            memcpy(&v4, &v6->s6_addr[12], sizeof(v4));
            family = AF_INET;
        }
    }
    /* 127.0.0.0/8 is all local on Linux, though lo carries 127.0.0.1 only. */
    if (family == AF_INET && (v4.s_addr == htonl(INADDR_ANY) || (ntohl(v4.s_addr) >> 24) == 127))
        return 1;
    if (family == AF_INET6 && (IN6_IS_ADDR_UNSPECIFIED(v6) || IN6_IS_ADDR_LOOPBACK(v6)))
        return 1;
    for (const struct ifaddrs *i = ifs; i != NULL; i = i->ifa_next) {
        const struct sockaddr *a = i->ifa_addr;
        if (a == NULL || a->sa_family != family)
            continue;
        if (family == AF_INET && ((const struct sockaddr_in *)a)->sin_addr.s_addr == v4.s_addr)
            return 1;
        if (family == AF_INET6 &&
            memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, v6, sizeof(*v6)) == 0)
            return 1;
    }
    return 0;
}

/* check does not bind (the agent may be running on these very addresses);
 * an address no interface of this host has would make run's bind fail
 * (EADDRNOTAVAIL). Only a warning: a config may be checked on another host
 * than the one it is meant for. */
static void check_local_addresses(struct check *c)
{
    const struct config *cfg = c->cfg;
    struct ifaddrs *ifs = NULL;

    if (getifaddrs(&ifs) == -1) {
        log_warning("%s: cannot list this host's addresses (%s): listen addresses not checked",
                    cfg->path, strerror(errno));
        return;
    }
    for (size_t i = 0; i < cfg->n_listen; i++) {
        if (cfg->listen[i].address != NULL && !address_is_local(&cfg->listen[i].addr, ifs))
            log_warning("%s: listen[%zu].address: %s is not an address of this host: run "
                        "would fail to bind it here",
                        cfg->path, i, cfg->listen[i].address);
    }
    if (cfg->status.address != NULL && !address_is_local(&cfg->status.addr, ifs))
        log_warning("%s: status.address: %s is not an address of this host: run would fail to "
                    "bind it here",
                    cfg->path, cfg->status.address);
    freeifaddrs(ifs);
}

/* The spool folder is created at start when missing, so its parent must
 * then take new folders. Live, the dead-letter file is checked as
 * audit.file is (audit_check_file: no symbolic link, opens for appending,
 * or its folder takes new files), unless it goes in a spool folder not
 * made yet: run makes that folder first. */
static void check_spool(struct check *c)
{
    const struct spool_config *sp = &c->cfg->spool;
    const char *dir = sp->dir, *folder = check_systemd_folder(dir);
    size_t dir_len = dir != NULL ? strlen(dir) : 0;
    int dir_missing = 0;

    if (folder != NULL) {
        check_note_systemd_folder(c, "spool.dir", dir, folder);
        dir_missing = 1;
    } else if (dir != NULL && folder_writable(dir) != 0) {
        dir_missing = errno == ENOENT;
        if (!dir_missing)
            check_fail(c, "spool.dir", "%s: not a writable folder: %s", dir, strerror(errno));
        else if (with_parent(dir, folder_writable) == -1)
            check_fail(c, "spool.dir", "%s: missing, and its folder does not take new ones: %s",
                       dir, strerror(errno));
    }
    if (c->cfg->dispatch.mode == DISPATCH_DRY_RUN || sp->dead_letter == NULL)
        return;
    if (dir_missing && strncmp(sp->dead_letter, dir, dir_len) == 0 &&
        sp->dead_letter[dir_len] == '/')
        return;
    if (audit_check_file(sp->dead_letter, "spool.dead_letter", c->cfg->path) != 0)
        c->problems++;
}

/* --probe and --send-test on the configuration with its credentials read
 * where --credentials-from says, as the file checks above read them. */
static int check_probe(struct check *c)
{
    struct config cfg = *c->cfg;
    char files[11][PATH_MAX];
    char **paths[] = {
        &cfg.dispatch.api_key_file,
        &cfg.dispatch.ca_file,
        &cfg.identity.graph.client_secret_file,
        &cfg.identity.graph.client_certificate_file,
        &cfg.identity.graph.client_key_file,
        &cfg.identity.graph.ca_file,
        &cfg.identity.ldap.bind_password_file,
        &cfg.identity.ldap.client_certificate_file,
        &cfg.identity.ldap.client_key_file,
        &cfg.identity.ldap.ca_file,
        &cfg.audit.hash_key_file,
    };

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        *paths[i] = (char *)check_credential(c, *paths[i], files[i], sizeof(files[i]));
    return probe_run(&cfg, &c->opt->probe);
}

int check_run(const char *config_path, const struct check_options *opt)
{
    struct config *cfg = NULL;
    struct check c = {.opt = opt};
    unsigned long warnings = log_warnings_written();
    int rc = ERR_CONFIG;

    /* With key errors the rest of the config still comes back: its files
     * are checked too, so that one run tells everything. */
    if (config_load_partial(config_path, &cfg) != 0)
        c.problems++;
    if (cfg == NULL)
        goto out;
    c.cfg = cfg;
    if (opt->credentials_from != NULL)
        log_info("%s: credentials (%s*/NAME) are checked as %s/NAME", cfg->path, CHECK_CREDENTIALS,
                 opt->credentials_from);
    /* Every check runs, so that one run reports every problem. */
    check_mappings(&c);
    check_directory(&c);
    check_listeners(&c);
    input_warn_open_listeners(cfg);
    /* As run: a dry run builds no SafeTitan client and needs no key; what
     * it names is still looked at, for the day it goes live. */
    if (cfg->dispatch.mode == DISPATCH_DRY_RUN)
        c.advisory = "not needed while dispatch.mode is \"dry-run\"";
    check_secret(&c, "dispatch.api_key_file", cfg->dispatch.api_key_file);
    check_ca_file(&c, "dispatch.ca_file", cfg->dispatch.ca_file);
    c.advisory = NULL;
    check_secret(&c, "identity.graph.client_secret_file", cfg->identity.graph.client_secret_file);
    check_graph_certificate(&c, &cfg->identity.graph);
    check_ca_file(&c, "identity.graph.ca_file", cfg->identity.graph.ca_file);
    check_ldap(&c, &cfg->identity.ldap);
    check_audit(&c);
    check_spool(&c);
    check_port_files(&c);
    check_local_addresses(&c);
    /* With --credentials-from, root only reads the credentials' sources for
     * a config the unit runs, never as root. */
    if (opt->credentials_from != NULL && cfg->user == NULL && geteuid() == 0)
        log_info("%s: checked as root to read the credentials' sources; the unit runs the agent "
                 "as its own unprivileged user",
                 cfg->path);
    else
        c.problems += privilege_check(cfg, cfg->path);
    warnings = log_warnings_written() - warnings;
    if (opt->strict && warnings > 0) {
        log_error("%s: %lu warning%s, which --strict counts as problems", cfg->path, warnings,
                  warnings == 1 ? "" : "s");
        c.problems++;
    }
    if (opt->probe.identifier != NULL || opt->probe.send_event != NULL) {
        if (c.problems == 0)
            c.problems += check_probe(&c);
        else
            log_error("probe: not run: the problems above come first");
    }
    if (c.problems == 0) {
        log_info("%s: %zu listeners, %zu mappings from %zu files, %zu policies, %zu directory "
                 "identifiers",
                 cfg->path, cfg->n_listen, c.mappings, c.mapping_files, c.policies, c.identifiers);
        rc = 0;
    }
out:
    fprintf(stderr, "rtr-agent: configuration file %s test %s\n", config_path,
            rc == 0 ? "is successful" : "failed");
    config_free(cfg);
    return rc;
}
