/* The agent's one monotonic clock: timeouts, backoffs, deadlines, the
 * duplicate window and latencies are measured on it, never on the wall
 * clock (which an operator or NTP may step). The wall clock is for what
 * people read (logs, audit lines) and what must mean the same after a
 * reboot (the spool's stamps, with the boot clock and the boot's id). */
#ifndef RTR_CLOCK_H
#define RTR_CLOCK_H

#include <stdint.h>
#include <sys/time.h>

/* Milliseconds on CLOCK_MONOTONIC since an unspecified start. */
int64_t now_ms(void);

/* ms as a struct timeval (for event_add); negative counts as 0. */
struct timeval clock_tv(int64_t ms);

/* Unix time in ms (CLOCK_REALTIME): it may step either way. */
int64_t clock_wall_ms(void);

/* ms since this boot on CLOCK_BOOTTIME: like now_ms() but counting time
 * suspended, so that with clock_boot_id it says how old something written
 * earlier in the same boot is. */
int64_t clock_boot_ms(void);

/* This boot's id (/proc/sys/kernel/random/boot_id, 16 bytes) in out.
 * Returns 0, or -1 with out zeroed (unreadable: the boot is unknown). */
int clock_boot_id(unsigned char out[16]);

#endif
