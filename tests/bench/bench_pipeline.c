/* The hot path's speed on one core, over the lines of the sample logs given
 * on the command line: parse throughput per payload format, then parse +
 * match with the mapping files --mappings names over the whole mix, and heap
 * allocations per message for both (none allowed; a message that matches
 * nothing must not allocate, and matching ones do not either). Two more rows,
 * without a target, time one synthetic CEF event of about 1000 pairs (see
 * wide_line): its parse ("cef1k") and, with --mappings, its parse + match
 * ("match1k"). Two last rows, without a target either, time the JSON line
 * `run --tap` writes per message (parse + render_message, escaping included)
 * over the mix ("tap") and for the wide event ("tap1k"), and how much
 * of it is the rendering.
 *
 * usage: bench_pipeline [--seconds S] [--min-cef-rate N] [--mappings GLOB]
 *                       [--min-match-rate N] FILE...
 * Prints one line per measurement; exits 1 when a rate is below its minimum
 * or when any message allocated. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/jsonw.h"
#include "decide/mapping.h"
#include "decide/render.h"
#include "message.h"

/* Counting allocator: glibc lets a program interpose malloc and friends;
 * the real ones stay reachable as __libc_*. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static uint64_t allocations;

void *malloc(size_t n)
{
    __atomic_fetch_add(&allocations, 1, __ATOMIC_RELAXED);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    __atomic_fetch_add(&allocations, 1, __ATOMIC_RELAXED);
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    __atomic_fetch_add(&allocations, 1, __ATOMIC_RELAXED);
    return __libc_realloc(p, n);
}

#define MAX_LINES 4096
#define MAX_LINE  65536

struct corpus {
    const char *name;
    enum message_payload payload;
    char *lines[MAX_LINES];
    size_t lens[MAX_LINES];
    size_t n, bytes;
};

/* CPU time of this thread, not wall time: the rate then means "per core" even
 * when other processes share the machine. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void corpus_add(struct corpus *c, const char *line, size_t len)
{
    if (c->n == MAX_LINES)
        return;
    c->lines[c->n] = malloc(len);
    memcpy(c->lines[c->n], line, len);
    c->lens[c->n++] = len;
    c->bytes += len;
}

struct result {
    double rate, mbps, allocs_per_msg;
};

static struct result bench_corpus(const struct corpus *c, struct message *m, struct scratch *s,
                                  double seconds)
{
    uint64_t msgs = 0, bytes = 0, allocs_before = allocations;
    double start = now_s(), elapsed;
    size_t fields = 0;

    do {
        for (int rep = 0; rep < 256; rep++) {
            for (size_t i = 0; i < c->n; i++) {
                message_parse(c->lines[i], c->lens[i], m, s);
                fields += m->payload == PAYLOAD_CEF ? m->u.cef.n_ext : m->syslog.msg.len;
            }
            msgs += c->n;
            bytes += c->bytes;
        }
        elapsed = now_s() - start;
    } while (elapsed < seconds);
    if (fields == 0) /* keeps the loop's work observable to the compiler */
        fputs("", stderr);
    return (struct result){(double)msgs / elapsed, (double)bytes / elapsed / 1e6,
                           (double)(allocations - allocs_before) / (double)msgs};
}

/* Every line of every corpus, in one array: the sample mix. */
struct mix {
    const char *lines[3 * MAX_LINES];
    size_t lens[3 * MAX_LINES];
    size_t n, bytes;
};

static struct mix mix;

/* The synthetic wide event, as a one-line mix for bench_match. */
static struct mix wide;

/* A CEF event of WIDE_PAIRS filler pairs after the three the Splunk ES
 * mapping reads (suser and the cs1 label pair), about 1000 in all
 * (CEF_MAX_EXT is 1024, so none is dropped). Key lookups scan the pairs
 * linearly from the last one, so putting the read ones first makes every
 * lookup walk them all: the cost of a wide event per referenced key.
 * Returns its length in buf. */
#define WIDE_PAIRS 1000
static size_t wide_line(char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(
        buf, cap,
        "<134>1 2026-10-02T09:12:44.120Z bench01 splunkd - - - CEF:0|Splunk|Enterprise "
        "Security|7.3.2|notable|Bench - Wide Event - Rule|7|suser=EXAMPLE\\\\amorgan "
        "cs1Label=search_name cs1=Bench - Wide Event - Rule");

    for (int i = 0; i < WIDE_PAIRS && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, " x%d=%d", i, i);
    return len < cap ? len : cap - 1;
}

/* Parse + match over x: the rate, and allocations per message. */
static struct result bench_match(const struct mix *x, const struct mapping_set *set,
                                 struct mapping_matcher *mm, struct message *m, struct scratch *s,
                                 double seconds, size_t *decided)
{
    static struct mapping_decision out[MAPPING_MAX_DECISIONS];
    uint64_t msgs = 0, bytes = 0, allocs_before;
    double start, elapsed;

    /* One pass first: it counts what decides, and lets PCRE2 size its
     * per-thread state once, as a worker does on its first messages. */
    *decided = 0;
    for (size_t i = 0; i < x->n; i++) {
        message_parse(x->lines[i], x->lens[i], m, s);
        *decided += mapping_match(set, mm, m, out, NULL) > 0;
    }
    allocs_before = allocations;
    start = now_s();
    do {
        for (int rep = 0; rep < 256; rep++) {
            for (size_t i = 0; i < x->n; i++) {
                message_parse(x->lines[i], x->lens[i], m, s);
                mapping_match(set, mm, m, out, NULL);
            }
            msgs += x->n;
            bytes += x->bytes;
        }
        elapsed = now_s() - start;
    } while (elapsed < seconds);
    return (struct result){(double)msgs / elapsed, (double)bytes / elapsed / 1e6,
                           (double)(allocations - allocs_before) / (double)msgs};
}

/* Returns nonzero when the match run missed a target. */
static int run_match(const char *glob, double seconds, double min_rate, struct message *m,
                     struct scratch *s)
{
    char *globs[] = {(char *)glob};
    struct mapping_set *set = NULL;
    struct mapping_matcher *mm = NULL;
    size_t decided;
    int failed = 1;

    if (mapping_set_load(globs, 1, 0, &set) != 0 ||
        mapping_matcher_new(100000, 10000, NULL, &mm) != 0) {
        printf("  MISS: cannot load the mappings %s\n", glob);
        goto out;
    }
    struct result r = bench_match(&mix, set, mm, m, s, seconds, &decided);
    printf("%-7s %6zu %10zu %14.0f %10.1f %12.3f   (%zu mappings, %zu of the lines decided)\n",
           "match", mix.n, mix.n ? mix.bytes / mix.n : 0, r.rate, r.mbps, r.allocs_per_msg,
           mapping_set_count(set), decided);
    failed = 0;
    if (r.allocs_per_msg > 0) {
        printf("  MISS: parse + match allocates\n");
        failed = 1;
    }
    if (r.rate < min_rate) {
        printf("  MISS: parse + match rate %.0f/s is below the target %.0f/s\n", r.rate, min_rate);
        failed = 1;
    }
    /* No rate target: the row shows what a wide event costs. */
    r = bench_match(&wide, set, mm, m, s, seconds, &decided);
    printf("%-7s %6zu %10zu %14.0f %10.1f %12.3f   (%s)\n", "match1k", wide.n, wide.bytes, r.rate,
           r.mbps, r.allocs_per_msg,
           decided ? "decided" : "not decided: these mappings read none of its pairs");
    if (r.allocs_per_msg > 0) {
        printf("  MISS: parse + match of the wide event allocates\n");
        failed = 1;
    }
out:
    mapping_matcher_free(mm);
    mapping_set_unref(set);
    return failed;
}

/* The "cef1k" row: the wide event's parse, no rate target. Returns nonzero
 * when it did not parse into every pair, or allocated. */
static int run_wide(struct message *m, struct scratch *s, double seconds)
{
    static char line[MAX_LINE];
    static struct corpus c = {"cef1k", PAYLOAD_CEF, {0}, {0}, 0, 0};
    size_t len = wide_line(line, sizeof(line)), pairs;

    corpus_add(&c, line, len);
    wide.lines[0] = c.lines[0];
    wide.lens[0] = len;
    wide.n = 1;
    wide.bytes = len;
    message_parse(line, len, m, s);
    pairs = m->payload == PAYLOAD_CEF ? m->u.cef.n_ext : 0;
    struct result r = bench_corpus(&c, m, s, seconds);
    printf("%-7s %6zu %10zu %14.0f %10.1f %12.3f   (%zu pairs)\n", c.name, c.n, len, r.rate, r.mbps,
           r.allocs_per_msg, pairs);
    if (pairs != WIDE_PAIRS + 3) {
        printf("  MISS: the wide event parsed into %zu pairs, not %d\n", pairs, WIDE_PAIRS + 3);
        return 1;
    }
    if (r.allocs_per_msg > 0) {
        printf("  MISS: the wide event allocates on the parse path\n");
        return 1;
    }
    return 0;
}

/* One pass over x: parse each line and, with render, write its tap line as
 * render_message does for --tap. Returns the bytes of JSON written. */
static size_t tap_pass(const struct mix *x, struct jsonw *w, int render, struct message *m,
                       struct scratch *s)
{
    size_t out = 0;

    for (size_t i = 0; i < x->n; i++) {
        message_parse(x->lines[i], x->lens[i], m, s);
        if (render) {
            jsonw_reset(w);
            render_message(w, m, "192.0.2.10:51514", "tcp");
            out += w->len;
        }
    }
    return out;
}

/* The "tap" rows: x parsed and rendered to tap lines, and what the
 * rendering alone costs: the same loop without it, timed in alternating
 * slices so that a change of machine load weighs on both alike. Returns
 * nonzero when rendering allocated once the writer had grown. */
static int run_render(const char *name, const struct mix *x, struct message *m, struct scratch *s,
                      double seconds)
{
    struct jsonw w;
    uint64_t msgs = 0, bytes = 0, allocs_before;
    double spent[2] = {0, 0}; /* parse only, parse + render */
    size_t tap_bytes, out = 0;
    int failed = 0;

    if (x->n == 0)
        return 0;
    jsonw_init(&w, 0);
    /* One pass first, so that the writer's buffer has grown to its size. */
    tap_bytes = tap_pass(x, &w, 1, m, s);
    allocs_before = allocations;
    while (spent[0] + spent[1] < 2 * seconds) {
        for (int render = 0; render < 2; render++) {
            double start = now_s();
            for (int rep = 0; rep < 64; rep++)
                out += tap_pass(x, &w, render, m, s);
            spent[render] += now_s() - start;
        }
        msgs += 64 * x->n;
        bytes += 64 * x->bytes;
    }
    if (out == 0) /* keeps the rendering observable to the compiler */
        fputs("", stderr);
    double rate = (double)msgs / spent[1],
           allocs = (double)(allocations - allocs_before) / (double)msgs;
    printf("%-7s %6zu %10zu %14.0f %10.1f %12.3f   (parse + tap line of %zu B avg; rendering "
           "%.0f ns/msg)\n",
           name, x->n, x->bytes / x->n, rate, (double)bytes / spent[1] / 1e6, allocs,
           tap_bytes / x->n, (spent[1] - spent[0]) / (double)msgs * 1e9);
    if (allocs > 0) {
        printf("  MISS: rendering a tap line allocates\n");
        failed = 1;
    }
    jsonw_free(&w);
    return failed;
}

int main(int argc, char **argv)
{
    double seconds = 1.0, min_cef_rate = 0, min_match_rate = 0;
    const char *mappings = NULL;
    static struct corpus corpora[] = {
        {"cef", PAYLOAD_CEF, {0}, {0}, 0, 0},
        {"leef", PAYLOAD_LEEF, {0}, {0}, 0, 0},
        {"text", PAYLOAD_TEXT, {0}, {0}, 0, 0},
    };
    static struct message m;
    static char scratch_buf[MAX_LINE];
    struct scratch s;
    static char line[MAX_LINE];
    int i = 1, failed = 0;

    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--min-cef-rate") == 0)
            min_cef_rate = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--mappings") == 0)
            mappings = argv[i + 1];
        else if (strcmp(argv[i], "--min-match-rate") == 0)
            min_match_rate = atof(argv[i + 1]);
    }
    scratch_init(&s, scratch_buf, sizeof(scratch_buf));
    for (; i < argc; i++) {
        FILE *f = fopen(argv[i], "r");
        if (f == NULL) {
            perror(argv[i]);
            return 2;
        }
        while (fgets(line, sizeof(line), f)) {
            size_t len = strcspn(line, "\r\n");
            if (len == 0)
                continue;
            message_parse(line, len, &m, &s);
            struct corpus *c = &corpora[m.payload == PAYLOAD_CEF    ? 0
                                        : m.payload == PAYLOAD_LEEF ? 1
                                                                    : 2];
            corpus_add(c, line, len);
            if (mix.n < sizeof(mix.lines) / sizeof(mix.lines[0])) {
                mix.lines[mix.n] = c->lines[c->n - 1];
                mix.lens[mix.n++] = len;
                mix.bytes += len;
            }
        }
        fclose(f);
    }
    printf("%-7s %6s %10s %14s %10s %12s\n", "format", "lines", "avg bytes", "messages/s", "MB/s",
           "allocs/msg");
    for (size_t k = 0; k < sizeof(corpora) / sizeof(corpora[0]); k++) {
        struct corpus *c = &corpora[k];
        if (c->n == 0)
            continue;
        struct result r = bench_corpus(c, &m, &s, seconds);
        printf("%-7s %6zu %10zu %14.0f %10.1f %12.3f\n", c->name, c->n, c->bytes / c->n, r.rate,
               r.mbps, r.allocs_per_msg);
        if (r.allocs_per_msg > 0) {
            printf("  MISS: %s messages allocate on the parse path\n", c->name);
            failed = 1;
        }
        if (c->payload == PAYLOAD_CEF && r.rate < min_cef_rate) {
            printf("  MISS: CEF rate %.0f/s is below the target %.0f/s\n", r.rate, min_cef_rate);
            failed = 1;
        }
    }
    if (run_wide(&m, &s, seconds))
        failed = 1;
    if (mappings != NULL && run_match(mappings, seconds, min_match_rate, &m, &s))
        failed = 1;
    if (run_render("tap", &mix, &m, &s, seconds))
        failed = 1;
    if (run_render("tap1k", &wide, &m, &s, seconds))
        failed = 1;
    return failed;
}
