/*
 * The stall detector (stall.h).
 *
 * The loop's thread publishes what it does in `doing`, a seqlock of atomics:
 * each change makes `seq` odd, writes the fields, makes it even again. The
 * detector's thread wakes every LIMIT_STALL_CHECK_MS (more often under a
 * low threshold: check_ms below), reads a consistent
 * copy (retrying while `seq` is odd or moved meanwhile), and if the loop has
 * not waited (for I/O) for the threshold, writes its line, naming what runs
 * now, and posts the stall in `report`: a drain of a million short task
 * steps holds the loop as much as one long step. When the loop waits again
 * it sees the report and logs the whole length. Only atomics are shared, so ThreadSanitizer has
 * nothing to say, and the detector never touches the loop's memory: a
 * task's function name is copied into `doing.name` word by word.
 */
#include "system/stall.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "base/aiod_limits.h"
#include "system/log.h"

enum { DOING_WAITING, DOING_RUNNING, DOING_TASK, DOING_REQUEST };

/* A function name is kept in this many 8-byte words: 47 bytes and a NUL. */
#define NAME_WORDS 6
#define NAME_SIZE (NAME_WORDS * 8)

/* What the loop does now. Written by the loop's thread only. */
static struct {
    /* Odd while the fields change; grows by 2 with every change, so that it
     * is also the heartbeat. */
    _Atomic uint64_t seq;
    _Atomic uint32_t kind;
    /* When this began, in coarse monotonic milliseconds. */
    _Atomic uint64_t since_ms;
    /* When the loop last stopped waiting (0 while it waits): a run of many
     * short task steps or requests holds the loop as surely as one long
     * one, so a stall is measured from here, and named by what runs now. */
    _Atomic uint64_t busy_since_ms;
    /* The task id, or the connection's serial. */
    _Atomic uint64_t id;
    /* The requesting connection's uid. */
    _Atomic uint32_t uid;
    /* The task's function name, NUL-terminated. */
    _Atomic uint64_t name[NAME_WORDS];
} doing;

/* A stall the detector has reported: `seq` is the heartbeat it saw (0: none
 * outstanding). The detector writes `held_ms` and then `seq` (release) only
 * while `seq` is 0; the loop's thread reads them and sets `seq` back to 0. */
static struct {
    _Atomic uint64_t seq;
    _Atomic uint64_t held_ms;
} report;

/* A consistent copy of `doing`. */
typedef struct snapshot {
    uint64_t seq;
    uint32_t kind;
    uint64_t since_ms;
    uint64_t busy_since_ms;
    uint64_t id;
    uint32_t uid;
    char name[NAME_SIZE];
} snapshot;

/* The loop thread's own state. */
static bool on;
static uv_prepare_t prepare_handle;
static uv_check_t check_handle;
/* What the loop does when it is in no task and no request: waiting after
 * the prepare phase, running after the check phase. */
static uint32_t base_kind = DOING_RUNNING;
/* Copies of what was last published, and when the loop stopped waiting. */
static uint64_t seq_now;
static snapshot last;
static uint64_t busy_since;
/* What the detector saw when it reported (a copy of `last` then), for the
 * line that ends the stall. */
static snapshot seen;
static bool seen_valid;

/* Set before the thread starts, read-only afterwards. */
static uint32_t threshold_ms;
/* How often the thread looks: a quarter of the threshold, at most
 * LIMIT_STALL_CHECK_MS. Looking every 100 ms under a 40 ms threshold
 * missed a 120 ms stall whenever no look fell in its last 80 ms. */
static uint32_t check_ms;
static bool to_journal;
static bool warnings_logged;

static pthread_t thread;
static bool thread_started;
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond;
/* Guarded by `mutex`. */
static bool stopping;

static uint64_t coarse_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* "by task 12 (demo.spin)" and the like, for either thread's line. */
static void describe(const snapshot *s, char *buf, size_t size) {
    switch (s->kind) {
    case DOING_TASK:
        snprintf(buf, size, "by task %llu (%s)", (unsigned long long)s->id, s->name);
        break;
    case DOING_REQUEST:
        snprintf(buf, size, "by a request from connection %llu (uid %u)", (unsigned long long)s->id,
                 (unsigned)s->uid);
        break;
    default:
        snprintf(buf, size, "outside any task");
        break;
    }
}

/* The loop waits again after a stall the detector reported: log how long
 * it was held in all. `now_ms` is when it began to wait. */
static void report_end(uint64_t now_ms) {
    (void)atomic_exchange_explicit(&report.seq, 0, memory_order_acquire);
    char what[NAME_SIZE + 96] = "";
    if (seen_valid)
        describe(&seen, what, sizeof(what));
    seen_valid = false;
    log_warning("event loop held for %llu ms in all%s%s; it runs again",
                (unsigned long long)(now_ms - busy_since), *what ? " " : "", what);
}

/* The name `doing.name` and `last.name` hold a copy of: the next publish
 * naming the same string skips the copy (a drain runs many steps of one
 * function). stall_forget_name clears it before the string is freed. */
static const char *name_copied;
static bool name_valid;

/* Publishes what the loop does from now on; `t` is coarse_ms() now. */
static void publish(uint32_t kind, uint64_t id, uint32_t uid, const char *name, uint64_t t) {
    uint64_t reported = atomic_load_explicit(&report.seq, memory_order_acquire);
    if (reported != 0 && reported == last.seq && !seen_valid) {
        seen = last; /* what the detector named, about to be replaced */
        seen_valid = true;
    }
    if (kind == DOING_WAITING && reported != 0)
        report_end(t);
    if (kind == DOING_WAITING)
        busy_since = 0;
    else if (!busy_since)
        busy_since = t;
    bool new_name = !name_valid || name != name_copied;
    uint64_t words[NAME_WORDS];
    if (new_name) {
        char buf[NAME_SIZE] = {0};
        if (name) {
            size_t n = strnlen(name, NAME_SIZE - 1);
            memcpy(buf, name, n);
        }
        memcpy(words, buf, sizeof(words));
        memcpy(last.name, buf, sizeof(buf));
        name_copied = name;
        name_valid = true;
    }

    /* No fences (GCC refuses them under ThreadSanitizer): each field is
     * stored with release, so none becomes visible before the odd `seq`. */
    atomic_store_explicit(&doing.seq, seq_now + 1, memory_order_relaxed);
    atomic_store_explicit(&doing.kind, kind, memory_order_release);
    atomic_store_explicit(&doing.since_ms, t, memory_order_release);
    atomic_store_explicit(&doing.busy_since_ms, busy_since, memory_order_release);
    atomic_store_explicit(&doing.id, id, memory_order_release);
    atomic_store_explicit(&doing.uid, uid, memory_order_release);
    if (new_name)
        for (int i = 0; i < NAME_WORDS; i++)
            atomic_store_explicit(&doing.name[i], words[i], memory_order_release);
    seq_now += 2;
    atomic_store_explicit(&doing.seq, seq_now, memory_order_release);

    last.seq = seq_now;
    last.kind = kind;
    last.since_ms = t;
    last.id = id;
    last.uid = uid;
}

void stall_enter_task(uint64_t id, const char *function, uint64_t now_ms) {
    if (on)
        publish(DOING_TASK, id, 0, function, now_ms);
}

void stall_forget_name(const char *name) {
    if (name && name == name_copied)
        name_valid = false;
}

void stall_enter_request(uint64_t serial, uid_t uid) {
    if (on)
        publish(DOING_REQUEST, serial, (uint32_t)uid, NULL, coarse_ms());
}

void stall_leave(void) {
    if (on)
        publish(base_kind, 0, 0, NULL, coarse_ms());
}

void stall_not_serving(void) {
    if (!on)
        return;
    base_kind = DOING_WAITING;
    publish(DOING_WAITING, 0, 0, NULL, coarse_ms());
}

static void on_prepare(uv_prepare_t *h) {
    (void)h;
    base_kind = DOING_WAITING;
    publish(DOING_WAITING, 0, 0, NULL, coarse_ms());
}

static void on_check(uv_check_t *h) {
    (void)h;
    base_kind = DOING_RUNNING;
    publish(DOING_RUNNING, 0, 0, NULL, coarse_ms());
}

/* The detector's side: a consistent copy of `doing`, false if the loop kept
 * changing it (then it is not stalled). */
static bool read_doing(snapshot *s) {
    for (int tries = 0; tries < 64; tries++) {
        uint64_t seq = atomic_load_explicit(&doing.seq, memory_order_acquire);
        if (seq & 1)
            continue;
        /* Each field loaded with acquire: the second look at `seq` cannot
         * move before them. */
        s->kind = atomic_load_explicit(&doing.kind, memory_order_acquire);
        s->since_ms = atomic_load_explicit(&doing.since_ms, memory_order_acquire);
        s->busy_since_ms = atomic_load_explicit(&doing.busy_since_ms, memory_order_acquire);
        s->id = atomic_load_explicit(&doing.id, memory_order_acquire);
        s->uid = atomic_load_explicit(&doing.uid, memory_order_acquire);
        uint64_t words[NAME_WORDS];
        for (int i = 0; i < NAME_WORDS; i++)
            words[i] = atomic_load_explicit(&doing.name[i], memory_order_acquire);
        if (atomic_load_explicit(&doing.seq, memory_order_relaxed) != seq)
            continue;
        memcpy(s->name, words, sizeof(words));
        s->name[NAME_SIZE - 1] = '\0';
        s->seq = seq;
        return true;
    }
    return false;
}

/* The detector's line: one journal entry, or one write(2) to stderr in
 * log.c's format, so that it never interleaves with the loop's lines. */
static void say(const snapshot *s, uint64_t held) {
    char what[NAME_SIZE + 96], msg[NAME_SIZE + 160];
    describe(s, what, sizeof(what));
    snprintf(msg, sizeof(msg), "event loop held for %llu ms %s (stall_warning_ms is %u)",
             (unsigned long long)held, what, threshold_ms);
    if (to_journal) {
        int r;
        if (s->kind == DOING_TASK)
            r = sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", LOG_WARNING,
                                "SYSLOG_IDENTIFIER=aiod", "TASK_ID=%llu", (unsigned long long)s->id,
                                "FUNCTION=%s", s->name, NULL);
        else
            r = sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", LOG_WARNING,
                                "SYSLOG_IDENTIFIER=aiod", NULL);
        if (r >= 0)
            return;
    }
    char line[sizeof(msg) + 64];
    int n = snprintf(line, sizeof(line), "aiod[%d]: warning: %s\n", (int)getpid(), msg);
    if (n > 0)
        (void)!write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* One look at the loop. `reported`: when the busy period last reported
 * began, so that each stall is reported once. */
static void look(uint64_t *reported) {
    snapshot s;
    if (!read_doing(&s) || s.kind == DOING_WAITING || !s.busy_since_ms ||
        s.busy_since_ms == *reported)
        return;
    uint64_t now = coarse_ms();
    uint64_t held = now > s.busy_since_ms ? now - s.busy_since_ms : 0;
    if (held < threshold_ms || atomic_load_explicit(&report.seq, memory_order_acquire) != 0)
        return;
    *reported = s.busy_since_ms;
    if (warnings_logged)
        say(&s, held);
    atomic_store_explicit(&report.held_ms, held, memory_order_relaxed);
    atomic_store_explicit(&report.seq, s.seq, memory_order_release);
}

static void *watch(void *arg) {
    (void)arg;
    uint64_t reported = 0;
    pthread_mutex_lock(&mutex);
    while (!stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)check_ms * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&cond, &mutex, &ts);
        if (stopping)
            break;
        pthread_mutex_unlock(&mutex);
        look(&reported);
        pthread_mutex_lock(&mutex);
    }
    pthread_mutex_unlock(&mutex);
    return NULL;
}

int stall_start(uv_loop_t *loop, uint32_t threshold) {
    if (threshold == 0 || on)
        return 0;
    threshold_ms = threshold;
    check_ms = threshold / 4 < LIMIT_STALL_CHECK_MS ? threshold / 4 : LIMIT_STALL_CHECK_MS;
    if (check_ms == 0)
        check_ms = 1;
    to_journal = log_to_journal();
    warnings_logged = log_get_max_priority() >= LOG_WARNING;

    pthread_condattr_t ca;
    int r = pthread_condattr_init(&ca);
    if (r == 0) {
        r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (r == 0)
            r = pthread_cond_init(&cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (r != 0)
        return log_warning_errno(-r, "cannot start the stall detector, running without it");

    /* The first change: a loop that stalls before its first iteration is
     * still seen, as running outside any task. */
    on = true;
    publish(DOING_RUNNING, 0, 0, NULL, coarse_ms());
    uv_prepare_init(loop, &prepare_handle);
    uv_check_init(loop, &check_handle);
    uv_prepare_start(&prepare_handle, on_prepare);
    uv_check_start(&check_handle, on_check);
    uv_unref((uv_handle_t *)&prepare_handle);
    uv_unref((uv_handle_t *)&check_handle);

    r = pthread_create(&thread, NULL, watch, NULL);
    if (r != 0) {
        stall_stop();
        return log_warning_errno(-r, "cannot start the stall detector, running without it");
    }
    pthread_setname_np(thread, "aiod-stall");
    thread_started = true;
    return 0;
}

void stall_stop(void) {
    if (!on)
        return;
    if (thread_started) {
        pthread_mutex_lock(&mutex);
        stopping = true;
        pthread_cond_signal(&cond);
        pthread_mutex_unlock(&mutex);
        pthread_join(thread, NULL);
        thread_started = false;
    }
    pthread_cond_destroy(&cond);
    on = false;
    if (!uv_is_closing((uv_handle_t *)&prepare_handle))
        uv_close((uv_handle_t *)&prepare_handle, NULL);
    if (!uv_is_closing((uv_handle_t *)&check_handle))
        uv_close((uv_handle_t *)&check_handle, NULL);
}
