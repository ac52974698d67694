/*
 * Access policy and per-user limits (policy.h).
 */
#include "system/policy.h"

#include <errno.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "base/aiod_limits.h"

policy_limits policy_lim = {
    .max_connections_per_uid = LIMIT_MAX_CONNECTIONS_PER_UID,
    .max_tasks_per_uid = LIMIT_MAX_TASKS_PER_UID,
    .max_task_bytes_per_uid = LIMIT_MAX_TASK_BYTES_PER_UID,
    .max_result = LIMIT_MAX_RESULT,
};

typedef struct call_rule {
    char *pattern;
    char *who;
    char *origin;
    uid_t *uids;
    size_t n_uids;
    gid_t *gids;
    size_t n_gids;
} call_rule;

/* The rules in force, and the ones being staged by the settings. */
static call_rule *rules, *staged;
static size_t n_rules, n_staged;
static bool have_admin_group, staged_have_admin;
static gid_t admin_gid, staged_admin_gid;
static char admin_name[64], staged_admin_name[64];

static void rule_free(call_rule *r) {
    free(r->pattern);
    free(r->who);
    free(r->origin);
    free(r->uids);
    free(r->gids);
}

static void rules_free(call_rule **v, size_t *n) {
    for (size_t i = 0; i < *n; i++)
        rule_free(&(*v)[i]);
    free(*v);
    *v = NULL;
    *n = 0;
}

void policy_done(void) {
    rules_free(&rules, &n_rules);
    rules_free(&staged, &n_staged);
    have_admin_group = false;
}

void policy_stage_begin(void) {
    rules_free(&staged, &n_staged);
    staged_have_admin = false;
}

void policy_stage_abort(void) {
    rules_free(&staged, &n_staged);
}

void policy_stage_commit(const policy_limits *lim) {
    rules_free(&rules, &n_rules);
    rules = staged;
    n_rules = n_staged;
    staged = NULL;
    n_staged = 0;
    have_admin_group = staged_have_admin;
    admin_gid = staged_admin_gid;
    memcpy(admin_name, staged_admin_name, sizeof(admin_name));
    policy_lim = *lim;
}

int policy_stage_admin_group(const char *name) {
    struct group *g = getgrnam(name);
    if (!g)
        return -ENOENT;
    staged_admin_gid = g->gr_gid;
    snprintf(staged_admin_name, sizeof(staged_admin_name), "%s", name);
    staged_have_admin = true;
    return 0;
}

static int add_id(void **arr, size_t *n, size_t size, const void *id) {
    void *a = alloc_realloc(*arr, (*n + 1) * size);
    if (!a)
        return -ENOMEM;
    memcpy((char *)a + *n * size, id, size);
    *arr = a;
    (*n)++;
    return 0;
}

/* Whether a shell pattern can match a function name, PLUGIN.FUNCTION: it
 * holds a dot, or something that can stand for one, and does not end on a
 * dot (a name does not). "proc" or "proc." would match nothing, and leave
 * the functions they seem to restrict open to everyone. */
static bool can_match_a_function(const char *pattern) {
    size_t n = strlen(pattern);
    return n > 0 && pattern[n - 1] != '.' && strpbrk(pattern, ".*?[");
}

/* Parses one rule into *out (its allocations the caller's to free with
 * rule_free, also on failure). 0; -EINVAL with the reason in `why`;
 * -ENOMEM. */
static int build_rule(const char *rule, const char *origin, call_rule *out, char *why,
                      size_t why_len) {
    call_rule r = {0};
    int ret = -ENOMEM;
    *out = r;
    /* "PATTERN WHO...": the pattern is the first word. */
    char pattern[256];
    size_t plen = strcspn(rule, " \t");
    if (plen >= sizeof(pattern)) {
        snprintf(why, why_len, "the pattern is longer than %zu bytes", sizeof(pattern) - 1);
        return -EINVAL;
    }
    snprintf(pattern, sizeof(pattern), "%.*s", (int)plen, rule);
    const char *who = rule + plen + strspn(rule + plen, " \t");
    if (!can_match_a_function(pattern)) {
        snprintf(why, why_len,
                 "the pattern '%s' matches no function (names are PLUGIN.FUNCTION): write "
                 "'%.*s.*' for every function of a plugin",
                 pattern, (int)strcspn(pattern, "."), pattern);
        return -EINVAL;
    }
    if (!(r.pattern = alloc_strdup(pattern)) || !(r.who = alloc_strdup(who)) ||
        !(r.origin = alloc_strdup(origin ? origin : "settings")))
        goto fail;
    char *copy = alloc_strdup(who), *save = NULL;
    if (!copy)
        goto fail;
    for (char *tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
        if (tok[0] == '@') {
            struct group *g = getgrnam(tok + 1);
            if (!g) {
                snprintf(why, why_len, "unknown group '%s'", tok + 1);
                free(copy);
                ret = -EINVAL;
                goto fail;
            }
            if (add_id((void **)&r.gids, &r.n_gids, sizeof(gid_t), &g->gr_gid) < 0) {
                free(copy);
                goto fail;
            }
            continue;
        }
        char *end;
        errno = 0;
        unsigned long v = strtoul(tok, &end, 10);
        uid_t uid;
        if (*end == '\0' && end != tok) {
            /* (uid_t)-1 is "no user" to the kernel's calls. */
            if (tok[0] == '-' || errno || v >= (uid_t)-1) {
                snprintf(why, why_len, "'%s' is not a user id (0 to %u)", tok,
                         (unsigned)((uid_t)-1 - 1));
                free(copy);
                ret = -EINVAL;
                goto fail;
            }
            uid = (uid_t)v;
        } else {
            struct passwd *pw = getpwnam(tok);
            if (!pw) {
                snprintf(why, why_len, "unknown user '%s'", tok);
                free(copy);
                ret = -EINVAL;
                goto fail;
            }
            uid = pw->pw_uid;
        }
        if (add_id((void **)&r.uids, &r.n_uids, sizeof(uid_t), &uid) < 0) {
            free(copy);
            goto fail;
        }
    }
    free(copy);
    *out = r;
    return 0;
fail:
    *out = r;
    return ret;
}

int policy_stage_call_rule(const char *rule, const char *origin, char *why, size_t why_len) {
    call_rule r;
    int ret = build_rule(rule, origin, &r, why, why_len);
    if (ret < 0) {
        rule_free(&r);
        return ret;
    }
    call_rule *nr = alloc_realloc(staged, (n_staged + 1) * sizeof(*nr));
    if (!nr) {
        rule_free(&r);
        return -ENOMEM;
    }
    staged = nr;
    staged[n_staged++] = r;
    return 0;
}

int policy_check_call_rule(const char *rule, char *why, size_t why_len) {
    call_rule r;
    int ret = build_rule(rule, NULL, &r, why, why_len);
    rule_free(&r);
    return ret;
}

static bool in_group(const peer *p, gid_t g) {
    if (p->gid == g)
        return true;
    for (size_t i = 0; i < p->n_groups; i++)
        if (p->groups[i] == g)
            return true;
    return false;
}

bool policy_is_admin(const peer *p) {
    if (p->uid == 0)
        return true;
    return have_admin_group && in_group(p, admin_gid);
}

bool policy_may_act(const peer *p, uid_t owner) {
    return p->admin || p->uid == owner;
}

int policy_may_call(const peer *c, const char *function, char *why, size_t why_len) {
    for (size_t i = 0; i < n_rules; i++) {
        const call_rule *r = &rules[i];
        if (fnmatch(r->pattern, function, 0) != 0)
            continue;
        if (c->uid == 0)
            return 0;
        for (size_t j = 0; j < r->n_uids; j++)
            if (r->uids[j] == c->uid)
                return 0;
        for (size_t j = 0; j < r->n_gids; j++)
            if (in_group(c, r->gids[j]))
                return 0;
        snprintf(why, why_len, "%s: not allowed for uid %u by the rule '%s = %s' (%s)", function,
                 (unsigned)c->uid, r->pattern, r->who, r->origin);
        return -EPERM;
    }
    return 0;
}

const char *policy_admin_group_name(void) {
    return have_admin_group ? admin_name : NULL;
}

struct caller {
    unsigned refs;
    peer p;
    gid_t groups[];
};

caller *caller_new(const peer *p) {
    caller *c = alloc_malloc(sizeof(*c) + p->n_groups * sizeof(gid_t));
    if (!c)
        return NULL;
    c->refs = 1;
    c->p = *p;
    if (p->n_groups)
        memcpy(c->groups, p->groups, p->n_groups * sizeof(gid_t));
    c->p.groups = c->groups;
    return c;
}

caller *caller_ref(caller *c) {
    if (c)
        c->refs++;
    return c;
}

void caller_unref(caller *c) {
    if (c && --c->refs == 0)
        free(c);
}

const peer *caller_peer(caller *c) {
    c->p.admin = policy_is_admin(&c->p);
    return &c->p;
}
