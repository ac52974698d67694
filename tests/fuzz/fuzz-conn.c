/*
 * Fuzz target: a whole connection. The input's bytes are written, in chunks
 * whose size the first byte picks, into one end of a socketpair whose other
 * end the daemon serves as a client connection, behind a valid Hello so that
 * requests get past the handshake (unless the second byte is odd). The
 * daemon's real dispatch, tasks and plugins run on a real loop; afterwards
 * every task is cancelled and the loop drained, so nothing may leak.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "api/api.h"
#include "system/config.h"
#include "net/conn.h"
#include "core/coro.h"
#include "system/log.h"
#include "host/registry.h"
#include "app/reload.h"
#include "core/finish.h"
#include "core/run.h"
#include "core/sched.h"
#include "request/dispatch.h"
#include "request/serve.h"
#include "core/task.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static uv_timer_t keepalive;
static int ready;

static void never(uv_timer_t *h) {
    (void)h;
}

static void setup(void) {
    char dir[4096], why[256];
    signal(SIGPIPE, SIG_IGN); /* as the daemon does */
    /* Settings as overrides, so that a Reload request (which rebuilds them)
     * keeps the test plugin's directory and the small limits: an input that
     * reloads must not unload the plugin under the fuzzer's feet. */
    snprintf(dir, sizeof(dir), "%s/good", TEST_PLUGIN_DIR);
    config_defaults();
    if (config_override("plugin_dir", dir, why, sizeof(why)) < 0 ||
        config_override("default_plugins", "no", why, sizeof(why)) < 0 ||
        config_override("log_level", "crit", why, sizeof(why)) < 0 ||
        config_override("retain_count", "0", why, sizeof(why)) <
            0 || /* nothing outlives an input */
        config_override("max_frame", "65536", why, sizeof(why)) < 0 ||
        config_load(why, sizeof(why)) < 0)
        abort();
    log_setup(LOG_CRIT);
    uv_loop_init(&loop);
    task_table_init(&loop);
    sched_init(&loop);
    run_init(&loop, api_table(), conn_flush_all);
    conn_init(&loop, session_handlers());
    dispatch_set_reload_handler(reload_handle);
    plugin_registry_init(api_table());
    /* Stands in for the daemon's listener: keeps the loop alive (running
     * its prepare and check phases) while no connection reads. */
    uv_timer_init(&loop, &keepalive);
    uv_timer_start(&keepalive, never, 3600 * 1000, 0);
    plugin_sync_counts counts;
    reload_sync_plugins(&counts);
    if (!plugin_lookup("good.add"))
        abort();
    ready = 1;
}

static void drain(int fd) {
    char buf[65536];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

static void cancel_everything(void) {
    size_t st = 0, n = 0;
    void *cur = NULL;
    task *t, *ts[4096];
    while (n < 4096 && (t = task_next(&st, &cur)))
        if (!task_finished(t))
            ts[n++] = task_ref(t);
    for (size_t i = 0; i < n; i++) {
        task_cancel(ts[i]);
        task_unref(ts[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* Hello{protocol_version 1}, request_id 1, framed. */
    static const uint8_t hello[] = {0, 0, 0, 6, 0x08, 0x01, 0x12, 0x02, 0x08, 0x01};
    int sv[2];
    if (!ready)
        setup();
    if (size < 2 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    size_t chunk = (size_t)data[0] % 64 + 1;
    bool raw = data[1] & 1;
    data += 2;
    size -= 2;
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    if (conn_open_fd(&loop, sv[0]) < 0) { /* sv[0] is taken either way */
        close(sv[1]);
        return 0;
    }
    if (!raw && write(sv[1], hello, sizeof(hello)) != (ssize_t)sizeof(hello))
        abort();
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        ssize_t w = write(sv[1], data + off, n);
        if (w < 0 && errno != EAGAIN)
            break;
        for (int i = 0; i < 4; i++)
            uv_run(&loop, UV_RUN_NOWAIT);
        drain(sv[1]);
    }
    for (int i = 0; i < 16; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    close(sv[1]);
    /* The daemon sees the end of the stream and closes the connection; then
     * whatever was submitted or detached is cancelled too. */
    for (int i = 0; i < 16 && conn_count() > 0; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    cancel_everything();
    for (int i = 0; i < 1000 && (task_count_unfinished() > 0 || conn_count() > 0); i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    if (task_count_unfinished() > 0 || conn_count() > 0)
        abort(); /* something hangs that should have ended */
    return 0;
}
