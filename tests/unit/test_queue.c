/* The bounded queue: watermark scenarios as a table of operations, FIFO
 * order across ring wraps against a model, close/done, and several producer
 * threads that wait to be woken whenever the queue is full: every record
 * must arrive once, in per-producer order, with no lost wake-up. */
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
    {"high mark 4, low mark 2", 4, 4096,
     {{'p', 10, 0, 0, 1}, {'p', 10, 0, 0, 2}, {'p', 10, 0, 0, 3}, {'p', 10, 0, 0, 4},
      {'p', 10, ERR_BUSY, 0, 4}, {'p', 10, ERR_BUSY, 0, 4}, /* armed once */
      {'r', 0, 0, 0, 3}, /* above the low mark: no wake yet */
      {'r', 0, 0, 1, 2}, /* at the low mark: one wake */
      {'r', 0, 0, 1, 1}, /* nobody armed: no more wakes */
      {'p', 10, 0, 1, 2}}},
    {"high mark 1", 1, 4096,
     {{'p', 1, 0, 0, 1}, {'p', 1, ERR_BUSY, 0, 1}, {'r', 0, 0, 1, 0}, {'p', 1, 0, 1, 1}}},
    {"byte ring full before the high mark, then a wrap", 100, 64,
     {{'p', 20, 0, 0, 1}, {'p', 20, 0, 0, 2}, {'p', 20, ERR_BUSY, 0, 2},
      {'r', 0, 0, 1, 1}, /* 24 of 64 bytes used: at half */
      {'p', 20, 0, 1, 2}, /* wraps to offset 0 */
      {'r', 0, 0, 1, 1}, {'r', 0, 0, 1, 0}, {'p', 60, 0, 1, 1}}},
    {"records that can never fit", 10, 64,
     {{'p', 61, ERR_TOOBIG, 0, 0}, {'p', 64, ERR_TOOBIG, 0, 0}, {'p', 60, 0, 0, 1},
      {'p', 0, ERR_BUSY, 0, 1}, {'r', 0, 0, 1, 0}}},
    {"empty records", 3, 64,
     {{'p', 0, 0, 0, 1}, {'p', 0, 0, 0, 2}, {'p', 0, 0, 0, 3}, {'p', 0, ERR_BUSY, 0, 3},
      {'r', 0, 0, 0, 2}, {'r', 0, 0, 1, 1}}},
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
                rc = queue_peek(q, &rec, 0);
                if (rc == 0)
                    queue_release(q);
            }
            if (rc != st->rc || wakes != st->wakes || queue_length(q) != st->len_after)
                UNIT_FAIL("%s: step %d '%c': rc %d want %d, wakes %d want %d, length %zu "
                          "want %zu", scenarios[s].name, k, st->op, rc, st->rc, wakes,
                          st->wakes, queue_length(q), st->len_after);
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
            if (queue_peek(q, &rec, 0) != 0 || rec.len != model_len[head]) {
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
    struct timespec a, b;

    CHECK_INT(queue_new(8, 256, &q), 0);
    CHECK_INT(queue_push(q, "x", 1, NULL), 0);
    queue_close(q);
    CHECK(!queue_done(q)); /* closed, but a record is left */
    CHECK_INT(queue_peek(q, &rec, 1000), 0);
    CHECK_STR("close", rec, "x");
    queue_release(q);
    CHECK(queue_done(q));
    clock_gettime(CLOCK_MONOTONIC, &a);
    CHECK_INT(queue_peek(q, &rec, 5000), ERR_AGAIN); /* at once, not after 5 s */
    clock_gettime(CLOCK_MONOTONIC, &b);
    CHECK(b.tv_sec - a.tv_sec < 2);
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

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    char line[32];

    for (int seq = 0; seq < PER_PRODUCER; seq++) {
        int len = snprintf(line, sizeof(line), "%d:%d", p->id, seq);
        while (queue_push(p->q, line, (size_t)len, &p->w) == ERR_BUSY) {
            struct timespec ts;
            p->busy++;
            /* As a worker's loop would: wait for the wake-up, then retry. A
             * wake-up that never comes is a bug the test must report, not a
             * hang. */
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 10;
            if (sem_timedwait(&p->woken, &ts) == -1) {
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

    /* Small on purpose: producers hit the high mark all the time. */
    CHECK_INT(queue_new(16, 512, &q), 0);
    for (int i = 0; i < PRODUCERS; i++) {
        prod[i] = (struct producer){.q = q, .id = i};
        sem_init(&prod[i].woken, 0, 0);
        prod[i].w = (struct queue_waiter){.wake = post_wake, .arg = &prod[i].woken};
        pthread_create(&th[i], NULL, producer_main, &prod[i]);
    }
    while (got < (long)PRODUCERS * PER_PRODUCER) {
        int id, seq;
        char text[32];

        if (queue_peek(q, &rec, 10000) != 0) {
            UNIT_FAIL("consumer: nothing for 10 s after %ld records", got);
            break;
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
    CHECK_INT(queue_peek(q, &rec, 0), 0);
    queue_release(q);
    CHECK_INT(queue_bytes(q), 7);
    /* 23 bytes at the end are too short for 30: skipped, counted until read. */
    CHECK_INT(queue_push(q, text, 26, NULL), 0);
    CHECK_INT(queue_bytes(q), 7 + 23 + 30);
    CHECK_INT(queue_peek(q, &rec, 0), 0);
    queue_release(q);
    CHECK_INT(queue_peek(q, &rec, 0), 0);
    CHECK_INT(queue_bytes(q), 30);
    queue_release(q);
    CHECK_INT(queue_bytes(q), 0);
    queue_free(q);
}

int main(void)
{
    test_scenarios();
    test_bytes();
    test_fifo_model();
    test_close();
    test_producers();
    return unit_report("test_queue");
}
