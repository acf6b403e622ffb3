/* The pipeline stage: what happens to each frame a listener received: it is
 * parsed and counted, the mappings decide on it (their decisions go to the
 * delivery thread through the decision queue) and --tap gets its line. One
 * pipeline per worker thread: it owns the parsed message, a scratch buffer,
 * a mapping matcher, a decision record buffer and the tap batch, all
 * allocated once and reused: nothing is allocated per message. */
#ifndef RTR_PIPELINE_H
#define RTR_PIPELINE_H

#include <stddef.h>
#include <sys/socket.h>

#include "core/config.h"
#include "decision.h"
#include "mapping.h"
#include "policy.h"
#include "core/queue.h"
#include "core/sockaddr.h"
#include "core/stats.h"
#include "str.h"
#include "tap.h"

struct pipeline;

/* Who sent a frame. name ("ip:port") may be NULL: the pipeline formats addr
 * itself, only when it needs it (a tap line, an error log). */
struct pipeline_source {
    const struct sockaddr *addr;
    const char *name;
    const char *transport; /* "udp", "tcp", "tls", "relp", "http", "https" */
    /* HTTP intake: the message's http.source and http.query pairs
     * (message.h), and the request's Idempotency-Key (per object) as the
     * event reference its keys hash (empty: the message's own, as for
     * syslog). */
    struct str http_source;
    struct str http_query;
    struct str event_ref;
    /* Per frame, for an input that acknowledges a message only once its
     * alerts are durable (RELP): the ack its decision record carries.
     * owner 0: none. */
    struct decision_ack ack;
};

/* pipeline_handle: the frame was consumed and its decisions (the record
 * carries src->ack) will be reported durable through the delivery side. */
#define PIPELINE_ACK_LATER 1

/* Where a pipeline's output goes. decisions: the delivery thread's queue
 * (decision.h records; required when the pipeline has mappings), its
 * waiter armed when the queue is full. tap: the --tap file (NULL = none).
 * Tap lines gather in the pipeline's batch, written when it fills and by
 * pipeline_tap_flush, which the owner must call soon after
 * tap_batch_started(arg) said a batch began (the worker arms a timer). */
struct pipeline_outputs {
    struct queue *decisions;
    /* The alerts policies count (shared by every worker; NULL when no
     * policy counts). */
    struct correlate *correlate;
    struct queue_waiter *decisions_waiter;
    struct tap *tap;
    void (*tap_batch_started)(void *arg);
    void *tap_arg;
};

/* stats: the worker's counter block (its matcher counts there too). set:
 * the mappings to run (a reference is taken; NULL = nothing decides).
 * out_to is copied. Returns 0 and *out (free with pipeline_free), or ERR_NOMEM. */
int pipeline_new(const struct config *cfg, struct stats *stats, struct mapping_set *set,
                 const struct pipeline_outputs *out_to, struct pipeline **out);

/* Drops the reference to the mappings too. NULL is fine. */
void pipeline_free(struct pipeline *p);

/* Runs set (a reference is taken; NULL = nothing decides) from the next
 * frame on, dropping the reference to the previous one. */
void pipeline_set_mappings(struct pipeline *p, struct mapping_set *set);

/* Handles one frame (at most max_message_bytes): parses it, runs the
 * mappings and queues the message's decisions as one record, then adds its
 * tap line to the batch. flags: the framer's FRAME_* flags; FRAME_TRUNCATED (cut at the size
 * limit or by the end of its connection) marks the message ("frame:
 * truncated" unless a parse error says more) and keeps it from the
 * mappings: a cut value could name the wrong user ("user=jsmith2" cut to
 * "user=jsmith"). Such a message is counted (messages_truncated_undecided)
 * and logged (rate-limited) with its source, and still tapped.
 *
 * Returns 0 when the frame was consumed (counted, parsed, matched), or
 * PIPELINE_ACK_LATER when it was and src->ack.owner is set and the message
 * made decisions: their record carries the ack (a record is never dropped
 * for its size: the decision queue's ring holds many of the largest). What
 * it produced that a full queue refused stays pending in the pipeline (its
 * waiter armed): then every call returns ERR_BUSY, consuming and counting
 * nothing (the caller keeps the frame and offers it again once woken),
 * until pipeline_flush (or a later call) got it all queued. Decisions are
 * thus never dropped for a full queue, and a frame is never parsed or
 * matched twice. A tap line that cannot be rendered (past the writer's
 * cap) is dropped from the tap with a log line, never from the pipeline. */
int pipeline_handle(struct pipeline *p, struct str frame, unsigned flags,
                    const struct pipeline_source *src);

/* Hands an approver's decision (from the HTTP intake) to the delivery
 * thread, which answers its ack (decision_answer.approval). Returns
 * PIPELINE_ACK_LATER, ERR_BUSY as pipeline_handle (nothing consumed), or
 * ERR_INVALID (a token or source over 255 bytes). */
int pipeline_approval(struct pipeline *p, const struct decision_approval *a);

/* Queues what is pending. Returns 0 when nothing is left pending, else
 * ERR_BUSY (a waiter is armed). decision_queue_full counts each record a
 * full queue refused once, however often it is offered again. */
int pipeline_flush(struct pipeline *p);

/* Nonzero while something is pending (see pipeline_handle). */
int pipeline_pending(const struct pipeline *p);

/* The decision record the last pipeline_handle made (decision_next reads
 * it), or an empty one when it decided nothing; valid until the next call. */
struct str pipeline_last_record(const struct pipeline *p);

/* Nonzero when a message decided now would not be queued: a record is
 * pending, or the delivery thread blocked the queue (alerts held for spool
 * space). */
int pipeline_blocked(const struct pipeline *p);

/* Writes the tap batch (its lines count in tap_lines once written). */
void pipeline_tap_flush(struct pipeline *p);

#endif
