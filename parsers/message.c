#include "message.h"

#include "errors.h"

/* The payload starts at the first CEF: or LEEF: marker in MSG (after any
 * sender tag the syslog parser did not consume). syslog_parse ends the header
 * at a marker, so MSG mostly starts with one: checked first, in O(1).
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
