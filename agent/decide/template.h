/* Templates of the response actions (issue 16): the text an action sends, rendered from a
 * decided alert. A webhook action POSTs a JSON body (TEMPLATE_JSON) with header values
 * (TEMPLATE_HEADER); an email action renders a subject (TEMPLATE_HEADER) and a text body
 * (TEMPLATE_TEXT). Pure: no I/O; template_compile allocates, template_render never does.
 *
 * The language is substitution only, no code, conditions, loops or filters:
 *   {{rule}} {{user}} {{email}} {{priority}} {{event}} {{mapping}} {{policy}} {{key}}
 *   {{received}} {{approve_url}} {{deny_url}} {{expires}}   a value of the alert
 *   {{field "cef.ext.src"}}   an event-model field captured from the message; its name is
 *                             1..TEMPLATE_FIELD_NAME_MAX bytes of printable ASCII without
 *                             spaces or quotes (the caller checks it against the model)
 * Spaces and tabs are allowed inside the braces ({{ user }}, {{ field "x" }}). "{{"
 * always opens a placeholder; there is no escape for it (in JSON write \u007b{ inside a
 * string). "}}" outside a placeholder is literal text: a JSON document nesting objects
 * ends in "}}". An unknown name, an empty one, an unclosed "{{", anything else between
 * the braces is a compile error naming its byte offset in the template text.
 *
 * The literal text is valid UTF-8 in every mode. The escaping depends on the mode:
 *   TEMPLATE_JSON    the text is one JSON document (strict: parsers/json.h) and every
 *                    placeholder sits inside a string literal, neither in an object key
 *                    (two values could make a duplicate key) nor inside a \ escape. A value
 *                    is written as string contents by core/escape.h ESCAPE_JSON: quote and
 *                    backslash escaped, controls, C1 controls and U+2028/U+2029 as \uXXXX,
 *                    a byte of invalid UTF-8 as \u00XX (the byte read as Latin-1, as in
 *                    every JSON the agent writes). Whatever the values, the output is valid
 *                    JSON: template_compile checks the literal JSON, then renders hostile
 *                    sample values and validates the result.
 *   TEMPLATE_HEADER  an HTTP header value or an email subject: the literal text holds no
 *                    control character (C0, DEL, C1; not even a tab). In a value every
 *                    control character (C0 including CR, LF, NUL and TAB; DEL; C1 controls;
 *                    U+2028/U+2029) becomes a space, a byte of invalid UTF-8 becomes U+FFFD.
 *                    The output never holds CR, LF, NUL or any other control character.
 *   TEMPLATE_TEXT    an email body: as TEMPLATE_HEADER, but LF and TAB are kept, in the
 *                    literal text and in values (CR, NUL, ESC... become a space: the mailer
 *                    writes its own CRLF line ends).
 * Every value is cut to its first TEMPLATE_VALUE_MAX bytes (backed up to the start of a
 * UTF-8 sequence) before it is escaped; an absent value (p == NULL) renders empty. */
#ifndef RTR_TEMPLATE_H
#define RTR_TEMPLATE_H

#include <stddef.h>

#include "str.h"

enum template_mode { TEMPLATE_JSON, TEMPLATE_HEADER, TEMPLATE_TEXT };

enum template_var {
    TEMPLATE_RULE,
    TEMPLATE_USER,
    TEMPLATE_EMAIL,
    TEMPLATE_PRIORITY,
    TEMPLATE_EVENT,
    TEMPLATE_MAPPING,
    TEMPLATE_POLICY,
    TEMPLATE_KEY,      /* the idempotency key */
    TEMPLATE_RECEIVED, /* RFC 3339 UTC time */
    TEMPLATE_APPROVE_URL,
    TEMPLATE_DENY_URL,
    TEMPLATE_EXPIRES,
    TEMPLATE_FIELD, /* {{field "x"}}: the values come through template_values.field */
    TEMPLATE_VARS
};

#define TEMPLATE_LEN_MAX          65536 /* bytes of template text */
#define TEMPLATE_PLACEHOLDERS_MAX 256
#define TEMPLATE_FIELD_NAME_MAX   128
#define TEMPLATE_VALUE_MAX        1024 /* bytes of one value that are rendered */
#define TEMPLATE_ERROR_MAX        256  /* room for any compile error text */

struct template;

/* Compiles text[0..len) (copied: the caller keeps its text) for mode into *out, which the
 * caller frees with template_free. Returns 0; ERR_INVALID with err (err_cap bytes, may be
 * NULL) holding one NUL-terminated line "at offset N: what" (N counts bytes from the
 * start of text), e.g. "at offset 12: unknown name \"usr\""; ERR_NOMEM. *out is NULL on
 * an error. */
int template_compile(const char *text, size_t len, enum template_mode mode, struct template **out,
                     char *err, size_t err_cap);

void template_free(struct template *t);

enum template_mode template_mode_of(const struct template *t);

/* 1 when t has a placeholder of v (TEMPLATE_FIELD: at least one field), else 0. */
int template_uses(const struct template *t, enum template_var v);

/* The distinct field names t references, in order of first use: what `check` lists for an
 * action and what the worker captures from the message. The slices point into t. */
size_t template_n_fields(const struct template *t);
struct str template_field(const struct template *t, size_t i);

/* "rule", "user", ..., "field"; NULL for a value out of range. Static storage. */
const char *template_var_name(enum template_var v);

/* The values of one rendering: vars[v] for each placeholder {{v}} (vars[TEMPLATE_FIELD] is
 * not read), field(arg, name) for each {{field "name"}} (NULL, or a result with p == NULL:
 * empty). The slices need only live through the template_render call. */
struct template_values {
    struct str vars[TEMPLATE_VARS];
    struct str (*field)(void *arg, struct str name);
    void *arg;
};

/* The most bytes template_render can write for t, whatever the values: a buffer of this
 * size never gets ERR_TOOBIG. */
size_t template_render_max(const struct template *t);

/* Renders t with v (NULL: every value empty) into buf[0..cap) without a NUL terminator.
 * Returns 0 and *len; ERR_TOOBIG when the output does not fit (buf then holds nothing
 * promised, *len is 0). Never allocates. */
int template_render(const struct template *t, const struct template_values *v, char *buf,
                    size_t cap, size_t *len);

#endif
