"""`aioctl gather`: concurrency, argument order, failure without and with
--return-exceptions, and 1,000 calls in one request."""

import json

import harness

t = harness.Suite(__file__)


@t.test
def gather_is_concurrent_and_ordered():
    with t.daemon() as d:
        r = d.aioctl("gather", "demo.sleep 3 a", "demo.sleep 2 b", timeout=20)
        t.eq(r.rc, 0, "exit code", r)
        t.eq(r.lines, ['["a","b"]'], "stdout: results in argument order", r)
        t.between(r.elapsed, 2.9, 3.8, "elapsed seconds (3 if concurrent, 5 if not)", r)


@t.test
def gather_failure_fails_at_once():
    with t.daemon() as d:
        r = d.aioctl("gather", "demo.sleep 5 a", "demo.fail KeyError nope", timeout=20)
        t.eq(r.rc, 1, "exit code when a gathered call fails", r)
        t.contains(r.err, "KeyError", "stderr names the failure", r)
        t.check(r.elapsed < 4, "gather fails at once, not after the 5 s sleep", r)


@t.test
def gather_return_exceptions():
    with t.daemon() as d:
        r = d.aioctl("gather", "--return-exceptions", "demo.sleep 1 a",
                     "demo.fail KeyError nope", timeout=20)
        t.eq(r.rc, 0, "exit code with --return-exceptions", r)
        t.check(len(r.lines) >= 1, "some output", r)
        got = json.loads(r.lines[-1])
        t.eq(got, ["a", {"error": "KeyError", "message": "nope"}], "result list", r)
        t.between(r.elapsed, 0.9, 2.5, "elapsed seconds (waits for the sleep)", r)


@t.test
def gather_existing_task():
    # A CALL of digits is the id of an existing task.
    with t.daemon() as d:
        r = d.aioctl("submit", "demo.sleep", "1", "sub")
        t.eq(r.rc, 0, "submit exit code", r)
        tid = r.out.strip()
        r = d.aioctl("gather", tid, "demo.sleep 1 new", timeout=20)
        t.eq(r.rc, 0, "exit code", r)
        t.eq(r.lines, ['["sub","new"]'], "results", r)
        t.check(r.elapsed < 1.8, "the two ran concurrently", r)


@t.test
def gather_1000_calls():
    with t.daemon() as d:
        words = ["demo.sleep 0.5 r%d" % i for i in range(1000)]
        r = d.aioctl("gather", *words, timeout=60)
        t.eq(r.rc, 0, "exit code", r)
        got = json.loads(r.lines[-1])
        t.eq(len(got), 1000, "number of results", "")
        t.eq(got, ["r%d" % i for i in range(1000)], "results in argument order")
        t.check(r.elapsed < 5.0, "1000 x 0.5 s ran concurrently (elapsed %.2f s)" % r.elapsed)


t.main()
