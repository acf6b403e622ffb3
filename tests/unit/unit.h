/* A minimal table-friendly unit test harness. Each test binary prints one
 * line per failed check and closes with "NAME: N passed, N failed"; the exit
 * status is nonzero when anything failed. */
#ifndef RTR_UNIT_H
#define RTR_UNIT_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "str.h"

/* Exact byte comparison with a NUL-terminated string (strlen per call: tests
 * only, never the hot path). */
static inline int str_eq_cstr(struct str s, const char *c)
{
    size_t n = strlen(c);
    return s.p != NULL && s.len == n && memcmp(s.p, c, n) == 0;
}

static int unit_passed;
static int unit_failed;

#define UNIT_FAIL(...)                                                                             \
    do {                                                                                           \
        unit_failed++;                                                                             \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                       \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
    } while (0)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond)                                                                                  \
            unit_passed++;                                                                         \
        else                                                                                       \
            UNIT_FAIL("%s", #cond);                                                                \
    } while (0)

#define CHECK_INT(got, want)                                                                       \
    do {                                                                                           \
        long long g_ = (long long)(got), w_ = (long long)(want);                                   \
        if (g_ == w_)                                                                              \
            unit_passed++;                                                                         \
        else                                                                                       \
            UNIT_FAIL("%s: got %lld, want %lld", #got, g_, w_);                                    \
    } while (0)

/* want == NULL means "absent". ctx names the table row. */
#define CHECK_STR(ctx, got, want)                                                                  \
    do {                                                                                           \
        struct str g_ = (got);                                                                     \
        const char *w_ = (want);                                                                   \
        if (w_ == NULL ? g_.p == NULL : str_eq_cstr(g_, w_))                                       \
            unit_passed++;                                                                         \
        else                                                                                       \
            UNIT_FAIL("%s: %s: got %s%.*s%s, want %s%s%s", (ctx), #got, g_.p ? "'" : "",           \
                      g_.p ? (int)g_.len : 6, g_.p ? g_.p : "absent", g_.p ? "'" : "",             \
                      w_ ? "'" : "", w_ ? w_ : "absent", w_ ? "'" : "");                           \
    } while (0)

static inline int unit_report(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, unit_passed, unit_failed);
    return unit_failed != 0;
}

/* stderr capture: unit_capture_begin sends fd 2 to a temp file, emptied
 * first; unit_capture_end puts fd 2 back and reads the file into buf (at most
 * cap - 1 bytes, always NUL-terminated), returning the byte count. It is one
 * file for the whole run, so a test may stat unit_capture_path() beforehand
 * and compare it with what the code under test sees on fd 2. The file is
 * opened O_APPEND so lines written by several threads or a forked child do
 * not overwrite each other. Inline so that tests which never capture get no
 * unused-function warning. */
static char unit_capture_file[] = "/tmp/rtr-unit-stderr.XXXXXX";
static pid_t unit_capture_owner; /* 0 until the file exists */
static int unit_capture_saved = -1;

/* Registered with atexit; a forked child that exits leaves the file alone. */
static inline void unit_capture_remove(void)
{
    if (getpid() == unit_capture_owner)
        unlink(unit_capture_file);
}

/* Creates the file on first use; the path is static storage in unit.h. */
static inline const char *unit_capture_path(void)
{
    int fd;

    if (unit_capture_owner != 0)
        return unit_capture_file;
    fd = mkstemp(unit_capture_file);
    if (fd == -1) {
        perror("mkstemp");
        exit(2);
    }
    close(fd);
    unit_capture_owner = getpid();
    atexit(unit_capture_remove);
    return unit_capture_file;
}

static inline void unit_capture_begin(void)
{
    int fd = open(unit_capture_path(), O_WRONLY | O_TRUNC | O_APPEND);

    fflush(stderr);
    unit_capture_saved = dup(STDERR_FILENO);
    if (fd == -1 || unit_capture_saved == -1 || dup2(fd, STDERR_FILENO) == -1) {
        perror("capture");
        exit(2);
    }
    close(fd);
}

static inline size_t unit_capture_end(char *buf, size_t cap)
{
    FILE *f;
    size_t n;

    fflush(stderr);
    dup2(unit_capture_saved, STDERR_FILENO);
    close(unit_capture_saved);
    unit_capture_saved = -1;
    f = fopen(unit_capture_file, "r");
    n = f != NULL ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f != NULL)
        fclose(f);
    return n;
}

#endif
