#include "escape.h"

#include <stdint.h>
#include <string.h>

size_t utf8_sequence_len(const unsigned char *s, size_t len)
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
    /* Reject overlong forms, UTF-16 surrogates and code points past U+10FFFF. */
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static const char hex_digits[] = "0123456789abcdef";

size_t hex_encode(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[in[i] >> 4];
        out[2 * i + 1] = hex_digits[in[i] & 15];
    }
    out[2 * n] = '\0';
    return 2 * n;
}

/* Writes "\\<kind>" and value as digits lowercase hex digits; returns the
 * length. */
static size_t put_hex(char *out, char kind, uint32_t value, int digits)
{
    out[0] = '\\';
    out[1] = kind;
    for (int d = 0; d < digits; d++)
        out[2 + d] = hex_digits[(value >> (4 * (digits - 1 - d))) & 15];
    return 2 + (size_t)digits;
}

/* The letter of the two-byte escape of c (\n for a newline), or 0 when c
 * has none in the style. */
static char escape_short_form(unsigned char c, enum escape_style style)
{
    switch (c) {
    case '\n':
        return 'n';
    case '\r':
        return 'r';
    case '\t':
        return 't';
    case '\\':
        return '\\';
    case '"':
        return style == ESCAPE_JSON ? '"' : 0;
    default:
        return 0;
    }
}

/* The code point of the valid n-byte sequence s when it is one that
 * terminals, log viewers or JavaScript act on although it is valid UTF-8: a
 * C1 control (U+0080..U+009F: NEL, CSI...) or U+2028/U+2029 (line and
 * paragraph separators). 0 otherwise. */
static uint32_t utf8_control(const unsigned char *s, size_t n)
{
    if (n == 2 && s[0] == 0xC2 && s[1] < 0xA0)
        return s[1];
    if (n == 3 && s[0] == 0xE2 && s[1] == 0x80 && (s[2] == 0xA8 || s[2] == 0xA9))
        return 0x2000 | (s[2] & 0x3F);
    return 0;
}

/* Per byte, in which styles it goes out unchanged: printable ASCII, the
 * quote in a log line only, the backslash in neither. 0 for the controls,
 * DEL and every byte >= 0x80, which starts a UTF-8 sequence to look at. */
enum { ESCAPE_PLAIN_JSON = 1, ESCAPE_PLAIN_LOG = 2 };
#define P (ESCAPE_PLAIN_JSON | ESCAPE_PLAIN_LOG)
#define L ESCAPE_PLAIN_LOG
/* clang-format off */
static const unsigned char escape_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    P, P, L, P, P, P, P, P, P, P, P, P, P, P, P, P, /* 0x20: '"' */
    P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, /* 0x30 */
    P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, /* 0x40 */
    P, P, P, P, P, P, P, P, P, P, P, P, 0, P, P, P, /* 0x50: '\\' */
    P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, /* 0x60 */
    P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, 0, /* 0x70: DEL */
};
/* clang-format on */
#undef L
#undef P

/* Whether the 8 bytes of word are all plain ASCII in the style (SWAR: the
 * high bit of a byte of "attention" is set for each byte that is not, and
 * maybe for bytes after such a byte too, where a borrow or carry crossed:
 * never missed, and a false alarm only sends the word to the byte loop). */
static inline int escape_word_plain(uint64_t word, int json)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t backslash = word ^ (ones * '\\'), quote = word ^ (ones * '"');
    /* >= 0x7F: DEL and every byte that starts or continues UTF-8; < 0x20:
     * the controls; then the bytes equal to a backslash, or a quote. */
    uint64_t attention = (word | (word + ones)) & highs;

    attention |= (word - ones * 0x20) & ~word & highs;
    attention |= (backslash - ones) & ~backslash & highs;
    if (json)
        attention |= (quote - ones) & ~quote & highs;
    return attention == 0;
}

static inline uint64_t escape_load(const unsigned char *p)
{
    uint64_t word;

    memcpy(&word, p, sizeof(word));
    return word;
}

/* Length of the run at s[0..len) that goes out unchanged: plain ASCII and
 * valid UTF-8 sequences that are no control. The run ends at the first byte
 * that needs an escape, or before a sequence that would end past limit
 * (limit <= len: what fits in the output). */
static size_t escape_verbatim_run(const unsigned char *s, size_t len, size_t limit,
                                  unsigned char plain)
{
    const size_t word = sizeof(uint64_t);
    int json = plain == ESCAPE_PLAIN_JSON;
    size_t i = 0;

    for (;;) {
        while (limit - i >= word && escape_word_plain(escape_load(s + i), json))
            i += word;
        /* Fewer than a word left: one more word, ending at limit, that
         * overlaps bytes already in the run (a sequence among them is a
         * false alarm). */
        if (i < limit && limit - i < word && limit >= word &&
            escape_word_plain(escape_load(s + limit - word), json))
            i = limit;
        while (i < limit && (escape_plain[s[i]] & plain))
            i++;
        if (i == limit || s[i] < 0x80)
            return i;
        size_t n = utf8_sequence_len(s + i, len - i);
        if (n == 0 || n > limit - i || utf8_control(s + i, n) != 0)
            return i;
        i += n;
    }
}

/* Writes to out, when it fits in room, the escape of what ended a verbatim
 * run at s[0..len): one byte, or in JSON a control sequence as its code
 * point. Returns the escape's length, 0 when it does not fit; *used gets the
 * input bytes it stands for. Its length is known before anything is written,
 * so no escape is built aside. */
static size_t escape_special(char *out, size_t room, const unsigned char *s, size_t len,
                             enum escape_style style, size_t *used)
{
    unsigned char c = s[0];
    size_t n = c >= 0x80 ? utf8_sequence_len(s, len) : 1;
    uint32_t control = n > 1 ? utf8_control(s, n) : 0;

    if (n > 1 && control == 0)
        return 0; /* valid UTF-8 that ended the run: it did not fit */
    if (control != 0 && style == ESCAPE_JSON) {
        if (room < 6)
            return 0;
        *used = n;
        return put_hex(out, 'u', control, 4);
    }
    /* ASCII, a byte of invalid UTF-8, or (in a log line) one byte of a
     * control sequence: \xXX each, so that no escape is longer than
     * ESCAPE_MAX_EXPANSION and a cut falls between two. A plain byte lands
     * here only when room is 0. */
    char short_form = escape_short_form(c, style);
    int plain = escape_plain[c] & (style == ESCAPE_JSON ? ESCAPE_PLAIN_JSON : ESCAPE_PLAIN_LOG);
    size_t m = short_form ? 2 : plain ? 1 : style == ESCAPE_JSON ? 6 : 4;

    if (room < m)
        return 0;
    *used = 1;
    if (short_form) {
        out[0] = '\\';
        out[1] = short_form;
    } else if (plain) {
        out[0] = (char)c;
    } else {
        put_hex(out, style == ESCAPE_JSON ? 'u' : 'x', c, style == ESCAPE_JSON ? 4 : 2);
    }
    return m;
}

/* Most of what the agent escapes passes unchanged: the loop copies each
 * verbatim run with one memcpy and escapes the byte or sequence that ends
 * it. */
size_t escape_text(char *dst, size_t cap, const char *src, size_t len, enum escape_style style)
{
    const unsigned char *s = (const unsigned char *)src;
    unsigned char plain = style == ESCAPE_JSON ? ESCAPE_PLAIN_JSON : ESCAPE_PLAIN_LOG;
    size_t out = 0, i = 0;

    while (i < len) {
        size_t room = cap - out, used = 0;
        size_t run = escape_verbatim_run(s + i, len - i, len - i < room ? len - i : room, plain);

        if (run > 0) {
            memcpy(dst + out, src + i, run);
            out += run;
            i += run;
            room -= run;
            if (i == len)
                break;
        }
        size_t m = escape_special(dst + out, room, s + i, len - i, style, &used);
        if (m == 0)
            break;
        out += m;
        i += used;
    }
    return out;
}
