/* The mapping engine (see mapping.h). Loading validates every key of every
 * file and reports every problem before giving up; a loaded set is immutable
 * (but for its rate limiters) and shared by every worker. Matching reads it
 * with one thread's regex env and scratch numbers and never allocates; the
 * explain text is only formatted when someone asked for it. */
#include "mapping.h"

#include <errno.h>
#include <glob.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cef.h"
#include "core/config.h"
#include "errors.h"
#include "event.h"
#include "core/log.h"
#include "regex.h"

#define KEY_PATH_MAX   256
#define LABEL_MAX      24   /* "when[123]", "user[4]" */
#define EXPLAIN_MAX    2048 /* one explain line */
#define QUOTE_MAX      80   /* bytes of a message value quoted in an explain or log line */
#define QUOTED_MAX     (QUOTE_MAX * 4 + sizeof("\"...\"")) /* eb_quote's output: all \x00 */
#define ARENA_CHUNK    (16 * 1024)
#define LOG_INTERVAL   60 /* seconds between two runtime log lines of one kind, per mapping */
#define ALIGN_UP(n, a) (((n) + (a)-1) / (a) * (a))

enum slot {
    SLOT_RULE,
    SLOT_USER,
    SLOT_EVENT,
    SLOT_COUNT,
};

static const char *const slot_names[SLOT_COUNT] = {"rule", "user", "event"};

/* What a slot's text is called in the log line of a text over the cap. */
static const char *const slot_texts[SLOT_COUNT] = {"rule", "user identifier", "event"};

/* In the order error messages list them. */
enum cond_test {
    COND_EQUALS,
    COND_IN,
    COND_REGEX,
    COND_EXISTS,
    COND_ABSENT,
    COND_TESTS,
};

static const char *const test_names[COND_TESTS] = {"equals", "in", "regex", "exists", "absent"};

struct cond {
    struct event_field field;
    const char *field_name;
    const char *label; /* "when[2]": its place in the file, for explain and logs */
    enum cond_test test;
    int ignore_case;
    const struct str *values; /* equals: one, in: n_values */
    size_t n_values;
    struct regex *re;
};

struct table_entry {
    struct str key, value;
};

/* value.p != NULL: a constant; otherwise a field, maybe through a regex
 * and/or a table (sorted by key, compared as ignore_case says). */
struct source {
    const char *label; /* "rule[1]", or "rule" when the slot is a single object */
    struct str value;
    struct event_field field;
    const char *field_name;
    struct regex *re;
    const struct table_entry *table;
    size_t n_table;
    int ignore_case;
};

struct sources {
    const struct source *v;
    size_t n;
};

struct mapping {
    const char *name;
    const char *file;
    size_t index;             /* in its file's mappings[] */
    const struct cond *conds; /* cheap tests first, then regexes; each keeps its label */
    size_t n_conds;
    struct sources slots[SLOT_COUNT];
    enum user_kind user_kind;
    int cont;
    /* Written at match time by any worker (log_limited's atomics): the only
     * mutable part of a loaded set. */
    struct log_ratelimit rl_regex, rl_no_user, rl_dropped, rl_too_long;
};

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

struct mapping_set {
    int refs;
    struct mapping *maps;
    size_t n, cap;
    size_t n_files;
    struct arena_chunk *arena;
    struct regex_node *regexes;
};

struct mapping_matcher {
    struct regex_env *env;
    struct stats *stats;
    uint32_t match_limit, depth_limit;
    /* Numeric field values of the decisions in the making (one row per
     * decision, the last row for one that will be dropped): decisions may
     * point here until the next mapping_match. */
    struct event_num num[MAPPING_MAX_DECISIONS + 1][SLOT_COUNT];
    char why[EXPLAIN_MAX];
};

/* ---- memory ---- */

/* Mapping files are small, capped by config_read_json and written by the
 * admin: as in config.c, running out of memory while loading them is not
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

static void *arena_alloc(struct mapping_set *set, size_t n)
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

static char *arena_strndup(struct mapping_set *set, const char *s, size_t len)
{
    char *p = arena_alloc(set, len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

static void mapping_set_free(struct mapping_set *set)
{
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

/* ---- text helpers shared by loading and matching ---- */

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int text_cmp(struct str a, struct str b, int ignore_case)
{
    size_t n = a.len < b.len ? a.len : b.len;

    if (!ignore_case) {
        int d = n > 0 ? memcmp(a.p, b.p, n) : 0;
        if (d != 0)
            return d;
    } else {
        for (size_t i = 0; i < n; i++) {
            int d = ascii_lower((unsigned char)a.p[i]) - ascii_lower((unsigned char)b.p[i]);
            if (d != 0)
                return d;
        }
    }
    return (a.len > b.len) - (a.len < b.len);
}

static int text_eq(struct str a, struct str b, int ignore_case)
{
    return a.len == b.len && text_cmp(a, b, ignore_case) == 0;
}

/* ---- loading ---- */

struct loader {
    struct mapping_set *set;
    unsigned regex_flags; /* REGEX_NO_JIT, for every regex */
    const char *file;     /* in the arena: mappings keep it */
    int errors;
};

static void load_error(struct loader *ld, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Counted: one error fails the load, after every problem is reported. */
static void load_error(struct loader *ld, const char *path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    config_vreport(ld->file, path, fmt, ap);
    va_end(ap);
    ld->errors++;
}

static void load_warning(struct loader *ld, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Not counted: the file loads. */
static void load_warning(struct loader *ld, const char *path, const char *fmt, ...)
{
    char what[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    log_warning("%s: %s: %s", ld->file, path, what);
}

/* A path too long (a table key can be 4 KiB) ends in "...". */
static void path_fit(char *out, int n)
{
    if (n >= KEY_PATH_MAX)
        memcpy(out + KEY_PATH_MAX - 4, "...", 4);
}

static void key_path(char *out, const char *parent, const char *name)
{
    path_fit(out,
             snprintf(out, KEY_PATH_MAX, "%s%s%s", parent, parent[0] != '\0' ? "." : "", name));
}

static void index_path(char *out, const char *parent, size_t i)
{
    path_fit(out, snprintf(out, KEY_PATH_MAX, "%s[%zu]", parent, i));
}

static int name_in(const char *const *names, const char *name)
{
    for (size_t i = 0; names[i] != NULL; i++) {
        if (strcmp(names[i], name) == 0)
            return (int)i;
    }
    return -1;
}

/* "a, b, c" (or "\"a\", \"b\"" when quoted) for error messages. */
static const char *join_names(const char *const *names, int quoted, char *buf, size_t cap)
{
    size_t n = 0;

    buf[0] = '\0';
    for (size_t i = 0; names[i] != NULL && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, quoted ? "%s\"%s\"" : "%s%s", i > 0 ? ", " : "",
                              names[i]);
    return buf;
}

/* Reports each key of obj that is not in known (NULL-ended). */
static void check_keys(struct loader *ld, const char *path, struct json_object *obj,
                       const char *const *known)
{
    char sub[KEY_PATH_MAX], list[256];

    join_names(known, 0, list, sizeof(list));
    json_object_object_foreach(obj, name, value)
    {
        (void)value;
        if (name_in(known, name) < 0) {
            key_path(sub, path, name);
            load_error(ld, sub, "unknown key (known here: %s)", list);
        }
    }
}

/* Whether obj has the key; *v is its value, NULL for a JSON null (which the
 * getters then report as the wrong type). */
static int get_key(struct json_object *obj, const char *name, struct json_object **v)
{
    return json_object_object_get_ex(obj, name, v);
}

static int has_key(struct json_object *obj, const char *name)
{
    return json_object_object_get_ex(obj, name, NULL);
}

/* A JSON string without NUL bytes, at most MAPPING_MAX_TEXT bytes, not
 * empty unless allow_empty: copied into the set (NUL-terminated). Absent
 * after reporting otherwise. */
static struct str get_text(struct loader *ld, const char *path, struct json_object *v,
                           int allow_empty)
{
    char got[80];
    const char *s;
    size_t len;

    if (!json_object_is_type(v, json_type_string)) {
        load_error(ld, path, "expected a string, got %s",
                   config_describe_json(v, got, sizeof(got)));
        return STR_ABSENT;
    }
    s = json_object_get_string(v);
    len = (size_t)json_object_get_string_len(v);
    if (strlen(s) != len)
        load_error(ld, path, "contains a NUL character");
    else if (len > MAPPING_MAX_TEXT)
        load_error(ld, path, "longer than %d bytes", MAPPING_MAX_TEXT);
    else if (len == 0 && !allow_empty)
        load_error(ld, path, "must not be empty");
    else
        return str_make(arena_strndup(ld->set, s, len), len);
    return STR_ABSENT;
}

/* A user text with a control character is no usable identifier (and
 * would read differently in every log and API it reaches): C0, DEL, and the
 * C1 controls U+0080..U+009F (C2 80..C2 9F in UTF-8: NEL, CSI...), which
 * are valid UTF-8 but act as controls in terminals and log viewers. */
static int has_control(struct str s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x20 || c == 0x7f ||
            (c == 0xC2 && i + 1 < s.len && ((unsigned char)s.p[i + 1] & 0xE0) == 0x80))
            return 1;
    }
    return 0;
}

/* A constant a source of slot yields or a table maps to: what matching
 * would refuse (blank once trimmed, over the cap, a user with a control
 * character) would never yield anything, so it is an error here. */
static struct str get_yield_text(struct loader *ld, const char *path, struct json_object *v,
                                 enum slot slot)
{
    struct str s = get_text(ld, path, v, 0), t;

    if (s.p == NULL)
        return STR_ABSENT;
    t = str_trim_blanks(s);
    if (t.len == 0)
        load_error(ld, path, "is only spaces: it would never yield a value");
    else if (t.len > MAPPING_MAX_VALUE)
        load_error(ld, path, "longer than %d bytes (the cap for a decision's rule, user or event)",
                   MAPPING_MAX_VALUE);
    else if (slot == SLOT_USER && has_control(t))
        load_error(ld, path, "contains a control character: never a usable user identifier");
    else
        return s;
    return STR_ABSENT;
}

static void get_bool(struct loader *ld, const char *path, struct json_object *v, int *out)
{
    char got[80];

    if (json_object_is_type(v, json_type_boolean))
        *out = json_object_get_boolean(v);
    else
        load_error(ld, path, "expected true or false, got %s",
                   config_describe_json(v, got, sizeof(got)));
}

/* An array with at least one element; NULL after reporting otherwise. */
static struct json_object *get_array(struct loader *ld, const char *path, struct json_object *v)
{
    char got[80];

    if (!json_object_is_type(v, json_type_array)) {
        load_error(ld, path, "expected an array, got %s",
                   config_describe_json(v, got, sizeof(got)));
        return NULL;
    }
    if (json_object_array_length(v) == 0) {
        load_error(ld, path, "must not be empty");
        return NULL;
    }
    return v;
}

static int is_object(struct loader *ld, const char *path, struct json_object *v)
{
    char got[80];

    if (json_object_is_type(v, json_type_object))
        return 1;
    load_error(ld, path, "expected an object, got %s", config_describe_json(v, got, sizeof(got)));
    return 0;
}

/* A CEF key in the wrong case reads as a vendor's own key, which the
 * message never carries: "did you mean". Only a warning, as vendors do
 * invent keys (User_Name). */
static void check_cef_key(struct loader *ld, const char *path, struct str name)
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
        load_warning(ld, path, "%s: not a CEF key; did you mean %s%.*s?", name.p, prefix.p,
                     (int)table.len, table.p);
}

static void get_field(struct loader *ld, const char *path, struct json_object *v,
                      struct event_field *out, const char **name)
{
    struct str s = get_text(ld, path, v, 0);

    if (s.p == NULL)
        return;
    if (event_field_compile(s.p, s.len, out) != 0) {
        load_error(ld, path, "unknown field \"%s\" (see mappings/README.md for the field names)",
                   s.p);
        return;
    }
    check_cef_key(ld, path, s);
    *name = s.p;
}

static struct regex *get_regex(struct loader *ld, const char *path, struct json_object *v,
                               int ignore_case)
{
    struct str s = get_text(ld, path, v, 0);
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
        load_error(ld, path, "%s", err);
        return NULL;
    }
    node = arena_alloc(ld->set, sizeof(*node));
    node->re = re;
    node->next = ld->set->regexes;
    ld->set->regexes = node;
    return re;
}

static const char *make_label(struct loader *ld, const char *name, size_t i, int indexed)
{
    char label[LABEL_MAX];
    int n = indexed ? snprintf(label, sizeof(label), "%s[%zu]", name, i)
                    : snprintf(label, sizeof(label), "%s", name);

    return arena_strndup(ld->set, label, (size_t)n);
}

/* "in": strings, at least one. */
static void parse_in(struct loader *ld, const char *path, struct json_object *v, struct cond *c)
{
    char sub[KEY_PATH_MAX];
    struct str *values;
    size_t n;

    if (get_array(ld, path, v) == NULL)
        return;
    n = json_object_array_length(v);
    values = arena_alloc(ld->set, n * sizeof(*values));
    for (size_t i = 0; i < n; i++) {
        index_path(sub, path, i);
        values[i] = get_text(ld, sub, json_object_array_get_idx(v, i), 1);
    }
    c->values = values;
    c->n_values = n;
}

/* "exists": true and "absent": true; false would be the other test. */
static void parse_true(struct loader *ld, const char *path, struct json_object *v,
                       const char *other)
{
    char got[80];

    if (json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v))
        return;
    if (json_object_is_type(v, json_type_boolean))
        load_error(ld, path, "must be true (for the opposite, use \"%s\": true)", other);
    else
        load_error(ld, path, "expected true, got %s", config_describe_json(v, got, sizeof(got)));
}

static void parse_condition(struct loader *ld, const char *path, struct json_object *obj,
                            struct cond *c)
{
    static const char *const keys[] = {"field",  "equals", "in",          "regex",
                                       "exists", "absent", "ignore_case", NULL};
    char sub[KEY_PATH_MAX], tests[64];
    struct json_object *v;
    size_t n_tests = 0, used = 0;

    if (!is_object(ld, path, obj))
        return;
    check_keys(ld, path, obj, keys);
    key_path(sub, path, "field");
    if (get_key(obj, "field", &v))
        get_field(ld, sub, v, &c->field, &c->field_name);
    else
        load_error(ld, sub, "required key is missing");
    if (get_key(obj, "ignore_case", &v)) {
        key_path(sub, path, "ignore_case");
        get_bool(ld, sub, v, &c->ignore_case);
    }
    tests[0] = '\0';
    for (int t = 0; t < COND_TESTS; t++) {
        if (!get_key(obj, test_names[t], &v))
            continue;
        n_tests++;
        used += (size_t)snprintf(tests + used, sizeof(tests) - used, "%s%s", used > 0 ? ", " : "",
                                 test_names[t]);
        c->test = (enum cond_test)t;
        key_path(sub, path, test_names[t]);
        switch (c->test) {
        case COND_EQUALS: {
            struct str *one = arena_alloc(ld->set, sizeof(*one));

            *one = get_text(ld, sub, v, 1);
            c->values = one;
            c->n_values = 1;
            break;
        }
        case COND_IN:
            parse_in(ld, sub, v, c);
            break;
        case COND_REGEX:
            c->re = get_regex(ld, sub, v, c->ignore_case);
            break;
        case COND_EXISTS:
            parse_true(ld, sub, v, "absent");
            break;
        case COND_ABSENT:
            parse_true(ld, sub, v, "exists");
            break;
        case COND_TESTS:
            break;
        }
    }
    if (n_tests == 0)
        load_error(ld, path, "needs a test: one of equals, in, regex, exists, absent");
    else if (n_tests > 1)
        load_error(ld, path, "has %zu tests (%s): use one per condition", n_tests, tests);
    else if (c->ignore_case && (c->test == COND_EXISTS || c->test == COND_ABSENT)) {
        key_path(sub, path, "ignore_case");
        load_error(ld, sub, "only applies to equals, in and regex");
    }
}

/* Cheap tests (equals, in, exists, absent) go before regexes, whatever
 * their order in the file; each keeps its label for explain. */
static void parse_conditions(struct loader *ld, const char *path, struct json_object *v,
                             struct mapping *mp)
{
    char sub[KEY_PATH_MAX];
    struct cond *conds;
    size_t n, n_cheap = 0, cheap = 0, costly = 0;

    if (get_array(ld, path, v) == NULL)
        return;
    n = json_object_array_length(v);
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(v, i);
        n_cheap += !(json_object_is_type(e, json_type_object) && has_key(e, "regex"));
    }
    conds = arena_alloc(ld->set, n * sizeof(*conds));
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(v, i);
        int is_regex = json_object_is_type(e, json_type_object) && has_key(e, "regex");
        struct cond *c = is_regex ? &conds[n_cheap + costly++] : &conds[cheap++];

        index_path(sub, path, i);
        c->label = make_label(ld, "when", i, 1);
        parse_condition(ld, sub, e, c);
    }
    mp->conds = conds;
    mp->n_conds = n;
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
static void parse_table(struct loader *ld, const char *path, struct json_object *v, enum slot slot,
                        struct source *s)
{
    char sub[KEY_PATH_MAX];
    struct table_entry *t;
    size_t n = 0;

    if (!is_object(ld, path, v))
        return;
    if (json_object_object_length(v) == 0) {
        load_error(ld, path, "must not be empty");
        return;
    }
    t = arena_alloc(ld->set, (size_t)json_object_object_length(v) * sizeof(*t));
    json_object_object_foreach(v, key, value)
    {
        size_t len = strlen(key);

        key_path(sub, path, key);
        if (len == 0) {
            load_error(ld, sub, "an empty key never matches");
            continue;
        }
        if (len > MAPPING_MAX_TEXT) {
            load_error(ld, sub, "key longer than %d bytes", MAPPING_MAX_TEXT);
            continue;
        }
        t[n].key = str_make(arena_strndup(ld->set, key, len), len);
        t[n].value = get_yield_text(ld, sub, value, slot);
        n++;
    }
    qsort(t, n, sizeof(*t), s->ignore_case ? entry_cmp_caseless : entry_cmp_exact);
    for (size_t i = 1; i < n; i++) {
        if (entry_cmp(&t[i - 1], &t[i], s->ignore_case) == 0)
            load_error(ld, path, "keys \"%s\" and \"%s\" are the same when case is ignored",
                       t[i - 1].key.p, t[i].key.p);
    }
    s->table = t;
    s->n_table = n;
}

/* Keys that only make sense with "field". */
static const char *const field_only_keys[] = {"regex", "table", "ignore_case", NULL};

static void parse_source(struct loader *ld, const char *path, struct json_object *obj,
                         enum slot slot, struct source *s)
{
    static const char *const keys[] = {"value", "field", "regex", "table", "ignore_case", NULL};
    struct json_object *value, *field, *v;
    int has_value = get_key(obj, "value", &value), has_field = get_key(obj, "field", &field);
    char sub[KEY_PATH_MAX];

    check_keys(ld, path, obj, keys);
    if (get_key(obj, "ignore_case", &v)) {
        key_path(sub, path, "ignore_case");
        get_bool(ld, sub, v, &s->ignore_case);
    }
    if (has_value && has_field) {
        load_error(ld, path, "has both \"value\" and \"field\": use one");
        return;
    }
    if (!has_value && !has_field) {
        load_error(ld, path, "needs \"value\" (a constant) or \"field\"");
        return;
    }
    if (has_value) {
        key_path(sub, path, "value");
        s->value = get_yield_text(ld, sub, value, slot);
        for (size_t i = 0; field_only_keys[i] != NULL; i++) {
            if (has_key(obj, field_only_keys[i])) {
                key_path(sub, path, field_only_keys[i]);
                load_error(ld, sub, "only applies to a \"field\" source");
            }
        }
        return;
    }
    key_path(sub, path, "field");
    get_field(ld, sub, field, &s->field, &s->field_name);
    if (get_key(obj, "regex", &v)) {
        key_path(sub, path, "regex");
        s->re = get_regex(ld, sub, v, s->ignore_case);
        if (s->re != NULL && !regex_has_group(s->re, slot_names[slot]))
            load_error(ld, sub, "needs a named group (?<%s>...)", slot_names[slot]);
    }
    if (get_key(obj, "table", &v)) {
        key_path(sub, path, "table");
        parse_table(ld, sub, v, slot, s);
    }
    if (s->ignore_case && !has_key(obj, "regex") && !has_key(obj, "table")) {
        key_path(sub, path, "ignore_case");
        load_error(ld, sub, "applies to \"regex\" and \"table\": this source has neither");
    }
}

/* A source object or a non-empty array of them. */
static void parse_sources(struct loader *ld, const char *path, struct json_object *v,
                          enum slot slot, struct sources *out)
{
    char sub[KEY_PATH_MAX], got[80];
    int listed = json_object_is_type(v, json_type_array);
    struct source *src;
    size_t n;

    if (!listed && !json_object_is_type(v, json_type_object)) {
        load_error(ld, path, "expected a source object or an array of them, got %s",
                   config_describe_json(v, got, sizeof(got)));
        return;
    }
    if (listed && get_array(ld, path, v) == NULL)
        return;
    n = listed ? json_object_array_length(v) : 1;
    src = arena_alloc(ld->set, n * sizeof(*src));
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = listed ? json_object_array_get_idx(v, i) : v;

        if (listed)
            index_path(sub, path, i);
        else
            snprintf(sub, sizeof(sub), "%s", path);
        src[i].label = make_label(ld, slot_names[slot], i, listed);
        if (is_object(ld, sub, e))
            parse_source(ld, sub, e, slot, &src[i]);
    }
    out->v = src;
    out->n = n;
}

static void check_unique(struct loader *ld, const char *path, const struct mapping *mp)
{
    for (const struct mapping *o = ld->set->maps; o < mp; o++) {
        if (o->name != NULL && strcmp(o->name, mp->name) == 0) {
            load_error(ld, path, "\"%s\" is already the name of mappings[%zu] in %s", mp->name,
                       o->index, o->file);
            return;
        }
    }
}

static void parse_mapping(struct loader *ld, const char *path, size_t index,
                          struct json_object *obj, struct mapping *mp)
{
    static const char *const keys[] = {"name",      "description", "when",     "rule", "user",
                                       "user_kind", "event",       "continue", NULL};
    static const char *const required[] = {"name", "when", "rule", "user", NULL};
    char sub[KEY_PATH_MAX], got[80], list[128];
    struct json_object *v;

    mp->file = ld->file;
    mp->index = index;
    mp->user_kind = USER_KIND_AUTO;
    mp->rl_regex = (struct log_ratelimit)LOG_RATELIMIT_INIT(LOG_INTERVAL, 1);
    mp->rl_no_user = (struct log_ratelimit)LOG_RATELIMIT_INIT(LOG_INTERVAL, 1);
    mp->rl_dropped = (struct log_ratelimit)LOG_RATELIMIT_INIT(LOG_INTERVAL, 1);
    mp->rl_too_long = (struct log_ratelimit)LOG_RATELIMIT_INIT(LOG_INTERVAL, 1);
    if (!is_object(ld, path, obj))
        return;
    check_keys(ld, path, obj, keys);
    for (size_t i = 0; required[i] != NULL; i++) {
        if (!has_key(obj, required[i])) {
            key_path(sub, path, required[i]);
            load_error(ld, sub, "required key is missing");
        }
    }
    if (get_key(obj, "name", &v)) {
        key_path(sub, path, "name");
        mp->name = get_text(ld, sub, v, 0).p;
        if (mp->name != NULL && strlen(mp->name) > MAPPING_MAX_NAME) {
            load_error(ld, sub, "longer than %d bytes", MAPPING_MAX_NAME);
            mp->name = NULL;
        }
        if (mp->name != NULL)
            check_unique(ld, sub, mp);
    }
    if (get_key(obj, "description", &v)) {
        key_path(sub, path, "description");
        if (!json_object_is_type(v, json_type_string))
            load_error(ld, sub, "expected a string, got %s",
                       config_describe_json(v, got, sizeof(got)));
    }
    if (get_key(obj, "when", &v)) {
        key_path(sub, path, "when");
        parse_conditions(ld, sub, v, mp);
    }
    for (int slot = 0; slot < SLOT_COUNT; slot++) {
        if (get_key(obj, slot_names[slot], &v)) {
            key_path(sub, path, slot_names[slot]);
            parse_sources(ld, sub, v, (enum slot)slot, &mp->slots[slot]);
        }
    }
    if (get_key(obj, "user_kind", &v)) {
        int k = json_object_is_type(v, json_type_string)
                    ? name_in(userid_kind_names, json_object_get_string(v))
                    : -1;

        key_path(sub, path, "user_kind");
        if (k >= 0) {
            mp->user_kind = (enum user_kind)k;
        } else {
            load_error(ld, sub, "expected one of %s, got %s",
                       join_names(userid_kind_names, 1, list, sizeof(list)),
                       config_describe_json(v, got, sizeof(got)));
        }
    }
    if (get_key(obj, "continue", &v)) {
        key_path(sub, path, "continue");
        get_bool(ld, sub, v, &mp->cont);
    }
}

static void parse_file(struct loader *ld, struct json_object *root)
{
    static const char *const keys[] = {"mappings", "description", NULL};
    struct mapping_set *set = ld->set;
    char sub[KEY_PATH_MAX], got[80];
    struct json_object *list, *v;
    size_t n;

    if (!json_object_is_type(root, json_type_object)) {
        load_error(ld, "", "expected a JSON object at the top level, got %s",
                   config_describe_json(root, got, sizeof(got)));
        return;
    }
    if (has_key(root, "listen")) {
        /* A glob such as *.json next to the config: one line says it all,
         * not one "unknown key" per section of the config. */
        load_error(ld, "listen",
                   "this looks like the agent's config file, not a mapping file "
                   "(narrow the mappings glob)");
        return;
    }
    check_keys(ld, "", root, keys);
    if (get_key(root, "description", &v) && !json_object_is_type(v, json_type_string))
        load_error(ld, "description", "expected a string, got %s",
                   config_describe_json(v, got, sizeof(got)));
    if (!get_key(root, "mappings", &list)) {
        load_error(ld, "mappings", "required key is missing");
        return;
    }
    if (!json_object_is_type(list, json_type_array)) {
        load_error(ld, "mappings", "expected an array, got %s",
                   config_describe_json(list, got, sizeof(got)));
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
        index_path(sub, "mappings", i);
        parse_mapping(ld, sub, i, json_object_array_get_idx(list, i), mp);
    }
}

/* Returns the number of problems reported. */
static int load_file(struct mapping_set *set, const char *path, unsigned regex_flags)
{
    struct loader ld = {
        .set = set, .regex_flags = regex_flags, .file = arena_strndup(set, path, strlen(path))};
    struct json_object *root;

    if (config_read_json(path, &root) != 0)
        return 1;
    set->n_files++;
    parse_file(&ld, root);
    json_object_put(root);
    return ld.errors;
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

int mapping_set_load(char *const *globs, size_t n, unsigned regex_flags, struct mapping_set **out)
{
    struct mapping_set *set = map_alloc(sizeof(*set));
    struct seen_files seen = {0};
    int errors = 0, rc = ERR_CONFIG;

    *out = NULL;
    set->refs = 1;
    for (size_t i = 0; i < n; i++) {
        glob_t g = {0};
        int grc = glob(globs[i], 0, glob_error, &g);

        if (grc == 0) {
            for (size_t j = 0; j < g.gl_pathc; j++) {
                if (seen_before(&seen, g.gl_pathv[j]))
                    log_info("%s: already loaded (mappings[%zu] matched it again)", g.gl_pathv[j],
                             i);
                else
                    errors += load_file(set, g.gl_pathv[j], regex_flags);
            }
        } else if (grc == GLOB_NOMATCH && has_wildcard(globs[i])) {
            log_warning("%s: no mapping file matches", globs[i]);
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
    if (errors > 0)
        goto out;
    if (set->n == 0)
        log_warning("mappings: no mapping loaded: no message will ever be decided");
    mapping_warn_no_jit(set, regex_flags);
    *out = set;
    set = NULL; /* transferred */
    rc = 0;
out:
    seen_free(&seen);
    mapping_set_unref(set);
    return rc;
}

/* ---- matching ---- */

int mapping_matcher_new(uint32_t regex_match_limit, uint32_t regex_depth_limit, struct stats *stats,
                        struct mapping_matcher **out)
{
    struct mapping_matcher *mm = calloc(1, sizeof(*mm));
    int rc = ERR_NOMEM;

    *out = NULL;
    if (mm == NULL)
        goto out;
    rc = regex_env_new(regex_match_limit, regex_depth_limit, &mm->env);
    if (rc != 0)
        goto out;
    mm->stats = stats;
    mm->match_limit = regex_match_limit;
    mm->depth_limit = regex_depth_limit;
    *out = mm;
    mm = NULL; /* transferred */
out:
    mapping_matcher_free(mm);
    return rc;
}

void mapping_matcher_free(struct mapping_matcher *mm)
{
    if (mm == NULL)
        return;
    regex_env_free(mm->env);
    free(mm);
}

static void count_stat(struct mapping_matcher *mm, enum stats_counter c)
{
    if (mm->stats != NULL)
        stats_add(mm->stats, c, 1);
}

/* The explain line in the making; NULL on the hot path. Once something
 * did not fit, the line is full: nothing after a gap is appended. */
struct ebuf {
    char *p;
    size_t len, cap;
    int full;
};

/* Back to len (a mark taken before), the rest forgotten. */
static void eb_rewind(struct ebuf *eb, size_t len)
{
    eb->len = len;
    eb->full = 0;
    eb->p[len] = '\0';
}

static void eb_printf(struct ebuf *eb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void eb_printf(struct ebuf *eb, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (eb->full)
        return;
    va_start(ap, fmt);
    n = vsnprintf(eb->p + eb->len, eb->cap - eb->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < eb->cap - eb->len) {
        eb->len += (size_t)n;
    } else {
        eb->len = eb->cap - 1;
        eb->full = 1;
    }
}

/* Appends p[0..n) whole, or nothing (and the line is full): an escape is
 * never cut in two. */
static void eb_put(struct ebuf *eb, const char *p, size_t n)
{
    if (eb->full || n >= eb->cap - eb->len) {
        eb->full = 1;
        return;
    }
    memcpy(eb->p + eb->len, p, n);
    eb->len += n;
    eb->p[eb->len] = '\0';
}

/* A value from the message (or the file), quoted and cut to QUOTE_MAX
 * bytes at a UTF-8 character boundary (QUOTED_MAX bytes at most). '"' and
 * '\\' are escaped so that the value cannot end its quotes and write a
 * second value, and a NUL as \x00 so it does not end the line; the printer
 * escapes other control characters (mapping.h). */
static void eb_quote(struct ebuf *eb, struct str v)
{
    size_t len = v.len, from = 0;

    if (len > QUOTE_MAX) {
        len = QUOTE_MAX;
        for (int back = 0; back < 3 && ((unsigned char)v.p[len] & 0xC0) == 0x80; back++)
            len--;
    }
    eb_put(eb, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        char c = v.p[i];

        if (c != '"' && c != '\\' && c != '\0')
            continue;
        eb_put(eb, v.p + from, i - from);
        if (c == '\0')
            eb_put(eb, "\\x00", 4);
        else
            eb_put(eb, (const char[]){'\\', c}, 2);
        from = i + 1;
    }
    eb_put(eb, v.p + from, len - from);
    eb_put(eb, len < v.len ? "...\"" : "\"", len < v.len ? 4 : 1);
}

/* Why a field may be absent, when the message says. */
static const char *absent_hint(const struct event_field *f, const struct message *m)
{
    if (f->kind >= EVENT_CEF_VERSION && f->kind <= EVENT_CEF_LABEL && m->payload != PAYLOAD_CEF)
        return " (the message is not CEF)";
    if (f->kind >= EVENT_LEEF_VERSION && f->kind <= EVENT_LEEF_EXT && m->payload != PAYLOAD_LEEF)
        return " (the message is not LEEF)";
    if (f->kind >= EVENT_SYSLOG_PRI && f->kind <= EVENT_SYSLOG_SD &&
        m->syslog.format == SYSLOG_NONE)
        return " (the message has no syslog header)";
    return "";
}

/* regex_match, with the bookkeeping of a regex that could not finish: a
 * limit or a PCRE2 error is counted, logged (once a minute per mapping),
 * explained, and the caller reads it as "did not match". label and
 * field_name say which condition or source ran it. */
static int run_regex(struct mapping *mp, struct mapping_matcher *mm, const struct regex *re,
                     struct str subject, const char *label, const char *field_name, struct ebuf *eb)
{
    char what[160];
    int rc = regex_match(re, mm->env, subject);

    if (rc >= 0)
        return rc;
    if (rc == ERR_LIMIT) {
        count_stat(mm, STAT_regex_limit_hits);
        snprintf(what, sizeof(what),
                 "regex hit a PCRE2 limit (match limit %u, depth limit %u, heap or JIT stack)",
                 (unsigned)mm->match_limit, (unsigned)mm->depth_limit);
    } else {
        count_stat(mm, STAT_regex_errors);
        snprintf(what, sizeof(what), "regex failed: %s", regex_env_last_error(mm->env));
    }
    log_limited(&mp->rl_regex, LOG_LVL_WARNING,
                "%s: mappings[%zu] (mapping \"%s\"): %s %s: %s, treated as no match", mp->file,
                mp->index, mp->name, label, field_name, what);
    if (eb != NULL)
        eb_printf(eb, "%s %s: %s, counted as no match", label, field_name, what);
    return rc;
}

/* Explains a regex that ran and did not match (label and field already written). */
static void eb_regex_miss(struct ebuf *eb, const struct regex *re, int rc)
{
    struct str lit = regex_literal(re);

    if (rc == REGEX_LITERAL_MISS) {
        eb_printf(eb, " does not contain ");
        eb_quote(eb, lit);
        eb_printf(eb, " (the regex's required literal)");
    } else
        eb_printf(eb, " does not match /%s/", regex_pattern(re));
}

static int value_listed(const struct cond *c, struct str v)
{
    for (size_t i = 0; i < c->n_values; i++) {
        if (text_eq(v, c->values[i], c->ignore_case))
            return 1;
    }
    return 0;
}

static int cond_holds(struct mapping *mp, const struct cond *c, struct mapping_matcher *mm,
                      const struct message *m, struct ebuf *eb)
{
    struct event_num num;
    struct str v = event_field_get(&c->field, m, &num);
    int rc = REGEX_NO_MATCH;

    switch (c->test) {
    case COND_EQUALS:
    case COND_IN:
        if (v.p != NULL && value_listed(c, v))
            return 1;
        break;
    case COND_REGEX:
        if (v.p == NULL)
            break;
        rc = run_regex(mp, mm, c->re, v, c->label, c->field_name, eb);
        if (rc == REGEX_MATCH)
            return 1;
        if (rc < 0)
            return 0; /* explained by run_regex */
        break;
    case COND_EXISTS:
        if (v.p != NULL)
            return 1;
        break;
    case COND_ABSENT:
        if (v.p == NULL)
            return 1;
        break;
    case COND_TESTS:
        break;
    }
    if (eb == NULL)
        return 0;
    eb_printf(eb, "%s %s", c->label, c->field_name);
    if (v.p == NULL) {
        eb_printf(eb, " is absent%s", absent_hint(&c->field, m));
        return 0;
    }
    if (c->test == COND_REGEX) {
        eb_regex_miss(eb, c->re, rc);
        return 0;
    }
    eb_printf(eb, " is ");
    eb_quote(eb, v);
    if (c->test == COND_EQUALS || c->test == COND_IN) {
        eb_printf(eb, ", expected %s", c->test == COND_IN ? "one of " : "");
        for (size_t i = 0; i < c->n_values; i++) {
            eb_printf(eb, "%s", i > 0 ? ", " : "");
            eb_quote(eb, c->values[i]);
        }
        eb_printf(eb, "%s", c->ignore_case ? " (ignoring case)" : "");
    } else {
        eb_printf(eb, ", expected absent");
    }
    return 0;
}

static const struct table_entry *table_find(const struct source *s, struct str key)
{
    size_t lo = 0, hi = s->n_table;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int d = text_cmp(key, s->table[mid].key, s->ignore_case);

        if (d == 0)
            return &s->table[mid];
        if (d < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

enum {
    YIELD_NOTHING = 0,
    YIELD_TEXT = 1,
    YIELD_FAILED = -1, /* a regex could not finish: the mapping does not decide */
};

/* What source s yields into *out (explaining a miss after its label). */
static int source_eval(struct mapping *mp, const struct source *s, enum slot slot,
                       struct mapping_matcher *mm, const struct message *m, struct event_num *num,
                       struct str *out, struct ebuf *eb)
{
    struct str v;
    int rc;

    if (s->value.p != NULL) {
        *out = str_trim_blanks(s->value);
        return YIELD_TEXT;
    }
    v = event_field_get(&s->field, m, num);
    if (v.p == NULL) {
        if (eb != NULL)
            eb_printf(eb, "%s %s absent", s->label, s->field_name);
        return YIELD_NOTHING;
    }
    if (s->re != NULL) {
        rc = run_regex(mp, mm, s->re, v, s->label, s->field_name, eb);
        if (rc < 0)
            return YIELD_FAILED;
        if (rc != REGEX_MATCH) {
            if (eb != NULL) {
                eb_printf(eb, "%s %s", s->label, s->field_name);
                eb_regex_miss(eb, s->re, rc);
            }
            return YIELD_NOTHING;
        }
        v = regex_group(s->re, mm->env, v, slot_names[slot]);
        if (v.p == NULL) {
            if (eb != NULL)
                eb_printf(eb, "%s %s: group (?<%s>) did not take part", s->label, s->field_name,
                          slot_names[slot]);
            return YIELD_NOTHING;
        }
    }
    v = str_trim_blanks(v);
    if (s->table != NULL && v.len > 0) {
        const struct table_entry *e = table_find(s, v);

        if (e == NULL) {
            if (eb != NULL) {
                eb_printf(eb, "%s %s ", s->label, s->field_name);
                eb_quote(eb, v);
                eb_printf(eb, " is not in the table");
            }
            return YIELD_NOTHING;
        }
        v = str_trim_blanks(e->value);
    }
    if (v.len == 0) {
        if (eb != NULL)
            eb_printf(eb, "%s %s empty", s->label, s->field_name);
        return YIELD_NOTHING;
    }
    /* Constants and table values were checked at load (get_yield_text). */
    if (slot == SLOT_USER && has_control(v)) {
        if (eb != NULL) {
            eb_printf(eb, "%s %s ", s->label, s->field_name);
            eb_quote(eb, v);
            eb_printf(eb, " contains a control character");
        }
        return YIELD_NOTHING;
    }
    *out = v;
    return YIELD_TEXT;
}

/* The first source of the slot that yields: YIELD_TEXT with *out and *which,
 * YIELD_NOTHING (every miss explained, comma-separated) or YIELD_FAILED. */
static int slot_eval(struct mapping *mp, enum slot slot, struct mapping_matcher *mm,
                     const struct message *m, struct event_num *num, struct str *out,
                     const struct source **which, struct ebuf *eb)
{
    const struct sources *ss = &mp->slots[slot];

    for (size_t i = 0; i < ss->n; i++) {
        int rc;

        if (eb != NULL && i > 0)
            eb_printf(eb, ", ");
        rc = source_eval(mp, &ss->v[i], slot, mm, m, num, out, eb);
        if (rc != YIELD_NOTHING) {
            *which = &ss->v[i];
            return rc;
        }
    }
    return YIELD_NOTHING;
}

static void eb_source(struct ebuf *eb, const struct source *s)
{
    if (s->value.p != NULL)
        eb_printf(eb, "%s value", s->label);
    else
        eb_printf(eb, "%s %s%s%s", s->label, s->field_name, s->re != NULL ? " regex" : "",
                  s->table != NULL ? " table" : "");
}

/* Whether a text of d is longer than a decision carries (then counted,
 * logged and explained after "no: "): the daemon could not queue it, so no
 * decision is made, here as in replay. */
static int over_cap(struct mapping *mp, struct mapping_matcher *mm,
                    const struct mapping_decision *d, struct ebuf *eb)
{
    const size_t len[SLOT_COUNT] = {d->rule.len, d->user.len, d->event.len};

    for (int slot = 0; slot < SLOT_COUNT; slot++) {
        if (len[slot] <= MAPPING_MAX_VALUE)
            continue;
        count_stat(mm, STAT_decisions_dropped);
        log_limited(&mp->rl_too_long, LOG_LVL_WARNING,
                    "%s: mappings[%zu] (mapping \"%s\"): %s of %zu bytes is over the %d-byte "
                    "cap: no decision (counted in decisions_dropped)",
                    mp->file, mp->index, mp->name, slot_texts[slot], len[slot], MAPPING_MAX_VALUE);
        if (eb != NULL)
            eb_printf(eb,
                      "%s of %zu bytes is over the %d-byte cap: no decision (counted in "
                      "decisions_dropped)",
                      slot_texts[slot], len[slot], MAPPING_MAX_VALUE);
        return 1;
    }
    return 0;
}

/* Conditions, then rule, user and event. Returns 1 with *d filled when the
 * mapping decides; otherwise 0 with the reason in eb. */
static int mapping_try(struct mapping *mp, struct mapping_matcher *mm, const struct message *m,
                       struct event_num num[SLOT_COUNT], struct mapping_decision *d,
                       struct ebuf *eb)
{
    const struct source *rule_src = NULL, *user_src = NULL, *event_src = NULL;
    size_t mark;
    int rc;

    if (eb != NULL)
        eb_printf(eb, "no: ");
    for (size_t i = 0; i < mp->n_conds; i++) {
        if (!cond_holds(mp, &mp->conds[i], mm, m, eb))
            return 0;
    }
    mark = eb != NULL ? eb->len : 0;
    if (eb != NULL)
        eb_printf(eb, "rule: ");
    rc = slot_eval(mp, SLOT_RULE, mm, m, &num[SLOT_RULE], &d->rule, &rule_src, eb);
    if (rc != YIELD_TEXT)
        return 0;
    if (eb != NULL) {
        eb_rewind(eb, mark);
        eb_printf(eb, "user: ");
    }
    rc = slot_eval(mp, SLOT_USER, mm, m, &num[SLOT_USER], &d->user, &user_src, eb);
    if (rc == YIELD_NOTHING) {
        /* Quoted as on an explain line, so that the rule cannot close its
         * quotes and forge text (the log does not escape '"'). */
        char quoted[QUOTED_MAX];
        struct ebuf q = {quoted, 0, sizeof(quoted), 0};

        count_stat(mm, STAT_decisions_no_user);
        eb_quote(&q, d->rule);
        log_limited(&mp->rl_no_user, LOG_LVL_WARNING,
                    "%s: mappings[%zu] (mapping \"%s\"): rule %s but no user identifier in the "
                    "message: nothing to act on (counted in decisions_no_user)",
                    mp->file, mp->index, mp->name, quoted);
        if (eb != NULL)
            eb_printf(eb, " (counted in decisions_no_user)");
    }
    if (rc != YIELD_TEXT)
        return 0;
    if (eb != NULL)
        eb_rewind(eb, mark);
    d->event = d->rule;
    if (mp->slots[SLOT_EVENT].n > 0) {
        /* A miss falls back to the rule; only a regex failure stops the mapping. */
        rc = slot_eval(mp, SLOT_EVENT, mm, m, &num[SLOT_EVENT], &d->event, &event_src, eb);
        if (rc == YIELD_FAILED)
            return 0;
        if (eb != NULL)
            eb_rewind(eb, mark);
        if (rc == YIELD_NOTHING)
            event_src = NULL;
    }
    if (over_cap(mp, mm, d, eb))
        return 0;
    d->mapping = mp->name;
    d->file = mp->file;
    d->user_kind = mp->user_kind;
    if (eb != NULL) {
        eb_rewind(eb, 0);
        eb_printf(eb, "yes: rule ");
        eb_quote(eb, d->rule);
        eb_printf(eb, " (");
        eb_source(eb, rule_src);
        eb_printf(eb, "), user ");
        eb_quote(eb, d->user);
        eb_printf(eb, " (");
        eb_source(eb, user_src);
        eb_printf(eb, ", kind %s%s), event ",
                  userid_kind_name(userid_resolve_kind(mp->user_kind, d->user)),
                  mp->user_kind == USER_KIND_AUTO ? ", detected" : "");
        eb_quote(eb, d->event);
        if (event_src != NULL) {
            eb_printf(eb, " (");
            eb_source(eb, event_src);
            eb_printf(eb, ")");
        } else {
            eb_printf(eb, " (the rule%s)",
                      mp->slots[SLOT_EVENT].n > 0 ? ": no event source yielded" : "");
        }
    }
    return 1;
}

size_t mapping_match(const struct mapping_set *set, struct mapping_matcher *mm,
                     const struct message *m, struct mapping_decision *out,
                     const struct mapping_explain *explain)
{
    struct ebuf eb_store = {mm->why, 0, sizeof(mm->why), 0};
    struct ebuf *eb = explain != NULL ? &eb_store : NULL;
    size_t n = 0;

    mm->why[0] = '\0';
    for (size_t i = 0; i < set->n; i++) {
        /* set->maps is not const: the rate limiters are written (see struct mapping). */
        struct mapping *mp = &set->maps[i];
        struct mapping_decision d;
        int decided, stop;

        eb_rewind(&eb_store, 0);
        decided = mapping_try(mp, mm, m, mm->num[n], &d, eb);
        stop = decided && !mp->cont;
        if (decided && n == MAPPING_MAX_DECISIONS) {
            count_stat(mm, STAT_decisions_dropped);
            log_limited(&mp->rl_dropped, LOG_LVL_WARNING,
                        "%s: mappings[%zu] (mapping \"%s\"): decision dropped: the message "
                        "already has %d decisions",
                        mp->file, mp->index, mp->name, MAPPING_MAX_DECISIONS);
            if (eb != NULL)
                eb_printf(eb,
                          "; dropped: the message already has %d decisions (counted in "
                          "decisions_dropped)",
                          MAPPING_MAX_DECISIONS);
            decided = 0;
        } else if (decided) {
            out[n++] = d;
        }
        if (explain != NULL)
            explain->line(explain->arg, mp->name, mp->file, decided, mm->why);
        if (stop)
            break;
    }
    return n;
}
