/* Open connections per source address on one stream listener, across its
 * workers: limits.max_connections_per_source keeps one sender from taking
 * every slot of limits.max_connections. A fixed open-addressing table with
 * room for twice as many sources as connections may be open (a source is in
 * it while it has one open), under a mutex taken once per accept and per
 * close, never per message. */
#ifndef RTR_SOURCES_H
#define RTR_SOURCES_H

#include <stddef.h>
#include <sys/socket.h>

struct sources;

/* max_open: the most connections open at once on the listener. Returns 0
 * and *out (free with sources_free), or ERR_NOMEM. */
int sources_new(size_t max_open, struct sources **out);

/* NULL is fine. */
void sources_free(struct sources *s);

/* Counts a connection from sa's address (the port aside; an IPv4 address and
 * its IPv6-mapped form are one source). Returns 0, or ERR_BUSY when limit
 * (> 0) connections from it are open already: then nothing is counted. */
int sources_take(struct sources *s, const struct sockaddr *sa, int limit);

/* Uncounts a connection sources_take counted. */
void sources_release(struct sources *s, const struct sockaddr *sa);

/* Connections counted from sa's address now (tests). */
unsigned sources_count(struct sources *s, const struct sockaddr *sa);

#endif
