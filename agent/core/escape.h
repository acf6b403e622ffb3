/* Escaping of untrusted bytes for every output the agent writes: JSON
 * strings and log lines. Control characters and invalid UTF-8 never reach an
 * output raw; valid UTF-8 passes through unchanged, but for the characters
 * that terminals, log viewers or JavaScript act on although they are valid:
 * the C1 controls U+0080..U+009F (NEL, CSI...) and U+2028/U+2029 (line and
 * paragraph separators). */
#ifndef RTR_ESCAPE_H
#define RTR_ESCAPE_H

#include <stddef.h>

enum escape_style {
    /* JSON string body: \" \\ \n \r \t \u00XX; an invalid UTF-8 byte -> \u00XX
     * of the byte; a C1 control or U+2028/U+2029 -> \uXXXX of the code point
     * (\u0085, \u2028: JSON allows them raw, JavaScript before ES2019 does
     * not in a string literal). */
    ESCAPE_JSON,
    /* Log text: \n \r \t \\ \xXX; quotes kept. \xXX is per byte, as for
     * invalid UTF-8: NEL (U+0085) -> \xc2\x85, U+2028 -> \xe2\x80\xa8. */
    ESCAPE_LOG,
};

/* Worst-case output size for len input bytes (6 per byte in JSON), and the
 * longest single escape (escape_text stops before one that does not fit). */
#define ESCAPE_MAX_EXPANSION 6

/* Escapes src[0..len) into dst (cap bytes). Returns the length of the
 * escaped text; stops early (on a whole escape) when dst is full. Never
 * writes a NUL terminator. The bytes of dst past the returned length, up to
 * cap, may be overwritten: plain text is copied a word at a time. */
size_t escape_text(char *dst, size_t cap, const char *src, size_t len, enum escape_style style);

/* Writes the n bytes of in as 2n lowercase hex digits and a NUL to out
 * (2n + 1 bytes). Returns 2n. */
size_t hex_encode(const unsigned char *in, size_t n, char *out);

/* Length of the valid UTF-8 sequence at s[0..len), or 0 when it is invalid
 * (overlong, surrogate, > U+10FFFF, truncated). */
size_t utf8_sequence_len(const unsigned char *s, size_t len);

#endif
