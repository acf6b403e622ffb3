#include "probe.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "errors.h"
#include "core/clock.h"
#include "core/escape.h"
#include "core/http.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/userid.h"
#include "deliver/audit.h"
#include "deliver/dispatch.h"
#include "identity/graph.h"
#include "identity/identity.h"
#include "identity/ldapdir.h"

/* Bytes of an answer (email, reason) kept to print. */
#define PROBE_TEXT_MAX 512

/* One probe: the loop it runs, the step waited for, and its answer. */
struct probe {
    struct event_base *base;
    struct http *http;
    struct event *deadline;
    struct dispatch *dispatch; /* --send-test's; freed after the engine (dispatch.h) */
    int waiting;               /* a step's callback has not run yet */
    int timed_out;             /* the deadline came first */
    enum identity_status status;
    struct dispatch_result sent;
    char email[PROBE_TEXT_MAX], detail[PROBE_TEXT_MAX];
};

static void probe_text(char *out, const char *text)
{
    snprintf(out, PROBE_TEXT_MAX, "%s", text != NULL ? text : "");
}

static void probe_on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct probe *p = arg;

    (void)fd;
    (void)what;
    p->timed_out = 1;
    p->waiting = 0;
}

/* Runs the loop until the step answers or timeout_s pass (a lookup that
 * retries a throttled Graph could otherwise take many minutes). */
static void probe_wait(struct probe *p, int timeout_s)
{
    struct timeval tv = {.tv_sec = timeout_s};

    p->timed_out = 0;
    evtimer_add(p->deadline, &tv);
    while (p->waiting && event_base_loop(p->base, EVLOOP_ONCE) == 0)
        ;
    evtimer_del(p->deadline);
}

static void probe_identity_answer(void *arg, enum identity_status status, const char *email,
                                  const char *detail)
{
    struct probe *p = arg;

    if (!p->waiting)
        return; /* after the deadline */
    p->status = status;
    probe_text(p->email, email);
    probe_text(p->detail, detail);
    p->waiting = 0;
}

/* The directories the identifier is looked up in. */
enum probe_by {
    PROBE_BY_LDAP,
    PROBE_BY_GRAPH,
    PROBE_BY_ORDER,
};

/* Looks the identifier up through one resolver: LDAP (connect, TLS and
 * bind first), Graph (the token first), or identity.order. Returns 0 or 1
 * (failed). */
static int probe_identity_by(struct probe *p, const struct config *cfg, const char *identifier,
                             enum probe_by by_what)
{
    static const char *const names[] = {
        [PROBE_BY_LDAP] = "ldap", [PROBE_BY_GRAPH] = "graph", [PROBE_BY_ORDER] = "identity.order"};
    const struct graph_config *gc = &cfg->identity.graph;
    const struct ldapdir_config *lc = &cfg->identity.ldap;
    struct str id = str_make(identifier, strlen(identifier));
    struct graph *g = NULL;
    struct ldapdir *l = NULL;
    struct identity *ids = NULL;
    int64_t started = now_ms();
    const char *by = names[by_what];
    int rc = ERR_CONFIG, timeout_s = 10;

    p->waiting = 1;
    switch (by_what) {
    case PROBE_BY_LDAP:
        rc = ldapdir_new(lc, p->base, NULL, &l);
        if (rc == 0)
            ldapdir_lookup(l, userid_detect(id), id, probe_identity_answer, p);
        /* Connect, StartTLS and bind on each URI in turn, then the search. */
        timeout_s = 3 * lc->connect_timeout_s * (int)lc->n_uris + lc->timeout_s + 5;
        break;
    case PROBE_BY_GRAPH:
        rc = graph_new(gc, p->base, p->http, NULL, &g);
        if (rc == 0)
            graph_lookup(g, userid_detect(id), id, probe_identity_answer, p);
        /* The token and the lookup, each with its own timeout, and a retry. */
        timeout_s = 4 * gc->timeout_s;
        break;
    case PROBE_BY_ORDER:
        rc = identity_new(&cfg->identity, p->base, p->http, stats_register(), &ids);
        if (rc == 0)
            identity_resolve(ids, id, USER_KIND_AUTO, probe_identity_answer, p);
        break;
    }
    if (rc != 0) {
        log_error("probe: identity: cannot build the %s resolver: %s (see above)", by,
                  err_name(rc));
        return 1;
    }
    probe_wait(p, timeout_s);
    /* Before the engine: their requests still in flight end now. */
    ldapdir_free(l);
    graph_free(g);
    identity_free(ids);
    if (p->timed_out) {
        log_error("probe: identity: %s: no answer from %s in time", identifier, by);
        return 1;
    }
    if (p->status == IDENTITY_FOUND) {
        log_info("probe: identity: %s -> %s (%s, %lld ms)", identifier, p->email, by,
                 (long long)(now_ms() - started));
        return 0;
    }
    log_error("probe: identity: %s: %s (%s)", identifier,
              p->status == IDENTITY_NOT_FOUND ? "not found" : "lookup failed", p->detail);
    return 1;
}

/* Through each network directory configured (LDAP, then Graph), else
 * through identity.order. Returns the number that failed. */
static int probe_identity(struct probe *p, const struct config *cfg, const char *identifier)
{
    int failed = 0, network = 0;

    if (cfg->identity.ldap.n_uris > 0) {
        failed += probe_identity_by(p, cfg, identifier, PROBE_BY_LDAP);
        network = 1;
    }
    if (cfg->identity.graph.tenant_id != NULL) {
        failed += probe_identity_by(p, cfg, identifier, PROBE_BY_GRAPH);
        network = 1;
    }
    if (!network)
        failed += probe_identity_by(p, cfg, identifier, PROBE_BY_ORDER);
    return failed;
}

static void probe_sent(void *arg, const struct dispatch_result *res)
{
    struct probe *p = arg;

    if (!p->waiting)
        return;
    p->sent = *res;
    probe_text(p->detail, res->reason);
    p->sent.reason = p->detail;
    p->waiting = 0;
}

/* The test send's audit line: what was sent, and how it went. */
static void probe_audit(const struct config *cfg, const struct probe_options *opt, const char *key,
                        int ok, long latency_ms, const struct probe *p)
{
    struct audit *a = NULL;
    struct audit_record ar = {
        .source = "rtr-agent check --send-test",
        .mapping = "check",
        .rule = STR_LIT("test send"),
        .user = str_make(opt->send_email, strlen(opt->send_email)),
        .email = opt->send_email,
        .event = str_make(opt->send_event, strlen(opt->send_event)),
        .outcome = ok ? "test-dispatched" : "test-failed",
        .detail = ok ? NULL : p->detail,
        .key = key,
        .status = p->sent.status,
        .attempts = 1,
        .latency_ms = latency_ms,
    };

    clock_gettime(CLOCK_REALTIME, &ar.time);
    /* Root would create it for root, and `run`, dropped to its user, could
     * then not append: the line is left out instead. */
    if (cfg->audit.file != NULL && cfg->user != NULL && geteuid() == 0 &&
        access(cfg->audit.file, F_OK) != 0) {
        log_warning("probe: --send-test: not audited: %s does not exist yet, and root would "
                    "create it for root, not for user \"%s\"",
                    cfg->audit.file, cfg->user);
        return;
    }
    if (audit_open(&cfg->audit, &a) == 0 && a != NULL)
        audit_write(a, &ar);
    audit_free(a);
}

/* One real request to SafeTitan. Returns 0 or 1 (failed). */
static int probe_send(struct probe *p, const struct config *cfg, const struct probe_options *opt)
{
    unsigned char random[32];
    char key[2 * sizeof(random) + 1];
    struct dispatch_alert alert = {
        .event = str_make(opt->send_event, strlen(opt->send_event)),
        .email = opt->send_email,
        .key = key,
    };
    int64_t started = now_ms();
    int rc, ok;

    if (cfg->dispatch.mode == DISPATCH_DRY_RUN) {
        log_error("probe: --send-test: dispatch.mode is \"dry-run\": there is no SafeTitan to "
                  "send to");
        return 1;
    }
    if (RAND_bytes(random, sizeof(random)) != 1) {
        log_error("probe: --send-test: no randomness for the idempotency key");
        return 1;
    }
    hex_encode(random, sizeof(random), key);
    clock_gettime(CLOCK_REALTIME, &alert.occurred);
    rc = dispatch_new(&cfg->dispatch, p->http, &p->dispatch);
    p->waiting = rc == 0;
    if (rc == 0)
        rc = dispatch_send(p->dispatch, &alert, probe_sent, p);
    if (rc != 0) {
        log_error("probe: --send-test: cannot send: %s", err_name(rc));
        return 1;
    }
    probe_wait(p, cfg->dispatch.connect_timeout_s + cfg->dispatch.timeout_s + 5);
    ok = !p->timed_out && p->sent.verdict == RETRY_DONE;
    if (p->timed_out)
        probe_text(p->detail, "no answer in time");
    if (ok)
        log_info("probe: --send-test: SafeTitan took event \"%s\" for %s: HTTP %d (%lld ms, "
                 "idempotency key %s)",
                 opt->send_event, opt->send_email, p->sent.status, (long long)(now_ms() - started),
                 key);
    else
        log_error("probe: --send-test: event \"%s\" for %s not taken: %s", opt->send_event,
                  opt->send_email, p->detail);
    probe_audit(cfg, opt, key, ok, (long)(now_ms() - started), p);
    /* A request still in flight ends in http_free: its callback then finds
     * nothing waited for. */
    p->waiting = 0;
    return !ok;
}

int probe_run(const struct config *cfg, const struct probe_options *opt)
{
    struct probe p = {0};
    int failed = 0;

    p.base = event_base_new();
    if (p.base == NULL || http_new(p.base, &p.http) != 0 ||
        (p.deadline = evtimer_new(p.base, probe_on_deadline, &p)) == NULL) {
        log_error("probe: cannot set up an event loop and an HTTPS engine");
        failed = 1;
        goto out;
    }
    if (opt->identifier != NULL)
        failed += probe_identity(&p, cfg, opt->identifier);
    if (opt->send_event != NULL)
        failed += probe_send(&p, cfg, opt);
out:
    http_free(p.http);
    dispatch_free(p.dispatch);
    if (p.deadline != NULL)
        event_free(p.deadline);
    if (p.base != NULL)
        event_base_free(p.base);
    return failed;
}
