/*
 * TaskInfo and FunctionInfo (describe.h).
 */
#include "request/describe.h"

#include <stdlib.h>
#include <string.h>

#include "core/limit.h"
#include "core/plan.h"
#include "core/task.h"
#include "host/registry.h"

/* Appends `s` (`n` bytes) to buf[*len..], stopping before CALL_TEXT_MAX;
 * false once full. */
static bool append(char *buf, size_t *len, const char *s, size_t n, bool *cut) {
    size_t room = CALL_TEXT_MAX - *len;
    if (n > room) {
        n = room;
        *cut = true;
    }
    memcpy(buf + *len, s, n);
    *len += n;
    return !*cut;
}

/* Cuts buf[0..len) at a character boundary so that "…" fits after it. */
static size_t cut_for_ellipsis(const char *buf, size_t len) {
    static const size_t ell = 3; /* "…" in UTF-8 */
    size_t end = len > CALL_TEXT_MAX - ell ? CALL_TEXT_MAX - ell : len;
    /* Back off continuation bytes (10xxxxxx) to the start of a character. */
    while (end > 0 && ((unsigned char)buf[end] & 0xC0) == 0x80)
        end--;
    return end;
}

/* Appends one argument: a string as it is, another value as JSON. */
static bool append_value(char *buf, size_t *len, const Aiod__Value *v, bool *cut) {
    if (!append(buf, len, " ", 1, cut))
        return false;
    if (v && v->kind_case == AIOD__VALUE__KIND_STRING_VALUE)
        return append(buf, len, v->string_value, strlen(v->string_value), cut);
    char *json = pbvalue_to_json_prefix(v, CALL_TEXT_MAX);
    bool more = append(buf, len, json ? json : "?", json ? strlen(json) : 1, cut);
    free(json);
    return more;
}

/* How many arguments to show: trailing ones equal to their parameter's
 * default were most likely not given, and would only be noise. */
static uint32_t shown_args(const task *t) {
    uint32_t n = t->argc;
    while (n > 0 && n <= t->fn->sig.n_params && t->fn->params[n - 1].default_value &&
           pbvalue_equal(t->argv[n - 1], t->fn->params[n - 1].default_value))
        n--;
    return n;
}

void describe_call(const task *t, char *buf) {
    size_t len = 0;
    bool cut = false;
    const char *fn = t->fn->full_name;
    append(buf, &len, fn, strlen(fn), &cut);
    uint32_t n = shown_args(t);
    for (uint32_t i = 0; i < n && !cut; i++) {
        const Aiod__Value *v = t->argv[i];
        /* A rest parameter's list reads as the words it was given:
         * `proc.exec sleep 30`, not `proc.exec sleep ["30"]`. */
        bool rest = i < t->fn->sig.n_params && (t->fn->params[i].type & VALUE_REST) && v &&
                    v->kind_case == AIOD__VALUE__KIND_LIST_VALUE;
        if (!rest) {
            append_value(buf, &len, v, &cut);
            continue;
        }
        for (size_t k = 0; k < v->list_value->n_items; k++)
            if (!append_value(buf, &len, v->list_value->items[k], &cut))
                break;
    }
    if (cut) {
        len = cut_for_ellipsis(buf, len);
        memcpy(buf + len, "\xe2\x80\xa6", 3);
        len += 3;
    }
    buf[len] = '\0';
    /* One line: control characters of the arguments become spaces. */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            buf[i] = ' ';
}

void describe_task(const task *t, Aiod__TaskInfo *ti, char *call_text, Aiod__Outcome *o,
                   bool detail) {
    aiod__task_info__init(ti);
    ti->id = t->id;
    ti->state = (Aiod__TaskState)t->state;
    ti->function = t->fn->full_name;
    ti->ownership = (Aiod__Ownership)t->ownership;
    ti->owner_uid = (uint32_t)t->uid;
    ti->owner_pid = (int32_t)t->pid;
    ti->created_usec = t->created_usec;
    ti->started_usec = t->started_usec;
    ti->finished_usec = t->finished_usec;
    ti->parent_id = t->parent_id;
    ti->output_lines = task_output_lines(t);
    ti->output_dropped = task_output_dropped(t);
    describe_call(t, call_text);
    ti->call_text = call_text;
    const char *waiting = limit_waiting_for(t);
    if (waiting)
        ti->waiting_for = (char *)waiting;
    ti->attempt = plan_attempt(t);
    ti->max_attempts = plan_max_attempts(t);
    const task_plan *p = t->plan;
    if (p) {
        if (t->state == TASK_PENDING && p->next_run_usec > task_now_usec())
            ti->next_run_usec = p->next_run_usec;
        ti->after = p->after;
        ti->n_after = p->n_after;
    }
    if (detail) {
        ti->n_args = t->argc;
        ti->args = t->argv;
        if (p) {
            ti->attempts = p->attempts;
            ti->n_attempts = p->n_attempts;
        }
        if (task_finished(t)) {
            task_outcome(t, o);
            ti->outcome = o;
        }
    }
}

void describe_function(const fn_entry *f, Aiod__FunctionInfo *fi, Aiod__Param *ps,
                       Aiod__Param **pp) {
    aiod__function_info__init(fi);
    fi->name = f->full_name;
    fi->doc = (char *)f->def->doc;
    fi->result_type = (Aiod__ValueType)f->def->result_type;
    fi->plugin = (char *)f->owner->desc->name;
    fi->plugin_version = (char *)f->owner->desc->version;
    fi->n_params = f->sig.n_params;
    fi->params = pp;
    for (size_t i = 0; i < f->sig.n_params; i++) {
        aiod__param__init(&ps[i]);
        ps[i].name = (char *)f->params[i].name;
        ps[i].type = (Aiod__ValueType)(f->params[i].type & ~VALUE_REST);
        ps[i].rest = (f->params[i].type & VALUE_REST) != 0;
        ps[i].has_default = f->params[i].default_value != NULL;
        ps[i].default_value = f->params[i].default_value;
        pp[i] = &ps[i];
    }
}
