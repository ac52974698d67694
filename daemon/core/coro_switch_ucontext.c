/*
 * Portable fallback for coro_switch.h on machines without a hand-written
 * switch: makecontext/swapcontext. Slower (swapcontext makes a sigprocmask
 * system call per switch) but correct everywhere glibc runs.
 */
#include <stdint.h>

#include "core/coro_switch.h"

static void boot(unsigned hi_entry, unsigned lo_entry, unsigned hi_arg, unsigned lo_arg) {
    void (*entry)(void *) = (void (*)(void *))(((uintptr_t)hi_entry << 32) | lo_entry);
    void *arg = (void *)(((uintptr_t)hi_arg << 32) | lo_arg);
    entry(arg);
}

void coro_ctx_make(coro_ctx *ctx, void *stack, size_t size, void (*entry)(void *), void *arg) {
    uintptr_t e = (uintptr_t)entry, a = (uintptr_t)arg;
    getcontext(&ctx->uc);
    ctx->uc.uc_stack.ss_sp = stack;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = NULL;
    makecontext(&ctx->uc, (void (*)(void))boot, 4, (unsigned)(e >> 32), (unsigned)e,
                (unsigned)(a >> 32), (unsigned)a);
}

void coro_ctx_switch(coro_ctx *from, coro_ctx *to) {
    swapcontext(&from->uc, &to->uc);
}
