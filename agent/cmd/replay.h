/* `rtr-agent replay -c FILE [--framing lf|octet] [--dry-run] [--explain]
 * [--expect EXPECTED] [--http] [FILE...]`: runs messages (one per line, or RFC 6587 octet-counted
 * with
 * --framing octet; "-" or none: stdin; read by reader.h) through the whole
 * pipeline (parse, mappings, identity) and prints one JSON decision per
 * decision on stdout:
 *   {"input_file":"splunk.log","input_line":1,"mapping":"splunk-es-cef","rule":"...",
 *    "user":"...","email":"..." or null,"event":"...","outcome":"would-dispatch"}
 * outcome: "would-dispatch" (dry run, the user resolved), "unresolved-user"
 * (no resolver knows the user), "failed" (a resolver failed), the last two
 * with "detail" (the resolver's reason, e.g. "static: not listed"); "dispatched"
 * and "duplicate" come with dispatching. A line cut at max_message_bytes is
 * not matched (a cut value could name the wrong user). --explain prints on
 * stderr, for every message, a line naming it and one line per mapping
 * tried with why it did or did not decide (text: stdout stays JSON).
 * --expect holds the decisions against a file of expected ones (expect.h)
 * and fails on any difference. --http: each FILE is one HTTP request as
 * sent to the intake (request line, headers, a blank line, the body; LF or
 * CRLF), decided as the daemon's webhook routes would (webhook.h; the API
 * key is not checked); input_line is the alert's place in the request. */
#ifndef RTR_REPLAY_H
#define RTR_REPLAY_H

#include "core/config.h"
#include "framing.h"

struct replay_options {
    /* FRAMING_LF: input_line is the line number; FRAMING_OCTET: the
     * frame's ordinal in its input. */
    enum framing_mode framing;
    int dry_run;
    int explain;
    const char *expect; /* --expect FILE, or NULL */
    int http;           /* --http: the files are HTTP requests */
};

/* Returns 0; ERR_CONFIG when the mappings, the directory or the
 * expectations do not load (reported); ERR_IO when an input could not be
 * read (the others are still replayed) or a user lookup never completed;
 * ERR_INVALID when a decision differs from the expectations; ERR_NOMEM. */
int replay_run(const struct config *cfg, const struct replay_options *opt, char *const *paths,
               int n);

#endif
