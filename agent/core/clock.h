/* The agent's one monotonic clock: timeouts, backoffs, deadlines and
 * latencies are measured on it, never on the wall clock (which an operator
 * or NTP may step). */
#ifndef RTR_CLOCK_H
#define RTR_CLOCK_H

#include <stdint.h>
#include <sys/time.h>

/* Milliseconds on CLOCK_MONOTONIC since an unspecified start. */
int64_t now_ms(void);

/* ms as a struct timeval (for event_add); negative counts as 0. */
struct timeval clock_tv(int64_t ms);

#endif
