"""A lab for aiod's cluster queues (issue 16, docs/cluster.md): one
redis-server on a free loopback port in a temp dir (AOF on, fsync on every
write, no RDB snapshots), and N aiod hosts, each with its own socket, state
dir and settings file (`-c FILE`) naming that Redis, the host's name, its
queues, its capacity and a short visibility timeout so that failover takes
about a second and a half.

    lab = cluster_lab.Cluster(t, hosts=[Host("h1", queues="q1"), ...])
    with lab:                       # starts Redis, then the hosts
        h1 = lab["h1"]              # a harness.Daemon with .name
        tid = lab.submit(h1, "q1", "demo.sleep", "0", "x")
        lab.await_all(lab["h2"], [tid])

Synchronisation: Redis readiness by `redis-cli -p PORT ping`, the daemons'
by their READY=1 (harness.Daemon), a host's membership of the cluster by
polling Redis under a deadline (timeouts() scale it for sanitizer builds).
Only the standard library is used; Redis is read through a minimal RESP
client (RespClient) so that thousands of keys are read in one pipeline.
"""

import json
import os
import signal
import socket
import subprocess
import threading
import time

import harness

# Wall-clock allowances are multiplied by this: sanitizer builds run the
# daemons several times slower.
SCALE = harness.scaled(1, 3, 8)

# The spec's id base: every cluster task's id is at least 2^48.
CLUSTER_ID_BASE = 1 << 48

REDIS_SERVER = os.environ.get("AIOD_REDIS_SERVER", "redis-server")
REDIS_CLI = os.environ.get("AIOD_REDIS_CLI", "redis-cli")


def timeout(seconds):
    """A deadline's length for this build."""
    return seconds * SCALE


def until(pred, what, limit, interval=0.05, detail=None):
    """Calls pred() until it returns something true and returns that; fails
    after `limit` seconds (already scaled by the caller) naming `what`, the
    last value pred returned and detail() if given (say, the hosts' logs).
    This queries state; it stands in for no event the daemons send."""
    deadline = time.monotonic() + limit
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            harness.fail("%s: not reached within %.1f s (last: %r)%s"
                         % (what, limit, last, detail() if detail else ""))
        time.sleep(interval)


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


# ---------------------------------------------------------------- Redis


class RedisError(Exception):
    pass


class RespClient(harness.SocketClient):
    """A RESP2 connection: command() sends one command and returns its
    reply; pipeline() sends many at once and returns their replies in order.
    Bulk strings come back as str, nil as None, errors as RedisError
    objects (pipeline) or raised (command)."""

    def __init__(self, port, timeout_s=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.buf = b""

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        return b"".join(out)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode("utf-8", "replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise ConnectionError("unexpected RESP reply %r" % line)

    def command(self, *args):
        self.sock.sendall(self.encode(args))
        r = self._reply()
        if isinstance(r, RedisError):
            raise r
        return r

    def pipeline(self, commands, batch=1000):
        out = []
        for i in range(0, len(commands), batch):
            part = commands[i:i + batch]
            self.sock.sendall(b"".join(self.encode(c) for c in part))
            out.extend(self._reply() for _ in part)
        return out



class Redis:
    """One redis-server in `dirpath`: AOF with appendfsync always (an
    acknowledged write survives a kill -9), no RDB. restart() keeps the
    port and the directory, hence the data."""

    def __init__(self, dirpath, port=None):
        self.dir = dirpath
        self.port = port or free_port()
        self.proc = None
        self.conf = os.path.join(dirpath, "redis.conf")
        self.logfile = os.path.join(dirpath, "redis.log")
        with open(self.conf, "w") as f:
            f.write("bind 127.0.0.1\n"
                    "port %d\n"
                    "dir %s\n"
                    "daemonize no\n"
                    "logfile %s\n"
                    "appendonly yes\n"
                    "appendfsync always\n"
                    "save \"\"\n" % (self.port, dirpath, self.logfile))

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def log(self):
        try:
            with open(self.logfile, encoding="utf-8", errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return "(no redis log)"

    def ping(self):
        """True when redis-cli ping answers PONG (not LOADING, not refused)."""
        r = harness.run([REDIS_CLI, "-p", self.port, "ping"], timeout=10)
        return r.rc == 0 and r.out.strip() == "PONG"

    def start(self):
        self.proc = subprocess.Popen([REDIS_SERVER, self.conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def ready():
            if self.proc.poll() is not None:
                harness.fail("redis-server exited with %s at start; its log:\n%s"
                             % (self.proc.returncode, self.log()))
            return self.ping()
        until(ready, "redis-server on port %d answering PONG" % self.port, timeout(20))
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """kill -9: no shutdown, no last fsync beyond appendfsync always's."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def shutdown(self):
        """SHUTDOWN (Redis writes and syncs its AOF, then exits)."""
        if not self.alive():
            return
        harness.run([REDIS_CLI, "-p", self.port, "shutdown"], timeout=30)
        try:
            self.proc.wait(timeout=timeout(20))
        except subprocess.TimeoutExpired:
            self.kill()
            harness.fail("redis-server did not exit after SHUTDOWN; its log:\n%s" % self.log())

    def restart(self):
        self.kill()
        return self.start()

    def cli(self, *args):
        """redis-cli -p PORT ARGS... (a Result)."""
        return harness.run([REDIS_CLI, "-p", self.port] + [str(a) for a in args], timeout=30)

    def conn(self, db=None):
        c = RespClient(self.port)
        if db:
            c.command("SELECT", db)
        return c

    def command(self, *args, db=None):
        with self.conn(db) as c:
            return c.command(*args)


class TcpListener:
    """A listener on 127.0.0.1 (a port of its own) that hands each
    connection to self.accepted(conn) on its accepting thread."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def close(self):
        self.sock.close()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted(c)


class DroppingServer(TcpListener):
    """Accepts every connection and closes it at once, as a Redis at
    maxclients (or behind a broken proxy) does; notes when each came."""

    def __init__(self):
        self.times = []
        self.first = threading.Event()
        super().__init__()

    def accepted(self, c):
        self.times.append(time.monotonic())
        self.first.set()
        c.close()


class LoadingProxy(TcpListener):
    """A TCP proxy in front of a Redis that plays one restarting with a big
    data set: until `loading` is set False it answers every command with
    Redis's LOADING error (as Redis does while it reads its AOF), then
    passes each connection's commands on to the real Redis. It reads whole
    RESP commands (arrays of bulk strings, what hiredis sends)."""

    def __init__(self, backend_port):
        self.backend = backend_port
        self.loading = True
        self.refused = 0
        super().__init__()

    def accepted(self, c):
        threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        rd = c.makefile("rb")
        back = None
        try:
            while True:
                head = rd.readline()
                if not head:
                    return
                raw = [head]
                for _ in range(int(head[1:])):
                    size = rd.readline()
                    raw += [size, rd.read(int(size[1:]) + 2)]
                if self.loading:
                    self.refused += 1
                    c.sendall(b"-LOADING Redis is loading the dataset in memory\r\n")
                    continue
                if back is None:
                    back = socket.create_connection(("127.0.0.1", self.backend))
                    threading.Thread(target=self._pump, args=(back, c), daemon=True).start()
                back.sendall(b"".join(raw))
        except (OSError, ValueError):
            pass
        finally:
            c.close()
            if back is not None:
                back.close()

    @staticmethod
    def _pump(back, c):
        try:
            while True:
                data = back.recv(65536)
                if not data:
                    break
                c.sendall(data)
        except OSError:
            pass
        try:
            c.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


# ---------------------------------------------------------------- hosts


class Host:
    """What one aiod of the lab is given: its cluster name, queues (a comma
    list, "" for a host that only submits), capacity, extra settings lines
    (e.g. "on_interrupt = demo.sleep retry"), extra plugin directories
    (loaded besides the build's daemon/plugins), the Redis database its
    `cluster` URL names (None: the URL names none, so 0) and its own
    cluster_visibility_ms (None: the lab's)."""

    def __init__(self, name, queues="q1", capacity=16, settings=(), plugin_dirs=(), db=None,
                 visibility_ms=None):
        self.name = name
        self.db = db
        self.visibility_ms = visibility_ms
        self.queues = queues
        self.capacity = capacity
        self.settings = list(settings)
        self.plugin_dirs = list(plugin_dirs)


class Cluster:
    """A Redis and the hosts; a context manager that stops the hosts (each
    must exit 0 on SIGTERM) and then Redis, or kills everything when the
    test failed."""

    def __init__(self, suite, hosts, visibility_ms=1500, start_only=None):
        """start_only: the names of the hosts start() starts (default all);
        the test starts the others with start_host."""
        self.suite = suite
        self.specs = list(hosts)
        self.start_only = start_only
        self.visibility_ms = visibility_ms
        self.root = suite.tmpdir("cluster")
        self.redis = Redis(self._mkdir("redis"))
        self.daemons = {}
        self.dirs = {}

    def _mkdir(self, name):
        path = os.path.join(self.root, name)
        os.makedirs(path, exist_ok=True)
        return path

    # -- start / stop

    def settings_text(self, spec, redis_url=None):
        url = redis_url or self.redis.url
        if spec.db is not None:
            url += "/%d" % spec.db
        lines = ["cluster = %s" % url,
                 "cluster_host = %s" % spec.name,
                 "cluster_capacity = %d" % spec.capacity,
                 "cluster_visibility_ms = %d" % (spec.visibility_ms or self.visibility_ms)]
        if spec.queues:
            lines.append("cluster_queues = %s" % spec.queues)
        return "\n".join(lines + spec.settings) + "\n"

    def start_host(self, name):
        """Starts (or restarts, in the same directory, socket and state dir)
        the host `name`; returns its harness.Daemon, with .name set."""
        spec = next(s for s in self.specs if s.name == name)
        d = self.dirs.get(name) or self._mkdir(name)
        self.dirs[name] = d
        conf = os.path.join(d, "aiod.conf")
        with open(conf, "w") as f:
            f.write(self.settings_text(spec))
        extra = ["-c", conf]
        for p in spec.plugin_dirs:
            extra += ["--plugin-dir", p]
        daemon = harness.Daemon(self.suite, d, extra_args=extra)
        daemon.name = name
        daemon.start()
        self.daemons[name] = daemon
        return daemon

    def start(self):
        # The suite kills what it holds when a test fails or the script
        # ends (harness.Suite.main): Redis too, so that none outlives a run.
        if self.redis not in self.suite._daemons:
            self.suite._daemons.append(self.redis)
        self.redis.start()
        names = self.start_only or [s.name for s in self.specs]
        for name in names:
            self.start_host(name)
        self.wait_joined(names)
        return self

    def wait_joined(self, names):
        """Waits until every host named has registered in Redis (its
        aiod:host:NAME hash, docs/cluster.md)."""
        def joined():
            for n in names:
                self.daemons[n].assert_alive()
            missing = [n for n in names
                       if not self.redis.command("EXISTS", "aiod:host:%s" % n, db=self.db(n))]
            return not missing or None
        until(joined, "hosts %s registered in Redis (aiod:host:NAME)" % ", ".join(names),
              timeout(20), detail=lambda: "\nRedis keys: %r\nhost logs:%s"
              % (self.redis.command("KEYS", "aiod:*")[:20], self.logs()))

    def db(self, name):
        """The Redis database of host `name` (None: the URL's default, 0)."""
        return next(s for s in self.specs if s.name == name).db

    def servers(self, queue, function, db=None):
        """The hosts in aiod:serve:QUEUE:FUNCTION (of database `db`)."""
        return set(self.redis.command("ZRANGE", "aiod:serve:%s:%s" % (queue, function), 0, -1,
                                      db=db))

    def wait_serving(self, queue, function, names):
        """Waits until each host named advertises `function` on `queue` (in
        its own database)."""
        until(lambda: all(n in self.servers(queue, function, self.db(n)) for n in names),
              "hosts %s serving %s on queue %s" % (sorted(names), function, queue), timeout(20),
              detail=lambda: "\nserving: %r\nhost logs:%s"
              % (self.servers(queue, function), self.logs()))

    def stop(self):
        try:
            for d in self.daemons.values():
                if d.alive():
                    d.stop(timeout=timeout(30))
        except BaseException:
            self.kill_all()
            raise
        self.redis.shutdown()

    def kill_all(self):
        for d in self.daemons.values():
            d.kill()
        self.redis.kill()

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.kill_all()
            raise

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.stop()
        else:
            self.kill_all()
        return False

    def __getitem__(self, name):
        return self.daemons[name]

    def log(self, name):
        return self.daemons[name].log()

    def logs(self):
        """Every host's log, for a failure message."""
        return "".join("\n==== %s\n%s" % (n, d.log()[-1500:]) for n, d in self.daemons.items())

    # -- clients

    def submit(self, host, queue, function, *args, detach=False):
        """`aioctl submit --queue QUEUE [--detach] FUNCTION ARGS...` on `host`:
        the cluster id, checked to be one."""
        opts = ["--queue", queue] + (["--detach"] if detach else [])
        r = host.aioctl("submit", *opts, function, *args)
        if r.rc != 0:
            harness.fail("aioctl submit --queue %s %s on %s failed:%s\nhost logs:%s"
                         % (queue, function, host.name, r, self.logs()))
        tid = int(r.lines[-1])
        if tid < CLUSTER_ID_BASE:
            harness.fail("aioctl submit --queue returned %d, below the cluster id base 2^48:%s"
                         % (tid, r))
        return tid

    def submit_many(self, host, queue, n, function, *args):
        """n submits through cluster_submit (libaioclient's
        aioc_submit_queue) on one connection to `host`; `@i` in args is the
        index. Returns the ids in order."""
        tool = os.environ.get("AIOD_CLUSTER_SUBMIT")
        if not tool or not os.path.exists(tool):
            harness.fail("the cluster_submit helper was not built (AIOD_CLUSTER_SUBMIT=%r): it "
                         "needs libaioclient's aioc_submit_queue (tests/integration/"
                         "integration.cmake builds it once client/lib defines it)" % tool)
        r = harness.run([tool, host.socket, queue, n, function] + list(args),
                        timeout=timeout(300), env=harness.clean_env())
        if r.rc != 0:
            harness.fail("cluster_submit of %d tasks to %s on %s failed:%s\nhost logs:%s"
                         % (n, queue, host.name, r, self.logs()))
        ids = [int(l) for l in r.lines if l.strip()]
        if len(ids) != n:
            harness.fail("cluster_submit printed %d ids for %d tasks:%s" % (len(ids), n, r))
        return ids

    def await_all(self, host, ids, limit=60):
        """`aioctl --json await ID...` on `host` (in chunks of 2,000 ids);
        {id: the outcome line as a dict}. Fails when aioctl could not get an
        outcome for every id (it exits 0, 1 or 5 with one line per id)."""
        out = {}
        for i in range(0, len(ids), 2000):
            part = ids[i:i + 2000]
            r = host.aioctl("--json", "await", "--timeout", timeout(limit), *part,
                            timeout=timeout(limit) + 30)
            lines = [json.loads(l) for l in r.lines if l.strip()]
            if r.rc not in (0, 1, 5) or len(lines) != len(part):
                harness.fail("aioctl await of %d cluster tasks on %s: %d outcome lines, exit %s"
                             ":%s\nhost logs:%s" % (len(part), host.name, len(lines), r.rc, r,
                                                    self.logs()))
            for line in lines:
                out[line["task"]] = line
        missing = [i for i in ids if i not in out]
        if missing:
            harness.fail("await on %s gave no outcome for %d ids, e.g. %r"
                         % (host.name, len(missing), missing[:5]))
        return out

    def show(self, host, tid):
        """`aioctl show ID` on `host` as {lower-cased key: value}."""
        r = host.aioctl("show", tid)
        if r.rc != 0:
            harness.fail("aioctl show %d on %s failed:%s" % (tid, host.name, r))
        info = {}
        for line in r.lines:
            key, sep, value = line.partition(":")
            if sep:
                info[key.strip().lower()] = value.strip()
        info["_text"] = r.out
        return info

    def task_hashes(self, ids):
        """{id: the aiod:t:ID hash as a dict} for many ids, in one pipeline."""
        with self.redis.conn() as c:
            replies = c.pipeline([("HGETALL", "aiod:t:%d" % i) for i in ids])
        out = {}
        for tid, r in zip(ids, replies):
            if isinstance(r, RedisError):
                harness.fail("HGETALL aiod:t:%d: %s" % (tid, r))
            out[tid] = dict(zip(r[0::2], r[1::2]))
        return out

    def pending(self, queue, function):
        """XPENDING's count for the stream of queue/function, group aiod."""
        r = self.redis.command("XPENDING", "aiod:q:%s:%s" % (queue, function), "aiod")
        return r[0]
