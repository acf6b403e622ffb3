/* The HTTPS engine against the SafeTitan stand-in (tests/servers/standin.py,
 * certificates from tests/servers/certs.py): a 200 with its body, a 503
 * with Retry-After (trimmed), a body over the cap cut and flagged, a hung
 * answer timing out, a connection reused for the next request, a POST
 * whose body and headers arrive as sent (no Expect), a callback starting
 * the next request, a certificate for another host, a CA that is not
 * trusted without ca_file (while connections verified with it are still
 * open), a ca_file that does not load, requests refused up front (http://,
 * other methods, header line breaks, zero timeouts) whose callback never
 * runs, 50 concurrent requests each completed exactly once, and http_free
 * cutting transfers short with "shutting down". Error texts never carry
 * the query's secret. The Date header of an answer from a server an hour
 * behind us is handed over, so its HTTP-date Retry-After means the pause
 * the server asked for. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "errors.h"
#include "core/http.h"
#include "core/retry.h"
#include "unit.h"
#include "unit_standin.h"

#define SECRET "s3cret-code"

static struct unit_standin_env env;
static struct event_base *base;

/* What one callback saw ("" for a NULL string); calls counts runs. */
struct result {
    int calls;
    int status;
    char body[256];
    size_t body_len;
    int truncated;
    char retry_after[80];
    char date[80];
    char error[512];
    long elapsed_ms;
    int *done; /* bumped on every run */
    /* Optional follow-up started from the callback, and its return. */
    struct http *chain_h;
    const struct http_request *chain_req;
    struct result *chain_res;
    int chain_ret;
};

static void on_result(void *arg, const struct http_response *res)
{
    struct result *r = arg;

    r->calls++;
    r->status = res->status;
    snprintf(r->body, sizeof(r->body), "%.*s", (int)res->body_len, res->body);
    r->body_len = res->body_len;
    r->truncated = res->truncated;
    snprintf(r->retry_after, sizeof(r->retry_after), "%s",
             res->retry_after ? res->retry_after : "");
    snprintf(r->date, sizeof(r->date), "%s", res->date ? res->date : "");
    snprintf(r->error, sizeof(r->error), "%s", res->error ? res->error : "");
    r->elapsed_ms = res->elapsed_ms;
    if (r->done != NULL)
        (*r->done)++;
    if (r->chain_h != NULL)
        r->chain_ret = http_start(r->chain_h, r->chain_req, on_result, r->chain_res);
}

static struct http_request get(const char *url)
{
    struct http_request r = {0};

    r.method = "GET";
    r.url = url;
    r.ca_file = env.ca_pem;
    r.connect_timeout_ms = 3000;
    r.timeout_ms = 5000;
    r.max_response_body = 4096;
    return r;
}

/* Starts req, checks the callback did not run inside http_start, runs the
 * loop until it did. */
static void run_one(struct http *h, const struct http_request *req, struct result *r)
{
    int done = 0, ret;

    r->done = &done;
    ret = http_start(h, req, on_result, r);
    CHECK_INT(ret, 0);
    CHECK_INT(r->calls, 0);
    if (ret == 0 && unit_run_until(base, &done, 1, 10000) != 0)
        UNIT_FAIL("%s: no answer within 10 s", req->url);
    CHECK_INT(r->calls, 1);
    CHECK(strstr(r->error, SECRET) == NULL);
}

/* In the order the stand-in's script answers them. */
static const struct {
    const char *name;
    const char *path;
    long timeout_ms;
    size_t max_body;
    int status;
    const char *body; /* NULL: not checked */
    size_t body_len;
    int truncated;
    const char *retry_after; /* "" when absent */
    const char *error;       /* substring; "" when none */
} sequence[] = {
    {"503 with Retry-After", "/busy", 5000, 4096, 503, "busy", 4, 0, "2", ""},
    {"body over the cap", "/huge", 5000, 1000, 200, NULL, 1000, 1, "",
     "response body over 1000 bytes"},
    {"hung answer", "/hang", 800, 4096, 0, "", 0, 0, "", "timeout: "},
    {"plain 200", "/ok", 5000, 4096, 200, "{\"ok\":true}", 11, 0, "", ""},
    {"a body exactly at the cap", "/ok", 5000, 11, 200, "{\"ok\":true}", 11, 0, "", ""},
};

static void test_sequence(struct http *h, const struct unit_standin *s)
{
    for (size_t i = 0; i < sizeof(sequence) / sizeof(sequence[0]); i++) {
        char url[256];
        struct http_request req;
        struct result r = {0};

        snprintf(url, sizeof(url), "%s%s?code=" SECRET "&orgId=1", s->url, sequence[i].path);
        req = get(url);
        req.timeout_ms = sequence[i].timeout_ms;
        req.max_response_body = sequence[i].max_body;
        run_one(h, &req, &r);
        if (r.status != sequence[i].status ||
            (sequence[i].body != NULL && strcmp(r.body, sequence[i].body) != 0) ||
            r.body_len != sequence[i].body_len || r.truncated != sequence[i].truncated ||
            strcmp(r.retry_after, sequence[i].retry_after) != 0 || r.elapsed_ms < 0 ||
            (sequence[i].status == 0 && r.elapsed_ms < sequence[i].timeout_ms) ||
            (sequence[i].error[0] == '\0' ? r.error[0] != '\0'
                                          : strstr(r.error, sequence[i].error) == NULL))
            UNIT_FAIL("%s: status %d, body '%s' (%zu bytes), truncated %d, retry_after '%s', "
                      "error '%s'",
                      sequence[i].name, r.status, r.body, r.body_len, r.truncated, r.retry_after,
                      r.error);
        else
            unit_passed++;
    }
}

/* The stand-in's records of requests to path, in arrival order: at most
 * max, each taken (put them), and how many there were. */
static size_t recorded(const struct unit_standin *s, const char *path, struct json_object **out,
                       size_t max)
{
    static char log[1 << 20];
    size_t n = 0;

    unit_read_file(s->requests, log, sizeof(log));
    for (char *line = strtok(log, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        struct json_object *o = json_tokener_parse(line), *p;

        if (o != NULL && json_object_object_get_ex(o, "path", &p) &&
            strcmp(json_object_get_string(p), path) == 0 && n < max)
            out[n++] = json_object_get(o);
        json_object_put(o);
    }
    return n;
}

static const char *field(struct json_object *o, const char *a, const char *b)
{
    struct json_object *v;

    if (!json_object_object_get_ex(o, a, &v))
        return "(absent)";
    if (b != NULL && !json_object_object_get_ex(v, b, &v))
        return "(absent)";
    return json_object_get_string(v);
}

/* The two requests to /ok came one after the other: the second one reused
 * the first one's connection. */
static void test_reuse(const struct unit_standin *s)
{
    struct json_object *ok[2] = {NULL, NULL};

    if (recorded(s, "/ok", ok, 2) != 2)
        UNIT_FAIL("the stand-in did not record two requests to /ok");
    else
        CHECK(strcmp(field(ok[0], "conn", NULL), field(ok[1], "conn", NULL)) == 0);
    json_object_put(ok[0]);
    json_object_put(ok[1]);
}

static void test_post_and_chain(struct http *h, const struct unit_standin *s)
{
    static const char body[] =
        "{\"event\":\"Unknown USB Device\",\"id\":\"k-1\",\"n\":\"\xc3\xa9\"}";
    static const char *const headers[] = {"X-Api-Key: key-123", "Idempotency-Key: k-1",
                                          "Content-Type: application/json", NULL};
    char url[256], next_url[256];
    struct http_request req, next;
    struct result r = {0}, r2 = {0};
    struct json_object *o;
    int done = 0;

    snprintf(url, sizeof(url), "%s/api/event/alert?orgId=7", s->url);
    snprintf(next_url, sizeof(next_url), "%s/chained", s->url);
    req = get(url);
    req.method = "POST";
    req.headers = headers;
    req.body = body;
    req.body_len = sizeof(body) - 1;
    next = get(next_url);
    r.chain_h = h;
    r.chain_req = &next;
    r.chain_res = &r2;
    r.chain_ret = -100;
    r.done = r2.done = &done;
    CHECK_INT(http_start(h, &req, on_result, &r), 0);
    if (unit_run_until(base, &done, 2, 10000) != 0)
        UNIT_FAIL("post and chain: %d of 2 answers", done);
    CHECK_INT(r.calls, 1);
    CHECK_INT(r.status, 200);
    CHECK_INT(r.chain_ret, 0);
    CHECK_INT(r2.calls, 1);
    CHECK_INT(r2.status, 200);

    if (recorded(s, "/api/event/alert", &o, 1) != 1) {
        UNIT_FAIL("the stand-in recorded no POST /api/event/alert");
        return;
    }
    CHECK(strcmp(field(o, "method", NULL), "POST") == 0);
    CHECK(strcmp(field(o, "query", NULL), "orgId=7") == 0);
    CHECK(strcmp(field(o, "body", NULL), "{\"event\":\"Unknown USB Device\",\"id\":\"k-1\","
                                         "\"n\":\"\xc3\xa9\"}") == 0);
    CHECK(strcmp(field(o, "headers", "x-api-key"), "key-123") == 0);
    CHECK(strcmp(field(o, "headers", "idempotency-key"), "k-1") == 0);
    CHECK(strcmp(field(o, "headers", "content-type"), "application/json") == 0);
    CHECK(strcmp(field(o, "headers", "content-length"), "50") == 0);
    CHECK(strcmp(field(o, "headers", "expect"), "(absent)") == 0);
    json_object_put(o);
}

static void test_tls(struct http *h, const struct unit_standin *s, const struct unit_standin *wrong)
{
    static const struct {
        const char *name;
        int wrong_host;
        const char *ca_file; /* "=" stands for the test CA */
        const char *error;   /* substring */
        const char *start;   /* how the error begins: the layer that failed */
    } rows[] = {
        {"certificate for another host", 1, "=", "127.0.0.1", "TLS: "},
        /* The connections made with ca_file are still open: not reused. */
        {"CA not trusted without ca_file", 0, NULL, "certificate", "TLS: "},
        {"ca_file that does not load", 0, "/nonexistent/ca.pem", "/nonexistent/ca.pem", ""},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char url[256];
        struct http_request req;
        struct result r = {0};

        snprintf(url, sizeof(url), "%s/tls?code=" SECRET, (rows[i].wrong_host ? wrong : s)->url);
        req = get(url);
        req.ca_file = rows[i].ca_file != NULL && strcmp(rows[i].ca_file, "=") == 0
                          ? env.ca_pem
                          : rows[i].ca_file;
        run_one(h, &req, &r);
        if (r.status != 0 || strstr(r.error, rows[i].error) == NULL ||
            strncmp(r.error, rows[i].start, strlen(rows[i].start)) != 0)
            UNIT_FAIL("%s: status %d, error '%s'", rows[i].name, r.status, r.error);
        else
            unit_passed++;
    }
}

/* Nothing listens on a port just closed: the error says the TCP connect
 * failed, before TLS or HTTP. */
static void test_connect_refused(struct http *h)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct http_request req;
    struct result r = {0};
    char url[64];

    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
          getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    close(fd);
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/x", ntohs(sa.sin_port));
    req = get(url);
    run_one(h, &req, &r);
    if (r.status != 0 || strncmp(r.error, "TCP: ", 5) != 0)
        UNIT_FAIL("connect refused: status %d, error '%s'", r.status, r.error);
    else
        unit_passed++;
}

static void test_refused(struct http *h, const struct unit_standin *s)
{
    static const char *const crlf[] = {"X-Api-Key: a\r\nX-Injected: 1", NULL};
    char url[256];
    struct http_request req;
    struct result r = {0};

    snprintf(url, sizeof(url), "http://%s/plain", s->url + strlen("https://"));
    req = get(url);
    CHECK_INT(http_start(h, &req, on_result, &r), ERR_INVALID);
    req = get("ftp://127.0.0.1/x");
    CHECK_INT(http_start(h, &req, on_result, &r), ERR_INVALID);
    snprintf(url, sizeof(url), "%s/ok", s->url);
    req = get(url);
    req.method = "PUT";
    CHECK_INT(http_start(h, &req, on_result, &r), ERR_INVALID);
    req = get(url);
    req.headers = crlf;
    CHECK_INT(http_start(h, &req, on_result, &r), ERR_INVALID);
    req = get(url);
    req.timeout_ms = 0;
    CHECK_INT(http_start(h, &req, on_result, &r), ERR_INVALID);
    CHECK_INT(http_in_flight(h), 0);
    unit_run_until(base, NULL, 0, 50);
    CHECK_INT(r.calls, 0);
}

#define MANY 50

static void test_concurrent(struct http *h, const struct unit_standin *s)
{
    static struct result r[MANY];
    char url[MANY][128];
    struct http_request req[MANY];
    int done = 0, ok = 0, once = 0;

    for (int i = 0; i < MANY; i++) {
        snprintf(url[i], sizeof(url[i]), "%s/many/%d", s->url, i);
        req[i] = get(url[i]);
        /* Fifty handshakes at once are slow under valgrind. */
        req[i].connect_timeout_ms = 20000;
        req[i].timeout_ms = 20000;
        r[i].done = &done;
        CHECK_INT(http_start(h, &req[i], on_result, &r[i]), 0);
    }
    CHECK_INT(http_in_flight(h), MANY);
    if (unit_run_until(base, &done, MANY, 30000) != 0)
        UNIT_FAIL("concurrent: %d of %d answers", done, MANY);
    unit_run_until(base, NULL, 0, 50); /* a second completion would show now */
    for (int i = 0; i < MANY; i++) {
        int good = r[i].status == 200 && strcmp(r[i].body, "{\"ok\":true}") == 0;

        if (!good && ok == i)
            fprintf(stderr, "concurrent %d (first bad one): status %d, error '%s'\n", i,
                    r[i].status, r[i].error);
        once += r[i].calls == 1;
        ok += good;
    }
    CHECK_INT(once, MANY);
    CHECK_INT(ok, MANY);
    CHECK_INT(done, MANY);
    CHECK_INT(http_in_flight(h), 0);
}

/* A TCP port that completes handshakes (the kernel's backlog) but never
 * answers: TLS stalls there until http_free. */
static int black_hole(int *port)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd == -1 || bind(fd, (struct sockaddr *)&a, sizeof(a)) == -1 || listen(fd, 16) == -1 ||
        getsockname(fd, (struct sockaddr *)&a, &len) == -1) {
        perror("black hole");
        exit(2);
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static void test_shutdown(void)
{
    struct http *h = NULL;
    struct result r[3] = {{0}}, late = {0};
    struct http_request req[3], again;
    char url[128];
    int port, fd = black_hole(&port), done = 0;

    CHECK_INT(http_new(base, &h), 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/never?code=" SECRET, port);
    for (int i = 0; i < 3; i++) {
        req[i] = get(url);
        req[i].connect_timeout_ms = 10000;
        req[i].timeout_ms = 10000;
        r[i].done = &done;
        CHECK_INT(http_start(h, &req[i], on_result, &r[i]), 0);
    }
    again = get(url);
    r[0].chain_h = h; /* freeing began: refused */
    r[0].chain_req = &again;
    r[0].chain_res = &late;
    unit_run_until(base, NULL, 0, 300);
    CHECK_INT(done, 0);
    CHECK_INT(http_in_flight(h), 3);
    http_free(h);
    for (int i = 0; i < 3; i++) {
        if (r[i].calls != 1 || r[i].status != 0 || strcmp(r[i].error, "shutting down") != 0)
            UNIT_FAIL("shutdown %d: %d calls, status %d, error '%s'", i, r[i].calls, r[i].status,
                      r[i].error);
        else
            unit_passed++;
    }
    CHECK_INT(r[0].chain_ret, ERR_INVALID);
    CHECK_INT(late.calls, 0);
    close(fd);
    http_free(NULL);
}

/* A 429 from a server whose clock is an hour behind ours, asking for 30 s
 * as an HTTP-date: the Date header comes through, and measured from it the
 * pause is 30 s (from our clock it would be none at all). */
static void test_server_date(struct http *h, const struct unit_standin *s)
{
    char url[256];
    struct http_request req;
    struct result r = {0};
    int64_t from_date, from_ours;

    snprintf(url, sizeof(url), "%s/skewed", s->url);
    req = get(url);
    run_one(h, &req, &r);
    CHECK_INT(r.status, 429);
    CHECK_INT(strlen(r.date), 29); /* "Mon, 23 Nov 2026 09:00:00 GMT" */
    from_date = retry_after_s(r.retry_after, r.date, time(NULL), 600);
    from_ours = retry_after_s(r.retry_after, NULL, time(NULL), 600);
    if (from_date < 29 || from_date > 30 || from_ours != 0)
        UNIT_FAIL("Retry-After '%s', Date '%s': %lld s from Date, %lld s from our clock",
                  r.retry_after, r.date, (long long)from_date, (long long)from_ours);
    else
        unit_passed++;
}

int main(void)
{
    /* The stand-ins' scripted answers, consumed one per request in order. */
    static const char script[] = "[{\"status\": 503, \"retry_after\": \" 2 \", \"body\": \"busy\"},"
                                 " {\"huge\": 100000}, {\"hang\": true},"
                                 " {\"match\": \"/skewed\", \"status\": 429,"
                                 " \"clock_offset\": -3600, \"retry_after_in\": 30}]";
    static const char *const script_args[] = {"--script", script, NULL};
    struct unit_standin s = {0}, wrong = {0};
    struct http *h = NULL;

    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    base = event_base_new();
    if (base == NULL) {
        perror("setup");
        return 2;
    }
    if (unit_standin_setup(&env, "http") != 0 ||
        unit_standin_start(&s, &env, "safetitan", "server", "server", script_args) != 0 ||
        unit_standin_start(&wrong, &env, "safetitan", "wrong", "wrong", NULL) != 0) {
        UNIT_FAIL("cannot start the stand-ins (run from the repository root)");
        goto out;
    }
    CHECK_INT(http_new(base, &h), 0);
    test_sequence(h, &s);
    test_server_date(h, &s);
    test_reuse(&s);
    test_post_and_chain(h, &s);
    test_tls(h, &s, &wrong);
    test_refused(h, &s);
    test_connect_refused(h);
    test_concurrent(h, &s);
    http_free(h);
    test_shutdown();
out:
    unit_standin_stop(&s);
    unit_standin_stop(&wrong);
    unit_standin_cleanup(&env);
    event_base_free(base);
    curl_global_cleanup();
    return unit_report("test_http");
}
