/* Counters: one block per thread that counts (each worker, the delivery thread).
 * A block has a single writer, its own thread, so stats_add is a plain
 * load and store (relaxed atomics, no locked read-modify-write); readers on
 * other threads (the status endpoint, the shutdown report) sum the blocks
 * with relaxed loads and may see a count a moment old, never a torn one.
 * Blocks are cache-line aligned so writers never share a line. A counter
 * two threads must bump does not belong here: give it its own atomic. */
#ifndef RTR_STATS_H
#define RTR_STATS_H

#include <stdint.h>

/* Help texts a labelled family shares (every member repeats its family's). */
#define STATS_HELP_PARSE_ERRORS                                                                    \
    "messages that failed to parse, by kind: syslog (a claimed syslog header was broken), cef "    \
    "and leef (a malformed payload)"
#define STATS_HELP_UDP_REFUSED                                                                     \
    "UDP datagrams dropped, by reason: allowlist (the source is not on it)"
#define STATS_HELP_REFUSED                                                                         \
    "TCP/TLS connections refused, by reason: allowlist (the source is not on it), limit "          \
    "(max_connections were open)"
#define STATS_HELP_CLOSED                                                                          \
    "connections the agent closed, by reason: idle (the idle timeout), buffer (a frame past the "  \
    "buffer cap), slow (a message took over frame_timeout_s to arrive)"
#define STATS_HELP_ALERTS                                                                          \
    "decisions by what became of them (the audit log's outcomes): would-dispatch, "                \
    "unresolved-user, failed (dry-run: a lookup failed; else refused by SafeTitan) and, live, "    \
    "spooled then dispatched (2xx) or dead-letter; duplicate (same idempotency key inside "        \
    "dispatch.dedup_window_s, not sent again); an alert counts under several outcomes"
#define STATS_HELP_RELOADS                                                                         \
    "SIGHUP reloads, by result: success (every part), failure (a part failed - the mappings, the " \
    "directory, the audit log or the dead-letter file - and kept its running version)"

#define STATS_HELP_LDAP                                                                            \
    "LDAP directory lookups (identity.ldap), by result: found, not_found (no such user, "          \
    "ambiguous, no mail, an identifier that is not valid for its kind), error (no server, a "      \
    "timeout, a lost connection)"
#define STATS_HELP_LDAP_SECONDS "time LDAP directory lookups took, from asking to the answer"

#define STATS_HELP_HTTP                                                                            \
    "HTTP intake requests answered, by route (other: a path that is none, or a request refused "   \
    "before its path was read) and status (evhttp's own 413, 431 and 501 answers are not "         \
    "counted)"
/* One route's statuses, in the order http_intake.c's http_statuses lists them. */
#define STATS_HTTP_ROUTE(X, name, route)                                                           \
    X(http_##name##_200, COUNTER, "http_requests_total{route=\"" route "\",status=\"200\"}",       \
      STATS_HELP_HTTP)                                                                             \
    X(http_##name##_202, COUNTER, "http_requests_total{route=\"" route "\",status=\"202\"}",       \
      STATS_HELP_HTTP)                                                                             \
    X(http_##name##_400, COUNTER, "http_requests_total{route=\"" route "\",status=\"400\"}",       \
      STATS_HELP_HTTP)                                                                             \
    X(http_##name##_401, COUNTER, "http_requests_total{route=\"" route "\",status=\"401\"}",       \
      STATS_HELP_HTTP)                                                                             \
    X(http_##name##_403, COUNTER, "http_requests_total{route=\"" route "\",status=\"403\"}",       \
      STATS_HELP_HTTP)                                                                             \
    X(http_##name##_404, COUNTER, "http_requests_total{route=\"" route "\",status=\"404\"}",       \
      STATS_HELP_HTTP)                                                                             \
    X(http_##name##_405, COUNTER, "http_requests_total{route=\"" route "\",status=\"405\"}",       \
      STATS_HELP_HTTP)                                                                             \
    X(http_##name##_410, COUNTER, "http_requests_total{route=\"" route "\",status=\"410\"}",       \
      STATS_HELP_HTTP)                                                                             \
    X(http_##name##_503, COUNTER, "http_requests_total{route=\"" route "\",status=\"503\"}",       \
      STATS_HELP_HTTP)
/* The routes in webhook.h's enum order, then the requests of no route. */
#define STATS_HTTP_ROUTES(X)                                                                       \
    STATS_HTTP_ROUTE(X, alerts, "/v1/alerts")                                                      \
    STATS_HTTP_ROUTE(X, logpoint, "/api/SIEM/logpoint/alert")                                      \
    STATS_HTTP_ROUTE(X, logrhythm, "/api/SIEM/logrhythm/smartresponse")                            \
    STATS_HTTP_ROUTE(X, dtex, "/api/SIEM/dtex/alert")                                              \
    STATS_HTTP_ROUTE(X, event, "/api/event")                                                       \
    STATS_HTTP_ROUTE(X, approvals, "/v1/approvals")                                                \
    STATS_HTTP_ROUTE(X, other, "other")

/* X-macro: internal name (the enum, the shutdown summary), kind, the
 * sample in /metrics without the "rtr_agent_" prefix (a family with
 * labels has its members next to each other, sharing one help text), help
 * text. The order is the metrics order. The table also holds the few
 * gauges whose single writer is a counting thread: set with stats_set,
 * and summed like the counters since every other block holds 0. */
#define STATS_COUNTERS(X)                                                                          \
    X(messages_received, COUNTER, "messages_received_total",                                       \
      "frames handed to the pipeline (all transports)")                                            \
    X(bytes_received, COUNTER, "received_bytes_total",                                             \
      "bytes read from sockets: TCP and TLS (after decryption) streams with their octet counts "   \
      "and trailers, and whole UDP datagrams")                                                     \
    X(parse_errors_syslog, COUNTER, "parse_errors_total{kind=\"syslog\"}",                         \
      STATS_HELP_PARSE_ERRORS)                                                                     \
    X(parse_errors_cef, COUNTER, "parse_errors_total{kind=\"cef\"}", STATS_HELP_PARSE_ERRORS)      \
    X(parse_errors_leef, COUNTER, "parse_errors_total{kind=\"leef\"}", STATS_HELP_PARSE_ERRORS)    \
    X(cef_pairs_dropped, COUNTER, "cef_pairs_dropped_total",                                       \
      "CEF extension pairs past the parser's table (CEF_MAX_EXT), not stored")                     \
    X(frames_oversized, COUNTER, "frames_oversized_total",                                         \
      "frames over max_message_bytes (truncated or rejected)")                                     \
    X(frames_truncated, COUNTER, "frames_truncated_total",                                         \
      "frames left without their terminator or count at the end of their connection (EOF, "        \
      "reset, idle timeout, stop), delivered flagged, never decided")                              \
    X(frames_bad_octet_count, COUNTER, "frames_bad_octet_count_total",                             \
      "malformed RFC 6587 octet counts")                                                           \
    X(udp_datagrams, COUNTER, "udp_datagrams_total", "UDP datagrams received")                     \
    X(udp_datagrams_refused_allowlist, COUNTER,                                                    \
      "udp_datagrams_refused_total{reason=\"allowlist\"}", STATS_HELP_UDP_REFUSED)                 \
    X(connections_accepted, COUNTER, "connections_accepted_total", "TCP/TLS connections accepted") \
    X(connections_refused_allowlist, COUNTER, "connections_refused_total{reason=\"allowlist\"}",   \
      STATS_HELP_REFUSED)                                                                          \
    X(connections_refused_limit, COUNTER, "connections_refused_total{reason=\"limit\"}",           \
      STATS_HELP_REFUSED)                                                                          \
    X(connections_closed_idle, COUNTER, "connections_closed_total{reason=\"idle\"}",               \
      STATS_HELP_CLOSED)                                                                           \
    X(connections_closed_buffer, COUNTER, "connections_closed_total{reason=\"buffer\"}",           \
      STATS_HELP_CLOSED)                                                                           \
    X(connections_closed_slow, COUNTER, "connections_closed_total{reason=\"slow\"}",               \
      STATS_HELP_CLOSED)                                                                           \
    X(tls_handshake_failures, COUNTER, "tls_handshake_failures_total",                             \
      "TLS handshakes that failed or timed out")                                                   \
    X(backpressure_pauses, COUNTER, "backpressure_pauses_total",                                   \
      "times an input stopped reading for a full or blocked queue")                                \
    X(relp_acks, COUNTER, "relp_acks_total",                                                       \
      "RELP syslog commands acknowledged: decided and, with an alert, spooled and fsynced")        \
    X(relp_protocol_errors, COUNTER, "relp_protocol_errors_total",                                 \
      "RELP sessions closed for a protocol error")                                                 \
    STATS_HTTP_ROUTES(X)                                                                           \
    X(tap_lines, COUNTER, "tap_lines_total", "lines written to --tap")                             \
    X(messages_decided, COUNTER, "messages_decided_total",                                         \
      "messages at least one mapping decided on")                                                  \
    X(decisions, COUNTER, "decisions_total",                                                       \
      "decisions made (a mapping with \"continue\" can add more per message)")                     \
    X(decisions_no_user, COUNTER, "decisions_no_user_total",                                       \
      "mappings that found a rule but no user identifier")                                         \
    X(decisions_dropped, COUNTER, "decisions_dropped_total",                                       \
      "decisions dropped: too many for one message, a field too long, or no memory to hold one")   \
    X(policy_errors, COUNTER, "policy_errors_total",                                               \
      "decisions whose policy block could not be kept (too large): they trigger one SafeTitan "    \
      "event instead")                                                                             \
    X(messages_truncated_undecided, COUNTER, "messages_truncated_undecided_total",                 \
      "truncated messages the mappings were not run on: a cut value could name the wrong user")    \
    X(decision_queue_full, COUNTER, "decision_queue_full_total",                                   \
      "decision records a full decision queue refused at first (each counted once, however "       \
      "often it is offered again)")                                                                \
    X(regex_limit_hits, COUNTER, "regex_limit_hits_total",                                         \
      "regex matches stopped by the match, depth or heap limit or the JIT stack (counted as no "   \
      "match)")                                                                                    \
    X(regex_errors, COUNTER, "regex_errors_total",                                                 \
      "regex matches that failed with another PCRE2 error (counted as no match)")                  \
    X(identity_cache_hits, COUNTER, "identity_cache_hits_total",                                   \
      "identity lookups answered by the cache (negative answers too)")                             \
    X(identity_cache_misses, COUNTER, "identity_cache_misses_total",                               \
      "identity lookups that went to the resolvers")                                               \
    X(identity_not_found, COUNTER, "identity_not_found_total", "identifiers no resolver knows")    \
    X(identity_errors, COUNTER, "identity_errors_total",                                           \
      "identity lookups that failed (resolver errors)")                                            \
    X(identity_coalesced, COUNTER, "identity_coalesced_total",                                     \
      "identity lookups that joined a lookup of the same identifier already in flight")            \
    X(outcome_would_dispatch, COUNTER, "alerts_total{outcome=\"would-dispatch\"}",                 \
      STATS_HELP_ALERTS)                                                                           \
    X(outcome_unresolved_user, COUNTER, "alerts_total{outcome=\"unresolved-user\"}",               \
      STATS_HELP_ALERTS)                                                                           \
    X(outcome_failed, COUNTER, "alerts_total{outcome=\"failed\"}", STATS_HELP_ALERTS)              \
    X(outcome_spooled, COUNTER, "alerts_total{outcome=\"spooled\"}", STATS_HELP_ALERTS)            \
    X(outcome_dispatched, COUNTER, "alerts_total{outcome=\"dispatched\"}", STATS_HELP_ALERTS)      \
    X(outcome_duplicate, COUNTER, "alerts_total{outcome=\"duplicate\"}", STATS_HELP_ALERTS)        \
    X(outcome_dead_letter, COUNTER, "alerts_total{outcome=\"dead-letter\"}", STATS_HELP_ALERTS)    \
    X(outcome_cooldown, COUNTER, "alerts_total{outcome=\"cooldown\"}", STATS_HELP_ALERTS)          \
    X(approvals_approved, COUNTER, "approvals_total{outcome=\"approved\"}",                        \
      "policy approvals decided, by outcome (an expired one counts as its default)")               \
    X(approvals_denied, COUNTER, "approvals_total{outcome=\"denied\"}",                            \
      "policy approvals decided, by outcome (an expired one counts as its default)")               \
    X(approvals_expired, COUNTER, "approvals_expired_total",                                       \
      "policy approvals nobody decided before their deadline (their default applied)")             \
    X(correlation_keys, GAUGE, "policy_correlation_keys",                                          \
      "users, hosts and user-rule pairs the policies' counts hold now (of "                        \
      "limits.correlation_max_bytes; updated every second)")                                       \
    X(correlation_evictions, GAUGE, "policy_correlation_evictions",                                \
      "counts dropped since the start to make room (limits.correlation_max_bytes is too small "    \
      "when it grows; updated every second)")                                                      \
    X(dispatch_requests, COUNTER, "dispatch_requests_total", "requests sent to SafeTitan")         \
    X(dispatch_retries, COUNTER, "dispatch_retries_total",                                         \
      "SafeTitan requests that failed and will be retried (408, 425, 429, 5xx, network errors, "   \
      "identity lookup errors)")                                                                   \
    X(last_dispatch_success, TIME, "last_dispatch_success_timestamp_seconds",                      \
      "when SafeTitan last accepted an alert (2xx), Unix time; 0: not since the start")            \
    X(dispatch_failing_since, TIME, "dispatch_failing_since_timestamp_seconds",                    \
      "since when dispatch has failed with no 2xx while an alert waits to be tried again, Unix "   \
      "time; 0: not failing (status.unhealthy_after_s makes /healthz answer 503 past it)")         \
    X(dead_letter_errors, COUNTER, "dead_letter_errors_total",                                     \
      "dead-letter lines that could not be written or synced (the alert stays spooled and is "     \
      "tried again after a backoff)")                                                              \
    X(dead_letter_bytes, GAUGE, "dead_letter_bytes",                                               \
      "bytes of the dead-letter file now (counted against spool.max_bytes)")                       \
    X(spool_pending, GAUGE, "spool_pending_alerts",                                                \
      "alerts in the spool not yet dispatched or dead-lettered (updated every second)")            \
    X(spool_bytes, GAUGE, "spool_bytes",                                                           \
      "bytes of the spool's segments now (with dead_letter_bytes, counted against "                \
      "spool.max_bytes; updated every second)")                                                    \
    X(spool_held, GAUGE, "spool_held_alerts",                                                      \
      "alerts held now because the spool is at spool.max_bytes or its disk refuses the write: "    \
      "inputs are paused (/healthz answers 503; updated every second)")                            \
    X(spool_oldest_pending, AGE, "spool_oldest_pending_age_seconds",                               \
      "seconds since the oldest alert in the spool not yet dispatched or dead-lettered was "       \
      "received; 0: none pending")                                                                 \
    X(spool_appends, COUNTER, "spool_appends_total", "alerts appended to the spool and fsynced")   \
    X(spool_full, COUNTER, "spool_full_total",                                                     \
      "times an alert was held because the spool was at spool.max_bytes or its disk refused the "  \
      "write (input backpressure until it fits)")                                                  \
    X(spool_write_errors, COUNTER, "spool_write_errors_total",                                     \
      "spool writes or fsyncs that failed")                                                        \
    X(spool_corrupt, COUNTER, "spool_corrupt_total",                                               \
      "corrupt or torn spool tails quarantined to a side file")                                    \
    X(spool_recovered, COUNTER, "spool_recovered_total",                                           \
      "pending alerts found in the spool at start and sent again")                                 \
    X(spool_compactions, COUNTER, "spool_compactions_total",                                       \
      "spool segments compacted or deleted")                                                       \
    X(spool_slow_syncs, COUNTER, "spool_slow_syncs_total",                                         \
      "spool appends not durable within spool.fsync_delay_ms")                                     \
    X(graph_requests, COUNTER, "graph_requests_total",                                             \
      "requests sent to Microsoft Graph (lookups and tokens)")                                     \
    X(graph_token_requests, COUNTER, "graph_token_requests_total", "OAuth2 token requests")        \
    X(graph_throttled, COUNTER, "graph_throttled_total",                                           \
      "Graph answers 429 or 503 (retried after Retry-After)")                                      \
    X(graph_errors, COUNTER, "graph_errors_total",                                                 \
      "Graph lookups that failed (network, TLS, bad answers, too many retries)")                   \
    X(graph_coalesced, COUNTER, "graph_coalesced_total",                                           \
      "Graph lookups that joined a request already in flight")                                     \
    X(ldap_lookups_found, COUNTER, "ldap_lookups_total{result=\"found\"}", STATS_HELP_LDAP)        \
    X(ldap_lookups_not_found, COUNTER, "ldap_lookups_total{result=\"not_found\"}",                 \
      STATS_HELP_LDAP)                                                                             \
    X(ldap_lookups_error, COUNTER, "ldap_lookups_total{result=\"error\"}", STATS_HELP_LDAP)        \
    X(ldap_lookup_ms_sum, SUMMARY, "ldap_lookup_seconds_sum", STATS_HELP_LDAP_SECONDS)             \
    X(ldap_lookup_count, SUMMARY, "ldap_lookup_seconds_count", STATS_HELP_LDAP_SECONDS)            \
    X(ldap_connects, COUNTER, "ldap_connects_total",                                               \
      "connections to the directory set up and bound (identity.ldap)")                             \
    X(ldap_connect_failures, COUNTER, "ldap_connect_failures_total",                               \
      "attempts to connect, start TLS and bind to a directory server that failed (each URI "       \
      "tried counts once)")                                                                        \
    X(ldap_bind_failures, COUNTER, "ldap_bind_failures_total",                                     \
      "binds the directory refused (wrong password, locked or unknown account...)")                \
    X(audit_lines, COUNTER, "audit_lines_total", "lines written to the audit log")                 \
    X(audit_errors, COUNTER, "audit_errors_total", "audit lines that could not be written")        \
    X(reloads, COUNTER, "reloads_total{result=\"success\"}", STATS_HELP_RELOADS)                   \
    X(reload_failures, COUNTER, "reloads_total{result=\"failure\"}", STATS_HELP_RELOADS)           \
    X(last_reload_ok, GAUGE, "config_last_reload_successful",                                      \
      "1 when the last SIGHUP reload succeeded in every part (or none came since the start), "     \
      "else 0")                                                                                    \
    X(last_reload_success, TIME, "config_last_reload_success_timestamp_seconds",                   \
      "when the configuration last loaded in every part (the start or a SIGHUP), Unix time")

/* What a value of the table is. */
enum stats_kind {
    STATS_COUNTER, /* only goes up */
    STATS_GAUGE,   /* a value now, which may go down (stats_set) */
    STATS_TIME,    /* a gauge: a Unix time in seconds, 0 for never (stats_set) */
    STATS_AGE,     /* set as a Unix time in seconds (0: none), shown as the seconds since */
    /* A Prometheus summary without quantiles, as a pair of entries: its
     * "_sum" (counted in milliseconds, shown as seconds) and its "_count". */
    STATS_SUMMARY,
};

enum stats_counter {
#define STATS_ENUM(name, kind, metric, help) STAT_##name,
    STATS_COUNTERS(STATS_ENUM)
#undef STATS_ENUM
        STAT_COUNT
};

/* The alignment of a block: a cache line. */
#define STATS_ALIGN 64

struct stats {
    uint64_t v[STAT_COUNT]; /* only touched through __atomic builtins */
};

/* Only the thread that registered s may call this (see the top). */
static inline void stats_add(struct stats *s, enum stats_counter c, uint64_t n)
{
    __atomic_store_n(&s->v[c], __atomic_load_n(&s->v[c], __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/* Only the thread that registered s may call this; for gauges. */
static inline void stats_set(struct stats *s, enum stats_counter c, uint64_t v)
{
    __atomic_store_n(&s->v[c], v, __ATOMIC_RELAXED);
}

/* Registers a block (one per counting thread, STATS_ALIGN-aligned) so that
 * stats_sum sees it. Blocks are never unregistered; they live as long as the
 * process. Thread-safe. */
struct stats *stats_register(void);

/* Sums every registered block into out[STAT_COUNT]. */
void stats_sum(uint64_t out[STAT_COUNT]);

/* The internal name ("outcome_dispatched"), the sample /metrics shows
 * without its "rtr_agent_" prefix ("alerts_total{outcome=\"dispatched\"}")
 * and the help text: static strings. */
const char *stats_name(enum stats_counter c);
const char *stats_metric(enum stats_counter c);
const char *stats_help(enum stats_counter c);
enum stats_kind stats_kind(enum stats_counter c);

#endif
