/*
 * A fake daemon for the client tests: fork a child that listens on a
 * temporary Unix socket and plays a script (checking each ClientMessage it
 * receives and answering with chosen ServerMessages), while the parent
 * drives libaioclient against it. Included by test-client-wire.c and
 * test-client-async.c; everything here is static to each test binary.
 */
#ifndef AIOD_TESTS_FAKE_DAEMON_H
#define AIOD_TESTS_FAKE_DAEMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aiod.pb-c.h"
#include "alloc.h"
#include "frame.h"
#include "pbvalue.h"
#include "wire.h"

/* In the child: a failed check ends the script with status 1. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fake daemon: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)

typedef void (*script_fn)(int fd);

static char dir[64];
static char path[128];

static void read_exactly(int fd, void *buf, size_t n) {
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        CHECK(r > 0);
        p += r;
        n -= (size_t)r;
    }
}

static Aiod__ClientMessage *recv_msg(int fd) {
    uint8_t hdr[FRAME_HEADER_SIZE];
    read_exactly(fd, hdr, sizeof(hdr));
    uint32_t len = frame_get_header(hdr);
    uint8_t *buf = malloc(len + 1);
    CHECK(buf);
    read_exactly(fd, buf, len);
    Aiod__ClientMessage *m = aiod__client_message__unpack(NULL, len, buf);
    free(buf);
    CHECK(m);
    CHECK(m->request_id != 0);
    return m;
}

/* Reads until the client closes the connection. */
static void expect_eof(int fd) {
    char c;
    CHECK(read(fd, &c, 1) == 0);
}

static void send_raw(int fd, const void *data, size_t len) {
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t r = write(fd, p, len);
        CHECK(r > 0);
        p += r;
        len -= (size_t)r;
    }
}

static void send_msg(int fd, Aiod__ServerMessage *m) {
    size_t n = aiod__server_message__get_packed_size(m);
    uint8_t *buf = malloc(FRAME_HEADER_SIZE + n);
    CHECK(buf);
    frame_put_header(buf, (uint32_t)n);
    aiod__server_message__pack(m, buf + FRAME_HEADER_SIZE);
    send_raw(fd, buf, FRAME_HEADER_SIZE + n);
    free(buf);
}

static void send_error(int fd, uint64_t id, Aiod__ErrorCode code, const char *text,
                       Aiod__Outcome *outcome) {
    Aiod__Error e = AIOD__ERROR__INIT;
    Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
    e.code = code;
    e.message = (char *)text;
    e.outcome = outcome;
    m.request_id = id;
    m.body_case = AIOD__SERVER_MESSAGE__BODY_ERROR;
    m.error = &e;
    send_msg(fd, &m);
}

static void send_output(int fd, uint64_t id, uint64_t task, const char *line) {
    Aiod__Output o = AIOD__OUTPUT__INIT;
    Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
    o.task_id = task;
    o.stream = 1;
    o.line = (char *)line;
    m.request_id = id;
    m.body_case = AIOD__SERVER_MESSAGE__BODY_OUTPUT;
    m.output = &o;
    send_msg(fd, &m);
}

static void send_output_end(int fd, uint64_t id, uint64_t task, Aiod__TaskState state) {
    Aiod__OutputEnd o = AIOD__OUTPUT_END__INIT;
    Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
    o.task_id = task;
    o.state = state;
    m.request_id = id;
    m.body_case = AIOD__SERVER_MESSAGE__BODY_OUTPUT_END;
    m.output_end = &o;
    send_msg(fd, &m);
}

static void send_submitted(int fd, uint64_t id, uint64_t task) {
    Aiod__Submitted s = AIOD__SUBMITTED__INIT;
    Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
    s.task_id = task;
    m.request_id = id;
    m.body_case = AIOD__SERVER_MESSAGE__BODY_SUBMITTED;
    m.submitted = &s;
    send_msg(fd, &m);
}

static void send_outcomes(int fd, uint64_t id, Aiod__Outcome **os, size_t n) {
    Aiod__Outcomes o = AIOD__OUTCOMES__INIT;
    Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
    o.outcomes = os;
    o.n_outcomes = n;
    m.request_id = id;
    m.body_case = AIOD__SERVER_MESSAGE__BODY_OUTCOMES;
    m.outcomes = &o;
    send_msg(fd, &m);
}

/* The Started event of a gather: its tasks' ids. */
__attribute__((unused)) static void send_started(int fd, uint64_t id, const uint64_t *tasks,
                                                 size_t n) {
    Aiod__Started s = AIOD__STARTED__INIT;
    Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
    s.task_ids = (uint64_t *)tasks;
    s.n_task_ids = n;
    m.request_id = id;
    m.body_case = AIOD__SERVER_MESSAGE__BODY_STARTED;
    m.started = &s;
    send_msg(fd, &m);
}

/* A ServerMessage for request `id` whose body is field 50, which no
 * version of aiod.proto has (as a newer daemon's new event would be). */
__attribute__((unused)) static void send_unknown_body(int fd, uint64_t id) {
    uint8_t buf[FRAME_HEADER_SIZE + 16];
    size_t n = FRAME_HEADER_SIZE;
    buf[n++] = 0x08; /* field 1, varint: request_id */
    CHECK(id < 128);
    buf[n++] = (uint8_t)id;
    buf[n++] = 0x92; /* field 50, length-delimited */
    buf[n++] = 0x03;
    buf[n++] = 0x02; /* two bytes: a nested field 1 = 1 */
    buf[n++] = 0x08;
    buf[n++] = 0x01;
    frame_put_header(buf, (uint32_t)(n - FRAME_HEADER_SIZE));
    send_raw(fd, buf, n);
}

/* Reads the hello and answers it; returns the hello's request id. */
static uint64_t do_hello(int fd, uint32_t max_frame) {
    Aiod__ClientMessage *m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_HELLO);
    CHECK(m->hello->protocol_version == AIOD_PROTOCOL_VERSION);
    CHECK(strcmp(m->hello->client_name, "") != 0);
    uint64_t id = m->request_id;

    Aiod__HelloReply h = AIOD__HELLO_REPLY__INIT;
    Aiod__ServerMessage r = AIOD__SERVER_MESSAGE__INIT;
    h.protocol_version = AIOD_PROTOCOL_VERSION;
    h.server_version = (char *)"9.8.7";
    h.max_frame = max_frame;
    h.max_in_flight = 16;
    r.request_id = id;
    r.body_case = AIOD__SERVER_MESSAGE__BODY_HELLO;
    r.hello = &h;
    send_msg(fd, &r);
    aiod__client_message__free_unpacked(m, NULL);
    return id;
}

static pid_t start_daemon(script_fn script) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int lfd;

    snprintf(dir, sizeof(dir), "/tmp/aioc-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/aiod.sock", dir);
    assert_true(strlen(path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 4), 0);

    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = accept(lfd, NULL, NULL);
        CHECK(fd >= 0);
        close(lfd);
        script(fd);
        close(fd);
        _exit(0);
    }
    close(lfd);
    return pid;
}

static void end_daemon(pid_t pid) {
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    unlink(path);
    rmdir(dir);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

#endif
