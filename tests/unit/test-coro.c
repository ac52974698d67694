/*
 * Coroutines alone: resume/yield order, finishing, stack reuse, and that
 * a switch makes no system call is left to the benchmark; here we check the
 * machinery and the guard page bookkeeping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "coro.h"

static int trace[16];
static int ntrace;

static void body(void *arg) {
    int id = (int)(intptr_t)arg;
    trace[ntrace++] = id;
    coro_yield();
    trace[ntrace++] = id + 10;
    /* Floating-point state survives switches. */
    volatile double x = 1.5;
    coro_yield();
    trace[ntrace++] = (int)(x * 2) + id * 100;
}

static void test_interleave(void **state) {
    (void)state;
    coro *a, *b;
    coro_configure(64 * 1024, 4);
    assert_int_equal(coro_new(body, (void *)1, &a), 0);
    assert_int_equal(coro_new(body, (void *)2, &b), 0);
    assert_null(coro_current());
    coro_resume(a);
    coro_resume(b);
    coro_resume(a);
    coro_resume(b);
    assert_false(coro_finished(a));
    coro_resume(b);
    coro_resume(a);
    assert_true(coro_finished(a));
    assert_true(coro_finished(b));
    int want[] = {1, 2, 11, 12, 203, 103};
    assert_int_equal(ntrace, 6);
    assert_memory_equal(trace, want, sizeof(want));
    coro_free(a);
    coro_free(b);
    /* Freed stacks are pooled, and reused by the next coroutines. */
    size_t mapped = coro_stacks_mapped();
    assert_int_equal(coro_new(body, (void *)3, &a), 0);
    assert_int_equal(coro_stacks_mapped(), mapped);
    coro_free(a); /* never started: fine */
    coro_pool_clear();
    assert_int_equal(coro_stacks_mapped(), 0);
}

static void user_body(void *arg) {
    (void)arg;
    char local[100];
    memset(local, 1, sizeof(local));
    /* Our own stack is not a guard page; the guard is below it. */
    assert_null(coro_fault_in_guard(local));
    assert_non_null(coro_current());
}

static void test_guard_bookkeeping(void **state) {
    (void)state;
    coro *c;
    int marker;
    assert_int_equal(coro_new(user_body, NULL, &c), 0);
    coro_set_user(c, &marker);
    assert_ptr_equal(coro_get_user(c), &marker);
    assert_null(coro_fault_in_guard(&marker)); /* nothing running */
    coro_resume(c);
    assert_true(coro_finished(c));
    coro_free(c);
    coro_pool_clear();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interleave),
        cmocka_unit_test(test_guard_bookkeeping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
