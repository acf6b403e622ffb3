/* The durable spool: appends survive a reopen, completions too, ids go on;
 * rotation, deletion and compaction keep spool_bytes equal to the files on
 * disk; max_bytes refuses and then accepts again; corrupt segments (torn
 * tails, a flipped byte, a huge length, a bad magic, an empty file) are
 * quarantined with everything valid before them delivered; a segment
 * written by hand from the documented layout reads back; a file size limit
 * fails appends with ERR_IO and leaves no torn record; a second opener is
 * refused naming the first one's pid; 10,000 appends in one go. Ages: an
 * alert comes back with how long ago it was appended, from the boot clock
 * on the same boot whatever the wall clock says, from the wall clock (but
 * at least this boot's time) across a reboot, 0 when unknown (a version 1
 * segment, still read, next to version 2 ones); a compaction copy keeps
 * its original's age. Completed segments are kept for spool_keep_done's
 * time (a restart reads their completions back) unless the room is
 * wanted, and deleted once that time has passed. Each test works in its own folder under $TMPDIR.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "errors.h"
#include "core/clock.h"
#include "core/stats.h"
#include "deliver/spool.h"
#include "deliver/spool_internal.h"
#include "unit.h"

/* An alert record's stamp (version 2): wall ms, boot ms, boot id. */
#define STAMP 32

static struct event_base *base;
static struct stats *st;

/* ---- folders and files ---- */

static void dir_make(char *out, size_t cap)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(out, cap, "%s/rtr-test-spool.XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    if (mkdtemp(out) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
}

static void dir_remove(const char *dir)
{
    char path[512];
    struct dirent *de;
    DIR *d = opendir(dir);

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
    CHECK_INT(rmdir(dir), 0);
}

/* Files whose name contains what; *bytes (when not NULL) sums their sizes
 * and *last names one of them (the greatest). */
static int dir_count(const char *dir, const char *what, size_t *bytes, char *last, size_t cap)
{
    char path[512];
    struct dirent *de;
    struct stat sb;
    int n = 0;
    DIR *d = opendir(dir);

    if (bytes != NULL)
        *bytes = 0;
    if (last != NULL)
        last[0] = '\0';
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        if (strstr(de->d_name, what) == NULL)
            continue;
        n++;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (bytes != NULL && stat(path, &sb) == 0)
            *bytes += (size_t)sb.st_size;
        if (last != NULL && strcmp(de->d_name, last) > 0)
            snprintf(last, cap, "%s", de->d_name);
    }
    closedir(d);
    return n;
}

/* Segment files only (not their .corrupt- side files). */
static int seg_count(const char *dir, size_t *bytes)
{
    char path[512];
    struct dirent *de;
    struct stat sb;
    int n = 0;
    DIR *d = opendir(dir);

    *bytes = 0;
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);

        if (strncmp(de->d_name, "seg-", 4) != 0 || len < 6 ||
            strcmp(de->d_name + len - 6, ".spool") != 0)
            continue;
        n++;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (stat(path, &sb) == 0)
            *bytes += (size_t)sb.st_size;
    }
    closedir(d);
    return n;
}

static size_t file_size(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 ? (size_t)sb.st_size : (size_t)-1;
}

/* ---- the loop, appends and what comes back ---- */

static uint64_t counter(enum stats_counter c)
{
    return __atomic_load_n(&st->v[c], __ATOMIC_RELAXED);
}

struct app {
    uint64_t id;
    int rc;
    int seq; /* the order its callback ran in, from 1; 0 = not yet */
};

static int cb_seq;

static void on_durable(void *arg, int rc)
{
    struct app *a = arg;

    a->rc = rc;
    a->seq = ++cb_seq;
    event_base_loopbreak(base); /* run_until looks at once */
}

/* Runs the loop until *seq is set (or 20 s pass). */
static int run_until(const int *seq)
{
    time_t end = time(NULL) + 20;

    while (*seq == 0 && time(NULL) < end) {
        struct timeval tv = {0, 20000};

        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    return *seq != 0;
}

static struct str payload_of(char *buf, size_t size, uint64_t n)
{
    int len = snprintf(buf, size, "alert-%06" PRIu64 "-", n);

    for (size_t i = (size_t)len; i + 1 < size; i++)
        buf[i] = (char)('a' + (n + i) % 26);
    buf[size - 1] = '\0';
    return str_make(buf, size - 1);
}

static int open_spool(const char *dir, size_t max_bytes, struct spool **sp)
{
    struct spool_config cfg = {.dir = (char *)dir, .max_bytes = max_bytes, .fsync_delay_ms = 50};

    return spool_open(&cfg, base, st, sp);
}

/* Appends one payload of size - 1 bytes numbered n and waits for it. */
static int append_wait(struct spool *sp, size_t size, uint64_t n, struct app *a)
{
    char buf[SPOOL_MAX_PAYLOAD + 1];
    int rc;

    memset(a, 0, sizeof(*a));
    rc = spool_append(sp, payload_of(buf, size, n), on_durable, a, &a->id);
    if (rc != 0)
        return rc;
    if (!run_until(&a->seq))
        UNIT_FAIL("append %" PRIu64 ": no callback", n);
    return a->rc;
}

struct found {
    uint64_t id;
    int done;
    char *payload;
    int64_t age_ms;
};

struct recovered {
    struct found *v;
    size_t n;
};

static void collect(void *arg, uint64_t id, struct str payload, int done, int64_t age_ms)
{
    struct recovered *r = arg;

    r->v = realloc(r->v, (r->n + 1) * sizeof(*r->v));
    if (r->v == NULL)
        exit(2);
    r->v[r->n].id = id;
    r->v[r->n].done = done;
    r->v[r->n].payload = strndup(payload.p, payload.len);
    r->v[r->n].age_ms = age_ms;
    r->n++;
}

static void recovered_free(struct recovered *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].payload);
    free(r->v);
    r->v = NULL;
    r->n = 0;
}

/* Opens dir and collects what spool_recovered hands out. */
static struct spool *reopen(const char *dir, size_t max_bytes, struct recovered *r)
{
    struct spool *sp = NULL;

    CHECK_INT(open_spool(dir, max_bytes, &sp), 0);
    if (sp != NULL)
        spool_recovered(sp, collect, r);
    return sp;
}

/* ---- tests ---- */

static void test_roundtrip(void)
{
    char dir[256], buf[128];
    struct app a[101];
    struct recovered r = {0};
    struct spool *sp;
    uint64_t appends = counter(STAT_spool_appends);
    int ordered = 1;

    dir_make(dir, sizeof(dir));
    sp = reopen(dir, (size_t)1 << 30, &r);
    CHECK_INT(r.n, 0);
    CHECK_INT(spool_append(sp, str_make("", 0), on_durable, a, &a[0].id), ERR_INVALID);
    {
        static char big[SPOOL_MAX_PAYLOAD + 1];

        CHECK_INT(spool_append(sp, str_make(big, sizeof(big)), on_durable, a, &a[0].id),
                  ERR_INVALID);
    }
    memset(a, 0, sizeof(a));
    cb_seq = 0;
    for (int i = 0; i < 100; i++) {
        CHECK_INT(spool_append(sp, payload_of(buf, 40, (uint64_t)i), on_durable, &a[i], &a[i].id),
                  0);
        CHECK_INT(a[i].id, i + 1);
    }
    CHECK(spool_syncing(sp));
    CHECK_INT(a[0].seq, 0); /* never inside spool_append */
    CHECK(run_until(&a[99].seq));
    for (int i = 0; i < 100; i++) {
        CHECK_INT(a[i].rc, 0);
        ordered &= a[i].seq == i + 1;
    }
    CHECK(ordered);
    CHECK(!spool_syncing(sp));
    CHECK_INT(spool_pending(sp), 100);
    CHECK_INT(counter(STAT_spool_appends) - appends, 100);
    for (uint64_t id = 1; id <= 40; id++)
        spool_complete(sp, id);
    spool_complete(sp, 40);   /* twice: ignored */
    spool_complete(sp, 5000); /* never appended: ignored */
    CHECK_INT(spool_pending(sp), 60);
    spool_free(sp);

    /* Completions survive (written by spool_free without a callback). */
    sp = reopen(dir, (size_t)1 << 30, &r);
    CHECK_INT(r.n, 100);
    for (size_t i = 0; i < r.n && i < 100; i++) {
        CHECK_INT(r.v[i].id, i + 1);
        CHECK_INT(r.v[i].done, i < 40);
        payload_of(buf, 40, i);
        CHECK_STR("payload", str_make(r.v[i].payload, strlen(r.v[i].payload)), buf);
    }
    CHECK_INT(spool_pending(sp), 60);
    recovered_free(&r);
    CHECK_INT(append_wait(sp, 40, 100, &a[100]), 0);
    CHECK_INT(a[100].id, 101); /* ids go on after the largest seen */

    /* Appends still waiting at spool_free are written, their callbacks never run. */
    memset(a, 0, sizeof(a));
    for (int i = 0; i < 5; i++)
        CHECK_INT(
            spool_append(sp, payload_of(buf, 40, 200 + (uint64_t)i), on_durable, &a[i], &a[i].id),
            0);
    spool_free(sp);
    CHECK_INT(a[0].seq, 0);

    sp = reopen(dir, (size_t)1 << 30, &r);
    CHECK_INT(r.n, 106);
    CHECK_INT(spool_pending(sp), 66);
    if (r.n == 106)
        CHECK_INT(r.v[105].id, 106);
    recovered_free(&r);
    /* Not calling spool_recovered and appending at once works too. */
    spool_free(sp);
    CHECK_INT(open_spool(dir, (size_t)1 << 30, &sp), 0);
    CHECK_INT(append_wait(sp, 40, 300, &a[0]), 0);
    CHECK_INT(a[0].id, 107);
    spool_free(sp);
    dir_remove(dir);
}

/* An alert completed before it is durable: its callback still runs, it is
 * not pending, and it comes back done. */
static void test_complete_early(void)
{
    char dir[256], buf[64];
    struct app a = {0};
    struct recovered r = {0};
    struct spool *sp;

    dir_make(dir, sizeof(dir));
    CHECK_INT(open_spool(dir, (size_t)1 << 30, &sp), 0);
    CHECK_INT(spool_append(sp, payload_of(buf, 30, 1), on_durable, &a, &a.id), 0);
    spool_complete(sp, a.id);
    CHECK_INT(spool_pending(sp), 0);
    CHECK(run_until(&a.seq));
    CHECK_INT(a.rc, 0);
    CHECK_INT(spool_pending(sp), 0);
    spool_free(sp);
    sp = reopen(dir, (size_t)1 << 30, &r);
    CHECK_INT(r.n, 1);
    if (r.n == 1)
        CHECK_INT(r.v[0].done, 1);
    recovered_free(&r);
    spool_free(sp);
    dir_remove(dir);
}

/* Appends later than spool.fsync_delay_ms are counted and logged, on the
 * loop: with -1 ms every one is late. */
static void test_slow(void)
{
    char dir[256], buf[64], err[4096];
    struct spool_config cfg = {.max_bytes = (size_t)1 << 30, .fsync_delay_ms = -1};
    struct app a;
    struct spool *sp;
    uint64_t slow = counter(STAT_spool_slow_syncs);

    dir_make(dir, sizeof(dir));
    cfg.dir = dir;
    CHECK_INT(spool_open(&cfg, base, st, &sp), 0);
    unit_capture_begin();
    for (int i = 0; i < 3; i++)
        CHECK_INT(append_wait(sp, sizeof(buf), (uint64_t)i, &a), 0);
    unit_capture_end(err, sizeof(err));
    CHECK_INT(counter(STAT_spool_slow_syncs) - slow, 3);
    if (strstr(err, "to be durable (over spool.fsync_delay_ms, -1 ms)") == NULL)
        UNIT_FAIL("slow: no log line in: %s", err);
    else
        unit_passed++;
    spool_free(sp);
    dir_remove(dir);
}

/* Small segments: max_bytes 256 KiB rotates at 64 KiB. spool_bytes is what
 * the files hold; completing everything deletes every older segment. */
static void test_rotation(void)
{
    enum { N = 200, SIZE = 1001 };
    char dir[256], buf[SIZE];
    static struct app a[N];
    struct recovered r = {0};
    struct spool *sp;
    size_t bytes, before;
    uint64_t deleted = counter(STAT_spool_compactions);
    int segs;

    dir_make(dir, sizeof(dir));
    CHECK_INT(open_spool(dir, 256 << 10, &sp), 0);
    memset(a, 0, sizeof(a));
    for (int i = 0; i < N; i++)
        CHECK_INT(spool_append(sp, payload_of(buf, SIZE, (uint64_t)i), on_durable, &a[i], &a[i].id),
                  0);
    CHECK(run_until(&a[N - 1].seq));
    segs = seg_count(dir, &bytes);
    CHECK(segs >= 3);
    CHECK_INT(spool_bytes(sp), bytes);
    before = spool_bytes(sp);
    for (int i = 0; i < N; i++)
        spool_complete(sp, a[i].id);
    CHECK(spool_bytes(sp) < before / 2);
    CHECK_INT(counter(STAT_spool_compactions) - deleted, segs - 1);
    spool_free(sp);
    CHECK_INT(seg_count(dir, &bytes), 1);

    /* Back: all done; then the last old segment goes too. */
    sp = reopen(dir, 256 << 10, &r);
    CHECK(r.n > 0);
    for (size_t i = 0; i < r.n; i++)
        CHECK_INT(r.v[i].done, 1);
    recovered_free(&r);
    CHECK_INT(spool_bytes(sp), 12);
    spool_free(sp);
    CHECK_INT(seg_count(dir, &bytes), 0);
    dir_remove(dir);
}

/* The oldest segment keeps three pending alerts among many completed ones:
 * over 3/4 of max_bytes it is compacted (they are copied, it is deleted),
 * and the three come back after a reopen with their payloads. */
static void test_compaction(void)
{
    enum { SIZE = 1001 };
    char dir[256], buf[SIZE], first[64];
    struct app a;
    struct recovered r = {0};
    struct spool *sp;
    size_t bytes;
    uint64_t compactions = counter(STAT_spool_compactions);
    int n = 0;

    dir_make(dir, sizeof(dir));
    CHECK_INT(open_spool(dir, 256 << 10, &sp), 0);
    /* Until the spool has gone past 3/4 once and come back down. */
    while (n < 600) {
        CHECK_INT(append_wait(sp, SIZE, (uint64_t)n, &a), 0);
        if (a.id > 3)
            spool_complete(sp, a.id);
        n++;
        if (dir_count(dir, "seg-0000000000000001.spool", NULL, NULL, 0) == 0)
            break;
    }
    CHECK(n < 600);
    CHECK(counter(STAT_spool_compactions) - compactions >= 2);
    CHECK_INT(spool_pending(sp), 3);
    CHECK(spool_bytes(sp) <= (192 << 10));
    /* One more append carries the completions still queued: then the
     * accounting and the files agree to the byte. */
    CHECK_INT(append_wait(sp, SIZE, 1000, &a), 0);
    seg_count(dir, &bytes);
    CHECK_INT(spool_bytes(sp), bytes);
    spool_free(sp);

    sp = reopen(dir, 256 << 10, &r);
    CHECK_INT(spool_pending(sp), 4);
    for (size_t i = 0, k = 0; i < r.n && k < 3; i++) {
        if (r.v[i].done)
            continue;
        CHECK_INT(r.v[i].id, k + 1);
        payload_of(buf, SIZE, k);
        snprintf(first, sizeof(first), "pending %zu", k);
        CHECK_STR(first, str_make(r.v[i].payload, strlen(r.v[i].payload)), buf);
        k++;
    }
    recovered_free(&r);
    spool_free(sp);
    dir_remove(dir);
}

/* Runs the loop until the spool is back under limit bytes (or 20 s pass). */
static int run_until_under(const struct spool *sp, size_t limit)
{
    time_t end = time(NULL) + 20;

    while (spool_bytes(sp) > limit && time(NULL) < end) {
        struct timeval tv = {0, 10000};

        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    return spool_bytes(sp) <= limit;
}

/* At max_bytes with everything pending, appends are refused. With all but
 * three of them (in the oldest segment) complete, an append is taken at
 * once: compacting makes the room. With all complete, appends fit again. */
static void test_full(void)
{
    enum { SIZE = 1001, MAX = 64 << 10 };
    char dir[256], buf[SIZE];
    struct app a;
    struct spool *sp;
    uint64_t ids[200], compactions = counter(STAT_spool_compactions);
    int n = 0, k, rc = 0;

    dir_make(dir, sizeof(dir));
    CHECK_INT(open_spool(dir, MAX, &sp), 0);
    while (n < 200 && (rc = append_wait(sp, SIZE, (uint64_t)n, &a)) == 0)
        ids[n++] = a.id;
    CHECK_INT(rc, ERR_TOOBIG);
    CHECK(n >= 50 && n < 70);
    CHECK(spool_bytes(sp) <= MAX);
    CHECK_INT(spool_append(sp, payload_of(buf, SIZE, 999), on_durable, &a, &a.id), ERR_TOOBIG);
    CHECK_INT(counter(STAT_spool_compactions), compactions);

    for (int i = 3; i < n; i++)
        spool_complete(sp, ids[i]);
    CHECK(spool_bytes(sp) + SIZE > MAX); /* nothing deleted: the oldest is pending */
    CHECK_INT(append_wait(sp, SIZE, 1000, &a), 0);
    CHECK(run_until_under(sp, MAX / 2));
    CHECK(counter(STAT_spool_compactions) > compactions);
    CHECK_INT(spool_pending(sp), 4);

    for (int i = 0; i < 3; i++)
        spool_complete(sp, ids[i]);
    spool_complete(sp, a.id);
    for (rc = 0, k = 0; k < 200 && rc == 0; k++)
        rc = append_wait(sp, SIZE, 2000 + (uint64_t)k, &a);
    CHECK_INT(rc, ERR_TOOBIG);
    CHECK(k > 40);
    CHECK(spool_bytes(sp) <= MAX);
    spool_free(sp);
    dir_remove(dir);
}

/* ---- corrupt segments ---- */

enum { C_N = 10, C_PAYLOAD = 100, C_REC = 17 + STAMP + C_PAYLOAD };

static size_t rec_off(int k)
{
    return 12 + (size_t)k * C_REC;
}

static void write_at(const char *path, size_t off, const void *p, size_t n)
{
    FILE *f = fopen(path, "r+");

    if (f == NULL || fseek(f, (long)off, SEEK_SET) != 0 || fwrite(p, 1, n, f) != n ||
        fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

static void mut_truncate(const char *path, size_t arg)
{
    if (truncate(path, (off_t)(file_size(path) - arg)) != 0)
        perror("truncate");
}

static void mut_flip(const char *path, size_t arg)
{
    unsigned char c = 0x55;

    write_at(path, arg, &c, 1);
}

static void mut_length(const char *path, size_t arg)
{
    write_at(path, arg, "\xff\xff\xff\xff", 4);
}

static void mut_zero(const char *path, size_t arg)
{
    write_at(path, arg, "\0\0\0\0", 4);
}

static void mut_empty(const char *path, size_t arg)
{
    char other[512];

    (void)arg;
    snprintf(other, sizeof(other), "%.*s5.spool", (int)(strlen(path) - 7), path);
    unit_write_bytes(other, "", 0);
}

static void mut_bytes(const char *path, size_t arg)
{
    write_at(path, arg, "X", 1);
}

static void mut_short(const char *path, size_t arg)
{
    if (truncate(path, (off_t)arg) != 0)
        perror("truncate");
}

static const struct {
    const char *name;
    void (*mutate)(const char *path, size_t arg);
    size_t arg;
    int valid;       /* records recovered */
    int side;        /* a .corrupt- side file expected */
    size_t side_off; /* where the bad part starts (0: the whole file is moved) */
} corrupt_cases[] = {
    {"torn tail", mut_truncate, C_REC / 2, C_N - 1, 1, 12 + (C_N - 1) * C_REC},
    {"torn record header", mut_truncate, C_REC - 3, C_N - 1, 1, 12 + (C_N - 1) * C_REC},
    {"flipped payload byte", mut_flip, 12 + 4 * C_REC + 40, 4, 1, 12 + 4 * C_REC},
    {"flipped CRC byte", mut_flip, 12 + 7 * C_REC + 5, 7, 1, 12 + 7 * C_REC},
    {"length 0xFFFFFFFF", mut_length, 12 + 6 * C_REC, 6, 1, 12 + 6 * C_REC},
    {"length 0", mut_zero, 12 + 3 * C_REC, 3, 1, 12 + 3 * C_REC},
    {"bad magic", mut_bytes, 0, 0, 1, 0},
    {"bad version", mut_bytes, 8, 0, 1, 0},
    {"header cut short", mut_short, 5, 0, 1, 0},
    {"an empty segment file", mut_empty, 0, C_N, 0, 0},
};

static void test_corrupt(void)
{
    char buf[C_PAYLOAD + 1];

    for (size_t t = 0; t < sizeof(corrupt_cases) / sizeof(corrupt_cases[0]); t++) {
        char dir[256], path[512], side[256], err[4096];
        struct recovered r = {0};
        struct spool *sp;
        struct app a;
        size_t bytes, mutated;
        uint64_t corrupt = counter(STAT_spool_corrupt);
        const char *name = corrupt_cases[t].name;
        int ok = 1;

        dir_make(dir, sizeof(dir));
        CHECK_INT(open_spool(dir, (size_t)1 << 30, &sp), 0);
        for (int i = 0; i < C_N; i++)
            CHECK_INT(append_wait(sp, C_PAYLOAD + 1, (uint64_t)i, &a), 0);
        spool_free(sp);
        snprintf(path, sizeof(path), "%s/seg-0000000000000001.spool", dir);
        CHECK_INT(file_size(path), rec_off(C_N));
        corrupt_cases[t].mutate(path, corrupt_cases[t].arg);
        mutated = file_size(path);

        unit_capture_begin();
        sp = reopen(dir, (size_t)1 << 30, &r);
        unit_capture_end(err, sizeof(err));
        if (r.n != (size_t)corrupt_cases[t].valid)
            UNIT_FAIL("%s: %zu recovered, want %d", name, r.n, corrupt_cases[t].valid);
        for (size_t i = 0; i < r.n; i++) {
            ok &= r.v[i].id == i + 1 && !r.v[i].done;
            payload_of(buf, sizeof(buf), i);
            ok &= strcmp(r.v[i].payload, buf) == 0;
        }
        if (!ok)
            UNIT_FAIL("%s: the records before the bad one are not all back", name);
        recovered_free(&r);
        CHECK_INT(counter(STAT_spool_corrupt) - corrupt, corrupt_cases[t].side);
        CHECK_INT(dir_count(dir, ".corrupt-", &bytes, side, sizeof(side)), corrupt_cases[t].side);
        if (corrupt_cases[t].side) {
            size_t bad = corrupt_cases[t].side_off;

            CHECK_INT(bytes, mutated - bad);
            if (strstr(err, side) == NULL)
                UNIT_FAIL("%s: the log does not name %s: %s", name, side, err);
            if (bad > 0)
                CHECK_INT(file_size(path), bad); /* cut at the bad record */
            else
                CHECK_INT(file_size(path), (size_t)-1); /* moved aside whole */
        }
        /* Ids go on, and a second reopen finds nothing more to quarantine. */
        CHECK_INT(append_wait(sp, C_PAYLOAD + 1, 99, &a), 0);
        CHECK(a.id > (uint64_t)corrupt_cases[t].valid);
        spool_free(sp);
        corrupt = counter(STAT_spool_corrupt);
        sp = reopen(dir, (size_t)1 << 30, &r);
        CHECK_INT(counter(STAT_spool_corrupt), corrupt);
        CHECK_INT(r.n, corrupt_cases[t].valid + 1);
        recovered_free(&r);
        spool_free(sp);
        if (strcmp(name, "an empty segment file") == 0)
            CHECK_INT(seg_count(dir, &bytes), 2); /* the empty one is gone */
        dir_remove(dir);
    }
}

/* ---- a segment written by hand from the layout in spool_format.c ---- */

/* Bit by bit, to check the table-driven one against the standard. */
static uint32_t crc32c_bitwise(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;

    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    }
    return ~c;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* stamp: an alert's STAMP bytes (version 2), or NULL (version 1, and
 * completions). */
static size_t put_record(unsigned char *p, int type, uint64_t id, const unsigned char *stamp,
                         const char *payload)
{
    size_t head = stamp != NULL ? STAMP : 0, plen = payload != NULL ? strlen(payload) : 0,
           len = 9 + head + plen;
    uint32_t crc;

    p[8] = (unsigned char)type;
    put_u64(p + 9, id);
    if (head > 0)
        memcpy(p + 17, stamp, head);
    memcpy(p + 17 + head, payload != NULL ? payload : "", plen);
    crc = crc32c_bitwise(p + 8, len);
    for (int i = 0; i < 4; i++) {
        p[i] = (unsigned char)(len >> (8 * i));
        p[4 + i] = (unsigned char)(crc >> (8 * i));
    }
    return 8 + len;
}

/* A segment: version 2 with stamp (STAMP bytes) on every alert, or
 * version 1 (stamp NULL). */
static void write_segment_stamped(const char *dir, uint64_t name, const struct found *recs,
                                  size_t n, const unsigned char *stamp)
{
    unsigned char buf[8192];
    char path[512];
    size_t len = 12;

    memcpy(buf, stamp != NULL ? "RTRSPOL1\x02\x00\x00\x00" : "RTRSPOL1\x01\x00\x00\x00", 12);
    for (size_t i = 0; i < n; i++)
        len += put_record(buf + len, recs[i].payload != NULL ? 1 : 2, recs[i].id,
                          recs[i].payload != NULL ? stamp : NULL, recs[i].payload);
    snprintf(path, sizeof(path), "%s/seg-%016" PRIx64 ".spool", dir, name);
    unit_write_bytes(path, (const char *)buf, len);
}

static void write_segment(const char *dir, uint64_t name, const struct found *recs, size_t n)
{
    write_segment_stamped(dir, name, recs, n, NULL);
}

static void test_layout(void)
{
    /* payload NULL: a completion. Id 3 is copied into the second segment
     * (its last payload wins), 6 too and then completed, 99 never existed. */
    static const struct found seg3[] = {{3, 0, "first", 0}, {4, 0, "second", 0}, {4, 0, NULL, 0},
                                        {99, 0, NULL, 0},   {5, 0, "third", 0},  {6, 0, "a", 0}};
    static const struct found seg16[] = {
        {3, 0, "first, copied", 0}, {6, 0, "a, copied", 0}, {16, 0, "x", 0}, {6, 0, NULL, 0}};
    static const struct {
        uint64_t id;
        int done;
        const char *payload;
    } want[] = {{4, 1, "second"},
                {5, 0, "third"},
                {3, 0, "first, copied"},
                {6, 1, "a, copied"},
                {16, 0, "x"}};
    char dir[256];
    struct recovered r = {0};
    struct spool *sp;
    struct app a;

    CHECK_INT(crc32c_bitwise((const unsigned char *)"123456789", 9), 0xE3069283u);
    dir_make(dir, sizeof(dir));
    write_segment(dir, 3, seg3, sizeof(seg3) / sizeof(seg3[0]));
    write_segment(dir, 16, seg16, sizeof(seg16) / sizeof(seg16[0]));
    sp = reopen(dir, (size_t)1 << 30, &r);
    CHECK_INT(r.n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < r.n && i < sizeof(want) / sizeof(want[0]); i++) {
        CHECK_INT(r.v[i].id, want[i].id);
        CHECK_INT(r.v[i].done, want[i].done);
        CHECK_INT(r.v[i].age_ms, 0); /* version 1: unknown */
        CHECK_STR("payload", str_make(r.v[i].payload, strlen(r.v[i].payload)), want[i].payload);
    }
    recovered_free(&r);
    CHECK_INT(spool_pending(sp), 3);
    CHECK_INT(append_wait(sp, 10, 1, &a), 0);
    CHECK_INT(a.id, 100); /* after the largest id seen, a completion's included */
    spool_free(sp);
    dir_remove(dir);
}

/* ---- ages ---- */

static void stamp_make(unsigned char *p, int64_t wall_ms, int64_t boot_ms,
                       const unsigned char boot_id[16])
{
    put_u64(p, (uint64_t)wall_ms);
    put_u64(p + 8, (uint64_t)boot_ms);
    memcpy(p + 16, boot_id, 16);
}

/* spool_stamp_age alone: which clock counts when. */
static void test_stamp_age(void)
{
    static const unsigned char boot_a[16] = {1, 2, 3}, boot_b[16] = {9, 9, 9}, none[16];
    static const struct {
        const char *name;
        int64_t wall, boot;
        const unsigned char *id;
        int64_t want;
    } cases[] = {
        /* now: wall 10,000,000 s, boot clock 5,000 s, on boot a. */
        {"same boot, wall clock stepped back an hour", 10000000000 + 3600000, 4880000, boot_a,
         120000},
        {"same boot, wall clock stepped forward an hour", 10000000000 - 3600000, 4880000, boot_a,
         120000},
        {"same boot, from the future (cannot be)", 10000000000, 5001000, boot_a, 0},
        {"another boot, by the wall clock", 10000000000 - 9000000, 777, boot_b, 9000000},
        {"another boot, the wall clock says newer than this boot", 10000000000 - 1000, 777, boot_b,
         5000000},
        {"another boot, wall clock in the future", 10000000000 + 3600000, 777, boot_b, 5000000},
        {"boot unknown then: the wall clock", 10000000000 - 2000, 0, none, 2000},
        {"boot unknown then, wall in the future", 10000000000 + 2000, 0, none, 0},
        {"unknown (version 1)", 0, 0, none, 0},
    };
    struct spool_stamp now = {10000000000, 5000000, {1, 2, 3}}, unknown_now = now;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct spool_stamp then = {cases[i].wall, cases[i].boot, {0}};
        int64_t got;

        memcpy(then.boot_id, cases[i].id, 16);
        got = spool_stamp_age(&then, &now);
        if (got != cases[i].want)
            UNIT_FAIL("%s: age %lld, want %lld", cases[i].name, (long long)got,
                      (long long)cases[i].want);
        else
            unit_passed++;
    }
    /* This boot unknown: the wall clock, never the boot clocks. */
    memset(unknown_now.boot_id, 0, 16);
    {
        struct spool_stamp then = {10000000000 - 3000, 4999000, {1, 2, 3}};

        CHECK_INT(spool_stamp_age(&then, &unknown_now), 3000);
    }
}

/* Ages handed out at a reopen: records written by hand (version 2, next to
 * a version 1 segment), then by spool_append (a few ms old), then copied
 * by a compaction (the copy keeps the original's stamp). */
static void test_ages(void)
{
    static const unsigned char other_boot[16] = {0xde, 0xad};
    unsigned char buf[4096], stamp[STAMP], this_boot[16];
    static const struct found v1[] = {{1, 0, "old format", 0}};
    char dir[256], path[512];
    struct recovered r = {0};
    struct spool *sp;
    struct app a;
    size_t len = 12;
    int64_t wall = clock_wall_ms(), boot = clock_boot_ms(), slack = 5000;

    CHECK_INT(clock_boot_id(this_boot), 0);
    dir_make(dir, sizeof(dir));
    write_segment(dir, 1, v1, 1);
    memcpy(buf, "RTRSPOL1\x02\x00\x00\x00", 12);
    /* This boot, 2 min ago by its clock, though the wall clock says an hour
     * ahead (it was stepped back since). */
    stamp_make(stamp, wall + 3600000, boot - 120000, this_boot);
    len += put_record(buf + len, 1, 2, stamp, "same boot");
    len += put_record(buf + len, 2, 2, NULL, NULL);
    /* Another boot, 10 days ago by the wall clock. */
    stamp_make(stamp, wall - 864000000, 5, other_boot);
    len += put_record(buf + len, 1, 3, stamp, "other boot");
    snprintf(path, sizeof(path), "%s/seg-%016x.spool", dir, 2);
    unit_write_bytes(path, (const char *)buf, len);

    sp = reopen(dir, (size_t)1 << 30, &r);
    CHECK_INT(r.n, 3);
    if (r.n == 3) {
        CHECK_INT(r.v[0].age_ms, 0);
        CHECK_STR("v1 payload", str_make(r.v[0].payload, strlen(r.v[0].payload)), "old format");
        CHECK(r.v[1].done && r.v[1].age_ms >= 120000 && r.v[1].age_ms < 120000 + slack);
        CHECK_STR("v2 payload", str_make(r.v[1].payload, strlen(r.v[1].payload)), "same boot");
        CHECK(r.v[2].age_ms >= 864000000 && r.v[2].age_ms < 864000000 + slack);
    }
    recovered_free(&r);
    CHECK_INT(append_wait(sp, 40, 7, &a), 0);
    spool_free(sp);

    sp = reopen(dir, (size_t)1 << 30, &r);
    CHECK_INT(r.n, 4);
    if (r.n == 4)
        CHECK(r.v[3].id == a.id && r.v[3].age_ms >= 0 && r.v[3].age_ms < slack);
    recovered_free(&r);
    spool_free(sp);
    dir_remove(dir);
}

/* A compaction copy keeps its original's age, and one from a version 1
 * segment is of unknown age (0). */
static void test_compaction_ages(void)
{
    enum { SIZE = 1001, FILL = 10 };
    static char filler[300];
    struct found v1[1 + 2 * FILL], v2[1 + 2 * FILL];
    unsigned char stamp[STAMP], this_boot[16];
    char dir[256];
    struct recovered r = {0};
    struct spool *sp;
    struct app a;
    int n = 0, left = 0;

    memset(filler, 'f', sizeof(filler) - 1);
    CHECK_INT(clock_boot_id(this_boot), 0);
    /* Each: one pending alert, then completed ones that make it worth
     * compacting. Ids 1 and 20 stay pending. */
    v1[0] = (struct found){1, 0, "old format", 0};
    v2[0] = (struct found){20, 0, "two minutes old", 0};
    for (int i = 0; i < FILL; i++) {
        v1[1 + 2 * i] = (struct found){(uint64_t)(2 + i), 0, filler, 0};
        v1[2 + 2 * i] = (struct found){(uint64_t)(2 + i), 0, NULL, 0};
        v2[1 + 2 * i] = (struct found){(uint64_t)(21 + i), 0, filler, 0};
        v2[2 + 2 * i] = (struct found){(uint64_t)(21 + i), 0, NULL, 0};
    }
    dir_make(dir, sizeof(dir));
    write_segment(dir, 1, v1, 1 + 2 * FILL);
    stamp_make(stamp, clock_wall_ms(), clock_boot_ms() - 120000, this_boot);
    write_segment_stamped(dir, 20, v2, 1 + 2 * FILL, stamp);
    sp = reopen(dir, 256 << 10, &r);
    recovered_free(&r);
    /* Until both hand-written segments are compacted away. */
    while (n < 600 && (dir_count(dir, "seg-0000000000000001.spool", NULL, NULL, 0) > 0 ||
                       dir_count(dir, "seg-0000000000000014.spool", NULL, NULL, 0) > 0)) {
        CHECK_INT(append_wait(sp, SIZE, (uint64_t)n, &a), 0);
        spool_complete(sp, a.id);
        n++;
    }
    CHECK(n < 600);
    spool_free(sp);
    sp = reopen(dir, 256 << 10, &r);
    CHECK_INT(spool_pending(sp), 2);
    for (size_t i = 0; i < r.n; i++) {
        if (r.v[i].done)
            continue;
        left++;
        if (r.v[i].id == 1)
            CHECK_INT(r.v[i].age_ms, 0);
        else if (r.v[i].id == 20)
            CHECK(r.v[i].age_ms >= 120000 && r.v[i].age_ms < 180000);
        else
            UNIT_FAIL("compaction ages: alert %" PRIu64 " pending", r.v[i].id);
    }
    CHECK_INT(left, 2);
    recovered_free(&r);
    spool_free(sp);
    dir_remove(dir);
}

/* Segments of completed alerts stay for the keep time, so a reopen hands
 * every completion back; the room they hold yields to new alerts past 3/4
 * of max_bytes; once the time has passed they go at the next append. */
static void test_keep_done(void)
{
    enum { SIZE = 1001, N = 30 };
    char dir[256];
    struct recovered r = {0};
    struct spool *sp;
    struct app a;
    size_t bytes;
    int refused = 0;

    dir_make(dir, sizeof(dir));
    /* Segments of 16 KiB: 30 alerts fill two and start a third. */
    CHECK_INT(open_spool(dir, 64 << 10, &sp), 0);
    spool_keep_done(sp, 60000);
    for (int i = 0; i < N; i++) {
        CHECK_INT(append_wait(sp, SIZE, (uint64_t)i, &a), 0);
        spool_complete(sp, a.id);
    }
    CHECK(seg_count(dir, &bytes) >= 2);
    spool_free(sp);
    sp = reopen(dir, 64 << 10, &r);
    CHECK_INT(r.n, N);
    for (size_t i = 0; i < r.n; i++)
        CHECK_INT(r.v[i].done, 1);
    recovered_free(&r);
    /* Room wanted: the kept ones go, no append is refused for them. */
    spool_keep_done(sp, 60000);
    for (int i = 0; i < 3 * N; i++) {
        refused += append_wait(sp, SIZE, (uint64_t)i, &a) != 0;
        spool_complete(sp, a.id);
    }
    CHECK_INT(refused, 0);
    CHECK(spool_bytes(sp) <= (64 << 10));
    spool_free(sp);

    /* A short keep time: gone at the first append after it. */
    sp = reopen(dir, 64 << 10, &r);
    recovered_free(&r);
    spool_keep_done(sp, 200);
    for (int i = 0; i < N; i++) {
        CHECK_INT(append_wait(sp, SIZE, (uint64_t)i, &a), 0);
        spool_complete(sp, a.id);
    }
    usleep(300000);
    CHECK_INT(append_wait(sp, SIZE, 0, &a), 0);
    /* The flusher unlinks them: give it a moment. */
    for (int i = 0; i < 500 && seg_count(dir, &bytes) > 1; i++) {
        struct timeval tv = {0, 10000};

        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    CHECK_INT(seg_count(dir, &bytes), 1);
    spool_free(sp);
    dir_remove(dir);
}

/* ---- a file size limit ---- */

/* In a child: the limit lets 15 records of 549 bytes into a segment; the
 * 16th fails with ERR_IO and is cut off again, and so does the completion
 * that went with it, journaled again with the next write; raising the
 * limit, the next append works. ignore: SIGXFSZ ignored (as the daemon
 * should), or left at its default (the flusher blocks it). Returns the
 * child's failures. */
static int fsize_child(const char *dir, int ignore)
{
    char path[512];
    struct app a;
    struct spool *sp;
    struct rlimit rl;
    uint64_t errors;
    int failed = unit_failed; /* the parent's count came along */

    if (ignore)
        signal(SIGXFSZ, SIG_IGN);
    if (event_reinit(base) != 0 || open_spool(dir, (size_t)1 << 30, &sp) != 0)
        return 1;
    errors = counter(STAT_spool_write_errors);
    getrlimit(RLIMIT_FSIZE, &rl);
    rl.rlim_cur = 12 + 15 * 549 + 300;
    CHECK_INT(setrlimit(RLIMIT_FSIZE, &rl), 0);
    for (int i = 0; i < 15; i++)
        CHECK_INT(append_wait(sp, 501, (uint64_t)i, &a), 0);
    spool_complete(sp, 1);
    CHECK_INT(append_wait(sp, 501, 15, &a), ERR_IO);
    CHECK_INT(counter(STAT_spool_write_errors) - errors, 1);
    snprintf(path, sizeof(path), "%s/seg-0000000000000001.spool", dir);
    CHECK_INT(file_size(path), 12 + 15 * 549); /* no torn record */
    CHECK_INT(append_wait(sp, 501, 16, &a), ERR_IO);
    rl.rlim_cur = rl.rlim_max;
    CHECK_INT(setrlimit(RLIMIT_FSIZE, &rl), 0);
    CHECK_INT(append_wait(sp, 501, 17, &a), 0);
    CHECK_INT(spool_pending(sp), 15);
    spool_free(sp);
    return unit_failed - failed;
}

static void test_file_size_limit(void)
{
    for (int ignore = 1; ignore >= 0; ignore--) {
        char dir[256];
        struct recovered r = {0};
        struct spool *sp;
        uint64_t corrupt = counter(STAT_spool_corrupt);
        int status = 0;
        pid_t pid;

        dir_make(dir, sizeof(dir));
        fflush(NULL);
        pid = fork();
        if (pid == 0)
            _exit(fsize_child(dir, ignore) != 0);
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            UNIT_FAIL("file size limit (SIGXFSZ %s): child status %d",
                      ignore ? "ignored" : "default", status);
        else
            unit_passed++;
        sp = reopen(dir, (size_t)1 << 30, &r);
        CHECK_INT(r.n, 16);
        for (size_t i = 0; i < r.n; i++)
            CHECK_INT(r.v[i].done, i == 0);
        CHECK_INT(counter(STAT_spool_corrupt), corrupt);
        recovered_free(&r);
        spool_free(sp);
        dir_remove(dir);
    }
}

/* ---- the lock ---- */

static void test_lock(void)
{
    char dir[256], err[4096], want[512];
    struct spool *sp, *other = NULL;

    dir_make(dir, sizeof(dir));
    CHECK_INT(open_spool(dir, (size_t)1 << 30, &sp), 0);
    unit_capture_begin();
    CHECK_INT(open_spool(dir, (size_t)1 << 30, &other), ERR_IO);
    unit_capture_end(err, sizeof(err));
    CHECK(other == NULL);
    snprintf(want, sizeof(want), "spool.dir: %s: held by another rtr-agent (pid %ld)", dir,
             (long)getpid());
    if (strstr(err, want) == NULL)
        UNIT_FAIL("lock: want '%s' in: %s", want, err);
    else
        unit_passed++;
    spool_free(sp);
    CHECK_INT(open_spool(dir, (size_t)1 << 30, &sp), 0);
    spool_free(sp);
    dir_remove(dir);
}

/* ---- many appends at once ---- */

static void test_many(void)
{
    enum { N = 10000 };
    static struct app a[N];
    char dir[256], buf[80];
    struct recovered r = {0};
    struct spool *sp;
    uint64_t appends = counter(STAT_spool_appends);
    int ordered = 1, ok = 1;

    dir_make(dir, sizeof(dir));
    CHECK_INT(open_spool(dir, (size_t)1 << 30, &sp), 0);
    memset(a, 0, sizeof(a));
    cb_seq = 0;
    for (int i = 0; i < N; i++)
        if (spool_append(sp, payload_of(buf, sizeof(buf), (uint64_t)i), on_durable, &a[i],
                         &a[i].id) != 0)
            ok = 0;
    CHECK(ok);
    CHECK(run_until(&a[N - 1].seq));
    for (int i = 0; i < N; i++) {
        ok &= a[i].rc == 0;
        ordered &= a[i].seq == i + 1;
    }
    CHECK(ok);
    CHECK(ordered);
    CHECK_INT(counter(STAT_spool_appends) - appends, N);
    spool_free(sp);
    sp = reopen(dir, (size_t)1 << 30, &r);
    CHECK_INT(r.n, N);
    for (size_t i = 0; i < r.n; i++) {
        payload_of(buf, sizeof(buf), i);
        ok &= r.v[i].id == i + 1 && !r.v[i].done && strcmp(r.v[i].payload, buf) == 0;
    }
    CHECK(ok);
    recovered_free(&r);
    spool_free(sp);
    dir_remove(dir);
}

int main(void)
{
    /* As the daemon does: the flusher wakes the loop from its thread. */
    if (evthread_use_pthreads() == -1) {
        fprintf(stderr, "libevent: no pthreads support\n");
        return 2;
    }
    base = event_base_new();
    st = stats_register();
    if (base == NULL || st == NULL)
        return 2;
    test_roundtrip();
    test_complete_early();
    test_slow();
    test_rotation();
    test_compaction();
    test_full();
    test_corrupt();
    test_layout();
    test_stamp_age();
    test_ages();
    test_compaction_ages();
    test_keep_done();
    test_file_size_limit();
    test_lock();
    test_many();
    event_base_free(base);
    return unit_report("test_spool");
}
