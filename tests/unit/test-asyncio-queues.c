/*
 * asyncio's Queue, LifoQueue and PriorityQueue (daemon/api/queue.c), checked by CPython's
 * test_queues.py ported to C: each case is a function of the asyncio_queues test plugin
 * (tests/plugins/asyncio_queues.c), run here as a task on a real loop; it must end done, else its
 * error (naming the CPython test and the failed check) is printed.
 */
#define PLUGIN "asyncio_queues"
#include "asyncio-driver.h"

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
