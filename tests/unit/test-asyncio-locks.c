/*
 * asyncio's Event, Lock, Semaphore, BoundedSemaphore, Condition and Barrier (daemon/api/sync.c),
 * checked by CPython's test_locks.py ported to C: each case is a function of the asyncio_locks
 * test plugin (tests/plugins/asyncio_locks.c), run here as a task on a real loop; it must end
 * done, else its error (naming the CPython test and the failed check) is printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "daemon-loop.h"

#define PLUGIN "asyncio_locks"

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
        CASE(lock_test_acquire),
        CASE(lock_test_acquire_cancel),
        CASE(lock_test_cancel_race),
        CASE(lock_test_cancel_release_race),
        CASE(lock_test_finished_waiter_cancelled),
        CASE(lock_test_release_not_acquired),
        CASE(lock_test_release_no_waiters),
        CASE(event_test_wait),
        CASE(event_test_wait_on_set),
        CASE(event_test_wait_cancel),
        CASE(event_test_clear),
        CASE(event_test_clear_with_waiters),
        CASE(condition_test_wait),
        CASE(condition_test_wait_cancel),
        CASE(condition_test_wait_cancel_contested),
        CASE(condition_test_wait_cancel_after_notify),
        CASE(condition_test_wait_unacquired),
        CASE(condition_test_wait_for),
        CASE(condition_test_wait_for_unacquired),
        CASE(condition_test_notify),
        CASE(condition_test_notify_all),
        CASE(condition_test_notify_unacquired),
        CASE(condition_test_explicit_lock),
        CASE(condition_test_timeout_in_block),
        CASE(condition_test_cancelled_error_wakeup),
        CASE(condition_test_cancelled_error_re_aquire),
        CASE(condition_test_cancelled_wakeup),
        CASE(condition_test_cancelled_wakeup_relock),
        CASE(semaphore_test_initial_value_zero),
        CASE(semaphore_test_semaphore_value),
        CASE(semaphore_test_acquire),
        CASE(semaphore_test_acquire_cancel),
        CASE(semaphore_test_acquire_cancel_before_awoken),
        CASE(semaphore_test_acquire_hang),
        CASE(semaphore_test_acquire_no_hang),
        CASE(semaphore_test_release_not_acquired),
        CASE(semaphore_test_release_no_waiters),
        CASE(semaphore_test_acquire_fifo_order),
        CASE(semaphore_test_acquire_fifo_order_2),
        CASE(semaphore_test_acquire_fifo_order_3),
        CASE(barrier_test_barrier_parties),
        CASE(barrier_test_context_manager),
        CASE(barrier_test_filling_one_task),
        CASE(barrier_test_filling_one_task_twice),
        CASE(barrier_test_filling_task_by_task),
        CASE(barrier_test_filling_tasks_wait_twice),
        CASE(barrier_test_filling_tasks_check_return_value),
        CASE(barrier_test_blocking_tasks_while_draining),
        CASE(barrier_test_filling_tasks_cancel_one),
        CASE(barrier_test_reset_barrier),
        CASE(barrier_test_reset_barrier_while_tasks_waiting),
        CASE(barrier_test_reset_barrier_when_tasks_half_draining),
        CASE(barrier_test_reset_when_tasks_half_draining_half_blocking),
        CASE(barrier_test_reset_while_tasks_waiting_and_waiting_again),
        CASE(barrier_test_reset_barrier_while_tasks_draining),
        CASE(barrier_test_abort_barrier),
        CASE(barrier_test_abort_when_tasks_half_draining_half_blocking),
        CASE(barrier_test_abort_barrier_when_exception),
        CASE(barrier_test_abort_barrier_when_exception_then_resetting),
        CASE(sync_misuse),
        cmocka_unit_test(test_every_case_listed),
    };
    n_cases = sizeof(cases) / sizeof(cases[0]) - 1;
    return cmocka_run_group_tests_name(PLUGIN, cases, setup, teardown);
}
