/*
 * The ABI 1.4 part of the plugin API table (aiod/plugin.h): asyncio's
 * cancellation calls, names, results without awaiting, spawn_call,
 * timeout scopes, task groups, futures and plain callbacks. api.c's table
 * points here; fdwatch.c, signal.c, sync.c and queue.c hold the rest.
 */
#ifndef AIOD_API_AIO_H
#define AIOD_API_AIO_H

#include <aiod/plugin.h>

#include "aiod-pb.h"
#include "base/forward.h"

int aio_cancel_msg(aiod_task *task, aiod_child *child, const char *msg);
int aio_cancel_self(aiod_task *task, const char *msg);
uint32_t aio_cancelling(const aiod_task *task);
uint32_t aio_uncancel(aiod_task *task);
aiod_task *aio_current_task(void);
int aio_set_name(aiod_task *task, aiod_child *child, const char *name);
const char *aio_get_name(aiod_task *task, aiod_child *child);
int aio_child_error(const aiod_child *child, const char **ret_kind, const char **ret_message);
int aio_child_result(aiod_task *task, const aiod_child *child, aiod_value **ret_result);
int aio_spawn_call(aiod_task *task,
                   int (*fn)(aiod_task *child, const struct aiod_api *api, void *arg,
                             aiod_value **ret_result),
                   void *arg, aiod_child **ret_child);

double aio_loop_time(void);
int aio_timeout_enter(aiod_task *task, double delay, aiod_timeout **ret_tm);
int aio_timeout_enter_at(aiod_task *task, double when, aiod_timeout **ret_tm);
int aio_timeout_reschedule(aiod_timeout *tm, double when);
double aio_timeout_when(const aiod_timeout *tm);
int aio_timeout_expired(const aiod_timeout *tm);
int aio_timeout_exit(aiod_task *task, aiod_timeout *tm, int status);

int aio_group_new(aiod_task *task, aiod_group **ret_group);
int aio_group_add(aiod_task *task, aiod_group *group, aiod_child *child);
int aio_group_wait(aiod_task *task, aiod_group *group, int status, aiod_value **ret_errors);

int aio_future_new(aiod_task *task, aiod_future **ret_future);
aiod_future *aio_future_ref(aiod_future *f);
void aio_future_release(aiod_future *f);
int aio_future_set_result(aiod_future *f, aiod_value *result);
int aio_future_set_error(aiod_future *f, const char *kind, const char *message);
int aio_future_cancel(aiod_future *f, const char *msg);
uint32_t aio_future_state(const aiod_future *f);
int aio_future_await(aiod_task *task, aiod_future *f, aiod_value **ret_result);
int aio_future_result(aiod_task *task, const aiod_future *f, aiod_value **ret_result);
int aio_future_error(const aiod_future *f, const char **ret_kind, const char **ret_message);
int aio_future_add_done_callback(aiod_future *f, void (*cb)(aiod_future *f, void *data),
                                 void *data);
int aio_future_remove_done_callback(aiod_future *f, void (*cb)(aiod_future *f, void *data),
                                    void *data);

int aio_call_soon(void (*cb)(void *data), void *data, aiod_handle **ret_handle);
int aio_call_later(double delay, void (*cb)(void *data), void *data, aiod_handle **ret_handle);
int aio_call_at(double when, void (*cb)(void *data), void *data, aiod_handle **ret_handle);
int aio_handle_cancel(aiod_handle *h);
void aio_handle_release(aiod_handle *h);

int aio_wait_fd(aiod_task *task, int fd, uint32_t events, double timeout);
int aio_wait_signal(aiod_task *task, int signo, double timeout);

/* spawn's core for both spawn and spawn_call (api.c): a new attached child
 * of `parent` running `fn` with the checked argv (taken, also on failure),
 * sharing the parent's output; a limit sets the parent's pending error
 * LimitError. 0, -EAGAIN (a task limit), -ENOMEM. */
int aio_new_child(aiod_task *parent, fn_entry *fn, Aiod__Value **argv, size_t argc, task **ret);

/* Whether the call rules let `parent`'s task call `fn` (api->spawn): as
 * its root's caller would, by uid alone when that is not known. 0, or
 * -EPERM with the reason in `why`. */
int aio_may_call(task *parent, const fn_entry *fn, char *why, size_t why_len);
/* Then links the new child to its parent and starts it. */
void aio_link_child(aiod_task *parent, aiod_task *child);

#endif
