/* RFC 6587 stream framing. The contract is in framing.h; every deliberate
 * choice (separators, CR stripping, EOF behaviour, scan cost) is listed in
 * parsers/README.md. */
#include "framing.h"

#include <string.h>

#include "errors.h"

/* First trailer (LF or NUL) in p[0..n), or NULL. Two memchr passes beat one
 * byte loop: both are vectorised, and the NUL pass stops at the LF. */
static const char *framing_find_trailer(const char *p, size_t n)
{
    const char *lf = memchr(p, '\n', n);
    const char *nul = memchr(p, '\0', lf != NULL ? (size_t)(lf - p) : n);

    return nul != NULL ? nul : lf;
}

/* MSG-LEN SP at p[0..n), n > 0: NONZERO-DIGIT *DIGIT with at most
 * FRAMING_MAX_LEN_DIGITS digits, so the value stays below 10^9 and cannot
 * overflow a size_t. Returns 0 with *count and *hdr (digits plus SP),
 * ERR_AGAIN when p ends inside what may still become a count, ERR_INVALID
 * otherwise (leading zero, sign, too many digits, no SP). */
static int framing_parse_count(const char *p, size_t n, size_t *count, size_t *hdr)
{
    size_t value = 0;
    size_t i;

    if (p[0] < '1' || p[0] > '9')
        return ERR_INVALID;
    for (i = 0; i < n && str_is_digit(p[i]); i++) {
        if (i == FRAMING_MAX_LEN_DIGITS)
            return ERR_INVALID;
        value = value * 10 + (size_t)(p[i] - '0');
    }
    if (i == n)
        return ERR_AGAIN;
    if (p[i] != ' ')
        return ERR_INVALID;
    *count = value;
    *hdr = i + 1;
    return 0;
}

/* Advances *pos past the next trailer. When buf ends first, *pos = len and
 * f->discard_line stays set so that the next call goes on discarding. */
static void framing_discard_line(struct framer *f, const char *buf, size_t len, size_t *pos)
{
    const char *t = framing_find_trailer(buf + *pos, len - *pos);

    f->discard_line = t == NULL;
    *pos = t != NULL ? (size_t)(t - buf) + 1 : len;
}

static void framing_deliver(struct framer *f, struct str *frame, const char *p, size_t n,
                            unsigned flags)
{
    *frame = str_make(p, n);
    f->flags = flags;
}

/* An octet-counted frame whose header (hdr bytes, value count) starts at p;
 * avail bytes are held from p. *used already counts the bytes before p. */
static int framing_octet(struct framer *f, const char *p, size_t avail, size_t count, size_t hdr,
                         struct str *frame, size_t *used)
{
    size_t body = avail - hdr;
    int oversized = count > f->max_frame;
    size_t keep;

    if (oversized && f->oversize == OVERSIZE_REJECT) {
        /* Consume exactly MSG-LEN bytes, now and in later calls: resyncing on
         * a LF inside the payload would misframe the rest of the stream. */
        size_t n = body < count ? body : count;
        f->skip = count - n;
        *used += hdr + n;
        return ERR_TOOBIG;
    }
    keep = oversized ? f->max_frame : count;
    if (body < keep)
        return ERR_AGAIN;
    f->skip = count - keep;
    framing_deliver(f, frame, p + hdr, keep, FRAME_OCTET | (oversized ? FRAME_TRUNCATED : 0u));
    *used += hdr + keep;
    return 0;
}

/* The n content bytes at p of a trailer frame, under the size policy. */
static int framing_line(struct framer *f, const char *p, size_t n, struct str *frame)
{
    if (n <= f->max_frame) {
        framing_deliver(f, frame, p, n, 0);
        return 0;
    }
    if (f->oversize == OVERSIZE_REJECT)
        return ERR_TOOBIG;
    framing_deliver(f, frame, p, f->max_frame, FRAME_TRUNCATED);
    return 0;
}

/* A frame that ends at LF or NUL (an optional CR before it is removed),
 * starting at buf[pos], which is not a separator. */
static int framing_trailer(struct framer *f, const char *buf, size_t pos, size_t len,
                           struct str *frame, size_t *used)
{
    const char *p = buf + pos;
    size_t avail = len - pos;
    /* The caller keeps an incomplete frame at the same start: resume the
     * search where the last call stopped instead of rescanning the line. */
    size_t from = f->scanned < avail ? f->scanned : 0;
    const char *t = framing_find_trailer(p + from, avail - from);
    size_t n;

    f->scanned = 0;
    if (t != NULL) {
        n = (size_t)(t - p);
        *used = pos + n + 1;
        if (p[n - 1] == '\r') /* n >= 1: p[0] is no separator */
            n--;
    } else if (avail - 1 > f->max_frame) {
        /* No trailer in max_frame + 2 held bytes (room for max_frame bytes,
         * a CR, and the LF that had to follow): the line is oversized whatever
         * comes next. Drop what is held and the rest of the line as it arrives. */
        n = avail;
        *used = len;
        f->discard_line = 1;
    } else {
        f->scanned = avail;
        return ERR_AGAIN;
    }
    return framing_line(f, p, n, frame);
}

void framer_init(struct framer *f, enum framing_mode mode, size_t max_frame,
                 enum oversize_policy oversize)
{
    /* A zero limit would truncate every frame to nothing, and empty frames
     * are never delivered: one byte is the smallest meaningful limit. */
    *f = (struct framer){
        .mode = mode,
        .oversize = oversize,
        .max_frame = max_frame > 0 ? max_frame : 1,
    };
}

int framer_next(struct framer *f, const char *buf, size_t len, struct str *frame, size_t *used)
{
    size_t pos = 0;
    size_t count, hdr;
    int rc;

    f->flags = 0;
    *frame = STR_ABSENT;
    *used = 0;
    if (f->skip > 0) {
        pos = f->skip < len ? f->skip : len;
        f->skip -= pos;
        if (f->skip > 0) {
            *used = pos;
            return ERR_AGAIN;
        }
    }
    if (f->discard_line) {
        framing_discard_line(f, buf, len, &pos);
        if (f->discard_line) {
            *used = len;
            return ERR_AGAIN;
        }
    }
    /* Empty lines, a CR left over from CRLF and NUL padding never start a
     * frame: they are dropped between frames. */
    while (pos < len && str_is_eol(buf[pos]))
        pos++;
    *used = pos;
    if (pos == len)
        return ERR_AGAIN;

    if (f->mode == FRAMING_LF)
        return framing_trailer(f, buf, pos, len, frame, used);
    rc = framing_parse_count(buf + pos, len - pos, &count, &hdr);
    if (rc == 0)
        return framing_octet(f, buf + pos, len - pos, count, hdr, frame, used);
    if (rc == ERR_AGAIN)
        return ERR_AGAIN;
    if (f->mode == FRAMING_AUTO) /* not a count: a trailer frame, maybe `2016-05-08T...` */
        return framing_trailer(f, buf, pos, len, frame, used);
    framing_discard_line(f, buf, len, &pos);
    *used = pos;
    return ERR_INVALID;
}

int framer_finish(struct framer *f, const char *buf, size_t len, struct str *frame)
{
    size_t pos = 0;
    size_t count, hdr, n;
    const char *p;

    f->flags = 0;
    *frame = STR_ABSENT;
    /* Inside a skipped or discarded frame nothing is left to deliver. */
    if (f->skip > 0 || f->discard_line)
        return ERR_AGAIN;
    while (pos < len && str_is_eol(buf[pos]))
        pos++;
    if (pos == len)
        return ERR_AGAIN;
    p = buf + pos;
    n = len - pos;

    if (f->mode != FRAMING_LF && framing_parse_count(p, n, &count, &hdr) == 0) {
        /* The sender closed inside an octet-counted frame: deliver what came,
         * flagged as cut, as go-syslog's best-effort mode does. */
        n -= hdr;
        if (n == 0)
            return ERR_AGAIN;
        framing_deliver(f, frame, p + hdr, n < f->max_frame ? n : f->max_frame,
                        FRAME_OCTET | FRAME_TRUNCATED);
        return 0;
    }
    if (f->mode == FRAMING_OCTET) /* only a count cut short can be left */
        return ERR_AGAIN;
    if (p[n - 1] == '\r')
        n--;
    /* A rejected last line is dropped silently: this call can only say
     * "frame" or "nothing". */
    return framing_line(f, p, n, frame) == 0 ? 0 : ERR_AGAIN;
}

struct str framer_trim_trailer(const char *buf, size_t len)
{
    return str_make(buf, str_trim_eol(buf, len));
}
