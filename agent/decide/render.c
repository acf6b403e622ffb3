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
            jsonw_member(w, s->sd_params[k].name, s->sd_params[k].value);
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
    jsonw_member_literal(w, "timestamp", s->timestamp);
    jsonw_member_literal(w, "hostname", s->hostname);
    jsonw_member_literal(w, "app", s->app);
    jsonw_member_literal(w, "procid", s->procid);
    jsonw_member_literal(w, "msgid", s->msgid);
    render_sd(w, s);
    jsonw_object_end(w);
}

/* One "key": "value" member per pair; CEF and LEEF pairs share the layout.
 * member: jsonw_member, or jsonw_member_plain for keys that need no
 * escaping. */
#define RENDER_PAIRS(w, pairs, n, member)                                                          \
    do {                                                                                           \
        jsonw_key_literal(w, "ext");                                                               \
        jsonw_object_begin(w);                                                                     \
        for (size_t i_ = 0; i_ < (n); i_++)                                                        \
            member(w, (pairs)[i_].key, (pairs)[i_].value);                                         \
        jsonw_object_end(w);                                                                       \
    } while (0)

static void render_cef(struct jsonw *w, const struct cef_msg *c)
{
    jsonw_key_literal(w, "cef");
    jsonw_object_begin(w);
    jsonw_member_literal(w, "version", c->version);
    jsonw_member_literal(w, "vendor", c->vendor);
    jsonw_member_literal(w, "product", c->product);
    jsonw_member_literal(w, "device_version", c->device_version);
    jsonw_member_literal(w, "signature_id", c->signature_id);
    jsonw_member_literal(w, "name", c->name);
    jsonw_member_literal(w, "severity", c->severity);
    /* cef_parse takes keys of [A-Za-z0-9_.,[\]-] only (fuzz_cef checks). */
    RENDER_PAIRS(w, c->ext, c->n_ext, jsonw_member_plain);
    jsonw_object_end(w);
}

static void render_leef(struct jsonw *w, const struct leef_msg *l)
{
    jsonw_key_literal(w, "leef");
    jsonw_object_begin(w);
    jsonw_member_literal(w, "version", l->version);
    jsonw_member_literal(w, "vendor", l->vendor);
    jsonw_member_literal(w, "product", l->product);
    jsonw_member_literal(w, "product_version", l->product_version);
    jsonw_member_literal(w, "event_id", l->event_id);
    /* The separator in effect, decoded (x5E -> "^"), whether sent or implied. */
    jsonw_member_literal(w, "delimiter", str_make(&l->delim, 1));
    RENDER_PAIRS(w, l->ext, l->n_ext, jsonw_member);
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
    else if (m->payload == PAYLOAD_JSON) {
        /* Named like cef and leef, but empty: the document is msg, and its
         * fields are json.<path> for mappings, not copied here. */
        jsonw_key_literal(w, "json");
        jsonw_object_begin(w);
        jsonw_object_end(w);
    }
    /* MSG as sent: syslog_parse strips a leading BOM (so mappings never see
     * it) and flags it; the three bytes sit just before msg.p. */
    struct str msg = m->syslog.msg;
    if (m->syslog.flags & SYSLOG_F_BOM)
        msg = str_make(msg.p - 3, msg.len + 3);
    jsonw_member_literal(w, "msg", msg);
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
