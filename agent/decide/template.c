#include "template.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/escape.h"
#include "errors.h"
#include "json.h"

/* One placeholder: it follows the literal text lit[previous lit_end..lit_end). */
struct template_part {
    uint32_t lit_end;
    uint32_t src_end; /* offset in the template text just past its "}}" */
    uint16_t var;     /* enum template_var */
    uint16_t field;   /* index into fields when var is TEMPLATE_FIELD */
};

struct template
{
    enum template_mode mode;
    char *src; /* the template text, copied: the field names point into it */
    char *lit; /* the literal text, placeholders taken out */
    size_t lit_len;
    struct template_part *parts;
    size_t n_parts;
    struct str *fields;
    size_t n_fields;
    unsigned uses; /* bit v: a placeholder of var v */
};

static const char *const template_names[TEMPLATE_VARS] = {
    "rule", "user",     "email",       "priority", "event",   "mapping", "policy",
    "key",  "received", "approve_url", "deny_url", "expires", "field",
};

/* JSON mode's lexical state over the literal text: enough to tell whether a placeholder is
 * in a string value, outside any escape. The structure itself is json_validate's job. */
struct template_lex {
    int in_string, in_key, key_next;
    int esc_letter; /* after a backslash, before its letter */
    int hex;        /* hex digits of a \u escape still to come */
    size_t depth;
    uint64_t object[JSON_DEPTH_MAX / 64]; /* bit per level: an object (1) or an array */
};

const char *template_var_name(enum template_var v)
{
    return (unsigned)v < TEMPLATE_VARS ? template_names[v] : NULL;
}

void template_free(struct template *t)
{
    if (t == NULL)
        return;
    free(t->src);
    free(t->lit);
    free(t->parts);
    free(t->fields);
    free(t);
}

enum template_mode template_mode_of(const struct template *t)
{
    return t->mode;
}

int template_uses(const struct template *t, enum template_var v)
{
    return (unsigned)v < TEMPLATE_VARS && (t->uses >> v & 1u);
}

size_t template_n_fields(const struct template *t)
{
    return t->n_fields;
}

struct str template_field(const struct template *t, size_t i)
{
    return i < t->n_fields ? t->fields[i] : STR_ABSENT;
}

size_t template_render_max(const struct template *t)
{
    /* JSON: 6 bytes per value byte (\u00XX); text: 3 (U+FFFD for a byte of invalid UTF-8). */
    size_t per = t->mode == TEMPLATE_JSON ? ESCAPE_MAX_EXPANSION : 3;

    return t->lit_len + t->n_parts * TEMPLATE_VALUE_MAX * per;
}

static int template_fail(char *err, size_t err_cap, size_t offset, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (err == NULL || err_cap == 0)
        return ERR_INVALID;
    n = snprintf(err, err_cap, "at offset %zu: ", offset);
    if (n >= 0 && (size_t)n < err_cap) {
        va_start(ap, fmt);
        vsnprintf(err + n, err_cap - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return ERR_INVALID;
}

/* A byte for an error text: 'c' when printable ASCII, else 0xHH. */
static const char *template_show(unsigned char c, char buf[8])
{
    if (c > 0x20 && c < 0x7f)
        snprintf(buf, 8, "'%c'", c);
    else
        snprintf(buf, 8, "0x%02x", c);
    return buf;
}

static int template_is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static size_t template_skip_blanks(const char *text, size_t len, size_t i)
{
    while (i < len && str_is_blank(text[i]))
        i++;
    return i;
}

/* The code point of a C1 control (U+0080..U+009F) or U+2028/U+2029 in the valid n-byte
 * sequence s, else 0: characters that terminals and mail readers act on. */
static uint32_t template_wide_control(const unsigned char *s, size_t n)
{
    if (n == 2 && s[0] == 0xC2 && s[1] < 0xA0)
        return s[1];
    if (n == 3 && s[0] == 0xE2 && s[1] == 0x80 && (s[2] == 0xA8 || s[2] == 0xA9))
        return 0x2000 | (s[2] & 0x3Fu);
    return 0;
}

/* Checks the literal character at text[i] (n bytes) for the mode and feeds JSON's lexer. */
static int template_literal(struct template_lex *lx, enum template_mode mode, const char *text,
                            size_t i, size_t n, char *err, size_t err_cap)
{
    unsigned char c = (unsigned char)text[i];
    char shown[8];

    if (mode == TEMPLATE_JSON) {
        if (lx->in_string) {
            if (lx->esc_letter) {
                lx->esc_letter = 0;
                lx->hex = c == 'u' ? 4 : 0;
            } else if (lx->hex > 0) {
                lx->hex--;
            } else if (c == '\\') {
                lx->esc_letter = 1;
            } else if (c == '"') {
                lx->in_string = 0;
            }
            return 0;
        }
        switch (c) {
        case '{':
        case '[':
            if (lx->depth == JSON_DEPTH_MAX)
                return template_fail(err, err_cap, i, "JSON nested deeper than %d", JSON_DEPTH_MAX);
            if (c == '{')
                lx->object[lx->depth / 64] |= (uint64_t)1 << (lx->depth % 64);
            else
                lx->object[lx->depth / 64] &= ~((uint64_t)1 << (lx->depth % 64));
            lx->depth++;
            lx->key_next = c == '{';
            break;
        case '}':
        case ']':
            if (lx->depth > 0) /* else json_validate reports it */
                lx->depth--;
            lx->key_next = 0;
            break;
        case ',':
            lx->key_next =
                lx->depth > 0 && (lx->object[(lx->depth - 1) / 64] >> ((lx->depth - 1) % 64) & 1);
            break;
        case '"':
            lx->in_string = 1;
            lx->in_key = lx->key_next;
            lx->key_next = 0;
            break;
        default:
            break;
        }
        return 0;
    }
    if (n == 1 && (c < 0x20 || c == 0x7f) && !(mode == TEMPLATE_TEXT && (c == '\n' || c == '\t')))
        return template_fail(err, err_cap, i, "control character %s in a %s template",
                             template_show(c, shown), mode == TEMPLATE_TEXT ? "text" : "header");
    if (n == 2 && template_wide_control((const unsigned char *)text + i, n) != 0)
        return template_fail(err, err_cap, i, "C1 control character U+%04X in a template",
                             (unsigned)template_wide_control((const unsigned char *)text + i, n));
    return 0;
}

/* The quote around a field name at text[i]: '"', or in a JSON template
 * also '\\"' (a placeholder sits in a JSON string, where a quote is
 * escaped: a body written as JSON in a policy file serialises to that).
 * Its length, or 0. */
static size_t template_quote(const char *text, size_t len, size_t i, int json)
{
    if (i < len && text[i] == '"')
        return 1;
    if (json && i + 1 < len && text[i] == '\\' && text[i + 1] == '"')
        return 2;
    return 0;
}

/* Reads the placeholder that starts at text[at] ("{{") into *part and sets *end past it.
 * Field names are added to t->fields. */
static int template_placeholder(struct template *t, const char *text, size_t len, size_t at,
                                int json, size_t *end, struct template_part *part, char *err,
                                size_t err_cap)
{
    size_t i = template_skip_blanks(text, len, at + 2), name_at = i;
    int var = -1;
    char shown[8];

    while (i < len && template_is_name_char(text[i]))
        i++;
    if (i == name_at) {
        if (i + 1 < len && text[i] == '}' && text[i + 1] == '}')
            return template_fail(err, err_cap, at, "empty name in {{}}");
        if (i >= len)
            return template_fail(err, err_cap, at, "unclosed {{");
        return template_fail(err, err_cap, i, "unexpected %s after {{",
                             template_show((unsigned char)text[i], shown));
    }
    for (int v = 0; v < TEMPLATE_VARS; v++) {
        if (strlen(template_names[v]) == i - name_at &&
            memcmp(template_names[v], text + name_at, i - name_at) == 0)
            var = v;
    }
    if (var < 0)
        return template_fail(err, err_cap, name_at, "unknown name \"%.*s\"%s",
                             (int)(i - name_at > 32 ? 32 : i - name_at), text + name_at,
                             i - name_at > 32 ? "..." : "");
    i = template_skip_blanks(text, len, i);
    part->var = (uint16_t)var;
    part->field = 0;
    if (var == TEMPLATE_FIELD) {
        size_t quote = i, name, q;
        struct str f;

        if (i >= len)
            return template_fail(err, err_cap, at, "unclosed {{");
        q = template_quote(text, len, i, json);
        if (q == 0)
            return template_fail(err, err_cap, i,
                                 "field needs a quoted name, as {{field \"cef.ext.src\"}}");
        i += q;
        name = i;
        while (i < len && template_quote(text, len, i, json) != q) {
            unsigned char c = (unsigned char)text[i];
            if (c <= 0x20 || c >= 0x7f || c == '\'' || c == '"' || c == '\\')
                return template_fail(err, err_cap, i,
                                     "%s in a field name (printable ASCII without spaces or "
                                     "quotes)",
                                     template_show(c, shown));
            i++;
        }
        if (i >= len)
            return template_fail(err, err_cap, quote, "unclosed field name");
        if (i == name)
            return template_fail(err, err_cap, quote, "empty field name");
        if (i - name > TEMPLATE_FIELD_NAME_MAX)
            return template_fail(err, err_cap, name, "field name longer than %d bytes",
                                 TEMPLATE_FIELD_NAME_MAX);
        /* t->src is a copy of text: the name is kept as a slice of it. */
        f = str_make(t->src + name, i - name);
        while (part->field < t->n_fields && !str_eq(t->fields[part->field], f))
            part->field++;
        if (part->field == t->n_fields)
            t->fields[t->n_fields++] = f;
        i = template_skip_blanks(text, len, i + q);
    }
    if (i + 1 >= len)
        return template_fail(err, err_cap, at, "unclosed {{");
    if (text[i] != '}' || text[i + 1] != '}')
        return template_fail(err, err_cap, i, "unexpected %s in {{%s}}",
                             template_show((unsigned char)text[i], shown), template_names[var]);
    *end = i + 2;
    return 0;
}

/* The offset in the template text of the byte at lit[off]. */
static size_t template_src_offset(const struct template *t, size_t off)
{
    size_t i = t->n_parts;

    while (i > 0 && t->parts[i - 1].lit_end > off)
        i--;
    return i == 0 ? off : t->parts[i - 1].src_end + (off - t->parts[i - 1].lit_end);
}

/* A JSON template: the literal text must be a document (the values only ever add string
 * contents), and one rendered with hostile values must be one too. */
static int template_check_json(const struct template *t, char *err, size_t err_cap)
{
    static const char sample[] = "\"},\\u0022\x01\n\x7f\xc2\x85\xe2\x80\xa8\xff\xc3{{x}}";
    struct json_error jerr;
    struct template_values v;
    const char *what, *cut;
    size_t cap, len = 0;
    char *buf;
    int rc;

    if (json_validate(t->lit, t->lit_len, NULL, &jerr) != 0) {
        /* jerr.text is "json: what at byte N in $path", N in the literal text only. */
        what = jerr.text;
        cut = strstr(what, " at byte ");
        if (cut != NULL) {
            const char *in = strstr(cut, " in ");
            return template_fail(err, err_cap, template_src_offset(t, jerr.offset),
                                 "not valid JSON: %.*s%s", (int)(cut - what), what,
                                 in != NULL ? in : "");
        }
        return template_fail(err, err_cap, template_src_offset(t, jerr.offset),
                             "not valid JSON: %s", what);
    }
    memset(&v, 0, sizeof(v));
    for (int i = 0; i < TEMPLATE_VARS; i++)
        v.vars[i] = STR_LIT(sample);
    v.field = NULL;
    cap = t->lit_len + t->n_parts * (sizeof(sample) - 1) * ESCAPE_MAX_EXPANSION;
    buf = malloc(cap > 0 ? cap : 1);
    if (buf == NULL)
        return ERR_NOMEM;
    rc = template_render(t, &v, buf, cap, &len);
    if (rc == 0 && json_validate(buf, len, NULL, &jerr) != 0)
        rc = ERR_INVALID;
    free(buf);
    if (rc != 0) /* the lexer let a placeholder through where a value can break out */
        return template_fail(err, err_cap, 0, "internal: rendered sample is not valid JSON");
    return 0;
}

int template_compile(const char *text, size_t len, enum template_mode mode, struct template **out,
                     char *err, size_t err_cap)
{
    struct template_lex lx;
    struct template *t = NULL;
    size_t most, i = 0;
    int rc = ERR_NOMEM;
    char shown[8];

    *out = NULL;
    if (err != NULL && err_cap > 0)
        err[0] = '\0';
    if (mode != TEMPLATE_JSON && mode != TEMPLATE_HEADER && mode != TEMPLATE_TEXT)
        return template_fail(err, err_cap, 0, "unknown template mode");
    if (len > TEMPLATE_LEN_MAX)
        return template_fail(err, err_cap, TEMPLATE_LEN_MAX, "template longer than %d bytes",
                             TEMPLATE_LEN_MAX);
    /* The shortest placeholder, {{key}}, takes 7 bytes. */
    most = len / 7 + 1;
    if (most > TEMPLATE_PLACEHOLDERS_MAX)
        most = TEMPLATE_PLACEHOLDERS_MAX;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        goto out;
    t->mode = mode;
    t->src = malloc(len > 0 ? len : 1);
    t->lit = malloc(len > 0 ? len : 1);
    t->parts = calloc(most, sizeof(*t->parts));
    t->fields = calloc(most, sizeof(*t->fields));
    if (t->src == NULL || t->lit == NULL || t->parts == NULL || t->fields == NULL)
        goto out;
    if (len > 0)
        memcpy(t->src, text, len);
    memset(&lx, 0, sizeof(lx));
    while (i < len) {
        unsigned char c = (unsigned char)text[i];
        size_t n = 1;

        if (c == '{' && i + 1 < len && text[i + 1] == '{') {
            struct template_part part;
            size_t end = 0;

            rc = ERR_INVALID;
            if (t->n_parts == most) {
                template_fail(err, err_cap, i, "more than %d placeholders",
                              TEMPLATE_PLACEHOLDERS_MAX);
                goto out;
            }
            if (template_placeholder(t, text, len, i, mode == TEMPLATE_JSON, &end, &part, err,
                                     err_cap) != 0)
                goto out;
            if (mode == TEMPLATE_JSON) {
                const char *why = !lx.in_string                 ? "must be inside a JSON string"
                                  : lx.in_key                   ? "may not be in an object key"
                                  : lx.esc_letter || lx.hex > 0 ? "may not be inside a \\ escape"
                                                                : NULL;
                if (why != NULL) {
                    if (part.var == TEMPLATE_FIELD)
                        template_fail(err, err_cap, i, "{{field \"%.*s\"}} %s",
                                      (int)t->fields[part.field].len, t->fields[part.field].p, why);
                    else
                        template_fail(err, err_cap, i, "{{%s}} %s", template_names[part.var], why);
                    goto out;
                }
            }
            part.lit_end = (uint32_t)t->lit_len;
            part.src_end = (uint32_t)end;
            t->parts[t->n_parts++] = part;
            t->uses |= 1u << part.var;
            i = end;
            continue;
        }
        if (c >= 0x80) {
            n = utf8_sequence_len((const unsigned char *)text + i, len - i);
            if (n == 0) {
                rc = template_fail(err, err_cap, i, "invalid UTF-8 byte %s",
                                   template_show(c, shown));
                goto out;
            }
        }
        rc = template_literal(&lx, mode, text, i, n, err, err_cap);
        if (rc != 0)
            goto out;
        memcpy(t->lit + t->lit_len, text + i, n);
        t->lit_len += n;
        i += n;
    }
    rc = mode == TEMPLATE_JSON ? template_check_json(t, err, err_cap) : 0;
    if (rc == 0) {
        *out = t; /* transferred */
        t = NULL;
    }
out:
    if (rc == ERR_NOMEM && err != NULL && err_cap > 0)
        snprintf(err, err_cap, "out of memory");
    template_free(t);
    return rc;
}

/* The first TEMPLATE_VALUE_MAX bytes of s, backed up to the start of a UTF-8 sequence. */
static struct str template_cap_value(struct str s)
{
    size_t n = TEMPLATE_VALUE_MAX, back = 0;

    if (s.p == NULL)
        return str_make("", 0);
    if (s.len <= n)
        return s;
    while (back < 3 && ((unsigned char)s.p[n - back] & 0xC0) == 0x80)
        back++;
    if (back == 3 && ((unsigned char)s.p[n - back] & 0xC0) == 0x80)
        back = 0; /* not UTF-8 there: any cut will do */
    return str_make(s.p, n - back);
}

/* Writes s sanitized for a header (text == 0) or a text body into buf[*pos..cap). */
static int template_put_plain(struct str s, int text, char *buf, size_t cap, size_t *pos)
{
    const unsigned char *p = (const unsigned char *)s.p;
    size_t i = 0, at = *pos;

    while (i < s.len) {
        size_t n = p[i] < 0x80 ? 1 : utf8_sequence_len(p + i, s.len - i);

        if (n == 0) { /* invalid UTF-8: U+FFFD */
            if (cap - at < 3)
                return ERR_TOOBIG;
            memcpy(buf + at, "\xef\xbf\xbd", 3);
            at += 3;
            i++;
            continue;
        }
        /* A control character becomes one space. */
        int space = (n == 1 && (p[i] < 0x20 || p[i] == 0x7f) &&
                     !(text && (p[i] == '\n' || p[i] == '\t'))) ||
                    template_wide_control(p + i, n) != 0;

        if (cap - at < (space ? 1 : n))
            return ERR_TOOBIG;
        if (space) {
            buf[at++] = ' ';
        } else {
            memcpy(buf + at, p + i, n);
            at += n;
        }
        i += n;
    }
    *pos = at;
    return 0;
}

/* Writes s as JSON string contents into buf[*pos..cap). */
static int template_put_json(struct str s, char *buf, size_t cap, size_t *pos)
{
    char tmp[TEMPLATE_VALUE_MAX * ESCAPE_MAX_EXPANSION];
    size_t n;

    /* escape_text stops early when its room runs out without saying so: with room for the
     * worst case it cannot, so a value that might not fit is escaped aside first. */
    if (cap - *pos >= s.len * ESCAPE_MAX_EXPANSION) {
        *pos += escape_text(buf + *pos, cap - *pos, s.p, s.len, ESCAPE_JSON);
        return 0;
    }
    n = escape_text(tmp, sizeof(tmp), s.p, s.len, ESCAPE_JSON);
    if (cap - *pos < n)
        return ERR_TOOBIG;
    memcpy(buf + *pos, tmp, n);
    *pos += n;
    return 0;
}

int template_render(const struct template *t, const struct template_values *v, char *buf,
                    size_t cap, size_t *len)
{
    size_t pos = 0, lit = 0;
    int rc;

    *len = 0;
    for (size_t i = 0; i <= t->n_parts; i++) {
        size_t lit_end = i < t->n_parts ? t->parts[i].lit_end : t->lit_len;
        struct str s = STR_ABSENT;

        if (cap - pos < lit_end - lit)
            return ERR_TOOBIG;
        memcpy(buf + pos, t->lit + lit, lit_end - lit);
        pos += lit_end - lit;
        lit = lit_end;
        if (i == t->n_parts)
            break;
        if (v != NULL && t->parts[i].var != TEMPLATE_FIELD)
            s = v->vars[t->parts[i].var];
        else if (v != NULL && v->field != NULL)
            s = v->field(v->arg, t->fields[t->parts[i].field]);
        s = template_cap_value(s);
        if (t->mode == TEMPLATE_JSON)
            rc = template_put_json(s, buf, cap, &pos);
        else
            rc = template_put_plain(s, t->mode == TEMPLATE_TEXT, buf, cap, &pos);
        if (rc != 0)
            return rc;
    }
    *len = pos;
    return 0;
}
