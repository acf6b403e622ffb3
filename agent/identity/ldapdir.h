/* The LDAP resolver: user identifier -> email through Active Directory (or
 * another LDAP directory) with OpenLDAP's libldap, on the delivery thread's
 * libevent loop, which it never blocks.
 *
 * Connections. libldap's TCP connect can be asynchronous
 * (LDAP_OPT_CONNECT_ASYNC) but its TLS handshake, StartTLS and binds are
 * not, so each connection attempt runs on a helper thread of its own: it
 * tries identity.ldap.uris in order (ldap_initialize; LDAPv3, referrals
 * off; TLS through libldap's global context, made once by ldapdir_new:
 * TLS_REQUIRE_CERT demand with ca_file and the client certificate, so the
 * server's certificate and host name are verified; StartTLS for ldap://
 * unless insecure_plaintext; a simple bind or SASL EXTERNAL),
 * each URI bounded by connect_timeout_s, and hands the first bound handle
 * back to the loop through a pipe. One attempt runs at a time. A failed
 * attempt (every URI failed) fails the lookups that waited for it and
 * starts a backoff (exponential with full jitter, 1 s doubling to 60 s,
 * reset by a success) during which lookups fail at once: the delivery
 * side retries their alerts, none is dead-lettered for an outage. A bind
 * the server refuses is logged at most once a minute. At ldapdir_free an
 * attempt still running is abandoned: the thread frees what it made when
 * it ends, and the loop never waits for it.
 *
 * Searches. Up to max_connections connections; a lookup goes to the one
 * with the fewest searches outstanding, and another is opened when each
 * has LDAPDIR_BUSY_SEARCHES or more. A search is ldap_search_ext under the
 * base DN (a DOMAIN\ of a sAMAccountName picks its domains entry) with
 * ldapfilter.h's filter, the configured attribute and a size limit of 2;
 * the connection's descriptor is watched and its answers are read with
 * ldap_result and a zero timeout. No entry is "not found" ("ldap: no such
 * user"), two are "ldap: 2 users match (ambiguous)", one without the
 * attribute is "ldap: user has no mail"; an identifier not valid for its
 * kind is "not found" without a search. A search carries timeout_s as
 * its time limit; one still without an answer a second later is
 * abandoned and fails, and its connection is closed (the server hangs); a connection the server
 * closes fails its searches and is dropped, and the next lookup connects again. Connections idle
 * for idle_timeout_s are closed. Single-threaded but for the helper threads, which touch nothing of
 * the loop's. */
#ifndef RTR_LDAPDIR_H
#define RTR_LDAPDIR_H

#include <event2/event.h>

#include "core/config.h"
#include "core/stats.h"
#include "core/userid.h"
#include "resolver.h"
#include "str.h"

/* Lookups unfinished at once (waiting for a connection or searching);
 * beyond, a lookup fails at once ("ldap: too many lookups pending") and
 * its alert is retried on the delivery side's backoff. */
#define LDAPDIR_MAX_PENDING 4096

/* Searches outstanding on each connection before another is opened. */
#define LDAPDIR_BUSY_SEARCHES 8

/* The backoff after a failed connection attempt: a blip is over in a
 * second; one attempt a minute is nothing to a directory that is down or
 * refuses the password. */
#define LDAPDIR_BACKOFF_MIN_S 1
#define LDAPDIR_BACKOFF_MAX_S 60

struct ldapdir;

/* Reads bind_password_file (a file, or a systemd credential; kept in
 * memory, wiped at ldapdir_free), makes libldap's global TLS context from
 * ca_file and the client certificate (so one configuration per process:
 * the last ldapdir_new's) and builds the resolver on base. Connects only
 * when the first lookup comes. cfg must outlive d. stats (the loop
 * thread's block) may be NULL. Errors are logged naming the key
 * ("identity.ldap.bind_password_file: FILE: empty"). Returns 0 and *out
 * (free with ldapdir_free), ERR_CONFIG / ERR_IO or ERR_NOMEM. */
int ldapdir_new(const struct ldapdir_config *cfg, struct event_base *base, struct stats *stats,
                struct ldapdir **out);

/* Looks user up (copied) as kind (never USER_KIND_AUTO). cb runs exactly
 * once: from the loop, or before ldapdir_lookup returns when no search is
 * needed or possible (an identifier not valid for its kind, a domain not
 * in identity.ldap.domains, the backoff after a failed connection,
 * LDAPDIR_MAX_PENDING others pending). detail starts with "ldap"; on
 * IDENTITY_FOUND it is the string literal "ldap". */
void ldapdir_lookup(struct ldapdir *d, enum user_kind kind, struct str user, identity_cb cb,
                    void *arg);

/* Completes every unfinished lookup with IDENTITY_ERROR ("ldap: shutting
 * down"), unbinds the connections, abandons a connection attempt still
 * running, and frees d. NULL is fine. */
void ldapdir_free(struct ldapdir *d);

/* Makes libldap's global TLS context from cfg (ca_file, the client
 * certificate and key), as ldapdir_new does: `check` loads the files a
 * start would. Returns 0, or ERR_CONFIG (logged naming the step). */
int ldapdir_tls_load(const struct ldapdir_config *cfg);

/* The base DN a search for user as kind starts from (see the top): a
 * string of cfg's, or NULL when a sAMAccountName's domain is not in a
 * non-empty identity.ldap.domains. */
const char *ldapdir_search_base(const struct ldapdir_config *cfg, enum user_kind kind,
                                struct str user);

#endif
