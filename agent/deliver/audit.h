/* The audit log: one JSON line per decision and per dispatch outcome,
 *   {"time":"2026-10-02T09:12:44.120Z","source":"10.0.0.5:51514","transport":"tls",
 *    "mapping":"splunk-es-cef",
 *    "rule":"...","user":"EXAMPLE\\amorgan","email":"alice.morgan@example.com",
 *    "resolver":"ldap","event":"...","outcome":"dispatched","key":"<idempotency key>",
 *    "status":200,"attempts":1,"latency_ms":12}
 * with, under a response policy, "policy", "priority", "why" and "action"
 * after "event" (transport, resolver, detail, key, status, attempts, latency_ms and
 * the policy's keys only when there are; resolver names what found the email: identity.h; key
 * not with hashed users: it hashes the user without the secret). The
 * dead-letter file is written by the same code, without hashing, and
 * durably: each of its lines is fdatasync'ed before audit_write returns 0,
 * since the spool marks the alert done after it. Each line is
 * appended with O_APPEND, one write(2) per line while the disk takes it.
 * When a write is cut short (disk full, a file size limit) the fragment
 * stays, and the next line starts with a newline: lines never merge.
 *
 * With audit.hash_key_file, user and email are written as lowercase hex
 * HMAC-SHA256 of their bytes under that secret key: without the key a
 * guess cannot be tested. With audit.hash_users alone they are plain
 * SHA-256, which only pseudonymises: anyone with a list of staff emails or
 * account names can hash it and match the lines. Single-threaded. */
#ifndef RTR_AUDIT_H
#define RTR_AUDIT_H

#include <stddef.h>
#include <time.h>

#include "core/config.h"
#include "str.h"

struct audit;

struct audit_record {
    struct timespec time; /* when the message was received (CLOCK_REALTIME) */
    const char *source;   /* "ip:port" of the sender, or NULL */
    const char *mapping;
    struct str rule, user;
    const char *email;    /* NULL when unresolved */
    const char *resolver; /* what found the email ("cache", "ldap"...), or NULL */
    struct str event;
    const char *outcome;   /* "would-dispatch", "unresolved-user", ... */
    const char *detail;    /* optional reason ("static: not listed"), or NULL */
    const char *key;       /* the idempotency key, or NULL */
    int status;            /* the last HTTP status, or 0 */
    int attempts;          /* requests made (0: none; then no latency_ms either) */
    long latency_ms;       /* from receipt to this outcome */
    const char *transport; /* what it came by ("udp" ... "https"), NULL or "" if unknown */
    /* Under a policy (policy.h): its name, the priority, why that tier
     * held, and the action this line is about; NULL without. */
    const char *policy, *priority, *why, *action;
};

/* Prepares the writer of cfg->file without opening it: reads the key of
 * cfg->hash_key_file (once: a reopen keeps it; never logged), so that a
 * key only root may read is read before the agent drops to its user, and
 * the file is created by that user (audit_reopen). file_key names the file
 * in messages ("audit.file", "spool.dead_letter"; static text). durable:
 * every line is fdatasync'ed before audit_write returns 0 (the dead-letter
 * file). cfg->file NULL: *out is NULL and every audit_write is a no-op.
 * Each problem is logged naming the config key and the file
 * ("audit.hash_key_file: FILE: the audit hash key is shorter than 16 bytes
 * ..."). Returns 0, ERR_IO, ERR_CONFIG (an empty, short or overlong key)
 * or ERR_NOMEM. */
int audit_new(const struct audit_config *cfg, const char *file_key, int durable,
              struct audit **out);

/* audit_new for "audit.file", then audit_reopen: opens (creates, mode 0640)
 * cfg->file for appending ("audit.file: FILE: cannot open the audit log:
 * Is a directory"). Returns audit_new's errors or ERR_IO. */
int audit_open(const struct audit_config *cfg, struct audit **out);

/* For `check`: what audit_open would refuse, found with the same code but
 * without creating or writing anything. The key of cfg->hash_key_file
 * (when set, even without cfg->file) is read, validated and wiped; cfg->file,
 * when it exists, is opened for appending and closed (a folder, or a file
 * this process may not write, fails as audit_open would), else its folder
 * must take new files. Every problem is logged as audit_open logs it,
 * after "CONFIG_PATH: " when config_path is not NULL. Returns 0, or the
 * first problem's ERR_IO / ERR_CONFIG / ERR_NOMEM. */
int audit_check(const struct audit_config *cfg, const char *config_path);

/* audit_check's test of the file alone, for the file of any key
 * (file_key: "spool.dead_letter"): an existing file must open for
 * appending, a missing one's folder must take new files. Returns 0 or
 * ERR_IO / ERR_NOMEM (logged as audit_check logs). file NULL: 0. */
int audit_check_file(const char *file, const char *file_key, const char *config_path);

/* Writes one line (durable: and fdatasyncs it). Returns 0 or ERR_IO
 * (logged, rate-limited). A durable line whose fdatasync failed may be in
 * the file already: written again, it appears twice (never zero times). */
int audit_write(struct audit *a, const struct audit_record *r);

/* Opens the file, first after audit_new, then again after logrotate moved
 * it (SIGHUP). Returns 0 or ERR_IO (logged; the old descriptor is kept). */
int audit_reopen(struct audit *a);

/* The file's size: what it held when last (re)opened plus every byte
 * written to it since (fragments too). 0 for NULL or before the open. */
size_t audit_bytes(const struct audit *a);

void audit_free(struct audit *a); /* NULL is fine */

#endif
