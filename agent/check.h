/* `rtr-agent check -c FILE`: loads everything a start would (the config,
 * every mapping file and regex, the static directory, TLS certificates and
 * keys, the secret files, the CA bundle, the audit and spool folders) and
 * reports each problem on its own line naming the file and the key, then
 * nginx-style "rtr-agent: configuration file FILE test is successful" or
 * "... test failed" (stderr). */
#ifndef RTR_CHECK_H
#define RTR_CHECK_H

/* Returns 0 when everything loaded, else ERR_CONFIG. */
int check_run(const char *config_path);

#endif
