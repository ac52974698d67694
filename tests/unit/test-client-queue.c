/*
 * Tests of libaioclient 1.6's cluster queues against the fake daemon
 * (fake-daemon.h): the checks of aioc_submit_queue at the edge (queue
 * names, flags), the Submit it sends (the fake daemon checks the queue,
 * the ownership, and that neither follow nor a schedule goes with it),
 * cluster ids of 2^48 and above passed through intact by submit, await,
 * show, cancel and logs, ERROR_UNAVAILABLE as -EHOSTUNREACH with the
 * daemon's message, and the task info's queue, host and owner host.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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
#include "fake-cluster.h"

/* Cluster ids as a daemon of the cluster hands them out: 2^48 + n. */
#define CLUSTER_ID(n) (AIOC_CLUSTER_ID_BASE + (uint64_t)(n))

/* ------------------------------------------------------------ ids */

static void test_cluster_ids(void **state) {
    (void)state;
    assert_true(AIOC_CLUSTER_ID_BASE == UINT64_C(281474976710656));
    assert_false(aioc_is_cluster_id(0));
    assert_false(aioc_is_cluster_id(1));
    assert_false(aioc_is_cluster_id(AIOC_CLUSTER_ID_BASE - 1));
    assert_true(aioc_is_cluster_id(AIOC_CLUSTER_ID_BASE));
    assert_true(aioc_is_cluster_id(CLUSTER_ID(1)));
    assert_true(aioc_is_cluster_id(UINT64_MAX));
}

/* ------------------------------------------------------------ submitting */

/* Reads a Submit of demo.echo("hi") to `queue` with ownership `own`;
 * checks that it carries no follow and no schedule. Returns its request
 * id. */
static uint64_t recv_queue_submit(int fd, const char *queue, Aiod__Ownership own) {
    Aiod__ClientMessage *m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_SUBMIT);
    CHECK(strcmp(m->submit->call->function, "demo.echo") == 0);
    CHECK(m->submit->call->args_are_text && m->submit->call->n_args == 1);
    CHECK(m->submit->call->args[0]->kind_case == AIOD__VALUE__KIND_STRING_VALUE);
    CHECK(strcmp(m->submit->call->args[0]->string_value, "hi") == 0);
    CHECK(strcmp(m->submit->queue, queue) == 0);
    CHECK(m->submit->ownership == own);
    CHECK(!m->submit->follow);
    CHECK(m->submit->schedule == NULL);
    uint64_t id = m->request_id;
    aiod__client_message__free_unpacked(m, NULL);
    return id;
}

/* The longest queue name, with every kind of character, into buf. */
static const char *longest_name(char buf[AIOC_QUEUE_NAME_MAX + 1]) {
    memset(buf, 'a', AIOC_QUEUE_NAME_MAX);
    memcpy(buf, "Az09_.-", 7);
    buf[AIOC_QUEUE_NAME_MAX] = '\0';
    return buf;
}

static void script_submit(int fd) {
    do_hello(fd, 1u << 20);

    /* Flags 0 and AIOC_SUBMIT_SUBMITTED: submitted. */
    send_submitted(fd, recv_queue_submit(fd, "q1", AIOD__OWNERSHIP__SUBMITTED), CLUSTER_ID(1));
    send_submitted(fd, recv_queue_submit(fd, "q1", AIOD__OWNERSHIP__SUBMITTED), CLUSTER_ID(2));
    /* Detached; a name of 64 characters, every kind of them. */
    char name[AIOC_QUEUE_NAME_MAX + 1];
    send_submitted(fd, recv_queue_submit(fd, longest_name(name), AIOD__OWNERSHIP__DETACHED),
                   UINT64_MAX);

    /* The cluster's Redis is down. */
    send_error(fd, recv_queue_submit(fd, "q1", AIOD__OWNERSHIP__SUBMITTED),
               AIOD__ERROR_CODE__ERROR_UNAVAILABLE,
               "cluster: Redis at 127.0.0.1:6390 is unreachable: Connection refused", NULL);
    /* No host serves it there. */
    send_error(fd, recv_queue_submit(fd, "q2", AIOD__OWNERSHIP__SUBMITTED),
               AIOD__ERROR_CODE__ERROR_UNKNOWN_FUNCTION, "no host serves 'demo.echo' on queue 'q2'",
               NULL);
    /* A daemon outside any cluster. */
    send_error(fd, recv_queue_submit(fd, "q1", AIOD__OWNERSHIP__DETACHED),
               AIOD__ERROR_CODE__ERROR_BAD_ARGUMENT,
               "this aiod is not part of a cluster (no 'cluster' setting)", NULL);
    /* An answer of id 0 is the daemon's fault. */
    send_submitted(fd, recv_queue_submit(fd, "q1", AIOD__OWNERSHIP__SUBMITTED), 0);

    /* A plain submit after them still carries no queue. */
    Aiod__ClientMessage *m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_SUBMIT);
    CHECK(strcmp(m->submit->queue, "") == 0);
    CHECK(m->submit->ownership == AIOD__OWNERSHIP__SUBMITTED);
    send_submitted(fd, m->request_id, 7);
    aiod__client_message__free_unpacked(m, NULL);
    expect_eof(fd);
}

static void test_submit_queue(void **state) {
    (void)state;
    pid_t pid = start_daemon(script_submit);
    aioc_client *c;
    aioc_call *call = aioc_call_new("demo.echo");
    uint64_t id = 0;
    char name65[66];

    assert_non_null(call);
    assert_int_equal(aioc_call_arg_text(call, "hi"), 0);
    assert_int_equal(aioc_connect(path, &c), 0);

    /* Refused before anything is sent (the fake daemon would fail on a
     * frame it does not expect). */
    assert_int_equal(aioc_submit_queue(NULL, "q1", call, 0, &id), -EINVAL);
    assert_int_equal(aioc_submit_queue(c, NULL, call, 0, &id), -EINVAL);
    assert_int_equal(aioc_submit_queue(c, "q1", NULL, 0, &id), -EINVAL);
    assert_int_equal(aioc_submit_queue(c, "q1", call, 0, NULL), -EINVAL);
    aioc_call *item = aioc_call_task(5);
    assert_int_equal(aioc_submit_queue(c, "q1", item, 0, &id), -EINVAL);
    aioc_call_free(item);
    /* Names: 1-64 of [A-Za-z0-9_.-]. */
    memset(name65, 'a', 65);
    name65[65] = '\0';
    const char *bad_names[] = {"", "q 1", "q/1", "q:1", "q1\n", "ké", "q*", name65};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
        assert_int_equal(aioc_submit_queue(c, bad_names[i], call, 0, &id), -EINVAL);
    /* Flags: submitted or detached only. */
    assert_int_equal(aioc_submit_queue(c, "q1", call, AIOC_SUBMIT_FOLLOW, &id), -EINVAL);
    assert_int_equal(
        aioc_submit_queue(c, "q1", call, AIOC_SUBMIT_SUBMITTED | AIOC_SUBMIT_FOLLOW, &id), -EINVAL);
    assert_int_equal(
        aioc_submit_queue(c, "q1", call, AIOC_SUBMIT_SUBMITTED | AIOC_SUBMIT_DETACHED, &id),
        -EINVAL);
    assert_int_equal(aioc_submit_queue(c, "q1", call, 0x8u, &id), -EINVAL);
    assert_int_equal(id, 0);

    assert_int_equal(aioc_submit_queue(c, "q1", call, 0, &id), 0);
    assert_true(id == CLUSTER_ID(1));
    assert_true(aioc_is_cluster_id(id));
    assert_int_equal(aioc_submit_queue(c, "q1", call, AIOC_SUBMIT_SUBMITTED, &id), 0);
    assert_true(id == CLUSTER_ID(2));
    char name64[AIOC_QUEUE_NAME_MAX + 1];
    assert_int_equal(aioc_submit_queue(c, longest_name(name64), call, AIOC_SUBMIT_DETACHED, &id),
                     0);
    assert_true(id == UINT64_MAX);

    /* Refusals: the errno, the daemon's message, nothing written. */
    id = 0;
    assert_int_equal(aioc_submit_queue(c, "q1", call, 0, &id), -EHOSTUNREACH);
    assert_string_equal(aioc_last_error(c),
                        "cluster: Redis at 127.0.0.1:6390 is unreachable: Connection refused");
    assert_int_equal(aioc_submit_queue(c, "q2", call, 0, &id), -ENOENT);
    assert_string_equal(aioc_last_error(c), "no host serves 'demo.echo' on queue 'q2'");
    assert_int_equal(aioc_submit_queue(c, "q1", call, AIOC_SUBMIT_DETACHED, &id), -EINVAL);
    assert_string_equal(aioc_last_error(c),
                        "this aiod is not part of a cluster (no 'cluster' setting)");
    assert_int_equal(aioc_submit_queue(c, "q1", call, 0, &id), -EPROTO);
    assert_int_equal(id, 0);

    assert_int_equal(aioc_submit(c, call, &id), 0);
    assert_int_equal(id, 7);

    aioc_call_free(call);
    aioc_close(c);
    end_daemon(pid);
}

/* ------------------------------------------------------------ cluster ids elsewhere */

static void script_ids(int fd) {
    do_hello(fd, 1u << 20);

    /* show of a cluster task that a host runs, of one still queued (no
     * host yet), of a local task (none of it). */
    Aiod__TaskInfo t =
        task_info(CLUSTER_ID(5), AIOD__TASK_STATE__TASK_RUNNING, "q1", "worker-\xff", "front");
    answer_show(fd, CLUSTER_ID(5), &t);
    t = task_info(CLUSTER_ID(6), AIOD__TASK_STATE__TASK_PENDING, "q1", NULL, "front");
    answer_show(fd, CLUSTER_ID(6), &t);
    t = task_info(3, AIOD__TASK_STATE__TASK_RUNNING, NULL, NULL, NULL);
    answer_show(fd, 3, &t);

    /* show with the cluster unreachable. */
    Aiod__ClientMessage *m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_SHOW_TASK);
    CHECK(m->show_task->task_id == CLUSTER_ID(7));
    send_error(fd, m->request_id, AIOD__ERROR_CODE__ERROR_UNAVAILABLE, "cluster: down", NULL);
    aiod__client_message__free_unpacked(m, NULL);

    /* await of two cluster ids, the outcomes in order. */
    m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    CHECK(m->await->n_task_ids == 2);
    CHECK(m->await->task_ids[0] == CLUSTER_ID(5) && m->await->task_ids[1] == UINT64_MAX);
    Aiod__Outcome o1 = AIOD__OUTCOME__INIT, o2 = AIOD__OUTCOME__INIT, *os[] = {&o1, &o2};
    o1.task_id = CLUSTER_ID(5);
    o1.state = AIOD__TASK_STATE__TASK_DONE;
    o2.task_id = UINT64_MAX;
    o2.state = AIOD__TASK_STATE__TASK_FAILED;
    o2.error_kind = (char *)"Interrupted";
    o2.error_message = (char *)"host worker-1 died while running it";
    send_outcomes(fd, m->request_id, os, 2);
    aiod__client_message__free_unpacked(m, NULL);

    /* cancel, then with the cluster unreachable. */
    answer_cancel(fd, CLUSTER_ID(6), 1);
    m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_CANCEL);
    send_error(fd, m->request_id, AIOD__ERROR_CODE__ERROR_UNAVAILABLE, "cluster: down", NULL);
    aiod__client_message__free_unpacked(m, NULL);

    /* logs -f: its lines, then its end. */
    m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_LOGS);
    CHECK(m->logs->task_id == CLUSTER_ID(5) && m->logs->follow);
    send_output(fd, m->request_id, CLUSTER_ID(5), "from worker-1");
    send_output_end(fd, m->request_id, CLUSTER_ID(5), AIOD__TASK_STATE__TASK_DONE);
    aiod__client_message__free_unpacked(m, NULL);
    expect_eof(fd);
}

static int lines_seen;

static void on_line(uint64_t task, int stream, const char *line, void *userdata) {
    (void)stream;
    (void)userdata;
    assert_true(task == CLUSTER_ID(5));
    assert_string_equal(line, "from worker-1");
    lines_seen++;
}

static void test_cluster_ids_pass_through(void **state) {
    (void)state;
    pid_t pid = start_daemon(script_ids);
    aioc_client *c;
    aioc_task_info *t;

    assert_int_equal(aioc_connect(path, &c), 0);

    assert_int_equal(aioc_show(c, CLUSTER_ID(5), &t), 0);
    assert_true(aioc_task_info_id(t) == CLUSTER_ID(5));
    assert_string_equal(aioc_task_info_queue(t), "q1");
    /* Invalid UTF-8 from the daemon is made valid. */
    assert_string_equal(aioc_task_info_host(t), "worker-?");
    assert_string_equal(aioc_task_info_owner_host(t), "front");
    aioc_task_info_free(t);

    assert_int_equal(aioc_show(c, CLUSTER_ID(6), &t), 0);
    assert_string_equal(aioc_task_info_queue(t), "q1");
    assert_null(aioc_task_info_host(t));
    assert_string_equal(aioc_task_info_owner_host(t), "front");
    aioc_task_info_free(t);

    assert_int_equal(aioc_show(c, 3, &t), 0);
    assert_null(aioc_task_info_queue(t));
    assert_null(aioc_task_info_host(t));
    assert_null(aioc_task_info_owner_host(t));
    aioc_task_info_free(t);
    assert_null(aioc_task_info_queue(NULL));
    assert_null(aioc_task_info_host(NULL));
    assert_null(aioc_task_info_owner_host(NULL));

    t = NULL;
    assert_int_equal(aioc_show(c, CLUSTER_ID(7), &t), -EHOSTUNREACH);
    assert_null(t);
    assert_string_equal(aioc_last_error(c), "cluster: down");

    uint64_t ids[] = {CLUSTER_ID(5), UINT64_MAX};
    aioc_outcome *os[2] = {NULL, NULL};
    assert_int_equal(aioc_await(c, ids, 2, 0, os), 0);
    assert_true(aioc_outcome_task_id(os[0]) == CLUSTER_ID(5));
    assert_int_equal(aioc_outcome_state(os[0]), AIOC_STATE_DONE);
    assert_true(aioc_outcome_task_id(os[1]) == UINT64_MAX);
    assert_string_equal(aioc_outcome_error_kind(os[1]), "Interrupted");
    aioc_outcome_free(os[0]);
    aioc_outcome_free(os[1]);

    uint64_t queued = CLUSTER_ID(6);
    assert_int_equal(aioc_cancel(c, &queued, 1), 1);
    assert_int_equal(aioc_cancel(c, &queued, 1), -EHOSTUNREACH);

    aioc_set_output_callback(c, on_line, NULL);
    assert_int_equal(aioc_logs(c, CLUSTER_ID(5), AIOC_LOGS_FOLLOW), AIOC_STATE_DONE);
    assert_int_equal(lines_seen, 1);

    aioc_close(c);
    end_daemon(pid);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_ids),
        cmocka_unit_test(test_submit_queue),
        cmocka_unit_test(test_cluster_ids_pass_through),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
