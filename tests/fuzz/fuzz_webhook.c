/* Fuzz target: webhook_target and webhook_body, as the HTTP intake and
 * `replay --http` call them. Byte 0 picks the method (b % 3: GET, POST,
 * other) and, with bit 2, an idempotency field ("id"); then the target up
 * to the first '\n', then the body. Asserts the contract: a status is 0 or
 * one of 400, 404, 405 (503 only for memory) with a reason; an accepted
 * target has a source of [A-Za-z0-9._-] and query pairs that are whole
 * "name\0value\0" strings, none named "code" in any case or spelling;
 * an accepted body has at most max_alerts alerts, each a valid JSON object of
 * at most max_alert_bytes, or empty (a query route's query alone); refs,
 * when asked for, sit inside their own buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingest/webhook.h"

#define FUZZ_TARGET_MAX 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static int source_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static void check_target(const struct webhook_request *w)
{
    size_t n = strlen(w->source), pos = 0;

    check(n > 0 && n <= WEBHOOK_SOURCE_MAX);
    for (size_t i = 0; i < n; i++)
        check(source_char(w->source[i]));
    check(w->code == NULL || (w->code_len > 0 && strlen(w->code) == w->code_len));
    while (w->query.p != NULL && pos < w->query.len) {
        const char *name = w->query.p + pos;
        size_t nlen = strnlen(name, w->query.len - pos), vlen;

        check(nlen > 0 && pos + nlen < w->query.len);
        check(strcasecmp(name, "code") != 0);
        vlen = strnlen(name + nlen + 1, w->query.len - pos - nlen - 1);
        check(pos + nlen + 1 + vlen < w->query.len);
        pos += nlen + vlen + 2;
    }
    check(pos == w->query.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum webhook_method methods[] = {WEBHOOK_GET, WEBHOOK_POST, WEBHOOK_OTHER};
    struct webhook_limits lim = {16, 4096, {NULL, 0}};
    struct webhook_request w;
    char target[FUZZ_TARGET_MAX + 1], why[WEBHOOK_WHY_MAX];
    const uint8_t *nl;
    size_t tlen;
    int status;

    if (size < 1)
        return 0;
    if (data[0] & 4)
        lim.idempotency_field = str_make("id", 2);
    nl = memchr(data + 1, '\n', size - 1);
    tlen = nl != NULL ? (size_t)(nl - data - 1) : size - 1;
    if (tlen > FUZZ_TARGET_MAX)
        return 0;
    memcpy(target, data + 1, tlen);
    target[tlen] = '\0';
    why[0] = '\0';
    status = webhook_target(&w, methods[data[0] % 3], target, why, sizeof(why));
    check(status == 0 || status == 400 || status == 404 || status == 405 || status == 503);
    check(status == 0 || why[0] != '\0');
    if (status == 0) {
        struct str body =
            nl != NULL ? str_make((const char *)nl + 1, size - tlen - 2) : str_make("", 0);

        check_target(&w);
        why[0] = '\0';
        status = webhook_body(&w, body, &lim, why, sizeof(why));
        check(status == 0 || status == 400 || status == 503);
        check(status == 0 || why[0] != '\0');
        if (status == 0) {
            check(w.n_alerts <= lim.max_alerts); /* 0: "[]", an empty dataset */
            for (size_t i = 0; i < w.n_alerts; i++) {
                struct str a = w.alerts[i];

                check(a.len <= lim.max_alert_bytes);
                check(a.len == 0 ? w.route != WEBHOOK_ALERTS && w.route != WEBHOOK_DTEX
                                 : json_validate(a.p, a.len, NULL, NULL) == 0 &&
                                       json_kind_of(a.p, a.len) == JSON_OBJECT);
                check(lim.idempotency_field.p == NULL || w.refs != NULL);
            }
        }
    }
    webhook_request_free(&w);
    return 0;
}
