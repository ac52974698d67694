"""Schedules end to end, as aiod.proto documents them (Schedule, TaskInfo's
attempt, max_attempts, next_run_usec, after and attempts): aioctl submit
with --delay, --at, --retries and --after, what ps and show say about the
waiting and retrying tasks, and the outcomes. These need the daemon's side
of the schedules; a daemon that ignores Schedule fails them."""

import datetime
import json
import time

import harness

t = harness.Suite(__file__)


def usec(iso):
    """show --json's time ("2026-12-05T23:53:17.235+00:00") in microseconds."""
    return int(datetime.datetime.fromisoformat(iso).timestamp() * 1e6)


def submit(d, *args):
    r = d.aioctl("submit", *args)
    t.eq(r.rc, 0, "submit %s" % " ".join(args), r)
    return r.out.strip()


def ps_line(d, tid):
    """The plain `ps --all` line of task tid."""
    r = d.aioctl("ps", "--all")
    t.eq(r.rc, 0, "ps --all", r)
    rows = [l for l in r.lines if l.split() and l.split()[0] == tid]
    t.eq(len(rows), 1, "ps lists task %s once" % tid, r)
    return rows[0]


@t.test
def delay_waits_and_shows_when():
    with t.daemon() as d:
        before = time.time()
        tid = submit(d, "--delay", "2", "demo.echo", "late")
        info = d.task(tid)
        t.eq(info["state"], "pending", "a delayed task is pending", " %r" % info)
        t.check(info["next_run"] is not None, "show --json has its next run", " %r" % info)
        next_run = usec(info["next_run"])
        t.between(next_run / 1e6 - before, 1.5, 3.0, "next run about 2 s after the submit")
        line = ps_line(d, tid)
        t.contains(line, "waiting (start in ", "ps says when it starts", " %r" % line)
        r = d.aioctl("show", tid)
        t.contains(r.out, "next run: ", "show has a next run line", r)
        r = d.aioctl("await", tid)
        t.eq((r.rc, r.lines), (0, ['"late"']), "await the delayed task", r)
        info = d.task(tid)
        t.check(usec(info["started"]) >= next_run - 1000,
                "it did not start before its next run", " %r" % info)


@t.test
def at_epoch_seconds():
    with t.daemon() as d:
        at = int(time.time()) + 2
        tid = submit(d, "--at", "@%d" % at, "demo.echo", "on time")
        info = d.task(tid)
        t.eq((info["state"], usec(info["next_run"])), ("pending", at * 1000000),
             "pending until --at", " %r" % info)
        r = d.aioctl("await", tid)
        t.eq((r.rc, r.lines), (0, ['"on time"']), "await", r)
        t.check(usec(d.task(tid)["started"]) >= at * 1000000, "started at --at or later")


@t.test
def retries_keep_every_attempt():
    with t.daemon() as d:
        tid = submit(d, "--retries", "2", "--backoff", "0.1", "--backoff-max", "0.2",
                     "demo.fail", "ValueError", "boom")
        r = d.aioctl("await", tid)
        t.eq(r.rc, 1, "await of a task that failed every attempt: exit 1", r)
        t.contains(r.err, "ValueError: boom", "the last attempt's error", r)
        info = d.task(tid)
        t.eq((info["state"], info["attempt"], info["max_attempts"]), ("failed", 3, 3),
             "three attempts of three", " %r" % info)
        t.eq([a["number"] for a in info["attempts"]], [1, 2, 3], "show --json's attempts",
             " %r" % info)
        for a in info["attempts"]:
            t.eq(a["error"], {"kind": "ValueError", "message": "boom"}, "each attempt's error",
                 " %r" % a)
            t.check(usec(a["finished"]) >= usec(a["started"]), "an attempt ends after it starts",
                    " %r" % a)
        r = d.aioctl("show", tid)
        t.eq(r.rc, 0, "show", r)
        t.contains(r.out, "attempts: 3 of 3", "show's attempts line", r)
        lines = [l for l in r.lines if l.startswith("attempt ")]
        t.eq(len(lines), 3, "one line per attempt", r)
        t.check(lines[0].startswith("attempt 1: ") and lines[0].endswith(": ValueError: boom"),
                "attempt line: number, times, error kind: message", r)
        line = ps_line(d, tid)
        t.contains(line, "failed (3 attempts)", "ps --all says how many attempts", " %r" % line)


@t.test
def a_retry_waits_in_ps():
    with t.daemon() as d:
        # A long backoff: the second attempt waits while we look.
        tid = submit(d, "--retries", "1", "--backoff", "30", "--backoff-max", "30",
                     "demo.fail", "OSError", "flaky")
        tk = d.wait_task(lambda tk: str(tk["task"]) == tid and tk["attempt"] == 1 and
                         tk["state"] == "pending", "waiting for its retry")
        t.eq(tk["max_attempts"], 2, "max_attempts in ps --json", " %r" % tk)
        line = ps_line(d, tid)
        t.contains(line, "waiting (retry 2/2", "ps says which retry", " %r" % line)
        info = d.task(tid)
        t.eq([a["error"]["message"] for a in info["attempts"]], ["flaky"],
             "the first attempt's error is kept while the retry waits", " %r" % info)
        r = d.aioctl("cancel", tid)
        t.eq(r.rc, 0, "cancel a task waiting for its retry", r)
        r = d.aioctl("await", tid)
        t.eq(r.rc, 5, "it ends cancelled", r)


@t.test
def after_waits_for_its_tasks():
    with t.daemon() as d:
        first = submit(d, "demo.sleep", "1", "one")
        second = submit(d, "--after", first, "demo.echo", "two")
        info = d.task(second)
        t.eq((info["state"], info["after"]), ("pending", [int(first)]),
             "pending, after the first", " %r" % info)
        line = ps_line(d, second)
        t.contains(line, "waiting (after %s)" % first, "ps says what it waits for", " %r" % line)
        r = d.aioctl("await", second)
        t.eq((r.rc, r.lines), (0, ['"two"']), "await the second", r)
        t.check(usec(d.task(second)["started"]) >= usec(d.task(first)["finished"]),
                "the second started after the first ended")

        # A failed dependency fails the task that waits for it.
        bad = submit(d, "demo.fail", "KeyError", "gone")
        dep = submit(d, "--after", "%s,%s" % (first, bad), "demo.echo", "never")
        r = d.aioctl("await", dep)
        t.eq(r.rc, 1, "a task after a failed one fails", r)
        t.contains(r.err, "DependencyFailed", "with error kind DependencyFailed", r)

        # An unknown task is refused at the submit.
        r = d.aioctl("submit", "--after", "999999", "demo.echo", "x")
        t.eq(r.rc, 2, "--after an unknown task: refused", r)


@t.test
def run_with_retries_follows_every_attempt():
    with t.daemon() as d:
        r = d.aioctl("run", "--retries", "2", "--backoff", "0.05", "demo.fail", "ValueError",
                     "again")
        t.eq(r.rc, 1, "run --retries of an always failing call: exit 1", r)
        r = d.aioctl("--json", "run", "--delay", "1", "demo.echo", "5")
        t.eq((r.rc, json.loads(r.lines[-1])["result"]), (0, 5), "run --delay", r)
        t.check(r.elapsed >= 0.9, "run --delay 1 took at least a second (%.2f s)" % r.elapsed)


if __name__ == "__main__":
    t.main()
