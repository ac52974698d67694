/*
 * C side of the x86-64 switch: laying out a new stack so that the first
 * coro_ctx_swap into it "returns" into coro_ctx_boot with the entry function
 * and its argument in r12/r13.
 */
#include <stdint.h>
#include <string.h>

#include "core/coro_switch.h"

void coro_ctx_swap(void **save_sp, void *load_sp);
void coro_ctx_boot(void);

void coro_ctx_make(coro_ctx *ctx, void *stack, size_t size, void (*entry)(void *), void *arg) {
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)top;
    /* After the 8 pops/adds below and the ret, rsp == top: 16-byte aligned
     * as the ABI wants before coro_ctx_boot's call. */
    *--sp = (uint64_t)(uintptr_t)coro_ctx_boot; /* return address */
    *--sp = 0;                                  /* rbp */
    *--sp = 0;                                  /* rbx */
    *--sp = (uint64_t)(uintptr_t)entry;         /* r12 */
    *--sp = (uint64_t)(uintptr_t)arg;           /* r13 */
    *--sp = 0;                                  /* r14 */
    *--sp = 0;                                  /* r15 */
    /* Default MXCSR (all exceptions masked, round to nearest) and x87
     * control word (extended precision, all masked). */
    uint32_t mxcsr = 0x1F80, fpucw = 0x037F;
    *--sp = (uint64_t)mxcsr | (uint64_t)fpucw << 32;
    ctx->sp = sp;
}

void coro_ctx_switch(coro_ctx *from, coro_ctx *to) {
    coro_ctx_swap(&from->sp, to->sp);
}
