/* The record a worker queues for the response thread: every decision one
 * message produced, with when and from whom it came, packed into one queue
 * record (so a message's decisions are queued all or none). Nothing else of
 * the message travels: not the raw log. */
#ifndef RTR_DECISION_H
#define RTR_DECISION_H

#include <stddef.h>
#include <time.h>

#include "mapping.h"
#include "str.h"

/* Longest rule, user or event text queued: the mapping engine's cap, which
 * makes no decision with a longer one (mapping.h), so replay and the
 * daemon agree. decision_encode still refuses a longer text. */
#define DECISION_MAX_FIELD MAPPING_MAX_VALUE

/* The largest record decision_encode writes. */
#define DECISION_RECORD_MAX                                                                        \
    (64 + 3 * 256 + MAPPING_MAX_DECISIONS * (16 + 256 + 3 * DECISION_MAX_FIELD))

/* Where a message's decisions came from: what the idempotency key and the
 * audit line need of the message. Texts over 255 bytes are cut. */
struct decision_origin {
    struct timespec received; /* CLOCK_REALTIME, when the frame was handled */
    struct str source;        /* "ip:port" */
    struct str host;          /* the syslog HOSTNAME, else the sender's IP */
    /* The source's own event id (CEF externalId), else "sha256:" and the
     * hex SHA-256 of the whole frame: a resent message keeps its key. */
    struct str event_ref;
};

/* One decision as the response thread reads it: slices into the record. */
struct decision_record {
    struct timespec received; /* CLOCK_REALTIME, when the frame was handled */
    struct str source;        /* "ip:port" */
    struct str host, event_ref;
    struct str mapping;
    struct str rule, user, event;
    enum user_kind user_kind;
};

/* Packs d[0..n) into buf[0..cap). Decisions whose texts exceed
 * DECISION_MAX_FIELD (or a mapping name over 255 bytes) are left out and
 * counted in *dropped. Returns the record's length (0 when nothing was left
 * to pack). */
size_t decision_encode(const struct mapping_decision *d, size_t n,
                       const struct decision_origin *origin, char *buf, size_t cap,
                       size_t *dropped);

/* Iterates a record: *pos starts at 0. Returns 0 and *out, or ERR_AGAIN
 * when there are no more decisions, or ERR_INVALID for a corrupt record. */
int decision_next(struct str rec, size_t *pos, struct decision_record *out);

#endif
