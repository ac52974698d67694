"""Which socket aioctl (libaioclient) picks, and what it says when it
cannot use it: aioctl(1) ENVIRONMENT and FILES, aioc_connect(3)."""

import os
import socket

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


if __name__ == "__main__":
    t.main()
