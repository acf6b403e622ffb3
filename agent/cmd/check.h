/* `rtr-agent check -c FILE`: loads everything a start would (the config,
 * every mapping file and regex, the static directory, TLS certificates and
 * keys, the secret files, the CA bundle, the audit hash key and log, the
 * spool and port file folders) and reports each problem on its own line
 * naming the file and the key, then nginx-style "rtr-agent: configuration
 * file FILE test is successful" or "... test failed" (stderr). It creates
 * and binds nothing (the agent may be running): a listen address that is
 * not this host's, or no identity resolver at all, only gets a warning.
 * It fails when no mapping loads (nothing could ever decide). A spool or
 * log folder that systemd creates at start (the unit's StateDirectory= and
 * LogsDirectory=) and that is not there yet is said to be so, not an
 * error; with dispatch.mode "dry-run" the SafeTitan secret is not needed
 * and not read. */
#ifndef RTR_CHECK_H
#define RTR_CHECK_H

#include "probe.h"

struct check_options {
    /* --strict: a warning is a problem too (as `vector validate
     * --deny-warnings`). */
    int strict;
    /* --credentials-from DIR: a path under /run/credentials/UNIT/ (what
     * systemd's LoadCredential= provides at start, not there before) is
     * checked as DIR/NAME instead: the folder the unit's LoadCredential=
     * lines load from (systemd/README.md). NULL: paths as written. */
    const char *credentials_from;
    /* --probe IDENTIFIER, --send-test EVENT EMAIL (probe.h): run once the
     * files check out. */
    struct probe_options probe;
};

/* Returns 0 when everything loaded (and, with strict, nothing warned),
 * else ERR_CONFIG. Problems in the config's keys do not stop the checks of
 * the files its other keys name: one run reports them all. */
int check_run(const char *config_path, const struct check_options *opt);

#endif
