/* regex: the required-literal analysis (a table, each row with a subject that
 * must still match, plus a randomized comparison against plain PCRE2 that
 * would catch a literal some match lacks), limits against a catastrophic
 * pattern, invalid UTF-8 subjects, duplicate group names, compile errors.
 *
 * Everything that matches runs twice: with JIT (when PCRE2 has it here), and
 * with the interpreter (REGEX_NO_JIT), as a system without executable memory
 * or limits.regex_jit false runs it. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>

#include "errors.h"
#include "decide/regex.h"
#include "unit.h"

static int no_jit;   /* the second pass: compile with REGEX_NO_JIT */
static int have_jit; /* PCRE2 was built with JIT */

static struct regex_env *env;

static struct regex *compile(const char *pattern, unsigned flags)
{
    struct regex *re;
    char err[160];

    if (regex_compile(pattern, flags | (no_jit ? REGEX_NO_JIT : 0), &re, err, sizeof(err)) != 0) {
        UNIT_FAIL("%s: %s", pattern, err);
        return NULL;
    }
    /* Each pass really runs the engine it claims to. */
    CHECK_INT(regex_is_jit(re), have_jit && !no_jit);
    return re;
}

static int match(const struct regex *re, const char *subject)
{
    return regex_match(re, env, str_make(subject, strlen(subject)));
}

/* pattern -> required literal ("" for none) -> a subject that must match. */
static const struct {
    const char *pattern;
    const char *literal;
    const char *subject;
} literals[] = {
    {"search_name=\"(?<rule>[^\"]+)\"", "search_name=\"", "x search_name=\"Rule\" y"},
    {"a|b", "", "b"},
    {"(?i)abc", "", "ABC"},
    {"a(?i:b)cd", "", "aBcd"},
    {"(?x) a b", "", "ab"},
    {"(?-i)abc", "", "abc"},
    {"ab?c", "a", "ac"},
    {"ab*cd", "cd", "acd"},
    {"abc{0,2}d", "ab", "abd"},
    {"ab{2}c", "a", "abbc"},
    {"a{b", "b", "a{b"},
    {"x\\.y", "x.y", "x.y"},
    {"[abc]def", "def", "adef"},
    {"abc+d", "abc", "abcccd"},
    {"ab+?c", "ab", "abbc"},
    {"ab??c", "a", "ac"},
    {"ab*+c", "a", "ac"},
    {"^abc$", "abc", "abc"},
    {"a.bcd", "bcd", "axbcd"},
    {"x(a|b)yz", "yz", "xbyz"},
    {"(?<r>x)yz", "yz", "xyz"},
    {"ab(?=cd)", "ab", "abcd"},
    {"ab(?!cd)", "ab", "abce"},
    {"a\\dbcd", "bcd", "a1bcd"},
    {"\\(ab\\)", "(ab)", "(ab)"},
    {"a\\\\b", "a\\b", "a\\b"},
    {"\\x41bc", "", "Abc"},
    {"\\x{41}bc", "bc", "Abc"},
    {"\\p{Lu}abc", "abc", "Xabc"},
    {"\\pLabc", "", "Xabc"},
    {"(?<u>x)\\k<u>ab", "ab", "xxab"},
    {"(x)\\1ab", "ab", "xxab"},
    {"(x)\\g{-1}ab", "ab", "xxab"},
    {"\\cAab", "ab", "\001ab"},
    {"\\Qa|b\\E", "a|b", "a|b"},
    {"\\Qa.b\\E?c", "a.", "a.c"},
    {"ab\\E?c", "a", "ac"},
    {"ab\\Q\\E?c", "a", "ac"},
    {"abc(?#x)?d", "ab", "abd"},
    {"a(?#x)bc", "abc", "abc"},
    {"[\\Q]\\Eabc]x", "x", "ax"},
    {"[]abc]xy", "xy", "]xy"},
    {"[^]abc]xy", "xy", "zxy"},
    {"[[:alpha:]]xy", "xy", "qxy"},
    {"[a[:b]cd", "cd", ":cd"},
    {"abc(*ACCEPT)def", "", "abc"},
    {"(*UTF)abc", "", "abc"},
    {"(?:abc(*ACCEPT))def", "", "abc"},
    {"héllo?", "héll", "héll"},
    {"cafés?x", "café", "caféx"},
    {"caf\xc3\xa9?x", "caf", "cafx"},
    {"a b#c", "a b#c", "a b#c"},
    {"(a|b)c|d", "", "d"},
    {"ab(c|d)|e", "", "e"},
    {"(?|(a)|(b))cde", "cde", "bcde"},
    {"\\d+", "", "12"},
    {"", "", "anything"},
    {"EVID:\\d+ AIE: (?<rule>[^|]+?) \\|", " AIE: ", "EVID:1 AIE: USB | x"},
    {"(?P<n>a)bc(?P=n)", "bc", "abca"},
    {"ab(?R)?c", "ab", "abc"},
    {"\\N{U+41}bc", "bc", "Abc"},
    {"a\\Kbc", "bc", "abc"},
};

static void test_literals(void)
{
    for (size_t i = 0; i < sizeof(literals) / sizeof(literals[0]); i++) {
        struct regex *re = compile(literals[i].pattern, 0);
        if (re == NULL)
            continue;
        CHECK_STR(literals[i].pattern, regex_literal(re), literals[i].literal);
        if (match(re, literals[i].subject) != REGEX_MATCH)
            UNIT_FAIL("%s: does not match '%s'", literals[i].pattern, literals[i].subject);
        else
            unit_passed++;
        regex_free(re);
    }
    struct regex *re = compile("abc", REGEX_CASELESS);
    CHECK_INT(regex_literal(re).len, 0);
    CHECK_INT(match(re, "xABCx"), REGEX_MATCH);
    regex_free(re);
}

/* Random patterns from tokens the scan must get right, each against random
 * subjects: the agent's answer (literal pre-check, then PCRE2) must equal
 * plain PCRE2's. A literal not in every match shows up as a lost match. */
static void test_literal_random(void)
{
    static const char *const tokens[] = {
        "a",  "b",    "c",     "ab",    "\\.",  ".",   "?",     "*",      "+",   "(",
        ")",  "|",    "[ab]",  "{0,2}", "{2}",  "\\d", "\\Qa.", "\\E",    "(?:", "(?#x)",
        "^",  "$",    "(?=a)", "\\b",   "[^a]", "??",  "(?<n>", "\\1",    "1",   "\\x61",
        "\\", "[]a]", "{",     "}",     "(?|",  " ",   "(?i)",  "\\k<n>", "é",   "(?:a|b)",
    };
    static const char alphabet[] = "abc.1{}]\\ ";
    pcre2_match_data *md = pcre2_match_data_create(REGEX_MAX_GROUPS + 1, NULL);
    unsigned seed = 12345, compiled = 0, mismatches = 0;

    for (int n = 0; n < 4000; n++) {
        char pattern[128] = "", subject[16];
        int ntok = 1 + (int)(rand_r(&seed) % 7);
        for (int t = 0; t < ntok; t++)
            strcat(pattern, tokens[rand_r(&seed) % (sizeof(tokens) / sizeof(tokens[0]))]);
        struct regex *re;
        char err[160];
        if (regex_compile(pattern, no_jit ? REGEX_NO_JIT : 0, &re, err, sizeof(err)) != 0)
            continue;
        compiled++;
        int errcode;
        PCRE2_SIZE off;
        pcre2_code *ref = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                        PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DUPNAMES,
                                        &errcode, &off, NULL);
        for (int k = 0; k < 40; k++) {
            size_t len = rand_r(&seed) % sizeof(subject);
            for (size_t j = 0; j < len; j++)
                subject[j] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
            int want = pcre2_match(ref, (PCRE2_SPTR)subject, len, 0, 0, md, NULL) >= 0;
            int got = regex_match(re, env, str_make(subject, len)) == REGEX_MATCH;
            if (got != want && mismatches++ < 5)
                UNIT_FAIL("'%s' on '%.*s': got %d, want %d (literal '%.*s')", pattern, (int)len,
                          subject, got, want, (int)regex_literal(re).len, regex_literal(re).p);
        }
        pcre2_code_free(ref);
        regex_free(re);
    }
    CHECK_INT(mismatches, 0);
    CHECK(compiled > 1000);
    pcre2_match_data_free(md);
}

/* The literal pre-check on both of its searches (memchr + memcmp up to 8
 * bytes, memmem beyond): a literal "aa...ab" of each length against 64 KiB
 * subjects of near misses, with the literal at the start, at the end, or
 * not at all, and subjects shorter than it. Each subject is a heap block of
 * exactly its length, so sanitizers catch a search that reads past it. */
static void test_literal_search(void)
{
    static const size_t lengths[] = {1, 2, 8, 9, 10, 32, 200};
    enum { HAY = 65536 };
    static const struct {
        const char *what;
        int where; /* 0: absent, 1: at the start, 2: at the end, 3: the whole subject */
        char fill; /* the near-miss byte after each run of 'a's */
        int want;
    } shapes[] = {
        {"only a", 0, 'a', REGEX_LITERAL_MISS},
        {"a...ac a...ac", 0, 'c', REGEX_LITERAL_MISS},
        {"at the start", 1, 'a', REGEX_MATCH},
        {"at the end", 2, 'a', REGEX_MATCH},
        {"at the end of near misses", 2, 'c', REGEX_MATCH},
        {"the literal alone", 3, 'a', REGEX_MATCH},
    };
    char pattern[256];

    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        size_t n = lengths[i];
        memset(pattern, 'a', n - 1);
        pattern[n - 1] = 'b';
        pattern[n] = '\0';
        struct regex *re = compile(pattern, 0);
        if (re == NULL)
            continue;
        CHECK_STR(pattern, regex_literal(re), pattern);
        for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
            size_t len = shapes[k].where == 3 ? n : HAY;
            char *hay = malloc(len);
            for (size_t j = 0; j < len; j++) /* runs of n - 1 'a's, then fill */
                hay[j] = (j + 1) % n == 0 ? shapes[k].fill : 'a';
            if (shapes[k].where == 1 || shapes[k].where == 3)
                memcpy(hay, pattern, n);
            else if (shapes[k].where == 2)
                memcpy(hay + len - n, pattern, n);
            int got = regex_match(re, env, str_make(hay, len));
            if (got != shapes[k].want)
                UNIT_FAIL("literal of %zu bytes, %s: got %d, want %d", n, shapes[k].what, got,
                          shapes[k].want);
            else
                unit_passed++;
            /* one byte short of the literal: never found */
            if (len >= n) {
                got = regex_match(re, env, str_make(hay + len - (n - 1), n - 1));
                CHECK_INT(got, REGEX_LITERAL_MISS);
            }
            free(hay);
        }
        regex_free(re);
    }
}

static void test_match_and_groups(void)
{
    struct regex *re = compile("search_name=\"(?<rule>[^\"]+)\"(?: user=\"(?<user>[^\"]*)\")?", 0);
    const char *line = "<13>Oct  2 09:13:05 splunk-hf01 search_name=\"Web - Malware\" urgency=1";
    struct str s = str_make(line, strlen(line));

    CHECK_INT(regex_match(re, env, s), REGEX_MATCH);
    CHECK_STR("rule", regex_group(re, env, s, "rule"), "Web - Malware");
    CHECK_STR("user", regex_group(re, env, s, "user"), NULL); /* did not take part */
    CHECK_STR("nope", regex_group(re, env, s, "nope"), NULL);
    CHECK(regex_has_group(re, "rule"));
    CHECK(regex_has_group(re, "user"));
    CHECK(!regex_has_group(re, "nope"));
    CHECK(strcmp(regex_pattern(re),
                 "search_name=\"(?<rule>[^\"]+)\"(?: user=\"(?<user>[^\"]*)\")?") == 0);
    CHECK_INT(match(re, "no such text"), REGEX_LITERAL_MISS);
    CHECK_STR("after a miss", regex_group(re, env, s, "rule"), NULL);
    CHECK_INT(match(re, "search_name=\"unterminated"), REGEX_NO_MATCH);
    CHECK_STR("after no match", regex_group(re, env, s, "rule"), NULL);
    CHECK_INT(regex_match(re, env, STR_ABSENT), REGEX_LITERAL_MISS);
    regex_free(re);

    /* absent text matches as empty */
    re = compile("^$", 0);
    CHECK_INT(regex_match(re, env, STR_ABSENT), REGEX_MATCH);
    regex_free(re);
}

static void test_dupnames(void)
{
    struct regex *re = compile("user=(?:\"(?<user>[^\"]*)\"|(?<user>\\S+))", 0);
    static const struct {
        const char *subject, *user;
    } rows[] = {
        {"a user=\"Ann Lee\" b", "Ann Lee"},
        {"a user=bob b", "bob"},
        {"user=\"\"", ""},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct str s = str_make(rows[i].subject, strlen(rows[i].subject));
        CHECK_INT(regex_match(re, env, s), REGEX_MATCH);
        CHECK_STR(rows[i].subject, regex_group(re, env, s, "user"), rows[i].user);
    }
    regex_free(re);
}

/* Invalid UTF-8 in the subject is never an error: it just cannot be part of
 * a match. */
static void test_invalid_utf8(void)
{
    struct regex *re = compile("user=(?<u>\\S+)", 0);
    static const char good[] = "\xff\xfe user=bob \xc3";
    static const char bad[] = "user=\xff\xfe";
    struct str s = str_make(good, sizeof(good) - 1);

    CHECK_INT(regex_match(re, env, s), REGEX_MATCH);
    CHECK_STR("utf8", regex_group(re, env, s, "u"), "bob");
    CHECK_INT(regex_match(re, env, str_make(bad, sizeof(bad) - 1)), REGEX_NO_MATCH);
    regex_free(re);

    re = compile("é.", 0);
    CHECK_INT(match(re, "\xc3\xa9\xff"), REGEX_NO_MATCH);
    CHECK_INT(match(re, "\xc3\xa9\xc3\xa9"), REGEX_MATCH);
    CHECK_INT(match(re, "\xc3\xa9\xc3"), REGEX_NO_MATCH);
    regex_free(re);
}

/* 30 words then "!": exponential backtracking that the match limit stops. */
static void test_catastrophic(void)
{
    struct regex *re = compile("^(\\w+\\s?)*$", 0);
    char subject[256] = "";

    for (int i = 0; i < 30; i++)
        strcat(subject, "word ");
    strcat(subject, "!");
    CHECK_INT(match(re, subject), ERR_LIMIT);
    CHECK_INT(match(re, "word word word"), REGEX_MATCH); /* the env still works */
    regex_free(re);

    /* deep recursion without many steps: the depth limit (interpreter) or
     * the JIT stack stops it */
    struct regex_env *small;
    CHECK_INT(regex_env_new(10000000, 100, &small), 0);
    re = compile("(a|b)*c", 0);
    char *deep = malloc(200001);
    memset(deep, 'a', 200000);
    deep[199999] = 'c';
    CHECK_INT(regex_match(re, small, str_make(deep, 200000)), ERR_LIMIT);
    free(deep);
    regex_free(re);
    regex_env_free(small);
}

/* A recursion that loops without consuming input: the interpreter reports a
 * PCRE2 error (kept for the log), JIT runs out of its stack. */
static void test_match_errors(void)
{
    struct regex *re = compile("a|(?R)", 0);

    if (no_jit) {
        CHECK_INT(match(re, "bbb"), ERR_INVALID);
        CHECK(strstr(regex_env_last_error(env), "recursion") != NULL);
    } else {
        CHECK_INT(match(re, "bbb"), ERR_LIMIT);
    }
    CHECK_STR("after an error", regex_group(re, env, STR_LIT("bbb"), "x"), NULL);
    CHECK_INT(match(re, "a"), REGEX_MATCH);
    regex_free(re);
}

static void test_compile_errors(void)
{
    struct regex *re = (struct regex *)&re;
    char err[160] = "";
    char many[512] = "";

    CHECK_INT(regex_compile("(abc", 0, &re, err, sizeof(err)), ERR_INVALID);
    CHECK(re == NULL);
    CHECK(strstr(err, "missing closing parenthesis") != NULL);
    CHECK(strstr(err, "at offset 4") != NULL);
    CHECK_INT(regex_compile("a\\Cb", 0, &re, err, sizeof(err)), ERR_INVALID);
    CHECK_INT(regex_compile("\xff", 0, &re, err, sizeof(err)), ERR_INVALID);
    CHECK_INT(regex_compile("(", 0, &re, NULL, 0), ERR_INVALID);

    for (int i = 0; i < 64; i++)
        strcat(many, "(a)");
    CHECK_INT(regex_compile(many, 0, &re, err, sizeof(err)), 0);
    regex_free(re);
    strcat(many, "(a)");
    CHECK_INT(regex_compile(many, 0, &re, err, sizeof(err)), ERR_INVALID);
    CHECK(strstr(err, "too many capture groups: 65 (at most 64)") != NULL);

    strcpy(many, "(?<x>a)");
    for (int i = 1; i < REGEX_MAX_DUP_NAMES; i++)
        strcat(many, "|(?<x>a)");
    strcat(many, "(?<y>b)(?<z>c)");
    CHECK_INT(regex_compile(many, 0, &re, err, sizeof(err)), 0);
    regex_free(re);
    strcat(many, "|(?<x>a)");
    CHECK_INT(regex_compile(many, 0, &re, err, sizeof(err)), ERR_INVALID);
    CHECK(strstr(err, "more than 8 groups named 'x'") != NULL);
    regex_free(NULL);
    regex_env_free(NULL);
}

static void run_all(void)
{
    test_literals();
    test_literal_random();
    test_literal_search();
    test_match_and_groups();
    test_dupnames();
    test_invalid_utf8();
    test_catastrophic();
    test_match_errors();
    test_compile_errors();
}

int main(void)
{
    uint32_t jit = 0;

    CHECK_INT(regex_env_new(100000, 10000, &env), 0);
    CHECK_INT(regex_env_last_error(env)[0], '\0'); /* no PCRE2 error yet */
    pcre2_config(PCRE2_CONFIG_JIT, &jit);
    have_jit = jit != 0;
    if (!have_jit)
        printf("test_regex: PCRE2 has no JIT here, the interpreter ran twice\n");
    run_all();
    no_jit = 1;
    run_all();
    regex_env_free(env);
    return unit_report("test_regex");
}
