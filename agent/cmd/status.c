#include "status.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "errors.h"
#include "core/evloop.h"
#include "core/log.h"
#include "core/sockaddr.h"
#include "core/stats.h"
#include "core/version.h"
#include "ingest/tls.h"

/* Requests are tiny GETs: anything large or slow is not a scraper. The
 * timeout is evhttp's idle timeout and also each request's whole budget,
 * from the accept (or the previous request) to the end of this one: a
 * sender trickling bytes resets the first, never the second. */
#define STATUS_TIMEOUT_S   10
#define STATUS_MAX_HEADERS 8192

/* A scraper or two and a health check need a few; beyond this a
 * connection is closed at once. */
#define STATUS_MAX_CONNECTIONS 32

/* One connection evhttp serves. evhttp (libevent 2.1) tells nobody when
 * it accepts or frees a connection, but it takes each connection's
 * bufferevent from status_on_new_bev. An extra reference keeps that
 * bufferevent readable after evhttp freed it, and bufferevent_free clears
 * its callbacks: no callback means evhttp is done with it
 * (status_conn_gone). */
struct status_conn {
    TAILQ_ENTRY(status_conn) link;
    struct bufferevent *bev;
    struct event *deadline; /* cuts the connection: see status_conn_cut */
    int over_cap;           /* cut at once: STATUS_MAX_CONNECTIONS were open */
};

TAILQ_HEAD(status_conns, status_conn);

struct status {
    struct evhttp *http;
    struct event *retry; /* re-enables the listener after an accept error */
    const struct status_feed *feed;
    int unhealthy_after_s;     /* status.unhealthy_after_s */
    double started;            /* Unix time: process_start_time_seconds */
    struct status_conns conns; /* live ones, and gone ones not yet reaped */
    struct sockaddr_storage bound;
};

static struct log_ratelimit status_rl_refused = LOG_RATELIMIT_INIT(10, 5);
static struct log_ratelimit status_rl_cut = LOG_RATELIMIT_INIT(10, 5);

/* evhttp_bind_listener makes the listener's callback argument evhttp's
 * own, so its error callback finds the endpoint here; the daemon has one. */
static struct status *status_serving;

static void status_metric(struct evbuffer *out, const char *name, const char *type,
                          const char *help, unsigned long long value)
{
    evbuffer_add_printf(out, "# HELP rtr_agent_%s %s\n# TYPE rtr_agent_%s %s\nrtr_agent_%s %llu\n",
                        name, help, name, type, name, value);
}

/* Seconds as Prometheus writes them: a float, millisecond resolution. */
static void status_metric_seconds(struct evbuffer *out, const char *name, const char *help,
                                  double value)
{
    evbuffer_add_printf(out,
                        "# HELP rtr_agent_%s %s\n# TYPE rtr_agent_%s counter\nrtr_agent_%s %.3f\n",
                        name, help, name, name, value);
}

/* Unix time, in seconds with their fraction. */
static double status_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Every entry of stats.h: a family (the metric up to its labels) gets its
 * HELP and TYPE once, before its first member; the table keeps members
 * together. */
static void status_table(struct evbuffer *out, const uint64_t sum[STAT_COUNT], int64_t now)
{
    const char *prev = "";
    size_t prev_len = 0;

    for (int i = 0; i < STAT_COUNT; i++) {
        enum stats_counter c = (enum stats_counter)i;
        const char *metric = stats_metric(c);
        size_t len = strcspn(metric, "{");
        enum stats_kind kind = stats_kind(c);
        uint64_t v = sum[i];
        int summary_sum = 0;

        /* A summary's family is its name without "_sum" or "_count". */
        if (kind == STATS_SUMMARY) {
            summary_sum = len > 4 && strcmp(metric + len - 4, "_sum") == 0;
            len -= summary_sum ? 4 : strlen("_count");
        }
        if (len != prev_len || strncmp(metric, prev, len) != 0)
            evbuffer_add_printf(out, "# HELP rtr_agent_%.*s %s\n# TYPE rtr_agent_%.*s %s\n",
                                (int)len, metric, stats_help(c), (int)len, metric,
                                kind == STATS_COUNTER   ? "counter"
                                : kind == STATS_SUMMARY ? "summary"
                                                        : "gauge");
        prev = metric;
        prev_len = len;
        if (summary_sum) { /* counted in milliseconds */
            evbuffer_add_printf(out, "rtr_agent_%s %.3f\n", metric, (double)v / 1000.0);
            continue;
        }
        if (kind == STATS_AGE)
            v = v != 0 && now > (int64_t)v ? (uint64_t)now - v : 0;
        evbuffer_add_printf(out, "rtr_agent_%s %llu\n", metric, (unsigned long long)v);
    }
}

/* The commit out of version_text()'s "VERSION (git COMMIT)"; "" without. */
static void status_build_info(struct evbuffer *out)
{
    const char *text = version_text();
    const char *git = strstr(text, "(git ");
    int n = git != NULL ? (int)strcspn(git + 5, ")") : 0;

    evbuffer_add_printf(out,
                        "# HELP rtr_agent_build_info the agent's version and the git commit it "
                        "was built from (empty: not built from git); always 1\n"
                        "# TYPE rtr_agent_build_info gauge\n"
                        "rtr_agent_build_info{version=\"%s\",commit=\"%.*s\"} 1\n",
                        RTR_VERSION, n, git != NULL ? git + 5 : "");
}

/* Per listener (listener: its bound address): every one, the stream
 * ones, the TLS ones. */
static void status_listeners(struct status *s, struct evbuffer *out)
{
    const struct status_feed *f = s->feed;
    const char *name = "listener_received_bytes_total";

    evbuffer_add_printf(out,
                        "# HELP rtr_agent_%s received_bytes_total per listener (a silent "
                        "listener: its senders stopped)\n"
                        "# TYPE rtr_agent_%s counter\n",
                        name, name);
    for (size_t i = 0; i < f->n_ep; i++)
        evbuffer_add_printf(out, "rtr_agent_%s{listener=\"%s\",proto=\"%s\"} %llu\n", name,
                            f->ep[i].name, input_proto_name(f->ep[i].lc),
                            (unsigned long long)f->listener_bytes(f->arg, i));
    name = "listener_frames_truncated_total";

    evbuffer_add_printf(out,
                        "# HELP rtr_agent_%s frames left without their terminator or count at "
                        "the end of their connection, per TCP/TLS/RELP listener\n"
                        "# TYPE rtr_agent_%s counter\n",
                        name, name);
    for (size_t i = 0; i < f->n_ep; i++) {
        if (f->ep[i].lc->proto == LISTEN_UDP)
            continue;
        evbuffer_add_printf(
            out, "rtr_agent_%s{listener=\"%s\",proto=\"%s\"} %llu\n", name, f->ep[i].name,
            input_proto_name(f->ep[i].lc),
            (unsigned long long)__atomic_load_n(&f->ep[i].frames_truncated, __ATOMIC_RELAXED));
    }
    name = "tls_certificate_expiry_timestamp_seconds";
    evbuffer_add_printf(out,
                        "# HELP rtr_agent_%s when the certificate of each TLS listener expires "
                        "(notAfter, Unix time; a SIGHUP reads it again)\n"
                        "# TYPE rtr_agent_%s gauge\n",
                        name, name);
    for (size_t i = 0; i < f->n_ep; i++) {
        int64_t not_after;

        if (f->ep[i].tls != NULL && tls_server_not_after(f->ep[i].tls, &not_after) == 0)
            evbuffer_add_printf(out, "rtr_agent_%s{listener=\"%s\"} %lld\n", name, f->ep[i].name,
                                (long long)not_after);
    }
}

/* One sample of rtr_agent_mapping_decisions_total: the name as a label
 * value (backslash, double quote and line feed escaped, as the text format
 * asks). */
static void status_mapping_sample(void *arg, const char *name, uint64_t n)
{
    struct evbuffer *out = arg;

    evbuffer_add_printf(out, "rtr_agent_mapping_decisions_total{mapping=\"");
    for (const char *c = name; *c != '\0'; c++) {
        if (*c == '\\' || *c == '"')
            evbuffer_add_printf(out, "\\%c", *c);
        else if (*c == '\n')
            evbuffer_add(out, "\\n", 2);
        else
            evbuffer_add(out, c, 1);
    }
    evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)n);
}

static void status_mappings(const struct mapping_counts *mc, struct evbuffer *out)
{
    evbuffer_add_printf(out,
                        "# HELP rtr_agent_mapping_decisions_total decisions by the mapping that "
                        "made them (past %d names, the others together as "
                        "mapping=\"%s\")\n"
                        "# TYPE rtr_agent_mapping_decisions_total counter\n",
                        MAPPING_COUNTS_MAX, MAPPING_COUNTS_OTHER);
    mapping_counts_each(mc, status_mapping_sample, out);
}

static void status_metrics(struct status *s, struct evbuffer *out)
{
    const struct status_feed *f = s->feed;
    uint64_t sum[STAT_COUNT];
    long long open = 0;

    stats_sum(sum);
    status_table(out, sum, (int64_t)status_now());
    status_metric(out, "udp_kernel_drops_total", "counter",
                  "UDP datagrams the kernel dropped at the agent's sockets, mostly for a full "
                  "receive buffer (SO_MEMINFO drops, read when scraped; the only source)",
                  f->udp_drops(f->arg));
    for (size_t i = 0; i < f->n_ep; i++)
        open += __atomic_load_n(&f->ep[i].open, __ATOMIC_RELAXED);
    status_metric(out, "connections_open", "gauge", "TCP/TLS connections open now",
                  (unsigned long long)open);
    status_metric(out, "decision_queue_records", "gauge",
                  "records (one per decided message) in the decision queue now",
                  queue_length(f->decisions));
    status_metric(out, "decision_queue_bytes", "gauge", "bytes the decision queue holds now",
                  queue_bytes(f->decisions));
    status_metric(out, "inputs_paused", "gauge",
                  "inputs (connections, UDP socket sets) paused for a full queue now",
                  (unsigned long long)__atomic_load_n(f->inputs_paused, __ATOMIC_RELAXED));
    status_listeners(s, out);
    status_mappings(f->per_mapping, out);
    status_metric_seconds(out, "backpressure_seconds_total",
                          "seconds inputs could not hand decisions on because the response side "
                          "refused them: the decision queue was blocked (the spool cannot make "
                          "an alert durable) or full enough to pause a worker's inputs",
                          queue_held_seconds(f->decisions));
    status_build_info(out);
    /* The standard name (client libraries' process collector): no prefix. */
    evbuffer_add_printf(out,
                        "# HELP process_start_time_seconds start time of the process since unix "
                        "epoch in seconds\n"
                        "# TYPE process_start_time_seconds gauge\n"
                        "process_start_time_seconds %.3f\n",
                        s->started);
}

/* Why the agent is unhealthy, into why (one line), or NULL when it is
 * not: the spool holds alerts back (full, or its disk refuses writes: the
 * inputs are paused), or dispatch has failed for over unhealthy_after_s
 * with an alert still waiting to be sent again. */
static const char *status_unhealthy(const struct status *s, char *why, size_t len)
{
    uint64_t sum[STAT_COUNT];
    int64_t now = (int64_t)status_now();
    int64_t since;

    stats_sum(sum);
    if (sum[STAT_spool_held] > 0) {
        snprintf(why, len,
                 "spool full: %llu alerts held (spool.max_bytes reached or the disk refuses "
                 "writes), inputs paused",
                 (unsigned long long)sum[STAT_spool_held]);
        return why;
    }
    since = (int64_t)sum[STAT_dispatch_failing_since];
    if (s->unhealthy_after_s > 0 && since != 0 && now - since > s->unhealthy_after_s) {
        snprintf(why, len,
                 "dispatch failing for %lld s (no 2xx from SafeTitan since the first failure; "
                 "status.unhealthy_after_s is %d)",
                 (long long)(now - since), s->unhealthy_after_s);
        return why;
    }
    return NULL;
}

/* A plain-text answer: one line. */
static void status_text(struct evhttp_request *req, int code, const char *reason, const char *line)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req);

    evbuffer_add_printf(out, "%s\n", line);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; charset=utf-8");
    evhttp_send_reply(req, code, reason, NULL);
}

static void status_health(struct status *s, struct evhttp_request *req)
{
    char why[256];
    const char *bad = status_unhealthy(s, why, sizeof(why));

    if (bad != NULL)
        status_text(req, 503, "Service Unavailable", bad);
    else
        status_text(req, 200, "OK", "ok");
}

static void status_ready(struct status *s, struct evhttp_request *req)
{
    switch (__atomic_load_n(s->feed->phase, __ATOMIC_RELAXED)) {
    case STATUS_READY:
        status_text(req, 200, "OK", "ready");
        break;
    case STATUS_STOPPING:
        status_text(req, 503, "Service Unavailable", "stopping: no new input");
        break;
    default:
        status_text(req, 503, "Service Unavailable",
                    "starting: the listeners or the spool are not open yet");
    }
}

static int status_conn_gone(const struct status_conn *c)
{
    bufferevent_data_cb readcb;

    bufferevent_getcb(c->bev, &readcb, NULL, NULL, NULL);
    return readcb == NULL;
}

static void status_conn_free(struct status *s, struct status_conn *c)
{
    TAILQ_REMOVE(&s->conns, c, link);
    evloop_event_free(&c->deadline);
    bufferevent_decref(c->bev);
    free(c);
}

/* Frees the connections evhttp has freed; returns how many are left. */
static int status_conn_reap(struct status *s)
{
    struct status_conn *c, *next;
    int n = 0;

    for (c = TAILQ_FIRST(&s->conns); c != NULL; c = next) {
        next = TAILQ_NEXT(c, link);
        if (status_conn_gone(c))
            status_conn_free(s, c);
        else
            n++;
    }
    return n;
}

/* The deadline (or the cap, with a zero delay) ends the connection.
 * Freeing it here would pull it from under evhttp; shutting the socket
 * down makes evhttp see the end of the stream or a failed write and free
 * it. */
static void status_conn_cut(evutil_socket_t fd, short what, void *arg)
{
    struct status_conn *c = arg;
    struct sockaddr_storage peer;
    socklen_t len = sizeof(peer);
    char name[SOCKADDR_TEXT_MAX] = "?";
    evutil_socket_t sock;

    (void)fd;
    (void)what;
    if (status_conn_gone(c))
        return; /* reaped at the next accept */
    sock = bufferevent_getfd(c->bev);
    if (getpeername(sock, (struct sockaddr *)&peer, &len) == 0)
        sockaddr_format((struct sockaddr *)&peer, name, sizeof(name));
    if (c->over_cap)
        log_limited(&status_rl_refused, LOG_LVL_WARNING,
                    "status: refused %s: %d connections are open (the most)", name,
                    STATUS_MAX_CONNECTIONS);
    else
        log_limited(&status_rl_cut, LOG_LVL_WARNING,
                    "status: closing the connection of %s: no complete request within %d s", name,
                    STATUS_TIMEOUT_S);
    shutdown(sock, SHUT_RDWR);
}

/* A request has come: the next one gets a whole budget. */
static void status_conn_rearm(struct status *s, struct bufferevent *bev)
{
    struct status_conn *c;
    struct timeval budget = {STATUS_TIMEOUT_S, 0};

    TAILQ_FOREACH(c, &s->conns, link)
    {
        if (c->bev == bev) {
            event_add(c->deadline, &budget);
            return;
        }
    }
}

/* evhttp's bufferevent for a connection it has just accepted (it sets the
 * socket on it next, and closes it itself). Returning NULL makes evhttp
 * create one of its own. */
static struct bufferevent *status_on_new_bev(struct event_base *base, void *arg)
{
    struct status *s = arg;
    struct status_conn *c = calloc(1, sizeof(*c));
    struct timeval budget = {STATUS_TIMEOUT_S, 0};
    struct timeval now = {0, 0};

    if (c == NULL)
        return NULL;
    c->deadline = evtimer_new(base, status_conn_cut, c);
    c->bev = bufferevent_socket_new(base, -1, 0);
    if (c->deadline == NULL || c->bev == NULL) {
        if (c->bev != NULL)
            bufferevent_free(c->bev);
        evloop_event_free(&c->deadline);
        free(c);
        return NULL;
    }
    bufferevent_incref(c->bev); /* dropped by status_conn_free */
    c->over_cap = status_conn_reap(s) >= STATUS_MAX_CONNECTIONS;
    TAILQ_INSERT_TAIL(&s->conns, c, link);
    event_add(c->deadline, c->over_cap ? &now : &budget);
    return c->bev;
}

/* evhttp_bind_listener made the listener's callback argument evhttp's. */
static void status_on_accept_error(struct evconnlistener *el, void *arg)
{
    (void)arg;
    evloop_accept_error(el, status_serving->retry, "status");
}

static void status_on_request(struct evhttp_request *req, void *arg)
{
    struct status *s = arg;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    struct evbuffer *out = evhttp_request_get_output_buffer(req);

    status_conn_rearm(s, evhttp_connection_get_bufferevent(evhttp_request_get_connection(req)));
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(headers, "Allow", "GET, HEAD");
        evhttp_send_error(req, 405, NULL);
    } else if (path != NULL && strcmp(path, "/metrics") == 0) {
        status_metrics(s, out);
        evhttp_add_header(headers, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        evhttp_send_reply(req, 200, "OK", NULL);
    } else if (path != NULL && strcmp(path, "/healthz") == 0) {
        status_health(s, req);
    } else if (path != NULL && strcmp(path, "/readyz") == 0) {
        status_ready(s, req);
    } else {
        evhttp_send_error(req, 404, NULL);
    }
}

int status_new(struct event_base *base, const struct status_config *sc,
               const struct status_feed *feed, struct status **out)
{
    struct status *s;
    struct evconnlistener *el;
    socklen_t len = sizeof(s->bound);
    int rc = ERR_IO;

    *out = NULL;
    if (status_serving != NULL) {
        log_error("status %s: a status endpoint is already serving", sc->address);
        return ERR_CONFIG;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return ERR_NOMEM;
    TAILQ_INIT(&s->conns);
    s->feed = feed;
    s->unhealthy_after_s = sc->unhealthy_after_s;
    /* The endpoint comes up in the process's first moments (before the
     * spool's recovery): its time stands for the process's. */
    s->started = status_now();
    s->http = evhttp_new(base);
    if (s->http == NULL) {
        rc = ERR_NOMEM;
        goto out;
    }
    evhttp_set_timeout(s->http, STATUS_TIMEOUT_S);
    evhttp_set_max_headers_size(s->http, STATUS_MAX_HEADERS);
    evhttp_set_max_body_size(s->http, 0);
    evhttp_set_gencb(s->http, status_on_request, s);
    evhttp_set_bevcb(s->http, status_on_new_bev, s);
    el = evconnlistener_new_bind(base, NULL, NULL,
                                 LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                 -1, (const struct sockaddr *)&sc->addr, (int)sc->addr_len);
    if (el == NULL) {
        int err = errno;
        log_error("status %s: %s", sc->address, strerror(err));
        goto out;
    }
    if (evhttp_bind_listener(s->http, el) == NULL) { /* el is still ours */
        evconnlistener_free(el);
        log_error("status %s: cannot serve HTTP on it", sc->address);
        goto out;
    }
    /* el is evhttp's now: evhttp_free frees it. */
    s->retry = evtimer_new(base, evloop_accept_resume, el);
    if (s->retry == NULL) {
        rc = ERR_NOMEM;
        goto out;
    }
    evconnlistener_set_error_cb(el, status_on_accept_error);
    if (getsockname(evconnlistener_get_fd(el), (struct sockaddr *)&s->bound, &len) == -1) {
        int err = errno;
        log_error("status %s: getsockname: %s", sc->address, strerror(err));
        goto out;
    }
    if (!sockaddr_is_loopback((const struct sockaddr *)&s->bound))
        log_warning("status %s: reachable beyond this host: /metrics, /healthz and /readyz answer "
                    "anyone who can connect; prefer a loopback address",
                    sc->address);
    status_serving = s;
    *out = s; /* transferred */
    s = NULL;
    rc = 0;
out:
    status_free(s);
    return rc;
}

const struct sockaddr *status_addr(const struct status *s)
{
    return (const struct sockaddr *)&s->bound;
}

void status_free(struct status *s)
{
    if (s == NULL)
        return;
    if (status_serving == s)
        status_serving = NULL;
    if (s->http != NULL)
        evhttp_free(s->http); /* frees the bound listener and the connections too */
    while (!TAILQ_EMPTY(&s->conns))
        status_conn_free(s, TAILQ_FIRST(&s->conns));
    evloop_event_free(&s->retry);
    free(s);
}
