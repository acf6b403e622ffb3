/* `replay --expect FILE`: the decisions a replay must make, checked as it
 * makes them (a CI check for a site's mappings, as `vector test` is for
 * Vector's). FILE holds JSON lines in either of two forms:
 *
 *   replay's own output (so `replay ... > FILE` records what is right now):
 *     {"input_file":"splunk.log","input_line":1,"rule":"...","email":"..."}
 *   the samples' form (../shared/samples/expected.jsonl):
 *     {"file":"splunk.log","line":1,"decision":{"rule":"...","user":"...","email":"..."}}
 *     {"file":"noise.log","line":4,"decision":null}      (no decision there)
 *
 * Only the fields a line names are compared (mapping, rule, user, email,
 * event, outcome, detail; email may be null: unresolved); any other key is
 * an error, so a misspelt field cannot pass unnoticed. A file without a '/'
 * matches an input of that base name wherever it lies. The n-th decision
 * made for an input line is held against the n-th expectation for it. A
 * decision no line expects, an expected one not made and each differing
 * field are differences: each is printed on stderr, and so is a closing
 * count. */
#ifndef RTR_EXPECT_H
#define RTR_EXPECT_H

#include "str.h"

struct expect;

/* A decision as replay prints it. email, detail: NULL when absent. */
struct expect_decision {
    const char *mapping;
    struct str rule, user, event;
    const char *email, *outcome, *detail;
};

/* Reads path. Returns 0 and *out (free with expect_free), ERR_IO (it
 * cannot be read), ERR_CONFIG (a line is not one of the forms above: each
 * reported as "FILE:LINE: what") or ERR_NOMEM. */
int expect_load(const char *path, struct expect **out);

/* Holds d, made for line `line` of input, against the expectations. */
void expect_decision(struct expect *e, const char *input, unsigned long long line,
                     const struct expect_decision *d);

/* After the last input: reports every expected decision not made and the
 * count. Returns the number of differences. */
unsigned long expect_finish(struct expect *e);

void expect_free(struct expect *e); /* NULL is fine */

#endif
