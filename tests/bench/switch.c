/*
 * aiod-bench: the cost of a coroutine switch, with the daemon's own coroutine
 * code (target aiodcore: coro.c and coro_switch_*). Two coroutines are
 * resumed in turn by the scheduler context and yield straight back, as tasks
 * do on the loop; every resume and every yield is one switch. Then the same
 * ping-pong runs in a child process traced with ptrace(PTRACE_SYSCALL),
 * between two getppid() markers, to count the system calls the switches make
 * (it must be 0); getrusage counts context switches as a second witness.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "core/coro.h"

static volatile int stop;
static volatile uint64_t ticks;

static void body(void *arg) {
    (void)arg;
    while (!stop) {
        ticks++;
        coro_yield();
    }
}

/* iterations x (resume a, a yields, resume b, b yields) = 4 switches each.
 * Returns the elapsed ns, or 0 if the coroutines could not be made. */
static uint64_t ping_pong(uint64_t iterations, bool markers) {
    coro *a, *b;
    stop = 0;
    coro_configure(64 * 1024);
    if (coro_new(body, NULL, &a) < 0)
        return 0;
    if (coro_new(body, NULL, &b) < 0) {
        coro_free(a);
        return 0;
    }
    /* Touch both stacks once so that page faults are not timed. */
    coro_resume(a);
    coro_resume(b);
    if (markers)
        syscall(SYS_getppid);
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < iterations; i++) {
        coro_resume(a);
        coro_resume(b);
    }
    uint64_t t1 = bench_now_ns();
    if (markers)
        syscall(SYS_getppid);
    stop = 1;
    coro_resume(a);
    coro_resume(b);
    coro_free(a);
    coro_free(b);
    coro_pool_clear();
    return t1 - t0 ? t1 - t0 : 1;
}

/* Counts system calls entered between the two getppid() markers of a traced
 * child running the ping-pong. -1 when ptrace is not available. */
static long count_syscalls(uint64_t iterations, char *why, size_t why_len) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        bench_note(why, why_len, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0)
            _exit(2);
        raise(SIGSTOP);
        _exit(ping_pong(iterations, true) ? 0 : 3);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st)) {
        bench_note(why, why_len, "ptrace not permitted");
        waitpid(pid, NULL, 0);
        return -1;
    }
    ptrace(PTRACE_SETOPTIONS, pid, NULL, (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL));
    long count = 0;
    int markers = 0;
    int sig = 0;
    for (;;) {
        if (ptrace(PTRACE_SYSCALL, pid, NULL, (void *)(long)sig) < 0)
            break;
        sig = 0;
        if (waitpid(pid, &st, 0) != pid)
            break;
        if (WIFEXITED(st) || WIFSIGNALED(st))
            break;
        if (!WIFSTOPPED(st))
            continue;
        if (WSTOPSIG(st) != (SIGTRAP | 0x80)) {
            sig = WSTOPSIG(st) == SIGSTOP ? 0 : WSTOPSIG(st);
            continue;
        }
        struct __ptrace_syscall_info info;
        if (ptrace(PTRACE_GET_SYSCALL_INFO, pid, (void *)sizeof(info), &info) <= 0)
            continue;
        if (info.op != PTRACE_SYSCALL_INFO_ENTRY)
            continue;
        if (info.entry.nr == SYS_getppid)
            markers++;
        else if (markers == 1)
            count++;
    }
    if (markers < 2) {
        bench_note(why, why_len, "traced child did not reach both markers");
        return -1;
    }
    return count;
}

void bench_switch(uint64_t iterations, switch_result *res) {
    memset(res, 0, sizeof(*res));
    res->ok = true;
    res->syscalls = -1;
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    uint64_t ns = ping_pong(iterations, false);
    getrusage(RUSAGE_SELF, &r1);
    if (!ns) {
        res->ok = false;
        bench_note(res->reason, sizeof(res->reason), "coro_new failed");
        return;
    }
    res->switches = iterations * 4;
    res->ns_per_switch = (double)ns / (double)res->switches;
    res->nvcsw = r1.ru_nvcsw - r0.ru_nvcsw;
    res->nivcsw = r1.ru_nivcsw - r0.ru_nivcsw;

    /* A system call for scale. */
    uint64_t n = 200000, t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++)
        syscall(SYS_getppid);
    res->ns_per_syscall = (double)(bench_now_ns() - t0) / (double)n;

    uint64_t traced = iterations < 1000000 ? iterations : 1000000;
    res->syscalls = count_syscalls(traced, res->reason, sizeof(res->reason));
}
