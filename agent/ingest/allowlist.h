/* The per-accept source check of a listener's allowlist (listen[].allow,
 * parsed by the config). */
#ifndef RTR_ALLOWLIST_H
#define RTR_ALLOWLIST_H

#include <stddef.h>
#include <sys/socket.h>

#include "core/config.h"

/* Nonzero when sa is inside one of the n networks (n == 0 allows all). A
 * v4-mapped IPv6 peer (::ffff:a.b.c.d, as a dual-stack socket reports IPv4
 * clients) is matched as the IPv4 address it carries. */
int allowlist_allows(const struct cidr *list, size_t n, const struct sockaddr *sa);

#endif
