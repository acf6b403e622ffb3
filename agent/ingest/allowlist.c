/* Allowlist checks (allowlist.h): run on every accepted connection and
 * every UDP datagram, so no allocation and no parsing. */
#include "allowlist.h"

#include <netinet/in.h>
#include <string.h>

static int prefix_matches(const unsigned char *net, const unsigned char *addr, unsigned prefix)
{
    unsigned whole = prefix / 8, rest = prefix % 8;

    if (memcmp(net, addr, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xffu << (8 - rest));
    return (net[whole] & mask) == (addr[whole] & mask);
}

int allowlist_allows(const struct cidr *list, size_t n, const struct sockaddr *sa)
{
    const unsigned char *addr;
    int family = sa->sa_family;

    if (n == 0)
        return 1;
    if (family == AF_INET) {
        addr = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (family == AF_INET6) {
        addr = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (memcmp(addr, config_v4_mapped_prefix, sizeof(config_v4_mapped_prefix)) == 0) {
            addr += sizeof(config_v4_mapped_prefix);
            family = AF_INET;
        }
    } else {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (list[i].family == family && prefix_matches(list[i].addr, addr, list[i].prefix))
            return 1;
    }
    return 0;
}
