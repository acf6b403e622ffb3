/* A small JSON writer into a reusable buffer: one per worker (or per
 * command), reset per message, so rendering allocates only while the buffer
 * first grows to its working size. Strings are escaped with escape_text;
 * keys the caller guarantees plain (jsonw_key_plain) are copied as is. */
#ifndef RTR_JSONW_H
#define RTR_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include "str.h"

#define JSONW_MAX_DEPTH 16

struct jsonw {
    char *buf;
    size_t len, cap, max; /* max: hard cap on the buffer; past it err is set */
    int err;              /* ERR_TOOBIG or ERR_NOMEM once something did not fit */
    int depth;
    unsigned char need_comma[JSONW_MAX_DEPTH];
};

/* max_bytes bounds the buffer (0 = 16 MiB). Free with jsonw_free. */
void jsonw_init(struct jsonw *w, size_t max_bytes);
void jsonw_free(struct jsonw *w);
void jsonw_reset(struct jsonw *w);
/* Drops what was written after len, a length the writer had at depth 0
 * (before a line), and clears err: a line that did not fit is dropped and
 * the lines before it stay. jsonw_reset is jsonw_rewind(w, 0). */
void jsonw_rewind(struct jsonw *w, size_t len);

void jsonw_object_begin(struct jsonw *w);
void jsonw_object_end(struct jsonw *w);
void jsonw_array_begin(struct jsonw *w);
void jsonw_array_end(struct jsonw *w);
/* An object key (a C string the caller controls, escaped all the same). */
void jsonw_key(struct jsonw *w, const char *key);
/* A key that comes from input (any bytes). */
void jsonw_key_str(struct jsonw *w, struct str key);
/* A key the caller guarantees is plain: printable ASCII without '"' or '\\'
 * (what escape_text passes unchanged). It is copied as is, not escaped: the
 * constant keys of a renderer cost no escaping per message. */
void jsonw_key_plain(struct jsonw *w, struct str key);
/* jsonw_key_plain for a string literal (anything else does not compile), its
 * length known at compile time. */
#define jsonw_key_literal(w, literal) jsonw_key_plain((w), STR_LIT("" literal ""))
/* A member: jsonw_key_str(key) then jsonw_str(value), in one go (the
 * renderers' per-field cost). */
void jsonw_member(struct jsonw *w, struct str key, struct str value);
/* A member whose key is plain (as jsonw_key_plain), and its literal form. */
void jsonw_member_plain(struct jsonw *w, struct str key, struct str value);
#define jsonw_member_literal(w, literal, value)                                                    \
    jsonw_member_plain((w), STR_LIT("" literal ""), (value))
/* A string value; an absent slice writes null. */
void jsonw_str(struct jsonw *w, struct str value);
void jsonw_cstr(struct jsonw *w, const char *value); /* NULL writes null */
void jsonw_int(struct jsonw *w, long long value);
/* A value the caller wrote as JSON itself (a document another writer
 * made, or that was validated): copied as is. */
void jsonw_raw(struct jsonw *w, struct str json);
void jsonw_null(struct jsonw *w);
void jsonw_bool(struct jsonw *w, int value);
/* Appends a newline (ends a JSON line); the writer must be at depth 0. */
void jsonw_newline(struct jsonw *w);

#endif
