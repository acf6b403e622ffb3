/* The graph action of response policies (policy.h): what loads, what is
 * refused (each problem named by file and key), policy_needs_graph and
 * check's listing line. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "decide/policy.h"
#include "errors.h"
#include "unit.h"

static char tmpdir[] = "/tmp/rtr-test-policy-graph.XXXXXX";

/* A policy file whose critical list is the one action given. */
#define POLICY(action)                                                                             \
    "{\"policies\": [{\"name\": \"p\", \"tiers\": [{\"priority\": \"critical\"}],"                 \
    " \"actions\": {\"critical\": [" action "]}}]}"

struct load {
    struct mapping_set *set;
    char path[PATH_MAX];
    char err[4096];
    int rc;
};

/* Loads text as a policy file into an empty mapping set, the log captured. */
static void load(const char *text, struct load *l)
{
    char *globs[1] = {l->path};

    snprintf(l->path, sizeof(l->path), "%s/p.json", tmpdir);
    unit_write_file(l->path, text);
    l->err[0] = '\0';
    unit_capture_begin();
    l->rc = mapping_set_load(NULL, 0, 0, &l->set);
    if (l->rc == 0)
        l->rc = policy_load(l->set, globs, 1, 0);
    unit_capture_end(l->err, sizeof(l->err));
    unlink(l->path);
}

static void done(struct load *l)
{
    mapping_set_unref(l->set);
    l->set = NULL;
}

static void describe_line(void *arg, const char *text)
{
    snprintf(arg, 512, "%s", text);
}

static void test_loads(void)
{
    struct load l = {0};
    struct policy_actions acts;
    char line[512] = "";

    load(POLICY("{\"name\": \"contain\", \"type\": \"graph\", \"operation\": \"revoke_sessions\"}"),
         &l);
    CHECK_INT(l.rc, 0);
    acts = policy_actions(l.set, str_make("p", 1), POLICY_CRITICAL);
    CHECK_INT(acts.n, 1);
    if (acts.n == 1) {
        CHECK_INT(acts.v[0].type, POLICY_ACTION_GRAPH);
        CHECK_INT(acts.v[0].operation, POLICY_GRAPH_REVOKE_SESSIONS);
        CHECK_INT(acts.v[0].cooldown_s, 0);
    }
    CHECK(policy_needs_graph(l.set));
    CHECK(!policy_needs_smtp(l.set));
    policy_describe(l.set, describe_line, line);
    CHECK(strcmp(line, "policy p, critical: contain (graph revoke_sessions) sends: email (the "
                       "user's identifier, to Microsoft Graph)") == 0);
    done(&l);

    load(POLICY("{\"name\": \"off\", \"type\": \"graph\", \"operation\": \"disable_account\","
                " \"cooldown_s\": 900, \"description\": \"lock the account\"}"),
         &l);
    CHECK_INT(l.rc, 0);
    acts = policy_actions(l.set, str_make("p", 1), POLICY_CRITICAL);
    CHECK_INT(acts.n, 1);
    if (acts.n == 1) {
        CHECK_INT(acts.v[0].operation, POLICY_GRAPH_DISABLE_ACCOUNT);
        CHECK_INT(acts.v[0].cooldown_s, 900);
    }
    done(&l);

    /* An email action alone needs no Graph. */
    load(POLICY("{\"name\": \"m\", \"type\": \"email\", \"to\": [\"soc@example.com\"],"
                " \"subject\": \"s\", \"text\": \"t\"}"),
         &l);
    CHECK_INT(l.rc, 0);
    CHECK(!policy_needs_graph(l.set));
    done(&l);

    CHECK(strcmp(policy_action_type_name(POLICY_ACTION_GRAPH), "graph") == 0);
    CHECK(strcmp(policy_graph_operation_name(POLICY_GRAPH_DISABLE_ACCOUNT), "disable_account") ==
          0);
}

static const struct {
    const char *name, *action, *want;
} errors[] = {
    {"missing", "{\"name\": \"c\", \"type\": \"graph\"}",
     ": policies[0].actions.critical[0].operation: required key is missing\n"},
    {"unknown", "{\"name\": \"c\", \"type\": \"graph\", \"operation\": \"delete_user\"}",
     ": policies[0].actions.critical[0].operation: expected one of \"revoke_sessions\", "
     "\"disable_account\", got \"delete_user\"\n"},
    {"not a string", "{\"name\": \"c\", \"type\": \"graph\", \"operation\": true}",
     ": policies[0].actions.critical[0].operation: expected one of \"revoke_sessions\", "
     "\"disable_account\", got true\n"},
    {"webhook key",
     "{\"name\": \"c\", \"type\": \"graph\", \"operation\": \"revoke_sessions\","
     " \"url\": \"https://x.example\"}",
     ": policies[0].actions.critical[0].url: unknown key (known here: name, type, description, "
     "operation, cooldown_s)\n"},
    {"cooldown",
     "{\"name\": \"c\", \"type\": \"graph\", \"operation\": \"revoke_sessions\","
     " \"cooldown_s\": -1}",
     ": policies[0].actions.critical[0].cooldown_s: must be between 0 and 604800, got -1\n"},
};

static void test_errors(void)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        struct load l = {0};
        char text[1024], want[PATH_MAX + 512];
        const char *nl;

        snprintf(text, sizeof(text), POLICY("%s"), errors[i].action);
        load(text, &l);
        snprintf(want, sizeof(want), "%s%s", l.path, errors[i].want);
        if (l.rc != ERR_CONFIG)
            UNIT_FAIL("%s: rc %d, want ERR_CONFIG", errors[i].name, l.rc);
        if (strstr(l.err, want) == NULL)
            UNIT_FAIL("%s: missing \"%s\" in:\n%s", errors[i].name, want, l.err);
        else
            unit_passed++;
        /* One problem, one error line (the empty mapping set warns too). */
        nl = strstr(l.err, " error: ");
        if (nl == NULL || strstr(nl + 1, " error: ") != NULL)
            UNIT_FAIL("%s: want one error line:\n%s", errors[i].name, l.err);
        done(&l);
    }
}

int main(void)
{
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    test_loads();
    test_errors();
    rmdir(tmpdir);
    return unit_report("policy_graph");
}
