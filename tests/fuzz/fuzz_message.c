/* Fuzz target: a whole frame through message_parse (syslog header, then the
 * CEF or LEEF payload), with a scratch buffer exactly as large as the frame:
 * the least message.h allows. Every slice it returns must lie inside the
 * input or the used part of the scratch buffer, and such a scratch never runs
 * out, so any "scratch" error is a bug. libFuzzer and replay_main.c both hand
 * over the input in a heap buffer of exactly its size, so ASan sees any read
 * past its end; the scratch buffer is allocated the same way. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"

static void check(int ok)
{
    if (!ok)
        abort();
}

static void check_slice(struct str s, const char *in, size_t size, const struct scratch *sc)
{
    if (s.p == NULL)
        return;
    check((s.p >= in && s.p + s.len <= in + size) ||
          (s.p >= sc->buf && s.p + s.len <= sc->buf + sc->used));
}

static void check_no_scratch_error(const char *error)
{
    check(error == NULL || strstr(error, "scratch") == NULL);
}

static void check_cef(const struct cef_msg *c, const char *in, size_t size,
                      const struct scratch *sc)
{
    const struct str hdr[] = {c->version,      c->vendor, c->product, c->device_version,
                              c->signature_id, c->name,   c->severity};
    for (size_t i = 0; i < sizeof(hdr) / sizeof(hdr[0]); i++)
        check_slice(hdr[i], in, size, sc);
    check(c->n_ext <= CEF_MAX_EXT);
    for (size_t i = 0; i < c->n_ext; i++) {
        check_slice(c->ext[i].key, in, size, sc);
        check_slice(c->ext[i].value, in, size, sc);
    }
    check_no_scratch_error(c->error);
}

static void check_leef(const struct leef_msg *l, const char *in, size_t size,
                       const struct scratch *sc)
{
    const struct str hdr[] = {l->version,         l->vendor,   l->product,
                              l->product_version, l->event_id, l->delimiter};
    for (size_t i = 0; i < sizeof(hdr) / sizeof(hdr[0]); i++)
        check_slice(hdr[i], in, size, sc);
    check(l->n_ext <= LEEF_MAX_EXT);
    for (size_t i = 0; i < l->n_ext; i++) {
        check_slice(l->ext[i].key, in, size, sc);
        check_slice(l->ext[i].value, in, size, sc);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct message m;
    const char *in = (const char *)data;
    struct scratch s;
    char *buf = malloc(size > 0 ? size : 1);

    if (buf == NULL)
        return 0;
    scratch_init(&s, buf, size);
    message_parse(in, size, &m, &s);
    check(s.used <= s.cap);
    check_no_scratch_error(m.error);
    check_no_scratch_error(m.syslog.error);
    /* The kind travels with the text: the prefix names it. */
    static const char *const kind_prefix[] = {[ERR_KIND_FRAME] = "frame: ",
                                              [ERR_KIND_SYSLOG] = "syslog: ",
                                              [ERR_KIND_RFC5424] = "rfc5424: ",
                                              [ERR_KIND_CEF] = "cef: ",
                                              [ERR_KIND_LEEF] = "leef: "};
    check((m.error == NULL) == (m.error_kind == ERR_KIND_NONE));
    check(m.error == NULL ||
          (m.error_kind != ERR_KIND_NONE &&
           strncmp(m.error, kind_prefix[m.error_kind], strlen(kind_prefix[m.error_kind])) == 0));
    check(m.dropped == 0 || (m.payload == PAYLOAD_CEF && m.error != NULL));

    const struct syslog_msg *h = &m.syslog;
    const struct str fields[] = {h->timestamp, h->hostname, h->app, h->procid, h->msgid, h->msg};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        check_slice(fields[i], in, size, &s);
    check(h->n_sd <= SYSLOG_MAX_SD_ELEMENTS && h->n_sd_params <= SYSLOG_MAX_SD_PARAMS);
    for (size_t i = 0; i < h->n_sd; i++)
        check_slice(h->sd[i].id, in, size, &s);
    for (size_t i = 0; i < h->n_sd_params; i++) {
        check_slice(h->sd_params[i].name, in, size, &s);
        check_slice(h->sd_params[i].value, in, size, &s);
    }
    if (m.payload == PAYLOAD_CEF)
        check_cef(&m.u.cef, in, size, &s);
    else if (m.payload == PAYLOAD_LEEF)
        check_leef(&m.u.leef, in, size, &s);
    free(buf);
    return 0;
}
