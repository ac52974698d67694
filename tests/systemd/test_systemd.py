"""aiod as a systemd service, tested without systemd (no systemctl, no PID 1):

  units           systemd-analyze verify on every unit (system and user)
  security        systemd-analyze security --offline=yes: exposure <= 2.5
  activation      systemd-socket-activate: the first connection starts aiod,
                  which serves on the passed socket
  notify          a NOTIFY_SOCKET listener sees READY=1 (after plugins and
                  the socket), STATUS= with live counts, RELOADING=1 with
                  MONOTONIC_USEC= then READY=1 on SIGHUP, STOPPING=1
  status_idle     STATUS= is throttled and an idle daemon sends nothing
  watchdog        WATCHDOG=1 at half of WATCHDOG_USEC; a loop blocked on
                  purpose (blocker.block) stops the pings
  reload          SIGHUP loads a newly built plugin while a task of the old
                  one finishes on the old code; the old one is then unloaded
  reload_request  `aioctl reload` does the same and replies with counts;
                  a bad settings file is refused and changes nothing
  config          the settings file: --check-config, line-numbered errors,
                  flags override the file

Run one: AIOD_TEST_ONLY=watchdog python3 tests/systemd/test_systemd.py --aiod ...
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
UNITS = os.path.join(SRC, "systemd")

t = harness.Suite(__file__)
# --plugin-dir is the daemon's bundled plugins; the test plugins are beside.
TEST_PLUGINS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(t.plugin_dir))),
                            "tests", "plugins")


# ---------------------------------------------------------------- notify

class Notify:
    """A bound NOTIFY_SOCKET; a thread keeps every datagram with its arrival
    time (time.monotonic()), split into KEY=VALUE fields."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.msgs = []  # (t, {key: value})
        self.cond = threading.Condition()
        self.closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                break
            fields = {}
            for line in data.decode("utf-8", "replace").split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields[k] = v
            with self.cond:
                self.msgs.append((time.monotonic(), fields))
                self.cond.notify_all()

    def wait(self, pred, what, timeout=15, start=0):
        """Waits for a message (from index `start`) for which pred(fields) is
        true; returns its index."""
        def find():
            for i in range(start, len(self.msgs)):
                if pred(self.msgs[i][1]):
                    return i
            return None
        with self.cond:
            self.cond.wait_for(lambda: find() is not None, timeout=timeout)
            i = find()
        if i is None:
            harness.fail("no notification %s within %.0f s; got %r"
                         % (what, timeout, [m for _, m in self.msgs[start:]][-20:]))
        return i

    def count(self):
        with self.cond:
            return len(self.msgs)

    def close(self):
        self.sock.close()


class NotifyDaemon(harness.Daemon):
    """A harness daemon whose NOTIFY_SOCKET stays open for the whole test."""

    def __init__(self, suite, dirpath, plugin_dir, extra_args=(), env=None):
        super().__init__(suite, dirpath, plugin_dir, extra_args)
        self.extra_env = env or {}
        self.notify = Notify(os.path.join(dirpath, "notify.sock"))

    def start(self):
        env = harness.clean_env()
        env["NOTIFY_SOCKET"] = self.notify.path
        env.update(self.extra_env)
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        self.suite._daemons.append(self)
        threading.Thread(target=self._read_log, daemon=True).start()
        self.ready = self.notify.wait(lambda f: f.get("READY") == "1", "READY=1",
                                      timeout=harness.READY_TIMEOUT)
        t.check(os.path.exists(self.socket), "the socket exists when READY=1 arrives", "")
        return self

    def signal(self, sig):
        self.proc.send_signal(sig)


def notify_daemon(plugin_dir, extra_args=(), env=None):
    return NotifyDaemon(t, t.tmpdir(), plugin_dir, extra_args, env).start()


def private_plugins(*names):
    """A fresh plugin directory (0700, ours: the daemon trusts it) holding
    copies of test plugins: name -> source path."""
    d = t.tmpdir("plug")
    os.chmod(d, 0o700)
    for name, src in names:
        shutil.copy(src, os.path.join(d, name))
    return d


def blocker(gen=1):
    return os.path.join(TEST_PLUGINS, "blocker" if gen == 1 else "blocker%d" % gen, "blocker.so")


def replace_file(src, dst):
    """Installs src at dst as a new inode, the way install(1) does."""
    tmp = dst + ".new"
    shutil.copy(src, tmp)
    os.rename(tmp, dst)


# ---------------------------------------------------------------- units

def fill(template, out, **subst):
    with open(template) as f:
        text = f.read()
    for k, v in subst.items():
        text = text.replace("@%s@" % k, v)
    left = re.findall(r"@[A-Z_]+@", text)
    t.check(not left, "every @VAR@ of %s filled" % template, ": %r" % left)
    with open(out, "w") as f:
        f.write(text)


def unit_dir(kind):
    """The units of `kind` ("system" or "user") with the build's binaries in
    ExecStart/ExecReload (verify checks that they exist)."""
    d = t.tmpdir(kind)
    bindir = os.path.join(d, "bin")
    os.mkdir(bindir)
    os.symlink(os.path.abspath(t.aiod), os.path.join(bindir, "aiod"))
    os.symlink(os.path.abspath(t.aioctl), os.path.join(bindir, "aioctl"))
    src = UNITS if kind == "system" else os.path.join(UNITS, "user")
    fill(os.path.join(src, "aiod.service.in"), os.path.join(d, "aiod.service"),
         AIOD_BINDIR=bindir, AIOD_CONFIG_FILE="/etc/aiod/aiod.conf")
    shutil.copy(os.path.join(src, "aiod.socket"), os.path.join(d, "aiod.socket"))
    return d


@t.test
def units():
    for kind in ("system", "user"):
        d = unit_dir(kind)
        env = harness.clean_env()
        args = ["systemd-analyze", "verify", "--man=no"]
        if kind == "user":
            rt = t.tmpdir("rt")
            os.chmod(rt, 0o700)
            env["XDG_RUNTIME_DIR"] = rt
            args.append("--user")
        r = harness.run(args + [os.path.join(d, "aiod.service"), os.path.join(d, "aiod.socket")],
                        env=env)
        t.eq(r.rc, 0, "systemd-analyze verify of the %s units" % kind, r)
        t.eq(r.err.strip(), "", "systemd-analyze verify of the %s units is silent" % kind, r)
    # The sysusers and tmpfiles snippets parse.
    r = harness.run(["systemd-sysusers", "--dry-run", os.path.join(UNITS, "aiod.sysusers")])
    t.check(r.rc == 0 and "aiod" in r.out + r.err, "systemd-sysusers --dry-run accepts the "
            "snippet and names the aiod user", r)
    with open(os.path.join(UNITS, "aiod.service.in")) as f:
        service = f.read()
    t.check("RuntimeDirectory=" not in service.replace("no RuntimeDirectory=", ""),
            "aiod.service has no RuntimeDirectory= (it would delete the socket's directory)")
    t.contains(service, "Requires=aiod.socket", "the service always gets its socket")


@t.test
def security():
    d = unit_dir("system")
    r = harness.run(["systemd-analyze", "security", "--offline=yes",
                     os.path.join(d, "aiod.service")], env=harness.clean_env())
    m = re.search(r"Overall exposure level for aiod\.service: ([0-9.]+)", r.out + r.err)
    t.check(m, "systemd-analyze security prints an exposure level", r)
    level = float(m.group(1))
    print("exposure level: %.1f" % level)
    t.check(level <= 2.5, "exposure level %.1f <= 2.5" % level, r)


# ---------------------------------------------------------------- activation

@t.test
def activation():
    d = t.tmpdir("act")
    sock = os.path.join(d, "aiod.sock")
    notify = Notify(os.path.join(d, "notify.sock"))
    # aiod gets no --socket: the path must come from the passed fd.
    argv = ["systemd-socket-activate", "-l", sock, "-E", "NOTIFY_SOCKET=" + notify.path,
            t.aiod, "--plugin-dir", t.plugin_dir, "--no-default-plugins"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=harness.clean_env())
    log = []
    listening = threading.Event()

    def read():
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace")
            log.append(line)
            if "Listening on" in line:
                listening.set()
    threading.Thread(target=read, daemon=True).start()
    try:
        t.check(listening.wait(15), "systemd-socket-activate listens", "".join(log))
        exe = os.readlink("/proc/%d/exe" % proc.pid)
        t.check("systemd-socket-activate" in exe, "aiod is not started before the first "
                "connection", ": /proc/PID/exe is %s" % exe)
        t.eq(notify.count(), 0, "no READY=1 before the first connection")
        # The first connection starts aiod; it waits in the backlog until then.
        r = harness.run([t.aioctl, "-s", sock, "run", "demo.sleep", "0", "hi"], timeout=30,
                        env=harness.clean_env())
        t.eq(r.rc, 0, "aioctl through the activated socket", r)
        t.contains(r.out, "hi", "the activated daemon runs a task", r)
        notify.wait(lambda f: f.get("READY") == "1", "READY=1")
        t.check(os.readlink("/proc/%d/exe" % proc.pid) == os.path.realpath(t.aiod),
                "the process is now aiod", "")
        t.contains("".join(log), "listening on the socket passed by systemd",
                   "aiod says it uses the passed socket")
        proc.send_signal(signal.SIGTERM)
        notify.wait(lambda f: f.get("STOPPING") == "1", "STOPPING=1")
        t.eq(proc.wait(30), 0, "aiod exits 0 on SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()


# ---------------------------------------------------------------- notify

STATUS_RE = re.compile(r"^(stopping: )?(\d+) running, (\d+) waiting, (\d+) done, (\d+) connections$")


def status_counts(fields):
    m = STATUS_RE.match(fields.get("STATUS", ""))
    return tuple(int(x) for x in m.groups()[1:]) if m else None


@t.test
def notify():
    with notify_daemon(t.plugin_dir) as d:
        ready = d.notify.msgs[d.ready][1]
        t.eq(status_counts(ready), (0, 0, 0, 0), "READY=1 carries STATUS= with zero counts",
             ": %r" % ready)
        # Right after READY=1 the socket answers and the plugins are there.
        r = d.aioctl("plugins")
        t.eq(r.rc, 0, "aioctl plugins right after READY=1", r)
        t.contains(r.out, "demo.sleep", "plugins were loaded before READY=1", r)
        # Two tasks running: STATUS= reports them within the throttle delay.
        n0 = d.notify.count()
        a = d.aioctl_bg("run", "demo.sleep", "3", "a")
        b = d.aioctl_bg("run", "demo.sleep", "3", "b")
        d.notify.wait(lambda f: (status_counts(f) or (0,))[0] == 2, "STATUS=2 running",
                      start=n0)
        for p in (a, b):
            t.eq(p.wait(30).rc, 0, "the sleeping tasks finish", "")
        d.notify.wait(lambda f: (status_counts(f) or (0, 0, 0))[2] >= 2, "STATUS= 2 done",
                      start=n0)
        # SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1.
        n1 = d.notify.count()
        before = time.monotonic()
        d.signal(signal.SIGHUP)
        i = d.notify.wait(lambda f: f.get("RELOADING") == "1", "RELOADING=1", start=n1)
        fields = d.notify.msgs[i][1]
        t.check("MONOTONIC_USEC" in fields, "RELOADING=1 comes with MONOTONIC_USEC=",
                ": %r" % fields)
        usec = int(fields["MONOTONIC_USEC"])
        t.between(usec / 1e6, before - 0.5, time.monotonic() + 0.5,
                  "MONOTONIC_USEC is CLOCK_MONOTONIC now")
        d.notify.wait(lambda f: f.get("READY") == "1", "READY=1 after the reload", start=i + 1)
        n2 = d.notify.count()
        d.stop()
        d.notify.wait(lambda f: f.get("STOPPING") == "1", "STOPPING=1", start=n2)


@t.test
def status_idle():
    with notify_daemon(t.plugin_dir) as d:
        n0 = d.notify.count()
        start = time.monotonic()
        r = d.aioctl("gather", "demo.sleep 0 a", "demo.sleep 0 b", "demo.sleep 0 c")
        t.eq(r.rc, 0, "three quick tasks", r)
        i = d.notify.wait(lambda f: "STATUS" in f, "STATUS= after the tasks", start=n0)
        t_status, fields = d.notify.msgs[i]
        t.eq(status_counts(fields)[2], 3, "one STATUS= reports all three done", ": %r" % fields)
        t.between(t_status - start, 0.5, 3.0, "STATUS= waits for the throttle delay (1 s)")
        # Nothing changes now: an idle daemon sends nothing (no timer runs).
        n1 = d.notify.count()
        time.sleep(2.5)  # checking that nothing happens: there is no event to wait for
        extra = [m for _, m in d.notify.msgs[n1:]]
        t.eq(extra, [], "an idle daemon sends no notifications")


@t.test
def watchdog():
    plugins = private_plugins(("blocker.so", blocker(1)))
    env = {"WATCHDOG_USEC": "400000"}
    with notify_daemon(plugins, env=env) as d:
        d.wait_log("watchdog: pinging systemd every 200 ms", timeout=5)
        n0 = d.notify.count()
        for k in range(6):
            d.notify.wait(lambda f: f.get("WATCHDOG") == "1", "WATCHDOG=1 #%d" % k,
                          start=d.notify.count() if k else n0, timeout=5)
        pings = [ts for ts, f in d.notify.msgs[n0:] if f.get("WATCHDOG") == "1"]
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        t.check(gaps, "several pings", "")
        avg = sum(gaps) / len(gaps)
        print("watchdog ping interval: %.0f ms (WATCHDOG_USEC=400000)" % (avg * 1000))
        t.between(avg, 0.15, 0.30, "average ping interval is half of WATCHDOG_USEC (0.2 s)")
        # Block the loop for 1.5 s on purpose: no pings meanwhile.
        n1 = d.notify.wait(lambda f: f.get("WATCHDOG") == "1", "a ping before the block",
                           start=d.notify.count()) + 1
        r = d.aioctl("run", "blocker.block", "1.5", timeout=30)
        t.eq(r.rc, 0, "blocker.block returns", r)
        d.notify.wait(lambda f: f.get("WATCHDOG") == "1", "WATCHDOG=1 after the block",
                      start=d.notify.count())
        # From the last ping before the block on.
        pings = [ts for ts, f in d.notify.msgs[n1 - 1:] if f.get("WATCHDOG") == "1"]
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        t.check(gaps and max(gaps) >= 1.3, "a blocked loop sends no pings (longest gap "
                "%.2f s, block 1.5 s, interval 0.2 s)" % (max(gaps) if gaps else 0),
                ": pings at %r" % [round(p - pings[0], 3) for p in pings])
        d.wait_log("held the event loop", timeout=5)


# ---------------------------------------------------------------- reload

@t.test
def reload():
    plugins = private_plugins(("blocker.so", blocker(1)))
    so = os.path.join(plugins, "blocker.so")
    with notify_daemon(plugins) as d:
        r = d.aioctl("run", "blocker.generation")
        t.eq(r.lines[-1:], ["1"], "generation 1 runs", r)
        old = d.aioctl_bg("run", "blocker.hold", "2")
        _, line = old.next_line(15)
        t.contains(line, "holding on generation 1", "the old task runs generation 1")

        replace_file(blocker(2), so)  # a newly built plugin, as install(1) puts it
        n = d.notify.count()
        d.signal(signal.SIGHUP)
        i = d.notify.wait(lambda f: f.get("RELOADING") == "1", "RELOADING=1", start=n)
        d.notify.wait(lambda f: f.get("READY") == "1", "READY=1 after reload", start=i + 1)
        d.wait_log("reloaded plugin 'blocker'", timeout=5)
        r = d.aioctl("run", "blocker.generation")
        t.eq(r.lines[-1:], ["2"], "new calls run generation 2", r)
        t.check(old.proc.poll() is None, "the old task is still running", "")

        res = old.wait(30)
        t.eq(res.rc, 0, "the old task ends normally", res)
        t.eq(res.lines[-1:], ['"generation 1"'], "the old task finished on the old code", res)
        # Unloaded when its last task ended (or, at the latest, at the next
        # reload).
        d.signal(signal.SIGHUP)
        d.wait_log("unloading it", timeout=10)
        r = d.aioctl("run", "blocker.generation")
        t.eq(r.lines[-1:], ["2"], "generation 2 still runs after the old one is gone", r)
        # A file rewritten in place (same inode) is a change like any other:
        # the daemon runs private copies of its plugins, so the next reload
        # loads it as a new generation (the third load of the file).
        with open(so, "r+b") as f:
            f.seek(0, os.SEEK_END)
            f.write(b"\0")
        d.signal(signal.SIGHUP)
        d.wait_log("as generation 3", timeout=10)
        r = d.aioctl("run", "blocker.generation")
        t.eq(r.lines[-1:], ["2"], "the rewritten file's code runs", r)
        # A removed file retires the plugin.
        os.unlink(so)
        d.signal(signal.SIGHUP)
        d.wait_log("is gone from the plugin directories", timeout=10)
        r = d.aioctl("run", "blocker.generation")
        t.eq(r.rc, 2, "a removed plugin's functions are unknown", r)


@t.test
def reload_a_renamed_plugin_file():
    """A new version installed under a new name, the old file removed (or
    plugin_dir changed to another copy): the reload loads the new file. The
    old plugin, whose file is gone, no longer holds its name against it."""
    plugins = private_plugins(("blocker-1.so", blocker(1)))
    with notify_daemon(plugins) as d:
        r = d.aioctl("run", "blocker.generation")
        t.eq(r.lines[-1:], ["1"], "generation 1 runs", r)
        shutil.copy(blocker(2), os.path.join(plugins, "blocker-2.so"))
        os.unlink(os.path.join(plugins, "blocker-1.so"))
        r = d.aioctl("reload")
        t.eq(r.rc, 0, "aioctl reload", r)
        t.contains(r.out, "1 added, 0 replaced, 1 removed", "the reply", r)
        r = d.aioctl("run", "blocker.generation")
        t.eq(r.lines[-1:], ["2"], "the renamed file's generation 2 runs", r)


@t.test
def reload_after_a_plugin_that_stays_in_memory():
    """glibc finds a loaded object by the name it was opened by before it
    looks at the file; aiod opens plugins as /proc/self/fd/N. A plugin that
    dlclose cannot unload (generation 3: -z nodelete, as C++ code with unique
    symbols) must not be handed to a later file opened on the same N."""
    plugins = private_plugins(("blocker.so", blocker(3)))
    so = os.path.join(plugins, "blocker.so")
    with notify_daemon(plugins) as d:
        r = d.aioctl("run", "blocker.generation")
        t.eq(r.lines[-1:], ["3"], "generation 3 runs", r)
        # SIGHUP, not a Reload request: no connection is open during the
        # reload to take the descriptor number generation 3's unloading frees.
        for n, gen in enumerate((1, 2), 1):
            replace_file(blocker(gen), so)
            d.signal(signal.SIGHUP)
            t.eq(d.wait_log_count("reloaded plugin 'blocker'", n, 10), n,
                 "reload %d logged" % n)
            r = d.aioctl("run", "blocker.generation")
            t.eq(r.lines[-1:], [str(gen)], "generation %d runs after its reload" % gen, r)


@t.test
def reload_request():
    plugins = private_plugins(("blocker.so", blocker(1)))
    so = os.path.join(plugins, "blocker.so")
    conf = os.path.join(t.tmpdir("conf"), "aiod.conf")
    with open(conf, "w") as f:
        f.write("# test\nplugin_dir = %s\ndefault_plugins = no\n" % plugins)
    with notify_daemon(plugins, extra_args=["--config", conf]) as d:
        replace_file(blocker(2), so)
        r = d.aioctl("reload")
        t.eq(r.rc, 0, "aioctl reload", r)
        t.contains(r.out, "1 replaced", "the reply counts the replaced plugin", r)
        r = d.aioctl("run", "blocker.generation")
        t.eq(r.lines[-1:], ["2"], "aioctl reload loaded generation 2", r)
        r = d.aioctl("--json", "reload")
        t.contains(r.out, '"unchanged":1', "--json reply", r)
        # A bad settings file: refused with file and line, nothing changes.
        with open(conf, "a") as f:
            f.write("max_task = 3\n")
        replace_file(blocker(1), so)
        r = d.aioctl("reload")
        t.eq(r.rc, 2, "a reload with a bad settings file is refused", r)
        t.contains(r.err, "aiod.conf:4: unknown key 'max_task' (did you mean 'max_tasks'?)",
                   "the error names file, line and key", r)
        r = d.aioctl("run", "blocker.generation")
        t.eq(r.lines[-1:], ["2"], "a refused reload changes no plugin", r)


# ---------------------------------------------------------------- settings

@t.test
def config():
    d = t.tmpdir("conf")
    good = os.path.join(d, "good.conf")
    with open(good, "w") as f:
        f.write("# limits\n\nmax_tasks = 100\n  retain_seconds=60  \nstack_size = 512K\n"
                "plugin_dir = /opt/a\nplugin_dir = /opt/b\nlog_level = debug\n")
    r = harness.run([t.aiod, "--config", good, "--check-config"], env=harness.clean_env())
    t.eq(r.rc, 0, "a good file passes --check-config", r)
    for line in ("max_tasks = 100", "retain_seconds = 60", "stack_size = 524288",
                 "plugin_dir = /opt/a", "plugin_dir = /opt/b", "log_level = debug"):
        t.contains(r.out, line, "--check-config prints the effective settings", r)
    r = harness.run([t.aiod, "--config", good, "--check-config", "--max-tasks", "7",
                     "--plugin-dir", "/opt/c"], env=harness.clean_env())
    t.contains(r.out, "max_tasks = 7", "a flag overrides the file", r)
    t.check("/opt/a" not in r.out and "plugin_dir = /opt/c" in r.out,
            "--plugin-dir replaces the file's plugin_dir list", r)

    cases = [
        ("max_task = 3\n", "bad.conf:1: unknown key 'max_task' (did you mean 'max_tasks'?)"),
        ("# c\nmax_tasks = 0\n", "bad.conf:2: max_tasks: '0' is not a number between 1"),
        ("max_tasks = 5\nmax_tasks = 6\n", "bad.conf:2: 'max_tasks' is set again (first set "
         "on line 1)"),
        ("just words\n", "bad.conf:1: expected 'key = value'"),
        ("log_level = loud\n", "bad.conf:1: log_level: unknown level 'loud'"),
        ("plugin_dir = relative\n", "bad.conf:1: plugin_dir 'relative' is not an absolute"),
        ("max_frame =\n", "bad.conf:1: 'max_frame' has no value"),
        ("default_plugins = maybe\n", "bad.conf:1: default_plugins: 'maybe' is not a boolean"),
        ("# who\nadmin_group = no-such-group-here\n",
         "bad.conf:2: admin_group: no group named 'no-such-group-here'"),
        ("proc_user = no-such-user-here\n", "bad.conf:1: proc_user: no user named "
         "'no-such-user-here'"),
    ]
    bad = os.path.join(d, "bad.conf")
    for text, want in cases:
        with open(bad, "w") as f:
            f.write(text)
        r = harness.run([t.aiod, "--config", bad, "--check-config"], env=harness.clean_env())
        t.eq(r.rc, 1, "--check-config of %r fails" % text, r)
        t.contains(r.err, want, "the error for %r" % text, r)
    # Size suffixes in either case, up to the T the ranges are written with.
    sizes = os.path.join(d, "sizes.conf")
    with open(sizes, "w") as f:
        f.write("max_write_queue = 3m\nmax_write_queue_total = 1T\nstack_size = 1g\n")
    r = harness.run([t.aiod, "--config", sizes, "--check-config"], env=harness.clean_env())
    t.eq(r.rc, 0, "sizes with m, T and g pass --check-config", r)
    for line in ("max_write_queue = 3145728", "max_write_queue_total = 1099511627776",
                 "stack_size = 1073741824"):
        t.contains(r.out, line, "the size read", r)
    # A FIFO named as the settings file is refused at once; opening it for
    # reading would wait for a writer (at a reload, with the loop held).
    fifo = os.path.join(d, "fifo.conf")
    os.mkfifo(fifo)
    r = harness.run([t.aiod, "--config", fifo, "--check-config"], timeout=30,
                    env=harness.clean_env())
    t.eq(r.rc, 1, "--check-config of a FIFO fails", r)
    t.contains(r.err, "not a regular file", "and says why", r)
    r = harness.run([t.aiod, "--config", os.path.join(d, "missing.conf"), "--check-config"],
                    env=harness.clean_env())
    t.eq(r.rc, 1, "--config with a missing file fails", r)
    env = harness.clean_env()
    env["AIOD_CONFIG"] = os.path.join(d, "missing.conf")
    r = harness.run([t.aiod, "--check-config"], env=env)
    t.eq(r.rc, 0, "a missing $AIOD_CONFIG file counts as empty", r)
    # The example file documents every key and is itself valid.
    r = harness.run([t.aiod, "--config", os.path.join(UNITS, "aiod.conf.example"),
                     "--check-config"], env=harness.clean_env())
    t.eq(r.rc, 0, "systemd/aiod.conf.example is valid", r)
    with open(os.path.join(UNITS, "aiod.conf.example")) as f:
        example = f.read()
    for line in r.out.splitlines()[1:]:
        key = line.split(" =")[0]
        t.contains(example, key, "aiod.conf.example mentions %s" % key)
    # The daemon uses the file: a limit from it is what the client is told.
    with open(good, "w") as f:
        f.write("max_frame = 64K\n")
    with t.daemon(extra_args=["--config", good]) as dm:
        raw = dm.raw()
        raw.send_frame(harness.msg_hello())
        rep = raw.recv()
        t.eq(rep.body.get(3, [0])[0], 65536, "HelloReply.max_frame comes from the file")
        raw.close()


t.main()
