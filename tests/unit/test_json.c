/* json_validate and json_lookup: accept/reject tables (JSONTestSuite's y_/n_ classics and
 * ours) with exact error texts, limits at and one past their value, and lookups by path.
 * Every document is parsed from a heap copy of exactly its length, so a sanitizer build
 * catches any read past it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errors.h"
#include "json.h"
#include "unit.h"

static char *copy_of(const char *s, size_t len)
{
    char *c = malloc(len > 0 ? len : 1);
    if (c == NULL)
        abort();
    memcpy(c, s, len);
    return c;
}

static int validate(const char *s, size_t len, const struct json_limits *lim,
                    struct json_error *err)
{
    char *c = copy_of(s, len);
    int rc = json_validate(c, len, lim, err);
    free(c);
    return rc;
}

/* Documents RFC 8259 accepts. */
static const char *const accepted[] = {
    "{}",
    "[]",
    " \t\r\n{} \t\r\n",
    "0",
    "-0",
    "-0.0e-0",
    "1e400",
    "-1E+2",
    "123456789012345678901234567890",
    "0.5",
    "true",
    "false",
    "null",
    "\"\"",
    "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
    "\"\\u0000\"",
    "\"\\uD834\\uDD1E\"",                       /* surrogate pair: U+1D11E */
    "\"\\uDBFF\\uDFFF\"",                       /* U+10FFFF */
    "\"\xF4\x8F\xBF\xBF\"",                     /* U+10FFFF in UTF-8 */
    "\"\xC2\x80\xE0\xA0\x80\xF0\x90\x80\x80\"", /* smallest 2, 3 and 4-byte forms */
    "\"\xEF\xBB\xBF\"",                         /* a BOM inside a string is a character */
    "\"\x7F\"",                                 /* DEL needs no escape */
    "{\"a\":1,\"b\":[1,2,{\"c\":null}]}",
    "{\"a\":{\"a\":{\"a\":1}}}", /* the same key at different levels */
    "[{\"a\":1},{\"a\":2}]",     /* ... and in sibling objects */
    "{\"a\":1,\"A\":2}",
    "{\"a\":{\"x\":1},\"b\":{\"x\":2}}", /* the first object's keys are forgotten at its end */
    "{\"\":0}",
    "{\"\\u00e9\":1,\"e\\u0301\":2}", /* not normalised: different keys */
};

struct reject {
    const char *name;
    const char *doc;
    size_t len; /* 0: strlen */
    int rc;
    const char *text;
};

static const struct reject rejected[] = {
    {"empty", "", 0, ERR_INVALID, "json: no value at byte 0 in $"},
    {"blank", "  \n", 0, ERR_INVALID, "json: no value at byte 3 in $"},
    {"two values", "{} {}", 0, ERR_INVALID, "json: data after the value at byte 3 in $"},
    {"trailing comma in object", "{\"a\":1,}", 0, ERR_INVALID,
     "json: trailing comma at byte 6 in $"},
    {"trailing comma in array", "{\"x\":[1, 2 ,]}", 0, ERR_INVALID,
     "json: trailing comma at byte 11 in $.x"},
    {"leading comma", "[,1]", 0, ERR_INVALID,
     "json: unexpected ',', expected a value at byte 1 in $[0]"},
    {"comment", "{/**/}", 0, ERR_INVALID, "json: unexpected '/', expected a key at byte 1 in $"},
    {"line comment after", "{} // x", 0, ERR_INVALID, "json: data after the value at byte 3 in $"},
    {"NaN", "[NaN]", 0, ERR_INVALID, "json: unexpected 'N', expected a value at byte 1 in $[0]"},
    {"Infinity", "-Infinity", 0, ERR_INVALID, "json: malformed number at byte 1 in $"},
    {"leading zero", "[01]", 0, ERR_INVALID, "json: leading zero in a number at byte 1 in $[0]"},
    {"negative leading zero", "-012", 0, ERR_INVALID,
     "json: leading zero in a number at byte 1 in $"},
    {"plus", "+1", 0, ERR_INVALID, "json: unexpected '+', expected a value at byte 0 in $"},
    {"dot first", ".5", 0, ERR_INVALID, "json: unexpected '.', expected a value at byte 0 in $"},
    {"dot last", "1.", 0, ERR_INVALID, "json: malformed number at byte 2 in $"},
    {"exponent without digits", "1e+", 0, ERR_INVALID, "json: malformed number at byte 3 in $"},
    {"hex", "0x1", 0, ERR_INVALID, "json: data after the value at byte 1 in $"},
    {"capital literal", "True", 0, ERR_INVALID,
     "json: unexpected 'T', expected a value at byte 0 in $"},
    {"cut literal", "[tru]", 0, ERR_INVALID, "json: invalid literal at byte 1 in $[0]"},
    {"single quotes", "{'a':1}", 0, ERR_INVALID,
     "json: unexpected ''', expected a key at byte 1 in $"},
    {"unquoted key", "{a:1}", 0, ERR_INVALID,
     "json: unexpected 'a', expected a key at byte 1 in $"},
    {"missing colon", "{\"a\" 1}", 0, ERR_INVALID,
     "json: unexpected '1', expected ':' at byte 5 in $"},
    {"missing comma", "[1 2]", 0, ERR_INVALID,
     "json: unexpected '2', expected ',' or ']' at byte 3 in $"},
    {"unterminated object", "{\"a\":1", 0, ERR_INVALID, "json: unterminated object at byte 0 in $"},
    {"unterminated nested array", "{\"a\":[1,", 0, ERR_INVALID,
     "json: unexpected end, expected a value at byte 8 in $.a[1]"},
    {"unterminated string", "[\"abc", 0, ERR_INVALID,
     "json: unterminated string at byte 1 in $[0]"},
    {"raw tab in string", "\"a\tb\"", 0, ERR_INVALID,
     "json: unescaped control byte 0x09 in a string at byte 2 in $"},
    {"raw NUL in string", "\"a\0b\"", 5, ERR_INVALID,
     "json: unescaped control byte 0x00 in a string at byte 2 in $"},
    {"bad escape", "\"\\a\"", 0, ERR_INVALID, "json: invalid escape at byte 1 in $"},
    {"escaped apostrophe", "\"\\'\"", 0, ERR_INVALID, "json: invalid escape at byte 1 in $"},
    {"short \\u", "\"\\u12\"", 0, ERR_INVALID, "json: invalid \\u escape at byte 1 in $"},
    {"non-hex \\u", "\"\\u12G4\"", 0, ERR_INVALID, "json: invalid \\u escape at byte 1 in $"},
    {"lone high surrogate", "{\"k\":\"\\uD800x\"}", 0, ERR_INVALID,
     "json: lone surrogate \\uD800 at byte 6 in $.k"},
    {"lone low surrogate", "\"\\uDC00\"", 0, ERR_INVALID,
     "json: lone surrogate \\uDC00 at byte 1 in $"},
    {"high then high", "\"\\uD800\\uD800\"", 0, ERR_INVALID,
     "json: lone surrogate \\uD800 at byte 1 in $"},
    {"high at the end", "\"\\uD800\"", 0, ERR_INVALID,
     "json: lone surrogate \\uD800 at byte 1 in $"},
    {"overlong slash", "\"\xC0\xAF\"", 0, ERR_INVALID, "json: invalid UTF-8 at byte 1 in $"},
    {"overlong 3-byte", "\"\xE0\x80\xAF\"", 0, ERR_INVALID, "json: invalid UTF-8 at byte 1 in $"},
    {"overlong 4-byte", "\"\xF0\x80\x80\xAF\"", 0, ERR_INVALID,
     "json: invalid UTF-8 at byte 1 in $"},
    {"surrogate in UTF-8", "[\"\xED\xA0\x80\"]", 0, ERR_INVALID,
     "json: invalid UTF-8 at byte 2 in $[0]"},
    {"above U+10FFFF", "\"\xF4\x90\x80\x80\"", 0, ERR_INVALID,
     "json: invalid UTF-8 at byte 1 in $"},
    {"lone continuation", "\"\x80\"", 0, ERR_INVALID, "json: invalid UTF-8 at byte 1 in $"},
    {"cut sequence", "\"\xE2\x82\"", 0, ERR_INVALID, "json: invalid UTF-8 at byte 1 in $"},
    {"latin-1 in a key", "{\"caf\xE9\":1}", 0, ERR_INVALID, "json: invalid UTF-8 at byte 5 in $"},
    {"raw UTF-8 outside a string", "[\xC3\xA9]", 0, ERR_INVALID,
     "json: unexpected byte 0xC3, expected a value at byte 1 in $[0]"},
    {"duplicate key", "{\"dataset\":[{\"user\":1,\"user\":2}]}", 0, ERR_INVALID,
     "json: duplicate key \"user\" at byte 22 in $.dataset[0]"},
    {"duplicate key, escaped", "{\"a\":1,\"\\u0061\":2}", 0, ERR_INVALID,
     "json: duplicate key \"\\u0061\" at byte 7 in $"},
    {"duplicate key, escaped both ways", "{\"\\/\":1,\"/\":2}", 0, ERR_INVALID,
     "json: duplicate key \"/\" at byte 8 in $"},
    {"duplicate key, pair vs UTF-8", "{\"\xF0\x9D\x84\x9E\":1,\"\\uD834\\uDD1E\":2}", 0,
     ERR_INVALID, "json: duplicate key \"\\uD834\\uDD1E\" at byte 10 in $"},
    {"duplicate key after a nested object", "{\"a\":{\"a\":1,\"b\":2},\"b\":1,\"a\":0}", 0,
     ERR_INVALID, "json: duplicate key \"a\" at byte 25 in $"},
    {"odd key in the path", "{\"a.b\":{\"c d\":[0,{\"x\":1,\"x\":1}]}}", 0, ERR_INVALID,
     "json: duplicate key \"x\" at byte 24 in $[\"a.b\"][\"c d\"][1]"},
};

static void test_accept(void)
{
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        struct json_error err;
        int rc = validate(accepted[i], strlen(accepted[i]), NULL, &err);
        if (rc != 0)
            UNIT_FAIL("accept %s: rc %d, %s", accepted[i], rc, err.text);
        else
            unit_passed++;
    }
}

static void test_reject(void)
{
    for (size_t i = 0; i < sizeof(rejected) / sizeof(rejected[0]); i++) {
        const struct reject *r = &rejected[i];
        struct json_error err;
        size_t len = r->len ? r->len : strlen(r->doc);
        int rc = validate(r->doc, len, NULL, &err);
        if (rc != r->rc || strcmp(err.text, r->text) != 0)
            UNIT_FAIL("%s: rc %d, \"%s\"; want %d, \"%s\"", r->name, rc, err.text, r->rc, r->text);
        else
            unit_passed++;
        /* A NULL err is allowed and changes nothing else. */
        CHECK_INT(validate(r->doc, len, NULL, NULL), r->rc);
    }
}

/* n nested arrays around a 0, written into buf. */
static size_t nested(char *buf, size_t n, char open, char close)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        buf[k++] = open;
        if (open == '{') {
            memcpy(buf + k, "\"a\":", 4);
            k += 4;
        }
    }
    buf[k++] = '0';
    for (size_t i = 0; i < n; i++)
        buf[k++] = close;
    return k;
}

static void test_depth(void)
{
    static char buf[20000];
    struct json_error err;
    size_t n;

    n = nested(buf, JSON_DEPTH_DEFAULT, '[', ']');
    CHECK_INT(validate(buf, n, NULL, &err), 0);
    n = nested(buf, JSON_DEPTH_DEFAULT + 1, '[', ']');
    CHECK_INT(validate(buf, n, NULL, &err), ERR_LIMIT);
    CHECK(strcmp(err.text,
                 "json: nesting deeper than 32 at byte 32 in "
                 "$...[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]") == 0);
    CHECK_INT(err.offset, 32);

    n = nested(buf, JSON_DEPTH_DEFAULT, '{', '}');
    CHECK_INT(validate(buf, n, NULL, &err), 0);
    n = nested(buf, JSON_DEPTH_DEFAULT + 1, '{', '}');
    CHECK_INT(validate(buf, n, NULL, &err), ERR_LIMIT);
    CHECK(strcmp(err.text,
                 "json: nesting deeper than 32 at byte 160 in "
                 "$....a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a") == 0);
    CHECK(strlen(err.text) < JSON_ERROR_MAX);

    /* A configured depth; values above JSON_DEPTH_MAX are clamped to it. */
    struct json_limits lim = JSON_LIMITS_DEFAULT;
    lim.max_depth = 2;
    CHECK_INT(validate("[[0]]", 5, &lim, &err), 0);
    CHECK_INT(validate("[[[0]]]", 7, &lim, &err), ERR_LIMIT);
    CHECK(strcmp(err.text, "json: nesting deeper than 2 at byte 2 in $[0][0]") == 0);
    lim.max_depth = 100000;
    n = nested(buf, JSON_DEPTH_MAX, '[', ']');
    CHECK_INT(validate(buf, n, &lim, &err), 0);
    n = nested(buf, JSON_DEPTH_MAX + 1, '[', ']');
    CHECK_INT(validate(buf, n, &lim, &err), ERR_LIMIT);

    /* 10000 opening brackets: refused at the limit, not walked. */
    memset(buf, '[', 10000);
    CHECK_INT(validate(buf, 10000, NULL, &err), ERR_LIMIT);
    CHECK_INT(err.offset, 32);
}

static void test_members(void)
{
    struct json_error err;
    struct json_limits lim = JSON_LIMITS_DEFAULT;
    size_t n = 1000000, k = 0;
    char *buf = malloc(2 * n + 2);
    clock_t t0;

    /* A million-element array: refused at element 1025, fast. */
    buf[k++] = '[';
    for (size_t i = 0; i < n; i++) {
        buf[k++] = '0';
        buf[k++] = ',';
    }
    buf[k - 1] = ']';
    t0 = clock();
    CHECK_INT(json_validate(buf, k, NULL, &err), ERR_LIMIT);
    CHECK(clock() - t0 < CLOCKS_PER_SEC / 100);
    CHECK(strcmp(err.text, "json: more than 1024 elements in an array at byte 2049 in $") == 0);
    /* Exactly at the limit, then one past. */
    buf[2 * 1024] = ']';
    CHECK_INT(json_validate(buf, 2 * 1024 + 1, NULL, &err), 0);
    buf[2 * 1024] = ',';
    buf[2 * 1025] = ']';
    CHECK_INT(json_validate(buf, 2 * 1025 + 1, NULL, &err), ERR_LIMIT);
    buf[2 * 1025] = ',';
    /* The same million under a raised element limit stops at the value limit. */
    lim.max_members = n;
    CHECK_INT(json_validate(buf, k, &lim, &err), ERR_LIMIT);
    CHECK(strcmp(err.text, "json: more than 100000 values at byte 199999 in $[99999]") == 0);
    lim.max_values = n + 1;
    CHECK_INT(json_validate(buf, k, &lim, &err), 0);
    free(buf);

    /* Objects: 1024 distinct members pass, 1025 do not. */
    buf = malloc(1100 * 16);
    k = 0;
    buf[k++] = '{';
    for (int i = 0; i < 1025; i++)
        k += (size_t)sprintf(buf + k, "\"k%d\":%d,", i, i);
    buf[k - 1] = '}';
    CHECK_INT(json_validate(buf, k, NULL, &err), ERR_LIMIT);
    CHECK(strcmp(err.text, "json: more than 1024 members in an object at byte 11093 in $") == 0);
    lim = JSON_LIMITS_DEFAULT;
    lim.max_members = 1025;
    CHECK_INT(json_validate(buf, k, &lim, &err), 0);
    free(buf);
}

/* Keys of open objects beyond JSON_OPEN_KEYS_MAX are refused, not unchecked. */
static void test_open_keys(void)
{
    struct json_limits lim = JSON_LIMITS_DEFAULT;
    struct json_error err;
    char *buf = malloc(3 * 1100 * 16);
    size_t k = 0;

    lim.max_members = 3000;
    buf[k++] = '{';
    for (int i = 0; i < 2047; i++)
        k += (size_t)sprintf(buf + k, "\"k%d\":0,", i);
    k += (size_t)sprintf(buf + k, "\"o\":{\"x\":0}}");
    CHECK_INT(json_validate(buf, k, &lim, &err), ERR_LIMIT);
    CHECK(strncmp(err.text, "json: more than 2048 keys in open objects at byte", 49) == 0);
    /* One key fewer fits. */
    k = 0;
    buf[k++] = '{';
    for (int i = 0; i < 2046; i++)
        k += (size_t)sprintf(buf + k, "\"k%d\":0,", i);
    k += (size_t)sprintf(buf + k, "\"o\":{\"x\":0}}");
    CHECK_INT(json_validate(buf, k, &lim, &err), 0);
    free(buf);
}

/* Long keys and long paths are cut, and the text stays within its buffer. */
static void test_long_names(void)
{
    struct json_error err;
    char doc[400];
    int n = snprintf(doc, sizeof(doc), "{\"%s\":{\"%s\":1,\"%s\":2}}",
                     "outer_key_that_is_much_longer_than_thirty_two_bytes",
                     "inner_key_that_is_much_longer_than_thirty_two_bytes",
                     "inner_key_that_is_much_longer_than_thirty_two_bytes");
    CHECK_INT(validate(doc, (size_t)n, NULL, &err), ERR_INVALID);
    CHECK(strcmp(err.text,
                 "json: duplicate key \"inner_key_that_is_much_longer_th...\" at byte 112 "
                 "in $.outer_key_that_is_much_longer_th...") == 0);
    /* A cut never splits a UTF-8 character: 31 ASCII bytes then 'é'. */
    n = snprintf(doc, sizeof(doc), "{\"%s\xC3\xA9xyz\":[1,]}", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    CHECK_INT(validate(doc, (size_t)n, NULL, &err), ERR_INVALID);
    CHECK(strcmp(err.text, "json: trailing comma at byte 42 in "
                           "$[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"]") == 0);
}

struct lookup_case {
    const char *path;
    int rc;
    enum json_kind kind;
    const char *want; /* NULL: absent */
};

static const char lookup_doc[] =
    "{ \"result\" : {\"user\":\"CORP\\\\jdoe\", \"n\": -1.5e3, \"ok\":true, \"no\": false,"
    " \"nil\": null, \"e\":\"\", \"uni\":\"caf\\u00e9 \\uD834\\uDD1E \xE2\x82\xAC\"},"
    " \"dataset\": [ {\"user_name\":\"alice\",\"hits\":[{\"category\":\"usb\"}]},"
    " {\"user_name\":\"b\\\"ob\", \"hits\": []} ],"
    " \"a.b\": 1, \"0\": \"zero\", \"esc\\u0061ped\": \"key\", \"empty\": {}, \"arr\": [ 1 , [2] ] "
    "}";

static const struct lookup_case lookups[] = {
    {"result.user", 0, JSON_STRING, "CORP\\jdoe"},
    {"result.n", 0, JSON_NUMBER, "-1.5e3"},
    {"result.ok", 0, JSON_TRUE, "true"},
    {"result.no", 0, JSON_FALSE, "false"},
    {"result.nil", 0, JSON_NULL, NULL},
    {"result.e", 0, JSON_STRING, ""},
    {"result.uni", 0, JSON_STRING, "caf\xC3\xA9 \xF0\x9D\x84\x9E \xE2\x82\xAC"},
    {"result.missing", 0, JSON_NONE, NULL},
    {"result.user.x", 0, JSON_NONE, NULL}, /* into a string */
    {"dataset.0.user_name", 0, JSON_STRING, "alice"},
    {"dataset.1.user_name", 0, JSON_STRING, "b\"ob"},
    {"dataset.0.hits.0.category", 0, JSON_STRING, "usb"},
    {"dataset.1.hits.0", 0, JSON_NONE, NULL},
    {"dataset.2", 0, JSON_NONE, NULL},
    {"dataset.01", 0, JSON_NONE, NULL}, /* no leading zero */
    {"dataset.-1", 0, JSON_NONE, NULL},
    {"dataset.x", 0, JSON_NONE, NULL},
    {"dataset.99999999999", 0, JSON_NONE, NULL},
    {"dataset.1.hits", 0, JSON_ARRAY, "[]"},
    {"dataset.0.hits", 0, JSON_ARRAY, "[{\"category\":\"usb\"}]"},
    {"empty", 0, JSON_OBJECT, "{}"},
    {"arr", 0, JSON_ARRAY, "[ 1 , [2] ]"},
    {"arr.0", 0, JSON_NUMBER, "1"},
    {"arr.1.0", 0, JSON_NUMBER, "2"},
    {"0", 0, JSON_STRING, "zero"}, /* on an object a number is a key */
    {"escaped", 0, JSON_STRING, "key"},
    {"a.b", 0, JSON_NONE, NULL}, /* a key holding '.' cannot be addressed */
    {"a", 0, JSON_NONE, NULL},
    {"", 0, JSON_OBJECT, NULL}, /* checked apart: the whole document */
    {"result..user", ERR_INVALID, JSON_NONE, NULL},
    {".result", ERR_INVALID, JSON_NONE, NULL},
    {"result.", ERR_INVALID, JSON_NONE, NULL},
};

static void test_lookup(void)
{
    size_t len = sizeof(lookup_doc) - 1;
    char *doc = copy_of(lookup_doc, len);
    char *shadow = malloc(len);
    struct json_error err;

    CHECK_INT(json_validate(doc, len, NULL, &err), 0);
    for (size_t i = 0; i < sizeof(lookups) / sizeof(lookups[0]); i++) {
        const struct lookup_case *c = &lookups[i];
        struct str out;
        enum json_kind kind;
        int rc = json_lookup(doc, len, str_make(c->path, strlen(c->path)), shadow, &out, &kind);
        CHECK_INT(rc, c->rc);
        CHECK_INT(kind, c->kind);
        if (c->path[0] == '\0')
            CHECK(out.p == doc && out.len == len - 0);
        else
            CHECK_STR(c->path, out, c->want);
    }
    /* Strings without escapes are slices of the document; others live in the shadow,
     * over their own offsets, and a second read gives the same bytes at the same place. */
    struct str a, b, c;
    json_lookup(doc, len, STR_LIT("dataset.0.user_name"), shadow, &a, NULL);
    CHECK(a.p > doc && a.p < doc + len);
    json_lookup(doc, len, STR_LIT("result.user"), shadow, &b, NULL);
    json_lookup(doc, len, STR_LIT("result.user"), shadow, &c, NULL);
    CHECK(b.p > shadow && b.p < shadow + len && b.p == c.p);
    CHECK_STR("reread", b, "CORP\\jdoe");
    /* Without a shadow, an escaped string is ERR_LIMIT; a plain one still reads. */
    CHECK_INT(json_lookup(doc, len, STR_LIT("result.user"), NULL, &c, NULL), ERR_LIMIT);
    CHECK(c.p == NULL);
    CHECK_INT(json_lookup(doc, len, STR_LIT("dataset.0.user_name"), NULL, &c, NULL), 0);
    CHECK_STR("no shadow", c, "alice");
    free(shadow);
    free(doc);
}

/* Lookups on text that was not validated stay inside it. */
static void test_lookup_unvalidated(void)
{
    static const char *const docs[] = {
        "{\"a\":",
        "{\"a\"",
        "{\"a",
        "{",
        "[",
        "[1,",
        "{\"a\":\"x\\",
        "{\"a\":\"\\u12",
        "{\"a\":[1,2",
        "{\"a\":{\"b\":\"c",
        "\"",
        "{\"a\":\"\\uD800\"}",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        size_t len = strlen(docs[i]);
        char *d = copy_of(docs[i], len), *shadow = malloc(len);
        struct str out;
        CHECK_INT(json_lookup(d, len, STR_LIT("a"), shadow, &out, NULL), 0);
        CHECK(out.p == NULL || (out.p >= d && out.p + out.len <= d + len) ||
              (out.p >= shadow && out.p + out.len <= shadow + len));
        json_lookup(d, len, STR_LIT("a.b"), shadow, &out, NULL);
        json_lookup(d, len, STR_LIT("1"), shadow, &out, NULL);
        free(shadow);
        free(d);
    }
}

static void test_kind_of(void)
{
    CHECK_INT(json_kind_of(" {", 2), JSON_OBJECT);
    CHECK_INT(json_kind_of("\n[", 2), JSON_ARRAY);
    CHECK_INT(json_kind_of("\"", 1), JSON_STRING);
    CHECK_INT(json_kind_of("-1", 2), JSON_NUMBER);
    CHECK_INT(json_kind_of("null", 4), JSON_NULL);
    CHECK_INT(json_kind_of("  ", 2), JSON_NONE);
}

int main(void)
{
    test_accept();
    test_reject();
    test_depth();
    test_members();
    test_open_keys();
    test_long_names();
    test_lookup();
    test_lookup_unvalidated();
    test_kind_of();
    return unit_report("test_json");
}
