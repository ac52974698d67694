/*
 * Tests of libaioclient 1.5's schedules against the fake daemon
 * (fake-daemon.h): the checks of aioc_schedule_* at the edge, the Schedule
 * that aioc_submit_ex and aioc_start_submit_ex put on a Submit (the fake
 * daemon checks every field it receives), what a TaskInfo says about
 * attempts, the next run and the tasks a task runs after, and
 * ERROR_STORE as -ENOSPC with the daemon's message.
 */
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

#include <cmocka.h>

#include "aioc.h"
#include "aiod.pb-c.h"
#include "alloc.h"
#include "frame.h"
#include "pbvalue.h"
#include "wire.h"

#include "fake-daemon.h"

/* ------------------------------------------------------------ building a schedule */

static void test_schedule_checks(void **state) {
    (void)state;
    aioc_schedule *s = NULL;

    assert_int_equal(aioc_schedule_new(NULL), -EINVAL);
    assert_int_equal(aioc_schedule_new(&s), 0);
    assert_non_null(s);

    /* Retries: at most 1000; times finite and not negative. */
    assert_int_equal(aioc_schedule_set_retries(NULL, 1, 0, 0), -EINVAL);
    assert_int_equal(aioc_schedule_set_retries(s, AIOC_SCHEDULE_MAX_RETRIES + 1, 0, 0), -EINVAL);
    assert_int_equal(aioc_schedule_set_retries(s, AIOC_SCHEDULE_MAX_RETRIES, 0, 0), 0);
    assert_int_equal(aioc_schedule_set_retries(s, 3, -0.5, 0), -EINVAL);
    assert_int_equal(aioc_schedule_set_retries(s, 3, NAN, 0), -EINVAL);
    assert_int_equal(aioc_schedule_set_retries(s, 3, 1, -1), -EINVAL);
    assert_int_equal(aioc_schedule_set_retries(s, 3, 1, INFINITY), -EINVAL);
    assert_int_equal(aioc_schedule_set_retries(s, 3, 0.25, 8), 0);

    assert_int_equal(aioc_schedule_set_delay(NULL, 1), -EINVAL);
    assert_int_equal(aioc_schedule_set_delay(s, -1e-9), -EINVAL);
    assert_int_equal(aioc_schedule_set_delay(s, NAN), -EINVAL);
    assert_int_equal(aioc_schedule_set_delay(s, INFINITY), -EINVAL);
    /* Past the daemon's bound, refused here with the others (the daemon
     * refused it, without naming the option). */
    assert_int_equal(aioc_schedule_set_delay(s, 1e300), -EINVAL);
    assert_int_equal(aioc_schedule_set_delay(s, AIOC_SCHEDULE_MAX_SECONDS), 0);
    assert_int_equal(aioc_schedule_set_retries(s, 3, 2e9, 10), -EINVAL);
    assert_int_equal(aioc_schedule_set_retries(s, 3, 1, 2e9), -EINVAL);
    assert_int_equal(aioc_schedule_set_delay(s, 1.5), 0);

    assert_int_equal(aioc_schedule_set_at(NULL, 1), -EINVAL);
    assert_int_equal(aioc_schedule_set_at(s, 1765000000000000u), 0);

    /* After: ids not 0, at most 256 in all; a refused add adds nothing. */
    uint64_t ids[AIOC_SCHEDULE_MAX_AFTER + 1];
    for (size_t i = 0; i < AIOC_SCHEDULE_MAX_AFTER + 1; i++)
        ids[i] = i + 1;
    assert_int_equal(aioc_schedule_add_after(NULL, ids, 1), -EINVAL);
    assert_int_equal(aioc_schedule_add_after(s, NULL, 1), -EINVAL);
    assert_int_equal(aioc_schedule_add_after(s, NULL, 0), 0);
    uint64_t zero[] = {4, 0};
    assert_int_equal(aioc_schedule_add_after(s, zero, 2), -EINVAL);
    assert_int_equal(aioc_schedule_add_after(s, ids, AIOC_SCHEDULE_MAX_AFTER + 1), -E2BIG);
    assert_int_equal(aioc_schedule_add_after(s, ids, AIOC_SCHEDULE_MAX_AFTER - 1), 0);
    assert_int_equal(aioc_schedule_add_after(s, ids, 2), -E2BIG);
    assert_int_equal(aioc_schedule_add_after(s, ids, 1), 0);
    assert_int_equal(aioc_schedule_add_after(s, ids, 1), -E2BIG);
    aioc_schedule_free(s);
    aioc_schedule_free(NULL);

    /* Out of memory: nothing made, nothing added. */
    alloc_fail_at(1);
    s = NULL;
    assert_int_equal(aioc_schedule_new(&s), -ENOMEM);
    assert_null(s);
    alloc_fail_at(0);
    assert_int_equal(aioc_schedule_new(&s), 0);
    alloc_fail_at(1);
    assert_int_equal(aioc_schedule_add_after(s, ids, 3), -ENOMEM);
    alloc_fail_at(0);
    assert_int_equal(aioc_schedule_add_after(s, ids, AIOC_SCHEDULE_MAX_AFTER), 0);
    aioc_schedule_free(s);
}

/* ------------------------------------------------------------ on the wire */

/* Reads a Submit; checks its function, ownership and follow; returns it. */
static Aiod__ClientMessage *recv_submit(int fd, Aiod__Ownership own, bool follow) {
    Aiod__ClientMessage *m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_SUBMIT);
    CHECK(strcmp(m->submit->call->function, "demo.fail") == 0);
    CHECK(m->submit->ownership == own);
    CHECK(m->submit->follow == follow);
    return m;
}

/* The schedule test_submit_ex builds. */
static void check_full_schedule(const Aiod__Schedule *s) {
    CHECK(s);
    CHECK(s->retries == 4);
    CHECK(s->backoff == 0.5);
    CHECK(s->backoff_max == 30);
    CHECK(s->delay == 2.25);
    CHECK(s->at_usec == 1765000000123456u);
    CHECK(s->n_after == 3 && s->after[0] == 12 && s->after[1] == 13 && s->after[2] == 7);
}

static void script_submit_ex(int fd) {
    do_hello(fd, 1u << 20);

    /* aioc_submit_ex, submitted, the full schedule. */
    Aiod__ClientMessage *m = recv_submit(fd, AIOD__OWNERSHIP__SUBMITTED, false);
    check_full_schedule(m->submit->schedule);
    send_submitted(fd, m->request_id, 40);
    aiod__client_message__free_unpacked(m, NULL);

    /* Detached, no schedule: none on the wire. */
    m = recv_submit(fd, AIOD__OWNERSHIP__DETACHED, false);
    CHECK(m->submit->schedule == NULL);
    send_submitted(fd, m->request_id, 41);
    aiod__client_message__free_unpacked(m, NULL);

    /* Attached, only a delay: the rest stays at its default (0, none). */
    m = recv_submit(fd, AIOD__OWNERSHIP__ATTACHED, false);
    CHECK(m->submit->schedule);
    CHECK(m->submit->schedule->delay == 60);
    CHECK(m->submit->schedule->retries == 0 && m->submit->schedule->n_after == 0 &&
          m->submit->schedule->at_usec == 0 && m->submit->schedule->backoff == 0);
    send_submitted(fd, m->request_id, 42);
    aiod__client_message__free_unpacked(m, NULL);

    /* The store could not record it. */
    m = recv_submit(fd, AIOD__OWNERSHIP__SUBMITTED, false);
    send_error(fd, m->request_id, AIOD__ERROR_CODE__ERROR_STORE,
               "state store: No space left on device", NULL);
    aiod__client_message__free_unpacked(m, NULL);

    /* aioc_start_submit_ex: attached with follow, the full schedule; its
     * output, then its end. */
    m = recv_submit(fd, AIOD__OWNERSHIP__ATTACHED, true);
    check_full_schedule(m->submit->schedule);
    uint64_t rid = m->request_id;
    aiod__client_message__free_unpacked(m, NULL);
    send_submitted(fd, rid, 43);
    send_output(fd, rid, 43, "attempt 1");
    send_output(fd, rid, 43, "attempt 2");
    send_output_end(fd, rid, 43, AIOD__TASK_STATE__TASK_FAILED);

    /* Then an Await of it, as `aioctl run` with a schedule sends it. */
    m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    CHECK(m->await->n_task_ids == 1 && m->await->task_ids[0] == 43);
    CHECK(m->await->cancel_on_timeout && m->await->timeout == 5);
    Aiod__Outcome o = AIOD__OUTCOME__INIT, *os[] = {&o};
    o.task_id = 43;
    o.state = AIOD__TASK_STATE__TASK_FAILED;
    o.error_kind = (char *)"ValueError";
    o.error_message = (char *)"third time";
    send_outcomes(fd, m->request_id, os, 1);
    aiod__client_message__free_unpacked(m, NULL);

    /* aioc_start_submit still sends no schedule. */
    m = recv_submit(fd, AIOD__OWNERSHIP__SUBMITTED, false);
    CHECK(m->submit->schedule == NULL);
    send_submitted(fd, m->request_id, 44);
    aiod__client_message__free_unpacked(m, NULL);
    expect_eof(fd);
}

typedef struct seen {
    int lines;
    bool ended;
    int end_state;
} seen;

static void on_line(uint64_t task, int stream, const char *line, void *userdata) {
    seen *s = userdata;
    (void)stream;
    assert_int_equal(task, 43);
    assert_string_equal(line, s->lines == 0 ? "attempt 1" : "attempt 2");
    s->lines++;
}

static void on_event(aioc_request *req, int event, uint64_t task, int state, void *userdata) {
    seen *s = userdata;
    (void)req;
    if (event == AIOC_EVENT_OUTPUT_END) {
        assert_int_equal(task, 43);
        s->ended = true;
        s->end_state = state;
    }
}

/* Runs aioc_process until `done` says so. */
static void pump(aioc_client *c, bool (*done)(void *), void *arg) {
    while (!done(arg)) {
        struct pollfd p = {.fd = aioc_fd(c), .events = (short)aioc_events(c)};
        assert_true(poll(&p, 1, 5000) > 0);
        assert_true(aioc_process(c) >= 0);
    }
}

static bool req_done(void *arg) {
    return aioc_request_done(arg) == 1;
}

static bool output_ended(void *arg) {
    return ((seen *)arg)->ended;
}

static void test_submit_ex(void **state) {
    (void)state;
    pid_t pid = start_daemon(script_submit_ex);
    aioc_client *c;
    aioc_schedule *s, *delay;
    aioc_call *call = aioc_call_new("demo.fail");
    uint64_t id = 0;
    uint64_t after[] = {12, 13};
    uint64_t after2[] = {7};

    assert_int_equal(aioc_connect(path, &c), 0);
    assert_int_equal(aioc_schedule_new(&s), 0);
    assert_int_equal(aioc_schedule_set_retries(s, 4, 0.5, 30), 0);
    assert_int_equal(aioc_schedule_set_delay(s, 2.25), 0);
    assert_int_equal(aioc_schedule_set_at(s, 1765000000123456u), 0);
    assert_int_equal(aioc_schedule_add_after(s, after, 2), 0);
    assert_int_equal(aioc_schedule_add_after(s, after2, 1), 0);
    /* The ids were copied. */
    after[0] = after[1] = after2[0] = 99;

    /* Argument checks, before anything is sent. */
    assert_int_equal(aioc_submit_ex(NULL, call, AIOC_SUBMIT_SUBMITTED, s, &id), -EINVAL);
    assert_int_equal(aioc_submit_ex(c, NULL, AIOC_SUBMIT_SUBMITTED, s, &id), -EINVAL);
    assert_int_equal(aioc_submit_ex(c, call, AIOC_SUBMIT_SUBMITTED, s, NULL), -EINVAL);
    assert_int_equal(aioc_submit_ex(c, call, 0x3u, s, &id), -EINVAL);
    assert_int_equal(aioc_submit_ex(c, call, AIOC_SUBMIT_SUBMITTED | AIOC_SUBMIT_FOLLOW, s, &id),
                     -EINVAL);
    assert_int_equal(aioc_submit_ex(c, call, 0x8u, s, &id), -EINVAL);
    aioc_call *item = aioc_call_task(5);
    assert_int_equal(aioc_submit_ex(c, item, AIOC_SUBMIT_SUBMITTED, s, &id), -EINVAL);
    aioc_call_free(item);
    assert_int_equal(id, 0);

    assert_int_equal(aioc_submit_ex(c, call, AIOC_SUBMIT_SUBMITTED, s, &id), 0);
    assert_int_equal(id, 40);
    assert_int_equal(aioc_submit_ex(c, call, AIOC_SUBMIT_DETACHED, NULL, &id), 0);
    assert_int_equal(id, 41);
    assert_int_equal(aioc_schedule_new(&delay), 0);
    assert_int_equal(aioc_schedule_set_delay(delay, 60), 0);
    assert_int_equal(aioc_submit_ex(c, call, AIOC_SUBMIT_ATTACHED, delay, &id), 0);
    assert_int_equal(id, 42);
    aioc_schedule_free(delay);

    id = 0;
    assert_int_equal(aioc_submit_ex(c, call, AIOC_SUBMIT_SUBMITTED, s, &id), -ENOSPC);
    assert_int_equal(id, 0);
    assert_string_equal(aioc_last_error(c), "state store: No space left on device");

    /* Non-blocking, followed; the schedule may go at once. */
    aioc_request *req = NULL;
    seen sn = {0};
    assert_int_equal(aioc_start_submit_ex(c, call, 0x3u, s, NULL, NULL, &req), -EINVAL);
    assert_int_equal(aioc_start_submit_ex(c, call, AIOC_SUBMIT_ATTACHED | AIOC_SUBMIT_FOLLOW, s,
                                          NULL, NULL, NULL),
                     -EINVAL);
    assert_null(req);
    assert_int_equal(aioc_start_submit_ex(c, call, AIOC_SUBMIT_ATTACHED | AIOC_SUBMIT_FOLLOW, s,
                                          NULL, NULL, &req),
                     0);
    aioc_schedule_free(s);
    aioc_request_set_output_callback(req, on_line, &sn);
    aioc_request_set_event_callback(req, on_event, &sn);
    pump(c, req_done, req);
    assert_int_equal(aioc_request_error(req), 0);
    assert_int_equal(aioc_request_task_id(req), 43);
    pump(c, output_ended, &sn);
    assert_int_equal(sn.lines, 2);
    assert_int_equal(sn.end_state, AIOC_STATE_FAILED);
    aioc_request_free(req);

    uint64_t task = 43;
    assert_int_equal(
        aioc_start_await(c, &task, 1, AIOC_AWAIT_CANCEL_ON_TIMEOUT, 5, NULL, NULL, &req), 0);
    pump(c, req_done, req);
    assert_int_equal(aioc_request_error(req), 0);
    assert_int_equal(aioc_request_n_outcomes(req), 1);
    assert_int_equal(aioc_outcome_state(aioc_request_outcome(req, 0)), AIOC_STATE_FAILED);
    assert_string_equal(aioc_outcome_error_message(aioc_request_outcome(req, 0)), "third time");
    aioc_request_free(req);

    req = NULL;
    assert_int_equal(aioc_start_submit(c, call, AIOC_SUBMIT_SUBMITTED, NULL, NULL, &req), 0);
    pump(c, req_done, req);
    assert_int_equal(aioc_request_task_id(req), 44);
    aioc_request_free(req);

    aioc_call_free(call);
    aioc_close(c);
    end_daemon(pid);
}

/* ------------------------------------------------------------ task infos */

static void script_show(int fd) {
    do_hello(fd, 1u << 20);

    /* A task waiting for its third attempt, after two failed ones. */
    Aiod__ClientMessage *m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_SHOW_TASK && m->show_task->task_id == 9);
    Aiod__Attempt a1 = AIOD__ATTEMPT__INIT, a2 = AIOD__ATTEMPT__INIT, *as[] = {&a1, &a2};
    a1.number = 1;
    a1.started_usec = 1000;
    a1.finished_usec = 2000;
    a1.error_kind = (char *)"ValueError";
    a1.error_message = (char *)"bad \xff byte";
    a2.number = 2;
    a2.started_usec = 3000;
    a2.finished_usec = 4000;
    a2.error_kind = (char *)"TimeoutError";
    a2.error_message = (char *)"";
    uint64_t after[] = {3, 4};
    Aiod__TaskInfo t = AIOD__TASK_INFO__INIT;
    t.id = 9;
    t.state = AIOD__TASK_STATE__TASK_PENDING;
    t.function = (char *)"demo.fail";
    t.attempt = 2;
    t.max_attempts = 5;
    t.next_run_usec = 1765000000000000u;
    t.after = after;
    t.n_after = 2;
    t.attempts = as;
    t.n_attempts = 2;
    Aiod__ServerMessage r = AIOD__SERVER_MESSAGE__INIT;
    r.request_id = m->request_id;
    r.body_case = AIOD__SERVER_MESSAGE__BODY_TASK_INFO;
    r.task_info = &t;
    send_msg(fd, &r);
    aiod__client_message__free_unpacked(m, NULL);

    /* An older daemon's task: none of it. */
    m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_SHOW_TASK && m->show_task->task_id == 10);
    Aiod__TaskInfo old = AIOD__TASK_INFO__INIT;
    old.id = 10;
    old.state = AIOD__TASK_STATE__TASK_RUNNING;
    old.function = (char *)"demo.sleep";
    r.request_id = m->request_id;
    r.task_info = &old;
    send_msg(fd, &r);
    aiod__client_message__free_unpacked(m, NULL);
    expect_eof(fd);
}

static void test_task_info(void **state) {
    (void)state;
    pid_t pid = start_daemon(script_show);
    aioc_client *c;
    aioc_task_info *t;
    size_t n = 99;
    uint32_t number = 0;
    uint64_t started = 0, finished = 0;
    const char *kind = NULL, *message = NULL;

    assert_int_equal(aioc_connect(path, &c), 0);
    assert_int_equal(aioc_show(c, 9, &t), 0);
    assert_int_equal(aioc_task_info_attempt(t), 2);
    assert_int_equal(aioc_task_info_max_attempts(t), 5);
    assert_int_equal(aioc_task_info_next_run_usec(t), 1765000000000000u);
    const uint64_t *after = aioc_task_info_after(t, &n);
    assert_int_equal(n, 2);
    assert_non_null(after);
    assert_int_equal(after[0], 3);
    assert_int_equal(after[1], 4);
    assert_null(aioc_task_info_after(t, NULL));

    assert_int_equal(aioc_task_info_n_attempt_records(t), 2);
    assert_int_equal(
        aioc_task_info_attempt_record(t, 0, &number, &started, &finished, &kind, &message), 0);
    assert_int_equal(number, 1);
    assert_int_equal(started, 1000);
    assert_int_equal(finished, 2000);
    assert_string_equal(kind, "ValueError");
    /* Invalid UTF-8 from the daemon is made valid. */
    assert_string_equal(message, "bad ? byte");
    assert_int_equal(aioc_task_info_attempt_record(t, 1, &number, NULL, NULL, &kind, &message), 0);
    assert_int_equal(number, 2);
    assert_string_equal(kind, "TimeoutError");
    assert_string_equal(message, "");
    /* Each output may be NULL; out of range is -ERANGE and writes nothing. */
    assert_int_equal(aioc_task_info_attempt_record(t, 1, NULL, NULL, NULL, NULL, NULL), 0);
    number = 77;
    assert_int_equal(aioc_task_info_attempt_record(t, 2, &number, NULL, NULL, NULL, NULL), -ERANGE);
    assert_int_equal(number, 77);
    assert_int_equal(aioc_task_info_attempt_record(NULL, 0, &number, NULL, NULL, NULL, NULL),
                     -EINVAL);
    aioc_task_info_free(t);

    assert_int_equal(aioc_show(c, 10, &t), 0);
    assert_int_equal(aioc_task_info_attempt(t), 0);
    assert_int_equal(aioc_task_info_max_attempts(t), 0);
    assert_int_equal(aioc_task_info_next_run_usec(t), 0);
    n = 99;
    assert_null(aioc_task_info_after(t, &n));
    assert_int_equal(n, 0);
    assert_int_equal(aioc_task_info_n_attempt_records(t), 0);
    assert_int_equal(aioc_task_info_attempt_record(t, 0, NULL, NULL, NULL, NULL, NULL), -ERANGE);
    aioc_task_info_free(t);

    /* NULL infos. */
    assert_int_equal(aioc_task_info_attempt(NULL), 0);
    assert_int_equal(aioc_task_info_max_attempts(NULL), 0);
    assert_int_equal(aioc_task_info_next_run_usec(NULL), 0);
    assert_null(aioc_task_info_after(NULL, &n));
    assert_int_equal(aioc_task_info_n_attempt_records(NULL), 0);

    aioc_close(c);
    end_daemon(pid);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_checks),
        cmocka_unit_test(test_submit_ex),
        cmocka_unit_test(test_task_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
