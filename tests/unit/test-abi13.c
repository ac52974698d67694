/*
 * A plugin of ABI 1.3 keeps its rules under a 1.4 daemon: sticky
 * cancellation, and the older timeouts (<= 0 is no limit, wait on no
 * children is allowed).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "daemon-loop.h"

static uv_loop_t loop;

static int setup(void **state) {
    (void)state;
    char path[4096];
    snprintf(path, sizeof(path), "%s/abi13/abi13.so", TEST_PLUGIN_DIR);
    return daemon_loop_start(&loop, path);
}

static int teardown(void **state) {
    (void)state;
    return daemon_loop_stop(&loop);
}

static task *start(const char *name) {
    fn_entry *f = plugin_lookup(name);
    assert_non_null(f);
    task *t = NULL;
    assert_int_equal(task_new(f, NULL, 0, AIOD__OWNERSHIP__SUBMITTED, 0, 0, NULL, &t), 0);
    assert_false(t->aio);
    sched_start(t);
    return t;
}

static void run_until_finished(task *t) {
    while (!task_finished(t))
        uv_run(&loop, UV_RUN_ONCE);
}

static void test_sticky_cancel(void **state) {
    (void)state;
    task *t = start("abi13.sticky");
    while (t->state == TASK_PENDING || !t->run->suspended)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(task_cancel(t));
    run_until_finished(t);
    assert_int_equal(t->state, TASK_DONE);
    assert_int_equal(pbvalue_list_get(t->result, 0)->int_value, -ECANCELED);
    /* ABI 1.4 would let the second sleep run (0). */
    assert_int_equal(pbvalue_list_get(t->result, 1)->int_value, -ECANCELED);
    task_unref(t);
}

static void test_older_timeouts(void **state) {
    (void)state;
    task *t = start("abi13.timeouts");
    run_until_finished(t);
    assert_int_equal(t->state, TASK_DONE);
    assert_int_equal(pbvalue_list_get(t->result, 0)->int_value, 0);
    assert_int_equal(pbvalue_list_get(t->result, 1)->int_value, 0);
    assert_int_equal(pbvalue_list_get(t->result, 2)->int_value, 7);
    task_unref(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sticky_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_older_timeouts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
