/* The JSON file reader every loader uses (json_file.h): comments, the
 * strict checks json-c lacks (duplicate keys, single quotes, trailing
 * commas) with their line:col, the size cap, unreadable files, and the
 * "FILE: key: what" reporter (counted for errors) with its value describer,
 * key paths and key test. */
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/json_file.h"
#include "errors.h"
#include "unit.h"

static char tmpdir[] = "/tmp/rtr-test-json-file.XXXXXX";

/* Duplicates anywhere in the file are errors; everything that only looks
 * like one is not. */
static const struct {
    const char *name;
    const char *text;
    const char *want[6]; /* every line, NULL-ended; none: it loads */
} json_texts[] = {
    {"mapping with two \"when\" and a table with two \"A\"",
     "{\"id\": \"m\", \"rules\": [{\"when\": [{\"field\": \"msg\", \"regex\": \"x\"}],\n"
     "  \"table\": {\"A\": \"1\", \"A\": \"2\"},\n"
     "  \"when\": []}]}",
     {"@:2:23: duplicate key \"A\"", "@:3:3: duplicate key \"when\""}},
    {"single quotes: json-c takes them, JSON does not (and keys still compare)",
     "{'a': 1, \"a\": 2, \"b\": 'x\"', \"c\": 3, 'c\"': 4}",
     {"@:1:2: single-quoted string: JSON needs double quotes", "@:1:10: duplicate key \"a\"",
      "@:1:23: single-quoted string: JSON needs double quotes",
      "@:1:37: single-quoted string: JSON needs double quotes"}},
    {"trailing commas: json-c takes them, JSON does not",
     "{\"mappings\": [],}\n",
     {"@:1:16: trailing comma"}},
    {"trailing commas in arrays, nested, before a comment and a line break",
     "{\"a\": [1, 2,], \"b\": [[1,] ,],\n \"c\": {\"d\": 1, /* x */\n // y\n }}",
     {"@:1:12: trailing comma", "@:1:24: trailing comma", "@:1:27: trailing comma",
      "@:2:14: trailing comma"}},
    {"surrogate pair spelled two ways",
     "{\"\\ud83d\\ude00\": 1, \"\xf0\x9f\x98\x80\": 2}",
     {"@:1:21: duplicate key \"\xf0\x9f\x98\x80\""}},
    {"the same key in sibling and nested objects",
     "{\"a\": {\"a\": 1, \"b\": {\"a\": 2}}, \"rules\": [{\"a\": 1}, {\"a\": 2}], \"b\": [[{\"a\": "
     "3}]]}",
     {NULL}},
    {"keys as values, in strings and in comments",
     "// \"a\": 1\n"
     "{\"a\": \"a\", /* \"a\": 2, \"*/ \"b\": [\"a\", \"a\"],\n"
     " \"c\": \"\\\"a\\\": { , \\\\\", \"d\": \"// \\\"a\\\":\"} // \"a\"",
     {NULL}},
    {"commas and quotes that are fine: between values, in strings, in comments",
     "// ,] 'x'\n{\"a\": [1, 2], \"b\": \",]\", \"c\": \"'\", /* ,} */ \"d\": {}, \"e\": [{}, []]}",
     {NULL}},
    {"keys that differ only by case or escape meaning",
     "{\"a\": 1, \"A\": 2, \"a\\n\": 3, \"a\\\\n\": 4, \"\\u0061b\": 5, \"ac\": 6}",
     {NULL}},
    {"deeper than the scan follows",
     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{\"a\": 1, \"a\": 2}",
     {"@:1:33: invalid JSON: nesting too deep"}},
};

static void test_read_json(void)
{
    char path[PATH_MAX], err[4096];

    snprintf(path, sizeof(path), "%s/mapping.json", tmpdir);
    for (size_t i = 0; i < sizeof(json_texts) / sizeof(json_texts[0]); i++) {
        struct json_object *obj = (struct json_object *)1;
        int rc;

        unit_write_file(path, json_texts[i].text);
        unit_capture_begin();
        rc = json_file_read(path, "mapping", &obj);
        unit_capture_end(err, sizeof(err));
        if (json_texts[i].want[0] == NULL) {
            if (rc != 0 || obj == NULL)
                UNIT_FAIL("%s: rc %d, %s", json_texts[i].name, rc, err);
            else
                unit_passed++;
            json_object_put(obj);
            continue;
        }
        CHECK_INT(rc, ERR_CONFIG);
        CHECK(obj == NULL);
        unit_check_messages(json_texts[i].name, err, path, json_texts[i].want);
    }
    unlink(path);
}

/* Comments of both kinds load, before, inside and after the object. */
static void test_comments(void)
{
    char path[PATH_MAX], err[1024];
    struct json_object *obj = NULL, *v;
    int rc;

    snprintf(path, sizeof(path), "%s/comments.json", tmpdir);
    unit_write_file(path, "// head\n/* block\n */ {\"a\": /* in */ 1, // tail\n \"b\": \"//\"}\n"
                          "// after the object\n/* and a block */\n");
    unit_capture_begin();
    rc = json_file_read(path, "mapping", &obj);
    unit_capture_end(err, sizeof(err));
    CHECK_INT(rc, 0);
    CHECK(err[0] == '\0');
    CHECK(json_object_object_get_ex(obj, "a", &v) && json_object_get_int(v) == 1);
    CHECK(json_object_object_get_ex(obj, "b", &v) && strcmp(json_object_get_string(v), "//") == 0);
    json_object_put(obj);
    unlink(path);
}

/* The cap is on the file, in bytes: one more is refused with what the
 * file should have been. */
static void test_size_cap(void)
{
    char path[PATH_MAX], err[1024];
    const char *want[] = {"@: larger than 1048576 bytes: not a mapping file?", NULL};
    char *text = malloc(JSON_FILE_MAX_BYTES + 2);
    struct json_object *obj = (struct json_object *)1;
    int rc;

    snprintf(path, sizeof(path), "%s/big.json", tmpdir);
    /* {"a": "xxx...x"} of exactly the cap loads. */
    memset(text, 'x', JSON_FILE_MAX_BYTES + 1);
    memcpy(text, "{\"a\": \"", 7);
    memcpy(text + JSON_FILE_MAX_BYTES - 2, "\"}", 2);
    unit_write_bytes(path, text, JSON_FILE_MAX_BYTES);
    unit_capture_begin();
    rc = json_file_read(path, "mapping", &obj);
    unit_capture_end(err, sizeof(err));
    CHECK_INT(rc, 0);
    CHECK(obj != NULL && json_object_get_type(obj) == json_type_object);
    json_object_put(obj);
    /* One byte more (a trailing line end) does not. */
    text[JSON_FILE_MAX_BYTES] = '\n';
    unit_write_bytes(path, text, JSON_FILE_MAX_BYTES + 1);
    unit_capture_begin();
    rc = json_file_read(path, "mapping", &obj);
    unit_capture_end(err, sizeof(err));
    CHECK_INT(rc, ERR_CONFIG);
    CHECK(obj == NULL);
    unit_check_messages("size cap", err, path, want);
    free(text);
    unlink(path);
}

static void test_unreadable(void)
{
    char path[PATH_MAX], err[1024];
    const char *missing[] = {"@: cannot open: No such file or directory", NULL};
    const char *nul[] = {"@:2:4: invalid JSON: NUL byte in the file", NULL};
    struct json_object *obj = (struct json_object *)1;

    snprintf(path, sizeof(path), "%s/absent.json", tmpdir);
    unit_capture_begin();
    CHECK_INT(json_file_read(path, "config", &obj), ERR_CONFIG);
    unit_capture_end(err, sizeof(err));
    CHECK(obj == NULL);
    unit_check_messages("missing file", err, path, missing);

    snprintf(path, sizeof(path), "%s/nul.json", tmpdir);
    unit_write_bytes(path, "{\"a\":\n 1 \0}", sizeof("{\"a\":\n 1 \0}") - 1);
    unit_capture_begin();
    CHECK_INT(json_file_read(path, "config", &obj), ERR_CONFIG);
    unit_capture_end(err, sizeof(err));
    unit_check_messages("NUL byte", err, path, nul);
    unlink(path);
}

static void report(enum log_level level, const char *key_path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(enum log_level level, const char *key_path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    json_file_vreport(level, "/etc/rtr/x.json", key_path, fmt, ap);
    va_end(ap);
}

/* "FILE: key: what", "FILE: what" without a key, at the level asked, with
 * the file's bytes escaped by the log. */
static void test_report(void)
{
    char err[2048];

    unit_capture_begin();
    report(LOG_LVL_ERROR, "listen[1].port", "expected %s, got %d", "a string", 7);
    report(LOG_LVL_ERROR, "", "cannot open: %s", "Permission denied");
    report(LOG_LVL_WARNING,
           "a\x01"
           "b",
           "unknown key");
    unit_capture_end(err, sizeof(err));
    CHECK(strstr(err, " error: /etc/rtr/x.json: listen[1].port: expected a string, got 7\n") !=
          NULL);
    CHECK(strstr(err, " error: /etc/rtr/x.json: cannot open: Permission denied\n") != NULL);
    CHECK(strstr(err, " warning: /etc/rtr/x.json: a\\x01b: unknown key\n") != NULL);
}

/* json_file_error: the config engine's and the mapping loader's one
 * counted error, in the reporter's form. */
static void test_error_counted(void)
{
    struct json_file_report rep = {.file = "/etc/rtr/m.json"};
    char err[1024];

    unit_capture_begin();
    json_file_error(&rep, "mappings[0].user", "expected %s", "an object");
    json_file_error(&rep, "", "cannot open: %s", "No such file or directory");
    unit_capture_end(err, sizeof(err));
    CHECK_INT(rep.errors, 2);
    CHECK(strstr(err, " error: /etc/rtr/m.json: mappings[0].user: expected an object\n") != NULL);
    CHECK(strstr(err, " error: /etc/rtr/m.json: cannot open: No such file or directory\n") != NULL);
}

/* A key with a null value is present; an absent section (NULL) has none. */
static void test_has_key(void)
{
    struct json_object *obj = json_tokener_parse("{\"a\": null, \"b\": 1}");

    CHECK(json_file_has_key(obj, "a"));
    CHECK(json_file_has_key(obj, "b"));
    CHECK(!json_file_has_key(obj, "c"));
    CHECK(!json_file_has_key(NULL, "a"));
    json_object_put(obj);
}

static void test_describe(void)
{
    static const struct {
        const char *json;
        const char *want;
    } values[] = {
        {"\"4\"", "\"4\""},     {"1.5", "1.5"},
        {"null", "null"},       {"true", "true"},
        {"\"a/b\"", "\"a/b\""}, {"{\"a\": 1}", "an object"},
        {"[1]", "an array"},    {"\"0123456789abcdef\"", "\"0123456..."},
    };
    char buf[JSON_FILE_DESCRIBE_MAX];

    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        struct json_object *v = json_tokener_parse(values[i].json);
        /* The last one is cut to a buffer of 12. */
        size_t cap = i + 1 == sizeof(values) / sizeof(values[0]) ? 12 : sizeof(buf);
        const char *got = json_file_describe(v, buf, cap);

        CHECK_STR(values[i].json, str_make(got, strlen(got)), values[i].want);
        json_object_put(v);
    }
}

static void test_paths(void)
{
    static const char *const names[] = {"udp", "tcp", "tls", NULL};
    char out[JSON_FILE_PATH_MAX], parent[JSON_FILE_PATH_MAX], key[400], want[JSON_FILE_PATH_MAX];

    json_file_key_path(out, "", "listen");
    CHECK_STR("top", str_make(out, strlen(out)), "listen");
    json_file_index_path(parent, "listen", 1);
    json_file_key_path(out, parent, "allow");
    CHECK_STR("nested", str_make(out, strlen(out)), "listen[1].allow");
    /* A path past the buffer ends in "...". */
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    json_file_key_path(out, "table", key);
    snprintf(want, sizeof(want), "table.%.*s...", JSON_FILE_PATH_MAX - 10, key);
    CHECK_STR("long", str_make(out, strlen(out)), want);
    json_file_join_names(names, 1, key, sizeof(key));
    CHECK_STR("quoted", str_make(key, strlen(key)), "\"udp\", \"tcp\", \"tls\"");
    json_file_join_names(names, 0, key, sizeof(key));
    CHECK_STR("plain", str_make(key, strlen(key)), "udp, tcp, tls");
}

int main(void)
{
    unsetenv("JOURNAL_STREAM");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    test_read_json();
    test_comments();
    test_size_cap();
    test_unreadable();
    test_report();
    test_error_counted();
    test_has_key();
    test_describe();
    test_paths();
    rmdir(tmpdir);
    return unit_report("test_json_file");
}
