/* The links of approval emails (policy.h "approval"): a token names one
 * approval, one of its approvers and the alert it is about, and is
 * unguessable without the agent's secret:
 *
 *   <id>-<approver>-<stamp>-<mac>
 *
 * id: the first 20 hex digits of the approval's idempotency key (the
 * alert's, its policy's and its action's names hashed), approver: the
 * index of the approver's address in the action's "to", stamp: when the
 * agent received the alert (milliseconds since 1970, in hex: the same
 * alert sent again after the duplicate window is another approval, which
 * an old link does not decide), mac: the first 96 bits of HMAC-SHA256
 * under the secret over "<id>-<approver>-<stamp>", in hex. Made again from
 * the payload and the secret, a token survives a restart (the spool keeps
 * the approval, the secret file the key), so a link in an email stays
 * valid until the approval is decided or expires; then it finds nothing.
 *
 * The secret: APPROVAL_SECRET_LEN random bytes in <spool.dir>/approvals.key
 * (mode 0600), made at the first start that needs it. */
#ifndef RTR_APPROVAL_H
#define RTR_APPROVAL_H

#include <stddef.h>
#include <stdint.h>

#include "str.h"

#define APPROVAL_SECRET_LEN 32
#define APPROVAL_ID_LEN     20
#define APPROVAL_STAMP_MAX  12 /* hex digits of a time in ms, to the year 10889 */
#define APPROVAL_MAC_HEX    24
/* The longest token (approvers below 1000), and its NUL: it fits the
 * webhook route's {source} segment (64 bytes). */
#define APPROVAL_TOKEN_MAX                                                                         \
    (APPROVAL_ID_LEN + 1 + 3 + 1 + APPROVAL_STAMP_MAX + 1 + APPROVAL_MAC_HEX + 1)

struct approval_secret {
    unsigned char key[APPROVAL_SECRET_LEN];
};

/* Reads <dir>/approvals.key, or makes it (random bytes, 0600, synced)
 * when it does not exist. Errors are logged naming the file. Returns 0,
 * ERR_IO or ERR_CONFIG (a file of the wrong size). */
int approval_secret_load(const char *dir, struct approval_secret *out);

/* The token of approver for the approval whose key is key (at least
 * APPROVAL_ID_LEN hex digits) about the alert received at stamp_ms, into
 * out[APPROVAL_TOKEN_MAX]. */
void approval_token(const struct approval_secret *s, const char *key, int64_t stamp_ms,
                    unsigned approver, char *out);

/* A token read: its parts, once its mac is the secret's. */
struct approval_ref {
    char id[APPROVAL_ID_LEN + 1];
    unsigned approver;
    int64_t stamp_ms;
};

/* Checks token: 0 with *out when the agent made it, else ERR_INVALID (a
 * malformed or forged token). */
int approval_token_read(const struct approval_secret *s, struct str token,
                        struct approval_ref *out);

#endif
