/*
 * A queue's items (daemon/api/qitems.c): each kind gives its items back in
 * its order across many blocks, with every kind of value intact; integers
 * at the edges of the inline range come back exactly; a take that cannot
 * make its value leaves the item in place; clearing frees what is held.
 * Under AddressSanitizer a leaked or doubly freed value fails the run.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "aiod/plugin.h"
#include "alloc.h"
#include "api/qitems.h"
#include "pbvalue.h"

/* More than a few blocks' worth (a block holds 62). */
enum { N = 1000 };

/* Item i: mostly ints, with a string, a null, a double and the two int64
 * extremes mixed in, so that inline and boxed items interleave. */
static Aiod__Value *item(int i) {
    switch (i % 13) {
    case 3:
        return pbvalue_string("three");
    case 5:
        return NULL;
    case 7:
        return pbvalue_double(i + 0.5);
    case 11:
        return pbvalue_int(i % 2 ? INT64_MAX : INT64_MIN);
    default:
        return pbvalue_int(i - 500);
    }
}

static void check_item(int i, Aiod__Value *v) {
    switch (i % 13) {
    case 3:
        assert_int_equal(pbvalue_type(v), PBVALUE_STRING);
        assert_string_equal(v->string_value, "three");
        break;
    case 5:
        assert_null(v);
        break;
    case 7:
        assert_int_equal(pbvalue_type(v), PBVALUE_DOUBLE);
        assert_true(v->double_value == i + 0.5);
        break;
    case 11:
        assert_int_equal(pbvalue_type(v), PBVALUE_INT);
        assert_true(v->int_value == (i % 2 ? INT64_MAX : INT64_MIN));
        break;
    default:
        assert_int_equal(pbvalue_type(v), PBVALUE_INT);
        assert_int_equal(v->int_value, i - 500);
    }
    pbvalue_free(v);
}

static void push_all(qitems *s, int from, int to) {
    for (int i = from; i < to; i++) {
        Aiod__Value *v = item(i);
        assert_int_equal(qitems_push(s, 0, v), 0);
    }
}

static void take_check(qitems *s, int i) {
    Aiod__Value *v = (Aiod__Value *)1;
    assert_int_equal(qitems_take(s, &v), 0);
    check_item(i, v);
}

static void test_fifo_order_across_blocks(void **state) {
    (void)state;
    qitems s;
    qitems_init(&s, AIOD_QUEUE_FIFO);
    /* Fill past several blocks, drain part, refill, drain all: the chain
     * both grows and gives blocks back while holding items. */
    push_all(&s, 0, N);
    for (int i = 0; i < N / 2 + 7; i++)
        take_check(&s, i);
    push_all(&s, N, 2 * N);
    assert_int_equal(s.n, 2 * N - (N / 2 + 7));
    for (int i = N / 2 + 7; i < 2 * N; i++)
        take_check(&s, i);
    assert_int_equal(s.n, 0);
    /* One put, one get at a time keeps using the one block left. */
    for (int i = 0; i < 3 * N; i++) {
        push_all(&s, i, i + 1);
        take_check(&s, i);
    }
    assert_non_null(s.head);
    assert_ptr_equal(s.head, s.tail);
    qitems_clear(&s);
}

static void test_lifo_order_across_blocks(void **state) {
    (void)state;
    qitems s;
    qitems_init(&s, AIOD_QUEUE_LIFO);
    push_all(&s, 0, N);
    for (int i = N - 1; i >= N / 3; i--)
        take_check(&s, i);
    push_all(&s, N, N + 200);
    for (int i = N + 199; i >= N; i--)
        take_check(&s, i);
    for (int i = N / 3 - 1; i >= 0; i--)
        take_check(&s, i);
    assert_int_equal(s.n, 0);
    qitems_clear(&s);
}

static void test_priority_lowest_first_fifo_among_equals(void **state) {
    (void)state;
    qitems s;
    qitems_init(&s, AIOD_QUEUE_PRIORITY);
    /* Item i at priority (i % 4) descending: the order out is priority 0's
     * items by arrival, then priority 1's, and so on. */
    for (int i = 0; i < N; i++)
        assert_int_equal(qitems_push(&s, 3 - i % 4, item(i)), 0);
    for (int p = 0; p < 4; p++)
        for (int i = 3 - p; i < N; i += 4)
            take_check(&s, i);
    assert_int_equal(s.n, 0);
    qitems_clear(&s);
}

static void test_inline_range_edges_round_trip(void **state) {
    (void)state;
    const int64_t edges[] = {
        0,         -1,       1, INT64_MAX / 2, INT64_MIN / 2, INT64_MAX / 2 + 1, INT64_MIN / 2 - 1,
        INT64_MAX, INT64_MIN};
    const size_t n = sizeof(edges) / sizeof(edges[0]);
    qitems s;
    qitems_init(&s, AIOD_QUEUE_FIFO);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(qitems_push(&s, 0, pbvalue_int(edges[i])), 0);
    for (size_t i = 0; i < n; i++) {
        Aiod__Value *v = NULL;
        assert_int_equal(qitems_take(&s, &v), 0);
        assert_int_equal(pbvalue_type(v), PBVALUE_INT);
        assert_true(v->int_value == edges[i]);
        pbvalue_free(v);
    }
    qitems_clear(&s);
}

static void test_take_out_of_memory_leaves_the_item(void **state) {
    (void)state;
    qitems s;
    qitems_init(&s, AIOD_QUEUE_FIFO);
    assert_int_equal(qitems_push(&s, 0, pbvalue_int(42)), 0);
    assert_int_equal(qitems_push(&s, 0, pbvalue_int(43)), 0);
    Aiod__Value *v = NULL;
    alloc_fail_at(1);
    int r = qitems_take(&s, &v);
    alloc_fail_at(0);
    assert_int_equal(r, -ENOMEM);
    assert_int_equal(s.n, 2);
    assert_int_equal(qitems_take(&s, &v), 0);
    assert_int_equal(v->int_value, 42);
    pbvalue_free(v);
    qitems_clear(&s);
}

static void test_push_out_of_memory_leaves_the_value(void **state) {
    (void)state;
    qitems s;
    qitems_init(&s, AIOD_QUEUE_PRIORITY);
    Aiod__Value *v = pbvalue_string("kept");
    alloc_fail_at(1);
    int r = qitems_push(&s, 0, v);
    alloc_fail_at(0);
    assert_int_equal(r, -ENOMEM);
    assert_int_equal(s.n, 0);
    /* Still the caller's, intact. */
    assert_string_equal(v->string_value, "kept");
    pbvalue_free(v);
    qitems_clear(&s);
}

static void test_clear_frees_and_can_be_reused(void **state) {
    (void)state;
    const uint32_t kinds[] = {AIOD_QUEUE_FIFO, AIOD_QUEUE_LIFO, AIOD_QUEUE_PRIORITY};
    for (size_t k = 0; k < 3; k++) {
        qitems s;
        qitems_init(&s, kinds[k]);
        push_all(&s, 0, N);
        /* A FIFO whose head block is partly taken frees from there. */
        take_check(&s, kinds[k] == AIOD_QUEUE_LIFO ? N - 1 : 0);
        qitems_clear(&s);
        assert_int_equal(s.n, 0);
        assert_null(s.head);
        assert_null(s.heap);
        push_all(&s, 0, 3);
        qitems_clear(&s);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_order_across_blocks),
        cmocka_unit_test(test_lifo_order_across_blocks),
        cmocka_unit_test(test_priority_lowest_first_fifo_among_equals),
        cmocka_unit_test(test_inline_range_edges_round_trip),
        cmocka_unit_test(test_take_out_of_memory_leaves_the_item),
        cmocka_unit_test(test_push_out_of_memory_leaves_the_value),
        cmocka_unit_test(test_clear_frees_and_can_be_reused),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    qitems_cache_release();
    return r;
}
