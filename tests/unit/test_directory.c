/* The static directory: the shipped sample, RFC 4180 details (quotes, ""
 * escapes, CRLF, BOM, comments, a last line without newline) as a table of
 * files and lookups, every load error with its line number as logged, a
 * table large enough to grow many times, and the identifier comparison
 * (Unicode case folding of Latin, Greek and Cyrillic, invalid UTF-8 read
 * within bounds) with its keyed hash (the SipHash-2-4 reference vector). */
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "identity/directory.h"
#include "errors.h"
#include "unit.h"

static char tmpdir[] = "/tmp/rtr-test-directory.XXXXXX";

/* Writes len bytes of text as users.csv in the temp dir and loads it with
 * stderr captured into err. */
static int load_bytes(const char *text, size_t len, char *path, struct directory **d, char *err,
                      size_t cap)
{
    int rc;

    snprintf(path, PATH_MAX, "%s/users.csv", tmpdir);
    unit_write_bytes(path, text, len);
    unit_capture_begin();
    rc = directory_load(path, d);
    unit_capture_end(err, cap);
    return rc;
}

struct lookup {
    const char *id;
    const char *email; /* NULL: not listed */
};

static const struct {
    const char *name;
    const char *text; /* NUL-terminated: no test file here needs a NUL */
    size_t count;
    struct lookup lookups[12]; /* ends at the first NULL id */
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
    /* Mapping values are trimmed: "quoted " could never be looked up. */
    {"blanks inside quotes",
     "\"quoted \",q@example.com\n\"\t a b\t\",\" ab@example.com\t\"\n\" \"\"x\"\" "
     "\",x@example.com\n",
     3,
     {{"quoted", "q@example.com"},
      {"quoted ", NULL},
      {"a b", "ab@example.com"},
      {"\"x\"", "x@example.com"}}},
    {"a BOM and CRLF, as spreadsheets write",
     "\xEF\xBB\xBF"
     "bom,bom@example.com\r\n",
     1,
     {{"bom", "bom@example.com"}, {"BOM", "bom@example.com"}}},
    {"the same email twice", "a,a@example.com\nA,a@example.com\n", 1, {{"a", "a@example.com"}}},
    {"an empty file", "", 0, {{"a", NULL}, {"", NULL}}},
    {"Latin, Greek and Cyrillic case folds; other characters and bytes do not",
     "EXAMPLE\\AMorgan,am@example.com\n\xC3\x84nne,anne@example.com\n"
     "\xE1\xBA\x9E"
     "e,sse@example.com\nx\xFF,xff@example.com\n",
     4,
     {{"example\\amorgan", "am@example.com"},
      {"EXAMPLE\\AMORGAN", "am@example.com"},
      {"\xC3\x84NNE", "anne@example.com"},
      {"\xC3\xA4nne", "anne@example.com"},
      {"anne", NULL},
      {"\xC3\x9F"
       "e",
       NULL}, /* U+1E9E (capital sharp s) has no simple folding here */
      {"\xE1\xBA\x9E"
       "E",
       "sse@example.com"},
      {"X\xFF", "xff@example.com"},
      {"X\xDF", NULL},
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
     ",a@example.com\n\"\",a@example.com\n  ,a@example.com\n\" \t\",a@example.com\n",
     {"@:1: empty identifier", "@:2: empty identifier", "@:3: empty identifier",
      "@:4: empty identifier"}},
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
        unit_check_messages(bad_files[i].name, err, path, bad_files[i].want);
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
    unit_check_messages("field too long", err, path,
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

/* Identifier pairs and whether they are the same identifier. */
static const struct {
    struct str a, b;
    int equal;
} pairs[] = {
    {STR_LIT("Ab\\C@d"), STR_LIT("aB\\c@D"), 1},
    {STR_LIT("ab"), STR_LIT("abc"), 0},
    /* '@' and '[' sit next to 'A' and 'Z': they must not fold. */
    {STR_LIT("@["), STR_LIT("`{"), 0},
    /* Latin-1: EXAMPLE\Jürgen, EXAMPLE\JÜRGEN; × and ÷ are no pair. */
    {STR_LIT("EXAMPLE\\J\xC3\xBCrgen"), STR_LIT("example\\J\xC3\x9CRGEN"), 1},
    {STR_LIT("\xC3\x80\xC3\x9E"), STR_LIT("\xC3\xA0\xC3\xBE"), 1},
    {STR_LIT("\xC3\x97"), STR_LIT("\xC3\xB7"), 0},
    {STR_LIT("\xC2\xB5"), STR_LIT("\xCE\x9C"), 1}, /* micro sign, Greek Mu */
    /* Latin Extended-A: Łukasz, ŁUKASZ; Ÿ/ÿ; ſ/s; İ, ı and ĸ fold to nothing */
    {STR_LIT("\xC5\x81ukasz"), STR_LIT("\xC5\x82UKASZ"), 1},
    {STR_LIT("\xC4\x80\xC4\xB6\xC4\xB9\xC5\x87\xC5\x8A\xC5\xB6\xC5\xB9\xC5\xBD"),
     STR_LIT("\xC4\x81\xC4\xB7\xC4\xBA\xC5\x88\xC5\x8B\xC5\xB7\xC5\xBA\xC5\xBE"), 1},
    {STR_LIT("\xC5\xB8"), STR_LIT("\xC3\xBF"), 1},
    {STR_LIT("\xC5\xBF"), STR_LIT("S"), 1},
    {STR_LIT("\xC4\xB0"), STR_LIT("i"), 0},
    {STR_LIT("\xC4\xB0"), STR_LIT("\xC4\xB1"), 0},
    {STR_LIT("\xC4\xB1"), STR_LIT("I"), 0},
    {STR_LIT("\xC4\xB8"), STR_LIT("\xC4\xB9"), 0},
    {STR_LIT("\xC5\x88"), STR_LIT("\xC5\x89"), 0},
    /* Greek: ΝΙΚΟΣ/νικος (final sigma too), ΑΩ/αω; Έ (U+0388) is outside
     * the folded range. */
    {STR_LIT("\xCE\x9D\xCE\x99\xCE\x9A\xCE\x9F\xCE\xA3"),
     STR_LIT("\xCE\xBD\xCE\xB9\xCE\xBA\xCE\xBF\xCF\x82"), 1},
    {STR_LIT("\xCE\x91\xCE\xA9"), STR_LIT("\xCE\xB1\xCF\x89"), 1},
    {STR_LIT("\xCE\x88"), STR_LIT("\xCE\xAD"), 0},
    /* Cyrillic: ИВАНОВ/иванов, ЁЖИК/ёжик, Ђ/ђ (U+0402/U+0452) */
    {STR_LIT("\xD0\x98\xD0\x92\xD0\x90\xD0\x9D\xD0\x9E\xD0\x92"),
     STR_LIT("\xD0\xB8\xD0\xB2\xD0\xB0\xD0\xBD\xD0\xBE\xD0\xB2"), 1},
    {STR_LIT("\xD0\x81\xD0\x96\xD0\x98\xD0\x9A"), STR_LIT("\xD1\x91\xD0\xB6\xD0\xB8\xD0\xBA"), 1},
    {STR_LIT("\xD0\x82\xD0\x8F"), STR_LIT("\xD1\x92\xD1\x9F"), 1},
    /* Elsewhere, bytes compare as they are: a 3-byte character, and bytes
     * that are not UTF-8 (a cut sequence at the end, a stray continuation
     * byte, an overlong 'A', a lead byte before ASCII). */
    {STR_LIT("\xE1\xBA\x9E"), STR_LIT("\xC3\x9F"), 0},
    {STR_LIT("\xE1\xBA\x9E"), STR_LIT("\xE1\xBA\x9E"), 1},
    {STR_LIT("ab\xC3"), STR_LIT("AB\xC3"), 1},
    {STR_LIT("ab\xC3"), STR_LIT("ab\xC3\xA4"), 0},
    {STR_LIT("\xC3\xA4"), STR_LIT("\xE4"), 0},
    {STR_LIT("\x84"), STR_LIT("\xC3\x84"), 0},
    {STR_LIT("\xC1\x81"), STR_LIT("a"), 0},
    {STR_LIT("\xC1\x81"), STR_LIT("\xC1\xA1"), 0},
    {STR_LIT("\xC3Z"), STR_LIT("\xC3z"), 1},
    {STR_LIT("\xC3"), STR_LIT("\xC4"), 0},
};

/* A heap copy of exactly s.len bytes: reading past it is an ASan error. */
static struct str exact(struct str s)
{
    char *p = malloc(s.len > 0 ? s.len : 1);

    if (p == NULL)
        exit(2);
    memcpy(p, s.p, s.len);
    return str_make(p, s.len);
}

static void test_compare(void)
{
    struct directory_hash_key key, other;

    CHECK_INT(directory_hash_key_init(&key), 0);
    CHECK_INT(directory_hash_key_init(&other), 0);
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        struct str a = exact(pairs[i].a), b = exact(pairs[i].b);
        int eq = directory_id_equal(a, b);

        if (eq != pairs[i].equal || directory_id_equal(b, a) != eq)
            UNIT_FAIL("pair %zu: equal %d, want %d", i, eq, pairs[i].equal);
        else if (eq && directory_id_hash(&key, a) != directory_id_hash(&key, b))
            UNIT_FAIL("pair %zu: equal but hashed apart", i);
        else
            unit_passed++;
        free((char *)a.p);
        free((char *)b.p);
    }
    CHECK(directory_id_hash(&key, STR_LIT("a")) != directory_id_hash(&key, STR_LIT("b")));
    /* A fresh key per table: the same identifier lands elsewhere. */
    CHECK(directory_id_hash(&key, STR_LIT("amorgan")) !=
          directory_id_hash(&other, STR_LIT("amorgan")));
}

/* The reference SipHash-2-4 vector (the paper's appendix A: key 00..0f,
 * message 00..0e); no byte of it folds, so the hash is plain SipHash. */
static void test_siphash(void)
{
    const struct directory_hash_key key = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
    char msg[15];

    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (char)i;
    CHECK(directory_id_hash(&key, str_make(msg, sizeof(msg))) == 0xa129ca6149be45e5ULL);
    CHECK(directory_id_hash(&key, str_make(msg, 0)) == 0x726fdb47dd0e0e31ULL);
}

/* A directory file in three scripts, looked up in the other case. */
static void test_unicode_lookup(void)
{
    static const char csv[] = "EXAMPLE\\J\xC3\xBCrgen,juergen@example.com\n"
                              "\xCE\x9D\xCE\xB9\xCE\xBA\xCE\xBF\xCF\x82,nikos@example.com\n"
                              "\xD0\x98\xD0\xB2\xD0\xB0\xD0\xBD,ivan@example.com\n";
    static const struct {
        const char *id, *email;
    } lookups[] = {
        {"example\\J\xC3\x9CRGEN", "juergen@example.com"},
        {"\xCE\x9D\xCE\x99\xCE\x9A\xCE\x9F\xCE\xA3", "nikos@example.com"},
        {"\xD0\x98\xD0\x92\xD0\x90\xD0\x9D", "ivan@example.com"},
        {"\xD0\xB8\xD0\xB2\xD0\xB0\xD0\xBD", "ivan@example.com"},
        {"example\\jurgen", NULL},
    };
    char path[PATH_MAX], err[1024];
    struct directory *d = NULL;

    CHECK_INT(load_bytes(csv, sizeof(csv) - 1, path, &d, err, sizeof(err)), 0);
    for (size_t i = 0; i < sizeof(lookups) / sizeof(lookups[0]); i++) {
        const char *got = directory_lookup(d, str_make(lookups[i].id, strlen(lookups[i].id)));
        CHECK_STR(lookups[i].id, (got != NULL ? str_make(got, strlen(got)) : STR_ABSENT),
                  lookups[i].email);
    }
    directory_free(d);
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
    test_siphash();
    test_unicode_lookup();
    snprintf(path, sizeof(path), "%s/users.csv", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    return unit_report("directory");
}
