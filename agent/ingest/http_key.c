#include "http_key.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "core/log.h"
#include "core/secret.h"
#include "errors.h"

struct http_key {
    const struct listen_config *lc;
    pthread_mutex_t lock; /* guards hash between a request and a SIGHUP */
    unsigned char hash[SHA256_DIGEST_LENGTH];
    int frozen; /* the file is not readable by the agent's user */
};

/* The key of lc's file, hashed into out. */
static int http_key_read(const struct listen_config *lc, unsigned char out[SHA256_DIGEST_LENGTH])
{
    char why[128], *key = NULL;
    size_t len = 0;
    int rc =
        secret_read(lc->api_key_file, HTTP_KEY_MIN, SECRET_MAX, 1, &key, &len, why, sizeof(why));

    if (rc != 0) {
        log_error("listen %s: api_key_file %s: %s", lc->address, lc->api_key_file, why);
        return rc;
    }
    SHA256((const unsigned char *)key, len, out);
    secret_free(key, len);
    return 0;
}

int http_key_new(const struct listen_config *lc, struct http_key **out)
{
    struct http_key *k = calloc(1, sizeof(*k));
    int rc;

    *out = NULL;
    if (k == NULL)
        return ERR_NOMEM;
    k->lc = lc;
    rc = http_key_read(lc, k->hash);
    if (rc != 0 || pthread_mutex_init(&k->lock, NULL) != 0) {
        free(k);
        return rc != 0 ? rc : ERR_NOMEM;
    }
    *out = k;
    return 0;
}

void http_key_check_readable(struct http_key *k)
{
    if (access(k->lc->api_key_file, R_OK) == 0)
        return;
    log_warning("listen %s: api_key_file %s: %s as uid %u: a SIGHUP will not read this "
                "listener's key again (restart the agent after changing it)",
                k->lc->address, k->lc->api_key_file, strerror(errno), (unsigned)geteuid());
    k->frozen = 1;
}

int http_key_reload(struct http_key *k)
{
    unsigned char next[SHA256_DIGEST_LENGTH];
    int rc;

    if (k->frozen)
        return 0; /* said at start (http_key_check_readable) */
    rc = http_key_read(k->lc, next);
    if (rc != 0) {
        log_error("listen %s: the API key did not load again: the running key stays in use",
                  k->lc->address);
        return rc;
    }
    pthread_mutex_lock(&k->lock);
    memcpy(k->hash, next, sizeof(next));
    pthread_mutex_unlock(&k->lock);
    OPENSSL_cleanse(next, sizeof(next));
    return 0;
}

int http_key_matches(struct http_key *k, const char *v, size_t len)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    int same;

    SHA256((const unsigned char *)v, len, md);
    pthread_mutex_lock(&k->lock);
    same = CRYPTO_memcmp(md, k->hash, sizeof(md)) == 0;
    pthread_mutex_unlock(&k->lock);
    return same;
}

void http_key_free(struct http_key *k)
{
    if (k == NULL)
        return;
    pthread_mutex_destroy(&k->lock);
    OPENSSL_cleanse(k->hash, sizeof(k->hash));
    free(k);
}
