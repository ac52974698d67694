/*
 * Signals for plugins (loop.add_signal_handler): SIGHUP, SIGTERM, SIGUSR1
 * and SIGUSR2. The daemon's own handlers of SIGHUP (reload) and SIGTERM
 * (shutdown) hand each delivery here first (signal_deliver); SIGUSR1 and
 * SIGUSR2 are caught here.
 */
#ifndef AIOD_API_SIGNAL_H
#define AIOD_API_SIGNAL_H

#include <aiod/plugin.h>

#include "base/forward.h"

/* Tells the waiting tasks and the watches of signo of a delivery. */
void signal_deliver(int signo);

/* Inside a task: see aiod_api.wait_signal. */
int signal_wait(task *t, int signo, double timeout);
/* See aiod_api.signal_watch and signal_unwatch. */
int signal_watch_new(int signo, void (*cb)(int signo, void *data), void *data, aiod_sigwatch **ret);
void signal_watch_free(aiod_sigwatch *w);

/* Catches SIGUSR1 and SIGUSR2 (at the daemon's start): a stray one does
 * nothing unless a plugin watches it. 0 or a negative errno. */
int signal_start(void);

/* Stops catching SIGUSR1/SIGUSR2 (at shutdown). */
void signal_done(void);

#endif
