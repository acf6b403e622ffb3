/* The delivery thread: the single consumer of the decision queue the
 * workers fill. It runs its own event loop (so the network resolvers and
 * the dispatcher run there without blocking anyone) and hands each
 * decision to the delivery state machine (job.h):
 *
 *   dry-run       the user is resolved (identity.h) and the decision
 *                 written to the audit log with the outcome
 *                 delivery_dry_run_outcome names.
 *   direct,       a decision whose idempotency key is inside the duplicate
 *   orchestrator  window is audited as a duplicate and ends; the others are
 *                 appended to the spool (spool.h) and, once durable,
 *                 resolved and dispatched (dispatch.h), retried with
 *                 backoff or Retry-After, or dead-lettered
 *                 (spool.dead_letter: each line synced before the alert
 *                 is marked done in the spool; a line the disk refuses
 *                 is written again after a backoff). What the spool
 *                 holds at a stop is sent again at the next start.
 *
 * The queue is bounded: when it is full the workers stop reading TCP/TLS
 * (backpressure) and count it; while the spool cannot take alerts (full,
 * or refusing writes) the thread stops reading the queue, so the same
 * backpressure reaches the inputs. The spool is full when its segments
 * plus the dead-letter file reach spool.max_bytes (the dead_letter_bytes
 * gauge shows the file's part).
 *
 * Counters, per decision: one outcome counter says what was decided
 * (outcome_would_dispatch, outcome_unresolved_user, outcome_failed in
 * dry-run; outcome_spooled, outcome_dispatched, outcome_dead_letter,
 * outcome_duplicate ... live), and, with an audit log, audit_lines or
 * audit_errors says whether it was recorded. An audit write that fails (a
 * full disk, a file removed without a SIGHUP) is counted in audit_errors
 * and logged (rate-limited, naming the file), and the outcome counter still
 * counts the decision: the decision was made, only its record is missing.
 * A decision that cannot be held for lack of memory is logged and counted
 * in decisions_dropped.
 *
 * Gauges (the status endpoint's, /healthz's): spool_pending, spool_bytes,
 * spool_held and spool_oldest_pending, set every second; the dispatch
 * gauges (job.h: jobs_gauges); last_reload_ok and last_reload_success,
 * set at the start and at each reload. */
#ifndef RTR_DELIVERY_H
#define RTR_DELIVERY_H

#include "core/config.h"
#include "decide/decision.h"
#include "decide/policy.h"
#include "identity/identity.h"
#include "core/queue.h"
#include "mapping_counts.h"

struct delivery;
struct correlate;

/* Creates the decision queue, the identity layer (loading the static
 * directory) and the SafeTitan client, and reads every secret they and the
 * audit log need; creates no file and starts no thread (delivery_open
 * does), so that `run` can call it before dropping to its user. cfg must
 * outlive r (a reload opens a moved audit log with its cfg->audit
 * settings). Errors are logged. Returns 0 and *out (free with
 * delivery_free), or ERR_CONFIG / ERR_IO / ERR_NOMEM. */
int delivery_new(const struct config *cfg, struct delivery **out);

/* Opens the spool (creating spool.dir, recovering what it holds and
 * starting its flusher thread), the dead-letter file and the audit log:
 * files the agent's own user creates. Before delivery_start. Returns 0,
 * ERR_IO or ERR_NOMEM (logged). */
int delivery_open(struct delivery *r, const struct config *cfg);

/* Answers a decision_ack: durable 1 once every alert of the message is
 * in the spool (or needs none: a duplicate, a dry run decided, a dead
 * letter), 0 when one was lost (held for spool space at a stop, or no
 * memory); duplicates: its decisions that repeated an alert already held
 * or sent. Called on the delivery thread, once per record that carried an
 * ack; must be thread-safe towards the ack's owner. */
typedef void (*delivery_ack_fn)(void *arg, const struct decision_ack *ack,
                                struct decision_answer answer);

/* From any thread: the policies (policy.h) decisions are expanded with
 * from the next record on (the daemon's mappings set: at the start, before
 * delivery_open, and at each reload that loaded), and, at the start, the
 * counter their counts live in (rebuilt from the spool when the thread
 * starts; kept while the agent runs: a reload passes NULL). */
void delivery_set_policies(struct delivery *r, struct mapping_set *set, struct correlate *c);

/* Before delivery_start. */
void delivery_set_ack(struct delivery *r, delivery_ack_fn fn, void *arg);

/* Decisions taken per mapping so far (for /metrics; readable from any
 * thread while r lives). */
const struct mapping_counts *delivery_mapping_counts(const struct delivery *r);

/* The queue workers push decision records (decision.h) into. */
struct queue *delivery_queue(struct delivery *r);

/* Starts the thread. It runs until the queue is closed, drained and every
 * decision in flight has finished, then calls done(arg) from its thread
 * (thread-safe) and ends. Returns 0 or ERR_IO. */
int delivery_start(struct delivery *r, void (*done)(void *arg), void *arg);

/* From any thread (SIGHUP), once the daemon has read the configuration
 * file again. next: what it read (only read during the call: what is kept
 * is copied), or NULL when it did not load. With next, the thread reloads
 * the static directory from next's identity.static.file (swapped in only
 * when it loads cleanly; the cache is cleared) and moves the audit log to
 * next's audit.file when that differs from the file in use (audit.file
 * removed: no audit log), else reopens it. Either way (live) it reopens
 * the dead-letter file, at the path it started with (spool.dead_letter is
 * not reloaded). Without next it only reopens the audit log and the
 * dead-letter file: logrotate must not wait for a fixed configuration.
 * daemon_failed: the daemon's part (the mappings, the TLS certificates)
 * did not load (implied by next NULL). The thread counts the whole reload
 * once: reloads when every part succeeded, else reload_failures (each
 * failed part kept its running version), and then tells the function of
 * delivery_set_reload_done. Reloads asked for before the thread got to the
 * first one are done, and counted, as one: the last configuration that
 * loaded applies, and it is a failure if any of them was. */
void delivery_reload(struct delivery *r, const struct config *next, int daemon_failed);

/* fn(arg, ok) is called on the delivery thread once a reload is counted
 * (ok: every part reloaded). Before delivery_start. */
void delivery_set_reload_done(struct delivery *r, void (*fn)(void *arg, int ok), void *arg);

/* The outcome a dry run gives a decision whose user lookup ended in
 * status: "would-dispatch" (found), "unresolved-user" (no resolver knows
 * the user), "failed" (a resolver failed: the detail says why). Static
 * text. */
const char *delivery_dry_run_outcome(enum identity_status status);

/* From any thread, at SIGTERM: the workers must be able to finish, so the
 * thread takes every record from now on even while the spool holds alerts
 * (they are held too, and reported as lost at the end if the spool never
 * takes them), instead of pausing the inputs. */
void delivery_stop_intake_pause(struct delivery *r);

/* Joins the thread (if started; call after queue_close) and frees r. NULL
 * is fine. */
void delivery_free(struct delivery *r);

#endif
