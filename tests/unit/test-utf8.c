/*
 * base/utf8: validation against the protocol's own checker on random bytes,
 * every class of malformed sequence, replacement by maximal subparts (the
 * example of the Unicode standard, chapter 3), cutting on character
 * boundaries, output bounds and allocation failure; and the one place that
 * makes every output line valid (core/output.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "base/utf8.h"
#include "core/output.h"
#include "pbvalue.h"

#define R UTF8_REPLACEMENT

static void check_sanitize(const char *in, size_t len, const char *want) {
    char buf[256];
    size_t n = utf8_sanitize_into(buf, sizeof(buf), in, len);
    assert_int_equal(n, strlen(want));
    assert_string_equal(buf, want);
    size_t n2 = 0;
    char *d = utf8_sanitize(in, len, 1000, &n2);
    assert_non_null(d);
    assert_int_equal(n2, n);
    assert_string_equal(d, want);
    free(d);
}

static void test_valid(void **state) {
    (void)state;
    const char *ok[] = {"",
                        "plain",
                        "caf\xC3\xA9",
                        "\xE2\x82\xAC",
                        "\xF0\x9F\x98\x80",
                        "\xEF\xBF\xBF",
                        "\xF4\x8F\xBF\xBF",
                        "\xED\x9F\xBF",
                        "\xEE\x80\x80"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
        size_t len = strlen(ok[i]);
        assert_int_equal(utf8_valid_prefix(ok[i], len), len);
        assert_true(utf8_valid_text(ok[i], len));
        check_sanitize(ok[i], len, ok[i]);
    }
    assert_int_equal(utf8_char_len("\xF0\x9F\x98\x80", 4), 4);
    assert_int_equal(utf8_char_len("\xF0\x9F\x98\x80", 3), 0); /* truncated */
    assert_int_equal(utf8_char_len("a", 0), 0);
    assert_int_equal(utf8_char_len("\0", 1), 1);
}

static void test_malformed(void **state) {
    (void)state;
    struct {
        const char *in;
        const char *want;
    } cases[] = {
        {"\x80", R},                   /* lone continuation */
        {"\xBF\x80", R R},             /* two of them */
        {"\xC0\xAF", R R},             /* overlong '/' (C0 never leads) */
        {"\xC1\xBF", R R},             /* overlong, C1 never leads */
        {"\xE0\x80\xAF", R R R},       /* overlong 3-byte: E0 80 is no prefix */
        {"\xF0\x80\x80\xAF", R R R R}, /* overlong 4-byte */
        {"\xED\xA0\x80", R R R},       /* surrogate U+D800 */
        {"\xED\xBF\xBF", R R R},       /* surrogate U+DFFF */
        {"\xF4\x90\x80\x80", R R R R}, /* U+110000 */
        {"\xF5\x80\x80\x80", R R R R}, /* F5 never leads */
        {"\xFE", R},                   /* FE, FF never appear */
        {"\xFF", R},
        {"\xC3", R},     /* truncated at the end */
        {"\xE2\x82", R}, /* one subpart, one replacement */
        {"\xF0\x9F\x98", R},
        {"a\xE2\x82z", "a" R "z"},                  /* truncated before ASCII */
        {"\xE2\x82\xE2\x82\xAC", R "\xE2\x82\xAC"}, /* truncated before a character */
        {"\xC3\xA9\xC3", "\xC3\xA9" R},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        size_t len = strlen(cases[i].in);
        assert_true(utf8_valid_prefix(cases[i].in, len) < len);
        assert_false(utf8_valid_text(cases[i].in, len));
        check_sanitize(cases[i].in, len, cases[i].want);
    }
    /* Table 3-8 of the Unicode standard (U+FFFD substitution of maximal
     * subparts). */
    const char *t38 = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
    check_sanitize(t38, strlen(t38), "a" R R R "b" R "c" R R "d");
    assert_int_equal(utf8_valid_prefix(t38, strlen(t38)), 1);
    /* A NUL byte is valid UTF-8 but cannot travel in a C string. */
    assert_int_equal(utf8_valid_prefix("a\0b", 3), 3);
    assert_false(utf8_valid_text("a\0b", 3));
    check_sanitize("a\0b", 3, "a" R "b");
}

static void test_random_against_pbvalue(void **state) {
    (void)state;
    srand(4242);
    unsigned char buf[16];
    char out[16 * 3 + 1];
    for (int round = 0; round < 200000; round++) {
        size_t len = (size_t)(rand() % (int)sizeof(buf));
        for (size_t i = 0; i < len; i++) {
            /* Mostly bytes near the interesting ranges. */
            int r = rand();
            buf[i] = (unsigned char)(r % 3 == 0 ? 0x80 + (r >> 4) % 0x80 : (r >> 4) % 256);
        }
        const char *s = (const char *)buf;
        bool valid = pbvalue_utf8_valid(s, len);
        assert_int_equal(utf8_valid_prefix(s, len) == len, valid);
        size_t p = utf8_valid_prefix(s, len);
        assert_true(pbvalue_utf8_valid(s, p));
        size_t n = utf8_sanitize_into(out, sizeof(out), s, len);
        assert_int_equal(n, strlen(out));
        assert_true(utf8_valid_text(out, n));
        assert_true(pbvalue_utf8_valid(out, n));
        if (valid && !memchr(s, '\0', len))
            assert_memory_equal(out, s, len);
        /* Cutting valid text anywhere leaves valid text. */
        if (valid)
            for (size_t max = 0; max <= len; max++)
                assert_true(pbvalue_utf8_valid(s, utf8_cut(s, len, max)));
    }
}

static void test_cut(void **state) {
    (void)state;
    const char *s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"; /* 1 + 2 + 3 + 4 bytes */
    size_t len = strlen(s);
    size_t want[] = {0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10};
    for (size_t max = 0; max <= len; max++)
        assert_int_equal(utf8_cut(s, len, max), want[max]);
    assert_int_equal(utf8_cut(s, len, 100), len);
    /* Not UTF-8 at the cut: cut where asked. */
    assert_int_equal(utf8_cut("\x80\x80\x80\x80\x80", 5, 4), 4);
}

static void test_trim_partial(void **state) {
    (void)state;
    const char *s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
    /* Every prefix ends either on a boundary (kept) or inside a character
     * (trimmed back to the boundary before it). */
    size_t want[] = {0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10};
    for (size_t len = 0; len <= strlen(s); len++)
        assert_int_equal(utf8_trim_partial(s, len), want[len]);
    /* Bytes that are not a prefix of any character are left for
     * replacement. */
    assert_int_equal(utf8_trim_partial("a\xF5", 2), 2);
    assert_int_equal(utf8_trim_partial("a\xC0", 2), 2);
    assert_int_equal(utf8_trim_partial("a\xE0\x80", 3), 3); /* overlong, not a prefix */
    assert_int_equal(utf8_trim_partial("a\xED\xA0", 3), 3); /* surrogate */
    assert_int_equal(utf8_trim_partial("a\x80\x80\x80\x80", 5), 5);
    assert_int_equal(utf8_trim_partial("\xC3\xA9\x80", 3), 3);
    assert_int_equal(utf8_trim_partial("\xE2", 1), 0);
}

static void test_bounds(void **state) {
    (void)state;
    char buf[8];
    /* Whole characters only: a 4-byte one does not fit in 7 - 5 bytes. */
    assert_int_equal(utf8_sanitize_into(buf, sizeof(buf), "abcde\xF0\x9F\x98\x80", 9), 5);
    assert_string_equal(buf, "abcde");
    /* Nor does a replacement. */
    assert_int_equal(utf8_sanitize_into(buf, sizeof(buf), "abcde\xFF", 6), 5);
    assert_int_equal(utf8_sanitize_into(buf, sizeof(buf), "abcd\xFF", 5), 7);
    assert_string_equal(buf, "abcd" R);
    assert_int_equal(utf8_sanitize_into(buf, 1, "abc", 3), 0);
    assert_string_equal(buf, "");
    assert_int_equal(utf8_sanitize_into(buf, 0, "abc", 3), 0);

    size_t n;
    char *d = utf8_sanitize("\xE2\x82\xAC\xE2\x82\xAC", 6, 5, &n);
    assert_non_null(d);
    assert_int_equal(n, 3);
    assert_string_equal(d, "\xE2\x82\xAC");
    free(d);
    d = utf8_sanitize("\xFF\xFF\xFF", 3, 100, NULL);
    assert_string_equal(d, R R R);
    free(d);
    d = utf8_sanitize("", 0, 0, &n);
    assert_string_equal(d, "");
    assert_int_equal(n, 0);
    free(d);

    alloc_fail_at(1);
    assert_null(utf8_sanitize("abc", 3, 10, &n));
    alloc_fail_at(0);
}

/* A sink that keeps the last line it was given. */
typedef struct {
    output_sink sink;
    char *last;
    unsigned lines;
} keep_sink;

static void keep_line(output_sink *s, uint64_t task_id, uint64_t seq, int stream,
                      const char *line) {
    (void)task_id, (void)seq, (void)stream;
    keep_sink *k = (keep_sink *)s;
    free(k->last);
    k->last = strdup(line);
    k->lines++;
}

static void keep_end(output_sink *s, uint64_t task_id, uint64_t dropped, int state) {
    (void)s, (void)task_id, (void)dropped, (void)state;
}

static bool keep_room(output_sink *s) {
    (void)s;
    return true;
}

static const output_sink_ops keep_ops = {keep_line, keep_room, keep_end};

static void test_output_lines(void **state) {
    (void)state;
    output *o = output_new(1, 4);
    assert_non_null(o);
    keep_sink k = {.sink.ops = &keep_ops};
    assert_int_equal(output_attach(o, &k.sink, false, true, 0, false), 0);

    /* A long line of 2-byte characters after one ASCII byte: LIMIT_MAX_LINE
     * falls inside a character, and the line is cut before it. */
    size_t len = 1 + 2 * LIMIT_MAX_LINE;
    char *big = malloc(len);
    big[0] = 'x';
    for (size_t i = 1; i < len; i += 2)
        memcpy(big + i, "\xC3\xA9", 2);
    assert_int_equal(output_append(o, 1, big, len), 0);
    assert_int_equal(strlen(k.last), LIMIT_MAX_LINE - 1);
    assert_true(pbvalue_utf8_valid(k.last, strlen(k.last)));
    assert_memory_equal(k.last, big, LIMIT_MAX_LINE - 1);

    /* Raw bytes (a plugin's print of anything) arrive as U+FFFD. */
    assert_int_equal(output_append(o, 1, "ok\xFF\xC3(\0z", 7), 0);
    assert_string_equal(k.last, "ok" R R "(" R "z");

    /* Replacements count against the limit too, and never half of one. */
    memset(big, 0xFF, len);
    assert_int_equal(output_append(o, 2, big, len), 0);
    assert_int_equal(strlen(k.last), LIMIT_MAX_LINE / 3 * 3);
    assert_true(pbvalue_utf8_valid(k.last, strlen(k.last)));

    assert_int_equal(output_append(o, 1, "", 0), 0);
    assert_string_equal(k.last, "");
    assert_int_equal(k.lines, 4);
    free(big);
    output_end(o, 0);
    output_unref(o);
    free(k.last);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_random_against_pbvalue),
        cmocka_unit_test(test_cut),
        cmocka_unit_test(test_trim_partial),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_output_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
