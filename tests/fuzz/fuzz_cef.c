/* Fuzz target: cef_find + cef_parse, then the lookups. Asserts the parser's
 * contract: every slice lies inside the input or the used part of the
 * scratch buffer, keys are non-empty input slices, n_ext <= CEF_MAX_EXT, the
 * return code and the error agree, and errors read "cef: ...". Each input is
 * parsed twice: with a scratch buffer as large as the input (which must
 * never run out) and with a quarter of that (the out-of-scratch path). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cef.h"
#include "errors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch_buf[1 << 16];

static int inside(struct str s, const char *in, size_t len, const struct scratch *sc)
{
    if (s.p == NULL)
        return s.len == 0;
    return (s.p >= in && s.p + s.len <= in + len) ||
           (s.p >= sc->buf && s.p + s.len <= sc->buf + sc->used);
}

static void check(int ok)
{
    if (!ok)
        abort();
}

static void parse_and_check(const char *in, size_t n, size_t cap)
{
    static struct cef_msg m;
    struct scratch sc;

    scratch_init(&sc, scratch_buf, cap);
    int rc = cef_parse(in, n, &m, &sc);
    check(rc == 0 || rc == ERR_INVALID || rc == ERR_LIMIT);
    check((rc == 0) == (m.error == NULL));
    check(m.error == NULL || strncmp(m.error, "cef: ", 5) == 0);
    check(cap < n || m.error == NULL || strncmp(m.error, "cef: scratch", 12) != 0);
    check(sc.used <= sc.cap);
    check(m.n_ext <= CEF_MAX_EXT);
    const struct str hdr[] = {m.version,      m.vendor, m.product, m.device_version,
                              m.signature_id, m.name,   m.severity};
    for (size_t i = 0; i < sizeof(hdr) / sizeof(hdr[0]); i++)
        check(inside(hdr[i], in, n, &sc));
    for (size_t i = 0; i < m.n_ext; i++) {
        struct str k = m.ext[i].key;
        check(k.p != NULL && k.len > 0 && k.p >= in && k.p + k.len <= in + n);
        check(m.ext[i].value.p != NULL && inside(m.ext[i].value, in, n, &sc));
        /* Every key is found again (possibly a later duplicate's value). */
        check(!str_is_absent(cef_get(&m, k)));
        cef_get_label(&m, m.ext[i].value);
        struct str full = cef_full_name(k);
        check(str_is_absent(full) || !str_is_absent(cef_short_name(full)));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;

    if (size > sizeof(scratch_buf))
        return 0;
    long at = cef_find(buf, size);
    check(at >= -1 && (at < 0 || ((size_t)at + 4 <= size && memcmp(buf + at, "CEF:", 4) == 0)));
    const char *in = at >= 0 ? buf + at : buf;
    size_t n = at >= 0 ? size - (size_t)at : size;

    parse_and_check(in, n, n);
    parse_and_check(in, n, n / 4);
    return 0;
}
