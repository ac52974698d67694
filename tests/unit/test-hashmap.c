/*
 * The hash map under churn: random inserts, lookups and removals of u64 and
 * string keys checked against a plain array, dense sequential ids (the task
 * table's pattern), growth, sweeping and shrinking, and the per-key counters.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/hashmap.h"

static void test_random_churn(void **state) {
    (void)state;
    enum { KEYS = 5000, OPS = 200000 };
    static int present[KEYS];
    hashmap *m = hashmap_new(0);
    size_t live = 0;
    srand(12345);
    memset(present, 0, sizeof(present));
    for (int op = 0; op < OPS; op++) {
        /* Keys spread over a wide range, some of them colliding modulo any
         * table size. */
        int k = rand() % KEYS;
        uint64_t key = (uint64_t)k * 65536u;
        if (rand() % 3) {
            int r = hashmap_put_u64(m, key, (void *)(uintptr_t)(k + 1));
            assert_int_equal(r, present[k] ? -EEXIST : 0);
            if (!present[k]) {
                present[k] = 1;
                live++;
            }
        } else {
            void *v = hashmap_remove_u64(m, key);
            assert_ptr_equal(v, present[k] ? (void *)(uintptr_t)(k + 1) : NULL);
            if (present[k]) {
                present[k] = 0;
                live--;
            }
        }
        assert_int_equal(hashmap_size(m), live);
    }
    for (int k = 0; k < KEYS; k++)
        assert_ptr_equal(hashmap_get_u64(m, (uint64_t)k * 65536u),
                         present[k] ? (void *)(uintptr_t)(k + 1) : NULL);
    /* Iteration sees each live entry once. */
    size_t st = 0, seen = 0;
    void *cur = NULL;
    while (hashmap_next(m, &st, &cur))
        seen++;
    assert_int_equal(seen, live);
    hashmap_free(m);
}

static void test_sequential_ids(void **state) {
    (void)state;
    hashmap *m = hashmap_new(0);
    /* A sliding window of live ids, as tasks come and go. */
    for (uint64_t id = 1; id <= 300000; id++) {
        assert_int_equal(hashmap_put_u64(m, id, (void *)(uintptr_t)id), 0);
        if (id > 1000)
            assert_ptr_equal(hashmap_remove_u64(m, id - 1000), (void *)(uintptr_t)(id - 1000));
    }
    assert_int_equal(hashmap_size(m), 1000);
    assert_ptr_equal(hashmap_get_u64(m, 300000), (void *)(uintptr_t)300000);
    assert_null(hashmap_get_u64(m, 299000));
    /* Key 0 (root's uid) is a key like any other. */
    assert_int_equal(hashmap_put_u64(m, 0, (void *)1), 0);
    assert_ptr_equal(hashmap_get_u64(m, 0), (void *)1);
    for (uint64_t id = 299001; id <= 300000; id++)
        hashmap_remove_u64(m, id);
    assert_ptr_equal(hashmap_remove_u64(m, 0), (void *)1);
    assert_int_equal(hashmap_size(m), 0);
    hashmap_free(m);
}

static void test_strings_and_counts(void **state) {
    (void)state;
    hashmap *m = hashmap_new(1);
    char keys[100][16];
    for (int i = 0; i < 100; i++) {
        snprintf(keys[i], sizeof(keys[i]), "fn.%d", i);
        assert_int_equal(hashmap_put_str(m, keys[i], keys[i]), 0);
    }
    assert_int_equal(hashmap_put_str(m, "fn.7", NULL), -EEXIST);
    assert_ptr_equal(hashmap_get_str(m, "fn.42"), keys[42]);
    assert_null(hashmap_get_str(m, "fn.100"));
    assert_ptr_equal(hashmap_remove_str(m, "fn.42"), keys[42]);
    assert_null(hashmap_get_str(m, "fn.42"));
    hashmap_free(m);

    hashmap *c = NULL;
    hashmap_count_add(&c, 1000, +1);
    hashmap_count_add(&c, 1000, +1);
    hashmap_count_add(&c, 0, +1);
    assert_int_equal(hashmap_count_get(c, 1000), 2);
    assert_int_equal(hashmap_count_get(c, 0), 1);
    hashmap_count_add(&c, 1000, -1);
    hashmap_count_add(&c, 1000, -1);
    hashmap_count_add(&c, 0, -1);
    assert_null(c);               /* freed when the last counter reaches zero */
    hashmap_count_add(&c, 5, -1); /* no map, nothing to do */
    assert_null(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_churn),
        cmocka_unit_test(test_sequential_ids),
        cmocka_unit_test(test_strings_and_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
