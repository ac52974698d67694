"""Who may do what, against a real daemon: task ownership, the admin group,
call rules, per-user limits, result size and concurrency limits.

Other users are played by aioctl processes that drop to another uid (and
gid) before exec, so the daemon sees them through SO_PEERCRED exactly as it
would see real users. That needs root, as CI runs; elsewhere the script
reports itself skipped (ctest shows it as skipped, not passed)."""

import os
import sys

import harness

t = harness.Suite(__file__)

NOBODY = 65534  # Debian's "nobody" user and "nogroup" group
OTHER = 4242  # a uid with no passwd entry: policy works on numbers
ADM_GID = 4  # Debian's "adm" group


def as_user(d, uid, gid, *args, timeout=60):
    """aioctl ARGS... run as uid/gid."""

    def drop():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    argv = d.ctl_argv(*args)
    import subprocess
    import time
    start = time.monotonic()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                       env=harness.clean_env(), preexec_fn=drop)
    return harness.Result(argv, p.returncode, p.stdout.decode(), p.stderr.decode(),
                          time.monotonic() - start)


def open_to_all(d):
    """Lets other users reach the socket: the temp dirs and the socket file."""
    os.chmod(t._tmp, 0o755)
    os.chmod(d.dir, 0o755)
    os.chmod(d.socket, 0o666)


def policy_daemon(*lines, extra=()):
    conf_dir = t.tmpdir("conf")
    conf = os.path.join(conf_dir, "aiod.conf")
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    d = t.daemon(extra_args=["--config", conf] + list(extra))
    open_to_all(d)
    return d


@t.test
def users_see_and_cancel_only_their_own_tasks():
    with policy_daemon("admin_group = adm") as d:
        r = as_user(d, NOBODY, NOBODY, "submit", "demo.sleep", "30", "a")
        t.eq(r.rc, 0, "nobody submits", r)
        tid = r.lines[-1].strip()
        # Another user can neither cancel, await, show nor list it.
        r = as_user(d, OTHER, OTHER, "cancel", tid)
        t.eq(r.rc, 2, "another user's cancel is refused", r)
        t.contains(r.err, "belongs to uid %d" % NOBODY, "the refusal names the owner", r)
        t.contains(r.err, "adm", "the refusal names the admin group", r)
        for cmd in (("await", "--timeout", "0.1", tid), ("show", tid), ("logs", tid)):
            r = as_user(d, OTHER, OTHER, *cmd)
            t.eq(r.rc, 2, "another user's %s is refused" % cmd[0], r)
        r = as_user(d, OTHER, OTHER, "ps")
        t.check(tid not in r.out.split(), "another user's ps does not list the task", r)
        r = as_user(d, NOBODY, NOBODY, "ps")
        t.contains(r.out, "demo.sleep", "the owner's ps lists it", r)
        # A member of the admin group (by its gid) may act on it.
        r = as_user(d, OTHER, ADM_GID, "show", tid)
        t.eq(r.rc, 0, "an admin may show it", r)
        r = as_user(d, OTHER, ADM_GID, "cancel", tid)
        t.eq(r.rc, 0, "an admin may cancel it", r)
        r = d.aioctl("await", tid)
        t.eq(r.rc, 5, "root awaits it: cancelled", r)


@t.test
def call_rules_restrict_functions():
    with policy_daemon("call = demo.fail nobody", "call = demo.e* %d" % OTHER) as d:
        r = as_user(d, OTHER, OTHER, "run", "demo.fail", "KeyError", "x")
        t.eq(r.rc, 2, "a user no rule allows is refused", r)
        t.contains(r.err, "demo.fail: not allowed for uid %d by the rule 'demo.fail = nobody'"
                   % OTHER, "the refusal names the rule", r)
        r = as_user(d, NOBODY, NOBODY, "run", "demo.fail", "KeyError", "x")
        t.eq(r.rc, 1, "the allowed user gets the task's own failure", r)
        r = as_user(d, OTHER, OTHER, "run", "demo.echo", "hi")
        t.eq(r.rc, 0, "a second rule allows by uid", r)
        r = as_user(d, NOBODY, NOBODY, "run", "demo.echo", "hi")
        t.eq(r.rc, 2, "first matching rule decides", r)
        r = as_user(d, NOBODY, NOBODY, "run", "demo.sleep", "0", "free")
        t.eq(r.rc, 0, "functions no rule names are open to all", r)
        r = d.aioctl("run", "demo.fail", "KeyError", "x")
        t.eq(r.rc, 1, "root may always call", r)


@t.test
def call_rules_that_cannot_do_what_they_say_are_refused():
    """'call = proc @wheel' (or 'proc.', the form on_interrupt takes for a
    whole plugin) matched no function, so proc.* stayed open to everyone
    without a word; a uid past 32 bits was cut to another user's."""
    import subprocess
    conf_dir = t.tmpdir("callconf")
    # limit and on_interrupt took patterns that can never match too (limit =
    # demo.* 1 limited nothing), and limit -1 was "18446744073709551615 is
    # too large".
    for line, want in (("call = proc root", "matches no function"),
                       ("call = proc. root", "matches no function"),
                       ("call = proc.* 4294968296", "not a user id"),
                       ("call = proc.* -1", "not a user id"),
                       ("limit = demo.* 1", "'demo.*' names no function"),
                       ("limit = demo 1", "'demo' names no function"),
                       ("limit = demo. 1", "'demo.' names no function"),
                       ("limit = demo.sleep -1", "a limit is a count"),
                       ("on_interrupt = demo.* retry", "'demo.*' names no function"),
                       ("on_interrupt = nodot fail", "'nodot' names no function")):
        conf = os.path.join(conf_dir, "aiod.conf")
        with open(conf, "w") as f:
            f.write(line + "\n")
        p = subprocess.run([t.aiod, "--config", conf, "--check-config"], capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=60, env=harness.clean_env())
        err = p.stderr.decode("utf-8", "replace")
        t.eq(p.returncode, 1, "--check-config of %r" % line, " stderr %r" % err)
        t.contains(err, "%s:1:" % conf, "the error names the file and line", " %r" % err)
        t.contains(err, want, "and says what is wrong with %r" % line, " %r" % err)
    # A group's name may hold a '-' (only the count may not be negative).
    conf = os.path.join(conf_dir, "aiod.conf")
    with open(conf, "w") as f:
        f.write("limit = group my-group 3\n")
    p = subprocess.run([t.aiod, "--config", conf, "--check-config"], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=60, env=harness.clean_env())
    t.eq(p.returncode, 0, "--check-config of 'limit = group my-group 3'", p.stderr)


@t.test
def per_user_task_limit():
    with policy_daemon("max_tasks_per_uid = 2") as d:
        for i in range(2):
            r = as_user(d, NOBODY, NOBODY, "submit", "demo.sleep", "30", str(i))
            t.eq(r.rc, 0, "task %d within the limit" % i, r)
        r = as_user(d, NOBODY, NOBODY, "submit", "demo.sleep", "30", "x")
        t.eq(r.rc, 2, "the third task is refused", r)
        t.contains(r.err, "max_tasks_per_uid (2)", "the refusal names the limit", r)
        r = as_user(d, OTHER, OTHER, "submit", "demo.sleep", "30", "y")
        t.eq(r.rc, 0, "another user is not affected", r)
        r = d.aioctl("submit", "demo.sleep", "30", "z")
        t.eq(r.rc, 0, "root is exempt", r)


@t.test
def per_user_argument_memory_limit():
    """Waiting tasks keep their arguments: without a bound per user, one user
    could fill the machine's memory with sleeping tasks of big arguments."""
    with policy_daemon("max_task_bytes_per_uid = 100K") as d:
        big = "x" * 40000
        for i in range(2):
            r = as_user(d, NOBODY, NOBODY, "submit", "demo.sleep", "30", big)
            t.eq(r.rc, 0, "task %d of 40 kB within the limit" % i, r)
        r = as_user(d, NOBODY, NOBODY, "submit", "demo.sleep", "30", big)
        t.eq(r.rc, 2, "a third one, past 100K together, is refused", r)
        t.contains(r.err, "max_task_bytes_per_uid (102400 bytes)", "the refusal names the limit", r)
        t.contains(r.err, "uid %d" % NOBODY, "and the user", r)
        r = as_user(d, NOBODY, NOBODY, "submit", "demo.sleep", "30", "small")
        t.eq(r.rc, 0, "a small task still fits", r)
        r = as_user(d, NOBODY, NOBODY, "submit", "demo.sleep", "0", "y" * 110000)
        t.eq(r.rc, 2, "one task over the limit alone is refused", r)
        t.contains(r.err, "arguments alone would hold more than max_task_bytes_per_uid",
                   "saying that it could never fit", r)
        r = as_user(d, OTHER, OTHER, "submit", "demo.sleep", "30", big)
        t.eq(r.rc, 0, "another user is not affected", r)
        r = d.aioctl("submit", "demo.sleep", "30", "z" * 110000)
        t.eq(r.rc, 0, "root is exempt", r)
        first = [tk for tk in d.ps() if tk["uid"] == NOBODY][0]
        r = d.aioctl("cancel", str(first["task"]))
        t.eq(r.rc, 0, "cancel one of nobody's big tasks", r)
        r = as_user(d, NOBODY, NOBODY, "submit", "demo.sleep", "30", big)
        t.eq(r.rc, 0, "its memory counts no more once it ended", r)


@t.test
def one_users_many_outcomes_do_not_push_out_anothers():
    """retain_count forgot the oldest outcome of all, whoever owned it: any
    user who can open the socket erased everyone's kept results with a few
    thousand quick tasks. Now the user with the most outcomes kept loses
    its oldest first, as retain_bytes already did by memory."""
    with policy_daemon("retain_count = 10") as d:
        r = as_user(d, NOBODY, NOBODY, "submit", "demo.echo", "nobody's result")
        t.eq(r.rc, 0, "nobody submits", r)
        mine = r.out.strip()
        t.eq(as_user(d, NOBODY, NOBODY, "await", mine).rc, 0, "and it ends")
        theirs = []
        for i in range(25):
            r = as_user(d, OTHER, OTHER, "submit", "demo.echo", "flood %d" % i)
            t.eq(r.rc, 0, "another user's task %d" % i, r)
            theirs.append(r.out.strip())
        t.eq(as_user(d, OTHER, OTHER, "await", theirs[-1]).rc, 0, "the last of them ends")
        r = as_user(d, NOBODY, NOBODY, "await", mine)
        t.eq(r.rc, 0, "nobody's one outcome is still kept", r)
        t.contains(r.out, "nobody's result", "with its result", r)
        kept = [tid for tid in theirs if d.aioctl("show", tid).rc == 0]
        t.eq(kept, theirs[-9:], "the flooding user keeps its newest 9 (10 in all)")


@t.test
def call_rules_apply_to_what_a_task_spawns():
    """A call rule was checked only on the client's own call: a function
    that spawns another by name (net.fetch_many spawns net.fetch; here the
    seed's example 1 spawns demo.my_async_function1) called the restricted
    one for any user. The rule now applies to the spawn too."""
    with policy_daemon("call = demo.my_async_function1 @adm") as d:
        r = as_user(d, NOBODY, NOBODY, "run", "demo.my_async_function1", "0", "true")
        t.eq(r.rc, 2, "the direct call is refused", r)
        r = as_user(d, NOBODY, NOBODY, "run", "demo.main_sequential")
        t.eq(r.rc, 1, "the task that spawns it fails", r)
        t.contains(r.err, "PermissionError", "with PermissionError", r)
        t.contains(r.err, "demo.my_async_function1: not allowed for uid %d by the rule" % NOBODY,
                   "naming the rule", r)
        t.check("Starting my_async_function1" not in r.out, "the helper never ran", r)
    # net.fetch_many spawns net.fetch: the rule on net.fetch refuses the
    # whole call (an OSError entry per URL, "Operation not permitted", hid
    # the rule).
    with policy_daemon("call = net.fetch root") as d:
        r = as_user(d, NOBODY, NOBODY, "run", "net.fetch_many", '["http://127.0.0.1:1/"]')
        t.eq(r.rc, 1, "fetch_many fails", r)
        t.contains(r.err, "PermissionError", "with PermissionError", r)
        t.contains(r.err, "net.fetch: not allowed for uid %d by the rule" % NOBODY,
                   "naming the rule", r)


@t.test
def a_refused_gather_leaves_nothing_and_refusals_are_logged():
    """A gather refused whole by a call rule on its second item left its first
    item behind as a cancelled task (in ps --all, logged as an outcome,
    holding a retention slot), though a denied call creates nothing. And no
    refusal, by rule or by ownership, reached the log."""
    with policy_daemon("call = demo.fail @adm") as d:
        r = as_user(d, NOBODY, NOBODY, "gather", "demo.echo 1", "demo.fail K M")
        t.eq(r.rc, 2, "the gather is refused", r)
        t.contains(r.err, "demo.fail: not allowed for uid %d" % NOBODY, "naming the rule", r)
        left = [tk for tk in d.ps(all_tasks=True) if tk["uid"] == NOBODY]
        t.eq(left, [], "no task of nobody's is left, not even a cancelled one")
        t.check("attached task cancelled" not in d.log(), "no outcome was logged", d.log()[-1500:])
        line = d.wait_log("refused: demo.fail: not allowed for uid %d" % NOBODY, 10)
        t.contains(line, "uid %d" % NOBODY, "the log names the user", line)
        r = as_user(d, OTHER, OTHER, "submit", "demo.sleep", "30", "x")
        t.eq(r.rc, 0, "another user's task", r)
        theirs = r.out.strip()
        r = as_user(d, NOBODY, NOBODY, "cancel", theirs)
        t.eq(r.rc, 2, "nobody may not cancel it", r)
        line = d.wait_log("refused: task %s belongs to uid %d" % (theirs, OTHER), 10)
        t.contains(line, "(uid %d, pid" % NOBODY, "the refused cancel is logged, naming who", line)


@t.test
def a_limit_naming_no_function_is_warned():
    """`limit = demo.slep 1` (a typo) limited nothing, without a word."""
    with policy_daemon("limit = demo.slep 1", "limit = demo.sleep 2") as d:
        line = d.wait_log("limit = demo.slep 1: no plugin loaded has the function demo.slep", 10)
        t.contains(line, "warning", "a warning", line)
        r = d.aioctl("reload")
        t.eq(r.rc, 0, "reload", r)
        t.eq(d.wait_log_count("no plugin loaded has the function demo.slep", 2, 10), 2,
             "said again at the reload")
        t.check("function demo.sleep;" not in d.log(), "not for a function that is loaded",
                d.log()[-1000:])


def raw_as(d, uid, gid):
    """A raw connection the daemon sees as uid/gid: SO_PEERCRED records the
    effective ids at connect()."""
    os.setegid(gid)
    os.seteuid(uid)
    try:
        return d.raw()
    finally:
        os.seteuid(0)
        os.setegid(0)


def msg_submit_attached(req, function, arg):
    call = harness.field_bytes(1, function.encode()) + harness.field_bytes(
        2, harness.field_bytes(5, arg.encode()))
    return harness.field_varint(1, req) + harness.field_bytes(3, harness.field_bytes(1, call))


@t.test
def unclaimed_attached_outcomes_count_against_the_users_bytes():
    """An attached task's outcome is kept for its connection until awaited:
    a connection that never awaits grew the daemon without bound (each
    outcome pinned, counted nowhere). Now they count against the owner's
    max_task_bytes_per_uid until delivered or the connection closes."""
    with policy_daemon("max_task_bytes_per_uid = 100K") as d:
        c = raw_as(d, NOBODY, NOBODY)
        t.check(c.send_frame(harness.msg_hello(1, 1)), "hello sent")
        t.eq(c.recv().kind, harness.SM_HELLO, "hello answered")
        arg = "x" * 20000  # ~40 KB held per outcome: argument and result
        refused = None
        for i in range(2, 12):
            t.check(c.send_frame(msg_submit_attached(i, "demo.echo", arg)), "submit sent")
            rep = c.recv()
            if rep.kind == harness.SM_ERROR:
                refused = (i - 2, rep)
                break
            tid = rep.body.get(1, [0])[0]
            d.wait_task(lambda tk: tk["task"] == tid and tk["state"] == "done",
                        "task %d done (never awaited)" % tid)
        t.check(refused is not None, "a connection that never awaits is held to the limit",
                " (10 echo tasks of 20 kB accepted, each outcome kept)")
        n, rep = refused
        t.check(1 <= n <= 3, "refused once the kept outcomes fill the limit", " (after %d)" % n)
        t.eq(rep.error_code, 8, "ERROR_LIMIT", " %r" % rep)
        t.contains(rep.error_message, "max_task_bytes_per_uid (102400 bytes)",
                   "the refusal names the limit", rep)
        t.contains(rep.error_message, "outcomes of its attached tasks not yet awaited",
                   "and what holds it", rep)
        c.hang_up()
        r = as_user(d, NOBODY, NOBODY, "submit", "demo.sleep", "30", arg)
        t.eq(r.rc, 0, "once the connection closed, its outcomes no longer count", r)


@t.test
def per_user_connection_limit():
    with policy_daemon("max_connections_per_uid = 2") as d:
        def drop():
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)

        import subprocess
        held = [subprocess.Popen(d.ctl_argv("run", "demo.sleep", "30"), env=harness.clean_env(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 preexec_fn=drop) for _ in range(2)]
        try:
            d.wait_task(lambda tk: tk["state"] == "running" and tk["uid"] == NOBODY
                        and len([x for x in d.ps() if x["uid"] == NOBODY]) == 2,
                        "two of nobody's connections holding tasks", timeout=20)
            r = as_user(d, NOBODY, NOBODY, "ps")
            t.eq(r.rc, 2, "a third connection is refused", r)
            t.contains(r.err, "max_connections_per_uid (2)", "the refusal names the limit", r)
        finally:
            for p in held:
                p.kill()
                p.wait()


@t.test
def results_over_max_result_fail_the_task():
    with policy_daemon("max_result = 1K") as d:
        r = d.aioctl("run", "demo.echo", "x" * 2000)
        t.eq(r.rc, 1, "a too-large result fails the task", r)
        t.contains(r.err, "LimitError", "the error kind", r)
        t.contains(r.err, "max_result", "the error names the limit", r)
        r = d.aioctl("run", "demo.echo", "x" * 100)
        t.eq(r.rc, 0, "a small result passes", r)


@t.test
def concurrency_limit_from_settings():
    with policy_daemon("limit = demo.sleep 1") as d:
        r1 = d.aioctl("submit", "demo.sleep", "30", "first")
        r2 = d.aioctl("submit", "demo.sleep", "30", "second")
        t.eq((r1.rc, r2.rc), (0, 0), "both submitted", r2)
        second = r2.lines[-1].strip()
        r = d.aioctl("ps")
        row = [l for l in r.lines if l.split() and l.split()[0] == second]
        t.check(row and row[0].split()[1] == "waiting", "ps shows the second as waiting", r)
        r = d.aioctl("show", second)
        t.contains(r.out, "waiting for: function demo.sleep", "show names the limit", r)
        r = d.aioctl("cancel", r1.lines[-1].strip())
        t.eq(r.rc, 0, "cancel the first", r)
        d.wait_task(lambda tk: str(tk["task"]) == second and tk["state"] == "running",
                    "the second running once the first ended")



@t.test
def a_reload_that_raises_or_removes_a_limit_starts_the_waiting_tasks():
    """Tasks queued behind a limit were started only when a task of that
    limit ended: after a reload that raised the limit they kept waiting,
    and after one that removed it (limit 0, or the line deleted) they
    waited for good, and once a limit came back every new task queued
    behind them with nothing running."""
    conf_dir = t.tmpdir("conf")
    conf = os.path.join(conf_dir, "aiod.conf")

    def settings(line):
        with open(conf, "w") as f:
            f.write(line + "\n")

    def states(ids, want=None):
        """The tasks' states; with `want`, once they are that (up to 30 s): a
        task let through its limit waits at the start gate, pending, until its
        running record is committed (durability fsync: one fdatasync, longer
        on a busy disk than an aioctl call takes)."""
        import time
        deadline = time.monotonic() + 30
        while True:
            by_id = {str(tk["task"]): tk for tk in d.ps()}
            got = [by_id[i]["state"] if by_id[i]["waiting_for"] is None else "waiting"
                   for i in ids]
            if want is None or got == want or time.monotonic() > deadline:
                return got
            time.sleep(0.01)

    settings("limit = demo.sleep 1")
    with t.daemon(extra_args=["--config", conf]) as d:
        ids = [d.aioctl("submit", "demo.sleep", "60").lines[-1].strip() for _ in range(4)]
        want = ["running", "waiting", "waiting", "waiting"]
        t.eq(states(ids, want), want, "under limit 1")
        settings("limit = demo.sleep 3")
        t.eq(d.aioctl("reload").rc, 0, "reload to limit 3")
        want = ["running", "running", "running", "waiting"]
        t.eq(states(ids, want), want, "after raising it to 3")
        settings("limit = demo.sleep 0")
        t.eq(d.aioctl("reload").rc, 0, "reload to limit 0 (none)")
        t.eq(states(ids, ["running"] * 4), ["running"] * 4, "after removing it")
        settings("limit = demo.sleep 5")
        t.eq(d.aioctl("reload").rc, 0, "reload to limit 5")
        more = d.aioctl("submit", "demo.sleep", "60").lines[-1].strip()
        t.eq(states([more], ["running"]), ["running"], "a new task under limit 5, with 4 running")
        r = d.aioctl("cancel", *(ids + [more]))
        t.eq(r.rc, 0, "cancel them", r)



@t.test
def a_reload_says_which_settings_wait_for_a_restart():
    """state_dir, durability and the cluster* keys are read once, at start:
    a reload that changed them kept the old values without a word, and an
    admin who set durability = none believed it was in force."""
    conf = os.path.join(t.tmpdir("conf"), "aiod.conf")
    with open(conf, "w") as f:
        f.write("durability = fsync\n")
    with t.daemon(extra_args=["--config", conf]) as d:
        with open(conf, "w") as f:
            f.write("durability = none\ncluster = redis://127.0.0.1:1\ncluster_host = h1\n")
        r = d.aioctl("reload")
        t.eq(r.rc, 0, "the reload", r)
        d.wait_log("durability changed; it takes effect when aiod restarts", 10)
        d.wait_log("the cluster settings changed; they take effect when aiod restarts", 10)


if os.geteuid() != 0:
    print("SKIPPED: test_policy needs root to act as other users")
    sys.exit(77)
t.main()
