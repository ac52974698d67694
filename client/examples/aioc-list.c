/*
 * aioc-list: listing tasks page by page with libaioclient's paged listing
 * (aioc_list_query, aioc_list_page), the way `aioctl ps` does it, with each
 * page's size and ids shown.
 *
 *   aioc-list-example [-s SOCKET] [-n PAGE] [-a] [-S STATE]... [-f FUNCTION]...
 *                     [-u UID]...
 *
 * -n asks for at most PAGE tasks per page (default 0: the daemon's page
 * size), -a adds finished tasks the daemon still keeps, -S a state (1
 * pending ... 5 cancelled, as AIOC_STATE_*), -f a function ("plugin.fn",
 * or "plugin." for every function of a plugin), -u an owner's uid. It
 * prints one line per page, "page N: K tasks: ID ID ...", then "total: T
 * tasks in P pages". Each page is freed before the next is asked for, so
 * memory stays bounded however many tasks there are. Exit status 0, 2 for
 * bad arguments (as the library judges them too), 3 when the daemon cannot
 * be reached, 1 for any other error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <aioc.h>

static int usage(const char *why) {
    fprintf(stderr, "aioc-list-example: %s\n", why);
    return 2;
}

int main(int argc, char **argv) {
    const char *socket_path = NULL;
    aioc_list_query *q = NULL;
    aioc_client *c = NULL;
    size_t page_size = 0;
    unsigned flags = 0;
    int opt, r;

    /* The flags go into aioc_list_query_new: read them first. */
    while ((opt = getopt(argc, argv, "s:n:aS:f:u:")) != -1) {
        if (opt == 's')
            socket_path = optarg;
        else if (opt == 'n')
            page_size = (size_t)strtoull(optarg, NULL, 10);
        else if (opt == 'a')
            flags |= AIOC_LIST_ALL;
        else if (opt == '?')
            return usage("unknown option");
    }
    r = aioc_list_query_new(flags, &q);
    if (r < 0)
        return usage(strerror(-r));
    optind = 1;
    while ((opt = getopt(argc, argv, "s:n:aS:f:u:")) != -1) {
        r = 0;
        if (opt == 'S')
            r = aioc_list_query_add_state(q, atoi(optarg));
        else if (opt == 'f')
            r = aioc_list_query_add_function(q, optarg);
        else if (opt == 'u')
            r = aioc_list_query_add_owner(q, (uint32_t)strtoul(optarg, NULL, 10));
        if (r < 0) {
            fprintf(stderr, "aioc-list-example: -%c %s: %s\n", opt, optarg, strerror(-r));
            aioc_list_query_free(q);
            return 2;
        }
    }

    r = aioc_connect(socket_path, &c);
    if (r < 0) {
        fprintf(stderr, "aioc-list-example: cannot connect: %s\n", strerror(-r));
        aioc_list_query_free(q);
        return 3;
    }
    uint64_t cursor = 0, total = 0, pages = 0;
    int more;
    do {
        aioc_task_info **tasks;
        size_t n;
        more = aioc_list_page(c, q, &cursor, page_size, &tasks, &n);
        if (more < 0)
            break;
        pages++;
        total += n;
        printf("page %" PRIu64 ": %zu tasks:", pages, n);
        for (size_t i = 0; i < n; i++)
            printf(" %" PRIu64, aioc_task_info_id(tasks[i]));
        printf("\n");
        aioc_task_info_array_free(tasks, n);
    } while (more);
    if (more < 0) {
        const char *msg = aioc_last_error(c);
        fprintf(stderr, "aioc-list-example: %s\n", *msg ? msg : strerror(-more));
    } else {
        printf("total: %" PRIu64 " tasks in %" PRIu64 " pages\n", total, pages);
    }
    aioc_close(c);
    aioc_list_query_free(q);
    return more < 0 ? (more == -EINVAL ? 2 : 1) : 0;
}
