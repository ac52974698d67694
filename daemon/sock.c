/*
 * Task sockets (sock.h). Not implemented yet.
 */
#include "sock.h"

#include <errno.h>

int sock_tcp_connect(task *t, const char *host, const char *port, double timeout,
                     aiod_sock **ret_sock) {
    (void)t, (void)host, (void)port, (void)timeout, (void)ret_sock;
    return -ENOSYS;
}

int sock_unix_connect(task *t, const char *path, double timeout, aiod_sock **ret_sock) {
    (void)t, (void)path, (void)timeout, (void)ret_sock;
    return -ENOSYS;
}

long sock_read(task *t, aiod_sock *s, void *buf, size_t len, double timeout) {
    (void)t, (void)s, (void)buf, (void)len, (void)timeout;
    return -ENOSYS;
}

int sock_write(task *t, aiod_sock *s, const void *buf, size_t len, double timeout) {
    (void)t, (void)s, (void)buf, (void)len, (void)timeout;
    return -ENOSYS;
}

void sock_close(task *t, aiod_sock *s) {
    (void)t, (void)s;
}

int sock_resolve(task *t, const char *host, Aiod__Value **ret_list) {
    (void)t, (void)host, (void)ret_list;
    return -ENOSYS;
}
