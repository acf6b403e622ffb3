/* TCP and TLS (RFC 5425) listeners of one worker and the connections they
 * accept: allowlist and connection limit at accept, one transport
 * constructor for plain and TLS bufferevents, framing per connection,
 * backpressure, idle and handshake timeouts, a per-connection buffer cap. */
#ifndef RTR_TCP_H
#define RTR_TCP_H

#include "worker.h"

struct tcp;

/* Binds ep's TCP socket for w (SO_REUSEPORT) and starts accepting on w's
 * base. Returns 0 and *out (free with tcp_free), or ERR_IO (logged,
 * naming the address). */
int tcp_new(struct worker *w, struct endpoint *ep, struct tcp **out);

/* Stops accepting (closes the socket); accepted connections live on as the
 * worker's inputs. NULL is fine. */
void tcp_free(struct tcp *l);

#endif
