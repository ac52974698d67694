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
 * When the task is cancelled, the waiting call returns -ECANCELED at once, and
 * so does every later waiting call of that task; the task may clean up and
 * should then return -ECANCELED, which reports it as cancelled. As in asyncio,
 * a task that swallows the cancellation and returns a result is done.
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
#define AIOD_ABI_MINOR 0

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

struct aiod_api;

/*
 * A task's entry point. `args` holds one value per declared parameter, in
 * order, defaults filled in and types checked (borrowed, valid until the
 * function returns). On success store the result in *ret_result (ownership
 * moves to the daemon; leaving it NULL means null) and return 0. On failure
 * call api->fail() to set the error kind and message and return a negative
 * errno; without fail() the kind is "OSError" and the message strerror().
 */
typedef int (*aiod_task_fn)(aiod_task *task, const struct aiod_api *api,
                            const aiod_value *const *args, aiod_value **ret_result);

/* One declared parameter. */
struct aiod_param {
    /* Name, shown in signatures and error messages. */
    const char *name;
    /* One of AIOD_TYPE_*. */
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
};

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
    /* Suspends the task for `seconds` (>= 0; 0 yields to other ready tasks).
     * 0, -ECANCELED when the task is cancelled meanwhile, -EINVAL. */
    int (*sleep)(aiod_task *task, double seconds);
    /* Creates a child task running `function` ("plugin.function") with
     * `args` (n_args values; all taken, also on failure) and returns its
     * handle. The child starts when the caller next suspends (FIFO, as
     * asyncio.create_task). Its output goes to the caller's output. A child
     * still running when its parent ends is cancelled.
     * 0, -ENOENT unknown function, -EINVAL bad arguments (the message is then
     * the task's pending error: see fail), -EAGAIN task limit, -ENOMEM. */
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
    /* Asks the child to cancel; it ends at its current await point. 0. */
    int (*cancel)(aiod_task *task, aiod_child *child);
    /* Releases the handle. A running child is not stopped by this. */
    void (*child_release)(aiod_task *task, aiod_child *child);
    /* Nonzero once cancellation was requested for the task. */
    int (*cancelled)(const aiod_task *task);
    /* The task's id. */
    uint64_t (*task_id)(const aiod_task *task);
    /* Logs a line to the daemon's log at syslog `priority`, tagged with the
     * task (task may be NULL, e.g. in init). */
    void (*log)(aiod_task *task, int priority, const char *fmt, ...) AIOD_PRINTF(3, 4);
};

#ifdef __cplusplus
}
#endif

#endif /* AIOD_PLUGIN_H */
