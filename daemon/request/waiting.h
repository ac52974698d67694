/*
 * Client requests that wait for tasks: Await and Gather. Each holds its
 * request, its tasks, a done-callback on each unfinished one, an optional
 * timeout timer, and (a Gather with follow) the followers of its new tasks.
 * It ends its request once (Outcomes or an Error), stops its followers so
 * that nothing of the request comes after that frame, and then frees itself
 * in the timer's close callback.
 */
#ifndef AIOD_WAITING_H
#define AIOD_WAITING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/forward.h"
#include "base/list.h"
#include "request/req.h"

typedef struct session session;

typedef struct wait_opts {
    bool gather;
    bool return_exceptions;
    double timeout;
    bool cancel_on_timeout;
} wait_opts;

typedef struct wait_req wait_req;

/*
 * A wait for `n` tasks of session `s`, in one allocation with its tasks
 * array: the caller fills waiting_tasks(w)[0..n), each with a reference it
 * gives up, then calls waiting_begin, which takes the request and may end
 * it before it returns. waiting_abandon instead frees a wait that never
 * began, dropping the references set (the rest of the array is NULL).
 * waiting_new returns NULL when out of memory.
 */
wait_req *waiting_new(session *s, size_t n);
task **waiting_tasks(wait_req *w);
/* Where the gather's followers go (follow_start's gather_list). */
list *waiting_followers(wait_req *w);
void waiting_begin(wait_req *w, req *r, const wait_opts *o);
void waiting_abandon(wait_req *w);

/* The session is closing: drop its waiting requests without a frame. */
void waiting_session_closed(session *s);

/* A Gather's follower sent its OutputEnd and left `gather_list`
 * (waiting_followers): a gather whose tasks all ended answers once the
 * last one has (follow_start's `ended`). */
void waiting_follower_ended(list *gather_list);

/* The session's followers made progress (its connection drained): waits
 * held back for followers still sending their tasks' output answer if
 * those are done now. */
void waiting_retry(session *s);

#endif
