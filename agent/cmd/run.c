/* `rtr-agent run`: loads the mappings, builds the delivery side (the
 * decision queue, the identity layer, the SafeTitan client: every secret
 * read), the endpoints (TLS contexts), the --tap file, the workers (which
 * bind every socket) and the status endpoint; drops its privileges
 * (privilege.h: before any thread exists); opens the spool, the audit log
 * and the dead-letter file as the user it now is; starts the threads and
 * runs the main loop, which only handles signals, the status endpoint and
 * the shutdown sequence:
 *
 *   SIGTERM -> every worker stops accepting and reading, finishes what it
 *   has buffered (waiting for the decision queue if it must), writes its
 *   last tap lines and exits -> the decision queue is closed -> the
 *   delivery thread drains it, finishes every decision and exits -> the
 *   main loop ends -> threads are joined and everything is freed.
 *
 * A second SIGTERM during that exits at once. SIGHUP: reload.h. */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "errors.h"
#include "identity/identity.h"
#include "core/log.h"
#include "decide/correlate.h"
#include "decide/mapping.h"
#include "decide/pipeline.h"
#include "decide/policy.h"
#include "core/queue.h"
#include "deliver/delivery.h"
#include "core/sdnotify.h"
#include "core/sockaddr.h"
#include "core/stats.h"
#include "core/version.h"
#include "privilege.h"
#include "reload.h"
#include "status.h"
#include "decide/tap.h"
#include "ingest/http_key.h"
#include "ingest/tls.h"
#include "ingest/worker.h"
#include "core/evloop.h"

struct run {
    const struct config *cfg;
    struct reload *reload;
    struct event_base *base;
    struct event *ev_term, *ev_int, *ev_hup;
    struct event *ev_progress;       /* a worker or the delivery thread has ended */
    struct event *ev_reloaded;       /* the delivery thread counted a reload */
    int reload_ok;                   /* atomic: how that reload went */
    struct event *ev_summary;        /* every summary_interval_s */
    uint64_t summarised[STAT_COUNT]; /* the counters at the previous summary */
    uint64_t summarised_udp_drops;
    struct mapping_set *set; /* the mappings in use; NULL without any */
    /* The policies' counts (NULL when none counts at the start) and the
     * longest window it keeps: a reload may not ask for more. */
    struct correlate *correlate;
    int64_t counts_window_s;
    struct delivery *delivery;
    struct endpoint *ep;
    struct worker_env env;
    struct worker **workers;
    int n_workers;
    struct tap *tap;
    struct status *status;
    struct status_feed feed;
    int inputs_paused;   /* atomic */
    int phase;           /* atomic: enum status_phase, for /readyz */
    int workers_exited;  /* atomic */
    int delivery_exited; /* atomic */
    int stopping;
};

/* Writes "PORT\n" to a temporary file renamed over path, so a reader never
 * sees it half-written. The temporary name is mkstemp's (unpredictable,
 * created exclusively): a link planted at a guessable name cannot redirect
 * the write. */
static int run_write_port_file(const char *path, const struct sockaddr *sa)
{
    char tmp[PATH_MAX], text[16];
    int len = snprintf(text, sizeof(text), "%u\n", sockaddr_port(sa));
    ssize_t n;
    int fd, err;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp)) {
        log_error("port file %s: path too long", path);
        return ERR_IO;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd != -1 && fchmod(fd, 0644) == -1) { /* a port number is no secret */
        err = errno;
        log_error("port file %s: %s", tmp, strerror(err));
        close(fd);
        unlink(tmp);
        return ERR_IO;
    }
    if (fd == -1) {
        err = errno;
        log_error("port file %s: %s", tmp, strerror(err));
        return ERR_IO;
    }
    n = write(fd, text, (size_t)len);
    err = errno;
    if (n != len) {
        /* A short write leaves errno as it was: it says nothing then. */
        log_error("port file %s: write: %s", tmp, n == -1 ? strerror(err) : "short write");
        close(fd);
        unlink(tmp);
        return ERR_IO;
    }
    if (close(fd) == -1 || rename(tmp, path) == -1) {
        err = errno;
        log_error("port file %s: %s", path, strerror(err));
        unlink(tmp);
        return ERR_IO;
    }
    return 0;
}

/* Worker threads and the delivery thread report their end here. */
static void run_worker_exited(void *arg)
{
    struct run *d = arg;

    __atomic_add_fetch(&d->workers_exited, 1, __ATOMIC_RELEASE);
    event_active(d->ev_progress, 0, 0);
}

static void run_delivery_exited(void *arg)
{
    struct run *d = arg;

    __atomic_store_n(&d->delivery_exited, 1, __ATOMIC_RELEASE);
    event_active(d->ev_progress, 0, 0);
}

/* delivery_ack_fn: from the delivery thread, to the worker whose input
 * handed the ack out. The workers are freed only after the delivery
 * thread (run_free). */
static void run_ack(void *arg, const struct decision_ack *ack, struct decision_answer answer)
{
    struct run *d = arg;

    if (ack->worker < (uint32_t)d->n_workers)
        worker_ack(d->workers[ack->worker], ack, answer);
}

/* The shutdown sequence, one step each time a thread ends. */
static void run_on_progress(evutil_socket_t fd, short what, void *arg)
{
    struct run *d = arg;

    (void)fd;
    (void)what;
    if (__atomic_load_n(&d->workers_exited, __ATOMIC_ACQUIRE) < d->n_workers)
        return;
    /* Every producer has ended: the delivery thread may finish. */
    queue_close(delivery_queue(d->delivery));
    if (!__atomic_load_n(&d->delivery_exited, __ATOMIC_ACQUIRE))
        return;
    event_base_loopbreak(d->base);
}

static void run_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct run *d = arg;

    (void)what;
    if (d->stopping) {
        log_warning("second %s: exiting now", strsignal((int)sig));
        _exit(EXIT_FAILURE);
    }
    d->stopping = 1;
    __atomic_store_n(&d->phase, STATUS_STOPPING, __ATOMIC_RELAXED);
    log_info("%s: stopping: no new input, finishing what is buffered", strsignal((int)sig));
    sdnotify_send("STOPPING=1");
    delivery_stop_intake_pause(d->delivery);
    for (int i = 0; i < d->n_workers; i++)
        worker_stop(d->workers[i]);
}

/* systemd's reload protocol (sd_notify(3)): RELOADING=1 with the
 * monotonic time the reload started, READY=1 once it is over. Under
 * Type=notify-reload (systemd 253 and later) `systemctl reload` waits for
 * it; under Type=notify the unit shows "reloading" meanwhile. */
static void run_notify_reloading(void)
{
    struct timespec now;
    char state[64];

    clock_gettime(CLOCK_MONOTONIC, &now);
    snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)now.tv_sec * 1000000ULL + (unsigned long long)now.tv_nsec / 1000);
    sdnotify_send(state);
}

static void run_on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct run *d = arg;

    (void)sig;
    (void)what;
    if (d->stopping) {
        log_info("SIGHUP while stopping: ignored");
        return;
    }
    run_notify_reloading();
    reload_apply(d->reload, d->ep, d->cfg->n_listen, d->workers, d->n_workers, &d->set, d->delivery,
                 d->counts_window_s);
    /* A delivery thread that has ended counts no reload: the manager waits
     * for its READY=1 all the same. */
    if (__atomic_load_n(&d->delivery_exited, __ATOMIC_ACQUIRE))
        sdnotify_send("READY=1\nSTATUS=reload failed: the delivery thread has ended");
}

/* delivery_set_reload_done: from the delivery thread, once the reload is
 * counted; the main loop tells systemd. */
static void run_reload_done(void *arg, int ok)
{
    struct run *d = arg;

    __atomic_store_n(&d->reload_ok, ok, __ATOMIC_RELEASE);
    event_active(d->ev_reloaded, 0, 0);
}

static void run_on_reloaded(evutil_socket_t fd, short what, void *arg)
{
    struct run *d = arg;
    int ok = __atomic_load_n(&d->reload_ok, __ATOMIC_ACQUIRE);

    (void)fd;
    (void)what;
    /* The reload is over either way; STATUS= says how it went (systemctl
     * status shows it). */
    sdnotify_send(ok ? "READY=1\nSTATUS=reloaded"
                     : "READY=1\nSTATUS=reload failed: the running configuration stays where a "
                       "part did not load (see the log)");
}

/* Where decisions go: said at every start, loudly for a dry run (the
 * shipped default), so that nobody believes alerts are sent when they are
 * not. */
static void run_log_delivery(const struct config *cfg)
{
    const struct dispatch_config *dc = &cfg->dispatch;
    char order[64] = "none";
    size_t n = 0;

    for (size_t i = 0; i < cfg->identity.n_order && n < sizeof(order); i++)
        n += (size_t)snprintf(order + n, sizeof(order) - n, "%s%s", i ? ", " : "",
                              config_identity_name(cfg->identity.order[i]));
    log_info("identity: resolvers in order: %s", order);
    if (dc->mode == DISPATCH_DRY_RUN)
        log_info("DRY RUN: decisions are audited, NOTHING IS SENT to SafeTitan (dispatch.mode "
                 "\"dry-run\"); audit log %s",
                 cfg->audit.file != NULL ? cfg->audit.file : "off (no audit.file)");
    else
        log_info("dispatch: %s to %s; spool %s; dead letters %s; audit log %s",
                 dc->mode == DISPATCH_DIRECT ? "direct" : "orchestrator", dc->url, cfg->spool.dir,
                 cfg->spool.dead_letter,
                 cfg->audit.file != NULL ? cfg->audit.file : "off (no audit.file)");
}

static void run_log_start(struct run *d, const char *tap_path)
{
    char line[1024], addr[SOCKADDR_TEXT_MAX];
    size_t n = 0;

    for (size_t i = 0; i < d->cfg->n_listen && n < sizeof(line); i++)
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s %s", i ? ", " : "",
                              input_proto_name(d->ep[i].lc), d->ep[i].name);
    if (d->status != NULL && n < sizeof(line)) {
        sockaddr_format(status_addr(d->status), addr, sizeof(addr));
        n += (size_t)snprintf(line + n, sizeof(line) - n, "; status http://%s/metrics", addr);
    }
    if (tap_path != NULL && n < sizeof(line))
        snprintf(line + n, sizeof(line) - n, "; tap %s", tap_path);
    log_info("running with %d worker%s: %s", d->n_workers, d->n_workers == 1 ? "" : "s", line);
    run_log_delivery(d->cfg);
}

/* Every worker's UDP sockets: the feed of the udp_kernel_drops metric. */
static uint64_t run_udp_drops(void *arg)
{
    struct run *d = arg;
    uint64_t sum = 0;

    for (int i = 0; i < d->n_workers; i++)
        sum += worker_udp_drops(d->workers[i]);
    return sum;
}

/* Every worker's count: the feed of listener_received_bytes_total. */
static uint64_t run_listener_bytes(void *arg, size_t i)
{
    struct run *d = arg;
    uint64_t sum = 0;

    for (int w = 0; w < d->n_workers; w++)
        sum += worker_received_bytes(d->workers[w], i);
    return sum;
}

static void run_log_summary(struct run *d)
{
    uint64_t sum[STAT_COUNT];
    char line[2048];
    size_t n = 0;

    stats_sum(sum);
    for (int i = 0; i < STAT_COUNT && n < sizeof(line); i++) {
        enum stats_counter c = (enum stats_counter)i;

        /* Times say nothing once stopped; counts and sizes do. Of the HTTP
         * intake's route and status pairs (48), only those that happened:
         * the line has a length cap. */
        if (stats_kind(c) == STATS_TIME || stats_kind(c) == STATS_AGE)
            continue;
        if (sum[i] == 0 && strncmp(stats_metric(c), "http_requests_total{", 20) == 0)
            continue;
        n += (size_t)snprintf(line + n, sizeof(line) - n, " %s=%llu", stats_name(c),
                              (unsigned long long)sum[i]);
    }
    if (n < sizeof(line))
        snprintf(line + n, sizeof(line) - n, " udp_kernel_drops=%llu",
                 (unsigned long long)run_udp_drops(d));
    log_info("stopped:%s", line);
}

/* Every summary_interval_s: what came in, what was decided and what
 * became of it since the previous summary, in one line. */
static void run_on_summary(evutil_socket_t fd, short what, void *arg)
{
    struct run *d = arg;
    uint64_t now[STAT_COUNT], delta[STAT_COUNT], drops = run_udp_drops(d);

    (void)fd;
    (void)what;
    stats_sum(now);
    for (int i = 0; i < STAT_COUNT; i++)
        delta[i] = now[i] - d->summarised[i];
    log_info("last %d s: %llu messages received (%llu parse errors, %llu UDP datagrams dropped by "
             "the kernel), %llu decisions: %llu sent to SafeTitan, %llu would be (dry run), %llu "
             "duplicates, %llu users unresolved, %llu dead-lettered, %llu retries",
             d->cfg->summary_interval_s, (unsigned long long)delta[STAT_messages_received],
             (unsigned long long)(delta[STAT_parse_errors_syslog] + delta[STAT_parse_errors_cef] +
                                  delta[STAT_parse_errors_leef]),
             (unsigned long long)(drops - d->summarised_udp_drops),
             (unsigned long long)delta[STAT_decisions],
             (unsigned long long)delta[STAT_outcome_dispatched],
             (unsigned long long)delta[STAT_outcome_would_dispatch],
             (unsigned long long)delta[STAT_outcome_duplicate],
             (unsigned long long)delta[STAT_outcome_unresolved_user],
             (unsigned long long)delta[STAT_outcome_dead_letter],
             (unsigned long long)delta[STAT_dispatch_retries]);
    memcpy(d->summarised, now, sizeof(now));
    d->summarised_udp_drops = drops;
}

/* Everything up to the point where the main loop can run. */
static int run_start(struct run *d, const char *tap_path)
{
    const struct config *cfg = d->cfg;
    int rc;

    rc = reload_new(cfg, &d->reload);
    if (rc != 0)
        return rc;
    rc = reload_load_mappings(cfg, &cfg->limits, 0, &d->set);
    if (rc != 0)
        return rc;
    reload_log_mappings("", cfg, d->set);
    identity_warn_unresolvable(&cfg->identity, d->set != NULL ? mapping_set_count(d->set) : 0,
                               cfg->path);
    /* The policies' counts, shared by the workers (which count) and the
     * delivery thread (which rebuilds them from the spool). */
    if (d->set != NULL && policy_longest_window(d->set) > 0) {
        d->counts_window_s = policy_longest_window(d->set);
        rc = correlate_new(cfg->limits.correlation_max_bytes, d->counts_window_s, &d->correlate);
        if (rc != 0)
            return rc;
    }
    /* Before the workers: they push into its queue. */
    rc = delivery_new(cfg, &d->delivery);
    if (rc != 0)
        return rc;
    delivery_set_policies(d->delivery, d->set, d->correlate);
    d->ep = calloc(cfg->n_listen, sizeof(*d->ep));
    d->workers = calloc((size_t)cfg->workers, sizeof(*d->workers));
    d->base = event_base_new();
    if (d->ep == NULL || d->workers == NULL || d->base == NULL)
        return ERR_NOMEM;
    for (size_t i = 0; i < cfg->n_listen; i++) {
        d->ep[i].lc = &cfg->listen[i];
        snprintf(d->ep[i].name, sizeof(d->ep[i].name), "%s", cfg->listen[i].address);
        if (cfg->listen[i].tls) {
            rc = tls_server_new(&cfg->listen[i], &d->ep[i].tls);
            if (rc != 0)
                return rc;
        }
        if (cfg->listen[i].proto == LISTEN_HTTP && cfg->listen[i].auth == LISTEN_AUTH_API_KEY) {
            rc = http_key_new(&cfg->listen[i], &d->ep[i].key);
            if (rc != 0)
                return rc;
        }
        if (cfg->listen[i].proto != LISTEN_UDP) {
            rc = sources_new((size_t)cfg->limits.max_connections, &d->ep[i].sources);
            if (rc != 0)
                return rc;
        }
    }
    if (tap_path != NULL) {
        rc = tap_open(tap_path, &d->tap);
        if (rc != 0)
            return rc;
    }
    d->ev_term = evsignal_new(d->base, SIGTERM, run_on_signal, d);
    d->ev_int = evsignal_new(d->base, SIGINT, run_on_signal, d);
    d->ev_hup = evsignal_new(d->base, SIGHUP, run_on_hup, d);
    d->ev_progress = event_new(d->base, -1, 0, run_on_progress, d);
    d->ev_reloaded = event_new(d->base, -1, 0, run_on_reloaded, d);
    if (d->ev_term == NULL || d->ev_int == NULL || d->ev_hup == NULL || d->ev_progress == NULL ||
        d->ev_reloaded == NULL || evsignal_add(d->ev_term, NULL) == -1 ||
        evsignal_add(d->ev_int, NULL) == -1 || evsignal_add(d->ev_hup, NULL) == -1)
        return ERR_NOMEM;

    d->env = (struct worker_env){
        .cfg = cfg,
        .ep = d->ep,
        .n_ep = cfg->n_listen,
        .decisions = delivery_queue(d->delivery),
        .mappings = d->set,
        .correlate = d->correlate,
        .tap = d->tap,
        .inputs_paused = &d->inputs_paused,
        .exited = run_worker_exited,
        .exited_arg = d,
    };
    for (int i = 0; i < cfg->workers && rc == 0; i++) {
        rc = worker_new(&d->env, i, &d->workers[i]);
        if (rc == 0)
            d->n_workers++;
    }
    /* Only worker_new reads it, and the first SIGHUP may free that set:
     * later a stale pointer, so it goes now. */
    d->env.mappings = NULL;
    if (rc != 0)
        return rc;
    if (cfg->status.address != NULL) {
        d->feed = (struct status_feed){
            .ep = d->ep,
            .n_ep = cfg->n_listen,
            .decisions = delivery_queue(d->delivery),
            .per_mapping = delivery_mapping_counts(d->delivery),
            .inputs_paused = &d->inputs_paused,
            .phase = &d->phase,
            .udp_drops = run_udp_drops,
            .listener_bytes = run_listener_bytes,
            .arg = d,
        };
        rc = status_new(d->base, &cfg->status, &d->feed, &d->status);
        if (rc != 0)
            return rc;
    }
    /* Every socket is bound, every key and secret read, and no thread runs
     * yet: what the agent does not need any more goes now. */
    rc = privilege_drop(cfg);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < cfg->n_listen; i++) {
        if (d->ep[i].tls != NULL)
            tls_server_check_readable(d->ep[i].tls);
        if (d->ep[i].key != NULL)
            http_key_check_readable(d->ep[i].key);
    }
    rc = delivery_open(d->delivery, cfg);
    if (rc != 0)
        return rc;
    delivery_set_ack(d->delivery, run_ack, d);
    delivery_set_reload_done(d->delivery, run_reload_done, d);
    rc = delivery_start(d->delivery, run_delivery_exited, d);
    if (rc != 0)
        return rc;
    for (int i = 0; i < d->n_workers; i++) {
        rc = worker_start(d->workers[i]);
        if (rc != 0)
            return rc;
    }
    /* Listeners bound, the spool open, every thread running: a probe of
     * /readyz after a port file appeared sees this. */
    __atomic_store_n(&d->phase, STATUS_READY, __ATOMIC_RELAXED);
    /* Port files last: whoever waits for them may connect at once. */
    for (size_t i = 0; i < cfg->n_listen; i++) {
        if (cfg->listen[i].port_file != NULL) {
            rc = run_write_port_file(cfg->listen[i].port_file,
                                     (const struct sockaddr *)&d->ep[i].bound);
            if (rc != 0)
                return rc;
        }
    }
    if (d->status != NULL && cfg->status.port_file != NULL) {
        rc = run_write_port_file(cfg->status.port_file, status_addr(d->status));
        if (rc != 0)
            return rc;
    }
    run_log_start(d, tap_path);
    input_warn_open_listeners(cfg);
    if (cfg->summary_interval_s > 0) {
        struct timeval every = {.tv_sec = cfg->summary_interval_s};

        d->ev_summary = event_new(d->base, -1, EV_PERSIST, run_on_summary, d);
        if (d->ev_summary == NULL || event_add(d->ev_summary, &every) == -1)
            return ERR_NOMEM;
    }
    /* Everything is bound and listening: systemd (Type=notify) may now let
     * the units ordered after us start. */
    rc = sdnotify_send("READY=1");
    if (rc != 0)
        log_warning("could not tell the service manager we are ready (NOTIFY_SOCKET): %s",
                    err_name(rc));
    return 0;
}

/* Stops what started (a failed start-up), joins every thread, frees. The
 * delivery thread runs until the workers have ended (it may have to wake a
 * paused one) and ends before the workers are freed (it wakes them
 * through their events). */
static void run_free(struct run *d)
{
    if (!d->stopping) {
        if (d->delivery != NULL)
            delivery_stop_intake_pause(d->delivery);
        for (int i = 0; i < d->n_workers; i++)
            worker_stop(d->workers[i]);
    }
    for (int i = 0; i < d->n_workers; i++)
        worker_join(d->workers[i]);
    if (d->delivery != NULL)
        queue_close(delivery_queue(d->delivery));
    delivery_free(d->delivery);
    status_free(d->status);
    for (int i = 0; i < d->n_workers; i++)
        worker_free(d->workers[i]);
    tap_free(d->tap); /* every worker wrote its last lines before it ended */
    evloop_event_free(&d->ev_term);
    evloop_event_free(&d->ev_int);
    evloop_event_free(&d->ev_hup);
    evloop_event_free(&d->ev_progress);
    evloop_event_free(&d->ev_reloaded);
    evloop_event_free(&d->ev_summary);
    if (d->base != NULL)
        event_base_free(d->base);
    for (size_t i = 0; d->ep != NULL && i < d->cfg->n_listen; i++) {
        tls_server_free(d->ep[i].tls);
        http_key_free(d->ep[i].key);
        sources_free(d->ep[i].sources);
    }
    free(d->ep);
    free(d->workers);
    mapping_set_unref(d->set);
    correlate_free(d->correlate);
    reload_free(d->reload);
}

int run_daemon(const struct config *cfg, const char *tap_path)
{
    struct run d = {.cfg = cfg};
    struct sigaction ign = {.sa_handler = SIG_IGN};
    int rc;

    /* Until the loop's SIGHUP event exists, a reload request (systemd,
     * logrotate) must not kill the agent by the default action. */
    sigaction(SIGHUP, &ign, NULL);

    log_configure(cfg->log_level, cfg->log_format);
    log_info("rtr-agent %s starting: config %s", version_text(), cfg->path);
    /* Before any event_base exists: bases made after this are thread-safe
     * and can be woken from other threads. */
    if (evthread_use_pthreads() == -1) {
        log_error("libevent: no pthreads support");
        return ERR_IO;
    }
    /* libevent's own messages, rate-limited: an error path of its in a loop
     * (an accept failing on every turn) cannot flood the log. */
    log_capture_libevent();
    /* A peer that vanished shows up as EPIPE on write, not as a signal. */
    sigaction(SIGPIPE, &ign, NULL);
    /* A file size limit (RLIMIT_FSIZE) shows up as EFBIG on the spool's or
     * the audit log's write, which they handle, not as a signal that kills. */
    sigaction(SIGXFSZ, &ign, NULL);
    rc = run_start(&d, tap_path);
    if (rc == 0) {
        event_base_dispatch(d.base);
        run_log_summary(&d);
    }
    run_free(&d);
    return rc;
}
