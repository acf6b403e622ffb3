#include "escape.h"

#include <stdint.h>

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
    if (style == ESCAPE_JSON) {
        out[0] = '\\';
        out[1] = 'u';
        out[2] = '0';
        out[3] = '0';
        out[4] = hex_digits[c >> 4];
        out[5] = hex_digits[c & 15];
        return 6;
    }
    out[0] = '\\';
    out[1] = 'x';
    out[2] = hex_digits[c >> 4];
    out[3] = hex_digits[c & 15];
    return 4;
}

size_t escape_text(char *dst, size_t cap, const char *src, size_t len, enum escape_style style)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t out = 0, i = 0;

    while (i < len) {
        if (s[i] >= 0x80) {
            size_t n = utf8_sequence_len(s + i, len - i);
            if (n > 0) {
                if (cap - out < n)
                    break;
                for (size_t k = 0; k < n; k++)
                    dst[out++] = (char)s[i + k];
                i += n;
                continue;
            }
        }
        char esc[6];
        size_t n = escape_byte(esc, s[i], style);
        if (n == 0) {
            if (out == cap)
                break;
            dst[out++] = (char)s[i];
        } else {
            if (cap - out < n)
                break;
            for (size_t k = 0; k < n; k++)
                dst[out++] = esc[k];
        }
        i++;
    }
    return out;
}
