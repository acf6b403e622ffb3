#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"

struct reader {
    const struct reader_options *opt;
    const struct reader_ops *ops;
    struct framer framer;
    int lines_only; /* keep_nul with FRAMING_LF: reader_line_next frames */
    int discard;    /* keep_nul: dropping the rest of a line cut at max_message */
    int truncated;  /* keep_nul: the last line returned was cut */
    char *in;       /* one maximal frame plus its count field or trailer */
    size_t in_cap;
    const char *input; /* as named */
    const char *name;  /* for messages: "stdin" for "-" */
    /* FRAMING_LF: the LFs before in + counted, i.e. the lines before it. */
    unsigned long long lines;
    size_t counted;
    unsigned long long frames; /* FRAMING_OCTET: frames delivered so far */
};

/* keep_nul's framer: the next line of buf[0..len), as framer_next says it
 * (0 with *frame, or ERR_AGAIN; *used bytes to drop either way). A CR
 * before the LF is removed; empty lines are skipped; a line with no LF in
 * max_message + 2 held bytes is cut, and the rest of it dropped as it
 * comes. */
static int reader_line_next(struct reader *rd, const char *buf, size_t len, struct str *frame,
                            size_t *used)
{
    size_t max = rd->opt->max_message, pos = 0;

    rd->truncated = 0;
    *used = 0;
    for (;;) {
        const char *lf = memchr(buf + pos, '\n', len - pos);
        size_t n = (lf != NULL ? (size_t)(lf - buf) : len) - pos;

        if (rd->discard) {
            rd->discard = lf == NULL;
            *used = pos = lf != NULL ? (size_t)(lf - buf) + 1 : len;
            if (lf == NULL)
                return ERR_AGAIN;
            continue;
        }
        if (lf == NULL) {
            if (n <= max + 1) /* room for max bytes and a CR: the LF may come */
                return ERR_AGAIN;
            rd->discard = 1;
            rd->truncated = 1;
            *frame = str_make(buf + pos, max);
            *used = len;
            return 0;
        }
        *used = (size_t)(lf - buf) + 1;
        if (n > 0 && buf[pos + n - 1] == '\r')
            n--;
        if (n > 0) {
            rd->truncated = n > max;
            *frame = str_make(buf + pos, rd->truncated ? max : n);
            return 0;
        }
        pos = *used; /* an empty line */
    }
}

/* The bytes left at the end of an input, as framer_finish says it. */
static int reader_line_finish(struct reader *rd, const char *buf, size_t len, struct str *frame)
{
    size_t max = rd->opt->max_message;

    rd->truncated = 0;
    if (rd->discard)
        return ERR_AGAIN;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    if (len == 0)
        return ERR_AGAIN;
    rd->truncated = len > max;
    *frame = str_make(buf, rd->truncated ? max : len);
    return 0;
}

static int reader_next(struct reader *rd, const char *buf, size_t len, struct str *frame,
                       size_t *used)
{
    if (rd->lines_only)
        return reader_line_next(rd, buf, len, frame, used);
    return framer_next(&rd->framer, buf, len, frame, used);
}

static int reader_finish(struct reader *rd, const char *buf, size_t len, struct str *frame)
{
    if (rd->lines_only)
        return reader_line_finish(rd, buf, len, frame);
    return framer_finish(&rd->framer, buf, len, frame);
}

/* Counts the LFs of rd->in up to `to` (FRAMING_LF only: an octet-counted
 * frame may hold LFs of its own). */
static void reader_count_lines(struct reader *rd, size_t to)
{
    const char *p = rd->in + rd->counted, *end = rd->in + to;

    if (rd->opt->framing != FRAMING_LF)
        return;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        rd->lines++;
        p++;
    }
    rd->counted = to;
}

static int reader_deliver(struct reader *rd, struct str frame)
{
    struct reader_frame f = {
        .input = rd->input,
        .bytes = frame,
        .truncated = rd->lines_only ? rd->truncated : (rd->framer.flags & FRAME_TRUNCATED) != 0,
    };

    reader_count_lines(rd, (size_t)(frame.p - rd->in));
    f.line = rd->opt->framing == FRAMING_LF ? rd->lines + 1 : ++rd->frames;
    return rd->ops->frame(rd->ops->arg, &f);
}

/* Frames everything readable from fd, one read after the other into what
 * the last frame left free. */
static int reader_fd(struct reader *rd, int fd)
{
    size_t have = 0, used, off;
    struct str frame;
    int rc = 0;

    while (rc == 0) {
        ssize_t n = read(fd, rd->in + have, rd->in_cap - have);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "rtr-agent %s: %s: %s\n", rd->opt->cmd, rd->name, strerror(errno));
            rc = ERR_IO; /* what it held is not framed: its last line may be cut */
            break;
        }
        if (n == 0)
            break;
        have += (size_t)n;
        off = 0;
        while (rc == 0) {
            int frc = reader_next(rd, rd->in + off, have - off, &frame, &used);
            off += used;
            if (frc == 0)
                rc = reader_deliver(rd, frame);
            else if (frc == ERR_AGAIN)
                break;
            else
                fprintf(stderr, "rtr-agent %s: %s: frame dropped: %s\n", rd->opt->cmd, rd->name,
                        err_name(frc));
        }
        reader_count_lines(rd, off);
        memmove(rd->in, rd->in + off, have - off);
        have -= off;
        rd->counted = 0;
    }
    if (rc == 0 && reader_finish(rd, rd->in, have, &frame) == 0)
        rc = reader_deliver(rd, frame);
    /* Also after a frame stopped it or a read failed: what was read is
     * summed up, and the caller's per-input state ends with its input. */
    if (rd->ops->end != NULL)
        rd->ops->end(rd->ops->arg, rd->input);
    return rc;
}

int reader_run(const struct reader_options *opt, char *const *paths, int n,
               const struct reader_ops *ops)
{
    struct reader rd = {
        .opt = opt,
        .ops = ops,
        .lines_only = opt->keep_nul && opt->framing == FRAMING_LF,
    };
    int rc = 0;

    /* Enough for the framer (framing.h: max + count + SP) and for a line
     * and its CRLF. */
    rd.in_cap = opt->max_message + FRAMING_MAX_LEN_DIGITS + 2;
    rd.in = malloc(rd.in_cap);
    if (rd.in == NULL)
        return ERR_NOMEM;
    for (int i = 0; i < (n > 0 ? n : 1); i++) {
        const char *path = n > 0 ? paths[i] : "-";
        int is_stdin = strcmp(path, "-") == 0;
        int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
        int frc;

        if (fd == -1) {
            fprintf(stderr, "rtr-agent %s: %s: %s\n", opt->cmd, path, strerror(errno));
            rc = ERR_IO;
            continue;
        }
        /* Each input starts a fresh stream: no state carries over. */
        framer_init(&rd.framer, opt->framing, opt->max_message, OVERSIZE_TRUNCATE);
        rd.discard = 0;
        rd.lines = 0;
        rd.counted = 0;
        rd.frames = 0;
        rd.input = path;
        rd.name = is_stdin ? "stdin" : path;
        frc = reader_fd(&rd, fd);
        if (!is_stdin)
            close(fd);
        if (frc != 0 && rc == 0)
            rc = frc;
    }
    free(rd.in);
    return rc;
}
