/* The durable spool (what it promises: spool.h).
 *
 * Byte layout. Every integer is little-endian and written byte by byte (no
 * struct is ever dumped), so a spool moves between machines.
 *
 *   segment file "seg-<16 lowercase hex digits>.spool":
 *     offset 0   8 bytes   magic "RTRSPOL1"
 *     offset 8   u32       version (1)
 *     offset 12  records, back to back, up to the end of the file
 *
 *   record:
 *     offset 0   u32       len: bytes of type + id + payload, 9 .. 9 + SPOOL_MAX_PAYLOAD
 *     offset 4   u32       CRC-32C (Castagnoli, reflected 0x82F63B78, init and final
 *                          xor 0xFFFFFFFF) over those len bytes
 *     offset 8   u8        type: 1 alert, 2 completion
 *     offset 9   u64       id
 *     offset 17  len - 9   payload: an alert's, 1 .. SPOOL_MAX_PAYLOAD bytes; none
 *                          for a completion (its len is exactly 9)
 *
 * What the rest relies on:
 * - A segment's name is above every older segment's, and every id handed
 *   out while it is the newest is at least its name (a new segment takes
 *   the next id as its name). Records only go to the newest segment.
 * - A completion is always written after the alert record it names (an
 *   alert is copied by compaction only while it is pending), and segments
 *   are deleted oldest first: so a completion outlives every copy of its
 *   alert, and a restart never re-sends an alert whose completion reached
 *   the disk.
 * - A compaction copy has the id of its original: recovery keeps the last
 *   record of each id.
 *
 * Threads. The loop's thread owns the index of pending alerts, the list of
 * segments and their accounting, the counters and the callbacks. The
 * flusher thread owns the file being written. They share, under mu, a FIFO
 * of batches (records being gathered, one batch per target segment), read
 * requests for compaction and segment deletions going to the flusher, and
 * the finished batches and reads coming back (ev_done wakes the loop). */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "core/log.h"
#include "core/clock.h"
#include "core/evloop.h"

#define SPOOL_MAGIC     "RTRSPOL1"
#define SPOOL_VERSION   1
#define SPOOL_HDR       12 /* magic + version */
#define SPOOL_REC_HDR   17 /* len, CRC, type, id */
#define SPOOL_REC_MAX   (SPOOL_REC_HDR + SPOOL_MAX_PAYLOAD)
#define SPOOL_READ_BUF  (8 * SPOOL_REC_MAX)
#define SPOOL_ALERT     1
#define SPOOL_COMPLETE  2
#define SPOOL_NAME_LEN  26                    /* "seg-" + 16 hex + ".spool" */
#define SPOOL_NAME_SIZE (SPOOL_NAME_LEN + 32) /* room for ".corrupt-<time>" */
/* How long completions alone may wait before the flusher writes them. */
#define SPOOL_COMPLETE_FLUSH_MS 1000

/* ---- CRC-32C, little-endian integers, records ---- */

static uint32_t crc32c_table[256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;

        for (int k = 0; k < 8; k++)
            c = (c & 1) != 0 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc32c_table[i] = c;
    }
}

static uint32_t crc32c(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;

    while (n-- > 0)
        c = crc32c_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return ~c;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;

    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Writes the SPOOL_REC_HDR + payload.len bytes of a record at p. */
static void spool_encode(unsigned char *p, int type, uint64_t id, struct str payload)
{
    put_u32(p, (uint32_t)(9 + payload.len));
    p[8] = (unsigned char)type;
    put_u64(p + 9, id);
    if (payload.len > 0)
        memcpy(p + SPOOL_REC_HDR, payload.p, payload.len);
    put_u32(p + 4, crc32c(p + 8, 9 + payload.len));
}

static void spool_seg_name(char *out, uint64_t name)
{
    snprintf(out, SPOOL_NAME_SIZE, "seg-%016" PRIx64 ".spool", name);
}

/* The segment name's number, or -1 when name is not a segment's. */
static int spool_parse_name(const char *name, uint64_t *out)
{
    uint64_t v = 0;

    if (strlen(name) != SPOOL_NAME_LEN || strncmp(name, "seg-", 4) != 0 ||
        strcmp(name + 20, ".spool") != 0)
        return -1;
    for (int i = 4; i < 20; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

        if (d < 0)
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 0;
}

/* ---- growable byte buffers ---- */

struct spool_buf {
    unsigned char *p;
    size_t len, cap;
};

static int buf_reserve(struct spool_buf *b, size_t n)
{
    size_t cap = b->cap != 0 ? b->cap : 4096;
    unsigned char *p;

    if (b->cap - b->len >= n)
        return 0;
    while (cap - b->len < n)
        cap *= 2;
    p = realloc(b->p, cap);
    if (p == NULL)
        return ERR_NOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Grows *arr (of *cap elements of size sz) to hold n + 1. */
static int array_reserve(void *arr, size_t *cap, size_t n, size_t sz)
{
    void **a = arr, *p;
    size_t ncap = *cap != 0 ? *cap * 2 : 64;

    if (n < *cap)
        return 0;
    p = realloc(*a, ncap * sz);
    if (p == NULL)
        return ERR_NOMEM;
    *a = p;
    *cap = ncap;
    return 0;
}

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
};

/* A pending alert: 24 bytes, no payload (it stays on disk). */
struct spool_entry {
    uint64_t id;
    struct spool_seg *seg; /* NULL: completed (kept for the binary search) */
    uint32_t off;          /* its record's offset in seg (valid once durable) */
    uint32_t len;          /* its record's bytes */
};

struct spool_waiter {
    spool_durable_cb cb; /* NULL for a compaction copy */
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
    int fsync_delay_ms;
    struct event_base *base;
    struct stats *stats;
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

static void spool_count(struct spool *sp, enum stats_counter c)
{
    if (sp->stats != NULL)
        stats_add(sp->stats, c, 1);
}

/* ---- the index of pending alerts ---- */

static struct spool_entry *index_find(const struct spool *sp, uint64_t id)
{
    size_t lo = 0, hi = sp->n_idx;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (sp->idx[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < sp->n_idx && sp->idx[lo].id == id && sp->idx[lo].seg != NULL)
        return &sp->idx[lo];
    return NULL;
}

/* Makes room for one more entry, first by dropping completed ones. */
static int index_reserve(struct spool *sp)
{
    if (sp->n_idx == sp->cap_idx && sp->n_pending * 2 <= sp->n_idx) {
        size_t n = 0;

        for (size_t i = 0; i < sp->n_idx; i++)
            if (sp->idx[i].seg != NULL)
                sp->idx[n++] = sp->idx[i];
        sp->n_idx = n;
    }
    return array_reserve(&sp->idx, &sp->cap_idx, sp->n_idx, sizeof(*sp->idx));
}

/* Binds a pending alert's record to seg (after index_reserve). */
static void index_push(struct spool *sp, uint64_t id, struct spool_seg *seg, size_t off, size_t len)
{
    sp->idx[sp->n_idx++] = (struct spool_entry){id, seg, (uint32_t)off, (uint32_t)len};
    sp->n_pending++;
    seg->pending++;
    seg->live += len;
}

static void index_drop(struct spool *sp, struct spool_entry *e)
{
    e->seg->pending--;
    e->seg->live -= e->len;
    e->seg = NULL;
    sp->n_pending--;
}

/* ---- segments (loop side) ---- */

static struct spool_seg *seg_new(struct spool *sp, uint64_t name, size_t size)
{
    struct spool_seg *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->name = name;
    s->size = size;
    if (sp->cur != NULL)
        sp->cur->next = s;
    else
        sp->head = s;
    sp->cur = s;
    return s;
}

/* Starts a new newest segment (its file is created by the flusher with its
 * first batch). The name keeps names increasing and ids at least it. */
static int spool_rotate(struct spool *sp)
{
    uint64_t name = sp->next_id;

    if (sp->cur != NULL && name <= sp->cur->name)
        name = sp->cur->name + 1;
    if (seg_new(sp, name, SPOOL_HDR) == NULL)
        return ERR_NOMEM;
    sp->next_id = name;
    return 0;
}

size_t spool_bytes(const struct spool *sp)
{
    size_t n = 0;

    for (const struct spool_seg *s = sp->head; s != NULL; s = s->next)
        n += s->size + s->queued;
    return n;
}

size_t spool_pending(const struct spool *sp)
{
    return sp->n_pending;
}

int spool_syncing(const struct spool *sp)
{
    return sp->syncing != 0;
}

/* ---- handing work to the flusher ---- */

static void spool_wake(struct spool *sp)
{
    sp->kick = 1;
    pthread_cond_signal(&sp->cond);
}

static void batches_free(struct spool_batch *b)
{
    while (b != NULL) {
        struct spool_batch *next = b->next;

        free(b->buf.p);
        free(b->w);
        free(b);
        b = next;
    }
}

/* Adds a record to the batch being gathered for the newest segment; with w
 * (an append or a copy), it wakes the flusher. */
static int spool_enqueue(struct spool *sp, int type, uint64_t id, struct str payload,
                         const struct spool_waiter *w)
{
    size_t rec = SPOOL_REC_HDR + payload.len;
    struct spool_batch *b, *fresh = NULL;
    int rc = ERR_NOMEM;

    pthread_mutex_lock(&sp->mu);
    b = sp->q_tail;
    if (b == NULL || b->seg != sp->cur) {
        b = fresh = calloc(1, sizeof(*b));
        if (b == NULL)
            goto out;
        b->seg = sp->cur;
        b->name = sp->cur->name;
    }
    /* A batch is queued only with a record in it: queued bytes are what
     * keeps its segment alive. */
    if (buf_reserve(&b->buf, rec) != 0 ||
        (w != NULL && array_reserve(&b->w, &b->cap_w, b->n_w, sizeof(*b->w)) != 0)) {
        batches_free(fresh);
        goto out;
    }
    if (fresh != NULL) {
        if (sp->q_tail != NULL)
            sp->q_tail->next = fresh;
        else
            sp->q_head = fresh;
        sp->q_tail = fresh;
    }
    if (w != NULL) {
        b->w[b->n_w] = *w;
        b->w[b->n_w++].off = b->buf.len;
        spool_wake(sp);
    }
    spool_encode(b->buf.p + b->buf.len, type, id, payload);
    b->buf.len += rec;
    sp->cur->queued += rec;
    if (w != NULL)
        sp->cur->inflight++;
    rc = 0;
out:
    pthread_mutex_unlock(&sp->mu);
    return rc;
}

/* Rotates first when a record of rec bytes would take the newest segment
 * past the limit (a segment holds at least one record). */
static int spool_make_room(struct spool *sp, size_t rec)
{
    struct spool_seg *c = sp->cur;

    if (c->size + c->queued > SPOOL_HDR && c->size + c->queued + rec > sp->seg_limit)
        return spool_rotate(sp);
    return 0;
}

/* Deletes the oldest segments that nothing needs any more, and starts a
 * compaction of the oldest when the spool is over 3/4 of max_bytes or need
 * more bytes would not fit. */
static void spool_maintain(struct spool *sp, size_t need)
{
    struct spool_seg *h;
    size_t total;
    struct spool_read *r;

    if (sp->recovering)
        return;
    while ((h = sp->head) != sp->cur && h->pending == 0 && h->inflight == 0 && h->queued == 0) {
        /* The unlink goes to the flusher: its accounting ends now. */
        pthread_mutex_lock(&sp->mu);
        if (array_reserve(&sp->dels, &sp->cap_dels, sp->n_dels, sizeof(*sp->dels)) != 0) {
            pthread_mutex_unlock(&sp->mu);
            break;
        }
        sp->dels[sp->n_dels++] = h->name;
        spool_wake(sp);
        pthread_mutex_unlock(&sp->mu);
        if (sp->compact == h)
            sp->compact = NULL;
        sp->head = h->next;
        free(h);
        spool_count(sp, STAT_spool_compactions);
    }

    total = spool_bytes(sp);
    h = sp->head;
    if (sp->compact != NULL || sp->copies != 0 || sp->compact_blocked || h == sp->cur ||
        h->pending == 0 || h->inflight != 0 || h->no_compact || h->live * 2 > h->size)
        return; /* rewriting over half a segment to free the rest: never */
    if (!(total > sp->max_bytes / 4 * 3 && h->live * 4 <= h->size) &&
        !(need > 0 && total + need > sp->max_bytes))
        return;

    r = calloc(1, sizeof(*r));
    if (r == NULL || (r->items = calloc(h->pending, sizeof(*r->items))) == NULL) {
        free(r);
        return;
    }
    r->name = h->name;
    for (size_t i = 0; i < sp->n_idx && r->n < h->pending; i++)
        if (sp->idx[i].seg == h)
            r->items[r->n++] =
                (struct spool_read_item){sp->idx[i].id, sp->idx[i].off, sp->idx[i].len, 0};
    sp->compact = h;
    pthread_mutex_lock(&sp->mu);
    if (sp->r_tail != NULL)
        sp->r_tail->next = r;
    else
        sp->r_head = r;
    sp->r_tail = r;
    spool_wake(sp);
    pthread_mutex_unlock(&sp->mu);
}

/* ---- the flusher thread ---- */

static int write_all(int fd, const unsigned char *p, size_t n, size_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);

        if (w == -1 && errno == EINTR)
            continue;
        if (w == -1)
            return -1;
        p += w;
        n -= (size_t)w;
        off += (size_t)w;
    }
    return 0;
}

static int read_all(int fd, unsigned char *p, size_t n, size_t off)
{
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);

        if (r == -1 && errno == EINTR)
            continue;
        if (r == 0)
            errno = EIO; /* the file is shorter than it was */
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
        off += (size_t)r;
    }
    return 0;
}

/* Takes the file of the segment being written back to `to` bytes, so that
 * no torn record stays in it; when that fails too, the file is left alone
 * for good (the loop moves to a new segment; the next start quarantines
 * the tail). */
static void flusher_undo(struct spool *sp, size_t to)
{
    if (ftruncate(sp->fd, (off_t)to) == 0 && fsync(sp->fd) == 0) {
        sp->fd_size = to;
        sp->fd_dirty = 0;
        return;
    }
    sp->broken = sp->fd_name;
    sp->has_broken = 1;
    close(sp->fd);
    sp->fd = -1;
}

static void flusher_close(struct spool *sp)
{
    if (sp->fd == -1)
        return;
    /* Completions may be unsynced: sync them so no torn record is left. */
    if (sp->fd_dirty)
        fdatasync(sp->fd);
    close(sp->fd);
    sp->fd = -1;
}

/* Makes name the file being written, creating it with its header (file and
 * folder fsynced) when new. Returns 0, or -1 with errno and *what. */
static int flusher_open(struct spool *sp, uint64_t name, const char **what)
{
    char path[SPOOL_NAME_SIZE];
    unsigned char hdr[SPOOL_HDR];
    struct stat st;
    int fd, e, fresh = 0;

    if (sp->fd != -1 && sp->fd_name == name)
        return 0;
    if (sp->has_broken && sp->broken == name) {
        *what = "unusable since a failed write could not be undone";
        errno = EIO;
        return -1;
    }
    flusher_close(sp);
    spool_seg_name(path, name);
    *what = "open";
    fd = openat(sp->dirfd, path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd == -1)
        return -1;
    if (fstat(fd, &st) == -1)
        goto fail;
    if ((size_t)st.st_size < SPOOL_HDR) {
        fresh = 1;
        memcpy(hdr, SPOOL_MAGIC, 8);
        put_u32(hdr + 8, SPOOL_VERSION);
        *what = "header write";
        if (ftruncate(fd, 0) == -1 || write_all(fd, hdr, sizeof(hdr), 0) == -1)
            goto fail;
        *what = "fsync";
        if (fsync(fd) == -1 || fsync(sp->dirfd) == -1)
            goto fail;
        st.st_size = SPOOL_HDR;
    }
    sp->fd = fd;
    sp->fd_name = name;
    sp->fd_size = (size_t)st.st_size;
    sp->fd_dirty = 0;
    return 0;
fail:
    e = errno;
    close(fd);
    if (fresh) /* no file without its header is left behind */
        unlinkat(sp->dirfd, path, 0);
    errno = e;
    return -1;
}

static void batch_fail(struct spool_batch *b, int err, const char *what)
{
    if (b->rc != 0)
        return; /* the first failure is the one to report */
    b->rc = ERR_IO;
    b->err = err;
    b->what = what;
}

/* Writes the batches of one segment [run, end): each at the end of the
 * file, then one fdatasync when any holds appends (or sync). A batch whose
 * write fails is cut off again; a failed fdatasync fails the whole run. */
static void flusher_write_run(struct spool *sp, struct spool_batch *run, struct spool_batch *end,
                              int sync)
{
    const char *what = NULL;
    struct spool_batch *b;
    size_t start;

    for (b = run; b != end; b = b->next)
        sync |= b->n_w > 0;
    if (flusher_open(sp, run->name, &what) == -1) {
        int e = errno;

        for (b = run; b != end; b = b->next)
            batch_fail(b, e, what);
        return;
    }
    start = sp->fd_size;
    for (b = run; b != end && sp->fd != -1; b = b->next) {
        b->base = sp->fd_size;
        if (write_all(sp->fd, b->buf.p, b->buf.len, b->base) == -1) {
            batch_fail(b, errno, "write");
            flusher_undo(sp, b->base);
        } else {
            sp->fd_size += b->buf.len;
            sp->fd_dirty |= b->buf.len > 0;
        }
    }
    for (; b != end; b = b->next)
        batch_fail(b, EIO, "unusable since a failed write could not be undone");
    if (sp->fd != -1 && sync && sp->fd_dirty) {
        if (fdatasync(sp->fd) == -1) {
            int e = errno;

            for (b = run; b != end; b = b->next)
                batch_fail(b, e, "fdatasync");
            flusher_undo(sp, start);
        } else {
            sp->fd_dirty = 0;
        }
    }
}

static void flusher_write(struct spool *sp, struct spool_batch *list, int sync)
{
    while (list != NULL) {
        struct spool_batch *end = list->next, *b;

        while (end != NULL && end->name == list->name)
            end = end->next;
        flusher_write_run(sp, list, end, sync);
        for (b = list; b != end; b = b->next) {
            b->size = sp->fd != -1 && sp->fd_name == b->name ? sp->fd_size : 0;
            b->broken = sp->has_broken && sp->broken == b->name;
        }
        list = end;
    }
}

/* Reads back, and checks, the alerts a compaction copies. */
static void flusher_read(struct spool *sp, struct spool_read *r)
{
    char path[SPOOL_NAME_SIZE];
    int fd;

    spool_seg_name(path, r->name);
    fd = openat(sp->dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        r->err = errno;
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        struct spool_read_item *it = &r->items[i];
        unsigned char *p;

        if (it->len < SPOOL_REC_HDR || it->len > SPOOL_REC_MAX ||
            buf_reserve(&r->out, it->len) != 0)
            continue;
        p = r->out.p + r->out.len;
        if (read_all(fd, p, it->len, it->off) == -1 || get_u32(p) != it->len - 8 ||
            crc32c(p + 8, it->len - 8) != get_u32(p + 4) || p[8] != SPOOL_ALERT ||
            get_u64(p + 9) != it->id)
            continue;
        it->ok = 1;
        r->out.len += it->len;
    }
    close(fd);
}

static void flusher_delete(struct spool *sp, const uint64_t *names, size_t n)
{
    char path[SPOOL_NAME_SIZE];

    for (size_t i = 0; i < n; i++) {
        spool_seg_name(path, names[i]);
        if (names[i] == sp->fd_name && sp->fd != -1) {
            close(sp->fd);
            sp->fd = -1;
        }
        if (unlinkat(sp->dirfd, path, 0) == -1 && errno != ENOENT)
            log_limited(&sp->rl_io, LOG_LVL_ERROR, "spool.dir: %s/%s: cannot delete: %s", sp->dir,
                        path, strerror(errno));
    }
    if (n > 0)
        fsync(sp->dirfd);
}

static void *spool_flusher(void *arg)
{
    struct spool *sp = arg;
    uint64_t *dels = NULL;
    size_t cap_dels = 0;
    int stop = 0;

    while (!stop) {
        struct spool_batch *q;
        struct spool_read *reads, *r;
        size_t n_dels, t_cap;
        struct timespec deadline;
        uint64_t *t;

        /* Completions alone do not wake us: they wait at most
         * SPOOL_COMPLETE_FLUSH_MS for company. */
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += SPOOL_COMPLETE_FLUSH_MS / 1000;
        deadline.tv_nsec += SPOOL_COMPLETE_FLUSH_MS % 1000 * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&sp->mu);
        while (!sp->stop && !sp->kick) {
            if (sp->q_head == NULL)
                pthread_cond_wait(&sp->cond, &sp->mu);
            else if (pthread_cond_timedwait(&sp->cond, &sp->mu, &deadline) == ETIMEDOUT)
                break;
        }
        stop = sp->stop;
        sp->kick = 0;
        q = sp->q_head;
        sp->q_head = sp->q_tail = NULL;
        reads = sp->r_head;
        sp->r_head = sp->r_tail = NULL;
        /* Swap the deletion arrays: neither side allocates under mu. */
        t = sp->dels;
        t_cap = sp->cap_dels;
        sp->dels = dels;
        sp->cap_dels = cap_dels;
        dels = t;
        cap_dels = t_cap;
        n_dels = sp->n_dels;
        sp->n_dels = 0;
        pthread_mutex_unlock(&sp->mu);

        /* Reads first: a segment being read is deleted after it. */
        if (!stop)
            for (r = reads; r != NULL; r = r->next)
                flusher_read(sp, r);
        flusher_write(sp, q, stop);
        flusher_delete(sp, dels, n_dels);

        if (q == NULL && reads == NULL)
            continue;
        pthread_mutex_lock(&sp->mu);
        if (q != NULL) {
            struct spool_batch *last = q;

            while (last->next != NULL)
                last = last->next;
            if (sp->d_tail != NULL)
                sp->d_tail->next = q;
            else
                sp->d_head = q;
            sp->d_tail = last;
        }
        if (reads != NULL) {
            r = reads;
            while (r->next != NULL)
                r = r->next;
            if (sp->rd_tail != NULL)
                sp->rd_tail->next = reads;
            else
                sp->rd_head = reads;
            sp->rd_tail = r;
        }
        pthread_mutex_unlock(&sp->mu);
        event_active(sp->ev_done, 0, 0);
    }
    flusher_close(sp);
    free(dels);
    return NULL;
}

/* ---- results, on the loop ---- */

/* Journals again the completions of a batch that could not be written. */
static void spool_requeue_completions(struct spool *sp, const struct spool_batch *b)
{
    size_t off;

    for (off = 0; off + SPOOL_REC_HDR <= b->buf.len; off += 8 + get_u32(b->buf.p + off)) {
        uint64_t id = get_u64(b->buf.p + off + 9);

        if (b->buf.p[off + 8] == SPOOL_COMPLETE &&
            spool_enqueue(sp, SPOOL_COMPLETE, id, (struct str){NULL, 0}, NULL) != 0)
            log_limited(&sp->rl_io, LOG_LVL_ERROR,
                        "spool.dir: %s: no memory to journal the completion of alert %" PRIu64
                        " (it is sent again after a restart)",
                        sp->dir, id);
    }
}

/* A compaction copy is durable (or failed): on success the alert's latest
 * record is the copy. */
static void spool_copy_done(struct spool *sp, const struct spool_batch *b,
                            const struct spool_waiter *w, struct spool_entry *e)
{
    if (b->rc == 0 && e != NULL && e->seg != b->seg) {
        e->seg->pending--;
        e->seg->live -= e->len;
        e->seg = b->seg;
        e->off = (uint32_t)(b->base + w->off);
        b->seg->pending++;
        b->seg->live += e->len;
    }
    if (b->rc != 0)
        sp->compact_blocked = 1;
    if (--sp->copies == 0)
        sp->compact = NULL;
}

static void spool_batch_done(struct spool *sp, struct spool_batch *b)
{
    struct spool_seg *seg = b->seg;
    int64_t now = now_ms();

    seg->queued -= b->buf.len;
    if (b->size != 0)
        seg->size = b->size;
    if (b->rc != 0) {
        char name[SPOOL_NAME_SIZE];
        size_t appends = 0;

        for (size_t i = 0; i < b->n_w; i++)
            appends += !b->w[i].copy;
        spool_seg_name(name, b->name);
        spool_count(sp, STAT_spool_write_errors);
        log_limited(&sp->rl_io, LOG_LVL_ERROR, "spool.dir: %s/%s: %s: %s (%zu alerts not spooled)",
                    sp->dir, name, b->what, strerror(b->err), appends);
        spool_requeue_completions(sp, b);
        if (b->broken && seg == sp->cur && spool_rotate(sp) != 0)
            log_limited(&sp->rl_io, LOG_LVL_ERROR, "spool.dir: %s: no memory for a new segment",
                        sp->dir);
    } else if (b->n_w > 0) {
        sp->compact_blocked = 0;
    }
    /* inflight keeps seg (and the entries' segments) alive until its last
     * waiter; callbacks may append or complete, so entries are looked up
     * afresh each time. */
    for (size_t i = 0; i < b->n_w; i++) {
        const struct spool_waiter *w = &b->w[i];
        struct spool_entry *e = index_find(sp, w->id);

        seg->inflight--;
        if (w->copy) {
            spool_copy_done(sp, b, w, e);
            continue;
        }
        sp->syncing--;
        if (b->rc == 0) {
            if (e != NULL)
                e->off = (uint32_t)(b->base + w->off);
            spool_count(sp, STAT_spool_appends);
            if (now - w->t0 > sp->fsync_delay_ms) {
                spool_count(sp, STAT_spool_slow_syncs);
                log_limited(&sp->rl_slow, LOG_LVL_WARNING,
                            "spool.dir: %s: an append took %lld ms to be durable (over "
                            "spool.fsync_delay_ms, %d ms)",
                            sp->dir, (long long)(now - w->t0), sp->fsync_delay_ms);
            }
        } else if (e != NULL) {
            index_drop(sp, e);
        }
        if (w->cb != NULL)
            w->cb(w->arg, b->rc);
    }
}

/* The alerts a compaction asked for are back: append the ones still
 * pending there again, as copies. */
static void spool_read_done(struct spool *sp, const struct spool_read *r)
{
    struct spool_seg *src = sp->compact;
    const unsigned char *p = r->out.p;
    size_t left = 0;

    if (src == NULL || src->name != r->name)
        return; /* everything in it completed meanwhile: it is gone */
    for (size_t i = 0; i < r->n; i++) {
        const struct spool_read_item *it = &r->items[i];
        const struct spool_entry *e = index_find(sp, it->id);
        struct spool_waiter w = {NULL, NULL, it->id, 0, now_ms(), 1};
        struct str payload;

        if (!it->ok) {
            left += e != NULL && e->seg == src;
            continue;
        }
        payload = str_make((const char *)p + SPOOL_REC_HDR, it->len - SPOOL_REC_HDR);
        p += it->len;
        if (e == NULL || e->seg != src)
            continue;
        if (spool_make_room(sp, it->len) != 0 ||
            spool_enqueue(sp, SPOOL_ALERT, it->id, payload, &w) != 0) {
            left++;
            continue;
        }
        sp->copies++;
    }
    if (left > 0) {
        char name[SPOOL_NAME_SIZE];

        spool_seg_name(name, src->name);
        src->no_compact = 1;
        log_error("spool.dir: %s/%s: %zu pending alerts could not be read back to compact it%s%s "
                  "(it stays until they complete)",
                  sp->dir, name, left, r->err != 0 ? ": " : "",
                  r->err != 0 ? strerror(r->err) : "");
    }
    if (sp->copies == 0)
        sp->compact = NULL;
}

static void reads_free(struct spool_read *r)
{
    while (r != NULL) {
        struct spool_read *next = r->next;

        free(r->items);
        free(r->out.p);
        free(r);
        r = next;
    }
}

static void spool_on_done(evutil_socket_t fd, short what, void *arg)
{
    struct spool *sp = arg;
    struct spool_batch *b, *bnext;
    struct spool_read *r;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&sp->mu);
    b = sp->d_head;
    sp->d_head = sp->d_tail = NULL;
    r = sp->rd_head;
    sp->rd_head = sp->rd_tail = NULL;
    pthread_mutex_unlock(&sp->mu);
    for (; b != NULL; b = bnext) {
        bnext = b->next;
        b->next = NULL;
        spool_batch_done(sp, b);
        batches_free(b);
    }
    for (const struct spool_read *i = r; i != NULL; i = i->next)
        spool_read_done(sp, i);
    reads_free(r);
    spool_maintain(sp, 0);
}

/* ---- reading segments ---- */

struct spool_rec {
    int type;
    uint64_t id;
    size_t off; /* in the file */
    size_t len; /* the whole record's bytes */
    struct str payload;
};

struct spool_reader {
    int fd;
    size_t size;        /* bytes of the file to read */
    size_t pos;         /* the file offset of the next record */
    unsigned char *buf; /* SPOOL_READ_BUF bytes */
    size_t start, end;  /* buf[start, end) holds the file's bytes from pos */
    char why[96];       /* what made a record bad */
};

static int reader_bad(struct spool_reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int reader_bad(struct spool_reader *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->why, sizeof(r->why), fmt, ap);
    va_end(ap);
    return ERR_INVALID;
}

/* Checks the header. Returns 0, ERR_INVALID (why) or ERR_IO (errno). */
static int reader_start(struct spool_reader *r)
{
    unsigned char hdr[SPOOL_HDR];

    r->pos = SPOOL_HDR;
    r->start = r->end = 0;
    if (r->size < SPOOL_HDR)
        return reader_bad(r, "a header cut short (%zu bytes)", r->size);
    if (read_all(r->fd, hdr, SPOOL_HDR, 0) == -1)
        return ERR_IO;
    if (memcmp(hdr, SPOOL_MAGIC, 8) != 0)
        return reader_bad(r, "a bad magic");
    if (get_u32(hdr + 8) != SPOOL_VERSION)
        return reader_bad(r, "version %" PRIu32 " (this agent reads %d)", get_u32(hdr + 8),
                          SPOOL_VERSION);
    return 0;
}

/* Has need bytes from pos in the buffer; need is at most what is left of
 * the file, and at most SPOOL_REC_MAX. */
static int reader_fill(struct spool_reader *r, size_t need)
{
    size_t have = r->end - r->start, want;

    if (have >= need)
        return 0;
    memmove(r->buf, r->buf + r->start, have);
    r->start = 0;
    r->end = have;
    want = SPOOL_READ_BUF - have;
    if (want > r->size - r->pos - have)
        want = r->size - r->pos - have;
    if (read_all(r->fd, r->buf + have, want, r->pos + have) == -1)
        return ERR_IO;
    r->end += want;
    return 0;
}

/* The next record: 1 and *rec, 0 at the end, ERR_INVALID for a bad record
 * (rec->off and why say where and what) or ERR_IO (errno). Nothing is read
 * or trusted beyond what the length check allows. */
static int reader_next(struct spool_reader *r, struct spool_rec *rec)
{
    size_t left = r->size - r->pos;
    const unsigned char *p;
    uint32_t len;
    int type;

    rec->off = r->pos;
    if (left == 0)
        return 0;
    if (left < 8)
        return reader_bad(r, "a record header cut short (%zu bytes)", left);
    if (reader_fill(r, 8) != 0)
        return ERR_IO;
    len = get_u32(r->buf + r->start);
    if (len < 9 || len > 9 + SPOOL_MAX_PAYLOAD)
        return reader_bad(r, "a record length of %" PRIu32, len);
    if (len > left - 8)
        return reader_bad(r, "a record cut short (%" PRIu32 " bytes announced, %zu there)", len,
                          left - 8);
    if (r->pos + 8 + len > UINT32_MAX)
        return reader_bad(r, "a record past 4 GiB"); /* never one of ours */
    if (reader_fill(r, 8 + len) != 0)
        return ERR_IO;
    p = r->buf + r->start;
    if (crc32c(p + 8, len) != get_u32(p + 4))
        return reader_bad(r, "a CRC mismatch");
    type = p[8];
    if ((type != SPOOL_ALERT && type != SPOOL_COMPLETE) || (type == SPOOL_ALERT) != (len > 9))
        return reader_bad(r, "a record of type %d and length %" PRIu32, type, len);
    rec->type = type;
    rec->id = get_u64(p + 9);
    rec->len = 8 + (size_t)len;
    rec->payload = str_make((const char *)p + SPOOL_REC_HDR, len - 9);
    r->start += rec->len;
    r->pos += rec->len;
    return 1;
}

/* ---- opening: lock, read, quarantine ---- */

static int spool_lock(struct spool *sp)
{
    char buf[32];
    ssize_t n;
    int e;

    sp->lockfd = openat(sp->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (sp->lockfd == -1) {
        log_error("spool.dir: %s: cannot open %s/lock: %s", sp->dir, sp->dir, strerror(errno));
        return ERR_IO;
    }
    if (flock(sp->lockfd, LOCK_EX | LOCK_NB) == -1) {
        e = errno;
        if (e != EWOULDBLOCK) {
            log_error("spool.dir: %s: cannot lock %s/lock: %s", sp->dir, sp->dir, strerror(e));
            return ERR_IO;
        }
        n = pread(sp->lockfd, buf, sizeof(buf) - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        if (n > 0 && buf[0] != '\0' && strspn(buf, "0123456789") == strlen(buf))
            log_error("spool.dir: %s: held by another rtr-agent (pid %s)", sp->dir, buf);
        else
            log_error("spool.dir: %s: held by another rtr-agent (pid unknown)", sp->dir);
        return ERR_IO;
    }
    n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(sp->lockfd, 0) == -1 ||
        write_all(sp->lockfd, (const unsigned char *)buf, (size_t)n, 0) == -1)
        log_warning("spool.dir: %s: cannot write our pid into %s/lock: %s", sp->dir, sp->dir,
                    strerror(errno));
    return 0;
}

/* What the scan of the segments found: every alert record's place, and
 * the completed ids (sorted and joined once every segment is read). */
struct spool_found {
    uint64_t id;
    uint32_t seg; /* the segment's position, oldest first */
    uint32_t off;
    uint32_t len;
};

struct spool_scan {
    struct spool_found *found;
    size_t n_found, cap_found;
    uint64_t *done;
    size_t n_done, cap_done;
    uint64_t max_id;
    struct spool_seg **segs; /* by position */
    size_t n_segs, cap_segs;
};

/* "<segment>.corrupt-<unix time>" */
static void spool_side_name(char *out, uint64_t number)
{
    snprintf(out, SPOOL_NAME_SIZE, "seg-%016" PRIx64 ".spool.corrupt-%lld", number,
             (long long)time(NULL));
}

/* Moves the tail of a segment from off to a side file, then cuts the
 * segment there (both fsynced): nothing is destroyed without a copy. */
static int spool_quarantine_tail(struct spool *sp, int fd, uint64_t number, size_t off, size_t size,
                                 const char *why, unsigned char *buf)
{
    char name[SPOOL_NAME_SIZE], side[SPOOL_NAME_SIZE];
    int out;
    size_t at;

    spool_seg_name(name, number);
    spool_side_name(side, number);
    out = openat(sp->dirfd, side, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out == -1)
        goto fail;
    for (at = off; at < size;) {
        size_t n = size - at < SPOOL_READ_BUF ? size - at : SPOOL_READ_BUF;

        if (read_all(fd, buf, n, at) == -1 || write_all(out, buf, n, at - off) == -1)
            break;
        at += n;
    }
    if (at < size || fsync(out) == -1 || fsync(sp->dirfd) == -1) {
        int e = errno;

        close(out);
        errno = e;
        goto fail;
    }
    close(out);
    if (ftruncate(fd, (off_t)off) == -1 || fsync(fd) == -1)
        goto fail;
    log_error("spool.dir: %s/%s: %s at offset %zu: its last %zu bytes moved to %s/%s", sp->dir,
              name, why, off, size - off, sp->dir, side);
    spool_count(sp, STAT_spool_corrupt);
    return 0;
fail:
    log_error("spool.dir: %s/%s: %s at offset %zu, and its tail cannot be moved to %s/%s: %s",
              sp->dir, name, why, off, sp->dir, side, strerror(errno));
    return ERR_IO;
}

static int spool_scan_add(struct spool_scan *sc, const struct spool_rec *rec)
{
    if (rec->id > sc->max_id)
        sc->max_id = rec->id;
    if (rec->type == SPOOL_COMPLETE) {
        if (array_reserve(&sc->done, &sc->cap_done, sc->n_done, sizeof(*sc->done)) != 0)
            return ERR_NOMEM;
        sc->done[sc->n_done++] = rec->id;
        return 0;
    }
    if (array_reserve(&sc->found, &sc->cap_found, sc->n_found, sizeof(*sc->found)) != 0)
        return ERR_NOMEM;
    sc->found[sc->n_found++] = (struct spool_found){rec->id, (uint32_t)(sc->n_segs - 1),
                                                    (uint32_t)rec->off, (uint32_t)rec->len};
    return 0;
}

/* Reads one segment into sc. A bad header moves the file aside, an empty
 * file (a crash while it was created) is removed; a bad record cuts the
 * segment there. Returns 0 (*keep says whether the segment is still
 * there), ERR_IO or ERR_NOMEM. */
static int spool_scan_segment(struct spool *sp, struct spool_scan *sc, uint64_t number,
                              unsigned char *buf, int *keep)
{
    char name[SPOOL_NAME_SIZE], side[SPOOL_NAME_SIZE];
    struct spool_reader r = {.buf = buf};
    struct spool_rec rec;
    struct stat st;
    int rc = ERR_IO;

    *keep = 0;
    spool_seg_name(name, number);
    r.fd = openat(sp->dirfd, name, O_RDWR | O_CLOEXEC);
    if (r.fd == -1 || fstat(r.fd, &st) == -1) {
        log_error("spool.dir: %s/%s: cannot open: %s", sp->dir, name, strerror(errno));
        goto out;
    }
    r.size = (size_t)st.st_size;
    if (r.size == 0) {
        log_warning("spool.dir: %s/%s: empty (a crash while it was created): removed", sp->dir,
                    name);
        if (unlinkat(sp->dirfd, name, 0) == -1) {
            log_error("spool.dir: %s/%s: cannot remove: %s", sp->dir, name, strerror(errno));
            goto out;
        }
        rc = 0;
        goto out;
    }
    rc = reader_start(&r);
    if (rc == ERR_IO) {
        log_error("spool.dir: %s/%s: cannot read: %s", sp->dir, name, strerror(errno));
        goto out;
    }
    if (rc == ERR_INVALID) {
        spool_side_name(side, number);
        if (renameat(sp->dirfd, name, sp->dirfd, side) == -1 || fsync(sp->dirfd) == -1) {
            log_error("spool.dir: %s/%s: %s, and it cannot be moved to %s/%s: %s", sp->dir, name,
                      r.why, sp->dir, side, strerror(errno));
            rc = ERR_IO;
            goto out;
        }
        log_error("spool.dir: %s/%s: %s: the whole file moved to %s/%s", sp->dir, name, r.why,
                  sp->dir, side);
        spool_count(sp, STAT_spool_corrupt);
        rc = 0;
        goto out;
    }
    if (array_reserve(&sc->segs, &sc->cap_segs, sc->n_segs, sizeof(*sc->segs)) != 0 ||
        (sc->segs[sc->n_segs] = seg_new(sp, number, 0)) == NULL) {
        rc = ERR_NOMEM;
        goto out;
    }
    sc->n_segs++;
    *keep = 1;
    while (rc == 0 && (rc = reader_next(&r, &rec)) == 1)
        rc = spool_scan_add(sc, &rec);
    if (rc == ERR_IO)
        log_error("spool.dir: %s/%s: cannot read at offset %zu: %s", sp->dir, name, rec.off,
                  strerror(errno));
    if (rc == ERR_INVALID) {
        rc = spool_quarantine_tail(sp, r.fd, number, rec.off, r.size, r.why, buf);
        r.size = rec.off;
    }
    sp->cur->size = r.size;
out:
    if (r.fd != -1)
        close(r.fd);
    return rc;
}

/* qsort and bsearch, kept from the NULL of an empty array. */
static void spool_sort(void *arr, size_t n, size_t sz, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(arr, n, sz, cmp);
}

static void *spool_search(const void *key, const void *arr, size_t n, size_t sz,
                          int (*cmp)(const void *, const void *))
{
    return n > 0 ? bsearch(key, arr, n, sz, cmp) : NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* By id, then by place: the last of a run of equal ids is the latest. */
static int cmp_found(const void *a, const void *b)
{
    const struct spool_found *x = a, *y = b;

    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    if (x->seg != y->seg)
        return x->seg < y->seg ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Builds the index of pending alerts (their latest record), and the list
 * of completed ids with more than one record, from what the scan found. */
static int spool_join(struct spool *sp, struct spool_scan *sc)
{
    size_t cap_dups = 0;

    spool_sort(sc->found, sc->n_found, sizeof(*sc->found), cmp_found);
    spool_sort(sc->done, sc->n_done, sizeof(*sc->done), cmp_u64);
    for (size_t i = 0, j; i < sc->n_found; i = j) {
        const struct spool_found *last;

        for (j = i + 1; j < sc->n_found && sc->found[j].id == sc->found[i].id; j++)
            ;
        last = &sc->found[j - 1];
        if (spool_search(&last->id, sc->done, sc->n_done, sizeof(*sc->done), cmp_u64) == NULL) {
            if (index_reserve(sp) != 0)
                return ERR_NOMEM;
            index_push(sp, last->id, sc->segs[last->seg], last->off, last->len);
        } else if (j - i > 1) {
            if (array_reserve(&sp->dups, &cap_dups, sp->n_dups, sizeof(*sp->dups)) != 0)
                return ERR_NOMEM;
            sp->dups[sp->n_dups++] = (struct spool_dup){last->id, sc->segs[last->seg], last->off};
        }
    }
    return 0;
}

/* Lists the segments, oldest first. */
static int spool_list(struct spool *sp, uint64_t **names, size_t *n)
{
    size_t cap = 0;
    struct dirent *de;
    DIR *d = opendir(sp->dir);

    *names = NULL;
    *n = 0;
    if (d == NULL) {
        log_error("spool.dir: %s: cannot list: %s", sp->dir, strerror(errno));
        return ERR_IO;
    }
    while ((de = readdir(d)) != NULL) {
        uint64_t v;

        if (spool_parse_name(de->d_name, &v) != 0)
            continue;
        if (array_reserve(names, &cap, *n, sizeof(**names)) != 0) {
            closedir(d);
            return ERR_NOMEM;
        }
        (*names)[(*n)++] = v;
    }
    closedir(d);
    spool_sort(*names, *n, sizeof(**names), cmp_u64);
    return 0;
}

/* Reads every segment, then opens a new one for this run. */
static int spool_load(struct spool *sp)
{
    struct spool_scan sc = {0};
    uint64_t *names;
    size_t n;
    unsigned char *buf = malloc(SPOOL_READ_BUF);
    int rc = buf != NULL ? spool_list(sp, &names, &n) : ERR_NOMEM;

    if (rc != 0)
        goto out;
    for (size_t i = 0; i < n && rc == 0; i++) {
        int keep;

        rc = spool_scan_segment(sp, &sc, names[i], buf, &keep);
    }
    free(names);
    if (rc == 0)
        rc = spool_join(sp, &sc);
    if (rc != 0)
        goto out;
    sp->next_id = sc.max_id + 1;
    rc = spool_rotate(sp);
    if (sc.n_segs > 0)
        log_info("spool.dir: %s: %zu segments read, %zu alerts pending", sp->dir, sc.n_segs,
                 sp->n_pending);
out:
    free(buf);
    free(sc.found);
    free(sc.done);
    free(sc.segs);
    return rc;
}

/* Starts the flusher with every signal blocked: signals are the loop's
 * (and a file size limit then gives EFBIG, never SIGXFSZ's default). */
static int spool_start(struct spool *sp)
{
    sigset_t all, old;
    int e;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    e = pthread_create(&sp->thread, NULL, spool_flusher, sp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        log_error("spool.dir: %s: cannot start the flusher thread: %s", sp->dir, strerror(e));
        return ERR_IO;
    }
    sp->started = 1;
    return 0;
}

int spool_open(const struct spool_config *cfg, struct event_base *base, struct stats *stats,
               struct spool **out)
{
    struct spool *sp;
    pthread_condattr_t ca;
    int rc = ERR_NOMEM;

    *out = NULL;
    pthread_once(&crc32c_once, crc32c_init);
    if (cfg->dir == NULL) {
        log_error("spool.dir: not set");
        return ERR_IO;
    }
    sp = calloc(1, sizeof(*sp));
    if (sp == NULL)
        return ERR_NOMEM;
    pthread_mutex_init(&sp->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sp->cond, &ca);
    pthread_condattr_destroy(&ca);
    sp->dirfd = sp->lockfd = sp->fd = -1;
    sp->base = base;
    sp->stats = stats;
    sp->max_bytes = cfg->max_bytes;
    sp->seg_limit =
        cfg->max_bytes / 4 < SPOOL_SEGMENT_BYTES ? cfg->max_bytes / 4 : SPOOL_SEGMENT_BYTES;
    sp->fsync_delay_ms = cfg->fsync_delay_ms;
    sp->rl_io = (struct log_ratelimit)LOG_RATELIMIT_INIT(10, 5);
    sp->rl_slow = (struct log_ratelimit)LOG_RATELIMIT_INIT(10, 5);
    sp->dir = strdup(cfg->dir);
    if (sp->dir == NULL)
        goto fail;
    rc = ERR_IO;
    if (mkdir(sp->dir, 0700) == -1 && errno != EEXIST) {
        log_error("spool.dir: %s: cannot create: %s", sp->dir, strerror(errno));
        goto fail;
    }
    sp->dirfd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sp->dirfd == -1) {
        log_error("spool.dir: %s: cannot open: %s", sp->dir, strerror(errno));
        goto fail;
    }
    rc = spool_lock(sp);
    if (rc == 0)
        rc = spool_load(sp);
    if (rc != 0)
        goto fail;
    rc = ERR_NOMEM;
    sp->ev_done = event_new(base, -1, 0, spool_on_done, sp);
    if (sp->ev_done == NULL)
        goto fail;
    sp->recovering = 1;
    rc = spool_start(sp);
    if (rc != 0)
        goto fail;
    *out = sp;
    return 0;
fail:
    spool_free(sp);
    return rc;
}

/* ---- recovery hand-out, appends, completions ---- */

static int cmp_dup(const void *key, const void *elem)
{
    uint64_t id = *(const uint64_t *)key;
    const struct spool_dup *d = elem;

    return id < d->id ? -1 : id > d->id;
}

/* Whether rec is the record spool_recovered hands out for its id (its
 * last), and whether the id is done. */
static int spool_replay_this(const struct spool *sp, const struct spool_seg *s,
                             const struct spool_rec *rec, int *done)
{
    const struct spool_entry *e = index_find(sp, rec->id);
    const struct spool_dup *d;

    *done = e == NULL;
    if (e != NULL)
        return e->seg == s && e->off == rec->off;
    d = spool_search(&rec->id, sp->dups, sp->n_dups, sizeof(*sp->dups), cmp_dup);
    return d == NULL || (d->seg == s && d->off == rec->off);
}

static void spool_replay_segment(struct spool *sp, const struct spool_seg *s, unsigned char *buf,
                                 void (*each)(void *, uint64_t, struct str, int), void *arg)
{
    char name[SPOOL_NAME_SIZE];
    struct spool_reader r = {.buf = buf, .size = s->size};
    struct spool_rec rec = {0};
    int rc, done;

    spool_seg_name(name, s->name);
    r.fd = openat(sp->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (r.fd == -1) {
        log_error("spool.dir: %s/%s: cannot open it again: %s", sp->dir, name, strerror(errno));
        return;
    }
    rc = reader_start(&r);
    while (rc == 0 && (rc = reader_next(&r, &rec)) == 1) {
        if (rec.type == SPOOL_ALERT && spool_replay_this(sp, s, &rec, &done))
            each(arg, rec.id, rec.payload, done);
        rc = 0;
    }
    /* It checked a moment ago: only the disk or another writer fails it. */
    if (rc != 0)
        log_error("spool.dir: %s/%s: cannot read it again at offset %zu: %s", sp->dir, name,
                  rec.off, rc == ERR_IO ? strerror(errno) : r.why);
    close(r.fd);
}

static void spool_end_recovery(struct spool *sp)
{
    free(sp->dups);
    sp->dups = NULL;
    sp->n_dups = 0;
    sp->recovering = 0;
    spool_maintain(sp, 0);
}

void spool_recovered(struct spool *sp,
                     void (*each)(void *arg, uint64_t id, struct str payload, int done), void *arg)
{
    unsigned char *buf;

    if (!sp->recovering)
        return;
    buf = malloc(SPOOL_READ_BUF);
    if (buf == NULL)
        log_error("spool.dir: %s: no memory to read the spool back", sp->dir);
    for (const struct spool_seg *s = sp->head; buf != NULL && s != sp->cur; s = s->next)
        spool_replay_segment(sp, s, buf, each, arg);
    free(buf);
    spool_end_recovery(sp);
}

/* What compacting the older segments would free: oldest first, as they
 * are deleted, up to the first one spool_maintain would not compact. */
static size_t spool_freeable(const struct spool *sp)
{
    size_t n = 0;

    for (const struct spool_seg *s = sp->head;
         s != sp->cur && !s->no_compact && s->live * 2 <= s->size; s = s->next)
        n += s->size + s->queued - s->live;
    return n;
}

int spool_append(struct spool *sp, struct str payload, spool_durable_cb cb, void *arg, uint64_t *id)
{
    size_t rec = SPOOL_REC_HDR + payload.len, fill, need, total;
    struct spool_waiter w = {cb, arg, 0, 0, 0, 0};

    if (payload.len == 0 || payload.len > SPOOL_MAX_PAYLOAD)
        return ERR_INVALID;
    if (sp->recovering)
        spool_end_recovery(sp);
    fill = sp->cur->size + sp->cur->queued;
    need = rec + (fill > SPOOL_HDR && fill + rec > sp->seg_limit ? SPOOL_HDR : 0);
    total = spool_bytes(sp);
    /* Over max_bytes, an append compaction will make room for is taken
     * at once: the spool stays past max_bytes for the compaction's round
     * trip, by at most one segment. */
    if (total + need > sp->max_bytes) {
        size_t room = spool_freeable(sp);

        spool_maintain(sp, need);
        if (total + need > sp->max_bytes + (room < sp->seg_limit ? room : sp->seg_limit))
            return ERR_TOOBIG;
    }
    if (index_reserve(sp) != 0 || spool_make_room(sp, rec) != 0)
        return ERR_NOMEM;
    w.id = sp->next_id;
    w.t0 = now_ms();
    if (spool_enqueue(sp, SPOOL_ALERT, w.id, payload, &w) != 0)
        return ERR_NOMEM;
    index_push(sp, w.id, sp->cur, 0, rec);
    sp->next_id++;
    sp->syncing++;
    *id = w.id;
    spool_maintain(sp, 0);
    return 0;
}

void spool_complete(struct spool *sp, uint64_t id)
{
    struct spool_entry *e = index_find(sp, id);

    if (e == NULL)
        return; /* completed already, or never appended */
    index_drop(sp, e);
    if (spool_enqueue(sp, SPOOL_COMPLETE, id, (struct str){NULL, 0}, NULL) != 0)
        log_limited(&sp->rl_io, LOG_LVL_ERROR,
                    "spool.dir: %s: no memory to journal the completion of alert %" PRIu64
                    " (it is sent again after a restart)",
                    sp->dir, id);
    spool_maintain(sp, 0);
}

void spool_free(struct spool *sp)
{
    if (sp == NULL)
        return;
    if (sp->started) {
        /* The flusher writes and fsyncs everything queued before it ends. */
        pthread_mutex_lock(&sp->mu);
        sp->stop = 1;
        pthread_cond_signal(&sp->cond);
        pthread_mutex_unlock(&sp->mu);
        pthread_join(sp->thread, NULL);
    }
    batches_free(sp->q_head);
    batches_free(sp->d_head);
    reads_free(sp->r_head);
    reads_free(sp->rd_head);
    evloop_event_free(&sp->ev_done);
    if (sp->dirfd != -1)
        close(sp->dirfd);
    if (sp->lockfd != -1)
        close(sp->lockfd); /* releases the lock */
    while (sp->head != NULL) {
        struct spool_seg *next = sp->head->next;

        free(sp->head);
        sp->head = next;
    }
    free(sp->idx);
    free(sp->dups);
    free(sp->dels);
    free(sp->dir);
    pthread_cond_destroy(&sp->cond);
    pthread_mutex_destroy(&sp->mu);
    free(sp);
}
