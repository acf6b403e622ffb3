#include "parse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "message.h"
#include "decide/render.h"

/* What one `parse` run reuses for every message: nothing is allocated per
 * message once the JSON buffer has grown to its working size. */
struct parse_ctx {
    struct framer framer;
    char *in; /* input buffer: one maximal frame plus its count field */
    size_t in_cap;
    char *scratch_buf;
    struct scratch scratch;
    struct message msg;
    struct jsonw out;
};

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w == -1) {
            if (errno == EINTR)
                continue;
            return ERR_IO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void parse_one(struct parse_ctx *ctx, struct str frame)
{
    message_parse(frame.p, frame.len, &ctx->msg, &ctx->scratch);
    if (ctx->framer.flags & FRAME_TRUNCATED)
        message_mark_truncated(&ctx->msg);
    jsonw_reset(&ctx->out);
    render_message(&ctx->out, &ctx->msg, NULL, NULL);
    if (ctx->out.err == 0)
        write_all(STDOUT_FILENO, ctx->out.buf, ctx->out.len);
}

/* Frames and parses everything readable from fd. */
static int parse_fd(struct parse_ctx *ctx, int fd, const char *name)
{
    size_t have = 0;
    struct str frame;
    size_t used;

    for (;;) {
        ssize_t n = read(fd, ctx->in + have, ctx->in_cap - have);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "rtr-agent parse: %s: %s\n", name, strerror(errno));
            return ERR_IO;
        }
        if (n == 0)
            break;
        have += (size_t)n;
        size_t off = 0;
        for (;;) {
            int rc = framer_next(&ctx->framer, ctx->in + off, have - off, &frame, &used);
            off += used;
            if (rc == 0)
                parse_one(ctx, frame);
            else if (rc == ERR_AGAIN)
                break;
            else
                fprintf(stderr, "rtr-agent parse: %s: frame dropped: %s\n", name, err_name(rc));
        }
        memmove(ctx->in, ctx->in + off, have - off);
        have -= off;
    }
    if (framer_finish(&ctx->framer, ctx->in, have, &frame) == 0)
        parse_one(ctx, frame);
    return 0;
}

int parse_run(enum framing_mode framing, char *const *paths, int n)
{
    struct parse_ctx *ctx = calloc(1, sizeof(*ctx));
    int rc = ERR_NOMEM;

    if (ctx == NULL)
        goto out;
    ctx->in_cap = PARSE_CMD_MAX_MESSAGE + FRAMING_MAX_LEN_DIGITS + 2;
    ctx->in = malloc(ctx->in_cap);
    ctx->scratch_buf = malloc(PARSE_CMD_MAX_MESSAGE);
    if (ctx->in == NULL || ctx->scratch_buf == NULL)
        goto out;
    scratch_init(&ctx->scratch, ctx->scratch_buf, PARSE_CMD_MAX_MESSAGE);
    jsonw_init(&ctx->out, 0);

    rc = 0;
    for (int i = 0; i < (n > 0 ? n : 1); i++) {
        const char *path = n > 0 ? paths[i] : "-";
        int is_stdin = strcmp(path, "-") == 0;
        int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
        if (fd == -1) {
            fprintf(stderr, "rtr-agent parse: %s: %s\n", path, strerror(errno));
            rc = ERR_IO;
            continue;
        }
        /* Each input starts a fresh stream: no state carries over. */
        framer_init(&ctx->framer, framing, PARSE_CMD_MAX_MESSAGE, OVERSIZE_TRUNCATE);
        if (parse_fd(ctx, fd, is_stdin ? "stdin" : path) != 0)
            rc = ERR_IO;
        if (!is_stdin)
            close(fd);
    }
    jsonw_free(&ctx->out);
out:
    if (ctx) {
        free(ctx->in);
        free(ctx->scratch_buf);
    }
    free(ctx);
    return rc;
}
