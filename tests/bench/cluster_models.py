#!/usr/bin/env python3
"""Redis's own cost of a queued task under several data models.

aiod-cluster-bench compares aiod's queued no-op tasks with a bare
XADD / XREADGROUP / XACK loop. This tool asks the question behind that
ratio: what does Redis spend per task under a given data model, whoever
the client is? It starts redis-server on 127.0.0.1 (append-only file on,
fsync every second, as the cluster bench and docs/cluster.md have it),
drives each model from one connection, and reads the server's CPU time
(utime + stime of the process, all its threads) before and after. The
client's speed does not enter the figure: only Redis's CPU per task does,
and 1 / that is the rate one Redis core can carry.

Models (each runs N tasks in rounds of BATCH: submit the round, read it
through the group, end it):

  bare    XADD of the 51-byte call per task, XREADGROUP COUNT BATCH, one
          XACK of the round's ids: the bench's limit loop.
  aiod    the scripts of daemon/cluster/lua.c as aiod calls them (submit,
          fetch, finish; read from the source file, so they are the real
          ones): a task hash written at submit, at start and at the end.
  lean    the least a Lua model can do per task: one XADD with an entry id
          derived from the task id (no hash, no index) and one SET of the
          packed outcome with its TTL; the serve check, the id counter,
          the ownership check (XPENDING of this consumer), XACK and one
          PUBLISH of the round's ends are per round.
  plain   no Lua at all, pipelined: XADD plus a SET of the id's entry (an
          index, so that any host finds a queued task) per task, then
          SET of the outcome per task, one XACK and one PUBLISH per round.
          Nothing is checked atomically: not a design, a floor.

Usage: tests/bench/cluster_models.py [-n N] [--batch B[,B...]]
       [--models M[,M...]] [--redis-server PATH]
Defaults: N 100000, batches 32 and 256, every model. Prints a Markdown
table: model, batch, Redis CPU per task, the rate one core carries, and
the ratio to bare at the same batch. About 20 s with the defaults.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LUA_C = os.path.join(HERE, "..", "..", "daemon", "cluster", "lua.c")
CALL = b"c" * 51  # the size of a packed QueuedTask of bench.noop
OUTCOME = b"o" * 30  # a packed outcome of a no-op: state, times, result
QUEUE = "aiod:q:bench:bench.noop"
SERVE = "aiod:serve:bench:bench.noop"
FIRST_ID = 281474976710656  # 2^48, where aiod's cluster ids begin


class Redis:
    """A minimal RESP2 client: pipelined commands, replies as Python values."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.rd = self.sock.makefile("rb")

    @staticmethod
    def _encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _reply(self):
        line = self.rd.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError("Redis: " + rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.rd.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError("Redis: unexpected reply %r" % line)

    def pipe(self, cmds):
        self.sock.sendall(b"".join(self._encode(c) for c in cmds))
        return [self._reply() for _ in cmds]

    def do(self, *args):
        return self.pipe([args])[0]


def aiod_scripts(path):
    """The Lua scripts of lua.c: its string macros and `const char lua_X[]`
    definitions, concatenated as the C compiler would."""
    src = open(path).read()
    unescape = {"n": "\n", '"': '"', "\\": "\\", "t": "\t"}

    def text(body, macros):
        out = []
        for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|\b([A-Z_]{4,})\b', body):
            if m.group(1) is not None:
                out.append(re.sub(r"\\(.)", lambda e: unescape[e.group(1)], m.group(1)))
            elif m.group(2) in macros:
                out.append(macros[m.group(2)])
        return "".join(out)

    macros = {}
    for m in re.finditer(r"#define (LUA_[A-Z_]+)((?:[^\n]*\\\n)*[^\n]*)", src):
        macros[m.group(1)] = text(m.group(2).replace("\\\n", "\n"), macros)
    scripts = {}
    for m in re.finditer(r"const char lua_([a-z]+)\[\] =(.*?);\n", src, re.S):
        scripts[m.group(1)] = text(m.group(2), macros)
    for need in ("submit", "fetch", "finish"):
        if need not in scripts:
            sys.exit("cluster_models.py: no lua_%s in %s" % (need, path))
    return scripts


LEAN_SUBMIT = """
local n = #ARGV / 2
if redis.call('EXISTS', KEYS[3]) == 0 then return 'NOSERVE' end
local base, res = redis.call('INCRBY', KEYS[1], n) - n, {}
for j = 1, n do
  local id = string.format('%d', 281474976710656 + base + j)
  redis.call('XADD', KEYS[2], id .. '-1', 't', ARGV[2 * j - 1], 'u', ARGV[2 * j])
  res[j] = id
end
return res
"""

LEAN_FINISH = """
local stream, host, ttl, mine, acks, ends, res = KEYS[1], ARGV[1], ARGV[2], {}, {}, {}, {}
for _, e in ipairs(redis.call('XPENDING', stream, 'aiod', '-', '+', 1000000, host)) do
  mine[e[1]] = true
end
for j = 2, #KEYS do
  local eid = ARGV[2 * j - 1]
  if not mine[eid] then res[j - 1] = 'lost' else
    redis.call('SET', KEYS[j], ARGV[2 * j], 'EX', ttl)
    acks[#acks + 1] = eid
    ends[#ends + 1] = string.sub(KEYS[j], 8)
    res[j - 1] = 'ok'
  end
end
if #acks > 0 then
  redis.call('XACK', stream, 'aiod', unpack(acks))
  redis.call('PUBLISH', 'aiod:ev', 'done ' .. table.concat(ends, ' '))
end
return res
"""


def run_bare(r, n, batch, _):
    for _round in range(0, n, batch):
        r.pipe([("XADD", QUEUE, "*", "t", CALL) for _ in range(batch)])
        got = r.do("XREADGROUP", "GROUP", "aiod", "h1", "COUNT", batch, "STREAMS", QUEUE, ">")
        r.do("XACK", QUEUE, "aiod", *[e[0] for e in got[0][1]])


def run_aiod(r, n, batch, sha):
    """aiod's calls, as flush_submits (ops.c), the fetch and write_finished
    (worker.c) build them."""
    for _round in range(0, n, batch):
        keys, argv = ["aiod:seq"], ["h1"]
        for _ in range(batch):
            keys += [QUEUE, SERVE]
            argv += [CALL, "bench", "bench.noop", "1000", "1800000000000000"]
        ids = r.do("EVALSHA", sha["submit"], len(keys), *keys, *argv)
        assert all(i != b"NOSERVE" for i in ids), ids
        got = r.do("EVALSHA", sha["fetch"], 1, QUEUE, "h1", batch, 0, "1800000000000001",
                    "boot:1:1", batch)
        keys, argv = [], ["h1", "3600"]
        for stream, eid, tid, _call in got:
            keys += [b"aiod:t:" + tid, stream, b"aiod:o:" + tid]
            argv += [eid, "done", "", "", OUTCOME, "1800000000000002", "0", "0"]
        res = r.do("EVALSHA", sha["finish"], len(keys), *keys, *argv)
        assert res[: len(got)] == [b"ok"] * len(got), res


def run_lean(r, n, batch, sha):
    for _round in range(0, n, batch):
        argv = []
        for _ in range(batch):
            argv += [CALL, "1000"]
        ids = r.do("EVALSHA", sha["lean_submit"], 3, "aiod:seq", QUEUE, SERVE, *argv)
        assert len(ids) == batch, ids
        got = r.do("XREADGROUP", "GROUP", "aiod", "h1", "COUNT", batch, "STREAMS", QUEUE, ">")
        keys, argv = [QUEUE], ["h1", "3600"]
        for eid, _fields in got[0][1]:
            keys.append(b"aiod:t:" + eid.split(b"-")[0])
            argv += [eid, OUTCOME]
        res = r.do("EVALSHA", sha["lean_finish"], len(keys), *keys, *argv)
        assert res == [b"ok"] * batch, res


def run_plain(r, n, batch, _):
    for _round in range(0, n, batch):
        base = r.do("INCRBY", "aiod:seq", batch) - batch
        tids = [b"%d" % (FIRST_ID + base + j + 1) for j in range(batch)]
        eids = r.pipe([("XADD", QUEUE, "*", "id", t, "t", CALL) for t in tids])
        r.pipe([("SET", b"aiod:i:" + t, e) for t, e in zip(tids, eids)])
        got = r.do("XREADGROUP", "GROUP", "aiod", "h1", "COUNT", batch, "STREAMS", QUEUE, ">")
        ends = [f[1] for _eid, f in got[0][1]]
        cmds = [("SET", b"aiod:t:" + t, OUTCOME, "EX", "3600") for t in ends]
        cmds.append(("XACK", QUEUE, "aiod", *[e for e, _f in got[0][1]]))
        cmds.append(("PUBLISH", "aiod:ev", b"done " + b" ".join(ends)))
        r.pipe(cmds)


MODELS = {"bare": run_bare, "aiod": run_aiod, "lean": run_lean, "plain": run_plain}


def cpu_seconds(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=100000, help="tasks per model and batch")
    ap.add_argument("--batch", default="32,256", help="tasks per round, comma-separated")
    ap.add_argument("--models", default="bare,aiod,lean,plain")
    ap.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    opt = ap.parse_args()
    models = opt.models.split(",")
    for m in models:
        if m not in MODELS:
            sys.exit("cluster_models.py: no model %r (%s)" % (m, ", ".join(MODELS)))
    batches = [int(b) for b in opt.batch.split(",")]

    tmp = tempfile.mkdtemp(prefix="aiod-models.")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [opt.redis_server, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp,
         "--save", "", "--appendonly", "yes", "--appendfsync", "everysec"],
        stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                r = Redis(port)
                r.do("PING")
                break
            except (OSError, RuntimeError):
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit("cluster_models.py: redis-server did not answer")
                time.sleep(0.05)
        version = re.search(rb"redis_version:(\S+)", r.do("INFO", "server")).group(1).decode()
        sha = {k: r.do("SCRIPT", "LOAD", v) for k, v in aiod_scripts(LUA_C).items()}
        sha["lean_submit"] = r.do("SCRIPT", "LOAD", LEAN_SUBMIT)
        sha["lean_finish"] = r.do("SCRIPT", "LOAD", LEAN_FINISH)

        print("redis-server %s, %d tasks per model and batch; Redis's CPU per task from "
              "/proc/%d/stat\n" % (version, opt.n, server.pid))
        print("| model | batch | Redis CPU per task (us) | tasks/s one Redis core carries "
              "| ratio to bare |")
        print("|---|---|---|---|---|")
        for batch in batches:
            n = (opt.n + batch - 1) // batch * batch
            bare_us = None
            for m in models:
                r.do("FLUSHALL")
                r.do("XGROUP", "CREATE", QUEUE, "aiod", "$", "MKSTREAM")
                r.do("ZADD", SERVE, 1, "h1")
                before = cpu_seconds(server.pid)
                MODELS[m](r, n, batch, sha)
                us = (cpu_seconds(server.pid) - before) / n * 1e6
                left = r.do("XPENDING", QUEUE, "aiod")[0]
                if left:
                    sys.exit("cluster_models.py: %s left %d entries pending" % (m, left))
                if m == "bare":
                    bare_us = us
                ratio = "%.2f" % (bare_us / us) if bare_us else "-"
                print("| %s | %d | %.2f | %s | %s |" % (m, batch, us, "{:,.0f}".format(1e6 / us),
                                                        ratio))
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
