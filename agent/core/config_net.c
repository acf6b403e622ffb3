/* Addresses and networks as the config writes them (config_net.h). */
#include "config_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "errors.h"

static int parse_port(const char *s, in_port_t *port)
{
    unsigned long n = 0;
    size_t i;

    for (i = 0; s[i] >= '0' && s[i] <= '9' && i < 5; i++)
        n = n * 10 + (unsigned long)(s[i] - '0');
    if (i == 0 || s[i] != '\0' || n > 65535)
        return ERR_INVALID;
    *port = htons((in_port_t)n);
    return 0;
}

int config_parse_address(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon, *port;
    size_t host_len;

    memset(ss, 0, sizeof(*ss));
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return ERR_INVALID;
        host_len = (size_t)(close - text - 1);
        if (host_len >= sizeof(host))
            return ERR_INVALID;
        memcpy(host, text + 1, host_len);
        host[host_len] = '\0';
        port = close + 2;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1 ||
            parse_port(port, &sin6->sin6_port) != 0)
            return ERR_INVALID;
        *len = sizeof(*sin6);
        return 0;
    }
    /* IPv4: exactly one colon; a bare IPv6 address would be ambiguous. */
    colon = strchr(text, ':');
    if (colon == NULL || strchr(colon + 1, ':') != NULL)
        return ERR_INVALID;
    host_len = (size_t)(colon - text);
    if (host_len >= sizeof(host))
        return ERR_INVALID;
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    sin->sin_family = AF_INET;
    if (host_len == 0)
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
        return ERR_INVALID;
    if (parse_port(colon + 1, &sin->sin_port) != 0)
        return ERR_INVALID;
    *len = sizeof(*sin);
    return 0;
}

const unsigned char config_v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int config_parse_network(const char *text, struct cidr *c, int *host_bits)
{
    char host[INET6_ADDRSTRLEN];
    const char *slash = strchr(text, '/');
    size_t host_len = slash != NULL ? (size_t)(slash - text) : strlen(text);
    unsigned max, prefix = 0;

    memset(c, 0, sizeof(*c));
    if (host_len == 0 || host_len >= sizeof(host))
        return ERR_INVALID;
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    if (inet_pton(AF_INET, host, c->addr) == 1) {
        c->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, c->addr) == 1) {
        c->family = AF_INET6;
        max = 128;
    } else {
        return ERR_INVALID;
    }
    if (slash == NULL) {
        prefix = max;
    } else {
        size_t i;
        for (i = 1; slash[i] >= '0' && slash[i] <= '9' && i <= 3; i++)
            prefix = prefix * 10 + (unsigned)(slash[i] - '0');
        if (i == 1 || slash[i] != '\0' || prefix > max)
            return ERR_INVALID;
    }
    c->prefix = prefix;
    *host_bits = 0;
    for (unsigned bit = prefix; bit < max; bit++) {
        unsigned char mask = (unsigned char)(0x80u >> (bit % 8));
        if (c->addr[bit / 8] & mask) {
            *host_bits = 1;
            c->addr[bit / 8] &= (unsigned char)~mask;
        }
    }
    if (c->family == AF_INET6 && prefix >= 96 &&
        memcmp(c->addr, config_v4_mapped_prefix, sizeof(config_v4_mapped_prefix)) == 0) {
        memmove(c->addr, c->addr + 12, 4);
        memset(c->addr + 4, 0, 12);
        c->family = AF_INET;
        c->prefix = prefix - 96;
    }
    return 0;
}

int config_parse_cidr(const char *text, struct cidr *c)
{
    int host_bits;

    if (config_parse_network(text, c, &host_bits) != 0 || host_bits)
        return ERR_INVALID;
    return 0;
}
