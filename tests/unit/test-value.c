/*
 * Values: building, wire round trips, JSON, checks, text conversion and
 * checking calls against signatures, plus an out-of-memory loop.
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

#include "alloc.h"
#include "pbdepth.h"
#include "pbvalue.h"
#include "base/value.h"

static Aiod__Value *sample(void) {
    Aiod__Value *m = pbvalue_map(), *l = pbvalue_list();
    assert_non_null(m);
    assert_non_null(l);
    assert_int_equal(pbvalue_list_append(l, pbvalue_int(-7)), 0);
    assert_int_equal(pbvalue_list_append(l, pbvalue_double(2.5)), 0);
    assert_int_equal(pbvalue_list_append(l, pbvalue_null()), 0);
    assert_int_equal(pbvalue_list_append(l, pbvalue_bool(true)), 0);
    assert_int_equal(pbvalue_map_set(m, "list", l), 0);
    assert_int_equal(pbvalue_map_set(m, "name", pbvalue_string("h\xc3\xa9llo")), 0);
    assert_int_equal(pbvalue_map_set(m, "raw", pbvalue_bytes("\0\1\2", 3)), 0);
    return m;
}

static void test_wire_round_trip(void **state) {
    (void)state;
    Aiod__Value *v = sample();
    size_t n = protobuf_c_message_get_packed_size(&v->base);
    uint8_t *buf = malloc(n);
    protobuf_c_message_pack(&v->base, buf);
    Aiod__Value *back = aiod__value__unpack(&alloc_protobuf, n, buf);
    assert_non_null(back);
    assert_true(pbvalue_equal(v, back));
    Aiod__Value *copy = pbvalue_copy(back);
    assert_true(pbvalue_equal(copy, v));
    assert_int_equal(pbvalue_type(pbvalue_map_get(back, "raw")), PBVALUE_BYTES);
    assert_int_equal(pbvalue_length(pbvalue_map_get(back, "list")), 4);
    pbvalue_free(copy);
    pbvalue_free(back);
    pbvalue_free(v);
    free(buf);
}

static void test_map_replace_and_unique(void **state) {
    (void)state;
    Aiod__Value *m = pbvalue_map();
    assert_int_equal(pbvalue_map_set(m, "k", pbvalue_int(1)), 0);
    assert_int_equal(pbvalue_map_set(m, "k", pbvalue_int(2)), 0);
    assert_int_equal(pbvalue_length(m), 1);
    assert_int_equal(pbvalue_map_get(m, "k")->int_value, 2);
    assert_int_equal(pbvalue_check(m, 4, NULL), 0);
    /* Forge a duplicate the way a hostile client could send one. */
    m->map_value->entries[0]->key[0] = 'k';
    assert_int_equal(pbvalue_map_set(m, "j", pbvalue_int(3)), 0);
    m->map_value->entries[1]->key[0] = 'k';
    const char *why = NULL;
    assert_int_equal(pbvalue_check(m, 4, &why), -EINVAL);
    assert_string_equal(why, "duplicate map key \"k\"");
    pbvalue_free(m);
}

static void test_type_errors(void **state) {
    (void)state;
    Aiod__Value *i = pbvalue_int(1);
    assert_int_equal(pbvalue_list_append(i, pbvalue_int(2)), -EINVAL);
    assert_int_equal(pbvalue_map_set(i, "x", pbvalue_int(2)), -EINVAL);
    assert_null(pbvalue_list_get(i, 0));
    assert_null(pbvalue_string("\xff\xfe"));
    assert_null(pbvalue_string("\xed\xa0\x80")); /* a surrogate */
    assert_null(pbvalue_string("\xc0\xaf"));     /* overlong */
    assert_true(pbvalue_type_fits(PBVALUE_DOUBLE, PBVALUE_INT));
    assert_false(pbvalue_type_fits(PBVALUE_INT, PBVALUE_DOUBLE));
    assert_true(pbvalue_type_fits(PBVALUE_ANY, PBVALUE_MAP));
    pbvalue_free(i);
}

static void test_json(void **state) {
    (void)state;
    Aiod__Value *v = sample();
    char *j = pbvalue_to_json(v);
    assert_string_equal(j, "{\"list\":[-7,2.5,null,true],\"name\":\"h\xc3\xa9llo\","
                           "\"raw\":{\"$bytes\":\"AAEC\"}}");
    free(j);
    pbvalue_free(v);

    Aiod__Value *p = NULL;
    char why[100];
    assert_int_equal(pbvalue_from_json("[1, 2.0, \"x\", {\"a\": null}]", &p, why, sizeof(why)), 0);
    assert_int_equal(pbvalue_type(p), PBVALUE_LIST);
    assert_int_equal(pbvalue_type(pbvalue_list_get(p, 0)), PBVALUE_INT);
    assert_int_equal(pbvalue_type(pbvalue_list_get(p, 1)), PBVALUE_DOUBLE);
    pbvalue_free(p);
    assert_int_equal(pbvalue_from_json("[1,", &p, why, sizeof(why)), -EINVAL);
    assert_int_equal(pbvalue_from_json("{\"a\":1,\"a\":2}", &p, why, sizeof(why)), -EINVAL);
}

/* Values in v, v included (a map's keys are not values). */
static size_t count_values(const Aiod__Value *v) {
    size_t n = 1;
    for (size_t i = 0; pbvalue_type(v) == PBVALUE_LIST && i < pbvalue_length(v); i++)
        n += count_values(pbvalue_list_get(v, i));
    for (size_t i = 0; pbvalue_type(v) == PBVALUE_MAP && i < pbvalue_length(v); i++)
        n += count_values(v->map_value->entries[i]->value);
    return n;
}

/* The scan before the parse counts exactly what the parse makes, measures
 * depth as pbvalue_check does, and leaves text that is not JSON to jansson,
 * whatever it looks like. */
static void test_json_bounded(void **state) {
    (void)state;
    static const char *const texts[] = {
        "0",
        "\"a,b:[c\"",
        "[]",
        "{}",
        "[1,[2,[3]],{\"k\":[true,false,null]}]",
        "{\"a\":{\"b\":\"[\\\"{\"},\"c\":-1.5e3}",
        " [ \"x\" , { \"y\" : [ ] } ] ",
    };
    char why[200];
    for (size_t i = 0; i < sizeof(texts) / sizeof(*texts); i++) {
        Aiod__Value *v = NULL;
        size_t n = 0;
        assert_int_equal(pbvalue_from_json_bounded(texts[i], 32, 1000, &v, &n, why, sizeof(why)),
                         0);
        assert_int_equal(n, count_values(v));
        const char *cwhy;
        assert_int_equal(pbvalue_check(v, 32, &cwhy), 0);
        pbvalue_free(v);
        /* One value fewer allowed: refused before parsing. */
        v = NULL;
        assert_int_equal(pbvalue_from_json_bounded(texts[i], 32, n - 1, &v, NULL, why, sizeof(why)),
                         -E2BIG);
        assert_null(v);
    }
    Aiod__Value *v = NULL;
    /* Depth as pbvalue_check's: a scalar is depth 1. */
    assert_int_equal(pbvalue_from_json_bounded("[[0]]", 3, 10, &v, NULL, why, sizeof(why)), 0);
    pbvalue_free(v);
    v = NULL;
    assert_int_equal(pbvalue_from_json_bounded("[[0]]", 2, 10, &v, NULL, why, sizeof(why)), -ELOOP);
    assert_string_equal(why, "values nested too deeply (more than 2 levels)");
    assert_int_equal(pbvalue_from_json_bounded("{\"a\":{}}", 1, 10, &v, NULL, why, sizeof(why)),
                     -ELOOP);
    /* Not JSON, however many numbers and literals it holds: jansson's
     * refusal, so that `any` takes it as a string. */
    assert_int_equal(pbvalue_from_json_bounded("1 2 3 4 5 6", 32, 2, &v, NULL, why, sizeof(why)),
                     -EINVAL);
    assert_int_equal(
        pbvalue_from_json_bounded("no time for tea", 32, 1, &v, NULL, why, sizeof(why)), -EINVAL);
    assert_null(v);
    assert_int_equal(value_from_text(PBVALUE_ANY, "0 1 true false null", &v, why, sizeof(why)), 0);
    assert_int_equal(pbvalue_type(v), PBVALUE_STRING);
    pbvalue_free(v);
}

static void test_depth(void **state) {
    (void)state;
    Aiod__Value *v = pbvalue_int(1);
    for (int i = 0; i < 40; i++) {
        Aiod__Value *l = pbvalue_list();
        assert_int_equal(pbvalue_list_append(l, v), 0);
        v = l;
    }
    const char *why = NULL;
    assert_int_equal(pbvalue_check(v, 32, &why), -EINVAL);
    assert_string_equal(why, "values nested too deeply");
    assert_int_equal(pbvalue_check(v, 64, NULL), 0);

    /* The encoded form is refused by the pre-check before unpacking. */
    size_t n = protobuf_c_message_get_packed_size(&v->base);
    uint8_t *buf = malloc(n);
    protobuf_c_message_pack(&v->base, buf);
    assert_int_equal(pbdepth_check(&aiod__value__descriptor, buf, n, 50), -ELOOP);
    assert_int_equal(pbdepth_check(&aiod__value__descriptor, buf, n, 100), 0);
    /* Truncated bytes are malformed, not deep. */
    assert_int_equal(pbdepth_check(&aiod__value__descriptor, buf, n - 1, 100), -EBADMSG);
    free(buf);
    pbvalue_free(v);
}

static void test_depth_hostile(void **state) {
    (void)state;
    /* A million levels of Value.list_value / List.items in a few megabytes,
     * written from the innermost level out so every length is right: a
     * recursive decoder would exhaust its stack. The pre-check stops at the
     * limit without recursing. */
    size_t levels = 1000000, cap = levels * 6;
    uint8_t *buf = malloc(cap);
    size_t pos = cap;
    for (size_t k = levels; k-- > 0;) {
        size_t len = cap - pos;
        uint8_t tmp[10];
        size_t n = 0;
        do {
            tmp[n++] = (uint8_t)((len & 0x7f) | (len > 0x7f ? 0x80 : 0));
            len >>= 7;
        } while (len);
        pos -= n;
        memcpy(buf + pos, tmp, n);
        buf[--pos] = k % 2 == 0 ? 0x3a : 0x0a;
    }
    assert_int_equal(pbdepth_check(&aiod__value__descriptor, buf + pos, cap - pos, 100), -ELOOP);
    free(buf);
}

static void test_nul_in_string(void **state) {
    (void)state;
    /* List{items: [Value{string_value: "ok"}, Value{string_value: "a\0b"}]}
     * inside Value.list_value. */
    static const uint8_t v[] = {0x3a, 0x0b, 0x0a, 0x04, 0x2a, 0x02, 'o',
                                'k',  0x0a, 0x03, 0x2a, 0x01, 0x00};
    static const uint8_t nul_mid[] = {0x2a, 0x03, 'a', 0x00, 'b'};
    const ProtobufCMessageDescriptor *msg = NULL;
    const ProtobufCFieldDescriptor *field = NULL;
    /* Only a caller that asks has strings looked into. */
    assert_int_equal(pbdepth_check(&aiod__value__descriptor, v, sizeof(v), 10), 0);
    assert_int_equal(
        pbdepth_check_strings(&aiod__value__descriptor, v, sizeof(v), 10, NULL, 0, &msg, &field),
        -EILSEQ);
    assert_string_equal(msg->short_name, "Value");
    assert_string_equal(field->name, "string_value");
    field = NULL;
    assert_int_equal(pbdepth_check_strings(&aiod__value__descriptor, nul_mid, sizeof(nul_mid), 10,
                                           NULL, 0, NULL, &field),
                     -EILSEQ);
    assert_string_equal(field->name, "string_value");
    /* Bytes may hold NULs. */
    static const uint8_t bytes[] = {0x32, 0x03, 'a', 0x00, 'b'};
    assert_int_equal(pbdepth_check_strings(&aiod__value__descriptor, bytes, sizeof(bytes), 10, NULL,
                                           0, &msg, &field),
                     0);
}

static void test_from_text(void **state) {
    (void)state;
    Aiod__Value *v = NULL;
    char why[256];
    assert_int_equal(value_from_text(PBVALUE_INT, "42", &v, why, sizeof(why)), 0);
    assert_int_equal(v->int_value, 42);
    pbvalue_free(v);
    assert_int_equal(value_from_text(PBVALUE_INT, "010", &v, why, sizeof(why)), 0);
    assert_int_equal(v->int_value, 10);
    pbvalue_free(v);
    /* A leading zero before an 8 or a 9 (a month, "09") is decimal too. */
    assert_int_equal(value_from_text(PBVALUE_INT, "09", &v, why, sizeof(why)), 0);
    assert_int_equal(v->int_value, 9);
    pbvalue_free(v);
    assert_int_equal(value_from_text(PBVALUE_INT, "-019", &v, why, sizeof(why)), 0);
    assert_int_equal(v->int_value, -19);
    pbvalue_free(v);
    assert_int_equal(value_from_text(PBVALUE_INT, "0x", &v, why, sizeof(why)), -EINVAL);
    assert_int_equal(value_from_text(PBVALUE_INT, "0x10", &v, why, sizeof(why)), 0);
    assert_int_equal(v->int_value, 16);
    pbvalue_free(v);
    assert_int_equal(value_from_text(PBVALUE_INT, "4x", &v, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "expected int, got \"4x\"");
    assert_int_equal(value_from_text(PBVALUE_INT, "99999999999999999999", &v, why, sizeof(why)),
                     -EINVAL);
    assert_int_equal(value_from_text(PBVALUE_DOUBLE, "2.5e1", &v, why, sizeof(why)), 0);
    assert_true(v->double_value == 25.0);
    pbvalue_free(v);
    assert_int_equal(value_from_text(PBVALUE_DOUBLE, "inf", &v, why, sizeof(why)), -EINVAL);
    assert_int_equal(value_from_text(PBVALUE_BOOL, "Yes", &v, why, sizeof(why)), 0);
    assert_true(v->bool_value);
    pbvalue_free(v);
    assert_int_equal(value_from_text(PBVALUE_LIST, "[1,2]", &v, why, sizeof(why)), 0);
    assert_int_equal(pbvalue_length(v), 2);
    pbvalue_free(v);
    assert_int_equal(value_from_text(PBVALUE_LIST, "{}", &v, why, sizeof(why)), -EINVAL);
    assert_int_equal(value_from_text(PBVALUE_ANY, "abc", &v, why, sizeof(why)), 0);
    assert_string_equal(v->string_value, "abc");
    pbvalue_free(v);
    assert_int_equal(value_from_text(PBVALUE_ANY, "3", &v, why, sizeof(why)), 0);
    assert_int_equal(pbvalue_type(v), PBVALUE_INT);
    pbvalue_free(v);
    assert_int_equal(value_from_text(PBVALUE_STRING, "3", &v, why, sizeof(why)), 0);
    assert_string_equal(v->string_value, "3");
    pbvalue_free(v);
}

static value_param params[2];
static value_sig sig = {"demo.sleep", params, 2};

static int setup_sig(void **state) {
    (void)state;
    params[0] = (value_param){"seconds", PBVALUE_DOUBLE, NULL};
    params[1] = (value_param){"result", PBVALUE_ANY, pbvalue_null()};
    return 0;
}

static int teardown_sig(void **state) {
    (void)state;
    pbvalue_free(params[1].default_value);
    return 0;
}

static void test_check_call(void **state) {
    (void)state;
    Aiod__Value **argv = NULL;
    char err[512];

    /* Text arguments converted by declared type, default filled in. */
    Aiod__Value *a1[] = {pbvalue_string("1.5")};
    assert_int_equal(value_check_call(&sig, a1, 1, true, 32, &argv, err, sizeof(err)), 0);
    assert_null(a1[0]);
    assert_true(argv[0]->double_value == 1.5);
    assert_int_equal(pbvalue_type(argv[1]), PBVALUE_NULL);
    value_argv_free(argv, 2);

    /* A bad text argument names function, parameter and value. */
    Aiod__Value *a2[] = {pbvalue_string("abc")};
    assert_int_equal(value_check_call(&sig, a2, 1, true, 32, &argv, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "demo.sleep: parameter 'seconds': expected double, got \"abc\"");
    assert_null(a2[0]);

    /* Typed: an int where a double is declared is converted. */
    Aiod__Value *a3[] = {pbvalue_int(2), pbvalue_string("x")};
    assert_int_equal(value_check_call(&sig, a3, 2, false, 32, &argv, err, sizeof(err)), 0);
    assert_int_equal(pbvalue_type(argv[0]), PBVALUE_DOUBLE);
    assert_true(argv[0]->double_value == 2.0);
    value_argv_free(argv, 2);

    /* Typed: wrong type. */
    Aiod__Value *a4[] = {pbvalue_string("x")};
    assert_int_equal(value_check_call(&sig, a4, 1, false, 32, &argv, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "demo.sleep: parameter 'seconds': expected double, got string \"x\"");

    /* Missing and extra arguments. */
    assert_int_equal(value_check_call(&sig, NULL, 0, false, 32, &argv, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "demo.sleep: missing argument 'seconds' (double)");
    Aiod__Value *a5[] = {pbvalue_int(1), pbvalue_int(2), pbvalue_int(3)};
    assert_int_equal(value_check_call(&sig, a5, 3, false, 32, &argv, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "demo.sleep: takes at most 2 arguments (3 given)");
    assert_null(a5[2]);
}

static void test_check_call_oom(void **state) {
    (void)state;
    /* Every allocation in turn fails; each must give -ENOMEM and no leak
     * (the sanitizer build checks the leaks). */
    for (unsigned long nth = 1;; nth++) {
        Aiod__Value *args[] = {pbvalue_string("1.5"), pbvalue_string("[1,{\"a\":2}]")};
        Aiod__Value **argv = NULL;
        char err[256];
        alloc_fail_at(nth);
        int r = value_check_call(&sig, args, 2, true, 32, &argv, err, sizeof(err));
        alloc_fail_at(0);
        if (r == 0) {
            value_argv_free(argv, 2);
            break;
        }
        assert_int_equal(r, -ENOMEM);
        assert_true(nth < 1000);
    }
    for (unsigned long nth = 1;; nth++) {
        Aiod__Value *v = sample();
        alloc_fail_at(nth);
        Aiod__Value *c = pbvalue_copy(v);
        alloc_fail_at(0);
        pbvalue_free(v);
        if (c) {
            pbvalue_free(c);
            break;
        }
        assert_true(nth < 1000);
    }
}

static void test_check_call_rest(void **state) {
    (void)state;
    value_param rp[2] = {{"program", PBVALUE_STRING, NULL},
                         {"args", PBVALUE_STRING | VALUE_REST, NULL}};
    value_sig rsig = {"proc.exec", rp, 2};
    Aiod__Value **argv = NULL;
    char err[512];

    Aiod__Value *a1[] = {pbvalue_string("make"), pbvalue_string("-j2"), pbvalue_string("all")};
    assert_int_equal(value_check_call(&rsig, a1, 3, true, 32, &argv, err, sizeof(err)), 0);
    assert_string_equal(argv[0]->string_value, "make");
    assert_int_equal(pbvalue_length(argv[1]), 2);
    assert_string_equal(pbvalue_list_get(argv[1], 1)->string_value, "all");
    value_argv_free(argv, 2);

    /* No extra arguments: an empty list. */
    Aiod__Value *a2[] = {pbvalue_string("true")};
    assert_int_equal(value_check_call(&rsig, a2, 1, true, 32, &argv, err, sizeof(err)), 0);
    assert_int_equal(pbvalue_type(argv[1]), PBVALUE_LIST);
    assert_int_equal(pbvalue_length(argv[1]), 0);
    value_argv_free(argv, 2);

    /* Typed arguments are checked one by one against the item type. */
    rp[1].type = PBVALUE_INT | VALUE_REST;
    Aiod__Value *a3[] = {pbvalue_string("x"), pbvalue_int(1), pbvalue_string("two")};
    assert_int_equal(value_check_call(&rsig, a3, 3, false, 32, &argv, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "proc.exec: parameter 'args': expected int, got string \"two\"");
}

/* A map arg for demo.echo-like signatures: n entries k0..k<n-1> (n > 0)
 * whose last entry is then broken as asked. */
enum { BREAK_NONE, BREAK_DUP, BREAK_NO_VALUE, BREAK_KEY };
static Aiod__Value *map_of(size_t n, int how) {
    /* Built as the decoder builds it (one array, no key search), so that
     * building costs linear time also under AddressSanitizer. */
    Aiod__Value *m = pbvalue_map();
    char key[32];
    m->map_value->entries = alloc_malloc(n * sizeof(*m->map_value->entries));
    assert_non_null(m->map_value->entries);
    for (size_t i = 0; i < n; i++) {
        Aiod__MapEntry *e = alloc_malloc(sizeof(*e));
        aiod__map_entry__init(e);
        snprintf(key, sizeof(key), "k%zu", i);
        e->key = alloc_strdup(key);
        e->value = pbvalue_int((int64_t)i);
        m->map_value->entries[m->map_value->n_entries++] = e;
    }
    Aiod__MapEntry *e = m->map_value->entries[n - 1];
    if (how == BREAK_DUP) {
        free(e->key);
        e->key = alloc_strdup("k0");
    } else if (how == BREAK_NO_VALUE) {
        pbvalue_free(e->value);
        e->value = NULL;
    } else if (how == BREAK_KEY) {
        free(e->key);
        e->key = alloc_strdup("k\xc3");
    }
    return m;
}

static void test_borrowed_map_rules(void **state) {
    (void)state;
    value_param ep[1] = {{"value", PBVALUE_ANY, NULL}};
    value_sig esig = {"demo.echo", ep, 1};
    Aiod__Value **argv = NULL;
    char err[512];
    struct {
        int how;
        const char *err;
    } cases[] = {
        {BREAK_DUP, "demo.echo: parameter 'value': duplicate map key \"k0\""},
        {BREAK_NO_VALUE, "demo.echo: parameter 'value': missing value for map key \"k999\""},
        {BREAK_KEY, "demo.echo: parameter 'value': map key is not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
        for (int text = 0; text < 2; text++) {
            Aiod__Value *args[] = {map_of(1000, cases[i].how)};
            /* Refused before anything is copied: at most the one array the
             * duplicate check sorts. */
            alloc_fail_at(1000000);
            int r = value_check_call_borrowed(&esig, args, 1, text, 32, &argv, err, sizeof(err));
            unsigned long allocs = alloc_count();
            alloc_fail_at(0);
            assert_int_equal(r, -EINVAL);
            assert_string_equal(err, cases[i].err);
            assert_true(allocs <= 1);
            pbvalue_free(args[0]);
        }
    /* Nested, too. */
    Aiod__Value *outer = pbvalue_map();
    assert_int_equal(pbvalue_map_set(outer, "in", map_of(3, BREAK_KEY)), 0);
    Aiod__Value *a1[] = {outer};
    assert_int_equal(value_check_call_borrowed(&esig, a1, 1, false, 32, &argv, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "demo.echo: parameter 'value': map key is not valid UTF-8");
    pbvalue_free(outer);

    /* Text arguments are strings: a map is refused as such, before a copy. */
    Aiod__Value *a2[] = {map_of(10, BREAK_NONE)};
    alloc_fail_at(1000000);
    int r = value_check_call_borrowed(&esig, a2, 1, true, 32, &argv, err, sizeof(err));
    unsigned long allocs = alloc_count();
    alloc_fail_at(0);
    assert_int_equal(r, -EINVAL);
    assert_string_equal(err, "demo.echo: parameter 'value': text arguments must be strings");
    assert_true(allocs <= 1);
    /* So are too many arguments. */
    Aiod__Value *a3[] = {a2[0], a2[0]};
    alloc_fail_at(1000000);
    r = value_check_call_borrowed(&esig, a3, 2, false, 32, &argv, err, sizeof(err));
    allocs = alloc_count();
    alloc_fail_at(0);
    assert_int_equal(r, -EINVAL);
    assert_string_equal(err, "demo.echo: takes at most 1 argument (2 given)");
    assert_int_equal(allocs, 0);

    /* A valid map is copied whole, in its order, and the original kept. */
    assert_int_equal(value_check_call_borrowed(&esig, a2, 1, false, 32, &argv, err, sizeof(err)),
                     0);
    assert_true(pbvalue_equal(argv[0], a2[0]));
    assert_string_equal(argv[0]->map_value->entries[9]->key, "k9");
    value_argv_free(argv, 1);
    pbvalue_free(a2[0]);
}

/* A verdict hook (value_verdict_fn) that refuses the value given as ctx. */
static int refuse_one(const void *ctx, const Aiod__Value *v, const char **why) {
    if (v != ctx)
        return 0;
    *why = "refused elsewhere";
    return -EINVAL;
}

static void test_take(void **state) {
    (void)state;
    value_param ep[1] = {{"value", PBVALUE_ANY, NULL}};
    value_sig esig = {"demo.echo", ep, 1};
    Aiod__Value **argv = NULL;
    char err[512];
    /* Refused by the checks: the same message as the borrowed check, and
     * the argument left where it was, whole. */
    Aiod__Value *a1[] = {map_of(1000, BREAK_DUP)};
    Aiod__Value *sent = a1[0];
    assert_int_equal(
        value_check_call_take(&esig, a1, 1, false, 32, NULL, NULL, NULL, &argv, err, sizeof(err)),
        -EINVAL);
    assert_string_equal(err, "demo.echo: parameter 'value': duplicate map key \"k0\"");
    assert_ptr_equal(a1[0], sent);
    assert_int_equal(pbvalue_length(a1[0]), 1000);
    pbvalue_free(a1[0]);
    /* Accepted: the very value, without one allocation but the vector. */
    Aiod__Value *a2[] = {map_of(1000, BREAK_NONE)};
    sent = a2[0];
    alloc_fail_at(1000000);
    int r =
        value_check_call_take(&esig, a2, 1, false, 32, NULL, NULL, NULL, &argv, err, sizeof(err));
    unsigned long allocs = alloc_count();
    alloc_fail_at(0);
    assert_int_equal(r, 0);
    assert_true(allocs <= 2); /* the vector, and the duplicate check's sort */
    assert_ptr_equal(argv[0], sent);
    assert_null(a2[0]);
    value_argv_free(argv, 1);
    /* Text arguments are converted: the string is freed, its slot NULL. */
    value_param ip[2] = {{"n", PBVALUE_INT, NULL}, {"d", PBVALUE_DOUBLE, NULL}};
    value_sig isig = {"t.f", ip, 2};
    Aiod__Value *a3[] = {pbvalue_string("42"), pbvalue_string("2.5")};
    assert_int_equal(
        value_check_call_take(&isig, a3, 2, true, 32, NULL, NULL, NULL, &argv, err, sizeof(err)),
        0);
    assert_null(a3[0]);
    assert_null(a3[1]);
    assert_int_equal(argv[0]->int_value, 42);
    assert_true(argv[1]->double_value == 2.5);
    value_argv_free(argv, 2);
    /* Refused past the checks (a conversion): every slot freed and NULL. */
    Aiod__Value *a4[] = {pbvalue_string("42"), pbvalue_string("x")};
    assert_int_equal(
        value_check_call_take(&isig, a4, 2, true, 32, NULL, NULL, NULL, &argv, err, sizeof(err)),
        -EINVAL);
    assert_null(a4[0]);
    assert_null(a4[1]);
    /* Verdicts made beforehand (on a pool thread, offload.c) stand in for
     * pbvalue_check: a refusal comes under the parameter's name, with
     * nothing taken... */
    Aiod__Value *a5[] = {pbvalue_string("a"), pbvalue_string("b")};
    value_param sp[2] = {{"first", PBVALUE_STRING, NULL}, {"second", PBVALUE_STRING, NULL}};
    value_sig ssig = {"t.s", sp, 2};
    assert_int_equal(value_check_call_take(&ssig, a5, 2, false, 32, refuse_one, NULL, a5[1], &argv,
                                           err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "t.s: parameter 'second': refused elsewhere");
    assert_non_null(a5[0]);
    assert_non_null(a5[1]);
    /* ...and a value they pass is not checked again: this duplicate key is
     * taken as it is, since the hook said yes. */
    Aiod__Value *a6[] = {map_of(10, BREAK_DUP)};
    assert_int_equal(value_check_call_take(&esig, a6, 1, false, 32, refuse_one, NULL, a5[0], &argv,
                                           err, sizeof(err)),
                     0);
    assert_null(a6[0]);
    value_argv_free(argv, 1);
    pbvalue_free(a5[0]);
    pbvalue_free(a5[1]);
}

static void test_big_maps(void **state) {
    (void)state;
    /* The worst shape of a full frame: about 230k keys. Quadratic work here
     * would take minutes; the test's timeout catches it. */
    value_param ep[1] = {{"value", PBVALUE_ANY, NULL}};
    value_sig esig = {"demo.echo", ep, 1};
    Aiod__Value **argv = NULL;
    char err[512];
    enum { N = 230000 };
    Aiod__Value *a1[] = {map_of(N, BREAK_NONE)};
    assert_int_equal(value_check_call_borrowed(&esig, a1, 1, false, 32, &argv, err, sizeof(err)),
                     0);
    assert_int_equal(pbvalue_length(argv[0]), N);
    value_argv_free(argv, 1);
    pbvalue_free(a1[0]);
    Aiod__Value *a2[] = {map_of(N, BREAK_DUP)};
    assert_int_equal(value_check_call_borrowed(&esig, a2, 1, false, 32, &argv, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "demo.echo: parameter 'value': duplicate map key \"k0\"");
    pbvalue_free(a2[0]);

    /* The same as JSON text: keys are not searched one by one either. */
    size_t cap = (size_t)N * 24 + 2, len = 0;
    char *json = malloc(cap);
    json[len++] = '{';
    for (size_t i = 0; i < N; i++)
        len += (size_t)snprintf(json + len, cap - len, "%s\"k%zu\":%zu", i ? "," : "", i, i);
    json[len++] = '}';
    json[len] = '\0';
    Aiod__Value *v = NULL;
    assert_int_equal(value_from_text(PBVALUE_MAP, json, &v, err, sizeof(err)), 0);
    assert_int_equal(pbvalue_length(v), N);
    assert_int_equal(pbvalue_map_get(v, "k7")->int_value, 7);
    pbvalue_free(v);
    free(json);
}

static void test_quoted_values_cut_between_characters(void **state) {
    (void)state;
    char err[512], text[200];
    /* "x" then 2-byte characters: byte 60 is inside one. */
    text[0] = 'x';
    for (size_t i = 1; i < 181; i += 2)
        memcpy(text + i, "\xc3\xa9", 2);
    text[181] = '\0';
    Aiod__Value *v = NULL;
    assert_int_equal(value_from_text(PBVALUE_INT, text, &v, err, sizeof(err)), -EINVAL);
    assert_true(pbvalue_utf8_valid(err, strlen(err)));
    char want[128];
    snprintf(want, sizeof(want), "expected int, got \"%.59s\"", text);
    assert_string_equal(err, want);
    assert_int_equal(value_from_text(PBVALUE_MAP, text, &v, err, sizeof(err)), -EINVAL);
    assert_true(pbvalue_utf8_valid(err, strlen(err)));
    Aiod__Value *s = pbvalue_string(text);
    value_describe(s, err, sizeof(err));
    snprintf(want, sizeof(want), "string \"%.59s\"", text);
    assert_string_equal(err, want);
    pbvalue_free(s);
}

/* A thread that asks keeps freed nodes, of any kind and from the wire too,
 * for its next values, most recent first, up to the number it set. */
static void test_node_cache(void **state) {
    (void)state;
    pbvalue_node_cache(2);
    Aiod__Value *i = pbvalue_int(1), *s = pbvalue_string("text");
    pbvalue_free(i);
    pbvalue_free(s);
    Aiod__Value *d = pbvalue_double(1.5), *b = pbvalue_bool(true), *n = pbvalue_null();
    assert_ptr_equal(d, s);
    assert_ptr_equal(b, i);
    assert_ptr_not_equal(n, i);
    assert_ptr_not_equal(n, s);
    /* Each comes back as a whole new value of its kind. */
    assert_int_equal(pbvalue_type(d), PBVALUE_DOUBLE);
    assert_true(d->double_value == 1.5);
    assert_int_equal(pbvalue_type(b), PBVALUE_BOOL);
    assert_int_equal(d->base.n_unknown_fields, 0);
    /* A node unpacked from the wire is taken too (the cache is empty). */
    Aiod__Value *w = pbvalue_int(7);
    uint8_t buf[32];
    size_t len = aiod__value__pack(w, buf);
    Aiod__Value *u = aiod__value__unpack(&alloc_protobuf, len, buf);
    assert_non_null(u);
    assert_int_equal(u->int_value, 7);
    pbvalue_free(u);
    Aiod__Value *again = pbvalue_int(8);
    assert_ptr_equal(again, u);
    assert_int_equal(again->int_value, 8);
    /* Past the number kept, a free goes to malloc. */
    pbvalue_free(again);
    pbvalue_free(w);
    pbvalue_free(n);
    pbvalue_free(b);
    pbvalue_free(d);
    /* Off: what is kept is freed (ASan and valgrind see no leak), and the
     * next free goes to malloc. */
    pbvalue_node_cache(0);
    Aiod__Value *x = pbvalue_int(3);
    pbvalue_free(x);
    Aiod__Value *y = pbvalue_list();
    assert_non_null(y);
    pbvalue_free(y);
}

/* UTF-8 as Unicode's table 3-7 of well-formed byte sequences gives it, one
 * character at a time: the reference pbvalue_utf8_valid must agree with. */
static bool utf8_reference(const unsigned char *p, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        unsigned char lo = 0x80, hi = 0xBF;
        size_t n;
        if (c <= 0x7F) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
        } else if (c == 0xE0) {
            n = 3, lo = 0xA0; /* no overlongs */
        } else if (c == 0xED) {
            n = 3, hi = 0x9F; /* no surrogates */
        } else if (c >= 0xE1 && c <= 0xEF) {
            n = 3;
        } else if (c == 0xF0) {
            n = 4, lo = 0x90; /* no overlongs */
        } else if (c == 0xF4) {
            n = 4, hi = 0x8F; /* nothing past U+10FFFF */
        } else if (c >= 0xF1 && c <= 0xF3) {
            n = 4;
        } else {
            return false;
        }
        if (len - i < n || p[i + 1] < lo || p[i + 1] > hi)
            return false;
        for (size_t k = 2; k < n; k++)
            if (p[i + k] < 0x80 || p[i + k] > 0xBF)
                return false;
        i += n;
    }
    return true;
}

/* Checks the len bytes at p from a copy of exactly that size, so that
 * AddressSanitizer sees a validator that reads past the end. */
static void check_utf8(const unsigned char *p, size_t len) {
    unsigned char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, p, len);
    bool want = utf8_reference(p, len);
    bool got = pbvalue_utf8_valid((const char *)copy, len);
    free(copy);
    if (got != want) {
        char hex[3 * 80 + 1] = "";
        for (size_t i = 0; i < len && i < 80; i++)
            snprintf(hex + 3 * i, 4, "%02x ", p[i]);
        fail_msg("pbvalue_utf8_valid of %zu bytes (%s) should be %d", len, hex, want);
    }
}

/* pbvalue_utf8_valid against the reference: every sequence of 1 and 2
 * bytes, every lead byte with every second byte before valid and invalid
 * tails (overlongs, surrogates, past U+10FFFF, truncations), and each such
 * piece put at every offset of ASCII runs longer than the validator's
 * word-at-a-time fast path, so that a character or a bad byte straddles or
 * ends each 8- and 16-byte block, and a run ends in every place. */
static void test_utf8_valid_exact(void **state) {
    (void)state;
    unsigned char b[96];
    for (unsigned x = 0; x < 256; x++) {
        b[0] = (unsigned char)x;
        check_utf8(b, 1);
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (unsigned char)y;
            check_utf8(b, 2);
        }
    }
    static const unsigned char tails[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90,
                                          0x9F, 0xA0, 0xBF, 0xC0, 0xF5, 0xFF};
    static unsigned char pieces[128 * 8 * 4][4];
    static size_t lens[sizeof(pieces) / sizeof(pieces[0])];
    size_t n_pieces = 0;
    for (unsigned x = 0x80; x < 256; x++)
        for (unsigned y = 0; y < 256; y++) {
            for (size_t t1 = 0; t1 < sizeof(tails); t1++) {
                b[0] = (unsigned char)x, b[1] = (unsigned char)y, b[2] = tails[t1];
                check_utf8(b, 3);
                for (size_t t2 = 0; t2 < sizeof(tails); t2++) {
                    b[3] = tails[t2];
                    check_utf8(b, 4);
                }
                b[3] = 0x80;
                check_utf8(b, 4);
            }
            b[0] = (unsigned char)x, b[1] = (unsigned char)y, b[2] = 0x80, b[3] = 0x80;
            check_utf8(b, 3);
            check_utf8(b, 4);
            /* A sample of pieces for the offsets below: each lead byte with
             * its second byte at the edges of the ranges that matter. */
            if (y == 0x41 || y == 0x80 || y == 0x8F || y == 0x90 || y == 0x9F || y == 0xA0 ||
                y == 0xBF || y == 0xC0)
                for (size_t len = 1; len <= 4; len++) {
                    memcpy(pieces[n_pieces], b, 4);
                    lens[n_pieces++] = len;
                }
        }
    for (size_t k = 0; k < n_pieces; k++)
        for (size_t at = 0; at < 40; at++)
            for (size_t total = at + lens[k]; total <= at + lens[k] + 18; total += 3) {
                memset(b, 'a', sizeof(b));
                memcpy(b + at, pieces[k], lens[k]);
                check_utf8(b, total);
                if (total > at + lens[k]) /* also a second character after */
                    b[total - 1] = 0xC3, check_utf8(b, total);
            }
    /* Long ASCII runs, each with one byte of the high half at every
     * offset, or a valid character of every width ending at the last. */
    static const char *chars[] = {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
                                  "\xF4\x8F\xBF\xBF"};
    for (size_t len = 0; len <= sizeof(b); len++) {
        memset(b, 'z', sizeof(b));
        check_utf8(b, len);
        for (size_t i = 0; i < len; i++) {
            b[i] = 0x80;
            check_utf8(b, len);
            b[i] = 0xFF;
            check_utf8(b, len);
            b[i] = 0xC3; /* a lead whose tail is ASCII or missing */
            check_utf8(b, len);
            b[i] = 'z';
        }
        for (size_t c = 0; c < 4; c++) {
            size_t w = strlen(chars[c]);
            if (w > len)
                continue;
            memcpy(b + len - w, chars[c], w);
            assert_true(pbvalue_utf8_valid((const char *)b, len));
            check_utf8(b, len - 1); /* cut short */
            memset(b, 'z', sizeof(b));
        }
    }
    /* Random text, mostly ASCII with some of everything else. */
    srand(777);
    for (int round = 0; round < 200000; round++) {
        size_t len = (size_t)(rand() % (int)sizeof(b));
        for (size_t i = 0; i < len; i++) {
            int r = rand();
            b[i] = (unsigned char)(r % 8 ? 0x20 + (r >> 3) % 0x5F : (r >> 3) % 256);
        }
        check_utf8(b, len);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_round_trip),
        cmocka_unit_test(test_map_replace_and_unique),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_json_bounded),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_depth_hostile),
        cmocka_unit_test(test_nul_in_string),
        cmocka_unit_test(test_from_text),
        cmocka_unit_test_setup_teardown(test_check_call, setup_sig, teardown_sig),
        cmocka_unit_test_setup_teardown(test_check_call_oom, setup_sig, teardown_sig),
        cmocka_unit_test(test_check_call_rest),
        cmocka_unit_test(test_borrowed_map_rules),
        cmocka_unit_test(test_take),
        cmocka_unit_test(test_big_maps),
        cmocka_unit_test(test_node_cache),
        cmocka_unit_test(test_quoted_values_cut_between_characters),
        cmocka_unit_test(test_utf8_valid_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
