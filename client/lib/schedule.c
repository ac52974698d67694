/*
 * schedule: when and how often a submitted task runs (libaioclient 1.5).
 * An aioc_schedule holds the Schedule message of a Submit as the program
 * built it, checked value by value as it is set, so that aioc_submit_ex
 * and aioc_start_submit_ex only borrow it for the message. What a task
 * info says about attempts and the next run is read in info.c.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "schedule.h"

struct aioc_schedule {
    /* The message as it goes on the wire; `after` is owned. */
    Aiod__Schedule pb;
};

AIOC_EXPORT int aioc_schedule_new(aioc_schedule **ret) {
    if (!ret)
        return -EINVAL;
    aioc_schedule *s = alloc_calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->pb = (Aiod__Schedule)AIOD__SCHEDULE__INIT;
    *ret = s;
    return 0;
}

AIOC_EXPORT void aioc_schedule_free(aioc_schedule *s) {
    if (!s)
        return;
    free(s->pb.after);
    free(s);
}

/* A number of seconds a schedule takes: finite and not negative. */
static bool seconds_valid(double d) {
    return isfinite(d) && d >= 0 && d <= AIOC_SCHEDULE_MAX_SECONDS;
}

AIOC_EXPORT int aioc_schedule_set_retries(aioc_schedule *s, unsigned retries, double backoff,
                                          double backoff_max) {
    if (!s || retries > AIOC_SCHEDULE_MAX_RETRIES || !seconds_valid(backoff) ||
        !seconds_valid(backoff_max))
        return -EINVAL;
    s->pb.retries = retries;
    s->pb.backoff = backoff;
    s->pb.backoff_max = backoff_max;
    return 0;
}

AIOC_EXPORT int aioc_schedule_set_delay(aioc_schedule *s, double delay) {
    if (!s || !seconds_valid(delay))
        return -EINVAL;
    s->pb.delay = delay;
    return 0;
}

AIOC_EXPORT int aioc_schedule_set_at(aioc_schedule *s, uint64_t at_usec) {
    if (!s)
        return -EINVAL;
    s->pb.at_usec = at_usec;
    return 0;
}

AIOC_EXPORT int aioc_schedule_add_after(aioc_schedule *s, const uint64_t *ids, size_t n) {
    if (!s || (!ids && n > 0))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (ids[i] == 0)
            return -EINVAL;
    if (n > AIOC_SCHEDULE_MAX_AFTER || s->pb.n_after > AIOC_SCHEDULE_MAX_AFTER - n)
        return -E2BIG;
    if (n == 0)
        return 0;
    uint64_t *a = alloc_realloc(s->pb.after, (s->pb.n_after + n) * sizeof(*a));
    if (!a)
        return -ENOMEM;
    memcpy(a + s->pb.n_after, ids, n * sizeof(*a));
    s->pb.after = a;
    s->pb.n_after += n;
    return 0;
}

const Aiod__Schedule *schedule_pb(const aioc_schedule *s) {
    return s ? &s->pb : NULL;
}
