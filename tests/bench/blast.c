/*
 * blast: the sender of `make bench-peers` (issue 11), the same for every
 * contender so that the sender is never what differs. Loopback only.
 *
 *   blast --tcp HOST:PORT [--connections N] [--count N] FILE
 *       sends the LF-terminated lines of FILE as fast as the receiver takes
 *       them, in big writes; N connections get one contiguous share of the
 *       lines each, one thread per connection.
 *   blast --udp HOST:PORT [--rate R] [--count N] FILE
 *       one line per datagram (without its LF), in sendmmsg batches, paced to
 *       R datagrams/s by the monotonic clock (0 = as fast as possible).
 *
 * --count repeats the file's lines, or stops early, to send exactly N lines.
 * Prints what was sent and the rate achieved; exits 1 on any error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sendmmsg, when built without the Makefile's flags */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BLAST_MAX_CONNECTIONS 64
#define BLAST_WRITE_BYTES     (1024 * 1024)
#define BLAST_UDP_BATCH       64
#define BLAST_UDP_MAX_LINE    65507

struct blast_line {
    const char *p;
    size_t len; /* with its LF */
};

struct blast_lines {
    struct blast_line *v;
    size_t n;
};

struct blast_conn {
    const struct sockaddr_storage *addr;
    socklen_t addrlen;
    const struct blast_lines *lines;
    size_t first; /* index into the repeated sequence of lines */
    size_t count;
    size_t bytes_sent;
    int failed;
};

static double blast_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void blast_usage(void)
{
    fprintf(stderr, "usage: blast --tcp HOST:PORT [--connections N] [--count N] FILE\n"
                    "       blast --udp HOST:PORT [--rate R] [--count N] FILE\n");
    exit(2);
}

/* HOST:PORT or [V6]:PORT; only loopback addresses: this tool floods. */
static int blast_resolve(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    const char *colon = strrchr(spec, ':');
    size_t hlen;

    if (colon == NULL || colon == spec)
        return -1;
    hlen = (size_t)(colon - spec);
    if (spec[0] == '[' && hlen >= 2 && spec[hlen - 1] == ']') {
        spec++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host))
        return -1;
    memcpy(host, spec, hlen);
    host[hlen] = '\0';
    int port = atoi(colon + 1);
    if (port <= 0 || port > 65535)
        return -1;
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127)
            return -1;
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof(*v4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr))
            return -1;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*v6);
        return 0;
    }
    return -1;
}

/* Maps FILE and indexes its lines; a last line without LF is ignored. */
static int blast_load(const char *path, struct blast_lines *out)
{
    struct stat st;
    int fd = open(path, O_RDONLY);
    size_t cap = 0;

    if (fd == -1 || fstat(fd, &st) == -1 || st.st_size == 0) {
        perror(path);
        return -1;
    }
    const char *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (base == MAP_FAILED) {
        perror("mmap");
        return -1;
    }
    out->v = NULL;
    out->n = 0;
    for (const char *p = base, *end = base + st.st_size; p < end;) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        if (lf == NULL)
            break;
        if (out->n == cap) {
            cap = cap ? cap * 2 : 65536;
            out->v = realloc(out->v, cap * sizeof(*out->v));
            if (out->v == NULL) {
                perror("realloc");
                return -1;
            }
        }
        out->v[out->n].p = p;
        out->v[out->n].len = (size_t)(lf - p) + 1;
        out->n++;
        p = lf + 1;
    }
    if (out->n == 0) {
        fprintf(stderr, "%s: no LF-terminated line\n", path);
        return -1;
    }
    return 0;
}

/* Consecutive lines of the file are contiguous in the mapping: gather them
 * into writes of about BLAST_WRITE_BYTES, wrapping around for --count. */
static void *blast_tcp_conn(void *arg)
{
    struct blast_conn *c = arg;
    const struct blast_lines *lines = c->lines;
    int fd = socket(c->addr->ss_family, SOCK_STREAM, 0);
    size_t i = c->first % lines->n, left = c->count;

    if (fd == -1 || connect(fd, (const struct sockaddr *)c->addr, c->addrlen) == -1) {
        perror("blast: tcp connect");
        c->failed = 1;
        goto out;
    }
    while (left > 0) {
        const char *start = lines->v[i].p;
        size_t len = 0;
        while (left > 0 && len < BLAST_WRITE_BYTES) {
            len += lines->v[i].len;
            left--;
            if (++i == lines->n) {
                i = 0;
                break; /* the next line is not contiguous with this one */
            }
        }
        while (len > 0) {
            ssize_t w = write(fd, start, len);
            if (w == -1) {
                if (errno == EINTR)
                    continue;
                perror("blast: tcp write");
                c->failed = 1;
                goto out;
            }
            start += w;
            len -= (size_t)w;
            c->bytes_sent += (size_t)w;
        }
    }
out:
    if (fd != -1)
        close(fd);
    return NULL;
}

static int blast_tcp(const struct sockaddr_storage *addr, socklen_t addrlen,
                     const struct blast_lines *lines, size_t count, int connections)
{
    struct blast_conn conns[BLAST_MAX_CONNECTIONS];
    pthread_t threads[BLAST_MAX_CONNECTIONS];
    size_t bytes = 0, first = 0;
    int failed = 0;
    double t0 = blast_now();

    for (int k = 0; k < connections; k++) {
        size_t share = count / (size_t)connections + ((size_t)k < count % (size_t)connections);
        conns[k] = (struct blast_conn){
            .addr = addr, .addrlen = addrlen, .lines = lines, .first = first, .count = share};
        first += share;
        if (pthread_create(&threads[k], NULL, blast_tcp_conn, &conns[k]) != 0) {
            fprintf(stderr, "blast: pthread_create failed\n");
            return -1;
        }
    }
    for (int k = 0; k < connections; k++) {
        pthread_join(threads[k], NULL);
        bytes += conns[k].bytes_sent;
        failed |= conns[k].failed;
    }
    double secs = blast_now() - t0;
    printf("blast: tcp sent %zu lines, %zu bytes on %d connection(s) in %.3f s: %.0f lines/s, "
           "%.1f MB/s\n",
           count, bytes, connections, secs, count / secs, bytes / secs / 1e6);
    return failed ? -1 : 0;
}

static void blast_sleep_until(double t)
{
    double d = t - blast_now();

    if (d <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)d, .tv_nsec = (long)((d - (time_t)d) * 1e9)};
    nanosleep(&ts, NULL);
}

static int blast_udp(const struct sockaddr_storage *addr, socklen_t addrlen,
                     const struct blast_lines *lines, size_t count, double rate)
{
    struct mmsghdr msgs[BLAST_UDP_BATCH];
    struct iovec iov[BLAST_UDP_BATCH];
    int fd = socket(addr->ss_family, SOCK_DGRAM, 0);
    size_t sent = 0, bytes = 0, i = 0, refused = 0;
    double t0 = blast_now();

    if (fd == -1 || connect(fd, (const struct sockaddr *)addr, addrlen) == -1) {
        perror("blast: udp socket");
        return -1;
    }
    while (sent < count) {
        unsigned n = 0;
        /* Paced in batches: a batch leaves when its first datagram is due. */
        if (rate > 0)
            blast_sleep_until(t0 + sent / rate);
        while (n < BLAST_UDP_BATCH && sent + n < count) {
            size_t len = lines->v[i].len - 1;
            iov[n].iov_base = (void *)lines->v[i].p;
            iov[n].iov_len = len < BLAST_UDP_MAX_LINE ? len : BLAST_UDP_MAX_LINE;
            memset(&msgs[n], 0, sizeof(msgs[n]));
            msgs[n].msg_hdr.msg_iov = &iov[n];
            msgs[n].msg_hdr.msg_iovlen = 1;
            n++;
            if (++i == lines->n)
                i = 0;
        }
        unsigned done = 0;
        while (done < n) {
            int r = sendmmsg(fd, msgs + done, n - done, 0);
            if (r == -1) {
                /* ECONNREFUSED reports an earlier datagram the port did not take:
                 * that loss is the receiver's, the send itself goes on. */
                if (errno == EINTR || errno == ECONNREFUSED) {
                    refused += errno == ECONNREFUSED;
                    continue;
                }
                perror("blast: sendmmsg");
                close(fd);
                return -1;
            }
            for (int k = 0; k < r; k++)
                bytes += msgs[done + (unsigned)k].msg_len;
            done += (unsigned)r;
        }
        sent += n;
    }
    double secs = blast_now() - t0;
    close(fd);
    char asked[32] = "full blast";
    if (rate > 0)
        snprintf(asked, sizeof(asked), "asked %.0f/s", rate);
    printf("blast: udp sent %zu datagrams, %zu bytes in %.3f s: %.0f datagrams/s (%s)%s\n", sent,
           bytes, secs, sent / secs, asked, refused ? ", the port refused some" : "");
    return 0;
}

int main(int argc, char **argv)
{
    struct sockaddr_storage addr;
    socklen_t addrlen = 0;
    struct blast_lines lines;
    const char *tcp = NULL, *udp = NULL, *file = NULL;
    long long count = -1;
    double rate = 0;
    int connections = 1;

    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--tcp") == 0 && k + 1 < argc)
            tcp = argv[++k];
        else if (strcmp(argv[k], "--udp") == 0 && k + 1 < argc)
            udp = argv[++k];
        else if (strcmp(argv[k], "--rate") == 0 && k + 1 < argc)
            rate = atof(argv[++k]);
        else if (strcmp(argv[k], "--count") == 0 && k + 1 < argc)
            count = atoll(argv[++k]);
        else if (strcmp(argv[k], "--connections") == 0 && k + 1 < argc)
            connections = atoi(argv[++k]);
        else if (argv[k][0] != '-' && file == NULL)
            file = argv[k];
        else
            blast_usage();
    }
    if (file == NULL || (tcp == NULL) == (udp == NULL) || rate < 0 || connections < 1 ||
        connections > BLAST_MAX_CONNECTIONS || (udp != NULL && connections != 1))
        blast_usage();
    if (blast_resolve(tcp ? tcp : udp, &addr, &addrlen) == -1) {
        fprintf(stderr, "blast: %s: not a loopback HOST:PORT\n", tcp ? tcp : udp);
        return 1;
    }
    if (blast_load(file, &lines) == -1)
        return 1;
    size_t n = count < 0 ? lines.n : (size_t)count;
    int rc = tcp ? blast_tcp(&addr, addrlen, &lines, n, connections)
                 : blast_udp(&addr, addrlen, &lines, n, rate);
    free(lines.v);
    return rc == 0 ? 0 : 1;
}
