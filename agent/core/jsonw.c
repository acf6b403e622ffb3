#include "jsonw.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "escape.h"

#define JSONW_DEFAULT_MAX (16u << 20)
#define JSONW_FIRST_CAP   4096

void jsonw_init(struct jsonw *w, size_t max_bytes)
{
    memset(w, 0, sizeof(*w));
    w->max = max_bytes ? max_bytes : JSONW_DEFAULT_MAX;
}

void jsonw_free(struct jsonw *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

void jsonw_rewind(struct jsonw *w, size_t len)
{
    w->len = len;
    w->err = 0;
    w->depth = 0;
    w->need_comma[0] = 0;
}

void jsonw_reset(struct jsonw *w)
{
    jsonw_rewind(w, 0);
}

/* jsonw_reserve's slow path: grows the buffer, doubling up to the cap, or
 * sets err. */
static int jsonw_grow(struct jsonw *w, size_t n)
{
    if (w->err)
        return -1;
    if (n > w->max - w->len) {
        w->err = ERR_TOOBIG;
        return -1;
    }
    size_t cap = w->cap ? w->cap : JSONW_FIRST_CAP;
    while (cap - w->len < n)
        cap *= 2;
    if (cap > w->max)
        cap = w->max;
    char *p = realloc(w->buf, cap);
    if (p == NULL) {
        w->err = ERR_NOMEM;
        return -1;
    }
    w->buf = p;
    w->cap = cap;
    return 0;
}

/* Makes room for n more bytes. Every token calls it: the common case, room
 * enough, stays inline. */
static inline int jsonw_reserve(struct jsonw *w, size_t n)
{
    if (w->err == 0 && w->cap - w->len >= n)
        return 0;
    return jsonw_grow(w, n);
}

static void jsonw_put(struct jsonw *w, const char *s, size_t n)
{
    if (jsonw_reserve(w, n) == 0) {
        memcpy(w->buf + w->len, s, n);
        w->len += n;
    }
}

static void jsonw_putc(struct jsonw *w, char c)
{
    if (jsonw_reserve(w, 1) == 0)
        w->buf[w->len++] = c;
}

/* Writes s as a JSON string, quotes included, at p, where the caller has
 * reserved n * ESCAPE_MAX_EXPANSION + 2 bytes. Returns its length. */
static size_t jsonw_string_at(char *p, const char *s, size_t n)
{
    size_t len = escape_text(p + 1, n * ESCAPE_MAX_EXPANSION, s, n, ESCAPE_JSON);

    p[0] = '"';
    p[len + 1] = '"';
    return len + 2;
}

/* s as a JSON string: the quotes and the longest escape of s in one
 * reservation (the same total as reserving each in turn). */
static void jsonw_escaped(struct jsonw *w, const char *s, size_t n)
{
    if (jsonw_reserve(w, n * ESCAPE_MAX_EXPANSION + 2) == 0)
        w->len += jsonw_string_at(w->buf + w->len, s, n);
}

/* Every value and key goes through here: writes the separating comma. */
static void jsonw_separate(struct jsonw *w)
{
    if (w->need_comma[w->depth])
        jsonw_putc(w, ',');
    w->need_comma[w->depth] = 1;
}

static void jsonw_open(struct jsonw *w, char c)
{
    jsonw_separate(w);
    jsonw_putc(w, c);
    if (w->depth + 1 >= JSONW_MAX_DEPTH) {
        w->err = ERR_LIMIT;
        return;
    }
    w->need_comma[++w->depth] = 0;
}

static void jsonw_close(struct jsonw *w, char c)
{
    jsonw_putc(w, c);
    if (w->depth > 0)
        w->depth--;
}

void jsonw_object_begin(struct jsonw *w)
{
    jsonw_open(w, '{');
}

void jsonw_object_end(struct jsonw *w)
{
    jsonw_close(w, '}');
}

void jsonw_array_begin(struct jsonw *w)
{
    jsonw_open(w, '[');
}

void jsonw_array_end(struct jsonw *w)
{
    jsonw_close(w, ']');
}

void jsonw_key_str(struct jsonw *w, struct str key)
{
    jsonw_separate(w);
    jsonw_escaped(w, key.p ? key.p : "", key.len);
    jsonw_putc(w, ':');
    /* The value that follows must not get a comma of its own. */
    w->need_comma[w->depth] = 0;
}

void jsonw_key_plain(struct jsonw *w, struct str key)
{
    jsonw_separate(w);
    if (jsonw_reserve(w, key.len + 3) == 0) {
        char *p = w->buf + w->len;
        p[0] = '"';
        memcpy(p + 1, key.p, key.len);
        p[key.len + 1] = '"';
        p[key.len + 2] = ':';
        w->len += key.len + 3;
    }
    w->need_comma[w->depth] = 0;
}

/* jsonw_key_plain or jsonw_key_str (key_plain says which), then jsonw_str:
 * the same bytes, from one reservation and without a call per token. */
static void jsonw_member_as(struct jsonw *w, struct str key, int key_plain, struct str value)
{
    size_t key_most = key_plain ? key.len + 2 : key.len * ESCAPE_MAX_EXPANSION + 2;

    if (value.p == NULL) {
        if (key_plain)
            jsonw_key_plain(w, key);
        else
            jsonw_key_str(w, key);
        jsonw_null(w);
        return;
    }
    /* A comma, the key, a colon, the value. */
    if (jsonw_reserve(w, 1 + key_most + 1 + value.len * ESCAPE_MAX_EXPANSION + 2) != 0)
        return;
    char *start = w->buf + w->len, *p = start;
    if (w->need_comma[w->depth])
        *p++ = ',';
    w->need_comma[w->depth] = 1;
    if (key_plain) {
        *p++ = '"';
        memcpy(p, key.p, key.len);
        p += key.len;
        *p++ = '"';
    } else {
        p += jsonw_string_at(p, key.p ? key.p : "", key.len);
    }
    *p++ = ':';
    p += jsonw_string_at(p, value.p, value.len);
    w->len += (size_t)(p - start);
}

void jsonw_member(struct jsonw *w, struct str key, struct str value)
{
    jsonw_member_as(w, key, 0, value);
}

void jsonw_member_plain(struct jsonw *w, struct str key, struct str value)
{
    jsonw_member_as(w, key, 1, value);
}

void jsonw_key(struct jsonw *w, const char *key)
{
    jsonw_key_str(w, str_make(key, strlen(key)));
}

void jsonw_str(struct jsonw *w, struct str value)
{
    if (value.p == NULL) {
        jsonw_null(w);
        return;
    }
    jsonw_separate(w);
    jsonw_escaped(w, value.p, value.len);
}

void jsonw_cstr(struct jsonw *w, const char *value)
{
    jsonw_str(w, value ? str_make(value, strlen(value)) : STR_ABSENT);
}

/* Digits by hand: snprintf costs as much as escaping a whole field. */
void jsonw_raw(struct jsonw *w, struct str json)
{
    jsonw_separate(w);
    jsonw_put(w, json.p, json.len);
}

void jsonw_int(struct jsonw *w, long long value)
{
    char num[24], *p = num + sizeof(num);
    /* In unsigned arithmetic, so that LLONG_MIN has a magnitude too. */
    unsigned long long u = value < 0 ? 0 - (unsigned long long)value : (unsigned long long)value;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (value < 0)
        *--p = '-';
    jsonw_separate(w);
    jsonw_put(w, p, (size_t)(num + sizeof(num) - p));
}

void jsonw_null(struct jsonw *w)
{
    jsonw_separate(w);
    jsonw_put(w, "null", 4);
}

void jsonw_bool(struct jsonw *w, int value)
{
    jsonw_separate(w);
    if (value)
        jsonw_put(w, "true", 4);
    else
        jsonw_put(w, "false", 5);
}

void jsonw_newline(struct jsonw *w)
{
    jsonw_putc(w, '\n');
    w->need_comma[0] = 0;
}
