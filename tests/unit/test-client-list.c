/*
 * Tests of libaioclient 1.4 on the wire, against the fake daemon
 * (fake-daemon.h): the paged, filtered listing (aioc_list_query_*,
 * aioc_list_page, aioc_list_all, aioc_list over pages) and the count of
 * dropped output lines that a followed run, gather or logs carries
 * (aioc_outcome_output_dropped, aioc_logs_ex, aioc_request_output_dropped).
 * The fake daemon checks the ListTasks fields it receives; the parent
 * checks what the API makes of the pages and OutputEnd events it answers.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aioc.h"
#include "aiod.pb-c.h"
#include "alloc.h"
#include "frame.h"
#include "pbvalue.h"
#include "wire.h"

#include "fake-daemon.h"

/* ------------------------------------------------------------ the fake daemon's side */

/* Reads a ListTasks and checks its paging fields; returns its request id. */
static uint64_t recv_list(int fd, uint64_t after_id, uint32_t limit, Aiod__ClientMessage **ret) {
    Aiod__ClientMessage *m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_LIST_TASKS);
    CHECK(m->list_tasks->after_id == after_id);
    CHECK(m->list_tasks->limit == limit);
    uint64_t id = m->request_id;
    if (ret)
        *ret = m;
    else
        aiod__client_message__free_unpacked(m, NULL);
    return id;
}

/* One task of a page: its id, state, function and owner. */
typedef struct fake_task {
    uint64_t id;
    Aiod__TaskState state;
    const char *function;
    uint32_t uid;
} fake_task;

static void send_page(int fd, uint64_t rid, const fake_task *ts, size_t n, bool more,
                      uint64_t next) {
    Aiod__TaskInfo infos[16], *ptrs[16];
    CHECK(n <= 16);
    for (size_t i = 0; i < n; i++) {
        infos[i] = (Aiod__TaskInfo)AIOD__TASK_INFO__INIT;
        infos[i].id = ts[i].id;
        infos[i].state = ts[i].state;
        infos[i].function = (char *)ts[i].function;
        infos[i].owner_uid = ts[i].uid;
        ptrs[i] = &infos[i];
    }
    Aiod__TaskList tl = AIOD__TASK_LIST__INIT;
    Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
    tl.tasks = ptrs;
    tl.n_tasks = n;
    tl.more = more;
    tl.next_after_id = next;
    m.request_id = rid;
    m.body_case = AIOD__SERVER_MESSAGE__BODY_TASK_LIST;
    m.task_list = &tl;
    send_msg(fd, &m);
}

static void send_end(int fd, uint64_t rid, uint64_t task, uint64_t dropped) {
    Aiod__OutputEnd o = AIOD__OUTPUT_END__INIT;
    Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
    o.task_id = task;
    o.dropped = dropped;
    o.state = AIOD__TASK_STATE__TASK_DONE;
    m.request_id = rid;
    m.body_case = AIOD__SERVER_MESSAGE__BODY_OUTPUT_END;
    m.output_end = &o;
    send_msg(fd, &m);
}

static const fake_task T[] = {
    {1, AIOD__TASK_STATE__TASK_RUNNING, "demo.sleep", 1000},
    {2, AIOD__TASK_STATE__TASK_DONE, "demo.echo", 1000},
    {3, AIOD__TASK_STATE__TASK_RUNNING, "proc.exec", 0},
    {5, AIOD__TASK_STATE__TASK_FAILED, "proc.shell", 1000},
    {8, AIOD__TASK_STATE__TASK_RUNNING, "demo.sleep", 1000},
};

/* ------------------------------------------------------------ listing */

/* A new daemon: pages of two, one of them empty with more set, the
 * filters as sent; then a daemon that does not move its cursor on. */
static void script_pages(int fd) {
    Aiod__ClientMessage *m;
    do_hello(fd, 1u << 20);

    /* aioc_list_page with a query and limit 2. */
    uint64_t rid = recv_list(fd, 0, 2, &m);
    Aiod__ListTasks *l = m->list_tasks;
    CHECK(l->all);
    CHECK(l->n_states == 2 && l->states[0] == AIOD__TASK_STATE__TASK_RUNNING &&
          l->states[1] == AIOD__TASK_STATE__TASK_DONE);
    CHECK(l->n_functions == 2 && strcmp(l->functions[0], "demo.") == 0 &&
          strcmp(l->functions[1], "proc.exec") == 0);
    CHECK(l->n_owner_uids == 2 && l->owner_uids[0] == 1000 && l->owner_uids[1] == 0);
    aiod__client_message__free_unpacked(m, NULL);
    send_page(fd, rid, T, 2, true, 2);
    /* Looked at its bound and found nothing: an empty page with more. */
    rid = recv_list(fd, 2, 2, NULL);
    send_page(fd, rid, NULL, 0, true, 4);
    rid = recv_list(fd, 4, 2, NULL);
    send_page(fd, rid, T + 4, 1, false, 0);

    /* aioc_list (no query): loops until more is false. */
    rid = recv_list(fd, 0, 0, &m);
    CHECK(!m->list_tasks->all && m->list_tasks->n_states == 0);
    aiod__client_message__free_unpacked(m, NULL);
    send_page(fd, rid, T, 3, true, 3);
    rid = recv_list(fd, 3, 0, NULL);
    send_page(fd, rid, T + 3, 2, false, 0);

    /* more, but the cursor does not move on: -EPROTO, nothing written. */
    rid = recv_list(fd, 8, 0, NULL);
    send_page(fd, rid, NULL, 0, true, 8);
    expect_eof(fd);
}

static void test_pages(void **state) {
    pid_t pid = start_daemon(script_pages);
    aioc_client *c = NULL;
    aioc_list_query *q = NULL;
    aioc_task_info **tasks;
    size_t n;

    assert_int_equal(aioc_connect(path, &c), 0);
    assert_int_equal(aioc_list_query_new(AIOC_LIST_ALL, &q), 0);
    assert_int_equal(aioc_list_query_add_state(q, AIOC_STATE_RUNNING), 0);
    assert_int_equal(aioc_list_query_add_state(q, AIOC_STATE_DONE), 0);
    assert_int_equal(aioc_list_query_add_state(q, AIOC_STATE_RUNNING), 0); /* once */
    assert_int_equal(aioc_list_query_add_function(q, "demo."), 0);
    assert_int_equal(aioc_list_query_add_function(q, "proc.exec"), 0);
    assert_int_equal(aioc_list_query_add_owner(q, 1000), 0);
    assert_int_equal(aioc_list_query_add_owner(q, 0), 0);

    uint64_t cursor = 0;
    assert_int_equal(aioc_list_page(c, q, &cursor, 2, &tasks, &n), 1);
    assert_int_equal(n, 2);
    assert_int_equal(aioc_task_info_id(tasks[0]), 1);
    assert_int_equal(aioc_task_info_id(tasks[1]), 2);
    assert_int_equal(cursor, 2);
    aioc_task_info_array_free(tasks, n);
    assert_int_equal(aioc_list_page(c, q, &cursor, 2, &tasks, &n), 1);
    assert_int_equal(n, 0);
    assert_non_null(tasks); /* a new array even when empty */
    assert_int_equal(cursor, 4);
    aioc_task_info_array_free(tasks, n);
    assert_int_equal(aioc_list_page(c, q, &cursor, 2, &tasks, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(aioc_task_info_id(tasks[0]), 8);
    assert_int_equal(cursor, 8);
    aioc_task_info_array_free(tasks, n);

    assert_int_equal(aioc_list(c, 0, &tasks, &n), 0);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(aioc_task_info_id(tasks[i]), T[i].id);
    aioc_task_info_array_free(tasks, n);

    aioc_task_info **untouched = (aioc_task_info **)&n;
    size_t n_untouched = 77;
    assert_int_equal(aioc_list_page(c, NULL, &cursor, 0, &untouched, &n_untouched), -EPROTO);
    assert_int_equal(cursor, 8);
    assert_ptr_equal(untouched, (aioc_task_info **)&n);
    assert_int_equal(n_untouched, 77);

    aioc_list_query_free(q);
    aioc_close(c);
    end_daemon(pid);
}

/* An older daemon: it ignores the paging fields and the filters and sends
 * every task in one page, each time. */
static void script_old_daemon(int fd) {
    do_hello(fd, 1u << 20);
    /* aioc_list_all with filters: one page, filtered by the library. */
    uint64_t rid = recv_list(fd, 0, 0, NULL);
    send_page(fd, rid, T, 5, false, 0);
    /* aioc_list_page with limit 1 (and a state filter): cut by the
     * library, which goes on from the last task it returned. */
    rid = recv_list(fd, 0, 1, NULL);
    send_page(fd, rid, T, 5, false, 0);
    rid = recv_list(fd, 1, 1, NULL);
    send_page(fd, rid, T, 5, false, 0);
    rid = recv_list(fd, 3, 1, NULL);
    send_page(fd, rid, T, 5, false, 0);
    expect_eof(fd);
}

static void test_old_daemon(void **state) {
    pid_t pid = start_daemon(script_old_daemon);
    aioc_client *c = NULL;
    aioc_list_query *q = NULL;
    aioc_task_info **tasks;
    size_t n;

    assert_int_equal(aioc_connect(path, &c), 0);
    assert_int_equal(aioc_list_query_new(AIOC_LIST_ALL, &q), 0);
    assert_int_equal(aioc_list_query_add_function(q, "proc."), 0);
    assert_int_equal(aioc_list_query_add_function(q, "demo.echo"), 0);
    assert_int_equal(aioc_list_query_add_owner(q, 1000), 0);
    assert_int_equal(aioc_list_all(c, q, &tasks, &n), 0);
    assert_int_equal(n, 2); /* demo.echo and proc.shell of uid 1000 */
    assert_int_equal(aioc_task_info_id(tasks[0]), 2);
    assert_int_equal(aioc_task_info_id(tasks[1]), 5);
    aioc_task_info_array_free(tasks, n);
    aioc_list_query_free(q);

    assert_int_equal(aioc_list_query_new(0, &q), 0);
    assert_int_equal(aioc_list_query_add_state(q, AIOC_STATE_RUNNING), 0);
    uint64_t cursor = 0, seen[3];
    int more;
    size_t k = 0;
    do {
        more = aioc_list_page(c, q, &cursor, 1, &tasks, &n);
        assert_true(more >= 0);
        assert_int_equal(n, 1);
        assert_true(k < 3);
        seen[k++] = aioc_task_info_id(tasks[0]);
        aioc_task_info_array_free(tasks, n);
    } while (more);
    assert_int_equal(k, 3);
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[1], 3);
    assert_int_equal(seen[2], 8);
    aioc_list_query_free(q);
    aioc_close(c);
    end_daemon(pid);
}

static void script_hello_only(int fd) {
    do_hello(fd, 1u << 20);
    expect_eof(fd);
}

static void test_list_arguments(void **state) {
    pid_t pid = start_daemon(script_hello_only);
    aioc_client *c = NULL;
    aioc_list_query *q = NULL;
    aioc_task_info **tasks;
    size_t n;
    uint64_t cursor = 0;

    assert_int_equal(aioc_list_query_new(0x2, &q), -EINVAL);
    assert_null(q);
    assert_int_equal(aioc_list_query_new(0, NULL), -EINVAL);
    assert_int_equal(aioc_list_query_new(0, &q), 0);
    assert_int_equal(aioc_list_query_add_state(NULL, AIOC_STATE_DONE), -EINVAL);
    assert_int_equal(aioc_list_query_add_state(q, 0), -EINVAL);
    assert_int_equal(aioc_list_query_add_state(q, 6), -EINVAL);
    assert_int_equal(aioc_list_query_add_function(q, NULL), -EINVAL);
    assert_int_equal(aioc_list_query_add_function(q, ""), -EINVAL);
    assert_int_equal(aioc_list_query_add_function(q, "sleep"), -EINVAL);
    assert_int_equal(aioc_list_query_add_function(q, ".sleep"), -EINVAL);
    assert_int_equal(aioc_list_query_add_function(q, "demo. sleep"), -EINVAL);
    assert_int_equal(aioc_list_query_add_function(q, "demo.\xff"), -EINVAL);
    assert_int_equal(aioc_list_query_add_owner(NULL, 0), -EINVAL);

    assert_int_equal(aioc_connect(path, &c), 0);
    assert_int_equal(aioc_list_page(NULL, q, &cursor, 0, &tasks, &n), -EINVAL);
    assert_int_equal(aioc_list_page(c, q, NULL, 0, &tasks, &n), -EINVAL);
    assert_int_equal(aioc_list_page(c, q, &cursor, 0, NULL, &n), -EINVAL);
    assert_int_equal(aioc_list_page(c, q, &cursor, 0, &tasks, NULL), -EINVAL);
    assert_int_equal(aioc_list_all(c, q, NULL, &n), -EINVAL);
    assert_int_equal(aioc_list(c, 0x4, &tasks, &n), -EINVAL);
    aioc_list_query_free(q);
    aioc_list_query_free(NULL);
    aioc_close(c);
    end_daemon(pid);
}

/* ------------------------------------------------------------ dropped output lines */

static Aiod__Outcome done_outcome(uint64_t task) {
    Aiod__Outcome o = AIOD__OUTCOME__INIT;
    o.task_id = task;
    o.state = AIOD__TASK_STATE__TASK_DONE;
    return o;
}

/* A run whose task lost lines; a gather of three (one not followed: an
 * existing task); a failed gather; a logs -f; then the same run and
 * gather through the non-blocking API. */
static void script_dropped(int fd) {
    do_hello(fd, 1u << 20);
    for (int pass = 0; pass < 2; pass++) {
        /* run */
        Aiod__ClientMessage *m = recv_msg(fd);
        CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_GATHER && m->gather->follow);
        uint64_t rid = m->request_id;
        aiod__client_message__free_unpacked(m, NULL);
        send_output(fd, rid, 40, "kept");
        send_end(fd, rid, 40, 1234);
        Aiod__Outcome o = done_outcome(40), *op = &o;
        send_outcomes(fd, rid, &op, 1);

        /* gather of three: 41 and 42 new (42 lost 7), 30 an existing task */
        m = recv_msg(fd);
        CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_GATHER && m->gather->n_items == 3);
        rid = m->request_id;
        aiod__client_message__free_unpacked(m, NULL);
        send_end(fd, rid, 42, 7);
        send_end(fd, rid, 41, 0);
        Aiod__Outcome a = done_outcome(41), b = done_outcome(42), x = done_outcome(30);
        Aiod__Outcome *abx[] = {&a, &b, &x};
        send_outcomes(fd, rid, abx, 3);
    }

    /* a gather whose second task failed after losing 5 lines */
    Aiod__ClientMessage *m = recv_msg(fd);
    uint64_t rid = m->request_id;
    aiod__client_message__free_unpacked(m, NULL);
    send_end(fd, rid, 51, 5);
    Aiod__Outcome f = AIOD__OUTCOME__INIT;
    f.task_id = 51;
    f.state = AIOD__TASK_STATE__TASK_FAILED;
    f.error_kind = (char *)"ValueError";
    f.error_message = (char *)"boom";
    send_error(fd, rid, AIOD__ERROR_CODE__ERROR_TASK_FAILED, "task 51 failed", &f);

    /* logs -f of task 60: 99 lines it did not get */
    m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_LOGS && m->logs->follow);
    rid = m->request_id;
    aiod__client_message__free_unpacked(m, NULL);
    send_end(fd, rid, 60, 99);

    /* logs of task 61 that lost nothing (an OutputEnd without a count) */
    m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_LOGS && !m->logs->follow);
    rid = m->request_id;
    aiod__client_message__free_unpacked(m, NULL);
    send_output_end(fd, rid, 61, AIOD__TASK_STATE__TASK_RUNNING);

    /* a followed submit: completed by Submitted, ended by its OutputEnd */
    m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_SUBMIT && m->submit->follow);
    rid = m->request_id;
    aiod__client_message__free_unpacked(m, NULL);
    send_submitted(fd, rid, 70);
    send_end(fd, rid, 70, 3);
    expect_eof(fd);
}

/* Waits (at most 10 s) until the connection has something, then processes
 * it. */
static void pump(aioc_client *c) {
    struct pollfd p = {.fd = aioc_fd(c), .events = (short)aioc_events(c)};
    assert_int_equal(poll(&p, 1, 10000), 1);
    assert_true(aioc_process(c) >= 0);
}

static aioc_call *sleep_call(void) {
    aioc_call *call = aioc_call_new("demo.sleep");
    assert_non_null(call);
    return call;
}

static void test_dropped(void **state) {
    pid_t pid = start_daemon(script_dropped);
    aioc_client *c = NULL;
    aioc_outcome *o, *os[3] = {0}, *failed = NULL;

    assert_int_equal(aioc_connect(path, &c), 0);
    aioc_call *call = sleep_call(), *existing = aioc_call_task(30);
    const aioc_call *items[] = {call, call, existing};

    /* Blocking. */
    assert_int_equal(aioc_run(c, call, 0, &o), 0);
    assert_int_equal(aioc_outcome_task_id(o), 40);
    assert_int_equal(aioc_outcome_output_dropped(o), 1234);
    aioc_outcome_free(o);
    assert_int_equal(aioc_gather(c, items, 3, AIOC_GATHER_FOLLOW, 0, os, NULL), 0);
    assert_int_equal(aioc_outcome_output_dropped(os[0]), 0);
    assert_int_equal(aioc_outcome_output_dropped(os[1]), 7);
    assert_int_equal(aioc_outcome_output_dropped(os[2]), 0);
    for (int i = 0; i < 3; i++)
        aioc_outcome_free(os[i]);

    /* Non-blocking: the same counts on the request's outcomes. */
    aioc_request *req;
    assert_int_equal(aioc_start_run(c, call, 0, NULL, NULL, &req), 0);
    while (!aioc_request_done(req))
        pump(c);
    assert_int_equal(aioc_request_error(req), 0);
    assert_int_equal(aioc_outcome_output_dropped(aioc_request_outcome(req, 0)), 1234);
    assert_int_equal(aioc_request_output_dropped(req), 1234);
    aioc_request_free(req);
    assert_int_equal(aioc_start_gather(c, items, 3, AIOC_GATHER_FOLLOW, 0, NULL, NULL, &req), 0);
    while (!aioc_request_done(req))
        pump(c);
    assert_int_equal(aioc_outcome_output_dropped(aioc_request_outcome(req, 1)), 7);
    assert_int_equal(aioc_outcome_output_dropped(aioc_request_outcome(req, 2)), 0);
    assert_int_equal(aioc_request_output_dropped(req), 7);
    aioc_request_free(req);

    /* A failed gather: the failed outcome carries its count. */
    assert_int_equal(aioc_gather(c, items, 2, AIOC_GATHER_FOLLOW, 0, os, &failed), -EIO);
    assert_int_equal(aioc_outcome_task_id(failed), 51);
    assert_int_equal(aioc_outcome_output_dropped(failed), 5);
    aioc_outcome_free(failed);

    uint64_t dropped = 0;
    assert_int_equal(aioc_logs_ex(c, 60, AIOC_LOGS_FOLLOW, &dropped), AIOC_STATE_DONE);
    assert_int_equal(dropped, 99);
    assert_int_equal(aioc_logs_ex(c, 61, 0, &dropped), AIOC_STATE_RUNNING);
    assert_int_equal(dropped, 0);
    assert_int_equal(aioc_logs_ex(c, 61, 0x10, &dropped), -EINVAL);

    assert_int_equal(
        aioc_start_submit(c, call, AIOC_SUBMIT_SUBMITTED | AIOC_SUBMIT_FOLLOW, NULL, NULL, &req),
        0);
    while (!aioc_request_done(req))
        pump(c);
    assert_int_equal(aioc_request_task_id(req), 70);
    /* Its output ends after the completion: the count comes then. */
    while (aioc_request_output_dropped(req) == 0)
        pump(c);
    assert_int_equal(aioc_request_output_dropped(req), 3);
    aioc_request_free(req);
    assert_int_equal(aioc_outcome_output_dropped(NULL), 0);
    assert_int_equal(aioc_request_output_dropped(NULL), 0);

    aioc_call_free(call);
    aioc_call_free(existing);
    aioc_close(c);
    end_daemon(pid);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pages),
        cmocka_unit_test(test_old_daemon),
        cmocka_unit_test(test_list_arguments),
        cmocka_unit_test(test_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
