/* Fuzz target: ldapfilter_escape, _sid_binary, _guid_binary, _sam_domain and
 * _build. Byte 0 picks the kind (1 + b % 6: email .. employee_id) and, with
 * its top bit, exclude_disabled; the rest is the identifier (its first 4096
 * bytes: past IDENTITY_MAX_ID only ERR_TOOBIG is new). Asserts the
 * contract: an escaped value unescapes to the input and holds no byte a
 * filter gives a meaning to; a filter is printable ASCII, has no '*' at
 * all (no presence or substring match can be smuggled in), balanced
 * parentheses, the right prefix, and is built exactly when the identifier
 * is valid for its kind; an identifier of IDENTITY_MAX_ID bytes or fewer is
 * never ERR_TOOBIG; one byte less room than the result needs is
 * ERR_TOOBIG; a SID or GUID that converts converts back to its text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "identity/ldapfilter.h"
#include "identity/resolver.h"

#define FUZZ_ID_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static int is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Unescapes text (every backslash followed by two lower-case hex digits,
 * every other byte printable ASCII and not * ( )) into out; returns its
 * length. Aborts on anything else. */
static size_t unescape(const char *text, size_t len, char *out)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];

        check(c >= 0x20 && c < 0x7f && c != '*' && c != '(' && c != ')');
        if (c == '\\') {
            check(i + 2 < len);
            check(is_lower_hex(text[i + 1]) && is_lower_hex(text[i + 2]));
            out[n++] = (char)(str_hex_value(text[i + 1]) << 4 | str_hex_value(text[i + 2]));
            i += 2;
        } else {
            out[n++] = (char)c;
        }
    }
    return n;
}

static void fuzz_escape(struct str id)
{
    static char buf[3 * FUZZ_ID_MAX + 1], back[FUZZ_ID_MAX];
    int n = ldapfilter_escape(id, buf, sizeof(buf));

    check(n >= 0 && (size_t)n == strlen(buf) && (size_t)n <= 3 * id.len);
    check(unescape(buf, (size_t)n, back) == id.len && memcmp(back, id.p, id.len) == 0);
    check(ldapfilter_escape(id, buf, (size_t)n) == ERR_TOOBIG);
    check(ldapfilter_escape(id, buf, (size_t)n + 1) == n);
}

/* s with the leading zeros of each decimal run dropped (one digit kept). */
static size_t sid_canonical_text(struct str s, char *out)
{
    size_t n = 0;

    for (size_t i = 0; i < s.len; i++) {
        if (str_is_digit(s.p[i]) && (i == 0 || !str_is_digit(s.p[i - 1])))
            while (s.p[i] == '0' && i + 1 < s.len && str_is_digit(s.p[i + 1]))
                i++;
        out[n++] = s.p[i];
    }
    return n;
}

static int fuzz_sid(struct str id)
{
    uint8_t bin[LDAPFILTER_SID_MAX], again[LDAPFILTER_SID_MAX];
    static char text[FUZZ_ID_MAX], canon[16 * 21 + 32];
    int n = ldapfilter_sid_binary(id, bin);
    size_t len = 0;
    uint64_t authority = 0;

    if (n < 0) {
        check(n == ERR_INVALID);
        return 0;
    }
    check(bin[1] >= 1 && bin[1] <= 15 && n == 8 + 4 * bin[1]);
    for (int i = 0; i < 6; i++)
        authority = authority << 8 | bin[2 + i];
    len += (size_t)sprintf(canon + len, "S-%u-%llu", bin[0], (unsigned long long)authority);
    for (int i = 0; i < bin[1]; i++) {
        const uint8_t *b = bin + 8 + 4 * i;
        len += (size_t)sprintf(canon + len, "-%lu",
                               (unsigned long)b[0] | (unsigned long)b[1] << 8 |
                                   (unsigned long)b[2] << 16 | (unsigned long)b[3] << 24);
    }
    check(sid_canonical_text(id, text) == len && memcmp(text, canon, len) == 0);
    check(ldapfilter_sid_binary(str_make(canon, len), again) == n &&
          memcmp(again, bin, (size_t)n) == 0);
    return 1;
}

static int fuzz_guid(struct str id)
{
    static const uint8_t order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
    uint8_t bin[16], text[16];
    char hex[37], want[37];
    size_t n = 0;

    if (ldapfilter_guid_binary(id, bin) != 0)
        return 0;
    for (size_t i = 0; i < 16; i++)
        text[order[i]] = bin[i];
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            hex[n++] = '-';
        n += (size_t)sprintf(hex + n, "%02x", text[i]);
    }
    check(id.len == 36 || (id.len == 38 && id.p[0] == '{' && id.p[37] == '}'));
    for (size_t i = 0; i < 36; i++) {
        char c = id.p[id.len == 38 ? i + 1 : i];
        want[i] = c >= 'A' && c <= 'F' ? (char)(c | 0x20) : c;
    }
    check(memcmp(hex, want, 36) == 0);
    return 1;
}

static void fuzz_build(enum user_kind kind, struct str id, int exclude_disabled, int valid)
{
    static const char person[] = "(&(objectCategory=person)(objectClass=user)";
    static const char enabled[] = "(!(userAccountControl:1.2.840.113556.1.4.803:=2))";
    static char buf[LDAPFILTER_MAX], again[LDAPFILTER_MAX], back[LDAPFILTER_MAX];
    int n = ldapfilter_build(kind, id, exclude_disabled, buf, sizeof(buf));
    int depth = 0;

    if (n == ERR_TOOBIG) {
        check(id.len > IDENTITY_MAX_ID);
        return;
    }
    check(valid ? n > 0 : n == ERR_INVALID);
    if (n < 0)
        return;
    check((size_t)n == strlen(buf) && memcmp(buf, person, sizeof(person) - 1) == 0);
    check(exclude_disabled ==
          (memcmp(buf + sizeof(person) - 1, enabled, sizeof(enabled) - 1) == 0));
    check(memchr(buf, '*', (size_t)n) == NULL);
    for (int i = 0; i < n; i++) {
        depth += buf[i] == '(' ? 1 : buf[i] == ')' ? -1 : 0;
        check(depth > 0 || i == n - 1);
    }
    check(depth == 0);
    /* Everything between the parentheses is escaped text. */
    for (int i = 0, from = 0; i <= n; i++)
        if (i == n || buf[i] == '(' || buf[i] == ')') {
            unescape(buf + from, (size_t)(i - from), back);
            from = i + 1;
        }
    check(ldapfilter_build(kind, id, exclude_disabled, again, (size_t)n) == ERR_TOOBIG);
    check(ldapfilter_build(kind, id, exclude_disabled, again, (size_t)n + 1) == n);
    check(memcmp(again, buf, (size_t)n + 1) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum user_kind kind;
    struct str id, domain;
    int valid, is_sid, is_guid;

    if (size == 0)
        return 0;
    kind = (enum user_kind)(USER_KIND_EMAIL + data[0] % 6);
    id = str_make((const char *)data + 1, size - 1 < FUZZ_ID_MAX ? size - 1 : FUZZ_ID_MAX);

    fuzz_escape(id);
    domain = ldapfilter_sam_domain(id);
    check(domain.len == 0 || (domain.p == id.p && domain.len < id.len && id.p[domain.len] == '\\' &&
                              memchr(domain.p, '\\', domain.len) == NULL));

    is_sid = fuzz_sid(id);
    is_guid = fuzz_guid(id);
    switch (kind) {
    case USER_KIND_SID:
        valid = is_sid;
        break;
    case USER_KIND_GUID:
        valid = is_guid;
        break;
    case USER_KIND_SAM:
        valid = userid_sam_account(id).len > 0;
        break;
    default:
        valid = id.len > 0;
        break;
    }
    fuzz_build(kind, id, (data[0] & 0x80) != 0, valid);
    return 0;
}
