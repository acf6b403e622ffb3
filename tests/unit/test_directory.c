/* The static directory: the shipped sample, RFC 4180 details (quotes, ""
 * escapes, CRLF, BOM, comments, a last line without newline) as a table of
 * files and lookups, every load error with its line number as logged, a
 * table large enough to grow many times, and the identifier comparison. */
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "directory.h"
#include "errors.h"
#include "unit.h"

static char tmpdir[] = "/tmp/rtr-test-directory.XXXXXX";

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");

    if (f == NULL || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

/* Writes len bytes of text as users.csv in the temp dir and loads it with
 * stderr captured into err. */
static int load_bytes(const char *text, size_t len, char *path, struct directory **d, char *err,
                      size_t cap)
{
    int rc;

    snprintf(path, PATH_MAX, "%s/users.csv", tmpdir);
    write_file(path, text, len);
    unit_capture_begin();
    rc = directory_load(path, d);
    unit_capture_end(err, cap);
    return rc;
}

/* The message part of each captured log line ("<time> error: MSG"). */
static size_t split_messages(char *text, const char **msgs, size_t max)
{
    size_t n = 0;

    for (char *line = strtok(text, "\n"); line != NULL && n < max; line = strtok(NULL, "\n")) {
        char *m = strstr(line, " error: ");
        msgs[n++] = m != NULL ? m + 8 : line;
    }
    return n;
}

/* Compares the logged messages with want (NULL-ended; "@" stands for the
 * path). */
static void check_messages(const char *ctx, char *err, const char *path, const char *const *want)
{
    const char *got[8];
    size_t n = split_messages(err, got, 8), i;
    char expected[512];

    for (i = 0; want[i] != NULL; i++) {
        const char *at = strchr(want[i], '@');
        if (at != NULL)
            snprintf(expected, sizeof(expected), "%.*s%s%s", (int)(at - want[i]), want[i], path,
                     at + 1);
        else
            snprintf(expected, sizeof(expected), "%s", want[i]);
        if (i >= n)
            UNIT_FAIL("%s: line %zu missing, want '%s'", ctx, i, expected);
        else if (strcmp(got[i], expected) != 0)
            UNIT_FAIL("%s: line %zu: got '%s', want '%s'", ctx, i, got[i], expected);
        else
            unit_passed++;
    }
    if (n > i)
        UNIT_FAIL("%s: %zu more lines than expected, first '%s'", ctx, n - i, got[i]);
}

struct lookup {
    const char *id;
    const char *email; /* NULL: not listed */
};

static const struct {
    const char *name;
    const char *text; /* NUL-terminated: no test file here needs a NUL */
    size_t count;
    struct lookup lookups[6];
} good_files[] = {
    {"quoted comma",
     "\"Smith, John\",john@example.com\n",
     1,
     {{"smith, john", "john@example.com"}, {"Smith", NULL}}},
    {"\"\" escapes",
     "\"say \"\"hi\"\"\",q@example.com\n\"\"\"\",quote@example.com\n",
     2,
     {{"say \"hi\"", "q@example.com"}, {"\"", "quote@example.com"}, {"say \"\"hi\"\"", NULL}}},
    {"quoted email", "a,\"a@example.com\"\n", 1, {{"a", "a@example.com"}}},
    {"CRLF line ends",
     "a,a@example.com\r\nb,b@example.com\r\n",
     2,
     {{"a", "a@example.com"}, {"b", "b@example.com"}}},
    {"a last line without newline",
     "a,a@example.com\nb,b@example.com",
     2,
     {{"b", "b@example.com"}}},
    {"a BOM",
     "\xEF\xBB\xBF"
     "a,a@example.com\n",
     1,
     {{"a", "a@example.com"},
      {"\xEF\xBB\xBF"
       "a",
       NULL}}},
    {"comments and blank lines",
     "# identifier,email\n\n   \n\t# indented\r\n#x,x@example.com\n"
     "a,a@example.com\n\n",
     1,
     {{"a", "a@example.com"}, {"#x", NULL}, {"# identifier", NULL}}},
    {"# as data",
     "\"#tag\",t@example.com\nb,b#c@example.com\n",
     2,
     {{"#tag", "t@example.com"}, {"b", "b#c@example.com"}}},
    {"blanks around fields",
     "a , a@example.com \n  \"b\" ,\t\"b@example.com\"\n",
     2,
     {{"a", "a@example.com"}, {"b", "b@example.com"}}},
    {"the same email twice", "a,a@example.com\nA,a@example.com\n", 1, {{"a", "a@example.com"}}},
    {"an empty file", "", 0, {{"a", NULL}, {"", NULL}}},
    {"ASCII case folds, other bytes do not",
     "EXAMPLE\\AMorgan,am@example.com\n\xC3\x84nne,anne@example.com\n",
     2,
     {{"example\\amorgan", "am@example.com"},
      {"EXAMPLE\\AMORGAN", "am@example.com"},
      {"\xC3\x84NNE", "anne@example.com"},
      {"\xC3\xA4nne", NULL},
      {"EXAMPLE\\AMORGAN ", NULL}}},
};

static void test_good_files(void)
{
    char path[PATH_MAX], err[4096];

    for (size_t i = 0; i < sizeof(good_files) / sizeof(good_files[0]); i++) {
        struct directory *d = NULL;
        int rc =
            load_bytes(good_files[i].text, strlen(good_files[i].text), path, &d, err, sizeof(err));

        if (rc != 0 || err[0] != '\0') {
            UNIT_FAIL("%s: rc %d, log '%s'", good_files[i].name, rc, err);
            continue;
        }
        CHECK_INT(directory_count(d), good_files[i].count);
        for (const struct lookup *l = good_files[i].lookups; l->id != NULL; l++) {
            const char *got = directory_lookup(d, str_make(l->id, strlen(l->id)));
            if (l->email == NULL ? got == NULL : got != NULL && strcmp(got, l->email) == 0)
                unit_passed++;
            else
                UNIT_FAIL("%s: lookup '%s': got %s, want %s", good_files[i].name, l->id,
                          got ? got : "NULL", l->email ? l->email : "NULL");
        }
        directory_free(d);
    }
}

static const struct {
    const char *name;
    const char *text;
    const char *want[6]; /* every logged line, in order */
} bad_files[] = {
    {"unterminated quote", "\"abc,a@example.com\n", {"@:1: unterminated quote"}},
    {"unterminated quote in the email",
     "a,\"a@example.com\r\nb,b@example.com\n",
     {"@:1: unterminated quote"}},
    {"text after a closing quote", "\"abc\"d,a@example.com\n", {"@:1: text after a closing quote"}},
    {"missing email",
     "ok,ok@example.com\nabc\nabc,\n\"abc\",\"\"\n",
     {"@:2: missing email", "@:3: missing email", "@:4: missing email"}},
    {"more than two fields",
     "a,a@example.com,x\nb,b@example.com,\n",
     {"@:1: more than two fields", "@:2: more than two fields"}},
    {"empty identifier",
     ",a@example.com\n\"\",a@example.com\n  ,a@example.com\n",
     {"@:1: empty identifier", "@:2: empty identifier", "@:3: empty identifier"}},
    {"email without @", "a,example.com\n", {"@:1: email without '@'"}},
    {"email with spaces",
     "a,\"a b@example.com\"\nb,b@exa\tmple.com\n",
     {"@:1: email contains a space or control character",
      "@:2: email contains a space or control character"}},
    {"duplicate identifier",
     "# users\na,a@example.com\nb,b@example.com\nA,other@example.com\n",
     {"@:4: duplicate identifier \"A\" with a different email (line 2)"}},
    {"every problem, each on its line",
     "a,a@example.com\n\"b,b@example.com\nc\n\n# fine\nd,d@example.com,e\nok,ok@example.com\n",
     {"@:2: unterminated quote", "@:3: missing email", "@:6: more than two fields"}},
};

static void test_bad_files(void)
{
    char path[PATH_MAX], err[4096];

    for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
        struct directory *d = (struct directory *)&d; /* must be reset */
        int rc =
            load_bytes(bad_files[i].text, strlen(bad_files[i].text), path, &d, err, sizeof(err));

        if (rc != ERR_CONFIG)
            UNIT_FAIL("%s: rc %d, want ERR_CONFIG", bad_files[i].name, rc);
        else
            unit_passed++;
        CHECK(d == NULL);
        check_messages(bad_files[i].name, err, path, bad_files[i].want);
    }
}

/* Fields of exactly DIRECTORY_MAX_FIELD bytes load; one more byte, quoted
 * or not, is an error naming the field. */
static void test_field_length(void)
{
    static char text[8 * DIRECTORY_MAX_FIELD];
    char path[PATH_MAX], err[4096], id[DIRECTORY_MAX_FIELD + 2], email[DIRECTORY_MAX_FIELD + 2];
    struct directory *d = NULL;
    size_t n;

    memset(id, 'i', sizeof(id));
    memset(email, 'e', sizeof(email));
    email[0] = '@';

    n = (size_t)snprintf(text, sizeof(text), "%.*s,%.*s\n", DIRECTORY_MAX_FIELD, id,
                         DIRECTORY_MAX_FIELD, email);
    CHECK_INT(load_bytes(text, n, path, &d, err, sizeof(err)), 0);
    CHECK_INT(directory_count(d), 1);
    CHECK(directory_lookup(d, str_make(id, DIRECTORY_MAX_FIELD)) != NULL);
    directory_free(d);

    n = (size_t)snprintf(text, sizeof(text), "%.*s,a@b\n\"%.*s\",a@b\nok,%.*s\nok2,\"%.*s\"\n",
                         DIRECTORY_MAX_FIELD + 1, id, DIRECTORY_MAX_FIELD + 1, id,
                         DIRECTORY_MAX_FIELD + 1, email, DIRECTORY_MAX_FIELD + 1, email);
    CHECK_INT(load_bytes(text, n, path, &d, err, sizeof(err)), ERR_CONFIG);
    check_messages("field too long", err, path,
                   (const char *const[]){"@:1: identifier longer than 1024 bytes",
                                         "@:2: identifier longer than 1024 bytes",
                                         "@:3: email longer than 1024 bytes",
                                         "@:4: email longer than 1024 bytes", NULL});
}

static void test_unreadable(void)
{
    char path[PATH_MAX], err[4096], want[PATH_MAX + 64];
    struct directory *d = NULL;

    snprintf(path, sizeof(path), "%s/missing.csv", tmpdir);
    unit_capture_begin();
    CHECK_INT(directory_load(path, &d), ERR_IO);
    unit_capture_end(err, sizeof(err));
    CHECK(d == NULL);
    snprintf(want, sizeof(want), " error: %s: cannot open: No such file or directory\n", path);
    CHECK(strstr(err, want) != NULL);

    unit_capture_begin();
    CHECK_INT(directory_load(tmpdir, &d), ERR_IO);
    unit_capture_end(err, sizeof(err));
    snprintf(want, sizeof(want), " error: %s: cannot read: Is a directory\n", tmpdir);
    CHECK(strstr(err, want) != NULL);
}

/* The shipped sample directory. */
static void test_sample(void)
{
    const char *shared = getenv("SHARED") ? getenv("SHARED") : "../shared";
    char path[PATH_MAX], err[4096];
    struct directory *d = NULL;
    static const struct lookup lookups[] = {
        {"example\\AMORGAN", "alice.morgan@example.com"},
        {"AMorgan", "alice.morgan@example.com"},
        {"E.O'NEIL@example.com", "eimear.oneil@example.com"},
        {"2044", "henrik.lund@example.com"},
        {"s-1-5-21-1004336348-1177238915-682003330-1109", "ivan.petrov@example.com"},
        {"JSATO_partner.example#EXT#@example.onmicrosoft.com", "jun.sato@partner.example"},
        {"example\\nobody", NULL},
        {"# identifier", NULL},
    };

    snprintf(path, sizeof(path), "%s/samples/users.csv", shared);
    unit_capture_begin();
    CHECK_INT(directory_load(path, &d), 0);
    unit_capture_end(err, sizeof(err));
    CHECK_STR("sample log", str_make(err, strlen(err)), "");
    CHECK_INT(directory_count(d), 12);
    for (size_t i = 0; i < sizeof(lookups) / sizeof(lookups[0]); i++) {
        const char *email = directory_lookup(d, str_make(lookups[i].id, strlen(lookups[i].id)));
        struct str got = email != NULL ? str_make(email, strlen(email)) : STR_ABSENT;
        CHECK_STR(lookups[i].id, got, lookups[i].email);
    }
    directory_free(d);
}

/* Enough entries to grow the table many times; every one is found after. */
static void test_many(void)
{
    enum { N = 5000 };
    char path[PATH_MAX], err[4096], id[32], want[64];
    size_t cap = (size_t)N * 48, n = 0;
    char *text = malloc(cap);
    struct directory *d = NULL;
    size_t misses = 0;

    if (text == NULL)
        exit(2);
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(text + n, cap - n, "User%d,user%d@example.com\n", i, i);
    CHECK_INT(load_bytes(text, n, path, &d, err, sizeof(err)), 0);
    CHECK_INT(directory_count(d), N);
    for (int i = 0; i < N; i++) {
        const char *got;
        snprintf(id, sizeof(id), "USER%d", i);
        snprintf(want, sizeof(want), "user%d@example.com", i);
        got = directory_lookup(d, str_make(id, strlen(id)));
        misses += got == NULL || strcmp(got, want) != 0;
    }
    CHECK_INT(misses, 0);
    CHECK(directory_lookup(d, STR_LIT("user5000")) == NULL);
    CHECK(directory_lookup(d, STR_ABSENT) == NULL);
    CHECK(directory_lookup(NULL, STR_LIT("user1")) == NULL);
    directory_free(d);
    free(text);
}

static void test_compare(void)
{
    CHECK(directory_id_equal(STR_LIT("Ab\\C@d"), STR_LIT("aB\\c@D")));
    CHECK(!directory_id_equal(STR_LIT("ab"), STR_LIT("abc")));
    CHECK(!directory_id_equal(STR_LIT("\xC3\x84"), STR_LIT("\xC3\xA4")));
    /* '@' and '[' sit next to 'A' and 'Z': they must not fold. */
    CHECK(!directory_id_equal(STR_LIT("@["), STR_LIT("`{")));
    CHECK(directory_id_hash(STR_LIT("EXAMPLE\\AMorgan")) ==
          directory_id_hash(STR_LIT("example\\amorgan")));
    CHECK(directory_id_hash(STR_LIT("a")) != directory_id_hash(STR_LIT("b")));
}

int main(void)
{
    char path[PATH_MAX];

    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    test_good_files();
    test_bad_files();
    test_field_length();
    test_unreadable();
    test_sample();
    test_many();
    test_compare();
    snprintf(path, sizeof(path), "%s/users.csv", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    return unit_report("directory");
}
