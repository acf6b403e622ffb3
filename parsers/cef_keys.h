/* The CEF extension key dictionary (spec/cef_extension_keys.tsv: short key
 * and ArcSight full name), generated into cef_keys.c by
 * tests/tools/gen_cef_keys.py. Private to cef.c and its tests. */
#ifndef RTR_CEF_KEYS_H
#define RTR_CEF_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "str.h"

struct cef_key {
    struct str short_name; /* "suser" */
    struct str full_name;  /* "sourceUserName" */
};

/* Sorted by short_name in byte order (memcmp, then shorter first). */
extern const struct cef_key cef_keys[];
extern const size_t cef_keys_count;

/* Indices into cef_keys, sorted by full_name in the same order. */
extern const uint16_t cef_keys_by_full[];

#endif
