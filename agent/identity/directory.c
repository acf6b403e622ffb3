/* The static directory: a CSV file read line by line into an open-addressing
 * hash table (linear probing, load factor at most one half) keyed by the
 * identifier with its case folded, under a secret hash key of its own. Each
 * entry is one allocation holding the identifier and the email. */
#include "directory.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "errors.h"
#include "core/log.h"

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
    struct directory_hash_key key;
};

/* ---- identifiers ---- */

/* A byte that is not part of a 2-byte UTF-8 sequence stands for itself, as
 * this plus the byte: above every code point a 2-byte sequence holds. */
#define DIR_RAW_BYTE 0x800u

/* The simple case folding of code point cp (below U+0800), for the blocks
 * directory.h lists. */
static uint32_t dir_fold(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= 'A' && cp <= 'Z' ? cp + 0x20 : cp;
    if (cp == 0xb5)
        return 0x3bc; /* MICRO SIGN -> GREEK SMALL LETTER MU */
    if (cp >= 0xc0 && cp <= 0xde && cp != 0xd7)
        return cp + 0x20;
    if (cp >= 0x100 && cp <= 0x17f) {
        switch (cp) {
        case 0x130: /* I WITH DOT ABOVE: Turkic or full folding only */
        case 0x131: /* DOTLESS I: lower case */
        case 0x138: /* KRA: lower case */
        case 0x149: /* N PRECEDED BY APOSTROPHE: full folding only */
            return cp;
        case 0x178:
            return 0xff; /* Y WITH DIAERESIS */
        case 0x17f:
            return 's'; /* LONG S */
        }
        /* Upper case is even up to U+0137 and from U+014A to U+0177, odd
         * from U+0139 to U+0148 and from U+0179 to U+017E. */
        if (cp < 0x138 || (cp >= 0x14a && cp < 0x178))
            return cp | 1;
        return (cp & 1) ? cp + 1 : cp;
    }
    if (cp >= 0x391 && cp <= 0x3a9 && cp != 0x3a2)
        return cp + 0x20;
    if (cp == 0x3c2)
        return 0x3c3; /* FINAL SIGMA */
    if (cp >= 0x410 && cp <= 0x42f)
        return cp + 0x20;
    if (cp >= 0x400 && cp <= 0x40f)
        return cp + 0x50;
    return cp;
}

/* The next unit of id from *i, folded, and moves *i past it: a 2-byte UTF-8
 * sequence (every character that folds is one) or a single byte. Valid
 * longer sequences are thus compared byte for byte, which is exact. */
static uint32_t dir_next_unit(struct str id, size_t *i)
{
    unsigned char b = (unsigned char)id.p[*i];

    if (b >= 0xc2 && b <= 0xdf && *i + 1 < id.len && ((unsigned char)id.p[*i + 1] & 0xc0) == 0x80) {
        uint32_t cp = ((uint32_t)(b & 0x1f) << 6) | ((unsigned char)id.p[*i + 1] & 0x3f);
        *i += 2;
        return dir_fold(cp);
    }
    (*i)++;
    return b < 0x80 ? dir_fold(b) : DIR_RAW_BYTE | b;
}

int directory_id_equal(struct str a, struct str b)
{
    size_t i = 0, j = 0;

    while (i < a.len && j < b.len) {
        if (dir_next_unit(a, &i) != dir_next_unit(b, &j))
            return 0;
    }
    return i == a.len && j == b.len;
}

int directory_hash_key_init(struct directory_hash_key *key)
{
    uint64_t k[2];
    ssize_t n;

    do
        n = getrandom(k, sizeof(k), 0);
    while (n == -1 && errno == EINTR);
    if (n != (ssize_t)sizeof(k)) {
        log_error("getrandom: %s", n == -1 ? strerror(errno) : "short read");
        return ERR_IO;
    }
    key->k0 = k[0];
    key->k1 = k[1];
    return 0;
}

/* SipHash-2-4 (Aumasson and Bernstein), fed a byte at a time. */
struct dir_sip {
    uint64_t v0, v1, v2, v3;
    uint64_t m;   /* the word being filled, little-endian */
    uint64_t len; /* bytes fed */
};

#define DIR_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void dir_sip_rounds(struct dir_sip *s, int n)
{
    while (n-- > 0) {
        s->v0 += s->v1;
        s->v1 = DIR_ROTL(s->v1, 13);
        s->v1 ^= s->v0;
        s->v0 = DIR_ROTL(s->v0, 32);
        s->v2 += s->v3;
        s->v3 = DIR_ROTL(s->v3, 16);
        s->v3 ^= s->v2;
        s->v0 += s->v3;
        s->v3 = DIR_ROTL(s->v3, 21);
        s->v3 ^= s->v0;
        s->v2 += s->v1;
        s->v1 = DIR_ROTL(s->v1, 17);
        s->v1 ^= s->v2;
        s->v2 = DIR_ROTL(s->v2, 32);
    }
}

static void dir_sip_byte(struct dir_sip *s, unsigned char b)
{
    s->m |= (uint64_t)b << (8 * (s->len % 8));
    if (++s->len % 8 == 0) {
        s->v3 ^= s->m;
        dir_sip_rounds(s, 2);
        s->v0 ^= s->m;
        s->m = 0;
    }
}

uint64_t directory_id_hash(const struct directory_hash_key *key, struct str id)
{
    struct dir_sip s = {
        key->k0 ^ 0x736f6d6570736575ULL,
        key->k1 ^ 0x646f72616e646f6dULL,
        key->k0 ^ 0x6c7967656e657261ULL,
        key->k1 ^ 0x7465646279746573ULL,
        0,
        0,
    };
    uint64_t last;

    /* Each folded unit as one byte below 0x80, else as two bytes (the first
     * 0x80 or more): a prefix-free spelling, so the hash sees exactly what
     * directory_id_equal compares. */
    for (size_t i = 0; i < id.len;) {
        uint32_t u = dir_next_unit(id, &i);
        if (u >= 0x80)
            dir_sip_byte(&s, (unsigned char)(0x80 | (u >> 8)));
        dir_sip_byte(&s, (unsigned char)u);
    }
    last = s.len << 56 | s.m;
    s.v3 ^= last;
    dir_sip_rounds(&s, 2);
    s.v0 ^= last;
    s.v2 ^= 0xff;
    dir_sip_rounds(&s, 4);
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

/* ---- the table ---- */

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
    uint64_t hash = directory_id_hash(&d->key, id);
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
 * DIRECTORY_MAX_FIELD bytes). Blanks around a field are dropped, outside
 * quotes (hand-edited files say "id, email") and inside them too: the
 * mappings trim every value they yield, so "jdoe " could never be looked
 * up (directory.h). A line break inside quotes
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
            fields[*n] = str_trim_blanks(str_make(bufs[*n], flen));
        } else {
            size_t start = i;
            while (i < len && p[i] != ',')
                i++;
            fields[*n] = str_trim_blanks(str_make(p + start, i - start));
            if (fields[*n].len > DIRECTORY_MAX_FIELD)
                return too_long[*n];
            memcpy(bufs[*n], fields[*n].p, fields[*n].len);
            fields[*n].p = bufs[*n];
        }
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
    rc = directory_hash_key_init(&d->key);
    if (rc != 0)
        goto out;
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
    e = dir_probe(d, id, directory_id_hash(&d->key, id));
    return e->id != NULL ? e->email : NULL;
}

size_t directory_count(const struct directory *d)
{
    return d != NULL ? d->count : 0;
}
