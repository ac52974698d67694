/*
 * The task id counter that survives restarts and crashes.
 *
 * STATE_DIR/next-id holds one decimal number: no id at or above it has ever
 * been handed out. Ids are handed out from a block [first, end) only after
 * `end` is on disk (a temporary file, fdatasync, rename over next-id, fsync
 * of the directory; on a disk with no room for the temporary file, written
 * over next-id in place), so whatever moment the daemon dies at, the next start
 * begins at or above every id used before. A restart skips what was left of
 * the last block; ids are never reused, only skipped.
 *
 * Each reservation holds an exclusive flock on STATE_DIR/next-id.lock, so
 * two daemons that share a state directory still never hand out one id
 * twice.
 */
#include "system/idstore.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/aiod_limits.h"
#include "system/private.h"
#include "macro.h"

static int dir_fd = -1;
static char *dir_path;
static uint64_t block = LIMIT_ID_BLOCK_MIN;

/* mkdir -p with mode 0700 for the directories it makes. */
static int make_dirs(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char was = *p;
        *p = '\0';
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
            return -errno;
        *p = was;
        if (!was)
            return 0;
    }
}

static void close_fdp(int *fd) {
    if (*fd >= 0)
        close(*fd);
}
#define _cleanup_close_ _cleanup_(close_fdp)

/* Reads next-id: 1 when the file does not exist yet. */
static int read_next(uint64_t *ret, char *err, size_t err_len) {
    _cleanup_close_ int fd = openat(dir_fd, "next-id", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) {
            *ret = 1;
            return 0;
        }
        int r = -errno;
        snprintf(err, err_len, "%s/next-id: cannot open: %s", dir_path, strerror(-r));
        return r;
    }
    char buf[32];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n < 0) {
        int r = -errno;
        snprintf(err, err_len, "%s/next-id: cannot read: %s", dir_path, strerror(-r));
        return r;
    }
    buf[n] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno || end == buf || (*end && *end != '\n') || v == 0 || v > LIMIT_LOCAL_ID_END) {
        snprintf(err, err_len,
                 "%s/next-id is damaged (it should hold one positive number, at most %llu, where "
                 "a cluster's ids begin); ids cannot be guaranteed unique: with the daemon "
                 "stopped, write a number above every id used, or remove the file (aiod then "
                 "starts past the ids its state store records)",
                 dir_path, (unsigned long long)LIMIT_LOCAL_ID_END);
        return -EBADMSG;
    }
    *ret = v;
    return 0;
}

/*
 * On a disk with no room for a new file: writes `text` over next-id in
 * place, durably. The file's block is already allocated, the number only
 * grows (the text is never shorter than what it replaces), and one small
 * write at offset 0 lies within a sector, so it lands whole or not at all.
 * 0 or a negative errno.
 */
static int overwrite_next(const char *text, size_t len) {
    _cleanup_close_ int fd = openat(dir_fd, "next-id", O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    ssize_t n = pwrite(fd, text, len, 0);
    if (n != (ssize_t)len)
        return n < 0 ? -errno : -ENOSPC;
    return fdatasync(fd) < 0 ? -errno : 0;
}

/* Replaces next-id with `v`, durably. */
static int write_next(uint64_t v, char *err, size_t err_len) {
    char tmp[64], text[32];
    snprintf(tmp, sizeof(tmp), "next-id.tmp.%d", (int)getpid());
    int len = snprintf(text, sizeof(text), "%" PRIu64 "\n", v);
    _cleanup_close_ int fd =
        openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    int r = 0;
    const char *what = "create";
    bool renamed = false;
    if (fd < 0)
        r = -errno;
    else if (write(fd, text, (size_t)len) != len)
        r = errno ? -errno : -EIO, what = "write";
    else if (fdatasync(fd) < 0)
        r = -errno, what = "sync";
    else if (renameat(dir_fd, tmp, dir_fd, "next-id") < 0)
        r = -errno, what = "rename";
    else {
        renamed = true;
        if (fsync(dir_fd) < 0)
            r = -errno, what = "sync the directory of";
    }
    if (r == 0)
        return 0;
    unlinkat(dir_fd, tmp, 0);
    /* Only while next-id is still the old file: after the rename, a failed
     * directory sync means the rename itself may not last, and writing
     * the new file again would not make it. */
    int in_place = 0;
    if ((r == -ENOSPC || r == -EDQUOT) && !renamed) {
        in_place = overwrite_next(text, (size_t)len);
        if (in_place == 0)
            return 0;
    }
    if (in_place < 0)
        snprintf(err, err_len, "%s/next-id: cannot %s it: %s, nor write it in place: %s", dir_path,
                 what, strerror(-r), strerror(-in_place));
    else
        snprintf(err, err_len, "%s/next-id: cannot %s it: %s", dir_path, what, strerror(-r));
    return r;
}

int idstore_open(const char *dir, char *err, size_t err_len) {
    assert(dir && dir_fd < 0);
    int r = make_dirs(dir);
    if (r < 0) {
        snprintf(err, err_len, "state directory %s: cannot create it: %s", dir, strerror(-r));
        return r;
    }
    dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        r = -errno;
        snprintf(err, err_len, "state directory %s: cannot open it: %s", dir, strerror(-r));
        return r;
    }
    r = private_check(dir_fd, "state directory", dir, err, err_len);
    if (r < 0) {
        close(dir_fd);
        dir_fd = -1;
        return r;
    }
    dir_path = strdup(dir);
    if (!dir_path) {
        idstore_close();
        return -ENOMEM;
    }
    return 0;
}

/* Takes next-id.lock: the descriptor (closing it releases the lock) or a
 * negative errno with the reason in `err`. */
static int take_lock(char *err, size_t err_len) {
    int lock = openat(dir_fd, "next-id.lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock < 0) {
        int r = -errno;
        snprintf(err, err_len, "%s/next-id.lock: cannot open: %s", dir_path, strerror(-r));
        return r;
    }
    if (flock(lock, LOCK_EX) < 0) {
        int r = -errno;
        close(lock);
        snprintf(err, err_len, "%s/next-id.lock: cannot lock: %s", dir_path, strerror(-r));
        return r;
    }
    return lock;
}

/* Takes the lock (*ret_lock, closed by the caller) and reads next-id. */
static int lock_and_read(int *ret_lock, uint64_t *ret_next, char *err, size_t err_len) {
    assert(dir_fd >= 0);
    *ret_lock = take_lock(err, err_len);
    if (*ret_lock < 0)
        return *ret_lock;
    return read_next(ret_next, err, err_len);
}

int idstore_skip_past(uint64_t id, char *err, size_t err_len) {
    _cleanup_close_ int lock = -1;
    uint64_t next = 0;
    int r = lock_and_read(&lock, &next, err, err_len);
    if (r < 0)
        return r;
    if (next > id)
        return 0;
    /* A store holding ids from 2^48 up (an earlier aiod gave them out) uses
     * the local ids up: no task can be made until it starts afresh, which
     * idstore_reserve says, rather than refuse every start. */
    r = write_next(MIN(id, LIMIT_LOCAL_ID_END - 1) + 1, err, err_len);
    return r < 0 ? r : 1;
}

int idstore_reserve(uint64_t *ret_first, uint64_t *ret_end, char *err, size_t err_len) {
    _cleanup_close_ int lock = -1;
    uint64_t next = 0;
    int r = lock_and_read(&lock, &next, err, err_len);
    if (r < 0)
        return r;
    /* The last block stops at the local ids' end. */
    uint64_t end = next + MIN((uint64_t)block, LIMIT_LOCAL_ID_END - next);
    if (end == next) {
        snprintf(err, err_len,
                 "%s/next-id: every local task id (below %llu) has been given out in this state "
                 "directory; no task can be created",
                 dir_path, (unsigned long long)LIMIT_LOCAL_ID_END);
        return -ENOSPC;
    }
    r = write_next(end, err, err_len);
    if (r < 0)
        return r;
    *ret_first = next;
    *ret_end = end;
    if (block < LIMIT_ID_BLOCK_MAX)
        block *= 2;
    return 0; /* closing the lock file releases the lock */
}

const char *idstore_dir(void) {
    return dir_path;
}

void idstore_close(void) {
    if (dir_fd >= 0)
        close(dir_fd);
    dir_fd = -1;
    free(dir_path);
    dir_path = NULL;
    block = LIMIT_ID_BLOCK_MIN;
}
