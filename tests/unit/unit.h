/* A minimal table-friendly unit test harness. Each test binary prints one
 * line per failed check and closes with "NAME: N passed, N failed"; the exit
 * status is nonzero when anything failed. */
#ifndef RTR_UNIT_H
#define RTR_UNIT_H

#include <stdio.h>
#include <string.h>

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

#define UNIT_FAIL(...)                                                  \
    do {                                                                \
        unit_failed++;                                                  \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);            \
        fprintf(stderr, __VA_ARGS__);                                   \
        fputc('\n', stderr);                                            \
    } while (0)

#define CHECK(cond)                                                     \
    do {                                                                \
        if (cond)                                                       \
            unit_passed++;                                              \
        else                                                            \
            UNIT_FAIL("%s", #cond);                                     \
    } while (0)

#define CHECK_INT(got, want)                                            \
    do {                                                                \
        long long g_ = (long long)(got), w_ = (long long)(want);        \
        if (g_ == w_)                                                   \
            unit_passed++;                                              \
        else                                                            \
            UNIT_FAIL("%s: got %lld, want %lld", #got, g_, w_);         \
    } while (0)

/* want == NULL means "absent". ctx names the table row. */
#define CHECK_STR(ctx, got, want)                                       \
    do {                                                                \
        struct str g_ = (got);                                          \
        const char *w_ = (want);                                        \
        if (w_ == NULL ? g_.p == NULL : str_eq_cstr(g_, w_))            \
            unit_passed++;                                              \
        else                                                            \
            UNIT_FAIL("%s: %s: got %s%.*s%s, want %s%s%s", (ctx), #got, \
                      g_.p ? "'" : "", g_.p ? (int)g_.len : 6,          \
                      g_.p ? g_.p : "absent", g_.p ? "'" : "",          \
                      w_ ? "'" : "", w_ ? w_ : "absent", w_ ? "'" : ""); \
    } while (0)

static inline int unit_report(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, unit_passed, unit_failed);
    return unit_failed != 0;
}

#endif
