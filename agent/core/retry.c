/* Backoff and Retry-After. Full jitter follows the AWS architecture note
 * "Exponential Backoff And Jitter": sleep = random(0, min(cap, base * 2^n)),
 * which spreads a burst of failed alerts over the whole window. */
#include "retry.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Shortest delay: a storm of retries must not spin. */
#define RETRY_FLOOR_MS 100

enum retry_verdict retry_classify(int status)
{
    if (status >= 200 && status <= 299)
        return RETRY_DONE;
    if (status == 0 || status == 408 || status == 425 || status == 429 ||
        (status >= 500 && status <= 599))
        return RETRY_AGAIN;
    return RETRY_DEAD;
}

int64_t retry_backoff_ms(unsigned attempt, int min_s, int max_s, uint64_t random)
{
    int64_t ceiling = (int64_t)max_s * 1000, window = (int64_t)min_s * 1000;

    for (unsigned i = 1; i < attempt && window < ceiling; i++)
        window *= 2;
    if (window > ceiling)
        window = ceiling;
    window = (int64_t)(random % (uint64_t)(window + 1));
    return window < RETRY_FLOOR_MS ? RETRY_FLOOR_MS : window;
}

/* An HTTP-date (RFC 9110 section 5.6.7), in any of its three forms. */
static int retry_parse_date(const char *s, time_t *out)
{
    static const char *const forms[] = {
        "%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate */
        "%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850 */
        "%a %b %e %H:%M:%S %Y",      /* asctime */
    };

    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        struct tm tm;
        const char *end;

        memset(&tm, 0, sizeof(tm));
        end = strptime(s, forms[i], &tm);
        if (end != NULL && *end == '\0') {
            *out = timegm(&tm);
            return 0;
        }
    }
    return -1;
}

int64_t retry_after_s(const char *value, const char *date, time_t now, int cap_s)
{
    int64_t s;

    if (value == NULL || *value == '\0')
        return -1;
    if (*value == '-' || isdigit((unsigned char)*value)) {
        char *end;
        long long v;

        errno = 0;
        v = strtoll(value, &end, 10);
        if (*end != '\0' || end == value || (*value == '-' && end == value + 1))
            return -1;
        /* A delta too large for long long is still "wait the longest". */
        s = errno == ERANGE ? (v < 0 ? 0 : cap_s) : (v < 0 ? 0 : v);
    } else {
        time_t when, server_now;

        if (retry_parse_date(value, &when) != 0)
            return -1;
        if (date != NULL && retry_parse_date(date, &server_now) == 0)
            now = server_now;
        s = when <= now ? 0 : (int64_t)(when - now);
    }
    return s > cap_s ? cap_s : s;
}
