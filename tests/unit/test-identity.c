/*
 * NSS lookups off the loop thread (system/identity.h): the first lookup of
 * a uid runs on the thread pool and answers through the loop; the next one
 * is served from the cache at once; a cancelled lookup never calls back;
 * callers of one uid meanwhile share its lookup; an unknown uid answers
 * with no groups.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "system/identity.h"

static uv_loop_t loop;

typedef struct answer {
    int calls;
    size_t n;
    bool has_primary;
    gid_t primary;
} answer;

static void on_answer(void *data, const gid_t *groups, size_t n) {
    answer *a = data;
    a->calls++;
    a->n = n;
    for (size_t i = 0; i < n; i++)
        if (groups[i] == a->primary)
            a->has_primary = true;
}

static int setup(void **state) {
    (void)state;
    return uv_loop_init(&loop);
}

static int teardown(void **state) {
    (void)state;
    identity_done();
    return uv_loop_close(&loop);
}

static void test_first_on_pool_then_cached(void **state) {
    (void)state;
    answer a = {.primary = getgid()};
    identity_req *r = NULL;
    assert_int_equal(identity_lookup(&loop, getuid(), getgid(), on_answer, &a, &r), 0);
    assert_non_null(r);
    assert_int_equal(a.calls, 0); /* not on the caller's stack */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 1);
    assert_true(a.n >= 1);
    assert_true(a.has_primary); /* getgrouplist includes the primary group */

    answer b = {.primary = getgid()};
    assert_int_equal(identity_lookup(&loop, getuid(), getgid(), on_answer, &b, &r), 1);
    assert_null(r);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.n, a.n);
}

static void test_cancelled_never_calls(void **state) {
    (void)state;
    identity_flush();
    answer a = {.primary = getgid()};
    identity_req *r = NULL;
    assert_int_equal(identity_lookup(&loop, getuid(), getgid(), on_answer, &a, &r), 0);
    identity_cancel(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 0);
    /* Cached if the lookup had started before the cancel (it then runs to
     * its end); taken off the pool's queue, and not cached, if not. */
    int k = identity_lookup(&loop, getuid(), getgid(), on_answer, &a, &r);
    assert_true(k == 0 || k == 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 1);
}

/* Callers asking for one uid while its lookup is under way share it: one
 * pool job, every caller answered, and one caller's cancel does not take
 * the answer from the others. */
static void test_concurrent_callers_share_one_lookup(void **state) {
    (void)state;
    identity_flush();
    answer a = {.primary = getgid()}, b = a, c = a;
    identity_req *ra = NULL, *rb = NULL, *rc = NULL;
    uint64_t before = identity_pool_lookups();
    assert_int_equal(identity_lookup(&loop, getuid(), getgid(), on_answer, &a, &ra), 0);
    assert_int_equal(identity_lookup(&loop, getuid(), getgid(), on_answer, &b, &rb), 0);
    assert_int_equal(identity_lookup(&loop, getuid(), getgid(), on_answer, &c, &rc), 0);
    assert_int_equal(identity_pool_lookups() - before, 1);
    identity_cancel(rb);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 0);
    assert_int_equal(c.calls, 1);
    assert_true(a.has_primary && c.has_primary);
}

static void test_unknown_uid(void **state) {
    (void)state;
    answer a = {0};
    uid_t nobody_has = 3999999999u;
    assert_int_equal(identity_lookup(&loop, nobody_has, 3999999999u, on_answer, &a, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.n, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_on_pool_then_cached),
        cmocka_unit_test(test_cancelled_never_calls),
        cmocka_unit_test(test_concurrent_callers_share_one_lookup),
        cmocka_unit_test(test_unknown_uid),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
