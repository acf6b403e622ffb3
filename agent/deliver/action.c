/* Response actions (action.h): each send renders the action's templates
 * into buffers of its own (template_render_max: a rendering never fails
 * for room), starts one request, and maps its answer to a dispatch_result
 * so that the job machine treats every kind of delivery alike. */
#include "action.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approval.h"
#include "core/log.h"
#include "core/mail.h"
#include "core/secret.h"
#include "core/version.h"
#include "decide/decision.h"
#include "errors.h"

/* Headers a webhook request carries besides the action's own. */
#define ACTION_FIXED_HEADERS 4

struct actions {
    const struct config *cfg;
    struct http *http;
    const struct approval_secret *approval_secret; /* NULL: approvals cannot be sent */
    struct graph *graph;                           /* identity_graph's, or NULL */
    char *smtp_password;                           /* secret: smtp.password_file's content */
    size_t smtp_password_len;
};

/* One request in flight (an approval's: one per approver, answered once
 * the last came back). */
struct action_req {
    dispatch_cb cb;
    void *arg;
    int timeout_s, retry_max_s;
    size_t left;                  /* messages not answered yet */
    struct dispatch_result worst; /* the worst answer so far: again < dead < done */
    char reason[DISPATCH_REASON_MAX];
};

void actions_set_approval_secret(struct actions *s, const struct approval_secret *secret)
{
    s->approval_secret = secret;
}

int actions_new(const struct config *cfg, struct http *http, struct graph *graph,
                struct actions **out)
{
    struct actions *s = calloc(1, sizeof(*s));
    char why[256];
    int rc;

    *out = NULL;
    if (s == NULL)
        return ERR_NOMEM;
    s->cfg = cfg;
    s->http = http;
    s->graph = graph;
    if (cfg->smtp.url != NULL && cfg->smtp.username != NULL) {
        rc = secret_read(cfg->smtp.password_file, 1, SECRET_MAX, 1, &s->smtp_password,
                         &s->smtp_password_len, why, sizeof(why));
        if (rc != 0) {
            log_error("smtp.password_file: %s: the SMTP password: %s", cfg->smtp.password_file,
                      why);
            free(s);
            return rc;
        }
    }
    *out = s;
    return 0;
}

void actions_free(struct actions *s)
{
    if (s == NULL)
        return;
    secret_free(s->smtp_password, s->smtp_password_len);
    free(s);
}

/* t rendered with v into a fresh NUL-terminated buffer (free it), or NULL
 * when out of memory; NULL t renders "". */
static char *action_render(const struct template *t, const struct template_values *v, size_t *len)
{
    size_t cap = t != NULL ? template_render_max(t) + 1 : 1;
    char *buf = malloc(cap);

    *len = 0;
    if (buf == NULL)
        return NULL;
    if (t != NULL && template_render(t, v, buf, cap, len) != 0) {
        free(buf); /* cannot happen: cap is the most it writes */
        return NULL;
    }
    buf[*len] = '\0';
    return buf;
}

static void action_on_http(void *arg, const struct http_response *res)
{
    struct action_req *req = arg;
    char reason[DISPATCH_REASON_MAX];
    struct dispatch_result r;

    /* A ticketing system's error text helps and holds no secret of ours. */
    dispatch_classify(res, req->timeout_s, req->retry_max_s, 1, reason, sizeof(reason), &r);
    req->cb(req->arg, &r);
    free(req);
}

/* How an answer ranks among an approval's messages: one that went out
 * makes the approval pending (the others' failures stay in its reason: an
 * approver who left must not hold the rest back); with none, one to send
 * again sends them all again (same Message-IDs), else it is dead. */
static int action_badness(enum retry_verdict v)
{
    return v == RETRY_DONE ? 0 : v == RETRY_AGAIN ? 1 : 2;
}

static void action_on_mail(void *arg, const struct mail_result *res)
{
    struct action_req *req = arg;

    size_t used = strlen(req->reason);

    if (req->worst.reason == NULL ||
        action_badness(res->verdict) < action_badness(req->worst.verdict))
        req->worst = (struct dispatch_result){res->verdict, res->smtp_code, -1, req->reason};
    if (res->verdict != RETRY_DONE && used + 2 < sizeof(req->reason))
        snprintf(req->reason + used, sizeof(req->reason) - used, "%s%s", used > 0 ? "; " : "",
                 res->reason != NULL ? res->reason : "failed");
    if (req->left > 1) {
        req->left--;
        return;
    }
    req->cb(req->arg, &req->worst);
    free(req);
}

static int action_webhook(struct actions *s, const struct policy_action *a,
                          const struct template_values *v, const char *key, struct action_req *req)
{
    const struct dispatch_config *dc = &s->cfg->dispatch;
    const char *headers[ACTION_FIXED_HEADERS + POLICY_MAX_HEADERS + 1] = {NULL};
    char *lines[POLICY_MAX_HEADERS] = {NULL};
    char idem[DECISION_KEY_SIZE + 32], agent[64], *body, *secret = NULL;
    size_t body_len, n = 0, secret_len = 0;
    struct http_request hr = {
        .method = "POST",
        .url = a->url,
        .headers = headers,
        .ca_file = a->ca_file,
        .connect_timeout_ms = (long)dc->connect_timeout_s * 1000,
        .timeout_ms = (long)dc->timeout_s * 1000,
        .max_response_body = DISPATCH_MAX_BODY,
    };
    int rc = ERR_NOMEM;

    body = action_render(a->body, v, &body_len);
    if (body == NULL)
        return ERR_NOMEM;
    snprintf(idem, sizeof(idem), "Idempotency-Key: %s", key);
    snprintf(agent, sizeof(agent), "User-Agent: rtr-agent/%s", RTR_VERSION);
    headers[n++] = "Content-Type: application/json";
    headers[n++] = idem;
    headers[n++] = agent;
    for (size_t i = 0; i < a->n_headers; i++) {
        size_t len, name = strlen(a->headers[i].name);
        char *value = action_render(a->headers[i].value, v, &len);

        lines[i] = value != NULL ? malloc(name + 2 + len + 1) : NULL;
        if (lines[i] == NULL) {
            free(value);
            goto out;
        }
        snprintf(lines[i], name + 2 + len + 1, "%s: %s", a->headers[i].name, value);
        free(value);
        headers[n++] = lines[i];
    }
    if (a->secret != NULL) {
        secret_len = strlen(a->secret_header) + 2 + strlen(a->secret);
        secret = malloc(secret_len + 1);
        if (secret == NULL)
            goto out;
        snprintf(secret, secret_len + 1, "%s: %s", a->secret_header, a->secret);
        headers[n++] = secret;
    }
    hr.body = body;
    hr.body_len = body_len;
    req->timeout_s = dc->timeout_s;
    req->retry_max_s = dc->retry_max_s;
    rc = http_start(s->http, &hr, action_on_http, req); /* copies headers and body */
out:
    for (size_t i = 0; i < a->n_headers; i++)
        free(lines[i]);
    secret_free(secret, secret_len);
    free(body);
    return rc;
}

static int action_email(struct actions *s, const struct policy_action *a,
                        const struct template_values *v, const char *key, struct action_req *req)
{
    const struct smtp_config *sc = &s->cfg->smtp;
    struct mail_request mr = {
        .url = sc->url,
        .from = sc->from,
        .to = a->to,
        .username = sc->username,
        .password = s->smtp_password,
        .message_id = key,
        .ca_file = sc->ca_file,
        .connect_timeout_ms = (long)sc->connect_timeout_s * 1000,
        .timeout_ms = (long)sc->timeout_s * 1000,
    };
    size_t subject_len;
    char *subject, *text;
    int rc = ERR_NOMEM;

    if (sc->url == NULL)
        return ERR_INVALID;
    subject = action_render(a->subject, v, &subject_len);
    text = action_render(a->text, v, &mr.body_len);
    if (subject != NULL && text != NULL) {
        mr.subject = subject;
        mr.body = text;
        rc = mail_send(s->http, &mr, action_on_mail, req);
    }
    free(subject);
    free(text);
    return rc;
}

/* An approval: one email per approver, each with the links of its own
 * token (approval.h) as {{approve_url}} and {{deny_url}}. */
static int action_approval(struct actions *s, const struct policy_action *a,
                           const struct template_values *v, const char *key,
                           struct timespec occurred, struct action_req *req)
{
    const char *base = s->cfg->approvals.url;
    struct template_values mine = *v;
    char token[APPROVAL_TOKEN_MAX], approve[1024], deny[1024], id[96];
    size_t n = 0, sent = 0, len;
    int rc = 0;

    if (s->approval_secret == NULL || base == NULL)
        return ERR_INVALID;
    len = strlen(base);
    while (a->to[n] != NULL)
        n++;
    while (len > 0 && base[len - 1] == '/')
        len--;
    req->left = n;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *one[2] = {a->to[i], NULL};
        struct policy_action single = *a;
        approval_token(s->approval_secret, key,
                       (int64_t)occurred.tv_sec * 1000 + occurred.tv_nsec / 1000000, (unsigned)i,
                       token);
        snprintf(approve, sizeof(approve), "%.*s/v1/approvals/%s?decision=approve", (int)len, base,
                 token);
        snprintf(deny, sizeof(deny), "%.*s/v1/approvals/%s?decision=deny", (int)len, base, token);
        mine.vars[TEMPLATE_APPROVE_URL] = str_make(approve, strlen(approve));
        mine.vars[TEMPLATE_DENY_URL] = str_make(deny, strlen(deny));
        /* Each approver's message its own Message-ID: the key, then who. */
        snprintf(id, sizeof(id), "%.*s-%zu", 48, key, i);
        single.to = one;
        rc = action_email(s, &single, &mine, id, req);
        sent += rc == 0;
    }
    if (rc != 0 && sent > 0) {
        /* Those started answer; the rest count as a failure to send again. */
        struct mail_result failed = {RETRY_AGAIN, 0, "out of memory"};

        for (size_t i = sent; i < n; i++)
            action_on_mail(req, &failed);
        return 0;
    }
    return rc;
}

static void action_on_graph(void *arg, const struct graph_contain_result *res)
{
    struct action_req *req = arg;
    struct dispatch_result r = {
        .verdict = res->verdict,
        .status = res->status,
        .retry_after_s = res->retry_after_s,
        .reason = res->reason,
    };

    req->cb(req->arg, &r);
    free(req);
}

/* The user is the resolved email (policy.h says why). */
static int action_graph(struct actions *s, const struct policy_action *a,
                        const struct template_values *v, struct action_req *req)
{
    if (s->graph == NULL)
        return ERR_INVALID;
    return graph_contain(s->graph,
                         a->operation == POLICY_GRAPH_DISABLE_ACCOUNT ? GRAPH_DISABLE_ACCOUNT
                                                                      : GRAPH_REVOKE_SESSIONS,
                         v->vars[TEMPLATE_EMAIL], action_on_graph, req);
}

int actions_send(struct actions *s, const struct policy_action *a, const struct template_values *v,
                 const char *key, struct timespec occurred, dispatch_cb cb, void *arg)
{
    struct action_req *req = malloc(sizeof(*req));
    int rc = ERR_INVALID;

    if (req == NULL)
        return ERR_NOMEM;
    *req = (struct action_req){.cb = cb, .arg = arg, .left = 1};
    if (a->type == POLICY_ACTION_WEBHOOK)
        rc = action_webhook(s, a, v, key, req);
    else if (a->type == POLICY_ACTION_EMAIL)
        rc = action_email(s, a, v, key, req);
    else if (a->type == POLICY_ACTION_APPROVAL)
        rc = action_approval(s, a, v, key, occurred, req);
    else if (a->type == POLICY_ACTION_GRAPH)
        rc = action_graph(s, a, v, req);
    if (rc != 0)
        free(req);
    return rc;
}
