/* ArcSight CEF parser (spec/cef.md). Header fields and extension values are
 * unescaped into the caller's scratch buffer (or point into the input when
 * they hold no escape); keys are slices into the input. No allocation. */
#ifndef RTR_CEF_H
#define RTR_CEF_H

#include <stddef.h>

#include "str.h"

/* Pairs stored per event. A 64 KiB frame (limits.max_message_bytes' default) of typical
 * 30-byte pairs holds about 2000; real events seen so far hold up to ~200. Pairs past the
 * table are counted in n_dropped, never dropped unseen. */
#define CEF_MAX_EXT 1024

struct cef_pair {
    struct str key;   /* as sent */
    struct str value; /* unescaped */
};

struct cef_msg {
    struct str version, vendor, product, device_version, signature_id, name, severity;
    size_t n_ext;
    size_t n_dropped;  /* pairs after the first CEF_MAX_EXT: scanned, not stored */
    const char *error; /* static "cef: <what>" or NULL */
    /* Last: a message's few pairs and the fields above share cache lines. */
    struct cef_pair ext[CEF_MAX_EXT];
};

/* Offset of the "CEF:" that starts a CEF payload in buf (at the start or
 * after a space, and followed by a digit), or -1. */
long cef_find(const char *buf, size_t len);

/* Parses buf[0..len), which starts with "CEF:". Fills what parsed even on
 * error. Returns 0, or ERR_INVALID / ERR_LIMIT with out->error set. Slices in
 * *out point into buf or scratch: valid while buf is kept and until the next
 * scratch_reset. A scratch at least len bytes large never runs out; one that
 * does, or a NULL scratch, leaves a value with an escape as its raw text and
 * gives ERR_LIMIT "cef: scratch buffer too small, value left escaped". More
 * than CEF_MAX_EXT pairs: the first CEF_MAX_EXT are stored, the rest counted
 * in n_dropped, ERR_LIMIT "cef: too many extension fields". */
int cef_parse(const char *buf, size_t len, struct cef_msg *out, struct scratch *scratch);

/* Value of an extension key given by its short name ("suser") or its
 * ArcSight full name ("sourceUserName"); the last occurrence wins.
 * Absent slice when the message does not carry it. Looks the other name up
 * in the key table on every call: code that reads one key many times
 * resolves it once with cef_other_name and calls cef_get_pair. */
struct str cef_get(const struct cef_msg *m, struct str key);

/* Value of the extension written as key or as alt (absent alt: key only);
 * the last occurrence of either wins. No table search: linear in n_ext. */
struct str cef_get_pair(const struct cef_msg *m, struct str key, struct str alt);

/* Value of the custom field (csN, cnN, cfpN, c6aN, flexStringN, ...) whose
 * label field equals label: the last such label names the field, then the
 * last value of that field wins; absent when there is none. Linear in n_ext. */
struct str cef_get_label(const struct cef_msg *m, struct str label);

/* Full name for a short key and the other way round; absent when the key is
 * not in the CEF key table. */
struct str cef_full_name(struct str short_key);
struct str cef_short_name(struct str full_key);

/* The other name of key: its full name when key is a short name, else its
 * short name when key is a full name, else absent. Static storage. */
struct str cef_other_name(struct str key);

/* The key table's spelling of key (a short or a full name) when they are
 * equal ignoring ASCII case, else absent: for a "did you mean" when key is
 * not in the table. Static storage. A linear scan of the table: for
 * load-time checks, not per message. */
struct str cef_key_caseless(struct str key);

#endif
