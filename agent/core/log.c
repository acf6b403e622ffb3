#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "escape.h"

/* Escaped message bytes per line. With the prefix and the notes, a line stays
 * under PIPE_BUF (4096), so its single write(2) to the journal's stream
 * socket or a pipe is atomic and lines of different threads never mix. */
#define LOG_TEXT_MAX 2048
/* "<N>" and {"time":"2026-10-02T09:12:44.120Z","level":"warning","msg":" fit. */
#define LOG_PREFIX_MAX 80
#define LOG_NOTE_MAX   64

static const char truncated_marker[] = " [truncated]";

static const struct {
    const char *name;
    char journal_priority; /* sd-daemon(3) <N>: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
} levels[] = {
    [LOG_LVL_ERROR] = {"error", '3'},
    [LOG_LVL_WARNING] = {"warning", '4'},
    [LOG_LVL_INFO] = {"info", '6'},
    [LOG_LVL_DEBUG] = {"debug", '7'},
};

static atomic_int threshold = LOG_LVL_INFO;
static atomic_ulong warnings_written;
static atomic_int line_format = LOG_FORMAT_TEXT;

/* One lock for every rate limiter, taken only by lines that may pass (a
 * few per window): a suppressed line is counted with atomics alone, so a
 * flood of bad input costs a coarse clock read and an atomic add per line.
 * struct log_ratelimit stays a plain, statically initialisable struct. */
static pthread_mutex_t ratelimit_lock = PTHREAD_MUTEX_INITIALIZER;

/* Whether stderr is the journal, decided once (log_journal_detect). */
static pthread_once_t journal_once = PTHREAD_ONCE_INIT;
static int journal;

void log_set_level(enum log_level level)
{
    atomic_store_explicit(&threshold, (int)level, memory_order_relaxed);
}

int log_level_parse(const char *name)
{
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (strcmp(name, levels[i].name) == 0)
            return (int)i;
    }
    return -1;
}

int log_wants(enum log_level level)
{
    return (int)level <= atomic_load_explicit(&threshold, memory_order_relaxed);
}

/* systemd sets JOURNAL_STREAM to "device:inode" of the stream it connects to
 * stderr; comparing with stderr itself (as systemd.exec(5) advises) tells a
 * child whose stderr was redirected elsewhere from a real journal stream.
 * Decided at the first line and kept: the agent never redirects its stderr,
 * and a getenv, sscanf and fstat per line would be wasted. */
static void log_journal_detect(void)
{
    const char *stream = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (stream == NULL || sscanf(stream, "%llu:%llu", &dev, &ino) != 2)
        return;
    if (fstat(STDERR_FILENO, &st) == -1)
        return;
    journal = (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static int stderr_is_journal(void)
{
    pthread_once(&journal_once, log_journal_detect);
    return journal;
}

size_t log_format_time(struct timespec ts, char buf[LOG_TIME_SIZE])
{
    struct tm tm;
    size_t n;

    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(buf, LOG_TIME_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(buf + n, LOG_TIME_SIZE - n, ".%03ldZ", ts.tv_nsec / 1000000);
    return n;
}

void log_configure(const char *level, const char *format)
{
    int l = level != NULL ? log_level_parse(level) : -1;
    int f = format != NULL ? log_format_parse(format) : -1;

    if (l >= 0)
        log_set_level((enum log_level)l);
    if (f >= 0)
        log_set_format((enum log_format)f);
}

void log_set_format(enum log_format f)
{
    atomic_store_explicit(&line_format, (int)f, memory_order_relaxed);
}

int log_format_parse(const char *name)
{
    return strcmp(name, "text") == 0   ? LOG_FORMAT_TEXT
           : strcmp(name, "json") == 0 ? LOG_FORMAT_JSON
                                       : -1;
}

/* Text: "TIME level: " (the journal stamps its own time: "<N>" only).
 * JSON: the object up to the opening quote of "msg" (after "<N>" in the
 * journal, which keeps the priority). */
static size_t format_prefix(char *out, size_t cap, enum log_level level, int json)
{
    struct timespec ts;
    char when[LOG_TIME_SIZE];
    size_t n = 0;

    if (stderr_is_journal()) {
        n = (size_t)snprintf(out, cap, "<%c>", levels[level].journal_priority);
        if (!json)
            return n;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    log_format_time(ts, when);
    if (json)
        return n + (size_t)snprintf(out + n, cap - n,
                                    "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", when,
                                    levels[level].name);
    return (size_t)snprintf(out, cap, "%s %s: ", when, levels[level].name);
}

static void write_line(const char *line, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, line, len);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report a failing stderr */
        }
        line += n;
        len -= (size_t)n;
    }
}

static void log_vwrite(enum log_level level, uint64_t suppressed, const char *fmt, va_list ap)
{
    char raw[LOG_TEXT_MAX + 1];
    char line[LOG_PREFIX_MAX + LOG_TEXT_MAX + ESCAPE_MAX_EXPANSION + sizeof(truncated_marker) +
              LOG_NOTE_MAX + 1];
    int saved_errno = errno;
    size_t len, text;
    int raw_len, truncated;

    int json = atomic_load_explicit(&line_format, memory_order_relaxed) == LOG_FORMAT_JSON;
    enum escape_style style = json ? ESCAPE_JSON : ESCAPE_LOG;

    if (level == LOG_LVL_WARNING)
        atomic_fetch_add_explicit(&warnings_written, 1, memory_order_relaxed);
    len = format_prefix(line, LOG_PREFIX_MAX, level, json);
    raw_len = vsnprintf(raw, sizeof(raw), fmt, ap);
    if (raw_len < 0)
        raw_len = 0;
    truncated = (size_t)raw_len >= sizeof(raw);
    if (truncated)
        raw_len = (int)sizeof(raw) - 1;
    /* escape_text stops before an escape or UTF-8 sequence (at most
     * ESCAPE_MAX_EXPANSION bytes) that does not fit, so with that much slack
     * an output of at most LOG_TEXT_MAX bytes means all the text fit. Past
     * it, escaping again with the exact cap gives a clean cut. */
    text =
        escape_text(line + len, LOG_TEXT_MAX + ESCAPE_MAX_EXPANSION, raw, (size_t)raw_len, style);
    if (text > LOG_TEXT_MAX) {
        text = escape_text(line + len, LOG_TEXT_MAX, raw, (size_t)raw_len, style);
        truncated = 1;
    }
    len += text;
    if (json) {
        /* The slack the text form keeps for its notes holds these. */
        len += (size_t)snprintf(line + len, sizeof(line) - len, "\"%s",
                                truncated ? ",\"truncated\":true" : "");
        if (suppressed > 0)
            len += (size_t)snprintf(line + len, sizeof(line) - len, ",\"suppressed\":%llu",
                                    (unsigned long long)suppressed);
        line[len++] = '}';
    } else {
        if (truncated) {
            memcpy(line + len, truncated_marker, sizeof(truncated_marker) - 1);
            len += sizeof(truncated_marker) - 1;
        }
        if (suppressed > 0)
            len += (size_t)snprintf(line + len, LOG_NOTE_MAX, " (%llu similar lines suppressed)",
                                    (unsigned long long)suppressed);
    }
    line[len++] = '\n';
    write_line(line, len);
    errno = saved_errno;
}

unsigned long log_warnings_written(void)
{
    return atomic_load_explicit(&warnings_written, memory_order_relaxed);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    if (!log_wants(level))
        return;
    va_start(ap, fmt);
    log_vwrite(level, 0, fmt, ap);
    va_end(ap);
}

/* Seconds on the coarse monotonic clock: the time of the last tick, read
 * from the vDSO without touching the hardware counter. A window is seconds
 * long, so a tick (a few ms) of error does not matter. */
static int64_t ratelimit_now(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return (int64_t)now.tv_sec;
}

/* Counts the line against rl. Returns nonzero when it may be written, with
 * *suppressed the number of lines dropped since the last one written.
 *
 * Fast path: inside the window with the burst spent, the line is counted
 * with one atomic add and no lock. Only a line that may pass takes the lock,
 * to open a new window or take a slot of the burst. Every suppressed line
 * is added to rl->suppressed exactly once and collected by an exchange, so
 * the count stays exact: a line counted while a passing line collects is
 * reported by the next one. */
static int ratelimit_pass(struct log_ratelimit *rl, uint64_t *suppressed)
{
    int64_t now = ratelimit_now();
    int pass;

    *suppressed = 0;
    if (now - __atomic_load_n(&rl->window_start, __ATOMIC_RELAXED) < rl->interval_s &&
        __atomic_load_n(&rl->printed, __ATOMIC_RELAXED) >= rl->burst) {
        __atomic_fetch_add(&rl->suppressed, 1, __ATOMIC_RELAXED);
        return 0;
    }
    pthread_mutex_lock(&ratelimit_lock);
    if (now - rl->window_start >= rl->interval_s) {
        __atomic_store_n(&rl->window_start, now, __ATOMIC_RELAXED);
        __atomic_store_n(&rl->printed, 0, __ATOMIC_RELAXED);
    }
    pass = rl->printed < rl->burst;
    if (pass) {
        __atomic_store_n(&rl->printed, rl->printed + 1, __ATOMIC_RELAXED);
        *suppressed = __atomic_exchange_n(&rl->suppressed, 0, __ATOMIC_RELAXED);
    } else {
        __atomic_fetch_add(&rl->suppressed, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&ratelimit_lock);
    return pass;
}

void log_limited(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...)
{
    uint64_t suppressed;
    va_list ap;

    if (!log_wants(level) || !ratelimit_pass(rl, &suppressed))
        return;
    va_start(ap, fmt);
    log_vwrite(level, suppressed, fmt, ap);
    va_end(ap);
}

/* libevent says what failed but not how often: one limiter for all of it. */
static struct log_ratelimit libevent_rl = LOG_RATELIMIT_INIT(10, 10);

/* libevent forbids calling into it from here; log_limited does not. */
static void log_on_libevent(int severity, const char *msg)
{
    enum log_level level = LOG_LVL_ERROR;

    if (severity == EVENT_LOG_DEBUG)
        level = LOG_LVL_DEBUG;
    else if (severity == EVENT_LOG_MSG)
        level = LOG_LVL_INFO;
    else if (severity == EVENT_LOG_WARN)
        level = LOG_LVL_WARNING;
    log_limited(&libevent_rl, level, "libevent: %s", msg);
}

void log_capture_libevent(void)
{
    event_set_log_callback(log_on_libevent);
}
