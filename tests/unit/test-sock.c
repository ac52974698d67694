/*
 * Task sockets (daemon/sock.c) on a real loop: tasks of the sockecho test
 * plugin talk to a Unix-socket server that this test runs on the same loop.
 * Covered: connect, a write and read round trip (small, and large enough to
 * grow the receive buffer), two tasks at once, a read that times out on a
 * socket that stays usable, the peer ending the stream (after a reply, with
 * none, and at once), connecting to a missing path and to a socket nobody
 * listens on, and cancelling a task blocked in a read. After each test every
 * handle the sockets opened must be closed (and the group teardown closes
 * the loop, which fails while any handle is left), so leaks show up here as
 * well as under LeakSanitizer.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon-loop.h"

/* Longest any test may take before it fails instead of hanging: the
 * sockecho functions give up after 5 s on their own. */
#define GUARD_MS 10000

/* Connections the server keeps track of at once. */
#define MAX_PEERS 4

/* What the server does with each connection. */
enum serve_mode {
    /* Sends back the first line it receives, then closes. */
    SERVE_ECHO,
    /* Closes after the first line, sending nothing. */
    SERVE_CLOSE_AFTER_LINE,
    /* Takes the first line, then keeps the connection open until the
     * client ends it. */
    SERVE_KEEP_OPEN,
    /* Closes each connection as soon as it is accepted. */
    SERVE_CLOSE_AT_ONCE,
};

/* One accepted connection. */
typedef struct peer {
    uv_pipe_t pipe;
    uv_write_t write_req;
    /* What the client sent so far. */
    char *buf;
    size_t len;
    size_t cap;
    /* The first line arrived (and was answered as the mode says). */
    bool got_line;
} peer;

static uv_loop_t loop;
/* Handles alive after the group setup (the scheduler's): each test must
 * leave exactly these. */
static unsigned baseline_handles;

static struct server {
    uv_pipe_t listener;
    /* serve() ran: the listener needs closing. */
    bool listening;
    enum serve_mode mode;
    char dir[64];
    char path[128];
    /* A path in dir where nothing listens. */
    char missing[128];
    peer *peers[MAX_PEERS];
    unsigned accepted;
    /* First lines received. */
    unsigned lines;
    /* Connections the client ended (EOF seen by the server). */
    unsigned eofs;
} srv;

static uv_timer_t guard;
static bool guard_fired;

/* ---------------------------------------------------------------- the server */

static void on_peer_closed(uv_handle_t *h) {
    peer *p = h->data;
    for (size_t i = 0; i < MAX_PEERS; i++)
        if (srv.peers[i] == p)
            srv.peers[i] = NULL;
    free(p->buf);
    free(p);
}

static void close_peer(peer *p) {
    if (!uv_is_closing((uv_handle_t *)&p->pipe))
        uv_close((uv_handle_t *)&p->pipe, on_peer_closed);
}

static void on_peer_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    peer *p = h->data;
    (void)suggested;
    if (p->cap - p->len < 65536) {
        p->cap = p->len + 65536;
        p->buf = realloc(p->buf, p->cap);
        assert_non_null(p->buf);
    }
    *buf = uv_buf_init(p->buf + p->len, (unsigned)(p->cap - p->len));
}

static void on_echoed(uv_write_t *req, int status) {
    peer *p = req->data;
    assert_int_equal(status, 0);
    close_peer(p);
}

static void on_peer_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
    peer *p = st->data;
    (void)buf;
    if (nread == UV_EOF) {
        srv.eofs++;
        close_peer(p);
        return;
    }
    assert_true(nread >= 0);
    p->len += (size_t)nread;
    char *nl = p->got_line ? NULL : memchr(p->buf, '\n', p->len);
    if (!nl)
        return;
    p->got_line = true;
    srv.lines++;
    switch (srv.mode) {
    case SERVE_ECHO: {
        /* Stop reading first: the write uses the buffer, which a read
         * could move. */
        uv_read_stop(st);
        uv_buf_t line = uv_buf_init(p->buf, (unsigned)(nl - p->buf + 1));
        p->write_req.data = p;
        assert_int_equal(uv_write(&p->write_req, st, &line, 1, on_echoed), 0);
        break;
    }
    case SERVE_CLOSE_AFTER_LINE:
        close_peer(p);
        break;
    default:
        break;
    }
}

static void on_connection(uv_stream_t *listener, int status) {
    assert_int_equal(status, 0);
    peer *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    size_t slot = 0;
    while (slot < MAX_PEERS && srv.peers[slot])
        slot++;
    assert_true(slot < MAX_PEERS);
    srv.peers[slot] = p;
    assert_int_equal(uv_pipe_init(&loop, &p->pipe, 0), 0);
    p->pipe.data = p;
    assert_int_equal(uv_accept(listener, (uv_stream_t *)&p->pipe), 0);
    srv.accepted++;
    if (srv.mode == SERVE_CLOSE_AT_ONCE)
        close_peer(p);
    else
        assert_int_equal(uv_read_start((uv_stream_t *)&p->pipe, on_peer_alloc, on_peer_read), 0);
}

static void serve(enum serve_mode mode) {
    srv.mode = mode;
    assert_int_equal(uv_pipe_init(&loop, &srv.listener, 0), 0);
    assert_int_equal(uv_pipe_bind(&srv.listener, srv.path), 0);
    srv.listening = true;
    assert_int_equal(uv_listen((uv_stream_t *)&srv.listener, 8, on_connection), 0);
}

/* ---------------------------------------------------------------- the loop */

static void count_handle(uv_handle_t *h, void *arg) {
    (void)h;
    (*(unsigned *)arg)++;
}

/* Handles on the loop, open or closing (a closed one leaves the loop's list
 * once its close callback ran). */
static unsigned count_handles(void) {
    unsigned n = 0;
    uv_walk(&loop, count_handle, &n);
    return n;
}

static void on_guard(uv_timer_t *h) {
    (void)h;
    guard_fired = true;
}

/* One loop iteration, failing the test once the guard time is over. The
 * guard timer is always armed, so the iteration returns by then at the
 * latest. */
static void run_once(void) {
    assert_false(guard_fired);
    uv_run(&loop, UV_RUN_ONCE);
}

static void run_until_finished(task *t) {
    while (!task_finished(t))
        run_once();
}

/* Suspended at an await point, and nothing has woken it yet. */
static bool is_waiting(const task *t) {
    return t->state == TASK_RUNNING && t->run && t->run->suspended && !t->run->wake_pending;
}

/* A new started task for sockecho.<name> with one or two arguments given as
 * text, the way aioctl passes them ("0.05" becomes a double); b may be
 * NULL. */
static task *start_task(const char *name, const char *a, const char *b) {
    Aiod__Value *args[] = {pbvalue_string(a), b ? pbvalue_string(b) : NULL};
    size_t n = b ? 2 : 1;
    char full[64], err[256];
    Aiod__Value **argv = NULL;
    task *t = NULL;
    snprintf(full, sizeof(full), "sockecho.%s", name);
    fn_entry *f = plugin_lookup(full);
    assert_non_null(f);
    if (value_check_call(&f->sig, args, n, true, 32, &argv, err, sizeof(err)) != 0)
        fail_msg("%s: %s", full, err);
    assert_int_equal(task_new(f, argv, f->sig.n_params, AIOD__OWNERSHIP__SUBMITTED, 0, 0, NULL, &t),
                     0);
    sched_start(t);
    return t;
}

static void assert_done_with_string(task *t, const char *expected) {
    if (t->state != TASK_DONE)
        fail_msg("task ended in state %d: %s: %s", t->state, t->error_kind ? t->error_kind : "-",
                 t->error_message ? t->error_message : "-");
    assert_non_null(t->result);
    assert_non_null(t->result->string_value);
    assert_string_equal(t->result->string_value, expected);
}

static void assert_failed_with_errno(task *t, int err, const char *kind) {
    assert_int_equal(t->state, TASK_FAILED);
    /* A plugin error returned without api->fail: Python's kind for the
     * errno, and strerror. */
    assert_string_equal(t->error_kind, kind);
    assert_string_equal(t->error_message, strerror(err));
}

/* ---------------------------------------------------------------- fixtures */

static int group_setup(void **state) {
    (void)state;
    char path[4096];
    /* As the daemon does: a write to a closed peer is an error, not death. */
    signal(SIGPIPE, SIG_IGN);
    snprintf(path, sizeof(path), "%s/sockecho/sockecho.so", TEST_PLUGIN_DIR);
    int r = daemon_loop_start(&loop, path);
    baseline_handles = count_handles();
    return r;
}

static int group_teardown(void **state) {
    (void)state;
    /* UV_EBUSY if any handle (a socket's stream or timers) was left open. */
    return daemon_loop_stop(&loop);
}

static int setup(void **state) {
    (void)state;
    memset(&srv, 0, sizeof(srv));
    snprintf(srv.dir, sizeof(srv.dir), "/tmp/aiod-test-sock-XXXXXX");
    assert_non_null(mkdtemp(srv.dir));
    snprintf(srv.path, sizeof(srv.path), "%s/echo.sock", srv.dir);
    snprintf(srv.missing, sizeof(srv.missing), "%s/missing.sock", srv.dir);
    guard_fired = false;
    assert_int_equal(uv_timer_init(&loop, &guard), 0);
    assert_int_equal(uv_timer_start(&guard, on_guard, GUARD_MS, 0), 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (srv.listening)
        uv_close((uv_handle_t *)&srv.listener, NULL);
    for (size_t i = 0; i < MAX_PEERS; i++)
        if (srv.peers[i])
            close_peer(srv.peers[i]);
    uv_close((uv_handle_t *)&guard, NULL);
    /* Close callbacks run at the end of the next iteration; a few more let
     * anything a finished task closed late go too. */
    for (int i = 0; i < 8 && count_handles() > baseline_handles; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    unlink(srv.path);
    unlink(srv.missing);
    rmdir(srv.dir);
    if (count_handles() != baseline_handles) {
        fprintf(stderr, "%u handles left open, %u expected\n", count_handles(), baseline_handles);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_round_trip(void **state) {
    (void)state;
    serve(SERVE_ECHO);
    task *t = start_task("echo", srv.path, "hello over unix\n");
    run_until_finished(t);
    /* Written, read back, then the end of the stream ended the reads. */
    assert_done_with_string(t, "hello over unix\n");
    assert_int_equal(srv.accepted, 1);
    assert_int_equal(srv.lines, 1);
    task_unref(t);
}

/* More than the receive buffer's first size (16 KiB), so it grows, and more
 * than one read's worth on the way back. */
static void test_large_round_trip(void **state) {
    (void)state;
    enum { N = 60000 };
    char *text = malloc(N + 1);
    assert_non_null(text);
    for (size_t i = 0; i < N - 1; i++)
        text[i] = (char)('a' + i * 7 % 26);
    text[N - 1] = '\n';
    text[N] = '\0';
    serve(SERVE_ECHO);
    task *t = start_task("echo", srv.path, text);
    run_until_finished(t);
    assert_done_with_string(t, text);
    task_unref(t);
    free(text);
}

/* Two tasks with a connection each, waiting at the same time. */
static void test_two_tasks_at_once(void **state) {
    (void)state;
    serve(SERVE_ECHO);
    task *a = start_task("echo", srv.path, "first\n");
    task *b = start_task("echo", srv.path, "second\n");
    run_until_finished(a);
    run_until_finished(b);
    assert_done_with_string(a, "first\n");
    assert_done_with_string(b, "second\n");
    assert_int_equal(srv.accepted, 2);
    task_unref(a);
    task_unref(b);
}

/* The read times out with -ETIMEDOUT (sockecho checks the exact value),
 * and the socket then still writes and reads. */
static void test_read_timeout(void **state) {
    (void)state;
    serve(SERVE_ECHO);
    uint64_t start = uv_hrtime();
    task *t = start_task("read_timeout", srv.path, "0.05");
    run_until_finished(t);
    assert_done_with_string(t, "timeout;ping\n");
    /* Not before its time: 50 ms, less the loop clock's millisecond
     * rounding and its coarser source. */
    assert_true(uv_hrtime() - start >= 40 * 1000000ull);
    task_unref(t);
}

/* The server closes after taking the line: the read sees the end of the
 * stream (0) at once, with nothing before it. */
static void test_peer_closes(void **state) {
    (void)state;
    serve(SERVE_CLOSE_AFTER_LINE);
    task *t = start_task("echo", srv.path, "anyone there?\n");
    run_until_finished(t);
    assert_done_with_string(t, "");
    assert_int_equal(srv.lines, 1);
    task_unref(t);
}

/* The server closes as soon as it accepts: a read with no timeout ends
 * with the end of the stream, and hold returns (null). */
static void test_peer_closes_at_once(void **state) {
    (void)state;
    serve(SERVE_CLOSE_AT_ONCE);
    task *t = start_task("hold", srv.path, NULL);
    run_until_finished(t);
    assert_int_equal(t->state, TASK_DONE);
    assert_null(t->result);
    assert_int_equal(srv.accepted, 1);
    task_unref(t);
}

static void test_connect_missing_path(void **state) {
    (void)state;
    task *t = start_task("echo", srv.missing, "x\n");
    run_until_finished(t);
    assert_failed_with_errno(t, ENOENT, "FileNotFoundError");
    task_unref(t);

    /* The argument checks, with -ENOENT for the missing path among them:
     * sockecho.misuse counts the calls that failed as they should. */
    t = start_task("misuse", srv.missing, NULL);
    run_until_finished(t);
    assert_int_equal(t->state, TASK_DONE);
    assert_int_equal(t->result->int_value, 8);
    task_unref(t);
}

/* A socket file nobody listens on (a server that died). */
static void test_connect_refused(void **state) {
    (void)state;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, srv.missing);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    task *t = start_task("echo", srv.missing, "x\n");
    run_until_finished(t);
    assert_failed_with_errno(t, ECONNREFUSED, "ConnectionRefusedError");
    task_unref(t);
}

/* Cancelled while blocked in a read: the read returns -ECANCELED, the task
 * ends cancelled, and its socket is closed on the way out. */
static void test_cancel_blocked_read(void **state) {
    (void)state;
    serve(SERVE_KEEP_OPEN);
    task *t = start_task("echo", srv.path, "no answer\n");
    /* Once the server has the line, echo has written it and gone on to
     * read with nothing between: a wait from then on is the read's. */
    while (srv.lines == 0 || !is_waiting(t))
        run_once();
    assert_true(task_cancel(t));
    run_until_finished(t);
    assert_int_equal(t->state, TASK_CANCELLED);
    assert_string_equal(t->error_kind, "CancelledError");
    /* The server sees the end of the stream: the socket was closed. */
    while (srv.eofs == 0)
        run_once();
    assert_int_equal(srv.eofs, 1);
    task_unref(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_tasks_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_closes_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_missing_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_blocked_read, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
