/* What the mapping engine's three parts share (mapping_load.c builds a
 * set, mapping_match.c runs it, mapping_explain.c says why): the compiled
 * structures and the explain buffer. Included by those files only; the
 * public API is mapping.h. */
#ifndef RTR_MAPPING_INTERNAL_H
#define RTR_MAPPING_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/json_file.h"
#include "core/log.h"
#include "event.h"
#include "mapping.h"
#include "policy.h"
#include "regex.h"

#define EXPLAIN_MAX 2048 /* one explain line */
#define QUOTE_MAX   80   /* bytes of a message value quoted in an explain or log line */
#define QUOTED_MAX  (QUOTE_MAX * 4 + sizeof("\"...\"")) /* eb_quote's output: all \x00 */

enum slot {
    SLOT_RULE,
    SLOT_USER,
    SLOT_EVENT,
    SLOT_COUNT,
};

/* "rule", "user", "event": the keys in a file and the regex group names. */
extern const char *const mapping_slot_names[SLOT_COUNT];

/* In the order error messages list them. */
enum cond_test {
    COND_EQUALS,
    COND_IN,
    COND_REGEX,
    COND_EXISTS,
    COND_ABSENT,
    COND_GT, /* numeric: the field's text read as a decimal number */
    COND_GE,
    COND_LT,
    COND_LE,
    COND_TESTS,
};

/* A condition of a policy may test the decision instead of the message. */
enum cond_decision {
    COND_ON_MESSAGE,
    COND_ON_MAPPING,
    COND_ON_RULE,
    COND_ON_EVENT,
    COND_ON_USER,
    COND_ON_COUNT,
};

/* A policy's COUNT (policy.h). */
struct cond_count {
    enum policy_scope scope;
    int64_t window_s;
    uint32_t at_least;
};

struct cond {
    enum cond_decision on; /* COND_ON_MESSAGE: field; COND_ON_COUNT: count */
    struct cond_count count;
    struct event_field field;
    const char *field_name;
    const char *label; /* "when[2]": its place in the file, for explain and logs */
    enum cond_test test;
    int ignore_case;
    const struct str *values; /* equals: one, in: n_values */
    size_t n_values;
    struct regex *re;
    double number; /* gt, ge, lt, le */
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

/* Every string, array and table of a set lives in its arena; compiled
 * regexes are listed to be freed with the set (mapping_load.c). */
struct arena_chunk;
struct regex_node;

struct owned_node;

/* ---- policies (policy_load.c, policy_match.c) ---- */

struct policy_tier {
    const char *label; /* "tiers[1]" */
    enum policy_priority priority;
    const struct cond *conds; /* COND_ON_COUNT among them */
    size_t n_conds;
};

/* The fields a priority's actions name in their templates: captured from
 * the message into the decision's policy block. */
struct policy_capture {
    struct str names[POLICY_MAX_FIELDS];
    struct event_field fields[POLICY_MAX_FIELDS];
    size_t n;
};

struct policy {
    const char *name;
    const char *file;
    size_t index; /* in its file's policies[] */
    const struct cond *conds;
    size_t n_conds;
    const struct policy_tier *tiers;
    size_t n_tiers;
    struct policy_actions actions[POLICY_PRIORITIES];
    int has_actions[POLICY_PRIORITIES];
    struct policy_capture capture[POLICY_PRIORITIES];
    struct log_ratelimit rl_regex; /* written at match time */
};

const char *policy_scope_name(enum policy_scope s);

struct mapping_set {
    int refs;
    struct mapping *maps;
    size_t n, cap;
    size_t n_files;
    struct arena_chunk *arena;
    struct regex_node *regexes;
    struct owned_node *owned; /* templates, secrets: freed with the set (mload_own) */
    struct policy *policies;  /* policy_load.c */
    size_t n_policies;
    int64_t longest_window_s; /* of the policies' COUNTs; 0: nothing counts */
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

/* ---- loading, shared by mapping_load.c and policy_load.c ---- */

struct json_object;
struct ebuf;

/* Errors go to json_file_error(&ld->rep, ...): one fails the load, after
 * every problem is reported. rep.file is in the arena: mappings and
 * policies keep it. */
struct mload {
    struct json_file_report rep;
    struct mapping_set *set;
    unsigned regex_flags; /* REGEX_NO_JIT, for every regex */
    int decision_fields;  /* "decision.rule" ... are fields (policies) */
};

/* Something the set owns besides its arena and regexes: freed (free(p,
 * len)) with it. Never fails. */
void mload_own(struct mapping_set *set, void (*free_fn)(void *p, size_t len), void *p, size_t len);

/* The set's arena: never fails (out of memory while loading aborts). */
void *mload_alloc(struct mapping_set *set, size_t n);
char *mload_strndup(struct mapping_set *set, const char *s, size_t len);

void mload_warning(struct mload *ld, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int mload_name_in(const char *const *names, const char *name); /* index, or -1 */
/* Reports each key of obj that is not in known (NULL-ended). */
void mload_check_keys(struct mload *ld, const char *path, struct json_object *obj,
                      const char *const *known);
int mload_key(struct json_object *obj, const char *name, struct json_object **v);
/* A string without NUL, at most MAPPING_MAX_TEXT bytes, copied into the
 * arena; STR_ABSENT after reporting otherwise. */
struct str mload_text(struct mload *ld, const char *path, struct json_object *v, int allow_empty);
void mload_bool(struct mload *ld, const char *path, struct json_object *v, int *out);
/* A non-empty array, or NULL after reporting. */
struct json_object *mload_array(struct mload *ld, const char *path, struct json_object *v);
int mload_is_object(struct mload *ld, const char *path, struct json_object *v);
void mload_field(struct mload *ld, const char *path, struct json_object *v, struct event_field *out,
                 const char **name);
const char *mload_label(struct mload *ld, const char *name, size_t i, int indexed);
/* Loads every file the globs name (each once, by realpath) with load,
 * which returns its problems; what names the kind in log lines
 * ("mapping", "policy"), key the config key of the globs ("mappings",
 * "policies"): a glob with a wildcard that matches nothing is a warning,
 * one without is an error. Returns the problems. */
int mload_files(struct mapping_set *set, char *const *globs, size_t n, unsigned regex_flags,
                const char *what, const char *key,
                int (*load)(struct mapping_set *, const char *, unsigned));

/* One condition object; a "when" array (cheap tests first). */
void mload_condition(struct mload *ld, const char *path, struct json_object *obj, struct cond *c);
void mload_conditions(struct mload *ld, const char *path, struct json_object *v,
                      const struct cond **out, size_t *n_out);

/* ---- matching, shared by mapping_match.c and policy_match.c ---- */

/* Where a condition lives, for the log line of a regex that could not
 * finish: "FILE: mappings[3] (mapping \"x\"): ...". */
struct cond_site {
    /* A policy's: the decision's mapping, rule, event and user, indexed by
     * enum cond_decision; NULL for a mapping. */
    const struct str *decision;
    const char *file;
    const char *list; /* "mappings", "policies" */
    size_t index;
    const char *name;
    const char *kind; /* "mapping", "policy" */
    struct log_ratelimit *rl_regex;
};

/* Whether c holds for m; when not and eb is set, why is appended. */
int cond_holds(const struct cond_site *site, const struct cond *c, struct mapping_matcher *mm,
               const struct message *m, struct ebuf *eb);

/* ---- text helpers shared by loading and matching ---- */

static inline int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static inline int text_cmp(struct str a, struct str b, int ignore_case)
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

static inline int text_eq(struct str a, struct str b, int ignore_case)
{
    return a.len == b.len && text_cmp(a, b, ignore_case) == 0;
}

/* A user text with a control character is no usable identifier (and
 * would read differently in every log and API it reaches): C0, DEL, and the
 * C1 controls U+0080..U+009F (C2 80..C2 9F in UTF-8: NEL, CSI...), which
 * are valid UTF-8 but act as controls in terminals and log viewers. */
static inline int has_control(struct str s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x20 || c == 0x7f ||
            (c == 0xC2 && i + 1 < s.len && ((unsigned char)s.p[i + 1] & 0xE0) == 0x80))
            return 1;
    }
    return 0;
}

/* ---- the explain line (mapping_explain.c) ---- */

/* The explain line in the making; NULL on the hot path. Once something
 * did not fit, the line is full: nothing after a gap is appended. */
struct ebuf {
    char *p;
    size_t len, cap;
    int full;
};

/* Back to len (a mark taken before), the rest forgotten. */
static inline void eb_rewind(struct ebuf *eb, size_t len)
{
    eb->len = len;
    eb->full = 0;
    eb->p[len] = '\0';
}

void eb_printf(struct ebuf *eb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends p[0..n) whole, or nothing (and the line is full): an escape is
 * never cut in two. */
void eb_put(struct ebuf *eb, const char *p, size_t n);

/* A value from the message (or the file), quoted and cut to QUOTE_MAX
 * bytes at a UTF-8 character boundary (QUOTED_MAX bytes at most). '"' and
 * '\\' are escaped so that the value cannot end its quotes and write a
 * second value, and a NUL as \x00 so it does not end the line; the printer
 * escapes other control characters (mapping.h). */
void eb_quote(struct ebuf *eb, struct str v);

/* Explains a regex that ran and did not match (label and field already
 * written); rc is regex_match's. */
void eb_regex_miss(struct ebuf *eb, const struct regex *re, int rc);

/* Explains condition c that does not hold: v is the field's value (absent
 * when v.p is NULL), rc what its regex returned. */
void eb_cond_miss(struct ebuf *eb, const struct cond *c, const struct message *m, struct str v,
                  int rc);

/* Rewrites eb as the "yes: ..." line of decision d of mp; event_src is
 * NULL when the event is the rule. */
void eb_decided(struct ebuf *eb, const struct mapping *mp, const struct mapping_decision *d,
                const struct source *rule_src, const struct source *user_src,
                const struct source *event_src);

#endif
