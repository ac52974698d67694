/*
 * wire: encoding requests and decoding replies for libaioclient (wire.h).
 * Before a payload is unpacked its nesting is measured (pbdepth), because
 * protobuf-c unpacks recursively; after, every field the library hands to
 * its caller is checked so that the rest of the library can trust it.
 */
#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "frame.h"
#include "pbdepth.h"
#include "pbvalue.h"

int wire_pack(const Aiod__ClientMessage *m, uint32_t max_frame, uint8_t **ret_buf,
              size_t *ret_len) {
    size_t n = aiod__client_message__get_packed_size(m);
    if (n > max_frame || n > UINT32_MAX)
        return -EMSGSIZE;
    uint8_t *buf = alloc_malloc(FRAME_HEADER_SIZE + n);
    if (!buf)
        return -ENOMEM;
    frame_put_header(buf, (uint32_t)n);
    aiod__client_message__pack(m, buf + FRAME_HEADER_SIZE);
    *ret_buf = buf;
    *ret_len = FRAME_HEADER_SIZE + n;
    return 0;
}

void wire_free_message(void *m) {
    if (m)
        protobuf_c_message_free_unpacked(m, &alloc_protobuf);
}

void wire_free(Aiod__ServerMessage *m) {
    wire_free_message(m);
}

static size_t utf8_seq_len(unsigned char c) {
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    if (c >= 0xe0 && c <= 0xef)
        return 3;
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    return 0;
}

void wire_fix_utf8(char *s) {
    if (!s || s == protobuf_c_empty_string)
        return;
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq_len((unsigned char)s[i]);
        if (n == 1) {
            i++;
        } else if (n > 0 && i + n <= len && pbvalue_utf8_valid(s + i, n)) {
            i += n;
        } else {
            s[i++] = '?';
        }
    }
}

static int check_value(const Aiod__Value *v) {
    const char *why;
    return v && pbvalue_check(v, WIRE_MAX_VALUE_DEPTH, &why) < 0 ? -EPROTO : 0;
}

int wire_check_outcome(Aiod__Outcome *o) {
    if (!o)
        return -EPROTO;
    wire_fix_utf8(o->error_kind);
    wire_fix_utf8(o->error_message);
    if (check_value(o->result) < 0)
        return -EPROTO;
    if (o->state == AIOD__TASK_STATE__TASK_DONE && !o->result) {
        o->result = pbvalue_null();
        if (!o->result)
            return -ENOMEM;
    }
    return 0;
}

static int check_task_info(Aiod__TaskInfo *t) {
    if (!t)
        return -EPROTO;
    wire_fix_utf8(t->function);
    wire_fix_utf8(t->queue);
    wire_fix_utf8(t->host);
    wire_fix_utf8(t->owner_host);
    for (size_t i = 0; i < t->n_attempts; i++) {
        if (!t->attempts[i])
            return -EPROTO;
        wire_fix_utf8(t->attempts[i]->error_kind);
        wire_fix_utf8(t->attempts[i]->error_message);
    }
    for (size_t i = 0; i < t->n_args; i++)
        if (!t->args[i] || check_value(t->args[i]) < 0)
            return -EPROTO;
    return t->outcome ? wire_check_outcome(t->outcome) : 0;
}

static int check_function(Aiod__FunctionInfo *f) {
    if (!f)
        return -EPROTO;
    wire_fix_utf8(f->name);
    wire_fix_utf8(f->doc);
    wire_fix_utf8(f->plugin);
    wire_fix_utf8(f->plugin_version);
    for (size_t i = 0; i < f->n_params; i++) {
        Aiod__Param *p = f->params[i];
        if (!p || check_value(p->default_value) < 0)
            return -EPROTO;
        wire_fix_utf8(p->name);
    }
    return 0;
}

static int check_message(Aiod__ServerMessage *m) {
    int r;
    switch (m->body_case) {
    case AIOD__SERVER_MESSAGE__BODY_ERROR:
        wire_fix_utf8(m->error->message);
        return m->error->outcome ? wire_check_outcome(m->error->outcome) : 0;
    case AIOD__SERVER_MESSAGE__BODY_HELLO:
        wire_fix_utf8(m->hello->server_version);
        return 0;
    case AIOD__SERVER_MESSAGE__BODY_OUTCOMES:
        for (size_t i = 0; i < m->outcomes->n_outcomes; i++)
            if ((r = wire_check_outcome(m->outcomes->outcomes[i])) < 0)
                return r;
        return 0;
    case AIOD__SERVER_MESSAGE__BODY_TASK_LIST:
        for (size_t i = 0; i < m->task_list->n_tasks; i++)
            if ((r = check_task_info(m->task_list->tasks[i])) < 0)
                return r;
        return 0;
    case AIOD__SERVER_MESSAGE__BODY_TASK_INFO:
        return check_task_info(m->task_info);
    case AIOD__SERVER_MESSAGE__BODY_PLUGIN_LIST:
        for (size_t i = 0; i < m->plugin_list->n_functions; i++)
            if ((r = check_function(m->plugin_list->functions[i])) < 0)
                return r;
        return 0;
    case AIOD__SERVER_MESSAGE__BODY_OUTPUT:
        wire_fix_utf8(m->output->line);
        return 0;
    default:
        return 0;
    }
}

int wire_unpack(const uint8_t *data, size_t len, Aiod__ServerMessage **ret) {
    if (pbdepth_check(&aiod__server_message__descriptor, data, len, WIRE_MAX_MESSAGE_DEPTH) < 0)
        return -EPROTO;
    Aiod__ServerMessage *m = aiod__server_message__unpack(&alloc_protobuf, len, data);
    if (!m)
        return -EPROTO; /* protobuf-c does not tell OOM from bad bytes */
    int r = check_message(m);
    if (r < 0) {
        wire_free(m);
        return r;
    }
    *ret = m;
    return 0;
}

const char *wire_run_message(const char *msg) {
    static const char item1[] = "gather item 1: ";
    return strncmp(msg, item1, sizeof(item1) - 1) == 0 ? msg + sizeof(item1) - 1 : msg;
}

int wire_error_errno(uint32_t code) {
    switch (code) {
    case AIOD__ERROR_CODE__ERROR_BAD_MESSAGE:
    case AIOD__ERROR_CODE__ERROR_PROTOCOL:
        return -EPROTO;
    case AIOD__ERROR_CODE__ERROR_UNSUPPORTED_VERSION:
        return -EPROTONOSUPPORT;
    case AIOD__ERROR_CODE__ERROR_UNKNOWN_FUNCTION:
        return -ENOENT;
    case AIOD__ERROR_CODE__ERROR_BAD_ARGUMENT:
        return -EINVAL;
    case AIOD__ERROR_CODE__ERROR_NO_SUCH_TASK:
        return -ESRCH;
    case AIOD__ERROR_CODE__ERROR_NOT_ALLOWED:
        return -EPERM;
    case AIOD__ERROR_CODE__ERROR_LIMIT:
        return -EAGAIN;
    case AIOD__ERROR_CODE__ERROR_TIMEOUT:
        return -ETIMEDOUT;
    case AIOD__ERROR_CODE__ERROR_CANCELLED:
        return -ECANCELED;
    case AIOD__ERROR_CODE__ERROR_TASK_FAILED:
        return -EIO;
    case AIOD__ERROR_CODE__ERROR_SHUTTING_DOWN:
        return -ESHUTDOWN;
    case AIOD__ERROR_CODE__ERROR_STORE:
        return -ENOSPC;
    case AIOD__ERROR_CODE__ERROR_UNAVAILABLE:
        return -EHOSTUNREACH;
    default:
        return -EFAULT;
    }
}
