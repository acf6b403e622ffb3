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

/* The mac of "<id>-<approver>-<stamp>" in hex, into mac[APPROVAL_MAC_HEX
 * + 1]. */
static void approval_mac(const struct approval_secret *s, const char *id, unsigned approver,
                         int64_t stamp_ms, char *mac)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    char msg[APPROVAL_TOKEN_MAX], hex[2 * EVP_MAX_MD_SIZE + 1];
    int n = snprintf(msg, sizeof(msg), "%.*s-%u-%llx", APPROVAL_ID_LEN, id, approver,
                     (unsigned long long)stamp_ms);

    if (HMAC(EVP_sha256(), s->key, sizeof(s->key), (const unsigned char *)msg, (size_t)n, md,
             &md_len) == NULL)
        md_len = 0;
    if (md_len < APPROVAL_MAC_HEX / 2)
        memset(md, 0, APPROVAL_MAC_HEX / 2); /* cannot happen: a token that checks nothing */
    hex_encode(md, APPROVAL_MAC_HEX / 2, hex);
    memcpy(mac, hex, APPROVAL_MAC_HEX);
    mac[APPROVAL_MAC_HEX] = '\0';
}

void approval_token(const struct approval_secret *s, const char *key, int64_t stamp_ms,
                    unsigned approver, char *out)
{
    char mac[APPROVAL_MAC_HEX + 1];

    approval_mac(s, key, approver, stamp_ms, mac);
    snprintf(out, APPROVAL_TOKEN_MAX, "%.*s-%u-%llx-%s", APPROVAL_ID_LEN, key, approver,
             (unsigned long long)stamp_ms, mac);
}

/* Reads up to max digits of base (10 or 16, lowercase) at *i, then a '-'
 * past them. Returns 0 with *out, or ERR_INVALID (none, a leading zero
 * before more digits, too many, no '-'). */
static int approval_number(struct str t, size_t *i, int base, size_t max, uint64_t *out)
{
    size_t start = *i;
    uint64_t n = 0;

    while (*i < t.len && *i - start < max) {
        char c = t.p[*i];
        int d = c >= '0' && c <= '9'                 ? c - '0'
                : base == 16 && c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                     : -1;

        if (d < 0)
            break;
        n = n * (uint64_t)base + (uint64_t)d;
        (*i)++;
    }
    if (*i == start || (*i - start > 1 && t.p[start] == '0') || *i >= t.len || t.p[*i] != '-')
        return ERR_INVALID;
    (*i)++;
    *out = n;
    return 0;
}

int approval_token_read(const struct approval_secret *s, struct str token, struct approval_ref *out)
{
    char mac[APPROVAL_MAC_HEX + 1];
    size_t i = APPROVAL_ID_LEN + 1;
    uint64_t approver, stamp;

    if (token.len >= APPROVAL_TOKEN_MAX || token.len < APPROVAL_ID_LEN + 1 ||
        token.p[APPROVAL_ID_LEN] != '-')
        return ERR_INVALID;
    for (size_t k = 0; k < APPROVAL_ID_LEN; k++) {
        if (token.p[k] == '\0' || strchr("0123456789abcdef", token.p[k]) == NULL)
            return ERR_INVALID;
    }
    if (approval_number(token, &i, 10, 3, &approver) != 0 ||
        approval_number(token, &i, 16, APPROVAL_STAMP_MAX, &stamp) != 0 ||
        token.len - i != APPROVAL_MAC_HEX)
        return ERR_INVALID;
    memcpy(out->id, token.p, APPROVAL_ID_LEN);
    out->id[APPROVAL_ID_LEN] = '\0';
    out->approver = (unsigned)approver;
    out->stamp_ms = (int64_t)stamp;
    approval_mac(s, out->id, out->approver, out->stamp_ms, mac);
    return CRYPTO_memcmp(mac, token.p + i, APPROVAL_MAC_HEX) == 0 ? 0 : ERR_INVALID;
}
