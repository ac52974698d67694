/*
 * Starting a program without copying the daemon's memory (spawn.h).
 *
 * The child of clone(CLONE_VM | CLONE_VFORK) runs in the daemon's memory,
 * on a stack of its own, while the daemon's thread waits for it to execute
 * the program or exit. Everything it does is therefore a raw system call:
 * no libc function that keeps state (errno aside, which is the waiting
 * thread's), no allocation, no lock, and no sanitizer instrumentation,
 * whose per-thread state belongs to the waiting thread. Signals stay
 * blocked in the daemon from before the clone until it returns, so that no
 * handler of the daemon runs on the child's stack; the child sets every
 * signal back to its default before unblocking them.
 *
 * Why the program could not be executed reaches the daemon through a pipe
 * closed at exec: an errno written into it, or end of file on success.
 */
#include "api/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/memcheck.h"

/* ThreadSanitizer takes every clone for a fork and breaks on CLONE_VM: its
 * builds take the fork path. */
#ifdef AIOD_TSAN
#define SPAWN_BY_FORK 1
#else
#define SPAWN_BY_FORK 0
#endif

#if defined(__clang__)
#define CHILD_CODE __attribute__((no_sanitize("address", "thread", "undefined"), noinline))
#else
#define CHILD_CODE __attribute__((no_sanitize_address, no_sanitize_thread, noinline))
#endif

/* The child's stack: one at a time, since the daemon waits for the child
 * to leave it (exec or exit) before clone returns. */
#define CHILD_STACK (64u * 1024)
static _Alignas(64) uint8_t child_stack[CHILD_STACK];

typedef struct child_args {
    const spawn_spec *spec;
    pid_t daemon_pid;
    int err_fd;
    /* The child's nice value, or INT_MIN to keep the daemon's. */
    int nice;
    /* A fork, not a clone sharing the daemon's memory (see spawn_start). */
    bool forked;
} child_args;

/* The kernel's struct sigaction for rt_sigaction. */
struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};

CHILD_CODE static void child_fail(const child_args *a, int err) {
    (void)syscall(SYS_write, a->err_fd, &err, sizeof(err));
    (void)syscall(SYS_exit_group, 127);
    for (;;) {
    }
}

/* execve of `file` along the PATH of `envp`, as execvp does: on return,
 * the errno to report. */
CHILD_CODE static int child_exec(const spawn_spec *s) {
    const char *file = s->file;
    for (const char *c = file; *c; c++)
        if (*c == '/') {
            (void)syscall(SYS_execve, file, s->argv, s->envp);
            return errno;
        }
    const char *path = "/bin:/usr/bin";
    for (char *const *e = s->envp; e && *e; e++) {
        const char *v = *e;
        if (v[0] == 'P' && v[1] == 'A' && v[2] == 'T' && v[3] == 'H' && v[4] == '=') {
            path = v + 5;
            break;
        }
    }
    size_t flen = 0;
    while (file[flen])
        flen++;
    int err = ENOENT;
    bool denied = false;
    char buf[4096];
    for (const char *d = path;;) {
        const char *end = d;
        while (*end && *end != ':')
            end++;
        size_t dlen = (size_t)(end - d);
        if (dlen + 1 + flen + 1 <= sizeof(buf)) {
            size_t n = 0;
            for (size_t i = 0; i < dlen; i++)
                buf[n++] = d[i];
            if (dlen > 0)
                buf[n++] = '/';
            for (size_t i = 0; i <= flen; i++)
                buf[n++] = file[i];
            (void)syscall(SYS_execve, buf, s->argv, s->envp);
            err = errno;
            if (err == EACCES)
                denied = true;
            else if (err != ENOENT && err != ENOTDIR && err != ESTALE && err != ENODEV &&
                     err != ETIMEDOUT)
                return err;
        }
        if (!*end)
            break;
        d = end + 1;
    }
    return denied ? EACCES : err;
}

CHILD_CODE static int child_main(void *arg) {
    const child_args *a = arg;
    const spawn_spec *s = a->spec;
    struct kernel_sigaction dfl = {.handler = SIG_DFL};
    for (int sig = 1; sig < 65; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(uint64_t));
    uint64_t none = 0;
    if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none)) < 0)
        child_fail(a, errno);
    if (a->forked) {
        /* In a forked copy of the daemon (ThreadSanitizer, valgrind) libc
         * may be used, and ThreadSanitizer keeps its own record of the
         * mask, which only a call through libc updates. */
        sigset_t empty;
        sigemptyset(&empty);
        if (pthread_sigmask(SIG_SETMASK, &empty, NULL) != 0)
            child_fail(a, EINVAL);
    }
    if (syscall(SYS_setsid) < 0)
        child_fail(a, errno);
    /* The sources are all >= 3 (spawn_start sees to it). */
    for (int fd = 0; fd < 3; fd++)
        if (syscall(SYS_dup3, s->stdio[fd], fd, 0) < 0)
            child_fail(a, errno);
    if (syscall(SYS_close_range, 3, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
        child_fail(a, errno);
    /* setgid and setuid, which with CAP_SETGID and CAP_SETUID set the real,
     * effective and saved ids alike: the system unit's system call filter
     * allows those three and not setresuid or setresgid. */
    if (s->set_ids && (syscall(SYS_setgroups, 0, NULL) < 0 || syscall(SYS_setgid, s->gid) < 0 ||
                       syscall(SYS_setuid, s->uid) < 0))
        child_fail(a, errno);
    /* After the change of user, which clears it. */
    if (syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        child_fail(a, errno);
    if (syscall(SYS_getppid) != a->daemon_pid)
        (void)syscall(SYS_kill, syscall(SYS_getpid), SIGKILL);
    if (a->nice != INT_MIN)
        (void)syscall(SYS_setpriority, PRIO_PROCESS, 0, a->nice);
    if (s->cwd && syscall(SYS_chdir, s->cwd) < 0)
        child_fail(a, errno);
    child_fail(a, child_exec(s));
    return 127;
}

/* A descriptor >= 3 for `fd`, so that putting the three on 0-2 cannot
 * overwrite one before it is used: `fd` itself, or a copy in *made. */
static int above_stdio(int fd, int *made) {
    *made = -1;
    if (fd >= 3)
        return fd;
    *made = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    return *made;
}

int spawn_start(const spawn_spec *spec, pid_t *ret_pid, int *ret_pidfd) {
    spawn_spec s = *spec;
    int made[3] = {-1, -1, -1}, r = 0;
    for (int i = 0; i < 3 && r == 0; i++)
        if ((s.stdio[i] = above_stdio(spec->stdio[i], &made[i])) < 0)
            r = -errno;
    int errp[2] = {-1, -1};
    if (r == 0 && pipe2(errp, O_CLOEXEC) < 0)
        r = -errno;
    pid_t pid = -1;
    int pidfd = -1;
    if (r == 0) {
        child_args a = {.spec = &s, .daemon_pid = getpid(), .err_fd = errp[1], .nice = INT_MIN};
        errno = 0;
        int nice = getpriority(PRIO_PROCESS, 0);
        if (spec->nice_delta > 0 && (nice != -1 || errno == 0))
            a.nice = nice + spec->nice_delta > 19 ? 19 : nice + spec->nice_delta;
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        if (SPAWN_BY_FORK) {
            pid = -1;
            errno = ENOSYS;
        } else
            pid = clone(child_main, child_stack + sizeof(child_stack),
                        CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &a, &pidfd);
        if (pid < 0 && (errno == EINVAL || errno == ENOSYS)) {
            /* valgrind, ThreadSanitizer: the same steps in a copy of the
             * daemon. */
            a.forked = true;
            pid = fork();
            if (pid == 0)
                child_main(&a);
            if (pid > 0 && (pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) < 0) {
                r = -errno;
                (void)kill(pid, SIGKILL);
            }
        }
        if (pid < 0)
            r = -errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        close(errp[1]);
    }
    if (pid > 0) {
        int child_err = 0;
        ssize_t n;
        do
            n = read(errp[0], &child_err, sizeof(child_err));
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t)sizeof(child_err) && r == 0)
            r = child_err > 0 ? -child_err : -EIO;
        if (r < 0) {
            /* It exits (127) or was killed: reap it now. */
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
            }
            if (pidfd >= 0)
                close(pidfd);
        }
    }
    if (errp[0] >= 0)
        close(errp[0]);
    for (int i = 0; i < 3; i++)
        if (made[i] >= 0)
            close(made[i]);
    if (r < 0)
        return r;
    *ret_pid = pid;
    *ret_pidfd = pidfd;
    return 0;
}
