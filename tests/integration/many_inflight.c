/*
 * many_inflight: 1,000 attached tasks in flight on one libaioclient
 * connection. Creates demo.sleep(0.5, i) for i in 0..999, then awaits all
 * of them in one call and checks every result is its index and that they
 * ran concurrently (well under 3 s in all, where sequential would be 500 s).
 *
 * Usage: many_inflight SOCKET
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <aioc.h>

#define N 1000

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    static uint64_t ids[N];
    static aioc_outcome *outcomes[N];
    aioc_client *c = NULL;
    int r, failed = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
        return 2;
    }
    r = aioc_connect(argv[1], &c);
    if (r < 0) {
        fprintf(stderr, "aioc_connect(%s): %s\n", argv[1], strerror(-r));
        return 1;
    }

    double start = now();
    for (int i = 0; i < N; i++) {
        aioc_call *call = aioc_call_new("demo.sleep");
        if (!call || aioc_call_arg(call, aioc_value_double(0.5)) < 0 ||
            aioc_call_arg(call, aioc_value_int(i)) < 0) {
            fprintf(stderr, "building call %d failed\n", i);
            return 1;
        }
        r = aioc_create_task(c, call, &ids[i]);
        aioc_call_free(call);
        if (r < 0) {
            fprintf(stderr, "aioc_create_task #%d: %s (%s)\n", i, strerror(-r), aioc_last_error(c));
            return 1;
        }
        for (int j = 0; j < i; j++)
            if (ids[j] == ids[i]) {
                fprintf(stderr, "task #%d got the id %" PRIu64 " of task #%d\n", i, ids[i], j);
                return 1;
            }
    }
    double created = now() - start;

    r = aioc_await(c, ids, N, 30, outcomes);
    if (r < 0) {
        fprintf(stderr, "aioc_await of %d tasks: %s (%s)\n", N, strerror(-r), aioc_last_error(c));
        return 1;
    }
    double elapsed = now() - start;

    for (int i = 0; i < N; i++) {
        const aioc_outcome *o = outcomes[i];
        const aioc_value *v = aioc_outcome_result(o);
        if (aioc_outcome_task_id(o) != ids[i]) {
            fprintf(stderr, "outcome #%d is for task %" PRIu64 ", expected %" PRIu64 "\n", i,
                    aioc_outcome_task_id(o), ids[i]);
            failed++;
        } else if (aioc_outcome_state(o) != AIOC_STATE_DONE) {
            fprintf(stderr, "task #%d ended %s: %s: %s\n", i,
                    aioc_state_name(aioc_outcome_state(o)), aioc_outcome_error_kind(o),
                    aioc_outcome_error_message(o));
            failed++;
        } else if (!v || aioc_value_type(v) != AIOC_TYPE_INT || aioc_value_get_int(v) != i) {
            char *json = v ? aioc_value_to_json(v) : NULL;
            fprintf(stderr, "task #%d returned %s, expected %d\n", i, json ? json : "nothing", i);
            free(json);
            failed++;
        }
        aioc_outcome_free(outcomes[i]);
    }
    aioc_close(c);

    printf("%d tasks: created in %.3f s, all done after %.3f s, %d wrong\n", N, created, elapsed,
           failed);
    if (failed)
        return 1;
    if (elapsed >= 3.0) {
        fprintf(stderr, "took %.3f s: the tasks did not run concurrently\n", elapsed);
        return 1;
    }
    return 0;
}
