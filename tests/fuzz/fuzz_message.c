/* Fuzz target: a whole frame through message_parse (syslog header, then the
 * CEF or LEEF payload). Every slice it returns must lie inside the input or
 * the scratch buffer. */
#include <stdint.h>
#include <stdlib.h>

#include "message.h"

static char scratch_buf[1 << 16];

static void check_slice(struct str s, const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *sb = scratch_buf;
    if (s.p == NULL)
        return;
    int in_input = s.p >= in && s.p + s.len <= in + size;
    int in_scratch = s.p >= sb && s.p + s.len <= sb + sizeof(scratch_buf);
    if (!in_input && !in_scratch)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct message m;
    struct scratch s;

    if (size > sizeof(scratch_buf))
        return 0;
    scratch_init(&s, scratch_buf, sizeof(scratch_buf));
    message_parse((const char *)data, size, &m, &s);

    const struct syslog_msg *h = &m.syslog;
    check_slice(h->timestamp, data, size);
    check_slice(h->hostname, data, size);
    check_slice(h->app, data, size);
    check_slice(h->procid, data, size);
    check_slice(h->msgid, data, size);
    check_slice(h->msg, data, size);
    if (h->n_sd > SYSLOG_MAX_SD_ELEMENTS || h->n_sd_params > SYSLOG_MAX_SD_PARAMS)
        abort();
    for (size_t i = 0; i < h->n_sd_params; i++) {
        check_slice(h->sd_params[i].name, data, size);
        check_slice(h->sd_params[i].value, data, size);
    }
    if (m.payload == PAYLOAD_CEF) {
        if (m.u.cef.n_ext > CEF_MAX_EXT)
            abort();
        for (size_t i = 0; i < m.u.cef.n_ext; i++) {
            check_slice(m.u.cef.ext[i].key, data, size);
            check_slice(m.u.cef.ext[i].value, data, size);
        }
    } else if (m.payload == PAYLOAD_LEEF) {
        if (m.u.leef.n_ext > LEEF_MAX_EXT)
            abort();
        for (size_t i = 0; i < m.u.leef.n_ext; i++) {
            check_slice(m.u.leef.ext[i].key, data, size);
            check_slice(m.u.leef.ext[i].value, data, size);
        }
    }
    return 0;
}
