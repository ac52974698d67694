/*
 * Starting a program from the daemon without copying its memory.
 *
 * fork() copies the daemon's page tables and marks every page copy-on-write,
 * so the daemon pays for each page it writes next: with a few hundred MB
 * resident, one fork held the loop 10-50 ms on a VM, and a burst of twenty
 * held it for seconds. spawn_start uses clone(CLONE_VM | CLONE_VFORK), as
 * posix_spawn does, at the same cost whatever the daemon's size, and does
 * in the child what posix_spawn cannot: the parent-death signal, a lower
 * priority, and the change of user.
 *
 * The child, before it executes the program:
 *   - every signal back to its default action, none blocked;
 *   - a session of its own (setsid): it leads a new process group;
 *   - stdin, stdout and stderr from the descriptors given; every other
 *     descriptor closed at exec;
 *   - with `set_ids`: no supplementary groups, then `gid`, then `uid`;
 *   - PR_SET_PDEATHSIG SIGKILL, tied to the daemon (after the change of
 *     user, which would clear it), and killed at once if the daemon is
 *     already gone;
 *   - `nice_delta` nice levels below the daemon;
 *   - `cwd` as its directory, if set;
 *   - `file` run with `argv` and `envp`; a file without a '/' is looked up
 *     in the PATH of `envp` (else /bin:/usr/bin), as execvp does.
 *
 * Where clone cannot do that (valgrind refuses CLONE_VM without a thread;
 * ThreadSanitizer takes any clone for a fork), a plain fork does the same
 * steps.
 */
#ifndef AIOD_API_SPAWN_H
#define AIOD_API_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct spawn_spec {
    const char *file;
    char *const *argv; /* NULL-terminated */
    char *const *envp; /* NULL-terminated */
    const char *cwd;   /* NULL: the daemon's */
    /* The child's stdin, stdout and stderr: open descriptors, borrowed. */
    int stdio[3];
    bool set_ids;
    uid_t uid;
    gid_t gid;
    int nice_delta;
} spawn_spec;

/*
 * Starts the program. 0, with *ret_pid and *ret_pidfd (a pidfd, O_CLOEXEC,
 * owned by the caller: it becomes readable when the child exits, and
 * waitid(P_PIDFD) reaps it); or a negative errno: why the program could not
 * be executed (the child was reaped), or -ENOMEM, -EAGAIN, -EMFILE.
 * Loop thread only.
 */
int spawn_start(const spawn_spec *spec, pid_t *ret_pid, int *ret_pidfd);

#endif
