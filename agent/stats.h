/* Counters: one block per worker thread, written without locks by its
 * owner (relaxed atomics), summed on read by the status endpoint and the
 * shutdown report. */
#ifndef RTR_STATS_H
#define RTR_STATS_H

#include <stdint.h>

/* X-macro: name, help text. The order is the metrics order. */
#define STATS_COUNTERS(X)                                                                          \
    X(messages_received, "frames received (all transports)")                                       \
    X(bytes_received, "bytes received")                                                            \
    X(messages_parsed, "messages handed to the pipeline")                                          \
    X(parse_errors_syslog, "messages whose syslog header was claimed and broken")                  \
    X(parse_errors_cef, "messages whose CEF payload was malformed")                                \
    X(parse_errors_leef, "messages whose LEEF payload was malformed")                              \
    X(frames_oversized, "frames over max_message_bytes (truncated or rejected)")                   \
    X(frames_bad_octet_count, "malformed RFC 6587 octet counts")                                   \
    X(udp_datagrams, "UDP datagrams received")                                                     \
    X(udp_kernel_drops, "UDP datagrams the kernel dropped (SO_RXQ_OVFL)")                          \
    X(connections_accepted, "TCP/TLS connections accepted")                                        \
    X(connections_refused_allowlist, "connections or datagrams refused by allowlist")              \
    X(connections_refused_limit, "connections refused at max_connections")                         \
    X(connections_closed_idle, "connections closed by the idle timeout")                           \
    X(connections_closed_buffer, "connections closed at the buffer cap")                           \
    X(tls_handshake_failures, "TLS handshakes that failed or timed out")                           \
    X(backpressure_pauses, "times an input stopped reading for a full queue")                      \
    X(tap_lines, "lines written to --tap")

enum stats_counter {
#define STATS_ENUM(name, help) STAT_##name,
    STATS_COUNTERS(STATS_ENUM)
#undef STATS_ENUM
        STAT_COUNT
};

struct stats {
    uint64_t v[STAT_COUNT]; /* only touched through __atomic builtins */
};

static inline void stats_add(struct stats *s, enum stats_counter c, uint64_t n)
{
    __atomic_fetch_add(&s->v[c], n, __ATOMIC_RELAXED);
}

/* Registers a block (one per worker) so that stats_sum sees it. Blocks are
 * never unregistered; they live as long as the process. Thread-safe. */
struct stats *stats_register(void);

/* Sums every registered block into out[STAT_COUNT]. */
void stats_sum(uint64_t out[STAT_COUNT]);

const char *stats_name(enum stats_counter c);
const char *stats_help(enum stats_counter c);

#endif
