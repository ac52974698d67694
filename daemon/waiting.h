/*
 * Client requests that wait for tasks: Await and Gather. Each holds its
 * tasks, a done-callback on each unfinished one, and an optional timeout
 * timer; it replies once (Outcomes or an Error) and then frees itself in the
 * timer's close callback.
 */
#ifndef AIOD_WAITING_H
#define AIOD_WAITING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "forward.h"

typedef struct wait_opts {
    bool gather;
    bool return_exceptions;
    double timeout;
    bool cancel_on_timeout;
} wait_opts;

/* Starts waiting for the `n` tasks of `tasks` on behalf of request
 * `request_id` of `c`. The array (malloc'd) and one reference to each task
 * are taken, also on failure. The reply may be sent before this returns. */
void waiting_start(conn *c, uint64_t request_id, task **tasks, size_t n, const wait_opts *o);

/* The connection is closing: drop its waiting requests without replying. */
void waiting_conn_closed(conn *c);

#endif
