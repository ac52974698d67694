/*
 * Tests of aioctl's CALL word parser (client/cli/callword.c): splitting,
 * quoting, task ids, every error, and out-of-memory at each allocation.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "callword.h"

/* Parses `text` and checks it gives exactly the NULL-terminated words. */
static void check_words(const char *text, const char *const *want) {
    callword cw = {0};
    const char *why = NULL;
    size_t n = 0;

    assert_int_equal(callword_parse(text, &cw, &why, NULL), 0);
    assert_int_equal(cw.task_id, 0);
    while (want[n])
        n++;
    assert_int_equal(cw.n_words, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(cw.words[i], want[i]);
    callword_done(&cw);
    assert_null(cw.words);
}

static void check_error(const char *text, const char *why_part, size_t want_pos) {
    callword cw = {0};
    const char *why = NULL;
    size_t pos = 999;

    assert_int_equal(callword_parse(text, &cw, &why, &pos), -EINVAL);
    assert_non_null(why);
    assert_non_null(strstr(why, why_part));
    assert_int_equal(pos, want_pos);
    assert_null(cw.words);
}

static void test_plain(void **state) {
    check_words("demo.sleep", (const char *[]){"demo.sleep", NULL});
    check_words("demo.sleep 3 a", (const char *[]){"demo.sleep", "3", "a", NULL});
    check_words("  demo.sleep\t3\n  a  ", (const char *[]){"demo.sleep", "3", "a", NULL});
}

static void test_quotes(void **state) {
    check_words("f 'two words' \"and three more\"",
                (const char *[]){"f", "two words", "and three more", NULL});
    check_words("f '' \"\"", (const char *[]){"f", "", "", NULL});
    check_words("f a'b'\"c\"d", (const char *[]){"f", "abcd", NULL});
    check_words("f 'a \"b\" \\c'", (const char *[]){"f", "a \"b\" \\c", NULL});
    check_words("f \"a \\\"b\\\" \\\\ \\n\"", (const char *[]){"f", "a \"b\" \\ \\n", NULL});
    check_words("f a\\ b \\'c", (const char *[]){"f", "a b", "'c", NULL});
    check_words("f '[1, \"two\"]'", (const char *[]){"f", "[1, \"two\"]", NULL});
    check_words("f 'héllo wörld'", (const char *[]){"f", "héllo wörld", NULL});
}

static void test_task_id(void **state) {
    callword cw = {0};
    const char *why;

    assert_int_equal(callword_parse("42", &cw, &why, NULL), 0);
    assert_int_equal(cw.task_id, 42);
    assert_int_equal(cw.n_words, 0);
    callword_done(&cw);

    assert_int_equal(callword_parse(" 7 ", &cw, &why, NULL), 0);
    assert_int_equal(cw.task_id, 7);
    callword_done(&cw);

    assert_int_equal(callword_parse("18446744073709551615", &cw, &why, NULL), 0);
    assert_true(cw.task_id == UINT64_MAX);
    callword_done(&cw);

    /* Digits with anything else are a call, not an id. */
    check_words("42 x", (const char *[]){"42", "x", NULL});
    check_words("'42'", (const char *[]){"42", NULL});

    check_error("0", "task id 0", 0);
    check_error("18446744073709551616", "out of range", 0);
}

static void test_errors(void **state) {
    check_error("", "empty call", 0);
    check_error("   \t ", "empty call", 0);
    check_error("f 'abc", "unterminated single quote", 2);
    check_error("f \"abc", "unterminated double quote", 2);
    check_error("f \"abc\\\"", "unterminated double quote", 2);
    check_error("f abc\\", "backslash at the end", 5);
    check_error("'' 3", "empty function name", 0);

    callword cw;
    const char *why;
    assert_int_equal(callword_parse(NULL, &cw, &why, NULL), -EINVAL);
    assert_int_equal(callword_parse("f", NULL, &why, NULL), -EINVAL);
    assert_int_equal(callword_parse("f", &cw, NULL, NULL), -EINVAL);
    callword_done(NULL);
}

static void test_oom(void **state) {
    /* Every allocation may fail; each failure must be -ENOMEM with nothing
     * leaked (the sanitizer build checks the leaks). */
    for (unsigned long n = 1;; n++) {
        callword cw = {0};
        const char *why;
        alloc_fail_at(n);
        int r = callword_parse("f 'a b' c \"d\"", &cw, &why, NULL);
        alloc_fail_at(0);
        if (r == 0) {
            assert_int_equal(cw.n_words, 4);
            callword_done(&cw);
            break;
        }
        assert_int_equal(r, -ENOMEM);
        assert_true(n < 100);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),   cmocka_unit_test(test_quotes),
        cmocka_unit_test(test_task_id), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
