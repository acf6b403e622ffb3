/* The event model: real lines parsed with message_parse, then every field
 * kind read through a compiled name, absent fields (wrong payload, missing
 * header parts, missing keys) and names outside the model rejected. */
#include <stdlib.h>

#include "errors.h"
#include "event.h"
#include "unit.h"

static const char *const lines[] = {
    /* 0: RFC 5424 with SD, CEF payload with labels and a full-name key */
    "<134>1 2026-10-02T09:12:44.120Z splunk-sh01 splunkd 4242 notable [origin@32473 "
    "ip=\"10.0.0.1\" ip=\"10.0.0.2\" sw=\"a\\\"b\"][x@1.2 kv=\"dot\" k.v=\"hidden\"] "
    "CEF:0|Splunk|Enterprise "
    "Security|7.3.2|notable|Removable Media - Rule|7|suser=EXAMPLE\\\\amorgan "
    "cs1Label=search_name cs1=Endpoint - Removable Media Mounted - Rule "
    "destinationUserName=bob",
    /* 1: RFC 3164, LEEF 2.0 */
    "<13>Oct  2 09:31:02 qradar-con LEEF:2.0|IBM|QRadar|7.5.0|Offense Rule Fired|^|"
    "cat=USB Device Policy^usrName=S-1-5-21-1\t^sev=7",
    /* 2: RFC 3164 plain text */
    "<13>Oct 02 09:14:10 LR-DP01 EVID:1000541 AIE: Unknown USB Device Connected | "
    "login=EXAMPLE\\cdiaz",
    /* 3: no header, bare CEF */
    "CEF:0|Vendor|Product|1|100|Name|5|suser=bob",
    /* 4: RFC 5424 with an escaped SD value, MSG a JSON object (a Sentinel alert relayed by
     * Logstash), escapes in strings and keys */
    "<14>1 2026-10-02T09:20:05Z relay logstash - - [x@1 k=\"a\\\"b\"] {\"AlertName\":\"Mass "
    "download\",\"Severity\":3,\"Entities\":[{\"Type\":\"host\"},{\"Type\":\"account\","
    "\"Name\":\"CORP\\\\jdoe\",\"Upn\":\"j\\u00f6e@example.com\"}],\"Clos\\u0065d\":false,"
    "\"Owner\":null,\"a.b\":1,\"CEF\":\"CEF:0|V|P|1|1|N|5|suser=x\"}",
    /* 5: RFC 3164, a JSON array is no JSON payload */
    "<13>Oct  2 09:40:00 host fluent-bit: [{\"a\":1}]",
};

struct field_case {
    int line;
    const char *name;
    const char *want; /* NULL: absent */
};

static const struct field_case cases[] = {
    {0, "raw", NULL}, /* checked separately: the whole line */
    {0, "msg",
     "CEF:0|Splunk|Enterprise Security|7.3.2|notable|Removable Media - Rule|7|suser=EXAMPLE\\\\"
     "amorgan cs1Label=search_name cs1=Endpoint - Removable Media Mounted - Rule "
     "destinationUserName=bob"},
    {0, "syslog.pri", "134"},
    {0, "syslog.facility", "16"},
    {0, "syslog.severity", "6"},
    {0, "syslog.version", "1"},
    {0, "syslog.timestamp", "2026-10-02T09:12:44.120Z"},
    {0, "syslog.hostname", "splunk-sh01"},
    {0, "syslog.app", "splunkd"},
    {0, "syslog.procid", "4242"},
    {0, "syslog.msgid", "notable"},
    {0, "syslog.sd.origin@32473.ip", "10.0.0.1"}, /* first of a repeated param */
    {0, "syslog.sd.origin@32473.sw", "a\"b"},     /* unescaped */
    {0, "syslog.sd.origin@32473.nope", NULL},
    {0, "syslog.sd.x@1.2.kv", "dot"}, /* an SD-ID with dots: split at the last '.' */
    {0, "syslog.sd.x@1.2.k.v", NULL}, /* so a param with a dot reads as id "x@1.2.k" */
    {0, "syslog.sd.nope.ip", NULL},
    {0, "cef.version", "0"},
    {0, "cef.vendor", "Splunk"},
    {0, "cef.product", "Enterprise Security"},
    {0, "cef.device_version", "7.3.2"},
    {0, "cef.signature_id", "notable"},
    {0, "cef.name", "Removable Media - Rule"},
    {0, "cef.severity", "7"},
    {0, "cef.ext.suser", "EXAMPLE\\amorgan"},
    {0, "cef.ext.sourceUserName", "EXAMPLE\\amorgan"},
    {0, "cef.ext.duser", "bob"},
    {0, "cef.ext.destinationUserName", "bob"},
    {0, "cef.ext.cs1", "Endpoint - Removable Media Mounted - Rule"},
    {0, "cef.ext.cs2", NULL},
    {0, "cef.label.search_name", "Endpoint - Removable Media Mounted - Rule"},
    {0, "cef.label.urgency", NULL},
    {0, "leef.vendor", NULL},
    {0, "leef.ext.suser", NULL},
    {1, "syslog.pri", "13"},
    {1, "syslog.facility", "1"},
    {1, "syslog.severity", "5"},
    {1, "syslog.version", NULL},
    {1, "syslog.hostname", "qradar-con"},
    {1, "syslog.procid", NULL},
    {1, "syslog.msgid", NULL},
    {1, "syslog.sd.origin@32473.ip", NULL},
    {1, "leef.version", "2.0"},
    {1, "leef.vendor", "IBM"},
    {1, "leef.product", "QRadar"},
    {1, "leef.product_version", "7.5.0"},
    {1, "leef.event_id", "Offense Rule Fired"},
    {1, "leef.ext.cat", "USB Device Policy"},
    {1, "leef.ext.sev", "7"},
    {1, "leef.ext.usrname", NULL},
    {1, "cef.vendor", NULL},
    {1, "cef.name", NULL},
    {1, "cef.ext.cat", NULL},
    {1, "cef.label.cat", NULL},
    {2, "msg", "EVID:1000541 AIE: Unknown USB Device Connected | login=EXAMPLE\\cdiaz"},
    {2, "syslog.timestamp", "Oct 02 09:14:10"},
    {2, "cef.version", NULL},
    {2, "leef.version", NULL},
    {2, "leef.ext.login", NULL},
    {3, "msg", "CEF:0|Vendor|Product|1|100|Name|5|suser=bob"},
    {3, "syslog.pri", NULL},
    {3, "syslog.facility", NULL},
    {3, "syslog.severity", NULL},
    {3, "syslog.version", NULL},
    {3, "syslog.timestamp", NULL},
    {3, "syslog.hostname", NULL},
    {3, "syslog.app", NULL},
    {3, "cef.ext.sourceUserName", "bob"},
    {3, "cef.vendor", "Vendor"},
    {4, "syslog.sd.x@1.k", "a\"b"},
    {4, "json.AlertName", "Mass download"},
    {4, "json.Severity", "3"},
    {4, "json.Entities.1.Name", "CORP\\jdoe"},
    {4, "json.Entities.1.Upn",
     "j\xC3\xB6"
     "e@example.com"},
    {4, "json.Entities.0.Name", NULL},
    {4, "json.Entities.0", "{\"Type\":\"host\"}"},
    {4, "json.Entities.2", NULL},
    {4, "json.Closed", "false"},
    {4, "json.Owner", NULL},
    {4, "json.a.b", NULL},
    {4, "json.CEF", "CEF:0|V|P|1|1|N|5|suser=x"}, /* data in a JSON string, not a payload */
    {4, "cef.ext.suser", NULL},
    {4, "json.AlertName.x", NULL},
    {0, "json.suser", NULL}, /* json.* on other payloads is absent */
    {2, "json.login", NULL},
    {5, "json.0.a", NULL},
    {5, "msg", "[{\"a\":1}]"},
};

#define N_LINES (sizeof(lines) / sizeof(lines[0]))

static struct message msgs[N_LINES];
static char *copies[N_LINES];
static struct scratch scratches[N_LINES];

/* Parses a heap copy of each line, exactly its length, with a scratch buffer
 * of exactly that size, so sanitizers catch reads past either. */
static void parse_lines(void)
{
    for (size_t i = 0; i < N_LINES; i++) {
        size_t len = strlen(lines[i]);
        copies[i] = malloc(len);
        memcpy(copies[i], lines[i], len);
        scratch_init(&scratches[i], malloc(len), len);
        CHECK_INT(message_parse(copies[i], len, &msgs[i], &scratches[i]), 0);
    }
    CHECK_INT(msgs[0].payload, PAYLOAD_CEF);
    CHECK_INT(msgs[1].payload, PAYLOAD_LEEF);
    CHECK_INT(msgs[2].payload, PAYLOAD_TEXT);
    CHECK_INT(msgs[3].syslog.format, SYSLOG_NONE);
    CHECK_INT(msgs[4].payload, PAYLOAD_JSON);
    CHECK_INT(msgs[5].payload, PAYLOAD_TEXT);
}

/* json.* strings with escapes are decoded on demand into the message's scratch, over
 * their own offsets: reading a field again returns the same bytes at the same place and
 * never uses more scratch, however often mappings read it. */
static void test_json_reads(void)
{
    struct event_field name, upn;
    const struct message *m = &msgs[4];
    size_t used = scratches[4].used;

    CHECK_INT(event_field_compile("json.Entities.1.Name", 20, &name), 0);
    CHECK_INT(event_field_compile("json.Entities.1.Upn", 19, &upn), 0);
    struct str a = event_field_get(&name, m, NULL), b = event_field_get(&upn, m, NULL);
    for (int i = 0; i < 1000; i++) {
        struct str again = event_field_get(&name, m, NULL);
        CHECK(again.p == a.p && again.len == a.len);
    }
    CHECK_STR("after rereads", a, "CORP\\jdoe");
    CHECK_STR("after rereads", b,
              "j\xC3\xB6"
              "e@example.com");
    CHECK(a.p >= scratches[4].buf && a.p + a.len <= scratches[4].buf + scratches[4].used);
    CHECK_INT(scratches[4].used, used);
    CHECK(scratches[4].used <= scratches[4].cap);
}

/* http.query.<name> reads the decoded "name\0value\0" pairs the intake set:
 * names match exactly (case matters), an empty value is present, a name that
 * is only a prefix of another is not it, and syslog messages have none. */
static void test_http_query(void)
{
    static const char pairs[] = "user\0CORP\\jdoe\0ruleName\0USB device\0empty\0\0us\0x";
    struct message m = msgs[0];
    static const struct {
        const char *name;
        const char *want;
    } query_cases[] = {
        {"http.query.user", "CORP\\jdoe"}, {"http.query.ruleName", "USB device"},
        {"http.query.empty", ""},          {"http.query.User", NULL},
        {"http.query.use", NULL},          {"http.query.us", "x"},
        {"http.query.userx", NULL},
    };

    for (size_t i = 0; i < sizeof(query_cases) / sizeof(query_cases[0]); i++) {
        struct event_field f;

        CHECK_INT(event_field_compile(query_cases[i].name, strlen(query_cases[i].name), &f), 0);
        CHECK_STR(query_cases[i].name, event_field_get(&f, &msgs[0], NULL), NULL);
        /* the last value without its NUL: the length bounds every read */
        m.http_query = str_make(pairs, sizeof(pairs) - 1);
        CHECK_STR(query_cases[i].name, event_field_get(&f, &m, NULL), query_cases[i].want);
    }
}

static void free_lines(void)
{
    for (size_t i = 0; i < N_LINES; i++) {
        free(copies[i]);
        free(scratches[i].buf);
    }
}

static void test_fields(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct field_case *c = &cases[i];
        struct event_field f;
        struct event_num num;
        char ctx[128];

        snprintf(ctx, sizeof(ctx), "line %d %s", c->line, c->name);
        if (event_field_compile(c->name, strlen(c->name), &f) != 0) {
            UNIT_FAIL("%s: did not compile", ctx);
            continue;
        }
        struct str v = event_field_get(&f, &msgs[c->line], &num);
        if (f.kind == EVENT_RAW)
            CHECK(v.p == copies[c->line] && v.len == strlen(lines[c->line]));
        else
            CHECK_STR(ctx, v, c->want);
    }
}

/* Which kind and keys a name compiles to; keys point into the name (but a
 * cef.ext key2, from the key table). */
static void test_compile(void)
{
    static const struct {
        const char *name;
        enum event_field_kind kind;
        const char *key, *key2;
    } ok[] = {
        {"raw", EVENT_RAW, NULL, NULL},
        {"syslog.msgid", EVENT_SYSLOG_MSGID, NULL, NULL},
        {"syslog.sd.origin@32473.ip", EVENT_SYSLOG_SD, "origin@32473", "ip"},
        {"syslog.sd.a.b.c", EVENT_SYSLOG_SD, "a.b", "c"},
        /* cef.ext: key2 is the key's other name, resolved at compile time */
        {"cef.ext.suser", EVENT_CEF_EXT, "suser", "sourceUserName"},
        {"cef.ext.sourceUserName", EVENT_CEF_EXT, "sourceUserName", "suser"},
        {"cef.ext.User_Name", EVENT_CEF_EXT, "User_Name", NULL},
        {"cef.ext.a.b", EVENT_CEF_EXT, "a.b", NULL},
        {"cef.label.search_name", EVENT_CEF_LABEL, "search_name", NULL},
        {"leef.ext.usrName", EVENT_LEEF_EXT, "usrName", NULL},
        {"leef.event_id", EVENT_LEEF_EVENT_ID, NULL, NULL},
        {"json.result.user", EVENT_JSON, "result.user", NULL},
        {"json.dataset.0.user_name", EVENT_JSON, "dataset.0.user_name", NULL},
        {"json.x", EVENT_JSON, "x", NULL},
        {"http.source", EVENT_HTTP_SOURCE, NULL, NULL},
        {"http.query.ruleName", EVENT_HTTP_QUERY, "ruleName", NULL},
        {"http.query.a.b", EVENT_HTTP_QUERY, "a.b", NULL},
    };
    static const char *const bad[] = {
        "",
        "foo",
        "cef.",
        "cef.ext.",
        "cef.label.",
        "cef.bogus",
        "cef.ext",
        "leef.ext.",
        "leef.",
        "syslog.",
        "syslog.sd.",
        "syslog.sd.x",
        "syslog.sd..ip",
        "syslog.sd.x.",
        "syslog.sd.x.y.",
        "RAW",
        "msg ",
        "syslog.pri.x",
        "cef.vendorx",
        "cefext.suser",
        "leef.ext",
        "syslog.sd",
        "syslog.host",
        "json.",
        "json",
        "json..a",
        "json.a..b",
        "json.a.",
        "json.a.b.",
        "http.",
        "http.sourcex",
        "http.query.",
        "http.query",
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct event_field f;
        int rc = event_field_compile(ok[i].name, strlen(ok[i].name), &f);
        CHECK_INT(rc, 0);
        CHECK_INT(f.kind, ok[i].kind);
        CHECK_STR(ok[i].name, f.key, ok[i].key);
        CHECK_STR(ok[i].name, f.key2, ok[i].key2);
        if (f.key.p != NULL)
            CHECK(f.key.p >= ok[i].name && f.key.p < ok[i].name + strlen(ok[i].name));
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct event_field f;
        int rc = event_field_compile(bad[i], strlen(bad[i]), &f);
        if (rc != ERR_INVALID)
            UNIT_FAIL("'%s': rc %d, want ERR_INVALID", bad[i], rc);
        else
            unit_passed++;
    }
    /* the length bounds the name: "msgX" cut to 3 bytes is "msg" */
    struct event_field f;
    CHECK_INT(event_field_compile("msgX", 3, &f), 0);
    CHECK_INT(f.kind, EVENT_MSG);
    CHECK_INT(event_field_compile("cef.ext.suser", 8, &f), ERR_INVALID);
}

/* cef.ext by either name, through compiled fields and cef_get_pair: the
 * last pair written under either name wins, and the read uses the names
 * compiled into the field (a hand-made field without key2 finds only its
 * key: no table search at read time). */
static void test_cef_names(void)
{
    static const struct {
        const char *line, *name, *want;
    } named[] = {
        {"CEF:0|V|P|1|1|N|5|sourceUserName=full", "cef.ext.suser", "full"},
        {"CEF:0|V|P|1|1|N|5|suser=short", "cef.ext.sourceUserName", "short"},
        {"CEF:0|V|P|1|1|N|5|suser=a sourceUserName=b", "cef.ext.suser", "b"},
        {"CEF:0|V|P|1|1|N|5|suser=a sourceUserName=b", "cef.ext.sourceUserName", "b"},
        {"CEF:0|V|P|1|1|N|5|sourceUserName=a suser=b", "cef.ext.sourceUserName", "b"},
        {"CEF:0|V|P|1|1|N|5|destinationUserName=d suser=s", "cef.ext.duser", "d"},
        {"CEF:0|V|P|1|1|N|5|destinationUserName=d suser=s", "cef.ext.sourceUserName", "s"},
        {"CEF:0|V|P|1|1|N|5|suser=s", "cef.ext.SUSER", NULL}, /* names are case-sensitive */
        {"CEF:0|V|P|1|1|N|5|User_Name=u", "cef.ext.User_Name", "u"},
        {"CEF:0|V|P|1|1|N|5|User_Name=u", "cef.ext.suser", NULL},
    };

    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        struct message m;
        struct event_field f;
        char buf[128];
        struct scratch sc;

        scratch_init(&sc, buf, sizeof(buf));
        CHECK_INT(message_parse(named[i].line, strlen(named[i].line), &m, &sc), 0);
        CHECK_INT(event_field_compile(named[i].name, strlen(named[i].name), &f), 0);
        CHECK_STR(named[i].name, event_field_get(&f, &m, NULL), named[i].want);
    }

    const char *line = "CEF:0|V|P|1|1|N|5|sourceUserName=full x=1 y=2";
    struct message m;
    char buf[128];
    struct scratch sc;

    scratch_init(&sc, buf, sizeof(buf));
    CHECK_INT(message_parse(line, strlen(line), &m, &sc), 0);
    struct event_field key_only = {EVENT_CEF_EXT, STR_LIT("suser"), STR_ABSENT};
    CHECK_STR("suser without key2", event_field_get(&key_only, &m, NULL), NULL);
    struct event_field any_pair = {EVENT_CEF_EXT, STR_LIT("x"), STR_LIT("y")};
    CHECK_STR("x or y", event_field_get(&any_pair, &m, NULL), "2");
    CHECK_STR("pair x, y", cef_get_pair(&m.u.cef, STR_LIT("x"), STR_LIT("y")), "2");
    CHECK_STR("pair y, absent", cef_get_pair(&m.u.cef, STR_LIT("y"), STR_ABSENT), "2");
    CHECK_STR("pair x, absent", cef_get_pair(&m.u.cef, STR_LIT("x"), STR_ABSENT), "1");
    CHECK_STR("pair z, absent", cef_get_pair(&m.u.cef, STR_LIT("z"), STR_ABSENT), NULL);
    CHECK_STR("other of suser", cef_other_name(STR_LIT("suser")), "sourceUserName");
    CHECK_STR("other of sourceUserName", cef_other_name(STR_LIT("sourceUserName")), "suser");
    CHECK_STR("other of x", cef_other_name(STR_LIT("x")), NULL);
}

int main(void)
{
    parse_lines();
    test_fields();
    test_json_reads();
    test_http_query();
    test_compile();
    test_cef_names();
    free_lines();
    return unit_report("test_event");
}
