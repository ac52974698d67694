/*
 * The cluster's settings as text (cluster_cfg.h).
 */
#include "system/cluster_cfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Whether p[0..n) is a number written plainly: 1 to `max` digits, no
 * sign, space or leading zero (strtol would take " +021379" for 21379). */
static bool plain_number(const char *p, size_t n, size_t max) {
    if (n == 0 || n > max || (n > 1 && p[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return true;
}

int cluster_url_parse(const char *text, cluster_url *ret, char *why, size_t why_len) {
    static const char scheme[] = "redis://";
    *ret = (cluster_url){.db = 0};
    if (strncmp(text, scheme, sizeof(scheme) - 1) != 0) {
        snprintf(why, why_len, "'%s' does not start with redis://", text);
        return -EINVAL;
    }
    const char *h = text + sizeof(scheme) - 1, *colon;
    size_t hlen;
    if (strchr(h, '@')) {
        snprintf(why, why_len,
                 "'%s': a user or password does not go in the address; put it in "
                 "cluster_password_file",
                 text);
        return -EINVAL;
    }
    if (*h == '[') {
        const char *close = strchr(h, ']');
        if (!close || close[1] != ':') {
            snprintf(why, why_len, "'%s': an IPv6 address is written [ADDRESS]:PORT", text);
            return -EINVAL;
        }
        h++;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strchr(h, ':');
        if (!colon) {
            snprintf(why, why_len, "'%s' names no port (redis://HOST:PORT[/DB])", text);
            return -EINVAL;
        }
        hlen = (size_t)(colon - h);
    }
    if (hlen == 0 || hlen >= sizeof(ret->host) || memchr(h, '/', hlen)) {
        snprintf(why, why_len, "'%s' has no valid host (redis://HOST:PORT[/DB])", text);
        return -EINVAL;
    }
    memcpy(ret->host, h, hlen);
    ret->host[hlen] = '\0';
    char *end = NULL;
    size_t port_len = strcspn(colon + 1, "/");
    long port = plain_number(colon + 1, port_len, 5) ? strtol(colon + 1, &end, 10) : 0;
    if (port < 1 || port > 65535) {
        snprintf(why, why_len, "'%s': the port is not a number from 1 to 65535", text);
        return -EINVAL;
    }
    ret->port = (int)port;
    if (*end == '/') {
        const char *d = end + 1;
        long db = plain_number(d, strlen(d), 2) ? strtol(d, &end, 10) : -1;
        if (db < 0 || db > 15) {
            snprintf(why, why_len, "'%s': the database is not a number from 0 to 15", text);
            return -EINVAL;
        }
        ret->db = (int)db;
    }
    return 0;
}

bool cluster_name_valid(const char *name) {
    size_t n = strlen(name);
    return n >= 1 && n <= CLUSTER_QUEUE_NAME_MAX &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

int cluster_queues_parse(const char *text, char (*names)[CLUSTER_QUEUE_NAME_MAX + 1], char *why,
                         size_t why_len) {
    static const char seps[] = ", \t";
    char seen[CLUSTER_QUEUES_MAX][CLUSTER_QUEUE_NAME_MAX + 1];
    int n = 0;
    for (const char *p = text + strspn(text, seps); *p; p += strspn(p, seps)) {
        size_t len = strcspn(p, seps);
        char name[CLUSTER_QUEUE_NAME_MAX + 2];
        snprintf(name, sizeof(name), "%.*s", (int)(len < sizeof(name) - 1 ? len : sizeof(name) - 1),
                 p);
        if (len > CLUSTER_QUEUE_NAME_MAX || !cluster_name_valid(name)) {
            snprintf(why, why_len,
                     "queue '%.*s' is not a name of 1 to 64 letters, digits, '_', '.' or '-'",
                     (int)(len < 80 ? len : 80), p);
            return -EINVAL;
        }
        for (int i = 0; i < n; i++)
            if (strcmp(seen[i], name) == 0) {
                snprintf(why, why_len, "queue '%s' is named twice", name);
                return -EINVAL;
            }
        if (n == CLUSTER_QUEUES_MAX) {
            snprintf(why, why_len, "more than %d queues", CLUSTER_QUEUES_MAX);
            return -EINVAL;
        }
        memcpy(seen[n], name, len + 1);
        if (names)
            memcpy(names[n], name, len + 1);
        n++;
        p += len;
    }
    return n;
}

/* After a line that filled the buffer: whether the line ends there (its
 * line end, or the end of the file, comes next). */
static bool line_ends_next(FILE *f) {
    int c = fgetc(f);
    if (c == '\r')
        c = fgetc(f);
    return c == EOF || c == '\n';
}

static bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

static bool blank_at_an_end(const char *s) {
    size_t n = strlen(s);
    return n && (is_blank(s[0]) || is_blank(s[n - 1]));
}

int cluster_password_read(const char *path, char *buf, size_t len, char *why, size_t why_len) {
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(why, why_len, "cannot read cluster_password_file %s: %s", path, strerror(errno));
        return -EIO;
    }
    /* The password opens all of the cluster's Redis: a file the socket's
     * users (the group) or anyone else may read gives it to them. */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077)) {
        fclose(f);
        snprintf(why, why_len,
                 "cluster_password_file %s may be read or written by its group or others (mode "
                 "%04o): make it readable by the daemon's user alone (chmod 0400, owner aiod)",
                 path, (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    bool ok = fgets(buf, (int)len, f) != NULL;
    /* A line that filled the buffer without its line end goes on: cut
     * there, it was sent as a wrong password, and --check-config passed. */
    bool cut = ok && !strchr(buf, '\n') && strlen(buf) == len - 1 && !line_ends_next(f);
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (ok)
        buf[strcspn(buf, "\r\n")] = '\0';
    if (err) {
        explicit_bzero(buf, len);
        snprintf(why, why_len, "cannot read cluster_password_file %s: %s", path, strerror(err));
        return -EIO;
    }
    if (!ok || !*buf)
        snprintf(why, why_len, "cluster_password_file %s is empty", path);
    else if (cut)
        snprintf(why, why_len, "cluster_password_file %s has a first line longer than %zu bytes",
                 path, len - 1);
    else if (blank_at_an_end(buf))
        snprintf(why, why_len,
                 "cluster_password_file %s has a blank (space or tab) at the start or end of its "
                 "first line: \"PASSWORD \" would be sent as user PASSWORD with an empty "
                 "password. Write PASSWORD or USER PASSWORD (the first space separates them; a "
                 "requirepass with blanks inside is written \"default PASS WORD\")",
                 path);
    else
        return 0;
    explicit_bzero(buf, len);
    return -EINVAL;
}
