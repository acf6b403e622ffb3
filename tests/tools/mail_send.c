/* Sends one email the way the agent does (mail_send on the HTTPS engine,
 * on a libevent loop) and prints how it ended, for
 * tests/integration/test_mail.py:
 *
 *   mail_send --url URL --from ADDR --to ADDR [--to ADDR]... --subject S
 *             [--body-file FILE] [--user NAME --password-file FILE]
 *             [--message-id KEY] [--ca-file PEM] [--timeout-ms N]
 *
 * prints "verdict=done|again|dead code=N reason=TEXT" (reason "-" when
 * none) and exits 0; a request mail_send refuses prints "refused: ERR" and
 * exits 3; a usage error exits 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "core/http.h"
#include "core/mail.h"
#include "core/secret.h"
#include "errors.h"

#define MAX_TO 16

static struct event_base *base;
static int done;

static void on_sent(void *arg, const struct mail_result *r)
{
    static const char *const names[] = {"done", "again", "dead"};

    (void)arg;
    printf("verdict=%s code=%d reason=%s\n", names[r->verdict], r->smtp_code,
           r->reason != NULL ? r->reason : "-");
    done = 1;
    event_base_loopbreak(base);
}

static int usage(void)
{
    fputs("usage: mail_send --url URL --from ADDR --to ADDR... --subject S [--body-file FILE]\n"
          "                 [--user NAME --password-file FILE] [--message-id KEY]\n"
          "                 [--ca-file PEM] [--timeout-ms N]\n",
          stderr);
    return 2;
}

/* The whole of path, NUL-terminated (*len bytes); NULL when unreadable. */
static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL) {
        *len = fread(buf, 1, (size_t)n, f);
        buf[*len] = '\0';
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    struct mail_request req = {.connect_timeout_ms = 5000, .timeout_ms = 10000};
    const char *to[MAX_TO + 1] = {0}, *body_file = NULL, *password_file = NULL;
    char *body = NULL, *password = NULL, why[128];
    size_t n_to = 0, password_len = 0;
    struct http *h = NULL;
    int rc, ret = 1;

    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (val == NULL)
            return usage();
        i++;
        if (strcmp(opt, "--url") == 0)
            req.url = val;
        else if (strcmp(opt, "--from") == 0)
            req.from = val;
        else if (strcmp(opt, "--to") == 0 && n_to < MAX_TO)
            to[n_to++] = val;
        else if (strcmp(opt, "--subject") == 0)
            req.subject = val;
        else if (strcmp(opt, "--body-file") == 0)
            body_file = val;
        else if (strcmp(opt, "--user") == 0)
            req.username = val;
        else if (strcmp(opt, "--password-file") == 0)
            password_file = val;
        else if (strcmp(opt, "--message-id") == 0)
            req.message_id = val;
        else if (strcmp(opt, "--ca-file") == 0)
            req.ca_file = val;
        else if (strcmp(opt, "--timeout-ms") == 0)
            req.timeout_ms = req.connect_timeout_ms = atol(val);
        else
            return usage();
    }
    if (req.url == NULL || req.from == NULL || n_to == 0 || req.subject == NULL)
        return usage();
    req.to = to;
    if (body_file != NULL && (body = read_all(body_file, &req.body_len)) == NULL) {
        fprintf(stderr, "mail_send: cannot read %s\n", body_file);
        return 1;
    }
    req.body = body;
    if (password_file != NULL && secret_read(password_file, 1, SECRET_MAX, 1, &password,
                                             &password_len, why, sizeof(why)) != 0) {
        fprintf(stderr, "mail_send: %s: %s\n", password_file, why);
        goto out;
    }
    req.password = password;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    base = event_base_new();
    if (base == NULL || http_new(base, &h) != 0)
        goto out;
    rc = mail_send(h, &req, on_sent, NULL);
    if (rc != 0) {
        printf("refused: %s\n", err_name(rc));
        ret = 3;
        goto out;
    }
    event_base_dispatch(base);
    ret = done ? 0 : 1;
out:
    http_free(h);
    if (base != NULL)
        event_base_free(base);
    curl_global_cleanup();
    secret_free(password, password_len);
    free(body);
    fflush(stdout);
    return ret;
}
