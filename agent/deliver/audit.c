/* The audit log: each line is rendered into a reused JSON buffer and
 * appended with one write(2) on an O_APPEND descriptor, so lines of a crash
 * or of another writer never interleave; only a full disk or a file size
 * limit cuts a line, and then the next one starts on a line of its own.
 *
 * Only the dead-letter file is fdatasync'ed, line by line: its line is the
 * only copy of an alert once the spool marks it done. The audit log is not:
 * a line lost in a crash costs a record, never an alert, and a sync per
 * decision would hold the delivery thread to the disk's sync rate. */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "errors.h"
#include "core/escape.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/secret.h"

/* A decision's fields are bounded well below this; the cap only guards
 * against a runaway line. */
#define AUDIT_LINE_MAX   (1u << 20)
#define AUDIT_SHA256_HEX 64
/* HMAC-SHA256 keys: shorter than 16 bytes could be guessed, longer than a
 * block buys nothing; the cap only catches the wrong file. */
#define AUDIT_KEY_MIN 16
#define AUDIT_KEY_MAX 1024

struct audit {
    int fd;
    char *path;
    const char *key_name; /* the config key of path, for messages */
    int hash_users;
    unsigned char *key; /* HMAC key, or NULL: plain SHA-256 */
    size_t key_len;
    int cut;      /* the file ends in a fragment: the next line starts with '\n' */
    int durable;  /* each line is fdatasync'ed before audit_write returns 0 */
    size_t bytes; /* the file's size at the open, plus what was written since */
    struct jsonw w;
    struct log_ratelimit rl;
};

/* Logs one problem with the file an audit key names, as run and check both
 * report it: "audit.KEY: PATH: what", after "CONFIG: " when config_path is
 * not NULL. */
static void audit_report(const char *config_path, const char *key, const char *path,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void audit_report(const char *config_path, const char *key, const char *path,
                         const char *fmt, ...)
{
    char what[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (config_path != NULL)
        log_error("%s: %s: %s: %s", config_path, key, path, what);
    else
        log_error("%s: %s: %s", key, path, what);
}

/* Reads the HMAC key of path into *key (free with secret_free). Neither the
 * key nor its length is ever logged. Returns 0, ERR_IO, ERR_CONFIG or
 * ERR_NOMEM (all logged, see audit_report). */
static int audit_read_key(const char *config_path, const char *path, unsigned char **key,
                          size_t *len)
{
    char why[256];
    int rc =
        secret_read(path, AUDIT_KEY_MIN, AUDIT_KEY_MAX, 0, (char **)key, len, why, sizeof(why));

    if (rc == ERR_CONFIG)
        audit_report(config_path, "audit.hash_key_file", path,
                     "the audit hash key is %s (try openssl rand -hex 32)", why);
    else if (rc != 0)
        audit_report(config_path, "audit.hash_key_file", path, "the audit hash key: %s", why);
    return rc;
}

/* What the file named by key is called in messages. */
static const char *audit_what(const char *key)
{
    if (strcmp(key, "audit.file") == 0)
        return "the audit log";
    return strcmp(key, "spool.dead_letter") == 0 ? "the dead-letter file" : "the file";
}

/* Opens path for appending, with O_CREAT (run) or without (check: then
 * O_NONBLOCK too, so that a FIFO without a reader cannot hang it). Returns
 * the descriptor, or -1 after logging why; without O_CREAT a missing file
 * is left to the caller: -1 with errno ENOENT, nothing logged. */
static int audit_open_fd(const char *config_path, const char *key, const char *path, int create)
{
    /* O_NOFOLLOW: a symbolic link planted where the file goes would make
     * the agent append its lines (user names, emails) wherever it points. */
    int fd = open(
        path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : O_NONBLOCK), 0640);
    int err = errno;

    if (fd == -1 && err == ELOOP)
        audit_report(config_path, key, path, "cannot open %s: it is a symbolic link (refused)",
                     audit_what(key));
    else if (fd == -1 && (create || err != ENOENT))
        audit_report(config_path, key, path, "cannot open %s: %s", audit_what(key), strerror(err));
    errno = err;
    return fd;
}

/* Whether audit_open could create path, which does not exist yet: its
 * folder must take new files. Returns 0, ERR_IO (logged) or ERR_NOMEM. */
static int audit_check_create(const char *config_path, const char *key, const char *path)
{
    char *copy = strdup(path);
    const char *dir;
    int rc = 0;

    if (copy == NULL)
        return ERR_NOMEM;
    dir = dirname(copy);
    if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) == -1) {
        audit_report(config_path, key, path, "cannot create %s in %s: %s", audit_what(key), dir,
                     strerror(errno));
        rc = ERR_IO;
    }
    free(copy);
    return rc;
}

int audit_check_file(const char *file, const char *file_key, const char *config_path)
{
    int fd;

    if (file == NULL)
        return 0;
    fd = audit_open_fd(config_path, file_key, file, 0);
    if (fd != -1) {
        close(fd);
        return 0;
    }
    return errno == ENOENT ? audit_check_create(config_path, file_key, file) : ERR_IO;
}

int audit_check(const struct audit_config *cfg, const char *config_path)
{
    int key_rc = 0, file_rc;

    if (cfg->hash_key_file != NULL) {
        unsigned char *key = NULL;
        size_t key_len = 0;

        key_rc = audit_read_key(config_path, cfg->hash_key_file, &key, &key_len);
        secret_free((char *)key, key_len);
    }
    file_rc = audit_check_file(cfg->file, "audit.file", config_path);
    return key_rc != 0 ? key_rc : file_rc;
}

int audit_new(const struct audit_config *cfg, const char *file_key, int durable, struct audit **out)
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
    if (cfg->hash_key_file != NULL) {
        rc = audit_read_key(NULL, cfg->hash_key_file, &a->key, &a->key_len);
        if (rc != 0)
            goto out;
        a->hash_users = 1;
    }
    a->key_name = file_key;
    a->durable = durable;
    *out = a; /* transferred */
    a = NULL;
    rc = 0;
out:
    audit_free(a);
    return rc;
}

int audit_open(const struct audit_config *cfg, struct audit **out)
{
    int rc = audit_new(cfg, "audit.file", 0, out);

    if (rc == 0)
        rc = audit_reopen(*out);
    if (rc != 0) {
        audit_free(*out);
        *out = NULL;
    }
    return rc;
}

void audit_free(struct audit *a)
{
    if (a == NULL)
        return;
    if (a->fd != -1)
        close(a->fd);
    jsonw_free(&a->w);
    secret_free((char *)a->key, a->key_len);
    free(a->path);
    free(a);
}

int audit_reopen(struct audit *a)
{
    struct stat st;
    int fd;

    if (a == NULL)
        return 0;
    fd = audit_open_fd(NULL, a->key_name, a->path, 1);
    if (fd == -1)
        return ERR_IO;
    /* The size counts against a cap (spool.max_bytes for the dead-letter
     * file); a file fstat cannot size (a character device) holds nothing. */
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))
        st.st_size = 0;
    if (a->fd != -1)
        close(a->fd);
    a->fd = fd;
    a->bytes = (size_t)st.st_size;
    return 0;
}

size_t audit_bytes(const struct audit *a)
{
    return a != NULL ? a->bytes : 0;
}

/* RFC 3339 UTC with milliseconds: "2026-10-02T09:12:44.120Z". */
static void audit_time(struct jsonw *w, struct timespec ts)
{
    char buf[LOG_TIME_SIZE];

    jsonw_str(w, str_make(buf, log_format_time(ts, buf)));
}

/* A user identifier as written: as it is, or with hash_users as the
 * lowercase hex HMAC-SHA256 (with a key) or SHA-256 (without) of its bytes.
 * Absent stays null. Returns 0 or -1. */
static int audit_user_value(struct audit *a, struct str value)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    char text[AUDIT_SHA256_HEX + 1];
    unsigned md_len = 0;
    int ok;

    if (!a->hash_users || value.p == NULL) {
        jsonw_str(&a->w, value);
        return 0;
    }
    if (a->key != NULL)
        ok = HMAC(EVP_sha256(), a->key, (int)a->key_len, (const unsigned char *)value.p, value.len,
                  md, &md_len) != NULL;
    else
        ok = EVP_Digest(value.p, value.len, md, &md_len, EVP_sha256(), NULL);
    if (!ok || md_len * 2 != AUDIT_SHA256_HEX)
        return -1;
    jsonw_str(&a->w, str_make(text, hex_encode(md, md_len, text)));
    return 0;
}

/* Renders r into a->w, in the documented key order. Returns NULL or why
 * the line could not be rendered. */
static const char *audit_render(struct audit *a, const struct audit_record *r)
{
    struct jsonw *w = &a->w;
    struct str email = r->email != NULL ? str_make(r->email, strlen(r->email)) : STR_ABSENT;

    jsonw_reset(w);
    if (a->cut)
        jsonw_newline(w); /* ends the fragment a short write left */
    jsonw_object_begin(w);
    jsonw_key(w, "time");
    audit_time(w, r->time);
    jsonw_key(w, "source");
    jsonw_cstr(w, r->source);
    if (r->transport != NULL && r->transport[0] != '\0') {
        jsonw_key(w, "transport");
        jsonw_cstr(w, r->transport);
    }
    jsonw_key(w, "mapping");
    jsonw_cstr(w, r->mapping);
    jsonw_key(w, "rule");
    jsonw_str(w, r->rule);
    jsonw_key(w, "user");
    if (audit_user_value(a, r->user) != 0)
        return "hashing failed";
    jsonw_key(w, "email");
    if (audit_user_value(a, email) != 0)
        return "hashing failed";
    if (r->resolver != NULL) {
        jsonw_key(w, "resolver");
        jsonw_cstr(w, r->resolver);
    }
    jsonw_key(w, "event");
    jsonw_str(w, r->event);
    if (r->policy != NULL) {
        jsonw_key(w, "policy");
        jsonw_cstr(w, r->policy);
        jsonw_key(w, "priority");
        jsonw_cstr(w, r->priority);
        jsonw_key(w, "why");
        jsonw_cstr(w, r->why);
        jsonw_key(w, "action");
        jsonw_cstr(w, r->action);
    }
    jsonw_key(w, "outcome");
    jsonw_cstr(w, r->outcome);
    if (r->detail != NULL) {
        jsonw_key(w, "detail");
        jsonw_cstr(w, r->detail);
    }
    /* The key is an unkeyed hash over the user among others: next to a
     * hashed user it would let a guess be tested. */
    if (r->key != NULL && !a->hash_users) {
        jsonw_key(w, "key");
        jsonw_cstr(w, r->key);
    }
    if (r->status > 0) {
        jsonw_key(w, "status");
        jsonw_int(w, r->status);
    }
    if (r->attempts > 0) {
        jsonw_key(w, "attempts");
        jsonw_int(w, r->attempts);
        jsonw_key(w, "latency_ms");
        jsonw_int(w, r->latency_ms);
    }
    jsonw_object_end(w);
    jsonw_newline(w);
    return w->err != 0 ? err_name(w->err) : NULL;
}

/* Writes all of buf, again after a partial write. Returns the bytes
 * written: len, or fewer when write(2) failed (errno says why). */
static size_t audit_write_all(int fd, const char *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == 0)
            errno = 0; /* no progress and no reason: give up rather than spin */
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    return done;
}

int audit_write(struct audit *a, const struct audit_record *r)
{
    const char *why;
    size_t done;
    int err;

    if (a == NULL)
        return 0;
    why = audit_render(a, r);
    if (why != NULL) {
        log_limited(&a->rl, LOG_LVL_ERROR, "%s: audit line not written: %s", a->path, why);
        return ERR_IO;
    }
    done = audit_write_all(a->fd, a->w.buf, a->w.len);
    a->bytes += done;
    if (done == a->w.len) {
        a->cut = 0;
        /* EINVAL: a file that cannot be synced (/dev/null, a FIFO) keeps
         * nothing to make durable. */
        if (!a->durable || fdatasync(a->fd) == 0 || errno == EINVAL)
            return 0;
        log_limited(&a->rl, LOG_LVL_ERROR, "%s: cannot sync a line to disk (fdatasync): %s",
                    a->path, strerror(errno));
        return ERR_IO;
    }
    err = errno;
    /* Whatever got out (perhaps only the newline that ended an earlier
     * fragment) decides how the file ends now. */
    if (done > 0)
        a->cut = a->w.buf[done - 1] != '\n';
    log_limited(&a->rl, LOG_LVL_ERROR, "%s: cannot write (%zu of %zu bytes written): %s", a->path,
                done, a->w.len, err != 0 ? strerror(err) : "no progress");
    return ERR_IO;
}
