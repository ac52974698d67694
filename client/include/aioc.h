/*
 * libaioclient: talk to aiod from C.
 *
 * A blocking API over one Unix-socket connection. Every call sends its
 * request and waits for the reply; while it waits, output lines of followed
 * tasks are handed to the output callback. Many tasks may be in flight on one
 * connection: submit or create them first, then await or gather them.
 *
 * Conventions:
 *  - Functions return 0 (or a count) on success and a negative errno on
 *    failure. Outputs named ret_* are written only on success.
 *  - When the daemon refuses a request, the call returns the errno listed
 *    below for the daemon's error code and aioc_last_error() gives the
 *    daemon's message:
 *      unknown function -ENOENT, bad argument -EINVAL, no such task -ESRCH,
 *      not allowed -EPERM, limit reached -EAGAIN, timed out -ETIMEDOUT,
 *      cancelled -ECANCELED, a gathered task failed -EIO, protocol or
 *      decoding error -EPROTO, unsupported version -EPROTONOSUPPORT,
 *      daemon shutting down -ESHUTDOWN, internal error -EFAULT, the
 *      daemon's state store could not record the request (its disk is
 *      full, or the store failed; nothing was started) -ENOSPC (since
 *      1.5; older libraries give -EFAULT), the cluster (its Redis) is
 *      unreachable or failed the request -EHOSTUNREACH (since 1.6; older
 *      libraries give -EFAULT).
 *  - Transport errors: -ENOENT / -ECONNREFUSED / -EACCES from connect,
 *    -ECONNRESET or -EPIPE when the daemon goes away, -ENOMEM.
 *  - Every function checks its arguments and returns -EINVAL (or NULL)
 *    for bad ones.
 *  - A client handle is not thread safe: use one per thread.
 *  - Timeouts are seconds (a double). Zero or less, infinity, or more than
 *    1e9 (the daemon's largest, about 31 years) mean no limit; NaN is
 *    -EINVAL.
 *
 * This header is plain C99. All symbols are prefixed aioc_ / AIOC_.
 */
#ifndef AIOC_H
#define AIOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define AIOC_EXPORT
#elif defined(__GNUC__)
#define AIOC_EXPORT __attribute__((visibility("default")))
#else
#define AIOC_EXPORT
#endif

/*
 * libaioclient's version: the one place it is written. The build reads
 * these three lines (the shared library's file name and SONAME major,
 * libaioclient.pc, the CMake package aiod's version), so change them here
 * only: the minor number when functions are added, the major number (and
 * so the SONAME) when the ABI breaks.
 */
#define AIOC_VERSION_MAJOR 1
#define AIOC_VERSION_MINOR 6
#define AIOC_VERSION_PATCH 0

#define AIOC_STRINGIFY_(x) #x
#define AIOC_STRINGIFY(x) AIOC_STRINGIFY_(x)
/* "1.6.0", for the compiler; aioc_version() gives the library's at run time. */
#define AIOC_VERSION_STRING                                                                        \
    AIOC_STRINGIFY(AIOC_VERSION_MAJOR)                                                             \
    "." AIOC_STRINGIFY(AIOC_VERSION_MINOR) "." AIOC_STRINGIFY(AIOC_VERSION_PATCH)

/* The version of the libaioclient the program runs with ("1.3.0"), which
 * may be newer than the header it was built with. A static string. Added
 * in libaioclient 1.3. */
AIOC_EXPORT const char *aioc_version(void);

/* ------------------------------------------------------------------ values */

/* Type codes (uint32_t): the same numbers as AIOD_TYPE_* and the protocol. */
#define AIOC_TYPE_ANY 0u
#define AIOC_TYPE_NULL 1u
#define AIOC_TYPE_BOOL 2u
#define AIOC_TYPE_INT 3u
#define AIOC_TYPE_DOUBLE 4u
#define AIOC_TYPE_STRING 5u
#define AIOC_TYPE_BYTES 6u
#define AIOC_TYPE_LIST 7u
#define AIOC_TYPE_MAP 8u

/* A typed value (opaque). */
typedef struct aioc_value aioc_value;

/* Constructors return a new value that the caller owns (free it with
 * aioc_value_free or hand it to a function that takes it), or NULL on
 * out-of-memory. aioc_value_string returns NULL also for invalid UTF-8. */
AIOC_EXPORT aioc_value *aioc_value_null(void);
AIOC_EXPORT aioc_value *aioc_value_bool(int b);
AIOC_EXPORT aioc_value *aioc_value_int(int64_t i);
AIOC_EXPORT aioc_value *aioc_value_double(double d);
AIOC_EXPORT aioc_value *aioc_value_string(const char *s);
AIOC_EXPORT aioc_value *aioc_value_bytes(const void *data, size_t len);
AIOC_EXPORT aioc_value *aioc_value_list(void);
AIOC_EXPORT aioc_value *aioc_value_map(void);
/* Takes `item` (also on failure). 0, -EINVAL (also for an item that would
 * make the list deeper than 32 levels, a scalar being 1), -ENOMEM. */
AIOC_EXPORT int aioc_value_list_append(aioc_value *list, aioc_value *item);
/* Takes `item` (also on failure); replaces an existing key. 0, -EINVAL (also
 * for an item that would make the map deeper than 32 levels), -ENOMEM. */
AIOC_EXPORT int aioc_value_map_set(aioc_value *map, const char *key, aioc_value *item);
/* Deep copy, or NULL on out-of-memory. */
AIOC_EXPORT aioc_value *aioc_value_copy(const aioc_value *v);
/* Accepts NULL. */
AIOC_EXPORT void aioc_value_free(aioc_value *v);

/* AIOC_TYPE_* (never AIOC_TYPE_ANY). */
AIOC_EXPORT uint32_t aioc_value_type(const aioc_value *v);
/* Accessors return 0 / NULL for a value of another type. get_double also
 * converts an int. Returned pointers are borrowed from `v`. */
AIOC_EXPORT int aioc_value_get_bool(const aioc_value *v);
AIOC_EXPORT int64_t aioc_value_get_int(const aioc_value *v);
AIOC_EXPORT double aioc_value_get_double(const aioc_value *v);
AIOC_EXPORT const char *aioc_value_get_string(const aioc_value *v);
AIOC_EXPORT const void *aioc_value_get_bytes(const aioc_value *v, size_t *ret_len);
/* Number of items of a list or entries of a map; 0 otherwise. */
AIOC_EXPORT size_t aioc_value_length(const aioc_value *v);
/* Borrowed; NULL when out of range or not a list. */
AIOC_EXPORT const aioc_value *aioc_value_list_get(const aioc_value *v, size_t i);
/* Borrowed; NULL when absent or not a map. */
AIOC_EXPORT const aioc_value *aioc_value_map_get(const aioc_value *v, const char *key);
/* Key of the i-th map entry (insertion order); borrowed; NULL out of range. */
AIOC_EXPORT const char *aioc_value_map_key(const aioc_value *v, size_t i);
/* Compact JSON text (bytes as {"$bytes":"<base64>"}). Returns a new string
 * the caller frees with free(), or NULL on out-of-memory. */
AIOC_EXPORT char *aioc_value_to_json(const aioc_value *v);
/* Parses one JSON value. 0, -EINVAL (not JSON), -ENOMEM. *ret is new. */
AIOC_EXPORT int aioc_value_from_json(const char *json, aioc_value **ret);

/* ------------------------------------------------------------------ calls */

/* A function call to send: a function name and its arguments (opaque). */
typedef struct aioc_call aioc_call;

/* A new call of `function` ("plugin.function"), or NULL on OOM/NULL name. */
AIOC_EXPORT aioc_call *aioc_call_new(const char *function);
/* A gather item that stands for an existing task instead of a new call. */
AIOC_EXPORT aioc_call *aioc_call_task(uint64_t task_id);
/* Appends a typed argument; takes `arg` (also on failure). 0, -EINVAL (also
 * for a value nested deeper than 32 levels), -ENOMEM. */
AIOC_EXPORT int aioc_call_arg(aioc_call *call, aioc_value *arg);
/* Appends a text argument that the daemon converts to the declared type of
 * the parameter, as aioctl does with its words. A call's arguments are
 * either all typed or all text: mixing returns -EINVAL. */
AIOC_EXPORT int aioc_call_arg_text(aioc_call *call, const char *text);
/* Accepts NULL. */
AIOC_EXPORT void aioc_call_free(aioc_call *call);

/* ------------------------------------------------------------------ outcomes */

#define AIOC_STATE_PENDING 1
#define AIOC_STATE_RUNNING 2
#define AIOC_STATE_DONE 3
#define AIOC_STATE_FAILED 4
#define AIOC_STATE_CANCELLED 5

/* How a task ended (opaque). */
typedef struct aioc_outcome aioc_outcome;

AIOC_EXPORT uint64_t aioc_outcome_task_id(const aioc_outcome *o);
/* AIOC_STATE_*. */
AIOC_EXPORT int aioc_outcome_state(const aioc_outcome *o);
/* The result when the state is DONE (borrowed), else NULL. */
AIOC_EXPORT const aioc_value *aioc_outcome_result(const aioc_outcome *o);
/* Error kind ("ValueError", "CancelledError", ...) and message when FAILED
 * or CANCELLED (borrowed), else "". */
AIOC_EXPORT const char *aioc_outcome_error_kind(const aioc_outcome *o);
AIOC_EXPORT const char *aioc_outcome_error_message(const aioc_outcome *o);
/* How many of the task's output lines the request that followed it did
 * not get: lines that left the daemon's output buffer of the task before
 * they could be sent (the program read them too slowly), counted by the
 * daemon in the task's OutputEnd event. The lines the output callback got
 * plus this number are all the lines the task printed. Set on the outcomes
 * of a followed run or gather (aioc_run, aioc_gather with
 * AIOC_GATHER_FOLLOW, aioc_start_run, aioc_start_gather), also on the
 * failed outcome of a gather; 0 when none were dropped, for a task that
 * was not followed (one named by aioc_call_task, an await), and for an
 * outcome from a task info. 0 for NULL. Added in libaioclient 1.4. */
AIOC_EXPORT uint64_t aioc_outcome_output_dropped(const aioc_outcome *o);
/* Accepts NULL. */
AIOC_EXPORT void aioc_outcome_free(aioc_outcome *o);
/* "pending", "running", "done", "failed", "cancelled" or "unknown". */
AIOC_EXPORT const char *aioc_state_name(int state);

/* ------------------------------------------------------------------ client */

typedef struct aioc_client aioc_client;

/* Called for every output line of a followed task: `stream` is 1 for the
 * task's own lines, 2 for a child process's stderr. `line` is borrowed. */
typedef void (*aioc_output_cb)(uint64_t task_id, int stream, const char *line, void *userdata);

/*
 * Writes the socket path the client uses by default into buf: $AIOD_SOCKET,
 * else the caller's own instance, $XDG_RUNTIME_DIR/aiod/aiod.sock, when that
 * socket exists, else the system instance's /run/aiod/aiod.sock.
 * 0, -EINVAL (buf NULL or len 0), -ENAMETOOLONG (buf too small).
 */
AIOC_EXPORT int aioc_default_socket_path(char *buf, size_t len);

/* Connects to `socket_path` (NULL: the default) and says hello. *ret is a
 * new client; close it with aioc_close. 0 or a negative errno (see top).
 * The connect and the hello together may take at most
 * $AIOC_CONNECT_TIMEOUT seconds (a decimal number; 0 or less: no limit),
 * 30 s when it is unset or not a number: then -ETIMEDOUT (since 1.3;
 * before, it waited forever). */
AIOC_EXPORT int aioc_connect(const char *socket_path, aioc_client **ret);
/* As aioc_connect, but when the daemon refuses the connection (a connection
 * limit, an unsupported version) its message is copied into `err` (err_len
 * bytes, NUL-terminated; "" for transport errors such as -ENOENT). `err`
 * may be NULL. Added in 0.1.0 (libaioclient 1.1). */
AIOC_EXPORT int aioc_connect_ex(const char *socket_path, aioc_client **ret, char *err,
                                size_t err_len);
/* As aioc_connect_ex with an explicit limit: the connect and the hello
 * together may take at most `timeout` seconds (<= 0: no limit; NaN is
 * -EINVAL), -ETIMEDOUT after. On any failure `err` (may be NULL) gets a
 * message: the daemon's when it refused, else one naming the socket and
 * what went wrong ("aiod at PATH did not answer within 5 s"). Added in
 * libaioclient 1.3. */
AIOC_EXPORT int aioc_connect_timeout(const char *socket_path, double timeout, aioc_client **ret,
                                     char *err, size_t err_len);
/* Closes the connection; the daemon cancels the attached tasks it created.
 * Accepts NULL. From inside one of c's callbacks, the connection ends at
 * once and c is freed when the library call that ran the callback returns
 * (aioc_process() returns -ECONNABORTED). c must not be used after. */
AIOC_EXPORT void aioc_close(aioc_client *c);
/* 0 while the connection is usable, -EINPROGRESS while the hello of
 * aioc_connect_start is in flight, or the negative errno the connection
 * died with (never -EBUSY); -EINVAL for NULL. Added in libaioclient 1.3. */
AIOC_EXPORT int aioc_connection_error(const aioc_client *c);
/* The file descriptor of the connection (for poll); owned by the client. */
AIOC_EXPORT int aioc_fd(const aioc_client *c);
/* The daemon's message for the last refused request ("" if none); borrowed,
 * valid until the next call on the client. */
AIOC_EXPORT const char *aioc_last_error(const aioc_client *c);
/* The daemon's version string from the hello reply (borrowed). */
AIOC_EXPORT const char *aioc_server_version(const aioc_client *c);
/* Installs the output callback (NULL to remove). */
AIOC_EXPORT void aioc_set_output_callback(aioc_client *c, aioc_output_cb cb, void *userdata);
/* Installs a callback (NULL to remove) that a blocking call makes each time
 * it is about to wait for the daemon, having handled everything that had
 * arrived: the place to flush output written by the output callback, rather
 * than after every line. It must not call the library: such calls return
 * -EBUSY (earlier builds did not refuse them, and one could take the reply
 * the waiting call was for). Added in libaioclient 1.4. */
AIOC_EXPORT void aioc_set_idle_callback(aioc_client *c, void (*cb)(void *userdata), void *userdata);

/*
 * asyncio.run: runs `call` as a task attached to this connection and waits
 * for it, streaming its output to the output callback. timeout <= 0 waits
 * forever; on timeout the task is cancelled and -ETIMEDOUT returned. When the
 * task ended (done, failed or cancelled) returns 0 and *ret_outcome gets a
 * new outcome the caller frees.
 */
AIOC_EXPORT int aioc_run(aioc_client *c, const aioc_call *call, double timeout,
                         aioc_outcome **ret_outcome);

/* asyncio.create_task for this connection: the task is attached (cancelled
 * when the connection closes). *ret_id gets its id. */
AIOC_EXPORT int aioc_create_task(aioc_client *c, const aioc_call *call, uint64_t *ret_id);
/* Creates a task that outlives the connection and keeps its result for later
 * awaits. *ret_id gets its id. */
AIOC_EXPORT int aioc_submit(aioc_client *c, const aioc_call *call, uint64_t *ret_id);
/* Fire and forget: the task outlives the connection, its result is only
 * logged. *ret_id gets its id. */
AIOC_EXPORT int aioc_detach(aioc_client *c, const aioc_call *call, uint64_t *ret_id);

/*
 * Schedules (added in libaioclient 1.5): when and how often a task runs,
 * given to aioc_submit_ex or aioc_start_submit_ex. Like asyncio's
 * call_later / call_at for a whole task, Celery's retries with backoff and
 * pueue's --after:
 *
 *  - retries: after a failed attempt (not after a cancel) the daemon starts
 *    the task again, up to `retries` more times. Before the first retry it
 *    waits up to `backoff` seconds, before each later one twice as long as
 *    before, at most `backoff_max` seconds, each wait drawn at random
 *    between 0 and that bound (full jitter). Every ended attempt's error is
 *    kept (aioc_task_info_attempt_record).
 *  - delay: seconds from the submit until the first attempt may start.
 *  - at: wall-clock microseconds since the Unix epoch before which the first
 *    attempt does not start (with a delay too: the later of both).
 *  - after: tasks that must end done before this one starts; if one fails
 *    or is cancelled, this one ends failed with error kind
 *    "DependencyFailed". Each must exist at the submit (unfinished, or its
 *    outcome still retained), else the submit fails with -ESRCH.
 *
 * A SUBMITTED or DETACHED task is durable, schedule or not (unless the
 * daemon runs with durability = none): the daemon keeps it in its state
 * store before it answers, so the task, its schedule, attempts and retries
 * survive a restart, crash or kill of the daemon. An ATTACHED one is cancelled with its connection,
 * as any attached task. A daemon older than the schedules ignores them
 * (the task runs at once, once).
 *
 * A schedule (opaque) is the caller's: the submit functions only read it
 * during the call, so one schedule may serve many submits and be freed
 * right after.
 */
typedef struct aioc_schedule aioc_schedule;

/* The most retries a schedule may ask for. */
#define AIOC_SCHEDULE_MAX_RETRIES 1000u
/* The longest delay, backoff or backoff_max (about 31 years), as the daemon
 * bounds every time it is given; more is -EINVAL. */
#define AIOC_SCHEDULE_MAX_SECONDS 1e9
/* The most tasks a schedule may run after. */
#define AIOC_SCHEDULE_MAX_AFTER 256u

/* A new schedule that asks for nothing (at once, one attempt); *ret is the
 * caller's (free with aioc_schedule_free). 0, -EINVAL (ret NULL), -ENOMEM. */
AIOC_EXPORT int aioc_schedule_new(aioc_schedule **ret);
/* Accepts NULL. */
AIOC_EXPORT void aioc_schedule_free(aioc_schedule *s);
/* Up to `retries` more attempts after failed ones, the first retry after
 * up to `backoff` seconds (0: the daemon's default of 1 s), no wait longer
 * than `backoff_max` seconds (0: 600 s). Replaces earlier values. 0,
 * -EINVAL (NULL s, retries above AIOC_SCHEDULE_MAX_RETRIES, a time that is
 * negative, NaN or infinite; nothing is changed then). */
AIOC_EXPORT int aioc_schedule_set_retries(aioc_schedule *s, unsigned retries, double backoff,
                                          double backoff_max);
/* The first attempt starts `delay` seconds after the submit at the
 * earliest (0: none). 0, -EINVAL (NULL s, negative, NaN or infinite). */
AIOC_EXPORT int aioc_schedule_set_delay(aioc_schedule *s, double delay);
/* The first attempt starts at `at_usec` (wall-clock microseconds since the
 * Unix epoch) at the earliest; 0 means no such time, one in the past means
 * at once. 0, -EINVAL (NULL s). */
AIOC_EXPORT int aioc_schedule_set_at(aioc_schedule *s, uint64_t at_usec);
/* Adds n tasks this one runs after. `ids` is copied (it may be freed after
 * the call; NULL when n is 0). 0, -EINVAL (NULL s, an id of 0), -E2BIG
 * (more than AIOC_SCHEDULE_MAX_AFTER in all; nothing is added then),
 * -ENOMEM. */
AIOC_EXPORT int aioc_schedule_add_after(aioc_schedule *s, const uint64_t *ids, size_t n);

/*
 * Creates a task with a schedule (NULL: none, as aioc_submit and its
 * siblings) and returns once the daemon has accepted it, with its id in
 * *ret_id. `flags`: one ownership, AIOC_SUBMIT_ATTACHED (as
 * aioc_create_task), AIOC_SUBMIT_SUBMITTED (as aioc_submit) or
 * AIOC_SUBMIT_DETACHED (as aioc_detach); not AIOC_SUBMIT_FOLLOW, which
 * only aioc_start_submit_ex takes. `sched` and `call` are borrowed for the
 * call only. 0, -EINVAL (NULL c, call or ret_id, a task item as call, a
 * bad flag, or the daemon refused the schedule or an argument: see
 * aioc_last_error), -ESRCH (a task of `after` is unknown), -ENOENT (no
 * such function), -EPERM, -EAGAIN (a limit), -ENOSPC (the daemon could not
 * store the task), -ESHUTDOWN, -EMSGSIZE, transport errors. Added in
 * libaioclient 1.5.
 */
AIOC_EXPORT int aioc_submit_ex(aioc_client *c, const aioc_call *call, unsigned flags,
                               const aioc_schedule *sched, uint64_t *ret_id);

/*
 * Cluster queues (added in libaioclient 1.6). Daemons that share one Redis
 * form a cluster (docs/cluster.md); a task submitted to one of its queues
 * runs on whichever host works that queue and has the function, not
 * necessarily the one the client is connected to. Such a task's id is
 * cluster-wide, at least AIOC_CLUSTER_ID_BASE (2^48), and any host of the
 * cluster resolves it: aioc_await, aioc_show, aioc_cancel and aioc_logs
 * (and their aioc_start_* forms) take cluster ids as they take local ones,
 * though one await or cancel may not mix the two (-EINVAL). The listing
 * (aioc_list and its kin) shows local tasks only.
 */
#define AIOC_CLUSTER_ID_BASE (UINT64_C(1) << 48)
/* A queue name is 1 to AIOC_QUEUE_NAME_MAX bytes, each one of
 * AIOC_QUEUE_NAME_CHARS ([A-Za-z0-9_.-]): a program can check a name before
 * it connects (strspn(name, AIOC_QUEUE_NAME_CHARS) == strlen(name)). */
#define AIOC_QUEUE_NAME_MAX 64
#define AIOC_QUEUE_NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"

/* True when `id` is a cluster task's id (at least AIOC_CLUSTER_ID_BASE),
 * false for a local one (and for 0). Added in libaioclient 1.6. */
AIOC_EXPORT bool aioc_is_cluster_id(uint64_t id);

/*
 * Submits `call` to the cluster queue `queue` and returns once the cluster
 * holds it (its Redis has the entry, and as many replicas as the daemon's
 * cluster_replicas), with its cluster id in *ret_id. `flags`: one
 * ownership, AIOC_SUBMIT_SUBMITTED (the result is kept for a later await;
 * also what 0 means here, as a queued task is never attached: it outlives
 * the connection by nature) or AIOC_SUBMIT_DETACHED (fire and forget); not
 * AIOC_SUBMIT_FOLLOW (follow it with aioc_logs). A queued task takes no
 * schedule. `queue` and `call` are borrowed for the call only.
 *
 * Errors: -EINVAL (NULL c, call or ret_id, a task item as call, a bad flag,
 * a queue name that is not 1-64 of [A-Za-z0-9_.-]: all before anything is
 * sent; or the daemon refused an argument or is not part of a cluster: see
 * aioc_last_error), -ENOENT (no host of the cluster serves the function on
 * that queue), -EHOSTUNREACH (the cluster's Redis is unreachable or failed:
 * as a rule nothing was queued, but with cluster_replicas a task the replicas
 * did not confirm in time is queued, and aioc_last_error names its id, and a
 * reply lost with the connection to Redis leaves it unknown; so look before
 * submitting again), -EPERM, -EAGAIN (a limit), -ESHUTDOWN, -EMSGSIZE,
 * transport errors. A daemon older than the cluster ignores the queue and
 * runs the task itself (its id is then below AIOC_CLUSTER_ID_BASE).
 * Added in libaioclient 1.6.
 */
AIOC_EXPORT int aioc_submit_queue(aioc_client *c, const char *queue, const aioc_call *call,
                                  unsigned flags, uint64_t *ret_id);

/* The most task ids (aioc_await, aioc_cancel, their aioc_start_ forms) or
 * calls (aioc_gather) one request may carry; more is -EINVAL. */
#define AIOC_MAX_BATCH 100000u

/*
 * Waits for n tasks. timeout <= 0 waits forever; on timeout returns
 * -ETIMEDOUT and the tasks keep running. On success ret_outcomes (an array of
 * n pointers supplied by the caller) is filled with new outcomes, in order.
 * The ids may be cluster ids (all of them or none): then -EHOSTUNREACH when
 * the cluster's Redis is unreachable (since 1.6), -EINVAL when they mix
 * cluster and local ids or the daemon is not part of a cluster.
 */
AIOC_EXPORT int aioc_await(aioc_client *c, const uint64_t *ids, size_t n, double timeout,
                           aioc_outcome **ret_outcomes);

#define AIOC_GATHER_RETURN_EXCEPTIONS 0x1u
/* Stream the output of the gathered calls to the output callback. */
#define AIOC_GATHER_FOLLOW 0x2u

/*
 * asyncio.gather over n items (new calls, or existing tasks made with
 * aioc_call_task), run concurrently as attached tasks. On success fills
 * ret_outcomes (caller's array of n pointers) in argument order. Without
 * AIOC_GATHER_RETURN_EXCEPTIONS the first failure returns -EIO at once (the
 * other tasks keep running) and, if ret_failed is not NULL, *ret_failed gets
 * the failed task's outcome. timeout <= 0 waits forever; on timeout the
 * unfinished tasks are cancelled and -ETIMEDOUT returned.
 */
AIOC_EXPORT int aioc_gather(aioc_client *c, const aioc_call *const *items, size_t n, unsigned flags,
                            double timeout, aioc_outcome **ret_outcomes, aioc_outcome **ret_failed);

/* Asks tasks to cancel. Returns how many were still unfinished (>= 0).
 * A durable task that had not started is cancelled in the daemon's state
 * store before this returns; -ENOSPC if the store could not record it
 * (cancelled all the same). Cluster ids as for aioc_await: all or none,
 * -EHOSTUNREACH when the cluster's Redis is unreachable (since 1.6). */
AIOC_EXPORT int aioc_cancel(aioc_client *c, const uint64_t *ids, size_t n);

/* ------------------------------------------------------------------ inspection */

/* One task as `ps` and `show` see it (opaque). */
typedef struct aioc_task_info aioc_task_info;

AIOC_EXPORT uint64_t aioc_task_info_id(const aioc_task_info *t);
AIOC_EXPORT int aioc_task_info_state(const aioc_task_info *t);
/* Borrowed. */
AIOC_EXPORT const char *aioc_task_info_function(const aioc_task_info *t);
/* "attached", "submitted" or "detached". */
AIOC_EXPORT const char *aioc_task_info_ownership(const aioc_task_info *t);
AIOC_EXPORT uint32_t aioc_task_info_owner_uid(const aioc_task_info *t);
AIOC_EXPORT int32_t aioc_task_info_owner_pid(const aioc_task_info *t);
/* Microseconds since the Unix epoch, 0 when not yet. */
AIOC_EXPORT uint64_t aioc_task_info_created_usec(const aioc_task_info *t);
AIOC_EXPORT uint64_t aioc_task_info_started_usec(const aioc_task_info *t);
AIOC_EXPORT uint64_t aioc_task_info_finished_usec(const aioc_task_info *t);
/* The parent task inside the daemon, or 0. */
AIOC_EXPORT uint64_t aioc_task_info_parent_id(const aioc_task_info *t);
/* The arguments (only from aioc_show): a list value, borrowed, or NULL. */
AIOC_EXPORT const aioc_value *aioc_task_info_args(const aioc_task_info *t);
/* The outcome once finished (borrowed), else NULL. */
AIOC_EXPORT const aioc_outcome *aioc_task_info_outcome(const aioc_task_info *t);
/* Lines the task printed, and how many of the oldest of them the daemon no
 * longer keeps (over max_output_lines; added in libaioclient 1.2). */
AIOC_EXPORT uint64_t aioc_task_info_output_lines(const aioc_task_info *t);
AIOC_EXPORT uint64_t aioc_task_info_output_dropped(const aioc_task_info *t);
/* While a pending task waits for a concurrency limit, that limit's name
 * ("function demo.sleep", "group net"), borrowed; else NULL. */
AIOC_EXPORT const char *aioc_task_info_waiting_for(const aioc_task_info *t);
/* The call as one line, as `aioctl ps` shows it: the function and its
 * arguments, cut to at most 120 bytes (ending in "…" when cut), borrowed;
 * NULL when the daemon sent none (older daemons). Added in libaioclient 1.3. */
AIOC_EXPORT const char *aioc_task_info_call_text(const aioc_task_info *t);
/* Attempts started so far (0 while the first has not started), and how
 * many the task may take (its retries + 1; 0 from a daemon older than the
 * schedules). Added in libaioclient 1.5. */
AIOC_EXPORT uint32_t aioc_task_info_attempt(const aioc_task_info *t);
AIOC_EXPORT uint32_t aioc_task_info_max_attempts(const aioc_task_info *t);
/* While a pending task waits for a time (its delay, its start time or its
 * next retry): when it may start, in wall-clock microseconds since the
 * epoch; else 0. Added in libaioclient 1.5. */
AIOC_EXPORT uint64_t aioc_task_info_next_run_usec(const aioc_task_info *t);
/* The tasks it runs after (its schedule's), borrowed from t; *ret_n gets
 * their number (NULL is returned when there are none). NULL for NULL
 * arguments. Added in libaioclient 1.5. */
AIOC_EXPORT const uint64_t *aioc_task_info_after(const aioc_task_info *t, size_t *ret_n);
/* Only from aioc_show: how many attempts ended (and were recorded), oldest
 * first; 0 for NULL and for list entries. Added in libaioclient 1.5. */
AIOC_EXPORT size_t aioc_task_info_n_attempt_records(const aioc_task_info *t);
/* The i-th ended attempt: its number (1 for the first), when it started and
 * ended (microseconds since the epoch) and its error kind and message ("" if
 * none; borrowed from t). Each ret_ may be NULL. 0, -EINVAL (t NULL),
 * -ERANGE (i not below aioc_task_info_n_attempt_records). Added in
 * libaioclient 1.5. */
AIOC_EXPORT int aioc_task_info_attempt_record(const aioc_task_info *t, size_t i,
                                              uint32_t *ret_number, uint64_t *ret_started_usec,
                                              uint64_t *ret_finished_usec,
                                              const char **ret_error_kind,
                                              const char **ret_error_message);
/* A cluster task's queue, the host that runs or ran it (NULL while it is
 * still queued), and the host it was submitted on, as the hosts of the
 * cluster name themselves (cluster_host); borrowed from t. NULL for a
 * local task, from a daemon older than the cluster, and for NULL. Added in
 * libaioclient 1.6. */
AIOC_EXPORT const char *aioc_task_info_queue(const aioc_task_info *t);
AIOC_EXPORT const char *aioc_task_info_host(const aioc_task_info *t);
AIOC_EXPORT const char *aioc_task_info_owner_host(const aioc_task_info *t);
/* Accepts NULL. */
AIOC_EXPORT void aioc_task_info_free(aioc_task_info *t);
/* Frees an array from aioc_list and its elements. Accepts NULL. */
AIOC_EXPORT void aioc_task_info_array_free(aioc_task_info **a, size_t n);

#define AIOC_LIST_ALL 0x1u
/* Lists every task the caller may see (its own; root and the daemon's
 * admin group see all), in id order (AIOC_LIST_ALL: also retained finished
 * ones). *ret_tasks gets a new array of *ret_n new infos (free with
 * aioc_task_info_array_free; an empty list is a new array too). Since
 * libaioclient 1.4 it asks page after page (aioc_list_page) until the
 * daemon has no more, so it returns every task however many there are:
 * for very many, aioc_list_page keeps memory bounded. 0, -EINVAL (NULL
 * argument, unknown flag), -ENOMEM, -EPROTO, transport errors. */
AIOC_EXPORT int aioc_list(aioc_client *c, unsigned flags, aioc_task_info ***ret_tasks,
                          size_t *ret_n);

/*
 * Paged listing with filters (added in libaioclient 1.4). A query (opaque)
 * says which tasks: all filters must match; within one filter, any entry.
 * Build it once, then call aioc_list_page with a cursor until it returns
 * 0, or aioc_list_all:
 *
 *     aioc_list_query *q;
 *     uint64_t cursor = 0;
 *     int more;
 *     aioc_list_query_new(0, &q);
 *     aioc_list_query_add_state(q, AIOC_STATE_RUNNING);
 *     do {
 *         aioc_task_info **tasks;
 *         size_t n;
 *         more = aioc_list_page(c, q, &cursor, 0, &tasks, &n);
 *         if (more < 0)
 *             break;               (an error: more is its negative errno)
 *         ... use tasks[0..n-1] ...
 *         aioc_task_info_array_free(tasks, n);
 *     } while (more);
 *     aioc_list_query_free(q);
 *
 * The library applies the filters to each page itself as well, so that an
 * older daemon, which ignores the filters and the paging fields and sends
 * every task in one page, gives the same answer, only at its old cost. A
 * daemon takes at most 256 entries in each filter (more: -EAGAIN with its
 * message in aioc_last_error).
 */
typedef struct aioc_list_query aioc_list_query;

/* A new query; *ret is the caller's (free with aioc_list_query_free).
 * flags: AIOC_LIST_ALL also lists finished tasks the daemon still keeps;
 * it does not matter once a state is added (then exactly those states are
 * listed). 0, -EINVAL (ret NULL, unknown flag), -ENOMEM. */
AIOC_EXPORT int aioc_list_query_new(unsigned flags, aioc_list_query **ret);
/* Only tasks in one of the added states (AIOC_STATE_*; naming a finished
 * state lists finished tasks without AIOC_LIST_ALL). Adding a state twice
 * is the same as once. 0, -EINVAL (NULL query, not a state). */
AIOC_EXPORT int aioc_list_query_add_state(aioc_list_query *q, int state);
/* Only tasks of one of the added functions: "plugin.function" exactly, or
 * "plugin." for every function of that plugin. `name` is copied. 0,
 * -EINVAL (NULL, no '.' after a first character, a blank or control
 * character, invalid UTF-8), -ENOMEM. */
AIOC_EXPORT int aioc_list_query_add_function(aioc_list_query *q, const char *name);
/* Only tasks owned by one of the added uids. 0, -EINVAL (NULL query),
 * -ENOMEM. */
AIOC_EXPORT int aioc_list_query_add_owner(aioc_list_query *q, uint32_t uid);
/* Accepts NULL. */
AIOC_EXPORT void aioc_list_query_free(aioc_list_query *q);

/*
 * One page of the tasks that match `q` (NULL: no filter, unfinished tasks
 * only), in id order, with ids above *cursor (0 at the start). At most
 * `limit` tasks (0, or more than the daemon's page size of 10000: one
 * page, up to 10000). A page may hold fewer tasks than asked, even none,
 * while more follow: the daemon looks at a bounded number of tasks per
 * request. On success *ret_tasks gets a new array of *ret_n new infos (the
 * caller frees it with aioc_task_info_array_free, also when *ret_n is 0),
 * *cursor is moved on, and it returns 1 when more tasks may follow (call
 * again, passing the cursor as it now is) or 0 when the listing is
 * complete. On
 * failure nothing is written, *cursor included, so the call may be
 * repeated. Errors: -EINVAL (c, cursor, ret_tasks or ret_n NULL), -EAGAIN
 * (a filter over the daemon's limit), -ENOMEM, -EPROTO (the daemon said
 * more would follow but did not move the cursor on), transport errors.
 * `q` is borrowed for the call only.
 */
AIOC_EXPORT int aioc_list_page(aioc_client *c, const aioc_list_query *q, uint64_t *cursor,
                               size_t limit, aioc_task_info ***ret_tasks, size_t *ret_n);
/* Every task that matches `q` (NULL: as aioc_list without flags), page
 * after page, in one new array as aioc_list gives it. The errors of
 * aioc_list_page; nothing is written on failure. */
AIOC_EXPORT int aioc_list_all(aioc_client *c, const aioc_list_query *q, aioc_task_info ***ret_tasks,
                              size_t *ret_n);
/* One task in detail. -ESRCH if unknown; for a cluster id, -EHOSTUNREACH
 * when the cluster's Redis is unreachable (since 1.6) and -EINVAL when the
 * daemon is not part of a cluster. */
AIOC_EXPORT int aioc_show(aioc_client *c, uint64_t id, aioc_task_info **ret_task);

#define AIOC_LOGS_FOLLOW 0x1u
/* Delivers the task's retained output to the output callback; with
 * AIOC_LOGS_FOLLOW keeps delivering until the task ends. Returns the task's
 * state (AIOC_STATE_*) at the end, or a negative errno: -ESRCH (unknown
 * task), for a cluster id -EHOSTUNREACH (the cluster's Redis is
 * unreachable; since 1.6) or -EINVAL (the daemon is not part of a
 * cluster), ... */
AIOC_EXPORT int aioc_logs(aioc_client *c, uint64_t id, unsigned flags);
/* As aioc_logs; on success also *ret_dropped (may be NULL) gets how many of
 * the task's lines this request did not get: lines no longer kept when it
 * started (over the daemon's max_output_lines), and with AIOC_LOGS_FOLLOW
 * lines that left the buffer before they could be sent (the program read
 * too slowly). The lines delivered plus this are all the task printed
 * (a daemon older than this rule counted differently). Added in
 * libaioclient 1.4. */
AIOC_EXPORT int aioc_logs_ex(aioc_client *c, uint64_t id, unsigned flags, uint64_t *ret_dropped);

/* A callable function (opaque). */
typedef struct aioc_function_info aioc_function_info;

/* "plugin.function" (borrowed). */
AIOC_EXPORT const char *aioc_function_name(const aioc_function_info *f);
AIOC_EXPORT const char *aioc_function_doc(const aioc_function_info *f);
/* A signature such as "(seconds: double, result: any = null) -> any"
 * (borrowed, built on first use; NULL on OOM). */
AIOC_EXPORT const char *aioc_function_signature(aioc_function_info *f);
AIOC_EXPORT size_t aioc_function_n_params(const aioc_function_info *f);
AIOC_EXPORT const char *aioc_function_param_name(const aioc_function_info *f, size_t i);
AIOC_EXPORT uint32_t aioc_function_param_type(const aioc_function_info *f, size_t i);
/* The default (borrowed) or NULL when the parameter is required. */
AIOC_EXPORT const aioc_value *aioc_function_param_default(const aioc_function_info *f, size_t i);
AIOC_EXPORT uint32_t aioc_function_result_type(const aioc_function_info *f);
/* Frees an array from aioc_plugins and its elements. Accepts NULL. */
AIOC_EXPORT void aioc_function_array_free(aioc_function_info **a, size_t n);

/* Lists callable functions. *ret_functions gets a new array of *ret_n. */
AIOC_EXPORT int aioc_plugins(aioc_client *c, aioc_function_info ***ret_functions, size_t *ret_n);

/* "null", "bool", "int", ... ("any" for AIOC_TYPE_ANY). */
AIOC_EXPORT const char *aioc_type_name(uint32_t type);

/*
 * Asks the daemon to reload (as SIGHUP does): re-read its settings file and
 * plugin directories; new plugins load, changed ones load as a new
 * generation while running tasks finish on the old code. Only root and the
 * daemon's own user may (-EPERM otherwise); a bad settings file gives
 * -EINVAL with the file and line in aioc_last_error() and changes nothing.
 * On success fills up to `n` counts (indexes AIOC_RELOAD_*; entries this
 * library does not know are 0) and returns 0. Added in 0.1.
 */
#define AIOC_RELOAD_ADDED 0     /* plugin files loaded for the first time */
#define AIOC_RELOAD_REPLACED 1  /* changed files loaded as a new generation */
#define AIOC_RELOAD_REMOVED 2   /* plugins retired because their file is gone */
#define AIOC_RELOAD_UNCHANGED 3 /* loaded plugins whose file did not change */
#define AIOC_RELOAD_FAILED 4    /* files refused (the daemon's log says why) */
#define AIOC_RELOAD_PLUGINS 5   /* plugins loaded after the reload */
#define AIOC_RELOAD_RETIRED 6   /* old generations still kept */
#define AIOC_RELOAD_N 7
AIOC_EXPORT int aioc_reload(aioc_client *c, uint32_t *ret_counts, size_t n);

/* ------------------------------------------------------------------ non-blocking use */

/*
 * For programs that run their own event loop (poll, epoll, libuv, ...).
 * Added in 1.1.
 *
 * aioc_start_*() build a request, queue it and return at once with a request
 * handle; nothing is read. The program waits until aioc_fd() is ready for
 * the events aioc_events() names, then calls aioc_process(), which writes
 * and reads what it can without blocking, hands output lines to the output
 * callbacks and runs the completion callback of every request that ended.
 * Many requests may be in flight at once on one connection (pipelining);
 * they complete in the order the daemon answers them, not in the order they
 * were started. See aioc_process(3) and docs/libaioclient.md.
 *
 * Ownership: the caller owns each request handle from aioc_start_*() and
 * frees it with aioc_request_free(), after its completion or before (which
 * abandons it). Results (outcomes, task id, ...) are read from the handle
 * and borrowed from it unless taken. Handles outlive their client: after
 * aioc_close() a request that was still in flight is completed with
 * -ECONNABORTED (without a callback unless AIOC_FLAG_FINAL_CALLBACKS) and
 * must still be freed.
 *
 * Completion callbacks run only from aioc_process() (with
 * AIOC_FLAG_FINAL_CALLBACKS also from aioc_request_free() and aioc_close());
 * output and event callbacks run as lines and events are read, from
 * aioc_process() or a blocking call. Inside a callback the program may
 * start new requests, read, cancel or free any request (the one being
 * completed included), and close the client (aioc_close()), but not call
 * aioc_process() or a blocking function (both return -EBUSY, which means
 * only that).
 *
 * The blocking functions may be mixed with started requests on one client.
 * A blocking call may read replies of started requests while it waits;
 * their callbacks then run from the next aioc_process(), so call
 * aioc_process() after a blocking call before waiting on aioc_fd() again.
 */
typedef struct aioc_request aioc_request;

/* Called once when `req` completes: `error` is 0 or the negative errno it
 * failed with (the same as aioc_request_error(req)). */
typedef void (*aioc_request_cb)(aioc_request *req, int error, void *userdata);

/* Called once when the hello of aioc_connect_start has been answered:
 * `error` is 0 (connected) or the negative errno the connection failed
 * with (the daemon's message in aioc_last_error(c)); then the client is
 * dead and is to be closed, not from inside this callback. */
typedef void (*aioc_connect_cb)(aioc_client *c, int error, void *userdata);

/*
 * Connects without blocking, for programs with their own event loop: the
 * socket is connected (a Unix socket connects at once) and the hello is
 * queued and sent; the reply is read by aioc_process(), which then calls
 * `cb` (may be NULL) once, and aioc_connection_error() turns from
 * -EINPROGRESS to 0 or the errno. Requests may be started at once: they go
 * out after the hello. There is no timeout here: the program's loop owns
 * the clock (close the client when its own timer says so). *ret is a new
 * client. 0, -EINVAL, -ENOMEM, the errno of connect (-ENOENT,
 * -ECONNREFUSED, -EACCES, ...), or -EAGAIN when the daemon's listen
 * backlog is full (try again later). Added in libaioclient 1.3.
 */
AIOC_EXPORT int aioc_connect_start(const char *socket_path, aioc_connect_cb cb, void *userdata,
                                   aioc_client **ret);

/*
 * Client flags (aioc_set_flags), for the requests started after they are
 * set. AIOC_FLAG_FINAL_CALLBACKS: every started request gets exactly one
 * completion callback however it ends, so that a program needs no books
 * of its own: aioc_request_cancel() makes it due (run from the next
 * aioc_process(), error -ECANCELED); aioc_request_free() of a request
 * whose callback has not run runs it there and then, before the handle
 * goes (error -ECANCELED when it was in flight); aioc_close() runs the
 * callbacks still due and those of the requests in flight (-ECONNABORTED)
 * before it returns. aioc_request_end() tells these cases apart. Without
 * the flag, those three run no callback (libaioclient 1.2's behaviour).
 * Added in libaioclient 1.3.
 */
#define AIOC_FLAG_FINAL_CALLBACKS 0x1u
/* Sets the client's flags (replacing them). 0, -EINVAL. */
AIOC_EXPORT int aioc_set_flags(aioc_client *c, unsigned flags);

/* How a request ended (aioc_request_end). */
#define AIOC_END_COMPLETED 1 /* by the daemon's answer, or the connection's death */
#define AIOC_END_CANCELLED 2 /* by aioc_request_cancel() */
#define AIOC_END_FREED 3     /* by aioc_request_free() while in flight */
#define AIOC_END_CLOSED 4    /* by aioc_close() while in flight */

/* Events of a request (aioc_request_set_event_callback). */
/* A gather's or run's tasks exist: their ids are in aioc_request_task_ids()
 * (task_id is the first; state is 0). Comes before any of their output,
 * from a daemon that sends the Started event; from an older one the ids
 * are known only at the completion. */
#define AIOC_EVENT_STARTED 1
/* A followed task's output has ended (task_id, and state its
 * AIOC_STATE_*): for each followed task of a gather or run, and for a
 * submit with AIOC_SUBMIT_FOLLOW, whose request completed earlier. A
 * followed submit's stream that the daemon ends with an error (too many
 * streams: the task runs unfollowed; the daemon stops) ends with this
 * event too, its state the error's negative errno and the daemon's message
 * in aioc_request_error_message() (aioc_request_error() stays 0). */
#define AIOC_EVENT_OUTPUT_END 2
/* Called for an event of `req`; runs where output callbacks run (from
 * aioc_process() or a blocking call), in the order the daemon sent it. It
 * may free req. */
typedef void (*aioc_event_cb)(aioc_request *req, int event, uint64_t task_id, int state,
                              void *userdata);

/* Ownership of a submitted task (aioc_start_submit); 0 is attached. */
#define AIOC_SUBMIT_ATTACHED 0x0u
#define AIOC_SUBMIT_SUBMITTED 0x1u
#define AIOC_SUBMIT_DETACHED 0x2u
/* Stream the task's output to the output callbacks (its lines keep coming
 * after the request has completed, until the task ends). */
#define AIOC_SUBMIT_FOLLOW 0x4u

/*
 * Common to every aioc_start_*(): `cb` (may be NULL) is called with
 * `userdata` when the request completes. On success *ret gets the new
 * request and 0 is returned; nothing is written to *ret on failure, and no
 * callback will run. Errors: -EINVAL (bad arguments, as for the blocking
 * function), -ENOMEM, -EMSGSIZE (the request exceeds the daemon's frame
 * limit; the connection is fine), or the negative errno the connection
 * died with. Starting is allowed inside callbacks. Errors of the daemon or
 * of the transport after the start are reported by the completion: see
 * aioc_request_error().
 */

/* Creates a task (asyncio.create_task); completes with the task's id
 * (aioc_request_task_id) once the daemon has created it. `flags`: one
 * AIOC_SUBMIT_ ownership, optionally | AIOC_SUBMIT_FOLLOW. */
AIOC_EXPORT int aioc_start_submit(aioc_client *c, const aioc_call *call, unsigned flags,
                                  aioc_request_cb cb, void *userdata, aioc_request **ret);
/* As aioc_start_submit, with a schedule (NULL: none), which is read during
 * the call only (see aioc_submit_ex). With AIOC_SUBMIT_FOLLOW the output
 * of every attempt comes, until the task ends: a task waiting for its time
 * or its retry prints nothing meanwhile. Added in libaioclient 1.5. */
AIOC_EXPORT int aioc_start_submit_ex(aioc_client *c, const aioc_call *call, unsigned flags,
                                     const aioc_schedule *sched, aioc_request_cb cb, void *userdata,
                                     aioc_request **ret);

/* aioc_run without blocking, with the same single message: a gather of one
 * call with return_exceptions and follow, the daemon cancelling the task
 * after `timeout` s (<= 0 waits forever). Completes with one outcome
 * (aioc_request_outcome(req, 0)), or -ETIMEDOUT, or the error that refused
 * it. aioc_request_task_id is set from the Started event on (see
 * AIOC_EVENT_STARTED), else at the completion. */
AIOC_EXPORT int aioc_start_run(aioc_client *c, const aioc_call *call, double timeout,
                               aioc_request_cb cb, void *userdata, aioc_request **ret);

/* With aioc_start_await: on timeout also cancel the tasks (asyncio.wait_for);
 * without it they keep running (asyncio.wait). */
#define AIOC_AWAIT_CANCEL_ON_TIMEOUT 0x1u

/* aioc_await without blocking: completes with n outcomes in the order of
 * `ids` (copied; the array may be freed after the call), or -ETIMEDOUT,
 * -ESRCH, -EHOSTUNREACH (cluster ids, the cluster unreachable), ... */
AIOC_EXPORT int aioc_start_await(aioc_client *c, const uint64_t *ids, size_t n, unsigned flags,
                                 double timeout, aioc_request_cb cb, void *userdata,
                                 aioc_request **ret);

/* aioc_gather without blocking (same flags and timeout): completes with n
 * outcomes in argument order; without AIOC_GATHER_RETURN_EXCEPTIONS the
 * first failure completes it with -EIO and that task's outcome in
 * aioc_request_failed(). The items are copied: they may be freed at once. */
AIOC_EXPORT int aioc_start_gather(aioc_client *c, const aioc_call *const *items, size_t n,
                                  unsigned flags, double timeout, aioc_request_cb cb,
                                  void *userdata, aioc_request **ret);

/* aioc_cancel without blocking: completes with the number of tasks asked to
 * cancel (aioc_request_count). */
AIOC_EXPORT int aioc_start_cancel(aioc_client *c, const uint64_t *ids, size_t n, aioc_request_cb cb,
                                  void *userdata, aioc_request **ret);

/* aioc_logs without blocking: the lines go to the output callbacks; with
 * AIOC_LOGS_FOLLOW it completes when the task ends, with its state in
 * aioc_request_state(). */
AIOC_EXPORT int aioc_start_logs(aioc_client *c, uint64_t id, unsigned flags, aioc_request_cb cb,
                                void *userdata, aioc_request **ret);

/*
 * The poll(2) events to wait for on aioc_fd(): POLLIN, | POLLOUT while
 * requests are queued that the socket has not taken yet (values as
 * <poll.h> defines them). -EINVAL for NULL.
 */
AIOC_EXPORT int aioc_events(const aioc_client *c);

/*
 * Does what is ready, never blocking: writes queued requests as far as the
 * socket takes them, reads what has arrived, delivers output lines, and
 * runs the completion callbacks of the requests that ended (also of those
 * a blocking call completed). Returns how many requests completed (0 when
 * nothing was ready), or a negative errno: -EINVAL (NULL), -EBUSY (called
 * from a callback: nothing was done and the connection is fine; -EBUSY
 * never means anything else), or the errno the connection died with
 * (-ECONNRESET the daemon went away, -EPIPE, -EPROTO it sent something
 * broken or a connection-level error, -ENOMEM, ...). So the check for a
 * dead connection is `r < 0 && r != -EBUSY` (or aioc_connection_error()).
 * When the connection dies every request in flight completes with that
 * errno, its callback run before aioc_process() returns; later calls
 * return the same errno.
 */
AIOC_EXPORT int aioc_process(aioc_client *c);

/* Routes the output lines of this request's tasks to `cb` instead of the
 * client's output callback (NULL: back to the client's). */
AIOC_EXPORT void aioc_request_set_output_callback(aioc_request *req, aioc_output_cb cb,
                                                  void *userdata);
/* 1 once the request has completed (its callback may still be due), 0 while
 * in flight, -EINVAL for NULL. */
AIOC_EXPORT int aioc_request_done(const aioc_request *req);
/* 0 if it completed successfully, its negative errno if it failed (the
 * errnos listed at the top for daemon refusals and transport errors;
 * -ECANCELED after aioc_request_cancel, -ECONNABORTED after aioc_close),
 * -EINPROGRESS while in flight, -EINVAL for NULL. */
AIOC_EXPORT int aioc_request_error(const aioc_request *req);
/* The daemon's message when it refused the request (or ended a followed
 * submit's stream with an error: AIOC_EVENT_OUTPUT_END), else ""
 * (borrowed). */
AIOC_EXPORT const char *aioc_request_error_message(const aioc_request *req);
/* submit, run: the task's id once the daemon created it, else 0. */
AIOC_EXPORT uint64_t aioc_request_task_id(const aioc_request *req);
/* gather, run: the ids of its tasks in argument order, from the Started
 * event on (else from the completion on); submit: its task's id. Borrowed
 * from req; *ret_n gets their number (0, and NULL returned, while
 * unknown). NULL for NULL arguments. Added in libaioclient 1.3. */
AIOC_EXPORT const uint64_t *aioc_request_task_ids(const aioc_request *req, size_t *ret_n);
/* Installs the event callback (NULL removes it): AIOC_EVENT_*. Added in
 * libaioclient 1.3. */
AIOC_EXPORT void aioc_request_set_event_callback(aioc_request *req, aioc_event_cb cb,
                                                 void *userdata);
/* How it ended (AIOC_END_*), -EINPROGRESS while in flight, -EINVAL for
 * NULL. Added in libaioclient 1.3. */
AIOC_EXPORT int aioc_request_end(const aioc_request *req);
/* await, gather, run after success: the number of outcomes, else 0. */
AIOC_EXPORT size_t aioc_request_n_outcomes(const aioc_request *req);
/* The i-th outcome (borrowed from req), NULL when out of range or taken. */
AIOC_EXPORT const aioc_outcome *aioc_request_outcome(const aioc_request *req, size_t i);
/* Takes the i-th outcome: the caller frees it with aioc_outcome_free; NULL
 * when out of range or taken already. */
AIOC_EXPORT aioc_outcome *aioc_request_take_outcome(aioc_request *req, size_t i);
/* A gather that failed with -EIO: the failed task's outcome (borrowed). */
AIOC_EXPORT const aioc_outcome *aioc_request_failed(const aioc_request *req);
/* cancel: how many tasks were asked to cancel (>= 0); -EINVAL otherwise. */
AIOC_EXPORT int aioc_request_count(const aioc_request *req);
/* logs: the task's state (AIOC_STATE_*) at the end; -EINVAL otherwise. */
AIOC_EXPORT int aioc_request_state(const aioc_request *req);
/* The output lines of its followed tasks that this request did not get
 * (the sum of its OutputEnd events' counts, as they have come so far):
 * for a logs as aioc_logs_ex says, for a run the same as
 * aioc_outcome_output_dropped of its outcome, for a gather the sum over
 * its tasks, for a submit with AIOC_SUBMIT_FOLLOW once its output ended.
 * 0 otherwise and for NULL. Added in libaioclient 1.4. */
AIOC_EXPORT uint64_t aioc_request_output_dropped(const aioc_request *req);

/*
 * Stops waiting for a request in flight: it completes at once with
 * -ECANCELED and its callback is not called (with AIOC_FLAG_FINAL_CALLBACKS
 * it is, from the next aioc_process()); a late reply is ignored. Its
 * output lines and events still reach its callbacks while the handle
 * lives. For a run, the daemon is also asked to cancel the task
 * (asyncio.run interrupted; when its id is not known yet, as soon as the
 * Started event names it); other requests' tasks keep running (attached
 * ones until the connection closes). 0, -EALREADY (it had completed; its
 * callback may still be due), -EINVAL (NULL).
 */
AIOC_EXPORT int aioc_request_cancel(aioc_request *req);
/* Frees a request; one still in flight is cancelled first (as above), one
 * whose callback is still due will not have it called (with
 * AIOC_FLAG_FINAL_CALLBACKS: it is called now, before the handle goes).
 * Whatever still comes for it (output lines, events, a late reply) is
 * dropped. Accepts NULL. */
AIOC_EXPORT void aioc_request_free(aioc_request *req);

#ifdef __cplusplus
}
#endif

#endif /* AIOC_H */
