/* The UDP listeners of one worker: one SO_REUSEPORT socket per UDP endpoint,
 * read in batches with recvmmsg into buffers allocated once; each datagram
 * (trailer trimmed) is one message. Kernel drops are read from SO_RXQ_OVFL.
 * While the queue is full the sockets are not polled: the kernel buffer
 * absorbs the burst or drops (and counts) datagrams. */
#ifndef RTR_UDP_H
#define RTR_UDP_H

#include "worker.h"

struct udp;

/* Binds a socket for every UDP endpoint in ep[0..n) and registers them with
 * w as one input. Returns 0 and *out (NULL when there is no UDP endpoint;
 * free with udp_free), or a negative ERR_* (logged, naming the address). */
int udp_new(struct worker *w, struct endpoint *ep, size_t n, struct udp **out);

/* Closes the sockets and frees the buffers. NULL is fine. */
void udp_free(struct udp *u);

#endif
