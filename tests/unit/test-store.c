/*
 * The state store (system/store.c) against real SQLite files in a temporary
 * directory: rows written in batches by the store's thread come back in id
 * order after a close; deletes and meta values are kept; two batches may be
 * handed at once, a third waits, and each committed batch reports its
 * sequence number on the loop, in order; a second open of the same
 * directory is refused; a file that is not a database, or one with a newer
 * schema, is refused with a reason, and --state-recover=fresh moves a
 * damaged one aside; stores are made, or converted, so that they can give
 * free space back (incremental auto-vacuum); the log of commits is folded
 * into the tasks (each task's last change) while it runs, at a clean close,
 * and at the open after a kill, and a log row that does not parse is damage;
 * a failed batch the loop never saw answered is not written over a later
 * one at the close; under fsync the -wal file is grown once to what it
 * holds between two checkpoints, and read to its last commit after a kill.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <sys/file.h>
#include <unistd.h>

#include <linux/magic.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <uv.h>

#include "system/store.h"

static char dir[64];
static char err[2048];

static int setup(void **state) {
    (void)state;
    /* A disk, where it can be (the -wal file is grown only where syncs write). */
    snprintf(dir, sizeof(dir), "/var/tmp/test-store-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

typedef struct row {
    uint64_t id;
    int state;
    char text[32];
} row;

static row rows[64];
static size_t n_rows;

static int collect(void *u, uint64_t id, int state, const void *record, size_t len) {
    (void)u;
    assert_true(n_rows < 64 && len < 32);
    rows[n_rows].id = id;
    rows[n_rows].state = state;
    memcpy(rows[n_rows].text, record, len);
    rows[n_rows].text[len] = '\0';
    n_rows++;
    return 0;
}

static void load(void) {
    n_rows = 0;
    assert_int_equal(store_load(collect, NULL, err, sizeof(err)), 0);
}

static void put_at(uint64_t id, int state, uint64_t finished_usec, const char *text) {
    void *at = store_put_reserve(id, state, finished_usec, strlen(text));
    assert_non_null(at);
    memcpy(at, text, strlen(text));
}

static void put(uint64_t id, int state, const char *text) {
    put_at(id, state, 0, text);
}

static uint64_t committed_seq;
static int committed_error;
/* Every sequence number reported, in the order reported. */
static uint64_t committed_log[8];
static size_t n_committed;

static void on_committed(uint64_t seq, int error, const char *msg) {
    (void)msg;
    committed_seq = seq;
    committed_error = error;
    assert_true(n_committed < sizeof(committed_log) / sizeof(committed_log[0]));
    committed_log[n_committed++] = seq;
}

static void run_until_committed(uv_loop_t *loop, uint64_t seq) {
    while (committed_seq < seq)
        uv_run(loop, UV_RUN_ONCE);
}

static void test_batches_survive_a_close(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    assert_int_equal(store_open(dir, STORE_FSYNC, false, err, sizeof(err)), 0);
    load();
    assert_int_equal(n_rows, 0);
    assert_int_equal(store_start(&loop, on_committed), 0);
    /* A timer keeps the loop polling while the thread commits. */
    uv_timer_t keep;
    uv_timer_init(&loop, &keep);
    uv_timer_start(&keep, (uv_timer_cb)(void (*)(void))abort, 60000, 0);

    uint64_t first = store_batch_seq();
    put(3, 1, "three");
    put(1, 1, "one");
    put(2, 2, "two");
    assert_int_equal(store_batch_size(), 3);
    n_committed = 0;
    assert_true(store_flush());
    /* One batch held: the next may be handed while it commits. */
    assert_false(store_busy());
    put(1, 3, "one done");
    store_delete(2);
    store_put_meta("stopped_usec", 42);
    assert_true(store_flush());
    assert_true(store_busy());
    /* Two held: a third waits for the loop to see the first's result. */
    put(5, 1, "five");
    assert_false(store_flush());
    run_until_committed(&loop, first);
    assert_int_equal(committed_error, 0);
    assert_true(store_flush());
    run_until_committed(&loop, first + 2);
    assert_int_equal(committed_error, 0);
    assert_int_equal(n_committed, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(committed_log[i], first + i);
    assert_false(store_busy());
    uint64_t batches, nrows, max_rows;
    store_stats(&batches, &nrows, &max_rows);
    assert_true(batches >= 3 && nrows >= 7 && max_rows >= 3);
    uv_close((uv_handle_t *)&keep, NULL);
    store_close();
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);

    assert_int_equal(store_open(dir, STORE_OS, false, err, sizeof(err)), 0);
    load();
    assert_int_equal(n_rows, 3);
    assert_int_equal(rows[0].id, 1);
    assert_int_equal(rows[0].state, 3);
    assert_string_equal(rows[0].text, "one done");
    assert_int_equal(rows[1].id, 3);
    assert_string_equal(rows[1].text, "three");
    assert_int_equal(rows[2].id, 5);
    uint64_t v = 0;
    assert_int_equal(store_get_meta("stopped_usec", &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(store_get_meta("nothing", &v), -ENOENT);
    /* What is left in the batch is committed by the close itself. */
    put(9, 1, "nine");
    store_close();
    assert_int_equal(store_open(dir, STORE_OS, false, err, sizeof(err)), 0);
    load();
    assert_int_equal(n_rows, 4);
    assert_int_equal(rows[3].id, 9);
    store_close();
}

static void test_one_daemon_per_directory(void **state) {
    (void)state;
    /* What another daemon holds: flock is per open file description, so a
     * second one in this process conflicts the same way. */
    char path[128];
    snprintf(path, sizeof(path), "%s/tasks.db.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    assert_int_equal(store_open(dir, STORE_FSYNC, false, err, sizeof(err)), -EBUSY);
    assert_non_null(strstr(err, "in use by another aiod"));
    close(fd);
    assert_int_equal(store_open(dir, STORE_FSYNC, false, err, sizeof(err)), 0);
    store_close();
}

static void write_file(const char *name, const char *text) {
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_damaged_is_refused_or_moved_aside(void **state) {
    (void)state;
    char garbage[8192];
    memset(garbage, 'x', sizeof(garbage) - 1);
    garbage[sizeof(garbage) - 1] = '\0';
    write_file("tasks.db", garbage);
    assert_int_equal(store_open(dir, STORE_FSYNC, false, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "is damaged"));
    assert_non_null(strstr(err, "--state-recover=fresh"));

    assert_int_equal(store_open(dir, STORE_FSYNC, true, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "moved aside"));
    load();
    assert_int_equal(n_rows, 0);
    store_close();
    DIR *d = opendir(dir);
    assert_non_null(d);
    bool found = false;
    for (struct dirent *e; (e = readdir(d));)
        found |= strncmp(e->d_name, "tasks.db.damaged-", 17) == 0;
    closedir(d);
    assert_true(found);
}

static void test_newer_schema_is_refused(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/tasks.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=7", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(dir, STORE_FSYNC, false, err, sizeof(err)), -EPROTO);
    assert_non_null(strstr(err, "schema version 7, made by a newer aiod"));
    /* --state-recover=fresh is for damage, not for a newer aiod's store. */
    assert_int_equal(store_open(dir, STORE_FSYNC, true, err, sizeof(err)), -EPROTO);
}

static void test_version_1_is_migrated(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/tasks.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL;"
                     "CREATE TABLE tasks(id INTEGER PRIMARY KEY, state INTEGER NOT NULL, "
                     "record BLOB NOT NULL);"
                     "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
                     "INSERT INTO tasks VALUES(5, 3, 'five');"
                     "PRAGMA user_version=1;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(dir, STORE_FSYNC, false, err, sizeof(err)), 0);
    /* The old row reads as before, with no finish time: never pruned here. */
    uint64_t deleted = 9;
    assert_int_equal(store_prune_finished(3, UINT64_MAX / 2, &deleted), 0);
    assert_int_equal(deleted, 0);
    load();
    assert_int_equal(n_rows, 1);
    assert_int_equal(rows[0].id, 5);
    assert_string_equal(rows[0].text, "five");
    /* New rows carry it, and a prune by age deletes only the finished. */
    put_at(6, 3, 1000, "six");
    put_at(7, 2, 0, "seven");
    store_close();
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), STORE_SCHEMA_VERSION);
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_int_equal(store_open(dir, STORE_FSYNC, false, err, sizeof(err)), 0);
    assert_int_equal(store_prune_finished(3, 2000, &deleted), 0);
    assert_int_equal(deleted, 1);
    load();
    assert_int_equal(n_rows, 2);
    assert_int_equal(rows[0].id, 5);
    assert_int_equal(rows[1].id, 7);
    store_close();
}

/* PRAGMA auto_vacuum of the store at `path`, read by a connection of its own. */
static int auto_vacuum_of(const char *path) {
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA auto_vacuum", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int mode = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return mode;
}

static void test_stores_can_give_space_back(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/tasks.db", dir);
    /* A new store is made with incremental auto-vacuum (2), which SQLite
     * leaves at none (0) if WAL is set first. */
    assert_int_equal(store_open(dir, STORE_OS, false, err, sizeof(err)), 0);
    store_close();
    assert_int_equal(auto_vacuum_of(path), 2);
    /* A store made that way before (WAL first, so none) is converted at its
     * next open, its rows kept. */
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -f %s/tasks.db*", dir);
    assert_int_equal(system(cmd), 0);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA auto_vacuum=INCREMENTAL;"
                     "CREATE TABLE tasks(id INTEGER PRIMARY KEY, state INTEGER NOT NULL, "
                     "record BLOB NOT NULL, finished_usec INTEGER NOT NULL DEFAULT 0);"
                     "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
                     "INSERT INTO tasks VALUES(4, 3, 'four', 0);"
                     "PRAGMA user_version=2;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(auto_vacuum_of(path), 0);
    assert_int_equal(store_open(dir, STORE_OS, false, err, sizeof(err)), 0);
    load();
    assert_int_equal(n_rows, 1);
    assert_string_equal(rows[0].text, "four");
    store_close();
    assert_int_equal(auto_vacuum_of(path), 2);
}

static void test_missing_tables_are_damage(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/tasks.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=1", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(dir, STORE_FSYNC, false, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "tables are missing"));
}

/* ---------------------------------------------------------------- the log */

/* Rows of `table` in the store at `path`, read by a connection of its own. */
static int64_t count_rows(const char *path, const char *table) {
    sqlite3 *db;
    sqlite3_stmt *st;
    char sql[64];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/*
 * The random changes of the log tests: `batches` batches of changes to ids
 * 1..LOG_IDS, each a record (a put) or, one time in four, a deletion, from
 * a fixed seed, so that a child can make them and its parent know them.
 */
#define LOG_IDS 100000u
#define LOG_SEED UINT64_C(88172645463325252)
static char model[LOG_IDS + 1][24];

static uint64_t rng_next(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Applies batch `b`'s changes to the model, and to the store if `write`. */
static void make_batch(uint64_t *rng, unsigned b, size_t n, bool write) {
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rng_next(rng);
        uint64_t id = 1 + r % LOG_IDS;
        if ((r >> 32) % 4 == 0) {
            model[id][0] = '\0';
            if (write)
                store_delete(id);
        } else {
            snprintf(model[id], sizeof(model[id]), "%" PRIu64 "@%u.%zu", id, b, i);
            if (write)
                put(id, (int)(r >> 40) % 4, model[id]);
        }
    }
}

/* The durability the killed children open their store with. */
static int kill_how = STORE_OS;
/* The size of the killed child's -wal file once its store started. */
static off_t killed_wal_size;

static off_t wal_size(void) {
    char p[128];
    struct stat st;
    snprintf(p, sizeof(p), "%s/tasks.db-wal", dir);
    return stat(p, &st) < 0 ? -1 : st.st_size;
}

/* In a child: the changes of `batches` batches, each committed, and then
 * a SIGKILL (the log left unfolded). */
static void write_batches_and_die(unsigned batches, size_t per_batch) {
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid > 0) {
        int status;
        close(pipefd[1]);
        killed_wal_size = -1;
        assert_int_equal(read(pipefd[0], &killed_wal_size, sizeof(killed_wal_size)),
                         sizeof(killed_wal_size));
        close(pipefd[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
            fprintf(stderr, "the child's status: 0x%x\n", status);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        return;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    close(pipefd[0]);
    if (store_open(dir, kill_how, false, err, sizeof(err)) < 0 ||
        store_start(&loop, on_committed) < 0)
        _exit(2);
    off_t size = wal_size();
    if (write(pipefd[1], &size, sizeof(size)) != sizeof(size))
        _exit(6);
    uv_timer_t keep;
    uv_timer_init(&loop, &keep);
    uv_timer_start(&keep, (uv_timer_cb)(void (*)(void))abort, 60000, 0);
    uint64_t rng = LOG_SEED;
    committed_seq = 0;
    for (unsigned b = 0; b < batches; b++) {
        make_batch(&rng, b, per_batch, true);
        uint64_t seq = store_batch_seq();
        n_committed = 0;
        if (!store_flush())
            _exit(3);
        run_until_committed(&loop, seq);
        if (committed_error)
            _exit(4);
    }
    /* A kill, as aiod's after a SIGKILL: nothing of the store's runs. */
    raise(SIGKILL);
    _exit(5);
}

/* A child makes `batches` batches and is killed; the model then holds
 * what they changed. Returns the generator's state, for more batches. */
static uint64_t batches_then_kill(unsigned batches, size_t per_batch) {
    memset(model, 0, sizeof(model));
    write_batches_and_die(batches, per_batch);
    uint64_t rng = LOG_SEED;
    for (unsigned b = 0; b < batches; b++)
        make_batch(&rng, b, per_batch, false);
    return rng;
}

static size_t n_checked;

static int check_model(void *u, uint64_t id, int state, const void *record, size_t len) {
    (void)u;
    (void)state;
    assert_true(id >= 1 && id <= LOG_IDS);
    assert_int_equal(len, strlen(model[id]));
    assert_memory_equal(record, model[id], len);
    n_checked++;
    return 0;
}

static void expect_model(void) {
    size_t want = 0;
    for (size_t id = 1; id <= LOG_IDS; id++)
        want += model[id][0] != '\0';
    n_checked = 0;
    assert_int_equal(store_load(check_model, NULL, err, sizeof(err)), 0);
    assert_int_equal(n_checked, want);
}

static void test_a_killed_store_folds_its_log_at_open(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/tasks.db", dir);
    /* Few changes: the log is not folded before the kill. */
    (void)batches_then_kill(5, 200);
    assert_int_equal(count_rows(path, "tasks"), 0);
    assert_int_equal(count_rows(path, "log"), 5);
    assert_int_equal(store_open(dir, STORE_OS, false, err, sizeof(err)), 0);
    expect_model();
    assert_int_equal(count_rows(path, "log"), 0);
    store_close();
}

static void test_random_changes_fold_to_the_last_of_each(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/tasks.db", dir);
    /* 240,000 changes to 100,000 ids: more than the log keeps unfolded, so
     * commits fold its oldest rows (a change superseded later skipped, a
     * deletion of a task the table never had skipped) while the newest stay
     * in the log for the open after the kill to fold. */
    uint64_t rng = batches_then_kill(400, 600);
    assert_true(count_rows(path, "tasks") > 0);
    assert_true(count_rows(path, "log") > 0);
    assert_int_equal(store_open(dir, STORE_OS, false, err, sizeof(err)), 0);
    expect_model();
    store_close();
    /* And a clean close after more changes leaves no log at all. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    assert_int_equal(store_open(dir, STORE_OS, false, err, sizeof(err)), 0);
    assert_int_equal(store_start(&loop, on_committed), 0);
    for (unsigned b = 400; b < 410; b++)
        make_batch(&rng, b, 600, true);
    store_close();
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(count_rows(path, "log"), 0);
    assert_int_equal(store_open(dir, STORE_OS, false, err, sizeof(err)), 0);
    expect_model();
    store_close();
}

/*
 * Under fsync the store grows its -wal file once, with zeros, to what it
 * holds between two checkpoints (so that commits overwrite it instead of
 * growing it, and their fdatasync writes no new size). SQLite must read
 * such a file to its last commit after a kill: enough batches to go round
 * it (checkpoints restart it from its start, over older frames), then a
 * kill, then an open.
 */
static void test_a_presized_log_file_is_read_to_its_last_commit(void **state) {
    (void)state;
    kill_how = STORE_FSYNC;
    /* 1000 pages between checkpoints under fsync, of 4096 bytes and a
     * 24-byte header each, and an eighth more. */
    const off_t want = 32 + (off_t)1125 * (4096 + 24);
    (void)batches_then_kill(300, 600);
    kill_how = STORE_OS;
    struct statfs fs;
    assert_int_equal(statfs(dir, &fs), 0);
    if (fs.f_type == TMPFS_MAGIC) {
        /* Not on tmpfs, where a sync writes nothing. */
        assert_true(killed_wal_size < want);
    } else {
        assert_true(killed_wal_size >= want);
        assert_true(wal_size() >= want);
    }
    assert_int_equal(store_open(dir, STORE_FSYNC, false, err, sizeof(err)), 0);
    expect_model();
    store_close();
    /* Under os the file is left to grow as SQLite grows it (a new store). */
    static const char *const files[] = {"tasks.db", "tasks.db-wal", "tasks.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        char p[128];
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    (void)batches_then_kill(1, 10);
    assert_true(killed_wal_size < want);
    assert_int_equal(store_open(dir, STORE_OS, false, err, sizeof(err)), 0);
    expect_model();
    store_close();
}

static void test_a_log_row_that_does_not_parse_is_damage(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/tasks.db", dir);
    assert_int_equal(store_open(dir, STORE_OS, false, err, sizeof(err)), 0);
    store_close();
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    /* A record whose length runs past the row's end. */
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO log VALUES(1, x'50010000000000000002000000000000"
                                  "000000000000ff000000616263')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(dir, STORE_OS, false, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "a row of its log does not parse"));
    assert_int_equal(store_open(dir, STORE_OS, true, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "moved aside"));
    store_close();
}

static struct rlimit files_before;
static volatile sig_atomic_t overruns_left;

/* SIGXFSZ: the write that overran failed (EFBIG); after the number of
 * overruns asked for, the limit goes, and later writes have room. */
static void on_overrun(int sig) {
    (void)sig;
    if (overruns_left > 0 && --overruns_left == 0)
        setrlimit(RLIMIT_FSIZE, &files_before);
}

/*
 * The store's files may grow by only 64 KiB more: a batch with a 256 KiB
 * record cannot be written, a small one can. With `lift_after` > 0 the
 * limit goes after that many overruns; limit_files(-1) lifts it.
 */
static void limit_files(int lift_after) {
    static struct sigaction old_sa;
    if (lift_after < 0) {
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &files_before), 0);
        assert_int_equal(sigaction(SIGXFSZ, &old_sa, NULL), 0);
        return;
    }
    char wal[200];
    snprintf(wal, sizeof(wal), "%s/tasks.db-wal", dir);
    struct stat st;
    assert_int_equal(stat(wal, &st), 0);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &files_before), 0);
    struct rlimit limit = {(rlim_t)st.st_size + 65536, files_before.rlim_max};
    assert_true(files_before.rlim_max == RLIM_INFINITY || files_before.rlim_max >= limit.rlim_cur);
    overruns_left = lift_after;
    struct sigaction sa = {.sa_handler = on_overrun};
    assert_int_equal(sigaction(SIGXFSZ, &sa, &old_sa), 0);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &limit), 0);
}

static void put_big(uint64_t id) {
    size_t len = 256 << 10;
    void *at = store_put_reserve(id, 1, 0, len);
    assert_non_null(at);
    memset(at, 'b', len);
}

/* Opens a store whose first batch (`first`, then the caller's) committed. */
static void start_with(uv_loop_t *loop, uv_timer_t *keep, void (*first)(void)) {
    uv_loop_init(loop);
    assert_int_equal(store_open(dir, STORE_OS, false, err, sizeof(err)), 0);
    assert_int_equal(store_start(loop, on_committed), 0);
    uv_timer_init(loop, keep);
    uv_timer_start(keep, (uv_timer_cb)(void (*)(void))abort, 60000, 0);
    uint64_t seq = store_batch_seq();
    first();
    committed_seq = 0;
    assert_true(store_flush());
    run_until_committed(loop, seq);
    assert_int_equal(committed_error, 0);
}

/* Closes it without the loop running again: the results of the batches
 * handed since wait for it, and the close answers them itself. */
static void close_unanswered(uv_loop_t *loop, uv_timer_t *keep) {
    uv_close((uv_handle_t *)keep, NULL);
    store_close();
    limit_files(-1);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* The ids and states in `tasks` (folded whole by the close), as "id:state ...". */
static void table_rows(char *out, size_t len) {
    sqlite3 *db;
    char path[200];
    snprintf(path, sizeof(path), "%s/tasks.db", dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT id, state FROM tasks ORDER BY id", -1, &q, NULL), SQLITE_OK);
    out[0] = '\0';
    while (sqlite3_step(q) == SQLITE_ROW)
        snprintf(out + strlen(out), len - strlen(out), "%d:%d ", sqlite3_column_int(q, 0),
                 sqlite3_column_int(q, 1));
    sqlite3_finalize(q);
    sqlite3_close(db);
}

static uint64_t stored_meta(const char *key) {
    uint64_t v = 0;
    assert_int_equal(store_open(dir, STORE_OS, false, err, sizeof(err)), 0);
    assert_int_equal(store_get_meta(key, &v), 0);
    store_close();
    return v;
}

static void first_one(void) {
    put(1, 1, "one");
    store_put_meta("stopped_usec", 1);
}

/*
 * A batch fails and the one handed after it commits, and the loop stops
 * before it sees either result. The close used to write the failed batch
 * again whole, over the later one: a task's newer record and a newer
 * setting were replaced with older ones. It now answers the failed batch as
 * the loop does: its settings go into the last batch unless a later batch
 * set them, and its records are left to the caller, who writes its tasks'
 * current records (here, none: task 2 was only in the failed batch).
 */
static void test_a_failed_batch_answered_at_the_close_keeps_newer_records(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_timer_t keep;
    start_with(&loop, &keep, first_one);
    /* The failed batch could be written whole again at the close. */
    limit_files(1);
    put(1, 2, "one again");
    put_big(2);
    store_put_meta("stopped_usec", 2);
    assert_true(store_flush());
    put(1, 3, "one done");
    store_put_meta("stopped_usec", 3);
    assert_true(store_flush());
    close_unanswered(&loop, &keep);
    assert_int_equal(overruns_left, 0); /* the failure came */
    char rows_seen[200];
    table_rows(rows_seen, sizeof(rows_seen));
    assert_string_equal(rows_seen, "1:3 "); /* "one done", not "one again" */
    assert_int_equal(stored_meta("stopped_usec"), 3);
}

static void first_seven(void) {
    put(7, 1, "seven");
    store_put_meta("stopped_usec", 5);
}

/*
 * Two batches fail in a row, the first with a deletion: the deletion is
 * carried, and the second's setting too. (The first's setting, left for
 * the newer one, used to count as carried, and then kept the second's out:
 * the stored value stayed the one before both.)
 */
static void test_two_failed_batches_carry_the_newer_setting(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_timer_t keep;
    start_with(&loop, &keep, first_seven);
    limit_files(0);
    store_delete(7);
    put_big(8);
    store_put_meta("stopped_usec", 1);
    assert_true(store_flush());
    put_big(9);
    store_put_meta("stopped_usec", 2);
    assert_true(store_flush());
    close_unanswered(&loop, &keep);
    char rows_seen[200];
    table_rows(rows_seen, sizeof(rows_seen));
    assert_string_equal(rows_seen, ""); /* 7 deleted; 8 and 9 left to the caller */
    assert_int_equal(stored_meta("stopped_usec"), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batches_survive_a_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_daemon_per_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_is_refused_or_moved_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_1_is_migrated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_tables_are_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stores_can_give_space_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_killed_store_folds_its_log_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_changes_fold_to_the_last_of_each, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_presized_log_file_is_read_to_its_last_commit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_log_row_that_does_not_parse_is_damage, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_failed_batch_answered_at_the_close_keeps_newer_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_failed_batches_carry_the_newer_setting, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
