#include "escape.h"

#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

/* Which of the 8 bytes of word are not plain ASCII in the style (SWAR: the
 * high bit of a byte of the result is set for each byte that is not, and
 * maybe for bytes after such a byte too, where a borrow or carry crossed:
 * never missed, and the first byte flagged is always a real one). */
static inline uint64_t escape_word_attention(uint64_t word, int json)
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
    return attention;
}

/* How many bytes of the loaded word precede the first one flagged in
 * attention (nonzero): in memory order, which is the load's byte order. */
static inline size_t escape_plain_prefix(uint64_t attention)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (size_t)__builtin_ctzll(attention) / 8;
#else
    (void)attention;
    return 0; /* the byte loop finds it */
#endif
}

static inline uint64_t escape_load(const unsigned char *p)
{
    uint64_t word;

    memcpy(&word, p, sizeof(word));
    return word;
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

#ifdef __SSE2__
/* escape_word_attention for 16 bytes (every x86-64 has SSE2), exact: bit k
 * is set when byte k is not plain ASCII in the style. A signed compare
 * with 0x20 takes the controls and every byte >= 0x80 at once. */
static inline unsigned escape_block_attention(__m128i v, int json)
{
    __m128i special = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                                   _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7F)));

    special = _mm_or_si128(special, _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
    if (json)
        special = _mm_or_si128(special, _mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
    return (unsigned)_mm_movemask_epi8(special);
}
#endif

/* Most of what the agent escapes passes unchanged: words of plain ASCII
 * are copied as they are scanned, up to the first byte that is not, a
 * backslash or a quote is escaped in line (CEF text is full of
 * backslashes: DOMAIN\user, file paths), and only a control or a byte >=
 * 0x80 takes the slow path. json is a constant in each caller below, so
 * that each style gets its own loop. */
static inline size_t escape_style_text(char *dst, size_t cap, const unsigned char *s, size_t len,
                                       const int json)
{
    const unsigned char plain = json ? ESCAPE_PLAIN_JSON : ESCAPE_PLAIN_LOG;
    size_t out = 0, i = 0;

    for (;;) {
#ifdef __SSE2__
        while (len - i >= sizeof(__m128i) && cap - out >= sizeof(__m128i)) {
            __m128i block = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            unsigned attention = escape_block_attention(block, json);
            size_t take = attention == 0 ? sizeof(block) : (size_t)__builtin_ctz(attention);
            /* The whole block is stored; only its plain prefix counts. */
            _mm_storeu_si128((__m128i *)(void *)(dst + out), block);
            i += take;
            out += take;
            if (take < sizeof(block))
                break;
        }
#endif
        while (len - i >= sizeof(uint64_t) && cap - out >= sizeof(uint64_t)) {
            uint64_t word = escape_load(s + i), attention = escape_word_attention(word, json);
            size_t take = attention == 0 ? sizeof(word) : escape_plain_prefix(attention);
            /* The whole word is stored; only its plain prefix counts. */
            memcpy(dst + out, &word, sizeof(word));
            i += take;
            out += take;
            if (take < sizeof(word))
                break;
        }
        /* A tail shorter than a word, or the last bytes of room (the tail of
         * a short text mostly has room for all of it: one test less). */
        if (cap - out >= len - i) {
            while (i < len && (escape_plain[s[i]] & plain))
                dst[out++] = (char)s[i++];
        } else {
            while (i < len && out < cap && (escape_plain[s[i]] & plain))
                dst[out++] = (char)s[i++];
        }
        if (i == len || out == cap)
            return out;
        unsigned char c = s[i];
        size_t n = 1, used = 0, m;
        if (c == '\\' || (json && c == '"')) {
            if (cap - out < 2)
                return out;
            dst[out] = '\\';
            dst[out + 1] = (char)c;
            out += 2;
            i++;
            continue;
        }
        if (c >= 0x80)
            n = utf8_sequence_len(s + i, len - i);
        if (n > 1 && utf8_control(s + i, n) == 0) { /* valid UTF-8, no control: as is */
            if (cap - out < n)
                return out;
            memcpy(dst + out, s + i, n);
            out += n;
            i += n;
            continue;
        }
        m = escape_special(dst + out, cap - out, s + i, len - i, json ? ESCAPE_JSON : ESCAPE_LOG,
                           &used);
        if (m == 0)
            return out;
        out += m;
        i += used;
    }
}

size_t escape_text(char *dst, size_t cap, const char *src, size_t len, enum escape_style style)
{
    const unsigned char *s = (const unsigned char *)src;

    if (style == ESCAPE_JSON)
        return escape_style_text(dst, cap, s, len, 1);
    return escape_style_text(dst, cap, s, len, 0);
}
