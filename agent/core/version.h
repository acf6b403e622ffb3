/* The agent's version, and the versions of the libraries it runs with. */
#ifndef RTR_VERSION_H
#define RTR_VERSION_H

#include <stdio.h>

#define RTR_VERSION "0.1.0"

/* "VERSION (git COMMIT)", the commit when built from git. */
const char *version_text(void);

/* Prints "rtr-agent " version_text() and one line per linked library to f. */
void version_print(FILE *f);

#endif
