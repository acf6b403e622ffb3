/* The parsers behind the config's address and network keys (numeric only:
 * no DNS at load time). The per-connection allowlist check that uses the
 * parsed networks is ingest's (ingest/allowlist.h). */
#ifndef RTR_CONFIG_NET_H
#define RTR_CONFIG_NET_H

#include <sys/socket.h>

/* One allowlist entry: an IPv4 or IPv6 network. */
struct cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned prefix;
};

/* ::ffff:0:0/96, the first 12 bytes of a v4-mapped IPv6 address (the form
 * a dual-stack socket reports an IPv4 peer in): config_parse_network stores
 * such a network as IPv4, and the allowlist check matches such a peer as
 * the IPv4 address in the last 4 bytes. */
extern const unsigned char config_v4_mapped_prefix[12];

/* Parses "1.2.3.4:514", "[::1]:514", "0.0.0.0:6514", ":514" (= 0.0.0.0:514)
 * into *ss. Addresses are numeric (no DNS at load time); port 0..65535, 0
 * meaning "any free port" (tests). Returns 0 or ERR_INVALID. */
int config_parse_address(const char *text, struct sockaddr_storage *ss, socklen_t *len);

/* Parses "10.0.0.0/8", "::1", "fe80::/10" into *c. Returns 0 or ERR_INVALID.
 * No prefix means a single host. Host bits set ("10.0.0.1/8") are an error:
 * in an allowlist the intent is ambiguous. A v4-mapped IPv6 network
 * ("::ffff:10.0.0.0/104") is stored as the IPv4 network it names. */
int config_parse_cidr(const char *text, struct cidr *c);

/* config_parse_cidr without rejecting host bits: *host_bits says whether
 * any were set, and *c holds the network with them cleared (for the
 * message that names it). Returns 0 or ERR_INVALID. */
int config_parse_network(const char *text, struct cidr *c, int *host_bits);

#endif
