/* The JSON files the agent loads (its config, the mapping files): read
 * whole with a size cap, comments allowed, and stricter than json-c (a
 * duplicate key, a single-quoted string or a trailing comma is an error,
 * reported at its line and column). Problems with what a file holds are
 * reported in one form, "FILE: KEY.PATH: WHAT", by every loader and by
 * check, with the value at fault described the same way. */
#ifndef RTR_JSON_FILE_H
#define RTR_JSON_FILE_H

#include <stdarg.h>
#include <stddef.h>

#include "log.h"

struct json_object;

/* Our files are small; the cap only catches a path to the wrong file. */
#define JSON_FILE_MAX_BYTES (1024 * 1024)

/* A key path buffer ("listen[1].allow[0]"); longer paths end in "...". */
#define JSON_FILE_PATH_MAX 256

/* A buffer for json_file_describe: long values are cut to fit. */
#define JSON_FILE_DESCRIBE_MAX 80

/* Reads and parses path. kind names what the file should be in the
 * message of a file over JSON_FILE_MAX_BYTES ("config": "... not a config
 * file?"). Every problem is reported through the log, one line each:
 * "FILE: cannot open: ..." or "FILE:LINE:COL: invalid JSON: ...",
 * "FILE:LINE:COL: duplicate key \"k\"" (all of them, not just the first).
 * Returns 0 and *out (release with json_object_put), ERR_CONFIG (*out is
 * NULL) or ERR_NOMEM. */
int json_file_read(const char *path, const char *kind, struct json_object **out);

/* Reports one problem with a file we load: "FILE: KEY.PATH: WHAT", or
 * "FILE: WHAT" when key_path is empty. WHAT is fmt formatted with ap (cut
 * at 1023 bytes). One line through the log at level, so bytes taken from
 * the file are escaped. Not counted: for warnings (json_file_error counts). */
void json_file_vreport(enum log_level level, const char *file, const char *key_path,
                       const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

/* The errors reported about one file being loaded. Every loader (the
 * reader here, the config engine, the mapping loader) reports every
 * problem it finds, then fails the load when errors > 0. */
struct json_file_report {
    const char *file; /* as the user named it: every message starts with it */
    int errors;
};

/* Reports an error as json_file_vreport does at LOG_LVL_ERROR, naming
 * rep->file, and counts it in rep->errors. */
void json_file_error(struct json_file_report *rep, const char *key_path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Whether obj has the key (with any value, null included); a NULL obj (an
 * absent section) has none. */
int json_file_has_key(struct json_object *obj, const char *name);

/* How v reads in an "expected X, got Y" message: scalars as JSON text
 * (cut to cap, ending in "..."), containers as "an object" / "an array".
 * Returns buf or a static string. */
const char *json_file_describe(struct json_object *v, char *buf, size_t cap);

/* out[JSON_FILE_PATH_MAX] = "parent.name" ("name" when parent is empty). */
void json_file_key_path(char *out, const char *parent, const char *name);

/* out[JSON_FILE_PATH_MAX] = "parent[i]". */
void json_file_index_path(char *out, const char *parent, size_t i);

/* names (NULL-ended) joined with ", " into buf, each in double quotes when
 * quoted: "\"a\", \"b\"" for "expected one of ...". Returns buf. */
const char *json_file_join_names(const char *const *names, int quoted, char *buf, size_t cap);

#endif
