/*
 * Tasks on a real loop: state transitions (pending, running, done, failed,
 * cancelled), spawning, awaiting and gathering children, errors passed up,
 * cancellation before start and at an await point, API misuse, a stack
 * overflow that must fail loudly, and when a finished task's run part goes.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "app/crash.h"
#include "daemon-loop.h"
#include "core/limit.h"
#include "core/output.h"

static uv_loop_t loop;

static int setup(void **state) {
    (void)state;
    char path[4096];
    snprintf(path, sizeof(path), "%s/good/good.so", TEST_PLUGIN_DIR);
    return daemon_loop_start(&loop, path);
}

static int teardown(void **state) {
    (void)state;
    return daemon_loop_stop(&loop);
}

/* A new pending task of `uid` for good.<name> with typed arguments
 * (taken). */
static task *new_task_of(uid_t uid, const char *name, Aiod__Value **args, size_t n) {
    char full[64], err[256];
    Aiod__Value **argv = NULL;
    task *t = NULL;
    snprintf(full, sizeof(full), "good.%s", name);
    fn_entry *f = plugin_lookup(full);
    assert_non_null(f);
    assert_int_equal(value_check_call(&f->sig, args, n, false, 32, &argv, err, sizeof(err)), 0);
    assert_int_equal(
        task_new(f, argv, f->sig.n_params, AIOD__OWNERSHIP__SUBMITTED, uid, 0, NULL, &t), 0);
    assert_int_equal(t->state, TASK_PENDING);
    return t;
}

static task *new_task(const char *name, Aiod__Value **args, size_t n) {
    return new_task_of(0, name, args, n);
}

static void run_until_finished(task *t) {
    while (!task_finished(t))
        assert_true(uv_run(&loop, UV_RUN_ONCE) || task_finished(t) || sched_ready_count() > 0);
}

/* What a waiter sees when it fires during a task's end (finish.h). */
typedef struct end_probe {
    waiter w;
    int step;
    bool output_ended;
    int state;
    bool released;
} end_probe;

static void on_end_probe(waiter *w, task *t) {
    end_probe *p = (end_probe *)w;
    p->step = t->end_step;
    p->output_ended = t->out && t->out->ended;
    p->state = t->state;
    if (p->released) {
        /* Releasing the pin from inside a waiter must not settle the task
         * re-entrantly: the run part is still there afterwards. */
        task_release_pin(t);
        assert_non_null(t->run);
        assert_false(t->pinned);
    }
}

static int fake_owner;

/* The end of a task runs its steps in order: state recorded, then output
 * ended, then the waiters; a pin released by a waiter settles the task
 * only in the last step. */
static void test_end_order(void **state) {
    (void)state;
    list owned;
    list_init(&owned);
    Aiod__Value *args[] = {pbvalue_int(2)};
    task *t = new_task("add", args, 1);
    t->ownership = AIOD__OWNERSHIP__ATTACHED;
    task_attach_owner(t, &fake_owner, &owned);
    assert_non_null(task_output(t));
    end_probe first = {.w.fn = on_end_probe, .released = true};
    end_probe second = {.w.fn = on_end_probe};
    task_add_waiter(t, &first.w);
    task_add_waiter(t, &second.w);
    assert_int_equal(t->end_step, TASK_END_NONE);
    sched_start(t);
    run_until_finished(t);
    assert_int_equal(first.step, TASK_END_OUTPUT);
    assert_true(first.output_ended);
    assert_int_equal(first.state, TASK_DONE);
    /* The second waiter still fires, after the first released the pin. */
    assert_int_equal(second.step, TASK_END_OUTPUT);
    assert_int_equal(t->end_step, TASK_END_SETTLED);
    assert_true(list_empty(&owned)); /* detached from its owner */
    assert_false(t->pinned);
    task_unref(t);
}

/* An attached task whose owner never takes its outcome stays pinned after
 * its end, and joins the retention when released. */
static void test_pinned_until_released(void **state) {
    (void)state;
    list owned;
    list_init(&owned);
    task *t = new_task("add", (Aiod__Value *[]){pbvalue_int(1)}, 1);
    t->ownership = AIOD__OWNERSHIP__ATTACHED;
    task_attach_owner(t, &fake_owner, &owned);
    sched_start(t);
    run_until_finished(t);
    assert_true(t->pinned);
    assert_false(list_empty(&owned));
    assert_int_equal(t->end_step, TASK_END_SETTLED);
    task_release_pin(t);
    assert_false(t->pinned);
    assert_true(list_empty(&owned));
    assert_ptr_equal(task_lookup(t->id), t); /* retained */
    task_unref(t);
}

/* Runs a submitted good.add of `uid` to its end; its id. */
static uint64_t finished_add(uid_t uid, size_t *ret_bytes) {
    task *t = new_task_of(uid, "add", (Aiod__Value *[]){pbvalue_int(1)}, 1);
    sched_start(t);
    run_until_finished(t);
    uint64_t id = t->id;
    if (ret_bytes)
        *ret_bytes = t->retained_bytes;
    task_unref(t);
    return id;
}

/* Past retain_bytes, memory is taken back from the uid whose outcomes hold
 * the most, oldest first: one user's outcomes cannot push out another's,
 * although that other's are older. */
static void test_retain_bytes_from_largest_holder(void **state) {
    (void)state;
    size_t saved = cfg.retain_bytes, one = 0;
    uint64_t other = finished_add(2000, &one);
    assert_true(one > sizeof(task));
    cfg.retain_bytes = 4 * one; /* room for four outcomes of this size */
    uint64_t mine[6];
    for (int i = 0; i < 6; i++)
        mine[i] = finished_add(1000, NULL);
    /* uid 1000's oldest went (an earlier test's outcome may share the
     * room), the rest of its are there, newest last; uid 2000's stayed. */
    assert_non_null(task_lookup(other));
    int kept = 0;
    for (int i = 0; i < 6; i++) {
        bool there = task_lookup(mine[i]) != NULL;
        /* Once one is kept, every later one is too. */
        assert_true(there || kept == 0);
        kept += there;
    }
    assert_in_range(kept, 2, 3);
    /* The newest stays whatever its size. */
    cfg.retain_bytes = 1;
    task_retention_changed();
    assert_non_null(task_lookup(mine[5]));
    assert_null(task_lookup(other));
    cfg.retain_bytes = saved;
}

static void test_done(void **state) {
    (void)state;
    Aiod__Value *args[] = {pbvalue_int(2)};
    task *t = new_task("add", args, 1);
    sched_start(t);
    run_until_finished(t);
    assert_int_equal(t->state, TASK_DONE);
    assert_int_equal(t->result->int_value, 3); /* b defaulted to 1 */
    assert_true(t->started_usec >= t->created_usec);
    assert_true(t->finished_usec >= t->started_usec);
    task_unref(t);
}

static void test_failed(void **state) {
    (void)state;
    task *t = new_task("boom", NULL, 0);
    sched_start(t);
    run_until_finished(t);
    assert_int_equal(t->state, TASK_FAILED);
    assert_string_equal(t->error_kind, "RuntimeError");
    assert_string_equal(t->error_message, "boom 42");
    task_unref(t);
}

static void test_family(void **state) {
    (void)state;
    task *t = new_task("family", NULL, 0);
    sched_start(t);
    run_until_finished(t);
    assert_int_equal(t->state, TASK_DONE);
    assert_int_equal(pbvalue_length(t->result), 2);
    assert_string_equal(pbvalue_list_get(t->result, 0)->string_value, "slept");
    assert_int_equal(pbvalue_list_get(t->result, 1)->int_value, 5);
    /* Settled: no child is left unfinished, and the run part went. */
    assert_int_equal(task_count_unfinished(), 0);
    assert_null(t->run);
    task_unref(t);
}

static void test_reraise(void **state) {
    (void)state;
    task *t = new_task("reraise", NULL, 0);
    sched_start(t);
    run_until_finished(t);
    assert_int_equal(t->state, TASK_FAILED);
    assert_string_equal(t->error_kind, "RuntimeError");
    assert_string_equal(t->error_message, "boom 42");
    task_unref(t);
}

static int fired;
static void count_fired(waiter *w, task *t) {
    (void)w;
    assert_true(task_finished(t));
    fired++;
}

static void test_cancel_pending(void **state) {
    (void)state;
    Aiod__Value *args[] = {pbvalue_double(10)};
    task *t = new_task("sleepy", args, 1);
    waiter w = {.fn = count_fired};
    fired = 0;
    task_add_waiter(t, &w);
    sched_start(t);
    assert_true(task_cancel(t));
    assert_int_equal(t->state, TASK_CANCELLED);
    assert_int_equal(t->started_usec, 0);
    assert_int_equal(fired, 1);
    assert_false(task_cancel(t)); /* already finished */
    /* Still on the ready queue, so not settled: the run part stays until
     * the scheduler takes the task off the queue. */
    assert_non_null(t->run);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(fired, 1);
    assert_null(t->run);
    task_unref(t);
}

static void test_cancel_sleeping(void **state) {
    (void)state;
    Aiod__Value *args[] = {pbvalue_double(10)};
    task *t = new_task("sleepy", args, 1);
    sched_start(t);
    while (t->state == TASK_PENDING || !t->run->suspended)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(t->state, TASK_RUNNING);
    uint64_t start = uv_hrtime();
    assert_true(task_cancel(t));
    run_until_finished(t);
    assert_int_equal(t->state, TASK_CANCELLED);
    assert_string_equal(t->error_kind, "CancelledError");
    /* Cancelled at the await point, not after the 10 s sleep. */
    assert_true(uv_hrtime() - start < 1000000000ull);
    /* Settled: the run part, timer and all, is going (the teardown's loop
     * run closes the timer and frees it). */
    assert_null(t->run);
    task_unref(t);
}

static void test_misuse(void **state) {
    (void)state;
    task *t = new_task("misuse", NULL, 0);
    sched_start(t);
    run_until_finished(t);
    assert_int_equal(t->state, TASK_DONE);
    assert_int_equal(t->result->int_value, 8);
    task_unref(t);
}

static void test_output_shared_with_children(void **state) {
    (void)state;
    task *t = new_task("family", NULL, 0);
    assert_int_equal(output_append(task_output(t), 1, "line", 4), 0);
    assert_int_equal(t->out->next_seq, 1);
    sched_start(t);
    run_until_finished(t);
    assert_true(t->out->ended);
    assert_int_equal(t->out->end_state, TASK_DONE);
    task_unref(t);
}

static void test_stack_overflow_fails_loudly(void **state) {
    (void)state;
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], STDERR_FILENO);
        crash_install();
        fn_entry *f = plugin_lookup("good.overflow");
        task *t = NULL;
        Aiod__Value **argv = calloc(1, sizeof(*argv));
        task_new(f, argv, 0, AIOD__OWNERSHIP__SUBMITTED, 0, 0, NULL, &t);
        sched_start(t);
        while (!task_finished(t))
            uv_run(&loop, UV_RUN_ONCE);
        _exit(0); /* not reached: the overflow kills the process */
    }
    close(pipefd[1]);
    char buf[1024] = {0};
    ssize_t n = 0, k;
    while ((k = read(pipefd[0], buf + n, sizeof(buf) - 1 - (size_t)n)) > 0)
        n += k;
    close(pipefd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
    assert_non_null(strstr(buf, "aiod: fatal: coroutine stack overflow in task"));
    assert_non_null(strstr(buf, "(good.overflow)"));
}

static void test_concurrency_limit(void **state) {
    (void)state;
    enum { N = 5 };
    task *ts[N];
    for (int i = 0; i < N; i++) {
        Aiod__Value *args[] = {pbvalue_double(0.05)};
        ts[i] = new_task("limited", args, 1);
        sched_start(ts[i]);
    }
    /* Run until everything ended, watching how many run at once and in
     * which order they start. */
    uint32_t max_running = 0;
    uint64_t last_start = 0;
    for (;;) {
        uint32_t running = 0, finished = 0;
        for (int i = 0; i < N; i++) {
            running += ts[i]->state == TASK_RUNNING;
            finished += task_finished(ts[i]);
        }
        if (running > max_running)
            max_running = running;
        if (finished == N)
            break;
        uv_run(&loop, UV_RUN_ONCE);
    }
    assert_int_equal(max_running, 2);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ts[i]->state, TASK_DONE);
        /* FIFO: each started no earlier than the one submitted before it. */
        assert_true(ts[i]->started_usec >= last_start);
        last_start = ts[i]->started_usec;
        task_unref(ts[i]);
    }
}

static void test_group_limit_and_waiting(void **state) {
    (void)state;
    Aiod__Value *a1[] = {pbvalue_double(10)};
    Aiod__Value *a2[] = {pbvalue_double(10)};
    task *a = new_task("grouped_a", a1, 1), *b = new_task("grouped_b", a2, 1);
    sched_start(a);
    sched_start(b);
    while (a->state == TASK_PENDING)
        uv_run(&loop, UV_RUN_NOWAIT);
    uv_run(&loop, UV_RUN_NOWAIT);
    /* b shares group g with a: it waits, and says for what. */
    assert_int_equal(b->state, TASK_PENDING);
    assert_string_equal(limit_waiting_for(b), "group g");
    assert_null(limit_waiting_for(a));
    /* Cancelling the waiting one removes it from the queue at once. */
    assert_true(task_cancel(b));
    assert_int_equal(b->state, TASK_CANCELLED);
    assert_true(task_cancel(a));
    run_until_finished(a);
    assert_int_equal(a->state, TASK_CANCELLED);
    task_unref(a);
    task_unref(b);
}

static void test_await_timeout(void **state) {
    (void)state;
    task *t = new_task("timeouts", NULL, 0);
    sched_start(t);
    run_until_finished(t);
    assert_int_equal(t->state, TASK_DONE);
    /* wait_for cancels the child on timeout; a plain wait leaves it running. */
    assert_true(pbvalue_list_get(t->result, 0)->bool_value);
    assert_int_equal(pbvalue_list_get(t->result, 1)->int_value, TASK_CANCELLED);
    assert_true(pbvalue_list_get(t->result, 2)->bool_value);
    assert_int_equal(pbvalue_list_get(t->result, 3)->int_value, TASK_RUNNING);
    task_unref(t);
}

static void test_wait_and_as_completed(void **state) {
    (void)state;
    task *t = new_task("waits", NULL, 0);
    sched_start(t);
    run_until_finished(t);
    assert_int_equal(t->state, TASK_DONE);
    const Aiod__Value *r = t->result;
    assert_int_equal(pbvalue_list_get(r, 0)->int_value, 1); /* FIRST_COMPLETED: one done */
    /* Finishing order of sleeps 0.3, 0.1, 0.2: indexes 1, 2, 0. */
    assert_int_equal(pbvalue_list_get(r, 1)->int_value, 1);
    assert_int_equal(pbvalue_list_get(r, 2)->int_value, 2);
    assert_int_equal(pbvalue_list_get(r, 3)->int_value, 0);
    assert_true(pbvalue_list_get(r, 4)->bool_value); /* then -ENOENT */
    task_unref(t);
}

static void test_shield(void **state) {
    (void)state;
    task *t = new_task("shielded", NULL, 0);
    sched_start(t);
    while (t->state == TASK_PENDING || !t->run->suspended)
        uv_run(&loop, UV_RUN_NOWAIT);
    /* Children are 2 (shielded, 0.05 s) and 3 (10 s) after the parent. */
    task *s = task_lookup(t->id + 1), *u = task_lookup(t->id + 2);
    assert_non_null(s);
    assert_non_null(u);
    task_ref(s);
    task_ref(u);
    assert_true(task_cancel(t));
    run_until_finished(t);
    run_until_finished(u);
    assert_int_equal(t->state, TASK_CANCELLED);
    assert_int_equal(u->state, TASK_CANCELLED); /* awaited: cancelled with it */
    /* The shielded one runs on to its end. */
    run_until_finished(s);
    assert_int_equal(s->state, TASK_DONE);
    task_unref(s);
    task_unref(u);
    task_unref(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_done),
        cmocka_unit_test(test_retain_bytes_from_largest_holder),
        cmocka_unit_test(test_end_order),
        cmocka_unit_test(test_pinned_until_released),
        cmocka_unit_test(test_failed),
        cmocka_unit_test(test_family),
        cmocka_unit_test(test_reraise),
        cmocka_unit_test(test_cancel_pending),
        cmocka_unit_test(test_cancel_sleeping),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_output_shared_with_children),
        cmocka_unit_test(test_await_timeout),
        cmocka_unit_test(test_wait_and_as_completed),
        cmocka_unit_test(test_shield),
        cmocka_unit_test(test_concurrency_limit),
        cmocka_unit_test(test_group_limit_and_waiting),
        cmocka_unit_test(test_stack_overflow_fails_loudly),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
