/*
 * Tests of aioctl's schedule options (client/cli/schedopt.c): seconds with
 * units, --at's times (epoch seconds, ISO-8601 in local time, UTC and with
 * an offset, HH:MM as its next occurrence, across a DST change), --after's
 * id lists and their limit, the options together and the schedule built
 * from them, and the STATE text `ps` shows. Local time is pinned with TZ.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "aioc.h"
#include "schedopt.h"

#define USEC UINT64_C(1000000)

static void set_tz(const char *tz) {
    assert_int_equal(setenv("TZ", tz, 1), 0);
    tzset();
}

/* Central Europe without tzdata: UTC+1, summer time UTC+2 from the last
 * Sunday of March 02:00 to the last Sunday of October 03:00. */
#define TZ_CET "CET-1CEST,M3.5.0,M10.5.0/3"

static void test_seconds(void **state) {
    (void)state;
    static const struct {
        const char *text;
        double seconds;
    } good[] = {
        {"0", 0},    {"1.5", 1.5}, {".5", 0.5},   {"90s", 90},   {"500ms", 0.5},
        {"5m", 300}, {"2h", 7200}, {"1d", 86400}, {"0.25m", 15}, {"10", 10},
    };
    static const char *const bad[] = {
        "",    "-1",   "+1",  " 1",    "1 ", "abc",   "1x", "1e",   "inf",
        "nan", "0x10", "1ss", "1.5.5", "s",  "1e999", "1S", "1min",
    };
    double d;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        d = -1;
        assert_int_equal(schedopt_parse_seconds(good[i].text, &d), 0);
        assert_true(d == good[i].seconds);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        d = 42;
        if (schedopt_parse_seconds(bad[i], &d) != -EINVAL)
            fail_msg("'%s' taken as seconds", bad[i]);
        assert_true(d == 42);
    }
}

static void test_at_absolute(void **state) {
    (void)state;
    uint64_t u;
    time_t now = 1765000000; /* 2025-12-06T05:46:40Z */

    /* Epoch seconds. */
    assert_int_equal(schedopt_parse_at("@1765000000", now, &u), 0);
    assert_int_equal(u, 1765000000u * USEC);
    assert_int_equal(schedopt_parse_at("@1765000000.25", now, &u), 0);
    assert_int_equal(u, 1765000000u * USEC + 250000u);
    /* The epoch itself is a time in the past like any other: at once (to
     * the library 0 means no time, so it is the first microsecond). */
    assert_int_equal(schedopt_parse_at("@0", now, &u), 0);
    assert_int_equal(u, 1);

    /* UTC and offsets. */
    set_tz("UTC0");
    assert_int_equal(schedopt_parse_at("2026-12-06T10:00:00Z", now, &u), 0);
    assert_int_equal(u, 1796551200u * USEC);
    assert_int_equal(schedopt_parse_at("2026-12-06T10:00:00+02:00", now, &u), 0);
    assert_int_equal(u, (1796551200u - 7200u) * USEC);
    assert_int_equal(schedopt_parse_at("2026-12-06T10:00-0130", now, &u), 0);
    assert_int_equal(u, (1796551200u + 5400u) * USEC);
    assert_int_equal(schedopt_parse_at("2026-12-06 10:00:00.5+00", now, &u), 0);
    assert_int_equal(u, 1796551200u * USEC + 500000u);

    /* Local time: the same text, an hour apart in winter, two in summer. */
    set_tz(TZ_CET);
    assert_int_equal(schedopt_parse_at("2026-12-06T10:00:00", now, &u), 0);
    assert_int_equal(u, (1796551200u - 3600u) * USEC);
    assert_int_equal(schedopt_parse_at("2026-12-06 10:00", now, &u), 0);
    assert_int_equal(u, (1796551200u - 3600u) * USEC);
    assert_int_equal(schedopt_parse_at("2026-07-01T12:00:00", now, &u), 0);
    assert_int_equal(u, (1782907200u - 7200u) * USEC);
    /* A date alone: its midnight. */
    assert_int_equal(schedopt_parse_at("2026-12-06", now, &u), 0);
    assert_int_equal(u, (1796515200u - 3600u) * USEC);
    /* 02:30 on 2026-03-29 does not exist there: the clock skips it, which
     * is told apart from a date that does not exist at all. */
    assert_int_equal(schedopt_parse_at("2026-03-29T02:30", now, &u), -ERANGE);
    assert_int_equal(schedopt_parse_at("2026-02-30T02:30", now, &u), -EINVAL);
    assert_int_equal(schedopt_parse_at("2026-03-29T03:30", now, &u), 0);

    static const char *const bad[] = {
        "",
        "@",
        "@-5",
        "@abc",
        "@1e9",
        "@0x10",
        "2026-13-01",
        "2026-02-30",
        "2026-02-29T10:00",
        "2026-12-06T24:00",
        "2026-12-06T10:60",
        "2026-12-06T10:00:60",
        "2026-12-06T10",
        "2026-12-06T10:00:00X",
        "2026-12-06T10:00:00+2",
        "2026-12-06T10:00:00+25:00",
        "2026-12-06T10:00:00 Z",
        "2026-1-6",
        "1969-12-31T23:59:59Z",
        "tomorrow",
        "10",
        "10:0",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        u = 42;
        if (schedopt_parse_at(bad[i], now, &u) != -EINVAL)
            fail_msg("'%s' taken as a time", bad[i]);
        assert_int_equal(u, 42);
    }
    set_tz("UTC0");
}

static void test_at_clock(void **state) {
    (void)state;
    uint64_t u;
    set_tz("UTC0");
    time_t now = 1796551200; /* 2026-12-06T10:00:00Z */

    /* Later today. */
    assert_int_equal(schedopt_parse_at("10:30", now, &u), 0);
    assert_int_equal(u, (1796551200u + 1800u) * USEC);
    assert_int_equal(schedopt_parse_at("23:59:59", now, &u), 0);
    assert_int_equal(u, (1796551200u + 14 * 3600u - 1u) * USEC);
    /* Passed (or now): tomorrow. */
    assert_int_equal(schedopt_parse_at("09:59", now, &u), 0);
    assert_int_equal(u, (1796551200u + 86400u - 60u) * USEC);
    assert_int_equal(schedopt_parse_at("10:00:00", now, &u), 0);
    assert_int_equal(u, (1796551200u + 86400u) * USEC);
    /* Across the end of a month and a year. */
    now = 1798761540; /* 2026-12-31T23:59:00Z */
    assert_int_equal(schedopt_parse_at("00:01", now, &u), 0);
    assert_int_equal(u, (1798761540u + 120u) * USEC);

    /* In local time; 02:30 when the clock skips it today: tomorrow. */
    set_tz(TZ_CET);
    now = 1774746000; /* 2026-03-29T01:00:00Z, 03:00 CEST, just after the gap */
    assert_int_equal(schedopt_parse_at("02:30", now, &u), 0);
    /* 2026-03-30T02:30 CEST = 00:30Z. */
    assert_int_equal(u, (1774746000u + 23u * 3600u + 1800u) * USEC);
    now = 1774738800; /* 2026-03-28T23:00:00Z, 00:00 CET on the day of the change */
    assert_int_equal(schedopt_parse_at("04:00", now, &u), 0);
    /* 04:00 CEST that day is 02:00Z. */
    assert_int_equal(u, (1774738800u + 3u * 3600u) * USEC);

    static const char *const bad[] = {"24:00", "12:60", "12:00:60", "1:00", "12:5", "12:00:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        u = 42;
        if (schedopt_parse_at(bad[i], now, &u) != -EINVAL)
            fail_msg("'%s' taken as a time of day", bad[i]);
        assert_int_equal(u, 42);
    }
    set_tz("UTC0");
}

static void test_ids(void **state) {
    (void)state;
    uint64_t *ids = NULL;
    size_t n = 0;

    assert_int_equal(schedopt_parse_ids("12", &ids, &n), 0);
    assert_int_equal(schedopt_parse_ids("3,4,5", &ids, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(ids[0], 12);
    assert_int_equal(ids[1], 3);
    assert_int_equal(ids[3], 5);
    static const char *const bad[] = {
        "", "0", "1,", ",1", "1,,2", "x", "-1", "+1", "1 2", "1.5", "18446744073709551616"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (schedopt_parse_ids(bad[i], &ids, &n) != -EINVAL)
            fail_msg("'%s' taken as task ids", bad[i]);
        assert_int_equal(n, 4);
    }
    assert_int_equal(schedopt_parse_ids("18446744073709551615", &ids, &n), 0);
    assert_int_equal(ids[4], UINT64_MAX);

    /* At most 256 in all. */
    char many[256 * 4 + 1] = "";
    size_t at = 0;
    for (int i = 1; i <= 251; i++)
        at += (size_t)snprintf(many + at, sizeof(many) - at, "%s%d", i > 1 ? "," : "", i);
    assert_int_equal(schedopt_parse_ids(many, &ids, &n), 0);
    assert_int_equal(n, 256);
    assert_int_equal(schedopt_parse_ids("1", &ids, &n), -E2BIG);
    assert_int_equal(n, 256);
    free(ids);
}

static void test_options(void **state) {
    (void)state;
    schedopt o = {0};
    char why[160];
    aioc_schedule *s = (aioc_schedule *)&o;

    /* None given: no schedule. */
    assert_int_equal(schedopt_check(&o, why, sizeof(why)), 0);
    assert_int_equal(schedopt_build(&o, &s), 0);
    assert_null(s);

    /* Wrong values say what was wanted. */
    assert_int_equal(schedopt_parse(&o, SCHEDOPT_RETRIES, "1001", 0, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "from 0 to 1000"));
    assert_int_equal(schedopt_parse(&o, SCHEDOPT_RETRIES, "-1", 0, why, sizeof(why)), -EINVAL);
    assert_int_equal(schedopt_parse(&o, SCHEDOPT_RETRIES, "2x", 0, why, sizeof(why)), -EINVAL);
    assert_int_equal(schedopt_parse(&o, SCHEDOPT_DELAY, "-3", 0, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "wants seconds"));
    /* 0 would reach the daemon as "unset", its defaults of 1 s and 600 s:
     * the opposite of what was asked. */
    assert_int_equal(schedopt_parse(&o, SCHEDOPT_BACKOFF_MAX, "0", 0, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "above 0"));
    assert_int_equal(schedopt_parse(&o, SCHEDOPT_BACKOFF, "0s", 0, why, sizeof(why)), -EINVAL);
    assert_int_equal(schedopt_parse(&o, SCHEDOPT_AT, "noon", 0, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "wants a time"));
    assert_int_equal(schedopt_parse(&o, SCHEDOPT_AFTER, "a", 0, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "task ids"));
    assert_false(o.any);

    /* --backoff without --retries. */
    assert_int_equal(schedopt_parse(&o, SCHEDOPT_BACKOFF, "2", 0, why, sizeof(why)), 0);
    assert_int_equal(schedopt_check(&o, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "option '--backoff' needs --retries");

    assert_int_equal(schedopt_parse(&o, SCHEDOPT_RETRIES, "1000", 0, why, sizeof(why)), 0);
    assert_int_equal(schedopt_parse(&o, SCHEDOPT_RETRIES, "3", 0, why, sizeof(why)), 0);
    assert_int_equal(schedopt_parse(&o, SCHEDOPT_BACKOFF_MAX, "1m", 0, why, sizeof(why)), 0);
    assert_int_equal(schedopt_parse(&o, SCHEDOPT_DELAY, "1.5", 0, why, sizeof(why)), 0);
    assert_int_equal(schedopt_parse(&o, SCHEDOPT_AT, "@1765000000", 0, why, sizeof(why)), 0);
    assert_int_equal(schedopt_parse(&o, SCHEDOPT_AFTER, "3,4", 0, why, sizeof(why)), 0);
    assert_int_equal(schedopt_parse(&o, SCHEDOPT_AFTER, "5", 0, why, sizeof(why)), 0);
    assert_int_equal(schedopt_check(&o, why, sizeof(why)), 0);
    assert_true(o.any);
    assert_int_equal(o.retries, 3);
    assert_true(o.backoff == 2 && o.backoff_max == 60 && o.delay == 1.5);
    assert_int_equal(o.at_usec, 1765000000u * USEC);
    assert_int_equal(o.n_after, 3);
    assert_int_equal(schedopt_build(&o, &s), 0);
    assert_non_null(s);
    aioc_schedule_free(s);

    /* Too many --after ids in all. */
    for (int i = 0; i < 253; i++)
        assert_int_equal(schedopt_parse(&o, SCHEDOPT_AFTER, "9", 0, why, sizeof(why)), 0);
    assert_int_equal(schedopt_parse(&o, SCHEDOPT_AFTER, "9", 0, why, sizeof(why)), -E2BIG);
    assert_non_null(strstr(why, "at most 256"));
    schedopt_done(&o);
    assert_int_equal(o.n_after, 0);
}

static void test_status(void **state) {
    (void)state;
    char buf[96];
    set_tz("UTC0");
    uint64_t now = 1796551200u * USEC; /* 10:00:00Z */
    uint64_t after[] = {12, 13, 14, 15, 16};
    schedopt_task t = {.state = AIOC_STATE_PENDING};

    assert_string_equal(schedopt_status(&t, now, buf, sizeof(buf)), "pending");
    t.waiting_for = "function demo.sleep";
    assert_string_equal(schedopt_status(&t, now, buf, sizeof(buf)), "waiting");
    t.waiting_for = NULL;

    t.next_run_usec = now + 42 * USEC;
    assert_string_equal(schedopt_status(&t, now, buf, sizeof(buf)), "waiting (start in 42.0s)");
    t.next_run_usec = now + 725 * USEC;
    assert_string_equal(schedopt_status(&t, now, buf, sizeof(buf)), "waiting (start in 12m5s)");
    t.next_run_usec = now + 7200 * USEC;
    assert_string_equal(schedopt_status(&t, now, buf, sizeof(buf)), "waiting (start at 12:00:00)");
    t.next_run_usec = now + 86400 * USEC * 18;
    assert_string_equal(schedopt_status(&t, now, buf, sizeof(buf)),
                        "waiting (start at 2026-12-24 10:00)");

    t.attempt = 1;
    t.max_attempts = 4;
    t.next_run_usec = now + 3200000u;
    assert_string_equal(schedopt_status(&t, now, buf, sizeof(buf)), "waiting (retry 2/4 in 3.2s)");
    /* Never "in 0.0s" for a time still to come. */
    t.next_run_usec = now + 1;
    assert_string_equal(schedopt_status(&t, now, buf, sizeof(buf)), "waiting (retry 2/4 in 0.1s)");
    t.next_run_usec = now;
    assert_string_equal(schedopt_status(&t, now, buf, sizeof(buf)), "waiting (retry 2/4)");

    /* The longest: three ids of 20 digits and a count, whole in the size
     * the header gives (ps cut it at 64 bytes, losing the parenthesis). */
    {
        char big[SCHEDOPT_STATUS_MAX];
        uint64_t far[] = {UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - 2, 1, 2};
        schedopt_task w = {.state = AIOC_STATE_PENDING, .after = far, .n_after = 5};
        assert_string_equal(schedopt_status(&w, now, big, sizeof(big)),
                            "waiting (after 18446744073709551615,18446744073709551614,"
                            "18446744073709551613,+2)");
    }

    t.attempt = 0;
    t.next_run_usec = 0;
    t.after = after;
    t.n_after = 2;
    assert_string_equal(schedopt_status(&t, now, buf, sizeof(buf)), "waiting (after 12,13)");
    t.n_after = 5;
    assert_string_equal(schedopt_status(&t, now, buf, sizeof(buf)), "waiting (after 12,13,14,+2)");
    /* A time to wait for comes first. */
    t.next_run_usec = now + 10 * USEC;
    assert_string_equal(schedopt_status(&t, now, buf, sizeof(buf)), "waiting (start in 10.0s)");

    schedopt_task r = {.state = AIOC_STATE_RUNNING, .attempt = 2, .max_attempts = 4};
    assert_string_equal(schedopt_status(&r, now, buf, sizeof(buf)), "running (attempt 2/4)");
    r.max_attempts = 1;
    r.attempt = 1;
    assert_string_equal(schedopt_status(&r, now, buf, sizeof(buf)), "running");
    r.max_attempts = 0; /* an older daemon */
    r.attempt = 0;
    assert_string_equal(schedopt_status(&r, now, buf, sizeof(buf)), "running");

    schedopt_task e = {.state = AIOC_STATE_FAILED, .attempt = 4, .max_attempts = 4};
    assert_string_equal(schedopt_status(&e, now, buf, sizeof(buf)), "failed (4 attempts)");
    e.state = AIOC_STATE_DONE;
    e.attempt = 1;
    assert_string_equal(schedopt_status(&e, now, buf, sizeof(buf)), "done");

    /* A small buffer is cut, never overrun. */
    char small[8];
    t.next_run_usec = now + 10 * USEC;
    assert_string_equal(schedopt_status(&t, now, small, sizeof(small)), "waiting");
    assert_string_equal(schedopt_when(now - 1, now, buf, sizeof(buf)), "now");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seconds),  cmocka_unit_test(test_at_absolute),
        cmocka_unit_test(test_at_clock), cmocka_unit_test(test_ids),
        cmocka_unit_test(test_options),  cmocka_unit_test(test_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
