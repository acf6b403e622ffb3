/* The durable spool: every alert the agent will send is appended to an
 * on-disk journal and fsynced before any network call, so that an alert
 * that reached it is delivered at least once across crashes, kill -9 and
 * restarts. Completions (dispatched, dead-lettered) are journaled too; on
 * start the entries without one are handed back to be sent again.
 *
 * On disk: spool.dir holds segment files "seg-<16 hex digits>.spool" (the
 * first id they hold), each opening with a magic header (magic, version),
 * then records: a 4-byte length, a CRC-32C over the rest, a type (alert or
 * completion), a 64-bit id, and for an alert when it was appended (wall
 * clock, boot clock, boot id: its age at a restart) and its payload. No length read
 * from disk is trusted beyond SPOOL_MAX_PAYLOAD and the file's size. A
 * record that does not check (a torn write, a flipped bit, a bad header)
 * ends what is read of its segment: the rest of the segment is moved to a
 * side file "<segment>.corrupt-<unix time>" (quarantined, logged, counted in
 * spool_corrupt) and everything valid before it is delivered.
 *
 * Segments rotate at SPOOL_SEGMENT_BYTES (or max_bytes / 4 when smaller);
 * a segment whose alerts are all complete is deleted (after
 * spool_keep_done's time), and an old segment holding few pending alerts is
 * compacted (they are written again, same id, at the end, and it is
 * deleted) when that frees space. spool.max_bytes caps the segments' total
 * plus the bytes of the dead-letter file (spool_share_cap): an append that
 * does not fit is refused (ERR_TOOBIG) and the caller holds the alert
 * (backpressure), counts and logs it; nothing is dropped. A lock
 * (flock) on "<dir>/lock" keeps a second agent out.
 *
 * Writes and fsyncs run on a flusher thread, batched: every record appended
 * while an fsync runs goes with the next one (group commit), so a record
 * waits at most one write + fdatasync behind the running one. An append
 * still not durable after spool.fsync_delay_ms is counted in spool_slow_syncs
 * (the disk is slower than configured) and logged, rate-limited.
 * Everything else (the API, the callbacks, the counters) is the loop's
 * thread only. */
#ifndef RTR_SPOOL_H
#define RTR_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "core/config.h"
#include "core/stats.h"
#include "str.h"

/* Largest payload an alert record holds: room for a decision's texts at
 * their caps (3 x 1024 bytes from the message, 6 bytes each once escaped
 * for JSON, and the short fields), with margin. */
#define SPOOL_MAX_PAYLOAD (64 * 1024)
/* Segment size before rotation (smaller when max_bytes / 4 is). */
#define SPOOL_SEGMENT_BYTES ((size_t)16 << 20)

struct spool;

/* rc 0: the record is on disk and fsynced. ERR_IO: it could not be written
 * (disk full, a file size limit, an I/O error; logged): it is not in the
 * spool, and the caller may append it again later. Runs from the loop. */
typedef void (*spool_durable_cb)(void *arg, int rc);

/* Opens (creating it, mode 0700) cfg->dir, locks it, reads every segment
 * (quarantining corrupt tails) and starts the flusher. The loop of base
 * runs the callbacks; stats (the loop thread's block) may be NULL. Errors
 * are logged naming spool.dir. Returns 0 and *out (free with spool_free),
 * ERR_IO (cannot create, read or lock: "spool.dir: DIR: held by another
 * rtr-agent (pid N)") or ERR_NOMEM. */
int spool_open(const struct spool_config *cfg, struct event_base *base, struct stats *stats,
               struct spool **out);

/* What spool_open read: each alert record still in the segments, oldest
 * first (one call per id, with its last payload), done saying whether its
 * completion was journaled, age_ms how long ago it was first appended (see
 * spool_format.c: the boot's own clock on the same boot, the wall clock
 * across a reboot; 0 when unknown, as for records of spool version 1). The
 * caller re-sends those not done and may use all of them (their payloads
 * and ages) to rebuild its duplicate window (dedup_refill). Call once,
 * before the first append. */
void spool_recovered(struct spool *sp,
                     void (*each)(void *arg, uint64_t id, struct str payload, int done,
                                  int64_t age_ms),
                     void *arg);

/* Keeps segments whose alerts are all complete until their youngest is ms
 * old (0, the default: deleted at once), so that a restart within ms still
 * reads the completions back (spool_recovered) to refill a duplicate
 * window that long. Only while the spool is under 3/4 of max_bytes: past
 * it, space for alerts not yet sent comes first. */
void spool_keep_done(struct spool *sp, int64_t ms);

/* Appends an alert (payload copied). Returns 0 with *id, and cb(arg, rc)
 * will run once from the loop (never inside spool_append); or, with no
 * callback to come: ERR_TOOBIG when the spool is at max_bytes even after
 * compaction, ERR_INVALID for a payload over SPOOL_MAX_PAYLOAD or empty, or
 * ERR_NOMEM. */
int spool_append(struct spool *sp, struct str payload, spool_durable_cb cb, void *arg,
                 uint64_t *id);

/* Journals that id is finished (dispatched or dead-lettered). It rides with
 * the next batch, without an fsync of its own: a completion lost in a crash
 * only means the alert is sent again, with the same idempotency key. */
void spool_complete(struct spool *sp, uint64_t id);

/* Another file spool.max_bytes bounds too (the dead-letter file) now
 * holds bytes: from now on appends are refused (ERR_TOOBIG) once the
 * segments and these bytes reach max_bytes, and the spool compacts as if
 * its segments held them. Call again whenever that file grows or is
 * replaced. The file itself is never refused a write: what it takes is
 * already in the spool, so the cap holds back new alerts only. */
void spool_share_cap(struct spool *sp, size_t bytes);

/* Bytes of all segments, and alerts appended and not complete. */
size_t spool_bytes(const struct spool *sp);
size_t spool_pending(const struct spool *sp);

/* Nonzero while appends wait for their fsync (their callbacks have not run). */
int spool_syncing(const struct spool *sp);

/* Writes and fsyncs what is still buffered (completions; appends whose
 * callbacks have not run are written but their callbacks never run), stops
 * the flusher, unlocks and frees. NULL is fine. */
void spool_free(struct spool *sp);

#endif
