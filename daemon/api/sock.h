/*
 * Sockets for tasks: TCP and Unix stream connections, reads and writes that
 * suspend the task, name resolution on the thread pool, all with timeouts.
 */
#ifndef AIOD_SOCK_H
#define AIOD_SOCK_H

#include <stddef.h>

#include <aiod/plugin.h>

#include "base/forward.h"
#include "pbvalue.h"

/* Inside a task: see the matching aiod_api entries. */
int sock_tcp_connect(task *t, const char *host, const char *port, double timeout,
                     aiod_sock **ret_sock);
int sock_unix_connect(task *t, const char *path, double timeout, aiod_sock **ret_sock);
long sock_read(task *t, aiod_sock *s, void *buf, size_t len, double timeout);
int sock_write(task *t, aiod_sock *s, const void *buf, size_t len, double timeout);
void sock_close(task *t, aiod_sock *s);
int sock_resolve(task *t, const char *host, Aiod__Value **ret_list);

#endif
