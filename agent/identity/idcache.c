/* The identity cache: chained hash buckets (grown as entries arrive, so a
 * large max_entries costs nothing until it is used) and two circular LRU
 * lists, one for resolved emails and one for "not found", each through a
 * sentinel: head.next is the most recently used entry, head.prev the next
 * to evict. Expired entries are dropped when a get meets them or when
 * eviction reaches them. */
#include "idcache.h"

#include <stdlib.h>
#include <string.h>

#include "directory.h"
#include "errors.h"

#define IDC_FIRST_BUCKETS 64

struct idc_node {
    struct idc_node *prev, *next;
};

struct idc_entry {
    struct idc_node lru;     /* first: a node in a list is its entry */
    struct idc_entry *chain; /* next in its bucket */
    uint64_t hash;
    int64_t expires; /* valid while now < expires */
    enum user_kind kind;
    const char *email; /* NULL: "not found"; else inside key[] after the key's NUL */
    size_t key_len;
    char key[];
};

/* One kind of answer: its entries in LRU order and its cap. */
struct idc_list {
    struct idc_node head; /* the sentinel */
    size_t count, max;
};

struct idcache {
    struct idc_entry **buckets;
    size_t n_buckets; /* a power of two */
    struct directory_hash_key key;
    int ttl_s, negative_ttl_s;
    struct idc_list found, not_found;
};

static void idc_list_init(struct idc_list *l, size_t max)
{
    l->head.prev = l->head.next = &l->head;
    l->count = 0;
    l->max = max;
}

int idcache_new(int ttl_s, int negative_ttl_s, size_t max_entries, struct idcache **out)
{
    struct idcache *c;

    *out = NULL;
    if (max_entries == 0 || ttl_s < 0 || negative_ttl_s < 0)
        return ERR_INVALID;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return ERR_NOMEM;
    if (directory_hash_key_init(&c->key) != 0) {
        free(c);
        return ERR_IO;
    }
    c->buckets = calloc(IDC_FIRST_BUCKETS, sizeof(*c->buckets));
    if (c->buckets == NULL) {
        free(c);
        return ERR_NOMEM;
    }
    c->n_buckets = IDC_FIRST_BUCKETS;
    c->ttl_s = ttl_s;
    c->negative_ttl_s = negative_ttl_s;
    idc_list_init(&c->found, max_entries);
    idc_list_init(&c->not_found, max_entries / 4 > 0 ? max_entries / 4 : 1);
    *out = c;
    return 0;
}

void idcache_free(struct idcache *c)
{
    if (c == NULL)
        return;
    idcache_clear(c);
    free(c->buckets);
    free(c);
}

/* The keyed hash of id, made to differ per kind: the same text as another
 * kind is another key, and usually in another bucket. */
static uint64_t idc_hash(const struct idcache *c, enum user_kind kind, struct str id)
{
    return directory_id_hash(&c->key, id) ^ ((uint64_t)kind * 0x9e3779b97f4a7c15ULL);
}

/* The link that points at (kind, id)'s entry (or the NULL that ends its
 * bucket). */
static struct idc_entry **idc_find(struct idcache *c, enum user_kind kind, struct str id,
                                   uint64_t hash)
{
    struct idc_entry **link = &c->buckets[hash & (c->n_buckets - 1)];

    while (*link != NULL && ((*link)->hash != hash || (*link)->kind != kind ||
                             !directory_id_equal(str_make((*link)->key, (*link)->key_len), id)))
        link = &(*link)->chain;
    return link;
}

static struct idc_list *idc_list_of(struct idcache *c, const struct idc_entry *e)
{
    return e->email != NULL ? &c->found : &c->not_found;
}

static void idc_lru_unlink(struct idc_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
}

static void idc_lru_push_front(struct idc_list *l, struct idc_node *n)
{
    n->prev = &l->head;
    n->next = l->head.next;
    l->head.next->prev = n;
    l->head.next = n;
}

/* Removes the entry *link points at. */
static void idc_remove(struct idcache *c, struct idc_entry **link)
{
    struct idc_entry *e = *link;

    *link = e->chain;
    idc_lru_unlink(&e->lru);
    idc_list_of(c, e)->count--;
    free(e);
}

/* Makes room in l by dropping its least recently used entry. */
static void idc_evict(struct idcache *c, struct idc_list *l)
{
    struct idc_entry *oldest = (struct idc_entry *)l->head.prev;

    idc_remove(c, idc_find(c, oldest->kind, str_make(oldest->key, oldest->key_len), oldest->hash));
}

/* Doubles the buckets; on failure the chains just stay longer. */
static void idc_grow(struct idcache *c)
{
    size_t n = c->n_buckets * 2;
    struct idc_entry **buckets = calloc(n, sizeof(*buckets));

    if (buckets == NULL)
        return;
    for (size_t i = 0; i < c->n_buckets; i++) {
        struct idc_entry *e = c->buckets[i], *chain;
        for (; e != NULL; e = chain) {
            chain = e->chain;
            e->chain = buckets[e->hash & (n - 1)];
            buckets[e->hash & (n - 1)] = e;
        }
    }
    free(c->buckets);
    c->buckets = buckets;
    c->n_buckets = n;
}

enum idcache_result idcache_get(struct idcache *c, enum user_kind kind, struct str id, int64_t now,
                                const char **email)
{
    struct idc_entry **link = idc_find(c, kind, id, idc_hash(c, kind, id));
    struct idc_entry *e = *link;

    if (e == NULL)
        return IDCACHE_MISS;
    if (now >= e->expires) {
        idc_remove(c, link);
        return IDCACHE_MISS;
    }
    idc_lru_unlink(&e->lru);
    idc_lru_push_front(idc_list_of(c, e), &e->lru);
    if (e->email == NULL)
        return IDCACHE_NOT_FOUND;
    *email = e->email;
    return IDCACHE_FOUND;
}

int idcache_put(struct idcache *c, enum user_kind kind, struct str id, const char *email,
                int64_t now)
{
    uint64_t hash = idc_hash(c, kind, id);
    struct idc_entry **link = idc_find(c, kind, id, hash);
    struct idc_list *l = email != NULL ? &c->found : &c->not_found;
    int ttl = email != NULL ? c->ttl_s : c->negative_ttl_s;
    size_t email_len = email != NULL ? strlen(email) : 0;
    struct idc_entry *e;

    /* The newest answer replaces the old one, even when it is not kept. */
    if (*link != NULL)
        idc_remove(c, link);
    if (ttl == 0)
        return 0;
    if (l->count == l->max)
        idc_evict(c, l);
    e = malloc(sizeof(*e) + id.len + 1 + email_len + 1);
    if (e == NULL)
        return ERR_NOMEM;
    e->hash = hash;
    e->expires = now + ttl;
    e->kind = kind;
    e->key_len = id.len;
    if (id.len > 0)
        memcpy(e->key, id.p, id.len);
    e->key[id.len] = '\0';
    e->email = NULL;
    if (email != NULL) {
        memcpy(e->key + id.len + 1, email, email_len + 1);
        e->email = e->key + id.len + 1;
    }
    e->chain = c->buckets[hash & (c->n_buckets - 1)];
    c->buckets[hash & (c->n_buckets - 1)] = e;
    idc_lru_push_front(l, &e->lru);
    l->count++;
    if (idcache_count(c) > c->n_buckets)
        idc_grow(c);
    return 0;
}

static void idc_list_clear(struct idc_list *l)
{
    struct idc_node *n, *next;

    for (n = l->head.next; n != &l->head; n = next) {
        next = n->next;
        free(n); /* the entry it starts */
    }
    idc_list_init(l, l->max);
}

void idcache_clear(struct idcache *c)
{
    idc_list_clear(&c->found);
    idc_list_clear(&c->not_found);
    memset(c->buckets, 0, c->n_buckets * sizeof(*c->buckets));
}

size_t idcache_count(const struct idcache *c)
{
    return c->found.count + c->not_found.count;
}
