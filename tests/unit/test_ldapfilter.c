/* ldapfilter: RFC 4515 escaping, string SIDs and GUIDs to their binary
 * forms, the DOMAIN\ cut and the filter of each kind, as tables of exact
 * strings and bytes (the expected bytes were worked out by hand and with
 * Python's struct and uuid.bytes_le, not with the code under test); then
 * every cap around each result's length. */
#include <stdint.h>

#include "errors.h"
#include "identity/ldapfilter.h"
#include "unit.h"

/* A literal that may hold NUL bytes, with its length. */
#define BYTES(s) s, sizeof(s) - 1

static const struct {
    const char *in;
    size_t len;
    const char *want;
} escapes[] = {
    {BYTES(""), ""},
    {BYTES("amorgan"), "amorgan"},
    {BYTES("*"), "\\2a"},
    {BYTES("("), "\\28"},
    {BYTES(")"), "\\29"},
    {BYTES("\\"), "\\5c"},
    {BYTES("\0"), "\\00"},
    {BYTES("a\0b"), "a\\00b"},
    {BYTES("star*(paren)"), "star\\2a\\28paren\\29"},
    {BYTES("x)(objectClass=*"), "x\\29\\28objectClass=\\2a"},
    {BYTES("\x01\x1f\x20\x7e\x7f"), "\\01\\1f ~\\7f"},
    {BYTES("\x80\xff"), "\\80\\ff"},
    {BYTES("zo\xc3\xab"), "zo\\c3\\ab"},
    {BYTES("e.o'neil@corp.example.com"), "e.o'neil@corp.example.com"},
    {BYTES("jsato_partner.example#EXT#@x"), "jsato_partner.example#EXT#@x"},
    {BYTES("a=b&c|d!e<f>g~h,i;j\"k"), "a=b&c|d!e<f>g~h,i;j\"k"},
};

static void test_escape(void)
{
    char buf[256];

    for (size_t i = 0; i < sizeof(escapes) / sizeof(escapes[0]); i++) {
        int n = ldapfilter_escape(str_make(escapes[i].in, escapes[i].len), buf, sizeof(buf));

        CHECK_INT(n, strlen(escapes[i].want));
        CHECK_STR(escapes[i].want, str_make(buf, strlen(buf)), escapes[i].want);
    }
    CHECK_INT(ldapfilter_escape(STR_ABSENT, buf, sizeof(buf)), 0);
    CHECK(buf[0] == '\0');
}

static const struct {
    const char *sid;
    const char *hex; /* NULL: ERR_INVALID */
} sids[] = {
    {"S-1-5-21-1004336348-1177238915-682003330-1109",
     "010500000000000515000000dcf4dc3b833d2b46828ba62855040000"},
    {"S-1-5-18", "010100000000000512000000"},
    {"S-1-0-0", "010100000000000000000000"},
    {"S-0-0-0", "000100000000000000000000"},
    {"S-01-005-0018", "010100000000000512000000"},
    {"S-255-281474976710655-4294967295", "ff01ffffffffffffffffffff"},
    {"S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15",
     "010f000000000005010000000200000003000000040000000500000006000000070000000800000009"
     "0000000a0000000b0000000c0000000d0000000e0000000f000000"},
    {"S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16", NULL}, /* 16 sub-authorities */
    {"S-1-5", NULL},                                        /* none */
    {"S-256-5-18", NULL},                                   /* revision past a byte */
    {"S-1-281474976710656-18", NULL},                       /* authority 2^48 */
    {"S-1-5-4294967296", NULL},                             /* sub-authority 2^32 */
    {"S-1-5-18446744073709551616", NULL},                   /* 2^64 */
    {"S-1-5-99999999999999999999999", NULL},
    {"S-1-99999999999999999999999-1", NULL},
    {"", NULL},
    {"S", NULL},
    {"S-", NULL},
    {"S-1", NULL},
    {"S-1-", NULL},
    {"S-1-5-", NULL},
    {"S-1-5-18-", NULL},
    {"S--5-18", NULL},
    {"S-1--18", NULL},
    {"S-1-5--18", NULL},
    {"S-1-5-+18", NULL},
    {"S-+1-5-18", NULL},
    {"S-1-+5-18", NULL},
    {"S-1-5-1x", NULL},
    {"S-1-0x5-18", NULL},
    {"S-1-5-18 ", NULL},
    {" S-1-5-18", NULL},
    {"s-1-5-18", NULL},
    {"X-1-5-18", NULL},
    {"S_1-5-18", NULL},
};

static void hex_of(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * n] = '\0';
}

static void test_sid(void)
{
    uint8_t bin[LDAPFILTER_SID_MAX];
    char hex[2 * LDAPFILTER_SID_MAX + 1];

    for (size_t i = 0; i < sizeof(sids) / sizeof(sids[0]); i++) {
        int n = ldapfilter_sid_binary(str_make(sids[i].sid, strlen(sids[i].sid)), bin);

        if (sids[i].hex == NULL) {
            if (n != ERR_INVALID)
                UNIT_FAIL("%s: got %d, want ERR_INVALID", sids[i].sid, n);
            else
                unit_passed++;
            continue;
        }
        CHECK_INT(n, strlen(sids[i].hex) / 2);
        if (n > 0) {
            hex_of(bin, (size_t)n, hex);
            CHECK_STR(sids[i].sid, str_make(hex, strlen(hex)), sids[i].hex);
        }
    }
    /* The length is the str's, not up to a NUL. */
    CHECK_INT(ldapfilter_sid_binary(str_make("S-1-5-18\0", 9), bin), ERR_INVALID);
    CHECK_INT(ldapfilter_sid_binary(str_make("S-1-5-18-7", 8), bin), 12);
}

static const struct {
    const char *guid;
    const char *hex; /* NULL: ERR_INVALID */
} guids[] = {
    {"7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f70", "2b3f1a7d1e9c554e9a0a2b1c0d9e8f70"},
    {"{7D1A3F2B-9C1E-4E55-9A0A-2B1C0D9E8F70}", "2b3f1a7d1e9c554e9a0a2b1c0d9e8f70"},
    {"7D1a3f2B-9c1E-4e55-9A0a-2b1C0d9E8f70", "2b3f1a7d1e9c554e9a0a2b1c0d9e8f70"},
    {"00112233-4455-6677-8899-aabbccddeeff", "33221100554477668899aabbccddeeff"},
    {"7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f7", NULL},
    {"7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f700", NULL},
    {"7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f7g", NULL},
    {"7d1a3f2b9c1e-4e55-9a0a-2b1c0d9e8f70-", NULL},
    {"7d1a3f2b-9c1e-4e55-9a0a+2b1c0d9e8f70", NULL},
    {"{7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f70", NULL},
    {"7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f70}", NULL},
    {"(7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f70)", NULL},
    {"{{7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f}}", NULL},
    {"7d1a3f2b9c1e4e559a0a2b1c0d9e8f70", NULL},
    {" 7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f70", NULL},
    {"", NULL},
};

static void test_guid(void)
{
    uint8_t bin[16];
    char hex[33];

    for (size_t i = 0; i < sizeof(guids) / sizeof(guids[0]); i++) {
        int rc = ldapfilter_guid_binary(str_make(guids[i].guid, strlen(guids[i].guid)), bin);

        CHECK_INT(rc, guids[i].hex != NULL ? 0 : ERR_INVALID);
        if (rc == 0 && guids[i].hex != NULL) {
            hex_of(bin, sizeof(bin), hex);
            CHECK_STR(guids[i].guid, str_make(hex, strlen(hex)), guids[i].hex);
        }
    }
}

static void test_sam_domain(void)
{
    CHECK_STR("CORP\\amorgan", ldapfilter_sam_domain(STR_LIT("CORP\\amorgan")), "CORP");
    CHECK_STR("corp\\\\jdoe", ldapfilter_sam_domain(STR_LIT("corp\\\\jdoe")), "corp");
    CHECK_STR("A\\B\\c", ldapfilter_sam_domain(STR_LIT("A\\B\\c")), "A");
    CHECK_STR("CORP\\", ldapfilter_sam_domain(STR_LIT("CORP\\")), "CORP");
    CHECK_INT(ldapfilter_sam_domain(STR_LIT("amorgan")).len, 0);
    CHECK_INT(ldapfilter_sam_domain(STR_LIT("\\amorgan")).len, 0);
    CHECK_INT(ldapfilter_sam_domain(STR_LIT("")).len, 0);
    CHECK_INT(ldapfilter_sam_domain(STR_ABSENT).len, 0);
}

#define PERSON  "(&(objectCategory=person)(objectClass=user)"
#define ENABLED "(!(userAccountControl:1.2.840.113556.1.4.803:=2))"

static const struct {
    enum user_kind kind;
    const char *user;
    int exclude_disabled;
    const char *want; /* NULL: ERR_INVALID */
} filters[] = {
    {USER_KIND_UPN, "e.o'neil@corp.example.com", 0,
     "(&(objectCategory=person)(objectClass=user)(|(userPrincipalName=e.o'neil@corp.example.com)"
     "(mail=e.o'neil@corp.example.com)(proxyAddresses=smtp:e.o'neil@corp.example.com)))"},
    {USER_KIND_UPN, "e.o'neil@corp.example.com", 1,
     "(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2))"
     "(|(userPrincipalName=e.o'neil@corp.example.com)(mail=e.o'neil@corp.example.com)"
     "(proxyAddresses=smtp:e.o'neil@corp.example.com)))"},
    {USER_KIND_EMAIL, "alex.morgan@example.com", 0,
     PERSON "(|(userPrincipalName=alex.morgan@example.com)(mail=alex.morgan@example.com)"
            "(proxyAddresses=smtp:alex.morgan@example.com)))"},
    {USER_KIND_EMAIL, "alex.morgan@example.com", 1,
     PERSON ENABLED "(|(userPrincipalName=alex.morgan@example.com)(mail=alex.morgan@example.com)"
                    "(proxyAddresses=smtp:alex.morgan@example.com)))"},
    {USER_KIND_UPN, "jsato_partner.example#EXT#@example.onmicrosoft.com", 1,
     PERSON ENABLED "(|(userPrincipalName=jsato_partner.example#EXT#@example.onmicrosoft.com)"
                    "(mail=jsato_partner.example#EXT#@example.onmicrosoft.com)"
                    "(proxyAddresses=smtp:jsato_partner.example#EXT#@example.onmicrosoft.com)))"},
    {USER_KIND_UPN, "zo\xc3\xab.m\xc3\xbcller@corp.example.com", 0,
     PERSON "(|(userPrincipalName=zo\\c3\\ab.m\\c3\\bcller@corp.example.com)"
            "(mail=zo\\c3\\ab.m\\c3\\bcller@corp.example.com)"
            "(proxyAddresses=smtp:zo\\c3\\ab.m\\c3\\bcller@corp.example.com)))"},
    {USER_KIND_UPN, "*@x)", 0,
     PERSON "(|(userPrincipalName=\\2a@x\\29)(mail=\\2a@x\\29)(proxyAddresses=smtp:\\2a@x\\29)))"},
    {USER_KIND_SAM, "CORP\\amorgan", 0,
     "(&(objectCategory=person)(objectClass=user)(sAMAccountName=amorgan))"},
    {USER_KIND_SAM, "CORP\\amorgan", 1,
     "(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2))"
     "(sAMAccountName=amorgan))"},
    {USER_KIND_SAM, "amorgan", 0, PERSON "(sAMAccountName=amorgan))"},
    {USER_KIND_SAM, "EMEA\\\\jdoe", 0, PERSON "(sAMAccountName=jdoe))"},
    {USER_KIND_SAM, "star*(paren)", 1, PERSON ENABLED "(sAMAccountName=star\\2a\\28paren\\29))"},
    {USER_KIND_SAM, "CORP\\zo\xc3\xab", 0, PERSON "(sAMAccountName=zo\\c3\\ab))"},
    {USER_KIND_SAM, "*", 0, PERSON "(sAMAccountName=\\2a))"},
    {USER_KIND_SAM, "CORP\\", 0, NULL},
    {USER_KIND_SAM, "\\", 0, NULL},
    {USER_KIND_SAM, "", 0, NULL},
    {USER_KIND_SID, "S-1-5-21-1004336348-1177238915-682003330-1109", 0,
     "(&(objectCategory=person)(objectClass=user)(objectSid=\\01\\05\\00\\00\\00\\00\\00\\05"
     "\\15\\00\\00\\00\\dc\\f4\\dc\\3b\\83\\3d\\2b\\46\\82\\8b\\a6\\28\\55\\04\\00\\00))"},
    {USER_KIND_SID, "S-1-5-21-1004336348-1177238915-682003330-1109", 1,
     PERSON ENABLED "(objectSid=\\01\\05\\00\\00\\00\\00\\00\\05\\15\\00\\00\\00\\dc\\f4\\dc\\3b"
                    "\\83\\3d\\2b\\46\\82\\8b\\a6\\28\\55\\04\\00\\00))"},
    {USER_KIND_SID, "S-1-5-18", 0,
     PERSON "(objectSid=\\01\\01\\00\\00\\00\\00\\00\\05\\12\\00\\00\\00))"},
    {USER_KIND_SID, "S-1-5", 0, NULL},
    {USER_KIND_SID, "amorgan", 1, NULL},
    {USER_KIND_SID, "", 0, NULL},
    {USER_KIND_GUID, "7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f70", 0,
     "(&(objectCategory=person)(objectClass=user)(objectGUID=\\2b\\3f\\1a\\7d\\1e\\9c\\55\\4e"
     "\\9a\\0a\\2b\\1c\\0d\\9e\\8f\\70))"},
    {USER_KIND_GUID, "{7D1A3F2B-9C1E-4E55-9A0A-2B1C0D9E8F70}", 1,
     PERSON ENABLED "(objectGUID=\\2b\\3f\\1a\\7d\\1e\\9c\\55\\4e\\9a\\0a\\2b\\1c\\0d\\9e\\8f"
                    "\\70))"},
    {USER_KIND_GUID, "7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f7", 0, NULL},
    {USER_KIND_EMPLOYEE_ID, "2044", 0,
     "(&(objectCategory=person)(objectClass=user)(employeeID=2044))"},
    {USER_KIND_EMPLOYEE_ID, "2044", 1, PERSON ENABLED "(employeeID=2044))"},
    {USER_KIND_EMPLOYEE_ID, "20*", 0, PERSON "(employeeID=20\\2a))"},
    {USER_KIND_EMPLOYEE_ID, "", 0, NULL},
    {USER_KIND_UPN, "", 1, NULL},
    {USER_KIND_AUTO, "amorgan", 0, NULL},
};

static void test_build(void)
{
    char buf[LDAPFILTER_MAX];

    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
        struct str user = str_make(filters[i].user, strlen(filters[i].user));
        int n =
            ldapfilter_build(filters[i].kind, user, filters[i].exclude_disabled, buf, sizeof(buf));

        if (filters[i].want == NULL) {
            if (n != ERR_INVALID)
                UNIT_FAIL("%s %s: got %d, want ERR_INVALID", userid_kind_name(filters[i].kind),
                          filters[i].user, n);
            else
                unit_passed++;
            CHECK(buf[0] == '\0');
            continue;
        }
        CHECK_INT(n, strlen(filters[i].want));
        CHECK_STR(filters[i].user, str_make(buf, strlen(buf)), filters[i].want);
    }
    CHECK_INT(ldapfilter_build(USER_KIND_UPN, STR_ABSENT, 0, buf, sizeof(buf)), ERR_INVALID);
    /* An invalid identifier is ERR_INVALID whatever the room. */
    CHECK_INT(ldapfilter_build(USER_KIND_SID, STR_LIT("S-1-5"), 0, buf, 4), ERR_INVALID);
    CHECK_INT(ldapfilter_build(USER_KIND_SAM, STR_LIT(""), 0, NULL, 0), ERR_INVALID);
}

/* Every cap from 0 to the result's length + 1: below length + 1 it is
 * ERR_TOOBIG with "" in buf, and nothing is ever written at or past cap. */
static void check_caps(const char *ctx, enum user_kind kind, struct str user, int escape_only)
{
    char want[LDAPFILTER_MAX], buf[LDAPFILTER_MAX + 1];
    int len = escape_only ? ldapfilter_escape(user, want, sizeof(want))
                          : ldapfilter_build(kind, user, 1, want, sizeof(want));

    if (len <= 0) {
        UNIT_FAIL("%s: no result to cut (%d)", ctx, len);
        return;
    }
    for (size_t cap = 0; cap <= (size_t)len + 1; cap++) {
        int n;

        memset(buf, 'Z', sizeof(buf));
        n = escape_only ? ldapfilter_escape(user, buf, cap)
                        : ldapfilter_build(kind, user, 1, buf, cap);
        if (cap <= (size_t)len) {
            if (n != ERR_TOOBIG || (cap > 0 && buf[0] != '\0'))
                UNIT_FAIL("%s: cap %zu of %d: got %d, buf '%.8s'", ctx, cap, len, n, buf);
            else
                unit_passed++;
        } else {
            CHECK_INT(n, len);
            CHECK(memcmp(buf, want, (size_t)len + 1) == 0);
        }
        if (buf[cap] != 'Z')
            UNIT_FAIL("%s: cap %zu: byte %zu written", ctx, cap, cap);
    }
}

static void test_caps(void)
{
    check_caps("escape", USER_KIND_AUTO, STR_LIT("zo\xc3\xab*"), 1);
    check_caps("upn", USER_KIND_UPN, STR_LIT("zo\xc3\xab@x"), 0);
    check_caps("sam", USER_KIND_SAM, STR_LIT("CORP\\a(b)"), 0);
    check_caps("sid", USER_KIND_SID, STR_LIT("S-1-5-21-1004336348-1177238915-682003330-1109"), 0);
    check_caps("guid", USER_KIND_GUID, STR_LIT("7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f70"), 0);
    check_caps("employee_id", USER_KIND_EMPLOYEE_ID, STR_LIT("2044"), 0);
}

/* The longest identifier the identity layer passes (1024 bytes), every byte
 * escaped, fits LDAPFILTER_MAX for every kind. */
static void test_longest(void)
{
    static const enum user_kind kinds[] = {USER_KIND_EMAIL, USER_KIND_UPN, USER_KIND_SAM,
                                           USER_KIND_EMPLOYEE_ID};
    char id[1024], buf[LDAPFILTER_MAX];
    int one, n;

    memset(id, '*', sizeof(id));
    one = ldapfilter_build(USER_KIND_UPN, STR_LIT("x"), 1, buf, sizeof(buf));
    n = ldapfilter_build(USER_KIND_UPN, str_make(id, sizeof(id)), 1, buf, sizeof(buf));
    CHECK_INT(n, one - 3 + 3 * 3 * 1024);
    CHECK_INT(strlen(buf), n);
    CHECK(n < LDAPFILTER_MAX);
    memset(id, 0xff, sizeof(id));
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        CHECK(ldapfilter_build(kinds[i], str_make(id, sizeof(id)), 1, buf, sizeof(buf)) > 0);
}

int main(void)
{
    test_escape();
    test_sid();
    test_guid();
    test_sam_domain();
    test_build();
    test_caps();
    test_longest();
    return unit_report("test_ldapfilter");
}
