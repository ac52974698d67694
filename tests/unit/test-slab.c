/*
 * Slabs: objects come back zeroed, aligned and distinct, across several
 * chunks; empty chunks are kept up to the slab's cap and reused before any
 * new one is mapped; slab_trim gives back only empty chunks; sizes out of
 * range are refused; chunks after the first are advised as huge pages when
 * the kernel offers them, unless a virtio balloon reports free memory to the
 * host (then none is). Under AddressSanitizer or valgrind the slab hands
 * out calloc'd blocks (every free must be seen): the chunk checks then
 * assert that no chunk was mapped.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/slab.h"

enum { OBJ = 200 };

static bool all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static bool malloc_mode(const slab *s) {
    slab_stats st;
    slab_get_stats(s, &st);
    return st.malloc_mode;
}

static void test_zeroed_aligned_distinct(void **state) {
    (void)state;
    slab s = SLAB_INIT(OBJ, 0);
    enum { N = 1000 };
    unsigned char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = slab_alloc(&s);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % 16, 0);
        assert_true(all_zero(p[i], OBJ));
        memset(p[i], i & 0xff, OBJ);
    }
    /* No two objects overlap: each still holds its own pattern. */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < OBJ; j++)
            assert_int_equal(p[i][j], i & 0xff);
    slab_stats st;
    slab_get_stats(&s, &st);
    assert_int_equal(st.live, N);
    /* A reused object is zeroed again. */
    slab_free(&s, p[7]);
    unsigned char *q = slab_alloc(&s);
    assert_non_null(q);
    assert_true(all_zero(q, OBJ));
    if (!st.malloc_mode)
        assert_ptr_equal(q, p[7]); /* the most recently freed goes first */
    p[7] = q;
    for (int i = 0; i < N; i++)
        slab_free(&s, p[i]);
    slab_free(&s, NULL);
    slab_get_stats(&s, &st);
    assert_int_equal(st.live, 0);
    /* A cap of 0 keeps no empty chunk. */
    assert_int_equal(st.chunks, 0);
    slab_release(&s);
}

/* Fills `chunks` chunks (plus one object), frees everything, and checks
 * what stays mapped under a cap of two chunks. */
static void test_chunks_kept_and_reused(void **state) {
    (void)state;
    slab s = SLAB_INIT(OBJ, 2 * SLAB_CHUNK);
    void *first = slab_alloc(&s);
    assert_non_null(first);
    slab_stats st;
    slab_get_stats(&s, &st);
    size_t per = st.malloc_mode ? 1000 : st.per_chunk;
    if (!st.malloc_mode) {
        assert_true(per >= (SLAB_CHUNK - 4096) / 208);
        assert_int_equal(st.chunks, 1);
    }
    size_t n = 3 * per;
    void **v = calloc(n, sizeof(*v));
    assert_non_null(v);
    v[0] = first;
    for (size_t i = 1; i < n; i++) {
        v[i] = slab_alloc(&s);
        assert_non_null(v[i]);
        *(size_t *)v[i] = i;
    }
    slab_get_stats(&s, &st);
    assert_int_equal(st.live, n);
    if (!st.malloc_mode) {
        assert_int_equal(st.chunks, 3);
        assert_int_equal(st.empty_chunks, 0);
        assert_int_equal(st.mapped_bytes, 3 * SLAB_CHUNK);
    }
    for (size_t i = 1; i < n; i++)
        assert_int_equal(*(size_t *)v[i], i);
    for (size_t i = 0; i < n; i++)
        slab_free(&s, v[i]);
    slab_get_stats(&s, &st);
    assert_int_equal(st.live, 0);
    if (!st.malloc_mode) {
        /* Two empty chunks kept (the cap), the third unmapped. */
        assert_int_equal(st.chunks, 2);
        assert_int_equal(st.empty_chunks, 2);
    }
    /* Two chunks' worth of objects again: no new chunk is mapped. */
    for (size_t i = 0; i < 2 * per; i++) {
        v[i] = slab_alloc(&s);
        assert_non_null(v[i]);
        assert_true(all_zero(v[i], OBJ));
    }
    slab_get_stats(&s, &st);
    assert_int_equal(st.live, 2 * per);
    if (!st.malloc_mode) {
        assert_int_equal(st.chunks, 2);
        assert_int_equal(st.empty_chunks, 0);
    }
    for (size_t i = 0; i < 2 * per; i++)
        slab_free(&s, v[i]);
    free(v);
    slab_release(&s);
    slab_get_stats(&s, &st);
    assert_int_equal(st.chunks, 0);
    assert_int_equal(st.live, 0);
}

static void test_trim_keeps_live_chunks(void **state) {
    (void)state;
    slab s = SLAB_INIT(OBJ, (size_t)64 * SLAB_CHUNK);
    slab_free(&s, slab_alloc(&s)); /* sets the slab up */
    if (malloc_mode(&s)) {
        /* Nothing is mapped in malloc mode: trim has nothing to give. */
        assert_int_equal(slab_trim(&s, 0), 0);
        return;
    }
    slab_stats st;
    slab_get_stats(&s, &st);
    size_t per = st.per_chunk, n = 4 * per;
    void **v = calloc(n, sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        assert_non_null(v[i] = slab_alloc(&s));
    slab_get_stats(&s, &st);
    assert_int_equal(st.chunks, 4);
    /* One object left live in the second chunk; the rest freed. */
    void *keep = v[per + 5];
    for (size_t i = 0; i < n; i++)
        if (v[i] != keep)
            slab_free(&s, v[i]);
    slab_get_stats(&s, &st);
    assert_int_equal(st.chunks, 4); /* under the cap: all kept */
    assert_int_equal(st.empty_chunks, 3);
    assert_int_equal(slab_trim(&s, SLAB_CHUNK), 2 * SLAB_CHUNK);
    slab_get_stats(&s, &st);
    assert_int_equal(st.chunks, 2);
    assert_int_equal(st.empty_chunks, 1);
    assert_int_equal(slab_trim(&s, 0), SLAB_CHUNK);
    slab_get_stats(&s, &st);
    assert_int_equal(st.chunks, 1);
    assert_int_equal(st.empty_chunks, 0);
    assert_int_equal(slab_trim(&s, 0), 0);
    /* The live object is intact, and its chunk serves new objects. */
    memset(keep, 0x5a, OBJ);
    void *again = slab_alloc(&s);
    assert_non_null(again);
    assert_int_equal(((uintptr_t)again ^ (uintptr_t)keep) & ~(uintptr_t)(SLAB_CHUNK - 1), 0);
    assert_int_equal(((unsigned char *)keep)[OBJ - 1], 0x5a);
    slab_free(&s, again);
    slab_free(&s, keep);
    free(v);
    slab_release(&s);
}

static void test_sizes_refused(void **state) {
    (void)state;
    slab zero = SLAB_INIT(0, 0);
    errno = 0;
    assert_null(slab_alloc(&zero));
    assert_int_equal(errno, EINVAL);
    slab big = SLAB_INIT(SLAB_MAX_OBJECT + 1, 0);
    errno = 0;
    assert_null(slab_alloc(&big));
    assert_int_equal(errno, EINVAL);
    slab largest = SLAB_INIT(SLAB_MAX_OBJECT, 0);
    void *p = slab_alloc(&largest);
    assert_non_null(p);
    assert_true(all_zero(p, SLAB_MAX_OBJECT));
    slab_free(&largest, p);
    slab_release(&largest);
}

static int thp_mode(void) {
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    char buf[128] = "";
    if (f) {
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = 0;
        fclose(f);
    }
    return strstr(buf, "[always]") ? 2 : strstr(buf, "[madvise]") ? 1 : 0;
}

/* The VmFlags line of the mapping holding p, from /proc/self/smaps. */
static bool vm_flags(const void *p, char *out, size_t len) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return false;
    char line[512];
    bool in = false, found = false;
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            continue;
        }
        if (in && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(out, len, "%s", line + 8);
            found = true;
            break;
        }
    }
    fclose(f);
    return found;
}

static void test_huge_page_advice(void **state) {
    (void)state;
    slab s = SLAB_INIT(OBJ, 0);
    void *first = slab_alloc(&s);
    assert_non_null(first);
    if (malloc_mode(&s)) {
        slab_stats st;
        slab_get_stats(&s, &st);
        assert_int_equal(st.chunks, 0);
        slab_free(&s, first);
        return;
    }
    slab_stats st;
    slab_get_stats(&s, &st);
    void **v = calloc(st.per_chunk, sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < st.per_chunk; i++)
        assert_non_null(v[i] = slab_alloc(&s));
    void *second = v[st.per_chunk - 1];
    slab_get_stats(&s, &st);
    assert_int_equal(st.chunks, 2);
    /* Chunks are aligned to their size. */
    assert_int_equal((uintptr_t)second % 16, 0);
    char f1[512], f2[512];
    assert_true(vm_flags(first, f1, sizeof(f1)));
    assert_true(vm_flags(second, f2, sizeof(f2)));
    int mode = thp_mode();
    /* Where the host takes freed memory back, every chunk stays in small
     * pages, as the first one does. */
    bool small = slab_free_pages_reported();
    /* "hg" is MADV_HUGEPAGE, "nh" MADV_NOHUGEPAGE. */
    assert_false(strstr(f1, " hg"));
    if (mode == 2)
        assert_true(strstr(f1, " nh"));
    if (mode > 0 && !small)
        assert_true(strstr(f2, " hg"));
    else
        assert_false(strstr(f2, " hg"));
    if (mode == 2 && small)
        assert_true(strstr(f2, " nh"));
    for (size_t i = 0; i < st.per_chunk; i++)
        slab_free(&s, v[i]);
    slab_free(&s, first);
    free(v);
    slab_get_stats(&s, &st);
    assert_int_equal(st.chunks, 0);
    slab_release(&s);
}

/* The balloon's feature bits, as sysfs prints them: bit 5 is
 * VIRTIO_BALLOON_F_REPORTING. */
static void test_free_page_reporting_bit(void **state) {
    (void)state;
    assert_true(slab_features_report_free_pages("011001010000000000000000000000001"));
    assert_true(slab_features_report_free_pages("000001"));
    assert_false(slab_features_report_free_pages("011000010000000000000000000000001"));
    assert_false(slab_features_report_free_pages("01100"));
    assert_false(slab_features_report_free_pages(""));
    assert_false(slab_features_report_free_pages(NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zeroed_aligned_distinct),
        cmocka_unit_test(test_chunks_kept_and_reused),
        cmocka_unit_test(test_trim_keeps_live_chunks),
        cmocka_unit_test(test_sizes_refused),
        cmocka_unit_test(test_huge_page_advice),
        cmocka_unit_test(test_free_page_reporting_bit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
