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
#include <math.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
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
    send_error(fd, u->request_id, AIOD__ERROR_CODE__ERROR_UNKNOWN_FUNCTION, "unknown 'x.y'", NULL);
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipelined), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_idle),      cmocka_unit_test(test_vanish),
        cmocka_unit_test(test_mixed),     cmocka_unit_test(test_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
