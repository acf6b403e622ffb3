/* Client assertions: the certificate credential of the Graph resolver's
 * token request (graph.h), instead of a client secret. Microsoft Entra ID
 * takes a JWT signed with the private key of a certificate uploaded to the
 * app registration ("private_key_jwt", OpenID Connect Core 9), as
 * https://learn.microsoft.com/entra/identity-platform/certificate-credentials
 * describes it:
 *   header  {"alg":"PS256","typ":"JWT","x5t#S256":base64url(SHA-256 of the
 *           certificate's DER)}
 *   claims  {"aud":the token endpoint URL,"iss":client id,"sub":client id,
 *           "jti":a fresh random id,"nbf":now,"iat":now,"exp":now + a few
 *           minutes}
 *   signature  RSASSA-PSS with SHA-256 (MGF1 SHA-256, 32-byte salt: RFC 7518
 *           3.5) over base64url(header) "." base64url(claims)
 * each part base64url without padding, joined with '.'. Entra ID signs
 * with RSA only, so the key must be RSA. An assertion is a credential for
 * its life: callers wipe it (secret_free) and never log it. */
#ifndef RTR_GRAPH_ASSERTION_H
#define RTR_GRAPH_ASSERTION_H

#include <stddef.h>
#include <stdint.h>

/* Seconds an assertion is valid: Microsoft asks for 5 to 10 minutes at
 * most; it is used once, at once. */
#define GRAPH_ASSERTION_LIFE_S 300

struct graph_assertion;

/* The file a load failure is about. */
enum graph_assertion_file {
    GRAPH_ASSERTION_CERT,
    GRAPH_ASSERTION_KEY,
};

/* Loads cert_file (PEM; its first certificate) and key_file (a PEM private
 * key, unencrypted, read as a secret: secret_read, the bytes wiped once
 * parsed). The key must be RSA and belong to the certificate. Returns 0 and
 * *out (free with graph_assertion_free). Otherwise ERR_IO (a file cannot be
 * read), ERR_CONFIG (what a file holds will not do) or ERR_NOMEM, with
 * *bad the file at fault and why_buf saying what, without the path ("no
 * PEM certificate: ...", "an EC key: Entra ID takes RSA keys only (PS256)",
 * "does not match the certificate in FILE"). */
int graph_assertion_load(const char *cert_file, const char *key_file, struct graph_assertion **out,
                         enum graph_assertion_file *bad, char *why_buf, size_t why_cap);

/* The assertion for aud and client_id issued at now_s (Unix seconds) with
 * the JWT id jti (16 bytes, written as a version 4 UUID). Returns 0 and
 * *out (NUL-terminated, *len bytes: free with secret_free), ERR_NOMEM, or
 * ERR_INVALID when OpenSSL cannot sign. For tests; the resolver calls
 * graph_assertion_sign. */
int graph_assertion_make(const struct graph_assertion *a, const char *aud, const char *client_id,
                         int64_t now_s, const unsigned char jti[16], char **out, size_t *len);

/* graph_assertion_make issued now (the wall clock: Entra ID compares nbf
 * and exp with its own) with a random jti, so no two requests carry the
 * same assertion. Also ERR_IO when no random bytes can be had. */
int graph_assertion_sign(const struct graph_assertion *a, const char *aud, const char *client_id,
                         char **out, size_t *len);

/* in (n bytes) as base64url without padding (RFC 7515 2), NUL-terminated
 * in out when it fits in cap. Returns the length it has (without the NUL),
 * fitting or not. */
size_t graph_assertion_base64url(const unsigned char *in, size_t n, char *out, size_t cap);

/* NULL is fine. */
void graph_assertion_free(struct graph_assertion *a);

#endif
