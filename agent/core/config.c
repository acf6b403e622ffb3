/* Configuration loading. One table per section (as fluent-bit's
 * flb_config_map or nginx's ngx_command_t) names each key, its type, where it
 * lands in the struct, its default, its limits and what it means; the same
 * tables drive parsing, defaults, validation, config_free and the key
 * reference. Rules that span keys live in each section's check function. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "errors.h"
#include "log.h"

/* A config file is small; the cap only catches `-c` pointed at the wrong file. */
#define CONFIG_MAX_BYTES (1024 * 1024)
#define KEY_PATH_MAX     256
#define MIB              (1024LL * 1024)

/* The T_ENUM setter stores an int into enum fields. */
_Static_assert(sizeof(enum listen_proto) == sizeof(int), "enum size");
_Static_assert(sizeof(enum framing_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum oversize_policy) == sizeof(int), "enum size");
_Static_assert(sizeof(enum identity_source) == sizeof(int), "enum size");
_Static_assert(sizeof(enum graph_cloud) == sizeof(int), "enum size");
_Static_assert(sizeof(enum graph_attribute) == sizeof(int), "enum size");
_Static_assert(sizeof(enum dispatch_mode) == sizeof(int), "enum size");

struct loader {
    const char *file; /* as the user named it: every message starts with it */
    const char *dir;  /* the file's folder, absolute: relative paths resolve here */
    int errors;
};

struct cfg_key;

struct cfg_type {
    const char *name; /* in the key reference */
    void (*set)(struct loader *ld, const struct cfg_key *k, const char *path, struct json_object *v,
                char *base);
    void (*release)(const struct cfg_key *k, char *base); /* NULL: nothing owned */
};

struct cfg_section {
    const struct cfg_key *keys; /* ends with a NULL name */
    size_t size;                /* one element, for arrays of this section */
    /* Rules across keys, run after them; obj is NULL when the section is absent. */
    void (*check)(struct loader *ld, const char *path, struct json_object *obj, char *base);
};

struct cfg_key {
    const char *name;
    const struct cfg_type *type;
    size_t offset;
    size_t count_offset;               /* lists: their size_t count; addresses: the socklen_t */
    size_t aux_offset;                 /* addresses: the struct sockaddr_storage */
    long long min, max;                /* integers: the range; lists: min entries */
    const char *const *choices;        /* enums and restricted strings; NULL-terminated */
    const struct cfg_section *section; /* objects and arrays of objects */
    const char *def;                   /* default as JSON text; NULL = zero, and null is accepted */
    int required;                      /* when its section is present */
    const char *doc;
};

static void cfg_error(struct loader *ld, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void config_vreport(const char *file, const char *key_path, const char *fmt, va_list ap)
{
    char what[1024];

    vsnprintf(what, sizeof(what), fmt, ap);
    if (key_path[0] != '\0')
        log_error("%s: %s: %s", file, key_path, what);
    else
        log_error("%s: %s", file, what);
}

/* Counted: one error fails the load, after every problem is reported. */
static void cfg_error(struct loader *ld, const char *path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    config_vreport(ld->file, path, fmt, ap);
    va_end(ap);
    ld->errors++;
}

/* Config objects are small and fixed by the file: running out of memory
 * while loading it is not worth a recovery path. */
static void *cfg_alloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size);
    if (p == NULL) {
        log_error("config: out of memory");
        abort();
    }
    return p;
}

static char *cfg_strdup(const char *s)
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

static void store_ptr(char *field, const void *p)
{
    memcpy(field, &p, sizeof(p));
}

static void key_path(char *out, const char *parent, const char *name)
{
    snprintf(out, KEY_PATH_MAX, "%s%s%s", parent, parent[0] != '\0' ? "." : "", name);
}

static void index_path(char *out, const char *parent, size_t i)
{
    snprintf(out, KEY_PATH_MAX, "%s[%zu]", parent, i);
}

/* How a value reads in a message: scalars as JSON text, containers by kind. */
static const char *describe(struct json_object *v, char *buf, size_t cap)
{
    const char *text;

    switch (json_object_get_type(v)) {
    case json_type_object:
        return "an object";
    case json_type_array:
        return "an array";
    default:
        text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                     JSON_C_TO_STRING_NOSLASHESCAPE);
        if ((size_t)snprintf(buf, cap, "%s", text) >= cap)
            strcpy(buf + cap - 4, "...");
        return buf;
    }
}

/* "\"a\", \"b\", \"c\"" */
static const char *choices_text(const char *const *choices, char *buf, size_t cap)
{
    size_t n = 0;

    buf[0] = '\0';
    for (size_t i = 0; choices[i] != NULL && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s\"%s\"", i > 0 ? ", " : "", choices[i]);
    return buf;
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
static const char *get_string(struct loader *ld, const struct cfg_key *k, const char *path,
                              struct json_object *v)
{
    char got[80], list[256];
    const char *s;

    if (json_object_is_type(v, json_type_string)) {
        s = json_object_get_string(v);
        if ((size_t)json_object_get_string_len(v) != strlen(s)) {
            cfg_error(ld, path, "contains a NUL character");
            return NULL;
        }
        if (k->choices == NULL || choice_index(k->choices, s) >= 0) {
            if (s[0] != '\0')
                return s;
            cfg_error(ld, path, "must not be empty");
            return NULL;
        }
    }
    if (k->choices != NULL)
        cfg_error(ld, path, "expected one of %s, got %s",
                  choices_text(k->choices, list, sizeof(list)), describe(v, got, sizeof(got)));
    else
        cfg_error(ld, path, "expected a string, got %s", describe(v, got, sizeof(got)));
    return NULL;
}

/* An optional key without a default given as null: the same as leaving it
 * out. Returns nonzero when it was that. */
static int set_null(const struct cfg_key *k, struct json_object *v, char *base)
{
    if (v != NULL || k->def != NULL || k->required)
        return 0;
    free(load_ptr(base + k->offset));
    store_ptr(base + k->offset, NULL);
    return 1;
}

static void release_ptr(const struct cfg_key *k, char *base)
{
    free(load_ptr(base + k->offset));
}

static void set_string(struct loader *ld, const struct cfg_key *k, const char *path,
                       struct json_object *v, char *base)
{
    const char *s;

    if (set_null(k, v, base) || (s = get_string(ld, k, path, v)) == NULL)
        return;
    free(load_ptr(base + k->offset));
    store_ptr(base + k->offset, cfg_strdup(s));
}

static char *resolve_path(const struct loader *ld, const char *s)
{
    char *out;

    if (s[0] == '/')
        return cfg_strdup(s);
    out = cfg_alloc(strlen(ld->dir) + 1 + strlen(s) + 1, 1);
    sprintf(out, "%s/%s", ld->dir, s);
    return out;
}

static void set_path(struct loader *ld, const struct cfg_key *k, const char *path,
                     struct json_object *v, char *base)
{
    const char *s;

    if (set_null(k, v, base) || (s = get_string(ld, k, path, v)) == NULL)
        return;
    free(load_ptr(base + k->offset));
    store_ptr(base + k->offset, resolve_path(ld, s));
}

/* Outbound URLs: TLS is always verified, so plain http is never configured. */
static void set_url(struct loader *ld, const struct cfg_key *k, const char *path,
                    struct json_object *v, char *base)
{
    char got[80];
    const char *s;

    if (set_null(k, v, base) || (s = get_string(ld, k, path, v)) == NULL)
        return;
    if (strncmp(s, "https://", 8) != 0 || s[8] == '\0' || s[8] == '/') {
        cfg_error(ld, path, "expected an https:// URL, got %s", describe(v, got, sizeof(got)));
        return;
    }
    free(load_ptr(base + k->offset));
    store_ptr(base + k->offset, cfg_strdup(s));
}

static int get_integer(struct loader *ld, const struct cfg_key *k, const char *path,
                       struct json_object *v, long long *out)
{
    char got[80];

    /* json-c saturates integers past int64 at its ends, which the range rejects. */
    if (json_object_is_type(v, json_type_int)) {
        *out = (long long)json_object_get_int64(v);
        if (*out >= k->min && *out <= k->max)
            return 0;
    }
    cfg_error(ld, path, "expected an integer from %lld to %lld, got %s", k->min, k->max,
              describe(v, got, sizeof(got)));
    return ERR_CONFIG;
}

static void set_int(struct loader *ld, const struct cfg_key *k, const char *path,
                    struct json_object *v, char *base)
{
    long long n;

    if (get_integer(ld, k, path, v, &n) == 0)
        *(int *)(base + k->offset) = (int)n;
}

static void set_size(struct loader *ld, const struct cfg_key *k, const char *path,
                     struct json_object *v, char *base)
{
    long long n;

    if (get_integer(ld, k, path, v, &n) == 0)
        *(size_t *)(base + k->offset) = (size_t)n;
}

static void set_bool(struct loader *ld, const struct cfg_key *k, const char *path,
                     struct json_object *v, char *base)
{
    char got[80];

    if (!json_object_is_type(v, json_type_boolean)) {
        cfg_error(ld, path, "expected true or false, got %s", describe(v, got, sizeof(got)));
        return;
    }
    *(int *)(base + k->offset) = json_object_get_boolean(v) ? 1 : 0;
}

static void set_enum(struct loader *ld, const struct cfg_key *k, const char *path,
                     struct json_object *v, char *base)
{
    const char *s = get_string(ld, k, path, v);

    if (s != NULL)
        *(int *)(base + k->offset) = choice_index(k->choices, s);
}

static void set_address(struct loader *ld, const struct cfg_key *k, const char *path,
                        struct json_object *v, char *base)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char got[80];
    const char *s;

    if (set_null(k, v, base)) {
        memset(base + k->aux_offset, 0, sizeof(ss));
        *(socklen_t *)(base + k->count_offset) = 0;
        return;
    }
    if ((s = get_string(ld, k, path, v)) == NULL)
        return;
    if (config_parse_address(s, &ss, &len) != 0) {
        cfg_error(ld, path,
                  "expected a numeric \"IPv4:port\" or \"[IPv6]:port\" with a port from 0 to "
                  "65535, got %s",
                  describe(v, got, sizeof(got)));
        return;
    }
    free(load_ptr(base + k->offset));
    store_ptr(base + k->offset, cfg_strdup(s));
    memcpy(base + k->aux_offset, &ss, sizeof(ss));
    *(socklen_t *)(base + k->count_offset) = len;
}

/* Arrays: the JSON array with at least k->min entries, or NULL after reporting. */
static struct json_object *get_array(struct loader *ld, const struct cfg_key *k, const char *path,
                                     struct json_object *v)
{
    char got[80];

    if (!json_object_is_type(v, json_type_array)) {
        cfg_error(ld, path, "expected an array, got %s", describe(v, got, sizeof(got)));
        return NULL;
    }
    if (json_object_array_length(v) < (size_t)k->min) {
        cfg_error(ld, path, "needs at least %lld entr%s", k->min, k->min == 1 ? "y" : "ies");
        return NULL;
    }
    return v;
}

static int cidr_parse(const char *text, struct cidr *c, int *host_bits);

static void set_cidr_list(struct loader *ld, const struct cfg_key *k, const char *path,
                          struct json_object *v, char *base)
{
    struct cidr *list, masked;
    char sub[KEY_PATH_MAX], got[80], net[INET6_ADDRSTRLEN];
    size_t n;

    if (get_array(ld, k, path, v) == NULL)
        return;
    n = json_object_array_length(v);
    list = cfg_alloc(n, sizeof(*list));
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(v, i);
        const char *s;
        int host_bits;

        index_path(sub, path, i);
        if ((s = get_string(ld, k, sub, e)) == NULL)
            continue;
        if (cidr_parse(s, &list[i], &host_bits) != 0) {
            cfg_error(ld, sub, "expected an IPv4 or IPv6 network such as \"10.0.0.0/8\", got %s",
                      describe(e, got, sizeof(got)));
        } else if (host_bits) {
            masked = list[i];
            inet_ntop(masked.family, masked.addr, net, sizeof(net));
            cfg_error(ld, sub, "%s has host bits set; the network is %s/%u", s, net, masked.prefix);
        }
    }
    free(load_ptr(base + k->offset));
    store_ptr(base + k->offset, list);
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

static void set_path_list(struct loader *ld, const struct cfg_key *k, const char *path,
                          struct json_object *v, char *base)
{
    char sub[KEY_PATH_MAX];
    char **list;
    size_t n;

    if (get_array(ld, k, path, v) == NULL)
        return;
    release_str_list(k, base);
    n = json_object_array_length(v);
    list = cfg_alloc(n, sizeof(*list));
    for (size_t i = 0; i < n; i++) {
        const char *s;

        index_path(sub, path, i);
        if ((s = get_string(ld, k, sub, json_object_array_get_idx(v, i))) != NULL)
            list[i] = resolve_path(ld, s);
    }
    store_ptr(base + k->offset, list);
    *(size_t *)(base + k->count_offset) = n;
}

/* A list of choices, each at most once. */
static void set_enum_list(struct loader *ld, const struct cfg_key *k, const char *path,
                          struct json_object *v, char *base)
{
    char sub[KEY_PATH_MAX];
    size_t n, seen = 0;
    int *list, errors = ld->errors;

    if (get_array(ld, k, path, v) == NULL)
        return;
    n = json_object_array_length(v);
    list = cfg_alloc(n, sizeof(*list));
    for (size_t i = 0; i < n; i++) {
        const char *s;

        index_path(sub, path, i);
        if ((s = get_string(ld, k, sub, json_object_array_get_idx(v, i))) == NULL)
            continue;
        list[i] = choice_index(k->choices, s);
        if (seen & (1u << list[i]))
            cfg_error(ld, sub, "\"%s\" is listed twice", s);
        seen |= 1u << list[i];
    }
    /* A list with holes would only lead later checks astray. */
    if (ld->errors > errors) {
        free(list);
        return;
    }
    free(load_ptr(base + k->offset));
    store_ptr(base + k->offset, list);
    *(size_t *)(base + k->count_offset) = n;
}

static void parse_section(struct loader *ld, const char *path, struct json_object *obj, char *base,
                          const struct cfg_section *sec);
static void release_section(const struct cfg_section *sec, char *base);

static void set_object(struct loader *ld, const struct cfg_key *k, const char *path,
                       struct json_object *v, char *base)
{
    char got[80];

    if (!json_object_is_type(v, json_type_object)) {
        cfg_error(ld, path, "expected an object, got %s", describe(v, got, sizeof(got)));
        v = NULL; /* still apply the defaults, so later checks see sane values */
    }
    parse_section(ld, path, v, base + k->offset, k->section);
}

static void release_object(const struct cfg_key *k, char *base)
{
    release_section(k->section, base + k->offset);
}

static void set_object_array(struct loader *ld, const struct cfg_key *k, const char *path,
                             struct json_object *v, char *base)
{
    char sub[KEY_PATH_MAX], got[80];
    char *elems;
    size_t n;

    if (get_array(ld, k, path, v) == NULL)
        return;
    n = json_object_array_length(v);
    elems = cfg_alloc(n, k->section->size);
    store_ptr(base + k->offset, elems);
    *(size_t *)(base + k->count_offset) = n;
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(v, i);

        index_path(sub, path, i);
        if (!json_object_is_type(e, json_type_object))
            cfg_error(ld, sub, "expected an object, got %s", describe(e, got, sizeof(got)));
        else
            parse_section(ld, sub, e, elems + i * k->section->size, k->section);
    }
}

static void release_object_array(const struct cfg_key *k, char *base)
{
    char *elems = load_ptr(base + k->offset);
    size_t n = *(size_t *)(base + k->count_offset);

    for (size_t i = 0; elems != NULL && i < n; i++)
        release_section(k->section, elems + i * k->section->size);
    free(elems);
}

static const struct cfg_type T_STRING = {"string", set_string, release_ptr};
static const struct cfg_type T_PATH = {"path", set_path, release_ptr};
static const struct cfg_type T_URL = {"https URL", set_url, release_ptr};
static const struct cfg_type T_INT = {"integer", set_int, NULL};
static const struct cfg_type T_SIZE = {"integer", set_size, NULL};
static const struct cfg_type T_BOOL = {"boolean", set_bool, NULL};
static const struct cfg_type T_ENUM = {"string", set_enum, NULL};
static const struct cfg_type T_ENUM_LIST = {"array of strings", set_enum_list, release_ptr};
static const struct cfg_type T_ADDRESS = {"address", set_address, release_ptr};
static const struct cfg_type T_CIDR_LIST = {"array of networks", set_cidr_list, release_ptr};
static const struct cfg_type T_PATH_LIST = {"array of paths", set_path_list, release_str_list};
static const struct cfg_type T_OBJECT = {"object", set_object, release_object};
static const struct cfg_type T_OBJECT_ARRAY = {"array of objects", set_object_array,
                                               release_object_array};

static const struct cfg_key *find_key(const struct cfg_section *sec, const char *name)
{
    for (const struct cfg_key *k = sec->keys; k->name != NULL; k++) {
        if (strcmp(k->name, name) == 0)
            return k;
    }
    return NULL;
}

static void unknown_key(struct loader *ld, const char *path, const struct cfg_section *sec)
{
    char known[512];
    size_t n = 0;

    known[0] = '\0';
    for (const struct cfg_key *k = sec->keys; k->name != NULL && n < sizeof(known); k++)
        n += (size_t)snprintf(known + n, sizeof(known) - n, "%s%s", n > 0 ? ", " : "", k->name);
    cfg_error(ld, path, "unknown key (known here: %s)", known);
}

static void set_default(struct loader *ld, const struct cfg_key *k, const char *path, char *base)
{
    struct json_object *v = json_tokener_parse(k->def);

    k->type->set(ld, k, path, v, base);
    json_object_put(v);
}

/* Keys in file order, then defaults and required keys for what is absent,
 * then the section's own rules. Every problem is reported; nothing stops at
 * the first. */
static void parse_section(struct loader *ld, const char *path, struct json_object *obj, char *base,
                          const struct cfg_section *sec)
{
    char sub[KEY_PATH_MAX];

    if (obj != NULL) {
        json_object_object_foreach(obj, name, value)
        {
            const struct cfg_key *k = find_key(sec, name);

            key_path(sub, path, name);
            if (k == NULL)
                unknown_key(ld, sub, sec);
            else
                k->type->set(ld, k, sub, value, base);
        }
    }
    for (const struct cfg_key *k = sec->keys; k->name != NULL; k++) {
        if (obj != NULL && json_object_object_get_ex(obj, k->name, NULL))
            continue;
        key_path(sub, path, k->name);
        if (k->required && obj != NULL)
            cfg_error(ld, sub, "required key is missing");
        else if (k->type == &T_OBJECT)
            parse_section(ld, sub, NULL, base + k->offset, k->section);
        else if (k->def != NULL)
            set_default(ld, k, sub, base);
    }
    if (sec->check != NULL)
        sec->check(ld, path, obj, base);
}

static void release_section(const struct cfg_section *sec, char *base)
{
    for (const struct cfg_key *k = sec->keys; k->name != NULL; k++) {
        if (k->type->release != NULL)
            k->type->release(k, base);
    }
}

static int has_key(struct json_object *obj, const char *name)
{
    return obj != NULL && json_object_object_get_ex(obj, name, NULL);
}

/* ---- listen[] ---- */

static const char *const proto_names[] = {"udp", "tcp", "tls", NULL};
static const char *const framing_names[] = {"auto", "lf", "octet", NULL};

static void check_listen(struct loader *ld, const char *path, struct json_object *obj, char *base)
{
    /* Keys that only some transports use; elsewhere they are mistakes. */
    static const struct {
        const char *key;
        unsigned protos; /* 1 << enum listen_proto */
    } only[] = {
        {"framing", (1u << LISTEN_TCP) | (1u << LISTEN_TLS)},
        {"cert", 1u << LISTEN_TLS},
        {"key", 1u << LISTEN_TLS},
        {"client_ca", 1u << LISTEN_TLS},
        {"handshake_timeout_s", 1u << LISTEN_TLS},
        {"rcvbuf", 1u << LISTEN_UDP},
    };
    struct listen_config *l = (struct listen_config *)base;
    char sub[KEY_PATH_MAX], list[64];

    if (!has_key(obj, "proto"))
        return;
    for (size_t i = 0; i < sizeof(only) / sizeof(only[0]); i++) {
        size_t n = 0;

        if (!has_key(obj, only[i].key) || (only[i].protos & (1u << l->proto)))
            continue;
        list[0] = '\0';
        for (int p = 0; proto_names[p] != NULL; p++) {
            if (only[i].protos & (1u << p))
                n += (size_t)snprintf(list + n, sizeof(list) - n, "%s\"%s\"", n ? " or " : "",
                                      proto_names[p]);
        }
        key_path(sub, path, only[i].key);
        cfg_error(ld, sub, "not used with proto \"%s\" (only with %s)", proto_names[l->proto],
                  list);
    }
    if (l->proto == LISTEN_TLS) {
        if (!has_key(obj, "cert")) {
            key_path(sub, path, "cert");
            cfg_error(ld, sub, "required with proto \"tls\"");
        }
        if (!has_key(obj, "key")) {
            key_path(sub, path, "key");
            cfg_error(ld, sub, "required with proto \"tls\"");
        }
    }
}

#define LO(f) offsetof(struct listen_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key listen_keys[] = {
    {.name = "proto", .type = &T_ENUM, .offset = LO(proto), .choices = proto_names, .required = 1,
     .doc = "transport (tls: RFC 5425)"},
    {.name = "address", .type = &T_ADDRESS, .offset = LO(address), .aux_offset = LO(addr),
     .count_offset = LO(addr_len), .required = 1,
     .doc = "numeric \"IPv4:port\" or \"[IPv6]:port\"; port 0 binds any free port"},
    {.name = "framing", .type = &T_ENUM, .offset = LO(framing), .choices = framing_names,
     .def = "\"auto\"",
     .doc = "tcp/tls: RFC 6587 framing, LF trailers, octet counting or auto-detected per frame"},
    {.name = "cert", .type = &T_PATH, .offset = LO(cert),
     .doc = "tls: server certificate chain (PEM); required with tls"},
    {.name = "key", .type = &T_PATH, .offset = LO(key),
     .doc = "tls: server private key (PEM); required with tls"},
    {.name = "client_ca", .type = &T_PATH, .offset = LO(client_ca),
     .doc = "tls: require client certificates issued by this CA (PEM)"},
    {.name = "handshake_timeout_s", .type = &T_INT, .offset = LO(handshake_timeout_s), .min = 1,
     .max = 300, .def = "10", .doc = "tls: seconds a client has to finish the handshake"},
    {.name = "allow", .type = &T_CIDR_LIST, .offset = LO(allow), .count_offset = LO(n_allow),
     .doc = "source networks allowed (\"10.0.0.0/8\", \"2001:db8::/32\"); empty = all"},
    {.name = "rcvbuf", .type = &T_INT, .offset = LO(rcvbuf), .min = 0, .max = 256 * MIB, .def = "0",
     .doc = "udp: SO_RCVBUF bytes; 0 = system default"},
    {.name = "port_file", .type = &T_PATH, .offset = LO(port_file),
     .doc = "write the bound port here once listening (tests bind port 0)"},
    {0},
};
/* clang-format on */
#undef LO
static const struct cfg_section listen_section = {listen_keys, sizeof(struct listen_config),
                                                  check_listen};

/* ---- limits ---- */

static const char *const oversize_names[] = {"truncate", "reject", NULL};

static void check_limits(struct loader *ld, const char *path, struct json_object *obj, char *base)
{
    struct limits_config *l = (struct limits_config *)base;
    /* The framer may hold a whole frame plus its octet count and trailer. */
    size_t floor = l->max_message_bytes + FRAMING_MAX_LEN_DIGITS + 2;
    char sub[KEY_PATH_MAX];

    if (!has_key(obj, "max_connection_buffer")) {
        l->max_connection_buffer = 4 * l->max_message_bytes;
    } else if (l->max_connection_buffer < floor) {
        key_path(sub, path, "max_connection_buffer");
        cfg_error(ld, sub, "must be at least max_message_bytes + %d (%zu), got %zu",
                  FRAMING_MAX_LEN_DIGITS + 2, floor, l->max_connection_buffer);
    }
}

#define LI(f) offsetof(struct limits_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key limits_keys[] = {
    /* RFC 5424 6.1: receivers must take 480 octets (2048 should); 16 MiB is
     * far past any real alarm and still bounds a connection's memory. */
    {.name = "max_message_bytes", .type = &T_SIZE, .offset = LI(max_message_bytes), .min = 480,
     .max = 16 * MIB, .def = "65536", .doc = "longest message accepted"},
    {.name = "oversize", .type = &T_ENUM, .offset = LI(oversize), .choices = oversize_names,
     .def = "\"truncate\"", .doc = "what happens to longer messages"},
    {.name = "max_connections", .type = &T_INT, .offset = LI(max_connections), .min = 1,
     .max = 1000000, .def = "1024", .doc = "open connections per listener"},
    {.name = "idle_timeout_s", .type = &T_INT, .offset = LI(idle_timeout_s), .min = 0, .max = 86400,
     .def = "300", .doc = "seconds before a silent connection is closed; 0 = never"},
    {.name = "max_connection_buffer", .type = &T_SIZE, .offset = LI(max_connection_buffer),
     .min = 0, .max = 256 * MIB,
     .doc = "input bytes buffered per connection; default 4 x max_message_bytes"},
    {.name = "queue_messages", .type = &T_SIZE, .offset = LI(queue_messages), .min = 1,
     .max = 16 * MIB, .def = "65536",
     .doc = "downstream queue high mark: TCP/TLS inputs pause above it"},
    {.name = "regex_match_limit", .type = &T_INT, .offset = LI(regex_match_limit), .min = 1,
     .max = 100000000, .def = "100000", .doc = "PCRE2 match limit per mapping regex"},
    {.name = "regex_depth_limit", .type = &T_INT, .offset = LI(regex_depth_limit), .min = 1,
     .max = 100000000, .def = "10000", .doc = "PCRE2 depth limit per mapping regex"},
    {.name = "regex_jit", .type = &T_BOOL, .offset = LI(regex_jit), .def = "true",
     .doc = "JIT-compile mapping regexes (several times faster); false runs PCRE2's "
            "interpreter, which allows MemoryDenyWriteExecute=yes in the unit"},
    {0},
};
/* clang-format on */
#undef LI
static const struct cfg_section limits_section = {limits_keys, 0, check_limits};

/* ---- identity ---- */

static const char *const identity_names[] = {"static", "graph", NULL};
static const char *const cloud_names[] = {"global", "usgov", "usgov-dod", "china", NULL};
static const char *const attribute_names[] = {"mail", "userPrincipalName", NULL};

/* Token and Graph hosts per national cloud, in enum graph_cloud order. */
static const struct {
    const char *authority, *graph;
} cloud_urls[] = {
    {"https://login.microsoftonline.com", "https://graph.microsoft.com"},
    {"https://login.microsoftonline.us", "https://graph.microsoft.us"},
    {"https://login.microsoftonline.us", "https://dod-graph.microsoft.us"},
    {"https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"},
};

static void check_graph(struct loader *ld, const char *path, struct json_object *obj, char *base)
{
    struct graph_config *g = (struct graph_config *)base;

    (void)ld;
    (void)path;
    (void)obj;
    if (g->authority_url == NULL)
        g->authority_url = cfg_strdup(cloud_urls[g->cloud].authority);
    if (g->graph_url == NULL)
        g->graph_url = cfg_strdup(cloud_urls[g->cloud].graph);
}

#define GO(f) offsetof(struct graph_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key graph_keys[] = {
    {.name = "tenant_id", .type = &T_STRING, .offset = GO(tenant_id), .required = 1,
     .doc = "Entra ID tenant (GUID or domain)"},
    {.name = "client_id", .type = &T_STRING, .offset = GO(client_id), .required = 1,
     .doc = "application (client) id of the app registration"},
    {.name = "client_secret_file", .type = &T_PATH, .offset = GO(client_secret_file), .required = 1,
     .doc = "file holding the client secret, e.g. a systemd credential under "
            "/run/credentials/rtr-agent.service/"},
    {.name = "cloud", .type = &T_ENUM, .offset = GO(cloud), .choices = cloud_names,
     .def = "\"global\"", .doc = "national cloud"},
    {.name = "attribute", .type = &T_ENUM, .offset = GO(attribute), .choices = attribute_names,
     .def = "\"mail\"", .doc = "user attribute sent as the email"},
    {.name = "authority_url", .type = &T_URL, .offset = GO(authority_url),
     .doc = "token endpoint host; default: the cloud's"},
    {.name = "graph_url", .type = &T_URL, .offset = GO(graph_url),
     .doc = "Graph API host; default: the cloud's"},
    {.name = "ca_file", .type = &T_PATH, .offset = GO(ca_file),
     .doc = "extra CA bundle for the token and Graph hosts (PEM); system CAs always apply"},
    {.name = "max_concurrent", .type = &T_INT, .offset = GO(max_concurrent), .min = 1, .max = 64,
     .def = "4", .doc = "Graph requests in flight"},
    {.name = "timeout_s", .type = &T_INT, .offset = GO(timeout_s), .min = 1, .max = 300,
     .def = "30", .doc = "seconds per Graph request"},
    {0},
};
/* clang-format on */
#undef GO
static const struct cfg_section graph_section = {graph_keys, 0, check_graph};

/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key static_dir_keys[] = {
    {.name = "file", .type = &T_PATH, .offset = offsetof(struct static_dir_config, file),
     .required = 1, .doc = "CSV of identifier,email (RFC 4180 quoting, # comments)"},
    {0},
};
/* clang-format on */
static const struct cfg_section static_dir_section = {static_dir_keys, 0, NULL};

#define CA(f) offsetof(struct identity_cache_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key cache_keys[] = {
    {.name = "ttl_s", .type = &T_INT, .offset = CA(ttl_s), .min = 0, .max = 7 * 86400,
     .def = "3600", .doc = "seconds a resolved email is reused"},
    {.name = "negative_ttl_s", .type = &T_INT, .offset = CA(negative_ttl_s), .min = 0,
     .max = 7 * 86400, .def = "300", .doc = "seconds a \"not found\" is reused"},
    {.name = "max_entries", .type = &T_SIZE, .offset = CA(max_entries), .min = 1, .max = 100000000,
     .def = "100000",
     .doc = "resolved emails kept; \"not found\" answers have a quarter of this (at least 1) "
            "of their own, so made-up users never evict an email"},
    {0},
};
/* clang-format on */
#undef CA
static const struct cfg_section cache_section = {cache_keys, 0, NULL};

static void check_identity(struct loader *ld, const char *path, struct json_object *obj, char *base)
{
    struct identity_config *id = (struct identity_config *)base;
    const int configured[] = {
        [IDENTITY_STATIC] = id->static_dir.file != NULL,
        [IDENTITY_GRAPH] = id->graph.tenant_id != NULL,
    };
    char sub[KEY_PATH_MAX];

    if (!has_key(obj, "order")) {
        int *order = cfg_alloc(2, sizeof(*order));
        size_t n = 0;

        for (int src = IDENTITY_STATIC; src <= IDENTITY_GRAPH; src++) {
            if (configured[src])
                order[n++] = src;
        }
        store_ptr((char *)&id->order, order);
        id->n_order = n;
        return;
    }
    for (size_t i = 0; i < id->n_order; i++) {
        if (configured[id->order[i]])
            continue;
        snprintf(sub, sizeof(sub), "%s.order[%zu]", path, i);
        cfg_error(ld, sub, "\"%s\" is listed but identity.%s is not configured",
                  identity_names[id->order[i]], identity_names[id->order[i]]);
    }
}

#define IO(f) offsetof(struct identity_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key identity_keys[] = {
    {.name = "order", .type = &T_ENUM_LIST, .offset = IO(order), .count_offset = IO(n_order),
     .min = 1, .choices = identity_names,
     .doc = "resolvers in the order tried; default: those configured, static first"},
    {.name = "static", .type = &T_OBJECT, .offset = IO(static_dir), .section = &static_dir_section,
     .doc = "the static directory"},
    {.name = "graph", .type = &T_OBJECT, .offset = IO(graph), .section = &graph_section,
     .doc = "Microsoft Graph lookups (client credentials)"},
    {.name = "cache", .type = &T_OBJECT, .offset = IO(cache), .section = &cache_section,
     .doc = "resolved identities, in memory"},
    {0},
};
/* clang-format on */
#undef IO
static const struct cfg_section identity_section = {identity_keys, 0, check_identity};

/* ---- dispatch, spool, status, audit ---- */

static const char *const dispatch_names[] = {"dry-run", "direct", "orchestrator", NULL};

static void check_dispatch(struct loader *ld, const char *path, struct json_object *obj, char *base)
{
    /* What each mode cannot work without, in enum dispatch_mode order. */
    static const char *const needs[][6] = {
        [DISPATCH_DRY_RUN] = {NULL},
        [DISPATCH_DIRECT] = {"url", "api_key_file", NULL},
        [DISPATCH_ORCHESTRATOR] = {"url", "api_key_file", "source", "orch_id", "org_id", NULL},
    };
    struct dispatch_config *d = (struct dispatch_config *)base;
    char sub[KEY_PATH_MAX];

    for (size_t i = 0; needs[d->mode][i] != NULL; i++) {
        if (has_key(obj, needs[d->mode][i]))
            continue;
        key_path(sub, path, needs[d->mode][i]);
        cfg_error(ld, sub, "required with mode \"%s\"", dispatch_names[d->mode]);
    }
    if (d->retry_min_s > d->retry_max_s) {
        key_path(sub, path, "retry_min_s");
        cfg_error(ld, sub, "must not exceed retry_max_s (%d), got %d", d->retry_max_s,
                  d->retry_min_s);
    }
}

#define DF(f) offsetof(struct dispatch_fields, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key fields_keys[] = {
    {.name = "event", .type = &T_STRING, .offset = DF(event), .def = "\"event\"",
     .doc = "body field of the event name"},
    {.name = "email", .type = &T_STRING, .offset = DF(email), .def = "\"email\"",
     .doc = "body field of the user's email"},
    {.name = "id", .type = &T_STRING, .offset = DF(id), .def = "\"id\"",
     .doc = "body field of the idempotency key"},
    {.name = "occurred_at", .type = &T_STRING, .offset = DF(occurred_at),
     .def = "\"occurred_at\"", .doc = "body field of when the alert was received (RFC 3339)"},
    {0},
};
/* clang-format on */
#undef DF
static const struct cfg_section fields_section = {fields_keys, 0, NULL};

#define DO(f) offsetof(struct dispatch_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key dispatch_keys[] = {
    {.name = "mode", .type = &T_ENUM, .offset = DO(mode), .choices = dispatch_names,
     .def = "\"dry-run\"",
     .doc = "how alerts are sent; dry-run decides and audits but sends nothing"},
    {.name = "url", .type = &T_URL, .offset = DO(url),
     .doc = "direct: the POST URL; orchestrator: the base URL"},
    {.name = "api_key_file", .type = &T_PATH, .offset = DO(api_key_file),
     .doc = "file holding the API key (orchestrator: the code); never logged"},
    {.name = "api_key_header", .type = &T_STRING, .offset = DO(api_key_header),
     .def = "\"X-API-Key\"", .doc = "direct: header that carries the API key"},
    {.name = "fields", .type = &T_OBJECT, .offset = DO(fields), .section = &fields_section,
     .doc = "direct: names of the JSON body's fields"},
    {.name = "ca_file", .type = &T_PATH, .offset = DO(ca_file),
     .doc = "extra CA bundle for outbound TLS (PEM); system CAs always apply"},
    {.name = "source", .type = &T_STRING, .offset = DO(source),
     .doc = "orchestrator: {source} in /api/event/{source}/alert"},
    {.name = "orch_id", .type = &T_STRING, .offset = DO(orch_id),
     .doc = "orchestrator: the orchid parameter"},
    {.name = "org_id", .type = &T_STRING, .offset = DO(org_id),
     .doc = "orchestrator: the orgId parameter"},
    {.name = "connect_timeout_s", .type = &T_INT, .offset = DO(connect_timeout_s), .min = 1,
     .max = 300, .def = "10", .doc = "seconds to connect"},
    {.name = "timeout_s", .type = &T_INT, .offset = DO(timeout_s), .min = 1, .max = 600,
     .def = "30", .doc = "seconds per request, all included"},
    {.name = "retry_min_s", .type = &T_INT, .offset = DO(retry_min_s), .min = 1, .max = 3600,
     .def = "1", .doc = "first retry delay (exponential backoff, full jitter)"},
    {.name = "retry_max_s", .type = &T_INT, .offset = DO(retry_max_s), .min = 1, .max = 86400,
     .def = "600", .doc = "longest retry delay; also caps Retry-After"},
    {.name = "dedup_window_s", .type = &T_INT, .offset = DO(dedup_window_s), .min = 0, .max = 86400,
     .def = "600", .doc = "an exact duplicate inside this window is not resent"},
    {.name = "max_concurrent", .type = &T_INT, .offset = DO(max_concurrent), .min = 1, .max = 256,
     .def = "16", .doc = "SafeTitan requests in flight; the others wait their turn"},
    {0},
};
/* clang-format on */
#undef DO
static const struct cfg_section dispatch_section = {dispatch_keys, 0, check_dispatch};

static void check_spool(struct loader *ld, const char *path, struct json_object *obj, char *base)
{
    struct spool_config *s = (struct spool_config *)base;
    static const char name[] = "/dead-letter.jsonl";

    (void)ld;
    (void)path;
    (void)obj;
    if (s->dir != NULL && s->dead_letter == NULL) {
        s->dead_letter = cfg_alloc(strlen(s->dir) + sizeof(name), 1);
        sprintf(s->dead_letter, "%s%s", s->dir, name);
    }
}

#define SO(f) offsetof(struct spool_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key spool_keys[] = {
    {.name = "dir", .type = &T_PATH, .offset = SO(dir),
     .doc = "journal folder; required unless dispatch.mode is \"dry-run\""},
    {.name = "max_bytes", .type = &T_SIZE, .offset = SO(max_bytes), .min = 1 * MIB,
     .max = 1024 * 1024 * MIB, .def = "1073741824",
     .doc = "size cap; when full, new alerts are held (inputs pause), counted and logged"},
    {.name = "fsync_delay_ms", .type = &T_INT, .offset = SO(fsync_delay_ms), .min = 0, .max = 1000,
     .def = "50",
     .doc = "appends are fsynced in batches at once; one not durable within this is counted "
            "(spool_slow_syncs) and logged"},
    {.name = "dead_letter", .type = &T_PATH, .offset = SO(dead_letter),
     .doc = "JSON lines of permanently failed alerts; default dir/dead-letter.jsonl"},
    {0},
};
/* clang-format on */
#undef SO
static const struct cfg_section spool_section = {spool_keys, 0, check_spool};

#define ST(f) offsetof(struct status_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key status_keys[] = {
    {.name = "address", .type = &T_ADDRESS, .offset = ST(address), .aux_offset = ST(addr),
     .count_offset = ST(addr_len),
     .doc = "HTTP status endpoint, e.g. \"127.0.0.1:9514\"; absent = off"},
    {.name = "port_file", .type = &T_PATH, .offset = ST(port_file),
     .doc = "write the bound port here (tests bind port 0)"},
    {0},
};
/* clang-format on */
#undef ST
static const struct cfg_section status_section = {status_keys, 0, NULL};

/* A key means hashing: saying otherwise next to it is a contradiction. */
static void check_audit(struct loader *ld, const char *path, struct json_object *obj, char *base)
{
    struct audit_config *a = (struct audit_config *)base;
    char sub[KEY_PATH_MAX];

    if (a->hash_key_file == NULL)
        return;
    if (has_key(obj, "hash_users") && !a->hash_users) {
        key_path(sub, path, "hash_users");
        cfg_error(ld, sub, "false contradicts %s.hash_key_file, which hashes users", path);
    }
    a->hash_users = 1;
}

#define AU(f) offsetof(struct audit_config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key audit_keys[] = {
    {.name = "file", .type = &T_PATH, .offset = AU(file),
     .doc = "JSON lines: each decision and dispatch outcome; absent = none"},
    {.name = "hash_users", .type = &T_BOOL, .offset = AU(hash_users), .def = "false",
     .doc = "write user and email as SHA-256 instead of in clear; without hash_key_file this "
            "only pseudonymises (a dictionary of staff emails reverses it): set a key"},
    {.name = "hash_key_file", .type = &T_PATH, .offset = AU(hash_key_file),
     .doc = "file holding a secret key (at least 16 bytes, e.g. `openssl rand -hex 32`; a "
            "trailing line end is dropped): user and email are written as HMAC-SHA256 under "
            "it; implies hash_users; never logged"},
    {0},
};
/* clang-format on */
#undef AU
static const struct cfg_section audit_section = {audit_keys, 0, check_audit};

/* ---- the file ---- */

static const char *const log_level_names[] = {"error", "warning", "info", "debug", NULL};

static int same_endpoint(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port != 0 && x->sin_port == y->sin_port &&
               x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port != 0 && x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

/* SO_REUSEPORT would let two identical listeners bind and silently split
 * the traffic between them, so duplicates are caught here. TCP and TLS share
 * the stream port space, and so does the status endpoint. */
static void check_endpoints(struct loader *ld, const struct config *cfg)
{
    char sub[KEY_PATH_MAX];

    for (size_t j = 0; j < cfg->n_listen; j++) {
        const struct listen_config *b = &cfg->listen[j];

        for (size_t i = 0; i < j; i++) {
            const struct listen_config *a = &cfg->listen[i];

            if ((a->proto == LISTEN_UDP) != (b->proto == LISTEN_UDP) ||
                !same_endpoint(&a->addr, &b->addr))
                continue;
            snprintf(sub, sizeof(sub), "listen[%zu].address", j);
            cfg_error(ld, sub, "%s is already used by listen[%zu]", b->address, i);
            break;
        }
    }
    for (size_t i = 0; cfg->status.address != NULL && i < cfg->n_listen; i++) {
        if (cfg->listen[i].proto != LISTEN_UDP &&
            same_endpoint(&cfg->status.addr, &cfg->listen[i].addr)) {
            cfg_error(ld, "status.address", "%s is already used by listen[%zu]",
                      cfg->status.address, i);
            break;
        }
    }
}

static void check_root(struct loader *ld, const char *path, struct json_object *obj, char *base)
{
    struct config *cfg = (struct config *)base;

    (void)path;
    (void)obj;
    if (cfg->workers == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = cores < 1 ? 1 : cores > 256 ? 256 : (int)cores;
    }
    if (cfg->dispatch.mode != DISPATCH_DRY_RUN && cfg->spool.dir == NULL)
        cfg_error(ld, "spool.dir", "required when dispatch.mode is \"%s\"",
                  dispatch_names[cfg->dispatch.mode]);
    check_endpoints(ld, cfg);
}

#define CO(f) offsetof(struct config, f)
/* One key per entry reads better than one field per line. */
/* clang-format off */
static const struct cfg_key root_keys[] = {
    {.name = "listen", .type = &T_OBJECT_ARRAY, .offset = CO(listen), .count_offset = CO(n_listen),
     .min = 1, .section = &listen_section, .required = 1, .doc = "syslog listeners (at least one)"},
    {.name = "limits", .type = &T_OBJECT, .offset = CO(limits), .section = &limits_section,
     .doc = "bounds on messages, connections and queues"},
    {.name = "workers", .type = &T_INT, .offset = CO(workers), .min = 0, .max = 256, .def = "0",
     .doc = "worker threads; 0 = one per core"},
    {.name = "mappings", .type = &T_PATH_LIST, .offset = CO(mappings),
     .count_offset = CO(n_mappings), .doc = "mapping file globs, loaded in this order"},
    {.name = "identity", .type = &T_OBJECT, .offset = CO(identity), .section = &identity_section,
     .doc = "how user identifiers become email addresses"},
    {.name = "dispatch", .type = &T_OBJECT, .offset = CO(dispatch), .section = &dispatch_section,
     .doc = "how SafeTitan is told"},
    {.name = "spool", .type = &T_OBJECT, .offset = CO(spool), .section = &spool_section,
     .doc = "the durable journal of alerts not yet delivered"},
    {.name = "status", .type = &T_OBJECT, .offset = CO(status), .section = &status_section,
     .doc = "the HTTP status endpoint"},
    {.name = "audit", .type = &T_OBJECT, .offset = CO(audit), .section = &audit_section,
     .doc = "the audit log"},
    {.name = "log_level", .type = &T_STRING, .offset = CO(log_level), .choices = log_level_names,
     .def = "\"info\"", .doc = "least severe level logged"},
    {0},
};
/* clang-format on */
#undef CO
static const struct cfg_section root_section = {root_keys, 0, check_root};

/* A place in a text: line and column (1-based, as editors count them) of
 * offset. Moving it forward costs only the bytes in between, so reports in
 * file order stay linear in the file's size. */
struct text_cursor {
    size_t offset;
    size_t line;
    size_t line_start; /* offset of the line's first byte */
};

#define TEXT_CURSOR_INIT                                                                           \
    {                                                                                              \
        0, 1, 0                                                                                    \
    }

/* Moves c forward to offset (never back) and returns its column. */
static size_t text_advance(struct text_cursor *c, const char *text, size_t offset)
{
    const char *nl;

    while (c->offset < offset &&
           (nl = memchr(text + c->offset, '\n', offset - c->offset)) != NULL) {
        c->line++;
        c->offset = c->line_start = (size_t)(nl + 1 - text);
    }
    if (c->offset < offset)
        c->offset = offset;
    return offset - c->line_start + 1;
}

static void text_error(struct loader *ld, struct text_cursor *c, const char *text, size_t offset,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* "FILE:LINE:COL: msg", through the log so the file's bytes are escaped. */
static void text_error(struct loader *ld, struct text_cursor *c, const char *text, size_t offset,
                       const char *fmt, ...)
{
    char msg[512];
    size_t col = text_advance(c, text, offset);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ld->errors++;
    log_error("%s:%zu:%zu: %s", ld->file, c->line, col, msg);
}

static void syntax_error(struct loader *ld, const char *text, size_t offset, const char *what)
{
    struct text_cursor c = TEXT_CURSOR_INIT;

    text_error(ld, &c, text, offset, "invalid JSON: %s", what);
}

/* ---- what json-c lets through ----
 * json-c keeps the last of two equal keys in an object and drops the first
 * without a word: a mapping with two "when" would silently lose conditions.
 * Its default tokener also takes 'single-quoted' strings and a trailing
 * comma ({"a": 1,} and [1, 2,]), which no other JSON tool reads. So before
 * json-c parses, one pass over the text (strings and their escapes, both
 * kinds of comments, objects and arrays) reports every key that repeats in
 * its object, every single-quoted string and every comma before a closing
 * bracket. Comments stay allowed: the shipped files use them. Each byte is
 * looked at once, and every key goes into one hash table of (object number,
 * decoded key). The rest of the syntax is json-c's to judge: on anything
 * unexpected the scan just stops. Config and mapping files come from the
 * admin, so an unkeyed hash is fine here. */

/* json-c refuses deeper nesting anyway (its default is 32). */
#define DUP_MAX_DEPTH      64
#define DUP_FIRST_SLOTS    64
#define DUP_REPORT_MAX_KEY 128

struct dup_slot {
    uint64_t hash;
    uint32_t object;   /* 0: an empty slot; objects are numbered from 1 */
    uint32_t off, len; /* the decoded key, in dup_scan.keys */
};

struct dup_scan {
    struct loader *ld;
    const char *text;
    size_t len, at;
    struct text_cursor where;
    char *keys; /* decoded keys back to back: never longer than the text */
    size_t keys_len;
    struct dup_slot *slots;
    size_t cap, count; /* cap: a power of two */
};

static uint64_t dup_hash(uint32_t object, const char *key, size_t len)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a, 64 bits */

    for (int i = 0; i < 4; i++) {
        h ^= (object >> (8 * i)) & 0xff;
        h *= 1099511628211ULL;
    }
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* The slot holding (object, key), or the empty slot where it would go. */
static struct dup_slot *dup_probe(const struct dup_scan *s, uint64_t hash, uint32_t object,
                                  const char *key, size_t len)
{
    size_t mask = s->cap - 1;

    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        struct dup_slot *e = &s->slots[i];
        if (e->object == 0 || (e->hash == hash && e->object == object && e->len == len &&
                               memcmp(s->keys + e->off, key, len) == 0))
            return e;
    }
}

static void dup_grow(struct dup_scan *s)
{
    struct dup_slot *old = s->slots;
    size_t old_cap = s->cap;

    s->cap = old_cap != 0 ? old_cap * 2 : DUP_FIRST_SLOTS;
    s->slots = cfg_alloc(s->cap, sizeof(*s->slots));
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].object != 0)
            *dup_probe(s, old[i].hash, old[i].object, s->keys + old[i].off, old[i].len) = old[i];
    }
    free(old);
}

/* Appends code point cp to the decoded keys as UTF-8 (a lone surrogate as
 * its 3-byte form: it only has to compare equal to itself). */
static void dup_put_utf8(struct dup_scan *s, unsigned cp)
{
    char *out = s->keys + s->keys_len;

    if (cp < 0x80) {
        out[0] = (char)cp;
        s->keys_len += 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        s->keys_len += 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        s->keys_len += 3;
    } else {
        out[0] = (char)(0xf0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[3] = (char)(0x80 | (cp & 0x3f));
        s->keys_len += 4;
    }
}

/* The 4 hex digits of a \u escape at text[at], or -1. */
static long dup_hex4(const struct dup_scan *s, size_t at)
{
    long v = 0;

    if (s->len - at < 4)
        return -1;
    for (size_t i = at; i < at + 4; i++) {
        int d = str_hex_value(s->text[i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Skips the string whose opening quote is at s->at (json-c also takes
 * single quotes), decoding it into s->keys when decode is set; s->at ends
 * past the closing quote. Each escape takes at least as many bytes as it
 * decodes to, so the decoded keys never outgrow the text. Returns 0, or -1
 * when the text ends first. */
static int dup_string(struct dup_scan *s, int decode)
{
    static const char escapes[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
    char quote = s->text[s->at];

    for (s->at++; s->at < s->len; s->at++) {
        char c = s->text[s->at];
        long cp, low;

        if (c == quote) {
            s->at++;
            return 0;
        }
        if (c != '\\' || s->at + 1 == s->len) {
            if (decode)
                s->keys[s->keys_len++] = c;
            continue;
        }
        c = s->text[++s->at];
        if (c != 'u') {
            const char *e = memchr(escapes, c, sizeof(escapes) - 1);
            if (decode) /* an unknown escape is json-c's to report */
                s->keys[s->keys_len++] = e != NULL && (e - escapes) % 2 == 0 ? e[1] : c;
            continue;
        }
        if ((cp = dup_hex4(s, s->at + 1)) < 0)
            continue; /* json-c reports the bad escape */
        s->at += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && s->len - s->at > 2 && s->text[s->at + 1] == '\\' &&
            s->text[s->at + 2] == 'u' && (low = dup_hex4(s, s->at + 3)) >= 0xdc00 && low < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            s->at += 6;
        }
        if (decode)
            dup_put_utf8(s, (unsigned)cp);
    }
    return -1;
}

/* Decodes the key whose quote is at s->at and reports it when its object
 * (number object) already has it. Returns 0 or -1 (the text ended). */
static int dup_key(struct dup_scan *s, uint32_t object)
{
    size_t start = s->at, off = s->keys_len;
    struct dup_slot *e;
    uint64_t hash;
    size_t raw_len;

    if (dup_string(s, 1) != 0)
        return -1;
    hash = dup_hash(object, s->keys + off, s->keys_len - off);
    e = dup_probe(s, hash, object, s->keys + off, s->keys_len - off);
    if (e->object != 0) {
        raw_len = s->at - start - 2;
        text_error(s->ld, &s->where, s->text, start, "duplicate key \"%.*s%s\"",
                   (int)(raw_len < DUP_REPORT_MAX_KEY ? raw_len : DUP_REPORT_MAX_KEY),
                   s->text + start + 1, raw_len > DUP_REPORT_MAX_KEY ? "..." : "");
        s->keys_len = off; /* the first one stays in the table */
        return 0;
    }
    *e = (struct dup_slot){hash, object, (uint32_t)off, (uint32_t)(s->keys_len - off)};
    if (++s->count * 2 > s->cap)
        dup_grow(s);
    return 0;
}

/* Skips the comment at s->at. Returns 0, or -1 when '/' starts none. */
static int dup_comment(struct dup_scan *s)
{
    const char *end;

    if (s->len - s->at < 2 || (s->text[s->at + 1] != '/' && s->text[s->at + 1] != '*'))
        return -1;
    if (s->text[s->at + 1] == '/') {
        end = memchr(s->text + s->at, '\n', s->len - s->at);
        s->at = end != NULL ? (size_t)(end - s->text) : s->len;
    } else {
        end = memmem(s->text + s->at + 2, s->len - s->at - 2, "*/", 2);
        s->at = end != NULL ? (size_t)(end - s->text) + 2 : s->len;
    }
    return 0;
}

/* Reports every duplicate key, single-quoted string and trailing comma of
 * text (len bytes) as an error of ld. */
static void strict_check(struct loader *ld, const char *text, size_t len)
{
    struct {
        uint32_t object; /* 0: an array */
        int want_key;
    } stack[DUP_MAX_DEPTH];
    struct dup_scan s = {.ld = ld, .text = text, .len = len, .where = TEXT_CURSOR_INIT};
    uint32_t objects = 0;
    int depth = 0, rc = 0;
    size_t comma = SIZE_MAX; /* a comma with nothing but blanks and comments after it */

    s.keys = cfg_alloc(len + 1, 1);
    dup_grow(&s);
    while (s.at < len) {
        char c = text[s.at];

        if (c == '{' || c == '[') {
            if (depth == DUP_MAX_DEPTH)
                break;
            stack[depth].object = c == '{' ? ++objects : 0;
            stack[depth++].want_key = c == '{';
            s.at++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                break;
            if (comma != SIZE_MAX)
                text_error(ld, &s.where, text, comma, "trailing comma");
            depth--;
            s.at++;
        } else if (c == ',' || c == ':') {
            if (depth > 0)
                stack[depth - 1].want_key = c == ',' && stack[depth - 1].object != 0;
            s.at++;
        } else if (c == '"' || c == '\'') {
            if (c == '\'')
                text_error(ld, &s.where, text, s.at,
                           "single-quoted string: JSON needs double quotes");
            if (depth > 0 && stack[depth - 1].want_key) {
                stack[depth - 1].want_key = 0;
                rc = dup_key(&s, stack[depth - 1].object);
            } else {
                rc = dup_string(&s, 0);
            }
        } else if (c == '/') {
            if (dup_comment(&s) != 0)
                break;
            continue; /* a comment between a comma and a bracket hides nothing */
        } else {
            s.at++; /* white space, numbers, literals */
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
                continue;
        }
        if (rc != 0)
            break;
        comma = c == ',' ? s.at - 1 : SIZE_MAX;
    }
    free(s.slots);
    free(s.keys);
}

/* Whitespace and comments after the top-level value. */
static size_t skip_trailer(const char *text, size_t at, size_t len)
{
    while (at < len) {
        const char *end;

        if (strchr(" \t\r\n", text[at]) != NULL) {
            at++;
        } else if (len - at >= 2 && text[at] == '/' && text[at + 1] == '/') {
            end = memchr(text + at, '\n', len - at);
            at = end != NULL ? (size_t)(end - text) : len;
        } else if (len - at >= 2 && text[at] == '/' && text[at + 1] == '*' &&
                   (end = strstr(text + at + 2, "*/")) != NULL) {
            at = (size_t)(end - text) + 2;
        } else {
            break;
        }
    }
    return at;
}

/* text is NUL-terminated at len. json-c's default (non-strict) tokener
 * takes // and / * * / comments; handing it the terminating NUL tells it the
 * input ends there, so a comment after the last brace is not left pending.
 * Duplicate keys, which json-c would quietly merge, single quotes and
 * trailing commas, which it takes, are errors too (strict_check). */
static int parse_json(struct loader *ld, const char *text, size_t len, struct json_object **out)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *root = NULL;
    const char *nul = memchr(text, '\0', len);
    size_t end;
    int rc = ERR_CONFIG, errors;

    if (tok == NULL) {
        rc = ERR_NOMEM;
        goto out;
    }
    if (nul != NULL) {
        syntax_error(ld, text, (size_t)(nul - text), "NUL byte in the file");
        goto out;
    }
    errors = ld->errors;
    strict_check(ld, text, len);
    root = json_tokener_parse_ex(tok, text, (int)len + 1);
    if (root == NULL) {
        enum json_tokener_error e = json_tokener_get_error(tok);

        syntax_error(ld, text, json_tokener_get_parse_end(tok), json_tokener_error_desc(e));
        goto out;
    }
    end = skip_trailer(text, json_tokener_get_parse_end(tok), len);
    if (end < len) {
        syntax_error(ld, text, end, "unexpected text after the top-level object");
        goto out;
    }
    if (ld->errors > errors)
        goto out;
    *out = root;
    root = NULL; /* transferred */
    rc = 0;
out:
    json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    return rc;
}

static int read_file(struct loader *ld, const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t n = 0;
    int rc = ERR_CONFIG;

    if (f == NULL) {
        cfg_error(ld, "", "cannot open: %s", strerror(errno));
        goto out;
    }
    text = cfg_alloc(CONFIG_MAX_BYTES + 2, 1);
    n = fread(text, 1, CONFIG_MAX_BYTES + 1, f);
    if (ferror(f)) {
        cfg_error(ld, "", "cannot read: %s", strerror(errno));
        goto out;
    }
    if (n > CONFIG_MAX_BYTES) {
        cfg_error(ld, "", "larger than %d bytes: not a config file?", CONFIG_MAX_BYTES);
        goto out;
    }
    text[n] = '\0';
    *out = text;
    *len = n;
    text = NULL; /* transferred */
    rc = 0;
out:
    free(text);
    if (f != NULL)
        fclose(f);
    return rc;
}

/* The absolute folder of path (the file itself may be a symlink elsewhere:
 * relative paths follow the name the admin gave, as nginx's do). */
static char *config_folder(const char *path)
{
    char *copy = cfg_strdup(path);
    char *dir = realpath(dirname(copy), NULL);

    free(copy);
    return dir;
}

int config_read_json(const char *path, struct json_object **out)
{
    struct loader ld = {.file = path};
    char *text = NULL;
    size_t len;
    int rc;

    *out = NULL;
    rc = read_file(&ld, path, &text, &len);
    if (rc == 0)
        rc = parse_json(&ld, text, len, out);
    free(text);
    return rc;
}

const char *config_describe_json(struct json_object *v, char *buf, size_t cap)
{
    return describe(v, buf, cap);
}

int config_load(const char *path, struct config **out)
{
    struct loader ld = {.file = path};
    struct json_object *root = NULL;
    struct config *cfg = NULL;
    char *text = NULL, got[80];
    size_t len;
    int rc = ERR_CONFIG;

    *out = NULL;
    if (read_file(&ld, path, &text, &len) != 0)
        goto out;
    cfg = cfg_alloc(1, sizeof(*cfg));
    cfg->path = cfg_strdup(path);
    cfg->dir = config_folder(path);
    if (cfg->dir == NULL) {
        cfg_error(&ld, "", "cannot resolve its folder: %s", strerror(errno));
        goto out;
    }
    ld.dir = cfg->dir;
    rc = parse_json(&ld, text, len, &root);
    if (rc != 0)
        goto out;
    rc = ERR_CONFIG;
    if (!json_object_is_type(root, json_type_object)) {
        cfg_error(&ld, "", "expected a JSON object at the top level, got %s",
                  describe(root, got, sizeof(got)));
        goto out;
    }
    parse_section(&ld, "", root, (char *)cfg, &root_section);
    if (ld.errors > 0)
        goto out;
    *out = cfg;
    cfg = NULL; /* transferred */
    rc = 0;
out:
    json_object_put(root);
    free(text);
    config_free(cfg);
    return rc;
}

void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    release_section(&root_section, (char *)cfg);
    free(cfg->path);
    free(cfg->dir);
    free(cfg);
}

/* ---- addresses and networks ---- */

static int parse_port(const char *s, in_port_t *port)
{
    unsigned long n = 0;
    size_t i;

    for (i = 0; s[i] >= '0' && s[i] <= '9' && i < 5; i++)
        n = n * 10 + (unsigned long)(s[i] - '0');
    if (i == 0 || s[i] != '\0' || n > 65535)
        return ERR_INVALID;
    *port = htons((in_port_t)n);
    return 0;
}

int config_parse_address(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon, *port;
    size_t host_len;

    memset(ss, 0, sizeof(*ss));
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return ERR_INVALID;
        host_len = (size_t)(close - text - 1);
        if (host_len >= sizeof(host))
            return ERR_INVALID;
        memcpy(host, text + 1, host_len);
        host[host_len] = '\0';
        port = close + 2;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1 ||
            parse_port(port, &sin6->sin6_port) != 0)
            return ERR_INVALID;
        *len = sizeof(*sin6);
        return 0;
    }
    /* IPv4: exactly one colon; a bare IPv6 address would be ambiguous. */
    colon = strchr(text, ':');
    if (colon == NULL || strchr(colon + 1, ':') != NULL)
        return ERR_INVALID;
    host_len = (size_t)(colon - text);
    if (host_len >= sizeof(host))
        return ERR_INVALID;
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    sin->sin_family = AF_INET;
    if (host_len == 0)
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
        return ERR_INVALID;
    if (parse_port(colon + 1, &sin->sin_port) != 0)
        return ERR_INVALID;
    *len = sizeof(*sin);
    return 0;
}

static const unsigned char v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Parses without rejecting host bits: *host_bits says whether any were set,
 * and c holds the network with them cleared. */
static int cidr_parse(const char *text, struct cidr *c, int *host_bits)
{
    char host[INET6_ADDRSTRLEN];
    const char *slash = strchr(text, '/');
    size_t host_len = slash != NULL ? (size_t)(slash - text) : strlen(text);
    unsigned max, prefix = 0;

    memset(c, 0, sizeof(*c));
    if (host_len == 0 || host_len >= sizeof(host))
        return ERR_INVALID;
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    if (inet_pton(AF_INET, host, c->addr) == 1) {
        c->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, c->addr) == 1) {
        c->family = AF_INET6;
        max = 128;
    } else {
        return ERR_INVALID;
    }
    if (slash == NULL) {
        prefix = max;
    } else {
        size_t i;
        for (i = 1; slash[i] >= '0' && slash[i] <= '9' && i <= 3; i++)
            prefix = prefix * 10 + (unsigned)(slash[i] - '0');
        if (i == 1 || slash[i] != '\0' || prefix > max)
            return ERR_INVALID;
    }
    c->prefix = prefix;
    *host_bits = 0;
    for (unsigned bit = prefix; bit < max; bit++) {
        unsigned char mask = (unsigned char)(0x80u >> (bit % 8));
        if (c->addr[bit / 8] & mask) {
            *host_bits = 1;
            c->addr[bit / 8] &= (unsigned char)~mask;
        }
    }
    if (c->family == AF_INET6 && prefix >= 96 &&
        memcmp(c->addr, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
        memmove(c->addr, c->addr + 12, 4);
        memset(c->addr + 4, 0, 12);
        c->family = AF_INET;
        c->prefix = prefix - 96;
    }
    return 0;
}

int config_parse_cidr(const char *text, struct cidr *c)
{
    int host_bits;

    if (cidr_parse(text, c, &host_bits) != 0 || host_bits)
        return ERR_INVALID;
    return 0;
}

static int prefix_matches(const unsigned char *net, const unsigned char *addr, unsigned prefix)
{
    unsigned whole = prefix / 8, rest = prefix % 8;

    if (memcmp(net, addr, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xffu << (8 - rest));
    return (net[whole] & mask) == (addr[whole] & mask);
}

int cidr_allows(const struct cidr *list, size_t n, const struct sockaddr *sa)
{
    const unsigned char *addr;
    int family = sa->sa_family;

    if (n == 0)
        return 1;
    if (family == AF_INET) {
        addr = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (family == AF_INET6) {
        addr = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (memcmp(addr, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
            addr += sizeof(v4_mapped_prefix);
            family = AF_INET;
        }
    } else {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (list[i].family == family && prefix_matches(list[i].addr, addr, list[i].prefix))
            return 1;
    }
    return 0;
}

/* ---- the key reference ---- */

static void write_section(FILE *out, const char *path, const struct cfg_section *sec)
{
    char sub[KEY_PATH_MAX], list[256], type[64];

    for (const struct cfg_key *k = sec->keys; k->name != NULL; k++) {
        key_path(sub, path, k->name);
        if (k->type == &T_OBJECT) {
            write_section(out, sub, k->section);
            continue;
        }
        if (k->type == &T_OBJECT_ARRAY) {
            strncat(sub, "[]", sizeof(sub) - strlen(sub) - 1);
            write_section(out, sub, k->section);
            continue;
        }
        if (k->type == &T_INT || k->type == &T_SIZE)
            snprintf(type, sizeof(type), "%s %lld..%lld", k->type->name, k->min, k->max);
        else
            snprintf(type, sizeof(type), "%s", k->type->name);
        fprintf(out, "| `%s` | %s | %s | %s%s%s |\n", sub, type,
                k->required      ? "required"
                : k->def != NULL ? k->def
                                 : "-",
                k->doc, k->choices != NULL ? "; one of " : "",
                k->choices != NULL ? choices_text(k->choices, list, sizeof(list)) : "");
    }
}

void config_write_reference(FILE *out)
{
    fputs("| key | type | default | meaning |\n| --- | --- | --- | --- |\n", out);
    write_section(out, "", &root_section);
}
