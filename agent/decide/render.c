#include "render.h"

static void render_int_or_null(struct jsonw *w, struct str key, int value, int absent)
{
    jsonw_key_plain(w, key);
    if (absent)
        jsonw_null(w);
    else
        jsonw_int(w, value);
}

static void render_sd(struct jsonw *w, const struct syslog_msg *s)
{
    jsonw_key_literal(w, "sd");
    if (s->n_sd == 0) {
        jsonw_null(w);
        return;
    }
    jsonw_object_begin(w);
    for (size_t i = 0; i < s->n_sd; i++) {
        const struct syslog_sd_element *e = &s->sd[i];
        jsonw_key_str(w, e->id);
        jsonw_object_begin(w);
        for (size_t k = e->first_param; k < e->first_param + e->n_params; k++) {
            jsonw_key_str(w, s->sd_params[k].name);
            jsonw_str(w, s->sd_params[k].value);
        }
        jsonw_object_end(w);
    }
    jsonw_object_end(w);
}

static void render_syslog(struct jsonw *w, const struct syslog_msg *s)
{
    int no_pri = s->pri < 0;

    jsonw_key_literal(w, "syslog");
    jsonw_object_begin(w);
    jsonw_key_literal(w, "format");
    jsonw_cstr(w, syslog_format_name(s->format));
    render_int_or_null(w, STR_LIT("pri"), s->pri, no_pri);
    render_int_or_null(w, STR_LIT("facility"), syslog_facility(s), no_pri);
    render_int_or_null(w, STR_LIT("severity"), syslog_severity(s), no_pri);
    render_int_or_null(w, STR_LIT("version"), s->version, s->version == 0);
    jsonw_key_literal(w, "timestamp");
    jsonw_str(w, s->timestamp);
    jsonw_key_literal(w, "hostname");
    jsonw_str(w, s->hostname);
    jsonw_key_literal(w, "app");
    jsonw_str(w, s->app);
    jsonw_key_literal(w, "procid");
    jsonw_str(w, s->procid);
    jsonw_key_literal(w, "msgid");
    jsonw_str(w, s->msgid);
    render_sd(w, s);
    jsonw_object_end(w);
}

/* One "key": "value" member per pair; CEF and LEEF pairs share the layout. */
#define RENDER_PAIRS(w, pairs, n)                                                                  \
    do {                                                                                           \
        jsonw_key_literal(w, "ext");                                                               \
        jsonw_object_begin(w);                                                                     \
        for (size_t i_ = 0; i_ < (n); i_++) {                                                      \
            jsonw_key_str(w, (pairs)[i_].key);                                                     \
            jsonw_str(w, (pairs)[i_].value);                                                       \
        }                                                                                          \
        jsonw_object_end(w);                                                                       \
    } while (0)

static void render_member(struct jsonw *w, struct str key, struct str value)
{
    jsonw_key_plain(w, key);
    jsonw_str(w, value);
}

static void render_cef(struct jsonw *w, const struct cef_msg *c)
{
    jsonw_key_literal(w, "cef");
    jsonw_object_begin(w);
    render_member(w, STR_LIT("version"), c->version);
    render_member(w, STR_LIT("vendor"), c->vendor);
    render_member(w, STR_LIT("product"), c->product);
    render_member(w, STR_LIT("device_version"), c->device_version);
    render_member(w, STR_LIT("signature_id"), c->signature_id);
    render_member(w, STR_LIT("name"), c->name);
    render_member(w, STR_LIT("severity"), c->severity);
    RENDER_PAIRS(w, c->ext, c->n_ext);
    jsonw_object_end(w);
}

static void render_leef(struct jsonw *w, const struct leef_msg *l)
{
    jsonw_key_literal(w, "leef");
    jsonw_object_begin(w);
    render_member(w, STR_LIT("version"), l->version);
    render_member(w, STR_LIT("vendor"), l->vendor);
    render_member(w, STR_LIT("product"), l->product);
    render_member(w, STR_LIT("product_version"), l->product_version);
    render_member(w, STR_LIT("event_id"), l->event_id);
    /* The separator in effect, decoded (x5E -> "^"), whether sent or implied. */
    render_member(w, STR_LIT("delimiter"), str_make(&l->delim, 1));
    RENDER_PAIRS(w, l->ext, l->n_ext);
    jsonw_object_end(w);
}

void render_message(struct jsonw *w, const struct message *m, const char *source,
                    const char *transport)
{
    jsonw_object_begin(w);
    render_syslog(w, &m->syslog);
    if (m->payload == PAYLOAD_CEF)
        render_cef(w, &m->u.cef);
    else if (m->payload == PAYLOAD_LEEF)
        render_leef(w, &m->u.leef);
    /* MSG as sent: syslog_parse strips a leading BOM (so mappings never see
     * it) and flags it; the three bytes sit just before msg.p. */
    struct str msg = m->syslog.msg;
    if (m->syslog.flags & SYSLOG_F_BOM)
        msg = str_make(msg.p - 3, msg.len + 3);
    render_member(w, STR_LIT("msg"), msg);
    if (m->error) {
        jsonw_key_literal(w, "error");
        jsonw_cstr(w, m->error);
    }
    if (source) {
        jsonw_key_literal(w, "source");
        jsonw_cstr(w, source);
    }
    if (transport) {
        jsonw_key_literal(w, "transport");
        jsonw_cstr(w, transport);
    }
    jsonw_object_end(w);
    jsonw_newline(w);
}
