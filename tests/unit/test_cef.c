/* CEF parser: {input, expected header and extension} rows covering
 * spec/cef.md, the CEF items of spec/edge_cases.md, the conformance vectors'
 * tricky cases and every CEF line of ../shared/samples; then key lookups,
 * labels, the key table, limits and pathological input. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cef.h"
#include "cef_keys.h"
#include "errors.h"
#include "unit.h"

#define MAX_PAIRS 24

struct cef_case {
    const char *name;
    const char *in;    /* starts with "CEF:" or carries a prefix cef_find skips */
    const char *error; /* expected out->error, NULL for none */
    int rc;
    const char *hdr[7];                 /* version .. severity; NULL = absent */
    const char *ext[2 * MAX_PAIRS + 1]; /* key, value, ..., NULL: exactly these pairs */
};

#define HDR_VPN5                                                                                   \
    {                                                                                              \
        "0", "V", "P", "1", "1", "N", "5"                                                          \
    }
#define TRUNCATED "cef: truncated header"
#define KEYLESS   "cef: extension text without a key"

static const struct cef_case cases[] = {
    /* spec/edge_cases.md 1-8 */
    {"edge 1: values with spaces, | in a value",
     "CEF:0|V|P|1|1|N|5|filePath=/dir/my file.txt act=blocked a | dst=1.1.1.1",
     NULL,
     0,
     HDR_VPN5,
     {"filePath", "/dir/my file.txt", "act", "blocked a |", "dst", "1.1.1.1", NULL}},
    {"edge 2: escaped backslash and pipe end header fields",
     "CEF:0|security\\\\\\||threatmanager\\\\|1.0|100|trojan|10|",
     NULL,
     0,
     {"0", "security\\|", "threatmanager\\", "1.0", "100", "trojan", "10"},
     {NULL}},
    {"edge 3: unescaped = in values (URL, base64 padding)",
     "CEF:0|V|P|1|1|N|2|request=https://foo.com?id=foo&a=bar aid=3UBajWl0BABCABBzZSlmUdw== "
     "spt=1232",
     NULL,
     0,
     {"0", "V", "P", "1", "1", "N", "2"},
     {"request", "https://foo.com?id=foo&a=bar", "aid", "3UBajWl0BABCABBzZSlmUdw==", "spt", "1232",
      NULL}},
    {"edge 4: escaped = makes no key",
     "CEF:0|V|P|1|1|N|10|go=start now query_string=key1\\=value1&key2\\=value3 "
     "aa.bc&key3\\=value4 final=done",
     NULL,
     0,
     {"0", "V", "P", "1", "1", "N", "10"},
     {"go", "start now", "query_string", "key1=value1&key2=value3 aa.bc&key3=value4", "final",
      "done", NULL}},
    {"edge 5: trailing spaces trimmed (logstash/ES/vrl, not the spec's n-1)",
     "CEF:0|V|P|1|1|N|10|spt=1232 msg=preserved    src=10.0.0.192 ",
     NULL,
     0,
     {"0", "V", "P", "1", "1", "N", "10"},
     {"spt", "1232", "msg", "preserved", "src", "10.0.0.192", NULL}},
    {"edge 6: \\n \\r \\\\ \\= unescaped",
     "CEF:0|V|P|1|1|N|10|msg=Newlines\\nare allowed.\\r\\nAnd carriage feeds\\\\newlines\\\\\\=.",
     NULL,
     0,
     {"0", "V", "P", "1", "1", "N", "10"},
     {"msg", "Newlines\nare allowed.\r\nAnd carriage feeds\\newlines\\=.", NULL}},
    {"edge 6: \\| in an extension kept verbatim",
     "CEF:0|V|P|1|1|N|5|moo=this\\|has an escaped pipe",
     NULL,
     0,
     HDR_VPN5,
     {"moo", "this\\|has an escaped pipe", NULL}},
    {"edge 7: TAB separates pairs (ES/LogScale)",
     "CEF:0|V|P|1|1|N|10|spt=1232 msg=Tab is not a separator\tsrc=127.0.0.1",
     NULL,
     0,
     {"0", "V", "P", "1", "1", "N", "10"},
     {"spt", "1232", "msg", "Tab is not a separator", "src", "127.0.0.1", NULL}},
    {"edge 8: truncated header flagged, pairs salvaged",
     "CEF:0|SentinelOne|Mgmt|activityID=111 accountName=foo-bar mdr",
     TRUNCATED,
     ERR_INVALID,
     {"0", "SentinelOne", "Mgmt", NULL, NULL, NULL, NULL},
     {"activityID", "111", "accountName", "foo-bar mdr", NULL}},

    /* header */
    {"unterminated severity is salvaged as severity",
     "CEF:0|V|P|1|1|N|5",
     TRUNCATED,
     ERR_INVALID,
     HDR_VPN5,
     {NULL}},
    {"six fields: severity absent",
     "CEF:0|Check Point|VPN-1 & FireWall-1|Check Point|Log|https|",
     TRUNCATED,
     ERR_INVALID,
     {"0", "Check Point", "VPN-1 & FireWall-1", "Check Point", "Log", "https", NULL},
     {NULL}},
    {"bare CEF:",
     "CEF:",
     TRUNCATED,
     ERR_INVALID,
     {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
     {NULL}},
    {"header ends with two escaped backslashes",
     "CEF:0|security|threatmanager|1.0|100|double backslash\\\\\\\\|10|src=10.0.0.192",
     NULL,
     0,
     {"0", "security", "threatmanager", "1.0", "100", "double backslash\\\\", "10"},
     {"src", "10.0.0.192", NULL}},
    {"escaped pipes in every header field",
     "CEF:0|secu\\|rity|threatmanager\\||1.\\|0|10\\|0|tro\\|jan successfully stopped|\\|10|",
     NULL,
     0,
     {"0", "secu|rity", "threatmanager|", "1.|0", "10|0", "tro|jan successfully stopped", "|10"},
     {NULL}},
    {"header keeps unknown escapes, = and whitespace verbatim",
     "CEF:1| Sec\\urity |a=b\\=c|1.0|100|x\\ny|Very-High|",
     NULL,
     0,
     {"1", " Sec\\urity ", "a=b\\=c", "1.0", "100", "x\\ny", "Very-High"},
     {NULL}},
    {"empty header fields and severity",
     "CEF:1|Security|threatmanager||100|worm successfully stopped||src= dst=2.1.2.2",
     NULL,
     0,
     {"1", "Security", "threatmanager", "", "100", "worm successfully stopped", ""},
     {"src", "", "dst", "2.1.2.2", NULL}},
    {"version must be a number",
     "CEF:x|V|P|1|1|N|5|a=b",
     "cef: version is not a number",
     ERR_INVALID,
     {"x", "V", "P", "1", "1", "N", "5"},
     {"a", "b", NULL}},
    {"no CEF: prefix",
     "this is not cef",
     "cef: missing CEF: prefix",
     ERR_INVALID,
     {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
     {NULL}},

    /* extension keys and values */
    {"leading spaces and double spaces between pairs",
     "CEF:0|V|P|1|1|N|5|  src=10.0.0.192  dst=12.121.122.82  spt=1232",
     NULL,
     0,
     HDR_VPN5,
     {"src", "10.0.0.192", "dst", "12.121.122.82", "spt", "1232", NULL}},
    {"keyless extension is an error",
     "CEF:0|V|P|1|1|N|5|this is not key value",
     KEYLESS,
     ERR_INVALID,
     HDR_VPN5,
     {NULL}},
    {"text before the first key is an error, pairs kept",
     "CEF:0|V|P|1|1|N|5|junk here src=1",
     KEYLESS,
     ERR_INVALID,
     HDR_VPN5,
     {"src", "1", NULL}},
    {"SP = without a key stays value text (vrl would fail)",
     "CEF:0|V|P|1|1|N|5|act=Accept =0.0.0.0",
     NULL,
     0,
     HDR_VPN5,
     {"act", "Accept =0.0.0.0", NULL}},
    {"= after SP and = after a word stay value text",
     "CEF:0|V|P|1|1|N|5|moo=this =has = equals\\=",
     NULL,
     0,
     HDR_VPN5,
     {"moo", "this =has = equals=", NULL}},
    {"a = b (spaces both sides) is value text, not a DTEX key",
     "CEF:0|V|P|1|1|N|5|msg=x > y = z dst=1",
     NULL,
     0,
     HDR_VPN5,
     {"msg", "x > y = z", "dst", "1", NULL}},
    {"key =value: DTEX spacing",
     "CEF:0|Dtex|P|1|1|N|5|User_Name =EXAMPLE\\\\fnovak Device_Name "
     "=EXAMPLE\\\\WS-0101 Process_Name=explorer.exe",
     NULL,
     0,
     {"0", "Dtex", "P", "1", "1", "N", "5"},
     {"User_Name", "EXAMPLE\\fnovak", "Device_Name", "EXAMPLE\\WS-0101", "Process_Name",
      "explorer.exe", NULL}},
    {"key =value: the vendor in any case",
     "CEF:0|DTEX|P|1|1|N|5|suser =bob",
     NULL,
     0,
     {"0", "DTEX", "P", "1", "1", "N", "5"},
     {"suser", "bob", NULL}},
    {"key =value: free text of other vendors stays text",
     "CEF:0|V|P|1|1|N|5|msg=User signed in with =xyz",
     NULL,
     0,
     HDR_VPN5,
     {"msg", "User signed in with =xyz", NULL}},
    {"key =value: not even a CEF key of other vendors",
     "CEF:0|V|P|1|1|N|5|msg=logged in =yes suser =bob",
     NULL,
     0,
     HDR_VPN5,
     {"msg", "logged in =yes suser =bob", NULL}},
    {"key =value: other vendors' first pair is keyless text",
     "CEF:0|V|P|1|1|N|5|User_Name =x",
     KEYLESS,
     ERR_INVALID,
     HDR_VPN5,
     {NULL}},
    {"escaped backslash before a real = and before a separator",
     "CEF:0|V|P|1|1|N|5|a=x k\\\\=v b=c\\\\ d=e",
     NULL,
     0,
     HDR_VPN5,
     {"a", "x k\\=v", "b", "c\\", "d", "e", NULL}},
    {"ArcSight ad.* keys with . , [ ] and -",
     "CEF:0|V|P|1|1|N|5|src=10.0.0.192 ad.Error_,Code=3221225578 ad.field[0]=field0 "
     "Some-Key=x _cefVer=0.1",
     NULL,
     0,
     HDR_VPN5,
     {"src", "10.0.0.192", "ad.Error_,Code", "3221225578", "ad.field[0]", "field0", "Some-Key", "x",
      "_cefVer", "0.1", NULL}},
    {"a key must start with a letter, digit or _",
     "CEF:0|V|P|1|1|N|5|a=1 .b=2 -c=3",
     NULL,
     0,
     HDR_VPN5,
     {"a", "1 .b=2 -c=3", NULL}},
    {"internal double spaces kept, escaped = unescaped",
     "CEF:0|V|P|1|1|N|5|cs4=401 x  y  /CN\\=random.user/OU\\=Login dst=1",
     NULL,
     0,
     HDR_VPN5,
     {"cs4", "401 x  y  /CN=random.user/OU=Login", "dst", "1", NULL}},
    {"empty values, including the last",
     "CEF:0|V|P|1|1|N|5|cs1= cs1Label=Foo Bar start=",
     NULL,
     0,
     HDR_VPN5,
     {"cs1", "", "cs1Label", "Foo Bar", "start", "", NULL}},
    {"lone and unknown backslashes kept",
     "CEF:0|V|P|1|1|N|5|moo=this \\has \\ backslashs\\",
     NULL,
     0,
     HDR_VPN5,
     {"moo", "this \\has \\ backslashs\\", NULL}},
    {"literal \\x sequences are not bytes",
     "CEF:0|xxx|xxx|123456|xxx|xxx|5|TestField={'b': 'b\\xc3\\xaab'}",
     NULL,
     0,
     {"0", "xxx", "xxx", "123456", "xxx", "xxx", "5"},
     {"TestField", "{'b': 'b\\xc3\\xaab'}", NULL}},
    {"quotes are kept (only vrl strips them)",
     "CEF:1|\"S\"|P|1|1|N|5|src=\"10.0.0.1\"",
     NULL,
     0,
     {"1", "\"S\"", "P", "1", "1", "N", "5"},
     {"src", "\"10.0.0.1\"", NULL}},
    {"\\r decodes to CR (vrl: LF)",
     "CEF:1|V|P|1|1|N|5|msg=a.\\r b",
     NULL,
     0,
     {"1", "V", "P", "1", "1", "N", "5"},
     {"msg", "a.\r b", NULL}},
    {"duplicate keys are all kept",
     "CEF:0|V|P|1|1|N|5|cs1=1.23 cs1=1.24 cs1Label=Version",
     NULL,
     0,
     HDR_VPN5,
     {"cs1", "1.23", "cs1", "1.24", "cs1Label", "Version", NULL}},
    {"UTF-8 value",
     "CEF:0|V|P|1|1|N|5|target=aaaaa\xe3\x81\x82\xe3\x81\x82 msg=x",
     NULL,
     0,
     HDR_VPN5,
     {"target", "aaaaa\xe3\x81\x82\xe3\x81\x82", "msg", "x", NULL}},
    {"Check Point: escaped = in a value, keys with _",
     "CEF:0|Check Point|VPN-1 & FireWall-1|Check Point|Log|https|Unknown|act=Accept "
     "cs2Label=Rule Name layer_name=Network loguid={0x5bfc70fc,0x1} "
     "originsicname=CN\\=R80,O\\=R80_M..6u6bdo product=VPN-1 & FireWall-1 proto=6",
     NULL,
     0,
     {"0", "Check Point", "VPN-1 & FireWall-1", "Check Point", "Log", "https", "Unknown"},
     {"act", "Accept", "cs2Label", "Rule Name", "layer_name", "Network", "loguid",
      "{0x5bfc70fc,0x1}", "originsicname", "CN=R80,O=R80_M..6u6bdo", "product",
      "VPN-1 & FireWall-1", "proto", "6", NULL}},
    {"raw LF inside the event is an error (pairs kept)",
     "CEF:0|V|P|1|1|N|5|src=10.0.0.67\nCEF:0|V|P|1|1|N|5|src=10.0.0.68",
     "cef: raw line feed inside the event",
     ERR_INVALID,
     HDR_VPN5,
     {"src", "10.0.0.67\nCEF:0|V|P|1|1|N|5|src=10.0.0.68", NULL}},
    {"a trailing CRLF is a frame terminator, not data",
     "CEF:0|V|P|1|1|N|5|src=1\r\n",
     NULL,
     0,
     HDR_VPN5,
     {"src", "1", NULL}},

    /* ../shared/samples: syslog header first, cef_find locates the payload */
    {"sample dtex.log 1",
     "<14>Oct 02 09:21:22 dtex-intercept CEF:0|Dtex|InTERCEPT|6.3|DeviceActivity|"
     "RemovableMediaConnected|5|start=1791019282481 User_Name=EXAMPLE\\\\fnovak "
     "Device_Name=EXAMPLE\\\\WS-0101 Media_Type=USB Mass Storage",
     NULL,
     0,
     {"0", "Dtex", "InTERCEPT", "6.3", "DeviceActivity", "RemovableMediaConnected", "5"},
     {"start", "1791019282481", "User_Name", "EXAMPLE\\fnovak", "Device_Name", "EXAMPLE\\WS-0101",
      "Media_Type", "USB Mass Storage", NULL}},
    {"sample dtex.log 2 (key =value)",
     "<14>Oct 02 09:21:29 dtex-intercept CEF:0|Dtex|InTERCEPT|6.3|SessionActivity|SessionLogon|"
     "3|start=1791019289017 User_Name =EXAMPLE\\\\fnovak Device_Name =EXAMPLE\\\\WS-0101 "
     "Process_Name=explorer.exe",
     NULL,
     0,
     {"0", "Dtex", "InTERCEPT", "6.3", "SessionActivity", "SessionLogon", "3"},
     {"start", "1791019289017", "User_Name", "EXAMPLE\\fnovak", "Device_Name", "EXAMPLE\\WS-0101",
      "Process_Name", "explorer.exe", NULL}},
    {"sample logpoint.log",
     "<14>1 2026-10-02T09:15:30+00:00 logpoint01 logpoint - - - CEF:0|Logpoint|SIEM|7.4|alert|"
     "LP_Windows Firewall Disabled|6|cs1Label=alert_name cs1=LP_Windows Firewall Disabled "
     "suser=dwright@example.com cs2Label=risk_level cs2=high cnt=1",
     NULL,
     0,
     {"0", "Logpoint", "SIEM", "7.4", "alert", "LP_Windows Firewall Disabled", "6"},
     {"cs1Label", "alert_name", "cs1", "LP_Windows Firewall Disabled", "suser",
      "dwright@example.com", "cs2Label", "risk_level", "cs2", "high", "cnt", "1", NULL}},
    {"sample noise.log (Cisco ASA CEF)",
     "<134>1 2026-10-02T09:40:01Z fw01 asa - - - CEF:0|Cisco|ASA|9.18|106023|Deny tcp|5|"
     "src=10.1.1.1 dst=10.2.2.2 dpt=445 act=Deny",
     NULL,
     0,
     {"0", "Cisco", "ASA", "9.18", "106023", "Deny tcp", "5"},
     {"src", "10.1.1.1", "dst", "10.2.2.2", "dpt", "445", "act", "Deny", NULL}},
    {"sample securonix.log",
     "<134>1 2026-10-02T09:30:11Z snypr-console securonix - - - CEF:0|Securonix|SNYPR|6.4|"
     "Violation|Uploads to personal websites|8|suser=hlund duid=2044 cs1Label=policyname "
     "cs1=Uploads to personal websites cs2Label=threatname cs2=Data egress via network uploads "
     "cfp1Label=riskscore cfp1=87.5",
     NULL,
     0,
     {"0", "Securonix", "SNYPR", "6.4", "Violation", "Uploads to personal websites", "8"},
     {"suser", "hlund", "duid", "2044", "cs1Label", "policyname", "cs1",
      "Uploads to personal websites", "cs2Label", "threatname", "cs2",
      "Data egress via network uploads", "cfp1Label", "riskscore", "cfp1", "87.5", NULL}},
    {"sample sentinel.log",
     "<14>1 2026-10-02T09:20:05Z sentinel-relay sentinel - - - CEF:0|Microsoft|Sentinel|1.0|"
     "ScheduledAlert|Mass download by a single user|5|suser=e.o'neil@example.com "
     "suid=7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f70 cs1Label=AlertDisplayName cs1=Mass download by "
     "a single user",
     NULL,
     0,
     {"0", "Microsoft", "Sentinel", "1.0", "ScheduledAlert", "Mass download by a single user", "5"},
     {"suser", "e.o'neil@example.com", "suid", "7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f70", "cs1Label",
      "AlertDisplayName", "cs1", "Mass download by a single user", NULL}},
    {"sample splunk.log 1",
     "<134>1 2026-10-02T09:12:44.120Z splunk-sh01 splunkd - - - CEF:0|Splunk|Enterprise "
     "Security|7.3.2|notable|Endpoint - Removable Media Mounted - Rule|7|rt=1791018764000 "
     "suser=EXAMPLE\\\\amorgan cs1Label=search_name cs1=Endpoint - Removable Media Mounted - "
     "Rule cs2Label=urgency cs2=high dvchost=LT-2231.example.com",
     NULL,
     0,
     {"0", "Splunk", "Enterprise Security", "7.3.2", "notable",
      "Endpoint - Removable Media Mounted - Rule", "7"},
     {"rt", "1791018764000", "suser", "EXAMPLE\\amorgan", "cs1Label", "search_name", "cs1",
      "Endpoint - Removable Media Mounted - Rule", "cs2Label", "urgency", "cs2", "high", "dvchost",
      "LT-2231.example.com", NULL}},
};

static struct str error_str(const char *e)
{
    return e != NULL ? str_make(e, strlen(e)) : STR_ABSENT;
}

/* Each slice must lie in the input or in the used part of the scratch buffer. */
static int inside(struct str s, const char *in, size_t len, const struct scratch *sc)
{
    if (s.p == NULL)
        return 1;
    return (s.p >= in && s.p + s.len <= in + len) ||
           (s.p >= sc->buf && s.p + s.len <= sc->buf + sc->used);
}

/* Parses text as a payload (after cef_find) from an exactly-sized heap copy
 * so sanitizers see any read past the end; scratch is as large as the input. */
static int parse_copy(const char *text, struct cef_msg *m, struct scratch *sc, char **copy)
{
    size_t len = strlen(text);
    char *in = malloc(len ? len : 1);
    char *sbuf = malloc(len ? len : 1);

    memcpy(in, text, len);
    scratch_init(sc, sbuf, len);
    long at = cef_find(in, len);
    size_t off = at < 0 ? 0 : (size_t)at;
    *copy = in;
    return cef_parse(in + off, len - off, m, sc);
}

static struct cef_msg msg; /* CEF_MAX_EXT pairs, 32 KiB: keep it off the stack */

static void test_cases(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct cef_case *c = &cases[i];
        struct scratch sc;
        char *in;
        int rc = parse_copy(c->in, &msg, &sc, &in);
        size_t len = strlen(c->in), n = 0;
        const struct str hdr[] = {msg.version,      msg.vendor, msg.product, msg.device_version,
                                  msg.signature_id, msg.name,   msg.severity};

        CHECK_INT(rc, c->rc);
        CHECK_STR(c->name, error_str(msg.error), c->error);
        for (size_t f = 0; f < 7; f++) {
            CHECK_STR(c->name, hdr[f], c->hdr[f]);
            CHECK(inside(hdr[f], in, len, &sc));
        }
        while (c->ext[2 * n] != NULL)
            n++;
        CHECK_INT(msg.n_ext, n);
        for (size_t k = 0; k < n && k < msg.n_ext; k++) {
            CHECK_STR(c->name, msg.ext[k].key, c->ext[2 * k]);
            CHECK_STR(c->name, msg.ext[k].value, c->ext[2 * k + 1]);
            CHECK(inside(msg.ext[k].key, in, len, &sc) && inside(msg.ext[k].value, in, len, &sc));
        }
        /* Zero copy: only text with a backslash goes to the scratch buffer. */
        if (strchr(c->in, '\\') == NULL)
            CHECK_INT(sc.used, 0);
        free(sc.buf);
        free(in);
    }
}

static const struct {
    const char *in;
    long at;
} find_cases[] = {
    {"CEF:0|V|P|1|1|N|5|", 0},
    {"Sep 29 08:26:10 host CEF:1|Security|", 21},
    {"<13>Jan 1 00:00:00 h tag: CEF:0|a|", 26},
    {"xCEF:0| CEF:0|", 8}, /* not after a space: skipped */
    /* a version digit must follow: prose that says "CEF:" is no payload */
    {"app: config key CEF: disabled", -1},
    {"CEF:x CEF:1|", 6},
    {"CEF:", -1},
    {"a CEF:0", 2},
    {"CEF", -1},
    {"no payload here", -1},
    {"", -1},
};

static void test_find(void)
{
    for (size_t i = 0; i < sizeof(find_cases) / sizeof(find_cases[0]); i++)
        CHECK_INT(cef_find(find_cases[i].in, strlen(find_cases[i].in)), find_cases[i].at);
}

static const struct {
    const char *in;
    const char *key;
    const char *want;
} get_cases[] = {
    {"CEF:0|V|P|1|1|N|5|suser=bob src=1.2.3.4", "suser", "bob"},
    {"CEF:0|V|P|1|1|N|5|suser=bob src=1.2.3.4", "sourceUserName", "bob"},
    {"CEF:0|V|P|1|1|N|5|sourceUserName=bob", "suser", "bob"},
    {"CEF:0|V|P|1|1|N|5|fname=a.txt", "fileName", "a.txt"},
    {"CEF:0|V|P|1|1|N|5|agentZoneKey=k", "Agent Zone Key", "k"},
    {"CEF:0|Dtex|P|1|1|N|5|User_Name =EXAMPLE\\\\fnovak", "User_Name", "EXAMPLE\\fnovak"},
    {"CEF:0|V|P|1|1|N|5|suser=first sourceUserName=second", "suser", "second"},
    {"CEF:0|V|P|1|1|N|5|sourceUserName=first suser=second", "sourceUserName", "second"},
    {"CEF:0|V|P|1|1|N|5|cs1=1.23 cs1=1.24", "cs1", "1.24"},
    {"CEF:0|V|P|1|1|N|5|suser=bob", "duser", NULL},
    {"CEF:0|V|P|1|1|N|5|suser=bob", "SUSER", NULL},
    {"CEF:0|V|P|1|1|N|5|custom_key=v", "custom_key", "v"},
};

static void test_get(void)
{
    for (size_t i = 0; i < sizeof(get_cases) / sizeof(get_cases[0]); i++) {
        struct scratch sc;
        char *in;
        parse_copy(get_cases[i].in, &msg, &sc, &in);
        struct str key = str_make(get_cases[i].key, strlen(get_cases[i].key));
        CHECK_STR(get_cases[i].in, cef_get(&msg, key), get_cases[i].want);
        free(sc.buf);
        free(in);
    }
}

static const struct {
    const char *in;
    const char *label;
    const char *want;
} label_cases[] = {
    {"CEF:0|V|P|1|1|N|5|cs1Label=search_name cs1=Rule A", "search_name", "Rule A"},
    {"CEF:0|V|P|1|1|N|5|cfp1=35.46 cn1Label=Internal ID cfp1Label=Uptime hours cn1=125",
     "Uptime hours", "35.46"},
    {"CEF:0|V|P|1|1|N|5|cfp1=35.46 cn1Label=Internal ID cfp1Label=Uptime hours cn1=125",
     "Internal ID", "125"},
    {"CEF:0|V|P|1|1|N|5|cs9Label=beyond spec cs9=nine", "beyond spec", "nine"},
    {"CEF:0|V|P|1|1|N|5|cfp15=3.14 cfp15Label=pi c6a12=::1 c6a12Label=localhost", "localhost",
     "::1"},
    {"CEF:0|V|P|1|1|N|5|deviceCustomString1Label=policy cs1=P1", "policy", "P1"},
    {"CEF:0|V|P|1|1|N|5|cs2Label=policy deviceCustomString2=P2", "policy", "P2"},
    {"CEF:0|V|P|1|1|N|5|flexString1Label=fs flexString1=F", "fs", "F"},
    {"CEF:0|V|P|1|1|N|5|deviceCustomDate1Label=detectionDate deviceCustomDate1=1388577900000",
     "detectionDate", "1388577900000"},
    {"CEF:0|V|P|1|1|N|5|flexDate1Label=fd flexDate1=Jan 1", "fd", "Jan 1"},
    {"CEF:0|V|P|1|1|N|5|cs1Label=x cs2=other", "x", NULL},             /* label without value */
    {"CEF:0|V|P|1|1|N|5|cs1Label=x cs1=one cs1=two", "x", "two"},      /* last value wins */
    {"CEF:0|V|P|1|1|N|5|cs1Label=x cs1=a cs2Label=x cs2=b", "x", "b"}, /* last label wins */
    {"CEF:0|V|P|1|1|N|5|cs1Label=y cs1=a cs2Label=x", "x", NULL},
    /* the last label names the field even when that field has no value */
    {"CEF:0|V|P|1|1|N|5|cs1Label=x cs1=a cs2Label=x", "x", NULL},
    {"CEF:0|V|P|1|1|N|5|cs1Label=x cs1=a cs2=x", "x", "a"}, /* a value equal to the label */
    {"CEF:0|V|P|1|1|N|5|fooLabel=x foo=1", "x", NULL},      /* not a custom field */
    {"CEF:0|V|P|1|1|N|5|csLabel=x cs=1", "x", NULL},        /* no index */
    {"CEF:0|V|P|1|1|N|5|cs1Labels=x cs1=1", "x", NULL},     /* not a label key */
    {"CEF:0|V|P|1|1|N|5|cs1Label=x cs1=1", "X", NULL},      /* labels are case-sensitive */
};

static void test_labels(void)
{
    for (size_t i = 0; i < sizeof(label_cases) / sizeof(label_cases[0]); i++) {
        struct scratch sc;
        char *in;
        parse_copy(label_cases[i].in, &msg, &sc, &in);
        struct str label = str_make(label_cases[i].label, strlen(label_cases[i].label));
        CHECK_STR(label_cases[i].in, cef_get_label(&msg, label), label_cases[i].want);
        free(sc.buf);
        free(in);
    }
    /* An absent label never matches an empty one. */
    struct scratch sc;
    char *in;
    parse_copy("CEF:0|V|P|1|1|N|5|cs1Label= cs1=x", &msg, &sc, &in);
    CHECK_STR("empty label", cef_get_label(&msg, STR_LIT("")), "x");
    CHECK(str_is_absent(cef_get_label(&msg, STR_ABSENT)));
    free(sc.buf);
    free(in);
}

/* Every table entry must be reachable both ways: this fails if the generated
 * table is not sorted the way the binary search expects. */
static void test_key_table(void)
{
    CHECK(cef_keys_count >= 180);
    for (size_t i = 0; i < cef_keys_count; i++) {
        const struct cef_key *k = &cef_keys[i];
        CHECK(str_eq(cef_full_name(k->short_name), k->full_name));
        CHECK(str_eq(cef_short_name(k->full_name), k->short_name));
    }
    static const struct {
        const char *name;
        const char *full;
        const char *shrt;
    } rows[] = {
        {"suser", "sourceUserName", NULL},
        {"dmac", "destinationMacAddress", NULL},
        {"dvcmac", "deviceMacAddress", NULL},
        {"fname", "fileName", NULL},
        {"c6a2", "deviceCustomIPv6Address2", NULL},
        {"sourceUserName", NULL, "suser"},
        {"Agent Zone Key", NULL, "agentZoneKey"},
        {"reason", "reason", "reason"},
        {"Reason", NULL, NULL},
        {"cs7", NULL, NULL},
        {"", NULL, NULL},
        {"zzzzzz", NULL, NULL},
        {"a", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct str s = str_make(rows[i].name, strlen(rows[i].name));
        CHECK_STR(rows[i].name, cef_full_name(s), rows[i].full);
        CHECK_STR(rows[i].name, cef_short_name(s), rows[i].shrt);
    }
    CHECK(str_is_absent(cef_full_name(STR_ABSENT)));
}

/* The table's spelling of a key typed in another case: short and full
 * names, names with spaces, and no answer for a vendor's own key. */
static void test_key_caseless(void)
{
    static const struct {
        const char *key;
        const char *want;
    } rows[] = {
        {"sUser", "suser"},
        {"suser", "suser"},
        {"SourceUserName", "sourceUserName"},
        {"SOURCEUSERNAME", "sourceUserName"},
        {"agent zone key", "Agent Zone Key"},
        {"Reason", "reason"},
        {"User_Name", NULL},
        {"suser ", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        CHECK_STR(rows[i].key, cef_key_caseless(str_make(rows[i].key, strlen(rows[i].key))),
                  rows[i].want);
    CHECK(str_is_absent(cef_key_caseless(STR_ABSENT)));
}

/* The sender controls every pair, so a label lookup must be linear in them:
 * 128 labels with the same text and no value cost a nested scan ~0.7 ms per
 * call (2000 calls: 1.5 s); two linear passes take 15 ms (60 ms with ASan).
 * 128, not CEF_MAX_EXT: 8 times more would push the linear passes under ASan
 * near the bound. */
#define LABEL_SPEED_N 128
static void test_label_speed(void)
{
    static char line[8192];
    size_t len = (size_t)snprintf(line, sizeof(line), "CEF:0|V|P|1|1|N|5|");
    for (int i = 1; i <= LABEL_SPEED_N; i++)
        len += (size_t)snprintf(line + len, sizeof(line) - len,
                                "deviceCustomFloatingPoint%dLabel=X ", i);
    struct scratch sc;
    scratch_init(&sc, NULL, 0);
    CHECK_INT(cef_parse(line, len, &msg, &sc), 0);
    CHECK_INT(msg.n_ext, LABEL_SPEED_N);
    clock_t t0 = clock();
    for (int i = 0; i < 2000; i++)
        CHECK(str_is_absent(cef_get_label(&msg, STR_LIT("X"))));
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    if (secs > 0.4)
        UNIT_FAIL("2000 label lookups over %d labels: %.2f s", LABEL_SPEED_N, secs);
    else
        unit_passed++;
}

/* A NULL scratch is a full one (as syslog_parse treats it): text with an
 * escape keeps its raw form and the error says so; nothing is written. */
static void test_null_scratch(void)
{
    const char *esc = "CEF:0|V\\\\x|P|1|1|N|5|a=x\\=y b=plain";
    CHECK_INT(cef_parse(esc, strlen(esc), &msg, NULL), ERR_LIMIT);
    CHECK_STR("null scratch", error_str(msg.error),
              "cef: scratch buffer too small, value left escaped");
    CHECK_STR("null scratch", msg.vendor, "V\\\\x");
    CHECK_INT(msg.n_ext, 2);
    CHECK_STR("null scratch", msg.ext[0].value, "x\\=y");
    CHECK_STR("null scratch", msg.ext[1].value, "plain");
    const char *plain = "CEF:0|V|P|1|1|N|5|a=b";
    CHECK_INT(cef_parse(plain, strlen(plain), &msg, NULL), 0);
    CHECK_STR("null scratch", msg.ext[0].value, "b");
}

static char big[1 << 20];

/* A 172-pair event (seen in the field) keeps every pair: suser at pair 153
 * was dropped by the old 128-pair table. */
static void test_many_pairs(void)
{
    size_t len = (size_t)snprintf(big, sizeof(big), "CEF:0|V|P|1|1|N|5|");
    for (int i = 1; i <= 172; i++) {
        if (i == 153)
            len += (size_t)snprintf(big + len, sizeof(big) - len, "suser=alice ");
        else
            len += (size_t)snprintf(big + len, sizeof(big) - len, "cs%d=v%d ", i, i);
    }
    CHECK_INT(cef_parse(big, len, &msg, NULL), 0);
    CHECK(msg.error == NULL);
    CHECK_INT(msg.n_ext, 172);
    CHECK_INT(msg.n_dropped, 0);
    CHECK_STR("172 pairs", cef_get(&msg, STR_LIT("suser")), "alice");
    CHECK_STR("172 pairs", msg.ext[171].value, "v172");
}

/* Over CEF_MAX_EXT pairs: ERR_LIMIT, the first CEF_MAX_EXT kept, every other
 * one counted. A scratch buffer that is too small: ERR_LIMIT, the escaped
 * text kept. */
static void test_limits(void)
{
    size_t len = (size_t)snprintf(big, sizeof(big), "CEF:0|V|P|1|1|N|5|");
    for (int i = 0; i < CEF_MAX_EXT + 72; i++)
        len += (size_t)snprintf(big + len, sizeof(big) - len, "k%d=v%d ", i, i);
    char sbuf[16];
    struct scratch sc;
    scratch_init(&sc, sbuf, sizeof(sbuf));
    CHECK_INT(cef_parse(big, len, &msg, &sc), ERR_LIMIT);
    CHECK_STR("limit", error_str(msg.error), "cef: too many extension fields");
    CHECK_INT(msg.n_ext, CEF_MAX_EXT);
    CHECK_INT(msg.n_dropped, 72);
    char want[16];
    snprintf(want, sizeof(want), "k%d", CEF_MAX_EXT - 1);
    CHECK_STR("limit", msg.ext[CEF_MAX_EXT - 1].key, want);
    want[0] = 'v';
    CHECK_STR("limit", msg.ext[CEF_MAX_EXT - 1].value, want);
    /* the count starts again with each event */
    const char *one = "CEF:0|V|P|1|1|N|5|a=b";
    CHECK_INT(cef_parse(one, strlen(one), &msg, &sc), 0);
    CHECK_INT(msg.n_dropped, 0);

    const char *esc = "CEF:0|V|P|1|1|N|5|a=x\\=y b=0123456789abcdef\\=z";
    scratch_init(&sc, sbuf, 8);
    CHECK_INT(cef_parse(esc, strlen(esc), &msg, &sc), ERR_LIMIT);
    CHECK_INT(msg.n_ext, 2);
    CHECK_STR("scratch", msg.ext[0].value, "x=y");
    CHECK_STR("scratch", msg.ext[1].value, "0123456789abcdef\\=z");
    CHECK_STR("scratch", error_str(msg.error), "cef: scratch buffer too small, value left escaped");
    CHECK_INT(sc.used, 3);
}

/* Pathological input must take linear time: a quadratic scan of 1 MB
 * would run for minutes, so a generous bound cannot flake. */
static void test_linear(void)
{
    /* The last two run through DTEX's "key =value" rule. */
    static const struct {
        const char *head, *unit;
    } units[] = {{"CEF:0|", "="},
                 {"CEF:0|", "a="},
                 {"CEF:0|", " a"},
                 {"CEF:0|", "\\"},
                 {"CEF:0|", "\\="},
                 {"CEF:0|", "|"},
                 {"CEF:0|", "\\|"},
                 {"CEF:0|", " =x"},
                 {"CEF:0|", "a b"},
                 {"CEF:0|Dtex|P|1|1|N|5|", " =x"},
                 {"CEF:0|Dtex|P|1|1|N|5|", "a =b "}};
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        size_t n = strlen(units[u].unit),
               len = (size_t)snprintf(big, sizeof(big), "%s", units[u].head);
        while (len + n < sizeof(big)) {
            memcpy(big + len, units[u].unit, n);
            len += n;
        }
        char *sbuf = malloc(len);
        struct scratch sc;
        scratch_init(&sc, sbuf, len);
        clock_t t0 = clock();
        cef_parse(big, len, &msg, &sc);
        cef_find(big, len);
        double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
        if (secs > 5.0)
            UNIT_FAIL("unit '%s': %.1f s for 1 MB", units[u].unit, secs);
        else
            unit_passed++;
        free(sbuf);
    }
}

int main(void)
{
    test_cases();
    test_find();
    test_get();
    test_labels();
    test_label_speed();
    test_null_scratch();
    test_key_table();
    test_key_caseless();
    test_many_pairs();
    test_limits();
    test_linear();
    return unit_report("test_cef");
}
