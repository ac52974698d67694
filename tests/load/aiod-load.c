/*
 * aiod-load: a bounded load test against a daemon it starts itself.
 *
 * Well-behaved clients pipeline tasks over raw, non-blocking connections
 * (framing from proto/frame.h, messages from the generated protobuf-c code),
 * all driven by one epoll loop, while misbehaving clients run beside them:
 *
 *   garbage  sends undecodable bytes (the daemon answers with an Error and
 *            closes);
 *   half     says hello, sends half a frame and then nothing, keeping the
 *            socket open until the round ends;
 *   abandon  submits attached `demo.sleep 30` tasks, awaits them and
 *            disconnects at once (the tasks must be cancelled);
 *   slow     asks for results of 256 KiB that all come at once, more than
 *            the daemon's drop line, and never reads (the daemon must drop
 *            it past max_write_queue plus one max_frame frame).
 *
 * Checks: every well-behaved request is answered exactly once with the right
 * result; misbehaving clients get what the protocol promises (the slow reader
 * is dropped and the daemon logs why); no task is left unfinished after a
 * round (the abandoned attached tasks were cancelled); the daemon still serves
 * afterwards and exits 0 on SIGTERM; and its RSS after the measured round,
 * once every client has gone, is within 15% of the baseline taken after the
 * warm-up rounds of the same shape (about 7 MB here: a leak of 100 bytes per
 * task, 10 MB over the round's 100,000, fails it; measured rounds without one
 * came out between -1% and +8%). glibc keeps most of what a burst freed
 * (RSS after a round is close to the round's peak) and the retained outcomes
 * of the last retain_count tasks are spread over the heap, so RSS creeps for
 * a few rounds before it settles: hence four warm-up rounds, so that the
 * baseline counts the allocator's caches.
 *
 * Each well-behaved client keeps --window tasks in flight (100 by default).
 * With --window 0 every task is sent at once (100,000 tasks in flight): see
 * docs/security.md for what that shows about retain_count.
 *
 * With --valgrind PATH the daemon runs under memcheck (leaks and errors make
 * valgrind exit 99) and the RSS check is skipped.
 *
 * The daemon is started with --socket DIR/aiod.sock --plugin-dir DIR
 * --no-default-plugins, and ready means a READY=1 datagram on a
 * NOTIFY_SOCKET this program binds. Its stderr is read in the same loop,
 * kept, and printed when something fails.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aiod-pb.h"
#include "frame.h"

/* Largest frame we accept from the daemon (it never sends more than its own
 * max_frame, 4 MiB by default). */
#define CLIENT_MAX_FRAME (8u * 1024 * 1024)
#define READ_CHUNK (64u * 1024)
/* Attached tasks each abandoning client leaves behind. */
#define ABANDON_TASKS 10u
/* The slow reader's tasks: each returns this many bytes after this long,
 * long after the daemon has read all of its requests (valgrind too). */
#define SLOW_RESULT (256u * 1024)
#define SLOW_SLEEP 2.0

/* ---------------------------------------------------------------- options */

typedef enum { K_GOOD, K_GARBAGE, K_HALF, K_ABANDON, K_SLOW } client_kind;
static const char *const kind_names[] = {"good", "garbage", "half", "abandon", "slow"};

static struct {
    const char *aiod;
    const char *plugin_dir;
    const char *valgrind;
    unsigned clients;
    unsigned tasks;
    unsigned bad;
    unsigned window;
    unsigned rounds;
    unsigned warmup_rounds;
    size_t write_queue;
    double round_timeout;
    double rss_tolerance;
    bool keep;
    unsigned kinds; /* bit per misbehaving kind */
    const char *daemon_args[8];
    unsigned n_daemon_args;
} opt = {
    .kinds = 0xf << K_GARBAGE,
    .clients = 200,
    .tasks = 500,
    .bad = 20,
    .window = 100,
    .rounds = 1,
    .warmup_rounds = 4,
    .write_queue = 64 * 1024,
    .round_timeout = 90,
    .rss_tolerance = 0.15,
};

/* ---------------------------------------------------------------- failures */

static unsigned n_failures;
/* Well-behaved requests answered by an Error, per round, and the first. */
static unsigned n_task_errors;
static char first_task_error[512];

static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failf(const char *fmt, ...) {
    va_list ap;
    n_failures++;
    if (n_failures > 20)
        return;
    fprintf(stderr, "aiod-load: FAIL: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- the daemon */

static struct {
    pid_t pid;
    int err_fd; /* its stderr, read in the loop */
    char *log;  /* everything it wrote */
    size_t log_len, log_cap;
    bool err_eof;
    char dir[64];
    char sock[96];
} d = {.pid = -1, .err_fd = -1};

static void log_append(const char *p, size_t n) {
    if (d.log_len + n + 1 > d.log_cap) {
        size_t cap = d.log_cap ? d.log_cap : 65536;
        while (cap < d.log_len + n + 1)
            cap *= 2;
        char *nl = realloc(d.log, cap);
        if (!nl)
            return;
        d.log = nl;
        d.log_cap = cap;
    }
    memcpy(d.log + d.log_len, p, n);
    d.log_len += n;
    d.log[d.log_len] = '\0';
}

/* Reads what the daemon wrote to stderr; false at EOF. */
static bool drain_daemon_log(void) {
    char buf[65536];
    for (;;) {
        ssize_t n = read(d.err_fd, buf, sizeof(buf));
        if (n > 0) {
            log_append(buf, (size_t)n);
            continue;
        }
        if (n == 0) {
            d.err_eof = true;
            return false;
        }
        if (errno == EINTR)
            continue;
        return true; /* EAGAIN */
    }
}

static unsigned log_count(const char *needle) {
    unsigned n = 0;
    for (const char *p = d.log; p && (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void print_daemon_log(void) {
    if (d.err_fd >= 0)
        drain_daemon_log();
    if (!d.log_len)
        return;
    const char *p = d.log;
    if (d.log_len > 20000) {
        p = d.log + d.log_len - 20000;
        fprintf(stderr, "--- daemon log (last 20000 of %zu bytes):\n", d.log_len);
    } else {
        fprintf(stderr, "--- daemon log:\n");
    }
    fputs(p, stderr);
    fprintf(stderr, "--- end of daemon log\n");
}

static void cleanup(void) {
    if (d.pid > 0) {
        kill(d.pid, SIGKILL);
        waitpid(d.pid, NULL, 0);
        d.pid = -1;
    }
    if (d.sock[0])
        unlink(d.sock);
    if (d.dir[0] && !opt.keep) {
        char p[128];
        const char *names[] = {"notify.sock", "state/next-id", "state/next-id.lock", "state"};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            snprintf(p, sizeof(p), "%s/%s", d.dir, names[i]);
            if (unlink(p) < 0 && errno == EISDIR)
                rmdir(p);
        }
        rmdir(d.dir);
    }
}

static void die(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "aiod-load: FAIL: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    print_daemon_log();
    cleanup();
    exit(1);
}

static long status_kib(const char *field) {
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)d.pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    if (!f)
        return -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* The most a Unix socket's send buffer takes (the daemon sets none): the
 * slow reader's output must exceed it before the daemon queues any. */
static size_t socket_buffer(void) {
    FILE *f = fopen("/proc/sys/net/core/wmem_default", "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    if (v <= 0)
        die("cannot read /proc/sys/net/core/wmem_default");
    return (size_t)v;
}

/* Starts the daemon and waits for READY=1 on our NOTIFY_SOCKET. */
static void start_daemon(void) {
    snprintf(d.dir, sizeof(d.dir), "/tmp/aiod-load-XXXXXX");
    if (!mkdtemp(d.dir))
        die("mkdtemp: %s", strerror(errno));
    snprintf(d.sock, sizeof(d.sock), "%s/aiod.sock", d.dir);
    char notify[96];
    snprintf(notify, sizeof(notify), "%s/notify.sock", d.dir);

    int ns = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", notify);
    if (ns < 0 || bind(ns, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("binding %s: %s", notify, strerror(errno));

    int errp[2];
    if (pipe2(errp, O_CLOEXEC) < 0)
        die("pipe: %s", strerror(errno));

    char wq[32];
    snprintf(wq, sizeof(wq), "%zu", opt.write_queue);
    const char *argv[48];
    size_t n = 0;
    if (opt.valgrind) {
        argv[n++] = opt.valgrind;
        argv[n++] = "--tool=memcheck";
        argv[n++] = "--leak-check=full";
        argv[n++] = "--show-leak-kinds=definite,indirect,possible";
        argv[n++] = "--errors-for-leak-kinds=definite,indirect,possible";
        argv[n++] = "--error-exitcode=99";
        argv[n++] = "--track-fds=no";
    }
    argv[n++] = opt.aiod;
    argv[n++] = "--socket";
    argv[n++] = d.sock;
    argv[n++] = "--plugin-dir";
    argv[n++] = opt.plugin_dir;
    argv[n++] = "--no-default-plugins";
    argv[n++] = "--max-write-queue";
    argv[n++] = wq;
    /* Its own id counter; successes unlogged (up to a million tasks). */
    char state[sizeof(d.dir) + 8];
    snprintf(state, sizeof(state), "%s/state", d.dir);
    argv[n++] = "--state-dir";
    argv[n++] = state;
    argv[n++] = "--log-outcomes";
    argv[n++] = "failures";
    for (unsigned i = 0; i < opt.n_daemon_args; i++)
        argv[n++] = opt.daemon_args[i];
    argv[n] = NULL;

    fprintf(stderr, "aiod-load: starting");
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %s", argv[i]);
    fputc('\n', stderr);

    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(errp[1], STDERR_FILENO);
        int null = open("/dev/null", O_RDWR);
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        static const char *const drop[] = {"AIOD_SOCKET",    "LISTEN_FDS",    "LISTEN_PID",
                                           "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID",
                                           "JOURNAL_STREAM"};
        for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
            unsetenv(drop[i]);
        setenv("NOTIFY_SOCKET", notify, 1);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    d.pid = pid;
    close(errp[1]);
    d.err_fd = errp[0];
    fcntl(d.err_fd, F_SETFL, O_NONBLOCK);

    /* Events only: a datagram on the notify socket, or the daemon's stderr
     * closing (it died). */
    double deadline = now() + (opt.valgrind ? 120 : 30);
    for (;;) {
        double left = deadline - now();
        if (left <= 0)
            die("no READY=1 from aiod within %s s", opt.valgrind ? "120" : "30");
        struct pollfd pf[2] = {{.fd = ns, .events = POLLIN}, {.fd = d.err_fd, .events = POLLIN}};
        if (poll(pf, d.err_eof ? 1 : 2, (int)(left * 1000) + 1) < 0 && errno != EINTR)
            die("poll: %s", strerror(errno));
        if (pf[1].revents && !drain_daemon_log()) {
            int st;
            waitpid(d.pid, &st, 0);
            d.pid = -1;
            die("aiod exited (status 0x%x) before READY=1", st);
        }
        if (pf[0].revents & POLLIN) {
            char msg[4096];
            ssize_t r = recv(ns, msg, sizeof(msg) - 1, 0);
            if (r > 0) {
                msg[r] = '\0';
                bool ready = false;
                for (char *save, *l = strtok_r(msg, "\n", &save); l;
                     l = strtok_r(NULL, "\n", &save))
                    ready |= strcmp(l, "READY=1") == 0;
                if (ready)
                    break;
            }
        }
    }
    close(ns);
    unlink(notify);
}

/* SIGTERM, then the exit status (valgrind's, under valgrind). */
static int stop_daemon(double timeout) {
    kill(d.pid, SIGTERM);
    double deadline = now() + timeout;
    /* The daemon's stderr closes when it exits: wait for that event, then
     * reap. */
    while (!d.err_eof) {
        double left = deadline - now();
        if (left <= 0) {
            failf("aiod did not exit within %.0f s of SIGTERM", timeout);
            kill(d.pid, SIGKILL);
            break;
        }
        struct pollfd pf = {.fd = d.err_fd, .events = POLLIN};
        if (poll(&pf, 1, (int)(left * 1000) + 1) > 0)
            drain_daemon_log();
    }
    int st;
    waitpid(d.pid, &st, 0);
    d.pid = -1;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

/* ---------------------------------------------------------------- messages */

/* Packs `m` as one frame at the end of a growable buffer. */
static void put_frame(uint8_t **buf, size_t *len, size_t *cap, const Aiod__ClientMessage *m) {
    size_t size = aiod__client_message__get_packed_size(m);
    if (*len + FRAME_HEADER_SIZE + size > *cap) {
        size_t ncap = *cap ? *cap : 4096;
        while (ncap < *len + FRAME_HEADER_SIZE + size)
            ncap *= 2;
        uint8_t *nb = realloc(*buf, ncap);
        if (!nb)
            die("out of memory");
        *buf = nb;
        *cap = ncap;
    }
    frame_put_header(*buf + *len, (uint32_t)size);
    aiod__client_message__pack(m, *buf + *len + FRAME_HEADER_SIZE);
    *len += FRAME_HEADER_SIZE + size;
}

static int64_t expected_value(unsigned client, unsigned task) {
    return (int64_t)client * 1000000 + task + 1;
}

static const char *server_kind(const Aiod__ServerMessage *m) {
    switch (m->body_case) {
    case AIOD__SERVER_MESSAGE__BODY_ERROR:
        return "Error";
    case AIOD__SERVER_MESSAGE__BODY_HELLO:
        return "HelloReply";
    case AIOD__SERVER_MESSAGE__BODY_SUBMITTED:
        return "Submitted";
    case AIOD__SERVER_MESSAGE__BODY_OUTCOMES:
        return "Outcomes";
    case AIOD__SERVER_MESSAGE__BODY_OUTPUT:
        return "Output";
    case AIOD__SERVER_MESSAGE__BODY_OUTPUT_END:
        return "OutputEnd";
    default:
        return "other";
    }
}

/* ---------------------------------------------------------------- clients */

enum { R_NONE, R_HELLO, R_GATHER, R_SUBMIT, R_AWAIT, R_ABANDON_SUBMIT, R_ABANDON_AWAIT };

typedef struct request {
    uint32_t task;
    uint8_t type;
    uint8_t answered;
} request;

typedef struct client {
    int fd;
    client_kind kind;
    unsigned idx;
    frame_reader rd;
    uint8_t *wbuf;
    size_t wlen, woff, wcap;
    bool want_out;
    uint64_t next_id;
    request *reqs; /* by request id */
    size_t n_reqs;
    uint8_t *done; /* per task: times completed */
    unsigned next_task, in_window, n_done;
    unsigned n_errors, n_replies;
    uint64_t abandon_ids[ABANDON_TASKS];
    unsigned n_abandon;
    bool hello_ok;
    bool eof;
    bool finished;
    bool closed;
} client;

static int ep;
static client *clients;
static unsigned n_clients;
static unsigned n_open_unfinished;

static uint64_t new_request(client *c, uint8_t type, uint32_t task) {
    uint64_t id = ++c->next_id;
    if (id >= c->n_reqs) {
        size_t n = c->n_reqs ? c->n_reqs * 2 : 64;
        request *r = realloc(c->reqs, n * sizeof(*r));
        if (!r)
            die("out of memory");
        memset(r + c->n_reqs, 0, (n - c->n_reqs) * sizeof(*r));
        c->reqs = r;
        c->n_reqs = n;
    }
    c->reqs[id] = (request){.task = task, .type = type};
    return id;
}

static void update_events(client *c) {
    struct epoll_event ev = {.data.ptr = c};
    ev.events = EPOLLRDHUP;
    if (c->kind != K_SLOW)
        ev.events |= EPOLLIN;
    if (c->woff < c->wlen)
        ev.events |= EPOLLOUT;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    c->want_out = c->woff < c->wlen;
}

static void client_finish(client *c) {
    if (c->finished)
        return;
    c->finished = true;
    n_open_unfinished--;
}

static void client_close(client *c) {
    if (c->closed)
        return;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->closed = true;
    c->fd = -1;
}

/* Writes what is queued; false when the daemon has closed on us. */
static bool flush_out(client *c) {
    while (c->woff < c->wlen) {
        ssize_t w = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            if (c->kind == K_GOOD)
                failf("good client %u: write: %s", c->idx, strerror(errno));
            c->woff = c->wlen = 0;
            return false;
        }
        c->woff += (size_t)w;
    }
    if (c->woff == c->wlen)
        c->woff = c->wlen = 0;
    if ((c->woff < c->wlen) != c->want_out)
        update_events(c);
    return true;
}

static void send_msg(client *c, Aiod__ClientMessage *m) {
    put_frame(&c->wbuf, &c->wlen, &c->wcap, m);
}

static void queue_hello(client *c) {
    Aiod__Hello h = AIOD__HELLO__INIT;
    h.protocol_version = AIOD_PROTOCOL_VERSION;
    h.client_name = (char *)"aiod-load";
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    m.request_id = new_request(c, R_HELLO, 0);
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_HELLO;
    m.hello = &h;
    send_msg(c, &m);
}

/* Good clients: even tasks are a Gather of one `demo.echo V` (one request,
 * answered by Outcomes); odd tasks a Submit of `demo.sleep 0.01 V` followed,
 * once Submitted arrives, by an Await (two requests). */
static void queue_task(client *c, unsigned task) {
    Aiod__Value v = AIOD__VALUE__INIT, secs = AIOD__VALUE__INIT;
    v.kind_case = AIOD__VALUE__KIND_INT_VALUE;
    v.int_value = expected_value(c->idx, task);
    Aiod__Call call = AIOD__CALL__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    if (task % 2 == 0) {
        Aiod__Value *args[1] = {&v};
        call.function = (char *)"demo.echo";
        call.n_args = 1;
        call.args = args;
        Aiod__GatherItem item = AIOD__GATHER_ITEM__INIT;
        item.item_case = AIOD__GATHER_ITEM__ITEM_CALL;
        item.call = &call;
        Aiod__GatherItem *items[1] = {&item};
        Aiod__Gather g = AIOD__GATHER__INIT;
        g.n_items = 1;
        g.items = items;
        m.request_id = new_request(c, R_GATHER, task);
        m.body_case = AIOD__CLIENT_MESSAGE__BODY_GATHER;
        m.gather = &g;
        send_msg(c, &m);
    } else {
        secs.kind_case = AIOD__VALUE__KIND_DOUBLE_VALUE;
        secs.double_value = 0.01;
        Aiod__Value *args[2] = {&secs, &v};
        call.function = (char *)"demo.sleep";
        call.n_args = 2;
        call.args = args;
        Aiod__Submit s = AIOD__SUBMIT__INIT;
        s.call = &call;
        m.request_id = new_request(c, R_SUBMIT, task);
        m.body_case = AIOD__CLIENT_MESSAGE__BODY_SUBMIT;
        m.submit = &s;
        send_msg(c, &m);
    }
    c->in_window++;
}

static void queue_await(client *c, uint8_t type, uint32_t task, uint64_t *ids, size_t n) {
    Aiod__Await a = AIOD__AWAIT__INIT;
    a.n_task_ids = n;
    a.task_ids = ids;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    m.request_id = new_request(c, type, task);
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_AWAIT;
    m.await = &a;
    send_msg(c, &m);
}

static void fill_window(client *c) {
    unsigned window = opt.window ? opt.window : opt.tasks;
    while (c->next_task < opt.tasks && c->in_window < window)
        queue_task(c, c->next_task++);
}

static void check_outcome(client *c, uint64_t id, const Aiod__ServerMessage *m) {
    uint32_t task = c->reqs[id].task;
    int64_t want = expected_value(c->idx, task);
    if (m->body_case == AIOD__SERVER_MESSAGE__BODY_ERROR && n_task_errors++ == 0)
        snprintf(first_task_error, sizeof(first_task_error),
                 "good client %u task %u (%s, request %" PRIu64 "): %s", c->idx, task,
                 task % 2 ? "Await after Submitted" : "Gather", id,
                 m->error->message ? m->error->message : "");
    if (m->body_case != AIOD__SERVER_MESSAGE__BODY_OUTCOMES) {
        failf("good client %u task %u (request %" PRIu64 "): expected Outcomes, got %s%s%s", c->idx,
              task, id, server_kind(m),
              m->body_case == AIOD__SERVER_MESSAGE__BODY_ERROR ? ": " : "",
              m->body_case == AIOD__SERVER_MESSAGE__BODY_ERROR && m->error->message
                  ? m->error->message
                  : "");
    } else if (m->outcomes->n_outcomes != 1) {
        failf("good client %u task %u: %zu outcomes, expected 1", c->idx, task,
              m->outcomes->n_outcomes);
    } else {
        const Aiod__Outcome *o = m->outcomes->outcomes[0];
        if (o->state != AIOD__TASK_STATE__TASK_DONE)
            failf("good client %u task %u: state %d (%s: %s), expected TASK_DONE", c->idx, task,
                  (int)o->state, o->error_kind ? o->error_kind : "",
                  o->error_message ? o->error_message : "");
        else if (!o->result || o->result->kind_case != AIOD__VALUE__KIND_INT_VALUE ||
                 o->result->int_value != want)
            failf("good client %u task %u: wrong result (expected int %" PRId64 ")", c->idx, task,
                  want);
    }
    if (c->done[task]++)
        failf("good client %u task %u completed %u times", c->idx, task, c->done[task]);
    c->n_done++;
    c->in_window--;
}

static void on_good_reply(client *c, const Aiod__ServerMessage *m) {
    uint64_t id = m->request_id;
    if (id == 0 || id > c->next_id || c->reqs[id].type == R_NONE) {
        failf("good client %u: reply to request %" PRIu64 " it never sent (%s%s%s)", c->idx, id,
              server_kind(m), m->body_case == AIOD__SERVER_MESSAGE__BODY_ERROR ? ": " : "",
              m->body_case == AIOD__SERVER_MESSAGE__BODY_ERROR && m->error->message
                  ? m->error->message
                  : "");
        return;
    }
    request *r = &c->reqs[id];
    if (r->answered++) {
        failf("good client %u: request %" PRIu64 " answered %u times (now %s)", c->idx, id,
              r->answered, server_kind(m));
        return;
    }
    switch (r->type) {
    case R_HELLO:
        if (m->body_case != AIOD__SERVER_MESSAGE__BODY_HELLO)
            failf("good client %u: hello answered by %s", c->idx, server_kind(m));
        c->hello_ok = true;
        break;
    case R_GATHER:
    case R_AWAIT:
        check_outcome(c, id, m);
        fill_window(c);
        break;
    case R_SUBMIT:
        if (m->body_case != AIOD__SERVER_MESSAGE__BODY_SUBMITTED) {
            failf("good client %u task %u: Submit answered by %s%s%s", c->idx, r->task,
                  server_kind(m), m->body_case == AIOD__SERVER_MESSAGE__BODY_ERROR ? ": " : "",
                  m->body_case == AIOD__SERVER_MESSAGE__BODY_ERROR && m->error->message
                      ? m->error->message
                      : "");
            c->done[r->task]++;
            c->n_done++;
            c->in_window--;
            fill_window(c);
            break;
        }
        uint64_t tid = m->submitted->task_id;
        queue_await(c, R_AWAIT, r->task, &tid, 1);
        break;
    default:
        failf("good client %u: unexpected request type %d", c->idx, r->type);
    }
    if (c->n_done == opt.tasks) {
        client_finish(c);
        client_close(c);
    }
}

static void on_abandon_reply(client *c, const Aiod__ServerMessage *m) {
    uint64_t id = m->request_id;
    if (id == 0 || id > c->next_id) {
        failf("abandoning client %u: reply to unknown request %" PRIu64, c->idx, id);
        return;
    }
    switch (c->reqs[id].type) {
    case R_HELLO:
        break;
    case R_ABANDON_SUBMIT:
        if (m->body_case != AIOD__SERVER_MESSAGE__BODY_SUBMITTED) {
            failf("abandoning client %u: Submit answered by %s", c->idx, server_kind(m));
            client_finish(c);
            client_close(c);
            return;
        }
        c->abandon_ids[c->n_abandon++] = m->submitted->task_id;
        if (c->n_abandon == ABANDON_TASKS) {
            /* Await them all, and go away in the middle of the await. */
            queue_await(c, R_ABANDON_AWAIT, 0, c->abandon_ids, ABANDON_TASKS);
            flush_out(c);
            client_finish(c);
            client_close(c);
        }
        break;
    default:
        failf("abandoning client %u: unexpected %s for request %" PRIu64, c->idx, server_kind(m),
              id);
    }
}

static void on_reply(client *c, const uint8_t *p, uint32_t len) {
    Aiod__ServerMessage *m = aiod__server_message__unpack(NULL, len, p);
    if (!m) {
        failf("%s client %u: undecodable frame of %u bytes from the daemon", kind_names[c->kind],
              c->idx, len);
        return;
    }
    /* A Gather's Started event comes before its reply: not a reply. */
    if (m->body_case == AIOD__SERVER_MESSAGE__BODY_STARTED) {
        aiod__server_message__free_unpacked(m, NULL);
        return;
    }
    c->n_replies++;
    if (m->body_case == AIOD__SERVER_MESSAGE__BODY_ERROR)
        c->n_errors++;
    switch (c->kind) {
    case K_GOOD:
        on_good_reply(c, m);
        break;
    case K_GARBAGE:
        if (m->body_case != AIOD__SERVER_MESSAGE__BODY_ERROR &&
            m->body_case != AIOD__SERVER_MESSAGE__BODY_HELLO)
            failf("garbage client %u: got %s, expected only HelloReply and Error", c->idx,
                  server_kind(m));
        break;
    case K_HALF:
        if (m->body_case != AIOD__SERVER_MESSAGE__BODY_HELLO)
            failf("half-frame client %u: got %s, expected only a HelloReply", c->idx,
                  server_kind(m));
        else
            client_finish(c); /* now silent until the round ends */
        break;
    case K_ABANDON:
        on_abandon_reply(c, m);
        break;
    case K_SLOW:
        break;
    }
    aiod__server_message__free_unpacked(m, NULL);
}

static void on_readable(client *c) {
    for (;;) {
        size_t room;
        uint8_t *dst = frame_reader_space(&c->rd, READ_CHUNK, &room);
        if (!dst)
            die("out of memory");
        ssize_t n = recv(c->fd, dst, room, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            n = 0; /* ECONNRESET: as EOF */
        }
        if (n == 0) {
            c->eof = true;
            break;
        }
        frame_reader_commit(&c->rd, (size_t)n);
        const uint8_t *p;
        uint32_t len;
        int r = 0;
        while (!c->closed && (r = frame_reader_next(&c->rd, &p, &len)) == 1)
            on_reply(c, p, len);
        if (c->closed)
            return;
        if (r < 0) {
            failf("%s client %u: the daemon sent a frame over %u bytes", kind_names[c->kind],
                  c->idx, CLIENT_MAX_FRAME);
            c->eof = true;
            break;
        }
        if ((size_t)n < room)
            break;
    }
    if (!c->closed && c->woff < c->wlen)
        flush_out(c);
    if (c->eof && !c->closed) {
        switch (c->kind) {
        case K_GOOD:
            failf("good client %u: the daemon closed the connection after %u of %u tasks", c->idx,
                  c->n_done, opt.tasks);
            break;
        case K_GARBAGE:
            if (c->n_errors == 0)
                failf("garbage client %u: closed without an Error", c->idx);
            break;
        case K_HALF:
        case K_ABANDON:
            failf("%s client %u: the daemon closed the connection", kind_names[c->kind], c->idx);
            break;
        case K_SLOW:
            break;
        }
        client_finish(c);
        client_close(c);
    }
}

/* A deterministic byte stream, so that a failure can be replayed. */
static uint32_t rng_state = 12345;
static uint8_t rng_byte(void) {
    rng_state = rng_state * 1103515245u + 12345u;
    return (uint8_t)(rng_state >> 16);
}

static int connect_socket(void) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d.sock);
    /* Blocking connect: it waits for room in the listen backlog. */
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("connect %s: %s", d.sock, strerror(errno));
    return fd;
}

static void client_start(client *c) {
    c->fd = connect_socket();
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    frame_reader_init(&c->rd, CLIENT_MAX_FRAME);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    n_open_unfinished++;
    switch (c->kind) {
    case K_GOOD:
        c->done = calloc(opt.tasks, 1);
        if (!c->done)
            die("out of memory");
        queue_hello(c);
        fill_window(c);
        break;
    case K_GARBAGE: {
        /* Odd ones say hello first. A frame of 4096 random bytes (an Error
         * for a message that does not decode, or for a message that is not
         * a hello, or for an unknown body), then more bytes that start with
         * a header far over max_frame, so that the daemon must close. */
        if (c->idx % 2)
            queue_hello(c);
        uint8_t junk[4096 + 4];
        frame_put_header(junk, 4096);
        for (size_t i = 4; i < sizeof(junk); i++)
            junk[i] = rng_byte();
        size_t need = c->wlen + sizeof(junk) + 60000;
        c->wbuf = realloc(c->wbuf, need);
        if (!c->wbuf)
            die("out of memory");
        c->wcap = need;
        memcpy(c->wbuf + c->wlen, junk, sizeof(junk));
        c->wlen += sizeof(junk);
        c->wbuf[c->wlen] = 0xff;
        for (size_t i = 1; i < 60000; i++)
            c->wbuf[c->wlen + i] = rng_byte();
        c->wlen += 60000;
        break;
    }
    case K_HALF: {
        queue_hello(c);
        uint8_t half[4 + 100];
        frame_put_header(half, 200);
        memset(half + 4, 0x08, sizeof(half) - 4);
        if (c->wlen + sizeof(half) > c->wcap) {
            c->wbuf = realloc(c->wbuf, c->wlen + sizeof(half));
            if (!c->wbuf)
                die("out of memory");
            c->wcap = c->wlen + sizeof(half);
        }
        memcpy(c->wbuf + c->wlen, half, sizeof(half));
        c->wlen += sizeof(half);
        break;
    }
    case K_ABANDON: {
        queue_hello(c);
        for (unsigned i = 0; i < ABANDON_TASKS; i++) {
            Aiod__Value secs = AIOD__VALUE__INIT;
            secs.kind_case = AIOD__VALUE__KIND_DOUBLE_VALUE;
            secs.double_value = 30;
            Aiod__Value *args[1] = {&secs};
            Aiod__Call call = AIOD__CALL__INIT;
            call.function = (char *)"demo.sleep";
            call.n_args = 1;
            call.args = args;
            Aiod__Submit s = AIOD__SUBMIT__INIT;
            s.call = &call;
            s.ownership = AIOD__OWNERSHIP__ATTACHED;
            Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
            m.request_id = new_request(c, R_ABANDON_SUBMIT, i);
            m.body_case = AIOD__CLIENT_MESSAGE__BODY_SUBMIT;
            m.submit = &s;
            send_msg(c, &m);
        }
        break;
    }
    case K_SLOW: {
        /* Gathers of one demo.sleep each, whose results (SLOW_RESULT bytes
         * apiece) all come once the sleeps end, well after the daemon has
         * read every request: more than its drop line (max_write_queue plus
         * one max_frame frame, at the default 4 MiB) beyond what the
         * socket's buffer takes, so the daemon must drop us. Output lines
         * would not do: a follower pauses below max_write_queue, and past
         * it the daemon stops reading. */
        queue_hello(c);
        size_t frame = (size_t)4 * 1024 * 1024 + 5;
        size_t drop_line = opt.write_queue + (opt.write_queue > frame ? opt.write_queue : frame);
        size_t n = (drop_line + socket_buffer()) / SLOW_RESULT + 4;
        char *big = malloc(SLOW_RESULT + 1);
        if (!big)
            die("out of memory");
        memset(big, 'x', SLOW_RESULT);
        big[SLOW_RESULT] = '\0';
        for (size_t i = 0; i < n; i++) {
            Aiod__Value secs = AIOD__VALUE__INIT, result = AIOD__VALUE__INIT;
            secs.kind_case = AIOD__VALUE__KIND_DOUBLE_VALUE;
            secs.double_value = SLOW_SLEEP;
            result.kind_case = AIOD__VALUE__KIND_STRING_VALUE;
            result.string_value = big;
            Aiod__Value *args[2] = {&secs, &result};
            Aiod__Call call = AIOD__CALL__INIT;
            call.function = (char *)"demo.sleep";
            call.n_args = 2;
            call.args = args;
            Aiod__GatherItem item = AIOD__GATHER_ITEM__INIT;
            item.item_case = AIOD__GATHER_ITEM__ITEM_CALL;
            item.call = &call;
            Aiod__GatherItem *itemp[1] = {&item};
            Aiod__Gather g = AIOD__GATHER__INIT;
            g.n_items = 1;
            g.items = itemp;
            Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
            m.request_id = new_request(c, R_GATHER, 0);
            m.body_case = AIOD__CLIENT_MESSAGE__BODY_GATHER;
            m.gather = &g;
            send_msg(c, &m);
        }
        free(big);
        break;
    }
    }
    update_events(c);
    flush_out(c);
}

static void client_free(client *c) {
    client_close(c);
    frame_reader_done(&c->rd);
    free(c->wbuf);
    free(c->reqs);
    free(c->done);
}

/* ---------------------------------------------------------------- checker */

/* A blocking request/reply exchange on its own connection, for checks
 * between rounds. Returns the reply to `m` (skipping events). */
static Aiod__ServerMessage *rpc(int fd, frame_reader *rd, Aiod__ClientMessage *m, double timeout) {
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    put_frame(&buf, &len, &cap, m);
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            die("checker: write: %s", strerror(errno));
        off += (size_t)w;
    }
    free(buf);
    double deadline = now() + timeout;
    for (;;) {
        const uint8_t *p;
        uint32_t plen;
        int r = frame_reader_next(rd, &p, &plen);
        if (r < 0)
            die("checker: frame over the limit");
        if (r == 1) {
            Aiod__ServerMessage *sm = aiod__server_message__unpack(NULL, plen, p);
            if (!sm)
                die("checker: undecodable reply");
            if (sm->request_id == m->request_id &&
                sm->body_case != AIOD__SERVER_MESSAGE__BODY_OUTPUT &&
                sm->body_case != AIOD__SERVER_MESSAGE__BODY_STARTED)
                return sm;
            aiod__server_message__free_unpacked(sm, NULL);
            continue;
        }
        double left = deadline - now();
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pf, 1, (int)(left * 1000) + 1) == 0)
            die("checker: no reply within %.0f s", timeout);
        size_t room;
        uint8_t *dst = frame_reader_space(rd, READ_CHUNK, &room);
        ssize_t n = read(fd, dst, room);
        if (n <= 0)
            die("checker: the daemon closed the connection (%s)", n ? strerror(errno) : "EOF");
        frame_reader_commit(rd, (size_t)n);
    }
}

typedef struct checker {
    int fd;
    frame_reader rd;
    uint64_t next_id;
} checker;

static void checker_open(checker *k) {
    k->fd = connect_socket();
    frame_reader_init(&k->rd, CLIENT_MAX_FRAME);
    k->next_id = 0;
    Aiod__Hello h = AIOD__HELLO__INIT;
    h.protocol_version = AIOD_PROTOCOL_VERSION;
    h.client_name = (char *)"aiod-load checker";
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    m.request_id = ++k->next_id;
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_HELLO;
    m.hello = &h;
    Aiod__ServerMessage *r = rpc(k->fd, &k->rd, &m, 30);
    if (r->body_case != AIOD__SERVER_MESSAGE__BODY_HELLO)
        die("checker: hello answered by %s", server_kind(r));
    aiod__server_message__free_unpacked(r, NULL);
}

static void checker_close(checker *k) {
    close(k->fd);
    frame_reader_done(&k->rd);
}

/* Unfinished tasks, all owners (ListTasks without `all`). */
static size_t unfinished_tasks(checker *k) {
    Aiod__ListTasks l = AIOD__LIST_TASKS__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    m.request_id = ++k->next_id;
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_LIST_TASKS;
    m.list_tasks = &l;
    Aiod__ServerMessage *r = rpc(k->fd, &k->rd, &m, 30);
    if (r->body_case != AIOD__SERVER_MESSAGE__BODY_TASK_LIST)
        die("checker: ListTasks answered by %s", server_kind(r));
    size_t n = r->task_list->n_tasks;
    aiod__server_message__free_unpacked(r, NULL);
    return n;
}

/* The daemon still runs a task and returns its result. */
static void check_serving(checker *k) {
    Aiod__Value v = AIOD__VALUE__INIT;
    v.kind_case = AIOD__VALUE__KIND_STRING_VALUE;
    v.string_value = (char *)"still serving";
    Aiod__Value *args[1] = {&v};
    Aiod__Call call = AIOD__CALL__INIT;
    call.function = (char *)"demo.echo";
    call.n_args = 1;
    call.args = args;
    Aiod__GatherItem item = AIOD__GATHER_ITEM__INIT;
    item.item_case = AIOD__GATHER_ITEM__ITEM_CALL;
    item.call = &call;
    Aiod__GatherItem *items[1] = {&item};
    Aiod__Gather g = AIOD__GATHER__INIT;
    g.n_items = 1;
    g.items = items;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    m.request_id = ++k->next_id;
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_GATHER;
    m.gather = &g;
    Aiod__ServerMessage *r = rpc(k->fd, &k->rd, &m, 30);
    if (r->body_case != AIOD__SERVER_MESSAGE__BODY_OUTCOMES || r->outcomes->n_outcomes != 1 ||
        !r->outcomes->outcomes[0]->result ||
        r->outcomes->outcomes[0]->result->kind_case != AIOD__VALUE__KIND_STRING_VALUE ||
        strcmp(r->outcomes->outcomes[0]->result->string_value, "still serving") != 0)
        failf("after the load the daemon did not run demo.echo correctly (got %s)", server_kind(r));
    aiod__server_message__free_unpacked(r, NULL);
}

/* Waits until no task is unfinished: the well-behaved ones have all been
 * awaited, and the abandoned and slow readers' attached tasks must have been
 * cancelled with their connections. This queries state under a deadline;
 * the cancellations have no event a client could wait for. */
static void wait_no_tasks(double timeout) {
    checker k;
    checker_open(&k);
    double deadline = now() + timeout;
    size_t n;
    while ((n = unfinished_tasks(&k)) > 0 && now() < deadline) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (n > 0)
        failf("%zu tasks still unfinished %.0f s after the round (the abandoning and slow "
              "clients' attached tasks should have been cancelled)",
              n, timeout);
    checker_close(&k);
}

/* ---------------------------------------------------------------- rounds */

typedef struct round_stats {
    double seconds;
    unsigned long tasks;
    long rss_max;
} round_stats;

static round_stats run_round(const char *name) {
    round_stats st = {0};
    n_clients = opt.clients + opt.bad;
    clients = calloc(n_clients, sizeof(*clients));
    if (!clients)
        die("out of memory");
    unsigned drops_before = log_count("dropping the client");
    double t0 = now();
    /* Misbehaving clients first, so that they are at work while the
     * well-behaved ones pipeline. Kinds in turn: garbage, half, abandon,
     * slow. */
    for (unsigned i = 0; i < n_clients; i++) {
        client *c = &clients[i];
        c->fd = -1;
        if (i < opt.bad) {
            c->kind = K_GOOD;
            for (unsigned k = 0; c->kind == K_GOOD; k++)
                if (opt.kinds & (1u << (K_GARBAGE + (i + k) % 4)))
                    c->kind = (client_kind)(K_GARBAGE + (i + k) % 4);
            c->idx = i;
        } else {
            c->kind = K_GOOD;
            c->idx = i - opt.bad;
        }
        client_start(c);
    }
    double deadline = t0 + opt.round_timeout, last_sample = 0;
    struct epoll_event evs[256];
    while (n_open_unfinished > 0) {
        double left = deadline - now();
        if (left <= 0) {
            unsigned good_left = 0, tasks_left = 0;
            for (unsigned i = 0; i < n_clients; i++)
                if (!clients[i].finished) {
                    if (clients[i].kind == K_GOOD) {
                        good_left++;
                        tasks_left += opt.tasks - clients[i].n_done;
                    } else {
                        failf("%s client %u did not reach its end", kind_names[clients[i].kind],
                              clients[i].idx);
                    }
                }
            die("round %s: not done within %.0f s (%u good clients with %u tasks unanswered)", name,
                opt.round_timeout, good_left, tasks_left);
        }
        int n = epoll_wait(ep, evs, 256, (int)((left < 0.1 ? left : 0.1) * 1000) + 1);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                if (!drain_daemon_log())
                    die("aiod exited during round %s", name);
                continue;
            }
            client *c = evs[i].data.ptr;
            if (c->closed)
                continue;
            if (c->kind == K_SLOW) {
                if (evs[i].events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)) {
                    client_finish(c); /* dropped, as it should be */
                    client_close(c);
                    continue;
                }
                flush_out(c);
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR))
                on_readable(c);
            else if (evs[i].events & EPOLLOUT)
                flush_out(c);
        }
        double t = now();
        if (!opt.valgrind && t - last_sample >= 0.05) {
            long rss = status_kib("VmRSS");
            if (rss > st.rss_max)
                st.rss_max = rss;
            last_sample = t;
        }
    }
    st.seconds = now() - t0;
    st.tasks = (unsigned long)opt.clients * opt.tasks;

    /* Per-kind checks. */
    unsigned n_slow = 0;
    for (unsigned i = 0; i < n_clients; i++) {
        client *c = &clients[i];
        if (c->kind == K_GOOD && c->n_done != opt.tasks)
            failf("good client %u: %u of %u tasks completed", c->idx, c->n_done, opt.tasks);
        if (c->kind == K_GOOD) {
            for (uint64_t id = 1; id <= c->next_id; id++)
                if (c->reqs[id].answered != 1)
                    failf("good client %u: request %" PRIu64 " answered %u times", c->idx, id,
                          c->reqs[id].answered);
        }
        if (c->kind == K_SLOW)
            n_slow++;
        client_free(c);
    }
    free(clients);
    clients = NULL;
    if (n_task_errors) {
        n_failures++;
        fprintf(stderr,
                "aiod-load: FAIL: round %s: %u well-behaved requests were answered by an Error "
                "instead of their result; the first: %s\n",
                name, n_task_errors, first_task_error);
    }
    n_task_errors = 0;
    drain_daemon_log();
    unsigned drops = log_count("dropping the client") - drops_before;
    unsigned slow_drops = log_count("over max_write_queue; dropping the client");
    if (n_slow && slow_drops == 0)
        failf("round %s: the daemon logged no slow-reader drop (\"over max_write_queue; "
              "dropping the client\")",
              name);
    fprintf(stderr,
            "aiod-load: round %s: %u well-behaved clients x %u tasks + %u misbehaving: %lu tasks "
            "in %.2f s (%.0f tasks/s); %u clients dropped by the daemon\n",
            name, opt.clients, opt.tasks, opt.bad, st.tasks, st.seconds,
            (double)st.tasks / st.seconds, drops);
    wait_no_tasks(opt.valgrind ? 60 : 10);
    if (!opt.valgrind)
        fprintf(stderr, "aiod-load: round %s: aiod RSS %ld KiB once every client has gone\n", name,
                status_kib("VmRSS"));
    return st;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f) {
    fprintf(f, "Usage: aiod-load --aiod PATH --plugin-dir DIR [OPTION]...\n"
               "  --clients N        well-behaved clients (default 200)\n"
               "  --tasks N          tasks per well-behaved client (default 500)\n"
               "  --bad N            misbehaving clients (default 20; kinds in turn: garbage,\n"
               "                     half frame, abandon mid-await, slow reader)\n"
               "  --window N         tasks in flight per client (default 100; 0: all at once)\n"
               "  --rounds N         measured rounds (default 1)\n"
               "  --warmup-rounds N  rounds before the RSS baseline is taken (default 4)\n"
               "  --no-warmup        no warm-up rounds and no RSS check\n"
               "  --write-queue B    the daemon's --max-write-queue (default 65536)\n"
               "  --round-timeout S  fail a round not done in S seconds (default 90)\n"
               "  --valgrind PATH    run the daemon under valgrind memcheck\n"
               "  --bad-kinds LIST   only these kinds of misbehaving clients, comma-separated\n"
               "                     (garbage,half,abandon,slow; default all)\n"
               "  --daemon-arg ARG   pass ARG to aiod (repeatable, up to 8)\n"
               "  --keep             keep the temporary directory\n");
}

int main(int argc, char **argv) {
    enum {
        O_AIOD = 256,
        O_PLUGINS,
        O_CLIENTS,
        O_TASKS,
        O_BAD,
        O_WINDOW,
        O_ROUNDS,
        O_NOWARM,
        O_WARM,
        O_WQ,
        O_RT,
        O_VALGRIND,
        O_KEEP,
        O_KINDS,
        O_DARG,
        O_HELP
    };
    static const struct option longopts[] = {
        {"aiod", required_argument, NULL, O_AIOD},
        {"plugin-dir", required_argument, NULL, O_PLUGINS},
        {"clients", required_argument, NULL, O_CLIENTS},
        {"tasks", required_argument, NULL, O_TASKS},
        {"bad", required_argument, NULL, O_BAD},
        {"window", required_argument, NULL, O_WINDOW},
        {"rounds", required_argument, NULL, O_ROUNDS},
        {"no-warmup", no_argument, NULL, O_NOWARM},
        {"warmup-rounds", required_argument, NULL, O_WARM},
        {"write-queue", required_argument, NULL, O_WQ},
        {"round-timeout", required_argument, NULL, O_RT},
        {"valgrind", required_argument, NULL, O_VALGRIND},
        {"keep", no_argument, NULL, O_KEEP},
        {"bad-kinds", required_argument, NULL, O_KINDS},
        {"daemon-arg", required_argument, NULL, O_DARG},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (o) {
        case O_AIOD:
            opt.aiod = optarg;
            break;
        case O_PLUGINS:
            opt.plugin_dir = optarg;
            break;
        case O_CLIENTS:
            opt.clients = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case O_TASKS:
            opt.tasks = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case O_BAD:
            opt.bad = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case O_WINDOW:
            opt.window = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case O_ROUNDS:
            opt.rounds = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case O_NOWARM:
            opt.warmup_rounds = 0;
            break;
        case O_WARM:
            opt.warmup_rounds = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case O_WQ:
            opt.write_queue = strtoul(optarg, NULL, 10);
            break;
        case O_RT:
            opt.round_timeout = strtod(optarg, NULL);
            break;
        case O_VALGRIND:
            opt.valgrind = optarg;
            break;
        case O_KEEP:
            opt.keep = true;
            break;
        case O_DARG:
            if (opt.n_daemon_args == sizeof(opt.daemon_args) / sizeof(opt.daemon_args[0])) {
                fprintf(stderr, "aiod-load: too many --daemon-arg\n");
                return 2;
            }
            opt.daemon_args[opt.n_daemon_args++] = optarg;
            break;
        case O_KINDS:
            opt.kinds = 0;
            for (char *save, *w = strtok_r(optarg, ",", &save); w; w = strtok_r(NULL, ",", &save))
                for (unsigned k = K_GARBAGE; k <= K_SLOW; k++)
                    if (strcmp(w, kind_names[k]) == 0)
                        opt.kinds |= 1u << k;
            break;
        case O_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!opt.aiod || !opt.plugin_dir || optind != argc || opt.tasks == 0 || opt.rounds == 0 ||
        opt.write_queue < 65536 || (opt.bad && !opt.kinds)) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1: %s", strerror(errno));
    start_daemon();
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, d.err_fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));

    long rss_start = opt.valgrind ? -1 : status_kib("VmRSS");
    long rss_base = -1, rss_peak = -1;
    for (unsigned r = 0; r < opt.warmup_rounds; r++) {
        char name[32];
        snprintf(name, sizeof(name), "warm-up-%u", r + 1);
        run_round(name);
        rss_base = status_kib("VmRSS");
    }
    round_stats best = {0};
    for (unsigned r = 0; r < opt.rounds; r++) {
        char name[32];
        snprintf(name, sizeof(name), "measured-%u", r + 1);
        round_stats st = run_round(name);
        if (st.rss_max > rss_peak)
            rss_peak = st.rss_max;
        if (r == 0 || st.seconds < best.seconds)
            best = st;
    }

    checker k;
    checker_open(&k);
    check_serving(&k);
    checker_close(&k);

    if (!opt.valgrind) {
        long rss_end = status_kib("VmRSS"), hwm = status_kib("VmHWM");
        fprintf(stderr, "aiod-load: aiod RSS KiB: after start %ld", rss_start);
        if (rss_base > 0)
            fprintf(stderr, ", after warm-up (baseline) %ld", rss_base);
        fprintf(stderr,
                ", peak during the measured rounds %ld (VmHWM %ld), after the measured rounds %ld",
                rss_peak, hwm, rss_end);
        if (rss_base > 0) {
            double rel = (double)(rss_end - rss_base) / (double)rss_base;
            fprintf(stderr, " (%+.1f%% of baseline)\n", rel * 100);
            if (rel > opt.rss_tolerance)
                failf("aiod RSS after the run (%ld KiB) is %.1f%% over the baseline after "
                      "warm-up (%ld KiB); allowed %.0f%%",
                      rss_end, rel * 100, rss_base, opt.rss_tolerance * 100);
        } else {
            fputc('\n', stderr);
        }
    }
    fprintf(stderr, "aiod-load: best measured round: %.0f tasks/s\n",
            (double)best.tasks / best.seconds);

    int st = stop_daemon(opt.valgrind ? 120 : 30);
    if (st != 0)
        failf("%s exited with status %d after SIGTERM (expected 0)",
              opt.valgrind ? "valgrind (aiod)" : "aiod", st);
    if (n_failures || opt.valgrind)
        print_daemon_log();
    if (n_failures) {
        fprintf(stderr, "aiod-load: %u failures\n", n_failures);
        cleanup();
        return 1;
    }
    cleanup();
    fprintf(stderr, "aiod-load: ok\n");
    return 0;
}
