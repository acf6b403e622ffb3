/* message_parse end to end: real lines of every shipped source (the same
 * lines as ../shared/samples) through syslog header + payload detection.
 * Each line is parsed from a heap copy of exactly its length, with a scratch
 * buffer of exactly that size (the contract's minimum), so a sanitizer build
 * catches any read or write past either. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "unit.h"

struct message_case {
    const char *name;
    const char *line;
    enum syslog_format format;
    const char *hostname;
    enum message_payload payload;
    const char *vendor; /* CEF or LEEF vendor */
    const char *key;    /* one extension key ... */
    const char *value;  /* ... and its value */
    int has_error;
};

static const struct message_case cases[] = {
    {"splunk cef 5424",
     "<134>1 2026-10-02T09:12:44.120Z splunk-sh01 splunkd - - - CEF:0|Splunk|Enterprise "
     "Security|7.3.2|notable|Endpoint - Removable Media Mounted - Rule|7|rt=1791018764000 "
     "suser=EXAMPLE\\\\amorgan cs1Label=search_name cs1=Endpoint - Removable Media Mounted - "
     "Rule cs2Label=urgency cs2=high dvchost=LT-2231.example.com",
     SYSLOG_RFC5424, "splunk-sh01", PAYLOAD_CEF, "Splunk", "suser", "EXAMPLE\\amorgan", 0},
    {"splunk forwarded key=value 3164",
     "<13>Oct  2 09:13:05 splunk-hf01 search_name=\"Web - Malware Download Detected - Rule\" "
     "user=\"bkhan@example.com\" src_user=\"EXAMPLE\\bkhan\" urgency=critical",
     SYSLOG_RFC3164, "splunk-hf01", PAYLOAD_TEXT, NULL, NULL, NULL, 0},
    {"logrhythm 3164",
     "<13>Oct 02 09:14:10 LR-DP01 EVID:1000541 AIE: Unknown USB Device Connected | "
     "login=EXAMPLE\\cdiaz | account= | sip=10.20.3.41",
     SYSLOG_RFC3164, "LR-DP01", PAYLOAD_TEXT, NULL, NULL, NULL, 0},
    {"dtex cef after 3164 host, no tag",
     "<14>Oct 02 09:21:22 dtex-intercept CEF:0|Dtex|InTERCEPT|6.3|DeviceActivity|"
     "RemovableMediaConnected|5|start=1791019282481 User_Name=EXAMPLE\\\\fnovak "
     "Device_Name=EXAMPLE\\\\WS-0101 Media_Type=USB Mass Storage",
     SYSLOG_RFC3164, "dtex-intercept", PAYLOAD_CEF, "Dtex", "User_Name", "EXAMPLE\\fnovak", 0},
    {"dtex cef with key =value spacing",
     "<14>Oct 02 09:21:29 dtex-intercept CEF:0|Dtex|InTERCEPT|6.3|SessionActivity|"
     "SessionLogon|3|start=1791019289017 User_Name =EXAMPLE\\\\fnovak Device_Name "
     "=EXAMPLE\\\\WS-0101 Process_Name=explorer.exe",
     SYSLOG_RFC3164, "dtex-intercept", PAYLOAD_CEF, "Dtex", "Device_Name", "EXAMPLE\\WS-0101", 0},
    {"dtex leef 2.0 caret",
     "<14>1 2026-10-02T09:22:00Z dtex-intercept - - - - LEEF:2.0|Dtex|InTERCEPT|6.3|Alert|^|"
     "cat=Obfuscation (Unusual File Deletes)^sev=8^usrName=EXAMPLE\\gmensah^riskScore=0.5",
     SYSLOG_RFC5424, "dtex-intercept", PAYLOAD_LEEF, "Dtex", "usrName", "EXAMPLE\\gmensah", 0},
    {"qradar leef 1.0 tab",
     "<13>Oct  2 09:31:02 qradar-con LEEF:1.0|IBM|QRadar|7.5.0|Offense Rule Fired|"
     "devTime=Oct 02 2026 09:31:00\tusrName=S-1-5-21-1004336348-1177238915-682003330-1109\t"
     "cat=USB Device Policy\tsev=7",
     SYSLOG_RFC3164, "qradar-con", PAYLOAD_LEEF, "IBM", "cat", "USB Device Policy", 0},
    {"qradar leef 2.0 hex delimiter, guest upn",
     "<133>1 2026-10-02T09:31:02.520Z qradar-con - - - - LEEF:2.0|IBM|QRadar|7.5.0|Offense "
     "Rule Fired|x5E|devTime=2026-10-02T09:31:00.000+0000^usrName=jsato_partner.example#EXT#"
     "@example.onmicrosoft.com^cat=Sensitive Share Access^sev=6",
     SYSLOG_RFC5424, "qradar-con", PAYLOAD_LEEF, "IBM", "usrName",
     "jsato_partner.example#EXT#@example.onmicrosoft.com", 0},
    {"sentinel apostrophe upn",
     "<14>1 2026-10-02T09:20:05Z sentinel-relay sentinel - - - CEF:0|Microsoft|Sentinel|1.0|"
     "ScheduledAlert|Mass download by a single user|5|suser=e.o'neil@example.com "
     "cs1Label=AlertDisplayName cs1=Mass download by a single user",
     SYSLOG_RFC5424, "sentinel-relay", PAYLOAD_CEF, "Microsoft", "suser", "e.o'neil@example.com",
     0},
    {"nginx noise",
     "<30>Oct  2 09:40:00 web01 nginx[1201]: 10.0.0.5 - - [02/Oct/2026:09:40:00 +0000] "
     "\"GET /health HTTP/1.1\" 200 2",
     SYSLOG_RFC3164, "web01", PAYLOAD_TEXT, NULL, NULL, NULL, 0},
    {"no header at all, bare cef", "CEF:0|Vendor|Product|1|100|Name|5|suser=bob", SYSLOG_NONE, NULL,
     PAYLOAD_CEF, "Vendor", "sourceUserName", "bob", 0},
    {"broken cef header is flagged, not lost", "<13>Oct  2 09:40:00 host CEF:0|only|three",
     SYSLOG_RFC3164, "host", PAYLOAD_CEF, "only", NULL, NULL, 1},
    /* "name:" and "name[pid]:" right before the payload are both TAGs */
    {"cef right after a name: tag", "<13>Oct  2 09:40:00 host app:CEF:0|V|P|1|1|N|5|a=b",
     SYSLOG_RFC3164, "host", PAYLOAD_CEF, "V", "a", "b", 0},
    {"cef right after a name[pid]: tag", "<13>Oct  2 09:40:00 host app[12]:CEF:0|V|P|1|1|N|5|a=b",
     SYSLOG_RFC3164, "host", PAYLOAD_CEF, "V", "a", "b", 0},
    /* a payload marker needs its version digit: prose stays text, no error */
    {"LEEF: in prose", "<13>Oct  2 09:40:00 host app: config key LEEF: disabled", SYSLOG_RFC3164,
     "host", PAYLOAD_TEXT, NULL, NULL, NULL, 0},
    {"CEF: in prose", "<13>Oct  2 09:40:00 host app: set CEF: off", SYSLOG_RFC3164, "host",
     PAYLOAD_TEXT, NULL, NULL, NULL, 0},
    /* the first marker in MSG wins, whichever it is */
    {"leef before a later cef", "<13>Oct  2 09:40:00 host app: x LEEF:1.0|V|P|1|E|k=v CEF:0|W",
     SYSLOG_RFC3164, "host", PAYLOAD_LEEF, "V", "k", "v CEF:0|W", 0},
    {"cef before a later leef", "<13>Oct  2 09:40:00 host app: x CEF:0|V|P|1|1|N|5|k=v LEEF:1.0|W",
     SYSLOG_RFC3164, "host", PAYLOAD_CEF, "V", "k", "v LEEF:1.0|W", 0},
};

/* Every slice must lie in the input or in the used part of the scratch buffer. */
static int inside(struct str s, const char *in, size_t len, const struct scratch *sc)
{
    if (s.p == NULL)
        return 1;
    return (s.p >= in && s.p + s.len <= in + len) ||
           (s.p >= sc->buf && s.p + s.len <= sc->buf + sc->used);
}

/* Parses a heap copy of line of exactly its length, with a scratch buffer of
 * exactly that size. The caller frees *copy and sc->buf. */
static int parse_copy(const char *line, struct message *m, struct scratch *sc, char **copy)
{
    size_t len = strlen(line);
    char *in = malloc(len ? len : 1);

    memcpy(in, line, len);
    scratch_init(sc, malloc(len ? len : 1), len);
    *copy = in;
    return message_parse(in, len, m, sc);
}

static void test_cases(void)
{
    static struct message m;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct message_case *c = &cases[i];
        struct scratch s;
        char *in;
        size_t len = strlen(c->line);
        int rc = parse_copy(c->line, &m, &s, &in);
        CHECK_INT(m.syslog.format, c->format);
        CHECK_STR(c->name, m.syslog.hostname, c->hostname);
        CHECK_INT(m.payload, c->payload);
        CHECK_INT(m.error != NULL, c->has_error);
        CHECK_INT(rc != 0, c->has_error);
        if (c->payload == PAYLOAD_CEF) {
            CHECK_STR(c->name, m.u.cef.vendor, c->vendor);
            if (c->key)
                CHECK_STR(c->name, cef_get(&m.u.cef, str_make(c->key, strlen(c->key))), c->value);
        } else if (c->payload == PAYLOAD_LEEF) {
            CHECK_STR(c->name, m.u.leef.vendor, c->vendor);
            CHECK_STR(c->name, leef_get(&m.u.leef, str_make(c->key, strlen(c->key))), c->value);
        }
        CHECK(m.raw.p == in && m.raw.len == len);
        CHECK(inside(m.syslog.msg, in, len, &s));
        free(s.buf);
        free(in);
    }
}

/* Escapes in both the SD and the CEF payload, with a scratch buffer exactly
 * as large as the frame: both unescape into it and it never runs out. */
static void test_scratch_exact(void)
{
    static struct message m;
    const char *line = "<13>1 2026-10-02T09:40:01Z h app - - [x@1 k=\"a\\\"b\\\\c\"] "
                       "CEF:0|V\\\\|P\\|x|1|1|N|5|a=x\\=y\\\\z b=\\n";
    struct scratch s;
    char *in;
    size_t len = strlen(line);

    CHECK_INT(parse_copy(line, &m, &s, &in), 0);
    CHECK(m.error == NULL);
    CHECK_INT(m.syslog.format, SYSLOG_RFC5424);
    CHECK_INT(m.syslog.n_sd_params, 1);
    CHECK_STR("scratch", m.syslog.sd_params[0].value, "a\"b\\c");
    CHECK_INT(m.payload, PAYLOAD_CEF);
    CHECK_STR("scratch", m.u.cef.vendor, "V\\");
    CHECK_STR("scratch", m.u.cef.product, "P|x");
    CHECK_STR("scratch", cef_get(&m.u.cef, STR_LIT("a")), "x=y\\z");
    CHECK_STR("scratch", cef_get(&m.u.cef, STR_LIT("b")), "\n");
    const struct str slices[] = {m.syslog.sd_params[0].value, m.u.cef.vendor, m.u.cef.product,
                                 m.u.cef.ext[0].value, m.u.cef.ext[1].value};
    for (size_t i = 0; i < sizeof(slices) / sizeof(slices[0]); i++)
        CHECK(inside(slices[i], in, len, &s) && slices[i].p >= s.buf &&
              slices[i].p < s.buf + s.cap);
    CHECK(s.used <= s.cap);
    free(s.buf);
    free(in);
}

/* The parser reuses the caller's message: nothing of the previous message may
 * leak into the next one (CEF, then LEEF, then text). */
static void test_reuse(void)
{
    static struct message m;
    struct scratch s;
    char *in;

    parse_copy("CEF:0|V|P|1|1|N|5|a=b", &m, &s, &in);
    CHECK_INT(m.payload, PAYLOAD_CEF);
    free(s.buf);
    free(in);
    parse_copy("<13>Oct  2 09:40:00 h LEEF:2.0|W|Q|1|E|^|c=d", &m, &s, &in);
    CHECK_INT(m.payload, PAYLOAD_LEEF);
    CHECK(m.error == NULL);
    CHECK_STR("reuse", m.u.leef.vendor, "W");
    CHECK_STR("reuse", leef_get(&m.u.leef, STR_LIT("c")), "d");
    CHECK(str_is_absent(leef_get(&m.u.leef, STR_LIT("a"))));
    free(s.buf);
    free(in);
    parse_copy("just text", &m, &s, &in);
    CHECK_INT(m.payload, PAYLOAD_TEXT);
    CHECK(m.error == NULL);
    CHECK_INT(m.syslog.format, SYSLOG_NONE);
    CHECK(str_is_absent(m.syslog.hostname));
    CHECK_STR("reuse", m.syslog.msg, "just text");
    free(s.buf);
    free(in);
}

/* MSG that is a JSON object (after blanks) is a JSON payload; anything else that starts
 * with '{' stays text without an error, or is found as CEF further on. CEF and LEEF at the
 * start of MSG are decided before JSON is looked at. */
static const struct {
    const char *name;
    const char *line;
    enum syslog_format format;
    enum message_payload payload;
    const char *path; /* a lookup in the JSON payload ... */
    const char *want; /* ... and its value */
} json_cases[] = {
    {"5424 sentinel via logstash",
     "<14>1 2026-10-02T09:20:05Z relay logstash - - - {\"AlertName\":\"Mass download\","
     "\"Entities\":[{\"Type\":\"account\",\"Name\":\"CORP\\\\jdoe\"}]}",
     SYSLOG_RFC5424, PAYLOAD_JSON, "Entities.0.Name", "CORP\\jdoe"},
    {"5424 with BOM", "<14>1 2026-10-02T09:20:05Z relay vector - - - \xEF\xBB\xBF {\"a\":\"b\"}",
     SYSLOG_RFC5424, PAYLOAD_JSON, "a", "b"},
    {"3164 with tag", "<13>Oct  2 09:40:00 fluent-bit sentinel[12]: {\"user\":\"bob\"}",
     SYSLOG_RFC3164, PAYLOAD_JSON, "user", "bob"},
    {"3164 with blanks before", "<13>Oct  2 09:40:00 host app: \t {\"n\": 1e400 } ", SYSLOG_RFC3164,
     PAYLOAD_JSON, "n", "1e400"},
    {"no header", "{\"a\":{\"b\":[true]}}", SYSLOG_NONE, PAYLOAD_JSON, "a.b.0", "true"},
    {"CEF inside a JSON string",
     "<13>Oct  2 09:40:00 host app: {\"m\":\"x CEF:0|V|P|1|1|N|5|a=b\"}", SYSLOG_RFC3164,
     PAYLOAD_JSON, "m", "x CEF:0|V|P|1|1|N|5|a=b"},
    {"trailing comma stays text", "<13>Oct  2 09:40:00 host app: {\"a\":1,}", SYSLOG_RFC3164,
     PAYLOAD_TEXT, NULL, NULL},
    {"duplicate key stays text", "<13>Oct  2 09:40:00 host app: {\"a\":1,\"a\":2}", SYSLOG_RFC3164,
     PAYLOAD_TEXT, NULL, NULL},
    {"prose in braces stays text", "<13>Oct  2 09:40:00 host app: {maintenance} window opened",
     SYSLOG_RFC3164, PAYLOAD_TEXT, NULL, NULL},
    {"array stays text", "<13>Oct  2 09:40:00 host app: [1,2]", SYSLOG_RFC3164, PAYLOAD_TEXT, NULL,
     NULL},
    {"braces then CEF", "<13>Oct  2 09:40:00 host app: {x} CEF:0|V|P|1|1|N|5|a=b", SYSLOG_RFC3164,
     PAYLOAD_CEF, NULL, NULL},
    {"CEF first", "<13>Oct  2 09:40:00 host CEF:0|V|P|1|1|N|5|a={\"b\":1}", SYSLOG_RFC3164,
     PAYLOAD_CEF, NULL, NULL},
};

static void test_json_payload(void)
{
    static struct message m;

    for (size_t i = 0; i < sizeof(json_cases) / sizeof(json_cases[0]); i++) {
        struct scratch s;
        char *in;
        size_t len = strlen(json_cases[i].line);
        int rc = parse_copy(json_cases[i].line, &m, &s, &in);
        CHECK_INT(rc, 0);
        if (m.error != NULL)
            UNIT_FAIL("%s: error %s", json_cases[i].name, m.error);
        CHECK_INT(m.syslog.format, json_cases[i].format);
        if (m.payload != json_cases[i].payload)
            UNIT_FAIL("%s: payload %d, want %d", json_cases[i].name, m.payload,
                      json_cases[i].payload);
        if (m.payload == PAYLOAD_JSON && json_cases[i].path != NULL) {
            const struct message_json *j = &m.u.json;
            struct str v;
            if (!(j->doc.p >= in && j->doc.p + j->doc.len <= in + len && j->doc.p[0] == '{' &&
                  j->doc.p[j->doc.len - 1] == '}'))
                UNIT_FAIL("%s: doc %.*s", json_cases[i].name, (int)j->doc.len, j->doc.p);
            else
                unit_passed++;
            CHECK(j->shadow != NULL && j->shadow >= s.buf &&
                  j->shadow + j->doc.len <= s.buf + s.used);
            CHECK_INT(json_lookup(j->doc.p, j->doc.len,
                                  str_make(json_cases[i].path, strlen(json_cases[i].path)),
                                  j->shadow, &v, NULL),
                      0);
            CHECK_STR(json_cases[i].name, v, json_cases[i].want);
        }
        free(s.buf);
        free(in);
    }
}

/* The error kind travels with the first error's text, whichever parser (or
 * the framer) set it; pairs past the CEF table are counted in dropped. */
static const struct {
    const char *line;
    int truncated; /* message_mark_truncated after parsing */
    const char *error;
    enum err_kind kind;
} kind_cases[] = {
    {"<13>Oct  2 09:40:00 host app: fine", 0, NULL, ERR_KIND_NONE},
    {"<192>Oct  2 09:40:00 host app: x", 0, "syslog: invalid PRI", ERR_KIND_SYSLOG},
    {"<13>1 2026-13-02T09:40:00Z h a - - - x", 0, "rfc5424: invalid TIMESTAMP", ERR_KIND_RFC5424},
    {"<13>1 2026-10-02T09:40:00Z h a - - [a x=\"1\"][a y=\"2\"] x", 0, "rfc5424: duplicate SD-ID",
     ERR_KIND_RFC5424},
    {"<13>Oct  2 09:40:00 host CEF:0|only|three", 0, "cef: truncated header", ERR_KIND_CEF},
    {"<13>Oct  2 09:40:00 host LEEF:3.0|V|P|1|E|k=v", 0, "leef: unsupported version",
     ERR_KIND_LEEF},
    {"<13>Oct  2 09:40:00 host app: cut he", 1, "frame: truncated", ERR_KIND_FRAME},
    /* the first error keeps its kind */
    {"<13>Oct  2 09:40:00 host CEF:0|only|three", 1, "cef: truncated header", ERR_KIND_CEF},
    {"<192>CEF:0|only|three", 0, "syslog: invalid PRI", ERR_KIND_SYSLOG},
};

static void test_error_kinds(void)
{
    static struct message m;

    for (size_t i = 0; i < sizeof(kind_cases) / sizeof(kind_cases[0]); i++) {
        struct scratch s;
        char *in;
        parse_copy(kind_cases[i].line, &m, &s, &in);
        if (kind_cases[i].truncated)
            message_mark_truncated(&m);
        const char *want = kind_cases[i].error;
        if (want == NULL ? m.error == NULL : (m.error != NULL && strcmp(m.error, want) == 0))
            unit_passed++;
        else
            UNIT_FAIL("%s: error '%s', want '%s'", kind_cases[i].line, m.error ? m.error : "",
                      want ? want : "");
        CHECK_INT(m.error_kind, kind_cases[i].kind);
        CHECK_INT(m.dropped, 0);
        free(s.buf);
        free(in);
    }
}

/* More pairs than the CEF table holds: every one past it counted, the kind
 * CEF; the next message starts from zero. */
static void test_dropped(void)
{
    static struct message m;
    static char line[64 + CEF_MAX_EXT * 16];
    size_t len = (size_t)snprintf(line, sizeof(line), "<13>Oct  2 09:40:00 h CEF:0|V|P|1|1|N|5|");
    for (int i = 0; i < CEF_MAX_EXT + 5; i++)
        len += (size_t)snprintf(line + len, sizeof(line) - len, "k%d=v ", i);
    struct scratch s;
    char *in;

    parse_copy(line, &m, &s, &in);
    CHECK_INT(m.error_kind, ERR_KIND_CEF);
    CHECK_INT(m.dropped, 5);
    CHECK_INT(m.u.cef.n_ext, CEF_MAX_EXT);
    free(s.buf);
    free(in);
    parse_copy("<13>Oct  2 09:40:00 h CEF:0|V|P|1|1|N|5|a=b", &m, &s, &in);
    CHECK_INT(m.error_kind, ERR_KIND_NONE);
    CHECK_INT(m.dropped, 0);
    free(s.buf);
    free(in);
}

int main(void)
{
    test_cases();
    test_scratch_exact();
    test_reuse();
    test_json_payload();
    test_error_kinds();
    test_dropped();
    return unit_report("test_message");
}
