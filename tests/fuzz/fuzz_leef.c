/* Fuzz target: leef_find + leef_parse + leef_get. Asserts the parser's
 * contract: every slice lies inside the input, keys are non-empty,
 * n_ext <= LEEF_MAX_EXT, the delimiter field (when present) is the sixth
 * header field, the return code and the error agree, and errors read
 * "leef: ...". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "leef.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(struct str s, const char *in, size_t len)
{
    if (s.p == NULL)
        return s.len == 0;
    return s.p >= in && s.p + s.len <= in + len;
}

static void check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct leef_msg m;
    const char *buf = (const char *)data;

    long at = leef_find(buf, size);
    check(at >= -1 && (at < 0 || ((size_t)at + 5 <= size && memcmp(buf + at, "LEEF:", 5) == 0)));
    const char *in = at >= 0 ? buf + at : buf;
    size_t n = at >= 0 ? size - (size_t)at : size;

    int rc = leef_parse(in, n, &m);
    check(rc == 0 || rc == ERR_INVALID || rc == ERR_LIMIT);
    check((rc == 0) == (m.error == NULL));
    check(m.error == NULL || strncmp(m.error, "leef: ", 6) == 0);
    check(m.n_ext <= LEEF_MAX_EXT);
    const struct str hdr[] = {m.version, m.vendor, m.product, m.product_version, m.event_id,
                              m.delimiter};
    for (size_t i = 0; i < sizeof(hdr) / sizeof(hdr[0]); i++)
        check(inside(hdr[i], in, n));
    check(m.delimiter.p == NULL || (m.delimiter.p > in && m.delimiter.p[-1] == '|'));
    for (size_t i = 0; i < m.n_ext; i++) {
        struct str k = m.ext[i].key;
        check(k.p != NULL && k.len > 0 && inside(k, in, n));
        check(m.ext[i].value.p != NULL && inside(m.ext[i].value, in, n));
        check(!str_is_absent(leef_get(&m, k)));
    }
    return 0;
}
