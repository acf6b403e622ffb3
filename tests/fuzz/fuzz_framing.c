/* Fuzz target for the framer. The first two input bytes choose the framer
 * (byte 0: mode = b % 3, policy = bit 2; byte 1: max_frame, see fuzz_max);
 * the rest is the stream. It is framed as one read, then in reads of
 * pseudo-random sizes derived from the input, then (when short) byte by byte,
 * the way a connection does it: append, framer_next until ERR_AGAIN, drop
 * *used bytes, framer_finish at EOF. Every way must give the same frames and
 * errors, and every call must keep the contract of framing.h; any breach
 * aborts. tests/fuzz/run-fuzz writes framing seeds with this two-byte prefix. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "framing.h"

#define FUZZ_ASSERT(cond)                                               \
    do {                                                                \
        if (!(cond))                                                    \
            abort();                                                    \
    } while (0)

/* Byte-by-byte feeding costs reads x held bytes: only for short inputs. */
#define FUZZ_BYTEWISE_MAX 1024

enum fuzz_schedule { FUZZ_ONE_READ, FUZZ_RANDOM_READS, FUZZ_BYTEWISE };

struct fuzz_event {
    int rc;
    int eof;
    unsigned flags;
    struct str frame;
};

/* The first run records its events; later runs must match them one by one. */
struct fuzz_trace {
    struct fuzz_event *ev;
    size_t n;
    size_t at;
    int replaying;
};

/* Small limits exercise the oversize paths, large ones the normal paths. */
static size_t fuzz_max(uint8_t b)
{
    return b < 0xf0 ? (size_t)b + 1 : (size_t)1 << (b - 0xf0 + 8);
}

static uint64_t fuzz_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3u;
    return h | 1; /* xorshift needs a nonzero state */
}

static size_t fuzz_read_size(enum fuzz_schedule s, uint64_t *state, size_t left)
{
    uint64_t x;
    size_t n;

    if (s == FUZZ_ONE_READ)
        return left;
    if (s == FUZZ_BYTEWISE)
        return 1;
    x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x *= 0x2545f4914f6cdd1du;
    n = (x >> 32) % 8 == 0 ? (size_t)(x % 4096) + 1 : (size_t)(x % 16) + 1;
    return n < left ? n : left;
}

static void fuzz_event(struct fuzz_trace *t, int rc, int eof, unsigned flags, struct str frame)
{
    const struct fuzz_event *e;

    if (!t->replaying) {
        t->ev[t->n++] = (struct fuzz_event){rc, eof, flags, frame};
        return;
    }
    FUZZ_ASSERT(t->at < t->n);
    e = &t->ev[t->at++];
    FUZZ_ASSERT(e->rc == rc && e->eof == eof && e->flags == flags);
    FUZZ_ASSERT(rc != 0 || str_eq(e->frame, frame));
}

/* The contract of one framer_next / framer_finish result over buf[0..len). */
static void fuzz_check_frame(const struct framer *f, const char *buf, size_t len,
                             struct str frame, int eof)
{
    FUZZ_ASSERT(frame.p >= buf && frame.len > 0 && frame.len <= len &&
                (size_t)(frame.p - buf) <= len - frame.len);
    FUZZ_ASSERT(frame.len <= f->max_frame);
    FUZZ_ASSERT(!(f->flags & FRAME_OCTET) || f->mode != FRAMING_LF);
    /* Trailer frames end at the first LF or NUL: they can hold neither. */
    FUZZ_ASSERT((f->flags & FRAME_OCTET) ||
                (!memchr(frame.p, '\n', frame.len) && !memchr(frame.p, '\0', frame.len)));
    /* Before EOF only the size policy truncates, and always to max_frame. */
    FUZZ_ASSERT(eof || !(f->flags & FRAME_TRUNCATED) ||
                (f->oversize == OVERSIZE_TRUNCATE && frame.len == f->max_frame));
}

static void fuzz_drain(struct framer *f, const char *buf, size_t *held, struct fuzz_trace *t)
{
    size_t hold_cap = f->max_frame + FRAMING_MAX_LEN_DIGITS + 2;
    struct str frame;
    size_t used;
    int rc;

    do {
        const char *p = buf - *held; /* held bytes end where buf points */
        rc = framer_next(f, p, *held, &frame, &used);
        FUZZ_ASSERT(used <= *held);
        switch (rc) {
        case ERR_AGAIN:
            FUZZ_ASSERT(*held - used <= hold_cap);
            FUZZ_ASSERT(f->flags == 0 && frame.p == NULL);
            break;
        case 0:
            FUZZ_ASSERT(used > 0);
            fuzz_check_frame(f, p, *held, frame, 0);
            break;
        case ERR_INVALID:
        case ERR_TOOBIG:
            FUZZ_ASSERT(rc == ERR_TOOBIG || f->mode == FRAMING_OCTET);
            FUZZ_ASSERT(used > 0 && f->flags == 0 && frame.p == NULL);
            break;
        default:
            abort();
        }
        if (rc != ERR_AGAIN)
            fuzz_event(t, rc, 0, f->flags, frame);
        *held -= used;
    } while (rc != ERR_AGAIN);
}

/* Frames in[0..n) read by read by schedule s. buf has room for n bytes; the
 * held bytes always end at buf + n so that ASan catches any read past them. */
static void fuzz_run(const uint8_t *cfg, const char *in, size_t n, char *buf,
                     enum fuzz_schedule s, uint64_t seed, struct fuzz_trace *t)
{
    struct framer f;
    struct str frame;
    size_t held = 0, off = 0;
    char *end = buf + n;

    framer_init(&f, (enum framing_mode)(cfg[0] % 3), fuzz_max(cfg[1]),
                cfg[0] & 4 ? OVERSIZE_REJECT : OVERSIZE_TRUNCATE);
    while (off < n) {
        size_t r = fuzz_read_size(s, &seed, n - off);
        memmove(end - held - r, end - held, held);
        memcpy(end - r, in + off, r);
        held += r;
        off += r;
        fuzz_drain(&f, end, &held, t);
    }
    if (framer_finish(&f, end - held, held, &frame) == 0) {
        fuzz_check_frame(&f, end - held, held, frame, 1);
        fuzz_event(t, 0, 1, f.flags, frame);
    } else {
        FUZZ_ASSERT(f.flags == 0 && frame.p == NULL);
    }
    FUZZ_ASSERT(!t->replaying || t->at == t->n);
}

static void fuzz_trim(const char *in, size_t n)
{
    struct str s = framer_trim_trailer(in, n);

    FUZZ_ASSERT(s.p == in && s.len <= n);
    FUZZ_ASSERT(s.len == 0 || (in[s.len - 1] != '\n' && in[s.len - 1] != '\r' &&
                               in[s.len - 1] != '\0'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data + 2;
    size_t n;
    char *first, *again;
    struct fuzz_trace t = {0};

    if (size < 2)
        return 0;
    n = size - 2;
    /* Exact sizes, so that ASan sees a read past the held bytes. Each
     * event but the one from framer_finish consumes at least one byte. */
    first = malloc(n > 0 ? n : 1);
    again = malloc(n > 0 ? n : 1);
    t.ev = malloc((n + 1) * sizeof(*t.ev));
    FUZZ_ASSERT(first != NULL && again != NULL && t.ev != NULL);

    /* The recorded frames point into `first`, which outlives the replays. */
    fuzz_run(data, in, n, first, FUZZ_ONE_READ, 0, &t);
    t.replaying = 1;
    fuzz_run(data, in, n, again, FUZZ_RANDOM_READS, fuzz_hash(data, size), &t);
    if (n <= FUZZ_BYTEWISE_MAX) {
        t.at = 0;
        fuzz_run(data, in, n, again, FUZZ_BYTEWISE, 0, &t);
    }
    fuzz_trim(in, n);

    free(t.ev);
    free(again);
    free(first);
    return 0;
}
