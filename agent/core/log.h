/* The agent's own log: one line per event on stderr (systemd captures it),
 * with control characters and invalid UTF-8 escaped so a sender can never
 * forge or corrupt log lines. Thread-safe. */
#ifndef RTR_LOG_H
#define RTR_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum log_level {
    LOG_LVL_ERROR,
    LOG_LVL_WARNING,
    LOG_LVL_INFO,
    LOG_LVL_DEBUG,
};

/* The form of every time the agent writes (log lines, the audit log,
 * SafeTitan's occurred_at): RFC 3339 in UTC with milliseconds,
 * "2026-10-02T09:12:44.120Z". */
#define LOG_TIME_SIZE 32

/* Formats ts (CLOCK_REALTIME) into buf[LOG_TIME_SIZE]; returns the length. */
size_t log_format_time(struct timespec ts, char buf[LOG_TIME_SIZE]);

/* How lines look: "TIME level: text" (default), or one JSON object per line
 * for collectors: {"time":"...","level":"info","msg":"...", plus
 * "truncated":true and "suppressed":N when so}. Under the journal, either
 * is preceded by the "<N>" priority. */
enum log_format {
    LOG_FORMAT_TEXT,
    LOG_FORMAT_JSON,
};

void log_set_format(enum log_format format);
/* Parses "text", "json"; returns -1 when unknown. */
int log_format_parse(const char *name);

void log_set_level(enum log_level level);

/* The config's log_level and log_format (names as log_level_parse and
 * log_format_parse take them; NULL or unknown: left as they are). */
void log_configure(const char *level, const char *format);
/* Parses "error", "warning", "info", "debug"; returns -1 when unknown. */
int log_level_parse(const char *name);

/* Whether lines of level are written: a guard for a line whose arguments
 * cost something to compute. */
int log_wants(enum log_level level);

/* printf-style; the formatted text is escaped before it is written. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Warnings written so far by this process (`check --strict` fails on any). */
unsigned long log_warnings_written(void);

/* A rate limiter for one kind of log line: at most burst lines per
 * interval_s; the first line after a quiet spell says how many were
 * suppressed (exactly, across threads). Embed one per (kind of) line,
 * zero-initialised but for the two settings. A suppressed line takes no
 * lock. The last three fields are the limiter's (touched through __atomic
 * builtins). */
struct log_ratelimit {
    int interval_s;
    int burst;
    int64_t window_start; /* CLOCK_MONOTONIC_COARSE seconds */
    int printed;
    uint64_t suppressed;
};

#define LOG_RATELIMIT_INIT(interval, burst_)                                                       \
    {                                                                                              \
        (interval), (burst_), 0, 0, 0                                                              \
    }

void log_limited(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Routes libevent's own messages (its listeners', evhttp's, its backends')
 * through one rate limiter of this log, so that no libevent error path in
 * a loop can flood stderr. Process-wide, idempotent; call before the loops
 * start. */
void log_capture_libevent(void);

#define log_error(...)   log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)   log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
