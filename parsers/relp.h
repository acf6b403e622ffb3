/* RELP (rsyslog's Reliable Event Logging Protocol) frame codec: parses the
 * frames a client sends and writes the frames a server answers with.
 *
 *   FRAME  = TXNR SP COMMAND SP DATALEN [SP DATA] TRAILER
 *   TXNR   = 1*9DIGIT          COMMAND = 1*32ALPHA
 *   DATALEN = 1*9DIGIT         DATA    = DATALEN octets (any: LF and NUL too)
 *   TRAILER = LF               no SP and no DATA when DATALEN is 0
 *
 * Pure: no I/O, no allocation, no state between calls. The session (the
 * transaction numbers it expects, the window, when to ack) is the caller's.
 * What librelp accepts and sends, and where we are stricter, is listed in
 * parsers/README.md ("RELP"). */
#ifndef RTR_RELP_H
#define RTR_RELP_H

#include <stddef.h>
#include <stdint.h>

#include "str.h"

/* The transaction number a client gives its first command ("open") and the
 * highest one; after it comes 1 again (relp_txnr_next). Hints a server sends
 * unasked ("serverclose") carry txnr 0, which no command may carry. */
#define RELP_TXNR_FIRST        1
#define RELP_TXNR_MAX          999999999u
#define RELP_DATALEN_MAX       999999999u
#define RELP_NUMBER_MAX_DIGITS 9
#define RELP_COMMAND_MAX       32
/* The longest header before DATA, "999999999 <32 letters> 999999999 ": a
 * receiver holding this many bytes plus max_data plus the trailer holds a
 * whole frame, and relp_frame_parse() has said ERR_TOOBIG or ERR_INVALID
 * long before a header could be longer. */
#define RELP_HEADER_MAX                                                                            \
    (RELP_NUMBER_MAX_DIGITS + 1 + RELP_COMMAND_MAX + 1 + RELP_NUMBER_MAX_DIGITS + 1)
/* librelp's client keeps at most this many bytes of a response's text
 * (after "200 "); more would be read as the open response's offers. */
#define RELP_RSP_TEXT_MAX 80
/* The protocol version we speak (librelp's RELP_CURR_PROTOCOL_VERSION). */
#define RELP_PROTOCOL_VERSION 0

enum relp_command {
    RELP_OPEN,
    RELP_SYSLOG,
    RELP_CLOSE,
    RELP_RSP,
    RELP_SERVERCLOSE,
    RELP_UNKNOWN, /* well-formed, but none of the above: f->command names it */
};

struct relp_frame {
    uint64_t txnr; /* 0..RELP_TXNR_MAX: the session checks it is the one it expects */
    enum relp_command cmd;
    struct str command; /* the command as sent (case matters: "SYSLOG" is unknown) */
    struct str data;    /* DATALEN bytes, empty (not absent) when DATALEN is 0 */
};

/* One frame at the start of buf[0..len). The slices point into buf.
 * Returns 0: *f is the frame and *used its length with the trailer.
 * ERR_AGAIN: buf is a valid beginning of a frame that needs more bytes.
 * ERR_TOOBIG: DATALEN is over max_data (the session closes).
 * ERR_INVALID: malformed (a TXNR or DATALEN that is empty, has a sign, a
 * leading zero or more than 9 digits; a COMMAND that is empty, longer than
 * 32 or not letters; a missing SP; DATALEN 0 followed by anything but LF;
 * a byte other than LF where the trailer must be). Each byte is judged as
 * soon as it is held, so garbage is reported at its first byte and a valid
 * prefix never needs more than RELP_HEADER_MAX + max_data + 1 bytes.
 * *used is 0 unless 0 is returned. */
int relp_frame_parse(const char *buf, size_t len, size_t max_data, struct relp_frame *f,
                     size_t *used);

/* The offers of a client's "open" data, lines of name=value[,value...]:
 * relp_version (-1 when absent), whether "commands" lists "syslog", and the
 * relp_software value as sent (a slice of data, absent when not offered).
 * Unknown offers are skipped, as librelp does. Returns 0, or ERR_INVALID when
 * relp_version is offered with a value that is no unsigned number (librelp
 * then refuses the session with a 500). A version above 999999999 reads as
 * 999999999: the session takes the lower of it and RELP_PROTOCOL_VERSION. */
struct relp_offers {
    int version;
    int has_syslog;
    struct str software;
};
int relp_offers_parse(struct str data, struct relp_offers *out);

/* Writes the response "TXNR rsp DATALEN CODE SP TEXT[LF EXTRA]" LF into
 * buf[0..cap); EXTRA (the open response's offers) only when extra.len > 0.
 * Returns the bytes written, or 0 when they do not fit or the arguments
 * cannot make a response librelp reads: txnr over RELP_TXNR_MAX, code not
 * three digits (100..999), text with a LF or longer than RELP_RSP_TEXT_MAX.
 * Nothing is NUL-terminated. */
size_t relp_rsp_format(char *buf, size_t cap, uint64_t txnr, int code, const char *text,
                       struct str extra);

/* The answer to an "open" whose offers we accept: "200 OK" and our offers,
 * "relp_version=0\nrelp_software=SOFTWARE\ncommands=syslog", the bytes
 * librelp's server sends (with its own software). software is
 * "name,version,url" without LF. Returns as relp_rsp_format(). */
size_t relp_open_rsp_format(char *buf, size_t cap, uint64_t txnr, struct str software);

/* The hint a server sends before it closes a session, "0 serverclose 0\n"
 * (txnr 0, no data, as librelp's server). Returns 16, or 0 when cap is less. */
size_t relp_serverclose_format(char *buf, size_t cap);

/* The transaction number after txnr: RELP_TXNR_MAX is followed by 1. */
static inline uint64_t relp_txnr_next(uint64_t txnr)
{
    return txnr >= RELP_TXNR_MAX ? RELP_TXNR_FIRST : txnr + 1;
}

#endif
