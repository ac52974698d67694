"""Durable tasks (issue 14) against the real daemon: what an acknowledged
task survives (SIGKILL at random moments while clients submit as fast as
they can, SIGTERM, durability os and none), a restart over a million
retained outcomes, schedules across restarts (retries with backoff, delay,
at, after chains, on_interrupt), a full disk, a damaged or newer or busy
state store, and detached tasks.

Stress sizes follow the build (harness.scaled: AIOD_SANITIZE from ctest).
The disk-full test mounts a tmpfs: it needs root, as CI runs; elsewhere it
fails saying so (it is never skipped quietly). The raw protocol comes from
protoc's Python classes (durable_wire.py), so this script runs under a
python3 with the protobuf module (it re-executes itself with
/usr/bin/python3 when needed)."""

import errno
import glob
import json
import os
import random
import shutil
import signal
import sqlite3
import struct
import subprocess
import threading
import time
from datetime import datetime

import durable_wire
import harness

durable_wire.require_protobuf()

t = harness.Suite(__file__)

ERROR_SHUTTING_DOWN = 13  # proto/aiod.proto
pb = durable_wire.load(t.plugin_dir)

EXIT_DATAERR = 65  # a damaged, newer or busy state store


# ---------------------------------------------------------------- helpers


def state_of(d):
    return os.path.join(d.dir, "state")


def restart(d, extra_args=None):
    """A new daemon in d's directory (same socket, same state dir)."""
    return t.daemon(extra_args=d.extra_args if extra_args is None else extra_args,
                    dirpath=d.dir)


def sigkill(d):
    d.proc.send_signal(signal.SIGKILL)
    d.rc = d.proc.wait()
    t.eq(d.rc, -signal.SIGKILL, "aiod died of the SIGKILL")
    # A killed daemon leaves its socket file; the next start removes it.


def kill_while_running(d, tid):
    """Waits for task tid to run, SIGKILLs the daemon and starts it again:
    the new daemon."""
    wait_state(d, tid, running, "running")
    sigkill(d)
    return restart(d)


def submit_id(d, *args):
    r = d.aioctl("submit", *args)
    t.eq(r.rc, 0, "submit %s" % " ".join(str(a) for a in args), r)
    t.check(r.out.strip().isdigit(), "submit prints an id", r)
    return int(r.out.strip())


def show(d, task_id):
    return d.task(task_id)


def ps_all(d):
    return d.ps(all_tasks=True)


def parse_time(s):
    """show --json's ISO time (milliseconds, with offset) as epoch seconds."""
    return datetime.fromisoformat(s).timestamp()


def wait_state(d, task_id, pred, what, timeout=30):
    """Polls `show` (state queries only, under a deadline) until pred(info)."""
    deadline = time.monotonic() + timeout
    info = None
    while time.monotonic() < deadline:
        info = show(d, task_id)
        if pred(info):
            return info
        time.sleep(0.05)
    harness.fail("task %s not %s within %.0f s; last show: %r" % (task_id, what, timeout, info))


def conf_file(*lines):
    path = os.path.join(t.tmpdir("conf"), "aiod.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def log_changes(blob):
    """The changes of one row of tasks.db's log, as docs/architecture.md gives
    their format: ("P", id, state), ("D", id, None) or ("M", key, value)."""
    out, pos = [], 0
    while pos < len(blob):
        kind = chr(blob[pos])
        if kind == "P":
            tid, st, _fin, n = struct.unpack_from("<QiQI", blob, pos + 1)
            out.append(("P", tid, st))
            pos += 1 + 24 + n
        elif kind == "D":
            out.append(("D", struct.unpack_from("<Q", blob, pos + 1)[0], None))
            pos += 9
        elif kind == "M":
            kl = blob[pos + 1]
            key = blob[pos + 2:pos + 2 + kl].decode()
            out.append(("M", key, struct.unpack_from("<Q", blob, pos + 2 + kl)[0]))
            pos += 2 + kl + 8
        else:
            raise ValueError("a log row does not parse at byte %d" % pos)
    return out


def db_rows(state):
    """{id: state} of tasks.db's tasks, with its unfolded log applied over
    them in order (read while aiod may run: WAL lets us)."""
    con = sqlite3.connect(os.path.join(state, "tasks.db"), timeout=10)
    try:
        con.execute("BEGIN")  # one read: tasks and log as of one commit
        rows = dict(con.execute("SELECT id, state FROM tasks"))
        for (blob,) in con.execute("SELECT ops FROM log ORDER BY seq"):
            for kind, key, value in log_changes(blob):
                if kind == "P":
                    rows[key] = value
                elif kind == "D":
                    rows.pop(key, None)
        con.execute("COMMIT")
        return rows
    finally:
        con.close()


def run_aiod(args, dirpath=None, timeout=60):
    """aiod ARGS with its own socket, expected to exit (a refusal to start);
    returns (exit status, stderr)."""
    dirpath = dirpath or t.tmpdir()
    argv = [t.aiod, "--socket", os.path.join(dirpath, "aiod-%d.sock" % random.randrange(1 << 30)),
            "--plugin-dir", t.plugin_dir, "--no-default-plugins"] + list(args)
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                       env=harness.clean_env())
    return p.returncode, p.stderr.decode("utf-8", "replace")


def restored_line(d):
    return d.wait_log("tasks restored in", 30)


# ---------------------------------------------------------------- 1. crashes


CLIENTS = harness.scaled(4, 3, 2)
WINDOW = harness.scaled(64, 32, 16)


def crash_round(d, durability, rnd, how, side_file, all_acked, all_tokens, stats):
    """Clients submit as fast as they can; `how` stops the daemon at a random
    moment; returns the restarted daemon after checking every acknowledged
    task of this and earlier rounds."""
    t0 = time.monotonic()
    seq = iter(range(1 << 40))
    lock = threading.Lock()

    def make_call(_n):
        with lock:
            k = next(seq)
        token = "r%d-%d" % (rnd, k)
        if k % 3 == 0:
            # The side effect we count: one line per run of the task.
            return "proc.shell", ["echo %s >> %s; sleep 0.0%d" % (token, side_file, k % 5)], \
                token
        if k % 3 == 1:
            return "demo.sleep", [0.01 * (k % 20), token], token
        return "demo.echo", [token], token

    subs = [durable_wire.Submitter(d.socket, make_call, WINDOW).start() for _ in range(CLIENTS)]
    for s in subs:
        t.check(s.first_ack.wait(30), "client got a first Submitted within 30 s",
                " (errors %r)" % s.errors[:3])
    # The kill moment: random, different each round (this wait is the test's
    # choice of moment, not a stand-in for an event).
    delay = random.uniform(0.05, harness.scaled(1.5, 2.5, 4.0))
    time.sleep(delay)
    if how == "sigterm":
        d.proc.send_signal(signal.SIGTERM)
        d.wait_exit(60)
        t.eq(d.rc, 0, "aiod's exit status after SIGTERM under load", d.log()[-3000:])
    else:
        sigkill(d)
    for s in subs:
        s.stop()
        s.finish(30)
    acked = {}
    for s in subs:
        t.check(not set(s.acked).intersection(acked), "two Submitted replies with one id",
                " (%r)" % sorted(set(s.acked).intersection(acked))[:5])
        acked.update(s.acked)
        # After a SIGTERM the daemon may refuse further submits as shutting
        # down; nothing else may be refused.
        allowed = (pb.ERROR_SHUTTING_DOWN,) if how == "sigterm" else ()
        refused = [e for e in s.errors if e[0] not in allowed]
        t.eq(refused[:5], [], "errors in reply to submits before the %s" % how)
    t.check(len(acked) > 0, "tasks were acknowledged before the %s" % how)
    stats.append((durability, rnd, how, delay, len(acked)))
    all_acked.update(acked)
    all_tokens.update(acked.values())

    t_kill = time.monotonic()
    d = restart(d)
    restored = restored_line(d)
    t_up = time.monotonic()
    tasks = ps_all(d)
    ids = [tk["task"] for tk in tasks]
    t.eq(len(ids), len(set(ids)), "ps --all lists each id once")
    by_id = {tk["task"]: tk for tk in tasks}
    missing = sorted(i for i in all_acked if i not in by_id)
    t.eq(missing[:10], [], "acknowledged tasks missing after the %s of round %d (%d of %d; %s)"
         % (how, rnd, len(missing), len(all_acked), restored.strip()))
    for i, token in all_acked.items():
        call = by_id[i]["call"]
        t.check(call.endswith(token) or (" %s " % token) in call or
                ("echo %s >>" % token) in call,
                "task %d is the task acknowledged with that id" % i,
                " (token %s, call %r)" % (token, call))
    # New ids are above all the old ones.
    new = submit_id(d, "demo.echo", "after-%d" % rnd)
    t.check(new > max(ids), "a new id is above every stored one",
            " (new %d, stored up to %d)" % (new, max(ids)))

    # Let everything of this round end, then count side effects.
    mine = set(all_acked)
    deadline = time.monotonic() + harness.scaled(60, 120, 240)
    while True:
        open_ = [tk for tk in d.ps() if tk["task"] in mine]
        if not open_:
            break
        if time.monotonic() > deadline:
            harness.fail("acknowledged tasks still unfinished after the restart: %r" % open_[:5])
        time.sleep(0.1)
    t_end = time.monotonic()
    counts = {}
    if os.path.exists(side_file):
        with open(side_file) as f:
            for line in f:
                counts[line.strip()] = counts.get(line.strip(), 0) + 1
    twice = sorted(k for k, n in counts.items() if n > 1)
    t.eq(twice, [], "side effects that happened more than once (on_interrupt = fail)")
    final = durable_wire.show_many(d.socket, sorted(all_acked))
    interrupted = 0
    for i, token in all_acked.items():
        info = final[i]
        t.check(isinstance(info, pb.TaskInfo), "task %d still known after its round" % i,
                " (%r)" % info)
        t.check(info.attempt <= 1, "task %d ran at most one attempt" % i, " (%r)" % info)
        if info.state == pb.TASK_DONE:
            if info.function == "proc.shell":
                t.eq(counts.get(token, 0), 1, "a done proc.shell task %d wrote its line" % i)
        else:
            t.eq(info.state, pb.TASK_FAILED, "task %d ended done or failed" % i, " (%r)" % info)
            t.eq(info.outcome.error_kind, "Interrupted",
                 "the only failure here is an interruption (task %d)" % i, " (%r)" % info)
            interrupted += 1
    stats.append("    %s; %d interrupted of %d acknowledged so far; the round took %.1f s "
                 "(submits %.1f, restart %.1f, until all ended %.1f, checks %.1f)"
                 % (restored.split("state store ")[-1].strip(), interrupted, len(all_acked),
                    time.monotonic() - t0, t_kill - t0, t_up - t_kill, t_end - t_up,
                    time.monotonic() - t_end))
    return d


@t.test
def acknowledged_tasks_survive_kills_and_none_runs_twice():
    """Several pipelined clients submit proc.shell (which appends its token
    to a file), demo.sleep and demo.echo as fast as the daemon acknowledges;
    the daemon is killed at a random moment each round (five SIGKILL rounds
    with durability fsync, one SIGTERM, two SIGKILL with durability os).
    After each restart every acknowledged id is found, is the call it was
    acknowledged for, ends done or failed Interrupted, ran at most once, and
    new ids are above the old ones."""
    stats = []
    for durability, rounds in (("fsync", ["sigkill"] * 3 + ["sigterm"] + ["sigkill"] * 2),
                               ("os", ["sigkill", "sigkill"])):
        d = t.daemon(extra_args=["--durability", durability, "--retain-count", "1000000",
                                 "--retain-seconds", "100000", "--retain-bytes", "4G"])
        side = os.path.join(d.dir, "side-effects")
        all_acked, all_tokens = {}, set()
        for rnd, how in enumerate(rounds):
            d = crash_round(d, durability, rnd, how, side, all_acked, all_tokens, stats)
        d.stop()
    for line in stats:
        print(line if isinstance(line, str) else
              "  %s round %d: %s after %.3f s, %d tasks acknowledged" % line, flush=True)


# ---------------------------------------------------------------- 2. a big store


def build_store(state, n):
    """A v1 tasks.db of n finished SUBMITTED demo.echo tasks (ids 1..n, result
    "r<id>") and a next-id above them, written directly with sqlite3."""
    os.makedirs(state, exist_ok=True)
    path = os.path.join(state, "tasks.db")
    con = sqlite3.connect(path)
    con.execute("PRAGMA auto_vacuum=INCREMENTAL")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE tasks(id INTEGER PRIMARY KEY, state INTEGER NOT NULL, "
                "record BLOB NOT NULL)")
    con.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    con.execute("PRAGMA user_version=1")
    now = int(time.time() * 1e6)
    rec = pb.StoredTask(state=pb.TASK_DONE, function="demo.echo", ownership=pb.SUBMITTED,
                        owner_uid=os.geteuid(), owner_pid=os.getpid(), attempt=1,
                        after_met=True)
    rec.args.append(pb.Value(string_value="x"))
    rec.outcome.state = pb.TASK_DONE

    def rows():
        for i in range(1, n + 1):
            rec.id = i
            rec.created_usec = now - 2000000 + i
            rec.started_usec = rec.created_usec + 10
            rec.finished_usec = rec.created_usec + 20
            rec.args[0].string_value = "a%d" % i
            rec.outcome.task_id = i
            rec.outcome.result.string_value = "r%d" % i
            yield (i, pb.TASK_DONE, rec.SerializeToString())

    with con:
        con.executemany("INSERT INTO tasks(id, state, record) VALUES (?, ?, ?)", rows())
        con.execute("INSERT INTO meta(key, value) VALUES ('stopped_usec', ?)", (now - 1000,))
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    os.chmod(path, 0o600)
    with open(os.path.join(state, "next-id"), "w") as f:
        f.write("%d\n" % (n + 1000))


@t.test
def restart_with_a_million_retained_outcomes():
    """aiod starts over a store of N finished tasks written without it
    (N = 1,000,000; 200,000 under ASan and 50,000 under TSan, whose builds
    read it several times slower, within the harness's 30 s wait for
    READY=1): first, middle and last outcome, ps paging over all of them.
    The store is written as schema version 1 (the first one), which a newer
    aiod migrates in place, so this also covers an upgrade. The restore
    time is reported, not asserted (the bench measures it)."""
    n = harness.scaled(1000000, 200000, 50000)
    dirpath = t.tmpdir("big")
    start = time.monotonic()
    build_store(os.path.join(dirpath, "state"), n)
    print("  store of %d tasks written in %.1f s (%.0f MiB)"
          % (n, time.monotonic() - start,
             os.path.getsize(os.path.join(dirpath, "state", "tasks.db")) / 2**20), flush=True)
    start = time.monotonic()
    # A million small outcomes are some 400 MB in memory: over the default
    # retain_bytes, which would forget the oldest first.
    d = t.daemon(dirpath=dirpath, extra_args=["--retain-count", str(n),
                                              "--retain-seconds", "100000000",
                                              "--retain-bytes", "4G"])
    ready = time.monotonic() - start
    line = restored_line(d)
    t.contains(line, "%d tasks restored" % n, "the restore line counts every task")
    t.contains(line, "%d finished" % n, "the restore line counts them finished")
    secs = float(line.split("tasks restored in ")[1].split()[0])
    print("  restart: tasks restored in %.3f s; READY=1 after %.2f s" % (secs, ready),
          flush=True)
    for i in (1, n // 2, n):
        r = d.aioctl("await", i)
        t.eq((r.rc, r.out.strip()), (0, '"r%d"' % i), "await %d gives its stored result" % i, r)
        info = show(d, i)
        t.eq((info["state"], info["result"]), ("done", "r%d" % i), "show %d" % i)
    out = os.path.join(dirpath, "ps.out")
    with open(out, "w") as f:
        p = subprocess.run(d.ctl_argv("ps", "--all"), stdout=f, stderr=subprocess.PIPE,
                           timeout=600, env=harness.clean_env())
    t.eq(p.returncode, 0, "ps --all over the big store", p.stderr[-500:])
    with open(out) as f:
        count = 0
        first = last = None
        for line in f:
            fields = line.split()
            if not fields or not fields[0].isdigit():
                continue  # the header
            count += 1
            first = first if first is not None else int(fields[0])
            last = int(fields[0])
    t.eq((count, first, last), (n, 1, n), "ps --all pages through every task (count, first, last)")
    new = submit_id(d, "demo.echo", "new")
    t.check(new > n, "a new task's id is above the stored ones", " (%d)" % new)
    d.stop()


# ---------------------------------------------------------------- 3. schedules


@t.test
def retries_are_spaced_by_backoff_within_the_cap():
    backoff, cap, retries = 0.2, 0.5, 5
    with t.daemon() as d:
        tid = submit_id(d, "--retries", retries, "--backoff", backoff, "--backoff-max", cap,
                        "demo.fail", "KeyError", "again")
        r = d.aioctl("await", tid)
        t.eq(r.rc, 1, "await of a task that fails every attempt", r)
        info = show(d, tid)
        t.eq((info["state"], info["attempt"], info["max_attempts"]),
             ("failed", retries + 1, retries + 1), "attempts used", " (%r)" % info)
        att = info["attempts"]
        t.eq([a["number"] for a in att], list(range(1, retries + 2)), "attempt records")
        starts = [parse_time(a["started"]) for a in att]
        ends = [parse_time(a["finished"]) for a in att]
        slack = harness.scaled(0.25, 0.5, 1.0)  # timers fire late on a loaded machine
        gaps = []
        for k in range(1, len(att)):
            gap = starts[k] - ends[k - 1]
            limit = min(cap, backoff * 2 ** (k - 1))
            gaps.append(round(gap, 3))
            t.check(-0.002 <= gap <= limit + slack,
                    "the wait before attempt %d is within 0..%.2f s" % (k + 1, limit),
                    " (gaps %r)" % gaps)
        # Full jitter: each wait is uniform in 0..cap; five waits summing to
        # under 20 ms (of an expected ~1 s) would mean no backoff at all.
        t.check(starts[-1] - ends[0] > 0.02, "the attempts are spaced out", " (gaps %r)" % gaps)
        print("  gaps between attempts: %r s" % gaps, flush=True)


@t.test
def delay_and_at_hold_across_a_restart():
    d = t.daemon()
    delayed = submit_id(d, "--delay", "3", "demo.echo", "delayed")
    at = time.time() + 4
    timed = submit_id(d, "--at", "@%d" % int(at), "demo.echo", "timed")
    created = {tk["task"]: tk["created_usec"] / 1e6 for tk in ps_all(d)}
    d.stop()
    d = restart(d)
    r = d.aioctl("await", delayed, timed, timeout=60)
    t.eq((r.rc, r.lines), (0, ['"delayed"', '"timed"']), "both run after the SIGTERM", r)
    info = show(d, delayed)
    t.check(parse_time(info["started"]) >= created[delayed] + 3 - 0.001,
            "the delayed task started no sooner than created + 3 s",
            " (created %.3f, started %s)" % (created[delayed], info["started"]))
    info = show(d, timed)
    t.check(parse_time(info["started"]) >= int(at) - 0.001,
            "the --at task started no sooner than its time", " (%r)" % info)

    # Again with SIGKILL instead of a clean stop.
    delayed = submit_id(d, "--delay", "2", "demo.echo", "delayed-killed")
    created = [tk for tk in ps_all(d) if tk["task"] == delayed][0]["created_usec"] / 1e6
    sigkill(d)
    d = restart(d)
    r = d.aioctl("await", delayed, timeout=60)
    t.eq((r.rc, r.out.strip()), (0, '"delayed-killed"'), "a delayed task runs after a SIGKILL",
         r)
    t.check(parse_time(show(d, delayed)["started"]) >= created + 2 - 0.001,
            "it started no sooner than created + 2 s")
    d.stop()


@t.test
def after_chains_run_in_order_and_failures_propagate():
    with t.daemon() as d:
        a = submit_id(d, "demo.sleep", "0.3", "a")
        b = submit_id(d, "--after", a, "demo.sleep", "0.2", "b")
        c = submit_id(d, "--after", b, "demo.echo", "c")
        r = d.aioctl("await", c, a, b)
        t.eq((r.rc, r.lines), (0, ['"c"', '"a"', '"b"']), "the chain's results", r)
        ia, ib, ic = show(d, a), show(d, b), show(d, c)
        t.check(parse_time(ib["started"]) >= parse_time(ia["finished"]) - 0.001,
                "b started after a finished", " (%r %r)" % (ia, ib))
        t.check(parse_time(ic["started"]) >= parse_time(ib["finished"]) - 0.001,
                "c started after b finished", " (%r %r)" % (ib, ic))

        a = submit_id(d, "--delay", "0.3", "demo.fail", "ValueError", "a fails")
        b = submit_id(d, "--after", a, "demo.echo", "b")
        c = submit_id(d, "--after", b, "demo.echo", "c")
        r = d.aioctl("await", c)
        t.eq(r.rc, 1, "await of a task whose chain failed", r)
        ib, ic = show(d, b), show(d, c)
        for info, dep, name in ((ib, a, "b"), (ic, b, "c")):
            t.eq((info["state"], info["error"]["kind"]), ("failed", "DependencyFailed"),
                 "%s ends DependencyFailed" % name, " (%r)" % info)
            t.contains(info["error"]["message"], str(dep),
                       "%s's message names the task it waited for" % name)
            t.check(not info.get("started"), "%s never started" % name, " (%r)" % info)


def chain_after(d, head, n):
    """n submits of demo.echo, each after the one before (the first after
    `head`), over one connection; their ids."""
    c = durable_wire.Conn(d.socket)
    prev, ids = head, []
    try:
        for i in range(n):
            m = pb.ClientMessage(request_id=i + 2)
            m.submit.call.function = "demo.echo"
            m.submit.call.args.append(durable_wire.value("link %d" % i))
            m.submit.ownership = pb.SUBMITTED
            m.submit.schedule.after.append(prev)
            c.send(m)
            r = c.recv()
            if r.WhichOneof("body") != "submitted":
                harness.fail("chain submit %d answered %r" % (i, r))
            prev = r.submitted.task_id
            ids.append(prev)
    finally:
        c.close()
    return ids


@t.test
def a_dependency_met_before_a_restart_stays_met():
    """A task waiting for three tasks, two of which succeeded and then left
    no outcome (one pruned by retention, one detached, which keeps none):
    after a restart the task looked every dependency up again, did not find
    those, and failed DependencyFailed ("is no longer known"). What is met
    stays met."""
    d = t.daemon(extra_args=("--retain-count", "2"))
    a = submit_id(d, "demo.echo", "a")
    r = d.aioctl("detach", "demo.sleep", "0.3", "detached")
    t.eq(r.rc, 0, "detach", r)
    detached = int(r.out.strip())
    gate = submit_id(d, "--delay", "3600", "demo.echo", "gate")
    c = submit_id(d, "--after", "%d,%d,%d" % (a, detached, gate), "demo.echo", "c")
    t.eq(d.aioctl("await", a).rc, 0, "a is done")
    pushes = [submit_id(d, "demo.echo", "push %d" % i) for i in range(3)]
    t.eq(d.aioctl("await", pushes[-1]).rc, 0, "the last push is done")
    t.check(d.aioctl("show", a).rc != 0, "a's outcome left the two retained")
    # A detached task is forgotten as it ends (no outcome is kept for it).
    deadline = time.monotonic() + 30
    while d.aioctl("show", detached).rc == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    t.check(d.aioctl("show", detached).rc != 0, "the detached task ended and was forgotten")
    d.stop()
    d = restart(d)
    info = show(d, c)
    t.eq(info["state"], "pending", "c still waits, for the gate only, after the restart",
         " (%r)" % info)
    r = d.aioctl("cancel", gate)
    t.eq(r.rc, 0, "cancel of the gate", r)
    info = show(d, c)
    t.eq((info["state"], info["error"]["kind"]), ("failed", "DependencyFailed"),
         "c fails once the gate is cancelled", " (%r)" % info)
    t.contains(info["error"]["message"], "task %d" % gate, "naming the gate", " (%r)" % info)
    d.stop()


@t.test
def a_long_after_chain_fails_link_by_link_not_by_recursion():
    """The failure of a task spread to what runs after it by recursion, a
    stack frame (and a 1 KiB message) per link: the end of the head of a
    chain of some thousands, failed or cancelled, overflowed the stack and
    the daemon died (SIGSEGV), for every user. Each link now fails in turn,
    naming the head's failure."""
    n = 3000 if os.environ.get("AIOD_SANITIZE") else 20000
    with t.daemon(extra_args=("--durability", "os", "--retain-count", "100000")) as d:
        for how in ("failed", "cancelled"):
            gate = os.path.join(d.dir, "gate-%s" % how)
            if how == "failed":
                # It fails once the gate task, waiting for a file, is done.
                wait = submit_id(d, "proc.shell", "while [ ! -e %s ]; do sleep 0.05; done" % gate)
                head = submit_id(d, "--after", wait, "demo.fail", "ValueError", "the head")
            else:
                head = submit_id(d, "--delay", "3600", "demo.echo", "the head")
            ids = chain_after(d, head, n)
            if how == "failed":
                open(gate, "w").close()
            else:
                r = d.aioctl("cancel", head)
                t.eq(r.rc, 0, "cancel of the waiting head", r)
            r = d.aioctl("await", ids[-1], timeout=300)
            d.assert_alive()
            t.eq(r.rc, 1, "the chain's last link ends failed (%s head)" % how, r)
            for tid in (ids[0], ids[n // 2], ids[-1]):
                info = show(d, tid)
                t.eq((info["state"], info["error"]["kind"]), ("failed", "DependencyFailed"),
                     "link %d of a chain whose head was %s" % (tid, how), " (%r)" % info)
                t.contains(info["error"]["message"], "task %d" % head,
                           "its message names the head, where the chain broke", " (%r)" % info)


@t.test
def many_dependents_of_one_task_fail_without_holding_the_loop():
    """100,000 tasks waiting for one (--after), which is cancelled: all of
    them were failed in the loop turn of its end, which held the loop about
    0.4 s for every user (0.8 s for 200,000) (the stall detector's warning). They now
    fail over turns of a few milliseconds each."""
    n = 20000 if os.environ.get("AIOD_SANITIZE") else 100000
    with t.daemon(extra_args=("--durability", "os", "--stall-warning-ms", "200")) as d:
        head = submit_id(d, "--delay", "3600", "demo.echo", "the head")
        conn = durable_wire.Conn(d.socket)
        last = None
        try:
            acked = sent = 0
            while acked < n:
                while sent < n and sent - acked < 256:
                    sent += 1
                    conn.send(durable_wire.submit_message(sent + 1, "demo.echo", ["w"],
                                                          after=[head]))
                r = conn.recv()
                t.check(r.WhichOneof("body") == "submitted", "submit acknowledged", " %r" % r)
                acked += 1
                last = max(last or 0, r.submitted.task_id)
        finally:
            conn.close()
        r = d.aioctl("cancel", head)
        t.eq(r.rc, 0, "cancel of the head", r)
        r = d.aioctl("await", last, timeout=300)
        t.eq(r.rc, 1, "the last of its %d dependents ends failed" % n, r)
        t.contains(r.err, "DependencyFailed", "as a failed dependency", r)
        held = [l for l in d.log().splitlines() if "event loop held" in l]
        t.eq(held, [], "no stall warning while they failed")


@t.test
def following_a_kept_tasks_output_at_a_stop_is_not_told_cancelled():
    """`aioctl logs -f` of a submitted task when aiod stops: the follower
    got OutputEnd with state cancelled (exit 5), where the task is kept in
    the state store and ends Interrupted after the restart, and an await
    of it is told so (ERROR_SHUTTING_DOWN). A client told "cancelled" would
    submit it again. Followers now get the await's answer."""
    d = t.daemon()
    tid = submit_id(d, "proc.shell", "echo start; sleep 600")
    wait_state(d, tid, running, "running")
    logs = d.aioctl_bg("--json", "logs", "-f", tid)
    line = logs.next_line(30)
    t.check(line is not None and "start" in line[1], "the follower has the first line", line)
    d.proc.send_signal(signal.SIGTERM)
    r = logs.wait(60)
    t.eq(r.rc, 3, "aioctl logs -f exits 3 (the daemon is stopping), not 5 (cancelled)", r)
    t.check('"cancelled"' not in r.out, "no cancelled end state is printed", r)
    t.contains(r.err, "aiod is stopping: task %d" % tid, "it says the daemon is stopping", r)
    t.contains(r.err, "the restart ends it failed, kind Interrupted",
               "and what the restart does with the task", r)
    t.eq(d.wait_exit(60), 0, "aiod's exit status")
    d = restart(d)
    info = show(d, tid)
    t.eq((info["state"], info.get("error", {}).get("kind")), ("failed", "Interrupted"),
         "the task after the restart", " (%r)" % info)
    d.stop()


def running(info):
    return info["state"] == "running"


@t.test
def on_interrupt_retry_runs_an_interrupted_task_again():
    conf = conf_file("on_interrupt = demo. retry")
    d = t.daemon(extra_args=["--config", conf])
    tid = submit_id(d, "demo.sleep", "2", "again")
    d = kill_while_running(d, tid)
    t.contains(restored_line(d), "1 interrupted and run again",
               "the restore line counts the task run again")
    r = d.aioctl("await", tid, timeout=60)
    t.eq((r.rc, r.out.strip()), (0, '"again"'), "the interrupted task ran to its end", r)
    info = show(d, tid)
    t.eq(info["attempt"], 2, "it took two attempts", " (%r)" % info)
    att = info["attempts"]
    t.eq([(a["number"], a["error"]["kind"]) for a in att], [(1, "Interrupted")],
         "its first attempt is recorded as attempt 1, Interrupted", " (%r)" % info)
    t.check(parse_time(att[0]["started"]) < parse_time(info["started"]),
            "the second attempt started after the interrupted one", " (%r)" % info)
    d.stop()


@t.test
def an_outcome_told_to_a_client_survives_a_kill_right_after():
    """An Await's Outcomes is sent once the outcomes it reports are
    committed, as a Submitted reply is sent once the task's record is: a
    client told a task's outcome finds it after a crash. The outcome of a
    lone task used to wait up to 20 ms for company (LIMIT_STORE_LAZY_MS), so
    a kill right after the reply lost it: the task ended Interrupted, or
    ran again under on_interrupt = retry (a cancelled one too)."""
    conf = conf_file("on_interrupt = demo. retry")
    d = t.daemon(extra_args=["--config", conf])
    for rnd in range(3):
        tid = submit_id(d, "demo.sleep", "0.2", "ok-%d" % rnd)
        r = d.aioctl("await", tid)
        t.eq((r.rc, r.out.strip()), (0, '"ok-%d"' % rnd), "await", r)
        sigkill(d)
        d = restart(d)
        info = show(d, tid)
        t.eq((info["state"], info.get("attempt")), ("done", 1),
             "round %d: the task told done is done after the kill, once" % rnd, " (%r)" % info)
        # The same for a cancel: the client was told CancelledError.
        tid = submit_id(d, "demo.sleep", "600", "never")
        wait_state(d, tid, running, "running")
        r = d.aioctl("cancel", tid)
        t.eq(r.rc, 0, "cancel", r)
        r = d.aioctl("await", tid)
        t.eq(r.rc, 5, "await of the cancelled task", r)
        sigkill(d)
        d = restart(d)
        info = show(d, tid)
        t.eq(info["state"], "cancelled",
             "round %d: the task told cancelled stays cancelled after the kill" % rnd,
             " (%r)" % info)
    d.stop()


@t.test
def a_stop_keeps_what_a_running_task_printed_with_its_outcome():
    """Outcomes keep the last lines of output. A running task a SIGTERM cut
    off kept its record as it was, without them: after the restart its
    Interrupted outcome had no output, though aiod had the lines then."""
    d = t.daemon()
    tid = submit_id(d, "proc.shell", "seq 1 5; sleep 600")
    wait_state(d, tid, lambda i: i.get("state") == "running" and i.get("output_lines") == 5,
               "running with its five lines printed")
    d.stop()
    d = restart(d)
    info = show(d, tid)
    t.eq((info["state"], info["error"]["kind"]), ("failed", "Interrupted"),
         "settled by on_interrupt = fail", " (%r)" % info)
    t.eq(info.get("output_lines"), 5, "its outcome counts the lines it printed", " (%r)" % info)
    r = d.aioctl("logs", tid)
    t.eq(r.out.split(), ["1", "2", "3", "4", "5"], "and gives them", r)
    t.contains(r.err, "Interrupted", "then the outcome, as for any failed task", r)
    d.stop()


@t.test
def a_stop_under_retry_ends_the_interrupted_attempt_when_aiod_stopped():
    """The attempt a SIGTERM cut off ended when aiod stopped (recorded at
    the stop), not when it started again, and its message says when, as
    on_interrupt = fail's does."""
    conf = conf_file("on_interrupt = demo. retry")
    d = t.daemon(extra_args=["--config", conf])
    tid = submit_id(d, "demo.sleep", "600", "again")
    wait_state(d, tid, running, "running")
    d.stop()
    stopped = time.time()
    # The restart comes well after the stop: the two times differ.
    time.sleep(1.5)
    d = restart(d)
    info = wait_state(d, tid, running, "running again")
    att = info["attempts"]
    t.eq(len(att), 1, "one ended attempt", " (%r)" % info)
    t.check(parse_time(att[0]["finished"]) <= stopped,
            "the interrupted attempt ended at the stop, not at the restart",
            " (%s; stopped by %.3f)" % (att[0]["finished"], stopped))
    t.contains(att[0]["error"]["message"], "aiod stopped at ", "its message says when aiod stopped")
    d.aioctl("cancel", tid)
    d.stop()


@t.test
def an_interrupted_task_whose_next_attempt_fails_lists_both():
    """aioctl(1): show has one line for each ended attempt. A task run
    again under on_interrupt = retry (no --retries) whose last attempt
    failed listed only the interrupted one."""
    conf = conf_file("on_interrupt = proc. retry")
    d = t.daemon(extra_args=["--config", conf])
    cwd = t.tmpdir("gone")
    tid = submit_id(d, "proc.run", '["sleep","3607"]', "", cwd)
    wait_state(d, tid, running, "running")
    sigkill(d)
    subprocess.run(["pkill", "-KILL", "-f", "^sleep 3607$"], check=False)
    os.rmdir(cwd)  # the next attempt cannot start there
    d = restart(d)
    r = d.aioctl("await", tid, timeout=60)
    t.eq(r.rc, 1, "the second attempt fails", r)
    info = show(d, tid)
    t.eq([(a["number"], a["error"]["kind"]) for a in info["attempts"]],
         [(1, "Interrupted"), (2, info["error"]["kind"])],
         "both attempts are listed, the last with the task's error", " (%r)" % info)
    d.stop()


@t.test
def a_task_with_retries_failed_by_an_interrupt_lists_that_attempt():
    """aioctl(1): show has one line for each ended attempt, the last failed
    one included. A task with --retries that a restart ended Interrupted
    (on_interrupt = fail) showed "attempt 1 of 3" with no attempt listed."""
    d = t.daemon()
    tid = submit_id(d, "--retries", "2", "demo.sleep", "600", "z")
    d = kill_while_running(d, tid)
    info = show(d, tid)
    t.eq((info["state"], info["error"]["kind"]), ("failed", "Interrupted"),
         "the restart ended it", " (%r)" % info)
    t.eq([(a["number"], a["error"]["kind"]) for a in info.get("attempts", [])],
         [(1, "Interrupted")], "its one attempt is listed", " (%r)" % info)
    t.eq(info["attempts"][0]["error"]["message"], info["error"]["message"],
         "with the task's own error", " (%r)" % info)
    d.stop()


@t.test
def on_interrupt_retry_past_its_bound_says_so():
    """After LIMIT_INTERRUPT_RETRIES (10) interrupted runs a task under
    on_interrupt = retry ends Interrupted; its message said
    "(on_interrupt = fail)", which is not the setting."""
    conf = conf_file("on_interrupt = demo. retry")
    d = t.daemon(extra_args=["--config", conf])
    tid = submit_id(d, "demo.sleep", "3600", "never")
    for _ in range(11):
        d = kill_while_running(d, tid)
    info = show(d, tid)
    t.eq((info["state"], info["error"]["kind"]), ("failed", "Interrupted"),
         "the eleventh interruption ends it", " (%r)" % info)
    t.contains(info["error"]["message"], "on_interrupt = retry", "the message names the setting")
    t.contains(info["error"]["message"], "10 times", "and the bound it reached")
    d.stop()


@t.test
def a_cancel_between_attempts_says_so():
    """A task cancelled while it waited to be retried ended "cancelled
    before it started", beside its first attempt's start and error."""
    d = t.daemon()
    tid = submit_id(d, "--retries", "5", "--backoff", "3600", "demo.fail", "OSError", "flaky")
    d.wait_task(lambda x: x["task"] == tid and x.get("attempt") == 1 and x["state"] == "pending",
                "%d waiting for its second attempt" % tid)
    r = d.aioctl("cancel", tid)
    t.eq(r.rc, 0, "cancel", r)
    info = show(d, tid)
    t.eq((info["state"], info["error"]["kind"]), ("cancelled", "CancelledError"),
         "the task is cancelled", " (%r)" % info)
    t.contains(info["error"]["message"], "next attempt",
               "the message says it waited for its next attempt", " (%r)" % info)
    d.stop()


@t.test
def on_interrupt_fail_says_aiod_stopped():
    d = t.daemon()  # the default: fail
    tid = submit_id(d, "demo.sleep", "60", "never")
    d = kill_while_running(d, tid)
    t.contains(restored_line(d), "1 interrupted and failed", "the restore line counts it")
    info = show(d, tid)
    t.eq((info["state"], info["error"]["kind"]), ("failed", "Interrupted"),
         "a running task killed under on_interrupt = fail", " (%r)" % info)
    t.contains(info["error"]["message"], "aiod stopped", "the message says aiod stopped")
    t.contains(info["error"]["message"], "killed or crashed", "and how (a SIGKILL)")
    r = d.aioctl("await", tid)
    t.eq(r.rc, 1, "await of the interrupted task fails", r)
    d.stop()


@t.test
def a_stop_does_not_tell_awaiting_clients_their_stored_tasks_were_cancelled():
    """At a SIGTERM the stop cancels every task, but a submitted task the
    state store keeps is not over: pending, it runs after the restart;
    running, on_interrupt settles it then. Its awaiting client was told
    "CancelledError" (aioctl exit 5, "cancelled") and the log said
    "submitted task cancelled": a script would submit it again, and it ran
    twice. The await now ends with ERROR_SHUTTING_DOWN saying the task is
    kept, and the log says it was cut off, not cancelled."""
    d = t.daemon()
    later = submit_id(d, "--delay", "600", "demo.echo", "later")
    now = submit_id(d, "demo.sleep", "600", "now")
    wait_state(d, now, running, "running")
    with d.raw(timeout=60) as c:
        c.send_frame(harness.msg_hello(1, 1))
        c.recv()
        c.send_frame(harness.msg_await(2, later))
        c.send_frame(harness.msg_await(3, now))
        # Frames are handled in order: once this is answered, both awaits
        # wait in the daemon.
        c.send_frame(harness.msg_list_plugins(4))
        t.eq(c.recv().request_id, 4, "the daemon answered the request after the awaits")
        d.proc.send_signal(signal.SIGTERM)
        got = {}
        while len(got) < 2:
            rep = c.recv()
            t.check(rep is not None, "the daemon closed before answering both awaits", got)
            got[rep.request_id] = rep
        for rid, tid in ((2, later), (3, now)):
            t.eq(got[rid].error_code, ERROR_SHUTTING_DOWN, "the await of task %d" % tid,
                 got[rid])
            t.contains(got[rid].error_message, "task %d" % tid, "the error names the task")
        t.contains(got[2].error_message, "kept in the state store as it was and goes on after "
                   "the restart", "the pending one is said to go on")
        # Running under on_interrupt = fail it does not go on: the restart
        # ends it Interrupted, and the message said otherwise.
        t.contains(got[3].error_message, "the restart ends it failed, kind Interrupted",
                   "the running one is said to end Interrupted")
    t.eq(d.wait_exit(60), 0, "aiod's exit status")
    log = d.log()
    t.check("submitted task cancelled" not in log, "no task was logged as cancelled",
            log[-2000:])
    t.contains(log, "cut off by the stop: kept in the state store", "the log says what happened")
    d = restart(d)
    info = show(d, later)
    t.eq(info["state"], "pending", "the delayed task after the restart", " (%r)" % info)
    info = show(d, now)
    t.eq((info["state"], info.get("error", {}).get("kind")), ("failed", "Interrupted"),
         "the running one, settled by on_interrupt = fail", " (%r)" % info)
    d.stop()


@t.test
def a_stop_keeps_the_outcomes_retention_holds():
    """Tasks the stop cuts off are kept in the store as they were: they are
    not outcomes, and must not push the oldest real outcomes out of
    retention. They did: with room for six outcomes and five kept, a
    SIGTERM over two waiting tasks and a running one deleted the two oldest
    from the store, and the restart found three of five. (After it, the
    running task's end, Interrupted, is the sixth.)"""
    d = t.daemon(extra_args=["--retain-count", "6"])
    done = [submit_id(d, "demo.echo", "r%d" % i) for i in range(5)]
    r = d.aioctl("await", *done)
    t.eq(r.rc, 0, "the five ran", r)
    waiting = [submit_id(d, "--delay", "3600", "demo.echo", "w%d" % i) for i in range(2)]
    running_id = submit_id(d, "demo.sleep", "600", "long")
    wait_state(d, running_id, running, "running")
    d.stop()
    d = restart(d)
    known = {tk["task"]: tk["state"] for tk in ps_all(d)}
    t.eq([known.get(i) for i in done], ["done"] * 5, "the five outcomes after the SIGTERM",
         " (%r)" % known)
    t.eq([known.get(i) for i in waiting], ["pending"] * 2, "the waiting tasks wait again")
    t.eq(known.get(running_id), "failed", "the running one, settled by on_interrupt = fail")
    for i in done:
        r = d.aioctl("await", i)
        t.eq(r.rc, 0, "await %d after the restart" % i, r)
    d.stop()


def cancel_on_wire(conn, rid, tid):
    m = pb.ClientMessage(request_id=rid)
    m.cancel.task_ids.append(tid)
    conn.send(m)


@t.test
def an_acknowledged_cancel_survives_a_sigkill():
    """A Cancelled reply for a pending durable task is sent once its
    cancelled record is committed: killed the moment the reply comes, aiod
    restarts with the task cancelled, not pending (it would run)."""
    d = t.daemon()
    tids = [submit_id(d, "--delay", "600", "demo.echo", "cancelled-%d" % i) for i in range(5)]
    conn = durable_wire.Conn(d.socket)
    for i, tid in enumerate(tids):
        cancel_on_wire(conn, 100 + i, tid)
        r = conn.recv()
        t.eq((r.WhichOneof("body"), r.cancelled.count), ("cancelled", 1),
             "the Cancelled reply for task %d" % tid, " (%r)" % r)
    sigkill(d)  # at once: no wait between the last reply and the kill
    conn.close()
    d = restart(d)
    for tid in tids:
        t.eq(show(d, tid)["state"], "cancelled", "acknowledged cancel of task %d after SIGKILL" % tid)
    d.stop()


# ---------------------------------------------------------------- 4. disk full


def small_state_dir(name):
    """A temp dir whose state/ is a 3 MiB tmpfs (unmount it with umount -l):
    (dir, state dir). Needs root, as CI runs; elsewhere the test fails
    saying so (it is never skipped quietly)."""
    if os.geteuid() != 0:
        harness.fail("this test mounts a tmpfs as the state dir and needs root (CI runs as "
                     "root); it was not run")
    dirpath = t.tmpdir(name)
    state = os.path.join(dirpath, "state")
    os.makedirs(state)
    r = harness.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", state])
    t.eq(r.rc, 0, "mount a 3 MiB tmpfs", r)
    return dirpath, state


def fill_disk(state):
    """Fills the tmpfs under `state`; returns the filler's path."""
    filler = os.path.join(state, "filler")
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


@t.test
def a_full_disk_refuses_submits_and_loses_nothing():
    dirpath, state = small_state_dir("full")
    d = None
    try:
        d = t.daemon(dirpath=dirpath, extra_args=["--retain-count", "100000"])
        acked = [submit_id(d, "demo.echo", "before-%d" % i) for i in range(5)]
        long_task = submit_id(d, "demo.sleep", "3", "long")
        wait_state(d, long_task, running, "running")
        filler = fill_disk(state)
        big = "x" * 3000
        refused = None
        for i in range(5000):
            r = d.aioctl("submit", "demo.echo", "%s-%d" % (big, i))
            if r.rc != 0:
                refused = r
                break
            acked.append(int(r.out.strip()))
        t.check(refused is not None, "a submit is refused once the disk is full",
                " (%d submits acknowledged)" % len(acked))
        t.eq(refused.rc, 2, "aioctl's exit status for a submit the store refused", refused)
        t.contains(refused.err, "store", "the refusal names the state store", refused)
        t.contains(refused.err, "full", "and says the disk is full", refused)
        print("  %d submits acknowledged before the disk was full" % len(acked), flush=True)
        d.assert_alive()
        r = d.aioctl("run", "demo.echo", "attached")
        t.eq((r.rc, r.out.strip()), (0, '"attached"'), "an attached run still works", r)
        r = d.aioctl("await", long_task, timeout=60)
        t.eq((r.rc, r.out.strip()), (0, '"long"'), "the running task finished", r)
        r = d.aioctl("await", *acked[:5])
        t.eq(r.rc, 0, "tasks acknowledged before are served", r)

        os.unlink(filler)
        deadline = time.monotonic() + 30
        while True:
            r = d.aioctl("submit", "demo.echo", "after-free")
            if r.rc == 0:
                acked.append(int(r.out.strip()))
                break
            t.check(time.monotonic() < deadline, "submits succeed again once space is freed", r)
            time.sleep(0.2)
        acked.append(submit_id(d, "demo.echo", "after-free-2"))
        line = d.wait_log("a commit went in again", 10)
        t.contains(line, "that failed", "the log says the store writes again after the failures")
        t.eq(sum(1 for l in d.log().splitlines() if "until a commit goes in" in l), 1,
             "the failing commits are logged once, not once a second", d.log()[-3000:])
        d.stop()
        d = restart(d)
        known = {tk["task"]: tk for tk in ps_all(d)}
        missing = [i for i in acked + [long_task] if i not in known]
        t.eq(missing, [], "acknowledged tasks missing after the restart")
        t.eq(known[long_task]["state"], "done", "the task that ran during the full disk is done")
        d.stop()
    finally:
        if d is not None:
            d.kill()
        harness.run(["umount", "-l", state])


@t.test
def a_kill_on_a_full_disk_starts_again_there():
    """A store killed with its last changes still in its log, started again
    while the disk is full, with no byte left: the log cannot be folded into
    the tasks, so it is read over them in memory; next-id's new block is
    written over the old number in place (a new file has no room); and the
    start goes on. Once there is room, a commit folds the log."""
    dirpath, state = small_state_dir("full3")
    d = None
    try:
        d = t.daemon(dirpath=dirpath)
        acked = [submit_id(d, "demo.echo", "before-kill-%d" % i) for i in range(5)]
        r = d.aioctl("await", *acked)
        t.eq(r.rc, 0, "the tasks ran", r)
        pending = submit_id(d, "--delay", "600", "demo.echo", "pending")
        t.check(db_rows(state).get(pending) is not None, "the pending task is stored")
        filler = fill_disk(state)
        sigkill(d)
        fill_to_the_last_page(state)
        d = restart(d)
        line = d.wait_log("cannot be folded", 30)
        t.contains(line, "disk is full", "the log says why the log stays unfolded")
        known = {tk["task"]: tk for tk in ps_all(d)}
        t.eq([i for i in acked + [pending] if i not in known], [],
             "acknowledged tasks missing after the start on the full disk")
        t.eq([known[i]["state"] for i in acked], ["done"] * 5, "their outcomes, from the log")
        t.eq(known[pending]["state"], "pending", "the delayed task waits again")
        os.unlink(filler)
        deadline = time.monotonic() + 30
        while True:
            r = d.aioctl("submit", "demo.echo", "after-room")
            if r.rc == 0:
                break
            t.check(time.monotonic() < deadline, "a submit succeeds once there is room", r)
            time.sleep(0.2)
        d.stop()
        con = sqlite3.connect(os.path.join(state, "tasks.db"))
        try:
            t.eq(con.execute("SELECT count(*) FROM log").fetchone()[0], 0,
                 "no log left after the clean stop")
            rows = dict(con.execute("SELECT id, state FROM tasks"))
        finally:
            con.close()
        t.eq([i for i in acked + [pending] if i not in rows], [],
             "every task in the tasks table once folded")
    finally:
        if d is not None:
            d.kill()
        harness.run(["umount", "-l", state])


def fill_to_the_last_page(state):
    """fill_disk leaves less than its 64 KiB chunk: this takes the rest."""
    with open(os.path.join(state, "filler-pages"), "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        except OSError as e:
            t.eq(e.errno, errno.ENOSPC, "the disk is full to its last page")


@t.test
def a_start_on_a_full_disk_after_a_clean_stop_says_so_and_is_retried():
    """A clean stop leaves no -wal or -shm, and SQLite needs room to make
    them again: a start on a full disk cannot open the store. That is no
    damage: aiod exits 1, which the unit restarts (65 is for what waits for
    an administrator: RestartPreventExitStatus), and says the disk is full.
    Once there is room it starts, with what it kept. (It once exited 65
    with "cannot be read: disk I/O error".)"""
    dirpath, state = small_state_dir("full4")
    d = None
    try:
        d = t.daemon(dirpath=dirpath)
        pending = submit_id(d, "--delay", "600", "demo.echo", "pending")
        d.stop()
        filler = fill_disk(state)
        fill_to_the_last_page(state)
        rc, err = run_aiod(["--state-dir", state])
        t.eq(rc, 1, "aiod's exit status on a full disk (one the unit restarts)",
             " stderr: %r" % err[-2000:])
        t.contains(err, "disk is full", "aiod says the disk is full")
        t.check("damaged" not in err and "repair" not in err,
                "nor does it call the store damaged", " stderr: %r" % err[-2000:])
        os.unlink(filler)
        os.unlink(os.path.join(state, "filler-pages"))
        d = restart(d)
        t.eq(show(d, pending)["state"], "pending", "the kept task is there once there is room")
        d.stop()
    finally:
        if d is not None:
            d.kill()
        harness.run(["umount", "-l", state])


@t.test
def what_a_full_disk_holds_up_is_written_once_there_is_room():
    """A commit that fails for want of space is written again, deletions and
    cancellations included: a detached task that ended meanwhile does not
    come back (and run twice), a cancel the store could not record yet is
    not undone by the stop, and a stop that cannot write its last changes
    says so in the log."""
    dirpath, state = small_state_dir("full2")
    d = None
    try:
        d = t.daemon(dirpath=dirpath, extra_args=[
            "--config", conf_file("on_interrupt = demo. retry"), "--log-outcomes", "all"])
        r = d.aioctl("detach", "demo.sleep", "1", "detached-once")
        t.eq(r.rc, 0, "detach", r)
        det = int(r.out.strip())
        wait_state(d, det, running, "running")
        later = submit_id(d, "--delay", "600", "demo.echo", "never-runs")
        filler = fill_disk(state)
        d.wait_log("detached task done", 30)
        # A commit after the end failed (the submit's, which carries the
        # task's deletion, or comes after the commit that does).
        r = d.aioctl("submit", "demo.echo", "refused")
        t.check(r.rc != 0, "a commit fails after the detached task ended", r)
        t.contains(r.err, "full", "the submit is refused for the full disk", r)
        # The failures are logged once, not once a second.
        t.eq(d.wait_log_count("until a commit goes in", 1, 30), 1,
             "one error line for the failing commits, not one a second", d.log()[-2000:])

        r = d.aioctl("cancel", later)
        t.check(r.rc != 0, "a cancel the store cannot record is not reported as done", r)
        t.contains(r.err, "could not record", "the error says the cancel is not stored yet", r)
        t.contains(r.err, "full", "and why", r)

        os.unlink(filler)
        d.stop()  # at once: within the store's back-off, before it tried again
        d = restart(d)
        restored = restored_line(d)
        t.contains(restored, "1 tasks restored", "only the cancelled task is restored, not the "
                   "ended detached one")
        t.contains(restored, "0 interrupted and run again", "nothing runs again")
        t.eq(show(d, later)["state"], "cancelled", "the cancel made while the disk was full")
        r = d.aioctl("show", det)
        t.check(r.rc != 0, "the ended detached task is gone", r)

        # A stop with the disk still full: its last changes cannot be written.
        long_task = submit_id(d, "demo.sleep", "60", "cut-off")
        wait_state(d, long_task, running, "running")
        filler = fill_disk(state)
        d.stop()
        t.contains(d.log(), "were not written", "the log says what the stop could not write")
        os.unlink(filler)
        d = restart(d)
        t.contains(restored_line(d), "1 interrupted and run again",
                   "the cut-off task, whose running record was committed before it started")
        d.stop()
    finally:
        if d is not None:
            d.kill()
        harness.run(["umount", "-l", state])


# ---------------------------------------------------------------- 5. damage


def made_store():
    """A state dir holding a store with one finished task (made by aiod)."""
    d = t.daemon()
    tid = submit_id(d, "demo.echo", "kept")
    r = d.aioctl("await", tid)
    t.eq(r.rc, 0, "await", r)
    d.stop()
    return d, tid


def refuses(state, want, extra=()):
    rc, err = run_aiod(["--state-dir", state] + list(extra))
    t.eq(rc, EXIT_DATAERR, "aiod's exit status over this store", " stderr: %r" % err[-2000:])
    t.contains(err, want, "aiod says why it refuses")
    return err


def clear_wal(state):
    for suffix in ("-wal", "-shm"):
        p = os.path.join(state, "tasks.db" + suffix)
        if os.path.exists(p):
            os.unlink(p)


@t.test
def a_damaged_store_stops_the_start_unless_recovered_fresh():
    d, tid = made_store()
    state = state_of(d)
    db = os.path.join(state, "tasks.db")
    with open(db, "wb") as f:
        f.write(os.urandom(16384))
    clear_wal(state)
    err = refuses(state, "is damaged")
    t.contains(err, "--state-recover=fresh", "the message names the way out")
    t.contains(err, db, "the message names the file")

    d = restart(d, extra_args=["--state-recover=fresh"])
    moved = glob.glob(db + ".damaged-*")
    t.check(len(moved) >= 1, "the damaged store was moved aside", " (%r)" % os.listdir(state))
    line = d.wait_log("moved aside", 10)
    t.contains(line, "warning", "the log warns that the store was moved aside")
    t.contains(line, "damaged", "and says why")
    r = d.aioctl("show", tid)
    t.check(r.rc != 0, "the old task is gone with the damaged store", r)
    submit_id(d, "demo.echo", "fresh")
    d.stop()


@t.test
def a_second_recovery_does_not_overwrite_the_first_moved_store():
    """--state-recover=fresh named the moved store PATH.damaged-TIME with
    whole seconds and rename()d over whatever had that name: two recoveries
    within a second kept only the last damaged store. The names of this
    second and the next are taken beforehand; neither is overwritten."""
    d, tid = made_store()
    state = state_of(d)
    db = os.path.join(state, "tasks.db")
    with open(db, "wb") as f:
        f.write(b"damaged store\n" * 1000)
    clear_wal(state)
    now = time.time()
    taken = {}
    for sec in (now, now + 1, now + 2):
        name = db + ".damaged-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime(sec))
        with open(name, "w") as f:
            f.write("an earlier damaged store\n")
        taken[name] = "an earlier damaged store\n"
    d = restart(d, extra_args=["--state-recover=fresh"])
    for name, text in taken.items():
        with open(name) as f:
            t.eq(f.read(), text, "%s was left as it was" % os.path.basename(name))
    moved = [p for p in glob.glob(db + ".damaged-*") if p not in taken and not p.endswith(
        ("-wal", "-shm"))]
    t.eq(len(moved), 1, "the damaged store was moved to a name of its own",
         " (%r)" % os.listdir(state))
    with open(moved[0], "rb") as f:
        t.check(f.read().startswith(b"damaged store"), "it holds the damaged store")
    d.stop()


@t.test
def a_fresh_recovery_of_a_healthy_store_logs_nothing_odd():
    """--state-recover=fresh on a store that opens fine printed an
    uninitialised buffer as a warning (a line of stack bytes)."""
    d, tid = made_store()
    d = restart(d, extra_args=["--state-recover=fresh"])
    t.eq(d.aioctl("show", tid).rc, 0, "the healthy store was kept")
    d.stop()
    warnings = [line for line in d.log().splitlines() if "warning" in line]
    t.eq(warnings, [], "no warning from a recovery with nothing to recover")


@t.test
def a_store_readable_by_others_is_made_private_again():
    """aiod.conf(5): tasks.db is mode 0600 (its records hold every user's
    calls). A store restored from a backup as 0644 stayed 0644, and SQLite
    made its -wal and -shm the same."""
    d, tid = made_store()
    state = state_of(d)
    db = os.path.join(state, "tasks.db")
    os.chmod(db, 0o644)
    d = restart(d)
    t.eq(d.aioctl("show", tid).rc, 0, "the store still opens")
    submit_id(d, "demo.echo", "after")
    for name in ("tasks.db", "tasks.db-wal", "tasks.db-shm"):
        p = os.path.join(state, name)
        if os.path.exists(p):
            t.eq(oct(os.stat(p).st_mode & 0o777), oct(0o600), "%s is 0600" % name)
    line = d.wait_log("readable", 10)
    t.contains(line, db, "the log says which file was made private")
    d.stop()


@t.test
def a_state_dir_open_to_others_is_made_private_again():
    """The directory holds every user's calls and the id counter: one
    writable by anyone (a tmpfs mounted there is 1777) was used as it was."""
    d, tid = made_store()
    state = state_of(d)
    os.chmod(state, 0o1777)
    d = restart(d)
    t.eq(d.aioctl("show", tid).rc, 0, "the store still opens")
    t.eq(oct(os.stat(state).st_mode & 0o7777), oct(0o700), "the state directory is 0700 again")
    line = d.wait_log("open to others", 10)
    t.contains(line, state, "the log names the directory")
    d.stop()


@t.test
def state_files_another_user_owns_are_refused():
    """Another owner of the state directory or of tasks.db could swap in
    records (any owner uid) or task ids: aiod refuses to start (65: a
    person must look), naming the file, the owner and the fix."""
    d, _ = made_store()
    state = state_of(d)
    nobody = 65534
    for path, what in ((os.path.join(state, "tasks.db"), "the state store file"),
                       (state, "state directory")):
        os.chown(path, nobody, -1)
        rc, err = run_aiod(["--state-dir", state])
        t.eq(rc, EXIT_DATAERR, "aiod's exit status with %s owned by uid %d" % (path, nobody),
             " stderr: %r" % err[-2000:])
        t.contains(err, "%s %s is owned by uid %d" % (what, path, nobody), "aiod says why")
        t.contains(err, "chown", "and what to do")
        # Root starting aiod by hand on the service's own state directory
        # (owned by aiod) was told to chown it, which would break the
        # service: running as its owner comes first.
        t.contains(err, "Run aiod as uid %d" % nobody, "or to run as its owner", " %r" % err)
        os.chown(path, os.geteuid(), -1)
    d = restart(d)
    submit_id(d, "demo.echo", "owned again")
    d.stop()


@t.test
def a_record_that_is_not_a_stored_task_stops_the_start():
    d, tid = made_store()
    state = state_of(d)
    con = sqlite3.connect(os.path.join(state, "tasks.db"))
    with con:
        # Field 1 as a length-delimited field whose length runs past the end.
        con.execute("UPDATE tasks SET record = ? WHERE id = ?", (b"\x0a\xff\xff\x01zz", tid))
    con.close()
    err = refuses(state, "is damaged")
    t.contains(err, "--state-recover=fresh", "the message names the way out")

    # The way out the message names must work for a record too, not only for
    # a file SQLite cannot open: the damage is found while the tasks are read
    # back, after the store opened fine.
    db = os.path.join(state, "tasks.db")
    d = restart(d, extra_args=["--state-recover=fresh"])
    moved = glob.glob(db + ".damaged-*")
    t.check(len(moved) >= 1, "the store with the bad record was moved aside",
            " (%r)" % os.listdir(state))
    line = d.wait_log("moved aside", 10)
    t.contains(line, "warning", "the log warns that the store was moved aside")
    t.contains(line, "task %d" % tid, "and names the record that could not be read")
    r = d.aioctl("show", tid)
    t.check(r.rc != 0, "the old task is gone with the damaged store", r)
    new = submit_id(d, "demo.echo", "fresh")
    t.check(new > tid, "ids go on past the old store's", " (%d after %d)" % (new, tid))
    d.stop()


@t.test
def a_removed_id_counter_does_not_reuse_the_stored_ids():
    """next-id removed (or restored from an older backup than tasks.db): the
    next start moves it past the highest id in the store, says so, and new
    tasks get new ids instead of failing on a clash."""
    d, tid = made_store()
    d = restart(d)
    newest = submit_id(d, "--delay", "600", "demo.echo", "pending")
    d.stop()
    os.unlink(os.path.join(state_of(d), "next-id"))
    d = restart(d)
    line = d.wait_log("was behind the ids the state store records", 10)
    named = int(line.split("up to id ")[1].split(")")[0])
    t.check(named >= newest, "the warning names an id at or above the highest stored one",
            " (%d, %d stored)" % (named, newest))
    new = submit_id(d, "demo.echo", "after")
    t.check(new > newest, "a new id above every stored one", " (%d after %d)" % (new, newest))
    r = d.aioctl("await", new)
    t.eq((r.rc, r.out.strip()), (0, '"after"'), "the new task runs", r)
    t.eq(show(d, tid)["state"], "done", "the stored outcome is still there")
    t.eq(show(d, newest)["state"], "pending", "and the stored pending task")
    d.stop()


@t.test
def local_ids_stop_below_two_to_the_48():
    """protocol.md: local ids stay below 2**48, where a cluster's begin. An
    id counter written near the end (next-id's damage message asks an
    administrator to write a number) gives the ids left, then refuses
    tasks, saying why; one past the end is damage. Ids from 2**48 up were
    once handed out, and those tasks could not be reached (show, await and
    cancel took them for a cluster's)."""
    end = 1 << 48
    d = t.daemon()
    d.stop()
    with open(os.path.join(state_of(d), "next-id"), "w") as f:
        f.write("%d\n" % (end - 2))
    d = restart(d)
    ids = [submit_id(d, "demo.echo", "x%d" % i) for i in range(2)]
    t.eq(ids, [end - 2, end - 1], "the last two local ids")
    r = d.aioctl("submit", "demo.echo", "over")
    t.eq(r.rc, 2, "a submit past the last local id is refused", r)
    t.contains(d.log(), "every local task id (below %d) has been given out" % end,
               "the log says the ids are used up")
    r = d.aioctl("await", ids[1])
    t.eq((r.rc, r.out.strip()), (0, '"x1"'), "the last local id's task is reachable", r)
    d.stop()
    with open(os.path.join(state_of(d), "next-id"), "w") as f:
        f.write("%d\n" % (end + 1))
    rc, err = run_aiod(["--state-dir", state_of(d)])
    t.eq(rc, EXIT_DATAERR, "a next-id past the local ids is damage", " stderr: %r" % err[-2000:])
    t.contains(err, "at most %d" % end, "the message names the bound")


@t.test
def a_removed_id_counter_does_not_reuse_ids_the_store_no_longer_holds():
    """Ids above every stored row were used too: by an attached task (never
    stored) and by a detached one (its row deleted when it ended). With
    next-id removed, as its damage message allows, the next start must not
    hand them out again: the store records how far ids were reserved."""
    d = t.daemon()
    attached = d.aioctl("--json", "run", "demo.echo", "a")
    t.eq(attached.rc, 0, "run", attached)
    detached = d.aioctl("detach", "demo.echo", "b")
    t.eq(detached.rc, 0, "detach", detached)
    used = max(json.loads(attached.lines[-1])["task"], int(detached.out.strip()))
    wait_row_gone(state_of(d), used, "the ended detached task's row")
    d.stop()
    os.unlink(os.path.join(state_of(d), "next-id"))
    d = restart(d)
    new = submit_id(d, "demo.echo", "after")
    t.check(new > used, "a new id above every id used before",
            " (%d, and %d was used)" % (new, used))
    d.stop()


def both_wait_then_follow(d, first, then):
    """After a restart: `first` (delayed) and `then` (after it) both pending;
    cancelling `first` fails `then` with DependencyFailed, as it would have
    before. Stops d."""
    t.eq(show(d, first)["state"], "pending", "the first task after the restart")
    info = show(d, then)
    t.eq(info["state"], "pending", "the task after it, still waiting", " (%r)" % info)
    r = d.aioctl("cancel", first)
    t.eq(r.rc, 0, "cancel the first task", r)
    info = wait_state(d, then, lambda x: x["state"] != "pending", "ended")
    t.eq(info["error"]["kind"], "DependencyFailed", "it still follows the first one")
    d.stop()


@t.test
def a_clean_stop_leaves_after_chains_waiting():
    """SIGTERM cuts off a task that waits for its time and the task that runs
    after it: both keep their records. (The stop's cancel of the first one
    used to fail the second with DependencyFailed, for good.)"""
    d = t.daemon()
    first = submit_id(d, "--delay", "600", "demo.echo", "first")
    then = submit_id(d, "--after", str(first), "demo.echo", "then")
    d.stop()
    d = restart(d)
    both_wait_then_follow(d, first, then)


@t.test
def a_task_after_one_whose_plugin_is_gone_waits_with_it():
    """A row whose function is not loaded stays in the store, untouched; an
    unfinished task that runs after it stays with it, instead of failing
    with DependencyFailed as if its dependency were gone. Both come back
    when the plugin does."""
    d = t.daemon()
    first = submit_id(d, "--delay", "600", "proc.shell", "true")
    then = submit_id(d, "--after", str(first), "demo.echo", "after")
    d.stop()
    only_demo = t.tmpdir("plugins")
    shutil.copy2(os.path.join(t.plugin_dir, "demo.so"), only_demo)
    d = t.daemon(plugin_dir=only_demo, extra_args=d.extra_args, dirpath=d.dir)
    line = d.wait_log("run after one of those", 10)
    t.contains(line, "1 unfinished tasks", "the warning counts the task held back")
    r = d.aioctl("show", then)
    t.check(r.rc != 0, "the dependent is not restored while its dependency's plugin is gone", r)
    d.stop()
    d = restart(d)
    both_wait_then_follow(d, first, then)


@t.test
def a_newer_schema_stops_the_start():
    d, _ = made_store()
    state = state_of(d)
    con = sqlite3.connect(os.path.join(state, "tasks.db"))
    # Far above any schema this aiod knows.
    con.execute("PRAGMA user_version=1000")
    # As a backup restored by hand may be: in rollback-journal mode.
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()
    db = os.path.join(state, "tasks.db")
    before = open(db, "rb").read()
    err = refuses(state, "newer aiod")
    t.contains(err, "schema version 1000", "the message gives the version found")
    t.check(open(db, "rb").read() == before, "the refused store is left byte for byte as it was")
    t.eq([f for f in os.listdir(state) if f.endswith(("-wal", "-shm"))], [],
         "and no -wal or -shm is made beside it")


@t.test
def a_sqlite_file_that_is_not_a_store_is_refused_untouched():
    """A valid SQLite file of another program in tasks.db's place is no
    store: refused as such, left as it was, and moved aside by
    --state-recover=fresh, never adopted (converted, given aiod's tables)."""
    d, _ = made_store()
    state = state_of(d)
    db = os.path.join(state, "tasks.db")
    os.unlink(db)
    clear_wal(state)
    for tables in (["CREATE TABLE foo(x)"], ["CREATE TABLE tasks(x)"]):
        if os.path.exists(db):
            os.unlink(db)
        con = sqlite3.connect(db)
        for sql in tables:
            con.execute(sql)
        con.execute("INSERT INTO %s VALUES(1)" % tables[0].split()[2].split("(")[0])
        con.commit()
        con.close()
        before = open(db, "rb").read()
        err = refuses(state, "not an aiod state store")
        t.contains(err, "--state-recover=fresh", "the message names the way out")
        t.check(open(db, "rb").read() == before, "the file is left byte for byte as it was")
    d = restart(d, extra_args=["--state-recover=fresh"])
    t.check(len(glob.glob(db + ".damaged-*")) == 1, "--state-recover=fresh moved it aside",
            " (%r)" % os.listdir(state))
    submit_id(d, "demo.echo", "fresh")
    d.stop()


@t.test
def a_store_emptied_under_its_log_is_refused():
    """tasks.db empty or gone while its -wal holds commits (a copy that
    missed the main file, a truncation): starting empty would lose every
    acknowledged task the log holds, without a word."""
    for how in ("truncated", "removed"):
        d = t.daemon()
        tid = submit_id(d, "--delay", "3600", "demo.echo", "kept")
        sigkill(d)
        state = state_of(d)
        db = os.path.join(state, "tasks.db")
        t.check(os.path.getsize(db + "-wal") > 0, "the killed daemon left its -wal")
        if how == "truncated":
            os.truncate(db, 0)
        else:
            os.unlink(db)
        err = refuses(state, "-wal")
        t.contains(err, "--state-recover=fresh", "the message names the way out (%s)" % how)
        d = restart(d, extra_args=["--state-recover=fresh"])
        r = d.aioctl("show", tid)
        t.check(r.rc != 0, "a fresh start does start empty", r)
        d.stop()


@t.test
def a_second_daemon_on_the_same_state_dir_is_refused():
    with t.daemon() as d:
        err = refuses(state_of(d), "in use by another aiod")
        d.assert_alive()
        r = d.aioctl("run", "demo.echo", "still here")
        t.eq(r.rc, 0, "the first daemon still serves", r)


# ---------------------------------------------------------------- 6. detached


def wait_row_gone(state, tid, what):
    """Polls tasks.db (a state query, under a deadline) until tid's row is gone."""
    deadline = time.monotonic() + 30
    while tid in db_rows(state):
        t.check(time.monotonic() < deadline, what, " (rows %r)" % db_rows(state))
        time.sleep(0.05)


@t.test
def a_finished_detached_task_leaves_no_row():
    with t.daemon() as d:
        state = state_of(d)
        r = d.aioctl("detach", "demo.sleep", "0.5", "detached")
        t.eq(r.rc, 0, "detach", r)
        tid = int(r.out.strip())
        wait_state(d, tid, running, "running")
        t.eq(db_rows(state).get(tid), pb.TASK_RUNNING, "the running detached task's row")
        wait_row_gone(state, tid, "the ended detached task's row is deleted")
        r = d.aioctl("show", tid)
        t.check(r.rc != 0, "a detached task's outcome is not retained", r)
    t.check(tid not in db_rows(state), "no row after a clean stop either")


@t.test
def a_task_after_an_interrupted_detached_one_is_told_how_it_ended():
    """A detached task leaves the table as it ends. Killed while it ran, it
    was failed Interrupted as its row was read, before the task that runs
    after it (a later id) was read: that one found it gone and failed with
    "no longer known (its outcome was not retained)", not with the reason."""
    d = t.daemon()
    r = d.aioctl("detach", "demo.sleep", "600", "first")
    t.eq(r.rc, 0, "detach", r)
    dep = int(r.out.strip())
    then = submit_id(d, "--after", str(dep), "demo.echo", "then")
    d = kill_while_running(d, dep)
    r = d.aioctl("await", then)
    t.check(r.rc != 0, "the dependent fails with its dependency", r)
    t.contains(r.err, "DependencyFailed", "kind DependencyFailed", r)
    t.contains(r.err, "Interrupted", "the message gives how the dependency ended", r)
    t.check("no longer known" not in r.err, "not that the dependency is unknown", r)
    d.stop()


@t.test
def a_detached_task_cut_off_by_sigterm_runs_again_under_retry():
    conf = conf_file("on_interrupt = demo. retry")
    d = t.daemon(extra_args=["--config", conf])
    state = state_of(d)
    r = d.aioctl("detach", "demo.sleep", "30", "detached")
    t.eq(r.rc, 0, "detach", r)
    tid = int(r.out.strip())
    wait_state(d, tid, running, "running")
    d.stop()
    t.eq(db_rows(state).get(tid), pb.TASK_RUNNING, "its row after the SIGTERM cut it off")
    d = restart(d)
    t.contains(restored_line(d), "1 interrupted and run again", "it is run again")
    info = wait_state(d, tid, running, "running again")
    r = d.aioctl("cancel", tid)
    t.eq(r.rc, 0, "cancel the second attempt", r)
    wait_row_gone(state, tid, "the cancelled detached task's row is deleted")
    d.stop()
    t.check(tid not in db_rows(state), "no row after a clean stop either")
    # Last, as the check above does not depend on it (see the retry test).
    t.eq(info["attempt"], 2, "the detached task's second attempt", " (%r)" % info)
    t.eq([(a["number"], a["error"]["kind"]) for a in info["attempts"]], [(1, "Interrupted")],
         "its first attempt is recorded as attempt 1, Interrupted", " (%r)" % info)


@t.test
def a_detached_task_cut_off_by_sigterm_fails_interrupted_by_default():
    d = t.daemon()
    state = state_of(d)
    r = d.aioctl("detach", "demo.sleep", "60", "cut")
    t.eq(r.rc, 0, "detach", r)
    tid = int(r.out.strip())
    wait_state(d, tid, running, "running")
    d.stop()
    t.eq(db_rows(state).get(tid), pb.TASK_RUNNING, "its row after the SIGTERM cut it off")
    d = restart(d)
    t.contains(restored_line(d), "1 interrupted and failed", "it failed as interrupted")
    line = d.wait_log("task %d " % tid, 10)
    t.contains(line, "Interrupted", "the log gives the detached task's outcome")
    t.contains(line, "aiod stopped at", "after a clean stop, saying when")
    wait_row_gone(state, tid, "the failed detached task's row is deleted")
    d.stop()


# ---------------------------------------------------------------- 7. none


@t.test
def durability_none_keeps_nothing():
    for stop in ("sigterm", "sigkill"):
        d = t.daemon(extra_args=["--durability", "none"])
        done = submit_id(d, "demo.echo", "done")
        t.eq(d.aioctl("await", done).rc, 0, "await")
        waiting = submit_id(d, "--delay", "60", "demo.echo", "waiting")
        if stop == "sigterm":
            d.stop()
        else:
            sigkill(d)
        state = state_of(d)
        t.eq(sorted(f for f in os.listdir(state) if f.startswith("tasks.db")), [],
             "no state store files with durability none")
        d = restart(d)
        for tid in (done, waiting):
            r = d.aioctl("show", tid)
            t.check(r.rc != 0, "task %d is unknown after the %s" % (tid, stop), r)
        t.eq(ps_all(d), [], "no tasks after the restart")
        new = submit_id(d, "demo.echo", "new")
        t.check(new > waiting, "ids still never go back", " (%d after %d)" % (new, waiting))
        d.stop()



@t.test
def durability_none_over_a_store_says_it_is_left_unread():
    """A switch to none over a store holding tasks: they are not run now,
    and came back unannounced at a later start with os or fsync."""
    d = t.daemon()
    later = submit_id(d, "--delay", "3600", "demo.echo", "later")
    d.stop()
    d = restart(d, extra_args=["--durability", "none"])
    line = d.wait_log("is left unread", 10)
    t.contains(line, os.path.join(state_of(d), "tasks.db"), "the warning names the store")
    t.contains(line, "warning", "it is a warning")
    t.check(d.aioctl("show", later).rc != 0, "its task is not there now")
    d.stop()
    d = restart(d, extra_args=[])
    t.eq(show(d, later)["state"], "pending", "and is back with the default durability")
    d.stop()


# ---------------------------------------------------------------- 8. size


def submit_pipelined(d, n, arg, window):
    """n demo.echo(arg) submits on one connection, `window` in flight;
    asserts each is acknowledged."""
    conn = durable_wire.Conn(d.socket)
    try:
        acked = sent = 0
        while acked < n:
            while sent < n and sent - acked < window:
                sent += 1
                conn.send(durable_wire.submit_message(sent + 1, "demo.echo", [arg]))
            r = conn.recv()
            t.check(r.WhichOneof("body") == "submitted", "submit acknowledged", " %r" % r)
            acked += 1
    finally:
        conn.close()


@t.test
def a_mass_cancel_past_retention_is_answered():
    """A cancel of thousands of waiting durable tasks with a small
    retention: the oldest cancelled ones were dropped before their records
    were written, a batch of nothing but those was made of nothing, and no
    commit came to wake the loop: the cancel, and every durable submit of
    every user, waited for unrelated traffic."""
    n = 40000
    d = t.daemon()
    conn = durable_wire.Conn(d.socket)
    ids = []
    try:
        sent = 0
        while len(ids) < n:
            while sent < n and sent - len(ids) < 256:
                sent += 1
                conn.send(durable_wire.submit_message(sent + 1, "demo.echo", ["w"], delay=3600))
            r = conn.recv()
            t.check(r.WhichOneof("body") == "submitted", "submit acknowledged", " %r" % r)
            ids.append(r.submitted.task_id)
    finally:
        conn.close()
    r = d.aioctl("cancel", *ids, timeout=120)
    t.eq(r.rc, 0, "the cancel of %d waiting tasks is answered" % n, r)
    r = d.aioctl("submit", "demo.echo", "after", timeout=60)
    t.eq(r.rc, 0, "and the next durable submit", r)
    d.stop()


def store_mib(state):
    """tasks.db's size in MiB (the daemon stopped: its log checkpointed)."""
    return os.path.getsize(os.path.join(state, "tasks.db")) / 2**20


@t.test
def the_store_stays_bounded_and_gives_space_back():
    """Pruned outcomes free their pages for the next records, so the file
    does not grow with the tasks that went through it; and a store that
    retention emptied gives its free pages back (incremental vacuum, up to
    4 MiB a check once more than a quarter and over 8 MiB is free)."""
    conf = os.path.join(t.tmpdir("conf"), "aiod.conf")
    big = "x" * 4096  # argument and result: about 8 KiB of record per task
    with open(conf, "w") as f:
        f.write("retain_count = 1000000\nretain_bytes = 4G\n")
    d = t.daemon(extra_args=["--config", conf])
    submit_pipelined(d, 6000, big, 256)
    d.stop()
    state = state_of(d)
    full = store_mib(state)
    t.check(full > 40, "6,000 retained 8 KiB outcomes fill the store",
            " (%.1f MiB)" % full)

    # Retention now keeps 100: the restart prunes the rest, and the commits
    # that follow (one submit at a time, one commit each) give the space back.
    with open(conf, "w") as f:
        f.write("retain_count = 100\nretain_bytes = 4G\n")
    d = restart(d)
    submit_pipelined(d, 1500, "small", 1)
    d.stop()
    emptied = store_mib(state)
    t.check(emptied < 16 and emptied < full / 3,
            "the pruned store gave its space back", " (%.1f MiB, was %.1f)" % (emptied, full))

    # As many big outcomes again, pipelined, under retain_count 100: the file
    # stays about where it was instead of growing by the 48 MiB that went
    # through it.
    d = restart(d)
    submit_pipelined(d, 6000, big, 256)
    d.stop()
    after = store_mib(state)
    t.check(after < 16, "6,000 more big outcomes through a store that keeps 100",
            " (%.1f MiB)" % after)


t.main()
