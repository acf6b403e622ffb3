/* The mapping engine: ordered rules, loaded from JSON files, that decide
 * whether a parsed message is an alert to act on and extract the rule
 * identifier, the user identifier and the SafeTitan event name from it.
 *
 * A mapping file (comments allowed, as in the config):
 *
 *   {"mappings": [
 *     {"name": "splunk-es-cef",                  // required, unique across files
 *      "description": "...",                      // optional, free text
 *      "when": [                                  // required, all must hold
 *        {"field": "cef.vendor", "equals": "Splunk"},
 *        {"field": "cef.product", "in": ["Enterprise Security", "ES"]},
 *        {"field": "msg", "regex": "search_name=", "ignore_case": true},
 *        {"field": "cef.ext.suser", "exists": true},
 *        {"field": "cef.ext.duser", "absent": true}],
 *      "rule":  [ SOURCE, ... ] or SOURCE,        // required: first non-empty wins
 *      "user":  [ SOURCE, ... ] or SOURCE,        // required: first non-empty wins
 *      "user_kind": "auto",                       // auto email upn sam sid guid employee_id
 *      "event": [ SOURCE, ... ] or SOURCE,        // optional: default = the rule
 *      "continue": false}                         // true: later mappings are tried too
 *   ]}
 *
 * A condition has "field" and exactly one test: "equals" (a string), "in"
 * (an array of strings), "regex" (PCRE2), "exists": true or "absent": true;
 * "ignore_case": true makes equals/in/regex compare without case (ASCII
 * case for equals/in, PCRE2_CASELESS for regex). Cheap conditions run before
 * regexes whatever their order in the file.
 *
 * A SOURCE yields a text or nothing:
 *   {"value": "Unknown USB Device"}                  a constant
 *   {"field": "cef.label.search_name"}               a field's value
 *   {"field": "msg", "regex": "user=(?<user>\\S+)"}  the named group of a regex:
 *                                                    "rule", "user" or "event",
 *                                                    after the slot it fills
 *   ... plus "table": {"From": "To", ...}            the text above looked up;
 *                                                    a miss yields nothing
 *   ... plus "ignore_case": true                      table keys (and the regex)
 *                                                    compare without case
 * Values are trimmed of surrounding spaces and tabs; an empty result counts
 * as nothing. Field names are the event model (parsers/event.h).
 *
 * Matching: mappings are tried in load order (files in the order of the
 * config's globs, each glob's files sorted by name, mappings in file
 * order). A mapping decides when all its conditions hold and it yields a
 * rule and a user; the first that decides ends the search unless it says
 * "continue". Conditions that hold with no rule is a plain "no match" (a
 * lookup table that does not list this activity); a rule without a user is
 * counted (decisions_no_user) and logged (rate-limited) as a mapping that
 * cannot act. A user text with a control character (a byte below 0x20, NUL
 * included, or 0x7f) is no usable identifier: that user source yields
 * nothing and the next one is tried. A decision whose rule, user or event
 * is longer than MAPPING_MAX_VALUE is not made: counted
 * (decisions_dropped), logged (rate-limited) naming the mapping and the
 * text, and the message goes on to the next mapping, so replay predicts
 * exactly what the daemon queues (decision.h). A regex that hits a PCRE2
 * limit is counted (regex_limit_hits), logged at most once a minute per
 * mapping, and is "did not match": the message goes on to the next
 * mapping. */
#ifndef RTR_MAPPING_H
#define RTR_MAPPING_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "message.h"
#include "core/stats.h"
#include "str.h"
#include "core/userid.h"

/* Decisions one message can produce ("continue" chains); later ones are
 * dropped with a log line. */
#define MAPPING_MAX_DECISIONS 8

/* Longest field name, table key, condition value or regex a mapping file
 * may hold. */
#define MAPPING_MAX_TEXT 4096

/* Longest rule, user or event text a decision carries (no real identifier
 * or rule name is longer); a constant or table value past it is a load
 * error. decision.h queues texts up to this length. */
#define MAPPING_MAX_VALUE 1024

/* Longest mapping name: decisions carry it (decision.h, one length byte). */
#define MAPPING_MAX_NAME 255

struct mapping_set;
struct mapping_matcher;

/* Loads every file the globs name (n globs, each matched with glob(3),
 * sorted; a glob that matches no file is an error unless it contains a
 * wildcard, then a warning, also when its folder does not exist). A file
 * named again (same realpath(3)) is skipped with an info line. A cef.ext
 * key that is a CEF key but for ASCII case loads with a warning that names
 * the table's spelling. Compiles
 * and JIT-compiles every regex. Errors are printed one line each through
 * the log as "FILE: mappings[2].when[0].regex: missing closing parenthesis
 * at offset 4", all of them, not just the first. Returns 0 and *out (a
 * reference: release with mapping_set_unref), or ERR_CONFIG. */
int mapping_set_load(char *const *globs, size_t n, unsigned regex_flags, struct mapping_set **out);

/* The regex_flags a configuration asks for (REGEX_NO_JIT when
 * limits.regex_jit is false). */
unsigned mapping_regex_flags(const struct limits_config *limits);

/* References are atomic: workers hold one each, SIGHUP swaps in a new set. */
void mapping_set_ref(struct mapping_set *set);
void mapping_set_unref(struct mapping_set *set); /* NULL is fine */

size_t mapping_set_count(const struct mapping_set *set);
size_t mapping_set_files(const struct mapping_set *set);

/* One thread's matching state (a regex env with the limits, a reusable
 * explain buffer). stats: the thread's counter block (may be NULL: nothing
 * counted). Returns 0 and *out (free with mapping_matcher_free), or
 * ERR_NOMEM. */
int mapping_matcher_new(uint32_t regex_match_limit, uint32_t regex_depth_limit, struct stats *stats,
                        struct mapping_matcher **out);
void mapping_matcher_free(struct mapping_matcher *mm); /* NULL is fine */

/* One decision. Slices point into the message, its scratch buffer, the
 * mapping set or (a numeric field such as syslog.severity) the matcher:
 * valid while the message and the set are, until the next mapping_match on
 * that matcher. */
struct mapping_decision {
    const char *mapping; /* the mapping's name */
    const char *file;    /* the file it came from */
    struct str rule, user, event;
    enum user_kind user_kind; /* as the mapping says (USER_KIND_AUTO: detect) */
};

/* --explain: called once per mapping tried, in order (none after the one
 * that ends the search), with a line that says why it did or did not decide
 * ("no: when[0] cef.vendor is \"Cisco\", expected \"Splunk\"", "no: when[1]
 * msg: regex hit a PCRE2 limit (...), counted as no match", "no: rule:
 * rule[0] cef.name \"SessionLogon\" is not in the table", "yes: rule \"X\"
 * (rule[0] cef.label.search_name), user \"Y\" (user[1] cef.ext.duser, kind
 * upn, detected), event \"X\" (the rule)"). Quoted values (cut to about
 * 80 bytes) have '"' and '\\' escaped as \" and \\, and NUL as \x00, so a
 * value can never close its quotes early; other control characters and
 * invalid UTF-8 are left for the callee to escape, which must leave
 * backslashes as they are (replay.c prints with ESCAPE_LOG between them).
 * The text is valid during the call. */
struct mapping_explain {
    void (*line)(void *arg, const char *mapping, const char *file, int decided, const char *why);
    void *arg;
};

/* Runs the set over m. Fills out[0..MAPPING_MAX_DECISIONS) and returns how
 * many decisions were made (0 = no mapping decided). explain may be NULL
 * (the hot path: then nothing is formatted). Never allocates. */
size_t mapping_match(const struct mapping_set *set, struct mapping_matcher *mm,
                     const struct message *m, struct mapping_decision *out,
                     const struct mapping_explain *explain);

#endif
