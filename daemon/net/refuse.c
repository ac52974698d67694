/*
 * Answering the clients queued on an activation socket when the daemon
 * refuses to start (refuse.h). Runs before any loop exists: plain
 * non-blocking accept, one small write each, close.
 */
#include "net/refuse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

int refuse_waiting_on(int lfd, const char *why) {
    if (lfd < 0 || sd_is_socket_unix(lfd, SOCK_STREAM, 1, NULL, 0) <= 0)
        return 0;
    uint8_t frame[2048];
    size_t len =
        refuse_error_frame(AIOD__ERROR_CODE__ERROR_SHUTTING_DOWN, why, frame, sizeof(frame));
    int flags = fcntl(lfd, F_GETFL);
    if (flags < 0 || fcntl(lfd, F_SETFL, flags | O_NONBLOCK) < 0)
        return 0;
    int n = 0;
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break; /* EAGAIN: nobody else is waiting */
        }
        /* Read what the client sent (its hello) first: closing a Unix
         * socket with unread data makes the peer's reads fail. */
        char sink[4096];
        while (read(fd, sink, sizeof(sink)) > 0)
            ;
        if (len)
            (void)!write(fd, frame, len);
        close(fd);
        n++;
    }
    fcntl(lfd, F_SETFL, flags);
    return n;
}
