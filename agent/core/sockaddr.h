/* Socket addresses as text, for logs, tap lines and port files. */
#ifndef RTR_SOCKADDR_H
#define RTR_SOCKADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Room for "[v6-address]:port". */
#define SOCKADDR_TEXT_MAX 64

/* Formats sa (AF_INET or AF_INET6) as "1.2.3.4:514" or "[::1]:514" into
 * buf; another family gives "(family N)". */
void sockaddr_format(const struct sockaddr *sa, char *buf, size_t len);

/* The size of the struct behind sa: sockaddr_in or sockaddr_in6; 0 for
 * another family. */
size_t sockaddr_size(const struct sockaddr *sa);

/* Nonzero for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
int sockaddr_is_loopback(const struct sockaddr *sa);

/* The port of an AF_INET or AF_INET6 address, in host order. */
unsigned sockaddr_port(const struct sockaddr *sa);

#endif
