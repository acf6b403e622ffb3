/* A minimal table-friendly unit test harness. Each test binary prints one
 * line per failed check and closes with "NAME: N passed, N failed"; the exit
 * status is nonzero when anything failed. */
#ifndef RTR_UNIT_H
#define RTR_UNIT_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* ---- files and logged messages, for the tests of loaders ---- */

/* Writes len bytes of text to path, replacing it; exits 2 when it cannot (the
 * test cannot go on). */
/* Writes path, mode 0600 as a secret file should be: a secret readable by
 * others draws a warning, which tests comparing log lines do not expect. */
static inline void unit_write_bytes(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");

    if (f == NULL || fwrite(text, 1, len, f) != len || fclose(f) != 0 || chmod(path, 0600) != 0) {
        perror(path);
        exit(2);
    }
}

static inline void unit_write_file(const char *path, const char *text)
{
    unit_write_bytes(path, text, strlen(text));
}

/* Reads path into buf (at most cap - 1 bytes, always NUL-terminated) and
 * returns the byte count; 0 when it cannot be opened. */
static inline size_t unit_read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f != NULL ? fread(buf, 1, cap - 1, f) : 0;

    buf[n] = '\0';
    if (f != NULL)
        fclose(f);
    return n;
}

/* Splits captured log text in place into at most max lines and points
 * msgs[i] at each line's message ("<time> error: MSG"; a line that is not an
 * error stays whole). Returns the line count. */
static inline size_t unit_split_messages(char *text, const char **msgs, size_t max)
{
    size_t n = 0;

    for (char *line = strtok(text, "\n"); line != NULL && n < max; line = strtok(NULL, "\n")) {
        char *m = strstr(line, " error: ");
        msgs[n++] = m != NULL ? m + 8 : line;
    }
    return n;
}

/* Expected log lines name the files a test wrote, whose paths differ per
 * run: copies want into out (cap bytes, always NUL-terminated) with each '@'
 * that starts want or follows a space replaced by p1 and, when p2 is not
 * NULL, each such '%' by p2. An '@' inside a word or quotes (an email, "'@'")
 * is text. */
static inline void unit_expand(char *out, size_t cap, const char *want, const char *p1,
                               const char *p2)
{
    size_t n = 0;

    for (const char *w = want; *w != '\0' && n + 1 < cap; w++) {
        const char *sub = NULL;

        if (w == want || w[-1] == ' ')
            sub = *w == '@' ? p1 : *w == '%' ? p2 : NULL;

        if (sub != NULL)
            n += (size_t)snprintf(out + n, cap - n, "%s", sub);
        else
            out[n++] = *w;
        if (n >= cap)
            n = cap - 1;
    }
    out[n] = '\0';
}

/* Checks that the error lines captured in err (split in place) are exactly
 * want, NULL-ended, each with '@' standing for path: one pass per line. */
static inline void unit_check_messages(const char *ctx, char *err, const char *path,
                                       const char *const *want)
{
    const char *got[16];
    size_t n = unit_split_messages(err, got, 16), i;
    char expected[8192];

    for (i = 0; want[i] != NULL; i++) {
        unit_expand(expected, sizeof(expected), want[i], path, NULL);
        if (i >= n)
            UNIT_FAIL("%s: line %zu missing, want '%s'", ctx, i, expected);
        else if (strcmp(got[i], expected) != 0)
            UNIT_FAIL("%s: line %zu: got '%s', want '%s'", ctx, i, got[i], expected);
        else
            unit_passed++;
    }
    if (n > i)
        UNIT_FAIL("%s: %zu more lines than expected, first '%s'", ctx, n - i, got[i]);
}

#endif
