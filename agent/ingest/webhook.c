#include "webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/escape.h"
#include "errors.h"

/* Query parameters a request may carry: far more than any SIEM sends, few
 * enough that the duplicate check stays cheap. */
#define WEBHOOK_PARAMS_MAX 64
/* How much of a parameter's name an error shows. */
#define WEBHOOK_NAME_SHOWN 40

struct webhook_route_def {
    enum webhook_route route;
    const char *segs[4]; /* NULL: {source} */
    size_t n_segs;
    const char *source; /* NULL: the {source} segment */
    const char *allow;
    int get_ok; /* GET reaches it (the query form) */
};

static const struct webhook_route_def webhook_routes[] = {
    {WEBHOOK_ALERTS, {"v1", "alerts", NULL}, 3, NULL, "POST", 0},
    {WEBHOOK_LOGPOINT, {"api", "SIEM", "logpoint", "alert"}, 4, "logpoint", "GET, POST", 1},
    {WEBHOOK_LOGRHYTHM,
     {"api", "SIEM", "logrhythm", "smartresponse"},
     4,
     "logrhythm",
     "GET, POST",
     1},
    {WEBHOOK_DTEX, {"api", "SIEM", "dtex", "alert"}, 4, "dtex", "POST", 0},
    {WEBHOOK_EVENT, {"api", "event", NULL, "alert"}, 4, NULL, "GET, POST", 1},
    {WEBHOOK_APPROVAL, {"v1", "approvals", NULL}, 3, NULL, "GET, POST", 1},
};

/* Frees the code, wiped first (explicit_bzero: not optimised away). */
static void webhook_code_free(char *code, size_t len)
{
    explicit_bzero(code, len);
    free(code);
}

static int webhook_source_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* Matches path's segments against def; fills w's source. */
static int webhook_path_is(const struct webhook_route_def *def, const struct str *segs,
                           size_t n_segs, struct webhook_request *w)
{
    if (n_segs != def->n_segs)
        return 0;
    for (size_t i = 0; i < n_segs; i++) {
        if (def->segs[i] == NULL) {
            if (segs[i].len == 0 || segs[i].len > WEBHOOK_SOURCE_MAX)
                return 0;
            for (size_t k = 0; k < segs[i].len; k++) {
                if (!webhook_source_char(segs[i].p[k]))
                    return 0;
            }
            continue;
        }
        if (strlen(def->segs[i]) != segs[i].len ||
            strncasecmp(def->segs[i], segs[i].p, segs[i].len) != 0)
            return 0;
    }
    for (size_t i = 0; i < n_segs; i++) {
        if (def->segs[i] == NULL) {
            memcpy(w->source, segs[i].p, segs[i].len);
            w->source[segs[i].len] = '\0';
        }
    }
    if (def->source != NULL)
        snprintf(w->source, sizeof(w->source), "%s", def->source);
    return 1;
}

static int webhook_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes in[0..len) ('+' is a space) to out. Returns the decoded
 * length, or -1 for a bad escape, %00 or invalid UTF-8. */
static long webhook_decode(const char *in, size_t len, char *out)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (in[i] == '+') {
            out[n++] = ' ';
        } else if (in[i] != '%') {
            out[n++] = in[i];
        } else {
            int hi = len - i >= 3 ? webhook_hex(in[i + 1]) : -1;
            int lo = len - i >= 3 ? webhook_hex(in[i + 2]) : -1;

            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        }
    }
    for (size_t i = 0; i < n;) {
        size_t s = utf8_sequence_len((const unsigned char *)out + i, n - i);

        if (s == 0 || out[i] == '\0')
            return -1;
        i += s;
    }
    return (long)n;
}

/* A parameter's name as an error shows it: as sent, cut short, with
 * anything outside printable ASCII (and '"', '\\') as '?'. */
static void webhook_name_shown(const char *p, size_t len, char out[WEBHOOK_NAME_SHOWN + 1])
{
    size_t n = len < WEBHOOK_NAME_SHOWN ? len : WEBHOOK_NAME_SHOWN;

    for (size_t i = 0; i < n; i++)
        out[i] = p[i] > 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\' ? p[i] : '?';
    out[n] = '\0';
}

/* Calls each(name, value) for the "name=value" segments of q, in order;
 * stops at the first nonzero it returns and returns that. */
static int webhook_each_param(struct str q,
                              int (*each)(struct str name, struct str value, void *arg), void *arg)
{
    for (size_t pos = 0; pos < q.len;) {
        const char *amp = memchr(q.p + pos, '&', q.len - pos);
        size_t end = amp != NULL ? (size_t)(amp - q.p) : q.len;
        const char *eq = memchr(q.p + pos, '=', end - pos);
        size_t name_end = eq != NULL ? (size_t)(eq - q.p) : end;
        int rc;

        if (end > pos) { /* "a=1&&b=2" has an empty segment */
            rc = each(str_make(q.p + pos, name_end - pos),
                      eq != NULL ? str_make(eq + 1, end - name_end - 1) : str_make("", 0), arg);
            if (rc != 0)
                return rc;
        }
        pos = end + 1;
    }
    return 0;
}

/* The parameter named exactly "code" (as sent: its name is never
 * escaped): read apart from the others and first, so that a request is
 * authenticated before anything else of its query is looked at. */
static int webhook_code_param(struct str name, struct str value, void *arg)
{
    struct webhook_request *w = arg;
    long len;

    if (name.len != 4 || memcmp(name.p, "code", 4) != 0)
        return 0;
    if (w->code != NULL) { /* sent twice: neither counts */
        webhook_code_free(w->code, w->code_len + 1);
        w->code = NULL;
        return 1;
    }
    w->code = malloc(value.len + 1);
    if (w->code == NULL)
        return 1;
    len = webhook_decode(value.p, value.len, w->code);
    if (len <= 0) {
        webhook_code_free(w->code, value.len + 1);
        w->code = NULL;
        return 1;
    }
    w->code[len] = '\0';
    w->code_len = (size_t)len;
    return 0;
}

struct webhook_query_state {
    struct webhook_request *w;
    size_t used, n_params, offs[WEBHOOK_PARAMS_MAX];
    char *why;
    size_t cap;
};

/* One parameter (but the code) decoded into the pairs. */
static int webhook_query_param(struct str name, struct str value, void *arg)
{
    struct webhook_query_state *st = arg;
    char *pairs = st->w->query_buf, shown[WEBHOOK_NAME_SHOWN + 1];
    long nlen, vlen;

    webhook_name_shown(name.p, name.len, shown);
    if (st->n_params == WEBHOOK_PARAMS_MAX) {
        snprintf(st->why, st->cap, "more than %d query parameters", WEBHOOK_PARAMS_MAX);
        return 400;
    }
    nlen = webhook_decode(name.p, name.len, pairs + st->used);
    if (nlen <= 0) {
        snprintf(st->why, st->cap, "query parameter \"%s\": %s", shown,
                 nlen == 0 ? "empty name" : "bad %-escape, %00 or invalid UTF-8 in its name");
        return 400;
    }
    pairs[st->used + (size_t)nlen] = '\0';
    if (strcasecmp(pairs + st->used, "code") == 0)
        return 0; /* "Code", "%63ode": never a field, whatever authenticates */
    vlen = webhook_decode(value.p, value.len, pairs + st->used + (size_t)nlen + 1);
    if (vlen < 0) {
        snprintf(st->why, st->cap, "query parameter \"%s\": bad %%-escape, %%00 or invalid UTF-8",
                 shown);
        return 400;
    }
    for (size_t i = 0; i < st->n_params; i++) {
        if (strcmp(pairs + st->offs[i], pairs + st->used) == 0) {
            snprintf(st->why, st->cap, "query parameter \"%s\" is given twice", shown);
            return 400;
        }
    }
    st->offs[st->n_params++] = st->used;
    st->used += (size_t)nlen + (size_t)vlen + 2;
    pairs[st->used - 1] = '\0';
    return 0;
}

/* The query q into w: the code apart, the rest as pairs. */
static int webhook_query(struct webhook_request *w, struct str q, char *why, size_t cap)
{
    struct webhook_query_state st = {.w = w, .why = why, .cap = cap};
    int rc;

    if (webhook_each_param(q, webhook_code_param, w) != 0) {
        snprintf(why, cap, "query parameter \"code\": given twice, or not readable");
        return 400;
    }
    /* Decoded text is never longer than what it decodes; a pair adds two
     * NULs, in place of its '=' and '&' when it has them. */
    w->query_buf = malloc(2 * q.len + 2);
    if (w->query_buf == NULL) {
        snprintf(why, cap, "out of memory");
        return 503;
    }
    rc = webhook_each_param(q, webhook_query_param, &st);
    if (rc == 0 && st.used > 0)
        w->query = str_make(w->query_buf, st.used);
    return rc;
}

int webhook_target(struct webhook_request *w, enum webhook_method method, const char *target,
                   char *why, size_t cap)
{
    struct str segs[5];
    size_t n_segs = 0, path_len = strcspn(target, "?#");
    const char *qs = target[path_len] == '?' ? target + path_len + 1 : NULL;
    const struct webhook_route_def *def = NULL;
    int query_status = 0;

    memset(w, 0, sizeof(*w));
    if (qs != NULL)
        query_status = webhook_query(w, str_make(qs, strcspn(qs, "#")), why, cap);
    if (target[0] == '/') {
        for (size_t pos = 1; pos <= path_len && n_segs < 5;) {
            size_t end = pos;

            while (end < path_len && target[end] != '/')
                end++;
            segs[n_segs++] = str_make(target + pos, end - pos);
            pos = end + 1;
        }
    }
    for (size_t i = 0; n_segs < 5 && i < sizeof(webhook_routes) / sizeof(webhook_routes[0]); i++) {
        if (webhook_path_is(&webhook_routes[i], segs, n_segs, w)) {
            def = &webhook_routes[i];
            break;
        }
    }
    if (def == NULL) {
        snprintf(why, cap,
                 "no such route: POST /v1/alerts/{source}, /api/SIEM/logpoint/alert, "
                 "/api/SIEM/logrhythm/smartresponse, /api/SIEM/dtex/alert, "
                 "/api/event/{source}/alert");
        return 404;
    }
    w->route = def->route;
    w->allow = def->allow;
    if (method == WEBHOOK_OTHER || (method == WEBHOOK_GET && !def->get_ok)) {
        snprintf(why, cap, "method not allowed: %s", def->allow);
        return 405;
    }
    return query_status;
}

static int webhook_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static struct str webhook_trim(const char *p, size_t len)
{
    while (len > 0 && webhook_blank(p[0])) {
        p++;
        len--;
    }
    while (len > 0 && webhook_blank(p[len - 1]))
        len--;
    return str_make(p, len);
}

/* The elements of a validated array a, into out[0..) when out is not NULL.
 * Returns how many. */
static size_t webhook_array_split(struct str a, struct str *out)
{
    size_t n = 0, start = 1, depth = 0;
    int in_string = 0;

    if (webhook_trim(a.p + 1, a.len - 2).len == 0)
        return 0;
    for (size_t i = 1; i < a.len; i++) {
        char c = a.p[i];

        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
            continue;
        }
        if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if ((c == ',' && depth == 0) || ((c == '}' || c == ']') && depth-- == 0)) {
            if (out != NULL)
                out[n] = webhook_trim(a.p + start, i - start);
            n++;
            start = i + 1;
        }
    }
    return n;
}

/* Checks one alert's object (what and i name it in errors). */
static int webhook_check_object(struct str o, const struct webhook_limits *lim, const char *what,
                                size_t i, char *why, size_t cap)
{
    if (json_kind_of(o.p, o.len) != JSON_OBJECT) {
        snprintf(why, cap, "%s %zu is not a JSON object", what, i);
        return 400;
    }
    if (o.len > lim->max_alert_bytes) {
        snprintf(why, cap, "%s %zu is longer than limits.max_message_bytes (%zu)", what, i,
                 lim->max_alert_bytes);
        return 400;
    }
    return 0;
}

static int webhook_nomem(char *why, size_t cap)
{
    snprintf(why, cap, "out of memory");
    return 503;
}

/* The elements of the validated array a, allocated into *out. */
static int webhook_elements(struct str a, size_t max, const char *path, struct str **out, size_t *n,
                            char *why, size_t cap)
{
    *n = webhook_array_split(a, NULL);
    if (*n > max) {
        snprintf(why, cap, "%s: %zu elements, more than max_alerts (%zu)", path, *n, max);
        return 400;
    }
    *out = calloc(*n > 0 ? *n : 1, sizeof(**out));
    if (*out == NULL)
        return webhook_nomem(why, cap);
    webhook_array_split(a, *out);
    return 0;
}

/* One object, an array of objects or JSON lines into w's alerts. */
static int webhook_objects(struct webhook_request *w, struct str body,
                           const struct webhook_limits *lim, struct json_limits *jl, char *why,
                           size_t cap)
{
    struct json_error err;
    size_t lines = 1;
    const char *nl;
    int rc;

    if (json_validate(body.p, body.len, jl, &err) == 0) {
        enum json_kind kind = json_kind_of(body.p, body.len);

        if (kind == JSON_OBJECT) {
            w->alerts = malloc(sizeof(*w->alerts));
            if (w->alerts == NULL)
                return webhook_nomem(why, cap);
            w->alerts[0] = body;
            w->n_alerts = 1;
            return webhook_check_object(body, lim, "object", 0, why, cap);
        }
        if (kind != JSON_ARRAY) {
            snprintf(why, cap, "expected a JSON object, an array of objects or JSON lines");
            return 400;
        }
        rc = webhook_elements(body, lim->max_alerts, "$", &w->alerts, &w->n_alerts, why, cap);
        for (size_t i = 0; rc == 0 && i < w->n_alerts; i++)
            rc = webhook_check_object(w->alerts[i], lim, "element", i, why, cap);
        return rc;
    }
    /* Not one document: JSON lines when its first line is an object on
     * its own; otherwise the validator's reason for the whole body. */
    nl = memchr(body.p, '\n', body.len);
    if (nl == NULL || json_validate(body.p, (size_t)(nl - body.p), jl, NULL) != 0 ||
        json_kind_of(body.p, (size_t)(nl - body.p)) != JSON_OBJECT) {
        snprintf(why, cap, "%s", err.text);
        return 400;
    }
    for (const char *p = body.p; (p = memchr(p, '\n', body.len - (size_t)(p - body.p))) != NULL;
         p++)
        lines++;
    w->alerts = calloc(lines, sizeof(*w->alerts));
    if (w->alerts == NULL)
        return webhook_nomem(why, cap);
    for (size_t line = 1, off = 0; off < body.len; line++) {
        const char *end = memchr(body.p + off, '\n', body.len - off);
        size_t len = end != NULL ? (size_t)(end - body.p) - off : body.len - off;
        struct str o = webhook_trim(body.p + off, len);

        off += len + 1;
        if (o.len == 0)
            continue;
        if (w->n_alerts == lim->max_alerts) {
            snprintf(why, cap, "more than max_alerts (%zu) objects", lim->max_alerts);
            return 400;
        }
        if (json_validate(o.p, o.len, jl, &err) != 0) {
            snprintf(why, cap, "line %zu: %s", line, err.text);
            return 400;
        }
        rc = webhook_check_object(o, lim, "line", line, why, cap);
        if (rc != 0)
            return rc;
        w->alerts[w->n_alerts++] = o;
    }
    return 0;
}

/* Appends p[0..len) at out + *at (only measures when out is NULL). */
static void webhook_put(char *out, size_t *at, const char *p, size_t len)
{
    if (out != NULL)
        memcpy(out + *at, p, len);
    *at += len;
}

/* What a DTEX body holds: its dataset array and that array's entries. */
struct webhook_dtex {
    struct str body, dataset;
    struct str *entries;
    size_t n_entries;
};

/* The document of entry e with hit (absent: e as sent; hits: e's "hits"
 * array) written at out + *at (measured when out is NULL): the body with
 * its dataset array replaced by [e'], e' being e with hits replaced by
 * [hit]. */
static void webhook_dtex_doc(const struct webhook_dtex *d, struct str e, struct str hits,
                             struct str hit, char *out, size_t *at)
{
    const char *body_tail = d->dataset.p + d->dataset.len;

    webhook_put(out, at, d->body.p, (size_t)(d->dataset.p - d->body.p));
    webhook_put(out, at, "[", 1);
    if (hit.p == NULL) {
        webhook_put(out, at, e.p, e.len);
    } else {
        webhook_put(out, at, e.p, (size_t)(hits.p - e.p));
        webhook_put(out, at, "[", 1);
        webhook_put(out, at, hit.p, hit.len);
        webhook_put(out, at, "]", 1);
        webhook_put(out, at, hits.p + hits.len, e.len - (size_t)(hits.p - e.p) - hits.len);
    }
    webhook_put(out, at, "]", 1);
    webhook_put(out, at, body_tail, d->body.len - (size_t)(body_tail - d->body.p));
}

/* Every (entry, hit) pair's document: measured into *bytes and counted
 * into *n when out is NULL, else also written to out and sliced into
 * alerts. */
static int webhook_dtex_walk(const struct webhook_dtex *d, const struct webhook_limits *lim,
                             char *out, struct str *alerts, size_t *n, size_t *bytes, char *why,
                             size_t cap)
{
    *n = 0;
    *bytes = 0;
    for (size_t i = 0; i < d->n_entries; i++) {
        struct str e = d->entries[i], hits = STR_ABSENT;
        struct str *each = NULL;
        size_t n_hits = 0;
        enum json_kind kind;

        if (json_kind_of(e.p, e.len) != JSON_OBJECT) {
            snprintf(why, cap, "$.dataset[%zu]: expected an object", i);
            return 400;
        }
        json_lookup(e.p, e.len, STR_LIT("hits"), NULL, &hits, &kind);
        if (kind != JSON_NONE && kind != JSON_NULL && kind != JSON_ARRAY) {
            snprintf(why, cap, "$.dataset[%zu].hits: expected an array", i);
            return 400;
        }
        if (kind == JSON_ARRAY) {
            int rc = webhook_elements(hits, lim->max_alerts, "$.dataset[].hits", &each, &n_hits,
                                      why, cap);
            if (rc != 0)
                return rc;
        }
        for (size_t j = 0; j < (n_hits > 0 ? n_hits : 1); j++) {
            size_t start = *bytes;

            if (*n == lim->max_alerts) {
                free(each);
                snprintf(why, cap, "more than max_alerts (%zu) (dataset entry, hit) pairs",
                         lim->max_alerts);
                return 400;
            }
            webhook_dtex_doc(d, e, hits, n_hits > 0 ? each[j] : STR_ABSENT, out, bytes);
            if (*bytes - start > lim->max_alert_bytes) {
                /* Measured before anything is allocated: with max_alerts,
                 * this bounds what a body's documents take together. */
                free(each);
                snprintf(why, cap,
                         "(dataset entry, hit) %zu: its document (the body around that entry "
                         "and hit) is longer than limits.max_message_bytes (%zu)",
                         *n, lim->max_alert_bytes);
                return 400;
            }
            if (out != NULL)
                alerts[*n] = str_make(out + start, *bytes - start);
            (*n)++;
        }
        free(each);
    }
    return 0;
}

/* A DTEX body: one alert per (dataset entry, hit). */
static int webhook_dtex(struct webhook_request *w, struct str body,
                        const struct webhook_limits *lim, struct json_limits *jl, char *why,
                        size_t cap)
{
    struct webhook_dtex d = {.body = body};
    struct json_error err;
    enum json_kind kind;
    size_t bytes;
    int rc;

    if (json_validate(body.p, body.len, jl, &err) != 0) {
        snprintf(why, cap, "%s", err.text);
        return 400;
    }
    json_lookup(body.p, body.len, STR_LIT("dataset"), NULL, &d.dataset, &kind);
    if (json_kind_of(body.p, body.len) != JSON_OBJECT || kind != JSON_ARRAY) {
        snprintf(why, cap, "$.dataset: expected a JSON object with a \"dataset\" array");
        return 400;
    }
    rc = webhook_elements(d.dataset, lim->max_alerts, "$.dataset", &d.entries, &d.n_entries, why,
                          cap);
    if (rc == 0)
        rc = webhook_dtex_walk(&d, lim, NULL, NULL, &w->n_alerts, &bytes, why, cap);
    if (rc == 0) {
        w->built = malloc(bytes > 0 ? bytes : 1);
        w->alerts = calloc(w->n_alerts > 0 ? w->n_alerts : 1, sizeof(*w->alerts));
        if (w->built == NULL || w->alerts == NULL)
            rc = webhook_nomem(why, cap);
    }
    if (rc == 0)
        rc = webhook_dtex_walk(&d, lim, w->built, w->alerts, &w->n_alerts, &bytes, why, cap);
    for (size_t i = 0; rc == 0 && i < w->n_alerts; i++)
        rc = webhook_check_object(w->alerts[i], lim, "(dataset entry, hit)", i, why, cap);
    free(d.entries);
    return rc;
}

/* Each alert's idempotency_field, copied out (a string with escapes is
 * decoded through a shadow of the alert's size). */
static int webhook_refs(struct webhook_request *w, struct str field, char *why, size_t cap)
{
    size_t total = 0, used = 0;
    char *shadow;

    for (size_t i = 0; i < w->n_alerts; i++)
        total += w->alerts[i].len;
    w->refs = calloc(w->n_alerts > 0 ? w->n_alerts : 1, sizeof(*w->refs));
    w->ref_buf = malloc(total + 1);
    shadow = malloc(total + 1);
    if (w->refs == NULL || w->ref_buf == NULL || shadow == NULL) {
        free(shadow);
        return webhook_nomem(why, cap);
    }
    for (size_t i = 0; i < w->n_alerts; i++) {
        struct str a = w->alerts[i], v = STR_ABSENT;
        enum json_kind kind = JSON_NONE;

        if (a.len > 0)
            json_lookup(a.p, a.len, field, shadow, &v, &kind);
        if ((kind == JSON_STRING || kind == JSON_NUMBER) && v.len > 0) {
            memcpy(w->ref_buf + used, v.p, v.len);
            w->refs[i] = str_make(w->ref_buf + used, v.len);
            used += v.len;
        }
    }
    free(shadow);
    return 0;
}

int webhook_body(struct webhook_request *w, struct str body, const struct webhook_limits *lim,
                 char *why, size_t cap)
{
    struct json_limits jl = JSON_LIMITS_DEFAULT;
    int rc;

    if (jl.max_members < lim->max_alerts)
        jl.max_members = lim->max_alerts;
    body = body.p != NULL ? webhook_trim(body.p, body.len) : str_make("", 0);
    if (body.len == 0 && (w->route == WEBHOOK_ALERTS || w->route == WEBHOOK_DTEX)) {
        snprintf(why, cap, "empty body: expected %s",
                 w->route == WEBHOOK_DTEX ? "a JSON object with a \"dataset\" array"
                                          : "a JSON object, an array of objects or JSON lines");
        return 400;
    }
    if (body.len == 0) { /* the query alone */
        w->alerts = calloc(1, sizeof(*w->alerts));
        if (w->alerts == NULL)
            return webhook_nomem(why, cap);
        w->alerts[0] = str_make("", 0);
        w->n_alerts = 1;
        rc = 0;
    } else if (w->route == WEBHOOK_DTEX) {
        rc = webhook_dtex(w, body, lim, &jl, why, cap);
    } else {
        rc = webhook_objects(w, body, lim, &jl, why, cap);
    }
    if (rc == 0 && lim->idempotency_field.len > 0)
        rc = webhook_refs(w, lim->idempotency_field, why, cap);
    return rc;
}

void webhook_request_free(struct webhook_request *w)
{
    if (w == NULL)
        return;
    if (w->code != NULL)
        webhook_code_free(w->code, w->code_len + 1);
    free(w->query_buf);
    free(w->built);
    free(w->ref_buf);
    free(w->refs);
    free(w->alerts);
    memset(w, 0, sizeof(*w));
}
