#include "pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "framing.h"
#include "log.h"
#include "message.h"
#include "render.h"

/* A tap line holds the raw frame, its MSG and every parsed field, each
 * escaped (up to 6 bytes per input byte for control characters). */
#define PIPELINE_TAP_EXPANSION 24
#define PIPELINE_TAP_SLACK     65536

struct pipeline {
    struct stats *stats;
    struct queue *tap;
    struct queue_waiter *waiter;
    struct message msg;
    struct scratch scratch;
    struct jsonw jw;
    char addr[SOCKADDR_TEXT_MAX]; /* the current frame's source, once formatted */
};

/* One per process: the limit is on lines written, whichever worker writes. */
static struct log_ratelimit pipeline_rl_parse = LOG_RATELIMIT_INIT(10, 10);
static struct log_ratelimit pipeline_rl_tap = LOG_RATELIMIT_INIT(60, 1);

static const struct {
    const char *prefix;
    enum stats_counter counter;
} pipeline_error_kinds[] = {
    {"rfc5424:", STAT_parse_errors_syslog},
    {"rfc3164:", STAT_parse_errors_syslog},
    {"cef:", STAT_parse_errors_cef},
    {"leef:", STAT_parse_errors_leef},
};

size_t pipeline_tap_line_max(const struct config *cfg)
{
    return cfg->limits.max_message_bytes * PIPELINE_TAP_EXPANSION + PIPELINE_TAP_SLACK;
}

int pipeline_new(const struct config *cfg, struct stats *stats, struct queue *tap,
                 struct queue_waiter *waiter, struct pipeline **out)
{
    struct pipeline *p;
    size_t max = cfg->limits.max_message_bytes;
    char *buf;

    *out = NULL;
    p = calloc(1, sizeof(*p));
    buf = malloc(max > 0 ? max : 1);
    if (p == NULL || buf == NULL) {
        free(p);
        free(buf);
        return ERR_NOMEM;
    }
    p->stats = stats;
    p->tap = tap;
    p->waiter = waiter;
    scratch_init(&p->scratch, buf, max); /* transferred */
    jsonw_init(&p->jw, pipeline_tap_line_max(cfg));
    *out = p;
    return 0;
}

void pipeline_free(struct pipeline *p)
{
    if (p == NULL)
        return;
    jsonw_free(&p->jw);
    free(p->scratch.buf);
    free(p);
}

static const char *pipeline_source_name(struct pipeline *p, const struct pipeline_source *src)
{
    if (src->name != NULL)
        return src->name;
    if (p->addr[0] == '\0')
        sockaddr_format(src->addr, p->addr, sizeof(p->addr));
    return p->addr;
}

static void pipeline_count_error(struct pipeline *p, const struct pipeline_source *src)
{
    const char *error = p->msg.error;

    /* A truncated frame: the transport counted it and logged why. */
    if (strncmp(error, "frame:", 6) == 0)
        return;
    for (size_t i = 0; i < sizeof(pipeline_error_kinds) / sizeof(pipeline_error_kinds[0]); i++) {
        const char *prefix = pipeline_error_kinds[i].prefix;
        if (strncmp(error, prefix, strlen(prefix)) == 0) {
            stats_add(p->stats, pipeline_error_kinds[i].counter, 1);
            break;
        }
    }
    log_limited(&pipeline_rl_parse, LOG_LVL_WARNING, "parse error in a message from %s (%s): %s",
                pipeline_source_name(p, src), src->transport, error);
}

/* Renders the parsed message and queues the line. ERR_BUSY leaves nothing
 * behind; a line that cannot be rendered or queued whole is dropped from
 * the tap (a debugging aid) with a log line, never from the pipeline. */
static int pipeline_tap(struct pipeline *p, const struct pipeline_source *src)
{
    int rc;

    jsonw_reset(&p->jw);
    render_message(&p->jw, &p->msg, pipeline_source_name(p, src), src->transport);
    if (p->jw.err) {
        log_limited(&pipeline_rl_tap, LOG_LVL_WARNING, "tap: line for a message from %s: %s",
                    pipeline_source_name(p, src), err_name(p->jw.err));
        return 0;
    }
    rc = queue_push(p->tap, p->jw.buf, p->jw.len, p->waiter);
    if (rc == ERR_TOOBIG) {
        log_limited(&pipeline_rl_tap, LOG_LVL_WARNING,
                    "tap: line of %zu bytes for a message from %s does not fit the queue",
                    p->jw.len, pipeline_source_name(p, src));
        return 0;
    }
    return rc;
}

int pipeline_handle(struct pipeline *p, struct str frame, unsigned flags,
                    const struct pipeline_source *src)
{
    /* Framers and the UDP reader cut frames at max_message_bytes, the size of
     * the scratch buffer message_parse needs; this only guards the contract. */
    size_t len = frame.len < p->scratch.cap ? frame.len : p->scratch.cap;
    int rc;

    p->addr[0] = '\0';
    message_parse(frame.p, len, &p->msg, &p->scratch);
    if (flags & FRAME_TRUNCATED)
        message_mark_truncated(&p->msg);
    if (p->tap != NULL) {
        rc = pipeline_tap(p, src);
        if (rc != 0)
            return rc; /* ERR_BUSY: counted when it is offered again */
    }
    /* The mapping engine plugs in here. */
    stats_add(p->stats, STAT_messages_received, 1);
    if (p->msg.error != NULL)
        pipeline_count_error(p, src);
    return 0;
}
