/* LDAP search filters for one Active Directory user (ldapfilter.h): the
 * identifier is checked for its kind first, then the filter is written
 * through a cursor that never passes cap and remembers that it would have. */
#include "ldapfilter.h"

#include <limits.h>
#include <string.h>

#include "errors.h"
#include "resolver.h" /* IDENTITY_MAX_ID */

#define LDAPFILTER_USER     "(&(objectCategory=person)(objectClass=user)"
#define LDAPFILTER_ENABLED  "(!(userAccountControl:1.2.840.113556.1.4.803:=2))"
#define LDAPFILTER_UPN      "(|(userPrincipalName="
#define LDAPFILTER_MAIL     ")(mail="
#define LDAPFILTER_PROXY    ")(proxyAddresses=smtp:"
#define LDAPFILTER_SAM      "(sAMAccountName="
#define LDAPFILTER_SID      "(objectSid="
#define LDAPFILTER_GUID     "(objectGUID="
#define LDAPFILTER_EMPLOYEE "(employeeID="

/* The longest filter, with its NUL: upn, its value three times with every
 * byte escaped. */
_Static_assert(sizeof(LDAPFILTER_USER LDAPFILTER_ENABLED LDAPFILTER_UPN LDAPFILTER_MAIL
                          LDAPFILTER_PROXY ")))") +
                       3 * 3 * IDENTITY_MAX_ID <=
                   LDAPFILTER_MAX,
               "LDAPFILTER_MAX too small for an identifier of IDENTITY_MAX_ID bytes");

/* Where a filter is written: len < cap always (room for the NUL) unless
 * over is set, after which nothing more is written. */
struct ldapfilter_out {
    char *buf;
    size_t cap;
    size_t len;
    int over;
};

static void ldapfilter_put(struct ldapfilter_out *o, const char *p, size_t n)
{
    if (n == 0) /* p may be NULL (an absent str) */
        return;
    if (o->over || n >= o->cap - o->len) {
        o->over = 1;
        return;
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

#define ldapfilter_put_lit(o, s) ldapfilter_put((o), (s), sizeof(s) - 1)

static void ldapfilter_put_hex(struct ldapfilter_out *o, unsigned char c)
{
    static const char digits[] = "0123456789abcdef";
    const char esc[3] = {'\\', digits[c >> 4], digits[c & 0x0f]};

    ldapfilter_put(o, esc, sizeof(esc));
}

/* RFC 4515 needs only * ( ) \ NUL escaped; the other control bytes and
 * everything outside ASCII are escaped too, so that a filter is printable
 * ASCII (safe in a log line) whatever bytes the identifier holds. */
static int ldapfilter_needs_escape(unsigned char c)
{
    return c < 0x20 || c >= 0x7f || c == '*' || c == '(' || c == ')' || c == '\\';
}

static void ldapfilter_put_escaped(struct ldapfilter_out *o, struct str v)
{
    size_t run = 0; /* bytes before i that go out as they are */

    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];

        if (!ldapfilter_needs_escape(c))
            continue;
        ldapfilter_put(o, v.p + run, i - run);
        ldapfilter_put_hex(o, c);
        run = i + 1;
    }
    ldapfilter_put(o, v.p + run, v.len - run);
}

/* "(attr=\xx...)" with every byte escaped, printable ones too: a binary
 * value has no text form. */
static void ldapfilter_put_binary(struct ldapfilter_out *o, const char *attr, const uint8_t *bin,
                                  size_t n)
{
    ldapfilter_put(o, attr, strlen(attr));
    for (size_t i = 0; i < n; i++)
        ldapfilter_put_hex(o, bin[i]);
    ldapfilter_put_lit(o, ")");
}

/* Ends the filter with its NUL. On an error buf holds "" (when it has room
 * for it), never the start of a filter cut short. */
static int ldapfilter_finish(struct ldapfilter_out *o, int err)
{
    if (err == 0 && (o->over || o->len > INT_MAX))
        err = ERR_TOOBIG;
    if (err != 0) {
        if (o->cap > 0)
            o->buf[0] = '\0';
        return err;
    }
    o->buf[o->len] = '\0';
    return (int)o->len;
}

int ldapfilter_escape(struct str value, char *buf, size_t cap)
{
    struct ldapfilter_out o = {buf, cap, 0, cap == 0};

    ldapfilter_put_escaped(&o, value);
    return ldapfilter_finish(&o, 0);
}

/* The decimal number at *p (one digit at least, no sign) when it is at most
 * max; *p moves past it. */
static int ldapfilter_decimal(const char **p, const char *end, uint64_t max, uint64_t *out)
{
    const char *q = *p;
    uint64_t v = 0;

    if (q == end || !str_is_digit(*q))
        return ERR_INVALID;
    for (; q < end && str_is_digit(*q); q++) {
        unsigned d = (unsigned)(*q - '0');

        if (v > (max - d) / 10)
            return ERR_INVALID;
        v = v * 10 + d;
    }
    *p = q;
    *out = v;
    return 0;
}

int ldapfilter_sid_binary(struct str sid, uint8_t out[LDAPFILTER_SID_MAX])
{
    const char *p = sid.p, *end = sid.p + sid.len;
    uint64_t revision, authority, sub;
    int count = 0;

    if (sid.len < 2 || p[0] != 'S' || p[1] != '-')
        return ERR_INVALID;
    p += 2;
    if (ldapfilter_decimal(&p, end, UINT8_MAX, &revision) != 0 || p == end || *p++ != '-' ||
        ldapfilter_decimal(&p, end, (UINT64_C(1) << 48) - 1, &authority) != 0)
        return ERR_INVALID;
    while (p < end) {
        if (*p++ != '-' || count == 15 || ldapfilter_decimal(&p, end, UINT32_MAX, &sub) != 0)
            return ERR_INVALID;
        for (int i = 0; i < 4; i++)
            out[8 + 4 * count + i] = (uint8_t)(sub >> (8 * i));
        count++;
    }
    if (count == 0)
        return ERR_INVALID;
    out[0] = (uint8_t)revision;
    out[1] = (uint8_t)count;
    for (int i = 0; i < 6; i++)
        out[2 + i] = (uint8_t)(authority >> (8 * (5 - i)));
    return 8 + 4 * count;
}

int ldapfilter_guid_binary(struct str guid, uint8_t out[16])
{
    /* AD's byte i is the text's byte order[i]: Data1 (4 bytes), Data2 and
     * Data3 (2 each) are stored little-endian, Data4 as written. */
    static const uint8_t order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    const char *p = guid.p;
    size_t len = guid.len, n = 0;
    uint8_t text[16];

    if (len == sizeof(shape) + 1 && p[0] == '{' && p[len - 1] == '}') {
        p++;
        len -= 2;
    }
    if (len != sizeof(shape) - 1)
        return ERR_INVALID;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;

        if (shape[i] == '-') {
            if (p[i] != '-')
                return ERR_INVALID;
            continue;
        }
        hi = str_hex_value(p[i]);
        lo = str_hex_value(p[++i]);
        if (hi < 0 || lo < 0)
            return ERR_INVALID;
        text[n++] = (uint8_t)(hi << 4 | lo);
    }
    for (size_t i = 0; i < 16; i++)
        out[i] = text[order[i]];
    return 0;
}

struct str ldapfilter_sam_domain(struct str id)
{
    const char *slash = id.len > 0 ? memchr(id.p, '\\', id.len) : NULL;

    return str_make(id.p, slash != NULL ? (size_t)(slash - id.p) : 0);
}

int ldapfilter_build(enum user_kind kind, struct str user, int exclude_disabled, char *buf,
                     size_t cap)
{
    struct ldapfilter_out o = {buf, cap, 0, cap == 0};
    uint8_t bin[LDAPFILTER_SID_MAX];
    struct str sam;
    int n;

    if (user.len == 0)
        return ldapfilter_finish(&o, ERR_INVALID);
    ldapfilter_put_lit(&o, LDAPFILTER_USER);
    if (exclude_disabled)
        ldapfilter_put_lit(&o, LDAPFILTER_ENABLED);
    switch (kind) {
    case USER_KIND_EMAIL:
    case USER_KIND_UPN:
        ldapfilter_put_lit(&o, LDAPFILTER_UPN);
        ldapfilter_put_escaped(&o, user);
        ldapfilter_put_lit(&o, LDAPFILTER_MAIL);
        ldapfilter_put_escaped(&o, user);
        ldapfilter_put_lit(&o, LDAPFILTER_PROXY);
        ldapfilter_put_escaped(&o, user);
        ldapfilter_put_lit(&o, "))");
        break;
    case USER_KIND_SAM:
        sam = userid_sam_account(user);
        if (sam.len == 0)
            return ldapfilter_finish(&o, ERR_INVALID);
        ldapfilter_put_lit(&o, LDAPFILTER_SAM);
        ldapfilter_put_escaped(&o, sam);
        ldapfilter_put_lit(&o, ")");
        break;
    case USER_KIND_SID:
        n = ldapfilter_sid_binary(user, bin);
        if (n < 0)
            return ldapfilter_finish(&o, ERR_INVALID);
        ldapfilter_put_binary(&o, LDAPFILTER_SID, bin, (size_t)n);
        break;
    case USER_KIND_GUID:
        if (ldapfilter_guid_binary(user, bin) != 0)
            return ldapfilter_finish(&o, ERR_INVALID);
        ldapfilter_put_binary(&o, LDAPFILTER_GUID, bin, 16);
        break;
    case USER_KIND_EMPLOYEE_ID:
        ldapfilter_put_lit(&o, LDAPFILTER_EMPLOYEE);
        ldapfilter_put_escaped(&o, user);
        ldapfilter_put_lit(&o, ")");
        break;
    case USER_KIND_AUTO:
    default:
        return ldapfilter_finish(&o, ERR_INVALID);
    }
    ldapfilter_put_lit(&o, ")");
    return ldapfilter_finish(&o, 0);
}
