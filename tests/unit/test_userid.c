/* userid: a table of identifiers as the shipped sources send them -> the
 * detected kind and the sAMAccountName part; kind names in enum order. */
#include "core/userid.h"
#include "unit.h"

static const struct {
    const char *id;
    enum user_kind kind;
    const char *sam; /* userid_sam_account */
} cases[] = {
    {"EXAMPLE\\amorgan", USER_KIND_SAM, "amorgan"},
    {"amorgan", USER_KIND_SAM, "amorgan"},
    {"EXAMPLE\\\\amorgan", USER_KIND_SAM, "amorgan"},
    {"e.o'neil@example.com", USER_KIND_UPN, "e.o'neil@example.com"},
    {"jsato_partner.example#EXT#@example.onmicrosoft.com", USER_KIND_UPN,
     "jsato_partner.example#EXT#@example.onmicrosoft.com"},
    {"S-1-5-21-1004336348-1177238915-682003330-1109", USER_KIND_SID,
     "S-1-5-21-1004336348-1177238915-682003330-1109"},
    {"S-1-5-18", USER_KIND_SID, "S-1-5-18"},
    {"7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f70", USER_KIND_GUID,
     "7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f70"},
    {"{7D1A3F2B-9C1E-4E55-9A0A-2B1C0D9E8F70}", USER_KIND_GUID,
     "{7D1A3F2B-9C1E-4E55-9A0A-2B1C0D9E8F70}"},
    {"2044", USER_KIND_EMPLOYEE_ID, "2044"},
    {"0", USER_KIND_EMPLOYEE_ID, "0"},
    /* near misses fall through to the next rule */
    {"S-1-", USER_KIND_SAM, "S-1-"},
    {"S-1-5-", USER_KIND_SAM, "S-1-5-"},
    {"S-1-5", USER_KIND_SAM, "S-1-5"},
    {"S-1-5-x", USER_KIND_SAM, "S-1-5-x"},
    {"S-1-5--18", USER_KIND_SAM, "S-1-5--18"},
    {"S-1-5-18@example.com", USER_KIND_UPN, "S-1-5-18@example.com"},
    {"7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f7", USER_KIND_SAM, "7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f7"},
    {"7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f7g", USER_KIND_SAM, "7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f7g"},
    {"7d1a3f2b9c1e-4e55-9a0a-2b1c0d9e8f70-", USER_KIND_SAM, "7d1a3f2b9c1e-4e55-9a0a-2b1c0d9e8f70-"},
    {"{7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f70", USER_KIND_SAM,
     "{7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f70"},
    {"2044a", USER_KIND_SAM, "2044a"},
    {"EXAMPLE\\", USER_KIND_SAM, ""},
    {"", USER_KIND_SAM, ""},
};

static void test_detect(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct str id = str_make(cases[i].id, strlen(cases[i].id));
        if (userid_detect(id) != cases[i].kind)
            UNIT_FAIL("%s: detected %s, want %s", cases[i].id, userid_kind_name(userid_detect(id)),
                      userid_kind_name(cases[i].kind));
        else
            unit_passed++;
        CHECK_INT(userid_resolve_kind(USER_KIND_AUTO, id), cases[i].kind);
        CHECK_INT(userid_resolve_kind(USER_KIND_EMAIL, id), USER_KIND_EMAIL);
        CHECK_STR(cases[i].id, userid_sam_account(id), cases[i].sam);
    }
    CHECK_INT(userid_detect(STR_ABSENT), USER_KIND_SAM);
}

static void test_names(void)
{
    static const char *const want[] = {"auto", "email", "upn", "sam", "sid", "guid", "employee_id"};
    size_t n = sizeof(want) / sizeof(want[0]);

    for (size_t k = 0; k < n; k++) {
        CHECK(strcmp(userid_kind_names[k], want[k]) == 0);
        CHECK(strcmp(userid_kind_name((enum user_kind)k), want[k]) == 0);
    }
    CHECK(userid_kind_names[n] == NULL);
    CHECK(strcmp(userid_kind_name((enum user_kind)99), "unknown") == 0);
}

int main(void)
{
    test_detect();
    test_names();
    return unit_report("test_userid");
}
