/* TCP and TLS (RFC 5425) listeners of one worker and the connections they
 * accept: allowlist and connection limit at accept, one transport
 * constructor for plain and TLS bufferevents, framing per connection,
 * backpressure, idle and handshake timeouts, a per-connection buffer cap. */
#ifndef RTR_TCP_H
#define RTR_TCP_H

#include "input.h"

struct tcp;

/* Binds ep's TCP socket for ctx's worker (SO_REUSEPORT) and starts
 * accepting on ctx->base; accepted connections are ctx's inputs. ctx must
 * outlive the listener and its connections. Returns 0 and *out (free with tcp_free), or ERR_IO
 * (logged, naming the address). */
int tcp_new(const struct input_ctx *ctx, struct endpoint *ep, struct tcp **out);

/* Stops accepting (closes the socket); accepted connections live on as the
 * worker's inputs. NULL is fine. */
void tcp_free(struct tcp *t);

#endif
