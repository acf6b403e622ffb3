/* A RELP session (rsyslog's Reliable Event Logging Protocol, server side)
 * on a TCP or TLS connection that tcp.c runs: the session reads the
 * client's commands from the connection's input, hands each "syslog"
 * message to the pipeline and answers it only once the message is decided
 * and every alert it produced is in the spool and fsynced (the pipeline's
 * decision_ack, answered through the worker). Until then the message stays
 * in the sender's own queue: a kill -9 of the agent loses nothing the
 * sender cannot send again.
 *
 * Answers go out in transaction order, whatever order the spool makes
 * messages durable in; at most RELP_WINDOW messages are read ahead of their
 * answers, then the session stops reading until answers free the window.
 * A message that could not be made durable (held for spool space when the
 * agent stopped) is never answered: the session closes instead, and the
 * sender sends it again to the next agent. Every protocol error closes the
 * session (counted in relp_protocol_errors).
 *
 * Everything runs on the connection's worker loop. */
#ifndef RTR_RELP_SESSION_H
#define RTR_RELP_SESSION_H

#include <stddef.h>

#include <event2/buffer.h>

#include "decide/pipeline.h"
#include "input.h"

/* Messages read ahead of their answers, per session: above rsyslog's
 * default window (128), so a single rsyslog never waits on us for it. */
#define RELP_WINDOW 1024

struct relp_session;

/* What relp_session_input wants of its connection next. */
enum relp_want {
    RELP_WANT_MORE,  /* read on */
    RELP_WANT_BUSY,  /* the pipeline refused a message: pause until woken */
    RELP_WANT_WAIT,  /* the window is full: stop reading until wake() */
    RELP_WANT_CLOSE, /* close once the output is written */
};

/* wake(conn) runs after answers went out (reading may go on, or a
 * stopping session may be done). out: the connection's output. Returns 0
 * and *out_s (free with relp_session_free), or ERR_NOMEM. */
int relp_session_new(const struct input_ctx *ctx, struct evbuffer *out, void (*wake)(void *conn),
                     void *conn, struct relp_session **out_s);

/* Releases the session's acker to the worker (answers still on their way
 * are dropped there). NULL is fine. */
void relp_session_free(struct relp_session *s);

/* Handles the whole commands in; src is the connection's (each message
 * gets its ack in src->ack). What it handled is drained from in; a message
 * the pipeline refused stays. */
enum relp_want relp_session_input(struct relp_session *s, struct evbuffer *in,
                                  struct pipeline_source *src);

/* Nonzero when every message read has been answered. */
int relp_session_idle(const struct relp_session *s);

/* Nonzero once the session must close (a close command answered, a
 * protocol error, a message that was lost). */
int relp_session_closing(const struct relp_session *s);

/* The agent stops: read no more commands; writes "serverclose" (the client
 * then closes, and sends what was not answered to the next agent) when
 * every message read has been answered (relp_session_idle). Returns
 * nonzero when it was written. */
int relp_session_serverclose(struct relp_session *s);

#endif
