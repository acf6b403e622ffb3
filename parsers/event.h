/* The event model: the field names mapping rules reference ("msg",
 * "syslog.hostname", "cef.ext.suser", "cef.label.search_name",
 * "leef.ext.usrName", ...), compiled once at load into a reference that is
 * read on the hot path without lookups by name or allocation. The names are
 * the contract in design.md:
 *
 *   raw, msg
 *   syslog.pri, syslog.facility, syslog.severity, syslog.version,
 *   syslog.timestamp, syslog.hostname, syslog.app, syslog.procid,
 *   syslog.msgid, syslog.sd.<SD-ID>.<param> (split at the last '.')
 *   cef.version, cef.vendor, cef.product, cef.device_version,
 *   cef.signature_id, cef.name, cef.severity,
 *   cef.ext.<key> (short or ArcSight full name), cef.label.<label>
 *   leef.version, leef.vendor, leef.product, leef.product_version,
 *   leef.event_id, leef.ext.<key>
 *   json.<path> (keys and array indexes separated by '.': json.result.user,
 *   json.dataset.0.user_name; see json_lookup)
 *   http.source (the source the HTTP route names: /v1/alerts/{source},
 *   /api/event/{source}/alert, "logpoint" for /api/SIEM/logpoint/alert, ...)
 *   http.query.<name> (a query parameter of the HTTP request, decoded)
 *
 * A field the message does not carry reads as absent (p == NULL): cef.* on
 * a LEEF message, syslog.hostname on a message without one, an extension key
 * that is not there. */
#ifndef RTR_EVENT_H
#define RTR_EVENT_H

#include <stddef.h>

#include "message.h"
#include "str.h"

enum event_field_kind {
    EVENT_RAW,
    EVENT_MSG,
    EVENT_SYSLOG_PRI,
    EVENT_SYSLOG_FACILITY,
    EVENT_SYSLOG_SEVERITY,
    EVENT_SYSLOG_VERSION,
    EVENT_SYSLOG_TIMESTAMP,
    EVENT_SYSLOG_HOSTNAME,
    EVENT_SYSLOG_APP,
    EVENT_SYSLOG_PROCID,
    EVENT_SYSLOG_MSGID,
    EVENT_SYSLOG_SD, /* key = SD-ID, key2 = param name */
    EVENT_CEF_VERSION,
    EVENT_CEF_VENDOR,
    EVENT_CEF_PRODUCT,
    EVENT_CEF_DEVICE_VERSION,
    EVENT_CEF_SIGNATURE_ID,
    EVENT_CEF_NAME,
    EVENT_CEF_SEVERITY,
    EVENT_CEF_EXT,   /* key = the extension key as written (short or full name),
                      * key2 = its other name from the CEF key table, or absent */
    EVENT_CEF_LABEL, /* key = the label */
    EVENT_LEEF_VERSION,
    EVENT_LEEF_VENDOR,
    EVENT_LEEF_PRODUCT,
    EVENT_LEEF_PRODUCT_VERSION,
    EVENT_LEEF_EVENT_ID,
    EVENT_LEEF_EXT, /* key = the attribute name */
    EVENT_JSON,     /* key = the path in the JSON payload */
    EVENT_HTTP_SOURCE,
    EVENT_HTTP_QUERY, /* key = the parameter's name */
};

struct event_field {
    enum event_field_kind kind;
    /* Slices into the name given to event_field_compile, except the key2 of
     * EVENT_CEF_EXT, which points into the static CEF key table. */
    struct str key, key2;
};

/* Numeric fields (syslog.pri, ...) are formatted into one of these. */
#define EVENT_NUM_MAX 12
struct event_num {
    char text[EVENT_NUM_MAX];
};

/* Compiles name[0..len) into *out. Returns 0, or ERR_INVALID for a name
 * outside the model (unknown prefix or field, an empty key, a syslog.sd name
 * without both parts, a json path with an empty segment). out->key (and key2, but for cef.ext)
 * point into name: the caller keeps name alive and unchanged as long as out is used. A cef.ext name
 * is looked up in the CEF key table here, once, so that event_field_get reads both its names
 * without a search. */
int event_field_compile(const char *name, size_t len, struct event_field *out);

/* The field's value in m: a slice into m's buffers, into num (numeric
 * fields) or absent. Never allocates. A json.<path> string with escapes is
 * decoded on demand into the part of message_parse's scratch that m
 * reserved for it (message_json.shadow): the one write through a const
 * message, valid like every other slice of m. */
struct str event_field_get(const struct event_field *f, const struct message *m,
                           struct event_num *num);

#endif
