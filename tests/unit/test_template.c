/* template: every compile error with its offset, the placeholders' spacing, what a template
 * uses, and rendering in each mode with the values an attacker sends (a user name that
 * tries to leave its JSON string or start a header line, NUL bytes, invalid UTF-8, long
 * values), as exact output strings worked out by hand; then the output caps. */
#include "decide/template.h"
#include "errors.h"
#include "json.h"
#include "unit.h"

/* A literal that may hold NUL bytes, with its length. */
#define BYTES(s) s, sizeof(s) - 1

static const struct {
    enum template_mode mode;
    const char *text;
    size_t len;
    const char *err; /* NULL: compiles */
} compiles[] = {
    {TEMPLATE_HEADER, BYTES("Alert {{rule}} for {{user}}"), NULL},
    {TEMPLATE_HEADER, BYTES("Alert for {{usr}}"), "at offset 12: unknown name \"usr\""},
    {TEMPLATE_HEADER, BYTES("{{User}}"), "at offset 2: unknown name \"User\""},
    {TEMPLATE_HEADER, BYTES("{{}}"), "at offset 0: empty name in {{}}"},
    {TEMPLATE_HEADER, BYTES("x {{ \t}}"), "at offset 2: empty name in {{}}"},
    {TEMPLATE_HEADER, BYTES("ab {{user"), "at offset 3: unclosed {{"},
    {TEMPLATE_HEADER, BYTES("ab {{user}"), "at offset 3: unclosed {{"},
    {TEMPLATE_HEADER, BYTES("ab {{ "), "at offset 3: unclosed {{"},
    {TEMPLATE_HEADER, BYTES("{{"), "at offset 0: unclosed {{"},
    {TEMPLATE_HEADER, BYTES("{{user x}}"), "at offset 7: unexpected 'x' in {{user}}"},
    {TEMPLATE_HEADER, BYTES("{{user.name}}"), "at offset 6: unexpected '.' in {{user}}"},
    {TEMPLATE_HEADER, BYTES("{{-}}"), "at offset 2: unexpected '-' after {{"},
    {TEMPLATE_HEADER, BYTES("{{{user}}}"), "at offset 2: unexpected '{' after {{"},
    {TEMPLATE_HEADER, BYTES("{{user \"x\"}}"), "at offset 7: unexpected '\"' in {{user}}"},
    {TEMPLATE_HEADER, BYTES("{{field}}"),
     "at offset 7: field needs a quoted name, as {{field \"cef.ext.src\"}}"},
    {TEMPLATE_HEADER, BYTES("{{field cef}}"),
     "at offset 8: field needs a quoted name, as {{field \"cef.ext.src\"}}"},
    {TEMPLATE_HEADER, BYTES("{{field \"\"}}"), "at offset 8: empty field name"},
    {TEMPLATE_HEADER, BYTES("{{field \"a b\"}}"),
     "at offset 10: 0x20 in a field name (printable ASCII without spaces or quotes)"},
    {TEMPLATE_HEADER, BYTES("{{field \"a'b\"}}"),
     "at offset 10: ''' in a field name (printable ASCII without spaces or quotes)"},
    {TEMPLATE_HEADER, BYTES("{{field \"a\tb\"}}"),
     "at offset 10: 0x09 in a field name (printable ASCII without spaces or quotes)"},
    {TEMPLATE_HEADER, BYTES("{{field \"abc}}"), "at offset 8: unclosed field name"},
    {TEMPLATE_HEADER, BYTES("{{field \"a\" \"b\"}}"), "at offset 12: unexpected '\"' in {{field}}"},
    {TEMPLATE_HEADER, BYTES("{{field \"a\""), "at offset 0: unclosed {{"},
    {TEMPLATE_HEADER, BYTES("{{ field \"cef.ext.src\" }}"), NULL},
    {TEMPLATE_HEADER, BYTES("{{field\"leef.attr.usrName\"}}"), NULL},
    {TEMPLATE_HEADER, BYTES("a}}b}"), NULL}, /* a stray }} is text */
    {TEMPLATE_HEADER, BYTES("a\r\nX-Evil: 1"),
     "at offset 1: control character 0x0d in a header template"},
    {TEMPLATE_HEADER, BYTES("a\tb"), "at offset 1: control character 0x09 in a header template"},
    {TEMPLATE_HEADER, BYTES("ab\0"), "at offset 2: control character 0x00 in a header template"},
    {TEMPLATE_HEADER, BYTES("\x7f"), "at offset 0: control character 0x7f in a header template"},
    {TEMPLATE_HEADER, BYTES("a\xc2\x85"), "at offset 1: C1 control character U+0085 in a template"},
    {TEMPLATE_HEADER, BYTES("\xff"), "at offset 0: invalid UTF-8 byte 0xff"},
    {TEMPLATE_HEADER, BYTES("ok \xc3"), "at offset 3: invalid UTF-8 byte 0xc3"},
    {TEMPLATE_HEADER, BYTES("\xc0\xaf"), "at offset 0: invalid UTF-8 byte 0xc0"},
    {TEMPLATE_HEADER, BYTES("Zo\xc3\xab {{user}}"), NULL},
    {TEMPLATE_HEADER, BYTES(""), NULL},
    {TEMPLATE_TEXT, BYTES("User:\t{{user}}\nRule: {{rule}}\n"), NULL},
    {TEMPLATE_TEXT, BYTES("a\r\nb"), "at offset 1: control character 0x0d in a text template"},
    {TEMPLATE_TEXT, BYTES("\x1b[31m"), "at offset 0: control character 0x1b in a text template"},
    {TEMPLATE_JSON, BYTES("{\"a\":\"{{user}}\"}"), NULL},
    {TEMPLATE_JSON, BYTES("\"{{user}}\""), NULL},
    {TEMPLATE_JSON, BYTES("[\"{{user}}\",{\"k\":\"x{{rule}}y\"},\"{{ field \"cef.ext.src\" }}\"]"),
     NULL},
    {TEMPLATE_JSON, BYTES("{\"a\":[\"x\",{\"b\":\"{{user}}\"}],\"c\":\"{{rule}}\"}"), NULL},
    /* A body written as JSON in a policy file serialises the name's quotes escaped. */
    {TEMPLATE_JSON, BYTES("{\"a\":\"risk {{field \\\"cef.label.riskscore\\\"}}\"}"), NULL},
    {TEMPLATE_JSON, BYTES("{\"a\":\"{{field \\\"x\"}}\"}"),
     "at offset 17: '\"' in a field name (printable ASCII without spaces or quotes)"},
    {TEMPLATE_HEADER, BYTES("{{field \\\"x\\\"}}"),
     "at offset 8: field needs a quoted name, as {{field \"cef.ext.src\"}}"},
    {TEMPLATE_JSON, BYTES("{\"a\":{\"b\":\"}}{{user}}\"}}"), NULL},
    {TEMPLATE_JSON, BYTES("{\"a\":\"\\\"{{user}}\\\\\"}"), NULL},
    {TEMPLATE_JSON, BYTES("{\"a\":{{user}}}"),
     "at offset 5: {{user}} must be inside a JSON string"},
    {TEMPLATE_JSON, BYTES("{\"a\":\"x\"} {{ field \"cef.ext.src\" }}"),
     "at offset 10: {{field \"cef.ext.src\"}} must be inside a JSON string"},
    {TEMPLATE_JSON, BYTES("{\"{{user}}\":1}"), "at offset 2: {{user}} may not be in an object key"},
    {TEMPLATE_JSON, BYTES("{\"a\":\"x\",\"{{rule}}\":1}"),
     "at offset 10: {{rule}} may not be in an object key"},
    {TEMPLATE_JSON, BYTES("[{\"a\":[1],\"b{{rule}}\":1}]"),
     "at offset 12: {{rule}} may not be in an object key"},
    {TEMPLATE_JSON, BYTES("{\"a\":\"\\{{user}}\"}"),
     "at offset 7: {{user}} may not be inside a \\ escape"},
    {TEMPLATE_JSON, BYTES("{\"a\":\"\\u00{{user}}\"}"),
     "at offset 10: {{user}} may not be inside a \\ escape"},
    /* Valid JSON with the values empty, broken by others: the lexer must see them. */
    {TEMPLATE_JSON, BYTES("{\"a\":\"\\u00{{user}}41\"}"),
     "at offset 10: {{user}} may not be inside a \\ escape"},
    {TEMPLATE_JSON, BYTES("{\"a\":\"\\{{user}}n\"}"),
     "at offset 7: {{user}} may not be inside a \\ escape"},
    {TEMPLATE_JSON, BYTES("{\"{{user}}\":1,\"{{rule}}\":2}"),
     "at offset 2: {{user}} may not be in an object key"},
    {TEMPLATE_JSON, BYTES("{\"a\":\"{{user}}\",}"),
     "at offset 15: not valid JSON: json: trailing comma in $"},
    {TEMPLATE_JSON, BYTES("{\"a\":\"{{user}}\",\"a\":\"{{rule}}\"}"),
     "at offset 16: not valid JSON: json: duplicate key \"a\" in $"},
    {TEMPLATE_JSON, BYTES(""), "at offset 0: not valid JSON: json: no value in $"},
    {TEMPLATE_JSON, BYTES("{\"a\":\"x\ny\"}"),
     "at offset 7: not valid JSON: json: unescaped control byte 0x0A in a string in $.a"},
};

static void test_compile(void)
{
    for (size_t i = 0; i < sizeof(compiles) / sizeof(compiles[0]); i++) {
        struct template *t = (struct template *)1;
        char err[TEMPLATE_ERROR_MAX];
        int rc = template_compile(compiles[i].text, compiles[i].len, compiles[i].mode, &t, err,
                                  sizeof(err));

        if (compiles[i].err == NULL) {
            if (rc != 0)
                UNIT_FAIL("row %zu: %s: %s", i, compiles[i].text, err);
            CHECK(t != NULL);
        } else {
            CHECK_INT(rc, ERR_INVALID);
            CHECK(t == NULL);
            CHECK_STR(compiles[i].text, str_make(err, strlen(err)), compiles[i].err);
        }
        template_free(t);
    }
}

/* The limits: template length, placeholder count, field name length; and a NULL err. */
static void test_compile_limits(void)
{
    static char text[TEMPLATE_LEN_MAX + 1];
    struct template *t;
    char err[TEMPLATE_ERROR_MAX], name[TEMPLATE_FIELD_NAME_MAX + 16];
    size_t n = 0;

    memset(text, 'a', sizeof(text));
    CHECK_INT(template_compile(text, sizeof(text), TEMPLATE_HEADER, &t, err, sizeof(err)),
              ERR_INVALID);
    CHECK_STR("long", str_make(err, strlen(err)),
              "at offset 65536: template longer than 65536 bytes");
    CHECK_INT(template_compile(text, TEMPLATE_LEN_MAX, TEMPLATE_HEADER, &t, err, sizeof(err)), 0);
    template_free(t);

    for (int i = 0; i < TEMPLATE_PLACEHOLDERS_MAX; i++)
        n += (size_t)sprintf(text + n, "{{key}}");
    CHECK_INT(template_compile(text, n, TEMPLATE_HEADER, &t, err, sizeof(err)), 0);
    template_free(t);
    n += (size_t)sprintf(text + n, "{{key}}");
    CHECK_INT(template_compile(text, n, TEMPLATE_HEADER, &t, err, sizeof(err)), ERR_INVALID);
    CHECK_STR("placeholders", str_make(err, strlen(err)),
              "at offset 1792: more than 256 placeholders");

    memset(name, 'x', sizeof(name));
    n = (size_t)sprintf(text, "{{field \"%.*s\"}}", TEMPLATE_FIELD_NAME_MAX, name);
    CHECK_INT(template_compile(text, n, TEMPLATE_HEADER, &t, err, sizeof(err)), 0);
    template_free(t);
    n = (size_t)sprintf(text, "{{field \"%.*s\"}}", TEMPLATE_FIELD_NAME_MAX + 1, name);
    CHECK_INT(template_compile(text, n, TEMPLATE_HEADER, &t, err, sizeof(err)), ERR_INVALID);
    CHECK_STR("field name", str_make(err, strlen(err)),
              "at offset 9: field name longer than 128 bytes");
    CHECK_INT(template_compile(BYTES("{{usr}}"), TEMPLATE_TEXT, &t, NULL, 0), ERR_INVALID);
    CHECK_INT(template_compile(BYTES("{{usr}}"), TEMPLATE_TEXT, &t, err, 8), ERR_INVALID);
    CHECK_STR("short err", str_make(err, strlen(err)), "at offs");
}

static void test_uses(void)
{
    static const char text[] =
        "{{field \"a\"}} {{ user }} {{\tfield \"cef.ext.src\"\t}} {{field \"a\"}} {{deny_url}}";
    struct template *t;
    char err[TEMPLATE_ERROR_MAX];

    CHECK_INT(template_compile(BYTES(text), TEMPLATE_TEXT, &t, err, sizeof(err)), 0);
    CHECK_INT(template_mode_of(t), TEMPLATE_TEXT);
    CHECK_INT(template_n_fields(t), 2);
    CHECK_STR("field 0", template_field(t, 0), "a");
    CHECK_STR("field 1", template_field(t, 1), "cef.ext.src");
    CHECK_STR("field 2", template_field(t, 2), NULL);
    for (int v = 0; v < TEMPLATE_VARS; v++)
        CHECK_INT(template_uses(t, (enum template_var)v),
                  v == TEMPLATE_USER || v == TEMPLATE_DENY_URL || v == TEMPLATE_FIELD);
    CHECK_INT(template_uses(t, TEMPLATE_VARS), 0);
    template_free(t);

    CHECK_INT(template_compile(BYTES("no placeholder"), TEMPLATE_HEADER, &t, err, sizeof(err)), 0);
    CHECK_INT(template_n_fields(t), 0);
    CHECK_INT(template_uses(t, TEMPLATE_FIELD), 0);
    CHECK_INT(template_render_max(t), 14);
    template_free(t);

    static const char *const names[] = {"rule",     "user",    "email", "priority", "event",
                                        "mapping",  "policy",  "key",   "received", "approve_url",
                                        "deny_url", "expires", "field"};
    for (int v = 0; v < TEMPLATE_VARS; v++)
        CHECK_STR(names[v], str_make(template_var_name((enum template_var)v), strlen(names[v])),
                  names[v]);
    CHECK(template_var_name(TEMPLATE_VARS) == NULL);
    CHECK(template_var_name((enum template_var) - 1) == NULL);
}

/* Field lookups for the tests: "cef.ext.src" and "absent" (p == NULL); the rest empty. */
static struct str test_field(void *arg, struct str name)
{
    (void)arg;
    if (str_eq(name, STR_LIT("cef.ext.src")))
        return STR_LIT("10.0.0.1");
    if (str_eq(name, STR_LIT("evil")))
        return STR_LIT("x\"}\r\n\0");
    return STR_ABSENT;
}

static const struct {
    enum template_mode mode;
    const char *text;
    const char *user; /* NULL: absent */
    size_t user_len;
    const char *want;
} renders[] = {
    /* JSON: the value stays inside its string, whatever it holds. */
    {TEMPLATE_JSON, "{\"d\":\"{{rule}} for {{user}}\",\"src\":\"{{field \"cef.ext.src\"}}\"}",
     BYTES("a\",\"admin\":true,\"x\":\""),
     "{\"d\":\"R1 for a\\\",\\\"admin\\\":true,\\\"x\\\":\\\"\",\"src\":\"10.0.0.1\"}"},
    {TEMPLATE_JSON, "[\"{{user}}\"]", BYTES("a\\\"]"), "[\"a\\\\\\\"]\"]"},
    {TEMPLATE_JSON, "[\"{{user}}\"]", BYTES("a\0b\x1b\n\r\t\x7f"),
     "[\"a\\u0000b\\u001b\\n\\r\\t\\u007f\"]"},
    {TEMPLATE_JSON, "[\"{{user}}\"]", BYTES("\xff\xc3(\xed\xa0\x80"),
     "[\"\\u00ff\\u00c3(\\u00ed\\u00a0\\u0080\"]"},
    {TEMPLATE_JSON, "[\"{{user}}\"]", BYTES("zo\xc3\xab \xc2\x85 \xe2\x80\xa8"),
     "[\"zo\xc3\xab \\u0085 \\u2028\"]"},
    {TEMPLATE_JSON, "[\"{{user}}\",\"{{email}}\"]", NULL, 0, "[\"\",\"\"]"},
    {TEMPLATE_JSON, "{\"a\":\"{{field \"absent\"}}|{{field \"evil\"}}\"}", BYTES(""),
     "{\"a\":\"|x\\\"}\\r\\n\\u0000\"}"},
    /* HEADER: no line can start; every control becomes a space. */
    {TEMPLATE_HEADER, "Alert: {{rule}} ({{user}})", BYTES("bob\r\nX-Evil: 1"),
     "Alert: R1 (bob  X-Evil: 1)"},
    {TEMPLATE_HEADER, "{{user}}", BYTES("a\0b\tc\x1b[0m\x7f"), "a b c [0m "},
    {TEMPLATE_HEADER, "{{user}}", BYTES("\xff\xc3(zo\xc3\xab"),
     "\xef\xbf\xbd\xef\xbf\xbd(zo\xc3\xab"},
    {TEMPLATE_HEADER, "{{user}}", BYTES("a\xc2\x85z\xe2\x80\xa8\xe2\x80\xa9!"), "a z  !"},
    {TEMPLATE_HEADER, "[{{field \"evil\"}}]", BYTES(""), "[x\"}   ]"},
    {TEMPLATE_HEADER, "a}}{{user}}", NULL, 0, "a}}"},
    /* TEXT: LF and TAB kept, CR and the rest become spaces. */
    {TEMPLATE_TEXT, "User: {{user}}\nRule:\t{{rule}}\n", BYTES("a\r\nb\tc\x1b[0m\0"),
     "User: a \nb\tc [0m \nRule:\tR1\n"},
    {TEMPLATE_TEXT, "{{user}}", BYTES("\xff\xc2\x85\xe2\x80\xa8ok"), "\xef\xbf\xbd  ok"},
};

static void test_render(void)
{
    for (size_t i = 0; i < sizeof(renders) / sizeof(renders[0]); i++) {
        struct template_values v;
        struct template *t;
        char err[TEMPLATE_ERROR_MAX], buf[512];
        size_t len = 0, want = strlen(renders[i].want);

        memset(&v, 0, sizeof(v));
        v.vars[TEMPLATE_RULE] = STR_LIT("R1");
        v.vars[TEMPLATE_USER] = str_make(renders[i].user, renders[i].user_len);
        v.field = test_field;
        if (template_compile(renders[i].text, strlen(renders[i].text), renders[i].mode, &t, err,
                             sizeof(err)) != 0) {
            UNIT_FAIL("row %zu: %s", i, err);
            continue;
        }
        CHECK_INT(template_render(t, &v, buf, sizeof(buf), &len), 0);
        CHECK_STR(renders[i].text, str_make(buf, len), renders[i].want);
        if (renders[i].mode == TEMPLATE_JSON)
            CHECK_INT(json_validate(buf, len, NULL, NULL), 0);
        if (renders[i].mode == TEMPLATE_HEADER)
            CHECK(memchr(buf, '\r', len) == NULL && memchr(buf, '\n', len) == NULL &&
                  memchr(buf, '\0', len) == NULL);
        /* Exactly the room it needs, and one byte less. */
        CHECK_INT(template_render(t, &v, buf, want, &len), 0);
        CHECK_INT(len, want);
        CHECK_INT(template_render(t, &v, buf, want - 1, &len), ERR_TOOBIG);
        CHECK_INT(len, 0);
        CHECK(template_render_max(t) >= want);
        template_free(t);
    }
}

/* The injected key is not a member of the rendered object. */
static void test_json_injection(void)
{
    static const char text[] = "{\"user\":\"{{user}}\",\"rule\":\"{{rule}}\"}";
    struct template_values v;
    struct template *t;
    char err[TEMPLATE_ERROR_MAX], buf[256];
    struct str got;
    size_t len;

    memset(&v, 0, sizeof(v));
    v.vars[TEMPLATE_USER] = STR_LIT("a\",\"admin\":true,\"x\":\"");
    CHECK_INT(template_compile(BYTES(text), TEMPLATE_JSON, &t, err, sizeof(err)), 0);
    CHECK_INT(template_render(t, &v, buf, sizeof(buf), &len), 0);
    CHECK_INT(json_validate(buf, len, NULL, NULL), 0);
    CHECK_INT(json_lookup(buf, len, STR_LIT("admin"), NULL, &got, NULL), 0);
    CHECK(got.p == NULL);
    template_free(t);
}

/* Values are cut at TEMPLATE_VALUE_MAX bytes, never inside a UTF-8 sequence. */
static void test_caps(void)
{
    static char value[4096], buf[TEMPLATE_VALUE_MAX * 6 * 2 + 16];
    struct template_values v;
    struct template *t;
    char err[TEMPLATE_ERROR_MAX];
    size_t len;

    memset(&v, 0, sizeof(v));
    memset(value, 'a', sizeof(value));
    v.vars[TEMPLATE_USER] = str_make(value, 2000);
    CHECK_INT(template_compile(BYTES("<{{user}}>"), TEMPLATE_HEADER, &t, err, sizeof(err)), 0);
    CHECK_INT(template_render(t, &v, buf, sizeof(buf), &len), 0);
    CHECK_INT(len, TEMPLATE_VALUE_MAX + 2);
    CHECK(buf[len - 1] == '>' && buf[len - 2] == 'a');

    /* "é" at bytes 1023-1024: the cut backs up to 1023. */
    memcpy(value + 1023, "\xc3\xa9", 2);
    CHECK_INT(template_render(t, &v, buf, sizeof(buf), &len), 0);
    CHECK_INT(len, 1023 + 2);
    /* A 4-byte sequence at 1021-1024: cut at 1021. */
    memcpy(value + 1021, "\xf0\x9f\x98\x80", 4);
    CHECK_INT(template_render(t, &v, buf, sizeof(buf), &len), 0);
    CHECK_INT(len, 1021 + 2);
    /* Ending exactly at the cap: kept whole. */
    memset(value, 'a', sizeof(value));
    memcpy(value + 1020, "\xf0\x9f\x98\x80", 4);
    CHECK_INT(template_render(t, &v, buf, sizeof(buf), &len), 0);
    CHECK_INT(len, 1024 + 2);
    /* Continuation bytes only: not UTF-8, cut at the cap (each becomes U+FFFD). */
    memset(value, 0x80, sizeof(value));
    CHECK_INT(template_render(t, &v, buf, sizeof(buf), &len), 0);
    CHECK_INT(len, 3 * TEMPLATE_VALUE_MAX + 2);
    CHECK_INT(template_render_max(t), 3 * TEMPLATE_VALUE_MAX + 2);
    template_free(t);

    /* JSON worst case: every byte a \u00XX, two values; template_render_max is exact. */
    memset(value, 0x01, sizeof(value));
    v.vars[TEMPLATE_RULE] = str_make(value, sizeof(value));
    v.vars[TEMPLATE_USER] = str_make(value, sizeof(value));
    CHECK_INT(
        template_compile(BYTES("[\"{{user}}\",\"{{rule}}\"]"), TEMPLATE_JSON, &t, err, sizeof(err)),
        0);
    CHECK_INT(template_render_max(t), 7 + 2 * 6 * TEMPLATE_VALUE_MAX);
    CHECK_INT(template_render(t, &v, buf, template_render_max(t), &len), 0);
    CHECK_INT(len, template_render_max(t));
    CHECK_INT(json_validate(buf, len, NULL, NULL), 0);
    /* Short by one byte, in the middle of an escape or of the literal end. */
    CHECK_INT(template_render(t, &v, buf, len - 1, &len), ERR_TOOBIG);
    CHECK_INT(template_render(t, &v, buf, 7 + 6 * TEMPLATE_VALUE_MAX + 3, &len), ERR_TOOBIG);
    CHECK_INT(template_render(t, NULL, buf, 7, &len), 0);
    CHECK_STR("null values", str_make(buf, len), "[\"\",\"\"]");
    template_free(t);
}

int main(void)
{
    test_compile();
    test_compile_limits();
    test_uses();
    test_render();
    test_json_injection();
    test_caps();
    return unit_report("test_template");
}
