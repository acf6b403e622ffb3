/* The audit log: exact lines (key order, null email, optional detail,
 * escaping) that json-c parses back to the same values, hashed users equal
 * to `echo -n ... | sha256sum`, appending to an existing file, mode 0640,
 * reopening after a rename, the no-file no-op and a failing write. */
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "audit.h"
#include "errors.h"
#include "unit.h"

static char tmpdir[] = "/tmp/rtr-test-audit.XXXXXX";

/* 2026-10-02T09:12:44Z, plus 120.999999 ms (milliseconds truncate). */
#define T0                                                                                         \
    {                                                                                              \
        1790932364, 120999999                                                                      \
    }

static const struct {
    const char *name;
    int hash_users;
    struct audit_record r;
    const char *want;
} records[] = {
    {"every field",
     0,
     {T0, "10.0.0.5:51514", "splunk-es-cef", STR_LIT("Brute Force"), STR_LIT("EXAMPLE\\amorgan"),
      "alice.morgan@example.com", STR_LIT("Unknown USB Device"), "would-dispatch", "static"},
     "{\"time\":\"2026-10-02T09:12:44.120Z\",\"source\":\"10.0.0.5:51514\",\"mapping\":"
     "\"splunk-es-cef\",\"rule\":\"Brute Force\",\"user\":\"EXAMPLE\\\\amorgan\",\"email\":"
     "\"alice.morgan@example.com\",\"event\":\"Unknown USB Device\",\"outcome\":"
     "\"would-dispatch\",\"detail\":\"static\"}\n"},
    {"unresolved, no source, no detail, text to escape",
     0,
     {{0, 5000000},
      NULL,
      "m",
      STR_LIT("say \"hi\""),
      STR_LIT("a\nb\x01"),
      NULL,
      STR_LIT("e"),
      "unresolved-user",
      NULL},
     "{\"time\":\"1970-01-01T00:00:00.005Z\",\"source\":null,\"mapping\":\"m\",\"rule\":"
     "\"say \\\"hi\\\"\",\"user\":\"a\\nb\\u0001\",\"email\":null,\"event\":\"e\",\"outcome\":"
     "\"unresolved-user\"}\n"},
    {"hashed users",
     1,
     {T0, "10.0.0.5:51514", "splunk-es-cef", STR_LIT("Brute Force"), STR_LIT("EXAMPLE\\amorgan"),
      "alice.morgan@example.com", STR_LIT("Unknown USB Device"), "would-dispatch", NULL},
     "{\"time\":\"2026-10-02T09:12:44.120Z\",\"source\":\"10.0.0.5:51514\",\"mapping\":"
     "\"splunk-es-cef\",\"rule\":\"Brute Force\",\"user\":"
     "\"8714e24ed21df37ca638c0e96f33f0c500bd91e3ffe1faf4c527e88f70c29985\",\"email\":"
     "\"6493441e8f46f33fdc68100a1f8cc4d132e3150dd093e047c70a7418304a0630\",\"event\":"
     "\"Unknown USB Device\",\"outcome\":\"would-dispatch\"}\n"},
    {"hashed: an empty user hashes, a missing email stays null",
     1,
     {T0, NULL, "m", STR_LIT("r"), STR_LIT(""), NULL, STR_LIT("e"), "unresolved-user",
      "static: not listed"},
     "{\"time\":\"2026-10-02T09:12:44.120Z\",\"source\":null,\"mapping\":\"m\",\"rule\":\"r\","
     "\"user\":\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\",\"email\":"
     "null,\"event\":\"e\",\"outcome\":\"unresolved-user\",\"detail\":\"static: not listed\"}\n"},
};

static size_t read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f != NULL ? fread(buf, 1, cap - 1, f) : 0;

    buf[n] = '\0';
    if (f != NULL)
        fclose(f);
    return n;
}

/* Checks that line parses as one JSON object whose "user" value reads back
 * as want_user (NULL: null). */
static void check_json(const char *name, const char *line, struct str want_user)
{
    struct json_object *o = json_tokener_parse(line), *v = NULL;

    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        UNIT_FAIL("%s: not a JSON object", name);
        json_object_put(o);
        return;
    }
    CHECK(json_object_object_get_ex(o, "user", &v));
    if (want_user.p == NULL)
        CHECK(v == NULL || json_object_is_type(v, json_type_null));
    else
        CHECK(v != NULL && (size_t)json_object_get_string_len(v) == want_user.len &&
              memcmp(json_object_get_string(v), want_user.p, want_user.len) == 0);
    json_object_put(o);
}

static void test_records(void)
{
    char path[PATH_MAX], buf[4096];
    struct stat st;

    for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++) {
        struct audit_config cfg = {path, records[i].hash_users};
        struct audit *a = NULL;

        snprintf(path, sizeof(path), "%s/audit-%zu.jsonl", tmpdir, i);
        if (audit_open(&cfg, &a) != 0 || a == NULL) {
            UNIT_FAIL("%s: audit_open failed", records[i].name);
            continue;
        }
        CHECK_INT(audit_write(a, &records[i].r), 0);
        audit_free(a);
        read_file(path, buf, sizeof(buf));
        CHECK_STR(records[i].name, str_make(buf, strlen(buf)), records[i].want);
        if (!records[i].hash_users)
            check_json(records[i].name, buf, records[i].r.user);
        CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640);
        unlink(path);
    }
}

/* An existing file is appended to; every write is one whole line. */
static void test_append(void)
{
    char path[PATH_MAX], buf[8192];
    struct audit_config cfg = {path, 0};
    struct audit *a = NULL;
    size_t n, lines = 0;

    snprintf(path, sizeof(path), "%s/append.jsonl", tmpdir);
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs("{\"old\":1}\n", f) == EOF || fclose(f) != 0)
        exit(2);
    CHECK_INT(audit_open(&cfg, &a), 0);
    for (int i = 0; i < 3; i++)
        CHECK_INT(audit_write(a, &records[0].r), 0);
    audit_free(a);
    n = read_file(path, buf, sizeof(buf));
    CHECK(strncmp(buf, "{\"old\":1}\n", 10) == 0);
    for (size_t i = 0; i < n; i++)
        lines += buf[i] == '\n';
    CHECK_INT(lines, 4);
    CHECK_INT(n, 10 + 3 * strlen(records[0].want));
    unlink(path);
}

/* After logrotate renames the file, reopen writes to a new one. */
static void test_reopen(void)
{
    char path[PATH_MAX], rotated[PATH_MAX], buf[4096];
    struct audit_config cfg = {path, 0};
    struct audit *a = NULL;

    snprintf(path, sizeof(path), "%s/audit.jsonl", tmpdir);
    snprintf(rotated, sizeof(rotated), "%s/audit.jsonl.1", tmpdir);
    CHECK_INT(audit_open(&cfg, &a), 0);
    CHECK_INT(audit_write(a, &records[0].r), 0);
    CHECK(rename(path, rotated) == 0);
    CHECK_INT(audit_write(a, &records[1].r), 0); /* still the old file */
    CHECK_INT(audit_reopen(a), 0);
    CHECK_INT(audit_write(a, &records[0].r), 0);
    audit_free(a);
    read_file(path, buf, sizeof(buf));
    CHECK_STR("new file", str_make(buf, strlen(buf)), records[0].want);
    read_file(rotated, buf, sizeof(buf));
    CHECK(strlen(buf) == strlen(records[0].want) + strlen(records[1].want));
    unlink(path);
    unlink(rotated);
}

static void test_no_file_and_errors(void)
{
    char path[PATH_MAX];
    struct audit_config none = {NULL, 0}, bad = {path, 0}, full = {"/dev/full", 0};
    struct audit *a = (struct audit *)&a;

    CHECK_INT(audit_open(&none, &a), 0);
    CHECK(a == NULL);
    CHECK_INT(audit_write(NULL, &records[0].r), 0);
    CHECK_INT(audit_reopen(NULL), 0);
    audit_free(NULL);

    /* Two error lines are expected on stderr below. */
    snprintf(path, sizeof(path), "%s/no/such/dir/audit.jsonl", tmpdir);
    a = (struct audit *)&a;
    CHECK_INT(audit_open(&bad, &a), ERR_IO);
    CHECK(a == NULL);

    if (access("/dev/full", W_OK) == 0) {
        CHECK_INT(audit_open(&full, &a), 0);
        CHECK_INT(audit_write(a, &records[0].r), ERR_IO);
        audit_free(a);
    }
}

int main(void)
{
    umask(022);
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    test_records();
    test_append();
    test_reopen();
    test_no_file_and_errors();
    rmdir(tmpdir);
    return unit_report("audit");
}
