/*
 * The state store: SQLite (Debian's libsqlite3) in WAL mode, written by one
 * thread of its own in batches (group commit).
 *
 * Why SQLite: it is the embedded store every Debian system already has,
 * its WAL mode gives exactly the two guarantees the durability setting
 * names (synchronous=FULL syncs the log at every commit; NORMAL syncs it
 * only at checkpoints, so a commit survives a crash of the process but not
 * of the machine), and a damaged file is detected rather than read as
 * garbage.
 *
 * The schema (version 3, PRAGMA user_version):
 *   tasks(id INTEGER PRIMARY KEY, state INTEGER NOT NULL, record BLOB NOT NULL,
 *         finished_usec INTEGER NOT NULL DEFAULT 0)
 *   meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)
 *   log(seq INTEGER PRIMARY KEY, ops BLOB NOT NULL)
 * Version 1 had no finished_usec: its rows read 0 (not known), and are
 * pruned by the layer above once loaded, as before. Version 2 had no log.
 *
 * A commit writes its batch as one row of `log` (storelog.h gives the
 * blob's format), and in the same transaction folds the oldest log rows
 * into `tasks` and `meta` once more than LIMIT_STORE_LOG_RECORDS (or _BYTES)
 * are unfolded: each task's latest change only, as whole records (INSERT OR
 * REPLACE) or deletions, and the folded rows are deleted. A row a second
 * old is folded too (with the next commit, or by the thread when none
 * comes). Opening a store folds its whole log (on a full disk it is read
 * from memory instead, until a commit finds room), and so does a clean
 * close; a reader of the file between the two must apply `log` over
 * `tasks` (docs/architecture.md).
 * auto_vacuum is INCREMENTAL: freed pages are
 * reused, and once more than a quarter of the file (and over 8 MiB) is free,
 * every 64th commit gives back up to 4 MiB of it (incremental_vacuum), so the file
 * shrinks after a large prune without one long VACUUM. Checkpoints are
 * SQLite's automatic ones (every 1000 pages of WAL, 8192 under `os`), run by the writer
 * thread at commit; journal_size_limit truncates the log after them. Under
 * fsync the WAL file is grown once at the start to what it holds between
 * two checkpoints (presize_wal).
 */
#include "system/store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>

#include <sqlite3.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "macro.h"
#include "system/log.h"
#include "system/private.h"
#include "system/storelog.h"
#include "system/wake.h"

typedef struct batch {
    slog_buf ops;
    /* The meta keys it sets (constant strings), kept apart from `ops` for
     * the loop: a failed batch's carry_over asks which later batches set a
     * key while the store's thread may be swapping their buffers. */
    const char *meta_keys[4];
    uint8_t n_meta_keys;
    bool many_meta_keys; /* more than meta_keys holds: counts as setting all */
    uint64_t seq;
    int error;
    char msg[256];
} batch;

/* A committed row of `log`, not yet folded (its blob kept in memory). */
typedef struct log_row {
    uint64_t seq;
    uint64_t at_ms; /* when it committed (CLOCK_MONOTONIC) */
    slog_buf ops;
} log_row;

static sqlite3 *db;
static char *db_path;
static int lock_fd = -1;
static int durability;

static pthread_t thread;
static bool thread_started;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool stopping;
/* store_close is under way: the thread folds nothing more by itself. */
static bool closing;
/* The thread is folding the log while no batch waits (mu). */
static bool folding;
/*
 * Up to STORE_MAX_HANDED batches are handed to the thread at once, so that
 * it can begin the next commit while the loop still answers for the last
 * one. Loop thread: `filling` and the spare batches. Shared under mu:
 * `to_write` (handed, oldest first; the thread writes to_write[0]) and
 * `done` (written, oldest first, for the loop).
 */
static batch batches[STORE_MAX_HANDED + 1];
static batch *filling, *spares[STORE_MAX_HANDED];
static size_t n_spares;
static batch *to_write[STORE_MAX_HANDED], *done[STORE_MAX_HANDED];
static size_t n_to_write, n_done;
static loop_wake done_wake = {.fd = -1};
static void (*committed_cb)(uint64_t seq, int error, const char *msg);
static uint64_t next_seq = 1;
/* Loop thread only: batches handed over whose result it has not yet seen. */
static size_t n_handed;
static uint64_t n_batches, n_rows, max_rows;
static sqlite3_stmt *st_put, *st_delete, *st_meta, *st_begin, *st_commit;
static sqlite3_stmt *st_log_put, *st_log_delete;

/*
 * The unfolded log, oldest first, with the index of its latest changes.
 * The store thread's (the opening thread's before it runs). Buffers of
 * folded rows are kept as spares for the batches, up to two.
 */
static log_row *ring;
static size_t ring_head, ring_n, ring_cap;
static size_t ring_records, ring_bytes;
static slog_index *index_;
static uint64_t log_seq = 1;
/* The highest task id ever written to `tasks`: no row above it is there. */
static uint64_t table_max_id;
static slog_buf spare_bufs[2];
static size_t n_spare_bufs;
/* A fold of the quiet log failed (a full disk): the next waits until. */
static uint64_t fold_retry_ms;

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void close_fdp(int *fd) {
    if (*fd >= 0)
        close(*fd);
}
#define _cleanup_close_ _cleanup_(close_fdp)

static int exec(const char *sql) {
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* One integer from a query, or a negative SQLite result code. */
static int query_int(const char *sql, int64_t *ret) {
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return -rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *ret = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : -rc;
}

static bool is_damage(int rc) {
    rc &= 0xff;
    return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB || rc == SQLITE_FORMAT;
}

/* Whether SQLite's failure `rc` is the disk's having no room: SQLITE_FULL,
 * or an I/O error on a filesystem with under 1 MiB left (SQLite says
 * "disk I/O error" when it cannot size its -shm file). */
static bool is_disk_full(int rc) {
    if ((rc & 0xff) == SQLITE_FULL)
        return true;
    struct statvfs st;
    if ((rc & 0xff) != SQLITE_IOERR || !db_path || statvfs(db_path, &st) < 0)
        return false;
    /* What this process may still write (root may use the reserve). */
    uint64_t avail = geteuid() == 0 ? st.f_bfree : st.f_bavail;
    return avail * st.f_frsize < (uint64_t)1 << 20;
}

/* The error of a store that cannot be opened for want of room: not damage,
 * and it passes once there is room. */
static int say_disk_full(const char *what, char *err, size_t err_len) {
    snprintf(err, err_len,
             "the state store %s cannot be %s: the disk is full; free some space there (aiod "
             "then starts as before: nothing in the store is lost)",
             db_path, what);
    return -ENOSPC;
}

static void say_damaged(const char *what, char *err, size_t err_len) {
    snprintf(err, err_len,
             "the state store %s is damaged (%s): aiod cannot tell which tasks it holds. Stop "
             "here and restore it from a backup, or move it aside yourself, or start aiod once "
             "with --state-recover=fresh to have it moved aside (as %s.damaged-TIME) and start "
             "with an empty store",
             db_path, what, db_path);
}

static void finalize_statements(void);
static int fold_at_open(char *err, size_t err_len);
static void ring_free(void);
/* A task's change in a log left unfolded, and its place there. */
typedef struct overlay_entry {
    slog_op op;
    size_t order;
} overlay_entry;
static int log_overlay(overlay_entry **ret, size_t *ret_n);
static bool log_meta(const char *key, uint64_t *ret);
static uint64_t log_max_id(void);

/* Schema steps: migrations[v] takes a store from version v to v + 1. */
static const char *const migrations[] = {
    /* 0 -> 1: the first schema. */
    ("CREATE TABLE tasks(id INTEGER PRIMARY KEY, state INTEGER NOT NULL, record BLOB NOT NULL);"
     "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"),
    /* 1 -> 2: when a task finished, so that outcomes past their retention
     * are deleted before they are read back (store_prune_finished). */
    "ALTER TABLE tasks ADD COLUMN finished_usec INTEGER NOT NULL DEFAULT 0;",
    /* 2 -> 3: commits go to a log, folded into tasks later. */
    "CREATE TABLE log(seq INTEGER PRIMARY KEY, ops BLOB NOT NULL);",
};
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STORE_SCHEMA_VERSION,
               "one migration per schema version");

/* What the file is, before anything is written to it: a store of a
 * version this aiod knows (*ret_version), a new empty file (0), or refused:
 * a newer store (-EPROTO), damage, or another program's SQLite file
 * (-EBADMSG; --state-recover=fresh moves it aside). */
static int check_schema(int64_t *ret_version, char *err, size_t err_len) {
    int64_t version = 0;
    int r = query_int("PRAGMA user_version", &version);
    if (r < 0) {
        if (is_damage(-r)) {
            say_damaged(sqlite3_errstr(-r), err, err_len);
            return -EBADMSG;
        }
        if (is_disk_full(-r))
            return say_disk_full("read", err, err_len);
        snprintf(err, err_len, "the state store %s cannot be read: %s", db_path,
                 sqlite3_errstr(-r));
        return -EIO;
    }
    if (version > STORE_SCHEMA_VERSION) {
        snprintf(err, err_len,
                 "the state store %s has schema version %lld, made by a newer aiod; this one "
                 "knows versions up to %d. Run the newer aiod, or move the store aside to start "
                 "with an empty one",
                 db_path, (long long)version, STORE_SCHEMA_VERSION);
        return -EPROTO;
    }
    /* A store of any version has both tables, and the log from version 3;
     * version 0 is a new file, with no table at all. */
    int64_t tables = 0;
    if (version == 0) {
        if (query_int("SELECT count(*) FROM sqlite_schema", &tables) < 0 || tables != 0) {
            say_damaged("not an aiod state store: an SQLite file with other tables", err, err_len);
            return -EBADMSG;
        }
    } else if (query_int("SELECT count(*) FROM sqlite_schema WHERE name IN ('tasks','meta','log')",
                         &tables) < 0 ||
               tables != (version >= 3 ? 3 : 2)) {
        say_damaged("its tables are missing", err, err_len);
        return -EBADMSG;
    }
    *ret_version = version;
    return 0;
}

static int migrate(int64_t version, char *err, size_t err_len) {
    if (version == STORE_SCHEMA_VERSION)
        return 0;
    if (exec("BEGIN IMMEDIATE") != SQLITE_OK)
        goto fail;
    for (int64_t v = version; v < STORE_SCHEMA_VERSION; v++)
        if (exec(migrations[v]) != SQLITE_OK)
            goto fail;
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", STORE_SCHEMA_VERSION);
    if (exec(sql) != SQLITE_OK || exec("COMMIT") != SQLITE_OK)
        goto fail;
    return 0;
fail:;
    int rc = sqlite3_extended_errcode(db);
    snprintf(err, err_len,
             "the state store %s: cannot bring its schema from version %lld to %d: %s", db_path,
             (long long)version, STORE_SCHEMA_VERSION, sqlite3_errmsg(db));
    exec("ROLLBACK");
    if (is_damage(rc)) {
        say_damaged(sqlite3_errmsg(db), err, err_len);
        return -EBADMSG;
    }
    return (rc & 0xff) == SQLITE_FULL ? -ENOSPC : -EIO;
}

/* Stores made before set_pragmas chose auto_vacuum first have it NONE, and
 * maybe_vacuum's incremental_vacuum does nothing in them: converted once,
 * by a VACUUM (a copy of the file). If that fails (a full disk, say), the
 * store works as before and the next start tries again. */
static void give_back_space(void) {
    int64_t mode = 0;
    if (query_int("PRAGMA auto_vacuum", &mode) < 0 || mode != 0)
        return;
    if (exec("PRAGMA auto_vacuum=INCREMENTAL") == SQLITE_OK && exec("VACUUM") == SQLITE_OK)
        log_info("the state store %s was converted to incremental auto-vacuum: it now gives "
                 "back the space retention frees",
                 db_path);
    else
        log_warning("the state store %s could not be converted to incremental auto-vacuum (%s); "
                    "it works as before, without giving back freed space, and the next start "
                    "tries again",
                    db_path, sqlite3_errmsg(db));
}

static int set_pragmas(int how, char *err, size_t err_len) {
    sqlite3_stmt *st;
    /* Before journal_mode: setting WAL writes a new file's header, after
     * which SQLite keeps auto_vacuum NONE without a word. An existing
     * store keeps its mode (give_back_space converts one). */
    exec("PRAGMA auto_vacuum=INCREMENTAL");
    /* WAL is kept in the file once set; asking again confirms it. */
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK)
        goto fail;
    int rc = sqlite3_step(st);
    bool wal = rc == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    if (!wal)
        goto fail;
    if (exec(how == STORE_FSYNC ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL") !=
            SQLITE_OK ||
        exec("PRAGMA journal_size_limit=67108864") != SQLITE_OK)
        goto fail;
    /* With os, a commit syncs nothing, and what a checkpoint copies is
     * most of the commit path's work: one every 8192 pages of WAL instead
     * of SQLite's 1000 copies each page rewritten in between (the log's
     * rows, the tasks' leaves) once. With fsync it is not done: a WAL that
     * keeps growing makes every commit's fdatasync write the file's size
     * too (measured: a one-at-a-time submit's p50 went from 1.5x to 2.75x
     * one fdatasync). */
    if (how == STORE_OS && exec("PRAGMA wal_autocheckpoint=8192") != SQLITE_OK)
        goto fail;
    return 0;
fail:
    rc = sqlite3_extended_errcode(db);
    if (is_damage(rc)) {
        say_damaged(sqlite3_errmsg(db), err, err_len);
        return -EBADMSG;
    }
    if (is_disk_full(rc))
        return say_disk_full("set up (WAL mode)", err, err_len);
    snprintf(err, err_len, "the state store %s: cannot set it up (WAL mode): %s", db_path,
             sqlite3_errmsg(db));
    return -EIO;
}

/* Moves the store and its log aside, as PATH.damaged-TIME (the store's new
 * name in `moved`), or PATH.damaged-TIME.N when that name is taken (by an
 * earlier recovery within the same second, say): never over another file. */
static int move_aside(char *moved, size_t moved_len, char *err, size_t err_len) {
    char stamp[48], base[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(base, sizeof(base), "%Y%m%d-%H%M%S", gmtime_r(&now, &tm));
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (unsigned n = 1;; n++) {
        if (n == 1)
            snprintf(stamp, sizeof(stamp), "%s", base);
        else
            snprintf(stamp, sizeof(stamp), "%s.%u", base, n);
        bool taken = false;
        for (size_t i = 0; i < ELEMENTSOF(suffixes) && !taken; i++) {
            char to[4200];
            snprintf(to, sizeof(to), "%s.damaged-%s%s", db_path, stamp, suffixes[i]);
            taken = access(to, F_OK) == 0 || errno != ENOENT;
        }
        if (!taken)
            break;
        if (n == 1000) {
            snprintf(err, err_len,
                     "cannot move the state store %s aside: %s.damaged-%s.* are taken", db_path,
                     db_path, base);
            return -EEXIST;
        }
    }
    for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
        char from[4200], to[4200];
        snprintf(from, sizeof(from), "%s%s", db_path, suffixes[i]);
        snprintf(to, sizeof(to), "%s.damaged-%s%s", db_path, stamp, suffixes[i]);
        if (i == 0)
            snprintf(moved, moved_len, "%s", to);
        /* Free a moment ago; RENAME_NOREPLACE keeps it so, whatever came.
         * A file system without the flag (EINVAL: NFS, older ZFS) gets a
         * plain rename to the name just checked. */
        int moved_r = renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
        if (moved_r < 0 && (errno == EINVAL || errno == ENOSYS))
            moved_r = rename(from, to);
        if (moved_r < 0 && errno != ENOENT) {
            int r = -errno;
            snprintf(err, err_len, "cannot move the state store %s aside to %s: %s", from, to,
                     strerror(-r));
            return r;
        }
    }
    return 0;
}

/* tasks.db empty or gone under a -wal that holds commits (a copy that
 * missed the main file, a truncation): SQLite would start an empty store
 * and drop the log, and with it every task the log holds. */
static int check_not_emptied(char *err, size_t err_len) {
    char wal[4200];
    struct stat db_st, wal_st;
    snprintf(wal, sizeof(wal), "%s-wal", db_path);
    if (stat(wal, &wal_st) < 0 || wal_st.st_size == 0)
        return 0;
    bool gone = stat(db_path, &db_st) < 0;
    if (!gone && db_st.st_size > 0)
        return 0;
    char what[4400];
    snprintf(what, sizeof(what), "%s, while its log %s holds %lld bytes of commits",
             gone ? "the file is missing" : "the file is empty", wal, (long long)wal_st.st_size);
    say_damaged(what, err, err_len);
    return -EBADMSG;
}

static int open_db(int how, char *err, size_t err_len) {
    int r = check_not_emptied(err, err_len);
    if (r < 0)
        return r;
    /* Made private before SQLite opens it: the records hold every user's
     * calls, and SQLite gives its -wal and -shm files the same mode. */
    int fd = open(db_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        r = -errno;
        snprintf(err, err_len, "the state store %s cannot be opened: %s", db_path, strerror(-r));
        return r;
    }
    r = private_check(fd, "the state store file", db_path, err, err_len);
    close(fd);
    if (r < 0)
        return r;
    /* Left by a crash, with the mode the store had then. */
    static const char *const logs[] = {"-wal", "-shm"};
    for (size_t i = 0; i < ELEMENTSOF(logs); i++) {
        char p[4200];
        snprintf(p, sizeof(p), "%s%s", db_path, logs[i]);
        int lfd = open(p, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (lfd >= 0) {
            r = private_check(lfd, "the state store file", p, err, err_len);
            close(lfd);
            if (r < 0)
                return r;
        }
    }
    int rc = sqlite3_open_v2(
        db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, err_len, "the state store %s cannot be opened: %s", db_path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        return rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
    }
    int64_t version = 0;
    r = check_schema(&version, err, err_len);
    if (r >= 0)
        r = set_pragmas(how, err, err_len);
    if (r >= 0)
        r = migrate(version, err, err_len);
    if (r >= 0)
        give_back_space();
    if (r >= 0)
        r = fold_at_open(err, err_len);
    if (r < 0) {
        ring_free();
        finalize_statements();
        /* A refused store is left as it was found: no checkpoint of its
         * -wal into it at this close. */
        sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
        sqlite3_close(db);
        db = NULL;
    }
    return r;
}

/* The store (closed) is damaged as `err` says: moves it aside and opens an
 * empty one; `err` then says both what was wrong and where the file went. */
static int replace_damaged(char *err, size_t err_len) {
    char why[1024], moved[4200];
    snprintf(why, sizeof(why), "%s", err);
    int r = move_aside(moved, sizeof(moved), err, err_len);
    if (r >= 0)
        r = open_db(durability, err, err_len);
    if (r >= 0)
        snprintf(err, err_len,
                 "%s -- --state-recover=fresh: moved aside as %s; starting with an empty store",
                 why, moved);
    return r;
}

int store_start_over(char *err, size_t err_len) {
    assert(db && !thread_started);
    /* A log kept unfolded (a full disk) belongs to the store moved aside:
     * folded into the new one it would bring the damaged store's tasks. */
    ring_free();
    finalize_statements();
    sqlite3_close(db);
    db = NULL;
    return replace_damaged(err, err_len);
}

/* Every batch empty and spare but the one being filled. */
static void batches_reset(void) {
    filling = &batches[0];
    for (size_t i = 1; i < ELEMENTSOF(batches); i++)
        spares[i - 1] = &batches[i];
    n_spares = ELEMENTSOF(batches) - 1;
    n_to_write = n_done = n_handed = 0;
}

int store_open(const char *state_dir, int how, bool fresh, char *err, size_t err_len) {
    assert(!db && (how == STORE_OS || how == STORE_FSYNC));
    durability = how;
    batches_reset();
    char lock_path[4200];
    snprintf(lock_path, sizeof(lock_path), "%s/tasks.db.lock", state_dir);
    _cleanup_close_ int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int r = -errno;
        snprintf(err, err_len, "%s: cannot open: %s", lock_path, strerror(-r));
        return r;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int r = errno == EWOULDBLOCK ? -EBUSY : -errno;
        snprintf(err, err_len,
                 "the state directory %s is in use by another aiod (%s is locked); give each "
                 "daemon its own state_dir",
                 state_dir, lock_path);
        return r;
    }
    if (asprintf(&db_path, "%s/tasks.db", state_dir) < 0) {
        db_path = NULL;
        return -ENOMEM;
    }
    int r = open_db(how, err, err_len);
    if (r == -EBADMSG && fresh)
        r = replace_damaged(err, err_len);
    if (r < 0) {
        free(db_path);
        db_path = NULL;
        return r;
    }
    lock_fd = fd;
    fd = -1;
    return 0;
}

const char *store_path(void) {
    return db_path;
}

/* Calls `each` for the log's latest change of a task if it is a record. */
static int each_logged(int (*each)(void *u, uint64_t id, int state, const void *record, size_t len),
                       void *u, const overlay_entry *e) {
    const slog_op *op = &e->op;
    return op->kind == SLOG_PUT ? each(u, op->id, op->state, op->record, op->len) : 0;
}

int store_load(int (*each)(void *u, uint64_t id, int state, const void *record, size_t len),
               void *u, char *err, size_t err_len) {
    /* A log left unfolded (the disk was full at open) is laid over the
     * tasks: each task's latest change there wins. */
    overlay_entry *log = NULL;
    size_t n_log = 0, k = 0;
    int r = log_overlay(&log, &n_log);
    if (r < 0)
        return r;
    sqlite3_stmt *st;
    int rc =
        sqlite3_prepare_v2(db, "SELECT id, state, record FROM tasks ORDER BY id", -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t id = (uint64_t)sqlite3_column_int64(st, 0);
        for (; r == 0 && k < n_log && log[k].op.id < id; k++)
            r = each_logged(each, u, &log[k]);
        if (r == 0 && k < n_log && log[k].op.id == id)
            r = each_logged(each, u, &log[k++]);
        else if (r == 0)
            r = each(u, id, sqlite3_column_int(st, 1), sqlite3_column_blob(st, 2),
                     (size_t)sqlite3_column_bytes(st, 2));
        if (r < 0) {
            sqlite3_finalize(st);
            free(log);
            return r;
        }
    }
    sqlite3_finalize(st);
    for (; r == 0 && k < n_log; k++)
        r = each_logged(each, u, &log[k]);
    free(log);
    log = NULL;
    if (r < 0)
        return r;
    if (rc == SQLITE_DONE)
        return 0;
fail:
    free(log);
    rc = sqlite3_extended_errcode(db);
    if (is_damage(rc))
        say_damaged(sqlite3_errmsg(db), err, err_len);
    else
        snprintf(err, err_len, "the state store %s cannot be read: %s", db_path,
                 sqlite3_errmsg(db));
    return is_damage(rc) ? -EBADMSG : rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
}

int store_prune_finished(int min_state, uint64_t before_usec, uint64_t *ret_deleted) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "DELETE FROM tasks WHERE state >= ? AND finished_usec > 0 AND "
                           "finished_usec < ?",
                           -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_int(st, 1, min_state);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)before_usec);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return (rc & 0xff) == SQLITE_FULL ? -ENOSPC : -EIO;
    *ret_deleted = (uint64_t)sqlite3_changes(db);
    return 0;
}

int store_max_id(uint64_t *ret) {
    int64_t v = 0;
    int r = query_int("SELECT coalesce(max(id), 0) FROM tasks", &v);
    if (r < 0)
        return -EIO;
    uint64_t logged = log_max_id();
    *ret = logged > (uint64_t)v ? logged : (uint64_t)v;
    return 0;
}

int store_get_meta(const char *key, uint64_t *ret) {
    if (log_meta(key, ret))
        return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int r = -ENOENT;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *ret = (uint64_t)sqlite3_column_int64(st, 0);
        r = 0;
    }
    sqlite3_finalize(st);
    return r;
}

/* ---------------------------------------------------------------- batches */

void *store_put_reserve(uint64_t id, int state, uint64_t finished_usec, size_t len) {
    assert(db && len <= UINT32_MAX);
    return slog_put_reserve(&filling->ops, id, state, finished_usec, len);
}

void store_delete(uint64_t id) {
    /* Out of memory: the row stays until the task's id is pruned at the
     * next start (its outcome past retention), as after a failed commit. */
    (void)slog_delete(&filling->ops, id);
}

static void note_meta_key(batch *b, const char *key) {
    for (size_t i = 0; i < b->n_meta_keys; i++)
        if (strcmp(b->meta_keys[i], key) == 0)
            return;
    if (b->n_meta_keys < ELEMENTSOF(b->meta_keys))
        b->meta_keys[b->n_meta_keys++] = key;
    else
        b->many_meta_keys = true;
}

void store_put_meta(const char *key, uint64_t value) {
    if (slog_meta(&filling->ops, key, value) == 0)
        note_meta_key(filling, key);
}

uint64_t store_batch_seq(void) {
    return next_seq;
}

size_t store_batch_size(void) {
    return filling->ops.n;
}

bool store_busy(void) {
    return n_handed == STORE_MAX_HANDED;
}

/* A batch buffer larger than this is freed once used, not kept: one burst
 * of large records must not hold its memory for the daemon's life. */
#define KEEP_BUF_BYTES ((size_t)4 << 20)

static void batch_clear(batch *b) {
    if (b->ops.cap > KEEP_BUF_BYTES)
        slog_free(&b->ops);
    else
        slog_clear(&b->ops);
    b->n_meta_keys = 0;
    b->many_meta_keys = false;
    b->error = 0;
    b->msg[0] = '\0';
}

bool store_flush(void) {
    if (!thread_started || store_busy() || filling->ops.n == 0)
        return false;
    assert(n_spares > 0);
    pthread_mutex_lock(&mu);
    filling->seq = next_seq++;
    to_write[n_to_write++] = filling;
    pthread_mutex_unlock(&mu);
    n_handed++;
    filling = spares[--n_spares];
    /* Signalled after the unlock: woken under the lock, the writer would
     * only block again on the mutex this thread still holds, a second
     * sleep and wake-up for every batch. */
    pthread_cond_signal(&cond);
    return true;
}

/* ---------------------------------------------------------------- the thread */

static int step_reset(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Gives back up to 4 MiB of free pages if over a quarter of the file and
 * over 8 MiB are free. Whether it did. */
static bool maybe_vacuum(void) {
    int64_t free_pages = 0, pages = 0, page_size = 4096;
    if (query_int("PRAGMA freelist_count", &free_pages) < 0 ||
        query_int("PRAGMA page_count", &pages) < 0 || query_int("PRAGMA page_size", &page_size) < 0)
        return false;
    if (free_pages * 4 > pages && free_pages * page_size > 8 << 20) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%lld)",
                 (long long)((4 << 20) / page_size));
        return exec(sql) == SQLITE_OK;
    }
    return false;
}

static int prepare_statements(void) {
    if (st_put)
        return 0;
    if (sqlite3_prepare_v3(
            db, "INSERT OR REPLACE INTO tasks(id, state, record, finished_usec) VALUES(?, ?, ?, ?)",
            -1, SQLITE_PREPARE_PERSISTENT, &st_put, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db, "DELETE FROM tasks WHERE id = ?", -1, SQLITE_PREPARE_PERSISTENT,
                           &st_delete, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", -1,
                           SQLITE_PREPARE_PERSISTENT, &st_meta, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db, "INSERT INTO log(seq, ops) VALUES(?, ?)", -1,
                           SQLITE_PREPARE_PERSISTENT, &st_log_put, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db, "DELETE FROM log WHERE seq = ?", -1, SQLITE_PREPARE_PERSISTENT,
                           &st_log_delete, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db, "BEGIN", -1, SQLITE_PREPARE_PERSISTENT, &st_begin, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v3(db, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT, &st_commit, NULL) !=
            SQLITE_OK) {
        finalize_statements();
        return -ENOMEM;
    }
    return 0;
}

static void finalize_statements(void) {
    sqlite3_stmt **all[] = {&st_put,        &st_delete, &st_meta,  &st_log_put,
                            &st_log_delete, &st_begin,  &st_commit};
    for (size_t i = 0; i < ELEMENTSOF(all); i++) {
        sqlite3_finalize(*all[i]);
        *all[i] = NULL;
    }
}

/* ---------------------------------------------------------------- the log */

static log_row *ring_at(size_t i) {
    assert(i < ring_n);
    return &ring[(ring_head + i) % ring_cap];
}

/*
 * Whether the oldest row is LIMIT_STORE_LOG_AGE_MS old: the rows over half
 * that age are then folded together, so that a fold by age comes at most
 * about twice a second and not with every commit (a lone client's submits
 * would each carry one).
 */
static bool aged_out(uint64_t now) {
    return ring_n && ring_at(0)->at_ms + LIMIT_STORE_LOG_AGE_MS <= now;
}

/* Room in the ring for `more` rows: 0 or -ENOMEM. */
static int ring_reserve(size_t more) {
    if (ring_n + more <= ring_cap)
        return 0;
    size_t cap = ring_cap ? ring_cap : 64;
    while (cap < ring_n + more)
        cap *= 2;
    log_row *r = alloc_malloc(cap * sizeof(*r));
    if (!r)
        return -ENOMEM;
    for (size_t i = 0; i < ring_n; i++)
        r[i] = *ring_at(i);
    free(ring);
    ring = r;
    ring_cap = cap;
    ring_head = 0;
    return 0;
}

/* Takes `ops` (moved out of the caller) as the newest unfolded row; the
 * ring has room (ring_reserve). */
static void ring_push(uint64_t seq, uint64_t at_ms, slog_buf *ops) {
    assert(ring_n < ring_cap);
    ring[(ring_head + ring_n) % ring_cap] = (log_row){.seq = seq, .at_ms = at_ms, .ops = *ops};
    ring_n++;
    ring_records += ops->n;
    ring_bytes += ops->cap; /* the memory it holds */
    *ops = (slog_buf){0};
}

/* Drops the oldest row (folded); its buffer becomes a spare. */
static void ring_pop(void) {
    log_row *r = ring_at(0);
    ring_records -= r->ops.n;
    ring_bytes -= r->ops.cap;
    if (n_spare_bufs < ELEMENTSOF(spare_bufs) && r->ops.cap <= KEEP_BUF_BYTES) {
        slog_clear(&r->ops);
        spare_bufs[n_spare_bufs++] = r->ops;
    } else
        slog_free(&r->ops);
    ring_head = (ring_head + 1) % ring_cap;
    ring_n--;
}

static void ring_free(void) {
    while (ring_n)
        ring_pop();
    free(ring);
    ring = NULL;
    ring_cap = ring_head = 0;
    for (size_t i = 0; i < n_spare_bufs; i++)
        slog_free(&spare_bufs[i]);
    n_spare_bufs = 0;
    slog_index_free(index_);
    index_ = NULL;
}

/*
 * Folds row `r` into tasks and meta and deletes it, inside the caller's
 * transaction: each change that is its task's latest in the log, a
 * deletion only where tasks may hold the row. *max_id rises with the ids
 * written. The index changes only once the transaction committed.
 */
static int fold_row(const log_row *r, uint64_t *max_id) {
    size_t pos = 0;
    slog_op op;
    int rc = SQLITE_OK, more;
    while (rc == SQLITE_OK && (more = slog_next(r->ops.p, r->ops.len, &pos, &op)) > 0) {
        bool in_table;
        if (op.kind == SLOG_META) {
            sqlite3_bind_text(st_meta, 1, op.key, op.key_len, SQLITE_STATIC);
            sqlite3_bind_int64(st_meta, 2, (sqlite3_int64)op.id);
            rc = step_reset(st_meta);
        } else if (!slog_index_is_latest(index_, r->seq, &op, &in_table)) {
            continue;
        } else if (op.kind == SLOG_PUT) {
            sqlite3_bind_int64(st_put, 1, (sqlite3_int64)op.id);
            sqlite3_bind_int(st_put, 2, op.state);
            sqlite3_bind_blob(st_put, 3, op.record, (int)op.len, SQLITE_STATIC);
            sqlite3_bind_int64(st_put, 4, (sqlite3_int64)op.finished_usec);
            rc = step_reset(st_put);
            if (op.id > *max_id)
                *max_id = op.id;
        } else if (in_table) {
            sqlite3_bind_int64(st_delete, 1, (sqlite3_int64)op.id);
            rc = step_reset(st_delete);
        }
    }
    /* Rows are parsed whole when they are made or read at open. */
    assert(rc != SQLITE_OK || more == 0);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st_log_delete, 1, (sqlite3_int64)r->seq);
        rc = step_reset(st_log_delete);
    }
    return rc;
}

/* After the transaction that folded the `n` oldest rows committed. */
static void folded(size_t n, uint64_t max_id) {
    for (size_t i = 0; i < n; i++) {
        const log_row *r = ring_at(0);
        slog_index_forget(index_, r->seq, r->ops.p, r->ops.len);
        ring_pop();
    }
    table_max_id = max_id;
    if (!ring_n && (slog_index_broken(index_) || slog_index_size(index_)))
        (void)slog_index_reset(index_);
}

/* Folds every unfolded row in one transaction. SQLite result code. */
static int fold_all(void) {
    if (!ring_n)
        return SQLITE_OK;
    uint64_t max_id = table_max_id;
    int rc = step_reset(st_begin);
    for (size_t i = 0; rc == SQLITE_OK && i < ring_n; i++)
        rc = fold_row(ring_at(i), &max_id);
    if (rc == SQLITE_OK)
        rc = step_reset(st_commit);
    if (rc != SQLITE_OK) {
        exec("ROLLBACK");
        return rc;
    }
    folded(ring_n, max_id);
    return SQLITE_OK;
}

/* Forgets the unfolded log held in memory (the store is being closed, or
 * was not opened). */
static void ring_drop(void) {
    while (ring_n)
        ring_pop();
    if (index_)
        (void)slog_index_reset(index_);
}

/* Reads the log rows into the ring and the index, each parsed whole. 0,
 * -EBADMSG (a row does not parse), -ENOMEM, or a positive SQLite code. */
static int read_log(void) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT seq, ops FROM log ORDER BY seq", -1, &st, NULL) != SQLITE_OK)
        return sqlite3_extended_errcode(db);
    int rc, r = 0;
    while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
        const void *blob = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        slog_buf copy = {0};
        slog_op op;
        size_t pos = 0;
        int more;
        /* A fold never meets a bad change: each is checked here. */
        while ((more = slog_next(blob, len, &pos, &op)) > 0 && (op.kind == SLOG_META || op.id))
            copy.n++;
        if (more != 0) {
            r = -EBADMSG;
            break;
        }
        if (ring_reserve(1) < 0 || (len && !(copy.p = alloc_malloc(len)))) {
            r = -ENOMEM;
            break;
        }
        if (len)
            memcpy(copy.p, blob, len);
        copy.len = copy.cap = len;
        /* Out of memory, the index is broken, and every change is folded
         * in order. */
        (void)slog_index_add(index_, seq, copy.p, len, table_max_id);
        ring_push(seq, 0, &copy);
        if (seq >= log_seq)
            log_seq = seq + 1;
    }
    sqlite3_finalize(st);
    if (r == 0 && rc != SQLITE_DONE)
        r = sqlite3_extended_errcode(db);
    return r;
}

/*
 * The log a store was left with (a kill, or a close that could not fold
 * it) is folded before anything reads the tasks back. On a full disk it
 * stays in memory instead: store_load lays it over the tasks, and the
 * first commit that finds room folds it.
 */
static int fold_at_open(char *err, size_t err_len) {
    int64_t max_id = 0;
    int rc;
    if (!index_ && !(index_ = slog_index_new()))
        return -ENOMEM;
    if (prepare_statements() < 0)
        return -ENOMEM;
    if (query_int("SELECT coalesce(max(id), 0) FROM tasks", &max_id) < 0) {
        rc = sqlite3_extended_errcode(db);
        goto fail;
    }
    table_max_id = (uint64_t)max_id;
    int r = read_log();
    if (r == -EBADMSG || r == -ENOMEM) {
        ring_drop();
        if (r == -EBADMSG)
            say_damaged("a row of its log does not parse", err, err_len);
        return r;
    }
    if (r > 0) {
        rc = r;
        goto fail;
    }
    size_t n = ring_records;
    rc = fold_all();
    if (rc == SQLITE_OK) {
        if (n)
            log_info("the state store %s: folded %zu changes left in its log", db_path, n);
        return 0;
    }
    if ((rc & 0xff) == SQLITE_FULL) {
        log_warning("the state store %s: the disk is full, and the %zu changes left in its log "
                    "cannot be folded into its tasks yet: they are read from the log, and "
                    "folded with the first commit that finds room",
                    db_path, n);
        return 0;
    }
fail:
    ring_drop();
    if (is_damage(rc)) {
        say_damaged(sqlite3_errmsg(db), err, err_len);
        return -EBADMSG;
    }
    snprintf(err, err_len, "the state store %s: cannot fold its log into its tasks: %s", db_path,
             sqlite3_errmsg(db));
    return (rc & 0xff) == SQLITE_FULL ? -ENOSPC : (rc & 0xff) == SQLITE_NOMEM ? -ENOMEM : -EIO;
}

/* ------------------------------------------------ a log left unfolded */

static int by_id_then_order(const void *a, const void *b) {
    const overlay_entry *x = a, *y = b;
    if (x->op.id != y->op.id)
        return x->op.id < y->op.id ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Calls fn for every change of the unfolded log, oldest first. */
static void each_log_op(void (*fn)(void *u, const slog_op *op), void *u) {
    for (size_t i = 0; i < ring_n; i++) {
        const log_row *r = ring_at(i);
        size_t pos = 0;
        slog_op op;
        while (slog_next(r->ops.p, r->ops.len, &pos, &op) > 0)
            fn(u, &op);
    }
}

typedef struct overlay_fill {
    overlay_entry *e;
    size_t n;
} overlay_fill;

static void add_to_overlay(void *u, const slog_op *op) {
    overlay_fill *f = u;
    if (op->kind != SLOG_META) {
        f->e[f->n] = (overlay_entry){.op = *op, .order = f->n};
        f->n++;
    }
}

/* Each task's latest change in the unfolded log, by id (the caller frees
 * *ret): 0 or -ENOMEM. Nothing when the log was folded at open. */
static int log_overlay(overlay_entry **ret, size_t *ret_n) {
    *ret = NULL;
    *ret_n = 0;
    if (!ring_n || !ring_records)
        return 0;
    overlay_fill f = {.e = alloc_malloc(ring_records * sizeof(overlay_entry))};
    if (!f.e)
        return -ENOMEM;
    each_log_op(add_to_overlay, &f);
    qsort(f.e, f.n, sizeof(*f.e), by_id_then_order);
    size_t kept = 0;
    for (size_t i = 0; i < f.n; i++) {
        if (i + 1 < f.n && f.e[i + 1].op.id == f.e[i].op.id)
            continue; /* a later change of the same task follows */
        f.e[kept++] = f.e[i];
    }
    *ret = f.e;
    *ret_n = kept;
    return 0;
}

typedef struct meta_find {
    const char *key;
    size_t key_len;
    uint64_t value;
    bool found;
} meta_find;

static void find_meta(void *u, const slog_op *op) {
    meta_find *m = u;
    if (op->kind == SLOG_META && op->key_len == m->key_len &&
        memcmp(op->key, m->key, m->key_len) == 0) {
        m->value = op->id;
        m->found = true;
    }
}

/* The unfolded log's latest value of meta `key`, if it has one. */
static bool log_meta(const char *key, uint64_t *ret) {
    meta_find m = {.key = key, .key_len = strlen(key)};
    each_log_op(find_meta, &m);
    if (m.found)
        *ret = m.value;
    return m.found;
}

static void find_max_id(void *u, const slog_op *op) {
    uint64_t *max = u;
    if (op->kind == SLOG_PUT && op->id > *max)
        *max = op->id;
}

/* The highest task id the unfolded log writes a record of, 0 if none. */
static uint64_t log_max_id(void) {
    uint64_t max = 0;
    each_log_op(find_max_id, &max);
    return max;
}

/* The end of the log row starting at `start` of `ops`: whole changes, at
 * most LIMIT_STORE_LOG_ROW_BYTES unless one change alone is more; its
 * changes in *ret_n. */
static size_t row_end(const slog_buf *ops, size_t start, size_t *ret_n) {
    size_t end = start, n = 0;
    slog_op op;
    for (size_t at = start; slog_next(ops->p, ops->len, &at, &op) > 0; n++) {
        if (n && at - start > LIMIT_STORE_LOG_ROW_BYTES)
            break;
        end = at;
    }
    *ret_n = n;
    return end;
}

/*
 * The batch's changes as log rows, in *ret_rows: `one`, which takes the
 * batch's own buffer (the batch gets a spare one), or, for a batch over
 * LIMIT_STORE_LOG_ROW_BYTES, an array of copies cut at whole changes (the
 * caller frees it). Returns how many, or -ENOMEM (the batch is then as it
 * was).
 */
static int cut_rows(batch *b, slog_buf *one, slog_buf **ret_rows, bool *ret_moved) {
    *ret_moved = b->ops.len <= LIMIT_STORE_LOG_ROW_BYTES;
    if (*ret_moved) {
        *one = b->ops;
        b->ops = n_spare_bufs ? spare_bufs[--n_spare_bufs] : (slog_buf){0};
        *ret_rows = one;
        return 1;
    }
    size_t count = 0, n;
    for (size_t pos = 0; pos < b->ops.len; count++) {
        size_t end = row_end(&b->ops, pos, &n);
        assert(n > 0); /* the batch was made by slog_*, whole */
        pos = end;
    }
    slog_buf *rows = alloc_calloc(count, sizeof(*rows));
    if (!rows)
        return -ENOMEM;
    size_t pos = 0;
    for (size_t i = 0; i < count; i++) {
        size_t end = row_end(&b->ops, pos, &n);
        rows[i] = (slog_buf){.len = end - pos, .cap = end - pos, .n = n};
        if (!(rows[i].p = alloc_malloc(rows[i].len))) {
            while (i)
                slog_free(&rows[--i]);
            free(rows);
            return -ENOMEM;
        }
        memcpy(rows[i].p, b->ops.p + pos, rows[i].len);
        pos = end;
    }
    *ret_rows = rows;
    return (int)count;
}

/* Gives the rows cut_rows made back (the batch was not committed). */
static void uncut_rows(batch *b, slog_buf *rows, int n, bool moved) {
    if (moved) {
        slog_free(&b->ops);
        b->ops = rows[0];
        return;
    }
    while (n)
        slog_free(&rows[--n]);
    free(rows);
}

/*
 * Writes batch `b` as one transaction: the oldest log rows folded while the
 * log would hold too much with it, then the batch as new log rows. Nothing
 * in memory changes unless it commits.
 */
static void write_batch(batch *b) {
    size_t n_ops = b->ops.n, n_bytes = b->ops.cap;
    slog_buf one, *rows = NULL;
    int n_new = 0;
    bool moved = false;
    if (!b->error && prepare_statements() < 0)
        b->error = -ENOMEM;
    if (!b->error && (n_new = cut_rows(b, &one, &rows, &moved)) < 0) {
        n_new = 0;
        b->error = -ENOMEM;
    }
    if (!b->error && ring_reserve((size_t)n_new) < 0) {
        uncut_rows(b, rows, n_new, moved);
        n_new = 0;
        b->error = -ENOMEM;
    }
    int rc = b->error ? SQLITE_NOMEM : step_reset(st_begin);
    uint64_t max_id = table_max_id;
    size_t n_fold = 0;
    bool fold_everything = slog_index_broken(index_);
    size_t records = ring_records, bytes = ring_bytes;
    uint64_t now = now_ms();
    bool aged = aged_out(now);
    while (rc == SQLITE_OK && n_fold < ring_n &&
           (fold_everything || records + n_ops > LIMIT_STORE_LOG_RECORDS ||
            bytes + n_bytes > LIMIT_STORE_LOG_BYTES ||
            (aged && ring_at(n_fold)->at_ms + LIMIT_STORE_LOG_AGE_MS / 2 <= now))) {
        const log_row *r = ring_at(n_fold++);
        records -= r->ops.n;
        bytes -= r->ops.cap;
        rc = fold_row(r, &max_id);
    }
    for (int i = 0; rc == SQLITE_OK && i < n_new; i++) {
        sqlite3_bind_int64(st_log_put, 1, (sqlite3_int64)(log_seq + (uint64_t)i));
        sqlite3_bind_blob(st_log_put, 2, rows[i].p, (int)rows[i].len, SQLITE_STATIC);
        rc = step_reset(st_log_put);
    }
    if (rc == SQLITE_OK)
        rc = step_reset(st_commit);
    if (rc != SQLITE_OK) {
        int code = b->error ? SQLITE_NOMEM : sqlite3_extended_errcode(db);
        snprintf(b->msg, sizeof(b->msg), "the state store %s: %s", db_path,
                 b->error ? "out of memory" : sqlite3_errmsg(db));
        exec("ROLLBACK");
        if (n_new > 0)
            uncut_rows(b, rows, n_new, moved);
        b->error = (code & 0xff) == SQLITE_FULL    ? -ENOSPC
                   : (code & 0xff) == SQLITE_NOMEM ? -ENOMEM
                                                   : -EIO;
        return;
    }
    folded(n_fold, max_id);
    /* The new rows join the unfolded log (the ring has room). An index
     * that cannot record them is broken, and the next commit folds the
     * whole log, which stays right. */
    for (int i = 0; i < n_new; i++) {
        (void)slog_index_add(index_, log_seq, rows[i].p, rows[i].len, table_max_id);
        ring_push(log_seq++, now, &rows[i]);
    }
    if (!moved)
        free(rows);
    n_batches++;
    n_rows += n_ops;
    if (n_ops > max_rows)
        max_rows = n_ops;
    if (n_batches % 64 == 0)
        maybe_vacuum();
}

/* Once the oldest log row is LIMIT_STORE_LOG_AGE_MS old and no batch
 * waits, folds the rows over half that age in one transaction: a quiet
 * daemon's log does not stay unfolded (its pruned outcomes' pages not
 * freed) for long. */
static void fold_old(void) {
    uint64_t now = now_ms(), max_id = table_max_id;
    size_t n = 0;
    int rc = step_reset(st_begin);
    while (rc == SQLITE_OK && n < ring_n && ring_at(n)->at_ms + LIMIT_STORE_LOG_AGE_MS / 2 <= now)
        rc = fold_row(ring_at(n++), &max_id);
    if (rc == SQLITE_OK)
        rc = step_reset(st_commit);
    if (rc != SQLITE_OK) {
        exec("ROLLBACK");
        fold_retry_ms = now + LIMIT_STORE_LOG_AGE_MS;
        return;
    }
    folded(n, max_id);
    maybe_vacuum();
}

/* Waits (mu held) for a batch, the stop, or the oldest log row's age. */
static void wait_for_work(void) {
    while (!n_to_write && !stopping) {
        if (closing || !ring_n) {
            pthread_cond_wait(&cond, &mu);
            continue;
        }
        uint64_t due = ring_at(0)->at_ms + LIMIT_STORE_LOG_AGE_MS;
        if (fold_retry_ms > due)
            due = fold_retry_ms;
        if (now_ms() >= due) {
            folding = true;
            pthread_mutex_unlock(&mu);
            fold_old();
            pthread_mutex_lock(&mu);
            folding = false;
            pthread_cond_broadcast(&cond);
            continue;
        }
        struct timespec ts = {.tv_sec = (time_t)(due / 1000),
                              .tv_nsec = (long)(due % 1000) * 1000000};
        pthread_cond_timedwait(&cond, &mu, &ts);
    }
}

static void *writer_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        wait_for_work();
        if (!n_to_write)
            break;
        batch *b = to_write[0];
        pthread_mutex_unlock(&mu);
        write_batch(b);
        pthread_mutex_lock(&mu);
        memmove(to_write, to_write + 1, --n_to_write * sizeof(to_write[0]));
        done[n_done++] = b;
        pthread_cond_broadcast(&cond);
        /* Sent unlocked: a loop it wakes on this CPU would only block on
         * the mutex. */
        pthread_mutex_unlock(&mu);
        loop_wake_send(&done_wake);
        pthread_mutex_lock(&mu);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* Whether batch `b` sets meta key `key` (loop-owned fields only). */
static bool has_meta(const batch *b, const char *key) {
    if (b->many_meta_keys)
        return true;
    for (size_t i = 0; i < b->n_meta_keys; i++)
        if (strcmp(b->meta_keys[i], key) == 0)
            return true;
    return false;
}

/*
 * A failed batch's deletions and settings go to the front of the batch
 * being filled: the layer above writes its tasks' records again, but a
 * deletion (of a task that ended, was pruned or forgotten) has no task left
 * to do it. A setting is not carried when a newer batch sets it too.
 * `later` are the batches handed after `b`; false when out of memory.
 */
static bool carry_over(const batch *b, batch *const *later, size_t n_later) {
    slog_buf carried = {0};
    size_t pos = 0;
    slog_op op;
    /* The keys carried, as b's constant strings; one b did not keep (it
     * set more than it tracks) counts the batch being filled as setting
     * every key. Only these: a key left behind for a newer batch must not
     * make the batch being filled look as if it set it, or the next
     * failed batch's value of it would be dropped too. */
    const char *keys[ELEMENTSOF(b->meta_keys)];
    size_t n_keys = 0;
    bool unknown_key = false;
    while (slog_next(b->ops.p, b->ops.len, &pos, &op) > 0) {
        if (op.kind == SLOG_PUT)
            continue;
        if (op.kind == SLOG_DELETE) {
            if (slog_delete(&carried, op.id) < 0)
                goto oom;
            continue;
        }
        char key[256];
        memcpy(key, op.key, op.key_len);
        key[op.key_len] = '\0';
        bool newer = has_meta(filling, key);
        for (size_t j = 0; j < n_later && !newer; j++)
            newer = has_meta(later[j], key);
        if (newer)
            continue;
        if (slog_meta(&carried, key, op.id) < 0)
            goto oom;
        size_t i = 0;
        while (i < b->n_meta_keys && strcmp(b->meta_keys[i], key) != 0)
            i++;
        if (i == b->n_meta_keys)
            unknown_key = true;
        else if (n_keys < ELEMENTSOF(keys))
            keys[n_keys++] = b->meta_keys[i];
    }
    if (!carried.n)
        return true;
    if (slog_append(&carried, &filling->ops) < 0)
        goto oom;
    slog_free(&filling->ops);
    filling->ops = carried;
    for (size_t i = 0; i < n_keys; i++)
        note_meta_key(filling, keys[i]);
    filling->many_meta_keys |= unknown_key;
    return true;
oom:
    slog_free(&carried);
    return false;
}

/* On the loop thread: a batch was committed (or failed). */
static void on_done(loop_wake *w) {
    (void)w;
    /* One wake-up may stand for several batches (loop_wake_send coalesces):
     * each is answered, in the order they were committed. */
    batch *got[STORE_MAX_HANDED];
    pthread_mutex_lock(&mu);
    size_t n = n_done;
    memcpy(got, done, n * sizeof(got[0]));
    n_done = 0;
    pthread_mutex_unlock(&mu);
    for (size_t i = 0; i < n; i++) {
        batch *b = got[i];
        uint64_t seq = b->seq;
        int error = b->error;
        char msg[sizeof(b->msg)];
        memcpy(msg, b->msg, sizeof(msg));
        if (error) {
            /* Handed after b and not yet answered: the rest of got, and
             * those the thread still has. */
            batch *later[2 * STORE_MAX_HANDED];
            size_t n_later = 0;
            for (size_t j = i + 1; j < n; j++)
                later[n_later++] = got[j];
            pthread_mutex_lock(&mu);
            for (size_t j = 0; j < n_to_write; j++)
                later[n_later++] = to_write[j];
            pthread_mutex_unlock(&mu);
            if (!carry_over(b, later, n_later))
                log_error("out of memory keeping the deletions of a failed commit; their rows "
                          "stay in %s until the layer above prunes them",
                          db_path);
        }
        batch_clear(b);
        spares[n_spares++] = b;
        n_handed--;
        if (committed_cb)
            committed_cb(seq, error, msg);
    }
}

/*
 * Under fsync, grows the WAL file with zeros, once, to what it holds
 * between two checkpoints (plus an eighth), and syncs it: SQLite then
 * overwrites the file from its start after each checkpoint, and a commit's
 * fdatasync writes its pages only. While the file grows instead, each
 * commit's fdatasync also writes the file's new size through the
 * filesystem's journal: measured on ext4, 220 us against 110 us for the
 * same write inside the file. Only bytes past the end are written, where
 * SQLite reads nothing: it stops at the first frame whose checksum fails,
 * and a file whose header is not valid is an empty log. Best effort: on a
 * failure (a full disk) the file is cut back to its size and commits only
 * cost more.
 */
static void presize_wal(void) {
    int64_t pages = 0, page_size = 0;
    if (durability != STORE_FSYNC || query_int("PRAGMA wal_autocheckpoint", &pages) < 0 ||
        query_int("PRAGMA page_size", &page_size) < 0 || pages <= 0 || page_size <= 0)
        return;
    /* A frame is a 24-byte header and a page; the file a 32-byte header. */
    off_t want = 32 + (off_t)(pages + pages / 8) * (off_t)(page_size + 24);
    char path[4200];
    snprintf(path, sizeof(path), "%s-wal", db_path);
    _cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    struct statfs fs;
    /* On tmpfs a sync writes nothing, and the zeros would only take memory. */
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size >= want ||
        (fstatfs(fd, &fs) == 0 && fs.f_type == TMPFS_MAGIC))
        return;
    static const uint8_t zeros[64 * 1024];
    off_t at = st.st_size;
    errno = 0;
    while (at < want) {
        size_t n = (size_t)MIN((off_t)sizeof(zeros), want - at);
        ssize_t w = pwrite(fd, zeros, n, at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        at += w;
    }
    if (at < want || fdatasync(fd) < 0) {
        log_debug("the state store %s: its log file could not be made %lld bytes (%s); commits "
                  "grow it instead",
                  db_path, (long long)want, at < want && errno == 0 ? "no room" : strerror(errno));
        (void)!ftruncate(fd, st.st_size);
    }
}

int store_start(uv_loop_t *loop, void (*committed)(uint64_t seq, int error, const char *msg)) {
    assert(db && !thread_started);
    committed_cb = committed;
    if (prepare_statements() < 0)
        return -ENOMEM;
    presize_wal();
    /* It never keeps the loop alive by itself: a commit under way is
     * waited for by store_close. */
    int r = loop_wake_init(loop, &done_wake, on_done);
    if (r < 0)
        return r;
    stopping = closing = folding = false;
    fold_retry_ms = 0;
    /* Its timed waits (the log's age) are on the monotonic clock. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&cond, &attr);
    pthread_condattr_destroy(&attr);
    r = pthread_create(&thread, NULL, writer_main, NULL);
    if (r) {
        pthread_cond_destroy(&cond);
        loop_wake_close(&done_wake);
        return -r;
    }
    /* Named, so that top -H, perf and gdb tell it from the loop. */
    pthread_setname_np(thread, "aiod-store");
    thread_started = true;
    return 0;
}

void store_stats(uint64_t *ret_batches, uint64_t *ret_rows, uint64_t *ret_max_rows) {
    *ret_batches = n_batches;
    *ret_rows = n_rows;
    *ret_max_rows = max_rows;
}

/* A write at the close, with nobody left to try it again: a failure is
 * logged, with what it loses. */
static void write_last(batch *b) {
    b->error = 0;
    write_batch(b);
    if (b->error)
        log_error("%s; the last %zu changes before the stop (task records and deletions) were "
                  "not written: the store holds the state before them",
                  b->msg, b->ops.n);
}

void store_close(void) {
    if (thread_started) {
        pthread_mutex_lock(&mu);
        closing = true;
        while (n_to_write || folding)
            pthread_cond_wait(&cond, &mu);
        pthread_mutex_unlock(&mu);
        /* Batches the loop has not answered for: a failed one is answered
         * here as on the loop. Its deletions and settings go into the last
         * batch, unless a batch handed after it sets the same key; its
         * records do not, since the batches after it may hold newer ones:
         * the layer above writes its tasks' current records into the last
         * batch before the close (store.h). */
        for (size_t i = 0; i < n_done; i++) {
            if (!done[i]->error)
                continue;
            log_warning("%s; at the stop, its deletions and settings, and its tasks' current "
                        "records, go with the last commit",
                        done[i]->msg);
            if (!carry_over(done[i], done + i + 1, n_done - i - 1))
                log_error("out of memory keeping the deletions of a failed commit at the stop; "
                          "their rows stay in %s until the next start prunes them",
                          db_path);
        }
        for (size_t i = 0; i < n_done; i++) {
            batch_clear(done[i]);
            spares[n_spares++] = done[i];
        }
        n_done = 0;
        if (filling->ops.n)
            write_last(filling);
        batch_clear(filling);
        pthread_mutex_lock(&mu);
        stopping = true;
        pthread_cond_signal(&cond);
        pthread_mutex_unlock(&mu);
        pthread_join(thread, NULL);
        pthread_cond_destroy(&cond);
        thread_started = false;
        loop_wake_close(&done_wake);
    } else if (db && filling->ops.n) {
        write_last(filling);
        batch_clear(filling);
    }
    /* A clean stop leaves `tasks` whole, for whoever reads the file, and
     * gives back up to 64 MiB of the space retention freed. */
    if (db && ring_n) {
        size_t n = ring_records;
        int rc = fold_all();
        if (rc != SQLITE_OK)
            /* The code, not sqlite3_errmsg: that is the ROLLBACK's by now. */
            log_warning("the state store %s: its log of %zu changes could not be folded into "
                        "its tasks (%s); nothing is lost, the next start folds it",
                        db_path, n, sqlite3_errstr(rc));
    }
    for (int i = 0; db && i < 16 && maybe_vacuum(); i++)
        ;
    ring_free();
    log_seq = 1;
    table_max_id = 0;
    finalize_statements();
    if (db)
        sqlite3_close(db);
    db = NULL;
    free(db_path);
    db_path = NULL;
    if (lock_fd >= 0)
        close(lock_fd);
    lock_fd = -1;
    for (size_t i = 0; i < ELEMENTSOF(batches); i++) {
        slog_free(&batches[i].ops);
        batches[i] = (batch){0};
    }
    batches_reset();
    next_seq = 1;
}
