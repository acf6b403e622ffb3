/* SMTP submission on the HTTPS engine's loop: the message is built whole
 * first (mail_format), then one libcurl easy handle uploads it with the
 * envelope and goes to http_start_easy; the server's replies reach the
 * header callback (curl passes SMTP response lines there), which keeps the
 * last one for the reason text. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "errors.h"
#include "mail.h"

/* RFC 5321 4.5.3.1.3: a path is at most 256 octets with its brackets. */
#define MAIL_ADDRESS_MAX 254
#define MAIL_ID_MAX      200
/* The reply kept for the reason text: enough for a server's explanation. */
#define MAIL_REPLY_MAX 160
/* RFC 2047: an encoded word is at most 75 characters; 45 bytes of UTF-8
 * make 60 of base64, plus "=?UTF-8?B?" and "?=". */
#define MAIL_WORD_BYTES 45

struct mail_send {
    mail_cb cb;
    void *arg;
    struct curl_slist *rcpt;
    char *msg; /* the whole message, wiped when done */
    size_t len, off;
    /* The server's last 4xx or 5xx reply line, printable: the refusal
     * (the "221 Bye" of the QUIT after it does not replace it). */
    char reply[MAIL_REPLY_MAX];
    char reason[MAIL_REPLY_MAX + 32];
};

/* A growing output buffer; err sticks at the first failure. */
struct mail_buf {
    char *p;
    size_t len, cap;
    int err;
};

static void mail_put(struct mail_buf *b, const char *s, size_t n)
{
    if (b->err != 0)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 1024;
        char *p;

        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (p == NULL) {
            b->err = ERR_NOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void mail_puts(struct mail_buf *b, const char *s)
{
    mail_put(b, s, strlen(s));
}

static void mail_base64(struct mail_buf *b, const unsigned char *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char out[4];

    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;

        if (i + 1 < n)
            v |= (unsigned)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        out[0] = tab[(v >> 18) & 63];
        out[1] = tab[(v >> 12) & 63];
        out[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[3] = i + 2 < n ? tab[v & 63] : '=';
        mail_put(b, out, 4);
    }
}

/* No byte below 0x20 (CR, LF, NUL's neighbours, TAB included) nor DEL:
 * each could end a header or a command. */
static int mail_no_controls(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

int mail_address_valid(const char *s)
{
    const char *at;
    size_t len;

    if (s == NULL || !mail_no_controls(s) || strpbrk(s, " <>,;\"()[]\\") != NULL)
        return 0;
    len = strlen(s);
    at = strrchr(s, '@');
    return len <= MAIL_ADDRESS_MAX && at != NULL && at != s && at[1] != '\0' &&
           strchr(s, '@') == at;
}

/* An idempotency key as the left part of a Message-ID (RFC 5322 dot-atom
 * text, less the characters a reader might trip on). */
static int mail_id_valid(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > MAIL_ID_MAX || s[0] == '.' || s[len - 1] == '.' || strstr(s, ".."))
        return 0;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-/=?^_`{|}~.", *s) != NULL))
            return 0;
    return 1;
}

static int mail_request_valid(const struct mail_request *req)
{
    size_t n = 0;

    if (!mail_address_valid(req->from) || req->to == NULL || req->subject == NULL ||
        !mail_no_controls(req->subject) || strlen(req->subject) > MAIL_SUBJECT_MAX ||
        (req->body == NULL && req->body_len > 0) || req->body_len > MAIL_BODY_MAX ||
        (req->body != NULL && memchr(req->body, '\0', req->body_len) != NULL) ||
        (req->message_id != NULL && !mail_id_valid(req->message_id)) ||
        (req->username != NULL && (!mail_no_controls(req->username) || req->password == NULL)))
        return 0;
    for (; req->to[n] != NULL; n++)
        if (!mail_address_valid(req->to[n]))
            return 0;
    return n > 0 && n <= MAIL_RCPT_MAX;
}

/* RFC 5322 3.3, in English whatever the locale: "Sun, 06 Dec 2026 21:27:27 +0000". */
static void mail_date(struct mail_buf *b, time_t now)
{
    static const char days[][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    char line[64];

    if (gmtime_r(&now, &tm) == NULL) {
        b->err = ERR_INVALID;
        return;
    }
    snprintf(line, sizeof(line), "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
             days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
    mail_puts(b, line);
}

/* Subject as it is when printable ASCII that fits a line, else as encoded
 * words of at most MAIL_WORD_BYTES bytes each, cut between UTF-8
 * characters, on folded lines. */
static void mail_subject(struct mail_buf *b, const char *s)
{
    size_t len = strlen(s), i = 0;
    int plain = len <= 68;

    for (size_t j = 0; plain && j < len; j++)
        if ((unsigned char)s[j] >= 0x7f)
            plain = 0;
    /* "=?" in a plain subject would read as an encoded word. */
    if (plain && strstr(s, "=?") == NULL) {
        mail_puts(b, "Subject: ");
        mail_put(b, s, len);
        mail_puts(b, "\r\n");
        return;
    }
    mail_puts(b, "Subject:");
    do {
        size_t n = len - i > MAIL_WORD_BYTES ? MAIL_WORD_BYTES : len - i;

        /* Never split a character: back off continuation bytes. */
        while (i + n < len && n > 1 && ((unsigned char)s[i + n] & 0xc0) == 0x80)
            n--;
        mail_puts(b, i == 0 ? " =?UTF-8?B?" : "\r\n =?UTF-8?B?");
        mail_base64(b, (const unsigned char *)s + i, n);
        mail_puts(b, "?=");
        i += n;
    } while (i < len);
    mail_puts(b, "\r\n");
}

int mail_format(const struct mail_request *req, time_t now, char **out, size_t *len)
{
    struct mail_buf b = {0};
    int at_line_start = 1;

    *out = NULL;
    *len = 0;
    if (!mail_request_valid(req))
        return ERR_INVALID;
    mail_date(&b, now);
    mail_puts(&b, "From: ");
    mail_puts(&b, req->from);
    mail_puts(&b, "\r\nTo: ");
    for (size_t i = 0; req->to[i] != NULL; i++) {
        if (i > 0)
            mail_puts(&b, ",\r\n ");
        mail_puts(&b, req->to[i]);
    }
    mail_puts(&b, "\r\n");
    mail_subject(&b, req->subject);
    if (req->message_id != NULL) {
        mail_puts(&b, "Message-ID: <");
        mail_puts(&b, req->message_id);
        mail_puts(&b, "@rtr-agent>\r\n");
    }
    mail_puts(&b, "MIME-Version: 1.0\r\n"
                  "Content-Type: text/plain; charset=utf-8\r\n"
                  "Content-Transfer-Encoding: 8bit\r\n"
                  "\r\n");
    for (size_t i = 0; i < req->body_len;) {
        const char *p = req->body + i, *end = req->body + req->body_len;
        const char *eol = p;

        while (eol < end && *eol != '\r' && *eol != '\n')
            eol++;
        mail_put(&b, p, (size_t)(eol - p));
        if (eol == end) { /* a last line without its line end */
            at_line_start = 0;
            break;
        }
        mail_puts(&b, "\r\n");
        /* CRLF is one line end; so are a bare LF and a bare CR. */
        i = (size_t)(eol - req->body) + (eol[0] == '\r' && eol + 1 < end && eol[1] == '\n' ? 2 : 1);
    }
    if (!at_line_start)
        mail_puts(&b, "\r\n");
    if (b.err != 0) {
        free(b.p);
        return b.err;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

/* Whether url's host is loopback, where plain SMTP is accepted: nothing
 * leaves the machine. url has been parsed into u. */
static int mail_host_loopback(CURLU *u)
{
    char *host = NULL;
    int loop = 0;
    struct in_addr a4;
    struct in6_addr a6;

    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        return 0;
    if (strcasecmp(host, "localhost") == 0) {
        loop = 1;
    } else if (inet_pton(AF_INET, host, &a4) == 1) {
        loop = (ntohl(a4.s_addr) >> 24) == 127;
    } else if (host[0] == '[') {
        size_t n = strlen(host);

        if (n > 2 && host[n - 1] == ']') {
            host[n - 1] = '\0';
            loop = inet_pton(AF_INET6, host + 1, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
        }
    }
    curl_free(host);
    return loop;
}

int mail_url_parse(const char *url, int *loopback)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *user = NULL, *pass = NULL;
    int ret = ERR_NOMEM;

    if (u == NULL)
        goto out;
    ret = ERR_INVALID;
    if (url == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "smtp") != 0 && strcmp(scheme, "smtps") != 0) ||
        curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK)
        goto out;
    *loopback = mail_host_loopback(u);
    ret = 0;
out:
    curl_free(scheme);
    curl_free(user);
    curl_free(pass);
    curl_url_cleanup(u);
    return ret;
}

static void mail_send_free(struct mail_send *s)
{
    if (s == NULL)
        return;
    curl_slist_free_all(s->rcpt);
    if (s->msg != NULL)
        OPENSSL_cleanse(s->msg, s->len);
    free(s->msg);
    free(s);
}

/* CURLOPT_READFUNCTION: the message, in the pieces curl asks for. */
static size_t mail_on_read(char *buf, size_t size, size_t nmemb, void *arg)
{
    struct mail_send *s = arg;
    size_t n = size * nmemb;

    if (n > s->len - s->off)
        n = s->len - s->off;
    memcpy(buf, s->msg + s->off, n);
    s->off += n;
    return n;
}

/* CURLOPT_HEADERFUNCTION: each of the server's reply lines; the last
 * refusal (4xx or 5xx) is kept, with anything not printable ASCII as '?'
 * (it goes into logs). */
static size_t mail_on_reply(char *data, size_t size, size_t nmemb, void *arg)
{
    struct mail_send *s = arg;
    size_t len = size * nmemb, n = 0;

    if (len < 4 || (data[0] != '4' && data[0] != '5'))
        return size * nmemb;
    while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n'))
        len--;
    for (; n < len && n < sizeof(s->reply) - 1; n++)
        s->reply[n] = data[n] >= 0x20 && data[n] < 0x7f ? data[n] : '?';
    s->reply[n] = '\0';
    return size * nmemb;
}

/* CURLOPT_WRITEFUNCTION: an upload gets no data back; anything is dropped. */
static size_t mail_on_data(char *data, size_t size, size_t nmemb, void *arg)
{
    (void)data;
    (void)arg;
    return size * nmemb;
}

static void mail_on_done(void *arg, const struct http_response *res)
{
    struct mail_send *s = arg;
    struct mail_result r = {.verdict = RETRY_AGAIN};
    int status = res->status;

    /* A failed send whose last reply was not the refusal (a QUIT's 221
     * after it): the refusal's code. */
    if (res->error != NULL && (status < 400 || status > 599) && s->reply[0] != '\0')
        status = atoi(s->reply);
    if (res->error == NULL) {
        r.verdict = RETRY_DONE;
        r.smtp_code = status;
    } else if (status >= 400 && status <= 599) {
        /* The reply line is "451 text" or "451-text": the text after the
         * code, when the line kept is the one with that code. */
        const char *text = "";
        char code[8];

        snprintf(code, sizeof(code), "%d", status);
        if (strncmp(s->reply, code, 3) == 0 && (s->reply[3] == ' ' || s->reply[3] == '-'))
            text = s->reply + 4;
        r.smtp_code = status;
        r.verdict = status >= 500 ? RETRY_DEAD : RETRY_AGAIN;
        snprintf(s->reason, sizeof(s->reason), "SMTP %d: %s", status,
                 text[0] != '\0' ? text : res->error);
        r.reason = s->reason;
    } else {
        r.reason = res->error;
    }
    s->cb(s->arg, &r);
    mail_send_free(s);
}

int mail_send(struct http *h, const struct mail_request *req, mail_cb cb, void *arg)
{
    struct mail_send *s = NULL;
    struct http_transfer t = {.protocols = "smtp,smtps",
                              .ca_file = req->ca_file,
                              .connect_timeout_ms = req->connect_timeout_ms,
                              .timeout_ms = req->timeout_ms};
    char path[MAIL_ADDRESS_MAX + 3];
    CURLcode rc = CURLE_OK;
    int loopback = 0, ret;

    ret = mail_url_parse(req->url, &loopback);
    if (ret != 0)
        goto out;
    ret = ERR_NOMEM;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto out;
    ret = mail_format(req, time(NULL), &s->msg, &s->len);
    if (ret != 0)
        goto out;
    ret = ERR_NOMEM;
    s->cb = cb;
    s->arg = arg;
    for (size_t i = 0; req->to[i] != NULL; i++) {
        struct curl_slist *l;

        snprintf(path, sizeof(path), "<%s>", req->to[i]);
        l = curl_slist_append(s->rcpt, path);
        if (l == NULL)
            goto out;
        s->rcpt = l;
    }
    t.easy = curl_easy_init();
    if (t.easy == NULL)
        goto out;

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(t.easy, opt, val);                                               \
    } while (0)
    SET(CURLOPT_URL, req->url);
    /* STARTTLS or no mail; plain text only where it never leaves the host. */
    SET(CURLOPT_USE_SSL, loopback ? (long)CURLUSESSL_TRY : (long)CURLUSESSL_ALL);
    snprintf(path, sizeof(path), "<%s>", req->from);
    SET(CURLOPT_MAIL_FROM, path);
    SET(CURLOPT_MAIL_RCPT, s->rcpt);
    SET(CURLOPT_UPLOAD, 1L);
    SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)s->len);
    SET(CURLOPT_READFUNCTION, mail_on_read);
    SET(CURLOPT_READDATA, (void *)s);
    SET(CURLOPT_HEADERFUNCTION, mail_on_reply);
    SET(CURLOPT_HEADERDATA, (void *)s);
    SET(CURLOPT_WRITEFUNCTION, mail_on_data);
    if (req->username != NULL) {
        SET(CURLOPT_USERNAME, req->username);
        SET(CURLOPT_PASSWORD, req->password);
    }
#undef SET
    if (rc != CURLE_OK) {
        curl_easy_cleanup(t.easy);
        ret = rc == CURLE_OUT_OF_MEMORY ? ERR_NOMEM : ERR_INVALID;
        goto out;
    }
    ret = http_start_easy(h, &t, mail_on_done, s);
    if (ret == 0)
        s = NULL; /* transferred: mail_on_done frees it */
out:
    mail_send_free(s);
    return ret;
}
