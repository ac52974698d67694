/*
 * The machine-dependent part of coroutines: preparing a fresh context on a
 * stack and switching between two contexts. One implementation per file,
 * chosen by CMake: coro_switch_x86_64.S (callee-saved registers only, no
 * system call) or coro_switch_ucontext.c elsewhere.
 */
#ifndef AIOD_CORO_SWITCH_H
#define AIOD_CORO_SWITCH_H

#include <stddef.h>

#if defined(__x86_64__) && !defined(AIOD_CORO_UCONTEXT)
typedef struct coro_ctx {
    /* Saved stack pointer; the registers sit on the stack below it. */
    void *sp;
} coro_ctx;
#else
#include <ucontext.h>
typedef struct coro_ctx {
    ucontext_t uc;
} coro_ctx;
#endif

/* Prepares `ctx` so that switching to it calls entry(arg) on the stack
 * [stack, stack + size). entry must never return. */
void coro_ctx_make(coro_ctx *ctx, void *stack, size_t size, void (*entry)(void *), void *arg);

/* Saves the current context into `from` and resumes `to`. */
void coro_ctx_switch(coro_ctx *from, coro_ctx *to);

#endif
