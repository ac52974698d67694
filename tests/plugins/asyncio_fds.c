/*
 * File descriptors through the loop (ABI 1.4 wait_fd and watch_fd), after
 * test_events.py's reader and writer tests (EventLoopTestsMixin
 * test_reader_callback, test_writer_callback) and what a task's own wait
 * adds: readiness, timeout, cancellation, one poll per fd, regular files.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "asyncio_common.h"

static struct {
    const struct aiod_api *api;
    aiod_future *f;
    char buf[16];
    size_t got;
    int calls;
} R;

/* A non-blocking pipe and the future its watch's callback will set (R). */
static int pipe_and_future(aiod_task *t, const struct aiod_api *api, int p[2]) {
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
        return -errno;
    memset(&R, 0, sizeof(R));
    R.api = api;
    return api->future_new(t, &R.f);
}

static int release_pipe_and_future(const struct aiod_api *api, int p[2]) {
    api->future_release(R.f);
    close(p[0]);
    close(p[1]);
    return 0;
}

static void on_readable(aiod_fdwatch *w, int fd, uint32_t revents, void *data) {
    (void)data;
    const struct aiod_api *api = R.api;
    R.calls++;
    if (!(revents & AIOD_FD_READ))
        return;
    ssize_t n = read(fd, R.buf + R.got, sizeof(R.buf) - 1 - R.got);
    if (n > 0)
        R.got += (size_t)n;
    if (n == 0 || R.got >= 3) {
        api->watch_fd_close(w); /* from inside its own callback */
        api->future_set_result(R.f, api->value_int((int64_t)R.got));
    }
}

/* EventLoopTestsMixin.test_reader_callback: the reader callback sees the
 * bytes written to the other end, and is removed from inside itself. */
ASYNCIO_CASE(events_test_reader_callback) {
    NEED(watch_fd);
    int p[2];
    CHECK_OK(pipe_and_future(t, api, p));
    aiod_fdwatch *w = NULL;
    CHECK_OK(api->watch_fd(p[0], AIOD_FD_READ, on_readable, NULL, &w));
    CHECK_EQ(api->watch_fd(p[0], AIOD_FD_READ, on_readable, NULL, &w), -EEXIST);
    CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(R.calls, 0); /* nothing to read yet */
    CHECK(write(p[1], "abc", 3) == 3);
    aiod_value *v = NULL;
    CHECK_OK(api->future_await(t, R.f, &v));
    CHECK_EQ(api->get_int(v), 3);
    CHECK(memcmp(R.buf, "abc", 3) == 0);
    api->value_free(v);
    return release_pipe_and_future(api, p);
}

static void on_writable(aiod_fdwatch *w, int fd, uint32_t revents, void *data) {
    (void)fd, (void)data;
    R.calls++;
    R.api->watch_fd_close(w);
    R.api->future_set_result(R.f, R.api->value_int(revents));
}

/* EventLoopTestsMixin.test_writer_callback: an empty pipe is writable at
 * once; watch_fd_update pauses and resumes. */
ASYNCIO_CASE(events_test_writer_callback) {
    NEED(watch_fd);
    int p[2];
    CHECK_OK(pipe_and_future(t, api, p));
    aiod_fdwatch *w = NULL;
    CHECK_OK(api->watch_fd(p[1], 0, on_writable, NULL, &w));
    CHECK_OK(api->sleep(t, 0.02));
    CHECK_EQ(R.calls, 0); /* paused: no events asked for */
    CHECK_OK(api->watch_fd_update(w, AIOD_FD_WRITE));
    aiod_value *v = NULL;
    CHECK_OK(api->future_await(t, R.f, &v));
    CHECK(api->get_int(v) & AIOD_FD_WRITE);
    CHECK_EQ(R.calls, 1);
    api->value_free(v);
    return release_pipe_and_future(api, p);
}

static int pipe_fds[2];

static int writes_later(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)arg, (void)ret;
    int r = api->sleep(t, 0.02);
    if (r < 0)
        return r;
    return write(pipe_fds[1], "x", 1) == 1 ? 0 : -errno;
}

static int waits_readable(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    int r = api->wait_fd(t, pipe_fds[0], AIOD_FD_READ, *(double *)arg);
    *ret = api->value_int(r);
    return 0;
}

/* wait_fd: readiness, then a timeout, then a cancellation; after each the
 * fd can be waited on again (the poll is gone), and a second wait on the
 * same fd at once is -EEXIST. */
ASYNCIO_CASE(fds_wait_fd) {
    NEED(wait_fd);
    CHECK(pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) == 0);
    aiod_child *wr = asyncio_spawn(t, api, writes_later, NULL);
    CHECK(wr);
    int r = api->wait_fd(t, pipe_fds[0], AIOD_FD_READ, 5);
    CHECK(r > 0 && (r & AIOD_FD_READ));
    CHECK_OK(api->await(t, wr, NULL));
    api->child_release(t, wr);
    char c;
    CHECK(read(pipe_fds[0], &c, 1) == 1);

    CHECK_EQ(api->wait_fd(t, pipe_fds[0], AIOD_FD_READ, 0.02), -ETIMEDOUT);
    CHECK_EQ(api->wait_fd(t, pipe_fds[0], AIOD_FD_READ, 0), -ETIMEDOUT);

    static double forever = AIOD_FOREVER;
    aiod_child *w = asyncio_spawn(t, api, waits_readable, &forever);
    CHECK(w);
    CHECK_OK(api->sleep(t, 0.01));
    CHECK_EQ(api->wait_fd(t, pipe_fds[0], AIOD_FD_READ, 0.01), -EEXIST);
    CHECK_EQ(api->cancel_msg(t, w, NULL), 1);
    CHECK_EQ(api->wait(t, &w, 1, AIOD_FOREVER, AIOD_ALL_COMPLETED), 1);
    CHECK_EQ(asyncio_child_int(t, api, w), -ECANCELED);
    api->child_release(t, w);
    CHECK_EQ(api->wait_fd(t, pipe_fds[0], AIOD_FD_READ, 0.01), -ETIMEDOUT);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return 0;
}

/* A regular file is always ready: it cannot be watched (-EPERM); a closed
 * fd is -EBADF. */
ASYNCIO_CASE(fds_refused) {
    NEED(wait_fd);
    char path[] = "/tmp/aiod-fds-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    CHECK_EQ(api->wait_fd(t, fd, AIOD_FD_READ, 0.01), -EPERM);
    close(fd);
    CHECK_EQ(api->wait_fd(t, fd, AIOD_FD_READ, 0.01), -EBADF);
    CHECK_EQ(api->wait_fd(t, -1, AIOD_FD_READ, 0.01), -EBADF);
    CHECK_EQ(api->wait_fd(t, 0, 0, 0.01), -EINVAL);
    return 0;
}
