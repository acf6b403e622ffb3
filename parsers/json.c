/* Strict JSON (json.h): an iterative validator whose stack is a fixed array of open
 * containers, and path lookups that rescan a validated text. */
#include "json.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "errors.h"

/* ---- bytes, UTF-8 and escapes, shared by validation and lookup ---- */

static int json_is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t json_skip_ws(const char *t, size_t len, size_t i)
{
    while (i < len && json_is_ws(t[i]))
        i++;
    return i;
}

/* Length of the valid UTF-8 sequence at p[0..avail) whose first byte is >= 0x80, or 0:
 * no overlong forms, no UTF-16 surrogates (U+D800..U+DFFF), nothing above U+10FFFF. */
static size_t json_utf8_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t n;

    if (c < 0xC2)
        return 0;
    if (c < 0xE0) {
        n = 2;
    } else if (c < 0xF0) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c < 0xF5) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return 0;
    }
    return n;
}

static size_t json_utf8_put(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static int json_hex4(const char *t, size_t len, size_t i, uint32_t *v)
{
    *v = 0;
    if (len - i < 4)
        return 0;
    for (size_t k = 0; k < 4; k++) {
        int d = str_hex_value(t[i + k]);
        if (d < 0)
            return 0;
        *v = *v << 4 | (uint32_t)d;
    }
    return 1;
}

enum json_esc {
    ESC_OK,
    ESC_BAD,           /* not one of \" \\ \/ \b \f \n \r \t \uXXXX */
    ESC_BAD_U,         /* \u without four hex digits */
    ESC_LONE_SURROGATE /* a surrogate \u escape not part of a high-low pair */
};

/* Decodes the escape at t[i] == '\\' into *cp; *used = its length in bytes. */
static enum json_esc json_escape(const char *t, size_t len, size_t i, uint32_t *cp, size_t *used)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit;
    uint32_t lo;

    if (i + 1 >= len)
        return ESC_BAD;
    if (t[i + 1] != 'u') {
        hit = t[i + 1] != '\0' ? strchr(from, t[i + 1]) : NULL;
        if (hit == NULL)
            return ESC_BAD;
        *cp = (unsigned char)to[hit - from];
        *used = 2;
        return ESC_OK;
    }
    if (!json_hex4(t, len, i + 2, cp))
        return ESC_BAD_U;
    *used = 6;
    if (*cp >= 0xDC00 && *cp <= 0xDFFF)
        return ESC_LONE_SURROGATE;
    if (*cp < 0xD800 || *cp > 0xDBFF)
        return ESC_OK;
    if (len - i < 12 || t[i + 6] != '\\' || t[i + 7] != 'u' || !json_hex4(t, len, i + 8, &lo) ||
        lo < 0xDC00 || lo > 0xDFFF)
        return ESC_LONE_SURROGATE;
    *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
    *used = 12;
    return ESC_OK;
}

/* Next decoded bytes of the string whose content continues at t[*i] (into out, at most
 * 4); 0 at its closing quote or the end of text. For validated strings. */
static size_t json_decode_next(const char *t, size_t len, size_t *i, unsigned char out[4])
{
    uint32_t cp;
    size_t used;

    if (*i >= len || t[*i] == '"')
        return 0;
    if (t[*i] != '\\') {
        out[0] = (unsigned char)t[(*i)++];
        return 1;
    }
    if (json_escape(t, len, *i, &cp, &used) != ESC_OK) {
        /* Unvalidated text: the backslash stands for itself. */
        out[0] = '\\';
        (*i)++;
        return 1;
    }
    *i += used;
    return json_utf8_put(cp, out);
}

/* Whether the validated strings opening at t[a] and t[b] are equal once unescaped. */
static int json_keys_equal(const char *t, size_t len, size_t a, size_t b)
{
    unsigned char ca[4], cb[4];
    size_t na = 0, nb = 0, ka = 0, kb = 0;

    a++;
    b++;
    for (;;) {
        if (ka == na) {
            na = json_decode_next(t, len, &a, ca);
            ka = 0;
        }
        if (kb == nb) {
            nb = json_decode_next(t, len, &b, cb);
            kb = 0;
        }
        if (na == 0 || nb == 0)
            return na == 0 && nb == 0;
        if (ca[ka++] != cb[kb++])
            return 0;
    }
}

/* Offset just past the string opening at t[i], or len when it does not close. */
static size_t json_skip_string(const char *t, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (t[i] == '\\')
            i++;
        else if (t[i] == '"')
            return i + 1;
    }
    return len;
}

/* ---- validation ---- */

struct json_level {
    uint32_t start;     /* offset of its '{' or '[' */
    uint32_t key;       /* objects: offset of the current member's key (opening quote) */
    uint32_t count;     /* members or elements begun */
    uint32_t first_key; /* objects: where its keys start in keys[] */
    unsigned char is_object;
    unsigned char in_value; /* inside a member's or element's value: part of the path */
};

struct json_key {
    uint32_t at;   /* opening quote */
    uint32_t hash; /* FNV-1a of the unescaped key: most pairs differ here */
};

struct json_validator {
    const char *t;
    size_t len;
    struct json_limits lim;
    struct json_error *err;
    size_t depth, values, n_keys;
    struct json_level lv[JSON_DEPTH_MAX];
    struct json_key keys[JSON_OPEN_KEYS_MAX];
};

/* A component of a path or a key, as written, cut to max bytes (at a UTF-8 boundary,
 * marked "..."): keys made of [A-Za-z0-9_$@-] as ".key", others as ["key"]. */
static size_t json_render_key(const char *t, size_t len, size_t at, char *out, size_t max,
                              int as_path)
{
    size_t end = json_skip_string(t, len, at) - 1, n = end - at - 1, k = 0, cut = n;
    int plain = n > 0;

    for (size_t j = at + 1; j < end && plain; j++) {
        char c = t[j];
        plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || str_is_digit(c) || c == '_' ||
                c == '$' || c == '@' || c == '-';
    }
    if (cut > max) {
        cut = max;
        while (cut > 0 && ((unsigned char)t[at + 1 + cut] & 0xC0) == 0x80)
            cut--;
    }
    if (as_path && plain) {
        out[k++] = '.';
    } else {
        if (as_path)
            out[k++] = '[';
        out[k++] = '"';
    }
    memcpy(out + k, t + at + 1, cut);
    k += cut;
    if (cut < n) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    if (!as_path || !plain) {
        out[k++] = '"';
        if (as_path)
            out[k++] = ']';
    }
    out[k] = '\0';
    return k;
}

/* The path of the value being read, its deepest components kept when it is long. */
#define JSON_PATH_BUDGET   60
#define JSON_COMPONENT_MAX 32
static void json_render_path(const struct json_validator *v, char out[JSON_PATH_BUDGET + 8])
{
    char buf[JSON_PATH_BUDGET], part[JSON_COMPONENT_MAX + 8];
    size_t at = sizeof(buf), i = v->depth;
    int cut = 0;

    while (i-- > 0) {
        const struct json_level *l = &v->lv[i];
        size_t n;

        if (!l->in_value)
            continue;
        if (l->is_object)
            n = json_render_key(v->t, v->len, l->key, part, JSON_COMPONENT_MAX, 1);
        else
            n = (size_t)snprintf(part, sizeof(part), "[%u]", (unsigned)(l->count - 1));
        if (n > at) {
            cut = 1;
            break;
        }
        at -= n;
        memcpy(buf + at, part, n);
    }
    snprintf(out, JSON_PATH_BUDGET + 8, "$%s%.*s", cut ? "..." : "", (int)(sizeof(buf) - at),
             buf + at);
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int
json_fail(struct json_validator *v, int rc, size_t at, const char *fmt, ...)
{
    char what[64], path[JSON_PATH_BUDGET + 8];
    va_list ap;

    if (v->err == NULL)
        return rc;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    json_render_path(v, path);
    v->err->offset = at;
    /* Sized to fit: what < 64, at < 2^32 (JSON_LEN_MAX), path < JSON_PATH_BUDGET + 8. */
    snprintf(v->err->text, sizeof(v->err->text), "json: %s at byte %u in %s", what, (unsigned)at,
             path);
    return rc;
}

/* "'x'" for a printable ASCII byte, else "byte 0xNN", for "unexpected ...". */
static int json_unexpected(struct json_validator *v, size_t at, const char *expected)
{
    unsigned char c = (unsigned char)v->t[at];

    if (c > 0x20 && c < 0x7F)
        return json_fail(v, ERR_INVALID, at, "unexpected '%c', expected %s", c, expected);
    return json_fail(v, ERR_INVALID, at, "unexpected byte 0x%02X, expected %s", c, expected);
}

static uint32_t json_fnv(uint32_t h, const unsigned char *p, size_t n)
{
    for (size_t k = 0; k < n; k++)
        h = (h ^ p[k]) * 16777619u;
    return h;
}

/* Validates the string opening at *i; *i ends past its closing quote. */
static int json_string(struct json_validator *v, size_t *i, uint32_t *hash)
{
    const char *t = v->t;
    size_t len = v->len, j = *i + 1, run;
    uint32_t h = 2166136261u;

    for (;;) {
        if (j >= len)
            return json_fail(v, ERR_INVALID, *i, "unterminated string");
        unsigned char c = (unsigned char)t[j];
        if (c == '"')
            break;
        if (c >= 0x20 && c < 0x80 && c != '\\') {
            for (run = j + 1; run < len; run++) {
                unsigned char d = (unsigned char)t[run];
                if (d < 0x20 || d >= 0x80 || d == '"' || d == '\\')
                    break;
            }
            if (hash != NULL)
                h = json_fnv(h, (const unsigned char *)t + j, run - j);
            j = run;
        } else if (c == '\\') {
            uint32_t cp;
            size_t used;
            unsigned char enc[4];
            switch (json_escape(t, len, j, &cp, &used)) {
            case ESC_OK:
                break;
            case ESC_BAD:
                return json_fail(v, ERR_INVALID, j, "invalid escape");
            case ESC_BAD_U:
                return json_fail(v, ERR_INVALID, j, "invalid \\u escape");
            case ESC_LONE_SURROGATE:
                return json_fail(v, ERR_INVALID, j, "lone surrogate \\u%.4s", t + j + 2);
            }
            if (hash != NULL)
                h = json_fnv(h, enc, json_utf8_put(cp, enc));
            j += used;
        } else if (c < 0x20) {
            return json_fail(v, ERR_INVALID, j, "unescaped control byte 0x%02X in a string", c);
        } else {
            size_t n = json_utf8_len((const unsigned char *)t + j, len - j);
            if (n == 0)
                return json_fail(v, ERR_INVALID, j, "invalid UTF-8");
            if (hash != NULL)
                h = json_fnv(h, (const unsigned char *)t + j, n);
            j += n;
        }
    }
    *i = j + 1;
    if (hash != NULL)
        *hash = h;
    return 0;
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?; the value is not converted, so
 * 1e400 and -0 are fine. */
static int json_number(struct json_validator *v, size_t *i)
{
    const char *t = v->t;
    size_t len = v->len, j = *i, digits;

    if (t[j] == '-')
        j++;
    if (j >= len || !str_is_digit(t[j]))
        return json_fail(v, ERR_INVALID, j, "malformed number");
    if (t[j] == '0' && j + 1 < len && str_is_digit(t[j + 1]))
        return json_fail(v, ERR_INVALID, j, "leading zero in a number");
    while (j < len && str_is_digit(t[j]))
        j++;
    if (j < len && t[j] == '.') {
        for (digits = 0, j++; j < len && str_is_digit(t[j]); j++)
            digits++;
        if (digits == 0)
            return json_fail(v, ERR_INVALID, j, "malformed number");
    }
    if (j < len && (t[j] == 'e' || t[j] == 'E')) {
        j++;
        if (j < len && (t[j] == '+' || t[j] == '-'))
            j++;
        for (digits = 0; j < len && str_is_digit(t[j]); j++)
            digits++;
        if (digits == 0)
            return json_fail(v, ERR_INVALID, j, "malformed number");
    }
    *i = j;
    return 0;
}

static int json_literal(struct json_validator *v, size_t *i)
{
    static const char *const words[] = {"true", "false", "null"};

    for (size_t k = 0; k < 3; k++) {
        size_t n = strlen(words[k]);
        if (v->len - *i >= n && memcmp(v->t + *i, words[k], n) == 0) {
            *i += n;
            return 0;
        }
    }
    if (v->t[*i] == 't' || v->t[*i] == 'f' || v->t[*i] == 'n')
        return json_fail(v, ERR_INVALID, *i, "invalid literal");
    return json_unexpected(v, *i, "a value");
}

/* Reads the key opening at i of the object at the top of the stack and refuses a key the
 * object already has. */
static int json_key(struct json_validator *v, size_t *i)
{
    struct json_level *l = &v->lv[v->depth - 1];
    size_t at = *i;
    uint32_t hash;
    int rc;

    if (at >= v->len || v->t[at] != '"')
        return at >= v->len ? json_fail(v, ERR_INVALID, at, "unterminated object")
                            : json_unexpected(v, at, "a key");
    rc = json_string(v, i, &hash);
    if (rc != 0)
        return rc;
    for (size_t k = l->first_key; k < v->n_keys; k++) {
        if (v->keys[k].hash == hash && json_keys_equal(v->t, v->len, v->keys[k].at, at)) {
            char key[JSON_COMPONENT_MAX + 8];
            json_render_key(v->t, v->len, at, key, JSON_COMPONENT_MAX, 0);
            return json_fail(v, ERR_INVALID, at, "duplicate key %s", key);
        }
    }
    if (v->n_keys == JSON_OPEN_KEYS_MAX)
        return json_fail(v, ERR_LIMIT, at, "more than %d keys in open objects", JSON_OPEN_KEYS_MAX);
    v->keys[v->n_keys++] = (struct json_key){(uint32_t)at, hash};
    l->key = (uint32_t)at;
    *i = json_skip_ws(v->t, v->len, *i);
    if (*i >= v->len || v->t[*i] != ':')
        return *i >= v->len ? json_fail(v, ERR_INVALID, *i, "unterminated object")
                            : json_unexpected(v, *i, "':'");
    *i = json_skip_ws(v->t, v->len, *i + 1);
    return 0;
}

/* A new member or element of the container at the top: counted against its limit. */
static int json_member_begin(struct json_validator *v, size_t at)
{
    struct json_level *l = &v->lv[v->depth - 1];

    l->in_value = 0;
    if (l->count == v->lim.max_members)
        return json_fail(v, ERR_LIMIT, at, "more than %zu %s", v->lim.max_members,
                         l->is_object ? "members in an object" : "elements in an array");
    l->count++;
    return 0;
}

int json_validate(const char *text, size_t len, const struct json_limits *lim,
                  struct json_error *err)
{
    struct json_validator v;
    size_t i;
    int rc;

    v.t = text;
    v.len = len;
    v.lim = lim != NULL ? *lim : JSON_LIMITS_DEFAULT;
    if (v.lim.max_depth > JSON_DEPTH_MAX)
        v.lim.max_depth = JSON_DEPTH_MAX;
    v.err = err;
    v.depth = v.values = v.n_keys = 0;
    if (err != NULL) {
        err->offset = 0;
        err->text[0] = '\0';
    }
    if (len > JSON_LEN_MAX)
        return json_fail(&v, ERR_TOOBIG, 0, "document longer than %u bytes", JSON_LEN_MAX);

    i = json_skip_ws(text, len, 0);
    if (i == len)
        return json_fail(&v, ERR_INVALID, i, "no value");
    for (;;) {
        /* A value starts at i (whitespace skipped). */
        if (v.depth > 0)
            v.lv[v.depth - 1].in_value = 1;
        if (i >= len)
            return json_fail(&v, ERR_INVALID, i, "unexpected end, expected a value");
        if (v.values == v.lim.max_values)
            return json_fail(&v, ERR_LIMIT, i, "more than %zu values", v.lim.max_values);
        v.values++;
        char c = text[i];
        if (c == '{' || c == '[') {
            if (v.depth == v.lim.max_depth)
                return json_fail(&v, ERR_LIMIT, i, "nesting deeper than %zu", v.lim.max_depth);
            v.lv[v.depth++] =
                (struct json_level){(uint32_t)i, 0, 0, (uint32_t)v.n_keys, c == '{', 0};
            size_t open = i;
            i = json_skip_ws(text, len, i + 1);
            if (i < len && text[i] == (c == '{' ? '}' : ']')) {
                i++;
                v.depth--;
            } else if (i >= len) {
                return json_fail(&v, ERR_INVALID, open, "unterminated %s",
                                 c == '{' ? "object" : "array");
            } else {
                if ((rc = json_member_begin(&v, i)) != 0)
                    return rc;
                if (c == '{' && (rc = json_key(&v, &i)) != 0)
                    return rc;
                continue;
            }
        } else if (c == '"') {
            if ((rc = json_string(&v, &i, NULL)) != 0)
                return rc;
        } else if (c == '-' || str_is_digit(c)) {
            if ((rc = json_number(&v, &i)) != 0)
                return rc;
        } else if ((rc = json_literal(&v, &i)) != 0) {
            return rc;
        }

        /* After a value: close containers, or find the next member or element. */
        for (;;) {
            i = json_skip_ws(text, len, i);
            if (v.depth == 0) {
                if (i < len)
                    return json_fail(&v, ERR_INVALID, i, "data after the value");
                return 0;
            }
            struct json_level *l = &v.lv[v.depth - 1];
            char close = l->is_object ? '}' : ']';
            l->in_value = 0; /* what follows a member is the container's business */
            if (i >= len)
                return json_fail(&v, ERR_INVALID, l->start, "unterminated %s",
                                 l->is_object ? "object" : "array");
            if (text[i] == close) {
                i++;
                if (l->is_object)
                    v.n_keys = l->first_key;
                v.depth--;
                continue;
            }
            if (text[i] != ',')
                return json_unexpected(&v, i, l->is_object ? "',' or '}'" : "',' or ']'");
            size_t comma = i;
            i = json_skip_ws(text, len, i + 1);
            l->in_value = 0;
            if (i < len && text[i] == close)
                return json_fail(&v, ERR_INVALID, comma, "trailing comma");
            if ((rc = json_member_begin(&v, i)) != 0)
                return rc;
            if (l->is_object && (rc = json_key(&v, &i)) != 0)
                return rc;
            break;
        }
    }
}

enum json_kind json_kind_of(const char *text, size_t len)
{
    size_t i = json_skip_ws(text, len, 0);

    if (i == len)
        return JSON_NONE;
    switch (text[i]) {
    case '{':
        return JSON_OBJECT;
    case '[':
        return JSON_ARRAY;
    case '"':
        return JSON_STRING;
    case 't':
        return JSON_TRUE;
    case 'f':
        return JSON_FALSE;
    case 'n':
        return JSON_NULL;
    default:
        return JSON_NUMBER;
    }
}

/* ---- lookup ---- */

/* Offset just past the value starting at t[i] (len when it does not end). */
static size_t json_skip_value(const char *t, size_t len, size_t i)
{
    size_t depth = 0;

    if (i >= len)
        return len;
    if (t[i] == '"')
        return json_skip_string(t, len, i);
    if (t[i] != '{' && t[i] != '[') {
        while (i < len && t[i] != ',' && t[i] != '}' && t[i] != ']' && !json_is_ws(t[i]))
            i++;
        return i;
    }
    while (i < len) {
        char c = t[i];
        if (c == '"') {
            i = json_skip_string(t, len, i);
            continue;
        }
        if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            return i + 1;
        i++;
    }
    return len;
}

/* Whether the key opening at t[i] is seg once unescaped. */
static int json_key_is(const char *t, size_t len, size_t i, struct str seg)
{
    unsigned char buf[4];
    size_t k = 0, n;

    i++;
    while ((n = json_decode_next(t, len, &i, buf)) > 0) {
        if (seg.len - k < n || memcmp(seg.p + k, buf, n) != 0)
            return 0;
        k += n;
    }
    return k == seg.len;
}

/* The array index seg names: digits without a leading zero; -1 when it names none. */
static long json_index(struct str seg)
{
    long n = 0;

    if (seg.len == 0 || seg.len > 9 || (seg.p[0] == '0' && seg.len > 1))
        return -1;
    for (size_t k = 0; k < seg.len; k++) {
        if (!str_is_digit(seg.p[k]))
            return -1;
        n = n * 10 + (seg.p[k] - '0');
    }
    return n;
}

/* Offset of the value seg names in the container starting at t[i], or len. */
static size_t json_child(const char *t, size_t len, size_t i, struct str seg)
{
    int is_object = t[i] == '{';
    long want = is_object ? 0 : json_index(seg);

    if (want < 0)
        return len;
    for (long n = 0;; n++) {
        i = json_skip_ws(t, len, i + 1); /* past '{', '[' or ',' */
        if (i >= len || t[i] == '}' || t[i] == ']')
            return len;
        if (is_object) {
            if (t[i] != '"')
                return len;
            int match = json_key_is(t, len, i, seg);
            i = json_skip_ws(t, len, json_skip_string(t, len, i));
            if (i >= len || t[i] != ':')
                return len;
            i = json_skip_ws(t, len, i + 1);
            if (match)
                return i;
        } else if (n == want) {
            return i;
        }
        i = json_skip_ws(t, len, json_skip_value(t, len, i));
        if (i >= len || t[i] != ',')
            return len;
    }
}

int json_lookup(const char *text, size_t len, struct str path, char *shadow, struct str *out,
                enum json_kind *kind)
{
    size_t i = json_skip_ws(text, len, 0), s = 0;
    enum json_kind ty = JSON_NONE;

    *out = STR_ABSENT;
    if (kind != NULL)
        *kind = JSON_NONE;
    for (size_t k = 0; k <= path.len && path.len > 0; k++) {
        if (k < path.len && path.p[k] != '.')
            continue;
        if (k == s)
            return ERR_INVALID;
        if (i < len && (text[i] == '{' || text[i] == '['))
            i = json_child(text, len, i, str_make(path.p + s, k - s));
        else
            i = len;
        s = k + 1;
    }
    if (i >= len)
        return 0;
    ty = json_kind_of(text + i, len - i);
    if (kind != NULL)
        *kind = ty;
    if (ty == JSON_NULL)
        return 0;
    size_t end = json_skip_value(text, len, i);
    if (ty != JSON_STRING) {
        *out = str_make(text + i, end - i);
        return 0;
    }
    if (end - i < 2 || text[end - 1] != '"') /* unvalidated text: no closing quote */
        return 0;
    if (memchr(text + i + 1, '\\', end - i - 2) == NULL) {
        *out = str_make(text + i + 1, end - i - 2);
        return 0;
    }
    if (shadow == NULL)
        return ERR_LIMIT;
    unsigned char buf[4];
    size_t j = i + 1, n, w = i + 1;
    while ((n = json_decode_next(text, end - 1, &j, buf)) > 0) {
        memcpy(shadow + w, buf, n);
        w += n;
    }
    *out = str_make(shadow + i + 1, w - i - 1);
    return 0;
}
