/* webhook.h: which route a target names (and what answers a wrong one),
 * the query's parameters (decoded, the code apart), the alerts a body
 * holds on each route (the DTEX (entry, hit) documents byte for byte) and
 * each alert's idempotency field. */
#include "ingest/webhook.h"

#include "errors.h"
#include "unit.h"

#define MAX_ALERTS 8

static const struct webhook_limits lim = {MAX_ALERTS, 4096, {NULL, 0}};

/* The pairs of w's query as "name=value;" text, for comparing. */
static const char *pairs_text(const struct webhook_request *w, char *out, size_t cap)
{
    size_t pos = 0, n = 0;

    out[0] = '\0';
    while (w->query.p != NULL && pos < w->query.len) {
        const char *name = w->query.p + pos, *value = name + strlen(name) + 1;

        n += (size_t)snprintf(out + n, cap - n, "%s=%s;", name, value);
        pos = (size_t)(value + strlen(value) + 1 - w->query.p);
    }
    return out;
}

static const struct {
    const char *name;
    enum webhook_method method;
    const char *target;
    int status;
    enum webhook_route route;
    const char *source, *pairs, *code; /* code NULL: none read */
    const char *why;                   /* a part of the reason, for a status */
} target_cases[] = {
    {"generic", WEBHOOK_POST, "/v1/alerts/sentinel", 0, WEBHOOK_ALERTS, "sentinel", "", NULL, NULL},
    {"generic with a query", WEBHOOK_POST, "/v1/alerts/a.b-c_9?x=1", 0, WEBHOOK_ALERTS, "a.b-c_9",
     "x=1;", NULL, NULL},
    {"logpoint GET", WEBHOOK_GET, "/api/SIEM/logpoint/alert?user=CORP%5Cjdoe&ruleName=USB+device",
     0, WEBHOOK_LOGPOINT, "logpoint", "user=CORP\\jdoe;ruleName=USB device;", NULL, NULL},
    {"fixed parts in any case", WEBHOOK_GET, "/API/siem/LogPoint/ALERT", 0, WEBHOOK_LOGPOINT,
     "logpoint", "", NULL, NULL},
    {"logrhythm", WEBHOOK_POST, "/api/SIEM/logrhythm/smartresponse", 0, WEBHOOK_LOGRHYTHM,
     "logrhythm", "", NULL, NULL},
    {"dtex", WEBHOOK_POST, "/api/SIEM/dtex/alert", 0, WEBHOOK_DTEX, "dtex", "", NULL, NULL},
    {"hosted form: the code apart, the rest fields", WEBHOOK_GET,
     "/api/event/Logpoint/alert?code=s3cr%2Bt&orchid=o1&orgId=g1&user=jdoe&ruleName=r#frag", 0,
     WEBHOOK_EVENT, "Logpoint", "orchid=o1;orgId=g1;user=jdoe;ruleName=r;", "s3cr+t", NULL},
    {"empty segments and a name alone", WEBHOOK_GET, "/api/event/x/alert?&a&&b=&c=%C3%A9&", 0,
     WEBHOOK_EVENT, "x", "a=;b=;c=\xc3\xa9;", NULL, NULL},
    {"GET on a POST route", WEBHOOK_GET, "/api/SIEM/dtex/alert", 405, WEBHOOK_DTEX, "dtex", "",
     NULL, "POST"},
    {"PUT", WEBHOOK_OTHER, "/v1/alerts/x", 405, WEBHOOK_ALERTS, "x", "", NULL, "POST"},
    {"unknown path", WEBHOOK_POST, "/api/SIEM/splunk/alert", 404, 0, "", "", NULL, "no such route"},
    {"a trailing slash is another path", WEBHOOK_POST, "/v1/alerts/x/", 404, 0, "", "", NULL,
     "no such route"},
    {"no source", WEBHOOK_POST, "/v1/alerts/", 404, 0, "", "", NULL, NULL},
    {"a source with a slash-like byte", WEBHOOK_POST, "/v1/alerts/a%2Fb", 404, 0, "", "", NULL,
     NULL},
    {"a source of 65 bytes", WEBHOOK_POST,
     "/v1/alerts/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 404, 0, "", "",
     NULL, NULL},
    {"an absolute target", WEBHOOK_POST, "http://x/v1/alerts/a", 404, 0, "", "", NULL, NULL},
    {"a parameter twice", WEBHOOK_GET, "/api/SIEM/logpoint/alert?user=a&code=k&user=b", 400,
     WEBHOOK_LOGPOINT, "logpoint", NULL, "k", "\"user\" is given twice"},
    {"a bad escape, the code still read", WEBHOOK_GET, "/api/SIEM/logpoint/alert?user=%zz&code=k",
     400, WEBHOOK_LOGPOINT, "logpoint", NULL, "k", "query parameter \"user\": bad"},
    {"a cut escape", WEBHOOK_GET, "/api/SIEM/logpoint/alert?user=a%4", 400, WEBHOOK_LOGPOINT,
     "logpoint", NULL, NULL, "\"user\""},
    {"%00", WEBHOOK_GET, "/api/SIEM/logpoint/alert?user=a%00b", 400, WEBHOOK_LOGPOINT, "logpoint",
     NULL, NULL, "\"user\""},
    {"invalid UTF-8", WEBHOOK_GET, "/api/SIEM/logpoint/alert?ruleName=%ff", 400, WEBHOOK_LOGPOINT,
     "logpoint", NULL, NULL, "\"ruleName\""},
    {"an overlong encoding", WEBHOOK_GET, "/api/SIEM/logpoint/alert?r=%c0%af", 400,
     WEBHOOK_LOGPOINT, "logpoint", NULL, NULL, "\"r\""},
    {"a name that is not text is shown as ?", WEBHOOK_GET, "/api/SIEM/logpoint/alert?a%22b=%ff",
     400, WEBHOOK_LOGPOINT, "logpoint", NULL, NULL, "\"a%22b\""},
    {"an empty name", WEBHOOK_GET, "/api/SIEM/logpoint/alert?=x", 400, WEBHOOK_LOGPOINT, "logpoint",
     NULL, NULL, "empty name"},
    {"the code twice: neither counts", WEBHOOK_GET, "/api/event/x/alert?code=a&code=a", 400,
     WEBHOOK_EVENT, "x", NULL, NULL, "\"code\""},
    {"an empty code", WEBHOOK_GET, "/api/event/x/alert?code=", 400, WEBHOOK_EVENT, "x", NULL, NULL,
     "\"code\""},
    {"an escaped or other-case code is not the code, nor a field", WEBHOOK_GET,
     "/api/event/x/alert?c%6fde=a&Code=b&CODE&user=u", 0, WEBHOOK_EVENT, "x", "user=u;", NULL,
     NULL},
};

static void test_targets(void)
{
    for (size_t i = 0; i < sizeof(target_cases) / sizeof(target_cases[0]); i++) {
        struct webhook_request w;
        char why[WEBHOOK_WHY_MAX] = "", pairs[512];
        int status =
            webhook_target(&w, target_cases[i].method, target_cases[i].target, why, sizeof(why));
        const char *name = target_cases[i].name;

        if (status != target_cases[i].status)
            UNIT_FAIL("%s: status %d, want %d (%s)", name, status, target_cases[i].status, why);
        else
            unit_passed++;
        if (target_cases[i].why != NULL && strstr(why, target_cases[i].why) == NULL)
            UNIT_FAIL("%s: why '%s' lacks '%s'", name, why, target_cases[i].why);
        if (status == 0 || status == 405) {
            CHECK_INT(w.route, target_cases[i].route);
            if (strcmp(w.source, target_cases[i].source) != 0)
                UNIT_FAIL("%s: source '%s'", name, w.source);
        }
        if (target_cases[i].pairs != NULL &&
            strcmp(pairs_text(&w, pairs, sizeof(pairs)), target_cases[i].pairs) != 0)
            UNIT_FAIL("%s: pairs '%s', want '%s'", name, pairs, target_cases[i].pairs);
        if (target_cases[i].code == NULL)
            CHECK(w.code == NULL);
        else if (w.code == NULL || strcmp(w.code, target_cases[i].code) != 0 ||
                 w.code_len != strlen(target_cases[i].code))
            UNIT_FAIL("%s: code '%s'", name, w.code != NULL ? w.code : "(none)");
        /* The code is never a field, in any spelling. */
        CHECK(strcasestr(pairs_text(&w, pairs, sizeof(pairs)), "code=") == NULL);
        webhook_request_free(&w);
    }
}

static const struct {
    const char *name;
    const char *target, *body;
    int status;
    const char *want[4]; /* the alerts' texts, or the reason's part for a status */
} body_cases[] = {
    {"one object", "/v1/alerts/s", " {\"a\":1}\n", 0, {"{\"a\":1}"}},
    {"an array",
     "/v1/alerts/s",
     "[{\"a\":1}, {\"b\":[2,{}]} ]",
     0,
     {"{\"a\":1}", "{\"b\":[2,{}]}"}},
    {"JSON lines",
     "/v1/alerts/s",
     "{\"a\":1}\r\n\n{\"b\":\"}\"}\n",
     0,
     {"{\"a\":1}", "{\"b\":\"}\"}"}},
    {"the query alone", "/api/SIEM/logpoint/alert?user=a", "", 0, {""}},
    {"the query route with a body",
     "/api/SIEM/logpoint/alert?user=a",
     "{\"x\":1}",
     0,
     {"{\"x\":1}"}},
    {"an empty body on the generic route", "/v1/alerts/s", "  ", 400, {"empty body"}},
    {"a duplicate key", "/v1/alerts/s", "{\"a\":1,\"a\":2}", 400, {"duplicate key \"a\""}},
    {"a scalar", "/v1/alerts/s", "42", 400, {"expected a JSON object"}},
    {"an array of a non-object", "/v1/alerts/s", "[{}, 1]", 400, {"element 1 is not"}},
    {"more alerts than allowed",
     "/v1/alerts/s",
     "[{},{},{},{},{},{},{},{},{}]",
     400,
     {"more than max_alerts"}},
    {"a bad line", "/v1/alerts/s", "{}\n{\"a\":}\n", 400, {"line 2: json:"}},
    {"DTEX: one alert per (entry, hit), the rest of the body kept",
     "/api/SIEM/dtex/alert",
     "{\"v\":1,\"dataset\":[{\"user_name\":\"a\",\"hits\":[{\"category\":\"USB\"},{\"category\":"
     "\"Print\"}],\"x\":2},{\"user_name\":\"b\",\"hits\":[]},{\"user_name\":\"c\"}],\"t\":true}",
     0,
     {"{\"v\":1,\"dataset\":[{\"user_name\":\"a\",\"hits\":[{\"category\":\"USB\"}],\"x\":2}],"
      "\"t\":true}",
      "{\"v\":1,\"dataset\":[{\"user_name\":\"a\",\"hits\":[{\"category\":\"Print\"}],\"x\":2}],"
      "\"t\":true}",
      "{\"v\":1,\"dataset\":[{\"user_name\":\"b\",\"hits\":[]}],\"t\":true}",
      "{\"v\":1,\"dataset\":[{\"user_name\":\"c\"}],\"t\":true}"}},
    {"DTEX without a dataset", "/api/SIEM/dtex/alert", "{\"data\":[]}", 400, {"$.dataset"}},
    {"DTEX with a dataset that is no array",
     "/api/SIEM/dtex/alert",
     "{\"dataset\":{}}",
     400,
     {"$.dataset"}},
    {"DTEX with an entry that is no object",
     "/api/SIEM/dtex/alert",
     "{\"dataset\":[{},3]}",
     400,
     {"$.dataset[1]: expected an object"}},
    {"DTEX with hits that are no array",
     "/api/SIEM/dtex/alert",
     "{\"dataset\":[{\"hits\":\"x\"}]}",
     400,
     {"$.dataset[0].hits: expected an array"}},
    {"DTEX with more pairs than allowed",
     "/api/SIEM/dtex/alert",
     "{\"dataset\":[{\"hits\":[{},{},{},{},{}]},{\"hits\":[{},{},{},{}]}]}",
     400,
     {"more than max_alerts"}},
    {"DTEX as an array", "/api/SIEM/dtex/alert", "[{\"dataset\":[]}]", 400, {"$.dataset"}},
    {"DTEX with an empty body", "/api/SIEM/dtex/alert", "", 400, {"empty body"}},
};

static void test_bodies(void)
{
    for (size_t i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++) {
        struct webhook_request w;
        char why[WEBHOOK_WHY_MAX] = "";
        const char *name = body_cases[i].name;
        size_t want_n = 0;
        int status;

        CHECK_INT(webhook_target(&w, WEBHOOK_POST, body_cases[i].target, why, sizeof(why)), 0);
        status = webhook_body(&w, str_make(body_cases[i].body, strlen(body_cases[i].body)), &lim,
                              why, sizeof(why));
        if (status != body_cases[i].status) {
            UNIT_FAIL("%s: status %d, want %d (%s)", name, status, body_cases[i].status, why);
        } else if (status != 0) {
            if (strstr(why, body_cases[i].want[0]) == NULL)
                UNIT_FAIL("%s: why '%s' lacks '%s'", name, why, body_cases[i].want[0]);
            else
                unit_passed++;
        } else {
            while (want_n < 4 && body_cases[i].want[want_n] != NULL)
                want_n++;
            CHECK_INT(w.n_alerts, want_n);
            for (size_t k = 0; k < want_n && k < w.n_alerts; k++) {
                CHECK_STR(name, w.alerts[k], body_cases[i].want[k]);
                /* Every alert the mappings see is one valid object, or
                 * empty (the query alone). */
                CHECK(w.alerts[k].len == 0 ||
                      json_validate(w.alerts[k].p, w.alerts[k].len, NULL, NULL) == 0);
            }
            CHECK(w.refs == NULL);
        }
        webhook_request_free(&w);
    }
}

/* idempotency_field: a string (escapes decoded), a number, nothing for
 * another type or a missing field, and each alert its own. */
static void test_refs(void)
{
    struct webhook_limits with = lim;
    struct webhook_request w;
    char why[WEBHOOK_WHY_MAX];
    static const char body[] = "[{\"id\":\"a\\u0062c\"},{\"id\":7},{\"id\":{}},{},{\"id\":\"x\"}]";

    with.idempotency_field = STR_LIT("id");
    CHECK_INT(webhook_target(&w, WEBHOOK_POST, "/v1/alerts/s", why, sizeof(why)), 0);
    CHECK_INT(webhook_body(&w, STR_LIT(body), &with, why, sizeof(why)), 0);
    CHECK_INT(w.n_alerts, 5);
    CHECK_STR("ref 0", w.refs[0], "abc");
    CHECK_STR("ref 1", w.refs[1], "7");
    CHECK_STR("ref 2", w.refs[2], NULL);
    CHECK_STR("ref 3", w.refs[3], NULL);
    CHECK_STR("ref 4", w.refs[4], "x");
    webhook_request_free(&w);
    /* A nested path on the DTEX route reads each pair's own document. */
    with.idempotency_field = STR_LIT("dataset.0.hits.0.id");
    CHECK_INT(webhook_target(&w, WEBHOOK_POST, "/api/SIEM/dtex/alert", why, sizeof(why)), 0);
    CHECK_INT(webhook_body(&w,
                           STR_LIT("{\"dataset\":[{\"hits\":[{\"id\":\"h1\"},{\"id\":\"h2\"}]}]}"),
                           &with, why, sizeof(why)),
              0);
    CHECK_INT(w.n_alerts, 2);
    CHECK_STR("dtex ref 0", w.refs[0], "h1");
    CHECK_STR("dtex ref 1", w.refs[1], "h2");
    webhook_request_free(&w);
}

/* A DTEX body's documents repeat what surrounds their entry and hit: each
 * is measured before anything is allocated, and one longer than an alert
 * may be refuses the body (so a body of many hits beside a large member
 * cannot make max_alerts times its size). */
static void test_dtex_growth(void)
{
    struct webhook_limits many = {100000, 4096, {NULL, 0}};
    struct webhook_request w;
    char why[WEBHOOK_WHY_MAX];
    size_t pad = 8000, hits = 2000, len = 0;
    char *body = malloc(pad + hits * 3 + 64);

    len += (size_t)sprintf(body, "{\"pad\":\"");
    memset(body + len, 'p', pad);
    len += pad;
    len += (size_t)sprintf(body + len, "\",\"dataset\":[{\"hits\":[");
    for (size_t i = 0; i < hits; i++)
        len += (size_t)sprintf(body + len, i ? ",{}" : "{}");
    len += (size_t)sprintf(body + len, "]}]}");
    CHECK_INT(webhook_target(&w, WEBHOOK_POST, "/api/SIEM/dtex/alert", why, sizeof(why)), 0);
    CHECK_INT(webhook_body(&w, str_make(body, len), &many, why, sizeof(why)), 400);
    CHECK(strstr(why, "(dataset entry, hit) 0: its document") != NULL);
    CHECK(w.built == NULL);
    webhook_request_free(&w);
    free(body);
}

int main(void)
{
    test_targets();
    test_bodies();
    test_refs();
    test_dtex_growth();
    return unit_report("test_webhook");
}
