/* Approval tokens (approval.h): made and read back, refused when forged,
 * altered or malformed; the secret file made once and read again. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "deliver/approval.h"
#include "errors.h"
#include "unit.h"

#define KEY "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_round_trip(void)
{
    struct approval_secret s = {{1, 2, 3}}, other = {{9}};
    struct approval_ref ref;
    char token[APPROVAL_TOKEN_MAX];

    approval_token(&s, KEY, 1791018764123, 2, token);
    CHECK(strlen(token) < 64); /* fits the route's {source} segment */
    CHECK(strncmp(token, "0123456789abcdef0123-2-", 23) == 0);
    CHECK_INT(approval_token_read(&s, str_make(token, strlen(token)), &ref), 0);
    CHECK(strcmp(ref.id, "0123456789abcdef0123") == 0);
    CHECK_INT(ref.approver, 2);
    CHECK(ref.stamp_ms == 1791018764123);
    /* another secret: forged */
    CHECK_INT(approval_token_read(&other, str_make(token, strlen(token)), &ref), ERR_INVALID);
}

static void test_altered(void)
{
    struct approval_secret s = {{7}};
    struct approval_ref ref;
    char token[APPROVAL_TOKEN_MAX], bad[APPROVAL_TOKEN_MAX + 8];
    size_t len;

    approval_token(&s, KEY, 1000, 0, token);
    len = strlen(token);
    /* every single character changed is refused */
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, token, len + 1);
        bad[i] = bad[i] == '1' ? '2' : '1';
        if (approval_token_read(&s, str_make(bad, len), &ref) == 0)
            UNIT_FAIL("token altered at %zu still reads: %s", i, bad);
    }
    /* another approver, another stamp, with the mac of the first */
    snprintf(bad, sizeof(bad), "%.20s-1-3e8-%s", token, token + len - 24);
    CHECK_INT(approval_token_read(&s, str_make(bad, strlen(bad)), &ref), ERR_INVALID);
    snprintf(bad, sizeof(bad), "%.20s-0-3e9-%s", token, token + len - 24);
    CHECK_INT(approval_token_read(&s, str_make(bad, strlen(bad)), &ref), ERR_INVALID);
    /* malformed */
    static const char *const malformed[] = {
        "",
        "0123456789abcdef0123",
        "0123456789abcdef0123-0-3e8-",
        "0123456789ABCDEF0123-0-3e8-000000000000000000000000",
        "0123456789abcdef0123-00-3e8-000000000000000000000000",
        "0123456789abcdef0123-0-03e8-000000000000000000000000",
        "0123456789abcdef0123-1000-3e8-000000000000000000000000",
        "0123456789abcdef0123-0-3e8-0000000000000000000000000",
        "0123456789abcdef0123-0-3e8-00000000000000000000000",
        "0123456789abcdef0123-0-1234567890abc-000000000000000000000000",
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        if (approval_token_read(&s, str_make(malformed[i], strlen(malformed[i])), &ref) !=
            ERR_INVALID)
            UNIT_FAIL("malformed token reads: %s", malformed[i]);
    }
}

static void test_secret_file(void)
{
    char dir[] = "/tmp/rtr-test-approval.XXXXXX", path[64];
    struct approval_secret a, b;
    struct stat st;
    FILE *f;

    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    unit_capture_begin();
    CHECK_INT(approval_secret_load(dir, &a), 0);
    {
        char err[512];

        unit_capture_end(err, sizeof(err));
        CHECK(strstr(err, "made the secret of approval links") != NULL);
    }
    snprintf(path, sizeof(path), "%s/approvals.key", dir);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 32);
    CHECK_INT(approval_secret_load(dir, &b), 0);
    CHECK(memcmp(a.key, b.key, sizeof(a.key)) == 0);
    f = fopen(path, "a");
    if (f != NULL) {
        fputc('x', f);
        fclose(f);
    }
    unit_capture_begin();
    CHECK_INT(approval_secret_load(dir, &b), ERR_CONFIG);
    {
        char err[512];

        unit_capture_end(err, sizeof(err));
        CHECK(strstr(err, "not an approvals secret") != NULL);
    }
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    test_round_trip();
    test_altered();
    test_secret_file();
    return unit_report("test_approval");
}
