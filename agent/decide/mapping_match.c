/* Matching (mapping.h): the hot path. A loaded set is read with one
 * thread's regex env and scratch numbers and never allocates; explain text
 * is only formatted (mapping_explain.c) when someone asked for it. Every
 * function a message goes through is here, in one translation unit, so the
 * compiler can inline across them. */
#include "mapping_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "errors.h"

/* What a slot's text is called in the log line of a text over the cap. */
static const char *const slot_texts[SLOT_COUNT] = {"rule", "user identifier", "event"};

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

static struct cond_site mapping_site(struct mapping *mp)
{
    return (struct cond_site){NULL,     mp->file,  "mappings",   mp->index,
                              mp->name, "mapping", &mp->rl_regex};
}

static void count_stat(struct mapping_matcher *mm, enum stats_counter c)
{
    if (mm->stats != NULL)
        stats_add(mm->stats, c, 1);
}

/* regex_match, with the bookkeeping of a regex that could not finish: a
 * limit or a PCRE2 error is counted, logged (once a minute per mapping),
 * explained, and the caller reads it as "did not match". label and
 * field_name say which condition or source ran it. */
static int run_regex(const struct cond_site *site, struct mapping_matcher *mm,
                     const struct regex *re, struct str subject, const char *label,
                     const char *field_name, struct ebuf *eb)
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
    log_limited(site->rl_regex, LOG_LVL_WARNING,
                "%s: %s[%zu] (%s \"%s\"): %s %s: %s, treated as no match", site->file, site->list,
                site->index, site->kind, site->name, label, field_name, what);
    if (eb != NULL)
        eb_printf(eb, "%s %s: %s, counted as no match", label, field_name, what);
    return rc;
}

static int value_listed(const struct cond *c, struct str v)
{
    for (size_t i = 0; i < c->n_values; i++) {
        if (text_eq(v, c->values[i], c->ignore_case))
            return 1;
    }
    return 0;
}

/* The field's text as a decimal number (spaces around allowed: "  55 "),
 * or 0 when it is not one. A numeric field (event_num) is formatted by
 * event_field_get, so it reads back here. */
static int read_number(struct str v, double *out)
{
    char buf[64], *end;
    struct str t = str_trim_blanks(v);

    if (t.len == 0 || t.len >= sizeof(buf))
        return 0;
    memcpy(buf, t.p, t.len);
    buf[t.len] = '\0';
    /* strtod would take "nan", "inf" and hex: a score is plain decimal. */
    for (size_t i = 0; i < t.len; i++) {
        if (strchr("0123456789+-.eE", buf[i]) == NULL)
            return 0;
    }
    errno = 0;
    *out = strtod(buf, &end);
    return end == buf + t.len && errno == 0;
}

static int compare_holds(enum cond_test test, double v, double limit)
{
    switch (test) {
    case COND_GT:
        return v > limit;
    case COND_GE:
        return v >= limit;
    case COND_LT:
        return v < limit;
    default:
        return v <= limit;
    }
}

int cond_holds(const struct cond_site *site, const struct cond *c, struct mapping_matcher *mm,
               const struct message *m, struct ebuf *eb)
{
    double number;
    struct event_num num;
    struct str v =
        c->on == COND_ON_MESSAGE ? event_field_get(&c->field, m, &num) : site->decision[c->on];
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
        rc = run_regex(site, mm, c->re, v, c->label, c->field_name, eb);
        if (rc == REGEX_MATCH)
            return 1;
        if (rc < 0)
            return 0; /* explained by run_regex */
        break;
    case COND_GT:
    case COND_GE:
    case COND_LT:
    case COND_LE:
        if (v.p != NULL && read_number(v, &number) && compare_holds(c->test, number, c->number))
            return 1;
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
    eb_cond_miss(eb, c, m, v, rc);
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
        struct cond_site site = mapping_site(mp);

        rc = run_regex(&site, mm, s->re, v, s->label, s->field_name, eb);
        if (rc < 0)
            return YIELD_FAILED;
        if (rc != REGEX_MATCH) {
            if (eb != NULL) {
                eb_printf(eb, "%s %s", s->label, s->field_name);
                eb_regex_miss(eb, s->re, rc);
            }
            return YIELD_NOTHING;
        }
        v = regex_group(s->re, mm->env, v, mapping_slot_names[slot]);
        if (v.p == NULL) {
            if (eb != NULL)
                eb_printf(eb, "%s %s: group (?<%s>) did not take part", s->label, s->field_name,
                          mapping_slot_names[slot]);
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
        struct cond_site site = mapping_site(mp);

        if (!cond_holds(&site, &mp->conds[i], mm, m, eb))
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
    if (eb != NULL)
        eb_decided(eb, mp, d, rule_src, user_src, event_src);
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
