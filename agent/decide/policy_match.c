/* Running policies over a decision (policy.h): count it, find the policy
 * and the tier, write the decision's policy block. On a worker's thread,
 * once per decision (not per message); nothing is allocated once the
 * block writer has grown. */
#include "mapping_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "correlate.h"
#include "decision.h"
#include "errors.h"

/* The correlation key of scope: the first 64 bits of SHA-256 over the
 * scope's name and its texts, user and host in ASCII lower case (a
 * directory compares them without case). */
static uint64_t corr_key(struct decision_hasher *h, enum policy_scope scope, struct str user,
                         struct str host, struct str rule)
{
    char luser[MAPPING_MAX_VALUE], lhost[256];
    struct str parts[3];
    size_t n = 0;

    user.len = user.len < sizeof(luser) ? user.len : sizeof(luser);
    host.len = host.len < sizeof(lhost) ? host.len : sizeof(lhost);
    for (size_t i = 0; i < user.len; i++)
        luser[i] = (char)ascii_lower((unsigned char)user.p[i]);
    for (size_t i = 0; i < host.len; i++)
        lhost[i] = (char)ascii_lower((unsigned char)host.p[i]);
    parts[n++] = str_make(policy_scope_name(scope), strlen(policy_scope_name(scope)));
    if (scope == POLICY_BY_HOST)
        parts[n++] = str_make(lhost, host.len);
    else
        parts[n++] = str_make(luser, user.len);
    if (scope == POLICY_BY_USER_RULE)
        parts[n++] = rule;
    return decision_hash64(h, parts, n);
}

/* A policy's COUNT: the alert was counted already. */
static int count_holds(const struct cond *c, struct correlate *corr, const uint64_t *keys,
                       int64_t now_s, uint32_t *seen)
{
    *seen =
        corr != NULL ? correlate_count(corr, keys[c->count.scope], now_s, c->count.window_s) : 0;
    return *seen >= c->count.at_least;
}

static void why_count(struct ebuf *eb, const struct cond *c, uint32_t seen)
{
    static const char *const whose[POLICY_SCOPES] = {"the user", "the host", "the user and rule"};

    eb_printf(eb, "%s %" PRIu32 " alerts for %s within %lld min (at least %" PRIu32 ")", c->label,
              seen, whose[c->count.scope], (long long)(c->count.window_s / 60), c->count.at_least);
}

/* A condition that held, for the why line: its value and its test. */
static void why_held(struct ebuf *eb, const struct cond *c, const struct message *m,
                     const struct str *decision)
{
    static const char *const ops[] = {">", ">=", "<", "<="};
    struct event_num num;
    struct str v = c->on == COND_ON_MESSAGE ? event_field_get(&c->field, m, &num) : decision[c->on];

    eb_printf(eb, "%s %s", c->label, c->field_name);
    if (c->test == COND_ABSENT || v.p == NULL) {
        eb_printf(eb, " absent");
        return;
    }
    eb_printf(eb, " ");
    eb_quote(eb, v);
    if (c->test >= COND_GT && c->test <= COND_LE)
        eb_printf(eb, " %s %g", ops[c->test - COND_GT], c->number);
}

/* Whether tier t holds; why (eb) says how, or why not. */
static int tier_holds(const struct policy *p, const struct policy_tier *t,
                      const struct cond_site *site, struct mapping_matcher *mm,
                      const struct message *m, struct correlate *corr, const uint64_t *keys,
                      int64_t now_s, struct ebuf *eb)
{
    eb_printf(eb, "%s", t->label);
    if (t->n_conds == 0)
        eb_printf(eb, " (always)");
    for (size_t i = 0; i < t->n_conds; i++) {
        const struct cond *c = &t->conds[i];
        uint32_t seen;

        eb_printf(eb, i == 0 ? ": " : "; ");
        if (c->on == COND_ON_COUNT) {
            int ok = count_holds(c, corr, keys, now_s, &seen);

            why_count(eb, c, seen);
            if (!ok)
                return 0;
        } else if (cond_holds(site, c, mm, m, eb)) {
            why_held(eb, c, m, site->decision);
        } else {
            return 0;
        }
    }
    (void)p;
    return 1;
}

/* The captured fields of the priority, each cut at POLICY_MAX_FIELD_VALUE
 * bytes on a UTF-8 boundary. */
static void write_fields(struct jsonw *w, const struct policy_capture *cap, const struct message *m)
{
    jsonw_key_literal(w, "fields");
    jsonw_object_begin(w);
    for (size_t i = 0; i < cap->n; i++) {
        struct event_num num;
        struct str v = event_field_get(&cap->fields[i], m, &num);

        if (v.p == NULL)
            continue;
        if (v.len > POLICY_MAX_FIELD_VALUE) {
            v.len = POLICY_MAX_FIELD_VALUE;
            while (v.len > 0 && ((unsigned char)v.p[v.len] & 0xC0) == 0x80)
                v.len--;
        }
        jsonw_member(w, cap->names[i], v);
    }
    jsonw_object_end(w);
}

static void write_corr(struct jsonw *w, const uint64_t *keys, const int *used)
{
    char hex[17];

    jsonw_key_literal(w, "corr");
    jsonw_object_begin(w);
    for (int s = 0; s < POLICY_SCOPES; s++) {
        if (!used[s])
            continue;
        snprintf(hex, sizeof(hex), "%016" PRIx64, keys[s]);
        jsonw_member(w,
                     str_make(policy_scope_name((enum policy_scope)s),
                              strlen(policy_scope_name((enum policy_scope)s))),
                     str_make(hex, 16));
    }
    jsonw_object_end(w);
}

int policy_decide(const struct mapping_set *set, struct mapping_matcher *mm,
                  const struct message *m, const struct policy_input *in, struct correlate *c,
                  struct decision_hasher *h, struct jsonw *w, const struct policy_explain *explain)
{
    const struct mapping_decision *d = in->d;
    const struct str decision[] = {STR_ABSENT, str_make(d->mapping, strlen(d->mapping)), d->rule,
                                   d->event, d->user};
    uint64_t keys[POLICY_SCOPES] = {0};
    int used[POLICY_SCOPES] = {0};
    char why[POLICY_WHY_MAX];
    int counts = set->longest_window_s > 0, matched = 0;

    if (set->n_policies == 0 && !counts)
        return 0;
    if (counts) {
        /* Every decided alert counts, whichever policy (if any) it meets. */
        for (int s = 0; s < POLICY_SCOPES; s++) {
            used[s] = 1;
            keys[s] = corr_key(h, (enum policy_scope)s, d->user, in->host, d->rule);
            if (c != NULL)
                correlate_add(c, keys[s], in->now_s, set->longest_window_s);
        }
    }
    jsonw_reset(w);
    jsonw_object_begin(w);
    for (size_t i = 0; i < set->n_policies; i++) {
        struct policy *p = &set->policies[i];
        struct cond_site site = {decision, p->file,  "policies",  p->index,
                                 p->name,  "policy", &p->rl_regex};
        struct ebuf eb = {why, 0, sizeof(why), 0};
        size_t t, j;

        why[0] = '\0';
        eb_printf(&eb, "when: ");
        for (j = 0; j < p->n_conds; j++) {
            if (!cond_holds(&site, &p->conds[j], mm, m, &eb))
                break;
        }
        if (j < p->n_conds) {
            if (explain != NULL) {
                char line[POLICY_WHY_MAX + 128];

                snprintf(line, sizeof(line), "%s: no: %s", p->name, why);
                explain->line(explain->arg, line);
            }
            continue;
        }
        for (t = 0; t < p->n_tiers; t++) {
            eb_rewind(&eb, 0);
            if (tier_holds(p, &p->tiers[t], &site, mm, m, c, keys, in->now_s, &eb))
                break;
            if (explain != NULL) {
                char line[POLICY_WHY_MAX + 128];

                snprintf(line, sizeof(line), "%s: no: %s", p->name, why);
                explain->line(explain->arg, line);
            }
        }
        if (t == p->n_tiers)
            continue;
        if (explain != NULL) {
            const struct policy_actions *acts = &p->actions[p->tiers[t].priority];
            char line[POLICY_WHY_MAX + 1024];
            size_t len =
                (size_t)snprintf(line, sizeof(line), "%s: yes: %s by %s; actions:", p->name,
                                 policy_priority_name(p->tiers[t].priority), why);

            for (size_t k = 0; k < acts->n && len < sizeof(line); k++)
                len +=
                    (size_t)snprintf(line + len, sizeof(line) - len, "%s %s (%s)", k > 0 ? "," : "",
                                     acts->v[k].name, policy_action_type_name(acts->v[k].type));
            if (acts->n == 0 && len < sizeof(line))
                snprintf(line + len, sizeof(line) - len, " none");
            explain->line(explain->arg, line);
        }
        jsonw_member_literal(w, "policy", str_make(p->name, strlen(p->name)));
        jsonw_member_literal(w, "priority",
                             str_make(policy_priority_name(p->tiers[t].priority),
                                      strlen(policy_priority_name(p->tiers[t].priority))));
        jsonw_key_literal(w, "tier");
        jsonw_int(w, (long long)t);
        jsonw_member_literal(w, "why", str_make(why, strlen(why)));
        write_fields(w, &p->capture[p->tiers[t].priority], m);
        matched = 1;
        break;
    }
    if (explain != NULL && !matched)
        explain->line(explain->arg, "no policy applies: one SafeTitan event");
    if (counts)
        write_corr(w, keys, used);
    jsonw_object_end(w);
    return 1;
}

/* ---- reading a block back ---- */

static struct str json_text(struct json_object *obj, const char *key)
{
    struct json_object *v;

    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return STR_ABSENT;
    return str_make(json_object_get_string(v), (size_t)json_object_get_string_len(v));
}

int policy_block_read(struct str block, struct policy_block *out)
{
    struct json_tokener *tok;
    struct json_object *root, *v;
    int prio;

    memset(out, 0, sizeof(*out));
    tok = json_tokener_new();
    if (tok == NULL)
        return ERR_NOMEM;
    root = json_tokener_parse_ex(tok, block.p, (int)block.len);
    if (root == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != block.len ||
        !json_object_is_type(root, json_type_object)) {
        json_tokener_free(tok);
        json_object_put(root);
        return ERR_INVALID;
    }
    json_tokener_free(tok);
    out->json = root;
    out->policy = json_text(root, "policy");
    if (out->policy.p == NULL)
        return 0;
    out->why = json_text(root, "why");
    prio = policy_priority_parse(json_text(root, "priority"));
    if (prio < 0 || !json_object_object_get_ex(root, "tier", &v) ||
        !json_object_is_type(v, json_type_int)) {
        policy_block_free(out);
        return ERR_INVALID;
    }
    out->priority = (enum policy_priority)prio;
    out->tier = json_object_get_int(v);
    return 0;
}

void policy_block_free(struct policy_block *b)
{
    json_object_put(b->json);
    b->json = NULL;
}

struct str policy_block_field(const struct policy_block *b, struct str name)
{
    struct json_object *fields;
    char key[256];

    if (b->json == NULL || name.len >= sizeof(key) ||
        !json_object_object_get_ex(b->json, "fields", &fields))
        return STR_ABSENT;
    memcpy(key, name.p, name.len);
    key[name.len] = '\0';
    return json_text(fields, key);
}

size_t policy_block_corr(const struct policy_block *b, uint64_t keys[POLICY_SCOPES],
                         enum policy_scope scopes[POLICY_SCOPES])
{
    struct json_object *corr;
    size_t n = 0;

    if (b->json == NULL || !json_object_object_get_ex(b->json, "corr", &corr))
        return 0;
    for (int s = 0; s < POLICY_SCOPES; s++) {
        struct str hex = json_text(corr, policy_scope_name((enum policy_scope)s));
        char buf[17], *end;

        if (hex.len != 16)
            continue;
        memcpy(buf, hex.p, 16);
        buf[16] = '\0';
        keys[n] = strtoull(buf, &end, 16);
        if (*end != '\0')
            continue;
        scopes[n++] = (enum policy_scope)s;
    }
    return n;
}
