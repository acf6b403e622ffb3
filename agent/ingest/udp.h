/* The UDP listeners of one worker: one SO_REUSEPORT socket per UDP endpoint,
 * read in batches with recvmmsg into buffers allocated once (at most 64 KiB
 * each, whatever max_message_bytes); each datagram (trailer trimmed) is one
 * message. While the queue is full the sockets are not polled: the kernel
 * buffer absorbs the burst or drops (and counts) datagrams. */
#ifndef RTR_UDP_H
#define RTR_UDP_H

#include <stdint.h>

#include "input.h"

struct udp;

/* Binds a socket for every UDP endpoint in ep[0..n) and registers them with
 * ctx's worker as one input (ctx must outlive it). Returns 0 and *out (NULL when there is no UDP
 * endpoint; free with udp_free), or a negative ERR_* (logged, naming the address). */
int udp_new(const struct input_ctx *ctx, struct endpoint *ep, size_t n, struct udp **out);

/* The kernel's drop count (SO_MEMINFO SK_MEMINFO_DROPS) summed over u's
 * sockets: datagrams dropped before the agent could read them, mostly for a
 * full receive buffer. Read on demand, so it is current even when no
 * datagram has come since (SO_RXQ_OVFL, the same kernel counter, only shows
 * up on the next datagram read; it is not used). Thread-safe while u
 * exists; NULL gives 0. */
uint64_t udp_kernel_drops(struct udp *u);

/* Closes the sockets and frees the buffers. NULL is fine. */
void udp_free(struct udp *u);

#endif
