/* SIGHUP for `rtr-agent run`, the daemon's side: the TLS listeners read
 * their certificates, keys and CRLs again, and the configuration file is
 * read again (config_load, as at start). When it does not load, nothing
 * changes but the audit log, which the delivery thread reopens all the same
 * (logrotate must not wait for a fixed file), and the reload is a failure.
 * When it loads, what can change while running is taken from it: the
 * mapping files its "mappings" name are loaded aside (nginx ngx_init_cycle)
 * and handed to the workers only when every one loads, else the running set
 * stays; the delivery thread's part (delivery_reload: the static directory
 * from identity.static.file, the audit log moved to audit.file or reopened,
 * the reload counted once) runs on its own loop. Every other setting needs
 * a restart: each top-level section whose JSON differs from the file as it
 * was at start gets a warning that says so. The workers keep the
 * configuration they started with (they hold pointers into it); the new one
 * lives only through reload_apply: the mapping set, the identity and the
 * delivery thread copy what they keep.
 *
 * Also the loading and logging of the mappings at start, which a SIGHUP
 * repeats. Everything here runs on the daemon's main thread. */
#ifndef RTR_RELOAD_H
#define RTR_RELOAD_H

#include "core/config.h"
#include <stdint.h>

#include "decide/mapping.h"
#include "deliver/delivery.h"
#include "ingest/worker.h"

struct reload;

/* Reads cfg's file as JSON (just after main's config_load): what a SIGHUP
 * compares the file with. cfg must outlive r. Returns 0 and *out (free with
 * reload_free), or ERR_CONFIG / ERR_NOMEM (logged). */
int reload_new(const struct config *cfg, struct reload **out);

/* NULL is fine. */
void reload_free(struct reload *r);

/* The daemon's part of a SIGHUP (see the top), then delivery_reload. The
 * TLS listeners of ep[0..n_ep) read their certificate, key and CRLs again
 * (from the files the running configuration names; each swapped in only
 * when it loads). On success every worker of workers[0..n_workers) is
 * handed the new mapping set and it replaces *set (the running set: its
 * reference is dropped); on failure *set stays. */
void reload_apply(struct reload *r, const struct endpoint *ep, size_t n_ep, struct worker **workers,
                  int n_workers, struct mapping_set **set, struct delivery *delivery,
                  int64_t counts_window_s);

/* Loads the mapping and policy files cfg names into *out, with the running
 * limits' regex flags (limits need a restart, a SIGHUP says so), and
 * refuses policies whose actions cfg cannot serve (policy_config_check:
 * no smtp section for an email...). Without any mapping, *out
 * is NULL, unless always: a SIGHUP that removed them all hands the workers
 * an empty set. Returns 0 or ERR_CONFIG (each problem logged); *out then
 * holds one reference (mapping_set_unref). */
int reload_load_mappings(const struct config *cfg, const struct limits_config *limits, int always,
                         struct mapping_set **out);

/* Logs "WHAT11 mappings from 8 files of /etc/rtr-agent/mappings/x.json":
 * which files, so that an operator sees the reload took the edited list.
 * set may be NULL (none). */
void reload_log_mappings(const char *what, const struct config *cfg, const struct mapping_set *set);

#endif
