/* Secret files: what run and check both accept and refuse, table-driven. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "core/secret.h"
#include "unit.h"

static char tmpdir[] = "/tmp/rtr-test-secret.XXXXXX";

static const struct {
    const char *name;
    const char *content; /* NULL: no file */
    size_t content_len;
    size_t min;
    int text;
    int rc;
    const char *value; /* what is read, or the start of why */
} cases[] = {
    {"a key and a line end", "k3y\n", 4, 1, 1, 0, "k3y"},
    {"CRLF", "k3y\r\n", 5, 1, 1, 0, "k3y"},
    {"text: trailing blanks cut", "k3y \t\n", 6, 1, 1, 0, "k3y"},
    {"binary: trailing blanks kept", "k3y \t\n", 6, 1, 0, 0, "k3y \t"},
    {"empty", "", 0, 1, 1, ERR_CONFIG, "empty"},
    {"text: only blanks", " \n\t\n", 4, 1, 1, ERR_CONFIG, "empty"},
    {"text: a CR inside would split a header", "a\rb\n", 4, 1, 1, ERR_CONFIG,
     "holds a control character"},
    {"text: a NUL inside", "a\0b", 3, 1, 1, ERR_CONFIG, "holds a control character"},
    {"binary: a NUL inside is key material", "a\0b", 3, 1, 0, 0, NULL},
    {"shorter than min", "0123456789abcde\n", 16, 16, 0, ERR_CONFIG, "shorter than 16 bytes"},
    {"missing", NULL, 0, 1, 1, ERR_IO, "cannot open: No such file or directory"},
};

int main(void)
{
    char path[64], why[256];
    static char big[SECRET_MAX + 2];

    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(path, sizeof(path), "%s/secret", tmpdir);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        size_t len = 0;
        int rc;

        unlink(path);
        if (cases[i].content != NULL)
            unit_write_bytes(path, cases[i].content, cases[i].content_len);
        why[0] = '\0';
        rc = secret_read(path, cases[i].min, SECRET_MAX, cases[i].text, &out, &len, why,
                         sizeof(why));
        if (rc != cases[i].rc)
            UNIT_FAIL("%s: rc %d, want %d (%s)", cases[i].name, rc, cases[i].rc, why);
        else if (rc == 0 && cases[i].value != NULL)
            CHECK_STR(cases[i].name, str_make(out, len), cases[i].value);
        else if (rc == 0)
            CHECK_INT(len, cases[i].content_len);
        else
            CHECK(strncmp(why, cases[i].value, strlen(cases[i].value)) == 0);
        secret_free(out, len);
    }
    /* One byte over SECRET_MAX is the wrong file. */
    memset(big, 'k', SECRET_MAX + 1);
    unit_write_bytes(path, big, SECRET_MAX + 1);
    {
        char *out = NULL;
        size_t len = 0;

        CHECK_INT(secret_read(path, 1, SECRET_MAX, 1, &out, &len, why, sizeof(why)), ERR_CONFIG);
        CHECK(strstr(why, "longer than 4096 bytes") != NULL);
        CHECK(out == NULL);
    }
    unlink(path);
    CHECK_INT(rmdir(tmpdir), 0);
    return unit_report("test_secret");
}
