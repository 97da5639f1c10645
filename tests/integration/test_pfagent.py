#!/usr/bin/env python3
"""The Postfix queue agent lb-postfix-agent (lb-postfix-agent(8)), against a
private, real Postfix instance (tests/integration/postfix.py) whose mail to
the outside goes to a relay host where nothing listens, so that every
message it accepts stays in its deferred queue.

test_empty_queue: with an empty queue the agent says "ready 100%" in inetd
  mode (stdout; and over a socket with systemd-socket-activate --inetd when
  installed) and in -l mode; without -q it finds the queue through
  `postconf -h queue_directory` (MAIL_CONFIG).
test_deferred_weights: messages submitted to Postfix's smtpd one by one
  pile up in the deferred queue; with LOW=2 HIGH=12 DRAIN=20 FLOOR=10 the
  answers follow the depth: 100 % up to LOW, falling past LOW, 10 % past
  HIGH, drain past DRAIN (the sequence is printed as FIGURE lines).
test_balancer_follows: a balancer with two smtp-sinks A and B (weight 100
  each; B has agent_port = the agent's port, agent interval 300ms): the
  share of B follows the queue: about 50 % empty, weight/(100+weight) with
  the queue between LOW and HIGH, 0 new sessions and DRAIN in `lbctl show
  servers` past DRAIN, and back to about 50 % once the queue is emptied
  (postsuper -d ALL): the agent's "ready" undoes its own drain.
test_robustness: a missing queue directory gives no answer (the
  connection closes) and the agent keeps serving, logging the reason once,
  and answers again when the directory appears; 200 connections in a loop
  are all answered within a bound; a client that connects, says nothing
  and never closes holds the next one up for at most ~0.5 s; bytes the
  peer sent (agent.send) are read, so the close is not a reset; SIGTERM
  exits 0 and removes the pidfile.
test_initscript: init.d/lb-postfix-agent.in (paths filled in here as make
  does): start (as the postfix user), status, a second start, the answer,
  restart, stop, status; a bad option is reported as a failed start.

The agent is lb-postfix-agent beside LB_BIN (PFA_BIN overrides)."""

import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

from postfix import H, PFX_NAME, Postfix  # noqa: E402  (the private Postfix instance)

AGENT = os.environ.get("PFA_BIN") or os.path.join(os.path.dirname(os.path.abspath(t.LB_BIN)),
                                                    "lb-postfix-agent")
SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")
POSTSUPER = shutil.which("postsuper") or "/usr/sbin/postsuper"
COUNTED = ("incoming", "active", "deferred")    # the agent's default queues
LOW, HIGH, DRAIN, FLOOR = 2, 12, 20, 10
MARKS = ["-L", str(LOW), "-H", str(HIGH), "-D", str(DRAIN), "-m", str(FLOOR)]


def expected(depth):
    """The answer lb-postfix-agent(8), ANSWERS promises for depth messages
    (LOW..FLOOR above)."""
    if depth >= DRAIN:
        return "drain"
    if depth <= LOW:
        return "ready 100%"
    if depth >= HIGH:
        return "ready %d%%" % FLOOR
    fall = -(-(100 - FLOOR) * (depth - LOW) // (HIGH - LOW))     # rounded up
    return "ready %d%%" % max(FLOOR, 100 - fall)


def pct_of(answer):
    """75 for "ready 75%", 0 for "drain", None for anything else."""
    if answer == "drain":
        return 0
    if answer.startswith("ready ") and answer.endswith("%"):
        return int(answer[6:-1])
    return None


# --------------------------------------------------------------------------
# The agent


def require_agent():
    t.require(os.access(AGENT, os.X_OK), "%s is built" % AGENT)


def ask(port, send=b"", timeout=3.0, shut=False, host=H):
    """Connect to the agent, send `send` (shut: then SHUT_WR), read to EOF.
    Returns (bytes, how): how is "eof", "reset" or "timeout"."""
    s = socket.create_connection((host, port), timeout=timeout)
    got = bytearray()
    how = "eof"
    try:
        if send:
            s.sendall(send)
        if shut:
            s.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                how = "timeout"
                break
            s.settimeout(left)
            try:
                b = s.recv(4096)
            except socket.timeout:
                how = "timeout"
                break
            except ConnectionResetError:
                how = "reset"
                break
            if not b:
                break
            got += b
    finally:
        s.close()
    return bytes(got), how


class Agent:
    """lb-postfix-agent -l HOST:PORT ARGS..., stderr to a file."""

    def __init__(self, args, env=None, host=H):
        self.host = host
        self.port = t.free_port(host)
        self.dir = t.tempdir("lbtest-pfa-")
        self.errpath = os.path.join(self.dir, "agent.stderr")
        self.args = ["-l", "%s" % t.addr(host, self.port)] + list(args)
        self.env = env
        self.proc = None

    def start(self):
        self._err = open(self.errpath, "wb")
        self.proc = subprocess.Popen([AGENT] + self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._err, env=self.env)
        t.register_proc(self.proc, "lb-postfix-agent")
        ok = t.wait_until(lambda: self.proc.poll() is not None or t.is_listening(self.host, self.port), 5)
        if self.proc.poll() is not None or not ok:
            raise t.DaemonError("lb-postfix-agent did not listen: status %s, stderr %s"
                                % (self.proc.poll(), self.stderr()))
        return self

    def ask(self, **kw):
        return ask(self.port, host=self.host, **kw)

    def answer(self):
        data, how = self.ask()
        return data.decode(errors="replace").rstrip("\n") if how == "eof" else "(%s)" % how

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self):
        with open(self.errpath, "rb") as f:      # made by start()
            return f.read().decode(errors="replace")

    def stop(self):
        """SIGTERM; checks that no sanitizer spoke (a sanitized build)."""
        if self.proc is None:
            return None
        rc = t.kill_proc(self.proc, signal.SIGTERM, 5)
        self._err.close()
        m = re.search(r"Sanitizer|runtime error:", self.stderr())
        t.check(m is None, "agent: no sanitizer report", self.stderr()[-2000:] if m else "")
        return rc


def run_once(args, env=None, timeout=10):
    """inetd mode on stdout: (returncode, stdout, stderr)."""
    p = subprocess.run([AGENT] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


# --------------------------------------------------------------------------
# The private Postfix, its queue


def deferring_postfix():
    """A private Postfix (one plain smtpd, pf.p_plain) that relays every
    message to [127.0.0.254]:PORT where nothing listens: what it accepts
    stays deferred."""
    ca = t.TestCA()
    crt, key = ca.leaf(PFX_NAME)
    pf = Postfix(crt, key, services=[("pfxplain", H, ["smtpd_tls_security_level=none"])])
    dead = t.free_port("127.0.0.254")
    main_cf = os.path.join(pf.etc, "main.cf")
    with open(main_cf) as f:
        text = f.read()
    text = text.replace("default_transport = discard", "default_transport = smtp")
    text = text.replace("relay_transport = discard", "relay_transport = smtp")
    with open(main_cf, "w") as f:
        f.write(text + "relayhost = [127.0.0.254]:%d\nsmtp_tls_security_level = none\n"
                "smtp_connect_timeout = 2s\n" % dead)
    return pf


def with_postfix(run, deferring=True):
    """Start a private Postfix, run(pf), stop it; its log on failure."""
    if deferring:
        pf = deferring_postfix()
    else:
        ca = t.TestCA()
        crt, key = ca.leaf(PFX_NAME)
        pf = Postfix(crt, key, services=[("pfxplain", H, ["smtpd_tls_security_level=none"])])
    nfail = len(t._failures)
    try:
        pf.start()
        run(pf)
    finally:
        pf.stop()
        if len(t._failures) > nfail:
            t.log("  --- postfix log (last 30 lines) ---")
            for ln in pf.text().splitlines()[-30:]:
                t.log("  | " + ln)


def count_files(top):
    """Regular files below top (symbolic links not followed)."""
    n = 0
    for _, _, files in os.walk(top):
        n += len(files)
    return n


def depth(pf, queues=COUNTED):
    return sum(count_files(os.path.join(pf.spool, q)) for q in queues)


def submit(pf, n):
    """n messages to Postfix's smtpd, one session; returns how many were
    accepted (250)."""
    ok = 0
    sm = smtplib.SMTP(H, pf.p_plain, local_hostname="client.lbtest", timeout=20)
    try:
        for _ in range(n):
            refused = sm.sendmail("sender@lbtest.example", ["rcpt@example.com"],
                                  "Subject: pfagent\r\nFrom: sender@lbtest.example\r\n"
                                  "To: rcpt@example.com\r\n\r\nstays deferred\r\n")
            ok += not refused
        sm.quit()
    finally:
        sm.close()
    return ok


def wait_deferred(pf, total, timeout=30):
    """Wait until total messages are in the deferred queue and none in
    incoming or active; True when so."""
    return t.wait_until(lambda: depth(pf, ("deferred",)) == total and
                        depth(pf, ("incoming", "active")) == 0, timeout, 0.05)


# --------------------------------------------------------------------------
# 1. Empty queue


def test_empty_queue():
    require_agent()
    with_postfix(run_empty, deferring=False)


def run_empty(pf):
    t.require(depth(pf) == 0, "the private Postfix's queue is empty")
    rc, out, err = run_once(["-q", pf.spool])
    t.check(rc == 0 and out == "ready 100%\n" and err == "",
            "inetd mode (stdout): 'ready 100%', exit 0", repr((rc, out, err)))
    if SOCKET_ACTIVATE:
        port = t.free_port(H)
        p = subprocess.Popen([SOCKET_ACTIVATE, "-l", "%s:%d" % (H, port), "--accept", "--inetd",
                              AGENT, "-q", pf.spool], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t.register_proc(p, "systemd-socket-activate")
        t.wait_until(lambda: t.is_listening(H, port), 5)
        data, how = ask(port, send=b"agent.send line\n")
        t.check(data == b"ready 100%\n" and how == "eof",
                "inetd mode over a socket (systemd-socket-activate --inetd, a line sent): "
                "'ready 100%' then EOF", repr((data, how)))
        t.kill_proc(p)
    else:
        t.log("  NOTE: systemd-socket-activate is not installed: inetd mode on stdout only")
    a = Agent(["-q", pf.spool]).start()
    ans = [a.answer() for _ in range(3)]
    t.check(ans == ["ready 100%"] * 3, "-l mode: 'ready 100%' (3 connections)", str(ans))
    t.check(a.stop() == 0, "-l mode: SIGTERM, exit 0")
    # Without -q: postconf -h queue_directory, which follows MAIL_CONFIG.
    env = dict(os.environ, MAIL_CONFIG=pf.etc)
    rc, out, err = run_once([], env=env)
    t.check(rc == 0 and out == "ready 100%\n", "without -q (postconf): 'ready 100%'", repr((rc, out, err)))
    a = Agent([], env=env).start()
    t.check(a.answer() == "ready 100%", "-l without -q: 'ready 100%'")
    t.check("queue %s (incoming,active,deferred)" % pf.spool in a.stderr(),
            "without -q the queue directory is postconf's queue_directory", a.stderr().strip())
    a.stop()


# --------------------------------------------------------------------------
# 2. Deferred messages, the answers against the depth


def test_deferred_weights():
    require_agent()
    with_postfix(run_deferred)


def run_deferred(pf):
    a = Agent(["-q", pf.spool, "-c", "0"] + MARKS).start()
    seq = [(0, a.answer())]
    total = 0
    t0 = time.monotonic()
    while total < DRAIN + 2:
        n = submit(pf, 1)
        t.require(n == 1, "Postfix accepts message %d" % (total + 1))
        total += 1
        t.require(wait_deferred(pf, total), "message %d is deferred (relay host unreachable)" % total,
                  "deferred %d, incoming+active %d" % (depth(pf, ("deferred",)),
                                                       depth(pf, ("incoming", "active"))))
        seq.append((total, a.answer()))
    t.log("  FIGURE %d messages submitted and deferred in %.1fs" % (total, time.monotonic() - t0))
    t.log("  FIGURE depth -> answer (LOW=%d HIGH=%d DRAIN=%d FLOOR=%d): %s"
          % (LOW, HIGH, DRAIN, FLOOR, ", ".join("%d:%s" % (n, s) for n, s in seq)))
    bad = [(n, s, expected(n)) for n, s in seq if s != expected(n)]
    t.check(not bad, "every answer is the man page's for its depth", str(bad))
    t.check(all(s == "ready 100%" for n, s in seq if n <= LOW), "up to LOW: ready 100%")
    mid = [pct_of(s) for n, s in seq if LOW < n < HIGH]
    t.check(mid and all(x is not None and x < 100 for x in mid) and
            all(x > y for x, y in zip(mid, mid[1:])),
            "past LOW the weight falls with every message", str(mid))
    t.check(all(s == "ready %d%%" % FLOOR for n, s in seq if HIGH <= n < DRAIN),
            "from HIGH to DRAIN: ready %d%% (the floor)" % FLOOR)
    t.check(all(s == "drain" for n, s in seq if n >= DRAIN), "from DRAIN on: drain")
    # Only the counted queues count: a held message (postsuper -h) is not.
    r = subprocess.run([POSTSUPER, "-c", pf.etc, "-h", "ALL", "deferred"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    t.wait_until(lambda: depth(pf, ("hold",)) == total, 10)
    held = a.answer()
    t.check(depth(pf, ("hold",)) == total and held == "ready 100%",
            "messages put on hold (postsuper -h) are not counted: ready 100%",
            "%s; hold %d; %s" % (held, depth(pf, ("hold",)), r.stdout.decode(errors="replace").strip()))
    a.stop()
    a2 = Agent(["-q", pf.spool, "-c", "0", "-Q", "hold"] + MARKS).start()
    t.check(a2.answer() == "drain", "-Q hold counts them: drain", a2.answer())
    a2.stop()
    errs = [ln for ln in pf.text().splitlines() if "fatal" in ln or "panic" in ln]
    t.check(not errs, "no fatal/panic in Postfix's log", str(errs[:3]))


# --------------------------------------------------------------------------
# 3. The balancer follows the agent


def servers_table(d):
    rc, out, err = d.ctl("show servers")
    return {r.get("SERVER"): r for r in t.parse_table(out)}, out


def first_int(text):
    digits = ""
    for ch in text or "":
        if ch.isdigit():
            digits += ch
        elif digits:
            break
    return int(digits) if digits else None


def run_sessions(d, fp, n):
    """n sessions in sequence; returns {server: count} from the session log."""
    before = len(d.sessions())
    for _ in range(n):
        t.quick_session(H, fp)
    lines = d.wait_sessions(before + n, 10)[before:]
    out = {}
    for s in lines:
        out[s.get("server")] = out.get(s.get("server"), 0) + 1
    return out


def test_balancer_follows():
    require_agent()
    with_postfix(run_balancer)


def run_balancer(pf):
    sa, sb = t.SmtpSink().start(), t.SmtpSink().start()
    a = Agent(["-q", pf.spool, "-c", "100"] + MARKS).start()
    fp = t.free_port()
    conf = t.make_config(
        "%s:%d" % (H, fp),
        [("A", sa.address, {"weight": 100}), ("B", sb.address, {"weight": 100, "agent_port": a.port})],
        fe={"timeout_client": "30s"},
        be={"agent": {"interval": "300ms", "timeout": "1s"},
            "health_check": {"type": "smtp", "interval": "1s"}})
    d = t.Daemon(conf, [(H, fp)], name="pfagent").start()

    def b_row():
        return servers_table(d)[0].get("B", {})

    def wait_b(label, pred):
        """Wait until B's row of show servers satisfies pred; log the table."""
        ok = t.wait_until(lambda: pred(b_row()), 5, 0.1)
        rows, out = servers_table(d)
        t.log("  show servers (%s):\n%s" % (label, out))
        t.check(ok, "%s: lbctl show servers: B is %s" % (label, pred.__doc__), str(rows.get("B")))

    def share_of_b(label, n, want):
        """n sessions; B's share (percent) within 5 points of want."""
        c = run_sessions(d, fp, n)
        share = 100.0 * c.get("B", 0) / n
        t.log("  FIGURE %s (agent: %s): %d sessions, A %d, B %d: B's share %.1f%% (expected %.1f%%)"
              % (label, a.answer(), n, c.get("A", 0), c.get("B", 0), share, want))
        t.check(abs(share - want) <= 5, "%s: B's share is %.1f%% (+-5 points)" % (label, want),
                "%.1f%%" % share)
        return c

    def agent_event(what, **kw):
        ev = [e for e in d.health_events() if e.get("server") == "B" and e.get("by") == "agent"]
        t.check(any(e.get("event") == what and all(e.get(k) == v for k, v in kw.items()) for e in ev),
                "health log: event=%s %sby=agent for B" % (what, "".join("%s=%s " % i for i in kw.items())),
                str([e["_line"] for e in ev]))

    def says(want, k):
        """The agent's answer becomes want (its count is cached 100 ms)."""
        t.check(t.wait_until(lambda: a.answer() == want, 3, 0.05),
                "the agent says %s for %d messages" % (want, k), a.answer())

    def at_full(row):
        """UP with weight 100"""
        return row.get("STATE") == "UP" and first_int(row.get("WEIGHT")) == 100

    def asked_full(row):
        """UP with weight 100, the agent's answer '100% ready' shown"""
        return at_full(row) and "agent: 100% ready" in row.get("LAST CHECK", "")

    # Empty queue: ready 100%.
    wait_b("empty queue", asked_full)
    share_of_b("empty queue", 200, 50.0)

    # Between LOW and HIGH.
    k = 7
    t.require(submit(pf, k) == k and wait_deferred(pf, k), "%d messages deferred" % k)
    want = expected(k)
    w = pct_of(want)
    says(want, k)

    def at_w(row):
        return first_int(row.get("WEIGHT")) == w
    at_w.__doc__ = "at weight %d" % w
    wait_b("%d messages" % k, at_w)
    share_of_b("%d messages, weight %d/(100+%d)" % (k, w, w), 310, 100.0 * w / (100 + w))
    agent_event("weight", weight=w)

    # Past DRAIN.
    t.require(submit(pf, DRAIN - k) == DRAIN - k and wait_deferred(pf, DRAIN), "%d messages deferred" % DRAIN)
    says("drain", DRAIN)

    def drained(row):
        """DRAIN"""
        return row.get("STATE", "").startswith("DRAIN")
    wait_b("%d messages" % DRAIN, drained)
    c = share_of_b("%d messages, drain" % DRAIN, 60, 0.0)
    t.check(c.get("B", 0) == 0 and c.get("A", 0) == 60, "past DRAIN B gets 0 new sessions", str(c))
    agent_event("drain")

    # The queue emptied: "ready 100%" undoes the agent's own drain.
    r = subprocess.run([POSTSUPER, "-c", pf.etc, "-d", "ALL"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    t.require(t.wait_until(lambda: depth(pf) == 0, 10), "postsuper -d ALL empties the queue",
              r.stdout.decode(errors="replace"))
    wait_b("queue emptied", at_full)
    share_of_b("queue emptied", 100, 50.0)
    agent_event("ready")
    last = b_row().get("LAST CHECK", "")
    m = re.search(r"agent: .*?(\d+) failed", last)
    t.check(m is not None and m.group(1) == "0", "no failed agent check in all that time", last)
    for e in d.health_events():
        if e.get("server") == "B":
            t.log("  | " + e["_line"])
    d.stop()
    t.check(a.stop() == 0, "the agent exits 0 on SIGTERM")


# --------------------------------------------------------------------------
# 4. Robustness


def fake_queue():
    """An empty queue directory of Postfix's shape."""
    top = t.tempdir("lbtest-pfa-queue-")
    for q in COUNTED + ("hold", "maildrop"):
        os.mkdir(os.path.join(top, q))
    return top


def test_robustness():
    require_agent()
    top = t.tempdir("lbtest-pfa-")
    missing = os.path.join(top, "spool")
    pidfile = os.path.join(top, "agent.pid")
    a = Agent(["-q", missing, "-c", "0", "-p", pidfile]).start()
    t.check(open(pidfile).read() == "%d\n" % a.proc.pid, "-p writes the pid file")
    res = [a.ask() for _ in range(3)]
    t.check(all(r == (b"", "eof") for r in res), "missing queue directory: no answer, the connection closes",
            str(res))
    t.check(a.alive(), "the agent keeps running")
    msgs = [ln for ln in a.stderr().splitlines() if "cannot read the queue" in ln]
    t.check(len(msgs) == 1 and "No such file or directory" in msgs[0],
            "the reason is logged once (three failed connections)", str(msgs))
    # The directory appears: answers again.
    os.mkdir(missing)
    for q in COUNTED:
        os.mkdir(os.path.join(missing, q))
    t.check(a.answer() == "ready 100%", "once the directory exists: ready 100%")
    t.check("readable again" in a.stderr(), "the recovery is logged", a.stderr().strip()[-200:])
    # A queue directory it may not read (permission): as the postfix user.
    os.makedirs(os.path.join(missing, "deferred", "A"))
    open(os.path.join(missing, "deferred", "A", "MSGID"), "w").close()
    os.symlink("/etc", os.path.join(missing, "deferred", "link"))
    t.check(a.answer() == "ready 100%", "a message and a symbolic link: still 100% (LOW 100)")
    rc, out, err = run_once(["-q", missing, "-L", "0", "-H", "1", "-D", "2"])
    t.check(rc == 0 and out == "ready 10%\n",
            "one message, LOW 0 HIGH 1: ready 10% (the symbolic link is not followed)", repr((rc, out, err)))

    # 200 connections in a loop, one in five with an agent.send line.
    t0 = time.monotonic()
    res = [a.ask(send=b"hello agent\n" if i % 5 == 0 else b"", timeout=3) for i in range(200)]
    el = time.monotonic() - t0
    good = sum(1 for r in res if r == (b"ready 100%\n", "eof"))
    t.log("  FIGURE 200 connections in %.2fs (%.1f ms each)" % (el, el * 5))
    t.check(good == 200, "200 connections in a loop: all answered", "%d answered; %s" % (
        good, [r for r in res if r != (b"ready 100%\n", "eof")][:3]))
    t.check(el < 10, "... within 10 s", "%.2fs" % el)

    # A silent client that never closes.
    silent = socket.create_connection((H, a.port), timeout=5)
    time.sleep(0.05)
    t1 = time.monotonic()
    data, how = a.ask(timeout=3)
    waited = time.monotonic() - t1
    t.log("  FIGURE the client after a silent one waited %.3fs" % waited)
    t.check(data == b"ready 100%\n" and how == "eof" and waited < 0.8,
            "a silent client that never closes holds the next one up for at most ~0.5 s",
            "%.3fs %r" % (waited, (data, how)))
    silent.settimeout(2)
    got = b""
    try:
        while True:
            b = silent.recv(100)
            if not b:
                break
            got += b
    except OSError as e:
        got += (" (%s)" % e).encode()
    silent.close()
    t.check(got == b"ready 100%\n", "the silent client got its answer and EOF", repr(got))

    # Bytes sent and the write side shut at once: read by the agent, so
    # the close is a FIN, not a reset.
    res = [a.ask(send=b"x" * 100 + b"\n", shut=True) for _ in range(20)]
    t.check(all(r == (b"ready 100%\n", "eof") for r in res),
            "a peer that sent a line (agent.send) gets the answer and EOF, never a reset", str(res[:3]))
    t.check(a.alive(), "the agent is still running")
    rc = a.stop()
    t.check(rc == 0, "SIGTERM: exit 0", str(rc))
    t.check(not os.path.exists(pidfile), "the pid file is removed at exit")

    # Usage errors.
    for args in (["-L", "10", "-H", "10"], ["-H", "100", "-D", "50"], ["-m", "0"], ["-m", "101"],
                 ["-Q", "bounce"], ["-Q", ""], ["-L", "x"], ["-z"], ["-p", pidfile], ["extra"]):
        rc, out, err = run_once(args)
        t.check(rc == 2 and out == "" and "usage:" in err, "usage error exit 2: %s" % " ".join(args),
                repr((rc, err.splitlines()[:1])))
    rc, out, err = run_once(["-V"])
    t.check(rc == 0 and out.startswith("lb-postfix-agent ") and len(out.split()) == 2, "-V", out.strip())
    rc, out, err = run_once(["-q", missing + "-nope"])
    t.check(rc == 1 and out == "" and "No such file or directory" in err,
            "inetd mode, missing queue directory: no answer, exit 1, the reason on stderr",
            repr((rc, out, err)))
    rc, out, err = run_once(["-l", "[nonsense]:1"])
    t.check(rc == 1 and "nonsense" in err, "-l with a bad address: exit 1 with the reason", err.strip())
    if t.have_ipv6():
        a6 = Agent(["-q", fake_queue()], host="::1").start()
        data, how = a6.ask()
        t.check((data, how) == (b"ready 100%\n", "eof"), "-l [::1]:PORT answers over IPv6", repr((data, how)))
        a6.stop()


# --------------------------------------------------------------------------
# 5. The init script


def test_initscript():
    require_agent()
    if not shutil.which("start-stop-daemon"):
        raise t.Skip("start-stop-daemon is not installed")
    if os.geteuid() != 0:
        raise t.Skip("the init script runs the agent as postfix: needs root")
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        raise t.Skip("no postfix user")
    with_postfix(run_initscript, deferring=False)


def run_initscript(pf):
    top = t.tempdir("lbtest-pfa-init-")
    os.chmod(top, 0o755)
    script = os.path.join(top, "lb-postfix-agent")
    with open(os.path.join(t.SRCDIR, "init.d", "lb-postfix-agent.in")) as f:
        text = f.read().replace("@sbindir@", os.path.dirname(AGENT))
    with open(script, "w") as f:
        f.write(text)
    os.chmod(script, 0o755)
    port = t.free_port(H)
    pidfile = os.path.join(top, "agent.pid")
    defaults = os.path.join(top, "defaults")

    def set_opts(opts):
        with open(defaults, "w") as f:
            f.write('LB_POSTFIX_AGENT_OPTS="%s"\nPIDFILE=%s\nSTOP_TIMEOUT=5\n' % (opts, pidfile))

    env = dict(os.environ, LB_POSTFIX_AGENT_DEFAULTS=defaults, SYSTEMCTL_SKIP_REDIRECT="1")

    def run(cmd):
        p = subprocess.run(["sh", script, cmd], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        out = p.stdout.decode(errors="replace").strip()
        t.log("  $ lb-postfix-agent %s -> %d: %s" % (cmd, p.returncode, out))
        return p.returncode, out

    def pid():
        try:
            return int(open(pidfile).read().strip())
        except (OSError, ValueError):
            return None

    set_opts("-l %s:%d -q %s -c 0" % (H, port, pf.spool))
    try:
        rc, out = run("start")
        t.check(rc == 0 and pid() is not None, "start: exit 0, pidfile written", out)
        p1 = pid()
        t.check(t.wait_until(lambda: t.is_listening(H, port), 5), "the agent listens")
        try:
            st = os.stat("/proc/%d" % p1)
            user = pwd.getpwuid(st.st_uid).pw_name
        except (OSError, TypeError, KeyError):
            user = None
        t.check(user == "postfix", "it runs as the postfix user", str(user))
        data, how = ask(port)
        t.check(data == b"ready 100%\n", "as postfix it reads the queue: ready 100%", repr((data, how)))
        rc, out = run("status")
        t.check(rc == 0 and str(p1) in out, "status: 0, running with its pid", out)
        rc, out = run("start")
        t.check(rc == 0 and pid() == p1, "a second start: 0, the same process", out)
        rc, out = run("restart")
        t.check(rc == 0 and pid() not in (None, p1), "restart: 0, a new process", out)
        t.wait_until(lambda: t.is_listening(H, port), 5)
        t.check(ask(port)[0] == b"ready 100%\n", "answers after the restart")
        rc, out = run("stop")
        t.check(rc == 0 and not os.path.exists(pidfile), "stop: 0, the pidfile removed", out)
        rc, out = run("status")
        t.check(rc == 3, "status after stop: 3", out)
        set_opts("-l %s:%d -q %s -z" % (H, port, pf.spool))
        rc, out = run("start")
        t.check(rc == 1 and "did not start" in out and not os.path.exists(pidfile),
                "start with a bad option: exit 1, said, no pidfile left", out)
        set_opts("-q %s" % pf.spool)
        rc, out = run("start")
        t.check(rc == 6, "start without -l: exit 6", out)
        rc, out = run("bogus")
        t.check(rc == 2, "an unknown command: exit 2", out)
    finally:
        set_opts("-l %s:%d" % (H, port))
        run("stop")


ALL = [test_empty_queue, test_deferred_weights, test_balancer_follows, test_robustness, test_initscript]

if __name__ == "__main__":
    t.main([f for f in ALL if not sys.argv[1:] or f.__name__ in sys.argv[1:]], timeout=240)
