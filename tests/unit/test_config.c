/* Config loading: valid files (every key, comments, relative paths,
 * defaults), every kind of error with its exact message, duplicate keys
 * in config files (the JSON reader itself: test_json_file.c), the key
 * reference and its copy in systemd/README.md, the address and network
 * parsers behind the allowlists and the allowlist check itself. */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/config_engine.h"
#include "core/config_net.h"
#include "errors.h"
#include "ingest/allowlist.h"
#include "unit.h"

static char tmpdir[] = "/tmp/rtr-test-config.XXXXXX";

/* Loads text as FILE in the temp dir with stderr captured. */
static int load_text(const char *text, char *path, struct config **cfg, char *err, size_t cap)
{
    int rc;

    snprintf(path, PATH_MAX, "%s/rtr-agent.json", tmpdir);
    unit_write_file(path, text);
    unit_capture_begin();
    rc = config_load(path, cfg);
    unit_capture_end(err, cap);
    return rc;
}

#define LISTEN_OK "\"listen\": [{\"proto\": \"udp\", \"address\": \"127.0.0.1:0\"}]"
/* Pieces of an identity.ldap section. */
#define LDAP_URIS "\"uris\": [\"ldaps://dc1.corp.example.com\"]"
#define LDAP_DN   "\"base_dn\": \"dc=corp,dc=example,dc=com\""
#define LDAP_BASE LDAP_URIS ", " LDAP_DN
#define LDAP_CRED "\"bind_dn\": \"cn=svc,dc=corp\", \"bind_password_file\": \"pw\""

static const struct {
    const char *name;
    const char *text;
    const char *want[8]; /* every line, in order; NULL-ended */
} bad_configs[] = {
    {"unknown top-level key",
     "{" LISTEN_OK ", \"wokers\": 2}",
     {"@: wokers: unknown key (known here: listen, limits, workers, mappings, policies, identity, "
      "dispatch, spool, status, audit, smtp, approvals, log_level, log_format, summary_interval_s, "
      "user, group)"}},
    {"unknown key in a listener",
     "{\"listen\": [{\"proto\": \"udp\", \"address\": \"127.0.0.1:0\"},\n"
     "             {\"porto\": \"tcp\", \"address\": \"127.0.0.1:0\"}]}",
     {"@: listen[1].porto: unknown key (known here: proto, address, framing, tls, cert, key, "
      "client_ca, handshake_timeout_s, min_version, ciphers, ciphersuites, allowed_names, "
      "crl_file, allow, rcvbuf, port_file, auth, api_key_file, api_key_header, max_body_bytes, "
      "max_header_bytes, request_timeout_s, max_alerts, plain_beyond_loopback, "
      "idempotency_field)",
      "@: listen[1].proto: required key is missing"}},
    {"unknown key two levels down",
     "{" LISTEN_OK ", \"identity\": {\"cache\": {\"ttl\": 5}}}",
     {"@: identity.cache.ttl: unknown key (known here: ttl_s, negative_ttl_s, max_entries)"}},
    {"unknown key with a control character",
     "{" LISTEN_OK ", \"a\\u0001b\": 1}",
     {"@: a\\x01b: unknown key (known here: listen, limits, workers, mappings, policies, identity, "
      "dispatch, spool, status, audit, smtp, approvals, log_level, log_format, summary_interval_s, "
      "user, group)"}},
    {"smtp: unknown key",
     "{" LISTEN_OK ", \"smtp\": {\"url\": \"smtp://mx\", \"from\": \"a@b\", \"pass\": \"x\"}}",
     {"@: smtp.pass: unknown key (known here: url, from, username, password_file, ca_file, "
      "connect_timeout_s, timeout_s)"}},
    {"smtp: url and from required",
     "{" LISTEN_OK ", \"smtp\": {}}",
     {"@: smtp.url: required key is missing", "@: smtp.from: required key is missing"}},
    {"smtp: an https url, a from with a line break",
     "{" LISTEN_OK ", \"smtp\": {\"url\": \"https://mx\", \"from\": \"a@b\\r\\nBcc: x@y\"}}",
     {"@: smtp.url: expected smtp://host[:port] (STARTTLS) or smtps://host[:port], without a user "
      "or password, got \"https://mx\"",
      "@: smtp.from: expected a bare address (local@domain: no name, brackets, spaces or control "
      "characters)"}},
    {"smtp: a login in the url, a from with a name",
     "{" LISTEN_OK ", \"smtp\": {\"url\": \"smtp://u:p@mx\", \"from\": \"Agent <a@b>\"}}",
     {"@: smtp.url: expected smtp://host[:port] (STARTTLS) or smtps://host[:port], without a user "
      "or password, got \"smtp://u:p@mx\"",
      "@: smtp.from: expected a bare address (local@domain: no name, brackets, spaces or control "
      "characters)"}},
    {"smtp: username without password_file",
     "{" LISTEN_OK ", \"smtp\": {\"url\": \"smtps://mx\", \"from\": \"a@b\", "
     "\"username\": \"u\"}}",
     {"@: smtp.password_file: required with username"}},
    {"smtp: password_file without username, timeout out of range",
     "{" LISTEN_OK ", \"smtp\": {\"url\": \"smtps://mx\", \"from\": \"a@b\", "
     "\"password_file\": \"pw\", \"timeout_s\": 0}}",
     {"@: smtp.timeout_s: expected an integer from 1 to 600, got 0",
      "@: smtp.username: required with password_file"}},
    {"string for an integer",
     "{" LISTEN_OK ", \"workers\": \"4\"}",
     {"@: workers: expected an integer from 0 to 256, got \"4\""}},
    {"fraction for an integer",
     "{" LISTEN_OK ", \"workers\": 1.5}",
     {"@: workers: expected an integer from 0 to 256, got 1.5"}},
    {"integer out of range",
     "{" LISTEN_OK ", \"limits\": {\"max_message_bytes\": 100}}",
     {"@: limits.max_message_bytes: expected an integer from 480 to 16777216, got 100"}},
    {"integer past int64",
     "{" LISTEN_OK ", \"limits\": {\"idle_timeout_s\": 99999999999999999999}}",
     {"@: limits.idle_timeout_s: expected an integer from 0 to 86400, got "
      "18446744073709551615"}},
    {"zero handshake timeout (there is no \"never\")",
     "{\"listen\": [{\"proto\": \"tls\", \"address\": \"127.0.0.1:6514\", \"cert\": \"c.pem\", "
     "\"key\": \"k.pem\", \"handshake_timeout_s\": 0}]}",
     {"@: listen[0].handshake_timeout_s: expected an integer from 1 to 300, got 0"}},
    {"negative size",
     "{" LISTEN_OK ", \"identity\": {\"cache\": {\"max_entries\": -1}}}",
     {"@: identity.cache.max_entries: expected an integer from 1 to 100000000, got -1"}},
    {"object for a string",
     "{" LISTEN_OK ", \"log_level\": {}}",
     {"@: log_level: expected one of \"error\", \"warning\", \"info\", \"debug\", got an "
      "object"}},
    {"array for an object",
     "{" LISTEN_OK ", \"limits\": []}",
     {"@: limits: expected an object, got an array"}},
    {"string for a boolean",
     "{" LISTEN_OK ", \"audit\": {\"hash_users\": \"yes\"}}",
     {"@: audit.hash_users: expected true or false, got \"yes\""}},
    {"hash_users false next to a hash key",
     "{" LISTEN_OK ", \"audit\": {\"hash_users\": false, \"hash_key_file\": \"audit.key\"}}",
     {"@: audit.hash_users: false contradicts audit.hash_key_file, which hashes users"}},
    {"bad enum",
     "{\"listen\": [{\"proto\": \"udp\", \"address\": \"127.0.0.1:0\"},\n"
     "  {\"proto\": \"tcp\", \"address\": \"127.0.0.1:0\", \"framing\": \"crlf\"}]}",
     {"@: listen[1].framing: expected one of \"auto\", \"lf\", \"octet\", got \"crlf\""}},
    {"null for a key with a default",
     "{\"listen\": [{\"proto\": \"tcp\", \"address\": \"127.0.0.1:0\", \"framing\": null}]}",
     {"@: listen[0].framing: expected one of \"auto\", \"lf\", \"octet\", got null"}},
    {"null for a required key",
     "{\"listen\": [{\"proto\": \"udp\", \"address\": null}]}",
     {"@: listen[0].address: expected a string, got null"}},
    {"empty string for a choice",
     "{" LISTEN_OK ", \"log_level\": \"\"}",
     {"@: log_level: expected one of \"error\", \"warning\", \"info\", \"debug\", got \"\""}},
    {"empty string",
     "{" LISTEN_OK ", \"spool\": {\"dir\": \"\"}}",
     {"@: spool.dir: must not be empty"}},
    {"NUL inside a string",
     "{" LISTEN_OK ", \"spool\": {\"dir\": \"a\\u0000b\"}}",
     {"@: spool.dir: contains a NUL character"}},
    {"host name for an address",
     "{\"listen\": [{\"proto\": \"udp\", \"address\": \"localhost:514\"}]}",
     {"@: listen[0].address: expected a numeric \"IPv4:port\" or \"[IPv6]:port\" with a port "
      "from 0 to 65535, got \"localhost:514\""}},
    {"port out of range",
     "{\"listen\": [{\"proto\": \"udp\", \"address\": \"[::1]:65536\"}]}",
     {"@: listen[0].address: expected a numeric \"IPv4:port\" or \"[IPv6]:port\" with a port "
      "from 0 to 65535, got \"[::1]:65536\""}},
    {"bad networks",
     "{\"listen\": [{\"proto\": \"udp\", \"address\": \"127.0.0.1:0\",\n"
     "  \"allow\": [\"10.0.0.0/8\", \"10.0.0.0/33\", \"10.0.0.1/8\", \"fe80::1/10\", 7]}]}",
     {"@: listen[0].allow[1]: expected an IPv4 or IPv6 network such as \"10.0.0.0/8\", got "
      "\"10.0.0.0/33\"",
      "@: listen[0].allow[2]: 10.0.0.1/8 has host bits set; the network is 10.0.0.0/8",
      "@: listen[0].allow[3]: fe80::1/10 has host bits set; the network is fe80::/10",
      "@: listen[0].allow[4]: expected a string, got 7"}},
    {"tls without cert and key",
     "{\"listen\": [{\"proto\": \"tls\", \"address\": \"0.0.0.0:6514\"}]}",
     {"@: listen[0].cert: required with proto \"tls\"",
      "@: listen[0].key: required with proto \"tls\""}},
    {"tls keys on udp",
     "{\"listen\": [{\"proto\": \"udp\", \"address\": \"127.0.0.1:0\", \"framing\": \"lf\",\n"
     "  \"cert\": \"a.pem\"}]}",
     {"@: listen[0].framing: not used with proto \"udp\" (only with \"tcp\" or \"tls\")",
      "@: listen[0].cert: not used with proto \"udp\" (only with \"tls\" or \"relp\" or "
      "\"http\")"}},
    {"tls keys on plain relp",
     "{\"listen\": [{\"proto\": \"relp\", \"address\": \"127.0.0.1:0\", \"cert\": \"c.pem\",\n"
     "  \"client_ca\": \"ca.pem\", \"tls\": false}]}",
     {"@: listen[0].cert: only used with \"tls\": true",
      "@: listen[0].client_ca: only used with \"tls\": true"}},
    {"tls policy keys on tcp",
     "{\"listen\": [{\"proto\": \"tcp\", \"address\": \"127.0.0.1:0\", \"min_version\": \"1.3\",\n"
     "  \"ciphers\": \"ECDHE+AESGCM\", \"ciphersuites\": \"TLS_AES_128_GCM_SHA256\"}]}",
     {"@: listen[0].min_version: not used with proto \"tcp\" (only with \"tls\" or \"relp\" or "
      "\"http\")",
      "@: listen[0].ciphers: not used with proto \"tcp\" (only with \"tls\" or \"relp\" or "
      "\"http\")",
      "@: listen[0].ciphersuites: not used with proto \"tcp\" (only with \"tls\" or \"relp\" or "
      "\"http\")"}},
    {"client certificate keys on udp",
     "{\"listen\": [{\"proto\": \"udp\", \"address\": \"127.0.0.1:0\",\n"
     "  \"allowed_names\": [\"a.example\"], \"crl_file\": \"ca.crl\"}]}",
     {"@: listen[0].allowed_names: not used with proto \"udp\" (only with \"tls\" or \"relp\" or "
      "\"http\")",
      "@: listen[0].crl_file: not used with proto \"udp\" (only with \"tls\" or \"relp\" or "
      "\"http\")"}},
    {"tls policy keys on plain relp",
     "{\"listen\": [{\"proto\": \"relp\", \"address\": \"127.0.0.1:0\", \"min_version\": \"1.3\",\n"
     "  \"ciphers\": \"ECDHE+AESGCM\", \"allowed_names\": [\"a.example\"], \"crl_file\": \"c\"}]}",
     {"@: listen[0].min_version: only used with \"tls\": true",
      "@: listen[0].ciphers: only used with \"tls\": true",
      "@: listen[0].allowed_names: only used with \"tls\": true",
      "@: listen[0].crl_file: only used with \"tls\": true"}},
    {"client certificate keys without client_ca",
     "{\"listen\": [{\"proto\": \"tls\", \"address\": \"127.0.0.1:0\", \"cert\": \"c.pem\",\n"
     "  \"key\": \"k.pem\", \"allowed_names\": [\"a.example\"], \"crl_file\": \"ca.crl\",\n"
     "  \"client_ca\": null}]}",
     {"@: listen[0].allowed_names: needs client_ca (it applies to the client certificates "
      "verified against it)",
      "@: listen[0].crl_file: needs client_ca (it applies to the client certificates verified "
      "against it)"}},
    {"bad allowed_names",
     "{\"listen\": [{\"proto\": \"tls\", \"address\": \"127.0.0.1:0\", \"cert\": \"c.pem\",\n"
     "  \"key\": \"k.pem\", \"client_ca\": \"ca.pem\",\n"
     "  \"allowed_names\": [\"\", 7, \"*.example\", \"a\\u0001b\"]}]}",
     {"@: listen[0].allowed_names[0]: expected a certificate name, got \"\"",
      "@: listen[0].allowed_names[1]: expected a certificate name, got 7",
      "@: listen[0].allowed_names[2]: wildcards are not supported: list each name a client "
      "certificate carries",
      "@: listen[0].allowed_names[3]: contains a control character"}},
    {"allowed_names empty or not a list",
     "{\"listen\": [{\"proto\": \"tls\", \"address\": \"127.0.0.1:0\", \"cert\": \"c.pem\",\n"
     "  \"key\": \"k.pem\", \"client_ca\": \"ca.pem\", \"allowed_names\": []},\n"
     "  {\"proto\": \"tls\", \"address\": \"127.0.0.1:1\", \"cert\": \"c.pem\",\n"
     "  \"key\": \"k.pem\", \"client_ca\": \"ca.pem\", \"allowed_names\": \"a.example\"}]}",
     {"@: listen[0].allowed_names: expected an array of at least 1 name, got an array",
      "@: listen[1].allowed_names: expected an array of at least 1 name, got \"a.example\""}},
    {"TLS version and suites OpenSSL refuses",
     "{\"listen\": [{\"proto\": \"tls\", \"address\": \"127.0.0.1:0\", \"cert\": \"c.pem\",\n"
     "  \"key\": \"k.pem\", \"min_version\": \"1.1\"},\n"
     "  {\"proto\": \"relp\", \"tls\": true, \"address\": \"127.0.0.1:1\", \"cert\": \"c.pem\",\n"
     "  \"key\": \"k.pem\", \"ciphers\": \"NOPE-AES\", \"ciphersuites\": \"AES128-SHA\"}]}",
     {"@: listen[0].min_version: expected one of \"1.2\", \"1.3\", got \"1.1\"",
      "@: listen[1].ciphers: OpenSSL takes no TLS 1.2 cipher from \"NOPE-AES\" (no cipher match)",
      "@: listen[1].ciphersuites: OpenSSL takes no TLS 1.3 cipher suite from \"AES128-SHA\" (no "
      "cipher match)"}},
    /* OpenSSL accepts the string, then would never negotiate what it selects. */
    {"TLS 1.2 ciphers none of which OpenSSL would use",
     "{\"listen\": [{\"proto\": \"tls\", \"address\": \"127.0.0.1:0\", \"cert\": \"c.pem\",\n"
     "  \"key\": \"k.pem\", \"ciphers\": \"aNULL\"}]}",
     {"@: listen[0].ciphers: \"aNULL\" selects no TLS 1.2 cipher OpenSSL would use here (below "
      "its security level, or anonymous, null or PSK ciphers)"}},
    {"relp over tls without cert and key",
     "{\"listen\": [{\"proto\": \"relp\", \"address\": \"127.0.0.1:0\", \"tls\": true}]}",
     {"@: listen[0].cert: required with \"tls\": true",
      "@: listen[0].key: required with \"tls\": true"}},
    {"relp over tls the rsyslog way",
     "{\"listen\": [{\"proto\": \"relp\", \"address\": \"127.0.0.1:0\", \"tls\": \"on\",\n"
     "  \"cert\": \"c.pem\", \"key\": \"k.pem\"}]}",
     {"@: listen[0].tls: expected true or false, got \"on\""}},
    {"tls flag and framing outside relp",
     "{\"listen\": [{\"proto\": \"tls\", \"address\": \"127.0.0.1:0\", \"tls\": true,\n"
     "  \"cert\": \"c.pem\", \"key\": \"k.pem\"},\n"
     "  {\"proto\": \"relp\", \"address\": \"127.0.0.1:0\", \"framing\": \"lf\"}]}",
     {"@: listen[0].tls: not used with proto \"tls\" (only with \"relp\" or \"http\")",
      "@: listen[1].framing: not used with proto \"relp\" (only with \"tcp\" or \"tls\")"}},
    {"http without a key, plain beyond loopback",
     "{\"listen\": [{\"proto\": \"http\", \"address\": \"0.0.0.0:8443\"}]}",
     {"@: listen[0].api_key_file: required with proto \"http\" (and \"auth\": \"api_key\")",
      "@: listen[0].tls: plain HTTP beyond loopback sends the API key in clear: set \"tls\": "
      "true (or \"plain_beyond_loopback\": true behind a TLS proxy)"}},
    {"http keys elsewhere, tls keys on plain http",
     "{\"listen\": [{\"proto\": \"tcp\", \"address\": \"127.0.0.1:0\", \"api_key_file\": \"k\"},\n"
     "  {\"proto\": \"http\", \"address\": \"127.0.0.1:0\", \"api_key_file\": \"k\",\n"
     "   \"cert\": \"c.pem\"}]}",
     {"@: listen[0].api_key_file: not used with proto \"tcp\" (only with \"http\")",
      "@: listen[1].cert: only used with \"tls\": true"}},
    {"http auth by client certificate without TLS, a key besides, a bad idempotency field",
     "{\"listen\": [{\"proto\": \"http\", \"address\": \"127.0.0.1:0\",\n"
     "  \"auth\": \"client_cert\", \"api_key_file\": \"k\", \"idempotency_field\": \"a..b\"},\n"
     "  {\"proto\": \"http\", \"address\": \"127.0.0.1:0\", \"auth\": \"cert\"}]}",
     {"@: listen[0].auth: \"client_cert\" needs \"tls\": true and \"client_ca\" (the CA that "
      "issues the clients' certificates)",
      "@: listen[0].api_key_file: not used with \"auth\": \"client_cert\" (the certificate is "
      "the credential): remove it, or use \"auth\": \"api_key\"",
      "@: listen[0].idempotency_field: a path into the alert's JSON: keys and array indexes "
      "separated by '.', none empty (\"SystemAlertId\", \"result.sid\")",
      "@: listen[1].auth: expected one of \"api_key\", \"client_cert\", got \"cert\"",
      "@: listen[1].api_key_file: required with proto \"http\" (and \"auth\": \"api_key\")"}},
    {"negative rcvbuf",
     "{\"listen\": [{\"proto\": \"tcp\", \"address\": \"127.0.0.1:0\", \"rcvbuf\": -1}]}",
     {"@: listen[0].rcvbuf: expected an integer from 0 to 268435456, got -1"}},
    {"drain timeout and queue out of range",
     "{" LISTEN_OK ", \"limits\": {\"drain_timeout_s\": 301, \"queue_messages\": 0}}",
     {"@: limits.drain_timeout_s: expected an integer from 0 to 300, got 301",
      "@: limits.queue_messages: expected an integer from 1 to 16777216, got 0"}},
    {"no listen key", "{\"workers\": 1}", {"@: listen: required key is missing"}},
    {"empty listen", "{\"listen\": []}", {"@: listen: needs at least 1 entry"}},
    {"listener not an object",
     "{\"listen\": [\"udp\"]}",
     {"@: listen[0]: expected an object, got \"udp\""}},
    {"duplicate stream listener",
     "{\"listen\": [{\"proto\": \"tcp\", \"address\": \"127.0.0.1:5514\"},\n"
     "  {\"proto\": \"udp\", \"address\": \"127.0.0.1:5514\"},\n"
     "  {\"proto\": \"tls\", \"address\": \"127.0.0.1:5514\", \"cert\": \"c\", \"key\": \"k\"},\n"
     "  {\"proto\": \"relp\", \"address\": \"127.0.0.1:5514\"}],\n"
     " \"status\": {\"address\": \"127.0.0.1:5514\"}}",
     {"@: listen[2].address: 127.0.0.1:5514 is already used by listen[0]",
      "@: listen[3].address: 127.0.0.1:5514 is already used by listen[0]",
      "@: status.address: 127.0.0.1:5514 is already used by listen[0]"}},
    {"connection buffer under one message",
     "{" LISTEN_OK ", \"limits\": {\"max_message_bytes\": 1000, \"max_connection_buffer\": 1000}}",
     {"@: limits.max_connection_buffer: must be at least max_message_bytes + 11 (1011), got "
      "1000"}},
    {"direct dispatch without its keys",
     "{" LISTEN_OK ", \"dispatch\": {\"mode\": \"direct\"}}",
     {"@: dispatch.url: required with mode \"direct\"",
      "@: dispatch.api_key_file: required with mode \"direct\"",
      "@: spool.dir: required when dispatch.mode is \"direct\""}},
    {"orchestrator without its ids",
     "{" LISTEN_OK ", \"spool\": {\"dir\": \"s\"}, \"dispatch\": {\"mode\": \"orchestrator\",\n"
     " \"url\": \"https://orch.example\", \"api_key_file\": \"k\", \"source\": \"splunk\"}}",
     {"@: dispatch.orch_id: required with mode \"orchestrator\"",
      "@: dispatch.org_id: required with mode \"orchestrator\""}},
    {"plain http URL",
     "{" LISTEN_OK ", \"dispatch\": {\"url\": \"http://safetitan.example/\"}}",
     {"@: dispatch.url: expected an https:// URL, got \"http://safetitan.example/\""}},
    {"retry bounds reversed",
     "{" LISTEN_OK ", \"dispatch\": {\"retry_min_s\": 60, \"retry_max_s\": 10}}",
     {"@: dispatch.retry_min_s: must not exceed retry_max_s (10), got 60"}},
    /* Each would make every request malformed, retried forever. */
    {"header name with a colon",
     "{" LISTEN_OK ", \"dispatch\": {\"api_key_header\": \"X-API-Key:\"}}",
     {"@: dispatch.api_key_header: expected an HTTP header name (letters, digits and "
      "!#$%&'*+-.^_`|~), got \"X-API-Key:\": ':' is not allowed"}},
    {"header name with a space",
     "{" LISTEN_OK ", \"dispatch\": {\"api_key_header\": \"X API Key\"}}",
     {"@: dispatch.api_key_header: expected an HTTP header name (letters, digits and "
      "!#$%&'*+-.^_`|~), got \"X API Key\": a space is not allowed"}},
    {"header name with CR LF (a second header)",
     "{" LISTEN_OK ", \"dispatch\": {\"api_key_header\": \"X-Key\\r\\nEvil: 1\"}}",
     {"@: dispatch.api_key_header: expected an HTTP header name (letters, digits and "
      "!#$%&'*+-.^_`|~), got \"X-Key\\\\r\\\\nEvil: 1\": byte 0x0d is not allowed"}},
    {"header name with a NUL",
     "{" LISTEN_OK ", \"dispatch\": {\"api_key_header\": \"X\\u0000Key\"}}",
     {"@: dispatch.api_key_header: expected an HTTP header name (letters, digits and "
      "!#$%&'*+-.^_`|~), got \"X\\\\u0000Key\": byte 0x00 is not allowed"}},
    {"header name not ASCII",
     "{" LISTEN_OK ", \"dispatch\": {\"api_key_header\": \"Cl\\u00e9\"}}",
     {"@: dispatch.api_key_header: expected an HTTP header name (letters, digits and "
      "!#$%&'*+-.^_`|~), got \"Cl\xc3\xa9\": byte 0xc3 is not allowed"}},
    {"header name empty",
     "{" LISTEN_OK ", \"dispatch\": {\"api_key_header\": \"\"}}",
     {"@: dispatch.api_key_header: must not be empty"}},
    {"header name not a string",
     "{" LISTEN_OK ", \"dispatch\": {\"api_key_header\": 7}}",
     {"@: dispatch.api_key_header: expected a string, got 7"}},
    {"resolver not configured",
     "{" LISTEN_OK ", \"identity\": {\"order\": [\"static\", \"graph\"],\n"
     " \"static\": {\"file\": \"u.csv\"}}}",
     {"@: identity.order[1]: \"graph\" is listed but identity.graph is not configured"}},
    {"resolver twice",
     "{" LISTEN_OK ", \"identity\": {\"order\": [\"static\", \"static\"],\n"
     " \"static\": {\"file\": \"u.csv\"}}}",
     {"@: identity.order[1]: \"static\" is listed twice"}},
    {"unknown resolver",
     "{" LISTEN_OK ", \"identity\": {\"order\": [\"ad\"]}}",
     {"@: identity.order[0]: expected one of \"static\", \"graph\", \"ldap\", got \"ad\""}},
    {"ldap listed but not configured",
     "{" LISTEN_OK ", \"identity\": {\"order\": [\"ldap\"]}}",
     {"@: identity.order[0]: \"ldap\" is listed but identity.ldap is not configured"}},
    {"ldap without uris and base_dn",
     "{" LISTEN_OK ", \"identity\": {\"ldap\": {" LDAP_CRED "}}}",
     {"@: identity.ldap.uris: required key is missing",
      "@: identity.ldap.base_dn: required key is missing"}},
    {"ldap with no uri",
     "{" LISTEN_OK ", \"identity\": {\"ldap\": {\"uris\": [], " LDAP_DN ", " LDAP_CRED "}}}",
     {"@: identity.ldap.uris: expected an array of 1 to 8 URIs, got an array"}},
    {"ldap with nine uris",
     "{" LISTEN_OK ", \"identity\": {\"ldap\": {\"uris\": [\"ldaps://a\", \"ldaps://b\",\n"
     " \"ldaps://c\", \"ldaps://d\", \"ldaps://e\", \"ldaps://f\", \"ldaps://g\", \"ldaps://h\",\n"
     " \"ldaps://i\"], " LDAP_DN ", " LDAP_CRED "}}}",
     {"@: identity.ldap.uris: expected an array of 1 to 8 URIs, got an array"}},
    {"ldap uris that are not ldap[s]://host[:port]",
     "{" LISTEN_OK ", \"identity\": {\"ldap\": {\"uris\": [\"https://dc1:636\",\n"
     " \"ldaps://dc1/dc=corp,dc=com\", \"ldap://dc1:0\", \"ldaps://dc1 ldaps://dc2\",\n"
     " \"ldaps://\", \"ldaps://[::1]:636\", \"LDAPS://DC2:3269/\"],\n"
     " " LDAP_DN ", " LDAP_CRED "}}}",
     {"@: identity.ldap.uris[0]: expected an ldaps:// or ldap:// URI, got \"https://dc1:636\"",
      "@: identity.ldap.uris[1]: has a path or DN part: the search base is base_dn, got "
      "\"ldaps://dc1/dc=corp,dc=com\"",
      "@: identity.ldap.uris[2]: expected a port from 1 to 65535 after ':', got \"ldap://dc1:0\"",
      "@: identity.ldap.uris[3]: contains a blank or a control character (one URI per entry), "
      "got \"ldaps://dc1 ldaps://dc2\"",
      "@: identity.ldap.uris[4]: names no host, got \"ldaps://\""}},
    {"ldap uri with a query, and not a string",
     "{" LISTEN_OK ", \"identity\": {\"ldap\": {\"uris\": [\"ldap://dc1?mail\", 7],\n"
     " " LDAP_DN ", " LDAP_CRED "}}}",
     {"@: identity.ldap.uris[0]: has a path or DN part: the search base is base_dn, got "
      "\"ldap://dc1?mail\"",
      "@: identity.ldap.uris[1]: expected an ldaps:// or ldap:// URI, got 7"}},
    {"ldap without a credential",
     "{" LISTEN_OK ", \"identity\": {\"ldap\": {" LDAP_URIS ", \"base_dn\": \"dc=corp,dc=com\"}}}",
     {"@: identity.ldap: no credential: set bind_dn and bind_password_file, or sasl_external with "
      "client_certificate_file and client_key_file"}},
    {"ldap bind_dn without its password",
     "{" LISTEN_OK ", \"identity\": {\"ldap\": {" LDAP_URIS ", \"base_dn\": \"dc=corp,dc=com\",\n"
     " \"bind_dn\": \"svc@corp.example.com\"}}}",
     {"@: identity.ldap.bind_password_file: required with bind_dn"}},
    {"ldap password without bind_dn",
     "{" LISTEN_OK ", \"identity\": {\"ldap\": {" LDAP_URIS ", \"base_dn\": \"dc=corp,dc=com\",\n"
     " \"bind_password_file\": \"pw\"}}}",
     {"@: identity.ldap.bind_dn: required with bind_password_file"}},
    {"ldap sasl_external without a certificate",
     "{" LISTEN_OK ", \"identity\": {\"ldap\": {" LDAP_URIS ", \"base_dn\": \"dc=corp,dc=com\",\n"
     " \"sasl_external\": true}}}",
     {"@: identity.ldap.client_certificate_file: required with sasl_external",
      "@: identity.ldap.client_key_file: required with sasl_external"}},
    {"ldap sasl_external and a bind_dn",
     "{" LISTEN_OK ", \"identity\": {\"ldap\": {" LDAP_BASE ", " LDAP_CRED
     ", \"sasl_external\": true,\n"
     " \"client_certificate_file\": \"c.pem\", \"client_key_file\": \"c.key\"}}}",
     {"@: identity.ldap.bind_dn: sasl_external is set too: set either bind_dn and "
      "bind_password_file, or sasl_external"}},
    {"ldap certificate without its key",
     "{" LISTEN_OK ", \"identity\": {\"ldap\": {" LDAP_BASE ", " LDAP_CRED ",\n"
     " \"client_certificate_file\": \"c.pem\"}}}",
     {"@: identity.ldap.client_key_file: required with client_certificate_file"}},
    {"ldap key without its certificate, sasl_external",
     "{" LISTEN_OK ", \"identity\": {\"ldap\": {" LDAP_URIS ", \"base_dn\": \"dc=corp,dc=com\",\n"
     " \"sasl_external\": true, \"client_key_file\": \"c.key\"}}}",
     {"@: identity.ldap.client_certificate_file: required with client_key_file"}},
    {"ldap DNs that are not DNs",
     "{" LISTEN_OK ", \"identity\": {\"ldap\": {" LDAP_URIS ", \"base_dn\": \"corp.example.com\",\n"
     " \"bind_dn\": \"cn=svc,,dc=corp\", \"bind_password_file\": \"pw\",\n"
     " \"domains\": {\"CORP\": \"dc=corp,dc=com\", \"corp\": \"dc=x\", \"EMEA\": \"emea\",\n"
     "             \"A\\\\B\": \"dc=a\", \"APAC\": 1}}}}",
     {"@: identity.ldap.domains.corp: listed twice (domain names are compared in any case)",
      "@: identity.ldap.domains.EMEA: not a distinguished name (RFC 4514: "
      "\"dc=corp,dc=example,dc=com\")",
      "@: identity.ldap.domains.A\\\\B: expected a NetBIOS domain name (as in DOMAIN\\\\user)",
      "@: identity.ldap.domains.APAC: expected a base DN, got 1",
      "@: identity.ldap.base_dn: not a distinguished name (RFC 4514: "
      "\"dc=corp,dc=example,dc=com\")",
      "@: identity.ldap.bind_dn: not a distinguished name (RFC 4514: "
      "\"dc=corp,dc=example,dc=com\")"}},
    {"ldap bind DN not a DN, domains not an object",
     "{" LISTEN_OK ", \"identity\": {\"ldap\": {" LDAP_URIS ", \"base_dn\": \"dc=corp\",\n"
     " \"bind_dn\": \"cn=svc,,dc=corp\", \"bind_password_file\": \"pw\", \"domains\": []}}}",
     {"@: identity.ldap.domains: expected an object of NetBIOS domain names to base DNs, got "
      "an array",
      "@: identity.ldap.bind_dn: not a distinguished name (RFC 4514: "
      "\"dc=corp,dc=example,dc=com\")"}},
    {"ldap sasl_external in plaintext",
     "{" LISTEN_OK ", \"identity\": {\"ldap\": {\"uris\": [\"ldap://dc1\"],\n"
     " \"base_dn\": \"dc=corp\", \"sasl_external\": true, \"insecure_plaintext\": true,\n"
     " \"client_certificate_file\": \"c.pem\", \"client_key_file\": \"c.key\"}}}",
     {"@: identity.ldap.insecure_plaintext: sasl_external authenticates with the TLS client "
      "certificate: it needs TLS on every URI"}},
    {"ldap numbers out of range",
     "{" LISTEN_OK ", \"identity\": {\"ldap\": {" LDAP_BASE ", " LDAP_CRED ",\n"
     " \"connect_timeout_s\": 0, \"timeout_s\": 301, \"idle_timeout_s\": -1,\n"
     " \"max_connections\": 17, \"attribute\": \"email\"}}}",
     {"@: identity.ldap.connect_timeout_s: expected an integer from 1 to 60, got 0",
      "@: identity.ldap.timeout_s: expected an integer from 1 to 300, got 301",
      "@: identity.ldap.idle_timeout_s: expected an integer from 0 to 86400, got -1",
      "@: identity.ldap.max_connections: expected an integer from 1 to 16, got 17",
      "@: identity.ldap.attribute: expected one of \"mail\", \"userPrincipalName\", got "
      "\"email\""}},
    {"graph without its credentials",
     "{" LISTEN_OK ", \"identity\": {\"graph\": {\"cloud\": \"china\"}}}",
     {"@: identity.graph.tenant_id: required key is missing",
      "@: identity.graph.client_id: required key is missing",
      "@: identity.graph: no credential: set client_secret_file, or client_certificate_file "
      "and client_key_file"}},
    {"graph with a secret and a certificate",
     "{" LISTEN_OK ", \"identity\": {\"graph\": {\"tenant_id\": \"t\", \"client_id\": \"c\",\n"
     " \"client_secret_file\": \"s\", \"client_certificate_file\": \"c.pem\",\n"
     " \"client_key_file\": \"c.key\"}}}",
     {"@: identity.graph.client_certificate_file: client_secret_file is set too: set either "
      "client_secret_file, or client_certificate_file and client_key_file"}},
    {"graph certificate without its key",
     "{" LISTEN_OK ", \"identity\": {\"graph\": {\"tenant_id\": \"t\", \"client_id\": \"c\",\n"
     " \"client_certificate_file\": \"c.pem\"}}}",
     {"@: identity.graph.client_key_file: required with client_certificate_file"}},
    {"several problems at once",
     "{\"listen\": [{\"proto\": \"sctp\", \"address\": \"1.2.3.4\"}],\n"
     " \"workers\": -1, \"log_level\": \"verbose\"}",
     {"@: listen[0].proto: expected one of \"udp\", \"tcp\", \"tls\", \"relp\", \"http\", got "
      "\"sctp\"",
      "@: listen[0].address: expected a numeric \"IPv4:port\" or \"[IPv6]:port\" with a port "
      "from 0 to 65535, got \"1.2.3.4\"",
      "@: workers: expected an integer from 0 to 256, got -1",
      "@: log_level: expected one of \"error\", \"warning\", \"info\", \"debug\", got "
      "\"verbose\""}},
    {"JSON: missing comma",
     "{\n  \"listen\": []\n  \"workers\": 1\n}",
     {"@:3:3: invalid JSON: object value separator ',' expected"}},
    {"JSON: unterminated", "{\"listen\": [\n", {"@:2:1: invalid JSON: unexpected end of data"}},
    {"JSON: text after the object",
     "{" LISTEN_OK "}\n// fine\n}",
     {"@:3:1: invalid JSON: unexpected text after the top-level object"}},
    {"JSON: not an object", "[1, 2]", {"@: expected a JSON object at the top level, got an array"}},
    {"JSON: empty file", "", {"@:1:1: invalid JSON: unexpected end of data"}},
    /* json-c would keep the last of each and say nothing. */
    {"duplicate top-level key",
     "{" LISTEN_OK ", \"workers\": 1,\n  \"workers\": 2}",
     {"@:2:3: duplicate key \"workers\""}},
    {"duplicate key in a section, twice",
     "{" LISTEN_OK ",\n \"identity\": {\"cache\": {\"ttl_s\": 1, \"ttl_s\": 2, \"ttl_s\": 3}}}",
     {"@:2:37: duplicate key \"ttl_s\"", "@:2:49: duplicate key \"ttl_s\""}},
    {"duplicate key in an array element",
     "{\"listen\": [{\"proto\": \"udp\", \"address\": \"127.0.0.1:0\"},\n"
     "  {\"proto\": \"udp\", \"address\": \"127.0.0.1:1\", \"proto\": \"tcp\"}]}",
     {"@:2:46: duplicate key \"proto\""}},
    {"duplicate key spelled with an escape",
     "{" LISTEN_OK ", \"log_level\": \"info\", \"log_\\u006cevel\": \"debug\"}",
     {"@:1:79: duplicate key \"log_\\\\u006cevel\""}},
    {"trailing comma", "{" LISTEN_OK ", \"workers\": 1,\n}", {"@:1:70: trailing comma"}},
    {"duplicate key and a syntax error",
     "{\"workers\": 1, \"workers\": 2",
     {"@:1:16: duplicate key \"workers\"", "@:1:28: invalid JSON: unexpected end of data"}},
};

static void test_bad_configs(void)
{
    char path[PATH_MAX], err[8192];

    for (size_t i = 0; i < sizeof(bad_configs) / sizeof(bad_configs[0]); i++) {
        struct config *cfg = (struct config *)1;
        int rc = load_text(bad_configs[i].text, path, &cfg, err, sizeof(err));

        CHECK_INT(rc, ERR_CONFIG);
        CHECK(cfg == NULL);
        unit_check_messages(bad_configs[i].name, err, path, bad_configs[i].want);
    }
}

static void test_missing_file(void)
{
    char path[PATH_MAX], err[1024], want[PATH_MAX + 64];
    struct config *cfg;
    const char *msgs[2];

    snprintf(path, sizeof(path), "%s/absent.json", tmpdir);
    unit_capture_begin();
    CHECK_INT(config_load(path, &cfg), ERR_CONFIG);
    unit_capture_end(err, sizeof(err));
    CHECK_INT(unit_split_messages(err, msgs, 2), 1);
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
    CHECK_STR("missing file", str_make(msgs[0], strlen(msgs[0])), want);
}

/* Every key design.md names, comments of both kinds, relative paths. */
static const char full_config[] =
    "// a comment line\n"
    "{\n"
    "  /* block comment */\n"
    "  \"listen\": [\n"
    "    {\"proto\": \"udp\", \"address\": \"127.0.0.1:5514\", \"rcvbuf\": 4194304},\n"
    "    {\"proto\": \"tcp\", \"address\": \"[::1]:5514\", \"framing\": \"octet\",\n"
    "     \"port_file\": \"run/tcp.port\"},\n"
    "    {\"proto\": \"tls\", \"address\": \"0.0.0.0:6514\", \"cert\": \"server.pem\",\n"
    "     \"key\": \"/etc/ssl/server.key\", \"client_ca\": \"clients-ca.pem\",\n"
    "     \"allow\": [\"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.7\"],\n"
    "     \"handshake_timeout_s\": 5, \"min_version\": \"1.3\", \"ciphers\": \"aNULL\",\n"
    "     \"ciphersuites\": \"TLS_AES_256_GCM_SHA384\", \"crl_file\": \"clients.crl\",\n"
    "     \"allowed_names\": [\"Sender.Example\", \"spiffe://example/sender\"]},\n"
    "    {\"proto\": \"relp\", \"address\": \"127.0.0.1:2514\", \"rcvbuf\": 0},\n"
    "    {\"proto\": \"relp\", \"address\": \"127.0.0.1:2515\", \"tls\": true,\n"
    "     \"cert\": \"relp.pem\", \"key\": \"relp.key\", \"client_ca\": \"clients-ca.pem\",\n"
    "     \"handshake_timeout_s\": 7, \"rcvbuf\": 131072}\n"
    "  ],\n"
    "  \"limits\": {\"max_message_bytes\": 8192, \"max_connections\": 10,\n"
    "             \"idle_timeout_s\": 60, \"oversize\": \"reject\", \"queue_messages\": 100,\n"
    "             \"regex_match_limit\": 5000, \"regex_depth_limit\": 50,\n"
    "             \"drain_timeout_s\": 30},\n"
    "  \"workers\": 3,                       // 0 = one per core\n"
    "  \"mappings\": [\"mappings/*.json\", \"/usr/share/rtr-agent/mappings/*.json\"],\n"
    "  \"identity\": {\n"
    "    \"order\": [\"graph\", \"static\"],\n"
    "    \"static\": {\"file\": \"users.csv\"},\n"
    "    \"graph\": {\"tenant_id\": \"t-1\", \"client_id\": \"c-1\",\n"
    "              \"client_secret_file\": \"graph.secret\", \"cloud\": \"usgov\",\n"
    "              \"attribute\": \"userPrincipalName\",\n"
    "              \"graph_url\": \"https://127.0.0.1:8443\"},\n"
    "    \"cache\": {\"ttl_s\": 60, \"negative_ttl_s\": 10, \"max_entries\": 1000}\n"
    "  },\n"
    "  \"dispatch\": {\"mode\": \"direct\",\n"
    "               \"url\": \"https://safetitan.example/v1/events\", \"api_key_file\": "
    "\"api.key\",\n"
    "               \"ca_file\": null, \"api_key_header\": \"X-Key\"},\n"
    "  \"spool\": {\"dir\": \"spool\"},\n"
    "  \"status\": {\"address\": \"127.0.0.1:9514\", \"port_file\": \"status.port\"},\n"
    "  \"audit\": {\"file\": \"/var/log/rtr-agent/audit.jsonl\", \"hash_users\": true,\n"
    "            \"hash_key_file\": \"audit.key\"},\n"
    "  \"log_level\": \"debug\"\n"
    "}\n"
    "/* trailing comment */\n";

static void check_path(const char *ctx, const char *got, const char *dir, const char *rel)
{
    char want[PATH_MAX];

    snprintf(want, sizeof(want), "%s/%s", dir, rel);
    CHECK_STR(ctx, str_make(got, got != NULL ? strlen(got) : 0), want);
}

static void check_str(const char *ctx, const char *got, const char *want)
{
    CHECK_STR(ctx, (got != NULL ? str_make(got, strlen(got)) : STR_ABSENT), want);
}

static void test_full_config(void)
{
    char path[PATH_MAX], err[4096], dir[PATH_MAX];
    struct config *cfg = NULL;
    const struct sockaddr_in *sin;
    const struct sockaddr_in6 *sin6;

    CHECK_INT(load_text(full_config, path, &cfg, err, sizeof(err)), 0);
    CHECK_STR("full: stderr", str_make(err, strlen(err)), "");
    if (cfg == NULL)
        return;
    CHECK(realpath(tmpdir, dir) != NULL);
    check_str("full: dir", cfg->dir, dir);
    check_str("full: path", cfg->path, path);

    CHECK_INT(cfg->n_listen, 5);
    CHECK_INT(cfg->listen[0].proto, LISTEN_UDP);
    CHECK_INT(cfg->listen[0].rcvbuf, 4194304);
    CHECK_INT(cfg->listen[0].framing, FRAMING_AUTO);
    sin = (const struct sockaddr_in *)&cfg->listen[0].addr;
    CHECK_INT(sin->sin_family, AF_INET);
    CHECK_INT(ntohs(sin->sin_port), 5514);
    CHECK_INT(ntohl(sin->sin_addr.s_addr), 0x7f000001);
    CHECK_INT(cfg->listen[0].addr_len, sizeof(struct sockaddr_in));
    CHECK_INT(cfg->listen[1].proto, LISTEN_TCP);
    CHECK_INT(cfg->listen[1].framing, FRAMING_OCTET);
    CHECK_INT(cfg->listen[1].tls, 0);
    CHECK_INT(cfg->listen[1].rcvbuf, LISTEN_STREAM_RCVBUF);
    sin6 = (const struct sockaddr_in6 *)&cfg->listen[1].addr;
    CHECK_INT(sin6->sin6_family, AF_INET6);
    CHECK(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
    CHECK_INT(cfg->listen[1].addr_len, sizeof(struct sockaddr_in6));
    check_path("full: port_file", cfg->listen[1].port_file, dir, "run/tcp.port");
    check_str("full: address text", cfg->listen[1].address, "[::1]:5514");
    CHECK_INT(cfg->listen[2].proto, LISTEN_TLS);
    CHECK_INT(cfg->listen[2].tls, 1);
    CHECK_INT(cfg->listen[2].rcvbuf, LISTEN_STREAM_RCVBUF);
    check_path("full: cert", cfg->listen[2].cert, dir, "server.pem");
    check_str("full: absolute key", cfg->listen[2].key, "/etc/ssl/server.key");
    check_path("full: client_ca", cfg->listen[2].client_ca, dir, "clients-ca.pem");
    CHECK_INT(cfg->listen[2].handshake_timeout_s, 5);
    CHECK_INT(cfg->listen[2].min_version, LISTEN_TLS_1_3);
    /* Selects nothing TLS 1.2 would use: fine when TLS 1.2 is off. */
    check_str("full: ciphers", cfg->listen[2].ciphers, "aNULL");
    check_str("full: ciphersuites", cfg->listen[2].ciphersuites, "TLS_AES_256_GCM_SHA384");
    check_path("full: crl_file", cfg->listen[2].crl_file, dir, "clients.crl");
    CHECK_INT(cfg->listen[2].n_allowed_names, 2);
    if (cfg->listen[2].n_allowed_names == 2) {
        check_str("full: allowed name", cfg->listen[2].allowed_names[0], "Sender.Example");
        check_str("full: allowed URI", cfg->listen[2].allowed_names[1], "spiffe://example/sender");
    }
    CHECK_INT(cfg->listen[2].n_allow, 3);
    CHECK_INT(cfg->listen[2].allow[1].family, AF_INET6);
    CHECK_INT(cfg->listen[2].allow[1].prefix, 32);
    CHECK_INT(cfg->listen[2].allow[2].prefix, 32);
    CHECK_INT(cfg->listen[3].proto, LISTEN_RELP);
    CHECK_INT(cfg->listen[3].tls, 0);
    CHECK_INT(cfg->listen[3].rcvbuf, 0); /* 0 written: the system default */
    check_str("full: plain relp cert", cfg->listen[3].cert, NULL);
    CHECK_INT(cfg->listen[4].proto, LISTEN_RELP);
    CHECK_INT(cfg->listen[4].tls, 1);
    CHECK_INT(cfg->listen[4].rcvbuf, 131072);
    check_path("full: relp cert", cfg->listen[4].cert, dir, "relp.pem");
    check_path("full: relp key", cfg->listen[4].key, dir, "relp.key");
    check_path("full: relp client_ca", cfg->listen[4].client_ca, dir, "clients-ca.pem");
    CHECK_INT(cfg->listen[4].handshake_timeout_s, 7);
    CHECK_INT(cfg->listen[4].min_version, LISTEN_TLS_1_2);
    check_str("full: relp ciphers", cfg->listen[4].ciphers, LISTEN_TLS12_CIPHERS);
    check_str("full: relp ciphersuites", cfg->listen[4].ciphersuites, NULL);
    check_str("full: relp crl_file", cfg->listen[4].crl_file, NULL);
    CHECK_INT(cfg->listen[4].n_allowed_names, 0);

    CHECK_INT(cfg->limits.max_message_bytes, 8192);
    CHECK_INT(cfg->limits.max_connection_buffer, 4 * 8192);
    CHECK_INT(cfg->limits.oversize, OVERSIZE_REJECT);
    CHECK_INT(cfg->limits.max_connections, 10);
    CHECK_INT(cfg->limits.idle_timeout_s, 60);
    CHECK_INT(cfg->limits.queue_messages, 100);
    CHECK_INT(cfg->limits.drain_timeout_s, 30);
    CHECK_INT(cfg->limits.regex_match_limit, 5000);
    CHECK_INT(cfg->limits.regex_depth_limit, 50);
    CHECK_INT(cfg->workers, 3);

    CHECK_INT(cfg->n_mappings, 2);
    check_path("full: mapping glob", cfg->mappings[0], dir, "mappings/*.json");
    check_str("full: absolute glob", cfg->mappings[1], "/usr/share/rtr-agent/mappings/*.json");

    CHECK_INT(cfg->identity.n_order, 2);
    CHECK_INT(cfg->identity.order[0], IDENTITY_GRAPH);
    CHECK_INT(cfg->identity.order[1], IDENTITY_STATIC);
    check_path("full: static file", cfg->identity.static_dir.file, dir, "users.csv");
    check_str("full: tenant", cfg->identity.graph.tenant_id, "t-1");
    check_str("full: client", cfg->identity.graph.client_id, "c-1");
    check_path("full: secret", cfg->identity.graph.client_secret_file, dir, "graph.secret");
    CHECK_INT(cfg->identity.graph.cloud, GRAPH_CLOUD_USGOV);
    CHECK_INT(cfg->identity.graph.attribute, GRAPH_ATTR_USER_PRINCIPAL_NAME);
    check_str("full: cloud authority", cfg->identity.graph.authority_url,
              "https://login.microsoftonline.us");
    check_str("full: explicit graph url", cfg->identity.graph.graph_url, "https://127.0.0.1:8443");
    CHECK_INT(cfg->identity.cache.ttl_s, 60);
    CHECK_INT(cfg->identity.cache.negative_ttl_s, 10);
    CHECK_INT(cfg->identity.cache.max_entries, 1000);

    CHECK_INT(cfg->dispatch.mode, DISPATCH_DIRECT);
    check_str("full: url", cfg->dispatch.url, "https://safetitan.example/v1/events");
    check_path("full: api key", cfg->dispatch.api_key_file, dir, "api.key");
    check_str("full: null ca_file", cfg->dispatch.ca_file, NULL);
    check_str("full: header", cfg->dispatch.api_key_header, "X-Key");
    check_path("full: spool", cfg->spool.dir, dir, "spool");
    check_path("full: dead letter", cfg->spool.dead_letter, dir, "spool/dead-letter.jsonl");
    check_str("full: status", cfg->status.address, "127.0.0.1:9514");
    CHECK_INT(cfg->status.addr.ss_family, AF_INET);
    check_path("full: status port file", cfg->status.port_file, dir, "status.port");
    check_str("full: audit", cfg->audit.file, "/var/log/rtr-agent/audit.jsonl");
    CHECK_INT(cfg->audit.hash_users, 1);
    check_path("full: audit key", cfg->audit.hash_key_file, dir, "audit.key");
    check_str("full: log level", cfg->log_level, "debug");
    config_free(cfg);
}

/* Every RFC 9110 token is a header name, its punctuation included. */
static void test_header_names(void)
{
    static const char *const names[] = {"X-API-Key", "x-api-key", "Authorization", "K",
                                        "A0!#$%&'*+-.^_`|~z9"};
    char text[512], path[PATH_MAX], err[4096];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct config *cfg = NULL;

        snprintf(text, sizeof(text), "{" LISTEN_OK ", \"dispatch\": {\"api_key_header\": \"%s\"}}",
                 names[i]);
        CHECK_INT(load_text(text, path, &cfg, err, sizeof(err)), 0);
        CHECK_STR(names[i], str_make(err, strlen(err)), "");
        if (cfg != NULL)
            check_str(names[i], cfg->dispatch.api_key_header, names[i]);
        config_free(cfg);
    }
}

/* A hash key alone turns hashing on. */
static void test_audit_key_implies_hashing(void)
{
    char path[PATH_MAX], err[4096];
    struct config *cfg = NULL;

    CHECK_INT(load_text("{" LISTEN_OK ", \"audit\": {\"hash_key_file\": \"/etc/k\"}}", path, &cfg,
                        err, sizeof(err)),
              0);
    if (cfg != NULL) {
        CHECK_INT(cfg->audit.hash_users, 1);
        check_str("audit key", cfg->audit.hash_key_file, "/etc/k");
    }
    config_free(cfg);
}

/* smtp: absent is no section (url NULL); present, every key lands, paths
 * resolved, defaults filled. */
static void test_smtp_section(void)
{
    char path[PATH_MAX], err[4096], want[PATH_MAX + 16];
    struct config *cfg = NULL;

    CHECK_INT(load_text("{" LISTEN_OK "}", path, &cfg, err, sizeof(err)), 0);
    if (cfg != NULL)
        CHECK(cfg->smtp.url == NULL && cfg->smtp.from == NULL);
    config_free(cfg);
    cfg = NULL;
    CHECK_INT(load_text("{" LISTEN_OK ", \"smtp\": {\"url\": \"smtp://mail.example.com:587\", "
                        "\"from\": \"rtr@example.com\"}}",
                        path, &cfg, err, sizeof(err)),
              0);
    if (cfg != NULL) {
        check_str("smtp url", cfg->smtp.url, "smtp://mail.example.com:587");
        check_str("smtp from", cfg->smtp.from, "rtr@example.com");
        CHECK(cfg->smtp.username == NULL && cfg->smtp.password_file == NULL);
        CHECK(cfg->smtp.ca_file == NULL);
        CHECK_INT(cfg->smtp.connect_timeout_s, 10);
        CHECK_INT(cfg->smtp.timeout_s, 60);
    }
    config_free(cfg);
    cfg = NULL;
    CHECK_INT(load_text("{" LISTEN_OK ", \"smtp\": {\"url\": \"smtps://[::1]:465\", "
                        "\"from\": \"rtr@example.com\", \"username\": \"rtr\", "
                        "\"password_file\": \"smtp.pw\", \"ca_file\": \"/etc/ca.pem\", "
                        "\"connect_timeout_s\": 3, \"timeout_s\": 20}}",
                        path, &cfg, err, sizeof(err)),
              0);
    if (cfg != NULL) {
        snprintf(want, sizeof(want), "%s/smtp.pw", cfg->dir);
        check_str("smtp username", cfg->smtp.username, "rtr");
        check_str("smtp password_file", cfg->smtp.password_file, want);
        check_str("smtp ca_file", cfg->smtp.ca_file, "/etc/ca.pem");
        CHECK_INT(cfg->smtp.connect_timeout_s, 3);
        CHECK_INT(cfg->smtp.timeout_s, 20);
    }
    config_free(cfg);
}

/* idle_timeout_s 0 turns the idle timeout off (the listener sets none). */
static void test_idle_timeout_off(void)
{
    char path[PATH_MAX], err[4096];
    struct config *cfg = NULL;

    CHECK_INT(load_text("{\"listen\": [{\"proto\": \"tcp\", \"address\": \":514\"}], "
                        "\"limits\": {\"idle_timeout_s\": 0}}",
                        path, &cfg, err, sizeof(err)),
              0);
    CHECK_STR("idle_timeout_s 0: stderr", str_make(err, strlen(err)), "");
    if (cfg != NULL)
        CHECK_INT(cfg->limits.idle_timeout_s, 0);
    config_free(cfg);
}

/* The smallest valid file: everything else takes the defaults of config.h. */
static void test_defaults(void)
{
    char path[PATH_MAX], err[4096];
    struct config *cfg = NULL;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    CHECK_INT(load_text("{\"listen\": [{\"proto\": \"tcp\", \"address\": \":514\"}]}", path, &cfg,
                        err, sizeof(err)),
              0);
    CHECK_STR("defaults: stderr", str_make(err, strlen(err)), "");
    if (cfg == NULL)
        return;
    CHECK_INT(cfg->listen[0].framing, FRAMING_AUTO);
    CHECK_INT(cfg->listen[0].handshake_timeout_s, 10);
    CHECK_INT(cfg->listen[0].tls, 0);
    CHECK_INT(cfg->listen[0].rcvbuf, 65536);
    CHECK_INT(cfg->listen[0].n_allow, 0);
    CHECK_INT(((struct sockaddr_in *)&cfg->listen[0].addr)->sin_addr.s_addr, htonl(INADDR_ANY));
    CHECK_INT(cfg->limits.max_message_bytes, 65536);
    CHECK_INT(cfg->limits.oversize, OVERSIZE_TRUNCATE);
    CHECK_INT(cfg->limits.max_connections, 1024);
    CHECK_INT(cfg->limits.idle_timeout_s, 300);
    CHECK_INT(cfg->limits.max_connection_buffer, 4 * 65536);
    CHECK_INT(cfg->limits.queue_messages, 256);
    CHECK_INT(cfg->limits.drain_timeout_s, 5);
    CHECK_INT(cfg->limits.regex_match_limit, 100000);
    CHECK_INT(cfg->limits.regex_depth_limit, 10000);
    CHECK_INT(cfg->workers, cores < 1 ? 1 : cores > 256 ? 256 : cores);
    CHECK_INT(cfg->n_mappings, 0);
    CHECK_INT(cfg->identity.n_order, 0);
    CHECK_INT(cfg->identity.cache.ttl_s, 3600);
    CHECK_INT(cfg->identity.cache.negative_ttl_s, 300);
    CHECK_INT(cfg->identity.cache.max_entries, 100000);
    check_str("defaults: tenant", cfg->identity.graph.tenant_id, NULL);
    CHECK_INT(cfg->identity.graph.cloud, GRAPH_CLOUD_GLOBAL);
    CHECK_INT(cfg->identity.graph.attribute, GRAPH_ATTR_MAIL);
    check_str("defaults: authority", cfg->identity.graph.authority_url,
              "https://login.microsoftonline.com");
    check_str("defaults: graph", cfg->identity.graph.graph_url, "https://graph.microsoft.com");
    CHECK_INT(cfg->identity.graph.max_concurrent, 4);
    CHECK_INT(cfg->dispatch.mode, DISPATCH_DRY_RUN);
    check_str("defaults: header", cfg->dispatch.api_key_header, "X-API-Key");
    CHECK_INT(cfg->dispatch.connect_timeout_s, 10);
    CHECK_INT(cfg->dispatch.timeout_s, 30);
    CHECK_INT(cfg->dispatch.retry_min_s, 1);
    CHECK_INT(cfg->dispatch.retry_max_s, 600);
    CHECK_INT(cfg->dispatch.dedup_window_s, 600);
    check_str("defaults: spool", cfg->spool.dir, NULL);
    check_str("defaults: dead letter", cfg->spool.dead_letter, NULL);
    CHECK_INT(cfg->spool.max_bytes, 1024LL * 1024 * 1024);
    CHECK_INT(cfg->spool.fsync_delay_ms, 50);
    check_str("defaults: status", cfg->status.address, NULL);
    CHECK_INT(cfg->status.addr_len, 0);
    check_str("defaults: audit", cfg->audit.file, NULL);
    CHECK_INT(cfg->audit.hash_users, 0);
    check_str("defaults: audit key", cfg->audit.hash_key_file, NULL);
    check_str("defaults: log level", cfg->log_level, "info");
    config_free(cfg);
}

/* rcvbuf left out: the system default for UDP, a bound for every stream
 * transport (the kernel acknowledges what it buffers while inputs pause). */
static void test_rcvbuf_defaults(void)
{
    static const struct {
        const char *listener;
        enum listen_proto proto;
        int tls, rcvbuf;
    } rows[] = {
        {"{\"proto\": \"udp\", \"address\": \":514\"}", LISTEN_UDP, 0, 0},
        {"{\"proto\": \"tcp\", \"address\": \":514\"}", LISTEN_TCP, 0, 65536},
        {"{\"proto\": \"tls\", \"address\": \":6514\", \"cert\": \"c\", \"key\": \"k\"}",
         LISTEN_TLS, 1, 65536},
        {"{\"proto\": \"relp\", \"address\": \":2514\"}", LISTEN_RELP, 0, 65536},
        {"{\"proto\": \"relp\", \"address\": \":2514\", \"tls\": true, \"cert\": \"c\", "
         "\"key\": \"k\"}",
         LISTEN_RELP, 1, 65536},
        {"{\"proto\": \"udp\", \"address\": \":514\", \"rcvbuf\": 65536}", LISTEN_UDP, 0, 65536},
        {"{\"proto\": \"tcp\", \"address\": \":514\", \"rcvbuf\": 0}", LISTEN_TCP, 0, 0},
        {"{\"proto\": \"tls\", \"address\": \":6514\", \"cert\": \"c\", \"key\": \"k\", "
         "\"rcvbuf\": 4096}",
         LISTEN_TLS, 1, 4096},
    };
    char text[512], path[PATH_MAX], err[4096];

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct config *cfg = NULL;

        snprintf(text, sizeof(text), "{\"listen\": [%s]}", rows[i].listener);
        CHECK_INT(load_text(text, path, &cfg, err, sizeof(err)), 0);
        CHECK_STR(rows[i].listener, str_make(err, strlen(err)), "");
        if (cfg == NULL)
            continue;
        if (cfg->listen[0].proto != rows[i].proto || cfg->listen[0].tls != rows[i].tls ||
            cfg->listen[0].rcvbuf != rows[i].rcvbuf)
            UNIT_FAIL("%s: proto %d tls %d rcvbuf %d, want %d %d %d", rows[i].listener,
                      cfg->listen[0].proto, cfg->listen[0].tls, cfg->listen[0].rcvbuf,
                      rows[i].proto, rows[i].tls, rows[i].rcvbuf);
        else
            unit_passed++;
        config_free(cfg);
    }
}

/* Without identity.order, the configured resolvers in their natural order. */
static void test_identity_order_default(void)
{
    char path[PATH_MAX], err[4096];
    struct config *cfg = NULL;

    CHECK_INT(load_text("{" LISTEN_OK ", \"identity\": {\"graph\": {\"tenant_id\": \"t\",\n"
                        " \"client_id\": \"c\", \"client_secret_file\": \"s\"},\n"
                        " \"static\": {\"file\": \"u.csv\"}}}",
                        path, &cfg, err, sizeof(err)),
              0);
    CHECK_STR("order default: stderr", str_make(err, strlen(err)), "");
    if (cfg == NULL)
        return;
    CHECK_INT(cfg->identity.n_order, 2);
    CHECK_INT(cfg->identity.order[0], IDENTITY_STATIC);
    CHECK_INT(cfg->identity.order[1], IDENTITY_GRAPH);
    config_free(cfg);
}

/* identity.ldap: every key, relative paths resolved, the domains kept in
 * file order, and "ldap" between static and graph in the default order. */
static void test_ldap_section(void)
{
    char path[PATH_MAX], err[4096], dir[PATH_MAX];
    struct config *cfg = NULL;
    const struct ldapdir_config *l;

    CHECK_INT(
        load_text("{" LISTEN_OK ", \"identity\": {\"static\": {\"file\": \"u.csv\"},\n"
                  " \"graph\": {\"tenant_id\": \"t\", \"client_id\": \"c\", "
                  "\"client_secret_file\": \"s\"},\n"
                  " \"ldap\": {\"uris\": [\"ldaps://dc1.corp.example.com:3269\", "
                  "\"ldap://[2001:db8::1]/\"],\n"
                  "  \"base_dn\": \"dc=example,dc=com\",\n"
                  "  \"domains\": {\"CORP\": \"dc=corp,dc=example,dc=com\", "
                  "\"emea\": \"DC=emea,DC=example,DC=com\"},\n"
                  "  \"bind_dn\": \"svc-rtr@corp.example.com\", \"bind_password_file\": "
                  "\"ldap.pw\",\n"
                  "  \"client_certificate_file\": \"c.pem\", \"client_key_file\": \"c.key\",\n"
                  "  \"ca_file\": \"/etc/rtr-agent/ad-ca.pem\", \"attribute\": "
                  "\"userPrincipalName\",\n"
                  "  \"exclude_disabled\": false, \"connect_timeout_s\": 3, \"timeout_s\": 7,\n"
                  "  \"idle_timeout_s\": 0, \"max_connections\": 16}}}",
                  path, &cfg, err, sizeof(err)),
        0);
    CHECK_STR("ldap: stderr", str_make(err, strlen(err)), "");
    if (cfg == NULL)
        return;
    snprintf(dir, sizeof(dir), "%s", cfg->dir);
    l = &cfg->identity.ldap;
    CHECK_INT(l->n_uris, 2);
    check_str("ldap: uri 0", l->uris[0], "ldaps://dc1.corp.example.com:3269");
    check_str("ldap: uri 1", l->uris[1], "ldap://[2001:db8::1]/");
    check_str("ldap: base", l->base_dn, "dc=example,dc=com");
    CHECK_INT(l->n_domains, 2);
    check_str("ldap: domain 0", l->domains[0].name, "CORP");
    check_str("ldap: domain 0 dn", l->domains[0].base_dn, "dc=corp,dc=example,dc=com");
    check_str("ldap: domain 1", l->domains[1].name, "emea");
    check_str("ldap: bind dn", l->bind_dn, "svc-rtr@corp.example.com");
    check_path("ldap: password", l->bind_password_file, dir, "ldap.pw");
    check_path("ldap: cert", l->client_certificate_file, dir, "c.pem");
    check_path("ldap: key", l->client_key_file, dir, "c.key");
    check_str("ldap: ca", l->ca_file, "/etc/rtr-agent/ad-ca.pem");
    CHECK_INT(l->sasl_external, 0);
    CHECK_INT(l->insecure_plaintext, 0);
    CHECK_INT(l->attribute, LDAPDIR_ATTR_USER_PRINCIPAL_NAME);
    CHECK_INT(l->exclude_disabled, 0);
    CHECK_INT(l->connect_timeout_s, 3);
    CHECK_INT(l->timeout_s, 7);
    CHECK_INT(l->idle_timeout_s, 0);
    CHECK_INT(l->max_connections, 16);
    CHECK_INT(cfg->identity.n_order, 3);
    CHECK_INT(cfg->identity.order[0], IDENTITY_STATIC);
    CHECK_INT(cfg->identity.order[1], IDENTITY_LDAP);
    CHECK_INT(cfg->identity.order[2], IDENTITY_GRAPH);
    config_free(cfg);

    /* SASL EXTERNAL, and the defaults. */
    cfg = NULL;
    CHECK_INT(load_text("{" LISTEN_OK ", \"identity\": {\"ldap\": {" LDAP_BASE ",\n"
                        " \"sasl_external\": true, \"client_certificate_file\": \"c.pem\",\n"
                        " \"client_key_file\": \"c.key\"}}}",
                        path, &cfg, err, sizeof(err)),
              0);
    CHECK_STR("ldap defaults: stderr", str_make(err, strlen(err)), "");
    if (cfg == NULL)
        return;
    l = &cfg->identity.ldap;
    CHECK_INT(l->sasl_external, 1);
    check_str("ldap defaults: bind dn", l->bind_dn, NULL);
    check_str("ldap defaults: ca", l->ca_file, NULL);
    CHECK_INT(l->n_domains, 0);
    CHECK_INT(l->attribute, LDAPDIR_ATTR_MAIL);
    CHECK_INT(l->exclude_disabled, 1);
    CHECK_INT(l->connect_timeout_s, 5);
    CHECK_INT(l->timeout_s, 10);
    CHECK_INT(l->idle_timeout_s, 300);
    CHECK_INT(l->max_connections, 2);
    CHECK_INT(cfg->identity.n_order, 1);
    CHECK_INT(cfg->identity.order[0], IDENTITY_LDAP);
    config_free(cfg);
}

/* insecure_plaintext loads, with a warning: the one check prints, or,
 * with only ldaps:// URIs, that it does nothing. */
static void test_ldap_plaintext_warnings(void)
{
    static const struct {
        const char *uris;
        const char *want;
    } rows[] = {
        {"[\"ldap://dc1\", \"ldaps://dc2\"]",
         "identity.ldap.insecure_plaintext: the bind password and lookups cross the network "
         "unencrypted"},
        {"[\"ldaps://dc1\"]",
         "identity.ldap.insecure_plaintext: has no effect: every URI is ldaps://"},
    };
    char path[PATH_MAX], err[4096], text[1024], want[PATH_MAX + 256];

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct config *cfg = NULL;

        snprintf(text, sizeof(text),
                 "{" LISTEN_OK ", \"identity\": {\"ldap\": {\"uris\": %s, " LDAP_DN ",\n"
                 " " LDAP_CRED ", \"insecure_plaintext\": true}}}",
                 rows[i].uris);
        CHECK_INT(load_text(text, path, &cfg, err, sizeof(err)), 0);
        CHECK(cfg != NULL && cfg->identity.ldap.insecure_plaintext == 1);
        /* A warning line has the log's time and level first. */
        snprintf(want, sizeof(want), " warning: %s: %s\n", path, rows[i].want);
        if (strstr(err, want) == NULL || strchr(err, '\n') != strrchr(err, '\n'))
            UNIT_FAIL("%s: want the one line ...%s, got %s", rows[i].uris, want, err);
        else
            unit_passed++;
        config_free(cfg);
    }
}

/* The configs this project ships must always load. Tests run from the
 * repository root (tests/run-all does so). */
static void test_shipped_configs(void)
{
    static const char *const files[] = {"systemd/rtr-agent.dev.json", "systemd/rtr-agent.json"};
    char err[4096];

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct config *cfg = NULL;

        unit_capture_begin();
        CHECK_INT(config_load(files[i], &cfg), 0);
        unit_capture_end(err, sizeof(err));
        CHECK_STR(files[i], str_make(err, strlen(err)), "");
        if (i == 0 && cfg != NULL) {
            char users[PATH_MAX];
            CHECK(realpath("systemd/users.example.csv", users) != NULL);
            check_str("dev: static file", cfg->identity.static_dir.file, users);
            CHECK_INT(cfg->dispatch.mode, DISPATCH_DRY_RUN);
            for (size_t l = 0; l < cfg->n_listen; l++) {
                const struct sockaddr_in *sin = (const struct sockaddr_in *)&cfg->listen[l].addr;
                CHECK_INT(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
            }
        }
        config_free(cfg);
    }
}

/* The table in systemd/README.md is config_write_reference's output,
 * verbatim: regenerate it from there when a key changes. */
static void check_readme_table(const char *reference)
{
    static char doc[64 * 1024];

    unit_read_file("systemd/README.md", doc, sizeof(doc));
    if (strstr(doc, reference) == NULL)
        UNIT_FAIL("systemd/README.md lacks the current key reference (run from the top folder; "
                  "regenerate the table from config_write_reference)");
    else
        unit_passed++;
}

static void test_reference(void)
{
    static const char *const rows[] = {
        "| `listen[].framing` | string | \"auto\" |",
        "| `listen[].proto` | string | required |",
        "| `identity.static.file` | path | required |",
        "| `identity.graph.client_secret_file` | path | - |",
        "| `identity.graph.client_key_file` | path | - |",
        "| `identity.ldap.uris` | array of URIs | required |",
        "| `identity.ldap.connect_timeout_s` | integer 1..60 | 5 |",
        "| `identity.ldap.insecure_plaintext` | boolean | false |",
        "| `dispatch.mode` | string | \"dry-run\" |",
        "| `audit.hash_users` | boolean | false |",
        "| `smtp.url` | string | required |",
        "| `smtp.timeout_s` | integer 1..600 | 60 |",
        "| `limits.max_message_bytes` | integer 480..16777216 | 65536 |",
        "| `listen[].tls` | boolean | false |",
        "| `listen[].rcvbuf` | integer 0..268435456 | - |",
        "| `listen[].min_version` | string | \"1.2\" |",
        "| `listen[].ciphers` | string | \"ECDHE+AESGCM:ECDHE+CHACHA20\" |",
        "| `listen[].allowed_names` | array of strings | - |",
        "| `limits.queue_messages` | integer 1..16777216 | 256 |",
        "| `limits.drain_timeout_s` | integer 0..300 | 5 |",
    };
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    config_write_reference(f);
    fclose(f);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (strstr(text, rows[i]) == NULL)
            UNIT_FAIL("reference lacks %s", rows[i]);
        else
            unit_passed++;
    }
    check_readme_table(text);
    free(text);
}

static const struct {
    const char *text;
    int rc;
    int family;
    const char *host; /* inet_ntop form */
    int port;
} addresses[] = {
    {"127.0.0.1:514", 0, AF_INET, "127.0.0.1", 514},
    {"0.0.0.0:0", 0, AF_INET, "0.0.0.0", 0},
    {":6514", 0, AF_INET, "0.0.0.0", 6514},
    {"10.1.2.3:65535", 0, AF_INET, "10.1.2.3", 65535},
    {"[::1]:514", 0, AF_INET6, "::1", 514},
    {"[::]:5514", 0, AF_INET6, "::", 5514},
    {"[2001:db8::17]:1", 0, AF_INET6, "2001:db8::17", 1},
    {"[::ffff:192.0.2.1]:514", 0, AF_INET6, "::ffff:192.0.2.1", 514},
    {"127.0.0.1:65536", ERR_INVALID, 0, NULL, 0},
    {"127.0.0.1:", ERR_INVALID, 0, NULL, 0},
    {"127.0.0.1", ERR_INVALID, 0, NULL, 0},
    {"127.0.0.1:51x", ERR_INVALID, 0, NULL, 0},
    {"127.0.0.1:-1", ERR_INVALID, 0, NULL, 0},
    {"127.0.0.1:0000514", ERR_INVALID, 0, NULL, 0},
    {"256.0.0.1:514", ERR_INVALID, 0, NULL, 0},
    {"localhost:514", ERR_INVALID, 0, NULL, 0},
    {"::1:514", ERR_INVALID, 0, NULL, 0},
    {"[::1]514", ERR_INVALID, 0, NULL, 0},
    {"[::1:514", ERR_INVALID, 0, NULL, 0},
    {"[127.0.0.1]:514", ERR_INVALID, 0, NULL, 0},
    {"", ERR_INVALID, 0, NULL, 0},
};

static void test_parse_address(void)
{
    for (size_t i = 0; i < sizeof(addresses) / sizeof(addresses[0]); i++) {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        char host[INET6_ADDRSTRLEN] = "";
        int rc = config_parse_address(addresses[i].text, &ss, &len), port = -1;

        CHECK_INT(rc, addresses[i].rc);
        if (rc != 0)
            continue;
        CHECK_INT(ss.ss_family, addresses[i].family);
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
            port = ntohs(sin->sin_port);
            CHECK_INT(len, sizeof(*sin));
        } else {
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
            port = ntohs(sin6->sin6_port);
            CHECK_INT(len, sizeof(*sin6));
        }
        CHECK_STR(addresses[i].text, str_make(host, strlen(host)), addresses[i].host);
        CHECK_INT(port, addresses[i].port);
    }
}

static const struct {
    const char *text;
    int rc;
    int family;
    const char *net; /* inet_ntop form of the stored network */
    unsigned prefix;
} cidrs[] = {
    {"10.0.0.0/8", 0, AF_INET, "10.0.0.0", 8},
    {"192.0.2.7", 0, AF_INET, "192.0.2.7", 32},
    {"192.0.2.7/32", 0, AF_INET, "192.0.2.7", 32},
    {"0.0.0.0/0", 0, AF_INET, "0.0.0.0", 0},
    {"::/0", 0, AF_INET6, "::", 0},
    {"::1", 0, AF_INET6, "::1", 128},
    {"::1/128", 0, AF_INET6, "::1", 128},
    {"fe80::/10", 0, AF_INET6, "fe80::", 10},
    {"2001:db8::/32", 0, AF_INET6, "2001:db8::", 32},
    {"::ffff:10.0.0.0/104", 0, AF_INET, "10.0.0.0", 8},
    {"::ffff:192.0.2.1", 0, AF_INET, "192.0.2.1", 32},
    {"10.0.0.1/8", ERR_INVALID, 0, NULL, 0},
    {"fe80::1/10", ERR_INVALID, 0, NULL, 0},
    {"10.0.0.0/33", ERR_INVALID, 0, NULL, 0},
    {"::/129", ERR_INVALID, 0, NULL, 0},
    {"10.0.0.0/", ERR_INVALID, 0, NULL, 0},
    {"10.0.0.0/8x", ERR_INVALID, 0, NULL, 0},
    {"10.0.0.0/0008", ERR_INVALID, 0, NULL, 0},
    {"/8", ERR_INVALID, 0, NULL, 0},
    {"10.0.0/8", ERR_INVALID, 0, NULL, 0},
    {"example.com/8", ERR_INVALID, 0, NULL, 0},
};

static void test_parse_cidr(void)
{
    for (size_t i = 0; i < sizeof(cidrs) / sizeof(cidrs[0]); i++) {
        struct cidr c;
        char net[INET6_ADDRSTRLEN] = "";
        int rc = config_parse_cidr(cidrs[i].text, &c);

        CHECK_INT(rc, cidrs[i].rc);
        if (rc != 0)
            continue;
        CHECK_INT(c.family, cidrs[i].family);
        CHECK_INT(c.prefix, cidrs[i].prefix);
        inet_ntop(c.family, c.addr, net, sizeof(net));
        CHECK_STR(cidrs[i].text, str_make(net, strlen(net)), cidrs[i].net);
    }
}

static const struct {
    const char *nets; /* space-separated; "" = an empty allowlist */
    const char *peer; /* an IPv4 or IPv6 address */
    int allowed;
} allows[] = {
    {"", "203.0.113.9", 1},
    {"10.0.0.0/8", "10.255.1.2", 1},
    {"10.0.0.0/8", "11.0.0.1", 0},
    {"10.0.0.0/8", "::ffff:10.1.2.3", 1},
    {"10.0.0.0/8", "::ffff:11.1.2.3", 0},
    {"10.0.0.0/8", "::a01:203", 0}, /* IPv4-compatible, not mapped */
    {"::ffff:10.0.0.0/104", "10.9.9.9", 1},
    {"192.0.2.7/32", "192.0.2.7", 1},
    {"192.0.2.7/32", "192.0.2.8", 0},
    {"192.0.2.0/25", "192.0.2.127", 1},
    {"192.0.2.0/25", "192.0.2.128", 0},
    {"0.0.0.0/0", "198.51.100.1", 1},
    {"0.0.0.0/0", "::1", 0},
    {"::/0", "2001:db8::1", 1},
    {"::/0", "192.0.2.1", 0},
    {"::1/128", "::1", 1},
    {"::1/128", "::2", 0},
    {"2001:db8::/33", "2001:db8:7fff::1", 1},
    {"2001:db8::/33", "2001:db8:8000::1", 0},
    {"fe80::/10", "febf::1", 1},
    {"fe80::/10", "fec0::1", 0},
    {"10.0.0.0/8 2001:db8::/32", "2001:db8::5", 1},
    {"10.0.0.0/8 2001:db8::/32", "172.16.0.1", 0},
};

static void test_allowlist_allows(void)
{
    for (size_t i = 0; i < sizeof(allows) / sizeof(allows[0]); i++) {
        struct cidr list[4];
        size_t n = 0;
        char nets[128];
        struct sockaddr_storage ss;

        snprintf(nets, sizeof(nets), "%s", allows[i].nets);
        for (char *t = strtok(nets, " "); t != NULL && n < 4; t = strtok(NULL, " "))
            CHECK_INT(config_parse_cidr(t, &list[n++]), 0);
        memset(&ss, 0, sizeof(ss));
        if (inet_pton(AF_INET, allows[i].peer, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
            ss.ss_family = AF_INET;
        } else {
            CHECK_INT(inet_pton(AF_INET6, allows[i].peer, &((struct sockaddr_in6 *)&ss)->sin6_addr),
                      1);
            ss.ss_family = AF_INET6;
        }
        if (allowlist_allows(list, n, (struct sockaddr *)&ss) != allows[i].allowed)
            UNIT_FAIL("%s in [%s]: want %d", allows[i].peer, allows[i].nets, allows[i].allowed);
        else
            unit_passed++;
    }
}

int main(void)
{
    char path[PATH_MAX];

    unsetenv("JOURNAL_STREAM");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    test_bad_configs();
    test_missing_file();
    test_full_config();
    test_defaults();
    test_rcvbuf_defaults();
    test_idle_timeout_off();
    test_audit_key_implies_hashing();
    test_smtp_section();
    test_header_names();
    test_identity_order_default();
    test_ldap_section();
    test_ldap_plaintext_warnings();
    test_shipped_configs();
    test_reference();
    test_parse_address();
    test_parse_cidr();
    test_allowlist_allows();
    snprintf(path, sizeof(path), "%s/rtr-agent.json", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    return unit_report("test_config");
}
