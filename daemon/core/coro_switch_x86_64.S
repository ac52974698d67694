/*
 * x86-64 System V context switch for coroutines (coro_switch.h).
 *
 * coro_ctx_swap(void **save_sp, void *load_sp): pushes the callee-saved
 * registers and the SSE/x87 control words, stores the stack pointer into
 * *save_sp, loads load_sp and pops the same set from there. Caller-saved
 * registers need no saving: the C caller assumes they are clobbered. No
 * system call, unlike swapcontext, which also switches the signal mask.
 */
    .text
    .globl coro_ctx_swap
    .hidden coro_ctx_swap
    .type coro_ctx_swap, @function
coro_ctx_swap:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size coro_ctx_swap, .-coro_ctx_swap

/*
 * First code run on a new stack: coro_ctx_make left the entry function in
 * r12 and its argument in r13. The entry never returns; ud2 traps if it did.
 * Clearing rbp ends the frame chain for debuggers and unwinders.
 */
    .globl coro_ctx_boot
    .hidden coro_ctx_boot
    .type coro_ctx_boot, @function
coro_ctx_boot:
    .cfi_startproc
    .cfi_undefined rip
    xorl %ebp, %ebp
    movq %r13, %rdi
    callq *%r12
    ud2
    .cfi_endproc
    .size coro_ctx_boot, .-coro_ctx_boot

    .section .note.GNU-stack,"",@progbits
