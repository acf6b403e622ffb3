#include "expect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "errors.h"
#include "core/escape.h"

/* The fields a decision is compared on, in replay's order. */
enum expect_field {
    EXPECT_MAPPING,
    EXPECT_RULE,
    EXPECT_USER,
    EXPECT_EMAIL,
    EXPECT_EVENT,
    EXPECT_OUTCOME,
    EXPECT_DETAIL,
    EXPECT_FIELDS
};

static const char *const expect_field_names[EXPECT_FIELDS] = {
    "mapping", "rule", "user", "email", "event", "outcome", "detail",
};

/* Values shown in a difference are cut to this many bytes, then escaped. */
#define EXPECT_SHOWN 200

struct expect_entry {
    char *file;                   /* as written */
    unsigned long long line;      /* of the input */
    unsigned long from;           /* the expectation file's line */
    int none;                     /* "decision": null: no decision there */
    int seen;                     /* a decision was held against it */
    char *want[EXPECT_FIELDS];    /* NULL: not compared */
    int want_null[EXPECT_FIELDS]; /* the field is expected to be null */
};

struct expect {
    char *path;
    struct expect_entry *entries; /* sorted by input line, then by from */
    size_t n, cap;
    unsigned long decisions, differences;
};

/* Prints s[0..len) quoted, escaped as a log line escapes it. */
static void expect_put_value(const char *s, size_t len)
{
    char buf[EXPECT_SHOWN * ESCAPE_MAX_EXPANSION + 1];
    size_t n =
        escape_text(buf, sizeof(buf) - 1, s, len < EXPECT_SHOWN ? len : EXPECT_SHOWN, ESCAPE_LOG);

    fprintf(stderr, "\"%.*s%s\"", (int)n, buf, len > EXPECT_SHOWN ? "..." : "");
}

/* "replay --expect: splunk.log:3: " with the input's name escaped. */
static void expect_put_where(const char *input, unsigned long long line)
{
    char buf[512];
    size_t n = escape_text(buf, sizeof(buf), input, strlen(input), ESCAPE_LOG);

    fprintf(stderr, "rtr-agent replay --expect: %.*s:%llu: ", (int)n, buf, line);
}

static void expect_error(const struct expect *e, unsigned long from, const char *what)
{
    fprintf(stderr, "rtr-agent replay --expect: %s:%lu: %s\n", e->path, from, what);
}

/* Reads the decision fields of obj into entry (skipping the names in
 * skip, the line's own keys). Returns 0 or ERR_CONFIG (reported). */
static int expect_read_fields(struct expect *e, struct expect_entry *entry, struct json_object *obj,
                              const char *const *skip)
{
    char what[256];

    json_object_object_foreach(obj, key, value)
    {
        int field = -1, skipped = 0;

        for (const char *const *s = skip; *s != NULL; s++)
            skipped |= strcmp(key, *s) == 0;
        if (skipped)
            continue;
        for (int f = 0; f < EXPECT_FIELDS; f++)
            if (strcmp(key, expect_field_names[f]) == 0)
                field = f;
        if (field < 0) {
            snprintf(what, sizeof(what),
                     "unknown key \"%.64s\" (known: mapping, rule, user, email, event, outcome, "
                     "detail)",
                     key);
            expect_error(e, entry->from, what);
            return ERR_CONFIG;
        }
        if (value == NULL) {
            entry->want_null[field] = 1;
            continue;
        }
        if (!json_object_is_type(value, json_type_string)) {
            snprintf(what, sizeof(what), "\"%s\": expected a string or null", key);
            expect_error(e, entry->from, what);
            return ERR_CONFIG;
        }
        entry->want[field] = strdup(json_object_get_string(value));
        if (entry->want[field] == NULL)
            return ERR_NOMEM;
    }
    return 0;
}

/* The input's place: "file"/"line" (the samples' form) or
 * "input_file"/"input_line" (replay's). */
static int expect_read_place(struct expect *e, struct expect_entry *entry, struct json_object *obj,
                             const char *file_key, const char *line_key)
{
    struct json_object *file = NULL, *line = NULL;
    char what[128];

    json_object_object_get_ex(obj, file_key, &file);
    json_object_object_get_ex(obj, line_key, &line);
    if (!json_object_is_type(file, json_type_string) || !json_object_is_type(line, json_type_int) ||
        json_object_get_int64(line) < 1) {
        snprintf(what, sizeof(what), "needs \"%s\" (a string) and \"%s\" (a line number)", file_key,
                 line_key);
        expect_error(e, entry->from, what);
        return ERR_CONFIG;
    }
    entry->line = (unsigned long long)json_object_get_int64(line);
    entry->file = strdup(json_object_get_string(file));
    return entry->file == NULL ? ERR_NOMEM : 0;
}

static int expect_read_line(struct expect *e, struct expect_entry *entry, const char *text)
{
    static const char *const samples_keys[] = {"file", "line", "decision", NULL};
    static const char *const replay_keys[] = {"input_file", "input_line", NULL};
    struct json_object *obj = json_tokener_parse(text), *decision = NULL;
    int rc;

    if (!json_object_is_type(obj, json_type_object)) {
        expect_error(e, entry->from, "not a JSON object");
        json_object_put(obj);
        return ERR_CONFIG;
    }
    if (json_object_object_get_ex(obj, "decision", &decision)) {
        rc = expect_read_place(e, entry, obj, "file", "line");
        if (rc == 0)
            rc = expect_read_fields(e, entry, obj, samples_keys);
        if (rc == 0 && decision == NULL)
            entry->none = 1;
        else if (rc == 0 && !json_object_is_type(decision, json_type_object)) {
            expect_error(e, entry->from, "\"decision\": expected an object or null");
            rc = ERR_CONFIG;
        } else if (rc == 0) {
            static const char *const none[] = {NULL};
            rc = expect_read_fields(e, entry, decision, none);
        }
    } else {
        rc = expect_read_place(e, entry, obj, "input_file", "input_line");
        if (rc == 0)
            rc = expect_read_fields(e, entry, obj, replay_keys);
    }
    json_object_put(obj);
    return rc;
}

static int expect_order(const void *a, const void *b)
{
    const struct expect_entry *x = a, *y = b;

    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->from < y->from ? -1 : x->from > y->from;
}

int expect_load(const char *path, struct expect **out)
{
    struct expect *e = calloc(1, sizeof(*e));
    FILE *f = NULL;
    char *text = NULL;
    size_t text_cap = 0;
    unsigned long from = 0;
    int rc = ERR_NOMEM, bad = 0;

    *out = NULL;
    if (e == NULL || (e->path = strdup(path)) == NULL)
        goto out;
    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "rtr-agent replay --expect: %s: %s\n", path, strerror(errno));
        rc = ERR_IO;
        goto out;
    }
    while (getline(&text, &text_cap, f) != -1) {
        from++;
        if (text[strspn(text, " \t\r\n")] == '\0')
            continue;
        if (e->n == e->cap) {
            size_t cap = e->cap ? e->cap * 2 : 64;
            struct expect_entry *p = realloc(e->entries, cap * sizeof(*p));
            if (p == NULL)
                goto out;
            e->entries = p;
            e->cap = cap;
        }
        memset(&e->entries[e->n], 0, sizeof(e->entries[0]));
        e->entries[e->n].from = from;
        rc = expect_read_line(e, &e->entries[e->n++], text);
        if (rc == ERR_NOMEM)
            goto out;
        bad |= rc != 0;
    }
    if (ferror(f)) {
        fprintf(stderr, "rtr-agent replay --expect: %s: %s\n", path, strerror(errno));
        rc = ERR_IO;
        goto out;
    }
    if (bad) {
        rc = ERR_CONFIG;
        goto out;
    }
    qsort(e->entries, e->n, sizeof(e->entries[0]), expect_order);
    *out = e; /* transferred */
    e = NULL;
    rc = 0;
out:
    free(text);
    if (f != NULL)
        fclose(f);
    expect_free(e);
    return rc;
}

/* Whether an expectation's file names input: the same path, or, written
 * without a folder, the same base name. */
static int expect_names(const char *file, const char *input)
{
    const char *slash = strrchr(input, '/');

    if (strcmp(file, input) == 0)
        return 1;
    return strchr(file, '/') == NULL && slash != NULL && strcmp(file, slash + 1) == 0;
}

/* The index of the first expectation for input line `line` (e->n when
 * none): those for it follow in one run, the entries being sorted. */
static size_t expect_first(const struct expect *e, unsigned long long line)
{
    size_t lo = 0, hi = e->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (e->entries[mid].line < line)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The value of field f in d, and whether it has one. */
static int expect_got(const struct expect_decision *d, int f, struct str *out)
{
    const char *c = NULL;

    switch (f) {
    case EXPECT_RULE:
        *out = d->rule;
        return 1;
    case EXPECT_USER:
        *out = d->user;
        return 1;
    case EXPECT_EVENT:
        *out = d->event;
        return 1;
    case EXPECT_MAPPING:
        c = d->mapping;
        break;
    case EXPECT_EMAIL:
        c = d->email;
        break;
    case EXPECT_OUTCOME:
        c = d->outcome;
        break;
    default:
        c = d->detail;
        break;
    }
    *out = (struct str){c, c != NULL ? strlen(c) : 0};
    return c != NULL;
}

static void expect_compare(struct expect *e, const struct expect_entry *entry, const char *input,
                           unsigned long long line, const struct expect_decision *d)
{
    for (int f = 0; f < EXPECT_FIELDS; f++) {
        struct str got;
        int has = expect_got(d, f, &got);
        const char *want = entry->want[f];

        if (want == NULL && !entry->want_null[f])
            continue;
        if (want == NULL ? !has
                         : has && got.len == strlen(want) && memcmp(got.p, want, got.len) == 0)
            continue;
        e->differences++;
        expect_put_where(input, line);
        fprintf(stderr, "%s ", expect_field_names[f]);
        if (has)
            expect_put_value(got.p, got.len);
        else
            fputs("null", stderr);
        fputs(", expected ", stderr);
        if (want != NULL)
            expect_put_value(want, strlen(want));
        else
            fputs("null", stderr);
        fprintf(stderr, " (%s:%lu)\n", e->path, entry->from);
    }
}

void expect_decision(struct expect *e, const char *input, unsigned long long line,
                     const struct expect_decision *d)
{
    const struct expect_entry *none = NULL;

    e->decisions++;
    for (size_t i = expect_first(e, line); i < e->n && e->entries[i].line == line; i++) {
        struct expect_entry *entry = &e->entries[i];

        if (entry->seen || !expect_names(entry->file, input))
            continue;
        if (entry->none) {
            none = entry;
            continue;
        }
        entry->seen = 1;
        expect_compare(e, entry, input, line, d);
        return;
    }
    e->differences++;
    expect_put_where(input, line);
    fputs("a decision (rule ", stderr);
    expect_put_value(d->rule.p, d->rule.len);
    fputs(", user ", stderr);
    expect_put_value(d->user.p, d->user.len);
    if (none != NULL)
        fprintf(stderr, "), expected none (%s:%lu)\n", e->path, none->from);
    else
        fputs(") that no expectation names\n", stderr);
}

unsigned long expect_finish(struct expect *e)
{
    for (size_t i = 0; i < e->n; i++) {
        const struct expect_entry *entry = &e->entries[i];

        if (entry->seen || entry->none)
            continue;
        e->differences++;
        expect_put_where(entry->file, entry->line);
        fputs("no decision", stderr);
        if (entry->want[EXPECT_RULE] != NULL) {
            fputs(", expected rule ", stderr);
            expect_put_value(entry->want[EXPECT_RULE], strlen(entry->want[EXPECT_RULE]));
        } else {
            fputs(", expected one", stderr);
        }
        fprintf(stderr, " (%s:%lu)\n", e->path, entry->from);
    }
    fprintf(stderr, "rtr-agent replay --expect: %lu decisions, %lu difference%s from %s\n",
            e->decisions, e->differences, e->differences == 1 ? "" : "s", e->path);
    return e->differences;
}

void expect_free(struct expect *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->n; i++) {
        free(e->entries[i].file);
        for (int f = 0; f < EXPECT_FIELDS; f++)
            free(e->entries[i].want[f]);
    }
    free(e->entries);
    free(e->path);
    free(e);
}
