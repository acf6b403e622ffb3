#include "message.h"

#include "errors.h"

/* A MSG that starts with '{' (after blanks) and validates as one JSON object
 * is a JSON payload. Anything else, invalid JSON included, is left to the
 * CEF/LEEF search and otherwise stays text without an error: a '{' also
 * starts ordinary prose, and a sender that means JSON but breaks it is no
 * format we know. */
static int message_find_json(struct message *m, struct str body, struct scratch *scratch)
{
    while (body.len > 0 && str_is_blank(body.p[0])) {
        body.p++;
        body.len--;
    }
    if (body.len == 0 || body.p[0] != '{' || json_validate(body.p, body.len, NULL, NULL) != 0)
        return 0;
    m->payload = PAYLOAD_JSON;
    m->u.json.doc = body;
    /* Cannot fail with a scratch as large as the frame (fuzz_message checks):
     * the header's SD values take at most their own bytes, which are not
     * MSG's. A full scratch is the syslog kind's "scratch buffer full". */
    m->u.json.shadow = scratch_reserve(scratch, body.len);
    if (m->u.json.shadow == NULL &&
        err_first(&m->error,
                  "syslog: scratch buffer full, JSON strings with escapes read as absent"))
        m->error_kind = ERR_KIND_SYSLOG;
    return 1;
}

/* The payload starts at the first CEF: or LEEF: marker in MSG (after any
 * sender tag the syslog parser did not consume). syslog_parse ends the header
 * at a marker, so MSG mostly starts with one: checked first, in O(1). Then a
 * MSG that is a JSON object (checked only when it starts with '{', so other
 * messages pay one byte compare): a CEF: inside one of its strings is data.
 * Otherwise MSG is searched for CEF:, and for LEEF: only before that CEF:. */
static void message_find_payload(struct message *m, struct str body, struct scratch *scratch)
{
    long cef_at = -1, leef_at = -1;
    const char *error = NULL;
    enum err_kind kind = ERR_KIND_NONE;

    if (str_starts_marker(body.p, body.len, "CEF:", 4)) {
        cef_at = 0;
    } else if (str_starts_marker(body.p, body.len, "LEEF:", 5)) {
        leef_at = 0;
    } else if (message_find_json(m, body, scratch)) {
        return;
    } else {
        cef_at = cef_find(body.p, body.len);
        leef_at = leef_find(body.p, cef_at >= 0 ? (size_t)cef_at : body.len);
    }
    if (leef_at >= 0) {
        m->payload = PAYLOAD_LEEF;
        leef_parse(body.p + leef_at, body.len - (size_t)leef_at, &m->u.leef);
        error = m->u.leef.error;
        kind = ERR_KIND_LEEF;
    } else if (cef_at >= 0) {
        m->payload = PAYLOAD_CEF;
        cef_parse(body.p + cef_at, body.len - (size_t)cef_at, &m->u.cef, scratch);
        error = m->u.cef.error;
        kind = ERR_KIND_CEF;
        m->dropped = m->u.cef.n_dropped;
    }
    if (error != NULL && err_first(&m->error, error))
        m->error_kind = kind;
}

int message_parse(const char *buf, size_t len, struct message *m, struct scratch *scratch)
{
    scratch_reset(scratch);
    m->raw = str_make(buf, len);
    m->payload = PAYLOAD_TEXT;
    m->dropped = 0;
    m->http_source = STR_ABSENT;
    m->http_query = STR_ABSENT;

    syslog_parse(buf, len, &m->syslog, scratch);
    m->error = m->syslog.error;
    m->error_kind = m->syslog.error_kind;
    if (m->syslog.msg.p != NULL && m->syslog.msg.len > 0)
        message_find_payload(m, m->syslog.msg, scratch);
    return m->error ? ERR_INVALID : 0;
}

void message_mark_truncated(struct message *m)
{
    if (err_first(&m->error, "frame: truncated"))
        m->error_kind = ERR_KIND_FRAME;
}
