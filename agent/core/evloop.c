#include "evloop.h"

#include <errno.h>
#include <string.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "log.h"

/* One limit for every listener: an exhausted process says so for all. */
static struct log_ratelimit evloop_rl_accept = LOG_RATELIMIT_INIT(10, 5);

void evloop_event_free(struct event **evp)
{
    if (*evp == NULL)
        return;
    event_free(*evp);
    *evp = NULL;
}

void evloop_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    evconnlistener_enable(arg);
}

void evloop_accept_error(struct evconnlistener *el, struct event *retry, const char *who)
{
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval pause = {0, EVLOOP_ACCEPT_PAUSE_MS * 1000};

    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        log_limited(&evloop_rl_accept, LOG_LVL_ERROR, "%s: accept: %s; not accepting for %d ms",
                    who, strerror(err), EVLOOP_ACCEPT_PAUSE_MS);
        evconnlistener_disable(el);
        event_add(retry, &pause);
        return;
    }
    log_limited(&evloop_rl_accept, LOG_LVL_WARNING, "%s: accept: %s", who, strerror(err));
}
