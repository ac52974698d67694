/*
 * The daemon's request decoder (net/wire.c): wire_decode unpacks into the
 * arena, whose values must be copied; wire_decode_detached, for frames of
 * 256 KiB and more, unpacks node by node on any thread, so a call's
 * arguments can be taken (value_check_call_take) and the rest of the
 * message freed around the holes they leave, on any thread too.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/value.h"
#include "net/wire.h"
#include "pbvalue.h"

/* A packed Submit of demo.echo with one map of n keys (and its first key
 * again at the end when dup). Free with free(). */
static uint8_t *submit_of_map(size_t n, bool dup, size_t *len) {
    /* Built entry by entry: pbvalue_map_set looks for each key first. */
    Aiod__Value *map = pbvalue_map();
    assert_non_null(map);
    Aiod__Map *mv = map->map_value;
    mv->entries = calloc(n, sizeof(*mv->entries));
    assert_non_null(mv->entries);
    for (size_t i = 0; i < n; i++) {
        Aiod__MapEntry *e = malloc(sizeof(*e));
        assert_non_null(e);
        aiod__map_entry__init(e);
        char key[32];
        snprintf(key, sizeof(key), "key%zu", dup && i == n - 1 ? (size_t)0 : i);
        e->key = strdup(key);
        e->value = pbvalue_int((int64_t)i);
        assert_true(e->key && e->value);
        mv->entries[mv->n_entries++] = e;
    }
    Aiod__Call call = AIOD__CALL__INIT;
    call.function = "demo.echo";
    call.n_args = 1;
    call.args = &map;
    Aiod__Submit sub = AIOD__SUBMIT__INIT;
    sub.call = &call;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    m.request_id = 7;
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_SUBMIT;
    m.submit = &sub;
    *len = aiod__client_message__get_packed_size(&m);
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    assert_int_equal(aiod__client_message__pack(&m, buf), *len);
    pbvalue_free(map);
    return buf;
}

/* wire_decode of a frame that must decode. */
static Aiod__ClientMessage *decoded(const uint8_t *buf, size_t len) {
    Aiod__ClientMessage *m = NULL;
    char why[256];
    assert_int_equal(wire_decode(buf, len, &m, why, sizeof(why)), 0);
    assert_non_null(m);
    return m;
}

/* wire_decode_detached of a big frame that must decode. */
static Aiod__ClientMessage *detached(const uint8_t *buf, size_t len) {
    Aiod__ClientMessage *m = NULL;
    char why[256];
    assert_true(len >= WIRE_DETACHED_FROM);
    assert_int_equal(wire_decode_detached(buf, len, &m, why, sizeof(why)), 0);
    assert_non_null(m);
    return m;
}

static const value_param echo_params[1] = {{"value", PBVALUE_ANY, NULL}};
static const value_sig echo_sig = {"demo.echo", echo_params, 1};

/* demo.echo's checks of a decoded call, taking its argument if they pass. */
static int take_echo_args(Aiod__Call *call, Aiod__Value ***argv, char *err, size_t err_len) {
    return value_check_call_take(&echo_sig, call->args, call->n_args, false, 32, NULL, NULL, NULL,
                                 argv, err, err_len);
}

static void test_arena_takes_any_size(void **state) {
    (void)state;
    /* Small frames, and a big one the daemon could not hand off. */
    size_t len;
    uint8_t *buf = submit_of_map(100, false, &len);
    assert_true(len < WIRE_DETACHED_FROM);
    Aiod__ClientMessage *m = decoded(buf, len);
    assert_int_equal(pbvalue_length(m->submit->call->args[0]), 100);
    size_t big_len;
    uint8_t *big = submit_of_map(40000, false, &big_len);
    Aiod__ClientMessage *bm = decoded(big, big_len); /* nested in the first */
    assert_string_equal(bm->submit->call->args[0]->map_value->entries[39999]->key, "key39999");
    wire_free(bm);
    assert_int_equal(pbvalue_length(m->submit->call->args[0]), 100);
    wire_free(m);
    free(big);
    free(buf);
}

static void test_big_frames_give_their_arguments(void **state) {
    (void)state;
    size_t len;
    uint8_t *buf = submit_of_map(40000, false, &len);
    Aiod__ClientMessage *m = detached(buf, len);
    Aiod__Call *call = m->submit->call;
    Aiod__Value *sent = call->args[0];
    Aiod__Value **argv = NULL;
    char err[512];
    assert_int_equal(take_echo_args(call, &argv, err, sizeof(err)), 0);
    /* Taken, not copied: the very node, and a hole where it was. */
    assert_ptr_equal(argv[0], sent);
    assert_null(call->args[0]);
    assert_string_equal(argv[0]->map_value->entries[39999]->key, "key39999");
    wire_free_detached(m); /* frees the rest of the message around the hole */
    assert_int_equal(pbvalue_length(argv[0]), 40000);
    value_argv_free(argv, 1);
    free(buf);
}

static void test_big_frames_refused_keep_their_arguments(void **state) {
    (void)state;
    size_t len;
    uint8_t *buf = submit_of_map(40000, true, &len);
    char err[512];
    Aiod__ClientMessage *m = detached(buf, len);
    Aiod__Call *call = m->submit->call;
    Aiod__Value **argv = NULL;
    /* The same answer as the borrowed check gives, and nothing taken. */
    assert_int_equal(take_echo_args(call, &argv, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "demo.echo: parameter 'value': duplicate map key \"key0\"");
    assert_non_null(call->args[0]);
    assert_null(argv);
    wire_free_detached(m);
    free(buf);
}

static void test_big_frames_free_odd_nodes(void **state) {
    (void)state;
    /* Nodes pbvalue_free must leave to protobuf-c or treat apart: an entry
     * sent without a key (protobuf-c's shared ""), values and entries with
     * fields it kept as unknown, a null. Under ASan a wrong free or a leak
     * fails the test. */
    size_t len;
    uint8_t *buf = submit_of_map(40000, false, &len);
    Aiod__ClientMessage *m = detached(buf, len);
    Aiod__Map *mv = m->submit->call->args[0]->map_value;
    free(mv->entries[0]->key);
    mv->entries[0]->key = "";
    uint8_t unknown_data[1] = {7};
    ProtobufCMessageUnknownField unknown = {
        .tag = 99, .wire_type = PROTOBUF_C_WIRE_TYPE_VARINT, .len = 1, .data = unknown_data};
    mv->entries[1]->value->base.n_unknown_fields = 1;
    mv->entries[1]->value->base.unknown_fields = &unknown;
    mv->entries[2]->base.n_unknown_fields = 1;
    mv->entries[2]->base.unknown_fields = &unknown;
    /* pbvalue_null() leaves the kind unset; a client may send the Null
     * message itself. */
    Aiod__Value *nv = mv->entries[3]->value;
    Aiod__Null *null = malloc(sizeof(*null));
    assert_non_null(null);
    aiod__null__init(null);
    nv->kind_case = AIOD__VALUE__KIND_NULL_VALUE;
    nv->null_value = null;
    size_t len2 = aiod__client_message__get_packed_size(m);
    uint8_t *buf2 = malloc(len2);
    assert_non_null(buf2);
    assert_int_equal(aiod__client_message__pack(m, buf2), len2);
    /* Put back what this test set by hand before the message is freed. */
    mv->entries[0]->key = strdup("key0");
    mv->entries[1]->value->base.n_unknown_fields = 0;
    mv->entries[1]->value->base.unknown_fields = NULL;
    mv->entries[2]->base.n_unknown_fields = 0;
    mv->entries[2]->base.unknown_fields = NULL;
    wire_free_detached(m);

    m = detached(buf2, len2);
    mv = m->submit->call->args[0]->map_value;
    assert_ptr_equal(mv->entries[0]->key, protobuf_c_empty_string);
    assert_int_equal(mv->entries[1]->value->base.n_unknown_fields, 1);
    assert_int_equal(mv->entries[2]->base.n_unknown_fields, 1);
    assert_int_equal(mv->entries[3]->value->kind_case, AIOD__VALUE__KIND_NULL_VALUE);
    wire_free_detached(m);
    free(buf2);
    free(buf);
}

static void test_big_garbage_is_refused(void **state) {
    (void)state;
    size_t len;
    uint8_t *buf = submit_of_map(40000, false, &len);
    Aiod__ClientMessage *m = NULL;
    char why[256];
    /* Cut inside the map: a length that runs past the end, which the
     * pre-check sees. */
    assert_int_equal(wire_decode_detached(buf, len - 3, &m, why, sizeof(why)), -EBADMSG);
    assert_string_equal(why, "not a valid protobuf ClientMessage");
    /* Well-formed protobuf, but request_id (a varint) sent as bytes:
     * protobuf-c's unpack refuses it, freeing what it had built. */
    uint8_t *bad = realloc(buf, len + 2);
    assert_non_null(bad);
    bad[len] = 1 << 3 | 2;
    bad[len + 1] = 0;
    assert_int_equal(wire_decode_detached(bad, len + 2, &m, why, sizeof(why)), -EBADMSG);
    assert_string_equal(why, "not a valid ClientMessage");
    /* The arena's decoder says the same of both. */
    assert_int_equal(wire_decode(bad, len + 2, &m, why, sizeof(why)), -EBADMSG);
    assert_string_equal(why, "not a valid ClientMessage");
    assert_int_equal(wire_decode(bad, len - 3, &m, why, sizeof(why)), -EBADMSG);
    assert_string_equal(why, "not a valid protobuf ClientMessage");
    free(bad);
}

/* A pool thread's share: decode big frames, take an argument, free. What
 * went wrong, or NULL (cmocka's asserts belong to the main thread). */
static void *decode_and_free(void *arg) {
    const uint8_t *buf = arg;
    size_t len = 0;
    memcpy(&len, buf, sizeof(len));
    for (int i = 0; i < 4; i++) {
        Aiod__ClientMessage *m = NULL;
        char why[256];
        if (wire_decode_detached(buf + sizeof(len), len, &m, why, sizeof(why)) < 0)
            return "the big frame did not decode";
        Aiod__Value *v = m->submit->call->args[0];
        m->submit->call->args[0] = NULL;
        wire_free_detached(m);
        if (pbvalue_length(v) != 40000)
            return "the taken map lost entries";
        pbvalue_free(v);
    }
    return NULL;
}

static void test_detached_on_threads(void **state) {
    (void)state;
    /* Two threads decode and free big frames while this one uses the
     * arena: they share nothing (TSan checks the claim in its build). */
    size_t len, small_len;
    uint8_t *big = submit_of_map(40000, false, &len);
    uint8_t *buf = malloc(sizeof(len) + len);
    assert_non_null(buf);
    memcpy(buf, &len, sizeof(len));
    memcpy(buf + sizeof(len), big, len);
    uint8_t *small = submit_of_map(1000, false, &small_len);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, decode_and_free, buf), 0);
    for (int i = 0; i < 50; i++) {
        Aiod__ClientMessage *m = decoded(small, small_len);
        assert_int_equal(pbvalue_length(m->submit->call->args[0]), 1000);
        wire_free(m);
    }
    for (int i = 0; i < 2; i++) {
        void *failed = NULL;
        assert_int_equal(pthread_join(th[i], &failed), 0);
        assert_null(failed);
    }
    wire_done();
    free(small);
    free(buf);
    free(big);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_takes_any_size),
        cmocka_unit_test(test_big_frames_give_their_arguments),
        cmocka_unit_test(test_big_frames_refused_keep_their_arguments),
        cmocka_unit_test(test_big_frames_free_odd_nodes),
        cmocka_unit_test(test_big_garbage_is_refused),
        cmocka_unit_test(test_detached_on_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
