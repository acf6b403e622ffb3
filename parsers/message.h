/* One received frame, fully parsed: syslog header, then the payload (CEF,
 * LEEF, a JSON object or plain text). This is what the pipeline, `parse` and
 * `--tap` see. */
#ifndef RTR_MESSAGE_H
#define RTR_MESSAGE_H

#include "cef.h"
#include "errors.h"
#include "json.h"
#include "leef.h"
#include "str.h"
#include "syslog.h"

enum message_payload {
    PAYLOAD_TEXT,
    PAYLOAD_CEF,
    PAYLOAD_LEEF,
    PAYLOAD_JSON,
};

/* A MSG that is one valid JSON object (json_validate, default limits). Its
 * fields are read on demand (json_lookup, event.h's json.<path>): nothing is
 * decoded at parse time. */
struct message_json {
    struct str doc; /* MSG without its leading blanks */
    /* doc.len bytes of the scratch, reserved at parse time and written only
     * by lookups that unescape a string (json_lookup's shadow), or NULL when
     * the scratch was too small (then m->error says so). */
    char *shadow;
};

struct message {
    struct str raw; /* the whole frame as received */
    struct syslog_msg syslog;
    enum message_payload payload;
    const char *error; /* first "<format>: <what>" error, or NULL */
    /* The <format> of error, set with it: code that counts errors switches on
     * this, never on the text. ERR_KIND_NONE when error is NULL. */
    enum err_kind error_kind;
    /* CEF pairs past CEF_MAX_EXT, counted but not stored; error is set then
     * ("cef: too many extension fields", or an earlier error). */
    size_t dropped;
    /* http.source: the {source} of the HTTP route the message came in by
     * (set by the caller after message_parse, which clears it); absent for
     * syslog. */
    struct str http_source;
    /* http.query.<name>: the request's query parameters, decoded, as
     * "name\0value\0" pairs (a name never holds NUL, nor a value: the
     * intake refuses %00); set by the caller like http_source, absent for
     * syslog and for a request without a query. */
    struct str http_query;
    /* Last: the payload's pair table is large (32 KiB for CEF). */
    union {
        struct cef_msg cef;
        struct leef_msg leef;
        struct message_json json;
    } u;
};

/* Parses one frame into *m, which the caller owns and reuses. scratch must
 * hold at least len bytes (it is reset here). Returns 0, or ERR_INVALID when
 * m->error is set (everything that parsed is still filled in). Every slice in
 * *m points into buf or scratch: valid while buf is kept and until the next
 * message_parse or scratch_reset on that scratch. */
int message_parse(const char *buf, size_t len, struct message *m, struct scratch *scratch);

/* Records that the frame behind m was cut by the framer (FRAME_TRUNCATED)
 * or by the end of its connection, unless a parse error is already set:
 * `parse` and `--tap` then say so in "error", and later stages know. */
void message_mark_truncated(struct message *m);

#endif
