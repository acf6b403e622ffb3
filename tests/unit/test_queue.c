/* The bounded queue: watermark scenarios as a table of operations, FIFO
 * order across ring wraps against a model, close/done, and several producer
 * threads that wait to be woken whenever the queue is full: every record
 * must arrive once, in per-producer order, with no lost wake-up. Then the
 * blocked state: pushes refused and waiters armed while blocked, each woken
 * once at the unblock (or at the low mark after it), the held-back seconds,
 * and a producer against a consumer that blocks and unblocks all the time. */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errors.h"
#include "core/queue.h"
#include "unit.h"

static void count_wake(void *arg)
{
    (*(int *)arg)++;
}

/* One step of a scenario: 'p' pushes len bytes expecting rc, 'r' pops and
 * releases the oldest record; after each step the waiter's wake count must
 * be wakes and the queue hold len_after records. */
struct step {
    char op;
    size_t len;
    int rc;
    int wakes;
    size_t len_after;
};

#define MAX_STEPS 12

static const struct {
    const char *name;
    size_t high, ring;
    struct step steps[MAX_STEPS];
} scenarios[] = {
    {"high mark 4, low mark 2",
     4,
     4096,
     {{'p', 10, 0, 0, 1},
      {'p', 10, 0, 0, 2},
      {'p', 10, 0, 0, 3},
      {'p', 10, 0, 0, 4},
      {'p', 10, ERR_BUSY, 0, 4},
      {'p', 10, ERR_BUSY, 0, 4}, /* armed once */
      {'r', 0, 0, 0, 3},         /* above the low mark: no wake yet */
      {'r', 0, 0, 1, 2},         /* at the low mark: one wake */
      {'r', 0, 0, 1, 1},         /* nobody armed: no more wakes */
      {'p', 10, 0, 1, 2}}},
    {"high mark 1",
     1,
     4096,
     {{'p', 1, 0, 0, 1}, {'p', 1, ERR_BUSY, 0, 1}, {'r', 0, 0, 1, 0}, {'p', 1, 0, 1, 1}}},
    {"byte ring full before the high mark, then a wrap",
     100,
     64,
     {{'p', 20, 0, 0, 1},
      {'p', 20, 0, 0, 2},
      {'p', 20, ERR_BUSY, 0, 2},
      {'r', 0, 0, 1, 1},  /* 24 of 64 bytes used: at half */
      {'p', 20, 0, 1, 2}, /* wraps to offset 0 */
      {'r', 0, 0, 1, 1},
      {'r', 0, 0, 1, 0},
      {'p', 60, 0, 1, 1}}},
    {"records that can never fit",
     10,
     64,
     {{'p', 61, ERR_TOOBIG, 0, 0},
      {'p', 64, ERR_TOOBIG, 0, 0},
      {'p', 60, 0, 0, 1},
      {'p', 0, ERR_BUSY, 0, 1},
      {'r', 0, 0, 1, 0}}},
    {"empty records",
     3,
     64,
     {{'p', 0, 0, 0, 1},
      {'p', 0, 0, 0, 2},
      {'p', 0, 0, 0, 3},
      {'p', 0, ERR_BUSY, 0, 3},
      {'r', 0, 0, 0, 2},
      {'r', 0, 0, 1, 1}}},
};

static void test_scenarios(void)
{
    char data[128];

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)('a' + i % 26);
    for (size_t s = 0; s < sizeof(scenarios) / sizeof(scenarios[0]); s++) {
        struct queue *q;
        int wakes = 0;
        struct queue_waiter w = {.wake = count_wake, .arg = &wakes};
        struct str rec;

        CHECK_INT(queue_new(scenarios[s].high, scenarios[s].ring, &q), 0);
        for (int k = 0; k < MAX_STEPS && scenarios[s].steps[k].op != 0; k++) {
            const struct step *st = &scenarios[s].steps[k];
            int rc = 0;

            if (st->op == 'p') {
                rc = queue_push(q, data, st->len, &w);
            } else {
                rc = queue_peek(q, &rec);
                if (rc == 0)
                    queue_release(q);
            }
            if (rc != st->rc || wakes != st->wakes || queue_length(q) != st->len_after)
                UNIT_FAIL("%s: step %d '%c': rc %d want %d, wakes %d want %d, length %zu "
                          "want %zu",
                          scenarios[s].name, k, st->op, rc, st->rc, wakes, st->wakes,
                          queue_length(q), st->len_after);
            else
                unit_passed++;
        }
        queue_free(q);
    }
}

/* Random pushes and pops against a model FIFO: contents and order survive
 * every wrap of a small ring. */
static void test_fifo_model(void)
{
    enum { N = 20000, MODEL = 64 };
    size_t model_len[MODEL];
    unsigned char model_seed[MODEL];
    size_t head = 0, tail = 0, n = 0;
    unsigned char buf[200];
    struct queue *q;
    struct str rec;
    int bad = 0;

    srand(12345);
    CHECK_INT(queue_new(MODEL, 1000, &q), 0);
    for (int i = 0; i < N; i++) {
        if (rand() % 2 == 0) {
            size_t len = (size_t)(rand() % 200);
            unsigned char seed = (unsigned char)rand();
            for (size_t k = 0; k < len; k++)
                buf[k] = (unsigned char)(seed + k);
            int rc = queue_push(q, buf, len, NULL);
            if (rc == 0) {
                model_len[tail] = len;
                model_seed[tail] = seed;
                tail = (tail + 1) % MODEL;
                n++;
            } else if (rc != ERR_BUSY || n == 0) {
                bad++; /* an empty queue always takes a record that fits */
            }
        } else if (n > 0) {
            if (queue_peek(q, &rec) != 0 || rec.len != model_len[head]) {
                bad++;
                break;
            }
            for (size_t k = 0; k < rec.len; k++)
                if ((unsigned char)rec.p[k] != (unsigned char)(model_seed[head] + k))
                    bad++;
            queue_release(q);
            head = (head + 1) % MODEL;
            n--;
        }
        if (queue_length(q) != n)
            bad++;
    }
    CHECK_INT(bad, 0);
    queue_free(q);
}

static void test_close(void)
{
    struct queue *q;
    struct str rec;

    CHECK_INT(queue_new(8, 256, &q), 0);
    CHECK_INT(queue_push(q, "x", 1, NULL), 0);
    queue_close(q);
    CHECK(!queue_done(q)); /* closed, but a record is left */
    CHECK_INT(queue_peek(q, &rec), 0);
    CHECK_STR("close", rec, "x");
    queue_release(q);
    CHECK(queue_done(q));
    CHECK_INT(queue_peek(q, &rec), ERR_AGAIN);
    queue_free(q);

    CHECK_INT(queue_new(0, 256, &q), ERR_INVALID);
    CHECK(q == NULL);
    queue_free(NULL);
}

enum { PRODUCERS = 4, PER_PRODUCER = 50000 };

struct producer {
    struct queue *q;
    int id;
    sem_t woken;
    struct queue_waiter w;
    int busy, lost_wakeups;
};

static void post_wake(void *arg)
{
    sem_post(arg);
}

/* A wake-up that never comes is a bug the test must report, not a hang.
 * Returns nonzero when s was posted within 10 s. */
static int sem_wait_10s(sem_t *s)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    return sem_timedwait(s, &ts) == 0;
}

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    char line[32];

    for (int seq = 0; seq < PER_PRODUCER; seq++) {
        int len = snprintf(line, sizeof(line), "%d:%d", p->id, seq);
        while (queue_push(p->q, line, (size_t)len, &p->w) == ERR_BUSY) {
            p->busy++;
            /* As a worker's loop would: wait for the wake-up, then retry. */
            if (!sem_wait_10s(&p->woken)) {
                p->lost_wakeups++;
                return NULL;
            }
        }
    }
    return NULL;
}

static void test_producers(void)
{
    struct producer prod[PRODUCERS];
    pthread_t th[PRODUCERS];
    int next_seq[PRODUCERS] = {0};
    struct queue *q;
    struct str rec;
    long got = 0, bad = 0, busy = 0, lost = 0;
    sem_t nonempty;

    /* Small on purpose: producers hit the high mark all the time. */
    CHECK_INT(queue_new(16, 512, &q), 0);
    sem_init(&nonempty, 0, 0);
    queue_set_notify(q, post_wake, &nonempty);
    for (int i = 0; i < PRODUCERS; i++) {
        prod[i] = (struct producer){.q = q, .id = i};
        sem_init(&prod[i].woken, 0, 0);
        prod[i].w = (struct queue_waiter){.wake = post_wake, .arg = &prod[i].woken};
        pthread_create(&th[i], NULL, producer_main, &prod[i]);
    }
    while (got < (long)PRODUCERS * PER_PRODUCER) {
        int id, seq;
        char text[32];

        /* As the delivery thread's loop would: drain, then wait for the
         * notification of the push that makes the queue non-empty. */
        if (queue_peek(q, &rec) != 0) {
            if (!sem_wait_10s(&nonempty)) {
                UNIT_FAIL("consumer: not notified for 10 s after %ld records", got);
                break;
            }
            continue;
        }
        snprintf(text, sizeof(text), "%.*s", (int)rec.len, rec.p);
        if (sscanf(text, "%d:%d", &id, &seq) != 2 || id < 0 || id >= PRODUCERS ||
            seq != next_seq[id])
            bad++;
        else
            next_seq[id]++;
        queue_release(q);
        got++;
    }
    for (int i = 0; i < PRODUCERS; i++) {
        pthread_join(th[i], NULL);
        busy += prod[i].busy;
        lost += prod[i].lost_wakeups;
        sem_destroy(&prod[i].woken);
    }
    CHECK_INT(bad, 0);
    CHECK_INT(lost, 0);
    CHECK_INT(got, (long)PRODUCERS * PER_PRODUCER);
    CHECK(busy > 0); /* the high mark was really exercised */
    CHECK_INT(queue_length(q), 0);
    sem_destroy(&nonempty);
    queue_free(q);
}

/* The bytes gauge of /metrics: each record with its 4-byte header, and the
 * end of the ring a wrapped record skipped, until it is released. */
static void test_bytes(void)
{
    static const char text[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    struct queue *q;
    struct str rec;

    CHECK_INT(queue_new(8, 64, &q), 0);
    CHECK_INT(queue_bytes(q), 0);
    CHECK_INT(queue_push(q, text, 30, NULL), 0);
    CHECK_INT(queue_push(q, text, 3, NULL), 0);
    CHECK_INT(queue_bytes(q), 34 + 7);
    CHECK_INT(queue_peek(q, &rec), 0);
    queue_release(q);
    CHECK_INT(queue_bytes(q), 7);
    /* 23 bytes at the end are too short for 30: skipped, counted until read. */
    CHECK_INT(queue_push(q, text, 26, NULL), 0);
    CHECK_INT(queue_bytes(q), 7 + 23 + 30);
    CHECK_INT(queue_peek(q, &rec), 0);
    queue_release(q);
    CHECK_INT(queue_peek(q, &rec), 0);
    CHECK_INT(queue_bytes(q), 30);
    queue_release(q);
    CHECK_INT(queue_bytes(q), 0);
    queue_free(q);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* While blocked: every push refused and its waiter armed (once), the
 * consumer still drains; the unblock wakes each armed waiter exactly once. */
static void test_block(void)
{
    struct queue *q;
    int wakes_a = 0, wakes_b = 0;
    struct queue_waiter a = {.wake = count_wake, .arg = &wakes_a};
    struct queue_waiter b = {.wake = count_wake, .arg = &wakes_b};
    struct str rec;

    CHECK_INT(queue_new(8, 4096, &q), 0);
    CHECK_INT(queue_blocked(q), 0);
    CHECK_INT(queue_push(q, "one", 3, &a), 0);
    queue_block(q, 1);
    CHECK_INT(queue_blocked(q), 1);
    CHECK_INT(queue_push(q, "two", 3, &a), ERR_BUSY); /* far below the high mark */
    CHECK_INT(a.armed, 1);
    CHECK_INT(queue_push(q, "two", 3, &a), ERR_BUSY); /* armed once, not twice */
    CHECK_INT(queue_push(q, "two", 3, &b), ERR_BUSY);
    CHECK_INT(b.armed, 1);
    CHECK_INT(queue_push(q, "two", 3, NULL), ERR_BUSY);
    CHECK_INT(queue_length(q), 1);
    /* The consumer drains what was queued; no wake while still blocked. */
    CHECK_INT(queue_peek(q, &rec), 0);
    CHECK_STR("blocked peek", rec, "one");
    queue_release(q);
    CHECK_INT(queue_length(q), 0);
    CHECK_INT(wakes_a + wakes_b, 0);
    queue_block(q, 1); /* again: nothing changes */
    CHECK_INT(wakes_a + wakes_b, 0);
    queue_block(q, 0);
    CHECK_INT(queue_blocked(q), 0);
    CHECK_INT(wakes_a, 1);
    CHECK_INT(wakes_b, 1);
    CHECK_INT(a.armed, 0);
    CHECK_INT(b.armed, 0);
    queue_block(q, 0); /* nothing armed any more: no second wake */
    CHECK_INT(wakes_a + wakes_b, 2);
    CHECK_INT(queue_push(q, "two", 3, &a), 0);
    /* Blocked and unblocked with nobody waiting: no wake at all. */
    queue_block(q, 1);
    queue_block(q, 0);
    CHECK_INT(wakes_a + wakes_b, 2);
    CHECK_INT(queue_push(q, "three", 5, &a), 0);
    CHECK_INT(queue_length(q), 2);
    queue_free(q);

    /* Not blocked, a waiter armed for a record the ring cannot take yet: an
     * unblock is no event for it, only the consumer's release is. */
    wakes_a = 0;
    CHECK_INT(queue_new(10, 64, &q), 0);
    CHECK_INT(queue_push(q, "0123456789abcdefghij", 20, &a), 0);
    CHECK_INT(queue_push(q, "", 60, &a), ERR_BUSY);
    CHECK_INT(a.armed, 1);
    queue_block(q, 0);
    CHECK_INT(wakes_a, 0);
    CHECK_INT(queue_peek(q, &rec), 0);
    queue_release(q);
    CHECK_INT(wakes_a, 1);
    queue_free(q);
}

/* Blocked while full: the wake comes once the queue is both unblocked and at
 * its low mark, whichever happens last, and only once. */
static void test_block_full(void)
{
    struct queue *q;
    int wakes = 0;
    struct queue_waiter w = {.wake = count_wake, .arg = &wakes};
    struct str rec;

    CHECK_INT(queue_new(4, 4096, &q), 0);
    for (int i = 0; i < 4; i++)
        CHECK_INT(queue_push(q, "x", 1, &w), 0);
    CHECK_INT(queue_push(q, "x", 1, &w), ERR_BUSY); /* full: armed */
    queue_block(q, 1);
    for (int i = 0; i < 3; i++) { /* down to 1, under the low mark, still blocked */
        CHECK_INT(queue_peek(q, &rec), 0);
        queue_release(q);
    }
    CHECK_INT(wakes, 0);
    CHECK_INT(w.armed, 1);
    queue_block(q, 0); /* unblocked last: this wakes */
    CHECK_INT(wakes, 1);

    /* Unblocked while still full: the low mark wakes, not the unblock. */
    for (int i = 0; i < 3; i++)
        CHECK_INT(queue_push(q, "x", 1, &w), 0);
    queue_block(q, 1);
    CHECK_INT(queue_push(q, "x", 1, &w), ERR_BUSY);
    queue_block(q, 0);
    CHECK_INT(wakes, 1);
    CHECK_INT(w.armed, 1);
    CHECK_INT(queue_push(q, "x", 1, &w), ERR_BUSY); /* full: still refused */
    CHECK_INT(queue_peek(q, &rec), 0);
    queue_release(q); /* 3 left: above the low mark */
    CHECK_INT(wakes, 1);
    CHECK_INT(queue_peek(q, &rec), 0);
    queue_release(q); /* 2: the low mark */
    CHECK_INT(wakes, 2);
    CHECK_INT(w.armed, 0);
    queue_free(q);
}

/* Held-back time: blocked stretches and stretches with a waiter armed count
 * (the running one too); time with neither does not. */
static void test_held_seconds(void)
{
    struct queue *q;
    int wakes = 0;
    struct queue_waiter w = {.wake = count_wake, .arg = &wakes};
    struct str rec;
    double t0, t1, t2;

    CHECK_INT(queue_new(1, 4096, &q), 0);
    CHECK(queue_held_seconds(q) == 0.0);
    CHECK_INT(queue_push(q, "x", 1, &w), 0); /* at the high mark, nobody paused */
    sleep_ms(30);
    CHECK(queue_held_seconds(q) == 0.0);

    queue_block(q, 1);
    sleep_ms(60);
    t0 = queue_held_seconds(q); /* the running stretch */
    CHECK(t0 >= 0.05 && t0 < 1.0);
    queue_block(q, 0);
    t1 = queue_held_seconds(q);
    sleep_ms(30);
    CHECK(queue_held_seconds(q) == t1); /* not held: frozen */
    CHECK(t1 >= t0);

    CHECK_INT(queue_push(q, "y", 1, &w), ERR_BUSY); /* a producer paused at the high mark */
    sleep_ms(60);
    CHECK_INT(queue_peek(q, &rec), 0);
    queue_release(q); /* wakes: the stretch ends */
    CHECK_INT(wakes, 1);
    t2 = queue_held_seconds(q);
    CHECK(t2 - t1 >= 0.05 && t2 - t1 < 1.0);
    sleep_ms(30);
    CHECK(queue_held_seconds(q) == t2);

    /* Blocked with a waiter armed: one stretch, counted once. */
    queue_block(q, 1);
    CHECK_INT(queue_push(q, "z", 1, &w), ERR_BUSY);
    sleep_ms(60);
    queue_block(q, 0); /* empty: wakes, and neither holds any more */
    CHECK_INT(wakes, 2);
    t1 = queue_held_seconds(q);
    CHECK(t1 - t2 >= 0.05 && t1 - t2 < 0.5);
    queue_free(q);
}

/* The delivery thread blocks and unblocks the queue while a worker pushes:
 * every record arrives once and in order, and no wake-up is lost (a lost one
 * leaves the producer waiting, reported after 10 s instead of hanging). */
enum { TOGGLE_RECORDS = 20000 };

static void *toggle_producer_main(void *arg)
{
    struct producer *p = arg;
    char line[32];

    for (int seq = 0; seq < TOGGLE_RECORDS; seq++) {
        int len = snprintf(line, sizeof(line), "%d", seq);
        while (queue_push(p->q, line, (size_t)len, &p->w) == ERR_BUSY) {
            p->busy++;
            if (!sem_wait_10s(&p->woken)) {
                p->lost_wakeups++;
                return NULL;
            }
        }
    }
    return NULL;
}

static void test_block_threads(void)
{
    struct producer prod = {.id = 0};
    pthread_t th;
    struct queue *q;
    struct str rec;
    int got = 0, bad = 0, blocks = 0;
    unsigned step = 0;
    struct timespec start, now;

    CHECK_INT(queue_new(8, 512, &q), 0);
    prod.q = q;
    sem_init(&prod.woken, 0, 0);
    prod.w = (struct queue_waiter){.wake = post_wake, .arg = &prod.woken};
    pthread_create(&th, NULL, toggle_producer_main, &prod);
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (got < TOGGLE_RECORDS) {
        char text[32];

        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 10) {
            UNIT_FAIL("block/unblock: %d of %d records after 10 s", got, TOGGLE_RECORDS);
            break;
        }
        if (++step % 5 == 0) {
            blocks += !queue_blocked(q);
            queue_block(q, !queue_blocked(q));
        }
        if (queue_peek(q, &rec) != 0) {
            queue_block(q, 0); /* empty while blocked: only an unblock brings more */
            continue;
        }
        snprintf(text, sizeof(text), "%.*s", (int)rec.len, rec.p);
        bad += atoi(text) != got;
        queue_release(q);
        got++;
    }
    queue_block(q, 0);
    pthread_join(th, NULL);
    sem_destroy(&prod.woken);
    CHECK_INT(bad, 0);
    CHECK_INT(prod.lost_wakeups, 0);
    CHECK_INT(got, TOGGLE_RECORDS);
    CHECK(prod.busy > 0);
    CHECK(blocks > 1000);
    CHECK(queue_held_seconds(q) > 0.0);
    queue_free(q);
}

/* A producer with notify_later: the push that makes the queue non-empty
 * tells the producer, not the consumer, and later pushes tell nobody; the
 * consumer hears of them all from one queue_notify. A producer without it
 * still notifies the consumer itself. */
static void test_notify_later(void)
{
    struct queue *q;
    struct str rec;
    int consumer = 0, later = 0, wakes = 0;
    struct queue_waiter batched = {.wake = count_wake, .notify_later = count_wake, .arg = &later};
    struct queue_waiter plain = {.wake = count_wake, .arg = &wakes};

    CHECK_INT(queue_new(8, 256, &q), 0);
    queue_set_notify(q, count_wake, &consumer);
    for (int i = 0; i < 3; i++)
        CHECK_INT(queue_push(q, "x", 1, &batched), 0);
    CHECK_INT(later, 1);
    CHECK_INT(consumer, 0);
    queue_notify(q);
    CHECK_INT(consumer, 1);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(queue_peek(q, &rec), 0);
        queue_release(q);
    }
    CHECK_INT(queue_push(q, "y", 1, &plain), 0);
    CHECK_INT(consumer, 2);
    CHECK_INT(later, 1);
    CHECK_INT(wakes, 0);
    queue_free(q);
}

int main(void)
{
    test_scenarios();
    test_bytes();
    test_fifo_model();
    test_close();
    test_producers();
    test_block();
    test_block_full();
    test_held_seconds();
    test_block_threads();
    test_notify_later();
    return unit_report("test_queue");
}
