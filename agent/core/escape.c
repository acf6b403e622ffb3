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

/* The escape for byte c, or 0 when c passes through as is. */
static size_t escape_byte(char out[6], unsigned char c, enum escape_style style)
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
    return style == ESCAPE_JSON ? put_hex(out, 'u', c, 4) : put_hex(out, 'x', c, 2);
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

size_t escape_text(char *dst, size_t cap, const char *src, size_t len, enum escape_style style)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t out = 0, i = 0;

    while (i < len) {
        char esc[6];
        const char *from = esc;
        /* n input bytes go out as from[0..m). */
        size_t n = s[i] >= 0x80 ? utf8_sequence_len(s + i, len - i) : 1, m;
        uint32_t control = n > 1 ? utf8_control(s + i, n) : 0;

        if (control != 0 && style == ESCAPE_JSON) {
            m = put_hex(esc, 'u', control, 4);
        } else if (n <= 1 || control != 0) {
            /* ASCII, a byte of invalid UTF-8, or (in a log line) one byte
             * of a control sequence: \xXX each, so that no escape is longer
             * than ESCAPE_MAX_EXPANSION and a cut falls between two. */
            n = 1;
            m = escape_byte(esc, s[i], style);
            if (m == 0) {
                esc[0] = src[i];
                m = 1;
            }
        } else {
            from = src + i; /* valid UTF-8 passes as is */
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
