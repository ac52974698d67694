/*
 * Typed values as protobuf-c Aiod__Value trees, shared by the daemon and
 * libaioclient. Values received from the wire are used as they are (no
 * conversion), and values built here can be packed directly. Every node is
 * allocated through alloc.h so that pbvalue_free (protobuf_c's own
 * free_unpacked) can release trees from either source.
 *
 * A Value whose oneof is unset is null; constructors make null that way.
 */
#ifndef AIOD_PROTO_PBVALUE_H
#define AIOD_PROTO_PBVALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aiod-pb.h"

/* Type codes: the same numbers as AIOD_TYPE_* and AIOC_TYPE_*. */
enum {
    PBVALUE_ANY = 0,
    PBVALUE_NULL = 1,
    PBVALUE_BOOL = 2,
    PBVALUE_INT = 3,
    PBVALUE_DOUBLE = 4,
    PBVALUE_STRING = 5,
    PBVALUE_BYTES = 6,
    PBVALUE_LIST = 7,
    PBVALUE_MAP = 8,
    PBVALUE_TYPE_MAX = 8,
};

/* Constructors return a new value or NULL on out-of-memory. */
Aiod__Value *pbvalue_null(void);
Aiod__Value *pbvalue_bool(bool b);
Aiod__Value *pbvalue_int(int64_t i);
Aiod__Value *pbvalue_double(double d);
/* Copies; NULL also when s is not valid UTF-8. */
Aiod__Value *pbvalue_string(const char *s);
Aiod__Value *pbvalue_stringn(const char *s, size_t len);
/* A string value that takes `s` (len bytes and a NUL after them) without
 * copying: for large text. NULL (and `s` still the caller's) when it is not
 * UTF-8 without NULs, or out of memory. */
Aiod__Value *pbvalue_string_take(char *s, size_t len);
/* How many of the `len` bytes of UTF-8 text `s` to keep to cut it to at most
 * `max` bytes without splitting a character. */
size_t pbvalue_utf8_cut(const char *s, size_t len, size_t max);
Aiod__Value *pbvalue_bytes(const void *data, size_t len);
Aiod__Value *pbvalue_list(void);
Aiod__Value *pbvalue_map(void);

/* Takes item, also on failure. 0, -EINVAL (not a list / NULL item), -ENOMEM. */
int pbvalue_list_append(Aiod__Value *list, Aiod__Value *item);
/* Takes item, also on failure; replaces an existing key. 0, -EINVAL, -ENOMEM.
 * Looks for the key among the entries: n calls cost O(n^2). */
int pbvalue_map_set(Aiod__Value *map, const char *key, Aiod__Value *item);

/* Lets the calling thread keep up to `max` freed nodes (one per value, of
 * any kind) for the values it makes next, instead of giving each back to
 * malloc: for a thread that makes and frees values at a high rate, such as
 * the daemon's loop. 0, the default, keeps none; lowering it frees what is
 * over. Per thread: call it with 0 before the thread ends. */
void pbvalue_node_cache(size_t max);

/* Deep copy or NULL on out-of-memory. */
Aiod__Value *pbvalue_copy(const Aiod__Value *v);
/* Accepts NULL. */
void pbvalue_free(Aiod__Value *v);
/* About how many bytes of heap v holds: its nodes and their strings, each
 * block with malloc's overhead. 0 for NULL. Recursive: for checked values
 * (pbvalue_check bounds the depth). */
size_t pbvalue_footprint(const Aiod__Value *v);

/* PBVALUE_NULL..PBVALUE_MAP (an unset oneof is PBVALUE_NULL). */
uint32_t pbvalue_type(const Aiod__Value *v);
/* "any", "null", "bool", ... or "?" for codes out of range. */
const char *pbvalue_type_name(uint32_t type);
/* Parses a type name; -EINVAL when unknown. */
int pbvalue_type_from_name(const char *name, uint32_t *ret_type);
/* True if a value of type `have` may stand where `want` is declared. */
bool pbvalue_type_fits(uint32_t want, uint32_t have);

size_t pbvalue_length(const Aiod__Value *v);
const Aiod__Value *pbvalue_list_get(const Aiod__Value *v, size_t i);
const Aiod__Value *pbvalue_map_get(const Aiod__Value *v, const char *key);

bool pbvalue_equal(const Aiod__Value *a, const Aiod__Value *b);

/*
 * Checks a value received from outside: nesting no deeper than max_depth
 * (a scalar is depth 1), strings and map keys valid UTF-8, map keys unique,
 * every node present. 0 or -EINVAL with a reason in *ret_why (static text).
 */
int pbvalue_check(const Aiod__Value *v, unsigned max_depth, const char **ret_why);

/* Frees the fields protobuf-c kept as unknown in `v` and below (unpacked
 * with alloc_protobuf), so that a value taken as decoded keeps only what
 * it means, and its footprint counts all it holds. Recursive: only for a
 * value pbvalue_check accepted (its depth is bounded). */
void pbvalue_drop_unknown(Aiod__Value *v);

bool pbvalue_utf8_valid(const char *s, size_t len);

/*
 * JSON text for a value (UTF-8, compact). bytes become {"$bytes":"<base64>"};
 * non-finite doubles become null. Returns a new string or NULL on OOM.
 */
char *pbvalue_to_json(const Aiod__Value *v);
/* The same text as pbvalue_to_json for its first `limit` bytes (what comes
 * after may differ: long strings, lists and maps are cut short first), for
 * a text that will be cut there anyway: its cost is bounded by `limit`, not
 * by the value's size. Newly allocated; NULL on OOM. */
char *pbvalue_to_json_prefix(const Aiod__Value *v, size_t limit);

/*
 * Parses JSON text (one value) into a value: integers that fit int64 become
 * int, other numbers double. 0, -EINVAL (not JSON: *ret_why set to a
 * description in why_buf), -ENOMEM.
 */
int pbvalue_from_json(const char *text, Aiod__Value **ret, char *why_buf, size_t why_len);

/*
 * As pbvalue_from_json, within limits checked by a scan of the text before
 * it is parsed, so that text over them costs one pass and no allocation:
 * nesting no deeper than max_depth (a scalar is depth 1, as in
 * pbvalue_check; 0 or over 63 means 63, which jansson's own limit of 2048
 * is far above), else -ELOOP; at most max_values values (Value messages: a
 * map's keys are not values), else -E2BIG. Either way why_buf
 * says which. *ret_values (may be NULL)
 * gets the number of values made.
 */
int pbvalue_from_json_bounded(const char *text, unsigned max_depth, size_t max_values,
                              Aiod__Value **ret, size_t *ret_values, char *why_buf, size_t why_len);

#endif
