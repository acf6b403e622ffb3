/* Secrets: read into a stack buffer that is wiped before returning, then
 * copied to the heap, wiped again on free. A file others may read is
 * warned about, not refused: the agent reads it fine, and refusing would
 * stop alerting over a permission the admin may have chosen. */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "errors.h"
#include "log.h"

/* A byte that ends a secret's file without being part of it. */
static int secret_trailer(unsigned char c, int text)
{
    return c == '\n' || c == '\r' || (text && (c == ' ' || c == '\t'));
}

/* Warns when fd's file can be read by more than its owner. fstat on the
 * open descriptor judges the file actually read, not what the path names
 * a moment later. A secret is read once per load (at start, by check, the
 * audit key again when SIGHUP moves the audit log), never per request: one
 * line per file and load. */
static void secret_warn_mode(int fd, const char *path)
{
    struct stat st;
    const char *who;

    if (fstat(fd, &st) == -1 || (st.st_mode & (S_IRGRP | S_IROTH)) == 0)
        return;
    who = (st.st_mode & S_IRGRP) == 0   ? "every user"
          : (st.st_mode & S_IROTH) == 0 ? "its group"
                                        : "its group and every user";
    log_warning("%s: secret file readable by %s (mode %04o): chmod go-r it, or pass it as a "
                "systemd credential",
                path, who, (unsigned)(st.st_mode & 07777));
}

int secret_read(const char *path, size_t min, size_t max, int text, char **out, size_t *len,
                char *why_buf, size_t why_cap)
{
    char buf[SECRET_MAX + 1];
    size_t n = 0;
    ssize_t got;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = ERR_IO;

    *out = NULL;
    *len = 0;
    if (max > SECRET_MAX)
        max = SECRET_MAX;
    if (fd == -1) {
        snprintf(why_buf, why_cap, "cannot open: %s", strerror(errno));
        return ERR_IO;
    }
    secret_warn_mode(fd, path);
    while (n < sizeof(buf) && (got = read(fd, buf + n, sizeof(buf) - n)) != 0) {
        if (got == -1 && errno != EINTR) {
            snprintf(why_buf, why_cap, "cannot read: %s", strerror(errno));
            goto out;
        }
        n += got > 0 ? (size_t)got : 0;
    }
    while (n > 0 && secret_trailer((unsigned char)buf[n - 1], text))
        n--;
    rc = ERR_CONFIG;
    if (n > max) {
        snprintf(why_buf, why_cap, "longer than %zu bytes", max);
        goto out;
    }
    if (n == 0 || n < min) {
        if (min > 1)
            snprintf(why_buf, why_cap, "shorter than %zu bytes", min);
        else
            snprintf(why_buf, why_cap, "empty");
        goto out;
    }
    for (size_t i = 0; text && i < n; i++) {
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
            snprintf(why_buf, why_cap, "holds a control character (one line, no NUL)");
            goto out;
        }
    }
    rc = ERR_NOMEM;
    *out = malloc(n + 1);
    if (*out == NULL) {
        snprintf(why_buf, why_cap, "out of memory");
        goto out;
    }
    memcpy(*out, buf, n);
    (*out)[n] = '\0';
    *len = n;
    rc = 0;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    close(fd);
    return rc;
}

void secret_free(char *s, size_t len)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, len);
    free(s);
}
