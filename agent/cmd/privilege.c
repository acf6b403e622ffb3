#include "privilege.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "errors.h"
#include "core/log.h"

/* getpwnam_r/getgrnam_r's buffer: large groups list every member. */
#define PRIVILEGE_NSS_BUF 65536

/* Who `user` and `group` name. */
struct privilege_target {
    uid_t uid;
    gid_t gid;
    int listed; /* the user has a passwd entry (then its groups are looked up) */
};

/* A decimal id ("65534"): containers often run users without a passwd
 * entry. Returns 1 and *id, or 0. */
static int privilege_number(const char *s, unsigned long *id)
{
    char *end;

    if (*s < '0' || *s > '9')
        return 0;
    errno = 0;
    *id = strtoul(s, &end, 10);
    return errno == 0 && *end == '\0' && *id < (unsigned long)(uid_t)-1;
}

/* Resolves cfg->user and cfg->group; on failure writes why into why.
 * Returns 0, ERR_CONFIG or ERR_NOMEM. */
static int privilege_resolve(const struct config *cfg, struct privilege_target *t, char *why,
                             size_t len)
{
    char *buf = malloc(PRIVILEGE_NSS_BUF);
    struct passwd pw, *pwp = NULL;
    struct group gr, *grp = NULL;
    unsigned long id;
    int rc = ERR_CONFIG, e;

    if (buf == NULL)
        return ERR_NOMEM;
    e = getpwnam_r(cfg->user, &pw, buf, PRIVILEGE_NSS_BUF, &pwp);
    if (pwp != NULL) {
        t->uid = pw.pw_uid;
        t->gid = pw.pw_gid;
        t->listed = 1;
    } else if (privilege_number(cfg->user, &id)) {
        t->uid = (uid_t)id;
        t->listed = 0;
    } else {
        snprintf(why, len, "user: \"%s\": %s", cfg->user,
                 e != 0 ? strerror(e) : "no such user (getpwnam)");
        goto out;
    }
    if (cfg->group != NULL) {
        e = getgrnam_r(cfg->group, &gr, buf, PRIVILEGE_NSS_BUF, &grp);
        if (grp != NULL) {
            t->gid = gr.gr_gid;
        } else if (privilege_number(cfg->group, &id)) {
            t->gid = (gid_t)id;
        } else {
            snprintf(why, len, "group: \"%s\": %s", cfg->group,
                     e != 0 ? strerror(e) : "no such group (getgrnam)");
            goto out;
        }
    } else if (!t->listed) {
        snprintf(why, len,
                 "user: \"%s\" has no passwd entry, so it has no group of its own: set "
                 "\"group\" too",
                 cfg->user);
        goto out;
    }
    if (t->uid == 0) {
        snprintf(why, len, "user: \"%s\" is root: name an unprivileged user", cfg->user);
        goto out;
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

/* Whether a started-as user could switch to t: only root can, unless it
 * already is that user (and, when `group` names one, that group). */
static int privilege_can_switch(const struct config *cfg, const struct privilege_target *t,
                                char *why, size_t len)
{
    if (geteuid() == 0 ||
        (getuid() == t->uid && geteuid() == t->uid && (cfg->group == NULL || getegid() == t->gid)))
        return 1;
    snprintf(why, len, "user: started as uid %u, not root: it cannot switch to uid %u gid %u",
             (unsigned)geteuid(), (unsigned)t->uid, (unsigned)t->gid);
    return 0;
}

static void privilege_warn_root(const char *prefix)
{
    log_warning("%sRUNNING AS ROOT with every capability: a flaw in parsing what senders send "
                "would be a flaw as root. Set \"user\" (e.g. \"nobody\") in the config, or run it "
                "as systemd/rtr-agent.service does (DynamicUser)",
                prefix);
}

int privilege_check(const struct config *cfg, const char *config_path)
{
    struct privilege_target t;
    char why[512], prefix[4096];

    snprintf(prefix, sizeof(prefix), "%s: ", config_path);
    if (cfg->user == NULL) {
        if (geteuid() == 0)
            privilege_warn_root(prefix);
        return 0;
    }
    if (privilege_resolve(cfg, &t, why, sizeof(why)) != 0 ||
        !privilege_can_switch(cfg, &t, why, sizeof(why))) {
        log_error("%s%s", prefix, why);
        return 1;
    }
    return 0;
}

/* The threads of this process, from /proc/self/task; -1 when unreadable
 * (no /proc mounted). */
static int privilege_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Empties the bounding set (needs CAP_SETPCAP: root's). The loop ends at
 * the first capability this kernel does not know. */
static int privilege_drop_bounding(void)
{
    for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1) {
            log_error("cannot empty the capability bounding set (capability %d): %s", cap,
                      strerror(errno));
            return ERR_IO;
        }
    }
    return 0;
}

static int privilege_switch(const struct config *cfg, const struct privilege_target *t)
{
    uid_t ruid, euid, suid;
    int rc = privilege_drop_bounding();

    if (rc != 0)
        return rc;
    if ((t->listed ? initgroups(cfg->user, t->gid) : setgroups(1, &t->gid)) == -1) {
        log_error("user \"%s\": cannot set its groups: %s", cfg->user, strerror(errno));
        return ERR_IO;
    }
    if (setresgid(t->gid, t->gid, t->gid) == -1 || setresuid(t->uid, t->uid, t->uid) == -1) {
        log_error("user \"%s\": cannot switch to uid %u gid %u: %s", cfg->user, (unsigned)t->uid,
                  (unsigned)t->gid, strerror(errno));
        return ERR_IO;
    }
    /* Every id changed, the saved one too: there is no way back to root. */
    if (getresuid(&ruid, &euid, &suid) == -1 || ruid != t->uid || euid != t->uid ||
        suid != t->uid || setuid(0) != -1) {
        log_error("user \"%s\": the switch to uid %u did not take", cfg->user, (unsigned)t->uid);
        return ERR_IO;
    }
    return 0;
}

/* Clears the ambient set, then effective, permitted and inheritable.
 * *held is set when any was held. */
static int privilege_clear_caps(int *held)
{
    struct __user_cap_header_struct head = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &head, data) == -1) {
        log_error("cannot read this process's capabilities: %s", strerror(errno));
        return ERR_IO;
    }
    for (size_t i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
        *held |= data[i].effective != 0 || data[i].permitted != 0 || data[i].inheritable != 0;
    /* EINVAL: a kernel before 4.3 has no ambient set to clear. */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 && errno != EINVAL) {
        log_error("cannot clear the ambient capabilities: %s", strerror(errno));
        return ERR_IO;
    }
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capset, &head, data) == -1) {
        log_error("cannot drop this process's capabilities: %s", strerror(errno));
        return ERR_IO;
    }
    return 0;
}

int privilege_drop(const struct config *cfg)
{
    struct privilege_target t;
    char why[512];
    int held = geteuid() == 0, threads = privilege_threads(), rc;

    /* -1: no /proc to count them in; `run` starts none before this. */
    if (threads > 1) {
        log_error("the privilege drop must come before any thread starts (found %d)", threads);
        return ERR_IO;
    }
    if (cfg->user != NULL) {
        rc = privilege_resolve(cfg, &t, why, sizeof(why));
        if (rc == 0 && !privilege_can_switch(cfg, &t, why, sizeof(why)))
            rc = ERR_CONFIG;
        if (rc != 0) {
            log_error("%s", rc == ERR_CONFIG ? why : err_name(rc));
            return rc;
        }
        if (geteuid() == 0) {
            rc = privilege_switch(cfg, &t);
            if (rc != 0)
                return rc;
        }
    } else if (geteuid() == 0) {
        privilege_warn_root("");
        return 0; /* root without a user keeps what it asked for, loudly */
    }
    rc = privilege_clear_caps(&held);
    if (rc != 0)
        return rc;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
        log_error("cannot set no_new_privs: %s", strerror(errno));
        return ERR_IO;
    }
    if (held && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1) {
        log_error("cannot make the process undumpable: %s", strerror(errno));
        return ERR_IO;
    }
    if (held)
        log_info("running as uid %u gid %u, without capabilities", (unsigned)geteuid(),
                 (unsigned)getegid());
    return 0;
}
