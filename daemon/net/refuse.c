/*
 * Answering the clients queued on an activation socket when the daemon
 * refuses to start (refuse.h). Runs before any loop exists: plain
 * non-blocking accept, one small write each, and a poll() until they hang
 * up (bounded), then close.
 */
#include "net/refuse.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "aiod-pb.h"
#include "frame.h"

size_t refuse_error_frame(int code, const char *why, uint8_t *buf, size_t size) {
    Aiod__Error e = AIOD__ERROR__INIT;
    e.code = (Aiod__ErrorCode)code;
    e.message = (char *)why;
    Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
    m.body_case = AIOD__SERVER_MESSAGE__BODY_ERROR;
    m.error = &e;
    size_t n = aiod__server_message__get_packed_size(&m);
    if (n + FRAME_HEADER_SIZE > size)
        return 0;
    aiod__server_message__pack(&m, buf + FRAME_HEADER_SIZE);
    frame_put_header(buf, (uint32_t)n);
    return n + FRAME_HEADER_SIZE;
}

int refuse_waiting_clients(const char *why) {
    if (sd_listen_fds(0) != 1)
        return 0;
    return refuse_waiting_on(SD_LISTEN_FDS_START, why);
}

/* A refused client is answered at once, but its connection is kept open
 * (for all of them together) until it hangs up or this long has passed: a
 * client whose hello comes after the answer can still send it and read
 * why, where a connection closed at once made its hello fail with a broken
 * pipe. Clients that connect meanwhile are answered too. */
#define REFUSE_LINGER_MS 2000
/* Connections kept open at once; more are answered and closed at once. */
#define REFUSE_LINGER_MAX 64

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads and discards what the client sent: 1 once it hung up (or failed),
 * 0 if it may send more. Closing a Unix socket with unread data makes the
 * peer's reads fail: what it sent is read before the close. */
static int discard_input(int fd) {
    char sink[4096];
    for (;;) {
        ssize_t n = read(fd, sink, sizeof(sink));
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : 1;
    }
}

int refuse_waiting_on(int lfd, const char *why) {
    if (lfd < 0 || sd_is_socket_unix(lfd, SOCK_STREAM, 1, NULL, 0) <= 0)
        return 0;
    uint8_t frame[2048];
    size_t len =
        refuse_error_frame(AIOD__ERROR_CODE__ERROR_SHUTTING_DOWN, why, frame, sizeof(frame));
    int flags = fcntl(lfd, F_GETFL);
    if (flags < 0 || fcntl(lfd, F_SETFL, flags | O_NONBLOCK) < 0)
        return 0;
    /* [0] is the listening socket, then the connections kept open. */
    struct pollfd p[1 + REFUSE_LINGER_MAX];
    nfds_t np = 1;
    /* The first pass takes the clients already queued. */
    p[0] = (struct pollfd){.fd = lfd, .events = POLLIN, .revents = POLLIN};
    int n = 0;
    int64_t deadline = now_ms() + REFUSE_LINGER_MS;
    for (;;) {
        if (p[0].revents & POLLIN)
            for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd < 0) {
                    if (errno == EINTR || errno == ECONNABORTED)
                        continue;
                    break; /* EAGAIN: nobody else is waiting */
                }
                n++;
                int gone = discard_input(fd);
                if (len)
                    (void)!send(fd, frame, len, MSG_NOSIGNAL);
                if (gone || np == 1 + REFUSE_LINGER_MAX) {
                    (void)discard_input(fd);
                    close(fd);
                    continue;
                }
                /* Nothing more to say: the client reads the end after the
                 * error, and its own writes still go through. */
                shutdown(fd, SHUT_WR);
                p[np++] = (struct pollfd){.fd = fd, .events = POLLIN};
            }
        for (nfds_t i = 1; i < np;) {
            if (p[i].revents && discard_input(p[i].fd)) {
                close(p[i].fd);
                p[i] = p[--np];
                p[np].revents = 0;
                continue;
            }
            i++;
        }
        int64_t left = deadline - now_ms();
        if (np == 1 || left <= 0)
            break; /* nobody left to wait for, or waited long enough */
        for (nfds_t i = 0; i < np; i++)
            p[i].revents = 0;
        if (poll(p, np, (int)left) < 0 && errno != EINTR)
            break;
    }
    for (nfds_t i = 1; i < np; i++) {
        (void)discard_input(p[i].fd);
        close(p[i].fd);
    }
    fcntl(lfd, F_SETFL, flags);
    return n;
}
