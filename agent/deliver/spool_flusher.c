/* The spool's flusher thread (spool_internal.h): it owns the file being
 * written. Each round takes, under mu, every batch gathered since the last
 * one, the compaction reads and the deletions; writes the batches of each
 * segment back to back with one fdatasync (group commit), cutting off again
 * what a failed write left; and hands the results back to the loop
 * (ev_done). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/log.h"
#include "errors.h"
#include "spool.h"
#include "spool_internal.h"

/* ---- the flusher thread ---- */

int spool_write_all(int fd, const unsigned char *p, size_t n, size_t off)
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

int spool_read_all(int fd, unsigned char *p, size_t n, size_t off)
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
        spool_put_u32(hdr + 8, SPOOL_VERSION);
        *what = "header write";
        if (ftruncate(fd, 0) == -1 || spool_write_all(fd, hdr, sizeof(hdr), 0) == -1)
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
        if (spool_write_all(sp->fd, b->buf.p, b->buf.len, b->base) == -1) {
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
            spool_buf_reserve(&r->out, it->len) != 0)
            continue;
        p = r->out.p + r->out.len;
        if (spool_read_all(fd, p, it->len, it->off) == -1 || spool_get_u32(p) != it->len - 8 ||
            spool_crc32c(p + 8, it->len - 8) != spool_get_u32(p + 4) || p[8] != SPOOL_ALERT ||
            spool_get_u64(p + 9) != it->id)
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

void *spool_flusher(void *arg)
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
