/* rtr-agent: the command line. Everything else lives in libagent. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cmd/check.h"
#include "core/config.h"
#include "cmd/run.h"
#include "errors.h"
#include "cmd/parse.h"
#include "cmd/replay.h"
#include "core/version.h"

static const char usage_text[] =
    "usage: rtr-agent run -c FILE [--tap FILE]\n"
    "       rtr-agent check -c FILE [--strict] [--credentials-from DIR]\n"
    "                       [--probe IDENTIFIER] [--send-test EVENT EMAIL]\n"
    "       rtr-agent parse [--framing lf|octet] [FILE...]\n"
    "       rtr-agent replay -c FILE [--framing lf|octet] [--dry-run] [--explain]\n"
    "                        [--expect EXPECTED] [--http] [FILE...]\n"
    "       rtr-agent version\n";

/* Usage errors exit 2, as failures exit 1: scripts can tell them apart. */
#define EXIT_USAGE 2

static int usage(void)
{
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

/* Says what was wrong ("rtr-agent CMD: ..."; cmd NULL: no command yet),
 * then the usage. Returns EXIT_USAGE. */
static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "rtr-agent%s%s: ", cmd != NULL ? " " : "", cmd != NULL ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return usage();
}

/* An argument cmd does not take. */
static int bad_argument(const char *cmd, const char *arg)
{
    if (arg[0] == '-' && arg[1] != '\0')
        return usage_error(cmd, "unknown option %s", arg);
    return usage_error(cmd, "unexpected argument %s", arg);
}

static int is_config_option(const char *arg)
{
    return strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0;
}

/* The value of option argv[*i] into *value, moving *i past it. Returns 0,
 * or EXIT_USAGE after saying it is missing. */
static int option_value(const char *cmd, int argc, char **argv, int *i, const char **value)
{
    if (*i + 1 >= argc)
        return usage_error(cmd, "%s needs a value", argv[*i]);
    *value = argv[++*i];
    return 0;
}

/* --framing's value (argv[*i] is the option) into *framing, moving *i past
 * it. Returns 0, or EXIT_USAGE after saying what was wrong. */
static int framing_option(const char *cmd, int argc, char **argv, int *i,
                          enum framing_mode *framing)
{
    const char *f = NULL;

    if (option_value(cmd, argc, argv, i, &f) != 0)
        return EXIT_USAGE;
    if (strcmp(f, "lf") == 0)
        *framing = FRAMING_LF;
    else if (strcmp(f, "octet") == 0)
        *framing = FRAMING_OCTET;
    else
        return usage_error(cmd, "--framing is lf or octet, not %s", f);
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    const char *config_path = NULL, *tap_path = NULL;
    struct config *cfg = NULL;

    for (int i = 0; i < argc; i++) {
        const char **value = is_config_option(argv[i])       ? &config_path
                             : strcmp(argv[i], "--tap") == 0 ? &tap_path
                                                             : NULL;
        if (value == NULL)
            return bad_argument("run", argv[i]);
        if (option_value("run", argc, argv, &i, value) != 0)
            return EXIT_USAGE;
    }
    if (config_path == NULL)
        return usage_error("run", "-c FILE is required");
    if (config_load(config_path, &cfg) != 0)
        return 1;
    int rc = run_daemon(cfg, tap_path);
    config_free(cfg);
    return rc == 0 ? 0 : 1;
}

static int cmd_check(int argc, char **argv)
{
    struct check_options opt = {0};
    const char *config_path = NULL;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--strict") == 0) {
            opt.strict = 1;
            continue;
        }
        if (strcmp(argv[i], "--credentials-from") == 0) {
            if (option_value("check", argc, argv, &i, &opt.credentials_from) != 0)
                return EXIT_USAGE;
            continue;
        }
        if (strcmp(argv[i], "--probe") == 0) {
            if (option_value("check", argc, argv, &i, &opt.probe.identifier) != 0)
                return EXIT_USAGE;
            continue;
        }
        if (strcmp(argv[i], "--send-test") == 0) {
            if (option_value("check", argc, argv, &i, &opt.probe.send_event) != 0 ||
                option_value("check", argc, argv, &i, &opt.probe.send_email) != 0)
                return EXIT_USAGE;
            continue;
        }
        if (!is_config_option(argv[i]))
            return bad_argument("check", argv[i]);
        if (option_value("check", argc, argv, &i, &config_path) != 0)
            return EXIT_USAGE;
    }
    if (config_path == NULL)
        return usage_error("check", "-c FILE is required");
    return check_run(config_path, &opt) == 0 ? 0 : 1;
}

/* Options and files may mix until "--"; the files are gathered at the front
 * of argv (each moves down, never over an argument not yet read). */
static int cmd_replay(int argc, char **argv)
{
    struct replay_options opt = {.framing = FRAMING_LF};
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
        else if (strcmp(argv[i], "--http") == 0)
            opt.http = 1;
        else if (strcmp(argv[i], "--expect") == 0) {
            if (option_value("replay", argc, argv, &i, &opt.expect) != 0)
                return EXIT_USAGE;
        } else if (strcmp(argv[i], "--framing") == 0) {
            if (framing_option("replay", argc, argv, &i, &opt.framing) != 0)
                return EXIT_USAGE;
        } else if (!is_config_option(argv[i]))
            return bad_argument("replay", argv[i]);
        else if (option_value("replay", argc, argv, &i, &config_path) != 0)
            return EXIT_USAGE;
    }
    if (config_path == NULL)
        return usage_error("replay", "-c FILE is required");
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
        if (strcmp(argv[i], "--framing") == 0) {
            if (framing_option("parse", argc, argv, &i, &framing) != 0)
                return EXIT_USAGE;
        } else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else {
            return bad_argument("parse", argv[i]);
        }
    }
    return parse_run(framing, argv + i, argc - i) == 0 ? 0 : 1;
}

static int main_command(int argc, char **argv)
{
    if (argc < 2)
        return usage_error(NULL, "a command is required");
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
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    return usage_error(NULL, "unknown command %s", argv[1]);
}

int main(int argc, char **argv)
{
    int rc;

    /* Once, before any thread: libcurl's global state is not thread-safe
     * to set up. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "rtr-agent: cannot initialise libcurl\n");
        return 1;
    }
    rc = main_command(argc, argv);
    curl_global_cleanup();
    return rc;
}
