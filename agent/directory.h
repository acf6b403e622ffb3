/* The static directory: a CSV file of `identifier,email` lines (RFC 4180:
 * quoted fields, "" inside quotes, CRLF or LF; lines starting with '#' and
 * blank lines skipped; an optional third column or more is an error).
 * Identifiers compare case-insensitively, as Active Directory does (ASCII
 * case folding; other bytes compare as they are). Loaded into a hash table
 * once; lookups do not allocate. Immutable once loaded: a reload builds a
 * new one aside and swaps it in only when it loaded cleanly. */
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
 * ASCII letters fold to lower case, other bytes compare as they are. The
 * hash agrees with the comparison. Neither allocates. */
uint64_t directory_id_hash(struct str id);
int directory_id_equal(struct str a, struct str b);

#endif
