#!/usr/bin/env python3
"""Readiness notification to the service manager (load-balancer(8),
SYSTEMD): the daemon speaks the sd_notify datagram protocol on
$NOTIFY_SOCKET.  The test owns the datagram socket (a path, and an
abstract "@name"), starts the daemon in the foreground as systemd's
Type=notify unit does, and checks every message and its order:

  start            READY=1 (once it listens: a connection right after is
                   served), STATUS=..., MAINPID=<its pid>
  SIGHUP, valid    RELOADING=1 with MONOTONIC_USEC=<now>, then READY=1
  SIGHUP, invalid  RELOADING=1, then READY=1 with a STATUS saying the
                   reload failed (the old configuration keeps running)
  lbctl reload     the same pair
  SIGTERM          STOPPING=1, and nothing after it

and that nothing else is sent."""

import os
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"


class Notify:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "lbtest-notify-%d-%d" % (os.getpid(), time.monotonic_ns() % 10**9)
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            self.dir = t.tempdir("lbtest-notify-")
            path = os.path.join(self.dir, "notify")
            self.sock.bind(path)
            self.env = path
        self.sock.settimeout(0.1)
        self.msgs = []
        self.stored = []
        self.cursor = 0
        t.add_cleanup(self.sock.close)

    def poll(self):
        """Read what came; FDSTORE=1 messages (with their descriptor) go
        to self.stored, the others to self.msgs."""
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(4 * 16))
            except socket.timeout:
                return
            m = parse(data)
            fds = []
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds += list(struct.unpack("%di" % (len(payload) // 4),
                                              payload[:len(payload) - len(payload) % 4]))
            m["_fds"] = fds
            if "FDSTORE" in m or "FDSTOREREMOVE" in m:
                self.stored.append(m)
            else:
                for fd in fds:
                    os.close(fd)
                self.msgs.append(m)

    def wait(self, pred, timeout=10.0):
        """The first message after the last one wait() returned (or
        after the start) with pred(m); None after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            for i in range(self.cursor, len(self.msgs)):
                if pred(self.msgs[i]):
                    self.cursor = i + 1
                    return self.msgs[i]
            if time.monotonic() >= deadline:
                return None


def parse(data):
    d = {}
    for line in data.decode(errors="replace").split("\n"):
        if "=" in line:
            k, v = line.split("=", 1)
            d[k] = v
    d["_raw"] = data
    return d


def close_stored(n):
    for m in n.stored:
        for fd in m["_fds"]:
            try:
                os.close(fd)
            except OSError:
                pass


def start(notify, conf_text):
    port = t.free_port(H)
    sink = t.SmtpSink().start()
    cfg = conf_text or t.make_config("%s:%d" % (H, port), [("s1", sink.address)],
                                     glob={"stats_listen": ""})
    d = t.Daemon(cfg, [(H, port)], name="notify")
    env = dict(os.environ, NOTIFY_SOCKET=notify.env)
    d._err = open(d.errpath, "ab")
    d._out = open(d.outpath, "ab")
    d.proc = subprocess.Popen(t.LB_WRAPPER + [t.LB_BIN, "-F", "-f", d.conf], env=env,
                              stdin=subprocess.DEVNULL, stdout=d._out, stderr=d._err,
                              cwd=d.dir)
    t._register_proc(d.proc, "load-balancer")
    return d, port


def pos(n, m):
    """Where message m (this very one) is in n.msgs."""
    return next(i for i, x in enumerate(n.msgs) if x is m)


def test_sequence():
    n = Notify()
    d, port = start(n, None)
    m = n.wait(lambda m: "READY" in m, 20)
    t.require(m is not None, "start: READY=1 arrives", str(n.msgs))
    t.check(m.get("READY") == "1" and m.get("MAINPID") == str(d.proc.pid) and "STATUS" in m,
            "start: READY=1, STATUS=..., MAINPID=<the daemon's pid>", str(m["_raw"]))
    t.log("  start: %r" % m["_raw"])
    t.check(t.quick_session(H, port) is not None, "once READY=1 came, a session is served")
    st = [(x.get("FDNAME"), len(x["_fds"])) for x in n.stored]
    t.check(st == [("127.0.0.1_%d" % port, 1)],
            "before READY=1: FDSTORE=1 with the listening socket, FDNAME=127.0.0.1_PORT", str(st))
    close_stored(n)
    t.check(len(n.msgs) == 1, "start: one message only", str([x["_raw"] for x in n.msgs]))

    # SIGHUP, valid file.
    before = time.monotonic()
    d.proc.send_signal(signal.SIGHUP)
    r = n.wait(lambda m: "RELOADING" in m)
    ok = n.wait(lambda m: "READY" in m)
    t.require(r is not None and ok is not None, "SIGHUP: RELOADING=1 then READY=1",
              str([x["_raw"] for x in n.msgs]))
    t.log("  SIGHUP: %r then %r" % (r["_raw"], ok["_raw"]))
    t.check(pos(n, r) < pos(n, ok), "RELOADING=1 comes before READY=1")
    usec = int(r.get("MONOTONIC_USEC", "0"))
    t.check(abs(usec / 1e6 - before) < 5, "MONOTONIC_USEC is CLOCK_MONOTONIC at the reload (within 5 s)",
            "%s vs %.3f" % (r.get("MONOTONIC_USEC"), before))
    t.check(r.get("RELOADING") == "1" and ok.get("READY") == "1", "RELOADING=1, READY=1")
    t.check("reloaded" in ok.get("STATUS", ""), "READY's STATUS says it reloaded", ok.get("STATUS"))

    # SIGHUP, invalid file: the old configuration keeps running.
    good = open(d.conf).read()
    with open(d.conf, "w") as f:
        f.write(good.replace("global = {", "global = { no_such_key = 1;", 1))
    nmsgs = len(n.msgs)
    d.proc.send_signal(signal.SIGHUP)
    r = n.wait(lambda m: "RELOADING" in m)
    ok = n.wait(lambda m: "READY" in m)
    t.require(r is not None and ok is not None, "SIGHUP (invalid file): RELOADING=1 then READY=1",
              str([x["_raw"] for x in n.msgs[nmsgs:]]))
    t.log("  SIGHUP, invalid file: %r then %r" % (r["_raw"], ok["_raw"]))
    t.check("reload failed" in ok.get("STATUS", ""), "READY's STATUS says the reload failed",
            ok.get("STATUS"))
    t.check(t.quick_session(H, port) is not None, "the old configuration still serves")
    with open(d.conf, "w") as f:
        f.write(good)

    # lbctl reload: the same pair.
    nmsgs = len(n.msgs)
    rc, out, err = d.ctl("reload")
    t.check(rc == 0, "lbctl reload", out + err)
    r = n.wait(lambda m: "RELOADING" in m)
    ok = n.wait(lambda m: "READY" in m)
    t.check(r is not None and ok is not None and pos(n, r) < pos(n, ok),
            "lbctl reload: RELOADING=1 then READY=1", str([x["_raw"] for x in n.msgs[nmsgs:]]))

    # SIGTERM.
    nmsgs = len(n.msgs)
    d.proc.send_signal(signal.SIGTERM)
    s = n.wait(lambda m: "STOPPING" in m)
    t.check(s is not None and s.get("STOPPING") == "1", "SIGTERM: STOPPING=1",
            str([x["_raw"] for x in n.msgs[nmsgs:]]))
    try:
        rc = d.proc.wait(15)
    except subprocess.TimeoutExpired:
        rc = None
    t.check(rc == 0, "exit 0 after SIGTERM", str(rc))
    n.poll()
    t.check(len(n.msgs) == nmsgs + 1, "nothing after STOPPING=1", str([x["_raw"] for x in n.msgs[nmsgs:]]))
    seq = [("READY" if "READY" in x else "RELOADING" if "RELOADING" in x else
            "STOPPING" if "STOPPING" in x else "?") for x in n.msgs]
    t.log("FIGURE notify sequence: %s" % " ".join(seq))
    t.check(seq == ["READY", "RELOADING", "READY", "RELOADING", "READY", "RELOADING", "READY",
                    "STOPPING"], "the whole sequence, in order", " ".join(seq))


def test_abstract_and_sigint():
    """An abstract socket ("@name"), and SIGINT."""
    n = Notify(abstract=True)
    d, port = start(n, None)
    m = n.wait(lambda m: "READY" in m, 20)
    t.check(m is not None, "abstract NOTIFY_SOCKET: READY=1", str(n.msgs))
    d.proc.send_signal(signal.SIGINT)
    s = n.wait(lambda m: "STOPPING" in m)
    t.check(s is not None, "SIGINT: STOPPING=1", str([x["_raw"] for x in n.msgs]))
    try:
        d.proc.wait(15)
    except subprocess.TimeoutExpired:
        pass


def test_no_socket():
    """NOTIFY_SOCKET naming nothing: a warning, and the daemon runs."""
    n = Notify()
    n.env = os.path.join(n.dir, "nobody-listens-here")
    d, port = start(n, None)
    ok = t.wait_until(lambda: t.is_listening(H, port), 10)
    t.check(ok and t.quick_session(H, port) is not None, "the daemon serves anyway")
    t.check("NOTIFY_SOCKET" in d.stderr(), "and says why it cannot notify", d.stderr()[-300:])
    d.proc.send_signal(signal.SIGTERM)
    try:
        d.proc.wait(15)
    except subprocess.TimeoutExpired:
        pass


def test_fdstore_restart():
    """What systemd does across `systemctl restart` with
    FileDescriptorStoreMax=: it keeps the stored listening socket while no
    daemon runs (a client that connects then waits in its queue, it is
    not refused) and passes it to the next daemon ($LISTEN_FDS), which
    serves that client."""
    n = Notify()
    d, port = start(n, None)
    t.require(n.wait(lambda m: "READY" in m, 20) is not None, "READY=1")
    t.require(len(n.stored) == 1 and len(n.stored[0]["_fds"]) == 1, "one socket stored",
              str(n.stored))
    kept = n.stored[0]["_fds"][0]
    d.proc.send_signal(signal.SIGTERM)
    try:
        d.proc.wait(15)
    except subprocess.TimeoutExpired:
        pass
    # No daemon runs: the connection waits in the kept socket's queue.
    try:
        c = socket.create_connection((H, port), timeout=5)
    except OSError as e:
        t.require(False, "with no daemon running, a client connects (queued, not refused)", repr(e))
    t.log("  with no daemon running, a client connected (queued in the kept socket)")
    env = dict(os.environ, NOTIFY_SOCKET=n.env, LISTEN_FDS="1")

    errpath = os.path.join(d.dir, "second.stderr")
    with open(errpath, "wb") as err:
        p = subprocess.Popen(["sh", "-c", ('exec 3<&%d %d<&-; ' % (kept, kept) if kept != 3 else '') +
                              'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', "sh"] + t.LB_WRAPPER +
                             [t.LB_BIN, "-F", "-f", d.conf], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=err, pass_fds=(kept,),
                             cwd=d.dir)
    t._register_proc(p, "load-balancer (LISTEN_FDS)")
    r = n.wait(lambda m: "READY" in m, 20)
    t.check(r is not None and r.get("MAINPID") == str(p.pid), "the second daemon: READY=1",
            "%s %s" % (r, open(errpath, errors="replace").read()[-600:]))
    c.settimeout(10)
    try:
        banner = c.recv(512)
    except OSError as e:
        banner = repr(e).encode()
    c.close()
    t.check(banner.startswith(b"220"), "the client that waited gets its banner from the second daemon",
            repr(banner[:80]))
    text = open(errpath, errors="replace").read()
    t.check("listening sockets from the service manager" in text,
            "the second daemon says it took the socket from the service manager", text[-400:])
    t.check(t.quick_session(H, port) is not None, "and serves new sessions")
    os.close(kept)
    close_stored(n)
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(15)
    except subprocess.TimeoutExpired:
        pass


def test_fdstore_reload():
    """A reload that adds an address stores its socket; one that drops an
    address takes it out of the store (FDSTOREREMOVE), so that it closes."""
    n = Notify()
    d, port = start(n, None)
    t.require(n.wait(lambda m: "READY" in m, 20) is not None, "READY=1")
    port2 = t.free_port(H)
    a, b = "127.0.0.1_%d" % port, "127.0.0.1_%d" % port2
    conf = open(d.conf).read()
    with open(d.conf, "w") as f:
        f.write(conf.replace('bind = "%s:%d";' % (H, port),
                             'bind = ( "%s:%d", "%s:%d" );' % (H, port, H, port2)))
    nst = len(n.stored)
    d.proc.send_signal(signal.SIGHUP)
    t.require(n.wait(lambda m: "READY" in m) is not None, "reload 1: READY=1")
    names = [(x.get("FDNAME"), "FDSTORE" in x) for x in n.stored[nst:]]
    t.check((b, True) in names and not any(k == "FDSTOREREMOVE" for x in n.stored[nst:] for k in x),
            "a reload that adds %s stores its socket, removes nothing" % b, str(names))
    with open(d.conf, "w") as f:
        f.write(conf.replace('bind = "%s:%d";' % (H, port), 'bind = "%s:%d";' % (H, port2)))
    nst = len(n.stored)
    d.proc.send_signal(signal.SIGHUP)
    t.require(n.wait(lambda m: "READY" in m) is not None, "reload 2: READY=1")
    rem = [x.get("FDNAME") for x in n.stored[nst:] if "FDSTOREREMOVE" in x]
    t.check(rem == [a], "a reload that drops %s: FDSTOREREMOVE=1 FDNAME=%s" % (a, a), str(rem))
    close_stored(n)
    d.proc.send_signal(signal.SIGTERM)
    try:
        d.proc.wait(15)
    except subprocess.TimeoutExpired:
        pass


if __name__ == "__main__":
    t.main([test_sequence, test_abstract_and_sigint, test_no_socket, test_fdstore_restart,
            test_fdstore_reload],
           timeout=120)
