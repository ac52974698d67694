/*
 * Who a uid is: its user's supplementary groups, for the call rules and
 * admin_group. The lookup goes through NSS (getpwuid_r, getgrouplist), which
 * with LDAP or sssd can take seconds, so it never runs on the loop thread:
 * it runs on libuv's thread pool, and its result is cached per uid and gid
 * for LIMIT_IDENTITY_CACHE_SECONDS (a failed lookup, as opposed to a user
 * NSS does not know, is not cached). Connections of a user seen lately are
 * served from the cache at once.
 */
#ifndef AIOD_IDENTITY_H
#define AIOD_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

typedef struct identity_req identity_req;

/* Called on the loop thread with the groups (borrowed for the call; none
 * when the user is unknown to NSS) unless the request was cancelled. */
typedef void (*identity_cb)(void *data, const gid_t *groups, size_t n_groups);

/*
 * The groups of `uid` (primary group `gid`). From the cache: 1, with the
 * callback already called. Else 0: the lookup runs on the thread pool, and
 * *ret (if not NULL) may cancel it. -ENOMEM.
 */
int identity_lookup(uv_loop_t *loop, uid_t uid, gid_t gid, identity_cb cb, void *data,
                    identity_req **ret);

/* The callback will not be called (its data goes away). A lookup all of
 * whose callers cancelled is taken off the pool's queue if it has not
 * started. */
void identity_cancel(identity_req *r);

/* How many lookups went to the thread pool since start: callers asking for
 * the same uid and gid while one is under way share it. */
uint64_t identity_pool_lookups(void);

/* Forgets the cache (reload: group membership may have changed). */
void identity_flush(void);

/* Frees the cache (exit). */
void identity_done(void);

#endif
