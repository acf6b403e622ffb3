/* `rtr-agent parse`: frames from files or stdin -> one `parse` JSON line
 * per message on stdout (the contract in design.md). */
#ifndef RTR_PARSE_H
#define RTR_PARSE_H

#include "framing.h"

/* The largest message `parse` accepts; longer ones are truncated (and say
 * so in "error"), never split. */
#define PARSE_CMD_MAX_MESSAGE (1u << 20)

/* Parses every file in paths[0..n) ("-" or n == 0: stdin; read by
 * reader.h). Returns 0, ERR_IO when an input could not be read (the others
 * are still parsed), or ERR_NOMEM. */
int parse_run(enum framing_mode framing, char *const *paths, int n);

#endif
