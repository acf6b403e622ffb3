#include <stdint.h>

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

/* The escaper as it was before it copied runs in bulk, one byte or sequence
 * at a time: the reference the differential tests hold escape_text to, byte
 * for byte and return value for every cap. Kept verbatim (helpers renamed),
 * utf8_sequence_len included, so that the reference does not move with the
 * code under test. */
static size_t ref_utf8_sequence_len(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static const char ref_hex_digits[] = "0123456789abcdef";

static size_t ref_put_hex(char *out, char kind, uint32_t value, int digits)
{
    out[0] = '\\';
    out[1] = kind;
    for (int d = 0; d < digits; d++)
        out[2 + d] = ref_hex_digits[(value >> (4 * (digits - 1 - d))) & 15];
    return 2 + (size_t)digits;
}

static size_t ref_escape_byte(char out[6], unsigned char c, enum escape_style style)
{
    char short_form = 0;

    switch (c) {
    case '\n':
        short_form = 'n';
        break;
    case '\r':
        short_form = 'r';
        break;
    case '\t':
        short_form = 't';
        break;
    case '\\':
        short_form = '\\';
        break;
    case '"':
        if (style == ESCAPE_JSON)
            short_form = '"';
        break;
    default:
        break;
    }
    if (short_form) {
        out[0] = '\\';
        out[1] = short_form;
        return 2;
    }
    if (c >= 0x20 && c != 0x7F && c < 0x80)
        return 0;
    return style == ESCAPE_JSON ? ref_put_hex(out, 'u', c, 4) : ref_put_hex(out, 'x', c, 2);
}

static uint32_t ref_utf8_control(const unsigned char *s, size_t n)
{
    if (n == 2 && s[0] == 0xC2 && s[1] < 0xA0)
        return s[1];
    if (n == 3 && s[0] == 0xE2 && s[1] == 0x80 && (s[2] == 0xA8 || s[2] == 0xA9))
        return 0x2000 | (s[2] & 0x3F);
    return 0;
}

static size_t ref_escape_text(char *dst, size_t cap, const char *src, size_t len,
                              enum escape_style style)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t out = 0, i = 0;

    while (i < len) {
        char esc[6];
        const char *from = esc;
        size_t n = s[i] >= 0x80 ? ref_utf8_sequence_len(s + i, len - i) : 1, m;
        uint32_t control = n > 1 ? ref_utf8_control(s + i, n) : 0;

        if (control != 0 && style == ESCAPE_JSON) {
            m = ref_put_hex(esc, 'u', control, 4);
        } else if (n <= 1 || control != 0) {
            n = 1;
            m = ref_escape_byte(esc, s[i], style);
            if (m == 0) {
                esc[0] = src[i];
                m = 1;
            }
        } else {
            from = src + i;
            m = n;
        }
        if (cap - out < m)
            break;
        memcpy(dst + out, from, m);
        out += m;
        i += n;
    }
    return out;
}

#define DIFF_MAX_IN  512
#define DIFF_MAX_OUT (DIFF_MAX_IN * ESCAPE_MAX_EXPANSION)
#define DIFF_GUARD   16 /* bytes past cap that must stay untouched */

static const enum escape_style diff_styles[] = {ESCAPE_JSON, ESCAPE_LOG};

/* Escapes in[0..len) with both escapers into cap bytes; 0 when they agree
 * on the return value and the bytes, and escape_text wrote nothing past
 * cap. The first few disagreements are printed in full. */
static int diff_one(const unsigned char *in, size_t len, enum escape_style style, size_t cap)
{
    static int printed;
    static char want[DIFF_MAX_OUT + DIFF_GUARD], got[DIFF_MAX_OUT + DIFF_GUARD];
    size_t want_n = ref_escape_text(want, cap, (const char *)in, len, style);

    /* No escape is longer than ESCAPE_MAX_EXPANSION: past that and the
     * guard, a stray write would be far out indeed. */
    size_t watched =
        (cap < len * ESCAPE_MAX_EXPANSION ? cap : len * ESCAPE_MAX_EXPANSION) + DIFF_GUARD;
    memset(got, 0xAA, watched);
    size_t got_n = escape_text(got, cap, (const char *)in, len, style);
    int bad = got_n != want_n || memcmp(got, want, want_n) != 0;
    for (size_t k = cap; k < watched && !bad; k++)
        bad = (unsigned char)got[k] != 0xAA;
    if (bad && printed++ < 5) {
        fprintf(stderr,
                "escape_text differs (%s, cap %zu) on:", style == ESCAPE_JSON ? "json" : "log",
                cap);
        for (size_t k = 0; k < len; k++)
            fprintf(stderr, " %02x", in[k]);
        fprintf(stderr, "\n  want %zu '%.*s'\n  got  %zu '%.*s'\n", want_n, (int)want_n, want,
                got_n, (int)got_n, got);
    }
    return bad;
}

/* diff_one for both styles and every cap from 0 to one past the full
 * escape: a cut at every position. The input is copied to a heap block of
 * its exact size, so that a sanitizer build sees any read past its end (the
 * escaper reads words). Returns the number of disagreements. */
static int diff_every_cap(const unsigned char *in, size_t len)
{
    static char full[DIFF_MAX_OUT];
    unsigned char *exact = malloc(len ? len : 1);
    int bad = 0;

    if (exact == NULL)
        return 1;
    memcpy(exact, in, len);
    for (size_t st = 0; st < sizeof(diff_styles) / sizeof(diff_styles[0]); st++) {
        size_t full_n = ref_escape_text(full, sizeof(full), (const char *)in, len, diff_styles[st]);
        for (size_t cap = 0; cap <= full_n + 1; cap++)
            bad += diff_one(exact, len, diff_styles[st], cap);
    }
    free(exact);
    return bad;
}

/* Bytes where the escaper's decisions change: every control with a short
 * form, the quote and backslash, the ends of printable ASCII, continuation
 * bytes at the C1 and U+2028 edges, and lead bytes that are always invalid
 * (C0 C1 F5..FF), overlong-prone (E0 F0), surrogate-prone (ED) or near
 * U+10FFFF (F4). */
static const unsigned char diff_alphabet[] = {
    0x00, 0x09, 0x0a, 0x0d, 0x1f, 0x20, '"',  'A',  '\\', 0x7e, 0x7f, 0x80, 0x85, 0x8f, 0x90, 0x9f,
    0xa0, 0xa8, 0xa9, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff,
};
#define DIFF_ALPHABET_N (sizeof(diff_alphabet) / sizeof(diff_alphabet[0]))

/* Exhaustive short inputs: every 1- and 2-byte string, and every 3-byte one
 * over the alphabet, at every cap; every 4-byte one over the alphabet with
 * no cut. Every UTF-8 edge fits in these lengths. */
static void test_escape_differential_exhaustive(void)
{
    unsigned char in[4];
    int bad = 0;

    for (unsigned a = 0; a < 256; a++) {
        in[0] = (unsigned char)a;
        bad += diff_every_cap(in, 1);
        for (unsigned b = 0; b < 256; b++) {
            in[1] = (unsigned char)b;
            bad += diff_every_cap(in, 2);
        }
    }
    CHECK_INT(bad, 0);
    bad = 0;
    for (size_t a = 0; a < DIFF_ALPHABET_N; a++)
        for (size_t b = 0; b < DIFF_ALPHABET_N; b++)
            for (size_t c = 0; c < DIFF_ALPHABET_N; c++) {
                in[0] = diff_alphabet[a];
                in[1] = diff_alphabet[b];
                in[2] = diff_alphabet[c];
                bad += diff_every_cap(in, 3);
                for (size_t d = 0; d < DIFF_ALPHABET_N; d++) {
                    in[3] = diff_alphabet[d];
                    bad += diff_one(in, 4, ESCAPE_JSON, DIFF_MAX_OUT);
                    bad += diff_one(in, 4, ESCAPE_LOG, DIFF_MAX_OUT);
                }
            }
    CHECK_INT(bad, 0);
}

/* xorshift64: a fixed seed, so that a failure reproduces. */
static uint64_t diff_rng = 0x9e3779b97f4a7c15u;

static uint32_t diff_rand(uint32_t below)
{
    diff_rng ^= diff_rng << 13;
    diff_rng ^= diff_rng >> 7;
    diff_rng ^= diff_rng << 17;
    return (uint32_t)(diff_rng % below);
}

/* Pieces random inputs are made of: the encodings a real message carries and
 * the invalid ones an attacker sends. */
static const char *const diff_pieces[] = {
    "\xc3\xbc",         /* U+00FC */
    "\xd0\x96",         /* U+0416 */
    "\xe2\x82\xac",     /* U+20AC */
    "\xef\xbb\xbf",     /* BOM */
    "\xf0\x9f\x98\x80", /* U+1F600 */
    "\xf4\x8f\xbf\xbf", /* U+10FFFF */
    "\xc2\x80",         /* C1 first */
    "\xc2\x85",         /* NEL */
    "\xc2\x9f",         /* C1 last */
    "\xc2\xa0",         /* U+00A0, just past C1 */
    "\xe2\x80\xa7",     /* U+2027 */
    "\xe2\x80\xa8",     /* LINE SEPARATOR */
    "\xe2\x80\xa9",     /* PARAGRAPH SEPARATOR */
    "\xe2\x80\xaa",     /* U+202A */
    "\xc0\xaf",         /* overlong '/' */
    "\xe0\x80\xaf",     /* overlong '/', 3 bytes */
    "\xf0\x80\x80\xaf", /* overlong '/', 4 bytes */
    "\xed\xa0\x80",     /* surrogate D800 */
    "\xed\xbf\xbf",     /* surrogate DFFF */
    "\xed\x9f\xbf",     /* U+D7FF, valid */
    "\xf4\x90\x80\x80", /* U+110000 */
    "\xf8\x88\x80\x80\x80",
    "\xe2\x82",     /* truncated */
    "\xf0\x9f\x98", /* truncated */
    "\x80",
    "\xbf",
    "\xff",
    "\"",
    "\\",
    "\n",
    "\r\n",
    "\t",
    "\x1b[31m",
    "\x7f",
    "suser=EXAMPLE\\\\amorgan ",
};
#define DIFF_PIECES_N (sizeof(diff_pieces) / sizeof(diff_pieces[0]))

/* Appends to in (up to max bytes) one random piece: a long run of plain
 * ASCII, random bytes, or one of diff_pieces. Returns the new length. */
static size_t diff_add_piece(unsigned char *in, size_t len, size_t max)
{
    uint32_t kind = diff_rand(4), n;

    if (kind == 0) {
        for (n = diff_rand(80); n > 0 && len < max; n--)
            in[len++] = (unsigned char)(0x20 + diff_rand(0x5f));
    } else if (kind == 1) {
        for (n = diff_rand(6); n > 0 && len < max; n--)
            in[len++] = (unsigned char)diff_rand(256);
    } else {
        const char *p = diff_pieces[diff_rand(DIFF_PIECES_N)];
        for (; *p && len < max; p++)
            in[len++] = (unsigned char)*p;
    }
    return len;
}

/* Random mixes: short ones cut at every position, long ones (up to
 * DIFF_MAX_IN, where a run crosses many escapes) whole and at random caps. */
static void test_escape_differential_random(void)
{
    static unsigned char in[DIFF_MAX_IN];
    int bad = 0;

    for (int round = 0; round < 4000; round++) {
        size_t len = 0, max = round % 4 == 3 ? DIFF_MAX_IN : 48;
        while (len < max && diff_rand(12) != 0)
            len = diff_add_piece(in, len, max);
        if (max == 48) {
            bad += diff_every_cap(in, len);
            continue;
        }
        /* At the end of a heap block of its size, as in diff_every_cap. */
        unsigned char *exact = malloc(len ? len : 1);
        if (exact == NULL) {
            bad++;
            break;
        }
        memcpy(exact, in, len);
        for (size_t st = 0; st < 2; st++) {
            bad += diff_one(exact, len, diff_styles[st], DIFF_MAX_OUT);
            for (int k = 0; k < 16; k++)
                bad += diff_one(exact, len, diff_styles[st], diff_rand(3 * (uint32_t)len + 2));
        }
        free(exact);
    }
    CHECK_INT(bad, 0);
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
    test_escape_differential_exhaustive();
    test_escape_differential_random();
    test_hex_encode();
    return unit_report("test_escape");
}
