/* The LDAP resolver (ldapdir.h). Connections are set up on a helper thread
 * (struct ldapdir_attempt) and used only on the loop (struct
 * ldapdir_conn). The thread works on copies of what it needs and owns the
 * handle it makes until it hands it over: it writes one byte to a pipe the
 * loop watches, under the attempt's lock, unless the loop has abandoned
 * the attempt (ldapdir_free), in which case the thread frees everything
 * itself. So neither side waits for the other, and nothing is freed twice
 * or touched after its free.
 *
 * Lookups that end are first moved to a local list and their callbacks run
 * only once the resolver's own lists and connections are consistent again:
 * a callback may start a lookup (identity.c moves a "not found" to the
 * next resolver, the delivery side may resolve another alert), which may
 * use or drop a connection. */
#include "ldapdir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <unistd.h>

#include <ldap.h>

#include "errors.h"
#include "ldapfilter.h"
#include "core/clock.h"
#include "core/evloop.h"
#include "core/log.h"
#include "core/retry.h"
#include "core/secret.h"

/* Why a connection attempt failed: a clause per URI tried. */
#define LDAPDIR_ERROR_MAX 1536
/* One clause of it, or a bind refusal. */
#define LDAPDIR_WHY_MAX 384
/* The longest attribute value taken as an email: what identity keeps. */
#define LDAPDIR_VALUE_MAX IDENTITY_MAX_ID
/* A domain named in a detail is cut here: it comes from a log line. */
#define LDAPDIR_DOMAIN_SHOWN 64

static const char *const ldapdir_attribute_names[] = {
    [LDAPDIR_ATTR_MAIL] = "mail",
    [LDAPDIR_ATTR_USER_PRINCIPAL_NAME] = "userPrincipalName",
};

struct ldapdir_conn;

/* One lookup, from ldapdir_lookup to its callback. */
struct ldapdir_search {
    TAILQ_ENTRY(ldapdir_search) link; /* d->waiting, its connection's, or a done list */
    struct ldapdir *d;
    struct ldapdir_conn *conn; /* while sent */
    const char *base_dn;       /* cfg's */
    identity_cb cb;
    void *arg;
    int64_t started_ms;
    struct event *timer; /* timeout_s, while sent */
    int msgid;
    int entries;
    int resent;  /* its connection failed as it was sent: it was sent again once */
    char *value; /* the first entry's attribute */
    /* The answer, once done: detail is a literal or detail_owned. */
    enum identity_status status;
    const char *detail;
    char *detail_owned;
    char filter[];
};

TAILQ_HEAD(ldapdir_search_list, ldapdir_search);

/* A bound connection, on the loop. */
struct ldapdir_conn {
    TAILQ_ENTRY(ldapdir_conn) link;
    struct ldapdir *d;
    LDAP *ld;
    const char *uri; /* cfg's */
    struct event *readable;
    struct event *idle;
    struct ldapdir_search_list searches;
    size_t outstanding;
};

TAILQ_HEAD(ldapdir_conn_list, ldapdir_conn);

/* One connection attempt. The loop fills the inputs before the thread
 * starts and reads the outputs after the pipe said it ended; abandoned
 * and done change only under lock. */
struct ldapdir_attempt {
    pthread_mutex_t lock;
    int abandoned; /* ldapdir_free came first: the thread frees the attempt */
    int done;      /* the thread ended and wrote to the pipe: the loop frees it */
    int pipe_rd, pipe_wr;
    /* Inputs: copies, since an abandoned thread outlives the config. */
    char **uris;
    size_t n_uris;
    char *bind_dn; /* NULL with SASL EXTERNAL */
    char *password;
    size_t password_len;
    int insecure_plaintext;
    int timeout_s;
    /* Outputs. */
    LDAP *ld; /* bound, or NULL */
    size_t uri_index;
    unsigned failures; /* URIs that failed */
    int refused;       /* a server refused the credentials */
    char refusal[2 * LDAPDIR_WHY_MAX];
    char error[LDAPDIR_ERROR_MAX]; /* "URI: step: reason; URI: ..." */
};

struct ldapdir {
    const struct ldapdir_config *cfg;
    struct event_base *base;
    struct stats *stats;
    char *password; /* wiped at free; NULL with SASL EXTERNAL */
    size_t password_len;
    struct ldapdir_conn_list conns;
    size_t n_conns;
    struct ldapdir_search_list waiting; /* for a connection */
    size_t n_pending;                   /* unfinished lookups */
    struct ldapdir_attempt *attempt;    /* the one running, or NULL */
    struct event *attempt_ended;        /* its pipe */
    unsigned failures;                  /* failed attempts in a row */
    int64_t retry_at;                   /* monotonic ms: no attempt before */
    char *last_error;                   /* "ldap: no directory server reachable: ..." */
    int closed;
    struct log_ratelimit rl_bind, rl_connect, rl_lost, rl_full;
};

static void ldapdir_count(struct ldapdir *d, enum stats_counter c, uint64_t n)
{
    if (d->stats != NULL)
        stats_add(d->stats, c, n);
}

/* ---- answers ---- */

/* Records s's answer; detail is copied when it is not a literal. */
static void ldapdir_answer(struct ldapdir_search *s, enum identity_status status,
                           const char *detail, int literal)
{
    s->status = status;
    s->detail = detail;
    if (!literal) {
        s->detail_owned = strdup(detail);
        s->detail = s->detail_owned != NULL ? s->detail_owned : "ldap: out of memory";
    }
}

/* Runs the callback of every search in done, counting each, and frees
 * them. Each is out of every list of d but done. */
static void ldapdir_complete(struct ldapdir *d, struct ldapdir_search_list *done)
{
    struct ldapdir_search *s;
    static const enum stats_counter by_status[] = {
        [IDENTITY_FOUND] = STAT_ldap_lookups_found,
        [IDENTITY_NOT_FOUND] = STAT_ldap_lookups_not_found,
        [IDENTITY_ERROR] = STAT_ldap_lookups_error,
    };

    while ((s = TAILQ_FIRST(done)) != NULL) {
        int64_t took = now_ms() - s->started_ms;

        TAILQ_REMOVE(done, s, link);
        d->n_pending--;
        ldapdir_count(d, by_status[s->status], 1);
        ldapdir_count(d, STAT_ldap_lookup_ms_sum, took > 0 ? (uint64_t)took : 0);
        ldapdir_count(d, STAT_ldap_lookup_count, 1);
        /* The audit line keeps detail's pointer: "ldap" must be the literal. */
        s->cb(s->arg, s->status, s->status == IDENTITY_FOUND ? s->value : NULL,
              s->status == IDENTITY_FOUND ? "ldap" : s->detail);
        evloop_event_free(&s->timer);
        free(s->value);
        free(s->detail_owned);
        free(s);
    }
}

/* A lookup that ends before it is queued or sent. */
static void ldapdir_answer_now(struct ldapdir *d, identity_cb cb, void *arg,
                               enum identity_status status, const char *detail)
{
    ldapdir_count(
        d, status == IDENTITY_NOT_FOUND ? STAT_ldap_lookups_not_found : STAT_ldap_lookups_error, 1);
    ldapdir_count(d, STAT_ldap_lookup_count, 1);
    cb(arg, status, NULL, detail);
}

/* ---- connections on the loop ---- */

static void ldapdir_pump(struct ldapdir *d);

/* Takes s off its connection. */
static void ldapdir_unlink(struct ldapdir_search *s)
{
    struct ldapdir_conn *c = s->conn;

    TAILQ_REMOVE(&c->searches, s, link);
    c->outstanding--;
    s->conn = NULL;
    if (s->timer != NULL)
        evtimer_del(s->timer);
    if (c->outstanding == 0 && c->d->cfg->idle_timeout_s > 0) {
        struct timeval tv = {.tv_sec = c->d->cfg->idle_timeout_s};
        evtimer_add(c->idle, &tv);
    }
}

/* Unbinds and frees c; its searches end in done with detail (a literal
 * when literal). */
static void ldapdir_conn_close(struct ldapdir_conn *c, const char *detail, int literal,
                               struct ldapdir_search_list *done)
{
    struct ldapdir *d = c->d;
    struct ldapdir_search *s;

    while ((s = TAILQ_FIRST(&c->searches)) != NULL) {
        ldapdir_unlink(s);
        ldapdir_answer(s, IDENTITY_ERROR, detail, literal);
        TAILQ_INSERT_TAIL(done, s, link);
    }
    TAILQ_REMOVE(&d->conns, c, link);
    d->n_conns--;
    /* The descriptor leaves the loop before libldap closes it. */
    evloop_event_free(&c->readable);
    evloop_event_free(&c->idle);
    ldap_unbind_ext(c->ld, NULL, NULL);
    free(c);
}

/* The server closed c, or reading it failed: its searches fail. */
static void ldapdir_conn_lost(struct ldapdir_conn *c, struct ldapdir_search_list *done)
{
    char detail[LDAPDIR_WHY_MAX];

    /* Servers close idle connections too (AD after MaxConnIdleTime): only
     * a loss that fails searches is worth a warning. */
    if (c->outstanding > 0)
        log_limited(&c->d->rl_lost, LOG_LVL_WARNING, "identity.ldap: connection to %s lost",
                    c->uri);
    else
        log_info("identity.ldap: %s closed the idle connection", c->uri);
    snprintf(detail, sizeof(detail), "ldap: connection to %s lost", c->uri);
    ldapdir_conn_close(c, detail, 0, done);
}

/* The value of attribute in entry, when it can be an email: one line of
 * printable text of a sensible length. */
static char *ldapdir_entry_value(LDAP *ld, LDAPMessage *entry, const char *attribute)
{
    struct berval **vals = ldap_get_values_len(ld, entry, attribute);
    char *value = NULL;

    if (vals != NULL && vals[0] != NULL && vals[0]->bv_len > 0 &&
        vals[0]->bv_len <= LDAPDIR_VALUE_MAX) {
        size_t i = 0;

        while (i < vals[0]->bv_len && (unsigned char)vals[0]->bv_val[i] >= ' ' &&
               vals[0]->bv_val[i] != 0x7f)
            i++;
        if (i == vals[0]->bv_len)
            value = strndup(vals[0]->bv_val, vals[0]->bv_len);
    }
    ldap_value_free_len(vals);
    return value;
}

/* The search's final result: what its entries and the result code say. */
static void ldapdir_search_result(struct ldapdir_conn *c, struct ldapdir_search *s,
                                  LDAPMessage *msg)
{
    const char *attribute = ldapdir_attribute_names[c->d->cfg->attribute];
    char detail[LDAPDIR_WHY_MAX];
    int err = LDAP_OTHER, rc;

    rc = ldap_parse_result(c->ld, msg, &err, NULL, NULL, NULL, NULL, 0);
    if (rc != LDAP_SUCCESS)
        err = rc;
    if (err == LDAP_SIZELIMIT_EXCEEDED || (err == LDAP_SUCCESS && s->entries >= 2)) {
        ldapdir_answer(s, IDENTITY_NOT_FOUND, "ldap: 2 users match (ambiguous)", 1);
    } else if (err == LDAP_SUCCESS && s->entries == 0) {
        ldapdir_answer(s, IDENTITY_NOT_FOUND, "ldap: no such user", 1);
    } else if (err == LDAP_SUCCESS && s->value == NULL) {
        snprintf(detail, sizeof(detail), "ldap: user has no %s", attribute);
        ldapdir_answer(s, IDENTITY_NOT_FOUND, detail, 0);
    } else if (err == LDAP_SUCCESS) {
        ldapdir_answer(s, IDENTITY_FOUND, "ldap", 1);
    } else {
        snprintf(detail, sizeof(detail), "ldap: search on %s failed: %s", c->uri,
                 ldap_err2string(err));
        ldapdir_answer(s, IDENTITY_ERROR, detail, 0);
    }
}

/* One message from c (freed here). Returns -1 when the server says it is
 * closing the connection. */
static int ldapdir_message(struct ldapdir_conn *c, LDAPMessage *msg, int type,
                           struct ldapdir_search_list *done)
{
    int msgid = ldap_msgid(msg);
    struct ldapdir_search *s;

    TAILQ_FOREACH(s, &c->searches, link)
    {
        if (s->msgid == msgid)
            break;
    }
    if (s == NULL) {
        /* Unsolicited (msgid 0): only the notice of disconnection exists. */
        ldap_msgfree(msg);
        return msgid == 0 && type == LDAP_RES_EXTENDED ? -1 : 0;
    }
    switch (type) {
    case LDAP_RES_SEARCH_ENTRY:
        if (++s->entries == 1)
            s->value =
                ldapdir_entry_value(c->ld, msg, ldapdir_attribute_names[c->d->cfg->attribute]);
        break;
    case LDAP_RES_SEARCH_RESULT:
        ldapdir_search_result(c, s, msg);
        ldapdir_unlink(s);
        TAILQ_INSERT_TAIL(done, s, link);
        break;
    default: /* continuation references: referrals are not chased */
        break;
    }
    ldap_msgfree(msg);
    return 0;
}

/* c's descriptor is readable: every message libldap has, with a zero
 * timeout, until none is left (TLS may hold several in one record). */
static void ldapdir_readable(evutil_socket_t fd, short what, void *arg)
{
    struct ldapdir_conn *c = arg;
    struct ldapdir *d = c->d;
    struct ldapdir_search_list done = TAILQ_HEAD_INITIALIZER(done);

    (void)fd;
    (void)what;
    for (;;) {
        struct timeval zero = {0, 0};
        LDAPMessage *msg = NULL;
        int type = ldap_result(c->ld, LDAP_RES_ANY, LDAP_MSG_ONE, &zero, &msg);

        if (type == 0)
            break;
        if (type == -1 || ldapdir_message(c, msg, type, &done) != 0) {
            ldapdir_conn_lost(c, &done);
            break;
        }
    }
    ldapdir_complete(d, &done);
    ldapdir_pump(d);
}

static void ldapdir_idle(evutil_socket_t fd, short what, void *arg)
{
    struct ldapdir_conn *c = arg;
    struct ldapdir_search_list done = TAILQ_HEAD_INITIALIZER(done);

    (void)fd;
    (void)what;
    log_debug("identity.ldap: closing the connection to %s, idle for %d s", c->uri,
              c->d->cfg->idle_timeout_s);
    ldapdir_conn_close(c, "ldap: connection closed", 1, &done); /* no search: done stays empty */
}

/* A search got no answer in timeout_s: the server hangs. The search is
 * abandoned and fails, and the connection is closed: its other searches
 * would only hang as long. */
static void ldapdir_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct ldapdir_search *s = arg;
    struct ldapdir_conn *c = s->conn;
    struct ldapdir *d = s->d;
    struct ldapdir_search_list done = TAILQ_HEAD_INITIALIZER(done);
    char detail[LDAPDIR_WHY_MAX];

    (void)fd;
    (void)what;
    (void)ldap_abandon_ext(c->ld, s->msgid, NULL, NULL);
    ldapdir_unlink(s);
    snprintf(detail, sizeof(detail), "ldap: no answer in %ds from %s", d->cfg->timeout_s, c->uri);
    ldapdir_answer(s, IDENTITY_ERROR, detail, 0);
    TAILQ_INSERT_TAIL(&done, s, link);
    log_limited(&d->rl_lost, LOG_LVL_WARNING,
                "identity.ldap: %s did not answer a search in %d s: closing the connection", c->uri,
                d->cfg->timeout_s);
    ldapdir_conn_close(c, detail, 0, &done);
    ldapdir_complete(d, &done);
    ldapdir_pump(d);
}

/* Sends s on c. A connection that fails as it is written (closed by the
 * server and not yet seen so) is dropped and s waits for the next one,
 * once; any other failure ends s in done. */
static void ldapdir_send(struct ldapdir_conn *c, struct ldapdir_search *s,
                         struct ldapdir_search_list *done)
{
    struct ldapdir *d = c->d;
    char *attrs[] = {(char *)ldapdir_attribute_names[d->cfg->attribute], NULL};
    /* The server's time limit answers a slow search with an error on a
     * connection that stays; the timer, a second later, is for a server
     * that answers nothing at all. */
    struct timeval limit = {.tv_sec = d->cfg->timeout_s}, hung = {.tv_sec = d->cfg->timeout_s + 1};
    char detail[LDAPDIR_WHY_MAX];
    int rc;

    rc = ldap_search_ext(c->ld, s->base_dn, LDAP_SCOPE_SUBTREE, s->filter, attrs, 0, NULL, NULL,
                         &limit, 2, &s->msgid);
    if (rc == LDAP_SUCCESS) {
        s->conn = c;
        TAILQ_INSERT_TAIL(&c->searches, s, link);
        c->outstanding++;
        evtimer_del(c->idle);
        evtimer_add(s->timer, &hung);
        return;
    }
    if ((rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR) && !s->resent) {
        s->resent = 1;
        TAILQ_INSERT_HEAD(&d->waiting, s, link);
        ldapdir_conn_lost(c, done);
        return;
    }
    snprintf(detail, sizeof(detail), "ldap: search on %s failed: %s", c->uri, ldap_err2string(rc));
    ldapdir_answer(s, IDENTITY_ERROR, detail, 0);
    TAILQ_INSERT_TAIL(done, s, link);
}

/* The connection with the fewest searches outstanding, or NULL. */
static struct ldapdir_conn *ldapdir_least_busy(struct ldapdir *d)
{
    struct ldapdir_conn *c, *best = NULL;

    TAILQ_FOREACH(c, &d->conns, link)
    {
        if (best == NULL || c->outstanding < best->outstanding)
            best = c;
    }
    return best;
}

/* ---- the connection attempt (helper thread) ---- */

static void ldapdir_attempt_free(struct ldapdir_attempt *a)
{
    if (a == NULL)
        return;
    if (a->ld != NULL)
        ldap_unbind_ext(a->ld, NULL, NULL);
    if (a->pipe_rd != -1)
        close(a->pipe_rd);
    if (a->pipe_wr != -1)
        close(a->pipe_wr);
    for (size_t i = 0; a->uris != NULL && i < a->n_uris; i++)
        free(a->uris[i]);
    free(a->uris);
    free(a->bind_dn);
    secret_free(a->password, a->password_len);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* Appends "; " and the formatted clause to a->error (cut when full). */
static void ldapdir_attempt_error(struct ldapdir_attempt *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void ldapdir_attempt_error(struct ldapdir_attempt *a, const char *fmt, ...)
{
    size_t n = strlen(a->error);
    va_list ap;

    if (n > 0 && n + 2 < sizeof(a->error)) {
        memcpy(a->error + n, "; ", 3);
        n += 2;
    }
    va_start(ap, fmt);
    vsnprintf(a->error + n, sizeof(a->error) - n, fmt, ap);
    va_end(ap);
}

/* libldap's diagnostic message after a TLS handshake it gave up on:
 * GnuTLS's reason is not passed on. */
#define LDAPDIR_TLS_UNKNOWN "(unknown error code)"

/* What libldap says about ld's last failure (rc), with its diagnostic
 * message (the server's text) when it has one. tls: the step that failed
 * ran a TLS handshake (ldaps:// connect, StartTLS). */
static void ldapdir_reason(LDAP *ld, int rc, int tls, char *buf, size_t cap)
{
    char *diag = NULL;

    if (ld != NULL)
        (void)ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
    if (tls && rc < 0 && diag != NULL && strcmp(diag, LDAPDIR_TLS_UNKNOWN) == 0)
        /* Connected, then the handshake failed: most often verification. */
        snprintf(buf, cap,
                 "%s: TLS handshake failed (is the server's certificate issued by ca_file, or a "
                 "system CA without it, and for this host name?)",
                 ldap_err2string(rc));
    else if (diag != NULL && diag[0] != '\0')
        snprintf(buf, cap, "%s (%s)", ldap_err2string(rc), diag);
    else
        snprintf(buf, cap, "%s", ldap_err2string(rc));
    ldap_memfree(diag);
}

/* The options every handle gets (its TLS is libldap's global context:
 * ldapdir_tls_context). Returns 0 or the step that failed. */
static const char *ldapdir_options(struct ldapdir_attempt *a, LDAP *ld)
{
    struct timeval tv = {.tv_sec = a->timeout_s};
    int v3 = LDAP_VERSION3;

    if (ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3) != LDAP_OPT_SUCCESS ||
        /* AD answers searches outside a naming context with referrals;
         * chasing them binds anonymously elsewhere, or hangs. */
        ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_RESTART, LDAP_OPT_ON) != LDAP_OPT_SUCCESS ||
        /* TCP connect, and every synchronous step (StartTLS, bind). */
        ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv) != LDAP_OPT_SUCCESS)
        return "options";
    return NULL;
}

/* libldap's global TLS context (ldapdir_tls_load), made once from cfg: the servers'
 * certificates verified (chain and host name) against ca_file alone (not
 * also a folder ldap.conf or LDAPTLS_CACERTDIR names) or the system CAs,
 * TLS 1.2 at least, and the client certificate. Every handle created
 * afterwards uses it (a handle copies the global options, and takes the
 * global context when it has none of its own). Once, not per connection:
 * a context of its own per handle leaks its client certificate and key in
 * Debian's libldap (GnuTLS), at every reconnect. So the files are read at
 * start, before the agent drops its privileges. Returns 0, or -1 with the
 * step in *step. */
static int ldapdir_tls_context(const struct ldapdir_config *cfg, const char **step)
{
    int demand = LDAP_OPT_X_TLS_DEMAND, tls12 = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2, client = 0;

    *step = "TLS options";
    if (ldap_set_option(NULL, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand) != LDAP_OPT_SUCCESS ||
        ldap_set_option(NULL, LDAP_OPT_X_TLS_PROTOCOL_MIN, &tls12) != LDAP_OPT_SUCCESS ||
        (cfg->ca_file != NULL &&
         (ldap_set_option(NULL, LDAP_OPT_X_TLS_CACERTFILE, cfg->ca_file) != LDAP_OPT_SUCCESS ||
          ldap_set_option(NULL, LDAP_OPT_X_TLS_CACERTDIR, NULL) != LDAP_OPT_SUCCESS)) ||
        ldap_set_option(NULL, LDAP_OPT_X_TLS_CERTFILE, cfg->client_certificate_file) !=
            LDAP_OPT_SUCCESS ||
        ldap_set_option(NULL, LDAP_OPT_X_TLS_KEYFILE, cfg->client_key_file) != LDAP_OPT_SUCCESS)
        return -1;
    *step = "the TLS context (ca_file, client_certificate_file, client_key_file)";
    return ldap_set_option(NULL, LDAP_OPT_X_TLS_NEWCTX, &client) == LDAP_OPT_SUCCESS ? 0 : -1;
}

/* Connects, starts TLS and binds to uri. Returns the bound handle, or NULL
 * after adding to a->error (and a->refusal for a refused bind). */
static LDAP *ldapdir_attempt_uri(struct ldapdir_attempt *a, const char *uri)
{
    char why[LDAPDIR_WHY_MAX];
    int ldaps = strncasecmp(uri, "ldaps://", 8) == 0;
    const char *step;
    LDAP *ld = NULL;
    int rc = ldap_initialize(&ld, uri);

    if (rc != LDAP_SUCCESS) {
        ldapdir_reason(NULL, rc, 0, why, sizeof(why));
        ldapdir_attempt_error(a, "%s: %s", uri, why);
        return NULL;
    }
    step = ldapdir_options(a, ld);
    if (step != NULL) {
        ldapdir_attempt_error(a, "%s: %s failed", uri, step);
        goto fail;
    }
    if (!ldaps && !a->insecure_plaintext) {
        rc = ldap_start_tls_s(ld, NULL, NULL);
        if (rc != LDAP_SUCCESS) {
            ldapdir_reason(ld, rc, 1, why, sizeof(why));
            ldapdir_attempt_error(a, "%s: %s: %s", uri, rc < 0 ? "connect or StartTLS" : "StartTLS",
                                  why);
            goto fail;
        }
    }
    if (a->bind_dn != NULL) {
        struct berval pw = {.bv_len = a->password_len, .bv_val = a->password};
        rc = ldap_sasl_bind_s(ld, a->bind_dn, LDAP_SASL_SIMPLE, &pw, NULL, NULL, NULL);
    } else {
        /* The identity is the TLS client certificate's. An empty initial
         * response (not none, which makes the server ask for one) asks
         * for that identity itself rather than one it may act as. */
        struct berval empty = {.bv_len = 0, .bv_val = ""};
        rc = ldap_sasl_bind_s(ld, NULL, "EXTERNAL", &empty, NULL, NULL, NULL);
    }
    if (rc == LDAP_SUCCESS)
        return ld;
    ldapdir_reason(ld, rc, ldaps, why, sizeof(why));
    /* A result code from the server (not a transport error of libldap's,
     * which are negative) other than "try later" refuses the credentials. */
    if (rc > 0 && rc != LDAP_BUSY && rc != LDAP_UNAVAILABLE) {
        if (!a->refused)
            snprintf(a->refusal, sizeof(a->refusal), "bind as %s to %s failed: %s",
                     a->bind_dn != NULL ? a->bind_dn : "the client certificate (SASL EXTERNAL)",
                     uri, why);
        a->refused = 1;
        ldapdir_attempt_error(a, "%s: bind refused: %s", uri, why);
    } else {
        ldapdir_attempt_error(a, "%s: %s: %s", uri,
                              rc > 0                  ? "bind"
                              : ldaps                 ? "connect (TLS)"
                              : a->insecure_plaintext ? "connect"
                                                      : "bind",
                              why);
    }
fail:
    ldap_unbind_ext(ld, NULL, NULL);
    return NULL;
}

/* The helper thread: the URIs in order until one binds, then the
 * handover (or, abandoned, the clean-up). */
static void *ldapdir_attempt_run(void *arg)
{
    struct ldapdir_attempt *a = arg;
    int abandoned;

    for (size_t i = 0; i < a->n_uris && a->ld == NULL; i++) {
        a->ld = ldapdir_attempt_uri(a, a->uris[i]);
        if (a->ld != NULL)
            a->uri_index = i;
        else
            a->failures++;
    }
    pthread_mutex_lock(&a->lock);
    abandoned = a->abandoned;
    if (!abandoned) {
        a->done = 1;
        /* One byte into an empty pipe: it cannot fail but for a bug. */
        if (write(a->pipe_wr, "", 1) != 1)
            abort();
    }
    pthread_mutex_unlock(&a->lock);
    if (abandoned)
        ldapdir_attempt_free(a);
    return NULL;
}

static char *ldapdir_dup(const char *s, int *failed)
{
    char *copy = s != NULL ? strdup(s) : NULL;

    *failed |= s != NULL && copy == NULL;
    return copy;
}

/* The attempt with copies of what the thread needs, its pipe open. */
static struct ldapdir_attempt *ldapdir_attempt_new(struct ldapdir *d)
{
    const struct ldapdir_config *cfg = d->cfg;
    struct ldapdir_attempt *a = calloc(1, sizeof(*a));
    int fds[2], failed = 0;

    if (a == NULL)
        return NULL;
    a->pipe_rd = a->pipe_wr = -1;
    pthread_mutex_init(&a->lock, NULL);
    a->uris = calloc(cfg->n_uris, sizeof(*a->uris));
    failed |= a->uris == NULL;
    for (size_t i = 0; a->uris != NULL && i < cfg->n_uris; i++) {
        a->uris[i] = ldapdir_dup(cfg->uris[i], &failed);
        a->n_uris++;
    }
    if (!cfg->sasl_external) {
        a->bind_dn = ldapdir_dup(cfg->bind_dn, &failed);
        a->password = malloc(d->password_len + 1);
        failed |= a->password == NULL;
        if (a->password != NULL) {
            memcpy(a->password, d->password, d->password_len + 1);
            a->password_len = d->password_len;
        }
    }
    a->insecure_plaintext = cfg->insecure_plaintext;
    a->timeout_s = cfg->connect_timeout_s;
    if (!failed && pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0) {
        a->pipe_rd = fds[0];
        a->pipe_wr = fds[1];
        return a;
    }
    ldapdir_attempt_free(a);
    return NULL;
}

/* The next attempt no sooner than the backoff after failures in a row. */
static void ldapdir_backoff(struct ldapdir *d)
{
    uint64_t bits;
    int64_t delay_ms;

    if (d->failures < UINT_MAX)
        d->failures++;
    /* Without random bits the jitter still differs from agent to agent. */
    if (getrandom(&bits, sizeof(bits), GRND_NONBLOCK) != (ssize_t)sizeof(bits))
        bits = (uint64_t)now_ms() * 0x9e3779b97f4a7c15ull;
    delay_ms = retry_backoff_ms(d->failures, LDAPDIR_BACKOFF_MIN_S, LDAPDIR_BACKOFF_MAX_S, bits);
    d->retry_at = now_ms() + delay_ms;
}

/* An attempt failed with error: the lookups waiting fail, and the next
 * attempt waits for the backoff. logged: the reason was logged already (a
 * refused bind has its own line). */
static void ldapdir_attempt_failed(struct ldapdir *d, const char *error, int logged)
{
    struct ldapdir_search_list done = TAILQ_HEAD_INITIALIZER(done);
    struct ldapdir_search *s;
    char *detail = NULL;

    ldapdir_backoff(d);
    if (asprintf(&detail, "ldap: no directory server reachable: %s", error) == -1)
        detail = NULL;
    free(d->last_error);
    d->last_error = detail;
    if (!logged)
        log_limited(&d->rl_connect, LOG_LVL_WARNING,
                    "identity.ldap: no directory server reachable: %s (next attempt in %lld ms at "
                    "the earliest)",
                    error, (long long)(d->retry_at - now_ms()));
    while ((s = TAILQ_FIRST(&d->waiting)) != NULL) {
        TAILQ_REMOVE(&d->waiting, s, link);
        ldapdir_answer(s, IDENTITY_ERROR,
                       detail != NULL ? detail : "ldap: no directory server reachable", 1);
        TAILQ_INSERT_TAIL(&done, s, link);
    }
    /* detail is d's, and stays while the callbacks run (only a later
     * attempt's end replaces it, never during them). */
    ldapdir_complete(d, &done);
}

/* A bound handle from the helper thread becomes a connection. Returns it,
 * or NULL (ld unbound). */
static struct ldapdir_conn *ldapdir_conn_new(struct ldapdir *d, LDAP *ld, const char *uri)
{
    struct ldapdir_conn *c = calloc(1, sizeof(*c));
    Sockbuf *sb = NULL;
    int fd = -1;

    /* libldap leaves the socket blocking once connected: a server that
     * sends half a message, or stops reading, would hold the loop in
     * read(2) or write(2), out of reach of every timer. Non-blocking,
     * libldap keeps the partial message and ldap_result answers 0. */
    if (c == NULL || ldap_get_option(ld, LDAP_OPT_DESC, &fd) != LDAP_OPT_SUCCESS || fd < 0 ||
        ldap_get_option(ld, LDAP_OPT_SOCKBUF, &sb) != LDAP_OPT_SUCCESS || sb == NULL ||
        ber_sockbuf_ctrl(sb, LBER_SB_OPT_SET_NONBLOCK, (void *)1) != 1)
        goto fail;
    c->d = d;
    c->ld = ld;
    c->uri = uri;
    TAILQ_INIT(&c->searches);
    c->readable = event_new(d->base, fd, EV_READ | EV_PERSIST, ldapdir_readable, c);
    c->idle = evtimer_new(d->base, ldapdir_idle, c);
    if (c->readable == NULL || c->idle == NULL || event_add(c->readable, NULL) != 0)
        goto fail;
    if (d->cfg->idle_timeout_s > 0) {
        struct timeval tv = {.tv_sec = d->cfg->idle_timeout_s};
        evtimer_add(c->idle, &tv);
    }
    TAILQ_INSERT_TAIL(&d->conns, c, link);
    d->n_conns++;
    return c;
fail:
    if (c != NULL) {
        evloop_event_free(&c->readable);
        evloop_event_free(&c->idle);
    }
    free(c);
    ldap_unbind_ext(ld, NULL, NULL);
    return NULL;
}

/* The helper thread wrote its byte: take what it made. */
static void ldapdir_attempt_ended(evutil_socket_t fd, short what, void *arg)
{
    struct ldapdir *d = arg;
    struct ldapdir_attempt *a = d->attempt;
    struct ldapdir_conn *c = NULL;

    (void)fd;
    (void)what;
    /* Pairs with the thread's unlock: what it wrote is seen. */
    pthread_mutex_lock(&a->lock);
    pthread_mutex_unlock(&a->lock);
    evloop_event_free(&d->attempt_ended);
    d->attempt = NULL;
    ldapdir_count(d, STAT_ldap_connect_failures, a->failures);
    if (a->refused) {
        ldapdir_count(d, STAT_ldap_bind_failures, 1);
        log_limited(&d->rl_bind, LOG_LVL_ERROR, "identity.ldap: %s", a->refusal);
    }
    if (a->ld != NULL) {
        c = ldapdir_conn_new(d, a->ld, d->cfg->uris[a->uri_index]);
        a->ld = NULL; /* transferred */
        if (c == NULL)
            ldapdir_attempt_error(a, "%s: out of memory", d->cfg->uris[a->uri_index]);
    }
    if (c != NULL) {
        d->failures = 0;
        d->retry_at = 0;
        ldapdir_count(d, STAT_ldap_connects, 1);
        if (a->failures > 0)
            log_warning("identity.ldap: failed over to %s: %s", c->uri, a->error);
        log_info("identity.ldap: connected to %s as %s", c->uri,
                 d->cfg->sasl_external ? "the client certificate (SASL EXTERNAL)"
                                       : d->cfg->bind_dn);
        ldapdir_attempt_free(a);
        ldapdir_pump(d);
        return;
    }
    ldapdir_attempt_failed(d, a->error, a->refused);
    ldapdir_attempt_free(a);
    /* A lookup a callback queued meanwhile waits for the backoff to end:
     * none does, since ldapdir_lookup fails at once during it. */
}

/* Starts a connection attempt unless one runs, the backoff holds, or the
 * pool is full. */
static void ldapdir_connect(struct ldapdir *d)
{
    struct ldapdir_attempt *a;
    sigset_t all, old;
    pthread_attr_t attr;
    pthread_t tid;
    int rc;

    if (d->closed || d->attempt != NULL || now_ms() < d->retry_at ||
        d->n_conns >= (size_t)d->cfg->max_connections)
        return;
    a = ldapdir_attempt_new(d);
    if (a == NULL) {
        ldapdir_attempt_failed(d, "out of memory", 0);
        return;
    }
    d->attempt_ended = event_new(d->base, a->pipe_rd, EV_READ, ldapdir_attempt_ended, d);
    if (d->attempt_ended == NULL || event_add(d->attempt_ended, NULL) != 0) {
        evloop_event_free(&d->attempt_ended);
        ldapdir_attempt_free(a);
        ldapdir_attempt_failed(d, "out of memory", 0);
        return;
    }
    /* Signals are the loop's (libevent's handlers): the thread takes none.
     * Detached: nobody joins it, ldapdir_free least of all. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&tid, &attr, ldapdir_attempt_run, a);
        pthread_attr_destroy(&attr);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        char why[128];

        evloop_event_free(&d->attempt_ended);
        ldapdir_attempt_free(a);
        snprintf(why, sizeof(why), "cannot start a thread: %s", strerror(rc));
        ldapdir_attempt_failed(d, why, 0);
        return;
    }
    d->attempt = a;
}

/* Sends what waits, to the least busy connections; opens another when
 * they are all busy (or none is up). */
static void ldapdir_pump(struct ldapdir *d)
{
    struct ldapdir_search_list done = TAILQ_HEAD_INITIALIZER(done);
    struct ldapdir_search *s;
    struct ldapdir_conn *c;

    while ((c = ldapdir_least_busy(d)) != NULL && (s = TAILQ_FIRST(&d->waiting)) != NULL) {
        TAILQ_REMOVE(&d->waiting, s, link);
        ldapdir_send(c, s, &done);
    }
    c = ldapdir_least_busy(d);
    if (c == NULL ? !TAILQ_EMPTY(&d->waiting) : c->outstanding >= LDAPDIR_BUSY_SEARCHES)
        ldapdir_connect(d);
    /* No connection left and none coming before the backoff ends (the
     * last one was lost while an attempt for another had failed): what
     * waits would wait for nothing, so it fails now and is retried. */
    if (d->n_conns == 0 && d->attempt == NULL) {
        while ((s = TAILQ_FIRST(&d->waiting)) != NULL) {
            TAILQ_REMOVE(&d->waiting, s, link);
            ldapdir_answer(
                s, IDENTITY_ERROR,
                d->last_error != NULL ? d->last_error : "ldap: no directory server reachable", 1);
            TAILQ_INSERT_TAIL(&done, s, link);
        }
    }
    ldapdir_complete(d, &done);
}

/* ---- the resolver ---- */

int ldapdir_tls_load(const struct ldapdir_config *cfg)
{
    const char *step;

    if (ldapdir_tls_context(cfg, &step) == 0)
        return 0;
    log_error("identity.ldap: cannot set up %s: check that the files exist, are PEM and that the "
              "key is the certificate's",
              step);
    return ERR_CONFIG;
}

const char *ldapdir_search_base(const struct ldapdir_config *cfg, enum user_kind kind,
                                struct str user)
{
    struct str domain;

    if (kind != USER_KIND_SAM || cfg->n_domains == 0)
        return cfg->base_dn;
    domain = ldapfilter_sam_domain(user);
    if (domain.len == 0)
        return cfg->base_dn;
    for (size_t i = 0; i < cfg->n_domains; i++) {
        const char *name = cfg->domains[i].name;

        if (strlen(name) == domain.len && strncasecmp(name, domain.p, domain.len) == 0)
            return cfg->domains[i].base_dn;
    }
    return NULL;
}

void ldapdir_lookup(struct ldapdir *d, enum user_kind kind, struct str user, identity_cb cb,
                    void *arg)
{
    char filter[LDAPFILTER_MAX], detail[LDAPDIR_WHY_MAX];
    struct ldapdir_search *s;
    const char *base;
    int len;

    if (d->closed) {
        ldapdir_answer_now(d, cb, arg, IDENTITY_ERROR, "ldap: shutting down");
        return;
    }
    len = ldapfilter_build(kind, user, d->cfg->exclude_disabled, filter, sizeof(filter));
    if (len < 0) {
        if (len == ERR_TOOBIG)
            snprintf(detail, sizeof(detail), "ldap: identifier too long");
        else
            snprintf(detail, sizeof(detail), "ldap: not a valid %s identifier",
                     userid_kind_name(kind));
        ldapdir_answer_now(d, cb, arg, IDENTITY_NOT_FOUND, detail);
        return;
    }
    base = ldapdir_search_base(d->cfg, kind, user);
    if (base == NULL) {
        struct str domain = ldapfilter_sam_domain(user);

        snprintf(detail, sizeof(detail), "ldap: domain %.*s%s is not in identity.ldap.domains",
                 (int)(domain.len < LDAPDIR_DOMAIN_SHOWN ? domain.len : LDAPDIR_DOMAIN_SHOWN),
                 domain.p, domain.len > LDAPDIR_DOMAIN_SHOWN ? "..." : "");
        ldapdir_answer_now(d, cb, arg, IDENTITY_NOT_FOUND, detail);
        return;
    }
    if (d->n_conns == 0 && d->attempt == NULL && now_ms() < d->retry_at) {
        /* The backoff after a failed attempt: the alert is retried later. */
        ldapdir_answer_now(d, cb, arg, IDENTITY_ERROR,
                           d->last_error != NULL ? d->last_error
                                                 : "ldap: no directory server reachable");
        return;
    }
    if (d->n_pending >= LDAPDIR_MAX_PENDING) {
        log_limited(&d->rl_full, LOG_LVL_WARNING,
                    "identity.ldap: %d lookups pending: further users are retried later",
                    LDAPDIR_MAX_PENDING);
        ldapdir_answer_now(d, cb, arg, IDENTITY_ERROR, "ldap: too many lookups pending");
        return;
    }
    s = calloc(1, sizeof(*s) + (size_t)len + 1);
    if (s == NULL || (s->timer = evtimer_new(d->base, ldapdir_timeout, s)) == NULL) {
        free(s);
        ldapdir_answer_now(d, cb, arg, IDENTITY_ERROR, "ldap: out of memory");
        return;
    }
    memcpy(s->filter, filter, (size_t)len + 1);
    s->d = d;
    s->base_dn = base;
    s->cb = cb;
    s->arg = arg;
    s->started_ms = now_ms();
    d->n_pending++;
    TAILQ_INSERT_TAIL(&d->waiting, s, link);
    ldapdir_pump(d);
}

int ldapdir_new(const struct ldapdir_config *cfg, struct event_base *base, struct stats *stats,
                struct ldapdir **out)
{
    struct ldapdir *d = calloc(1, sizeof(*d));
    char why[256];
    int version, rc;

    *out = NULL;
    if (d == NULL)
        return ERR_NOMEM;
    d->cfg = cfg;
    d->base = base;
    d->stats = stats;
    TAILQ_INIT(&d->conns);
    TAILQ_INIT(&d->waiting);
    d->rl_bind = (struct log_ratelimit)LOG_RATELIMIT_INIT(60, 1);
    d->rl_connect = (struct log_ratelimit)LOG_RATELIMIT_INIT(60, 1);
    d->rl_lost = (struct log_ratelimit)LOG_RATELIMIT_INIT(10, 5);
    d->rl_full = (struct log_ratelimit)LOG_RATELIMIT_INIT(10, 5);
    if (!cfg->sasl_external) {
        /* Not text: a password may end in a blank; only line ends go. */
        rc = secret_read(cfg->bind_password_file, 1, SECRET_MAX, 0, &d->password, &d->password_len,
                         why, sizeof(why));
        if (rc != 0) {
            log_error("identity.ldap.bind_password_file: %s: %s", cfg->bind_password_file, why);
            free(d);
            return rc;
        }
    }
    /* libldap reads ldap.conf and sets its defaults once, on first use:
     * here, on this thread, rather than in a helper thread; then the TLS
     * context overrides them. */
    (void)ldap_get_option(NULL, LDAP_OPT_PROTOCOL_VERSION, &version);
    rc = ldapdir_tls_load(cfg);
    if (rc != 0) {
        secret_free(d->password, d->password_len);
        free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void ldapdir_free(struct ldapdir *d)
{
    struct ldapdir_search_list done = TAILQ_HEAD_INITIALIZER(done);
    struct ldapdir_search *s;
    struct ldapdir_conn *c;

    if (d == NULL)
        return;
    d->closed = 1;
    if (d->attempt != NULL) {
        struct ldapdir_attempt *a = d->attempt;
        int ended;

        evloop_event_free(&d->attempt_ended);
        pthread_mutex_lock(&a->lock);
        ended = a->done;
        a->abandoned = !ended;
        pthread_mutex_unlock(&a->lock);
        /* Else the thread frees it when its connect times out at last. */
        if (ended)
            ldapdir_attempt_free(a);
        d->attempt = NULL;
    }
    while ((s = TAILQ_FIRST(&d->waiting)) != NULL) {
        TAILQ_REMOVE(&d->waiting, s, link);
        ldapdir_answer(s, IDENTITY_ERROR, "ldap: shutting down", 1);
        TAILQ_INSERT_TAIL(&done, s, link);
    }
    while ((c = TAILQ_FIRST(&d->conns)) != NULL)
        ldapdir_conn_close(c, "ldap: shutting down", 1, &done);
    ldapdir_complete(d, &done);
    secret_free(d->password, d->password_len);
    free(d->last_error);
    free(d);
}
