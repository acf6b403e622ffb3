/* The agent's log: line format (terminal and journal), escaping of what
 * senders control, the length cap, level filtering and the rate limiter,
 * alone and under concurrent threads. stderr is captured into a file. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "unit.h"

/* Reads of a fine-grained clock (anything but the coarse ones), counted by
 * this stand-in for libc's clock_gettime (the executable's definition wins
 * for the agent library it links). */
static int fine_clock_reads;

int clock_gettime(clockid_t id, struct timespec *ts)
{
    if (id != CLOCK_MONOTONIC_COARSE && id != CLOCK_REALTIME_COARSE)
        __atomic_add_fetch(&fine_clock_reads, 1, __ATOMIC_RELAXED);
    return (int)syscall(SYS_clock_gettime, id, ts);
}

static char captured[1 << 20];

/* Ends the capture; returns the number of lines, which captured holds. */
static size_t capture_lines(void)
{
    size_t n = unit_capture_end(captured, sizeof(captured)), lines = 0;

    for (size_t i = 0; i < n; i++)
        lines += captured[i] == '\n';
    return lines;
}

/* "2026-11-01T10:00:00.123Z " */
static int is_timestamp(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ ";

    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return 0;
    }
    return 1;
}

/* The text of the first captured line after its timestamp. */
static struct str first_line_body(void)
{
    const char *nl = strchr(captured, '\n');

    if (nl == NULL || !is_timestamp(captured))
        return str_make(captured, strlen(captured));
    return str_make(captured + 25, (size_t)(nl - captured) - 25);
}

static const struct {
    const char *name;
    enum log_level level;
    const char *arg;  /* the sender-controlled part */
    const char *want; /* the line after the timestamp */
} lines[] = {
    {"plain", LOG_LVL_INFO, "hello", "info: peer said hello"},
    {"newline cannot forge a line", LOG_LVL_WARNING, "x\n2026-01-01T00:00:00.000Z error: forged",
     "warning: peer said x\\n2026-01-01T00:00:00.000Z error: forged"},
    {"control characters", LOG_LVL_ERROR,
     "a\x01"
     "b\x1b[31mc\x7f",
     "error: peer said a\\x01b\\x1b[31mc\\x7f"},
    {"CR and tab", LOG_LVL_INFO, "a\rb\tc", "info: peer said a\\rb\\tc"},
    {"invalid UTF-8", LOG_LVL_INFO, "caf\xc3 \xff\xfe", "info: peer said caf\\xc3 \\xff\\xfe"},
    {"overlong UTF-8", LOG_LVL_INFO, "\xc0\xaf", "info: peer said \\xc0\\xaf"},
    {"valid UTF-8 kept", LOG_LVL_INFO, "caf\xc3\xa9 \xe2\x82\xac",
     "info: peer said caf\xc3\xa9 \xe2\x82\xac"},
    {"backslash doubled", LOG_LVL_DEBUG, "DOMAIN\\user", "debug: peer said DOMAIN\\\\user"},
};

static void test_lines(void)
{
    log_set_level(LOG_LVL_DEBUG);
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        unit_capture_begin();
        log_msg(lines[i].level, "peer said %s", lines[i].arg);
        CHECK_INT(capture_lines(), 1);
        CHECK(is_timestamp(captured));
        CHECK_STR(lines[i].name, first_line_body(), lines[i].want);
    }
    log_set_level(LOG_LVL_INFO);
}

static void test_levels(void)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {
        {"error", LOG_LVL_ERROR},
        {"warning", LOG_LVL_WARNING},
        {"info", LOG_LVL_INFO},
        {"debug", LOG_LVL_DEBUG},
        {"warn", -1},
        {"INFO", -1},
        {"", -1},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        CHECK_INT(log_level_parse(names[i].name), names[i].level);

    log_set_level(LOG_LVL_WARNING);
    unit_capture_begin();
    log_debug("not shown");
    log_info("not shown");
    log_warning("shown %d", 1);
    log_error("shown %d", 2);
    CHECK_INT(capture_lines(), 2);
    CHECK(strstr(captured, "not shown") == NULL);
    log_set_level(LOG_LVL_INFO);
}

static void set_journal_stream(const struct stat *st, int match)
{
    char value[64];

    snprintf(value, sizeof(value), "%llu:%llu", (unsigned long long)st->st_dev,
             (unsigned long long)st->st_ino + (match ? 0 : 1));
    setenv("JOURNAL_STREAM", value, 1);
}

/* In a child whose first line is logged with JOURNAL_STREAM set (matching
 * stderr or not); returns the number of failed checks as its exit status. */
static void journal_child(const struct stat *st, int match)
{
    set_journal_stream(st, match);
    unit_capture_begin();
    log_error("disk %s", "full\n");
    log_warning("w");
    log_info("i");
    CHECK_INT(capture_lines(), 3);
    if (match)
        CHECK_STR("journal", str_make(captured, strlen(captured)), "<3>disk full\\n\n<4>w\n<6>i\n");
    else
        CHECK(is_timestamp(captured));
    /* Decided at the first line: a later change of the variable is not
     * looked at again (no getenv, sscanf, fstat per line). */
    set_journal_stream(st, !match);
    unit_capture_begin();
    log_info("i");
    CHECK_INT(capture_lines(), 1);
    CHECK(match ? strcmp(captured, "<6>i\n") == 0 : is_timestamp(captured));
    _exit(unit_failed > 255 ? 255 : unit_failed);
}

/* Under systemd: sd-daemon priority prefix, no timestamp (the journal has
 * its own) — but only when stderr really is the stream JOURNAL_STREAM names.
 * Runs first: the process must not have logged yet. */
static void test_journal(void)
{
    struct stat st;

    CHECK_INT(stat(unit_capture_path(), &st), 0);
    for (int match = 0; match <= 1; match++) {
        int status = -1;
        pid_t pid;

        fflush(NULL);
        pid = fork();
        if (pid == 0)
            journal_child(&st, match);
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    /* This process: a first line without JOURNAL_STREAM decides. */
    unsetenv("JOURNAL_STREAM");
    unit_capture_begin();
    log_info("i");
    set_journal_stream(&st, 1);
    log_info("i");
    CHECK_INT(capture_lines(), 2);
    CHECK(is_timestamp(captured) && is_timestamp(strchr(captured, '\n') + 1));
    unsetenv("JOURNAL_STREAM");
}

/* Long lines are cut on a whole escape and marked; one line stays one line. */
static void test_truncation(void)
{
    static char text[6000];
    struct str body;
    const char *marker = " [truncated]";
    size_t escaped;

    memset(text, 'a', sizeof(text) - 1);
    unit_capture_begin();
    log_info("%s", text);
    CHECK_INT(capture_lines(), 1);
    body = first_line_body();
    CHECK(body.len < 4096);
    CHECK(body.len > strlen(marker) &&
          memcmp(body.p + body.len - strlen(marker), marker, strlen(marker)) == 0);

    /* 1000 control bytes escape to 4000: over the cap, cut between escapes. */
    memset(text, '\x01', 1000);
    text[1000] = '\0';
    unit_capture_begin();
    log_info("%s", text);
    CHECK_INT(capture_lines(), 1);
    body = first_line_body();
    CHECK(body.len < 4096);
    escaped = body.len - strlen("info: ") - strlen(marker);
    CHECK_INT(escaped % 4, 0);
    CHECK(memcmp(body.p + body.len - strlen(marker) - 4, "\\x01", 4) == 0);

    /* Exactly at the cap: not marked. */
    memset(text, 'b', 2048);
    text[2048] = '\0';
    unit_capture_begin();
    log_info("%s", text);
    CHECK_INT(capture_lines(), 1);
    CHECK_INT(first_line_body().len, strlen("info: ") + 2048);
}

static void test_errno_kept(void)
{
    int after;

    unit_capture_begin();
    errno = EACCES;
    log_info("x");
    after = errno;
    capture_lines();
    CHECK_INT(after, EACCES);
}

/* A burst, then silence; the next line after the window reports the count. */
static void test_ratelimit(void)
{
    struct log_ratelimit rl = LOG_RATELIMIT_INIT(3600, 3);
    const char *note;

    unit_capture_begin();
    for (int i = 0; i < 10; i++)
        log_limited(&rl, LOG_LVL_WARNING, "bad frame from %s #%d", "192.0.2.1", i);
    CHECK_INT(capture_lines(), 3);
    CHECK(strstr(captured, "#2\n") != NULL);
    CHECK(strstr(captured, "#3") == NULL);
    CHECK(strstr(captured, "suppressed") == NULL);

    rl.window_start -= 3600; /* the window has passed */
    unit_capture_begin();
    log_limited(&rl, LOG_LVL_WARNING, "bad frame #%d", 10);
    log_limited(&rl, LOG_LVL_WARNING, "bad frame #%d", 11);
    CHECK_INT(capture_lines(), 2);
    note = strstr(captured, "bad frame #10 (7 similar lines suppressed)\n");
    CHECK(note != NULL);
    CHECK(strstr(captured, "bad frame #11\n") != NULL);

    /* Lines below the level are neither printed nor counted. */
    rl.window_start -= 3600;
    unit_capture_begin();
    log_limited(&rl, LOG_LVL_DEBUG, "quiet");
    log_limited(&rl, LOG_LVL_WARNING, "loud");
    CHECK_INT(capture_lines(), 1);
    CHECK(strstr(captured, "loud\n") != NULL);
}

/* A suppressed line is nearly free: no lock (not observable here) and no
 * read of a fine clock; the count it adds is still exact. */
static void test_ratelimit_fast_path(void)
{
    struct log_ratelimit rl = LOG_RATELIMIT_INIT(3600, 1);
    int reads;

    unit_capture_begin();
    log_limited(&rl, LOG_LVL_WARNING, "first");
    reads = __atomic_load_n(&fine_clock_reads, __ATOMIC_RELAXED);
    for (int i = 0; i < 1000; i++)
        log_limited(&rl, LOG_LVL_WARNING, "suppressed %d", i);
    CHECK_INT(__atomic_load_n(&fine_clock_reads, __ATOMIC_RELAXED) - reads, 0);
    rl.window_start -= 3600;
    log_limited(&rl, LOG_LVL_WARNING, "next");
    CHECK_INT(capture_lines(), 2);
    CHECK(strstr(captured, "next (1000 similar lines suppressed)\n") != NULL);
}

#define THREADS    4
#define PER_THREAD 500

static struct log_ratelimit shared_rl = LOG_RATELIMIT_INIT(3600, 5);

static void *limited_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++)
        log_limited(&shared_rl, LOG_LVL_ERROR, "flood %d", i);
    return NULL;
}

/* Long lines from several threads: each must come out whole. */
static void *line_worker(void *arg)
{
    char text[1500];
    int id = (int)(long)arg;

    memset(text, 'a' + id, sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    for (int i = 0; i < 100; i++)
        log_info("T%d %s", id, text);
    return NULL;
}

static void run_threads(void *(*fn)(void *))
{
    pthread_t t[THREADS];

    for (long i = 0; i < THREADS; i++)
        CHECK_INT(pthread_create(&t[i], NULL, fn, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}

static void test_threads(void)
{
    char want[64];
    size_t whole = 0;

    unit_capture_begin();
    run_threads(limited_worker);
    CHECK_INT(capture_lines(), 5);
    shared_rl.window_start -= 3600;
    unit_capture_begin();
    log_limited(&shared_rl, LOG_LVL_ERROR, "after");
    CHECK_INT(capture_lines(), 1);
    snprintf(want, sizeof(want), "after (%d similar lines suppressed)\n", THREADS * PER_THREAD - 5);
    CHECK(strstr(captured, want) != NULL);

    unit_capture_begin();
    run_threads(line_worker);
    CHECK_INT(capture_lines(), THREADS * 100);
    for (char *line = strtok(captured, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        const char *body = line + 25 + strlen("info: ");
        int id = body[1] - '0';
        size_t k = 3;

        while (body[k] == 'a' + id)
            k++;
        whole += is_timestamp(line) && id >= 0 && id < THREADS && k == 3 + 1499 && body[k] == '\0';
    }
    CHECK_INT(whole, THREADS * 100);
}

/* Every time the agent writes has this one form; milliseconds truncate. */
static void test_format_time(void)
{
    char buf[LOG_TIME_SIZE];
    struct timespec ts = {1790932364, 120999999};

    CHECK_INT(log_format_time(ts, buf), 24);
    CHECK_STR("time", str_make(buf, strlen(buf)), "2026-10-02T09:12:44.120Z");
    ts = (struct timespec){0, 0};
    log_format_time(ts, buf);
    CHECK_STR("epoch", str_make(buf, strlen(buf)), "1970-01-01T00:00:00.000Z");
}

int main(void)
{
    unsetenv("JOURNAL_STREAM");
    test_format_time();
    test_journal();
    test_lines();
    test_levels();
    test_truncation();
    test_errno_kept();
    test_ratelimit();
    test_ratelimit_fast_path();
    test_threads();
    return unit_report("test_log");
}
