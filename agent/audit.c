/* The audit log: each line is rendered into a reused JSON buffer and
 * appended with a single write(2) on an O_APPEND descriptor, so lines of a
 * crash or of another writer never interleave. */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "errors.h"
#include "jsonw.h"
#include "log.h"

/* A decision's fields are bounded well below this; the cap only guards
 * against a runaway line. */
#define AUDIT_LINE_MAX   (1u << 20)
#define AUDIT_SHA256_HEX 64

struct audit {
    int fd;
    char *path;
    int hash_users;
    struct jsonw w;
    struct log_ratelimit rl;
};

static int audit_open_fd(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

    if (fd == -1)
        log_error("%s: cannot open the audit log: %s", path, strerror(errno));
    return fd;
}

int audit_open(const struct audit_config *cfg, struct audit **out)
{
    struct audit *a = NULL;
    int rc = ERR_NOMEM;

    *out = NULL;
    if (cfg->file == NULL)
        return 0;
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        goto out;
    a->fd = -1;
    a->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10, 5);
    jsonw_init(&a->w, AUDIT_LINE_MAX);
    a->path = strdup(cfg->file);
    if (a->path == NULL)
        goto out;
    a->hash_users = cfg->hash_users;
    a->fd = audit_open_fd(a->path);
    if (a->fd == -1) {
        rc = ERR_IO;
        goto out;
    }
    *out = a; /* transferred */
    a = NULL;
    rc = 0;
out:
    audit_free(a);
    return rc;
}

void audit_free(struct audit *a)
{
    if (a == NULL)
        return;
    if (a->fd != -1)
        close(a->fd);
    jsonw_free(&a->w);
    free(a->path);
    free(a);
}

int audit_reopen(struct audit *a)
{
    int fd;

    if (a == NULL)
        return 0;
    fd = audit_open_fd(a->path);
    if (fd == -1)
        return ERR_IO;
    close(a->fd);
    a->fd = fd;
    return 0;
}

/* RFC 3339 UTC with milliseconds: "2026-10-02T09:12:44.120Z". */
static void audit_time(struct jsonw *w, struct timespec ts)
{
    char buf[40];
    struct tm tm;
    size_t n;

    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, ".%03ldZ", ts.tv_nsec / 1000000);
    jsonw_str(w, str_make(buf, n));
}

/* A user identifier as written: as it is, or as the lowercase hex SHA-256
 * of its bytes with hash_users. Absent stays null. Returns 0 or -1. */
static int audit_user_value(struct audit *a, struct str value)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    char text[AUDIT_SHA256_HEX];
    unsigned md_len = 0;

    if (!a->hash_users || value.p == NULL) {
        jsonw_str(&a->w, value);
        return 0;
    }
    if (!EVP_Digest(value.p, value.len, md, &md_len, EVP_sha256(), NULL) ||
        md_len * 2 != sizeof(text))
        return -1;
    for (unsigned i = 0; i < md_len; i++) {
        text[2 * i] = hex[md[i] >> 4];
        text[2 * i + 1] = hex[md[i] & 0xf];
    }
    jsonw_str(&a->w, str_make(text, sizeof(text)));
    return 0;
}

/* Renders r into a->w, in the documented key order. Returns NULL or why
 * the line could not be rendered. */
static const char *audit_render(struct audit *a, const struct audit_record *r)
{
    struct jsonw *w = &a->w;
    struct str email = r->email != NULL ? str_make(r->email, strlen(r->email)) : STR_ABSENT;

    jsonw_reset(w);
    jsonw_object_begin(w);
    jsonw_key(w, "time");
    audit_time(w, r->time);
    jsonw_key(w, "source");
    jsonw_cstr(w, r->source);
    jsonw_key(w, "mapping");
    jsonw_cstr(w, r->mapping);
    jsonw_key(w, "rule");
    jsonw_str(w, r->rule);
    jsonw_key(w, "user");
    if (audit_user_value(a, r->user) != 0)
        return "SHA-256 failed";
    jsonw_key(w, "email");
    if (audit_user_value(a, email) != 0)
        return "SHA-256 failed";
    jsonw_key(w, "event");
    jsonw_str(w, r->event);
    jsonw_key(w, "outcome");
    jsonw_cstr(w, r->outcome);
    if (r->detail != NULL) {
        jsonw_key(w, "detail");
        jsonw_cstr(w, r->detail);
    }
    jsonw_object_end(w);
    jsonw_newline(w);
    return w->err != 0 ? err_name(w->err) : NULL;
}

int audit_write(struct audit *a, const struct audit_record *r)
{
    const char *why;
    ssize_t n;

    if (a == NULL)
        return 0;
    why = audit_render(a, r);
    if (why != NULL) {
        log_limited(&a->rl, LOG_LVL_ERROR, "%s: audit line not written: %s", a->path, why);
        return ERR_IO;
    }
    do
        n = write(a->fd, a->w.buf, a->w.len);
    while (n == -1 && errno == EINTR);
    if (n == -1) {
        log_limited(&a->rl, LOG_LVL_ERROR, "%s: cannot write: %s", a->path, strerror(errno));
        return ERR_IO;
    }
    if ((size_t)n != a->w.len) {
        /* Disk full, or a file size limit: part of the line is left behind. */
        log_limited(&a->rl, LOG_LVL_ERROR, "%s: short write (%zd of %zu bytes)", a->path, n,
                    a->w.len);
        return ERR_IO;
    }
    return 0;
}
