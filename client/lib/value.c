/*
 * value: the public aioc_value_* functions, thin checked wrappers over the
 * shared pbvalue code (proto/pbvalue.h).
 */
#include "value.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "pbvalue.h"

AIOC_EXPORT aioc_value *aioc_value_null(void) {
    return value_from_pb(pbvalue_null());
}

AIOC_EXPORT aioc_value *aioc_value_bool(int b) {
    return value_from_pb(pbvalue_bool(b != 0));
}

AIOC_EXPORT aioc_value *aioc_value_int(int64_t i) {
    return value_from_pb(pbvalue_int(i));
}

AIOC_EXPORT aioc_value *aioc_value_double(double d) {
    return value_from_pb(pbvalue_double(d));
}

AIOC_EXPORT aioc_value *aioc_value_string(const char *s) {
    return s ? value_from_pb(pbvalue_string(s)) : NULL;
}

AIOC_EXPORT aioc_value *aioc_value_bytes(const void *data, size_t len) {
    if (!data && len > 0)
        return NULL;
    return value_from_pb(pbvalue_bytes(data, len));
}

AIOC_EXPORT aioc_value *aioc_value_list(void) {
    return value_from_pb(pbvalue_list());
}

AIOC_EXPORT aioc_value *aioc_value_map(void) {
    return value_from_pb(pbvalue_map());
}

/* The depth of v (a scalar, or an empty list or map, is 1), counted no
 * further than limit + 1: the walk goes at most `limit` levels down. */
static unsigned depth(const Aiod__Value *v, unsigned limit) {
    unsigned d = 0;
    if (!v)
        return 0;
    if (limit == 0)
        return 1;
    if (v->kind_case == AIOD__VALUE__KIND_LIST_VALUE && v->list_value)
        for (size_t i = 0; i < v->list_value->n_items && d < limit; i++) {
            unsigned c = depth(v->list_value->items[i], limit - 1);
            d = c > d ? c : d;
        }
    else if (v->kind_case == AIOD__VALUE__KIND_MAP_VALUE && v->map_value)
        for (size_t i = 0; i < v->map_value->n_entries && d < limit; i++) {
            const Aiod__MapEntry *e = v->map_value->entries[i];
            unsigned c = e ? depth(e->value, limit - 1) : 0;
            d = c > d ? c : d;
        }
    return d + 1;
}

/* Would `item`, put inside a list or map, make it deeper than a call may
 * send (aioc_value(3))? No deeper value can then be built: freeing,
 * printing and checking it recurse once per level. */
static bool too_deep(const aioc_value *item) {
    return depth(value_cpb(item), CALL_MAX_VALUE_DEPTH - 1) > CALL_MAX_VALUE_DEPTH - 1;
}

AIOC_EXPORT int aioc_value_list_append(aioc_value *list, aioc_value *item) {
    if (list == item && list) {
        /* Appending a list to itself would make a cycle. */
        return -EINVAL;
    }
    if (too_deep(item)) {
        aioc_value_free(item);
        return -EINVAL;
    }
    return pbvalue_list_append(value_pb(list), value_pb(item));
}

AIOC_EXPORT int aioc_value_map_set(aioc_value *map, const char *key, aioc_value *item) {
    if (map == item && map)
        return -EINVAL;
    if (too_deep(item)) {
        aioc_value_free(item);
        return -EINVAL;
    }
    return pbvalue_map_set(value_pb(map), key, value_pb(item));
}

AIOC_EXPORT aioc_value *aioc_value_copy(const aioc_value *v) {
    return v ? value_from_pb(pbvalue_copy(value_cpb(v))) : NULL;
}

AIOC_EXPORT void aioc_value_free(aioc_value *v) {
    pbvalue_free(value_pb(v));
}

AIOC_EXPORT uint32_t aioc_value_type(const aioc_value *v) {
    return pbvalue_type(value_cpb(v));
}

AIOC_EXPORT int aioc_value_get_bool(const aioc_value *v) {
    return aioc_value_type(v) == AIOC_TYPE_BOOL ? value_cpb(v)->bool_value : 0;
}

AIOC_EXPORT int64_t aioc_value_get_int(const aioc_value *v) {
    return aioc_value_type(v) == AIOC_TYPE_INT ? value_cpb(v)->int_value : 0;
}

AIOC_EXPORT double aioc_value_get_double(const aioc_value *v) {
    switch (aioc_value_type(v)) {
    case AIOC_TYPE_DOUBLE:
        return value_cpb(v)->double_value;
    case AIOC_TYPE_INT:
        return (double)value_cpb(v)->int_value;
    default:
        return 0.0;
    }
}

AIOC_EXPORT const char *aioc_value_get_string(const aioc_value *v) {
    return aioc_value_type(v) == AIOC_TYPE_STRING ? value_cpb(v)->string_value : NULL;
}

AIOC_EXPORT const void *aioc_value_get_bytes(const aioc_value *v, size_t *ret_len) {
    if (aioc_value_type(v) != AIOC_TYPE_BYTES)
        return NULL;
    const ProtobufCBinaryData *b = &value_cpb(v)->bytes_value;
    if (ret_len)
        *ret_len = b->len;
    /* Empty bytes have no buffer; still hand out a valid pointer so that
     * NULL keeps meaning "not bytes". */
    return b->data ? (const void *)b->data : (const void *)"";
}

AIOC_EXPORT size_t aioc_value_length(const aioc_value *v) {
    return v ? pbvalue_length(value_cpb(v)) : 0;
}

AIOC_EXPORT const aioc_value *aioc_value_list_get(const aioc_value *v, size_t i) {
    return v ? value_from_cpb(pbvalue_list_get(value_cpb(v), i)) : NULL;
}

AIOC_EXPORT const aioc_value *aioc_value_map_get(const aioc_value *v, const char *key) {
    return v && key ? value_from_cpb(pbvalue_map_get(value_cpb(v), key)) : NULL;
}

AIOC_EXPORT const char *aioc_value_map_key(const aioc_value *v, size_t i) {
    if (aioc_value_type(v) != AIOC_TYPE_MAP || i >= aioc_value_length(v))
        return NULL;
    return value_cpb(v)->map_value->entries[i]->key;
}

AIOC_EXPORT char *aioc_value_to_json(const aioc_value *v) {
    return v ? pbvalue_to_json(value_cpb(v)) : NULL;
}

AIOC_EXPORT int aioc_value_from_json(const char *json, aioc_value **ret) {
    Aiod__Value *v;
    if (!json || !ret)
        return -EINVAL;
    int r = pbvalue_from_json(json, &v, NULL, 0);
    if (r < 0)
        return r;
    *ret = value_from_pb(v);
    return 0;
}

AIOC_EXPORT const char *aioc_type_name(uint32_t type) {
    return type <= PBVALUE_TYPE_MAX ? pbvalue_type_name(type) : "unknown";
}
