"""Cluster queues end to end (issue 16, docs/cluster.md): aiod hosts sharing
queues through one Redis, driven with aioctl and libaioclient
(cluster_submit.c) against a real redis-server (cluster_lab.py).

Every case starts its own Redis and hosts in its own temp dir. Sizes shrink
under sanitizers (AIOD_SANITIZE) and deadlines grow (cluster_lab.SCALE).
Run one case with AIOD_TEST_ONLY=NAME; keep the dirs with --keep.
"""

from datetime import datetime
import json
import os
import signal
import threading
import time

import harness
from cluster_lab import (CLUSTER_ID_BASE, Cluster, DroppingServer, Host, LoadingProxy, Redis,
                         timeout, until)

t = harness.Suite(__file__)

NOT_CLUSTER = "not part of a cluster"


def three(**kw):
    return [Host("h1", **kw), Host("h2", **kw), Host("h3", **kw)]


def submitter_worker_submitter(capacity=16):
    """h1 and h3 only submit (no queues); h2 alone works q1: a task
    submitted on h1 can only run on h2, and h3 is a third party."""
    return [Host("h1", queues=""), Host("h2", queues="q1", capacity=capacity),
            Host("h3", queues="")]


def xautoclaims(lab):
    """How many XAUTOCLAIM commands Redis ran (INFO commandstats)."""
    for line in lab.redis.command("INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_xautoclaim:calls="):
            return int(line.split("=")[1].split(",")[0])
    return 0


def submit_id_on(host, *args):
    """A local submit on `host`: its id."""
    r = host.aioctl("submit", *args)
    t.eq(r.rc, 0, "submit %s on %s" % (" ".join(args), host.name), r)
    return int(r.out.strip())


def outcome_kind(o):
    return (o.get("error") or {}).get("kind")


def wait_state(lab, host, tid, state, on=None, limit=20):
    """Polls `aioctl show` on `host` until the task is in `state` (and runs
    on host `on`, when given); returns the show dict."""
    def reached():
        info = lab.show(host, tid)
        if info.get("state") == state and (on is None or info.get("host") == on):
            return info
        return None
    return until(reached, "task %d %s%s (seen from %s)"
                 % (tid, state, " on " + on if on else "", host.name), timeout(limit),
                 detail=lambda: "\nshow: %s\nhost logs:%s"
                 % (lab.show(host, tid)["_text"], lab.logs()))


# ---------------------------------------------------------------- no cluster


@t.test
def no_cluster_setting_refuses_queues_and_cluster_ids():
    with t.daemon() as d:
        r = d.aioctl("submit", "--queue", "q1", "demo.sleep", "0")
        t.check(r.rc != 0, "a queue submit to an aiod without 'cluster' must fail", r)
        t.contains(r.err, NOT_CLUSTER, "the error of a queue submit without a cluster", r)
        cid = CLUSTER_ID_BASE + 1
        for cmd in ("await", "show", "cancel"):
            r = d.aioctl(cmd, cid)
            t.check(r.rc != 0, "aioctl %s of a cluster id without a cluster must fail" % cmd, r)
            t.contains(r.err, NOT_CLUSTER, "the error of %s of a cluster id" % cmd, r)
        r = d.aioctl("run", "demo.sleep", "0", "local")
        t.eq((r.rc, r.out), (0, '"local"\n'), "a local run beside the refusals", r)


@t.test
def every_connection_to_redis_has_tcp_keepalive():
    """A Redis host that loses power, or a network partition, sends no FIN:
    an idle connection (the reader's blocking XREADGROUP) would wait for
    good and the host never read its queues again. TCP keepalive ends such
    a connection; each of a host's connections to Redis has it (ss shows
    its keepalive timer)."""
    with Cluster(t, submitter_worker_submitter()) as lab:
        lab.wait_serving("q1", "demo.echo", ["h2"])
        pid = lab["h2"].proc.pid
        # A connection with bytes in flight shows its retransmission timer
        # ("timer:(on,…)") instead: each must show keepalive once it is idle.
        seen, last = {}, ""

        def all_keepalive():
            nonlocal last
            r = harness.run(["ss", "-tnpoH", "state", "established",
                             "( dport = :%d )" % lab.redis.port])
            t.eq(r.rc, 0, "ss", r)
            last = r.out
            for line in r.out.splitlines():
                if "pid=%d," % pid in line:
                    local = line.split()[2]
                    seen[local] = seen.get(local, False) or "keepalive" in line
            return len(seen) >= 2 and all(seen.values())
        until(all_keepalive, "each of h2's connections to Redis showing a keepalive timer",
              timeout(10), interval=0.1, detail=lambda: "%r; last: %r" % (seen, last))


# ---------------------------------------------------------------- 10,000 tasks


@t.test
def ten_thousand_tasks_over_three_hosts_each_done_once():
    n_total = harness.scaled(10000, 3000, 600)
    per = n_total // 3
    with Cluster(t, three(capacity=16)) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h1", "h2", "h3"])
        hosts = [lab["h1"], lab["h2"], lab["h3"]]
        # Three submitters at once, one per host: ids come from one INCR
        # however many hosts submit. 10 ms sleeps at capacity 16 keep a
        # backlog, so no single host can drain the queue alone.
        batches, errors = [None] * 3, []

        def submit(k):
            try:
                batches[k] = lab.submit_many(hosts[k], "q1", per, "demo.sleep", "0.01", "@i")
            except Exception as e:  # re-raised in the main thread
                errors.append(e)
        threads = [threading.Thread(target=submit, args=(k,)) for k in range(3)]
        start = time.monotonic()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        if errors:
            raise errors[0]
        submitted = time.monotonic() - start
        all_ids = [i for b in batches for i in b]
        t.eq(len(set(all_ids)), 3 * per, "distinct ids among %d submits" % (3 * per))
        t.check(min(all_ids) >= CLUSTER_ID_BASE, "every id is a cluster id (>= 2^48)",
                " (smallest %d)" % min(all_ids))

        # Each batch awaited on a host other than the one it was submitted on.
        wrong = []
        for k in range(3):
            outcomes = lab.await_all(hosts[(k + 1) % 3], batches[k], limit=300)
            for index, tid in enumerate(batches[k]):
                o = outcomes[tid]
                if o.get("result") != index:
                    wrong.append((tid, index, o))
        t.eq(wrong[:5], [], "tasks whose outcome is not DONE with their index (first 5 of %d)"
             % len(wrong))
        elapsed = time.monotonic() - start

        # Who ran what, from the task hashes: every task on exactly one of
        # the three hosts, in one attempt, and each host took some.
        hashes = lab.task_hashes(all_ids)
        per_host, bad = {}, []
        for tid, h in hashes.items():
            per_host[h.get("host")] = per_host.get(h.get("host"), 0) + 1
            if h.get("host") not in ("h1", "h2", "h3") or h.get("attempt") != "1":
                bad.append((tid, h))
        t.eq(bad[:3], [], "tasks not run once on h1, h2 or h3 (hash of the first 3 of %d)"
             % len(bad))
        t.eq(sum(per_host.values()), 3 * per, "tasks counted over the hosts %r" % per_host)
        t.check(all(per_host.get(h, 0) > 0 for h in ("h1", "h2", "h3")),
                "each of the three hosts ran some of the tasks", " (per host: %r)" % per_host)
        # Acknowledged and trimmed: nothing pending, and the last trim, with
        # nothing pending, went up to the last entry read, so the stream
        # keeps at most the node that entry is in (XTRIM MINID ~ drops
        # whole nodes, of at most 100 entries: stream-node-max-entries).
        until(lambda: lab.pending("q1", "demo.sleep") == 0,
              "XPENDING aiod:q:q1:demo.sleep aiod count 0", timeout(20))
        left = lab.redis.command("XLEN", "aiod:q:q1:demo.sleep")
        bound = 100
        t.check(left <= bound, "entries left in aiod:q:q1:demo.sleep after %d tasks ended: "
                "at most %d" % (3 * per, bound), " (XLEN %d)" % left)
        for h in hosts:
            h.assert_alive()
        print("   %d tasks: submitted in %.1f s, all done after %.1f s, per host %r, %d entries "
              "left in the stream" % (3 * per, submitted, elapsed, per_host, left))


# ---------------------------------------------------------------- across hosts


@t.test
def await_show_and_logs_from_another_host():
    with Cluster(t, submitter_worker_submitter()) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h2"])
        h1, h3 = lab["h1"], lab["h3"]
        tid = lab.submit(h1, "q1", "demo.sleep", "30", "from-h1")
        info = wait_state(lab, h3, tid, "running")
        t.eq((info.get("queue"), info.get("host"), info.get("owner host")), ("q1", "h2", "h1"),
             "show on h3 of a task submitted on h1 running on h2: queue, host, owner host",
             info["_text"])
        t.eq(info.get("function"), "demo.sleep", "show's function", info["_text"])
        info1 = lab.show(h1, tid)
        t.eq((info1.get("queue"), info1.get("host"), info1.get("owner host")), ("q1", "h2", "h1"),
             "the same task shown on h1", info1["_text"])

        # An await on h3 (not the submitter, not the runner) while it runs,
        # and a second one of the same id on h3 at the same time, as two
        # scripts waiting for one task would: the second was refused "out
        # of memory" (its wait was put in the host's table a second time).
        quick = lab.submit(h1, "q1", "demo.sleep", "1", "quick")
        wait_state(lab, h3, quick, "running", on="h2")
        other = h3.aioctl_bg("await", "--timeout", timeout(30), quick)
        r = h3.aioctl("await", "--timeout", timeout(30), quick, quick, timeout=timeout(30) + 30)
        t.eq((r.rc, r.out), (0, '"quick"\n"quick"\n'),
             "await on h3 of a task submitted on h1, its id given twice", r)
        r = other.wait(timeout=timeout(30) + 30)
        t.eq((r.rc, r.out), (0, '"quick"\n'), "a second await of the same id on h3 at once", r)
        # Again after it ended, on the submitter and on the runner.
        for h in (h1, lab["h2"]):
            r = h.aioctl("await", quick)
            t.eq((r.rc, r.out), (0, '"quick"\n'), "await on %s of an ended cluster task" % h.name,
                 r)
        info = lab.show(h3, quick)
        t.eq((info.get("state"), info.get("result")), ("done", '"quick"'),
             "show on h3 of the ended task", info["_text"])

        # Its output, read on a third host.
        hello = lab.submit(h1, "q1", "demo.hello", "cluster")
        lab.await_all(h3, [hello])
        r = h3.aioctl("logs", hello)
        t.eq((r.rc, r.out), (0, "Hello, cluster!\n"), "logs on h3 of a task that ran on h2", r)
        # Local tasks are not affected: a local submit on h1 has a local id.
        r = h1.aioctl("submit", "demo.sleep", "0")
        t.check(r.rc == 0 and int(r.lines[-1]) < CLUSTER_ID_BASE,
                "a local submit on a cluster host gets a local id", r)

        # One await may not mix cluster and local ids.
        r = h1.aioctl("await", int(r.lines[-1]), quick)
        t.check(r.rc != 0, "an await mixing a local and a cluster id must be refused", r)
        # A gather takes this host's own tasks only: a cluster id is not
        # "no task" (it exists).
        r = h1.aioctl("gather", str(quick))
        t.eq(r.rc, 2, "a gather of a cluster id is refused (bad argument)", r)
        t.contains(r.err, "await it instead", "the refusal says what to do", r)

        r = h1.aioctl("cancel", tid)
        t.eq(r.rc, 0, "cancel of the long task", r)
        t.eq(outcome_kind(lab.await_all(h1, [tid])[tid]), "CancelledError",
             "the long task's end after cancel")


@t.test
def a_burst_of_output_reaches_redis_whole():
    """docs/cluster.md: Redis keeps about the last 10,000 lines of a queued
    task. A task printing 5,000 lines at once kept 1,256: at most 256 were
    on their way to Redis, the rest waited in the host's ring of
    max_output_lines (1,000), which a burst overran, losing lines in the
    middle. The task is now held back, as for a slow local follower."""
    with Cluster(t, submitter_worker_submitter()) as lab:
        lab.wait_serving("q1", "proc.shell", ["h2"])
        h1, h3 = lab["h1"], lab["h3"]
        tid = lab.submit(h1, "q1", "proc.shell", "seq 1 5000")
        lab.await_all(h1, [tid])
        r = h3.aioctl("logs", tid)
        t.eq(r.rc, 0, "logs on h3", r)
        lines = r.out.splitlines()
        t.eq(len(lines), 5000, "every line of the burst reached Redis", r.err)
        t.eq(lines[:3] + lines[-2:], ["1", "2", "3", "4999", "5000"], "in order", r.err)
        t.check(lines == [str(i) for i in range(1, 5001)], "none missing in the middle")
        t.check("no longer kept" not in r.err, "and nothing is said to be lost", r)


@t.test
def output_redis_trimmed_is_said_to_be_no_longer_kept():
    """Redis keeps about the last 10,000 lines of a queued task's output.
    show counted the lines printed with none said gone, logs printed the
    last 10,000 with no note, and logs -f blamed the lines it did not get
    on aioctl reading too slowly."""
    with Cluster(t, submitter_worker_submitter()) as lab:
        lab.wait_serving("q1", "proc.shell", ["h2"])
        h1, h3 = lab["h1"], lab["h3"]
        tid = lab.submit(h1, "q1", "proc.shell", "seq 1 12000")
        lab.await_all(h1, [tid])
        kept = lab.redis.command("XLEN", "aiod:o:%d" % tid)
        t.check(0 < kept < 12000, "Redis trimmed the output stream", " (%d kept)" % kept)
        info = h3.task(tid)
        t.eq((info.get("output_lines"), info.get("output_dropped")), (12000, 12000 - kept),
             "show: the lines printed, and those no longer kept", " %r" % info)
        for args in (("logs",), ("logs", "-f")):
            r = h3.aioctl(*args, tid)
            t.eq(r.rc, 0, " ".join(args), r)
            t.eq(len(r.out.splitlines()), kept, "%s gives the lines kept" % " ".join(args), r.err)
            t.contains(r.err, "the first %d lines of task %d are no longer kept" % (12000 - kept,
                                                                                   tid),
                       "%s says the first ones are gone" % " ".join(args), r)
            t.check("overflowed" not in r.err, "%s blames no slow reader" % " ".join(args), r)


@t.test
def show_gives_a_queued_tasks_arguments_as_values():
    """aioctl(1): show's args are JSON values, as for a local task. A queued
    task's were the text typed ("0.2", "\"x\""): the submitting host now
    stores them as the function takes them, when it has the function."""
    with Cluster(t, submitter_worker_submitter()) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h2"])
        h1, h3 = lab["h1"], lab["h3"]
        local = submit_id_on(h1, "demo.sleep", "0.2", '"x"')
        tid = lab.submit(h1, "q1", "demo.sleep", "0.2", '"x"')
        for i in (local, tid):
            r = h1.aioctl("await", i)
            t.eq(r.rc, 0, "task %d ran" % i, r)
        want = json.loads(h1.aioctl("show", "--json", local).out)["args"]
        t.eq(want, [0.2, "x"], "the local task's args")
        for host in (h1, h3):
            r = host.aioctl("show", "--json", tid)
            t.eq(r.rc, 0, "show --json on %s" % host.name, r)
            t.eq(json.loads(r.out)["args"], want, "the queued task's args seen from %s"
                 % host.name, r)


@t.test
def logs_follow_from_another_host():
    gather_lines = ["Starting main function", "Hello from my async function 1",
                    "Hello from my async function 2", "Done with async function 2",
                    "Done with async function 1", "Done with main function"]
    with Cluster(t, submitter_worker_submitter()) as lab:
        lab.wait_serving("q1", "demo.main_gather", ["h2"])
        h1, h3 = lab["h1"], lab["h3"]
        tid = lab.submit(h1, "q1", "demo.main_gather")
        # Followed from h3 from the start: its lines come as h2 prints them
        # (the first well before the task's 3 s are over), and logs -f
        # returns when the task ends.
        follow = h3.aioctl_bg("logs", "-f", tid)
        first = follow.next_line(timeout(20))
        t.check(first is not None, "logs -f on h3 printed a line before ending")
        t.eq(first[1], gather_lines[0], "the first line followed from h3")
        t.check(first[0] < 2.5, "the first line reached h3 while the task ran",
                " (after %.2f s)" % first[0])
        r = follow.wait(timeout(30))
        t.eq((r.rc, r.lines), (0, gather_lines), "logs -f on h3 of a task that ran on h2", r)
        o = lab.await_all(h3, [tid])[tid]
        t.eq(o.get("result"), ["my_async_function1 result", "my_async_function2 result"],
             "the result, awaited on h3")


NOBODY = 65534  # Debian's "nobody" user and "nogroup" group


def as_nobody(host, *args, background=False, limit=60):
    """aioctl -s SOCKET ARGS... as uid/gid 65534 (needs root): a Result, or
    the Popen when `background`."""
    import subprocess

    def drop():
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    argv = host.ctl_argv(*args)
    if background:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=harness.clean_env(),
                                preexec_fn=drop)
    start = time.monotonic()
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=limit,
                           env=harness.clean_env(), preexec_fn=drop)
    except subprocess.TimeoutExpired:
        harness.fail("aioctl %s as nobody still ran after %.0f s" % (" ".join(argv[3:]), limit))
    return harness.Result(argv, p.returncode, p.stdout.decode(), p.stderr.decode(),
                          time.monotonic() - start)


def redis_clients_in(lab, command):
    """How many connections to Redis are running (or blocked in) `command`."""
    return sum(1 for line in lab.redis.command("CLIENT", "LIST").splitlines()
               if "cmd=%s " % command in line)


@t.test
def followers_of_one_user_are_bounded():
    """Each `aioctl logs` of a queued task holds a Redis connection of its
    own while it reads: one unprivileged user opening thousands (one socket
    connection takes max_in_flight of them) took Redis to maxclients and cut
    every host of the cluster off. A user who is not an administrator may
    have 16 at once on a host; the next is refused ERROR_LIMIT."""
    if os.geteuid() != 0:
        harness.fail("this test plays another user and needs root (CI runs as root); it was "
                     "not run")
    with Cluster(t, [Host("h1", capacity=4)]) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h1"])
        h1 = lab["h1"]
        for path in (t._tmp, lab.root, lab.dirs["h1"]):
            os.chmod(path, 0o755)
        os.chmod(h1.socket, 0o666)
        r = as_nobody(h1, "submit", "--queue", "q1", "demo.sleep", "60")
        t.eq(r.rc, 0, "nobody submits to the queue", r)
        tid = int(r.lines[-1])
        follows = [as_nobody(h1, "logs", "-f", tid, background=True) for _ in range(16)]
        try:
            until(lambda: redis_clients_in(lab, "xread") == 16,
                  "16 followers waiting in Redis", timeout(20))
            r = as_nobody(h1, "logs", "-f", tid, limit=timeout(5))
            t.check(r.rc != 0, "a 17th follower of one user is refused", r)
            t.contains(r.err, "too many", "the refusal says why", r)
        finally:
            for p in follows:
                p.kill()
                p.wait()
        until(lambda: redis_clients_in(lab, "xread") == 0, "the followers gone", timeout(20))
        r = as_nobody(h1, "logs", tid)
        t.eq(r.rc, 0, "a follower once the others are gone", r)
        t.eq(h1.aioctl("cancel", tid).rc, 0, "cancel of nobody's task")


@t.test
def cancel_from_one_host_of_a_task_running_on_another():
    with Cluster(t, submitter_worker_submitter()) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h2"])
        h1, h2, h3 = lab["h1"], lab["h2"], lab["h3"]
        tid = lab.submit(h1, "q1", "demo.sleep", "60", "never")
        wait_state(lab, h1, tid, "running", on="h2")
        start = time.monotonic()
        r = h3.aioctl("cancel", tid)
        t.eq(r.rc, 0, "aioctl -s h3 cancel of a task running on h2", r)
        r = h1.aioctl("--json", "await", "--timeout", timeout(20), tid, timeout=timeout(20) + 30)
        t.eq(r.rc, 5, "await's exit status for a cancelled task (5)", r)
        o = json.loads(r.lines[-1])
        t.eq(outcome_kind(o), "CancelledError", "the cancelled task's outcome", r)
        t.check(time.monotonic() - start < timeout(20),
                "the cancel reached h2 well before the 60 s sleep ended")
        info = lab.show(h2, tid)
        t.eq((info.get("state"), info.get("host")), ("cancelled", "h2"),
             "show on the running host after the cancel", info["_text"])
        # h2 is free again: the next task runs.
        nxt = lab.submit(h3, "q1", "demo.sleep", "0", "next")
        t.eq(lab.await_all(h3, [nxt])[nxt].get("result"), "next", "a task after the cancel")


@t.test
def clusters_on_two_databases_are_independent_and_events_are_only_hints():
    """Two clusters on databases 0 and 3 of one Redis number their tasks
    alike. Both shared the channel aiod:ev (pub/sub ignores SELECT): a
    cancel in one cancelled the other's task of the same id, and an end
    there answered an await here with a task still running. An event is a
    hint, whoever sent it: a forged "done ID" answered an await with
    {"state":"running"} (exit 1), and a forged "cancel ID" cancelled a task
    whose hash has no cancel flag."""
    hosts = [Host("a", capacity=4), Host("b", capacity=4, db=3)]
    with Cluster(t, hosts) as lab:
        lab.wait_serving("q1", "demo.sleep", ["a", "b"])
        a, b = lab["a"], lab["b"]
        ia = lab.submit(a, "q1", "demo.sleep", "60", "a")
        ib = lab.submit(b, "q1", "demo.sleep", "60", "b")
        t.eq(ia, ib, "the first ids of two clusters on one Redis")
        wait_state(lab, a, ia, "running", on="a")
        wait_state(lab, b, ib, "running", on="b")
        # Each cluster has a channel of its own (a's is database 0's); a
        # subscribed before the forged events below.
        until(lambda: lab.redis.command("PUBSUB", "NUMSUB", "aiod:ev", "aiod:ev:3") ==
              ["aiod:ev", 1, "aiod:ev:3", 1], "one subscriber on each cluster's events channel",
              timeout(10), detail=lambda: " %r" % lab.redis.command("PUBSUB", "CHANNELS"))
        waiter = a.aioctl_bg("--json", "await", "--timeout", timeout(30), ia)
        until(lambda: lab.redis.command("HEXISTS", "aiod:t:%d" % ia, "w"),
              "a's await registered (the field w)", timeout(10))
        # Forged events for a's task, on the channel a listens to.
        lab.redis.command("PUBLISH", "aiod:ev", "done %d" % ia)
        lab.redis.command("PUBLISH", "aiod:ev", "cancel %d" % ia)
        # b's task of the same id ends cancelled, in b's cluster only.
        t.eq(b.aioctl("cancel", ib).rc, 0, "cancel of b's task on b")
        t.eq(outcome_kind(lab.await_all(b, [ib])[ib]), "CancelledError", "b's task cancelled")
        # A real cancel in a's cluster: a handles its events in order, so
        # once this one is through, the forged ones (and b's) were too.
        ja = lab.submit(a, "q1", "demo.sleep", "60", "later")
        wait_state(lab, a, ja, "running", on="a")
        t.eq(a.aioctl("cancel", ja).rc, 0, "cancel of a's second task")
        t.eq(outcome_kind(lab.await_all(a, [ja])[ja]), "CancelledError", "a's second task")
        t.eq(lab.show(a, ia).get("state"), "running",
             "a's first task after b's cancel and the forged events")
        if waiter.proc.poll() is not None:
            t.check(False, "the await of a's running task still waits",
                    " (it ended:%s)" % waiter.wait(timeout=10))
        t.eq(a.aioctl("cancel", ia).rc, 0, "cancel of a's first task")
        r = waiter.wait(timeout=timeout(30) + 30)
        t.eq(r.rc, 5, "the await answers once the task ended: cancelled (exit 5)", r)
        t.eq(outcome_kind(json.loads(r.lines[-1])), "CancelledError", "its outcome", r)


@t.test
def cancel_of_a_queued_task_ends_it_before_it_starts():
    # h2 runs one task at a time: the second one waits in the stream.
    with Cluster(t, submitter_worker_submitter(capacity=1)) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h2"])
        h1, h3 = lab["h1"], lab["h3"]
        busy = lab.submit(h1, "q1", "demo.sleep", "60", "busy")
        wait_state(lab, h1, busy, "running", on="h2")
        queued = lab.submit(h1, "q1", "demo.sleep", "0", "must-not-run")
        info = lab.show(h3, queued)
        t.eq(info.get("state"), "pending", "a task queued behind a full host", info["_text"])
        r = h3.aioctl("cancel", queued)
        t.eq(r.rc, 0, "cancel of a queued task from h3", r)
        o = lab.await_all(h1, [queued], limit=10)[queued]
        t.eq(outcome_kind(o), "CancelledError", "a queued task cancelled", o)
        # Free h2: it must skip the cancelled entry, not run it.
        r = h1.aioctl("cancel", busy)
        t.eq(r.rc, 0, "cancel of the busy task", r)
        lab.await_all(h1, [busy])
        after = lab.submit(h1, "q1", "demo.sleep", "0", "after")
        t.eq(lab.await_all(h1, [after])[after].get("result"), "after",
             "a task submitted after the cancelled one")
        info = lab.show(h3, queued)
        t.eq((info.get("state"), info.get("started")), ("cancelled", "-"),
             "the cancelled queued task never started", info["_text"])
        until(lambda: lab.pending("q1", "demo.sleep") == 0, "no pending entries", timeout(10))


@t.test
def an_outcome_is_written_when_its_stream_is_gone():
    # The finish script trims the stream after writing the outcomes: a
    # stream (or group) that is gone, deleted by hand or lost by a Redis
    # without its append-only file, must not fail the call that wrote them.
    # Capacity 1: with its one slot taken, the host has no read waiting in
    # Redis, which would see the stream go and make it again at once.
    with Cluster(t, [Host("h1", capacity=1)]) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h1"])
        h1 = lab["h1"]
        tid = lab.submit(h1, "q1", "demo.sleep", "3", "kept")
        wait_state(lab, h1, tid, "running", on="h1")
        t.eq(lab.redis.command("DEL", "aiod:q:q1:demo.sleep"), 1,
             "DEL of the stream while its task runs")
        o = lab.await_all(h1, [tid], limit=30)[tid]
        t.eq(o.get("result"), "kept", "the outcome of a task whose stream was deleted", o)
        log = h1.log()
        for bad in ("cannot record", "another host had taken it over"):
            t.check(bad not in log, "the host's log says no '%s'" % bad, "\n" + log[-1500:])


@t.test
def an_older_acl_user_is_said_once_and_loses_nothing():
    # An ACL user made from an older docs/cluster.md lacks +script|load,
    # +evalsha, +xtrim and +time: the host sends the scripts whole, its
    # outcomes are still written, it claims without the stall check, and it
    # says once why, for each, in its log.
    with Cluster(t, [Host("h1")]) as lab:
        lab.redis.command("ACL", "SETUSER", "default", "-script|load", "-evalsha", "-xtrim",
                          "-time")
        lab["h1"].stop(timeout=timeout(30))
        h1 = lab.start_host("h1")
        lab.wait_serving("q1", "demo.sleep", ["h1"])
        ids = [lab.submit(h1, "q1", "demo.sleep", "0", "r%d" % i) for i in range(3)]
        outs = lab.await_all(h1, ids, limit=20)
        t.eq([outs[i].get("result") for i in ids], ["r0", "r1", "r2"],
             "the outcomes of three tasks with SCRIPT LOAD and XTRIM refused")
        log = h1.log()
        for said in ("refused to load the scripts", "cannot trim the queues' streams"):
            t.eq(log.count(said), 1, "'%s' said once in h1's log" % said, "\n" + log[-2000:])
        t.check("cannot record" not in log, "h1's log says no 'cannot record'", "\n" + log[-2000:])
        # Without +time the claim script is refused: claims go on, plain
        # (they stopped altogether when this check came in).
        h1.wait_log("claims go without the check for a stall", timeout(30))
        base = xautoclaims(lab)
        until(lambda: xautoclaims(lab) > base, "plain XAUTOCLAIMs after the refusal",
              timeout(30))
        t.eq(h1.log().count("claims go without the check"), 1, "said once")


# ---------------------------------------------------------------- kill -9


def kill_one_host_mid_run(settings):
    """Twelve tasks running on three hosts of capacity 4 and six more
    queued; h3 is killed with SIGKILL. Returns (ids, the ids that were
    running on h3, outcomes awaited on h1, lab) with the lab stopped."""
    seconds = str(harness.scaled(6, 12, 25))
    hosts = [Host(n, capacity=4, settings=settings) for n in ("h1", "h2", "h3")]
    with Cluster(t, hosts) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h1", "h2", "h3"])
        h1 = lab["h1"]
        ids = [lab.submit(h1, "q1", "demo.sleep", seconds, str(i)) for i in range(18)]

        def twelve_running():
            infos = {i: lab.show(h1, i) for i in ids}
            running = {i: inf for i, inf in infos.items() if inf.get("state") == "running"}
            return running if len(running) == 12 else None
        running = until(twelve_running, "12 of the 18 tasks running (4 per host)", timeout(30),
                        interval=0.1, detail=lambda: "\nhost logs:" + lab.logs())
        on = {}
        for i, inf in running.items():
            on.setdefault(inf.get("host"), []).append(i)
        t.eq(sorted((h, len(v)) for h, v in on.items()), [("h1", 4), ("h2", 4), ("h3", 4)],
             "running tasks per host (capacity 4 each)")
        lab["h3"].kill()
        outcomes = lab.await_all(h1, ids, limit=120)
        for h in ("h1", "h2"):
            lab[h].assert_alive()
        until(lambda: lab.pending("q1", "demo.sleep") == 0,
              "no pending entries once every task ended", timeout(20))
        shows = {i: lab.show(h1, i) for i in on["h3"]}
        return ids, on["h3"], outcomes, shows


@t.test
def kill9_of_a_host_under_on_interrupt_fail():
    ids, victims, outcomes, _ = kill_one_host_mid_run([])
    t.eq(sorted(outcomes), sorted(ids), "an outcome for every task")
    for i in ids:
        o = outcomes[i]
        if i in victims:
            t.eq(outcome_kind(o), "Interrupted", "task %d that was running on the killed h3" % i,
                 " %r" % o)
            t.contains(o["error"]["message"], "h3", "the Interrupted message names the host",
                       " %r" % o)
        else:
            t.eq(o.get("result"), ids.index(i), "task %d that was not running on h3" % i,
                 " %r" % o)


@t.test
def kill9_of_a_host_under_on_interrupt_retry():
    ids, victims, outcomes, shows = kill_one_host_mid_run(["on_interrupt = demo.sleep retry"])
    t.eq(sorted(outcomes), sorted(ids), "an outcome for every task")
    for i in ids:
        t.eq(outcomes[i].get("result"), ids.index(i), "task %d after h3's kill -9 (retry)" % i,
             " %r" % outcomes[i])
    for i in victims:
        t.check(shows[i].get("host") in ("h1", "h2"),
                "task %d that h3 was running ran again on h1 or h2" % i, shows[i]["_text"])
        # aioctl(1): "attempts: A" once run again (no bound to give); show
        # had no such line.
        t.eq(shows[i].get("attempts"), "2", "task %d's show says it is its second attempt" % i,
             shows[i]["_text"])


@t.test
def a_restarted_host_takes_back_its_own_entries():
    # h2 alone works q1; killed with two tasks running and restarted, it
    # claims its own pending entries: under retry both run again (on h2,
    # the only host there is), the two still queued run normally.
    hosts = [Host("h1", queues=""),
             Host("h2", capacity=2, settings=["on_interrupt = demo.sleep retry"])]
    with Cluster(t, hosts) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h2"])
        h1 = lab["h1"]
        seconds = str(harness.scaled(3, 6, 12))
        ids = [lab.submit(h1, "q1", "demo.sleep", seconds, str(i)) for i in range(4)]
        until(lambda: sum(lab.show(h1, i).get("state") == "running" for i in ids) == 2,
              "two tasks running on h2", timeout(20), detail=lambda: "\nhost logs:" + lab.logs())
        lab["h2"].kill()
        lab.start_host("h2")
        outcomes = lab.await_all(h1, ids, limit=120)
        t.eq([outcomes[i].get("result") for i in ids], [0, 1, 2, 3],
             "the results after h2's kill -9 and restart")
        t.eq([lab.show(h1, i).get("host") for i in ids], ["h2"] * 4, "where the tasks ran")
        until(lambda: lab.pending("q1", "demo.sleep") == 0, "no pending entries", timeout(20))


def limited_and_free_worker(setting):
    """h1 submits; h2 and h3 work q1 with capacity 4, h2 under `setting`."""
    return [Host("h1", queues=""), Host("h2", capacity=4, settings=[setting]),
            Host("h3", capacity=4)]


def eight_sleeps(lab):
    """Eight demo.sleep tasks queued through h1: (h1, their ids)."""
    lab.wait_serving("q1", "demo.sleep", ["h2", "h3"])
    h1 = lab["h1"]
    seconds = str(harness.scaled(1, 2, 4))
    return h1, [lab.submit(h1, "q1", "demo.sleep", seconds, str(i)) for i in range(8)]


@t.test
def a_host_takes_no_more_of_a_function_than_its_limit_lets_start():
    """The prefetch is bounded by what can start: h2's limit of demo.sleep
    is 1, yet it took up to its capacity (4), running one and holding the
    rest marked running in Redis while h3 had room, where a kill -9 would
    have ended them Interrupted though they never ran."""
    with Cluster(t, limited_and_free_worker("limit = demo.sleep 1")) as lab:
        h1, ids = eight_sleeps(lab)
        most, deadline = 0, time.monotonic() + timeout(120)
        while time.monotonic() < deadline:
            with lab.redis.conn() as c:
                states = [c.command("HMGET", "aiod:t:%d" % i, "state", "host") for i in ids]
            most = max(most, sum(1 for st, h in states if st == "running" and h == "h2"))
            if all(st in ("done", "failed", "cancelled") for st, _ in states):
                break
            time.sleep(0.05)
        t.check(most <= 1, "h2 never held more tasks of demo.sleep than its limit lets run",
                " (%d at once)" % most)
        outcomes = lab.await_all(h1, ids)
        t.eq(sorted(str(outcomes[i].get("result")) for i in ids), [str(i) for i in range(8)],
             "every task done once")


def blocked_readers(lab):
    """How many connections wait in a blocking XREADGROUP (a worker host's
    reader when its queues are empty)."""
    return sum(1 for line in lab.redis.command("CLIENT", "LIST").splitlines()
               if "cmd=xreadgroup" in line and "flags=b" in line)


def periods_pass(lab, name, n):
    """Waits until host `name` advertised itself n more times (once per
    period, on its command connection: what it sent there before the
    first of them has run in Redis by the n-th)."""
    def seen():
        return lab.redis.command("HGET", "aiod:host:%s" % name, "seen_ms")
    marks = [seen()]
    for _ in range(n):
        marks.append(until(lambda: (lambda v: v if v != marks[-1] else None)(seen()),
                           "host %s advertising again" % name, timeout(10), interval=0.02))


@t.test
def a_host_at_max_tasks_takes_no_queued_tasks_and_queues_again_one_it_read():
    """A host whose max_tasks was full (here of a local task) fetched a
    whole burst at every period, up to its capacity, put each back to
    queued and held the entries for the visibility timeout while other
    hosts sat idle. Its fetch now asks for no more than max_tasks lets
    start. An entry its blocking read took just before the limit filled is
    still put back to queued (not failed: an acknowledged task runs where
    there is room)."""
    hosts = [Host("h1", queues=""), Host("h2", capacity=8, settings=["max_tasks = 1"]),
             Host("h3", capacity=8)]
    with Cluster(t, hosts, start_only=["h1", "h2"]) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h2"])
        h1, h2 = lab["h1"], lab["h2"]
        # h2's reader waits in Redis for an entry; then a local task fills
        # max_tasks: the entry that read takes cannot start.
        until(lambda: blocked_readers(lab) == 1, "h2's reader waiting in XREADGROUP",
              timeout(10))
        submit_id_on(h2, "demo.sleep", "60")
        first = lab.submit(h1, "q1", "demo.sleep", "0", "first")
        h2.wait_log("max_tasks is reached here; queued again", timeout(10))
        ids = [lab.submit(h1, "q1", "demo.sleep", "0", str(i)) for i in range(8)]
        # Two of h2's periods: the fetch the first one sent has run.
        periods_pass(lab, "h2", 2)
        r = lab.redis.command("XPENDING", "aiod:q:q1:demo.sleep", "aiod")
        t.eq(r[3], [["h2", "1"]], "the entries h2 holds: only the one its blocking read took",
             "\nhost logs:" + lab.logs())
        t.eq(lab.redis.command("HGET", "aiod:t:%d" % first, "state"), "queued",
             "the task h2 read but could not start")
        # h3 takes the burst at once (h2's entry would be claimed after the
        # visibility timeout, by a host that has been up for 7 s: not waited
        # for here).
        lab.start_host("h3")
        outcomes = lab.await_all(h1, ids)
        t.eq([str(outcomes[i].get("result")) for i in ids], [str(i) for i in range(8)],
             "the burst's outcomes")
        t.eq({h.get("host") for h in lab.task_hashes(ids).values()}, {"h3"},
             "where the burst ran")
        t.eq(sum(1 for line in h2.log().splitlines() if "queued again" in line), 1,
             "h2 queued again only the task its blocking read took")
        t.eq(h1.aioctl("cancel", first).rc, 0, "cancel of the task put back")


# Takes an entry for host ARGV[1] as lua_fetch would, in one step (the
# host, reading the same stream, cannot get it first), and marks its task
# running there under the host's run mark ARGV[2]: the state a fetch whose
# reply the link lost leaves behind.
FORGE_LOST_FETCH = """
local eid = redis.call('XADD', KEYS[1], '*', 'id', ARGV[3])
local r = redis.call('XREADGROUP', 'GROUP', 'aiod', ARGV[1], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
local v = redis.call('HMGET', KEYS[3], 'q', 'f', 'uid', 'ohost', 'created', 't')
redis.call('HSET', KEYS[2], 'state', 'running', 'host', ARGV[1], 'run', ARGV[2], 'started',
  v[5], 'attempt', '1', 'q', v[1], 'f', v[2], 'uid', v[3], 'ohost', v[4], 'created', v[5],
  'stream', KEYS[1], 'eid', eid, 't', v[6])
return {eid, r[1][2][1][1]}
"""


@t.test
def a_fetch_whose_reply_was_lost_is_run_not_taken_for_interrupted():
    """Redis killed as a fetch ran: its script marked the task running on
    this host, but the reply never came, so the host never started it.
    When the link came back the host read its own pending entry again and
    took it for one a dead process left: Interrupted (on_interrupt =
    fail), though it never ran. The task's `run` mark says which process
    took it."""
    with Cluster(t, submitter_worker_submitter()) as lab:
        lab.wait_serving("q1", "demo.echo", ["h2"])
        h1 = lab["h1"]
        model = lab.submit(h1, "q1", "demo.echo", "lost reply")
        lab.await_all(h1, [model])
        stream = lab.redis.command("HGET", "aiod:t:%d" % model, "stream")
        mark = lab.redis.command("HGET", "aiod:host:h2", "run")
        t.check(bool(mark), "h2 advertises its run mark", " (%r)" % mark)
        forged = model + 1000
        eid, read = lab.redis.command("EVAL", FORGE_LOST_FETCH, 3, stream, "aiod:t:%d" % forged,
                                      "aiod:t:%d" % model, "h2", mark, str(forged))
        t.eq(read, eid, "the forged entry is pending for h2")
        # The link goes down and comes back: h2 reads its own pending entries.
        lab.redis.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        until(lambda: lab.redis.command("HGET", "aiod:t:%d" % forged, "state") != "running"
              or None, "the forged task settled once h2 is back", timeout(60),
              detail=lambda: "\nhost logs:" + lab.logs())
        until(lambda: h1.aioctl("show", model).rc == 0 or None, "h1 back in the cluster",
              timeout(60))
        out = lab.await_all(h1, [forged], limit=60)[forged]
        t.eq(out.get("result"), "lost reply", "the task runs (it never did)", " %r" % out)


def two_queues_one_limit():
    """h1 submits; h2 serves demo.sleep on q1 and q2 under a limit of 1."""
    return [Host("h1", queues=""),
            Host("h2", queues="q1,q2", capacity=4, settings=["limit = demo.sleep 1"])]


def one_running_one_waiting(lab):
    """Queues a task on q1 and one on q2 while h2 is away; its first fetch
    takes both (each stream is given the function's room): one runs, one
    waits on h2 for the limit. Their ids."""
    for q in ("q1", "q2"):
        lab.wait_serving(q, "demo.sleep", ["h2"])
    h1 = lab["h1"]
    lab["h2"].stop()
    seconds = str(harness.scaled(1, 2, 4))
    ids = [lab.submit(h1, q, "demo.sleep", seconds, q) for q in ("q1", "q2")]
    lab.start_host("h2")
    until(lambda: all(lab.show(h1, i).get("state") == "running" for i in ids) or None,
          "h2 took both (one runs, one waits for its limit)", timeout(20),
          detail=lambda: "\nhost logs:" + lab.logs())
    return ids


@t.test
def a_cancel_that_meets_an_unstart_is_kept():
    """A cancel asked (cancel = 1 in the hash) while the host puts the task
    back to queued: the task was queued again with the flag, queued tasks
    never read it, and the host that took it next ran it. It ends
    cancelled. The cancel is made here without its PUBLISH and h2 is not
    started again, so only the hash carries it; h3 claims what h2 held."""
    hosts = two_queues_one_limit() + [Host("h3", queues="q1,q2", capacity=4)]
    with Cluster(t, hosts, start_only=["h1", "h2"]) as lab:
        ids = one_running_one_waiting(lab)
        for i in ids:
            lab.redis.command("HSET", "aiod:t:%d" % i, "cancel", "1")
        lab.start_host("h3")
        lab.wait_joined(["h3"])
        lab["h2"].stop()
        outcomes = lab.await_all(lab["h1"], ids, limit=120)
        t.eq([str(outcome_kind(outcomes[i])) for i in ids], ["CancelledError"] * 2,
             "both end cancelled (the one cut off, and the one put back)",
             " %r\nhost logs:%s" % (outcomes, lab.logs()))


@t.test
def a_clean_stop_queues_again_the_tasks_a_host_held_but_had_not_started():
    """docs/cluster.md, "A host stopped cleanly": a task marked running but
    not started when the stop began is put back to queued. A SIGTERM
    failed both Interrupted; only the one that ran may follow on_interrupt
    (fail)."""
    with Cluster(t, two_queues_one_limit()) as lab:
        ids = one_running_one_waiting(lab)
        lab["h2"].stop()
        lab.start_host("h2")
        outcomes = lab.await_all(lab["h1"], ids, limit=120)
        kinds = sorted(str(outcome_kind(outcomes[i])) for i in ids)
        t.eq(kinds, ["Interrupted", "None"],
             "one task interrupted (the one running), the other run after the restart",
             " %r\nhost logs:%s" % (outcomes, lab.logs()))


@t.test
def redis_restart_mid_run_loses_nothing():
    n = 30
    seconds = harness.scaled(2, 4, 8)
    with Cluster(t, three(capacity=4)) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h1", "h2", "h3"])
        h1, h2 = lab["h1"], lab["h2"]
        ids = lab.submit_many(h1, "q1", n, "demo.sleep", str(seconds), "@i")
        until(lambda: sum(lab.show(h1, i).get("state") == "running" for i in ids) >= 6,
              "some tasks running", timeout(20), interval=0.1,
              detail=lambda: "\nhost logs:" + lab.logs())
        lab.redis.kill()
        # Redis stays down longer than a task runs (the scenario, not a wait
        # for an event): every task running at the kill ends meanwhile, and
        # its outcome must be kept and written once Redis is back.
        time.sleep(seconds + 1)
        for h in ("h1", "h2", "h3"):
            lab[h].assert_alive()
        lab.redis.start()
        # The hosts reconnect with backoff (up to 5 s between tries): wait
        # until each answers a show of a cluster task, which needs Redis.
        until(lambda: all(lab[h].aioctl("show", ids[0]).rc == 0 for h in ("h1", "h2", "h3")),
              "every host back on Redis (show of a cluster id answered)", timeout(30),
              interval=0.2, detail=lambda: "".join(
                  "\nshow on %s:%s" % (h, lab[h].aioctl("show", ids[0])) for h in ("h1", "h2", "h3"))
              + "\nredis ping: %s\nhost logs:%s" % (lab.redis.ping(), lab.logs()))
        outcomes = lab.await_all(h2, ids, limit=120)
        wrong = [(i, outcomes[i]) for k, i in enumerate(ids) if outcomes[i].get("result") != k]
        t.eq(wrong, [], "tasks submitted before Redis restarted that did not end DONE")
        new = lab.submit(h1, "q1", "demo.sleep", "0", "after")
        t.check(new > max(ids), "the id counter survived the restart",
                " (new %d, largest before %d)" % (new, max(ids)))
        t.eq(lab.await_all(h1, [new])[new].get("result"), "after", "a submit after the restart")
        until(lambda: lab.pending("q1", "demo.sleep") == 0, "no pending entries", timeout(20))


@t.test
def redis_down_refuses_queue_submits_but_not_local_runs():
    with Cluster(t, [Host("h1"), Host("h2")]) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h1", "h2"])
        h1 = lab["h1"]
        before = lab.submit(h1, "q1", "demo.sleep", "0", "before")
        t.eq(lab.await_all(lab["h2"], [before])[before].get("result"), "before",
             "a task while Redis is up")
        lab.redis.shutdown()
        r = h1.aioctl("submit", "--queue", "q1", "demo.sleep", "0")
        t.check(r.rc != 0, "a queue submit with Redis down must fail", r)
        t.check(("Redis" in r.err or "cluster" in r.err) and "unreachable" in r.err,
                "the error says the cluster's Redis is unreachable", r)
        t.contains(r.err, "127.0.0.1:%d" % lab.redis.port, "the error names Redis's address", r)
        r = h1.aioctl("run", "demo.sleep", "0", "local")
        t.eq((r.rc, r.out), (0, '"local"\n'), "a local run with Redis down", r)
        r = lab["h2"].aioctl("submit", "demo.sleep", "0")
        t.eq(r.rc, 0, "a local submit with Redis down", r)
        # The hosts still stop cleanly (exit 0) with Redis down: lab.stop.


@t.test
def a_stopped_redis_fails_queue_requests_instead_of_hanging_them():
    """A Redis process that is stopped (SIGSTOP; a hung Redis, a paused VM)
    keeps its TCP connections open: a queue submit waited for the whole
    stall. The connection owed a reply for LIMIT_CLUSTER_REPLY_TIMEOUT_MS is
    given up; the submit fails with a message saying so, local tasks go on,
    and once Redis runs again so do queue submits."""
    with Cluster(t, [Host("h1")]) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h1"])
        h1 = lab["h1"]
        lab.redis.proc.send_signal(signal.SIGSTOP)
        try:
            r = h1.aioctl("submit", "--queue", "q1", "demo.sleep", "0", timeout=timeout(120))
            t.eq(r.rc, 3, "a queue submit to a stopped Redis fails (unavailable)", r)
            t.contains(r.err, "no answer for", "and says Redis did not answer", r)
            # It was sent: Redis runs it once it goes on. "unreachable"
            # read as "nothing was queued".
            t.contains(r.err, "may have been queued", "and that the task may be queued", r)
            t.check("unreachable" not in r.err, "a submit that was sent is not said unreachable",
                    r)
            r = h1.aioctl("submit", "--queue", "q1", "demo.sleep", "0", timeout=timeout(120))
            t.eq(r.rc, 3, "the next one fails too, while Redis is stopped", r)
            r = h1.aioctl("run", "demo.sleep", "0", "local")
            t.eq((r.rc, r.out), (0, '"local"\n'), "a local run meanwhile", r)
        finally:
            lab.redis.proc.send_signal(signal.SIGCONT)
        tid = until(lambda: (lambda r: int(r.lines[-1]) if r.rc == 0 else None)(
            h1.aioctl("submit", "--queue", "q1", "demo.sleep", "0", "back")),
            "a queue submit accepted once Redis runs again", timeout(60))
        t.eq(lab.await_all(h1, [tid])[tid].get("result"), "back", "and its task runs")


@t.test
def a_redis_stall_does_not_hand_live_hosts_tasks_to_others():
    """Redis stopped for longer than the visibility (a stall, not a lost
    connection: shorter than LIMIT_CLUSTER_REPLY_TIMEOUT_MS). Each host's
    renewals and claims wait in Redis's sockets meanwhile and run in any
    order once it goes on: one host's claim ran before the other's renewals
    and took its running tasks, which then ended Interrupted (on_interrupt
    = fail) while it was running them. Redis's own clock now shows the gap
    (lua_pulse), and claims wait one visibility for the renewals."""
    with Cluster(t, [Host("h1", capacity=4), Host("h2", capacity=4)]) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h1", "h2"])
        h1 = lab["h1"]
        ids = [lab.submit(h1, "q1", "demo.sleep", "20", "kept%d" % i) for i in range(4)]
        for tid in ids:
            wait_state(lab, h1, tid, "running")
        # A host claims nothing for 7 s after it connects (not to take what
        # hosts reconnecting with it hold); both claim every period after.
        base = xautoclaims(lab)
        until(lambda: xautoclaims(lab) >= base + 4, "both hosts claiming (XAUTOCLAIM in Redis)",
              timeout(30))
        lab.redis.proc.send_signal(signal.SIGSTOP)
        try:
            # The stall itself is what is tested: over the visibility (1.5 s)
            # and the reply timeout (5 s), after which the hosts give their
            # connections up, while what they sent before waits in Redis.
            time.sleep(9)
        finally:
            lab.redis.proc.send_signal(signal.SIGCONT)
        # The hosts gave their connections up (no reply for 5 s) and make
        # them again, with backoff.
        until(lambda: h1.aioctl("show", ids[0]).rc == 0, "h1 reaching Redis again", timeout(30))
        outcomes = lab.await_all(h1, ids, limit=60)
        for i, tid in enumerate(ids):
            o = outcomes[tid]
            t.eq((outcome_kind(o), o.get("result")), (None, "kept%d" % i),
                 "task %d, running through the stall, ends done" % tid, o)
        for h in (h1, lab["h2"]):
            t.check("claimed" not in h.log(), "%s claimed nothing of a live host" % h.name,
                    h.log())


@t.test
def a_redis_name_that_does_not_resolve_yet_does_not_stop_aiod():
    """A name in `cluster` was looked up once, at start: one that did not
    resolve (DNS not up yet at boot) stopped aiod with 78, local tasks and
    all, and the unit does not restart on 78. It is now looked up at every
    connect (on libuv's thread pool), and failing is like Redis being down:
    aiod serves, queue submits say why, and it keeps trying. A name that
    resolves (localhost) works as an address does."""
    lab = Cluster(t, [Host("h1"), Host("h2")])
    t._daemons.append(lab.redis)
    lab.redis.start()
    spec = lab.specs[0]
    d = lab._mkdir("h1")
    conf = os.path.join(d, "aiod.conf")
    with open(conf, "w") as f:
        f.write(lab.settings_text(spec, redis_url="redis://no-such-redis.invalid:%d"
                                  % lab.redis.port))
    h1 = harness.Daemon(t, d, extra_args=["-c", conf])
    h1.start()
    line = h1.wait_log("cannot resolve", timeout(20))
    t.contains(line or "", "no-such-redis.invalid", "the log names the host", h1.log())
    r = h1.aioctl("run", "demo.sleep", "0", "local")
    t.eq((r.rc, r.out), (0, '"local"\n'), "local tasks run", r)
    r = h1.aioctl("submit", "--queue", "q1", "demo.sleep", "0")
    t.eq(r.rc, 3, "a queue submit fails, Redis unreachable", r)
    t.contains(r.err, "cannot resolve", "saying why", r)
    h1.stop(timeout=timeout(30))

    spec2 = lab.specs[1]
    d2 = lab._mkdir("h2")
    conf2 = os.path.join(d2, "aiod.conf")
    with open(conf2, "w") as f:
        f.write(lab.settings_text(spec2, redis_url="redis://localhost:%d" % lab.redis.port))
    h2 = harness.Daemon(t, d2, extra_args=["-c", conf2])
    h2.start()
    h2.name = "h2"
    lab.daemons["h2"] = h2
    lab.wait_serving("q1", "demo.sleep", ["h2"])
    tid = lab.submit(h2, "q1", "demo.sleep", "0", "by name")
    t.eq(lab.await_all(h2, [tid])[tid].get("result"), "by name", "a Redis named localhost")
    h2.stop(timeout=timeout(30))
    lab.redis.shutdown()


@t.test
def a_second_live_host_of_the_same_name_is_said():
    """cluster_host must be unique, but a second aiod taking a live host's
    name (a cloned machine, a second unit) said nothing, and went on to
    take that host's running entries for its own. It now says so, at
    error priority; a host restarted under its own name (the one before
    it dead) says nothing."""
    lab = Cluster(t, [Host("h1"), Host("h1b")])
    with lab:
        h1 = lab["h1"]
        # h1b is started under h1's name (its settings say cluster_host = h1).
        spec = lab.specs[1]
        d = lab._mkdir("dup")
        conf = os.path.join(d, "aiod.conf")
        with open(conf, "w") as f:
            f.write(lab.settings_text(spec).replace("cluster_host = h1b", "cluster_host = h1"))
        dup = harness.Daemon(t, d, extra_args=["-c", conf])
        dup.start()
        line = dup.wait_log("another aiod", timeout(20))
        t.contains(line or "", "cluster_host", "the duplicate names the setting", dup.log())
        t.contains(line or "", "err:", "at error priority", dup.log())
        dup.stop(timeout=timeout(30))
        t.check("another aiod" not in h1.log(), "h1 itself says nothing", h1.log())
        # h1 killed and started again: its old self is dead, nothing said.
        h1.kill()
        h1 = lab.start_host("h1")
        lab.wait_joined(["h1"])
        r = h1.aioctl("submit", "--queue", "q1", "demo.sleep", "0")
        t.eq(r.rc, 0, "the restarted h1 works", r)
        t.check("another aiod" not in h1.log(), "a restarted host says nothing", h1.log())


@t.test
def hosts_with_different_visibility_timeouts_are_said():
    """Every host of a cluster should use one cluster_visibility_ms: a host
    with a shorter one takes the others' running tasks for interrupted (it
    claims entries their renewals keep younger than their own timeout, not
    than its). That went unnoticed; each host now advertises its value and
    logs an error naming a host with another."""
    with Cluster(t, [Host("h1"), Host("h2", visibility_ms=3000)]) as lab:
        line = lab["h2"].wait_log("cluster_visibility_ms", timeout(10))
        t.contains(line, "host h1 uses cluster_visibility_ms = 1500", "h2's error names h1",
                   lab.logs())
        line = lab["h1"].wait_log("cluster_visibility_ms", timeout(10))
        t.contains(line, "host h2 uses cluster_visibility_ms = 3000", "h1's error names h2",
                   lab.logs())
        t.contains(line, "err:", "it is an error", lab.logs())
        # Said once, not at every period.
        periods_pass(lab, "h1", 2)
        t.eq(lab["h1"].log().count("uses cluster_visibility_ms"), 1, "h1's errors about it")


@t.test
def a_refused_password_is_logged_with_redis_s_reason():
    """A wrong cluster_password_file: Redis's WRONGPASS reached the client
    of a queue submit, but the log said only "the connection was closed"."""
    lab = Cluster(t, [Host("h1")])
    pw = os.path.join(lab.root, "password")
    with open(pw, "w") as f:
        f.write("wrong-one\n")
    os.chmod(pw, 0o600)
    lab.specs[0].settings = list(lab.specs[0].settings) + ["cluster_password_file = %s" % pw]
    t._daemons.append(lab.redis)
    lab.redis.start()
    lab.redis.cli("config", "set", "requirepass", "right-one")
    h1 = lab.start_host("h1")
    line = h1.wait_log("AUTH refused", timeout(20))
    t.contains(line or "", "WRONGPASS", "the log gives Redis's reason", h1.log())
    r = h1.aioctl("submit", "--queue", "q1", "demo.sleep", "0")
    t.eq(r.rc, 3, "a queue submit fails: Redis unreachable", r)
    t.contains(r.err, "AUTH refused", "and says why", r)
    h1.stop(timeout=timeout(30))
    lab.redis.kill()


# ---------------------------------------------------------------- functions


@t.test
def a_host_lacking_the_function_never_takes_its_tasks():
    good = harness.test_plugin_dir(t, "good")
    hosts = [Host("h1", capacity=2, plugin_dirs=[good]), Host("h2", capacity=2, plugin_dirs=[good]),
             Host("h3", capacity=16)]
    with Cluster(t, hosts) as lab:
        lab.wait_serving("q1", "good.sleepy", ["h1", "h2"])
        lab.wait_serving("q1", "demo.sleep", ["h1", "h2", "h3"])
        t.eq(lab.servers("q1", "good.sleepy"), {"h1", "h2"},
             "hosts serving good.sleepy (h3 lacks the plugin)")
        h3 = lab["h3"]
        # Submitted on h3 itself, which works q1 with room for 16 but has no
        # good.sleepy: h1 and h2 (2 at a time each) must take all 24.
        ids = [lab.submit(h3, "q1", "good.sleepy", "0.05") for _ in range(24)]
        outcomes = lab.await_all(h3, ids, limit=60)
        t.eq([i for i in ids if outcomes[i].get("result") != "slept"], [],
             "good.sleepy tasks that did not end DONE")
        ran_on = {i: h.get("host") for i, h in lab.task_hashes(ids).items()}
        t.eq(sorted(i for i, h in ran_on.items() if h not in ("h1", "h2")), [],
             "tasks that ran elsewhere than h1/h2 (%r)" % ran_on)
        until(lambda: lab.pending("q1", "good.sleepy") == 0, "no pending good.sleepy entries",
              timeout(10))

        r = h3.aioctl("submit", "--queue", "q1", "demo.nosuch")
        t.check(r.rc != 0, "a queue submit of a function nobody serves must fail", r)
        t.contains(r.err, "no host serves 'demo.nosuch' on queue 'q1'", "its error", r)
        r = h3.aioctl("submit", "--queue", "q2", "demo.sleep", "0")
        t.check(r.rc != 0, "a queue submit to a queue nobody works must fail", r)
        t.contains(r.err, "no host serves 'demo.sleep' on queue 'q2'", "its error", r)


@t.test
def queue_submit_refuses_a_schedule():
    with Cluster(t, [Host("h1")]) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h1"])
        h1 = lab["h1"]
        for opts in (["--delay", "5"], ["--retries", "2"]):
            r = h1.aioctl("submit", "--queue", "q1", *opts, "demo.sleep", "0")
            t.check(r.rc != 0, "submit --queue with %s must be refused" % " ".join(opts), r)
        # Nothing reached the stream (the refused submits left no entry).
        t.eq(lab.redis.command("EXISTS", "aiod:q:q1:demo.sleep") and
             lab.redis.command("XLEN", "aiod:q:q1:demo.sleep"), 0,
             "entries in aiod:q:q1:demo.sleep after refused submits")
        ok = lab.submit(h1, "q1", "demo.sleep", "0", "fine", detach=True)
        t.check(ok >= CLUSTER_ID_BASE, "a detached queue submit", " (id %d)" % ok)


# ---------------------------------------------------------------- replicas


@t.test
def cluster_replicas_waits_for_a_replica_and_says_when_none_confirms():
    with Cluster(t, [Host("h1", settings=["cluster_replicas = 1"])]) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h1"])
        h1 = lab["h1"]
        # A replica of the lab's Redis, on its own port and directory.
        replica = Redis(lab._mkdir("replica"))
        t._daemons.append(replica)
        replica.start()
        t.eq(replica.command("REPLICAOF", "127.0.0.1", str(lab.redis.port)), "OK",
             "REPLICAOF on the replica")

        def replicas():
            # Replicas in sync ("slave0:...,state=online,...").
            info = lab.redis.command("INFO", "replication")
            return sum(1 for line in info.splitlines()
                       if line.startswith("slave") and "state=online" in line)

        until(lambda: replicas() == 1 or None, "the replica in sync", timeout(30))
        tid = lab.submit(h1, "q1", "demo.sleep", "0", "replicated")
        t.eq(lab.await_all(h1, [tid])[tid].get("result"), "replicated",
             "a task acknowledged once the replica had it")
        replica.kill()
        until(lambda: replicas() == 0 or None, "the master saw the replica go", timeout(30))
        r = h1.aioctl("submit", "--queue", "q1", "demo.sleep", "0", "unconfirmed")
        t.eq(r.rc, 3, "exit status of a submit no replica confirmed", r)
        t.contains(r.err, "only 0 of the 1 replicas", "the error says how many confirmed", r)
        # The message names the task: it is queued, and runs.
        named = [int(w) for w in r.err.replace(",", " ").split() if w.isdigit() and
                 int(w) >= CLUSTER_ID_BASE]
        t.eq(len(named), 1, "cluster ids named in the error", r)
        t.eq(lab.await_all(h1, named)[named[0]].get("result"), "unconfirmed",
             "the task the unconfirmed submit queued")

        # WAIT blocks the connection it is sent on: one per submit made the
        # fifth of five concurrent submits wait five times 5 s. One WAIT
        # covers every submit whose script ran before it.
        def waits():
            for line in lab.redis.command("INFO", "commandstats").splitlines():
                if line.startswith("cmdstat_wait:calls="):
                    return int(line.split("=")[1].split(",")[0])
            return 0
        before = waits()
        results = [None] * 5

        def submit(i):
            results[i] = h1.aioctl("submit", "--queue", "q1", "demo.sleep", "0", "c%d" % i,
                                   timeout=120)
        threads = [threading.Thread(target=submit, args=(i,)) for i in range(5)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        for r in results:
            t.eq(r.rc, 3, "exit status of a concurrent submit no replica confirmed", r)
            t.contains(r.err, "only 0 of the 1 replicas", "the error says how many confirmed", r)
        sent = waits() - before
        # Those that come while a WAIT is out (their scripts queue behind it
        # on the blocked connection) share the next one.
        t.check(1 <= sent <= 3, "WAITs for five concurrent submits: one per group, not one each",
                " (%d)" % sent)


@t.test
def a_rerun_that_prints_nothing_still_expires_the_first_runs_output():
    """Attempt 1 prints and its host is killed; attempt 2, on another host,
    prints nothing and ends. The output stream attempt 1 wrote must expire
    with the task (the finish set its TTL only when its own run printed, so
    that stream stayed in Redis for good)."""
    marker = os.path.join(t.tmpdir("marker"), "ran")
    script = ("if [ -e %s ]; then exit 0; fi; touch %s; echo first-run; sleep 60" % (marker, marker))
    settings = ["on_interrupt = proc.shell retry", "call = proc.* @root"]
    with Cluster(t, [Host("h1", settings=settings), Host("h2", settings=settings),
                     Host("h3", queues="")]) as lab:
        lab.wait_serving("q1", "proc.shell", ["h1", "h2"])
        h3 = lab["h3"]
        tid = lab.submit(h3, "q1", "proc.shell", script)
        info = wait_state(lab, h3, tid, "running")
        until(lambda: int(lab.redis.command("XLEN", "aiod:o:%d" % tid)) >= 1 or None,
              "the first run's line in its output stream", timeout(20))
        lab[info["host"]].kill()
        o = lab.await_all(h3, [tid], limit=60)[tid]
        t.eq(outcome_kind(o), None, "the rerun ends done", " (%r)" % o)
        ttl = int(lab.redis.command("PTTL", "aiod:o:%d" % tid))
        t.check(ttl > 0, "the output stream has a time to live", " (PTTL %d)" % ttl)


@t.test
def claims_reach_a_silent_hosts_entries_behind_many_live_ones():
    """XAUTOCLAIM looks at about ten times COUNT pending entries per call and
    returns where it stopped. Started at 0-0 every time, a host with room
    for one task never got past twelve entries a live host held, and the
    entries of a host killed behind them were never claimed (they stayed
    running, in Redis, for good)."""
    hosts = [Host("h1", capacity=12), Host("h2", capacity=2), Host("h3", capacity=1),
             Host("h4", queues="")]
    with Cluster(t, hosts, start_only=["h1", "h4"]) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h1"])
        h4 = lab["h4"]
        live = [lab.submit(h4, "q1", "demo.sleep", "120", "live") for _ in range(12)]
        for tid in live:
            wait_state(lab, h4, tid, "running", on="h1")
        lab.start_host("h2")
        lab.wait_serving("q1", "demo.sleep", ["h2"])
        gone = [lab.submit(h4, "q1", "demo.sleep", "120", "gone") for _ in range(2)]
        for tid in gone:
            wait_state(lab, h4, tid, "running", on="h2")
        lab.start_host("h3")
        lab.wait_serving("q1", "demo.sleep", ["h3"])
        lab["h2"].kill()

        # Claimed by h3 (the only host with room), each ends Interrupted
        # (on_interrupt = fail).
        def both_settled():
            return all(lab.show(h4, tid).get("state") == "failed" for tid in gone) or None
        until(both_settled, "the killed h2's tasks claimed and settled", timeout(30),
              detail=lambda: "\nhost logs:" + lab.logs())
        t.check("claimed" in lab.log("h3"), "h3 claimed them", lab.log("h3")[-2000:])


@t.test
def a_dead_hosts_tasks_on_many_streams_are_claimed_in_one_round():
    """A host claims silent hosts' entries on all its streams each period,
    one claim after the other, not on one stream per period: a dead host's
    tasks waited a period for every stream before theirs (a queue has one
    stream per function, 10 for the demo plugin alone), minutes with the
    default visibility. Three tasks on three queues of a killed host end
    (Interrupted, on_interrupt = fail) within half a period of each other:
    one period apart at least, they were claimed in different periods."""
    vis = harness.scaled(3000, 6000, 9000)
    queues = ("q1", "q2", "q3")
    hosts = [Host("h1", queues=""), Host("h2", queues=",".join(queues), capacity=3),
             Host("h3", queues=",".join(queues), capacity=3)]
    with Cluster(t, hosts, visibility_ms=vis, start_only=["h1", "h2"]) as lab:
        for q in queues:
            lab.wait_serving(q, "demo.sleep", ["h2"])
        h1 = lab["h1"]
        ids = [lab.submit(h1, q, "demo.sleep", "600", q) for q in queues]
        for tid in ids:
            wait_state(lab, h1, tid, "running", on="h2")
        lab.start_host("h3")
        for q in queues:
            lab.wait_serving(q, "demo.sleep", ["h3"])
        lab["h2"].kill()

        def all_ended():
            out = []
            for tid in ids:
                r = h1.aioctl("show", "--json", tid)
                info = json.loads(r.out) if r.rc == 0 else {}
                if info.get("state") != "failed":
                    return None
                out.append(info)
            return out
        infos = until(all_ended, "the killed h2's three tasks claimed and settled",
                      timeout(120), detail=lambda: "\nhost logs:" + lab.logs())
        kinds = [outcome_kind(i) for i in infos]
        t.eq(kinds, ["Interrupted"] * 3, "each ended Interrupted", " %r" % infos)
        ends = [datetime.fromisoformat(i["finished"]).timestamp() for i in infos]
        spread = max(ends) - min(ends)
        t.check(spread < vis / 3 / 2 / 1000.0,
                "the three were claimed in one round: their ends are %.3f s apart (a period is "
                "%.1f s)" % (spread, vis / 3 / 1000.0), " %r" % infos)


@t.test
def a_long_visibility_keeps_its_host_key_as_long():
    """The host key expires 3 x cluster_visibility_ms after the last
    advertisement; the setting goes up to 2^32 - 1 ms, and three times that
    wrapped around 32 bits (1.5e9 ms gave a key that lived 2.4 days instead
    of 52)."""
    vis = 1500000000
    with Cluster(t, [Host("h1")], visibility_ms=vis) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h1"])
        ttl = int(lab.redis.command("PTTL", "aiod:host:h1"))
        # PTTL may be read in the millisecond the key was set: up to 3 x vis.
        t.between(ttl, 3 * vis - 60000, 3 * vis + 1, "the host key's time to live (ms)")


@t.test
def a_submit_waiting_for_replicas_does_not_hold_up_the_claims():
    """WAIT (cluster_replicas) blocks the connection it is sent on until the
    replicas answer or 5 s pass. Sent on the connection that renews a host's
    claims, two unconfirmed submits held those renewals for 10 s, and
    another host took the task it was running: under on_interrupt = fail it
    ended Interrupted while it still ran. The submits and their WAIT go on a
    connection of their own."""
    with Cluster(t, [Host("h1", settings=["cluster_replicas = 1"]),
                     Host("h2", settings=["cluster_replicas = 1"]),
                     Host("h3", queues="")]) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h1", "h2"])
        h3 = lab["h3"]
        tid = lab.submit(h3, "q1", "demo.sleep", "8", "kept")  # h3 waits for no replica
        info = wait_state(lab, h3, tid, "running")
        runner = lab[info["host"]]
        # No replica at all: each WAIT takes its full 5 s.
        subs = [runner.aioctl_bg("submit", "--queue", "q1", "demo.sleep", "0", "x%d" % i)
                for i in range(2)]
        o = lab.await_all(h3, [tid], limit=60)[tid]
        for p in subs:
            p.wait(timeout(60))
        t.eq((o.get("result"), outcome_kind(o)), ("kept", None),
             "the running task's outcome", " (%r)\nhost logs:%s" % (o, lab.logs()))


@t.test
def a_redis_that_drops_every_connection_is_retried_with_backoff():
    """A connection that is made and then closed at once (Redis at
    maxclients) is an outage like a refused one: the waits between
    attempts double up to 5 s. They were reset by each connection made, so
    every connection of the host was made again ten times a second, for
    good. Counted: the connections over 6 s after the first; fewer on a
    loaded machine, never more."""
    srv = DroppingServer()
    conf = os.path.join(t.tmpdir("dropping"), "aiod.conf")
    with open(conf, "w") as f:
        f.write("cluster = redis://127.0.0.1:%d\ncluster_host = h1\ncluster_queues = q1\n"
                % srv.port)
    try:
        with t.daemon(extra_args=["-c", conf]) as d:
            t.check(srv.first.wait(30), "the host never connected to the server")
            start = srv.times[0]
            deadline = start + 6.0
            while time.monotonic() < deadline:
                time.sleep(0.1)
            n = sum(1 for x in list(srv.times) if x < deadline)
            print("  connections in the first 6 s: %d" % n, flush=True)
            # With doubling waits each of the host's connections (three; at
            # most four allowed for) tries at 0, 0.1, 0.3, 0.7, 1.5 and
            # 3.1 s: six each. Without, 60 each.
            t.check(n <= 4 * 6, "connections made in 6 s: %d (more than 24: no backoff)" % n)
            d.assert_alive()
    finally:
        srv.close()


@t.test
def a_redis_still_loading_its_data_is_waited_for():
    """A Redis that restarted with a big data set accepts connections at
    once but answers LOADING to nearly every command until it has read it.
    The host counted the connection as up: its scripts were refused for
    good (every call then sent a script's whole text), its consumer groups
    were not made, and its reads failed and reconnected with growing waits.
    Now it PINGs until PONG: nothing is tried before, a queue submit says
    Redis is loading, and everything works as soon as it has loaded."""
    redis = Redis(t.tmpdir("loading-redis")).start()
    proxy = LoadingProxy(redis.port)
    conf = os.path.join(t.tmpdir("loading"), "aiod.conf")
    with open(conf, "w") as f:
        f.write("cluster = %s\ncluster_host = h1\ncluster_queues = q1\n" % proxy.url)
    try:
        with t.daemon(extra_args=["-c", conf]) as d:
            d.wait_log("(commands connection) is loading its data set; waiting", timeout(30))
            r = d.aioctl("submit", "--queue", "q1", "demo.sleep", "0", "early")
            t.check(r.rc != 0, "a queue submit while Redis loads fails", r)
            t.contains(r.err, "loading its data set", "its error says why", r)
            # The host asks again every 200 ms while Redis loads; the load
            # ends only once it has (on a quick run it had asked twice).
            until(lambda: proxy.refused >= 3 or None, "the host asking again while Redis loads",
                  timeout(30))
            proxy.loading = False
            until(lambda: d.aioctl("submit", "--queue", "q1", "demo.sleep", "0").rc == 0,
                  "a queue submit once Redis has loaded", timeout(30))
            r = d.aioctl("submit", "--queue", "q1", "demo.sleep", "0", "loaded")
            t.eq(r.rc, 0, "a queue submit after the load", r)
            r = d.aioctl("await", "--timeout", str(timeout(30)), r.out.strip())
            t.eq((r.rc, r.out), (0, '"loaded"\n'), "its task ran", r)
            log = d.log()
            for bad in ("refused to load the scripts", "cannot make the consumer group",
                        "reading the queues"):
                t.check(bad not in log, "nothing was tried before Redis had loaded: %r in the "
                        "log" % bad, log[-3000:])
            t.check(proxy.refused >= 3, "the proxy answered LOADING (%d times)" % proxy.refused)
    finally:
        proxy.close()
        redis.kill()


@t.test
def a_stop_right_after_a_task_ends_still_writes_its_outcome():
    """A task's outcome is written to Redis after its last output line. A
    SIGTERM in between made the host drop the outcome: the task stayed
    running in Redis, to be claimed later and failed as Interrupted (or run
    again under retry) though it had ended (here: a program that exited 3,
    which proc.shell reports as done with its exit status). The stop now waits, within
    shutdown_grace, for the outcomes of the tasks that ended. Redis holds
    the writes back (CLIENT PAUSE WRITE) so that the stop surely comes in
    between."""
    settings = ["call = proc.* @root"]
    with Cluster(t, [Host("h1", settings=settings), Host("h2", queues="")]) as lab:
        lab.wait_serving("q1", "proc.shell", ["h1"])
        h1 = lab["h1"]
        d = t.tmpdir("stop")
        pidf, go = os.path.join(d, "pid"), os.path.join(d, "go")
        tid = lab.submit(lab["h2"], "q1", "proc.shell",
                         "echo $$ > %s; while [ ! -e %s ]; do sleep 0.02; done; "
                         "echo last words; exit 3" % (pidf, go))
        wait_state(lab, lab["h2"], tid, "running", on="h1")
        pid = int(until(lambda: os.path.exists(pidf) and open(pidf).read().strip(),
                        "the program's pid", timeout(20)))
        lab.redis.command("CLIENT", "PAUSE", str(timeout(60) * 1000), "WRITE")
        try:
            with open(go, "w"):
                pass
            # Reaped by the daemon, in the loop callback that ends the task:
            # its line and outcome now wait for Redis.
            until(lambda: not os.path.exists("/proc/%d" % pid), "the program reaped",
                  timeout(20))
            h1.proc.send_signal(signal.SIGTERM)
            h1.wait_log("outcomes of 1 cluster tasks", timeout(30))
        finally:
            lab.redis.command("CLIENT", "UNPAUSE")
        t.eq(h1.wait_exit(timeout(30)), 0, "h1's exit status once Redis took the writes")
        info = lab.task_hashes([tid])[tid]
        t.eq(info.get("state"), "done", "the task's state in Redis once h1 stopped",
             " (%r)\nh1's log:%s" % (info.get("state"), h1.log()[-2000:]))
        o = lab.await_all(lab["h2"], [tid], limit=30)[tid]
        t.eq((o.get("result") or {}).get("exit"), 3,
             "its outcome is the program's own (exit 3), not an interruption", " (%r)" % o)
        t.eq((o.get("result") or {}).get("stdout"), "last words\n", "with its output")



@t.test
def a_stop_while_redis_is_down_waits_for_it_to_write_outcomes():
    """A task that ended while Redis was away keeps its outcome to write.
    A stop then counted no outcome as unwritten (Redis was not up), so it
    neither waited the grace period nor said anything: the host exited at
    once and the task stayed running in Redis, to end Interrupted. The stop
    now waits for Redis as for any unwritten outcome, within the grace."""
    with Cluster(t, [Host("h1", settings=["shutdown_grace = %d" % timeout(30)])]) as lab:
        lab.wait_serving("q1", "demo.sleep", ["h1"])
        h1 = lab["h1"]
        tid = lab.submit(h1, "q1", "demo.sleep", "0.3", "ended")
        h1.wait_task(lambda tk: tk["function"] == "demo.sleep", "the task running on h1",
                     timeout=timeout(10))
        lab.redis.kill()
        # An ended detached task leaves the local listing.
        until(lambda: not any(tk["function"] == "demo.sleep" for tk in h1.ps(True)),
              "the task ended on h1 (Redis down)", timeout(10))
        h1.proc.send_signal(signal.SIGTERM)
        h1.wait_log("waiting for the outcomes of 1 cluster tasks", timeout(10))
        lab.redis.start()
        t.eq(h1.wait_exit(timeout(60)), 0, "h1's exit status once Redis took the outcome")
        t.eq(lab.task_hashes([tid])[tid].get("state"), "done",
             "the task's state in Redis once h1 stopped", "\nh1's log:" + h1.log()[-2000:])

t.main()
