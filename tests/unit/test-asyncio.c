/*
 * The asyncio test plugin's cases (tests/plugins/asyncio_cases.h), each run
 * as a task on a real loop: CPython's asyncio tests (test_tasks,
 * test_waitfor, test_timeouts, test_taskgroups, test_futures, the loop's
 * callbacks) ported to the plugin API. A case passes when its task ends
 * done; otherwise the task's error names the case and the failed check.
 * Also the deep cancel of issue 15: the head of a chain of tasks, each
 * awaiting the next, is cancelled; 1,000,000 links, 100,000 under
 * sanitizers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/memcheck.h"
#include "daemon-loop.h"

/* Under TSan every started task is a fiber with trace memory of its own. */
#if defined(AIOD_TSAN)
#define DEEP_CHAIN 10000
#elif defined(AIOD_SANITIZED)
#define DEEP_CHAIN 100000
#else
#define DEEP_CHAIN 1000000
#endif

static uv_loop_t loop;

static int setup(void **state) {
    (void)state;
    char path[4096];
    snprintf(path, sizeof(path), "%s/asyncio/asyncio.so", TEST_PLUGIN_DIR);
    int r = daemon_loop_start(&loop, path);
    /* room for the deep chain beside the cases' own tasks */
    cfg.max_tasks = 4u * 1024 * 1024;
    return r;
}

static int teardown(void **state) {
    (void)state;
    return daemon_loop_stop(&loop);
}

/* A case that has not ended after this long is cancelled (and fails). */
#define CASE_SECONDS 30

static void on_watchdog(uv_timer_t *h) {
    task *t = h->data;
    print_error("watchdog: cancelling the case after %d s\n", CASE_SECONDS);
    task_cancel(t);
}

/* Runs asyncio.<name> with `args` (taken) to its end; fails the test unless
 * it ended done. A case that hangs is cancelled by a watchdog timer; one
 * that leaves nothing to run (a lost wake-up) fails at once. */
static void run_case(const char *name, Aiod__Value **args, size_t n) {
    char full[128], err[256];
    Aiod__Value **argv = NULL;
    task *t = NULL;
    snprintf(full, sizeof(full), "asyncio.%s", name);
    fn_entry *f = plugin_lookup(full);
    assert_non_null(f);
    assert_int_equal(value_check_call(&f->sig, args, n, false, 32, &argv, err, sizeof(err)), 0);
    assert_int_equal(task_new(f, argv, f->sig.n_params, AIOD__OWNERSHIP__SUBMITTED, 0, 0, NULL, &t),
                     0);
    uv_timer_t watchdog;
    uv_timer_init(&loop, &watchdog);
    watchdog.data = t;
    uv_timer_start(&watchdog, on_watchdog, (n ? 10 : 1) * CASE_SECONDS * 1000, 0);
    uv_unref((uv_handle_t *)&watchdog);
    sched_start(t);
    bool stuck = false;
    while (!task_finished(t) && !stuck)
        stuck = uv_run(&loop, UV_RUN_ONCE) == 0 && !task_finished(t) && sched_ready_count() == 0;
    uv_close((uv_handle_t *)&watchdog, NULL);
    if (stuck) {
        print_error("%s: hangs: nothing left to run and the task is %s\n", name,
                    t->state == TASK_RUNNING ? "running" : "pending");
        task_cancel(t);
        while (!task_finished(t) && uv_run(&loop, UV_RUN_ONCE))
            ;
    }
    if (t->state != TASK_DONE)
        print_error("%s ended %s: %s: %s\n", name,
                    t->state == TASK_CANCELLED ? "cancelled" : "failed",
                    t->error_kind ? t->error_kind : "-", t->error_message ? t->error_message : "-");
    int state = t->state;
    task_unref(t);
    uv_run(&loop, UV_RUN_NOWAIT); /* closes the watchdog */
    assert_false(stuck);
    assert_int_equal(state, TASK_DONE);
}

#define CASE(name)                                                                                 \
    static void test_##name(void **state) {                                                        \
        (void)state;                                                                               \
        run_case(#name, NULL, 0);                                                                  \
    }
#include "asyncio_cases.h"
#undef CASE

/* Issue 15: cancelling the head of a chain of DEEP_CHAIN tasks cancels
 * every one of them, and the daemon lives on. */
static void test_deep_cancel_chain(void **state) {
    (void)state;
    Aiod__Value *args[] = {pbvalue_int(DEEP_CHAIN)};
    run_case("deep_cancel_chain", args, 1);
}

/* A spawn_call helper's result is not checked against its caller's
 * declared result type. */
static void test_spawn_call_helper_result_is_not_typed(void **state) {
    (void)state;
    run_case("typed_caller", NULL, 0);
}

int main(int argc, char **argv) {
#define CASE(name) cmocka_unit_test(test_##name),
    const struct CMUnitTest tests[] = {
#include "asyncio_cases.h"
        cmocka_unit_test(test_deep_cancel_chain),
        cmocka_unit_test(test_spawn_call_helper_result_is_not_typed),
    };
#undef CASE
    /* `test-asyncio NAME-PATTERN` runs only the matching cases. */
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, teardown);
}
