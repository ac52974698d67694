/*
 * The hand-written Outcomes encoder against protobuf-c's pack: the same
 * bytes for every shape of outcome (ids and states of every varint length,
 * results of several kinds and sizes, empty and set error strings, request
 * id 0, no outcomes, many), and a decodable reply.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/encode.h"
#include "pbvalue.h"

/* protobuf-c's encoding of the same reply. */
static uint8_t *reference(uint64_t request_id, Aiod__Outcome *os, size_t n, size_t *len) {
    Aiod__Outcome **ps = calloc(n ? n : 1, sizeof(*ps));
    assert_non_null(ps);
    for (size_t i = 0; i < n; i++)
        ps[i] = &os[i];
    Aiod__Outcomes out = AIOD__OUTCOMES__INIT;
    out.n_outcomes = n;
    out.outcomes = ps;
    Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
    m.request_id = request_id;
    m.body_case = AIOD__SERVER_MESSAGE__BODY_OUTCOMES;
    m.outcomes = &out;
    *len = aiod__server_message__get_packed_size(&m);
    uint8_t *buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    assert_int_equal(aiod__server_message__pack(&m, buf), *len);
    free(ps);
    return buf;
}

static void check_same(uint64_t request_id, Aiod__Outcome *os, size_t n) {
    size_t ref_len;
    uint8_t *ref = reference(request_id, os, n, &ref_len);
    encode_sizes *sizes = calloc(n ? n : 1, sizeof(*sizes));
    assert_non_null(sizes);
    size_t len = encode_outcomes_size(request_id, os, n, sizes);
    assert_int_equal(len, ref_len);
    /* One spare byte, to catch a write past the announced size. */
    uint8_t *buf = malloc(len + 1);
    assert_non_null(buf);
    buf[len] = 0xA5;
    encode_outcomes(buf, request_id, os, n, sizes);
    assert_int_equal(buf[len], 0xA5);
    assert_memory_equal(buf, ref, len);
    Aiod__ServerMessage *back = aiod__server_message__unpack(NULL, len, buf);
    assert_non_null(back);
    assert_int_equal(back->body_case, AIOD__SERVER_MESSAGE__BODY_OUTCOMES);
    assert_int_equal(back->outcomes->n_outcomes, n);
    aiod__server_message__free_unpacked(back, NULL);
    free(buf);
    free(sizes);
    free(ref);
}

static void test_shapes(void **state) {
    (void)state;
    static Aiod__Value null_value = AIOD__VALUE__INIT;
    Aiod__Value *str = pbvalue_string("hello");
    Aiod__Value *big = pbvalue_bytes(NULL, 0);
    Aiod__Value *list = pbvalue_list();
    char *long_text = malloc(70000);
    assert_non_null(long_text);
    memset(long_text, 'x', 69999);
    long_text[69999] = '\0';
    Aiod__Value *long_str = pbvalue_string(long_text);
    assert_non_null(str);
    assert_non_null(big);
    assert_non_null(list);
    assert_non_null(long_str);
    assert_int_equal(pbvalue_list_append(list, pbvalue_int(-3)), 0);
    assert_int_equal(pbvalue_list_append(list, pbvalue_double(0.5)), 0);
    Aiod__Value *results[] = {NULL, &null_value, str, big, list, long_str};
    const char *kinds[] = {NULL, "", "ValueError"};
    const char *messages[] = {NULL, "", "bad", NULL};
    uint64_t ids[] = {0, 1, 127, 128, 16383, 16384, UINT64_MAX};
    int states[] = {0, 1, 3, 5, -1};
    uint64_t requests[] = {0, 1, 300, UINT64_MAX};

    Aiod__Outcome os[64];
    size_t n = 0;
    for (size_t a = 0; a < sizeof(ids) / sizeof(ids[0]); a++)
        for (size_t b = 0; b < sizeof(states) / sizeof(states[0]); b++)
            for (size_t c = 0; c < sizeof(results) / sizeof(results[0]); c++) {
                Aiod__Outcome o;
                aiod__outcome__init(&o);
                o.task_id = ids[a];
                o.state = (Aiod__TaskState)states[b];
                o.result = results[c];
                o.error_kind = (char *)kinds[(a + c) % 3];
                o.error_message = (char *)messages[(b + c) % 4];
                for (size_t r = 0; r < sizeof(requests) / sizeof(requests[0]); r++)
                    check_same(requests[r], &o, 1);
                os[n++ % 64] = o;
            }
    for (size_t r = 0; r < sizeof(requests) / sizeof(requests[0]); r++) {
        check_same(requests[r], os, 0);
        check_same(requests[r], os, 64);
    }
    pbvalue_free(str);
    pbvalue_free(big);
    pbvalue_free(list);
    pbvalue_free(long_str);
    free(long_text);
}

/* Started: the same bytes as protobuf-c's pack, for no id, one, many, and
 * ids of every varint length. */
static void test_started(void **state) {
    (void)state;
    uint64_t ids[] = {1, 127, 128, 16383, 16384, UINT64_MAX, 0, 42};
    uint64_t requests[] = {0, 1, 300, UINT64_MAX};
    for (size_t r = 0; r < sizeof(requests) / sizeof(requests[0]); r++)
        for (size_t n = 0; n <= sizeof(ids) / sizeof(ids[0]); n++) {
            Aiod__Started st = AIOD__STARTED__INIT;
            st.n_task_ids = n;
            st.task_ids = ids;
            Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
            m.request_id = requests[r];
            m.body_case = AIOD__SERVER_MESSAGE__BODY_STARTED;
            m.started = &st;
            size_t want = protobuf_c_message_get_packed_size(&m.base);
            uint8_t ref[128], buf[128];
            assert_true(want <= sizeof(ref));
            protobuf_c_message_pack(&m.base, ref);
            assert_int_equal(encode_started_size(requests[r], ids, n), want);
            encode_started(buf, requests[r], ids, n);
            assert_memory_equal(buf, ref, want);
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_started),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
