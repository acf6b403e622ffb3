/* The event model (event.h): field names compiled once into a kind and its
 * key slices, then read from a parsed message with a switch, never by name. */
#include <stdio.h>

#include "errors.h"
#include "event.h"

/* Names that are a kind on their own. */
static const struct {
    const char *name;
    enum event_field_kind kind;
} event_fixed[] = {
    {"raw", EVENT_RAW},
    {"msg", EVENT_MSG},
    {"syslog.pri", EVENT_SYSLOG_PRI},
    {"syslog.facility", EVENT_SYSLOG_FACILITY},
    {"syslog.severity", EVENT_SYSLOG_SEVERITY},
    {"syslog.version", EVENT_SYSLOG_VERSION},
    {"syslog.timestamp", EVENT_SYSLOG_TIMESTAMP},
    {"syslog.hostname", EVENT_SYSLOG_HOSTNAME},
    {"syslog.app", EVENT_SYSLOG_APP},
    {"syslog.procid", EVENT_SYSLOG_PROCID},
    {"syslog.msgid", EVENT_SYSLOG_MSGID},
    {"cef.version", EVENT_CEF_VERSION},
    {"cef.vendor", EVENT_CEF_VENDOR},
    {"cef.product", EVENT_CEF_PRODUCT},
    {"cef.device_version", EVENT_CEF_DEVICE_VERSION},
    {"cef.signature_id", EVENT_CEF_SIGNATURE_ID},
    {"cef.name", EVENT_CEF_NAME},
    {"cef.severity", EVENT_CEF_SEVERITY},
    {"leef.version", EVENT_LEEF_VERSION},
    {"leef.vendor", EVENT_LEEF_VENDOR},
    {"leef.product", EVENT_LEEF_PRODUCT},
    {"leef.product_version", EVENT_LEEF_PRODUCT_VERSION},
    {"leef.event_id", EVENT_LEEF_EVENT_ID},
    {"http.source", EVENT_HTTP_SOURCE},
};

/* Names that are a prefix followed by a key. */
static const struct {
    const char *prefix;
    enum event_field_kind kind;
} event_keyed[] = {
    {"cef.ext.", EVENT_CEF_EXT},
    {"cef.label.", EVENT_CEF_LABEL},
    {"leef.ext.", EVENT_LEEF_EXT},
    {"syslog.sd.", EVENT_SYSLOG_SD},
    /* a dotted path, checked by event_json_path_ok */
    {"json.", EVENT_JSON},
    {"http.query.", EVENT_HTTP_QUERY},
};

/* Splits "<SD-ID>.<param>" at its last '.': SD-IDs such as "origin@32473"
 * never need one, but enterprise ids may ("x@1.2"); param names rarely do. */
static int event_split_sd(struct str rest, struct event_field *out)
{
    size_t dot = rest.len;

    while (dot > 0 && rest.p[dot - 1] != '.')
        dot--;
    if (dot < 2 || dot == rest.len) /* no '.', empty SD-ID or empty param */
        return ERR_INVALID;
    out->key = str_make(rest.p, dot - 1);
    out->key2 = str_make(rest.p + dot, rest.len - dot);
    return 0;
}

/* A json path has no empty segment: "a..b", ".a" and "a." address nothing. */
static int event_json_path_ok(struct str path)
{
    if (path.p[0] == '.' || path.p[path.len - 1] == '.')
        return 0;
    for (size_t i = 1; i < path.len; i++) {
        if (path.p[i] == '.' && path.p[i - 1] == '.')
            return 0;
    }
    return 1;
}

int event_field_compile(const char *name, size_t len, struct event_field *out)
{
    size_t i;

    out->key = STR_ABSENT;
    out->key2 = STR_ABSENT;
    for (i = 0; i < sizeof(event_fixed) / sizeof(event_fixed[0]); i++) {
        if (strlen(event_fixed[i].name) == len && memcmp(event_fixed[i].name, name, len) == 0) {
            out->kind = event_fixed[i].kind;
            return 0;
        }
    }
    for (i = 0; i < sizeof(event_keyed) / sizeof(event_keyed[0]); i++) {
        size_t plen = strlen(event_keyed[i].prefix);
        if (len <= plen || memcmp(event_keyed[i].prefix, name, plen) != 0)
            continue;
        struct str rest = str_make(name + plen, len - plen);
        out->kind = event_keyed[i].kind;
        if (out->kind == EVENT_SYSLOG_SD)
            return event_split_sd(rest, out);
        if (out->kind == EVENT_JSON && !event_json_path_ok(rest))
            return ERR_INVALID;
        out->key = rest;
        if (out->kind == EVENT_CEF_EXT) /* resolved here, not per message */
            out->key2 = cef_other_name(rest);
        return 0;
    }
    return ERR_INVALID;
}

/* The value of param key2 in SD element key; the first occurrence wins, as
 * RFC 5424 gives no order to repeated params. */
static struct str event_sd(const struct syslog_msg *s, struct str id, struct str param)
{
    for (size_t i = 0; i < s->n_sd; i++) {
        const struct syslog_sd_element *e = &s->sd[i];
        if (!str_eq(e->id, id))
            continue;
        for (size_t j = e->first_param; j < e->first_param + e->n_params; j++)
            if (str_eq(s->sd_params[j].name, param))
                return s->sd_params[j].value;
    }
    return STR_ABSENT;
}

/* A non-negative number as text in num; absent when negative (not sent). */
static struct str event_number(int v, struct event_num *num)
{
    if (v < 0 || num == NULL)
        return STR_ABSENT;
    int n = snprintf(num->text, sizeof(num->text), "%d", v);
    return str_make(num->text, (size_t)n);
}

/* The value of parameter name in pairs ("name\0value\0" ..., message.h). */
static struct str event_query(struct str pairs, struct str name)
{
    size_t pos = 0;

    while (pairs.p != NULL && pos < pairs.len) {
        const char *n = pairs.p + pos;
        size_t nlen = strnlen(n, pairs.len - pos);
        const char *v = n + nlen + 1;
        size_t vlen;

        if (pos + nlen + 1 > pairs.len)
            break;
        vlen = strnlen(v, pairs.len - pos - nlen - 1);
        if (nlen == name.len && memcmp(n, name.p, nlen) == 0)
            return str_make(v, vlen);
        pos += nlen + vlen + 2;
    }
    return STR_ABSENT;
}

/* The value at path in m's JSON payload. A string with escapes is decoded
 * now, over its own offsets in the shadow: repeated reads rewrite the same
 * bytes, so earlier results stay valid and the scratch never grows. */
static struct str event_json(const struct message *m, struct str path)
{
    struct str v;

    if (m->payload != PAYLOAD_JSON)
        return STR_ABSENT;
    const struct message_json *j = &m->u.json;
    if (json_lookup(j->doc.p, j->doc.len, path, j->shadow, &v, NULL) != 0)
        return STR_ABSENT; /* no shadow: m->error said so at parse time */
    return v;
}

struct str event_field_get(const struct event_field *f, const struct message *m,
                           struct event_num *num)
{
    const struct syslog_msg *s = &m->syslog;
    const struct cef_msg *cef = m->payload == PAYLOAD_CEF ? &m->u.cef : NULL;
    const struct leef_msg *leef = m->payload == PAYLOAD_LEEF ? &m->u.leef : NULL;

    switch (f->kind) {
    case EVENT_RAW:
        return m->raw;
    case EVENT_MSG:
        return s->msg;
    case EVENT_SYSLOG_PRI:
        return event_number(s->pri, num);
    case EVENT_SYSLOG_FACILITY:
        return event_number(syslog_facility(s), num);
    case EVENT_SYSLOG_SEVERITY:
        return event_number(syslog_severity(s), num);
    case EVENT_SYSLOG_VERSION: /* 0 is "no RFC 5424 VERSION" */
        return event_number(s->version > 0 ? s->version : -1, num);
    case EVENT_SYSLOG_TIMESTAMP:
        return s->timestamp;
    case EVENT_SYSLOG_HOSTNAME:
        return s->hostname;
    case EVENT_SYSLOG_APP:
        return s->app;
    case EVENT_SYSLOG_PROCID:
        return s->procid;
    case EVENT_SYSLOG_MSGID:
        return s->msgid;
    case EVENT_SYSLOG_SD:
        return event_sd(s, f->key, f->key2);
    case EVENT_CEF_VERSION:
        return cef ? cef->version : STR_ABSENT;
    case EVENT_CEF_VENDOR:
        return cef ? cef->vendor : STR_ABSENT;
    case EVENT_CEF_PRODUCT:
        return cef ? cef->product : STR_ABSENT;
    case EVENT_CEF_DEVICE_VERSION:
        return cef ? cef->device_version : STR_ABSENT;
    case EVENT_CEF_SIGNATURE_ID:
        return cef ? cef->signature_id : STR_ABSENT;
    case EVENT_CEF_NAME:
        return cef ? cef->name : STR_ABSENT;
    case EVENT_CEF_SEVERITY:
        return cef ? cef->severity : STR_ABSENT;
    case EVENT_CEF_EXT:
        return cef ? cef_get_pair(cef, f->key, f->key2) : STR_ABSENT;
    case EVENT_CEF_LABEL:
        return cef ? cef_get_label(cef, f->key) : STR_ABSENT;
    case EVENT_LEEF_VERSION:
        return leef ? leef->version : STR_ABSENT;
    case EVENT_LEEF_VENDOR:
        return leef ? leef->vendor : STR_ABSENT;
    case EVENT_LEEF_PRODUCT:
        return leef ? leef->product : STR_ABSENT;
    case EVENT_LEEF_PRODUCT_VERSION:
        return leef ? leef->product_version : STR_ABSENT;
    case EVENT_LEEF_EVENT_ID:
        return leef ? leef->event_id : STR_ABSENT;
    case EVENT_LEEF_EXT:
        return leef ? leef_get(leef, f->key) : STR_ABSENT;
    case EVENT_JSON:
        return event_json(m, f->key);
    case EVENT_HTTP_SOURCE:
        return m->http_source;
    case EVENT_HTTP_QUERY:
        return event_query(m->http_query, f->key);
    }
    return STR_ABSENT;
}
