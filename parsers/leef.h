/* IBM LEEF 1.0 / 2.0 parser (spec/leef.md). Slices into the input; LEEF
 * defines no escaping, so nothing is unescaped. No allocation. */
#ifndef RTR_LEEF_H
#define RTR_LEEF_H

#include <stddef.h>

#include "str.h"

#define LEEF_MAX_EXT 128

struct leef_pair {
    struct str key;
    struct str value;
};

struct leef_msg {
    struct str version, vendor, product, product_version, event_id;
    struct str delimiter; /* the delimiter field as sent; absent in LEEF 1.0
                             or when a 2.0 sender omitted it */
    char delim;           /* the attribute separator actually used */
    size_t n_ext;
    struct leef_pair ext[LEEF_MAX_EXT];
    const char *error; /* static "leef: <what>" or NULL */
};

/* Offset of the "LEEF:" that starts a LEEF payload in buf (at the start or
 * after a space, and followed by a digit), or -1. */
long leef_find(const char *buf, size_t len);

/* Parses buf[0..len), which starts with "LEEF:". Returns 0, or ERR_INVALID /
 * ERR_LIMIT with out->error set (what parsed is still filled in). Slices in
 * *out point into buf (nothing is unescaped): valid while buf is kept. */
int leef_parse(const char *buf, size_t len, struct leef_msg *out);

/* Value of attribute key (first occurrence, as QRadar keeps); absent if none. */
struct str leef_get(const struct leef_msg *m, struct str key);

#endif
