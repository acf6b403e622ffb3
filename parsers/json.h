/* Strict JSON (RFC 8259): one-pass validation with limits, and lookups by path into a
 * validated document. No allocation, no tree: a lookup rescans the text, skipping the
 * values it does not need. Used for syslog messages whose MSG is a JSON object and, later,
 * for webhook bodies (a rejected body's error text is the HTTP 400 reason). */
#ifndef RTR_JSON_H
#define RTR_JSON_H

#include <stddef.h>

#include "str.h"

enum json_kind {
    JSON_NONE = 0, /* no value: absent path, or no document */
    JSON_NULL,
    JSON_FALSE,
    JSON_TRUE,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
};

#define JSON_DEPTH_DEFAULT   32
#define JSON_MEMBERS_DEFAULT 1024
#define JSON_VALUES_DEFAULT  100000
/* The validator keeps one record per open object or array on its stack. */
#define JSON_DEPTH_MAX 128
/* Keys of the objects open at one time that the duplicate check holds (8 bytes each, on
 * the validator's stack); a document that needs more is refused (ERR_LIMIT). With the
 * defaults this takes two open objects of 1024 keys each. */
#define JSON_OPEN_KEYS_MAX 2048
/* Documents are addressed with 32-bit offsets. */
#define JSON_LEN_MAX 0xffffffffu

struct json_limits {
    size_t max_depth;   /* nesting of objects and arrays, 1..JSON_DEPTH_MAX (larger is clamped) */
    size_t max_members; /* members per object, elements per array */
    size_t max_values;  /* values in the whole document: scalars, objects and arrays */
};

#define JSON_LIMITS_DEFAULT                                                                        \
    ((struct json_limits){JSON_DEPTH_DEFAULT, JSON_MEMBERS_DEFAULT, JSON_VALUES_DEFAULT})

#define JSON_ERROR_MAX 160
struct json_error {
    size_t offset;             /* the byte where the problem was found */
    char text[JSON_ERROR_MAX]; /* "json: <what> at byte N in <path>", NUL-terminated */
};

/* Validates text[0..len) as exactly one JSON value (whitespace around it allowed) under
 * lim (NULL: JSON_LIMITS_DEFAULT). Strict RFC 8259: no comments, trailing commas, NaN,
 * leading zeros or '+'; strings are valid UTF-8 (no overlongs, no encoded surrogates, at
 * most U+10FFFF) without raw control bytes, with only the JSON escapes and no lone
 * surrogate in \u escapes; no key twice in one object (compared unescaped, so "a" and
 * "\u0061" are the same key). Returns 0; ERR_INVALID for malformed text, ERR_LIMIT for a
 * limit passed, ERR_TOOBIG for len > JSON_LEN_MAX; err (may be NULL) then names the
 * problem and its path ($, $.key, $[3], $["odd.key"]; a long path keeps its end). */
int json_validate(const char *text, size_t len, const struct json_limits *lim,
                  struct json_error *err);

/* The kind of value that starts text[0..len) after whitespace (JSON_NONE if none). On
 * a validated document this is the document's kind. */
enum json_kind json_kind_of(const char *text, size_t len);

/* Finds path in the validated document text[0..len): keys separated by '.', a segment
 * that is a decimal number without leading zero indexes an array ("dataset.0.user_name");
 * on an object every segment is a key. A key holding '.' cannot be addressed. Sets *out:
 *   string        its text unescaped: a slice of text when it has no escape, else
 *                 written into shadow (a buffer of len bytes that mirrors text: a string
 *                 is decoded over its own offsets, so lookups never run out of room and
 *                 repeating a lookup rewrites the same bytes)
 *   number        as written; true / false: "true" / "false"
 *   object, array its JSON text as written (a slice, for regexes)
 *   null, or a path that is not there: absent (out->p == NULL)
 * and *kind (may be NULL). Returns 0; ERR_INVALID for a path with an empty segment;
 * ERR_LIMIT for a string with escapes and no shadow (*out absent). Never reads outside
 * text[0..len), even when text was not validated (the result is then unspecified). */
int json_lookup(const char *text, size_t len, struct str path, char *shadow, struct str *out,
                enum json_kind *kind);

#endif
