/*
 * asyncio's Queue, LifoQueue and PriorityQueue (daemon/api/queue.c), checked by CPython's
 * test_queues.py ported to C: each case is a function of the asyncio_queues test plugin
 * (tests/plugins/asyncio_queues.c), run here as a task on a real loop; it must end done, else its
 * error (naming the CPython test and the failed check) is printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "daemon-loop.h"

#define PLUGIN "asyncio_queues"

static uv_loop_t loop;

static int setup(void **state) {
    (void)state;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/%s.so", TEST_PLUGIN_DIR, PLUGIN, PLUGIN);
    return daemon_loop_start(&loop, path);
}

static int teardown(void **state) {
    (void)state;
    return daemon_loop_stop(&loop);
}

/* Runs PLUGIN.<name> (the cmocka state) to its end; it must end done. */
static void run_case(void **state) {
    const char *name = *state;
    char full[256], err[256];
    Aiod__Value **argv = NULL;
    task *t = NULL;
    snprintf(full, sizeof(full), "%s.%s", PLUGIN, name);
    fn_entry *f = plugin_lookup(full);
    assert_non_null(f);
    assert_int_equal(value_check_call(&f->sig, NULL, 0, false, 32, &argv, err, sizeof(err)), 0);
    assert_int_equal(task_new(f, argv, f->sig.n_params, AIOD__OWNERSHIP__SUBMITTED, 0, 0, NULL, &t),
                     0);
    sched_start(t);
    while (!task_finished(t))
        uv_run(&loop, UV_RUN_ONCE);
    if (t->state != TASK_DONE)
        print_error("%s ended %d: %s: %s\n", name, (int)t->state,
                    t->error_kind ? t->error_kind : "-", t->error_message ? t->error_message : "-");
    assert_int_equal(t->state, TASK_DONE);
    task_unref(t);
}

/* Cases listed below, not counting this check. */
static size_t n_cases;

/* Every function of the plugin is a case listed below (a new case cannot be left out). */
static void test_every_case_listed(void **state) {
    (void)state;
    size_t n = 0;
    for (size_t i = 0; i < plugin_count(); i++)
        if (strcmp(plugin_at(i)->name, PLUGIN) == 0)
            n = plugin_at(i)->desc->n_functions;
    assert_int_equal(n, n_cases);
}

#define CASE(name)                                                                                 \
    { #name, run_case, NULL, NULL, (void *)#name }

int main(void) {
    const struct CMUnitTest cases[] = {
        CASE(queue_basic_test_empty),
        CASE(queue_basic_test_full),
        CASE(queue_basic_test_order),
        CASE(queue_basic_test_maxsize),
        CASE(queue_get_test_blocking_get),
        CASE(queue_get_test_blocking_get_wait),
        CASE(queue_get_test_nonblocking_get_exception),
        CASE(queue_get_test_get_cancelled_race),
        CASE(queue_get_test_get_with_waiting_putters),
        CASE(queue_get_test_why_are_getters_waiting),
        CASE(queue_get_test_cancelled_getters_not_being_held_in_self_getters),
        CASE(queue_put_test_blocking_put),
        CASE(queue_put_test_blocking_put_wait),
        CASE(queue_put_test_get_cancel_drop_one_pending_reader),
        CASE(queue_put_test_get_cancel_drop_many_pending_readers),
        CASE(queue_put_test_put_cancel_drop),
        CASE(queue_put_test_nonblocking_put_exception),
        CASE(queue_put_test_put_cancelled),
        CASE(queue_put_test_put_cancelled_race),
        CASE(queue_put_test_put_with_waiting_getters),
        CASE(queue_put_test_why_are_putters_waiting),
        CASE(queue_put_test_cancelled_puts_not_being_held_in_self_putters),
        CASE(queue_put_test_cancelled_put_silence_value_error_exception),
        CASE(lifo_queue_test_order),
        CASE(priority_queue_test_order),
        CASE(queue_join_test_task_done_underflow),
        CASE(queue_join_test_task_done),
        CASE(queue_join_test_join_empty_queue),
        CASE(queue_shutdown_test_shutdown_empty),
        CASE(queue_shutdown_test_shutdown_nonempty),
        CASE(queue_shutdown_test_shutdown_immediate),
        CASE(queue_shutdown_test_shutdown_immediate_with_unfinished),
        CASE(queue_misuse),
        cmocka_unit_test(test_every_case_listed),
    };
    n_cases = sizeof(cases) / sizeof(cases[0]) - 1;
    return cmocka_run_group_tests_name(PLUGIN, cases, setup, teardown);
}
