/*
 * Tests of libaioclient on the wire: each test forks a fake daemon that
 * listens on a temporary Unix socket and plays a script, checking every
 * ClientMessage it receives (hello, request ids, the fields of each request)
 * and answering with chosen ServerMessages (events, out-of-order and stale
 * replies, errors). The parent checks what the public API makes of them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "aioc.h"
#include "aiod.pb-c.h"
#include "alloc.h"
#include "frame.h"
#include "pbvalue.h"
#include "wire.h"

#include "fake-daemon.h"

/* ------------------------------------------------------------ tests */

static void script_hello(int fd) {
    do_hello(fd, 1u << 20);
    expect_eof(fd);
}

static void test_hello(void **state) {
    pid_t pid = start_daemon(script_hello);
    aioc_client *c = NULL;
    assert_int_equal(aioc_connect(path, &c), 0);
    assert_string_equal(aioc_server_version(c), "9.8.7");
    assert_string_equal(aioc_last_error(c), "");
    assert_true(aioc_fd(c) >= 0);
    aioc_close(c);
    end_daemon(pid);
}

static void script_hello_refused(int fd) {
    Aiod__ClientMessage *m = recv_msg(fd);
    send_error(fd, m->request_id, AIOD__ERROR_CODE__ERROR_UNSUPPORTED_VERSION,
               "protocol version 1 is not supported", NULL);
    aiod__client_message__free_unpacked(m, NULL);
}

static void test_hello_refused(void **state) {
    pid_t pid = start_daemon(script_hello_refused);
    aioc_client *c = NULL;
    assert_int_equal(aioc_connect(path, &c), -EPROTONOSUPPORT);
    assert_null(c);
    end_daemon(pid);
}

static void test_connect_errors(void **state) {
    aioc_client *c = NULL;
    char buf[8], longpath[200];

    assert_int_equal(aioc_connect("/nonexistent/aiod.sock", &c), -ENOENT);
    memset(longpath, 'x', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(aioc_connect(longpath, &c), -ENAMETOOLONG);
    assert_int_equal(aioc_connect(NULL, NULL), -EINVAL);
    assert_null(c);

    setenv("AIOD_SOCKET", "/x/y.sock", 1);
    assert_int_equal(aioc_default_socket_path(buf, sizeof(buf)), -ENAMETOOLONG);
    char big[64];
    assert_int_equal(aioc_default_socket_path(big, sizeof(big)), 0);
    assert_string_equal(big, "/x/y.sock");
    unsetenv("AIOD_SOCKET");
    /* No own instance (no socket in $XDG_RUNTIME_DIR/aiod): the system one. */
    char xdg[] = "/tmp/aioc-xdg-XXXXXX";
    assert_non_null(mkdtemp(xdg));
    setenv("XDG_RUNTIME_DIR", xdg, 1);
    assert_int_equal(aioc_default_socket_path(big, sizeof(big)), 0);
    assert_string_equal(big, "/run/aiod/aiod.sock");
    /* The user's own instance once its socket exists. */
    char own_dir[64], own[80];
    snprintf(own_dir, sizeof(own_dir), "%s/aiod", xdg);
    snprintf(own, sizeof(own), "%s/aiod.sock", own_dir);
    assert_int_equal(mkdir(own_dir, 0700), 0);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", own);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(aioc_default_socket_path(big, sizeof(big)), 0);
    assert_string_equal(big, own);
    /* Another user's socket there (root with that user's XDG_RUNTIME_DIR,
     * after su without -) is not the caller's instance: the system one.
     * Only root can make one. */
    if (geteuid() == 0) {
        assert_int_equal(chown(own, 65534, 65534), 0);
        assert_int_equal(aioc_default_socket_path(big, sizeof(big)), 0);
        assert_string_equal(big, "/run/aiod/aiod.sock");
        assert_int_equal(chown(own, 0, 0), 0);
    }
    /* A buffer too small for the user's socket is too small: not a reason
     * to hand out the system daemon's (shorter) path instead. */
    char small[24];
    assert_true(strlen(own) >= sizeof(small));
    assert_int_equal(aioc_default_socket_path(small, sizeof(small)), -ENAMETOOLONG);
    /* A plain file of that name is not a socket: still the system one. */
    close(fd);
    unlink(own);
    close(open(own, O_CREAT | O_WRONLY, 0600));
    assert_int_equal(aioc_default_socket_path(big, sizeof(big)), 0);
    assert_string_equal(big, "/run/aiod/aiod.sock");
    unlink(own);
    rmdir(own_dir);
    rmdir(xdg);
    /* A runtime directory whose socket path would not fit the buffer (or a
     * socket address) cannot hold the user's instance: the system one. */
    char deep[160];
    memset(deep, 'd', sizeof(deep) - 1);
    deep[0] = '/';
    deep[sizeof(deep) - 1] = '\0';
    setenv("XDG_RUNTIME_DIR", deep, 1);
    assert_int_equal(aioc_default_socket_path(big, sizeof(big)), 0);
    assert_string_equal(big, "/run/aiod/aiod.sock");
    unsetenv("XDG_RUNTIME_DIR");
    assert_int_equal(aioc_default_socket_path(big, sizeof(big)), 0);
    assert_string_equal(big, "/run/aiod/aiod.sock");
    assert_int_equal(aioc_default_socket_path(NULL, 5), -EINVAL);
    aioc_close(NULL);
}

/* aioc_run: one Gather of the call with return_exceptions and follow; output
 * events tagged with its id arrive before the outcome, mixed with a stale
 * reply that must be skipped. */
static Aiod__ClientMessage *recv_run(int fd, double timeout) {
    Aiod__ClientMessage *g = recv_msg(fd);
    CHECK(g->body_case == AIOD__CLIENT_MESSAGE__BODY_GATHER);
    CHECK(g->gather->n_items == 1);
    CHECK(g->gather->items[0]->item_case == AIOD__GATHER_ITEM__ITEM_CALL);
    CHECK(g->gather->return_exceptions);
    CHECK(g->gather->follow);
    CHECK(g->gather->cancel_on_timeout);
    CHECK(g->gather->timeout == timeout);
    return g;
}

static void script_run(int fd) {
    uint64_t hello = do_hello(fd, 1u << 20);

    Aiod__ClientMessage *g = recv_run(fd, 2.5);
    CHECK(g->request_id > hello);
    const Aiod__Call *call = g->gather->items[0]->call;
    CHECK(strcmp(call->function, "demo.f") == 0);
    CHECK(call->args_are_text);
    CHECK(call->n_args == 2);
    CHECK(strcmp(call->args[0]->string_value, "3") == 0);
    CHECK(strcmp(call->args[1]->string_value, "a b") == 0);
    send_output(fd, g->request_id, 7, "one");
    send_output(fd, g->request_id, 7, "two \xff");
    send_submitted(fd, 9999, 1); /* stale: nobody waits for 9999 */
    send_output_end(fd, g->request_id, 7, AIOD__TASK_STATE__TASK_DONE);

    Aiod__Outcome o = AIOD__OUTCOME__INIT, *op = &o;
    o.task_id = 7;
    o.state = AIOD__TASK_STATE__TASK_DONE;
    o.result = pbvalue_int(42);
    send_outcomes(fd, g->request_id, &op, 1);
    pbvalue_free(o.result);
    aiod__client_message__free_unpacked(g, NULL);

    /* A second run whose result is absent (null), then one that fails. */
    g = recv_run(fd, 0);
    o = (Aiod__Outcome)AIOD__OUTCOME__INIT;
    o.task_id = 8;
    o.state = AIOD__TASK_STATE__TASK_DONE;
    send_outcomes(fd, g->request_id, &op, 1);
    aiod__client_message__free_unpacked(g, NULL);

    g = recv_run(fd, 0);
    o.task_id = 9;
    o.state = AIOD__TASK_STATE__TASK_FAILED;
    o.error_kind = (char *)"ValueError";
    o.error_message = (char *)"bad value";
    send_outcomes(fd, g->request_id, &op, 1);
    aiod__client_message__free_unpacked(g, NULL);

    /* A run refused: the daemon words it for the one-item gather it got;
     * then a gather of one item, refused in the same words. */
    static const char refusal[] =
        "gather item 1: demo.f: parameter 'seconds': expected double, got \"abc\"";
    g = recv_run(fd, 0);
    send_error(fd, g->request_id, AIOD__ERROR_CODE__ERROR_BAD_ARGUMENT, refusal, NULL);
    aiod__client_message__free_unpacked(g, NULL);
    g = recv_msg(fd);
    CHECK(g->body_case == AIOD__CLIENT_MESSAGE__BODY_GATHER);
    send_error(fd, g->request_id, AIOD__ERROR_CODE__ERROR_BAD_ARGUMENT, refusal, NULL);
    aiod__client_message__free_unpacked(g, NULL);
    expect_eof(fd);
}

struct lines {
    char text[8][64];
    uint64_t task[8];
    int n;
};

static void collect(uint64_t task_id, int stream, const char *line, void *userdata) {
    struct lines *l = userdata;
    assert_int_equal(stream, 1);
    assert_true(l->n < 8);
    snprintf(l->text[l->n], sizeof(l->text[0]), "%s", line);
    l->task[l->n++] = task_id;
}

static void test_run(void **state) {
    pid_t pid = start_daemon(script_run);
    aioc_client *c = NULL;
    struct lines lines = {0};
    aioc_outcome *o = NULL;

    assert_int_equal(aioc_connect(path, &c), 0);
    aioc_set_output_callback(c, collect, &lines);
    aioc_call *call = aioc_call_new("demo.f");
    assert_int_equal(aioc_call_arg_text(call, "3"), 0);
    assert_int_equal(aioc_call_arg_text(call, "a b"), 0);
    assert_int_equal(aioc_run(c, call, 2.5, &o), 0);
    assert_int_equal(lines.n, 2);
    assert_string_equal(lines.text[0], "one");
    assert_string_equal(lines.text[1], "two ?"); /* invalid UTF-8 replaced */
    assert_int_equal(lines.task[1], 7);
    assert_int_equal(aioc_outcome_task_id(o), 7);
    assert_int_equal(aioc_outcome_state(o), AIOC_STATE_DONE);
    assert_int_equal(aioc_value_get_int(aioc_outcome_result(o)), 42);
    assert_string_equal(aioc_outcome_error_kind(o), "");
    aioc_outcome_free(o);

    assert_int_equal(aioc_run(c, call, 0, &o), 0);
    assert_int_equal(aioc_value_type(aioc_outcome_result(o)), AIOC_TYPE_NULL);
    aioc_outcome_free(o);

    assert_int_equal(aioc_run(c, call, -1, &o), 0);
    assert_int_equal(aioc_outcome_state(o), AIOC_STATE_FAILED);
    assert_null(aioc_outcome_result(o));
    assert_string_equal(aioc_outcome_error_kind(o), "ValueError");
    assert_string_equal(aioc_outcome_error_message(o), "bad value");
    aioc_outcome_free(o);

    /* The refusal reads as aioc_connect(3) shows it, without the
     * gather's item number; a gather keeps it. */
    o = NULL;
    assert_int_equal(aioc_run(c, call, 0, &o), -EINVAL);
    assert_null(o);
    assert_string_equal(aioc_last_error(c),
                        "demo.f: parameter 'seconds': expected double, got \"abc\"");
    const aioc_call *items[] = {call};
    assert_int_equal(aioc_gather(c, items, 1, 0, 0, &o, NULL), -EINVAL);
    assert_string_equal(aioc_last_error(c),
                        "gather item 1: demo.f: parameter 'seconds': expected double, got \"abc\"");

    assert_int_equal(aioc_run(NULL, call, 0, &o), -EINVAL);
    assert_int_equal(aioc_run(c, NULL, 0, &o), -EINVAL);
    assert_int_equal(aioc_run(c, call, 0, NULL), -EINVAL);
    aioc_call_free(call);
    aioc_close(c);
    end_daemon(pid);
}

/* Every error code maps to its errno, and the connection stays usable. */
static const struct {
    Aiod__ErrorCode code;
    int err;
} error_map[] = {
    {AIOD__ERROR_CODE__ERROR_BAD_MESSAGE, -EPROTO},
    {AIOD__ERROR_CODE__ERROR_PROTOCOL, -EPROTO},
    {AIOD__ERROR_CODE__ERROR_UNSUPPORTED_VERSION, -EPROTONOSUPPORT},
    {AIOD__ERROR_CODE__ERROR_UNKNOWN_FUNCTION, -ENOENT},
    {AIOD__ERROR_CODE__ERROR_BAD_ARGUMENT, -EINVAL},
    {AIOD__ERROR_CODE__ERROR_NO_SUCH_TASK, -ESRCH},
    {AIOD__ERROR_CODE__ERROR_NOT_ALLOWED, -EPERM},
    {AIOD__ERROR_CODE__ERROR_LIMIT, -EAGAIN},
    {AIOD__ERROR_CODE__ERROR_TIMEOUT, -ETIMEDOUT},
    {AIOD__ERROR_CODE__ERROR_CANCELLED, -ECANCELED},
    {AIOD__ERROR_CODE__ERROR_INTERNAL, -EFAULT},
    {AIOD__ERROR_CODE__ERROR_SHUTTING_DOWN, -ESHUTDOWN},
    {(Aiod__ErrorCode)77, -EFAULT},
};

static void script_errors(int fd) {
    do_hello(fd, 1u << 20);
    for (size_t i = 0; i < sizeof(error_map) / sizeof(error_map[0]); i++) {
        Aiod__ClientMessage *m = recv_msg(fd);
        CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_CANCEL);
        CHECK(m->cancel->n_task_ids == 2 && m->cancel->task_ids[1] == 6);
        char text[64];
        snprintf(text, sizeof(text), "error %d", (int)error_map[i].code);
        send_error(fd, m->request_id, error_map[i].code, text, NULL);
        aiod__client_message__free_unpacked(m, NULL);
    }
    /* Then a success. */
    Aiod__ClientMessage *m = recv_msg(fd);
    Aiod__Cancelled x = AIOD__CANCELLED__INIT;
    Aiod__ServerMessage r = AIOD__SERVER_MESSAGE__INIT;
    x.count = 1;
    r.request_id = m->request_id;
    r.body_case = AIOD__SERVER_MESSAGE__BODY_CANCELLED;
    r.cancelled = &x;
    send_msg(fd, &r);
    aiod__client_message__free_unpacked(m, NULL);
    expect_eof(fd);
}

static void test_errors(void **state) {
    pid_t pid = start_daemon(script_errors);
    aioc_client *c = NULL;
    uint64_t ids[] = {5, 6};

    assert_int_equal(aioc_connect(path, &c), 0);
    for (size_t i = 0; i < sizeof(error_map) / sizeof(error_map[0]); i++) {
        char text[64];
        snprintf(text, sizeof(text), "error %d", (int)error_map[i].code);
        assert_int_equal(aioc_cancel(c, ids, 2), error_map[i].err);
        assert_string_equal(aioc_last_error(c), text);
    }
    assert_int_equal(aioc_cancel(c, ids, 2), 1);
    assert_string_equal(aioc_last_error(c), "");
    ids[0] = 0;
    assert_int_equal(aioc_cancel(c, ids, 2), -EINVAL);
    assert_int_equal(aioc_cancel(c, ids, 0), -EINVAL);
    aioc_close(c);
    end_daemon(pid);
}

/* Gather: items in order, task items, flags, and the failure outcome. */
static void script_gather(int fd) {
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_GATHER);
    Aiod__Gather *g = m->gather;
    CHECK(g->n_items == 2);
    CHECK(g->items[0]->item_case == AIOD__GATHER_ITEM__ITEM_CALL);
    CHECK(strcmp(g->items[0]->call->function, "demo.sleep") == 0);
    CHECK(!g->items[0]->call->args_are_text);
    CHECK(g->items[0]->call->args[0]->double_value == 0.5);
    CHECK(g->items[1]->item_case == AIOD__GATHER_ITEM__ITEM_TASK_ID);
    CHECK(g->items[1]->task_id == 12);
    CHECK(g->follow && !g->return_exceptions && g->cancel_on_timeout);
    send_output(fd, m->request_id, 13, "gathered line");
    Aiod__Outcome o = AIOD__OUTCOME__INIT;
    o.task_id = 12;
    o.state = AIOD__TASK_STATE__TASK_FAILED;
    o.error_kind = (char *)"OSError";
    o.error_message = (char *)"boom";
    send_error(fd, m->request_id, AIOD__ERROR_CODE__ERROR_TASK_FAILED, "task 12 failed", &o);
    aiod__client_message__free_unpacked(m, NULL);

    m = recv_msg(fd);
    CHECK(m->gather->return_exceptions && !m->gather->follow);
    Aiod__Outcome a = AIOD__OUTCOME__INIT, b = AIOD__OUTCOME__INIT, *ab[] = {&a, &b};
    a.task_id = 13;
    a.state = AIOD__TASK_STATE__TASK_DONE;
    a.result = pbvalue_string("r");
    b = o;
    send_outcomes(fd, m->request_id, ab, 2);
    pbvalue_free(a.result);
    aiod__client_message__free_unpacked(m, NULL);
    expect_eof(fd);
}

static void test_gather(void **state) {
    pid_t pid = start_daemon(script_gather);
    aioc_client *c = NULL;
    struct lines lines = {0};
    aioc_outcome *os[2] = {NULL, NULL}, *failed = NULL;

    assert_int_equal(aioc_connect(path, &c), 0);
    aioc_set_output_callback(c, collect, &lines);
    aioc_call *items[2] = {aioc_call_new("demo.sleep"), aioc_call_task(12)};
    assert_int_equal(aioc_call_arg(items[0], aioc_value_double(0.5)), 0);
    const aioc_call *const *it = (const aioc_call *const *)items;

    assert_int_equal(aioc_gather(c, it, 2, AIOC_GATHER_FOLLOW, 0, os, &failed), -EIO);
    assert_null(os[0]);
    assert_int_equal(lines.n, 1);
    assert_int_equal(aioc_outcome_task_id(failed), 12);
    assert_string_equal(aioc_outcome_error_kind(failed), "OSError");
    assert_string_equal(aioc_last_error(c), "task 12 failed");
    aioc_outcome_free(failed);

    assert_int_equal(aioc_gather(c, it, 2, AIOC_GATHER_RETURN_EXCEPTIONS, 10, os, NULL), 0);
    assert_string_equal(aioc_value_get_string(aioc_outcome_result(os[0])), "r");
    assert_int_equal(aioc_outcome_state(os[1]), AIOC_STATE_FAILED);
    assert_string_equal(aioc_outcome_error_message(os[1]), "boom");
    aioc_outcome_free(os[0]);
    aioc_outcome_free(os[1]);

    assert_int_equal(aioc_gather(c, it, 2, 0x80, 0, os, NULL), -EINVAL);
    assert_int_equal(aioc_gather(c, it, 0, 0, 0, os, NULL), -EINVAL);
    aioc_call_free(items[0]);
    aioc_call_free(items[1]);
    aioc_close(c);
    end_daemon(pid);
}

/* Submit/detach/create_task ownership, list, show, plugins and logs. */
static void script_inspect(int fd) {
    do_hello(fd, 1u << 20);
    const Aiod__Ownership own[] = {AIOD__OWNERSHIP__ATTACHED, AIOD__OWNERSHIP__SUBMITTED,
                                   AIOD__OWNERSHIP__DETACHED};
    for (int i = 0; i < 3; i++) {
        Aiod__ClientMessage *m = recv_msg(fd);
        CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_SUBMIT);
        CHECK(m->submit->ownership == own[i] && !m->submit->follow);
        send_submitted(fd, m->request_id, 20 + (uint64_t)i);
        aiod__client_message__free_unpacked(m, NULL);
    }

    Aiod__ClientMessage *m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_LIST_TASKS && m->list_tasks->all);
    Aiod__TaskInfo t1 = AIOD__TASK_INFO__INIT, t2 = AIOD__TASK_INFO__INIT, *ts[] = {&t1, &t2};
    t1.id = 20;
    t1.state = AIOD__TASK_STATE__TASK_RUNNING;
    t1.function = (char *)"demo.sleep";
    t1.owner_uid = 1000;
    t1.owner_pid = 4242;
    t2.id = 21;
    t2.ownership = AIOD__OWNERSHIP__SUBMITTED;
    t2.function = (char *)"demo.main_gather";
    Aiod__TaskList tl = AIOD__TASK_LIST__INIT;
    tl.tasks = ts;
    tl.n_tasks = 2;
    Aiod__ServerMessage r = AIOD__SERVER_MESSAGE__INIT;
    r.request_id = m->request_id;
    r.body_case = AIOD__SERVER_MESSAGE__BODY_TASK_LIST;
    r.task_list = &tl;
    send_msg(fd, &r);
    aiod__client_message__free_unpacked(m, NULL);

    m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_SHOW_TASK && m->show_task->task_id == 21);
    Aiod__Value *args[] = {pbvalue_double(3), pbvalue_string("x")};
    Aiod__Outcome o = AIOD__OUTCOME__INIT;
    o.task_id = 21;
    o.state = AIOD__TASK_STATE__TASK_CANCELLED;
    t2.state = AIOD__TASK_STATE__TASK_CANCELLED;
    t2.args = args;
    t2.n_args = 2;
    t2.outcome = &o;
    t2.parent_id = 3;
    t2.created_usec = 1700000000000000u;
    r.request_id = m->request_id;
    r.body_case = AIOD__SERVER_MESSAGE__BODY_TASK_INFO;
    r.task_info = &t2;
    send_msg(fd, &r);
    pbvalue_free(args[0]);
    pbvalue_free(args[1]);
    aiod__client_message__free_unpacked(m, NULL);

    m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_LIST_PLUGINS);
    Aiod__Param p1 = AIOD__PARAM__INIT, p2 = AIOD__PARAM__INIT, *ps[] = {&p1, &p2};
    p1.name = (char *)"seconds";
    p1.type = AIOD__VALUE_TYPE__TYPE_DOUBLE;
    p2.name = (char *)"result";
    p2.type = AIOD__VALUE_TYPE__TYPE_ANY;
    p2.has_default = true; /* default null, sent as an absent value */
    Aiod__FunctionInfo f = AIOD__FUNCTION_INFO__INIT, *fs[] = {&f};
    f.name = (char *)"demo.sleep";
    f.doc = (char *)"Sleeps, then returns result.";
    f.params = ps;
    f.n_params = 2;
    f.plugin = (char *)"demo";
    Aiod__PluginList pl = AIOD__PLUGIN_LIST__INIT;
    pl.functions = fs;
    pl.n_functions = 1;
    r.request_id = m->request_id;
    r.body_case = AIOD__SERVER_MESSAGE__BODY_PLUGIN_LIST;
    r.plugin_list = &pl;
    send_msg(fd, &r);
    aiod__client_message__free_unpacked(m, NULL);

    m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_LOGS && m->logs->follow);
    send_output(fd, m->request_id, 21, "first");
    send_output(fd, m->request_id, 21, "second");
    send_output_end(fd, m->request_id, 21, AIOD__TASK_STATE__TASK_CANCELLED);
    aiod__client_message__free_unpacked(m, NULL);

    m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_LOGS && !m->logs->follow);
    send_error(fd, m->request_id, AIOD__ERROR_CODE__ERROR_NO_SUCH_TASK, "no task 99", NULL);
    aiod__client_message__free_unpacked(m, NULL);
    expect_eof(fd);
}

static void test_inspect(void **state) {
    pid_t pid = start_daemon(script_inspect);
    aioc_client *c = NULL;
    struct lines lines = {0};
    uint64_t id;

    assert_int_equal(aioc_connect(path, &c), 0);
    aioc_set_output_callback(c, collect, &lines);
    aioc_call *call = aioc_call_new("demo.sleep");
    assert_int_equal(aioc_create_task(c, call, &id), 0);
    assert_int_equal(id, 20);
    assert_int_equal(aioc_submit(c, call, &id), 0);
    assert_int_equal(id, 21);
    assert_int_equal(aioc_detach(c, call, &id), 0);
    assert_int_equal(id, 22);
    aioc_call_free(call);

    aioc_task_info **tasks;
    size_t n;
    assert_int_equal(aioc_list(c, AIOC_LIST_ALL, &tasks, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(aioc_task_info_id(tasks[0]), 20);
    assert_int_equal(aioc_task_info_state(tasks[0]), AIOC_STATE_RUNNING);
    assert_string_equal(aioc_task_info_function(tasks[0]), "demo.sleep");
    assert_string_equal(aioc_task_info_ownership(tasks[0]), "attached");
    assert_int_equal(aioc_task_info_owner_uid(tasks[0]), 1000);
    assert_int_equal(aioc_task_info_owner_pid(tasks[0]), 4242);
    assert_null(aioc_task_info_args(tasks[0]));
    assert_null(aioc_task_info_outcome(tasks[0]));
    assert_string_equal(aioc_task_info_ownership(tasks[1]), "submitted");
    aioc_task_info_array_free(tasks, n);

    aioc_task_info *t;
    assert_int_equal(aioc_show(c, 21, &t), 0);
    assert_int_equal(aioc_task_info_parent_id(t), 3);
    assert_true(aioc_task_info_created_usec(t) == 1700000000000000u);
    char *args = aioc_value_to_json(aioc_task_info_args(t));
    assert_string_equal(args, "[3.0,\"x\"]");
    free(args);
    const aioc_outcome *o = aioc_task_info_outcome(t);
    assert_int_equal(aioc_outcome_state(o), AIOC_STATE_CANCELLED);
    assert_string_equal(aioc_outcome_error_kind(o), "CancelledError");
    aioc_task_info_free(t);

    aioc_function_info **fs;
    assert_int_equal(aioc_plugins(c, &fs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(aioc_function_name(fs[0]), "demo.sleep");
    assert_string_equal(aioc_function_doc(fs[0]), "Sleeps, then returns result.");
    assert_int_equal(aioc_function_n_params(fs[0]), 2);
    assert_string_equal(aioc_function_param_name(fs[0], 0), "seconds");
    assert_int_equal(aioc_function_param_type(fs[0], 0), AIOC_TYPE_DOUBLE);
    assert_null(aioc_function_param_default(fs[0], 0));
    assert_int_equal(aioc_value_type(aioc_function_param_default(fs[0], 1)), AIOC_TYPE_NULL);
    assert_null(aioc_function_param_name(fs[0], 2));
    assert_string_equal(aioc_function_signature(fs[0]),
                        "(seconds: double, result: any = null) -> any");
    aioc_function_array_free(fs, n);

    assert_int_equal(aioc_logs(c, 21, AIOC_LOGS_FOLLOW), AIOC_STATE_CANCELLED);
    assert_int_equal(lines.n, 2);
    assert_string_equal(lines.text[1], "second");
    assert_int_equal(aioc_logs(c, 99, 0), -ESRCH);
    assert_string_equal(aioc_last_error(c), "no task 99");
    assert_int_equal(aioc_logs(c, 0, 0), -EINVAL);
    assert_int_equal(aioc_logs(c, 1, 0x10), -EINVAL);
    aioc_close(c);
    end_daemon(pid);
}

/* Frames: a request larger than max_frame is refused locally; a reply
 * larger than max_frame, a connection-level error, garbage and a vanished
 * daemon each end the connection. */
static void script_limits(int fd) {
    do_hello(fd, 256);
    Aiod__ClientMessage *m = recv_msg(fd); /* the small submit after the big one */
    CHECK(strcmp(m->submit->call->function, "small") == 0);
    /* A connection-level error, then close. */
    send_error(fd, 0, AIOD__ERROR_CODE__ERROR_BAD_MESSAGE, "bad frame", NULL);
    aiod__client_message__free_unpacked(m, NULL);
}

static void test_limits(void **state) {
    pid_t pid = start_daemon(script_limits);
    aioc_client *c = NULL;
    uint64_t id;
    char big[400];

    assert_int_equal(aioc_connect(path, &c), 0);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    aioc_call *call = aioc_call_new("big");
    assert_int_equal(aioc_call_arg_text(call, big), 0);
    assert_int_equal(aioc_submit(c, call, &id), -EMSGSIZE);
    aioc_call_free(call);

    call = aioc_call_new("small");
    assert_int_equal(aioc_submit(c, call, &id), -EPROTO);
    assert_string_equal(aioc_last_error(c), "bad frame");
    /* The connection is dead: the same error at once, no I/O. */
    assert_int_equal(aioc_submit(c, call, &id), -EPROTO);
    aioc_call_free(call);
    aioc_close(c);
    end_daemon(pid);
}

static void script_garbage(int fd) {
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *m = recv_msg(fd);
    aiod__client_message__free_unpacked(m, NULL);
    const uint8_t junk[] = {0, 0, 0, 3, 0xff, 0xff, 0xff};
    send_raw(fd, junk, sizeof(junk));
    expect_eof(fd);
}

static void script_oversized(int fd) {
    do_hello(fd, 64);
    Aiod__ClientMessage *m = recv_msg(fd);
    aiod__client_message__free_unpacked(m, NULL);
    const uint8_t hdr[] = {0, 0, 1, 0}; /* 256 > 64 */
    send_raw(fd, hdr, sizeof(hdr));
    expect_eof(fd);
}

static void script_vanish(int fd) {
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *m = recv_msg(fd);
    aiod__client_message__free_unpacked(m, NULL);
}

static void test_broken(void **state) {
    const script_fn scripts[] = {script_garbage, script_oversized, script_vanish};
    const int want[] = {-EPROTO, -EPROTO, -ECONNRESET};
    for (size_t i = 0; i < 3; i++) {
        pid_t pid = start_daemon(scripts[i]);
        aioc_client *c = NULL;
        uint64_t ids[] = {1};
        assert_int_equal(aioc_connect(path, &c), 0);
        assert_int_equal(aioc_cancel(c, ids, 1), want[i]);
        aioc_close(c);
        end_daemon(pid);
    }
}

/* wire.c on its own: garbage and rule-breaking messages are refused. */
static void test_wire_unpack(void **state) {
    Aiod__ServerMessage *m = NULL;
    const uint8_t junk[] = {0xff, 0xff, 0xff};
    assert_int_equal(wire_unpack(junk, sizeof(junk), &m), -EPROTO);

    /* An outcome whose result holds a map with duplicate keys. */
    Aiod__Value *map = pbvalue_map();
    pbvalue_map_set(map, "k", pbvalue_int(1));
    pbvalue_map_set(map, "j", pbvalue_int(2));
    free(map->map_value->entries[1]->key);
    map->map_value->entries[1]->key = alloc_strdup("k");
    Aiod__Outcome o = AIOD__OUTCOME__INIT, *op = &o;
    o.task_id = 1;
    o.state = AIOD__TASK_STATE__TASK_DONE;
    o.result = map;
    Aiod__Outcomes os = AIOD__OUTCOMES__INIT;
    os.outcomes = &op;
    os.n_outcomes = 1;
    Aiod__ServerMessage s = AIOD__SERVER_MESSAGE__INIT;
    s.request_id = 3;
    s.body_case = AIOD__SERVER_MESSAGE__BODY_OUTCOMES;
    s.outcomes = &os;
    uint8_t buf[256];
    size_t n = aiod__server_message__pack(&s, buf);
    assert_int_equal(wire_unpack(buf, n, &m), -EPROTO);

    /* Fixed keys decode fine. */
    free(map->map_value->entries[1]->key);
    map->map_value->entries[1]->key = alloc_strdup("j");
    n = aiod__server_message__pack(&s, buf);
    assert_int_equal(wire_unpack(buf, n, &m), 0);
    assert_int_equal(m->request_id, 3);
    wire_free(m);
    pbvalue_free(map);

    char text[] = "ok \xc3\xa9 \xff\xfe end \xe2\x82";
    wire_fix_utf8(text);
    assert_string_equal(text, "ok \xc3\xa9 ?? end ??");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello),          cmocka_unit_test(test_hello_refused),
        cmocka_unit_test(test_connect_errors), cmocka_unit_test(test_run),
        cmocka_unit_test(test_errors),         cmocka_unit_test(test_gather),
        cmocka_unit_test(test_inspect),        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_broken),         cmocka_unit_test(test_wire_unpack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
