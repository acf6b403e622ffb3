/* The pipeline stage: what happens to each frame a listener received. For
 * now it parses and counts it and feeds --tap; the mapping engine plugs in
 * here next. One pipeline per worker thread: it owns the parsed message, a
 * scratch buffer and a JSON writer, all allocated once and reused. */
#ifndef RTR_PIPELINE_H
#define RTR_PIPELINE_H

#include <stddef.h>
#include <sys/socket.h>

#include "config.h"
#include "queue.h"
#include "sockaddr.h"
#include "stats.h"
#include "str.h"

struct pipeline;

/* Who sent a frame. name ("ip:port") may be NULL: the pipeline formats addr
 * itself, only when it needs it (a tap line, an error log). */
struct pipeline_source {
    const struct sockaddr *addr;
    const char *name;
    const char *transport; /* "udp", "tcp", "tls" */
};

/* stats: the worker's counter block. tap: where rendered lines go (NULL = no
 * tap); waiter: armed when tap is full. Returns 0 and *out (free with
 * pipeline_free), or ERR_NOMEM. */
int pipeline_new(const struct config *cfg, struct stats *stats, struct queue *tap,
                 struct queue_waiter *waiter, struct pipeline **out);

void pipeline_free(struct pipeline *p);

/* The longest tap line a message of cfg's max_message_bytes can render to
 * (longer ones are dropped from the tap with a log line). */
size_t pipeline_tap_line_max(const struct config *cfg);

/* Handles one frame (at most max_message_bytes). flags: the framer's FRAME_*
 * flags; FRAME_TRUNCATED (cut at the size limit or by the end of its
 * connection) marks the message ("frame: truncated" unless a parse error
 * says more). Returns 0 when the frame was consumed (counted, parsed,
 * passed on), or ERR_BUSY when the downstream queue is full: nothing was
 * counted, the waiter is armed, and the caller keeps the frame and offers
 * it again once woken. */
int pipeline_handle(struct pipeline *p, struct str frame, unsigned flags,
                    const struct pipeline_source *src);

#endif
