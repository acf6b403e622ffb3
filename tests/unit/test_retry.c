/* Retry decisions: the verdict per status, the full-jitter window growing
 * to its cap, and Retry-After in its forms (delta, the three HTTP-date
 * forms, 0, negative, huge, past, garbage); an HTTP-date measured from the
 * response's Date header (a server an hour behind or ahead of us), and
 * from our clock without a usable one. */
#include <stdint.h>
#include <stdio.h>

#include "core/retry.h"
#include "unit.h"

static void test_classify(void)
{
    static const struct {
        int status;
        enum retry_verdict want;
    } cases[] = {
        {200, RETRY_DONE},  {201, RETRY_DONE},  {204, RETRY_DONE},  {299, RETRY_DONE},
        {0, RETRY_AGAIN},   {408, RETRY_AGAIN}, {425, RETRY_AGAIN}, {429, RETRY_AGAIN},
        {500, RETRY_AGAIN}, {502, RETRY_AGAIN}, {503, RETRY_AGAIN}, {599, RETRY_AGAIN},
        {300, RETRY_DEAD},  {301, RETRY_DEAD},  {400, RETRY_DEAD},  {401, RETRY_DEAD},
        {403, RETRY_DEAD},  {404, RETRY_DEAD},  {409, RETRY_DEAD},  {422, RETRY_DEAD},
        {100, RETRY_DEAD},  {600, RETRY_DEAD},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (retry_classify(cases[i].status) == cases[i].want)
            unit_passed++;
        else
            UNIT_FAIL("status %d: got %d, want %d", cases[i].status,
                      retry_classify(cases[i].status), cases[i].want);
    }
}

/* The window doubles from min_s to max_s; a draw never leaves it; the
 * top draw reaches its edge and a zero draw is the 100 ms floor. */
static void test_backoff(void)
{
    static const struct {
        unsigned attempt;
        int min_s, max_s;
        int64_t window_ms;
    } cases[] = {
        {1, 1, 600, 1000},      {2, 1, 600, 2000},    {3, 1, 600, 4000},
        {10, 1, 600, 512000},   {11, 1, 600, 600000}, {40, 1, 600, 600000},
        {1000, 1, 600, 600000}, {1, 5, 5, 5000},      {3, 2, 7, 7000},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t w = cases[i].window_ms;
        int64_t top =
            retry_backoff_ms(cases[i].attempt, cases[i].min_s, cases[i].max_s, (uint64_t)w);
        int64_t zero = retry_backoff_ms(cases[i].attempt, cases[i].min_s, cases[i].max_s, 0);

        if (top == w && zero == 100)
            unit_passed++;
        else
            UNIT_FAIL("attempt %u (%d..%d s): top %lld want %lld, zero %lld want 100",
                      cases[i].attempt, cases[i].min_s, cases[i].max_s, (long long)top,
                      (long long)w, (long long)zero);
        for (uint64_t r = 1; r < 2000; r += 7) {
            int64_t d = retry_backoff_ms(cases[i].attempt, cases[i].min_s, cases[i].max_s,
                                         r * 0x9e3779b97f4a7c15ull);
            if (d < 100 || d > w) {
                UNIT_FAIL("attempt %u: %lld ms outside [100, %lld]", cases[i].attempt, (long long)d,
                          (long long)w);
                break;
            }
        }
    }
}

static void test_retry_after(void)
{
    /* 2026-11-23T10:00:00Z */
    const time_t now = 1795428000;
    static const struct {
        const char *value;
        int64_t want;
    } cases[] = {
        {NULL, -1},
        {"", -1},
        {"abc", -1},
        {"12abc", -1},
        {"-", -1},
        {"1.5", -1},
        {"0", 0},
        {"5", 5},
        {"120", 120},
        {"-3", 0},
        {"600", 600},
        {"601", 600},
        {"99999999999999999999999", 600},
        {"-99999999999999999999999", 0},
        {"Mon, 23 Nov 2026 10:00:30 GMT", 30},
        {"Monday, 23-Nov-26 10:01:00 GMT", 60},
        {"Mon Nov 23 10:00:10 2026", 10},
        {"Mon, 23 Nov 2026 09:00:00 GMT", 0},
        {"Tue, 24 Nov 2026 10:00:00 GMT", 600},
        {"Mon, 23 Nov 2026 10:00:30 GMT trailing", -1},
        {"Mon, 32 Nov 2026 10:00:30 GMT", -1},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = retry_after_s(cases[i].value, NULL, now, 600);

        if (got == cases[i].want)
            unit_passed++;
        else
            UNIT_FAIL("Retry-After \"%s\": got %lld, want %lld",
                      cases[i].value ? cases[i].value : "(none)", (long long)got,
                      (long long)cases[i].want);
    }
}

/* An HTTP-date is the server's clock: measured from its Date header, the
 * delay is right whichever way our clock is off; without a usable Date
 * header it falls back to ours. */
static void test_retry_after_date(void)
{
    /* Our wall clock: 2026-11-23T10:00:00Z. */
    const time_t now = 1795428000;
    static const struct {
        const char *name, *value, *date;
        int64_t want;
    } cases[] = {
        {"server 1 h behind", "Mon, 23 Nov 2026 09:00:30 GMT", "Mon, 23 Nov 2026 09:00:00 GMT", 30},
        {"server 1 h ahead", "Mon, 23 Nov 2026 11:00:30 GMT", "Mon, 23 Nov 2026 11:00:00 GMT", 30},
        {"same clock", "Mon, 23 Nov 2026 10:00:45 GMT", "Mon, 23 Nov 2026 10:00:00 GMT", 45},
        {"date after the retry time", "Mon, 23 Nov 2026 10:00:00 GMT",
         "Mon, 23 Nov 2026 10:00:05 GMT", 0},
        {"over the cap from Date", "Mon, 23 Nov 2026 09:30:00 GMT", "Mon, 23 Nov 2026 09:00:00 GMT",
         600},
        {"Date in RFC 850 form", "Mon, 23 Nov 2026 09:00:20 GMT", "Monday, 23-Nov-26 09:00:00 GMT",
         20},
        {"no Date: our clock", "Mon, 23 Nov 2026 10:00:30 GMT", NULL, 30},
        {"garbage Date: our clock", "Mon, 23 Nov 2026 10:00:30 GMT", "yesterday", 30},
        {"no Date, server 1 h behind: at once", "Mon, 23 Nov 2026 09:00:30 GMT", NULL, 0},
        {"a delta ignores Date", "20", "Mon, 23 Nov 2026 09:00:00 GMT", 20},
        {"a bad value ignores Date", "soon", "Mon, 23 Nov 2026 09:00:00 GMT", -1},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = retry_after_s(cases[i].value, cases[i].date, now, 600);

        if (got == cases[i].want)
            unit_passed++;
        else
            UNIT_FAIL("%s: got %lld, want %lld", cases[i].name, (long long)got,
                      (long long)cases[i].want);
    }
}

int main(void)
{
    test_classify();
    test_backoff();
    test_retry_after();
    test_retry_after_date();
    return unit_report("test_retry");
}
