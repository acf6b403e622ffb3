/* Framer tests. Every row is fed the way a connection feeds the framer
 * (append a read, call framer_next until ERR_AGAIN, drop *used bytes,
 * framer_finish at EOF): in one read, in two reads split at every byte and
 * byte by byte. All must give the row's events.
 *
 * Events, one per line: "FLAGS:frame" for a frame (flags "-", or "o" octet
 * and "t" truncated), "$FLAGS:frame" for the frame framer_finish gives, and
 * "!TOOBIG" / "!INVALID" for errors. Frames are shown with LF, CR, NUL and
 * other control bytes escaped (\n \r \0 \xNN). */
#include <stdint.h>
#include <stdlib.h>

#include "errors.h"
#include "framing.h"
#include "unit.h"

#define IN(s) s, sizeof(s) - 1
#define MAX_EVENTS 8
#define OUT_CAP 4096

struct row {
    const char *name;
    enum framing_mode mode;
    size_t max;
    enum oversize_policy policy;
    const char *in;
    size_t len;
    const char *want[MAX_EVENTS]; /* NULL-terminated */
};

/* Short names keep the rows on one line each. */
#define T OVERSIZE_TRUNCATE
#define R OVERSIZE_REJECT
#define AUTO FRAMING_AUTO
#define LF FRAMING_LF
#define OCTET FRAMING_OCTET

/* Transcribed from ../shared/conformance/syslog_framing.json (go-syslog v3
 * octetcounting and nontransparent vectors). go-syslog parses while it frames;
 * the framer only frames, so a vector's syslog-level errors ("expecting a
 * RFC3339MICRO timestamp") are frames here. Where we differ, the row says why. */
static const struct row conformance_rows[] = {
    /* go-syslog: "found EOF, expecting a MSGLEN". An empty stream is a
     * connection that sent nothing, not an error. */
    {"oc/empty", OCTET, 8192, R, IN(""), {NULL}},
    {"oc/1st ok/2nd mf", OCTET, 8192, R, IN("16 <1>1 - - - - - -17 <2>12 A B C D E -"),
     {"o:<1>1 - - - - - -", "o:<2>12 A B C D E -"}},
    {"oc/1st ok/2nd ko", OCTET, 8192, R, IN("16 <1>1 - - - - - -xaaa"),
     {"o:<1>1 - - - - - -", "!INVALID"}},
    /* AUTO mode: a frame that is no count is trailer-framed, here cut by EOF. */
    {"oc/1st ok/2nd ko (auto)", AUTO, 8192, R, IN("16 <1>1 - - - - - -xaaa"),
     {"o:<1>1 - - - - - -", "$-:xaaa"}},
    {"oc/1st ml/2nd ko", OCTET, 8192, R, IN("16 <1>1 A B C D E -xaaa"),
     {"o:<1>1 A B C D E -", "!INVALID"}},
    {"oc/1st ok//utf8", OCTET, 8192, R, IN("23 <1>1 - - - - - - hell\xc3\xb8"),
     {"o:<1>1 - - - - - - hell\xc3\xb8"}},
    /* go-syslog best effort: an error plus the partial message; we deliver
     * the partial frame from framer_finish, flagged truncated. */
    {"oc/1st ko//incomplete SYSLOGMSG", OCTET, 8192, R, IN("16 <1>1"), {"$ot:<1>1"}},
    {"oc/1st ko//missing WS found ILLEGAL", OCTET, 8192, R, IN("16<1>1"), {"!INVALID"}},
    /* go-syslog: "found EOF, expecting a WS". framer_finish can only say
     * "frame" or "nothing": a count cut short by EOF is nothing. */
    {"oc/1st ko//missing WS found EOF", OCTET, 8192, R, IN("1"), {NULL}},
    {"oc/1st ok/2nd ok/3rd ok", OCTET, 8192, R,
     IN("48 <1>1 2003-10-11T22:14:15.003Z host.local - - - -25 <3>1 - host.local - - - -"
        "38 <2>1 - host.local su - - - \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),
     {"o:<1>1 2003-10-11T22:14:15.003Z host.local - - - -", "o:<3>1 - host.local - - - -",
      "o:<2>1 - host.local su - - - \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"}},
    {"oc/1st ok/2nd mf/3rd ok", OCTET, 8192, R,
     IN("16 <1>1 - - - - - -17 <2>12 A B C D E -16 <1>1 - - - - - -"),
     {"o:<1>1 - - - - - -", "o:<2>12 A B C D E -", "o:<1>1 - - - - - -"}},
    {"oc/MSGLEN gt max message length", OCTET, 10, R, IN("16 <1>1 - - - - - -"),
     {"!TOOBIG"}},
    {"oc/MSGLEN gt max message length (truncate)", OCTET, 10, T, IN("16 <1>1 - - - - - -"),
     {"ot:<1>1 - - -"}},
    {"oc/1st uf/2nd ok//notdetectable", OCTET, 8192, R, IN("16 <1>217 <11>1 - - - - - -"),
     {"o:<1>217 <11>1 - -", "!INVALID"}},
    {"oc/1st uf/2nd ok//notdetectable (auto)", AUTO, 8192, R,
     IN("16 <1>217 <11>1 - - - - - -"), {"o:<1>217 <11>1 - -", "$-: - - - -"}},
    {"nt/LF/1st ok", LF, 8192, R, IN("<1>1 - - - - - -\n"), {"-:<1>1 - - - - - -"}},
    /* go-syslog: the message plus "unexpected EOF"; we deliver it silently. */
    {"nt/LF/1st ok//notrailer", LF, 8192, R, IN("<3>1 - - - - - -"), {"$-:<3>1 - - - - - -"}},
    {"nt/LF/1st ok/2nd ok", LF, 8192, R, IN("<1>1 - - - - - -\n<2>1 - - - - - -\n"),
     {"-:<1>1 - - - - - -", "-:<2>1 - - - - - -"}},
    {"nt/LF/1st ok/2nd ok//notrailer", LF, 8192, R, IN("<1>1 - - - - - -\n<2>1 - - - - - -"),
     {"-:<1>1 - - - - - -", "$-:<2>1 - - - - - -"}},
    {"nt/LF/incomplete x2", LF, 8192, R, IN("<1>1\n<2>1\n"), {"-:<1>1", "-:<2>1"}},
    {"nt/NUL/1st ok", LF, 8192, R, IN("<1>1 - - - - - -\0"), {"-:<1>1 - - - - - -"}},
    {"nt/NUL/1st ok//notrailer", LF, 8192, R, IN("<3>1 - - - - - -"),
     {"$-:<3>1 - - - - - -"}},
    {"nt/NUL/1st ok/2nd ok", LF, 8192, R, IN("<1>1 - - - - - -\0<2>1 - - - - - -\0"),
     {"-:<1>1 - - - - - -", "-:<2>1 - - - - - -"}},
    {"nt/NUL/1st ok/2nd ok//notrailer", LF, 8192, R, IN("<1>1 - - - - - -\0<2>1 - - - - - -"),
     {"-:<1>1 - - - - - -", "$-:<2>1 - - - - - -"}},
    {"nt/NUL/incomplete x2", LF, 8192, R, IN("<1>1\0<2>1\0"), {"-:<1>1", "-:<2>1"}},
    /* The same streams auto-detected: '<' first means trailer framing. */
    {"nt/LF/1st ok/2nd ok (auto)", AUTO, 8192, R, IN("<1>1 - - - - - -\n<2>1 - - - - - -\n"),
     {"-:<1>1 - - - - - -", "-:<2>1 - - - - - -"}},
    {"nt/NUL/1st ok/2nd ok (auto)", AUTO, 8192, R, IN("<1>1 - - - - - -\0<2>1 - - - - - -\0"),
     {"-:<1>1 - - - - - -", "-:<2>1 - - - - - -"}},
};

static const struct row rows[] = {
    /* Trailers. */
    {"crlf", LF, 64, R, IN("<1>a\r\n<2>b\r\n"), {"-:<1>a", "-:<2>b"}},
    {"cr before nul", LF, 64, R, IN("<1>a\r\0<2>b\n"), {"-:<1>a", "-:<2>b"}},
    {"only one cr is a trailer", LF, 64, R, IN("<1>a\r\r\n"), {"-:<1>a\\r"}},
    {"cr inside a frame", LF, 64, R, IN("a\rb\n"), {"-:a\\rb"}},
    {"cr at eof", LF, 64, R, IN("<1>a\r"), {"$-:<1>a"}},
    {"separators between frames", AUTO, 64, R, IN("\n\n\r\n\0\0<1>a\n\n\r\n5 hello\n\0"),
     {"-:<1>a", "o:hello"}},
    {"only separators", AUTO, 64, R, IN("\r\n\0\n\r"), {NULL}},
    {"lf mode takes digits as text", LF, 64, R, IN("16 <1>1 - - - - - -\n"),
     {"-:16 <1>1 - - - - - -"}},
    /* Auto-detection. */
    {"3164 line starting with an iso date", AUTO, 64, R,
     IN("2016-05-08T10:31:24 localhost prg00000[1234]: hi\n<1>b\n"),
     {"-:2016-05-08T10:31:24 localhost prg00000[1234]: hi", "-:<1>b"}},
    /* Documented limit of auto-detection: digits and a space are a count. */
    {"digits and space are a count", AUTO, 64, R, IN("5 abcdefg\n"), {"o:abcde", "-:fg"}},
    {"digits then lf", AUTO, 64, R, IN("12\n<1>a\n"), {"-:12", "-:<1>a"}},
    /* At EOF a count cut short is a line in AUTO mode (nothing in OCTET mode,
     * "oc/1st ko//missing WS found EOF"); a bare count is nothing in both. */
    {"digits at eof", AUTO, 64, R, IN("123"), {"$-:123"}},
    {"count at eof", AUTO, 64, R, IN("12 "), {NULL}},
    {"count at eof (octet)", OCTET, 64, R, IN("12 "), {NULL}},
    {"partial octet frame at eof", AUTO, 64, R, IN("5 abc"), {"$ot:abc"}},
    {"mixed octet and trailers", AUTO, 64, R,
     IN("5 hello<1>a\n3 abc<2>b\r\n\n7 a\nb\0c d<3>c"),
     {"o:hello", "-:<1>a", "o:abc", "-:<2>b", "o:a\\nb\\0c d", "$-:<3>c"}},
    {"octet frames followed by lf", OCTET, 64, R, IN("5 hello\n5 world\r\n"),
     {"o:hello", "o:world"}},
    /* Counts that must not be taken: too many digits, zero, sign, leading zero. */
    {"20 digits (octet)", OCTET, 64, R, IN("99999999999999999999 x"), {"!INVALID"}},
    {"20 digits (auto)", AUTO, 64, R, IN("99999999999999999999 x\n"),
     {"-:99999999999999999999 x"}},
    {"20 digits then a frame", OCTET, 64, R, IN("99999999999999999999 x\n3 abc"),
     {"!INVALID", "o:abc"}},
    {"10 digits (octet)", OCTET, 64, R, IN("1000000000 x\n3 abc"), {"!INVALID", "o:abc"}},
    {"10 digits (auto)", AUTO, 64, R, IN("1000000000 x\n"), {"-:1000000000 x"}},
    {"9 digits rejected", OCTET, 64, R, IN("999999999 x"), {"!TOOBIG"}},
    {"9 digits truncated", OCTET, 64, T, IN("999999999 x"), {"$ot:x"}},
    {"zero (octet)", OCTET, 64, R, IN("0 x\n5 hello"), {"!INVALID", "o:hello"}},
    {"zero (auto)", AUTO, 64, R, IN("0 x\n5 hello"), {"-:0 x", "o:hello"}},
    {"negative (octet)", OCTET, 64, R, IN("-5 x\n"), {"!INVALID"}},
    {"negative (auto)", AUTO, 64, R, IN("-5 x\n"), {"-:-5 x"}},
    {"leading zero (octet)", OCTET, 64, R, IN("05 hello\n3 abc"), {"!INVALID", "o:abc"}},
    {"leading zero (auto)", AUTO, 64, R, IN("05 hello\n"), {"-:05 hello"}},
    {"leading zeros, no lf (octet)", OCTET, 64, R, IN("007 abcdefg"), {"!INVALID"}},
    {"digits then garbage (octet)", OCTET, 64, R, IN("5x hello\n3 abc"),
     {"!INVALID", "o:abc"}},
    {"trailer line in octet mode", OCTET, 64, R, IN("<1>a\n5 hello"), {"!INVALID", "o:hello"}},
    {"garbage without lf (octet)", OCTET, 64, R, IN("abc"), {"!INVALID"}},
    {"nul resyncs too (octet)", OCTET, 64, R, IN("abc\0" "3 abc"), {"!INVALID", "o:abc"}},
    /* Oversized trailer frames (max 8). */
    {"line at max", LF, 8, R, IN("01234567\n"), {"-:01234567"}},
    {"crlf line at max", LF, 8, R, IN("01234567\r\n"), {"-:01234567"}},
    {"line at max + 1 rejected", LF, 8, R, IN("012345678\nok\n"), {"!TOOBIG", "-:ok"}},
    {"line at max + 1 truncated", LF, 8, T, IN("012345678\nok\n"), {"t:01234567", "-:ok"}},
    {"crlf line at max + 1", LF, 8, T, IN("012345678\r\n"), {"t:01234567"}},
    {"long line rejected", LF, 8, R, IN("0123456789abc\nshort\n"), {"!TOOBIG", "-:short"}},
    {"long line truncated", LF, 8, T, IN("0123456789abc\nshort\n"), {"t:01234567", "-:short"}},
    {"long nul line truncated", AUTO, 8, T, IN("<123456789\0ok\0"), {"t:<1234567", "-:ok"}},
    {"long line at eof rejected", LF, 8, R, IN("0123456789"), {"!TOOBIG"}},
    {"long line at eof truncated", LF, 8, T, IN("0123456789"), {"t:01234567"}},
    {"line at max + 1 at eof rejected", LF, 8, R, IN("012345678"), {NULL}},
    {"line at max + 1 at eof truncated", LF, 8, T, IN("012345678"), {"$t:01234567"}},
    /* Oversized octet frames (max 8): skipped by exactly MSG-LEN. */
    {"octet at max", OCTET, 8, R, IN("8 abcdefgh1 x"), {"o:abcdefgh", "o:x"}},
    {"octet at max + 1 rejected", OCTET, 8, R, IN("9 abcdefghi1 x"), {"!TOOBIG", "o:x"}},
    {"octet at max + 1 truncated", OCTET, 8, T, IN("9 abcdefghi1 x"), {"ot:abcdefgh", "o:x"}},
    {"oversized octet rejected", AUTO, 8, R, IN("12 aaaaaaaaaaaa3 abc"), {"!TOOBIG", "o:abc"}},
    {"oversized octet truncated", AUTO, 8, T, IN("12 aaaaaaaaaaaa3 abc"),
     {"ot:aaaaaaaa", "o:abc"}},
    {"lf inside a skipped frame", AUTO, 8, R, IN("12 aaaa\naaaaaaa3 abc"), {"!TOOBIG", "o:abc"}},
    {"lf inside a truncated frame", AUTO, 8, T, IN("12 aaaa\naaaaaaa3 abc"),
     {"ot:aaaa\\naaa", "o:abc"}},
    {"oversized octet cut by eof", OCTET, 8, T, IN("12 aaaa"), {"$ot:aaaa"}},
};

/* Appends frame bytes to out, escaped so that an event never holds a LF. */
static size_t render_bytes(char *out, size_t at, const char *p, size_t n)
{
    for (size_t i = 0; i < n && at + 5 < OUT_CAP; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\n')
            at += (size_t)snprintf(out + at, OUT_CAP - at, "\\n");
        else if (c == '\r')
            at += (size_t)snprintf(out + at, OUT_CAP - at, "\\r");
        else if (c == '\0')
            at += (size_t)snprintf(out + at, OUT_CAP - at, "\\0");
        else if (c < 0x20 || c == 0x7f)
            at += (size_t)snprintf(out + at, OUT_CAP - at, "\\x%02x", c);
        else
            out[at++] = (char)c;
    }
    out[at] = '\0';
    return at;
}

static size_t render_event(char *out, size_t at, int rc, int at_eof, const struct framer *f,
                           struct str frame)
{
    if (at > 0 && at + 1 < OUT_CAP)
        out[at++] = '\n';
    if (rc != 0)
        return at + (size_t)snprintf(out + at, OUT_CAP - at, "!%s",
                                     rc == ERR_TOOBIG ? "TOOBIG" : rc == ERR_INVALID ? "INVALID"
                                                                                     : "OTHER");
    at += (size_t)snprintf(out + at, OUT_CAP - at, "%s%s%s%s:", at_eof ? "$" : "",
                           f->flags & FRAME_OCTET ? "o" : "", f->flags & FRAME_TRUNCATED ? "t" : "",
                           f->flags == 0 ? "-" : "");
    return render_bytes(out, at, frame.p, frame.len);
}

/* Feeds r->in as reads of `first` bytes, then `rest` bytes each, into a
 * connection buffer, and renders the events into out. Returns 0, or -1 when
 * the framer broke its contract (described in out). */
static int feed(const struct row *r, size_t first, size_t rest, char *out)
{
    struct framer f;
    struct str frame;
    char *buf = malloc(r->len + 1);
    size_t held = 0, off = 0, at = 0, used;
    size_t hold_cap = r->max + FRAMING_MAX_LEN_DIGITS + 2;
    int rc, status = -1;

    out[0] = '\0';
    if (buf == NULL)
        return -1;
    framer_init(&f, r->mode, r->max, r->policy);
    while (off < r->len) {
        size_t n = off == 0 ? first : rest;
        if (n > r->len - off)
            n = r->len - off;
        memcpy(buf + held, r->in + off, n);
        held += n;
        off += n;
        do {
            rc = framer_next(&f, buf, held, &frame, &used);
            if (used > held || (rc != ERR_AGAIN && used == 0) ||
                (rc == ERR_AGAIN && held - used > hold_cap)) {
                snprintf(out, OUT_CAP, "rc %d used %zu held %zu", rc, used, held);
                goto done;
            }
            if (rc == 0 && (frame.p < buf || frame.len == 0 || frame.len > r->max ||
                            frame.p + frame.len > buf + held)) {
                snprintf(out, OUT_CAP, "frame outside the buffer, or empty, or too long");
                goto done;
            }
            if (rc != ERR_AGAIN)
                at = render_event(out, at, rc, 0, &f, frame);
            memmove(buf, buf + used, held - used);
            held -= used;
        } while (rc != ERR_AGAIN);
    }
    if (framer_finish(&f, buf, held, &frame) == 0)
        at = render_event(out, at, 0, 1, &f, frame);
    status = 0;
done:
    free(buf);
    return status;
}

static void join_want(const struct row *r, char *out)
{
    size_t at = 0;

    out[0] = '\0';
    for (size_t i = 0; i < MAX_EVENTS && r->want[i] != NULL; i++)
        at += (size_t)snprintf(out + at, OUT_CAP - at, "%s%s", i ? "\n" : "", r->want[i]);
}

/* One check per row: every way of splitting the input gives the events. */
static void test_rows(const struct row *table, size_t n)
{
    static char want[OUT_CAP], got[OUT_CAP];

    for (size_t i = 0; i < n; i++) {
        const struct row *r = &table[i];
        /* split == 0: one read; 1..len-1: two reads; len: byte by byte. */
        size_t split;
        join_want(r, want);
        for (split = 0; split <= r->len; split++) {
            size_t first = split == 0 ? r->len : split == r->len ? 1 : split;
            size_t rest = split == r->len ? 1 : r->len;
            if (feed(r, first, rest, got) != 0 || strcmp(got, want) != 0)
                break;
        }
        if (split > r->len)
            unit_passed++;
        else
            UNIT_FAIL("%s (split %zu of %zu):\n  got  [%s]\n  want [%s]", r->name, split,
                      r->len, got, want);
    }
}

/* The skip state is exact and survives any number of calls. */
static void test_skip_state(void)
{
    struct framer f;
    struct str frame;
    size_t used;
    const char head[] = "999999999 abc";

    framer_init(&f, FRAMING_OCTET, 100, OVERSIZE_REJECT);
    CHECK_INT(framer_next(&f, head, sizeof(head) - 1, &frame, &used), ERR_TOOBIG);
    CHECK_INT(used, sizeof(head) - 1);
    CHECK_INT(f.skip, 999999999 - 3);
    CHECK(str_is_absent(frame));
    CHECK_INT(f.flags, 0);
    CHECK_INT(framer_next(&f, "xxxx", 4, &frame, &used), ERR_AGAIN);
    CHECK_INT(used, 4);
    CHECK_INT(f.skip, 999999999 - 7);
    f.skip = 2; /* as if the sender had sent all but the last two bytes */
    CHECK_INT(framer_next(&f, "xx3 abc", 7, &frame, &used), 0);
    CHECK_STR("after skip", frame, "abc");
    CHECK_INT(used, 7);
    CHECK_INT(f.flags, FRAME_OCTET);
    CHECK_INT(framer_finish(&f, "", 0, &frame), ERR_AGAIN);
}

/* A zero limit is raised to one byte: no empty frame is ever delivered. */
static void test_zero_limit(void)
{
    struct framer f;
    struct str frame;
    size_t used;

    framer_init(&f, FRAMING_AUTO, 0, OVERSIZE_TRUNCATE);
    CHECK_INT(f.max_frame, 1);
    CHECK_INT(framer_next(&f, "abc\n", 4, &frame, &used), 0);
    CHECK_STR("zero limit", frame, "a");
    CHECK_INT(f.flags, FRAME_TRUNCATED);
}

/* The most the framer makes a caller hold before it decides (framing.h,
 * README): max_frame + 2 bytes of a trailer frame (max_frame bytes, a CR,
 * then the LF), max_frame + 10 of an octet frame (9 digits, SP, payload). */
static void test_hold_bound(void)
{
    struct framer f;
    struct str frame;
    size_t used;

    framer_init(&f, FRAMING_LF, 8, OVERSIZE_REJECT);
    CHECK_INT(framer_next(&f, "aaaaaaaa\r", 9, &frame, &used), ERR_AGAIN);
    CHECK_INT(used, 0);
    CHECK_INT(framer_next(&f, "aaaaaaaa\r\n", 10, &frame, &used), 0);
    CHECK_STR("hold: exactly max_frame", frame, "aaaaaaaa");
    framer_init(&f, FRAMING_LF, 8, OVERSIZE_REJECT);
    CHECK_INT(framer_next(&f, "aaaaaaaaa", 9, &frame, &used), ERR_AGAIN);
    CHECK_INT(framer_next(&f, "aaaaaaaaaa", 10, &frame, &used), ERR_TOOBIG);

    framer_init(&f, FRAMING_AUTO, 8, OVERSIZE_TRUNCATE);
    CHECK_INT(framer_next(&f, "999999999 aaaaaaa", 17, &frame, &used), ERR_AGAIN);
    CHECK_INT(framer_next(&f, "999999999 aaaaaaaa", 18, &frame, &used), 0);
    CHECK_STR("hold: octet", frame, "aaaaaaaa");
    CHECK_INT(f.flags, FRAME_OCTET | FRAME_TRUNCATED);
}

static void test_trim_trailer(void)
{
    static const struct {
        const char *in;
        size_t len;
        const char *want;
    } trims[] = {
        {IN("abc"), "abc"},       {IN("abc\n"), "abc"},     {IN("abc\r\n"), "abc"},
        {IN("abc\0"), "abc"},     {IN("abc\n\0\r\n"), "abc"}, {IN("a\nb\r\n"), "a\nb"},
        {IN("\n\r\0"), ""},       {IN(" abc \n"), " abc "},
    };

    for (size_t i = 0; i < sizeof(trims) / sizeof(trims[0]); i++)
        CHECK_STR(trims[i].in, framer_trim_trailer(trims[i].in, trims[i].len), trims[i].want);
}

int main(void)
{
    test_rows(conformance_rows, sizeof(conformance_rows) / sizeof(conformance_rows[0]));
    test_rows(rows, sizeof(rows) / sizeof(rows[0]));
    test_skip_state();
    test_zero_limit();
    test_hold_bound();
    test_trim_trailer();
    return unit_report("test_framing");
}
