/*
 * The plugin API table (api.h, aiod/plugin.h). Handles given to plugins are
 * the daemon's own objects behind opaque types: aiod_value is an
 * Aiod__Value, aiod_task and aiod_child are tasks (a child handle holds a
 * reference).
 */
#include "api/api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "macro.h"
#include "base/aiod_limits.h"
#include "base/utf8.h"
#include "system/log.h"
#include "core/output.h"
#include "host/registry.h"
#include "api/pool.h"
#include "api/process.h"
#include "core/finish.h"
#include "core/sched.h"
#include "core/wait.h"
#include "api/sock.h"
#include "api/aio.h"
#include "api/fdwatch.h"
#include "api/queue.h"
#include "api/signal.h"
#include "api/sync.h"
#include "core/task.h"

#define V(x) ((Aiod__Value *)(x))
#define CV(x) ((const Aiod__Value *)(x))
#define T(x) ((task *)(x))

/* Calls that suspend are valid only from the task's own coroutine. */
static bool is_running(const aiod_task *t) {
    return t && sched_current() == T(t);
}

static aiod_value *a_null(void) {
    return (aiod_value *)pbvalue_null();
}
static aiod_value *a_bool(int b) {
    return (aiod_value *)pbvalue_bool(b != 0);
}
static aiod_value *a_int(int64_t i) {
    return (aiod_value *)pbvalue_int(i);
}
static aiod_value *a_double(double d) {
    return (aiod_value *)pbvalue_double(d);
}
static aiod_value *a_string(const char *s) {
    return (aiod_value *)pbvalue_string(s);
}
static aiod_value *a_bytes(const void *d, size_t n) {
    return d || n == 0 ? (aiod_value *)pbvalue_bytes(d, n) : NULL;
}
static aiod_value *a_list(void) {
    return (aiod_value *)pbvalue_list();
}
static aiod_value *a_map(void) {
    return (aiod_value *)pbvalue_map();
}
static int a_list_append(aiod_value *l, aiod_value *item) {
    return pbvalue_list_append(V(l), V(item));
}
static int a_map_set(aiod_value *m, const char *key, aiod_value *item) {
    return pbvalue_map_set(V(m), key, V(item));
}
static aiod_value *a_copy(const aiod_value *v) {
    return v ? (aiod_value *)pbvalue_copy(CV(v)) : NULL;
}
static void a_free(aiod_value *v) {
    pbvalue_free(V(v));
}
static uint32_t a_type(const aiod_value *v) {
    return pbvalue_type(CV(v));
}
static int a_get_bool(const aiod_value *v) {
    return pbvalue_type(CV(v)) == PBVALUE_BOOL ? CV(v)->bool_value : 0;
}
static int64_t a_get_int(const aiod_value *v) {
    return pbvalue_type(CV(v)) == PBVALUE_INT ? CV(v)->int_value : 0;
}
static double a_get_double(const aiod_value *v) {
    switch (pbvalue_type(CV(v))) {
    case PBVALUE_DOUBLE:
        return CV(v)->double_value;
    case PBVALUE_INT:
        return (double)CV(v)->int_value;
    default:
        return 0;
    }
}
static const char *a_get_string(const aiod_value *v) {
    return pbvalue_type(CV(v)) == PBVALUE_STRING ? CV(v)->string_value : NULL;
}
static const void *a_get_bytes(const aiod_value *v, size_t *ret_len) {
    if (pbvalue_type(CV(v)) != PBVALUE_BYTES)
        return NULL;
    if (ret_len)
        *ret_len = CV(v)->bytes_value.len;
    return CV(v)->bytes_value.data ? (const void *)CV(v)->bytes_value.data : (const void *)"";
}
static size_t a_length(const aiod_value *v) {
    return pbvalue_length(CV(v));
}
static const aiod_value *a_list_get(const aiod_value *v, size_t i) {
    return (const aiod_value *)pbvalue_list_get(CV(v), i);
}
static const aiod_value *a_map_get(const aiod_value *v, const char *key) {
    return (const aiod_value *)pbvalue_map_get(CV(v), key);
}

_printf_(2, 3) static int a_print(aiod_task *t, const char *fmt, ...) {
    if (!t || !fmt)
        return -EINVAL;
    char buf[LIMIT_MAX_LINE + 1];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
    if ((size_t)n >= sizeof(buf))
        len = utf8_trim_partial(buf, len); /* not half a character at the cut */
    /* One line per newline-separated piece; a trailing newline adds none. */
    const char *p = buf, *end = buf + len;
    if (len > 0 && end[-1] == '\n')
        end--;
    do {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        output *o = task_output(T(t));
        int r = o ? output_append(o, 1, p, (size_t)(stop - p)) : -ENOMEM;
        if (r < 0)
            return r;
        p = nl ? nl + 1 : end;
    } while (p < end);
    return 0;
}

_printf_(3, 4) static int a_fail(aiod_task *t, const char *kind, const char *fmt, ...) {
    if (!t || !kind || !fmt)
        return -EINVAL;
    char buf[LIMIT_MESSAGE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    int r = task_set_pending_error(T(t), kind, buf);
    return r < 0 ? r : -EIO;
}

static int a_sleep(aiod_task *t, double seconds) {
    if (!is_running(t))
        return -EINVAL;
    return sched_sleep(T(t), seconds);
}

static int a_spawn(aiod_task *t, const char *function, aiod_value **args, size_t n_args,
                   aiod_child **ret_child) {
    task *parent = T(t), *child = NULL;
    Aiod__Value **argv = NULL;
    char err[512];
    int r;

    if (!t || !function || (n_args && !args) || !ret_child || n_args > 64 ||
        task_finished(parent)) {
        for (size_t i = 0; args && i < n_args; i++)
            pbvalue_free(V(args[i]));
        return -EINVAL;
    }
    fn_entry *fn = plugin_lookup(function);
    if (!fn) {
        for (size_t i = 0; args && i < n_args; i++)
            pbvalue_free(V(args[i]));
        snprintf(err, sizeof(err), "no function named '%s'", function);
        task_raise(parent, -ENOENT, "LookupError", err);
        return -ENOENT;
    }
    if (aio_may_call(parent, fn, err, sizeof(err)) < 0) {
        for (size_t i = 0; args && i < n_args; i++)
            pbvalue_free(V(args[i]));
        task_raise(parent, -EPERM, "PermissionError", err);
        return -EPERM;
    }
    r = value_check_call(&fn->sig, (Aiod__Value **)args, n_args, false, LIMIT_VALUE_DEPTH, &argv,
                         err, sizeof(err));
    if (r < 0) {
        if (r == -EINVAL)
            task_raise(parent, -EINVAL, "TypeError", err);
        return r;
    }
    r = aio_new_child(t, fn, argv, fn->sig.n_params, &child);
    if (r < 0)
        return r;
    aio_link_child(t, (aiod_task *)child);
    *ret_child = (aiod_child *)child;
    return 0;
}

static int a_await(aiod_task *t, aiod_child *child, aiod_value **ret_result) {
    if (!is_running(t) || !child || T(child) == T(t))
        return -EINVAL;
    Aiod__Value *v = NULL;
    int r = sched_await(T(t), T(child), &v);
    if (r < 0)
        return r;
    if (ret_result)
        *ret_result = (aiod_value *)v;
    else
        pbvalue_free(v);
    return 0;
}

static int a_gather(aiod_task *t, aiod_child *const *children, size_t n, int return_exceptions,
                    aiod_value **ret_list) {
    if (!is_running(t) || (n && !children))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!children[i] || T(children[i]) == T(t))
            return -EINVAL;
    Aiod__Value *v = NULL;
    int r = sched_gather(T(t), (task *const *)children, n, return_exceptions != 0, &v);
    if (r < 0)
        return r;
    if (ret_list)
        *ret_list = (aiod_value *)v;
    else
        pbvalue_free(v);
    return 0;
}

static int a_cancel(aiod_task *t, aiod_child *child) {
    if (!t || !child)
        return -EINVAL;
    bool took = task_cancel(T(child));
    /* ABI 1.4 callers learn whether it took effect. */
    return T(t)->aio && took ? 1 : 0;
}

static void a_child_release(aiod_task *t, aiod_child *child) {
    (void)t;
    task_unref(T(child));
}

static int a_cancelled(const aiod_task *t) {
    if (!t)
        return 0;
    /* ABI 1.4: requests not taken back by uncancel. */
    if (T(t)->aio)
        return T(t)->run && T(t)->run->cancels > 0;
    return T(t)->cancel_requested;
}

static uint64_t a_task_id(const aiod_task *t) {
    return t ? T(t)->id : 0;
}

_printf_(3, 4) static void a_log(aiod_task *t, int priority, const char *fmt, ...) {
    if (!fmt)
        return;
    char buf[LIMIT_MESSAGE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (priority < LOG_EMERG || priority > LOG_DEBUG)
        priority = LOG_INFO;
    log_task(priority, T(t), "%s", buf);
}

static int a_await_timeout(aiod_task *t, aiod_child *child, double timeout, int cancel_on_timeout,
                           aiod_value **ret_result) {
    if (!is_running(t) || !child || T(child) == T(t) || !(timeout == timeout))
        return -EINVAL;
    Aiod__Value *v = NULL;
    int r = sched_await_timeout(T(t), T(child), timeout, cancel_on_timeout != 0, &v);
    if (r < 0)
        return r;
    if (ret_result)
        *ret_result = (aiod_value *)v;
    else
        pbvalue_free(v);
    return 0;
}

static bool valid_children(const aiod_task *t, aiod_child *const *children, size_t n) {
    if (n && !children)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!children[i] || T(children[i]) == T(t))
            return false;
    return true;
}

static int a_wait(aiod_task *t, aiod_child *const *children, size_t n, double timeout,
                  uint32_t return_when) {
    if (!is_running(t) || !valid_children(t, children, n) || return_when < AIOD_FIRST_COMPLETED ||
        return_when > AIOD_ALL_COMPLETED || !(timeout == timeout))
        return -EINVAL;
    return sched_wait(T(t), (task *const *)children, n, timeout, return_when);
}

static int a_as_completed(aiod_task *t, aiod_child *const *children, size_t n, unsigned char *seen,
                          double timeout, size_t *ret_index) {
    if (!is_running(t) || !valid_children(t, children, n) || !seen || !ret_index ||
        !(timeout == timeout))
        return -EINVAL;
    return sched_as_completed(T(t), (task *const *)children, n, seen, timeout, ret_index);
}

static int a_shield(aiod_task *t, aiod_child *child) {
    if (!t || !child)
        return -EINVAL;
    T(child)->shielded = true;
    return 0;
}

static uint32_t a_child_state(const aiod_child *child) {
    return child ? (uint32_t)((const task *)child)->state : 0;
}

static int a_to_thread(aiod_task *t, int (*work)(void *arg), void (*release)(void *arg),
                       void *arg) {
    if (!is_running(t) || !work)
        return -EINVAL;
    return pool_to_thread(T(t), work, release, arg);
}

static int a_proc_run(aiod_task *t, const struct aiod_proc_spec *spec, aiod_value **ret_result) {
    if (!is_running(t) || !spec || !ret_result ||
        spec->struct_size < offsetof(struct aiod_proc_spec, kill_grace) + sizeof(double) ||
        !spec->argv || !spec->argv[0])
        return -EINVAL;
    Aiod__Value *v = NULL;
    int r = proc_run(T(t), spec, &v);
    if (r == 0)
        *ret_result = (aiod_value *)v;
    return r;
}

static int a_tcp_connect(aiod_task *t, const char *host, const char *port, double timeout,
                         aiod_sock **ret_sock) {
    if (!is_running(t) || !host || !port || !ret_sock || !(timeout == timeout))
        return -EINVAL;
    return sock_tcp_connect(T(t), host, port, timeout, ret_sock);
}

static int a_unix_connect(aiod_task *t, const char *path, double timeout, aiod_sock **ret_sock) {
    if (!is_running(t) || !path || !ret_sock || !(timeout == timeout))
        return -EINVAL;
    return sock_unix_connect(T(t), path, timeout, ret_sock);
}

static long a_sock_read(aiod_task *t, aiod_sock *s, void *buf, size_t len, double timeout) {
    if (!is_running(t) || !s || (!buf && len) || !(timeout == timeout))
        return -EINVAL;
    return sock_read(T(t), s, buf, len, timeout);
}

static int a_sock_write(aiod_task *t, aiod_sock *s, const void *buf, size_t len, double timeout) {
    if (!is_running(t) || !s || (!buf && len) || !(timeout == timeout))
        return -EINVAL;
    return sock_write(T(t), s, buf, len, timeout);
}

static void a_sock_close(aiod_task *t, aiod_sock *s) {
    if (s)
        sock_close(T(t), s);
}

static int a_resolve(aiod_task *t, const char *host, aiod_value **ret_list) {
    if (!is_running(t) || !host || !ret_list)
        return -EINVAL;
    Aiod__Value *v = NULL;
    int r = sock_resolve(T(t), host, &v);
    if (r == 0)
        *ret_list = (aiod_value *)v;
    return r;
}

static const struct aiod_api table = {
    .struct_size = sizeof(struct aiod_api),
    .abi_minor = AIOD_ABI_MINOR,
    .value_null = a_null,
    .value_bool = a_bool,
    .value_int = a_int,
    .value_double = a_double,
    .value_string = a_string,
    .value_bytes = a_bytes,
    .value_list = a_list,
    .value_map = a_map,
    .list_append = a_list_append,
    .map_set = a_map_set,
    .value_copy = a_copy,
    .value_free = a_free,
    .value_type = a_type,
    .get_bool = a_get_bool,
    .get_int = a_get_int,
    .get_double = a_get_double,
    .get_string = a_get_string,
    .get_bytes = a_get_bytes,
    .length = a_length,
    .list_get = a_list_get,
    .map_get = a_map_get,
    .print = a_print,
    .fail = a_fail,
    .sleep = a_sleep,
    .spawn = a_spawn,
    .await = a_await,
    .gather = a_gather,
    .cancel = a_cancel,
    .child_release = a_child_release,
    .cancelled = a_cancelled,
    .task_id = a_task_id,
    .log = a_log,
    .await_timeout = a_await_timeout,
    .wait = a_wait,
    .as_completed = a_as_completed,
    .shield = a_shield,
    .child_state = a_child_state,
    .to_thread = a_to_thread,
    .proc_run = a_proc_run,
    .tcp_connect = a_tcp_connect,
    .unix_connect = a_unix_connect,
    .sock_read = a_sock_read,
    .sock_write = a_sock_write,
    .sock_close = a_sock_close,
    .resolve = a_resolve,
    .cancel_msg = aio_cancel_msg,
    .cancel_self = aio_cancel_self,
    .cancelling = aio_cancelling,
    .uncancel = aio_uncancel,
    .current_task = aio_current_task,
    .set_name = aio_set_name,
    .get_name = aio_get_name,
    .child_error = aio_child_error,
    .child_result = aio_child_result,
    .spawn_call = aio_spawn_call,
    .loop_time = aio_loop_time,
    .timeout_enter = aio_timeout_enter,
    .timeout_enter_at = aio_timeout_enter_at,
    .timeout_reschedule = aio_timeout_reschedule,
    .timeout_when = aio_timeout_when,
    .timeout_expired = aio_timeout_expired,
    .timeout_exit = aio_timeout_exit,
    .group_new = aio_group_new,
    .group_add = aio_group_add,
    .group_wait = aio_group_wait,
    .future_new = aio_future_new,
    .future_ref = aio_future_ref,
    .future_release = aio_future_release,
    .future_set_result = aio_future_set_result,
    .future_set_error = aio_future_set_error,
    .future_cancel = aio_future_cancel,
    .future_state = aio_future_state,
    .future_await = aio_future_await,
    .future_result = aio_future_result,
    .future_error = aio_future_error,
    .future_add_done_callback = aio_future_add_done_callback,
    .future_remove_done_callback = aio_future_remove_done_callback,
    .call_soon = aio_call_soon,
    .call_later = aio_call_later,
    .call_at = aio_call_at,
    .handle_cancel = aio_handle_cancel,
    .handle_release = aio_handle_release,
    .wait_fd = aio_wait_fd,
    .watch_fd = fdwatch_new,
    .watch_fd_update = fdwatch_update,
    .watch_fd_close = fdwatch_close,
    .wait_signal = aio_wait_signal,
    .signal_watch = signal_watch_new,
    .signal_unwatch = signal_watch_free,
    .sync_new = api_sync_new,
    .sync_free = api_sync_free,
    .sync_acquire = api_sync_acquire,
    .sync_release = api_sync_release,
    .sync_locked = api_sync_locked,
    .sync_set = api_sync_set,
    .sync_clear = api_sync_clear,
    .sync_is_set = api_sync_is_set,
    .sync_wait = api_sync_wait,
    .sync_wait_for = api_sync_wait_for,
    .sync_notify = api_sync_notify,
    .sync_reset = api_sync_reset,
    .sync_abort = api_sync_abort,
    .sync_count = api_sync_count,
    .queue_new = api_queue_new,
    .queue_free = api_queue_free,
    .queue_put = api_queue_put,
    .queue_put_nowait = api_queue_put_nowait,
    .queue_get = api_queue_get,
    .queue_get_nowait = api_queue_get_nowait,
    .queue_task_done = api_queue_task_done,
    .queue_join = api_queue_join,
    .queue_size = api_queue_size,
    .queue_maxsize = api_queue_maxsize,
    .queue_shutdown = api_queue_shutdown,
};

const struct aiod_api *api_table(void) {
    return &table;
}
