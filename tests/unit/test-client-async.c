/*
 * Tests of libaioclient's non-blocking API (aioc_start_*, aioc_process,
 * aioc_events, aioc_request_*) against a fake daemon forked on a temporary
 * Unix socket, as in test-client-wire.c: the daemon checks that requests
 * arrive pipelined (all sent before any reply), answers them out of order,
 * mixes in output events, errors and stale replies, or vanishes; the parent
 * drives the client with its own poll() loop and checks the callbacks.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aioc.h"
#include "aiod.pb-c.h"
#include "alloc.h"
#include "client.h"
#include "engine.h"
#include "frame.h"
#include "pbvalue.h"
#include "wire.h"

#include "fake-daemon.h"

static void send_cancelled(int fd, uint64_t id, uint32_t count) {
    Aiod__Cancelled x = AIOD__CANCELLED__INIT;
    Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
    x.count = count;
    m.request_id = id;
    m.body_case = AIOD__SERVER_MESSAGE__BODY_CANCELLED;
    m.cancelled = &x;
    send_msg(fd, &m);
}

/* Outcomes with one done outcome whose result is the string `result`. */
static void send_done(int fd, uint64_t id, uint64_t task, const char *result) {
    Aiod__Outcome o = AIOD__OUTCOME__INIT, *op = &o;
    o.task_id = task;
    o.state = AIOD__TASK_STATE__TASK_DONE;
    o.result = pbvalue_string(result);
    CHECK(o.result);
    send_outcomes(fd, id, &op, 1);
    pbvalue_free(o.result);
}

static Aiod__ClientMessage *recv_kind(int fd, Aiod__ClientMessage__BodyCase kind) {
    Aiod__ClientMessage *m = recv_msg(fd);
    if (m->body_case != kind)
        fprintf(stderr, "fake daemon: got body %d, expected %d\n", (int)m->body_case, (int)kind);
    CHECK(m->body_case == kind);
    return m;
}

static void msg_free(Aiod__ClientMessage *m) {
    aiod__client_message__free_unpacked(m, NULL);
}

/* ------------------------------------------------------------ the client side */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The program's own loop: poll for what aioc_events wants, then process,
 * until *flag is set or the connection dies. Returns the sum of
 * aioc_process's counts, or its negative errno. */
static int pump(aioc_client *c, const int *flag) {
    int total = 0;
    double deadline = now() + 10;
    while (!*flag) {
        struct pollfd p = {.fd = aioc_fd(c), .events = (short)aioc_events(c)};
        assert_true(p.fd >= 0 && p.events > 0);
        assert_true(now() < deadline);
        int r = poll(&p, 1, 1000);
        assert_true(r >= 0);
        if (r == 0)
            continue;
        r = aioc_process(c);
        if (r < 0)
            return r;
        total += r;
    }
    return total;
}

struct log {
    /* Completions as "name:error", in order. */
    char done[16][32];
    int n_done;
    /* Output lines as "where:task:line". */
    char lines[16][64];
    int n_lines;
    /* Set by the callbacks the tests wait for. */
    int flag;
};

static struct log lg;

static void on_done(aioc_request *req, int error, void *userdata) {
    const char *name = userdata;
    assert_int_equal(aioc_request_done(req), 1);
    assert_int_equal(aioc_request_error(req), error);
    assert_true(lg.n_done < 16);
    snprintf(lg.done[lg.n_done++], sizeof(lg.done[0]), "%s:%d", name, error);
}

static void on_line(uint64_t task_id, int stream, const char *line, void *userdata) {
    assert_int_equal(stream, 1);
    assert_true(lg.n_lines < 16);
    snprintf(lg.lines[lg.n_lines++], sizeof(lg.lines[0]), "%s:%d:%s", (const char *)userdata,
             (int)task_id, line);
}

/* ------------------------------------------------------------ pipelining */

/* A run as it goes on the wire: one Gather of one call with
 * return_exceptions, follow and cancel_on_timeout. */
static void check_run_gather(const Aiod__ClientMessage *m, const char *function, double timeout) {
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_GATHER);
    CHECK(m->gather->n_items == 1 &&
          m->gather->items[0]->item_case == AIOD__GATHER_ITEM__ITEM_CALL);
    CHECK(strcmp(m->gather->items[0]->call->function, function) == 0);
    CHECK(m->gather->return_exceptions && m->gather->follow && m->gather->cancel_on_timeout);
    CHECK(m->gather->timeout == timeout);
}

/* Three requests arrive before any reply is sent; they are answered in the
 * opposite order, with output of the run and the gather in between and a
 * stale reply. The run is a single Gather whose task id comes with the
 * Started event. */
static void script_pipelined(int fd) {
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *run = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_GATHER);
    check_run_gather(run, "demo.a", 1.5);
    Aiod__ClientMessage *g = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_GATHER);
    CHECK(g->gather->n_items == 2 && g->gather->follow && g->gather->return_exceptions);
    CHECK(g->gather->timeout == 4);
    Aiod__ClientMessage *a = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    CHECK(a->await->n_task_ids == 2 && a->await->task_ids[1] == 41);
    CHECK(!a->await->cancel_on_timeout && a->await->timeout == 0);
    CHECK(run->request_id < g->request_id && g->request_id < a->request_id);

    /* The await first (two outcomes, the second failed). */
    Aiod__Outcome o1 = AIOD__OUTCOME__INIT, o2 = AIOD__OUTCOME__INIT, *os[] = {&o1, &o2};
    o1.task_id = 40;
    o1.state = AIOD__TASK_STATE__TASK_DONE;
    o2.task_id = 41;
    o2.state = AIOD__TASK_STATE__TASK_FAILED;
    o2.error_kind = (char *)"KeyError";
    send_outcomes(fd, a->request_id, os, 2);
    send_done(fd, 9999, 1, "stale");

    /* The run's and the gather's tasks exist; the Cancel the await's
     * callback started comes meanwhile. */
    const uint64_t run_ids[] = {50}, g_ids[] = {51, 12};
    send_started(fd, run->request_id, run_ids, 1);
    send_started(fd, g->request_id, g_ids, 2);
    Aiod__ClientMessage *x = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_CANCEL);
    send_output(fd, run->request_id, 50, "run line");
    send_output(fd, g->request_id, 51, "gather line");

    /* Then the gather, then the run. */
    Aiod__Outcome g1 = AIOD__OUTCOME__INIT, g2 = AIOD__OUTCOME__INIT, *gs[] = {&g1, &g2};
    g1.task_id = 51;
    g1.state = AIOD__TASK_STATE__TASK_DONE;
    g1.result = pbvalue_int(1);
    g2.task_id = 12;
    g2.state = AIOD__TASK_STATE__TASK_CANCELLED;
    send_output_end(fd, g->request_id, 51, AIOD__TASK_STATE__TASK_DONE);
    send_outcomes(fd, g->request_id, gs, 2);
    pbvalue_free(g1.result);
    send_output_end(fd, run->request_id, 50, AIOD__TASK_STATE__TASK_DONE);
    send_done(fd, run->request_id, 50, "ran");

    CHECK(x->cancel->n_task_ids == 1 && x->cancel->task_ids[0] == 41);
    send_cancelled(fd, x->request_id, 7); /* more than asked: capped at 1 */
    msg_free(run);
    msg_free(g);
    msg_free(a);
    msg_free(x);
    expect_eof(fd);
}

static void on_last(aioc_request *req, int error, void *userdata) {
    on_done(req, error, userdata);
    lg.flag = 1;
}

static aioc_client *cl;
static aioc_request *chained;

static void on_await_done(aioc_request *req, int error, void *userdata) {
    static const uint64_t id = 41;
    on_done(req, error, userdata);
    /* Start a new request from a callback, and free this one. */
    assert_int_equal(aioc_outcome_state(aioc_request_outcome(req, 1)), AIOC_STATE_FAILED);
    assert_int_equal(aioc_start_cancel(cl, &id, 1, on_last, "cancel", &chained), 0);
    aioc_request_free(req);
}

static void test_pipelined(void **state) {
    pid_t pid = start_daemon(script_pipelined);
    aioc_request *run = NULL, *g = NULL, *a = NULL;
    const uint64_t ids[] = {40, 41};

    memset(&lg, 0, sizeof(lg));
    assert_int_equal(aioc_connect(path, &cl), 0);
    aioc_set_output_callback(cl, on_line, "client");
    aioc_call *call = aioc_call_new("demo.a");
    assert_int_equal(aioc_start_run(cl, call, 1.5, on_done, "run", &run), 0);
    aioc_request_set_output_callback(run, on_line, "run");
    aioc_call *items[2] = {aioc_call_new("demo.b"), aioc_call_task(12)};
    assert_int_equal(aioc_start_gather(cl, (const aioc_call *const *)items, 2,
                                       AIOC_GATHER_FOLLOW | AIOC_GATHER_RETURN_EXCEPTIONS, 4,
                                       on_done, "gather", &g),
                     0);
    /* The request was packed: the items may go at once. */
    aioc_call_free(call);
    aioc_call_free(items[0]);
    aioc_call_free(items[1]);
    assert_int_equal(aioc_start_await(cl, ids, 2, 0, 0, on_await_done, "await", &a), 0);
    assert_int_equal(aioc_request_done(run), 0);
    assert_int_equal(aioc_request_error(run), -EINPROGRESS);
    assert_int_equal(aioc_request_task_id(run), 0);

    /* Wait for the chained cancel, the last to complete. */
    assert_int_equal(pump(cl, &lg.flag), 4);
    assert_int_equal(lg.n_done, 4);
    assert_string_equal(lg.done[0], "await:0");
    assert_string_equal(lg.done[1], "gather:0");
    assert_string_equal(lg.done[2], "run:0");
    assert_string_equal(lg.done[3], "cancel:0");
    assert_int_equal(lg.n_lines, 2);
    assert_string_equal(lg.lines[0], "run:50:run line");
    assert_string_equal(lg.lines[1], "client:51:gather line");

    assert_int_equal(aioc_request_task_id(run), 50);
    size_t n_ids = 0;
    const uint64_t *ids_of_g = aioc_request_task_ids(g, &n_ids);
    assert_int_equal(n_ids, 2);
    assert_int_equal(ids_of_g[0], 51);
    assert_int_equal(ids_of_g[1], 12);
    /* Every id met its final frame: no bookkeeping is left. */
    assert_int_equal(cl->n_entries, 0);
    assert_int_equal(aioc_request_n_outcomes(run), 1);
    assert_string_equal(aioc_value_get_string(aioc_outcome_result(aioc_request_outcome(run, 0))),
                        "ran");
    assert_int_equal(aioc_request_n_outcomes(g), 2);
    assert_int_equal(aioc_outcome_state(aioc_request_outcome(g, 1)), AIOC_STATE_CANCELLED);
    aioc_outcome *o = aioc_request_take_outcome(g, 0);
    assert_int_equal(aioc_value_get_int(aioc_outcome_result(o)), 1);
    assert_null(aioc_request_outcome(g, 0));
    assert_null(aioc_request_take_outcome(g, 0));
    assert_null(aioc_request_outcome(g, 2));
    aioc_outcome_free(o);
    assert_int_equal(aioc_request_count(chained), 1);
    assert_int_equal(aioc_request_count(g), -EINVAL);
    assert_int_equal(aioc_request_cancel(g), -EALREADY);
    /* Nothing left: processing returns 0 at once. */
    assert_int_equal(aioc_process(cl), 0);
    aioc_request_free(run);
    aioc_request_free(g);
    aioc_request_free(chained);
    chained = NULL;
    aioc_close(cl);
    end_daemon(pid);
}

/* ------------------------------------------------------------ errors */

static void script_errors(int fd) {
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *a = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    Aiod__ClientMessage *g = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_GATHER);
    CHECK(!g->gather->follow && !g->gather->return_exceptions && g->gather->timeout == 0);
    Aiod__ClientMessage *s = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_SUBMIT);
    CHECK(s->submit->ownership == AIOD__OWNERSHIP__DETACHED && !s->submit->follow);
    Aiod__ClientMessage *l = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_LOGS);
    CHECK(l->logs->follow && l->logs->task_id == 33);
    Aiod__ClientMessage *w = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    CHECK(w->await->cancel_on_timeout && w->await->timeout == 0.25);
    Aiod__ClientMessage *u = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_GATHER);

    send_output(fd, l->request_id, 33, "log 1");
    send_error(fd, a->request_id, AIOD__ERROR_CODE__ERROR_NO_SUCH_TASK, "no task 5", NULL);
    Aiod__Outcome o = AIOD__OUTCOME__INIT;
    o.task_id = 61;
    o.state = AIOD__TASK_STATE__TASK_FAILED;
    o.error_kind = (char *)"ValueError";
    o.error_message = (char *)"bad";
    send_error(fd, g->request_id, AIOD__ERROR_CODE__ERROR_TASK_FAILED, "task 61 failed", &o);
    send_submitted(fd, s->request_id, 0); /* a task id 0 is a protocol error */
    send_output(fd, l->request_id, 33, "log 2");
    send_output_end(fd, l->request_id, 33, AIOD__TASK_STATE__TASK_FAILED);
    send_error(fd, w->request_id, AIOD__ERROR_CODE__ERROR_TIMEOUT, "timed out", NULL);
    /* A run is a one-item gather to the daemon, which says so: the
     * library leaves that out, as aioctl does. */
    send_error(fd, u->request_id, AIOD__ERROR_CODE__ERROR_UNKNOWN_FUNCTION,
               "gather item 1: unknown 'x.y'", NULL);
    msg_free(a);
    msg_free(g);
    msg_free(s);
    msg_free(l);
    msg_free(w);
    msg_free(u);
    expect_eof(fd);
}

static void test_errors(void **state) {
    pid_t pid = start_daemon(script_errors);
    aioc_request *rq[6] = {NULL};
    const uint64_t ids[] = {5};
    aioc_client *c = NULL;

    memset(&lg, 0, sizeof(lg));
    assert_int_equal(aioc_connect(path, &c), 0);
    aioc_set_output_callback(c, on_line, "client");
    aioc_call *call = aioc_call_new("demo.x");
    aioc_call *bad = aioc_call_new("x.y");
    const aioc_call *items[] = {call};
    assert_int_equal(aioc_start_await(c, ids, 1, 0, -1, on_done, "await", &rq[0]), 0);
    assert_int_equal(aioc_start_gather(c, items, 1, 0, 0, on_done, "gather", &rq[1]), 0);
    assert_int_equal(aioc_start_submit(c, call, AIOC_SUBMIT_DETACHED, on_done, "submit", &rq[2]),
                     0);
    assert_int_equal(aioc_start_logs(c, 33, AIOC_LOGS_FOLLOW, on_done, "logs", &rq[3]), 0);
    assert_int_equal(
        aioc_start_await(c, ids, 1, AIOC_AWAIT_CANCEL_ON_TIMEOUT, 0.25, on_done, "wait", &rq[4]),
        0);
    assert_int_equal(aioc_start_run(c, bad, 0, on_last, "run", &rq[5]), 0);

    /* Argument checks: nothing is sent, nothing is returned. */
    aioc_request *none = NULL;
    const uint64_t zero[] = {0};
    assert_int_equal(aioc_start_await(c, zero, 1, 0, 0, NULL, NULL, &none), -EINVAL);
    assert_int_equal(aioc_start_await(c, ids, 0, 0, 0, NULL, NULL, &none), -EINVAL);
    assert_int_equal(aioc_start_await(c, ids, 1, 0x10, 0, NULL, NULL, &none), -EINVAL);
    assert_int_equal(aioc_start_await(c, ids, 1, 0, NAN, NULL, NULL, &none), -EINVAL);
    assert_int_equal(aioc_start_submit(c, call, 3, NULL, NULL, &none), -EINVAL);
    assert_int_equal(aioc_start_submit(c, call, 0x10, NULL, NULL, &none), -EINVAL);
    assert_int_equal(aioc_start_submit(NULL, call, 0, NULL, NULL, &none), -EINVAL);
    assert_int_equal(aioc_start_run(c, call, 0, NULL, NULL, NULL), -EINVAL);
    aioc_call *task = aioc_call_task(3);
    assert_int_equal(aioc_start_run(c, task, 0, NULL, NULL, &none), -EINVAL);
    aioc_call_free(task);
    assert_int_equal(aioc_start_gather(c, items, 1, 0x80, 0, NULL, NULL, &none), -EINVAL);
    assert_int_equal(aioc_start_gather(c, items, 0, 0, 0, NULL, NULL, &none), -EINVAL);
    assert_int_equal(aioc_start_cancel(c, ids, 0, NULL, NULL, &none), -EINVAL);
    assert_int_equal(aioc_start_logs(c, 0, 0, NULL, NULL, &none), -EINVAL);
    assert_int_equal(aioc_start_logs(c, 1, 0x2, NULL, NULL, &none), -EINVAL);
    assert_null(none);
    assert_int_equal(aioc_process(NULL), -EINVAL);
    assert_int_equal(aioc_events(NULL), -EINVAL);
    assert_int_equal(aioc_request_done(NULL), -EINVAL);
    assert_int_equal(aioc_request_error(NULL), -EINVAL);
    assert_int_equal(aioc_request_cancel(NULL), -EINVAL);
    assert_string_equal(aioc_request_error_message(NULL), "");
    aioc_request_free(NULL);

    assert_int_equal(pump(c, &lg.flag), 6);
    assert_int_equal(lg.n_done, 6);
    assert_string_equal(lg.done[0], "await:-3"); /* -ESRCH */
    assert_string_equal(aioc_request_error_message(rq[0]), "no task 5");
    assert_int_equal(aioc_request_n_outcomes(rq[0]), 0);
    assert_int_equal(aioc_request_error(rq[1]), -EIO);
    assert_string_equal(aioc_request_error_message(rq[1]), "task 61 failed");
    assert_int_equal(aioc_outcome_task_id(aioc_request_failed(rq[1])), 61);
    assert_string_equal(aioc_outcome_error_kind(aioc_request_failed(rq[1])), "ValueError");
    assert_int_equal(aioc_request_error(rq[2]), -EPROTO);
    assert_int_equal(aioc_request_task_id(rq[2]), 0);
    assert_int_equal(aioc_request_error(rq[3]), 0);
    assert_int_equal(aioc_request_state(rq[3]), AIOC_STATE_FAILED);
    assert_int_equal(lg.n_lines, 2);
    assert_string_equal(lg.lines[1], "client:33:log 2");
    assert_int_equal(aioc_request_error(rq[4]), -ETIMEDOUT);
    assert_int_equal(aioc_request_error(rq[5]), -ENOENT);
    assert_string_equal(aioc_request_error_message(rq[5]), "unknown 'x.y'");
    assert_int_equal(aioc_request_task_id(rq[5]), 0);
    /* The connection is still fine. */
    assert_int_equal(aioc_process(c), 0);
    for (int i = 0; i < 6; i++)
        aioc_request_free(rq[i]);
    aioc_call_free(call);
    aioc_call_free(bad);
    aioc_close(c);
    end_daemon(pid);
}

/* ------------------------------------------------------------ nothing ready, partial writes */

/* The daemon reads a request and answers nothing until a second one comes;
 * then a request too big for the socket buffer is read only after the
 * client has seen POLLOUT wanted. */
static int go_pipe[2];

static void script_idle(int fd) {
    do_hello(fd, 8u << 20);
    Aiod__ClientMessage *a = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    Aiod__ClientMessage *x = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_CANCEL);
    send_cancelled(fd, x->request_id, 1);
    send_done(fd, a->request_id, 5, "late");
    msg_free(a);
    msg_free(x);

    /* Wait until the client has seen that its big request is queued. */
    char go;
    read_exactly(go_pipe[0], &go, 1);
    Aiod__ClientMessage *s = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_SUBMIT);
    CHECK(s->submit->call->n_args == 1 &&
          strlen(s->submit->call->args[0]->string_value) == (size_t)(4u << 20) - 1);
    send_submitted(fd, s->request_id, 6);
    msg_free(s);
    expect_eof(fd);
}

static void test_idle(void **state) {
    assert_int_equal(pipe(go_pipe), 0);
    pid_t pid = start_daemon(script_idle);
    aioc_request *a = NULL, *x = NULL, *s = NULL;
    const uint64_t ids[] = {5};
    aioc_client *c = NULL;

    memset(&lg, 0, sizeof(lg));
    assert_int_equal(aioc_connect(path, &c), 0);
    assert_int_equal(aioc_events(c), POLLIN);
    assert_int_equal(aioc_start_await(c, ids, 1, 0, 0, on_last, "await", &a), 0);
    /* The daemon is silent: nothing to do, and no waiting. */
    double t0 = now();
    for (int i = 0; i < 100; i++)
        assert_int_equal(aioc_process(c), 0);
    assert_true(now() - t0 < 0.5);
    assert_int_equal(aioc_events(c), POLLIN);
    assert_int_equal(lg.n_done, 0);

    assert_int_equal(aioc_start_cancel(c, ids, 1, on_done, "cancel", &x), 0);
    assert_int_equal(pump(c, &lg.flag), 2);
    assert_string_equal(lg.done[0], "cancel:0");
    assert_string_equal(lg.done[1], "await:0");
    assert_int_equal(aioc_request_count(x), 1);

    /* 4 MiB do not fit in the socket buffer: the rest waits for POLLOUT. */
    char *big = malloc(4u << 20);
    assert_non_null(big);
    memset(big, 'b', (4u << 20) - 1);
    big[(4u << 20) - 1] = '\0';
    aioc_call *call = aioc_call_new("demo.big");
    assert_int_equal(aioc_call_arg_text(call, big), 0);
    free(big);
    lg.flag = 0;
    assert_int_equal(aioc_start_submit(c, call, AIOC_SUBMIT_SUBMITTED, on_last, "big", &s), 0);
    aioc_call_free(call);
    assert_int_equal(aioc_events(c), POLLIN | POLLOUT);
    assert_int_equal(write(go_pipe[1], "g", 1), 1);
    assert_int_equal(pump(c, &lg.flag), 1);
    assert_int_equal(aioc_events(c), POLLIN);
    assert_int_equal(aioc_request_task_id(s), 6);
    aioc_request_free(a);
    aioc_request_free(x);
    aioc_request_free(s);
    aioc_close(c);
    end_daemon(pid);
    close(go_pipe[0]);
    close(go_pipe[1]);
}

/* ------------------------------------------------------------ the idle callback */

/* The idle callback runs while a blocking call waits for the daemon: a
 * library call from it must get -EBUSY, as from any callback. (aioc_process
 * got 0 and could take the reply the waiting call was for, which then
 * waited for ever.) The daemon answers only once the callback has run. */
static int idle_go[2];
static int idle_process_r = 1, idle_calls;

static void script_idle_callback(int fd) {
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *a = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    char go;
    read_exactly(idle_go[0], &go, 1);
    send_done(fd, a->request_id, 7, "seven");
    msg_free(a);
    expect_eof(fd);
}

static void on_idle(void *userdata) {
    aioc_client *c = userdata;
    if (idle_calls++ == 0) {
        idle_process_r = aioc_process(c);
        CHECK(write(idle_go[1], "g", 1) == 1);
    }
}

static void test_idle_callback(void **state) {
    (void)state;
    assert_int_equal(pipe(idle_go), 0);
    pid_t pid = start_daemon(script_idle_callback);
    aioc_client *c = NULL;
    assert_int_equal(aioc_connect(path, &c), 0);
    aioc_set_idle_callback(c, on_idle, c);
    const uint64_t ids[] = {7};
    aioc_outcome *o = NULL;
    assert_int_equal(aioc_await(c, ids, 1, 0, &o), 0);
    assert_true(idle_calls >= 1);
    assert_int_equal(idle_process_r, -EBUSY);
    assert_string_equal(aioc_value_get_string(aioc_outcome_result(o)), "seven");
    aioc_outcome_free(o);
    aioc_close(c);
    end_daemon(pid);
    close(idle_go[0]);
    close(idle_go[1]);
}

/* An infinite (or any over 1e9 s) timeout is no limit: sent as 0, which
 * the daemon takes, rather than as a value it refuses (-EINVAL). */
static void script_forever(int fd) {
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *a = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    CHECK(a->await->timeout == 0);
    send_done(fd, a->request_id, 8, "eight");
    msg_free(a);
    expect_eof(fd);
}

static void test_timeout_forever(void **state) {
    (void)state;
    pid_t pid = start_daemon(script_forever);
    aioc_client *c = NULL;
    assert_int_equal(aioc_connect(path, &c), 0);
    const uint64_t ids[] = {8};
    aioc_outcome *o = NULL;
    assert_int_equal(aioc_await(c, ids, 1, INFINITY, &o), 0);
    aioc_outcome_free(o);
    aioc_close(c);
    end_daemon(pid);
}

/* ------------------------------------------------------------ a vanished daemon */

static void script_vanish(int fd) {
    static const uint64_t ids[] = {70};
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *run = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_GATHER);
    check_run_gather(run, "demo.x", 0);
    Aiod__ClientMessage *a = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    send_started(fd, run->request_id, ids, 1);
    send_output(fd, run->request_id, 70, "before the end");
    msg_free(run);
    msg_free(a);
    /* Gone, with both requests in flight. */
}

static void test_vanish(void **state) {
    pid_t pid = start_daemon(script_vanish);
    aioc_request *run = NULL, *a = NULL, *none = NULL;
    const uint64_t ids[] = {5};
    aioc_client *c = NULL;

    memset(&lg, 0, sizeof(lg));
    assert_int_equal(aioc_connect(path, &c), 0);
    aioc_set_output_callback(c, on_line, "client");
    aioc_call *call = aioc_call_new("demo.x");
    assert_int_equal(aioc_start_run(c, call, 0, on_done, "run", &run), 0);
    assert_int_equal(aioc_start_await(c, ids, 1, 0, 0, on_done, "await", &a), 0);
    assert_int_equal(pump(c, &lg.flag), -ECONNRESET);
    assert_int_equal(lg.n_done, 2);
    assert_string_equal(lg.done[0], "run:-104");
    assert_string_equal(lg.done[1], "await:-104");
    assert_int_equal(lg.n_lines, 1);
    assert_string_equal(lg.lines[0], "client:70:before the end");
    assert_int_equal(aioc_request_task_id(run), 70);
    /* Dead for good: every call says so at once. */
    assert_int_equal(aioc_process(c), -ECONNRESET);
    assert_int_equal(aioc_start_run(c, call, 0, on_done, "run", &none), -ECONNRESET);
    assert_null(none);
    assert_int_equal(aioc_cancel(c, ids, 1), -ECONNRESET);
    assert_int_equal(aioc_process(c), -ECONNRESET);
    assert_int_equal(lg.n_done, 2);
    aioc_call_free(call);
    aioc_request_free(run);
    aioc_request_free(a);
    aioc_close(c);
    end_daemon(pid);
}

/* ------------------------------------------------------------ mixing, cancelling, closing */

/* A blocking call while a started request is in flight: the started one's
 * reply comes first and must not be lost. Then a connection-level error. */
static void script_mixed(int fd) {
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *a = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    Aiod__ClientMessage *x = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_CANCEL);
    send_output(fd, a->request_id, 5, "to the request");
    send_done(fd, a->request_id, 5, "first");
    send_cancelled(fd, x->request_id, 0);
    msg_free(a);
    msg_free(x);
    Aiod__ClientMessage *w = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    send_error(fd, 0, AIOD__ERROR_CODE__ERROR_BAD_MESSAGE, "cannot decode the frame", NULL);
    msg_free(w);
    expect_eof(fd);
}

static void test_mixed(void **state) {
    pid_t pid = start_daemon(script_mixed);
    aioc_request *a = NULL, *w = NULL;
    const uint64_t ids[] = {5};
    aioc_client *c = NULL;

    memset(&lg, 0, sizeof(lg));
    assert_int_equal(aioc_connect(path, &c), 0);
    assert_int_equal(aioc_start_await(c, ids, 1, 0, 0, on_done, "await", &a), 0);
    aioc_request_set_output_callback(a, on_line, "req");
    assert_int_equal(aioc_cancel(c, ids, 1), 0);
    /* The blocking call completed the started request; its callback waits
     * for aioc_process, which needs no poll for it. */
    assert_int_equal(aioc_request_done(a), 1);
    assert_int_equal(lg.n_done, 0);
    assert_int_equal(lg.n_lines, 1);
    assert_string_equal(lg.lines[0], "req:5:to the request");
    assert_int_equal(aioc_process(c), 1);
    assert_string_equal(lg.done[0], "await:0");
    assert_string_equal(aioc_value_get_string(aioc_outcome_result(aioc_request_outcome(a, 0))),
                        "first");

    assert_int_equal(aioc_start_await(c, ids, 1, 0, 0, on_last, "doomed", &w), 0);
    assert_int_equal(pump(c, &lg.flag), -EPROTO);
    assert_string_equal(lg.done[1], "doomed:-71");
    assert_string_equal(aioc_request_error_message(w), "cannot decode the frame");
    assert_string_equal(aioc_last_error(c), "cannot decode the frame");
    aioc_request_free(a);
    aioc_request_free(w);
    aioc_close(c);
    end_daemon(pid);
}

/* Cancelling and freeing runs: the daemon is asked to cancel their tasks,
 * also when the task id was not known yet (as soon as Started names it);
 * late replies are ignored. */
static void script_cancel(int fd) {
    static const uint64_t t1[] = {81}, t2[] = {82}, t3[] = {83};
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *s1 = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_GATHER);
    Aiod__ClientMessage *s2 = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_GATHER);
    Aiod__ClientMessage *s3 = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_GATHER);
    Aiod__ClientMessage *a = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    send_started(fd, s1->request_id, t1, 1);
    /* The client cancels run 1 now that its task is known. */
    Aiod__ClientMessage *x1 = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_CANCEL);
    CHECK(x1->cancel->task_ids[0] == 81);
    send_cancelled(fd, x1->request_id, 1);
    send_done(fd, s1->request_id, 81, "too late");
    /* Run 2 was cancelled, run 3 freed, before their tasks were known. */
    send_started(fd, s2->request_id, t2, 1);
    Aiod__ClientMessage *x2 = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_CANCEL);
    CHECK(x2->cancel->task_ids[0] == 82);
    send_output(fd, s3->request_id, 83, "before Started: dropped");
    send_started(fd, s3->request_id, t3, 1);
    Aiod__ClientMessage *x3 = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_CANCEL);
    CHECK(x3->cancel->task_ids[0] == 83);
    send_output(fd, s3->request_id, 83, "after Started: dropped");
    send_cancelled(fd, x2->request_id, 1);
    send_cancelled(fd, x3->request_id, 1);
    send_error(fd, s2->request_id, AIOD__ERROR_CODE__ERROR_CANCELLED, "cancelled", NULL);
    send_error(fd, s3->request_id, AIOD__ERROR_CODE__ERROR_CANCELLED, "cancelled", NULL);
    /* The plain await goes last: the client waits for it, then closes
     * with a second await in flight. */
    send_done(fd, a->request_id, 5, "ok");
    Aiod__ClientMessage *a2 = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    msg_free(s1);
    msg_free(s2);
    msg_free(s3);
    msg_free(a);
    msg_free(x1);
    msg_free(x2);
    msg_free(x3);
    msg_free(a2);
    expect_eof(fd);
}

static void on_run1(aioc_request *req, int error, void *userdata) {
    (void)req;
    (void)error;
    (void)userdata;
    fail_msg("a cancelled request's callback ran");
}

static void test_cancel(void **state) {
    pid_t pid = start_daemon(script_cancel);
    aioc_request *r1 = NULL, *r2 = NULL, *r3 = NULL, *a = NULL, *a2 = NULL;
    const uint64_t ids[] = {5};
    aioc_client *c = NULL;

    memset(&lg, 0, sizeof(lg));
    assert_int_equal(aioc_connect(path, &c), 0);
    aioc_set_output_callback(c, on_line, "client");
    aioc_call *call = aioc_call_new("demo.x");
    assert_int_equal(aioc_start_run(c, call, 0, on_run1, NULL, &r1), 0);
    assert_int_equal(aioc_start_run(c, call, 0, on_run1, NULL, &r2), 0);
    assert_int_equal(aioc_start_run(c, call, 0, on_run1, NULL, &r3), 0);
    assert_int_equal(aioc_start_await(c, ids, 1, 0, 0, on_last, "await", &a), 0);
    assert_int_equal(aioc_request_cancel(r2), 0);
    assert_int_equal(aioc_request_error(r2), -ECANCELED);
    aioc_request_free(r3);
    /* Process until run 1's task exists, then cancel it. */
    while (aioc_request_task_id(r1) == 0) {
        struct pollfd p = {.fd = aioc_fd(c), .events = (short)aioc_events(c)};
        assert_true(poll(&p, 1, 5000) > 0);
        assert_true(aioc_process(c) >= 0);
    }
    assert_int_equal(aioc_request_cancel(r1), 0);
    assert_int_equal(aioc_request_cancel(r1), -EALREADY);
    assert_int_equal(pump(c, &lg.flag), 1);
    assert_string_equal(lg.done[0], "await:0");
    assert_int_equal(aioc_request_n_outcomes(r1), 0);
    assert_int_equal(aioc_request_error(r1), -ECANCELED);
    assert_int_equal(aioc_request_end(r1), AIOC_END_CANCELLED);
    /* The freed run's lines went nowhere, not to the client's callback. */
    assert_int_equal(lg.n_lines, 0);
    /* Every id met its final frame: no bookkeeping is left. */
    assert_int_equal(c->n_entries, 0);

    /* Closing with a request in flight: it completes, without callback. */
    assert_int_equal(aioc_start_await(c, ids, 1, 0, 0, on_run1, NULL, &a2), 0);
    aioc_close(c);
    assert_int_equal(aioc_request_done(a2), 1);
    assert_int_equal(aioc_request_error(a2), -ECONNABORTED);
    assert_int_equal(aioc_request_end(a2), AIOC_END_CLOSED);
    assert_int_equal(aioc_request_cancel(a2), -EALREADY);
    aioc_request_free(a2);
    aioc_request_free(r1);
    aioc_request_free(r2);
    aioc_request_free(a);
    aioc_call_free(call);
    end_daemon(pid);
}

/* ------------------------------------------------------------ Started, events, ends */

/* A followed gather with the Started event, a run cancelled from its
 * STARTED event, two followed submits (one freed after its completion),
 * bodies no aiod.proto has, and a line for an id whose final frame has
 * passed. */
static void script_started(int fd) {
    static const uint64_t g_ids[] = {91, 92}, r_ids[] = {95};
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *g = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_GATHER);
    CHECK(g->gather->n_items == 2 && g->gather->follow);
    Aiod__ClientMessage *r = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_GATHER);
    check_run_gather(r, "demo.r", 0);
    Aiod__ClientMessage *s1 = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_SUBMIT);
    Aiod__ClientMessage *s2 = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_SUBMIT);
    CHECK(s1->submit->follow && s2->submit->follow);
    Aiod__ClientMessage *last = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_AWAIT);

    send_unknown_body(fd, g->request_id); /* a newer daemon's event: skipped */
    send_unknown_body(fd, 0);
    send_started(fd, g->request_id, g_ids, 2);
    send_output(fd, g->request_id, 91, "g line");
    send_output_end(fd, g->request_id, 91, AIOD__TASK_STATE__TASK_DONE);
    send_started(fd, r->request_id, r_ids, 1);
    /* The client cancels the run from its STARTED event. */
    Aiod__ClientMessage *x = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_CANCEL);
    CHECK(x->cancel->n_task_ids == 1 && x->cancel->task_ids[0] == 95);
    send_cancelled(fd, x->request_id, 1);
    send_error(fd, r->request_id, AIOD__ERROR_CODE__ERROR_CANCELLED, "cancelled", NULL);
    send_submitted(fd, s1->request_id, 96);
    send_submitted(fd, s2->request_id, 97);
    /* Wait until the client has freed s2 in its completion callback. */
    char go;
    read_exactly(go_pipe[0], &go, 1);
    send_output(fd, s1->request_id, 96, "s1 line");
    send_output(fd, s2->request_id, 97, "s2 line, freed: dropped");
    send_output_end(fd, s1->request_id, 96, AIOD__TASK_STATE__TASK_DONE);
    send_output_end(fd, s2->request_id, 97, AIOD__TASK_STATE__TASK_FAILED);
    Aiod__Outcome o1 = AIOD__OUTCOME__INIT, o2 = AIOD__OUTCOME__INIT, *os[] = {&o1, &o2};
    o1.task_id = 91;
    o1.state = AIOD__TASK_STATE__TASK_DONE;
    o2.task_id = 92;
    o2.state = AIOD__TASK_STATE__TASK_FAILED;
    send_outcomes(fd, g->request_id, os, 2);
    /* Against the rules: a line after s2's final frame. Its id is no
     * longer the library's, so it is treated as a blocking call's. */
    send_output(fd, s2->request_id, 97, "after the end");
    send_done(fd, last->request_id, 5, "last");
    msg_free(g);
    msg_free(r);
    msg_free(s1);
    msg_free(s2);
    msg_free(last);
    msg_free(x);
    expect_eof(fd);
}

static void on_event(aioc_request *req, int event, uint64_t task_id, int state, void *userdata) {
    size_t n = 0;
    const uint64_t *ids = aioc_request_task_ids(req, &n);
    if (event == AIOC_EVENT_STARTED) {
        assert_non_null(ids);
        assert_int_equal(ids[0], task_id);
    }
    assert_true(lg.n_lines < 16);
    snprintf(lg.lines[lg.n_lines++], sizeof(lg.lines[0]), "%s:event%d:%d:%d:n%zu",
             (const char *)userdata, event, (int)task_id, state, n);
}

/* The run's STARTED event cancels it (its task is cancelled at once). */
static void on_run_event(aioc_request *req, int event, uint64_t task_id, int state,
                         void *userdata) {
    on_event(req, event, task_id, state, userdata);
    if (event == AIOC_EVENT_STARTED)
        assert_int_equal(aioc_request_cancel(req), 0);
}

static void on_free_it(aioc_request *req, int error, void *userdata) {
    on_done(req, error, userdata);
    aioc_request_free(req);
    assert_int_equal(write(go_pipe[1], "g", 1), 1);
}

static void test_started(void **state) {
    assert_int_equal(pipe(go_pipe), 0);
    pid_t pid = start_daemon(script_started);
    aioc_request *g = NULL, *r = NULL, *s1 = NULL, *s2 = NULL, *last = NULL;
    const uint64_t five[] = {5};
    aioc_client *c = NULL;

    memset(&lg, 0, sizeof(lg));
    assert_int_equal(aioc_connect(path, &c), 0);
    aioc_set_output_callback(c, on_line, "client");
    aioc_call *items[2] = {aioc_call_new("demo.a"), aioc_call_new("demo.b")};
    aioc_call *rc = aioc_call_new("demo.r");
    assert_int_equal(aioc_start_gather(c, (const aioc_call *const *)items, 2,
                                       AIOC_GATHER_FOLLOW | AIOC_GATHER_RETURN_EXCEPTIONS, 0,
                                       on_done, "g", &g),
                     0);
    aioc_request_set_output_callback(g, on_line, "g");
    aioc_request_set_event_callback(g, on_event, "g");
    assert_int_equal(aioc_start_run(c, rc, 0, on_done, "r", &r), 0);
    aioc_request_set_event_callback(r, on_run_event, "r");
    assert_int_equal(aioc_start_submit(c, items[0], AIOC_SUBMIT_FOLLOW, on_done, "s1", &s1), 0);
    aioc_request_set_output_callback(s1, on_line, "s1");
    aioc_request_set_event_callback(s1, on_event, "s1");
    assert_int_equal(aioc_start_submit(c, items[1], AIOC_SUBMIT_FOLLOW, on_free_it, "s2", &s2), 0);
    assert_int_equal(aioc_start_await(c, five, 1, 0, 0, on_last, "last", &last), 0);
    size_t n = 99;
    assert_null(aioc_request_task_ids(g, &n));
    assert_int_equal(n, 0);
    assert_int_equal(aioc_request_end(g), -EINPROGRESS);
    assert_int_equal(c->n_entries, 5);

    assert_int_equal(pump(c, &lg.flag), 4);
    assert_int_equal(lg.n_done, 4);
    assert_string_equal(lg.done[0], "s1:0");
    assert_string_equal(lg.done[1], "s2:0");
    assert_string_equal(lg.done[2], "g:0");
    assert_string_equal(lg.done[3], "last:0");
    /* Lines and events, in the order the daemon sent them; nothing of the
     * freed s2 until its final frame had passed. */
    assert_int_equal(lg.n_lines, 7);
    assert_string_equal(lg.lines[0], "g:event1:91:0:n2");
    assert_string_equal(lg.lines[1], "g:91:g line");
    assert_string_equal(lg.lines[2], "g:event2:91:3:n2");
    assert_string_equal(lg.lines[3], "r:event1:95:0:n1");
    assert_string_equal(lg.lines[4], "s1:96:s1 line");
    assert_string_equal(lg.lines[5], "s1:event2:96:3:n1");
    assert_string_equal(lg.lines[6], "client:97:after the end");

    assert_int_equal(aioc_request_error(r), -ECANCELED);
    assert_int_equal(aioc_request_end(r), AIOC_END_CANCELLED);
    assert_int_equal(aioc_request_task_id(r), 95);
    assert_int_equal(aioc_request_end(g), AIOC_END_COMPLETED);
    assert_int_equal(aioc_request_n_outcomes(g), 2);
    const uint64_t *ids = aioc_request_task_ids(s1, &n);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 96);
    /* Every id met its final frame: no bookkeeping is left. */
    assert_int_equal(c->n_entries, 0);
    assert_null(aioc_request_task_ids(NULL, &n));
    assert_null(aioc_request_task_ids(g, NULL));
    assert_int_equal(aioc_request_end(NULL), -EINVAL);
    aioc_request_free(g);
    aioc_request_free(r);
    aioc_request_free(s1);
    aioc_request_free(last);
    aioc_call_free(items[0]);
    aioc_call_free(items[1]);
    aioc_call_free(rc);
    aioc_close(c);
    end_daemon(pid);
    close(go_pipe[0]);
    close(go_pipe[1]);
}

/* A daemon without the Started event: the ids come with the outcomes; a
 * run freed in flight has its lines dropped and ends at its final frame
 * (no Cancel can be sent: its task id never came). */
static void script_no_started(int fd) {
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *g = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_GATHER);
    Aiod__ClientMessage *r = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_GATHER);
    send_output(fd, r->request_id, 88, "freed run: dropped");
    send_output_end(fd, r->request_id, 88, AIOD__TASK_STATE__TASK_DONE);
    send_done(fd, r->request_id, 88, "nobody reads this");
    send_output(fd, g->request_id, 87, "g line");
    send_done(fd, g->request_id, 87, "g");
    msg_free(g);
    msg_free(r);
    expect_eof(fd);
}

static void test_no_started(void **state) {
    pid_t pid = start_daemon(script_no_started);
    aioc_request *g = NULL, *r = NULL;
    aioc_client *c = NULL;

    memset(&lg, 0, sizeof(lg));
    assert_int_equal(aioc_connect(path, &c), 0);
    aioc_set_output_callback(c, on_line, "client");
    aioc_call *call = aioc_call_new("demo.x");
    const aioc_call *items[] = {call};
    assert_int_equal(aioc_start_gather(c, items, 1, AIOC_GATHER_FOLLOW, 0, on_last, "g", &g), 0);
    aioc_request_set_event_callback(g, on_event, "g");
    assert_int_equal(aioc_start_run(c, call, 0, on_run1, NULL, &r), 0);
    aioc_request_free(r);
    assert_int_equal(c->n_entries, 2); /* the freed run's id stays until its end */
    assert_int_equal(pump(c, &lg.flag), 1);
    assert_int_equal(lg.n_lines, 1);
    assert_string_equal(lg.lines[0], "client:87:g line");
    size_t n = 0;
    const uint64_t *ids = aioc_request_task_ids(g, &n);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 87);
    assert_int_equal(c->n_entries, 0);
    aioc_request_free(g);
    aioc_call_free(call);
    aioc_close(c);
    end_daemon(pid);
}

/* Two followed submits whose streams the daemon ends with an Error after
 * Submitted, as it does when too many streams are open (the task runs
 * unfollowed) and when it stops; then an await, the end of the script. */
static void script_stream_error(int fd) {
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *s1 = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_SUBMIT);
    Aiod__ClientMessage *s2 = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_SUBMIT);
    Aiod__ClientMessage *last = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    send_submitted(fd, s1->request_id, 71);
    send_error(fd, s1->request_id, AIOD__ERROR_CODE__ERROR_LIMIT,
               "task 71 runs unfollowed: too many output streams open", NULL);
    send_submitted(fd, s2->request_id, 72);
    send_output(fd, s2->request_id, 72, "s2 line");
    send_error(fd, s2->request_id, AIOD__ERROR_CODE__ERROR_SHUTTING_DOWN,
               "aiod is stopping: task 72 (demo.b) runs again", NULL);
    send_done(fd, last->request_id, 5, "last");
    msg_free(s1);
    msg_free(s2);
    msg_free(last);
    expect_eof(fd);
}

/* The event of a stream that ended with an error: its state is the error's
 * negative errno, the request's message the daemon's (its error stays 0:
 * the task was created). */
static void on_stream_event(aioc_request *req, int event, uint64_t task_id, int state,
                            void *userdata) {
    on_event(req, event, task_id, state, userdata);
    assert_true(lg.n_lines < 16);
    snprintf(lg.lines[lg.n_lines++], sizeof(lg.lines[0]), "%s:error%d:%s", (const char *)userdata,
             aioc_request_error(req), aioc_request_error_message(req));
}

static void test_stream_error(void **state) {
    pid_t pid = start_daemon(script_stream_error);
    aioc_request *s1 = NULL, *s2 = NULL, *last = NULL;
    const uint64_t five[] = {5};
    aioc_client *c = NULL;

    memset(&lg, 0, sizeof(lg));
    assert_int_equal(aioc_connect(path, &c), 0);
    aioc_set_output_callback(c, on_line, "client");
    aioc_call *call = aioc_call_new("demo.a");
    assert_int_equal(aioc_start_submit(c, call, AIOC_SUBMIT_FOLLOW, on_done, "s1", &s1), 0);
    aioc_request_set_event_callback(s1, on_stream_event, "s1");
    assert_int_equal(aioc_start_submit(c, call, AIOC_SUBMIT_FOLLOW, on_done, "s2", &s2), 0);
    aioc_request_set_event_callback(s2, on_stream_event, "s2");
    aioc_request_set_output_callback(s2, on_line, "s2");
    assert_int_equal(aioc_start_await(c, five, 1, 0, 0, on_last, "last", &last), 0);
    assert_int_equal(pump(c, &lg.flag), 3);
    /* Each submit completed with its task id; its stream's end came as
     * AIOC_EVENT_OUTPUT_END with the daemon's error as a negative errno for
     * a state (-EAGAIN, -ESHUTDOWN), its message kept. */
    assert_int_equal(lg.n_done, 3);
    assert_string_equal(lg.done[0], "s1:0");
    assert_string_equal(lg.done[1], "s2:0");
    assert_int_equal(lg.n_lines, 5);
    assert_string_equal(lg.lines[0], "s1:event2:71:-11:n1");
    assert_string_equal(lg.lines[1],
                        "s1:error0:task 71 runs unfollowed: too many output streams open");
    assert_string_equal(lg.lines[2], "s2:72:s2 line");
    assert_string_equal(lg.lines[3], "s2:event2:72:-108:n1");
    assert_string_equal(lg.lines[4], "s2:error0:aiod is stopping: task 72 (demo.b) runs again");
    assert_int_equal(aioc_request_task_id(s1), 71);
    assert_int_equal(aioc_request_error(s1), 0);
    assert_string_equal(aioc_request_error_message(s1),
                        "task 71 runs unfollowed: too many output streams open");
    assert_int_equal(aioc_request_error(s2), 0);
    assert_int_equal(aioc_request_end(s2), AIOC_END_COMPLETED);
    assert_int_equal(c->n_entries, 0);
    aioc_request_free(s1);
    aioc_request_free(s2);
    aioc_request_free(last);
    aioc_call_free(call);
    aioc_close(c);
    end_daemon(pid);
}

/* ------------------------------------------------------------ blocking calls and events */

/* aioc_run's Gather answered as the daemon now does: Started, a body no
 * aiod.proto has, output, the OutputEnd, then the Outcomes. Then a gather
 * that fails fast: its Error is its final frame. */
static void script_blocking_started(int fd) {
    static const uint64_t ids[] = {61};
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *r = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_GATHER);
    check_run_gather(r, "demo.x", 2);
    send_started(fd, r->request_id, ids, 1);
    send_unknown_body(fd, r->request_id);
    send_output(fd, r->request_id, 61, "run line");
    send_output_end(fd, r->request_id, 61, AIOD__TASK_STATE__TASK_DONE);
    send_done(fd, r->request_id, 61, "ran");
    Aiod__ClientMessage *g = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_GATHER);
    static const uint64_t gids[] = {62, 63};
    send_started(fd, g->request_id, gids, 2);
    Aiod__Outcome o = AIOD__OUTCOME__INIT;
    o.task_id = 63;
    o.state = AIOD__TASK_STATE__TASK_FAILED;
    o.error_kind = (char *)"KeyError";
    send_error(fd, g->request_id, AIOD__ERROR_CODE__ERROR_TASK_FAILED, "task 63 failed", &o);
    msg_free(r);
    msg_free(g);
    expect_eof(fd);
}

static void test_blocking_started(void **state) {
    pid_t pid = start_daemon(script_blocking_started);
    aioc_client *c = NULL;
    aioc_outcome *o = NULL, *os[2] = {NULL}, *failed = NULL;

    memset(&lg, 0, sizeof(lg));
    assert_int_equal(aioc_connect(path, &c), 0);
    aioc_set_output_callback(c, on_line, "client");
    aioc_call *call = aioc_call_new("demo.x");
    assert_int_equal(aioc_run(c, call, 2, &o), 0);
    assert_string_equal(aioc_value_get_string(aioc_outcome_result(o)), "ran");
    assert_int_equal(lg.n_lines, 1);
    assert_string_equal(lg.lines[0], "client:61:run line");
    const aioc_call *items[] = {call, call};
    assert_int_equal(aioc_gather(c, items, 2, 0, 0, os, &failed), -EIO);
    assert_int_equal(aioc_outcome_task_id(failed), 63);
    assert_int_equal(aioc_connection_error(c), 0);
    aioc_outcome_free(o);
    aioc_outcome_free(failed);
    aioc_call_free(call);
    aioc_close(c);
    end_daemon(pid);
}

/* ------------------------------------------------------------ re-entry */

static void script_reentry(int fd) {
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *a = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    send_done(fd, a->request_id, 5, "done");
    msg_free(a);
    /* Then gone, once the client has seen the reply. */
    char go;
    read_exactly(go_pipe[0], &go, 1);
}

static void on_reentering(aioc_request *req, int error, void *userdata) {
    aioc_client *c = userdata;
    static const uint64_t ids[] = {5};
    aioc_outcome *o = NULL;
    assert_int_equal(error, 0);
    /* Re-entry says -EBUSY, which never means a dead connection. */
    assert_int_equal(aioc_process(c), -EBUSY);
    assert_int_equal(aioc_await(c, ids, 1, 0, &o), -EBUSY);
    assert_int_equal(aioc_connection_error(c), 0);
    lg.flag = 1;
}

static void test_reentry(void **state) {
    assert_int_equal(pipe(go_pipe), 0);
    pid_t pid = start_daemon(script_reentry);
    aioc_request *a = NULL;
    const uint64_t ids[] = {5};
    aioc_client *c = NULL;

    memset(&lg, 0, sizeof(lg));
    assert_int_equal(aioc_connect(path, &c), 0);
    assert_int_equal(aioc_connection_error(c), 0);
    assert_int_equal(aioc_connection_error(NULL), -EINVAL);
    assert_int_equal(aioc_start_await(c, ids, 1, 0, 0, on_reentering, c, &a), 0);
    assert_int_equal(pump(c, &lg.flag), 1);
    assert_int_equal(write(go_pipe[1], "g", 1), 1);
    /* The daemon left: now the errors are the connection's. */
    int zero = 0;
    assert_int_equal(pump(c, &zero), -ECONNRESET);
    assert_int_equal(aioc_connection_error(c), -ECONNRESET);
    aioc_request_free(a);
    aioc_close(c);
    end_daemon(pid);
    close(go_pipe[0]);
    close(go_pipe[1]);
}

/* ------------------------------------------------------------ final callbacks */

static void script_final(int fd) {
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *a[5];
    for (int i = 0; i < 5; i++)
        a[i] = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    Aiod__ClientMessage *x = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_CANCEL);
    send_done(fd, a[2]->request_id, 5, "third");
    send_cancelled(fd, x->request_id, 0);
    /* The final frames of the cancelled and the freed one, late. */
    send_done(fd, a[0]->request_id, 5, "late");
    send_error(fd, a[1]->request_id, AIOD__ERROR_CODE__ERROR_TIMEOUT, "late", NULL);
    send_done(fd, a[3]->request_id, 5, "fourth");
    for (int i = 0; i < 5; i++)
        msg_free(a[i]);
    msg_free(x);
    expect_eof(fd);
}

static int final_calls;

static void on_final(aioc_request *req, int error, void *userdata) {
    final_calls++;
    assert_int_equal(aioc_request_done(req), 1);
    assert_true(lg.n_done < 16);
    snprintf(lg.done[lg.n_done++], sizeof(lg.done[0]), "%s:%d:%d", (const char *)userdata, error,
             aioc_request_end(req));
    /* A nested free from the callback aioc_request_free runs is ignored. */
    if (aioc_request_end(req) == AIOC_END_FREED)
        aioc_request_free(req);
}

static void test_final_callbacks(void **state) {
    pid_t pid = start_daemon(script_final);
    aioc_request *a[5] = {NULL};
    static const char *const names[] = {"cancelled", "freed", "third", "due-freed", "closed"};
    const uint64_t ids[] = {5};
    aioc_client *c = NULL;

    memset(&lg, 0, sizeof(lg));
    final_calls = 0;
    assert_int_equal(aioc_connect(path, &c), 0);
    assert_int_equal(aioc_set_flags(c, 0x80), -EINVAL);
    assert_int_equal(aioc_set_flags(NULL, 0), -EINVAL);
    assert_int_equal(aioc_set_flags(c, AIOC_FLAG_FINAL_CALLBACKS), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(aioc_start_await(c, ids, 1, 0, 0, on_final, (void *)names[i], &a[i]), 0);

    /* Cancelled: its callback comes from the next aioc_process. */
    assert_int_equal(aioc_request_cancel(a[0]), 0);
    assert_int_equal(final_calls, 0);
    /* Freed in flight: its callback runs inside aioc_request_free. */
    aioc_request_free(a[1]);
    assert_int_equal(final_calls, 1);
    assert_string_equal(lg.done[0], "freed:-125:3");
    /* A blocking call reads the third's reply: done, its callback due;
     * freeing it runs the callback there. */
    assert_int_equal(aioc_cancel(c, ids, 1), 0);
    assert_int_equal(aioc_request_done(a[2]), 1);
    assert_int_equal(final_calls, 1);
    aioc_request_free(a[2]);
    assert_int_equal(final_calls, 2);
    assert_string_equal(lg.done[1], "third:0:1");
    /* The cancelled one's callback, then the rest of the frames: the two
     * late final frames and the fourth's reply
     * (the blocking call may have read them into the library's buffer
     * already: process before polling.) */
    for (;;) {
        assert_true(aioc_process(c) >= 0);
        if (c->n_entries == 1)
            break;
        struct pollfd p = {.fd = aioc_fd(c), .events = (short)aioc_events(c)};
        assert_true(poll(&p, 1, 5000) > 0);
    }
    assert_int_equal(aioc_process(c), 0);
    assert_int_equal(final_calls, 4);
    assert_string_equal(lg.done[2], "cancelled:-125:2");
    assert_string_equal(lg.done[3], "due-freed:0:1");
    aioc_request_free(a[0]);
    aioc_request_free(a[3]);
    assert_int_equal(final_calls, 4);
    /* Closing with one in flight: its callback runs inside aioc_close. */
    aioc_close(c);
    assert_int_equal(final_calls, 5);
    assert_string_equal(lg.done[4], "closed:-103:4");
    assert_int_equal(aioc_request_error(a[4]), -ECONNABORTED);
    aioc_request_free(a[4]);
    assert_int_equal(final_calls, 5);
    end_daemon(pid);
}

/* ------------------------------------------------------------ closing from a callback */

/* Answers the first of two awaits, then waits for the client to go. */
static void script_close_in_callback(int fd) {
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *a = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    Aiod__ClientMessage *b = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    send_done(fd, a->request_id, 5, "first");
    msg_free(a);
    msg_free(b);
    expect_eof(fd);
}

static int closer_calls;

static void on_done_close(aioc_request *req, int error, void *userdata) {
    closer_calls++;
    assert_int_equal(error, 0);
    assert_int_equal(aioc_request_done(req), 1);
    aioc_close(userdata);
    /* The request is the program's still; the client is closed. */
    assert_int_equal(aioc_request_error(req), 0);
}

/* aioc_close from a completion callback: the connection ends, the other
 * request gets its final callback (closed), aioc_process returns
 * -ECONNABORTED, and the handle is freed only then (under ASan, any use
 * after that by the library is caught). */
static void test_close_in_callback(void **state) {
    pid_t pid = start_daemon(script_close_in_callback);
    const uint64_t ids[] = {5};
    aioc_request *a = NULL, *b = NULL;
    aioc_client *c = NULL;

    memset(&lg, 0, sizeof(lg));
    closer_calls = final_calls = 0;
    assert_int_equal(aioc_connect(path, &c), 0);
    assert_int_equal(aioc_set_flags(c, AIOC_FLAG_FINAL_CALLBACKS), 0);
    assert_int_equal(aioc_start_await(c, ids, 1, 0, 0, on_done_close, c, &a), 0);
    assert_int_equal(aioc_start_await(c, ids, 1, 0, 0, on_final, (void *)"second", &b), 0);
    assert_int_equal(pump(c, &closer_calls), -ECONNABORTED);
    assert_int_equal(closer_calls, 1);
    assert_int_equal(final_calls, 1);
    assert_string_equal(lg.done[0], "second:-103:4");
    assert_int_equal(aioc_request_end(b), AIOC_END_CLOSED);
    aioc_request_free(a);
    aioc_request_free(b);
    assert_int_equal(closer_calls, 1);
    assert_int_equal(final_calls, 1);
    end_daemon(pid); /* the fake daemon saw the connection close */
}

/* Sends one output line for aioc_run's gather and waits for the client to
 * go, never answering. */
static void script_close_in_output(int fd) {
    static const uint64_t ids[] = {71};
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *r = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_GATHER);
    send_started(fd, r->request_id, ids, 1);
    send_output(fd, r->request_id, 71, "last words");
    msg_free(r);
    expect_eof(fd);
}

static void on_line_close(uint64_t task_id, int stream, const char *line, void *userdata) {
    (void)stream;
    closer_calls++;
    assert_int_equal(task_id, 71);
    assert_string_equal(line, "last words");
    aioc_close(userdata);
}

/* aioc_close from an output callback run by a blocking call: the wait for
 * a reply that will never come ends at once, the call fails, and the
 * handle is freed as it returns. */
static void test_close_in_output_callback(void **state) {
    pid_t pid = start_daemon(script_close_in_output);
    aioc_client *c = NULL;
    aioc_outcome *o = NULL;

    closer_calls = 0;
    assert_int_equal(aioc_connect(path, &c), 0);
    aioc_set_output_callback(c, on_line_close, c);
    aioc_call *call = aioc_call_new("demo.x");
    assert_int_equal(aioc_run(c, call, 0, &o), -ECONNABORTED);
    assert_null(o);
    assert_int_equal(closer_calls, 1);
    aioc_call_free(call);
    end_daemon(pid);
}

/* ------------------------------------------------------------ connecting */

/* Accepts, reads the hello, and never answers. */
static void script_silent(int fd) {
    Aiod__ClientMessage *m = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_HELLO);
    msg_free(m);
    expect_eof(fd);
}

/* aioc_connect to a daemon that never answers, with AIOC_CONNECT_TIMEOUT
 * 0.2: it gives up after 0.2 s, not after the 30 s default. */
static void connect_times_out_by_env(void) {
    aioc_client *c = NULL;
    pid_t pid = start_daemon(script_silent);
    setenv("AIOC_CONNECT_TIMEOUT", "0.2", 1);
    double t0 = now();
    assert_int_equal(aioc_connect(path, &c), -ETIMEDOUT);
    double took = now() - t0;
    unsetenv("AIOC_CONNECT_TIMEOUT");
    assert_true(took >= 0.19 && took < 3);
    assert_null(c);
    end_daemon(pid);
}

static void test_connect_timeout(void **state) {
    char err[256];
    aioc_client *c = NULL;

    pid_t pid = start_daemon(script_silent);
    double t0 = now();
    assert_int_equal(aioc_connect_timeout(path, 0.3, &c, err, sizeof(err)), -ETIMEDOUT);
    double took = now() - t0;
    assert_true(took >= 0.29 && took < 3);
    assert_null(c);
    assert_non_null(strstr(err, "did not answer within 0.3 s"));
    assert_non_null(strstr(err, path));
    end_daemon(pid);

    /* aioc_connect's limit from the environment. */
    connect_times_out_by_env();

    /* The environment's number is read as C writes it, also in a program
     * that set a locale whose decimal separator is a comma (strtod alone
     * stopped at the '.', and the 30 s default applied). The locale is
     * compiled here from Debian's sources (package locales). */
    char locdir[] = "/tmp/aioc-locale-XXXXXX", cmd[512];
    assert_non_null(mkdtemp(locdir));
    snprintf(cmd, sizeof(cmd), "localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 2>&1", locdir);
    if (system(cmd) != 0)
        fail_msg("localedef cannot make de_DE.UTF-8 (scripts/deps.sh installs locales)");
    setenv("LOCPATH", locdir, 1);
    assert_non_null(setlocale(LC_NUMERIC, "de_DE.UTF-8"));
    assert_string_equal(localeconv()->decimal_point, ",");
    connect_times_out_by_env();
    setlocale(LC_NUMERIC, "C");
    unsetenv("LOCPATH");
    snprintf(cmd, sizeof(cmd), "rm -rf %s", locdir);
    assert_int_equal(system(cmd), 0);

    /* A socket nobody accepts on: connected through the backlog, the hello
     * is never read. */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(dir, sizeof(dir), "/tmp/aioc-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/aiod.sock", dir);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(aioc_connect_timeout(path, 0.2, &c, err, sizeof(err)), -ETIMEDOUT);
    /* "On any failure err gets a message": the argument errors too. */
    assert_int_equal(aioc_connect_timeout(path, NAN, &c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "timeout"));
    assert_int_equal(aioc_connect_timeout(path, 1, NULL, err, sizeof(err)), -EINVAL);
    assert_true(err[0] != '\0');
    char longpath[200];
    memset(longpath, 'x', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(aioc_connect_timeout(longpath, 1, &c, err, sizeof(err)), -ENAMETOOLONG);
    assert_non_null(strstr(err, "too long"));
    close(lfd);
    /* Nobody listening: the connect's own error, described. */
    assert_int_equal(aioc_connect_timeout(path, 1, &c, err, sizeof(err)), -ECONNREFUSED);
    assert_non_null(strstr(err, "cannot connect to aiod at"));
    unlink(path);
    rmdir(dir);
}

/* The hello and a request arrive before any reply (the request was
 * started while connecting). */
static void script_connect_start(int fd) {
    Aiod__ClientMessage *h = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_HELLO);
    Aiod__ClientMessage *a = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    CHECK(h->request_id < a->request_id);
    Aiod__HelloReply hr = AIOD__HELLO_REPLY__INIT;
    Aiod__ServerMessage r = AIOD__SERVER_MESSAGE__INIT;
    hr.protocol_version = AIOD_PROTOCOL_VERSION;
    hr.server_version = (char *)"9.8.7";
    hr.max_frame = 1u << 20;
    r.request_id = h->request_id;
    r.body_case = AIOD__SERVER_MESSAGE__BODY_HELLO;
    r.hello = &hr;
    send_msg(fd, &r);
    send_done(fd, a->request_id, 5, "after hello");
    msg_free(h);
    msg_free(a);
    expect_eof(fd);
}

static void script_connect_refused(int fd) {
    Aiod__ClientMessage *h = recv_kind(fd, AIOD__CLIENT_MESSAGE__BODY_HELLO);
    send_error(fd, h->request_id, AIOD__ERROR_CODE__ERROR_UNSUPPORTED_VERSION,
               "this daemon speaks protocol 2", NULL);
    msg_free(h);
    expect_eof(fd);
}

static void on_connected(aioc_client *c, int error, void *userdata) {
    assert_true(lg.n_done < 16);
    snprintf(lg.done[lg.n_done++], sizeof(lg.done[0]), "%s:%d", (const char *)userdata, error);
    /* Inside the callback the state is already final. */
    assert_int_equal(aioc_connection_error(c), error);
    assert_int_equal(aioc_process(c), -EBUSY);
    if (error < 0)
        lg.flag = 1;
}

static void test_connect_start(void **state) {
    pid_t pid = start_daemon(script_connect_start);
    aioc_client *c = NULL;
    aioc_request *a = NULL;
    const uint64_t ids[] = {5};

    memset(&lg, 0, sizeof(lg));
    assert_int_equal(aioc_connect_start(path, on_connected, "connect", NULL), -EINVAL);
    assert_int_equal(aioc_connect_start(path, on_connected, "connect", &c), 0);
    assert_int_equal(aioc_connection_error(c), -EINPROGRESS);
    assert_string_equal(aioc_server_version(c), "");
    assert_int_equal(aioc_start_await(c, ids, 1, 0, 0, on_last, "await", &a), 0);
    assert_int_equal(pump(c, &lg.flag), 1);
    assert_int_equal(lg.n_done, 2);
    assert_string_equal(lg.done[0], "connect:0");
    assert_string_equal(lg.done[1], "await:0");
    assert_int_equal(aioc_connection_error(c), 0);
    assert_string_equal(aioc_server_version(c), "9.8.7");
    assert_int_equal(c->max_frame, 1u << 20);
    aioc_request_free(a);
    aioc_close(c);
    end_daemon(pid);

    /* Refused: the callback and aioc_process say why. */
    pid = start_daemon(script_connect_refused);
    memset(&lg, 0, sizeof(lg));
    assert_int_equal(aioc_connect_start(path, on_connected, "refused", &c), 0);
    assert_int_equal(pump(c, &lg.flag), -EPROTONOSUPPORT);
    assert_int_equal(lg.n_done, 1);
    assert_string_equal(lg.done[0], "refused:-93");
    assert_int_equal(aioc_connection_error(c), -EPROTONOSUPPORT);
    assert_string_equal(aioc_last_error(c), "this daemon speaks protocol 2");
    aioc_close(c);
    end_daemon(pid);

    /* No socket there: at once. */
    assert_int_equal(aioc_connect_start("/nonexistent/aiod.sock", NULL, NULL, &c), -ENOENT);
}

/* ------------------------------------------------------------ out of memory */

/* One round of a non-blocking connect, a followed gather and a run, with
 * the nth allocation from the connect on failing (0: none), the test
 * playing the daemon on the accepted socket itself. Returns whether an
 * allocation failed. */
static bool oom_round(unsigned long nth, int lfd) {
    static const uint64_t g_ids[] = {91, 92}, r_ids[] = {95};
    aioc_client *c = NULL;
    aioc_request *g = NULL, *r = NULL;
    aioc_call *call = aioc_call_new("demo.x");
    const aioc_call *items[] = {call, call};
    assert_non_null(call);

    alloc_fail_at(nth);
    int rc = aioc_connect_start(path, NULL, NULL, &c);
    if (rc < 0) {
        assert_int_equal(rc, -ENOMEM);
        /* The socket may have connected before the failure: drop it. */
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        while (poll(&p, 1, 0) == 1)
            close(accept4(lfd, NULL, NULL, SOCK_CLOEXEC));
    } else {
        rc = aioc_start_gather(c, items, 2, AIOC_GATHER_FOLLOW, 0, NULL, NULL, &g);
        assert_true(rc == 0 || rc == -ENOMEM);
        if (g)
            aioc_request_set_event_callback(g, on_event, "g");
        rc = aioc_start_run(c, call, 0, NULL, NULL, &r);
        assert_true(rc == 0 || rc == -ENOMEM);

        struct pollfd p = {.fd = lfd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 5000), 1);
        int sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(sfd >= 0);
        Aiod__ClientMessage *h = recv_kind(sfd, AIOD__CLIENT_MESSAGE__BODY_HELLO);
        Aiod__HelloReply hr = AIOD__HELLO_REPLY__INIT;
        Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
        hr.protocol_version = AIOD_PROTOCOL_VERSION;
        hr.server_version = (char *)"9.8.7";
        hr.max_frame = 1u << 20;
        m.request_id = h->request_id;
        m.body_case = AIOD__SERVER_MESSAGE__BODY_HELLO;
        m.hello = &hr;
        send_msg(sfd, &m);
        msg_free(h);
        /* Frames for ids 2 and 3 whether or not those requests started. */
        Aiod__Outcome o1 = AIOD__OUTCOME__INIT, o2 = AIOD__OUTCOME__INIT, *os[] = {&o1, &o2};
        o1.task_id = 91;
        o1.state = AIOD__TASK_STATE__TASK_CANCELLED;
        o2.task_id = 92;
        o2.state = AIOD__TASK_STATE__TASK_CANCELLED;
        send_started(sfd, 2, g_ids, 2);
        send_output(sfd, 2, 91, "line");
        send_output_end(sfd, 2, 91, AIOD__TASK_STATE__TASK_CANCELLED);
        send_outcomes(sfd, 2, os, 2);
        send_started(sfd, 3, r_ids, 1);
        o1.task_id = 95;
        send_outcomes(sfd, 3, os, 1);

        /* Until the run is answered, or the connection died of it. */
        int n = 0;
        while (n >= 0 && !(r && aioc_request_done(r)) && aioc_connection_error(c) != -ENOMEM) {
            struct pollfd q = {.fd = aioc_fd(c), .events = POLLIN};
            assert_int_equal(poll(&q, 1, 5000), 1);
            n = aioc_process(c);
            if (!r && n >= 0 && !c->conn.eof && c->n_entries == 0)
                break; /* the run did not start: its frames were dropped */
        }
        assert_true(n >= 0 || n == -ENOMEM || n == -EPROTO);
        close(sfd);
    }
    bool failed = nth > 0 && alloc_count() >= nth;
    alloc_fail_at(0);
    if (!failed) {
        size_t k = 0;
        assert_int_equal(aioc_connection_error(c), 0);
        assert_int_equal(aioc_request_error(g), 0);
        assert_non_null(aioc_request_task_ids(g, &k));
        assert_int_equal(k, 2);
        assert_int_equal(aioc_request_task_id(r), 95);
    }
    aioc_request_free(g);
    aioc_request_free(r);
    aioc_close(c);
    aioc_call_free(call);
    return failed;
}

static void test_oom(void **state) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(dir, sizeof(dir), "/tmp/aioc-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/aiod.sock", dir);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 4), 0);

    memset(&lg, 0, sizeof(lg));
    assert_false(oom_round(0, lfd));
    unsigned long nth = 1;
    while (oom_round(nth, lfd)) {
        lg.n_lines = 0;
        nth++;
        assert_true(nth < 10000);
    }
    /* Every allocation of the round was made to fail once. */
    assert_true(nth > 10);
    close(lfd);
    unlink(path);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_idle),
        cmocka_unit_test(test_idle_callback),
        cmocka_unit_test(test_timeout_forever),
        cmocka_unit_test(test_vanish),
        cmocka_unit_test(test_mixed),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_started),
        cmocka_unit_test(test_no_started),
        cmocka_unit_test(test_stream_error),
        cmocka_unit_test(test_blocking_started),
        cmocka_unit_test(test_reentry),
        cmocka_unit_test(test_final_callbacks),
        cmocka_unit_test(test_close_in_callback),
        cmocka_unit_test(test_close_in_output_callback),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_connect_start),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
