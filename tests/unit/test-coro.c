/*
 * Coroutines alone: resume/yield order with interleaved coroutines (their
 * frames are copied aside and back on the shared run stack), finishing, and
 * the guard page bookkeeping. Switch cost is the benchmark's business.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/coro.h"

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
    coro_configure(64 * 1024);
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
    /* One run stack serves every coroutine and stays mapped for the next. */
    assert_int_equal(coro_stacks_mapped(), 1);
    assert_int_equal(coro_new(body, (void *)3, &a), 0);
    assert_int_equal(coro_stacks_mapped(), 1);
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

/* Each coroutine fills a local buffer with its own pattern, yields (others
 * overwrite the run stack meanwhile) and checks the pattern survived. */
static int verified;

static void pattern_body(void *arg) {
    uint8_t id = (uint8_t)(uintptr_t)arg;
    volatile uint8_t buf[3000];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(id + i);
    for (int round = 0; round < 3; round++) {
        coro_yield();
        for (size_t i = 0; i < sizeof(buf); i++)
            if (buf[i] != (uint8_t)(id + i))
                return;
    }
    verified++;
}

static void test_frames_survive_others(void **state) {
    (void)state;
    enum { N = 1000 };
    static coro *cs[N];
    verified = 0;
    for (int i = 0; i < N; i++)
        assert_int_equal(coro_new(pattern_body, (void *)(uintptr_t)i, &cs[i]), 0);
    for (int round = 0; round < 4; round++)
        for (int i = 0; i < N; i++)
            assert_int_equal(coro_resume(cs[i]), 0);
    assert_int_equal(verified, N);
    /* A suspended coroutine keeps only its live frames: a few KiB here. */
    for (int i = 0; i < N; i++) {
        assert_true(coro_finished(cs[i]));
        assert_true(coro_saved_bytes(cs[i]) < 8192);
        coro_free(cs[i]);
    }
    coro_pool_clear();
    assert_int_equal(coro_stacks_mapped(), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interleave),
        cmocka_unit_test(test_guard_bookkeeping),
        cmocka_unit_test(test_frames_survive_others),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
