#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/clock.h"

#define TAP_BUFFER    (256 * 1024)
#define TAP_FLUSH_MS  100
#define TAP_LINGER_US 500

struct tap {
    int fd;
    char *path;
    struct queue *q;
    struct stats *stats;
    char *buf;
    size_t len;
    pthread_t thread;
    int started;
    int write_failed; /* logged once; lines are then dropped */
    void (*done)(void *arg);
    void *done_arg;
};

int tap_open(const char *path, struct queue *q, struct tap **out)
{
    struct tap *t;
    int err;

    *out = NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return ERR_NOMEM;
    t->fd = -1;
    t->q = q;
    t->path = strdup(path);
    t->buf = malloc(TAP_BUFFER);
    if (t->path == NULL || t->buf == NULL) {
        tap_free(t);
        return ERR_NOMEM;
    }
    t->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (t->fd == -1) {
        err = errno;
        log_error("--tap %s: %s", path, strerror(err));
        tap_free(t);
        return ERR_IO;
    }
    *out = t;
    return 0;
}

static void tap_write(struct tap *t, const char *p, size_t n)
{
    while (n > 0 && !t->write_failed) {
        ssize_t w = write(t->fd, p, n);
        if (w == -1) {
            int err = errno;
            if (err == EINTR)
                continue;
            /* The tap is a debugging aid: a full disk must not stall the
             * listeners behind the queue, so later lines are dropped. */
            log_error("--tap %s: write: %s; no more tap lines", t->path, strerror(err));
            t->write_failed = 1;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void tap_flush(struct tap *t)
{
    tap_write(t, t->buf, t->len);
    t->len = 0;
}

static void tap_add(struct tap *t, struct str line)
{
    if (TAP_BUFFER - t->len < line.len)
        tap_flush(t);
    if (line.len > TAP_BUFFER) {
        tap_write(t, line.p, line.len);
    } else {
        memcpy(t->buf + t->len, line.p, line.len);
        t->len += line.len;
    }
    if (!t->write_failed)
        stats_add(t->stats, STAT_tap_lines, 1);
}

/* The queue ran dry: a moment for the workers to queue more lines before
 * this thread waits to be signalled, so that a burst costs one wake-up per
 * batch, not one per line (the tap lags by at most this). */
static void tap_linger(void)
{
    struct timespec linger = {0, TAP_LINGER_US * 1000};

    nanosleep(&linger, NULL);
}

static void *tap_main(void *arg)
{
    struct tap *t = arg;
    int64_t flush_at = now_ms() + TAP_FLUSH_MS;
    int took = 0; /* lines taken since the queue was last found empty */
    struct str line;

    for (;;) {
        int64_t now = now_ms();
        int wait = t->len > 0 ? (int)(flush_at > now ? flush_at - now : 0) : TAP_FLUSH_MS;
        int rc = queue_peek(t->q, &line, 0);

        if (rc != 0 && took > 0) {
            took = 0;
            tap_linger();
            continue;
        }
        if (rc != 0)
            rc = queue_peek(t->q, &line, wait);
        if (rc == 0) {
            took++;
            tap_add(t, line);
            queue_release(t->q);
        }
        if (rc != 0 || now_ms() >= flush_at) {
            if (t->len > 0)
                tap_flush(t);
            flush_at = now_ms() + TAP_FLUSH_MS;
            if (queue_done(t->q))
                break;
        }
    }
    t->done(t->done_arg);
    return NULL;
}

int tap_start(struct tap *t, void (*done)(void *arg), void *arg)
{
    int r;

    t->stats = stats_register();
    t->done = done;
    t->done_arg = arg;
    r = pthread_create(&t->thread, NULL, tap_main, t);
    if (r != 0) {
        log_error("--tap: cannot start its thread: %s", strerror(r));
        return ERR_IO;
    }
    t->started = 1;
    return 0;
}

void tap_free(struct tap *t)
{
    if (t == NULL)
        return;
    if (t->started)
        pthread_join(t->thread, NULL);
    /* The thread flushed everything before it ended. */
    if (t->fd != -1 && close(t->fd) == -1)
        log_error("--tap %s: close: %s", t->path, strerror(errno));
    free(t->buf);
    free(t->path);
    free(t);
}
