/*
 * The state store's log (storelog.c): a batch's changes serialized as one
 * blob, which store.c commits as a single row of its `log` table, and the
 * index of the changes not yet folded into the `tasks` table.
 *
 * Why a log: a commit then writes one row however many tasks changed,
 * instead of one B-tree insert per record and one delete per pruned
 * outcome. The rows are folded into `tasks` later (store.c keeps about
 * LIMIT_STORE_LOG_RECORDS of them unfolded), and a change superseded by a
 * later one in the log is never folded at all: a task submitted, finished
 * and pruned within that window never touches `tasks`.
 *
 * A blob is a sequence of changes, integers little-endian:
 *   'P' id:u64 state:i32 finished_usec:u64 len:u32 record[len]   (a record)
 *   'D' id:u64                                                   (a deletion)
 *   'M' key_len:u8 key[key_len] value:u64                        (a meta value)
 * Not thread-safe: a buffer is filled by one thread at a time, and the
 * index is the store thread's (and the opening thread's, before it runs).
 */
#ifndef AIOD_STORELOG_H
#define AIOD_STORELOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { SLOG_PUT = 'P', SLOG_DELETE = 'D', SLOG_META = 'M' };

/* A growable blob of changes. Zero-initialized is empty. */
typedef struct slog_buf {
    uint8_t *p;
    size_t len, cap;
    size_t n; /* changes in it */
} slog_buf;

/* Appending: 0 or -ENOMEM (the buffer is then as it was). `key` is at
 * most 255 bytes. */
int slog_put(slog_buf *b, uint64_t id, int32_t state, uint64_t finished_usec, const void *record,
             size_t len);
/* Appends a record of `len` bytes left for the caller to fill: where they
 * go, valid until the buffer next changes, or NULL when out of memory. */
void *slog_put_reserve(slog_buf *b, uint64_t id, int32_t state, uint64_t finished_usec, size_t len);
int slog_delete(slog_buf *b, uint64_t id);
int slog_meta(slog_buf *b, const char *key, uint64_t value);
/* Appends all of `from`'s bytes: 0 or -ENOMEM. */
int slog_append(slog_buf *b, const slog_buf *from);
void slog_clear(slog_buf *b);
void slog_free(slog_buf *b);

/* One change read back. Pointers borrow the blob. */
typedef struct slog_op {
    uint8_t kind;
    size_t off;  /* where it starts in the blob */
    uint64_t id; /* SLOG_PUT, SLOG_DELETE; the value for SLOG_META */
    int32_t state;
    uint64_t finished_usec;
    const void *record;
    uint32_t len;
    const char *key; /* SLOG_META: key_len bytes, not terminated */
    uint8_t key_len;
} slog_op;

/* The change at *pos of blob p (len bytes), advancing *pos: 1, 0 at the
 * end, or -EBADMSG when the blob does not parse (a damaged store). */
int slog_next(const uint8_t *p, size_t len, size_t *pos, slog_op *op);

/*
 * The index of the unfolded log: for each task id, where its latest change
 * is (the log row's sequence number and the change's offset), and whether
 * the `tasks` table may hold a row of it. A change is folded only if it is
 * its task's latest; a deletion only if the table may hold the row.
 */
typedef struct slog_index slog_index;

slog_index *slog_index_new(void);
void slog_index_free(slog_index *x);
/* Records the changes of row `seq` (after those of older rows). `table_max_id`
 * is the highest id ever written to `tasks`: a task above it has no row
 * there. 0 or -ENOMEM. */
int slog_index_add(slog_index *x, uint64_t seq, const uint8_t *p, size_t len,
                   uint64_t table_max_id);
/* Whether change `op` of row `seq` is its task's latest; *ret_in_table says
 * whether `tasks` may hold a row of it. */
bool slog_index_is_latest(const slog_index *x, uint64_t seq, const slog_op *op, bool *ret_in_table);
/* After row `seq` was folded: forgets the changes of it that were latest. */
void slog_index_forget(slog_index *x, uint64_t seq, const uint8_t *p, size_t len);
/* Whether an add failed (out of memory, or a blob that does not parse):
 * every change then counts as latest and as maybe in the table, so that
 * folding the rows in order stays right, if slower. */
bool slog_index_broken(const slog_index *x);
/* Empties the index, for a log folded whole: 0 or -ENOMEM (it then stays
 * as it was). */
int slog_index_reset(slog_index *x);
/* Tasks with an unfolded change. */
size_t slog_index_size(const slog_index *x);

#endif
