/* Loading mapping files (mapping.h): every key of every file is validated
 * and every problem reported before giving up; a loaded set is immutable
 * (but for its rate limiters) and shared by every worker. The compiled
 * structures are in mapping_internal.h. */
#include "mapping_internal.h"

#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cef.h"
#include "core/json_file.h"
#include "core/log.h"
#include "errors.h"

#define LABEL_MAX      24 /* "when[123]", "user[4]" */
#define ARENA_CHUNK    (16 * 1024)
#define LOG_INTERVAL   60 /* seconds between two runtime log lines of one kind, per mapping */
#define ALIGN_UP(n, a) (((n) + (a)-1) / (a) * (a))

const char *const mapping_slot_names[SLOT_COUNT] = {"rule", "user", "event"};

static const char *const test_names[COND_TESTS] = {"equals", "in", "regex", "exists", "absent",
                                                   "gt",     "ge", "lt",    "le"};

/* Every string, array and table of a set lives in its arena, freed at once. */
struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    alignas(max_align_t) char data[];
};

/* Compiled regexes, freed with the set. */
struct regex_node {
    struct regex *re;
    struct regex_node *next;
};

/* ---- memory ---- */

/* Mapping files are small, capped by json_file_read and written by the
 * admin: as in the config, running out of memory while loading them is not
 * worth a recovery path. */
static void *map_alloc(size_t n)
{
    void *p = calloc(1, n == 0 ? 1 : n);
    if (p == NULL) {
        log_error("mappings: out of memory");
        abort();
    }
    return p;
}

void *mload_alloc(struct mapping_set *set, size_t n)
{
    struct arena_chunk *c = set->arena;
    size_t need = ALIGN_UP(n == 0 ? 1 : n, alignof(max_align_t));

    if (c == NULL || c->cap - c->used < need) {
        size_t cap = need > ARENA_CHUNK ? need : ARENA_CHUNK;

        c = map_alloc(sizeof(*c) + cap);
        c->cap = cap;
        c->next = set->arena;
        set->arena = c;
    }
    c->used += need;
    return c->data + c->used - need;
}

char *mload_strndup(struct mapping_set *set, const char *s, size_t len)
{
    char *p = mload_alloc(set, len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

struct owned_node {
    void (*free_fn)(void *p, size_t len);
    void *p;
    size_t len;
    struct owned_node *next;
};

void mload_own(struct mapping_set *set, void (*free_fn)(void *p, size_t len), void *p, size_t len)
{
    struct owned_node *o = mload_alloc(set, sizeof(*o));

    *o = (struct owned_node){free_fn, p, len, set->owned};
    set->owned = o;
}

static void mapping_set_free(struct mapping_set *set)
{
    for (struct owned_node *o = set->owned; o != NULL; o = o->next)
        o->free_fn(o->p, o->len);
    while (set->regexes != NULL) {
        struct regex_node *r = set->regexes;

        set->regexes = r->next;
        regex_free(r->re);
    }
    while (set->arena != NULL) {
        struct arena_chunk *c = set->arena;

        set->arena = c->next;
        free(c);
    }
    free(set->maps);
    free(set->policies);
    free(set);
}

void mapping_set_ref(struct mapping_set *set)
{
    __atomic_add_fetch(&set->refs, 1, __ATOMIC_RELAXED);
}

void mapping_set_unref(struct mapping_set *set)
{
    if (set != NULL && __atomic_sub_fetch(&set->refs, 1, __ATOMIC_ACQ_REL) == 0)
        mapping_set_free(set);
}

size_t mapping_set_count(const struct mapping_set *set)
{
    return set->n;
}

size_t mapping_set_files(const struct mapping_set *set)
{
    return set->n_files;
}

/* ---- loading ---- */

/* Not counted: the file loads. */
void mload_warning(struct mload *ld, const char *path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    json_file_vreport(LOG_LVL_WARNING, ld->rep.file, path, fmt, ap);
    va_end(ap);
}

int mload_name_in(const char *const *names, const char *name)
{
    for (size_t i = 0; names[i] != NULL; i++) {
        if (strcmp(names[i], name) == 0)
            return (int)i;
    }
    return -1;
}

/* Reports each key of obj that is not in known (NULL-ended). */
void mload_check_keys(struct mload *ld, const char *path, struct json_object *obj,
                      const char *const *known)
{
    char sub[JSON_FILE_PATH_MAX], list[256];

    json_file_join_names(known, 0, list, sizeof(list));
    json_object_object_foreach(obj, name, value)
    {
        (void)value;
        if (mload_name_in(known, name) < 0) {
            json_file_key_path(sub, path, name);
            json_file_error(&ld->rep, sub, "unknown key (known here: %s)", list);
        }
    }
}

/* Whether obj has the key; *v is its value, NULL for a JSON null (which the
 * getters then report as the wrong type). */
int mload_key(struct json_object *obj, const char *name, struct json_object **v)
{
    return json_object_object_get_ex(obj, name, v);
}

/* A JSON string without NUL bytes, at most MAPPING_MAX_TEXT bytes, not
 * empty unless allow_empty: copied into the set (NUL-terminated). Absent
 * after reporting otherwise. */
struct str mload_text(struct mload *ld, const char *path, struct json_object *v, int allow_empty)
{
    char got[JSON_FILE_DESCRIBE_MAX];
    const char *s;
    size_t len;

    if (!json_object_is_type(v, json_type_string)) {
        json_file_error(&ld->rep, path, "expected a string, got %s",
                        json_file_describe(v, got, sizeof(got)));
        return STR_ABSENT;
    }
    s = json_object_get_string(v);
    len = (size_t)json_object_get_string_len(v);
    if (strlen(s) != len)
        json_file_error(&ld->rep, path, "contains a NUL character");
    else if (len > MAPPING_MAX_TEXT)
        json_file_error(&ld->rep, path, "longer than %d bytes", MAPPING_MAX_TEXT);
    else if (len == 0 && !allow_empty)
        json_file_error(&ld->rep, path, "must not be empty");
    else
        return str_make(mload_strndup(ld->set, s, len), len);
    return STR_ABSENT;
}

/* A constant a source of slot yields or a table maps to: what matching
 * would refuse (blank once trimmed, over the cap, a user with a control
 * character) would never yield anything, so it is an error here. */
static struct str get_yield_text(struct mload *ld, const char *path, struct json_object *v,
                                 enum slot slot)
{
    struct str s = mload_text(ld, path, v, 0), t;

    if (s.p == NULL)
        return STR_ABSENT;
    t = str_trim_blanks(s);
    if (t.len == 0)
        json_file_error(&ld->rep, path, "is only spaces: it would never yield a value");
    else if (t.len > MAPPING_MAX_VALUE)
        json_file_error(&ld->rep, path,
                        "longer than %d bytes (the cap for a decision's rule, user or event)",
                        MAPPING_MAX_VALUE);
    else if (slot == SLOT_USER && has_control(t))
        json_file_error(&ld->rep, path,
                        "contains a control character: never a usable user identifier");
    else
        return s;
    return STR_ABSENT;
}

void mload_bool(struct mload *ld, const char *path, struct json_object *v, int *out)
{
    char got[JSON_FILE_DESCRIBE_MAX];

    if (json_object_is_type(v, json_type_boolean))
        *out = json_object_get_boolean(v);
    else
        json_file_error(&ld->rep, path, "expected true or false, got %s",
                        json_file_describe(v, got, sizeof(got)));
}

/* An array with at least one element; NULL after reporting otherwise. */
struct json_object *mload_array(struct mload *ld, const char *path, struct json_object *v)
{
    char got[JSON_FILE_DESCRIBE_MAX];

    if (!json_object_is_type(v, json_type_array)) {
        json_file_error(&ld->rep, path, "expected an array, got %s",
                        json_file_describe(v, got, sizeof(got)));
        return NULL;
    }
    if (json_object_array_length(v) == 0) {
        json_file_error(&ld->rep, path, "must not be empty");
        return NULL;
    }
    return v;
}

int mload_is_object(struct mload *ld, const char *path, struct json_object *v)
{
    char got[JSON_FILE_DESCRIBE_MAX];

    if (json_object_is_type(v, json_type_object))
        return 1;
    json_file_error(&ld->rep, path, "expected an object, got %s",
                    json_file_describe(v, got, sizeof(got)));
    return 0;
}

/* A CEF key in the wrong case reads as a vendor's own key, which the
 * message never carries: "did you mean". Only a warning, as vendors do
 * invent keys (User_Name). */
static void check_cef_key(struct mload *ld, const char *path, struct str name)
{
    static const struct str prefix = STR_LIT("cef.ext.");
    struct str key, table;

    if (name.len <= prefix.len || memcmp(name.p, prefix.p, prefix.len) != 0)
        return;
    key = str_make(name.p + prefix.len, name.len - prefix.len);
    if (!str_is_absent(cef_other_name(key)))
        return; /* a short or a full name, as the table spells it */
    table = cef_key_caseless(key);
    if (!str_is_absent(table))
        mload_warning(ld, path, "%s: not a CEF key; did you mean %s%.*s?", name.p, prefix.p,
                      (int)table.len, table.p);
}

void mload_field(struct mload *ld, const char *path, struct json_object *v, struct event_field *out,
                 const char **name)
{
    struct str s = mload_text(ld, path, v, 0);

    if (s.p == NULL)
        return;
    if (event_field_compile(s.p, s.len, out) != 0) {
        json_file_error(&ld->rep, path,
                        "unknown field \"%s\" (see mappings/README.md for the field names)", s.p);
        return;
    }
    check_cef_key(ld, path, s);
    *name = s.p;
}

struct regex *mload_regex(struct mload *ld, const char *path, struct json_object *v,
                          int ignore_case)
{
    struct str s = mload_text(ld, path, v, 0);
    struct regex_node *node;
    struct regex *re = NULL;
    char err[256];
    int rc;

    if (s.p == NULL)
        return NULL;
    rc = regex_compile(s.p, ld->regex_flags | (ignore_case ? REGEX_CASELESS : 0), &re, err,
                       sizeof(err));
    if (rc == ERR_NOMEM) {
        log_error("mappings: out of memory");
        abort();
    }
    if (rc != 0) {
        json_file_error(&ld->rep, path, "%s", err);
        return NULL;
    }
    node = mload_alloc(ld->set, sizeof(*node));
    node->re = re;
    node->next = ld->set->regexes;
    ld->set->regexes = node;
    return re;
}

const char *mload_label(struct mload *ld, const char *name, size_t i, int indexed)
{
    char label[LABEL_MAX];
    int n = indexed ? snprintf(label, sizeof(label), "%s[%zu]", name, i)
                    : snprintf(label, sizeof(label), "%s", name);

    return mload_strndup(ld->set, label, (size_t)n);
}

/* "in": strings, at least one. */
static void parse_in(struct mload *ld, const char *path, struct json_object *v, struct cond *c)
{
    char sub[JSON_FILE_PATH_MAX];
    struct str *values;
    size_t n;

    if (mload_array(ld, path, v) == NULL)
        return;
    n = json_object_array_length(v);
    values = mload_alloc(ld->set, n * sizeof(*values));
    for (size_t i = 0; i < n; i++) {
        json_file_index_path(sub, path, i);
        values[i] = mload_text(ld, sub, json_object_array_get_idx(v, i), 1);
    }
    c->values = values;
    c->n_values = n;
}

/* "exists": true and "absent": true; false would be the other test. */
static void parse_true(struct mload *ld, const char *path, struct json_object *v, const char *other)
{
    char got[JSON_FILE_DESCRIBE_MAX];

    if (json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v))
        return;
    if (json_object_is_type(v, json_type_boolean))
        json_file_error(&ld->rep, path, "must be true (for the opposite, use \"%s\": true)", other);
    else
        json_file_error(&ld->rep, path, "expected true, got %s",
                        json_file_describe(v, got, sizeof(got)));
}

/* A policy's condition on the decision: "decision.rule" ... Whether v
 * names one (then c says which). */
static int decision_field(struct mload *ld, struct json_object *v, struct cond *c)
{
    static const char *const names[] = {"decision.mapping", "decision.rule", "decision.event",
                                        "decision.user", NULL};
    int i;

    if (!ld->decision_fields || !json_object_is_type(v, json_type_string))
        return 0;
    i = mload_name_in(names, json_object_get_string(v));
    if (i < 0)
        return 0;
    c->on = (enum cond_decision)(COND_ON_MAPPING + i);
    c->field_name = names[i];
    return 1;
}

/* gt, ge, lt, le: a JSON number (a risk score, a severity), finite. */
static void parse_number(struct mload *ld, const char *path, struct json_object *v, struct cond *c)
{
    char got[JSON_FILE_DESCRIBE_MAX];

    if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) {
        c->number = json_object_get_double(v);
        if (isfinite(c->number))
            return;
    }
    json_file_error(&ld->rep, path, "expected a number, got %s",
                    json_file_describe(v, got, sizeof(got)));
}

void mload_condition(struct mload *ld, const char *path, struct json_object *obj, struct cond *c)
{
    static const char *const keys[] = {"field", "equals", "in", "regex", "exists",      "absent",
                                       "gt",    "ge",     "lt", "le",    "ignore_case", NULL};
    char sub[JSON_FILE_PATH_MAX], tests[64];
    struct json_object *v;
    size_t n_tests = 0, used = 0;

    if (!mload_is_object(ld, path, obj))
        return;
    mload_check_keys(ld, path, obj, keys);
    json_file_key_path(sub, path, "field");
    if (!mload_key(obj, "field", &v))
        json_file_error(&ld->rep, sub, "required key is missing");
    else if (!decision_field(ld, v, c))
        mload_field(ld, sub, v, &c->field, &c->field_name);
    if (mload_key(obj, "ignore_case", &v)) {
        json_file_key_path(sub, path, "ignore_case");
        mload_bool(ld, sub, v, &c->ignore_case);
    }
    tests[0] = '\0';
    for (int t = 0; t < COND_TESTS; t++) {
        if (!mload_key(obj, test_names[t], &v))
            continue;
        n_tests++;
        used += (size_t)snprintf(tests + used, sizeof(tests) - used, "%s%s", used > 0 ? ", " : "",
                                 test_names[t]);
        c->test = (enum cond_test)t;
        json_file_key_path(sub, path, test_names[t]);
        switch (c->test) {
        case COND_EQUALS: {
            struct str *one = mload_alloc(ld->set, sizeof(*one));

            *one = mload_text(ld, sub, v, 1);
            c->values = one;
            c->n_values = 1;
            break;
        }
        case COND_IN:
            parse_in(ld, sub, v, c);
            break;
        case COND_REGEX:
            c->re = mload_regex(ld, sub, v, c->ignore_case);
            break;
        case COND_EXISTS:
            parse_true(ld, sub, v, "absent");
            break;
        case COND_ABSENT:
            parse_true(ld, sub, v, "exists");
            break;
        case COND_GT:
        case COND_GE:
        case COND_LT:
        case COND_LE:
            parse_number(ld, sub, v, c);
            break;
        case COND_TESTS:
            break;
        }
    }
    if (n_tests == 0)
        json_file_error(&ld->rep, path,
                        "needs a test: one of equals, in, regex, exists, absent, gt, ge, lt, le");
    else if (n_tests > 1)
        json_file_error(&ld->rep, path, "has %zu tests (%s): use one per condition", n_tests,
                        tests);
    else if (c->ignore_case && c->test != COND_EQUALS && c->test != COND_IN &&
             c->test != COND_REGEX) {
        json_file_key_path(sub, path, "ignore_case");
        json_file_error(&ld->rep, sub, "only applies to equals, in and regex");
    }
}

/* Cheap tests (equals, in, exists, absent) go before regexes, whatever
 * their order in the file; each keeps its label for explain. */
void mload_conditions(struct mload *ld, const char *path, struct json_object *v,
                      const struct cond **out, size_t *n_out)
{
    char sub[JSON_FILE_PATH_MAX];
    struct cond *conds;
    size_t n, n_cheap = 0, cheap = 0, costly = 0;

    if (mload_array(ld, path, v) == NULL)
        return;
    n = json_object_array_length(v);
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(v, i);
        n_cheap += !(json_object_is_type(e, json_type_object) && json_file_has_key(e, "regex"));
    }
    conds = mload_alloc(ld->set, n * sizeof(*conds));
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(v, i);
        int is_regex = json_object_is_type(e, json_type_object) && json_file_has_key(e, "regex");
        struct cond *c = is_regex ? &conds[n_cheap + costly++] : &conds[cheap++];

        json_file_index_path(sub, path, i);
        c->label = mload_label(ld, "when", i, 1);
        mload_condition(ld, sub, e, c);
    }
    *out = conds;
    *n_out = n;
}

static int entry_cmp(const struct table_entry *a, const struct table_entry *b, int ignore_case)
{
    return text_cmp(a->key, b->key, ignore_case);
}

static int entry_cmp_exact(const void *a, const void *b)
{
    return entry_cmp(a, b, 0);
}

/* Keys equal but for case still sort in one way, so the duplicate error
 * reads the same every time; lookups only need the caseless order. */
static int entry_cmp_caseless(const void *a, const void *b)
{
    int d = entry_cmp(a, b, 1);

    return d != 0 ? d : entry_cmp(a, b, 0);
}

/* "table": {"From": "To", ...}, sorted for binary search. */
static void parse_table(struct mload *ld, const char *path, struct json_object *v, enum slot slot,
                        struct source *s)
{
    char sub[JSON_FILE_PATH_MAX];
    struct table_entry *t;
    size_t n = 0;

    if (!mload_is_object(ld, path, v))
        return;
    if (json_object_object_length(v) == 0) {
        json_file_error(&ld->rep, path, "must not be empty");
        return;
    }
    t = mload_alloc(ld->set, (size_t)json_object_object_length(v) * sizeof(*t));
    json_object_object_foreach(v, key, value)
    {
        size_t len = strlen(key);

        json_file_key_path(sub, path, key);
        if (len == 0) {
            json_file_error(&ld->rep, sub, "an empty key never matches");
            continue;
        }
        if (len > MAPPING_MAX_TEXT) {
            json_file_error(&ld->rep, sub, "key longer than %d bytes", MAPPING_MAX_TEXT);
            continue;
        }
        t[n].key = str_make(mload_strndup(ld->set, key, len), len);
        t[n].value = get_yield_text(ld, sub, value, slot);
        n++;
    }
    qsort(t, n, sizeof(*t), s->ignore_case ? entry_cmp_caseless : entry_cmp_exact);
    for (size_t i = 1; i < n; i++) {
        if (entry_cmp(&t[i - 1], &t[i], s->ignore_case) == 0)
            json_file_error(&ld->rep, path,
                            "keys \"%s\" and \"%s\" are the same when case is ignored",
                            t[i - 1].key.p, t[i].key.p);
    }
    s->table = t;
    s->n_table = n;
}

/* Keys that only make sense with "field". */
static const char *const field_only_keys[] = {"regex", "table", "ignore_case", NULL};

static void parse_source(struct mload *ld, const char *path, struct json_object *obj,
                         enum slot slot, struct source *s)
{
    static const char *const keys[] = {"value", "field", "regex", "table", "ignore_case", NULL};
    struct json_object *value, *field, *v;
    int has_value = mload_key(obj, "value", &value), has_field = mload_key(obj, "field", &field);
    char sub[JSON_FILE_PATH_MAX];

    mload_check_keys(ld, path, obj, keys);
    if (mload_key(obj, "ignore_case", &v)) {
        json_file_key_path(sub, path, "ignore_case");
        mload_bool(ld, sub, v, &s->ignore_case);
    }
    if (has_value && has_field) {
        json_file_error(&ld->rep, path, "has both \"value\" and \"field\": use one");
        return;
    }
    if (!has_value && !has_field) {
        json_file_error(&ld->rep, path, "needs \"value\" (a constant) or \"field\"");
        return;
    }
    if (has_value) {
        json_file_key_path(sub, path, "value");
        s->value = get_yield_text(ld, sub, value, slot);
        for (size_t i = 0; field_only_keys[i] != NULL; i++) {
            if (json_file_has_key(obj, field_only_keys[i])) {
                json_file_key_path(sub, path, field_only_keys[i]);
                json_file_error(&ld->rep, sub, "only applies to a \"field\" source");
            }
        }
        return;
    }
    json_file_key_path(sub, path, "field");
    mload_field(ld, sub, field, &s->field, &s->field_name);
    if (mload_key(obj, "regex", &v)) {
        json_file_key_path(sub, path, "regex");
        s->re = mload_regex(ld, sub, v, s->ignore_case);
        if (s->re != NULL && !regex_has_group(s->re, mapping_slot_names[slot]))
            json_file_error(&ld->rep, sub, "needs a named group (?<%s>...)",
                            mapping_slot_names[slot]);
    }
    if (mload_key(obj, "table", &v)) {
        json_file_key_path(sub, path, "table");
        parse_table(ld, sub, v, slot, s);
    }
    if (s->ignore_case && !json_file_has_key(obj, "regex") && !json_file_has_key(obj, "table")) {
        json_file_key_path(sub, path, "ignore_case");
        json_file_error(&ld->rep, sub,
                        "applies to \"regex\" and \"table\": this source has neither");
    }
}

/* A source object or a non-empty array of them. */
static void parse_sources(struct mload *ld, const char *path, struct json_object *v, enum slot slot,
                          struct sources *out)
{
    char sub[JSON_FILE_PATH_MAX], got[JSON_FILE_DESCRIBE_MAX];
    int listed = json_object_is_type(v, json_type_array);
    struct source *src;
    size_t n;

    if (!listed && !json_object_is_type(v, json_type_object)) {
        json_file_error(&ld->rep, path, "expected a source object or an array of them, got %s",
                        json_file_describe(v, got, sizeof(got)));
        return;
    }
    if (listed && mload_array(ld, path, v) == NULL)
        return;
    n = listed ? json_object_array_length(v) : 1;
    src = mload_alloc(ld->set, n * sizeof(*src));
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = listed ? json_object_array_get_idx(v, i) : v;

        if (listed)
            json_file_index_path(sub, path, i);
        else
            snprintf(sub, sizeof(sub), "%s", path);
        src[i].label = mload_label(ld, mapping_slot_names[slot], i, listed);
        if (mload_is_object(ld, sub, e))
            parse_source(ld, sub, e, slot, &src[i]);
    }
    out->v = src;
    out->n = n;
}

static void check_unique(struct mload *ld, const char *path, const struct mapping *mp)
{
    for (const struct mapping *o = ld->set->maps; o < mp; o++) {
        if (o->name != NULL && strcmp(o->name, mp->name) == 0) {
            json_file_error(&ld->rep, path, "\"%s\" is already the name of mappings[%zu] in %s",
                            mp->name, o->index, o->file);
            return;
        }
    }
}

static void parse_mapping(struct mload *ld, const char *path, size_t index, struct json_object *obj,
                          struct mapping *mp)
{
    static const char *const keys[] = {"name",      "description", "when",     "rule", "user",
                                       "user_kind", "event",       "continue", NULL};
    static const char *const required[] = {"name", "when", "rule", "user", NULL};
    char sub[JSON_FILE_PATH_MAX], got[JSON_FILE_DESCRIBE_MAX], list[128];
    struct json_object *v;

    mp->file = ld->rep.file;
    mp->index = index;
    mp->user_kind = USER_KIND_AUTO;
    mp->rl_regex = (struct log_ratelimit)LOG_RATELIMIT_INIT(LOG_INTERVAL, 1);
    mp->rl_no_user = (struct log_ratelimit)LOG_RATELIMIT_INIT(LOG_INTERVAL, 1);
    mp->rl_dropped = (struct log_ratelimit)LOG_RATELIMIT_INIT(LOG_INTERVAL, 1);
    mp->rl_too_long = (struct log_ratelimit)LOG_RATELIMIT_INIT(LOG_INTERVAL, 1);
    if (!mload_is_object(ld, path, obj))
        return;
    mload_check_keys(ld, path, obj, keys);
    for (size_t i = 0; required[i] != NULL; i++) {
        if (!json_file_has_key(obj, required[i])) {
            json_file_key_path(sub, path, required[i]);
            json_file_error(&ld->rep, sub, "required key is missing");
        }
    }
    if (mload_key(obj, "name", &v)) {
        json_file_key_path(sub, path, "name");
        mp->name = mload_text(ld, sub, v, 0).p;
        if (mp->name != NULL && strlen(mp->name) > MAPPING_MAX_NAME) {
            json_file_error(&ld->rep, sub, "longer than %d bytes", MAPPING_MAX_NAME);
            mp->name = NULL;
        }
        if (mp->name != NULL)
            check_unique(ld, sub, mp);
    }
    if (mload_key(obj, "description", &v)) {
        json_file_key_path(sub, path, "description");
        if (!json_object_is_type(v, json_type_string))
            json_file_error(&ld->rep, sub, "expected a string, got %s",
                            json_file_describe(v, got, sizeof(got)));
    }
    if (mload_key(obj, "when", &v)) {
        json_file_key_path(sub, path, "when");
        mload_conditions(ld, sub, v, &mp->conds, &mp->n_conds);
    }
    for (int slot = 0; slot < SLOT_COUNT; slot++) {
        if (mload_key(obj, mapping_slot_names[slot], &v)) {
            json_file_key_path(sub, path, mapping_slot_names[slot]);
            parse_sources(ld, sub, v, (enum slot)slot, &mp->slots[slot]);
        }
    }
    if (mload_key(obj, "user_kind", &v)) {
        int k = json_object_is_type(v, json_type_string)
                    ? mload_name_in(userid_kind_names, json_object_get_string(v))
                    : -1;

        json_file_key_path(sub, path, "user_kind");
        if (k >= 0) {
            mp->user_kind = (enum user_kind)k;
        } else {
            json_file_error(&ld->rep, sub, "expected one of %s, got %s",
                            json_file_join_names(userid_kind_names, 1, list, sizeof(list)),
                            json_file_describe(v, got, sizeof(got)));
        }
    }
    if (mload_key(obj, "continue", &v)) {
        json_file_key_path(sub, path, "continue");
        mload_bool(ld, sub, v, &mp->cont);
    }
}

static void parse_file(struct mload *ld, struct json_object *root)
{
    static const char *const keys[] = {"mappings", "description", NULL};
    struct mapping_set *set = ld->set;
    char sub[JSON_FILE_PATH_MAX], got[JSON_FILE_DESCRIBE_MAX];
    struct json_object *list, *v;
    size_t n;

    if (!json_object_is_type(root, json_type_object)) {
        json_file_error(&ld->rep, "", "expected a JSON object at the top level, got %s",
                        json_file_describe(root, got, sizeof(got)));
        return;
    }
    if (json_file_has_key(root, "listen")) {
        /* A glob such as *.json next to the config: one line says it all,
         * not one "unknown key" per section of the config. */
        json_file_error(&ld->rep, "listen",
                        "this looks like the agent's config file, not a mapping file "
                        "(narrow the mappings glob)");
        return;
    }
    mload_check_keys(ld, "", root, keys);
    if (mload_key(root, "description", &v) && !json_object_is_type(v, json_type_string))
        json_file_error(&ld->rep, "description", "expected a string, got %s",
                        json_file_describe(v, got, sizeof(got)));
    if (!mload_key(root, "mappings", &list)) {
        json_file_error(&ld->rep, "mappings", "required key is missing");
        return;
    }
    if (!json_object_is_type(list, json_type_array)) {
        json_file_error(&ld->rep, "mappings", "expected an array, got %s",
                        json_file_describe(list, got, sizeof(got)));
        return;
    }
    n = json_object_array_length(list); /* may be 0: a file kept for later */
    /* Grown once per file: parse_mapping keeps pointers into the array. */
    if (set->cap - set->n < n) {
        struct mapping *maps = realloc(set->maps, (set->n + n) * sizeof(*maps));

        if (maps == NULL) {
            log_error("mappings: out of memory");
            abort();
        }
        set->maps = maps;
        set->cap = set->n + n;
    }
    for (size_t i = 0; i < n; i++) {
        struct mapping *mp = &set->maps[set->n++];

        memset(mp, 0, sizeof(*mp));
        json_file_index_path(sub, "mappings", i);
        parse_mapping(ld, sub, i, json_object_array_get_idx(list, i), mp);
    }
}

/* Returns the number of problems reported. */
static int load_file(struct mapping_set *set, const char *path, unsigned regex_flags)
{
    struct mload ld = {.rep = {.file = mload_strndup(set, path, strlen(path))},
                       .set = set,
                       .regex_flags = regex_flags};
    struct json_object *root;

    if (json_file_read(path, "mapping", &root) != 0)
        return 1;
    set->n_files++;
    parse_file(&ld, root);
    json_object_put(root);
    return ld.rep.errors;
}

/* glob(3) reports a folder it cannot open here. Not GLOB_ERR, which would
 * stop at a folder that does not exist: that is a pattern matching nothing
 * (a warning); any other error (permissions, I/O) stops the glob. */
static int glob_error(const char *path, int err)
{
    if (err == ENOENT)
        return 0;
    log_error("%s: cannot read the folder: %s", path, strerror(err));
    return 1;
}

static int has_wildcard(const char *pattern)
{
    return strpbrk(pattern, "*?[") != NULL;
}

/* JIT asked for but refused (PCRE2 built without it, or no executable memory
 * under MemoryDenyWriteExecute=yes or SELinux): matching still works, several
 * times slower, and the admin should know why. */
static void mapping_warn_no_jit(const struct mapping_set *set, unsigned regex_flags)
{
    for (const struct regex_node *r = set->regexes; r != NULL && !(regex_flags & REGEX_NO_JIT);
         r = r->next) {
        if (!regex_is_jit(r->re)) {
            log_warning("mappings: PCRE2 JIT is not available (no executable memory?): regexes "
                        "run in the interpreter; set limits.regex_jit to false to silence this");
            return;
        }
    }
}

unsigned mapping_regex_flags(const struct limits_config *limits)
{
    return limits->regex_jit ? 0 : REGEX_NO_JIT;
}

/* The files loaded so far, by realpath(3): two globs (or one glob twice,
 * or dir/../mappings/x.json) naming one file load it once, instead of
 * reporting its mapping names as duplicates of themselves. */
struct seen_files {
    char **paths;
    size_t n, cap;
};

/* Whether path was loaded already; remembers it otherwise. A path
 * realpath cannot resolve is loaded (and its error reported) as given. */
static int seen_before(struct seen_files *seen, const char *path)
{
    char *real = realpath(path, NULL);

    if (real == NULL)
        return 0;
    for (size_t i = 0; i < seen->n; i++) {
        if (strcmp(seen->paths[i], real) == 0) {
            free(real);
            return 1;
        }
    }
    if (seen->n == seen->cap) {
        size_t cap = seen->cap != 0 ? seen->cap * 2 : 16;
        char **paths = realloc(seen->paths, cap * sizeof(*paths));

        if (paths == NULL) {
            log_error("mappings: out of memory");
            abort();
        }
        seen->paths = paths;
        seen->cap = cap;
    }
    seen->paths[seen->n++] = real; /* transferred */
    return 0;
}

static void seen_free(struct seen_files *seen)
{
    for (size_t i = 0; i < seen->n; i++)
        free(seen->paths[i]);
    free(seen->paths);
}

int mload_files(struct mapping_set *set, char *const *globs, size_t n, unsigned regex_flags,
                const char *what, const char *key,
                int (*load)(struct mapping_set *, const char *, unsigned))
{
    struct seen_files seen = {0};
    int errors = 0;

    for (size_t i = 0; i < n; i++) {
        glob_t g = {0};
        int grc = glob(globs[i], 0, glob_error, &g);

        if (grc == 0) {
            for (size_t j = 0; j < g.gl_pathc; j++) {
                if (seen_before(&seen, g.gl_pathv[j]))
                    log_info("%s: already loaded (%s[%zu] matched it again)", g.gl_pathv[j], key,
                             i);
                else
                    errors += load(set, g.gl_pathv[j], regex_flags);
            }
        } else if (grc == GLOB_NOMATCH && has_wildcard(globs[i])) {
            log_warning("%s: no %s file matches", globs[i], what);
        } else if (grc == GLOB_NOMATCH) {
            log_error("%s: cannot open: %s", globs[i], strerror(ENOENT));
            errors++;
        } else if (grc == GLOB_NOSPACE) {
            log_error("%s: out of memory", globs[i]);
            errors++;
        } else {
            errors++; /* GLOB_ABORTED: glob_error said why */
        }
        globfree(&g);
    }
    seen_free(&seen);
    return errors;
}

int mapping_set_load(char *const *globs, size_t n, unsigned regex_flags, struct mapping_set **out)
{
    struct mapping_set *set = map_alloc(sizeof(*set));
    int rc = ERR_CONFIG;

    *out = NULL;
    set->refs = 1;
    if (mload_files(set, globs, n, regex_flags, "mapping", "mappings", load_file) > 0)
        goto out;
    if (set->n == 0)
        log_warning("mappings: no mapping loaded: no message will ever be decided");
    mapping_warn_no_jit(set, regex_flags);
    *out = set;
    set = NULL; /* transferred */
    rc = 0;
out:
    mapping_set_unref(set);
    return rc;
}
