/*
 * Futures (asyncio.Future): a result or an error that is set once, awaited
 * by tasks and watched by done-callbacks. The plugin API's futures, and
 * what api/sync.c builds Event, Lock, Semaphore, Condition, Barrier and
 * Queue from, as asyncio's locks.py and queues.py do.
 *
 * A future lives on the loop thread. References: fut_new gives one; every
 * holder takes its own (fut_ref) and drops it (fut_unref). A task awaiting
 * it holds one while it waits.
 */
#ifndef AIOD_FUTURE_H
#define AIOD_FUTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "aiod-pb.h"
#include "base/forward.h"
#include "base/list.h"

typedef struct fut fut;
typedef void (*fut_callback)(fut *f, void *data);

struct fut {
    unsigned refs;
    /* TASK_PENDING, TASK_DONE, TASK_FAILED or TASK_CANCELLED (task.h). */
    uint8_t state;
    /* The outcome (owned): result when done (NULL: null), kind and
     * message when failed or cancelled (message may be NULL). */
    Aiod__Value *result;
    char *kind, *message;
    /* Its waiters (fut_entry.node), in the order they came: done-callbacks
     * (fut_add_callback), scheduled with call_soon when the future ends,
     * and tasks suspended in fut_await, woken then. */
    list callbacks;
};

/* A new pending future with one reference, or NULL on out-of-memory. */
fut *fut_new(void);
fut *fut_ref(fut *f);
/* Accepts NULL; returns NULL. */
fut *fut_unref(fut *f);

bool fut_done(const fut *f);

/* Sets the result (taken, also on failure). 0, -EBUSY if already done. */
int fut_set_result(fut *f, Aiod__Value *result);
/* Sets the error (copied). 0, -EBUSY, -ENOMEM. */
int fut_set_error(fut *f, const char *kind, const char *message);
/* Cancels a pending future with an optional message (copied). True if it
 * was pending. */
bool fut_cancel(fut *f, const char *message);

/*
 * Inside a task: waits until the future is done. 0 and (if ret_result is
 * not NULL) a copy of the result; -EIO with its error as the task's pending
 * error; -ECANCELED if the future was cancelled, or if the task was: a task
 * cancelled while it waits cancels the future (asyncio's await fut), and
 * one whose wake-up is queued when the cancel comes sees -ECANCELED even
 * though the future is done. -ENOMEM.
 */
int fut_await(task *t, fut *f, Aiod__Value **ret_result);

/* The outcome of a done future as fut_await reports it, without waiting;
 * -EAGAIN while pending. t may be NULL (no pending error is set then). */
int fut_outcome(task *t, const fut *f, Aiod__Value **ret_result);

/* Done-callbacks: cb(f, data) runs from call_soon once the future is done
 * (scheduled at once if it is). 0, -ENOMEM. fut_remove_callback removes
 * every registration of (cb, data) not yet scheduled and says how many. */
int fut_add_callback(fut *f, fut_callback cb, void *data);
int fut_remove_callback(fut *f, fut_callback cb, void *data);

#endif
