/*
 * What every part of the cluster shares: the settings as read at start,
 * this host's name, the connection for commands and scripts, and the
 * subscription to the cluster's events (link_events_channel). cluster.c makes
 * it and hands the events on.
 */
#ifndef AIOD_CLUSTER_LINK_H
#define AIOD_CLUSTER_LINK_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "cluster/redis.h"
#include "system/cluster_cfg.h"

typedef struct link_hooks {
    /* The command connection is up (again). */
    void (*up)(void);
    /* The subscription is in place (again): events sent while it was not
     * may have been missed. */
    void (*subscribed)(void);
    /* An event: "done" (a task someone awaits ended) or "cancel" (a
     * running task is to be cancelled), and the task's id. */
    void (*event)(const char *kind, uint64_t id);
} link_hooks;

/*
 * Reads the cluster settings (cfg) and the password file, and starts both
 * connections. 0; -EINVAL, -EIO with the reason logged (bad settings, an
 * unreadable password file); -ENOMEM. `hooks` is borrowed for the life of
 * the link.
 */
int link_start(uv_loop_t *loop, const link_hooks *hooks);
/* Closes the connections. */
void link_stop(void);
/* Between link_start and link_stop: this host is part of a cluster. */
bool link_started(void);

uv_loop_t *link_loop(void);
const cluster_url *link_url(void);
/* The password ("PASSWORD" or "USER PASSWORD"), or NULL. */
const char *link_password(void);
/* The channel of the cluster's events: "aiod:ev" for database 0,
 * "aiod:ev:DB" for another (pub/sub ignores the database). */
const char *link_events_channel(void);
/* This host's name in the cluster (cluster_host, else the hostname). */
const char *link_host(void);
/* The command connection, and whether it is up. */
rconn *link_cmd(void);
/* The connection for submits and the WAIT after them: one of their own
 * with cluster_replicas (WAIT blocks its connection), else the command
 * connection. */
rconn *link_submits(void);
bool link_up(void);
/* Why the cluster is unreachable, as a whole message for a client. */
void link_unreachable(char *buf, size_t len);

/* The keys of a task: its hash "aiod:t:ID" and output "aiod:o:ID". */
void link_task_key(char *buf, size_t len, uint64_t id);
void link_output_key(char *buf, size_t len, uint64_t id);

/*
 * Runs one of lua.h's scripts with `n_keys` keys then the other
 * arguments (`args`/`lens` borrowed; `lens` NULL: all are text), and the
 * events channel as the last argument (lua.h). As
 * rconn_send: 0, -ENOTCONN, -ENOMEM.
 */
int link_eval(const char *script, int n_keys, int n_args, const char **args, const size_t *lens,
              rconn_cb cb, void *priv);
/* As link_eval, on the connection `rc` (link_submits()). */
int link_eval_on(rconn *rc, const char *script, int n_keys, int n_args, const char **args,
                 const size_t *lens, rconn_cb cb, void *priv);

/* Wall-clock microseconds since the epoch. */
uint64_t link_now_usec(void);

#endif
