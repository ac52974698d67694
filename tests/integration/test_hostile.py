"""The hostile-client battery (issue 13): one daemon, several unprivileged
uids, each hostile case in its own client process(es), while a probe
measures round trips and another the lateness of `demo.sleep 0.1`.

Cases, in order (tests/integration/hostile_client.py has each):
  giant maps and lists (frames of max_frame bytes: ~300k distinct keys,
  ~1M small ints, ~2M nulls; the biggest map a request may hold, 200,000
  keys, accepted; the same with a duplicate, refused), nesting at and past every depth limit;
  every malformed UTF-8 case, where strings go; duplicate map keys and
  entries without a value; 40 followers of chatty tasks that do not read;
  `seq 1 3000000` followed by a client that reads, `yes | head -c 100M`;
  connections until refused, under a low RLIMIT_NOFILE; a Cancel (and the
  other control requests) with max_in_flight Awaits waiting; `ps` paging
  through 1M tasks.

Targets, each printed as a figure and asserted at the end: the probe's
worst round trip <= 100 ms; timer lateness <= 100 ms; daemon RSS <= the
global write budget (max_write_queue_total) + 64 MiB; nothing crashed
(alive throughout, exit 0 on SIGTERM, no sanitizer report); every
well-behaved task completed exactly once with its result; every frame
the daemon sent decoded with the strict Python protobuf decoder. Every
failure is listed, not only the first.

Stress sizes shrink under sanitizers (AIOD_SANITIZE); the latency targets
do not. With AIOD_HOSTILE_LATENCY=report the two latency figures are
printed against their targets but not asserted: CI runs the battery so
under ASan+UBSan, where a busy machine or the sanitizer's own slowness
would decide them; `ctest -L hostile` on a quiet machine asserts them. Clients run at a lower priority than the probes (nice), so that
the Python clients' own CPU use on a small machine is not counted as the
daemon's latency; the daemon keeps the default priority.

Needs root (to act as other users, as CI runs it): otherwise it fails
saying so.
"""

import json
import os
import queue
import subprocess
import sys
import threading
import time

import hostile_wire as w

w.ensure_protobuf_python()

import harness  # noqa: E402

t = harness.Suite(__file__)
PB_DIR = w.find_pb_dir(t.plugin_dir)
pb = w.load_pb(PB_DIR)
CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostile_client.py")

MIB = 1024 * 1024
WRITE_BUDGET = 64 * MIB
NOFILE = 256
# Users: the well-behaved ones, and the hostile ones (nobody and three
# uids without a passwd entry; policy works on numbers).
PROBE_UID, TIMER_UID, GOOD_UID = 60001, 60002, 60003
HOSTILE = [65534, 60011, 60012, 60013]
PROBE_NICE, CLIENT_NICE = -5, 5
# The system unit's Nice= (systemd/aiod.service.in).
DAEMON_NICE = -5

SAN = harness.SANITIZE
PS_TASKS = harness.scaled(1000000, 100000, 50000)
CHATTY_SIZE = harness.scaled(50 * MIB, 8 * MIB, 4 * MIB)
CHATTY_LINE = 1024
# Issue 13's chatty jobs: `seq 1 3000000` followed, `yes | head -c 100M`.
SEQ_LINES = harness.scaled(3000000, 300000, 150000)
YES_SIZE = harness.scaled(100 * MIB, 20 * MIB, 10 * MIB)
FOLLOWERS = 40
KNOWN = 40
# Generous per-step bounds (the ctest TIMEOUT is the outer one): a step
# that does not end within them is a failure with its name.
STEP = harness.scaled(120, 600, 900)

# The daemon reports a loop held this long, naming the request or task:
# the battery lists those lines per phase, to say where latency went.
STALL_MS = 100
STALL_MARK = "held"
TARGET_RTT_MS = 100.0
TARGET_LATE_MS = 100.0
LATENCY_ASSERTED = os.environ.get("AIOD_HOSTILE_LATENCY", "assert") != "report"

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "WARNING: ThreadSanitizer",
                   "ERROR: LeakSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")


def gid_of(uid):
    return 65534 if uid == 65534 else uid


class Worker:
    """A hostile_client.py process: its JSON lines as they come."""

    def __init__(self, d, uid, case, args=None, nice=CLIENT_NICE, label=None):
        self.label = label or "%s(uid %d)" % (case, uid)
        argv = [sys.executable, CLIENT, "--socket", d.socket, "--pb-dir", PB_DIR, "--uid",
                str(uid), "--gid", str(gid_of(uid)), "--nice", str(nice), case,
                json.dumps(args or {})]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=harness.clean_env())
        self.lines = queue.Queue()
        self.err = []
        self.result = None
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            try:
                self.lines.put(json.loads(raw))
            except ValueError:
                self.lines.put({"junk": raw.decode("utf-8", "replace")})
        self.lines.put(None)

    def _read_err(self):
        for raw in self.proc.stderr:
            self.err.append(raw.decode("utf-8", "replace"))

    def event(self, name, timeout):
        """Waits for {"event": name}; returns it, or None (a problem noted)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                item = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                problem("%s: no %r event within %.0f s" % (self.label, name, timeout))
                return None
            if item is None:
                self.finish(10)
                problem("%s ended before its %r event" % (self.label, name))
                return None
            if "result" in item:
                self.result = item["result"]
                self.finish(timeout)
                return None
            if item.get("event") == name:
                return item

    def send(self, word):
        try:
            self.proc.stdin.write((word + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def finish(self, timeout):
        """Waits for the result line and the exit; records what it found."""
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        deadline = time.monotonic() + timeout
        while self.result is None:
            try:
                item = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.proc.kill()
                problem("%s: no result within %.0f s; stderr: %s"
                        % (self.label, timeout, "".join(self.err)[-2000:]))
                return None
            if item is None:
                break
            if "result" in item:
                self.result = item["result"]
        try:
            rc = self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        if self.result is None or rc != 0:
            problem("%s exited %s without a result; stderr: %s"
                    % (self.label, rc, "".join(self.err)[-2000:]))
            return None
        tally(self)
        return self.result


# ---------------------------------------------------------------- bookkeeping

PROBLEMS = []
FIGURES = []  # (name, text)
FRAMES = {"frames": 0, "bad": []}
PHASES = []  # (name, start, end)


def problem(msg):
    PROBLEMS.append(msg)
    print("PROBLEM: %s" % msg, flush=True)


def latency_miss(msg):
    """A latency target missed: a problem, or with AIOD_HOSTILE_LATENCY=report
    a line saying so."""
    if LATENCY_ASSERTED:
        problem(msg)
    else:
        print("MISSED (reported, not asserted: AIOD_HOSTILE_LATENCY=report): %s" % msg,
              flush=True)


def figure(name, value):
    FIGURES.append((name, value))
    print("  %-58s %s" % (name, value), flush=True)


def tally(wk):
    r = wk.result
    FRAMES["frames"] += r["frames"]
    for e in r["decode_errors"]:
        FRAMES["bad"].append("%s: %s" % (wk.label, e))
    for f in r["failures"]:
        problem("%s: %s" % (wk.label, f))


class Phase:
    """A named stretch of the battery: its time span (to place the probes'
    slow samples), its daemon RSS peak and the stall lines the daemon
    logged during it."""

    def __init__(self, d, rss, name):
        self.d, self.rss, self.name = d, rss, name

    def __enter__(self):
        self.start = time.monotonic()
        self.log_start = len(self.d._log)
        print("== %s" % self.name, flush=True)
        return self

    def __exit__(self, *a):
        end = time.monotonic()
        PHASES.append((self.name, self.start, end))
        figure("RSS peak in this phase (MiB)", round(self.rss.peak(self.start, end) / MIB, 1))
        stalls = [ln.strip() for ln in self.d._log[self.log_start:] if STALL_MARK in ln]
        figure("loop stalls the daemon logged (>= %d ms)" % STALL_MS, len(stalls))
        for ln in stalls[:6]:
            print("    %s" % ln[:220], flush=True)
        return False


def phase_at(ts):
    for name, a, b in PHASES:
        if a <= ts <= b:
            return name
    return "between phases"


class RssSampler:
    """VmRSS of the daemon every 20 ms, the peak kept per phase."""

    def __init__(self, pid):
        self.pid = pid
        self.samples = []
        self.stop = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def read(self, field="VmRSS"):
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _run(self):
        while not self.stop.wait(0.02):
            self.samples.append((time.monotonic(), self.read()))

    def peak(self, a=0.0, b=float("inf")):
        vals = [v for ts, v in self.samples if a <= ts <= b]
        return max(vals) if vals else 0


class LimitedDaemon(harness.Daemon):
    """harness.Daemon under `prlimit --nofile`: a low RLIMIT_NOFILE (soft and
    hard, so that the daemon cannot raise it) from its first instruction,
    and at the priority the system unit gives it (Nice=-5 in
    systemd/aiod.service.in)."""

    def argv(self):
        return (["nice", "-n", str(DAEMON_NICE), "prlimit", "--nofile=%d:%d" % (NOFILE, NOFILE),
                 "--"] + super().argv())


def new_log_since(d, start, pred, timeout):
    """The first log line after line `start` for which pred holds, or None."""
    def find():
        for line in d._log[start:]:
            if pred(line):
                return line
        return None
    with d._log_cond:
        d._log_cond.wait_for(lambda: find() or d._log_done, timeout=timeout)
        return find()


def start_daemon():
    """The battery's daemon, with the global write budget if this daemon
    knows the setting (else noted as a failure and started without)."""
    base = ["--max-in-flight", "8", "--stall-warning-ms", str(STALL_MS)]
    budget = ["--max-write-queue-total", str(WRITE_BUDGET)]
    d = LimitedDaemon(t, t.tmpdir("hostile"), None, base + budget)
    try:
        d.start()
    except harness.TestFailure as e:
        if "max-write-queue-total" not in str(e) and "max_write_queue_total" not in str(e):
            raise
        problem("this aiod refuses --max-write-queue-total (the global write budget is not "
                "there): %s" % str(e).splitlines()[-1][:300])
        d = LimitedDaemon(t, t.tmpdir("hostile"), None, base)
        d.start()
    os.chmod(t._tmp, 0o755)
    os.chmod(d.dir, 0o755)
    os.chmod(d.socket, 0o666)
    return d


# ---------------------------------------------------------------- the battery


def run_case(d, uid, case, args=None, timeout=STEP):
    wk = Worker(d, uid, case, args)
    return wk.finish(timeout)


def show_figures(name, r):
    if r is None:
        return
    for k, v in r["figures"].items():
        if k != "slow":
            figure("%s: %s" % (name, k), v)


@t.test
def hostile_battery():
    if os.geteuid() != 0:
        harness.fail("the hostile battery needs root: its clients act as other users")
    print("(a libprotobuf ERROR line about invalid UTF-8 may follow: the strict decoder's "
          "self-test)", flush=True)
    if not w.decoder_is_strict():
        harness.fail("this Python protobuf accepts invalid UTF-8 in a string field: the "
                     "battery's decoder would not be strict")
    print("sizes: %d tasks for ps, %d followers of %d-byte chatty tasks, sanitizers %r"
          % (PS_TASKS, FOLLOWERS, CHATTY_SIZE, SAN or "none"), flush=True)
    unit = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "systemd",
                        "aiod.service.in")
    with open(unit) as f:
        if "\nNice=%d\n" % DAEMON_NICE not in f.read():
            harness.fail("the daemon runs here at nice %d, as systemd/aiod.service.in "
                         "says; that file no longer does" % DAEMON_NICE)
    d = start_daemon()
    rss = RssSampler(d.proc.pid)
    rss_start = rss.read()
    t0 = time.monotonic()

    probe = Worker(d, PROBE_UID, "probe_rtt", {"interval": 0.02}, nice=PROBE_NICE)
    timer = Worker(d, TIMER_UID, "probe_timer", nice=PROBE_NICE)
    good = Worker(d, GOOD_UID, "good", {"count": KNOWN, "sleeps": [0.5, 2.0, 5.0, 10.0, 20.0]},
                  nice=PROBE_NICE)
    ev = good.event("submitted", STEP)
    known = ev["ids"] if ev else []

    with Phase(d, rss, "giant map"):
        show_figures("giant map", run_case(d, HOSTILE[0], "giant_map"))
    with Phase(d, rss, "giant lists"):
        show_figures("giant list", run_case(d, HOSTILE[1], "giant_list"))
    with Phase(d, rss, "nesting"):
        show_figures("nesting", run_case(d, HOSTILE[2], "deep"))
    d.assert_alive()

    with Phase(d, rss, "malformed UTF-8"):
        show_figures("utf8", run_case(d, HOSTILE[3], "utf8"))
    with Phase(d, rss, "duplicate keys, entries without a value"):
        show_figures("map rules", run_case(d, HOSTILE[0], "map_rules"))
    d.assert_alive()

    with Phase(d, rss, "non-reading followers") as ph:
        followers(d, rss)
    figure("RSS peak while followers do not read (MiB)",
           round(rss.peak(ph.start, time.monotonic()) / MIB, 1))
    d.assert_alive()

    with Phase(d, rss, "chatty jobs read as fast as possible"):
        show_figures("chatty", run_case(d, HOSTILE[3], "chatty_reader",
                                        {"lines": SEQ_LINES, "yes": YES_SIZE}))
    d.assert_alive()

    with Phase(d, rss, "fd exhaustion"):
        fd_exhaustion(d)
    d.assert_alive()

    with Phase(d, rss, "cancel under full backpressure"):
        show_figures("backpressure", run_case(d, HOSTILE[2], "cancel_backpressure"))
    d.assert_alive()
    rss_before_ps = rss.peak(t0)

    ps_paging(d, rss)
    d.assert_alive()

    # The end: the probes and the good client report; the daemon stops.
    probe.send("stop")
    timer.send("stop")
    good.send("stop")
    pr = probe.finish(STEP)
    tr = timer.finish(STEP)
    gr = good.finish(STEP)
    hwm = rss.read("VmHWM")
    rss.stop.set()
    dropped_clients = [ln for ln in d.log().splitlines() if "dropping the client" in ln]
    try:
        d.stop(timeout=harness.scaled(60, 120, 180))
    except harness.TestFailure as e:
        problem("the daemon did not stop cleanly: %s" % str(e)[:1500])
    sanitizer = [ln for ln in d.log().splitlines() if any(m in ln for m in SANITIZER_MARKS)]

    print("== figures", flush=True)
    if pr:
        figure("probe round trips", pr["figures"]["n"])
        figure("probe echo tasks (each once, own result)", pr["figures"]["tasks"])
        figure("probe round trip p50 / p99 (ms)", "%s / %s" % (pr["figures"]["p50_ms"],
                                                              pr["figures"]["p99_ms"]))
        figure("probe worst round trip (ms; target <= %d)" % TARGET_RTT_MS,
               pr["figures"]["max_ms"])
        slow_by_phase("probe", pr["figures"]["slow"])
        if pr["figures"]["max_ms"] > TARGET_RTT_MS:
            latency_miss("the probe's worst round trip was %.1f ms (target <= %d ms)"
                         % (pr["figures"]["max_ms"], TARGET_RTT_MS))
    if tr:
        figure("timer sleeps of 0.1 s", tr["figures"]["n"])
        figure("timer lateness p50 (ms)", tr["figures"]["p50_ms"])
        figure("timer worst lateness (ms; target <= %d)" % TARGET_LATE_MS,
               tr["figures"]["max_ms"])
        slow_by_phase("timer", tr["figures"]["slow"])
        if tr["figures"]["max_ms"] > TARGET_LATE_MS:
            latency_miss("demo.sleep 0.1 was up to %.1f ms late (target <= %d ms)"
                         % (tr["figures"]["max_ms"], TARGET_LATE_MS))
    if gr:
        figure("known tasks checked (done once, right result)", gr["figures"]["known tasks"])
        if gr["figures"]["known tasks"] != KNOWN or len(known) != KNOWN:
            problem("only %d of %d known tasks were submitted"
                    % (gr["figures"]["known tasks"], KNOWN))
    peak = max([rss.peak(a, b) for name, a, b in PHASES if not name.startswith("ps")] + [0])
    figure("daemon RSS at start (MiB)", round(rss_start / MIB, 1))
    figure("daemon RSS peak outside the ps phase (MiB; target <= %d)"
           % ((WRITE_BUDGET + 64 * MIB) // MIB), round(max(peak, rss_before_ps) / MIB, 1))
    figure("daemon VmHWM over the whole battery, ps included (MiB)", round(hwm / MIB, 1))
    limit = WRITE_BUDGET + 64 * MIB
    if SAN:
        # ASan gives every allocation redzones and keeps freed memory in
        # quarantine (256 MiB by default): its RSS measures the sanitizer.
        print("  (RSS target not asserted in a sanitizer build: ASan's shadow, redzones and "
              "quarantine are in its RSS; the plain build asserts it)", flush=True)
    elif max(peak, rss_before_ps) > limit:
        problem("daemon RSS reached %.1f MiB outside the ps phase (target <= %d MiB; "
                "per phase: %s)" % (max(peak, rss_before_ps) / MIB, limit // MIB,
                                    ", ".join("%s %.0f" % (name, rss.peak(a, b) / MIB)
                                              for name, a, b in PHASES)))
    figure("connections dropped by the daemon (log lines)", len(dropped_clients))
    figure("frames decoded strictly", FRAMES["frames"])
    figure("frames that did not decode", len(FRAMES["bad"]))
    figure("daemon exit status", d.rc)
    figure("sanitizer report lines", len(sanitizer))
    figure("battery wall time (s)", round(time.monotonic() - t0, 1))
    for ln in dropped_clients[:5]:
        print("  log: %s" % ln.strip(), flush=True)
    # Only the frames nested past the message limit may cost a client its
    # connection; a follower, a flood or a giant frame never does.
    others = [ln.strip() for ln in dropped_clients if "nests deeper than" not in ln]
    if others:
        problem("%d connections dropped for other reasons than a frame nested too deeply, "
                "first: %s" % (len(others), others[0]))
    if FRAMES["bad"]:
        problem("%d frames did not decode strictly, first: %s"
                % (len(FRAMES["bad"]), FRAMES["bad"][0]))
    if sanitizer:
        problem("sanitizer reports in the daemon's stderr:\n  %s" % "\n  ".join(sanitizer[:20]))
    if PROBLEMS:
        harness.fail("%d problems:\n- %s" % (len(PROBLEMS), "\n- ".join(PROBLEMS)))


def slow_by_phase(who, slow):
    """The slowest samples over 20 ms, grouped by the phase they fell in."""
    by = {}
    for ts, ms, what in slow:
        name = phase_at(ts)
        if ms > by.get(name, (0, ""))[0]:
            by[name] = (ms, what)
    for name, (ms, what) in sorted(by.items(), key=lambda kv: -kv[1][0]):
        figure("%s worst in '%s' (ms)" % (who, name), "%s (%s)" % (ms, what))


def followers(d, rss):
    """FOLLOWERS connections, spread over the hostile uids: half submit a
    chatty proc.shell with follow, half follow those tasks with Logs; none
    reads until every chatty task has ended."""
    half = FOLLOWERS // 2
    args = {"size": CHATTY_SIZE, "line": CHATTY_LINE}
    subs = [Worker(d, HOSTILE[i % len(HOSTILE)], "follower", dict(args, mode="submit"),
                   label="submit-follower %d" % i) for i in range(half)]
    tasks = []
    for i, wk in enumerate(subs):
        ev = wk.event("following", STEP)
        tasks.append(ev["task"] if ev else None)
    logs = [Worker(d, HOSTILE[i % len(HOSTILE)], "follower",
                   dict(args, mode="logs", task=tasks[i]), label="logs-follower %d" % i)
            for i in range(half) if tasks[i] is not None]
    for wk in logs:
        wk.event("following", STEP)
    figure("followers connected", len(subs) + len(logs))
    # Every chatty task ends while nobody reads (root may await any task).
    # One at a time: each result is up to max_result (1 MiB).
    c = w.Conn(d.socket, timeout=STEP + 30, name="battery")
    ids = [x for x in tasks if x is not None]
    t0 = time.monotonic()
    states = set()
    for tid in ids:
        m = c.ask("await", pb.Await(task_ids=[tid], timeout=float(STEP)))
        if m.WhichOneof("body") != "outcomes":
            problem("chatty task %d did not end while its followers did not read: %s"
                    % (tid, w.show(m)))
        else:
            states.add(pb.TaskState.Name(m.outcomes.outcomes[0].state))
    figure("chatty tasks: seconds until all %d ended, unread" % len(ids),
           round(time.monotonic() - t0, 2))
    if states - {"TASK_DONE"}:
        problem("chatty tasks ended %s" % sorted(states))
    FRAMES["frames"] += c.frames
    c.close()
    figure("RSS with every follower's output unread (MiB)", round(rss.read() / MIB, 1))
    for wk in subs + logs:
        wk.send("go")
    got = dropped = 0
    for wk in subs + logs:
        r = wk.finish(STEP)
        if r:
            got += r["figures"].get("received", 0)
            dropped += r["figures"].get("dropped", 0)
    figure("followers: lines received / dropped", "%d / %d" % (got, dropped))


def fd_exhaustion(d):
    start = len(d._log)
    flood = Worker(d, HOSTILE[1], "fd_flood", {"max": 4 * NOFILE})
    ev = flood.event("refused", STEP)
    if ev:
        figure("connections accepted before the refusal (RLIMIT_NOFILE %d)" % NOFILE,
               ev["accepted"])
        figure("the refusal", ev["refusal"])
        line = new_log_since(d, start, lambda ln: "refused" in ln and "connection" in ln, 10)
        if line is None:
            problem("no log line about the refused connection")
        else:
            figure("its log line", line.strip()[:200])
    # While the flood holds its connections, a well-behaved user's request
    # on an open connection is still answered (the probes are measuring).
    flood.send("stop")
    show_figures("fd flood", flood.finish(STEP))
    # Descriptors come back: a new connection is served again.
    c = w.Conn(d.socket, timeout=STEP, name="after-flood")
    m = c.ask("list_plugins", pb.ListPlugins())
    if m.WhichOneof("body") != "plugin_list":
        problem("after the flood, a new connection: %s" % w.show(m))
    FRAMES["frames"] += c.frames
    c.close()


def ps_paging(d, rss):
    """`ps` with PS_TASKS tasks: each hostile user submits its share
    (pipelined), root and each user page through them (the users at once),
    then each user cancels its own. Three phases, so that the figures say
    which step costs what."""
    per = PS_TASKS // len(HOSTILE)
    with Phase(d, rss, "ps: submit %d tasks" % (per * len(HOSTILE))):
        subs = [Worker(d, uid, "ps_submit", {"count": per}, label="ps-submit uid %d" % uid)
                for uid in HOSTILE]
        t0 = time.monotonic()
        evs = [wk.event("submitted", STEP * 2) for wk in subs]
        figure("ps: seconds to submit %d tasks from %d users"
               % (per * len(HOSTILE), len(HOSTILE)), round(time.monotonic() - t0, 1))
        rss_full = rss.read()
        figure("ps: RSS holding the tasks (MiB)", round(rss_full / MIB, 1))
    must = [x for ev in evs if ev for x in (ev["first"], ev["last"])]
    with Phase(d, rss, "ps: paging through them"):
        t1 = time.monotonic()
        lister = Worker(d, 0, "ps_list", {"must": must, "at_least": per * len(HOSTILE),
                                          "uid": HOSTILE[0], "per_uid": per})
        for wk in subs:
            wk.send("list")
        show_figures("ps as root", lister.finish(STEP * 2))
        for wk in subs:
            wk.event("listed", STEP * 2)
        paging_peak = rss.peak(t1, time.monotonic())
        figure("ps: RSS growth while paging (MiB; target <= 64)",
               round((paging_peak - rss_full) / MIB, 1))
        if SAN:
            print("  (not asserted in a sanitizer build: ASan's quarantine keeps what each page "
                  "freed)", flush=True)
        elif paging_peak - rss_full > 64 * MIB:
            problem("paging through the tasks grew the daemon by %.1f MiB"
                    % ((paging_peak - rss_full) / MIB))
    with Phase(d, rss, "ps: each user cancels its tasks"):
        for wk in subs:
            wk.send("cancel")
        for wk in subs:
            wk.event("cancelled", STEP * 2)
        for wk in subs:
            wk.send("stop")
            show_figures(wk.label, wk.finish(STEP))


t.main()
