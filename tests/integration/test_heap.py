"""The heap in transparent huge pages (daemon/app/hugeheap.c): aiod
executes itself once more with glibc.malloc.hugetlb=1 added to
GLIBC_TUNABLES, so that glibc advises its heap as huge pages (the [heap]
mapping's VmFlags then say "hg"), with any other tunables given kept; it
keeps an administrator's own setting of that tunable, and
AIOD_HEAP_HUGE_PAGES=0 turns it off. (Programs that tasks start get a
minimal environment anyway: test_proc.py.)"""

import os

import harness

t = harness.Suite(__file__)

TUNABLE = "glibc.malloc.hugetlb"


def thp_offered():
    try:
        mode = open("/sys/kernel/mm/transparent_hugepage/enabled").read()
    except OSError:
        return False
    return "[always]" in mode or "[madvise]" in mode


# Sanitizers and valgrind replace malloc: aiod leaves the heap alone then.
EXPECT_REEXEC = thp_offered() and not harness.SANITIZE


def environ(pid):
    raw = open("/proc/%d/environ" % pid, "rb").read().split(b"\0")
    return dict(kv.decode().split("=", 1) for kv in raw if b"=" in kv)


def heap_flags(pid):
    """The VmFlags of the [heap] mapping ("" if there is none)."""
    inside = False
    for line in open("/proc/%d/smaps" % pid):
        if line.rstrip().endswith("[heap]"):
            inside = True
        elif inside and line.startswith("VmFlags:"):
            return line.split(":", 1)[1].split()
    return []


def with_env(changes):
    """Sets (or, with None, removes) variables of this process, which the
    daemons it starts inherit; returns what to put back."""
    old = {k: os.environ.get(k) for k in changes}
    for k, v in changes.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    return old


@t.test
def heap_in_huge_pages_by_default():
    old = with_env({"GLIBC_TUNABLES": None, "AIOD_HEAP_HUGE_PAGES": None})
    try:
        with t.daemon() as d:
            env = environ(d.proc.pid)
            flags = heap_flags(d.proc.pid)
            if EXPECT_REEXEC:
                # The second start (same PID) was given the tunable, and
                # what to put back. (/proc shows the string as glibc left it
                # after reading it, so only the simple case compares it.)
                t.eq(env.get("GLIBC_TUNABLES"), TUNABLE + "=1",
                     "GLIBC_TUNABLES of the re-executed daemon")
                t.eq(env.get("AIOD_SAVED_GLIBC_TUNABLES"), "-", "GLIBC_TUNABLES was unset")
                t.check("hg" in flags, "the heap advised as huge pages (VmFlags %s)" % flags)
            else:
                t.check("GLIBC_TUNABLES" not in env, "no re-exec here (sanitizer or THP off)")
                t.check("hg" not in flags, "the heap left alone (VmFlags %s)" % flags)
    finally:
        with_env(old)


@t.test
def process_name_kept():
    # Executing /proc/self/exe names a process "exe" (ps, pgrep -x, the
    # journal's _COMM); the second start takes back the name of the first.
    old = with_env({"GLIBC_TUNABLES": None, "AIOD_HEAP_HUGE_PAGES": None})
    try:
        with t.daemon() as d:
            comm = open("/proc/%d/comm" % d.proc.pid).read().strip()
            t.eq(comm, os.path.basename(t.aiod)[:15], "the daemon's process name")
            tids = os.listdir("/proc/%d/task" % d.proc.pid)
            names = {open("/proc/%d/task/%s/comm" % (d.proc.pid, tid)).read().strip()
                     for tid in tids}
            t.check("exe" not in names, "no thread named exe: %s" % sorted(names))
    finally:
        with_env(old)


@t.test
def other_tunables_kept():
    old = with_env({"GLIBC_TUNABLES": "glibc.malloc.check=0", "AIOD_HEAP_HUGE_PAGES": None})
    try:
        with t.daemon() as d:
            if EXPECT_REEXEC:
                t.eq(environ(d.proc.pid).get("AIOD_SAVED_GLIBC_TUNABLES"),
                     "=glibc.malloc.check=0", "what the re-executed daemon puts back")
                t.check("hg" in heap_flags(d.proc.pid),
                        "the heap advised as huge pages with other tunables given")
            else:
                t.check("AIOD_SAVED_GLIBC_TUNABLES" not in environ(d.proc.pid),
                        "no re-exec here (sanitizer or THP off)")
    finally:
        with_env(old)


@t.test
def administrator_choice_wins():
    for changes, why in (({"GLIBC_TUNABLES": TUNABLE + "=0", "AIOD_HEAP_HUGE_PAGES": None},
                          "GLIBC_TUNABLES names the tunable"),
                         ({"GLIBC_TUNABLES": None, "AIOD_HEAP_HUGE_PAGES": "0"},
                          "AIOD_HEAP_HUGE_PAGES=0")):
        old = with_env(changes)
        try:
            with t.daemon() as d:
                env = environ(d.proc.pid)
                t.eq(env.get("GLIBC_TUNABLES"), changes["GLIBC_TUNABLES"],
                     "no re-exec when %s" % why)
                t.check(not any(k.startswith("AIOD_SAVED") for k in env),
                        "no re-exec when %s: %r" % (why, sorted(env)))
                t.check("hg" not in heap_flags(d.proc.pid), "the heap left alone when %s" % why)
        finally:
            with_env(old)


t.main()
