/* Escaping of untrusted bytes for every output the agent writes: JSON
 * strings and log lines. Control characters and invalid UTF-8 never reach an
 * output raw; valid UTF-8 passes through unchanged. */
#ifndef RTR_ESCAPE_H
#define RTR_ESCAPE_H

#include <stddef.h>

enum escape_style {
    ESCAPE_JSON, /* JSON string body: \" \\ \n \r \t \u00XX; invalid UTF-8 byte -> \u00XX of the
                    byte */
    ESCAPE_LOG,  /* log text: \n \r \t \\ \xXX; quotes kept */
};

/* Worst-case output size for len input bytes (6 per byte in JSON). */
#define ESCAPE_MAX_EXPANSION 6

/* Escapes src[0..len) into dst (cap bytes). Returns the number of bytes
 * written; stops early (on a whole escape) when dst is full. Never writes a
 * NUL terminator. */
size_t escape_text(char *dst, size_t cap, const char *src, size_t len, enum escape_style style);

/* Length of the valid UTF-8 sequence at s[0..len), or 0 when it is invalid
 * (overlong, surrogate, > U+10FFFF, truncated). */
size_t utf8_sequence_len(const unsigned char *s, size_t len);

#endif
