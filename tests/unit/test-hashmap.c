/*
 * The hash map under churn: random inserts, lookups and removals of u64 and
 * string keys checked against a plain array, dense sequential ids (the task
 * table's pattern), growth, sweeping and shrinking, and the per-key counters;
 * and the incremental rebuild: lookups, duplicate inserts, removals and
 * iteration while entries sit in both tables, with bounded work per call.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
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
    /* A decrement whose increment was lost (an allocation failed: the
     * count read low) stays at zero, never wraps to 4,294,967,295, which
     * would put the uid over every limit for good. */
    hashmap_count_add(&c, 1, +1);
    hashmap_count_add(&c, 42, -1);
    assert_int_equal(hashmap_count_get(c, 42), 0);
    hashmap_count_add(&c, 1, +2);
    hashmap_count_add(&c, 1, -5);
    assert_int_equal(hashmap_count_get(c, 1), 0);
    assert_null(c);
}

/* hashmap.c's REHASH_STEP: old slots moved per insert or removal. */
enum { STEP = 64 };

/* Spread keys (an odd multiplier), so that tables of any size see a mix of
 * runs and gaps. */
static uint64_t spread_key(size_t i) {
    return (uint64_t)i * UINT64_C(0x9E3779B1) + 11;
}

/* Every key below n is present with value i + 1 unless gone[i], and an
 * iteration returns each present value exactly once. */
static void check_all(hashmap *m, size_t n, const unsigned char *gone) {
    size_t live = 0;
    for (size_t i = 0; i < n; i++) {
        void *want = gone && gone[i] ? NULL : (void *)(uintptr_t)(i + 1);
        assert_ptr_equal(hashmap_get_u64(m, spread_key(i)), want);
        live += want != NULL;
    }
    assert_int_equal(hashmap_size(m), live);
    unsigned char *seen = calloc(n ? n : 1, 1);
    assert_non_null(seen);
    size_t st = 0, count = 0;
    void *cur = NULL, *v;
    while ((v = hashmap_next(m, &st, &cur))) {
        size_t i = (uintptr_t)v - 1;
        assert_true(i < n);
        assert_false(gone && gone[i]);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        count++;
    }
    assert_int_equal(count, live);
    free(seen);
}

/* Growth from 16 slots to a quarter of a million: every insert moves at
 * most STEP old slots, rebuilds do span many inserts, and what was inserted
 * stays findable throughout. */
static void test_incremental_growth(void **state) {
    (void)state;
    enum { N = 100000 };
    hashmap *m = hashmap_new(0);
    size_t spanning = 0, longest = 0, run = 0;
    for (size_t i = 0; i < N; i++) {
        size_t before = hashmap_rehash_pending(m);
        assert_int_equal(hashmap_put_u64(m, spread_key(i), (void *)(uintptr_t)(i + 1)), 0);
        size_t after = hashmap_rehash_pending(m);
        /* Bounded work: either a rebuild just started (the count goes up),
         * or it moved at most STEP slots, or it ended. */
        if (after <= before && after > 0)
            assert_true(before - after <= STEP);
        if (after > 0) {
            spanning++;
            run++;
            longest = run > longest ? run : longest;
            /* The oldest key, the newest, and one in the middle, wherever
             * they are now. */
            assert_ptr_equal(hashmap_get_u64(m, spread_key(0)), (void *)1);
            assert_ptr_equal(hashmap_get_u64(m, spread_key(i)), (void *)(uintptr_t)(i + 1));
            assert_ptr_equal(hashmap_get_u64(m, spread_key(i / 2)), (void *)(uintptr_t)(i / 2 + 1));
            assert_null(hashmap_get_u64(m, spread_key(i + 1)));
            /* A duplicate is refused whichever table holds the key. */
            assert_int_equal(hashmap_put_u64(m, spread_key(i / 3), NULL), -EEXIST);
        } else
            run = 0;
    }
    /* The last rebuild (131,072 to 262,144 slots) took 2,048 inserts; the
     * duplicate probes above count as operations too, so half of it. */
    assert_true(longest >= 1000);
    assert_true(spanning > longest);
    check_all(m, N, NULL);
    hashmap_free(m);
}

/* Removals and iteration while a rebuild is under way, then shrinking. */
static void test_remove_and_iterate_during_rebuild(void **state) {
    (void)state;
    enum { N = 40000 };
    static unsigned char gone[N];
    memset(gone, 0, sizeof(gone));
    hashmap *m = hashmap_new(0);
    size_t n = 0;
    /* Insert until a rebuild of at least 16,384 slots starts. */
    while (hashmap_rehash_pending(m) < 16384) {
        assert_true(n < N);
        assert_int_equal(hashmap_put_u64(m, spread_key(n), (void *)(uintptr_t)(n + 1)), 0);
        n++;
    }
    assert_true(hashmap_rehash_pending(m) > 0);
    /* Iteration sees both tables. */
    check_all(m, n, gone);
    /* Remove early keys (most still in the old table) and the newest ones
     * (in the new table), checking after each step. */
    for (size_t i = 0; i < 50; i++) {
        size_t k = i * 7, j = n - 1 - i;
        assert_ptr_equal(hashmap_remove_u64(m, spread_key(k)), (void *)(uintptr_t)(k + 1));
        gone[k] = 1;
        assert_ptr_equal(hashmap_remove_u64(m, spread_key(j)), (void *)(uintptr_t)(j + 1));
        gone[j] = 1;
        assert_null(hashmap_remove_u64(m, spread_key(k)));
        assert_null(hashmap_get_u64(m, spread_key(j)));
    }
    assert_true(hashmap_rehash_pending(m) > 0); /* still under way */
    check_all(m, n, gone);
    /* A removed key can come back, also while the rebuild goes on. */
    assert_int_equal(hashmap_put_u64(m, spread_key(7), (void *)(uintptr_t)8), 0);
    gone[7] = 0;
    check_all(m, n, gone);
    /* Drain it with lookups only: they move nothing (a const map). */
    size_t pending = hashmap_rehash_pending(m);
    for (size_t i = 0; i < n; i++)
        (void)hashmap_get_u64(m, spread_key(i));
    assert_int_equal(hashmap_rehash_pending(m), pending);
    /* Remove nearly everything: the table shrinks, incrementally too, and
     * what stays stays findable at each step. */
    size_t shrinking = 0;
    for (size_t i = 0; i < n; i++) {
        if (gone[i] || i % 64 == 0)
            continue;
        assert_ptr_equal(hashmap_remove_u64(m, spread_key(i)), (void *)(uintptr_t)(i + 1));
        gone[i] = 1;
        if (hashmap_rehash_pending(m) > 0) {
            shrinking++;
            assert_ptr_equal(hashmap_get_u64(m, spread_key(64)), (void *)(uintptr_t)65);
        }
    }
    assert_true(shrinking > 0);
    check_all(m, n, gone);
    /* A few more operations finish any rebuild left. */
    for (size_t i = 0; i < 1000 && hashmap_rehash_pending(m); i++) {
        assert_int_equal(hashmap_put_u64(m, spread_key(N + i), (void *)1), 0);
        assert_ptr_equal(hashmap_remove_u64(m, spread_key(N + i)), (void *)1);
    }
    assert_int_equal(hashmap_rehash_pending(m), 0);
    check_all(m, n, gone);
    hashmap_free(m);
}

/* Freeing a map in the middle of a rebuild frees both tables (checked by
 * ASan and valgrind runs of this test). */
static void test_free_during_rebuild(void **state) {
    (void)state;
    hashmap *m = hashmap_new(1);
    char keys[3000][16];
    size_t i = 0;
    for (; i < 3000 && !(i > 1000 && hashmap_rehash_pending(m)); i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%zu", i);
        assert_int_equal(hashmap_put_str(m, keys[i], keys[i]), 0);
    }
    assert_true(hashmap_rehash_pending(m) > 0);
    for (size_t j = 0; j < i; j++)
        assert_ptr_equal(hashmap_get_str(m, keys[j]), keys[j]);
    hashmap_free(m);
}

/* A burst that ends: removals keep the table until it is a 32nd full, then
 * shrink it straight to a quarter full; hashmap_compact shrinks one an
 * eighth full at once. What stays is found at every step. */
static void test_shrinks_late_and_compacts(void **state) {
    (void)state;
    enum { N = 100000 };
    static unsigned char gone[N];
    memset(gone, 0, sizeof(gone));
    hashmap *m = hashmap_new(0);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(hashmap_put_u64(m, i + 1, (void *)(uintptr_t)(i + 1)), 0);
    /* Too full to shrink: compact only finishes the growth's rebuild. */
    hashmap_compact(m);
    assert_int_equal(hashmap_rehash_pending(m), 0);
    size_t cap = hashmap_capacity(m);
    assert_true(cap >= 2 * N);
    /* Down to a 16th full, in id order as tasks end: no rebuild at all. */
    size_t i = 0;
    for (; hashmap_size(m) * 16 >= cap; i++) {
        assert_ptr_equal(hashmap_remove_u64(m, i + 1), (void *)(uintptr_t)(i + 1));
        gone[i] = 1;
        assert_int_equal(hashmap_capacity(m), cap);
        assert_int_equal(hashmap_rehash_pending(m), 0);
    }
    /* Compact: at once to a quarter full. */
    hashmap_compact(m);
    size_t left = hashmap_size(m);
    assert_int_equal(hashmap_rehash_pending(m), 0);
    assert_true(hashmap_capacity(m) >= 4 * left && hashmap_capacity(m) < 8 * left);
    for (size_t k = 0; k < N; k++)
        assert_ptr_equal(hashmap_get_u64(m, k + 1), gone[k] ? NULL : (void *)(uintptr_t)(k + 1));
    /* Again, without compact: removals shrink once a 32nd full. */
    cap = hashmap_capacity(m);
    bool shrank = false;
    for (; i < N && !shrank; i++) {
        size_t before = hashmap_size(m);
        assert_ptr_equal(hashmap_remove_u64(m, i + 1), (void *)(uintptr_t)(i + 1));
        gone[i] = 1;
        shrank = hashmap_capacity(m) != cap;
        if (shrank) {
            assert_true((before - 1) * 32 < cap);
            assert_true(hashmap_capacity(m) >= 4 * (before - 1));
        } else {
            assert_true((before - 1) * 32 >= cap);
        }
    }
    assert_true(shrank);
    for (size_t k = 0; k < N; k++)
        assert_ptr_equal(hashmap_get_u64(m, k + 1), gone[k] ? NULL : (void *)(uintptr_t)(k + 1));
    hashmap_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_churn),
        cmocka_unit_test(test_sequential_ids),
        cmocka_unit_test(test_strings_and_counts),
        cmocka_unit_test(test_incremental_growth),
        cmocka_unit_test(test_remove_and_iterate_during_rebuild),
        cmocka_unit_test(test_free_during_rebuild),
        cmocka_unit_test(test_shrinks_late_and_compacts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
