/* Reading the spool back (spool_internal.h), at start, on the loop's
 * thread before the flusher runs, and once more for spool_recovered: the
 * lock, a record reader that trusts no length beyond the file and
 * SPOOL_MAX_PAYLOAD, the scan of every segment (a bad header moves the
 * file aside, a bad record quarantines the rest of its segment), the index
 * rebuilt from the last record of each id, and the hand-out. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "errors.h"
#include "spool.h"
#include "spool_internal.h"

/* ---- reading segments ---- */

struct spool_rec {
    int type;
    uint64_t id;
    size_t off;               /* in the file */
    size_t len;               /* the whole record's bytes */
    struct spool_stamp stamp; /* an alert's; all zero (unknown) in version 1 */
    struct str payload;
};

struct spool_reader {
    int fd;
    size_t size;        /* bytes of the file to read */
    size_t pos;         /* the file offset of the next record */
    unsigned char *buf; /* SPOOL_READ_BUF bytes */
    size_t start, end;  /* buf[start, end) holds the file's bytes from pos */
    int version;        /* the header's, once spool_reader_start checked it */
    char why[96];       /* what made a record bad */
};

static int spool_reader_bad(struct spool_reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int spool_reader_bad(struct spool_reader *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->why, sizeof(r->why), fmt, ap);
    va_end(ap);
    return ERR_INVALID;
}

/* Checks the header. Returns 0, ERR_INVALID (why) or ERR_IO (errno). */
static int spool_reader_start(struct spool_reader *r)
{
    unsigned char hdr[SPOOL_HDR];

    r->pos = SPOOL_HDR;
    r->start = r->end = 0;
    if (r->size < SPOOL_HDR)
        return spool_reader_bad(r, "a header cut short (%zu bytes)", r->size);
    if (spool_read_all(r->fd, hdr, SPOOL_HDR, 0) == -1)
        return ERR_IO;
    if (memcmp(hdr, SPOOL_MAGIC, 8) != 0)
        return spool_reader_bad(r, "a bad magic");
    if (spool_get_u32(hdr + 8) < 1 || spool_get_u32(hdr + 8) > SPOOL_VERSION)
        return spool_reader_bad(r, "version %" PRIu32 " (this agent reads 1 to %d)",
                                spool_get_u32(hdr + 8), SPOOL_VERSION);
    r->version = (int)spool_get_u32(hdr + 8);
    return 0;
}

/* Has need bytes from pos in the buffer; need is at most what is left of
 * the file, and at most SPOOL_REC_MAX. */
static int spool_reader_fill(struct spool_reader *r, size_t need)
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
    if (spool_read_all(r->fd, r->buf + have, want, r->pos + have) == -1)
        return ERR_IO;
    r->end += want;
    return 0;
}

/* The next record: 1 and *rec, 0 at the end, ERR_INVALID for a bad record
 * (rec->off and why say where and what) or ERR_IO (errno). Nothing is read
 * or trusted beyond what the length check allows. */
static int spool_reader_next(struct spool_reader *r, struct spool_rec *rec)
{
    size_t left = r->size - r->pos, head = r->version >= 2 ? SPOOL_STAMP : 0;
    const unsigned char *p;
    uint32_t len;
    int type;

    rec->off = r->pos;
    if (left == 0)
        return 0;
    if (left < 8)
        return spool_reader_bad(r, "a record header cut short (%zu bytes)", left);
    if (spool_reader_fill(r, 8) != 0)
        return ERR_IO;
    len = spool_get_u32(r->buf + r->start);
    if (len < 9 || len > 9 + head + SPOOL_MAX_PAYLOAD)
        return spool_reader_bad(r, "a record length of %" PRIu32, len);
    if (len > left - 8)
        return spool_reader_bad(r, "a record cut short (%" PRIu32 " bytes announced, %zu there)",
                                len, left - 8);
    if (r->pos + 8 + len > UINT32_MAX)
        return spool_reader_bad(r, "a record past 4 GiB"); /* never one of ours */
    if (spool_reader_fill(r, 8 + len) != 0)
        return ERR_IO;
    p = r->buf + r->start;
    if (spool_crc32c(p + 8, len) != spool_get_u32(p + 4))
        return spool_reader_bad(r, "a CRC mismatch");
    type = p[8];
    if ((type != SPOOL_ALERT && type != SPOOL_COMPLETE) ||
        (type == SPOOL_ALERT ? len <= 9 + head : len != 9))
        return spool_reader_bad(r, "a record of type %d and length %" PRIu32, type, len);
    rec->type = type;
    rec->id = spool_get_u64(p + 9);
    rec->len = 8 + (size_t)len;
    memset(&rec->stamp, 0, sizeof(rec->stamp));
    if (type == SPOOL_ALERT && head > 0)
        spool_stamp_get(p + SPOOL_REC_HDR, &rec->stamp);
    else
        head = 0;
    rec->payload = str_make((const char *)p + SPOOL_REC_HDR + head, len - 9 - head);
    r->start += rec->len;
    r->pos += rec->len;
    return 1;
}

/* ---- opening: lock, read, quarantine ---- */

int spool_lock(struct spool *sp)
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
        spool_write_all(sp->lockfd, (const unsigned char *)buf, (size_t)n, 0) == -1)
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
    struct spool_stamp now; /* for the segments' ages */
    int64_t now_ms;
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

        if (spool_read_all(fd, buf, n, at) == -1 || spool_write_all(out, buf, n, at - off) == -1)
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
    struct spool_seg *seg = sc->segs[sc->n_segs - 1];

    if (rec->id > sc->max_id)
        sc->max_id = rec->id;
    if (rec->type == SPOOL_ALERT) {
        int64_t at = sc->now_ms - spool_stamp_age(&rec->stamp, &sc->now);

        if (at > seg->newest_ms)
            seg->newest_ms = at;
    }
    if (rec->type == SPOOL_COMPLETE) {
        if (spool_array_reserve(&sc->done, &sc->cap_done, sc->n_done, sizeof(*sc->done)) != 0)
            return ERR_NOMEM;
        sc->done[sc->n_done++] = rec->id;
        return 0;
    }
    if (spool_array_reserve(&sc->found, &sc->cap_found, sc->n_found, sizeof(*sc->found)) != 0)
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
    rc = spool_reader_start(&r);
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
    if (spool_array_reserve(&sc->segs, &sc->cap_segs, sc->n_segs, sizeof(*sc->segs)) != 0 ||
        (sc->segs[sc->n_segs] = spool_seg_new(sp, number, 0)) == NULL) {
        rc = ERR_NOMEM;
        goto out;
    }
    sc->segs[sc->n_segs]->version = r.version;
    sc->segs[sc->n_segs]->newest_ms = INT64_MIN; /* no alert in it yet */
    sc->n_segs++;
    *keep = 1;
    while (rc == 0 && (rc = spool_reader_next(&r, &rec)) == 1)
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
            if (spool_index_reserve(sp) != 0)
                return ERR_NOMEM;
            spool_index_push(sp, last->id, sc->segs[last->seg], last->off, last->len);
        } else if (j - i > 1) {
            if (spool_array_reserve(&sp->dups, &cap_dups, sp->n_dups, sizeof(*sp->dups)) != 0)
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
        if (spool_array_reserve(names, &cap, *n, sizeof(**names)) != 0) {
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
int spool_load(struct spool *sp)
{
    struct spool_scan sc = {0};
    uint64_t *names;
    size_t n;
    unsigned char *buf = malloc(SPOOL_READ_BUF);
    int rc = buf != NULL ? spool_list(sp, &names, &n) : ERR_NOMEM;

    if (rc != 0)
        goto out;
    spool_stamp_now(sp, &sc.now);
    sc.now_ms = now_ms();
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
    const struct spool_entry *e = spool_index_find(sp, rec->id);
    const struct spool_dup *d;

    *done = e == NULL;
    if (e != NULL)
        return e->seg == s && e->off == rec->off;
    d = spool_search(&rec->id, sp->dups, sp->n_dups, sizeof(*sp->dups), cmp_dup);
    return d == NULL || (d->seg == s && d->off == rec->off);
}

static void spool_replay_segment(struct spool *sp, const struct spool_seg *s, unsigned char *buf,
                                 const struct spool_stamp *now,
                                 void (*each)(void *, uint64_t, struct str, int, int64_t),
                                 void *arg)
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
    rc = spool_reader_start(&r);
    while (rc == 0 && (rc = spool_reader_next(&r, &rec)) == 1) {
        if (rec.type == SPOOL_ALERT && spool_replay_this(sp, s, &rec, &done))
            each(arg, rec.id, rec.payload, done, spool_stamp_age(&rec.stamp, now));
        rc = 0;
    }
    /* It checked a moment ago: only the disk or another writer fails it. */
    if (rc != 0)
        log_error("spool.dir: %s/%s: cannot read it again at offset %zu: %s", sp->dir, name,
                  rec.off, rc == ERR_IO ? strerror(errno) : r.why);
    close(r.fd);
}

void spool_recovered(struct spool *sp,
                     void (*each)(void *arg, uint64_t id, struct str payload, int done,
                                  int64_t age_ms),
                     void *arg)
{
    struct spool_stamp now;
    unsigned char *buf;

    if (!sp->recovering)
        return;
    spool_stamp_now(sp, &now);
    buf = malloc(SPOOL_READ_BUF);
    if (buf == NULL)
        log_error("spool.dir: %s: no memory to read the spool back", sp->dir);
    for (const struct spool_seg *s = sp->head; buf != NULL && s != sp->cur; s = s->next)
        spool_replay_segment(sp, s, buf, &now, each, arg);
    free(buf);
    spool_end_recovery(sp);
}
