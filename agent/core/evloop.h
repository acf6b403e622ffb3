/* Small helpers over libevent used by every loop of the agent. */
#ifndef RTR_EVLOOP_H
#define RTR_EVLOOP_H

#include <event2/util.h>

struct event;
struct evconnlistener;

/* Frees *evp (deleting it from its loop first, as event_free does) and sets
 * *evp to NULL. *evp NULL is fine: teardown paths free what set-up got to. */
void evloop_event_free(struct event **evp);

/* How long a listener stops accepting after resource exhaustion (nginx
 * waits accept_mutex_delay, 500 ms): long enough for descriptors to free
 * up, short enough that senders barely notice. */
#define EVLOOP_ACCEPT_PAUSE_MS 500

/* A listener's retry timer callback: evtimer_new(base, evloop_accept_resume,
 * el) re-enables el. */
void evloop_accept_resume(evutil_socket_t fd, short what, void *arg);

/* What a listener's error callback does (the syslog listeners, the status
 * endpoint). libevent retries EAGAIN, EINTR and ECONNABORTED itself; what
 * reaches here is mostly resource exhaustion (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM), where the pending connection keeps the socket readable and the
 * loop would spin on accept: el stops accepting and retry (its timer, see
 * evloop_accept_resume) re-enables it EVLOOP_ACCEPT_PAUSE_MS later. Other
 * errors are only logged. who names the listener in the log ("listen
 * 1.2.3.4:514", "status"). */
void evloop_accept_error(struct evconnlistener *el, struct event *retry, const char *who);

#endif
