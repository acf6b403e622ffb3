/* Reading the JSON files we load (json_file.h): json-c parses, after one
 * pass of our own over the text for what json-c lets through. */
#include "json_file.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "errors.h"
#include "str.h"

/* The scan's memory is a bounded multiple of a capped file: running out
 * of it is not worth a recovery path. */
static void *jf_alloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size);
    if (p == NULL) {
        log_error("json: out of memory");
        abort();
    }
    return p;
}

/* A place in a text: line and column (1-based, as editors count them) of
 * offset. Moving it forward costs only the bytes in between, so reports in
 * file order stay linear in the file's size. */
struct text_cursor {
    size_t offset;
    size_t line;
    size_t line_start; /* offset of the line's first byte */
};

#define TEXT_CURSOR_INIT                                                                           \
    {                                                                                              \
        0, 1, 0                                                                                    \
    }

/* Moves c forward to offset (never back) and returns its column. */
static size_t text_advance(struct text_cursor *c, const char *text, size_t offset)
{
    const char *nl;

    while (c->offset < offset &&
           (nl = memchr(text + c->offset, '\n', offset - c->offset)) != NULL) {
        c->line++;
        c->offset = c->line_start = (size_t)(nl + 1 - text);
    }
    if (c->offset < offset)
        c->offset = offset;
    return offset - c->line_start + 1;
}

static void text_error(struct json_file_report *rep, struct text_cursor *c, const char *text,
                       size_t offset, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* "FILE:LINE:COL: msg", through the log so the file's bytes are escaped. */
static void text_error(struct json_file_report *rep, struct text_cursor *c, const char *text,
                       size_t offset, const char *fmt, ...)
{
    char msg[512];
    size_t col = text_advance(c, text, offset);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rep->errors++;
    log_error("%s:%zu:%zu: %s", rep->file, c->line, col, msg);
}

static void syntax_error(struct json_file_report *rep, const char *text, size_t offset,
                         const char *what)
{
    struct text_cursor c = TEXT_CURSOR_INIT;

    text_error(rep, &c, text, offset, "invalid JSON: %s", what);
}

/* ---- what json-c lets through ----
 * json-c keeps the last of two equal keys in an object and drops the first
 * without a word: a mapping with two "when" would silently lose conditions.
 * Its default tokener also takes 'single-quoted' strings and a trailing
 * comma ({"a": 1,} and [1, 2,]), which no other JSON tool reads. So before
 * json-c parses, one pass over the text (strings and their escapes, both
 * kinds of comments, objects and arrays) reports every key that repeats in
 * its object, every single-quoted string and every comma before a closing
 * bracket. Comments stay allowed: the shipped files use them. Each byte is
 * looked at once, and every key goes into one hash table of (object number,
 * decoded key). The rest of the syntax is json-c's to judge: on anything
 * unexpected the scan just stops. Config and mapping files come from the
 * admin, so an unkeyed hash is fine here. */

/* json-c refuses deeper nesting anyway (its default is 32). */
#define DUP_MAX_DEPTH      64
#define DUP_FIRST_SLOTS    64
#define DUP_REPORT_MAX_KEY 128

struct dup_slot {
    uint64_t hash;
    uint32_t object;   /* 0: an empty slot; objects are numbered from 1 */
    uint32_t off, len; /* the decoded key, in dup_scan.keys */
};

struct dup_scan {
    struct json_file_report *rep;
    const char *text;
    size_t len, at;
    struct text_cursor where;
    char *keys; /* decoded keys back to back: never longer than the text */
    size_t keys_len;
    struct dup_slot *slots;
    size_t cap, count; /* cap: a power of two */
};

static uint64_t dup_hash(uint32_t object, const char *key, size_t len)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a, 64 bits */

    for (int i = 0; i < 4; i++) {
        h ^= (object >> (8 * i)) & 0xff;
        h *= 1099511628211ULL;
    }
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* The slot holding (object, key), or the empty slot where it would go. */
static struct dup_slot *dup_probe(const struct dup_scan *s, uint64_t hash, uint32_t object,
                                  const char *key, size_t len)
{
    size_t mask = s->cap - 1;

    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        struct dup_slot *e = &s->slots[i];
        if (e->object == 0 || (e->hash == hash && e->object == object && e->len == len &&
                               memcmp(s->keys + e->off, key, len) == 0))
            return e;
    }
}

static void dup_grow(struct dup_scan *s)
{
    struct dup_slot *old = s->slots;
    size_t old_cap = s->cap;

    s->cap = old_cap != 0 ? old_cap * 2 : DUP_FIRST_SLOTS;
    s->slots = jf_alloc(s->cap, sizeof(*s->slots));
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].object != 0)
            *dup_probe(s, old[i].hash, old[i].object, s->keys + old[i].off, old[i].len) = old[i];
    }
    free(old);
}

/* Appends code point cp to the decoded keys as UTF-8 (a lone surrogate as
 * its 3-byte form: it only has to compare equal to itself). */
static void dup_put_utf8(struct dup_scan *s, unsigned cp)
{
    char *out = s->keys + s->keys_len;

    if (cp < 0x80) {
        out[0] = (char)cp;
        s->keys_len += 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        s->keys_len += 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        s->keys_len += 3;
    } else {
        out[0] = (char)(0xf0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[3] = (char)(0x80 | (cp & 0x3f));
        s->keys_len += 4;
    }
}

/* The 4 hex digits of a \u escape at text[at], or -1. */
static long dup_hex4(const struct dup_scan *s, size_t at)
{
    long v = 0;

    if (s->len - at < 4)
        return -1;
    for (size_t i = at; i < at + 4; i++) {
        int d = str_hex_value(s->text[i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Skips the string whose opening quote is at s->at (json-c also takes
 * single quotes), decoding it into s->keys when decode is set; s->at ends
 * past the closing quote. Each escape takes at least as many bytes as it
 * decodes to, so the decoded keys never outgrow the text. Returns 0, or -1
 * when the text ends first. */
static int dup_string(struct dup_scan *s, int decode)
{
    static const char escapes[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
    char quote = s->text[s->at];

    for (s->at++; s->at < s->len; s->at++) {
        char c = s->text[s->at];
        long cp, low;

        if (c == quote) {
            s->at++;
            return 0;
        }
        if (c != '\\' || s->at + 1 == s->len) {
            if (decode)
                s->keys[s->keys_len++] = c;
            continue;
        }
        c = s->text[++s->at];
        if (c != 'u') {
            const char *e = memchr(escapes, c, sizeof(escapes) - 1);
            if (decode) /* an unknown escape is json-c's to report */
                s->keys[s->keys_len++] = e != NULL && (e - escapes) % 2 == 0 ? e[1] : c;
            continue;
        }
        if ((cp = dup_hex4(s, s->at + 1)) < 0)
            continue; /* json-c reports the bad escape */
        s->at += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && s->len - s->at > 2 && s->text[s->at + 1] == '\\' &&
            s->text[s->at + 2] == 'u' && (low = dup_hex4(s, s->at + 3)) >= 0xdc00 && low < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            s->at += 6;
        }
        if (decode)
            dup_put_utf8(s, (unsigned)cp);
    }
    return -1;
}

/* Decodes the key whose quote is at s->at and reports it when its object
 * (number object) already has it. Returns 0 or -1 (the text ended). */
static int dup_key(struct dup_scan *s, uint32_t object)
{
    size_t start = s->at, off = s->keys_len;
    struct dup_slot *e;
    uint64_t hash;
    size_t raw_len;

    if (dup_string(s, 1) != 0)
        return -1;
    hash = dup_hash(object, s->keys + off, s->keys_len - off);
    e = dup_probe(s, hash, object, s->keys + off, s->keys_len - off);
    if (e->object != 0) {
        raw_len = s->at - start - 2;
        text_error(s->rep, &s->where, s->text, start, "duplicate key \"%.*s%s\"",
                   (int)(raw_len < DUP_REPORT_MAX_KEY ? raw_len : DUP_REPORT_MAX_KEY),
                   s->text + start + 1, raw_len > DUP_REPORT_MAX_KEY ? "..." : "");
        s->keys_len = off; /* the first one stays in the table */
        return 0;
    }
    *e = (struct dup_slot){hash, object, (uint32_t)off, (uint32_t)(s->keys_len - off)};
    if (++s->count * 2 > s->cap)
        dup_grow(s);
    return 0;
}

/* Skips the comment at s->at. Returns 0, or -1 when '/' starts none. */
static int dup_comment(struct dup_scan *s)
{
    const char *end;

    if (s->len - s->at < 2 || (s->text[s->at + 1] != '/' && s->text[s->at + 1] != '*'))
        return -1;
    if (s->text[s->at + 1] == '/') {
        end = memchr(s->text + s->at, '\n', s->len - s->at);
        s->at = end != NULL ? (size_t)(end - s->text) : s->len;
    } else {
        end = memmem(s->text + s->at + 2, s->len - s->at - 2, "*/", 2);
        s->at = end != NULL ? (size_t)(end - s->text) + 2 : s->len;
    }
    return 0;
}

/* Reports every duplicate key, single-quoted string and trailing comma of
 * text (len bytes) as an error of ld. */
static void strict_check(struct json_file_report *rep, const char *text, size_t len)
{
    struct {
        uint32_t object; /* 0: an array */
        int want_key;
    } stack[DUP_MAX_DEPTH];
    struct dup_scan s = {.rep = rep, .text = text, .len = len, .where = TEXT_CURSOR_INIT};
    uint32_t objects = 0;
    int depth = 0, rc = 0;
    size_t comma = SIZE_MAX; /* a comma with nothing but blanks and comments after it */

    s.keys = jf_alloc(len + 1, 1);
    dup_grow(&s);
    while (s.at < len) {
        char c = text[s.at];

        if (c == '{' || c == '[') {
            if (depth == DUP_MAX_DEPTH)
                break;
            stack[depth].object = c == '{' ? ++objects : 0;
            stack[depth++].want_key = c == '{';
            s.at++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                break;
            if (comma != SIZE_MAX)
                text_error(rep, &s.where, text, comma, "trailing comma");
            depth--;
            s.at++;
        } else if (c == ',' || c == ':') {
            if (depth > 0)
                stack[depth - 1].want_key = c == ',' && stack[depth - 1].object != 0;
            s.at++;
        } else if (c == '"' || c == '\'') {
            if (c == '\'')
                text_error(rep, &s.where, text, s.at,
                           "single-quoted string: JSON needs double quotes");
            if (depth > 0 && stack[depth - 1].want_key) {
                stack[depth - 1].want_key = 0;
                rc = dup_key(&s, stack[depth - 1].object);
            } else {
                rc = dup_string(&s, 0);
            }
        } else if (c == '/') {
            if (dup_comment(&s) != 0)
                break;
            continue; /* a comment between a comma and a bracket hides nothing */
        } else {
            s.at++; /* white space, numbers, literals */
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
                continue;
        }
        if (rc != 0)
            break;
        comma = c == ',' ? s.at - 1 : SIZE_MAX;
    }
    free(s.slots);
    free(s.keys);
}

/* Whitespace and comments after the top-level value. */
static size_t skip_trailer(const char *text, size_t at, size_t len)
{
    while (at < len) {
        const char *end;

        if (strchr(" \t\r\n", text[at]) != NULL) {
            at++;
        } else if (len - at >= 2 && text[at] == '/' && text[at + 1] == '/') {
            end = memchr(text + at, '\n', len - at);
            at = end != NULL ? (size_t)(end - text) : len;
        } else if (len - at >= 2 && text[at] == '/' && text[at + 1] == '*' &&
                   (end = strstr(text + at + 2, "*/")) != NULL) {
            at = (size_t)(end - text) + 2;
        } else {
            break;
        }
    }
    return at;
}

/* text is NUL-terminated at len. json-c's default (non-strict) tokener
 * takes // and / * * / comments; handing it the terminating NUL tells it the
 * input ends there, so a comment after the last brace is not left pending.
 * Duplicate keys, which json-c would quietly merge, single quotes and
 * trailing commas, which it takes, are errors too (strict_check). */
static int parse_json(struct json_file_report *rep, const char *text, size_t len,
                      struct json_object **out)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *root = NULL;
    const char *nul = memchr(text, '\0', len);
    size_t end;
    int rc = ERR_CONFIG, errors;

    if (tok == NULL) {
        rc = ERR_NOMEM;
        goto out;
    }
    if (nul != NULL) {
        syntax_error(rep, text, (size_t)(nul - text), "NUL byte in the file");
        goto out;
    }
    errors = rep->errors;
    strict_check(rep, text, len);
    root = json_tokener_parse_ex(tok, text, (int)len + 1);
    if (root == NULL) {
        enum json_tokener_error e = json_tokener_get_error(tok);

        syntax_error(rep, text, json_tokener_get_parse_end(tok), json_tokener_error_desc(e));
        goto out;
    }
    end = skip_trailer(text, json_tokener_get_parse_end(tok), len);
    if (end < len) {
        syntax_error(rep, text, end, "unexpected text after the top-level object");
        goto out;
    }
    if (rep->errors > errors)
        goto out;
    *out = root;
    root = NULL; /* transferred */
    rc = 0;
out:
    json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    return rc;
}

static int read_file(struct json_file_report *rep, const char *path, const char *kind, char **out,
                     size_t *len)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t n = 0;
    int rc = ERR_CONFIG;

    if (f == NULL) {
        json_file_error(rep, "", "cannot open: %s", strerror(errno));
        goto out;
    }
    text = jf_alloc(JSON_FILE_MAX_BYTES + 2, 1);
    n = fread(text, 1, JSON_FILE_MAX_BYTES + 1, f);
    if (ferror(f)) {
        json_file_error(rep, "", "cannot read: %s", strerror(errno));
        goto out;
    }
    if (n > JSON_FILE_MAX_BYTES) {
        json_file_error(rep, "", "larger than %d bytes: not a %s file?", JSON_FILE_MAX_BYTES, kind);
        goto out;
    }
    text[n] = '\0';
    *out = text;
    *len = n;
    text = NULL; /* transferred */
    rc = 0;
out:
    free(text);
    if (f != NULL)
        fclose(f);
    return rc;
}

int json_file_read(const char *path, const char *kind, struct json_object **out)
{
    struct json_file_report rep = {.file = path};
    char *text = NULL;
    size_t len;
    int rc;

    *out = NULL;
    rc = read_file(&rep, path, kind, &text, &len);
    if (rc == 0)
        rc = parse_json(&rep, text, len, out);
    free(text);
    return rc;
}

void json_file_error(struct json_file_report *rep, const char *key_path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    json_file_vreport(LOG_LVL_ERROR, rep->file, key_path, fmt, ap);
    va_end(ap);
    rep->errors++;
}

int json_file_has_key(struct json_object *obj, const char *name)
{
    return obj != NULL && json_object_object_get_ex(obj, name, NULL);
}

void json_file_vreport(enum log_level level, const char *file, const char *key_path,
                       const char *fmt, va_list ap)
{
    char what[1024];

    vsnprintf(what, sizeof(what), fmt, ap);
    if (key_path[0] != '\0')
        log_msg(level, "%s: %s: %s", file, key_path, what);
    else
        log_msg(level, "%s: %s", file, what);
}

const char *json_file_describe(struct json_object *v, char *buf, size_t cap)
{
    const char *text;

    switch (json_object_get_type(v)) {
    case json_type_object:
        return "an object";
    case json_type_array:
        return "an array";
    default:
        text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                     JSON_C_TO_STRING_NOSLASHESCAPE);
        if ((size_t)snprintf(buf, cap, "%s", text) >= cap)
            strcpy(buf + cap - 4, "...");
        return buf;
    }
}

/* A path too long (a mapping's table key can be 4 KiB) ends in "...". */
static void path_fit(char *out, int n)
{
    if (n >= JSON_FILE_PATH_MAX)
        memcpy(out + JSON_FILE_PATH_MAX - 4, "...", 4);
}

void json_file_key_path(char *out, const char *parent, const char *name)
{
    path_fit(out, snprintf(out, JSON_FILE_PATH_MAX, "%s%s%s", parent, parent[0] != '\0' ? "." : "",
                           name));
}

void json_file_index_path(char *out, const char *parent, size_t i)
{
    path_fit(out, snprintf(out, JSON_FILE_PATH_MAX, "%s[%zu]", parent, i));
}

const char *json_file_join_names(const char *const *names, int quoted, char *buf, size_t cap)
{
    size_t n = 0;

    buf[0] = '\0';
    for (size_t i = 0; names[i] != NULL && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, quoted ? "%s\"%s\"" : "%s%s", i > 0 ? ", " : "",
                              names[i]);
    return buf;
}
