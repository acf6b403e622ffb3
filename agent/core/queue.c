/* The queue is a byte ring of records, each a 4-byte length and the bytes.
 * A record never wraps: when the end of the ring is too short, the writer
 * marks it skipped and starts again at offset 0. One mutex guards the
 * offsets; record bytes are copied in under it (short: records are single
 * lines) and read by the consumer outside it, because producers never write
 * between head and tail. */
#include "queue.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "errors.h"

#define QUEUE_HDR  sizeof(uint32_t)
#define QUEUE_WRAP UINT32_MAX /* a header meaning "the next record is at offset 0" */

struct queue {
    pthread_mutex_t lock;
    char *ring;
    size_t cap;        /* ring bytes */
    size_t head, tail; /* next record to read, next byte to write */
    size_t used;       /* bytes taken, the end skipped at a wrap included */
    size_t count;      /* records queued (a peeked one too, until released) */
    size_t high, low;
    int closed;
    int blocked;
    struct queue_waiter *armed;
    /* Producers held back (blocked, or a waiter armed): the finished
     * stretches, and since when the current one runs. */
    int64_t held_ms, held_since_ms;
    void (*notify)(void *arg); /* the consumer's event-loop wakeup, or NULL */
    void *notify_arg;
};

int queue_new(size_t high, size_t ring_bytes, struct queue **out)
{
    struct queue *q = NULL;
    int rc = ERR_NOMEM;

    *out = NULL;
    if (high == 0 || ring_bytes <= QUEUE_HDR || ring_bytes >= QUEUE_WRAP)
        return ERR_INVALID;
    q = calloc(1, sizeof(*q));
    if (q == NULL)
        goto out;
    q->ring = malloc(ring_bytes);
    if (q->ring == NULL)
        goto out;
    q->cap = ring_bytes;
    q->high = high;
    q->low = high / 2;
    pthread_mutex_init(&q->lock, NULL);
    *out = q; /* transferred */
    q = NULL;
    rc = 0;
out:
    if (q != NULL)
        free(q->ring);
    free(q);
    return rc;
}

void queue_free(struct queue *q)
{
    if (q == NULL)
        return;
    pthread_mutex_destroy(&q->lock);
    free(q->ring);
    free(q);
}

static uint32_t queue_header(const struct queue *q, size_t at)
{
    uint32_t v;

    memcpy(&v, q->ring + at, QUEUE_HDR);
    return v;
}

/* Where a record of need bytes (header included) goes, or 0 when it does
 * not fit now. Data lives in [head, tail) unless the ring has wrapped
 * (tail < head, or tail == head while full). */
static int queue_place(struct queue *q, size_t need, size_t *pos)
{
    int wrapped = q->tail < q->head || (q->tail == q->head && q->count > 0);

    if (wrapped) {
        *pos = q->tail;
        return q->head - q->tail >= need;
    }
    if (q->cap - q->tail >= need) {
        *pos = q->tail;
        return 1;
    }
    if (q->head < need)
        return 0;
    if (q->cap - q->tail >= QUEUE_HDR) {
        uint32_t mark = QUEUE_WRAP;
        memcpy(q->ring + q->tail, &mark, QUEUE_HDR);
    }
    q->used += q->cap - q->tail;
    *pos = 0;
    return 1;
}

static int queue_holding(const struct queue *q)
{
    return q->blocked || q->armed != NULL;
}

/* Under the lock, after a change that may start or end a held stretch:
 * the clock is read only at those edges, not per push. */
static void queue_account(struct queue *q, int was_held)
{
    int held = queue_holding(q);
    int64_t now;

    if (held == was_held)
        return;
    now = now_ms();
    if (held)
        q->held_since_ms = now;
    else
        q->held_ms += now - q->held_since_ms;
}

/* Under the lock: disarms every waiter and returns them linked by
 * wake_next, for queue_wake outside the lock. A producer may re-arm (and
 * relink next) as soon as it is woken, hence the separate link. */
static struct queue_waiter *queue_disarm(struct queue *q)
{
    struct queue_waiter *wake = NULL, *w;
    int was_held = queue_holding(q);

    for (w = q->armed; w != NULL; w = w->next) {
        w->armed = 0;
        w->wake_next = wake;
        wake = w;
    }
    q->armed = NULL;
    queue_account(q, was_held);
    return wake;
}

static void queue_wake(struct queue_waiter *wake)
{
    struct queue_waiter *w;

    while (wake != NULL) {
        w = wake;
        wake = w->wake_next;
        w->wake(w->arg);
    }
}

/* Under the lock: the armed producers may push again. */
static int queue_may_wake(const struct queue *q)
{
    return q->armed != NULL && !q->blocked && q->count <= q->low && q->used <= q->cap / 2;
}

int queue_push(struct queue *q, const void *rec, size_t len, struct queue_waiter *w)
{
    size_t need = QUEUE_HDR + len;
    uint32_t hdr = (uint32_t)len;
    size_t pos;
    void (*notify)(void *arg) = NULL;
    int rc = ERR_BUSY;

    if (len > q->cap - QUEUE_HDR) /* cap > QUEUE_HDR: see queue_new */
        return ERR_TOOBIG;
    pthread_mutex_lock(&q->lock);
    if (!q->blocked && q->count < q->high && queue_place(q, need, &pos)) {
        memcpy(q->ring + pos, &hdr, QUEUE_HDR);
        memcpy(q->ring + pos + QUEUE_HDR, rec, len);
        q->tail = pos + need;
        q->used += need;
        q->count++;
        notify = q->count == 1 ? q->notify : NULL;
        rc = 0;
    } else if (w != NULL && !w->armed) {
        int was_held = queue_holding(q);

        w->armed = 1;
        w->next = q->armed;
        q->armed = w;
        queue_account(q, was_held);
    }
    pthread_mutex_unlock(&q->lock);
    if (notify != NULL && w != NULL && w->notify_later != NULL)
        w->notify_later(w->arg); /* it calls queue_notify at the end of its batch */
    else if (notify != NULL)
        notify(q->notify_arg);
    return rc;
}

void queue_notify(struct queue *q)
{
    void (*notify)(void *arg);

    pthread_mutex_lock(&q->lock);
    notify = q->notify;
    pthread_mutex_unlock(&q->lock);
    if (notify != NULL)
        notify(q->notify_arg);
}

void queue_set_notify(struct queue *q, void (*notify)(void *arg), void *arg)
{
    pthread_mutex_lock(&q->lock);
    q->notify = notify;
    q->notify_arg = arg;
    pthread_mutex_unlock(&q->lock);
}

int queue_peek(struct queue *q, struct str *rec)
{
    uint32_t len;

    pthread_mutex_lock(&q->lock);
    if (q->count == 0) {
        pthread_mutex_unlock(&q->lock);
        return ERR_AGAIN;
    }
    /* A record never starts in the end the writer skipped when it wrapped. */
    if (q->cap - q->head < QUEUE_HDR || queue_header(q, q->head) == QUEUE_WRAP) {
        q->used -= q->cap - q->head;
        q->head = 0;
    }
    len = queue_header(q, q->head);
    *rec = str_make(q->ring + q->head + QUEUE_HDR, len);
    pthread_mutex_unlock(&q->lock);
    return 0;
}

void queue_release(struct queue *q)
{
    struct queue_waiter *wake = NULL;
    size_t need;

    pthread_mutex_lock(&q->lock);
    need = QUEUE_HDR + queue_header(q, q->head);
    q->head += need;
    q->used -= need;
    q->count--;
    if (q->count == 0)
        q->head = q->tail = q->used = 0;
    if (queue_may_wake(q))
        wake = queue_disarm(q);
    pthread_mutex_unlock(&q->lock);
    queue_wake(wake);
}

void queue_block(struct queue *q, int blocked)
{
    struct queue_waiter *wake = NULL;
    int was_held, was_blocked;

    pthread_mutex_lock(&q->lock);
    was_held = queue_holding(q);
    was_blocked = q->blocked;
    q->blocked = blocked != 0;
    queue_account(q, was_held);
    if (was_blocked && queue_may_wake(q))
        wake = queue_disarm(q);
    pthread_mutex_unlock(&q->lock);
    queue_wake(wake);
}

int queue_blocked(struct queue *q)
{
    int blocked;

    pthread_mutex_lock(&q->lock);
    blocked = q->blocked;
    pthread_mutex_unlock(&q->lock);
    return blocked;
}

double queue_held_seconds(struct queue *q)
{
    int64_t ms;

    pthread_mutex_lock(&q->lock);
    ms = q->held_ms;
    if (queue_holding(q))
        ms += now_ms() - q->held_since_ms;
    pthread_mutex_unlock(&q->lock);
    return (double)ms / 1000.0;
}

void queue_close(struct queue *q)
{
    void (*notify)(void *arg);

    pthread_mutex_lock(&q->lock);
    q->closed = 1;
    notify = q->notify;
    pthread_mutex_unlock(&q->lock);
    if (notify != NULL)
        notify(q->notify_arg); /* an event-loop consumer sees the end too */
}

int queue_done(struct queue *q)
{
    int done;

    pthread_mutex_lock(&q->lock);
    done = q->closed && q->count == 0;
    pthread_mutex_unlock(&q->lock);
    return done;
}

size_t queue_length(struct queue *q)
{
    size_t n;

    pthread_mutex_lock(&q->lock);
    n = q->count;
    pthread_mutex_unlock(&q->lock);
    return n;
}

size_t queue_bytes(struct queue *q)
{
    size_t n;

    pthread_mutex_lock(&q->lock);
    n = q->used;
    pthread_mutex_unlock(&q->lock);
    return n;
}
