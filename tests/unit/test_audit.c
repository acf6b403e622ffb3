/* The audit log: exact lines (key order, null email, optional detail,
 * escaping) that json-c parses back to the same values, hashed users equal
 * to `echo -n ... | sha256sum` and, with a key, to `openssl dgst -sha256
 * -hmac KEY`, appending to an existing file, mode 0640, reopening after a
 * rename, the no-file no-op, a failing write, key files and folders
 * refused (by audit_open and audit_check with the same lines), audit_check
 * creating and changing nothing, and a write cut short by a file size
 * limit. The dead-letter writer (durable): its size counted from the
 * file's size at each (re)open plus what it wrote, fragments too; a write
 * refused (/dev/full) fails and counts nothing; a file that cannot be
 * synced (/dev/null) still takes lines; audit_check_file names its key
 * (a symbolic link refused, a missing folder reported). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "deliver/audit.h"
#include "errors.h"
#include "unit.h"

static char tmpdir[] = "/tmp/rtr-test-audit.XXXXXX";

/* 2026-10-02T09:12:44Z, plus 120.999999 ms (milliseconds truncate). */
#define T0                                                                                         \
    {                                                                                              \
        1790932364, 120999999                                                                      \
    }

/* The HMAC key of the tests, as its file holds it (the line end is not
 * part of the key). */
#define KEY_TEXT "k3y-for-the-audit-log-tests-only\n"

/* One full record (detail apart), written plain and hashed both ways. */
#define ALICE(detail)                                                                              \
    {                                                                                              \
        T0, "10.0.0.5:51514", "splunk-es-cef", STR_LIT("Brute Force"),                             \
            STR_LIT("EXAMPLE\\amorgan"), "alice.morgan@example.com", "ldap",                       \
            STR_LIT("Unknown USB Device"), "would-dispatch", (detail), NULL, 0, 0, 0, "tls", NULL, \
            NULL, NULL, NULL                                                                       \
    }

/* ALICE(NULL) as written with its user and email hashed to these. */
#define ALICE_HASHED(user, email)                                                                  \
    "{\"time\":\"2026-10-02T09:12:44.120Z\",\"source\":\"10.0.0.5:51514\",\"transport\":\"tls\","  \
    "\"mapping\":"                                                                                 \
    "\"splunk-es-cef\",\"rule\":\"Brute Force\",\"user\":\"" user "\",\"email\":\"" email          \
    "\",\"resolver\":\"ldap\",\"event\":\"Unknown USB Device\",\"outcome\":\"would-dispatch\"}\n"

static const struct {
    const char *name;
    int hash_users;
    struct audit_record r;
    const char *want;
    int keyed; /* hash_key_file names a file holding KEY_TEXT */
} records[] = {
    {"every field", 0, ALICE("static"),
     "{\"time\":\"2026-10-02T09:12:44.120Z\",\"source\":\"10.0.0.5:51514\",\"transport\":\"tls\","
     "\"mapping\":\"splunk-es-cef\",\"rule\":\"Brute "
     "Force\",\"user\":\"EXAMPLE\\\\amorgan\",\"email\":"
     "\"alice.morgan@example.com\",\"resolver\":\"ldap\",\"event\":\"Unknown USB Device\","
     "\"outcome\":"
     "\"would-dispatch\",\"detail\":\"static\"}\n",
     0},
    {"unresolved, no source, no detail, text to escape",
     0,
     {{0, 5000000},
      NULL,
      "m",
      STR_LIT("say \"hi\""),
      STR_LIT("a\nb\x01"),
      NULL,
      NULL,
      STR_LIT("e"),
      "unresolved-user",
      NULL,
      NULL,
      0,
      0,
      0,
      NULL,
      NULL,
      NULL,
      NULL,
      NULL},
     "{\"time\":\"1970-01-01T00:00:00.005Z\",\"source\":null,\"mapping\":\"m\",\"rule\":"
     "\"say \\\"hi\\\"\",\"user\":\"a\\nb\\u0001\",\"email\":null,\"event\":\"e\",\"outcome\":"
     "\"unresolved-user\"}\n",
     0},
    {"a dispatch outcome: key, status, attempts and latency",
     0,
     {T0, "10.0.0.5:51514", "m", STR_LIT("r"), STR_LIT("u"), "u@example.com", NULL, STR_LIT("e"),
      "dispatched", NULL, "ab12", 202, 3, 1500, "", NULL, NULL, NULL, NULL},
     "{\"time\":\"2026-10-02T09:12:44.120Z\",\"source\":\"10.0.0.5:51514\",\"mapping\":\"m\","
     "\"rule\":\"r\",\"user\":\"u\",\"email\":\"u@example.com\",\"event\":\"e\",\"outcome\":"
     "\"dispatched\",\"key\":\"ab12\",\"status\":202,\"attempts\":3,\"latency_ms\":1500}\n",
     0},
    {"under a policy: its name, priority, why and action after the event",
     0,
     {T0, "10.0.0.5:51514", "securonix-violation", STR_LIT("r"), STR_LIT("u"), "u@example.com",
      NULL, STR_LIT("e"), "dispatched", NULL, "ab12", 202, 1, 20, "tcp", "insider-threat",
      "critical", "tiers[0]: when[0] cef.label.riskscore \"87.5\" >= 80", "ticket"},
     "{\"time\":\"2026-10-02T09:12:44.120Z\",\"source\":\"10.0.0.5:51514\",\"transport\":\"tcp\","
     "\"mapping\":\"securonix-violation\",\"rule\":\"r\",\"user\":\"u\",\"email\":\"u@example."
     "com\","
     "\"event\":\"e\",\"policy\":\"insider-threat\",\"priority\":\"critical\",\"why\":\"tiers[0]: "
     "when[0] cef.label.riskscore \\\"87.5\\\" >= 80\",\"action\":\"ticket\",\"outcome\":"
     "\"dispatched\",\"key\":\"ab12\",\"status\":202,\"attempts\":1,\"latency_ms\":20}\n",
     0},
    {"hashed users", 1, ALICE(NULL),
     ALICE_HASHED("8714e24ed21df37ca638c0e96f33f0c500bd91e3ffe1faf4c527e88f70c29985",
                  "6493441e8f46f33fdc68100a1f8cc4d132e3150dd093e047c70a7418304a0630"),
     0},
    {"hashed: an empty user hashes, a missing email stays null",
     1,
     {T0, NULL, "m", STR_LIT("r"), STR_LIT(""), NULL, NULL, STR_LIT("e"), "unresolved-user",
      "static: not listed", NULL, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
     "{\"time\":\"2026-10-02T09:12:44.120Z\",\"source\":null,\"mapping\":\"m\",\"rule\":\"r\","
     "\"user\":\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\",\"email\":"
     "null,\"event\":\"e\",\"outcome\":\"unresolved-user\",\"detail\":\"static: not listed\"}\n",
     0},
    /* printf %s 'EXAMPLE\amorgan' | openssl dgst -sha256 -hmac k3y-for-the-audit-log-tests-only,
     * and the same for the email and for the empty string. */
    {"keyed: HMAC-SHA256 (hash_users implied)", 0, ALICE(NULL),
     ALICE_HASHED("f2b05f3791986886dfe602e5a0dbea72706f448de77a52e5332e66fe8ecbcd3a",
                  "a7e3e470756ef12c6fef2d3f4ab328c070c9699a578edc68fcaf083492e50790"),
     1},
    {"keyed: an empty user",
     1,
     {T0, NULL, "m", STR_LIT("r"), STR_LIT(""), NULL, NULL, STR_LIT("e"), "unresolved-user", NULL,
      NULL, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
     "{\"time\":\"2026-10-02T09:12:44.120Z\",\"source\":null,\"mapping\":\"m\",\"rule\":\"r\","
     "\"user\":\"50a45dd54d4b57f9c2ac4b54ba5feae946ff6b001d487d8c3f0be53ed98e23f0\",\"email\":"
     "null,\"event\":\"e\",\"outcome\":\"unresolved-user\"}\n",
     1},
};

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
    char path[PATH_MAX], key_path[PATH_MAX], buf[4096];
    struct stat st;

    snprintf(key_path, sizeof(key_path), "%s/audit.key", tmpdir);
    unit_write_file(key_path, KEY_TEXT);
    for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++) {
        struct audit_config cfg = {path, records[i].hash_users, records[i].keyed ? key_path : NULL};
        struct audit *a = NULL;

        snprintf(path, sizeof(path), "%s/audit-%zu.jsonl", tmpdir, i);
        if (audit_open(&cfg, &a) != 0 || a == NULL) {
            UNIT_FAIL("%s: audit_open failed", records[i].name);
            continue;
        }
        CHECK_INT(audit_write(a, &records[i].r), 0);
        audit_free(a);
        unit_read_file(path, buf, sizeof(buf));
        CHECK_STR(records[i].name, str_make(buf, strlen(buf)), records[i].want);
        if (!records[i].hash_users && !records[i].keyed)
            check_json(records[i].name, buf, records[i].r.user);
        CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640);
        unlink(path);
    }
    unlink(key_path);
}

/* What run (audit_open) and check (audit_check, after "CONFIG: ") say of
 * a key file that is too short; '@' stands for the key file. */
#define SHORT_KEY                                                                                  \
    "audit.hash_key_file: @: the audit hash key is shorter than 16 bytes (try openssl rand -hex "  \
    "32)"

/* Key files audit_open and audit_check refuse, each with its line; the key
 * never shows. */
static const struct {
    const char *name;
    const char *text; /* NULL: no file; "/": a folder instead */
    const char *log;  /* "@" stands for the key file */
    int rc;
} bad_keys[] = {
    {"missing", NULL,
     "audit.hash_key_file: @: the audit hash key: cannot open: No such file or directory", ERR_IO},
    {"empty", "", SHORT_KEY, ERR_CONFIG},
    {"only a line end", "\r\n", SHORT_KEY, ERR_CONFIG},
    {"short", "0123456789abcde\n", SHORT_KEY, ERR_CONFIG},
    {"a folder", "/", "audit.hash_key_file: @: the audit hash key: cannot read: Is a directory",
     ERR_IO},
};

/* Logs what fn(cfg) logs into log (cap bytes); returns fn's result. */
static int captured(int (*fn)(const struct audit_config *), const struct audit_config *cfg,
                    char *log, size_t cap)
{
    int rc;

    unit_capture_begin();
    rc = fn(cfg);
    unit_capture_end(log, cap);
    return rc;
}

static int open_and_free(const struct audit_config *cfg)
{
    struct audit *a = (struct audit *)&a;
    int rc = audit_open(cfg, &a);

    CHECK(rc == 0 ? a != NULL : a == NULL);
    audit_free(a);
    return rc;
}

static int check_no_config(const struct audit_config *cfg)
{
    return audit_check(cfg, NULL);
}

/* audit_open and audit_check (without a config path) refuse each key with
 * the same line, and with the same result. */
static void test_bad_keys(void)
{
    char path[PATH_MAX], key_path[PATH_MAX], log[4096], check_log[4096];
    struct audit_config cfg = {path, 1, key_path};

    snprintf(path, sizeof(path), "%s/keyed.jsonl", tmpdir);
    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
        const char *text = bad_keys[i].text;

        snprintf(key_path, sizeof(key_path), "%s/bad.key", tmpdir);
        unlink(key_path);
        if (text != NULL && strcmp(text, "/") == 0)
            snprintf(key_path, sizeof(key_path), "%s", tmpdir);
        else if (text != NULL)
            unit_write_file(key_path, text);
        CHECK_INT(captured(open_and_free, &cfg, log, sizeof(log)), bad_keys[i].rc);
        CHECK_INT(captured(check_no_config, &cfg, check_log, sizeof(check_log)), bad_keys[i].rc);
        unit_check_messages(bad_keys[i].name, log, key_path,
                            (const char *const[]){bad_keys[i].log, NULL});
        unit_check_messages(bad_keys[i].name, check_log, key_path,
                            (const char *const[]){bad_keys[i].log, NULL});
        CHECK(strstr(log, "0123456789") == NULL);
    }
    snprintf(key_path, sizeof(key_path), "%s/bad.key", tmpdir);
    unlink(key_path);
    unlink(path);
}

#define CONFIG         "/etc/rtr-agent/rtr-agent.json"
#define SHORT_KEY_LINE CONFIG ": " SHORT_KEY
#define FOLDER_LINE    CONFIG ": audit.file: %: cannot open the audit log: Is a directory"

enum audit_file_kind {
    AF_UNSET,    /* audit.file not set */
    AF_EXISTING, /* a file holding "kept\n" */
    AF_MISSING,  /* not there yet, in an existing folder */
    AF_FOLDER,   /* a folder */
};

/* What audit_check says of each combination; '@' stands for the key file,
 * '%' for the audit log. */
static const struct {
    const char *name;
    const char *key; /* the key file's text; NULL: audit.hash_key_file not set */
    enum audit_file_kind file;
    int rc;
    const char *log[3]; /* NULL-ended */
} checks[] = {
    {"a good key, an existing log", KEY_TEXT, AF_EXISTING, 0, {NULL}},
    {"no key, a log to create", NULL, AF_MISSING, 0, {NULL}},
    {"nothing set", NULL, AF_UNSET, 0, {NULL}},
    {"a short key", "0123456789abcde\n", AF_EXISTING, ERR_CONFIG, {SHORT_KEY_LINE, NULL}},
    {"a short key, even without a log", "short", AF_UNSET, ERR_CONFIG, {SHORT_KEY_LINE, NULL}},
    {"the log is a folder", NULL, AF_FOLDER, ERR_IO, {FOLDER_LINE, NULL}},
    {"both wrong: both reported, the key's result",
     "",
     AF_FOLDER,
     ERR_CONFIG,
     {SHORT_KEY_LINE, FOLDER_LINE, NULL}},
};

/* audit_check reports what audit_open would refuse, naming the config file
 * and the key, and neither creates nor changes the log. */
static void test_check(void)
{
    char key_path[PATH_MAX], path[PATH_MAX], log[8192], want[8192], buf[64];
    struct stat st;

    snprintf(key_path, sizeof(key_path), "%s/check.key", tmpdir);
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        struct audit_config cfg = {NULL, 0, checks[i].key != NULL ? key_path : NULL};
        const char *got[4];
        size_t n, j;

        if (checks[i].key != NULL)
            unit_write_file(key_path, checks[i].key);
        snprintf(path, sizeof(path), "%s/check-%zu%s", tmpdir, i,
                 checks[i].file == AF_FOLDER ? ".d" : ".jsonl");
        if (checks[i].file == AF_EXISTING)
            unit_write_file(path, "kept\n");
        if (checks[i].file == AF_FOLDER)
            CHECK(mkdir(path, 0755) == 0);
        if (checks[i].file != AF_UNSET)
            cfg.file = path;
        unit_capture_begin();
        CHECK_INT(audit_check(&cfg, CONFIG), checks[i].rc);
        unit_capture_end(log, sizeof(log));
        CHECK(strstr(log, "0123456789") == NULL && strstr(log, "k3y") == NULL);
        n = unit_split_messages(log, got, 4);
        for (j = 0; checks[i].log[j] != NULL; j++) {
            unit_expand(want, sizeof(want), checks[i].log[j], key_path, path);
            if (j >= n || strcmp(got[j], want) != 0)
                UNIT_FAIL("%s: line %zu: got '%s', want '%s'", checks[i].name, j,
                          j < n ? got[j] : "(none)", want);
            else
                unit_passed++;
        }
        if (n > j)
            UNIT_FAIL("%s: unexpected line '%s'", checks[i].name, got[j]);
        if (checks[i].file == AF_MISSING)
            CHECK(stat(path, &st) == -1 && errno == ENOENT); /* not created */
        if (checks[i].file == AF_EXISTING) {
            unit_read_file(path, buf, sizeof(buf));
            CHECK_STR(checks[i].name, str_make(buf, strlen(buf)), "kept\n");
        }
        if (checks[i].file == AF_FOLDER)
            rmdir(path);
        else
            unlink(path);
        unlink(key_path);
    }
}

/* A log in a folder that does not exist: refused by audit_check (naming
 * the folder) as by audit_open, and nothing is created. */
static void test_check_missing_folder(void)
{
    char dir[PATH_MAX], path[PATH_MAX + 16], log[4096], want[3 * PATH_MAX];
    struct audit_config cfg = {path, 0, NULL};
    struct stat st;

    snprintf(dir, sizeof(dir), "%s/no-such-folder", tmpdir);
    snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
    unit_capture_begin();
    CHECK_INT(audit_check(&cfg, CONFIG), ERR_IO);
    unit_capture_end(log, sizeof(log));
    snprintf(want, sizeof(want),
             CONFIG
             ": audit.file: %s: cannot create the audit log in %s: No such file or directory",
             path, dir);
    unit_check_messages("missing folder", log, path, (const char *const[]){want, NULL});
    CHECK(stat(dir, &st) == -1 && errno == ENOENT);
    CHECK_INT(captured(open_and_free, &cfg, log, sizeof(log)), ERR_IO);
    CHECK(strstr(log, "audit.file: ") != NULL && strstr(log, path) != NULL);
}

/* An existing file is appended to; every write is one whole line. */
static void test_append(void)
{
    char path[PATH_MAX], buf[8192];
    struct audit_config cfg = {path, 0, NULL};
    struct audit *a = NULL;
    size_t n, lines = 0;

    snprintf(path, sizeof(path), "%s/append.jsonl", tmpdir);
    unit_write_file(path, "{\"old\":1}\n");
    CHECK_INT(audit_open(&cfg, &a), 0);
    for (int i = 0; i < 3; i++)
        CHECK_INT(audit_write(a, &records[0].r), 0);
    audit_free(a);
    n = unit_read_file(path, buf, sizeof(buf));
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
    struct audit_config cfg = {path, 0, NULL};
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
    unit_read_file(path, buf, sizeof(buf));
    CHECK_STR("new file", str_make(buf, strlen(buf)), records[0].want);
    unit_read_file(rotated, buf, sizeof(buf));
    CHECK(strlen(buf) == strlen(records[0].want) + strlen(records[1].want));
    unlink(path);
    unlink(rotated);
}

static void test_no_file_and_errors(void)
{
    char path[PATH_MAX], log[4096];
    struct audit_config none = {NULL, 0, NULL}, bad = {path, 0, NULL},
                        full = {"/dev/full", 0, NULL}, folder = {tmpdir, 0, NULL};
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

    /* A folder: refused with the line check prints after the config path. */
    CHECK_INT(captured(open_and_free, &folder, log, sizeof(log)), ERR_IO);
    unit_check_messages(
        "a folder", log, tmpdir,
        (const char *const[]){"audit.file: @: cannot open the audit log: Is a directory", NULL});

    if (access("/dev/full", W_OK) == 0) {
        CHECK_INT(audit_open(&full, &a), 0);
        CHECK_INT(audit_write(a, &records[0].r), ERR_IO);
        audit_free(a);
    }
}

/* A write cut short by a file size limit leaves a fragment; the lines
 * after it still start on lines of their own. The child process takes the
 * limit (with SIGXFSZ ignored, write(2) fails with EFBIG instead). */
static void test_short_write(void)
{
    char path[PATH_MAX], ref_path[PATH_MAX], buf[8192], want[8192];
    struct audit_config cfg = {path, 0, NULL}, ref_cfg = {ref_path, 0, NULL};
    const size_t cut = 40; /* bytes of the first line that fit */
    struct audit *a = NULL;
    size_t l0, l1;
    int status = -1;
    pid_t pid;

    snprintf(path, sizeof(path), "%s/cut.jsonl", tmpdir);
    snprintf(ref_path, sizeof(ref_path), "%s/ref.jsonl", tmpdir);
    /* The lines as written without a limit. */
    CHECK_INT(audit_open(&ref_cfg, &a), 0);
    CHECK_INT(audit_write(a, &records[0].r), 0);
    CHECK_INT(audit_write(a, &records[1].r), 0);
    audit_free(a);
    l0 = strlen(records[0].want);
    l1 = unit_read_file(ref_path, want, sizeof(want)) - l0;
    CHECK(l1 > 0 && want[l0 + l1 - 1] == '\n');

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        struct rlimit rl;
        int fd = open("/dev/null", O_WRONLY), ok = 1;

        dup2(fd, 2); /* the error lines are expected */
        signal(SIGXFSZ, SIG_IGN);
        ok &= getrlimit(RLIMIT_FSIZE, &rl) == 0;
        rlim_t saved = rl.rlim_cur;
        rl.rlim_cur = cut;
        ok &= setrlimit(RLIMIT_FSIZE, &rl) == 0;
        ok &= audit_open(&cfg, &a) == 0;
        ok &= audit_write(a, &records[0].r) == ERR_IO; /* cut after 40 bytes */
        ok &= audit_write(a, &records[0].r) == ERR_IO; /* nothing more fits */
        rl.rlim_cur = saved;
        ok &= setrlimit(RLIMIT_FSIZE, &rl) == 0;
        ok &= audit_write(a, &records[1].r) == 0;
        ok &= audit_write(a, &records[1].r) == 0;
        audit_free(a);
        _exit(ok ? 0 : 1);
    }
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The fragment, a newline that ends it, then two whole lines. */
    memcpy(buf, want, cut);
    buf[cut] = '\n';
    memcpy(buf + cut + 1, want + l0, l1);
    memcpy(buf + cut + 1 + l1, want + l0, l1);
    buf[cut + 1 + 2 * l1] = '\0';
    unit_read_file(path, want, sizeof(want));
    CHECK_STR("cut short", str_make(want, strlen(want)), buf);
    unlink(path);
    unlink(ref_path);
}

/* The dead-letter writer: audit_bytes follows the file through writes and
 * a reopen after a rename. */
static void test_durable_bytes(void)
{
    char path[PATH_MAX], rotated[PATH_MAX], buf[8192];
    struct audit_config cfg = {path, 0, NULL};
    struct audit *a = NULL;
    size_t l0 = strlen(records[0].want), l1 = strlen(records[1].want);

    snprintf(path, sizeof(path), "%s/dead.jsonl", tmpdir);
    snprintf(rotated, sizeof(rotated), "%s/dead.jsonl.1", tmpdir);
    unit_write_file(path, "{\"old\":1}\n");
    CHECK_INT(audit_new(&cfg, "spool.dead_letter", 1, &a), 0);
    CHECK_INT(audit_bytes(a), 0); /* not open yet */
    CHECK_INT(audit_reopen(a), 0);
    CHECK_INT(audit_bytes(a), 10);
    CHECK_INT(audit_write(a, &records[0].r), 0);
    CHECK_INT(audit_bytes(a), 10 + l0);
    CHECK(rename(path, rotated) == 0);
    CHECK_INT(audit_write(a, &records[1].r), 0); /* the old file still */
    CHECK_INT(audit_bytes(a), 10 + l0 + l1);
    CHECK_INT(audit_reopen(a), 0);
    CHECK_INT(audit_bytes(a), 0); /* a new file */
    CHECK_INT(audit_write(a, &records[1].r), 0);
    CHECK_INT(audit_bytes(a), l1);
    audit_free(a);
    CHECK_INT(unit_read_file(rotated, buf, sizeof(buf)), 10 + l0 + l1);
    CHECK_INT(unit_read_file(path, buf, sizeof(buf)), l1);
    CHECK_INT(audit_bytes(NULL), 0);
    unlink(path);
    unlink(rotated);

    /* /dev/null cannot be synced (EINVAL) but keeps nothing to sync: its
     * lines are taken. /dev/full refuses them: nothing counted. */
    cfg.file = "/dev/null";
    a = NULL;
    CHECK_INT(audit_new(&cfg, "spool.dead_letter", 1, &a), 0);
    CHECK_INT(audit_reopen(a), 0);
    CHECK_INT(audit_write(a, &records[0].r), 0);
    audit_free(a);
    if (access("/dev/full", W_OK) == 0) {
        cfg.file = "/dev/full";
        a = NULL;
        CHECK_INT(audit_new(&cfg, "spool.dead_letter", 1, &a), 0);
        CHECK_INT(audit_reopen(a), 0);
        unit_capture_begin();
        CHECK_INT(audit_write(a, &records[0].r), ERR_IO);
        unit_capture_end(buf, sizeof(buf));
        CHECK(strstr(buf, "/dev/full: cannot write (0 of ") != NULL);
        CHECK_INT(audit_bytes(a), 0);
        audit_free(a);
    }
}

/* audit_check_file checks any key's file as audit_check checks audit.file,
 * in that key's name. */
static void test_check_file(void)
{
    char path[PATH_MAX], target[PATH_MAX], log[4096], want[3 * PATH_MAX];

    snprintf(path, sizeof(path), "%s/no-such-folder/dead.jsonl", tmpdir);
    unit_capture_begin();
    CHECK_INT(audit_check_file(path, "spool.dead_letter", CONFIG), ERR_IO);
    unit_capture_end(log, sizeof(log));
    snprintf(want, sizeof(want),
             CONFIG ": spool.dead_letter: %s: cannot create the dead-letter file in %s/"
                    "no-such-folder: No such file or directory",
             path, tmpdir);
    unit_check_messages("missing folder", log, path, (const char *const[]){want, NULL});

    snprintf(path, sizeof(path), "%s/dead-link.jsonl", tmpdir);
    snprintf(target, sizeof(target), "%s/dead-target", tmpdir);
    unit_write_file(target, "kept\n");
    CHECK(symlink(target, path) == 0);
    unit_capture_begin();
    CHECK_INT(audit_check_file(path, "spool.dead_letter", CONFIG), ERR_IO);
    unit_capture_end(log, sizeof(log));
    unit_check_messages("a link", log, path,
                        (const char *const[]){CONFIG ": spool.dead_letter: @: cannot open the "
                                                     "dead-letter file: it is a symbolic link "
                                                     "(refused)",
                                              NULL});
    unlink(path);
    CHECK_INT(audit_check_file(path, "spool.dead_letter", CONFIG), 0); /* to be created */
    CHECK_INT(audit_check_file(target, "spool.dead_letter", CONFIG), 0);
    CHECK_INT(audit_check_file(NULL, "spool.dead_letter", CONFIG), 0);
    unlink(target);
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
    test_bad_keys();
    test_check();
    test_check_missing_folder();
    test_short_write();
    test_durable_bytes();
    test_check_file();
    rmdir(tmpdir);
    return unit_report("audit");
}
