/* The mapping engine: every condition test both ways, every source form,
 * the decision rules (first non-empty source, trimming, event default,
 * user_kind, continue, first match wins, no rule, no user, too many
 * decisions), explain lines, load errors with their file and key path, glob
 * handling, and a catastrophic regex stopped by the PCRE2 limits. Mapping
 * files are written into a temporary folder; messages are real sample lines
 * parsed with message_parse. In the mapping texts below ' stands for " (the
 * files are written with it swapped), so the JSON stays readable. */
#include <limits.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

#include "errors.h"
#include "decide/mapping.h"
#include "message.h"
#include "unit.h"

#define SPLUNK_CEF                                                                                 \
    "<134>1 2026-10-02T09:12:44.120Z splunk-sh01 splunkd - - - CEF:0|Splunk|Enterprise "           \
    "Security|7.3.2|notable|Endpoint - Removable Media Mounted - Rule|7|rt=1791018764000 "         \
    "suser=EXAMPLE\\\\amorgan cs1Label=search_name cs1=Endpoint - Removable Media Mounted - Rule " \
    "cs2Label=urgency cs2=high dvchost=LT-2231.example.com"
#define SPLUNK_RULE "Endpoint - Removable Media Mounted - Rule"
#define SPLUNK_RAW                                                                                 \
    "<13>Oct  2 09:13:05 splunk-hf01 search_name=\"Web - Malware Download Detected - Rule\" "      \
    "user=\"bkhan@example.com\" src_user=\"EXAMPLE\\bkhan\" urgency=critical "                     \
    "orig_time=1791018785"
#define LOGRHYTHM                                                                                  \
    "<13>Oct 02 09:14:10 LR-DP01 EVID:1000541 AIE: Unknown USB Device Connected | "                \
    "login=EXAMPLE\\cdiaz | account= | sip=10.20.3.41 | dname=WS-0087 | commonevent=AIE: Unknown " \
    "USB Device Connected | riskrating=7"
#define LOGRHYTHM_NO_LOGIN                                                                         \
    "<13>Oct 02 09:14:10 LR-DP01 EVID:1000541 AIE: Unknown USB Device Connected | login= | "       \
    "account=EXAMPLE\\jdoe | sip=10.20.3.41"
#define DTEX_USB                                                                                   \
    "<14>Oct 02 09:21:22 dtex-intercept "                                                          \
    "CEF:0|Dtex|InTERCEPT|6.3|DeviceActivity|RemovableMediaConnected|5|start=1791019282481 "       \
    "User_Name=EXAMPLE\\\\fnovak Device_Name=EXAMPLE\\\\WS-0101 Media_Type=USB Mass Storage"
#define DTEX_LOGON                                                                                 \
    "<14>Oct 02 09:21:29 dtex-intercept "                                                          \
    "CEF:0|Dtex|InTERCEPT|6.3|SessionActivity|SessionLogon|3|start=1791019289017 "                 \
    "User_Name=EXAMPLE\\\\fnovak Device_Name=EXAMPLE\\\\WS-0101 Process_Name=explorer.exe"
#define QRADAR                                                                                     \
    "<13>Oct  2 09:31:02 qradar-con LEEF:1.0|IBM|QRadar|7.5.0|Offense Rule Fired|devTime=Oct 02 "  \
    "2026 09:31:00\tdevTimeFormat=MMM dd yyyy "                                                    \
    "HH:mm:ss\tusrName=S-1-5-21-1004336348-1177238915-682003330-1109\tcat=USB Device "             \
    "Policy\tsev=7\tidentSrc=10.20.3.41"
#define SENTINEL                                                                                   \
    "<14>1 2026-10-02T09:20:05Z sentinel-relay sentinel - - - CEF:0|Microsoft|Sentinel|1.0|"       \
    "ScheduledAlert|Mass download by a single user|5|suser=e.o'neil@example.com "                  \
    "suid=7d1a3f2b-9c1e-4e55-9a0a-2b1c0d9e8f70 cs1Label=AlertDisplayName cs1=Mass download by a "  \
    "single user"
#define CISCO                                                                                      \
    "<134>1 2026-10-02T09:40:01Z fw01 asa - - - CEF:0|Cisco|ASA|9.18|106023|Deny tcp|5|"           \
    "src=10.1.1.1 dst=10.2.2.2 dpt=445 act=Deny"
#define A10 "aaaaaaaaaa"
#define A79 A10 A10 A10 A10 A10 A10 A10 "aaaaaaaaa"
/* A name whose byte 80 is inside a two-byte character. */
#define LONG_UTF8_NAME       "CEF:0|Splunk|ES|1.0|notable|" A79 "\xc3\xa9" A10 "|5|suser=jdoe"
#define NO_HEADER_EMPTY_NAME "CEF:0|Splunk|ES|1.0|notable||5|suser=jdoe"
/* A user that would forge a second "user" on an explain line that did not
 * escape quotes: x" (rule[0] fake), user "admin\z */
#define FORGED_USER "CEF:0|Splunk|ES|1.0|notable|R|5|suser=x\" (rule[0] fake), user \"admin\\\\z"
/* suser holds control characters (not usable); duser is fine. */
#define CONTROL_USER                                                                               \
    "CEF:0|Splunk|ES|1.0|notable|R|5|suser=bad\x01"                                                \
    "user duser=good@example.com"
#define DEL_USER                                                                                   \
    "CEF:0|Splunk|ES|1.0|notable|R|5|suser=bad\x7f"                                                \
    "user"
/* C1 controls are valid UTF-8 but act as controls: NEL (U+0085) and CSI
 * (U+009B); U+00A0, the first character past them, is an ordinary one. */
#define C1_NEL_USER                                                                                \
    "CEF:0|Splunk|ES|1.0|notable|R|5|suser=bad\xc2\x85"                                            \
    "user duser=good@example.com"
#define C1_CSI_USER "CEF:0|Splunk|ES|1.0|notable|R|5|suser=bad\xc2\x9b[2Juser"
#define NBSP_USER   "CEF:0|Splunk|ES|1.0|notable|R|5|suser=a\xc2\xa0z"
/* A rule that would forge a second value on a log line that did not escape
 * quotes: R" (rule[0]), user "evil */
#define FORGED_RULE "CEF:0|Splunk|ES|1.0|notable|R\" (rule[0]), user \"evil|5|act=x"

/* One mapping file; MAP builds one mapping. */
#define FILE(maps)     "{'mappings': [" maps "]}"
#define MAP(name, ...) "{'name': '" name "', " __VA_ARGS__ "}"
#define SPLUNK_SOURCES                                                                             \
    "'rule': [{'field': 'cef.label.search_name'}, {'field': 'cef.name'}], "                        \
    "'user': [{'field': 'cef.ext.suser'}, {'field': 'cef.ext.duser'}]"
#define WHEN_SPLUNK "'when': [{'field': 'cef.vendor', 'equals': 'Splunk'}], "
#define DTEX_USER   "'user': {'field': 'cef.ext.User_Name'}"
#define WHEN_SPLUNK_2                                                                              \
    "'when': [{'field': 'cef.vendor', 'equals': 'Splunk'}, {'field': 'cef.product', 'equals': "    \
    "'ES'}], "
#define WHEN_DTEX "'when': [{'field': 'cef.vendor', 'equals': 'Dtex'}], "
#define USB_TABLE "'table': {'RemovableMediaConnected': 'Unknown USB Device'}"
#define LR_USER_DUPS                                                                               \
    "'user': {'field': 'msg', 'regex': 'login=(?<user>[^ |]+)|account=(?<user>[^ |]+)'}"

static char tmpdir[] = "/tmp/rtr-test-mapping.XXXXXX";

/* Writes text to tmpdir/name with ' swapped for ". */
static void write_mapping(const char *name, const char *text, char *path)
{
    FILE *f;

    snprintf(path, PATH_MAX, "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    for (const char *p = text; *p != '\0'; p++)
        fputc(*p == '\'' ? '"' : *p, f);
    if (fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

static size_t count_lines(const char *text)
{
    size_t n = 0;

    for (const char *p = text; (p = strchr(p, '\n')) != NULL; p++)
        n++;
    return n;
}

#define CHECK_HAS(ctx, text, want)                                                                 \
    do {                                                                                           \
        if (strstr((text), (want)) != NULL)                                                        \
            unit_passed++;                                                                         \
        else                                                                                       \
            UNIT_FAIL("%s: missing \"%s\" in:\n%s", (ctx), (want), (text));                        \
    } while (0)

/* Loads one mapping file with the log captured into err. */
static int load_text(const char *text, struct mapping_set **set, char *err, size_t cap)
{
    char path[PATH_MAX];
    char *globs[1] = {path};
    int rc;

    write_mapping("m.json", text, path);
    unit_capture_begin();
    rc = mapping_set_load(globs, 1, 0, set);
    unit_capture_end(err, cap);
    unlink(path);
    return rc;
}

/* One parsed message. The message struct is large: kept static. */
static char line_buf[4096], scratch_buf[4096];
static struct message msg;

static const struct message *parse_bytes(const char *line, size_t len)
{
    struct scratch sc;

    memcpy(line_buf, line, len);
    scratch_init(&sc, scratch_buf, sizeof(scratch_buf));
    message_parse(line_buf, len, &msg, &sc);
    return &msg;
}

static const struct message *parse(const char *line)
{
    return parse_bytes(line, strlen(line));
}

struct explain_log {
    char text[8192];
    size_t len;
    int lines;
};

/* Collects "<mapping>: <why>" lines; decided must agree with the "yes:". */
static void explain_line(void *arg, const char *mapping, const char *file, int decided,
                         const char *why)
{
    struct explain_log *x = arg;
    int n;

    CHECK(file != NULL && strstr(file, ".json") != NULL);
    CHECK((decided != 0) == (strncmp(why, "yes: ", 5) == 0));
    x->lines++;
    n = snprintf(x->text + x->len, sizeof(x->text) - x->len, "%s: %s\n", mapping, why);
    if (n > 0 && (size_t)n < sizeof(x->text) - x->len)
        x->len += (size_t)n;
}

static struct stats stats_block __attribute__((aligned(STATS_ALIGN)));

/* One mapping file, loaded, and a matcher for it. */
struct loaded {
    struct mapping_set *set;
    struct mapping_matcher *mm;
};

/* Loads text (the log captured into err) and makes a matcher counting into
 * stats, zeroed first (NULL: no counters). 0, or -1 when it does not load
 * (a failure named ctx, with the log); then there is nothing to close. */
static int loaded_open(struct loaded *l, const char *ctx, const char *text, struct stats *stats,
                       char *err, size_t cap)
{
    l->set = NULL;
    l->mm = NULL;
    if (load_text(text, &l->set, err, cap) != 0) {
        UNIT_FAIL("%s: does not load:\n%s", ctx, err);
        return -1;
    }
    if (stats != NULL)
        memset(stats, 0, sizeof(*stats));
    CHECK_INT(mapping_matcher_new(100000, 10000, stats, &l->mm), 0);
    return 0;
}

static void loaded_close(struct loaded *l)
{
    mapping_matcher_free(l->mm);
    mapping_set_unref(l->set);
}

struct want {
    const char *mapping, *rule, *user, *event;
    enum user_kind kind;
};

static const struct match_case {
    const char *name;
    const char *file;
    const char *line;
    size_t n; /* decisions */
    struct want d[2];
    const char *explain; /* a substring of the explain output */
    int lines;           /* explain lines (mappings tried); 0: not checked */
} match_cases[] = {
    /* conditions */
    {"equals holds",
     FILE(MAP("m", WHEN_SPLUNK SPLUNK_SOURCES)),
     SPLUNK_CEF,
     1,
     {{"m", SPLUNK_RULE, "EXAMPLE\\amorgan", SPLUNK_RULE, USER_KIND_AUTO}},
     "m: yes: rule \"" SPLUNK_RULE "\" (rule[0] cef.label.search_name), user "
     "\"EXAMPLE\\\\amorgan\" (user[0] cef.ext.suser, kind sam, detected), event "
     "\"" SPLUNK_RULE "\" (the rule)\n",
     1},
    {"equals fails on another vendor",
     FILE(MAP("m", WHEN_SPLUNK SPLUNK_SOURCES)),
     CISCO,
     0,
     {{0}},
     "m: no: when[0] cef.vendor is \"Cisco\", expected \"Splunk\"\n",
     1},
    {"equals on a text message",
     FILE(MAP("m", WHEN_SPLUNK SPLUNK_SOURCES)),
     SPLUNK_RAW,
     0,
     {{0}},
     "m: no: when[0] cef.vendor is absent (the message is not CEF)\n",
     1},
    {"equals is case-sensitive",
     FILE(MAP("m", "'when': [{'field': 'cef.vendor', 'equals': 'splunk'}], " SPLUNK_SOURCES)),
     SPLUNK_CEF,
     0,
     {{0}},
     "no: when[0] cef.vendor is \"Splunk\", expected \"splunk\"\n",
     1},
    {"equals ignore_case",
     FILE(MAP("m", "'when': [{'field': 'cef.vendor', 'equals': 'SPLUNK', 'ignore_case': "
                   "true}], " SPLUNK_SOURCES)),
     SPLUNK_CEF,
     1,
     {{"m", SPLUNK_RULE, "EXAMPLE\\amorgan", SPLUNK_RULE, USER_KIND_AUTO}},
     NULL,
     1},
    {"in holds",
     FILE(MAP("m", "'when': [{'field': 'cef.product', 'in': ['ES', 'Enterprise "
                   "Security']}], " SPLUNK_SOURCES)),
     SPLUNK_CEF,
     1,
     {{"m", SPLUNK_RULE, "EXAMPLE\\amorgan", SPLUNK_RULE, USER_KIND_AUTO}},
     NULL,
     1},
    {"in fails",
     FILE(MAP("m", "'when': [{'field': 'cef.product', 'in': ['A', 'B']}], " SPLUNK_SOURCES)),
     SPLUNK_CEF,
     0,
     {{0}},
     "m: no: when[0] cef.product is \"Enterprise Security\", expected one of \"A\", "
     "\"B\"\n",
     1},
    {"in ignore_case",
     FILE(MAP("m", "'when': [{'field': 'cef.product', 'in': ['es', 'enterprise security'], "
                   "'ignore_case': true}], " SPLUNK_SOURCES)),
     SPLUNK_CEF,
     1,
     {{"m", SPLUNK_RULE, "EXAMPLE\\amorgan", SPLUNK_RULE, USER_KIND_AUTO}},
     NULL,
     1},
    {"regex holds, sources from named groups",
     FILE(MAP("splunk-raw",
              "'when': [{'field': 'msg', 'regex': 'search_name='}], "
              "'rule': {'field': 'msg', 'regex': 'search_name=\\\"(?<rule>[^\\\"]+)'}, "
              "'user': [{'field': 'msg', 'regex': ' user=\\\"(?<user>[^\\\"]+)'}]")),
     SPLUNK_RAW,
     1,
     {{"splunk-raw", "Web - Malware Download Detected - Rule", "bkhan@example.com",
       "Web - Malware Download Detected - Rule", USER_KIND_AUTO}},
     "(rule msg regex), user \"bkhan@example.com\" (user[0] msg regex, kind upn, detected)",
     1},
    {"regex required literal missing",
     FILE(MAP("m", "'when': [{'field': 'msg', 'regex': 'search_name='}], " SPLUNK_SOURCES)),
     LOGRHYTHM,
     0,
     {{0}},
     "m: no: when[0] msg does not contain \"search_name=\" (the regex's required "
     "literal)\n",
     1},
    {"regex does not match",
     FILE(MAP("m", "'when': [{'field': 'msg', 'regex': '^EVID:\\\\d+$'}], " SPLUNK_SOURCES)),
     LOGRHYTHM,
     0,
     {{0}},
     "m: no: when[0] msg does not match /^EVID:\\d+$/\n",
     1},
    {"regex is case-sensitive",
     FILE(MAP("m", "'when': [{'field': 'msg', 'regex': 'SEARCH_NAME='}], "
                   "'rule': {'value': 'r'}, 'user': {'value': 'u'}")),
     SPLUNK_RAW,
     0,
     {{0}},
     "m: no: when[0] msg does not",
     1},
    {"regex ignore_case",
     FILE(MAP("m", "'when': [{'field': 'msg', 'regex': 'SEARCH_NAME=', 'ignore_case': true}], "
                   "'rule': {'value': 'r'}, 'user': {'value': 'u'}")),
     SPLUNK_RAW,
     1,
     {{"m", "r", "u", "r", USER_KIND_AUTO}},
     NULL,
     1},
    {"ge holds on the CEF severity",
     FILE(MAP("m", "'when': [{'field': 'cef.severity', 'ge': 7}], " SPLUNK_SOURCES)),
     SPLUNK_CEF,
     1,
     {{"m", SPLUNK_RULE, "EXAMPLE\\amorgan", SPLUNK_RULE, USER_KIND_AUTO}},
     NULL,
     1},
    {"gt fails on an equal value",
     FILE(MAP("m", "'when': [{'field': 'cef.severity', 'gt': 7}], " SPLUNK_SOURCES)),
     SPLUNK_CEF,
     0,
     {{0}},
     "m: no: when[0] cef.severity is \"7\", expected a number > 7\n",
     1},
    {"lt and le hold, with a fraction",
     FILE(MAP("m", "'when': [{'field': 'cef.severity', 'lt': 7.5}, {'field': 'cef.severity', "
                   "'le': 7}], " SPLUNK_SOURCES)),
     SPLUNK_CEF,
     1,
     {{"m", SPLUNK_RULE, "EXAMPLE\\amorgan", SPLUNK_RULE, USER_KIND_AUTO}},
     NULL,
     1},
    {"a text is not a number",
     FILE(MAP("m", "'when': [{'field': 'cef.ext.cs2', 'lt': 100}], " SPLUNK_SOURCES)),
     SPLUNK_CEF,
     0,
     {{0}},
     "m: no: when[0] cef.ext.cs2 is \"high\", expected a number < 100\n",
     1},
    {"a numeric test on an absent field fails",
     FILE(MAP("m", "'when': [{'field': 'cef.ext.cn1', 'ge': 0}], " SPLUNK_SOURCES)),
     SPLUNK_CEF,
     0,
     {{0}},
     "m: no: when[0] cef.ext.cn1 is absent",
     1},
    {"exists holds",
     FILE(MAP("m", "'when': [{'field': 'cef.ext.suser', 'exists': true}], " SPLUNK_SOURCES)),
     SPLUNK_CEF,
     1,
     {{"m", SPLUNK_RULE, "EXAMPLE\\amorgan", SPLUNK_RULE, USER_KIND_AUTO}},
     NULL,
     1},
    {"exists fails",
     FILE(MAP("m", "'when': [{'field': 'cef.ext.duser', 'exists': true}], " SPLUNK_SOURCES)),
     SPLUNK_CEF,
     0,
     {{0}},
     "m: no: when[0] cef.ext.duser is absent\n",
     1},
    {"absent holds",
     FILE(MAP("m", "'when': [{'field': 'cef.ext.duser', 'absent': true}], " SPLUNK_SOURCES)),
     SPLUNK_CEF,
     1,
     {{"m", SPLUNK_RULE, "EXAMPLE\\amorgan", SPLUNK_RULE, USER_KIND_AUTO}},
     NULL,
     1},
    {"absent fails",
     FILE(MAP("m", "'when': [{'field': 'cef.ext.suser', 'absent': true}], " SPLUNK_SOURCES)),
     SPLUNK_CEF,
     0,
     {{0}},
     "m: no: when[0] cef.ext.suser is \"EXAMPLE\\\\amorgan\", expected absent\n",
     1},
    {"cheap conditions run before regexes",
     FILE(MAP("m", "'when': [{'field': 'msg', 'regex': 'search_name='}, "
                   "{'field': 'cef.vendor', 'equals': 'Splunk'}], " SPLUNK_SOURCES)),
     LOGRHYTHM,
     0,
     {{0}},
     "m: no: when[1] cef.vendor is absent (the message is not CEF)\n",
     1},
    {"all conditions must hold",
     FILE(MAP("m", WHEN_SPLUNK_2 SPLUNK_SOURCES)),
     SPLUNK_CEF,
     0,
     {{0}},
     "m: no: when[1] cef.product is \"Enterprise Security\", expected \"ES\"\n",
     1},
    {"long values are cut at a character boundary",
     FILE(MAP("m", "'when': [{'field': 'cef.name', 'equals': 'x'}], " SPLUNK_SOURCES)),
     LONG_UTF8_NAME,
     0,
     {{0}},
     "m: no: when[0] cef.name is \"" A79 "...\", expected \"x\"\n",
     1},
    {"syslog field of a message without a header",
     FILE(MAP("m", "'when': [{'field': 'syslog.hostname', 'exists': true}], " SPLUNK_SOURCES)),
     NO_HEADER_EMPTY_NAME,
     0,
     {{0}},
     "m: no: when[0] syslog.hostname is absent (the message has no syslog header)\n",
     1},
    {"leef fields",
     FILE(MAP("qradar", "'when': [{'field': 'leef.vendor', 'equals': 'IBM'}, {'field': "
                        "'leef.product', 'equals': 'QRadar'}], 'rule': {'field': 'leef.ext.cat'}, "
                        "'user': {'field': 'leef.ext.usrName'}")),
     QRADAR,
     1,
     {{"qradar", "USB Device Policy", "S-1-5-21-1004336348-1177238915-682003330-1109",
       "USB Device Policy", USER_KIND_AUTO}},
     "kind sid, detected",
     1},

    /* sources */
    {"field + table hit",
     FILE(MAP("dtex", WHEN_DTEX "'rule': [{'field': 'cef.name', " USB_TABLE "}], " DTEX_USER)),
     DTEX_USB,
     1,
     {{"dtex", "Unknown USB Device", "EXAMPLE\\fnovak", "Unknown USB Device", USER_KIND_AUTO}},
     "dtex: yes: rule \"Unknown USB Device\" (rule[0] cef.name table), user "
     "\"EXAMPLE\\\\fnovak\" "
     "(user cef.ext.User_Name, kind sam, detected)",
     1},
    {"field + table miss",
     FILE(MAP("dtex", WHEN_DTEX "'rule': [{'field': 'cef.name', " USB_TABLE "}], " DTEX_USER)),
     DTEX_LOGON,
     0,
     {{0}},
     "dtex: no: rule: rule[0] cef.name \"SessionLogon\" is not in the table\n",
     1},
    {"table keys are case-sensitive",
     FILE(MAP("dtex", WHEN_DTEX "'rule': {'field': 'cef.name', 'table': "
                                "{'removablemediaconnected': 'USB'}}, " DTEX_USER)),
     DTEX_USB,
     0,
     {{0}},
     "no: rule: rule cef.name \"RemovableMediaConnected\" is not in the table",
     1},
    {"table ignore_case",
     FILE(MAP("dtex", WHEN_DTEX
              "'rule': {'field': 'cef.name', 'ignore_case': true, 'table': "
              "{'removablemediaconnected': 'USB', 'sessionlogon': 'Logon'}}, " DTEX_USER)),
     DTEX_USB,
     1,
     {{"dtex", "USB", "EXAMPLE\\fnovak", "USB", USER_KIND_AUTO}},
     NULL,
     1},
    {"regex + table, user from duplicate group names (first alternative)",
     FILE(MAP("lr", "'when': [{'field': 'msg', 'regex': 'AIE:'}], 'rule': {'field': 'msg', "
                    "'regex': 'EVID:(?<rule>\\\\d+)', 'table': {'1000541': 'USB via "
                    "LogRhythm'}}, " LR_USER_DUPS)),
     LOGRHYTHM,
     1,
     {{"lr", "USB via LogRhythm", "EXAMPLE\\cdiaz", "USB via LogRhythm", USER_KIND_AUTO}},
     "lr: yes: rule \"USB via LogRhythm\" (rule msg regex table)",
     1},
    {"duplicate group names (second alternative)",
     FILE(MAP("lr", "'when': [{'field': 'msg', 'regex': 'AIE:'}], 'rule': {'value': "
                    "'r'}, " LR_USER_DUPS)),
     LOGRHYTHM_NO_LOGIN,
     1,
     {{"lr", "r", "EXAMPLE\\jdoe", "r", USER_KIND_AUTO}},
     NULL,
     1},
    {"regex source does not match",
     FILE(MAP("lr", "'when': [{'field': 'msg', 'regex': 'AIE:'}], 'rule': [{'field': 'msg', "
                    "'regex': 'EVID:(?<rule>[a-z]+)'}], " LR_USER_DUPS)),
     LOGRHYTHM,
     0,
     {{0}},
     "lr: no: rule: rule[0] msg does not match /EVID:(?<rule>[a-z]+)/\n",
     1},
    {"constant trimmed",
     FILE(MAP("dtex", WHEN_DTEX "'rule': {'value': ' \\t Unknown USB Device  '}, " DTEX_USER)),
     DTEX_USB,
     1,
     {{"dtex", "Unknown USB Device", "EXAMPLE\\fnovak", "Unknown USB Device", USER_KIND_AUTO}},
     "(rule value)",
     1},
    {"regex group trimmed",
     FILE(MAP("lr", "'when': [{'field': 'msg', 'regex': 'AIE:'}], 'rule': {'field': 'msg', "
                    "'regex': 'AIE:(?<rule>[^|]*)\\\\|'}, " LR_USER_DUPS)),
     LOGRHYTHM,
     1,
     {{"lr", "Unknown USB Device Connected", "EXAMPLE\\cdiaz", "Unknown USB Device Connected",
       USER_KIND_AUTO}},
     NULL,
     1},
    {"first non-empty source wins, rule and user",
     FILE(MAP("sentinel",
              "'when': [{'field': 'cef.vendor', 'equals': 'Microsoft'}], " SPLUNK_SOURCES)),
     SENTINEL,
     1,
     {{"sentinel", "Mass download by a single user", "e.o'neil@example.com",
       "Mass download by a single user", USER_KIND_AUTO}},
     "(rule[1] cef.name), user \"e.o'neil@example.com\" (user[0] cef.ext.suser, kind upn, "
     "detected)",
     1},
    {"a blank capture counts as nothing",
     FILE(MAP("lr", "'when': [{'field': 'msg', 'regex': 'AIE:'}], 'rule': {'value': 'r'}, "
                    "'user': [{'field': 'msg', 'regex': 'account=(?<user>[^|]*)'}, "
                    "{'field': 'msg', 'regex': 'login=(?<user>[^ |]+)'}]")),
     LOGRHYTHM,
     1,
     {{"lr", "r", "EXAMPLE\\cdiaz", "r", USER_KIND_AUTO}},
     "(user[1] msg regex, kind sam, detected)",
     1},
    {"no rule: absent, then empty",
     FILE(MAP("m", WHEN_SPLUNK SPLUNK_SOURCES)),
     NO_HEADER_EMPTY_NAME,
     0,
     {{0}},
     "m: no: rule: rule[0] cef.label.search_name absent, rule[1] cef.name empty\n",
     1},
    {"no user",
     FILE(MAP("m", WHEN_SPLUNK "'rule': {'field': 'cef.name'}, 'user': [{'field': "
                               "'cef.ext.duser'}, {'field': 'cef.ext.duid'}]")),
     SPLUNK_CEF,
     0,
     {{0}},
     "m: no: user: user[0] cef.ext.duser absent, user[1] cef.ext.duid absent (counted in "
     "decisions_no_user)\n",
     1},
    {"numeric field source",
     FILE(MAP("m", WHEN_SPLUNK "'rule': {'field': 'syslog.severity'}, "
                               "'user': {'field': 'syslog.facility'}")),
     SPLUNK_CEF,
     1,
     {{"m", "6", "16", "6", USER_KIND_AUTO}},
     NULL,
     1},

    /* event, user_kind */
    {"event explicit",
     FILE(MAP("dtex", WHEN_DTEX "'rule': {'value': 'Unknown USB Device'}, 'event': "
                                "{'value': 'USB_Event'}, " DTEX_USER)),
     DTEX_USB,
     1,
     {{"dtex", "Unknown USB Device", "EXAMPLE\\fnovak", "USB_Event", USER_KIND_AUTO}},
     "event \"USB_Event\" (event value)\n",
     1},
    {"event falls back to the rule",
     FILE(MAP("dtex", WHEN_DTEX "'rule': {'value': 'Unknown USB Device'}, 'event': "
                                "[{'field': 'cef.ext.cs9'}], " DTEX_USER)),
     DTEX_USB,
     1,
     {{"dtex", "Unknown USB Device", "EXAMPLE\\fnovak", "Unknown USB Device", USER_KIND_AUTO}},
     "event \"Unknown USB Device\" (the rule: no event source yielded)\n",
     1},
    {"user_kind",
     FILE(MAP("dtex", WHEN_DTEX "'rule': {'value': 'r'}, 'user_kind': 'sam', " DTEX_USER)),
     DTEX_USB,
     1,
     {{"dtex", "r", "EXAMPLE\\fnovak", "r", USER_KIND_SAM}},
     "(user cef.ext.User_Name, kind sam)",
     1},

    /* order */
    {"continue: two decisions",
     FILE(MAP("first",
              WHEN_SPLUNK "'continue': true, 'rule': {'value': 'r1'}, 'user': "
                          "{'value': 'u1'}") ", " MAP("second", WHEN_SPLUNK SPLUNK_SOURCES)),
     SPLUNK_CEF,
     2,
     {{"first", "r1", "u1", "r1", USER_KIND_AUTO},
      {"second", SPLUNK_RULE, "EXAMPLE\\amorgan", SPLUNK_RULE, USER_KIND_AUTO}},
     "first: yes: rule \"r1\"",
     2},
    {"first match wins",
     FILE(MAP("first", WHEN_SPLUNK "'rule': {'value': 'r1'}, 'user': {'value': 'u1'}") ", " MAP(
         "second", WHEN_SPLUNK SPLUNK_SOURCES)),
     SPLUNK_CEF,
     1,
     {{"first", "r1", "u1", "r1", USER_KIND_AUTO}},
     "first: yes: ",
     1},
    {"a later mapping decides",
     FILE(MAP("cisco",
              "'when': [{'field': 'cef.vendor', 'equals': "
              "'Cisco'}], " SPLUNK_SOURCES) ", " MAP("splunk", WHEN_SPLUNK SPLUNK_SOURCES)),
     SPLUNK_CEF,
     1,
     {{"splunk", SPLUNK_RULE, "EXAMPLE\\amorgan", SPLUNK_RULE, USER_KIND_AUTO}},
     "cisco: no: when[0] cef.vendor is \"Splunk\", expected \"Cisco\"\nsplunk: yes: ",
     2},

    /* usable identifiers, explain escapes */
    {"a user with a control character: the next source is tried",
     FILE(MAP("m", WHEN_SPLUNK SPLUNK_SOURCES)),
     CONTROL_USER,
     1,
     {{"m", "R", "good@example.com", "R", USER_KIND_AUTO}},
     "user \"good@example.com\" (user[1] cef.ext.duser, kind upn, detected)",
     1},
    {"a user with DEL only: no user",
     FILE(MAP("m", WHEN_SPLUNK SPLUNK_SOURCES)),
     DEL_USER,
     0,
     {{0}},
     "m: no: user: user[0] cef.ext.suser \"bad\x7fuser\" contains a control character, "
     "user[1] cef.ext.duser absent (counted in decisions_no_user)\n",
     1},
    {"a user with a C1 control (NEL): the next source is tried",
     FILE(MAP("m", WHEN_SPLUNK SPLUNK_SOURCES)),
     C1_NEL_USER,
     1,
     {{"m", "R", "good@example.com", "R", USER_KIND_AUTO}},
     "user \"good@example.com\" (user[1] cef.ext.duser, kind upn, detected)",
     1},
    {"a user with a C1 control (CSI) only: no user",
     FILE(MAP("m", WHEN_SPLUNK SPLUNK_SOURCES)),
     C1_CSI_USER,
     0,
     {{0}},
     "m: no: user: user[0] cef.ext.suser \"bad\xc2\x9b[2Juser\" contains a control character, "
     "user[1] cef.ext.duser absent (counted in decisions_no_user)\n",
     1},
    {"a user with U+00A0 (past the C1 range) is usable",
     FILE(MAP("m", WHEN_SPLUNK SPLUNK_SOURCES)),
     NBSP_USER,
     1,
     {{"m", "R", "a\xc2\xa0z", "R", USER_KIND_AUTO}},
     "user \"a\xc2\xa0z\" (user[0] cef.ext.suser",
     1},
    {"quotes and backslashes in a value are escaped",
     FILE(MAP("m", WHEN_SPLUNK SPLUNK_SOURCES)),
     FORGED_USER,
     1,
     {{"m", "R", "x\" (rule[0] fake), user \"admin\\z", "R", USER_KIND_AUTO}},
     "m: yes: rule \"R\" (rule[1] cef.name), user \"x\\\" (rule[0] fake), user "
     "\\\"admin\\\\z\" (user[0] cef.ext.suser, kind ",
     1},
    {"quotes in a condition's value are escaped",
     FILE(MAP("m", "'when': [{'field': 'cef.ext.suser', 'equals': 'x'}], " SPLUNK_SOURCES)),
     FORGED_USER,
     0,
     {{0}},
     "m: no: when[0] cef.ext.suser is \"x\\\" (rule[0] fake), user \\\"admin\\\\z\", expected "
     "\"x\"\n",
     1},
};

static void check_decision(const char *ctx, const struct mapping_decision *d, const struct want *w)
{
    CHECK_STR(ctx, str_make(d->mapping, strlen(d->mapping)), w->mapping);
    CHECK(d->file != NULL && strstr(d->file, "/m.json") != NULL);
    CHECK_STR(ctx, d->rule, w->rule);
    CHECK_STR(ctx, d->user, w->user);
    CHECK_STR(ctx, d->event, w->event);
    CHECK_INT(d->user_kind, w->kind);
}

static void test_match_cases(void)
{
    char err[4096];

    for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
        const struct match_case *c = &match_cases[i];
        struct mapping_decision out[MAPPING_MAX_DECISIONS];
        struct explain_log x = {.len = 0};
        struct mapping_explain explain = {explain_line, &x};
        struct loaded l;
        size_t n, n_explained;

        if (loaded_open(&l, c->name, c->file, NULL, err, sizeof(err)) != 0)
            continue;
        /* Without explain (the hot path), then with: both decide alike. */
        unit_capture_begin(); /* the "no user" case logs */
        n = mapping_match(l.set, l.mm, parse(c->line), out, NULL);
        n_explained = mapping_match(l.set, l.mm, parse(c->line), out, &explain);
        unit_capture_end(err, sizeof(err));
        if (n != c->n)
            UNIT_FAIL("%s: %zu decisions, want %zu", c->name, n, c->n);
        n = n_explained;
        if (n != c->n)
            UNIT_FAIL("%s (explain): %zu decisions, want %zu", c->name, n, c->n);
        for (size_t k = 0; k < n && k < c->n; k++)
            check_decision(c->name, &out[k], &c->d[k]);
        if (c->explain != NULL)
            CHECK_HAS(c->name, x.text, c->explain);
        if (c->lines != 0 && x.lines != c->lines)
            UNIT_FAIL("%s: %d explain lines, want %d:\n%s", c->name, x.lines, c->lines, x.text);
        loaded_close(&l);
    }
}

/* decisions_no_user is counted, the mapping is logged once a minute, and
 * nothing else is counted (the pipeline counts decisions). */
static void test_no_user_counted(void)
{
    struct mapping_decision out[MAPPING_MAX_DECISIONS];
    struct loaded l;
    char err[4096];

    if (loaded_open(&l, "no user",
                    FILE(MAP("nouser", WHEN_SPLUNK "'rule': {'field': 'cef.name'}, 'user': "
                                                   "{'field': 'cef.ext.duser'}")),
                    &stats_block, err, sizeof(err)) != 0)
        return;
    unit_capture_begin();
    for (int i = 0; i < 3; i++)
        CHECK_INT(mapping_match(l.set, l.mm, parse(SPLUNK_CEF), out, NULL), 0);
    unit_capture_end(err, sizeof(err));
    CHECK_INT(stats_block.v[STAT_decisions_no_user], 3);
    CHECK_INT(stats_block.v[STAT_decisions], 0);
    CHECK_INT(stats_block.v[STAT_messages_decided], 0);
    CHECK_INT(count_lines(err), 1);
    CHECK_HAS("no user log", err, "mappings[0] (mapping \"nouser\")");
    CHECK_HAS("no user log", err, "decisions_no_user");
    CHECK_HAS("no user log", err, "rule \"" SPLUNK_RULE "\" but no user identifier");
    /* A plain miss counts nothing. */
    CHECK_INT(mapping_match(l.set, l.mm, parse(CISCO), out, NULL), 0);
    CHECK_INT(stats_block.v[STAT_decisions_no_user], 3);
    loaded_close(&l);
}

/* The rule on the "no user" log line is quoted as on an explain line: its
 * quotes are escaped, so it cannot close its quotes and forge text (the log
 * then escapes the backslashes once more: the line reads in two layers). */
static void test_no_user_log_quoted(void)
{
    struct mapping_decision out[MAPPING_MAX_DECISIONS];
    struct loaded l;
    char err[4096];

    if (loaded_open(&l, "no user quoted",
                    FILE(MAP("nouser", WHEN_SPLUNK "'rule': {'field': 'cef.name'}, 'user': "
                                                   "{'field': 'cef.ext.duser'}")),
                    NULL, err, sizeof(err)) != 0)
        return;
    unit_capture_begin();
    CHECK_INT(mapping_match(l.set, l.mm, parse(FORGED_RULE), out, NULL), 0);
    unit_capture_end(err, sizeof(err));
    CHECK_INT(count_lines(err), 1);
    CHECK_HAS("no user log quoted", err,
              "rule \"R\\\\\" (rule[0]), user \\\\\"evil\" but no user identifier");
    loaded_close(&l);
}

/* Every mapping says continue: the ninth decision is dropped and counted. */
static void test_too_many_decisions(void)
{
    struct mapping_decision out[MAPPING_MAX_DECISIONS];
    struct loaded l;
    char text[4096], err[4096];
    size_t len, n;

    len = (size_t)snprintf(text, sizeof(text), "{'mappings': [");
    for (int i = 0; i < MAPPING_MAX_DECISIONS + 2; i++)
        len +=
            (size_t)snprintf(text + len, sizeof(text) - len,
                             "%s{'name': 'm%d', " WHEN_SPLUNK SPLUNK_SOURCES ", 'continue': true}",
                             i > 0 ? ", " : "", i);
    snprintf(text + len, sizeof(text) - len, "]}");
    if (loaded_open(&l, "too many", text, &stats_block, err, sizeof(err)) != 0)
        return;
    CHECK_INT(mapping_set_count(l.set), MAPPING_MAX_DECISIONS + 2);
    unit_capture_begin();
    n = mapping_match(l.set, l.mm, parse(SPLUNK_CEF), out, NULL);
    unit_capture_end(err, sizeof(err));
    CHECK_INT(n, MAPPING_MAX_DECISIONS);
    CHECK_INT(stats_block.v[STAT_decisions_dropped], 2);
    CHECK_HAS("dropped log", err, "(mapping \"m8\"): decision dropped");
    if (n == MAPPING_MAX_DECISIONS)
        CHECK_STR("last kept", str_make(out[n - 1].mapping, strlen(out[n - 1].mapping)), "m7");
    loaded_close(&l);
}

/* A NUL inside a value: explain shows it as \x00 instead of ending the
 * line there, and the user it is in is not usable. */
static void test_explain_nul(void)
{
    static const char line[] = "CEF:0|Splunk|ES|1.0|notable|R|5|suser=a\0b\"c duser=d";
    struct mapping_decision out[MAPPING_MAX_DECISIONS];
    struct explain_log x = {.len = 0};
    struct mapping_explain explain = {explain_line, &x};
    struct loaded l;
    char err[4096];

    if (loaded_open(&l, "nul", FILE(MAP("m", WHEN_SPLUNK SPLUNK_SOURCES)), NULL, err,
                    sizeof(err)) != 0)
        return;
    {
        struct loaded strict;

        if (loaded_open(&strict, "nul strict",
                        FILE(MAP("m", WHEN_SPLUNK "'rule': {'field': 'cef.name'}, 'user': "
                                                  "{'field': 'cef.ext.suser'}")),
                        NULL, err, sizeof(err)) == 0) {
            unit_capture_begin();
            CHECK_INT(mapping_match(strict.set, strict.mm, parse_bytes(line, sizeof(line) - 1), out,
                                    &explain),
                      0);
            unit_capture_end(err, sizeof(err));
            CHECK_HAS("nul explain", x.text,
                      "m: no: user: user cef.ext.suser \"a\\x00b\\\"c\" contains a control "
                      "character (counted in decisions_no_user)\n");
            loaded_close(&strict);
        }
    }
    /* With a second source, the next one decides. */
    if (mapping_match(l.set, l.mm, parse_bytes(line, sizeof(line) - 1), out, NULL) == 1)
        CHECK_STR("nul: next source", out[0].user, "d");
    else
        UNIT_FAIL("nul: want one decision, by user[1]");
    loaded_close(&l);
}

/* A rule, user or event longer than MAPPING_MAX_VALUE: no decision (the
 * daemon could not queue it), counted in decisions_dropped, logged once a
 * minute naming the mapping and the text, explained; the next mapping is
 * tried. MAPPING_MAX_VALUE bytes exactly still decide. */
static void test_over_cap(void)
{
    static const struct {
        const char *name;
        const char *key; /* the CEF key the long text goes in */
        size_t len;
        int decides;
        const char *why; /* explain of the first mapping, after "long: " */
    } cases[] = {
        {"user at the cap", "suser", MAPPING_MAX_VALUE, 1, "yes: "},
        {"user over the cap", "suser", MAPPING_MAX_VALUE + 1, 0,
         "no: user identifier of 1025 bytes is over the 1024-byte cap: no decision (counted in "
         "decisions_dropped)\n"},
        {"rule over the cap", "cs1", 1500, 0,
         "no: rule of 1500 bytes is over the 1024-byte cap: no decision (counted in "
         "decisions_dropped)\n"},
        {"event over the cap", "cs2", 1500, 0,
         "no: event of 1500 bytes is over the 1024-byte cap: no decision (counted in "
         "decisions_dropped)\n"},
    };
    static char line[4096];
    struct mapping_decision out[MAPPING_MAX_DECISIONS];
    struct loaded l;
    char err[4096];
    int logged = 0;

    if (loaded_open(
            &l, "over cap",
            FILE(MAP("long", WHEN_SPLUNK
                     "'rule': [{'field': 'cef.ext.cs1'}, {'value': 'r'}], "
                     "'user': "
                     "{'field': 'cef.ext.suser'}, 'event': {'field': "
                     "'cef.ext.cs2'}") ", " MAP("next", WHEN_SPLUNK "'rule': {'value': 'r2'}, "
                                                                    "'user': {'value': 'u2'}")),
            &stats_block, err, sizeof(err)) != 0)
        return;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct explain_log x = {.len = 0};
        struct mapping_explain explain = {explain_line, &x};
        int n = snprintf(line, sizeof(line),
                         "CEF:0|Splunk|ES|1.0|notable|R|5|suser=u %s=", cases[i].key);
        size_t n_dec;

        memset(line + n, 'a', cases[i].len);
        line[n + (int)cases[i].len] = '\0';
        memset(&stats_block, 0, sizeof(stats_block));
        unit_capture_begin();
        n_dec = mapping_match(l.set, l.mm, parse(line), out, &explain);
        unit_capture_end(err, sizeof(err));
        CHECK_INT(n_dec, 1);
        if (n_dec == 1)
            CHECK_STR(cases[i].name, str_make(out[0].mapping, strlen(out[0].mapping)),
                      cases[i].decides ? "long" : "next");
        CHECK_INT(stats_block.v[STAT_decisions_dropped], cases[i].decides ? 0 : 1);
        CHECK_HAS(cases[i].name, x.text, cases[i].why);
        if (!cases[i].decides && !logged) {
            char want[256];

            logged = 1; /* the later ones are within the minute */
            snprintf(want, sizeof(want),
                     "/m.json: mappings[0] (mapping \"long\"): %.*s: no decision (counted in "
                     "decisions_dropped)",
                     (int)(strstr(cases[i].why, ": no decision") - cases[i].why - 4),
                     cases[i].why + 4);
            CHECK_HAS(cases[i].name, err, want);
            CHECK_INT(count_lines(err), 1);
        } else {
            CHECK_INT(count_lines(err), 0);
        }
    }
    loaded_close(&l);
}

/* A catastrophic pattern: the limit stops it, it counts, logs once a
 * minute, and the message goes on to the next mapping. */
static void test_regex_limit(void)
{
    static const char words[] = "alpha bravo charlie delta echo foxtrot golf hotel india juliet "
                                "kilo lima mike november oscar papa quebec romeo sierra tango "
                                "uniform victor whiskey xray yankee zulu one two three four!";
    char text[1024], err[4096];
    struct mapping_decision out[MAPPING_MAX_DECISIONS];
    struct explain_log x = {.len = 0};
    struct mapping_explain explain = {explain_line, &x};
    struct loaded l;

    snprintf(
        text, sizeof(text),
        FILE(MAP(
            "catastrophic",
            "'when': [{'field': 'msg', 'regex': '^(\\\\w+\\\\s?)*$'}], "
            "'rule': {'value': 'r1'}, 'user': {'value': 'u1'}") ", " MAP("plain",
                                                                         "'when': [{'field': "
                                                                         "'msg', 'equals': '%s'}], "
                                                                         "'rule': {'value': 'r2'}, "
                                                                         "'user': {'value': "
                                                                         "'u2'}")),
        words);
    if (loaded_open(&l, "limit", text, &stats_block, err, sizeof(err)) != 0)
        return;
    unit_capture_begin();
    if (mapping_match(l.set, l.mm, parse(words), out, NULL) == 1) {
        CHECK_STR("limit", str_make(out[0].mapping, strlen(out[0].mapping)), "plain");
        CHECK_STR("limit", out[0].rule, "r2");
    } else {
        UNIT_FAIL("limit: want one decision, by the second mapping");
    }
    CHECK_INT(stats_block.v[STAT_regex_limit_hits], 1);
    CHECK_INT(mapping_match(l.set, l.mm, parse(words), out, &explain), 1);
    unit_capture_end(err, sizeof(err));
    CHECK_INT(stats_block.v[STAT_regex_limit_hits], 2);
    CHECK_INT(stats_block.v[STAT_regex_errors], 0);
    CHECK_INT(count_lines(err), 1); /* the second hit is inside the minute */
    CHECK_HAS("limit log", err,
              "/m.json: mappings[0] (mapping \"catastrophic\"): when[0] msg: "
              "regex hit a PCRE2 limit");
    CHECK_HAS("limit log", err, "treated as no match");
    CHECK_HAS("limit explain", x.text,
              "catastrophic: no: when[0] msg: regex hit a PCRE2 limit "
              "(match limit 100000");
    CHECK_HAS("limit explain", x.text, "counted as no match\nplain: yes: ");
    loaded_close(&l);
}

/* Load errors: every problem, each naming the file ("@", or "%" for the
 * second file) and the key path. */
static const struct load_case {
    const char *name;
    const char *file, *file2;
    const char *want[4];
} load_cases[] = {
    {"bad JSON", "{'mappings': [}", NULL, {"@:1:15: invalid JSON: "}},
    {"top level not an object",
     "[]",
     NULL,
     {"@: expected a JSON object at the top level, got an array"}},
    {"mappings missing", "{'description': 'x'}", NULL, {"@: mappings: required key is missing"}},
    {"mappings not an array",
     "{'mappings': {}}",
     NULL,
     {"@: mappings: expected an array, got an object"}},
    {"unknown top-level key",
     "{'mappings': [" MAP("m", WHEN_SPLUNK SPLUNK_SOURCES) "], 'mapings': 1}",
     NULL,
     {"@: mapings: unknown key (known here: mappings, description)"}},
    {"unknown key in a mapping",
     FILE(MAP("m", WHEN_SPLUNK SPLUNK_SOURCES ", 'rulez': 1")),
     NULL,
     {"@: mappings[0].rulez: unknown key (known here: name, description, when, rule, user, "
      "user_kind, event, continue)"}},
    {"unknown key in a condition",
     FILE(MAP("m", "'when': [{'field': 'cef.vendor', 'equal': 'Splunk'}], " SPLUNK_SOURCES)),
     NULL,
     {"@: mappings[0].when[0].equal: unknown key (known here: field, equals, in, regex, exists, "
      "absent, gt, ge, lt, le, ignore_case)",
      "@: mappings[0].when[0]: needs a test: one of equals, in, regex, exists, absent, gt, ge, lt, "
      "le"}},
    {"missing name and rule",
     FILE("{" WHEN_SPLUNK "'user': {'value': 'u'}}"),
     NULL,
     {"@: mappings[0].name: required key is missing",
      "@: mappings[0].rule: required key is missing"}},
    {"name of the wrong type",
     FILE("{'name': 42, " WHEN_SPLUNK SPLUNK_SOURCES "}"),
     NULL,
     {"@: mappings[0].name: expected a string, got 42"}},
    {"name null",
     FILE("{'name': null, " WHEN_SPLUNK SPLUNK_SOURCES "}"),
     NULL,
     {"@: mappings[0].name: expected a string, got null"}},
    {"duplicate name in one file",
     FILE(MAP("x", WHEN_SPLUNK SPLUNK_SOURCES) ", " MAP("x", WHEN_SPLUNK SPLUNK_SOURCES)),
     NULL,
     {"@: mappings[1].name: \"x\" is already the name of mappings[0] in @"}},
    {"duplicate name across two files",
     FILE(MAP("x", WHEN_SPLUNK SPLUNK_SOURCES)),
     FILE(MAP("y", WHEN_SPLUNK SPLUNK_SOURCES) ", " MAP("x", WHEN_SPLUNK SPLUNK_SOURCES)),
     {"%: mappings[1].name: \"x\" is already the name of mappings[0] in @"}},
    {"bad regex",
     FILE(MAP("m", "'when': [{'field': 'cef.vendor', 'equals': 'Splunk'}, {'field': 'msg', "
                   "'regex': 'a(b'}], " SPLUNK_SOURCES)),
     NULL,
     {"@: mappings[0].when[1].regex: missing closing parenthesis at offset 3"}},
    {"regex without the named group",
     FILE(MAP("m", WHEN_SPLUNK "'rule': {'value': 'r'}, 'user': {'field': 'msg', 'regex': "
                               "'user=(\\\\S+)'}")),
     NULL,
     {"@: mappings[0].user.regex: needs a named group (?<user>...)"}},
    {"regex named after another slot",
     FILE(MAP("m", WHEN_SPLUNK "'user': {'value': 'u'}, 'rule': [{'value': 'r'}, {'field': "
                               "'msg', 'regex': 'user=(?<user>\\\\S+)'}]")),
     NULL,
     {"@: mappings[0].rule[1].regex: needs a named group (?<rule>...)"}},
    {"unknown field",
     FILE(MAP("m", "'when': [{'field': 'cef.vendr', 'equals': 'Splunk'}], " SPLUNK_SOURCES)),
     NULL,
     {"@: mappings[0].when[0].field: unknown field \"cef.vendr\" (see mappings/README.md for the "
      "field names)"}},
    {"unknown field in a source",
     FILE(MAP("m", WHEN_SPLUNK "'rule': {'field': 'cef.ext.'}, 'user': {'value': 'u'}")),
     NULL,
     {"@: mappings[0].rule.field: unknown field \"cef.ext.\""}},
    {"exists false",
     FILE(MAP("m", "'when': [{'field': 'cef.ext.suser', 'exists': false}], " SPLUNK_SOURCES)),
     NULL,
     {"@: mappings[0].when[0].exists: must be true (for the opposite, use \"absent\": true)"}},
    {"absent not a boolean",
     FILE(MAP("m", "'when': [{'field': 'cef.ext.suser', 'absent': 'yes'}], " SPLUNK_SOURCES)),
     NULL,
     {"@: mappings[0].when[0].absent: expected true, got \"yes\""}},
    {"two tests in one condition",
     FILE(MAP(
         "m",
         "'when': [{'field': 'cef.vendor', 'equals': 'Splunk', 'regex': 'S'}], " SPLUNK_SOURCES)),
     NULL,
     {"@: mappings[0].when[0]: has 2 tests (equals, regex): use one per condition"}},
    {"a numeric test needs a number",
     FILE(MAP("m", "'when': [{'field': 'cef.severity', 'ge': '7'}], " SPLUNK_SOURCES)),
     NULL,
     {"@: mappings[0].when[0].ge: expected a number, got \"7\""}},
    {"ignore_case on a numeric test",
     FILE(
         MAP("m",
             "'when': [{'field': 'cef.severity', 'lt': 3, 'ignore_case': true}], " SPLUNK_SOURCES)),
     NULL,
     {"@: mappings[0].when[0].ignore_case: only applies to equals, in and regex"}},
    {"ignore_case on exists",
     FILE(MAP("m", "'when': [{'field': 'cef.vendor', 'exists': true, 'ignore_case': "
                   "true}], " SPLUNK_SOURCES)),
     NULL,
     {"@: mappings[0].when[0].ignore_case: only applies to equals, in and regex"}},
    {"empty when and empty in",
     FILE(MAP("a", "'when': [], " SPLUNK_SOURCES) ", " MAP(
         "b",
         "'when': [{'field': 'cef.vendor', 'in': []}], " SPLUNK_SOURCES) ", " MAP("c",
                                                                                  "'when': "
                                                                                  "[{'field': "
                                                                                  "'cef.vendor', "
                                                                                  "'in': ['x', "
                                                                                  "7]}],"
                                                                                  " " SPLUNK_SOURCES)),
     NULL,
     {"@: mappings[0].when: must not be empty", "@: mappings[1].when[0].in: must not be empty",
      "@: mappings[2].when[0].in[1]: expected a string, got 7"}},
    {"source with value and field",
     FILE(MAP("m", WHEN_SPLUNK "'rule': {'value': 'r', 'field': 'cef.name'}, 'user': "
                               "{'value': 'u'}")),
     NULL,
     {"@: mappings[0].rule: has both \"value\" and \"field\": use one"}},
    {"source with neither, regex on a constant, blank constant",
     FILE(MAP("m", WHEN_SPLUNK "'rule': [{'table': {}}, {'value': 'r', 'regex': '(?<rule>x)'}], "
                               "'user': {'value': ' \\t '}")),
     NULL,
     {"@: mappings[0].rule[0]: needs \"value\" (a constant) or \"field\"",
      "@: mappings[0].rule[1].regex: only applies to a \"field\" source",
      "@: mappings[0].user.value: is only spaces: it would never yield a value"}},
    {"source of the wrong type",
     FILE(MAP("m", WHEN_SPLUNK "'rule': 'cef.name', 'user': [], 'event': ['x']")),
     NULL,
     {"@: mappings[0].rule: expected a source object or an array of them, got \"cef.name\"",
      "@: mappings[0].user: must not be empty",
      "@: mappings[0].event[0]: expected an object, got \"x\""}},
    {"bad table",
     FILE(MAP("m", WHEN_SPLUNK "'rule': {'field': 'cef.name', 'table': {'a': 1, 'A': 'x'}, "
                               "'ignore_case': true}, 'user': {'value': 'u'}")),
     NULL,
     {"@: mappings[0].rule.table.a: expected a string, got 1",
      "@: mappings[0].rule.table: keys \"A\" and \"a\" are the same when case is ignored"}},
    {"ignore_case without regex or table",
     FILE(MAP("m", WHEN_SPLUNK "'rule': {'field': 'cef.name', 'ignore_case': true}, 'user': "
                               "{'value': 'u'}")),
     NULL,
     {"@: mappings[0].rule.ignore_case: applies to \"regex\" and \"table\": this source has "
      "neither"}},
    {"bad user_kind and continue",
     FILE(MAP("m", WHEN_SPLUNK SPLUNK_SOURCES ", 'user_kind': 'mail', 'continue': 1")),
     NULL,
     {"@: mappings[0].user_kind: expected one of \"auto\", \"email\", \"upn\", \"sam\", "
      "\"sid\", \"guid\", \"employee_id\", got \"mail\"",
      "@: mappings[0].continue: expected true or false, got 1"}},
    {"a user constant or table value with a control character",
     FILE(MAP("m", WHEN_SPLUNK "'rule': {'value': 'r\\u0001'}, 'user': [{'value': "
                               "'a\\u007fb'}, {'field': 'cef.ext.suser', 'table': {'x': "
                               "'a\\tb', 'y': ' c\\t'}}]")),
     NULL,
     {"@: mappings[0].user[0].value: contains a control character: never a usable user "
      "identifier",
      "@: mappings[0].user[1].table.x: contains a control character: never a usable user "
      "identifier"}},
    {"a user constant or table value with a C1 control character",
     FILE(MAP("m", WHEN_SPLUNK "'rule': {'value': 'r\\u0085'}, 'user': [{'value': "
                               "'a\\u0085b'}, {'field': 'cef.ext.suser', 'table': {'x': "
                               "'a\\u009fb', 'y': 'a\\u00a0b', 'z': 'a\\u0080b'}}]")),
     NULL,
     {"@: mappings[0].user[0].value: contains a control character: never a usable user "
      "identifier",
      "@: mappings[0].user[1].table.x: contains a control character: never a usable user "
      "identifier",
      "@: mappings[0].user[1].table.z: contains a control character: never a usable user "
      "identifier"}},
    {"a name longer than a decision carries",
     FILE(MAP(A79 A79 A79 A10 "aaaaaaaaa", WHEN_SPLUNK SPLUNK_SOURCES)),
     NULL,
     {"@: mappings[0].name: longer than 255 bytes"}},
    /* A mappings glob such as *.json next to the config matched it. */
    {"the agent's config file",
     "{'listen': [{'proto': 'udp', 'address': '127.0.0.1:5514'}], 'mappings': ['*.json'], "
     "'identity': {'order': ['static']}}",
     NULL,
     {"@: listen: this looks like the agent's config file, not a mapping file (narrow the "
      "mappings glob)"}},
};

static void test_load_errors(void)
{
    for (size_t i = 0; i < sizeof(load_cases) / sizeof(load_cases[0]); i++) {
        const struct load_case *c = &load_cases[i];
        char p1[PATH_MAX], p2[PATH_MAX], err[8192], want[1024];
        char *globs[2] = {p1, p2};
        struct mapping_set *set = NULL;
        size_t n_want = 0;
        int rc;

        write_mapping("a.json", c->file, p1);
        if (c->file2 != NULL)
            write_mapping("b.json", c->file2, p2);
        else
            snprintf(p2, sizeof(p2), "%s/b.json", tmpdir);
        unit_capture_begin();
        rc = mapping_set_load(globs, c->file2 != NULL ? 2 : 1, 0, &set);
        unit_capture_end(err, sizeof(err));
        if (rc != ERR_CONFIG || set != NULL)
            UNIT_FAIL("%s: rc %d, want ERR_CONFIG and no set", c->name, rc);
        for (; n_want < 4 && c->want[n_want] != NULL; n_want++) {
            unit_expand(want, sizeof(want), c->want[n_want], p1, p2);
            CHECK_HAS(c->name, err, want);
        }
        if (count_lines(err) != n_want)
            UNIT_FAIL("%s: %zu log lines, want %zu:\n%s", c->name, count_lines(err), n_want, err);
        mapping_set_unref(set);
        unlink(p1);
        unlink(p2);
    }
}

/* Constants and table values past MAPPING_MAX_VALUE (once trimmed) could
 * never decide: load errors. */
static void test_load_value_cap(void)
{
    static char text[8192], big[MAPPING_MAX_VALUE + 2];
    struct mapping_set *set = NULL;
    char err[4096];

    memset(big, 'a', sizeof(big) - 1);
    snprintf(text, sizeof(text),
             FILE(MAP("m", WHEN_SPLUNK "'rule': {'value': '  %.*s  '}, 'user': {'value': "
                                       "'%s'}, 'event': {'field': 'cef.name', 'table': {'x': "
                                       "'%s'}}")),
             MAPPING_MAX_VALUE, big, big, big);
    CHECK_INT(load_text(text, &set, err, sizeof(err)), ERR_CONFIG);
    CHECK(set == NULL);
    CHECK_HAS("value cap", err,
              "/m.json: mappings[0].user.value: longer than 1024 bytes (the cap for a decision's "
              "rule, user or event)\n");
    CHECK_HAS("value cap", err,
              "/m.json: mappings[0].event.table.x: longer than 1024 bytes (the cap for a "
              "decision's rule, user or event)\n");
    CHECK_INT(count_lines(err), 2); /* the rule is 1024 bytes once trimmed */
    mapping_set_unref(set);
}

/* A cef.ext key that is a CEF key but for case: a warning with the
 * table's spelling; vendor keys and the table's own spellings load
 * quietly. */
static void test_cef_key_case(void)
{
    struct mapping_set *set = NULL;
    char err[4096];

    CHECK_INT(load_text(FILE(MAP("m", "'when': [{'field': 'cef.ext.DUSER', 'absent': true}, "
                                      "{'field': 'cef.ext.cs1Label', 'exists': true}], 'rule': "
                                      "{'field': 'cef.ext.User_Name'}, 'user': [{'field': "
                                      "'cef.ext.sUser'}, {'field': 'cef.ext.SourceUserName'}, "
                                      "{'field': 'cef.ext.suser'}, {'field': "
                                      "'cef.ext.sourceUserName'}]")),
                        &set, err, sizeof(err)),
              0);
    CHECK_HAS("cef case", err, "warning: " /* the file path follows */);
    CHECK_HAS("cef case", err,
              "/m.json: mappings[0].when[0].field: cef.ext.DUSER: not a CEF key; did you mean "
              "cef.ext.duser?\n");
    CHECK_HAS("cef case", err,
              "/m.json: mappings[0].user[0].field: cef.ext.sUser: not a CEF key; did you mean "
              "cef.ext.suser?\n");
    CHECK_HAS("cef case", err,
              "/m.json: mappings[0].user[1].field: cef.ext.SourceUserName: not a CEF key; did "
              "you mean cef.ext.sourceUserName?\n");
    CHECK_INT(count_lines(err), 3);
    mapping_set_unref(set);
}

/* Globs: files in name order, a missing plain path is an error, a
 * wildcard matching nothing (even in a missing folder) only warns. */
static void test_globs(void)
{
    char dir[PATH_MAX], p1[PATH_MAX], p2[PATH_MAX], pattern[PATH_MAX], missing[PATH_MAX];
    char none[PATH_MAX], nodir[PATH_MAX], empty[PATH_MAX], err[4096];
    struct mapping_decision out[MAPPING_MAX_DECISIONS];
    struct mapping_matcher *mm = NULL;
    struct mapping_set *set = NULL;

    snprintf(dir, sizeof(dir), "%s/g", tmpdir);
    if (mkdir(dir, 0700) != 0) {
        perror(dir);
        exit(2);
    }
    write_mapping("g/20-b.json", FILE(MAP("b", WHEN_SPLUNK SPLUNK_SOURCES)), p2);
    write_mapping(
        "g/10-a.json",
        "// comments are fine\n" FILE(MAP("a", WHEN_SPLUNK SPLUNK_SOURCES ", 'continue': true")),
        p1);
    snprintf(pattern, sizeof(pattern), "%s/g/*.json", tmpdir);
    snprintf(none, sizeof(none), "%s/g/*.yaml", tmpdir);
    snprintf(nodir, sizeof(nodir), "%s/nowhere/*.json", tmpdir);
    {
        char *globs[3] = {pattern, none, nodir};

        unit_capture_begin();
        CHECK_INT(mapping_set_load(globs, 3, 0, &set), 0);
        unit_capture_end(err, sizeof(err));
    }
    CHECK_HAS("no match", err, "*.yaml: no mapping file matches");
    CHECK_HAS("no folder", err, "nowhere/*.json: no mapping file matches");
    CHECK_INT(count_lines(err), 2);
    if (set != NULL) {
        CHECK_INT(mapping_set_count(set), 2);
        CHECK_INT(mapping_set_files(set), 2);
        CHECK_INT(mapping_matcher_new(100000, 10000, NULL, &mm), 0);
        if (mapping_match(set, mm, parse(SPLUNK_CEF), out, NULL) == 2) {
            CHECK_STR("glob order", str_make(out[0].mapping, strlen(out[0].mapping)), "a");
            CHECK(strstr(out[0].file, "10-a.json") != NULL);
            CHECK_STR("glob order", str_make(out[1].mapping, strlen(out[1].mapping)), "b");
            CHECK(strstr(out[1].file, "20-b.json") != NULL);
        } else {
            UNIT_FAIL("glob order: want two decisions");
        }
        /* A worker's reference outlives the loader's. */
        mapping_set_ref(set);
        mapping_set_unref(set);
        CHECK_INT(mapping_match(set, mm, parse(SPLUNK_CEF), out, NULL), 2);
        mapping_matcher_free(mm);
        mapping_set_unref(set);
    }

    snprintf(missing, sizeof(missing), "%s/missing.json", tmpdir);
    {
        char *globs[2] = {pattern, missing};

        set = NULL;
        unit_capture_begin();
        CHECK_INT(mapping_set_load(globs, 2, 0, &set), ERR_CONFIG);
        unit_capture_end(err, sizeof(err));
        CHECK(set == NULL);
        CHECK_HAS("missing", err, "/missing.json: cannot open: No such file or directory");
        CHECK_INT(count_lines(err), 1);
    }
    write_mapping("empty.json", "{'description': 'nothing yet', 'mappings': []}", empty);
    {
        char *globs[2] = {none, empty};

        unit_capture_begin();
        CHECK_INT(mapping_set_load(globs, 2, 0, &set), 0);
        unit_capture_end(err, sizeof(err));
        CHECK(set != NULL && mapping_set_count(set) == 0 && mapping_set_files(set) == 1);
        CHECK_HAS("empty set", err, "no message will ever be decided");
        CHECK_INT(count_lines(err), 2);
        mapping_set_unref(set);
    }
    unlink(p1);
    unlink(p2);
    unlink(empty);
    CHECK_INT(rmdir(dir), 0);
}

/* One file named by two globs, by one glob twice and through "..": loaded
 * once (its names are no duplicates of themselves), each repeat told. */
static void test_same_file_twice(void)
{
    char dir[PATH_MAX], file[PATH_MAX], pattern[PATH_MAX], dotdot[PATH_MAX], err[4096];
    char want[2 * PATH_MAX];
    struct mapping_set *set = NULL;

    snprintf(dir, sizeof(dir), "%s/twice", tmpdir);
    if (mkdir(dir, 0700) != 0) {
        perror(dir);
        exit(2);
    }
    write_mapping("twice/a.json", FILE(MAP("a", WHEN_SPLUNK SPLUNK_SOURCES)), file);
    snprintf(pattern, sizeof(pattern), "%s/twice/*.json", tmpdir);
    snprintf(dotdot, sizeof(dotdot), "%s/twice/../twice/a.json", tmpdir);
    {
        char *globs[4] = {pattern, file, pattern, dotdot};

        unit_capture_begin();
        CHECK_INT(mapping_set_load(globs, 4, 0, &set), 0);
        unit_capture_end(err, sizeof(err));
    }
    if (set != NULL) {
        CHECK_INT(mapping_set_count(set), 1);
        CHECK_INT(mapping_set_files(set), 1);
    }
    snprintf(want, sizeof(want), "info: %s: already loaded (mappings[1] matched it again)\n", file);
    CHECK_HAS("twice", err, want);
    snprintf(want, sizeof(want), "info: %s: already loaded (mappings[2] matched it again)\n", file);
    CHECK_HAS("twice", err, want);
    snprintf(want, sizeof(want), "info: %s: already loaded (mappings[3] matched it again)\n",
             dotdot);
    CHECK_HAS("twice", err, want);
    CHECK_INT(count_lines(err), 3);
    mapping_set_unref(set);
    unlink(file);
    CHECK_INT(rmdir(dir), 0);
}

int main(void)
{
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    test_match_cases();
    test_no_user_counted();
    test_no_user_log_quoted();
    test_too_many_decisions();
    test_explain_nul();
    test_over_cap();
    test_regex_limit();
    test_load_errors();
    test_load_value_cap();
    test_cef_key_case();
    test_globs();
    test_same_file_twice();
    CHECK_INT(rmdir(tmpdir), 0);
    return unit_report("test_mapping");
}
