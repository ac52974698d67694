/*
 * Tests of libaioclient's values (client/lib/value.c): building and
 * inspecting every type, JSON both ways, wrong-type accessors, invalid
 * UTF-8, argument checks, and out-of-memory in the constructors.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aioc.h"
#include "alloc.h"

static void test_scalars(void **state) {
    aioc_value *v;

    v = aioc_value_null();
    assert_int_equal(aioc_value_type(v), AIOC_TYPE_NULL);
    aioc_value_free(v);

    v = aioc_value_bool(7);
    assert_int_equal(aioc_value_type(v), AIOC_TYPE_BOOL);
    assert_int_equal(aioc_value_get_bool(v), 1);
    aioc_value_free(v);

    v = aioc_value_int(INT64_MIN);
    assert_int_equal(aioc_value_type(v), AIOC_TYPE_INT);
    assert_true(aioc_value_get_int(v) == INT64_MIN);
    assert_true(aioc_value_get_double(v) == (double)INT64_MIN);
    aioc_value_free(v);

    v = aioc_value_double(2.5);
    assert_int_equal(aioc_value_type(v), AIOC_TYPE_DOUBLE);
    assert_true(aioc_value_get_double(v) == 2.5);
    aioc_value_free(v);

    v = aioc_value_string("héllo");
    assert_int_equal(aioc_value_type(v), AIOC_TYPE_STRING);
    assert_string_equal(aioc_value_get_string(v), "héllo");
    aioc_value_free(v);

    size_t len = 99;
    v = aioc_value_bytes("a\0b", 3);
    assert_int_equal(aioc_value_type(v), AIOC_TYPE_BYTES);
    assert_memory_equal(aioc_value_get_bytes(v, &len), "a\0b", 3);
    assert_int_equal(len, 3);
    aioc_value_free(v);

    v = aioc_value_bytes(NULL, 0);
    assert_non_null(aioc_value_get_bytes(v, &len));
    assert_int_equal(len, 0);
    aioc_value_free(v);
    assert_null(aioc_value_bytes(NULL, 3));
}

static void test_wrong_type(void **state) {
    aioc_value *s = aioc_value_string("x"), *i = aioc_value_int(5);
    size_t len = 77;

    assert_int_equal(aioc_value_get_bool(s), 0);
    assert_int_equal(aioc_value_get_int(s), 0);
    assert_true(aioc_value_get_double(s) == 0.0);
    assert_null(aioc_value_get_string(i));
    assert_null(aioc_value_get_bytes(i, &len));
    assert_int_equal(len, 77); /* untouched on failure */
    assert_int_equal(aioc_value_length(i), 0);
    assert_null(aioc_value_list_get(i, 0));
    assert_null(aioc_value_map_get(i, "k"));
    assert_null(aioc_value_map_key(i, 0));
    /* Appending to a non-container takes the item anyway. */
    assert_int_equal(aioc_value_list_append(s, aioc_value_int(1)), -EINVAL);
    assert_int_equal(aioc_value_map_set(s, "k", aioc_value_int(1)), -EINVAL);
    aioc_value_free(s);
    aioc_value_free(i);

    /* NULL everywhere. */
    assert_int_equal(aioc_value_type(NULL), AIOC_TYPE_NULL);
    assert_null(aioc_value_get_string(NULL));
    assert_null(aioc_value_copy(NULL));
    assert_null(aioc_value_to_json(NULL));
    assert_int_equal(aioc_value_list_append(NULL, NULL), -EINVAL);
    assert_int_equal(aioc_value_list_append(NULL, aioc_value_null()), -EINVAL);
    aioc_value_free(NULL);
}

static void test_invalid_utf8(void **state) {
    assert_null(aioc_value_string("\xff"));
    assert_null(aioc_value_string("a\xc3"));
    assert_null(aioc_value_string("\xed\xa0\x80")); /* a surrogate */
    assert_null(aioc_value_string(NULL));
    aioc_value *m = aioc_value_map();
    assert_int_equal(aioc_value_map_set(m, "\xff", aioc_value_int(1)), -EINVAL);
    assert_int_equal(aioc_value_length(m), 0);
    aioc_value_free(m);

    aioc_value *v = NULL;
    assert_int_equal(aioc_value_from_json("\"\xff\"", &v), -EINVAL);
    assert_null(v);
}

static void test_containers(void **state) {
    aioc_value *l = aioc_value_list(), *m = aioc_value_map();

    assert_int_equal(aioc_value_list_append(l, aioc_value_int(1)), 0);
    assert_int_equal(aioc_value_list_append(l, aioc_value_string("two")), 0);
    assert_int_equal(aioc_value_map_set(m, "b", aioc_value_bool(1)), 0);
    assert_int_equal(aioc_value_map_set(m, "a", aioc_value_null()), 0);
    assert_int_equal(aioc_value_map_set(m, "b", aioc_value_int(3)), 0); /* replaces */
    assert_int_equal(aioc_value_list_append(l, m), 0);
    assert_int_equal(aioc_value_list_append(l, l), -EINVAL);

    assert_int_equal(aioc_value_length(l), 3);
    assert_int_equal(aioc_value_get_int(aioc_value_list_get(l, 0)), 1);
    assert_string_equal(aioc_value_get_string(aioc_value_list_get(l, 1)), "two");
    assert_null(aioc_value_list_get(l, 3));
    const aioc_value *mm = aioc_value_list_get(l, 2);
    assert_int_equal(aioc_value_length(mm), 2);
    assert_string_equal(aioc_value_map_key(mm, 0), "b");
    assert_string_equal(aioc_value_map_key(mm, 1), "a");
    assert_null(aioc_value_map_key(mm, 2));
    assert_int_equal(aioc_value_get_int(aioc_value_map_get(mm, "b")), 3);
    assert_null(aioc_value_map_get(mm, "zz"));

    char *json = aioc_value_to_json(l);
    assert_string_equal(json, "[1,\"two\",{\"b\":3,\"a\":null}]");

    aioc_value *c = aioc_value_copy(l);
    char *json2 = aioc_value_to_json(c);
    assert_string_equal(json, json2);
    free(json);
    free(json2);
    aioc_value_free(c);
    aioc_value_free(l);
}

static void round_trip(const char *in, const char *want) {
    aioc_value *v = NULL;
    assert_int_equal(aioc_value_from_json(in, &v), 0);
    char *out = aioc_value_to_json(v);
    assert_non_null(out);
    assert_string_equal(out, want);
    free(out);
    aioc_value_free(v);
}

/* A list nested `depth` levels deep (a scalar is level 1). */
static aioc_value *nested(int depth) {
    aioc_value *v = aioc_value_int(1);
    for (int i = 1; i < depth; i++) {
        aioc_value *l = aioc_value_list();
        assert_int_equal(aioc_value_list_append(l, v), 0);
        v = l;
    }
    return v;
}

/* Values nest at most 32 levels when sent (aioc_value(3)): a deeper one is
 * refused where it is added to a call, not sent to have the daemon drop the
 * whole connection (past 48 levels the frame nests too deep to decode). */
static void test_call_arg_depth(void **state) {
    (void)state;
    aioc_call *call = aioc_call_new("demo.echo");
    assert_int_equal(aioc_call_arg(call, nested(32)), 0);
    /* Deeper ones cannot be built by appending (test_build_depth); JSON
     * (or a daemon's result) can hold one. */
    for (int n = 33; n <= 200; n += 167) {
        char json[512] = "";
        for (int i = 1; i < n; i++)
            strcat(json, "[");
        strcat(json, "1");
        for (int i = 1; i < n; i++)
            strcat(json, "]");
        aioc_value *v = NULL;
        assert_int_equal(aioc_value_from_json(json, &v), 0);
        assert_int_equal(aioc_call_arg(call, v), -EINVAL);
    }
    aioc_call_free(call);
}

/* No value deeper than 32 levels can be built: aioc_value_list_append and
 * aioc_value_map_set refuse one (and free the item). 200,000 levels built
 * this way overflowed the stack in aioc_value_free, 100,000 in
 * aioc_value_to_json, 1,000,000 in aioc_call_arg. */
static void test_build_depth(void **state) {
    (void)state;
    aioc_value *v = nested(32), *l = aioc_value_list(), *m = aioc_value_map();
    assert_int_equal(aioc_value_list_append(l, aioc_value_copy(v)), -EINVAL);
    assert_int_equal(aioc_value_length(l), 0);
    assert_int_equal(aioc_value_map_set(m, "k", aioc_value_copy(v)), -EINVAL);
    assert_int_equal(aioc_value_length(m), 0);
    /* One level less fits, in a list or a map. */
    assert_int_equal(aioc_value_list_append(l, aioc_value_copy(aioc_value_list_get(v, 0))), 0);
    assert_int_equal(aioc_value_map_set(m, "k", aioc_value_copy(aioc_value_list_get(v, 0))), 0);
    aioc_value_free(l);
    aioc_value_free(m);

    /* Deeper and deeper: every level past 32 is refused, and what was
     * built is freed, printed and sent without trouble. */
    int refused = 0;
    for (int i = 0; i < 20000; i++) {
        aioc_value *outer = i % 2 ? aioc_value_list() : aioc_value_map();
        aioc_value *keep = aioc_value_copy(v);
        int r = i % 2 ? aioc_value_list_append(outer, v) : aioc_value_map_set(outer, "k", v);
        if (r == -EINVAL) {
            refused++;
            aioc_value_free(outer);
            v = keep;
        } else {
            assert_int_equal(r, 0);
            aioc_value_free(keep);
            v = outer;
        }
    }
    assert_int_equal(refused, 20000);
    char *json = aioc_value_to_json(v);
    assert_non_null(json);
    free(json);
    aioc_call *call = aioc_call_new("demo.echo");
    assert_int_equal(aioc_call_arg(call, v), 0);
    aioc_call_free(call);
}

static void test_json(void **state) {
    round_trip("null", "null");
    round_trip("true", "true");
    round_trip(" 42 ", "42");
    round_trip("-9223372036854775808", "-9223372036854775808");
    round_trip("1.5", "1.5");
    /* Reals as short as they round-trip, as Python's repr writes them (not
     * 17 digits: 0.10000000000000001), and exact when they need 17. */
    round_trip("0.1", "0.1");
    round_trip("[0.1, 2.5e-3, 100.0]", "[0.1,0.0025,100.0]");
    round_trip("0.30000000000000004", "0.30000000000000004");
    round_trip("1e300", "1e300");
    round_trip("\"a\\u00e9\\n\"", "\"a\xc3\xa9\\n\"");
    round_trip("[1, [2, [3]], {}]", "[1,[2,[3]],{}]");
    round_trip("{\"z\": 1, \"a\": [true]}", "{\"z\":1,\"a\":[true]}");

    aioc_value *v = NULL;
    assert_int_equal(aioc_value_from_json("12", &v), 0);
    assert_int_equal(aioc_value_type(v), AIOC_TYPE_INT);
    aioc_value_free(v);
    v = NULL;
    /* Out of double range: refused or kept, never a crash. */
    if (aioc_value_from_json("1e400", &v) == 0)
        aioc_value_free(v);
    v = NULL;

    assert_int_equal(aioc_value_from_json("", &v), -EINVAL);
    assert_int_equal(aioc_value_from_json("[1,", &v), -EINVAL);
    assert_int_equal(aioc_value_from_json("{\"a\":1,\"a\":2}", &v), -EINVAL);
    assert_int_equal(aioc_value_from_json("nul", &v), -EINVAL);
    assert_int_equal(aioc_value_from_json(NULL, &v), -EINVAL);
    assert_int_equal(aioc_value_from_json("1", NULL), -EINVAL);
    assert_null(v);

    /* Bytes print as {"$bytes": base64}. */
    v = aioc_value_bytes("hi!", 3);
    char *s = aioc_value_to_json(v);
    assert_string_equal(s, "{\"$bytes\":\"aGkh\"}");
    free(s);
    aioc_value_free(v);

    /* Non-finite doubles print as null. */
    v = aioc_value_double(NAN);
    s = aioc_value_to_json(v);
    assert_string_equal(s, "null");
    free(s);
    aioc_value_free(v);
}

static void test_type_names(void **state) {
    assert_string_equal(aioc_type_name(AIOC_TYPE_ANY), "any");
    assert_string_equal(aioc_type_name(AIOC_TYPE_DOUBLE), "double");
    assert_string_equal(aioc_type_name(AIOC_TYPE_MAP), "map");
    assert_string_equal(aioc_type_name(99), "unknown");
    assert_string_equal(aioc_state_name(AIOC_STATE_CANCELLED), "cancelled");
    assert_string_equal(aioc_state_name(0), "unknown");
}

static void test_calls(void **state) {
    aioc_call *c = aioc_call_new("demo.sleep");
    assert_non_null(c);
    assert_int_equal(aioc_call_arg_text(c, "3"), 0);
    assert_int_equal(aioc_call_arg(c, aioc_value_int(1)), -EINVAL); /* no mixing */
    assert_int_equal(aioc_call_arg_text(c, "\xff"), -EINVAL);
    assert_int_equal(aioc_call_arg_text(c, NULL), -EINVAL);
    aioc_call_free(c);

    c = aioc_call_new("demo.sleep");
    assert_int_equal(aioc_call_arg(c, aioc_value_double(1.5)), 0);
    assert_int_equal(aioc_call_arg_text(c, "x"), -EINVAL);
    assert_int_equal(aioc_call_arg(c, NULL), -EINVAL);
    aioc_call_free(c);

    assert_null(aioc_call_new(NULL));
    assert_null(aioc_call_new(""));
    assert_null(aioc_call_new("\xff"));
    assert_null(aioc_call_task(0));
    c = aioc_call_task(5);
    assert_non_null(c);
    assert_int_equal(aioc_call_arg(c, aioc_value_int(1)), -EINVAL);
    assert_int_equal(aioc_call_arg_text(c, "1"), -EINVAL);
    aioc_call_free(c);
    aioc_call_free(NULL);
}

/* Runs `build` with the Nth allocation failing for N = 1, 2, ... until it
 * succeeds; every failure must be a clean NULL (leaks: sanitizer build). */
static void oom_loop(aioc_value *(*build)(void)) {
    for (unsigned long n = 1;; n++) {
        alloc_fail_at(n);
        aioc_value *v = build();
        alloc_fail_at(0);
        if (v) {
            aioc_value_free(v);
            return;
        }
        assert_true(n < 1000);
    }
}

static aioc_value *build_nested(void) {
    aioc_value *l = aioc_value_list(), *m = aioc_value_map();
    aioc_value_map_set(m, "k", aioc_value_string("v"));
    aioc_value_map_set(m, "b", aioc_value_bytes("xyz", 3));
    if (aioc_value_list_append(l, m) < 0 || aioc_value_list_append(l, aioc_value_int(1)) < 0 ||
        aioc_value_length(l) != 2 || aioc_value_length(aioc_value_list_get(l, 0)) != 2) {
        aioc_value_free(l);
        return NULL;
    }
    return l;
}

static aioc_value *build_from_json(void) {
    aioc_value *v = NULL;
    return aioc_value_from_json("{\"a\":[1,2.5,\"x\",null,{\"b\":false}]}", &v) < 0 ? NULL : v;
}

static aioc_value *build_copy(void) {
    aioc_value *v = NULL;
    if (aioc_value_from_json("[1,{\"a\":\"b\"},[null]]", &v) < 0)
        return NULL; /* not under test: only fails with fail_at already active */
    aioc_value *c = aioc_value_copy(v);
    aioc_value_free(v);
    return c;
}

static void test_oom(void **state) {
    oom_loop(aioc_value_null);
    oom_loop(build_nested);
    oom_loop(build_from_json);
    oom_loop(build_copy);

    /* to_json under OOM: NULL, never a crash. */
    aioc_value *v = build_nested();
    for (unsigned long n = 1;; n++) {
        alloc_fail_at(n);
        char *s = aioc_value_to_json(v);
        alloc_fail_at(0);
        if (s) {
            free(s);
            break;
        }
        assert_true(n < 1000);
    }
    aioc_value_free(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_invalid_utf8),   cmocka_unit_test(test_containers),
        cmocka_unit_test(test_json),           cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_calls),          cmocka_unit_test(test_oom),
        cmocka_unit_test(test_call_arg_depth), cmocka_unit_test(test_build_depth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
