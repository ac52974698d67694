/*
 * client: connecting, the hello, the default socket path, the last error,
 * and matching replies to requests (client.h). The library is blocking: each
 * public call sends its request(s) and reads frames until its reply comes,
 * handing Output events to the callback on the way.
 */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "alloc.h"
#include "frame.h"
#include "macro.h"
#include "wire.h"

/* The name sent in the hello; glibc sets it from argv[0]. */
extern char *program_invocation_short_name;

AIOC_EXPORT int aioc_default_socket_path(char *buf, size_t len) {
    const char *env, *prefix = NULL, *path;
    if (!buf || len == 0)
        return -EINVAL;
    env = getenv("AIOD_SOCKET");
    if (env && *env)
        path = env;
    else if (geteuid() == 0)
        path = "/run/aiod/aiod.sock";
    else {
        prefix = getenv("XDG_RUNTIME_DIR");
        if (!prefix || *prefix != '/')
            return -ENOENT;
        path = "/aiod/aiod.sock";
    }
    int n = snprintf(buf, len, "%s%s", prefix ? prefix : "", path);
    if (n < 0 || (size_t)n >= len)
        return -ENAMETOOLONG;
    return 0;
}

void client_set_error(aioc_client *c, const char *message) {
    size_t n = strlen(message);
    if (n >= sizeof(c->last_error)) {
        n = sizeof(c->last_error) - 1;
        /* Do not cut a UTF-8 sequence in half. */
        while (n > 0 && ((unsigned char)message[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(c->last_error, message, n);
    c->last_error[n] = '\0';
}

int client_begin(aioc_client *c) {
    if (c->in_callback)
        return -EBUSY;
    if (c->dead)
        return c->dead;
    c->last_error[0] = '\0';
    return 0;
}

static int die(aioc_client *c, int r) {
    if (!c->dead)
        c->dead = r;
    return r;
}

static int send_message(aioc_client *c, Aiod__ClientMessage *m) {
    _cleanup_free_ uint8_t *buf = NULL;
    size_t len;
    m->request_id = c->next_request_id++;
    int r = wire_pack(m, c->max_frame, &buf, &len);
    if (r < 0)
        return r; /* too big or no memory: the connection is still fine */
    r = conn_write(&c->conn, buf, len);
    if (r < 0)
        return die(c, r == -EPIPE ? -EPIPE : r);
    return 0;
}

static void deliver_output(aioc_client *c, const Aiod__Output *o) {
    if (!c->output_cb)
        return;
    c->in_callback = true;
    c->output_cb(o->task_id, (int)o->stream, o->line, c->output_userdata);
    c->in_callback = false;
}

/* Reads until the reply to request `id` comes. */
static int wait_reply(aioc_client *c, uint64_t id, Aiod__ServerMessage__BodyCase want,
                      Aiod__ServerMessage **ret_reply) {
    for (;;) {
        const uint8_t *payload;
        uint32_t len;
        Aiod__ServerMessage *m;

        int r = conn_read_frame(&c->conn, &payload, &len);
        if (r < 0)
            return die(c, r == -EMSGSIZE ? -EPROTO : r);
        r = wire_unpack(payload, len, &m);
        if (r < 0)
            return die(c, r);

        if (m->body_case == AIOD__SERVER_MESSAGE__BODY_OUTPUT) {
            deliver_output(c, m->output);
        } else if (m->request_id == 0 && m->body_case == AIOD__SERVER_MESSAGE__BODY_ERROR) {
            /* About the connection itself: the daemon closes it next. */
            client_set_error(c, m->error->message);
            r = wire_error_errno(m->error->code);
            wire_free(m);
            return die(c, r);
        } else if (m->request_id == id && (m->body_case == want ||
                                           m->body_case != AIOD__SERVER_MESSAGE__BODY_OUTPUT_END)) {
            *ret_reply = m;
            return 0;
        }
        /* Anything else is an event or a reply nobody waits for (an
         * OutputEnd of a followed task, a newer daemon's message): skip. */
        wire_free(m);
    }
}

int client_call(aioc_client *c, Aiod__ClientMessage *m, Aiod__ServerMessage__BodyCase want,
                Aiod__ServerMessage **ret_reply) {
    Aiod__ServerMessage *reply = NULL;
    int r = send_message(c, m);
    if (r < 0)
        return r;
    r = wait_reply(c, m->request_id, want, &reply);
    if (r < 0)
        return r;
    if (reply->body_case == AIOD__SERVER_MESSAGE__BODY_ERROR) {
        client_set_error(c, reply->error->message);
        r = wire_error_errno(reply->error->code);
        if (r == -EIO && reply->error->outcome) {
            *ret_reply = reply;
            return r;
        }
        wire_free(reply);
        return r == -EIO ? -EPROTO : r;
    }
    if (reply->body_case != want) {
        wire_free(reply);
        return -EPROTO;
    }
    *ret_reply = reply;
    return 0;
}

static int hello(aioc_client *c) {
    Aiod__Hello h = AIOD__HELLO__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    Aiod__ServerMessage *reply = NULL;
    const char *name = program_invocation_short_name;

    h.protocol_version = AIOD_PROTOCOL_VERSION;
    h.client_name = (char *)(name && *name ? name : "libaioclient");
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_HELLO;
    m.hello = &h;
    int r = client_call(c, &m, AIOD__SERVER_MESSAGE__BODY_HELLO, &reply);
    if (r < 0)
        return r;
    if (reply->hello->protocol_version != AIOD_PROTOCOL_VERSION) {
        wire_free(reply);
        return -EPROTONOSUPPORT;
    }
    c->server_version = alloc_strdup(reply->hello->server_version);
    if (!c->server_version) {
        wire_free(reply);
        return -ENOMEM;
    }
    if (reply->hello->max_frame > 0)
        c->max_frame = reply->hello->max_frame;
    c->max_in_flight = reply->hello->max_in_flight;
    conn_set_max_frame(&c->conn, c->max_frame);
    wire_free(reply);
    return 0;
}

AIOC_EXPORT int aioc_connect(const char *socket_path, aioc_client **ret) {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    int r;

    if (!ret)
        return -EINVAL;
    if (!socket_path) {
        r = aioc_default_socket_path(path, sizeof(path));
        if (r < 0)
            return r;
        socket_path = path;
    }
    aioc_client *c = alloc_calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->next_request_id = 1;
    c->max_frame = CLIENT_DEFAULT_MAX_FRAME;
    r = conn_open(&c->conn, socket_path, c->max_frame);
    if (r >= 0)
        r = hello(c);
    if (r < 0) {
        aioc_close(c);
        return r;
    }
    *ret = c;
    return 0;
}

AIOC_EXPORT void aioc_close(aioc_client *c) {
    if (!c)
        return;
    conn_close(&c->conn);
    free(c->server_version);
    free(c);
}

AIOC_EXPORT int aioc_fd(const aioc_client *c) {
    if (!c)
        return -EINVAL;
    return c->conn.fd >= 0 ? c->conn.fd : -ENOTCONN;
}

AIOC_EXPORT const char *aioc_last_error(const aioc_client *c) {
    return c ? c->last_error : "";
}

AIOC_EXPORT const char *aioc_server_version(const aioc_client *c) {
    return c && c->server_version ? c->server_version : "";
}

AIOC_EXPORT void aioc_set_output_callback(aioc_client *c, aioc_output_cb cb, void *userdata) {
    if (!c)
        return;
    c->output_cb = cb;
    c->output_userdata = userdata;
}
