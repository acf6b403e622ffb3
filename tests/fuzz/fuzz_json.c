/* Fuzz target: json_validate, then json_lookup on what it accepts. Asserts: the return
 * code is one of the documented ones and agrees with the error text ("json: ...", within
 * its buffer, valid UTF-8, offset inside the input); a document is accepted under tight
 * limits only if under the defaults too; every lookup's result lies in the document or
 * its shadow; an unescaped string is valid UTF-8; any other value found is itself a valid
 * document. Paths come from the input: the keys written without escapes, alone and joined
 * with each other and with array indexes 0 and 1. Lookups on rejected input must stay
 * inside it too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

/* Independent of json.c's: strict UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static int utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = p[i];
        uint32_t cp;
        size_t k;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC0 && c < 0xE0) {
            k = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c < 0xF0) {
            k = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c < 0xF8) {
            k = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + j] & 0x3F);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

static int inside(struct str s, const char *base, size_t len)
{
    return s.p >= base && s.p + s.len <= base + len;
}

static void check_error(int rc, const struct json_error *err, size_t size)
{
    check(rc == 0 || rc == ERR_INVALID || rc == ERR_LIMIT);
    size_t n = strnlen(err->text, sizeof(err->text));
    check(n < sizeof(err->text));
    check((rc == 0) == (n == 0));
    if (rc != 0) {
        check(strncmp(err->text, "json: ", 6) == 0);
        check(utf8_valid((const unsigned char *)err->text, n));
        check(err->offset <= size);
    }
}

static void lookup(const char *doc, size_t size, char *shadow, const char *path, size_t plen,
                   int validated)
{
    struct str out;
    enum json_kind kind;
    int rc = json_lookup(doc, size, str_make(path, plen), shadow, &out, &kind);

    check(rc == 0 || rc == ERR_INVALID);
    if (out.p == NULL)
        return;
    check(kind != JSON_NONE && kind != JSON_NULL);
    if (kind == JSON_STRING) {
        check(inside(out, doc, size) || inside(out, shadow, size));
        if (validated)
            check(utf8_valid((const unsigned char *)out.p, out.len));
        return;
    }
    check(inside(out, doc, size));
    if (validated) {
        struct json_error err;
        check(json_validate(out.p, out.len, NULL, &err) == 0);
        check(json_kind_of(out.p, out.len) == kind);
    }
}

#define MAX_KEYS 8
#define MAX_PATH 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct json_error err;
    struct json_limits tight = {3, 4, 16};
    struct str keys[MAX_KEYS + 2];
    size_t n_keys = 0;
    char path[MAX_PATH];
    char *doc = malloc(size ? size : 1), *shadow = malloc(size ? size : 1);

    if (doc == NULL || shadow == NULL)
        abort();
    memcpy(doc, in, size); /* exactly size bytes: ASan sees a read past the end */
    int rc = json_validate(doc, size, NULL, &err);
    check_error(rc, &err, size);
    int rc_tight = json_validate(doc, size, &tight, &err);
    check_error(rc_tight, &err, size);
    check(rc_tight != 0 || rc == 0);
    check(rc_tight != ERR_INVALID || rc == ERR_INVALID);

    /* Keys as written without escapes: "name" followed by ':' . */
    for (size_t i = 0; i < size && n_keys < MAX_KEYS; i++) {
        if (doc[i] != '"')
            continue;
        size_t j = i + 1;
        while (j < size && doc[j] != '"' && doc[j] != '\\' && doc[j] != '.')
            j++;
        if (j + 1 < size && doc[j] == '"' && doc[j + 1] == ':' && j - i - 1 < 64)
            keys[n_keys++] = str_make(doc + i + 1, j - i - 1);
        i = j;
    }
    keys[n_keys++] = STR_LIT("0");
    keys[n_keys++] = STR_LIT("1");

    lookup(doc, size, shadow, "", 0, rc == 0);
    for (size_t a = 0; a < n_keys; a++) {
        for (size_t b = 0; b <= n_keys; b++) {
            size_t plen = keys[a].len;
            memcpy(path, keys[a].p, plen);
            if (b < n_keys) {
                path[plen++] = '.';
                memcpy(path + plen, keys[b].p, keys[b].len);
                plen += keys[b].len;
            }
            lookup(doc, size, shadow, path, plen, rc == 0);
        }
    }
    free(shadow);
    free(doc);
    return 0;
}
