/* Inside the spool (spool.h is its API): what its four files share.
 *
 *   spool_format.c   the byte layout: CRC-32C, integers, records, segment
 *                    names; growable buffers. Pure.
 *   spool.c          the loop's side: the index of pending alerts, the
 *                    segments' accounting, appends, completions, compaction,
 *                    the flusher's results; open and free.
 *   spool_flusher.c  the flusher thread: group-committed writes, fsyncs,
 *                    compaction reads, deletions.
 *   spool_recover.c  at start: the lock, the scan of every segment (with
 *                    quarantine of corrupt tails), the index rebuilt, and
 *                    spool_recovered's hand-out.
 *
 * Which thread may touch which part of struct spool: spool.c's header.
 * Include spool.h first: this header does not, so that spool.c including
 * it makes no include cycle (tests/tools/layering-check). */
#ifndef RTR_SPOOL_INTERNAL_H
#define RTR_SPOOL_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "core/stats.h"
#include "str.h"

struct event;
struct event_base;

#define SPOOL_MAGIC     "RTRSPOL1"
#define SPOOL_VERSION   2  /* what we write; version 1 segments are still read */
#define SPOOL_HDR       12 /* magic + version */
#define SPOOL_REC_HDR   17 /* len, CRC, type, id */
#define SPOOL_STAMP     32 /* version 2: an alert record's stamp, before its payload */
#define SPOOL_REC_MAX   (SPOOL_REC_HDR + SPOOL_STAMP + SPOOL_MAX_PAYLOAD)
#define SPOOL_READ_BUF  (8 * SPOOL_REC_MAX)
#define SPOOL_ALERT     1
#define SPOOL_COMPLETE  2
#define SPOOL_NAME_LEN  26                    /* "seg-" + 16 hex + ".spool" */
#define SPOOL_NAME_SIZE (SPOOL_NAME_LEN + 32) /* room for ".corrupt-<time>" */
/* How long completions alone may wait before the flusher writes them. */
#define SPOOL_COMPLETE_FLUSH_MS 1000

/* ---- spool_format.c ---- */

/* Fills the CRC table once (thread-safe): before the first spool_crc32c. */
void spool_crc32c_init(void);
uint32_t spool_crc32c(const unsigned char *p, size_t n);
void spool_put_u32(unsigned char *p, uint32_t v);
void spool_put_u64(unsigned char *p, uint64_t v);
uint32_t spool_get_u32(const unsigned char *p);
uint64_t spool_get_u64(const unsigned char *p);

/* Writes the SPOOL_REC_HDR (+ SPOOL_STAMP when stamp is not NULL) +
 * payload.len bytes of a record at p. stamp: SPOOL_STAMP bytes
 * (spool_stamp_put) for an alert, NULL for a completion. */
void spool_encode(unsigned char *p, int type, uint64_t id, const unsigned char *stamp,
                  struct str payload);

/* When an alert was appended, as its record says (version 2), so that a
 * restart knows how old it is without trusting a wall clock that may have
 * stepped since: the boot's own clock when it is the same boot, else the
 * wall clock. Zero everywhere: unknown (a version 1 record). */
struct spool_stamp {
    int64_t wall_ms;           /* CLOCK_REALTIME, Unix ms */
    int64_t boot_ms;           /* CLOCK_BOOTTIME (counts suspend too) */
    unsigned char boot_id[16]; /* the kernel's boot_id; zero: unknown */
};

/* The SPOOL_STAMP bytes of st at p, and back. */
void spool_stamp_put(unsigned char *p, const struct spool_stamp *st);
void spool_stamp_get(const unsigned char *p, struct spool_stamp *st);

/* How many ms before now (the stamp of this moment) the alert stamped then
 * was appended: on the same boot, the boot clock's difference (exact,
 * whatever the wall clock did); on another boot, the wall clock's, but at
 * least the time since this boot began (then is older than that for sure);
 * with a boot unknown, the wall clock's; 0 when then is unknown. Never
 * negative. */
int64_t spool_stamp_age(const struct spool_stamp *then, const struct spool_stamp *now);

/* The segment's file name (SPOOL_NAME_SIZE bytes at out). */
void spool_seg_name(char *out, uint64_t name);

/* The segment name's number, or -1 when name is not a segment's. */
int spool_parse_name(const char *name, uint64_t *out);

/* A growable byte buffer; the owner frees p. */
struct spool_buf {
    unsigned char *p;
    size_t len, cap;
};

/* Room for n more bytes in b. Returns 0 or ERR_NOMEM. */
int spool_buf_reserve(struct spool_buf *b, size_t n);

/* Grows *arr (of *cap elements of size sz) to hold n + 1 (the owner frees
 * *arr). Returns 0 or ERR_NOMEM. */
int spool_array_reserve(void *arr, size_t *cap, size_t n, size_t sz);

/* ---- state ---- */

struct spool_seg {
    struct spool_seg *next; /* newer */
    uint64_t name;
    size_t size;     /* bytes on disk, as the flusher last reported */
    size_t queued;   /* bytes in batches not back from the flusher */
    size_t live;     /* record bytes of the pending alerts bound here */
    size_t pending;  /* pending alerts whose latest durable record is here */
    size_t inflight; /* appends and copies bound here, not back from the flusher */
    int no_compact;  /* compaction could not read its alerts back: leave it */
    int version;     /* of its file: 1 has alert records without a stamp */
    /* now_ms() when its youngest alert was appended (for a segment read at
     * start: as its stamp says, unknown counting as now): a segment of
     * completed alerts is kept until this is keep_done_ms old. */
    int64_t newest_ms;
};

/* A pending alert: 24 bytes, no payload (it stays on disk). */
struct spool_entry {
    uint64_t id;
    struct spool_seg *seg; /* NULL: completed (kept for the binary search) */
    uint32_t off;          /* its record's offset in seg (valid once durable) */
    uint32_t len;          /* its record's bytes */
};

struct spool_waiter {
    void (*cb)(void *arg, int rc); /* a spool_durable_cb; NULL for a compaction copy */
    void *arg;
    uint64_t id;
    size_t off; /* its record's offset in the batch */
    int64_t t0; /* when it was appended (ms) */
    int copy;
};

/* Records gathered for one segment; then the flusher's result. */
struct spool_batch {
    struct spool_batch *next;
    struct spool_seg *seg; /* loop only: cannot go while the batch is out */
    uint64_t name;         /* the segment, for the flusher */
    struct spool_buf buf;
    struct spool_waiter *w;
    size_t n_w, cap_w;
    /* Filled in by the flusher. */
    size_t base;      /* the file offset buf landed at */
    size_t size;      /* the file's size after it */
    int rc;           /* 0 or ERR_IO */
    int err;          /* errno of the failure */
    const char *what; /* what failed ("write", "fdatasync", ...) */
    int broken;       /* a failed write could not be undone: leave the file */
};

/* A compaction's request to read alerts back from a segment. */
struct spool_read_item {
    uint64_t id;
    uint32_t off, len;
    int ok; /* the flusher read and checked it */
};

struct spool_read {
    struct spool_read *next;
    uint64_t name;
    struct spool_read_item *items;
    size_t n;
    struct spool_buf out; /* the records that checked, in item order */
    int err;              /* errno when the file could not be opened */
};

/* A done id with several records (a compaction copy and its original both
 * on disk): spool_recovered hands out only the last. */
struct spool_dup {
    uint64_t id;
    struct spool_seg *seg;
    uint32_t off;
};

struct spool {
    char *dir;
    int dirfd, lockfd;
    size_t max_bytes, seg_limit;
    size_t shared_bytes;  /* spool_share_cap: another file's bytes under max_bytes */
    int64_t keep_done_ms; /* spool_keep_done */
    int fsync_delay_ms;
    struct event_base *base;
    struct stats *stats;
    unsigned char boot_id[16]; /* this boot's, for the stamps (zero: unknown) */
    struct event *ev_done;
    struct log_ratelimit rl_io, rl_slow;

    /* Loop thread only. */
    struct spool_seg *head, *cur; /* oldest, newest (where records go) */
    struct spool_entry *idx;      /* sorted by id */
    size_t n_idx, cap_idx, n_pending;
    struct spool_dup *dups;
    size_t n_dups;
    uint64_t next_id;
    size_t syncing;
    int recovering;            /* until spool_recovered or the first append */
    struct spool_seg *compact; /* being compacted */
    size_t copies;             /* its copies not back from the flusher */
    int compact_blocked;       /* a copy failed: wait for a write to succeed */

    /* Shared, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_t thread;
    int started, stop, kick;
    struct spool_batch *q_head, *q_tail; /* to write */
    struct spool_read *r_head, *r_tail;  /* to read */
    uint64_t *dels;                      /* segments to delete */
    size_t n_dels, cap_dels;
    struct spool_batch *d_head, *d_tail;  /* written */
    struct spool_read *rd_head, *rd_tail; /* read */

    /* Flusher thread only. */
    int fd;           /* the segment being written, or -1 */
    uint64_t fd_name; /* its name */
    size_t fd_size;
    int fd_dirty;    /* written since the last fdatasync */
    uint64_t broken; /* a segment a failed write could not be undone in */
    int has_broken;
};

/* ---- spool.c (the loop's thread) ---- */

/* The stamp of this moment (the clocks and sp->boot_id). */
void spool_stamp_now(const struct spool *sp, struct spool_stamp *st);

/* Counts c once (no counters block: nothing). */
void spool_count(struct spool *sp, enum stats_counter c);

/* The pending alert id's entry, or NULL (completed, or never there). */
struct spool_entry *spool_index_find(const struct spool *sp, uint64_t id);

/* Makes room for one more entry. Returns 0 or ERR_NOMEM. */
int spool_index_reserve(struct spool *sp);

/* Binds a pending alert's record to seg (after spool_index_reserve). */
void spool_index_push(struct spool *sp, uint64_t id, struct spool_seg *seg, size_t off, size_t len);

/* Appends a segment (the newest, of SPOOL_VERSION), owned by sp. Returns
 * it, or NULL. */
struct spool_seg *spool_seg_new(struct spool *sp, uint64_t name, size_t size);

/* Starts a new newest segment. Returns 0 or ERR_NOMEM. */
int spool_rotate(struct spool *sp);

/* Deletes the segments nothing needs, and starts a compaction when the
 * spool is filling (need: bytes an append wants). */
void spool_maintain(struct spool *sp, size_t need);

/* Recovery is over (spool_recovered ran, or the first append came): the
 * duplicates list goes and maintenance starts. */
void spool_end_recovery(struct spool *sp);

/* ---- spool_flusher.c ---- */

/* pwrite / pread of all n bytes at off (EINTR retried). Return 0, or -1
 * with errno (EIO for a file shorter than n). */
int spool_write_all(int fd, const unsigned char *p, size_t n, size_t off);
int spool_read_all(int fd, unsigned char *p, size_t n, size_t off);

/* The flusher thread's body (arg: the spool): runs until sp->stop, then
 * writes and fsyncs what is queued. */
void *spool_flusher(void *arg);

/* ---- spool_recover.c ---- */

/* Takes "<dir>/lock" (writing our pid into it). Returns 0 or ERR_IO
 * (logged, naming the holder's pid when it can). */
int spool_lock(struct spool *sp);

/* Reads every segment (quarantining corrupt tails), builds the index and
 * the duplicates list, then opens a new segment for this run. Returns 0,
 * ERR_IO or ERR_NOMEM. */
int spool_load(struct spool *sp);

#endif
