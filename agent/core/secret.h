/* Secrets read from files (an API key, the Graph client secret, the audit
 * HMAC key), systemd credentials included (a path under
 * $CREDENTIALS_DIRECTORY is just a file). A secret is never logged: the
 * callers name the file and the config key, never the bytes or their
 * length. */
#ifndef RTR_SECRET_H
#define RTR_SECRET_H

#include <stddef.h>

/* The largest secret any caller accepts. */
#define SECRET_MAX 4096

/* Reads path: its bytes without trailing line ends (echo and editors add
 * one), which must number min..max (more means the wrong file; max at most
 * SECRET_MAX). With text, the secret travels in an HTTP header or form
 * (an API key, a client secret): trailing blanks are cut too, and a control
 * character is refused (it could split a header). On success
 * returns 0 and *out (NUL-terminated, *len bytes; free with secret_free).
 * Otherwise *why says what is wrong, for the caller's log line ("cannot
 * open: No such file or directory", "empty", "shorter than 16 bytes",
 * "longer than 4096 bytes", "holds a control character (one line, no
 * NUL)"), and the return is ERR_IO (cannot read),
 * ERR_CONFIG (wrong size) or ERR_NOMEM. *why points into why_buf.
 * A file its group or other users may read is read all the same, with a
 * warning naming path and its mode. */
int secret_read(const char *path, size_t min, size_t max, int text, char **out, size_t *len,
                char *why_buf, size_t why_cap);

/* Wipes and frees s (len bytes). NULL is fine. */
void secret_free(char *s, size_t len);

#endif
