#include "evloop.h"

#include <event2/event.h>

void evloop_event_free(struct event **evp)
{
    if (*evp == NULL)
        return;
    event_free(*evp);
    *evp = NULL;
}
