/* What the agent runs as. `run` binds its sockets, builds its TLS
 * contexts and reads its secrets with whatever it was started with, then,
 * before any thread exists, gives up everything it does not need for the
 * rest of its life:
 *
 *   - started as root with `user` set: setgroups (the user's groups, as
 *     initgroups finds them, with `group` as the primary), setresgid,
 *     setresuid; the capability bounding set is emptied first;
 *   - every capability left (effective, permitted, inheritable, ambient:
 *     systemd's AmbientCapabilities=CAP_NET_BIND_SERVICE after the bind) is
 *     cleared, whoever it runs as;
 *   - PR_SET_NO_NEW_PRIVS (nothing it could ever exec gains privileges);
 *   - PR_SET_DUMPABLE 0 once it held a privilege: no core file or ptrace
 *     by its new user can read the secrets in its memory.
 *
 * Capabilities and no_new_privs are per thread on Linux and inherited by
 * threads made later, hence "before any thread": privilege_drop refuses
 * to run otherwise. Files the agent creates afterwards (the spool, the
 * audit log, the dead-letter file, port files) belong to the user. */
#ifndef RTR_PRIVILEGE_H
#define RTR_PRIVILEGE_H

#include "core/config.h"

/* `check`: config_path-prefixed errors for a `user`/`group` that does not
 * exist, or that this process could not switch to (not root, and not
 * already that user); the loud warning `run` gives when started as root
 * without `user`. Returns the number of errors (0 or 1). */
int privilege_check(const struct config *cfg, const char *config_path);

/* `run`: the drop described above. Logs each step that fails, and the
 * result ("running as uid 65534 gid 65534, no capabilities"). Returns 0,
 * ERR_CONFIG (an unknown user or group, or `user` set while started as
 * another non-root user) or ERR_IO (a system call refused: the agent must
 * then not start). */
int privilege_drop(const struct config *cfg);

#endif
