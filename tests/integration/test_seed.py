"""The seed's four asyncio examples, run as demo plugin tasks through
`aioctl run`: the same lines in the same order, each line at the moment the
asyncio original would print it (so output streams), the same result, and
the same total time (5, 3, 3, 3 s)."""

import harness

t = harness.Suite(__file__)

RESULT = '["my_async_function1 result","my_async_function2 result"]'

# (function, [(line, seconds after start when it is printed)], result, total)
EXAMPLES = [
    ("demo.main_sequential", [
        ("Starting main function", 0),
        ("Hello from my async function 1", 0),
        ("Done with async function 1", 3),
        ("Hello from my async function 2", 3),
        ("Done with async function 2", 5),
        ("Done with main function", 5),
    ], RESULT, 5),
    ("demo.main_gather", [
        ("Starting main function", 0),
        ("Hello from my async function 1", 0),
        ("Hello from my async function 2", 0),
        ("Done with async function 2", 2),
        ("Done with async function 1", 3),
        ("Done with main function", 3),
    ], RESULT, 3),
    ("demo.main_tasks", [
        ("Starting main function", 0),
        ("Hello from my async function 1", 0),
        ("Hello from my async function 2", 0),
        ("Done with async function 2", 2),
        ("Done with async function 1", 3),
        ("Done with main function", 3),
    ], RESULT, 3),
    ("demo.main_nowait", [
        ("Starting main function", 0),
        ("main function doing other work", 0),
        ("Hello from my async function 1", 0),
        ("Hello from my async function 2", 0),
        ("Done with async function 2", 1),
        ("Done with async function 1", 2),
        ("Done with main function", 3),
    ], "null", 3),
]

# A line may come late by this much (a loaded machine, a sanitizer build),
# never early: the sleep before it cannot end sooner. Every gap between
# distinct expected times is >= 1 s, so lines printed all at the end (no
# streaming) or after sequential sleeps cannot pass.
LATE = 0.7


def check_example(d, function, expected, result, total):
    p = d.aioctl_bg("run", function)
    for i, (want, at) in enumerate(expected):
        item = p.next_line(timeout=total + 10)
        t.check(item is not None, "%s: output ended after %d lines, expected %r next"
                % (function, i, want), " (lines: %r)" % p.lines)
        when, line = item
        t.eq(line, want, "%s: line %d" % (function, i + 1), " (lines so far: %r)" % p.lines)
        t.between(when, at - 0.05, at + LATE, "%s: time of line %d %r (s after start)"
                  % (function, i + 1, want), " (output must stream as it is printed)")
    r = p.wait(timeout=total + 10)
    t.eq(r.rc, 0, "%s: exit code" % function, r)
    t.eq(r.lines, [l for l, _ in expected] + [result], "%s: all of stdout" % function, r)
    t.between(r.elapsed, total - 0.1, total + 0.8, "%s: elapsed seconds" % function, r)
    t.eq(r.err, "", "%s: stderr" % function, r)


def make(function, expected, result, total):
    def fn():
        with t.daemon() as d:
            check_example(d, function, expected, result, total)
    fn.__name__ = function.split(".")[1]
    return fn


for ex in EXAMPLES:
    t.test(make(*ex))


@t.test
def first_line_arrives_at_once():
    # The streaming check on its own terms: the first line well before the end.
    with t.daemon() as d:
        p = d.aioctl_bg("run", "demo.main_sequential")
        when, line = p.next_line(timeout=10)
        t.eq(line, "Starting main function", "first line")
        t.check(when < 1.0, "first line of main_sequential came after %.2f s, expected < 1 s "
                "(the run takes 5 s: output is not streamed?)" % when)
        r = p.wait(timeout=15)
        t.eq(r.rc, 0, "exit code", r)


t.main()
