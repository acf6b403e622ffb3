#include "core/escape.h"
#include "unit.h"

static const struct {
    const char *name;
    const char *in;
    size_t in_len; /* 0: strlen(in) */
    enum escape_style style;
    const char *want;
} escape_cases[] = {
    {"plain ascii", "hello world", 0, ESCAPE_JSON, "hello world"},
    {"json quote and backslash", "a\"b\\c", 0, ESCAPE_JSON, "a\\\"b\\\\c"},
    {"log keeps quotes", "a\"b\\c", 0, ESCAPE_LOG, "a\"b\\\\c"},
    {"json newline tab cr", "a\nb\tc\rd", 0, ESCAPE_JSON, "a\\nb\\tc\\rd"},
    {"log newline cannot forge a line", "x\ny", 0, ESCAPE_LOG, "x\\ny"},
    {"json control char", "\x01\x1f\x7f", 0, ESCAPE_JSON, "\\u0001\\u001f\\u007f"},
    {"log control char", "\x1b[31m", 0, ESCAPE_LOG, "\\x1b[31m"},
    {"NUL byte", "a\0b", 3, ESCAPE_JSON, "a\\u0000b"},
    {"valid 2-byte utf8", "\xc3\xbc", 0, ESCAPE_JSON, "\xc3\xbc"},
    {"valid 4-byte utf8", "\xf0\x9f\x98\x80", 0, ESCAPE_JSON, "\xf0\x9f\x98\x80"},
    {"BOM passes", "\xef\xbb\xbfx", 0, ESCAPE_JSON, "\xef\xbb\xbfx"},
    {"lone continuation byte", "\x80", 0, ESCAPE_JSON, "\\u0080"},
    {"shift_jis bytes", "\x83\x65", 0, ESCAPE_LOG, "\\x83e"},
    {"overlong slash", "\xc0\xaf", 0, ESCAPE_JSON, "\\u00c0\\u00af"},
    {"surrogate half", "\xed\xa0\x80", 0, ESCAPE_JSON, "\\u00ed\\u00a0\\u0080"},
    {"past U+10FFFF", "\xf4\x90\x80\x80", 0, ESCAPE_JSON, "\\u00f4\\u0090\\u0080\\u0080"},
    {"truncated sequence at end", "ab\xe2\x82", 0, ESCAPE_JSON, "ab\\u00e2\\u0082"},
    /* C1 controls and U+2028/U+2029 are valid UTF-8 that terminals, log
     * viewers and JavaScript act on: escaped, byte by byte in a log line, as
     * the code point in JSON. Their neighbours pass. */
    {"log C1 NEL",
     "a\xc2\x85"
     "b",
     0, ESCAPE_LOG, "a\\xc2\\x85b"},
    {"log C1 CSI",
     "\xc2\x9b"
     "31m",
     0, ESCAPE_LOG, "\\xc2\\x9b31m"},
    {"log U+0080", "\xc2\x80", 0, ESCAPE_LOG, "\\xc2\\x80"},
    {"log U+009F", "\xc2\x9f", 0, ESCAPE_LOG, "\\xc2\\x9f"},
    {"log U+00A0 passes", "\xc2\xa0", 0, ESCAPE_LOG, "\xc2\xa0"},
    {"log U+2028", "x\xe2\x80\xa8y", 0, ESCAPE_LOG, "x\\xe2\\x80\\xa8y"},
    {"log U+2029", "\xe2\x80\xa9", 0, ESCAPE_LOG, "\\xe2\\x80\\xa9"},
    {"log U+2027 and U+202A pass", "\xe2\x80\xa7\xe2\x80\xaa", 0, ESCAPE_LOG,
     "\xe2\x80\xa7\xe2\x80\xaa"},
    {"json C1 NEL",
     "a\xc2\x85"
     "b",
     0, ESCAPE_JSON, "a\\u0085b"},
    {"json C1 range ends", "\xc2\x80\xc2\x9f\xc2\xa0", 0, ESCAPE_JSON, "\\u0080\\u009f\xc2\xa0"},
    {"json U+2028 U+2029", "\xe2\x80\xa8\xe2\x80\xa9", 0, ESCAPE_JSON, "\\u2028\\u2029"},
    {"json U+2027 passes", "\xe2\x80\xa7", 0, ESCAPE_JSON, "\xe2\x80\xa7"},
};

static void test_escape_table(void)
{
    for (size_t i = 0; i < sizeof(escape_cases) / sizeof(escape_cases[0]); i++) {
        char out[256];
        size_t in_len =
            escape_cases[i].in_len ? escape_cases[i].in_len : strlen(escape_cases[i].in);
        size_t n = escape_text(out, sizeof(out), escape_cases[i].in, in_len, escape_cases[i].style);
        CHECK_STR(escape_cases[i].name, str_make(out, n), escape_cases[i].want);
    }
}

/* A full destination stops on a whole escape, never half of one. */
static void test_escape_truncation(void)
{
    char out[5];
    size_t n = escape_text(out, sizeof(out), "ab\ncd", 5, ESCAPE_JSON);
    CHECK_STR("stops before a split escape", str_make(out, n), "ab\\nc");
    n = escape_text(out, 3, "a\x01", 2, ESCAPE_JSON);
    CHECK_STR("no partial \\u escape", str_make(out, n), "a");
    n = escape_text(out, 2, "a\xc3\xbc", 3, ESCAPE_JSON);
    CHECK_STR("no partial utf8 sequence", str_make(out, n), "a");
    /* A log line escapes U+2028 byte by byte: a cut falls between escapes,
     * so no escape is longer than ESCAPE_MAX_EXPANSION. */
    n = escape_text(out, 5, "\xe2\x80\xa8", 3, ESCAPE_LOG);
    CHECK_STR("log U+2028 cut on a whole escape", str_make(out, n), "\\xe2");
    n = escape_text(out, 5, "a\xe2\x80\xa8", 4, ESCAPE_JSON);
    CHECK_STR("no partial \\u2028", str_make(out, n), "a");
}

/* Digests become keys and hashed users: lowercase, two digits a byte. */
static void test_hex_encode(void)
{
    static const unsigned char bytes[] = {0x00, 0x0f, 0xa5, 0xff};
    char out[2 * sizeof(bytes) + 1];

    CHECK_INT(hex_encode(bytes, sizeof(bytes), out), 8);
    CHECK_STR("hex", str_make(out, strlen(out)), "000fa5ff");
    CHECK_INT(hex_encode(bytes, 0, out), 0);
    CHECK_INT(out[0], '\0');
}

int main(void)
{
    test_escape_table();
    test_escape_truncation();
    test_hex_encode();
    return unit_report("test_escape");
}
