"""The stall detector: a loop held longer than stall_warning_ms is reported
while it is still held, naming the task that holds it, from a thread of its
own; when the loop runs again the whole length is logged. An idle loop (one
waiting for events) is never a stall, and --stall-warning-ms 0 turns the
detector off."""

import re

import harness

t = harness.Suite(__file__)

HELD = "event loop held for"


def blocker(d_args=()):
    return t.daemon(plugin_dir=harness.test_plugin_dir(t, "blocker"), extra_args=list(d_args))


@t.test
def task_that_never_yields():
    with blocker() as d:
        # blocker.block busy-waits 3 s without ever suspending.
        run = d.aioctl_bg("run", "blocker.block", "3")
        try:
            line = d.wait_log(HELD, 30)
            # Seen while still held: the client has had no reply yet.
            t.check(run.proc.poll() is None,
                    "the stall was reported only after the task ended: %r" % line)
            m = re.search(r"held for (\d+) ms by task (\d+) \(blocker\.block\)", line)
            t.check(m is not None, "the stall line names the task and its function: %r" % line)
            t.between(int(m.group(1)), 1000, 3000, "milliseconds held when reported")
            task_id = int(m.group(2))
            r = run.wait(60)
        finally:
            run.kill()
        t.eq((r.rc, r.lines), (0, ["3.0"]), "the blocking task's own result", r)
        t.eq(d.task(task_id)["function"], "blocker.block", "the task named in the stall line")
        # Once the loop runs again, the main thread logs the whole length.
        end = d.wait_log("in all by task %d (blocker.block)" % task_id, 10)
        total = int(re.search(r"held for (\d+) ms in all", end).group(1))
        t.between(total, 2900, 60000, "the whole stall in milliseconds")
        t.eq(d.log().count("by task %d (blocker.block) (stall_warning_ms" % task_id), 1,
             "times the stall was reported while held")


@t.test
def idle_loop_is_no_stall():
    # A low threshold: the loop waits 1.5 s for a sleeping task's timer,
    # then for the client; none of that is a stall.
    with blocker(["--stall-warning-ms", "200"]) as d:
        r = d.aioctl("run", "blocker.hold", "1.5")
        t.eq(r.rc, 0, "a task that suspends", r)
        t.check(HELD not in d.log(), "an idle loop reported as stalled:\n%s" % d.log())
        # The low threshold is in force: a short block is reported.
        r = d.aioctl("run", "blocker.block", "0.6")
        t.eq(r.rc, 0, "a short block", r)
        d.wait_log("(stall_warning_ms is 200)", 10)


@t.test
def each_stall_names_the_function_that_holds_the_loop():
    # The detector copies a function's name once and reuses the copy while
    # the steps that follow name the same function: a step of another one
    # must be named anew, each time.
    with blocker(["--stall-warning-ms", "200"]) as d:
        for i in range(2):
            r = d.aioctl("run", "blocker.hold", "0.05")
            t.eq(r.rc, 0, "a task of another function first, round %d" % (i + 1), r)
            r = d.aioctl("run", "blocker.block", "0.6")
            t.eq(r.rc, 0, "a short block, round %d" % (i + 1), r)
            d.wait_log_count("(stall_warning_ms is 200)", i + 1, 10)
        lines = [l for l in d.log().splitlines() if "(stall_warning_ms is 200)" in l]
        t.eq(len(lines), 2, "stalls reported", d.log())
        for line in lines:
            t.check("(blocker.block) (stall_warning_ms" in line,
                    "the stall line names blocker.block: %r" % line)


@t.test
def short_stalls_over_a_low_threshold():
    # A stall only a little longer than the threshold is reported too: the
    # detector must look more often than every 100 ms when the threshold
    # is low (it looked every 100 ms, and missed such a stall whenever no
    # look fell between its 40th and its 120th millisecond).
    holds = 8
    with blocker(["--stall-warning-ms", "40"]) as d:
        for i in range(holds):
            r = d.aioctl("run", "blocker.block", "0.12")
            t.eq(r.rc, 0, "block %d of 0.12 s" % (i + 1), r)
            # Each ends the busy period it was reported in; the next run
            # is a new one.
            seen = d.wait_log_count("(stall_warning_ms is 40)", i + 1, 5)
            t.eq(seen, i + 1, "stalls of 120 ms reported over a 40 ms threshold, "
                 "after %d of them" % (i + 1), d.log())


def echo_of_a_big_list(request_id, n):
    """ClientMessage{submit{call{demo.echo, [a list of n ints]}}}: attached."""
    items = b"".join(harness.field_bytes(1, harness.field_varint(3, 2 * i)) for i in range(n))
    call = harness.field_bytes(1, b"demo.echo") + harness.field_bytes(2, harness.field_bytes(7, items))
    return harness.field_varint(1, request_id) + harness.field_bytes(3, harness.field_bytes(1, call))


@t.test
def closing_a_connection_that_holds_big_outcomes_is_seen():
    """A connection's close does the session's work on the loop: its unawaited
    attached outcomes join the retention, which sizes them and frees what it
    evicts. With many big ones that holds the loop like a request does, and
    the detector must see it (it took the loop for waiting, and said
    nothing)."""
    tasks, n = harness.scaled(40, 20, 10), 60000
    with t.daemon(extra_args=["--stall-warning-ms", "20"]) as d:
        with d.raw(timeout=60) as c:
            c.send_frame(harness.msg_hello(1, 1))
            c.recv()
            for i in range(tasks):
                c.send_frame(echo_of_a_big_list(10 + i, n))
            got = 0
            while got < tasks:  # every Submitted: the tasks exist (and end at once)
                rep = c.recv()
                t.check(rep is not None, "the daemon closed the connection")
                got += rep.request_id >= 10
            t.check("by a request from connection" not in d.log(),
                    "no stall before the close (the test's frames are checked quickly)",
                    d.log()[-2000:])
        # The close: the outcomes are released now.
        line = d.wait_log("by a request from connection", 60)
        print("  " + line.strip(), flush=True)
        print("  " + d.wait_log("in all by a request from connection", 60).strip(), flush=True)
        t.contains(line, "(uid", "the stall line names the closing connection and its uid")


@t.test
def detector_off():
    with blocker(["--stall-warning-ms", "0"]) as d:
        r = d.aioctl("run", "blocker.block", "1.5")
        t.eq(r.rc, 0, "a block with the detector off", r)
        # The slow-step warning still comes, after the step; no stall line.
        d.wait_log("held the event loop for", 10)
        t.check(HELD not in d.log(), "a stall reported with the detector off:\n%s" % d.log())


@t.test
def bad_flag():
    r = harness.run([t.aiod, "--stall-warning-ms", "soon"])
    # An invalid setting, as the same line in the file would be (aiod(8)).
    t.eq(r.rc, 78, "exit status of a bad --stall-warning-ms", r)
    t.contains(r.err, "--stall-warning-ms", "the error names the flag", r)


t.main()
