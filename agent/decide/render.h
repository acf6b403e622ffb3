/* A parsed message as the `parse` JSON object (design.md "parse output"),
 * used by `rtr-agent parse` and by `run --tap`. */
#ifndef RTR_RENDER_H
#define RTR_RENDER_H

#include "core/jsonw.h"
#include "message.h"

/* Appends one JSON line (object + "\n") for m to w. source, when not NULL,
 * adds "source": "<address:port>" and transport, "transport": "udp|tcp|tls"
 * (tap lines only). */
void render_message(struct jsonw *w, const struct message *m, const char *source,
                    const char *transport);

#endif
