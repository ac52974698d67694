/*
 * The cluster's settings as text: the Redis address "redis://HOST:PORT[/DB]"
 * and the list of queue names (pure, no I/O), and the password file. config.c
 * checks the text when it reads the settings, --check-config the password
 * file; the cluster layer reads them again to connect. docs/cluster.md
 * describes them.
 */
#ifndef AIOD_CLUSTER_CFG_H
#define AIOD_CLUSTER_CFG_H

#include <stdbool.h>
#include <stddef.h>

/* Longest queue name, and how many queues one host may work on. */
#define CLUSTER_QUEUE_NAME_MAX 64
#define CLUSTER_QUEUES_MAX 64
/* Longest host name in the cluster (a Redis consumer name). */
#define CLUSTER_HOST_NAME_MAX 64

typedef struct cluster_url {
    char host[256];
    int port;
    int db;
} cluster_url;

/* Parses "redis://HOST:PORT[/DB]" (PORT 1-65535, DB 0-15; HOST a name, an
 * IPv4 address or "[IPv6]"). 0, or -EINVAL with the reason in `why`. */
int cluster_url_parse(const char *text, cluster_url *ret, char *why, size_t why_len);

/* Whether `name` is a valid queue or host name: 1-64 characters of
 * [A-Za-z0-9_.-]. */
bool cluster_name_valid(const char *name);

/*
 * Splits "NAME,NAME ..." (commas and blanks separate) into at most
 * CLUSTER_QUEUES_MAX names, each checked by cluster_name_valid and none
 * twice, copied into `names` (each CLUSTER_QUEUE_NAME_MAX + 1 bytes).
 * `names` may be NULL to only check. The count (0 for an empty list), or
 * -EINVAL with the reason in `why`.
 */
int cluster_queues_parse(const char *text, char (*names)[CLUSTER_QUEUE_NAME_MAX + 1], char *why,
                         size_t why_len);

/* Reads the first line of the password file at `path`, without its line
 * end, into `buf` (len bytes, truncated to fit). 0; -EIO (cannot read it),
 * -EPERM (its group or others may read or write it: mode & 077) or
 * -EINVAL (no first line, or an empty one), with the reason in `why` and
 * `buf` cleared. The caller clears `buf` once done with it. */
int cluster_password_read(const char *path, char *buf, size_t len, char *why, size_t why_len);

#endif
