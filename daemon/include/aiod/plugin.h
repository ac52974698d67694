/*
 * aiod plugin API, ABI 1.
 *
 * A plugin is a shared object that exports one read-only data symbol,
 * `aiod_plugin`, of type `const struct aiod_plugin`. The daemon finds it with
 * dlsym, checks its head (ABI major, minimum struct size), validates every
 * function signature and only then calls the optional `init`. Nothing runs
 * when the object is loaded.
 *
 * Each exported function runs as a task: a coroutine on the daemon's event
 * loop. The task calls back into the daemon only through the `struct aiod_api`
 * table it is handed; plugins never link against the daemon. Calls that wait
 * (sleep, await, gather) suspend the task and let the loop run other tasks.
 * When the task is cancelled, the waiting call returns -ECANCELED; the task
 * may clean up and should then return -ECANCELED, which reports it as
 * cancelled. As in asyncio, a task that swallows the cancellation and
 * returns a result is done. A plugin built against ABI 1.4 or later gets
 * asyncio's cancellation in full (see "appended in ABI 1.4" below); one
 * built against an older header keeps the older rule: every later waiting
 * call of a cancelled task returns -ECANCELED at once, and cancelling a task
 * cancels all its children.
 *
 * Errors are negative errno values. Pointers are borrowed unless the comment
 * says that ownership moves ("takes", "returns a new ...").
 *
 * Evolution: fields are only appended; a retired api slot stays and returns
 * -ENOSYS. AIOD_ABI_MINOR grows when something is appended, AIOD_ABI_MAJOR when
 * something breaks (the daemon then refuses older plugins with a log line).
 *
 * This header is plain C99.
 */
#ifndef AIOD_PLUGIN_H
#define AIOD_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AIOD_ABI_MAJOR 1
#define AIOD_ABI_MINOR 4

#if defined(__GNUC__)
#define AIOD_PLUGIN_EXPORT __attribute__((visibility("default")))
#define AIOD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AIOD_PLUGIN_EXPORT
#define AIOD_PRINTF(a, b)
#endif

/* Value type codes (uint32_t). The same numbers as ValueType in aiod.proto. */
#define AIOD_TYPE_ANY 0u
#define AIOD_TYPE_NULL 1u
#define AIOD_TYPE_BOOL 2u
#define AIOD_TYPE_INT 3u
#define AIOD_TYPE_DOUBLE 4u
#define AIOD_TYPE_STRING 5u
#define AIOD_TYPE_BYTES 6u
#define AIOD_TYPE_LIST 7u
#define AIOD_TYPE_MAP 8u
/* ABI 1.1: OR'd into the type of the last parameter, it collects that and
 * every further argument into a list whose items have the type in the low
 * bits, like Python's *args: {"args", AIOD_TYPE_STRING | AIOD_TYPE_REST,
 * NULL}. Without arguments the list is empty; default_text must be NULL. */
#define AIOD_TYPE_REST 0x100u

/* Function flags (uint32_t). Unknown bits make the daemon refuse the plugin. */
/* Not listed by `aioctl plugins` and not callable by clients; only by tasks. */
#define AIOD_FN_INTERNAL 0x1u
#define AIOD_FN_KNOWN_FLAGS 0x1u

/* A typed value (opaque). See the value functions in struct aiod_api. */
typedef struct aiod_value aiod_value;
/* A running task (opaque). Valid while the task's function runs. */
typedef struct aiod_task aiod_task;
/* A child task handle returned by spawn (opaque); release with child_release. */
typedef struct aiod_child aiod_child;
/* A connected socket (opaque); close with sock_close. */
typedef struct aiod_sock aiod_sock;
/* ABI 1.4: a future, a timeout scope, a task group, a scheduled callback,
 * an fd watch, a signal watch, a synchronisation primitive and a queue
 * (all opaque; each call's comment says who frees what). */
typedef struct aiod_future aiod_future;
typedef struct aiod_timeout aiod_timeout;
typedef struct aiod_group aiod_group;
typedef struct aiod_handle aiod_handle;
typedef struct aiod_fdwatch aiod_fdwatch;
typedef struct aiod_sigwatch aiod_sigwatch;
typedef struct aiod_sync aiod_sync;
typedef struct aiod_queue aiod_queue;

/* ABI 1.4: a timeout that never expires (asyncio's None). Any timeout of
 * 1e9 seconds or more means the same. */
#define AIOD_FOREVER 1e300

/* ABI 1.4: fd readiness bits (wait_fd, watch_fd). */
#define AIOD_FD_READ 0x1u
#define AIOD_FD_WRITE 0x2u
/* Reported only: the peer hung up, or the fd is in error. */
#define AIOD_FD_ERROR 0x4u
/* ABI 1.4, watch_fd only: the watch does not keep the daemon running
 * (libuv's unref): a stop does not wait for its fd, which the plugin's
 * fini then closes. For housekeeping, such as following a resolver thread
 * left behind, never for work a task waits on. */
#define AIOD_FD_WEAK 0x8u

/* ABI 1.4: kinds of sync_new. */
#define AIOD_SYNC_EVENT 1u
#define AIOD_SYNC_LOCK 2u
#define AIOD_SYNC_SEMAPHORE 3u
#define AIOD_SYNC_BOUNDED_SEMAPHORE 4u
#define AIOD_SYNC_CONDITION 5u
#define AIOD_SYNC_BARRIER 6u
/* What sync_count reports. */
#define AIOD_COUNT_WAITING 1u /* tasks waiting on the object */
#define AIOD_COUNT_VALUE 2u   /* a semaphore's value */
#define AIOD_COUNT_PARTIES 3u /* a barrier's parties */
#define AIOD_COUNT_BROKEN 4u  /* a barrier is broken (0 or 1) */

/* ABI 1.4: kinds of queue_new. */
#define AIOD_QUEUE_FIFO 1u
#define AIOD_QUEUE_LIFO 2u
#define AIOD_QUEUE_PRIORITY 3u

/* Child states (uint32_t), as reported by child_state. */
#define AIOD_STATE_PENDING 1u
#define AIOD_STATE_RUNNING 2u
#define AIOD_STATE_DONE 3u
#define AIOD_STATE_FAILED 4u
#define AIOD_STATE_CANCELLED 5u

/* `return_when` of wait, as asyncio.wait's. */
#define AIOD_FIRST_COMPLETED 1u
#define AIOD_FIRST_EXCEPTION 2u
#define AIOD_ALL_COMPLETED 3u

/* What proc_run runs (ABI 1.1). Fields may be appended; set struct_size. */
struct aiod_proc_spec {
    uint32_t struct_size;
    /* AIOD_PROC_* bits. */
    uint32_t flags;
    /* Program and arguments, NULL-terminated; argv[0] is looked up in PATH. */
    const char *const *argv;
    /* Environment "KEY=VALUE", NULL-terminated, or NULL for a minimal one
     * (PATH, HOME, LANG; with proc_user, that user's HOME, USER and
     * LOGNAME). The daemon's own systemd variables never pass. */
    const char *const *envp;
    /* Working directory, or NULL for the daemon's. */
    const char *cwd;
    /* Bytes written to the child's stdin, which is then closed. */
    const void *stdin_data;
    size_t stdin_len;
    /* Seconds between SIGTERM and SIGKILL on cancellation (0: 5 s). */
    double kill_grace;
    /* ---- appended in ABI 1.2 (read only when struct_size covers it) */
    /* Bytes kept of each of stdout and stderr: 0 (or an older plugin) for
     * the daemon's capture limit, 16 MiB; a smaller bound for a plugin that
     * returns the output as a result, which could not hold more. What comes
     * beyond is still counted ("stdout_bytes"). */
    size_t capture_max;
};
/* Stream stdout/stderr lines into the task's output as they come. */
#define AIOD_PROC_STREAM_OUTPUT 0x1u

struct aiod_api;

/*
 * A task's entry point. `args` holds one value per declared parameter, in
 * order, defaults filled in and types checked (borrowed, valid until the
 * function returns; NULL for a function without parameters). On success
 * store the result in *ret_result (ownership moves to the daemon; leaving
 * it NULL means null) and return 0. On failure call api->fail() to set the
 * error kind and message and return a negative errno; without fail() the
 * kind is Python's name for the errno ("TimeoutError" for -ETIMEDOUT, ...,
 * else "OSError") and the message strerror().
 */
typedef int (*aiod_task_fn)(aiod_task *task, const struct aiod_api *api,
                            const aiod_value *const *args, aiod_value **ret_result);

/* One declared parameter. */
struct aiod_param {
    /* Name, shown in signatures and error messages. */
    const char *name;
    /* One of AIOD_TYPE_*, plus AIOD_TYPE_REST on the last one. */
    uint32_t type;
    /* Default as command-line text converted by `type` (e.g. "3", "true",
     * "[1,2]"), or NULL when the parameter is required. Required parameters
     * must come before those with defaults. */
    const char *default_text;
};

/* One function a plugin offers. */
struct aiod_function {
    /* sizeof(struct aiod_function) as the plugin was compiled. */
    uint32_t struct_size;
    /* AIOD_FN_* bits. */
    uint32_t flags;
    /* Name without the plugin prefix: [A-Za-z_][A-Za-z0-9_]*. */
    const char *name;
    /* One line of documentation. */
    const char *doc;
    const struct aiod_param *params;
    uint32_t n_params;
    /* One of AIOD_TYPE_*; the daemon checks results against it. */
    uint32_t result_type;
    aiod_task_fn fn;

    /* ---- appended in ABI 1.1 (read only when struct_size covers them) */
    /* How many tasks of this function may run at once (0: no limit); the
     * rest wait in FIFO order, shown as "waiting". */
    uint32_t max_concurrent;
    /* A named group sharing one such limit with other functions (NULL:
     * none). The group's limit comes from the daemon's settings, else from
     * max_concurrent of its first function. */
    const char *group;

    /* ---- appended in ABI 1.3 */
    /* What becomes of a submitted or detached task of this function that
     * was running when the daemon stopped (a crash, a kill, or a SIGTERM,
     * whose cancellation it ended by or outlasted the shutdown_grace of):
     * AIOD_ON_INTERRUPT_FAIL (0, the default) ends
     * it failed with error kind "Interrupted"; AIOD_ON_INTERRUPT_RETRY runs
     * it again, as a new attempt. The daemon's on_interrupt setting
     * overrides it. Choose retry only for work that is safe to repeat. */
    uint32_t on_interrupt;
};

enum { AIOD_ON_INTERRUPT_FAIL = 0, AIOD_ON_INTERRUPT_RETRY = 1 };

/* The descriptor a plugin exports as `aiod_plugin`. */
struct aiod_plugin {
    /* Filled by AIOD_PLUGIN_HEAD. */
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t struct_size;
    /* Name: [a-z_][a-z0-9_]*, unique among loaded plugins. */
    const char *name;
    const char *version;
    const struct aiod_function *functions;
    /* Size of one element of `functions` (sizeof(struct aiod_function)). */
    uint32_t function_size;
    uint32_t n_functions;
    /* Optional. Called once after validation; a negative errno refuses the
     * plugin (fini is then not called). */
    int (*init)(const struct aiod_api *api);
    /* Optional. Called before the plugin is unloaded. */
    void (*fini)(const struct aiod_api *api);
    void *reserved[8];
};

#define AIOD_PLUGIN_HEAD AIOD_ABI_MAJOR, AIOD_ABI_MINOR, (uint32_t)sizeof(struct aiod_plugin)

/* The table of daemon services handed to init and to every task. */
struct aiod_api {
    /* sizeof(struct aiod_api) of the daemon; check before using fields that
     * a later minor version appended. */
    uint32_t struct_size;
    uint32_t abi_minor;

    /* ---- values. Constructors return a new value (caller owns it) or NULL
     * on out-of-memory. Accessors borrow. */
    aiod_value *(*value_null)(void);
    aiod_value *(*value_bool)(int b);
    aiod_value *(*value_int)(int64_t i);
    aiod_value *(*value_double)(double d);
    /* Copies the NUL-terminated UTF-8 string; NULL if `s` is not UTF-8. */
    aiod_value *(*value_string)(const char *s);
    aiod_value *(*value_bytes)(const void *data, size_t len);
    aiod_value *(*value_list)(void);
    aiod_value *(*value_map)(void);
    /* Takes `item` (also on failure). 0, -EINVAL if `list` is not a list. */
    int (*list_append)(aiod_value *list, aiod_value *item);
    /* Takes `item` (also on failure); replaces an existing key. 0, -EINVAL. */
    int (*map_set)(aiod_value *map, const char *key, aiod_value *item);
    /* Deep copy; NULL on out-of-memory. */
    aiod_value *(*value_copy)(const aiod_value *v);
    /* Accepts NULL. */
    void (*value_free)(aiod_value *v);
    /* AIOD_TYPE_* of the value (never AIOD_TYPE_ANY). */
    uint32_t (*value_type)(const aiod_value *v);
    /* Accessors return 0 for a value of another type. */
    int (*get_bool)(const aiod_value *v);
    int64_t (*get_int)(const aiod_value *v);
    /* Also converts an int. */
    double (*get_double)(const aiod_value *v);
    /* NULL for a non-string. */
    const char *(*get_string)(const aiod_value *v);
    /* NULL for non-bytes; *ret_len gets the length. */
    const void *(*get_bytes)(const aiod_value *v, size_t *ret_len);
    /* Length of a list or map, 0 otherwise. */
    size_t (*length)(const aiod_value *v);
    /* Item of a list; NULL when out of range. */
    const aiod_value *(*list_get)(const aiod_value *v, size_t i);
    /* Value under `key` in a map; NULL when absent. */
    const aiod_value *(*map_get)(const aiod_value *v, const char *key);

    /* ---- tasks */
    /* Appends one line to the task's output (a trailing newline is dropped;
     * embedded newlines split lines). 0 or -ENOMEM. */
    int (*print)(aiod_task *task, const char *fmt, ...) AIOD_PRINTF(2, 3);
    /* Sets the error the task fails with: kind like an exception type
     * ("ValueError"), message as text. Returns -EIO so that a task can
     * `return api->fail(...)`. */
    int (*fail)(aiod_task *task, const char *kind, const char *fmt, ...) AIOD_PRINTF(3, 4);
    /* Suspends the task for `seconds` (>= 0; 0 yields to other ready tasks;
     * ABI 1.4: below 0 too, as asyncio.sleep). 0, -ECANCELED when the task is
     * cancelled meanwhile, -EINVAL (NaN, infinite; before 1.4 also < 0). */
    int (*sleep)(aiod_task *task, double seconds);
    /* Creates a child task running `function` ("plugin.function") with
     * `args` (n_args values; all taken, also on failure) and returns its
     * handle. The child starts when the caller next suspends (FIFO, as
     * asyncio.create_task). Its output goes to the caller's output. A child
     * still running when its parent ends is cancelled.
     * 0, -ENOENT unknown function, -EINVAL bad arguments (the message is then
     * the task's pending error: see fail), -EPERM a call rule (aiod.conf)
     * does not let the task's caller call `function` (pending error
     * PermissionError), -EAGAIN task limit, -ENOMEM. */
    int (*spawn)(aiod_task *task, const char *function, aiod_value **args, size_t n_args,
                 aiod_child **ret_child);
    /* Waits for the child to end. On success *ret_result gets a copy of its
     * result (caller owns). If the child failed: -EIO, and the child's error
     * kind and message become the caller's pending error (so `return r;`
     * re-raises it). -ECANCELED if the caller or the child was cancelled. */
    int (*await)(aiod_task *task, aiod_child *child, aiod_value **ret_result);
    /* Waits for all children; *ret_list gets a list of their results in
     * order. With return_exceptions a failed child's place holds a map
     * {"error": kind, "message": text}; without it the first failure returns
     * -EIO at once (pending error set; the others keep running). */
    int (*gather)(aiod_task *task, aiod_child *const *children, size_t n, int return_exceptions,
                  aiod_value **ret_list);
    /* Asks the child to cancel; it ends at its current await point. 0;
     * ABI 1.4 callers get 1 if the child was unfinished, else 0. */
    int (*cancel)(aiod_task *task, aiod_child *child);
    /* Releases the handle. A running child is not stopped by this. */
    void (*child_release)(aiod_task *task, aiod_child *child);
    /* Nonzero once cancellation was requested for the task (ABI 1.4: while
     * cancelling() is nonzero). */
    int (*cancelled)(const aiod_task *task);
    /* The task's id. */
    uint64_t (*task_id)(const aiod_task *task);
    /* Logs a line to the daemon's log at syslog `priority`, tagged with the
     * task (task may be NULL, e.g. in init). */
    void (*log)(aiod_task *task, int priority, const char *fmt, ...) AIOD_PRINTF(3, 4);

    /* ---- appended in ABI 1.1: check api->struct_size before use */

    /* asyncio.wait_for: waits for the child at most `timeout` seconds.
     * Otherwise as await. ABI 1.4: with cancel_on_timeout, on expiry (a
     * timeout <= 0 expires at once) the child is cancelled and waited for;
     * a value it returns after swallowing the cancel is returned, an error
     * it raises is passed on, and only its cancellation becomes -ETIMEDOUT
     * (a child that had already ended gives its own outcome as it is);
     * without, -ETIMEDOUT comes at the deadline and the child runs on;
     * AIOD_FOREVER is no limit. Before 1.4: <= 0 is no limit, and on
     * timeout -ETIMEDOUT comes at once (the child cancelled if
     * cancel_on_timeout). */
    int (*await_timeout)(aiod_task *task, aiod_child *child, double timeout, int cancel_on_timeout,
                         aiod_value **ret_result);
    /* asyncio.wait: returns when `return_when` (AIOD_FIRST_COMPLETED,
     * AIOD_FIRST_EXCEPTION, AIOD_ALL_COMPLETED) holds or after `timeout`
     * seconds (<= 0: no limit before ABI 1.4; at once from 1.4, where
     * AIOD_FOREVER is none, and 0 still yields once), never cancelling
     * anything. ABI 1.4: AIOD_FIRST_EXCEPTION means a child that failed,
     * not one cancelled. Returns how many children have finished (>= 0;
     * ABI 1.4: a child given twice counts once), -ECANCELED, -EINVAL
     * (ABI 1.4: also for n == 0, asyncio's ValueError). */
    int (*wait)(aiod_task *task, aiod_child *const *children, size_t n, double timeout,
                uint32_t return_when);
    /* asyncio.as_completed, one step at a time: waits until one of the
     * children not yet returned by earlier calls has finished and writes its
     * index to *ret_index: of those that ended, the one that ended first (a
     * child given twice is one step, both its places marked). `seen` (n
     * flags, zeroed by the caller before the first call) records what was
     * returned. 0, -ETIMEDOUT, -ECANCELED, -ENOENT when all were returned.
     * The timeout applies per call before ABI 1.4; from 1.4 it covers the
     * whole iteration, counted from the call that starts it (no child
     * marked in `seen`), and every step after it passed is -ETIMEDOUT. */
    int (*as_completed)(aiod_task *task, aiod_child *const *children, size_t n, unsigned char *seen,
                        double timeout, size_t *ret_index);
    /* asyncio.shield: cancelling the tasks that await this child, or its
     * parent ending, no longer cancels it. 0. */
    int (*shield)(aiod_task *task, aiod_child *child);
    /* AIOD_STATE_* of a child, without waiting. */
    uint32_t (*child_state)(const aiod_child *child);

    /* asyncio.to_thread: runs work(arg) on the daemon's thread pool while the
     * task waits; returns what work returned (work must not call the api).
     * If the task is cancelled meanwhile, returns -ECANCELED at once; work
     * still runs to its end, its result is dropped, and release(arg) (if
     * not NULL) is then called on the loop thread: after -ECANCELED the task
     * must not touch arg again. release is not called otherwise. */
    int (*to_thread)(aiod_task *task, int (*work)(void *arg), void (*release)(void *arg),
                     void *arg);

    /* asyncio.create_subprocess_exec + communicate: runs the process and
     * waits for it to exit. *ret_result gets a map {"exit": int (the exit
     * status, or -N if killed by signal N), "stdout": string, "stderr":
     * string} (bytes instead of string for output that is not UTF-8). A
     * stream over the capture limit (16 MiB) is cut, and the map also gets
     * "stdout_truncated"/"stderr_truncated": true and "stdout_bytes"/
     * "stderr_bytes": the full count (spec->capture_max, ABI 1.2, sets a
     * smaller limit). The process runs in a process group of
     * its own; whatever is left in it when proc_run returns is killed.
     * Cancellation sends SIGTERM, then SIGKILL after kill_grace, and
     * returns -ECANCELED once the process is gone. -ENOENT if the program
     * is not found, -EINVAL. */
    int (*proc_run)(aiod_task *task, const struct aiod_proc_spec *spec, aiod_value **ret_result);

    /* Sockets through the loop. Every call suspends the task; `timeout` in
     * seconds (<= 0: none) gives -ETIMEDOUT. */
    /* Connects to host:port over TCP (name resolved on the thread pool). */
    int (*tcp_connect)(aiod_task *task, const char *host, const char *port, double timeout,
                       aiod_sock **ret_sock);
    /* Connects to a Unix stream socket. */
    int (*unix_connect)(aiod_task *task, const char *path, double timeout, aiod_sock **ret_sock);
    /* Reads up to len bytes: the count (> 0), 0 at end of stream, or a
     * negative errno. A len of 0 returns 0 at once, as read(2) does: it
     * says nothing about the end of the stream. */
    long (*sock_read)(aiod_task *task, aiod_sock *sock, void *buf, size_t len, double timeout);
    /* Writes all len bytes. 0 or a negative errno. */
    int (*sock_write)(aiod_task *task, aiod_sock *sock, const void *buf, size_t len,
                      double timeout);
    /* Closes and frees the socket. Accepts NULL. */
    void (*sock_close)(aiod_task *task, aiod_sock *sock);
    /* Resolves a host name: *ret_list gets a list of address strings. */
    int (*resolve)(aiod_task *task, const char *host, aiod_value **ret_list);
    /* ---- appended in ABI 1.4: check api->struct_size before use.
     *
     * asyncio's cancellation. A task of a plugin built for ABI 1.4 or later
     * (its descriptor's abi_minor >= 4) is cancelled as an asyncio Task is:
     * - cancel() counts a request (cancelling()) and delivers -ECANCELED
     *   once, at the task's current or next await point, also when the
     *   task's wake-up was already queued; a task that catches it may clean
     *   up asynchronously, or carry on after uncancel();
     * - a task that is cancelled while it awaits a child, a gather, a task
     *   group or a future passes the cancellation to that (unless shielded)
     *   and goes on waiting for it: it sees what that ends with;
     * - its other children are not cancelled. A child whose parent ends is
     *   handed to the parent's parent; a top-level task's remaining
     *   descendants are cancelled when it ends, as asyncio.run does;
     * - a task that returns with a cancellation requested but not yet
     *   delivered ends cancelled.
     * The same plugin also gets, from calls that existed before 1.4:
     * await_timeout as asyncio.wait_for (below), wait() on no children
     * -EINVAL, and timeouts <= 0 that expire at once (AIOD_FOREVER: none).
     * Plugins built for an older ABI keep the behaviour documented above. */

    /* Task.cancel(msg): requests the child's cancellation with an optional
     * message (copied; NULL: none), which becomes its error message.
     * 1 if the child was unfinished, 0 if it had ended. -EINVAL. */
    int (*cancel_msg)(aiod_task *task, aiod_child *child, const char *msg);
    /* current_task().cancel(msg): the task cancels itself; -ECANCELED is
     * delivered at its next await point (or it ends cancelled if it returns
     * first). 1, or -EINVAL. */
    int (*cancel_self)(aiod_task *task, const char *msg);
    /* Task.cancelling(): cancellation requests not yet uncancelled. */
    uint32_t (*cancelling)(const aiod_task *task);
    /* Task.uncancel(): one request less; returns the count left. At 0 a
     * cancellation requested but not yet delivered is dropped. */
    uint32_t (*uncancel)(aiod_task *task);
    /* asyncio.current_task(): the task whose code runs now, or NULL in a
     * callback (call_soon, watch_fd, ...) or in init. */
    aiod_task *(*current_task)(void);
    /* Task.set_name / get_name, for the task itself (child NULL) or a
     * child. The name is copied (at most 255 bytes of UTF-8). 0, -EINVAL. */
    int (*set_name)(aiod_task *task, aiod_child *child, const char *name);
    /* Borrowed; valid until the next set_name or until the task's handle
     * is released. The default is "Task-<id>". */
    const char *(*get_name)(aiod_task *task, aiod_child *child);
    /* Task.exception() without awaiting: 1 and the kind and message
     * (borrowed, valid while the handle is held) if the child failed, 0 if
     * it is done, -ECANCELED (message set if non-NULL) if it was cancelled,
     * -EAGAIN if it has not ended (asyncio's InvalidStateError). */
    int (*child_error)(const aiod_child *child, const char **ret_kind, const char **ret_message);
    /* Task.result() without awaiting: 0 and a copy (caller owns) if done;
     * -EIO if it failed (its error becomes the task's pending error),
     * -ECANCELED, -EAGAIN if it has not ended, -ENOMEM. */
    int (*child_result)(aiod_task *task, const aiod_child *child, aiod_value **ret_result);
    /* create_task of a C function: like spawn, but the child runs
     * fn(child, api, arg, &result) (the same contract as aiod_task_fn, with
     * `arg` for the arguments). arg is borrowed: it must stay valid until
     * the child ends and must not point into a task's stack. The child
     * counts as a task of the caller's function (limits, listing), but its
     * result may be of any type (the function's declared result type is
     * not checked on it). 0, -EAGAIN task limit, -ENOMEM, -EINVAL. */
    int (*spawn_call)(aiod_task *task,
                      int (*fn)(aiod_task *child, const struct aiod_api *api, void *arg,
                                aiod_value **ret_result),
                      void *arg, aiod_child **ret_child);

    /* ---- timeout scopes (asyncio.timeout, asyncio.timeout_at) */
    /* The loop's clock, in seconds (monotonic; asyncio's loop.time()). */
    double (*loop_time)(void);
    /* Enters a scope that cancels the task `delay` seconds from now
     * (AIOD_FOREVER: not until rescheduled; <= 0: at the next await
     * point). *ret_tm is the task's until timeout_exit, which frees it.
     * 0, -EINVAL, -ENOMEM. */
    int (*timeout_enter)(aiod_task *task, double delay, aiod_timeout **ret_tm);
    /* The same with an absolute deadline in loop_time() seconds. */
    int (*timeout_enter_at)(aiod_task *task, double when, aiod_timeout **ret_tm);
    /* Timeout.reschedule(when): a new deadline (loop_time() seconds, or
     * AIOD_FOREVER). -EINVAL once expired or exited. */
    int (*timeout_reschedule)(aiod_timeout *tm, double when);
    /* Timeout.when(): the deadline, AIOD_FOREVER for none. */
    double (*timeout_when)(const aiod_timeout *tm);
    /* Timeout.expired(): nonzero once the deadline cancelled the task. */
    int (*timeout_expired)(const aiod_timeout *tm);
    /* Leaves the scope (innermost first) with the status the block ended
     * with (0 or a negative errno) and returns the status to go on with:
     * -ETIMEDOUT in place of the -ECANCELED that its own expiry caused
     * (asyncio's TimeoutError), else `status`. Frees tm. -EINVAL (tm
     * left as it was) when tm is not `task`'s scope. */
    int (*timeout_exit)(aiod_task *task, aiod_timeout *tm, int status);

    /* ---- task groups (asyncio.TaskGroup) */
    /* A new group of the task's children (the task's until group_wait). */
    int (*group_new)(aiod_task *task, aiod_group **ret_group);
    /* TaskGroup.create_task: adds the task's unfinished child (just made
     * by spawn or spawn_call) to the group; the group keeps its own
     * reference. -EINVAL (not this task's child, or the group is ending:
     * asyncio's RuntimeError; the child is then cancelled). */
    int (*group_add)(aiod_task *task, aiod_group *group, aiod_child *child);
    /* The end of the `async with` block: `status` is how the block ended
     * (0, or a negative errno; with -EIO the task's pending error counts as
     * one of the group's errors). Waits for every child. The first child
     * to fail cancels the others and the block's task (the block then
     * sees -ECANCELED at its await point, which group_wait absorbs). 0 if
     * all were done; -EIO with pending error kind "ExceptionGroup" and
     * *ret_errors (may be NULL; caller owns) a list of {"error": kind,
     * "message": text}, one per failure in the order they happened;
     * -ECANCELED if the task was cancelled from outside. Frees the group.
     * -EINVAL (the group left as it was) when it is not `task`'s group or
     * `task` is not the one running. */
    int (*group_wait)(aiod_task *task, aiod_group *group, int status, aiod_value **ret_errors);

    /* ---- futures (asyncio.Future) */
    /* A new pending future; the caller holds one reference. task may be
     * NULL (in init or a callback). 0, -ENOMEM. */
    int (*future_new)(aiod_task *task, aiod_future **ret_future);
    /* Another reference (returns f). */
    aiod_future *(*future_ref)(aiod_future *f);
    /* Drops a reference; accepts NULL. */
    void (*future_release)(aiod_future *f);
    /* Sets the result (taken, also on failure; NULL is null). 0, -EBUSY if
     * already done (InvalidStateError). Callable anywhere on the loop. */
    int (*future_set_result)(aiod_future *f, aiod_value *result);
    /* Sets the error (copied). 0, -EBUSY, -EINVAL. */
    int (*future_set_error)(aiod_future *f, const char *kind, const char *message);
    /* Future.cancel(msg): 1 if it was pending, 0 if done. */
    int (*future_cancel)(aiod_future *f, const char *msg);
    /* AIOD_STATE_PENDING, _DONE, _FAILED or _CANCELLED. */
    uint32_t (*future_state)(const aiod_future *f);
    /* await future: 0 and a copy of the result (caller owns; may be NULL
     * for ret_result NULL); -EIO with its error as the pending error;
     * -ECANCELED if it was cancelled, or if the task was (which cancels
     * the future, as asyncio does). */
    int (*future_await)(aiod_task *task, aiod_future *f, aiod_value **ret_result);
    /* Future.result() without waiting: as future_await, but -EAGAIN while
     * pending. Future.exception(): 1 and the kind and message (borrowed
     * while a reference is held; either pointer may be NULL) if it failed,
     * 0 if done, -ECANCELED (kind "CancelledError", its message), -EAGAIN
     * while pending. */
    int (*future_result)(aiod_task *task, const aiod_future *f, aiod_value **ret_result);
    int (*future_error)(const aiod_future *f, const char **ret_kind, const char **ret_message);
    /* add_done_callback: cb(f, data) is scheduled (as call_soon) once the
     * future is done, at once if it is. 0, -ENOMEM. */
    int (*future_add_done_callback)(aiod_future *f, void (*cb)(aiod_future *f, void *data),
                                    void *data);
    /* remove_done_callback: how many (cb, data) registrations were removed. */
    int (*future_remove_done_callback)(aiod_future *f, void (*cb)(aiod_future *f, void *data),
                                       void *data);

    /* ---- plain callbacks (loop.call_soon, call_later, call_at). cb runs
     * on the loop outside any task: it may use every call that does not
     * suspend. With ret_handle non-NULL the caller gets a reference to
     * release with handle_release; handle_cancel works until the callback
     * has started. A delay (or time) 1e9 s or more away never comes, as in
     * asyncio the handle may still be cancelled. 0, -ENOMEM, -EINVAL (NaN,
     * no cb). */
    int (*call_soon)(void (*cb)(void *data), void *data, aiod_handle **ret_handle);
    int (*call_later)(double delay, void (*cb)(void *data), void *data, aiod_handle **ret_handle);
    int (*call_at)(double when, void (*cb)(void *data), void *data, aiod_handle **ret_handle);
    /* Handle.cancel(): 1 if the callback had not run yet, else 0. */
    int (*handle_cancel)(aiod_handle *h);
    void (*handle_release)(aiod_handle *h);

    /* ---- file descriptors (loop.add_reader/add_writer). The fd stays the
     * plugin's: stop waiting or watching before closing it. One watch or
     * wait per fd at a time (-EEXIST). Regular files cannot be watched
     * (-EPERM). */
    /* Waits until fd is ready for `events` (AIOD_FD_READ|AIOD_FD_WRITE) or
     * `timeout` passes: the ready bits (> 0, maybe with AIOD_FD_ERROR),
     * -ETIMEDOUT, -ECANCELED, -EBADF, -EEXIST, -EPERM, -EINVAL. */
    int (*wait_fd)(aiod_task *task, int fd, uint32_t events, double timeout);
    /* Calls cb(w, fd, revents, data) on the loop each time the fd is ready
     * for `events` (with AIOD_FD_WEAK: see there), until watch_fd_close.
     * 0, -EBADF, -EEXIST, -EPERM, -ENOMEM. */
    int (*watch_fd)(int fd, uint32_t events,
                    void (*cb)(aiod_fdwatch *w, int fd, uint32_t revents, void *data), void *data,
                    aiod_fdwatch **ret_watch);
    /* New events for the watch (0 pauses it). 0, -EINVAL. */
    int (*watch_fd_update)(aiod_fdwatch *w, uint32_t events);
    /* Stops and frees the watch; accepts NULL. Safe inside its callback. */
    void (*watch_fd_close)(aiod_fdwatch *w);

    /* ---- signals (loop.add_signal_handler): SIGHUP (the daemon reloads
     * too), SIGTERM (the daemon also stops, cancelling tasks as before),
     * SIGUSR1 and SIGUSR2; other numbers give -EINVAL. */
    /* Waits for the signal's next delivery: 0, -ETIMEDOUT, -ECANCELED. */
    int (*wait_signal)(aiod_task *task, int signo, double timeout);
    /* Calls cb(signo, data) on the loop at each delivery until
     * signal_unwatch (which frees w; accepts NULL). */
    int (*signal_watch)(int signo, void (*cb)(int signo, void *data), void *data,
                        aiod_sigwatch **ret_watch);
    void (*signal_unwatch)(aiod_sigwatch *w);

    /* ---- synchronisation (asyncio.Event, Lock, Semaphore,
     * BoundedSemaphore, Condition, Barrier). Objects of the loop, shared by
     * any tasks; freed by sync_free, which must not be called while a task
     * waits on them (-EBUSY). */
    /* kind AIOD_SYNC_*; `value` is a semaphore's initial value (>= 0) or a
     * barrier's parties (> 0), else 0. `lock` is a Condition's lock (a
     * AIOD_SYNC_LOCK; NULL: a new one of its own), else NULL. */
    int (*sync_new)(uint32_t kind, int64_t value, aiod_sync *lock, aiod_sync **ret_sync);
    int (*sync_free)(aiod_sync *s);
    /* Lock, Semaphore, BoundedSemaphore, Condition (its lock): waits to
     * acquire, FIFO. 0, -ECANCELED. */
    int (*sync_acquire)(aiod_task *task, aiod_sync *s);
    /* 0; -EPERM releasing an unlocked lock (RuntimeError); -EOVERFLOW past
     * a bounded semaphore's value (ValueError). */
    int (*sync_release)(aiod_sync *s);
    /* Lock/Condition locked; Semaphore: cannot be acquired at once. */
    int (*sync_locked)(const aiod_sync *s);
    /* Event.set, Event.clear, Event.is_set. */
    int (*sync_set)(aiod_sync *s);
    int (*sync_clear)(aiod_sync *s);
    int (*sync_is_set)(const aiod_sync *s);
    /* Event.wait (0); Condition.wait (the lock must be held: -EPERM;
     * released while waiting, held again on return, also on -ECANCELED);
     * Barrier.wait (the arrival index >= 0; -EPIPE when the barrier is or
     * gets broken: BrokenBarrierError). -ECANCELED. */
    int (*sync_wait)(aiod_task *task, aiod_sync *s);
    /* Condition.wait_for: waits until pred(data) is nonzero (checked first,
     * and after each wake-up). 0, -EPERM, -ECANCELED. */
    int (*sync_wait_for)(aiod_task *task, aiod_sync *s, int (*pred)(void *data), void *data);
    /* Condition.notify(n) (SIZE_MAX: notify_all); the lock must be held.
     * 0, -EPERM. */
    int (*sync_notify)(aiod_sync *s, size_t n);
    /* Barrier.reset() and Barrier.abort(). */
    int (*sync_reset)(aiod_sync *s);
    int (*sync_abort)(aiod_sync *s);
    /* AIOD_COUNT_*; -EINVAL for a count the kind does not have. */
    int64_t (*sync_count)(const aiod_sync *s, uint32_t what);

    /* ---- queues (asyncio.Queue, LifoQueue, PriorityQueue) of values.
     * maxsize <= 0: unbounded. A priority queue gives the lowest
     * `priority` first, FIFO among equal ones (asyncio compares items; C
     * values have no order, hence the key). Other kinds ignore it. */
    int (*queue_new)(uint32_t kind, int64_t maxsize, aiod_queue **ret_queue);
    /* Frees the queue and the values in it; -EBUSY while tasks wait on it. */
    int (*queue_free)(aiod_queue *q);
    /* put: takes `item` (also on failure); waits while full. 0, -ECANCELED,
     * -EPIPE once shut down (QueueShutDown). */
    int (*queue_put)(aiod_task *task, aiod_queue *q, int64_t priority, aiod_value *item);
    /* put_nowait: 0, -EAGAIN when full (QueueFull), -EPIPE. */
    int (*queue_put_nowait)(aiod_queue *q, int64_t priority, aiod_value *item);
    /* get: waits for an item (*ret_item: caller owns). 0, -ECANCELED,
     * -EPIPE once shut down and empty (or shut down immediately). */
    int (*queue_get)(aiod_task *task, aiod_queue *q, aiod_value **ret_item);
    /* get_nowait: 0, -EAGAIN when empty (QueueEmpty), -EPIPE. */
    int (*queue_get_nowait)(aiod_queue *q, aiod_value **ret_item);
    /* task_done: 0, -EINVAL when called more often than items were put
     * (ValueError). */
    int (*queue_task_done)(aiod_queue *q);
    /* join: waits until every item put was marked task_done. 0, -ECANCELED. */
    int (*queue_join)(aiod_task *task, aiod_queue *q);
    /* qsize and maxsize (0: unbounded, for any maxsize <= 0 given: unlike
     * asyncio, which keeps a negative one). */
    size_t (*queue_size)(const aiod_queue *q);
    int64_t (*queue_maxsize)(const aiod_queue *q);
    /* shutdown(immediate): put fails with -EPIPE from now; get fails once
     * empty, or at once with `immediate`, which also drops the items (and
     * counts them done for join). Wakes every waiter. 0. */
    int (*queue_shutdown)(aiod_queue *q, int immediate);
};

#ifdef __cplusplus
}
#endif

#endif /* AIOD_PLUGIN_H */
