/* systemd's readiness protocol without libsystemd: one datagram to the
 * socket named by $NOTIFY_SOCKET (sd_notify(3)). Without the variable (not
 * under systemd, or Type= other than notify) every call does nothing. */
#ifndef RTR_SDNOTIFY_H
#define RTR_SDNOTIFY_H

/* Sends state (e.g. "READY=1", "STOPPING=1") to the service manager.
 * Returns 0 (also when there is no manager), or ERR_IO / ERR_INVALID, which
 * the caller may log: the agent runs on without a manager's notice. */
int sdnotify_send(const char *state);

#endif
