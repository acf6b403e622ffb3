/* The spool's byte layout (spool_internal.h), and the pure helpers the
 * other spool files share: no I/O, no thread of its own.
 *
 * Byte layout. Every integer is little-endian and written byte by byte (no
 * struct is ever dumped), so a spool moves between machines.
 *
 *   segment file "seg-<16 lowercase hex digits>.spool":
 *     offset 0   8 bytes   magic "RTRSPOL1"
 *     offset 8   u32       version (2; 1 is still read)
 *     offset 12  records, back to back, up to the end of the file
 *
 *   record:
 *     offset 0   u32       len: bytes of type + id + the rest, 9 .. 9 + 32 + SPOOL_MAX_PAYLOAD
 *     offset 4   u32       CRC-32C (Castagnoli, reflected 0x82F63B78, init and final
 *                          xor 0xFFFFFFFF) over those len bytes
 *     offset 8   u8        type: 1 alert, 2 completion
 *     offset 9   u64       id
 *     offset 17            nothing for a completion (its len is exactly 9); for an alert:
 *       version 2:
 *     offset 17  i64       when it was appended: CLOCK_REALTIME, Unix ms
 *     offset 25  i64       the same moment on CLOCK_BOOTTIME, ms
 *     offset 33  16 bytes  the boot it was on (/proc/sys/kernel/random/boot_id)
 *     offset 49  len - 41  payload, 1 .. SPOOL_MAX_PAYLOAD bytes
 *       version 1:
 *     offset 17  len - 9   payload, 1 .. SPOOL_MAX_PAYLOAD bytes (its age is unknown)
 *
 * The stamp (offsets 17 .. 49) says how old an alert is at a restart (the
 * duplicate window is refilled from it, spool_stamp_age); all zero is
 * unknown. A compaction copy keeps its original's stamp; one from a version
 * 1 segment gets an unknown one.
 *
 * What the rest relies on:
 * - A segment's name is above every older segment's, and every id handed
 *   out while it is the newest is at least its name (a new segment takes
 *   the next id as its name). Records only go to the newest segment.
 * - A completion is always written after the alert record it names (an
 *   alert is copied by compaction only while it is pending), and segments
 *   are deleted oldest first: so a completion outlives every copy of its
 *   alert, and a restart never re-sends an alert whose completion reached
 *   the disk.
 * - A compaction copy has the id of its original: recovery keeps the last
 *   record of each id. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "spool.h"
#include "spool_internal.h"

/* ---- CRC-32C, little-endian integers, records ---- */

static uint32_t crc32c_table[256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_fill(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;

        for (int k = 0; k < 8; k++)
            c = (c & 1) != 0 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc32c_table[i] = c;
    }
}

void spool_crc32c_init(void)
{
    pthread_once(&crc32c_once, crc32c_fill);
}

uint32_t spool_crc32c(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;

    while (n-- > 0)
        c = crc32c_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return ~c;
}

void spool_put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

void spool_put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

uint32_t spool_get_u32(const unsigned char *p)
{
    uint32_t v = 0;

    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint64_t spool_get_u64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void spool_encode(unsigned char *p, int type, uint64_t id, const unsigned char *stamp,
                  struct str payload)
{
    size_t head = stamp != NULL ? SPOOL_STAMP : 0;

    spool_put_u32(p, (uint32_t)(9 + head + payload.len));
    p[8] = (unsigned char)type;
    spool_put_u64(p + 9, id);
    if (head > 0)
        memcpy(p + SPOOL_REC_HDR, stamp, head);
    if (payload.len > 0)
        memcpy(p + SPOOL_REC_HDR + head, payload.p, payload.len);
    spool_put_u32(p + 4, spool_crc32c(p + 8, 9 + head + payload.len));
}

void spool_stamp_put(unsigned char *p, const struct spool_stamp *st)
{
    spool_put_u64(p, (uint64_t)st->wall_ms);
    spool_put_u64(p + 8, (uint64_t)st->boot_ms);
    memcpy(p + 16, st->boot_id, sizeof(st->boot_id));
}

void spool_stamp_get(const unsigned char *p, struct spool_stamp *st)
{
    st->wall_ms = (int64_t)spool_get_u64(p);
    st->boot_ms = (int64_t)spool_get_u64(p + 8);
    memcpy(st->boot_id, p + 16, sizeof(st->boot_id));
}

static int spool_boot_known(const unsigned char id[16])
{
    static const unsigned char zero[16];

    return memcmp(id, zero, sizeof(zero)) != 0;
}

int64_t spool_stamp_age(const struct spool_stamp *then, const struct spool_stamp *now)
{
    int boots_known = spool_boot_known(then->boot_id) && spool_boot_known(now->boot_id);
    int64_t age;

    if (then->wall_ms == 0 && !spool_boot_known(then->boot_id))
        return 0;
    if (boots_known && memcmp(then->boot_id, now->boot_id, sizeof(now->boot_id)) == 0)
        age = now->boot_ms - then->boot_ms;
    else if ((age = now->wall_ms - then->wall_ms) < now->boot_ms && boots_known)
        age = now->boot_ms; /* another boot: it is older than this one */
    return age > 0 ? age : 0;
}

void spool_seg_name(char *out, uint64_t name)
{
    snprintf(out, SPOOL_NAME_SIZE, "seg-%016" PRIx64 ".spool", name);
}

/* The segment name's number, or -1 when name is not a segment's. */
int spool_parse_name(const char *name, uint64_t *out)
{
    uint64_t v = 0;

    if (strlen(name) != SPOOL_NAME_LEN || strncmp(name, "seg-", 4) != 0 ||
        strcmp(name + 20, ".spool") != 0)
        return -1;
    for (int i = 4; i < 20; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

        if (d < 0)
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 0;
}

/* ---- growable byte buffers ---- */

int spool_buf_reserve(struct spool_buf *b, size_t n)
{
    size_t cap = b->cap != 0 ? b->cap : 4096;
    unsigned char *p;

    if (b->cap - b->len >= n)
        return 0;
    while (cap - b->len < n)
        cap *= 2;
    p = realloc(b->p, cap);
    if (p == NULL)
        return ERR_NOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Grows *arr (of *cap elements of size sz) to hold n + 1. */
int spool_array_reserve(void *arr, size_t *cap, size_t n, size_t sz)
{
    void **a = arr, *p;
    size_t ncap = *cap != 0 ? *cap * 2 : 64;

    if (n < *cap)
        return 0;
    p = realloc(*a, ncap * sz);
    if (p == NULL)
        return ERR_NOMEM;
    *a = p;
    *cap = ncap;
    return 0;
}
