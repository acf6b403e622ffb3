/* Fuzz target for the RELP codec. The first input byte chooses max_data (see
 * fuzz_max_data); the rest is a stream of client frames. It is parsed the
 * way a session does it: relp_frame_parse at the front, drop *used bytes,
 * again, until an error or ERR_AGAIN. Every call must keep the contract of
 * relp.h, and each frame must also come out the same from a buffer holding
 * exactly its bytes (no look past the trailer) while every shorter prefix
 * is ERR_AGAIN. Each frame's data also goes through relp_offers_parse, and
 * an rsp built from it must parse back. Any breach aborts. Without a
 * max_data byte the seeds (samples, one message each) are single frames. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "relp.h"

#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* Prefix re-parsing costs frame length squared: only for short frames. */
#define FUZZ_PREFIX_MAX 512

/* Small limits exercise ERR_TOOBIG, large ones the normal path. */
static size_t fuzz_max_data(uint8_t b)
{
    return b < 0xf0 ? (size_t)b : (size_t)1 << (b - 0xf0 + 8);
}

static int fuzz_same(const struct relp_frame *a, const struct relp_frame *b, const char *pa,
                     const char *pb)
{
    return a->txnr == b->txnr && a->cmd == b->cmd && a->command.len == b->command.len &&
           a->command.p - pa == b->command.p - pb && a->data.len == b->data.len &&
           a->data.p - pa == b->data.p - pb;
}

/* The command table again, written out, as the oracle. */
static enum relp_command fuzz_command_of(struct str c)
{
    if (str_eq(c, STR_LIT("open")))
        return RELP_OPEN;
    if (str_eq(c, STR_LIT("syslog")))
        return RELP_SYSLOG;
    if (str_eq(c, STR_LIT("close")))
        return RELP_CLOSE;
    if (str_eq(c, STR_LIT("rsp")))
        return RELP_RSP;
    if (str_eq(c, STR_LIT("serverclose")))
        return RELP_SERVERCLOSE;
    return RELP_UNKNOWN;
}

static void fuzz_frame(const char *p, size_t len, size_t max_data, const struct relp_frame *f,
                       size_t used)
{
    struct relp_frame again;
    struct relp_offers offers;
    size_t again_used, k, n;
    char *copy, rsp[32];

    FUZZ_ASSERT(used > 0 && used <= len && used <= RELP_HEADER_MAX + max_data + 1);
    FUZZ_ASSERT(f->txnr <= RELP_TXNR_MAX);
    FUZZ_ASSERT(f->command.len >= 1 && f->command.len <= RELP_COMMAND_MAX);
    FUZZ_ASSERT(f->command.p > p && f->command.p + f->command.len < p + used);
    FUZZ_ASSERT(f->data.p != NULL && f->data.len <= max_data);
    FUZZ_ASSERT(f->data.p > f->command.p && f->data.p + f->data.len == p + used - 1);
    FUZZ_ASSERT(p[used - 1] == '\n');
    FUZZ_ASSERT(f->cmd == fuzz_command_of(f->command));

    /* Exactly the frame's bytes, in a buffer of that size: ASan catches a
     * look past the trailer. */
    copy = malloc(used);
    FUZZ_ASSERT(copy != NULL);
    memcpy(copy, p, used);
    FUZZ_ASSERT(relp_frame_parse(copy, used, max_data, &again, &again_used) == 0);
    FUZZ_ASSERT(again_used == used && fuzz_same(f, &again, p, copy));
    if (used <= FUZZ_PREFIX_MAX)
        for (k = 0; k < used; k++)
            FUZZ_ASSERT(relp_frame_parse(copy, k, max_data, &again, &again_used) == ERR_AGAIN &&
                        again_used == 0);
    free(copy);

    if (relp_offers_parse(f->data, &offers) == 0) {
        FUZZ_ASSERT(offers.version >= -1 && offers.version <= (int)RELP_TXNR_MAX);
        FUZZ_ASSERT(str_is_absent(offers.software) ||
                    (offers.software.p >= f->data.p &&
                     offers.software.p + offers.software.len <= f->data.p + f->data.len));
    }

    /* The answer to it must read back as an rsp with its txnr. */
    n = relp_rsp_format(rsp, sizeof(rsp), f->txnr, 200, "OK", STR_ABSENT);
    FUZZ_ASSERT(n > 0 && relp_frame_parse(rsp, n, 6, &again, &again_used) == 0);
    FUZZ_ASSERT(again_used == n && again.txnr == f->txnr && again.cmd == RELP_RSP);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data + 1;
    size_t len, pos = 0, used, max_data;
    struct relp_frame f;
    char *buf;
    int rc;

    if (size < 1)
        return 0;
    max_data = fuzz_max_data(data[0]);
    len = size - 1;
    buf = malloc(len > 0 ? len : 1); /* exact size, for ASan */
    FUZZ_ASSERT(buf != NULL);
    memcpy(buf, in, len);

    while ((rc = relp_frame_parse(buf + pos, len - pos, max_data, &f, &used)) == 0) {
        fuzz_frame(buf + pos, len - pos, max_data, &f, used);
        pos += used;
    }
    FUZZ_ASSERT(rc == ERR_AGAIN || rc == ERR_INVALID || rc == ERR_TOOBIG);
    FUZZ_ASSERT(used == 0);
    /* What is left when more is needed is a valid frame start: never more
     * than one whole frame's worth. */
    if (rc == ERR_AGAIN)
        FUZZ_ASSERT(len - pos < RELP_HEADER_MAX + max_data + 1);

    free(buf);
    return 0;
}
