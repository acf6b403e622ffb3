/* LEEF parser: {input, expected header, delimiter and attributes} rows
 * covering spec/leef.md, the LEEF items of spec/edge_cases.md, the
 * conformance vectors' tricky cases and every LEEF line of ../shared/samples;
 * then leef_find, leef_get, limits and pathological input. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errors.h"
#include "leef.h"
#include "unit.h"

#define MAX_PAIRS 24

struct leef_case {
    const char *name;
    const char *in;    /* starts with "LEEF:" or carries a prefix leef_find skips */
    const char *error; /* expected out->error, NULL for none */
    int rc;
    const char *hdr[5];    /* version, vendor, product, product_version, event_id */
    const char *delimiter; /* the delimiter field as sent; NULL = absent */
    char delim;            /* the separator in effect */
    const char *ext[2 * MAX_PAIRS + 1]; /* key, value, ..., NULL: exactly these pairs */
};

#define HDR1 {"1.0", "Vendor", "Product", "1.0", "Event"}
#define HDR2 {"2.0", "Vendor", "Product", "1.0", "Event"}
#define BAD_DELIM "leef: bad delimiter field"
#define TRUNCATED "leef: truncated header"
#define NOHDR {NULL, NULL, NULL, NULL, NULL}

static const struct leef_case cases[] = {
    /* LEEF 1.0: TAB */
    {"1.0 TAB", "LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=10.50.1.1\tdst=2.10.20.20\tsev=5",
     NULL, 0, {"1.0", "Microsoft", "MSExchange", "4.0 SP1", "15345"}, NULL, '\t',
     {"src", "10.50.1.1", "dst", "2.10.20.20", "sev", "5", NULL}},
    {"1.0 header only", "LEEF:1.0|Vendor|Product|1.0|Event|", NULL, 0, HDR1, NULL, '\t', {NULL}},
    {"1.0 header only, no trailing pipe", "LEEF:1.0|Vendor|Product|1.0|Event", NULL, 0, HDR1,
     NULL, '\t', {NULL}},
    {"spaces and = in values; empty values",
     "LEEF:1.0|Vendor|Product|1.0|Event|msg=This is a message\turl=http://e.com?foo=bar\t"
     "key1=\tsql=a = b",
     NULL, 0, HDR1, NULL, '\t',
     {"msg", "This is a message", "url", "http://e.com?foo=bar", "key1", "", "sql", "a = b",
      NULL}},
    {"leading, trailing and doubled TABs skipped",
     "LEEF:1.0|Vendor|Product|1.0|Event|\tkey1=val1\t\tkey2=val2\t", NULL, 0, HDR1, NULL, '\t',
     {"key1", "val1", "key2", "val2", NULL}},
    {"whitespace around keys and values trimmed; IBM's 'file name =' key",
     "LEEF:1.0|Vendor|Product|1.0|Event|  key1=val1  \t  file name =x y ", NULL, 0, HDR1, NULL,
     '\t', {"key1", "val1", "file name", "x y", NULL}},
    {"tokens without a key are skipped",
     "LEEF:1.0|Vendor|Product|1.0|Event|key1=val1\tkeyonly\t=nokey\tkey2=val2", NULL, 0, HDR1,
     NULL, '\t', {"key1", "val1", "key2", "val2", NULL}},
    {"attributes with no key=value at all are an error",
     "LEEF:1.0|Tenzir|Tenzir|4.12|42|just some random junk", "leef: attributes are not key=value",
     ERR_INVALID, {"1.0", "Tenzir", "Tenzir", "4.12", "42"}, NULL, '\t', {NULL}},
    {"| inside a TAB-separated value without key= after it stays",
     "LEEF:1.0|Vendor|Product|1.0|Event|msg=a|b|c d=\tx=1", NULL, 0, HDR1, NULL, '\t',
     {"msg", "a|b|c d=", "x", "1", NULL}},
    {"header whitespace kept, LEEF defines no escaping",
     "LEEF:1.0| Vendor |Pro\\duct|1.0|Ev\\|usr=EXAMPLE\\gmensah", NULL, 0,
     {"1.0", " Vendor ", "Pro\\duct", "1.0", "Ev\\"}, NULL, '\t', {"usr", "EXAMPLE\\gmensah", NULL}},
    {"edge 11: PAN-OS 1.0 separates with |",
     "LEEF:1.0|Palo Alto Networks|PAN-OS Syslog Integration|11.1.6-h14|allow|cat=TRAFFIC|"
     "ReceiveTime=2025/09/17 13:45:34|usrName=|SourceUser=|devTime=Sep 17 2025 11:45:34 GMT|"
     "Flags=0x0|TunnelType=N/A",
     NULL, 0, {"1.0", "Palo Alto Networks", "PAN-OS Syslog Integration", "11.1.6-h14", "allow"},
     NULL, '|',
     {"cat", "TRAFFIC", "ReceiveTime", "2025/09/17 13:45:34", "usrName", "", "SourceUser", "",
      "devTime", "Sep 17 2025 11:45:34 GMT", "Flags", "0x0", "TunnelType", "N/A", NULL}},
    {"edge 11: CyberArk PTA mixes | and TAB",
     "LEEF:1.0|CyberArk|PTA|14.0|1|Cat=Suspected credentials theft|sev=8|src=src1\t"
     "userName=mike\tdst=192.168.0.1\tPTALink=https://1.1.1.1/incidents/52b0",
     NULL, 0, {"1.0", "CyberArk", "PTA", "14.0", "1"}, NULL, '\t',
     {"Cat", "Suspected credentials theft", "sev", "8", "src", "src1", "userName", "mike", "dst",
      "192.168.0.1", "PTALink", "https://1.1.1.1/incidents/52b0", NULL}},
    {"1.0 version without minor", "LEEF:1|V|P|1.0|E|a=b", NULL, 0, {"1", "V", "P", "1.0", "E"},
     NULL, '\t', {"a", "b", NULL}},

    /* LEEF 2.0: delimiter field (edge 10) */
    {"2.0 caret", "LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^dst=10.0.0.5^sev=5", NULL,
     0, {"2.0", "Lancope", "StealthWatch", "1.0", "41"}, "^", '^',
     {"src", "10.0.1.8", "dst", "10.0.0.5", "sev", "5", NULL}},
    {"2.0 x5E", "LEEF:2.0|Vendor|Product|1.0|Event|x5E|a=1^b=2", NULL, 0, HDR2, "x5E", '^',
     {"a", "1", "b", "2", NULL}},
    {"2.0 0x5e", "LEEF:2.0|Vendor|Product|1.0|Event|0x5e|a=1^b=2", NULL, 0, HDR2, "0x5e", '^',
     {"a", "1", "b", "2", NULL}},
    {"2.0 0X5E", "LEEF:2.0|Vendor|Product|1.0|Event|0X5E|a=1^b=2", NULL, 0, HDR2, "0X5E", '^',
     {"a", "1", "b", "2", NULL}},
    {"2.0 0x09", "LEEF:2.0|Vendor|Product|1.0|Event|0x09|a=1\tb=2", NULL, 0, HDR2, "0x09", '\t',
     {"a", "1", "b", "2", NULL}},
    {"2.0 0x9: IBM allows 1-4 hex digits (OTel rejects)",
     "LEEF:2.0|Vendor|Product|1.0|Event|0x9|a=1\tb=2", NULL, 0, HDR2, "0x9", '\t',
     {"a", "1", "b", "2", NULL}},
    {"2.0 four hex digits", "LEEF:2.0|Vendor|Product|1.0|Event|x005E|a=1^b=2", NULL, 0, HDR2,
     "x005E", '^', {"a", "1", "b", "2", NULL}},
    {"2.0 empty delimiter field is TAB", "LEEF:2.0|Vendor|Product|1.0|Event||a=1\tb=2", NULL, 0,
     HDR2, "", '\t', {"a", "1", "b", "2", NULL}},
    {"2.0 single character x is a delimiter", "LEEF:2.0|Vendor|Product|1.0|Event|x|a=1xb=2",
     NULL, 0, HDR2, "x", 'x', {"a", "1", "b", "2", NULL}},
    {"2.0 x7C: | separates attributes (PAN-OS template)",
     "LEEF:2.0|Palo Alto Networks|PAN-OS Syslog Integration|4.0|$result|x7C|cat=$type|"
     "usrName=$admin|msg=$cmd",
     NULL, 0, {"2.0", "Palo Alto Networks", "PAN-OS Syslog Integration", "4.0", "$result"}, "x7C",
     '|', {"cat", "$type", "usrName", "$admin", "msg", "$cmd", NULL}},
    {"2.0 doubled delimiter skipped", "LEEF:2.0|Vendor|Product|1.0|Event|^|key1=val1^^key2=val2",
     NULL, 0, HDR2, "^", '^', {"key1", "val1", "key2", "val2", NULL}},
    {"2.0 header only", "LEEF:2.0|Vendor|Product|1.0|Event|^|", NULL, 0, HDR2, "^", '^', {NULL}},
    {"2.0 no pipe after the delimiter", "LEEF:2.0|Vendor|Product|1.0|Event|^", NULL, 0, HDR2, "^",
     '^', {NULL}},
    {"2.0 no delimiter field at all", "LEEF:2.0|Vendor|Product|1.0|Event", NULL, 0, HDR2, NULL,
     '\t', {NULL}},
    {"edge 9: 2.0 without the delimiter field, | in a value",
     "LEEF:2.0|Microsoft|MSExchange|4.0 SP1|15345|foo=bar\tbar=baz|\tbaz=tik=tak", NULL, 0,
     {"2.0", "Microsoft", "MSExchange", "4.0 SP1", "15345"}, NULL, '\t',
     {"foo", "bar", "bar", "baz|", "baz", "tik=tak", NULL}},
    {"2.0: | is not a separator without x7C", "LEEF:2.0|Vendor|Product|1.0|Event|^|a=1|b=2^c=3",
     NULL, 0, HDR2, "^", '^', {"a", "1|b=2", "c", "3", NULL}},
    {"0x0909 does not fit a byte", "LEEF:2.0|Vendor|Product|1.0|Event|0x0909|key=value",
     BAD_DELIM, ERR_INVALID, HDR2, NULL, '\t', {NULL}},
    {"0xGG is not hex", "LEEF:2.0|Vendor|Product|1.0|Event|0xGG|key=value", BAD_DELIM,
     ERR_INVALID, HDR2, NULL, '\t', {NULL}},
    {"0x without digits", "LEEF:2.0|Vendor|Product|1.0|Event|0x|key=value", BAD_DELIM,
     ERR_INVALID, HDR2, NULL, '\t', {NULL}},
    {"five hex digits", "LEEF:2.0|Vendor|Product|1.0|Event|x0005E|key=value", BAD_DELIM,
     ERR_INVALID, HDR2, NULL, '\t', {NULL}},
    {"non-ASCII delimiter", "LEEF:2.0|Vendor|Product|1.0|Event|xA6|key=value", BAD_DELIM,
     ERR_INVALID, HDR2, NULL, '\t', {NULL}},
    {"NUL delimiter", "LEEF:2.0|Vendor|Product|1.0|Event|x00|key=value", BAD_DELIM, ERR_INVALID,
     HDR2, NULL, '\t', {NULL}},
    {"multi-character delimiter", "LEEF:2.0|Vendor|Product|1.0|Event|^^|key=value", BAD_DELIM,
     ERR_INVALID, HDR2, NULL, '\t', {NULL}},

    /* header errors */
    {"3.0 is unsupported", "LEEF:3.0|Vendor|Product|1.0|EventID|key=value",
     "leef: unsupported version", ERR_INVALID, {"3.0", "Vendor", "Product", "1.0", "EventID"},
     NULL, '\t', {NULL}},
    {"abc is unsupported", "LEEF:abc|Vendor|Product|1.0|EventID|key=value",
     "leef: unsupported version", ERR_INVALID, {"abc", "Vendor", "Product", "1.0", "EventID"},
     NULL, '\t', {NULL}},
    {"1.x must be digits", "LEEF:1.|V|P|1|E|a=b", "leef: unsupported version", ERR_INVALID,
     {"1.", "V", "P", "1", "E"}, NULL, '\t', {NULL}},
    {"only a vendor", "LEEF:1.0|OnlyVendor", TRUNCATED, ERR_INVALID,
     {"1.0", "OnlyVendor", NULL, NULL, NULL}, NULL, '\t', {NULL}},
    {"three fields", "LEEF:1.0|Vendor|Product|", TRUNCATED, ERR_INVALID,
     {"1.0", "Vendor", "Product", "", NULL}, NULL, '\t', {NULL}},
    {"2.0 four fields", "LEEF:2.0|Vendor|Product|1.0", TRUNCATED, ERR_INVALID,
     {"2.0", "Vendor", "Product", "1.0", NULL}, NULL, '\t', {NULL}},
    {"no header at all", "LEEF:1.0", TRUNCATED, ERR_INVALID, {"1.0", NULL, NULL, NULL, NULL},
     NULL, '\t', {NULL}},
    {"no LEEF: prefix", "This is just plain text", "leef: missing LEEF: prefix", ERR_INVALID,
     NOHDR, NULL, '\t', {NULL}},
    {"a trailing CRLF is a frame terminator", "LEEF:1.0|Vendor|Product|1.0|Event|a=1\r\n", NULL,
     0, HDR1, NULL, '\t', {"a", "1", NULL}},
    {"duplicate keys are all kept", "LEEF:1.0|Vendor|Product|1.0|Event|a=1\ta=2", NULL, 0, HDR1,
     NULL, '\t', {"a", "1", "a", "2", NULL}},

    /* syslog prefixes (leef_find) and ../shared/samples */
    {"IBM Guardium: 3164 tag before LEEF:",
     "<30>Aug 19 12:33:31 ibm.guardium.test guard_sender[4486]: LEEF:1.0|IBM|Guardium|8.0|Login "
     "failures|ruleID=20026\truleDesc=Login failures\tdevTime=2013-8-19 6:34:41\tusrName=\t"
     "error=08001-XXXX:30082-01",
     NULL, 0, {"1.0", "IBM", "Guardium", "8.0", "Login failures"}, NULL, '\t',
     {"ruleID", "20026", "ruleDesc", "Login failures", "devTime", "2013-8-19 6:34:41", "usrName",
      "", "error", "08001-XXXX:30082-01", NULL}},
    {"sample dtex.log 3",
     "<14>1 2026-10-02T09:22:00Z dtex-intercept - - - - LEEF:2.0|Dtex|InTERCEPT|6.3|Alert|^|"
     "cat=Obfuscation (Unusual File Deletes)^sev=8^usrName=EXAMPLE\\gmensah^riskScore=0.5^"
     "externalId=82d47a730e8a91cb",
     NULL, 0, {"2.0", "Dtex", "InTERCEPT", "6.3", "Alert"}, "^", '^',
     {"cat", "Obfuscation (Unusual File Deletes)", "sev", "8", "usrName", "EXAMPLE\\gmensah",
      "riskScore", "0.5", "externalId", "82d47a730e8a91cb", NULL}},
    {"sample qradar.log 1",
     "<13>Oct  2 09:31:02 qradar-con LEEF:1.0|IBM|QRadar|7.5.0|Offense Rule Fired|"
     "devTime=Oct 02 2026 09:31:00\tdevTimeFormat=MMM dd yyyy HH:mm:ss\t"
     "usrName=S-1-5-21-1004336348-1177238915-682003330-1109\tcat=USB Device Policy\tsev=7\t"
     "identSrc=10.20.3.41",
     NULL, 0, {"1.0", "IBM", "QRadar", "7.5.0", "Offense Rule Fired"}, NULL, '\t',
     {"devTime", "Oct 02 2026 09:31:00", "devTimeFormat", "MMM dd yyyy HH:mm:ss", "usrName",
      "S-1-5-21-1004336348-1177238915-682003330-1109", "cat", "USB Device Policy", "sev", "7",
      "identSrc", "10.20.3.41", NULL}},
    {"sample qradar.log 2",
     "<133>1 2026-10-02T09:31:02.520Z qradar-con - - - - LEEF:2.0|IBM|QRadar|7.5.0|Offense Rule "
     "Fired|x5E|devTime=2026-10-02T09:31:00.000+0000^usrName=jsato_partner.example#EXT#@"
     "example.onmicrosoft.com^cat=Sensitive Share Access^sev=6",
     NULL, 0, {"2.0", "IBM", "QRadar", "7.5.0", "Offense Rule Fired"}, "x5E", '^',
     {"devTime", "2026-10-02T09:31:00.000+0000", "usrName",
      "jsato_partner.example#EXT#@example.onmicrosoft.com", "cat", "Sensitive Share Access",
      "sev", "6", NULL}},
};

static struct str error_str(const char *e)
{
    return e != NULL ? str_make(e, strlen(e)) : STR_ABSENT;
}

static int inside(struct str s, const char *in, size_t len)
{
    return s.p == NULL || (s.p >= in && s.p + s.len <= in + len);
}

/* Parses text (after leef_find) from an exactly-sized heap copy so
 * sanitizers see any read past the end. The caller frees *copy. */
static int parse_copy(const char *text, struct leef_msg *m, char **copy)
{
    size_t len = strlen(text);
    char *in = malloc(len ? len : 1);

    memcpy(in, text, len);
    long at = leef_find(in, len);
    size_t off = at < 0 ? 0 : (size_t)at;
    *copy = in;
    return leef_parse(in + off, len - off, m);
}

static struct leef_msg msg; /* 4 KB: keep it off the stack */

static void test_cases(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct leef_case *c = &cases[i];
        char *in;
        int rc = parse_copy(c->in, &msg, &in);
        size_t len = strlen(c->in), n = 0;
        const struct str hdr[] = {msg.version, msg.vendor, msg.product, msg.product_version,
                                  msg.event_id};

        CHECK_INT(rc, c->rc);
        CHECK_STR(c->name, error_str(msg.error), c->error);
        for (size_t f = 0; f < 5; f++) {
            CHECK_STR(c->name, hdr[f], c->hdr[f]);
            CHECK(inside(hdr[f], in, len));
        }
        CHECK_STR(c->name, msg.delimiter, c->delimiter);
        CHECK(inside(msg.delimiter, in, len));
        CHECK_INT(msg.delim, c->delim);
        while (c->ext[2 * n] != NULL)
            n++;
        CHECK_INT(msg.n_ext, n);
        for (size_t k = 0; k < n && k < msg.n_ext; k++) {
            CHECK_STR(c->name, msg.ext[k].key, c->ext[2 * k]);
            CHECK_STR(c->name, msg.ext[k].value, c->ext[2 * k + 1]);
            CHECK(inside(msg.ext[k].key, in, len) && inside(msg.ext[k].value, in, len));
        }
        free(in);
    }
}

static const struct {
    const char *in;
    long at;
} find_cases[] = {
    {"LEEF:1.0|V|P|1|E|", 0},
    {"<13>Jan 18 11:07:53 192.168.1.1 LEEF:1.0|Microsoft|", 32},
    {"zscaler-nss: LEEF:1.0|Z|", 13},
    {"xLEEF:1.0| LEEF:2.0|", 11}, /* not after a space: skipped */
    /* a version digit must follow: prose that says "LEEF:" is no payload */
    {"app: config key LEEF: disabled", -1},
    {"LEEF:x LEEF:2|", 7},
    {"LEEF:", -1},
    {"LEEF", -1},
    {"CEF:0|Vendor|Product|1.0|100|Event Name|5|src=1.2.3.4", -1},
    {"", -1},
};

static void test_find(void)
{
    for (size_t i = 0; i < sizeof(find_cases) / sizeof(find_cases[0]); i++)
        CHECK_INT(leef_find(find_cases[i].in, strlen(find_cases[i].in)), find_cases[i].at);
}

static const struct {
    const char *in;
    const char *key;
    const char *want;
} get_cases[] = {
    {"LEEF:1.0|V|P|1|E|usrName=bob\tcat=x", "usrName", "bob"},
    {"LEEF:1.0|V|P|1|E|usrName=first\tusrName=second", "usrName", "first"},
    {"LEEF:1.0|V|P|1|E|usrName=\tcat=x", "usrName", ""},
    {"LEEF:1.0|V|P|1|E|usrName=bob", "usrname", NULL},
    {"LEEF:1.0|V|P|1|E|usrName=bob", "cat", NULL},
};

static void test_get(void)
{
    for (size_t i = 0; i < sizeof(get_cases) / sizeof(get_cases[0]); i++) {
        char *in;
        parse_copy(get_cases[i].in, &msg, &in);
        struct str key = str_make(get_cases[i].key, strlen(get_cases[i].key));
        CHECK_STR(get_cases[i].in, leef_get(&msg, key), get_cases[i].want);
        free(in);
    }
}

static char big[1 << 20];

static void test_limit(void)
{
    size_t len = (size_t)snprintf(big, sizeof(big), "LEEF:2.0|V|P|1|E|^|");
    for (int i = 0; i < 200; i++)
        len += (size_t)snprintf(big + len, sizeof(big) - len, "k%d=v%d^", i, i);
    CHECK_INT(leef_parse(big, len, &msg), ERR_LIMIT);
    CHECK_STR("limit", error_str(msg.error), "leef: too many attributes");
    CHECK_INT(msg.n_ext, LEEF_MAX_EXT);
    CHECK_STR("limit", msg.ext[LEEF_MAX_EXT - 1].key, "k127");
    CHECK_STR("limit", msg.ext[LEEF_MAX_EXT - 1].value, "v127");
}

/* Pathological input must take linear time (see test_cef.c). No unit makes
 * key=value pairs, so LEEF_MAX_EXT never stops the parse early: all of the
 * 1 MB is parsed. "|a.b|c\t" walks the LEEF 1.0 "|key=" lookahead at every
 * pipe without ever splitting there. */
static void test_linear(void)
{
    static const char *const units[] = {"|", "|a", "=", "\t", "|a.b|c\t", "| ", "x", "=\t"};
    static const char *const heads[] = {"LEEF:1.0|V|P|1|E|", "LEEF:2.0|V|P|1|E|"};
    for (size_t h = 0; h < 2; h++) {
        for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
            size_t n = strlen(units[u]), len = (size_t)snprintf(big, sizeof(big), "%s", heads[h]);
            while (len + n < sizeof(big)) {
                memcpy(big + len, units[u], n);
                len += n;
            }
            clock_t t0 = clock();
            leef_parse(big, len, &msg);
            leef_find(big, len);
            double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
            CHECK(msg.n_ext < LEEF_MAX_EXT);
            if (secs > 5.0)
                UNIT_FAIL("unit '%s': %.1f s for 1 MB", units[u], secs);
            else
                unit_passed++;
        }
    }
}

int main(void)
{
    test_cases();
    test_find();
    test_get();
    test_limit();
    test_linear();
    return unit_report("test_leef");
}
