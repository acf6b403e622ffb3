/* The config engine (config_engine.h): the key types' setters, the walk
 * over a section's table, and the key reference. */
#include "config_engine.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "config_net.h"
#include "errors.h"
#include "log.h"

void *cfg_alloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size);
    if (p == NULL) {
        log_error("config: out of memory");
        abort();
    }
    return p;
}

char *cfg_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(cfg_alloc(n, 1), s, n);
}

/* Pointer fields of different types are read and written as bytes, so one
 * setter serves them all without type punning. */
static void *load_ptr(const char *field)
{
    void *p;
    memcpy(&p, field, sizeof(p));
    return p;
}

void cfg_store_ptr(char *field, const void *p)
{
    memcpy(field, &p, sizeof(p));
}

static int choice_index(const char *const *choices, const char *s)
{
    for (int i = 0; choices[i] != NULL; i++) {
        if (strcmp(choices[i], s) == 0)
            return i;
    }
    return -1;
}

/* Strings: a JSON string without NUL bytes, not empty, one of the choices
 * when the key has them. Returns NULL after reporting otherwise. */
static const char *get_string(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                              struct json_object *v)
{
    char got[JSON_FILE_DESCRIBE_MAX], list[256];
    const char *s;

    if (json_object_is_type(v, json_type_string)) {
        s = json_object_get_string(v);
        if ((size_t)json_object_get_string_len(v) != strlen(s)) {
            json_file_error(&ld->rep, path, "contains a NUL character");
            return NULL;
        }
        if (k->choices == NULL || choice_index(k->choices, s) >= 0) {
            if (s[0] != '\0')
                return s;
            json_file_error(&ld->rep, path, "must not be empty");
            return NULL;
        }
    }
    if (k->choices != NULL)
        json_file_error(&ld->rep, path, "expected one of %s, got %s",
                        json_file_join_names(k->choices, 1, list, sizeof(list)),
                        json_file_describe(v, got, sizeof(got)));
    else
        json_file_error(&ld->rep, path, "expected a string, got %s",
                        json_file_describe(v, got, sizeof(got)));
    return NULL;
}

/* An optional key without a default given as null: the same as leaving it
 * out. Returns nonzero when it was that. */
static int set_null(const struct cfg_key *k, struct json_object *v, char *base)
{
    if (v != NULL || k->def != NULL || k->required)
        return 0;
    free(load_ptr(base + k->offset));
    cfg_store_ptr(base + k->offset, NULL);
    return 1;
}

static void release_ptr(const struct cfg_key *k, char *base)
{
    free(load_ptr(base + k->offset));
}

static void set_string(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                       struct json_object *v, char *base)
{
    const char *s;

    if (set_null(k, v, base) || (s = get_string(ld, k, path, v)) == NULL)
        return;
    free(load_ptr(base + k->offset));
    cfg_store_ptr(base + k->offset, cfg_strdup(s));
}

static char *resolve_path(const struct cfg_loader *ld, const char *s)
{
    char *out;

    if (s[0] == '/')
        return cfg_strdup(s);
    out = cfg_alloc(strlen(ld->dir) + 1 + strlen(s) + 1, 1);
    sprintf(out, "%s/%s", ld->dir, s);
    return out;
}

static void set_path(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                     struct json_object *v, char *base)
{
    const char *s;

    if (set_null(k, v, base) || (s = get_string(ld, k, path, v)) == NULL)
        return;
    free(load_ptr(base + k->offset));
    cfg_store_ptr(base + k->offset, resolve_path(ld, s));
}

/* Outbound URLs: TLS is always verified, so plain http is never configured. */
static void set_url(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                    struct json_object *v, char *base)
{
    char got[JSON_FILE_DESCRIBE_MAX];
    const char *s;

    if (set_null(k, v, base) || (s = get_string(ld, k, path, v)) == NULL)
        return;
    if (strncmp(s, "https://", 8) != 0 || s[8] == '\0' || s[8] == '/') {
        json_file_error(&ld->rep, path, "expected an https:// URL, got %s",
                        json_file_describe(v, got, sizeof(got)));
        return;
    }
    free(load_ptr(base + k->offset));
    cfg_store_ptr(base + k->offset, cfg_strdup(s));
}

static int get_integer(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                       struct json_object *v, long long *out)
{
    char got[JSON_FILE_DESCRIBE_MAX];

    /* json-c saturates integers past int64 at its ends, which the range rejects. */
    if (json_object_is_type(v, json_type_int)) {
        *out = (long long)json_object_get_int64(v);
        if (*out >= k->min && *out <= k->max)
            return 0;
    }
    json_file_error(&ld->rep, path, "expected an integer from %lld to %lld, got %s", k->min, k->max,
                    json_file_describe(v, got, sizeof(got)));
    return ERR_CONFIG;
}

static void set_int(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                    struct json_object *v, char *base)
{
    long long n;

    if (get_integer(ld, k, path, v, &n) == 0)
        *(int *)(base + k->offset) = (int)n;
}

static void set_size(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                     struct json_object *v, char *base)
{
    long long n;

    if (get_integer(ld, k, path, v, &n) == 0)
        *(size_t *)(base + k->offset) = (size_t)n;
}

static void set_bool(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                     struct json_object *v, char *base)
{
    char got[JSON_FILE_DESCRIBE_MAX];

    if (!json_object_is_type(v, json_type_boolean)) {
        json_file_error(&ld->rep, path, "expected true or false, got %s",
                        json_file_describe(v, got, sizeof(got)));
        return;
    }
    *(int *)(base + k->offset) = json_object_get_boolean(v) ? 1 : 0;
}

static void set_enum(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                     struct json_object *v, char *base)
{
    const char *s = get_string(ld, k, path, v);

    if (s != NULL)
        *(int *)(base + k->offset) = choice_index(k->choices, s);
}

static void set_address(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                        struct json_object *v, char *base)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char got[JSON_FILE_DESCRIBE_MAX];
    const char *s;

    if (set_null(k, v, base)) {
        memset(base + k->aux_offset, 0, sizeof(ss));
        *(socklen_t *)(base + k->count_offset) = 0;
        return;
    }
    if ((s = get_string(ld, k, path, v)) == NULL)
        return;
    if (config_parse_address(s, &ss, &len) != 0) {
        json_file_error(&ld->rep, path,
                        "expected a numeric \"IPv4:port\" or \"[IPv6]:port\" with a port from 0 to "
                        "65535, got %s",
                        json_file_describe(v, got, sizeof(got)));
        return;
    }
    free(load_ptr(base + k->offset));
    cfg_store_ptr(base + k->offset, cfg_strdup(s));
    memcpy(base + k->aux_offset, &ss, sizeof(ss));
    *(socklen_t *)(base + k->count_offset) = len;
}

/* Arrays: the JSON array with at least k->min entries, or NULL after reporting. */
static struct json_object *get_array(struct cfg_loader *ld, const struct cfg_key *k,
                                     const char *path, struct json_object *v)
{
    char got[JSON_FILE_DESCRIBE_MAX];

    if (!json_object_is_type(v, json_type_array)) {
        json_file_error(&ld->rep, path, "expected an array, got %s",
                        json_file_describe(v, got, sizeof(got)));
        return NULL;
    }
    if (json_object_array_length(v) < (size_t)k->min) {
        json_file_error(&ld->rep, path, "needs at least %lld entr%s", k->min,
                        k->min == 1 ? "y" : "ies");
        return NULL;
    }
    return v;
}

static void set_cidr_list(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                          struct json_object *v, char *base)
{
    struct cidr *list, masked;
    char sub[JSON_FILE_PATH_MAX], got[JSON_FILE_DESCRIBE_MAX], net[INET6_ADDRSTRLEN];
    size_t n;

    if (get_array(ld, k, path, v) == NULL)
        return;
    n = json_object_array_length(v);
    list = cfg_alloc(n, sizeof(*list));
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(v, i);
        const char *s;
        int host_bits;

        json_file_index_path(sub, path, i);
        if ((s = get_string(ld, k, sub, e)) == NULL)
            continue;
        if (config_parse_network(s, &list[i], &host_bits) != 0) {
            json_file_error(&ld->rep, sub,
                            "expected an IPv4 or IPv6 network such as \"10.0.0.0/8\", got %s",
                            json_file_describe(e, got, sizeof(got)));
        } else if (host_bits) {
            masked = list[i];
            inet_ntop(masked.family, masked.addr, net, sizeof(net));
            json_file_error(&ld->rep, sub, "%s has host bits set; the network is %s/%u", s, net,
                            masked.prefix);
        }
    }
    free(load_ptr(base + k->offset));
    cfg_store_ptr(base + k->offset, list);
    *(size_t *)(base + k->count_offset) = n;
}

static void release_str_list(const struct cfg_key *k, char *base)
{
    char **list = load_ptr(base + k->offset);
    size_t n = *(size_t *)(base + k->count_offset);

    for (size_t i = 0; list != NULL && i < n; i++)
        free(list[i]);
    free(list);
}

static void set_path_list(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                          struct json_object *v, char *base)
{
    char sub[JSON_FILE_PATH_MAX];
    char **list;
    size_t n;

    if (get_array(ld, k, path, v) == NULL)
        return;
    release_str_list(k, base);
    n = json_object_array_length(v);
    list = cfg_alloc(n, sizeof(*list));
    for (size_t i = 0; i < n; i++) {
        const char *s;

        json_file_index_path(sub, path, i);
        if ((s = get_string(ld, k, sub, json_object_array_get_idx(v, i))) != NULL)
            list[i] = resolve_path(ld, s);
    }
    cfg_store_ptr(base + k->offset, list);
    *(size_t *)(base + k->count_offset) = n;
}

/* A list of choices, each at most once. */
static void set_enum_list(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                          struct json_object *v, char *base)
{
    char sub[JSON_FILE_PATH_MAX];
    size_t n, seen = 0;
    int *list, errors = ld->rep.errors;

    if (get_array(ld, k, path, v) == NULL)
        return;
    n = json_object_array_length(v);
    list = cfg_alloc(n, sizeof(*list));
    for (size_t i = 0; i < n; i++) {
        const char *s;

        json_file_index_path(sub, path, i);
        if ((s = get_string(ld, k, sub, json_object_array_get_idx(v, i))) == NULL)
            continue;
        list[i] = choice_index(k->choices, s);
        if (seen & (1u << list[i]))
            json_file_error(&ld->rep, sub, "\"%s\" is listed twice", s);
        seen |= 1u << list[i];
    }
    /* A list with holes would only lead later checks astray. */
    if (ld->rep.errors > errors) {
        free(list);
        return;
    }
    free(load_ptr(base + k->offset));
    cfg_store_ptr(base + k->offset, list);
    *(size_t *)(base + k->count_offset) = n;
}

static void set_object(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                       struct json_object *v, char *base)
{
    char got[JSON_FILE_DESCRIBE_MAX];

    if (!json_object_is_type(v, json_type_object)) {
        json_file_error(&ld->rep, path, "expected an object, got %s",
                        json_file_describe(v, got, sizeof(got)));
        v = NULL; /* still apply the defaults, so later checks see sane values */
    }
    cfg_parse_section(ld, path, v, base + k->offset, k->section);
}

static void release_object(const struct cfg_key *k, char *base)
{
    cfg_release_section(k->section, base + k->offset);
}

static void set_object_array(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                             struct json_object *v, char *base)
{
    char sub[JSON_FILE_PATH_MAX], got[JSON_FILE_DESCRIBE_MAX];
    char *elems;
    size_t n;

    if (get_array(ld, k, path, v) == NULL)
        return;
    n = json_object_array_length(v);
    elems = cfg_alloc(n, k->section->size);
    cfg_store_ptr(base + k->offset, elems);
    *(size_t *)(base + k->count_offset) = n;
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(v, i);

        json_file_index_path(sub, path, i);
        if (!json_object_is_type(e, json_type_object))
            json_file_error(&ld->rep, sub, "expected an object, got %s",
                            json_file_describe(e, got, sizeof(got)));
        else
            cfg_parse_section(ld, sub, e, elems + i * k->section->size, k->section);
    }
}

static void release_object_array(const struct cfg_key *k, char *base)
{
    char *elems = load_ptr(base + k->offset);
    size_t n = *(size_t *)(base + k->count_offset);

    for (size_t i = 0; elems != NULL && i < n; i++)
        cfg_release_section(k->section, elems + i * k->section->size);
    free(elems);
}

const struct cfg_type CFG_STRING = {"string", set_string, release_ptr};
const struct cfg_type CFG_PATH = {"path", set_path, release_ptr};
const struct cfg_type CFG_URL = {"https URL", set_url, release_ptr};
const struct cfg_type CFG_INT = {"integer", set_int, NULL};
const struct cfg_type CFG_SIZE = {"integer", set_size, NULL};
const struct cfg_type CFG_BOOL = {"boolean", set_bool, NULL};
const struct cfg_type CFG_ENUM = {"string", set_enum, NULL};
const struct cfg_type CFG_ENUM_LIST = {"array of strings", set_enum_list, release_ptr};
const struct cfg_type CFG_ADDRESS = {"address", set_address, release_ptr};
const struct cfg_type CFG_CIDR_LIST = {"array of networks", set_cidr_list, release_ptr};
const struct cfg_type CFG_PATH_LIST = {"array of paths", set_path_list, release_str_list};
const struct cfg_type CFG_OBJECT = {"object", set_object, release_object};
const struct cfg_type CFG_OBJECT_ARRAY = {"array of objects", set_object_array,
                                          release_object_array};

static const struct cfg_key *find_key(const struct cfg_section *sec, const char *name)
{
    for (const struct cfg_key *k = sec->keys; k->name != NULL; k++) {
        if (strcmp(k->name, name) == 0)
            return k;
    }
    return NULL;
}

static void unknown_key(struct cfg_loader *ld, const char *path, const struct cfg_section *sec)
{
    char known[512];
    size_t n = 0;

    known[0] = '\0';
    for (const struct cfg_key *k = sec->keys; k->name != NULL && n < sizeof(known); k++)
        n += (size_t)snprintf(known + n, sizeof(known) - n, "%s%s", n > 0 ? ", " : "", k->name);
    json_file_error(&ld->rep, path, "unknown key (known here: %s)", known);
}

static void set_default(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                        char *base)
{
    struct json_object *v = json_tokener_parse(k->def);

    k->type->set(ld, k, path, v, base);
    json_object_put(v);
}

/* Keys in file order, then defaults and required keys for what is absent,
 * then the section's own rules. Every problem is reported; nothing stops at
 * the first. */
void cfg_parse_section(struct cfg_loader *ld, const char *path, struct json_object *obj, char *base,
                       const struct cfg_section *sec)
{
    char sub[JSON_FILE_PATH_MAX];

    if (obj != NULL) {
        json_object_object_foreach(obj, name, value)
        {
            const struct cfg_key *k = find_key(sec, name);

            json_file_key_path(sub, path, name);
            if (k == NULL)
                unknown_key(ld, sub, sec);
            else
                k->type->set(ld, k, sub, value, base);
        }
    }
    for (const struct cfg_key *k = sec->keys; k->name != NULL; k++) {
        if (obj != NULL && json_object_object_get_ex(obj, k->name, NULL))
            continue;
        json_file_key_path(sub, path, k->name);
        if (k->required && obj != NULL)
            json_file_error(&ld->rep, sub, "required key is missing");
        else if (k->type == &CFG_OBJECT)
            cfg_parse_section(ld, sub, NULL, base + k->offset, k->section);
        else if (k->def != NULL)
            set_default(ld, k, sub, base);
    }
    if (sec->check != NULL)
        sec->check(ld, path, obj, base);
}

void cfg_release_section(const struct cfg_section *sec, char *base)
{
    for (const struct cfg_key *k = sec->keys; k->name != NULL; k++) {
        if (k->type->release != NULL)
            k->type->release(k, base);
    }
}

/* ---- the key reference ---- */

/* Writes text for roff: a backslash as \e, and a "." or "'" that would
 * start a line (a request) behind \&. Key docs hold no newlines. */
static void write_roff_text(FILE *out, const char *text)
{
    if (*text == '.' || *text == '\'')
        fputs("\\&", out);
    for (; *text != '\0'; text++) {
        if (*text == '\\')
            fputs("\\e", out);
        else
            fputc(*text, out);
    }
}

static void write_key(FILE *out, const char *path, const struct cfg_key *k,
                      enum cfg_reference_format format)
{
    char list[256], type[64];
    const char *def = k->required ? "required" : k->def != NULL ? k->def : "-";
    const char *choices =
        k->choices != NULL ? json_file_join_names(k->choices, 1, list, sizeof(list)) : NULL;

    if (k->type == &CFG_INT || k->type == &CFG_SIZE)
        snprintf(type, sizeof(type), "%s %lld..%lld", k->type->name, k->min, k->max);
    else
        snprintf(type, sizeof(type), "%s", k->type->name);
    if (format == CFG_REFERENCE_MARKDOWN) {
        fprintf(out, "| `%s` | %s | %s | %s%s%s |\n", path, type, def, k->doc,
                choices != NULL ? "; one of " : "", choices != NULL ? choices : "");
        return;
    }
    fputs(".TP\n.B ", out);
    write_roff_text(out, path);
    fputs("\n\\fI", out);
    write_roff_text(out, type);
    fputs("\\fR, ", out);
    write_roff_text(out, k->required ? "required" : k->def != NULL ? "default " : "no default");
    if (!k->required && k->def != NULL)
        write_roff_text(out, k->def);
    fputs(".\n", out);
    write_roff_text(out, k->doc);
    if (choices != NULL) {
        fputs("; one of ", out);
        write_roff_text(out, choices);
    }
    fputs(".\n", out);
}

static void write_section(FILE *out, const char *path, const struct cfg_section *sec,
                          enum cfg_reference_format format)
{
    char sub[JSON_FILE_PATH_MAX];

    for (const struct cfg_key *k = sec->keys; k->name != NULL; k++) {
        json_file_key_path(sub, path, k->name);
        if (k->type == &CFG_OBJECT_ARRAY)
            strncat(sub, "[]", sizeof(sub) - strlen(sub) - 1);
        if (k->type == &CFG_OBJECT || k->type == &CFG_OBJECT_ARRAY)
            write_section(out, sub, k->section, format);
        else
            write_key(out, sub, k, format);
    }
}

void cfg_write_reference(FILE *out, const struct cfg_section *root,
                         enum cfg_reference_format format)
{
    if (format == CFG_REFERENCE_MARKDOWN)
        fputs("| key | type | default | meaning |\n| --- | --- | --- | --- |\n", out);
    write_section(out, "", root, format);
}
