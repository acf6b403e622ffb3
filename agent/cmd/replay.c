#include "replay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "errors.h"
#include "core/escape.h"
#include "core/http.h"
#include "identity/identity.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "decide/mapping.h"
#include "decide/correlate.h"
#include "decide/decision.h"
#include "decide/policy.h"
#include "message.h"
#include "deliver/delivery.h"
#include "core/stats.h"
#include "expect.h"
#include "ingest/webhook.h"
#include "reader.h"

/* Escaped bytes of a message shown on its --explain header line. */
#define REPLAY_SHOWN 160
/* --http: a request fixture is read whole, up to this. */
#define REPLAY_HTTP_MAX (64 * 1024 * 1024)
/* --http without an http listener in the config: its defaults. */
#define REPLAY_HTTP_MAX_ALERTS 1000

/* Everything one replay reuses: nothing is allocated per message, except
 * while --explain output grows its escaping buffer. */
struct replay {
    const struct replay_options *opt;
    struct mapping_set *set;
    struct mapping_matcher *mm;
    struct mapping_explain explain;
    struct event_base *base;
    struct http *http; /* for a network resolver (Graph) */
    struct identity *id;
    size_t max_message; /* limits.max_message_bytes */
    char *scratch_buf;  /* max_message bytes */
    struct scratch scratch;
    struct message msg;
    struct mapping_decision dec[MAPPING_MAX_DECISIONS];
    struct jsonw out;
    char *esc; /* --explain: escaped text, grown as needed */
    size_t esc_cap;
    const char *input_file;
    unsigned long long input_line; /* reader_frame.line: a line, or a frame's ordinal */
    /* Frames of this input cut to max_message, and the first of them: told
     * once per input, not once per frame. */
    unsigned long long truncated_lines, first_truncated;
    /* The decision whose user is being resolved; NULL once its callback ran
     * (a late callback for an abandoned lookup then finds NULL). */
    const struct mapping_decision *pending;
    struct expect *expect; /* --expect; NULL without */
    /* Policies: the counts of this run (NULL when no policy counts), the
     * pending decision's policy block (empty: none). */
    struct correlate *correlate;
    struct decision_hasher *hasher;
    struct jsonw block;
    struct policy_explain policy_explain;
};

/* Writes s[0..len) to stderr escaped for a log line (an --explain line):
 * explanations go to stderr, so that stdout holds JSON lines only. */
static void replay_put_escaped(struct replay *r, const char *s, size_t len)
{
    size_t need = len * ESCAPE_MAX_EXPANSION;

    if (need > r->esc_cap) {
        char *p = realloc(r->esc, need);
        if (p == NULL) {
            fputs("[out of memory]", stderr);
            return;
        }
        r->esc = p;
        r->esc_cap = need;
    }
    fwrite(r->esc, 1, escape_text(r->esc, r->esc_cap, s, len, ESCAPE_LOG), stderr);
}

/* Writes an explain text. mapping_explain.c escaped '"', '\\' and NUL in what it
 * quotes (mapping.h), so a backslash passes as it is: escaping it again
 * would turn a quoted \" back into a closing quote. Everything between
 * backslashes is escaped as for a log line (control characters, invalid
 * UTF-8); a backslash never sits inside a UTF-8 sequence. */
static void replay_put_explained(struct replay *r, const char *why)
{
    for (;;) {
        const char *bs = strchr(why, '\\');
        size_t n = bs != NULL ? (size_t)(bs - why) : strlen(why);

        replay_put_escaped(r, why, n);
        if (bs == NULL)
            return;
        fputc('\\', stderr);
        why = bs + 1;
    }
}

/* --explain: one line per mapping tried. */
static void replay_explain_line(void *arg, const char *mapping, const char *file, int decided,
                                const char *why)
{
    struct replay *r = arg;
    const char *slash = strrchr(file, '/');
    const char *base = slash != NULL ? slash + 1 : file;

    (void)decided; /* why already starts with "yes:" or "no:" */
    fputs("  ", stderr);
    replay_put_escaped(r, mapping, strlen(mapping));
    fputs(" (", stderr);
    replay_put_escaped(r, base, strlen(base));
    fputs("): ", stderr);
    replay_put_explained(r, why);
    fputc('\n', stderr);
}

/* --explain: "FILE:LINE: <the message, escaped, shortened>". */
static void replay_explain_header(struct replay *r, struct str msg)
{
    char shown[REPLAY_SHOWN + ESCAPE_MAX_EXPANSION];
    /* escape_text stops before an escape that does not fit, so an output
     * within REPLAY_SHOWN with ESCAPE_MAX_EXPANSION bytes to spare means
     * everything fit; past it, escaping again with the exact cap cuts
     * cleanly on a whole escape (as log.c does). */
    size_t n = escape_text(shown, sizeof(shown), msg.p, msg.len, ESCAPE_LOG);
    int cut = n > REPLAY_SHOWN;

    if (cut)
        n = escape_text(shown, REPLAY_SHOWN, msg.p, msg.len, ESCAPE_LOG);
    fprintf(stderr, "%s:%llu: %.*s%s\n", r->input_file, r->input_line, (int)n, shown,
            cut ? "..." : "");
}

/* The pending decision's policy, priority and the actions that would run
 * (none of them runs), when a policy applies. */
static void replay_policy(struct replay *r, const struct mapping_decision *d)
{
    struct policy_block b;
    struct policy_actions acts;

    (void)d;
    if (r->block.len == 0 || policy_block_read(str_make(r->block.buf, r->block.len), &b) != 0)
        return;
    if (b.policy.p != NULL) {
        acts = policy_actions(r->set, b.policy, b.priority);
        jsonw_key(&r->out, "policy");
        jsonw_str(&r->out, b.policy);
        jsonw_key(&r->out, "priority");
        jsonw_cstr(&r->out, policy_priority_name(b.priority));
        jsonw_key(&r->out, "why");
        jsonw_str(&r->out, b.why);
        jsonw_key(&r->out, "actions");
        jsonw_array_begin(&r->out);
        for (size_t i = 0; i < acts.n; i++)
            jsonw_cstr(&r->out, acts.v[i].name);
        jsonw_array_end(&r->out);
    }
    policy_block_free(&b);
}

/* --explain: a policy's line. */
static void replay_policy_line(void *arg, const char *text)
{
    struct replay *r = arg;

    fputs("  policy ", stderr);
    replay_put_explained(r, text);
    fputc('\n', stderr);
}

/* The policy block of d (r->block; empty when the set has no policy).
 * Received now: replay counts the alerts of a run as they are read. */
static void replay_decide_policy(struct replay *r, const struct mapping_decision *d)
{
    struct policy_input in = {d, r->msg.syslog.hostname, (int64_t)time(NULL)};

    jsonw_reset(&r->block);
    if (policy_decide(r->set, r->mm, &r->msg, &in, r->correlate, r->hasher, &r->block,
                      r->opt->explain ? &r->policy_explain : NULL) == 0 ||
        r->block.err != 0)
        jsonw_reset(&r->block);
}

/* identity_cb: prints the decision r->pending with its outcome. */
static void replay_resolved(void *arg, enum identity_status status, const char *email,
                            const char *detail)
{
    struct replay *r = arg;
    const struct mapping_decision *d = r->pending;

    if (d == NULL)
        return;
    r->pending = NULL;
    if (status != IDENTITY_FOUND)
        email = NULL;
    if (status == IDENTITY_ERROR)
        log_warning("replay: %s:%llu: user lookup failed: %s", r->input_file, r->input_line,
                    detail != NULL ? detail : "unknown error");
    jsonw_reset(&r->out);
    jsonw_object_begin(&r->out);
    jsonw_key(&r->out, "input_file");
    jsonw_cstr(&r->out, r->input_file);
    jsonw_key(&r->out, "input_line");
    jsonw_int(&r->out, (long long)r->input_line);
    jsonw_key(&r->out, "mapping");
    jsonw_cstr(&r->out, d->mapping);
    jsonw_key(&r->out, "rule");
    jsonw_str(&r->out, d->rule);
    jsonw_key(&r->out, "user");
    jsonw_str(&r->out, d->user);
    jsonw_key(&r->out, "email");
    jsonw_cstr(&r->out, email);
    jsonw_key(&r->out, "event");
    jsonw_str(&r->out, d->event);
    jsonw_key(&r->out, "outcome");
    jsonw_cstr(&r->out, delivery_dry_run_outcome(status));
    replay_policy(r, d);
    if (status != IDENTITY_FOUND && detail != NULL) {
        /* Why, as the audit line says it ("static: not listed"). */
        jsonw_key(&r->out, "detail");
        jsonw_cstr(&r->out, detail);
    }
    jsonw_object_end(&r->out);
    jsonw_newline(&r->out);
    if (r->out.err != 0) {
        log_error("replay: %s:%llu: decision not printed: %s", r->input_file, r->input_line,
                  err_name(r->out.err));
        return;
    }
    fwrite(r->out.buf, 1, r->out.len, stdout);
    if (r->expect != NULL) {
        struct expect_decision ed = {
            .mapping = d->mapping,
            .rule = d->rule,
            .user = d->user,
            .event = d->event,
            .email = email,
            .outcome = delivery_dry_run_outcome(status),
            .detail = status != IDENTITY_FOUND ? detail : NULL,
        };

        expect_decision(r->expect, r->input_file, r->input_line, &ed);
    }
}

/* Resolves d's user and prints the decision, waiting for an asynchronous
 * resolver so that output stays in input order. */
static int replay_decision(struct replay *r, const struct mapping_decision *d)
{
    r->pending = d;
    identity_resolve(r->id, d->user, d->user_kind, replay_resolved, r);
    /* EVLOOP_ONCE returns 1 when nothing is pending: a resolver that
     * neither answered nor waits for anything would otherwise hang here. */
    while (r->pending != NULL && event_base_loop(r->base, EVLOOP_ONCE) == 0)
        ;
    if (r->pending != NULL) {
        r->pending = NULL;
        log_error("replay: %s:%llu: the user lookup never completed", r->input_file, r->input_line);
        return ERR_IO;
    }
    return 0;
}

/* Runs one message through the mappings and identity: r->msg, parsed from
 * bytes (the caller set what else it carries). A truncated one is not run
 * through the mappings, as in the daemon (pipeline.h): a cut value could
 * name the wrong user. */
static int replay_decide(struct replay *r, struct str bytes, int truncated)
{
    size_t n = 0;
    int rc = 0;

    if (truncated)
        message_mark_truncated(&r->msg);
    if (r->opt->explain) {
        replay_explain_header(r, bytes);
        if (truncated)
            fprintf(stderr, "  -> not matched: the line was cut at max_message_bytes (%zu bytes)\n",
                    r->max_message);
        else if (mapping_set_count(r->set) == 0)
            fputs("  no mappings are loaded\n", stderr);
    }
    if (!truncated)
        n = mapping_match(r->set, r->mm, &r->msg, r->dec, r->opt->explain ? &r->explain : NULL);
    for (size_t i = 0; i < n && rc == 0; i++) {
        replay_decide_policy(r, &r->dec[i]);
        rc = replay_decision(r, &r->dec[i]);
    }
    if (r->opt->explain && n == 0 && !truncated)
        fputs("  -> no decision\n", stderr);
    /* Flushed per message: with both streams on a terminal, a decision
     * lands next to its explanation. */
    if (n > 0)
        fflush(stdout);
    return rc;
}

/* reader_ops.frame: one message of a log. */
static int replay_message(void *arg, const struct reader_frame *f)
{
    struct replay *r = arg;

    r->input_file = f->input;
    r->input_line = f->line;
    if (f->truncated && r->truncated_lines++ == 0)
        r->first_truncated = f->line;
    message_parse(f->bytes.p, f->bytes.len, &r->msg, &r->scratch);
    return replay_decide(r, f->bytes, f->truncated);
}

/* --http: the first http listener's limits, as the daemon applies them. */
static struct webhook_limits replay_http_limits(const struct config *cfg)
{
    struct webhook_limits lim = {REPLAY_HTTP_MAX_ALERTS, cfg->limits.max_message_bytes, STR_ABSENT};

    for (size_t i = 0; i < cfg->n_listen; i++) {
        const struct listen_config *lc = &cfg->listen[i];

        if (lc->proto != LISTEN_HTTP)
            continue;
        lim.max_alerts = (size_t)lc->max_alerts;
        if (lc->idempotency_field != NULL)
            lim.idempotency_field = str_make(lc->idempotency_field, strlen(lc->idempotency_field));
        break;
    }
    return lim;
}

/* A request as sent: its request line's method and target (into target,
 * NUL-terminated), and where its body starts (after the blank line that
 * ends the headers; LF or CRLF). Returns 0, or -1 with why set. */
static int replay_http_parse(struct str req, enum webhook_method *method, char *target, size_t cap,
                             struct str *body, const char **why)
{
    const char *eol = memchr(req.p, '\n', req.len), *sp1, *sp2, *p;
    size_t line;

    if (eol == NULL) {
        *why = "no request line (METHOD TARGET HTTP/1.1, headers, a blank line, the body)";
        return -1;
    }
    line = (size_t)(eol - req.p);
    sp1 = memchr(req.p, ' ', line);
    sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', line - (size_t)(sp1 + 1 - req.p)) : NULL;
    if (sp2 == NULL || (size_t)(sp2 - sp1 - 1) >= cap || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        *why = "the first line is not METHOD TARGET HTTP/1.x";
        return -1;
    }
    *method = sp1 - req.p == 3 && memcmp(req.p, "GET", 3) == 0    ? WEBHOOK_GET
              : sp1 - req.p == 4 && memcmp(req.p, "POST", 4) == 0 ? WEBHOOK_POST
                                                                  : WEBHOOK_OTHER;
    memcpy(target, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    target[sp2 - sp1 - 1] = '\0';
    for (p = eol + 1; p < req.p + req.len;) {
        const char *end = memchr(p, '\n', req.len - (size_t)(p - req.p));
        size_t len = end != NULL ? (size_t)(end - p) : req.len - (size_t)(p - req.p);

        if (len == 0 || (len == 1 && p[0] == '\r')) {
            *body = str_make(p + len + 1, req.len - (size_t)(p - req.p) - len - 1);
            return 0;
        }
        p += len + 1;
    }
    *body = str_make("", 0); /* no blank line: headers only */
    return 0;
}

/* --http: one request fixture, decided as the daemon's HTTP intake would
 * (routes, query, body; not the API key). input_line is the alert's
 * position in the request (1 first). */
static int replay_http_file(struct replay *r, const struct config *cfg, const char *path)
{
    struct webhook_limits lim = replay_http_limits(cfg);
    struct webhook_request w = {0};
    enum webhook_method method = WEBHOOK_OTHER;
    char why[WEBHOOK_WHY_MAX], target[8192];
    const char *bad = NULL;
    struct str req, body;
    char *buf = malloc(REPLAY_HTTP_MAX + 1);
    FILE *f = fopen(path, "rb");
    size_t len = 0;
    int rc = 0, status = 0;

    if (buf == NULL || f == NULL) {
        fprintf(stderr, "rtr-agent replay: %s: %s\n", path,
                buf == NULL ? "out of memory" : strerror(errno));
        free(buf);
        if (f != NULL)
            fclose(f);
        return buf == NULL ? ERR_NOMEM : ERR_IO;
    }
    len = fread(buf, 1, REPLAY_HTTP_MAX + 1, f);
    if (ferror(f) || len > REPLAY_HTTP_MAX)
        bad = ferror(f) ? "cannot be read" : "longer than 64 MiB";
    fclose(f);
    req = str_make(buf, len);
    if (bad == NULL && replay_http_parse(req, &method, target, sizeof(target), &body, &bad) == 0) {
        status = webhook_target(&w, method, target, why, sizeof(why));
        if (status == 0)
            status = webhook_body(&w, body, &lim, why, sizeof(why));
    }
    if (bad != NULL) {
        fprintf(stderr, "rtr-agent replay: %s: %s\n", path, bad);
        rc = ERR_IO;
    } else if (status != 0) {
        fprintf(stderr, "rtr-agent replay: %s: the agent would answer %d: %s\n", path, status, why);
        rc = ERR_IO;
    }
    r->input_file = path;
    for (size_t i = 0; rc == 0 && i < w.n_alerts; i++) {
        r->input_line = i + 1;
        message_parse(w.alerts[i].p, w.alerts[i].len, &r->msg, &r->scratch);
        r->msg.http_source = str_make(w.source, strlen(w.source));
        r->msg.http_query = w.query;
        rc = replay_decide(r, w.alerts[i], 0);
    }
    webhook_request_free(&w);
    free(buf);
    return rc;
}

/* --http: each path is a request fixture. Returns the first error (every
 * file is still tried). */
static int replay_http(struct replay *r, const struct config *cfg, char *const *paths, int n)
{
    int rc = 0;

    if (n == 0) {
        fputs("rtr-agent replay: --http needs request files\n", stderr);
        return ERR_IO;
    }
    for (int i = 0; i < n; i++) {
        int one = replay_http_file(r, cfg, paths[i]);

        if (rc == 0)
            rc = one;
    }
    return rc;
}

/* reader_ops.end: what was cut in this input, told once. */
static void replay_input_end(void *arg, const char *input)
{
    struct replay *r = arg;
    int lf = r->opt->framing == FRAMING_LF;

    if (r->truncated_lines > 0)
        log_warning("replay: %s: %llu %s longer than limits.max_message_bytes (%zu) were "
                    "cut to that length and not decided on (a cut value could name the wrong "
                    "user), the first at %s %llu",
                    input, r->truncated_lines, lf ? "line(s)" : "frame(s)", r->max_message,
                    lf ? "line" : "frame", r->first_truncated);
    r->truncated_lines = 0;
}

/* Sending is the next issue's work: until then only a dry run may go on. */
static int replay_check_dispatch(const struct config *cfg, const struct replay_options *opt)
{
    if (opt->dry_run || cfg->dispatch.mode == DISPATCH_DRY_RUN)
        return 0;
    fprintf(stderr,
            "rtr-agent replay: dispatch.mode \"%s\" would send alerts, and sending is not "
            "available in this build yet; use --dry-run\n",
            cfg->dispatch.mode == DISPATCH_DIRECT ? "direct" : "orchestrator");
    return ERR_CONFIG;
}

static int replay_open(struct replay *r, const struct config *cfg)
{
    struct stats *stats = stats_register();

    log_configure(cfg->log_level, cfg->log_format);
    if (policy_set_load(cfg, mapping_regex_flags(&cfg->limits), &r->set) != 0)
        return ERR_CONFIG;
    if (mapping_set_count(r->set) == 0)
        log_warning("replay: no mappings loaded: no message can decide");
    identity_warn_unresolvable(&cfg->identity, mapping_set_count(r->set), cfg->path);
    if (mapping_matcher_new((uint32_t)cfg->limits.regex_match_limit,
                            (uint32_t)cfg->limits.regex_depth_limit, stats, &r->mm) != 0 ||
        decision_hasher_new(&r->hasher) != 0)
        return ERR_NOMEM;
    if (policy_longest_window(r->set) > 0 &&
        correlate_new(cfg->limits.correlation_max_bytes, policy_longest_window(r->set),
                      &r->correlate) != 0)
        return ERR_NOMEM;
    r->base = event_base_new();
    if (r->base == NULL) {
        log_error("replay: cannot create an event loop");
        return ERR_NOMEM;
    }
    if (identity_uses_network(&cfg->identity) && http_new(r->base, &r->http) != 0)
        return ERR_NOMEM;
    if (identity_new(&cfg->identity, r->base, r->http, stats, &r->id) != 0)
        return ERR_CONFIG;
    r->max_message = cfg->limits.max_message_bytes;
    r->scratch_buf = malloc(r->max_message);
    if (r->scratch_buf == NULL)
        return ERR_NOMEM;
    scratch_init(&r->scratch, r->scratch_buf, r->max_message);
    return 0;
}

static void replay_close(struct replay *r)
{
    /* First: in-flight lookups complete now, while what they touch exists. */
    identity_free(r->id);
    http_free(r->http);
    if (r->base != NULL)
        event_base_free(r->base);
    mapping_matcher_free(r->mm);
    mapping_set_unref(r->set);
    correlate_free(r->correlate);
    decision_hasher_free(r->hasher);
    jsonw_free(&r->block);
    jsonw_free(&r->out);
    expect_free(r->expect);
    free(r->scratch_buf);
    free(r->esc);
}

int replay_run(const struct config *cfg, const struct replay_options *opt, char *const *paths,
               int n)
{
    struct replay r = {.opt = opt};
    struct reader_ops ops = {.frame = replay_message, .end = replay_input_end, .arg = &r};
    int rc;

    r.explain.line = replay_explain_line;
    r.explain.arg = &r;
    r.policy_explain.line = replay_policy_line;
    r.policy_explain.arg = &r;
    jsonw_init(&r.out, 0);
    jsonw_init(&r.block, POLICY_BLOCK_MAX);
    rc = replay_check_dispatch(cfg, opt);
    if (rc == 0 && opt->expect != NULL)
        rc = expect_load(opt->expect, &r.expect);
    if (rc == 0)
        rc = replay_open(&r, cfg);
    if (rc == 0 && opt->http) {
        rc = replay_http(&r, cfg, paths, n);
    } else if (rc == 0) {
        /* A NUL stays in the message, as in a UDP datagram. */
        struct reader_options ropt = {"replay", opt->framing, 1, r.max_message};
        rc = reader_run(&ropt, paths, n, &ops);
    }
    /* Not after an input that could not be read: its decisions were never
     * made, and would all be reported missing. */
    if (rc == 0 && r.expect != NULL && expect_finish(r.expect) > 0)
        rc = ERR_INVALID;
    if (rc == ERR_NOMEM)
        log_error("replay: out of memory");
    if (fflush(stdout) == EOF || ferror(stdout)) {
        fputs("rtr-agent replay: cannot write to stdout\n", stderr);
        rc = ERR_IO;
    }
    replay_close(&r);
    return rc;
}
