#include "parse.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "decide/render.h"
#include "errors.h"
#include "message.h"
#include "reader.h"

/* What one `parse` run reuses: nothing is allocated per message once the
 * JSON buffer has grown to its working size. */
struct parse_ctx {
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

/* reader_ops.frame: one `parse` line per frame. */
static int parse_one(void *arg, const struct reader_frame *f)
{
    struct parse_ctx *ctx = arg;

    message_parse(f->bytes.p, f->bytes.len, &ctx->msg, &ctx->scratch);
    if (f->truncated)
        message_mark_truncated(&ctx->msg);
    jsonw_reset(&ctx->out);
    render_message(&ctx->out, &ctx->msg, NULL, NULL);
    if (ctx->out.err == 0)
        write_all(STDOUT_FILENO, ctx->out.buf, ctx->out.len);
    return 0;
}

int parse_run(enum framing_mode framing, char *const *paths, int n)
{
    struct parse_ctx *ctx = calloc(1, sizeof(*ctx));
    struct reader_options opt = {"parse", framing, 0, PARSE_CMD_MAX_MESSAGE};
    struct reader_ops ops = {.frame = parse_one, .arg = ctx};
    int rc = ERR_NOMEM;

    if (ctx == NULL)
        goto out;
    ctx->scratch_buf = malloc(PARSE_CMD_MAX_MESSAGE);
    if (ctx->scratch_buf == NULL)
        goto out;
    scratch_init(&ctx->scratch, ctx->scratch_buf, PARSE_CMD_MAX_MESSAGE);
    jsonw_init(&ctx->out, 0);
    rc = reader_run(&opt, paths, n, &ops);
    jsonw_free(&ctx->out);
out:
    if (ctx)
        free(ctx->scratch_buf);
    free(ctx);
    return rc;
}
