/*
 * conn: socket I/O for libaioclient (conn.h). The socket is non-blocking
 * and every wait is a poll() on it, restarted on EINTR and bounded by the
 * connection's deadline when it has one, so the library never sleeps
 * anywhere else and never raises SIGPIPE (MSG_NOSIGNAL).
 */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* How much room to offer recv() at a time. */
#define READ_CHUNK (64u * 1024u)

int64_t conn_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before the deadline for poll(): -1 for none, 0 when it
 * has passed. */
static int time_left(const conn *c) {
    if (c->deadline <= 0)
        return -1;
    int64_t left = c->deadline - conn_now_ms();
    return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

static int wait_fd(conn *c, short events, short *ret_revents) {
    struct pollfd p = {.fd = c->fd, .events = events};
    for (;;) {
        int left = time_left(c);
        if (left == 0)
            return -ETIMEDOUT;
        int r = poll(&p, 1, left);
        if (r > 0) {
            *ret_revents = p.revents;
            return 0;
        }
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}

static int open_socket(conn *c, const char *path, uint32_t max_frame, bool nowait) {
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

    /* Blocking while it connects, so that a full backlog is waited for in
     * the kernel (bounded by SO_SNDTIMEO, which bounds a Unix connect);
     * non-blocking from then on. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nowait ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -errno;
    /* Never on 0, 1 or 2: a program started with one of them closed would
     * write its own output (a printf, an error message) into the daemon's
     * connection, which takes it for a broken frame. */
    if (fd <= STDERR_FILENO) {
        int high = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
        int e = errno;
        close(fd);
        if (high < 0)
            return -e;
        fd = high;
    }
    int left = nowait ? -1 : time_left(c);
    if (left == 0) {
        close(fd);
        return -ETIMEDOUT;
    }
    if (left > 0) {
        struct timeval tv = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000};
        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
            int r = -errno;
            close(fd);
            return r;
        }
    }
    int r;
    do
        r = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
    while (r == -EINTR);
    /* A blocking Unix connect that timed out says EAGAIN (or EINPROGRESS). */
    if (!nowait && (r == -EAGAIN || r == -EINPROGRESS))
        r = -ETIMEDOUT;
    if (r == 0 && left > 0) {
        struct timeval none = {0};
        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none)) < 0)
            r = -errno;
    }
    if (r == 0 && !nowait) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
            r = -errno;
    }
    if (r < 0) {
        close(fd);
        return r;
    }
    c->fd = fd;
    return 0;
}

int conn_open(conn *c, const char *path, uint32_t max_frame) {
    return open_socket(c, path, max_frame, false);
}

int conn_open_nowait(conn *c, const char *path, uint32_t max_frame) {
    return open_socket(c, path, max_frame, true);
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

/* The daemon hung up while we wrote (-EPIPE, -ECONNRESET): it may have said
 * why first (a refusal, aiod with invalid settings), in a frame already in
 * our receive buffer. Reads what is there; 0 if a whole frame is buffered,
 * so that the caller reads that frame (and then the end of the
 * connection) instead of reporting the broken pipe; else `err`. */
static int write_failed(conn *c, int err) {
    if (err != -EPIPE && err != -ECONNRESET)
        return err;
    while (!c->eof && conn_read_some(c) > 0)
        ;
    return frame_reader_ready(&c->reader) ? 0 : err;
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
            return write_failed(c, -errno);

        /* The socket buffer is full: wait for room, and drain what the
         * daemon sends meanwhile so that it can make progress too. */
        short rev;
        int r = wait_fd(c, c->eof ? POLLOUT : POLLOUT | POLLIN, &rev);
        if (r < 0)
            return r;
        if ((rev & POLLIN) && !c->eof) {
            r = conn_read_some(c);
            if (r < 0)
                return r;
        }
        if ((rev & (POLLERR | POLLHUP)) && !(rev & POLLOUT))
            return write_failed(c, -EPIPE);
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
            if (c->before_wait)
                c->before_wait(c->before_wait_data);
            r = wait_fd(c, POLLIN, &rev);
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
