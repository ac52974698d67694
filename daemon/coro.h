/*
 * Coroutines: a function running on its own stack that can suspend itself
 * (coro_yield) and be resumed by the scheduler (coro_resume). Only the
 * scheduler's context (the loop thread's own stack) resumes coroutines, and a
 * coroutine only yields back to it: there is no coroutine-to-coroutine
 * switch. Stacks are mmap'd with a PROT_NONE guard page below them, so an
 * overflow faults instead of corrupting a neighbour; coro_fault_describe lets
 * the crash handler name the culprit.
 */
#ifndef AIOD_CORO_H
#define AIOD_CORO_H

#include <stdbool.h>
#include <stddef.h>

typedef struct coro coro;
typedef void (*coro_fn)(void *arg);

/* Sets the stack size for coroutines created from now on (rounded up to
 * pages) and how many freed stacks to keep for reuse. */
void coro_configure(size_t stack_size, unsigned pool_max);

/* A new coroutine that will run fn(arg) when first resumed. 0, -ENOMEM. */
int coro_new(coro_fn fn, void *arg, coro **ret);

/* Frees a coroutine that has finished (coro_exit) or never started. */
void coro_free(coro *c);

/* Runs `c` until it yields or exits. Call only from the scheduler context. */
void coro_resume(coro *c);

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

/* Unmaps pooled stacks (at shutdown). */
void coro_pool_clear(void);

/* Stacks currently mapped (in use or pooled), for statistics. */
size_t coro_stacks_mapped(void);

#endif
