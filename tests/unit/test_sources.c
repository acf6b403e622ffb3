/* Connections per source address: the table against a plain array model
 * through random takes and releases (deletions moving entries back across
 * clustered slots included), the limit, and IPv4 against its IPv6-mapped
 * form. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "ingest/sources.h"
#include "unit.h"

enum { ADDRESSES = 200, MAX_OPEN = 64, STEPS = 200000, LIMIT = 3 };

static struct sockaddr_in6 addr_of(int i)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)(1000 + i))};

    /* Neighbouring addresses: the hash must spread them, and clusters of
     * them exercise the moves on delete. */
    a.sin6_addr.s6_addr[0] = 0xfd;
    a.sin6_addr.s6_addr[15] = (unsigned char)i;
    a.sin6_addr.s6_addr[14] = (unsigned char)(i >> 8);
    return a;
}

static void test_model(void)
{
    static unsigned model[ADDRESSES];
    struct sources *s;
    unsigned total = 0, seed = 7;
    long bad = 0, refused = 0;

    CHECK_INT(sources_new(MAX_OPEN, &s), 0);
    for (int step = 0; step < STEPS; step++) {
        seed = seed * 1103515245u + 12345u;
        int i = (int)((seed >> 8) % ADDRESSES);
        struct sockaddr_in6 a = addr_of(i);
        int take = (seed >> 24) % 2 == 0;

        if (take && total < MAX_OPEN) {
            int rc = sources_take(s, (struct sockaddr *)&a, LIMIT);
            bad += rc != (model[i] >= LIMIT ? ERR_BUSY : 0);
            if (rc == 0) {
                model[i]++;
                total++;
            } else {
                refused++;
            }
        } else if (!take && model[i] > 0) {
            sources_release(s, (struct sockaddr *)&a);
            model[i]--;
            total--;
        }
        if (step % 1000 == 0)
            for (int k = 0; k < ADDRESSES; k++) {
                struct sockaddr_in6 b = addr_of(k);
                bad += sources_count(s, (struct sockaddr *)&b) != model[k];
            }
    }
    CHECK_INT(bad, 0);
    CHECK(refused > 0); /* the limit was really met */
    sources_free(s);
}

static void test_mapped_and_unlimited(void)
{
    struct sources *s;
    struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(1)};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(2)};

    inet_pton(AF_INET, "192.0.2.7", &v4.sin_addr);
    inet_pton(AF_INET6, "::ffff:192.0.2.7", &v6.sin6_addr);
    CHECK_INT(sources_new(4, &s), 0);
    CHECK_INT(sources_take(s, (struct sockaddr *)&v4, 2), 0);
    CHECK_INT(sources_take(s, (struct sockaddr *)&v6, 2), 0);
    CHECK_INT(sources_take(s, (struct sockaddr *)&v4, 2), ERR_BUSY);
    CHECK_INT(sources_take(s, (struct sockaddr *)&v4, 0), 0); /* 0: no limit, still counted */
    CHECK_INT(sources_count(s, (struct sockaddr *)&v6), 3);
    for (int i = 0; i < 3; i++)
        sources_release(s, (struct sockaddr *)&v4);
    CHECK_INT(sources_count(s, (struct sockaddr *)&v4), 0);
    sources_free(s);
}

int main(void)
{
    test_model();
    test_mapped_and_unlimited();
    return unit_report("test_sources");
}
