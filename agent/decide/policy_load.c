/* Loading policy files (policy.h) into a mapping set, with the mapping
 * loader's helpers (mapping_internal.h): every key of every file is
 * validated and every problem reported, named by file and key. */
#include "mapping_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/mail.h"
#include "core/secret.h"
#include "errors.h"
#include "template.h"

static const char *const priority_names[POLICY_PRIORITIES + 1] = {"low", "medium", "high",
                                                                  "critical", NULL};
static const char *const scope_names[POLICY_SCOPES + 1] = {"user", "host", "user_rule", NULL};
static const char *const action_type_names[POLICY_ACTION_TYPES + 1] = {
    "safetitan", "webhook", "email", "approval", "graph", NULL};
static const char *const approval_defaults[] = {"deny", "approve", NULL};
static const char *const graph_operation_names[POLICY_GRAPH_OPERATIONS + 1] = {
    "revoke_sessions", "disable_account", NULL};

/* An approval waits at most a week (its token stays valid that long). */
#define POLICY_MAX_EXPIRES_S (7 * 24 * 3600)

/* A COUNT's window: at most a week (the counter's ring covers the longest
 * window in 60 buckets: a week is 2.8-hour buckets, coarse enough). */
#define POLICY_MAX_WINDOW_MIN (7 * 24 * 60)
#define POLICY_MAX_AT_LEAST   10000
#define POLICY_MAX_COOLDOWN_S (7 * 24 * 3600)

const char *policy_priority_name(enum policy_priority p)
{
    return p < POLICY_PRIORITIES ? priority_names[p] : "?";
}

int policy_priority_parse(struct str name)
{
    for (int i = 0; i < POLICY_PRIORITIES; i++) {
        if (name.len == strlen(priority_names[i]) &&
            memcmp(name.p, priority_names[i], name.len) == 0)
            return i;
    }
    return -1;
}

const char *policy_action_type_name(enum policy_action_type t)
{
    return t < POLICY_ACTION_TYPES ? action_type_names[t] : "?";
}

const char *policy_graph_operation_name(enum policy_graph_operation op)
{
    return op < POLICY_GRAPH_OPERATIONS ? graph_operation_names[op] : "?";
}

const char *policy_scope_name(enum policy_scope s)
{
    return s < POLICY_SCOPES ? scope_names[s] : "?";
}

size_t policy_count(const struct mapping_set *set)
{
    return set->n_policies;
}

int64_t policy_longest_window(const struct mapping_set *set)
{
    return set->longest_window_s;
}

int policy_has(const struct mapping_set *set, struct str name)
{
    for (size_t i = 0; i < set->n_policies; i++) {
        if (str_eq(str_make(set->policies[i].name, strlen(set->policies[i].name)), name))
            return 1;
    }
    return 0;
}

struct policy_actions policy_actions(const struct mapping_set *set, struct str name,
                                     enum policy_priority priority)
{
    for (size_t i = 0; i < set->n_policies && priority < POLICY_PRIORITIES; i++) {
        const struct policy *p = &set->policies[i];

        if (strlen(p->name) == name.len && memcmp(p->name, name.p, name.len) == 0)
            return p->actions[priority];
    }
    return (struct policy_actions){NULL, 0};
}

/* ---- loading ---- */

static void template_release(void *p, size_t len)
{
    (void)len;
    template_free(p);
}

static void secret_release(void *p, size_t len)
{
    secret_free(p, len);
}

/* A file named in a policy file: a relative path is relative to that
 * file's folder (as the config's paths are to the config's). */
static const char *get_path(struct mload *ld, const char *path, struct json_object *v)
{
    struct str s = mload_text(ld, path, v, 0);
    const char *slash = strrchr(ld->rep.file, '/');
    size_t dir = slash != NULL ? (size_t)(slash - ld->rep.file) : 0;
    char *full;

    if (s.p == NULL || s.p[0] == '/' || slash == NULL)
        return s.p;
    full = mload_alloc(ld->set, dir + 1 + s.len + 1);
    memcpy(full, ld->rep.file, dir);
    full[dir] = '/';
    memcpy(full + dir + 1, s.p, s.len + 1);
    return full;
}

/* text compiled in mode, owned by the set; NULL after reporting. */
static struct template *compile_template(struct mload *ld, const char *path, const char *text,
                                         size_t len, enum template_mode mode)
{
    struct template *t = NULL;
    char err[256];
    int rc = template_compile(text, len, mode, &t, err, sizeof(err));

    if (rc == ERR_NOMEM) {
        log_error("policies: out of memory");
        abort();
    }
    if (rc != 0) {
        json_file_error(&ld->rep, path, "%s", err);
        return NULL;
    }
    mload_own(ld->set, template_release, t, 0);
    return t;
}

/* A string template in mode; NULL after reporting. */
static struct template *get_template(struct mload *ld, const char *path, struct json_object *v,
                                     enum template_mode mode)
{
    struct str s = mload_text(ld, path, v, 0);

    return s.p != NULL ? compile_template(ld, path, s.p, s.len, mode) : NULL;
}

/* A JSON body: the value as written (an object or an array), its strings
 * templates. */
static struct template *get_json_template(struct mload *ld, const char *path, struct json_object *v)
{
    char got[JSON_FILE_DESCRIBE_MAX];
    const char *text;

    if (!json_object_is_type(v, json_type_object) && !json_object_is_type(v, json_type_array)) {
        json_file_error(&ld->rep, path, "expected a JSON object or array, got %s",
                        json_file_describe(v, got, sizeof(got)));
        return NULL;
    }
    text =
        json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    return compile_template(ld, path, text, strlen(text), TEMPLATE_JSON);
}

/* An integer in [min, max]; def when absent. */
static int64_t get_int(struct mload *ld, const char *path, struct json_object *obj, const char *key,
                       int64_t min, int64_t max, int64_t def)
{
    char sub[JSON_FILE_PATH_MAX], got[JSON_FILE_DESCRIBE_MAX];
    struct json_object *v;
    int64_t n;

    if (!mload_key(obj, key, &v))
        return def;
    json_file_key_path(sub, path, key);
    if (!json_object_is_type(v, json_type_int)) {
        json_file_error(&ld->rep, sub, "expected an integer, got %s",
                        json_file_describe(v, got, sizeof(got)));
        return def;
    }
    n = json_object_get_int64(v);
    if (n < min || n > max) {
        json_file_error(&ld->rep, sub, "must be between %lld and %lld, got %lld", (long long)min,
                        (long long)max, (long long)n);
        return def;
    }
    return n;
}

/* One of names (NULL-ended); -1 after reporting. */
static int get_enum(struct mload *ld, const char *path, struct json_object *v,
                    const char *const *names)
{
    char got[JSON_FILE_DESCRIBE_MAX], list[128];
    int i = json_object_is_type(v, json_type_string)
                ? mload_name_in(names, json_object_get_string(v))
                : -1;

    if (i < 0)
        json_file_error(&ld->rep, path, "expected one of %s, got %s",
                        json_file_join_names(names, 1, list, sizeof(list)),
                        json_file_describe(v, got, sizeof(got)));
    return i;
}

static void required(struct mload *ld, const char *path, struct json_object *obj,
                     const char *const *keys)
{
    char sub[JSON_FILE_PATH_MAX];

    for (size_t i = 0; keys[i] != NULL; i++) {
        if (!json_file_has_key(obj, keys[i])) {
            json_file_key_path(sub, path, keys[i]);
            json_file_error(&ld->rep, sub, "required key is missing");
        }
    }
}

/* A name: 1..POLICY_MAX_NAME bytes of letters, digits, '-', '_', '.'
 * (it becomes part of idempotency keys, audit lines and URLs). */
static const char *get_name(struct mload *ld, const char *path, struct json_object *v)
{
    struct str s = mload_text(ld, path, v, 0);

    if (s.p == NULL)
        return NULL;
    if (s.len > POLICY_MAX_NAME) {
        json_file_error(&ld->rep, path, "longer than %d bytes", POLICY_MAX_NAME);
        return NULL;
    }
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.')) {
            json_file_error(&ld->rep, path,
                            "may hold only letters, digits, '-', '_' and '.', got \"%s\"", s.p);
            return NULL;
        }
    }
    return s.p;
}

/* {"alerts_for", "within_minutes", "at_least"}. */
static void parse_count(struct mload *ld, const char *path, struct json_object *obj, struct cond *c)
{
    static const char *const keys[] = {"alerts_for", "within_minutes", "at_least", NULL};
    char sub[JSON_FILE_PATH_MAX];
    struct json_object *v;
    int scope;

    mload_check_keys(ld, path, obj, keys);
    required(ld, path, obj, keys);
    c->on = COND_ON_COUNT;
    c->field_name = "alerts_for";
    if (mload_key(obj, "alerts_for", &v)) {
        json_file_key_path(sub, path, "alerts_for");
        scope = get_enum(ld, sub, v, scope_names);
        c->count.scope = scope >= 0 ? (enum policy_scope)scope : POLICY_BY_USER;
    }
    c->count.window_s = 60 * get_int(ld, path, obj, "within_minutes", 1, POLICY_MAX_WINDOW_MIN, 1);
    c->count.at_least = (uint32_t)get_int(ld, path, obj, "at_least", 1, POLICY_MAX_AT_LEAST, 1);
    if (c->count.window_s > ld->set->longest_window_s)
        ld->set->longest_window_s = c->count.window_s;
}

/* A "when" of a policy or a tier: conditions, in file order, COUNTs among
 * them when counts is set. */
static void parse_when(struct mload *ld, const char *path, struct json_object *v, int counts,
                       const struct cond **out, size_t *n_out)
{
    char sub[JSON_FILE_PATH_MAX];
    struct cond *conds;
    size_t n;

    if (mload_array(ld, path, v) == NULL)
        return;
    n = json_object_array_length(v);
    conds = mload_alloc(ld->set, n * sizeof(*conds));
    memset(conds, 0, n * sizeof(*conds));
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(v, i);

        json_file_index_path(sub, path, i);
        conds[i].label = mload_label(ld, "when", i, 1);
        if (json_object_is_type(e, json_type_object) && json_file_has_key(e, "alerts_for")) {
            if (counts)
                parse_count(ld, sub, e, &conds[i]);
            else
                json_file_error(&ld->rep, sub,
                                "alerts_for: counts go in a tier's \"when\", not the policy's");
        } else {
            mload_condition(ld, sub, e, &conds[i]);
        }
    }
    *out = conds;
    *n_out = n;
}

static void parse_tier(struct mload *ld, const char *path, struct json_object *obj,
                       struct policy_tier *t)
{
    static const char *const keys[] = {"priority", "when", "description", NULL};
    static const char *const req[] = {"priority", NULL};
    char sub[JSON_FILE_PATH_MAX];
    struct json_object *v;
    int prio;

    if (!mload_is_object(ld, path, obj))
        return;
    mload_check_keys(ld, path, obj, keys);
    required(ld, path, obj, req);
    if (mload_key(obj, "priority", &v)) {
        json_file_key_path(sub, path, "priority");
        prio = get_enum(ld, sub, v, priority_names);
        t->priority = prio >= 0 ? (enum policy_priority)prio : POLICY_LOW;
    }
    if (mload_key(obj, "when", &v)) {
        json_file_key_path(sub, path, "when");
        parse_when(ld, sub, v, 1, &t->conds, &t->n_conds);
    }
}

/* Adds the fields template t names to the priority's capture list. */
static void capture_fields(struct mload *ld, const char *path, struct policy *p,
                           enum policy_priority prio, const struct template *t)
{
    for (size_t i = 0; t != NULL && i < template_n_fields(t); i++) {
        struct str name = template_field(t, i);
        struct policy_capture *cap = &p->capture[prio];
        size_t j;

        for (j = 0; j < cap->n; j++) {
            if (str_eq(cap->names[j], name))
                break;
        }
        if (j < cap->n)
            continue;
        if (cap->n == POLICY_MAX_FIELDS) {
            json_file_error(&ld->rep, path, "the actions of priority %s name more than %d fields",
                            priority_names[prio], POLICY_MAX_FIELDS);
            return;
        }
        if (event_field_compile(name.p, name.len, &cap->fields[cap->n]) != 0) {
            json_file_error(&ld->rep, path,
                            "unknown field \"%.*s\" (see mappings/README.md for the field names)",
                            (int)name.len, name.p);
            return;
        }
        cap->names[cap->n++] = str_make(mload_strndup(ld->set, name.p, name.len), name.len);
    }
}

/* A header name an action may set: RFC 9110 token characters, not one
 * the agent sets itself. Reports otherwise (path names it). */
static void check_header_name(struct mload *ld, const char *path, const char *name)
{
    static const char *const reserved[] = {"Content-Type",    "Content-Length", "Host",
                                           "Idempotency-Key", "User-Agent",     NULL};

    for (const char *c = name; *c != '\0'; c++) {
        if (strchr("!#$%&'*+-.^_`|~", *c) == NULL &&
            !((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9'))) {
            json_file_error(&ld->rep, path, "not a header name");
            return;
        }
    }
    for (size_t i = 0; reserved[i] != NULL; i++) {
        if (name[0] == '\0' || strcasecmp(name, reserved[i]) == 0) {
            json_file_error(&ld->rep, path, "the agent sets this header itself");
            return;
        }
    }
}

static void parse_headers(struct mload *ld, const char *path, struct json_object *v,
                          struct policy_action *a)
{
    char sub[JSON_FILE_PATH_MAX];
    struct policy_header *h;
    size_t n = 0;

    if (!mload_is_object(ld, path, v))
        return;
    if (json_object_object_length(v) > POLICY_MAX_HEADERS) {
        json_file_error(&ld->rep, path, "more than %d headers", POLICY_MAX_HEADERS);
        return;
    }
    h = mload_alloc(ld->set, (size_t)json_object_object_length(v) * sizeof(*h) + 1);
    json_object_object_foreach(v, name, value)
    {
        json_file_key_path(sub, path, name);
        check_header_name(ld, sub, name);
        h[n].name = mload_strndup(ld->set, name, strlen(name));
        h[n].value = get_template(ld, sub, value, TEMPLATE_HEADER);
        n++;
    }
    a->headers = h;
    a->n_headers = n;
}

static void parse_secret(struct mload *ld, const char *path, struct json_object *obj,
                         struct policy_action *a)
{
    char sub[JSON_FILE_PATH_MAX], why[256];
    struct json_object *v;
    const char *file;
    char *secret;
    size_t len;
    int rc;

    if (!mload_key(obj, "secret_file", &v)) {
        if (json_file_has_key(obj, "secret_header")) {
            json_file_key_path(sub, path, "secret_header");
            json_file_error(&ld->rep, sub, "needs secret_file");
        }
        return;
    }
    json_file_key_path(sub, path, "secret_file");
    file = get_path(ld, sub, v);
    if (file == NULL)
        return;
    rc = secret_read(file, 1, SECRET_MAX, 1, &secret, &len, why, sizeof(why));
    if (rc == ERR_NOMEM) {
        log_error("policies: out of memory");
        abort();
    }
    if (rc != 0) {
        json_file_error(&ld->rep, sub, "%s: %s", file, why);
        return;
    }
    mload_own(ld->set, secret_release, secret, len);
    a->secret = secret;
    a->secret_header = "Authorization";
    if (mload_key(obj, "secret_header", &v)) {
        json_file_key_path(sub, path, "secret_header");
        a->secret_header = mload_text(ld, sub, v, 0).p;
        if (a->secret_header != NULL)
            check_header_name(ld, sub, a->secret_header);
    }
}

static void parse_webhook(struct mload *ld, const char *path, struct json_object *obj,
                          struct policy_action *a)
{
    static const char *const req[] = {"url", "body", NULL};
    char sub[JSON_FILE_PATH_MAX];
    struct json_object *v;

    required(ld, path, obj, req);
    if (mload_key(obj, "url", &v)) {
        json_file_key_path(sub, path, "url");
        a->url = mload_text(ld, sub, v, 0).p;
        if (a->url != NULL && strncmp(a->url, "https://", 8) != 0) {
            json_file_error(&ld->rep, sub, "must be https://");
            a->url = NULL;
        }
    }
    if (mload_key(obj, "body", &v)) {
        json_file_key_path(sub, path, "body");
        a->body = get_json_template(ld, sub, v);
    }
    if (mload_key(obj, "headers", &v)) {
        json_file_key_path(sub, path, "headers");
        parse_headers(ld, sub, v, a);
    }
    if (mload_key(obj, "ca_file", &v)) {
        json_file_key_path(sub, path, "ca_file");
        a->ca_file = get_path(ld, sub, v);
        if (a->ca_file != NULL && access(a->ca_file, R_OK) != 0)
            json_file_error(&ld->rep, sub, "%s: cannot read: %s", a->ca_file, strerror(errno));
    }
    parse_secret(ld, path, obj, a);
}

static void parse_email(struct mload *ld, const char *path, struct json_object *obj,
                        struct policy_action *a)
{
    static const char *const req[] = {"to", "subject", "text", NULL};
    char sub[JSON_FILE_PATH_MAX], item[JSON_FILE_PATH_MAX];
    struct json_object *v;

    required(ld, path, obj, req);
    if (mload_key(obj, "to", &v)) {
        json_file_key_path(sub, path, "to");
        if (mload_array(ld, sub, v) != NULL) {
            size_t n = json_object_array_length(v);
            const char **to = mload_alloc(ld->set, (n + 1) * sizeof(*to));

            for (size_t i = 0; i < n; i++) {
                json_file_index_path(item, sub, i);
                to[i] = mload_text(ld, item, json_object_array_get_idx(v, i), 0).p;
                if (to[i] != NULL && !mail_address_valid(to[i]))
                    json_file_error(&ld->rep, item, "expected one plain address (user@domain)");
            }
            to[n] = NULL;
            a->to = to;
        }
    }
    if (mload_key(obj, "subject", &v)) {
        json_file_key_path(sub, path, "subject");
        a->subject = get_template(ld, sub, v, TEMPLATE_HEADER);
    }
    if (mload_key(obj, "text", &v)) {
        json_file_key_path(sub, path, "text");
        a->text = get_template(ld, sub, v, TEMPLATE_TEXT);
    }
}

/* An approval: its approvers' email, how long it waits, its default; its
 * "then" is read once the whole list is (parse_then). */
static void parse_approval(struct mload *ld, const char *path, struct json_object *obj,
                           struct policy_action *a)
{
    static const char *const req[] = {"then", NULL};
    char sub[JSON_FILE_PATH_MAX];
    struct json_object *v;
    int def;

    parse_email(ld, path, obj, a);
    required(ld, path, obj, req);
    a->expires_s = get_int(ld, path, obj, "expires_s", 1, POLICY_MAX_EXPIRES_S, 4 * 3600);
    if (mload_key(obj, "default", &v)) {
        json_file_key_path(sub, path, "default");
        def = get_enum(ld, sub, v, approval_defaults);
        a->default_approve = def == 1;
    }
}

/* An approval's "then": names of other actions of the same list, none an
 * approval, none held back by two approvals. */
static void parse_then(struct mload *ld, const char *path, struct json_object *obj,
                       struct policy_actions list, size_t self)
{
    struct policy_action *a = (struct policy_action *)&list.v[self];
    char sub[JSON_FILE_PATH_MAX], item[JSON_FILE_PATH_MAX];
    struct json_object *v;
    size_t *then, n;

    if (!mload_key(obj, "then", &v))
        return;
    json_file_key_path(sub, path, "then");
    if (mload_array(ld, sub, v) == NULL)
        return;
    n = json_object_array_length(v);
    then = mload_alloc(ld->set, n * sizeof(*then));
    for (size_t i = 0; i < n; i++) {
        struct str name;
        size_t j;

        json_file_index_path(item, sub, i);
        name = mload_text(ld, item, json_object_array_get_idx(v, i), 0);
        if (name.p == NULL)
            continue;
        for (j = 0; j < list.n; j++) {
            if (list.v[j].name != NULL && strcmp(list.v[j].name, name.p) == 0)
                break;
        }
        if (j == list.n)
            json_file_error(&ld->rep, item, "\"%s\" is no action of this priority", name.p);
        else if (list.v[j].type == POLICY_ACTION_APPROVAL)
            json_file_error(&ld->rep, item,
                            "\"%s\" is an approval: approvals do not wait for "
                            "each other",
                            name.p);
        else if (list.v[j].gated)
            json_file_error(&ld->rep, item, "\"%s\" already waits for an approval", name.p);
        else {
            ((struct policy_action *)&list.v[j])->gated = 1;
            then[a->n_then++] = j;
        }
    }
    a->then = then;
}

/* {"operation"}: nothing from the alert but the user goes out. */
static void parse_graph(struct mload *ld, const char *path, struct json_object *obj,
                        struct policy_action *a)
{
    static const char *const req[] = {"operation", NULL};
    char sub[JSON_FILE_PATH_MAX];
    struct json_object *v;
    int op;

    required(ld, path, obj, req);
    if (mload_key(obj, "operation", &v)) {
        json_file_key_path(sub, path, "operation");
        op = get_enum(ld, sub, v, graph_operation_names);
        a->operation = op >= 0 ? (enum policy_graph_operation)op : POLICY_GRAPH_REVOKE_SESSIONS;
    }
}

static void parse_action(struct mload *ld, const char *path, struct json_object *obj,
                         struct policy *p, enum policy_priority prio, struct policy_action *a)
{
    static const char *const keys[POLICY_ACTION_TYPES][13] = {
        {"name", "type", "description", "event", NULL},
        {"name", "type", "description", "url", "body", "headers", "secret_file", "secret_header",
         "ca_file", "cooldown_s", NULL},
        {"name", "type", "description", "to", "subject", "text", "cooldown_s", NULL},
        {"name", "type", "description", "to", "subject", "text", "then", "expires_s", "default",
         NULL},
        {"name", "type", "description", "operation", "cooldown_s", NULL},
    };
    static const char *const req[] = {"name", "type", NULL};
    char sub[JSON_FILE_PATH_MAX];
    struct json_object *v;
    int type = -1;

    a->policy = p->name;
    a->file = p->file;
    if (!mload_is_object(ld, path, obj))
        return;
    required(ld, path, obj, req);
    if (mload_key(obj, "name", &v)) {
        json_file_key_path(sub, path, "name");
        a->name = get_name(ld, sub, v);
    }
    if (mload_key(obj, "type", &v)) {
        json_file_key_path(sub, path, "type");
        type = get_enum(ld, sub, v, action_type_names);
    }
    if (type < 0)
        return;
    a->type = (enum policy_action_type)type;
    mload_check_keys(ld, path, obj, keys[type]);
    switch (a->type) {
    case POLICY_ACTION_SAFETITAN:
        if (mload_key(obj, "event", &v)) {
            json_file_key_path(sub, path, "event");
            a->event = get_template(ld, sub, v, TEMPLATE_HEADER);
        }
        capture_fields(ld, path, p, prio, a->event);
        break;
    case POLICY_ACTION_WEBHOOK:
        parse_webhook(ld, path, obj, a);
        capture_fields(ld, path, p, prio, a->body);
        for (size_t i = 0; i < a->n_headers; i++)
            capture_fields(ld, path, p, prio, a->headers[i].value);
        break;
    case POLICY_ACTION_EMAIL:
        parse_email(ld, path, obj, a);
        capture_fields(ld, path, p, prio, a->subject);
        capture_fields(ld, path, p, prio, a->text);
        break;
    case POLICY_ACTION_APPROVAL:
        parse_approval(ld, path, obj, a);
        capture_fields(ld, path, p, prio, a->subject);
        capture_fields(ld, path, p, prio, a->text);
        break;
    case POLICY_ACTION_GRAPH:
        parse_graph(ld, path, obj, a);
        break;
    case POLICY_ACTION_TYPES:
        break;
    }
    a->cooldown_s = (int)get_int(ld, path, obj, "cooldown_s", 0, POLICY_MAX_COOLDOWN_S, 0);
}

/* Action names are unique within their priority's list: with the policy
 * and the priority they name a job (its payload and idempotency key). */
static void check_action_names(struct mload *ld, const char *path, struct policy_actions list,
                               size_t i)
{
    const struct policy_action *a = &list.v[i];

    for (size_t j = 0; j < i && a->name != NULL; j++) {
        if (list.v[j].name != NULL && strcmp(list.v[j].name, a->name) == 0) {
            json_file_error(&ld->rep, path, "\"%s\" already names actions[%zu] of this priority",
                            a->name, j);
            return;
        }
    }
}

static void parse_actions(struct mload *ld, const char *path, struct json_object *obj,
                          struct policy *p)
{
    char sub[JSON_FILE_PATH_MAX], item[JSON_FILE_PATH_MAX], list[128];

    if (!mload_is_object(ld, path, obj))
        return;
    json_object_object_foreach(obj, name, value)
    {
        int prio = mload_name_in(priority_names, name);
        struct policy_action *acts;
        size_t n;

        json_file_key_path(sub, path, name);
        if (prio < 0) {
            json_file_error(&ld->rep, sub, "not a priority (known here: %s)",
                            json_file_join_names(priority_names, 0, list, sizeof(list)));
            continue;
        }
        if (!json_object_is_type(value, json_type_array)) {
            json_file_error(&ld->rep, sub, "expected an array of actions");
            continue;
        }
        n = json_object_array_length(value);
        if (n > POLICY_MAX_ACTIONS) {
            json_file_error(&ld->rep, sub, "more than %d actions", POLICY_MAX_ACTIONS);
            continue;
        }
        acts = mload_alloc(ld->set, (n + 1) * sizeof(*acts));
        memset(acts, 0, (n + 1) * sizeof(*acts));
        p->actions[prio] = (struct policy_actions){acts, n};
        p->has_actions[prio] = 1;
        for (size_t i = 0; i < n; i++) {
            json_file_index_path(item, sub, i);
            parse_action(ld, item, json_object_array_get_idx(value, i), p,
                         (enum policy_priority)prio, &acts[i]);
            check_action_names(ld, item, p->actions[prio], i);
        }
        for (size_t i = 0; i < n; i++) {
            json_file_index_path(item, sub, i);
            if (acts[i].type == POLICY_ACTION_APPROVAL)
                parse_then(ld, item, json_object_array_get_idx(value, i), p->actions[prio], i);
        }
    }
}

static void check_unique_policy(struct mload *ld, const char *path, const struct policy *p)
{
    for (const struct policy *o = ld->set->policies; o < p; o++) {
        if (o->name != NULL && strcmp(o->name, p->name) == 0) {
            json_file_error(&ld->rep, path, "\"%s\" is already the name of policies[%zu] in %s",
                            p->name, o->index, o->file);
            return;
        }
    }
}

static void parse_policy(struct mload *ld, const char *path, size_t index, struct json_object *obj,
                         struct policy *p)
{
    static const char *const keys[] = {"name", "description", "when", "tiers", "actions", NULL};
    static const char *const req[] = {"name", "tiers", "actions", NULL};
    char sub[JSON_FILE_PATH_MAX], item[JSON_FILE_PATH_MAX];
    struct json_object *v;

    p->file = ld->rep.file;
    p->index = index;
    p->rl_regex = (struct log_ratelimit)LOG_RATELIMIT_INIT(60, 1);
    if (!mload_is_object(ld, path, obj))
        return;
    mload_check_keys(ld, path, obj, keys);
    required(ld, path, obj, req);
    if (mload_key(obj, "name", &v)) {
        json_file_key_path(sub, path, "name");
        p->name = get_name(ld, sub, v);
        if (p->name != NULL)
            check_unique_policy(ld, sub, p);
    }
    if (mload_key(obj, "description", &v) && !json_object_is_type(v, json_type_string)) {
        json_file_key_path(sub, path, "description");
        json_file_error(&ld->rep, sub, "expected a string");
    }
    if (mload_key(obj, "when", &v)) {
        json_file_key_path(sub, path, "when");
        parse_when(ld, sub, v, 0, &p->conds, &p->n_conds);
    }
    if (mload_key(obj, "actions", &v)) {
        json_file_key_path(sub, path, "actions");
        parse_actions(ld, sub, v, p);
    }
    if (mload_key(obj, "tiers", &v)) {
        json_file_key_path(sub, path, "tiers");
        if (mload_array(ld, sub, v) != NULL) {
            size_t n = json_object_array_length(v);
            struct policy_tier *tiers = mload_alloc(ld->set, n * sizeof(*tiers));

            memset(tiers, 0, n * sizeof(*tiers));
            for (size_t i = 0; i < n; i++) {
                json_file_index_path(item, sub, i);
                tiers[i].label = mload_label(ld, "tiers", i, 1);
                parse_tier(ld, item, json_object_array_get_idx(v, i), &tiers[i]);
                if (!p->has_actions[tiers[i].priority] && ld->rep.errors == 0)
                    json_file_error(&ld->rep, item,
                                    "sets priority %s, which has no list under \"actions\" (an "
                                    "empty list runs nothing)",
                                    priority_names[tiers[i].priority]);
            }
            p->tiers = tiers;
            p->n_tiers = n;
        }
    }
}

static void parse_file(struct mload *ld, struct json_object *root)
{
    static const char *const keys[] = {"policies", "description", NULL};
    struct mapping_set *set = ld->set;
    char sub[JSON_FILE_PATH_MAX], got[JSON_FILE_DESCRIBE_MAX];
    struct json_object *list;
    struct policy *grown;
    size_t n;

    if (!json_object_is_type(root, json_type_object)) {
        json_file_error(&ld->rep, "", "expected a JSON object at the top level, got %s",
                        json_file_describe(root, got, sizeof(got)));
        return;
    }
    if (json_file_has_key(root, "mappings")) {
        json_file_error(&ld->rep, "mappings",
                        "this looks like a mapping file, not a policy file (narrow the policies "
                        "glob)");
        return;
    }
    mload_check_keys(ld, "", root, keys);
    if (!mload_key(root, "policies", &list)) {
        json_file_error(&ld->rep, "policies", "required key is missing");
        return;
    }
    if (!json_object_is_type(list, json_type_array)) {
        json_file_error(&ld->rep, "policies", "expected an array, got %s",
                        json_file_describe(list, got, sizeof(got)));
        return;
    }
    n = json_object_array_length(list);
    /* Grown once per file: parse_policy keeps pointers into the array
     * (check_unique_policy reads the earlier ones). */
    grown = realloc(set->policies, (set->n_policies + n + 1) * sizeof(*grown));
    if (grown == NULL) {
        log_error("policies: out of memory");
        abort();
    }
    set->policies = grown;
    for (size_t i = 0; i < n; i++) {
        struct policy *p = &set->policies[set->n_policies++];

        memset(p, 0, sizeof(*p));
        json_file_index_path(sub, "policies", i);
        parse_policy(ld, sub, i, json_object_array_get_idx(list, i), p);
    }
}

static int load_file(struct mapping_set *set, const char *path, unsigned regex_flags)
{
    struct mload ld = {.rep = {.file = mload_strndup(set, path, strlen(path))},
                       .set = set,
                       .regex_flags = regex_flags,
                       .decision_fields = 1};
    struct json_object *root;

    if (json_file_read(path, "policy", &root) != 0)
        return 1;
    parse_file(&ld, root);
    json_object_put(root);
    return ld.rep.errors;
}

int policy_load(struct mapping_set *set, char *const *globs, size_t n, unsigned regex_flags)
{
    return mload_files(set, globs, n, regex_flags, "policy", "policies", load_file) > 0 ? ERR_CONFIG
                                                                                        : 0;
}

int policy_set_load(const struct config *cfg, unsigned flags, struct mapping_set **out)
{
    struct mapping_set *set;

    *out = NULL;
    if (mapping_set_load(cfg->mappings, cfg->n_mappings, flags, &set) != 0)
        return ERR_CONFIG;
    if (policy_load(set, cfg->policies, cfg->n_policies, flags) != 0) {
        mapping_set_unref(set);
        return ERR_CONFIG;
    }
    *out = set;
    return 0;
}

/* ---- check's listing ---- */

static size_t describe_template(char *buf, size_t cap, size_t len, const struct template *t)
{
    for (int v = 0; t != NULL && v < TEMPLATE_VARS; v++) {
        if (v == TEMPLATE_FIELD || !template_uses(t, (enum template_var)v))
            continue;
        if (len < cap && strstr(buf, template_var_name((enum template_var)v)) == NULL)
            len += (size_t)snprintf(buf + len, cap - len, "%s%s", len > 0 ? ", " : "",
                                    template_var_name((enum template_var)v));
    }
    for (size_t i = 0; t != NULL && i < template_n_fields(t); i++) {
        struct str f = template_field(t, i);

        if (len < cap)
            len += (size_t)snprintf(buf + len, cap - len, "%sfield %.*s", len > 0 ? ", " : "",
                                    (int)f.len, f.p);
    }
    return len < cap ? len : cap - 1;
}

static int policy_has_type(const struct mapping_set *set, enum policy_action_type type)
{
    for (size_t i = 0; i < set->n_policies; i++) {
        for (int prio = 0; prio < POLICY_PRIORITIES; prio++) {
            for (size_t j = 0; j < set->policies[i].actions[prio].n; j++) {
                if (set->policies[i].actions[prio].v[j].type == type)
                    return 1;
            }
        }
    }
    return 0;
}

int policy_needs_smtp(const struct mapping_set *set)
{
    return policy_has_type(set, POLICY_ACTION_EMAIL) ||
           policy_has_type(set, POLICY_ACTION_APPROVAL);
}

int policy_needs_approvals(const struct mapping_set *set)
{
    return policy_has_type(set, POLICY_ACTION_APPROVAL);
}

int policy_needs_graph(const struct mapping_set *set)
{
    return policy_has_type(set, POLICY_ACTION_GRAPH);
}

int policy_config_check(const struct mapping_set *set, const struct config *cfg,
                        void (*problem)(void *arg, const char *key, const char *why), void *arg)
{
    const struct identity_config *ic = &cfg->identity;
    int graph = 0, n = 0;

    for (size_t i = 0; ic->graph.tenant_id != NULL && i < ic->n_order; i++)
        graph |= ic->order[i] == IDENTITY_GRAPH;
    if (policy_needs_smtp(set) && cfg->smtp.url == NULL && ++n)
        problem(arg, "smtp", "policies have email actions: the smtp section is required");
    if (policy_needs_approvals(set) && cfg->approvals.url == NULL && ++n)
        problem(arg, "approvals",
                "policies have approval actions: approvals.url (the HTTP listener approvers "
                "reach) is required");
    if (policy_needs_graph(set) && !graph && ++n)
        problem(arg, "identity.graph",
                "policies have graph actions: identity.graph is required, named in "
                "identity.order (with the app permission User.RevokeSessions.All, or "
                "User.EnableDisableAccount.All for disable_account)");
    return n;
}

void policy_describe(const struct mapping_set *set, void (*line)(void *arg, const char *text),
                     void *arg)
{
    char sends[1024], text[1536];

    for (size_t i = 0; i < set->n_policies; i++) {
        const struct policy *p = &set->policies[i];

        for (int prio = 0; prio < POLICY_PRIORITIES; prio++) {
            for (size_t j = 0; j < p->actions[prio].n; j++) {
                const struct policy_action *a = &p->actions[prio].v[j];
                const char *what = a->url; /* after the type: a URL, an operation */
                size_t len = 0;

                sends[0] = '\0';
                switch (a->type) {
                case POLICY_ACTION_SAFETITAN:
                    len = (size_t)snprintf(sends, sizeof(sends), "event, email");
                    len = describe_template(sends, sizeof(sends), len, a->event);
                    break;
                case POLICY_ACTION_WEBHOOK:
                    len = describe_template(sends, sizeof(sends), len, a->body);
                    for (size_t k = 0; k < a->n_headers; k++)
                        len = describe_template(sends, sizeof(sends), len, a->headers[k].value);
                    break;
                case POLICY_ACTION_EMAIL:
                case POLICY_ACTION_APPROVAL:
                    len = describe_template(sends, sizeof(sends), len, a->subject);
                    len = describe_template(sends, sizeof(sends), len, a->text);
                    break;
                case POLICY_ACTION_GRAPH:
                    what = graph_operation_names[a->operation];
                    len = (size_t)snprintf(sends, sizeof(sends),
                                           "email (the user's identifier, to Microsoft Graph)");
                    break;
                case POLICY_ACTION_TYPES:
                    break;
                }
                snprintf(text, sizeof(text), "policy %s, %s: %s (%s%s%s) sends: %s", p->name,
                         priority_names[prio], a->name, action_type_names[a->type],
                         what != NULL ? " " : "", what != NULL ? what : "",
                         len > 0 ? sends : "nothing from the alert");
                line(arg, text);
            }
        }
    }
}
