/* The declarative config engine. One table per section (as fluent-bit's
 * flb_config_map or nginx's ngx_command_t) names each key, its type, where
 * it lands in the struct, its default, its limits and what it means; the
 * engine walks the tables for parsing, defaults, validation, releasing and
 * the key reference. The agent's tables are in config.c; rules that span
 * keys live in each section's check function. Everything a table stores is
 * owned by the struct it fills, released by cfg_release_section. */
#ifndef RTR_CONFIG_ENGINE_H
#define RTR_CONFIG_ENGINE_H

#include <stddef.h>
#include <stdio.h>

#include "json_file.h"

struct json_object;

/* One file being loaded. Problems are reported with json_file_error(&ld->rep,
 * ...): one error fails the load, after every problem is reported. */
struct cfg_loader {
    struct json_file_report rep;
    const char *dir; /* the file's folder, absolute: relative paths resolve here */
};

struct cfg_key;

struct cfg_type {
    const char *name; /* in the key reference */
    void (*set)(struct cfg_loader *ld, const struct cfg_key *k, const char *path,
                struct json_object *v, char *base);
    void (*release)(const struct cfg_key *k, char *base); /* NULL: nothing owned */
};

struct cfg_section {
    const struct cfg_key *keys; /* ends with a NULL name */
    size_t size;                /* one element, for arrays of this section */
    /* Rules across keys, run after them; obj is NULL when the section is absent. */
    void (*check)(struct cfg_loader *ld, const char *path, struct json_object *obj, char *base);
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

/* The key types. CFG_ENUM stores an int: enum fields must be int-sized. */
extern const struct cfg_type CFG_STRING;       /* char *, copied */
extern const struct cfg_type CFG_PATH;         /* char *, resolved against the file's folder */
extern const struct cfg_type CFG_URL;          /* char *, https:// only */
extern const struct cfg_type CFG_INT;          /* int in min..max */
extern const struct cfg_type CFG_SIZE;         /* size_t in min..max */
extern const struct cfg_type CFG_BOOL;         /* int 0/1 */
extern const struct cfg_type CFG_ENUM;         /* int: the index in choices */
extern const struct cfg_type CFG_ENUM_LIST;    /* int *, each choice at most once */
extern const struct cfg_type CFG_ADDRESS;      /* char * + sockaddr_storage + socklen_t */
extern const struct cfg_type CFG_CIDR_LIST;    /* struct cidr * */
extern const struct cfg_type CFG_PATH_LIST;    /* char **, each resolved */
extern const struct cfg_type CFG_OBJECT;       /* a nested section */
extern const struct cfg_type CFG_OBJECT_ARRAY; /* an array of a section's struct */

/* Zeroed memory and string copies for what tables store (the caller frees
 * them with free). Config objects are small and fixed by the file: running
 * out of memory while loading it is not worth a recovery path, so these
 * abort. */
void *cfg_alloc(size_t n, size_t size);
char *cfg_strdup(const char *s);

/* Stores p in a pointer field of any type (tables know fields as bytes). */
void cfg_store_ptr(char *field, const void *p);

/* Keys of obj (NULL: the section is absent) in file order into base, then
 * defaults and required keys for what is absent, then the section's check.
 * Every problem is reported through ld; nothing stops at the first. */
void cfg_parse_section(struct cfg_loader *ld, const char *path, struct json_object *obj, char *base,
                       const struct cfg_section *sec);

/* Frees what the section's keys own in base (not base itself). */
void cfg_release_section(const struct cfg_section *sec, char *base);

/* The key reference's forms: a Markdown table (systemd/README.md), or roff
 * paragraphs for a man page's body (rtr-agent.json(5)). */
enum cfg_reference_format {
    CFG_REFERENCE_MARKDOWN,
    CFG_REFERENCE_ROFF,
};

/* Writes the key reference of root's tables: every key path, its type,
 * default and meaning. */
void cfg_write_reference(FILE *out, const struct cfg_section *root,
                         enum cfg_reference_format format);

#endif
