/* The explain lines of replay --explain (mapping.h): formatted only when
 * someone asked, never on the hot path. */
#include "mapping_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void eb_printf(struct ebuf *eb, const char *fmt, ...)
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

void eb_put(struct ebuf *eb, const char *p, size_t n)
{
    if (eb->full || n >= eb->cap - eb->len) {
        eb->full = 1;
        return;
    }
    memcpy(eb->p + eb->len, p, n);
    eb->len += n;
    eb->p[eb->len] = '\0';
}

void eb_quote(struct ebuf *eb, struct str v)
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
    if (f->kind == EVENT_JSON && m->payload != PAYLOAD_JSON)
        return " (the message is not a JSON object)";
    if (f->kind >= EVENT_SYSLOG_PRI && f->kind <= EVENT_SYSLOG_SD &&
        m->syslog.format == SYSLOG_NONE)
        return " (the message has no syslog header)";
    return "";
}

void eb_regex_miss(struct ebuf *eb, const struct regex *re, int rc)
{
    struct str lit = regex_literal(re);

    if (rc == REGEX_LITERAL_MISS) {
        eb_printf(eb, " does not contain ");
        eb_quote(eb, lit);
        eb_printf(eb, " (the regex's required literal)");
    } else
        eb_printf(eb, " does not match /%s/", regex_pattern(re));
}

void eb_cond_miss(struct ebuf *eb, const struct cond *c, const struct message *m, struct str v,
                  int rc)
{
    eb_printf(eb, "%s %s", c->label, c->field_name);
    if (v.p == NULL) {
        eb_printf(eb, " is absent%s", absent_hint(&c->field, m));
        return;
    }
    if (c->test == COND_REGEX) {
        eb_regex_miss(eb, c->re, rc);
        return;
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
    } else if (c->test >= COND_GT && c->test <= COND_LE) {
        static const char *const ops[] = {">", ">=", "<", "<="};

        eb_printf(eb, ", expected a number %s %g", ops[c->test - COND_GT], c->number);
    } else {
        eb_printf(eb, ", expected absent");
    }
}

static void eb_source(struct ebuf *eb, const struct source *s)
{
    if (s->value.p != NULL)
        eb_printf(eb, "%s value", s->label);
    else
        eb_printf(eb, "%s %s%s%s", s->label, s->field_name, s->re != NULL ? " regex" : "",
                  s->table != NULL ? " table" : "");
}

void eb_decided(struct ebuf *eb, const struct mapping *mp, const struct mapping_decision *d,
                const struct source *rule_src, const struct source *user_src,
                const struct source *event_src)
{
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
