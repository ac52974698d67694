/*
 * Writes the large seeds of fuzz-conn-large at build time: inputs as big as
 * one frame of the daemon's default max_frame may be, each holding the
 * worst shape of one kind of argument, so that every build replays them
 * (label fuzz) and the large fuzz run (label fuzz-run) starts from them.
 * They are generated rather than checked in because each is 4 MiB.
 *
 * Each file is fuzz-conn's input format: one byte choosing the write chunk,
 * one byte whose low bit clear means "send a Hello first", then the frame
 * (4-byte big-endian length, then a ClientMessage). Every frame is a Submit
 * of demo.echo (one parameter of any type), so the argument gets past the
 * function lookup and is checked whole:
 *
 *   map_keys        a map of as many distinct keys as the frame holds
 *                   (about 240k), each with an int value;
 *   map_dup_last    the same, but the last key repeats the first (the map
 *                   rules refuse it, after looking at every key);
 *   list_ints       a list of as many small ints as the frame holds (about
 *                   1M);
 *   nest_at_limit   a list of values each nested to exactly the value depth
 *                   limit, as many as the frame holds;
 *   nest_deepest    one list inside a list inside a list... as deep as the
 *                   frame holds (about 400k levels: refused by the depth
 *                   pre-check, which must not recurse);
 *   bad_utf8        a string that is nothing but ill-formed UTF-8.
 *
 * The protobuf is written by hand here (no protobuf-c), so that nothing of
 * the daemon's own encoding is trusted to build its test inputs.
 *
 * Usage: fuzz-gen-large OUT_DIR. Prints one line per file written.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/aiod_limits.h"

/* Room left in a frame for the message around the argument: request id,
 * Submit, Call, the function's name and the argument's own tag and
 * length. */
#define ENVELOPE 64u

/* Field numbers and wire types (proto/aiod.proto). */
#define WT_VARINT 0u
#define WT_LEN 2u
#define CLIENT_REQUEST_ID 1u
#define CLIENT_SUBMIT 3u
#define SUBMIT_CALL 1u
#define CALL_FUNCTION 1u
#define CALL_ARGS 2u
#define VALUE_INT 3u
#define VALUE_STRING 5u
#define VALUE_LIST 7u
#define VALUE_MAP 8u
#define LIST_ITEMS 1u
#define MAP_ENTRIES 1u
#define ENTRY_KEY 1u
#define ENTRY_VALUE 2u

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void die(const char *what) {
    fprintf(stderr, "fuzz-gen-large: %s\n", what);
    exit(1);
}

static void reserve(buf *b, size_t more) {
    if (b->cap - b->n >= more)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->n < more)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        die("out of memory");
    b->p = p;
    b->cap = cap;
}

static void put(buf *b, const void *data, size_t len) {
    reserve(b, len);
    memcpy(b->p + b->n, data, len);
    b->n += len;
}

static size_t varint(uint8_t out[10], uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

static void put_varint(buf *b, uint64_t v) {
    uint8_t tmp[10];
    put(b, tmp, varint(tmp, v));
}

static void put_tag(buf *b, unsigned field, unsigned wire_type) {
    put_varint(b, (uint64_t)field << 3 | wire_type);
}

/* A length-delimited field holding `len` bytes of `data`. */
static void put_bytes(buf *b, unsigned field, const void *data, size_t len) {
    put_tag(b, field, WT_LEN);
    put_varint(b, len);
    put(b, data, len);
}

static void put_sub(buf *b, unsigned field, const buf *inner) {
    put_bytes(b, field, inner->p, inner->n);
}

static uint64_t zigzag(int64_t v) {
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

/* Value{int_value v}. */
static void put_int_value(buf *b, int64_t v) {
    put_tag(b, VALUE_INT, WT_VARINT);
    put_varint(b, zigzag(v));
}

/* Wraps one encoded Value as the only argument of a Submit of demo.echo
 * and frames it: the whole fuzz-conn input. */
static buf submit_echo(const buf *arg) {
    static const char fn[] = "demo.echo";
    buf call = {0}, submit = {0}, msg = {0}, out = {0};
    put_bytes(&call, CALL_FUNCTION, fn, sizeof(fn) - 1);
    put_sub(&call, CALL_ARGS, arg);
    put_sub(&submit, SUBMIT_CALL, &call);
    put_tag(&msg, CLIENT_REQUEST_ID, WT_VARINT);
    put_varint(&msg, 2);
    put_sub(&msg, CLIENT_SUBMIT, &submit);
    if (msg.n > LIMIT_MAX_FRAME)
        die("a seed came out larger than max_frame");
    /* Chunk byte 63: the largest chunk fuzz-conn writes; 0: Hello first. */
    uint8_t head[6] = {63,
                       0,
                       (uint8_t)(msg.n >> 24),
                       (uint8_t)(msg.n >> 16),
                       (uint8_t)(msg.n >> 8),
                       (uint8_t)msg.n};
    put(&out, head, sizeof(head));
    put(&out, msg.p, msg.n);
    free(call.p);
    free(submit.p);
    free(msg.p);
    return out;
}

/* Value{map_value{...}} with distinct keys "k<hex>" while they fit; with
 * `dup_last`, the last entry's key is the first one's again. */
static buf map_arg(int dup_last, size_t *count) {
    buf map = {0}, val = {0};
    char key[32];
    size_t i;
    for (i = 0;; i++) {
        buf entry = {0}, v = {0};
        int len = snprintf(key, sizeof(key), "k%zx", i);
        put_bytes(&entry, ENTRY_KEY, key, (size_t)len);
        put_int_value(&v, (int64_t)i);
        put_sub(&entry, ENTRY_VALUE, &v);
        /* Stop while the next entry (which may be the duplicate) still fits. */
        if (map.n + 2 * (entry.n + 8) > LIMIT_MAX_FRAME - ENVELOPE) {
            free(entry.p);
            free(v.p);
            break;
        }
        put_sub(&map, MAP_ENTRIES, &entry);
        free(entry.p);
        free(v.p);
    }
    if (dup_last) {
        buf entry = {0}, v = {0};
        put_bytes(&entry, ENTRY_KEY, "k0", 2);
        put_int_value(&v, -1);
        put_sub(&entry, ENTRY_VALUE, &v);
        put_sub(&map, MAP_ENTRIES, &entry);
        free(entry.p);
        free(v.p);
        i++;
    }
    put_sub(&val, VALUE_MAP, &map);
    free(map.p);
    *count = i;
    return val;
}

/* Value{list_value{items: small ints}}: four bytes per item. */
static buf list_arg(size_t *count) {
    buf list = {0}, val = {0};
    size_t i;
    for (i = 0; list.n + 8 <= LIMIT_MAX_FRAME - ENVELOPE; i++) {
        buf v = {0};
        put_int_value(&v, (int64_t)(i % 64) - 32);
        put_sub(&list, LIST_ITEMS, &v);
        free(v.p);
    }
    put_sub(&val, VALUE_LIST, &list);
    free(list.p);
    *count = i;
    return val;
}

/* A Value nested `depth` levels deep (a scalar is 1): lists inside lists
 * around one int. */
static buf chain(unsigned depth) {
    buf v = {0};
    put_int_value(&v, 7);
    for (unsigned d = 1; d < depth; d++) {
        buf list = {0}, outer = {0};
        put_sub(&list, LIST_ITEMS, &v);
        put_sub(&outer, VALUE_LIST, &list);
        free(list.p);
        free(v.p);
        v = outer;
    }
    return v;
}

/* A list (depth 1) of chains of depth LIMIT_VALUE_DEPTH - 1: the argument
 * nests exactly as deep as allowed, as many times as the frame holds. */
static buf nest_at_limit_arg(size_t *count) {
    buf one = chain(LIMIT_VALUE_DEPTH - 1), list = {0}, val = {0};
    size_t i;
    for (i = 0; list.n + one.n + 8 <= LIMIT_MAX_FRAME - ENVELOPE; i++)
        put_sub(&list, LIST_ITEMS, &one);
    put_sub(&val, VALUE_LIST, &list);
    free(one.p);
    free(list.p);
    *count = i;
    return val;
}

/* One chain as deep as the frame holds. Written backwards from the end of
 * one buffer, so that each level costs its own few bytes only (wrapping
 * copies would make this quadratic). */
static buf nest_deepest_arg(size_t *levels) {
    size_t cap = LIMIT_MAX_FRAME - ENVELOPE, start = cap;
    uint8_t *p = malloc(cap), tmp[12];
    if (!p)
        die("out of memory");
    buf v = {0};
    put_int_value(&v, 7);
    start -= v.n;
    memcpy(p + start, v.p, v.n);
    free(v.p);
    size_t n = 1;
    for (;;) {
        /* Value{list_value = List{items = <what is there>}}: two tags and
         * two lengths around what is already written. */
        size_t inner = cap - start, k = 0;
        uint8_t l1[10], l2[10];
        size_t n1 = varint(l1, inner);
        size_t list_len = 1 + n1 + inner;
        size_t n2 = varint(l2, list_len);
        tmp[k++] = (uint8_t)(LIST_ITEMS << 3 | WT_LEN);
        memcpy(tmp + k, l1, n1);
        k += n1;
        size_t need = k + 1 + n2;
        if (need > start)
            break;
        start -= k;
        memcpy(p + start, tmp, k);
        start -= 1 + n2;
        p[start] = (uint8_t)(VALUE_LIST << 3 | WT_LEN);
        memcpy(p + start + 1, l2, n2);
        n++;
    }
    buf out = {0};
    put(&out, p + start, cap - start);
    free(p);
    *levels = n;
    return out;
}

/* Value{string_value: ill-formed UTF-8 only}: every kind of bad sequence,
 * each after an ASCII byte so that no two join into a valid character, the
 * whole ending in a character cut short. */
static buf bad_utf8_arg(size_t *count) {
    static const struct {
        uint8_t len, b[6];
    } bad[] = {
        {1, {0x80}},                               /* a continuation byte alone */
        {1, {0xbf}},                               /* the last continuation byte */
        {2, {0xc0, 0xaf}},                         /* overlong '/' in two bytes */
        {2, {0xc1, 0xbf}},                         /* overlong DEL */
        {3, {0xe0, 0x80, 0xaf}},                   /* overlong '/' in three bytes */
        {3, {0xed, 0xa0, 0x80}},                   /* a surrogate, U+D800 */
        {3, {0xed, 0xbf, 0xbf}},                   /* a surrogate, U+DFFF */
        {4, {0xf0, 0x80, 0x80, 0xaf}},             /* overlong '/' in four bytes */
        {4, {0xf4, 0x90, 0x80, 0x80}},             /* U+110000, past Unicode */
        {5, {0xf8, 0x88, 0x80, 0x80, 0x80}},       /* the old five-byte form */
        {6, {0xfc, 0x84, 0x80, 0x80, 0x80, 0x80}}, /* the old six-byte form */
        {1, {0xf5}},                               /* a lead byte never used */
        {1, {0xfe}},
        {1, {0xff}},
        {2, {0xe2, 0x82}},       /* a three-byte character cut after two */
        {3, {0xf0, 0x9f, 0x98}}, /* a four-byte character cut after three */
        {1, {0xc3}},             /* a two-byte character cut after one */
    };
    size_t nbad = sizeof(bad) / sizeof(bad[0]);
    buf s = {0}, val = {0};
    size_t i;
    for (i = 0; s.n + 16 <= LIMIT_MAX_FRAME - ENVELOPE; i++) {
        put(&s, "x", 1);
        put(&s, bad[i % nbad].b, bad[i % nbad].len);
    }
    put(&s, "\xf0\x9f", 2); /* the end: a character cut short */
    put_bytes(&val, VALUE_STRING, s.p, s.n);
    free(s.p);
    *count = i + 1;
    return val;
}

static void write_seed(const char *dir, const char *name, buf arg, const char *what, size_t count) {
    char path[4096];
    buf in = submit_echo(&arg);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(in.p, 1, in.n, f) != in.n || fclose(f) != 0) {
        fprintf(stderr, "fuzz-gen-large: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    printf("%s: %zu bytes, %zu %s\n", name, in.n, count, what);
    free(in.p);
    free(arg.p);
}

int main(int argc, char **argv) {
    size_t n = 0;
    buf arg;
    if (argc != 2)
        die("usage: fuzz-gen-large OUT_DIR");
    const char *dir = argv[1];
    /* Each argument is built before its count is read. */
    arg = map_arg(0, &n);
    write_seed(dir, "map_keys", arg, "distinct keys", n);
    arg = map_arg(1, &n);
    write_seed(dir, "map_dup_last", arg, "keys, the last a duplicate", n);
    arg = list_arg(&n);
    write_seed(dir, "list_ints", arg, "ints", n);
    arg = nest_at_limit_arg(&n);
    write_seed(dir, "nest_at_limit", arg, "values nested to the limit", n);
    arg = nest_deepest_arg(&n);
    write_seed(dir, "nest_deepest", arg, "levels", n);
    arg = bad_utf8_arg(&n);
    write_seed(dir, "bad_utf8", arg, "ill-formed sequences", n);
    return 0;
}
