/* Approval tokens (approval.h): HMAC-SHA256 from OpenSSL, compared in
 * constant time. */
#include "approval.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/escape.h"
#include "core/log.h"
#include "errors.h"

static int approval_secret_make(const char *path, struct approval_secret *out)
{
    int fd;
    ssize_t n;

    if (getrandom(out->key, sizeof(out->key), 0) != (ssize_t)sizeof(out->key)) {
        log_error("%s: no random bytes for the approvals secret: %s", path, strerror(errno));
        return ERR_IO;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_error("%s: cannot create the approvals secret: %s", path, strerror(errno));
        return ERR_IO;
    }
    n = write(fd, out->key, sizeof(out->key));
    if (n != (ssize_t)sizeof(out->key) || fsync(fd) != 0) {
        log_error("%s: cannot write the approvals secret: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return ERR_IO;
    }
    close(fd);
    log_info("%s: made the secret of approval links", path);
    return 0;
}

int approval_secret_load(const char *dir, struct approval_secret *out)
{
    char path[4096];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/approvals.key", dir);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return approval_secret_make(path, out);
    if (fd < 0) {
        log_error("%s: cannot read the approvals secret: %s", path, strerror(errno));
        return ERR_IO;
    }
    n = read(fd, out->key, sizeof(out->key));
    if (n == (ssize_t)sizeof(out->key) && read(fd, path + sizeof(path) - 1, 1) == 0) {
        close(fd);
        return 0;
    }
    close(fd);
    log_error("%s: not an approvals secret (%d bytes expected): remove it and a new one is made "
              "(links already sent then stop working)",
              path, APPROVAL_SECRET_LEN);
    return ERR_CONFIG;
}

/* The mac of "<id>-<approver>" in hex, into mac[APPROVAL_MAC_HEX + 1]. */
static void approval_mac(const struct approval_secret *s, const char *id, unsigned approver,
                         char *mac)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    char msg[APPROVAL_ID_LEN + 16], hex[2 * EVP_MAX_MD_SIZE + 1];
    int n = snprintf(msg, sizeof(msg), "%.*s-%u", APPROVAL_ID_LEN, id, approver);

    if (HMAC(EVP_sha256(), s->key, sizeof(s->key), (const unsigned char *)msg, (size_t)n, md,
             &md_len) == NULL)
        md_len = 0;
    if (md_len < APPROVAL_MAC_HEX / 2)
        memset(md, 0, APPROVAL_MAC_HEX / 2); /* cannot happen: a token that checks nothing */
    hex_encode(md, APPROVAL_MAC_HEX / 2, hex);
    memcpy(mac, hex, APPROVAL_MAC_HEX);
    mac[APPROVAL_MAC_HEX] = '\0';
}

void approval_token(const struct approval_secret *s, const char *key, unsigned approver, char *out)
{
    char mac[APPROVAL_MAC_HEX + 1];

    approval_mac(s, key, approver, mac);
    snprintf(out, APPROVAL_TOKEN_MAX, "%.*s-%u-%s", APPROVAL_ID_LEN, key, approver, mac);
}

int approval_token_read(const struct approval_secret *s, struct str token,
                        char id[APPROVAL_ID_LEN + 1], unsigned *approver)
{
    char mac[APPROVAL_MAC_HEX + 1];
    size_t i = APPROVAL_ID_LEN + 1, digits = 0;
    unsigned long n = 0;

    if (token.len < APPROVAL_ID_LEN + 3 + APPROVAL_MAC_HEX || token.len >= APPROVAL_TOKEN_MAX ||
        token.p[APPROVAL_ID_LEN] != '-')
        return ERR_INVALID;
    for (size_t k = 0; k < APPROVAL_ID_LEN; k++) {
        if (strchr("0123456789abcdef", token.p[k]) == NULL || token.p[k] == '\0')
            return ERR_INVALID;
    }
    for (; i < token.len && token.p[i] >= '0' && token.p[i] <= '9' && digits < 3; i++, digits++)
        n = n * 10 + (unsigned long)(token.p[i] - '0');
    if (digits == 0 || (digits > 1 && token.p[APPROVAL_ID_LEN + 1] == '0') || i >= token.len ||
        token.p[i] != '-' || token.len - i - 1 != APPROVAL_MAC_HEX)
        return ERR_INVALID;
    memcpy(id, token.p, APPROVAL_ID_LEN);
    id[APPROVAL_ID_LEN] = '\0';
    approval_mac(s, id, (unsigned)n, mac);
    if (CRYPTO_memcmp(mac, token.p + i + 1, APPROVAL_MAC_HEX) != 0)
        return ERR_INVALID;
    *approver = (unsigned)n;
    return 0;
}
