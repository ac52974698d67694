/*
 * Output flow (core/output.c): a sink that cannot take lines falls behind
 * and catches up later; lines that left the ring meanwhile are counted as
 * dropped for it alone; a holding sink holds the producer back while it is
 * behind by half the ring, and wakes it when it catches up; an ended output
 * ends a sink only once it has caught up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/output.h"
#include "system/config.h"

typedef struct test_sink {
    output_sink sink;
    bool room;
    uint64_t got, last_seq, dropped;
    bool ended;
    int state;
} test_sink;

static void t_line(output_sink *s, uint64_t task_id, uint64_t seq, int stream, const char *line) {
    (void)task_id, (void)stream, (void)line;
    test_sink *t = (test_sink *)s;
    if (t->got)
        assert_true(seq > t->last_seq);
    t->last_seq = seq;
    t->got++;
}

static bool t_room(output_sink *s) {
    return ((test_sink *)s)->room;
}

static void t_end(output_sink *s, uint64_t task_id, uint64_t dropped, int state) {
    (void)task_id;
    test_sink *t = (test_sink *)s;
    t->ended = true;
    t->dropped = dropped;
    t->state = state;
}

static const output_sink_ops ops = {t_line, t_room, t_end};

static void append_n(output *o, unsigned n) {
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(output_append(o, 1, "x", 1), 0);
}

static void test_behind_then_catch_up(void **state) {
    (void)state;
    output *o = output_new(1, 10);
    test_sink fast = {.sink.ops = &ops, .room = true}, slow = {.sink.ops = &ops, .room = true};
    assert_int_equal(output_attach(o, &fast.sink, false, true, 0, false), 0);
    assert_int_equal(output_attach(o, &slow.sink, false, true, 0, false), 0);
    append_n(o, 3);
    slow.room = false;
    append_n(o, 25); /* the ring keeps 10: 15 of these leave it unsent */
    assert_int_equal(fast.got, 28);
    assert_int_equal(slow.got, 3);
    assert_true(output_sink_behind(&slow.sink));
    slow.room = true;
    assert_int_equal(output_sink_pump(&slow.sink), 0);
    assert_int_equal(slow.got, 13);
    assert_false(output_sink_behind(&slow.sink));
    output_end(o, 3);
    assert_true(fast.ended && slow.ended);
    assert_int_equal(fast.dropped, 0);
    assert_int_equal(slow.dropped, 15);
    assert_int_equal(slow.got + slow.dropped, 28);
    assert_int_equal(slow.state, 3);
    output_unref(o);
}

static void test_end_waits_for_a_behind_sink(void **state) {
    (void)state;
    output *o = output_new(1, 100);
    test_sink s = {.sink.ops = &ops, .room = false};
    assert_int_equal(output_attach(o, &s.sink, false, true, 0, false), 0);
    append_n(o, 5);
    output_end(o, 4);
    assert_false(s.ended); /* five lines still to send */
    output_unref(o);       /* the sink keeps the output alive */
    s.room = true;
    assert_int_equal(output_sink_pump(&s.sink), 1);
    assert_true(s.ended);
    assert_int_equal(s.got, 5);
    assert_int_equal(s.dropped, 0);
}

static void test_replay_without_follow(void **state) {
    (void)state;
    output *o = output_new(1, 4);
    append_n(o, 6);
    test_sink s = {.sink.ops = &ops, .room = true};
    assert_int_equal(output_attach(o, &s.sink, true, false, 2, false), 1);
    assert_int_equal(s.got, 4);
    assert_int_equal(s.dropped, 2); /* left the ring before it came */
    assert_int_equal(s.state, 2);
    output_unref(o);
}

static int woken;
static void wake(output_waiter *w) {
    (void)w;
    woken++;
}

static void test_holding_sink_holds_the_producer(void **state) {
    (void)state;
    cfg.output_hold_ms = 60000;
    output *o = output_new(1, 10);
    test_sink run = {.sink.ops = &ops, .room = true}, logs = {.sink.ops = &ops, .room = false};
    assert_int_equal(output_attach(o, &logs.sink, false, true, 0, false), 0);
    append_n(o, 50);
    assert_false(output_held(o)); /* a sink that does not hold never does */
    assert_int_equal(output_attach(o, &run.sink, false, true, 0, true), 0);
    run.room = false;
    append_n(o, 4);
    assert_false(output_held(o)); /* behind by 4 of 10: not yet half */
    append_n(o, 1);
    assert_true(output_held(o));
    output_waiter w = {.fn = wake};
    output_wait_room(o, &w);
    run.room = true;
    output_sink_pump(&run.sink);
    assert_false(output_held(o));
    assert_int_equal(woken, 1);
    /* A holding sink stuck longer than output_hold_ms holds no more. */
    cfg.output_hold_ms = 0;
    run.room = false;
    append_n(o, 5);
    assert_false(output_held(o));
    output_end(o, 3);
    run.room = logs.room = true;
    output_sink_pump(&run.sink);
    output_sink_pump(&logs.sink);
    assert_true(run.ended && logs.ended);
    assert_int_equal(run.got + run.dropped, 10);
    assert_int_equal(logs.got + logs.dropped, 60);
    output_unref(o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_behind_then_catch_up),
        cmocka_unit_test(test_end_waits_for_a_behind_sink),
        cmocka_unit_test(test_replay_without_follow),
        cmocka_unit_test(test_holding_sink_holds_the_producer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
