/*
 * Free lists of fixed-size blocks: a block comes back zeroed whether it is
 * new or reused, at most `max` blocks are kept, the most recently given is
 * taken first, and releasing empties the list. Under AddressSanitizer the
 * list keeps nothing, so that every free is seen; the tests say which
 * behaviour they expect.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/freelist.h"
#include "base/memcheck.h"

#ifdef AIOD_ASAN
#define KEEPS_BLOCKS 0
#else
#define KEEPS_BLOCKS (!RUNNING_ON_VALGRIND)
#endif

enum { BLOCK = 200 };

static bool all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void test_blocks_come_back_zeroed(void **state) {
    (void)state;
    freelist fl = FREELIST_INIT(BLOCK, 4);
    unsigned char *a = freelist_take(&fl);
    assert_non_null(a);
    assert_true(all_zero(a, BLOCK));
    memset(a, 0xa5, BLOCK);
    freelist_give(&fl, a);
    unsigned char *b = freelist_take(&fl);
    assert_non_null(b);
    assert_true(all_zero(b, BLOCK));
    if (KEEPS_BLOCKS)
        assert_ptr_equal(a, b); /* the one just given, still in the cache */
    freelist_give(&fl, b);
    freelist_release(&fl);
    assert_int_equal(fl.n, 0);
    assert_null(fl.head);
}

static void test_keeps_at_most_max(void **state) {
    (void)state;
    enum { MAX = 3, N = 10 };
    freelist fl = FREELIST_INIT(BLOCK, MAX);
    void *blocks[N];
    for (int i = 0; i < N; i++)
        assert_non_null(blocks[i] = freelist_take(&fl));
    for (int i = 0; i < N; i++)
        freelist_give(&fl, blocks[i]);
    assert_int_equal(fl.n, KEEPS_BLOCKS ? MAX : 0);
    /* The first MAX given were kept (the rest went to free), and come back
     * most recent first. */
    if (KEEPS_BLOCKS)
        for (int i = MAX - 1; i >= 0; i--)
            assert_ptr_equal(freelist_take(&fl), blocks[i]);
    assert_int_equal(fl.n, 0);
    freelist_give(&fl, NULL); /* accepted, keeps nothing */
    assert_int_equal(fl.n, 0);
    if (KEEPS_BLOCKS)
        for (int i = 0; i < MAX; i++)
            freelist_give(&fl, blocks[i]);
    freelist_release(&fl);
    assert_null(fl.head);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_come_back_zeroed),
        cmocka_unit_test(test_keeps_at_most_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
