"""libaioclient's non-blocking API through the example program
client/examples/aioc-poll.c (its own poll() loop, requests pipelined, a
non-blocking connect, the tasks' ids from the Started event, one final
callback per request), and `aioctl logs -f` following a task from a second
connection."""

import os
import re
import socket
import tempfile
import threading

import harness

t = harness.Suite(__file__)

# Passed by integration.cmake; when run by hand, found next to aioctl.
EXAMPLE = os.environ.get("AIOC_POLL_EXAMPLE") or os.path.join(
    os.path.dirname(os.path.abspath(t.aioctl)), "aioc-poll-example")


def example(d, *calls):
    return harness.Streaming([EXAMPLE, "-s", d.socket] + list(calls), env=harness.clean_env())


# An output line of a task, as the example prints it: "[1]  0.00 s  task 11: ...".
OUTPUT_LINE = re.compile(r"^\[(\d+)\] +[0-9.]+ s  task (\d+)(?: \(stderr\))?: ")
STARTED_LINE = re.compile(r"^\[(\d+)\] +[0-9.]+ s  started: tasks((?: \d+)+)$")
END_LINE = re.compile(r"^\[(\d+)\] +[0-9.]+ s  end of task (\d+)'s output \((\w+)\)$")


def read_all(p, timeout):
    """(t, line) of every stdout line until the end of output."""
    while p.next_line(timeout) is not None:
        pass
    return p.lines


@t.test
def example_three_gathers_concurrently():
    # Three gathers of demo.hello + demo.sleep 1, started at once on one
    # connection: greetings at once, all results after ~1 s, not 3.
    with t.daemon() as d:
        p = example(d)
        lines = read_all(p, 10)
        r = p.wait(10)
        t.eq(r.rc, 0, "exit code", r)
        # Each request's task ids come first, at once (the Started event),
        # and are the ids its lines and output ends carry.
        started = {}
        for at, l in lines:
            m = STARTED_LINE.match(l)
            if m:
                t.check(m.group(1) not in started, "one Started per request: %r" % l, r)
                started[m.group(1)] = [int(x) for x in m.group(2).split()]
                t.check(at < 0.8, "task ids printed at once (at %.2f s): %r" % (at, l), r)
        t.eq(sorted(started), ["1", "2", "3"], "requests with their task ids", r)
        for i, (at, l) in enumerate(lines):
            m = OUTPUT_LINE.match(l) or END_LINE.match(l)
            if m:
                t.check(m.group(1) in started and int(m.group(2)) in started[m.group(1)],
                        "line of a task the Started event named: %r" % l, r)
                t.check(any(STARTED_LINE.match(x) and x.startswith("[%s]" % m.group(1))
                            for _, x in lines[:i]), "Started before the request's lines", r)
        ends = [END_LINE.match(l).groups() for _, l in lines if END_LINE.match(l)]
        t.eq(sorted((int(tk), st) for _, tk, st in ends),
             sorted((tk, "done") for ids in started.values() for tk in ids),
             "one end of output per followed task, each done", r)
        hellos = [(at, l) for at, l in lines if "Hello, " in l]
        t.eq(sorted(l.split(": ")[-1] for _, l in hellos),
             ["Hello, alice!", "Hello, bob!", "Hello, carol!"], "greeting lines", r)
        for at, l in hellos:
            t.check(at < 0.8, "greeting printed as it came (at %.2f s): %r" % (at, l), r)
        results = [(at, l) for at, l in lines if "result:" in l]
        t.eq(len(results), 3, "result lines", r)
        for name in ("alice", "bob", "carol"):
            t.check(any('["hello done","%s"]' % name in l for _, l in results),
                    "result of %s's gather" % name, r)
        for at, l in results:
            t.between(at, 0.9, 2.0, "result time (1 s sleeps, concurrent)", r)
        t.contains(lines[-1][1], "all 3 requests done", "last line", r)
        t.between(r.elapsed, 0.9, 2.0, "elapsed seconds (1 if concurrent, 3 if not)", r)


@t.test
def example_runs_stream_and_complete_out_of_order():
    with t.daemon() as d:
        p = example(d, "demo.main_gather", "demo.sleep 1 x", "demo.fail KeyError k",
                    "demo.nope")
        lines = read_all(p, 10)
        r = p.wait(10)
        t.eq(r.rc, 1, "exit code when a task failed", r)
        text = [l for _, l in lines]

        def at(part):
            for when, l in lines:
                if part in l:
                    return when
            harness.fail("no line containing %r%s" % (part, r))

        # Completions in the order the daemon answers, not of the requests.
        t.check(at("[4]") < at('result: "x"') < at("my_async_function1 result"),
                "completion order", r)
        t.contains(r.out, "unknown function 'demo.nope'", "the refused run's error", r)
        t.contains(r.out, '{"error":"KeyError"}', "the failed task's outcome", r)
        t.between(at('result: "x"'), 0.9, 1.8, "the 1 s run's result time", r)
        # main_gather's lines stream: the 2 s line comes at 2 s, before the end.
        t.between(at("Done with async function 2"), 1.8, 2.7, "streamed line time", r)
        t.between(at("my_async_function1 result"), 2.8, 3.8, "main_gather's result time", r)
        t.eq(len([l for l in text if l.startswith("[1]") and OUTPUT_LINE.match(l)]), 6,
             "main_gather's output lines", r)
        # A run is one Gather: its one task id comes at once, and the
        # refused run has none.
        t.check(any(STARTED_LINE.match(l) and l.startswith("[1]") for l in text),
                "the run's task id at once", r)
        t.check(not any(STARTED_LINE.match(l) and l.startswith("[4]") for l in text),
                "no task ids for the refused run", r)
        t.between(r.elapsed, 2.8, 3.8, "elapsed seconds (3 if concurrent)", r)


@t.test
def example_cancels_tasks_as_soon_as_their_ids_come():
    # -c: each gather's last task (demo.sleep 1) is cancelled from the
    # Started event, before it sleeps; each gather then fails at once with
    # the cancellation, and the connection stays usable for the others.
    with t.daemon() as d:
        p = example(d, "-c")
        lines = read_all(p, 10)
        r = p.wait(10)
        t.eq(r.rc, 1, "exit code (the gathers failed)", r)
        text = [l for _, l in lines]
        t.eq(len([l for l in text if STARTED_LINE.match(l)]), 3, "task ids of 3 gathers", r)
        t.eq(len([l for l in text if "CancelledError" in l]), 3, "3 gathers cancelled", r)
        t.eq(len([l for l in text if END_LINE.match(l) and l.endswith("(cancelled)")]), 3,
             "the cancelled tasks' output ended", r)
        t.check(r.elapsed < 0.9, "cancelled before the 1 s sleeps ended (%.2f s)" % r.elapsed, r)
        t.contains(text[-1], "all 3 requests done", "last line", r)


@t.test
def example_gives_up_on_a_socket_that_never_answers():
    # Something accepts connections on the socket but never says hello: the
    # non-blocking connect gives up after -t seconds, its poll() keeping the
    # time, where the 1.2 library blocked forever.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "silent.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(4)
        held = []

        def accept():
            try:
                conn, _ = srv.accept()
                held.append(conn)
            except OSError:
                pass

        th = threading.Thread(target=accept, daemon=True)
        th.start()
        p = harness.Streaming([EXAMPLE, "-s", path, "-t", "0.5"], env=harness.clean_env())
        r = p.wait(10)
        th.join(5)
        t.eq(len(held), 1, "the silent server accepted the connection", r)
        t.eq(r.rc, 3, "exit code: unreachable", r)
        t.contains(r.err, "did not answer within 0.5 s", "the timeout's message", r)
        t.between(r.elapsed, 0.45, 3.0, "gave up after about 0.5 s", r)
        for conn in held:
            conn.close()
        srv.close()


def follow_lines_in_time(t, p, r_what):
    """Checks demo.main_gather's lines as `logs -f` shows them: each when it
    is printed (function 2 ends at 2 s, function 1 at 3 s)."""
    lines = read_all(p, 10)
    r = p.wait(10)
    t.eq([l for _, l in lines], [
        "Starting main function", "Hello from my async function 1",
        "Hello from my async function 2", "Done with async function 2",
        "Done with async function 1", "Done with main function"], "%s lines" % r_what, r)
    times = dict((l, when) for when, l in lines)
    return r, times


@t.test
def logs_follow_a_submitted_task_from_another_connection():
    with t.daemon() as d:
        r = d.aioctl("submit", "demo.main_gather")
        t.eq(r.rc, 0, "submit exit code", r)
        tid = r.out.strip()
        p = d.aioctl_bg("logs", "-f", tid)
        r, times = follow_lines_in_time(t, p, "logs -f")
        t.eq(r.rc, 0, "logs -f exit code for a task that is done", r)
        t.check(times["Hello from my async function 2"] < 0.8, "first lines at once", r)
        t.between(times["Done with async function 2"], 1.7, 2.7, "line printed at 2 s", r)
        t.between(r.elapsed, 2.7, 3.8, "logs -f returns when the task ends", r)
        # Once ended, logs -f prints the kept lines and returns at once.
        r = d.aioctl("logs", "-f", tid)
        t.eq(r.rc, 0, "logs -f of an ended task", r)
        t.eq(len(r.lines), 6, "kept lines", r)
        t.check(r.elapsed < 1.0, "returns at once", r)


@t.test
def logs_follow_a_task_another_aioctl_runs():
    # The task is attached to an `aioctl run` in another "terminal".
    with t.daemon() as d:
        run = d.aioctl_bg("run", "demo.main_gather")
        task = d.wait_task(lambda tk: tk.get("function") == "demo.main_gather"
                           and tk.get("state") in ("pending", "running"), "main_gather running")
        p = d.aioctl_bg("logs", "-f", task["task"])
        r, times = follow_lines_in_time(t, p, "logs -f")
        t.eq(r.rc, 0, "logs -f exit code", r)
        t.between(times["Done with async function 1"], 2.0, 3.5, "line printed at 3 s", r)
        rr = run.wait(10)
        t.eq(rr.rc, 0, "the run's exit code", rr)
        t.eq(rr.lines[-1], '["my_async_function1 result","my_async_function2 result"]',
             "the run's result", rr)


@t.test
def logs_follow_exit_status_is_the_task_state():
    with t.daemon() as d:
        tid = d.aioctl("submit", "demo.sleep", "5", "x").out.strip()
        p = d.aioctl_bg("logs", "-f", tid)
        d.wait_task(lambda tk: str(tk.get("task")) == tid and tk.get("state") == "running",
                    "sleep running")
        r = d.aioctl("cancel", tid)
        t.eq(r.rc, 0, "cancel exit code", r)
        r = p.wait(10)
        t.eq(r.rc, 5, "logs -f exit code for a cancelled task", r)
        t.check(r.elapsed < 4, "logs -f returned when the task was cancelled", r)
        t.contains(r.err, "CancelledError", "stderr names the cancellation", r)

        tid = d.aioctl("submit", "demo.fail", "ValueError", "boom").out.strip()
        r = d.aioctl("logs", "-f", tid)
        t.eq(r.rc, 1, "logs -f exit code for a failed task", r)
        t.contains(r.err, "ValueError: boom", "stderr names the failure", r)
        r = d.aioctl("--json", "logs", "-f", tid)
        t.eq(r.rc, 1, "--json logs -f exit code for a failed task", r)
        t.eq(r.lines, ['{"state":"failed","task":%s}' % tid], "--json state line", r)


t.main()
