/*
 * schedopt: aioctl's schedule options (--retries, --backoff, --backoff-max,
 * --delay, --at, --after) as `run`, `submit` and `detach` take them, the
 * times they accept, and the short text that `ps` shows for a task that
 * waits or retries. Pure: no I/O, no messages printed (each parser says
 * what it wanted in a buffer for the command to print), so that
 * test-client-cli-schedule can check it all.
 */
#ifndef AIOCTL_SCHEDOPT_H
#define AIOCTL_SCHEDOPT_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "aioc.h"

/* The options' `val`s: long options without a letter, below CLI_OPT_JSON
 * as cli_getopt wants, and apart from every command's own. */
enum {
    SCHEDOPT_RETRIES = 0xa0,
    SCHEDOPT_BACKOFF,
    SCHEDOPT_BACKOFF_MAX,
    SCHEDOPT_DELAY,
    SCHEDOPT_AT,
    SCHEDOPT_AFTER,
};

/* The entries of a getopt_long table, for a command to put in its own. */
#define SCHEDOPT_OPTIONS                                                                           \
    {"retries", required_argument, NULL, SCHEDOPT_RETRIES},                                        \
        {"backoff", required_argument, NULL, SCHEDOPT_BACKOFF},                                    \
        {"backoff-max", required_argument, NULL, SCHEDOPT_BACKOFF_MAX},                            \
        {"delay", required_argument, NULL, SCHEDOPT_DELAY},                                        \
        {"at", required_argument, NULL, SCHEDOPT_AT}, {                                            \
        "after", required_argument, NULL, SCHEDOPT_AFTER                                           \
    }

/* The help lines of the options, for a command's --help text. */
#define SCHEDOPT_HELP                                                                              \
    "      --retries N      run it again after a failure, up to N more times (0-1000)\n"           \
    "      --backoff S      wait up to S before the first retry, twice as long\n"                  \
    "                       before each next one (random, full jitter; default 1s)\n"              \
    "      --backoff-max S  never wait longer than S between attempts (default 600s)\n"            \
    "      --delay S        start it S from now at the earliest\n"                                 \
    "      --at TIME        start it at TIME at the earliest: @EPOCH-SECONDS,\n"                   \
    "                       YYYY-MM-DD[THH:MM[:SS]] (local time, or UTC with Z,\n"                 \
    "                       or with +hh:mm), or HH:MM[:SS] (its next occurrence)\n"                \
    "      --after ID[,ID]  start it once these tasks are done (repeatable; if\n"                  \
    "                       one fails or is cancelled, so does this one)\n"                        \
    "  S is seconds, or a number with a unit: 500ms, 90s, 5m, 2h, 1d.\n"

/* The schedule options given so far. */
typedef struct schedopt {
    /* Some schedule option was given. */
    bool any;
    /* --retries was given, and its value. */
    bool has_retries;
    unsigned retries;
    /* --backoff / --backoff-max were given (they need --retries), and
     * their values in seconds (0: the daemon's default). */
    bool has_backoff, has_backoff_max;
    double backoff, backoff_max;
    /* --delay in seconds, 0 when not given. */
    double delay;
    /* --at in microseconds since the epoch, 0 when not given. */
    uint64_t at_usec;
    /* --after's ids in the order given (owned). */
    uint64_t *after;
    size_t n_after;
} schedopt;

/* Frees what o holds. */
void schedopt_done(schedopt *o);

/*
 * Handles option `opt` (a SCHEDOPT_* value) with `value`; `now` is the
 * time --at's HH:MM counts from. 0 when it was taken; -EINVAL (or -E2BIG
 * for too many --after ids, -ENOMEM) when it is wrong: then `why` gets
 * what was wanted ("wants seconds (...)"), worded to follow the option's
 * name: the command prints "option '--delay' wants ..., not 'x'".
 */
int schedopt_parse(schedopt *o, int opt, const char *value, time_t now, char *why, size_t why_len);

/* Checks the options together once all are read: 0, or -EINVAL with `why`
 * naming the option that is missing its partner. */
int schedopt_check(const schedopt *o, char *why, size_t why_len);

/* The schedule the options describe: *ret gets a new one, or NULL when no
 * option was given. 0, or the negative errno of aioc_schedule_*. */
int schedopt_build(const schedopt *o, aioc_schedule **ret);

/* Seconds: a number >= 0, finite, with an optional unit ms, s, m, h or d.
 * 0 or -EINVAL. */
int schedopt_parse_seconds(const char *s, double *ret);

/*
 * A start time (--at) into microseconds since the epoch: "@SECONDS[.FRAC]";
 * "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.FRAC]]" (a blank for the T too), in
 * local time, or followed by "Z" (UTC) or an offset "+hh:mm", "+hhmm",
 * "+hh" (or "-"); or "HH:MM[:SS]", the next time the clock shows it after
 * `now` (today, or tomorrow if that has passed). 0, -EINVAL (not such a
 * time, a field out of range) or -ERANGE (a date and time, in local time,
 * that the clock skips: a daylight saving gap).
 */
int schedopt_parse_at(const char *s, time_t now, uint64_t *ret_usec);

/* One or more comma-separated task ids, appended to *ids / *n (a
 * realloc'ed array). 0, -EINVAL (not an id), -E2BIG (more than
 * AIOC_SCHEDULE_MAX_AFTER in all), -ENOMEM. Nothing is appended on
 * failure. */
int schedopt_parse_ids(const char *s, uint64_t **ids, size_t *n);

/* What `ps` and `show` know of a task, for schedopt_status. */
typedef struct schedopt_task {
    int state;
    /* The concurrency limit it waits for, or NULL. */
    const char *waiting_for;
    uint32_t attempt, max_attempts;
    uint64_t next_run_usec;
    const uint64_t *after;
    size_t n_after;
} schedopt_task;

/*
 * The STATE cell of `ps` into buf (returned): the state's name, and for a
 * task with a schedule what it waits for, as of `now_usec`:
 *   "waiting"                       a pending task held by a concurrency limit
 *   "waiting (start in 42s)"        its delay or start time, within the hour
 *   "waiting (start at 10:00:00)"   ... later today (local time)
 *   "waiting (start at 2026-12-24 10:00)"  ... later than that
 *   "waiting (retry 2/4 in 3.2s)"   its next attempt (2 of at most 4)
 *   "waiting (after 12,13)"         the tasks it runs after (the first three,
 *                                   then "+N" for the rest)
 *   "waiting (retry 2/4)"           a retry whose time has come
 *   "running (attempt 2/4)"         an attempt after the first
 *   "failed (4 attempts)"           an ended task that took more than one
 */
/* A buffer of this size holds any status whole (ids of 20 digits). */
#define SCHEDOPT_STATUS_MAX 128
char *schedopt_status(const schedopt_task *t, uint64_t now_usec, char *buf, size_t len);

/* When a time comes, as `ps` says it: "in 3.2s", "in 12m5s", "at
 * 10:00:00" (today), "at 2026-12-24 10:00", or "now" when it has come
 * already. Returns buf. */
char *schedopt_when(uint64_t usec, uint64_t now_usec, char *buf, size_t len);

#endif
