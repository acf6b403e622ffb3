/* The input reader `parse` and `replay` share: every input named on the
 * command line in turn ("-" or none: stdin), framed as the daemon frames a
 * TCP stream (framing.h, OVERSIZE_TRUNCATE): LF trailers (a CR before the
 * LF tolerated, empty lines skipped) or RFC 6587 octet counting. A read
 * error on one input is reported and the others are still read. (Named
 * reader, not input: ingest/input.h is the daemon's inputs.) */
#ifndef RTR_READER_H
#define RTR_READER_H

#include <stddef.h>

#include "framing.h"
#include "str.h"

struct reader_options {
    const char *cmd;           /* "parse", "replay": prefixes the messages on stderr */
    enum framing_mode framing; /* FRAMING_LF or FRAMING_OCTET */
    /* FRAMING_LF only: a line ends at LF alone and a NUL is part of it, as
     * in a UDP datagram (replay); else at LF or NUL (framing.h; parse). */
    int keep_nul;
    size_t max_message; /* longer frames are cut to it (flagged) */
};

/* One frame, valid during the callback only. */
struct reader_frame {
    const char *input; /* the input as named on the command line ("-": stdin) */
    /* FRAMING_LF: the line the frame starts on (1 first; empty lines count).
     * FRAMING_OCTET: the frame's ordinal in the input (1 first; a malformed
     * count that was skipped takes no number). */
    unsigned long long line;
    struct str bytes; /* without its trailer or count */
    int truncated;    /* cut at max_message (the rest of it was dropped) */
};

struct reader_ops {
    /* Each frame. A nonzero return stops reading this input and is what
     * reader_run returns (the later inputs are still read). */
    int (*frame)(void *arg, const struct reader_frame *f);
    /* After each input that opened, however its reading ended: at its end,
     * when a frame stopped it, or at a read error (after the frames read
     * before it). Per-input state is reset here. NULL: nothing to do. */
    void (*end)(void *arg, const char *input);
    void *arg;
};

/* Reads paths[0..n) in turn. Says on stderr which input does not open or
 * read ("rtr-agent parse: x.log: No such file or directory"; stdin is
 * "stdin" there) and which frame the framer dropped (a malformed octet
 * count). Returns 0; the first nonzero ops->frame return; ERR_IO when an
 * input could not be read; ERR_NOMEM. */
int reader_run(const struct reader_options *opt, char *const *paths, int n,
               const struct reader_ops *ops);

#endif
