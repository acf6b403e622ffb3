/* Prints the agent's configuration key reference from the loader's own
 * tables: `keyref` the Markdown table of systemd/README.md (test_config
 * checks that the README holds it; regenerate it with this), `keyref
 * --man` the roff body of rtr-agent.json(5), which the Makefile puts in
 * place of @KEYS@ in systemd/rtr-agent.json.5.in. */
#include <stdio.h>
#include <string.h>

#include "core/config.h"

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--man") == 0)
        config_write_man_reference(stdout);
    else if (argc == 1)
        config_write_reference(stdout);
    else {
        fputs("usage: keyref [--man]\n", stderr);
        return 2;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
