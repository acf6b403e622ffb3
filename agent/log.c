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

#include "escape.h"

/* Escaped message bytes per line. With the prefix and the notes, a line stays
 * under PIPE_BUF (4096), so its single write(2) to the journal's stream
 * socket or a pipe is atomic and lines of different threads never mix. */
#define LOG_TEXT_MAX   2048
#define LOG_PREFIX_MAX 48
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

/* One lock for every rate limiter: the critical section is a few compares,
 * and struct log_ratelimit has to stay a plain, statically initialisable
 * struct. */
static pthread_mutex_t ratelimit_lock = PTHREAD_MUTEX_INITIALIZER;

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

static int log_enabled(enum log_level level)
{
    return (int)level <= atomic_load_explicit(&threshold, memory_order_relaxed);
}

/* systemd sets JOURNAL_STREAM to "device:inode" of the stream it connects to
 * stderr; comparing with stderr itself (as systemd.exec(5) advises) tells a
 * child whose stderr was redirected elsewhere from a real journal stream.
 * Checked per line: logging is rate-limited, and stderr can be redirected. */
static int stderr_is_journal(void)
{
    const char *stream = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (stream == NULL || sscanf(stream, "%llu:%llu", &dev, &ino) != 2)
        return 0;
    if (fstat(STDERR_FILENO, &st) == -1)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static size_t format_prefix(char *out, size_t cap, enum log_level level)
{
    struct timespec ts;
    struct tm tm;
    size_t n;

    if (stderr_is_journal())
        return (size_t)snprintf(out, cap, "<%c>", levels[level].journal_priority);
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(out + n, cap - n, ".%03ldZ %s: ", ts.tv_nsec / 1000000,
                          levels[level].name);
    return n;
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

    len = format_prefix(line, LOG_PREFIX_MAX, level);
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
    text = escape_text(line + len, LOG_TEXT_MAX + ESCAPE_MAX_EXPANSION, raw, (size_t)raw_len,
                       ESCAPE_LOG);
    if (text > LOG_TEXT_MAX) {
        text = escape_text(line + len, LOG_TEXT_MAX, raw, (size_t)raw_len, ESCAPE_LOG);
        truncated = 1;
    }
    len += text;
    if (truncated) {
        memcpy(line + len, truncated_marker, sizeof(truncated_marker) - 1);
        len += sizeof(truncated_marker) - 1;
    }
    if (suppressed > 0)
        len += (size_t)snprintf(line + len, LOG_NOTE_MAX, " (%llu similar lines suppressed)",
                                (unsigned long long)suppressed);
    line[len++] = '\n';
    write_line(line, len);
    errno = saved_errno;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    log_vwrite(level, 0, fmt, ap);
    va_end(ap);
}

/* Counts the line against rl. Returns nonzero when it may be written, with
 * *suppressed the number of lines dropped since the last one written. */
static int ratelimit_pass(struct log_ratelimit *rl, uint64_t *suppressed)
{
    struct timespec now;
    int pass;

    clock_gettime(CLOCK_MONOTONIC, &now);
    *suppressed = 0;
    pthread_mutex_lock(&ratelimit_lock);
    if (now.tv_sec - rl->window_start >= rl->interval_s) {
        rl->window_start = now.tv_sec;
        rl->printed = 0;
    }
    pass = rl->printed < rl->burst;
    if (pass) {
        rl->printed++;
        *suppressed = rl->suppressed;
        rl->suppressed = 0;
    } else {
        rl->suppressed++;
    }
    pthread_mutex_unlock(&ratelimit_lock);
    return pass;
}

void log_limited(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...)
{
    uint64_t suppressed;
    va_list ap;

    if (!log_enabled(level) || !ratelimit_pass(rl, &suppressed))
        return;
    va_start(ap, fmt);
    log_vwrite(level, suppressed, fmt, ap);
    va_end(ap);
}
