/* rtr-agent: the command line. Everything else lives in libagent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "daemon.h"
#include "errors.h"
#include "parse_cmd.h"
#include "replay.h"
#include "version.h"

static const char usage_text[] =
    "usage: rtr-agent run -c FILE [--tap FILE]\n"
    "       rtr-agent check -c FILE\n"
    "       rtr-agent parse [--framing lf|octet] [FILE...]\n"
    "       rtr-agent replay -c FILE [--dry-run] [--explain] [FILE...]\n"
    "       rtr-agent version\n";

static int usage(void)
{
    fputs(usage_text, stderr);
    return 2;
}

/* -c FILE / --config FILE at argv[*i]: returns 1 and sets *path (moving *i
 * past the file), else 0. */
static int config_option(int argc, char **argv, int *i, const char **path)
{
    if ((strcmp(argv[*i], "-c") != 0 && strcmp(argv[*i], "--config") != 0) || *i + 1 >= argc)
        return 0;
    *path = argv[++*i];
    return 1;
}

static int cmd_run(int argc, char **argv)
{
    const char *config_path = NULL, *tap_path = NULL;
    struct config *cfg = NULL;

    for (int i = 0; i < argc; i++) {
        if (config_option(argc, argv, &i, &config_path))
            continue;
        if (strcmp(argv[i], "--tap") == 0 && i + 1 < argc)
            tap_path = argv[++i];
        else
            return usage();
    }
    if (config_path == NULL)
        return usage();
    if (config_load(config_path, &cfg) != 0)
        return 1;
    int rc = daemon_run(cfg, tap_path);
    config_free(cfg);
    return rc == 0 ? 0 : 1;
}

static int cmd_check(int argc, char **argv)
{
    const char *config_path = NULL;

    for (int i = 0; i < argc; i++) {
        if (!config_option(argc, argv, &i, &config_path))
            return usage();
    }
    if (config_path == NULL)
        return usage();
    return check_run(config_path) == 0 ? 0 : 1;
}

/* Options and files may mix until "--"; the files are gathered at the front
 * of argv (each moves down, never over an argument not yet read). */
static int cmd_replay(int argc, char **argv)
{
    struct replay_options opt = {0};
    const char *config_path = NULL;
    struct config *cfg = NULL;
    int n_files = 0, options = 1;

    for (int i = 0; i < argc; i++) {
        if (!options || argv[i][0] != '-' || argv[i][1] == '\0')
            argv[n_files++] = argv[i];
        else if (strcmp(argv[i], "--") == 0)
            options = 0;
        else if (strcmp(argv[i], "--dry-run") == 0)
            opt.dry_run = 1;
        else if (strcmp(argv[i], "--explain") == 0)
            opt.explain = 1;
        else if (!config_option(argc, argv, &i, &config_path))
            return usage();
    }
    if (config_path == NULL)
        return usage();
    if (config_load(config_path, &cfg) != 0)
        return 1;
    int rc = replay_run(cfg, &opt, argv, n_files);
    config_free(cfg);
    return rc == 0 ? 0 : 1;
}

static int cmd_parse(int argc, char **argv)
{
    enum framing_mode framing = FRAMING_LF;
    int i = 0;

    for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
        if (strcmp(argv[i], "--framing") == 0 && i + 1 < argc) {
            const char *f = argv[++i];
            if (strcmp(f, "lf") == 0)
                framing = FRAMING_LF;
            else if (strcmp(f, "octet") == 0)
                framing = FRAMING_OCTET;
            else
                return usage();
        } else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else {
            return usage();
        }
    }
    return parse_cmd_run(framing, argv + i, argc - i) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 2, argv + 2);
    if (strcmp(argv[1], "check") == 0)
        return cmd_check(argc - 2, argv + 2);
    if (strcmp(argv[1], "parse") == 0)
        return cmd_parse(argc - 2, argv + 2);
    if (strcmp(argv[1], "replay") == 0)
        return cmd_replay(argc - 2, argv + 2);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        version_print(stdout);
        return 0;
    }
    return usage();
}
