"""The stall detector: a loop held longer than stall_warning_ms is reported
while it is still held, naming the task that holds it, from a thread of its
own; when the loop runs again the whole length is logged. An idle loop (one
waiting for events) is never a stall, and --stall-warning-ms 0 turns the
detector off."""

import os
import re
import time

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


def cpu_seconds(pid, tid=None):
    """The CPU time (user and system) of the process, or of one of its
    threads, from /proc."""
    path = "/proc/%d/task/%d/stat" % (pid, tid) if tid else "/proc/%d/stat" % pid
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


FREED_MARK = "freed on the thread pool"
FREED = re.compile(r"the values of (\d+) finished tasks were freed on the thread pool")


@t.test
def closing_a_connection_frees_its_big_outcomes_off_the_loop():
    """A connection's close hands its unawaited attached outcomes to the
    retention, which evicts what is over retain_count. Freeing a big
    outcome's million nodes took the loop tens of milliseconds, so a close
    with hundreds of them held it for seconds. They are freed on the thread
    pool now: the loop thread's CPU time over the close stays a small part
    of the daemon's (CPU time, not wall time: a busy machine does not change
    it)."""
    tasks, n = harness.scaled(80, 30, 20), 60000
    args = ["--retain-count", "1", "--log-level", "debug"]
    with t.daemon(extra_args=args) as d:
        pid = d.proc.pid
        with d.raw(timeout=60) as c:
            c.send_frame(harness.msg_hello(1, 1))
            c.recv()
            for i in range(tasks):
                c.send_frame(echo_of_a_big_list(10 + i, n))
            ids = []
            while len(ids) < tasks:  # every Submitted: field 4, its task id in field 1
                rep = c.recv()
                t.check(rep is not None, "the daemon closed the connection")
                if rep.request_id >= 10:
                    ids.append(rep.body[1][0])
            # Tasks run in order: once the last one's outcome is here, all
            # have ended (their values are sized at their end, not at the close).
            c.send_frame(harness.msg_await(5, max(ids)))
            while True:
                rep = c.recv()
                t.check(rep is not None, "the daemon closed the connection")
                if rep.request_id == 5:
                    break
            before = (cpu_seconds(pid, pid), cpu_seconds(pid))
            log_start = len(d.log())
            lines_before = d.log().count(FREED_MARK)
        # The close: tasks - 1 outcomes join the retention and are evicted.
        while True:
            since = d.log()[log_start:]
            freed = sum(int(m) for m in FREED.findall(since))
            if freed >= tasks - 1:
                break
            lines = since.count(FREED_MARK)
            got = d.wait_log_count(FREED_MARK, lines_before + lines + 1, 120)
            t.check(got > lines_before + lines, "%d of the %d evicted outcomes were freed on "
                    "the thread pool" % (freed, tasks - 1), d.log()[-3000:])
        loop = cpu_seconds(pid, pid) - before[0]
        total = cpu_seconds(pid) - before[1]
        print("  CPU over the close: loop thread %.2f s of %.2f s in all" % (loop, total),
              flush=True)
        t.check(total >= 0.05, "the close freed little (%.2f s of CPU in all)" % total)
        t.check(loop * 4 <= total, "the loop thread did %.2f s of the close's %.2f s of CPU"
                % (loop, total))
        t.eq(d.ps(all_tasks=True) is not None, True, "the daemon answers after the close")


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
