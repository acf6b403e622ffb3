/* User identifier kinds (userid.h): pure classification of the text a
 * mapping extracted, so each resolver asks its directory the right question. */
#include "userid.h"

const char *const userid_kind_names[] = {
    "auto", "email", "upn", "sam", "sid", "guid", "employee_id", NULL,
};

const char *userid_kind_name(enum user_kind k)
{
    if ((unsigned)k > USER_KIND_EMPLOYEE_ID)
        return "unknown";
    return userid_kind_names[k];
}

/* Length of the run of decimal digits at p[0..len). */
static size_t userid_digits(const char *p, size_t len)
{
    size_t n = 0;

    while (n < len && str_is_digit(p[n]))
        n++;
    return n;
}

/* S-1-<digits>(-<digits>)+: the revision 1, an identifier authority and at
 * least one sub-authority ("S-1-5-18" is LocalSystem). */
static int userid_is_sid(struct str id)
{
    const char *p = id.p, *end = id.p + id.len;
    size_t groups = 0, n;

    if (id.len < 4 || memcmp(p, "S-1-", 4) != 0)
        return 0;
    p += 4;
    for (;;) {
        n = userid_digits(p, (size_t)(end - p));
        if (n == 0)
            return 0;
        p += n;
        groups++;
        if (p == end)
            return groups >= 2;
        if (*p != '-')
            return 0;
        p++;
    }
}

/* 8-4-4-4-12 hexadecimal digits, optionally inside one pair of braces (the
 * registry form). */
static int userid_is_guid(struct str id)
{
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    const char *p = id.p;
    size_t len = id.len;

    if (len == sizeof(shape) + 1 && p[0] == '{' && p[len - 1] == '}') {
        p++;
        len -= 2;
    }
    if (len != sizeof(shape) - 1)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (shape[i] == '-' ? p[i] != '-' : str_hex_value(p[i]) < 0)
            return 0;
    return 1;
}

enum user_kind userid_detect(struct str id)
{
    if (id.p == NULL || id.len == 0)
        return USER_KIND_SAM;
    if (userid_is_sid(id))
        return USER_KIND_SID;
    if (userid_is_guid(id))
        return USER_KIND_GUID;
    if (userid_digits(id.p, id.len) == id.len)
        return USER_KIND_EMPLOYEE_ID;
    if (memchr(id.p, '@', id.len) != NULL)
        return USER_KIND_UPN;
    return USER_KIND_SAM;
}

enum user_kind userid_resolve_kind(enum user_kind kind, struct str id)
{
    return kind == USER_KIND_AUTO ? userid_detect(id) : kind;
}

/* After the last backslash: a sAMAccountName cannot contain one, so this is
 * also right for an id whose backslash arrived doubled. */
struct str userid_sam_account(struct str id)
{
    for (size_t i = id.len; i > 0; i--)
        if (id.p[i - 1] == '\\')
            return str_make(id.p + i, id.len - i);
    return id;
}
