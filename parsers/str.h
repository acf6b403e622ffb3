/* Slices and scratch buffers: the currency of the hot path.
 *
 * A slice points into memory owned by someone else (the receive buffer or a
 * scratch buffer); it is never freed. A slice with p == NULL means "absent"
 * (rendered as JSON null); a slice with p != NULL and len == 0 is an empty
 * value. */
#ifndef RTR_STR_H
#define RTR_STR_H

#include <stddef.h>
#include <string.h>

struct str {
    const char *p;
    size_t len;
};

#define STR_ABSENT ((struct str){NULL, 0})
#define STR_LIT(s) ((struct str){(s), sizeof(s) - 1})

static inline struct str str_make(const char *p, size_t len)
{
    return (struct str){p, len};
}

static inline int str_is_absent(struct str s)
{
    return s.p == NULL;
}

static inline int str_eq(struct str a, struct str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* Byte classes the parsers share. Plain comparisons: the compiler turns them into a range
 * check, as fast as a table lookup. */
static inline int str_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* SP or TAB: the blanks that pad CEF and LEEF keys and values. */
static inline int str_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* LF, CR or NUL: the bytes that end (or pad) a frame. */
static inline int str_is_eol(char c)
{
    return c == '\n' || c == '\r' || c == '\0';
}

/* s without the spaces and tabs around it. */
static inline struct str str_trim_blanks(struct str s)
{
    while (s.len > 0 && str_is_blank(s.p[0])) {
        s.p++;
        s.len--;
    }
    while (s.len > 0 && str_is_blank(s.p[s.len - 1]))
        s.len--;
    return s;
}

/* Value of a hexadecimal digit (either case), or -1. */
static inline int str_hex_value(char c)
{
    if (str_is_digit(c))
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

/* Length of p[0..len) without its trailing LF, CR and NUL bytes: a frame terminator that
 * reached a parser is not part of the message. */
static inline size_t str_trim_eol(const char *p, size_t len)
{
    while (len > 0 && str_is_eol(p[len - 1]))
        len--;
    return len;
}

/* Offset of the first payload marker (marker_len bytes, "CEF:" or "LEEF:") in buf[0..len)
 * that starts buf or follows a space and is followed by a digit (the format version), or -1.
 * The digit keeps prose such as "key LEEF: disabled" text. memchr + memcmp: glibc's memmem
 * is several times slower for a short needle. */
static inline long str_find_marker(const char *buf, size_t len, const char *marker,
                                   size_t marker_len)
{
    const char *p = buf, *end = buf + len;

    while ((size_t)(end - p) > marker_len &&
           (p = memchr(p, marker[0], (size_t)(end - p) - marker_len)) != NULL) {
        if (memcmp(p, marker, marker_len) == 0 && str_is_digit(p[marker_len]) &&
            (p == buf || p[-1] == ' '))
            return p - buf;
        p++;
    }
    return -1;
}

/* 1 when p[0..len) starts with the marker and a digit (see str_find_marker). */
static inline int str_starts_marker(const char *p, size_t len, const char *marker,
                                    size_t marker_len)
{
    return len > marker_len && memcmp(p, marker, marker_len) == 0 && str_is_digit(p[marker_len]);
}

/* A caller-provided buffer that unescaping writes into. One per worker,
 * reset before each message. Unescaping only ever shrinks text, so a scratch
 * buffer at least as large as the message can never run out; parsers that do
 * run out keep the raw (escaped) text and report it. */
struct scratch {
    char *buf;
    size_t cap;
    size_t used;
};

static inline void scratch_init(struct scratch *s, char *buf, size_t cap)
{
    s->buf = buf;
    s->cap = cap;
    s->used = 0;
}

static inline void scratch_reset(struct scratch *s)
{
    s->used = 0;
}

/* Reserves n bytes; returns NULL when they do not fit. */
static inline char *scratch_reserve(struct scratch *s, size_t n)
{
    if (s->cap - s->used < n)
        return NULL;
    char *p = s->buf + s->used;
    s->used += n;
    return p;
}

#endif
