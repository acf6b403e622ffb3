/* The audit log: one JSON line per decision the response thread finished,
 *   {"time":"2026-10-02T09:12:44.120Z","source":"10.0.0.5:51514","mapping":"splunk-es-cef",
 *    "rule":"...","user":"EXAMPLE\\amorgan","email":"alice.morgan@example.com",
 *    "event":"...","outcome":"would-dispatch"}
 * appended with O_APPEND and one write(2) per line, so a crash never leaves
 * half a line behind another. With audit.hash_users, user and email are
 * written as lowercase hex SHA-256 of their bytes. Single-threaded. */
#ifndef RTR_AUDIT_H
#define RTR_AUDIT_H

#include <time.h>

#include "config.h"
#include "str.h"

struct audit;

struct audit_record {
    struct timespec time; /* when the message was received (CLOCK_REALTIME) */
    const char *source;   /* "ip:port" of the sender, or NULL */
    const char *mapping;
    struct str rule, user;
    const char *email; /* NULL when unresolved */
    struct str event;
    const char *outcome; /* "would-dispatch", "unresolved-user", ... */
    const char *detail;  /* optional reason ("static: not listed"), or NULL */
};

/* Opens (creates, mode 0640) cfg->file for appending. cfg->file NULL: *out
 * is NULL and every audit_write is a no-op. Returns 0, or ERR_IO (logged,
 * naming the file). */
int audit_open(const struct audit_config *cfg, struct audit **out);

/* Writes one line. Returns 0 or ERR_IO (logged, rate-limited). */
int audit_write(struct audit *a, const struct audit_record *r);

/* Reopens the file (after logrotate moved it: SIGHUP). Returns 0 or ERR_IO
 * (the old descriptor is kept). */
int audit_reopen(struct audit *a);

void audit_free(struct audit *a); /* NULL is fine */

#endif
