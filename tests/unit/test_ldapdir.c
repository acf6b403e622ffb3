/* The LDAP resolver without a directory server (tests/integration/test_ldap.py
 * has a real slapd): the base DN a sAMAccountName's domain picks; what is
 * answered at once, without connecting (an identifier not valid for its
 * kind, a domain not configured); a refused connection fails the lookups
 * waiting for it and starts the backoff; a server that accepts TCP but never
 * speaks TLS leaves the loop free while the helper thread waits, and
 * ldapdir_free then returns at once, the lookups ended as "shutting down". */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/clock.h"
#include "core/stats.h"
#include "errors.h"
#include "identity/ldapdir.h"
#include "unit.h"

static char tmpdir[] = "/tmp/rtr-test-ldapdir.XXXXXX";

/* What a lookup's callback got. */
struct answer {
    int calls;
    enum identity_status status;
    char email[256], detail[1024];
};

static void on_answer(void *arg, enum identity_status status, const char *email, const char *detail)
{
    struct answer *a = arg;

    a->calls++;
    a->status = status;
    snprintf(a->email, sizeof(a->email), "%s", email != NULL ? email : "");
    snprintf(a->detail, sizeof(a->detail), "%s", detail != NULL ? detail : "");
}

/* A TCP socket listening on 127.0.0.1 that nobody accepts from: the kernel
 * completes connections, and a TLS client then waits for a ServerHello
 * that never comes. *port: its port. */
static int silent_listener(int *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd == -1 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 || listen(fd, 8) == -1 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) == -1)
        abort();
    *port = ntohs(sin.sin_port);
    return fd;
}

/* A port on 127.0.0.1 that refuses connections: bound once, then closed. */
static int closed_port(void)
{
    int port, fd = silent_listener(&port);

    close(fd);
    return port;
}

static struct ldapdir_config base_config(char *uri, char **uris, const char *password_file)
{
    uris[0] = uri;
    return (struct ldapdir_config){
        .uris = uris,
        .n_uris = 1,
        .base_dn = "dc=example,dc=com",
        .bind_dn = "cn=svc-rtr,dc=example,dc=com",
        .bind_password_file = (char *)password_file,
        .exclude_disabled = 1,
        .connect_timeout_s = 1,
        .timeout_s = 2,
        .idle_timeout_s = 300,
        .max_connections = 2,
    };
}

/* Runs base until a has its answer or timeout_ms pass. */
static void run_until_answer(struct event_base *base, const struct answer *a, int64_t timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    struct timeval tick = {0, 10000};

    while (a->calls == 0 && now_ms() < end) {
        event_base_loopexit(base, &tick);
        event_base_dispatch(base);
    }
}

static void test_search_base(void)
{
    struct ldapdir_domain domains[] = {{"CORP", "dc=corp,dc=example,dc=com"},
                                       {"Emea", "dc=emea,dc=example,dc=com"}};
    struct ldapdir_config cfg = {.base_dn = "dc=example,dc=com"};
    static const struct {
        enum user_kind kind;
        const char *user;
        const char *with_domains; /* NULL: not in them */
    } rows[] = {
        {USER_KIND_SAM, "CORP\\amorgan", "dc=corp,dc=example,dc=com"},
        {USER_KIND_SAM, "corp\\amorgan", "dc=corp,dc=example,dc=com"},
        {USER_KIND_SAM, "EMEA\\jdoe", "dc=emea,dc=example,dc=com"},
        {USER_KIND_SAM, "amorgan", "dc=example,dc=com"},
        {USER_KIND_SAM, "APAC\\amorgan", NULL},
        {USER_KIND_SAM, "COR\\amorgan", NULL},
        {USER_KIND_SAM, "CORPX\\amorgan", NULL},
        {USER_KIND_UPN, "CORP\\odd@example.com", "dc=example,dc=com"},
        {USER_KIND_SID, "S-1-5-21-1-2-3-1109", "dc=example,dc=com"},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct str user = str_make(rows[i].user, strlen(rows[i].user));
        const char *got;

        cfg.domains = NULL;
        cfg.n_domains = 0;
        /* Without domains, DOMAIN\ is ignored: the Global Catalog's base. */
        got = ldapdir_search_base(&cfg, rows[i].kind, user);
        CHECK_STR(rows[i].user, str_make(got, got != NULL ? strlen(got) : 0), "dc=example,dc=com");
        cfg.domains = domains;
        cfg.n_domains = 2;
        got = ldapdir_search_base(&cfg, rows[i].kind, user);
        CHECK_STR(rows[i].user, (got != NULL ? str_make(got, strlen(got)) : STR_ABSENT),
                  rows[i].with_domains);
    }
}

/* Answers without a server: nothing connects for them (the URI is a closed
 * port: a connection would fail, and be counted). */
static void test_answered_at_once(const char *password_file)
{
    struct ldapdir_domain domains[] = {{"CORP", "dc=corp,dc=example,dc=com"}};
    char uri[64], *uris[1];
    struct ldapdir_config cfg = base_config(uri, uris, password_file);
    struct event_base *base = event_base_new();
    struct stats *stats = stats_register();
    struct ldapdir *d = NULL;
    static const struct {
        enum user_kind kind;
        const char *user;
        const char *detail;
    } rows[] = {
        {USER_KIND_SID, "S-1-5-x", "ldap: not a valid sid identifier"},
        {USER_KIND_GUID, "not-a-guid", "ldap: not a valid guid identifier"},
        {USER_KIND_SAM, "CORP\\", "ldap: not a valid sam identifier"},
        {USER_KIND_SAM, "APAC\\amorgan", "ldap: domain APAC is not in identity.ldap.domains"},
    };

    snprintf(uri, sizeof(uri), "ldap://127.0.0.1:%d", closed_port());
    cfg.domains = domains;
    cfg.n_domains = 1;
    CHECK_INT(ldapdir_new(&cfg, base, stats, &d), 0);
    for (size_t i = 0; d != NULL && i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct answer a = {0};

        ldapdir_lookup(d, rows[i].kind, str_make(rows[i].user, strlen(rows[i].user)), on_answer,
                       &a);
        CHECK_INT(a.calls, 1);
        CHECK_INT(a.status, IDENTITY_NOT_FOUND);
        CHECK_STR(rows[i].user, str_make(a.detail, strlen(a.detail)), rows[i].detail);
    }
    ldapdir_free(d);
    CHECK_INT(stats->v[STAT_ldap_lookups_not_found], 4);
    CHECK_INT(stats->v[STAT_ldap_connect_failures], 0);
    event_base_free(base);
}

/* A refused connection: both waiting lookups fail with the reason, the
 * failure is counted, and a lookup during the backoff fails at once. */
static void test_connection_refused(const char *password_file)
{
    char uri[64], *uris[1], want[128];
    struct ldapdir_config cfg = base_config(uri, uris, password_file);
    struct event_base *base = event_base_new();
    struct stats *stats = stats_register();
    struct answer a = {0}, b = {0}, c = {0};
    struct ldapdir *d = NULL;

    snprintf(uri, sizeof(uri), "ldaps://127.0.0.1:%d", closed_port());
    CHECK_INT(ldapdir_new(&cfg, base, stats, &d), 0);
    if (d == NULL)
        return;
    ldapdir_lookup(d, USER_KIND_SAM, STR_LIT("amorgan"), on_answer, &a);
    ldapdir_lookup(d, USER_KIND_UPN, STR_LIT("amorgan@corp.example.com"), on_answer, &b);
    /* The connection is the helper thread's: nothing is answered yet. */
    CHECK_INT(a.calls + b.calls, 0);
    run_until_answer(base, &b, 5000);
    CHECK_INT(a.calls, 1);
    CHECK_INT(b.calls, 1);
    CHECK_INT(a.status, IDENTITY_ERROR);
    snprintf(want, sizeof(want), "ldap: no directory server reachable: %s: ", uri);
    if (strncmp(a.detail, want, strlen(want)) != 0 || strcmp(a.detail, b.detail) != 0)
        UNIT_FAIL("refused: got '%s' and '%s', want both to start '%s'", a.detail, b.detail, want);
    else
        unit_passed++;
    CHECK_INT(stats->v[STAT_ldap_connect_failures], 1);
    CHECK_INT(stats->v[STAT_ldap_lookups_error], 2);
    ldapdir_lookup(d, USER_KIND_SAM, STR_LIT("jdoe"), on_answer, &c);
    CHECK_INT(c.calls, 1);
    CHECK_STR("during the backoff", str_make(c.detail, strlen(c.detail)), a.detail);
    ldapdir_free(d);
    event_base_free(base);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (*(int *)arg)++;
}

/* A server that never completes the TLS handshake: the loop goes on
 * meanwhile (its timer fires), and ldapdir_free ends the lookup at once
 * without waiting for the thread, which gives up on its own later. */
static void test_free_while_connecting(const char *password_file)
{
    char uri[64], *uris[1];
    struct ldapdir_config cfg = base_config(uri, uris, password_file);
    struct event_base *base = event_base_new();
    struct timeval tv = {0, 20000};
    struct answer a = {0};
    struct ldapdir *d = NULL;
    int port, ticks = 0, fd = silent_listener(&port);
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, &ticks);
    int64_t started;

    snprintf(uri, sizeof(uri), "ldaps://127.0.0.1:%d", port);
    cfg.connect_timeout_s = 3;
    CHECK_INT(ldapdir_new(&cfg, base, NULL, &d), 0);
    if (d == NULL)
        return;
    event_add(tick, &tv);
    ldapdir_lookup(d, USER_KIND_SAM, STR_LIT("amorgan"), on_answer, &a);
    /* Three 20 ms ticks well before the 3 s the handshake may take: the
     * loop is not blocked by it (even under valgrind, which is slow). */
    started = now_ms();
    while (ticks < 3 && now_ms() - started < 2000)
        event_base_loop(base, EVLOOP_ONCE);
    CHECK(ticks >= 3);
    CHECK_INT(a.calls, 0);
    started = now_ms();
    ldapdir_free(d);
    CHECK(now_ms() - started < 500);
    CHECK_INT(a.calls, 1);
    CHECK_INT(a.status, IDENTITY_ERROR);
    CHECK_STR("free", str_make(a.detail, strlen(a.detail)), "ldap: shutting down");
    event_free(tick);
    event_base_free(base);
    /* The abandoned thread gives up after connect_timeout_s and frees
     * what it made: wait for it, so that leak checkers see it done. */
    sleep(4);
    close(fd);
}

int main(void)
{
    char password_file[PATH_MAX];

    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(password_file, sizeof(password_file), "%s/password", tmpdir);
    unit_write_file(password_file, "not-a-real-password\n");
    chmod(password_file, 0600);
    test_search_base();
    test_answered_at_once(password_file);
    test_connection_refused(password_file);
    test_free_while_connecting(password_file);
    unlink(password_file);
    rmdir(tmpdir);
    return unit_report("test_ldapdir");
}
