/* The durable spool (what it promises: spool.h), the loop's side; the
 * byte layout is spool_format.c's, the flusher thread spool_flusher.c's,
 * reading the spool back at start spool_recover.c's (spool_internal.h).
 *
 * Threads. The loop's thread owns the index of pending alerts, the list of
 * segments and their accounting, the counters and the callbacks. The
 * flusher thread owns the file being written. They share, under mu, a FIFO
 * of batches (records being gathered, one batch per target segment), read
 * requests for compaction and segment deletions going to the flusher, and
 * the finished batches and reads coming back (ev_done wakes the loop). */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/evloop.h"
#include "core/log.h"
#include "errors.h"
#include "spool_internal.h"

void spool_count(struct spool *sp, enum stats_counter c)
{
    if (sp->stats != NULL)
        stats_add(sp->stats, c, 1);
}

/* ---- the index of pending alerts ---- */

struct spool_entry *spool_index_find(const struct spool *sp, uint64_t id)
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
int spool_index_reserve(struct spool *sp)
{
    if (sp->n_idx == sp->cap_idx && sp->n_pending * 2 <= sp->n_idx) {
        size_t n = 0;

        for (size_t i = 0; i < sp->n_idx; i++)
            if (sp->idx[i].seg != NULL)
                sp->idx[n++] = sp->idx[i];
        sp->n_idx = n;
    }
    return spool_array_reserve(&sp->idx, &sp->cap_idx, sp->n_idx, sizeof(*sp->idx));
}

/* Binds a pending alert's record to seg (after spool_index_reserve). */
void spool_index_push(struct spool *sp, uint64_t id, struct spool_seg *seg, size_t off, size_t len)
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

void spool_stamp_now(const struct spool *sp, struct spool_stamp *st)
{
    st->wall_ms = clock_wall_ms();
    st->boot_ms = clock_boot_ms();
    memcpy(st->boot_id, sp->boot_id, sizeof(st->boot_id));
}

/* ---- segments (loop side) ---- */

struct spool_seg *spool_seg_new(struct spool *sp, uint64_t name, size_t size)
{
    struct spool_seg *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->name = name;
    s->size = size;
    s->version = SPOOL_VERSION;
    s->newest_ms = now_ms();
    if (sp->cur != NULL)
        sp->cur->next = s;
    else
        sp->head = s;
    sp->cur = s;
    return s;
}

/* Starts a new newest segment (its file is created by the flusher with its
 * first batch). The name keeps names increasing and ids at least it. */
int spool_rotate(struct spool *sp)
{
    uint64_t name = sp->next_id;

    if (sp->cur != NULL && name <= sp->cur->name)
        name = sp->cur->name + 1;
    if (spool_seg_new(sp, name, SPOOL_HDR) == NULL)
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

/* What counts against max_bytes: the segments and the file that shares
 * the cap. */
static size_t spool_used(const struct spool *sp)
{
    return spool_bytes(sp) + sp->shared_bytes;
}

void spool_share_cap(struct spool *sp, size_t bytes)
{
    sp->shared_bytes = bytes;
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
static int spool_enqueue(struct spool *sp, int type, uint64_t id, const unsigned char *stamp,
                         struct str payload, const struct spool_waiter *w)
{
    size_t rec = SPOOL_REC_HDR + (stamp != NULL ? SPOOL_STAMP : 0) + payload.len;
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
    if (spool_buf_reserve(&b->buf, rec) != 0 ||
        (w != NULL && spool_array_reserve(&b->w, &b->cap_w, b->n_w, sizeof(*b->w)) != 0)) {
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
    spool_encode(b->buf.p + b->buf.len, type, id, stamp, payload);
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
void spool_maintain(struct spool *sp, size_t need)
{
    struct spool_seg *h;
    size_t total;
    int64_t keep;
    struct spool_read *r;

    if (sp->recovering)
        return;
    /* Completed alerts are kept for the duplicate window of the next start
     * (spool_keep_done), unless the room is wanted. */
    keep = spool_used(sp) + need <= sp->max_bytes / 4 * 3 ? sp->keep_done_ms : 0;
    while ((h = sp->head) != sp->cur && h->pending == 0 && h->inflight == 0 && h->queued == 0 &&
           h->newest_ms <= now_ms() - keep) {
        /* The unlink goes to the flusher: its accounting ends now. */
        pthread_mutex_lock(&sp->mu);
        if (spool_array_reserve(&sp->dels, &sp->cap_dels, sp->n_dels, sizeof(*sp->dels)) != 0) {
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

    total = spool_used(sp);
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

/* ---- results, on the loop ---- */

/* Journals again the completions of a batch that could not be written. */
static void spool_requeue_completions(struct spool *sp, const struct spool_batch *b)
{
    size_t off;

    for (off = 0; off + SPOOL_REC_HDR <= b->buf.len; off += 8 + spool_get_u32(b->buf.p + off)) {
        uint64_t id = spool_get_u64(b->buf.p + off + 9);

        if (b->buf.p[off + 8] == SPOOL_COMPLETE &&
            spool_enqueue(sp, SPOOL_COMPLETE, id, NULL, (struct str){NULL, 0}, NULL) != 0)
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
        struct spool_entry *e = spool_index_find(sp, w->id);

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
        const struct spool_entry *e = spool_index_find(sp, it->id);
        struct spool_waiter w = {NULL, NULL, it->id, 0, now_ms(), 1};
        /* A version 1 record has no stamp: its copy's says "unknown". */
        static const unsigned char unknown[SPOOL_STAMP];
        const unsigned char *stamp = unknown;
        size_t head = src->version >= 2 ? SPOOL_STAMP : 0;
        struct str payload;

        if (!it->ok) {
            left += e != NULL && e->seg == src;
            continue;
        }
        if (head > 0)
            stamp = p + SPOOL_REC_HDR;
        payload = str_make((const char *)p + SPOOL_REC_HDR + head, it->len - SPOOL_REC_HDR - head);
        p += it->len;
        if (e == NULL || e->seg != src)
            continue;
        if (spool_make_room(sp, SPOOL_REC_HDR + SPOOL_STAMP + payload.len) != 0 ||
            spool_enqueue(sp, SPOOL_ALERT, it->id, stamp, payload, &w) != 0) {
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

/* The spool decides what is sent: a folder that another user may write to
 * (or owns) would let them plant or rewrite alerts. Returns 0 or ERR_IO
 * (logged). */
static int spool_check_owner(struct spool *sp)
{
    struct stat st;

    if (fstat(sp->dirfd, &st) == -1) {
        log_error("spool.dir: %s: %s", sp->dir, strerror(errno));
        return ERR_IO;
    }
    if (st.st_uid != geteuid()) {
        log_error("spool.dir: %s: owned by uid %u, not by the agent's (%u): refused", sp->dir,
                  (unsigned)st.st_uid, (unsigned)geteuid());
        return ERR_IO;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        log_error("spool.dir: %s: writable by %s (mode %04o): refused; chmod go-w it", sp->dir,
                  st.st_mode & S_IWOTH ? "every user" : "its group",
                  (unsigned)(st.st_mode & 07777));
        return ERR_IO;
    }
    return 0;
}

int spool_open(const struct spool_config *cfg, struct event_base *base, struct stats *stats,
               struct spool **out)
{
    struct spool *sp;
    pthread_condattr_t ca;
    int rc = ERR_NOMEM;

    *out = NULL;
    spool_crc32c_init();
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
    if (clock_boot_id(sp->boot_id) != 0)
        log_warning("spool.dir: %s: cannot read this boot's id (/proc/sys/kernel/random/boot_id): "
                    "alerts spooled now count as of unknown boot at the next start",
                    cfg->dir);
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
    rc = spool_check_owner(sp);
    if (rc == 0)
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

void spool_keep_done(struct spool *sp, int64_t ms)
{
    sp->keep_done_ms = ms;
}

void spool_end_recovery(struct spool *sp)
{
    free(sp->dups);
    sp->dups = NULL;
    sp->n_dups = 0;
    sp->recovering = 0;
    spool_maintain(sp, 0);
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
    size_t rec = SPOOL_REC_HDR + SPOOL_STAMP + payload.len, fill, need, total;
    struct spool_waiter w = {cb, arg, 0, 0, 0, 0};
    struct spool_stamp now;
    unsigned char stamp[SPOOL_STAMP];

    if (payload.len == 0 || payload.len > SPOOL_MAX_PAYLOAD)
        return ERR_INVALID;
    if (sp->recovering)
        spool_end_recovery(sp);
    fill = sp->cur->size + sp->cur->queued;
    need = rec + (fill > SPOOL_HDR && fill + rec > sp->seg_limit ? SPOOL_HDR : 0);
    total = spool_used(sp);
    /* Over max_bytes, an append compaction will make room for is taken
     * at once: the spool stays past max_bytes for the compaction's round
     * trip, by at most one segment. */
    if (total + need > sp->max_bytes) {
        size_t room = spool_freeable(sp);

        spool_maintain(sp, need);
        if (total + need > sp->max_bytes + (room < sp->seg_limit ? room : sp->seg_limit))
            return ERR_TOOBIG;
    }
    if (spool_index_reserve(sp) != 0 || spool_make_room(sp, rec) != 0)
        return ERR_NOMEM;
    w.id = sp->next_id;
    w.t0 = now_ms();
    spool_stamp_now(sp, &now);
    spool_stamp_put(stamp, &now);
    if (spool_enqueue(sp, SPOOL_ALERT, w.id, stamp, payload, &w) != 0)
        return ERR_NOMEM;
    sp->cur->newest_ms = w.t0;
    spool_index_push(sp, w.id, sp->cur, 0, rec);
    sp->next_id++;
    sp->syncing++;
    *id = w.id;
    spool_maintain(sp, 0);
    return 0;
}

void spool_complete(struct spool *sp, uint64_t id)
{
    struct spool_entry *e = spool_index_find(sp, id);

    if (e == NULL)
        return; /* completed already, or never appended */
    index_drop(sp, e);
    if (spool_enqueue(sp, SPOOL_COMPLETE, id, NULL, (struct str){NULL, 0}, NULL) != 0)
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
