/*
 * libaioclient's version, one number in one place: aioc_version() of the
 * shared library this test runs with, the header's AIOC_VERSION_* macros
 * it was compiled with, and the version the build read from that header
 * (AIOC_CMAKE_VERSION, which names the library file, its SONAME, the .pc
 * and the CMake package) must all say the same.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "aioc.h"

static void test_runtime_equals_header(void **state) {
    char macros[32];
    snprintf(macros, sizeof(macros), "%d.%d.%d", AIOC_VERSION_MAJOR, AIOC_VERSION_MINOR,
             AIOC_VERSION_PATCH);
    assert_non_null(aioc_version());
    assert_string_equal(aioc_version(), macros);
    assert_string_equal(aioc_version(), AIOC_VERSION_STRING);
    /* A static string: the same pointer every time. */
    assert_ptr_equal(aioc_version(), aioc_version());
}

static void test_build_read_the_header(void **state) {
    assert_string_equal(AIOC_CMAKE_VERSION, AIOC_VERSION_STRING);
    /* The SONAME's number is the major. */
    assert_int_equal(AIOC_CMAKE_SOVERSION, AIOC_VERSION_MAJOR);
}

static void test_api_added_in_1_3(void **state) {
    /* This header announces 1.3's functions: the version must be 1.3 or
     * later within major 1. */
    assert_int_equal(AIOC_VERSION_MAJOR, 1);
    assert_true(AIOC_VERSION_MINOR >= 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runtime_equals_header),
        cmocka_unit_test(test_build_read_the_header),
        cmocka_unit_test(test_api_added_in_1_3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
