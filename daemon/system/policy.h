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
 * A call rule: functions matching `pattern` (fnmatch: "demo.*") may be
 * called only by the principals in `who`, separated by blanks or commas:
 * user names, numeric uids, "@group" names. Rules are checked in order; the
 * first whose pattern matches decides; root may always call. `origin` names
 * where the rule came from, for refusal messages. 0, -EINVAL (with why),
 * -ENOMEM.
 */
int policy_stage_call_rule(const char *pattern, const char *who, const char *origin, char *why,
                           size_t why_len);
void policy_stage_commit(uint32_t max_connections_per_uid, uint32_t max_tasks_per_uid,
                         uint32_t max_result);
void policy_stage_abort(void);

/* The admin group's name, or NULL when none is set. */
const char *policy_admin_group_name(void);

/* Whether a peer is an administrator (root or in the admin group). Looks
 * the user's groups up (NSS): call once per connection. */
bool policy_is_admin(uid_t uid, gid_t gid);

/* May this peer act on this task (await, cancel, show, logs)? */
bool policy_may_act(const conn *c, const task *t);

/* May this peer call this function? 0, or -EPERM with the rule named. */
int policy_may_call(const conn *c, const char *function, char *why, size_t why_len);

#endif
