/* When to try again: what an HTTP answer means for an alert, how long to
 * wait before the next attempt (exponential backoff with full jitter), and
 * what a Retry-After header asks for. Pure functions. */
#ifndef RTR_RETRY_H
#define RTR_RETRY_H

#include <stdint.h>
#include <time.h>

enum retry_verdict {
    RETRY_DONE,  /* 2xx: delivered */
    RETRY_AGAIN, /* 408, 425, 429, 5xx, no answer (status 0): try again later */
    RETRY_DEAD,  /* any other status: SafeTitan refused it; dead-letter */
};

/* The verdict for an HTTP status (0: no response at all). */
enum retry_verdict retry_classify(int status);

/* The delay before attempt number `attempt` + 1 (attempt >= 1 failed
 * tries so far), in milliseconds: a uniform draw from [0, min(max_s,
 * min_s * 2^(attempt-1))] seconds ("full jitter": retries of many alerts
 * spread out instead of arriving together), never under 100 ms. random: 64
 * random bits. */
int64_t retry_backoff_ms(unsigned attempt, int min_s, int max_s, uint64_t random);

/* Retry-After as seconds from now, or -1 when there is none to honour
 * (absent, empty, garbage). A delta ("120") or an HTTP-date (IMF-fixdate,
 * RFC 850 or asctime form); 0, a negative delta or a date in the past is
 * 0 (at once); anything over cap_s is cap_s. An HTTP-date is the server's
 * clock, so it is measured from the response's Date header (date, the
 * server's now: RFC 9110 section 10.2.3) when that parses, and only
 * otherwise from now (our wall clock): a server whose clock is an hour off
 * ours still gets the pause it asked for. */
int64_t retry_after_s(const char *value, const char *date, time_t now, int cap_s);

#endif
