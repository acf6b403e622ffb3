/* Identity resolution over a static directory in a temp folder: found, not
 * found and cached answers with their counters, case-insensitive ids, a
 * reload that changes an email (and clears the cache), failed reloads that
 * keep the old answers, a reload from another file (SIGHUP after
 * identity.static.file changed) that becomes the file in use, and one from
 * a file that does not load, which keeps the old file in use; no resolvers
 * at all (a warning, and nothing to reload), negative_ttl_s 0, identifiers
 * too long or empty, the kind as part of the cache key, a callback that
 * resolves again, and the configurations identity_new refuses. */
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "identity/identity.h"
#include "unit.h"

static char tmpdir[] = "/tmp/rtr-test-identity.XXXXXX";
static char users_path[PATH_MAX], other_path[PATH_MAX];

struct answer {
    int calls;
    enum identity_status status;
    char email[128]; /* "" when NULL */
    char detail[128];
};

static void record(void *arg, enum identity_status status, const char *email, const char *detail)
{
    struct answer *a = arg;

    a->calls++;
    a->status = status;
    snprintf(a->email, sizeof(a->email), "%s", email ? email : "");
    snprintf(a->detail, sizeof(a->detail), "%s", detail ? detail : "");
}

/* Resolves user and checks the answer came at once, exactly once. */
static void expect(struct identity *id, const char *user, enum identity_status status,
                   const char *email, const char *detail)
{
    struct answer a = {0};

    identity_resolve(id, str_make(user, strlen(user)), USER_KIND_AUTO, record, &a);
    if (a.calls != 1 || a.status != status || strcmp(a.email, email) != 0 ||
        strcmp(a.detail, detail) != 0)
        UNIT_FAIL("resolve '%s': %d calls, status %d, email '%s', detail '%s'; want status %d, "
                  "email '%s', detail '%s'",
                  user, a.calls, (int)a.status, a.email, a.detail, (int)status, email, detail);
    else
        unit_passed++;
}

static enum identity_source static_only[] = {IDENTITY_STATIC};

static struct identity_config config(enum identity_source *order, size_t n, int negative_ttl_s)
{
    struct identity_config cfg = {0};

    cfg.order = order;
    cfg.n_order = n;
    cfg.static_dir.file = users_path;
    cfg.cache.ttl_s = 3600;
    cfg.cache.negative_ttl_s = negative_ttl_s;
    cfg.cache.max_entries = 100;
    return cfg;
}

#define COUNT(s, c) ((s)->v[STAT_##c])

static void test_resolve_and_reload(void)
{
    struct identity_config cfg = config(static_only, 1, 300);
    struct stats *s = stats_register();
    struct identity *id = NULL;
    char log[4096], want[PATH_MAX + 64];

    unit_write_file(users_path, "# directory\n"
                                "EXAMPLE\\amorgan,alice@example.com\n"
                                "bob,bob@example.com\n"
                                "carol,carol@example.com\n");
    CHECK_INT(identity_new(&cfg, NULL, NULL, s, &id), 0);
    if (id == NULL)
        return;

    expect(id, "example\\AMORGAN", IDENTITY_FOUND, "alice@example.com", "static");
    CHECK_INT(COUNT(s, identity_cache_misses), 1);
    CHECK_INT(COUNT(s, identity_cache_hits), 0);
    expect(id, "EXAMPLE\\amorgan", IDENTITY_FOUND, "alice@example.com", "cache");
    CHECK_INT(COUNT(s, identity_cache_hits), 1);
    expect(id, "nobody", IDENTITY_NOT_FOUND, "", "static: not listed");
    expect(id, "NOBODY", IDENTITY_NOT_FOUND, "", "cache: not found");
    CHECK_INT(COUNT(s, identity_cache_misses), 2);
    CHECK_INT(COUNT(s, identity_cache_hits), 2);
    CHECK_INT(COUNT(s, identity_not_found), 2);
    CHECK_INT(COUNT(s, identity_errors), 0);

    /* A changed email and a new identifier take effect at once: the cache
     * is cleared. */
    unit_write_file(users_path, "EXAMPLE\\amorgan,alice.morgan@example.com\n"
                                "bob,bob@example.com\n"
                                "nobody,somebody@example.com\n");
    unit_capture_begin();
    CHECK_INT(identity_reload(id, NULL), 0);
    unit_capture_end(log, sizeof(log));
    snprintf(want, sizeof(want), " info: static directory %s reloaded: 3 identifiers\n",
             users_path);
    CHECK(strstr(log, want) != NULL);
    expect(id, "example\\amorgan", IDENTITY_FOUND, "alice.morgan@example.com", "static");
    expect(id, "nobody", IDENTITY_FOUND, "somebody@example.com", "static");
    expect(id, "carol", IDENTITY_NOT_FOUND, "", "static: not listed");

    /* A broken or missing file keeps the directory in use: "bob" is not
     * cached yet, so the answer comes from the old directory. */
    unit_write_file(users_path, "bob,\"bob@example.com\nnew,new@example.com\n");
    unit_capture_begin();
    CHECK_INT(identity_reload(id, NULL), ERR_CONFIG);
    unit_capture_end(log, sizeof(log));
    snprintf(want, sizeof(want), " error: %s:1: unterminated quote\n", users_path);
    CHECK(strstr(log, want) != NULL);
    snprintf(want, sizeof(want), "not loaded: the one loaded from %s stays in use", users_path);
    CHECK(strstr(log, want) != NULL);
    expect(id, "bob", IDENTITY_FOUND, "bob@example.com", "static");
    expect(id, "new", IDENTITY_NOT_FOUND, "", "static: not listed");
    unlink(users_path);
    unit_capture_begin();
    CHECK_INT(identity_reload(id, NULL), ERR_IO);
    unit_capture_end(log, sizeof(log));
    expect(id, "nobody", IDENTITY_FOUND, "somebody@example.com", "cache");
    identity_free(id);
}

/* SIGHUP after identity.static.file moved: the new file is loaded and is
 * the file in use from then on (a later reload without a path re-reads
 * it); a new file that does not load keeps the directory and the file in
 * use. */
static void test_reload_from_another_file(void)
{
    struct identity_config cfg = config(static_only, 1, 300);
    struct identity *id = NULL;
    char log[4096], want[2 * PATH_MAX + 64];

    unit_write_file(users_path, "bob,bob@example.com\n");
    unit_write_file(other_path, "bob,bob.other@example.com\n"
                                "dave,dave@example.com\n");
    CHECK_INT(identity_new(&cfg, NULL, NULL, NULL, &id), 0);
    if (id == NULL)
        return;
    expect(id, "bob", IDENTITY_FOUND, "bob@example.com", "static");
    expect(id, "dave", IDENTITY_NOT_FOUND, "", "static: not listed");

    unit_capture_begin();
    CHECK_INT(identity_reload(id, other_path), 0);
    unit_capture_end(log, sizeof(log));
    snprintf(want, sizeof(want), " info: static directory %s reloaded: 2 identifiers\n",
             other_path);
    CHECK(strstr(log, want) != NULL);
    /* The cache was cleared: both answers come from the new file. */
    expect(id, "bob", IDENTITY_FOUND, "bob.other@example.com", "static");
    expect(id, "dave", IDENTITY_FOUND, "dave@example.com", "static");

    /* The old file changes: no longer the one in use, it is not read. */
    unit_write_file(users_path, "bob,bob.old@example.com\n");
    unit_write_file(other_path, "bob,bob.third@example.com\n");
    unit_capture_begin();
    CHECK_INT(identity_reload(id, NULL), 0);
    unit_capture_end(log, sizeof(log));
    CHECK(strstr(log, other_path) != NULL);
    expect(id, "bob", IDENTITY_FOUND, "bob.third@example.com", "static");

    /* A new file that does not load: the directory and the file in use stay. */
    unit_write_file(users_path, "broken\n");
    unit_capture_begin();
    CHECK_INT(identity_reload(id, users_path), ERR_CONFIG);
    unit_capture_end(log, sizeof(log));
    snprintf(want, sizeof(want), "static directory %s not loaded: the one loaded from %s stays",
             users_path, other_path);
    CHECK(strstr(log, want) != NULL);
    expect(id, "bob", IDENTITY_FOUND, "bob.third@example.com", "cache");
    unit_write_file(other_path, "bob,bob.fourth@example.com\n");
    unit_capture_begin();
    CHECK_INT(identity_reload(id, NULL), 0);
    unit_capture_end(log, sizeof(log));
    expect(id, "bob", IDENTITY_FOUND, "bob.fourth@example.com", "static");
    identity_free(id);
    unlink(other_path);
}

/* No resolver: a warning at start; every identifier is not found (and that
 * is cached); a reload, even from a file, has nothing to do. */
static void test_no_resolvers(void)
{
    struct identity_config cfg = config(NULL, 0, 300);
    struct identity *id = NULL;
    char log[4096];

    cfg.static_dir.file = NULL;
    unit_capture_begin();
    CHECK_INT(identity_new(&cfg, NULL, NULL, NULL, &id), 0);
    unit_capture_end(log, sizeof(log));
    CHECK(strstr(log, "warning") == NULL); /* identity_warn_unresolvable says it, with mappings */
    unit_capture_begin();
    identity_warn_unresolvable(&cfg, 0, "cfg.json");
    identity_warn_unresolvable(&cfg, 3, "cfg.json");
    unit_capture_end(log, sizeof(log));
    CHECK(strstr(log, " warning: cfg.json: identity: no resolver is configured "
                      "(identity.static.file): every decision will be unresolved-user\n") != NULL);
    /* Once: not for the call without mappings. */
    const char *first = strstr(log, "warning");
    CHECK(first != NULL && strstr(first + 1, "warning") == NULL);
    if (id == NULL)
        return;
    expect(id, "EXAMPLE\\amorgan", IDENTITY_NOT_FOUND, "", "identity: no resolver configured");
    expect(id, "example\\amorgan", IDENTITY_NOT_FOUND, "", "cache: not found");
    expect(id, "", IDENTITY_NOT_FOUND, "", "identity: empty identifier");
    unit_capture_begin();
    CHECK_INT(identity_reload(id, NULL), 0);
    CHECK_INT(identity_reload(id, users_path), 0);
    unit_capture_end(log, sizeof(log));
    CHECK_INT(strlen(log), 0);
    expect(id, "example\\amorgan", IDENTITY_NOT_FOUND, "", "cache: not found");
    identity_free(id);
}

static void test_negative_ttl_zero(void)
{
    struct identity_config cfg = config(static_only, 1, 0);
    struct stats *s = stats_register();
    struct identity *id = NULL;

    unit_write_file(users_path, "bob,bob@example.com\n");
    CHECK_INT(identity_new(&cfg, NULL, NULL, s, &id), 0);
    if (id == NULL)
        return;
    expect(id, "ghost", IDENTITY_NOT_FOUND, "", "static: not listed");
    expect(id, "ghost", IDENTITY_NOT_FOUND, "", "static: not listed");
    CHECK_INT(COUNT(s, identity_cache_misses), 2);
    CHECK_INT(COUNT(s, identity_cache_hits), 0);
    identity_free(id);
}

/* Identifiers past IDENTITY_MAX_ID bytes, and empty ones, are answered at
 * once: no cache entry, no resolver. */
static void test_identifier_bounds(void)
{
    struct identity_config cfg = config(static_only, 1, 300);
    struct stats *s = stats_register();
    struct identity *id = NULL;
    char *big = malloc(IDENTITY_MAX_ID + 2);
    struct answer a = {0};

    if (big == NULL)
        exit(2);
    memset(big, 'u', IDENTITY_MAX_ID + 1);
    big[IDENTITY_MAX_ID + 1] = '\0';
    unit_write_file(users_path, "bob,bob@example.com\n");
    CHECK_INT(identity_new(&cfg, NULL, NULL, s, &id), 0);
    if (id == NULL) {
        free(big);
        return;
    }
    expect(id, big, IDENTITY_NOT_FOUND, "", "identity: identifier too long");
    expect(id, "", IDENTITY_NOT_FOUND, "", "identity: empty identifier");
    identity_resolve(id, STR_ABSENT, USER_KIND_AUTO, record, &a);
    CHECK(a.calls == 1 && a.status == IDENTITY_NOT_FOUND &&
          strcmp(a.detail, "identity: empty identifier") == 0);
    CHECK_INT(COUNT(s, identity_cache_misses), 0);
    CHECK_INT(COUNT(s, identity_not_found), 3);
    big[IDENTITY_MAX_ID] = '\0'; /* the longest one accepted */
    expect(id, big, IDENTITY_NOT_FOUND, "", "static: not listed");
    CHECK_INT(COUNT(s, identity_cache_misses), 1);
    identity_free(id);
    free(big);
}

/* The cache keeps answers per kind: the same text as another kind asks the
 * resolvers again. */
static void test_kind_in_cache_key(void)
{
    struct identity_config cfg = config(static_only, 1, 300);
    struct identity *id = NULL;
    struct answer a = {0};

    unit_write_file(users_path, "1234,emp@example.com\n");
    CHECK_INT(identity_new(&cfg, NULL, NULL, NULL, &id), 0);
    if (id == NULL)
        return;
    expect(id, "1234", IDENTITY_FOUND, "emp@example.com", "static"); /* auto: employee_id */
    expect(id, "1234", IDENTITY_FOUND, "emp@example.com", "cache");
    identity_resolve(id, STR_LIT("1234"), USER_KIND_SAM, record, &a);
    CHECK(a.calls == 1 && strcmp(a.detail, "static") == 0);
    identity_resolve(id, STR_LIT("1234"), USER_KIND_EMPLOYEE_ID, record, &a);
    CHECK(a.calls == 2 && strcmp(a.detail, "cache") == 0);
    identity_free(id);
}

/* A callback may resolve again, from inside the answer it is given. */
struct nested {
    struct identity *id;
    struct answer outer, inner;
};

static void resolve_again(void *arg, enum identity_status status, const char *email,
                          const char *detail)
{
    struct nested *n = arg;

    record(&n->outer, status, email, detail);
    identity_resolve(n->id, STR_LIT("BOB"), USER_KIND_AUTO, record, &n->inner);
}

static void test_nested_resolve(void)
{
    struct identity_config cfg = config(static_only, 1, 300);
    struct nested n = {0};

    unit_write_file(users_path, "bob,bob@example.com\n");
    CHECK_INT(identity_new(&cfg, NULL, NULL, NULL, &n.id), 0);
    if (n.id == NULL)
        return;
    identity_resolve(n.id, STR_LIT("nobody"), USER_KIND_AUTO, resolve_again, &n);
    CHECK(n.outer.calls == 1 && n.outer.status == IDENTITY_NOT_FOUND);
    CHECK(n.inner.calls == 1 && n.inner.status == IDENTITY_FOUND &&
          strcmp(n.inner.email, "bob@example.com") == 0);
    identity_free(n.id);
}

static const struct {
    const char *name;
    const char *file; /* NULL: no file at users_path */
    enum identity_source order[2];
    size_t n_order;
    int rc;
    const char *log; /* a substring of what is logged; "@" stands for the path */
} refused[] = {
    {"a broken directory",
     "bob\n",
     {IDENTITY_STATIC},
     1,
     ERR_CONFIG,
     " error: @:1: missing email\n"},
    {"a missing directory",
     NULL,
     {IDENTITY_STATIC},
     1,
     ERR_IO,
     " error: @: cannot open: No such file or directory\n"},
};

static void test_refused(void)
{
    char log[4096], want[PATH_MAX + 128];

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        enum identity_source order[2] = {refused[i].order[0], refused[i].order[1]};
        struct identity_config cfg = config(order, refused[i].n_order, 300);
        struct identity *id = (struct identity *)&id;

        if (refused[i].file != NULL)
            unit_write_file(users_path, refused[i].file);
        else
            unlink(users_path);
        unit_capture_begin();
        if (identity_new(&cfg, NULL, NULL, NULL, &id) != refused[i].rc)
            UNIT_FAIL("%s: identity_new did not return %d", refused[i].name, refused[i].rc);
        else
            unit_passed++;
        unit_capture_end(log, sizeof(log));
        CHECK(id == NULL);
        unit_expand(want, sizeof(want), refused[i].log, users_path, NULL);
        if (strstr(log, want) == NULL)
            UNIT_FAIL("%s: log '%s' lacks '%s'", refused[i].name, log, want);
        else
            unit_passed++;
    }
}

int main(void)
{
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(users_path, sizeof(users_path), "%s/users.csv", tmpdir);
    snprintf(other_path, sizeof(other_path), "%s/other.csv", tmpdir);
    test_resolve_and_reload();
    test_reload_from_another_file();
    test_no_resolvers();
    test_negative_ttl_zero();
    test_identifier_bounds();
    test_kind_in_cache_key();
    test_nested_resolve();
    test_refused();
    identity_free(NULL);
    unlink(users_path);
    rmdir(tmpdir);
    return unit_report("identity");
}
