/*
 * The driver of a test plugin whose every function is one ported CPython
 * asyncio test case (test-asyncio-locks.c, test-asyncio-queues.c): each
 * runs as a task on a real loop and must end done, else its error (naming
 * the CPython test and the failed check) is printed. Define PLUGIN before
 * including it; list the cases with CASE(name) and end the list with
 * cmocka_unit_test(test_every_case_listed).
 */
#ifndef AIOD_TEST_ASYNCIO_DRIVER_H
#define AIOD_TEST_ASYNCIO_DRIVER_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "daemon-loop.h"

static uv_loop_t loop;

static int setup(void **state) {
    (void)state;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/%s.so", TEST_PLUGIN_DIR, PLUGIN, PLUGIN);
    return daemon_loop_start(&loop, path);
}

static int teardown(void **state) {
    (void)state;
    return daemon_loop_stop(&loop);
}

/* Runs PLUGIN.<name> (the cmocka state) to its end; it must end done. */
static void run_case(void **state) {
    const char *name = *state;
    char full[256], err[256];
    Aiod__Value **argv = NULL;
    task *t = NULL;
    snprintf(full, sizeof(full), "%s.%s", PLUGIN, name);
    fn_entry *f = plugin_lookup(full);
    assert_non_null(f);
    assert_int_equal(value_check_call(&f->sig, NULL, 0, false, 32, &argv, err, sizeof(err)), 0);
    assert_int_equal(task_new(f, argv, f->sig.n_params, AIOD__OWNERSHIP__SUBMITTED, 0, 0, NULL, &t),
                     0);
    sched_start(t);
    while (!task_finished(t))
        uv_run(&loop, UV_RUN_ONCE);
    if (t->state != TASK_DONE)
        print_error("%s ended %d: %s: %s\n", name, (int)t->state,
                    t->error_kind ? t->error_kind : "-", t->error_message ? t->error_message : "-");
    assert_int_equal(t->state, TASK_DONE);
    task_unref(t);
}

/* Cases listed below, not counting this check. */
static size_t n_cases;

/* Every function of the plugin is a case listed below (a new case cannot be left out). */
static void test_every_case_listed(void **state) {
    (void)state;
    size_t n = 0;
    for (size_t i = 0; i < plugin_count(); i++)
        if (strcmp(plugin_at(i)->name, PLUGIN) == 0)
            n = plugin_at(i)->desc->n_functions;
    assert_int_equal(n, n_cases);
}

#define CASE(name)                                                                                 \
    { #name, run_case, NULL, NULL, (void *)#name }

#endif
