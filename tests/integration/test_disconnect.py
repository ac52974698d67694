"""A client that goes away cancels the tasks attached to its connection
(asyncio.run cancels what is left) but not submitted or detached ones."""

import signal
import socket
import struct
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




def gather_sleep(request_id, seconds):
    """ClientMessage{request_id, gather{items: [call{demo.sleep, [seconds]}]}}."""
    arg = b"\x21" + struct.pack("<d", seconds)  # Value.double_value (fixed64)
    call = harness.field_bytes(1, b"demo.sleep") + harness.field_bytes(2, arg)
    item = harness.field_bytes(1, call)
    return harness.field_varint(1, request_id) + harness.field_bytes(5, harness.field_bytes(1, item))


@t.test
def half_closed_client_still_gets_its_replies():
    """A client that shuts down its sending side after its last request (as
    `nc -U` does at the end of its input) still reads: every request it
    sent is answered, a waiting one (a gather, asyncio.run) included, and
    only then does the daemon close. It was taken as a close: the replies
    were dropped and the gather's task cancelled."""
    with t.daemon() as d:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(30)
        sock.connect(d.socket)
        c = harness.RawClient.__new__(harness.RawClient)
        c.sock, c.buf = sock, b""
        try:
            sock.sendall(harness.frame(harness.msg_hello(1, 1)) +
                         harness.frame(harness.msg_list_plugins(2)) +
                         harness.frame(gather_sleep(3, 0.3)))
            sock.shutdown(socket.SHUT_WR)
            kinds = {}
            while True:
                rep = c.recv()
                if rep is None:
                    break
                kinds[rep.request_id] = rep
            t.eq(sorted(kinds), [1, 2, 3], "requests answered before the close", kinds)
            t.eq(kinds[1].kind, harness.SM_HELLO, "the hello's reply", kinds[1])
            t.eq(kinds[2].kind, harness.SM_PLUGIN_LIST, "ListPlugins' reply", kinds[2])
            t.eq(kinds[3].kind, harness.SM_OUTCOMES, "the gather's reply", kinds[3])
            outcome = harness.parse_fields(kinds[3].body[1][0])
            t.eq(outcome.get(2), [3], "the gathered task's state (TASK_DONE)", outcome)
        finally:
            sock.close()
        d.assert_alive()


t.main()
