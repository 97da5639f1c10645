#!/usr/bin/env python3
"""Restarts that refuse no connection (load-balancer(8), RESTART).

test_takeover: `load-balancer -x` started beside a running daemon takes
its listening sockets (the frontends' and the status page's) over the
control socket; the old daemon stops accepting, releases the pidfile, lets
a session in DATA finish and exits; lbctl and the status page answer from
the new one.  A takeover with nothing to take over fails with exit status
3, and one that fails after receiving the sockets leaves the old daemon
serving.

test_restart_under_load: clients open SMTP sessions continuously (eight
threads, each a new session as soon as the last ended) to a balancer in
front of two Postfix smtp-sink servers that dump every message to a file,
while `init.d/load-balancer restart` runs five times; before each restart
a few more sessions stop in DATA and finish after it.  Then: no
connection was refused or reset, every message acknowledged with 250
arrived exactly once, every session held in DATA got its 250.  The same
load against the old restart (stop, then start) is run for comparison:
there the same client loop does see refused connections (which shows that
it would see them).
"""

import errno
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"
BUILDDIR = os.path.dirname(os.path.abspath(t.LB_BIN))
SCRIPT = os.path.join(BUILDDIR, "init.d", "load-balancer")
SLOW = os.environ.get("LB_SANITIZER") or t.LB_WRAPPER
MIN_RATE = 50 if SLOW else 200       # sessions a second during the restarts
CLIENT_THREADS = 8
RESTARTS = 5
OLD_RESTARTS = 3


# --------------------------------------------------------------------------
# An SMTP client session, raw, with every outcome classified

class Outcome:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.acked = []          # message ids that got 250 after the dot
        self.unacked = []        # ids whose dot was sent but not answered
        self.examples = {}

    def add(self, what, detail=""):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1
            self.examples.setdefault(what, detail)


def classify(e):
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if isinstance(e, (ConnectionResetError, BrokenPipeError)):
        return "reset"
    if isinstance(e, EOFError):
        return "closed"
    if isinstance(e, socket.timeout):
        return "timeout"
    if isinstance(e, OSError) and e.errno == errno.ECONNREFUSED:
        return "refused"
    return "error"


class Reader:
    def __init__(self, s):
        self.s = s
        self.buf = b""

    def reply(self):
        """One SMTP reply (multi-line too); returns its code."""
        while True:
            i = self.buf.find(b"\r\n")
            if i < 0:
                data = self.s.recv(4096)
                if not data:
                    raise EOFError("connection closed")
                self.buf += data
                continue
            line, self.buf = self.buf[:i], self.buf[i + 2:]
            if len(line) >= 4 and line[3:4] == b"-":
                continue
            return int(line[:3])


def expect(r, code):
    got = r.reply()
    if got != code:
        raise ValueError("expected %d, got %d" % (code, got))


def session(port, mid, out, hold=None, timeout=10.0):
    """One message.  hold: an Event; the session stops in DATA (half the
    body sent) until it is set.  Returns True when acknowledged."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(timeout)
    dot_sent = False
    try:
        s.connect((H, port))
        r = Reader(s)
        expect(r, 220)
        s.sendall(b"EHLO client.test\r\n")
        expect(r, 250)
        s.sendall(b"MAIL FROM:<load@client.test>\r\n")
        expect(r, 250)
        s.sendall(b"RCPT TO:<sink@filter.test>\r\n")
        expect(r, 250)
        s.sendall(b"DATA\r\n")
        expect(r, 354)
        s.sendall(b"X-Test-Id: %s\r\nSubject: restart test\r\n\r\n" % mid.encode())
        if hold is not None:
            s.sendall(b"first half of the body\r\n")
            hold.wait(30)
        s.sendall(b"second half of the body\r\n.\r\n")
        dot_sent = True
        expect(r, 250)
        with out.lock:
            out.acked.append(mid)
        s.sendall(b"QUIT\r\n")
        expect(r, 221)
        out.add("ok")
        return True
    except Exception as e:   # classified, counted, shown
        if dot_sent:
            with out.lock:
                out.unacked.append(mid)
        out.add(classify(e), "%s %r" % (mid, e))
        return False
    finally:
        s.close()


class Load:
    """CLIENT_THREADS threads, each opening a new session as soon as the
    last ended, until stop()."""

    def __init__(self, port, prefix):
        self.port = port
        self.prefix = prefix
        self.out = Outcome()
        self.stopping = threading.Event()
        self.n = 0
        self.nlock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True)
                        for _ in range(CLIENT_THREADS)]
        self.holds = []

    def next_id(self):
        with self.nlock:
            self.n += 1
            return "%s-%d" % (self.prefix, self.n)

    def run(self):
        deadline = time.monotonic() + 120
        while not self.stopping.is_set() and time.monotonic() < deadline:
            session(self.port, self.next_id(), self.out)

    def start(self):
        self.t0 = time.monotonic()
        for th in self.threads:
            th.start()

    def hold(self, n):
        """n more sessions that stop in DATA; returns their event."""
        ev = threading.Event()
        res = []
        ths = []
        for _ in range(n):
            mid = self.next_id() + "-held"
            th = threading.Thread(target=lambda m=mid: res.append(
                (m, session(self.port, m, self.out, hold=ev))), daemon=True)
            th.start()
            ths.append(th)
        self.holds.append((ev, ths, res))
        return ev

    def stop(self):
        self.stopping.set()
        for ev, _, _ in self.holds:
            ev.set()
        for th in self.threads:
            th.join(20)
        for _, ths, _ in self.holds:
            for th in ths:
                th.join(20)
        self.elapsed = time.monotonic() - self.t0

    def held_results(self):
        return [r for _, _, res in self.holds for r in res]


# --------------------------------------------------------------------------
# The sinks: smtp-sink dumps each message into a file

class DumpSink(t.SmtpSink):
    def __init__(self):
        self.dumpdir = t.tempdir("lbtest-dump-")
        os.chmod(self.dumpdir, 0o777)   # smtp-sink runs as nobody
        super().__init__(args=["-d", os.path.join(self.dumpdir, "m.")], backlog=4096)


def dumped_ids(sinks):
    ids = {}
    for s in sinks:
        for name in os.listdir(s.dumpdir):
            try:
                with open(os.path.join(s.dumpdir, name), "rb") as f:
                    data = f.read()
            except OSError:
                continue
            for m in re.finditer(rb"X-Test-Id: (\S+)", data):
                k = m.group(1).decode()
                ids[k] = ids.get(k, 0) + 1
    return ids


# --------------------------------------------------------------------------

class Setup:
    def __init__(self, name, grace="10s"):
        self.sinks = [DumpSink().start(timeout=15), DumpSink().start(timeout=15)]
        self.port = t.free_port(H)
        self.dir = t.tempdir("lbtest-restart-")
        os.chmod(self.dir, 0o755)
        self.stats_port = t.free_port(H)
        self.pidfile = os.path.join(self.dir, "lb.pid")
        self.sock = os.path.join(self.dir, "lb.sock")
        self.health = os.path.join(self.dir, "health.log")
        self.conf = os.path.join(self.dir, "lb.conf")
        cfg = t.make_config(
            "%s:%d" % (H, self.port),
            [("s%d" % i, s.address) for i, s in enumerate(self.sinks)],
            glob={"daemon": True, "grace": grace, "control_socket": self.sock,
                  "health_log": self.health, "state_file": os.path.join(self.dir, "state"),
                  "stats_listen": "%s:%d" % (H, self.stats_port)},
            be={"timeout_server": "30s"})
        with open(self.conf, "w") as f:
            f.write(cfg)
        self.defaults = os.path.join(self.dir, "default")
        with open(self.defaults, "w") as f:
            f.write("DAEMON=%s\nCONFIG=%s\nPIDFILE=%s\nSTOP_TIMEOUT=20\n"
                    % (t.LB_BIN, self.conf, self.pidfile))
        self.pids = set()
        t.add_cleanup(self.kill_all)

    def script(self, cmd, timeout=60):
        env = dict(os.environ, LB_DEFAULTS=self.defaults)
        t0 = time.monotonic()
        p = subprocess.run(["sh", SCRIPT, cmd], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        out = p.stdout.decode(errors="replace").strip()
        t.log("  $ load-balancer %s -> exit %d (%.2fs)%s" % (
            cmd, p.returncode, time.monotonic() - t0,
            "".join("\n  | " + x for x in out.splitlines())))
        self.pid()
        return p.returncode, out

    def pid(self):
        pid = t.read_pidfile(self.pidfile)
        if pid is not None:
            self.pids.add(pid)
        return pid

    def kill_all(self):
        t.stop_pids(self.pids, t.LB_BIN, 10)

    def wait_up(self):
        return t.wait_until(lambda: t.is_listening(H, self.port), 10)


def run_load(st, label, restart_fn, cycles, hold_n):
    load = Load(st.port, label)
    load.start()
    time.sleep(1.0)
    pids = [st.pid()]
    for i in range(cycles):
        ev = load.hold(hold_n) if hold_n else None
        time.sleep(0.3)          # the held sessions reach DATA
        rc = restart_fn()
        pids.append(st.pid())
        t.check(rc == 0, "%s %d: exit 0" % (label, i + 1), str(rc))
        time.sleep(0.2)
        if ev is not None:
            ev.set()             # the held sessions finish, on the old daemon
        time.sleep(0.7)
    time.sleep(0.5)
    load.stop()
    return load, pids


def report(label, load, sinks):
    out = load.out
    total = sum(out.counts.values())
    rate = total / load.elapsed
    ids = dumped_ids(sinks)
    acked = out.acked
    missing = [m for m in acked if ids.get(m, 0) == 0]
    twice = [m for m in acked if ids.get(m, 0) > 1]
    extra = [m for m in ids if m not in set(acked)]
    t.log("FIGURE %s: %d sessions in %.1f s (%.0f/s): %s; acknowledged %d, "
          "arrived %d (missing %d, twice %d); arrived without a 250 %d; dot sent, no answer %d"
          % (label, total, load.elapsed, rate, dict(sorted(out.counts.items())), len(acked),
             sum(ids.values()), len(missing), len(twice), len(extra), len(out.unacked)))
    for k, v in sorted(out.examples.items()):
        if k != "ok":
            t.log("  e.g. %s: %s" % (k, v))
    return total, rate, missing, twice


# --------------------------------------------------------------------------

def test_takeover():
    """-x by hand, with a session held in DATA across it."""
    st = Setup("x", grace="10s")
    rc, _ = st.script("start")
    t.require(rc == 0 and st.wait_up(), "the daemon starts")
    old = st.pid()
    out = Outcome()
    ev = threading.Event()
    held = []
    th = threading.Thread(target=lambda: held.append(session(st.port, "held-1", out, hold=ev)))
    th.start()
    time.sleep(0.5)
    p = subprocess.run([t.LB_BIN, "-x", "-f", st.conf, "-p", st.pidfile],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    new = st.pid()
    t.check(p.returncode == 0, "load-balancer -x: exit 0", p.stderr.decode(errors="replace"))
    t.check(new is not None and new != old, "the pidfile names the new daemon: %s -> %s" % (old, new))
    t.check(t.pid_alive(old), "the old daemon still runs while a session is in DATA")
    ok = session(st.port, "after-1", out)
    t.check(ok, "a new session is served (by the new daemon)", str(out.examples))
    rc, so, _ = t.run_lbctl(["-s", st.sock, "show", "info"])
    t.check(rc == 0 and ("pid: %d" % new) in so,
            "lbctl answers from the new daemon (pid %s)" % new, so[:300])
    try:
        import urllib.request
        body = urllib.request.urlopen("http://%s:%d/metrics" % (H, st.stats_port), timeout=5).read()
        t.check(b"load_balancer_" in body, "the status page answers on the same port (/metrics)")
    except Exception as e:
        t.check(False, "the status page answers on the same port", repr(e))
    ev.set()
    th.join(20)
    t.check(held == [True], "the session held in DATA across the takeover gets its 250", str(out.examples))
    t.check(t.wait_until(lambda: not t.pid_alive(old), 15), "the old daemon exits once it is done")
    ids = dumped_ids(st.sinks)
    t.check(ids.get("held-1") == 1 and ids.get("after-1") == 1,
            "both messages arrived once", str(ids))
    ev_lines = [e for e in t.read_health_log(st.health) if e.get("event") == "start"]
    t.check(len(ev_lines) == 2, "the health log has two start lines", str(ev_lines))
    # Nothing to take over: exit 3, the running daemon untouched.
    bad = os.path.join(st.dir, "other.conf")
    with open(bad, "w") as f:
        f.write(open(st.conf).read().replace(st.sock, os.path.join(st.dir, "none.sock")))
    p = subprocess.run([t.LB_BIN, "-x", "-F", "-f", bad, "-p", os.path.join(st.dir, "o.pid")],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    err = p.stderr.decode(errors="replace")
    t.check(p.returncode == 3 and "no daemon answers on the control socket" in err,
            "-x with no daemon on the control socket: exit 3, says why", "%d %s" % (p.returncode, err))
    t.check(t.pid_alive(new) and session(st.port, "after-2", out), "the running daemon still serves")
    # A takeover that fails after receiving the sockets and binding its
    # control socket (a health log in a missing directory): the old
    # daemon keeps serving, and its control socket file is still there.
    broken = os.path.join(st.dir, "broken.conf")
    with open(broken, "w") as f:
        f.write(open(st.conf).read().replace(st.health, "/nonexistent-lbtest/dir/health.log"))
    p = subprocess.run([t.LB_BIN, "-x", "-F", "-f", broken, "-p", st.pidfile],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    err = p.stderr.decode(errors="replace")
    t.check(p.returncode != 0, "a takeover whose start fails: non-zero exit", "%d %s" % (p.returncode, err[-500:]))
    t.check(t.pid_alive(new) and st.pid() == new, "the old daemon keeps running and its pidfile")
    t.check(session(st.port, "after-3", out), "and it still serves", str(out.examples))
    rc, so, _ = t.run_lbctl(["-s", st.sock, "show", "servers"])
    t.check(rc == 0, "lbctl still reaches it", so[:200])
    rc, _ = st.script("stop")
    t.check(rc == 0 and t.wait_until(lambda: not t.pid_alive(new), 15), "stop")


def test_restart_as_user():
    """With global.user, both daemons run as nobody after their start: the
    old one cannot remove the pidfile (a root-owned directory), the new
    one opened it before dropping privileges and writes its pid there."""
    st = Setup("user", grace="10s")
    with open(st.conf) as f:
        text = f.read()
    with open(st.conf, "w") as f:
        f.write(text.replace("global = {", 'global = { user = "nobody";', 1))
    os.chmod(st.health, 0o666) if os.path.exists(st.health) else None
    rc, _ = st.script("start")
    t.require(rc == 0 and st.wait_up(), "the daemon starts (user nobody)")
    old = st.pid()
    rc, out = st.script("restart")
    new = st.pid()
    t.check(rc == 0 and new is not None and new != old and t.pid_alive(new),
            "restart: the pidfile names the new daemon, which runs", "%s -> %s %s" % (old, new, out))
    t.check(t.wait_until(lambda: not t.pid_alive(old), 15), "the old daemon exits")
    rc, out = st.script("status")
    t.check(rc == 0 and str(new) in out, "status: running, with the new pid", out)
    t.check(session(st.port, "user-1", Outcome()), "a session is served")
    rc, _ = st.script("stop")
    t.check(rc == 0 and t.wait_until(lambda: not t.pid_alive(new), 15), "stop stops it")


def test_restart_under_load():
    st = Setup("load", grace="10s")
    rc, _ = st.script("start")
    t.require(rc == 0 and st.wait_up(), "the daemon starts")
    load, pids = run_load(st, "takeover", lambda: st.script("restart")[0], RESTARTS, 3)
    total, rate, missing, twice = report("restart (takeover) x%d" % RESTARTS, load, st.sinks)
    c = load.out.counts
    t.check(len(set(pids)) == RESTARTS + 1, "%d restarts, %d daemons: %s" % (RESTARTS, RESTARTS + 1, pids))
    t.check(rate >= MIN_RATE, "the clients opened at least %d sessions a second" % MIN_RATE,
            "%.0f/s" % rate)
    bad = {k: v for k, v in c.items() if k != "ok"}
    t.check(not bad, "no connection refused, reset, closed or failed during the restarts",
            "%s %s" % (bad, {k: load.out.examples[k] for k in bad}))
    t.check(not missing and not twice, "every message acknowledged with 250 arrived exactly once",
            "missing %s, twice %s" % (missing[:5], twice[:5]))
    held = load.held_results()
    t.check(len(held) == 3 * RESTARTS and all(ok for _, ok in held),
            "the %d sessions held in DATA across a restart all got their 250" % (3 * RESTARTS),
            str(held))
    rc, _ = st.script("stop")


def test_old_restart():
    """For comparison: stop, then start (what restart did before)."""
    st = Setup("old", grace="10s")
    rc, _ = st.script("start")
    t.require(rc == 0 and st.wait_up(), "the daemon starts")

    def stop_start():
        a, _ = st.script("stop")
        b, _ = st.script("start")
        return a or b
    load, pids = run_load(st, "stop+start", stop_start, OLD_RESTARTS, 0)
    total, rate, missing, twice = report("stop then start x%d" % OLD_RESTARTS, load, st.sinks)
    refused = load.out.counts.get("refused", 0)
    t.check(refused > 0, "the same client loop sees refused connections when the daemon stops and "
            "starts (so it would see them during a restart)", str(load.out.counts))
    t.check(not missing and not twice, "even so, no acknowledged message is lost or doubled",
            "missing %s, twice %s" % (missing[:5], twice[:5]))
    st.script("stop")


if __name__ == "__main__":
    if not os.access(SCRIPT, os.X_OK) and not os.path.exists(SCRIPT):
        t.log("FAIL: %s is missing (make builds it)" % SCRIPT)
        sys.exit(1)
    t.main([test_takeover, test_restart_as_user, test_restart_under_load, test_old_restart],
           timeout=240)
