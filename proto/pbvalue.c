/*
 * Building, copying, comparing and checking Aiod__Value trees (pbvalue.h).
 * Nodes are allocated with alloc.h and released with protobuf-c's
 * free_unpacked, so trees that came off the wire and trees built here are
 * interchangeable.
 */
#include "pbvalue.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

static void pb_free(void *p) {
    if (p)
        alloc_protobuf.free(alloc_protobuf.allocator_data, p);
}

/* The nodes this thread keeps for its next values (pbvalue_node_cache);
 * the link lives in the freed node. Off (max 0) unless the thread asks. */
typedef struct cached_node {
    struct cached_node *next;
} cached_node;
static __thread struct {
    cached_node *head;
    size_t n, max;
} nodes;

static void *node_take(void) {
    cached_node *c = nodes.head;
    if (!c)
        return alloc_malloc(sizeof(Aiod__Value));
    nodes.head = c->next;
    nodes.n--;
    return c;
}

/* Takes a node of sizeof(Aiod__Value) from malloc: made here or unpacked. */
static void node_give(Aiod__Value *v) {
    if (nodes.n >= nodes.max) {
        pb_free(v);
        return;
    }
    cached_node *c = (cached_node *)v;
    c->next = nodes.head;
    nodes.head = c;
    nodes.n++;
}

void pbvalue_node_cache(size_t max) {
    nodes.max = max;
    while (nodes.n > max)
        pb_free(node_take());
}

static Aiod__Value *new_value(Aiod__Value__KindCase kind) {
    Aiod__Value *v = node_take();
    if (!v)
        return NULL;
    aiod__value__init(v);
    v->kind_case = kind;
    return v;
}

Aiod__Value *pbvalue_null(void) {
    return new_value(AIOD__VALUE__KIND__NOT_SET);
}

Aiod__Value *pbvalue_bool(bool b) {
    Aiod__Value *v = new_value(AIOD__VALUE__KIND_BOOL_VALUE);
    if (v)
        v->bool_value = b;
    return v;
}

Aiod__Value *pbvalue_int(int64_t i) {
    Aiod__Value *v = new_value(AIOD__VALUE__KIND_INT_VALUE);
    if (v)
        v->int_value = i;
    return v;
}

Aiod__Value *pbvalue_double(double d) {
    Aiod__Value *v = new_value(AIOD__VALUE__KIND_DOUBLE_VALUE);
    if (v)
        v->double_value = d;
    return v;
}

Aiod__Value *pbvalue_stringn(const char *s, size_t len) {
    if (!s || !pbvalue_utf8_valid(s, len) || memchr(s, '\0', len))
        return NULL;
    Aiod__Value *v = new_value(AIOD__VALUE__KIND_STRING_VALUE);
    if (!v)
        return NULL;
    v->string_value = alloc_strndup(s, len);
    if (!v->string_value) {
        free(v);
        return NULL;
    }
    return v;
}

Aiod__Value *pbvalue_string_take(char *s, size_t len) {
    if (!s || s[len] != '\0' || !pbvalue_utf8_valid(s, len) || memchr(s, '\0', len))
        return NULL;
    Aiod__Value *v = new_value(AIOD__VALUE__KIND_STRING_VALUE);
    if (!v)
        return NULL;
    v->string_value = s;
    return v;
}

Aiod__Value *pbvalue_string(const char *s) {
    return s ? pbvalue_stringn(s, strlen(s)) : NULL;
}

Aiod__Value *pbvalue_bytes(const void *data, size_t len) {
    Aiod__Value *v = new_value(AIOD__VALUE__KIND_BYTES_VALUE);
    if (!v)
        return NULL;
    if (len > 0) {
        v->bytes_value.data = alloc_malloc(len);
        if (!v->bytes_value.data) {
            free(v);
            return NULL;
        }
        memcpy(v->bytes_value.data, data, len);
    }
    v->bytes_value.len = len;
    return v;
}

Aiod__Value *pbvalue_list(void) {
    Aiod__Value *v = new_value(AIOD__VALUE__KIND_LIST_VALUE);
    if (!v)
        return NULL;
    v->list_value = alloc_malloc(sizeof(*v->list_value));
    if (!v->list_value) {
        free(v);
        return NULL;
    }
    aiod__list__init(v->list_value);
    return v;
}

Aiod__Value *pbvalue_map(void) {
    Aiod__Value *v = new_value(AIOD__VALUE__KIND_MAP_VALUE);
    if (!v)
        return NULL;
    v->map_value = alloc_malloc(sizeof(*v->map_value));
    if (!v->map_value) {
        free(v);
        return NULL;
    }
    aiod__map__init(v->map_value);
    return v;
}

/* A node with fields protobuf-c kept as unknown goes through its walk, which
 * frees those too: true if it did (m is then gone). */
static bool freed_by_protobuf(ProtobufCMessage *m) {
    if (m->n_unknown_fields == 0)
        return false;
    protobuf_c_message_free_unpacked(m, &alloc_protobuf);
    return true;
}

static void free_list(Aiod__List *l) {
    if (!l)
        return;
    if (freed_by_protobuf(&l->base))
        return;
    for (size_t i = 0; i < l->n_items; i++)
        pbvalue_free(l->items[i]);
    pb_free(l->items);
    pb_free(l);
}

static void free_map(Aiod__Map *m) {
    if (!m)
        return;
    if (freed_by_protobuf(&m->base))
        return;
    for (size_t i = 0; i < m->n_entries; i++) {
        Aiod__MapEntry *e = m->entries[i];
        if (!e)
            continue;
        if (freed_by_protobuf(&e->base))
            continue;
        /* An entry unpacked without a key has protobuf-c's shared "". */
        if (e->key != protobuf_c_empty_string)
            pb_free(e->key);
        pbvalue_free(e->value);
        pb_free(e);
    }
    pb_free(m->entries);
    pb_free(m);
}

void pbvalue_free(Aiod__Value *v) {
    if (!v)
        return;
    /* The tree's shape is known: no need for protobuf-c's walk of the
     * descriptors, which cost as much as the unpack of a big value. */
    if (freed_by_protobuf(&v->base))
        return;
    switch (v->kind_case) {
    case AIOD__VALUE__KIND_NULL_VALUE:
        if (v->null_value && !freed_by_protobuf(&v->null_value->base))
            pb_free(v->null_value);
        break;
    case AIOD__VALUE__KIND_STRING_VALUE:
        if (v->string_value != protobuf_c_empty_string)
            pb_free(v->string_value);
        break;
    case AIOD__VALUE__KIND_BYTES_VALUE:
        pb_free(v->bytes_value.data);
        break;
    case AIOD__VALUE__KIND_LIST_VALUE:
        free_list(v->list_value);
        break;
    case AIOD__VALUE__KIND_MAP_VALUE:
        free_map(v->map_value);
        break;
    default: /* scalars own nothing but their node */
        break;
    }
    node_give(v);
}

size_t pbvalue_footprint(const Aiod__Value *v) {
    if (!v)
        return 0;
    size_t n = alloc_block_size(sizeof(*v));
    switch (v->kind_case) {
    case AIOD__VALUE__KIND_STRING_VALUE:
        n += alloc_block_size(strlen(v->string_value) + 1);
        break;
    case AIOD__VALUE__KIND_BYTES_VALUE:
        n += alloc_block_size(v->bytes_value.len);
        break;
    case AIOD__VALUE__KIND_LIST_VALUE:
        if (!v->list_value)
            break;
        n += alloc_block_size(sizeof(*v->list_value)) +
             alloc_block_size(v->list_value->n_items * sizeof(*v->list_value->items));
        for (size_t i = 0; i < v->list_value->n_items; i++)
            n += pbvalue_footprint(v->list_value->items[i]);
        break;
    case AIOD__VALUE__KIND_MAP_VALUE:
        if (!v->map_value)
            break;
        n += alloc_block_size(sizeof(*v->map_value)) +
             alloc_block_size(v->map_value->n_entries * sizeof(*v->map_value->entries));
        for (size_t i = 0; i < v->map_value->n_entries; i++) {
            const Aiod__MapEntry *e = v->map_value->entries[i];
            if (!e)
                continue;
            n += alloc_block_size(sizeof(*e)) +
                 (e->key ? alloc_block_size(strlen(e->key) + 1) : 0) + pbvalue_footprint(e->value);
        }
        break;
    default:
        break;
    }
    return n;
}

int pbvalue_list_append(Aiod__Value *list, Aiod__Value *item) {
    if (!list || !item || list->kind_case != AIOD__VALUE__KIND_LIST_VALUE || !list->list_value) {
        pbvalue_free(item);
        return -EINVAL;
    }
    Aiod__List *l = list->list_value;
    /* Arrays from the wire are exactly sized, so grow by one; glibc's realloc
     * extends large blocks in place, which keeps long lists cheap. */
    Aiod__Value **items = alloc_realloc(l->items, (l->n_items + 1) * sizeof(*items));
    if (!items) {
        pbvalue_free(item);
        return -ENOMEM;
    }
    items[l->n_items++] = item;
    l->items = items;
    return 0;
}

/* Adds an entry without looking for the key (item taken). */
static int map_append(Aiod__Map *m, const char *key, Aiod__Value *item) {
    Aiod__MapEntry *e = alloc_malloc(sizeof(*e));
    if (!e) {
        pbvalue_free(item);
        return -ENOMEM;
    }
    aiod__map_entry__init(e);
    e->key = alloc_strdup(key);
    Aiod__MapEntry **entries =
        e->key ? alloc_realloc(m->entries, (m->n_entries + 1) * sizeof(*entries)) : NULL;
    if (!entries) {
        free(e->key == protobuf_c_empty_string ? NULL : e->key);
        free(e);
        pbvalue_free(item);
        return -ENOMEM;
    }
    e->value = item;
    entries[m->n_entries++] = e;
    m->entries = entries;
    return 0;
}

int pbvalue_map_set(Aiod__Value *map, const char *key, Aiod__Value *item) {
    if (!map || !key || !item || map->kind_case != AIOD__VALUE__KIND_MAP_VALUE || !map->map_value ||
        !pbvalue_utf8_valid(key, strlen(key))) {
        pbvalue_free(item);
        return -EINVAL;
    }
    Aiod__Map *m = map->map_value;
    for (size_t i = 0; i < m->n_entries; i++)
        if (strcmp(m->entries[i]->key, key) == 0) {
            pbvalue_free(m->entries[i]->value);
            m->entries[i]->value = item;
            return 0;
        }
    return map_append(m, key, item);
}

uint32_t pbvalue_type(const Aiod__Value *v) {
    if (!v)
        return PBVALUE_NULL;
    switch (v->kind_case) {
    case AIOD__VALUE__KIND_BOOL_VALUE:
        return PBVALUE_BOOL;
    case AIOD__VALUE__KIND_INT_VALUE:
        return PBVALUE_INT;
    case AIOD__VALUE__KIND_DOUBLE_VALUE:
        return PBVALUE_DOUBLE;
    case AIOD__VALUE__KIND_STRING_VALUE:
        return PBVALUE_STRING;
    case AIOD__VALUE__KIND_BYTES_VALUE:
        return PBVALUE_BYTES;
    case AIOD__VALUE__KIND_LIST_VALUE:
        return PBVALUE_LIST;
    case AIOD__VALUE__KIND_MAP_VALUE:
        return PBVALUE_MAP;
    default:
        return PBVALUE_NULL;
    }
}

static const char *const type_names[] = {"any",    "null",  "bool", "int", "double",
                                         "string", "bytes", "list", "map"};

const char *pbvalue_type_name(uint32_t type) {
    return type <= PBVALUE_TYPE_MAX ? type_names[type] : "?";
}

int pbvalue_type_from_name(const char *name, uint32_t *ret_type) {
    for (uint32_t t = 0; t <= PBVALUE_TYPE_MAX; t++)
        if (strcmp(name, type_names[t]) == 0) {
            *ret_type = t;
            return 0;
        }
    return -EINVAL;
}

bool pbvalue_type_fits(uint32_t want, uint32_t have) {
    if (want == PBVALUE_ANY || want == have)
        return true;
    /* An int is accepted where a double is declared, as Python does. */
    return want == PBVALUE_DOUBLE && have == PBVALUE_INT;
}

size_t pbvalue_length(const Aiod__Value *v) {
    switch (pbvalue_type(v)) {
    case PBVALUE_LIST:
        return v->list_value ? v->list_value->n_items : 0;
    case PBVALUE_MAP:
        return v->map_value ? v->map_value->n_entries : 0;
    default:
        return 0;
    }
}

const Aiod__Value *pbvalue_list_get(const Aiod__Value *v, size_t i) {
    if (pbvalue_type(v) != PBVALUE_LIST || i >= pbvalue_length(v))
        return NULL;
    return v->list_value->items[i];
}

const Aiod__Value *pbvalue_map_get(const Aiod__Value *v, const char *key) {
    if (pbvalue_type(v) != PBVALUE_MAP || !key)
        return NULL;
    for (size_t i = 0; i < pbvalue_length(v); i++)
        if (strcmp(v->map_value->entries[i]->key, key) == 0)
            return v->map_value->entries[i]->value;
    return NULL;
}

/* The arrays of a copy are sized at once: copying costs linear time and no
 * reallocation, however long the list or map (a 4 MiB frame holds a map of
 * about 230k entries). Each node is linked into the copy as soon as it
 * exists, so that pbvalue_free releases a half-made copy. */
static Aiod__Value *copy_list(const Aiod__Value *v) {
    size_t n = pbvalue_length(v);
    Aiod__Value *c = pbvalue_list();
    if (!c)
        return NULL;
    Aiod__List *l = c->list_value;
    if (n && !(l->items = alloc_malloc(n * sizeof(*l->items))))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        if (!(l->items[i] = pbvalue_copy(v->list_value->items[i])))
            goto fail;
        l->n_items++;
    }
    return c;
fail:
    pbvalue_free(c);
    return NULL;
}

/* Entry by entry as they are: a copy keeps the map's keys, also invalid
 * ones (the copy is no check), and searches for none. */
static Aiod__Value *copy_map(const Aiod__Value *v) {
    size_t n = pbvalue_length(v);
    Aiod__Value *c = pbvalue_map();
    if (!c)
        return NULL;
    Aiod__Map *m = c->map_value;
    if (n && !(m->entries = alloc_malloc(n * sizeof(*m->entries))))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        const Aiod__MapEntry *from = v->map_value->entries[i];
        Aiod__MapEntry *e = alloc_malloc(sizeof(*e));
        if (!e)
            goto fail;
        aiod__map_entry__init(e);
        m->entries[m->n_entries++] = e;
        char *key = alloc_strdup(from->key ? from->key : "");
        if (!key)
            goto fail;
        e->key = key;
        if (!(e->value = pbvalue_copy(from->value)))
            goto fail;
    }
    return c;
fail:
    pbvalue_free(c);
    return NULL;
}

Aiod__Value *pbvalue_copy(const Aiod__Value *v) {
    Aiod__Value *c = NULL;
    switch (pbvalue_type(v)) {
    case PBVALUE_NULL:
        return pbvalue_null();
    case PBVALUE_BOOL:
        return pbvalue_bool(v->bool_value);
    case PBVALUE_INT:
        return pbvalue_int(v->int_value);
    case PBVALUE_DOUBLE:
        return pbvalue_double(v->double_value);
    case PBVALUE_STRING:
        /* A plain copy, not pbvalue_string: values from the wire are copied
         * before they are checked, and the check must report bad UTF-8. */
        c = new_value(AIOD__VALUE__KIND_STRING_VALUE);
        if (c && !(c->string_value = alloc_strdup(v->string_value ? v->string_value : ""))) {
            free(c);
            return NULL;
        }
        return c;
    case PBVALUE_BYTES:
        return pbvalue_bytes(v->bytes_value.data, v->bytes_value.len);
    case PBVALUE_LIST:
        return copy_list(v);
    case PBVALUE_MAP:
        return copy_map(v);
    default:
        return NULL;
    }
}

bool pbvalue_equal(const Aiod__Value *a, const Aiod__Value *b) {
    uint32_t t = pbvalue_type(a);
    if (t != pbvalue_type(b))
        return false;
    switch (t) {
    case PBVALUE_NULL:
        return true;
    case PBVALUE_BOOL:
        return !a->bool_value == !b->bool_value;
    case PBVALUE_INT:
        return a->int_value == b->int_value;
    case PBVALUE_DOUBLE:
        return a->double_value == b->double_value;
    case PBVALUE_STRING:
        return strcmp(a->string_value, b->string_value) == 0;
    case PBVALUE_BYTES:
        return a->bytes_value.len == b->bytes_value.len &&
               (a->bytes_value.len == 0 ||
                memcmp(a->bytes_value.data, b->bytes_value.data, a->bytes_value.len) == 0);
    case PBVALUE_LIST:
        if (pbvalue_length(a) != pbvalue_length(b))
            return false;
        for (size_t i = 0; i < pbvalue_length(a); i++)
            if (!pbvalue_equal(a->list_value->items[i], b->list_value->items[i]))
                return false;
        return true;
    case PBVALUE_MAP:
        if (pbvalue_length(a) != pbvalue_length(b))
            return false;
        for (size_t i = 0; i < pbvalue_length(a); i++) {
            const Aiod__MapEntry *e = a->map_value->entries[i];
            const Aiod__Value *other = pbvalue_map_get(b, e->key);
            if (!other || !pbvalue_equal(e->value, other))
                return false;
        }
        return true;
    default:
        return false;
    }
}

/* Whether none of the 16 bytes at p has its high bit set. */
static inline bool ascii16(const unsigned char *p) {
    uint64_t a, b;
    memcpy(&a, p, 8);
    memcpy(&b, p + 8, 8);
    return ((a | b) & UINT64_C(0x8080808080808080)) == 0;
}

/* Unicode's table 3-7 of well-formed sequences: a lead byte gives the
 * length, and the range of the second byte rules out overlong forms (E0,
 * F0), surrogates (ED) and code points past U+10FFFF (F4); the bytes after
 * it are 80..BF. Text is mostly ASCII: it is skipped 16 bytes at a time
 * (two word loads, no alignment needed), and byte by byte to the next
 * 16-byte step after a multi-byte character. */
bool pbvalue_utf8_valid(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        if ((size_t)(end - p) >= 16 && ascii16(p)) {
            p += 16;
            continue;
        }
        unsigned char c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            return false; /* 80..C1 (a tail, or overlong 2-byte), F5..FF */
        }
        if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
            return false;
        for (size_t i = 2; i < n; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        p += n;
    }
    return true;
}

/* A message naming a map key (`key`, valid UTF-8, shown up to 64 bytes, cut
 * between characters): the text lives in a buffer of the calling thread,
 * valid until its next check. */
size_t pbvalue_utf8_cut(const char *s, size_t len, size_t max) {
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--; /* the start of the character the cut falls in */
    return n;
}

static const char *keyed_message(const char *what, const char *key) {
    static _Thread_local char buf[160];
    size_t len = strlen(key), n = pbvalue_utf8_cut(key, len, 64);
    bool cut = n < len;
    snprintf(buf, sizeof(buf), "%s \"%.*s%s\"", what, (int)n, key, cut ? "…" : "");
    return buf;
}

static uint64_t key_hash(const char *k) {
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211ull;
    return h;
}

/* A hash set of the key pointers (open addressing, at most half full)
 * keeps this O(n) for big maps, in one allocation. */
static int check_unique_keys(const Aiod__Map *m, const char **why) {
    if (m->n_entries < 2)
        return 0;
    size_t cap = 4;
    while (cap < 2 * m->n_entries)
        cap *= 2;
    const char **slots = alloc_calloc(cap, sizeof(*slots));
    if (!slots) {
        *why = "out of memory";
        return -ENOMEM;
    }
    int r = 0;
    for (size_t i = 0; i < m->n_entries && r == 0; i++) {
        const char *k = m->entries[i]->key;
        for (size_t j = key_hash(k) & (cap - 1);; j = (j + 1) & (cap - 1)) {
            if (!slots[j]) {
                slots[j] = k;
                break;
            }
            if (strcmp(slots[j], k) == 0) {
                *why = keyed_message("duplicate map key", k);
                r = -EINVAL;
                break;
            }
        }
    }
    free(slots);
    return r;
}

static int check(const Aiod__Value *v, unsigned depth, unsigned max_depth, const char **why) {
    if (!v) {
        *why = "missing value";
        return -EINVAL;
    }
    if (depth > max_depth) {
        *why = "values nested too deeply";
        return -EINVAL;
    }
    switch (v->kind_case) {
    case AIOD__VALUE__KIND_STRING_VALUE:
        if (!v->string_value || !pbvalue_utf8_valid(v->string_value, strlen(v->string_value))) {
            *why = "string is not valid UTF-8";
            return -EINVAL;
        }
        return 0;
    case AIOD__VALUE__KIND_LIST_VALUE:
        if (!v->list_value) {
            *why = "list without items";
            return -EINVAL;
        }
        for (size_t i = 0; i < v->list_value->n_items; i++) {
            int r = check(v->list_value->items[i], depth + 1, max_depth, why);
            if (r < 0)
                return r;
        }
        return 0;
    case AIOD__VALUE__KIND_MAP_VALUE:
        if (!v->map_value) {
            *why = "map without entries";
            return -EINVAL;
        }
        for (size_t i = 0; i < v->map_value->n_entries; i++) {
            const Aiod__MapEntry *e = v->map_value->entries[i];
            if (!e->key || !pbvalue_utf8_valid(e->key, strlen(e->key))) {
                *why = "map key is not valid UTF-8";
                return -EINVAL;
            }
            if (!e->value) {
                *why = keyed_message("missing value for map key", e->key);
                return -EINVAL;
            }
            int r = check(e->value, depth + 1, max_depth, why);
            if (r < 0)
                return r;
        }
        return check_unique_keys(v->map_value, why);
    default:
        return 0;
    }
}

static void drop_unknown_fields(ProtobufCMessage *m) {
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        alloc_protobuf.free(alloc_protobuf.allocator_data, m->unknown_fields[i].data);
    alloc_protobuf.free(alloc_protobuf.allocator_data, m->unknown_fields);
    m->unknown_fields = NULL;
    m->n_unknown_fields = 0;
}

void pbvalue_drop_unknown(Aiod__Value *v) {
    if (!v)
        return;
    drop_unknown_fields(&v->base);
    if (v->kind_case == AIOD__VALUE__KIND_LIST_VALUE && v->list_value) {
        drop_unknown_fields(&v->list_value->base);
        for (size_t i = 0; i < v->list_value->n_items; i++)
            pbvalue_drop_unknown(v->list_value->items[i]);
    } else if (v->kind_case == AIOD__VALUE__KIND_MAP_VALUE && v->map_value) {
        drop_unknown_fields(&v->map_value->base);
        for (size_t i = 0; i < v->map_value->n_entries; i++) {
            Aiod__MapEntry *e = v->map_value->entries[i];
            if (!e)
                continue;
            drop_unknown_fields(&e->base);
            pbvalue_drop_unknown(e->value);
        }
    }
}

int pbvalue_check(const Aiod__Value *v, unsigned max_depth, const char **ret_why) {
    const char *why = NULL;
    int r = check(v, 1, max_depth, &why);
    if (r < 0 && ret_why)
        *ret_why = why;
    return r;
}
