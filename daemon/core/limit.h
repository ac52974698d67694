/*
 * Concurrency limits: how many tasks of a function, or of a named group of
 * functions, run at once (a semaphore around the function, like pueue's
 * groups). The rest stay pending in FIFO order and are shown as waiting.
 * Limits come from the plugin descriptor (max_concurrent, group) and can be
 * overridden by the daemon's settings.
 */
#ifndef AIOD_LIMIT_H
#define AIOD_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/forward.h"

/* Sets a limit from the settings: `key` is "function NAME" or "group NAME";
 * 0 removes the limit. 0, -ENOMEM. */
int limit_set_override(const char *key, uint32_t max);

/* Replaces the overrides with the settings' `limit =` lines ("NAME N" or
 * "group NAME N", already checked by the settings parser). 0 or -ENOMEM. */
int limit_load_rules(char *const *rules, size_t n);

/* Drops every override (before the settings set them again on reload);
 * limiters in use fall back to their descriptor's value. */
void limit_clear_overrides(void);

/* Before a task first runs: true if it may run now (a slot is taken),
 * false if it was queued behind the limit (it is started by
 * limit_release later). */
bool limit_acquire(task *t);

/* A task ends (or is cancelled while queued): frees its slot or its place
 * in the queue, and starts the next waiting task. */
void limit_release(task *t, void (*start)(task *next));

/* After the limits changed (a reload): starts, in order, the waiting tasks
 * that the new limits let run (all of those of a limit that was removed).
 * Without this they would wait until a task of their limit ends, and those
 * of a removed limit for ever. */
void limit_start_waiting(void (*start)(task *next));

/* How many more tasks of `fn` its limit (of the function or its group) lets
 * start now: 0 when it is full or tasks wait for it, UINT32_MAX without a
 * limit. A host taking queued work asks before it takes any. */
uint32_t limit_room(fn_entry *fn);

/* The limit a waiting task waits for ("function x.y", "group g"), or NULL
 * (also for any finished task). */
const char *limit_waiting_for(const task *t);

/* Frees every limiter (at exit). */
void limit_done(void);

#endif
