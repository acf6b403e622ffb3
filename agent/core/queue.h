/* A bounded multi-producer, single-consumer queue of byte records between
 * the worker threads and one consumer thread: the decision queue, drained
 * by the delivery thread from its event loop (queue_set_notify).
 *
 * Producers never block: a push that would pass the high mark (a message
 * count) or does not fit the byte ring fails with ERR_BUSY and arms the
 * producer's waiter. When the consumer has drained the queue to the low mark
 * (half the high mark, and half the bytes), every armed waiter's wake() is
 * called once, from the consumer thread, outside the queue's lock. Records
 * are copied in at push and handed to the consumer in place (peek/release),
 * so the queue allocates only once, at creation.
 *
 * The consumer may also block the queue (queue_block) when it cannot make
 * what it takes durable: every push then fails with ERR_BUSY and arms its
 * waiter, as at the high mark, so inputs pause at once instead of when the
 * queue fills. The consumer still peeks and releases what is queued. Armed
 * waiters are woken once the queue is unblocked and down to its low mark:
 * by queue_block(q, 0) when it already is, otherwise by the queue_release
 * that gets it there. The queue also keeps the time producers were held
 * back (queue_held_seconds). */
#ifndef RTR_QUEUE_H
#define RTR_QUEUE_H

#include <stddef.h>

#include "str.h"

struct queue;

/* One per producer (a worker). wake, notify_later and arg are set by the
 * producer; the rest belongs to the queue. wake must be thread-safe and must
 * not call back into the queue (event_active() on the producer's loop is the
 * intent).
 *
 * notify_later (may be NULL): a push that makes the queue non-empty calls
 * it (on the pushing thread, outside the lock) instead of the consumer's
 * notify, and the producer then owes a queue_notify, soon: at the end of its
 * loop turn, so that the records of one read share one wake-up of the
 * consumer instead of one each. */
struct queue_waiter {
    void (*wake)(void *arg);
    void (*notify_later)(void *arg);
    void *arg;
    struct queue_waiter *next;      /* in the queue's armed list */
    struct queue_waiter *wake_next; /* in the list being woken */
    int armed;
};

/* high: most records queued at once (>= 1); ring_bytes: the byte ring's
 * size (each record takes its length plus a 4-byte header). Returns 0 and
 * *out (free with queue_free), or ERR_NOMEM / ERR_INVALID. */
int queue_new(size_t high, size_t ring_bytes, struct queue **out);

/* Frees q and any records still in it. No thread may use q any more. NULL is
 * fine. */
void queue_free(struct queue *q);

/* Copies rec[0..len) in. Returns 0; ERR_BUSY when the queue is blocked, at
 * its high mark or the record does not fit now (w, when not NULL, is armed
 * and will be woken); ERR_TOOBIG when the record could never fit. */
int queue_push(struct queue *q, const void *rec, size_t len, struct queue_waiter *w);

/* The consumer's wake-up: notify(arg) is called (by the pushing thread,
 * outside the queue's lock) whenever a push makes the queue non-empty, and
 * by queue_close; the consumer then drains it with queue_peek until
 * ERR_AGAIN and checks queue_done. notify must be thread-safe
 * (event_active() on the consumer's loop). Set it before any push. */
void queue_set_notify(struct queue *q, void (*notify)(void *arg), void *arg);

/* Calls the consumer's notify (see queue_waiter's notify_later). Any
 * thread; a notification with nothing queued is harmless. */
void queue_notify(struct queue *q);

/* Consumer: returns 0 with *rec pointing at the oldest record, in the
 * queue (valid until queue_release), or ERR_AGAIN when the queue is empty
 * (and when it is closed too: see queue_done). */
int queue_peek(struct queue *q, struct str *rec);

/* Consumer: drops the record queue_peek returned, and wakes the armed
 * producers when the queue is down to its low mark and not blocked. */
void queue_release(struct queue *q);

/* No more pushes will come (the consumer is notified). */
void queue_close(struct queue *q);

/* Nonzero once the queue is closed and empty: the consumer may stop. */
int queue_done(struct queue *q);

/* blocked nonzero: from now on every push fails with ERR_BUSY and arms its
 * waiter. blocked 0: pushes are taken again, and the armed waiters are woken
 * (from this thread, outside the lock) when the queue is at its low mark;
 * otherwise the queue_release that drains it there wakes them. Any thread;
 * repeating the current state changes nothing. */
void queue_block(struct queue *q, int blocked);

/* Nonzero while the queue is blocked. */
int queue_blocked(struct queue *q);

/* Seconds (CLOCK_MONOTONIC) during which producers were held back: the queue
 * was blocked or at least one producer's waiter was armed (paused at the high
 * mark or a full ring). The stretch running now is included. Only grows. */
double queue_held_seconds(struct queue *q);

/* Records queued now (a peeked one included). */
size_t queue_length(struct queue *q);

/* Ring bytes taken now: each record with its header, and the end of the
 * ring a record skipped when it wrapped. */
size_t queue_bytes(struct queue *q);

#endif
