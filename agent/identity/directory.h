/* The static directory: a CSV file of `identifier,email` lines (RFC 4180:
 * quoted fields, "" inside quotes, CRLF or LF; lines starting with '#' and
 * blank lines skipped; an optional third column or more is an error; a
 * UTF-8 byte order mark before the first line is skipped). Spaces and tabs
 * around an identifier or an email are dropped, inside quotes too (unlike
 * RFC 4180): the mappings trim every value they yield (mapping.h), so
 * "jdoe " could never be looked up, and an email never holds a blank.
 * Identifiers compare case-insensitively, as Active Directory does (see
 * directory_id_equal for what folds). Loaded into a hash table once;
 * lookups do not allocate. Immutable once loaded: a reload builds a new one
 * aside and swaps it in only when it loaded cleanly. */
#ifndef RTR_DIRECTORY_H
#define RTR_DIRECTORY_H

#include <stddef.h>
#include <stdint.h>

#include "str.h"

/* Longest identifier or email accepted; longer is a load error naming the
 * line. */
#define DIRECTORY_MAX_FIELD 1024

struct directory;

/* Loads path. Each problem is printed through the log as "FILE:LINE: what"
 * (an unterminated quote, a missing email, an email without '@', a
 * duplicate identifier with a different email, ...), all of them. Returns 0
 * and *out (free with directory_free), ERR_IO when the file cannot be read
 * (logged with the reason) or ERR_CONFIG. */
int directory_load(const char *path, struct directory **out);

void directory_free(struct directory *d); /* NULL is fine */

/* The email for id (case-insensitive), or NULL. The string belongs to d. */
const char *directory_lookup(const struct directory *d, struct str id);

size_t directory_count(const struct directory *d);

/* How identifiers compare, here and in the identity cache (idcache.h):
 * with Unicode simple case folding (CaseFolding.txt, status C and S) of the
 * scripts directory names use most:
 *   ASCII                 A-Z -> a-z
 *   Latin-1 Supplement    U+00C0-U+00DE but U+00D7 -> +0x20; U+00B5 -> U+03BC
 *   Latin Extended-A      U+0100-U+017F upper/lower pairs -> the lower one;
 *                         U+0178 -> U+00FF, U+017F -> 's'; U+0130, U+0131,
 *                         U+0138 and U+0149 have no simple folding
 *   Greek                 U+0391-U+03A9 but U+03A2 -> +0x20; U+03C2 -> U+03C3
 *   Cyrillic              U+0410-U+042F -> +0x20, U+0400-U+040F -> +0x50
 * Everything else compares byte for byte: other characters, and bytes that
 * are not valid UTF-8 (each stands for itself, and never reads past the
 * identifier). Neither function allocates. */
int directory_id_equal(struct str a, struct str b);

/* The secret that keys directory_id_hash, drawn per table so that a sender
 * cannot choose identifiers that all land in one bucket. */
struct directory_hash_key {
    uint64_t k0, k1;
};

/* Fills *key from getrandom(2). Returns 0 or ERR_IO (logged). */
int directory_hash_key_init(struct directory_hash_key *key);

/* SipHash-2-4 under key of id's folded form: identifiers that
 * directory_id_equal calls equal hash alike. */
uint64_t directory_id_hash(const struct directory_hash_key *key, struct str id);

#endif
