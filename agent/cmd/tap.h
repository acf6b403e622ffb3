/* --tap: a thread that drains the tap queue into a file, one JSON line per
 * message, with buffered write(2)s flushed at least every 100 ms and at the
 * end. */
#ifndef RTR_TAP_H
#define RTR_TAP_H

#include "core/queue.h"

struct tap;

/* Creates (truncates) path. Returns 0 and *out (free with tap_free), or
 * ERR_IO (logged, naming the file) / ERR_NOMEM. */
int tap_open(const char *path, struct queue *q, struct tap **out);

/* Starts the writer thread. It runs until q is closed and drained, then
 * calls done(arg) from its thread (which must be thread-safe) and ends.
 * Returns 0 or ERR_IO. */
int tap_start(struct tap *t, void (*done)(void *arg), void *arg);

/* Joins the thread (if started), flushes and closes the file, frees t. Call
 * after queue_close(); NULL is fine. */
void tap_free(struct tap *t);

#endif
