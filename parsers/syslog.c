/* Syslog header parser: RFC 5424 (strict), RFC 3164 and the variants real senders use, or no
 * header. One forward pass over the header; slices point into the input and SD values are
 * copied into the scratch buffer only when they hold an escape. Every choice where peers
 * disagree is listed in parsers/README.md. */
#include "syslog.h"

#include <stdbool.h>
#include <string.h>

#include "errors.h"

/* RFC 5424 §6 field limits. */
#define HOSTNAME_MAX 255
#define APP_MAX      48
#define PROCID_MAX   128
#define MSGID_MAX    32
#define SD_NAME_MAX  32
/* RFC 3164 says TAG <= 32; real tags run longer (liblogging-stdlog, postfix/smtpd). */
#define TAG_MAX     64
#define TAG_PID_MAX 128
/* Cisco IOS sequence numbers are 32-bit counters. */
#define SEQ_MAX_DIGITS 10

/* Every error is a static string naming the format the sender claimed. */
static const char ERR_PRI[] = "syslog: invalid PRI";
static const char ERR_TIMESTAMP[] = "rfc5424: invalid TIMESTAMP";
static const char ERR_HOSTNAME[] = "rfc5424: invalid HOSTNAME";
static const char ERR_APP[] = "rfc5424: invalid APP-NAME";
static const char ERR_PROCID[] = "rfc5424: invalid PROCID";
static const char ERR_MSGID[] = "rfc5424: invalid MSGID";
static const char ERR_SD[] = "rfc5424: invalid STRUCTURED-DATA";
static const char ERR_SD_ID[] = "rfc5424: invalid SD-ID";
static const char ERR_SD_DUP[] = "rfc5424: duplicate SD-ID";
static const char ERR_SD_PARAM[] = "rfc5424: invalid SD-PARAM";
static const char ERR_SD_VALUE[] = "rfc5424: unescaped ']' or unterminated SD-PARAM value";
static const char ERR_NO_SP[] = "rfc5424: no SP between STRUCTURED-DATA and MSG";
static const char ERR_BOM_UTF8[] = "rfc5424: MSG starts with a BOM but is not UTF-8";
/* Valid input that exceeds a fixed table or the scratch buffer: the message keeps its format. */
static const char ERR_SD_TOO_MANY[] = "rfc5424: too many SD elements or params, extra dropped";
static const char ERR_SD_SCRATCH[] = "syslog: scratch buffer full, SD value left escaped";

enum r5424 {
    R5424_OK,  /* a valid RFC 5424 message */
    R5424_CUT, /* a CEF:/LEEF: token ended the header early: valid up to there */
    R5424_BAD, /* out->error says why */
};

/* PRINTUSASCII, %d33-126. */
static inline bool is_print(char c)
{
    return (unsigned char)c >= 33 && (unsigned char)c <= 126;
}

/* SD-NAME: PRINTUSASCII except '=', SP, ']' and '"'. */
static inline bool is_sd_name(char c)
{
    return is_print(c) && c != '=' && c != ']' && c != '"';
}

/* A byte of a 3164 HOSTNAME token: anything but SP and control bytes (UTF-8 names occur). */
static inline bool is_host_char(char c)
{
    return (unsigned char)c > ' ' && c != 0x7f;
}

/* A byte of a 3164 TAG name: '/', '%', '-', '.' and UTF-8 occur; ':' '[' end the name, and
 * '=' or '"' mean key=value content, never a program name. */
static inline bool is_tag_char(char c)
{
    return is_host_char(c) && c != ':' && c != '[' && c != ']' && c != '=' && c != '"';
}

static inline bool is_ipv6_char(char c)
{
    return str_hex_value(c) >= 0 || c == ':' || c == '.';
}

static inline bool is_ws(char c)
{
    return str_is_blank(c) || c == '\r' || c == '\n';
}

static const char *skip_sp(const char *p, const char *end)
{
    while (p < end && *p == ' ')
        p++;
    return p;
}

/* Two decimal digits, or -1. The caller guarantees two readable bytes. */
static inline int dig2(const char *p)
{
    if (!str_is_digit(p[0]) || !str_is_digit(p[1]))
        return -1;
    return (p[0] - '0') * 10 + (p[1] - '0');
}

/* The header rule shared with the payload parsers (cef_find, leef_find): a token starting
 * "CEF:" or "LEEF:" and a digit is the payload, so the header ends before it. */
static inline bool is_payload(const char *p, const char *end)
{
    size_t n = (size_t)(end - p);
    if (n < 5 || (*p != 'C' && *p != 'L'))
        return false;
    return str_starts_marker(p, n, "CEF:", 4) || str_starts_marker(p, n, "LEEF:", 5);
}

/* year < 0: unknown (RFC 3164 carries none), so Feb 29 is allowed. */
static int days_in_month(int month, int year)
{
    static const unsigned char days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && year >= 0)
        return (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28;
    return days[month - 1];
}

/* "hh:mm:ss" at p (8 readable bytes guaranteed by the caller); 0 or -1. */
static int hms(const char *p)
{
    int h = dig2(p), m = dig2(p + 3), s = dig2(p + 6);
    if (p[2] != ':' || p[5] != ':' || h < 0 || h > 23 || m < 0 || m > 59 || s < 0 || s > 59)
        return -1;
    return 0;
}

/* '.' then 1..max digits, if present; returns the position after it or NULL. */
static const char *fraction(const char *p, const char *end, int max)
{
    if (p == end || *p != '.')
        return p;
    const char *q = ++p;
    while (q < end && str_is_digit(*q) && q - p < max)
        q++;
    if (q == p || (q < end && str_is_digit(*q)))
        return NULL;
    return q;
}

/* RFC 3339 date-time. strict is the RFC 5424 profile: 'T', <= 6 fraction digits, then 'Z' or
 * +-HH:MM. Otherwise (3164 senders: rsyslog, Cisco, appliances) also a space for 'T', <= 9
 * fraction digits, no zone, +-HH, +-HHMM, and 'Z' followed by an offset. Returns the position
 * after it, or NULL. */
static const char *iso_timestamp(const char *p, const char *end, bool strict)
{
    if (end - p < 19 || !str_is_digit(p[0]) || !str_is_digit(p[1]) || p[4] != '-' || p[7] != '-')
        return NULL;
    int y100 = dig2(p), y1 = dig2(p + 2), mon = dig2(p + 5), day = dig2(p + 8);
    if (y100 < 0 || y1 < 0 || mon < 1 || mon > 12 || day < 1 ||
        day > days_in_month(mon, y100 * 100 + y1))
        return NULL;
    if (p[10] != 'T' && (strict || p[10] != ' '))
        return NULL;
    if (hms(p + 11) < 0)
        return NULL;
    const char *q = fraction(p + 19, end, strict ? 6 : 9);
    if (q == NULL)
        return NULL;
    bool zulu = q < end && *q == 'Z';
    if (zulu) {
        q++;
        if (strict)
            return q;
    }
    if (q == end || (*q != '+' && *q != '-'))
        return strict ? NULL : q;
    if (end - q < 3 || dig2(q + 1) < 0 || dig2(q + 1) > 23)
        return NULL;
    q += 3;
    if (end - q >= 3 && q[0] == ':' && dig2(q + 1) >= 0 && dig2(q + 1) <= 59)
        return q + 3;
    if (strict)
        return NULL;
    if (end - q >= 2 && dig2(q) >= 0 && dig2(q) <= 59)
        return q + 2;
    return q;
}

#define MONTH_KEY(a, b, c)                                                                         \
    ((unsigned)(unsigned char)(a) << 16 | (unsigned)(unsigned char)(b) << 8 | (unsigned char)(c))

/* Month from three letters, any case (Cisco and some appliances send "NOV"); 1..12 or 0.
 * A switch on the packed letters: this runs on every 3164 message. */
static int month_index(const char *p)
{
    switch (MONTH_KEY(p[0] | 0x20, p[1] | 0x20, p[2] | 0x20)) {
    case MONTH_KEY('j', 'a', 'n'):
        return 1;
    case MONTH_KEY('f', 'e', 'b'):
        return 2;
    case MONTH_KEY('m', 'a', 'r'):
        return 3;
    case MONTH_KEY('a', 'p', 'r'):
        return 4;
    case MONTH_KEY('m', 'a', 'y'):
        return 5;
    case MONTH_KEY('j', 'u', 'n'):
        return 6;
    case MONTH_KEY('j', 'u', 'l'):
        return 7;
    case MONTH_KEY('a', 'u', 'g'):
        return 8;
    case MONTH_KEY('s', 'e', 'p'):
        return 9;
    case MONTH_KEY('o', 'c', 't'):
        return 10;
    case MONTH_KEY('n', 'o', 'v'):
        return 11;
    case MONTH_KEY('d', 'e', 'c'):
        return 12;
    default:
        return 0;
    }
}

/* End of the month name at p, whose first three letters name month mon: after them, or
 * after the full English name ("January", as beats reads it), in any case as the
 * abbreviation. Only a SP may follow; NULL otherwise. */
static const char *month_name_end(const char *p, const char *end, int mon)
{
    static const char *const rest[12] = {"uary", "ruary", "ch",     "il",   "",      "e",
                                         "y",    "ust",   "tember", "ober", "ember", "ember"};
    const char *q = p + 3, *r = rest[mon - 1];

    if (q < end && *q != ' ') {
        while (*r != '\0' && q < end && (*q | 0x20) == *r) {
            q++;
            r++;
        }
        if (*r != '\0')
            return NULL;
    }
    return q < end && *q == ' ' ? q : NULL;
}

/* "Mmm dd [yyyy ]hh:mm:ss[.frac]": the month abbreviated or in full, the day space-padded,
 * zero-padded or one digit; the year is Cisco ASA's. Returns the position after it, or NULL. */
static const char *bsd_timestamp(const char *p, const char *end)
{
    if (end - p < 14)
        return NULL;
    int mon = month_index(p);
    if (mon == 0)
        return NULL;
    const char *q = month_name_end(p, end, mon);
    /* " d hh:mm:ss" at least: the day's bytes below need no further check. */
    if (q == NULL || end - q < 11)
        return NULL;
    q++;
    int day;
    if (q[0] == ' ' && str_is_digit(q[1])) {
        day = q[1] - '0';
        q += 2;
    } else if (str_is_digit(q[0]) && str_is_digit(q[1])) {
        day = dig2(q);
        q += 2;
    } else if (str_is_digit(q[0]) && q[1] == ' ') {
        day = q[0] - '0';
        q += 1;
    } else {
        return NULL;
    }
    if (end - q < 9 || *q++ != ' ')
        return NULL;
    int year = -1;
    if (end - q >= 13 && dig2(q) >= 0 && dig2(q + 2) >= 0 && q[4] == ' ') {
        year = dig2(q) * 100 + dig2(q + 2);
        q += 5;
    }
    if (day < 1 || day > days_in_month(mon, year) || end - q < 8 || hms(q) < 0)
        return NULL;
    return fraction(q + 8, end, 9);
}

/* PRI at p. Returns the position after '>' and sets *pri; p itself with *pri = -1 when there is
 * no PRI; NULL when digits in angle brackets are not a valid PRIVAL (> 191, leading zero). */
static const char *parse_pri(const char *p, const char *end, int *pri)
{
    *pri = -1;
    if (p == end || *p != '<')
        return p;
    const char *d = p + 1, *q = d;
    int v = 0;
    while (q < end && str_is_digit(*q)) {
        if (q - d < 3)
            v = v * 10 + (*q - '0');
        q++;
    }
    if (q == d || q == end || *q != '>')
        return p;
    if (q - d > 3 || v > 191 || (*d == '0' && q - d > 1))
        return NULL;
    *pri = v;
    return q + 1;
}

/* VERSION SP (NONZERO-DIGIT 0*2DIGIT) opens an RFC 5424 header; returns what follows. */
static const char *version_5424(const char *p, const char *end, int *version)
{
    if (p == end || *p < '1' || *p > '9')
        return NULL;
    int v = 0;
    const char *q = p;
    while (q < end && str_is_digit(*q) && q - p < 3)
        v = v * 10 + (*q++ - '0');
    if (q == end || *q != ' ')
        return NULL;
    *version = v;
    return q + 1;
}

/* One RFC 5424 header field: NILVALUE (absent) or 1..max PRINTUSASCII, then SP. Returns the
 * position after the SP, or NULL. */
static const char *field_5424(const char *p, const char *end, size_t max, struct str *field)
{
    if (end - p >= 2 && p[0] == '-' && p[1] == ' ') { /* NILVALUE: most PROCIDs and MSGIDs */
        *field = STR_ABSENT;
        return p + 2;
    }
    const char *lim = (size_t)(end - p) > max ? p + max : end;
    const char *q = p;
    while (q < lim && is_print(*q))
        q++;
    if (q == p || q == end || *q != ' ')
        return NULL;
    *field = str_make(p, (size_t)(q - p));
    return q + 1;
}

/* Copies an escaped PARAM-VALUE into scratch, undoing \" \\ \]. Any other backslash is kept
 * as a regular character (RFC 5424 §6.3.3). Out of scratch: the raw text, and out->error. */
static struct str sd_unescape(const char *p, size_t len, struct scratch *s, struct syslog_msg *out)
{
    char *d = s ? scratch_reserve(s, len) : NULL;
    if (d == NULL) {
        out->error = ERR_SD_SCRATCH;
        return str_make(p, len);
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\\' && i + 1 < len && (p[i + 1] == '"' || p[i + 1] == '\\' || p[i + 1] == ']'))
            i++;
        d[n++] = p[i];
    }
    s->used -= len - n; /* unescaping only shrinks: give back the tail */
    return str_make(d, n);
}

/* An SD-NAME (1..32 chars) at p; returns its end or NULL. */
static const char *sd_name(const char *p, const char *end)
{
    const char *lim = end - p > SD_NAME_MAX ? p + SD_NAME_MAX : end;
    const char *q = p;
    while (q < lim && is_sd_name(*q))
        q++;
    if (q == p || (q < end && is_sd_name(*q)))
        return NULL;
    return q;
}

/* State of one SD parse: elements and params beyond the fixed tables are checked but dropped
 * (dropped says so); err says why a parse failed. */
struct sd_parser {
    struct syslog_msg *out;
    struct scratch *scratch;
    const char *err;
    bool dropped;
};

/* One SD-PARAM at p (after its SP): name="value". Stored in e (NULL: the element was dropped)
 * while the param table has room. Returns the position after the closing '"', or NULL. */
static const char *sd_param(struct sd_parser *sp, const char *p, const char *end,
                            struct syslog_sd_element *e)
{
    const char *v = sd_name(p, end);
    if (v == NULL || end - v < 2 || v[0] != '=' || v[1] != '"') {
        sp->err = ERR_SD_PARAM;
        return NULL;
    }
    v += 2;
    const char *c = v;
    bool escaped = false;
    while (c < end && *c != '"') {
        if (*c == ']') {
            sp->err = ERR_SD_VALUE;
            return NULL;
        }
        if (*c == '\\' && c + 1 < end && (c[1] == '"' || c[1] == '\\' || c[1] == ']')) {
            escaped = true;
            c++;
        }
        c++;
    }
    if (c >= end) {
        sp->err = ERR_SD_VALUE;
        return NULL;
    }
    struct syslog_msg *out = sp->out;
    if (e != NULL && out->n_sd_params < SYSLOG_MAX_SD_PARAMS) {
        struct syslog_sd_param *param = &out->sd_params[out->n_sd_params++];
        size_t vlen = (size_t)(c - v);
        param->name = str_make(p, (size_t)(v - 2 - p));
        param->value = escaped ? sd_unescape(v, vlen, sp->scratch, out) : str_make(v, vlen);
        e->n_params++;
    } else {
        sp->dropped = true;
    }
    return c + 1;
}

/* One SD-ELEMENT at p (which is '['). Returns the position after its ']', or NULL. The
 * duplicate check compares against at most SYSLOG_MAX_SD_ELEMENTS stored ids. */
static const char *sd_element(struct sd_parser *sp, const char *p, const char *end)
{
    struct syslog_msg *out = sp->out;
    const char *id = p + 1, *q = sd_name(id, end);
    if (q == NULL) {
        sp->err = ERR_SD_ID;
        return NULL;
    }
    struct str sid = str_make(id, (size_t)(q - id));
    for (size_t i = 0; i < out->n_sd; i++) {
        if (str_eq(out->sd[i].id, sid)) {
            sp->err = ERR_SD_DUP;
            return NULL;
        }
    }
    struct syslog_sd_element *e = NULL;
    if (out->n_sd < SYSLOG_MAX_SD_ELEMENTS) {
        e = &out->sd[out->n_sd++];
        e->id = sid;
        e->first_param = out->n_sd_params;
        e->n_params = 0;
    } else {
        sp->dropped = true;
    }
    while (q < end && *q == ' ') {
        q = sd_param(sp, q + 1, end, e);
        if (q == NULL)
            return NULL;
    }
    if (q == end || *q != ']') {
        sp->err = ERR_SD_PARAM;
        return NULL;
    }
    return q + 1;
}

/* One or more SD-ELEMENTs at p (which is '['). Returns the position after the last ']', or
 * NULL with sp->err set. Linear: every byte is looked at once or twice. */
static const char *parse_sd(struct sd_parser *sp, const char *p, const char *end)
{
    while (p != NULL && p < end && *p == '[')
        p = sd_element(sp, p, end);
    return p;
}

/* RFC 3629 UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
static bool utf8_valid(const unsigned char *p, const unsigned char *end)
{
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            lo = c == 0xe0 ? 0xa0 : 0x80;
            hi = c == 0xed ? 0x9f : 0xbf;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            lo = c == 0xf0 ? 0x90 : 0x80;
            hi = c == 0xf4 ? 0x8f : 0xbf;
        } else {
            return false;
        }
        if ((size_t)(end - p) <= n || p[1] < lo || p[1] > hi)
            return false;
        for (size_t i = 2; i <= n; i++)
            if ((p[i] & 0xc0) != 0x80)
                return false;
        p += n + 1;
    }
    return true;
}

/* A CEF:/LEEF: token at p ends an RFC 5424-like header: MSG starts there. */
static bool cut_at_payload(const char *p, const char *end, struct syslog_msg *out)
{
    if (!is_payload(p, end))
        return false;
    out->msg = str_make(p, (size_t)(end - p));
    return true;
}

/* TIMESTAMP and the four header fields after "VERSION SP", each with its SP. R5424_OK moves
 * *pp past them; a CEF:/LEEF: token before a field ends the header (R5424_CUT, msg set). */
static enum r5424 header_5424(const char **pp, const char *end, struct syslog_msg *out)
{
    struct str *const fields[] = {&out->hostname, &out->app, &out->procid, &out->msgid};
    static const size_t max[] = {HOSTNAME_MAX, APP_MAX, PROCID_MAX, MSGID_MAX};
    static const char *const errs[] = {ERR_HOSTNAME, ERR_APP, ERR_PROCID, ERR_MSGID};
    const char *p = *pp;

    if (cut_at_payload(p, end, out))
        return R5424_CUT;
    if (p < end && *p == '-') {
        p++;
    } else {
        const char *t = iso_timestamp(p, end, true);
        if (t == NULL) {
            out->error = ERR_TIMESTAMP;
            return R5424_BAD;
        }
        out->timestamp = str_make(p, (size_t)(t - p));
        p = t;
    }
    if (p == end || *p++ != ' ') {
        out->error = ERR_TIMESTAMP;
        return R5424_BAD;
    }
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (cut_at_payload(p, end, out))
            return R5424_CUT;
        p = field_5424(p, end, max[i], fields[i]);
        if (p == NULL) {
            out->error = errs[i];
            return R5424_BAD;
        }
    }
    if (cut_at_payload(p, end, out))
        return R5424_CUT;
    *pp = p;
    return R5424_OK;
}

/* STRUCTURED-DATA at *pp: NILVALUE or SD-ELEMENTs. R5424_OK moves *pp past it. */
static enum r5424 sd_5424(const char **pp, const char *end, struct syslog_msg *out,
                          struct scratch *s)
{
    const char *p = *pp;

    if (p < end && *p == '-') {
        *pp = p + 1;
        return R5424_OK;
    }
    if (p == end || *p != '[') {
        out->error = ERR_SD;
        return R5424_BAD;
    }
    struct sd_parser sp = {out, s, NULL, false};
    p = parse_sd(&sp, p, end);
    if (p == NULL) {
        out->error = sp.err;
        return R5424_BAD;
    }
    if (sp.dropped)
        out->error = ERR_SD_TOO_MANY;
    *pp = p;
    return R5424_OK;
}

/* [SP MSG] after STRUCTURED-DATA at p: an optional BOM, which promises UTF-8. */
static enum r5424 msg_5424(const char *p, const char *end, struct syslog_msg *out)
{
    if (p == end)
        return R5424_OK;
    if (*p++ != ' ') {
        out->error = ERR_NO_SP;
        return R5424_BAD;
    }
    if (end - p >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
        p += 3;
        /* MSG-UTF8 = BOM UTF-8-STRING: the BOM is a promise, checked only when made. */
        if (!utf8_valid((const unsigned char *)p, (const unsigned char *)end)) {
            out->error = ERR_BOM_UTF8;
            return R5424_BAD;
        }
        out->flags |= SYSLOG_F_BOM;
    }
    /* A BOM alone is an empty MSG, not an absent one: the BOM stays at msg.p - 3. */
    if (p < end || (out->flags & SYSLOG_F_BOM))
        out->msg = str_make(p, (size_t)(end - p));
    return R5424_OK;
}

/* Everything after "VERSION SP". Fills out; on R5424_BAD out->error says why and the caller
 * discards the fields. */
static enum r5424 parse_5424(const char *p, const char *end, struct syslog_msg *out,
                             struct scratch *s)
{
    enum r5424 r = header_5424(&p, end, out);
    if (r == R5424_OK)
        r = sd_5424(&p, end, out, s);
    if (r == R5424_OK)
        r = msg_5424(p, end, out);
    return r;
}

/* A 3164 timestamp at p: [Cisco "SEQ: "] ["*" or "."] (BSD or ISO), then an optional ':'
 * (Cisco), then SP or the end. Sets *ts (without the marker or the colon) and returns the
 * position after it, or NULL. */
static const char *timestamp_3164(const char *p, const char *end, struct str *ts)
{
    const char *d = p;
    while (d < end && str_is_digit(*d) && d - p < SEQ_MAX_DIGITS)
        d++;
    if (d > p && end - d >= 2 && d[0] == ':' && d[1] == ' ')
        p = d + 2;
    /* Cisco IOS: '*' = clock not synchronised, '.' = synchronised then lost. */
    if (p < end && (*p == '*' || *p == '.'))
        p++;
    const char *t = bsd_timestamp(p, end);
    if (t == NULL)
        t = iso_timestamp(p, end, false);
    if (t == NULL)
        return NULL;
    const char *after = t < end && *t == ':' ? t + 1 : t;
    if (after < end && *after != ' ')
        return NULL;
    *ts = str_make(p, (size_t)(t - p));
    return after;
}

/* The run of TAG name bytes at p. */
static const char *tag_name_end(const char *p, const char *end)
{
    while (p < end && is_tag_char(*p))
        p++;
    return p;
}

/* A 3164 TAG whose name is [p, q): "name:" before SP, the end or a CEF:/LEEF: token
 * ("app:CEF:0|..."), or "name[pid]" with an optional ':' (then anything may follow:
 * "root[8539]:syslog message"). Sets app and procid and returns the position after the tag
 * and its spaces, or NULL when p is not a tag. */
static const char *tag_3164(const char *p, const char *q, const char *end, struct syslog_msg *out)
{
    if (q == p || q == end || q - p > TAG_MAX)
        return NULL;
    struct str pid = STR_ABSENT;
    if (*q == '[') {
        const char *b = q + 1, *c = b;
        const char *plim = end - b > TAG_PID_MAX ? b + TAG_PID_MAX : end;
        while (c < plim && is_print(*c) && *c != ']')
            c++;
        if (c == b || c == end || *c != ']')
            return NULL;
        pid = str_make(b, (size_t)(c - b));
        c++;
        if (c < end && *c == ':')
            c++;
        else if (c < end && *c != ' ')
            return NULL;
        out->app = str_make(p, (size_t)(q - p));
        out->procid = pid;
        return skip_sp(c, end);
    }
    if (*q != ':' || (q + 1 < end && q[1] != ' ' && !is_payload(q + 1, end)))
        return NULL;
    out->app = str_make(p, (size_t)(q - p));
    return skip_sp(q + 1, end);
}

/* IPv6 literals ("1::", "2607:f0d0:1002:51::4") end in or contain ':' like a TAG does. */
static bool looks_ipv6(const char *p, const char *end)
{
    int colons = 0;
    for (; p < end; p++) {
        if (!is_ipv6_char(*p))
            return false;
        colons += *p == ':';
    }
    return colons >= 2;
}

/* rsyslog's own lines put RFC 5424 SD after a 3164 TAG ("rsyslogd: [origin software=...]").
 * Taken as SD only when every element has a param, all fit the tables and SP or the end
 * follows, so that kernel "[12345.678]" and iptables "[WAN_LOCAL-default-D]IN=" prefixes stay
 * message text. A full scratch does not change the reading (out->error reports it). */
static const char *content_sd(const char *p, const char *end, struct syslog_msg *out,
                              struct scratch *s)
{
    size_t used = s ? s->used : 0;
    struct sd_parser sp = {out, s, NULL, false};
    const char *q = parse_sd(&sp, p, end);
    bool ok = q != NULL && (q == end || *q == ' ') && !sp.dropped;
    for (size_t i = 0; ok && i < out->n_sd; i++)
        ok = out->sd[i].n_params > 0;
    if (ok)
        return skip_sp(q, end);
    out->n_sd = 0;
    out->n_sd_params = 0;
    out->error = NULL;
    if (s)
        s->used = used;
    return p;
}

/* After the 3164 timestamp: [HOSTNAME SP] [TAG] CONTENT. A first token that is a TAG is taken
 * as one, so "hostname: message" has no hostname (as "haproxy[73411]:" and "zscaler-nss:"
 * have none); otherwise the first token is the HOSTNAME. */
static void tail_3164(const char *p, const char *end, struct syslog_msg *out, struct scratch *s)
{
    p = skip_sp(p, end);
    if (p < end && !is_payload(p, end)) {
        /* One scan: TAG name bytes are HOSTNAME bytes, so the token goes on from q. */
        const char *q = tag_name_end(p, end), *h = q;
        while (h < end && is_host_char(*h))
            h++;
        const char *t = q == h || looks_ipv6(p, h) ? NULL : tag_3164(p, q, end, out);
        if (t != NULL) {
            p = t;
        } else if ((h == end || *h == ' ') && h - p <= HOSTNAME_MAX) {
            out->hostname = str_make(p, (size_t)(h - p));
            p = skip_sp(h, end);
            /* Cisco ASA/FTD "HOST : %ASA-4-106023: ..." */
            if (p < end && *p == ':' && (p + 1 == end || p[1] == ' '))
                p = skip_sp(p + 1, end);
            if (p < end && !is_payload(p, end) &&
                (t = tag_3164(p, tag_name_end(p, end), end, out)) != NULL)
                p = t;
        }
    }
    if (!str_is_absent(out->app) && p < end && *p == '[')
        p = content_sd(p, end, out, s);
    if (p < end)
        out->msg = str_make(p, (size_t)(end - p));
}

/* RFC 3164 and its variants at p (after PRI, if any). Without a timestamp: a PRI alone still
 * makes a 3164 header (the rest is MSG); no PRI and no timestamp is no header. */
static bool parse_3164(const char *p, const char *end, struct syslog_msg *out, struct scratch *s)
{
    if (out->pri >= 0)
        p = skip_sp(p, end);
    const char *t = timestamp_3164(p, end, &out->timestamp);
    if (t == NULL) {
        if (out->pri < 0)
            return false;
        out->format = SYSLOG_RFC3164;
        /* "<15> openvpn[2499]: msg": a TAG right after the PRI is the program, as syslog-ng
         * and rsyslog read it. TAG form only, so "<38>User logged into..." stays MSG. */
        if (p < end && !is_payload(p, end) &&
            (t = tag_3164(p, tag_name_end(p, end), end, out)) != NULL) {
            p = t;
            if (p < end && *p == '[')
                p = content_sd(p, end, out, s);
        }
        if (p < end)
            out->msg = str_make(p, (size_t)(end - p));
        return true;
    }
    out->format = SYSLOG_RFC3164;
    tail_3164(t, end, out, s);
    return true;
}

static void reset_header(struct syslog_msg *out)
{
    out->format = SYSLOG_NONE;
    out->version = 0;
    out->timestamp = STR_ABSENT;
    out->hostname = STR_ABSENT;
    out->app = STR_ABSENT;
    out->procid = STR_ABSENT;
    out->msgid = STR_ABSENT;
    out->n_sd = 0;
    out->n_sd_params = 0;
    out->msg = STR_ABSENT;
    out->flags = 0;
    out->error = NULL;
}

/* The kind of one of this file's errors: only ERR_PRI and ERR_SD_SCRATCH are not about an
 * RFC 5424 claim. */
static enum err_kind syslog_error_kind(const char *error)
{
    if (error == NULL)
        return ERR_KIND_NONE;
    if (error == ERR_PRI || error == ERR_SD_SCRATCH)
        return ERR_KIND_SYSLOG;
    return ERR_KIND_RFC5424;
}

/* syslog_parse without error_kind, which the caller sets from error on every return. */
static int syslog_parse_header(const char *buf, size_t len, struct syslog_msg *out,
                               struct scratch *scratch)
{
    const char *p = buf, *end = buf + len;
    size_t mark = scratch ? scratch->used : 0;

    reset_header(out);
    out->pri = -1;
    /* Line-break and indentation residue of TCP and file framing is never part of a header or
     * of a meaningful MSG. */
    while (p < end && is_ws(*p))
        p++;
    while (end > p && is_ws(end[-1]))
        end--;
    if (p == end)
        return 0;
    struct str whole = str_make(p, (size_t)(end - p));

    const char *q = parse_pri(p, end, &out->pri);
    if (q == NULL) {
        out->error = ERR_PRI;
        out->msg = whole;
        return ERR_INVALID;
    }
    const char *body = version_5424(q, end, &out->version);
    if (body != NULL) {
        bool claimed = out->pri >= 0;
        enum r5424 r = parse_5424(body, end, out, scratch);
        if (r == R5424_OK && claimed) {
            out->format = SYSLOG_RFC5424;
            return out->error ? ERR_INVALID : 0;
        }
        if (r != R5424_BAD) {
            /* Good fields, but not RFC 5424: IBM's "<13>1 TS HOST LEEF:2.0|..." (cut short by
             * the payload) or "1 2020-05-22T... host app ..." (no PRI). */
            out->format = SYSLOG_RFC3164;
            return out->error ? ERR_INVALID : 0;
        }
        const char *err = out->error;
        reset_header(out);
        if (scratch)
            scratch->used = mark;
        if (claimed) {
            /* Claimed and broken: keep the PRI (it parsed), give all the text to MSG. */
            out->error = err;
            out->msg = whole;
            return ERR_INVALID;
        }
    }
    if (!parse_3164(q, end, out, scratch))
        out->msg = whole;
    return out->error ? ERR_INVALID : 0;
}

int syslog_parse(const char *buf, size_t len, struct syslog_msg *out, struct scratch *scratch)
{
    int rc = syslog_parse_header(buf, len, out, scratch);

    out->error_kind = syslog_error_kind(out->error);
    return rc;
}

const char *syslog_format_name(enum syslog_format f)
{
    switch (f) {
    case SYSLOG_RFC3164:
        return "rfc3164";
    case SYSLOG_RFC5424:
        return "rfc5424";
    case SYSLOG_NONE:
        break;
    }
    return "none";
}
