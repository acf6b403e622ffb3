/* The identity cache: scenarios as tables of operations on a moved clock
 * (hit, miss, negative answers, expiry of both, LRU eviction order, clear,
 * case-insensitive keys, TTLs of 0), then enough entries to grow the buckets
 * and the argument checks. */
#include <stdio.h>
#include <stdlib.h>

#include "errors.h"
#include "idcache.h"
#include "unit.h"

/* 'p' puts id -> email (NULL: not found) at now; 'g' gets id at now and
 * expects want (and email when found); 'c' clears. After each step the
 * cache holds count entries. */
struct step {
    char op;
    const char *id;
    const char *email;
    int64_t now;
    enum idcache_result want;
    size_t count;
};

#define MAX_STEPS 16

static const struct {
    const char *name;
    int ttl_s, negative_ttl_s;
    size_t max;
    struct step steps[MAX_STEPS];
} scenarios[] = {
    {"hit, miss, case-insensitive keys",
     60,
     30,
     10,
     {{'p', "EXAMPLE\\amorgan", "alice@example.com", 0, 0, 1},
      {'g', "EXAMPLE\\amorgan", "alice@example.com", 0, IDCACHE_FOUND, 1},
      {'g', "example\\AMORGAN", "alice@example.com", 1, IDCACHE_FOUND, 1},
      {'g', "example\\amorgan2", NULL, 1, IDCACHE_MISS, 1},
      {'g', "bob", NULL, 1, IDCACHE_MISS, 1}}},
    {"negative answers",
     60,
     30,
     10,
     {{'p', "ghost", NULL, 0, 0, 1},
      {'g', "ghost", NULL, 0, IDCACHE_NOT_FOUND, 1},
      {'g', "GHOST", NULL, 29, IDCACHE_NOT_FOUND, 1}}},
    {"expiry of both kinds",
     10,
     5,
     10,
     {{'p', "a", "a@example.com", 100, 0, 1},
      {'p', "b", NULL, 100, 0, 2},
      {'g', "b", NULL, 104, IDCACHE_NOT_FOUND, 2},
      {'g', "a", "a@example.com", 109, IDCACHE_FOUND, 2},
      {'g', "b", NULL, 105, IDCACHE_MISS, 1}, /* dropped when met */
      {'g', "a", NULL, 110, IDCACHE_MISS, 0},
      {'p', "a", "a2@example.com", 110, 0, 1},
      {'g', "a", "a2@example.com", 119, IDCACHE_FOUND, 1}}},
    {"a get does not extend the TTL",
     10,
     5,
     10,
     {{'p', "a", "a@example.com", 0, 0, 1},
      {'g', "a", "a@example.com", 9, IDCACHE_FOUND, 1},
      {'g', "a", NULL, 10, IDCACHE_MISS, 0}}},
    {"least recently used goes first",
     60,
     60,
     3,
     {{'p', "a", "a@x", 0, 0, 1},
      {'p', "b", "b@x", 0, 0, 2},
      {'p', "c", NULL, 0, 0, 3},
      {'g', "a", "a@x", 1, IDCACHE_FOUND, 3}, /* order now a, c, b */
      {'p', "d", "d@x", 2, 0, 3},             /* evicts b */
      {'g', "b", NULL, 3, IDCACHE_MISS, 3},
      {'g', "a", "a@x", 3, IDCACHE_FOUND, 3},
      {'g', "c", NULL, 3, IDCACHE_NOT_FOUND, 3},
      {'g', "d", "d@x", 3, IDCACHE_FOUND, 3}, /* order d, c, a */
      {'p', "e", "e@x", 4, 0, 3},             /* evicts a */
      {'g', "a", NULL, 5, IDCACHE_MISS, 3},
      {'g', "c", NULL, 5, IDCACHE_NOT_FOUND, 3},
      {'p', "C", "c@x", 5, 0, 3}, /* a new answer replaces, nothing evicted */
      {'g', "c", "c@x", 5, IDCACHE_FOUND, 3},
      {'g', "d", "d@x", 5, IDCACHE_FOUND, 3},
      {'g', "e", "e@x", 5, IDCACHE_FOUND, 3}}},
    {"one entry",
     60,
     60,
     1,
     {{'p', "a", "a@x", 0, 0, 1},
      {'p', "b", "b@x", 0, 0, 1},
      {'g', "a", NULL, 0, IDCACHE_MISS, 1},
      {'g', "b", "b@x", 0, IDCACHE_FOUND, 1}}},
    {"clear",
     60,
     60,
     10,
     {{'p', "a", "a@x", 0, 0, 1},
      {'p', "b", NULL, 0, 0, 2},
      {'c', NULL, NULL, 0, 0, 0},
      {'g', "a", NULL, 0, IDCACHE_MISS, 0},
      {'g', "b", NULL, 0, IDCACHE_MISS, 0},
      {'p', "a", "a2@x", 0, 0, 1},
      {'g', "a", "a2@x", 0, IDCACHE_FOUND, 1}}},
    {"negative_ttl 0 caches nothing negative",
     60,
     0,
     10,
     {{'p', "a", NULL, 0, 0, 0},
      {'g', "a", NULL, 0, IDCACHE_MISS, 0},
      {'p', "b", "b@x", 0, 0, 1},
      {'p', "B", NULL, 1, 0, 0}, /* the newer answer drops the older */
      {'g', "b", NULL, 1, IDCACHE_MISS, 0}}},
    {"ttl 0 caches nothing positive",
     0,
     30,
     10,
     {{'p', "a", "a@x", 0, 0, 0},
      {'g', "a", NULL, 0, IDCACHE_MISS, 0},
      {'p', "a", NULL, 0, 0, 1},
      {'g', "a", NULL, 0, IDCACHE_NOT_FOUND, 1}}},
    {"an empty identifier is a key like any other",
     60,
     60,
     10,
     {{'p', "", "e@x", 0, 0, 1},
      {'g', "", "e@x", 0, IDCACHE_FOUND, 1},
      {'g', " ", NULL, 0, IDCACHE_MISS, 1}}},
};

static struct str s(const char *c)
{
    return str_make(c, strlen(c));
}

static void run_scenario(size_t i)
{
    const char *name = scenarios[i].name;
    struct idcache *c = NULL;

    if (idcache_new(scenarios[i].ttl_s, scenarios[i].negative_ttl_s, scenarios[i].max, &c) != 0) {
        UNIT_FAIL("%s: idcache_new failed", name);
        return;
    }
    for (size_t k = 0; k < MAX_STEPS && scenarios[i].steps[k].op != 0; k++) {
        const struct step *st = &scenarios[i].steps[k];
        const char *email = NULL;
        enum idcache_result got;

        switch (st->op) {
        case 'p':
            if (idcache_put(c, s(st->id), st->email, st->now) != 0)
                UNIT_FAIL("%s: step %zu: put failed", name, k);
            break;
        case 'g':
            got = idcache_get(c, s(st->id), st->now, &email);
            if (got != st->want)
                UNIT_FAIL("%s: step %zu: get '%s': got %d, want %d", name, k, st->id, (int)got,
                          (int)st->want);
            else if (got == IDCACHE_FOUND && strcmp(email, st->email) != 0)
                UNIT_FAIL("%s: step %zu: get '%s': email '%s', want '%s'", name, k, st->id, email,
                          st->email);
            else
                unit_passed++;
            break;
        case 'c':
            idcache_clear(c);
            break;
        }
        if (idcache_count(c) != st->count)
            UNIT_FAIL("%s: step %zu: count %zu, want %zu", name, k, idcache_count(c), st->count);
        else
            unit_passed++;
    }
    idcache_free(c);
}

/* Enough entries to grow the buckets several times, then past the cap:
 * the oldest go, the newest stay. */
static void test_many(void)
{
    enum { MAX = 3000, N = 4000 };
    struct idcache *c = NULL;
    char id[32], want[48];
    size_t wrong = 0;

    CHECK_INT(idcache_new(60, 60, MAX, &c), 0);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "user%d", i);
        snprintf(want, sizeof(want), "user%d@example.com", i);
        if (idcache_put(c, s(id), want, 0) != 0)
            wrong++;
    }
    CHECK_INT(idcache_count(c), MAX);
    for (int i = 0; i < N; i++) {
        const char *email = NULL;
        enum idcache_result r;

        snprintf(id, sizeof(id), "USER%d", i);
        snprintf(want, sizeof(want), "user%d@example.com", i);
        r = idcache_get(c, s(id), 1, &email);
        if (i < N - MAX)
            wrong += r != IDCACHE_MISS;
        else
            wrong += r != IDCACHE_FOUND || strcmp(email, want) != 0;
    }
    CHECK_INT(wrong, 0);
    idcache_free(c);
}

static void test_arguments(void)
{
    struct idcache *c = (struct idcache *)&c;

    CHECK_INT(idcache_new(60, 60, 0, &c), ERR_INVALID);
    CHECK(c == NULL);
    CHECK_INT(idcache_new(-1, 60, 1, &c), ERR_INVALID);
    CHECK_INT(idcache_new(60, -1, 1, &c), ERR_INVALID);
    idcache_free(NULL);
}

int main(void)
{
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        run_scenario(i);
    test_many();
    test_arguments();
    return unit_report("idcache");
}
