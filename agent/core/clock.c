#include "clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t now_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

struct timeval clock_tv(int64_t ms)
{
    if (ms < 0)
        ms = 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};
    return tv;
}

int64_t clock_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t clock_boot_ms(void)
{
    return clock_ms(CLOCK_BOOTTIME);
}

static int clock_hex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int clock_boot_id(unsigned char out[16])
{
    char text[64];
    size_t n = 0;
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    int ok = f != NULL && fgets(text, sizeof(text), f) != NULL;

    if (f != NULL)
        fclose(f);
    /* A UUID: 32 hex digits, dashes between groups. */
    for (const char *p = text; ok && *p != '\0' && *p != '\n' && n < 32; p++) {
        int d = clock_hex(*p);

        if (*p == '-')
            continue;
        if (d < 0)
            ok = 0;
        else if (n % 2 == 0)
            out[n++ / 2] = (unsigned char)(d << 4);
        else
            out[n++ / 2] |= (unsigned char)d;
    }
    if (ok && n == 32)
        return 0;
    memset(out, 0, 16);
    return -1;
}
