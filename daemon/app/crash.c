/*
 * Fatal-signal reporting (crash.h). Only async-signal-safe calls here:
 * write(2), sigaction, raise; numbers are formatted by hand.
 */
#include "app/crash.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "core/coro.h"
#include "core/sched.h"
#include "core/task.h"
#include "host/registry.h"

static char altstack[64 * 1024];

static size_t put_str(char *buf, size_t pos, size_t cap, const char *s) {
    while (s && *s && pos + 1 < cap)
        buf[pos++] = *s++;
    return pos;
}

static size_t put_u64(char *buf, size_t pos, size_t cap, uint64_t v) {
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && pos + 1 < cap)
        buf[pos++] = tmp[--n];
    return pos;
}

static void on_fatal(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    char line[512];
    size_t p = 0;
    task *t = sched_current();
    bool overflow = (sig == SIGSEGV || sig == SIGBUS) && coro_fault_in_guard(si->si_addr);

    p = put_str(line, p, sizeof(line), "aiod: fatal: ");
    if (overflow)
        p = put_str(line, p, sizeof(line), "coroutine stack overflow");
    else {
        p = put_str(line, p, sizeof(line), "signal ");
        p = put_u64(line, p, sizeof(line), (uint64_t)sig);
        p = put_str(line, p, sizeof(line), " (");
        p = put_str(line, p, sizeof(line), sigabbrev_np(sig));
        p = put_str(line, p, sizeof(line), ")");
    }
    if (t) {
        p = put_str(line, p, sizeof(line), " in task ");
        p = put_u64(line, p, sizeof(line), t->id);
        p = put_str(line, p, sizeof(line), " (");
        p = put_str(line, p, sizeof(line), t->fn->full_name);
        p = put_str(line, p, sizeof(line), ")");
    } else
        p = put_str(line, p, sizeof(line), " outside any task");
    line[p++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, p);
    (void)w;

    /* Die by the same signal, so the exit status tells what happened. */
    signal(sig, SIG_DFL);
    raise(sig);
}

int crash_install(void) {
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};
    if (sigaltstack(&ss, NULL) < 0)
        return -errno;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        if (sigaction(sigs[i], &sa, NULL) < 0)
            return -errno;
    return 0;
}
