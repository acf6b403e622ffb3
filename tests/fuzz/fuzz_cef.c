/* Fuzz target: cef_find + cef_parse, then the lookups. Asserts the parser's
 * contract: every slice lies inside the input or the used part of the
 * scratch buffer, keys are non-empty input slices of key characters only
 * ([A-Za-z0-9_.,[\]-], which renderers copy unescaped), n_ext <= CEF_MAX_EXT, the
 * return code and the error agree, and errors read "cef: ...". Each input is
 * parsed three times: with a scratch buffer as large as the input, which
 * never runs out, so it must give what an unbounded one gives (the same
 * scratch use and values, even when an earlier error hides the scratch
 * error); and with a quarter of that (the out-of-scratch path). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cef.h"
#include "errors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SCRATCH_MAX (1 << 16)

/* A scratch buffer and a result per parse kept for the comparison. */
static char scratch_buf[2][SCRATCH_MAX];
static struct cef_msg msgs[2];

static int inside(struct str s, const char *in, size_t len, const struct scratch *sc)
{
    if (s.p == NULL)
        return s.len == 0;
    return (s.p >= in && s.p + s.len <= in + len) ||
           (s.p >= sc->buf && s.p + s.len <= sc->buf + sc->used);
}

/* Keys hold only [A-Za-z0-9_.,[\]-]: renderers copy them unescaped. */
static int key_chars_only(struct str k)
{
    for (size_t i = 0; i < k.len; i++) {
        unsigned char c = (unsigned char)k.p[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              strchr("_.,[]-", c) != NULL) ||
            c == '\0')
            return 0;
    }
    return 1;
}

static void check(int ok)
{
    if (!ok)
        abort();
}

/* Parses into msgs[slot], with scratch_buf[slot] limited to cap bytes;
 * returns the scratch bytes used. */
static size_t parse_and_check(const char *in, size_t n, size_t cap, int slot)
{
    struct cef_msg *m = &msgs[slot];
    struct scratch sc;

    scratch_init(&sc, scratch_buf[slot], cap);
    int rc = cef_parse(in, n, m, &sc);
    check(rc == 0 || rc == ERR_INVALID || rc == ERR_LIMIT);
    check((rc == 0) == (m->error == NULL));
    check(m->error == NULL || strncmp(m->error, "cef: ", 5) == 0);
    check(cap < n || m->error == NULL || strncmp(m->error, "cef: scratch", 12) != 0);
    check(sc.used <= sc.cap);
    check(m->n_ext <= CEF_MAX_EXT);
    check(m->n_dropped == 0 || (m->n_ext == CEF_MAX_EXT && rc == ERR_LIMIT));
    const struct str hdr[] = {m->version,      m->vendor, m->product, m->device_version,
                              m->signature_id, m->name,   m->severity};
    for (size_t i = 0; i < sizeof(hdr) / sizeof(hdr[0]); i++)
        check(inside(hdr[i], in, n, &sc));
    for (size_t i = 0; i < m->n_ext; i++) {
        struct str k = m->ext[i].key;
        check(k.p != NULL && k.len > 0 && k.p >= in && k.p + k.len <= in + n);
        check(key_chars_only(k));
        check(m->ext[i].value.p != NULL && inside(m->ext[i].value, in, n, &sc));
        /* Every key is found again (possibly a later duplicate's value). */
        check(!str_is_absent(cef_get(m, k)));
        cef_get_label(m, m->ext[i].value);
        struct str full = cef_full_name(k);
        check(str_is_absent(full) || !str_is_absent(cef_short_name(full)));
    }
    return sc.used;
}

/* Both absent, or both present with the same bytes. */
static int same(struct str a, struct str b)
{
    return (a.p == NULL) == (b.p == NULL) && str_eq(a, b);
}

static void check_same(const struct cef_msg *a, const struct cef_msg *b)
{
    check(a->error == b->error && a->n_ext == b->n_ext);
    check(same(a->version, b->version) && same(a->vendor, b->vendor) &&
          same(a->product, b->product) && same(a->device_version, b->device_version) &&
          same(a->signature_id, b->signature_id) && same(a->name, b->name) &&
          same(a->severity, b->severity));
    for (size_t i = 0; i < a->n_ext; i++)
        check(same(a->ext[i].key, b->ext[i].key) && same(a->ext[i].value, b->ext[i].value));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;

    if (size > SCRATCH_MAX)
        return 0;
    long at = cef_find(buf, size);
    check(at >= -1 && (at < 0 || ((size_t)at + 5 <= size && memcmp(buf + at, "CEF:", 4) == 0)));
    const char *in = at >= 0 ? buf + at : buf;
    size_t n = at >= 0 ? size - (size_t)at : size;

    size_t used = parse_and_check(in, n, n, 0);
    check(parse_and_check(in, n, SCRATCH_MAX, 1) == used);
    check_same(&msgs[0], &msgs[1]);
    parse_and_check(in, n, n / 4, 1);
    return 0;
}
