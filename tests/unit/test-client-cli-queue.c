/*
 * Tests of aioctl's side of the cluster queues: the aioctl binary (its
 * path is AIOCTL, from the build) run against the fake daemon
 * (fake-daemon.h), one connection per command. The fake daemon checks the
 * frames aioctl sends (a Submit's queue and ownership, cluster ids of 2^48
 * and above in show, await, cancel and logs) and the test checks what
 * aioctl prints and its exit status. Usage errors are checked with no
 * daemon at all: they must come before any connection.
 */
#include <errno.h>
#include <fcntl.h>
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

#ifndef AIOCTL
#error "AIOCTL (the path of the aioctl binary) must be defined by the build"
#endif

/* 2^48 + 9 and 2^64 - 1: a cluster id, and the largest there is. */
#define ID9 (AIOC_CLUSTER_ID_BASE + 9)
#define ID9_TEXT "281474976710665"
#define IDMAX_TEXT "18446744073709551615"

/* What one aioctl run left: its exit status and what it printed. */
typedef struct result {
    int status;
    char out[8192];
    char err[8192];
} result;

/* Reads all of fd into buf (NUL-terminated), then closes it. */
static void slurp(int fd, char *buf, size_t len) {
    size_t at = 0;
    ssize_t n;
    while (at + 1 < len && (n = read(fd, buf + at, len - 1 - at)) > 0)
        at += (size_t)n;
    buf[at] = '\0';
    close(fd);
}

/* Runs `prog` with the NULL-terminated argv; stdout and stderr go to
 * files in a temporary directory (so that nothing waits on a full pipe),
 * read back into r. */
static void run_program(result *r, const char *prog, const char *const *argv) {
    char out_path[160], err_path[160];
    char tmp[] = "/tmp/aioc-cli-queue-XXXXXX";
    assert_non_null(mkdtemp(tmp));
    snprintf(out_path, sizeof(out_path), "%s/out", tmp);
    snprintf(err_path, sizeof(err_path), "%s/err", tmp);

    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(127);
        execv(prog, (char *const *)argv);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    r->status = WEXITSTATUS(status);
    int fd = open(out_path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    slurp(fd, r->out, sizeof(r->out));
    fd = open(err_path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    slurp(fd, r->err, sizeof(r->err));
    unlink(out_path);
    unlink(err_path);
    rmdir(tmp);
}

/* Runs aioctl with the NULL-terminated words after its name. */
static void run_aioctl(result *r, const char *const *words) {
    const char *argv[24] = {"aioctl"};
    size_t n = 1;
    for (; words[n - 1]; n++) {
        assert_true(n < sizeof(argv) / sizeof(argv[0]) - 1);
        argv[n] = words[n - 1];
    }
    argv[n] = NULL;
    run_program(r, AIOCTL, argv);
}

/* After the client ran: when the fake daemon is still waiting for a
 * connection (the client never came), one that closes at once makes its
 * script fail, so that end_daemon() reports it instead of waiting forever.
 * A daemon that had its connection has closed its listener: then this
 * connect is refused and changes nothing. */
static void end_daemon_unblocked(pid_t pid) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    (void)connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    end_daemon(pid);
}

/* Runs `aioctl -s SOCKET WORDS...` against a fake daemon playing `script`. */
static void run_against(script_fn script, result *r, const char *const *words) {
    const char *argv[20] = {"-s"};
    size_t n = 2;
    pid_t pid = start_daemon(script);
    argv[1] = path;
    for (size_t i = 0; words[i]; i++) {
        assert_true(n < sizeof(argv) / sizeof(argv[0]) - 1);
        argv[n++] = words[i];
    }
    argv[n] = NULL;
    run_aioctl(r, argv);
    end_daemon_unblocked(pid);
}

#define WORDS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ------------------------------------------------------------ submit --queue */

/* Reads a Submit of demo.echo("hi") to queue q1 with ownership `own`, no
 * follow and no schedule; returns its request id. */
static uint64_t recv_queue_submit(int fd, Aiod__Ownership own) {
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_SUBMIT);
    CHECK(strcmp(m->submit->call->function, "demo.echo") == 0);
    CHECK(m->submit->call->args_are_text && m->submit->call->n_args == 1);
    CHECK(strcmp(m->submit->call->args[0]->string_value, "hi") == 0);
    CHECK(strcmp(m->submit->queue, "q1") == 0);
    CHECK(m->submit->ownership == own);
    CHECK(!m->submit->follow && m->submit->schedule == NULL);
    uint64_t id = m->request_id;
    aiod__client_message__free_unpacked(m, NULL);
    return id;
}

static void script_submitted(int fd) {
    send_submitted(fd, recv_queue_submit(fd, AIOD__OWNERSHIP__SUBMITTED), ID9);
    expect_eof(fd);
}

static void script_detached(int fd) {
    send_submitted(fd, recv_queue_submit(fd, AIOD__OWNERSHIP__DETACHED), UINT64_MAX);
    expect_eof(fd);
}

static void script_unavailable(int fd) {
    send_error(fd, recv_queue_submit(fd, AIOD__OWNERSHIP__SUBMITTED),
               AIOD__ERROR_CODE__ERROR_UNAVAILABLE,
               "cluster: Redis at 127.0.0.1:6390 is unreachable: Connection refused", NULL);
    expect_eof(fd);
}

static void script_no_host(int fd) {
    send_error(fd, recv_queue_submit(fd, AIOD__OWNERSHIP__SUBMITTED),
               AIOD__ERROR_CODE__ERROR_UNKNOWN_FUNCTION, "no host serves 'demo.echo' on queue 'q1'",
               NULL);
    expect_eof(fd);
}

static void test_submit_queue(void **state) {
    (void)state;
    result r;

    run_against(script_submitted, &r, WORDS("submit", "--queue", "q1", "demo.echo", "hi"));
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, ID9_TEXT "\n");

    /* The short option, and "--" before the arguments. */
    run_against(script_submitted, &r, WORDS("submit", "-q", "q1", "demo.echo", "--", "hi"));
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, ID9_TEXT "\n");

    run_against(script_detached, &r, WORDS("submit", "--queue=q1", "--detach", "demo.echo", "hi"));
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, IDMAX_TEXT "\n");

    run_against(script_detached, &r, WORDS("--json", "detach", "--queue", "q1", "demo.echo", "hi"));
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "{\"id\":" IDMAX_TEXT "}\n");

    /* The cluster's Redis unreachable: the daemon's message, exit 3. */
    run_against(script_unavailable, &r, WORDS("submit", "--queue", "q1", "demo.echo", "hi"));
    assert_int_equal(r.status, 3);
    assert_string_equal(r.out, "");
    assert_non_null(
        strstr(r.err, "cluster: Redis at 127.0.0.1:6390 is unreachable: Connection refused"));

    /* No host serves it: a refusal, exit 2. */
    run_against(script_no_host, &r, WORDS("submit", "--queue", "q1", "demo.echo", "hi"));
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "no host serves 'demo.echo' on queue 'q1'"));
}

/* Usage errors, each naming what was wrong, before any connection: the
 * socket does not exist, so reaching the connect would exit 3. */
static void test_usage_errors(void **state) {
    (void)state;
    const struct {
        const char *const *words;
        const char *want;
    } cases[] = {
        {WORDS("submit", "--queue", "q1", "--retries", "2", "demo.echo"),
         "option '--retries' cannot be used with --queue"},
        {WORDS("submit", "--delay", "5", "--queue", "q1", "demo.echo"),
         "option '--delay' cannot be used with --queue"},
        {WORDS("detach", "-q", "q1", "--at", "10:00", "demo.echo"),
         "option '--at' cannot be used with --queue"},
        {WORDS("submit", "--queue", "q1", "--after", "7", "demo.echo"),
         "option '--after' cannot be used with --queue"},
        {WORDS("submit", "--queue", "q1", "--backoff", "1", "demo.echo"),
         "option '--backoff' cannot be used with --queue"},
        {WORDS("submit", "--queue", "q1", "--follow", "demo.echo"), "option '--follow' is unknown"},
        {WORDS("run", "--queue", "q1", "demo.echo"), "option '--queue' is unknown"},
        {WORDS("detach", "--detach", "demo.echo"), "option '--detach' is unknown"},
        {WORDS("submit", "--queue", "a b", "demo.echo"),
         "option '--queue' wants a queue name (1-64 characters of A-Z a-z 0-9 _ . -), not 'a b'"},
        {WORDS("submit", "--queue=", "demo.echo"), "option '--queue' wants a queue name"},
        {WORDS("submit", "-q", "q/1", "demo.echo"), "option '-q' wants a queue name"},
        {WORDS("submit", "--queue",
               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "demo.echo"),
         "option '--queue' wants a queue name"},
        {WORDS("submit", "--queue"), "option '--queue' needs a value"},
        {WORDS("submit", "--queue", "q1"), "missing FUNC"},
        {WORDS("submit", "--de", "demo.echo"), "option '--de' is ambiguous"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *argv[20] = {"-s", "/nonexistent/aiod.sock"};
        size_t n = 2;
        for (const char *const *w = cases[i].words; *w; w++)
            argv[n++] = *w;
        argv[n] = NULL;
        result r;
        run_aioctl(&r, argv);
        if (r.status != 2 || !strstr(r.err, cases[i].want))
            fail_msg("case %zu: exit %d, stderr: %s (wanted: %s)", i, r.status, r.err,
                     cases[i].want);
        assert_string_equal(r.out, "");
    }

    /* The longest name is fine: then the connect fails (exit 3). */
    result r;
    run_aioctl(&r, WORDS("-s", "/nonexistent/aiod.sock", "submit", "--queue",
                         "Az09_.-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                         "demo.echo"));
    assert_int_equal(r.status, 3);

    run_aioctl(&r, WORDS("submit", "--help"));
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "-q, --queue Q"));
    assert_non_null(strstr(r.out, "--detach"));
    run_aioctl(&r, WORDS("detach", "--help"));
    assert_non_null(strstr(r.out, "-q, --queue Q"));
}

/* ------------------------------------------------------------ show */

/* Each answers one show, between the hello and the end. */
static void script_show(int fd, uint64_t id, Aiod__TaskInfo t) {
    do_hello(fd, 1u << 20);
    answer_show(fd, id, &t);
    expect_eof(fd);
}

static void script_show_cluster(int fd) {
    script_show(fd, ID9, task_info(ID9, AIOD__TASK_STATE__TASK_RUNNING, "q1", "worker-1", "front"));
}

/* Still queued: no host yet. */
static void script_show_queued(int fd) {
    script_show(fd, UINT64_MAX,
                task_info(UINT64_MAX, AIOD__TASK_STATE__TASK_PENDING, "q1", NULL, "front"));
}

static void script_show_local(int fd) {
    script_show(fd, 3, task_info(3, AIOD__TASK_STATE__TASK_RUNNING, NULL, NULL, NULL));
}

static void test_show(void **state) {
    (void)state;
    result r;

    run_against(script_show_cluster, &r, WORDS("show", ID9_TEXT));
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "id: " ID9_TEXT "\n"));
    assert_non_null(strstr(r.out, "\nfunction: demo.sleep\nqueue: q1\nhost: worker-1\n"));
    assert_non_null(strstr(r.out, "\nowner host: front\n"));

    /* Still queued: no host line. */
    run_against(script_show_queued, &r, WORDS("show", IDMAX_TEXT));
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "id: " IDMAX_TEXT "\n"));
    assert_non_null(strstr(r.out, "\nqueue: q1\n"));
    assert_null(strstr(r.out, "\nhost:"));
    assert_non_null(strstr(r.out, "\nowner host: front\n"));

    /* A local task: none of the three. */
    run_against(script_show_local, &r, WORDS("show", "3"));
    assert_int_equal(r.status, 0);
    assert_null(strstr(r.out, "queue:"));
    assert_null(strstr(r.out, "host:"));

    run_against(script_show_cluster, &r, WORDS("--json", "show", ID9_TEXT));
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "{\"task\":" ID9_TEXT ","));
    assert_non_null(
        strstr(r.out, ",\"queue\":\"q1\",\"host\":\"worker-1\",\"owner_host\":\"front\""));
    run_against(script_show_local, &r, WORDS("--json", "show", "3"));
    assert_null(strstr(r.out, "\"queue\""));
}

/* ------------------------------------------------------------ await, cancel, logs */

static void script_await(int fd) {
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_AWAIT);
    CHECK(m->await->n_task_ids == 2);
    CHECK(m->await->task_ids[0] == ID9 && m->await->task_ids[1] == UINT64_MAX);
    Aiod__Outcome o1 = AIOD__OUTCOME__INIT, o2 = AIOD__OUTCOME__INIT, *os[] = {&o1, &o2};
    Aiod__Value v = AIOD__VALUE__INIT;
    v.kind_case = AIOD__VALUE__KIND_INT_VALUE;
    v.int_value = 42;
    o1.task_id = ID9;
    o1.state = AIOD__TASK_STATE__TASK_DONE;
    o1.result = &v;
    o2.task_id = UINT64_MAX;
    o2.state = AIOD__TASK_STATE__TASK_DONE;
    o2.result = &v;
    send_outcomes(fd, m->request_id, os, 2);
    aiod__client_message__free_unpacked(m, NULL);
    expect_eof(fd);
}

static void script_cancel(int fd) {
    do_hello(fd, 1u << 20);
    answer_cancel(fd, UINT64_MAX, 1);
    expect_eof(fd);
}

static void script_logs(int fd) {
    do_hello(fd, 1u << 20);
    /* logs first asks how many of the oldest lines are gone. */
    Aiod__ClientMessage *m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_SHOW_TASK && m->show_task->task_id == ID9);
    Aiod__TaskInfo ti = AIOD__TASK_INFO__INIT;
    Aiod__ServerMessage reply = AIOD__SERVER_MESSAGE__INIT;
    ti.id = ID9;
    ti.state = AIOD__TASK_STATE__TASK_RUNNING;
    ti.function = "demo.echo";
    reply.request_id = m->request_id;
    reply.body_case = AIOD__SERVER_MESSAGE__BODY_TASK_INFO;
    reply.task_info = &ti;
    send_msg(fd, &reply);
    aiod__client_message__free_unpacked(m, NULL);
    m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_LOGS);
    CHECK(m->logs->task_id == ID9 && m->logs->follow);
    send_output(fd, m->request_id, ID9, "from worker-1");
    send_output_end(fd, m->request_id, ID9, AIOD__TASK_STATE__TASK_DONE);
    aiod__client_message__free_unpacked(m, NULL);
    expect_eof(fd);
}

static void test_ids_pass_through(void **state) {
    (void)state;
    result r;

    run_against(script_await, &r, WORDS("await", ID9_TEXT, IDMAX_TEXT));
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "42\n42\n");
    run_against(script_await, &r, WORDS("--json", "await", ID9_TEXT, IDMAX_TEXT));
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "{\"result\":42,\"task\":" ID9_TEXT "}\n"
                               "{\"result\":42,\"task\":" IDMAX_TEXT "}\n");

    run_against(script_cancel, &r, WORDS("cancel", IDMAX_TEXT));
    assert_int_equal(r.status, 0);

    run_against(script_logs, &r, WORDS("--json", "logs", "-f", ID9_TEXT));
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "{\"output\":\"from worker-1\",\"task\":" ID9_TEXT ","));
    assert_non_null(strstr(r.out, "{\"state\":\"done\",\"task\":" ID9_TEXT "}\n"));

    /* One past the largest id is not an id. */
    run_aioctl(&r, WORDS("-s", "/nonexistent/aiod.sock", "show", "18446744073709551616"));
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "is not a task id"));
}

/* ------------------------------------------------------------ bash completion */

/* Calls the completion function of completion/aioctl as bash would for
 * `aioctl WORDS...` (the last word being completed) and prints COMPREPLY,
 * one per line, sorted. */
static const char complete_sh[] = "source \"$1\"; shift\n"
                                  "fn=$(complete -p aioctl) || exit 90\n"
                                  "fn=${fn##*-F }; fn=${fn%% *}\n"
                                  "COMP_WORDS=(\"$@\"); COMP_CWORD=$(( $# - 1 ))\n"
                                  "COMP_LINE=\"$*\"; COMP_POINT=${#COMP_LINE}\n"
                                  "COMPREPLY=()\n"
                                  "\"$fn\" \"$1\" \"${COMP_WORDS[COMP_CWORD]}\" \"\"\n"
                                  "printf '%s\\n' \"${COMPREPLY[@]}\" | sort\n";

static void complete(result *r, const char *const *words) {
    const char *argv[24] = {"bash",      "--norc",   "--noprofile",   "-c",
                            complete_sh, "complete", AIOD_COMPLETION, AIOCTL};
    size_t n = 8;
    for (size_t i = 0; words[i]; i++) {
        assert_true(n < sizeof(argv) / sizeof(argv[0]) - 1);
        argv[n++] = words[i];
    }
    argv[n] = NULL;
    run_program(r, "/bin/bash", argv);
    assert_int_equal(r->status, 0);
    assert_string_equal(r->err, "");
}

/* Answers `aioctl plugins --names` with demo.echo and demo.sleep. */
static void script_plugins(int fd) {
    do_hello(fd, 1u << 20);
    Aiod__ClientMessage *m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_LIST_PLUGINS);
    Aiod__FunctionInfo f1 = AIOD__FUNCTION_INFO__INIT, f2 = AIOD__FUNCTION_INFO__INIT;
    Aiod__FunctionInfo *fs[] = {&f1, &f2};
    f1.name = (char *)"demo.echo";
    f2.name = (char *)"demo.sleep";
    Aiod__PluginList l = AIOD__PLUGIN_LIST__INIT;
    l.functions = fs;
    l.n_functions = 2;
    Aiod__ServerMessage r = AIOD__SERVER_MESSAGE__INIT;
    r.request_id = m->request_id;
    r.body_case = AIOD__SERVER_MESSAGE__BODY_PLUGIN_LIST;
    r.plugin_list = &l;
    send_msg(fd, &r);
    aiod__client_message__free_unpacked(m, NULL);
    expect_eof(fd);
}

static void test_completion(void **state) {
    (void)state;
    result r;

    complete(&r, WORDS("submit", "--qu"));
    assert_string_equal(r.out, "--queue\n");
    complete(&r, WORDS("submit", "--det"));
    assert_string_equal(r.out, "--detach\n");
    complete(&r, WORDS("detach", "--qu"));
    assert_string_equal(r.out, "--queue\n");
    complete(&r, WORDS("detach", "--det"));
    assert_string_equal(r.out, "\n");
    complete(&r, WORDS("run", "--qu"));
    assert_string_equal(r.out, "\n");
    /* A queue name: nothing offered (no daemon is asked, no file names). */
    complete(&r, WORDS("-s", "/nonexistent/aiod.sock", "submit", "--queue", ""));
    assert_string_equal(r.out, "\n");

    /* --queue's value is skipped: the next word is FUNC, completed from
     * the daemon's functions. */
    pid_t pid = start_daemon(script_plugins);
    complete(&r, WORDS("-s", path, "submit", "--queue", "q1", "demo.ec"));
    end_daemon_unblocked(pid);
    assert_string_equal(r.out, "demo.echo\n");
    pid = start_daemon(script_plugins);
    complete(&r, WORDS("-s", path, "detach", "-q", "q1", "demo.s"));
    end_daemon_unblocked(pid);
    assert_string_equal(r.out, "demo.sleep\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submit_queue), cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_show),         cmocka_unit_test(test_ids_pass_through),
        cmocka_unit_test(test_completion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
