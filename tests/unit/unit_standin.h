/* The python3 stand-in servers for unit tests (tests/servers/standin.py run
 * through its CLI, certificates from tests/servers/certs.py) and an event
 * loop runner with a deadline. Header-only like unit.h; a test keeps its
 * own struct unit_standin_env and hands it in. */
#ifndef RTR_UNIT_STANDIN_H
#define RTR_UNIT_STANDIN_H

#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "unit.h"

/* One test's temporary folder (certificates, port and request files) and
 * where the scripts are. */
struct unit_standin_env {
    char dir[64];               /* "" until created */
    char servers[PATH_MAX];     /* tests/servers/, with the slash */
    char ca_pem[PATH_MAX + 16]; /* dir/ca.pem */
};

/* One running stand-in; pid 0 when none runs. */
struct unit_standin {
    pid_t pid;
    char url[64];                 /* "https://127.0.0.1:PORT" */
    char requests[PATH_MAX + 32]; /* the JSON lines it records */
};

struct unit_deadline {
    struct event_base *base;
    int expired;
};

static inline void unit_on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct unit_deadline *d = arg;

    (void)fd;
    (void)what;
    d->expired = 1;
    event_base_loopbreak(d->base);
}

/* Runs base's loop until *done reaches want (done NULL: until limit_ms);
 * 0 when in time. */
static inline int unit_run_until(struct event_base *base, const int *done, int want, long limit_ms)
{
    struct unit_deadline d = {base, 0};
    struct event *ev = evtimer_new(base, unit_on_deadline, &d);
    struct timeval tv = {limit_ms / 1000, (limit_ms % 1000) * 1000};

    evtimer_add(ev, &tv);
    while ((done == NULL || *done < want) && !d.expired)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(ev);
    return done != NULL && *done < want ? -1 : 0;
}

/* Looks for tests/servers/ from the working directory up (make check runs
 * from the repository root). */
static inline int unit_standin_find(struct unit_standin_env *env)
{
    char dir[PATH_MAX], probe[PATH_MAX + 32];

    if (getcwd(dir, sizeof(dir)) == NULL)
        return -1;
    for (int up = 0; up < 4; up++) {
        char *slash;

        snprintf(env->servers, sizeof(env->servers), "%.4000s/tests/servers/", dir);
        snprintf(probe, sizeof(probe), "%sstandin.py", env->servers);
        if (access(probe, R_OK) == 0)
            return 0;
        slash = strrchr(dir, '/');
        if (slash == NULL || slash == dir)
            break;
        *slash = '\0';
    }
    return -1;
}

/* Creates /tmp/rtr-test-NAME.XXXXXX, finds the scripts and has certs.py
 * write ca.pem, server.pem/.key and wrong.pem/.key there. */
static inline int unit_standin_setup(struct unit_standin_env *env, const char *name)
{
    char cmd[2 * PATH_MAX];

    snprintf(env->dir, sizeof(env->dir), "/tmp/rtr-test-%.20s.XXXXXX", name);
    if (mkdtemp(env->dir) == NULL) {
        env->dir[0] = '\0';
        return -1;
    }
    if (unit_standin_find(env) != 0)
        return -1;
    snprintf(cmd, sizeof(cmd), "python3 %scerts.py %s >/dev/null", env->servers, env->dir);
    snprintf(env->ca_pem, sizeof(env->ca_pem), "%s/ca.pem", env->dir);
    return system(cmd) == 0 && access(env->ca_pem, R_OK) == 0 ? 0 : -1;
}

static inline int unit_standin_remove(const char *path, const struct stat *st, int flag,
                                      struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes the temporary folder and all in it. */
static inline void unit_standin_cleanup(struct unit_standin_env *env)
{
    if (env->dir[0] != '\0')
        nftw(env->dir, unit_standin_remove, 8, FTW_DEPTH | FTW_PHYS);
    env->dir[0] = '\0';
}

/* Starts a stand-in of kind serving cert.pem/cert.key from env->dir, its
 * port and request files named after name, with extra arguments (NULL-ended,
 * may be NULL) appended, and waits at most 15 s for its port file. */
static inline int unit_standin_start(struct unit_standin *s, const struct unit_standin_env *env,
                                     const char *kind, const char *name, const char *cert_name,
                                     const char *const *extra)
{
    char py[PATH_MAX + 32], cert[PATH_MAX + 32], key[PATH_MAX + 32], port_file[PATH_MAX + 32];
    char buf[32];
    const char *argv[32];
    struct timespec pause = {0, 20 * 1000 * 1000};
    size_t n = 0;

    snprintf(py, sizeof(py), "%sstandin.py", env->servers);
    snprintf(cert, sizeof(cert), "%s/%s.pem", env->dir, cert_name);
    snprintf(key, sizeof(key), "%s/%s.key", env->dir, cert_name);
    snprintf(port_file, sizeof(port_file), "%s/%s.port", env->dir, name);
    snprintf(s->requests, sizeof(s->requests), "%s/%s.jsonl", env->dir, name);
    {
        const char *common[] = {"python3",     py,        "--kind",     kind,
                                "--cert",      cert,      "--key",      key,
                                "--port-file", port_file, "--requests", s->requests};

        for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
            argv[n++] = common[i];
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        if (n + 1 >= sizeof(argv) / sizeof(argv[0]))
            return -1;
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    s->pid = fork();
    if (s->pid == -1)
        return -1;
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* a crashed test leaves no server behind */
        execvp("python3", (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 750; i++) {
        char *end;
        long port;

        if (unit_read_file(port_file, buf, sizeof(buf)) > 0) {
            port = strtol(buf, &end, 10);
            if (port > 0 && port < 65536 && (*end == '\n' || *end == '\0')) {
                snprintf(s->url, sizeof(s->url), "https://127.0.0.1:%ld", port);
                return 0;
            }
        }
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = 0;
            break;
        }
        nanosleep(&pause, NULL);
    }
    return -1;
}

/* SIGTERM, then SIGKILL after 10 s: a stand-in that does not stop (a
 * bug of its own) fails the check here instead of hanging the test binary
 * until the runner's timeout. */
static inline void unit_standin_stop(struct unit_standin *s)
{
    const struct timespec pause = {0, 20 * 1000 * 1000};
    int exited = 0;

    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 500 && !exited; i++) {
        exited = waitpid(s->pid, NULL, WNOHANG) == s->pid;
        if (!exited)
            nanosleep(&pause, NULL);
    }
    if (!exited) {
        UNIT_FAIL("stand-in %d did not stop within 10 s of SIGTERM: killed", (int)s->pid);
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = 0;
}

#endif
