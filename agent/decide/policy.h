/* Response policies: what the agent does about a decided alert beyond
 * today's one SafeTitan event. A policy matches decided alerts, sets a
 * priority through ordered tiers (the user's risk score, other alerts for
 * the same user or host in a recent window) and names, per priority, the
 * actions that run: each its own durable job in the spool (deliver/).
 * Without a policy file, or when no policy matches, an alert triggers one
 * SafeTitan event as before.
 *
 * A policy file (comments allowed, as in the config; the config's
 * "policies" globs name the files, loaded with the mappings into one set,
 * so check reports their errors as "FILE: policies[0].tiers[1].when[0].ge:
 * expected a number" and SIGHUP reloads both):
 *
 *   {"policies": [
 *     {"name": "insider-threat",                 // required, unique across files
 *      "description": "...",
 *      "when": [CONDITION, ...],                 // optional: which decided alerts
 *      "tiers": [                                // required: the first that holds
 *        {"priority": "critical",                //   sets the priority
 *         "when": [CONDITION | COUNT, ...]},     //   no "when": always holds
 *        ...],
 *      "actions": {"critical": [ACTION, ...],    // one list per priority a tier
 *                  "low": [...]}}                //   sets (may be empty)
 *   ]}
 *
 * A CONDITION is a mapping's (mapping.h: equals, in, regex, exists, absent,
 * and the numeric gt, ge, lt, le) on an event-model field or on the
 * decision itself: "decision.mapping", "decision.rule", "decision.event",
 * "decision.user". A COUNT holds when the agent has seen at least N
 * decided alerts, this one included, for the same key within a window:
 *
 *   {"alerts_for": "user" | "host" | "user_rule", "within_minutes": 60, "at_least": 3}
 *
 * counted by the agent itself (correlate.h; user and host compared without
 * ASCII case). Priorities: low, medium, high, critical.
 *
 * An ACTION (name unique within its policy):
 *   {"name": "training", "type": "safetitan", "event": "template"}
 *       today's dispatch (direct or orchestrator); event defaults to the
 *       decision's event. Never held back by a cool-down: SafeTitan counts
 *       repeats itself.
 *   {"name": "ticket", "type": "webhook", "url": "https://...",
 *    "body": {JSON with templates in its strings}, "headers": {"X": "template"},
 *    "secret_file": "/path", "secret_header": "Authorization",
 *    "ca_file": "/path", "cooldown_s": 900}
 *       an HTTPS POST; the secret file's content is the secret header's
 *       whole value (never a template, never logged).
 *   {"name": "analysts", "type": "email", "to": ["soc@example.com"],
 *    "subject": "template", "text": "template", "cooldown_s": 900}
 *       SMTP submission (the config's smtp section).
 *   {"name": "ask", "type": "approval", "to": ["soc@example.com"],
 *    "subject": "template", "text": "template with {{approve_url}} {{deny_url}}",
 *    "then": ["training"], "expires_s": 14400, "default": "deny"}
 *       the "user choice": the actions then names (of the same list) wait
 *       until an approver decides through the link of their email (the
 *       config's approvals.url), or until expires_s has passed and the
 *       default applies.
 *   {"name": "contain", "type": "graph",
 *    "operation": "revoke_sessions" | "disable_account", "cooldown_s": 900}
 *       Microsoft Graph containment on the identity layer's Graph client
 *       (identity.graph required; off unless a policy names it):
 *       revoke_sessions is POST /users/{id}/revokeSignInSessions (the app
 *       permission User.RevokeSessions.All), disable_account is PATCH
 *       /users/{id} {"accountEnabled": false} (User.EnableDisableAccount.All
 *       and User.Read.All); application permissions, admin consent. The
 *       user is addressed by the resolved email: Graph takes an id or a
 *       userPrincipalName there, so this fits tenants whose mail is the
 *       UPN, or identity.graph.attribute "userPrincipalName"; elsewhere
 *       Graph answers 404 and the action is a dead letter. Nothing else of
 *       the alert is sent.
 * Templates (template.h) choose what leaves the host: only the decision's
 * texts and the fields they name; `check` lists them per action. */
#ifndef RTR_POLICY_H
#define RTR_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "core/jsonw.h"
#include "mapping.h"
#include "str.h"

struct correlate;
struct decision_hasher;
struct template;

enum policy_priority { POLICY_LOW, POLICY_MEDIUM, POLICY_HIGH, POLICY_CRITICAL, POLICY_PRIORITIES };

/* What a COUNT counts by. */
enum policy_scope { POLICY_BY_USER, POLICY_BY_HOST, POLICY_BY_USER_RULE, POLICY_SCOPES };

enum policy_action_type {
    POLICY_ACTION_SAFETITAN,
    POLICY_ACTION_WEBHOOK,
    POLICY_ACTION_EMAIL,
    POLICY_ACTION_APPROVAL,
    POLICY_ACTION_GRAPH,
    POLICY_ACTION_TYPES
};

/* What a graph action does. */
enum policy_graph_operation {
    POLICY_GRAPH_REVOKE_SESSIONS,
    POLICY_GRAPH_DISABLE_ACCOUNT,
    POLICY_GRAPH_OPERATIONS
};

/* Longest policy or action name; most fields the actions of one priority
 * name; longest captured field value (cut on a UTF-8 boundary: a block
 * stays small in the decision queue); longest explanation a decision
 * carries. */
#define POLICY_MAX_NAME        64
#define POLICY_MAX_FIELDS      8
#define POLICY_MAX_FIELD_VALUE 256
#define POLICY_WHY_MAX         512
/* Most headers of a webhook; most actions of one priority. */
#define POLICY_MAX_HEADERS 16
#define POLICY_MAX_ACTIONS 8
/* The largest block policy_decide writes for one decision: each text at
 * its cap, 6 bytes a byte once escaped (\u00XX), and the keys. */
#define POLICY_BLOCK_MAX                                                                           \
    (1024 + 6 * (POLICY_MAX_NAME + POLICY_WHY_MAX) +                                               \
     POLICY_MAX_FIELDS * 6 * (MAPPING_MAX_TEXT / 32 + POLICY_MAX_FIELD_VALUE))

struct policy_header {
    const char *name; /* "X-Ticket-Source" */
    struct template *value;
};

struct policy_action {
    const char *name;
    const char *policy; /* its policy's name */
    const char *file;   /* and file, for logs */
    enum policy_action_type type;
    int cooldown_s; /* 0: none; never for safetitan */
    /* safetitan */
    struct template *event; /* NULL: the decision's event */
    /* webhook */
    const char *url;
    struct template *body;
    const struct policy_header *headers;
    size_t n_headers;
    const char *secret_header; /* NULL: none */
    const char *secret;        /* the secret file's content */
    const char *ca_file;       /* added to the system CAs, or NULL */
    /* email, approval (its approvers) */
    const char *const *to; /* NULL-terminated */
    struct template *subject, *text;
    /* approval: the actions of its list it holds back until an approver
     * decides (then[0..n_then): indexes in the list), how long it waits,
     * and what applies when nobody decided in time. gated: an action some
     * approval of its list holds back (it has no job of its own until
     * then). */
    const size_t *then;
    size_t n_then;
    int64_t expires_s;
    int default_approve;
    int gated;
    /* graph */
    enum policy_graph_operation operation;
};

/* The actions a priority of a policy runs: a slice of the loaded set. */
struct policy_actions {
    const struct policy_action *v;
    size_t n;
};

/* Adds the policies of every file the globs name to set, which
 * mapping_set_load just made and nobody else holds yet; globs as in
 * mapping_set_load. Errors are reported one line each naming the file and
 * the key ("FILE: policies[0].actions.critical[1].url: must be https://").
 * Returns 0, or ERR_CONFIG. */
int policy_load(struct mapping_set *set, char *const *globs, size_t n, unsigned regex_flags);

/* The mappings and then the policies cfg names, as one set:
 * mapping_set_load, then policy_load. Returns 0 and *out, or ERR_CONFIG
 * (every problem reported). */
int policy_set_load(const struct config *cfg, unsigned regex_flags, struct mapping_set **out);

size_t policy_count(const struct mapping_set *set);

/* The longest COUNT window of the set's policies in seconds, 0 when none
 * counts (then no counter is needed). */
int64_t policy_longest_window(const struct mapping_set *set);

/* The actions priority runs in the policy named name, or n 0 when the set
 * has no such policy or priority. */
struct policy_actions policy_actions(const struct mapping_set *set, struct str policy,
                                     enum policy_priority priority);

/* Whether the set has a policy of that name. */
int policy_has(const struct mapping_set *set, struct str name);

/* "low" ... "critical"; policy_priority_parse: the enum or -1. */
const char *policy_priority_name(enum policy_priority p);
int policy_priority_parse(struct str name);
const char *policy_action_type_name(enum policy_action_type t);
/* "revoke_sessions", "disable_account". */
const char *policy_graph_operation_name(enum policy_graph_operation op);

/* Whether an action of the set sends email (an email or an approval: then
 * the config needs smtp), and whether one is an approval (then it needs
 * approvals.url and an HTTP listener for the links). */
int policy_needs_smtp(const struct mapping_set *set);
int policy_needs_approvals(const struct mapping_set *set);

/* Whether an action of the set is a graph containment (then the config
 * needs identity.graph). */
int policy_needs_graph(const struct mapping_set *set);

/* What the set's actions need of cfg: an smtp section (email, approval),
 * approvals.url (approval), a Graph resolver in identity.order (graph).
 * Each one missing is told to problem(arg, config key, why). `check`,
 * the start and a reload refuse a set with any. Returns how many. */
int policy_config_check(const struct mapping_set *set, const struct config *cfg,
                        void (*problem)(void *arg, const char *key, const char *why), void *arg);

/* For `check`: one line per action of every policy naming what it sends
 * ("insider-threat/ticket (webhook https://...): rule, user, priority,
 * field cef.ext.src"), through line(arg, text). */
void policy_describe(const struct mapping_set *set, void (*line)(void *arg, const char *text),
                     void *arg);

/* What the worker knows of a decision that policies need besides the
 * message: the origin's host (the syslog HOSTNAME, else the sender). */
struct policy_input {
    const struct mapping_decision *d;
    struct str host;
    int64_t now_s; /* when it was received (CLOCK_REALTIME seconds) */
};

/* --explain: the policy line of a decision ("insider-threat: critical by
 * tiers[1]: when[0] cef.ext.cn1 55 >= 40; when[1] 3 alerts for the user
 * within 60 min (at least 3); actions: training (safetitan), ticket
 * (webhook), analysts (email)"), or "no policy: one SafeTitan event". */
struct policy_explain {
    void (*line)(void *arg, const char *text);
    void *arg;
};

/* Runs the set's policies over one decision: counts the alert in c (when
 * the set counts anything; c may be NULL then only when no policy counts),
 * picks the first policy whose conditions and one of whose tiers hold, and
 * writes the decision's policy block into w (reset first): a JSON object
 * {"policy", "priority", "tier", "why", "fields": {name: value}, "corr":
 * {"user": hex, ...}} with "policy" ... "fields" only when a policy
 * matched, "corr" when the set counts. Returns 1 with the block in w, 0
 * when the set has neither policies nor counts (no block: today's
 * behaviour). mm: the worker's matcher (regex env). Allocates nothing once
 * w has grown. */
int policy_decide(const struct mapping_set *set, struct mapping_matcher *mm,
                  const struct message *m, const struct policy_input *in, struct correlate *c,
                  struct decision_hasher *h, struct jsonw *w, const struct policy_explain *explain);

/* A policy block read back (the delivery thread, or a spooled payload):
 * slices into the block's parsed document. */
struct policy_block {
    struct str policy, why;
    enum policy_priority priority;
    int tier;
    void *json; /* json-c, owned: free with policy_block_free */
};

/* Reads block (policy_decide's output). Returns 0 (policy.p NULL when no
 * policy matched), or ERR_INVALID. */
int policy_block_read(struct str block, struct policy_block *out);
void policy_block_free(struct policy_block *b);

/* A captured field of the block by name (for templates), or STR_ABSENT. */
struct str policy_block_field(const struct policy_block *b, struct str name);

/* The block's correlation keys, for rebuilding the counter at start:
 * returns how many of keys[POLICY_SCOPES] it set (scopes[i] says which). */
size_t policy_block_corr(const struct policy_block *b, uint64_t keys[POLICY_SCOPES],
                         enum policy_scope scopes[POLICY_SCOPES]);

#endif
