/*
 * Plain callbacks on the loop (asyncio's call_soon, call_later, call_at):
 * run by the drain (run.c) in one FIFO order with the task steps, as
 * asyncio's ready queue holds both, and only those ready when the drain
 * began, as asyncio's loop runs what was ready when its iteration began.
 *
 * A handle is referenced by the loop until its callback has run or it is
 * cancelled, and by whoever asked for it (soon_*'s ret_handle).
 */
#ifndef AIOD_SOON_H
#define AIOD_SOON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef struct soon_handle soon_handle;
typedef void (*soon_fn)(void *data);

int soon_init(uv_loop_t *loop);
/* Drops what is scheduled, without running it. */
void soon_done(void);

/* Schedules cb(data) for the next drain. With ret_handle the caller gets
 * a reference (soon_release). 0, -ENOMEM. */
int soon_call(soon_fn cb, void *data, soon_handle **ret_handle);
/* A call so far off (asyncio's call_later(1e300)) that it never comes:
 * the handle (only the caller's reference; none is made without
 * ret_handle) can be cancelled and released like any other. 0, -ENOMEM,
 * -EINVAL. */
int soon_call_never(soon_fn cb, void *data, soon_handle **ret_handle);
/* After `delay` seconds (<= 0: as soon_call). 0, -ENOMEM, -EINVAL. */
int soon_call_later(double delay, soon_fn cb, void *data, soon_handle **ret_handle);
/* As soon_call_later, at absolute time `when` (soon_time's clock): calls
 * for one time fire in one timers phase, in the order armed. */
int soon_call_at(double when, soon_fn cb, void *data, soon_handle **ret_handle);
/* True if the callback had not started yet: it will not run. */
bool soon_cancel(soon_handle *h);
void soon_release(soon_handle *h);

/* The loop's clock in seconds (monotonic, nanosecond source). */
double soon_time(void);

/* The timeout to give uv_timer_start on `l` so that the timer fires no
 * earlier than `seconds` (<= 0: the next iteration) from now by soon_time;
 * at most LIMIT_TIMER_MAX_MS. Counted from uv_now(l) as it is. */
uint64_t soon_timer_ms(uv_loop_t *l, double seconds);

/* Runs the callbacks scheduled before this call. Returns how many ran. */
size_t soon_run_ready(void);

/* The drain's interleaving (run.c): soon_batch_begin takes the callbacks
 * ready now aside; soon_batch_peek gives the position of the first in the
 * loop's one FIFO order (soon_next_seq, shared with the tasks' ready
 * queue), false when none is left; soon_batch_run_one runs it. */
void soon_batch_begin(void);
bool soon_batch_peek(uint64_t *ret_seq);
void soon_batch_run_one(void);
/* The next position in the FIFO order of ready callbacks and tasks. */
uint64_t soon_next_seq(void);
/* Callbacks waiting for a drain (the drain's idle handle keeps the poll
 * from blocking while there are some). */
size_t soon_ready_count(void);

#endif
