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

/* X-macro: name, help text. The order is the metrics order. The table
 * also holds the few gauges whose single writer is a counting thread
 * (stats_is_gauge): set with stats_set, and summed like the counters since
 * every other block holds 0. */
#define STATS_COUNTERS(X)                                                                          \
    X(messages_received, "frames handed to the pipeline (all transports)")                         \
    X(bytes_received, "bytes read from sockets: TCP and TLS (after decryption) streams with "      \
                      "their octet counts and trailers, and whole UDP datagrams")                  \
    X(parse_errors_syslog, "messages whose syslog header was claimed and broken")                  \
    X(parse_errors_cef, "messages whose CEF payload was malformed")                                \
    X(parse_errors_leef, "messages whose LEEF payload was malformed")                              \
    X(cef_pairs_dropped, "CEF extension pairs past the parser's table (CEF_MAX_EXT), not stored")  \
    X(frames_oversized, "frames over max_message_bytes (truncated or rejected)")                   \
    X(frames_truncated, "frames left without their terminator or count at the end of their "       \
                        "connection (EOF, reset, idle timeout, stop), delivered flagged, "         \
                        "never decided")                                                           \
    X(frames_bad_octet_count, "malformed RFC 6587 octet counts")                                   \
    X(udp_datagrams, "UDP datagrams received")                                                     \
    X(udp_datagrams_refused_allowlist, "UDP datagrams dropped by the allowlist")                   \
    X(connections_accepted, "TCP/TLS connections accepted")                                        \
    X(connections_refused_allowlist, "TCP/TLS connections refused by the allowlist")               \
    X(connections_refused_limit, "connections refused at max_connections")                         \
    X(connections_closed_idle, "connections closed by the idle timeout")                           \
    X(connections_closed_buffer, "connections closed at the buffer cap")                           \
    X(connections_closed_slow,                                                                     \
      "connections closed: a message took over frame_timeout_s to arrive")                         \
    X(tls_handshake_failures, "TLS handshakes that failed or timed out")                           \
    X(backpressure_pauses, "times an input stopped reading for a full or blocked queue")           \
    X(relp_acks, "RELP syslog commands acknowledged: decided and, with an alert, spooled and "     \
                 "fsynced")                                                                        \
    X(relp_protocol_errors, "RELP sessions closed for a protocol error")                           \
    X(tap_lines, "lines written to --tap")                                                         \
    X(messages_decided, "messages at least one mapping decided on")                                \
    X(decisions, "decisions made (a mapping with \"continue\" can add more per message)")          \
    X(decisions_no_user, "mappings that found a rule but no user identifier")                      \
    X(decisions_dropped, "decisions dropped: too many for one message, a field too long, or no "   \
                         "memory to hold one")                                                     \
    X(messages_truncated_undecided, "truncated messages the mappings were not run on: a cut "      \
                                    "value could name the wrong user")                             \
    X(decision_queue_full, "decision records a full decision queue refused at first (each "        \
                           "counted once, however often it is offered again)")                     \
    X(regex_limit_hits, "regex matches stopped by the match, depth or heap limit or the JIT "      \
                        "stack (counted as no match)")                                             \
    X(regex_errors, "regex matches that failed with another PCRE2 error (counted as no match)")    \
    X(identity_cache_hits, "identity lookups answered by the cache (negative answers too)")        \
    X(identity_cache_misses, "identity lookups that went to the resolvers")                        \
    X(identity_not_found, "identifiers no resolver knows")                                         \
    X(identity_errors, "identity lookups that failed (resolver errors)")                           \
    X(outcome_would_dispatch, "decisions that would be dispatched (dry-run)")                      \
    X(outcome_unresolved_user, "decisions whose user could not be resolved to an email")           \
    X(outcome_failed, "decisions that could not be carried out (dry-run: an identity lookup "      \
                      "failed; otherwise refused by SafeTitan and dead-lettered)")                 \
    X(outcome_spooled, "decisions written to the spool for dispatch")                              \
    X(outcome_dispatched, "alerts SafeTitan accepted (2xx)")                                       \
    X(outcome_duplicate, "exact duplicates (same idempotency key inside dispatch.dedup_window_s) " \
                         "not sent again")                                                         \
    X(outcome_dead_letter, "alerts written to the dead-letter file (refused by SafeTitan, or a "   \
                           "user no resolver knows)")                                              \
    X(dispatch_requests, "requests sent to SafeTitan")                                             \
    X(dispatch_retries, "SafeTitan requests that failed and will be retried (408, 425, 429, "      \
                        "5xx, network errors, identity lookup errors)")                            \
    X(dead_letter_errors, "dead-letter lines that could not be written or synced (the alert "      \
                          "stays spooled and is tried again after a backoff)")                     \
    X(dead_letter_bytes, "bytes of the dead-letter file now (counted against spool.max_bytes; "    \
                         "a gauge)")                                                               \
    X(spool_appends, "alerts appended to the spool and fsynced")                                   \
    X(spool_full, "times an alert was held because the spool was at spool.max_bytes or its "       \
                  "disk refused the write (input backpressure until it fits)")                     \
    X(spool_write_errors, "spool writes or fsyncs that failed")                                    \
    X(spool_corrupt, "corrupt or torn spool tails quarantined to a side file")                     \
    X(spool_recovered, "pending alerts found in the spool at start and sent again")                \
    X(spool_compactions, "spool segments compacted or deleted")                                    \
    X(spool_slow_syncs, "spool appends not durable within spool.fsync_delay_ms")                   \
    X(graph_requests, "requests sent to Microsoft Graph (lookups and tokens)")                     \
    X(graph_token_requests, "OAuth2 token requests")                                               \
    X(graph_throttled, "Graph answers 429 or 503 (retried after Retry-After)")                     \
    X(graph_errors, "Graph lookups that failed (network, TLS, bad answers, too many retries)")     \
    X(graph_coalesced, "Graph lookups that joined a request already in flight")                    \
    X(audit_lines, "lines written to the audit log")                                               \
    X(audit_errors, "audit lines that could not be written")                                       \
    X(reloads, "SIGHUP reloads that succeeded in every part")                                      \
    X(reload_failures,                                                                             \
      "SIGHUP reloads a part of which failed (the mappings, the directory or the "                 \
      "audit log: that part kept its running version)")

enum stats_counter {
#define STATS_ENUM(name, help) STAT_##name,
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

/* Whether c is a gauge (a value now, which may go down) rather than a
 * counter. */
static inline int stats_is_gauge(enum stats_counter c)
{
    return c == STAT_dead_letter_bytes;
}

/* Registers a block (one per counting thread, STATS_ALIGN-aligned) so that
 * stats_sum sees it. Blocks are never unregistered; they live as long as the
 * process. Thread-safe. */
struct stats *stats_register(void);

/* Sums every registered block into out[STAT_COUNT]. */
void stats_sum(uint64_t out[STAT_COUNT]);

const char *stats_name(enum stats_counter c);
const char *stats_help(enum stats_counter c);

#endif
