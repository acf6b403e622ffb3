#include "pipeline.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decision.h"
#include "errors.h"
#include "event.h"
#include "framing.h"
#include "core/log.h"
#include "message.h"
#include "render.h"

/* A tap line holds the raw frame, its MSG and every parsed field, each
 * escaped (up to 6 bytes per input byte for control characters). */
#define PIPELINE_TAP_EXPANSION 24
#define PIPELINE_TAP_SLACK     65536
/* The tap batch is written once it holds this much: a few hundred lines
 * per write(2), and little memory per worker. */
#define PIPELINE_TAP_BATCH (256 * 1024)

struct pipeline {
    struct stats *stats;
    struct pipeline_outputs q;
    struct mapping_set *set;
    struct mapping_matcher *mm;
    struct message msg;
    struct scratch scratch;
    struct jsonw tap;                           /* the tap batch: whole lines */
    size_t tap_lines;                           /* in the batch */
    char *rec;                                  /* the decision record [DECISION_RECORD_MAX] */
    size_t rec_len, rec_count;                  /* its bytes and decisions */
    int rec_pending;                            /* encoded, not queued yet */
    int rec_refused;                            /* the pending record met a full queue (counted) */
    char addr[SOCKADDR_TEXT_MAX];               /* addr_of as text, once formatted */
    struct sockaddr_storage addr_of;            /* the last source formatted */
    size_t addr_of_size;                        /* 0: none */
    struct event_field external_id;             /* cef.ext.externalId: the source's event id */
    struct decision_hasher *hasher;             /* keys and frame hashes */
    char event_ref[7 + DECISION_KEY_SIZE];      /* "sha256:" + hex, when it has none */
    struct jsonw blocks[MAPPING_MAX_DECISIONS]; /* each decision's policy block */
};

/* The field that carries the source's own event id (idempotency keys). */
static const char pipeline_external_id[] = "cef.ext.externalId";

/* One per process: the limit is on lines written, whichever worker writes. */
static struct log_ratelimit pipeline_rl_parse = LOG_RATELIMIT_INIT(10, 10);
static struct log_ratelimit pipeline_rl_tap = LOG_RATELIMIT_INIT(60, 1);
static struct log_ratelimit pipeline_rl_decision = LOG_RATELIMIT_INIT(60, 1);
static struct log_ratelimit pipeline_rl_truncated = LOG_RATELIMIT_INIT(60, 1);
/* log_level "debug": a trace of what each message became, 20 lines a
 * second at most (a busy stream would otherwise flood the journal). */
static struct log_ratelimit pipeline_rl_trace = LOG_RATELIMIT_INIT(1, 20);

int pipeline_new(const struct config *cfg, struct stats *stats, struct mapping_set *set,
                 const struct pipeline_outputs *out_to, struct pipeline **out)
{
    struct pipeline *p;
    size_t max = cfg->limits.max_message_bytes;
    char *buf;
    int rc = ERR_NOMEM;

    *out = NULL;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return ERR_NOMEM;
    p->stats = stats;
    p->q = *out_to;
    /* A name of the event model: it compiles. */
    (void)event_field_compile(pipeline_external_id, sizeof(pipeline_external_id) - 1,
                              &p->external_id);
    /* A batch that fills past PIPELINE_TAP_BATCH by its last line is
     * written: the writer needs room for that line more. */
    jsonw_init(&p->tap, PIPELINE_TAP_BATCH + max * PIPELINE_TAP_EXPANSION + PIPELINE_TAP_SLACK);
    for (size_t i = 0; i < MAPPING_MAX_DECISIONS; i++)
        jsonw_init(&p->blocks[i], POLICY_BLOCK_MAX);
    buf = malloc(max > 0 ? max : 1);
    if (buf == NULL)
        goto out;
    scratch_init(&p->scratch, buf, max); /* transferred */
    p->rec = malloc(DECISION_RECORD_MAX);
    if (p->rec == NULL)
        goto out;
    rc = decision_hasher_new(&p->hasher);
    if (rc != 0)
        goto out;
    rc = mapping_matcher_new((uint32_t)cfg->limits.regex_match_limit,
                             (uint32_t)cfg->limits.regex_depth_limit, stats, &p->mm);
    if (rc != 0)
        goto out;
    pipeline_set_mappings(p, set);
    *out = p; /* transferred */
    p = NULL;
out:
    pipeline_free(p);
    return rc;
}

void pipeline_free(struct pipeline *p)
{
    if (p == NULL)
        return;
    mapping_set_unref(p->set);
    mapping_matcher_free(p->mm);
    jsonw_free(&p->tap);
    for (size_t i = 0; i < MAPPING_MAX_DECISIONS; i++)
        jsonw_free(&p->blocks[i]);
    free(p->rec);
    decision_hasher_free(p->hasher);
    free(p->scratch.buf);
    free(p);
}

void pipeline_set_mappings(struct pipeline *p, struct mapping_set *set)
{
    if (set != NULL)
        mapping_set_ref(set);
    mapping_set_unref(p->set);
    p->set = set;
}

static const char *pipeline_source_name(struct pipeline *p, const struct pipeline_source *src)
{
    size_t size;

    if (src->name != NULL)
        return src->name;
    /* A datagram sender sends many in a row: its text serves them all. */
    size = sockaddr_size(src->addr);
    if (size == 0 || size != p->addr_of_size || memcmp(&p->addr_of, src->addr, size) != 0) {
        sockaddr_format(src->addr, p->addr, sizeof(p->addr));
        memcpy(&p->addr_of, src->addr, size);
        p->addr_of_size = size;
    }
    return p->addr;
}

static void pipeline_count_error(struct pipeline *p, const struct pipeline_source *src)
{
    const char *error = p->msg.error;

    /* Pairs past the table always come with an error (this one or an earlier). */
    if (p->msg.dropped > 0)
        stats_add(p->stats, STAT_cef_pairs_dropped, p->msg.dropped);
    switch (p->msg.error_kind) {
    case ERR_KIND_FRAME:
        return;           /* a truncated frame: the transport counted it and logged why */
    case ERR_KIND_SYSLOG: /* a PRI that is no PRIVAL (the scratch is sized not to fill here) */
    case ERR_KIND_RFC5424:
        stats_add(p->stats, STAT_parse_errors_syslog, 1);
        break;
    case ERR_KIND_CEF:
        stats_add(p->stats, STAT_parse_errors_cef, 1);
        break;
    case ERR_KIND_LEEF:
        stats_add(p->stats, STAT_parse_errors_leef, 1);
        break;
    case ERR_KIND_NONE:
        break;
    }
    log_limited(&pipeline_rl_parse, LOG_LVL_WARNING, "parse error in a message from %s (%s): %s",
                pipeline_source_name(p, src), src->transport, error);
}

/* The host the idempotency key names: the syslog HOSTNAME, else the
 * sender's address without its port (which changes with each connection,
 * so a resent message keeps its key). */
static struct str pipeline_origin_host(struct pipeline *p, const char *source)
{
    struct str h = p->msg.syslog.hostname;
    const char *colon = strrchr(source, ':');

    if (h.len > 0 && !(h.len == 1 && h.p[0] == '-'))
        return h;
    if (source[0] == '[' && colon != NULL && colon > source && colon[-1] == ']')
        return str_make(source + 1, (size_t)(colon - source - 2));
    return str_make(source, colon != NULL ? (size_t)(colon - source) : strlen(source));
}

/* The request's Idempotency-Key, else the source's event id when it names
 * one, else a hash of the whole frame:
 * hashed only for decided messages, which are rare. */
static struct str pipeline_event_ref(struct pipeline *p, const struct pipeline_source *src)
{
    struct str id = src->event_ref;

    if (id.len == 0)
        id = event_field_get(&p->external_id, &p->msg, NULL);
    if (id.len > 0)
        return id;
    memcpy(p->event_ref, "sha256:", 7);
    decision_frame_hash(p->hasher, p->msg.raw, p->event_ref + 7);
    return str_make(p->event_ref, 7 + DECISION_KEY_LEN);
}

/* The policy block of each decision (none when the set has no policy): a
 * block that did not fit its writer is counted and left out, and the
 * decision then triggers today's one SafeTitan event. */
static void pipeline_policies(struct pipeline *p, const struct mapping_decision *d,
                              struct str *blocks, size_t n, const struct decision_origin *origin)
{
    for (size_t i = 0; i < n; i++) {
        struct policy_input in = {&d[i], origin->host, (int64_t)origin->received.tv_sec};

        blocks[i] = STR_ABSENT;
        if (policy_decide(p->set, p->mm, &p->msg, &in, p->q.correlate, p->hasher, &p->blocks[i],
                          NULL) == 0)
            continue;
        if (p->blocks[i].err != 0) {
            stats_add(p->stats, STAT_policy_errors, 1);
            log_limited(&pipeline_rl_decision, LOG_LVL_WARNING,
                        "mapping %s: the policy block of a decision is over %d bytes: left out "
                        "(counted in policy_errors)",
                        d[i].mapping, POLICY_BLOCK_MAX);
            continue;
        }
        blocks[i] = str_make(p->blocks[i].buf, p->blocks[i].len);
    }
}

/* Runs the mappings; the decisions they make become the pending record. */
static void pipeline_decide(struct pipeline *p, const struct pipeline_source *src)
{
    struct mapping_decision d[MAPPING_MAX_DECISIONS];
    struct str blocks[MAPPING_MAX_DECISIONS];
    struct decision_origin origin;
    const char *source;
    size_t n, dropped;

    n = mapping_match(p->set, p->mm, &p->msg, d, NULL);
    if (n == 0) {
        /* The guard spares the source's formatting when not tracing. */
        if (log_wants(LOG_LVL_DEBUG))
            log_limited(&pipeline_rl_trace, LOG_LVL_DEBUG,
                        "undecided: a message from %s: no mapping decided: %.*s",
                        pipeline_source_name(p, src),
                        (int)(p->msg.raw.len < 120 ? p->msg.raw.len : 120), p->msg.raw.p);
        return;
    }
    stats_add(p->stats, STAT_messages_decided, 1);
    stats_add(p->stats, STAT_decisions, n);
    source = pipeline_source_name(p, src);
    log_limited(&pipeline_rl_trace, LOG_LVL_DEBUG,
                "decided: a message from %s: mapping %s, rule \"%.*s\", user \"%.*s\"%s", source,
                d[0].mapping, (int)d[0].rule.len, d[0].rule.p, (int)d[0].user.len, d[0].user.p,
                n > 1 ? " (and more)" : "");
    clock_gettime(CLOCK_REALTIME, &origin.received);
    origin.source = str_make(source, strlen(source));
    origin.host = pipeline_origin_host(p, source);
    origin.event_ref = pipeline_event_ref(p, src);
    origin.transport =
        src->transport != NULL ? str_make(src->transport, strlen(src->transport)) : STR_ABSENT;
    origin.ack = src->ack;
    pipeline_policies(p, d, blocks, n, &origin);
    p->rec_len =
        decision_encode(p->hasher, d, blocks, n, &origin, p->rec, DECISION_RECORD_MAX, &dropped);
    if (dropped > 0) {
        stats_add(p->stats, STAT_decisions_dropped, dropped);
        log_limited(&pipeline_rl_decision, LOG_LVL_WARNING,
                    "mapping %s: dropped %zu decision%s on a message from %s: a rule, user or "
                    "event text over %d bytes",
                    d[0].mapping, dropped, dropped == 1 ? "" : "s", source, DECISION_MAX_FIELD);
    }
    p->rec_count = n - dropped;
    p->rec_pending = p->rec_len > 0;
    p->rec_refused = 0;
}

/* A cut message is not decided on: "user=jsmith2" cut to "user=jsmith"
 * would name another user, and nothing in the message tells a cut value
 * from a whole one. */
static void pipeline_undecided(struct pipeline *p, const struct pipeline_source *src)
{
    stats_add(p->stats, STAT_messages_truncated_undecided, 1);
    log_limited(&pipeline_rl_truncated, LOG_LVL_WARNING,
                "a message from %s (%s) was cut at max_message_bytes or by the end of its "
                "connection: not decided on (a cut value could name the wrong user)",
                pipeline_source_name(p, src), src->transport);
}

void pipeline_tap_flush(struct pipeline *p)
{
    if (p->tap.len == 0)
        return;
    if (tap_write(p->q.tap, p->tap.buf, p->tap.len) == 0)
        stats_add(p->stats, STAT_tap_lines, p->tap_lines);
    jsonw_reset(&p->tap);
    p->tap_lines = 0;
}

/* Renders the parsed message as a line of the tap batch. A line that cannot
 * be rendered is dropped from the tap (a debugging aid) with a log line,
 * never from the pipeline. */
static void pipeline_tap(struct pipeline *p, const struct pipeline_source *src)
{
    size_t line_start = p->tap.len;

    render_message(&p->tap, &p->msg, pipeline_source_name(p, src), src->transport);
    if (p->tap.err) {
        log_limited(&pipeline_rl_tap, LOG_LVL_WARNING, "tap: line for a message from %s: %s",
                    pipeline_source_name(p, src), err_name(p->tap.err));
        jsonw_rewind(&p->tap, line_start);
        return;
    }
    p->tap_lines++;
    if (line_start == 0)
        p->q.tap_batch_started(p->q.tap_arg);
    if (p->tap.len >= PIPELINE_TAP_BATCH)
        pipeline_tap_flush(p);
}

/* Queues the pending record. Returns 0 (queued, or dropped: logged and
 * counted) or ERR_BUSY. A record refused is counted once, not at each of
 * the offers (a resumed input, a wake) that follow. */
static int pipeline_push_decisions(struct pipeline *p)
{
    int rc = queue_push(p->q.decisions, p->rec, p->rec_len, p->q.decisions_waiter);

    if (rc == ERR_BUSY) {
        if (!p->rec_refused)
            stats_add(p->stats, STAT_decision_queue_full, 1);
        p->rec_refused = 1;
        return ERR_BUSY;
    }
    if (rc != 0) {
        /* The response sizes its ring for many of the largest records. */
        stats_add(p->stats, STAT_decisions_dropped, p->rec_count);
        log_limited(&pipeline_rl_decision, LOG_LVL_ERROR,
                    "decision record of %zu bytes dropped: %s", p->rec_len, err_name(rc));
    }
    return 0;
}

int pipeline_flush(struct pipeline *p)
{
    if (p->rec_pending) {
        if (pipeline_push_decisions(p) == ERR_BUSY)
            return ERR_BUSY;
        p->rec_pending = 0;
    }
    return 0;
}

struct str pipeline_last_record(const struct pipeline *p)
{
    return p->rec_count > 0 ? str_make(p->rec, p->rec_len) : STR_ABSENT;
}

int pipeline_blocked(const struct pipeline *p)
{
    return p->rec_pending || (p->q.decisions != NULL && queue_blocked(p->q.decisions));
}

int pipeline_pending(const struct pipeline *p)
{
    return p->rec_pending;
}

int pipeline_approval(struct pipeline *p, const struct decision_approval *a)
{
    if (p->q.decisions == NULL)
        return ERR_INVALID;
    if (pipeline_flush(p) == ERR_BUSY)
        return ERR_BUSY;
    p->rec_count = 0;
    p->rec_len = decision_approval_encode(a, p->rec, DECISION_RECORD_MAX);
    if (p->rec_len == 0)
        return ERR_INVALID;
    p->rec_pending = 1;
    p->rec_refused = 0;
    pipeline_flush(p);
    return PIPELINE_ACK_LATER;
}

int pipeline_handle(struct pipeline *p, struct str frame, unsigned flags,
                    const struct pipeline_source *src)
{
    /* Framers and the UDP reader cut frames at max_message_bytes, the size of
     * the scratch buffer message_parse needs; this only guards the contract. */
    size_t len = frame.len < p->scratch.cap ? frame.len : p->scratch.cap;
    int decided;

    if (pipeline_flush(p) == ERR_BUSY)
        return ERR_BUSY; /* nothing consumed: offered again once woken */
    message_parse(frame.p, len, &p->msg, &p->scratch);
    p->msg.http_source = src->http_source;
    p->msg.http_query = src->http_query;
    p->rec_count = 0;
    if (flags & FRAME_TRUNCATED)
        message_mark_truncated(&p->msg);
    stats_add(p->stats, STAT_messages_received, 1);
    if (p->msg.error != NULL)
        pipeline_count_error(p, src);
    if (p->set != NULL && (flags & FRAME_TRUNCATED))
        pipeline_undecided(p, src);
    else if (p->set != NULL)
        pipeline_decide(p, src);
    decided = p->rec_pending;
    /* Consumed: what a full queue refused stays pending for the next call. */
    pipeline_flush(p);
    if (p->q.tap != NULL)
        pipeline_tap(p, src);
    return decided && src->ack.owner != 0 ? PIPELINE_ACK_LATER : 0;
}
