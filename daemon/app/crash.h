/*
 * The fatal-signal handler: when a task crashes the process (a stack
 * overflow into its guard page, SIGSEGV, SIGBUS, abort), one line naming the
 * task and its function is written with async-signal-safe calls, then the
 * signal is re-raised so the daemon dies non-zero and systemd restarts it.
 */
#ifndef AIOD_CRASH_H
#define AIOD_CRASH_H

/* Installs the handler on an alternate signal stack. 0 or -errno. */
int crash_install(void);

#endif
