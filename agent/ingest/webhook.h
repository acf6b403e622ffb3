/* The webhook routes of the HTTP intake, without the HTTP server: which
 * route a request target names, its query parameters, and the alerts its
 * body holds. The daemon's intake (http_intake.c) and `replay --http` share
 * it, so a fixture decides exactly as the daemon would. No libevent: a
 * request is a method, a target ("/path?query") and a body.
 *
 * Routes (the orchestrator's documented endpoints, and our own):
 *
 *   POST     /v1/alerts/{source}                  http.source {source}
 *   GET|POST /api/SIEM/logpoint/alert?...         http.source "logpoint"
 *   GET|POST /api/SIEM/logrhythm/smartresponse?.. http.source "logrhythm"
 *   POST     /api/SIEM/dtex/alert                 http.source "dtex"
 *   GET|POST /api/event/{source}/alert?code=...   http.source {source}
 *   GET|POST /v1/approvals/{token}                an approver's decision (no alert:
 *                                                 the intake answers it itself)
 *
 * The fixed parts of a path compare without regard to case (the
 * orchestrator ran on Azure Functions, whose routes do), {source} is kept
 * as sent: [A-Za-z0-9._-], 1..64 bytes.
 *
 * Bodies: one JSON object, an array of objects or JSON lines, one alert
 * per object; on the query routes an empty body is one alert made of the
 * query alone. The DTEX route makes one alert per (dataset entry, hit):
 * the body with "dataset" cut down to that entry and its "hits" to that
 * hit, so a mapping reads json.dataset.0.user_name and
 * json.dataset.0.hits.0.category whatever the body held. Everything is
 * checked before anything is decided: a request decides whole or not at
 * all. */
#ifndef RTR_WEBHOOK_H
#define RTR_WEBHOOK_H

#include <stddef.h>

#include "json.h"
#include "str.h"

#define WEBHOOK_SOURCE_MAX 64
/* Room for a reason: a JSON error and what the route adds to it. */
#define WEBHOOK_WHY_MAX (JSON_ERROR_MAX + 128)

enum webhook_route {
    WEBHOOK_ALERTS,    /* /v1/alerts/{source} */
    WEBHOOK_LOGPOINT,  /* /api/SIEM/logpoint/alert */
    WEBHOOK_LOGRHYTHM, /* /api/SIEM/logrhythm/smartresponse */
    WEBHOOK_DTEX,      /* /api/SIEM/dtex/alert */
    WEBHOOK_EVENT,     /* /api/event/{source}/alert (the hosted form) */
    WEBHOOK_APPROVAL, /* /v1/approvals/{token}: an approver's link (no alerts; source: the token) */
};
/* How many routes: stats.h counts each, then the paths that are none. */
#define WEBHOOK_ROUTES 6

enum webhook_method {
    WEBHOOK_GET,
    WEBHOOK_POST,
    WEBHOOK_OTHER,
};

struct webhook_limits {
    size_t max_alerts;      /* alerts per request */
    size_t max_alert_bytes; /* one alert's JSON text */
    /* The body's path that identifies an alert (its idempotency source)
     * when the request carries no Idempotency-Key; absent: none. */
    struct str idempotency_field;
};

struct webhook_request {
    enum webhook_route route;
    const char *allow; /* the route's methods, for a 405's Allow header */
    char source[WEBHOOK_SOURCE_MAX + 1];
    /* The code parameter (the orchestrator's API key), decoded; NULL when
     * not sent. Never a query field (nor is any name that decodes to
     * "code" in any case), wiped by webhook_request_free. */
    char *code;
    size_t code_len;
    /* The other parameters, decoded: "name\0value\0" pairs (message.h's
     * http_query); absent for a target without them. */
    struct str query;
    /* The alerts: each one JSON object's text (a slice of the body, or of
     * the documents the DTEX route built), or "" for the query alone. */
    struct str *alerts;
    size_t n_alerts;
    /* Per alert, its idempotency_field's value, absent when it has none
     * (then NULL when the limits named no field). */
    struct str *refs;
    char *query_buf; /* what query points into */
    char *built;     /* the DTEX route's documents */
    char *ref_buf;   /* the refs' text */
};

/* Reads method and target into *w (zeroed here). Returns 0; else the HTTP
 * status to answer with why set: 404 for a path that is no route, 405 for
 * a method the route does not take (w->allow says which), 400 for a query
 * that cannot be read (a bad %-escape, %00, invalid UTF-8, a parameter
 * given twice). The code is read even when the route is unknown or the
 * method wrong, so that authentication can be checked first. */
int webhook_target(struct webhook_request *w, enum webhook_method method, const char *target,
                   char *why, size_t cap);

/* Splits body (kept alive by the caller while w's alerts are used) into
 * w's alerts under lim. Returns 0, or 400 with why naming the problem
 * (and its JSON path). */
int webhook_body(struct webhook_request *w, struct str body, const struct webhook_limits *lim,
                 char *why, size_t cap);

/* Frees what w holds (w itself is the caller's); the code is wiped. */
void webhook_request_free(struct webhook_request *w);

#endif
