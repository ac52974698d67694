"""A client that goes away cancels the tasks attached to its connection
(asyncio.run cancels what is left) but not submitted or detached ones."""

import signal
import time

import harness

t = harness.Suite(__file__)


@t.test
def killed_client_cancels_attached_task():
    with t.daemon() as d:
        p = d.aioctl_bg("run", "demo.sleep", "30")
        tk = d.wait_task(lambda x: x["pid"] == p.pid and x["state"] == "running",
                         "running for aioctl pid %d" % p.pid, all_tasks=False)
        t.eq(tk["function"], "demo.sleep", "function of the running task")
        t.eq(tk["ownership"], "attached", "ownership of a run task")
        p.kill(signal.SIGKILL)
        p.wait(timeout=10)
        tk = d.wait_task(lambda x: x["task"] == tk["task"] and x["state"] != "running",
                         "%d no longer running" % tk["task"], timeout=5)
        t.eq(tk["state"], "cancelled", "state of the attached task after its client died")
        info = d.task(tk["task"])
        t.eq(info["state"], "cancelled", "show: state")
        t.eq(info.get("error", {}).get("kind"), "CancelledError", "show: error kind")
        # It is no longer among the unfinished tasks.
        t.check(all(x["task"] != tk["task"] for x in d.ps()),
                "task %d still listed by ps (without --all)" % tk["task"])
        d.assert_alive()


@t.test
def submitted_and_detached_outlive_their_client():
    with t.daemon(extra_args=["--log-outcomes", "all"]) as d:
        start = time.monotonic()
        # Long enough that both are still running after four aioctl calls
        # on a loaded machine (a detached task is gone once it ends).
        r = d.aioctl("submit", "demo.sleep", "6", "s1")
        t.eq(r.rc, 0, "submit exit code", r)
        sid = r.out.strip()
        r = d.aioctl("detach", "demo.sleep", "6", "d1")
        t.eq(r.rc, 0, "detach exit code", r)
        did = r.out.strip()
        t.check(sid.isdigit() and did.isdigit() and sid != did, "two distinct ids",
                " (%r, %r)" % (sid, did))
        # Both aioctl processes have exited; both tasks still run.
        t.eq(d.task(sid)["state"], "running", "submitted task after its aioctl exited")
        t.eq(d.task(did)["state"], "running", "detached task after its aioctl exited")
        t.eq(d.task(sid)["ownership"], "submitted", "ownership of a submitted task")
        t.eq(d.task(did)["ownership"], "detached", "ownership of a detached task")

        r = d.aioctl("await", sid, timeout=15)
        t.eq(r.rc, 0, "await of the submitted task: exit code", r)
        t.eq(r.lines, ['"s1"'], "await of the submitted task: result", r)
        t.check(time.monotonic() - start >= 5.9, "submitted task finished after its sleep")

        line = d.wait_log("detached task done", timeout=10)
        t.contains(line, "d1", "the detached task's log line carries its result")
        t.contains(line, "task %s" % did, "the detached task's log line names it")
        t.check(time.monotonic() - start >= 5.9, "the detached task ran its whole sleep")
        t.check("detached task cancelled" not in d.log(), "a detached task was cancelled",
                "; log:\n" + d.log())


t.main()
