/*
 * Plugin loading: a good plugin, a frozen ABI 1.0 plugin, and the refusals
 * (wrong ABI, missing descriptor, duplicate name, bad signature, untrusted
 * file), each with its log line.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/api.h"
#include "base/aiod_limits.h"
#include "system/log.h"
#include "host/registry.h"

#ifndef TEST_PLUGIN_DIR
#error TEST_PLUGIN_DIR must be defined
#endif

/* Runs the loader on one file with stderr captured into `log`. */
/* Loads the plugin file at `path`, its log lines into `log`. */
static int load_path_capturing(const char *path, char *log, size_t log_len) {
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *tmp = tmpfile();
    dup2(fileno(tmp), STDERR_FILENO);
    int r = plugin_load_file(path);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    size_t n = fread(log, 1, log_len - 1, tmp);
    log[n] = '\0';
    fclose(tmp);
    return r;
}

/* Loads the test plugin `name`, its log lines into `log`. */
static int load_capturing(const char *name, char *log, size_t log_len) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/%s.so", TEST_PLUGIN_DIR, name, name);
    return load_path_capturing(path, log, log_len);
}

static int setup(void **state) {
    (void)state;
    log_setup(LOG_INFO);
    return plugin_registry_init(api_table());
}

static int teardown(void **state) {
    (void)state;
    plugin_registry_done();
    return 0;
}

static void test_good(void **state) {
    (void)state;
    char log[4096];
    assert_int_equal(load_capturing("good", log, sizeof(log)), 0);
    assert_non_null(strstr(log, "loaded plugin 'good'"));
    fn_entry *f = plugin_lookup("good.add");
    assert_non_null(f);
    assert_int_equal(f->sig.n_params, 2);
    assert_null(f->params[0].default_value);
    assert_int_equal(f->params[1].default_value->int_value, 1);
    assert_null(plugin_lookup("good.nope"));
    assert_int_equal(plugin_count(), 1);
}

static void test_frozen_abi(void **state) {
    (void)state;
    char log[4096];
    assert_int_equal(load_capturing("frozen_v1", log, sizeof(log)), 0);
    assert_non_null(plugin_lookup("frozen.answer"));
}

static void test_wrong_abi(void **state) {
    (void)state;
    char log[4096];
    assert_int_equal(load_capturing("wrong_abi", log, sizeof(log)), -EINVAL);
    assert_non_null(strstr(log, "plugin 'wrongabi' ("));
    assert_non_null(strstr(log, "built for ABI 2, this daemon speaks ABI 1; not loaded"));
    assert_null(plugin_lookup("wrongabi.noop"));
}

static void test_missing_symbol(void **state) {
    (void)state;
    char log[4096];
    assert_int_equal(load_capturing("nosym", log, sizeof(log)), -ENOEXEC);
    assert_non_null(strstr(log, "nosym.so has no 'aiod_plugin' descriptor symbol; not loaded"));
}

static void test_duplicate(void **state) {
    (void)state;
    char log[4096];
    assert_int_equal(load_capturing("good", log, sizeof(log)), 0);
    assert_int_equal(load_capturing("duplicate", log, sizeof(log)), -EEXIST);
    assert_non_null(strstr(log, "plugin 'good' ("));
    assert_non_null(strstr(log, "is already loaded from"));
    assert_int_equal(plugin_count(), 1);
    /* The first one still answers. */
    assert_non_null(plugin_lookup("good.add"));
}

static void test_bad_signature(void **state) {
    (void)state;
    char log[4096];
    assert_int_equal(load_capturing("badsig", log, sizeof(log)), -EINVAL);
    assert_non_null(strstr(log, "required parameter 'b' after one with a default"));
}

/* On a copy: other tests load good.so itself meanwhile (ctest -j). */
static void test_untrusted(void **state) {
    (void)state;
    char log[4096], src[4096], dir[] = "/tmp/aiod-test-plugin-XXXXXX", path[4200], cmd[8500];
    snprintf(src, sizeof(src), "%s/good/good.so", TEST_PLUGIN_DIR);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/good.so", dir);
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", src, path);
    assert_int_equal(system(cmd), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(chmod(path, st.st_mode | S_IWOTH), 0);
    int r = load_path_capturing(path, log, sizeof(log));
    unlink(path);
    rmdir(dir);
    assert_int_equal(r, -EPERM);
    assert_non_null(strstr(log, "refused: file is writable by a user other than root"));
}

static void test_validate_in_memory(void **state) {
    (void)state;
    char why[256];
    static const struct aiod_param p[] = {{"x", 99, NULL}};
    struct aiod_function f = {sizeof(f), 0, "f", "doc", p, 1, AIOD_TYPE_NULL, NULL};
    struct aiod_plugin d = {
        AIOD_PLUGIN_HEAD,           .name = "t",     .version = "1", .functions = &f,
        .function_size = sizeof(f), .n_functions = 1};
    assert_int_equal(plugin_validate(&d, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "function 'f': missing doc or entry point");
    f.fn = (aiod_task_fn)1;
    assert_int_equal(plugin_validate(&d, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "function 'f': parameter 'x': unknown type 99");
    f.n_params = 0;
    f.flags = 0x80;
    assert_int_equal(plugin_validate(&d, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "function 'f': unknown flag bits 0x80");
    f.flags = 0;
    f.name = "bad name";
    assert_int_equal(plugin_validate(&d, why, sizeof(why)), -EINVAL);
    f.name = "f";
    d.name = "Upper";
    assert_int_equal(plugin_validate(&d, why, sizeof(why)), -EINVAL);
    d.name = "t";
    assert_int_equal(plugin_validate(&d, why, sizeof(why)), 0);
    /* A rest parameter must be the last one, without a default. */
    static const struct aiod_param rest[] = {{"args", AIOD_TYPE_STRING | AIOD_TYPE_REST, NULL},
                                             {"x", AIOD_TYPE_INT, NULL}};
    f.params = rest;
    f.n_params = 2;
    assert_int_equal(plugin_validate(&d, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "function 'f': rest parameter 'args' must be the last one and have "
                             "no default");
    f.params = rest + 0;
    f.n_params = 1;
    assert_int_equal(plugin_validate(&d, why, sizeof(why)), 0);
}

/* The sanity bounds of a descriptor (aiod_limits.h), each at and past its
 * value. */
static void test_validate_limits(void **state) {
    (void)state;
    char why[256], name[LIMIT_PLUGIN_NAME + 2];
    static struct aiod_param params[LIMIT_FUNCTION_PARAMS + 1];
    for (size_t i = 0; i < LIMIT_FUNCTION_PARAMS + 1; i++) {
        static char names[LIMIT_FUNCTION_PARAMS + 1][8];
        snprintf(names[i], sizeof(names[i]), "p%zu", i);
        params[i] = (struct aiod_param){names[i], AIOD_TYPE_INT, NULL};
    }
    struct aiod_function f = {sizeof(f), 0, "f", "doc", params, 0, AIOD_TYPE_NULL, (aiod_task_fn)1};
    struct aiod_plugin d = {
        AIOD_PLUGIN_HEAD,           .name = name,    .version = "1", .functions = &f,
        .function_size = sizeof(f), .n_functions = 1};

    memset(name, 'a', LIMIT_PLUGIN_NAME);
    name[LIMIT_PLUGIN_NAME] = '\0';
    assert_int_equal(plugin_validate(&d, why, sizeof(why)), 0);
    name[LIMIT_PLUGIN_NAME] = 'a';
    name[LIMIT_PLUGIN_NAME + 1] = '\0';
    assert_int_equal(plugin_validate(&d, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "invalid plugin name (want [a-z_][a-z0-9_]*, at most 64)");
    d.name = "t";

    f.n_params = LIMIT_FUNCTION_PARAMS;
    assert_int_equal(plugin_validate(&d, why, sizeof(why)), 0);
    f.n_params = LIMIT_FUNCTION_PARAMS + 1;
    assert_int_equal(plugin_validate(&d, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "function 'f': 65 parameters, at most 64");
    f.n_params = 0;

    /* Refused on the count alone: the entries are never read. */
    d.n_functions = LIMIT_PLUGIN_FUNCTIONS + 1;
    assert_int_equal(plugin_validate(&d, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "needs between 1 and 4096 functions");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frozen_abi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_abi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_symbol, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untrusted, setup, teardown),
        cmocka_unit_test(test_validate_in_memory),
        cmocka_unit_test(test_validate_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
