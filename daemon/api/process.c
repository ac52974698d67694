/*
 * Child processes (proc.h).
 *
 * One heap `proc` per process holds every libuv object involved (the
 * pidfd's poll handle, three pipes, the kill timer, the stdin write
 * request) and heap copies of everything taken from the spec, because the
 * task that asked may be suspended — its stack copied aside — whenever
 * libuv calls back. The proc is freed in the close callback of its last
 * handle, never before: memory libuv may still touch is only released
 * through uv_close.
 *
 * The child is started by spawn.c, with clone(CLONE_VM | CLONE_VFORK)
 * rather than libuv's fork, whose copy of a large daemon's page tables (and
 * the copy-on-write faults after it) held the loop for tens of
 * milliseconds per process. The task waits until the child has exited (its
 * pidfd becomes readable; waitid reaps it: no zombies) and both output
 * pipes have reached end of file, as asyncio's communicate() does. Then it
 * closes every pipe (no descriptor survives the call) and builds the
 * result.
 *
 * The child runs in a session of its own (setsid), so it is the leader of
 * a new process group. Cancellation signals that group, which takes the
 * child's own children along (`sh -c 'a | b'`), first with SIGTERM, then
 * SIGKILL after the grace period, and the task keeps waiting — even though
 * it is cancelled — until the child is gone. When the task stops waiting
 * (the child exited and both pipes reached end of file, or it was
 * cancelled), whatever is left in the group — a background job that let
 * go of stdout and stderr — gets SIGKILL: nothing a task started outlives
 * it. That last kill comes after the leader was reaped; its group id stays
 * taken while any member lives, so it can only miss (ESRCH), short of the
 * pid numbers wrapping all the way round between the last member's death
 * and the kill.
 *
 * If the daemon itself dies (SIGKILL, a crash), the kernel sends SIGKILL to
 * its children: spawn.c sets PR_SET_PDEATHSIG in each child (after the
 * change to proc_user, which would clear it), and a pthread_atfork child
 * handler does the same in a child of any fork() of the daemon (a
 * plugin's). The kernel clears that setting when the child executes a
 * set-user-ID program, and grandchildren never had it; under systemd the
 * service's control group catches those (KillMode=control-group, the
 * default). Children also run LIMIT_PROC_NICE nice levels below the
 * daemon, so that a program that only computes cannot starve the loop.
 *
 * Output lines reach clients as valid UTF-8 (output_append replaces each
 * ill-formed sequence and each NUL with U+FFFD), cut at LIMIT_MAX_LINE
 * bytes on a character boundary; the captured result keeps the raw bytes
 * (a string when they are UTF-8, bytes otherwise).
 */
#include "api/process.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "alloc.h"
#include "api/spawn.h"
#include "system/config.h"
#include "core/coro.h"
#include "base/aiod_limits.h"
#include "base/list.h"
#include "base/utf8.h"
#include "system/log.h"
#include "macro.h"
#include "core/output.h"
#include "core/sched.h"
#include "core/task.h"

typedef struct proc proc;

/* One output pipe: what was captured, and the line being streamed. */
typedef struct capture {
    uv_pipe_t pipe;
    /* Output stream number for output_append: 1 stdout, 2 stderr. */
    int stream;
    /* Captured bytes (at most LIMIT_PROC_CAPTURE), and how many were
     * dropped beyond that or for lack of memory. */
    char *buf;
    size_t len;
    size_t cap;
    uint64_t dropped;
    /* The line being assembled for streaming; bytes past LIMIT_MAX_LINE
     * are cut, as output_append would. */
    char line[LIMIT_MAX_LINE];
    size_t line_len;
    /* Read but not yet streamed (the task's follower fell behind): at most
     * one read chunk. */
    char *pending;
    size_t pending_len;
    bool eof;
} capture;

struct proc {
    /* The child (spawn.c) and its pidfd, watched for its exit. */
    pid_t pid;
    int pidfd;
    uv_poll_t exit_watch;
    uv_pipe_t in;
    uv_write_t write_req;
    uv_timer_t kill_timer;
    /* Output flow: reading stopped while the task's own follower is
     * behind (output_held), until it catches up or hold_timer fires. */
    uv_timer_t hold_timer;
    output_waiter room;
    bool held;
    capture out[2];
    /* On the `procs` list until freed (for proc_shutdown). */
    list node;
    /* The waiting task (a reference), or NULL once proc_run returned. */
    task *t;
    /* Heap copies of the spec. */
    char **argv;
    char **envp;
    char *cwd;
    void *input;
    size_t input_len;
    uint32_t flags;
    uint64_t grace_ms;
    /* Bytes kept per stream (spec->capture_max, at most LIMIT_PROC_CAPTURE). */
    size_t capture_max;
    /* Handles initialised and not yet closed; the proc is freed at 0. */
    unsigned open;
    /* The child was started: pid is the id of its group. */
    bool spawned;
    /* The group got its final SIGKILL (reap_group). */
    bool group_killed;
    bool exited;
    /* SIGTERM was sent (cancellation); only the exit is awaited now. */
    bool killing;
    int64_t exit_status;
    int term_signal;
    /* One read buffer for both pipes: libuv fills it and calls back before
     * asking for another. */
    char readbuf[LIMIT_PROC_READ_CHUNK];
};

static list procs = {&procs, &procs};
static unsigned n_alive;

unsigned proc_count(void) {
    return n_alive;
}

/* ---- copies of the spec */

static void strv_free(char **v) {
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static bool env_blocked(const char *kv) {
    /* systemd's variables meant for the daemon alone: a child that saw them
     * could notify, take over sockets or feed the watchdog in our name. */
    return strncmp(kv, "NOTIFY_SOCKET=", 14) == 0 || strncmp(kv, "LISTEN_", 7) == 0 ||
           strncmp(kv, "WATCHDOG_", 9) == 0;
}

/* A heap copy of a NULL-terminated vector, leaving out blocked environment
 * entries when `env`. 0, -EINVAL (an env entry without '='), -E2BIG,
 * -ENOMEM. */
static int strv_copy(const char *const *src, bool env, char ***ret) {
    size_t n = 0;
    while (src[n]) {
        if (++n > LIMIT_PROC_STRINGS)
            return -E2BIG;
    }
    char **v = alloc_calloc(n + 1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (env && (!strchr(src[i], '=') || src[i][0] == '=')) {
            strv_free(v);
            return -EINVAL;
        }
        if (env && env_blocked(src[i]))
            continue;
        v[k] = alloc_strdup(src[i]);
        if (!v[k++]) {
            strv_free(v);
            return -ENOMEM;
        }
    }
    *ret = v;
    return 0;
}

static char *env_entry(const char *key, const char *fallback) {
    const char *val = getenv(key);
    if (!val || !*val)
        val = fallback;
    size_t n = strlen(key) + 1 + strlen(val) + 1;
    char *s = alloc_malloc(n);
    if (s)
        snprintf(s, n, "%s=%s", key, val);
    return s;
}

static char *env_pair(const char *key, const char *val) {
    size_t n = strlen(key) + 1 + strlen(val) + 1;
    char *s = alloc_malloc(n);
    if (s)
        snprintf(s, n, "%s=%s", key, val);
    return s;
}

/* The environment of a spec without one: PATH and LANG, the daemon's own
 * or a default; HOME the daemon's, or with proc_user that user's home, and
 * then its name as USER and LOGNAME (the programs run as it). */
static int env_minimal(char ***ret) {
    char **v = alloc_calloc(6, sizeof(*v));
    if (!v)
        return -ENOMEM;
    size_t n = 0;
    v[n++] = env_entry("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    v[n++] = env_entry("LANG", "C.UTF-8");
    if (cfg.proc_user && cfg.proc_home) {
        v[n++] = env_pair("HOME", cfg.proc_home);
        v[n++] = env_pair("USER", cfg.proc_user);
        v[n++] = env_pair("LOGNAME", cfg.proc_user);
    } else
        v[n++] = env_entry("HOME", "/");
    for (size_t i = 0; i < n; i++)
        if (!v[i]) {
            strv_free(v);
            return -ENOMEM;
        }
    *ret = v;
    return 0;
}

/* ---- lifetime */

static void proc_free(proc *p) {
    list_remove(&p->node);
    if (p->pidfd >= 0)
        close(p->pidfd);
    task_unref(p->t);
    strv_free(p->argv);
    strv_free(p->envp);
    free(p->cwd);
    free(p->input);
    free(p->out[0].buf);
    free(p->out[1].buf);
    free(p->out[0].pending);
    free(p->out[1].pending);
    free(p);
}

static void on_closed(uv_handle_t *h) {
    proc *p = h->data;
    if (--p->open == 0)
        proc_free(p);
}

static void close_handle(proc *p, uv_handle_t *h) {
    (void)p;
    if (!uv_is_closing(h))
        uv_close(h, on_closed);
}

/* ---- output */

static output *stream_output(proc *p) {
    return p->t && (p->flags & AIOD_PROC_STREAM_OUTPUT) ? task_output(p->t) : NULL;
}

static void flush_line(proc *p, capture *c) {
    output *o = stream_output(p);
    if (o) {
        size_t n = c->line_len;
        /* A full line was cut at LIMIT_MAX_LINE: drop the start of a
         * character it may end with, which output_append would turn into
         * U+FFFD. output_append makes the rest valid UTF-8. */
        if (n == sizeof(c->line))
            n = utf8_trim_partial(c->line, n);
        (void)output_append(o, c->stream, c->line, n);
    }
    c->line_len = 0;
}

static bool output_behind(proc *p) {
    output *o = stream_output(p);
    return o && output_held(o);
}

/* Work streamed per loop iteration by all processes together, in bytes:
 * each line costs LIMIT_PROC_STREAM_LINE_COST plus its length, once and
 * once more per follower it goes to; and at most LIMIT_PROC_STREAM_MS of
 * time. Twenty programs writing as fast as they can, each followed, then
 * take a few milliseconds of every iteration, not a hundred. What is over
 * waits for the next one. */
static uint64_t budget_iteration = UINT64_MAX;
static size_t budget_left;
/* The same budget in time, for when bytes cost more than they should (fresh
 * memory on a VM: the capture buffers, the output rings and the followers'
 * queues are all first touched here): when the iteration began streaming,
 * and lines streamed since the clock was last read. */
static uint64_t budget_start_ns;
static unsigned budget_unclocked;

static size_t fanout(proc *p) {
    output *o = stream_output(p);
    return 1 + (o ? output_sink_count(o) : 0);
}

/* What is left of this iteration's budget. */
static size_t budget_now(proc *p) {
    uint64_t now = uv_now(p->out[0].pipe.loop);
    if (now != budget_iteration) {
        budget_iteration = now;
        budget_left = LIMIT_PROC_STREAM_SLICE;
        budget_start_ns = uv_hrtime();
        budget_unclocked = 0;
    }
    return budget_left;
}

/* Streams the lines of `d`; returns how many bytes it used: fewer than `n`
 * when the task's own follower fell behind after a line, or the budget ran
 * out (the rest waits). */
static size_t stream_lines(proc *p, capture *c, const char *d, size_t n) {
    size_t used = 0, ways = fanout(p);
    if (budget_now(p) == 0)
        return 0;
    while (used < n) {
        const char *nl = memchr(d + used, '\n', n - used);
        size_t seg = nl ? (size_t)(nl - (d + used)) : n - used;
        size_t room = sizeof(c->line) - c->line_len;
        size_t k = seg < room ? seg : room;
        memcpy(c->line + c->line_len, d + used, k);
        c->line_len += k;
        if (!nl)
            return n;
        size_t cost = ways * (LIMIT_PROC_STREAM_LINE_COST + c->line_len);
        flush_line(p, c);
        used += seg + 1;
        budget_left -= budget_left < cost ? budget_left : cost;
        if (++budget_unclocked == 64) {
            budget_unclocked = 0;
            if (uv_hrtime() - budget_start_ns >= (uint64_t)LIMIT_PROC_STREAM_MS * 1000000u)
                budget_left = 0;
        }
        if (budget_left == 0 || output_behind(p))
            break;
    }
    return used;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void resume_reading(proc *p);

static void on_room(output_waiter *w) {
    resume_reading(container_of(w, proc, room));
}

static void on_hold_timer(uv_timer_t *h) {
    resume_reading(h->data);
}

/* Stops reading the child's output: until its follower catches up (or,
 * after output_hold_ms without progress, no longer holds it back), when the
 * output is held; else only until the next loop iteration (the budget of
 * lines ran out). The child then blocks writing to its full pipe, as it
 * would on a terminal. */
static void hold_reading(proc *p) {
    if (p->held)
        return;
    output *o = stream_output(p);
    if (!o)
        return;
    p->held = true;
    for (int i = 0; i < 2; i++)
        if (!p->out[i].eof)
            uv_read_stop((uv_stream_t *)&p->out[i].pipe);
    /* The next loop iteration: 1 ms, not 0, since libuv runs a timer armed
     * for "now" from a timer callback again in the same pass, with the same
     * clock, and the iteration's budget would never come back. */
    uint64_t ms = 1;
    if (output_held(o)) {
        output_wait_room(o, &p->room);
        /* What is left of output_hold_ms since the follower got stuck, not
         * all of it again: that held the task for up to twice the setting. */
        ms = output_hold_left_ms(o);
        if (ms == 0)
            ms = 1;
    }
    uv_timer_start(&p->hold_timer, on_hold_timer, ms, 0);
}

static void resume_reading(proc *p) {
    if (!p->held)
        return;
    p->held = false;
    output_waiter_cancel(&p->room);
    uv_timer_stop(&p->hold_timer);
    for (int i = 0; i < 2; i++) {
        capture *c = &p->out[i];
        if (!c->pending_len)
            continue;
        size_t used = stream_lines(p, c, c->pending, c->pending_len);
        c->pending_len -= used;
        memmove(c->pending, c->pending + used, c->pending_len);
        if (c->pending_len) {
            hold_reading(p);
            return;
        }
    }
    if (output_behind(p)) {
        hold_reading(p);
        return;
    }
    for (int i = 0; i < 2; i++)
        if (!p->out[i].eof && !uv_is_closing((uv_handle_t *)&p->out[i].pipe))
            (void)uv_read_start((uv_stream_t *)&p->out[i].pipe, on_alloc, on_read);
}

/* Keeps what could not be streamed yet (at most one read chunk). Without
 * memory for it, those lines are lost to the stream (never to the result). */
static void keep_pending(capture *c, const char *d, size_t n) {
    if (!c->pending)
        c->pending = alloc_malloc(LIMIT_PROC_READ_CHUNK);
    if (!c->pending || c->pending_len + n > LIMIT_PROC_READ_CHUNK)
        return;
    memcpy(c->pending + c->pending_len, d, n);
    c->pending_len += n;
}

static void capture_add(capture *c, size_t limit, const char *d, size_t n) {
    size_t room = limit - c->len;
    size_t take = n < room ? n : room;
    if (take > c->cap - c->len) {
        size_t cap = c->cap ? c->cap * 2 : LIMIT_PROC_CAPTURE_MIN;
        while (cap < c->len + take)
            cap *= 2;
        if (cap > limit)
            cap = limit;
        char *b = alloc_realloc(c->buf, cap);
        if (!b)
            take = 0;
        else {
            c->buf = b;
            c->cap = cap;
        }
    }
    if (take)
        memcpy(c->buf + c->len, d, take);
    c->len += take;
    c->dropped += n - take;
}

static bool settled(const proc *p) {
    return p->exited && (p->killing || (p->out[0].eof && p->out[1].eof));
}

static void maybe_wake(proc *p) {
    if (p->t && settled(p))
        sched_wake(p->t, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    proc *p = h->data;
    (void)suggested;
    *buf = uv_buf_init(p->readbuf, sizeof(p->readbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    proc *p = s->data;
    capture *c = (uv_pipe_t *)s == &p->out[0].pipe ? &p->out[0] : &p->out[1];
    if (nread > 0) {
        capture_add(c, p->capture_max, buf->base, (size_t)nread);
        if (!(p->flags & AIOD_PROC_STREAM_OUTPUT))
            return;
        size_t used = stream_lines(p, c, buf->base, (size_t)nread);
        if (used < (size_t)nread)
            keep_pending(c, buf->base + used, (size_t)nread - used);
        if (used < (size_t)nread || output_behind(p))
            hold_reading(p);
        return;
    }
    if (nread == 0)
        return; /* EAGAIN */
    /* UV_EOF, or an error that ends the stream just as well. */
    if (c->line_len > 0)
        flush_line(p, c);
    c->eof = true;
    close_handle(p, (uv_handle_t *)s);
    maybe_wake(p);
}

static void on_written(uv_write_t *req, int status) {
    proc *p = req->data;
    (void)status; /* EPIPE when the child did not read it all: its business */
    close_handle(p, (uv_handle_t *)&p->in);
}

/* ---- the child */

/* The pidfd became readable: the child exited; reap it. */
static void on_child_exit(uv_poll_t *h, int status, int events) {
    proc *p = h->data;
    (void)status;
    (void)events;
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, WEXITED | WNOHANG) < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return;
        /* ECHILD: reaped elsewhere (a plugin's waitpid(-1)); the status is
         * lost, the exit is not. */
        si.si_code = CLD_KILLED;
        si.si_status = SIGKILL;
    } else if (si.si_pid == 0)
        return; /* not yet */
    p->exited = true;
    if (si.si_code == CLD_EXITED)
        p->exit_status = si.si_status;
    else
        p->term_signal = si.si_status;
    n_alive--;
    uv_timer_stop(&p->kill_timer);
    close_handle(p, (uv_handle_t *)h);
    maybe_wake(p);
}

static void signal_child(proc *p, int sig) {
    if (p->exited)
        return;
    /* Not reaped yet, so its pid, which is its group's id, is still ours. */
    if (kill(-p->pid, sig) < 0)
        (void)kill(p->pid, sig);
}

/*
 * The end of the task's wait (or of the daemon): SIGKILL for whatever is
 * still in the child's process group, the leader exited or not. Once per
 * proc. Returns whether anything was there to signal.
 */
static bool reap_group(proc *p) {
    if (!p->spawned || p->group_killed)
        return false;
    p->group_killed = true;
    /* ESRCH: the group is empty, as it should be. */
    return kill(-p->pid, SIGKILL) == 0;
}

static void on_kill_timer(uv_timer_t *h) {
    proc *p = h->data;
    if (p->exited)
        return;
    log_task(LOG_WARNING, p->t, "process %d ('%s') still running %.1f s after SIGTERM; killing it",
             (int)p->pid, p->argv[0], (double)p->grace_ms / 1000.0);
    signal_child(p, SIGKILL);
}

static void start_kill(proc *p) {
    p->killing = true;
    signal_child(p, SIGTERM);
    uv_timer_start(&p->kill_timer, on_kill_timer, p->grace_ms, 0);
}

static int proc_new(const struct aiod_proc_spec *spec, proc **ret) {
    proc *p = alloc_calloc(1, sizeof(*p));
    int r;
    if (!p)
        return -ENOMEM;
    list_init(&p->node);
    p->pidfd = -1;
    r = strv_copy(spec->argv, false, &p->argv);
    if (r >= 0)
        r = spec->envp ? strv_copy(spec->envp, true, &p->envp) : env_minimal(&p->envp);
    if (r >= 0 && spec->cwd && !(p->cwd = alloc_strdup(spec->cwd)))
        r = -ENOMEM;
    if (r >= 0 && spec->stdin_len > 0) {
        p->input = alloc_malloc(spec->stdin_len);
        if (p->input) {
            memcpy(p->input, spec->stdin_data, spec->stdin_len);
            p->input_len = spec->stdin_len;
        } else
            r = -ENOMEM;
    }
    if (r < 0) {
        proc_free(p);
        return r;
    }
    p->flags = spec->flags;
    p->capture_max = LIMIT_PROC_CAPTURE;
    if (spec->struct_size >= offsetof(struct aiod_proc_spec, capture_max) + sizeof(size_t) &&
        spec->capture_max > 0 && spec->capture_max < LIMIT_PROC_CAPTURE)
        p->capture_max = spec->capture_max;
    double grace = spec->kill_grace > 0 ? spec->kill_grace : LIMIT_PROC_KILL_GRACE;
    double grace_ms = ceil(grace * 1000.0);
    p->grace_ms = grace_ms > (double)LIMIT_TIMER_MAX_MS ? LIMIT_TIMER_MAX_MS : (uint64_t)grace_ms;
    p->out[0].stream = 1;
    p->out[1].stream = 2;
    *ret = p;
    return 0;
}

/* ---- PR_SET_PDEATHSIG through pthread_atfork */

/* The daemon's pid, and the pid of the process that last called fork
 * (written by the prepare handler, inherited by the child). */
static pid_t daemon_pid;
static pid_t fork_parent;

static void atfork_prepare(void) {
    fork_parent = getpid();
}

/*
 * In the child of every fork() of the daemon itself (a plugin's, or
 * spawn.c's fallback under valgrind), before anything else: SIGKILL when
 * the daemon dies. Forks in those children (before they exec) are left
 * alone. Only async-signal-safe calls. If the daemon already died between
 * fork and prctl, nothing would send the signal: the child sends it to
 * itself.
 */
static void atfork_child(void) {
    if (fork_parent != daemon_pid)
        return;
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != daemon_pid)
        (void)raise(SIGKILL);
    /* Only stdio passes to the program: a library in a plugin may have
     * opened descriptors without O_CLOEXEC (libcurl's wake-up socketpair
     * does). libuv then puts the child's stdio on 0-2, which clears the
     * flag there. */
    (void)close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
    /* A busy program (`yes`) must not take the CPU from the event loop
     * that serves every client: children run a few nice levels below the
     * daemon (and, unprivileged, cannot raise themselves back). */
    errno = 0;
    int prio = getpriority(PRIO_PROCESS, 0);
    if (prio != -1 || errno == 0)
        (void)setpriority(PRIO_PROCESS, 0, prio + LIMIT_PROC_NICE);
}

static pthread_once_t pdeathsig_once = PTHREAD_ONCE_INIT;

static void pdeathsig_register(void) {
    daemon_pid = getpid();
    if (pthread_atfork(atfork_prepare, NULL, atfork_child) != 0)
        log_warning("cannot register the fork handler that ties children to the daemon's "
                    "life (out of memory); a child may outlive a daemon killed by SIGKILL");
}

/* Watches the child's pidfd for its exit. 0, or a libuv error (the watch
 * is then closed or was never made). */
static int watch_exit(proc *p, uv_loop_t *loop) {
    int r = uv_poll_init(loop, &p->exit_watch, p->pidfd);
    if (r < 0)
        return r;
    p->open++;
    r = uv_poll_start(&p->exit_watch, UV_READABLE, on_child_exit);
    if (r < 0)
        close_handle(p, (uv_handle_t *)&p->exit_watch);
    return r;
}

/* Initialises the handles and spawns. On failure every handle is being
 * closed and the proc will free itself. */
static int proc_start(proc *p, uv_loop_t *loop) {
    (void)pthread_once(&pdeathsig_once, pdeathsig_register);
    uv_pipe_init(loop, &p->in, 0);
    uv_pipe_init(loop, &p->out[0].pipe, 0);
    uv_pipe_init(loop, &p->out[1].pipe, 0);
    uv_timer_init(loop, &p->kill_timer);
    uv_timer_init(loop, &p->hold_timer);
    list_init(&p->room.node);
    p->room.fn = on_room;
    p->in.data = p->out[0].pipe.data = p->out[1].pipe.data = p->kill_timer.data = p;
    p->hold_timer.data = p;
    p->exit_watch.data = p->write_req.data = p;
    p->open = 5;
    list_insert_tail(&procs, &p->node);

    /* The child's ends [0] (stdin: read end; stdout, stderr: write ends)
     * and ours [1]; without input, stdin is /dev/null. */
    int fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    int r = 0;
    if (p->input_len) {
        int pp[2];
        if (pipe2(pp, O_CLOEXEC) < 0)
            r = -errno;
        else
            fds[0][0] = pp[0], fds[0][1] = pp[1];
    } else if ((fds[0][0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
        r = -errno;
    for (int i = 1; i < 3 && r == 0; i++) {
        int pp[2];
        if (pipe2(pp, O_CLOEXEC) < 0)
            r = -errno;
        else
            fds[i][0] = pp[1], fds[i][1] = pp[0];
    }
    if (r == 0) {
        /* proc_user: the child drops to it (and its primary group, with no
         * supplementary groups) before exec, so it can neither read the
         * daemon's memory nor signal it. */
        spawn_spec spec = {
            .file = p->argv[0],
            .argv = p->argv,
            .envp = p->envp,
            .cwd = p->cwd,
            .stdio = {fds[0][0], fds[1][0], fds[2][0]},
            .set_ids = cfg.proc_user != NULL,
            .uid = cfg.proc_uid,
            .gid = cfg.proc_gid,
            .nice_delta = LIMIT_PROC_NICE,
        };
        r = spawn_start(&spec, &p->pid, &p->pidfd);
    }
    for (int i = 0; i < 3; i++)
        if (fds[i][0] >= 0)
            close(fds[i][0]);
    if (r == 0 && (r = watch_exit(p, loop)) < 0) {
        /* Without a watch its exit would never be seen: the child goes now,
         * reaped here, and the spawn counts as failed. */
        (void)kill(-p->pid, SIGKILL);
        (void)kill(p->pid, SIGKILL);
        while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR) {
        }
        p->pid = 0;
    }
    /* Our ends go to libuv, which closes them with the handles. */
    uv_pipe_t *ours[3] = {&p->in, &p->out[0].pipe, &p->out[1].pipe};
    for (int i = 0; i < 3; i++) {
        if (fds[i][1] < 0)
            continue;
        if (r == 0 && uv_pipe_open(ours[i], fds[i][1]) == 0)
            continue;
        close(fds[i][1]);
    }
    if (p->pid > 0) {
        n_alive++;
        p->spawned = true;
    }
    if (r < 0 && !p->spawned) {
        p->exited = true;
        goto fail;
    }
    if (r == 0)
        r = uv_read_start((uv_stream_t *)&p->out[0].pipe, on_alloc, on_read);
    if (r == 0)
        r = uv_read_start((uv_stream_t *)&p->out[1].pipe, on_alloc, on_read);
    if (r < 0) {
        /* Cannot happen with fresh pipes and a pidfd; if it did, the child
         * must go, and its exit is still awaited. */
        signal_child(p, SIGKILL);
        p->killing = true;
        return r;
    }
    if (p->input_len) {
        uv_buf_t b = uv_buf_init(p->input, (unsigned)p->input_len);
        if (uv_write(&p->write_req, (uv_stream_t *)&p->in, &b, 1, on_written) < 0)
            close_handle(p, (uv_handle_t *)&p->in);
    } else
        close_handle(p, (uv_handle_t *)&p->in);
    return 0;

fail:
    close_handle(p, (uv_handle_t *)&p->in);
    close_handle(p, (uv_handle_t *)&p->out[0].pipe);
    close_handle(p, (uv_handle_t *)&p->out[1].pipe);
    close_handle(p, (uv_handle_t *)&p->kill_timer);
    close_handle(p, (uv_handle_t *)&p->hold_timer);
    return r;
}

/* The task stops waiting: nothing may touch it any more; close what is
 * left (the process handle was closed at its exit). */
static void proc_release(proc *p) {
    output_waiter_cancel(&p->room);
    p->held = false;
    p->t = task_unref(p->t);
    close_handle(p, (uv_handle_t *)&p->hold_timer);
    close_handle(p, (uv_handle_t *)&p->in);
    close_handle(p, (uv_handle_t *)&p->out[0].pipe);
    close_handle(p, (uv_handle_t *)&p->out[1].pipe);
    close_handle(p, (uv_handle_t *)&p->kill_timer);
}

/*
 * Suspends like sched_suspend but also once the task is cancelled: after
 * SIGTERM the task must still wait for the child to be gone, while
 * sched_suspend returns -ECANCELED at once for a cancelled task. The same
 * protocol as sched_suspend (sched_wake resumes it, the first wake wins).
 * (Belongs in sched.c as sched_suspend_uncancellable; kept here while that
 * file has another owner.)
 */
static int suspend_through_cancel(task *t) {
    t->run->suspended = true;
    t->run->wake_pending = false;
    t->run->wake_status = 0;
    coro_yield();
    return t->run->wake_status;
}

/* The captured bytes as a value: a string when they are UTF-8, taking
 * the capture buffer (up to 16 MiB: copying it would hold the loop for
 * its page faults), else bytes. */
static Aiod__Value *output_value(capture *c) {
    if (c->len == 0)
        return pbvalue_string("");
    /* Cut by the capture limit: a character the cut fell in is left out
     * (still counted in the stream's bytes), so that text stays a string. */
    if (c->dropped)
        c->len = utf8_trim_partial(c->buf, c->len);
    if (c->len < c->cap) {
        c->buf[c->len] = '\0';
        Aiod__Value *v = pbvalue_string_take(c->buf, c->len);
        if (v) {
            c->buf = NULL;
            c->len = c->cap = 0;
            return v;
        }
    } else {
        Aiod__Value *v = pbvalue_stringn(c->buf, c->len);
        if (v)
            return v;
    }
    if (pbvalue_utf8_valid(c->buf, c->len) && !memchr(c->buf, '\0', c->len))
        return NULL; /* a string, but out of memory */
    return pbvalue_bytes(c->buf, c->len);
}

static int result_value(proc *p, Aiod__Value **ret) {
    Aiod__Value *m = pbvalue_map();
    if (!m)
        return -ENOMEM;
    int64_t code = p->term_signal ? -(int64_t)p->term_signal : p->exit_status;
    /* Counted first: output_value may take the capture buffers and trim
     * them. */
    uint64_t total[2] = {p->out[0].len + p->out[0].dropped, p->out[1].len + p->out[1].dropped};
    int r = pbvalue_map_set(m, "exit", pbvalue_int(code));
    if (r >= 0)
        r = pbvalue_map_set(m, "stdout", output_value(&p->out[0]));
    if (r >= 0)
        r = pbvalue_map_set(m, "stderr", output_value(&p->out[1]));
    static const char *const keys[2][2] = {{"stdout_truncated", "stdout_bytes"},
                                           {"stderr_truncated", "stderr_bytes"}};
    for (int i = 0; i < 2 && r >= 0; i++) {
        if (!p->out[i].dropped)
            continue;
        r = pbvalue_map_set(m, keys[i][0], pbvalue_bool(true));
        if (r >= 0)
            r = pbvalue_map_set(m, keys[i][1], pbvalue_int((int64_t)total[i]));
    }
    if (r < 0) {
        pbvalue_free(m);
        return r == -EINVAL ? -ENOMEM : r; /* a NULL item: out of memory */
    }
    *ret = m;
    return 0;
}

static void spawn_error(task *t, const proc *p, int r) {
    char msg[512];
    if (r == UV_ENOENT && p->cwd)
        snprintf(msg, sizeof(msg), "cannot run '%s' in '%s': %s (program or directory not found)",
                 p->argv[0], p->cwd, uv_strerror(r));
    else if (r == UV_EACCES && p->cwd)
        /* The child cannot say which: the directory (which proc_user may
         * not enter) or the program. */
        snprintf(msg, sizeof(msg),
                 "cannot run '%s' in '%s': %s (the program, or the directory%s%s%s)", p->argv[0],
                 p->cwd, uv_strerror(r), cfg.proc_user ? ", as proc_user '" : "",
                 cfg.proc_user ? cfg.proc_user : "", cfg.proc_user ? "'" : "");
    else
        snprintf(msg, sizeof(msg), "cannot run '%s': %s", p->argv[0], uv_strerror(r));
    task_raise(t, r, r == UV_ENOENT ? "FileNotFoundError" : "OSError", msg);
}

int proc_run(task *t, const struct aiod_proc_spec *spec, Aiod__Value **ret_result) {
    if ((spec->flags & ~AIOD_PROC_STREAM_OUTPUT) || (spec->stdin_len && !spec->stdin_data) ||
        spec->stdin_len > UINT32_MAX || !(spec->kill_grace >= 0) || !isfinite(spec->kill_grace))
        return -EINVAL;
    if (task_cancel_due(t))
        return -ECANCELED;

    proc *p = NULL;
    int r = proc_new(spec, &p);
    if (r < 0)
        return r;
    p->t = task_ref(t);
    r = proc_start(p, sched_loop());
    if (r < 0) {
        spawn_error(t, p, r);
        proc_release(p);
        return r;
    }

    bool cancelled = false;
    while (!settled(p)) {
        int w = p->killing ? suspend_through_cancel(t) : sched_suspend(t);
        if (w < 0 && !p->killing) {
            /* Only cancellation wakes us with an error. */
            cancelled = true;
            if (p->exited)
                break; /* gone already; a grandchild holds the pipes */
            start_kill(p);
        }
    }
    if (reap_group(p))
        log_task(LOG_NOTICE, t,
                 "process group %d of '%s' still had processes when the task stopped waiting; "
                 "killed them",
                 (int)p->pid, p->argv[0]);
    r = cancelled ? -ECANCELED : result_value(p, ret_result);
    if (p->out[0].dropped || p->out[1].dropped)
        log_task(LOG_NOTICE, t,
                 "process '%s' wrote more than %u bytes; %llu bytes of stdout and %llu of "
                 "stderr dropped",
                 p->argv[0], (unsigned)p->capture_max, (unsigned long long)p->out[0].dropped,
                 (unsigned long long)p->out[1].dropped);
    proc_release(p);
    return r;
}

void proc_shutdown(void) {
    list *pos, *tmp;
    list_foreach_safe(pos, tmp, &procs) {
        proc *p = container_of(pos, proc, node);
        (void)reap_group(p);
        if (!p->exited) {
            p->exited = true;
            n_alive--;
        }
        if (p->spawned) /* its exit watch exists */
            close_handle(p, (uv_handle_t *)&p->exit_watch);
        proc_release(p);
    }
}
