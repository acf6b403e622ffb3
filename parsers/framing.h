/* Syslog stream framing (RFC 6587): LF / CRLF / NUL trailers and octet
 * counting, auto-detected per frame, incremental across read boundaries.
 *
 * The framer never copies and never allocates: it looks at the bytes the
 * caller has buffered and says where the next frame is and how many bytes
 * the caller may drop. Its state (a partially skipped oversized frame) lives
 * in struct framer, which the caller embeds in its connection. */
#ifndef RTR_FRAMING_H
#define RTR_FRAMING_H

#include <stddef.h>

#include "str.h"

enum framing_mode {
    FRAMING_AUTO,  /* per frame: digit first = octet counting, else trailer */
    FRAMING_LF,    /* non-transparent: frames end at LF, CRLF or NUL */
    FRAMING_OCTET, /* RFC 6587 octet counting only */
};

enum oversize_policy {
    OVERSIZE_TRUNCATE, /* deliver the first max_frame bytes, flagged, drop the rest */
    OVERSIZE_REJECT,   /* drop the whole frame */
};

/* Flags of the last frame returned by framer_next(). */
enum {
    FRAME_TRUNCATED = 1u << 0, /* frame was cut at max_frame */
    FRAME_OCTET = 1u << 1,     /* frame came octet-counted */
};

/* Largest MSG-LEN digit count accepted (caps the count, prevents overflow). */
#define FRAMING_MAX_LEN_DIGITS 9

struct framer {
    enum framing_mode mode;
    enum oversize_policy oversize;
    size_t max_frame;
    size_t skip;      /* bytes of an oversized octet frame still to discard */
    int discard_line; /* dropping the rest of an oversized trailer frame */
    size_t scanned;   /* bytes of an incomplete trailer frame already searched,
                         so a line arriving in many reads is scanned once */
    unsigned flags;   /* FRAME_* of the last frame returned */
};

void framer_init(struct framer *f, enum framing_mode mode, size_t max_frame,
                 enum oversize_policy oversize);

/* Looks for the next frame in buf[0..len), the bytes the caller holds.
 *
 * Returns 0: *frame is the frame (a slice into buf, trailer removed, valid
 * while the caller keeps those bytes) and the caller drops *used bytes (frame
 * plus header/trailer) before calling again.
 * Returns ERR_AGAIN: no complete frame yet; the caller drops *used bytes
 * (possibly 0: data of an oversized frame being skipped) and reads more.
 * Never asks the caller to hold more than max_frame + 2 bytes of a trailer
 * frame (a line without a trailer in that many is oversized: the 2 are a CR
 * and one more byte) or max_frame + FRAMING_MAX_LEN_DIGITS + 1 of an
 * octet-counted one (count, SP, payload): past that it truncates or rejects.
 * Returns ERR_TOOBIG: an oversized frame was dropped (OVERSIZE_REJECT) or an
 * oversized frame starts being skipped; drop *used bytes and call again.
 * Returns ERR_INVALID: a malformed octet count (FRAMING_OCTET mode); *used
 * bytes (up to the next LF or NUL, or all of buf) were dropped to resynchronise.
 * The caller counts TOOBIG and INVALID. */
int framer_next(struct framer *f, const char *buf, size_t len, struct str *frame, size_t *used);

/* At end of stream: the bytes still held, if any, as a last frame (a sender
 * that closes without a final LF). Returns 0 with *frame, or ERR_AGAIN when
 * there is nothing to deliver. An oversized last line under OVERSIZE_REJECT
 * is dropped silently. A count cut short ("12") is nothing in FRAMING_OCTET
 * mode and a trailer frame in FRAMING_AUTO; a bare count ("12 ") is nothing. */
int framer_finish(struct framer *f, const char *buf, size_t len, struct str *frame);

/* A datagram (UDP) or line with its trailing LF, CR and NUL bytes removed. */
struct str framer_trim_trailer(const char *buf, size_t len);

#endif
