/* `rtr-agent check -c FILE --probe IDENTIFIER [--send-test EVENT EMAIL]`:
 * after the file checks, talks to the services the way `run` will, with
 * its own loop and HTTPS engine, and says what each step gave:
 *
 *   - identity: IDENTIFIER looked up as run would, through LDAP when
 *     identity.ldap is set (connected, TLS verified and bound first) and
 *     through Microsoft Graph when identity.graph is (a token is obtained
 *     first), each on its own, else through identity.order (the static
 *     directory): "probe: identity: X -> EMAIL (graph, 412 ms)" or the
 *     reason it failed (a refused bind names the LDAP server's reason);
 *   - with --send-test: one real request to SafeTitan (dispatch.mode direct
 *     or orchestrator) for EVENT and EMAIL, under a fresh idempotency key,
 *     and one audit line with outcome "test-dispatched" or "test-failed".
 *     Nothing is sent to SafeTitan without it.
 *
 * A failure names the step and the layer (http.h): "DNS: Could not resolve
 * host ...", "TCP: Failed to connect ...", "TLS: SSL certificate problem:
 * certificate has expired", "HTTP 401 invalid_client" with the service's
 * error code. Each step is bounded by its configured timeouts. */
#ifndef RTR_PROBE_H
#define RTR_PROBE_H

#include "core/config.h"

struct probe_options {
    const char *identifier; /* --probe */
    const char *send_event; /* --send-test EVENT EMAIL; NULL: nothing sent */
    const char *send_email;
};

/* Runs the steps opt asks for. Returns the number that failed. */
int probe_run(const struct config *cfg, const struct probe_options *opt);

#endif
