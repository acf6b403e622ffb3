/* ArcSight CEF parser: one forward pass, memchr-driven, no allocation.
 *
 * Header: 7 '|'-terminated fields; "\|" and "\\" are the only escapes and a
 * '|' is a separator unless an odd run of backslashes precedes it (so
 * "\\|" is an escaped backslash followed by a real separator).
 *
 * Extension: every unescaped '=' is a candidate key terminator. It ends a
 * key when the key characters just before it start the extension or follow a
 * separator (SP or TAB); any other '=' is value text (URLs, base64 padding).
 * A key's value runs to the separator before the next key. Values and
 * header fields without a backslash are slices of the input; only those with
 * one are unescaped into the scratch buffer. Deliberate choices where peers
 * disagree are listed in parsers/README.md. */
#include "cef.h"

#include <string.h>

#include "cef_keys.h"
#include "errors.h"

/* Parse state shared by the helpers: the first error wins. */
struct cef_parser {
    struct cef_msg *out;
    struct scratch *scratch;
    const char *end;
    const char *next_bs; /* first backslash at or after the text last looked at, or end */
    int spaced_keys;     /* the sender writes "key =value" (DTEX): see cef_key_before */
    int rc;
};

static void cef_error(struct cef_parser *cp, int rc, const char *what)
{
    if (err_first(&cp->out->error, what))
        cp->rc = rc;
}

/* Key bytes, one table lookup per byte on the hot path: beats'
 * [A-Za-z0-9_.,[\]] (ArcSight "ad.Error_,Code", "ad.field[0]") plus '-' as
 * Elasticsearch accepts ("Some-Key"); a key starts with [A-Za-z0-9_]. Pairs
 * are separated by str_is_blank() bytes (SP, TAB). */
enum { CEF_KEY = 1, CEF_KEY_START = 2 };
#define KS (CEF_KEY | CEF_KEY_START)
/* clang-format off */
static const unsigned char cef_class[256] = {
    [','] = CEF_KEY, ['-'] = CEF_KEY, ['.'] = CEF_KEY, ['['] = CEF_KEY, [']'] = CEF_KEY,
    ['_'] = KS,
    ['0'] = KS, ['1'] = KS, ['2'] = KS, ['3'] = KS, ['4'] = KS, ['5'] = KS, ['6'] = KS,
    ['7'] = KS, ['8'] = KS, ['9'] = KS,
    ['A'] = KS, ['B'] = KS, ['C'] = KS, ['D'] = KS, ['E'] = KS, ['F'] = KS, ['G'] = KS,
    ['H'] = KS, ['I'] = KS, ['J'] = KS, ['K'] = KS, ['L'] = KS, ['M'] = KS, ['N'] = KS,
    ['O'] = KS, ['P'] = KS, ['Q'] = KS, ['R'] = KS, ['S'] = KS, ['T'] = KS, ['U'] = KS,
    ['V'] = KS, ['W'] = KS, ['X'] = KS, ['Y'] = KS, ['Z'] = KS,
    ['a'] = KS, ['b'] = KS, ['c'] = KS, ['d'] = KS, ['e'] = KS, ['f'] = KS, ['g'] = KS,
    ['h'] = KS, ['i'] = KS, ['j'] = KS, ['k'] = KS, ['l'] = KS, ['m'] = KS, ['n'] = KS,
    ['o'] = KS, ['p'] = KS, ['q'] = KS, ['r'] = KS, ['s'] = KS, ['t'] = KS, ['u'] = KS,
    ['v'] = KS, ['w'] = KS, ['x'] = KS, ['y'] = KS, ['z'] = KS,
};
/* clang-format on */
#undef KS

static int cef_is(char c, int class)
{
    return cef_class[(unsigned char)c] & class;
}

/* 1 when p is escaped: an odd run of backslashes precedes it. The walk back
 * stops at the first byte that is not a backslash, or at lo (the start of the
 * field or extension). A run is only walked from the byte right after it, so
 * each backslash is looked at once more at most: total work stays linear. */
static int cef_escaped(const char *lo, const char *p)
{
    const char *q = p;

    while (q > lo && q[-1] == '\\')
        q--;
    return (p - q) & 1;
}

/* Unescapes p[0..len) into the scratch buffer: header fields know "\|" and
 * "\\", extension values "\=", "\\", "\n" and "\r". Unknown escapes and a
 * trailing lone backslash stay verbatim. Text without a backslash is
 * returned as a slice of the input. */
static void cef_unescape(struct cef_parser *cp, struct str *out, const char *p, size_t len,
                         int in_ext)
{
    *out = str_make(p, len);
    /* Callers go through the text in input order, so one forward memchr per
     * backslash (not one per value) finds out whether this text has one. */
    if (cp->next_bs < p) {
        const char *next = memchr(p, '\\', (size_t)(cp->end - p));
        cp->next_bs = next != NULL ? next : cp->end;
    }
    const char *bs = cp->next_bs;
    if (bs >= p + len)
        return;
    /* No scratch at all is a scratch that is full (as syslog_parse treats it). */
    char *dst = cp->scratch != NULL ? scratch_reserve(cp->scratch, len) : NULL;
    if (dst == NULL) {
        cef_error(cp, ERR_LIMIT, "cef: scratch buffer too small, value left escaped");
        return;
    }
    const char *end = p + len;
    char *w = dst;
    while (bs != NULL) {
        memcpy(w, p, (size_t)(bs - p));
        w += bs - p;
        p = bs + 1;
        char c = p < end ? *p : '\0';
        if (c == '\\' || (in_ext ? c == '=' : c == '|')) {
            *w++ = c;
            p++;
        } else if (in_ext && (c == 'n' || c == 'r')) {
            *w++ = c == 'n' ? '\n' : '\r';
            p++;
        } else {
            *w++ = '\\';
        }
        bs = p < end ? memchr(p, '\\', (size_t)(end - p)) : NULL;
    }
    memcpy(w, p, (size_t)(end - p));
    w += end - p;
    /* Hand back what unescaping saved: this was the latest reservation. */
    cp->scratch->used -= len - (size_t)(w - dst);
    *out = str_make(dst, (size_t)(w - dst));
}

/* The next unescaped '|' in [p, end), or NULL. */
static const char *cef_field_end(const char *p, const char *end)
{
    const char *q = p;

    while (q < end && (q = memchr(q, '|', (size_t)(end - q))) != NULL) {
        if (!cef_escaped(p, q))
            return q;
        q++;
    }
    return NULL;
}

/* If the unescaped '=' at eq ends a key, stores the key's bounds and returns
 * 1. ext is where the extension starts (a key may begin there without a
 * separator in front). */
static int cef_key_before(const struct cef_parser *cp, const char *ext, const char *eq,
                          const char **key, const char **key_end)
{
    const char *e = eq;

    /* DTEX InTERCEPT writes "key =value": one space, and the value right
     * after the '='. Only for that vendor: elsewhere "signed in with =xyz" is
     * free text, and no dictionary can tell (DTEX's keys such as User_Name
     * are not CEF keys, while "in" and "out" are). "a = b" stays value text. */
    if (cp->spaced_keys && e - ext >= 2 && e[-1] == ' ' && cef_is(e[-2], CEF_KEY) &&
        eq + 1 < cp->end && eq[1] != ' ')
        e--;
    const char *s = e;
    while (s > ext && cef_is(s[-1], CEF_KEY))
        s--;
    if (s == e || !cef_is(*s, CEF_KEY_START) || (s != ext && !str_is_blank(s[-1])))
        return 0;
    *key = s;
    *key_end = e;
    return 1;
}

/* Appends a pair; trailing separators of the value are dropped (logstash,
 * ES, vrl; the spec would keep all but one). Past the table, the pair is only
 * counted. */
static void cef_add(struct cef_parser *cp, const char *key, const char *key_end, const char *val,
                    const char *val_end)
{
    struct cef_msg *m = cp->out;

    if (m->n_ext == CEF_MAX_EXT) {
        cef_error(cp, ERR_LIMIT, "cef: too many extension fields");
        m->n_dropped++;
        return;
    }
    while (val_end > val && str_is_blank(val_end[-1]))
        val_end--;
    struct cef_pair *pair = &m->ext[m->n_ext++];
    pair->key = str_make(key, (size_t)(key_end - key));
    cef_unescape(cp, &pair->value, val, (size_t)(val_end - val), 1);
}

static void cef_parse_ext(struct cef_parser *cp, const char *p, const char *end)
{
    while (p < end && str_is_blank(*p))
        p++;
    const char *ext = p, *key = NULL, *key_end = NULL, *val = NULL;
    const char *q = p;

    while (q < end && (q = memchr(q, '=', (size_t)(end - q))) != NULL) {
        const char *k, *k_end;
        if (!cef_escaped(ext, q) && cef_key_before(cp, ext, q, &k, &k_end)) {
            if (key != NULL) {
                cef_add(cp, key, key_end, val, k - 1);
            } else if (k != ext) {
                cef_error(cp, ERR_INVALID, "cef: extension text without a key");
            }
            key = k;
            key_end = k_end;
            val = q + 1;
        }
        q++;
    }
    if (key != NULL)
        cef_add(cp, key, key_end, val, end);
    else if (ext < end)
        cef_error(cp, ERR_INVALID, "cef: extension text without a key");
}

/* ASCII case only: every name in the key table, and DTEX, is ASCII. */
static int cef_eq_caseless(struct str a, struct str b)
{
    if (a.len != b.len)
        return 0;
    for (size_t i = 0; i < a.len; i++) {
        unsigned char x = (unsigned char)a.p[i], y = (unsigned char)b.p[i];
        if ((x >= 'A' && x <= 'Z' ? x | 0x20 : x) != (y >= 'A' && y <= 'Z' ? y | 0x20 : y))
            return 0;
    }
    return 1;
}

/* Version is an integer (0, 1) in the spec; "1.2" style is tolerated. */
static int cef_version_ok(struct str v)
{
    size_t i = 0;

    while (i < v.len && str_is_digit(v.p[i]))
        i++;
    if (i == 0)
        return 0;
    if (i < v.len && v.p[i] == '.') {
        size_t frac = ++i;
        while (i < v.len && str_is_digit(v.p[i]))
            i++;
        if (i == frac)
            return 0;
    }
    return i == v.len;
}

/* A truncated header's unterminated tail is salvaged as the extension when it
 * starts with "key=" (beats/ES do the same), otherwise as the next field. */
static int cef_tail_is_ext(const char *p, const char *end)
{
    const char *s = p;

    while (s < end && cef_is(*s, CEF_KEY))
        s++;
    return s > p && cef_is(*p, CEF_KEY_START) && s < end && *s == '=';
}

int cef_parse(const char *buf, size_t len, struct cef_msg *out, struct scratch *scratch)
{
    struct str *const fields[] = {&out->version,        &out->vendor,       &out->product,
                                  &out->device_version, &out->signature_id, &out->name,
                                  &out->severity};
    const size_t n_fields = sizeof(fields) / sizeof(fields[0]);
    const char *end = buf + str_trim_eol(buf, len);
    size_t i;

    /* next_bs = buf: nothing scanned for backslashes yet. */
    struct cef_parser cp = {out, scratch, end, buf, 0, 0};
    for (i = 0; i < n_fields; i++)
        *fields[i] = STR_ABSENT;
    out->n_ext = 0;
    out->n_dropped = 0;
    out->error = NULL;
    if (end - buf < 4 || memcmp(buf, "CEF:", 4) != 0) {
        cef_error(&cp, ERR_INVALID, "cef: missing CEF: prefix");
        return cp.rc;
    }
    /* A pass of its own: the other scans are memchr for '|', '=' or '\\', and
     * one byte loop looking for two bytes would be slower than this extra
     * vectorised memchr. */
    if (memchr(buf, '\n', (size_t)(end - buf)) != NULL)
        cef_error(&cp, ERR_INVALID, "cef: raw line feed inside the event");

    const char *p = buf + 4;
    for (i = 0; i < n_fields; i++) {
        const char *q = cef_field_end(p, end);
        if (q == NULL)
            break;
        cef_unescape(&cp, fields[i], p, (size_t)(q - p), 0);
        p = q + 1;
    }
    if (i < n_fields) {
        cef_error(&cp, ERR_INVALID, "cef: truncated header");
        if (p < end && !cef_tail_is_ext(p, end)) {
            cef_unescape(&cp, fields[i], p, (size_t)(end - p), 0);
            p = end;
        }
    }
    if (!cef_version_ok(out->version))
        cef_error(&cp, ERR_INVALID, "cef: version is not a number");
    cp.spaced_keys = cef_eq_caseless(out->vendor, STR_LIT("Dtex"));
    cef_parse_ext(&cp, p, end);
    return cp.rc;
}

long cef_find(const char *buf, size_t len)
{
    return str_find_marker(buf, len, "CEF:", 4);
}

/* Byte order of slices: memcmp, then the shorter first (as the generator sorts). */
static int cef_cmp(struct str a, struct str b)
{
    int c = memcmp(a.p, b.p, a.len < b.len ? a.len : b.len);

    if (c != 0)
        return c;
    return (a.len > b.len) - (a.len < b.len);
}

/* Binary search of the key table, by short name or (by_full) by full name. */
static const struct cef_key *cef_lookup(struct str name, int by_full)
{
    size_t lo = 0, hi = cef_keys_count;

    if (name.p == NULL)
        return NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct cef_key *k = by_full ? &cef_keys[cef_keys_by_full[mid]] : &cef_keys[mid];
        int c = cef_cmp(name, by_full ? k->full_name : k->short_name);
        if (c == 0)
            return k;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

struct str cef_full_name(struct str short_key)
{
    const struct cef_key *k = cef_lookup(short_key, 0);

    return k != NULL ? k->full_name : STR_ABSENT;
}

struct str cef_short_name(struct str full_key)
{
    const struct cef_key *k = cef_lookup(full_key, 1);

    return k != NULL ? k->short_name : STR_ABSENT;
}

struct str cef_get_pair(const struct cef_msg *m, struct str key, struct str alt)
{
    for (size_t i = m->n_ext; i-- > 0;) {
        struct str k = m->ext[i].key;
        if (str_eq(k, key) || (alt.p != NULL && str_eq(k, alt)))
            return m->ext[i].value;
    }
    return STR_ABSENT;
}

struct str cef_other_name(struct str key)
{
    struct str alt = cef_full_name(key);

    return str_is_absent(alt) ? cef_short_name(key) : alt;
}

struct str cef_key_caseless(struct str key)
{
    if (key.p == NULL)
        return STR_ABSENT;
    for (size_t i = 0; i < cef_keys_count; i++) {
        if (cef_eq_caseless(key, cef_keys[i].short_name))
            return cef_keys[i].short_name;
        if (cef_eq_caseless(key, cef_keys[i].full_name))
            return cef_keys[i].full_name;
    }
    return STR_ABSENT;
}

struct str cef_get(const struct cef_msg *m, struct str key)
{
    return cef_get_pair(m, key, cef_other_name(key));
}

/* Custom field families: a value key <prefix><N> and its label <prefix><N>Label,
 * by short or full name. N may exceed the spec's range (cs9, cfp15). */
#define CEF_CUSTOM(prefix, family)                                                                 \
    {                                                                                              \
        (prefix), sizeof(prefix) - 1, (family)                                                     \
    }
static const struct {
    const char *prefix;
    size_t len;
    int family;
} cef_custom[] = {
    CEF_CUSTOM("cs", 0),         CEF_CUSTOM("deviceCustomString", 0),
    CEF_CUSTOM("cn", 1),         CEF_CUSTOM("deviceCustomNumber", 1),
    CEF_CUSTOM("cfp", 2),        CEF_CUSTOM("deviceCustomFloatingPoint", 2),
    CEF_CUSTOM("c6a", 3),        CEF_CUSTOM("deviceCustomIPv6Address", 3),
    CEF_CUSTOM("flexString", 4), CEF_CUSTOM("deviceCustomDate", 5),
    CEF_CUSTOM("flexDate", 6),
};
#undef CEF_CUSTOM

/* Family of a custom field key (or -1), with its index digits and whether it
 * is the label. */
static int cef_custom_field(struct str key, struct str *index, int *is_label)
{
    for (size_t f = 0; f < sizeof(cef_custom) / sizeof(cef_custom[0]); f++) {
        size_t n = cef_custom[f].len, i = n;
        if (key.len <= n || memcmp(key.p, cef_custom[f].prefix, n) != 0)
            continue;
        while (i < key.len && str_is_digit(key.p[i]))
            i++;
        if (i == n)
            continue;
        *index = str_make(key.p + n, i - n);
        *is_label = i + 5 == key.len && memcmp(key.p + i, "Label", 5) == 0;
        if (i == key.len || *is_label)
            return cef_custom[f].family;
    }
    return -1;
}

struct str cef_get_label(const struct cef_msg *m, struct str label)
{
    struct str index = STR_ABSENT, index2;
    int family = -1, is_label;
    size_t i;

    if (str_is_absent(label))
        return STR_ABSENT;
    /* Two linear passes, as the sender controls every pair: the last label
     * whose value is label names the field, then its last value wins. */
    for (i = m->n_ext; family < 0 && i-- > 0;) {
        if (str_eq(m->ext[i].value, label)) {
            int f = cef_custom_field(m->ext[i].key, &index, &is_label);
            family = f >= 0 && is_label ? f : -1;
        }
    }
    for (i = m->n_ext; family >= 0 && i-- > 0;) {
        if (cef_custom_field(m->ext[i].key, &index2, &is_label) == family && !is_label &&
            str_eq(index, index2))
            return m->ext[i].value;
    }
    return STR_ABSENT;
}
