/* The Microsoft Graph resolver. graph_lookup_path, table-driven: every
 * kind, a guest UPN, apostrophes, a UPN starting with '$', DOMAIN\user,
 * braces around a GUID, the advanced and fallback variants, the attribute,
 * what has no query, what is not valid for its kind and what does not fit. Then end to end against
 * the Graph stand-in (tests/servers/standin.py, certificates from tests/servers/certs.py): each
 * kind resolves (a mail alias through the proxyAddresses fallback, a SID through the advanced-query
 * retry, a sAMAccountName with ConsistencyLevel), not found, no mail, several matches, one token
 * for many lookups, a token renewed after its life and after a 401, ten concurrent lookups sharing
 * one request, identifiers not valid for their kind ("." and ".." as a UPN) answered without a
 * request, 20,000 lookups of one user sharing one request, distinct users past GRAPH_MAX_PENDING
 * refused with a transient error, 429 with Retry-After then success, a 429 whose HTTP-date
 * Retry-After is measured from the Date header of a server an hour ahead, 429 four times, a 500
 * then success, malformed and wrongly typed JSON, a body over the cap, a
 * wrong client secret, an unreadable or empty secret file, and
 * graph_free with lookups in flight (then http_free, as delivery.c
 * does). */
#include <curl/curl.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "errors.h"
#include "identity/graph.h"
#include "unit.h"
#include "unit_standin.h"

/* ---- graph_lookup_path ---- */

struct path_case {
    const char *name;
    enum user_kind kind;
    const char *user;
    int advanced, fallback;
    int upn_attr;     /* attribute userPrincipalName instead of mail */
    const char *want; /* NULL: want_rc */
    int want_rc;
};

#define SEL "$select=id,mail"
#define FALLBACK_OBRIEN                                                                            \
    "/v1.0/users?$filter=mail%20eq%20%27o%27%27brien%40example.com%27%20or%20proxyAddresses%2F"    \
    "any%28p%3Ap%20eq%20%27smtp%3Ao%27%27brien%40example.com%27%29&" SEL "&$count=true"

static const struct path_case path_cases[] = {
    {"upn", USER_KIND_UPN, "alice@example.com", 0, 0, 0, "/v1.0/users/alice%40example.com?" SEL, 0},
    {"email", USER_KIND_EMAIL, "a.b+c@example.com", 0, 0, 0,
     "/v1.0/users/a.b%2Bc%40example.com?" SEL, 0},
    {"guest upn", USER_KIND_UPN, "alice_ext#EXT#@tenant.onmicrosoft.com", 0, 0, 0,
     "/v1.0/users/alice_ext%23EXT%23%40tenant.onmicrosoft.com?" SEL, 0},
    {"apostrophe by id", USER_KIND_UPN, "o'brien@example.com", 0, 0, 0,
     "/v1.0/users/o%27brien%40example.com?" SEL, 0},
    {"dollar upn", USER_KIND_UPN, "$svc@example.com", 0, 0, 0,
     "/v1.0/users('$svc%40example.com')?" SEL, 0},
    {"dollar upn with a quote", USER_KIND_UPN, "$o'x@example.com", 0, 0, 0,
     "/v1.0/users('$o%27%27x%40example.com')?" SEL, 0},
    {"dollar inside", USER_KIND_UPN, "a$b@example.com", 0, 0, 0,
     "/v1.0/users/a$b%40example.com?" SEL, 0},
    {"apostrophe fallback", USER_KIND_UPN, "o'brien@example.com", 1, 1, 0, FALLBACK_OBRIEN, 0},
    {"email fallback", USER_KIND_EMAIL, "o'brien@example.com", 1, 1, 0, FALLBACK_OBRIEN, 0},
    {"guest fallback", USER_KIND_UPN, "g#EXT#@t.com", 0, 1, 0,
     "/v1.0/users?$filter=mail%20eq%20%27g%23EXT%23%40t.com%27%20or%20proxyAddresses%2Fany%28p%3A"
     "p%20eq%20%27smtp%3Ag%23EXT%23%40t.com%27%29&" SEL,
     0},
    {"sam with domain", USER_KIND_SAM, "EXAMPLE\\jsmith", 1, 0, 0,
     "/v1.0/users?$filter=onPremisesSamAccountName%20eq%20%27jsmith%27&" SEL "&$count=true", 0},
    {"bare sam", USER_KIND_SAM, "o'neil", 1, 0, 0,
     "/v1.0/users?$filter=onPremisesSamAccountName%20eq%20%27o%27%27neil%27&" SEL "&$count=true",
     0},
    {"sid", USER_KIND_SID, "S-1-5-21-1004336348-1177238915-682003330-1001", 0, 0, 0,
     "/v1.0/users?$filter=onPremisesSecurityIdentifier%20eq%20%27S-1-5-21-1004336348-1177238915-"
     "682003330-1001%27&" SEL,
     0},
    {"sid advanced", USER_KIND_SID, "S-1-5-21-1-2-3-500", 1, 0, 0,
     "/v1.0/users?$filter=onPremisesSecurityIdentifier%20eq%20%27S-1-5-21-1-2-3-500%27&" SEL
     "&$count=true",
     0},
    {"guid", USER_KIND_GUID, "6f1e2d3c-0000-4000-8000-000000000001", 0, 0, 0,
     "/v1.0/users/6f1e2d3c-0000-4000-8000-000000000001?" SEL, 0},
    {"guid in braces", USER_KIND_GUID, "{6F1E2D3C-0000-4000-8000-000000000001}", 0, 0, 0,
     "/v1.0/users/6F1E2D3C-0000-4000-8000-000000000001?" SEL, 0},
    {"employee id", USER_KIND_EMPLOYEE_ID, "1001", 0, 0, 0,
     "/v1.0/users?$filter=employeeId%20eq%20%271001%27&" SEL, 0},
    {"userPrincipalName attribute", USER_KIND_UPN, "alice@example.com", 0, 0, 1,
     "/v1.0/users/alice%40example.com?$select=id,userPrincipalName", 0},
    {"utf-8 and reserved characters", USER_KIND_UPN, "\xc3\xa9&=+!#@x", 0, 0, 0,
     "/v1.0/users/%C3%A9%26%3D%2B%21%23%40x?" SEL, 0},
    {"sam with a blank", USER_KIND_SAM, "CONTOSO\\John Smith", 1, 0, 0,
     "/v1.0/users?$filter=onPremisesSamAccountName%20eq%20%27John%20Smith%27&" SEL "&$count=true",
     0},
    {"auto has no query", USER_KIND_AUTO, "alice@example.com", 0, 0, 0, NULL, ERR_INVALID},
    {"no fallback for sam", USER_KIND_SAM, "jsmith", 0, 1, 0, NULL, ERR_INVALID},
    {"no fallback for guid", USER_KIND_GUID, "6f1e2d3c-0000-4000-8000-000000000001", 0, 1, 0, NULL,
     ERR_INVALID},
    {"empty", USER_KIND_UPN, "", 0, 0, 0, NULL, ERR_INVALID},
    {"domain without user", USER_KIND_SAM, "EXAMPLE\\", 1, 0, 0, NULL, ERR_INVALID},
    {"empty braces", USER_KIND_GUID, "{}", 0, 0, 0, NULL, ERR_INVALID},
    /* Not valid for their kind: no request is built. */
    {"dot upn", USER_KIND_UPN, ".", 0, 0, 0, NULL, ERR_INVALID},
    {"dot dot upn", USER_KIND_UPN, "..", 0, 0, 0, NULL, ERR_INVALID},
    {"dot dot email fallback", USER_KIND_EMAIL, "..", 1, 1, 0, NULL, ERR_INVALID},
    {"upn without a domain", USER_KIND_UPN, "a@", 0, 0, 0, NULL, ERR_INVALID},
    {"upn without a name", USER_KIND_UPN, "@x.com", 0, 0, 0, NULL, ERR_INVALID},
    {"upn with a slash", USER_KIND_UPN, "../a@x.com", 0, 0, 0, NULL, ERR_INVALID},
    {"upn with a backslash", USER_KIND_UPN, "a\\b@x.com", 0, 0, 0, NULL, ERR_INVALID},
    {"upn with a question mark", USER_KIND_UPN, "a?b@x.com", 0, 0, 0, NULL, ERR_INVALID},
    {"upn with a blank", USER_KIND_UPN, "a b@x.com", 0, 0, 0, NULL, ERR_INVALID},
    {"upn with a control byte", USER_KIND_UPN, "\001a@x.com", 0, 0, 0, NULL, ERR_INVALID},
    {"email with DEL", USER_KIND_EMAIL, "a@x.com\x7f", 0, 0, 0, NULL, ERR_INVALID},
    {"dot guid", USER_KIND_GUID, ".", 0, 0, 0, NULL, ERR_INVALID},
    {"guid one digit short", USER_KIND_GUID, "6f1e2d3c-0000-4000-8000-00000000000", 0, 0, 0, NULL,
     ERR_INVALID},
    {"guid not hex", USER_KIND_GUID, "6f1e2d3c-0000-4000-8000-00000000000g", 0, 0, 0, NULL,
     ERR_INVALID},
    {"guid one brace", USER_KIND_GUID, "{6f1e2d3c-0000-4000-8000-000000000001", 0, 0, 0, NULL,
     ERR_INVALID},
    {"sid without a sub-authority", USER_KIND_SID, "S-1-5", 0, 0, 0, NULL, ERR_INVALID},
    {"employee id with a newline", USER_KIND_EMPLOYEE_ID, "10\n01", 0, 0, 0, NULL, ERR_INVALID},
    {"sam with a tab", USER_KIND_SAM, "j\tsmith", 1, 0, 0, NULL, ERR_INVALID},
};

static void test_paths(void)
{
    struct graph_config cfg = {0};
    char buf[4096];

    for (size_t i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
        const struct path_case *c = &path_cases[i];
        int rc;

        cfg.attribute = c->upn_attr ? GRAPH_ATTR_USER_PRINCIPAL_NAME : GRAPH_ATTR_MAIL;
        memset(buf, 'Z', sizeof(buf));
        rc = graph_lookup_path(&cfg, c->kind, str_make(c->user, strlen(c->user)), c->advanced,
                               c->fallback, buf, sizeof(buf));
        if (c->want == NULL ? rc != c->want_rc
                            : rc != (int)strlen(c->want) || strcmp(buf, c->want) != 0)
            UNIT_FAIL("%s: got %d '%s', want %d '%s'", c->name, rc, rc >= 0 ? buf : "",
                      c->want ? (int)strlen(c->want) : c->want_rc, c->want ? c->want : "");
        else
            unit_passed++;
    }
}

/* A buffer one byte short fails; exactly big enough fits; the longest
 * identifier identity passes on, all quotes but for "@x", fits a generous
 * buffer. */
static void test_path_sizes(void)
{
    static char big[2 * 6 * IDENTITY_MAX_ID + 256];
    struct graph_config cfg = {0};
    const char *want = "/v1.0/users/a%40b?" SEL;
    struct str user = STR_LIT("a@b");
    char quotes[IDENTITY_MAX_ID], buf[64];
    size_t n = strlen(want);

    CHECK_INT(graph_lookup_path(&cfg, USER_KIND_UPN, user, 0, 0, buf, n), ERR_TOOBIG);
    CHECK_INT(graph_lookup_path(&cfg, USER_KIND_UPN, user, 0, 0, buf, n + 1), (int)n);
    CHECK(strcmp(buf, want) == 0);
    CHECK_INT(graph_lookup_path(&cfg, USER_KIND_UPN, user, 0, 0, NULL, 0), ERR_TOOBIG);
    CHECK_INT(graph_lookup_path(&cfg, USER_KIND_EMPLOYEE_ID, STR_LIT("12345"), 0, 0, buf, 20),
              ERR_TOOBIG);
    memset(quotes, '\'', sizeof(quotes));
    memcpy(quotes + sizeof(quotes) - 2, "@x", 2);
    CHECK(graph_lookup_path(&cfg, USER_KIND_EMAIL, str_make(quotes, sizeof(quotes)), 1, 1, big,
                            sizeof(big)) > 2 * 6 * (IDENTITY_MAX_ID - 2));
}

/* ---- end to end ---- */

/* Reserved characters in it check the token request's form encoding. */
#define SECRET "c+s/e=c&r%t ~'x"

static struct unit_standin_env env;
static char users_json[PATH_MAX + 16];
static char secret_path[PATH_MAX + 16], wrong_secret_path[PATH_MAX + 16];
static struct event_base *base;

static const char users[] =
    "[{\"id\": \"6f1e2d3c-0000-4000-8000-000000000001\", \"userPrincipalName\": "
    "\"jsmith@contoso.com\", \"mail\": \"john.smith@contoso.com\", "
    "\"onPremisesSamAccountName\": \"jsmith\", \"onPremisesSecurityIdentifier\": "
    "\"S-1-5-21-1004336348-1177238915-682003330-1001\", \"employeeId\": \"1001\", "
    "\"proxyAddresses\": [\"SMTP:john.smith@contoso.com\", \"smtp:john@old.contoso.com\"]},"
    " {\"id\": \"6f1e2d3c-0000-4000-8000-000000000002\", \"userPrincipalName\": "
    "\"o'brien@contoso.com\", \"mail\": \"pat.o'brien@contoso.com\", "
    "\"onPremisesSamAccountName\": \"obrien\", \"employeeId\": \"1002\", "
    "\"proxyAddresses\": [\"SMTP:pat.o'brien@contoso.com\"]},"
    " {\"id\": \"6f1e2d3c-0000-4000-8000-000000000003\", \"userPrincipalName\": "
    "\"alice_fabrikam.com#EXT#@contoso.onmicrosoft.com\", \"mail\": \"alice@fabrikam.com\", "
    "\"proxyAddresses\": [\"SMTP:alice@fabrikam.com\"]},"
    " {\"id\": \"6f1e2d3c-0000-4000-8000-000000000004\", \"userPrincipalName\": "
    "\"$svc@contoso.com\", \"mail\": \"svc@contoso.com\", \"employeeId\": \"2000\"},"
    " {\"id\": \"6f1e2d3c-0000-4000-8000-000000000005\", \"userPrincipalName\": "
    "\"nomail@contoso.com\", \"employeeId\": \"2000\"}]";

/* What one lookup's callback saw; done counts callbacks of a batch. */
struct answer {
    int calls;
    enum identity_status status;
    char email[128];
    char detail[256];
    int *done;
};

static void record(void *arg, enum identity_status status, const char *email, const char *detail)
{
    struct answer *a = arg;

    a->calls++;
    a->status = status;
    snprintf(a->email, sizeof(a->email), "%s", email ? email : "");
    snprintf(a->detail, sizeof(a->detail), "%s", detail ? detail : "");
    if (a->done != NULL)
        (*a->done)++;
}

/* Starts a Graph stand-in named name serving server.pem and waits, at
 * most 15 s, for its port. token_expires and script may be NULL. */
static int standin_start(struct unit_standin *s, const char *name, const char *token_expires,
                         const char *script)
{
    const char *argv[12] = {"--users",  users_json,        "--tenant",
                            "tenant-1", "--client-secret", SECRET};
    int n = 6;

    if (token_expires != NULL) {
        argv[n++] = "--token-expires";
        argv[n++] = token_expires;
    }
    if (script != NULL) {
        argv[n++] = "--script";
        argv[n++] = script;
    }
    argv[n] = NULL;
    return unit_standin_start(s, &env, "graph", name, "server", argv);
}

/* Requests the stand-in recorded whose raw path contains path (in any
 * case) and raw query contains query ("" matches all); with header
 * ("name: prefix", name lowercased), only those with that header starting
 * so. */
static int count_requests(const struct unit_standin *s, const char *path, const char *query,
                          const char *header)
{
    FILE *f = fopen(s->requests, "r");
    const char *colon = header != NULL ? strchr(header, ':') : NULL;
    char line[65536], name[64] = "";
    int n = 0;

    if (colon != NULL)
        snprintf(name, sizeof(name), "%.*s", (int)(colon - header), header);
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        struct json_object *rec = json_tokener_parse(line), *p, *q, *h, *v;

        if (json_object_object_get_ex(rec, "path", &p) &&
            json_object_object_get_ex(rec, "query", &q) &&
            json_object_object_get_ex(rec, "headers", &h) &&
            strcasestr(json_object_get_string(p), path) != NULL &&
            strstr(json_object_get_string(q), query) != NULL &&
            (colon == NULL ||
             (json_object_object_get_ex(h, name, &v) &&
              strncmp(json_object_get_string(v), colon + 2, strlen(colon + 2)) == 0)))
            n++;
        json_object_put(rec);
    }
    if (f != NULL)
        fclose(f);
    return n;
}

#define EVENTUAL "consistencylevel: eventual"

/* Everything a resolver needs, pointed at a stand-in. */
struct rig {
    struct graph_config cfg;
    struct stats *stats;
    struct http *http;
    struct graph *g;
};

static int rig_open(struct rig *r, const struct unit_standin *s, const char *secret_file,
                    int max_concurrent)
{
    memset(r, 0, sizeof(*r));
    r->cfg.tenant_id = "tenant-1";
    r->cfg.client_id = "client-id";
    r->cfg.client_secret_file = (char *)secret_file;
    r->cfg.authority_url = (char *)s->url;
    r->cfg.graph_url = (char *)s->url;
    r->cfg.ca_file = env.ca_pem;
    r->cfg.max_concurrent = max_concurrent;
    r->cfg.timeout_s = 10;
    r->stats = calloc(1, sizeof(*r->stats));
    if (r->stats == NULL || http_new(base, &r->http) != 0)
        return -1;
    return graph_new(&r->cfg, base, r->http, r->stats, &r->g);
}

/* graph_free first, then http_free: delivery.c's order. */
static void rig_close(struct rig *r)
{
    graph_free(r->g);
    http_free(r->http);
    free(r->stats);
    r->g = NULL;
    r->http = NULL;
    r->stats = NULL;
}

#define COUNT(r, c) ((r)->stats->v[STAT_##c])

struct lookup_case {
    const char *name;
    enum user_kind kind;
    const char *user;
    enum identity_status status;
    const char *email;  /* FOUND */
    const char *detail; /* a prefix of the detail; NULL: any */
};

/* Looks c up, waits for its answer (never inside graph_lookup) and checks it. */
static void expect(struct rig *r, const struct lookup_case *c)
{
    /* Static: a lookup that timed out may still answer later. */
    static struct answer a;
    static int done;

    memset(&a, 0, sizeof(a));
    done = 0;
    a.done = &done;
    graph_lookup(r->g, c->kind, str_make(c->user, strlen(c->user)), record, &a);
    if (a.calls != 0) {
        UNIT_FAIL("%s: answered inside graph_lookup", c->name);
        return;
    }
    unit_run_until(base, &done, 1, 15000);
    if (a.calls != 1 || a.status != c->status ||
        (c->status == IDENTITY_FOUND && strcmp(a.email, c->email) != 0) ||
        (c->detail != NULL && strncmp(a.detail, c->detail, strlen(c->detail)) != 0))
        UNIT_FAIL("%s: %d calls, status %d, email '%s', detail '%s'; want status %d, email "
                  "'%s', detail '%s...'",
                  c->name, a.calls, (int)a.status, a.email, a.detail, (int)c->status,
                  c->email ? c->email : "", c->detail ? c->detail : "");
    else
        unit_passed++;
}

static const struct lookup_case kinds[] = {
    {"upn", USER_KIND_UPN, "jsmith@contoso.com", IDENTITY_FOUND, "john.smith@contoso.com", "graph"},
    {"upn in another case", USER_KIND_UPN, "JSmith@Contoso.com", IDENTITY_FOUND,
     "john.smith@contoso.com", NULL},
    {"email that is the mail", USER_KIND_EMAIL, "pat.o'brien@contoso.com", IDENTITY_FOUND,
     "pat.o'brien@contoso.com", NULL},
    {"email alias via proxyAddresses", USER_KIND_EMAIL, "john@old.contoso.com", IDENTITY_FOUND,
     "john.smith@contoso.com", NULL},
    {"guest upn", USER_KIND_UPN, "alice_fabrikam.com#EXT#@contoso.onmicrosoft.com", IDENTITY_FOUND,
     "alice@fabrikam.com", NULL},
    {"apostrophe upn", USER_KIND_UPN, "o'brien@contoso.com", IDENTITY_FOUND,
     "pat.o'brien@contoso.com", NULL},
    {"dollar upn", USER_KIND_UPN, "$svc@contoso.com", IDENTITY_FOUND, "svc@contoso.com", NULL},
    {"sam with domain", USER_KIND_SAM, "CONTOSO\\jsmith", IDENTITY_FOUND, "john.smith@contoso.com",
     NULL},
    {"sid", USER_KIND_SID, "S-1-5-21-1004336348-1177238915-682003330-1001", IDENTITY_FOUND,
     "john.smith@contoso.com", NULL},
    {"guid", USER_KIND_GUID, "{6f1e2d3c-0000-4000-8000-000000000002}", IDENTITY_FOUND,
     "pat.o'brien@contoso.com", NULL},
    {"employee id", USER_KIND_EMPLOYEE_ID, "1002", IDENTITY_FOUND, "pat.o'brien@contoso.com", NULL},
    {"unknown upn", USER_KIND_UPN, "nobody@contoso.com", IDENTITY_NOT_FOUND, NULL,
     "graph: no user matches"},
    {"unknown guid", USER_KIND_GUID, "6f1e2d3c-0000-4000-8000-0000000000ff", IDENTITY_NOT_FOUND,
     NULL, "graph: no such user"},
    {"unknown sam", USER_KIND_SAM, "nobody", IDENTITY_NOT_FOUND, NULL, "graph: no user matches"},
    {"user without mail", USER_KIND_UPN, "nomail@contoso.com", IDENTITY_NOT_FOUND, NULL,
     "graph: user has no mail"},
    {"two users match", USER_KIND_EMPLOYEE_ID, "2000", IDENTITY_NOT_FOUND, NULL,
     "graph: 2 users match (ambiguous)"},
};

/* Every kind against one stand-in: the requests it saw, one token. */
static void test_kinds(const struct unit_standin *s)
{
    struct rig r;

    if (rig_open(&r, s, secret_path, 4) != 0) {
        UNIT_FAIL("kinds: rig_open");
        rig_close(&r);
        return;
    }
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        expect(&r, &kinds[i]);
    CHECK_INT(count_requests(s, "/tenant-1/oauth2/v2.0/token", "", NULL), 1);
    CHECK_INT(COUNT(&r, graph_token_requests), 1);
    CHECK_INT(COUNT(&r, graph_errors), 0); /* two users matching is an answer */
    /* The guest's '#' travels as %23, the '$' UPN in parentheses. */
    CHECK_INT(count_requests(s, "/v1.0/users/alice_fabrikam.com%23EXT%23%40contoso", "", NULL), 1);
    CHECK_INT(count_requests(s, "/v1.0/users('$svc%40contoso.com')", "", NULL), 1);
    /* The alias: a 404, then the fallback filter as an advanced query. */
    CHECK_INT(count_requests(s, "/v1.0/users/john%40old.contoso.com", "", NULL), 1);
    CHECK_INT(count_requests(s, "/v1.0/users", "smtp%3Ajohn%40old.contoso.com", EVENTUAL), 1);
    /* The apostrophe doubled in the filter literal. */
    CHECK_INT(count_requests(s, "/v1.0/users", "pat.o%27%27brien%40contoso.com", EVENTUAL), 1);
    /* sAMAccountName: DOMAIN\ cut, ConsistencyLevel and $count. */
    CHECK_INT(
        count_requests(s, "/v1.0/users", "onPremisesSamAccountName%20eq%20%27jsmith%27", NULL), 1);
    CHECK_INT(
        count_requests(s, "/v1.0/users", "%27jsmith%27&$select=id,mail&$count=true", EVENTUAL), 1);
    /* The SID: refused as a basic query, then asked again as an advanced one. */
    CHECK_INT(count_requests(s, "/v1.0/users", "onPremisesSecurityIdentifier", NULL), 2);
    CHECK_INT(count_requests(s, "/v1.0/users", "onPremisesSecurityIdentifier", EVENTUAL), 1);
    CHECK_INT(COUNT(&r, graph_requests), count_requests(s, "", "", NULL));
    /* Every Graph request carried the token and asked for JSON. */
    CHECK_INT(count_requests(s, "/v1.0/users", "", "authorization: Bearer tok-1"),
              count_requests(s, "/v1.0/users", "", NULL));
    CHECK_INT(count_requests(s, "/v1.0/users", "", "accept: application/json"),
              count_requests(s, "/v1.0/users", "", NULL));
    /* The token request: the form, every value percent-encoded. */
    CHECK_INT(count_requests(s, "/oauth2/", "", "content-type: application/x-www-form-urlencoded"),
              1);
    rig_close(&r);
}

/* Ten lookups of one user (in different cases) at once: one request, one
 * answer for all. Then identifiers answered at once without a request. */
static void test_coalescing(const struct unit_standin *s)
{
    static const char *const names[] = {"O'Brien@contoso.com", "o'brien@CONTOSO.com",
                                        "o'brien@contoso.com", "O'BRIEN@CONTOSO.COM"};
    struct answer a[10] = {{0}}, now = {0};
    struct rig r;
    int done = 0, before, ok = 0;

    if (rig_open(&r, s, secret_path, 4) != 0) {
        UNIT_FAIL("coalescing: rig_open");
        rig_close(&r);
        return;
    }
    before = count_requests(s, "/v1.0/users/o%27brien", "", NULL);
    for (int i = 0; i < 10; i++) {
        const char *n = names[i % 4];

        a[i].done = &done;
        graph_lookup(r.g, USER_KIND_UPN, str_make(n, strlen(n)), record, &a[i]);
    }
    CHECK_INT(done, 0);
    CHECK_INT(unit_run_until(base, &done, 10, 15000), 0);
    for (int i = 0; i < 10; i++)
        ok += a[i].calls == 1 && a[i].status == IDENTITY_FOUND &&
              strcmp(a[i].email, "pat.o'brien@contoso.com") == 0;
    CHECK_INT(ok, 10);
    CHECK_INT(count_requests(s, "/v1.0/users/o%27brien", "", NULL) - before, 1);
    CHECK_INT(COUNT(&r, graph_coalesced), 9);
    /* The token's and the one lookup's. */
    CHECK_INT(COUNT(&r, graph_requests), 2);

    graph_lookup(r.g, USER_KIND_AUTO, STR_LIT("x@y"), record, &now);
    CHECK(now.calls == 1 && now.status == IDENTITY_ERROR &&
          strcmp(now.detail, "graph: no query for auto identifiers") == 0);
    now.calls = 0;
    graph_lookup(r.g, USER_KIND_SAM, STR_LIT("CONTOSO\\"), record, &now);
    CHECK(now.calls == 1 && now.status == IDENTITY_NOT_FOUND &&
          strcmp(now.detail, "graph: empty identifier") == 0);
    rig_close(&r);
}

/* Identifiers not valid for their forced kind ("." and ".." would be
 * GET /v1.0/users/ and GET /v1.0/) are "not found" at once: no token, no
 * request, even once the loop has run; a valid one still resolves. */
static void test_invalid_ids(const struct unit_standin *s)
{
    static const struct {
        enum user_kind kind;
        const char *user;
    } bad[] = {
        {USER_KIND_UPN, "."},
        {USER_KIND_UPN, ".."},
        {USER_KIND_EMAIL, "."},
        {USER_KIND_EMAIL, ".."},
        {USER_KIND_GUID, "."},
        {USER_KIND_GUID, ".."},
        {USER_KIND_UPN, "../jsmith@contoso.com"},
        {USER_KIND_UPN, "jsmith@contoso.com/.."},
        {USER_KIND_EMAIL, "jsmith@contoso.com?$top=999"},
        {USER_KIND_EMAIL, "jsmith@contoso.com#x"},
        {USER_KIND_UPN, "jsmith"},
        {USER_KIND_UPN, "j smith@contoso.com"},
        {USER_KIND_UPN, "jsmith@contoso.com\r\nX-Injected: 1"},
        {USER_KIND_GUID, "6f1e2d3c-0000-4000-8000-00000000000"},
        {USER_KIND_GUID, "6f1e2d3c/0000-4000-8000-000000000001"},
        {USER_KIND_GUID, "jsmith@contoso.com"},
    };
    static const struct lookup_case good = {"valid after invalid",    USER_KIND_UPN,
                                            "jsmith@contoso.com",     IDENTITY_FOUND,
                                            "john.smith@contoso.com", NULL};
    /* Static: on a resolver that sends them, they are answered later. */
    static struct answer a[sizeof(bad) / sizeof(bad[0])];
    int before = count_requests(s, "", "", NULL), at_once = 0;
    struct rig r;

    if (rig_open(&r, s, secret_path, 4) != 0) {
        UNIT_FAIL("invalid ids: rig_open");
        rig_close(&r);
        return;
    }
    memset(a, 0, sizeof(a));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        graph_lookup(r.g, bad[i].kind, str_make(bad[i].user, strlen(bad[i].user)), record, &a[i]);
        if (a[i].calls == 1 && a[i].status == IDENTITY_NOT_FOUND &&
            strncmp(a[i].detail, "graph: not a valid ", 19) == 0) {
            at_once++;
        } else {
            UNIT_FAIL("%s '%s': %d calls, status %d, detail '%s'; want not found at once",
                      userid_kind_name(bad[i].kind), bad[i].user, a[i].calls, (int)a[i].status,
                      a[i].detail);
        }
    }
    CHECK_INT(at_once, (int)(sizeof(bad) / sizeof(bad[0])));
    unit_run_until(base, NULL, 0, 300);
    CHECK_INT(COUNT(&r, graph_requests), 0);
    CHECK_INT(count_requests(s, "", "", NULL) - before, 0);
    expect(&r, &good);
    /* The token's and the valid lookup's. */
    CHECK_INT(count_requests(s, "", "", NULL) - before, 2);
    CHECK_INT(COUNT(&r, graph_requests), 2);
    rig_close(&r);
}

/* What a batch of lookups too large for struct answer each saw. */
struct tally {
    int done, found, too_many, token_failed, shutting_down, other;
};

static void count_answer(void *arg, enum identity_status status, const char *email,
                         const char *detail)
{
    struct tally *t = arg;

    t->done++;
    if (status == IDENTITY_FOUND && strcmp(email, "john.smith@contoso.com") == 0)
        t->found++;
    else if (status == IDENTITY_ERROR && strcmp(detail, "graph: too many lookups pending") == 0)
        t->too_many++;
    else if (status == IDENTITY_ERROR &&
             strcmp(detail, "graph: token request failed: HTTP 401 invalid_client") == 0)
        t->token_failed++;
    else if (status == IDENTITY_ERROR && strcmp(detail, "graph: shutting down") == 0)
        t->shutting_down++;
    else
        t->other++;
}

#define SAME_USER_LOOKUPS 20000

/* 20,000 lookups of one user (in two cases) before any answer: one
 * request. Then GRAPH_MAX_PENDING distinct users pending (their token
 * refused, so none gets a request): the next distinct users fail at once
 * with the transient error, a pending one still takes more waiters, and
 * once the pending ones have failed a new user is taken again. */
static void test_pending_cap(const struct unit_standin *s)
{
    static struct tally t;
    char name[64];
    int before;
    struct rig r;

    if (rig_open(&r, s, secret_path, 4) != 0) {
        UNIT_FAIL("pending cap: rig_open");
        rig_close(&r);
        return;
    }
    memset(&t, 0, sizeof(t));
    before = count_requests(s, "/v1.0/users/jsmith", "", NULL);
    for (int i = 0; i < SAME_USER_LOOKUPS; i++)
        graph_lookup(r.g, USER_KIND_UPN,
                     i % 2 ? STR_LIT("JSmith@Contoso.com") : STR_LIT("jsmith@contoso.com"),
                     count_answer, &t);
    CHECK_INT(t.done, 0);
    CHECK_INT(unit_run_until(base, &t.done, SAME_USER_LOOKUPS, 15000), 0);
    CHECK_INT(t.found, SAME_USER_LOOKUPS);
    CHECK_INT(count_requests(s, "/v1.0/users/jsmith", "", NULL) - before, 1);
    CHECK_INT(COUNT(&r, graph_coalesced), SAME_USER_LOOKUPS - 1);
    rig_close(&r);

    if (rig_open(&r, s, wrong_secret_path, 4) != 0) {
        UNIT_FAIL("pending cap: rig_open");
        rig_close(&r);
        return;
    }
    memset(&t, 0, sizeof(t));
    before = count_requests(s, "/v1.0/users", "", NULL);
    for (int i = 0; i < GRAPH_MAX_PENDING + 10; i++) {
        snprintf(name, sizeof(name), "user%d@contoso.com", i);
        graph_lookup(r.g, USER_KIND_UPN, str_make(name, strlen(name)), count_answer, &t);
    }
    CHECK_INT(t.done, 10);
    CHECK_INT(t.too_many, 10);
    CHECK_INT(COUNT(&r, graph_errors), 10);
    graph_lookup(r.g, USER_KIND_UPN, STR_LIT("USER7@contoso.com"), count_answer, &t);
    CHECK_INT(t.done, 10);
    CHECK_INT(COUNT(&r, graph_coalesced), 1);
    /* The one token request fails them all. */
    CHECK_INT(unit_run_until(base, &t.done, GRAPH_MAX_PENDING + 11, 15000), 0);
    CHECK_INT(t.token_failed, GRAPH_MAX_PENDING + 1);
    CHECK_INT(COUNT(&r, graph_token_requests), 1);
    CHECK_INT(count_requests(s, "/v1.0/users", "", NULL) - before, 0);
    graph_lookup(r.g, USER_KIND_UPN, STR_LIT("another@contoso.com"), count_answer, &t);
    CHECK_INT(t.done, GRAPH_MAX_PENDING + 11);
    rig_close(&r);
    CHECK_INT(t.shutting_down, 1);
    CHECK_INT(t.other, 0);
}

/* A short token life: a lookup after it fetches a new token. The
 * stand-in's one scripted answer (taken by the first Graph request) is a
 * wrongly typed list. */
static void test_token_expiry(const struct unit_standin *s)
{
    static const struct lookup_case not_array = {"value not an array",
                                                 USER_KIND_EMPLOYEE_ID,
                                                 "1001",
                                                 IDENTITY_ERROR,
                                                 NULL,
                                                 "graph: response without a value array"};
    static const struct lookup_case c = {"after renewal",          USER_KIND_UPN,
                                         "jsmith@contoso.com",     IDENTITY_FOUND,
                                         "john.smith@contoso.com", NULL};
    struct rig r;
    uint64_t tokens;

    if (rig_open(&r, s, secret_path, 4) != 0) {
        UNIT_FAIL("token expiry: rig_open");
        rig_close(&r);
        return;
    }
    expect(&r, &not_array);
    expect(&r, &c);
    expect(&r, &c);
    tokens = COUNT(&r, graph_token_requests);
    unit_run_until(base, NULL, 0, 1300); /* --token-expires 2: renewed after 1 s */
    expect(&r, &c);
    CHECK_INT(COUNT(&r, graph_token_requests), tokens + 1);
    CHECK_INT(count_requests(s, "/oauth2/v2.0/token", "", NULL), (int)tokens + 1);
    CHECK_INT(count_requests(s, "/v1.0/users", "", NULL), 4);
    rig_close(&r);
}

/* The short-lived token stand-in's one scripted answer, taken by the first
 * Graph request: a list that is not one. */
static const char short_script[] =
    "[{\"match\": \"/v1.0/users\", \"status\": 200, \"body\": {\"value\": \"nope\"}}]";

/* The scripted stand-in: each action is taken once, by the first Graph
 * request (never the token's) whose path holds its "match". */
static const char script[] =
    "[{\"match\": \"users/jsmith@\", \"status\": 429, \"retry_after\": \"1\"},"
    " {\"match\": \"users/o'brien@\", \"status\": 401},"
    " {\"match\": \"000000000003\", \"status\": 500},"
    " {\"match\": \"000000000004\", \"status\": 429, \"clock_offset\": 3600,"
    " \"retry_after_in\": 1},"
    " {\"match\": \"users/bad1@\", \"status\": 200, \"body\": \"{\\\"mail\\\": \\\"x\"},"
    " {\"match\": \"users/bad2@\", \"status\": 200, \"body\": {\"id\": \"1\", \"mail\": 5}},"
    " {\"match\": \"users/bad3@\", \"status\": 200, \"body\": [\"x\"]},"
    " {\"match\": \"users/bad4@\", \"huge\": 300000},"
    " {\"match\": \"users/bad5@\", \"status\": 403},"
    " {\"match\": \"users/bad6@\", \"status\": 400, \"body\": {\"error\": {\"code\": "
    "\"Request_BadRequest\", \"message\": \"Invalid filter clause\"}}},"
    " {\"match\": \"users/busy@\", \"status\": 429, \"retry_after\": \"0\"},"
    " {\"match\": \"users/busy@\", \"status\": 503, \"retry_after\": \"garbage\"},"
    " {\"match\": \"users/busy@\", \"status\": 429, \"retry_after\": \"1\"},"
    " {\"match\": \"users/busy@\", \"status\": 429, \"retry_after\": \"1\"},"
    " {\"match\": \"users/hang\", \"hang\": true},"
    " {\"match\": \"users/hang\", \"hang\": true},"
    " {\"match\": \"users/hang\", \"hang\": true}]";

static const struct lookup_case scripted[] = {
    {"429 then success", USER_KIND_UPN, "jsmith@contoso.com", IDENTITY_FOUND,
     "john.smith@contoso.com", NULL},
    {"401 then a new token", USER_KIND_UPN, "o'brien@contoso.com", IDENTITY_FOUND,
     "pat.o'brien@contoso.com", NULL},
    {"500 then success", USER_KIND_GUID, "6f1e2d3c-0000-4000-8000-000000000003", IDENTITY_FOUND,
     "alice@fabrikam.com", NULL},
    /* Retry-After 1 s as an HTTP-date of a server an hour ahead: from its
     * Date header that is 1 s (from our clock, the 120 s cap). */
    {"429 with an HTTP-date, server an hour ahead", USER_KIND_GUID,
     "6f1e2d3c-0000-4000-8000-000000000004", IDENTITY_FOUND, "svc@contoso.com", NULL},
    {"malformed json", USER_KIND_UPN, "bad1@x.com", IDENTITY_ERROR, NULL,
     "graph: malformed JSON in the response"},
    {"mail not a string", USER_KIND_UPN, "bad2@x.com", IDENTITY_ERROR, NULL,
     "graph: the user's mail is not a string"},
    {"user not an object", USER_KIND_UPN, "bad3@x.com", IDENTITY_ERROR, NULL,
     "graph: malformed JSON in the response"},
    {"body over the cap", USER_KIND_UPN, "bad4@x.com", IDENTITY_ERROR, NULL, "graph: "},
    {"403", USER_KIND_UPN, "bad5@x.com", IDENTITY_ERROR, NULL,
     "graph: HTTP 403 Authorization_RequestDenied"},
    /* Graph refusing this identifier: no retry makes it resolve. */
    {"400", USER_KIND_UPN, "bad6@x.com", IDENTITY_NOT_FOUND, NULL,
     "graph: HTTP 400 Request_BadRequest"},
    {"throttled four times", USER_KIND_UPN, "busy@x.com", IDENTITY_ERROR, NULL,
     "graph: throttled (HTTP 429) 4 times"},
};

static void test_scripted(const struct unit_standin *s)
{
    struct answer a[3] = {{0}};
    struct rig r;
    int done = 0;

    if (rig_open(&r, s, secret_path, 4) != 0) {
        UNIT_FAIL("scripted: rig_open");
        rig_close(&r);
        return;
    }
    for (size_t i = 0; i < sizeof(scripted) / sizeof(scripted[0]); i++)
        expect(&r, &scripted[i]);
    CHECK_INT(COUNT(&r, graph_token_requests), 2);
    CHECK_INT(COUNT(&r, graph_throttled), 6);
    CHECK_INT(COUNT(&r, graph_errors), 6);
    /* Each scripted failure was retried the right number of times. */
    CHECK_INT(count_requests(s, "/v1.0/users/jsmith", "", NULL), 2);
    CHECK_INT(count_requests(s, "/v1.0/users/busy", "", NULL), 4);
    CHECK_INT(count_requests(s, "/v1.0/users/bad", "", NULL), 6);
    CHECK_INT(COUNT(&r, graph_requests), count_requests(s, "", "", NULL));
    CHECK_INT(count_requests(s, "/oauth2/v2.0/token", "", NULL), 2);

    /* Two lookups hang at the stand-in, a third waits for a slot: all
     * three end at graph_free; http_free then completes the transfers. */
    rig_close(&r);
    if (rig_open(&r, s, secret_path, 2) != 0) {
        UNIT_FAIL("scripted: rig_open");
        rig_close(&r);
        return;
    }
    for (int i = 0; i < 3; i++) {
        static const char *const ids[] = {"hang1@x.com", "hang2@x.com", "hang3@x.com"};

        a[i].done = &done;
        graph_lookup(r.g, USER_KIND_UPN, str_make(ids[i], 11), record, &a[i]);
    }
    for (int i = 0; i < 100 && count_requests(s, "/v1.0/users/hang", "", NULL) < 2; i++)
        unit_run_until(base, NULL, 0, 100);
    unit_run_until(base, NULL, 0, 200);
    CHECK_INT(count_requests(s, "/v1.0/users/hang", "", NULL), 2);
    CHECK_INT(done, 0);
    graph_free(r.g);
    r.g = NULL;
    CHECK_INT(done, 3);
    for (int i = 0; i < 3; i++)
        CHECK(a[i].calls == 1 && a[i].status == IDENTITY_ERROR &&
              strcmp(a[i].detail, "graph: shutting down") == 0);
    rig_close(&r);
}

/* A wrong secret: the lookups waiting for the token fail naming the OAuth
 * error, never the secret. Secret files refused by graph_new. */
static void test_secrets(const struct unit_standin *s)
{
    static const struct lookup_case c = {
        "wrong secret", USER_KIND_UPN, "jsmith@contoso.com",
        IDENTITY_ERROR, NULL,          "graph: token request failed: HTTP 401 invalid_client"};
    char path[PATH_MAX + 32], log[1024];
    struct answer a = {0}, b = {0};
    struct rig r;
    int done = 0;

    if (rig_open(&r, s, wrong_secret_path, 4) != 0) {
        UNIT_FAIL("secrets: rig_open");
        rig_close(&r);
        return;
    }
    expect(&r, &c);
    a.done = b.done = &done;
    graph_lookup(r.g, USER_KIND_UPN, STR_LIT("a@contoso.com"), record, &a);
    graph_lookup(r.g, USER_KIND_SID, STR_LIT("S-1-5-21-1-2-3-4"), record, &b);
    CHECK_INT(unit_run_until(base, &done, 2, 15000), 0);
    CHECK(strcmp(a.detail, c.detail) == 0 && strcmp(b.detail, c.detail) == 0);
    CHECK(strstr(a.detail, "wrong-secret") == NULL);
    CHECK_INT(COUNT(&r, graph_token_requests), 2);
    CHECK_INT(COUNT(&r, graph_errors), 3);
    rig_close(&r);

    snprintf(path, sizeof(path), "%s/empty.secret", env.dir);
    unit_write_file(path, "\n");
    unit_capture_begin();
    CHECK_INT(rig_open(&r, s, path, 4), ERR_CONFIG);
    unit_capture_end(log, sizeof(log));
    CHECK(r.g == NULL && strstr(log, "identity.graph.client_secret_file: ") != NULL &&
          strstr(log, "empty.secret: empty") != NULL);
    rig_close(&r);
    snprintf(path, sizeof(path), "%s/missing.secret", env.dir);
    unit_capture_begin();
    CHECK_INT(rig_open(&r, s, path, 4), ERR_IO);
    unit_capture_end(log, sizeof(log));
    CHECK(r.g == NULL && strstr(log, "missing.secret: cannot open") != NULL);
    rig_close(&r);
}

/* When the stand-in received each token request, in seconds (time.time()),
 * up to max of them in t: how many there were. */
static int token_times(const struct unit_standin *s, double *t, int max)
{
    FILE *f = fopen(s->requests, "r");
    char line[65536];
    int n = 0;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        struct json_object *rec = json_tokener_parse(line), *p, *tm;

        if (json_object_object_get_ex(rec, "path", &p) &&
            json_object_object_get_ex(rec, "time", &tm) &&
            strstr(json_object_get_string(p), "/oauth2/v2.0/token") != NULL) {
            if (n < max)
                t[n] = json_object_get_double(tm);
            n++;
        }
        json_object_put(rec);
    }
    if (f != NULL)
        fclose(f);
    return n;
}

/* The down stand-in answers its first three token requests 503 with
 * Retry-After: 1. */
static const char down_script[] =
    "[{\"match\": \"/oauth2/v2.0/token\", \"status\": 503, \"retry_after\": \"1\"},"
    " {\"match\": \"/oauth2/v2.0/token\", \"status\": 503, \"retry_after\": \"1\"},"
    " {\"match\": \"/oauth2/v2.0/token\", \"status\": 503, \"retry_after\": \"1\"}]";

#define DOWN_LOOKUPS 80

/* A token endpoint that is down is asked once per backoff, never before
 * its Retry-After, whatever the lookup rate; the lookups that waited for a
 * failed attempt fail naming it, and once it is back they succeed. Then a
 * wrong secret (401 without Retry-After, for ever): lookups every 20 ms for
 * 3 s make a few token requests, not one per lookup. */
static void test_token_backoff(const struct unit_standin *down, const struct unit_standin *s)
{
    static const struct lookup_case after = {"after the outage",       USER_KIND_UPN,
                                             "jsmith@contoso.com",     IDENTITY_FOUND,
                                             "john.smith@contoso.com", NULL};
    static struct answer a[DOWN_LOOKUPS];
    static int done;
    double t[8];
    int n, failed = 0, found = 0, before;
    struct rig r;

    if (rig_open(&r, down, secret_path, 4) != 0) {
        UNIT_FAIL("token backoff: rig_open");
        rig_close(&r);
        return;
    }
    memset(a, 0, sizeof(a));
    done = 0;
    /* 4 s of lookups: the three failures take 2 to 3 s, so the last ones wait for the fourth
     * attempt. */
    for (int i = 0; i < DOWN_LOOKUPS; i++) {
        a[i].done = &done;
        graph_lookup(r.g, USER_KIND_UPN, STR_LIT("jsmith@contoso.com"), record, &a[i]);
        unit_run_until(base, NULL, 0, 50);
    }
    CHECK_INT(unit_run_until(base, &done, DOWN_LOOKUPS, 15000), 0);
    for (int i = 0; i < DOWN_LOOKUPS; i++) {
        if (a[i].calls == 1 && a[i].status == IDENTITY_ERROR &&
            strcmp(a[i].detail, "graph: token request failed: HTTP 503 temporarily_unavailable") ==
                0)
            failed++;
        else if (a[i].calls == 1 && a[i].status == IDENTITY_FOUND)
            found++;
    }
    CHECK(failed > 0 && found > 0 && failed + found == DOWN_LOOKUPS);
    expect(&r, &after);
    n = token_times(down, t, 8);
    CHECK_INT(n, 4);
    CHECK_INT(COUNT(&r, graph_token_requests), 4);
    for (int i = 1; i < n && i < 4; i++)
        if (t[i] - t[i - 1] < 0.95)
            UNIT_FAIL("token request %d came %.3f s after the one before (Retry-After: 1)", i + 1,
                      t[i] - t[i - 1]);
    rig_close(&r);

    if (rig_open(&r, s, wrong_secret_path, 4) != 0) {
        UNIT_FAIL("token backoff: rig_open");
        rig_close(&r);
        return;
    }
    before = count_requests(s, "/oauth2/v2.0/token", "", NULL);
    for (int i = 0; i < 150; i++) {
        static struct answer b;

        memset(&b, 0, sizeof(b));
        graph_lookup(r.g, USER_KIND_UPN, STR_LIT("jsmith@contoso.com"), record, &b);
        unit_run_until(base, NULL, 0, 20);
    }
    n = count_requests(s, "/oauth2/v2.0/token", "", NULL) - before;
    /* Full jitter from 1 s doubling: about four in 3 s; eight would need
     * several unlikely short draws in a row. */
    CHECK(n >= 1 && n <= 8);
    CHECK_INT(COUNT(&r, graph_token_requests), n);
    rig_close(&r);
}

static void test_end_to_end(void)
{
    struct unit_standin main_s = {0}, short_s = {0}, script_s = {0}, down_s = {0};

    if (unit_standin_setup(&env, "graph") != 0) {
        UNIT_FAIL("cannot set up the stand-ins (tmpdir, tests/servers, certs.py)");
        unit_standin_cleanup(&env);
        return;
    }
    snprintf(users_json, sizeof(users_json), "%s/users.json", env.dir);
    snprintf(secret_path, sizeof(secret_path), "%s/client.secret", env.dir);
    snprintf(wrong_secret_path, sizeof(wrong_secret_path), "%s/wrong.secret", env.dir);
    unit_write_file(users_json, users);
    unit_write_file(secret_path, SECRET "\n");
    unit_write_file(wrong_secret_path, "wrong-secret\n");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    base = event_base_new();
    if (base == NULL || standin_start(&main_s, "main", NULL, NULL) != 0 ||
        standin_start(&short_s, "short", "2", short_script) != 0 ||
        standin_start(&script_s, "script", NULL, script) != 0 ||
        standin_start(&down_s, "down", NULL, down_script) != 0) {
        UNIT_FAIL("cannot start the Graph stand-ins");
    } else {
        test_kinds(&main_s);
        test_coalescing(&main_s);
        test_invalid_ids(&main_s);
        test_pending_cap(&main_s);
        test_secrets(&main_s);
        test_token_expiry(&short_s);
        test_scripted(&script_s);
        test_token_backoff(&down_s, &main_s);
    }
    unit_standin_stop(&main_s);
    unit_standin_stop(&short_s);
    unit_standin_stop(&script_s);
    unit_standin_stop(&down_s);
    if (base != NULL)
        event_base_free(base);
    curl_global_cleanup();
    unit_standin_cleanup(&env);
}

int main(void)
{
    test_paths();
    test_path_sizes();
    graph_free(NULL);
    test_end_to_end();
    return unit_report("graph");
}
