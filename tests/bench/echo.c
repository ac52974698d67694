/*
 * aiod-bench: the bare echo server, the physical limit of the benchmark. It
 * speaks the same framing as aiod (4-byte big-endian length + payload) on a
 * Unix stream socket, runs in its own process on its own epoll loop (as aiod
 * runs on libuv), and answers each frame with one frame of the size of aiod's
 * reply (the payload is a copy of a real aiod reply, so the client decodes
 * the same bytes). It parses frames but no protobuf: what remains is the cost
 * of the socket, the loop and the framing.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "frame.h"

#define MAX_CONNS 64
#define RBUF (256u * 1024u)

struct econn {
    int fd;
    uint8_t *rbuf;
    size_t rlen;
    uint8_t *wbuf;
    size_t wlen, woff, wcap;
};

static const uint8_t *reply;
static size_t reply_len;

static void econn_free(int ep, struct econn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->rbuf);
    free(c->wbuf);
    free(c);
}

/* Flushes what it can; arms EPOLLOUT when the socket is full. -1: drop. */
static int econn_write(int ep, struct econn *c) {
    while (c->woff < c->wlen) {
        ssize_t w = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -1;
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            return 0;
        }
        c->woff += (size_t)w;
    }
    c->woff = c->wlen = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    return 0;
}

/* Reads what is there, answers every whole frame, writes once. */
static int econn_read(int ep, struct econn *c) {
    ssize_t n = read(c->fd, c->rbuf + c->rlen, RBUF - c->rlen);
    if (n <= 0)
        return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    c->rlen += (size_t)n;
    size_t off = 0;
    while (c->rlen - off >= FRAME_HEADER_SIZE) {
        uint32_t len = frame_get_header(c->rbuf + off);
        if (len > RBUF - FRAME_HEADER_SIZE)
            return -1;
        if (c->rlen - off < FRAME_HEADER_SIZE + len)
            break;
        off += FRAME_HEADER_SIZE + len;
        size_t need = c->wlen + FRAME_HEADER_SIZE + reply_len;
        if (need > c->wcap) {
            size_t cap = c->wcap ? c->wcap * 2 : 64 * 1024;
            while (cap < need)
                cap *= 2;
            uint8_t *p = realloc(c->wbuf, cap);
            if (!p)
                return -1;
            c->wbuf = p;
            c->wcap = cap;
        }
        frame_put_header(c->wbuf + c->wlen, (uint32_t)reply_len);
        memcpy(c->wbuf + c->wlen + FRAME_HEADER_SIZE, reply, reply_len);
        c->wlen += FRAME_HEADER_SIZE + reply_len;
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    return c->woff == 0 ? econn_write(ep, c) : 0;
}

static _Noreturn void serve(int lfd, int ready_fd) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        _exit(1);
    if (write(ready_fd, "R", 1) != 1)
        _exit(1);
    close(ready_fd);
    struct epoll_event evs[MAX_CONNS];
    for (;;) {
        int n = epoll_wait(ep, evs, MAX_CONNS, -1);
        for (int i = 0; i < n; i++) {
            struct econn *c = evs[i].data.ptr;
            if (!c) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                    continue;
                c = calloc(1, sizeof(*c));
                if (!c || !(c->rbuf = malloc(RBUF))) {
                    free(c);
                    close(fd);
                    continue;
                }
                c->fd = fd;
                struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                continue;
            }
            int r = 0;
            if (evs[i].events & EPOLLOUT)
                r = econn_write(ep, c);
            if (r == 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                r = econn_read(ep, c);
            if (r < 0)
                econn_free(ep, c);
        }
    }
}

pid_t echo_start(const char *path, const uint8_t *payload, size_t len) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return -1;
    strcpy(sa.sun_path, path);
    unlink(path);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        return -1;
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 128) < 0) {
        close(lfd);
        return -1;
    }
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        close(lfd);
        return -1;
    }
    reply = payload;
    reply_len = len;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        serve(lfd, pfd[1]);
    }
    close(pfd[1]);
    close(lfd);
    char b;
    ssize_t n = pid > 0 ? read(pfd[0], &b, 1) : -1;
    close(pfd[0]);
    if (n != 1) {
        if (pid > 0)
            echo_stop(pid);
        return -1;
    }
    return pid;
}

void echo_stop(pid_t pid) {
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}
