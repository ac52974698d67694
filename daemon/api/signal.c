/*
 * Signals for plugins (signal.h).
 */
#include "api/signal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include <uv.h>

#include "alloc.h"
#include "base/list.h"
#include "core/sched.h"
#include "core/task.h"

/* A waiting task or a watch, on its signal's list. */
struct aiod_sigwatch {
    list node;
    int signo;
    task *t;
    /* The signal came while the task waited (it returns 0 even if a
     * cancellation came in the same loop iteration, as SIGTERM's does). */
    bool delivered;
    void (*cb)(int signo, void *data);
    void *data;
};

enum { SIG_HUP, SIG_TERM, SIG_USR1, SIG_USR2, N_SIGS };

static list watchers[N_SIGS] = {
    {&watchers[0], &watchers[0]},
    {&watchers[1], &watchers[1]},
    {&watchers[2], &watchers[2]},
    {&watchers[3], &watchers[3]},
};
/* Caught here: SIGUSR1 and SIGUSR2, from the daemon's start (signal_start)
 * or, in tests, from the first plugin that asks. */
static uv_signal_t usr[2];
static bool usr_started[2];

static int slot_of(int signo) {
    switch (signo) {
    case SIGHUP:
        return SIG_HUP;
    case SIGTERM:
        return SIG_TERM;
    case SIGUSR1:
        return SIG_USR1;
    case SIGUSR2:
        return SIG_USR2;
    default:
        return -1;
    }
}

void signal_deliver(int signo) {
    int s = slot_of(signo);
    if (s < 0)
        return;
    /* Taken aside: a callback may watch or unwatch. Those added during
     * this delivery wait for the next one. */
    list batch;
    list_move_all(&batch, &watchers[s]);
    while (!list_empty(&batch)) {
        aiod_sigwatch *w = container_of(list_first(&batch), aiod_sigwatch, node);
        list_remove(&w->node);
        list_insert_tail(&watchers[s], &w->node);
        if (w->t) {
            w->delivered = true;
            sched_wake(w->t, 0);
        } else
            w->cb(signo, w->data);
    }
}

static void on_usr(uv_signal_t *h, int signo) {
    (void)h;
    signal_deliver(signo);
}

static int catch_usr(int s) {
    if (s != SIG_USR1 && s != SIG_USR2)
        return 0;
    int i = s - SIG_USR1;
    if (usr_started[i])
        return 0;
    uv_signal_init(sched_loop(), &usr[i]);
    int r = uv_signal_start(&usr[i], on_usr, i == 0 ? SIGUSR1 : SIGUSR2);
    if (r < 0) {
        uv_close((uv_handle_t *)&usr[i], NULL);
        return r;
    }
    /* Catching a signal must not keep the loop running. */
    uv_unref((uv_handle_t *)&usr[i]);
    usr_started[i] = true;
    return 0;
}

int signal_start(void) {
    int r = catch_usr(SIG_USR1);
    return r < 0 ? r : catch_usr(SIG_USR2);
}

void signal_done(void) {
    for (int i = 0; i < 2; i++)
        if (usr_started[i]) {
            uv_close((uv_handle_t *)&usr[i], NULL);
            usr_started[i] = false;
        }
}

/* A new entry on the list of signal slot `s` (the caller sets t or cb). */
static int watch_add(int s, int signo, aiod_sigwatch **ret) {
    int r = catch_usr(s);
    if (r < 0)
        return r;
    aiod_sigwatch *w = alloc_calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->signo = signo;
    list_insert_tail(&watchers[s], &w->node);
    *ret = w;
    return 0;
}

static void on_wait_timeout(uv_timer_t *h) {
    sched_wake(h->data, -ETIMEDOUT);
}

int signal_wait(task *t, int signo, double timeout) {
    int s = slot_of(signo);
    if (s < 0 || !(timeout == timeout))
        return -EINVAL;
    if (task_cancel_due(t))
        return -ECANCELED;
    if (t->aio && timeout <= 0)
        return -ETIMEDOUT;
    if (timeout >= 1e9)
        timeout = 0;
    aiod_sigwatch *w = NULL;
    int r = watch_add(s, signo, &w);
    if (r < 0)
        return r;
    w->t = t;
    r = timeout > 0 ? sched_start_timer(t, on_wait_timeout, timeout) : 0;
    if (r == 0) {
        r = sched_suspend(t);
        if (timeout > 0)
            sched_stop_timer(t);
    }
    list_remove(&w->node);
    if (w->delivered) {
        /* A cancellation that came with the signal waits for the next
         * await point. */
        if (r == -ECANCELED && t->aio)
            t->run->must_cancel = true;
        r = 0;
    }
    free(w);
    return r;
}

int signal_watch_new(int signo, void (*cb)(int signo, void *data), void *data,
                     aiod_sigwatch **ret) {
    int s = slot_of(signo);
    if (s < 0 || !cb || !ret)
        return -EINVAL;
    aiod_sigwatch *w = NULL;
    int r = watch_add(s, signo, &w);
    if (r < 0)
        return r;
    w->cb = cb;
    w->data = data;
    *ret = w;
    return 0;
}

void signal_watch_free(aiod_sigwatch *w) {
    if (!w || w->t)
        return;
    list_remove(&w->node);
    free(w);
}
