/* Secret files: what run and check both accept and refuse, table-driven,
 * and the warning for a file others may read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* Writes a secret file the way an admin should (only its owner reads it),
 * whatever the umask. */
static void write_secret(const char *path, const char *content, size_t len)
{
    unit_write_bytes(path, content, len);
    CHECK_INT(chmod(path, 0600), 0);
}

/* A file its group or other users may read is read, with one warning
 * naming the file and its mode; one only its owner reads, silently. */
static const struct {
    mode_t mode;
    const char *warning; /* after "<time> warning: FILE: "; NULL: none */
} modes[] = {
    {0644, "secret file readable by its group and every user (mode 0644): chmod go-r it, or "
           "pass it as a systemd credential"},
    {0640, "secret file readable by its group (mode 0640): chmod go-r it, or pass it as a "
           "systemd credential"},
    {0604, "secret file readable by every user (mode 0604): chmod go-r it, or pass it as a "
           "systemd credential"},
    {0600, NULL},
    {0400, NULL},
    {0660, "secret file readable by its group (mode 0660): chmod go-r it, or pass it as a "
           "systemd credential"},
};

static void test_modes(const char *path)
{
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        char err[1024], want[512], why[256], *out = NULL;
        const char *line;
        size_t len = 0;

        unlink(path);
        unit_write_file(path, "k3y\n");
        CHECK_INT(chmod(path, modes[i].mode), 0);
        unit_capture_begin();
        CHECK_INT(secret_read(path, 1, SECRET_MAX, 1, &out, &len, why, sizeof(why)), 0);
        unit_capture_end(err, sizeof(err));
        CHECK_STR("mode: the secret is read all the same", str_make(out, len), "k3y");
        secret_free(out, len);
        if (modes[i].warning == NULL) {
            CHECK_STR("mode: owner-only is silent", str_make(err, strlen(err)), "");
            continue;
        }
        snprintf(want, sizeof(want), " warning: %s: %s\n", path, modes[i].warning);
        line = strstr(err, want);
        if (line == NULL || strchr(err, '\n') != line + strlen(want) - 1)
            UNIT_FAIL("mode %04o: want one line ending '%s', got '%s'", (unsigned)modes[i].mode,
                      want, err);
        else
            unit_passed++;
    }
}

int main(void)
{
    char path[64], why[256];
    static char big[SECRET_MAX + 2];

    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    unsetenv("JOURNAL_STREAM");
    snprintf(path, sizeof(path), "%s/secret", tmpdir);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        size_t len = 0;
        int rc;

        unlink(path);
        if (cases[i].content != NULL)
            write_secret(path, cases[i].content, cases[i].content_len);
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
    write_secret(path, big, SECRET_MAX + 1);
    {
        char *out = NULL;
        size_t len = 0;

        CHECK_INT(secret_read(path, 1, SECRET_MAX, 1, &out, &len, why, sizeof(why)), ERR_CONFIG);
        CHECK(strstr(why, "longer than 4096 bytes") != NULL);
        CHECK(out == NULL);
    }
    test_modes(path);
    unlink(path);
    CHECK_INT(rmdir(tmpdir), 0);
    return unit_report("test_secret");
}
