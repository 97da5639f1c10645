#!/usr/bin/env python3
"""global.user, global.group and global.chroot (load-balancer.conf(5),
GLOBAL; load-balancer(8), EXIT STATUS): as root the daemon binds, opens its
logs and control socket, then runs as the named user and group inside the
chroot, and still serves; a user or group that does not exist stops the
start with exit 3 and one line saying so, before anything is bound."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def test_drop():
    if os.geteuid() != 0:
        raise t.Skip("needs root to switch users")
    bk = t.Backend(t.health_handler(t.SmtpBehavior("s1")), name="s1")
    root = t.tempdir("lbtest-chroot-")
    os.chmod(root, 0o755)
    port = t.free_port()
    text = t.make_config("%s:%d" % (H, port), [("s1", bk.address)],
                         be={"timeout_server": "10m"},
                         glob={"user": "nobody", "group": "nogroup", "chroot": root})
    # LeakSanitizer reads /proc at exit, which is outside the chroot: in
    # the sanitizer build it would fail the exit for that reason alone.
    # Address and UB checks stay on.
    asan = os.environ.get("ASAN_OPTIONS", "")
    os.environ["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "detect_leaks=0"
    try:
        d = t.Daemon(text, [(H, port)], name="drop").start()
    finally:
        os.environ["ASAN_OPTIONS"] = asan
        if not asan:
            del os.environ["ASAN_OPTIONS"]
    st = proc_status(d.proc.pid)
    t.log("  Uid %s Gid %s Groups %s" % (st["Uid"], st["Gid"], st.get("Groups")))
    t.check(st["Uid"] == ["65534"] * 4, "runs as nobody (uid 65534, real/effective/saved/fs)",
            str(st["Uid"]))
    t.check(st["Gid"] == ["65534"] * 4, "runs as group nogroup (gid 65534)", str(st["Gid"]))
    t.check(st.get("Groups", []) == ["65534"], "no supplementary groups of root's left",
            str(st.get("Groups")))
    link = os.readlink("/proc/%d/root" % d.proc.pid)
    t.check(os.path.realpath(link) == os.path.realpath(root), "chrooted into %s" % root, link)
    ok = sum(1 for _ in range(5) if t.client_session(H, port)[0] == "s1")
    t.check(ok == 5, "still serves: 5 of 5 sessions relayed to s1", str(ok))
    rc, out, err = d.ctl("show info")
    t.check(rc == 0, "the control socket still answers after the drop", err)
    d.stop()


def test_unknown_user_exit3():
    port = t.free_port()
    for key, val, want in (("user", "no-such-user-lbtest", "user no-such-user-lbtest: no such user"),
                           ("group", "no-such-group-lbtest", "group no-such-group-lbtest: no such group")):
        text = t.make_config("%s:%d" % (H, port), [("s1", "127.0.0.1:9")], glob={key: val})
        d = t.Daemon(text, [(H, port)], name="bad" + key)
        d.start(wait=False)
        t.wait_until(lambda: d.proc.poll() is not None, 5)
        rc = d.proc.poll()
        if rc is None:
            d.stop()
        err = d.stderr()
        t.check(rc == 3, "%s missing: exit 3" % key, "rc=%s" % rc)
        t.check(want in err, "%s missing: says '%s'" % (key, want), err[-300:])
        t.check("event=start" not in err and not t.is_listening(H, port),
                "%s missing: nothing bound or started" % key, err[-300:])


if __name__ == "__main__":
    t.main([test_drop, test_unknown_user_exit3], timeout=40)
