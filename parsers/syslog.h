/* Syslog header parser: RFC 5424, RFC 3164 and its real-world variants,
 * or no header at all. Pure: slices into the input, unescaped SD values in a
 * caller scratch buffer, no allocation. */
#ifndef RTR_SYSLOG_H
#define RTR_SYSLOG_H

#include <stddef.h>

#include "errors.h"
#include "str.h"

enum syslog_format {
    SYSLOG_NONE, /* no recognisable header: msg is the whole input */
    SYSLOG_RFC3164,
    SYSLOG_RFC5424,
};

#define SYSLOG_MAX_SD_ELEMENTS 16
#define SYSLOG_MAX_SD_PARAMS   64

struct syslog_sd_param {
    struct str name;
    struct str value; /* unescaped (\" \\ \]) */
};

struct syslog_sd_element {
    struct str id;
    size_t first_param; /* index into syslog_msg.sd_params */
    size_t n_params;
};

enum {
    SYSLOG_F_BOM = 1u << 0, /* MSG started with a UTF-8 BOM (stripped from msg) */
};

struct syslog_msg {
    enum syslog_format format;
    int pri;              /* 0..191, or -1 when absent */
    int version;          /* RFC 5424 VERSION, or 0 when absent */
    struct str timestamp; /* as sent; absent = p NULL (NILVALUE is absent) */
    struct str hostname;
    struct str app;
    struct str procid;
    struct str msgid;
    size_t n_sd;
    struct syslog_sd_element sd[SYSLOG_MAX_SD_ELEMENTS];
    size_t n_sd_params;
    struct syslog_sd_param sd_params[SYSLOG_MAX_SD_PARAMS];
    struct str msg;    /* the MSG part; absent when the message has none */
    unsigned flags;    /* SYSLOG_F_* */
    const char *error; /* static string, or NULL: "rfc5424: <what>" when a
                          header was claimed and broken (format none);
                          "syslog: invalid PRI" (format none, pri -1);
                          "rfc5424: too many SD elements or params, extra
                          dropped" or "syslog: scratch buffer full, SD value
                          left escaped" on input that otherwise parsed (format
                          kept, rfc5424 or rfc3164) */
    /* ERR_KIND_SYSLOG or ERR_KIND_RFC5424, as error's prefix says, set with it;
     * ERR_KIND_NONE without error. */
    enum err_kind error_kind;
};

static inline int syslog_facility(const struct syslog_msg *m)
{
    return m->pri < 0 ? -1 : m->pri >> 3;
}

static inline int syslog_severity(const struct syslog_msg *m)
{
    return m->pri < 0 ? -1 : m->pri & 7;
}

/* Parses buf[0..len) (one frame, trailer removed). Always fills *out: on a
 * broken header it records out->error and falls back to the most useful
 * reading (another format, or none) so that msg is never lost.
 * Returns 0, or ERR_INVALID when out->error is set. Slices in *out point into
 * buf or scratch: valid while buf is kept and until the next scratch_reset.
 * scratch may be NULL: SD values with an escape then keep their raw text and
 * out->error reports it. */
int syslog_parse(const char *buf, size_t len, struct syslog_msg *out, struct scratch *scratch);

const char *syslog_format_name(enum syslog_format f);

#endif
