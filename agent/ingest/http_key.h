/* An HTTP listener's API key (api_key_file), shared by the worker that
 * serves the listener and the SIGHUP that reads it again: a rotated key
 * needs no restart. Only its SHA-256 is kept; requests are compared over
 * hashes in constant time, so neither the key nor its length is timed. */
#ifndef RTR_HTTP_KEY_H
#define RTR_HTTP_KEY_H

#include <stddef.h>

#include "core/config.h"

/* The shortest API key a listener takes. */
#define HTTP_KEY_MIN 16

struct http_key;

/* Reads lc->api_key_file (secret.h: a file or a systemd credential) before
 * the privilege drop. Returns 0 and *out (free with http_key_free), or
 * ERR_CONFIG (logged, naming the listener and the file) / ERR_NOMEM. */
int http_key_new(const struct listen_config *lc, struct http_key **out);

/* After the privilege drop: a key file the agent's user cannot read is
 * said now (warning) and left as it is at SIGHUP. */
void http_key_check_readable(struct http_key *k);

/* SIGHUP: reads the file again and, when it holds a valid key, uses it
 * from the next request on. Returns 0 (also when frozen), or ERR_CONFIG
 * (logged) with the running key kept. Thread-safe. */
int http_key_reload(struct http_key *k);

/* Whether v[0..len) is the key. Thread-safe. */
int http_key_matches(struct http_key *k, const char *v, size_t len);

void http_key_free(struct http_key *k); /* NULL is fine */

#endif
