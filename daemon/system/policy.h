/*
 * Who may do what. Identity comes from SO_PEERCRED on every connection.
 * A user sees, awaits, follows and cancels only its own tasks; root and
 * members of the admin group may act on all. Which users or groups may call
 * which functions is a list of rules (default: everything to everyone who
 * can open the socket). Also the per-user limits on connections and tasks.
 */
#ifndef AIOD_POLICY_H
#define AIOD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/forward.h"

typedef struct policy_limits {
    uint32_t max_connections_per_uid;
    uint32_t max_tasks_per_uid;
    /* Bytes the unfinished tasks of one user may hold in arguments. */
    size_t max_task_bytes_per_uid;
    uint32_t max_result;
} policy_limits;

extern policy_limits policy_lim;

/* Frees the rules (at exit). */
void policy_done(void);

/*
 * Settings arrive as a whole (start-up, reload): begin, stage the admin
 * group and the call rules, then commit (which replaces everything at once,
 * with the limits) or abort (which changes nothing).
 */
void policy_stage_begin(void);
/* Members of this group (by name) may act on every task. 0, -ENOENT. */
int policy_stage_admin_group(const char *name);
/*
 * Checks one `call` setting, "PATTERN WHO...", as the settings parser reads
 * it, so that its error can name the file and line: the pattern can match a
 * function name, every user and @group exists, every uid fits. Nothing is
 * staged. 0; -EINVAL (the reason in `why`); -ENOMEM.
 */
int policy_check_call_rule(const char *rule, char *why, size_t why_len);

/*
 * A call rule, "PATTERN WHO...": functions matching PATTERN (fnmatch:
 * "demo.*") may be called only by the principals in WHO, separated by
 * blanks or commas: user names, numeric uids, "@group" names. Rules are
 * checked in order; the first whose pattern matches decides; root may
 * always call. `origin` names where the rule came from, for refusal
 * messages. 0, -EINVAL (with why), -ENOMEM.
 */
int policy_stage_call_rule(const char *rule, const char *origin, char *why, size_t why_len);
void policy_stage_commit(const policy_limits *lim);
void policy_stage_abort(void);

/* The admin group's name, or NULL when none is set. */
const char *policy_admin_group_name(void);

/* A connected user, as the policy sees it: the peer's credentials and its
 * user's groups (looked up off the loop thread, identity.h). */
typedef struct peer {
    uid_t uid;
    gid_t gid;
    pid_t pid;
    /* The user's supplementary groups; owned by whoever holds the peer. */
    gid_t *groups;
    size_t n_groups;
    /* Root, or a member of admin_group: may act on every task. */
    bool admin;
} peer;

/* Whether the peer is root or in admin_group (by its gid or groups). */
bool policy_is_admin(const peer *p);

/* Whether the peer may await, cancel, show or follow a task of `owner`. */
bool policy_may_act(const peer *p, uid_t owner);

/* 0 if the call rules let the peer call `function`, else -EPERM with the
 * reason (naming the rule) in `why`. */
int policy_may_call(const peer *p, const char *function, char *why, size_t why_len);

/*
 * A caller's identity as the tasks it made keep it (uid, gid, groups as
 * looked up at its connect), so that the call rules also apply to what
 * those tasks call in turn (api->spawn). Reference counted, loop thread
 * only. caller_new copies p (its groups too): NULL when out of memory.
 * caller_unref accepts NULL.
 */
caller *caller_new(const peer *p);
caller *caller_ref(caller *c);
void caller_unref(caller *c);
/* The identity (admin as of now: admin_group may have changed since). */
const peer *caller_peer(caller *c);

#endif
