/* syslog_parse: one table row per input, {input, expected fields}. Rows marked DISAGREE are
 * deliberate disagreements with a peer suite (parsers/README.md says why). Each input
 * is copied into a buffer of exactly its length, so a sanitizer build catches any read past
 * the end. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errors.h"
#include "syslog.h"
#include "unit.h"

#define F_NONE SYSLOG_NONE
#define F_3164 SYSLOG_RFC3164
#define F_5424 SYSLOG_RFC5424

#define T16 "tttttttttttttttt"
#define T64 T16 T16 T16 T16
#define P128                                                                                       \
    "1234567890123456789012345678901234567890123456789012345678901234"                             \
    "1234567890123456789012345678901234567890123456789012345678901234"

/* For inputs and MSGs holding NUL bytes. */
#define BIN(s)    .in = (s), .len = sizeof(s) - 1
#define BINMSG(s) .msg = (s), .msg_len = sizeof(s) - 1

struct row {
    const char *in;
    size_t len; /* 0: strlen(in) */
    enum syslog_format format;
    int pri; /* every row sets it: -1 is "absent" */
    int version;
    const char *ts, *host, *app, *procid, *msgid;
    const char *sd; /* "[id k=v k=v][id]", NULL: no SD */
    const char *msg;
    size_t msg_len; /* 0: strlen(msg) */
    unsigned flags;
    const char *error; /* expected error string, NULL: none */
};

/* One row per input reads better than one line per field. */
/* clang-format off */
static const struct row rows[] = {
    /* RFC 5424 */
    {.in = "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed",
     .format = F_5424, .pri = 34, .version = 1, .ts = "2003-10-11T22:14:15.003Z",
     .host = "mymachine.example.com", .app = "su", .msgid = "ID47", .msg = "'su root' failed"},
    {.in = "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% Time to make",
     .format = F_5424, .pri = 165, .version = 1, .ts = "2003-08-24T05:14:15.000003-07:00",
     .host = "192.0.2.1", .app = "myproc", .procid = "8710", .msg = "%% Time to make"},
    {.in = "<10>1 - - - - - -", .format = F_5424, .pri = 10, .version = 1},
    {.in = "<0>1 - - - - - -", .format = F_5424, .pri = 0, .version = 1},
    /* SP then an empty MSG: no MSG (go-syslog) */
    {.in = "<1>1 - - - - - - ", .format = F_5424, .pri = 1, .version = 1},
    {.in = "<191>999 2016-02-29T23:59:59.999999-23:59 h a p m -", .format = F_5424, .pri = 191,
     .version = 999, .ts = "2016-02-29T23:59:59.999999-23:59", .host = "h", .app = "a",
     .procid = "p", .msgid = "m"},
    {.in = "<165>1 2003-10-11T22:14:15.003Z h evntslog - ID47 [exampleSDID@32473 iut=\"3\" "
           "eventSource=\"Application\"][examplePriority@32473 class=\"high\"] An entry",
     .format = F_5424, .pri = 165, .version = 1, .ts = "2003-10-11T22:14:15.003Z", .host = "h",
     .app = "evntslog", .msgid = "ID47",
     .sd = "[exampleSDID@32473 iut=3 eventSource=Application][examplePriority@32473 class=high]",
     .msg = "An entry"},
    {.in = "<29>2 2016-01-15T01:00:43Z hn S - - [meta escape=\"\\]\\\"\\\\\\\\\\]\\\"\"]",
     .format = F_5424, .pri = 29, .version = 2, .ts = "2016-01-15T01:00:43Z", .host = "hn",
     .app = "S", .sd = "[meta escape=]\"\\\\]\"]"},
    /* DISAGREE go-syslog: a backslash before another char stays literal (RFC 5424 6.3.3) */
    {.in = "<29>8 2016-01-15T01:00:43Z hn S - - [meta escape=\"\\n\" u=\"\\u2318\"] x",
     .format = F_5424, .pri = 29, .version = 8, .ts = "2016-01-15T01:00:43Z", .host = "hn",
     .app = "S", .sd = "[meta escape=\\n u=\\u2318]", .msg = "x"},
    {.in = "<1>1 - - - - - [id pk=\"\"][empty]", .format = F_5424, .pri = 1, .version = 1,
     .sd = "[id pk=][empty]"},
    /* elements must touch: after a SP, "[b]" is MSG */
    {.in = "<1>1 - - - - - [a x=\"1\"] [b]", .format = F_5424, .pri = 1, .version = 1,
     .sd = "[a x=1]", .msg = "[b]"},
    /* F5: MSGID with ':'; Juniper: APP-NAME with ':' */
    {.in = "<131>1 2025-05-09T09:56:18.906539+02:00 H appname 1234 01230456:1: - m",
     .format = F_5424, .pri = 131, .version = 1, .ts = "2025-05-09T09:56:18.906539+02:00",
     .host = "H", .app = "appname", .procid = "1234", .msgid = "01230456:1:", .msg = "m"},
    {.in = "<34>1 2003-10-11T22:14:15.003Z ::FFFF:129.144.52.38 OX-CONTEUDO:rpd - ID47 - b",
     .format = F_5424, .pri = 34, .version = 1, .ts = "2003-10-11T22:14:15.003Z",
     .host = "::FFFF:129.144.52.38", .app = "OX-CONTEUDO:rpd", .msgid = "ID47", .msg = "b"},
    /* BOM stripped and flagged; MSG may hold LF */
    {.in = "<1>1 - - - - - - \xef\xbb\xbf\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
     .format = F_5424, .pri = 1, .version = 1, .flags = SYSLOG_F_BOM,
     .msg = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"},
    /* a BOM alone: an empty MSG, not an absent one */
    {.in = "<1>8 - - - - - - \xef\xbb\xbf", .format = F_5424, .pri = 1, .version = 8,
     .msg = "", .flags = SYSLOG_F_BOM},
    {.in = "<1>1 - - - - - - x\ny", .format = F_5424, .pri = 1, .version = 1, .msg = "x\ny"},
    /* without a BOM MSG is any octets */
    {.in = "<1>1 - - - - - - fond\xfc", .format = F_5424, .pri = 1, .version = 1,
     .msg = "fond\xfc"},
    /* TCP/file framing residue around the frame */
    {.in = "\n   <13>1 2019-02-13T19:48:34+00:00 h root 8449 - [meta sequenceId=\"1\"] i am\n  ",
     .format = F_5424, .pri = 13, .version = 1, .ts = "2019-02-13T19:48:34+00:00", .host = "h",
     .app = "root", .procid = "8449", .sd = "[meta sequenceId=1]", .msg = "i am"},
    /* payload rule: a valid header, then LEEF as MSG */
    {.in = "<14>1 2026-10-02T09:22:00Z dtex-intercept - - - - LEEF:2.0|Dtex|InTERCEPT|6.3|A|^|",
     .format = F_5424, .pri = 14, .version = 1, .ts = "2026-10-02T09:22:00Z",
     .host = "dtex-intercept", .msg = "LEEF:2.0|Dtex|InTERCEPT|6.3|A|^|"},
    /* IBM's 5424-ish header cut short by the payload: good fields, not RFC 5424 */
    {.in = "<13>1 2019-01-18T11:07:53.520Z 192.168.1.1 LEEF:2.0|IBM|QRadar|7.5|E|x5E|a=b",
     .format = F_3164, .pri = 13, .version = 1, .ts = "2019-01-18T11:07:53.520Z",
     .host = "192.168.1.1", .msg = "LEEF:2.0|IBM|QRadar|7.5|E|x5E|a=b"},
    {.in = "<134>1 2026-10-02T09:40:01Z fw01 asa - CEF:0|Cisco|ASA|9.18|1|D|5|", .format = F_3164,
     .pri = 134, .version = 1, .ts = "2026-10-02T09:40:01Z", .host = "fw01", .app = "asa",
     .msg = "CEF:0|Cisco|ASA|9.18|1|D|5|"},
    /* syslog-loose: RFC 5424 without PRI */
    {.in = "1 2020-05-22T14:59:09.250-03:00 OX-MX204 OX-CONTEUDO:rpd 6589 - - bgp_listen",
     .format = F_3164, .pri = -1, .version = 1, .ts = "2020-05-22T14:59:09.250-03:00",
     .host = "OX-MX204", .app = "OX-CONTEUDO:rpd", .procid = "6589", .msg = "bgp_listen"},

    /* Claimed RFC 5424, then broken: PRI kept, everything else in MSG, error set */
    {.in = "<165>3 2003-10-11T22:14:15.003Z example.com evnts - ID27 [id1][id1]", .format = F_NONE,
     .pri = 165, .msg = "<165>3 2003-10-11T22:14:15.003Z example.com evnts - ID27 [id1][id1]",
     .error = "rfc5424: duplicate SD-ID"},
    {.in = "<101>12 2018-02-29T22:14:16+01:00", .format = F_NONE, .pri = 101,
     .msg = "<101>12 2018-02-29T22:14:16+01:00", .error = "rfc5424: invalid TIMESTAMP"},
    {.in = "<101>11 2003-09-31T22:14:15.003Z - - - - -", .format = F_NONE, .pri = 101,
     .msg = "<101>11 2003-09-31T22:14:15.003Z - - - - -", .error = "rfc5424: invalid TIMESTAMP"},
    {.in = "<29>1 2006-01-02T15:04:05Z+07:00 - - - - -", .format = F_NONE, .pri = 29,
     .msg = "<29>1 2006-01-02T15:04:05Z+07:00 - - - - -", .error = "rfc5424: invalid TIMESTAMP"},
    {.in = "<29>1 2006-01-02t15:04:05Z - - - - -", .format = F_NONE, .pri = 29,
     .msg = "<29>1 2006-01-02t15:04:05Z - - - - -", .error = "rfc5424: invalid TIMESTAMP"},
    {.in = "<101>127 2003-09-29T22:09:01.0000001Z - - - - -", .format = F_NONE, .pri = 101,
     .msg = "<101>127 2003-09-29T22:09:01.0000001Z - - - - -",
     .error = "rfc5424: invalid TIMESTAMP"},
    {.in = "<101>130 2003-08-24T05:14:15.000003-24:00 - - - - -", .format = F_NONE, .pri = 101,
     .msg = "<101>130 2003-08-24T05:14:15.000003-24:00 - - - - -",
     .error = "rfc5424: invalid TIMESTAMP"},
    {.in = "<1>1 -   - - - -", .format = F_NONE, .pri = 1, .msg = "<1>1 -   - - - -",
     .error = "rfc5424: invalid HOSTNAME"},
    {.in = "<1>1 - host\nname - - - -", .format = F_NONE, .pri = 1,
     .msg = "<1>1 - host\nname - - - -", .error = "rfc5424: invalid HOSTNAME"},
    {.in = "<1>1 - - - - - X", .format = F_NONE, .pri = 1, .msg = "<1>1 - - - - - X",
     .error = "rfc5424: invalid STRUCTURED-DATA"},
    {.in = "<1>1 - - - - - [ ]", .format = F_NONE, .pri = 1, .msg = "<1>1 - - - - - [ ]",
     .error = "rfc5424: invalid SD-ID"},
    {.in = "<1>1 - - - - - [id ]", .format = F_NONE, .pri = 1, .msg = "<1>1 - - - - - [id ]",
     .error = "rfc5424: invalid SD-PARAM"},
    {.in = "<1>1 - - - - - [id]x", .format = F_NONE, .pri = 1, .msg = "<1>1 - - - - - [id]x",
     .error = "rfc5424: no SP between STRUCTURED-DATA and MSG"},
    /* DISAGREE syslog-loose: broken SD is not dropped, the message loses its header */
    {.in = "<13>1 - h root 8449 - [incorrect x] qwerty", .format = F_NONE, .pri = 13,
     .msg = "<13>1 - h root 8449 - [incorrect x] qwerty", .error = "rfc5424: invalid SD-PARAM"},
    {.in = "<29>3 - hn S - - [meta escape=\"]\"] GET", .format = F_NONE, .pri = 29,
     .msg = "<29>3 - hn S - - [meta escape=\"]\"] GET",
     .error = "rfc5424: unescaped ']' or unterminated SD-PARAM value"},
    {.in = "<29>5 - hn S - - [meta escape=\"a\\\"] GET", .format = F_NONE, .pri = 29,
     .msg = "<29>5 - hn S - - [meta escape=\"a\\\"] GET",
     .error = "rfc5424: unescaped ']' or unterminated SD-PARAM value"},
    {.in = "<1>1 - - - - - - \xef\xbb\xbf\xc0\xaf", .format = F_NONE, .pri = 1,
     .msg = "<1>1 - - - - - - \xef\xbb\xbf\xc0\xaf",
     .error = "rfc5424: MSG starts with a BOM but is not UTF-8"},
    {.in = "<1>1 - - - - - - \xef\xbb\xbf\xed\xa0\x80", .format = F_NONE, .pri = 1,
     .msg = "<1>1 - - - - - - \xef\xbb\xbf\xed\xa0\x80",
     .error = "rfc5424: MSG starts with a BOM but is not UTF-8"},
    {.in = "<1>2 hello world", .format = F_NONE, .pri = 1, .msg = "<1>2 hello world",
     .error = "rfc5424: invalid TIMESTAMP"},

    /* Not a valid PRI */
    {.in = "<002>122 2018-11-22", .format = F_NONE, .pri = -1, .msg = "<002>122 2018-11-22",
     .error = "syslog: invalid PRI"},
    {.in = "<192>1 - - - - - -", .format = F_NONE, .pri = -1, .msg = "<192>1 - - - - - -",
     .error = "syslog: invalid PRI"},
    {.in = "<aaa>122 2018-11-22", .format = F_NONE, .pri = -1, .msg = "<aaa>122 2018-11-22"},
    /* Not RFC 5424 (no SP after VERSION, 4 digits): PRI and MSG only */
    {.in = "<1>1", .format = F_3164, .pri = 1, .msg = "1"},
    {.in = "<101>1000 2018-11-22", .format = F_3164, .pri = 101, .msg = "1000 2018-11-22"},
    /* no PRI, "VERSION SP" and a broken rest: no header, and no error (nothing was claimed) */
    {.in = "122 - - - - - -", .format = F_3164, .pri = -1, .version = 122},
    {.in = "3 apples", .format = F_NONE, .pri = -1, .msg = "3 apples"},

    /* RFC 3164 */
    {.in = "<34>Oct 11 22:14:15 mymachine su: 'su root' failed", .format = F_3164, .pri = 34,
     .ts = "Oct 11 22:14:15", .host = "mymachine", .app = "su", .msg = "'su root' failed"},
    {.in = "<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!", .format = F_3164, .pri = 13,
     .ts = "Feb  5 17:32:18", .host = "10.0.0.99", .msg = "Use the BFG!"},
    {.in = "<85>Jan 24 15:50:41 ip-172-31-30-110 sudo[6040]: ec2-user : TTY=pts/0",
     .format = F_3164, .pri = 85, .ts = "Jan 24 15:50:41", .host = "ip-172-31-30-110",
     .app = "sudo", .procid = "6040", .msg = "ec2-user : TTY=pts/0"},
    {.in = "<133>Jan 13 16:33:35 haproxy[73411]: Proxy sticky-servers started.", .format = F_3164,
     .pri = 133, .ts = "Jan 13 16:33:35", .app = "haproxy", .procid = "73411",
     .msg = "Proxy sticky-servers started."},
    {.in = "<14>Oct 02 09:21:22 zscaler-nss: a=b", .format = F_3164, .pri = 14,
     .ts = "Oct 02 09:21:22", .app = "zscaler-nss", .msg = "a=b"},
    /* the ambiguity: a first token ending in ':' is the TAG (DISAGREE beats: hostname) */
    {.in = "<123>Sep 01 02:03:04 hostname: message", .format = F_3164, .pri = 123,
     .ts = "Sep 01 02:03:04", .app = "hostname", .msg = "message"},
    {.in = "<14>Oct 02 09:21:22 dtex-intercept CEF:0|Dtex|InTERCEPT|6.3|D|R|5|start=1",
     .format = F_3164, .pri = 14, .ts = "Oct 02 09:21:22", .host = "dtex-intercept",
     .msg = "CEF:0|Dtex|InTERCEPT|6.3|D|R|5|start=1"},
    {.in = "<13>Oct  2 09:31:02 qradar-con LEEF:1.0|IBM|QRadar|7.5.0|O|a=b", .format = F_3164,
     .pri = 13, .ts = "Oct  2 09:31:02", .host = "qradar-con",
     .msg = "LEEF:1.0|IBM|QRadar|7.5.0|O|a=b"},
    {.in = "<13>Oct  2 09:31:02 CEF:0|V|P|1|2|N|3|", .format = F_3164, .pri = 13,
     .ts = "Oct  2 09:31:02", .msg = "CEF:0|V|P|1|2|N|3|"},
    {.in = "<13>Oct  2 09:31:02 h guard_sender[4486]: LEEF:1.0|V|P|1|E|", .format = F_3164,
     .pri = 13, .ts = "Oct  2 09:31:02", .host = "h", .app = "guard_sender", .procid = "4486",
     .msg = "LEEF:1.0|V|P|1|E|"},
    {.in = "<14>CEF:0|V|P|1|2|N|3|", .format = F_3164, .pri = 14, .msg = "CEF:0|V|P|1|2|N|3|"},
    /* "name:" right before the payload is a TAG, as "name[pid]:" is */
    {.in = "<13>Oct  2 09:40:00 host app:CEF:0|V|P|1|1|N|5|a=b", .format = F_3164, .pri = 13,
     .ts = "Oct  2 09:40:00", .host = "host", .app = "app", .msg = "CEF:0|V|P|1|1|N|5|a=b"},
    {.in = "<13>Oct  2 09:40:00 host app[12]:CEF:0|V|P|1|1|N|5|a=b", .format = F_3164,
     .pri = 13, .ts = "Oct  2 09:40:00", .host = "host", .app = "app", .procid = "12",
     .msg = "CEF:0|V|P|1|1|N|5|a=b"},
    {.in = "<13>Oct  2 09:40:00 app:LEEF:1.0|V|P|1|E|a=b", .format = F_3164, .pri = 13,
     .ts = "Oct  2 09:40:00", .app = "app", .msg = "LEEF:1.0|V|P|1|E|a=b"},
    {.in = "<13>Oct  2 09:40:00 host app:CEF:x", .format = F_3164, .pri = 13,
     .ts = "Oct  2 09:40:00", .host = "host", .msg = "app:CEF:x"},
    /* a payload token needs a version digit: "CEF:"/"LEEF:" alone are words */
    {.in = "<13>1 2026-10-02T09:40:01Z h CEF: - - - text", .format = F_5424, .pri = 13,
     .version = 1, .ts = "2026-10-02T09:40:01Z", .host = "h", .app = "CEF:", .msg = "text"},
    {.in = "<13>Oct  2 09:40:00 host LEEF: disabled", .format = F_3164, .pri = 13,
     .ts = "Oct  2 09:40:00", .host = "host", .app = "LEEF", .msg = "disabled"},
    {.in = "<13>Oct  2 09:40:00 host app: config key LEEF: disabled", .format = F_3164,
     .pri = 13, .ts = "Oct  2 09:40:00", .host = "host", .app = "app",
     .msg = "config key LEEF: disabled"},
    /* "EVID:1000541" is not a TAG (no SP after ':', no [pid]) */
    {.in = "<13>Oct 02 09:14:10 LR-DP01 EVID:1000541 AIE: USB", .format = F_3164, .pri = 13,
     .ts = "Oct 02 09:14:10", .host = "LR-DP01", .msg = "EVID:1000541 AIE: USB"},
    {.in = "<13>Oct  2 09:13:05 splunk-hf01 search_name=\"Web - x\" urgency=critical",
     .format = F_3164, .pri = 13, .ts = "Oct  2 09:13:05", .host = "splunk-hf01",
     .msg = "search_name=\"Web - x\" urgency=critical"},
    /* Cisco IOS: sequence number, '*', milliseconds, trailing ':' */
    {.in = "<190>589265: Feb 8 18:55:31.306: %SEC-11-IPACCESSLOGP: list 177 denied",
     .format = F_3164, .pri = 190, .ts = "Feb 8 18:55:31.306", .app = "%SEC-11-IPACCESSLOGP",
     .msg = "list 177 denied"},
    {.in = "<0>91: *Oct 07 03:10:04: mydevice.com %CRYPTO-4-RECVD_PKT_INV_SPI: x", .format = F_3164,
     .pri = 0, .ts = "Oct 07 03:10:04", .host = "mydevice.com",
     .app = "%CRYPTO-4-RECVD_PKT_INV_SPI", .msg = "x"},
    /* Cisco ASA: year; space before the colon */
    {.in = "<190>Apr 15 2007 21:28:13: %PIX-6-302014: Teardown TCP", .format = F_3164, .pri = 190,
     .ts = "Apr 15 2007 21:28:13", .app = "%PIX-6-302014", .msg = "Teardown TCP"},
    {.in = "<164>Aug 08 16:58:18 DEVICE123 : %FTD-4-106023: test", .format = F_3164, .pri = 164,
     .ts = "Aug 08 16:58:18", .host = "DEVICE123", .app = "%FTD-4-106023", .msg = "test"},
    /* IPv6 hostnames end in or hold ':' */
    {.in = "<13>Feb 25 17:32:18 1:: Use the Force!", .format = F_3164, .pri = 13,
     .ts = "Feb 25 17:32:18", .host = "1::", .msg = "Use the Force!"},
    {.in = "<13>Feb 25 17:32:18 2607:f0d0:1002:51::4 sshd[1]: x", .format = F_3164, .pri = 13,
     .ts = "Feb 25 17:32:18", .host = "2607:f0d0:1002:51::4", .app = "sshd", .procid = "1",
     .msg = "x"},
    /* ISO timestamps in 3164 headers */
    {.in = "<13>2018-06-19T02:13:38.635322Z+0000 super mon message", .format = F_3164, .pri = 13,
     .ts = "2018-06-19T02:13:38.635322Z+0000", .host = "super", .msg = "mon message"},
    {.in = "<13>2016-05-08 10:31:24-0700 h t: x", .format = F_3164, .pri = 13,
     .ts = "2016-05-08 10:31:24-0700", .host = "h", .app = "t", .msg = "x"},
    {.in = "<13>2016-05-08T10:31:24.123456789-07 h t: x", .format = F_3164, .pri = 13,
     .ts = "2016-05-08T10:31:24.123456789-07", .host = "h", .app = "t", .msg = "x"},
    {.in = "2016-05-08T10:31:24 localhost prg00000[1234]: m", .format = F_3164, .pri = -1,
     .ts = "2016-05-08T10:31:24", .host = "localhost", .app = "prg00000", .procid = "1234",
     .msg = "m"},
    {.in = "<190>2019-02-13T21:53:30.605850+00:00 h liblogging-stdlog:  [origin "
           "software=\"rsyslogd\" x-info=\"http://www.rsyslog.com\"] start", .format = F_3164,
     .pri = 190, .ts = "2019-02-13T21:53:30.605850+00:00", .host = "h", .app = "liblogging-stdlog",
     .sd = "[origin software=rsyslogd x-info=http://www.rsyslog.com]", .msg = "start"},
    /* "[...]" content that is not SD: no params, no SP after it, no SD-ID */
    {.in = "<4>Jan 26 05:59:54 ubnt kernel: [WAN_LOCAL-default-D]IN=eth0 OUT=", .format = F_3164,
     .pri = 4, .ts = "Jan 26 05:59:54", .host = "ubnt", .app = "kernel",
     .msg = "[WAN_LOCAL-default-D]IN=eth0 OUT="},
    {.in = "<4>Jan 26 05:59:54 h kernel: [12345.678] usb 1-1: new device", .format = F_3164,
     .pri = 4, .ts = "Jan 26 05:59:54", .host = "h", .app = "kernel",
     .msg = "[12345.678] usb 1-1: new device"},
    {.in = "<46>Jan  5 15:33:03 h  [software=\"rsyslogd\"] start", .format = F_3164, .pri = 46,
     .ts = "Jan  5 15:33:03", .host = "h", .msg = "[software=\"rsyslogd\"] start"},
    /* TAG forms */
    {.in = "<13>Feb 13 20:07:26 74794bfb6795 root[8539]:syslog message", .format = F_3164,
     .pri = 13, .ts = "Feb 13 20:07:26", .host = "74794bfb6795", .app = "root", .procid = "8539",
     .msg = "syslog message"},
    {.in = "<22>Jun  1 10:00:00 mx postfix/smtpd[2000]: connect from x", .format = F_3164,
     .pri = 22, .ts = "Jun  1 10:00:00", .host = "mx", .app = "postfix/smtpd", .procid = "2000",
     .msg = "connect from x"},
    {.in = "<13>Jun  1 10:00:00 h sshd[12] no colon", .format = F_3164, .pri = 13,
     .ts = "Jun  1 10:00:00", .host = "h", .app = "sshd", .procid = "12", .msg = "no colon"},
    {.in = "<13>Jun  1 10:00:00 h app:", .format = F_3164, .pri = 13, .ts = "Jun  1 10:00:00",
     .host = "h", .app = "app"},
    /* TAG name and pid at their limits (64, 128) and one past: then no TAG */
    {.in = "<13>Jun  1 10:00:00 h " T64 "[" P128 "]: x", .format = F_3164, .pri = 13,
     .ts = "Jun  1 10:00:00", .host = "h", .app = T64, .procid = P128, .msg = "x"},
    {.in = "<13>Jun  1 10:00:00 h " T64 "t: x", .format = F_3164, .pri = 13,
     .ts = "Jun  1 10:00:00", .host = "h", .msg = T64 "t: x"},
    {.in = "<13>Jun  1 10:00:00 h a[" P128 "1]: x", .format = F_3164, .pri = 13,
     .ts = "Jun  1 10:00:00", .host = "h", .msg = "a[" P128 "1]: x"},
    /* DISAGREE syslog-loose: a second word without ':' or '[' is MSG, not a TAG (go-syslog) */
    {.in = "<46>Jan 5 10:01:00 \xc3\x9c"
           "bergr\xc3\xb6\xc3\x9f"
           "e au\xc3\x9f"
           "er gr", .format = F_3164, .pri = 46, .ts = "Jan 5 10:01:00",
     .host = "\xc3\x9c"
           "bergr\xc3\xb6\xc3\x9f"
           "e",
     .msg = "au\xc3\x9f"
           "er gr"},
    /* timestamp variants: upper-case month, space after PRI, no PRI */
    {.in = "<13>NOV 22 10:00:00 h a: x", .format = F_3164, .pri = 13, .ts = "NOV 22 10:00:00",
     .host = "h", .app = "a", .msg = "x"},
    {.in = "<13> Aug 16 10:00:00 h a: x", .format = F_3164, .pri = 13, .ts = "Aug 16 10:00:00",
     .host = "h", .app = "a", .msg = "x"},
    {.in = "<34>Aug  7 06:30:00.57643 xxx aaa: m", .format = F_3164, .pri = 34,
     .ts = "Aug  7 06:30:00.57643", .host = "xxx", .app = "aaa", .msg = "m"},
    {.in = "Oct 11 22:14:15 h a: x", .format = F_3164, .pri = -1, .ts = "Oct 11 22:14:15",
     .host = "h", .app = "a", .msg = "x"},
    {.in = "<13>Oct 11 22:14:15", .format = F_3164, .pri = 13, .ts = "Oct 11 22:14:15"},
    /* a timestamp glued to more text is no timestamp (found by fuzzing) */
    {.in = "<13>2003-10-11T22:14:15.003Z] x", .format = F_3164, .pri = 13,
     .msg = "2003-10-11T22:14:15.003Z] x"},
    {.in = "2003-10-11T22:14:15.003Z]", .format = F_NONE, .pri = -1,
     .msg = "2003-10-11T22:14:15.003Z]"},
    /* Feb 29: DISAGREE syslog-loose without a year (we have no clock); checked with one */
    {.in = "<134> Feb 29 14:07:19 myhostname sshd - - - msg", .format = F_3164, .pri = 134,
     .ts = "Feb 29 14:07:19", .host = "myhostname", .msg = "sshd - - - msg"},
    {.in = "<134>Feb 29 2016 14:07:19 h a: x", .format = F_3164, .pri = 134,
     .ts = "Feb 29 2016 14:07:19", .host = "h", .app = "a", .msg = "x"},
    {.in = "<134>Feb 29 2015 14:07:19 h a: x", .format = F_3164, .pri = 134,
     .msg = "Feb 29 2015 14:07:19 h a: x"},
    {.in = "<134>Feb 30 14:07:19 h a: x", .format = F_3164, .pri = 134,
     .msg = "Feb 30 14:07:19 h a: x"},
    {.in = "<134>Feb 10 24:07:19 h a: x", .format = F_3164, .pri = 134,
     .msg = "Feb 10 24:07:19 h a: x"},
    /* full month names (beats), in any case as abbreviations */
    {.in = "<34>January 1 22:14:15 mymachine postfix/smtpd[2000]: x", .format = F_3164,
     .pri = 34, .ts = "January 1 22:14:15", .host = "mymachine", .app = "postfix/smtpd",
     .procid = "2000", .msg = "x"},
    {.in = "<34>September 30 2016 22:14:15.5 h a: x", .format = F_3164, .pri = 34,
     .ts = "September 30 2016 22:14:15.5", .host = "h", .app = "a", .msg = "x"},
    {.in = "<34>FEBRUARY 29 22:14:15 h a: x", .format = F_3164, .pri = 34,
     .ts = "FEBRUARY 29 22:14:15", .host = "h", .app = "a", .msg = "x"},
    {.in = "<34>May 1 22:14:15 h a: x", .format = F_3164, .pri = 34, .ts = "May 1 22:14:15",
     .host = "h", .app = "a", .msg = "x"},
    {.in = "March 12 22:14:15 h a: x", .format = F_3164, .pri = -1, .ts = "March 12 22:14:15",
     .host = "h", .app = "a", .msg = "x"},
    /* neither name: part of one, more than one, or a name glued to the day */
    {.in = "<34>Janu 1 22:14:15 h a: x", .format = F_3164, .pri = 34,
     .msg = "Janu 1 22:14:15 h a: x"},
    {.in = "<34>Januaryy 1 22:14:15 h a: x", .format = F_3164, .pri = 34,
     .msg = "Januaryy 1 22:14:15 h a: x"},
    {.in = "<34>Mayday 1 22:14:15 h a: x", .format = F_3164, .pri = 34,
     .msg = "Mayday 1 22:14:15 h a: x"},
    {.in = "<34>December1 22:14:15 h a: x", .format = F_3164, .pri = 34,
     .msg = "December1 22:14:15 h a: x"},
    {.in = "<34>November 31 22:14:15 h a: x", .format = F_3164, .pri = 34,
     .msg = "November 31 22:14:15 h a: x"},
    {.in = "<34>October 1 22:14", .format = F_3164, .pri = 34, .msg = "October 1 22:14"},
    /* PRI and nothing that looks like a header (rsyslog #5098) */
    {.in = "<38>User logged into the system", .format = F_3164, .pri = 38,
     .msg = "User logged into the system"},
    /* PRI then a TAG and no timestamp: the program, as syslog-ng and rsyslog read it */
    {.in = "<15> openvpn[2499]: msg", .format = F_3164, .pri = 15, .app = "openvpn",
     .procid = "2499", .msg = "msg"},
    {.in = "<15>openvpn[2499] msg", .format = F_3164, .pri = 15, .app = "openvpn",
     .procid = "2499", .msg = "msg"},
    {.in = "<15>kernel: [12345.678] usb 1-1: new device", .format = F_3164, .pri = 15,
     .app = "kernel", .msg = "[12345.678] usb 1-1: new device"},
    {.in = "<46>rsyslogd: [origin software=\"rsyslogd\"] start", .format = F_3164, .pri = 46,
     .app = "rsyslogd", .sd = "[origin software=rsyslogd]", .msg = "start"},
    {.in = "<15>openvpn[2499]:", .format = F_3164, .pri = 15, .app = "openvpn",
     .procid = "2499"},
    /* no TAG form: MSG; a payload is never a TAG */
    {.in = "<15>key=value: x", .format = F_3164, .pri = 15, .msg = "key=value: x"},
    {.in = "<15>EVID:1000541 AIE: x", .format = F_3164, .pri = 15, .msg = "EVID:1000541 AIE: x"},
    {.in = "<15>CEF:0|V|P|1|1|N|5|a=b", .format = F_3164, .pri = 15,
     .msg = "CEF:0|V|P|1|1|N|5|a=b"},
    {.in = "<15>2001:db8::1: x", .format = F_3164, .pri = 15, .msg = "2001:db8::1: x"},
    {BIN("<13>Oct 11 22:14:15 h app: a\0b\0"), .format = F_3164, .pri = 13, .ts = "Oct 11 22:14:15",
     .host = "h", .app = "app", BINMSG("a\0b\0")},

    /* no header */
    {.in = "", .format = F_NONE, .pri = -1},
    {.in = " \r\n", .format = F_NONE, .pri = -1},
    {.in = "complete and utter gobbledegook", .format = F_NONE, .pri = -1,
     .msg = "complete and utter gobbledegook"},
    {.in = "--- last message repeated 1 time ---", .format = F_NONE, .pri = -1,
     .msg = "--- last message repeated 1 time ---"},
    {.in = "CEF:0|V|P|1|2|N|3|a=b", .format = F_NONE, .pri = -1, .msg = "CEF:0|V|P|1|2|N|3|a=b"},
};
/* clang-format on */

/* Renders the SD of m as "[id k=v k=v][id]" into buf. */
static const char *render_sd(const struct syslog_msg *m, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < m->n_sd; i++) {
        const struct syslog_sd_element *e = &m->sd[i];
        n += (size_t)snprintf(buf + n, cap - n, "[%.*s", (int)e->id.len, e->id.p);
        for (size_t k = e->first_param; k < e->first_param + e->n_params && n < cap; k++) {
            const struct syslog_sd_param *sp = &m->sd_params[k];
            n += (size_t)snprintf(buf + n, cap - n, " %.*s=%.*s", (int)sp->name.len, sp->name.p,
                                  (int)sp->value.len, sp->value.p);
        }
        if (n < cap)
            n += (size_t)snprintf(buf + n, cap - n, "]");
        if (n >= cap)
            break;
    }
    return buf;
}

/* Every slice lies in the input or the used part of the scratch buffer. */
static int slice_ok(struct str s, const char *in, size_t len, const struct scratch *sc)
{
    if (s.p == NULL)
        return 1;
    return (s.p >= in && s.p + s.len <= in + len) ||
           (s.p >= sc->buf && s.p + s.len <= sc->buf + sc->used);
}

static int slices_ok(const struct syslog_msg *m, const char *in, size_t len,
                     const struct scratch *sc)
{
    int ok = slice_ok(m->timestamp, in, len, sc) && slice_ok(m->hostname, in, len, sc) &&
             slice_ok(m->app, in, len, sc) && slice_ok(m->procid, in, len, sc) &&
             slice_ok(m->msgid, in, len, sc) && slice_ok(m->msg, in, len, sc);
    for (size_t i = 0; i < m->n_sd; i++)
        ok = ok && slice_ok(m->sd[i].id, in, len, sc);
    for (size_t i = 0; i < m->n_sd_params; i++)
        ok = ok && slice_ok(m->sd_params[i].name, in, len, sc) &&
             slice_ok(m->sd_params[i].value, in, len, sc);
    return ok;
}

/* A string compare that also covers absent and NUL bytes (CHECK_STR stops at a NUL). */
static void check_field(const char *ctx, const char *what, struct str got, const char *want,
                        size_t want_len)
{
    if (want == NULL ? got.p == NULL
                     : (got.p != NULL && got.len == want_len && memcmp(got.p, want, want_len) == 0))
        unit_passed++;
    else
        UNIT_FAIL("%s: %s: got '%.*s'%s, want '%s'", ctx, what, got.p ? (int)got.len : 0,
                  got.p ? got.p : "", got.p ? "" : " (absent)", want ? want : "(absent)");
}

static void check_int(const char *ctx, const char *what, long got, long want)
{
    if (got == want)
        unit_passed++;
    else
        UNIT_FAIL("%s: %s: got %ld, want %ld", ctx, what, got, want);
}

/* The kind every error row implies, from its text: the one place a prefix is read. */
static enum err_kind expected_kind(const char *error)
{
    if (error == NULL)
        return ERR_KIND_NONE;
    if (strncmp(error, "syslog:", 7) == 0)
        return ERR_KIND_SYSLOG;
    return strncmp(error, "rfc5424:", 8) == 0 ? ERR_KIND_RFC5424 : (enum err_kind) - 1;
}

static void test_rows(void)
{
    static char sbuf[4096];
    char sd[1024];

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        size_t len = r->len ? r->len : strlen(r->in);
        char *in = malloc(len ? len : 1); /* exactly len bytes: the sanitizer sees over-reads */
        struct scratch sc;
        struct syslog_msg m;
        char ctx[64];

        memcpy(in, r->in, len);
        snprintf(ctx, sizeof(ctx), "row %zu '%.30s'", i, r->in);
        scratch_init(&sc, sbuf, sizeof(sbuf));
        int rc = syslog_parse(in, len, &m, &sc);

        check_int(ctx, "format", (long)m.format, (long)r->format);
        check_int(ctx, "pri", m.pri, r->pri);
        check_int(ctx, "version", m.version, r->version);
        CHECK_STR(ctx, m.timestamp, r->ts);
        CHECK_STR(ctx, m.hostname, r->host);
        CHECK_STR(ctx, m.app, r->app);
        CHECK_STR(ctx, m.procid, r->procid);
        CHECK_STR(ctx, m.msgid, r->msgid);
        check_field(ctx, "msg", m.msg, r->msg,
                    r->msg_len ? r->msg_len
                    : r->msg   ? strlen(r->msg)
                               : 0);
        if (strcmp(render_sd(&m, sd, sizeof(sd)), r->sd ? r->sd : "") == 0)
            unit_passed++;
        else
            UNIT_FAIL("%s: sd: got '%s', want '%s'", ctx, sd, r->sd ? r->sd : "");
        check_int(ctx, "flags", (long)m.flags, (long)r->flags);
        if (r->error == NULL ? m.error == NULL : (m.error && strcmp(m.error, r->error) == 0))
            unit_passed++;
        else
            UNIT_FAIL("%s: error: got '%s', want '%s'", ctx, m.error ? m.error : "(none)",
                      r->error ? r->error : "(none)");
        check_int(ctx, "return", rc, r->error ? ERR_INVALID : 0);
        check_int(ctx, "error_kind", (long)m.error_kind, (long)expected_kind(r->error));
        if (!slices_ok(&m, in, len, &sc))
            UNIT_FAIL("%s: a slice lies outside the input and the scratch buffer", ctx);
        free(in);
    }
}

/* Each RFC 5424 length limit, at the limit and one past it. */
static void test_field_limits(void)
{
    static const struct {
        const char *fmt; /* %s is the field */
        size_t max;
        const char *error;
    } limits[] = {
        {"<1>1 - %s - - - -", 255, "rfc5424: invalid HOSTNAME"},
        {"<1>1 - - %s - - -", 48, "rfc5424: invalid APP-NAME"},
        {"<1>1 - - - %s - -", 128, "rfc5424: invalid PROCID"},
        {"<1>1 - - - - %s -", 32, "rfc5424: invalid MSGID"},
        {"<1>1 - - - - - [%s]", 32, "rfc5424: invalid SD-ID"},
        {"<1>1 - - - - - [id %s=\"v\"]", 32, "rfc5424: invalid SD-PARAM"},
    };
    char field[300], in[400], sbuf[400];

    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        for (size_t n = limits[i].max; n <= limits[i].max + 1; n++) {
            struct syslog_msg m;
            struct scratch sc;
            char ctx[64];
            memset(field, 'a', n);
            field[n] = '\0';
            int len = snprintf(in, sizeof(in), limits[i].fmt, field);
            snprintf(ctx, sizeof(ctx), "limit %zu len %zu", i, n);
            scratch_init(&sc, sbuf, sizeof(sbuf));
            int rc = syslog_parse(in, (size_t)len, &m, &sc);
            int over = n > limits[i].max;
            check_int(ctx, "format", (long)m.format, over ? SYSLOG_NONE : SYSLOG_RFC5424);
            check_int(ctx, "return", rc, over ? ERR_INVALID : 0);
            if (over ? (m.error && strcmp(m.error, limits[i].error) == 0) : m.error == NULL)
                unit_passed++;
            else
                UNIT_FAIL("%s: error '%s'", ctx, m.error ? m.error : "(none)");
        }
    }
}

/* More SD than the fixed tables hold: valid RFC 5424, kept as such, the extra dropped and
 * reported. */
static void test_sd_overflow(void)
{
    static char in[8192], sbuf[8192];
    struct syslog_msg m;
    struct scratch sc;
    size_t n = (size_t)snprintf(in, sizeof(in), "<1>1 - - - - - ");

    for (int i = 0; i < SYSLOG_MAX_SD_ELEMENTS + 1; i++)
        n += (size_t)snprintf(in + n, sizeof(in) - n, "[e%d a=\"%d\"]", i, i);
    n += (size_t)snprintf(in + n, sizeof(in) - n, "[e0] tail");
    scratch_init(&sc, sbuf, sizeof(sbuf));
    /* an id repeated after the table is full is still caught */
    CHECK_INT(syslog_parse(in, n, &m, &sc), ERR_INVALID);
    CHECK_INT(m.format, SYSLOG_NONE);
    CHECK(m.error && strcmp(m.error, "rfc5424: duplicate SD-ID") == 0);

    n = (size_t)snprintf(in, sizeof(in), "<1>1 - - - - - ");
    for (int i = 0; i < SYSLOG_MAX_SD_ELEMENTS + 1; i++)
        n += (size_t)snprintf(in + n, sizeof(in) - n, "[e%d a=\"%d\"]", i, i);
    n += (size_t)snprintf(in + n, sizeof(in) - n, " tail");
    CHECK_INT(syslog_parse(in, n, &m, &sc), ERR_INVALID);
    CHECK_INT(m.format, SYSLOG_RFC5424);
    CHECK_INT(m.n_sd, SYSLOG_MAX_SD_ELEMENTS);
    CHECK_INT(m.n_sd_params, SYSLOG_MAX_SD_ELEMENTS);
    CHECK(m.error && strstr(m.error, "too many SD") != NULL);
    CHECK_STR("elements", m.msg, "tail");

    n = (size_t)snprintf(in, sizeof(in), "<1>1 - - - - - [a");
    for (int i = 0; i < SYSLOG_MAX_SD_PARAMS + 2; i++)
        n += (size_t)snprintf(in + n, sizeof(in) - n, " p%d=\"\\]\"", i);
    n += (size_t)snprintf(in + n, sizeof(in) - n, "][b c=\"d\"] tail");
    CHECK_INT(syslog_parse(in, n, &m, &sc), ERR_INVALID);
    CHECK_INT(m.format, SYSLOG_RFC5424);
    CHECK_INT(m.n_sd, 2);
    CHECK_INT(m.sd[0].n_params, SYSLOG_MAX_SD_PARAMS);
    CHECK_INT(m.sd[1].n_params, 0);
    CHECK_STR("params", m.sd_params[SYSLOG_MAX_SD_PARAMS - 1].value, "]");
    CHECK_STR("params", m.msg, "tail");
}

/* Escaped values go to scratch; without room they stay escaped and the message says so; a
 * broken message gives its scratch back. */
static void test_scratch(void)
{
    static const char in[] = "<1>1 - - - - - [a x=\"p\\]q\" y=\"plain\"] m";
    static const char broken[] = "<1>1 - - - - - [a x=\"p\\]q\"][a] m";
    static const char tagged[] = "<46>Jan  5 15:33:03 h rsyslogd: [origin s=\"2\\\"x\"] start";
    char sbuf[8];
    struct syslog_msg m;
    struct scratch sc;

    scratch_init(&sc, sbuf, sizeof(sbuf));
    CHECK_INT(syslog_parse(in, sizeof(in) - 1, &m, &sc), 0);
    CHECK_STR("scratch", m.sd_params[0].value, "p]q");
    CHECK(m.sd_params[0].value.p == sbuf);
    CHECK(m.sd_params[1].value.p > in && m.sd_params[1].value.p < in + sizeof(in));
    CHECK_INT(sc.used, 3);

    scratch_init(&sc, sbuf, 2);
    CHECK_INT(syslog_parse(in, sizeof(in) - 1, &m, &sc), ERR_INVALID);
    CHECK_INT(m.format, SYSLOG_RFC5424);
    CHECK_STR("small scratch", m.sd_params[0].value, "p\\]q");
    CHECK(m.error && strstr(m.error, "scratch") != NULL);

    CHECK_INT(syslog_parse(in, sizeof(in) - 1, &m, NULL), ERR_INVALID);
    CHECK_STR("no scratch", m.sd_params[0].value, "p\\]q");
    CHECK_STR("no scratch", m.msg, "m");

    scratch_init(&sc, sbuf, sizeof(sbuf));
    sc.used = 1;
    CHECK_INT(syslog_parse(broken, sizeof(broken) - 1, &m, &sc), ERR_INVALID);
    CHECK_INT(sc.used, 1);

    /* SD after a 3164 TAG reads the same without room (found by fuzzing) */
    scratch_init(&sc, sbuf, 2);
    CHECK_INT(syslog_parse(tagged, sizeof(tagged) - 1, &m, &sc), ERR_INVALID);
    CHECK_INT(m.format, SYSLOG_RFC3164);
    CHECK_INT(m.n_sd, 1);
    CHECK_STR("3164 small scratch", m.sd_params[0].value, "2\\\"x");
    CHECK_STR("3164 small scratch", m.msg, "start");
    CHECK(m.error && strstr(m.error, "scratch") != NULL);
}

/* The caller reuses one struct: nothing from the previous message may survive. */
static void test_reuse(void)
{
    static const char full[] = "<1>1 2003-10-11T22:14:15Z h a p m [x y=\"z\"] \xef\xbb\xbfmsg";
    static const char bare[] = "text";
    char sbuf[64];
    struct syslog_msg m;
    struct scratch sc;

    scratch_init(&sc, sbuf, sizeof(sbuf));
    CHECK_INT(syslog_parse(full, sizeof(full) - 1, &m, &sc), 0);
    CHECK_INT(m.flags, SYSLOG_F_BOM);
    CHECK_INT(syslog_parse(bare, sizeof(bare) - 1, &m, &sc), 0);
    CHECK_INT(m.format, SYSLOG_NONE);
    CHECK_INT(m.pri, -1);
    CHECK_INT(m.version, 0);
    CHECK_INT(m.flags, 0);
    CHECK_INT(m.n_sd, 0);
    CHECK_INT(m.n_sd_params, 0);
    CHECK(m.timestamp.p == NULL && m.hostname.p == NULL && m.app.p == NULL && m.procid.p == NULL &&
          m.msgid.p == NULL && m.error == NULL);
    CHECK_STR("reuse", m.msg, "text");
}

/* Pathological inputs: long runs that a backtracking parser would revisit. Each must finish
 * (linear work) and keep the whole text. */
static void test_pathological(void)
{
    static const char *const heads[] = {"<1>1 - - - - - ", "<13>Oct 11 22:14:15 h a: ", "<",
                                        "<13>Oct 11 22:14:15 ", "<1>1 - - - - - [a"};
    static const char fill[] = {'[', ':', '1', 'a', ' ', '\\', '"'};
    enum { N = 1 << 20 };
    char *in = malloc(N);
    struct syslog_msg m;

    for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
        for (size_t f = 0; f < sizeof(fill); f++) {
            size_t hl = strlen(heads[h]);
            memcpy(in, heads[h], hl);
            memset(in + hl, fill[f], N - hl);
            /* A quadratic scan of 1 MiB runs for minutes: a generous bound cannot flake. */
            clock_t t0 = clock();
            syslog_parse(in, N, &m, NULL);
            double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
            if (secs > 5.0)
                UNIT_FAIL("head '%s', fill '%c': %.1f s for 1 MiB", heads[h], fill[f], secs);
            else
                unit_passed++;
            CHECK(m.msg.p == NULL || (m.msg.p >= in && m.msg.p + m.msg.len <= in + N));
        }
    }
    free(in);
}

int main(void)
{
    test_rows();
    test_field_limits();
    test_sd_overflow();
    test_scratch();
    test_reuse();
    test_pathological();
    return unit_report("test_syslog");
}
