/*
 * Framing: headers, frames split across reads, many frames in one read,
 * zero-length frames and frames over the limit.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "frame.h"

static size_t make_frame(uint8_t *out, const char *payload) {
    uint32_t n = (uint32_t)strlen(payload);
    frame_put_header(out, n);
    memcpy(out + FRAME_HEADER_SIZE, payload, n);
    return FRAME_HEADER_SIZE + n;
}

static void test_header_round_trip(void **state) {
    (void)state;
    uint8_t h[4];
    frame_put_header(h, 0x01020304u);
    assert_int_equal(h[0], 1);
    assert_int_equal(h[3], 4);
    assert_int_equal(frame_get_header(h), 0x01020304u);
    frame_put_header(h, 0xFFFFFFFFu);
    assert_int_equal(frame_get_header(h), 0xFFFFFFFFu);
}

static void test_split_across_reads(void **state) {
    (void)state;
    frame_reader r;
    uint8_t buf[64];
    const uint8_t *p;
    uint32_t len;
    size_t n = make_frame(buf, "hello world");
    frame_reader_init(&r, 1024);
    for (size_t i = 0; i < n; i++) {
        /* Ready says what next would: nothing until the last byte. */
        assert_false(frame_reader_ready(&r));
        assert_int_equal(frame_reader_next(&r, &p, &len), 0);
        assert_int_equal(frame_reader_feed(&r, buf + i, 1), 0);
    }
    assert_true(frame_reader_ready(&r));
    assert_int_equal(frame_reader_next(&r, &p, &len), 1);
    assert_false(frame_reader_ready(&r));
    assert_int_equal(len, 11);
    assert_memory_equal(p, "hello world", 11);
    assert_int_equal(frame_reader_next(&r, &p, &len), 0);
    assert_int_equal(frame_reader_pending(&r), 0);
    frame_reader_done(&r);
}

static void test_many_in_one_read(void **state) {
    (void)state;
    frame_reader r;
    uint8_t buf[256];
    size_t n = 0;
    const uint8_t *p;
    uint32_t len;
    n += make_frame(buf + n, "a");
    n += make_frame(buf + n, "");
    n += make_frame(buf + n, "ccc");
    n += make_frame(buf + n, "dd"); /* then cut the last one short */
    frame_reader_init(&r, 1024);
    assert_int_equal(frame_reader_feed(&r, buf, n - 1), 0);
    assert_int_equal(frame_reader_next(&r, &p, &len), 1);
    assert_int_equal(len, 1);
    assert_memory_equal(p, "a", 1);
    assert_int_equal(frame_reader_next(&r, &p, &len), 1);
    assert_int_equal(len, 0); /* zero-length frame */
    assert_int_equal(frame_reader_next(&r, &p, &len), 1);
    assert_int_equal(len, 3);
    assert_memory_equal(p, "ccc", 3);
    assert_int_equal(frame_reader_next(&r, &p, &len), 0);
    assert_int_equal(frame_reader_feed(&r, buf + n - 1, 1), 0);
    assert_int_equal(frame_reader_next(&r, &p, &len), 1);
    assert_memory_equal(p, "dd", 2);
    frame_reader_done(&r);
}

static void test_over_limit(void **state) {
    (void)state;
    frame_reader r;
    uint8_t h[4];
    const uint8_t *p;
    uint32_t len;
    frame_reader_init(&r, 100);
    frame_put_header(h, 101);
    assert_int_equal(frame_reader_feed(&r, h, 4), 0);
    /* Ready too: next has something to say (the error). */
    assert_true(frame_reader_ready(&r));
    assert_int_equal(frame_reader_next(&r, &p, &len), -EMSGSIZE);
    frame_reader_done(&r);

    /* A 4 GiB header is refused from the header alone: nothing is buffered
     * waiting for the body. */
    frame_reader_init(&r, 100);
    frame_put_header(h, 0xFFFFFFFFu);
    assert_int_equal(frame_reader_feed(&r, h, 4), 0);
    assert_int_equal(frame_reader_next(&r, &p, &len), -EMSGSIZE);
    assert_true(r.cap <= 4096);
    frame_reader_done(&r);

    /* Exactly at the limit is fine. */
    frame_reader_init(&r, 100);
    uint8_t big[104] = {0};
    frame_put_header(big, 100);
    assert_int_equal(frame_reader_feed(&r, big, sizeof(big)), 0);
    assert_int_equal(frame_reader_next(&r, &p, &len), 1);
    assert_int_equal(len, 100);
    frame_reader_done(&r);
}

static void test_space_compacts(void **state) {
    (void)state;
    frame_reader r;
    uint8_t buf[5000];
    const uint8_t *p;
    uint32_t len;
    frame_reader_init(&r, 10000);
    /* Fill, consume, and check the space is reused rather than grown. */
    for (int round = 0; round < 100; round++) {
        char payload[3000];
        memset(payload, 'x', sizeof(payload) - 1);
        payload[sizeof(payload) - 1] = '\0';
        size_t n = make_frame(buf, payload);
        assert_int_equal(frame_reader_feed(&r, buf, n), 0);
        assert_int_equal(frame_reader_next(&r, &p, &len), 1);
        assert_int_equal(len, 2999);
    }
    assert_true(r.cap <= 8192);
    frame_reader_done(&r);
}

static void test_oom(void **state) {
    (void)state;
    frame_reader r;
    uint8_t buf[64];
    size_t n = make_frame(buf, "x");
    frame_reader_init(&r, 100);
    alloc_fail_at(1);
    assert_int_equal(frame_reader_feed(&r, buf, n), -ENOMEM);
    alloc_fail_at(0);
    assert_int_equal(frame_reader_feed(&r, buf, n), 0);
    frame_reader_done(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_round_trip), cmocka_unit_test(test_split_across_reads),
        cmocka_unit_test(test_many_in_one_read),  cmocka_unit_test(test_over_limit),
        cmocka_unit_test(test_space_compacts),    cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
