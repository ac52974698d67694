/*
 * What the fake daemon (fake-daemon.h) says about cluster tasks, shared by
 * test-client-queue.c and test-client-cli-queue.c: a TaskInfo of a
 * cluster or local task, the answer to a ShowTask, a Cancelled reply.
 * Everything here is static to each test binary; include it after
 * fake-daemon.h.
 */
#ifndef AIOD_TESTS_FAKE_CLUSTER_H
#define AIOD_TESTS_FAKE_CLUSTER_H

#include "fake-daemon.h"

/* A task info of demo.sleep with `id` and `state`; `queue`, `host` and
 * `owner_host` may be NULL (not set: a local task, or no host yet). The
 * strings are borrowed. */
static Aiod__TaskInfo task_info(uint64_t id, Aiod__TaskState state, const char *queue,
                                const char *host, const char *owner_host) {
    Aiod__TaskInfo t = AIOD__TASK_INFO__INIT;
    t.id = id;
    t.state = state;
    t.function = (char *)"demo.sleep";
    t.ownership = AIOD__OWNERSHIP__SUBMITTED;
    if (queue)
        t.queue = (char *)queue;
    if (host)
        t.host = (char *)host;
    if (owner_host)
        t.owner_host = (char *)owner_host;
    return t;
}

/* Reads a ShowTask of `want_id` and answers it with `t`. */
static void answer_show(int fd, uint64_t want_id, Aiod__TaskInfo *t) {
    Aiod__ClientMessage *m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_SHOW_TASK);
    CHECK(m->show_task->task_id == want_id);
    Aiod__ServerMessage r = AIOD__SERVER_MESSAGE__INIT;
    r.request_id = m->request_id;
    r.body_case = AIOD__SERVER_MESSAGE__BODY_TASK_INFO;
    r.task_info = t;
    send_msg(fd, &r);
    aiod__client_message__free_unpacked(m, NULL);
}

/* Reads a Cancel of the one id `want_id` and answers Cancelled{count}. */
static void answer_cancel(int fd, uint64_t want_id, uint32_t count) {
    Aiod__ClientMessage *m = recv_msg(fd);
    CHECK(m->body_case == AIOD__CLIENT_MESSAGE__BODY_CANCEL);
    CHECK(m->cancel->n_task_ids == 1 && m->cancel->task_ids[0] == want_id);
    Aiod__Cancelled x = AIOD__CANCELLED__INIT;
    Aiod__ServerMessage r = AIOD__SERVER_MESSAGE__INIT;
    x.count = count;
    r.request_id = m->request_id;
    r.body_case = AIOD__SERVER_MESSAGE__BODY_CANCELLED;
    r.cancelled = &x;
    send_msg(fd, &r);
    aiod__client_message__free_unpacked(m, NULL);
}

#endif
