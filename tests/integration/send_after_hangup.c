/*
 * LD_PRELOAD shim for test_cli_socket.py: a client whose first write on a
 * socket comes only after the daemon has answered and hung up (a slow
 * client). Each send() on a socket that has never been written to first
 * waits (poll, no timeout) until the peer has shut down its side, then
 * writes. Active only while $AIOD_TEST_SEND_AFTER_HANGUP is set.
 */
#include <dlfcn.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Descriptors written to since the process started (low ones only). */
static bool written[4096];

ssize_t send(int fd, const void *buf, size_t len, int flags) {
    static ssize_t (*real_send)(int, const void *, size_t, int);
    if (!real_send)
        real_send = (ssize_t(*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
    if (getenv("AIOD_TEST_SEND_AFTER_HANGUP") && fd >= 0 && fd < 4096 && !written[fd]) {
        written[fd] = true;
        struct pollfd p = {.fd = fd, .events = POLLRDHUP};
        while (poll(&p, 1, -1) >= 0 && !(p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
            ;
    }
    return real_send(fd, buf, len, flags);
}
