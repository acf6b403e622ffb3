/* IBM LEEF 1.0 / 2.0 parser: header fields split at '|' (LEEF defines no
 * escaping), then delimiter-separated key=value attributes split at their
 * first '='. Everything is a slice of the input. Deliberate choices where
 * peers disagree are listed in parsers/README.md. */
#include "leef.h"

#include <string.h>

#include "errors.h"

static int leef_fail(struct leef_msg *m, int rc, const char *what)
{
    err_first(&m->error, what);
    return rc;
}

static int leef_is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || str_is_digit(c);
}

/* Major version 1 or 2 ("1.0", "2.0", also "1" or "2.1"), else 0. */
static int leef_version(struct str v)
{
    size_t i = 1;

    if (v.len == 0 || (v.p[0] != '1' && v.p[0] != '2'))
        return 0;
    if (v.len > 1) {
        if (v.p[1] != '.' || v.len == 2)
            return 0;
        for (i = 2; i < v.len; i++)
            if (!str_is_digit(v.p[i]))
                return 0;
    }
    return v.p[0] - '0';
}

enum leef_delim_kind {
    LEEF_DELIM_BAD,       /* looks like a delimiter spec but is not a valid one */
    LEEF_DELIM_OK,        /* *c holds the delimiter */
    LEEF_DELIM_ATTRIBUTE, /* not a delimiter field: the sender omitted it */
};

/* Decodes LEEF 2.0's DelimiterCharacter field: one character, or x/0x and
 * 1-4 hex digits as IBM allows ("x5E", "0x09", "0x9"); empty means TAB. The
 * value must be a 7-bit character: we split bytes, and a UTF-8 sender would
 * encode anything above 0x7F in several. */
static enum leef_delim_kind leef_delimiter(struct str f, char *c)
{
    if (f.len == 0) {
        *c = '\t';
        return LEEF_DELIM_OK;
    }
    if (memchr(f.p, '=', f.len) != NULL)
        return LEEF_DELIM_ATTRIBUTE;
    if (f.len == 1) {
        *c = f.p[0];
        return LEEF_DELIM_OK;
    }
    size_t i = f.p[0] == '0' ? 1 : 0;
    if (f.p[i] != 'x' && f.p[i] != 'X')
        return LEEF_DELIM_BAD;
    i++;
    if (f.len == i || f.len - i > 4)
        return LEEF_DELIM_BAD;
    unsigned v = 0;
    for (; i < f.len; i++) {
        int h = str_hex_value(f.p[i]);
        if (h < 0)
            return LEEF_DELIM_BAD;
        v = v * 16 + (unsigned)h;
    }
    if (v == 0 || v > 0x7f)
        return LEEF_DELIM_BAD;
    *c = (char)v;
    return LEEF_DELIM_OK;
}

/* 1 when [p, end) starts with "key=" (IBM keys are alphanumeric; PAN-OS and
 * CyberArk also use '_', '.', '-'). Stops at the first non-key byte, so
 * scanning after every '|' stays linear. */
static int leef_key_follows(const char *p, const char *end)
{
    const char *s = p;

    while (s < end && (leef_is_alnum(*s) || *s == '_' || *s == '.' || *s == '-'))
        s++;
    return s > p && s < end && *s == '=';
}

static struct str leef_trim(const char *p, const char *end)
{
    while (p < end && str_is_blank(*p))
        p++;
    while (end > p && str_is_blank(end[-1]))
        end--;
    return str_make(p, (size_t)(end - p));
}

/* Splits one attribute at its first '='; empty tokens are skipped, tokens
 * without a key count as junk. Returns -1 when the table is full. */
static int leef_add(struct leef_msg *m, const char *p, const char *end, size_t *junk)
{
    struct str tok = leef_trim(p, end);

    if (tok.len == 0)
        return 0;
    const char *eq = memchr(tok.p, '=', tok.len);
    struct str key = eq != NULL ? leef_trim(tok.p, eq) : STR_ABSENT;
    if (key.len == 0) {
        (*junk)++;
        return 0;
    }
    if (m->n_ext == LEEF_MAX_EXT) {
        leef_fail(m, ERR_LIMIT, "leef: too many attributes");
        return -1;
    }
    m->ext[m->n_ext].key = key;
    m->ext[m->n_ext].value = leef_trim(eq + 1, tok.p + tok.len);
    m->n_ext++;
    return 0;
}

static const char *leef_next(const char *p, const char *end, char c)
{
    const char *q = memchr(p, c, (size_t)(end - p));

    return q != NULL ? q : end;
}

/* Attributes in [p, end) separated by delim. With pipes (LEEF 1.0), a '|'
 * followed by "key=" also separates: PAN-OS uses '|' throughout and CyberArk
 * PTA mixes '|' and TAB. The next delimiter and '|' positions are cached so
 * every byte is scanned a bounded number of times. */
static int leef_parse_attrs(struct leef_msg *m, const char *p, const char *end, int pipes)
{
    const char *delim = leef_next(p, end, m->delim);
    const char *pipe = pipes ? leef_next(p, end, '|') : end;
    int had_delim = delim < end, split_at_pipe = 0;
    size_t junk = 0;

    while (p < end) {
        if (delim < p)
            delim = leef_next(p, end, m->delim);
        while (pipe < delim) {
            if (pipe < p)
                pipe = leef_next(p, end, '|');
            else if (leef_key_follows(pipe + 1, end))
                break;
            else
                pipe = leef_next(pipe + 1, end, '|');
        }
        const char *tok_end = pipe < delim ? pipe : delim;
        split_at_pipe |= tok_end == pipe && tok_end < end;
        if (leef_add(m, p, tok_end, &junk) < 0)
            return ERR_LIMIT;
        if (tok_end == end)
            break;
        p = tok_end + 1;
    }
    /* A 1.0 sender that separated with '|' only is reported as such. */
    if (split_at_pipe && !had_delim)
        m->delim = '|';
    if (m->n_ext == 0 && junk > 0)
        return leef_fail(m, ERR_INVALID, "leef: attributes are not key=value");
    return 0;
}

int leef_parse(const char *buf, size_t len, struct leef_msg *out)
{
    struct str *const fields[] = {&out->version, &out->vendor, &out->product, &out->product_version,
                                  &out->event_id};
    const size_t n_fields = sizeof(fields) / sizeof(fields[0]);
    /* A frame terminator that reached us is not part of the event. */
    const char *end = buf + str_trim_eol(buf, len);
    size_t i;

    for (i = 0; i < n_fields; i++)
        *fields[i] = STR_ABSENT;
    out->delimiter = STR_ABSENT;
    out->delim = '\t';
    out->n_ext = 0;
    out->error = NULL;
    if (end - buf < 5 || memcmp(buf, "LEEF:", 5) != 0)
        return leef_fail(out, ERR_INVALID, "leef: missing LEEF: prefix");

    const char *p = buf + 5, *q = p;
    for (i = 0; i < n_fields && q < end; i++) {
        q = leef_next(p, end, '|');
        *fields[i] = str_make(p, (size_t)(q - p));
        p = q < end ? q + 1 : end;
    }
    /* The event id may end the message without a '|' (header-only events). */
    if (i < n_fields)
        return leef_fail(out, ERR_INVALID, "leef: truncated header");
    int version = leef_version(out->version);
    if (version == 0)
        return leef_fail(out, ERR_INVALID, "leef: unsupported version");
    if (version == 2 && q < end) {
        q = leef_next(p, end, '|');
        struct str f = str_make(p, (size_t)(q - p));
        switch (leef_delimiter(f, &out->delim)) {
        case LEEF_DELIM_BAD:
            return leef_fail(out, ERR_INVALID, "leef: bad delimiter field");
        case LEEF_DELIM_OK:
            out->delimiter = f;
            p = q < end ? q + 1 : end;
            break;
        case LEEF_DELIM_ATTRIBUTE:
            break;
        }
    }
    return leef_parse_attrs(out, p, end, version == 1);
}

long leef_find(const char *buf, size_t len)
{
    return str_find_marker(buf, len, "LEEF:", 5);
}

struct str leef_get(const struct leef_msg *m, struct str key)
{
    for (size_t i = 0; i < m->n_ext; i++)
        if (str_eq(m->ext[i].key, key))
            return m->ext[i].value;
    return STR_ABSENT;
}
