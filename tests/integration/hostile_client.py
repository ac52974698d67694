#!/usr/bin/env python3
"""One client process of the hostile battery (test_hostile.py starts each).

    hostile_client.py --socket S --pb-dir D --uid U --gid G [--nice N] CASE [JSON]

It drops to uid/gid (the daemon sees that user through SO_PEERCRED), runs
CASE with the JSON arguments, and writes JSON lines on stdout: events the
battery waits for ({"event": ...}) and, last, {"result": {...}} holding the
figures, the frames it decoded, every frame that did not decode strictly,
and `failures`: what this client saw that breaks a rule. Commands come on
stdin, one word a line ("go", "stop"); end of stdin means stop.
"""

import argparse
import json
import os
import select
import sys
import threading
import time

import hostile_wire as w

w.ensure_protobuf_python()

ap = argparse.ArgumentParser()
ap.add_argument("--socket", required=True)
ap.add_argument("--pb-dir", required=True)
ap.add_argument("--uid", type=int, required=True)
ap.add_argument("--gid", type=int, required=True)
ap.add_argument("--nice", type=int, default=0)
ap.add_argument("case")
ap.add_argument("args", nargs="?", default="{}")
ARGS = ap.parse_args()
pb = w.load_pb(ARGS.pb_dir)
S = pb.TaskState
CONNS = []
FAILURES = []
FIGURES = {}


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def failure(msg):
    FAILURES.append(msg)


def connect(**kw):
    c = w.Conn(ARGS.socket, **kw)
    CONNS.append(c)
    return c


def command(timeout=None):
    """The next word on stdin ("" at its end), or None after `timeout`."""
    r, _, _ = select.select([sys.stdin], [], [], timeout)
    if not r:
        return None
    line = sys.stdin.readline()
    return line.strip()


def state(s):
    return S.Name(s)


CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def echo_expect(c, what, value_bytes, expect, record=True):
    """Submits demo.echo(value) and checks the answer with `expect(m)`, which
    returns an error string or None. Returns the final frame."""
    rid = c.new_id()
    c.send_raw(w.frame(w.submit_payload(rid, w.call_bytes(b"demo.echo", [value_bytes]))))
    t0 = time.monotonic()
    m = c.reply(rid)
    if m.WhichOneof("body") == "submitted":
        tid = m.submitted.task_id
        m = c.ask("await", pb.Await(task_ids=[tid]))
    dt = time.monotonic() - t0
    if record:
        FIGURES[what + " s"] = round(dt, 3)
    FIGURES["worst reply s"] = max(FIGURES.get("worst reply s", 0.0), round(dt, 3))
    err = expect(m)
    if err:
        failure("%s: %s (reply: %s)" % (what, err, w.show(m)))
    return m


def is_error(code, *parts):
    def check(m):
        e = w.error_of(m)
        if e is None:
            return "expected %s" % code
        if e[0] != code:
            return "expected %s, got %s %r" % (code, e[0], e[1])
        for p in parts:
            if p not in e[1]:
                return "the message %r should contain %r" % (e[1], p)
        return None
    return check


def still_open(c, what):
    m = c.ask("list_plugins", pb.ListPlugins())
    if m.WhichOneof("body") != "plugin_list":
        failure("%s: the connection should stay open: ListPlugins got %s" % (what, w.show(m)))


# ================================================================ probes


@case
def probe_rtt(a):
    """Round trips of ListPlugins, and of Submit + Await of demo.echo, every
    `interval` seconds until told to stop. Every echo must come back once,
    with its own token."""
    c = connect(name="probe")
    interval = a.get("interval", 0.02)
    samples = []
    slow = []
    tasks = 0
    i = 0
    while True:
        i += 1
        m, dt = w.timed_ask(c, "list_plugins", pb.ListPlugins())
        if m.WhichOneof("body") != "plugin_list":
            failure("probe ListPlugins: %s" % w.show(m))
        samples.append(dt)
        t_sample = time.monotonic()
        if dt > 0.02:
            slow.append((round(t_sample, 3), round(dt * 1000, 1), "ListPlugins"))
        token = "probe-%d" % i
        m, dt1 = w.timed_ask(c, "submit", pb.Submit(call=pb.Call(
            function="demo.echo", args=[pb.Value(string_value=token)])))
        if m.WhichOneof("body") != "submitted":
            failure("probe Submit: %s" % w.show(m))
            continue
        tid = m.submitted.task_id
        m, dt2 = w.timed_ask(c, "await", pb.Await(task_ids=[tid]))
        ok = (m.WhichOneof("body") == "outcomes" and len(m.outcomes.outcomes) == 1
              and m.outcomes.outcomes[0].task_id == tid
              and m.outcomes.outcomes[0].state == S.Value("TASK_DONE")
              and w.py(m.outcomes.outcomes[0].result) == token)
        if not ok:
            failure("probe echo %s (task %d): %s" % (token, tid, w.show(m)))
        tasks += 1
        samples += [dt1, dt2]
        for what, dt in (("Submit", dt1), ("Await", dt2)):
            if dt > 0.02:
                slow.append((round(time.monotonic(), 3), round(dt * 1000, 1), what))
        cmd = command(interval)
        if cmd is not None:
            break
    samples.sort()
    FIGURES.update(n=len(samples), tasks=tasks, max_ms=round(samples[-1] * 1000, 2),
                   p50_ms=round(samples[len(samples) // 2] * 1000, 2),
                   p99_ms=round(samples[int(len(samples) * 0.99)] * 1000, 2), slow=slow[-200:])


@case
def probe_timer(a):
    """Lateness of demo.sleep 0.1 run by a one-item Gather (one round trip):
    time to its Outcomes minus 0.1 s, back to back until told to stop."""
    c = connect(name="timer")
    late = []
    slow = []
    i = 0
    while True:
        i += 1
        token = "timer-%d" % i
        t0 = time.monotonic()
        m = c.ask("gather", pb.Gather(items=[pb.GatherItem(call=pb.Call(
            function="demo.sleep", args=[pb.Value(double_value=0.1),
                                         pb.Value(string_value=token)]))]))
        dt = time.monotonic() - t0 - 0.1
        ok = (m.WhichOneof("body") == "outcomes" and len(m.outcomes.outcomes) == 1
              and m.outcomes.outcomes[0].state == S.Value("TASK_DONE")
              and w.py(m.outcomes.outcomes[0].result) == token)
        if not ok:
            failure("timer sleep %s: %s" % (token, w.show(m)))
        if dt < -0.001:
            failure("demo.sleep 0.1 ended %.1f ms early" % (-dt * 1000))
        late.append(dt)
        if dt > 0.02:
            slow.append((round(time.monotonic(), 3), round(dt * 1000, 1), "sleep 0.1"))
        if command(0) is not None:
            break
    late.sort()
    FIGURES.update(n=len(late), max_ms=round(late[-1] * 1000, 2),
                   p50_ms=round(late[len(late) // 2] * 1000, 2), slow=slow[-200:])


# ================================================================ the good client


@case
def good(a):
    """Submits the known tasks (ownership SUBMITTED), awaits them all in one
    request, then on "stop" checks each again with ShowTask: state, result,
    and how many lines it printed (a task run twice would print twice)."""
    c = connect(name="good")
    known = []  # (task id, kind, expected result, expected output lines)
    for i in range(a["count"]):
        kind = i % 4
        if kind == 0:
            val = {"i": i, "s": "é-%d" % i}
            call = pb.Call(function="demo.echo", args=[pb.Value(map_value=pb.Map(entries=[
                pb.MapEntry(key="i", value=pb.Value(int_value=i)),
                pb.MapEntry(key="s", value=pb.Value(string_value=val["s"]))]))])
            want, lines = [["i", i], ["s", val["s"]]], []
        elif kind == 1:
            call = pb.Call(function="demo.hello", args=[pb.Value(string_value="g%d" % i)])
            want, lines = "hello done", ["Hello, g%d!" % i]
        elif kind == 2:
            secs = a["sleeps"][i % len(a["sleeps"])]
            call = pb.Call(function="demo.sleep", args=[pb.Value(double_value=secs),
                                                        pb.Value(string_value="slept-%d" % i)])
            want, lines = "slept-%d" % i, []
        else:
            call = pb.Call(function="proc.shell", args=[pb.Value(string_value="echo p%d" % i)])
            want, lines = "p%d\n" % i, ["p%d" % i]
        m = c.ask("submit", pb.Submit(call=call, ownership=pb.SUBMITTED))
        if m.WhichOneof("body") != "submitted":
            failure("known task %d refused: %s" % (i, w.show(m)))
            continue
        known.append((m.submitted.task_id, kind, want, lines))
    emit({"event": "submitted", "ids": [k[0] for k in known]})
    rid = c.send("await", pb.Await(task_ids=[k[0] for k in known]))
    m = c.reply(rid)
    emit({"event": "awaited", "t": time.monotonic()})

    def result_of(o, kind):
        r = w.py(o.result)
        if kind == 3:  # proc: {"exit": 0, "stdout": ..., ...}
            d = dict(r) if isinstance(r, list) else {}
            return d.get("stdout") if d.get("exit") == 0 else r
        if kind == 0:
            return [list(p) for p in r]
        return r

    if m.WhichOneof("body") != "outcomes":
        failure("Await of the known tasks: %s" % w.show(m))
    else:
        outs = m.outcomes.outcomes
        if [o.task_id for o in outs] != [k[0] for k in known]:
            failure("Await of the known tasks: outcomes for %s, asked %s"
                    % ([o.task_id for o in outs], [k[0] for k in known]))
        for o, (tid, kind, want, _) in zip(outs, known):
            if o.state != S.Value("TASK_DONE") or result_of(o, kind) != want:
                failure("known task %d: %s %r, expected done with %r"
                        % (tid, state(o.state), w.py(o.result), want))
    command(None)  # stop
    for tid, kind, want, lines in known:
        m = c.ask("show_task", pb.ShowTask(task_id=tid))
        if m.WhichOneof("body") != "task_info":
            failure("ShowTask %d at the end: %s" % (tid, w.show(m)))
            continue
        ti = m.task_info
        if ti.state != S.Value("TASK_DONE") or result_of(ti.outcome, kind) != want:
            failure("known task %d at the end: %s %r" % (tid, state(ti.state),
                                                         w.py(ti.outcome.result)))
        rid = c.send("logs", pb.Logs(task_id=tid))
        printed = []
        while True:
            m = c.recv()
            if m is None or m.request_id != rid or m.WhichOneof("body") != "output":
                break
            printed.append(m.output.line)
        if ti.output_lines != len(lines) or printed != lines:
            failure("known task %d printed %r (%d lines), expected %r (run more than once?)"
                    % (tid, printed, ti.output_lines, lines))
    FIGURES["known tasks"] = len(known)


# ================================================================ giant values


def fill_map(max_payload):
    """As many distinct small keys as fit one frame: {k0: 0, k1: 1, ...}."""
    entries = []
    size = 0
    budget = max_payload - 64
    i = 0
    while True:
        e = w.fb(1, w.fb(1, b"%x" % i) + w.fb(2, w.v_int(i & 63)))
        if size + len(e) > budget:
            break
        entries.append(e)
        size += len(e)
        i += 1
    return i, entries


def submit_echo_raw(c, value):
    rid = c.new_id()
    payload = w.submit_payload(rid, w.call_bytes(b"demo.echo", [value]))
    return rid, payload


def giant_outcome(c, what, rid, payload, n, want):
    """Sends a frame of max_frame's size; the daemon must answer it (a task
    that echoes it, or fails with LimitError as its result is over
    max_result, or a clear refusal), never close the connection."""
    FIGURES[what + " frame bytes"] = len(payload)
    FIGURES[what + " items"] = n
    if len(payload) > c.max_frame:
        failure("%s: the test built a frame of %d bytes, over max_frame %d"
                % (what, len(payload), c.max_frame))
        return
    t0 = time.monotonic()
    c.send_raw(w.frame(payload))
    m = c.reply(rid)
    FIGURES[what + " reply s"] = round(time.monotonic() - t0, 3)
    # More values than one request may hold (LIMIT_FRAME_VALUES, 262,144):
    # refused before anything is unpacked, naming the limit.
    if (m.WhichOneof("body") == "error" and m.error.code == pb.ERROR_LIMIT
            and "values in one request" in m.error.message):
        FIGURES[what + " outcome"] = "refused: " + m.error.message
        still_open(c, what)
        return
    if m.WhichOneof("body") != "submitted":
        failure("%s: expected Submitted, got %s" % (what, w.show(m)))
        return
    m = c.ask("await", pb.Await(task_ids=[m.submitted.task_id]))
    FIGURES[what + " outcome s"] = round(time.monotonic() - t0, 3)
    o = m.outcomes.outcomes[0] if m.WhichOneof("body") == "outcomes" else None
    if o is None:
        failure("%s: Await: %s" % (what, w.show(m)))
    elif o.state == S.Value("TASK_DONE"):
        if not want(o.result):
            failure("%s: the echo differs from what was sent" % what)
    elif not (o.state == S.Value("TASK_FAILED") and o.error_kind == "LimitError"
              and "max_result" in o.error_message):
        failure("%s: expected the echo or LimitError naming max_result, got %s %s: %s"
                % (what, state(o.state), o.error_kind, o.error_message))
    FIGURES[what + " outcome"] = "%s %s" % (state(o.state), o.error_kind) if o else "none"
    # The task's owner lists it and shows it: `ps` quotes its call (at most
    # 120 bytes of call_text), `show` its arguments (answered, whatever the
    # size, or refused naming a limit).
    if o is not None:
        m, dt = w.timed_ask(c, "list_tasks", pb.ListTasks(all=True))
        FIGURES[what + ": ListTasks s"] = round(dt, 3)
        if m.WhichOneof("body") != "task_list":
            failure("%s: ListTasks: %s" % (what, w.show(m)))
        elif any(len(ti.call_text.encode()) > 120 for ti in m.task_list.tasks):
            failure("%s: a call_text over 120 bytes" % what)
        m, dt = w.timed_ask(c, "show_task", pb.ShowTask(task_id=o.task_id))
        FIGURES[what + ": ShowTask s"] = round(dt, 3)
        if m.WhichOneof("body") not in ("task_info", "error"):
            failure("%s: ShowTask: %s" % (what, w.show(m)))
    still_open(c, what)


@case
def giant_map(a):
    c = connect()
    rid = c.new_id()
    head = w.submit_payload(rid, b"")  # sized below
    n, entries = fill_map(c.max_frame - len(head) - 32)
    value = w.fb(8, b"".join(entries))
    payload = w.submit_payload(rid, w.call_bytes(b"demo.echo", [value]))

    def same(r):
        es = r.map_value.entries
        return len(es) == n and es[0].key == "0" and es[-1].key == "%x" % (n - 1)
    giant_outcome(c, "map of distinct keys", rid, payload, n, same)
    # At most 262,144 values a request: the first 200,000 entries make the
    # biggest map a request may hold, accepted whole, unpacked and checked
    # (the dearest frame to take in), then echoed or failed over max_result.
    entries = entries[:200000]
    n = len(entries)
    rid = c.new_id()
    payload = w.submit_payload(rid, w.call_bytes(b"demo.echo", [w.fb(8, b"".join(entries))]))
    giant_outcome(c, "map of 200,000 distinct keys", rid, payload, n, same)
    # The same map with its last key equal to its first: refused, at the
    # cost of reading it (the check is O(n log n)), naming the rule.
    rid = c.new_id()
    entries[-1] = w.fb(1, w.fb(1, b"0") + w.fb(2, w.v_int(1)))
    n = len(entries)
    payload = w.submit_payload(rid, w.call_bytes(b"demo.echo", [w.fb(8, b"".join(entries))]))
    t0 = time.monotonic()
    c.send_raw(w.frame(payload))
    m = c.reply(rid)
    FIGURES["map with a duplicate at its end: refusal s"] = round(time.monotonic() - t0, 3)
    err = is_error("ERROR_BAD_ARGUMENT", "duplicate map key")(m)
    if err:
        failure("a %d-key map whose last key repeats its first: %s" % (n, err))
    still_open(c, "giant map")


@case
def giant_list(a):
    c = connect()
    rid = c.new_id()
    room = c.max_frame - len(w.submit_payload(rid, w.call_bytes(b"demo.echo", []))) - 64
    # Small ints: 4 bytes an item; then a list of empty Values (null), 2.
    item = w.fb(1, w.v_int(7))
    n = (room - 8) // len(item)
    value = w.fb(7, item * n)
    payload = w.submit_payload(rid, w.call_bytes(b"demo.echo", [value]))
    giant_outcome(c, "list of small ints", rid, payload, n,
                  lambda r: len(r.list_value.items) == n and r.list_value.items[-1].int_value == 7)
    rid = c.new_id()
    item = w.fb(1, b"")
    n = (room - 8) // len(item)
    payload = w.submit_payload(rid, w.call_bytes(b"demo.echo", [w.fb(7, item * n)]))
    giant_outcome(c, "list of nulls", rid, payload, n,
                  lambda r: len(r.list_value.items) == n)


@case
def deep(a):
    """Nesting up to the value limit (32 levels: echoed), one past it
    (refused naming the rule), past the message-depth limit (100 protobuf
    levels: ERROR_BAD_MESSAGE, then closed), and a whole frame of nesting."""
    c = connect()
    for levels, kind in ((31, "list"), (31, "map")):
        nest = w.nested_list_value if kind == "list" else w.nested_map_value
        value = nest(levels, w.v_int(5))

        def depth_of(r, k=kind):
            d = 1
            while True:
                if k == "list" and r.WhichOneof("kind") == "list_value":
                    r = r.list_value.items[0]
                elif k == "map" and r.WhichOneof("kind") == "map_value":
                    r = r.map_value.entries[0].value
                else:
                    return d if r.int_value == 5 else -1
                d += 1

        def at_limit(m, k=kind):
            o = m.outcomes.outcomes[0] if m.WhichOneof("body") == "outcomes" else None
            if o is None or o.state != S.Value("TASK_DONE"):
                return "a %s value 32 levels deep should be echoed" % k
            return None if depth_of(o.result) == 32 else "the echo is not 32 levels deep"
        echo_expect(c, "%s 32 levels deep" % kind, value, at_limit)
        echo_expect(c, "%s 33 levels deep" % kind, nest(levels + 1, w.v_int(5)),
                    is_error("ERROR_BAD_ARGUMENT", "values nested too deeply"))
    still_open(c, "values nested at and past 32 levels")
    # Past 100 protobuf levels: the frame is refused and the connection
    # closed; so for a whole frame of it (stack exhaustion in a recursive
    # decoder otherwise).
    for what, value in (("list 60 levels deep", w.nested_list_value(60)),
                        ("map 40 levels deep", w.nested_map_value(40)),
                        ("a frame of list nesting", None)):
        d = connect()
        rid = d.new_id()
        if value is None:
            levels = (d.max_frame - 64) // 10
            value = w.nested_list_value(levels)
            while len(value) > d.max_frame - 64:
                levels -= levels // 20
                value = w.nested_list_value(levels)
            FIGURES["frame of nesting: levels"] = levels
        payload = w.submit_payload(rid, w.call_bytes(b"demo.echo", [value]))
        d.send_raw(w.frame(payload))
        got = []
        while True:
            m = d.recv()
            if m is None:
                break
            got.append(m)
        errs = [w.error_of(m) for m in got]
        if not errs or errs[0] is None or errs[0][0] != "ERROR_BAD_MESSAGE":
            failure("%s: expected ERROR_BAD_MESSAGE then close, got %s"
                    % (what, [w.show(m) for m in got]))
        d.close()


# ================================================================ UTF-8

BAD_UTF8 = [
    ("overlong NUL", b"\xc0\x80"),
    ("overlong slash", b"\xc0\xaf"),
    ("overlong 3-byte", b"\xe0\x80\xaf"),
    ("overlong 4-byte", b"\xf0\x80\x80\xaf"),
    ("overlong C1", b"\xc1\xbf"),
    ("overlong U+07FF in 3", b"\xe0\x9f\xbf"),
    ("high surrogate", b"\xed\xa0\x80"),
    ("low surrogate", b"\xed\xbf\xbf"),
    ("surrogate pair (CESU-8)", b"\xed\xa0\xbd\xed\xb8\x80"),
    ("truncated 2-byte", b"\xc3"),
    ("truncated 3-byte", b"\xe2\x82"),
    ("truncated 4-byte", b"\xf0\x9f\x98"),
    ("truncated then ASCII", b"a\xe2\x82b"),
    ("lone continuation", b"\x80"),
    ("continuations", b"\xbf\xbf\xbf"),
    ("byte C0", b"\xc0"),
    ("byte C1", b"\xc1"),
    ("byte F5", b"\xf5\x80\x80\x80"),
    ("byte F8 (5-byte form)", b"\xf8\x88\x80\x80\x80"),
    ("byte FC (6-byte form)", b"\xfc\x84\x80\x80\x80\x80"),
    ("byte FE", b"\xfe"),
    ("byte FF", b"\xff"),
    ("past U+10FFFF", b"\xf4\x90\x80\x80"),
    ("valid then invalid", "é€😀".encode() + b"\xff"),
]


@case
def utf8(a):
    """Every malformed case as a string value, a map key, a nested map key,
    a function name, a text argument, a client name and a ListTasks filter.
    Values are refused naming the rule; a function name is answered as
    unknown with U+FFFD where it was ill-formed; nothing closes."""
    c = connect()
    n = 0
    for what, bad in BAD_UTF8:
        for where, value in (
                ("string value", w.v_str(b"x" + bad + b"y")),
                ("map key", w.v_map([(bad, w.v_int(1))])),
                ("nested map key", w.v_list([w.v_map([(b"ok", w.v_map([(b"k" + bad,
                                                                       w.v_int(1))]))])])),
                ("string in a list", w.v_list([w.v_str(b"fine"), w.v_str(bad)]))):
            rule = "map key is not valid UTF-8" if "key" in where else \
                "string is not valid UTF-8"
            echo_expect(c, "%s in a %s" % (what, where), value,
                        is_error("ERROR_BAD_ARGUMENT", "demo.echo: parameter 'value'", rule),
                        record=False)
            n += 1
        # As a function name: unknown, quoted with U+FFFD for what is bad.
        rid = c.new_id()
        c.send_raw(w.frame(w.submit_payload(rid, w.call_bytes(b"demo.x" + bad, []))))
        m = c.reply(rid)
        e = w.error_of(m)
        if e is None or e[0] not in ("ERROR_UNKNOWN_FUNCTION", "ERROR_BAD_ARGUMENT"):
            failure("%s in a function name: expected a refusal, got %s" % (what, w.show(m)))
        elif "\ufffd" not in e[1]:
            failure("%s in a function name: the message %r should show U+FFFD" % (what, e[1]))
        # As a text argument (args_are_text).
        rid = c.new_id()
        c.send_raw(w.frame(w.submit_payload(rid, w.call_bytes(b"demo.hello", [w.v_str(bad)],
                                                              text=True))))
        m = c.reply(rid)
        e = w.error_of(m)
        if e is None or e[0] != "ERROR_BAD_ARGUMENT":
            failure("%s in a text argument: expected ERROR_BAD_ARGUMENT, got %s"
                    % (what, w.show(m)))
        # In a ListTasks filter and a Hello's client_name: answered, whatever
        # the answer, with valid UTF-8 (the decoder checks), never a close.
        rid = c.new_id()
        c.send_raw(w.frame(w.fv(1, rid) + w.fb(7, w.fb(5, b"demo." + bad))))
        c.reply(rid)
        rid = c.new_id()
        c.send_raw(w.frame(w.fv(1, rid) + w.fb(2, w.fv(1, 1) + w.fb(2, bad))))
        m = c.reply(rid)
        if w.error_of(m) is None or w.error_of(m)[0] != "ERROR_PROTOCOL":
            failure("a second Hello (client name %s): expected ERROR_PROTOCOL, got %s"
                    % (what, w.show(m)))
        n += 4
    # Duplicate keys and entries without a value, also where they hide.
    still_open(c, "malformed UTF-8")
    # A NUL is valid UTF-8, but a C string would be cut there: refused
    # (docs/protocol.md, 7), and the connection stays.
    echo_expect(c, "NUL in a string", w.v_str(b"ab\x00cd"),
                is_error("ERROR_BAD_ARGUMENT", "NUL"), record=False)
    echo_expect(c, "NUL in a map key", w.v_map([(b"a\x00b", w.v_int(1))]),
                is_error("ERROR_BAD_ARGUMENT", "NUL"), record=False)
    rid = c.new_id()
    c.send_raw(w.frame(w.submit_payload(rid, w.call_bytes(b"demo.e\x00cho", []))))
    m = c.reply(rid)
    if w.error_of(m) is None:
        failure("NUL in a function name: expected a refusal, got %s" % w.show(m))
    still_open(c, "NUL")
    # A ListTasks filter of 3 MiB: compared on every task a page visits, it
    # held the loop for seconds. No function name is over 255 bytes.
    rid = c.new_id()
    c.send_raw(w.frame(w.fv(1, rid) + w.fb(7, w.fb(5, b"demo." + b"x" * (3 << 20)))))
    m = c.reply(rid)
    why = is_error("ERROR_LIMIT", "functions[0]", "255 bytes")(m)
    if why:
        failure("a ListTasks function filter of 3 MiB: %s" % why)
    still_open(c, "a long ListTasks filter")
    FIGURES["cases"] = n + 4


@case
def map_rules(a):
    """Duplicate keys and entries without a value: ERROR_BAD_ARGUMENT naming
    the rule and the key, no task created, connection kept."""
    c = connect()
    dup = b"dup-key-7"
    cases = [
        ("two equal keys", w.v_map([(dup, w.v_int(1)), (dup, w.v_int(2))]),
         "duplicate map key"),
        ("equal keys far apart", w.v_map([(dup, w.v_int(0))] +
                                         [(b"k%d" % i, w.v_int(i)) for i in range(5000)] +
                                         [(dup, w.v_int(1))]), "duplicate map key"),
        ("equal keys in a nested map", w.v_list([w.v_map([(b"a", w.v_map(
            [(dup, w.v_int(1)), (b"b", w.v_int(2)), (dup, w.v_int(3))]))])]),
         "duplicate map key"),
        ("equal keys differently typed values", w.v_map([(dup, w.v_str(b"x")),
                                                          (dup, w.v_list([]))]),
         "duplicate map key"),
        ("entry without a value", w.v_map([(b"a", w.v_int(1)), (dup, None)]), "missing value"),
        ("entry without a value, nested", w.v_map([(b"a", w.v_map([(dup, None)]))]),
         "missing value"),
        ("the empty key twice", w.v_map([(b"", w.v_int(1)), (b"", w.v_int(2))]),
         "duplicate map key"),
    ]
    before = c.ask("list_tasks", pb.ListTasks(all=True))
    unnamed = []
    for what, value, rule in cases:
        key = '""' if "empty key" in what else dup.decode()
        m = echo_expect(c, what, value, is_error("ERROR_BAD_ARGUMENT",
                                                 "demo.echo: parameter 'value'", rule),
                        record=False)
        if w.error_of(m) and key not in w.error_of(m)[1]:
            unnamed.append("%s: %r" % (what, w.error_of(m)[1]))
    if unnamed:
        failure("%d of %d refusals do not name the key (%s), e.g. %s"
                % (len(unnamed), len(cases), dup.decode(), unnamed[0]))
    # Also through demo.sleep's `result` (any type) and a Gather item.
    rid = c.new_id()
    c.send_raw(w.frame(w.submit_payload(rid, w.call_bytes(
        b"demo.sleep", [w.v_int(0), w.v_map([(dup, w.v_int(1)), (dup, w.v_int(1))])]))))
    err = is_error("ERROR_BAD_ARGUMENT", "demo.sleep: parameter 'result'",
                   "duplicate map key")(c.reply(rid))
    if err:
        failure("duplicate key in demo.sleep's result: %s" % err)
    rid = c.new_id()
    item = w.fb(1, w.call_bytes(b"demo.echo", [w.v_map([(dup, None)])]))
    c.send_raw(w.frame(w.fv(1, rid) + w.fb(5, w.fb(1, item))))
    err = is_error("ERROR_BAD_ARGUMENT", "missing value")(c.reply(rid))
    if err:
        failure("an entry without a value in a Gather item: %s" % err)
    m = c.ask("list_tasks", pb.ListTasks(all=True))
    new = set(t.id for t in m.task_list.tasks) - set(t.id for t in before.task_list.tasks)
    if new:
        failure("refused calls created tasks: %s" % sorted(new))
    still_open(c, "map rules")


# ================================================================ followers


def chatty_cmd(size, line):
    return "yes %s | head -c %d" % ("y" * (line - 1), size)


@case
def follower(a):
    """Submits a chatty task with follow (mode submit) or follows one with
    Logs (mode logs), then does not read until told "go"; then reads to the
    end. Output events received plus OutputEnd.dropped must be all the
    lines, and the connection must never have been closed."""
    c = connect(name="follower")
    c.sock.setsockopt(w.socket.SOL_SOCKET, w.socket.SO_RCVBUF, 4096)
    total = a["size"] // a["line"]
    if a["mode"] == "submit":
        rid = c.send("submit", pb.Submit(call=pb.Call(
            function="proc.shell", args=[pb.Value(string_value=chatty_cmd(a["size"],
                                                                           a["line"]))]),
            ownership=pb.ATTACHED, follow=True))
        m = c.recv()
        if m is None or m.WhichOneof("body") != "submitted":
            failure("chatty Submit: %s" % w.show(m))
            return
        tid = m.submitted.task_id
    else:
        tid = a["task"]
        rid = c.send("logs", pb.Logs(task_id=tid, follow=True))
    emit({"event": "following", "task": tid})
    command(None)  # "go": start reading
    got = dropped = 0
    seqs_ok = True
    last_seq = -1
    end = None
    while end is None:
        try:
            m = c.recv()
        except w.Closed as e:
            failure("follower of task %d: %s" % (tid, e))
            return
        if m is None:
            failure("follower of task %d (%s): the daemon closed the connection after %d lines"
                    % (tid, a["mode"], got))
            return
        if m.request_id != rid:
            continue
        body = m.WhichOneof("body")
        if body == "output":
            got += 1
            if m.output.seq <= last_seq:
                seqs_ok = False
            last_seq = m.output.seq
            if len(m.output.line) != a["line"] - 1:
                failure("task %d: a line of %d characters, expected %d"
                        % (tid, len(m.output.line), a["line"] - 1))
                return
        elif body == "output_end":
            end = m.output_end
            dropped = end.dropped
        elif body == "error":
            failure("follower of task %d: %s" % (tid, w.show(m)))
            return
    if not seqs_ok:
        failure("task %d: Output seq numbers not increasing" % tid)
    if got + dropped != total:
        failure("task %d (%s): %d lines received + %d dropped != %d printed"
                % (tid, a["mode"], got, dropped, total))
    if end.state != S.Value("TASK_DONE"):
        failure("task %d ended %s" % (tid, state(end.state)))
    if a["mode"] == "submit":
        m = c.ask("await", pb.Await(task_ids=[tid]))
        o = m.outcomes.outcomes[0] if m.WhichOneof("body") == "outcomes" else None
        r = dict(w.py(o.result)) if o and o.state == S.Value("TASK_DONE") else {}
        if r.get("exit") != 0:
            failure("chatty task %d: expected exit 0 in its result, got %s"
                    % (tid, w.show(m)))
    FIGURES.update(task=tid, received=got, dropped=dropped)


@case
def chatty_reader(a):
    """Issue 13's chatty jobs, by a client that reads as fast as it can:
    `seq 1 N` followed to the end (every line it gets is the right number
    at its place; received + dropped == N; exit 0; never cut off), then
    `yes | head -c SIZE` without follow, which must end with exit 0."""
    c = connect(name="reader")
    n = a["lines"]
    t0 = time.monotonic()
    rid = c.send("submit", pb.Submit(call=pb.Call(function="proc.shell", args=[
        pb.Value(string_value="seq 1 %d" % n)]), follow=True))
    tid = None
    got = 0
    wrong = 0
    end = None
    while end is None:
        m = c.recv()
        if m is None:
            failure("seq 1 %d: the daemon closed the connection after %d lines" % (n, got))
            return
        body = m.WhichOneof("body")
        if m.request_id != rid:
            continue
        if body == "submitted":
            tid = m.submitted.task_id
        elif body == "output":
            got += 1
            if m.output.line != str(m.output.seq + 1):
                wrong += 1
        elif body == "output_end":
            end = m.output_end
        else:
            failure("seq 1 %d: %s" % (n, w.show(m)))
            return
    FIGURES.update({"seq lines received": got, "seq lines dropped": end.dropped,
                    "seq s": round(time.monotonic() - t0, 2)})
    if wrong:
        failure("seq 1 %d: %d lines whose text is not their position" % (n, wrong))
    if got + end.dropped != n:
        failure("seq 1 %d: %d received + %d dropped != %d" % (n, got, end.dropped, n))
    m = c.ask("await", pb.Await(task_ids=[tid]))
    o = m.outcomes.outcomes[0] if m.WhichOneof("body") == "outcomes" else None
    r = dict(w.py(o.result)) if o and o.state == S.Value("TASK_DONE") else {}
    if r.get("exit") != 0:
        failure("seq 1 %d: expected exit 0, got %s" % (n, w.show(m)))
    t0 = time.monotonic()
    m = c.ask("submit", pb.Submit(call=pb.Call(function="proc.shell", args=[
        pb.Value(string_value="yes | head -c %d" % a["yes"])])))
    m = c.ask("await", pb.Await(task_ids=[m.submitted.task_id]))
    o = m.outcomes.outcomes[0] if m.WhichOneof("body") == "outcomes" else None
    r = dict(w.py(o.result)) if o and o.state == S.Value("TASK_DONE") else {}
    FIGURES["yes s"] = round(time.monotonic() - t0, 2)
    if r.get("exit") != 0 or r.get("stdout_bytes", a["yes"]) != a["yes"]:
        failure("yes | head -c %d: expected exit 0 and stdout_bytes %d, got %s"
                % (a["yes"], a["yes"], {k: v for k, v in r.items() if k not in ("stdout",)}
                   if r else w.show(m)))


# ================================================================ fds


@case
def fd_flood(a):
    """Opens connections (each says hello) until one is refused; the refusal
    must be an ERROR_LIMIT frame. Holds them until told to stop."""
    held = []
    refusal = None
    while len(held) < a["max"]:
        try:
            c = w.Conn(ARGS.socket, hello=False, timeout=30)
        except OSError as e:
            refusal = "connect failed: %s" % e
            break
        CONNS.append(c)
        try:
            rid = c.send("hello", pb.Hello(protocol_version=1, client_name="flood"))
        except OSError:
            rid = None  # refused and closed already: its refusal is still to be read
        m = c.recv()
        if m is not None and m.WhichOneof("body") == "hello" and m.request_id == rid:
            held.append(c)
            continue
        refusal = w.error_of(m) if m is not None else ("closed without a word", "")
        break
    FIGURES.update(accepted=len(held), refusal=refusal)
    if refusal is None or refusal[0] != "ERROR_LIMIT":
        failure("after %d connections, the refusal should be an ERROR_LIMIT frame; got %r"
                % (len(held), refusal))
    emit({"event": "refused", "accepted": len(held), "refusal": refusal})
    command(None)
    # Still served, all of them.
    for c in held[:: max(1, len(held) // 10)]:
        still_open(c, "a connection held during the flood")


# ================================================================ cancel under backpressure


@case
def cancel_backpressure(a):
    """max_in_flight Awaits wait on a task; control requests must still be
    answered at once, and a Cancel within 100 ms."""
    c = connect(name="bp")
    n = c.hello_reply.max_in_flight
    FIGURES["max_in_flight"] = n
    m = c.ask("submit", pb.Submit(call=pb.Call(function="demo.sleep", args=[
        pb.Value(double_value=3600.0)]), ownership=pb.SUBMITTED))
    tid = m.submitted.task_id
    # max_in_flight Awaits wait, and a few more beyond them (parked).
    awaits = [c.send("await", pb.Await(task_ids=[tid])) for _ in range(n + 4)]
    # The daemon has read them all once a request sent after them is
    # answered; these are the requests that must not queue behind them.
    controls = [
        ("ListPlugins", "list_plugins", pb.ListPlugins(), "plugin_list"),
        ("ShowTask", "show_task", pb.ShowTask(task_id=tid), "task_info"),
        ("ListTasks", "list_tasks", pb.ListTasks(limit=10), "task_list"),
        ("Logs", "logs", pb.Logs(task_id=tid), "output_end"),
        ("Hello", "hello", pb.Hello(protocol_version=1), "error"),
        ("Submit", "submit", pb.Submit(call=pb.Call(function="demo.echo", args=[
            pb.Value(int_value=1)]), ownership=pb.DETACHED), "submitted"),
        ("Cancel", "cancel", pb.Cancel(task_ids=[tid]), "cancelled"),
    ]
    times = {}
    for what, kind, body, want in controls:
        t0 = time.monotonic()
        rid = c.send(kind, body)
        while True:
            try:
                m = c.recv()
            except OSError as e:
                failure("%s under full backpressure: no reply (%s)" % (what, e))
                return
            if m is None:
                failure("%s under full backpressure: the connection closed" % what)
                return
            if m.request_id == rid and (m.WhichOneof("body") == want or
                                        m.WhichOneof("body") == "error"):
                break
            if m.request_id in awaits:
                failure("an Await was answered before %s: %s" % (what, w.show(m)))
        dt = time.monotonic() - t0
        times[what] = round(dt * 1000, 2)
        if m.WhichOneof("body") != want:
            failure("%s under full backpressure: %s" % (what, w.show(m)))
        if dt > 0.1:
            failure("%s under full backpressure answered in %.1f ms (target <= 100 ms)"
                    % (what, dt * 1000))
        if what == "Cancel" and m.WhichOneof("body") == "cancelled" and m.cancelled.count != 1:
            failure("Cancel under full backpressure: count %d, expected 1" % m.cancelled.count)
    FIGURES["reply ms"] = times
    done = set()
    while len(done) < len(awaits):
        m = c.recv()
        if m is None:
            failure("the connection closed before the Awaits were answered")
            return
        if m.request_id in awaits:
            o = m.outcomes.outcomes[0] if m.WhichOneof("body") == "outcomes" else None
            if o is None or o.state != S.Value("TASK_CANCELLED"):
                failure("an Await after the Cancel: %s" % w.show(m))
            done.add(m.request_id)


# ================================================================ ps


@case
def ps_submit(a):
    """Submits `count` detached demo.sleep tasks, pipelined (one writer
    thread, the reader here); on "list" pages through its own tasks; on
    "cancel" cancels them in batches; on "stop" ends."""
    c = connect(name="ps")
    count = a["count"]
    first_rid = c.next_id
    c.next_id += count
    call = w.call_bytes(b"demo.sleep", [w.v_double(3600.0), w.v_str(b"ps")])
    body = w.fb(3, w.fb(1, call) + w.fv(2, 2))  # Submit{call, DETACHED}

    def writer():
        chunk = []
        for rid in range(first_rid, first_rid + count):
            p = w.fv(1, rid) + body
            chunk.append(len(p).to_bytes(4, "big") + p)
            if len(chunk) == 2000:
                c.send_raw(b"".join(chunk))
                chunk = []
        if chunk:
            c.send_raw(b"".join(chunk))

    t0 = time.monotonic()
    th = threading.Thread(target=writer, daemon=True)
    th.start()
    ids = []
    errors = []
    while len(ids) + len(errors) < count:
        m = c.recv()
        if m is None:
            failure("the connection closed after %d Submits" % len(ids))
            return
        if m.WhichOneof("body") == "submitted":
            ids.append(m.submitted.task_id)
        else:
            errors.append(w.show(m))
    th.join()
    FIGURES["submit s"] = round(time.monotonic() - t0, 2)
    if errors:
        failure("%d Submits refused, first: %s" % (len(errors), errors[0]))
    emit({"event": "submitted", "count": len(ids), "first": min(ids) if ids else 0,
          "last": max(ids) if ids else 0})
    mine = set(ids)
    while True:
        cmd = command(None)
        if cmd == "list":
            seen, pages, worst = page_all(c, pb.ListTasks())
            FIGURES["own list: pages"] = pages
            FIGURES["own list: worst page ms"] = worst
            if set(seen) != mine or len(seen) != len(mine):
                failure("paging its own tasks: %d listed (%d distinct), %d submitted, %d missing"
                        % (len(seen), len(set(seen)), len(mine), len(mine - set(seen))))
            emit({"event": "listed", "n": len(seen)})
        elif cmd == "cancel":
            t0 = time.monotonic()
            total = 0
            for i in range(0, len(ids), 100000):
                m, dt = w.timed_ask(c, "cancel", pb.Cancel(task_ids=ids[i:i + 100000]))
                if m.WhichOneof("body") != "cancelled":
                    failure("Cancel of %d tasks: %s" % (len(ids[i:i + 100000]), w.show(m)))
                else:
                    total += m.cancelled.count
            FIGURES["cancel s"] = round(time.monotonic() - t0, 2)
            if total != len(ids):
                failure("Cancelled.count summed to %d for %d running tasks" % (total, len(ids)))
            emit({"event": "cancelled", "n": total})
        else:
            break


def page_all(c, req, limit=0):
    """Pages ListTasks to the end: (ids, pages, worst page ms)."""
    seen = []
    pages = 0
    worst = 0.0
    after = 0
    while True:
        req.after_id = after
        req.limit = limit
        m, dt = w.timed_ask(c, "list_tasks", req)
        worst = max(worst, dt * 1000)
        pages += 1
        if m.WhichOneof("body") != "task_list":
            failure("ListTasks page %d (after %d): %s" % (pages, after, w.show(m)))
            break
        tl = m.task_list
        page = [t.id for t in tl.tasks]
        if page and (page != sorted(page) or page[0] <= after):
            failure("ListTasks page after %d is not in id order above it" % after)
            break
        seen += page
        if not tl.more:
            break
        if tl.next_after_id <= after:
            failure("ListTasks: more is set but next_after_id %d does not move on from %d"
                    % (tl.next_after_id, after))
            break
        after = tl.next_after_id
    return seen, pages, round(worst, 2)


@case
def ps_list(a):
    """Pages through every task (root sees all), then with filters."""
    c = connect(name="ps-all")
    t0 = time.monotonic()
    seen, pages, worst = page_all(c, pb.ListTasks())
    FIGURES.update({"all: tasks": len(seen), "all: pages": pages, "all: worst page ms": worst,
                    "all: s": round(time.monotonic() - t0, 2)})
    if len(set(seen)) != len(seen):
        failure("a task listed twice while paging")
    listed = set(seen)
    missing = [i for i in a["must"] if i not in listed]
    if missing:
        failure("paging all tasks missed %d of the submitted ones" % len(missing))
    if len(seen) < a["at_least"]:
        failure("paging all tasks: %d, expected at least %d" % (len(seen), a["at_least"]))
    # Unfinished, not only running: a task whose Submitted reply came may
    # still wait for its first step (a slow sanitizer build, a busy loop).
    seen, pages, worst = page_all(c, pb.ListTasks(states=[S.Value("TASK_PENDING"),
                                                          S.Value("TASK_RUNNING")],
                                                  functions=["demo.sleep"],
                                                  owner_uids=[a["uid"]]), limit=500)
    FIGURES.update({"filtered: tasks": len(seen), "filtered: pages": pages,
                    "filtered: worst page ms": worst})
    if len(seen) != a["per_uid"]:
        failure("filtered by uid %d: %d tasks, expected %d" % (a["uid"], len(seen),
                                                                a["per_uid"]))


# ================================================================ main


def main():
    if ARGS.nice:
        os.setpriority(os.PRIO_PROCESS, 0, ARGS.nice)
    if ARGS.uid != os.geteuid():
        os.setgroups([])
        os.setgid(ARGS.gid)
        os.setuid(ARGS.uid)
    try:
        CASES[ARGS.case](json.loads(ARGS.args))
    except w.DecodeError:
        pass  # recorded by the connection
    except (w.Closed, OSError) as e:
        failure("%s: %s: %s" % (ARGS.case, type(e).__name__, e))
    emit({"result": {"figures": FIGURES, "failures": FAILURES,
                     "frames": sum(c.frames for c in CONNS),
                     "decode_errors": [e for c in CONNS for e in c.decode_errors]}})
    for c in CONNS:
        c.close()


main()
