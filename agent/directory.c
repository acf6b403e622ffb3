/* The static directory: a CSV file read line by line into an open-addressing
 * hash table (linear probing, load factor at most one half) keyed by the
 * identifier with ASCII case folded. Each entry is one allocation holding the
 * identifier and the email. */
#include "directory.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"

#define DIR_FIRST_CAP 16

/* The stringified cap, for the static error texts. */
#define DIR_STR_(x)  #x
#define DIR_STR(x)   DIR_STR_(x)
#define DIR_MAX_TEXT DIR_STR(DIRECTORY_MAX_FIELD)

struct dir_entry {
    uint64_t hash;
    char *id; /* NULL: an empty slot; the email follows the identifier's NUL */
    size_t id_len;
    const char *email;
    size_t line; /* where it was defined, for duplicate reports */
};

struct directory {
    struct dir_entry *slots;
    size_t cap; /* a power of two */
    size_t count;
};

static char dir_fold(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

uint64_t directory_id_hash(struct str id)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a, 64 bits */

    for (size_t i = 0; i < id.len; i++) {
        h ^= (unsigned char)dir_fold(id.p[i]);
        h *= 1099511628211ULL;
    }
    return h;
}

int directory_id_equal(struct str a, struct str b)
{
    if (a.len != b.len)
        return 0;
    for (size_t i = 0; i < a.len; i++) {
        if (dir_fold(a.p[i]) != dir_fold(b.p[i]))
            return 0;
    }
    return 1;
}

/* The slot holding id, or the empty slot where it would go. */
static struct dir_entry *dir_probe(const struct directory *d, struct str id, uint64_t hash)
{
    size_t mask = d->cap - 1;

    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        struct dir_entry *e = &d->slots[i];
        if (e->id == NULL ||
            (e->hash == hash && directory_id_equal(str_make(e->id, e->id_len), id)))
            return e;
    }
}

static int dir_grow(struct directory *d)
{
    size_t cap = d->cap ? d->cap * 2 : DIR_FIRST_CAP;
    struct dir_entry *old = d->slots;
    size_t old_cap = d->cap;

    d->slots = calloc(cap, sizeof(*d->slots));
    if (d->slots == NULL) {
        d->slots = old;
        return ERR_NOMEM;
    }
    d->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].id != NULL)
            *dir_probe(d, str_make(old[i].id, old[i].id_len), old[i].hash) = old[i];
    }
    free(old);
    return 0;
}

/* Adds id -> email. A duplicate with the same email is kept once; with a
 * different one it is reported into what (sized what_cap) and ERR_CONFIG
 * returned. */
static int dir_add(struct directory *d, struct str id, struct str email, size_t line, char *what,
                   size_t what_cap)
{
    uint64_t hash = directory_id_hash(id);
    struct dir_entry *e;
    char *block;

    if ((d->count + 1) * 2 > d->cap && dir_grow(d) != 0)
        return ERR_NOMEM;
    e = dir_probe(d, id, hash);
    if (e->id != NULL) {
        if (strlen(e->email) == email.len && memcmp(e->email, email.p, email.len) == 0)
            return 0;
        snprintf(what, what_cap, "duplicate identifier \"%.*s\" with a different email (line %zu)",
                 (int)id.len, id.p, e->line);
        return ERR_CONFIG;
    }
    block = malloc(id.len + email.len + 2);
    if (block == NULL)
        return ERR_NOMEM;
    memcpy(block, id.p, id.len);
    block[id.len] = '\0';
    memcpy(block + id.len + 1, email.p, email.len);
    block[id.len + 1 + email.len] = '\0';
    *e = (struct dir_entry){hash, block, id.len, block + id.len + 1, line};
    d->count++;
    return 0;
}

static size_t dir_skip_blanks(const char *p, size_t len, size_t i)
{
    while (i < len && str_is_blank(p[i]))
        i++;
    return i;
}

/* Splits one line (no line end) into its fields, unquoting into bufs (each
 * DIRECTORY_MAX_FIELD bytes). Blanks around a field outside quotes are
 * dropped: hand-edited files say "id, email". A line break inside quotes
 * would be invalid in an identifier or an email, so a quote still open at
 * the end of the line is reported there and the next line parses afresh.
 * Returns NULL and *n, or what is wrong. */
static const char *dir_split(const char *p, size_t len, char bufs[2][DIRECTORY_MAX_FIELD],
                             struct str fields[2], size_t *n)
{
    static const char *const too_long[2] = {
        "identifier longer than " DIR_MAX_TEXT " bytes",
        "email longer than " DIR_MAX_TEXT " bytes",
    };
    size_t i = 0;

    *n = 0;
    for (;;) {
        size_t flen = 0;

        i = dir_skip_blanks(p, len, i);
        if (*n == 2)
            return "more than two fields";
        if (i < len && p[i] == '"') {
            for (i++;; i++) {
                if (i == len)
                    return "unterminated quote";
                char c = p[i];
                if (c == '"' && (i + 1 == len || p[i + 1] != '"'))
                    break;
                if (flen == DIRECTORY_MAX_FIELD)
                    return too_long[*n];
                bufs[*n][flen++] = c;
                i += c == '"'; /* "" stands for one quote */
            }
            i = dir_skip_blanks(p, len, i + 1);
            if (i < len && p[i] != ',')
                return "text after a closing quote";
        } else {
            size_t start = i, end;
            while (i < len && p[i] != ',')
                i++;
            end = i;
            while (end > start && str_is_blank(p[end - 1]))
                end--;
            flen = end - start;
            if (flen > DIRECTORY_MAX_FIELD)
                return too_long[*n];
            memcpy(bufs[*n], p + start, flen);
        }
        fields[*n] = str_make(bufs[*n], flen);
        (*n)++;
        if (i == len)
            return NULL;
        i++; /* the comma */
    }
}

/* Checks one record's fields. Returns NULL or what is wrong. */
static const char *dir_check(const struct str fields[2], size_t n)
{
    if (fields[0].len == 0)
        return "empty identifier";
    if (n < 2 || fields[1].len == 0)
        return "missing email";
    if (memchr(fields[1].p, '@', fields[1].len) == NULL)
        return "email without '@'";
    for (size_t i = 0; i < fields[1].len; i++) {
        unsigned char c = (unsigned char)fields[1].p[i];
        if (c <= ' ' || c == 0x7f)
            return "email contains a space or control character";
    }
    return NULL;
}

/* One load's working space: unquoted fields and the text of a report. */
struct dir_parse {
    const char *path;
    char bufs[2][DIRECTORY_MAX_FIELD];
    char what[2 * DIRECTORY_MAX_FIELD];
};

/* Parses one line (its end already cut). Returns 0, ERR_CONFIG (reported)
 * or ERR_NOMEM. */
static int dir_line(struct directory *d, struct dir_parse *ps, size_t lineno, const char *p,
                    size_t len)
{
    struct str fields[2];
    const char *err;
    size_t n, start;
    int rc;

    if (lineno == 1 && len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3; /* a UTF-8 byte order mark, as spreadsheets write */
        len -= 3;
    }
    start = dir_skip_blanks(p, len, 0);
    if (start == len || p[start] == '#')
        return 0;
    err = dir_split(p, len, ps->bufs, fields, &n);
    if (err == NULL)
        err = dir_check(fields, n);
    if (err != NULL) {
        log_error("%s:%zu: %s", ps->path, lineno, err);
        return ERR_CONFIG;
    }
    rc = dir_add(d, fields[0], fields[1], lineno, ps->what, sizeof(ps->what));
    if (rc == ERR_CONFIG)
        log_error("%s:%zu: %s", ps->path, lineno, ps->what);
    return rc;
}

int directory_load(const char *path, struct directory **out)
{
    struct directory *d = NULL;
    struct dir_parse ps = {.path = path};
    char *line = NULL;
    size_t line_cap = 0, lineno = 0;
    ssize_t got;
    FILE *f;
    int rc = ERR_NOMEM;

    *out = NULL;
    f = fopen(path, "re");
    if (f == NULL) {
        log_error("%s: cannot open: %s", path, strerror(errno));
        return ERR_IO;
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL || dir_grow(d) != 0)
        goto out;
    rc = 0;
    while ((got = getline(&line, &line_cap, f)) != -1) {
        size_t len = (size_t)got;
        int line_rc;

        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        /* Every problem is reported, not just the first. */
        line_rc = dir_line(d, &ps, lineno, line, len);
        if (line_rc == ERR_NOMEM) {
            rc = ERR_NOMEM;
            goto out;
        }
        if (line_rc != 0)
            rc = line_rc;
    }
    if (!feof(f)) { /* getline failed for another reason than the end */
        log_error("%s: cannot read: %s", path, strerror(errno));
        rc = ERR_IO;
    }
    if (rc == 0) {
        *out = d; /* transferred */
        d = NULL;
    }
out:
    if (rc == ERR_NOMEM)
        log_error("%s: out of memory", path);
    free(line);
    fclose(f);
    directory_free(d);
    return rc;
}

void directory_free(struct directory *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->cap; i++)
        free(d->slots[i].id);
    free(d->slots);
    free(d);
}

const char *directory_lookup(const struct directory *d, struct str id)
{
    const struct dir_entry *e;

    if (d == NULL || id.p == NULL)
        return NULL;
    e = dir_probe(d, id, directory_id_hash(id));
    return e->id != NULL ? e->email : NULL;
}

size_t directory_count(const struct directory *d)
{
    return d != NULL ? d->count : 0;
}
