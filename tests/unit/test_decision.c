/* Decision records: round trips (one decision, the most a message can
 * make with the longest fields), decisions left out for over-long texts,
 * and corrupt or truncated records, which must be refused without a read
 * past their end (each is decoded from a heap copy of its exact size, so
 * the sanitizer build catches any over-read). The idempotency key each
 * decision carries (the bytes SafeTitan has always been sent, over the
 * host and event_ref as cut in the record), and the spool payload codec:
 * its exact bytes, a round trip, and payloads it must refuse. One hasher,
 * reused for every hash as a worker does, gives the same keys as a fresh
 * one, and the frame hash is plain SHA-256. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonw.h"
#include "decide/decision.h"
#include "errors.h"
#include "unit.h"

static struct decision_hasher *hasher; /* one for every test, as a worker has */
static char big[DECISION_MAX_FIELD + 2];
static char long_name[300];

static struct mapping_decision decision(const char *mapping, struct str rule, struct str user,
                                        struct str event, enum user_kind kind)
{
    return (struct mapping_decision){mapping, "test.json", rule, user, event, kind};
}

static struct str cstr(const char *s)
{
    return str_make(s, strlen(s));
}

/* Decodes rec (copied to a buffer of its exact size) into out[]; returns
 * how many decisions came out, or the error decision_next gave. */
static int decode(const char *rec, size_t len, struct decision_record *out, size_t max, char **copy)
{
    size_t pos = 0;
    int n = 0, rc;

    *copy = malloc(len > 0 ? len : 1);
    if (len > 0)
        memcpy(*copy, rec, len);
    while ((rc = decision_next(str_make(*copy, len), &pos, &out[n < (int)max ? n : 0])) == 0)
        n++;
    return rc == ERR_AGAIN ? n : rc;
}

static int within(struct str s, const char *rec, size_t len)
{
    return s.p != NULL && s.p >= rec && s.p + s.len <= rec + len;
}

static void same(const char *ctx, const struct decision_record *r, const struct mapping_decision *d)
{
    CHECK_STR(ctx, r->mapping, d->mapping);
    CHECK(str_eq(r->rule, d->rule));
    CHECK(str_eq(r->user, d->user));
    CHECK(str_eq(r->event, d->event));
    CHECK_INT(r->user_kind, d->user_kind);
}

static void test_one(void)
{
    struct mapping_decision d =
        decision("splunk-es-cef", cstr("Endpoint - Removable Media Mounted - Rule"),
                 cstr("EXAMPLE\\amorgan"), cstr("Removable Media"), USER_KIND_SAM);
    struct timespec when = {1791018764, 120000000};
    struct decision_record r[2];
    char buf[DECISION_RECORD_MAX], *copy;
    size_t dropped = 99;
    struct decision_origin o = {when, cstr("10.0.0.5:51514"), cstr("web01"), cstr("sha256:00ff"),
                                {0},  cstr("https")};
    size_t len = decision_encode(hasher, &d, NULL, 1, &o, buf, sizeof(buf), &dropped);

    CHECK(len > 0);
    CHECK_INT(dropped, 0);
    CHECK_INT(decode(buf, len, r, 2, &copy), 1);
    same("one", &r[0], &d);
    CHECK_STR("one", r[0].source, "10.0.0.5:51514");
    CHECK_STR("one", r[0].host, "web01");
    CHECK_STR("one", r[0].event_ref, "sha256:00ff");
    CHECK_STR("one", r[0].transport, "https");
    CHECK_INT(r[0].received.tv_sec, when.tv_sec);
    CHECK_INT(r[0].received.tv_nsec, when.tv_nsec);
    CHECK(within(r[0].rule, copy, len) && within(r[0].source, copy, len));
    /* SHA-256 of "web01\0<rule>\0EXAMPLE\\amorgan\0sha256:00ff\0". */
    CHECK_STR("one", r[0].key, "20680f8d10725b06ebb330ecb3ed278f86d022eef8c57ede616725e679b0997c");
    CHECK(within(r[0].key, copy, len));
    free(copy);
}

/* The key is made over the host and event_ref as the record holds them:
 * cut at 255 bytes. */
static void test_key_cut(void)
{
    static char host[300], ref[300];
    struct mapping_decision d =
        decision("m", STR_LIT("r"), STR_LIT("u"), STR_LIT("e"), USER_KIND_AUTO);
    struct decision_record r[1];
    char buf[DECISION_RECORD_MAX], *copy, key[DECISION_KEY_SIZE];
    size_t dropped, len;

    memset(host, 'h', sizeof(host));
    memset(ref, 'e', sizeof(ref));
    len = decision_encode(
        hasher, &d, NULL, 1,
        &(struct decision_origin){
            {1, 2}, STR_LIT("s"), str_make(host, 300), str_make(ref, 300), {0}, STR_LIT("")},
        buf, sizeof(buf), &dropped);
    CHECK_INT(decode(buf, len, r, 1, &copy), 1);
    CHECK_STR("cut", r[0].key, "986ceec0c6260c82ab5c13447659c325ed63ac0755d718d7a9675d64f5f85433");
    decision_key(hasher, str_make(host, 255), STR_LIT("r"), STR_LIT("u"), str_make(ref, 255), key);
    CHECK_STR("decision_key", r[0].key, key);
    free(copy);
}

/* The payload of test_one's decision, byte for byte what the first
 * version wrote (spools written before must still read), and back. */
static void test_payload(void)
{
    static const char want[] =
        "{\"v\":1,\"sec\":1791018764,\"nsec\":120000000,\"source\":\"10.0.0.5:51514\","
        "\"transport\":\"https\",\"mapping\":\"splunk-es-cef\",\"rule\":\"Removable "
        "\\\"Media\\\"\","
        "\"user\":\"EXAMPLE\\\\amorgan\",\"kind\":3,\"event\":\"Removable Media\","
        "\"key\":\"20680f8d10725b06ebb330ecb3ed278f86d022eef8c57ede616725e679b0997c\"}";
    struct decision_record d = {
        .received = {1791018764, 120000000},
        .source = STR_LIT("10.0.0.5:51514"),
        .host = STR_LIT("not in the payload"),
        .mapping = STR_LIT("splunk-es-cef"),
        .rule = STR_LIT("Removable \"Media\""),
        .user = STR_LIT("EXAMPLE\\amorgan"),
        .event = STR_LIT("Removable Media"),
        .user_kind = USER_KIND_SAM,
        .key = STR_LIT("20680f8d10725b06ebb330ecb3ed278f86d022eef8c57ede616725e679b0997c"),
        .transport = STR_LIT("https"),
    };
    /* What the versions before "transport" spooled still reads. */
    static const char older[] =
        "{\"v\":1,\"sec\":1,\"nsec\":2,\"source\":\"s\",\"mapping\":\"m\",\"rule\":\"r\","
        "\"user\":\"u\",\"kind\":0,\"event\":\"e\","
        "\"key\":\"20680f8d10725b06ebb330ecb3ed278f86d022eef8c57ede616725e679b0997c\"}";
    struct decision_payload p;
    struct jsonw w;

    jsonw_init(&w, 0);
    CHECK_INT(decision_payload_write(&d, &w), 0);
    CHECK_STR("payload", str_make(w.buf, w.len), want);
    CHECK_INT(decision_payload_read(str_make(w.buf, w.len), &p), 0);
    CHECK_STR("payload", p.rec.source, "10.0.0.5:51514");
    CHECK_STR("payload", p.rec.mapping, "splunk-es-cef");
    CHECK_STR("payload", p.rec.rule, "Removable \"Media\"");
    CHECK_STR("payload", p.rec.user, "EXAMPLE\\amorgan");
    CHECK_STR("payload", p.rec.event, "Removable Media");
    CHECK_STR("payload", p.rec.key,
              "20680f8d10725b06ebb330ecb3ed278f86d022eef8c57ede616725e679b0997c");
    CHECK_INT(p.rec.user_kind, USER_KIND_SAM);
    CHECK_INT(p.rec.received.tv_sec, 1791018764);
    CHECK_INT(p.rec.received.tv_nsec, 120000000);
    CHECK_INT(p.rec.host.len, 0);
    CHECK_STR("payload", p.rec.transport, "https");
    decision_payload_free(&p);
    CHECK_INT(decision_payload_read(str_make(older, sizeof(older) - 1), &p), 0);
    CHECK_STR("older payload", p.rec.transport, "");
    CHECK_STR("older payload", p.rec.event, "e");
    decision_payload_free(&p);
    jsonw_free(&w);
}

#define KEY64 "\"0123456789012345678901234567890123456789012345678901234567890123\""

/* A payload with a policy block and an action reads both back (the block
 * as a JSON object's text, its members unchanged); the versions before
 * policies wrote neither, and such a payload reads with both empty. A
 * record carries each decision's block. */
static void test_payload_policy(void)
{
    static const char block[] =
        "{\"policy\":\"insider\",\"priority\":\"critical\",\"tier\":1,\"why\":\"w\",\"fields\":"
        "{\"cef.ext.src\":\"10.0.0.1\"},\"corr\":{\"user\":\"00000000000000ff\"}}";
    static const char want[] =
        "{\"v\":1,\"sec\":1,\"nsec\":2,\"source\":\"s\",\"transport\":\"tcp\",\"mapping\":\"m\","
        "\"rule\":\"r\",\"user\":\"u\",\"kind\":0,\"event\":\"e\",\"key\":" KEY64
        ",\"policy\":{\"policy\":\"insider\",\"priority\":\"critical\",\"tier\":1,\"why\":\"w\","
        "\"fields\":{\"cef.ext.src\":\"10.0.0.1\"},\"corr\":{\"user\":\"00000000000000ff\"}},"
        "\"action\":\"ticket\"}";
    static const char older[] =
        "{\"v\":1,\"sec\":5,\"nsec\":6,\"source\":\"s\",\"mapping\":\"m\",\"rule\":\"r\","
        "\"user\":\"u\",\"kind\":0,\"event\":\"e\",\"key\":" KEY64 "}";
    static const char *const refused[] = {
        "{\"v\":1,\"sec\":5,\"nsec\":6,\"source\":\"s\",\"mapping\":\"m\",\"rule\":\"r\","
        "\"user\":\"u\",\"kind\":0,\"event\":\"e\",\"key\":" KEY64 ",\"policy\":\"x\"}",
        "{\"v\":1,\"sec\":5,\"nsec\":6,\"source\":\"s\",\"mapping\":\"m\",\"rule\":\"r\","
        "\"user\":\"u\",\"kind\":0,\"event\":\"e\",\"key\":" KEY64 ",\"policy\":[1]}",
        "{\"v\":1,\"sec\":5,\"nsec\":6,\"source\":\"s\",\"mapping\":\"m\",\"rule\":\"r\","
        "\"user\":\"u\",\"kind\":0,\"event\":\"e\",\"key\":" KEY64 ",\"action\":7}",
    };
    struct decision_record d = {
        .received = {1, 2},
        .source = STR_LIT("s"),
        .mapping = STR_LIT("m"),
        .rule = STR_LIT("r"),
        .user = STR_LIT("u"),
        .event = STR_LIT("e"),
        .key = STR_LIT("0123456789012345678901234567890123456789012345678901234567890123"),
        .transport = STR_LIT("tcp"),
        .policy = STR_LIT(block),
        .action = STR_LIT("ticket"),
    };
    struct mapping_decision md[2] = {
        decision("m", cstr("r"), cstr("u"), cstr("e"), USER_KIND_AUTO),
        decision("m", cstr("r2"), cstr("u"), cstr("e"), USER_KIND_AUTO),
    };
    struct str blocks[2] = {STR_LIT(block), STR_LIT("")};
    struct decision_origin o = {{1, 2}, cstr("s"), cstr("h"), cstr("ref"), {0}, cstr("udp")};
    struct decision_record r[3];
    char buf[DECISION_RECORD_MAX], *copy;
    struct decision_payload p;
    size_t dropped = 0, len;
    struct jsonw w;

    jsonw_init(&w, 0);
    CHECK_INT(decision_payload_write(&d, &w), 0);
    CHECK_STR("policy payload", str_make(w.buf, w.len), want);
    CHECK_INT(decision_payload_read(str_make(w.buf, w.len), &p), 0);
    CHECK_STR("policy payload", p.rec.policy, block);
    CHECK_STR("policy payload", p.rec.action, "ticket");
    CHECK_STR("policy payload", p.rec.rule, "r");
    decision_payload_free(&p);
    /* no action: the key is not written */
    d.action = STR_LIT("");
    CHECK_INT(decision_payload_write(&d, &w), 0);
    CHECK(memmem(w.buf, w.len, "\"action\"", 8) == NULL); /* w.buf has no NUL */
    CHECK(memmem(w.buf, w.len, "\"policy\":{", 10) != NULL);
    jsonw_free(&w);

    CHECK_INT(decision_payload_read(str_make(older, sizeof(older) - 1), &p), 0);
    CHECK(p.rec.policy.p != NULL && p.rec.policy.len == 0);
    CHECK(p.rec.action.p != NULL && p.rec.action.len == 0);
    decision_payload_free(&p);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        int rc = decision_payload_read(str_make(refused[i], strlen(refused[i])), &p);

        if (rc != ERR_INVALID)
            UNIT_FAIL("refused[%zu]: rc %d", i, rc);
        else
            unit_passed++;
        decision_payload_free(&p);
    }

    /* a record: the first decision's block, none for the second */
    len = decision_encode(hasher, md, blocks, 2, &o, buf, sizeof(buf), &dropped);
    CHECK(len > 0);
    CHECK_INT(dropped, 0);
    CHECK_INT(decode(buf, len, r, 3, &copy), 2);
    CHECK_STR("record", r[0].policy, block);
    CHECK_INT(r[1].policy.len, 0);
    CHECK_INT(r[0].action.len, 0);
    CHECK_STR("record", r[1].rule, "r2");
    free(copy);
}

/* Payloads this version must not read: each differs from a good one in
 * one place. */
static const struct {
    const char *name, *payload;
    int rc;
} payload_cases[] = {
    {"good",
     "{\"v\":1,\"sec\":5,\"nsec\":6,\"source\":\"s\",\"mapping\":\"m\",\"rule\":\"r\","
     "\"user\":\"u\",\"kind\":0,\"event\":\"e\",\"key\":" KEY64 "}",
     0},
    {"version 2",
     "{\"v\":2,\"sec\":5,\"nsec\":6,\"source\":\"s\",\"mapping\":\"m\",\"rule\":\"r\","
     "\"user\":\"u\",\"kind\":0,\"event\":\"e\",\"key\":" KEY64 "}",
     ERR_INVALID},
    {"nsec out of range",
     "{\"v\":1,\"sec\":5,\"nsec\":1000000000,\"source\":\"s\",\"mapping\":\"m\",\"rule\":\"r\","
     "\"user\":\"u\",\"kind\":0,\"event\":\"e\",\"key\":" KEY64 "}",
     ERR_INVALID},
    {"kind out of range",
     "{\"v\":1,\"sec\":5,\"nsec\":6,\"source\":\"s\",\"mapping\":\"m\",\"rule\":\"r\","
     "\"user\":\"u\",\"kind\":9,\"event\":\"e\",\"key\":" KEY64 "}",
     ERR_INVALID},
    {"rule a number",
     "{\"v\":1,\"sec\":5,\"nsec\":6,\"source\":\"s\",\"mapping\":\"m\",\"rule\":7,"
     "\"user\":\"u\",\"kind\":0,\"event\":\"e\",\"key\":" KEY64 "}",
     ERR_INVALID},
    {"event missing",
     "{\"v\":1,\"sec\":5,\"nsec\":6,\"source\":\"s\",\"mapping\":\"m\",\"rule\":\"r\","
     "\"user\":\"u\",\"kind\":0,\"key\":" KEY64 "}",
     ERR_INVALID},
    {"key short",
     "{\"v\":1,\"sec\":5,\"nsec\":6,\"source\":\"s\",\"mapping\":\"m\",\"rule\":\"r\","
     "\"user\":\"u\",\"kind\":0,\"event\":\"e\",\"key\":\"00\"}",
     ERR_INVALID},
    {"not an object", "[1]", ERR_INVALID},
    {"not JSON", "{\"v\":1,", ERR_INVALID},
};

static void test_payload_refused(void)
{
    for (size_t c = 0; c < sizeof(payload_cases) / sizeof(payload_cases[0]); c++) {
        struct decision_payload p;
        int got = decision_payload_read(
            str_make(payload_cases[c].payload, strlen(payload_cases[c].payload)), &p);

        if (got != payload_cases[c].rc)
            UNIT_FAIL("%s: got %d, want %d", payload_cases[c].name, got, payload_cases[c].rc);
        else
            unit_passed++;
        decision_payload_free(&p);
    }
}

/* The most decisions a message makes, each with the longest texts: the
 * record must fit DECISION_RECORD_MAX. Empty fields survive as empty. */
static void test_max(void)
{
    struct mapping_decision d[MAPPING_MAX_DECISIONS];
    struct decision_record r[MAPPING_MAX_DECISIONS];
    struct str field = str_make(big, DECISION_MAX_FIELD);
    char *buf = malloc(DECISION_RECORD_MAX), *copy, src[256];
    size_t dropped = 99, len;

    memset(src, '9', sizeof(src) - 1);
    src[255] = '\0';
    for (int i = 0; i < MAPPING_MAX_DECISIONS; i++)
        d[i] = decision(long_name + (300 - 1 - 255), field, field, i == 3 ? STR_LIT("") : field,
                        (enum user_kind)(i % (USER_KIND_EMPLOYEE_ID + 1)));
    len = decision_encode(hasher, d, NULL, MAPPING_MAX_DECISIONS,
                          &(struct decision_origin){{0, 999999999},
                                                    str_make(src, 255),
                                                    str_make(src, 255),
                                                    str_make(src, 255),
                                                    {0},
                                                    str_make(src, 255)},
                          buf, DECISION_RECORD_MAX, &dropped);
    CHECK(len > 0 && len <= DECISION_RECORD_MAX);
    CHECK_INT(dropped, 0);
    CHECK_INT(decode(buf, len, r, MAPPING_MAX_DECISIONS, &copy), MAPPING_MAX_DECISIONS);
    for (int i = 0; i < MAPPING_MAX_DECISIONS; i++) {
        same("max", &r[i], &d[i]);
        CHECK(within(r[i].event, copy, len) || r[i].event.len == 0);
    }
    CHECK_INT(r[0].source.len, 255);
    CHECK_INT(r[0].received.tv_nsec, 999999999);
    free(copy);
    free(buf);
}

/* Which of three decisions survive when one has an over-long text. */
static const struct {
    const char *name;
    int bad;              /* which field of decision 1 is too long */
    size_t n, cap;        /* decisions offered, buffer bytes (0: DECISION_RECORD_MAX) */
    int decoded, dropped; /* decoded -1: nothing encoded */
} drop_cases[] = {
    {"rule too long", 0, 3, 0, 2, 1},
    {"user too long", 1, 3, 0, 2, 1},
    {"event too long", 2, 3, 0, 2, 1},
    {"mapping name too long", 3, 3, 0, 2, 1},
    {"only the bad one", 0, 1, 0, -1, 1},
    {"more than MAPPING_MAX_DECISIONS", -1, MAPPING_MAX_DECISIONS + 2, 0, MAPPING_MAX_DECISIONS, 2},
    {"buffer too small for the second", -1, 3, 155, 1, 2},
    {"buffer too small for the header", -1, 3, 10, -1, 3},
};

static void test_dropped(void)
{
    for (size_t c = 0; c < sizeof(drop_cases) / sizeof(drop_cases[0]); c++) {
        struct mapping_decision d[MAPPING_MAX_DECISIONS + 2];
        struct decision_record r[MAPPING_MAX_DECISIONS + 2];
        struct str toolong = str_make(big, DECISION_MAX_FIELD + 1);
        char *buf = malloc(DECISION_RECORD_MAX), *copy;
        size_t cap = drop_cases[c].cap ? drop_cases[c].cap : DECISION_RECORD_MAX;
        size_t dropped = 99, len, n = drop_cases[c].n;
        int bad = n == 1 ? 0 : 1, got;

        for (size_t i = 0; i < n; i++)
            d[i] = decision("m", STR_LIT("rule-text-0123456789"), STR_LIT("user"), STR_LIT("event"),
                            USER_KIND_AUTO);
        if (drop_cases[c].bad == 0)
            d[bad].rule = toolong;
        else if (drop_cases[c].bad == 1)
            d[bad].user = toolong;
        else if (drop_cases[c].bad == 2)
            d[bad].event = toolong;
        else if (drop_cases[c].bad == 3)
            d[bad].mapping = long_name + (300 - 1 - 256);
        len = decision_encode(
            hasher, d, NULL, n,
            &(struct decision_origin){
                {1, 2}, STR_LIT("127.0.0.1:9"), STR_LIT(""), STR_LIT(""), {0}, STR_LIT("")},
            buf, cap, &dropped);
        if (dropped != (size_t)drop_cases[c].dropped)
            UNIT_FAIL("%s: dropped %zu, want %d", drop_cases[c].name, dropped,
                      drop_cases[c].dropped);
        if (drop_cases[c].decoded < 0) {
            if (len != 0)
                UNIT_FAIL("%s: encoded %zu bytes, want none", drop_cases[c].name, len);
            free(buf);
            continue;
        }
        CHECK(len <= cap);
        got = decode(buf, len, r, MAPPING_MAX_DECISIONS + 2, &copy);
        if (got != drop_cases[c].decoded)
            UNIT_FAIL("%s: decoded %d, want %d", drop_cases[c].name, got, drop_cases[c].decoded);
        else
            CHECK_STR(drop_cases[c].name, r[got - 1].rule, "rule-text-0123456789");
        free(copy);
        free(buf);
    }
}

/* A valid two-decision record, and edits that corrupt it. */
static size_t sample(char *buf, size_t cap)
{
    struct mapping_decision d[2] = {
        decision("a", STR_LIT("r1"), STR_LIT("u1"), STR_LIT("e1"), USER_KIND_UPN),
        decision("bb", STR_LIT("r2"), STR_LIT("u2"), STR_LIT("e2"), USER_KIND_SID),
    };
    size_t dropped;

    return decision_encode(hasher, d, NULL, 2,
                           &(struct decision_origin){{5, 6},
                                                     STR_LIT("1.2.3.4:5"),
                                                     STR_LIT(""),
                                                     STR_LIT(""),
                                                     {0x1122334455667788u, 42, 3},
                                                     STR_LIT("")},
                           buf, cap, &dropped);
}

/* Offsets in the sample: header 38 bytes (the ack's 20 among them), source
 * 9, then decision 0. */
#define AT_COUNT   1
#define AT_SRCLEN  2
#define AT_HOSTLEN 3
#define AT_NSEC    17 /* the high byte */
#define AT_KIND0   47
#define AT_RULELEN 49

static const struct {
    const char *name;
    size_t at;
    int delta; /* added to the byte at `at` */
    int extra; /* bytes appended */
} corrupt_cases[] = {
    {"bad version", 0, 1, 0},
    {"count 0", AT_COUNT, -2, 0},
    {"count one more than held", AT_COUNT, 1, 0},
    {"count one fewer than held", AT_COUNT, -1, 0},
    {"count over MAPPING_MAX_DECISIONS", AT_COUNT, MAPPING_MAX_DECISIONS, 0},
    {"source longer than the record", AT_SRCLEN, 200, 0},
    {"host longer than the record", AT_HOSTLEN, 200, 0},
    {"nanoseconds out of range", AT_NSEC, 0x40, 0},
    {"user kind out of range", AT_KIND0, 40, 0},
    {"rule length past the end", AT_RULELEN, 100, 0},
    {"rule length over DECISION_MAX_FIELD", AT_RULELEN + 1, 8, 0},
    {"a byte after the last decision", 0, 0, 1},
};

static void test_corrupt(void)
{
    char buf[256], *copy;
    struct decision_record r[4];
    size_t len = sample(buf, sizeof(buf)), pos;

    CHECK_INT(decode(buf, len, r, 4, &copy), 2);
    CHECK_STR("sample", r[1].mapping, "bb");
    CHECK_STR("sample", r[0].rule, "r1");
    /* Every decision of the record carries the message's ack. */
    for (int i = 0; i < 2; i++) {
        CHECK(r[i].ack.owner == 0x1122334455667788u);
        CHECK(r[i].ack.seq == 42);
        CHECK(r[i].ack.worker == 3);
    }
    free(copy);
    for (size_t c = 0; c < sizeof(corrupt_cases) / sizeof(corrupt_cases[0]); c++) {
        char bad[260];
        int got;

        memcpy(bad, buf, len);
        bad[corrupt_cases[c].at] = (char)(bad[corrupt_cases[c].at] + corrupt_cases[c].delta);
        bad[len] = 'x';
        got = decode(bad, len + (size_t)corrupt_cases[c].extra, r, 4, &copy);
        if (got != ERR_INVALID)
            UNIT_FAIL("%s: got %d, want ERR_INVALID", corrupt_cases[c].name, got);
        free(copy);
    }
    /* Every cut of the record is refused as a whole. */
    for (size_t cut = 0; cut < len; cut++) {
        int got = decode(buf, cut, r, 4, &copy);
        if (got != ERR_INVALID)
            UNIT_FAIL("cut at %zu of %zu: got %d, want ERR_INVALID", cut, len, got);
        free(copy);
    }
    /* A position that is not a decision boundary the reader gave out. */
    pos = len + 1;
    CHECK_INT(decision_next(str_make(buf, len), &pos, &r[0]), ERR_INVALID);
    pos = 3;
    CHECK_INT(decision_next(str_make(buf, len), &pos, &r[0]), ERR_INVALID);
}

/* Every single-byte change: accepted or ERR_INVALID, never a read out of
 * bounds (the sanitizer build), and every slice inside the record. */
static void test_flips(void)
{
    char buf[256], *copy;
    struct decision_record r[4];
    size_t len = sample(buf, sizeof(buf));
    int bad = 0;

    for (size_t at = 0; at < len; at++) {
        for (int v = 0; v < 256; v += 7) {
            char mod[256];
            int got;

            memcpy(mod, buf, len);
            mod[at] = (char)v;
            got = decode(mod, len, r, 4, &copy);
            if (got != ERR_INVALID && (got < 1 || got > 4))
                bad++;
            for (int i = 0; i < got && i < 4; i++) {
                if (!within(r[i].rule, copy, len) || !within(r[i].user, copy, len) ||
                    !within(r[i].event, copy, len) || !within(r[i].mapping, copy, len))
                    bad++;
            }
            free(copy);
        }
    }
    CHECK_INT(bad, 0);
}

/* A reused hasher keeps no state from one hash to the next (a frame hash
 * between two keys, a fresh hasher, agree), and the frame hash is plain
 * SHA-256 of the frame, the event_ref of messages without an event id. */
static void test_hasher_reuse(void)
{
    struct decision_hasher *fresh = NULL;
    char k1[DECISION_KEY_SIZE], k2[DECISION_KEY_SIZE], k3[DECISION_KEY_SIZE];
    char frame[DECISION_KEY_SIZE];

    decision_key(hasher, STR_LIT("web01"), STR_LIT("r"), STR_LIT("u"), STR_LIT("e"), k1);
    decision_frame_hash(hasher, STR_LIT("abc"), frame);
    CHECK_STR("frame hash", str_make(frame, strlen(frame)),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    decision_key(hasher, STR_LIT("web01"), STR_LIT("r"), STR_LIT("u"), STR_LIT("e"), k2);
    CHECK_STR("reused", str_make(k2, strlen(k2)), k1);
    CHECK_INT(decision_hasher_new(&fresh), 0);
    if (fresh == NULL)
        return;
    decision_key(fresh, STR_LIT("web01"), STR_LIT("r"), STR_LIT("u"), STR_LIT("e"), k3);
    CHECK_STR("fresh", str_make(k3, strlen(k3)), k1);
    decision_frame_hash(fresh, str_make("", 0), frame);
    CHECK_STR("empty frame", str_make(frame, strlen(frame)),
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    decision_hasher_free(fresh);
    decision_hasher_free(NULL);
}

int main(void)
{
    if (decision_hasher_new(&hasher) != 0)
        return 2;
    memset(big, 'x', sizeof(big));
    memset(long_name, 'n', sizeof(long_name) - 1);
    test_one();
    test_key_cut();
    test_payload();
    test_payload_refused();
    test_payload_policy();
    test_max();
    test_dropped();
    test_corrupt();
    test_flips();
    test_hasher_reuse();
    decision_hasher_free(hasher);
    return unit_report("decision");
}
