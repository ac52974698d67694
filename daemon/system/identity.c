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

/*
 * One lookup on the pool, for every caller that asked for the same uid and
 * gid meanwhile: a burst of connections of one user (or of one user
 * connecting and closing in a loop while NSS hangs) costs one pool thread,
 * not one each; the pool also serves to_thread and the decoding of big
 * requests.
 */
typedef struct job {
    uv_work_t work;
    uid_t uid;
    gid_t gid;
    list waiters;
    size_t n_waiting; /* not cancelled */
    /* Filled on the pool thread. */
    gid_t *groups;
    size_t n;
    /* NSS failed (not "no such user"): the answer is not cached. */
    bool failed;
} job;

struct identity_req {
    list node;
    job *job;
    identity_cb cb;
    void *data;
    bool cancelled;
};

/* uid -> entry. */
static hashmap *cache;
/* uid -> the job under way for it. */
static hashmap *pending;
static uint64_t n_jobs;

static void entry_drop(uid_t uid) {
    free(hashmap_remove_u64(cache, uid));
}

/* On a pool thread: only reentrant calls, and nothing shared. */
static void lookup(uv_work_t *w) {
    job *j = container_of(w, job, work);
    long bufsize = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t len = bufsize > 0 ? (size_t)bufsize : 16384;
    struct passwd pw, *found = NULL;
    char *buf = NULL;
    int e = 0;
    for (int tries = 0; tries < 4; tries++, len *= 4) {
        free(buf);
        buf = malloc(len);
        if (!buf) {
            j->failed = true;
            return;
        }
        e = getpwuid_r(j->uid, &pw, buf, len, &found);
        if (e != ERANGE)
            break;
    }
    if (!found) {
        /* No entry is an answer (no groups); an error is not. */
        j->failed = e != 0 && e != ENOENT && e != ESRCH && e != EBADF && e != EPERM;
        free(buf);
        return;
    }
    int n = LIMIT_IDENTITY_GROUPS;
    j->failed = true;
    for (int tries = 0; tries < 2; tries++) {
        gid_t *g = malloc((size_t)n * sizeof(*g));
        if (!g)
            break;
        int want = n;
        if (getgrouplist(pw.pw_name, j->gid, g, &want) >= 0) {
            j->groups = g;
            j->n = (size_t)want;
            j->failed = false;
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
    job *j = container_of(w, job, work);
    if (pending && hashmap_get_u64(pending, j->uid) == j)
        hashmap_remove_u64(pending, j->uid);
    /* Cancelled before it ran (every caller went): nothing was looked up. */
    if (status == 0 && !j->failed)
        remember(j->uid, j->gid, j->groups, j->n);
    while (!list_empty(&j->waiters)) {
        identity_req *r = container_of(list_first(&j->waiters), identity_req, node);
        list_remove(&r->node);
        if (!r->cancelled)
            r->cb(r->data, j->groups, j->n);
        free(r);
    }
    free(j->groups);
    free(j);
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
    if (!pending && !(pending = hashmap_new(0)))
        return -ENOMEM;
    identity_req *r = alloc_calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->cb = cb;
    r->data = data;
    job *j = hashmap_get_u64(pending, uid);
    if (!j || j->gid != gid) {
        j = alloc_calloc(1, sizeof(*j));
        if (!j) {
            free(r);
            return -ENOMEM;
        }
        j->uid = uid;
        j->gid = gid;
        list_init(&j->waiters);
        int q = uv_queue_work(loop, &j->work, lookup, looked_up);
        if (q < 0) {
            free(j);
            free(r);
            return q;
        }
        n_jobs++;
        /* Shared from now on, unless one for another gid holds the uid;
         * unindexed (out of memory) it still runs and answers its own. */
        if (!hashmap_get_u64(pending, uid))
            (void)hashmap_put_u64(pending, uid, j);
    }
    r->job = j;
    list_insert_tail(&j->waiters, &r->node);
    j->n_waiting++;
    if (ret)
        *ret = r;
    return 0;
}

void identity_cancel(identity_req *r) {
    if (!r || r->cancelled)
        return;
    r->cancelled = true;
    /* Nobody waits any more: give the pool thread back if it has not
     * started (looked_up then runs with UV_ECANCELED). */
    if (--r->job->n_waiting == 0)
        uv_cancel((uv_req_t *)&r->job->work);
}

uint64_t identity_pool_lookups(void) {
    return n_jobs;
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
    /* Jobs still under way free themselves in looked_up, run by the loop's
     * last turns; only the index goes. */
    hashmap_free(pending);
    pending = NULL;
}
