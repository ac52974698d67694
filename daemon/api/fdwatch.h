/*
 * File descriptors through the loop for plugins (loop.add_reader and
 * add_writer): a task waiting for one fd, and callbacks on an fd's
 * readiness. One poll per fd at a time: libuv allows no more.
 */
#ifndef AIOD_API_FDWATCH_H
#define AIOD_API_FDWATCH_H

#include <aiod/plugin.h>

#include "base/forward.h"

/* Inside a task: see aiod_api.wait_fd. */
int fdwatch_wait(task *t, int fd, uint32_t events, double timeout);
/* See aiod_api.watch_fd, watch_fd_update, watch_fd_close. */
int fdwatch_new(int fd, uint32_t events,
                void (*cb)(aiod_fdwatch *w, int fd, uint32_t revents, void *data), void *data,
                aiod_fdwatch **ret);
int fdwatch_update(aiod_fdwatch *w, uint32_t events);
void fdwatch_close(aiod_fdwatch *w);

#endif
