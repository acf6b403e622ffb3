/* SafeTitan dispatch. Each request has a small context holding the
 * caller's callback; the answer is classified here (retry.h) so that the
 * delivery thread only sees a verdict, a status and a reason. */
#include "dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "decide/decision.h"
#include "errors.h"
#include "core/escape.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/version.h"

/* Body bytes quoted in a reason: enough to read SafeTitan's error. */
#define DISPATCH_REASON_BODY 200

struct dispatch {
    const struct dispatch_config *cfg;
    struct http *http;
    char *key_header; /* "<api_key_header>: <key>" (secret) */
    size_t key_header_len;
    char *orch_code; /* the key, percent-encoded for the orchestrator's query (secret) */
    size_t orch_code_len;
    struct jsonw body;
};

/* One request in flight. */
struct dispatch_req {
    dispatch_cb cb;
    void *arg;
    int timeout_s, retry_max_s;
    /* Reasons may quote the answer's body: not for the orchestrator, whose
     * error pages may echo the request URL, and with it the secret code. */
    int quote_body;
};

/* A curl-escaped copy of s (free with curl_free), or NULL. */
static char *dispatch_escape(const char *s, size_t len)
{
    return curl_easy_escape(NULL, s, (int)len);
}

int dispatch_new(const struct dispatch_config *cfg, struct http *http, struct dispatch **out)
{
    struct dispatch *d;
    char why[256];
    char *key = NULL, *code = NULL;
    size_t key_len = 0;
    int rc;

    *out = NULL;
    if (cfg->mode == DISPATCH_DRY_RUN)
        return 0;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return ERR_NOMEM;
    d->cfg = cfg;
    d->http = http;
    jsonw_init(&d->body, DISPATCH_MAX_BODY);
    /* Kept only in the form it is sent in. */
    rc = secret_read(cfg->api_key_file, 1, SECRET_MAX, 1, &key, &key_len, why, sizeof(why));
    if (rc != 0) {
        log_error("dispatch.api_key_file: %s: the API key: %s", cfg->api_key_file, why);
        goto out;
    }
    rc = ERR_NOMEM;
    if (cfg->mode == DISPATCH_DIRECT) {
        d->key_header_len = strlen(cfg->api_key_header) + 2 + key_len;
        d->key_header = malloc(d->key_header_len + 1);
        if (d->key_header == NULL)
            goto out;
        snprintf(d->key_header, d->key_header_len + 1, "%s: %s", cfg->api_key_header, key);
    } else {
        code = dispatch_escape(key, key_len);
        if (code == NULL)
            goto out;
        d->orch_code_len = strlen(code);
        d->orch_code = strdup(code);
        if (d->orch_code == NULL)
            goto out;
    }
    *out = d; /* transferred */
    d = NULL;
    rc = 0;
out:
    secret_free(key, key_len);
    if (code != NULL) {
        OPENSSL_cleanse(code, strlen(code));
        curl_free(code);
    }
    dispatch_free(d);
    return rc;
}

void dispatch_free(struct dispatch *d)
{
    if (d == NULL)
        return;
    secret_free(d->key_header, d->key_header_len);
    secret_free(d->orch_code, d->orch_code_len);
    jsonw_free(&d->body);
    free(d);
}

/* The reason a dead-letter or audit line gives: the status and, with
 * quote_body, the first bytes of the body (escaped: it is the far side's
 * text), or why no answer came. */
static void dispatch_reason(const struct http_response *res, int timeout_s, int quote_body,
                            char *buf, size_t cap)
{
    if (res->status == 0) {
        if (res->error != NULL && strstr(res->error, "imeout") != NULL)
            snprintf(buf, cap, "no answer within %d s (%s)", timeout_s, res->error);
        else
            snprintf(buf, cap, "%s", res->error != NULL ? res->error : "no answer");
        return;
    }
    if (res->body_len == 0 || !quote_body) {
        snprintf(buf, cap, "HTTP %d", res->status);
        return;
    }
    {
        /* The far side's bytes: control characters made visible. */
        char body[DISPATCH_REASON_BODY * ESCAPE_MAX_EXPANSION + 1];
        size_t n = res->body_len < DISPATCH_REASON_BODY ? res->body_len : DISPATCH_REASON_BODY;

        body[escape_text(body, sizeof(body) - 1, res->body, n, ESCAPE_LOG)] = '\0';
        snprintf(buf, cap, "HTTP %d: %s%s", res->status, body,
                 res->body_len > n || res->truncated ? "..." : "");
    }
}

void dispatch_classify(const struct http_response *res, int timeout_s, int retry_max_s,
                       int quote_body, char *reason, size_t cap, struct dispatch_result *out)
{
    /* A 2xx whose body ran over the cap was still accepted. */
    dispatch_reason(res, timeout_s, quote_body, reason, cap);
    out->status = res->status;
    out->verdict = retry_classify(res->status);
    out->reason = reason;
    out->retry_after_s = out->verdict == RETRY_AGAIN
                             ? retry_after_s(res->retry_after, res->date, time(NULL), retry_max_s)
                             : -1;
}

static void dispatch_on_response(void *arg, const struct http_response *res)
{
    struct dispatch_req *req = arg;
    char reason[DISPATCH_REASON_MAX];
    struct dispatch_result r;

    dispatch_classify(res, req->timeout_s, req->retry_max_s, req->quote_body, reason,
                      sizeof(reason), &r);
    req->cb(req->arg, &r);
    free(req);
}

/* The direct mode's JSON body, in d->body. */
static int dispatch_direct_body(struct dispatch *d, const struct dispatch_alert *a)
{
    const struct dispatch_fields *f = &d->cfg->fields;
    char when[LOG_TIME_SIZE];

    log_format_time(a->occurred, when);
    jsonw_reset(&d->body);
    jsonw_object_begin(&d->body);
    jsonw_key(&d->body, f->event);
    jsonw_str(&d->body, a->event);
    jsonw_key(&d->body, f->email);
    jsonw_cstr(&d->body, a->email);
    jsonw_key(&d->body, f->id);
    jsonw_cstr(&d->body, a->key);
    jsonw_key(&d->body, f->occurred_at);
    jsonw_cstr(&d->body, when);
    jsonw_object_end(&d->body);
    return d->body.err;
}

/* The orchestrator's URL: base, path and query, every value
 * percent-encoded. Returns it (malloc'd; it holds the secret code: free
 * with secret_free) or NULL. */
static char *dispatch_orchestrator_url(struct dispatch *d, const struct dispatch_alert *a,
                                       size_t *len)
{
    const struct dispatch_config *c = d->cfg;
    const char *base = c->url;
    size_t base_len = strlen(base);
    char *source = dispatch_escape(c->source, strlen(c->source));
    char *orch = dispatch_escape(c->orch_id, strlen(c->orch_id));
    char *org = dispatch_escape(c->org_id, strlen(c->org_id));
    char *user = dispatch_escape(a->email, strlen(a->email));
    char *rule = dispatch_escape(a->event.p, a->event.len);
    char *url = NULL;

    while (base_len > 0 && base[base_len - 1] == '/')
        base_len--;
    if (source != NULL && orch != NULL && org != NULL && user != NULL && rule != NULL) {
        *len = base_len + strlen(source) + d->orch_code_len + strlen(orch) + strlen(org) +
               strlen(user) + strlen(rule) + 80;
        url = malloc(*len);
        if (url != NULL)
            snprintf(url, *len,
                     "%.*s/api/event/%s/alert?code=%s&orchid=%s&orgId=%s&user=%s"
                     "&ruleName=%s",
                     (int)base_len, base, source, d->orch_code, orch, org, user, rule);
    }
    curl_free(source);
    curl_free(orch);
    curl_free(org);
    curl_free(user);
    curl_free(rule);
    return url;
}

int dispatch_send(struct dispatch *d, const struct dispatch_alert *a, dispatch_cb cb, void *arg)
{
    char idem[DECISION_KEY_SIZE + 32], agent[64];
    const char *headers[6] = {NULL};
    struct http_request hr = {
        .method = "POST",
        .connect_timeout_ms = (long)d->cfg->connect_timeout_s * 1000,
        .timeout_ms = (long)d->cfg->timeout_s * 1000,
        .ca_file = d->cfg->ca_file,
        .max_response_body = DISPATCH_MAX_BODY,
        .headers = headers,
    };
    struct dispatch_req *req = malloc(sizeof(*req));
    char *url = NULL;
    size_t url_len = 0, n = 0;
    int rc = ERR_NOMEM;

    if (req == NULL)
        return ERR_NOMEM;
    *req = (struct dispatch_req){cb, arg, d->cfg->timeout_s, d->cfg->retry_max_s,
                                 d->cfg->mode == DISPATCH_DIRECT};
    snprintf(idem, sizeof(idem), "Idempotency-Key: %s", a->key);
    snprintf(agent, sizeof(agent), "User-Agent: rtr-agent/%s", RTR_VERSION);
    headers[n++] = idem;
    headers[n++] = agent;
    if (d->cfg->mode == DISPATCH_DIRECT) {
        rc = dispatch_direct_body(d, a);
        if (rc != 0)
            goto out;
        headers[n++] = "Content-Type: application/json";
        headers[n++] = d->key_header;
        hr.url = d->cfg->url;
        hr.body = d->body.buf;
        hr.body_len = d->body.len;
    } else {
        url = dispatch_orchestrator_url(d, a, &url_len);
        if (url == NULL)
            goto out;
        hr.url = url;
        hr.body = "";
    }
    rc = http_start(d->http, &hr, dispatch_on_response, req);
out:
    secret_free(url, url_len);
    if (rc != 0)
        free(req);
    return rc;
}
