/* `rtr-agent run`: listeners, worker threads, the pipeline; returns when a
 * SIGTERM or SIGINT has stopped everything cleanly. */
#ifndef RTR_RUN_H
#define RTR_RUN_H

#include "core/config.h"

/* tap_path: write every parsed message as a `parse` JSON line there (NULL =
 * no tap). Returns 0 after a clean stop, a negative ERR_* when start-up failed
 * (the cause was logged). */
int run_daemon(const struct config *cfg, const char *tap_path);

#endif
