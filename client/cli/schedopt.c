/*
 * schedopt: the schedule options of `run`, `submit` and `detach`, the
 * times they accept, and the STATE text of a waiting or retrying task
 * (schedopt.h). Times are the wall clock in microseconds since the epoch,
 * as the protocol has them; local time is the TZ of aioctl's environment.
 */
#include "schedopt.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define USEC_PER_SEC 1000000.0

void schedopt_done(schedopt *o) {
    free(o->after);
    o->after = NULL;
    o->n_after = 0;
}

int schedopt_parse_seconds(const char *s, double *ret) {
    static const struct {
        const char *unit;
        double seconds;
    } units[] = {{"", 1}, {"ms", 0.001}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}};
    char *end;

    /* strtod takes more than we want ("inf", "0x1p3", leading blanks). */
    if (!((*s >= '0' && *s <= '9') || (*s == '.' && s[1] >= '0' && s[1] <= '9')))
        return -EINVAL;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || strchr(s, 'x') || strchr(s, 'X'))
        return -EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(end, units[i].unit) == 0) {
            d *= units[i].seconds;
            if (!isfinite(d) || d < 0)
                return -EINVAL;
            *ret = d;
            return 0;
        }
    return -EINVAL;
}

/* Reads exactly n digits at *p into *ret and moves *p past them. */
static bool digits(const char **p, int n, int *ret) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*p)[i];
        if (ch < '0' || ch > '9')
            return false;
        v = v * 10 + (ch - '0');
    }
    *p += n;
    *ret = v;
    return true;
}

/* "HH:MM[:SS[.FRAC]]" at *p: fills tm's time and *frac (seconds below one),
 * moves *p past it. */
static bool clock_time(const char **p, struct tm *tm, double *frac) {
    int h, m, sec = 0;
    if (!digits(p, 2, &h) || **p != ':')
        return false;
    (*p)++;
    if (!digits(p, 2, &m))
        return false;
    if (**p == ':') {
        (*p)++;
        if (!digits(p, 2, &sec))
            return false;
        if (**p == '.') {
            const char *start = *p;
            (*p)++;
            if (**p < '0' || **p > '9')
                return false;
            while (**p >= '0' && **p <= '9')
                (*p)++;
            *frac = strtod(start, NULL);
        }
    }
    if (h > 23 || m > 59 || sec > 59)
        return false;
    tm->tm_hour = h;
    tm->tm_min = m;
    tm->tm_sec = sec;
    return true;
}

/* A broken-down local time to time_t, refusing one the clock skips (a DST
 * gap) or fields that do not exist (February 30th): mktime would move them
 * silently. */
static int local_to_time(const struct tm *want, time_t *ret) {
    struct tm tm = *want, back;
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    if (t == (time_t)-1 || !localtime_r(&t, &back))
        return -EINVAL;
    if (back.tm_year != want->tm_year || back.tm_mon != want->tm_mon ||
        back.tm_mday != want->tm_mday || back.tm_hour != want->tm_hour ||
        back.tm_min != want->tm_min || back.tm_sec != want->tm_sec) {
        /* Fields that exist on the calendar (they come back whole from
         * UTC) name a time this zone's clock skips. */
        struct tm utc = *want, again;
        time_t u = timegm(&utc);
        bool exists = u != (time_t)-1 && gmtime_r(&u, &again) && again.tm_mday == want->tm_mday &&
                      again.tm_mon == want->tm_mon;
        return exists ? -ERANGE : -EINVAL;
    }
    *ret = t;
    return 0;
}

/* The same in UTC, with `offset` seconds east of it. */
static int utc_to_time(const struct tm *want, long offset, time_t *ret) {
    struct tm tm = *want, back;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mday != want->tm_mday ||
        back.tm_mon != want->tm_mon)
        return -EINVAL;
    *ret = t - offset;
    return 0;
}

/* Seconds and a fraction to microseconds since the epoch; 0 is not a time
 * (the protocol's "none"), nor is one before the epoch. */
static int to_usec(time_t t, double frac, uint64_t *ret) {
    if (t < 0 || (t == 0 && frac == 0) || (uint64_t)t > UINT64_MAX / 1000000u - 1)
        return -EINVAL;
    *ret = (uint64_t)t * 1000000u + (uint64_t)(frac * USEC_PER_SEC + 0.5);
    return 0;
}

/* "@SECONDS[.FRAC]". */
static int parse_epoch(const char *s, uint64_t *ret) {
    char *end;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || *end || strchr(s, 'x') || strchr(s, 'X') || strchr(s, 'e') || strchr(s, 'E') ||
        !isfinite(d) || d < 0 || d >= 1e13)
        return -EINVAL;
    *ret = (uint64_t)(d * USEC_PER_SEC + 0.5);
    /* @0 is a time in the past like any other (at once); to the library
     * 0 means no time at all. */
    if (*ret == 0)
        *ret = 1;
    return 0;
}

/* "Z", "+hh:mm", "+hhmm", "+hh" (or '-') into seconds east of UTC. */
static bool zone_offset(const char *p, long *ret) {
    int h, m = 0;
    if (strcmp(p, "Z") == 0 || strcmp(p, "z") == 0) {
        *ret = 0;
        return true;
    }
    if (*p != '+' && *p != '-')
        return false;
    int sign = *p == '-' ? -1 : 1;
    p++;
    if (!digits(&p, 2, &h))
        return false;
    if (*p == ':')
        p++;
    if (*p && !digits(&p, 2, &m))
        return false;
    if (*p || h > 23 || m > 59)
        return false;
    *ret = sign * (h * 3600L + m * 60L);
    return true;
}

int schedopt_parse_at(const char *s, time_t now, uint64_t *ret_usec) {
    struct tm tm = {0};
    double frac = 0;
    time_t t;
    const char *p = s;
    int y, mo, d;

    if (*s == '@')
        return parse_epoch(s + 1, ret_usec);

    if (strlen(s) >= 5 && s[2] == ':') {
        /* HH:MM[:SS]: the next time the clock shows it. */
        struct tm today;
        if (!localtime_r(&now, &today) || !clock_time(&p, &tm, &frac) || *p)
            return -EINVAL;
        for (int day = 0; day < 3; day++) {
            /* The date `day` days on, normalised at noon (the 32nd is the
             * 1st of the next month; noon exists on every day). */
            struct tm date = today;
            date.tm_mday += day;
            date.tm_hour = 12;
            date.tm_min = date.tm_sec = 0;
            date.tm_isdst = -1;
            time_t noon = mktime(&date);
            if (noon == (time_t)-1 || !localtime_r(&noon, &date))
                return -EINVAL;
            date.tm_hour = tm.tm_hour;
            date.tm_min = tm.tm_min;
            date.tm_sec = tm.tm_sec;
            /* A time the clock skips that day: try the next. */
            if (local_to_time(&date, &t) == 0 && (t > now || (t == now && frac > 0)))
                return to_usec(t, frac, ret_usec);
        }
        return -EINVAL;
    }

    /* YYYY-MM-DD[(T| )HH:MM[:SS[.FRAC]]][Z|+hh:mm] */
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return -EINVAL;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31)
        return -EINVAL;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!clock_time(&p, &tm, &frac))
            return -EINVAL;
    }
    int r;
    if (*p) {
        long offset;
        if (!zone_offset(p, &offset))
            return -EINVAL;
        r = utc_to_time(&tm, offset, &t);
    } else {
        r = local_to_time(&tm, &t);
    }
    if (r < 0)
        return r;
    return to_usec(t, frac, ret_usec);
}

int schedopt_parse_ids(const char *s, uint64_t **ids, size_t *n) {
    size_t count = 1;
    for (const char *p = s; *p; p++)
        count += *p == ',';
    if (count > AIOC_SCHEDULE_MAX_AFTER || *n > AIOC_SCHEDULE_MAX_AFTER - count)
        return -E2BIG;
    uint64_t *a = alloc_realloc(*ids, (*n + count) * sizeof(*a));
    if (!a)
        return -ENOMEM;
    *ids = a;
    const char *p = s;
    for (size_t i = 0; i < count; i++) {
        size_t len = strcspn(p, ",");
        uint64_t id = 0;
        if (len == 0 || len > 20)
            return -EINVAL;
        for (size_t j = 0; j < len; j++) {
            if (p[j] < '0' || p[j] > '9')
                return -EINVAL;
            unsigned dg = (unsigned)(p[j] - '0');
            if (id > (UINT64_MAX - dg) / 10)
                return -EINVAL;
            id = id * 10 + dg;
        }
        if (id == 0)
            return -EINVAL;
        a[*n + i] = id;
        p += len + 1;
    }
    *n += count;
    return 0;
}

int schedopt_parse(schedopt *o, int opt, const char *value, time_t now, char *why, size_t why_len) {
    int r = 0;
    double d;

    switch (opt) {
    case SCHEDOPT_RETRIES: {
        char *end;
        errno = 0;
        unsigned long v = *value >= '0' && *value <= '9' ? strtoul(value, &end, 10) : 0;
        if (!(*value >= '0' && *value <= '9') || errno || *end || v > AIOC_SCHEDULE_MAX_RETRIES) {
            snprintf(why, why_len, "wants a number of retries from 0 to %u",
                     AIOC_SCHEDULE_MAX_RETRIES);
            return -EINVAL;
        }
        o->has_retries = true;
        o->retries = (unsigned)v;
        break;
    }
    case SCHEDOPT_BACKOFF:
    case SCHEDOPT_BACKOFF_MAX:
    case SCHEDOPT_DELAY:
        if (schedopt_parse_seconds(value, &d) < 0) {
            snprintf(why, why_len,
                     "wants seconds (a number >= 0, or with a unit: 500ms, 90s, 5m, 2h, 1d)");
            return -EINVAL;
        }
        /* The daemon's bound (as for every timeout): about 31 years. */
        if (d > AIOC_SCHEDULE_MAX_SECONDS) {
            snprintf(why, why_len, "wants at most %g seconds", AIOC_SCHEDULE_MAX_SECONDS);
            return -EINVAL;
        }
        /* 0 reaches the daemon as "unset", its default (1 s, 600 s). */
        if (d <= 0 && opt != SCHEDOPT_DELAY) {
            snprintf(why, why_len, "wants seconds above 0 (leave it out for the default, %s)",
                     opt == SCHEDOPT_BACKOFF ? "1 s" : "600 s");
            return -EINVAL;
        }
        if (opt == SCHEDOPT_BACKOFF) {
            o->has_backoff = true;
            o->backoff = d;
        } else if (opt == SCHEDOPT_BACKOFF_MAX) {
            o->has_backoff_max = true;
            o->backoff_max = d;
        } else {
            o->delay = d;
        }
        break;
    case SCHEDOPT_AT:
        r = schedopt_parse_at(value, now, &o->at_usec);
        if (r == -ERANGE) {
            snprintf(why, why_len,
                     "names a local time the clock skips that day (a daylight saving change): "
                     "give another, or the time with its offset (+hh:mm)");
            return -EINVAL;
        }
        if (r < 0) {
            snprintf(why, why_len,
                     "wants a time: @EPOCH-SECONDS, YYYY-MM-DD[THH:MM[:SS]][Z|+hh:mm] or "
                     "HH:MM[:SS]");
            return -EINVAL;
        }
        break;
    case SCHEDOPT_AFTER:
        r = schedopt_parse_ids(value, &o->after, &o->n_after);
        if (r == -E2BIG)
            snprintf(why, why_len, "names too many tasks (at most %u in all)",
                     AIOC_SCHEDULE_MAX_AFTER);
        else if (r == -ENOMEM)
            snprintf(why, why_len, "is more than there is memory for");
        else if (r < 0)
            snprintf(why, why_len, "wants task ids (positive numbers, comma-separated)");
        if (r < 0)
            return r;
        break;
    default:
        snprintf(why, why_len, "is not a schedule option");
        return -EINVAL;
    }
    o->any = true;
    return 0;
}

int schedopt_check(const schedopt *o, char *why, size_t why_len) {
    if ((o->has_backoff || o->has_backoff_max) && !o->has_retries) {
        snprintf(why, why_len, "option '%s' needs --retries",
                 o->has_backoff ? "--backoff" : "--backoff-max");
        return -EINVAL;
    }
    return 0;
}

int schedopt_build(const schedopt *o, aioc_schedule **ret) {
    aioc_schedule *s = NULL;
    if (!o->any) {
        *ret = NULL;
        return 0;
    }
    int r = aioc_schedule_new(&s);
    if (r >= 0 && o->has_retries)
        r = aioc_schedule_set_retries(s, o->retries, o->backoff, o->backoff_max);
    if (r >= 0 && o->delay > 0)
        r = aioc_schedule_set_delay(s, o->delay);
    if (r >= 0 && o->at_usec)
        r = aioc_schedule_set_at(s, o->at_usec);
    if (r >= 0 && o->n_after)
        r = aioc_schedule_add_after(s, o->after, o->n_after);
    if (r < 0) {
        aioc_schedule_free(s);
        return r;
    }
    *ret = s;
    return 0;
}

char *schedopt_when(uint64_t usec, uint64_t now_usec, char *buf, size_t len) {
    if (usec <= now_usec) {
        snprintf(buf, len, "now");
        return buf;
    }
    uint64_t left = usec - now_usec;
    if (left < 60u * 1000000u) {
        /* Rounded up, so that "in 0.0s" is never said of a time to come. */
        uint64_t tenths = (left + 99999u) / 100000u;
        snprintf(buf, len, "in %" PRIu64 ".%" PRIu64 "s", tenths / 10, tenths % 10);
        return buf;
    }
    if (left < 3600u * 1000000u) {
        uint64_t s = (left + 999999u) / 1000000u;
        snprintf(buf, len, "in %" PRIu64 "m%" PRIu64 "s", s / 60, s % 60);
        return buf;
    }
    time_t t = (time_t)(usec / 1000000u), now = (time_t)(now_usec / 1000000u);
    struct tm tm, today;
    if (!localtime_r(&t, &tm) || !localtime_r(&now, &today)) {
        snprintf(buf, len, "at @%" PRIu64, usec / 1000000u);
        return buf;
    }
    if (tm.tm_year == today.tm_year && tm.tm_yday == today.tm_yday)
        strftime(buf, len, "at %H:%M:%S", &tm);
    else
        strftime(buf, len, "at %Y-%m-%d %H:%M", &tm);
    return buf;
}

/* "12,13,14,+5": the first three ids of the list and how many more. */
static void id_list(const uint64_t *ids, size_t n, char *buf, size_t len) {
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && i < 3 && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%" PRIu64, i ? "," : "", ids[i]);
    if (n > 3 && at < len)
        snprintf(buf + at, len - at, ",+%zu", n - 3);
}

char *schedopt_status(const schedopt_task *t, uint64_t now_usec, char *buf, size_t len) {
    const char *name = aioc_state_name(t->state);
    char when[48], ids[96];

    if (t->state == AIOC_STATE_PENDING) {
        bool retry = t->attempt >= 1;
        if (t->waiting_for)
            snprintf(buf, len, "waiting");
        else if (t->next_run_usec > now_usec && retry)
            snprintf(buf, len, "waiting (retry %" PRIu32 "/%" PRIu32 " %s)", t->attempt + 1,
                     t->max_attempts,
                     schedopt_when(t->next_run_usec, now_usec, when, sizeof(when)));
        else if (t->next_run_usec > now_usec)
            snprintf(buf, len, "waiting (start %s)",
                     schedopt_when(t->next_run_usec, now_usec, when, sizeof(when)));
        else if (t->n_after > 0 && !retry) {
            id_list(t->after, t->n_after, ids, sizeof(ids));
            snprintf(buf, len, "waiting (after %s)", ids);
        } else if (retry)
            snprintf(buf, len, "waiting (retry %" PRIu32 "/%" PRIu32 ")", t->attempt + 1,
                     t->max_attempts);
        else
            snprintf(buf, len, "%s", name);
    } else if (t->state == AIOC_STATE_RUNNING && t->max_attempts > 1) {
        snprintf(buf, len, "running (attempt %" PRIu32 "/%" PRIu32 ")", t->attempt,
                 t->max_attempts);
    } else if (t->state >= AIOC_STATE_DONE && t->attempt > 1) {
        snprintf(buf, len, "%s (%" PRIu32 " attempts)", name, t->attempt);
    } else {
        snprintf(buf, len, "%s", name);
    }
    return buf;
}
