/*
 * Durable tasks (persist.c): what of the task table goes to the state store
 * (system/store.h), when, and what comes back at start.
 *
 * A durable task is a client's SUBMITTED or DETACHED task while the store
 * is on (durability os or fsync). Its record (a StoredTask, aiod.proto) is
 * written whenever it changes (queued, started, retried, ended) and deleted
 * when it leaves the table (a detached task at its end, a retained outcome
 * when pruned). Changes made in one loop iteration are written together,
 * one transaction per batch on the store's thread, never on the loop.
 *
 * Two things wait for a commit:
 *   - whoever must not answer before the task is durable (the Submitted
 *     reply): persist_when_committed;
 *   - the task's start: an attempt runs only once its record says RUNNING
 *     (persist_gate, run.c's start gate), so that after a crash a task that
 *     may have run is never taken for one that did not.
 */
#ifndef AIOD_PERSIST_H
#define AIOD_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/forward.h"
#include "base/list.h"

/* Called once the record a waiter was registered for is committed
 * (error 0) or could not be (a negative errno, and why). */
typedef struct persist_waiter persist_waiter;
struct persist_waiter {
    list node;
    void (*fn)(persist_waiter *w, int error, const char *why);
    void *data;
    /* The task whose record it waits for (set by persist_when_committed;
     * the waiter's owner keeps it alive). */
    task *task;
};

/*
 * Reads every row of the open store (store_open ran) without restoring
 * anything: whether each is a task record aiod can decode. For
 * --state-recover=fresh, which must move a damaged store aside before any
 * of its tasks is restored. 0; -EBADMSG (damaged: the reason in `err`).
 */
int persist_check(char *err, size_t err_len);

/*
 * Reads the open store (store_open ran) back into the task table, in id
 * order: pending tasks are started again (through their plans), tasks that
 * were running follow their function's on_interrupt policy, finished ones
 * are retained outcomes. Rows of functions not loaded now stay in the store
 * untouched (logged). Then starts the store's thread and takes changes.
 * 0; a negative errno with the reason in `err` (-EBADMSG: damaged).
 */
int persist_start(uv_loop_t *loop, char *err, size_t err_len);

/* Whether tasks are kept (persist_start ran and no freeze yet). */
bool persist_enabled(void);

/* Makes the new task `t` durable: its record will be written. */
void persist_track(task *t);

/* Registers `w` for the commit of `t`'s record as it is now. */
void persist_when_committed(task *t, persist_waiter *w);
/* Whether `t`'s latest record (its outcome, once it ended) is not yet
 * committed: queued for the next batch, or in the batch being committed.
 * False for a task the store does not keep. */
bool persist_record_pending(const task *t);
/* Registers `w` for the commit of `t`'s latest record (t is
 * persist_record_pending); a record still queued goes with the next
 * batch at once, without the lazy wait of a lone outcome. */
void persist_when_record_committed(task *t, persist_waiter *w);
/* Unregisters a waiter that has not fired. Safe to call twice. */
void persist_waiter_cancel(persist_waiter *w);

/* The start gate of run.c: true if `t` may start its attempt now. */
bool persist_gate(task *t);

/* A task that was never acknowledged (its first commit failed) is no
 * longer written, and any row of it is deleted with the next batch: it
 * ends failed with kind "StoreError" and `why`. */
void persist_forget(task *t, const char *why);

/*
 * At shutdown (SIGTERM), before the remaining tasks are cancelled: the time
 * of the stop is recorded, and from now on the cancellations the stop makes
 * are not written, so that tasks cut off by it keep the state they had
 * (pending, or running: interrupted at the next start). Outcomes tasks
 * reach otherwise during shutdown_grace are still written.
 */
void persist_freeze(void);

/* Commits what is left and closes the store (after the loop stopped). */
void persist_done(void);

/* Batches and rows written, and the largest batch (for the logs). */
void persist_stats(uint64_t *ret_batches, uint64_t *ret_rows, uint64_t *ret_max_rows);

/* Whether a function's interrupted tasks run again (on_interrupt =
 * retry): the last matching on_interrupt setting, else its descriptor's
 * field (ABI 1.3), else no (fail). */
bool persist_retries_on_interrupt(const fn_entry *fn);

/* Whether a task the stop cut off (TASK_STORE_CUT_OFF) was running then:
 * the next start settles it by on_interrupt, where a pending one runs. */
bool persist_cut_off_while_running(const task *t);

/* Whether an interrupted task runs again at the next start: on_interrupt
 * = retry, and fewer than LIMIT_INTERRUPT_RETRIES interruptions so far. */
bool persist_runs_again_after_interrupt(const task *t);

/* What becomes of a task the stop cut off, as a client is told (after
 * "task N (F) "): kept as it was, or what the restart does with it. A
 * constant string. */
const char *persist_cut_off_fate(const task *t);

#endif
