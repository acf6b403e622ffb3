/* Fuzz target: template_compile and template_render. Byte 0 picks the mode (bits 0-1,
 * % 3: JSON, HEADER, TEXT) and how to render: bit 2, into a buffer of ((b >> 3) & 15) * 61
 * bytes as well as into one of template_render_max; bit 6, with the words of the template
 * text as the values; bit 7, without a field callback. The rest is split at each 0xFF byte
 * (never part of UTF-8, so never in a template that compiles): the template text, then the
 * values of TEMPLATE_RULE... in order, then the field values (a field's value is chosen by
 * its name's first byte); a value missing is absent. Asserts the contract: a failed
 * compile is ERR_INVALID with "at offset N: ..." (or ERR_NOMEM); a compiled template lists
 * valid field names and renders into template_render_max bytes an output that is, whatever
 * the values,
 *   JSON:   one valid JSON document (parsers/json.h, strict);
 *   HEADER: valid UTF-8 without any control character (CR, LF, NUL, TAB, DEL, C1...);
 *   TEXT:   valid UTF-8 without a control character other than LF and TAB.
 * A smaller buffer gives ERR_TOOBIG or the same output. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/escape.h"
#include "decide/template.h"
#include "errors.h"
#include "json.h"

#define FUZZ_PIECES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_fields {
    struct str values[FUZZ_PIECES];
    size_t n;
};

static void check(int ok)
{
    if (!ok)
        abort();
}

static struct str fuzz_field(void *arg, struct str name)
{
    struct fuzz_fields *f = arg;

    check(name.len > 0);
    if (f->n == 0)
        return STR_ABSENT;
    return f->values[(unsigned char)name.p[0] % f->n];
}

/* The values as the words of the template text itself (pieces[1..]): a value equal to a
 * key the text holds is what a placeholder in a key would turn into a duplicate key. */
static size_t fuzz_words(struct str text, struct str *pieces, size_t max)
{
    size_t n = 1, i = 0;

    while (i < text.len && n < max) {
        size_t start = i;
        while (i < text.len && (unsigned char)text.p[i] > 0x20 && text.p[i] != '"' &&
               text.p[i] != '{' && text.p[i] != '}' && text.p[i] != ':' && text.p[i] != ',')
            i++;
        if (i > start)
            pieces[n++] = str_make(text.p + start, i - start);
        else
            i++;
    }
    return n;
}

static void check_output(enum template_mode mode, const char *out, size_t len)
{
    const unsigned char *p = (const unsigned char *)out;
    size_t i = 0;

    if (mode == TEMPLATE_JSON) {
        check(json_validate(out, len, NULL, NULL) == 0);
        return;
    }
    while (i < len) {
        size_t n = utf8_sequence_len(p + i, len - i);

        check(n > 0);
        if (n == 1)
            check((p[i] >= 0x20 && p[i] != 0x7f) ||
                  (mode == TEMPLATE_TEXT && (p[i] == '\n' || p[i] == '\t')));
        if (n == 2)
            check(!(p[i] == 0xC2 && p[i + 1] < 0xA0));
        i += n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char out[TEMPLATE_LEN_MAX + TEMPLATE_PLACEHOLDERS_MAX * TEMPLATE_VALUE_MAX * 6];
    static char small[15 * 61];
    struct str pieces[FUZZ_PIECES];
    struct template_values v;
    struct fuzz_fields fields;
    struct template *t = NULL;
    enum template_mode mode;
    char err[TEMPLATE_ERROR_MAX];
    size_t n = 0, start = 1, len = 0, small_len = 0, max;
    int rc;

    if (size < 1)
        return 0;
    mode = (enum template_mode)((data[0] & 3) % 3);
    for (size_t i = 1; i <= size && n < FUZZ_PIECES; i++) {
        if (i == size || data[i] == 0xFF) {
            pieces[n++] = str_make((const char *)data + start, i - start);
            start = i + 1;
        }
    }
    memset(&v, 0, sizeof(v));
    memset(&fields, 0, sizeof(fields));
    if (data[0] & 0x40)
        n = fuzz_words(pieces[0], pieces, FUZZ_PIECES);
    for (size_t i = 1; i < n; i++) {
        if (i - 1 < TEMPLATE_VARS)
            v.vars[i - 1] = pieces[i];
        else
            fields.values[fields.n++] = pieces[i];
    }
    v.field = data[0] & 0x80 ? NULL : fuzz_field;
    v.arg = &fields;

    rc = template_compile(pieces[0].p, pieces[0].len, mode, &t, err, sizeof(err));
    if (rc != 0) {
        check(t == NULL);
        check(rc == ERR_INVALID || rc == ERR_NOMEM);
        check(rc == ERR_NOMEM || strncmp(err, "at offset ", 10) == 0);
        check(strlen(err) < sizeof(err));
        return 0;
    }
    check(t != NULL && template_mode_of(t) == mode);
    for (size_t i = 0; i < template_n_fields(t); i++) {
        struct str f = template_field(t, i);
        check(f.len > 0 && f.len <= TEMPLATE_FIELD_NAME_MAX);
        for (size_t j = 0; j < f.len; j++)
            check(f.p[j] > 0x20 && f.p[j] < 0x7f && f.p[j] != '"' && f.p[j] != '\'');
    }
    check(template_uses(t, TEMPLATE_FIELD) == (template_n_fields(t) > 0));

    max = template_render_max(t);
    check(max <= sizeof(out));
    check(template_render(t, &v, out, max, &len) == 0);
    check(len <= max);
    check_output(mode, out, len);

    if (data[0] & 4) {
        size_t cap = (size_t)((data[0] >> 3) & 15) * 61;
        rc = template_render(t, &v, small, cap, &small_len);
        if (len <= cap)
            check(rc == 0 && small_len == len && memcmp(small, out, len) == 0);
        else
            check(rc == ERR_TOOBIG && small_len == 0);
    }
    /* All values absent: the literal text alone, which must also be valid. */
    check(template_render(t, NULL, out, max, &len) == 0);
    check_output(mode, out, len);
    template_free(t);
    return 0;
}
