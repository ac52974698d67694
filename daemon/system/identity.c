/*
 * NSS lookups off the loop thread, cached (identity.h).
 */
#include "system/identity.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "base/hashmap.h"
#include "base/list.h"

typedef struct entry {
    gid_t gid;
    uint64_t expires_ms;
    size_t n;
    gid_t groups[];
} entry;

struct identity_req {
    uv_work_t work;
    uid_t uid;
    gid_t gid;
    identity_cb cb;
    void *data;
    bool cancelled;
    /* Filled on the pool thread. */
    gid_t *groups;
    size_t n;
};

/* uid -> entry. */
static hashmap *cache;

static void entry_drop(uid_t uid) {
    free(hashmap_remove_u64(cache, uid));
}

/* On a pool thread: only reentrant calls, and nothing shared. */
static void lookup(uv_work_t *w) {
    identity_req *r = container_of(w, identity_req, work);
    long bufsize = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t len = bufsize > 0 ? (size_t)bufsize : 16384;
    struct passwd pw, *found = NULL;
    char *buf = NULL;
    for (int tries = 0; tries < 4; tries++, len *= 4) {
        free(buf);
        buf = malloc(len);
        if (!buf)
            return;
        int e = getpwuid_r(r->uid, &pw, buf, len, &found);
        if (e != ERANGE)
            break;
    }
    if (!found) {
        free(buf);
        return;
    }
    int n = LIMIT_IDENTITY_GROUPS;
    for (int tries = 0; tries < 2; tries++) {
        gid_t *g = malloc((size_t)n * sizeof(*g));
        if (!g)
            break;
        int want = n;
        if (getgrouplist(pw.pw_name, r->gid, g, &want) >= 0) {
            r->groups = g;
            r->n = (size_t)want;
            break;
        }
        free(g);
        n = want;
    }
    free(buf);
}

static uint64_t now_ms(void) {
    return uv_hrtime() / 1000000u;
}

static void remember(uid_t uid, gid_t gid, const gid_t *groups, size_t n) {
    if (!cache && !(cache = hashmap_new(0)))
        return;
    entry *e = alloc_malloc(sizeof(*e) + n * sizeof(gid_t));
    if (!e)
        return;
    e->gid = gid;
    e->n = n;
    e->expires_ms = now_ms() + LIMIT_IDENTITY_CACHE_SECONDS * 1000u;
    if (n)
        memcpy(e->groups, groups, n * sizeof(gid_t));
    entry_drop(uid);
    if (hashmap_put_u64(cache, uid, e) < 0)
        free(e);
}

static void looked_up(uv_work_t *w, int status) {
    identity_req *r = container_of(w, identity_req, work);
    (void)status;
    remember(r->uid, r->gid, r->groups, r->n);
    if (!r->cancelled)
        r->cb(r->data, r->groups, r->n);
    free(r->groups);
    free(r);
}

int identity_lookup(uv_loop_t *loop, uid_t uid, gid_t gid, identity_cb cb, void *data,
                    identity_req **ret) {
    if (ret)
        *ret = NULL;
    entry *e = cache ? hashmap_get_u64(cache, uid) : NULL;
    if (e && e->gid == gid && e->expires_ms > now_ms()) {
        cb(data, e->groups, e->n);
        return 1;
    }
    identity_req *r = alloc_calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->uid = uid;
    r->gid = gid;
    r->cb = cb;
    r->data = data;
    int q = uv_queue_work(loop, &r->work, lookup, looked_up);
    if (q < 0) {
        free(r);
        return q;
    }
    if (ret)
        *ret = r;
    return 0;
}

void identity_cancel(identity_req *r) {
    if (r)
        r->cancelled = true;
}

void identity_flush(void) {
    size_t st = 0;
    void *cur = NULL;
    entry *e;
    while (cache && (e = hashmap_next(cache, &st, &cur)))
        free(e);
    hashmap_free(cache);
    cache = NULL;
}

void identity_done(void) {
    identity_flush();
}
