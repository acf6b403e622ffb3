/* The identity cache: scenarios as tables of operations on a moved clock
 * (hit, miss, negative answers, expiry of both, LRU eviction order in each
 * list, answers moving between the lists, clear, case-insensitive keys,
 * the kind as part of the key, TTLs of 0), then enough entries to grow the
 * buckets, a flood of "not found" that must not evict an email, and the
 * argument checks. */
#include <stdio.h>
#include <stdlib.h>

#include "errors.h"
#include "identity/idcache.h"
#include "unit.h"

/* 'p' puts (kind, id) -> email (NULL: not found) at now; 'g' gets (kind,
 * id) at now and expects want (and email when found); 'c' clears. After
 * each step the cache holds count entries. */
struct step {
    char op;
    const char *id;
    const char *email;
    int64_t now;
    enum idcache_result want;
    size_t count;
    enum user_kind kind;
};

#define MAX_STEPS 18

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
     {{'p', "EXAMPLE\\amorgan", "alice@example.com", 0, 0, 1, USER_KIND_SAM},
      {'g', "EXAMPLE\\amorgan", "alice@example.com", 0, IDCACHE_FOUND, 1, USER_KIND_SAM},
      {'g', "example\\AMORGAN", "alice@example.com", 1, IDCACHE_FOUND, 1, USER_KIND_SAM},
      {'g', "example\\amorgan2", NULL, 1, IDCACHE_MISS, 1, USER_KIND_SAM},
      {'g', "bob", NULL, 1, IDCACHE_MISS, 1, USER_KIND_SAM},
      {'p', "EXAMPLE\\J\xc3\xbcrgen", "j@example.com", 1, 0, 2, USER_KIND_SAM},
      {'g', "example\\J\xc3\x9cRGEN", "j@example.com", 1, IDCACHE_FOUND, 2, USER_KIND_SAM}}},
    {"negative answers",
     60,
     30,
     10,
     {{'p', "ghost", NULL, 0, 0, 1, USER_KIND_SAM},
      {'g', "ghost", NULL, 0, IDCACHE_NOT_FOUND, 1, USER_KIND_SAM},
      {'g', "GHOST", NULL, 29, IDCACHE_NOT_FOUND, 1, USER_KIND_SAM}}},
    {"the kind is part of the key",
     60,
     30,
     10,
     {{'p', "1234", "a@x", 0, 0, 1, USER_KIND_EMPLOYEE_ID},
      {'g', "1234", NULL, 0, IDCACHE_MISS, 1, USER_KIND_SAM},
      {'g', "1234", "a@x", 0, IDCACHE_FOUND, 1, USER_KIND_EMPLOYEE_ID},
      {'p', "1234", NULL, 0, 0, 2, USER_KIND_SAM},
      {'g', "1234", "a@x", 0, IDCACHE_FOUND, 2, USER_KIND_EMPLOYEE_ID},
      {'g', "1234", NULL, 0, IDCACHE_NOT_FOUND, 2, USER_KIND_SAM},
      {'p', "1234", "b@x", 0, 0, 2, USER_KIND_SAM}, /* replaces only its own kind */
      {'g', "1234", "a@x", 0, IDCACHE_FOUND, 2, USER_KIND_EMPLOYEE_ID},
      {'g', "1234", "b@x", 0, IDCACHE_FOUND, 2, USER_KIND_SAM}}},
    {"expiry of both kinds",
     10,
     5,
     10,
     {{'p', "a", "a@example.com", 100, 0, 1, USER_KIND_SAM},
      {'p', "b", NULL, 100, 0, 2, USER_KIND_SAM},
      {'g', "b", NULL, 104, IDCACHE_NOT_FOUND, 2, USER_KIND_SAM},
      {'g', "a", "a@example.com", 109, IDCACHE_FOUND, 2, USER_KIND_SAM},
      {'g', "b", NULL, 105, IDCACHE_MISS, 1, USER_KIND_SAM}, /* dropped when met */
      {'g', "a", NULL, 110, IDCACHE_MISS, 0, USER_KIND_SAM},
      {'p', "a", "a2@example.com", 110, 0, 1, USER_KIND_SAM},
      {'g', "a", "a2@example.com", 119, IDCACHE_FOUND, 1, USER_KIND_SAM}}},
    {"a get does not extend the TTL",
     10,
     5,
     10,
     {{'p', "a", "a@example.com", 0, 0, 1, USER_KIND_SAM},
      {'g', "a", "a@example.com", 9, IDCACHE_FOUND, 1, USER_KIND_SAM},
      {'g', "a", NULL, 10, IDCACHE_MISS, 0, USER_KIND_SAM}}},
    {"least recently used email goes first",
     60,
     60,
     3,
     {{'p', "a", "a@x", 0, 0, 1, USER_KIND_SAM},
      {'p', "b", "b@x", 0, 0, 2, USER_KIND_SAM},
      {'p', "c", "c@x", 0, 0, 3, USER_KIND_SAM},
      {'g', "a", "a@x", 1, IDCACHE_FOUND, 3, USER_KIND_SAM}, /* order now a, c, b */
      {'p', "d", "d@x", 2, 0, 3, USER_KIND_SAM},             /* evicts b */
      {'g', "b", NULL, 3, IDCACHE_MISS, 3, USER_KIND_SAM},
      {'g', "a", "a@x", 3, IDCACHE_FOUND, 3, USER_KIND_SAM},
      {'g', "c", "c@x", 3, IDCACHE_FOUND, 3, USER_KIND_SAM},
      {'g', "d", "d@x", 3, IDCACHE_FOUND, 3, USER_KIND_SAM}, /* order d, c, a */
      {'p', "e", "e@x", 4, 0, 3, USER_KIND_SAM},             /* evicts a */
      {'g', "a", NULL, 5, IDCACHE_MISS, 3, USER_KIND_SAM},
      {'p', "C", "c2@x", 5, 0, 3, USER_KIND_SAM}, /* a new answer replaces, nothing evicted */
      {'g', "c", "c2@x", 5, IDCACHE_FOUND, 3, USER_KIND_SAM},
      {'g', "d", "d@x", 5, IDCACHE_FOUND, 3, USER_KIND_SAM},
      {'g', "e", "e@x", 5, IDCACHE_FOUND, 3, USER_KIND_SAM}}},
    {"\"not found\" answers only evict each other (8 / 4 = 2 of them)",
     60,
     60,
     8,
     {{'p', "a", "a@x", 0, 0, 1, USER_KIND_SAM},
      {'p', "b", "b@x", 0, 0, 2, USER_KIND_SAM},
      {'p', "x", NULL, 0, 0, 3, USER_KIND_SAM},
      {'p', "y", NULL, 0, 0, 4, USER_KIND_SAM},
      {'p', "z", NULL, 0, 0, 4, USER_KIND_SAM}, /* evicts x, not an email */
      {'g', "x", NULL, 1, IDCACHE_MISS, 4, USER_KIND_SAM},
      {'g', "y", NULL, 1, IDCACHE_NOT_FOUND, 4, USER_KIND_SAM},
      {'g', "z", NULL, 1, IDCACHE_NOT_FOUND, 4, USER_KIND_SAM}, /* order z, y */
      {'p', "w", NULL, 2, 0, 4, USER_KIND_SAM},                 /* evicts y */
      {'g', "y", NULL, 3, IDCACHE_MISS, 4, USER_KIND_SAM},
      {'g', "z", NULL, 3, IDCACHE_NOT_FOUND, 4, USER_KIND_SAM},
      {'g', "w", NULL, 3, IDCACHE_NOT_FOUND, 4, USER_KIND_SAM},
      {'g', "a", "a@x", 3, IDCACHE_FOUND, 4, USER_KIND_SAM},
      {'g', "b", "b@x", 3, IDCACHE_FOUND, 4, USER_KIND_SAM}}},
    {"a new answer moves between the lists",
     60,
     60,
     4,
     {{'p', "a", NULL, 0, 0, 1, USER_KIND_SAM},
      {'p', "A", "a@x", 0, 0, 1, USER_KIND_SAM},
      {'p', "b", NULL, 0, 0, 2, USER_KIND_SAM}, /* the one "not found" slot is free again */
      {'g', "a", "a@x", 0, IDCACHE_FOUND, 2, USER_KIND_SAM},
      {'g', "b", NULL, 0, IDCACHE_NOT_FOUND, 2, USER_KIND_SAM},
      {'p', "B", "b@x", 0, 0, 2, USER_KIND_SAM},
      {'p', "c", NULL, 0, 0, 3, USER_KIND_SAM},
      {'g', "a", "a@x", 0, IDCACHE_FOUND, 3, USER_KIND_SAM},
      {'g', "b", "b@x", 0, IDCACHE_FOUND, 3, USER_KIND_SAM},
      {'g', "c", NULL, 0, IDCACHE_NOT_FOUND, 3, USER_KIND_SAM}}},
    {"one entry of each",
     60,
     60,
     1,
     {{'p', "a", "a@x", 0, 0, 1, USER_KIND_SAM},
      {'p', "b", "b@x", 0, 0, 1, USER_KIND_SAM},
      {'g', "a", NULL, 0, IDCACHE_MISS, 1, USER_KIND_SAM},
      {'g', "b", "b@x", 0, IDCACHE_FOUND, 1, USER_KIND_SAM},
      {'p', "c", NULL, 0, 0, 2, USER_KIND_SAM},
      {'p', "d", NULL, 0, 0, 2, USER_KIND_SAM},
      {'g', "c", NULL, 0, IDCACHE_MISS, 2, USER_KIND_SAM},
      {'g', "d", NULL, 0, IDCACHE_NOT_FOUND, 2, USER_KIND_SAM},
      {'g', "b", "b@x", 0, IDCACHE_FOUND, 2, USER_KIND_SAM}}},
    {"clear",
     60,
     60,
     10,
     {{'p', "a", "a@x", 0, 0, 1, USER_KIND_SAM},
      {'p', "b", NULL, 0, 0, 2, USER_KIND_SAM},
      {'c', NULL, NULL, 0, 0, 0, USER_KIND_SAM},
      {'g', "a", NULL, 0, IDCACHE_MISS, 0, USER_KIND_SAM},
      {'g', "b", NULL, 0, IDCACHE_MISS, 0, USER_KIND_SAM},
      {'p', "a", "a2@x", 0, 0, 1, USER_KIND_SAM},
      {'g', "a", "a2@x", 0, IDCACHE_FOUND, 1, USER_KIND_SAM}}},
    {"negative_ttl 0 caches nothing negative",
     60,
     0,
     10,
     {{'p', "a", NULL, 0, 0, 0, USER_KIND_SAM},
      {'g', "a", NULL, 0, IDCACHE_MISS, 0, USER_KIND_SAM},
      {'p', "b", "b@x", 0, 0, 1, USER_KIND_SAM},
      {'p', "B", NULL, 1, 0, 0, USER_KIND_SAM}, /* the newer answer drops the older */
      {'g', "b", NULL, 1, IDCACHE_MISS, 0, USER_KIND_SAM}}},
    {"ttl 0 caches nothing positive",
     0,
     30,
     10,
     {{'p', "a", "a@x", 0, 0, 0, USER_KIND_SAM},
      {'g', "a", NULL, 0, IDCACHE_MISS, 0, USER_KIND_SAM},
      {'p', "a", NULL, 0, 0, 1, USER_KIND_SAM},
      {'g', "a", NULL, 0, IDCACHE_NOT_FOUND, 1, USER_KIND_SAM}}},
    {"an empty identifier is a key like any other",
     60,
     60,
     10,
     {{'p', "", "e@x", 0, 0, 1, USER_KIND_SAM},
      {'g', "", "e@x", 0, IDCACHE_FOUND, 1, USER_KIND_SAM},
      {'g', " ", NULL, 0, IDCACHE_MISS, 1, USER_KIND_SAM}}},
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
            if (idcache_put(c, st->kind, s(st->id), st->email, st->now) != 0)
                UNIT_FAIL("%s: step %zu: put failed", name, k);
            break;
        case 'g':
            got = idcache_get(c, st->kind, s(st->id), st->now, &email);
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

/* The made-up users: "user<i>" -> "user<i>@example.com". Puts users
 * first..last-1 at now; returns how many puts failed. */
static size_t put_users(struct idcache *c, int first, int last, int64_t now)
{
    char id[32], email[48];
    size_t failed = 0;

    for (int i = first; i < last; i++) {
        snprintf(id, sizeof(id), "user%d", i);
        snprintf(email, sizeof(email), "user%d@example.com", i);
        failed += idcache_put(c, USER_KIND_SAM, s(id), email, now) != 0;
    }
    return failed;
}

/* How many of the users first..last-1, looked up in capitals (keys ignore
 * case) at now, do not get want (and, when found, their own email). */
static size_t users_wrong(struct idcache *c, int first, int last, int64_t now,
                          enum idcache_result want)
{
    char id[32], email_want[48];
    size_t wrong = 0;

    for (int i = first; i < last; i++) {
        const char *email = NULL;
        enum idcache_result r;

        snprintf(id, sizeof(id), "USER%d", i);
        snprintf(email_want, sizeof(email_want), "user%d@example.com", i);
        r = idcache_get(c, USER_KIND_SAM, s(id), now, &email);
        wrong += r != want || (r == IDCACHE_FOUND && strcmp(email, email_want) != 0);
    }
    return wrong;
}

/* Enough entries to grow the buckets several times, then past the cap:
 * the oldest go, the newest stay. */
static void test_many(void)
{
    enum { MAX = 3000, N = 4000 };
    struct idcache *c = NULL;
    size_t wrong;

    CHECK_INT(idcache_new(60, 60, MAX, &c), 0);
    wrong = put_users(c, 0, N, 0);
    CHECK_INT(idcache_count(c), MAX);
    wrong += users_wrong(c, 0, N - MAX, 1, IDCACHE_MISS);
    wrong += users_wrong(c, N - MAX, N, 1, IDCACHE_FOUND);
    CHECK_INT(wrong, 0);
    idcache_free(c);
}

/* Made-up users, many times the cap, leave every resolved email in place:
 * "not found" answers only evict each other. */
static void test_flood(void)
{
    enum { MAX = 100, N = 10000 };
    struct idcache *c = NULL;
    char id[32];
    size_t wrong;

    CHECK_INT(idcache_new(60, 60, MAX, &c), 0);
    wrong = put_users(c, 0, MAX, 0);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "nobody%d", i);
        wrong += idcache_put(c, USER_KIND_SAM, s(id), NULL, 1) != 0;
    }
    CHECK_INT(idcache_count(c), MAX + MAX / 4);
    wrong += users_wrong(c, 0, MAX, 2, IDCACHE_FOUND);
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
    test_flood();
    test_arguments();
    return unit_report("idcache");
}
