/*
 * The state store (store.c): SQLite in WAL mode, in STATE_DIR/tasks.db.
 * It keeps rows of (id, state, record), where the record is bytes the layer
 * above made, and knows nothing of what they mean.
 *
 * Writes are batched: store_put and store_delete add to the batch being
 * filled, store_flush hands it to the store's own thread, which commits it
 * as one transaction and then calls `committed` on the loop thread. The
 * thread holds at most STORE_MAX_HANDED batches and commits them one at a
 * time, in the order handed, so the loop can hand the next batch while it
 * still answers for the last one. No SQLite call runs on the loop thread
 * once store_start ran.
 */
#ifndef AIOD_STORE_H
#define AIOD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* The durability setting: what a committed batch survives. */
enum store_durability {
    STORE_NONE,  /* no store: nothing survives the process */
    STORE_OS,    /* written to the OS: survives a crash of aiod, not of the machine */
    STORE_FSYNC, /* synced: survives a power loss */
};

/* The schema this daemon writes (PRAGMA user_version). */
#define STORE_SCHEMA_VERSION 3

/*
 * Opens (creating it) STATE_DIR/tasks.db, takes the directory's store lock
 * (one daemon per store), migrates an older schema and sets `durability`
 * (STORE_OS or STORE_FSYNC). With `fresh`, a store that cannot be opened or
 * read is moved aside as tasks.db.damaged-YYYYmmdd-HHMMSS (with its -wal and
 * -shm) and an empty one made. 0; a negative errno with the whole reason,
 * including what to do, in `err`: -EBADMSG damaged, -EPROTO made by a newer
 * aiod, -EBUSY locked by another daemon, -ENOSPC, -EIO, -ENOMEM.
 */
int store_open(const char *state_dir, int durability, bool fresh, char *err, size_t err_len);

/*
 * Calls `each` for every row, in id order, on the calling thread (at start,
 * before store_start). `each` returns 0 to go on, or a negative errno that
 * stops the walk and is returned. 0; -EBADMSG (damaged, reason in `err`).
 */
int store_load(int (*each)(void *u, uint64_t id, int state, const void *record, size_t len),
               void *u, char *err, size_t err_len);

/*
 * For damage found after the store opened (store_load's -EBADMSG, or a row
 * the layer above cannot decode), under --state-recover=fresh: closes the
 * store, moves it aside as store_open does and opens an empty one in its
 * place. Before store_start only. `err` holds the damage on entry; on
 * success it says that and where the file went. 0, or a negative errno
 * with the reason in `err` (the store is then closed).
 */
int store_start_over(char *err, size_t err_len);

/* The file's path (valid while open). */
const char *store_path(void);

/*
 * Starts the writer thread. `committed(seq, error)` runs on the loop thread
 * after batch `seq` (the value store_batch_seq returned while it was being
 * filled) committed (error 0) or was rolled back (a negative errno:
 * -ENOSPC when the disk is full, -EIO); `msg` then says why. 0, -ENOMEM,
 * or a pthread error.
 */
int store_start(uv_loop_t *loop, void (*committed)(uint64_t seq, int error, const char *msg));

/* Adds a row write of `len` bytes to the batch being filled, for the
 * caller to fill at once (the task's record): where they go (valid until
 * the next call into the store), or NULL when out of memory (the batch is
 * as it was). `finished_usec` is 0 while unfinished. */
void *store_put_reserve(uint64_t id, int state, uint64_t finished_usec, size_t len);
/* Adds a row deletion to the batch being filled. */
void store_delete(uint64_t id);
/* Sets a meta value (key taken as a constant string), in the batch. */
void store_put_meta(const char *key, uint64_t value);
/* At start (before store_start): deletes the rows in a state >= min_state
 * that finished before `before_usec`, and says how many. 0; -ENOSPC, -EIO. */
int store_prune_finished(int min_state, uint64_t before_usec, uint64_t *ret_deleted);

/* The highest task id in the store, 0 if none, at start (before
 * store_start): 0, -EIO. */
int store_max_id(uint64_t *ret);

/* Reads a meta value at start (before store_start): 0, -ENOENT. */
int store_get_meta(const char *key, uint64_t *ret);

/* The sequence number of the batch being filled (starts at 1). */
uint64_t store_batch_seq(void);
/* Rows in the batch being filled. */
size_t store_batch_size(void);
/* Batches the writer may hold at once: one being committed, and the next,
 * handed over while the loop still answers for the one before. */
#define STORE_MAX_HANDED 2
/* Whether the writer holds STORE_MAX_HANDED batches (no more can be handed). */
bool store_busy(void);

/* Hands the batch being filled to the writer if it holds fewer than
 * STORE_MAX_HANDED batches and the batch holds anything. Returns true if
 * it did. */
bool store_flush(void);

/* Statistics: batches committed, rows written, and the largest batch. */
void store_stats(uint64_t *ret_batches, uint64_t *ret_rows, uint64_t *ret_max_rows);

/*
 * Commits whatever is left, stops the thread and closes the file. A batch
 * that failed and whose result the loop has not seen is answered as on the
 * loop: its deletions and settings go into the last batch, and its records
 * do not (a batch handed after it may have committed newer ones). The
 * caller writes the current records of the tasks of every unanswered batch
 * into the batch being filled first.
 */
void store_close(void);

#endif
