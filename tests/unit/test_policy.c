/* Response policies (policy.h): load errors with their file and key path,
 * matching (first tier that holds, a policy whose "when" fails skipped,
 * decision.* fields, numeric tests, COUNTs over a seeded counter), the
 * block policy_decide writes and policy_block_read reads back, the explain
 * lines, and check's listing. Files are written into a temporary folder;
 * in the texts below ' stands for " (swapped when written). */
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "errors.h"
#include "decide/correlate.h"
#include "decide/decision.h"
#include "decide/mapping.h"
#include "decide/policy.h"
#include "message.h"
#include "unit.h"

static char tmpdir[] = "/tmp/rtr-test-policy.XXXXXX";

#define CHECK_HAS(ctx, text, want)                                                                 \
    do {                                                                                           \
        if (strstr((text), (want)) != NULL)                                                        \
            unit_passed++;                                                                         \
        else                                                                                       \
            UNIT_FAIL("%s: missing \"%s\" in:\n%s", (ctx), (want), (text));                        \
    } while (0)

#define MAPPINGS                                                                                   \
    "{'mappings': [{'name': 'm1', 'when': [{'field': 'cef.vendor', 'equals': 'V'}], 'rule': "      \
    "{'field': 'cef.name'}, "                                                                      \
    "'user': {'field': 'cef.ext.suser'}}]}"

/* A policy file with one policy; POL builds a policy. */
#define PFILE(pols)    "{'policies': [" pols "]}"
#define POL(name, ...) "{'name': '" name "', " __VA_ARGS__ "}"
#define TIER_LOW       "'tiers': [{'priority': 'low'}]"
#define ACTS_LOW(a)    "'actions': {'low': [" a "]}"
#define ST(name)       "{'name': '" name "', 'type': 'safetitan'}"
#define ONE(...)       PFILE(POL("p", TIER_LOW ", " ACTS_LOW(__VA_ARGS__)))

/* Writes text to tmpdir/name with ' swapped for ". */
static void write_text(const char *name, const char *text, char *path)
{
    FILE *f;

    snprintf(path, PATH_MAX, "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    for (const char *p = text; *p != '\0'; p++)
        fputc(*p == '\'' ? '"' : *p, f);
    if (fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

static size_t count_lines(const char *text)
{
    size_t n = 0;

    for (const char *p = text; (p = strchr(p, '\n')) != NULL; p++)
        n++;
    return n;
}

/* The mappings, then policy files text1 (and text2), the log captured into
 * err. Returns policy_load's code; *set is NULL when it failed. */
static int load2(const char *text1, const char *text2, struct mapping_set **set, char *err,
                 size_t cap, char *p1, char *p2)
{
    char mpath[PATH_MAX];
    char *mglobs[1] = {mpath}, *pglobs[2] = {p1, p2};
    int rc;

    write_text("m.json", MAPPINGS, mpath);
    write_text("p1.json", text1, p1);
    if (text2 != NULL)
        write_text("p2.json", text2, p2);
    *set = NULL;
    unit_capture_begin();
    rc = mapping_set_load(mglobs, 1, 0, set);
    if (rc == 0)
        rc = policy_load(*set, pglobs, text2 != NULL ? 2 : 1, 0);
    unit_capture_end(err, cap);
    if (rc != 0) {
        mapping_set_unref(*set);
        *set = NULL;
    }
    unlink(mpath);
    unlink(p1);
    if (text2 != NULL)
        unlink(p2);
    return rc;
}

static int load(const char *text, struct mapping_set **set, char *err, size_t cap)
{
    char p1[PATH_MAX], p2[PATH_MAX];

    return load2(text, NULL, set, err, cap, p1, p2);
}

/* ---- load errors ---- */

static char secret_path[PATH_MAX];

static const struct load_case {
    const char *name;
    const char *file, *file2;
    const char *want[4]; /* @ stands for the first file's path, % the second's */
} load_cases[] = {
    {"unknown policy key",
     PFILE(POL("p", TIER_LOW ", " ACTS_LOW("") ", 'colour': 1")),
     NULL,
     {"@: policies[0].colour: unknown key"}},
    {"unknown tier key",
     PFILE(POL("p", "'tiers': [{'priority': 'low', 'x': 1}], " ACTS_LOW(""))),
     NULL,
     {"@: policies[0].tiers[0].x: unknown key"}},
    {"unknown safetitan key",
     ONE("{'name': 'a', 'type': 'safetitan', 'url': 'https://x'}"),
     NULL,
     {"@: policies[0].actions.low[0].url: unknown key"}},
    {"unknown webhook key",
     ONE("{'name': 'a', 'type': 'webhook', 'url': 'https://x', 'body': {}, 'to': []}"),
     NULL,
     {"@: policies[0].actions.low[0].to: unknown key"}},
    {"unknown email key",
     ONE("{'name': 'a', 'type': 'email', 'to': ['a@b'], 'subject': 's', 'text': 't', "
         "'event': 'e'}"),
     NULL,
     {"@: policies[0].actions.low[0].event: unknown key"}},
    {"missing policy keys",
     PFILE("{'description': 'x'}"),
     NULL,
     {"@: policies[0].name: required key is missing",
      "@: policies[0].tiers: required key is missing",
      "@: policies[0].actions: required key is missing"}},
    {"missing action keys",
     ONE("{'description': 'x'}"),
     NULL,
     {"@: policies[0].actions.low[0].name: required key is missing",
      "@: policies[0].actions.low[0].type: required key is missing"}},
    {"missing webhook keys",
     ONE("{'name': 'a', 'type': 'webhook'}"),
     NULL,
     {"@: policies[0].actions.low[0].url: required key is missing",
      "@: policies[0].actions.low[0].body: required key is missing"}},
    {"missing email keys",
     ONE("{'name': 'a', 'type': 'email'}"),
     NULL,
     {"@: policies[0].actions.low[0].to: required key is missing",
      "@: policies[0].actions.low[0].subject: required key is missing",
      "@: policies[0].actions.low[0].text: required key is missing"}},
    {"missing tier priority",
     PFILE(POL("p", "'tiers': [{}], " ACTS_LOW(""))),
     NULL,
     {"@: policies[0].tiers[0].priority: required key is missing"}},
    {"bad priority",
     PFILE(POL("p", "'tiers': [{'priority': 'urgent'}], " ACTS_LOW(""))),
     NULL,
     {"@: policies[0].tiers[0].priority: expected one of"}},
    {"actions under an unknown priority",
     PFILE(POL("p", TIER_LOW ", 'actions': {'urgent': []}")),
     NULL,
     {"@: policies[0].actions.urgent: not a priority"}},
    {"tier priority without actions",
     PFILE(POL("p", "'tiers': [{'priority': 'high'}], " ACTS_LOW(""))),
     NULL,
     {"@: policies[0].tiers[0]: sets priority high, which has no list under \"actions\""}},
    {"COUNT in the policy's when",
     PFILE(POL("p",
               "'when': [{'alerts_for': 'user', 'within_minutes': 5, 'at_least': 2}], " TIER_LOW
               ", " ACTS_LOW(""))),
     NULL,
     {"@: policies[0].when[0]: alerts_for: counts go in a tier's \"when\", not the policy's"}},
    {"bad alerts_for",
     PFILE(POL("p", "'tiers': [{'priority': 'low', 'when': [{'alerts_for': 'group', "
                    "'within_minutes': 5, 'at_least': 2}]}], " ACTS_LOW(""))),
     NULL,
     {"@: policies[0].tiers[0].when[0].alerts_for: expected one of"}},
    {"bad within_minutes",
     PFILE(POL("p", "'tiers': [{'priority': 'low', 'when': [{'alerts_for': 'user', "
                    "'within_minutes': 0, 'at_least': 2}]}], " ACTS_LOW(""))),
     NULL,
     {"@: policies[0].tiers[0].when[0].within_minutes: must be between 1 and 10080, got 0"}},
    {"within_minutes not an integer",
     PFILE(POL("p", "'tiers': [{'priority': 'low', 'when': [{'alerts_for': 'user', "
                    "'within_minutes': '5', 'at_least': 2}]}], " ACTS_LOW(""))),
     NULL,
     {"@: policies[0].tiers[0].when[0].within_minutes: expected an integer"}},
    {"bad at_least",
     PFILE(POL("p", "'tiers': [{'priority': 'low', 'when': [{'alerts_for': 'host', "
                    "'within_minutes': 5, 'at_least': 10001}]}], " ACTS_LOW(""))),
     NULL,
     {"@: policies[0].tiers[0].when[0].at_least: must be between 1 and 10000, got 10001"}},
    {"COUNT missing keys",
     PFILE(POL("p",
               "'tiers': [{'priority': 'low', 'when': [{'alerts_for': 'user'}]}], " ACTS_LOW(""))),
     NULL,
     {"@: policies[0].tiers[0].when[0].within_minutes: required key is missing",
      "@: policies[0].tiers[0].when[0].at_least: required key is missing"}},
    {"bad numeric test",
     PFILE(POL("p", "'tiers': [{'priority': 'low', 'when': [{'field': 'cef.label.riskscore', "
                    "'ge': 'x'}]}], " ACTS_LOW(""))),
     NULL,
     {"@: policies[0].tiers[0].when[0].ge: expected a number"}},
    {"duplicate policy across files",
     PFILE(POL("p", TIER_LOW ", " ACTS_LOW(""))),
     PFILE(POL("q", TIER_LOW ", " ACTS_LOW("")) ", " POL("p", TIER_LOW ", " ACTS_LOW(""))),
     {"%: policies[1].name: \"p\" is already the name of policies[0] in @"}},
    {"duplicate action",
     ONE(ST("a") ", " ST("b") ", " ST("a")),
     NULL,
     {"@: policies[0].actions.low[2]: \"a\" already names actions[0] of this priority"}},
    {"bad policy name",
     PFILE(POL("p q", TIER_LOW ", " ACTS_LOW(""))),
     NULL,
     {"@: policies[0].name: may hold only letters, digits, '-', '_' and '.', got \"p q\""}},
    {"bad action name",
     ONE(ST("a/b")),
     NULL,
     {"@: policies[0].actions.low[0].name: may hold only letters, digits, '-', '_' and '.', got "
      "\"a/b\""}},
    {"long name",
     PFILE(POL("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
               TIER_LOW ", " ACTS_LOW(""))),
     NULL,
     {"@: policies[0].name: longer than 64 bytes"}},
    {"webhook not https",
     ONE("{'name': 'a', 'type': 'webhook', 'url': 'http://x', 'body': {}}"),
     NULL,
     {"@: policies[0].actions.low[0].url: must be https://"}},
    {"body a string",
     ONE("{'name': 'a', 'type': 'webhook', 'url': 'https://x', 'body': 'x'}"),
     NULL,
     {"@: policies[0].actions.low[0].body: expected a JSON object or array, got \"x\""}},
    {"template error in a body",
     ONE("{'name': 'a', 'type': 'webhook', 'url': 'https://x', 'body': {'r': '{{nope}}'}}"),
     NULL,
     {"@: policies[0].actions.low[0].body: ", "offset"}},
    {"header name invalid",
     ONE("{'name': 'a', 'type': 'webhook', 'url': 'https://x', 'body': {}, 'headers': {'X Y': "
         "'v'}}"),
     NULL,
     {"@: policies[0].actions.low[0].headers.X Y: not a header name"}},
    {"header reserved",
     ONE("{'name': 'a', 'type': 'webhook', 'url': 'https://x', 'body': {}, 'headers': "
         "{'content-type': 'v'}}"),
     NULL,
     {"@: policies[0].actions.low[0].headers.content-type: the agent sets this header itself"}},
    {"secret_file unreadable",
     ONE("{'name': 'a', 'type': 'webhook', 'url': 'https://x', 'body': {}, 'secret_file': "
         "'/nonexistent/secret'}"),
     NULL,
     {"@: policies[0].actions.low[0].secret_file: /nonexistent/secret: "}},
    {"secret_header without secret_file",
     ONE("{'name': 'a', 'type': 'webhook', 'url': 'https://x', 'body': {}, 'secret_header': "
         "'X'}"),
     NULL,
     {"@: policies[0].actions.low[0].secret_header: needs secret_file"}},
    {"ca_file unreadable",
     ONE("{'name': 'a', 'type': 'webhook', 'url': 'https://x', 'body': {}, 'ca_file': "
         "'/nonexistent/ca.pem'}"),
     NULL,
     {"@: policies[0].actions.low[0].ca_file: /nonexistent/ca.pem: cannot read: No such file"}},
    {"email to not an address",
     ONE("{'name': 'a', 'type': 'email', 'to': ['ok@example.com', 'Bob <b@x>'], 'subject': 's', "
         "'text': 't'}"),
     NULL,
     {"@: policies[0].actions.low[0].to[1]: expected one plain address (user@domain)"}},
    {"email to without @",
     ONE("{'name': 'a', 'type': 'email', 'to': ['soc'], 'subject': 's', 'text': 't'}"),
     NULL,
     {"@: policies[0].actions.low[0].to[0]: expected one plain address (user@domain)"}},
    {"too many actions",
     ONE(ST("a1") "," ST("a2") "," ST("a3") "," ST("a4") "," ST("a5") "," ST("a6") "," ST(
         "a7") "," ST("a8") "," ST("a9")),
     NULL,
     {"@: policies[0].actions.low: more than 8 actions"}},
    {"too many headers",
     ONE("{'name': 'a', 'type': 'webhook', 'url': 'https://x', 'body': {}, 'headers': {'h1': 'v', "
         "'h2': 'v', 'h3': 'v', 'h4': 'v', 'h5': 'v', 'h6': 'v', 'h7': 'v', 'h8': 'v', 'h9': 'v', "
         "'h10': 'v', 'h11': 'v', 'h12': 'v', 'h13': 'v', 'h14': 'v', 'h15': 'v', 'h16': 'v', "
         "'h17': 'v'}}"),
     NULL,
     {"@: policies[0].actions.low[0].headers: more than 16 headers"}},
    {"unknown template field",
     ONE("{'name': 'a', 'type': 'email', 'to': ['a@b'], 'subject': '{{field \\'cef.nope\\'}}', "
         "'text': 't'}"),
     NULL,
     {"@: policies[0].actions.low[0]: unknown field \"cef.nope\""}},
    {"cooldown out of range",
     ONE("{'name': 'a', 'type': 'email', 'to': ['a@b'], 'subject': 's', 'text': 't', "
         "'cooldown_s': -1}"),
     NULL,
     {"@: policies[0].actions.low[0].cooldown_s: must be between 0 and 604800, got -1"}},
    /* A "\r\n" in the secret header's name would split the request's
     * header (action.c writes "NAME: secret"). */
    {"secret_header not a header name",
     ONE("{'name': 'a', 'type': 'webhook', 'url': 'https://x', 'body': {}, 'secret_file': "
         "'secret', 'secret_header': 'X-Token\\r\\nX-Injected: 1'}"),
     NULL,
     {"@: policies[0].actions.low[0].secret_header: not a header name"}},
    {"secret_header reserved",
     ONE("{'name': 'a', 'type': 'webhook', 'url': 'https://x', 'body': {}, 'secret_file': "
         "'secret', 'secret_header': 'Content-Type'}"),
     NULL,
     {"@: policies[0].actions.low[0].secret_header: the agent sets this header itself"}},
    {"email to without a local part",
     ONE("{'name': 'a', 'type': 'email', 'to': ['@example.com'], 'subject': 's', 'text': 't'}"),
     NULL,
     {"@: policies[0].actions.low[0].to[0]: expected one plain address (user@domain)"}},
    {"approval then names no action of its list",
     ONE("{'name': 'ask', 'type': 'approval', 'to': ['a@b.c'], 'subject': 's', 'text': 't', "
         "'then': ['nope']}"),
     NULL,
     {"@: policies[0].actions.low[0].then[0]: \"nope\" is no action of this priority"}},
    {"approval then names an approval, twice held back",
     ONE("{'name': 'a1', 'type': 'approval', 'to': ['a@b.c'], 'subject': 's', 'text': 't', "
         "'then': ['a2', 'x']}, "
         "{'name': 'a2', 'type': 'approval', 'to': ['a@b.c'], 'subject': 's', 'text': 't', "
         "'then': ['x']}, {'name': 'x', 'type': 'safetitan'}"),
     NULL,
     {"@: policies[0].actions.low[0].then[0]: \"a2\" is an approval: approvals do not wait for "
      "each other",
      "@: policies[0].actions.low[1].then[0]: \"x\" already waits for an approval"}},
    {"approval without then, a bad default and expiry",
     ONE("{'name': 'ask', 'type': 'approval', 'to': ['a@b.c'], 'subject': 's', 'text': 't', "
         "'default': 'maybe', 'expires_s': 0}"),
     NULL,
     {"@: policies[0].actions.low[0].then: required key is missing",
      "@: policies[0].actions.low[0].expires_s: must be between 1 and 604800, got 0",
      "@: policies[0].actions.low[0].default: expected one of \"deny\", \"approve\", got "
      "\"maybe\""}},
    {"a mapping file",
     MAPPINGS,
     NULL,
     {"@: mappings: this looks like a mapping file, not a policy file"}},
    {"no policies key", "{'description': 'x'}", NULL, {"@: policies: required key is missing"}},
};

static void test_load_errors(void)
{
    char secret[PATH_MAX];

    /* for the cases that name a secret file (relative to theirs) */
    snprintf(secret, sizeof(secret), "%s/secret", tmpdir);
    unit_write_bytes(secret, "0123456789abcdef", 16);
    for (size_t i = 0; i < sizeof(load_cases) / sizeof(load_cases[0]); i++) {
        const struct load_case *c = &load_cases[i];
        char p1[PATH_MAX], p2[PATH_MAX], err[8192], want[1024];
        struct mapping_set *set = NULL;
        size_t n_want = 0;
        int rc = load2(c->file, c->file2, &set, err, sizeof(err), p1, p2);

        if (rc != ERR_CONFIG || set != NULL)
            UNIT_FAIL("%s: rc %d, want ERR_CONFIG and no set", c->name, rc);
        for (; n_want < 4 && c->want[n_want] != NULL; n_want++) {
            unit_expand(want, sizeof(want), c->want[n_want], p1, p2);
            CHECK_HAS(c->name, err, want);
        }
        /* the template case names its message in two parts of one line */
        if (strcmp(c->name, "template error in a body") == 0)
            n_want = 1;
        if (count_lines(err) != n_want)
            UNIT_FAIL("%s: %zu log lines, want %zu:\n%s", c->name, count_lines(err), n_want, err);
        mapping_set_unref(set);
    }
    unlink(secret);
}

/* The good forms load: a secret file read, relative to the policy file. */
static void test_load_good(void)
{
    char err[8192], path[PATH_MAX];
    struct mapping_set *set;

    snprintf(secret_path, sizeof(secret_path), "%s/secret", tmpdir);
    unit_write_bytes(secret_path, "Bearer abc\n", 11);
    CHECK_INT(load(ONE("{'name': 'a', 'type': 'webhook', 'url': 'https://x/y', 'body': {'r': "
                       "'{{rule}}'}, 'headers': {'X-Src': '{{field \\'cef.ext.src\\'}}'}, "
                       "'secret_file': 'secret', 'cooldown_s': 60}"),
                   &set, err, sizeof(err)),
              0);
    CHECK_INT(count_lines(err), 0);
    if (set != NULL) {
        struct policy_actions a = policy_actions(set, STR_LIT("p"), POLICY_LOW);

        CHECK_INT(a.n, 1);
        if (a.n == 1) {
            CHECK(strcmp(a.v[0].secret_header, "Authorization") == 0);
            CHECK(a.v[0].secret != NULL && strncmp(a.v[0].secret, "Bearer abc", 10) == 0);
            CHECK_INT(a.v[0].cooldown_s, 60);
            CHECK_INT(a.v[0].n_headers, 1);
        }
        mapping_set_unref(set);
    }
    (void)path;
    unlink(secret_path);
}

/* ---- matching ---- */

#define MSG(ext)                                                                                   \
    "<134>1 2026-10-02T09:12:44Z siem app - - - CEF:0|V|P|1.0|sig|Rule A|5|suser=jdoe " ext
static char line_buf[4096], scratch_buf[4096];
static struct message msg;

static const struct message *parse(const char *line)
{
    struct scratch sc;
    size_t len = strlen(line);

    memcpy(line_buf, line, len);
    scratch_init(&sc, scratch_buf, sizeof(scratch_buf));
    message_parse(line_buf, len, &msg, &sc);
    return &msg;
}

struct xlog {
    char text[16384];
    size_t len;
    int lines;
};

static void xline(void *arg, const char *text)
{
    struct xlog *x = arg;
    int n = snprintf(x->text + x->len, sizeof(x->text) - x->len, "%s\n", text);

    x->lines++;
    if (n > 0 && (size_t)n < sizeof(x->text) - x->len)
        x->len += (size_t)n;
}

struct run {
    struct mapping_set *set;
    struct mapping_matcher *mm;
    struct decision_hasher *h;
    struct correlate *c;
    struct jsonw w;
    struct policy_block b;
    struct xlog x;
};

static int run_open(struct run *r, const char *ctx, const char *text)
{
    char err[8192];

    memset(r, 0, sizeof(*r));
    if (load(text, &r->set, err, sizeof(err)) != 0) {
        UNIT_FAIL("%s: does not load:\n%s", ctx, err);
        return -1;
    }
    CHECK_INT(mapping_matcher_new(100000, 10000, NULL, &r->mm), 0);
    CHECK_INT(decision_hasher_new(&r->h), 0);
    if (policy_longest_window(r->set) > 0)
        CHECK_INT(correlate_new_seeded(1 << 20, policy_longest_window(r->set), 42, &r->c), 0);
    jsonw_init(&r->w, 0);
    return 0;
}

static void run_close(struct run *r)
{
    policy_block_free(&r->b);
    jsonw_free(&r->w);
    correlate_free(r->c);
    decision_hasher_free(r->h);
    mapping_matcher_free(r->mm);
    mapping_set_unref(r->set);
}

static const char NO_USER[] = "";

/* Decides line with user (overriding the mapping's) at now; the block read
 * back into r->b. Returns policy_decide's result. */
static int run_decide(struct run *r, const char *line, const char *user, int64_t now)
{
    struct mapping_decision d[MAPPING_MAX_DECISIONS];
    const struct message *m = parse(line);
    struct policy_explain ex = {xline, &r->x};
    struct policy_input in;
    int rc;

    if (mapping_match(r->set, r->mm, m, d, NULL) != 1) {
        UNIT_FAIL("no decision for %s", line);
        return -1;
    }
    if (user == NO_USER)
        d[0].user = STR_ABSENT;
    else if (user != NULL)
        d[0].user = str_make(user, strlen(user));
    in = (struct policy_input){&d[0], STR_LIT("host-1"), now};
    r->x.len = 0;
    r->x.lines = 0;
    r->x.text[0] = '\0';
    rc = policy_decide(r->set, r->mm, m, &in, r->c, r->h, &r->w, &ex);
    policy_block_free(&r->b);
    if (rc == 1)
        CHECK_INT(policy_block_read(str_make(r->w.buf, r->w.len), &r->b), 0);
    return rc;
}

#define TIERS3                                                                                     \
    "'tiers': [{'priority': 'critical', 'when': [{'field': 'cef.label.riskscore', 'ge': 80}]}, "   \
    "{'priority': 'high', 'when': [{'field': 'cef.label.riskscore', 'gt': 40}]}, "                 \
    "{'priority': 'low'}], "                                                                       \
    "'actions': {'critical': [" ST(                                                                \
        "c1") ", {'name': 'hook', 'type': 'webhook', 'url': "                                      \
              "'https://h', 'body': {'src': '{{field \\'cef.ext.src\\'}}'}}], 'high': [" ST(       \
                  "h1") "], "                                                                      \
                        "'low': []}"

static void test_tiers(void)
{
    struct run r;

    if (run_open(
            &r, "tiers",
            PFILE(POL(
                "skip",
                "'when': [{'field': 'decision.rule', 'equals': 'Other'}], "
                "'tiers': [{'priority': 'low'}], 'actions': {'low': []}") "," POL("risk",
                                                                                  "'when': "
                                                                                  "[{'field': "
                                                                                  "'decision.rule',"
                                                                                  " 'equals': "
                                                                                  "'Rule A'}, "
                                                                                  "{'field': "
                                                                                  "'decision.user',"
                                                                                  " 'exists': "
                                                                                  "true}],"
                                                                                  " " TIERS3))) !=
        0)
        return;
    CHECK_INT(policy_count(r.set), 2);
    CHECK_INT(policy_longest_window(r.set), 0);
    CHECK(policy_has(r.set, STR_LIT("risk")));
    CHECK(!policy_has(r.set, STR_LIT("ris")));
    CHECK_INT(policy_actions(r.set, STR_LIT("risk"), POLICY_CRITICAL).n, 2);
    CHECK_INT(policy_actions(r.set, STR_LIT("risk"), POLICY_MEDIUM).n, 0);
    CHECK_INT(policy_actions(r.set, STR_LIT("nope"), POLICY_CRITICAL).n, 0);
    CHECK(!policy_needs_smtp(r.set));

    /* 90 >= 80: the first tier */
    CHECK_INT(run_decide(&r, MSG("cs1Label=riskscore cs1=90 src=10.1.1.1"), NULL, 1000), 1);
    CHECK_STR("critical", r.b.policy, "risk");
    CHECK_INT(r.b.priority, POLICY_CRITICAL);
    CHECK_INT(r.b.tier, 0);
    CHECK_STR("critical", policy_block_field(&r.b, STR_LIT("cef.ext.src")), "10.1.1.1");
    CHECK_STR("critical", r.b.why, "tiers[0]: when[0] cef.label.riskscore \"90\" >= 80");
    CHECK(memmem(r.w.buf, r.w.len, "\"corr\"", 6) == NULL); /* no COUNT */
    CHECK_HAS("explain", r.x.text, "skip: no: when: ");
    CHECK_HAS("explain", r.x.text,
              "risk: yes: critical by tiers[0]: when[0] cef.label.riskscore \"90\" >= 80; actions: "
              "c1 (safetitan), hook (webhook)\n");
    CHECK_INT(r.x.lines, 2);

    /* 80 is not > 80 ... 55 > 40: the second */
    CHECK_INT(run_decide(&r, MSG("cs1Label=riskscore cs1=55"), NULL, 1000), 1);
    CHECK_INT(r.b.priority, POLICY_HIGH);
    CHECK_INT(r.b.tier, 1);
    CHECK_STR("high", policy_block_field(&r.b, STR_LIT("cef.ext.src")), NULL);
    CHECK_HAS("explain", r.x.text, "risk: no: tiers[0]: when[0]");
    CHECK_HAS("explain", r.x.text, "risk: yes: high by tiers[1]");
    CHECK_INT(r.x.lines, 3);

    /* 40 is not > 40: the last, always */
    CHECK_INT(run_decide(&r, MSG("cs1Label=riskscore cs1=40"), NULL, 1000), 1);
    CHECK_INT(r.b.priority, POLICY_LOW);
    CHECK_INT(r.b.tier, 2);
    CHECK_STR("low", r.b.why, "tiers[2] (always)");
    CHECK_HAS("explain", r.x.text, "risk: yes: low by tiers[2] (always); actions: none");

    /* no user: the policy's when fails; nothing applies */
    CHECK_INT(run_decide(&r, MSG("cs1Label=riskscore cs1=90"), NO_USER, 1000), 1);
    CHECK(r.b.policy.p == NULL);
    CHECK(r.b.json != NULL);
    CHECK_HAS("explain", r.x.text, "no policy applies: one SafeTitan event");
    CHECK_INT(r.x.lines, 3);
    CHECK_STR("no policy", str_make(r.w.buf, r.w.len), "{}");
    run_close(&r);
}

/* The first policy that holds wins: a second one that would also hold is
 * never tried. */
static void test_first_policy(void)
{
    struct run r;

    if (run_open(
            &r, "first",
            PFILE(POL(
                "one",
                "'when': [{'field': 'decision.mapping', 'equals': 'm1'}], "
                "'tiers': [{'priority': 'medium'}], 'actions': {'medium': [" ST(
                    "x") "]}") "," POL("two",
                                       "'tiers': [{'priority': 'high'}], 'actions': {'high': [" ST(
                                           "y") "]}"))) != 0)
        return;
    CHECK_INT(run_decide(&r, MSG(""), NULL, 1000), 1);
    CHECK_STR("first", r.b.policy, "one");
    CHECK_INT(r.b.priority, POLICY_MEDIUM);
    CHECK_INT(r.x.lines, 1);
    run_close(&r);
}

/* A captured value is cut at POLICY_MAX_FIELD_VALUE bytes, backed up to the
 * start of a UTF-8 sequence. */
static void test_field_cut(void)
{
    char line[2048], val[600];
    struct run r;
    struct str f;

    if (run_open(&r, "cut",
                 ONE("{'name': 'a', 'type': 'safetitan', 'event': 'E {{field "
                     "\\'cef.ext.msg\\'}}'}")) != 0)
        return;
    /* 255 'a' then "é" (2 bytes): byte 256 is inside the é */
    memset(val, 'a', 255);
    memcpy(val + 255, "\xc3\xa9zzzz", 6);
    val[261] = '\0';
    snprintf(line, sizeof(line), MSG("msg=%s"), val);
    CHECK_INT(run_decide(&r, line, NULL, 1000), 1);
    f = policy_block_field(&r.b, STR_LIT("cef.ext.msg"));
    CHECK_INT(f.len, 255);
    /* 256 'a' then é: cut at exactly 256 */
    memset(val, 'a', 256);
    memcpy(val + 256, "\xc3\xa9zzzz", 6);
    val[262] = '\0';
    snprintf(line, sizeof(line), MSG("msg=%s"), val);
    CHECK_INT(run_decide(&r, line, NULL, 1000), 1);
    f = policy_block_field(&r.b, STR_LIT("cef.ext.msg"));
    CHECK_INT(f.len, 256);
    /* short: whole */
    CHECK_INT(run_decide(&r, MSG("msg=h\xc3\xa9llo"), NULL, 1000), 1);
    CHECK_STR("short", policy_block_field(&r.b, STR_LIT("cef.ext.msg")), "h\xc3\xa9llo");
    CHECK_STR("other", policy_block_field(&r.b, STR_LIT("cef.ext.src")), NULL);
    run_close(&r);
}

#define COUNT_POLICY(n)                                                                            \
    PFILE(POL("burst", "'tiers': [{'priority': 'critical', 'when': [{'alerts_for': 'user', "       \
                       "'within_minutes': 60, 'at_least': " #n "}]}, {'priority': 'low'}], "       \
                       "'actions': {'critical': [" ST("c") "], 'low': []}"))

static void test_counts(void)
{
    struct run r;
    uint64_t keys[POLICY_SCOPES], first[POLICY_SCOPES];
    enum policy_scope scopes[POLICY_SCOPES];

    /* at_least 1: the alert counts itself */
    if (run_open(&r, "count1", COUNT_POLICY(1)) != 0)
        return;
    CHECK_INT(policy_longest_window(r.set), 3600);
    CHECK(r.c != NULL);
    CHECK_INT(run_decide(&r, MSG(""), NULL, 1000), 1);
    CHECK_INT(r.b.priority, POLICY_CRITICAL);
    CHECK_STR("count1", r.b.why,
              "tiers[0]: when[0] 1 alerts for the user within 60 min (at least 1)");
    CHECK_INT(policy_block_corr(&r.b, keys, scopes), 3);
    CHECK_INT(scopes[0], POLICY_BY_USER);
    CHECK_INT(scopes[1], POLICY_BY_HOST);
    CHECK_INT(scopes[2], POLICY_BY_USER_RULE);
    run_close(&r);

    if (run_open(&r, "count3", COUNT_POLICY(3)) != 0)
        return;
    CHECK_INT(run_decide(&r, MSG(""), "jdoe", 1000), 1);
    CHECK_INT(r.b.priority, POLICY_LOW);
    CHECK_HAS("count3", r.x.text, "burst: no: tiers[0]: when[0] 1 alerts for the user");
    CHECK_INT(policy_block_corr(&r.b, first, scopes), 3);
    {
        /* the keys: SHA-256 over the scope's name and its texts, lower case */
        const struct str u[] = {STR_LIT("user"), STR_LIT("jdoe")};
        const struct str hst[] = {STR_LIT("host"), STR_LIT("host-1")};
        const struct str ur[] = {STR_LIT("user_rule"), STR_LIT("jdoe"), STR_LIT("Rule A")};

        CHECK(first[0] == decision_hash64(r.h, u, 2));
        CHECK(first[1] == decision_hash64(r.h, hst, 2));
        CHECK(first[2] == decision_hash64(r.h, ur, 3));
    }
    /* the same user in another ASCII case: the same key, counted together */
    CHECK_INT(run_decide(&r, MSG(""), "JDoe", 1010), 1);
    CHECK_INT(r.b.priority, POLICY_LOW);
    CHECK_INT(policy_block_corr(&r.b, keys, scopes), 3);
    CHECK(keys[0] == first[0]);
    CHECK(keys[1] == first[1]);
    CHECK(keys[2] == first[2]);
    CHECK_INT(run_decide(&r, MSG(""), "JDOE", 1020), 1);
    CHECK_INT(r.b.priority, POLICY_CRITICAL);
    CHECK_STR("count3", r.b.why,
              "tiers[0]: when[0] 3 alerts for the user within 60 min (at least 3)");
    /* another user: its own count, its own key */
    CHECK_INT(run_decide(&r, MSG(""), "other", 1030), 1);
    CHECK_INT(r.b.priority, POLICY_LOW);
    CHECK_INT(policy_block_corr(&r.b, keys, scopes), 3);
    CHECK(keys[0] != first[0]);
    CHECK(keys[1] == first[1]); /* the same host */
    CHECK(keys[2] != first[2]);
    /* out of the window: counts again from 1 */
    CHECK_INT(run_decide(&r, MSG(""), "jdoe", 1020 + 2 * 3600), 1);
    CHECK_INT(r.b.priority, POLICY_LOW);
    run_close(&r);

    /* a set that counts but whose policy does not apply: the block holds
     * only the keys (every decided alert is counted) */
    if (run_open(&r, "count only",
                 PFILE(POL("burst", "'when': [{'field': 'decision.event', 'equals': 'zzz'}], "
                                    "'tiers': [{'priority': 'low', 'when': [{'alerts_for': "
                                    "'host', 'within_minutes': 1, 'at_least': 2}]}], "
                                    "'actions': {'low': []}"))) != 0)
        return;
    CHECK_INT(policy_longest_window(r.set), 60);
    CHECK_INT(run_decide(&r, MSG(""), NULL, 1000), 1);
    CHECK(r.b.policy.p == NULL);
    CHECK_INT(policy_block_corr(&r.b, keys, scopes), 3);
    CHECK(r.w.len > 9 && memcmp(r.w.buf, "{\"corr\":{\"user\":\"", 17) == 0);
    CHECK_HAS("count only", r.x.text, "no policy applies: one SafeTitan event");
    CHECK_INT(correlate_count(r.c, keys[1], 1000, 60), 1);
    CHECK_INT(run_decide(&r, MSG(""), NULL, 1001), 1);
    CHECK_INT(correlate_count(r.c, keys[1], 1001, 60), 2);
    run_close(&r);
}

/* A set without policies: no block at all. */
static void test_no_policies(void)
{
    struct mapping_decision d[MAPPING_MAX_DECISIONS];
    struct mapping_matcher *mm = NULL;
    struct mapping_set *set = NULL;
    struct decision_hasher *h = NULL;
    struct jsonw w;
    char err[4096], mpath[PATH_MAX];
    char *globs[1] = {mpath};
    struct policy_input in;
    const struct message *m;

    write_text("m.json", MAPPINGS, mpath);
    unit_capture_begin();
    CHECK_INT(mapping_set_load(globs, 1, 0, &set), 0);
    unit_capture_end(err, sizeof(err));
    unlink(mpath);
    if (set == NULL)
        return;
    CHECK_INT(mapping_matcher_new(100000, 10000, NULL, &mm), 0);
    CHECK_INT(decision_hasher_new(&h), 0);
    jsonw_init(&w, 0);
    m = parse(MSG(""));
    CHECK_INT(mapping_match(set, mm, m, d, NULL), 1);
    in = (struct policy_input){&d[0], STR_LIT("h"), 1};
    CHECK_INT(policy_decide(set, mm, m, &in, NULL, h, &w, NULL), 0);
    CHECK_INT(w.len, 0);
    CHECK_INT(policy_count(set), 0);
    CHECK_INT(policy_longest_window(set), 0);
    CHECK(!policy_needs_smtp(set));
    jsonw_free(&w);
    decision_hasher_free(h);
    mapping_matcher_free(mm);
    mapping_set_unref(set);
}

/* ---- reading blocks ---- */

static void test_block_read(void)
{
    static const struct {
        const char *block;
        int rc;
    } bad[] = {
        {"", ERR_INVALID},
        {"[1]", ERR_INVALID},
        {"{\"policy\": \"p\"", ERR_INVALID},
        {"{\"policy\": \"p\", \"priority\": \"urgent\", \"tier\": 0}", ERR_INVALID},
        {"{\"policy\": \"p\", \"priority\": \"low\"}", ERR_INVALID},
        {"{\"policy\": \"p\", \"priority\": \"low\", \"tier\": \"0\"}", ERR_INVALID},
        {"{\"policy\": \"p\", \"priority\": \"low\", \"tier\": 0} x", ERR_INVALID},
    };
    struct policy_block b;
    uint64_t keys[POLICY_SCOPES];
    enum policy_scope scopes[POLICY_SCOPES];
    const char *good = "{\"policy\": \"p\", \"priority\": \"high\", \"tier\": 2, \"why\": \"w\", "
                       "\"fields\": {\"cef.ext.src\": \"1.2.3.4\", \"n\": 5}, \"corr\": {\"user\": "
                       "\"00000000000000ff\", \"host\": \"zz00000000000000\", \"user_rule\": "
                       "\"0123456789abcdef\"}}";

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = policy_block_read(str_make(bad[i].block, strlen(bad[i].block)), &b);

        if (rc != bad[i].rc)
            UNIT_FAIL("bad block %zu (%s): rc %d", i, bad[i].block, rc);
        else
            unit_passed++;
        /* after ERR_INVALID the block may hold a document: freeing is
         * always safe */
        policy_block_free(&b);
    }
    CHECK_INT(policy_block_read(str_make(good, strlen(good)), &b), 0);
    CHECK_STR("good", b.policy, "p");
    CHECK_STR("good", b.why, "w");
    CHECK_INT(b.priority, POLICY_HIGH);
    CHECK_INT(b.tier, 2);
    CHECK_STR("good", policy_block_field(&b, STR_LIT("cef.ext.src")), "1.2.3.4");
    CHECK_STR("good", policy_block_field(&b, STR_LIT("n")), NULL); /* not a string */
    CHECK_STR("good", policy_block_field(&b, STR_LIT("x")), NULL);
    CHECK_INT(policy_block_corr(&b, keys, scopes), 2); /* "zz..." is not hex */
    CHECK(keys[0] == 0xff && scopes[0] == POLICY_BY_USER);
    CHECK(keys[1] == 0x0123456789abcdefULL && scopes[1] == POLICY_BY_USER_RULE);
    policy_block_free(&b);
    CHECK(b.json == NULL);
    policy_block_free(&b);

    /* only counts: no policy, keys all the same */
    CHECK_INT(policy_block_read(STR_LIT("{\"corr\": {\"host\": \"0000000000000001\"}}"), &b), 0);
    CHECK(b.policy.p == NULL);
    CHECK_INT(policy_block_corr(&b, keys, scopes), 1);
    CHECK(keys[0] == 1 && scopes[0] == POLICY_BY_HOST);
    CHECK_STR("nofields", policy_block_field(&b, STR_LIT("x")), NULL);
    policy_block_free(&b);
    CHECK_INT(policy_block_read(STR_LIT("{}"), &b), 0);
    CHECK(b.policy.p == NULL);
    CHECK_INT(policy_block_corr(&b, keys, scopes), 0);
    policy_block_free(&b);
}

/* ---- check's listing ---- */

static void test_describe(void)
{
    struct run r;

    if (run_open(
            &r, "describe",
            PFILE(POL("p",
                      "'tiers': [{'priority': 'low'}, {'priority': 'critical'}], "
                      "'actions': {'low': [" ST(
                          "t") "], 'critical': [{'name': 'hook', "
                               "'type': 'webhook', 'url': 'https://h/x', 'body': {'r': "
                               "'{{rule}}', 'u': '{{user}}', 's': '{{field \\'cef.ext.src\\'}}'}, "
                               "'headers': {'X-P': '{{priority}}'}}, {'name': 'mail', 'type': "
                               "'email', 'to': ['a@b'], 'subject': 'x', 'text': 'plain'}]}"))) != 0)
        return;
    policy_describe(r.set, xline, &r.x);
    CHECK_INT(r.x.lines, 3);
    CHECK_HAS("describe", r.x.text, "policy p, low: t (safetitan) sends: event, email\n");
    CHECK_HAS("describe", r.x.text,
              "policy p, critical: hook (webhook https://h/x) sends: rule, user, field "
              "cef.ext.src, priority\n");
    CHECK_HAS("describe", r.x.text,
              "policy p, critical: mail (email) sends: nothing from the alert\n");
    CHECK(policy_needs_smtp(r.set));
    CHECK_INT(policy_actions(r.set, STR_LIT("p"), POLICY_CRITICAL).n, 2);
    CHECK_INT(policy_actions(r.set, STR_LIT("p"), POLICY_PRIORITIES).n, 0);
    CHECK_INT(policy_priority_parse(STR_LIT("critical")), POLICY_CRITICAL);
    CHECK_INT(policy_priority_parse(STR_LIT("crit")), -1);
    CHECK(strcmp(policy_priority_name(POLICY_MEDIUM), "medium") == 0);
    CHECK(strcmp(policy_action_type_name(POLICY_ACTION_EMAIL), "email") == 0);
    run_close(&r);
}

int main(void)
{
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    test_load_errors();
    test_load_good();
    test_tiers();
    test_first_policy();
    test_field_cut();
    test_counts();
    test_no_policies();
    test_block_read();
    test_describe();
    CHECK_INT(rmdir(tmpdir), 0);
    return unit_report("test_policy");
}
