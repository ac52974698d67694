/*
 * The stall detector: a thread that reports an event loop held longer than
 * a threshold (setting stall_warning_ms) while it is still held, naming what
 * holds it: a task step, a request being dispatched, or something outside
 * both. A task that never yields, or a request whose checking takes
 * seconds, is then seen when it starts to hurt, not after it ends (or, for
 * a request, never), and long before systemd's watchdog kills the daemon.
 *
 * The loop publishes what it is doing (a heartbeat) from the hooks below;
 * the thread only reads it. Everything shared is an atomic, in a seqlock so
 * that the thread reads one consistent snapshot, and the name of a task's
 * function is copied into a fixed buffer: the thread never follows a
 * pointer into the loop's memory. The thread writes its line itself (one
 * write(2), or one journal entry); when the loop moves again, the loop's
 * thread logs how long it was held in all.
 *
 * What the loop is doing, as the detector sees it:
 *   waiting   between the prepare and the check phase: blocked in
 *             epoll_wait, or running I/O callbacks (only a request's
 *             dispatch and a connection's close among those are seen,
 *             through the request hook);
 *   running   anywhere else (timers, the drain outside a task step);
 *   a task    inside stall_enter_task .. stall_leave;
 *   a request inside stall_enter_request .. stall_leave.
 * Only "waiting" is never a stall. A stall is measured from when the loop
 * last stopped waiting, whatever ran since (many short steps or requests
 * count together), and named by what runs when it is seen.
 *
 * The hooks cost a coarse clock read and a few atomic stores; without
 * stall_start (threshold 0, unit tests) they return at once.
 */
#ifndef AIOD_STALL_H
#define AIOD_STALL_H

#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

/*
 * Starts the detector on `loop` with a threshold of `threshold_ms` (0: off,
 * nothing is started). Call it once, after log_setup. 0 or a negative errno
 * (logged; the daemon runs on without it).
 */
int stall_start(uv_loop_t *loop, uint32_t threshold_ms);
/* Stops and joins the thread and closes the loop hooks. Safe without
 * stall_start. */
void stall_stop(void);

/* The loop runs one step of task `id` whose function is `function` (copied,
 * cut to a fixed length), from `now_ms` (CLOCK_MONOTONIC_COARSE in
 * milliseconds, which the caller reads anyway). The copy is reused while
 * the next steps name the same pointer: call stall_forget_name before
 * freeing a function's name. */
void stall_enter_task(uint64_t id, const char *function, uint64_t now_ms);
/* `name` is about to be freed (a plugin's function names, when it is
 * unloaded): a string later made at its address is copied again. */
void stall_forget_name(const char *name);
/* The loop dispatches a request that came on connection `serial` from
 * `uid`. */
void stall_enter_request(uint64_t serial, uid_t uid);
/* The step or the dispatch is over. */
void stall_leave(void);

/* Start-up work before the loop runs (reading the state store back): no
 * client is served yet, so it is not a stall. Counts as waiting until the
 * loop's first check. */
void stall_not_serving(void);

#endif
