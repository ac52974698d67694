/*
 * Coroutines: a function that can suspend itself (coro_yield) and be resumed
 * by the scheduler (coro_resume). Only the scheduler's context (the loop
 * thread's own stack) resumes coroutines, and a coroutine only yields back
 * to it: there is no coroutine-to-coroutine switch. All coroutines run on one
 * run stack with a PROT_NONE guard page below it, so an overflow faults
 * instead of corrupting memory (coro_fault_in_guard lets the crash handler
 * name the culprit); a suspended coroutine's frames are copied aside while
 * others run. Memory on a coroutine's stack is therefore valid only while
 * that coroutine runs: never let anything outside it keep a pointer there.
 */
#ifndef AIOD_CORO_H
#define AIOD_CORO_H

#include <stdbool.h>
#include <stddef.h>

typedef struct coro coro;
typedef void (*coro_fn)(void *arg);

/* Sets the run stack's size (rounded up to pages); takes effect when no
 * coroutine exists. */
void coro_configure(size_t stack_size);

/* A new coroutine that will run fn(arg) when first resumed. 0, -ENOMEM. */
int coro_new(coro_fn fn, void *arg, coro **ret);

/* Frees a coroutine that has finished (coro_exit) or never started. */
void coro_free(coro *c);

/* Runs `c` until it yields or exits. Call only from the scheduler context.
 * 0, or -ENOMEM when the frames of the coroutine that last ran could not be
 * saved (then `c` did not run; try again later). */
int coro_resume(coro *c);

/* Suspends the running coroutine; returns when it is resumed. */
void coro_yield(void);

/* Ends the running coroutine for good; the scheduler may then free it. */
_Noreturn void coro_exit(void);

/* The running coroutine, or NULL in the scheduler context. */
coro *coro_current(void);

/* Whether the coroutine ran to coro_exit. */
bool coro_finished(const coro *c);

/* Per-coroutine user pointer (the task), for the crash handler. */
void coro_set_user(coro *c, void *user);
void *coro_get_user(const coro *c);

/* If `addr` lies in the guard page of the running coroutine, returns its user
 * pointer (async-signal-safe); otherwise NULL. */
void *coro_fault_in_guard(const void *addr);

/* Whether `p` points into the run stack (or its guard page): memory that is
 * only valid while the coroutine owning it runs. For api entries that must
 * refuse such pointers (to_thread's arg). */
bool coro_on_run_stack(const void *p);

/* Unmaps the run stack once no coroutine exists (at shutdown). */
void coro_pool_clear(void);

/* Drops the run stack's touched pages while no coroutine exists (idle). */
void coro_release_stack(void);

/* Run stacks mapped (0 or 1), for statistics and tests. */
size_t coro_stacks_mapped(void);

/* Heap bytes holding a suspended coroutine's frames. */
size_t coro_saved_bytes(const coro *c);

#endif
