/*
 * function: the functions clients may call, as ListPlugins reports them.
 * An aioc_function_info wraps an Aiod__FunctionInfo and caches the
 * signature text built from it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "client.h"
#include "macro.h"
#include "pbvalue.h"
#include "value.h"
#include "wire.h"

struct aioc_function_info {
    /* The function as the daemon described it (owned). */
    Aiod__FunctionInfo *pb;
    /* "(name: type, ...) -> type", built on first use (owned), or NULL. */
    char *signature;
};

AIOC_EXPORT const char *aioc_function_name(const aioc_function_info *f) {
    return f ? f->pb->name : NULL;
}

AIOC_EXPORT const char *aioc_function_doc(const aioc_function_info *f) {
    return f ? f->pb->doc : NULL;
}

AIOC_EXPORT size_t aioc_function_n_params(const aioc_function_info *f) {
    return f ? f->pb->n_params : 0;
}

AIOC_EXPORT const char *aioc_function_param_name(const aioc_function_info *f, size_t i) {
    return f && i < f->pb->n_params ? f->pb->params[i]->name : NULL;
}

AIOC_EXPORT uint32_t aioc_function_param_type(const aioc_function_info *f, size_t i) {
    return f && i < f->pb->n_params ? (uint32_t)f->pb->params[i]->type : AIOC_TYPE_ANY;
}

AIOC_EXPORT const aioc_value *aioc_function_param_default(const aioc_function_info *f, size_t i) {
    if (!f || i >= f->pb->n_params || !f->pb->params[i]->has_default)
        return NULL;
    Aiod__Param *p = f->pb->params[i];
    if (!p->default_value) {
        /* A default of null may come as an absent Value. */
        p->default_value = pbvalue_null();
        if (!p->default_value)
            return NULL;
    }
    return value_from_cpb(p->default_value);
}

AIOC_EXPORT uint32_t aioc_function_result_type(const aioc_function_info *f) {
    return f ? (uint32_t)f->pb->result_type : AIOC_TYPE_ANY;
}

/* A growing string for the signature; `failed` sticks after OOM. */
typedef struct strbuf {
    char *s;
    size_t len, cap;
    bool failed;
} strbuf;

static void sb_add(strbuf *b, const char *text) {
    size_t n = strlen(text);
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = MAX(b->cap * 2, b->len + n + 64);
        char *s = alloc_realloc(b->s, cap);
        if (!s) {
            b->failed = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, text, n + 1);
    b->len += n;
}

AIOC_EXPORT const char *aioc_function_signature(aioc_function_info *f) {
    strbuf b = {0};
    if (!f)
        return NULL;
    if (f->signature)
        return f->signature;
    sb_add(&b, "(");
    for (size_t i = 0; i < f->pb->n_params; i++) {
        if (i > 0)
            sb_add(&b, ", ");
        /* A rest parameter reads like Python's *args. */
        if (f->pb->params[i]->rest)
            sb_add(&b, "*");
        sb_add(&b, aioc_function_param_name(f, i));
        sb_add(&b, ": ");
        sb_add(&b, aioc_type_name(aioc_function_param_type(f, i)));
        if (f->pb->params[i]->has_default) {
            const aioc_value *d = aioc_function_param_default(f, i);
            _cleanup_free_ char *json = d ? aioc_value_to_json(d) : NULL;
            if (!json)
                b.failed = true;
            sb_add(&b, " = ");
            sb_add(&b, json ? json : "");
        }
    }
    sb_add(&b, ") -> ");
    sb_add(&b, aioc_type_name(aioc_function_result_type(f)));
    if (b.failed) {
        free(b.s);
        return NULL;
    }
    f->signature = b.s;
    return f->signature;
}

static void function_free(aioc_function_info *f) {
    if (!f)
        return;
    wire_free_message(f->pb);
    free(f->signature);
    free(f);
}

AIOC_EXPORT void aioc_function_array_free(aioc_function_info **a, size_t n) {
    if (!a)
        return;
    for (size_t i = 0; i < n; i++)
        function_free(a[i]);
    free(a);
}

AIOC_EXPORT int aioc_plugins(aioc_client *c, aioc_function_info ***ret_functions, size_t *ret_n) {
    CLIENT_SCOPE(c);
    Aiod__ListPlugins l = AIOD__LIST_PLUGINS__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    Aiod__ServerMessage *reply = NULL;

    if (!c || !ret_functions || !ret_n)
        return -EINVAL;
    int r = client_begin(c);
    if (r < 0)
        return r;
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_LIST_PLUGINS;
    m.list_plugins = &l;
    r = client_call(c, &m, AIOD__SERVER_MESSAGE__BODY_PLUGIN_LIST, &reply);
    if (r < 0)
        return r;

    Aiod__PluginList *pl = reply->plugin_list;
    size_t n = pl->n_functions;
    aioc_function_info **a = alloc_calloc(n, sizeof(*a));
    if (!a) {
        wire_free(reply);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        a[i] = alloc_calloc(1, sizeof(*a[i]));
        if (!a[i]) {
            wire_free(reply);
            aioc_function_array_free(a, i);
            return -ENOMEM;
        }
        a[i]->pb = TAKE_PTR(pl->functions[i]);
    }
    pl->n_functions = 0;
    wire_free(reply);
    *ret_functions = a;
    *ret_n = n;
    return 0;
}
