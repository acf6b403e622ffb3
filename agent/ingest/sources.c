#include "sources.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

/* A source: its address as 16 bytes (IPv4 as ::ffff:a.b.c.d), and how many
 * connections it has open (0: the slot is free). */
struct sources_entry {
    unsigned char addr[16];
    unsigned open;
};

struct sources {
    pthread_mutex_t lock;
    struct sources_entry *e;
    size_t mask; /* slots - 1, a power of two minus one */
};

int sources_new(size_t max_open, struct sources **out)
{
    struct sources *s = calloc(1, sizeof(*s));
    size_t slots = 16;

    *out = NULL;
    if (s == NULL)
        return ERR_NOMEM;
    /* At most max_open sources are in at once: the table stays at most half
     * full, so probes stay short and a free slot is always found. */
    while (slots < 2 * max_open)
        slots *= 2;
    s->e = calloc(slots, sizeof(*s->e));
    if (s->e == NULL) {
        free(s);
        return ERR_NOMEM;
    }
    s->mask = slots - 1;
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return 0;
}

void sources_free(struct sources *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->lock);
    free(s->e);
    free(s);
}

/* The 16-byte form of sa's address; 0 for a family without one. */
static int sources_key(const struct sockaddr *sa, unsigned char key[16])
{
    if (sa->sa_family == AF_INET) {
        memset(key, 0, 10);
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 1;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 1;
    }
    return 0;
}

/* FNV-1a: addresses of one subnet differ in their last bytes. */
static size_t sources_hash(const unsigned char key[16])
{
    uint64_t h = 0xcbf29ce484222325u;

    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 0x100000001b3u;
    return (size_t)(h ^ (h >> 32));
}

/* The slot holding key, or the free slot where it would go. */
static size_t sources_find(const struct sources *s, const unsigned char key[16])
{
    size_t i = sources_hash(key) & s->mask;

    while (s->e[i].open != 0 && memcmp(s->e[i].addr, key, 16) != 0)
        i = (i + 1) & s->mask;
    return i;
}

/* Frees slot i, moving back the entries after it whose probe passed it
 * (linear probing needs no tombstones then). */
static void sources_remove(struct sources *s, size_t i)
{
    size_t j = i;

    for (;;) {
        j = (j + 1) & s->mask;
        if (s->e[j].open == 0)
            break;
        size_t home = sources_hash(s->e[j].addr) & s->mask;
        /* Entry j stays when its home lies cyclically in (i, j]. */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            s->e[i] = s->e[j];
            i = j;
        }
    }
    s->e[i].open = 0;
}

int sources_take(struct sources *s, const struct sockaddr *sa, int limit)
{
    unsigned char key[16];
    int rc = 0;

    if (!sources_key(sa, key))
        return 0;
    pthread_mutex_lock(&s->lock);
    size_t i = sources_find(s, key);
    if (limit > 0 && s->e[i].open >= (unsigned)limit) {
        rc = ERR_BUSY;
    } else {
        memcpy(s->e[i].addr, key, 16);
        s->e[i].open++;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void sources_release(struct sources *s, const struct sockaddr *sa)
{
    unsigned char key[16];

    if (!sources_key(sa, key))
        return;
    pthread_mutex_lock(&s->lock);
    size_t i = sources_find(s, key);
    if (s->e[i].open > 1)
        s->e[i].open--;
    else if (s->e[i].open == 1)
        sources_remove(s, i);
    pthread_mutex_unlock(&s->lock);
}

unsigned sources_count(struct sources *s, const struct sockaddr *sa)
{
    unsigned char key[16];
    unsigned n = 0;

    if (!sources_key(sa, key))
        return 0;
    pthread_mutex_lock(&s->lock);
    n = s->e[sources_find(s, key)].open;
    pthread_mutex_unlock(&s->lock);
    return n;
}
