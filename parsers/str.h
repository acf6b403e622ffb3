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

/* Exact byte comparison with a NUL-terminated string. */
static inline int str_eq_cstr(struct str s, const char *c)
{
    size_t n = strlen(c);
    return s.p != NULL && s.len == n && memcmp(s.p, c, n) == 0;
}

static inline int str_eq(struct str a, struct str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* Offset of the first word_len-byte word in buf[0..len) that starts buf or
 * follows a space, or -1. memchr + memcmp: glibc's memmem is several times
 * slower for a short needle. */
static inline long str_find_word(const char *buf, size_t len, const char *word, size_t word_len)
{
    const char *p = buf, *end = buf + len;

    while ((size_t)(end - p) >= word_len &&
           (p = memchr(p, word[0], (size_t)(end - p) - word_len + 1)) != NULL) {
        if (memcmp(p, word, word_len) == 0 && (p == buf || p[-1] == ' '))
            return p - buf;
        p++;
    }
    return -1;
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
