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

#include "base/forward.h"

typedef struct wait_opts {
    bool gather;
    bool return_exceptions;
    double timeout;
    bool cancel_on_timeout;
} wait_opts;

typedef struct wait_req wait_req;

/*
 * A wait for `n` tasks on behalf of request `request_id` of `c`, in one
 * allocation with its tasks array: the caller fills waiting_tasks(r)[0..n),
 * each with a reference it gives up, then calls waiting_begin, which may
 * reply before it returns. waiting_abandon instead frees a wait that never
 * began, dropping the references set (the rest of the array is NULL).
 * waiting_new returns NULL when out of memory.
 */
wait_req *waiting_new(conn *c, uint64_t request_id, size_t n);
task **waiting_tasks(wait_req *r);
void waiting_begin(wait_req *r, const wait_opts *o);
void waiting_abandon(wait_req *r);

/* The connection is closing: drop its waiting requests without replying. */
void waiting_conn_closed(conn *c);

#endif
