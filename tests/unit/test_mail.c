/* The email message and its checks (core/mail.h): mail_format's whole
 * message for a fixed time (Date in English, every header, CRLF line
 * ends, LF and bare CR bodies, a final CRLF added, dots left to curl), the
 * Subject as RFC 2047 encoded words when it is not short printable ASCII
 * (cut between UTF-8 characters, each word at most 75 characters), header
 * injection refused (CR, LF, TAB or another control character in from, a
 * recipient or the subject; NUL in the body), addresses and Message-ID
 * keys, URLs (smtp/smtps only, no login; which hosts are loopback), and
 * mail_send refusing up front (its callback never runs) as
 * http_start_easy does a transfer naming HTTP. The sending itself is
 * tests/integration/test_mail.py's. */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "core/http.h"
#include "core/mail.h"
#include "errors.h"
#include "unit.h"

/* Sun, 06 Dec 2026 21:27:27 +0000 */
#define NOW ((time_t)1796592447)

static const char *const one_to[] = {"analyst@example.com", NULL};

static struct mail_request base_request(void)
{
    struct mail_request r = {
        .url = "smtp://mail.example.com:587",
        .from = "rtr@example.com",
        .to = one_to,
        .subject = "Alert: jsmith",
        .body = "line one\nline two\n",
        .body_len = 18,
        .message_id = "k-1",
        .connect_timeout_ms = 1000,
        .timeout_ms = 1000,
    };
    return r;
}

static void check_format(const char *ctx, const struct mail_request *r, const char *want)
{
    char *out = NULL;
    size_t len = 0;
    int rc = mail_format(r, NOW, &out, &len);

    if (rc != 0) {
        UNIT_FAIL("%s: mail_format returned %s", ctx, err_name(rc));
        return;
    }
    if (len != strlen(want) || memcmp(out, want, len) != 0)
        UNIT_FAIL("%s:\ngot:  %s\nwant: %s", ctx, out, want);
    else
        unit_passed++;
    CHECK(out[len] == '\0');
    free(out);
}

#define HEAD_COMMON                                                                                \
    "Date: Sun, 06 Dec 2026 21:27:27 +0000\r\n"                                                    \
    "From: rtr@example.com\r\n"
#define MIME                                                                                       \
    "MIME-Version: 1.0\r\n"                                                                        \
    "Content-Type: text/plain; charset=utf-8\r\n"                                                  \
    "Content-Transfer-Encoding: 8bit\r\n"                                                          \
    "\r\n"

static void test_format_whole(void)
{
    static const char *const two[] = {"a@example.com", "b@example.org", NULL};
    struct mail_request r = base_request();

    check_format("plain", &r,
                 HEAD_COMMON "To: analyst@example.com\r\n"
                             "Subject: Alert: jsmith\r\n"
                             "Message-ID: <k-1@rtr-agent>\r\n" MIME "line one\r\nline two\r\n");

    /* Two recipients on folded lines, no Message-ID, CRLF kept, a bare CR
     * becomes CRLF, a missing final line end added, dots as they are
     * (libcurl stuffs them on the wire), an empty line kept. */
    r.to = two;
    r.message_id = NULL;
    r.body = ".start\r\n..two\rcr\n\nlast";
    r.body_len = strlen(r.body);
    check_format("crlf body", &r,
                 HEAD_COMMON "To: a@example.com,\r\n b@example.org\r\n"
                             "Subject: Alert: jsmith\r\n" MIME
                             ".start\r\n..two\r\ncr\r\n\r\nlast\r\n");

    /* No body at all: the headers and the blank line. */
    r.to = one_to;
    r.body = NULL;
    r.body_len = 0;
    check_format("no body", &r,
                 HEAD_COMMON "To: analyst@example.com\r\nSubject: Alert: jsmith\r\n" MIME);

    /* UTF-8 in the body is sent as it is (8bit). */
    r.body = "caf\xc3\xa9\n";
    r.body_len = strlen(r.body);
    check_format("utf-8 body", &r,
                 HEAD_COMMON "To: analyst@example.com\r\nSubject: Alert: jsmith\r\n" MIME
                             "caf\xc3\xa9\r\n");
}

/* The Subject line(s) of r's message, from "Subject:" to the next header. */
static char *subject_of(const struct mail_request *r)
{
    char *out = NULL, *s, *end;
    size_t len;

    if (mail_format(r, NOW, &out, &len) != 0)
        return NULL;
    s = strstr(out, "\r\nSubject:");
    end = s != NULL ? strstr(s, "\r\nMessage-ID:") : NULL;
    if (s == NULL || end == NULL) {
        free(out);
        return NULL;
    }
    memmove(out, s + 2, (size_t)(end - s - 2));
    out[end - s - 2] = '\0';
    return out;
}

static void test_subject_encoding(void)
{
    static const struct {
        const char *subject, *want;
    } rows[] = {
        {"Alert", "Subject: Alert"},
        {"", "Subject: "},
        {"caf\xc3\xa9", "Subject: =?UTF-8?B?Y2Fmw6k=?="},
        /* "=?" would read as an encoded word: encoded itself. */
        {"a =?x?= b", "Subject: =?UTF-8?B?YSA9P3g/PSBi?="},
        /* 46 bytes whose 45th starts a 2-byte character: the first word
         * stops before it (44 bytes), the second holds the rest. */
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9",
         "Subject: =?UTF-8?B?YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=?=\r\n"
         " =?UTF-8?B?w6k=?="},
    };
    struct mail_request r = base_request();

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char *got;

        r.subject = rows[i].subject;
        got = subject_of(&r);
        if (got == NULL || strcmp(got, rows[i].want) != 0)
            UNIT_FAIL("subject %zu: got %s, want %s", i, got != NULL ? got : "(none)",
                      rows[i].want);
        else
            unit_passed++;
        free(got);
    }
}

/* A long subject of 3-byte characters: every encoded word at most 75
 * characters, whole characters in each, and all of it there. */
static void test_subject_long(void)
{
    char subject[3 * 100 + 1], *got, *line, *save = NULL;
    struct mail_request r = base_request();
    size_t words = 0;

    for (size_t i = 0; i < 100; i++)
        memcpy(subject + 3 * i, "\xe2\x82\xac", 3); /* the euro sign */
    subject[300] = '\0';
    r.subject = subject;
    got = subject_of(&r);
    CHECK(got != NULL);
    if (got == NULL)
        return;
    CHECK(strncmp(got, "Subject: =?UTF-8?B?", 19) == 0);
    for (line = strtok_r(got + 9, "\r\n", &save); line != NULL;
         line = strtok_r(NULL, "\r\n", &save)) {
        const char *w = line[0] == ' ' ? line + 1 : line;
        size_t wl = strlen(w);

        words++;
        CHECK(wl <= 75);
        CHECK(strncmp(w, "=?UTF-8?B?", 10) == 0 && strcmp(w + wl - 2, "?=") == 0);
        /* 15 euro signs are 45 bytes: 60 base64 characters, no padding. */
        if (words < 7)
            CHECK_INT(wl, 72);
    }
    CHECK_INT(words, 7); /* 100 characters, 15 a word */
    free(got);
}

/* Each request is refused whole: nothing comes out. */
static void test_refused(void)
{
    static const char *const crlf_to[] = {"a@example.com\r\nBcc: x@evil.example", NULL};
    static const char *const lf_to[] = {"a@example.com", "b@example.com\n", NULL};
    static const char *const bracket_to[] = {"<a@example.com>", NULL};
    static const char *const none[] = {NULL};
    struct mail_request r;
    char *out;
    size_t len;
    int i = 0;

    for (;; i++) {
        r = base_request();
        switch (i) {
        case 0:
            r.subject = "Alert\r\nBcc: x@evil.example";
            break;
        case 1:
            r.subject = "Alert\nX: y";
            break;
        case 2:
            r.subject = "Alert\rX: y";
            break;
        case 3:
            r.subject = "tab\there";
            break;
        case 4:
            r.from = "rtr@example.com\r\nBcc: x@evil.example";
            break;
        case 5:
            r.from = "Agent <rtr@example.com>";
            break;
        case 6:
            r.to = crlf_to;
            break;
        case 7:
            r.to = lf_to;
            break;
        case 8:
            r.to = bracket_to;
            break;
        case 9:
            r.to = none;
            break;
        case 10:
            r.body = "a\0b";
            r.body_len = 3;
            break;
        case 11:
            r.message_id = "a b";
            break;
        case 12:
            r.message_id = "a>\r\nBcc: x";
            break;
        case 13:
            r.message_id = "k@host";
            break;
        case 14:
            r.username = "u";
            r.password = NULL;
            break;
        case 15:
            r.subject = NULL;
            break;
        case 16:
            r.body_len = MAIL_BODY_MAX + 1;
            r.body = calloc(1, r.body_len);
            break;
        default:
            return;
        }
        out = (char *)1;
        len = 1;
        if (mail_format(&r, NOW, &out, &len) != ERR_INVALID || out != NULL || len != 0)
            UNIT_FAIL("refused case %d was not refused", i);
        else
            unit_passed++;
        if (i == 16)
            free((char *)r.body);
    }
}

static void test_addresses(void)
{
    static const struct {
        const char *addr;
        int ok;
    } rows[] = {
        {"a@example.com", 1},
        {"first.last+tag@sub.example.co.uk", 1},
        {"j\xc3\xb6rg@example.de", 1},
        {"", 0},
        {"example.com", 0},
        {"@example.com", 0},
        {"a@", 0},
        {"a@b@c", 0},
        {"a b@example.com", 0},
        {"<a@example.com>", 0},
        {"a@example.com,b@example.com", 0},
        {"a@example.com\r\n", 0},
        {"a\t@example.com", 0},
        {"a\x7f@example.com", 0},
    };
    char longest[300];

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (mail_address_valid(rows[i].addr) != rows[i].ok)
            UNIT_FAIL("mail_address_valid(\"%s\") != %d", rows[i].addr, rows[i].ok);
        else
            unit_passed++;
    CHECK(!mail_address_valid(NULL));
    memset(longest, 'a', sizeof(longest));
    memcpy(longest + 254 - 4, "@b.c", 5);
    CHECK(mail_address_valid(longest)); /* 254 bytes */
    memset(longest, 'a', sizeof(longest));
    memcpy(longest + 255 - 4, "@b.c", 5);
    CHECK(!mail_address_valid(longest));
}

static void test_urls(void)
{
    static const struct {
        const char *url;
        int rc, loopback;
    } rows[] = {
        {"smtp://mail.example.com:587", 0, 0},
        {"smtps://mail.example.com", 0, 0},
        {"SMTP://mail.example.com", 0, 0},
        {"smtp://127.0.0.1:2525", 0, 1},
        {"smtp://127.8.9.10", 0, 1},
        {"smtp://128.0.0.1", 0, 0},
        {"smtp://localhost:25", 0, 1},
        {"smtp://LocalHost", 0, 1},
        {"smtp://localhost.example.com", 0, 0},
        {"smtp://[::1]:25", 0, 1},
        {"smtp://[::2]:25", 0, 0},
        {"smtp://[::ffff:10.0.0.1]", 0, 0},
        {"smtp://10.1.2.3", 0, 0},
        {"https://mail.example.com", ERR_INVALID, 0},
        {"http://127.0.0.1", ERR_INVALID, 0},
        {"imap://mail.example.com", ERR_INVALID, 0},
        {"smtp://user@mail.example.com", ERR_INVALID, 0},
        {"smtp://user:pw@127.0.0.1", ERR_INVALID, 0},
        {"mail.example.com", ERR_INVALID, 0},
        {"", ERR_INVALID, 0},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int loopback = -1, rc = mail_url_parse(rows[i].url, &loopback);

        if (rc != rows[i].rc || (rc == 0 && loopback != rows[i].loopback))
            UNIT_FAIL("mail_url_parse(\"%s\"): %d loopback %d, want %d loopback %d", rows[i].url,
                      rc, loopback, rows[i].rc, rows[i].loopback);
        else
            unit_passed++;
    }
    CHECK_INT(mail_url_parse(NULL, &(int){0}), ERR_INVALID);
}

static int calls;

static void never(void *arg, const struct mail_result *r)
{
    (void)arg;
    (void)r;
    calls++;
}

static void never_http(void *arg, const struct http_response *res)
{
    (void)arg;
    (void)res;
    calls++;
}

/* mail_send refuses what mail_format does and what the URL check does, at
 * once: the callback never runs, not even from the loop. So does
 * http_start_easy with a transfer that names HTTP (http_start's alone). */
static void test_send_refused(void)
{
    struct event_base *base = event_base_new();
    struct http *h = NULL;
    struct mail_request r = base_request();
    struct http_transfer t = {.connect_timeout_ms = 1000, .timeout_ms = 1000};

    CHECK(base != NULL);
    CHECK_INT(http_new(base, &h), 0);
    r.url = "https://mail.example.com";
    CHECK_INT(mail_send(h, &r, never, NULL), ERR_INVALID);
    r.url = "smtp://u:p@mail.example.com";
    CHECK_INT(mail_send(h, &r, never, NULL), ERR_INVALID);
    r = base_request();
    r.subject = "x\r\nBcc: y@example.com";
    CHECK_INT(mail_send(h, &r, never, NULL), ERR_INVALID);
    r = base_request();
    r.timeout_ms = 0;
    CHECK_INT(mail_send(h, &r, never, NULL), ERR_INVALID);

    t.protocols = "https";
    t.easy = curl_easy_init();
    CHECK_INT(http_start_easy(h, &t, never_http, NULL), ERR_INVALID); /* frees easy */
    t.protocols = "smtp,HTTP";
    t.easy = curl_easy_init();
    CHECK_INT(http_start_easy(h, &t, never_http, NULL), ERR_INVALID);
    t.protocols = NULL;
    t.easy = curl_easy_init();
    CHECK_INT(http_start_easy(h, &t, never_http, NULL), ERR_INVALID);

    event_base_loop(base, EVLOOP_NONBLOCK);
    CHECK_INT(http_in_flight(h), 0);
    http_free(h);
    event_base_free(base);
    CHECK_INT(calls, 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    test_format_whole();
    test_subject_encoding();
    test_subject_long();
    test_refused();
    test_addresses();
    test_urls();
    test_send_refused();
    curl_global_cleanup();
    return unit_report("test_mail");
}
