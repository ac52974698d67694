/*
 * system/cluster_cfg: the Redis address and the queue list as the settings
 * give them, accepted and refused with a reason that names what is wrong;
 * and the whole settings file through config_parse (the cluster keys, their
 * bounds, and that a reload keeps the cluster of the start); the password
 * file's first line, taken whole or refused with the reason.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "system/cluster_cfg.h"
#include "system/config.h"

static void url_ok(const char *text, const char *host, int port, int db) {
    cluster_url u;
    char why[256] = "";
    assert_int_equal(cluster_url_parse(text, &u, why, sizeof(why)), 0);
    assert_string_equal(u.host, host);
    assert_int_equal(u.port, port);
    assert_int_equal(u.db, db);
}

static void url_bad(const char *text, const char *reason) {
    cluster_url u;
    char why[256] = "";
    assert_int_equal(cluster_url_parse(text, &u, why, sizeof(why)), -EINVAL);
    if (!strstr(why, reason))
        fail_msg("'%s': '%s' does not say '%s'", text, why, reason);
}

static void test_urls(void **state) {
    (void)state;
    url_ok("redis://127.0.0.1:6379", "127.0.0.1", 6379, 0);
    url_ok("redis://redis.example:1/15", "redis.example", 1, 15);
    url_ok("redis://[::1]:6380/2", "::1", 6380, 2);
    url_bad("http://127.0.0.1:6379", "redis://");
    url_bad("redis://127.0.0.1", "no port");
    url_bad("redis://:6379", "no valid host");
    url_bad("redis://user:pw@host:6379", "cluster_password_file");
    url_bad("redis://h:0", "port");
    url_bad("redis://h:65536", "port");
    url_bad("redis://h:6379x", "port");
    url_bad("redis://h:6379/16", "database");
    url_bad("redis://h:6379/", "database");
    url_bad("redis://[::1:6379", "IPv6");
    /* strtol's leniency: a blank, a sign or a leading zero is no plain
     * number (aiod.conf(5): the parser is strict). */
    url_bad("redis://h: 6379", "port");
    url_bad("redis://h:+6379", "port");
    url_bad("redis://h:06379", "port");
    url_bad("redis://h:6379/00", "database");
    url_bad("redis://h:6379/+1", "database");
    url_bad("redis://h:6379/ 1", "database");
    url_ok("redis://h:6379/0", "h", 6379, 0);
}

static void test_queues(void **state) {
    (void)state;
    char names[CLUSTER_QUEUES_MAX][CLUSTER_QUEUE_NAME_MAX + 1];
    char why[256];
    assert_int_equal(cluster_queues_parse("", names, why, sizeof(why)), 0);
    assert_int_equal(cluster_queues_parse("a, b.c\tq_1-x", names, why, sizeof(why)), 3);
    assert_string_equal(names[0], "a");
    assert_string_equal(names[1], "b.c");
    assert_string_equal(names[2], "q_1-x");
    assert_int_equal(cluster_queues_parse("a,a", names, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "twice"));
    assert_int_equal(cluster_queues_parse("ok,b@d", names, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "'b@d'"));
    char long_name[80];
    memset(long_name, 'x', 65);
    long_name[65] = '\0';
    assert_int_equal(cluster_queues_parse(long_name, NULL, why, sizeof(why)), -EINVAL);
    char many[CLUSTER_QUEUES_MAX * 4 + 8] = "";
    for (int i = 0; i <= CLUSTER_QUEUES_MAX; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "q%d,", i);
    assert_int_equal(cluster_queues_parse(many, NULL, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "more than"));
    assert_true(cluster_name_valid("host-1.example"));
    assert_false(cluster_name_valid(""));
    assert_false(cluster_name_valid("a b"));
}

static int parse(const char *text, char *err, size_t len) {
    config_defaults();
    config c = cfg;
    int r = config_parse(&c, "test.conf", text, strlen(text), err, len);
    /* Only cluster keys are parsed here: their strings are all it owns. */
    free(c.cluster);
    free(c.cluster_queues);
    free(c.cluster_host);
    free(c.cluster_password_file);
    return r;
}

/* The most queues of the longest names, as aiod.conf(5) allows, fit on
 * the one line a key may have (a key is not repeated): 64 names of 64
 * characters did not, past 4,095 bytes. */
static void test_most_queues_fit_a_line(void **state) {
    (void)state;
    char text[CLUSTER_QUEUES_MAX * (CLUSTER_QUEUE_NAME_MAX + 2) + 64], err[512] = "";
    size_t n = (size_t)snprintf(text, sizeof(text), "cluster_queues = ");
    for (int i = 0; i < CLUSTER_QUEUES_MAX; i++) {
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%02d", i ? ", " : "", i);
        memset(text + n, 'q', CLUSTER_QUEUE_NAME_MAX - 2);
        n += CLUSTER_QUEUE_NAME_MAX - 2;
    }
    snprintf(text + n, sizeof(text) - n, "\n");
    config_defaults();
    config c = cfg;
    int r = config_parse(&c, "test.conf", text, strlen(text), err, sizeof(err));
    if (r != 0)
        fail_msg("64 queues of 64 characters refused: %s", err);
    char names[CLUSTER_QUEUES_MAX][CLUSTER_QUEUE_NAME_MAX + 1];
    assert_int_equal(cluster_queues_parse(c.cluster_queues, names, err, sizeof(err)),
                     CLUSTER_QUEUES_MAX);
    free(c.cluster_queues);
}

static void test_settings(void **state) {
    (void)state;
    char err[512] = "";
    assert_int_equal(parse("cluster = redis://10.0.0.5:6379/1\n"
                           "cluster_queues = builds, tests\n"
                           "cluster_host = build-2\n"
                           "cluster_capacity = 8\n"
                           "cluster_visibility_ms = 300\n"
                           "cluster_replicas = 1\n"
                           "cluster_retain_seconds = 60\n"
                           "cluster_password_file = /etc/aiod/redis.pass\n",
                           err, sizeof(err)),
                     0);
    struct {
        const char *line, *says;
    } bad[] = {
        {"cluster = 10.0.0.5:6379\n", "redis://"},
        {"cluster_queues = a,,b c d@\n", "d@"},
        {"cluster_host = two words\n", "cluster_host"},
        {"cluster_capacity = 0\n", "cluster_capacity"},
        {"cluster_visibility_ms = 299\n", "cluster_visibility_ms"},
        {"cluster_replicas = 17\n", "cluster_replicas"},
        {"cluster_retain_seconds = 0\n", "cluster_retain_seconds"},
        {"cluster_password_file = redis.pass\n", "absolute"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_not_equal(parse(bad[i].line, err, sizeof(err)), 0);
        if (!strstr(err, bad[i].says))
            fail_msg("'%s' refused with '%s', which does not say '%s'", bad[i].line, err,
                     bad[i].says);
    }
}

/* Writes `text` to a fresh mode-0600 file; its path in `path`. */
static void password_file(char *path, size_t len, const char *text) {
    snprintf(path, len, "/tmp/aiod-test-pw-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static int read_pw(const char *text, char *buf, size_t len, char *why, size_t why_len) {
    char path[64];
    password_file(path, sizeof(path), text);
    int r = cluster_password_read(path, buf, len, why, why_len);
    unlink(path);
    return r;
}

static void test_password_file(void **state) {
    (void)state;
    char buf[1024], why[600];
    assert_int_equal(read_pw("secret\n", buf, sizeof(buf), why, sizeof(why)), 0);
    assert_string_equal(buf, "secret");
    /* A requirepass with blanks inside is given as the default user's. */
    assert_int_equal(read_pw("default pass word\r\nrest\n", buf, sizeof(buf), why, sizeof(why)), 0);
    assert_string_equal(buf, "default pass word");
    /* A line that fills the buffer exactly, line end and all, is whole. */
    char line[1100];
    memset(line, 'x', 1023);
    strcpy(line + 1023, "\n");
    assert_int_equal(read_pw(line, buf, sizeof(buf), why, sizeof(why)), 0);
    assert_int_equal(strlen(buf), 1023);
    struct {
        const char *text, *says;
    } bad[] = {
        /* Truncated to 1,023 bytes, it was sent as a wrong password. */
        {NULL, "longer than 1023 bytes"},
        /* "PASSWORD " was sent as user PASSWORD with an empty password. */
        {"secret \n", "blank"},
        {"aiod secret\t\n", "blank"},
        {" secret\n", "blank"},
        {"\n", "empty"},
    };
    memset(line, 'x', 1024);
    strcpy(line + 1024, "\n");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        assert_int_equal(
            read_pw(bad[i].text ? bad[i].text : line, buf, sizeof(buf), why, sizeof(why)), -EINVAL);
        if (!strstr(why, bad[i].says))
            fail_msg("case %zu refused with '%s', which does not say '%s'", i, why, bad[i].says);
        assert_int_equal(buf[0], '\0');
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_queues),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_password_file),
        cmocka_unit_test(test_most_queues_fit_a_line),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    config_done();
    return r;
}
