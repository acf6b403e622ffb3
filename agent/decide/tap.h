/* --tap: the file every parsed message goes to as one JSON line (tcpdump for
 * the pipeline). Each worker's pipeline renders lines straight into its own
 * batch buffer and writes the batch itself when it fills or a millisecond
 * after it began: no queue, no copy and no thread hop per line. Whole batches
 * of whole lines go to one file opened O_APPEND, so workers' batches
 * interleave but lines do not mix (short of a write cut short, which only a
 * nearly full disk does).
 *
 * The writes happen on the workers' threads: a tap that cannot keep up (a
 * slow disk, a pipe whose reader stalls) slows intake as a full queue would.
 * A failed write drops that batch and every later line (logged once): the
 * tap is a debugging aid and must not stop the daemon. */
#ifndef RTR_TAP_H
#define RTR_TAP_H

#include <stddef.h>

struct tap;

/* Creates (truncates) path. Returns 0 and *out (free with tap_free), or
 * ERR_IO (logged, naming the file) / ERR_NOMEM. */
int tap_open(const char *path, struct tap **out);

/* Appends buf[0..len), whole lines, from any thread. Returns 0, or ERR_IO
 * once a write has failed (the lines are dropped). */
int tap_write(struct tap *t, const char *buf, size_t len);

/* Closes the file (every writer has stopped) and frees t. NULL is fine. */
void tap_free(struct tap *t);

#endif
