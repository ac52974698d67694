"""Which socket aioctl (libaioclient) picks, and what it says when it
cannot use it: aioctl(1) ENVIRONMENT and FILES, aioc_connect(3)."""

import os
import socket
import threading

import harness

t = harness.Suite(__file__)

SYSTEM_SOCKET = "/run/aiod/aiod.sock"


def ctl_env(**env):
    e = harness.clean_env()
    e.pop("XDG_RUNTIME_DIR", None)
    e.update(env)
    return e


@t.test
def another_users_runtime_dir_socket_is_not_used():
    """root with another user's XDG_RUNTIME_DIR (su without -) talked to that
    user's daemon: $XDG_RUNTIME_DIR/aiod/aiod.sock is used only when the
    caller owns it."""
    if os.geteuid() != 0:
        print("skipped: needs root to make a socket another user owns")
        return
    xdg = t.tmpdir("xdg")
    os.mkdir(os.path.join(xdg, "aiod"))
    path = os.path.join(xdg, "aiod", "aiod.sock")
    with t.daemon(socket_path=path) as d:
        env = ctl_env(XDG_RUNTIME_DIR=xdg)
        r = harness.run([t.aioctl, "ps"], env=env)
        t.eq(r.rc, 0, "ps through one's own $XDG_RUNTIME_DIR socket", r)
        os.chown(path, 65534, 65534)
        r = harness.run([t.aioctl, "ps"], env=env)
        if os.path.exists(SYSTEM_SOCKET):
            t.check("cannot reach" not in r.err or SYSTEM_SOCKET in r.err,
                    "the system socket is tried, not the other user's", r)
        else:
            t.eq(r.rc, 3, "ps with another user's socket in $XDG_RUNTIME_DIR", r)
        t.contains(r.err, SYSTEM_SOCKET, "the system socket is tried instead", r)
        t.check(path not in r.err, "the other user's socket is not named", r)
        d.assert_alive()
    # A regular file of one's own there is not a socket either.
    xdg2 = t.tmpdir("xdg2")
    os.mkdir(os.path.join(xdg2, "aiod"))
    open(os.path.join(xdg2, "aiod", "aiod.sock"), "w").close()
    r = harness.run([t.aioctl, "ps"], env=ctl_env(XDG_RUNTIME_DIR=xdg2))
    t.contains(r.err, SYSTEM_SOCKET, "a file that is not a socket is passed over", r)


@t.test
def a_refusal_that_comes_before_the_hello_is_read():
    """A daemon that answers a connection with an error and closes it (as
    aiod with invalid settings does past its linger) before the client's
    hello is written: the hello fails with a broken pipe, but the reason is
    in the client's receive buffer, and aioctl must print it rather than
    "Broken pipe". The LD_PRELOAD shim send_after_hangup.so holds the
    hello back until the fake daemon has hung up."""
    shim = os.path.join(os.path.dirname(t.args.many_inflight or ""), "send_after_hangup.so")
    t.check(os.path.exists(shim), "the shim %s is built" % shim)
    path = os.path.join(t.tmpdir("refuse"), "fake.sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(1)
    why = "aiod cannot start: fake.conf:3: something is wrong"
    error = harness.field_varint(1, 13) + harness.field_bytes(2, why.encode())

    def serve():
        c, _ = lsock.accept()
        c.sendall(harness.frame(harness.field_bytes(harness.SM_ERROR, error)))
        c.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    env = ctl_env(LD_PRELOAD=shim, AIOD_TEST_SEND_AFTER_HANGUP="1")
    # A sanitizer runtime wants to come first; the shim does not mind.
    env["ASAN_OPTIONS"] = ":".join(x for x in (env.get("ASAN_OPTIONS"),
                                               "verify_asan_link_order=0") if x)
    r = harness.run([t.aioctl, "-s", path, "ps"], env=env)
    th.join(30)
    lsock.close()
    t.eq(r.rc, 3, "aioctl ps refused by the daemon", r)
    t.contains(r.err, why, "aioctl prints the daemon's reason", r)
    t.check("Broken pipe" not in r.err, "not a broken pipe", r)


@t.test
def a_path_that_is_not_a_socket_is_named_so():
    """A regular file as the socket said "Connection refused — is the daemon
    running?"; now it says the path is not a socket, and where the path came
    from."""
    f = os.path.join(t.tmpdir("file"), "plain")
    open(f, "w").close()
    r = harness.run([t.aioctl, "ps"], env=ctl_env(AIOD_SOCKET=f))
    t.eq(r.rc, 3, "ps with $AIOD_SOCKET a regular file", r)
    t.contains(r.err, "%s (from $AIOD_SOCKET) is not a socket" % f, "says what is wrong", r)
    t.check("is the daemon running" not in r.err, "no hint at a stopped daemon", r)
    r = harness.run([t.aioctl, "-s", f, "ps"], env=ctl_env())
    t.eq(r.rc, 3, "ps --socket a regular file", r)
    t.contains(r.err, "%s (from --socket) is not a socket" % f, "names --socket", r)
    d = t.tmpdir("dir")
    r = harness.run([t.aioctl, "ps"], env=ctl_env(AIOD_SOCKET=d))
    t.contains(r.err, "%s (from $AIOD_SOCKET) is not a socket" % d, "a directory neither", r)
    # A path where nothing is: the daemon may be stopped; say where it came from.
    gone = os.path.join(d, "none.sock")
    r = harness.run([t.aioctl, "ps"], env=ctl_env(AIOD_SOCKET=gone))
    t.eq(r.rc, 3, "ps with no socket there", r)
    t.contains(r.err, "cannot reach aiod at %s (from $AIOD_SOCKET)" % gone, "names the source", r)
    t.contains(r.err, "is the daemon running", "and the usual hint", r)


@t.test
def a_too_long_path_names_where_it_came_from():
    """$AIOD_SOCKET of 200 characters was reported as "the default socket
    path is too long ... use --socket PATH"."""
    long_path = "/tmp/" + "x" * 195
    r = harness.run([t.aioctl, "ps"], env=ctl_env(AIOD_SOCKET=long_path))
    t.eq(r.rc, 3, "ps with a 200-character $AIOD_SOCKET", r)
    t.contains(r.err, "$AIOD_SOCKET", "the message names $AIOD_SOCKET", r)
    t.contains(r.err, "too long", "and says what is wrong", r)
    t.check("default" not in r.err, "and does not call it the default", r)
    r = harness.run([t.aioctl, "-s", long_path, "ps"], env=ctl_env())
    t.eq(r.rc, 3, "ps --socket of 200 characters", r)
    t.contains(r.err, "--socket", "the message names --socket", r)
    t.contains(r.err, "too long", "and says what is wrong", r)
    huge = "/tmp/" + "y" * 5000
    r = harness.run([t.aioctl, "ps"], env=ctl_env(AIOD_SOCKET=huge))
    t.eq(r.rc, 3, "ps with a 5000-character $AIOD_SOCKET", r)
    t.contains(r.err, "$AIOD_SOCKET", "names $AIOD_SOCKET", r)
    t.check("default" not in r.err, "and does not call it the default", r)


@t.test
def the_default_path_is_called_so():
    r = harness.run([t.aioctl, "ps"], env=ctl_env())
    if os.path.exists(SYSTEM_SOCKET):
        print("skipped: a system daemon's socket exists")
        return
    t.eq(r.rc, 3, "ps with no daemon", r)
    t.contains(r.err, "%s (the default)" % SYSTEM_SOCKET, "says it is the default", r)


if __name__ == "__main__":
    t.main()
