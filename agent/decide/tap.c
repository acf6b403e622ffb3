#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "core/log.h"

struct tap {
    int fd;
    char *path;
    int failed; /* atomic: a write failed, lines are dropped from then on */
};

int tap_open(const char *path, struct tap **out)
{
    struct tap *t;
    int err;

    *out = NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return ERR_NOMEM;
    t->path = strdup(path);
    if (t->path == NULL) {
        free(t);
        return ERR_NOMEM;
    }
    /* O_APPEND: each worker's write lands whole at the end, whatever the
     * others wrote meanwhile (and after anything an operator's `> FILE`
     * truncation left). 0600: tap lines hold whole messages. Symbolic
     * links are followed: `--tap /dev/stdout` is one. */
    t->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (t->fd == -1) {
        err = errno;
        log_error("--tap %s: %s", path, strerror(err));
        free(t->path);
        free(t);
        return ERR_IO;
    }
    *out = t;
    return 0;
}

int tap_write(struct tap *t, const char *buf, size_t len)
{
    while (len > 0) {
        if (__atomic_load_n(&t->failed, __ATOMIC_RELAXED))
            return ERR_IO;
        ssize_t w = write(t->fd, buf, len);
        if (w == -1 && errno == EINTR)
            continue;
        if (w == -1) {
            int err = errno;
            /* A full disk must not stall the listeners: the lines are
             * dropped, and said once whichever worker met it first. */
            if (!__atomic_exchange_n(&t->failed, 1, __ATOMIC_RELAXED))
                log_error("--tap %s: write: %s; no more tap lines", t->path, strerror(err));
            return ERR_IO;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

void tap_free(struct tap *t)
{
    if (t == NULL)
        return;
    if (close(t->fd) == -1)
        log_error("--tap %s: close: %s", t->path, strerror(errno));
    free(t->path);
    free(t);
}
