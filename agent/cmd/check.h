/* `rtr-agent check -c FILE`: loads everything a start would (the config,
 * every mapping file and regex, the static directory, TLS certificates and
 * keys, the secret files, the CA bundle, the audit hash key and log, the
 * spool and port file folders) and reports each problem on its own line
 * naming the file and the key, then nginx-style "rtr-agent: configuration
 * file FILE test is successful" or "... test failed" (stderr). It creates
 * and binds nothing (the agent may be running): a listen address that is
 * not this host's, or no identity resolver at all, only gets a warning. */
#ifndef RTR_CHECK_H
#define RTR_CHECK_H

/* Returns 0 when everything loaded, else ERR_CONFIG. */
int check_run(const char *config_path);

#endif
