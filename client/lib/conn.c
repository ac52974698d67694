/*
 * conn: socket I/O for libaioclient (conn.h). The socket is non-blocking
 * and every wait is a poll() on it, restarted on EINTR, so the library never
 * sleeps anywhere else and never raises SIGPIPE (MSG_NOSIGNAL).
 */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* How much room to offer recv() at a time. */
#define READ_CHUNK (64u * 1024u)

static int wait_fd(int fd, short events, short *ret_revents) {
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        int r = poll(&p, 1, -1);
        if (r > 0) {
            *ret_revents = p.revents;
            return 0;
        }
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}

int conn_open(conn *c, const char *path, uint32_t max_frame) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);

    c->fd = -1;
    c->eof = false;
    frame_reader_init(&c->reader, max_frame);
    if (len == 0)
        return -ENOENT;
    if (len >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, len);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int r = -errno;
        /* A non-blocking Unix connect completes at once unless the
         * listener's backlog is full (EAGAIN) or a signal came (EINTR):
         * then wait for writability and read the final status. */
        if (r == -EAGAIN || r == -EINPROGRESS || r == -EINTR) {
            short rev;
            int err = 0;
            socklen_t elen = sizeof(err);
            r = wait_fd(fd, POLLOUT, &rev);
            if (r == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
                r = -errno;
            else if (r == 0)
                r = -err;
        }
        if (r < 0) {
            close(fd);
            return r;
        }
    }
    c->fd = fd;
    return 0;
}

void conn_close(conn *c) {
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    frame_reader_done(&c->reader);
}

void conn_set_max_frame(conn *c, uint32_t max_frame) {
    c->reader.max_frame = max_frame;
}

/* Reads what is available into the reader: 1 if bytes came, 0 on EAGAIN. */
int conn_read_some(conn *c) {
    size_t room;
    uint8_t *p = frame_reader_space(&c->reader, READ_CHUNK, &room);
    if (!p)
        return -ENOMEM;
    for (;;) {
        ssize_t n = recv(c->fd, p, room, 0);
        if (n > 0) {
            frame_reader_commit(&c->reader, (size_t)n);
            return 1;
        }
        if (n == 0) {
            c->eof = true;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return -errno;
    }
}

int conn_write(conn *c, const uint8_t *data, size_t len) {
    if (c->fd < 0)
        return -ENOTCONN;
    while (len > 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;

        /* The socket buffer is full: wait for room, and drain what the
         * daemon sends meanwhile so that it can make progress too. */
        short rev;
        int r = wait_fd(c->fd, c->eof ? POLLOUT : POLLOUT | POLLIN, &rev);
        if (r < 0)
            return r;
        if ((rev & POLLIN) && !c->eof) {
            r = conn_read_some(c);
            if (r < 0)
                return r;
        }
        if ((rev & (POLLERR | POLLHUP)) && !(rev & POLLOUT))
            return -EPIPE;
    }
    return 0;
}

int conn_read_frame(conn *c, const uint8_t **ret_payload, uint32_t *ret_len) {
    for (;;) {
        int r = frame_reader_next(&c->reader, ret_payload, ret_len);
        if (r != 0)
            return r < 0 ? r : 0;
        if (c->eof || c->fd < 0)
            return -ECONNRESET;
        r = conn_read_some(c);
        if (r < 0)
            return r;
        if (r == 0 && !c->eof) {
            short rev;
            r = wait_fd(c->fd, POLLIN, &rev);
            if (r < 0)
                return r;
        }
    }
}

ssize_t conn_send_some(conn *c, const uint8_t *data, size_t len) {
    size_t done = 0;
    if (c->fd < 0)
        return -ENOTCONN;
    while (done < len) {
        ssize_t n = send(c->fd, data + done, len - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        return n < 0 ? -errno : -EPIPE;
    }
    return (ssize_t)done;
}

int conn_next_frame(conn *c, const uint8_t **ret_payload, uint32_t *ret_len) {
    return frame_reader_next(&c->reader, ret_payload, ret_len);
}
