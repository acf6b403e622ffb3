/* RELP codec tests. Every frame row is parsed whole and then from every
 * prefix, each copied into a buffer of exactly that size (so that ASan sees
 * a read past the held bytes): a prefix shorter than `at` must give
 * ERR_AGAIN, every longer one the row's result. `at` is where the result
 * becomes known: the frame's length for a frame, the first bad byte for
 * garbage, which pins that malformed input is refused at once. */
#include <stdint.h>
#include <stdlib.h>

#include "errors.h"
#include "relp.h"
#include "unit.h"

#define IN(s)    s, sizeof(s) - 1
#define MAX_DATA 128
#define D16      "0123456789abcdef"
#define D128     D16 D16 D16 D16 D16 D16 D16 D16

struct row {
    const char *name;
    const char *in;
    size_t len;
    int rc;
    size_t at; /* prefix length at which rc is first returned */
    uint64_t txnr;
    enum relp_command cmd;
    const char *command;
    const char *data; /* compared over data_len bytes: may hold NUL */
    size_t data_len;
};

#define FRAME(name, in, txnr, cmd, command, data)                                                  \
    {                                                                                              \
        name, IN(in), 0, sizeof(in) - 1, txnr, cmd, command, data, sizeof(data) - 1                \
    }
#define ERROR(name, in, rc, at)                                                                    \
    {                                                                                              \
        name, IN(in), rc, at, 0, RELP_UNKNOWN, NULL, NULL, 0                                       \
    }

static const struct row rows[] = {
    /* rsyslog's real open, as librelp 1.2.7 sends it (NiFi ListenRELP tests). */
    FRAME("open (librelp)",
          "1 open 85 relp_version=0\nrelp_software=librelp,1.2.7,http://librelp.adiscon.com\n"
          "commands=syslog\n",
          1, RELP_OPEN, "open",
          "relp_version=0\nrelp_software=librelp,1.2.7,http://librelp.adiscon.com\n"
          "commands=syslog"),
    FRAME("syslog", "2 syslog 28 <13>1 - host app - - - hello\n", 2, RELP_SYSLOG, "syslog",
          "<13>1 - host app - - - hello"),
    FRAME("close", "3 close 0\n", 3, RELP_CLOSE, "close", ""),
    FRAME("rsp", "4 rsp 6 200 OK\n", 4, RELP_RSP, "rsp", "200 OK"),
    FRAME("serverclose", "0 serverclose 0\n", 0, RELP_SERVERCLOSE, "serverclose", ""),
    FRAME("unknown command", "5 starttls 0\n", 5, RELP_UNKNOWN, "starttls", ""),
    /* librelp compares commands with strcmp. */
    FRAME("command case matters", "5 SYSLOG 1 x\n", 5, RELP_UNKNOWN, "SYSLOG", "x"),
    FRAME("32-letter command", "6 abcdefghijklmnopqrstuvwxyzABCDEF 0\n", 6, RELP_UNKNOWN,
          "abcdefghijklmnopqrstuvwxyzABCDEF", ""),
    FRAME("data with LF", "7 syslog 5 a\nb\n\n\n", 7, RELP_SYSLOG, "syslog", "a\nb\n\n"),
    FRAME("data with NUL", "8 syslog 3 a\0b\n", 8, RELP_SYSLOG, "syslog", "a\0b"),
    FRAME("data that looks like a frame", "9 syslog 10 1 close 0\n\n", 9, RELP_SYSLOG, "syslog",
          "1 close 0\n"),
    FRAME("largest txnr", "999999999 syslog 1 x\n", 999999999, RELP_SYSLOG, "syslog", "x"),
    /* The codec accepts txnr 0 (hints carry it); the session, which expects
     * 1 or more, refuses it from a client. */
    FRAME("txnr 0", "0 syslog 1 x\n", 0, RELP_SYSLOG, "syslog", "x"),
    FRAME("data exactly max_data", "1 syslog 128 " D128 "\n", 1, RELP_SYSLOG, "syslog", D128),

    ERROR("empty txnr", " syslog 1 x\n", ERR_INVALID, 1),
    ERROR("letter txnr", "abc", ERR_INVALID, 1),
    ERROR("txnr +", "+1 syslog 1 x\n", ERR_INVALID, 1),
    ERROR("txnr -", "-1 syslog 1 x\n", ERR_INVALID, 1),
    ERROR("txnr leading zero", "01 syslog 1 x\n", ERR_INVALID, 2),
    ERROR("txnr 10 digits", "1000000000 syslog 1 x\n", ERR_INVALID, 10),
    ERROR("txnr then TAB", "1\tsyslog 1 x\n", ERR_INVALID, 2),
    ERROR("two SP after txnr", "1  syslog 1 x\n", ERR_INVALID, 3),
    ERROR("command with digit", "1 sys1og 1 x\n", ERR_INVALID, 6),
    ERROR("command with dash", "1 sys-log 1 x\n", ERR_INVALID, 6),
    ERROR("command 33 letters", "1 abcdefghijklmnopqrstuvwxyzABCDEFG 0\n", ERR_INVALID, 35),
    ERROR("command then LF", "1 close\n", ERR_INVALID, 8),
    ERROR("empty datalen", "1 close \n", ERR_INVALID, 9),
    ERROR("datalen +", "1 syslog +1 x\n", ERR_INVALID, 10),
    ERROR("datalen -", "1 syslog -1 x\n", ERR_INVALID, 10),
    ERROR("datalen leading zero", "1 syslog 01 x\n", ERR_INVALID, 11),
    ERROR("datalen 10 digits", "1 syslog 1000000000 x\n", ERR_INVALID, 19),
    /* librelp checks the trailer right after a 0 DATALEN: "0 " is refused. */
    ERROR("datalen 0 then SP", "1 close 0 \n", ERR_INVALID, 10),
    ERROR("datalen 0 then data", "1 close 0x\n", ERR_INVALID, 10),
    ERROR("datalen then LF", "1 syslog 1\nx\n", ERR_INVALID, 11),
    ERROR("datalen over max_data", "1 syslog 129 x", ERR_TOOBIG, 13),
    ERROR("datalen 9 digits over max_data", "1 syslog 999999999 x", ERR_TOOBIG, 19),
    ERROR("missing trailer", "1 syslog 3 abcd\n", ERR_INVALID, 15),
    ERROR("CR instead of trailer", "1 syslog 3 abc\r\n", ERR_INVALID, 15),
    ERROR("short data", "1 syslog 5 abc\n2 close 0\n", ERR_INVALID, 17),
};

static void check_row(const struct row *r)
{
    struct relp_frame f;
    size_t used, k;
    int rc;

    for (k = 0; k <= r->len; k++) {
        char *copy = malloc(k > 0 ? k : 1);
        int want = k < r->at ? ERR_AGAIN : r->rc;

        memcpy(copy, r->in, k);
        rc = relp_frame_parse(copy, k, MAX_DATA, &f, &used);
        if (rc != want) {
            UNIT_FAIL("%s: prefix %zu: got %s, want %s", r->name, k, err_name(rc), err_name(want));
        } else if (rc == 0) {
            unit_passed++;
            CHECK_INT(used, r->at);
            CHECK_INT(f.txnr, r->txnr);
            CHECK_INT(f.cmd, r->cmd);
            CHECK_STR(r->name, f.command, r->command);
            CHECK(f.data.p != NULL && f.data.len == r->data_len &&
                  memcmp(f.data.p, r->data, r->data_len) == 0);
            CHECK(f.command.p >= copy && f.data.p + f.data.len < copy + k);
        } else {
            unit_passed++;
            CHECK_INT(used, 0);
        }
        free(copy);
    }
}

static void test_back_to_back(void)
{
    static const char in[] = "1 open 0\n2 syslog 3 a\nb\n3 syslog 1 c\n4 close 0\n5 sys";
    static const uint64_t want_txnr[] = {1, 2, 3, 4};
    static const enum relp_command want_cmd[] = {RELP_OPEN, RELP_SYSLOG, RELP_SYSLOG, RELP_CLOSE};
    struct relp_frame f;
    size_t pos = 0, used, n = 0;
    int rc;

    while ((rc = relp_frame_parse(in + pos, sizeof(in) - 1 - pos, MAX_DATA, &f, &used)) == 0) {
        CHECK(n < 4);
        if (n < 4) {
            CHECK_INT(f.txnr, want_txnr[n]);
            CHECK_INT(f.cmd, want_cmd[n]);
        }
        if (n == 1)
            CHECK_STR("back to back", f.data, "a\nb");
        pos += used;
        n++;
    }
    CHECK_INT(rc, ERR_AGAIN);
    CHECK_INT(n, 4);
    CHECK_STR("rest", str_make(in + pos, sizeof(in) - 1 - pos), "5 sys");
}

/* max_data 0 still admits every frame without data. */
static void test_max_data_zero(void)
{
    struct relp_frame f;
    size_t used;

    CHECK_INT(relp_frame_parse(IN("1 close 0\n"), 0, &f, &used), 0);
    CHECK_INT(used, 10);
    CHECK_INT(relp_frame_parse(IN("1 syslog 1 x\n"), 0, &f, &used), ERR_TOOBIG);
}

struct offers_row {
    const char *name;
    const char *in;
    int rc;
    int version;
    int has_syslog;
    const char *software; /* NULL: absent */
};

static const struct offers_row offers_rows[] = {
    {"librelp",
     "relp_version=0\nrelp_software=librelp,1.2.7,http://librelp.adiscon.com\ncommands=syslog", 0,
     0, 1, "librelp,1.2.7,http://librelp.adiscon.com"},
    {"trailing LF", "relp_version=0\ncommands=syslog\n", 0, 0, 1, NULL},
    {"syslog among commands", "commands=foo,syslog,bar", 0, -1, 1, NULL},
    {"no syslog", "relp_version=0\ncommands=", 0, 0, 0, NULL},
    {"syslog prefix only", "commands=syslogx,sys", 0, -1, 0, NULL},
    {"no offers", "", 0, -1, 0, NULL},
    {"unknown offers skipped", "foo=1\nbar\n=x\nrelp_version=1", 0, 1, 0, NULL},
    {"empty software", "relp_software=", 0, -1, 0, ""},
    {"big version", "relp_version=12345678901234", 0, 999999999, 0, NULL},
    {"version not a number", "relp_version=x", ERR_INVALID, 0, 0, NULL},
    {"version negative", "relp_version=-1", ERR_INVALID, 0, 0, NULL},
    {"version empty", "relp_version=", ERR_INVALID, 0, 0, NULL},
};

static void test_offers(void)
{
    struct relp_offers o;

    for (size_t i = 0; i < sizeof(offers_rows) / sizeof(offers_rows[0]); i++) {
        const struct offers_row *r = &offers_rows[i];
        int rc = relp_offers_parse(str_make(r->in, strlen(r->in)), &o);

        if (rc != r->rc) {
            UNIT_FAIL("%s: got %s, want %s", r->name, err_name(rc), err_name(r->rc));
            continue;
        }
        unit_passed++;
        if (rc != 0)
            continue;
        CHECK_INT(o.version, r->version);
        CHECK_INT(o.has_syslog, r->has_syslog);
        CHECK_STR(r->name, o.software, r->software);
    }
    CHECK_INT(relp_offers_parse(STR_ABSENT, &o), 0);
    CHECK_INT(o.version, -1);
}

/* Each formatter must write exactly want, fit a buffer of exactly its size
 * and refuse one byte less without writing past it. */
static void check_exact(const char *ctx, size_t (*fmt)(char *, size_t, const void *),
                        const void *arg, const char *want, size_t want_len)
{
    char *buf = malloc(want_len);
    size_t n;

    n = fmt(buf, want_len, arg);
    if (n != want_len || memcmp(buf, want, want_len) != 0)
        UNIT_FAIL("%s: got %zu bytes '%.*s', want '%s'", ctx, n, (int)(n < want_len ? n : want_len),
                  buf, want);
    else
        unit_passed++;
    free(buf);
    buf = malloc(want_len - 1);
    CHECK_INT(fmt(buf, want_len - 1, arg), 0);
    CHECK_INT(fmt(NULL, 0, arg), 0);
    free(buf);
}

struct rsp_args {
    uint64_t txnr;
    int code;
    const char *text;
    struct str extra;
};

static size_t fmt_rsp(char *buf, size_t cap, const void *arg)
{
    const struct rsp_args *a = arg;
    return relp_rsp_format(buf, cap, a->txnr, a->code, a->text, a->extra);
}

static size_t fmt_open(char *buf, size_t cap, const void *arg)
{
    return relp_open_rsp_format(buf, cap, 1, *(const struct str *)arg);
}

static size_t fmt_serverclose(char *buf, size_t cap, const void *arg)
{
    (void)arg;
    return relp_serverclose_format(buf, cap);
}

static void test_format(void)
{
    static const struct rsp_args ok = {2, 200, "OK", STR_ABSENT};
    static const struct rsp_args err = {999999999, 500, "error: disk full", STR_ABSENT};
    static const struct rsp_args extra = {7, 200, "OK", STR_LIT("a=b")};
    static const struct str librelp = STR_LIT("librelp,1.0.0,http://librelp.adiscon.com");
    char buf[256], text[RELP_RSP_TEXT_MAX + 2];
    struct relp_frame f;
    size_t n, used;

    check_exact("rsp 200", fmt_rsp, &ok, IN("2 rsp 6 200 OK\n"));
    check_exact("rsp 500", fmt_rsp, &err, IN("999999999 rsp 20 500 error: disk full\n"));
    check_exact("rsp extra", fmt_rsp, &extra, IN("7 rsp 10 200 OK\na=b\n"));
    /* The bytes librelp's server sends (captured by gorelp), with its software. */
    check_exact("open rsp", fmt_open, &librelp,
                IN("1 rsp 92 200 OK\nrelp_version=0\nrelp_software=librelp,1.0.0,"
                   "http://librelp.adiscon.com\ncommands=syslog\n"));
    check_exact("serverclose", fmt_serverclose, NULL, IN("0 serverclose 0\n"));

    /* What we write, we read back. */
    n = relp_open_rsp_format(buf, sizeof(buf), 42, STR_LIT("rtr-agent,1.0,https://example.org"));
    CHECK_INT(relp_frame_parse(buf, n, 1000, &f, &used), 0);
    CHECK_INT(used, n);
    CHECK_INT(f.txnr, 42);
    CHECK_INT(f.cmd, RELP_RSP);
    CHECK_STR("open rsp", f.data,
              "200 OK\nrelp_version=0\nrelp_software=rtr-agent,1.0,https://example.org\n"
              "commands=syslog");

    /* Arguments librelp could not read. */
    CHECK_INT(relp_rsp_format(buf, sizeof(buf), 1000000000, 200, "OK", STR_ABSENT), 0);
    CHECK_INT(relp_rsp_format(buf, sizeof(buf), 1, 99, "OK", STR_ABSENT), 0);
    CHECK_INT(relp_rsp_format(buf, sizeof(buf), 1, 1000, "OK", STR_ABSENT), 0);
    CHECK_INT(relp_rsp_format(buf, sizeof(buf), 1, 500, "a\nb", STR_ABSENT), 0);
    memset(text, 'x', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    CHECK_INT(relp_rsp_format(buf, sizeof(buf), 1, 500, text, STR_ABSENT), 0);
    text[RELP_RSP_TEXT_MAX] = '\0';
    CHECK_INT(relp_rsp_format(buf, sizeof(buf), 1, 500, text, STR_ABSENT),
              sizeof("1 rsp 84 500 \n") - 1 + RELP_RSP_TEXT_MAX);
    CHECK_INT(relp_open_rsp_format(buf, sizeof(buf), 1, STR_LIT("a\nb")), 0);
}

static void test_txnr_next(void)
{
    CHECK_INT(relp_txnr_next(1), 2);
    CHECK_INT(relp_txnr_next(RELP_TXNR_MAX - 1), RELP_TXNR_MAX);
    CHECK_INT(relp_txnr_next(RELP_TXNR_MAX), 1);
    CHECK_INT(RELP_HEADER_MAX, sizeof("999999999 abcdefghijklmnopqrstuvwxyzABCDEF 999999999 ") - 1);
}

int main(void)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        check_row(&rows[i]);
    test_back_to_back();
    test_max_data_zero();
    test_offers();
    test_format();
    test_txnr_next();
    return unit_report("test_relp");
}
