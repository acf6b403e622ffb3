/* A decision record, in the byte order of the machine (it never leaves the
 * process):
 *
 *   u8 version, u8 count (1..MAPPING_MAX_DECISIONS), u8 source, host,
 *   event_ref and transport lengths, i64 received seconds, u32 received
 *   nanoseconds, the ack (u64 owner, u64 seq, u32 worker), the source, host,
 *   event_ref and transport bytes,
 *   then per decision:
 *   u8 user kind, u8 mapping length, u16 rule, user and event lengths,
 *   the mapping, rule, user and event bytes, the idempotency key
 *   (DECISION_KEY_LEN hex digits, no NUL), u32 policy block length and its
 *   bytes.
 *
 * decision_next checks the whole record before it hands out the first
 * decision, and every length against what is left, so a corrupt record is
 * refused as a whole and nothing is ever read past its end. */
#include "decision.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "core/escape.h"
#include "core/jsonw.h"
#include "errors.h"

#define DECISION_VERSION 6
/* The spool payload's version (it outlives the process: never reuse one). */
#define DECISION_PAYLOAD_VERSION 1
#define DECISION_ACK             (2 * sizeof(uint64_t) + sizeof(uint32_t))
#define DECISION_HEADER          (6 + sizeof(int64_t) + sizeof(uint32_t) + DECISION_ACK)
#define DECISION_FIXED           (2 + 3 * sizeof(uint16_t) + DECISION_KEY_LEN + sizeof(uint32_t))
#define DECISION_MAX_SHORT       255 /* the mapping name and the origin's texts: a u8 length */
#define DECISION_ORIGIN_TEXTS    4
#define DECISION_LAST_KIND       USER_KIND_EMPLOYEE_ID

_Static_assert(DECISION_MAX_FIELD <= UINT16_MAX, "field lengths are u16");
_Static_assert(MAPPING_MAX_DECISIONS <= UINT8_MAX, "the count is a u8");
_Static_assert(DECISION_HEADER + DECISION_ORIGIN_TEXTS * DECISION_MAX_SHORT <= 64 + 4 * 256,
               "header budget");
_Static_assert(DECISION_FIXED + DECISION_MAX_SHORT <= 16 + 256 + DECISION_KEY_LEN + 4,
               "per-decision budget");

/* SHA-256, fetched once for the process: EVP_sha256() would have OpenSSL 3
 * look it up in the provider store (under a lock shared by every worker)
 * at each DigestInit. Never freed: it lives as long as the process. */
static pthread_once_t decision_sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *decision_sha256;

static void decision_sha256_fetch(void)
{
    decision_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* The context is reinitialised for each hash, never freed between them:
 * with the digest fetched once, OpenSSL 3.1 and later reuse its state and
 * allocate nothing (3.0 still makes the provider's state at each init). */
struct decision_hasher {
    EVP_MD_CTX *ctx;
};

int decision_hasher_new(struct decision_hasher **out)
{
    struct decision_hasher *h;

    *out = NULL;
    if (pthread_once(&decision_sha256_once, decision_sha256_fetch) != 0 || decision_sha256 == NULL)
        return ERR_NOMEM; /* SHA-256 is built into every provider: only memory failed */
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return ERR_NOMEM;
    h->ctx = EVP_MD_CTX_new();
    if (h->ctx == NULL) {
        free(h);
        return ERR_NOMEM;
    }
    *out = h; /* transferred */
    return 0;
}

void decision_hasher_free(struct decision_hasher *h)
{
    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

/* The SHA-256 of parts[0..n), each followed by a NUL when nul_after, into
 * md[DECISION_KEY_LEN / 2]. */
static void decision_digest(struct decision_hasher *h, const struct str *parts, size_t n,
                            int nul_after, unsigned char *md)
{
    unsigned md_len = 0;
    int ok = EVP_DigestInit_ex(h->ctx, decision_sha256, NULL) == 1;

    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(h->ctx, parts[i].p != NULL ? parts[i].p : "", parts[i].len) == 1 &&
             (!nul_after || EVP_DigestUpdate(h->ctx, "", 1) == 1);
    ok = ok && EVP_DigestFinal_ex(h->ctx, md, &md_len) == 1 && md_len * 2 == DECISION_KEY_LEN;
    if (!ok)
        abort(); /* the digest and its context exist: only memory could fail, and then we
                  * cannot go on */
}

/* The lowercase hex SHA-256 of parts, into out[DECISION_KEY_SIZE]. */
static void decision_hash(struct decision_hasher *h, const struct str *parts, size_t n,
                          int nul_after, char *out)
{
    unsigned char md[DECISION_KEY_LEN / 2];

    decision_digest(h, parts, n, nul_after, md);
    hex_encode(md, sizeof(md), out);
}

uint64_t decision_hash64(struct decision_hasher *h, const struct str *parts, size_t n)
{
    unsigned char md[DECISION_KEY_LEN / 2];
    uint64_t v = 0;

    decision_digest(h, parts, n, 1, md);
    for (int i = 0; i < 8; i++)
        v = v << 8 | md[i];
    return v;
}

void decision_key(struct decision_hasher *h, struct str host, struct str rule, struct str user,
                  struct str event_ref, char out[DECISION_KEY_SIZE])
{
    const struct str parts[] = {host, rule, user, event_ref};

    decision_hash(h, parts, sizeof(parts) / sizeof(parts[0]), 1, out);
}

void decision_frame_hash(struct decision_hasher *h, struct str frame, char out[DECISION_KEY_SIZE])
{
    decision_hash(h, &frame, 1, 0, out);
}

/* A writer; the caller checked that what it writes fits. */
struct decision_out {
    char *buf;
    size_t len;
};

static void decision_put(struct decision_out *o, const void *p, size_t n)
{
    if (n > 0)
        memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static void decision_put_u16(struct decision_out *o, size_t v)
{
    uint16_t x = (uint16_t)v;

    decision_put(o, &x, sizeof(x));
}

/* The bytes decision d takes, or 0 when a text is too long for a record. */
static size_t decision_size(const struct mapping_decision *d, size_t mapping_len, struct str block)
{
    if (mapping_len > DECISION_MAX_SHORT || d->rule.len > DECISION_MAX_FIELD ||
        d->user.len > DECISION_MAX_FIELD || d->event.len > DECISION_MAX_FIELD ||
        block.len > POLICY_BLOCK_MAX)
        return 0;
    return DECISION_FIXED + mapping_len + d->rule.len + d->user.len + d->event.len + block.len;
}

/* host and event_ref: the origin's, as the record holds them (cut). */
static void decision_put_one(struct decision_hasher *h, struct decision_out *o,
                             const struct mapping_decision *d, size_t mapping_len, struct str host,
                             struct str event_ref, struct str block)
{
    uint32_t block_len = (uint32_t)block.len;

    unsigned char fixed[2] = {(unsigned char)d->user_kind, (unsigned char)mapping_len};
    char key[DECISION_KEY_SIZE];

    decision_put(o, fixed, sizeof(fixed));
    decision_put_u16(o, d->rule.len);
    decision_put_u16(o, d->user.len);
    decision_put_u16(o, d->event.len);
    decision_put(o, d->mapping, mapping_len);
    decision_put(o, d->rule.p, d->rule.len);
    decision_put(o, d->user.p, d->user.len);
    decision_put(o, d->event.p, d->event.len);
    decision_key(h, host, d->rule, d->user, event_ref, key);
    decision_put(o, key, DECISION_KEY_LEN);
    decision_put(o, &block_len, sizeof(block_len));
    decision_put(o, block.p, block.len);
}

static size_t decision_short(struct str s)
{
    return s.len < DECISION_MAX_SHORT ? s.len : DECISION_MAX_SHORT;
}

size_t decision_encode(struct decision_hasher *h, const struct mapping_decision *d,
                       const struct str *blocks, size_t n, const struct decision_origin *origin,
                       char *buf, size_t cap, size_t *dropped)
{
    struct decision_out o = {buf, 0};
    const struct str texts[DECISION_ORIGIN_TEXTS] = {origin->source, origin->host,
                                                     origin->event_ref, origin->transport};
    unsigned char head[2 + DECISION_ORIGIN_TEXTS] = {DECISION_VERSION, 0};
    int64_t sec = (int64_t)origin->received.tv_sec;
    uint32_t nsec = (uint32_t)origin->received.tv_nsec;
    size_t count = 0, head_len = DECISION_HEADER, total;
    struct str host, event_ref;

    *dropped = 0;
    for (int i = 0; i < DECISION_ORIGIN_TEXTS; i++) {
        head[2 + i] = (unsigned char)decision_short(texts[i]);
        head_len += head[2 + i];
    }
    host = str_make(origin->host.p, head[3]);
    event_ref = str_make(origin->event_ref.p, head[4]);
    if (cap < head_len) {
        *dropped = n;
        return 0;
    }
    o.len = head_len; /* the header goes in last, with the count */
    for (size_t i = 0; i < n; i++) {
        size_t mapping_len = d[i].mapping != NULL ? strlen(d[i].mapping) : 0;
        struct str block = blocks != NULL && blocks[i].p != NULL ? blocks[i] : str_make("", 0);
        size_t need = decision_size(&d[i], mapping_len, block);

        if (need == 0 || need > cap - o.len || count == MAPPING_MAX_DECISIONS) {
            (*dropped)++;
            continue;
        }
        decision_put_one(h, &o, &d[i], mapping_len, host, event_ref, block);
        count++;
    }
    if (count == 0)
        return 0;
    head[1] = (unsigned char)count;
    total = o.len;
    o.len = 0;
    decision_put(&o, head, sizeof(head));
    decision_put(&o, &sec, sizeof(sec));
    decision_put(&o, &nsec, sizeof(nsec));
    decision_put(&o, &origin->ack.owner, sizeof(origin->ack.owner));
    decision_put(&o, &origin->ack.seq, sizeof(origin->ack.seq));
    decision_put(&o, &origin->ack.worker, sizeof(origin->ack.worker));
    for (int i = 0; i < DECISION_ORIGIN_TEXTS; i++)
        decision_put(&o, texts[i].p, head[2 + i]);
    return total;
}

/* An approver's decision: u8 DECISION_APPROVAL_VERSION, u8 approve, u8
 * token and source lengths, the ack, the token and source bytes. */
#define DECISION_APPROVAL_VERSION 0xA1
#define DECISION_APPROVAL_HEADER  (4 + DECISION_ACK)

size_t decision_approval_encode(const struct decision_approval *a, char *buf, size_t cap)
{
    struct decision_out o = {buf, 0};
    unsigned char head[4] = {DECISION_APPROVAL_VERSION, (unsigned char)(a->approve != 0),
                             (unsigned char)a->token.len, (unsigned char)a->source.len};

    if (a->token.len > DECISION_MAX_SHORT || a->source.len > DECISION_MAX_SHORT ||
        cap < DECISION_APPROVAL_HEADER + a->token.len + a->source.len)
        return 0;
    decision_put(&o, head, sizeof(head));
    decision_put(&o, &a->ack.owner, sizeof(a->ack.owner));
    decision_put(&o, &a->ack.seq, sizeof(a->ack.seq));
    decision_put(&o, &a->ack.worker, sizeof(a->ack.worker));
    decision_put(&o, a->token.p, a->token.len);
    decision_put(&o, a->source.p, a->source.len);
    return o.len;
}

int decision_approval_read(struct str rec, struct decision_approval *out)
{
    const unsigned char *h = (const unsigned char *)rec.p;

    if (rec.len == 0 || h[0] != DECISION_APPROVAL_VERSION)
        return 0;
    if (rec.len < DECISION_APPROVAL_HEADER || h[1] > 1 ||
        rec.len != DECISION_APPROVAL_HEADER + (size_t)h[2] + h[3])
        return ERR_INVALID;
    out->approve = h[1];
    memcpy(&out->ack.owner, h + 4, sizeof(out->ack.owner));
    memcpy(&out->ack.seq, h + 4 + sizeof(uint64_t), sizeof(out->ack.seq));
    memcpy(&out->ack.worker, h + 4 + 2 * sizeof(uint64_t), sizeof(out->ack.worker));
    out->token = str_make(rec.p + DECISION_APPROVAL_HEADER, h[2]);
    out->source = str_make(rec.p + DECISION_APPROVAL_HEADER + h[2], h[3]);
    return 1;
}

/* A reader that refuses to go past the record. */
struct decision_in {
    const unsigned char *p;
    size_t len, pos;
};

static int decision_take(struct decision_in *in, size_t n, const unsigned char **out)
{
    if (n > in->len - in->pos)
        return ERR_INVALID;
    *out = in->p + in->pos;
    in->pos += n;
    return 0;
}

static int decision_take_u16(struct decision_in *in, size_t *v)
{
    const unsigned char *p;
    uint16_t x;

    if (decision_take(in, sizeof(x), &p) != 0)
        return ERR_INVALID;
    memcpy(&x, p, sizeof(x));
    *v = x;
    return x <= DECISION_MAX_FIELD ? 0 : ERR_INVALID;
}

static int decision_take_text(struct decision_in *in, size_t n, struct str *out)
{
    const unsigned char *p;

    if (decision_take(in, n, &p) != 0)
        return ERR_INVALID;
    *out = str_make((const char *)p, n);
    return 0;
}

/* Reads the header into out; returns the count or ERR_INVALID. */
static int decision_header(struct decision_in *in, struct decision_record *out)
{
    const unsigned char *h, *ack;
    int64_t sec;
    uint32_t nsec;

    if (decision_take(in, DECISION_HEADER, &h) != 0 || h[0] != DECISION_VERSION || h[1] == 0 ||
        h[1] > MAPPING_MAX_DECISIONS)
        return ERR_INVALID;
    memcpy(&sec, h + 2 + DECISION_ORIGIN_TEXTS, sizeof(sec));
    memcpy(&nsec, h + 2 + DECISION_ORIGIN_TEXTS + sizeof(sec), sizeof(nsec));
    if (nsec >= 1000000000u)
        return ERR_INVALID;
    out->received.tv_sec = (time_t)sec;
    out->received.tv_nsec = (long)nsec;
    ack = h + 2 + DECISION_ORIGIN_TEXTS + sizeof(sec) + sizeof(nsec);
    memcpy(&out->ack.owner, ack, sizeof(out->ack.owner));
    memcpy(&out->ack.seq, ack + sizeof(out->ack.owner), sizeof(out->ack.seq));
    memcpy(&out->ack.worker, ack + 2 * sizeof(uint64_t), sizeof(out->ack.worker));
    if (decision_take_text(in, h[2], &out->source) != 0 ||
        decision_take_text(in, h[3], &out->host) != 0 ||
        decision_take_text(in, h[4], &out->event_ref) != 0 ||
        decision_take_text(in, h[5], &out->transport) != 0)
        return ERR_INVALID;
    return h[1];
}

static int decision_one(struct decision_in *in, struct decision_record *out)
{
    const unsigned char *f, *b;
    uint32_t block_len;
    size_t rule, user, event;

    if (decision_take(in, 2, &f) != 0 || f[0] > DECISION_LAST_KIND ||
        decision_take_u16(in, &rule) != 0 || decision_take_u16(in, &user) != 0 ||
        decision_take_u16(in, &event) != 0 || decision_take_text(in, f[1], &out->mapping) != 0 ||
        decision_take_text(in, rule, &out->rule) != 0 ||
        decision_take_text(in, user, &out->user) != 0 ||
        decision_take_text(in, event, &out->event) != 0 ||
        decision_take_text(in, DECISION_KEY_LEN, &out->key) != 0 ||
        decision_take(in, sizeof(block_len), &b) != 0)
        return ERR_INVALID;
    memcpy(&block_len, b, sizeof(block_len));
    if (block_len > POLICY_BLOCK_MAX || decision_take_text(in, block_len, &out->policy) != 0)
        return ERR_INVALID;
    out->action = STR_ABSENT;
    out->decided = STR_ABSENT;
    out->user_kind = (enum user_kind)f[0];
    return 0;
}

int decision_next(struct str rec, size_t *pos, struct decision_record *out)
{
    struct decision_in in = {(const unsigned char *)rec.p, rec.len, 0};
    struct decision_record scan;
    int count = decision_header(&in, out);

    if (count < 0 || *pos > rec.len)
        return ERR_INVALID;
    if (*pos == 0) {
        /* First call: the record must hold exactly count decisions. */
        for (int i = 0; i < count; i++) {
            if (decision_one(&in, &scan) != 0)
                return ERR_INVALID;
        }
        if (in.pos != rec.len)
            return ERR_INVALID;
        *pos = in.pos = DECISION_HEADER + out->source.len + out->host.len + out->event_ref.len +
                        out->transport.len;
    } else if (*pos < in.pos) {
        return ERR_INVALID;
    }
    if (*pos == rec.len)
        return ERR_AGAIN;
    in.pos = *pos;
    if (decision_one(&in, out) != 0)
        return ERR_INVALID;
    *pos = in.pos;
    return 0;
}

/* ---- the spool payload ---- */

enum decision_field_type {
    DECISION_F_VERSION,       /* DECISION_PAYLOAD_VERSION */
    DECISION_F_SEC,           /* received.tv_sec */
    DECISION_F_NSEC,          /* received.tv_nsec, 0..999999999 */
    DECISION_F_TEXT,          /* a struct str at off */
    DECISION_F_OPTIONAL_TEXT, /* the same, empty when absent (added after version 1's first
                               * release: older payloads lack it) */
    DECISION_F_KIND,          /* user_kind */
    DECISION_F_IF_SET_TEXT,   /* a text written only when not empty (absent reads as empty) */
    DECISION_F_IF_SET_JSON,   /* the same, a JSON object kept as its text */
    DECISION_F_KEY,           /* a text (the key, at off) of DECISION_KEY_LEN characters */
};

/* The payload's fields, in the order they are written. */
static const struct {
    const char *name;
    enum decision_field_type type;
    size_t off; /* DECISION_F_TEXT, _KEY: the slice in struct decision_record */
} decision_payload_fields[] = {
    {"v", DECISION_F_VERSION, 0},
    {"sec", DECISION_F_SEC, 0},
    {"nsec", DECISION_F_NSEC, 0},
    {"source", DECISION_F_TEXT, offsetof(struct decision_record, source)},
    {"transport", DECISION_F_OPTIONAL_TEXT, offsetof(struct decision_record, transport)},
    {"mapping", DECISION_F_TEXT, offsetof(struct decision_record, mapping)},
    {"rule", DECISION_F_TEXT, offsetof(struct decision_record, rule)},
    {"user", DECISION_F_TEXT, offsetof(struct decision_record, user)},
    {"kind", DECISION_F_KIND, 0},
    {"event", DECISION_F_TEXT, offsetof(struct decision_record, event)},
    {"key", DECISION_F_KEY, offsetof(struct decision_record, key)},
    {"policy", DECISION_F_IF_SET_JSON, offsetof(struct decision_record, policy)},
    {"action", DECISION_F_IF_SET_TEXT, offsetof(struct decision_record, action)},
    {"decided", DECISION_F_IF_SET_TEXT, offsetof(struct decision_record, decided)},
};

#define DECISION_PAYLOAD_FIELDS                                                                    \
    (sizeof(decision_payload_fields) / sizeof(decision_payload_fields[0]))

static struct str *decision_text(struct decision_record *d, size_t off)
{
    return (struct str *)(void *)((char *)d + off);
}

static struct str decision_text_of(const struct decision_record *d, size_t off)
{
    return *(const struct str *)(const void *)((const char *)d + off);
}

int decision_payload_write(const struct decision_record *d, struct jsonw *w)
{
    struct str t;

    jsonw_reset(w);
    jsonw_object_begin(w);
    for (size_t i = 0; i < DECISION_PAYLOAD_FIELDS; i++) {
        enum decision_field_type type = decision_payload_fields[i].type;

        t = decision_text_of(d, decision_payload_fields[i].off);
        if ((type == DECISION_F_IF_SET_TEXT || type == DECISION_F_IF_SET_JSON) && t.len == 0)
            continue;
        jsonw_key(w, decision_payload_fields[i].name);
        switch (type) {
        case DECISION_F_IF_SET_TEXT:
            jsonw_str(w, t);
            break;
        case DECISION_F_IF_SET_JSON: /* the block policy_decide wrote */
            jsonw_raw(w, t);
            break;
        case DECISION_F_VERSION:
            jsonw_int(w, DECISION_PAYLOAD_VERSION);
            break;
        case DECISION_F_SEC:
            jsonw_int(w, (long long)d->received.tv_sec);
            break;
        case DECISION_F_NSEC:
            jsonw_int(w, d->received.tv_nsec);
            break;
        case DECISION_F_OPTIONAL_TEXT: /* absent is written as "": null would not read back */
            jsonw_str(w, t.p != NULL ? t : str_make("", 0));
            break;
        case DECISION_F_TEXT:
        case DECISION_F_KEY:
            jsonw_str(w, decision_text_of(d, decision_payload_fields[i].off));
            break;
        case DECISION_F_KIND:
            jsonw_int(w, d->user_kind);
            break;
        }
    }
    jsonw_object_end(w);
    return w->err;
}

/* Reads field i's value v into out. Returns 0 or ERR_INVALID. The numbers
 * are read as json-c converts them (as the first version did). */
static int decision_payload_field(size_t i, struct json_object *v, struct decision_record *out)
{
    struct str *t;
    int64_t n;

    switch (decision_payload_fields[i].type) {
    case DECISION_F_VERSION:
        return json_object_get_int(v) == DECISION_PAYLOAD_VERSION ? 0 : ERR_INVALID;
    case DECISION_F_SEC:
        out->received.tv_sec = (time_t)json_object_get_int64(v);
        return 0;
    case DECISION_F_NSEC:
        n = json_object_get_int(v);
        out->received.tv_nsec = (long)n;
        return n >= 0 && n < 1000000000 ? 0 : ERR_INVALID;
    case DECISION_F_KIND:
        n = json_object_get_int(v);
        out->user_kind = (enum user_kind)n;
        return n >= USER_KIND_AUTO && n <= DECISION_LAST_KIND ? 0 : ERR_INVALID;
    case DECISION_F_IF_SET_JSON:
        if (!json_object_is_type(v, json_type_object))
            return ERR_INVALID;
        t = decision_text(out, decision_payload_fields[i].off);
        *t = str_make(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN), 0);
        t->len = strlen(t->p);
        return 0;
    case DECISION_F_TEXT:
    case DECISION_F_OPTIONAL_TEXT:
    case DECISION_F_IF_SET_TEXT:
    case DECISION_F_KEY:
        if (!json_object_is_type(v, json_type_string))
            return ERR_INVALID;
        t = decision_text(out, decision_payload_fields[i].off);
        *t = str_make(json_object_get_string(v), (size_t)json_object_get_string_len(v));
        return decision_payload_fields[i].type != DECISION_F_KEY || t->len == DECISION_KEY_LEN
                   ? 0
                   : ERR_INVALID;
    }
    return ERR_INVALID;
}

int decision_payload_read(struct str payload, struct decision_payload *out)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *o, *v;
    int rc = ERR_INVALID;

    *out = (struct decision_payload){0};
    if (tok == NULL || payload.len > INT32_MAX)
        goto out;
    o = json_tokener_parse_ex(tok, payload.p, (int)payload.len);
    out->json = o;
    if (o == NULL || !json_object_is_type(o, json_type_object))
        goto out;
    for (size_t i = 0; i < DECISION_PAYLOAD_FIELDS; i++) {
        if (!json_object_object_get_ex(o, decision_payload_fields[i].name, &v)) {
            if (decision_payload_fields[i].type != DECISION_F_OPTIONAL_TEXT &&
                decision_payload_fields[i].type != DECISION_F_IF_SET_TEXT &&
                decision_payload_fields[i].type != DECISION_F_IF_SET_JSON)
                goto out;
            *decision_text(&out->rec, decision_payload_fields[i].off) = str_make("", 0);
        } else if (decision_payload_field(i, v, &out->rec) != 0) {
            goto out;
        }
    }
    rc = 0;
out:
    json_tokener_free(tok);
    return rc;
}

void decision_payload_free(struct decision_payload *p)
{
    json_object_put(p->json);
    p->json = NULL;
}
