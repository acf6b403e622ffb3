/* The record a worker queues for the delivery thread: every decision one
 * message produced, with when and from whom it came, packed into one queue
 * record (so a message's decisions are queued all or none). Nothing else of
 * the message travels: not the raw log. */
#ifndef RTR_DECISION_H
#define RTR_DECISION_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mapping.h"
#include "policy.h"
#include "str.h"

/* Longest rule, user or event text queued: the mapping engine's cap, which
 * makes no decision with a longer one (mapping.h), so replay and the
 * daemon agree. decision_encode still refuses a longer text. */
#define DECISION_MAX_FIELD MAPPING_MAX_VALUE

/* The idempotency key: 64 lowercase hex digits, and its NUL. */
#define DECISION_KEY_LEN  64
#define DECISION_KEY_SIZE (DECISION_KEY_LEN + 1)

/* The largest record decision_encode writes without policy blocks, and
 * with them (each at most POLICY_BLOCK_MAX: policy.h). */
#define DECISION_RECORD_BASE_MAX                                                                   \
    (64 + 4 * 256 + MAPPING_MAX_DECISIONS * (16 + 256 + DECISION_KEY_LEN + 3 * DECISION_MAX_FIELD))
#define DECISION_RECORD_MAX                                                                        \
    (DECISION_RECORD_BASE_MAX + MAPPING_MAX_DECISIONS * (4 + POLICY_BLOCK_MAX))

/* Who waits to hear that a message's alerts are durable: a RELP session
 * acknowledges a message only then. owner 0: nobody. owner and seq mean
 * something only to the input that set them; worker says whose loop the
 * answer goes back to. */
struct decision_ack {
    uint64_t owner;
    uint64_t seq;
    uint32_t worker;
};

/* What an input that waits (decision_ack) hears of a message: durable
 * once every alert of it is in the spool or needs none, and which of its
 * decisions (bit i: decision i of its record) were duplicates of an alert
 * the agent already held or sent (the duplicate window). */
struct decision_answer {
    int durable;
    unsigned duplicates;
    int approval; /* an approval's record (decision_approval): enum decision_approval_outcome */
};

/* What became of an approver's decision (decision_approval). */
enum decision_approval_outcome {
    DECISION_APPROVAL_NONE,        /* not an approval's answer */
    DECISION_APPROVAL_DECIDED,     /* decided now (what it releases is in the spool) */
    DECISION_APPROVAL_GONE,        /* decided already, or expired: the token is spent */
    DECISION_APPROVAL_UNKNOWN,     /* no such approval: a forged or mistyped token */
    DECISION_APPROVAL_UNAVAILABLE, /* no approval can be decided here (dry run, no spool) */
};

/* Where a message's decisions came from: what the idempotency key and the
 * audit line need of the message. Texts over 255 bytes are cut (before the
 * key is computed: the key is the one of what the record holds). */
struct decision_origin {
    struct timespec received; /* CLOCK_REALTIME, when the frame was handled */
    struct str source;        /* "ip:port" */
    struct str host;          /* the syslog HOSTNAME, else the sender's IP */
    /* The source's own event id (CEF externalId), else "sha256:" and the
     * hex SHA-256 of the whole frame: a resent message keeps its key. */
    struct str event_ref;
    struct decision_ack ack;
    struct str transport; /* "udp", "tcp", "tls", "relp", "http", "https" */
};

/* One decision as the delivery thread reads it: slices into the record. */
struct decision_record {
    struct timespec received; /* CLOCK_REALTIME, when the frame was handled */
    struct str source;        /* "ip:port" */
    struct str host, event_ref;
    struct str mapping;
    struct str rule, user, event;
    enum user_kind user_kind;
    struct str key;          /* the idempotency key: DECISION_KEY_LEN hex digits */
    struct decision_ack ack; /* the message's: every decision of a record has it */
    struct str transport;    /* empty in a payload an older version spooled */
    /* The decision's policy block (policy.h: a JSON object), empty when
     * the set has no policy; and, in a spooled payload, the action the
     * job runs (empty: today's one SafeTitan event). */
    struct str policy;
    struct str action;
    /* In a spooled payload: "denied" on the marker that makes an
     * approval's denial durable (job.c), else empty. */
    struct str decided;
};

/* An approver's decision, as the HTTP intake hands it to the delivery
 * thread: a record of its own in the decision queue (decision_next refuses
 * it; decision_approval_read reads it). */
struct decision_approval {
    struct str token;  /* /v1/approvals/{token} (approval.h), at most 255 bytes */
    int approve;       /* 1 approve, 0 deny */
    struct str source; /* the approver's "ip:port" */
    struct decision_ack ack;
};

/* Packs a into buf[0..cap): its length, or 0 when it does not fit (a text
 * over 255 bytes). */
size_t decision_approval_encode(const struct decision_approval *a, char *buf, size_t cap);

/* Whether rec is an approver's decision (then *out, slices into rec):
 * 1, 0 for a record of decisions, ERR_INVALID for a corrupt one. */
int decision_approval_read(struct str rec, struct decision_approval *out);

/* A SHA-256 context reused for every hash one thread makes (keys, frame
 * hashes), so that hashing allocates nothing per message: one per worker
 * (pipeline.c), never shared between threads. */
struct decision_hasher;

/* Returns 0 and *out (free with decision_hasher_free), or ERR_NOMEM. */
int decision_hasher_new(struct decision_hasher **out);

/* NULL is fine. */
void decision_hasher_free(struct decision_hasher *h);

/* The idempotency key of a decision: lowercase hex SHA-256 over the source
 * host, the rule, the user identifier and the source's event id (or the
 * message's hash), each followed by a NUL, so no two tuples share a key.
 * It is made here, with the record, so that every later stage (the spool,
 * the duplicate window, dispatch) carries the same bytes. */
void decision_key(struct decision_hasher *h, struct str host, struct str rule, struct str user,
                  struct str event_ref, char out[DECISION_KEY_SIZE]);

/* The first 64 bits of the SHA-256 of parts[0..n), each followed by a NUL
 * (correlation keys: policy.h). */
uint64_t decision_hash64(struct decision_hasher *h, const struct str *parts, size_t n);

/* The lowercase hex SHA-256 of a whole frame (the event_ref of a message
 * without an event id of its own), NUL-terminated. */
void decision_frame_hash(struct decision_hasher *h, struct str frame, char out[DECISION_KEY_SIZE]);

/* Packs d[0..n) into buf[0..cap), each with its key (decision_key over the
 * origin's host and event_ref as the record holds them, hashed with h) and
 * its policy block (blocks[i]; blocks NULL or an empty one: none; one
 * over POLICY_BLOCK_MAX is left out).
 * Decisions whose texts exceed DECISION_MAX_FIELD (or a mapping name over
 * 255 bytes) are left out and counted in *dropped. Returns the record's
 * length (0 when nothing was left to pack). */
size_t decision_encode(struct decision_hasher *h, const struct mapping_decision *d,
                       const struct str *blocks, size_t n, const struct decision_origin *origin,
                       char *buf, size_t cap, size_t *dropped);

/* Iterates a record: *pos starts at 0. Returns 0 and *out, or ERR_AGAIN
 * when there are no more decisions, or ERR_INVALID for a corrupt record. */
int decision_next(struct str rec, size_t *pos, struct decision_record *out);

/* ---- the spool payload: one decision, as the spool keeps it ----
 *
 * A JSON object {"v":1, "sec", "nsec", "source", "transport", "mapping",
 * "rule", "user", "kind", "event", "key", "policy", "action", "decided"} ("transport"
 * may be absent: the versions before it did not write it; "policy" (the
 * block, an object), "action" and "decided" are written only when set): what sending the alert
 * again after a restart needs (not the host nor the event_ref: the key already holds them). One
 * table of fields drives both directions, so they cannot drift. */

/* A payload read back: rec's texts are slices into json (host and
 * event_ref are empty). Free with decision_payload_free. */
struct decision_payload {
    struct decision_record rec;
    void *json; /* the parsed document (json-c), owned */
};

struct jsonw;

/* Writes d's payload into w (reset first). Returns 0, or w's error
 * (ERR_TOOBIG, ERR_NOMEM). */
int decision_payload_write(const struct decision_record *d, struct jsonw *w);

/* Reads a payload. Returns 0 and *out (free with decision_payload_free,
 * also after an error), or ERR_INVALID for one this version does not read
 * (another version, a field missing or of the wrong type, a key that is
 * not DECISION_KEY_LEN long, a kind or nanoseconds out of range). */
int decision_payload_read(struct str payload, struct decision_payload *out);

void decision_payload_free(struct decision_payload *p);

#endif
