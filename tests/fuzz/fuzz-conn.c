/*
 * Fuzz target: a whole connection. The input's bytes are written, in chunks
 * whose size the first byte picks, into one end of a socketpair whose other
 * end the daemon serves as a client connection, behind a valid Hello so that
 * requests get past the handshake (unless the second byte is odd). The
 * daemon's real dispatch, tasks and plugins run on a real loop; afterwards
 * every task is cancelled and the loop drained, so nothing may leak.
 *
 * Built twice. fuzz-conn serves with max_frame at 64 KiB and writes chunks of
 * 1 to 64 bytes, so that many small inputs run per second. fuzz-conn-large
 * (FUZZ_CONN_LARGE) keeps the default max_frame (4 MiB), loads the demo
 * plugin beside the test plugin and writes chunks of 1 to 64 KiB, so that
 * one input can be a whole frame of the largest size: a full-frame argument
 * is checked, copied and run as a client would send it (gen-large.c writes
 * such inputs). At exit each prints the size of the largest input it ran,
 * which the large fuzz run checks (run-large.cmake).
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

#ifdef FUZZ_CONN_LARGE
#define NAME "fuzz-conn-large"
#define CHUNK_UNIT 1024 /* bytes per step of the chunk size the first byte picks */
#define PROBE "demo.echo"
#else
#define NAME "fuzz-conn"
#define CHUNK_UNIT 1
#define PROBE "good.add"
#endif

/* Consecutive loop turns in which the daemon takes none of the input before
 * the rest is given up (it stopped reading: backpressure, or it closed). */
#define MAX_IDLE_TURNS 64

static uv_loop_t loop;
static uv_timer_t keepalive;
static int ready;
static size_t largest; /* the largest input run, in bytes */
static size_t inputs;  /* inputs run */

static void report(void) {
    printf("%s: largest input run: %zu bytes (of %zu inputs)\n", NAME, largest, inputs);
    fflush(stdout);
}

static void never(uv_timer_t *h) {
    (void)h;
}

/* Runs the loop until `done` says so, waiting for what it waits for: a big
 * frame is decoded on the thread pool (request/offload.c), and its
 * connection reads nothing meanwhile. A 1 ms timer bounds each wait, so
 * that the turns are counted rather than timed. false: still not done. */
static bool run_until(bool (*done)(void), unsigned max_turns) {
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, never, 1, 1);
    for (unsigned i = 0; i < max_turns && !done(); i++)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return done();
}

static bool no_connection(void) {
    return conn_count() == 0;
}

static bool all_ended(void) {
    return task_count_unfinished() == 0 && conn_count() == 0;
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
#ifdef FUZZ_CONN_LARGE
        config_override("plugin_dir", DEMO_PLUGIN_DIR, why, sizeof(why)) < 0 ||
#else
        config_override("max_frame", "65536", why, sizeof(why)) < 0 ||
#endif
        config_override("default_plugins", "no", why, sizeof(why)) < 0 ||
        config_override("log_level", "crit", why, sizeof(why)) < 0 ||
        config_override("retain_count", "0", why, sizeof(why)) <
            0 || /* nothing outlives an input */
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
    if (!plugin_lookup("good.add") || !plugin_lookup(PROBE))
        abort();
    atexit(report);
    ready = 1;
}

static void drain(int fd) {
    char buf[65536];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

static void cancel_everything(void) {
    size_t n = 0;
    task *ts[4096];
    for (task *t = task_first(); t && n < 4096; t = task_after(t))
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
    if (size > largest)
        largest = size;
    inputs++;
    size_t chunk = ((size_t)data[0] % 64 + 1) * CHUNK_UNIT;
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
    /* What the socket does not take now is offered again after the loop
     * ran, so that a chunk larger than the socket's buffer is not cut. */
    for (size_t off = 0, idle = 0; off < size && idle < MAX_IDLE_TURNS;) {
        size_t n = size - off < chunk ? size - off : chunk;
        ssize_t w = write(sv[1], data + off, n);
        if (w < 0 && errno != EAGAIN)
            break;
        if (w > 0) {
            off += (size_t)w;
            idle = 0;
        } else {
            idle++;
        }
        for (int i = 0; i < 4; i++)
            uv_run(&loop, UV_RUN_NOWAIT);
        drain(sv[1]);
    }
    for (int i = 0; i < 16; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    close(sv[1]);
    /* The daemon sees the end of the stream and closes the connection (once
     * a big frame's decode has ended); then whatever was submitted or
     * detached is cancelled too. */
    run_until(no_connection, 100000);
    cancel_everything();
    if (!run_until(all_ended, 100000))
        abort(); /* something hangs that should have ended */
    return 0;
}
