/* Small helpers over libevent used by every loop of the agent. */
#ifndef RTR_EVLOOP_H
#define RTR_EVLOOP_H

struct event;

/* Frees *evp (deleting it from its loop first, as event_free does) and sets
 * *evp to NULL. *evp NULL is fine: teardown paths free what set-up got to. */
void evloop_event_free(struct event **evp);

#endif
