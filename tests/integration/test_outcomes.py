"""How tasks end as aioctl reports them: failure (exit 1), cancellation
(exit 5), and the two timeouts: `run --timeout` cancels (asyncio.wait_for),
`await --timeout` does not (asyncio.wait)."""

import harness

t = harness.Suite(__file__)


@t.test
def failing_task_exits_1():
    with t.daemon() as d:
        r = d.aioctl("run", "demo.fail", "ValueError", "boom")
        t.eq(r.rc, 1, "exit code of a failed task", r)
        t.contains(r.err, "ValueError", "stderr names the error kind", r)
        t.contains(r.err, "boom", "stderr carries the error message", r)
        t.eq(r.out, "", "nothing on stdout for a failed task", r)


@t.test
def cancel_running_sleep():
    with t.daemon() as d:
        r = d.aioctl("submit", "demo.sleep", "30", "x")
        t.eq(r.rc, 0, "submit exit code", r)
        t.check(r.out.strip().isdigit() and int(r.out) > 0,
                "submit prints a positive task id", r)
        tid = r.out.strip()
        t.eq(d.task(tid)["state"], "running", "state of task %s before cancel" % tid)

        r = d.aioctl("cancel", tid)
        t.eq(r.rc, 0, "cancel exit code", r)

        r = d.aioctl("await", tid, timeout=10)
        t.eq(r.rc, 5, "await of a cancelled task: exit code", r)
        t.check(r.elapsed < 2.0, "await of a cancelled task returns quickly", r)
        t.contains(r.err, "Cancelled", "await reports the cancellation", r)

        r = d.aioctl("show", tid)
        t.eq(r.rc, 0, "show exit code", r)
        t.contains(r.out, "state: cancelled", "show says cancelled", r)
        t.eq(d.task(tid)["state"], "cancelled", "show --json state")

        # A second cancel of an ended task is not an error, and changes nothing.
        r = d.aioctl("cancel", tid)
        t.eq(r.rc, 0, "cancel of an ended task: exit code", r)
        t.eq(d.task(tid)["state"], "cancelled", "state after a second cancel")


@t.test
def run_timeout_cancels():
    with t.daemon() as d:
        p = d.aioctl_bg("run", "--timeout", "1", "demo.sleep", "10")
        r = p.wait(timeout=15)
        t.eq(r.rc, 4, "run --timeout exit code", r)
        t.between(r.elapsed, 0.9, 2.5, "run --timeout 1: elapsed seconds", r)
        # The task (found by its owner pid: this aioctl) ended cancelled.
        tk = d.wait_task(lambda x: x["pid"] == p.pid and x["function"] == "demo.sleep",
                         "of aioctl pid %d" % p.pid)
        t.eq(d.task(tk["task"])["state"], "cancelled", "state of the task after run --timeout")


@t.test
def await_timeout_does_not_cancel():
    with t.daemon() as d:
        r = d.aioctl("submit", "demo.sleep", "3", "z")
        t.eq(r.rc, 0, "submit exit code", r)
        tid = r.out.strip()

        r = d.aioctl("await", "--timeout", "1", tid, timeout=15)
        t.eq(r.rc, 4, "await --timeout exit code", r)
        t.between(r.elapsed, 0.9, 2.0, "await --timeout 1: elapsed seconds", r)
        t.eq(d.task(tid)["state"], "running", "task state after await --timeout")

        r = d.aioctl("await", tid, timeout=15)
        t.eq(r.rc, 0, "second await exit code", r)
        t.eq(r.lines, ['"z"'], "second await prints the result", r)
        t.check(r.elapsed > 0.5, "the second await waited for the rest of the sleep", r)
        t.eq(d.task(tid)["state"], "done", "state after the task finished")


@t.test
def await_unknown_task():
    with t.daemon() as d:
        r = d.aioctl("await", "999999", timeout=10)
        t.eq(r.rc, 2, "await of an unknown task id: exit code", r)
        t.check(r.err.strip() != "", "await of an unknown id explains itself", r)


t.main()
