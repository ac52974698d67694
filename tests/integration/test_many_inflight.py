"""1,000 attached tasks in flight on one libaioclient connection
(many_inflight.c), against a daemon of its own."""

import harness

t = harness.Suite(__file__)


@t.test
def thousand_tasks_on_one_connection():
    t.check(t.args.many_inflight, "--many-inflight PATH is required")
    with t.daemon() as d:
        r = harness.run([t.args.many_inflight, d.socket], timeout=60)
        t.eq(r.rc, 0, "many_inflight exit code", r)
        t.contains(r.out, "1000 tasks", "many_inflight's summary", r)
        print("   " + r.out.strip())
        # The connection closed after its tasks ended: nothing left running.
        t.eq(d.ps(), [], "unfinished tasks after the client closed")
        d.assert_alive()


t.main()
