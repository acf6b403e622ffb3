#include "relp_session.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/version.h"
#include "errors.h"
#include "framing.h"
#include "relp.h"

/* What the session owes the client for one command it read, in order. */
enum relp_answer {
    RELP_PENDING,  /* a message whose alerts are not yet durable */
    RELP_OK,       /* "200 OK" */
    RELP_LOST,     /* a message that will never be durable: close unanswered */
    RELP_CLOSE_OK, /* "200 OK" to "close", then the session ends */
    RELP_REFUSED,  /* "500" to a command we do not serve */
};

struct relp_slot {
    uint64_t txnr;
    enum relp_answer answer;
};

struct relp_session {
    const struct input_ctx *ctx;
    struct input_acker *acker;
    struct evbuffer *out;
    void (*wake)(void *conn);
    void *conn;
    struct relp_slot slots[RELP_WINDOW];
    uint64_t head, tail; /* slots [head, tail) wait to be answered, by seq */
    uint64_t next_txnr;  /* what the client's next command must carry */
    int opened;          /* "open" answered */
    int closing;         /* answer nothing more: close once the output is out */
    int stopping;        /* read no more commands */
};

static struct log_ratelimit relp_rl = LOG_RATELIMIT_INIT(10, 10);

static struct relp_slot *relp_slot(struct relp_session *s, uint64_t seq)
{
    return &s->slots[seq % RELP_WINDOW];
}

/* Writes the answers that are due, in order, up to the first still
 * pending; a lost message closes the session instead (the client sends it
 * and everything after it again). */
static void relp_flush(struct relp_session *s)
{
    char buf[64];
    size_t n;

    while (!s->closing && s->head < s->tail) {
        struct relp_slot *slot = relp_slot(s, s->head);

        if (slot->answer == RELP_PENDING)
            return;
        if (slot->answer == RELP_LOST) {
            s->closing = 1;
            log_limited(&relp_rl, LOG_LVL_WARNING,
                        "relp: message %llu could not be made durable: closing the session "
                        "unanswered (the sender keeps it)",
                        (unsigned long long)slot->txnr);
            return;
        }
        n = slot->answer == RELP_REFUSED
                ? relp_rsp_format(buf, sizeof(buf), slot->txnr, 500, "command not supported",
                                  STR_LIT(""))
                : relp_rsp_format(buf, sizeof(buf), slot->txnr, 200, "OK", STR_LIT(""));
        evbuffer_add(s->out, buf, n);
        if (slot->answer == RELP_OK)
            stats_add(s->ctx->stats, STAT_relp_acks, 1);
        if (slot->answer == RELP_CLOSE_OK)
            s->closing = 1;
        s->head++;
    }
}

/* input_acker: a message's alerts are durable (or lost). */
static void relp_acked(void *input, uint64_t seq, struct decision_answer answer)
{
    struct relp_session *s = input;

    if (seq < s->head || seq >= s->tail)
        return; /* cannot happen: every seq handed out is answered once */
    relp_slot(s, seq)->answer = answer.durable ? RELP_OK : RELP_LOST;
    relp_flush(s);
    s->wake(s->conn);
}

int relp_session_new(const struct input_ctx *ctx, struct evbuffer *out, void (*wake)(void *conn),
                     void *conn, struct relp_session **out_s)
{
    struct relp_session *s = calloc(1, sizeof(*s));

    *out_s = NULL;
    if (s == NULL)
        return ERR_NOMEM;
    s->acker = input_acker_new(relp_acked, s);
    if (s->acker == NULL) {
        free(s);
        return ERR_NOMEM;
    }
    s->ctx = ctx;
    s->out = out;
    s->wake = wake;
    s->conn = conn;
    s->next_txnr = RELP_TXNR_FIRST;
    *out_s = s;
    return 0;
}

void relp_session_free(struct relp_session *s)
{
    if (s == NULL)
        return;
    s->ctx->ops->acker_release(s->ctx->owner, s->acker);
    free(s);
}

int relp_session_idle(const struct relp_session *s)
{
    return s->head == s->tail;
}

int relp_session_closing(const struct relp_session *s)
{
    return s->closing;
}

int relp_session_serverclose(struct relp_session *s)
{
    char buf[32];

    s->stopping = 1;
    if (s->closing || !relp_session_idle(s))
        return 0;
    evbuffer_add(s->out, buf, relp_serverclose_format(buf, sizeof(buf)));
    s->closing = 1;
    return 1;
}

/* A protocol error: logged, counted, and the session closes unanswered. */
static enum relp_want relp_fail(struct relp_session *s, const struct pipeline_source *src,
                                const char *what)
{
    stats_add(s->ctx->stats, STAT_relp_protocol_errors, 1);
    log_limited(&relp_rl, LOG_LVL_WARNING, "relp %s: %s: closing the session", src->name, what);
    s->closing = 1;
    return RELP_WANT_CLOSE;
}

/* Answers "open" at once (nothing can be pending before it). */
static enum relp_want relp_open(struct relp_session *s, const struct relp_frame *f,
                                const struct pipeline_source *src)
{
    struct relp_offers offers;
    char buf[256];
    size_t n;

    if (s->opened)
        return relp_fail(s, src, "a second open");
    if (relp_offers_parse(f->data, &offers) != 0 || !offers.has_syslog) {
        n = relp_rsp_format(buf, sizeof(buf), f->txnr, 500, "offers not supported", STR_LIT(""));
        evbuffer_add(s->out, buf, n);
        return relp_fail(s, src, "the client offers no syslog command or a bad relp_version");
    }
    n = relp_open_rsp_format(buf, sizeof(buf), f->txnr, STR_LIT("rtr-agent," RTR_VERSION ","));
    evbuffer_add(s->out, buf, n);
    s->opened = 1;
    log_debug("relp %s: session open (%.*s)", src->name, (int)offers.software.len,
              offers.software.p);
    return RELP_WANT_MORE;
}

/* A "syslog" message: handed to the pipeline with its ack. Returns
 * RELP_WANT_BUSY when the pipeline refused it (nothing was taken). */
static enum relp_want relp_message(struct relp_session *s, const struct relp_frame *f,
                                   struct pipeline_source *src)
{
    const struct limits_config *lim = &s->ctx->cfg->limits;
    struct str msg = framer_trim_trailer(f->data.p, f->data.len);
    unsigned flags = 0;
    struct relp_slot *slot;
    int rc;

    if (msg.len > lim->max_message_bytes) {
        msg.len = lim->max_message_bytes;
        flags = FRAME_TRUNCATED;
    }
    src->ack = (struct decision_ack){(uint64_t)(uintptr_t)s->acker, s->tail, s->ctx->worker};
    if (flags != 0 && lim->oversize == OVERSIZE_REJECT)
        rc = 0; /* answered, never handed on: as the TCP framer drops it */
    else
        rc = pipeline_handle(s->ctx->pipe, msg, flags, src);
    src->ack = (struct decision_ack){0};
    if (rc == ERR_BUSY)
        return RELP_WANT_BUSY; /* offered again, whole, once woken */
    if (flags != 0)
        stats_add(s->ctx->stats, STAT_frames_oversized, 1);
    slot = relp_slot(s, s->tail++);
    slot->txnr = f->txnr;
    slot->answer = rc == PIPELINE_ACK_LATER ? RELP_PENDING : RELP_OK;
    if (rc == PIPELINE_ACK_LATER)
        s->acker->outstanding++;
    return RELP_WANT_MORE;
}

/* One command, in order with the answers still due. */
static enum relp_want relp_command(struct relp_session *s, const struct relp_frame *f,
                                   struct pipeline_source *src)
{
    enum relp_want want = RELP_WANT_MORE;

    if (f->txnr != s->next_txnr)
        return relp_fail(s, src, "transaction number out of sequence");
    if (f->cmd == RELP_OPEN)
        want = relp_open(s, f, src);
    else if (!s->opened)
        return relp_fail(s, src, "a command before open");
    else if (f->cmd == RELP_SYSLOG)
        want = relp_message(s, f, src);
    else if (f->cmd == RELP_CLOSE)
        *relp_slot(s, s->tail++) = (struct relp_slot){f->txnr, RELP_CLOSE_OK};
    else if (f->cmd == RELP_RSP || f->cmd == RELP_SERVERCLOSE)
        return relp_fail(s, src, "a server's command from the client");
    else
        *relp_slot(s, s->tail++) = (struct relp_slot){f->txnr, RELP_REFUSED};
    if (want == RELP_WANT_MORE)
        s->next_txnr = relp_txnr_next(f->txnr);
    return want;
}

enum relp_want relp_session_input(struct relp_session *s, struct evbuffer *in,
                                  struct pipeline_source *src)
{
    size_t max_data = s->ctx->cfg->limits.max_connection_buffer - RELP_HEADER_MAX - 1;
    enum relp_want want = RELP_WANT_MORE;

    while (!s->closing && !s->stopping && want == RELP_WANT_MORE) {
        size_t n = evbuffer_get_length(in), used;
        struct relp_frame f;
        int rc;

        if (s->tail - s->head == RELP_WINDOW) {
            want = RELP_WANT_WAIT;
            break;
        }
        if (n == 0)
            break;
        rc = relp_frame_parse((const char *)evbuffer_pullup(in, -1), n, max_data, &f, &used);
        if (rc == ERR_AGAIN)
            break;
        if (rc == ERR_TOOBIG)
            return relp_fail(s, src, "a command longer than max_connection_buffer");
        if (rc != 0)
            return relp_fail(s, src, "malformed frame");
        want = relp_command(s, &f, src);
        if (want != RELP_WANT_BUSY)
            evbuffer_drain(in, used);
    }
    relp_flush(s);
    if (s->closing)
        return RELP_WANT_CLOSE;
    return want;
}
