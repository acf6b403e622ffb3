/* One alert's delivery as a state machine, and the set of jobs it runs in.
 * Pure: no event loop, no thread, no file of its own. Every collaborator
 * (the spool, the identity layer, the dispatcher, the audit and
 * dead-letter files, the clock, timers, the intake) is reached through
 * struct job_ops, so delivery.c wires the real ones and the unit tests
 * fakes. The duplicate window (dedup.h) and the counters (stats.h) are
 * plain memory and used as they are.
 *
 * A job's states (enum job_state) and the events that move it:
 *
 *   NEW --duplicate--> (ended: audited "duplicate")
 *   NEW --live--> SPOOLING --durable--> RESOLVING
 *                 SPOOLING --spool full / write refused--> HELD --hold timer--> SPOOLING
 *                 SPOOLING --does not fit a record--> (dead letter)
 *   NEW --dry run--> RESOLVING --any answer--> (ended: audited as it would go)
 *   RESOLVING --resolved--> SENDING, or READY when every dispatch slot is busy
 *   RESOLVING --unresolved--> (dead letter)
 *   RESOLVING --resolver failed--> WAITING
 *   READY --slot free--> SENDING
 *   SENDING --2xx--> (done) --retryable (Retry-After as a floor)--> WAITING
 *           --other 4xx--> (dead letter)
 *   WAITING --timer--> RESOLVING
 *   (dead letter) --line written and synced--> (done)
 *                 --write or sync failed--> DEAD_WAIT --timer--> (dead letter)
 *   an approval: SENDING --2xx--> APPROVAL --approved--> RELEASING (its
 *                 actions spooled) --> (done); --denied--> RELEASING (its
 *                 marker spooled) --> (done); --deadline--> its default
 *   any --stop--> callbacks only free the job; what is spooled is sent at the
 *                 next start, what is HELD is lost (counted).
 *
 * A job that ends is freed at once: done and dead-lettered jobs have their
 * completion journaled (spool_complete), a dead-lettered one only once
 * ops->audit said its dead-letter line is durable. A dead letter that
 * cannot be written (a full disk, a file size limit) stays in the spool
 * and is written again after a backoff (dispatch's retry_min_s doubling up
 * to retry_max_s, with jitter), until it is written or the agent stops
 * (then the next start sends it again). Everything runs on one thread (the
 * loop's). */
#ifndef RTR_JOB_H
#define RTR_JOB_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "audit.h"
#include "core/stats.h"
#include "decide/decision.h"
#include "decide/policy.h"
#include "dedup.h"
#include "dispatch.h"
#include "identity/identity.h"
#include "spool.h"

struct approval_secret;
struct correlate;

enum job_state {
    JOB_NEW,       /* taken from a record: not yet checked against the duplicate window */
    JOB_SPOOLING,  /* appended: the spool has not said it is durable */
    JOB_HELD,      /* the spool could not take it: waits for the hold timer */
    JOB_RESOLVING, /* the user lookup runs */
    JOB_READY,     /* resolved, waiting for a dispatch slot */
    JOB_SENDING,   /* its request runs */
    JOB_WAITING,   /* a retry timer runs (after a failed request or lookup) */
    JOB_DEAD_WAIT, /* its dead-letter line could not be written: a retry timer runs */
    JOB_APPROVAL,  /* an approval whose emails went out: waits for a decision or its deadline */
    JOB_RELEASING, /* an approval approved: ends once the actions it released are durable */
    JOB_STATES
};

struct job;
struct jobs;

/* Returns 0 when audit_write returned 0, an error when it failed, or
 * JOB_AUDIT_NONE when there is no such file (nothing written, nothing
 * counted). */
#define JOB_AUDIT_NONE 1

struct job_ops {
    void *ctx; /* the first argument of every op */

    /* The spool (spool.h), live only. */
    int (*spool_append)(void *ctx, struct str payload, spool_durable_cb cb, void *arg,
                        uint64_t *id);
    void (*spool_complete)(void *ctx, uint64_t id);
    void (*spool_recovered)(void *ctx,
                            void (*each)(void *arg, uint64_t id, struct str payload, int done,
                                         int64_t age_ms),
                            void *arg);

    /* The identity layer (identity_resolve): cb runs exactly once, maybe
     * before this returns. */
    void (*resolve)(void *ctx, struct str user, enum user_kind kind, identity_cb cb, void *arg);

    /* The dispatcher (dispatch_send): 0 and cb later, never before this
     * returns, or ERR_NOMEM and no callback. */
    int (*send)(void *ctx, const struct dispatch_alert *a, dispatch_cb cb, void *arg);

    /* Writes r to the audit log, or to the dead-letter file (to_dead).
     * Returns 0, an error, or JOB_AUDIT_NONE. For the dead-letter file 0
     * means durable (on disk, synced): the job then completes the alert
     * in the spool. */
    int (*audit)(void *ctx, int to_dead, const struct audit_record *r);

    /* The clock: now on CLOCK_REALTIME (a latency from receipt), and 64
     * random bits for the backoff's jitter: 0 and *out, or an error when
     * there are none (the machine then uses the job's receipt time). */
    struct timespec (*realtime)(void *ctx);
    int (*random)(void *ctx, uint64_t *out);

    /* Timers. timer_new makes a disarmed timer that calls fire(arg): 0 and
     * *out (free with timer_free), or ERR_NOMEM. It is the only timer op
     * that fails, so a machine that holds a timer can always use it:
     * timer_arm (re)arms t to fire once, ms from now. timer_pending says
     * whether t is armed; timer_free frees *t (NULL is fine) and sets it
     * to NULL. */
    int (*timer_new)(void *ctx, void (*fire)(void *arg), void *arg, void **out);
    void (*timer_arm)(void *ctx, void *t, int64_t ms);
    int (*timer_pending)(void *ctx, void *t);
    void (*timer_free)(void *ctx, void **t);

    /* The intake. settled: no job waits for the spool any more except the
     * held ones (the wiring ends once its queue is drained too). resume:
     * the held jobs are in the spool, the queue may be read again. */
    void (*settled)(void *ctx);
    void (*resume)(void *ctx);
    /* A job stops counting in flight, once per job: durable (spooled; or
     * a duplicate, a dry run decided, a dead letter: nothing to keep) or
     * lost (durable 0: held at a stop). intake and index: its
     * job_set_intake tag (intake NULL: none); duplicate: it repeated an
     * alert already held or sent. */
    void (*job_settled)(void *ctx, void *intake, unsigned index, int durable, int duplicate);
};

struct job_config {
    int live;                     /* direct or orchestrator: spool and send; else dry-run */
    int max_concurrent;           /* dispatch.max_concurrent */
    int retry_min_s, retry_max_s; /* also the backoff of a dead letter not written */
    int64_t hold_retry_ms;        /* how often held jobs try the spool again */
};

/* ops, dedup and stats are borrowed and must outlive the set. The hold
 * timer is made here, so that held jobs can always try the spool again.
 * Returns 0 and *out (free with jobs_free), or ERR_NOMEM. */
int jobs_new(const struct job_config *cfg, const struct job_ops *ops, struct dedup *dedup,
             struct stats *stats, struct jobs **out);

/* A job for decision d (its texts and key copied). Returns 0 and *out,
 * owned by the set, or ERR_NOMEM. */
int job_new(struct jobs *s, const struct decision_record *d, struct job **out);

/* The policies decisions expand to, from now on (a reference is taken;
 * jobs made before keep theirs), and the counter their counts live in
 * (rebuilt from the spool by jobs_recover; NULL: nothing counts). */
void jobs_set_policies(struct jobs *s, struct mapping_set *set, struct correlate *c);

/* The jobs of decision d, into out[0..cap): one per action of the priority
 * its policy block chose (each with its own idempotency key: the
 * decision's, the policy's and the action's names hashed; only the first
 * keeps the block's correlation keys in its payload), or one SafeTitan job
 * as without policies (no block, no policy matched, or the policy is no
 * longer loaded: logged). A priority whose action list is empty makes
 * none. Returns 0 and *n, or ERR_NOMEM (none made). */
int jobs_expand(struct jobs *s, const struct decision_record *d, struct job **out, size_t cap,
                size_t *n);

/* The secret approval tokens are checked with (approval.h; NULL: no
 * approval can be decided). Borrowed: it outlives s. */
void jobs_set_approval_secret(struct jobs *s, const struct approval_secret *secret);

/* An approver's decision, or one a token names that is not pending
 * (approval.h): returns what became of it (enum
 * decision_approval_outcome). Approved, the actions the approval held back
 * are made into out[0..*n) (not started: the caller tags and starts them),
 * and the approval ends (journaled done) once they are durable; denied,
 * out[0] is the denial's marker (a spool record: a start that finds it
 * does not ask again), and the approval ends once it is durable. Audited
 * with the approver's address (from the token) and a->source. */
int jobs_approval_decide(struct jobs *s, const struct decision_approval *a, struct job **out,
                         size_t cap, size_t *n);

/* Tags a job not yet started, the index-th decision of its record:
 * ops->job_settled(intake, index) tells when it no longer counts in flight
 * (whoever handed the decision in may then acknowledge it). */
void job_set_intake(struct job *job, void *intake, unsigned index);

/* Starts jobs[0..n) (made by job_new): each is checked against the
 * duplicate window, then spooled (live) or resolved (dry-run). All are
 * counted in flight before the first starts. */
void jobs_start(struct jobs *s, struct job **jobs, size_t n);

/* Live, once at start, before any jobs_start: reads the spool back
 * (spool_recovered). Done entries refill the duplicate window; the others
 * are resolved and sent again. Logs what it did. */
void jobs_recover(struct jobs *s);

/* Jobs counted in flight (dry-run: not yet ended; live: not yet in the
 * spool), of those held for spool space (HELD, or sent to the spool again
 * by the hold timer and not yet answered: the intake stays paused for
 * both), and jobs in state st. */
size_t jobs_in_flight(const struct jobs *s);
size_t jobs_held(const struct jobs *s);
size_t jobs_count(const struct jobs *s, enum job_state st);

/* Sets the machine's gauges in its stats block (from the loop, every
 * second): spool_held, spool_oldest_pending (the receipt of the oldest
 * spooled alert not yet finished), and dispatch_failing_since back to 0
 * once no alert waits to be sent again after a failed request (each was
 * dispatched or dead-lettered since). The dispatch gauges themselves
 * move as answers come: last_dispatch_success at each 2xx (which also
 * ends the failing), dispatch_failing_since at the first retryable
 * failure after that. */
void jobs_gauges(struct jobs *s);

/* Stop: from now on a lookup or request that completes only frees its job
 * (it stays in the spool for the next start). Call before freeing the
 * identity layer and the dispatcher, which complete what they hold. */
void jobs_stop(struct jobs *s);

/* Frees every job left (a WAITING or DEAD_WAIT one with its timer: it
 * stays in the spool; HELD ones were never durable: counted in decisions_dropped and
 * logged as lost) and s. NULL is fine. */
void jobs_free(struct jobs *s);

/* The outcome a dry run audits for a lookup that ended in status (see
 * delivery_dry_run_outcome). Static text. */
const char *job_dry_run_outcome(enum identity_status status);

/* The state's name, for logs and tests. Static text. */
const char *job_state_name(enum job_state st);

#endif
