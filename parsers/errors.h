/* Error codes shared by every module: 0 is success, failures are negative.
 * ERR_AGAIN is not a failure but "need more input" (as nginx's NGX_AGAIN). */
#ifndef RTR_ERRORS_H
#define RTR_ERRORS_H

#include <stddef.h>

enum {
    ERR_OK = 0,
    ERR_AGAIN = -1,   /* incomplete input: call again with more bytes */
    ERR_INVALID = -2, /* malformed input */
    ERR_TOOBIG = -3,  /* input over a configured or fixed limit */
    ERR_LIMIT = -4,   /* too many items (fields, pairs) for a fixed table */
    ERR_NOMEM = -5,   /* allocation failed */
    ERR_IO = -6,      /* system call failed; errno was logged by the caller */
    ERR_CONFIG = -7,  /* configuration error; details were reported */
    ERR_BUSY = -8,    /* downstream queue full: retry later (backpressure) */
};

/* Which format an error text ("<format>: <what>") names, kept beside the text so that code
 * counting errors by kind switches on it instead of matching prefixes. */
enum err_kind {
    ERR_KIND_NONE = 0, /* no error */
    ERR_KIND_FRAME,    /* "frame: ...": cut by the framer or by the end of its connection */
    ERR_KIND_SYSLOG,   /* "syslog: ...": a PRI that is no PRIVAL, or a full scratch buffer */
    ERR_KIND_RFC5424,  /* "rfc5424: ...": a claimed RFC 5424 header broke or overflowed */
    ERR_KIND_CEF,      /* "cef: ..." */
    ERR_KIND_LEEF,     /* "leef: ..." */
};

/* Records what in *error unless an error is already there: the first error names the
 * problem, later ones are mostly its consequences. Returns 1 when what was recorded. */
static inline int err_first(const char **error, const char *what)
{
    if (*error != NULL)
        return 0;
    *error = what;
    return 1;
}

/* Static, never-freed name of an error code ("need more input", ...). */
const char *err_name(int code);

#endif
