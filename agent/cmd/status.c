#include "status.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "errors.h"
#include "core/log.h"
#include "core/stats.h"

/* Requests are tiny GETs: anything large or slow is not a scraper. */
#define STATUS_TIMEOUT_S   10
#define STATUS_MAX_HEADERS 8192

struct status {
    struct evhttp *http;
    const struct status_feed *feed;
    struct sockaddr_storage bound;
};

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

/* frames_truncated per stream listener, which says which senders cut
 * their connections mid-frame. */
static void status_listener_truncated(struct evbuffer *out, const struct status_feed *f)
{
    const char *name = "listener_frames_truncated";

    evbuffer_add_printf(out,
                        "# HELP rtr_agent_%s frames left without their terminator or count at "
                        "the end of their connection, per TCP/TLS/RELP listener\n"
                        "# TYPE rtr_agent_%s counter\n",
                        name, name);
    for (size_t i = 0; i < f->n_ep; i++) {
        if (f->ep[i].lc->proto == LISTEN_UDP)
            continue;
        evbuffer_add_printf(
            out, "rtr_agent_%s{proto=\"%s\",address=\"%s\"} %llu\n", name,
            input_proto_name(f->ep[i].lc), f->ep[i].name,
            (unsigned long long)__atomic_load_n(&f->ep[i].frames_truncated, __ATOMIC_RELAXED));
    }
}

static void status_metrics(struct status *s, struct evbuffer *out)
{
    const struct status_feed *f = s->feed;
    uint64_t sum[STAT_COUNT];
    long long open = 0;

    stats_sum(sum);
    for (int i = 0; i < STAT_COUNT; i++)
        status_metric(out, stats_name((enum stats_counter)i), "counter",
                      stats_help((enum stats_counter)i), sum[i]);
    status_metric(out, "udp_kernel_drops", "counter",
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
    status_listener_truncated(out, f);
    status_metric_seconds(out, "backpressure_seconds_total",
                          "seconds inputs could not hand decisions on because the response side "
                          "refused them: the decision queue was blocked (the spool cannot make "
                          "an alert durable) or full enough to pause a worker's inputs",
                          queue_held_seconds(f->decisions));
}

static void status_on_request(struct evhttp_request *req, void *arg)
{
    struct status *s = arg;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    struct evbuffer *out = evhttp_request_get_output_buffer(req);

    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(headers, "Allow", "GET, HEAD");
        evhttp_send_error(req, 405, NULL);
        return;
    }
    if (path != NULL && strcmp(path, "/metrics") == 0) {
        status_metrics(s, out);
        evhttp_add_header(headers, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    } else if (path != NULL && strcmp(path, "/healthz") == 0) {
        evbuffer_add(out, "ok\n", 3);
        evhttp_add_header(headers, "Content-Type", "text/plain; charset=utf-8");
    } else {
        evhttp_send_error(req, 404, NULL);
        return;
    }
    evhttp_send_reply(req, 200, "OK", NULL);
}

int status_new(struct event_base *base, const struct status_config *sc,
               const struct status_feed *feed, struct status **out)
{
    struct status *s;
    struct evconnlistener *el;
    socklen_t len = sizeof(s->bound);
    int rc = ERR_IO;

    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return ERR_NOMEM;
    s->feed = feed;
    s->http = evhttp_new(base);
    if (s->http == NULL) {
        rc = ERR_NOMEM;
        goto out;
    }
    evhttp_set_timeout(s->http, STATUS_TIMEOUT_S);
    evhttp_set_max_headers_size(s->http, STATUS_MAX_HEADERS);
    evhttp_set_max_body_size(s->http, 0);
    evhttp_set_gencb(s->http, status_on_request, s);
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
    if (getsockname(evconnlistener_get_fd(el), (struct sockaddr *)&s->bound, &len) == -1) {
        int err = errno;
        log_error("status %s: getsockname: %s", sc->address, strerror(err));
        goto out;
    }
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
    if (s->http != NULL)
        evhttp_free(s->http); /* frees the bound listener too */
    free(s);
}
