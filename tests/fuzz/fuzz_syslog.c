/* Fuzz target: syslog_parse. Asserts the parser's contract on every input:
 * - every slice lies inside the input, or (SD values only) the used part of the scratch;
 * - the return code and the error agree, and errors name a format ("rfc5424: ", "syslog: ");
 * - MSG is never lost: when present it runs to the end of the frame (only trailing
 *   whitespace after it); a "none" result has no header fields and its MSG is the whole
 *   frame but surrounding whitespace;
 * - flags only with a header; tables within bounds, each element's params inside the params table,
 * in order;
 * - RFC 5424 results respect the RFC's field limits and VERSION range;
 * - unescaping never grows text, so a scratch as large as the input never runs out.
 * Each input is parsed three times: with a scratch as large as the input, with a quarter of
 * that (the out-of-scratch path) and with none; the three agree on everything but SD values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "syslog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch_buf[1 << 17];

static void check(int ok)
{
    if (!ok)
        abort();
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int in_input(struct str s, const char *in, size_t n)
{
    return s.p == NULL ? s.len == 0 : s.p >= in && s.p + s.len <= in + n;
}

static int in_scratch(struct str s, const struct scratch *sc)
{
    return sc != NULL && s.p >= sc->buf && s.p + s.len <= sc->buf + sc->used;
}

static int only_ws(const char *p, const char *end)
{
    for (; p < end; p++)
        if (!is_ws(*p))
            return 0;
    return 1;
}

static void check_msg(const struct syslog_msg *m, const char *in, size_t n, int rc,
                      const struct scratch *sc)
{
    check(rc == 0 || rc == ERR_INVALID);
    check((rc == 0) == (m->error == NULL));
    check(m->error == NULL || strncmp(m->error, "rfc5424: ", 9) == 0 ||
          strncmp(m->error, "syslog: ", 8) == 0);
    check(m->format == SYSLOG_NONE || m->format == SYSLOG_RFC3164 || m->format == SYSLOG_RFC5424);
    check(m->pri >= -1 && m->pri <= 191);
    check(m->version >= 0 && m->version <= 999);
    check((m->flags & ~(unsigned)SYSLOG_F_BOM) == 0);
    /* the BOM stays in the input just before MSG, for renderers that show MSG as sent */
    check(!(m->flags & SYSLOG_F_BOM) ||
          (m->msg.p != NULL && m->msg.p - 3 >= in && memcmp(m->msg.p - 3, "\xef\xbb\xbf", 3) == 0));
    check(m->flags == 0 || m->format != SYSLOG_NONE);

    const struct str hdr[] = {m->timestamp, m->hostname, m->app, m->procid, m->msgid, m->msg};
    for (size_t i = 0; i < sizeof(hdr) / sizeof(hdr[0]); i++)
        check(in_input(hdr[i], in, n));

    check(m->n_sd <= SYSLOG_MAX_SD_ELEMENTS && m->n_sd_params <= SYSLOG_MAX_SD_PARAMS);
    size_t next = 0;
    for (size_t i = 0; i < m->n_sd; i++) {
        const struct syslog_sd_element *e = &m->sd[i];
        check(e->id.p != NULL && e->id.len >= 1 && e->id.len <= 32 && in_input(e->id, in, n));
        check(e->first_param == next && e->first_param + e->n_params <= m->n_sd_params);
        next += e->n_params;
    }
    check(next == m->n_sd_params);
    for (size_t i = 0; i < m->n_sd_params; i++) {
        struct str name = m->sd_params[i].name, value = m->sd_params[i].value;
        check(name.p != NULL && name.len >= 1 && name.len <= 32 && in_input(name, in, n));
        check(value.p != NULL && (in_input(value, in, n) || in_scratch(value, sc)));
    }

    /* MSG is the tail of the frame. */
    if (m->msg.p != NULL) {
        check(m->msg.len > 0 || (m->flags & SYSLOG_F_BOM));
        check(only_ws(m->msg.p + m->msg.len, in + n));
    }
    if (m->format == SYSLOG_NONE) {
        check(m->version == 0 && m->n_sd == 0 && m->flags == 0);
        for (size_t i = 0; i < 5; i++)
            check(hdr[i].p == NULL);
        if (m->msg.p == NULL)
            check(only_ws(in, in + n));
        else
            check(only_ws(in, m->msg.p) && !is_ws(m->msg.p[0]));
    }
    if (m->format == SYSLOG_RFC5424) {
        check(m->pri >= 0 && m->version >= 1);
        check(m->hostname.len <= 255 && m->app.len <= 48 && m->procid.len <= 128 &&
              m->msgid.len <= 32);
    }
}

static void same_header(const struct syslog_msg *a, const struct syslog_msg *b)
{
    check(a->format == b->format && a->pri == b->pri && a->version == b->version);
    check(a->flags == b->flags && a->n_sd == b->n_sd && a->n_sd_params == b->n_sd_params);
    check(a->msg.p == b->msg.p && a->msg.len == b->msg.len);
    check(a->hostname.p == b->hostname.p && a->app.p == b->app.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct syslog_msg full, small, none;
    const char *in = (const char *)data;
    struct scratch sc;

    if (size > sizeof(scratch_buf))
        return 0;

    scratch_init(&sc, scratch_buf, size);
    int rc = syslog_parse(in, size, &full, &sc);
    check_msg(&full, in, size, rc, &sc);
    check(sc.used <= size);
    check(full.error == NULL || strstr(full.error, "scratch") == NULL);

    scratch_init(&sc, scratch_buf, size / 4);
    rc = syslog_parse(in, size, &small, &sc);
    check_msg(&small, in, size, rc, &sc);
    same_header(&full, &small);

    rc = syslog_parse(in, size, &none, NULL);
    check_msg(&none, in, size, rc, NULL);
    same_header(&full, &none);
    return 0;
}
