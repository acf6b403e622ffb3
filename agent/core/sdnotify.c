#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "errors.h"

int sdnotify_send(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t path_len;
    int fd, rc = 0;

    if (path == NULL || path[0] == '\0')
        return 0;
    path_len = strlen(path);
    /* An absolute path or, after '@', a name in the abstract namespace. */
    if ((path[0] != '/' && path[0] != '@') || path_len >= sizeof(sun.sun_path))
        return ERR_INVALID;
    memcpy(sun.sun_path, path, path_len);
    if (path[0] == '@')
        sun.sun_path[0] = '\0';
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return ERR_IO;
    /* A datagram socket never blocks on send for long; MSG_DONTWAIT makes
     * sure a stuck manager cannot stall the event loop either. */
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sun,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len)) == -1)
        rc = ERR_IO;
    close(fd);
    return rc;
}
