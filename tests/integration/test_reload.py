#!/usr/bin/env python3
"""Reload and graceful stop (load-balancer(8), SIGNALS; issue 5).

- Reload under load: a Python SMTP client sends messages continuously (each
  with a unique body, so every delivery is checked one by one) while the
  configuration file is rewritten and SIGHUP sent ten times: weights changed,
  a server added, one removed, a timeout changed, once an invalid file (the
  previous configuration keeps running), then the fix, a no-op, weight 0,
  health checks added.  Zero failed sessions, every message delivered exactly
  once, the new server gets traffic, the removed one no new session.
- A session in the middle of DATA while its server is removed by a reload
  finishes on that server.
- lbctl reload: applies a new file (frontends added/removed, a kept listener
  keeps its socket, kept servers keep their health and operator state,
  timeouts apply); a broken file is refused with an error naming it.
- SIGTERM: a session in DATA completes, new connections are refused, exit 0
  when it ends; a session that does not end is closed at global.grace.
"""

import collections
import errno
import hashlib
import os
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"
# A session that started (client side) this long before a reload was
# signalled is counted under the previous configuration, not the next one.
MARGIN = 0.2


# --------------------------------------------------------------------------
# Helpers


class StderrTail:
    """Incremental reader of the daemon's stderr file: new complete lines."""

    def __init__(self, d):
        self.path = d.errpath
        self.off = 0
        self.part = b""

    def skip(self):
        """Forget everything written so far."""
        self.new_lines()

    def new_lines(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                data = f.read()
        except OSError:
            return []
        self.off += len(data)
        data = self.part + data
        lines = data.split(b"\n")
        self.part = lines.pop()
        return [ln.decode(errors="replace") for ln in lines]


RELOADED_RE = re.compile(r"\breloaded\b", re.I)
RELOAD_RE = re.compile(r"reload", re.I)
FAILED_RE = re.compile(r"fail|invalid|not reloaded|previous|\b[1-9]\d* errors?\b", re.I)
COUNTS_RE = re.compile(r"(\d+) frontends?, (\d+) backends?, (\d+) servers?")


def wait_reload(tail, timeout=2.0):
    """Wait for the line that ends a reload ("reloaded ..." or "reload
    failed ...").  Returns (kind, line, all new lines, time it was seen)
    with kind "ok", "failed" or None (nothing within timeout).  Lines
    written in the same burst after it are collected too, so that the next
    reload starts clean."""
    seen = []
    deadline = time.monotonic() + timeout
    kind = line = None
    while kind is None:
        for ln in tail.new_lines():
            seen.append(ln)
            if kind is None and RELOAD_RE.search(ln) and FAILED_RE.search(ln):
                kind, line = "failed", ln
            elif kind is None and RELOADED_RE.search(ln):
                kind, line = "ok", ln
        now = time.monotonic()
        if kind is None and now >= deadline:
            return None, None, seen, now
        if kind is None:
            time.sleep(0.01)
    time.sleep(0.1)
    seen += tail.new_lines()
    return kind, line, seen, now


def write_conf(d, text):
    """Replace the daemon's configuration file atomically (as an editor or
    a configuration manager does), so a reload never reads half a file."""
    tmp = d.conf + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, d.conf)


def run_paths():
    """control_socket and health_log kept identical across every version
    of a test's configuration file."""
    run = t.tempdir("lbtest-run-")
    return {"control_socket": os.path.join(run, "lb.sock"),
            "health_log": os.path.join(run, "health.log")}


def listen_inode(port):
    """The inode of the IPv4 socket listening on port (None if none)."""
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                p = line.split()
                if len(p) > 9 and p[3] == "0A" and int(p[1].rsplit(":", 1)[1], 16) == port:
                    return p[9]
    except OSError:
        return None
    return None


def connect_error(port, timeout=2.0):
    """Try a TCP connect to H:port; None when it connects, else the errno."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((H, port))
        return None
    except socket.timeout:
        return errno.ETIMEDOUT
    except OSError as e:
        return e.errno
    finally:
        s.close()


def try_session(port):
    """quick_session that returns the error's name instead of raising."""
    try:
        return t.quick_session(H, port)
    except OSError as e:
        return type(e).__name__


def interesting(lines, n=5):
    """The lines about reload/configuration among lines (not session lines)."""
    out = [ln for ln in lines if not t.SESSION_RE.search(ln)]
    return out[-n:]


def show_servers(d):
    rc, out, err = d.ctl("show servers")
    return rc, {r.get("SERVER"): r for r in t.parse_table(out)}, out + err


def reply_code(r):
    return r[:3] if r else b"EOF" if r == b"" else b"TIMEOUT"


def make_body(ident, lines=12):
    head = ("Message-ID: <%s@reload.lbtest>\r\nSubject: reload test %s\r\n\r\n"
            % (ident, ident)).encode()
    rows = b"".join(("%s line %02d %s\r\n" % (ident, i, "x" * (40 + i))).encode()
                    for i in range(lines))
    return head + rows


DATA_REPLY_RE = re.compile(rb"^250 2\.0\.0 Ok: (\S+) n=\d+ len=(\d+) sha256=([0-9a-f]{64})")


def delivered_by(backends):
    """{sha256: [backend name, ...]} over every message the Python backends
    (smtp_handler) accepted."""
    out = collections.defaultdict(list)
    for name, b in backends.items():
        with b.lock:
            conns = list(b.conns)
        for c in conns:
            for n, sha in getattr(c, "messages", []):
                out[sha].append(name)
    return out


# --------------------------------------------------------------------------
# The client load


class Load:
    """workers threads running SMTP sessions of per_session messages (with
    pause seconds before each message), started at a steady rate (sessions
    per second) until stop() or max_sessions sessions in all.  Each session
    is recorded: start time (before the connect), end time, server (from the
    banner), messages accepted, error."""

    def __init__(self, port, rate=80.0, workers=12, per_session=3, pause=0.01,
                 max_sessions=4000):
        self.port = port
        self.rate = rate
        self.workers = workers
        self.per_session = per_session
        self.pause = pause
        self.max_sessions = max_sessions
        self.lock = threading.Lock()
        self.sessions = []
        self.sent = {}          # sha -> (id, server named in the 250 reply)
        self.nstarted = 0
        self.stopping = threading.Event()
        self.threads = []
        self.t_start = None

    def start(self):
        self.t_start = time.monotonic()
        for i in range(self.workers):
            th = threading.Thread(target=self._worker, args=(i,), daemon=True)
            th.start()
            self.threads.append(th)
        return self

    def stop(self, timeout=20):
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for th in self.threads:
            th.join(max(0.1, deadline - time.monotonic()))
        return not any(th.is_alive() for th in self.threads)

    def _worker(self, w):
        k = 0
        while not self.stopping.is_set():
            with self.lock:
                if self.nstarted >= self.max_sessions:
                    return
                j = self.nstarted
                self.nstarted += 1
            wait = self.t_start + j / self.rate - time.monotonic()
            if wait > 0 and self.stopping.wait(wait):
                return
            k += 1
            self._session("w%d-s%d" % (w, k))

    def _session(self, sid):
        rec = {"id": sid, "t0": time.monotonic(), "t1": None, "server": None,
               "ok": 0, "err": None}
        c = None

        def expect(what, r, code):
            if not r or not r.startswith(code):
                raise RuntimeError("%s: %r" % (what, r[:200] if r else r))
        try:
            c = t.Client(H, self.port, timeout=10)
            b = c.banner()
            expect("banner", b, b"220")
            rec["server"] = t.banner_name(b)
            expect("EHLO", c.cmd("EHLO " + t.CLIENT_HELO), b"250")
            for m in range(self.per_session):
                if self.pause:
                    time.sleep(self.pause)
                ident = "%s-m%d" % (sid, m)
                body = make_body(ident)
                sha = hashlib.sha256(body).hexdigest()
                expect("MAIL", c.cmd("MAIL FROM:<load@reload.lbtest>"), b"250")
                expect("RCPT", c.cmd("RCPT TO:<sink@reload.lbtest>"), b"250")
                expect("DATA", c.cmd("DATA"), b"354")
                c.send(body + b".\r\n")
                r = c.reply()
                mm = DATA_REPLY_RE.match(r or b"")
                if not mm or mm.group(3).decode() != sha or int(mm.group(2)) != len(body):
                    raise RuntimeError("end of DATA of %s: %r" % (ident, r))
                with self.lock:
                    self.sent[sha] = (ident, mm.group(1).decode())
                rec["ok"] += 1
            expect("QUIT", c.cmd("QUIT"), b"221")
            rec["t1"] = time.monotonic()
        except Exception as e:
            rec["err"] = "%s: %s" % (type(e).__name__, e)
            rec["t1"] = time.monotonic()
        finally:
            if c is not None:
                c.close()
            with self.lock:
                self.sessions.append(rec)

    def between(self, a, b):
        """Sessions that started (client side) in [a, b)."""
        with self.lock:
            return [s for s in self.sessions if a <= s["t0"] < b]

    def messages(self):
        with self.lock:
            return sum(s["ok"] for s in self.sessions)


def dist(sessions):
    return dict(collections.Counter(s["server"] for s in sessions if s["server"]))


def share(d, name):
    n = sum(d.values())
    return d.get(name, 0) / n if n else 0.0


# --------------------------------------------------------------------------
# 1. Reload under load


def conf_under_load(paths, port, bk, servers, fe=None, be=None, bad=None):
    """servers: [(name, weight)].  bad: {server name: {key: value}} merged
    into that server's entry (to make the file invalid)."""
    entries = []
    for name, w in servers:
        kw = {"weight": w}
        kw.update((bad or {}).get(name, {}))
        entries.append(t.server_entry(name, bk[name].address, **kw))
    glob = dict(paths, maxconn=2000, grace="2s")
    bed = {"timeout_server": "30s"}
    bed.update(be or {})
    return t.make_config("%s:%d" % (H, port), entries, fe=fe, be=bed, glob=glob)


def test_reload_under_load():
    names = ["A", "B", "C", "D"]
    bk = {n: t.Backend(t.smtp_handler(n), name=n) for n in names}
    paths = run_paths()
    port = t.free_port()
    d = t.Daemon(conf_under_load(paths, port, bk, [("A", 1), ("B", 1), ("C", 1)]),
                 [(H, port)], name="reload-load").start()
    tail = StderrTail(d)
    tail.skip()
    ino0 = listen_inode(port)
    hc = {"health_check": {"type": "smtp", "helo": "check.lbtest", "interval": "1s",
                           "rise": 2, "fall": 3}}
    # The steps (A B C at 1:1:1 to begin with).  The invalid file re-adds B
    # and makes D heavy: neither may show in the traffic after it.
    steps = [
        ("weights 5:1:1", [("A", 5), ("B", 1), ("C", 1)], {}),
        ("add D", [("A", 5), ("B", 1), ("C", 1), ("D", 1)], {}),
        ("remove B", [("A", 5), ("C", 1), ("D", 1)], {}),
        ("weights 1:1:1, timeout_client 3s", [("A", 1), ("C", 1), ("D", 1)],
         {"fe": {"timeout_client": "3s"}}),
        ("INVALID (re-adds B, D weight 10)",
         [("A", 1), ("B", 1), ("C", 1), ("D", 10)],
         {"fe": {"timeout_client": "3s"},
          "bad": {"A": {"weight": 999}, "D": {"colour": "red"}}}),
        ("fixed (re-adds B)", [("A", 1), ("B", 1), ("C", 1), ("D", 1)],
         {"fe": {"timeout_client": "3s"}}),
        ("unchanged", [("A", 1), ("B", 1), ("C", 1), ("D", 1)],
         {"fe": {"timeout_client": "3s"}}),
        ("A weight 0", [("A", 0), ("B", 1), ("C", 1), ("D", 1)],
         {"fe": {"timeout_client": "3s"}}),
        ("A weight 1, SMTP health checks added", [("A", 1), ("B", 1), ("C", 1), ("D", 1)],
         {"fe": {"timeout_client": "3s"}, "be": hc}),
        ("timeout_server 20s", [("A", 1), ("B", 1), ("C", 1), ("D", 1)],
         {"fe": {"timeout_client": "3s"}, "be": dict(hc, timeout_server="20s")}),
    ]
    INTERVAL = 1.25
    load = Load(port).start()
    t_load = time.monotonic()
    reloads = []     # dicts: label, t_sig, t_obs, kind, line, lines, servers
    probe = {}
    bad_lines = []

    def probe_timeout():
        # An idle client opened after timeout_client became 3s.
        try:
            c = t.Client(H, port, timeout=10)
            b = c.banner()
            c.cmd("EHLO " + t.CLIENT_HELO)
            t0 = time.monotonic()
            data, eof = c.read_to_eof(8)
            probe.update(banner=b, eof=eof, after=time.monotonic() - t0, port=c.local_port,
                         data=data)
            c.close()
        except Exception as e:
            probe["error"] = repr(e)
    probe_th = None
    try:
        time.sleep(INTERVAL)
        for k, (label, servers, kw) in enumerate(steps, 1):
            text = conf_under_load(paths, port, bk, servers, fe=kw.get("fe"), be=kw.get("be"),
                                   bad=kw.get("bad"))
            if kw.get("bad"):
                for i, ln in enumerate(text.splitlines(), 1):
                    if "weight = 999" in ln or "colour" in ln:
                        bad_lines.append(i)
            write_conf(d, text)
            tail.skip()
            t_sig = time.monotonic()
            d.signal(signal.SIGHUP)
            kind, line, lines, t_obs = wait_reload(tail)
            reloads.append({"k": k, "label": label, "t_sig": t_sig, "t_obs": t_obs, "kind": kind,
                            "line": line, "lines": lines, "servers": [s for s, _ in servers],
                            "invalid": bool(kw.get("bad"))})
            t.log("  reload %2d (%s): %s after %.0f ms: %s"
                  % (k, label, kind, (t_obs - t_sig) * 1000, line))
            if k == 4:
                probe_th = threading.Thread(target=probe_timeout, daemon=True)
                probe_th.start()
            if k == 5:
                rc, rows, raw = show_servers(d)
                reloads[-1]["show"] = (rc, sorted(rows), raw)
            time.sleep(max(0.0, t_load + (k + 1) * INTERVAL - time.monotonic()))
    finally:
        finished = load.stop()
        t_end = time.monotonic()
    if probe_th is not None:
        probe_th.join(10)
    alive = d.alive()
    t.check(finished, "the client threads finished")
    t.check(alive, "the daemon is still running after ten SIGHUPs")
    t.check(ino0 is not None and listen_inode(port) == ino0,
            "the listener kept its socket through the ten reloads (inode %s)" % ino0,
            "now %s" % listen_inode(port))

    # --- figures
    sess = list(load.sessions)
    failed = [s for s in sess if s["err"]]
    nmsg = sum(s["ok"] for s in sess)
    got = delivered_by(bk)
    per_server = {n: sum(1 for v in got.values() for x in v if x == n) for n in names}
    ok_reloads = sum(1 for r in reloads if r["kind"] == "ok")
    t.log("  load: %d sessions, %d failed, %d messages sent and accepted in %.1fs (%d SIGHUPs, "
          "%d reloaded, %d refused)" % (len(sess), len(failed), nmsg, t_end - t_load, len(reloads),
                                        ok_reloads,
                                        sum(1 for r in reloads if r["kind"] == "failed")))
    t.log("  messages delivered per server: %s (total %d)" % (per_server, sum(per_server.values())))
    bounds = [t_load] + [r["t_obs"] for r in reloads]
    ends = [r["t_sig"] - MARGIN for r in reloads] + [t_end]
    labels = ["start (A B C 1:1:1)"] + ["after %d: %s" % (r["k"], r["label"]) for r in reloads]
    intervals = []
    for a, b, lab in zip(bounds, ends, labels):
        dd = dist(load.between(a, b))
        intervals.append(dd)
        t.log("    sessions per server, %-40s %s" % (lab + ":", dict(sorted(dd.items()))))
    spanning = [s for s in sess if any(s["t0"] < r["t_sig"] and (s["t1"] or 0) > r["t_obs"]
                                       for r in reloads)]
    t.log("  %d sessions were in progress across a reload" % len(spanning))

    # --- the client side
    t.check(len(sess) >= 300 and nmsg >= 1000, "the load was real (>= 300 sessions, >= 1000 messages)",
            "%d sessions, %d messages" % (len(sess), nmsg))
    t.check(not failed, "zero failed sessions (every transaction got 250 and 221)",
            "%d failed, e.g. %s" % (len(failed), [(s["id"], s["server"], s["err"])
                                                   for s in failed[:5]]))
    t.check(len(spanning) > 0, "some sessions were in progress across a reload")

    # --- delivery, message by message
    missing = [v[0] for sha, v in load.sent.items() if sha not in got]
    dup = [(load.sent.get(sha, ("?",))[0], v) for sha, v in got.items() if len(v) > 1]
    stray = [v for sha, v in got.items() if sha not in load.sent]
    wrong = [(v[0], v[1], got[sha]) for sha, v in load.sent.items()
             if sha in got and got[sha] != [v[1]]]
    t.check(len(load.sent) == nmsg, "every accepted message has a unique id", "%d ids, %d accepted"
            % (len(load.sent), nmsg))
    t.check(not missing, "every accepted message reached a server", "%d missing, e.g. %s"
            % (len(missing), missing[:5]))
    t.check(not dup and not stray, "every message was delivered exactly once",
            "duplicates %s, unknown %s" % (dup[:5], stray[:3]))
    t.check(not wrong, "each message is on the server its 250 named", str(wrong[:5]))
    t.check(sum(per_server.values()) == nmsg, "messages on the servers (%d) == accepted (%d)"
            % (sum(per_server.values()), nmsg))

    # --- each reload
    if len(reloads) < len(steps):
        t.check(False, "all ten SIGHUPs sent",
                "only %d of %d reloads were done" % (len(reloads), len(steps)))
        d.stop()
        return
    for r in reloads:
        if r["invalid"]:
            t.check(r["kind"] == "failed",
                    "SIGHUP %d (invalid file): a 'reload failed' line is logged" % r["k"],
                    "got %s: %r; other new lines: %s"
                    % (r["kind"], r["line"], interesting(r["lines"])))
            continue
        t.check(r["kind"] == "ok", "SIGHUP %d (%s): 'reloaded' is logged" % (r["k"], r["label"]),
                "got %s: %r; other new lines: %s" % (r["kind"], r["line"], interesting(r["lines"])))
        m = COUNTS_RE.search(r["line"] or "")
        if m:
            t.check((int(m.group(1)), int(m.group(2)), int(m.group(3))) == (1, 1, len(r["servers"])),
                    "SIGHUP %d: the line counts 1 frontend, 1 backend, %d servers"
                    % (r["k"], len(r["servers"])), r["line"])
    err = d.stderr()
    for ln in bad_lines:
        want = "%s:%d:" % (d.conf, ln)
        t.check(want in err, "the invalid file's error at line %d is logged as FILE:LINE" % ln,
                want)
    for ln in err.splitlines():
        if d.conf + ":" in ln:
            t.log("  logged: %s" % ln.strip())

    # --- what each configuration did to the traffic (client-side banners)
    r = {x["k"]: x for x in reloads}
    i0, i1 = intervals[0], intervals[1]
    t.check(set(i0) <= {"A", "B", "C"} and share(i0, "A") <= 0.45,
            "before SIGHUP 1 (1:1:1): A has about 1/3 of the sessions",
            "%.2f of %s" % (share(i0, "A"), i0))
    t.check(share(i1, "A") >= 0.6 and share(i1, "A") <= 0.85,
            "after SIGHUP 1 (5:1:1): A has about 5/7 of the sessions",
            "%.2f of %s" % (share(i1, "A"), i1))
    before_d = dist(load.between(t_load, r[2]["t_sig"]))
    after_d = dist(load.between(r[2]["t_obs"], r[3]["t_sig"] - MARGIN))
    t.check("D" not in before_d, "D had no session before SIGHUP 2 added it", str(before_d))
    t.check(after_d.get("D", 0) > 0, "the added server D gets sessions right after SIGHUP 2",
            str(after_d))
    no_b = dist(load.between(r[3]["t_obs"], r[6]["t_sig"] - MARGIN))
    t.check(no_b and "B" not in no_b,
            "the removed server B gets no new session from SIGHUP 3 until it is re-added",
            str(no_b))
    b_late = [s for s in sess if s["server"] == "B" and r[3]["t_obs"] <= s["t0"] < r[6]["t_sig"]]
    t.check(not b_late, "(per session) no session that began after SIGHUP 3 went to B",
            str([(s["id"], round(s["t0"] - r[3]["t_obs"], 3)) for s in b_late[:5]]))
    b_finish = [s for s in sess if s["server"] == "B" and s["t0"] < r[3]["t_sig"] and
                (s["t1"] or 0) > r[3]["t_obs"]]
    t.log("  %d sessions of B were in progress at SIGHUP 3 (all ended well: %s)"
          % (len(b_finish), all(not s["err"] for s in b_finish)))
    inv = intervals[5]
    t.check(inv and "B" not in inv, "after the invalid file: still no B (the old server set runs)",
            str(inv))
    t.check(share(inv, "D") < 0.5, "after the invalid file: D's weight 10 did not apply",
            "%.2f of %s" % (share(inv, "D"), inv))
    show = r[5].get("show")
    if show:
        t.check(show[0] == 0 and show[1] == ["A", "C", "D"],
                "lbctl show servers after the invalid file: A C D (the previous set)",
                show[2].strip()[:400])
    fixed = intervals[6]
    t.check(fixed.get("B", 0) > 0, "after the fixed file: B is back and gets sessions", str(fixed))
    w0 = intervals[8]
    t.check(w0 and "A" not in w0, "after A weight 0: A gets no new session", str(w0))
    last = intervals[10]
    t.check(set(last) == {"A", "B", "C", "D"}, "after the last reload all four servers get sessions",
            str(last))
    checks = [c for c in bk["A"].conns if b"HELO check.lbtest" in bytes(c.received[:200])]
    t.check(len(checks) > 0, "the health checks added by SIGHUP 9 run (A saw check connections)",
            "%d" % len(checks))

    # --- the timeout changed by SIGHUP 4
    t.log("  idle client after timeout_client = 3s: %s" % probe)
    t.check(probe.get("eof") and 2.5 <= probe.get("after", 0) <= 5.0,
            "a client idle after SIGHUP 4 is closed after the new timeout_client (3s)",
            "%s" % probe)
    if probe.get("port"):
        # The probe idled for seconds; the load's sessions, which may use
        # the same client port before or after it, last milliseconds.
        s = d.session_for(probe["port"], 3,
                          pred=lambda x: int(x.get("duration_ms", 0)) >= 2000)
        t.check(s is not None and s.get("end") == "client_timeout",
                "its session line says end=client_timeout", str(s))

    # --- the daemon's own account
    logged = d.wait_sessions(len(sess) + 1, 5)
    badend = [s for s in logged if s.get("end") not in ("client_close", "server_close")
              and s.get("client", "").rsplit(":", 1)[-1] != str(probe.get("port"))]
    t.check(len(logged) >= len(sess), "one session line per client session",
            "%d lines, %d sessions" % (len(logged), len(sess)))
    t.check(not badend, "every load session ended normally in the daemon's log", str(badend[:3]))
    rl = [ln for ln in err.splitlines() if re.search(r"reload", ln, re.I)]
    t.log("  daemon lines about reload: %d, e.g.:" % len(rl))
    for ln in rl[:3] + rl[-2:]:
        t.log("  | %s" % ln)
    d.stop()


# --------------------------------------------------------------------------
# 2. A session in the middle of a reload


def test_session_across_reload():
    bk = {n: t.Backend(t.smtp_handler(n), name=n) for n in ("S1", "S2")}
    paths = run_paths()
    port = t.free_port()

    def conf(names):
        return t.make_config("%s:%d" % (H, port), [(n, bk[n].address) for n in names],
                             glob=paths)
    d = t.Daemon(conf(["S1"]), [(H, port)], name="reload-mid").start()
    tail = StderrTail(d)
    tail.skip()
    body = b"".join(b"line %05d of a message that spans a reload\r\n" % i for i in range(4000))
    half = len(body) // 2
    half = body.index(b"\r\n", half) + 2
    c = t.Client(H, port, timeout=10)
    b = c.banner()
    t.require(t.banner_name(b) == "S1", "the session is on S1", repr(b))
    c.cmd("EHLO " + t.CLIENT_HELO)
    r1, r2, r3 = c.cmd("MAIL FROM:<a@reload.lbtest>"), c.cmd("RCPT TO:<b@reload.lbtest>"), c.cmd("DATA")
    t.require(reply_code(r1) == b"250" and reply_code(r2) == b"250" and reply_code(r3) == b"354",
              "MAIL, RCPT, DATA accepted", "%r %r %r" % (r1, r2, r3))
    c.send(body[:half])
    srv = bk["S1"].conns[-1] if bk["S1"].conns else None
    t.wait_until(lambda: srv is not None and len(srv.received) >= half, 3)
    t.log("  %d of %d body bytes sent; S1 has received %d bytes"
          % (half, len(body), len(srv.received) if srv else -1))
    write_conf(d, conf(["S2"]))
    d.signal(signal.SIGHUP)
    kind, line, lines, _ = wait_reload(tail, 3)
    t.log("  SIGHUP with S1 removed: %s: %s" % (kind, line))
    t.check(kind == "ok", "the reload (S1 removed, S2 added) is logged", str(interesting(lines)))
    names = [try_session(port) for _ in range(3)]
    t.check(names == ["S2"] * 3, "new sessions go to S2 only", str(names))
    t.check(srv is not None and not srv.closed and not srv.eof,
            "the session's connection to S1 is still open")
    time.sleep(0.2)
    c.send(body[half:] + b".\r\n")
    r = c.reply()
    want = hashlib.sha256(body).hexdigest().encode()
    t.log("  end of DATA -> %r" % r)
    t.check(r is not None and r.startswith(b"250 2.0.0 Ok: S1 ") and want in r,
            "the message is accepted (250) by S1, complete (sha256 matches)", repr(r))
    q = c.cmd("QUIT")
    t.check(q is not None and q.startswith(b"221"), "QUIT gets 221", repr(q))
    data, eof = c.read_to_eof(3)
    t.check(eof, "then the connection closes")
    c.close()
    s = d.session_for(c.local_port)
    t.log("  session line: %s" % s)
    t.check(s is not None and s.get("server") == "S1" and
            s.get("end") in ("client_close", "server_close"),
            "the session line names the old server S1 and a normal end", str(s))
    if s is not None:
        t.check(s.get("bytes_in", 0) >= len(body), "bytes_in counts the whole message",
                str(s.get("bytes_in")))
    # Once its last session ended the removed server is gone.
    def rows():
        return show_servers(d)[1]
    ok = t.wait_until(lambda: sorted(rows()) == ["S2"], 2, 0.1)
    t.check(ok, "lbctl show servers then lists S2 only (S1 freed)", str(sorted(rows())))
    d.stop()


# --------------------------------------------------------------------------
# 3. lbctl reload


def test_lbctl_reload():
    bk = {n: t.Backend(t.smtp_handler(n), name=n) for n in ("A", "B", "C")}
    xport = t.free_port()       # X: nothing listens there, so it goes DOWN
    paths = run_paths()
    p1, p2, p3 = t.free_port(), t.free_port(), t.free_port()
    hc = {"type": "tcp", "interval": "300ms", "rise": 2, "fall": 2}

    def conf(binds, servers, fe1=None):
        fes = []
        for name, port in binds:
            fe = {"name": name, "bind": "%s:%d" % (H, port), "backend": "be"}
            if name == "fe1":
                fe.update(fe1 or {})
            fes.append("{ %s }" % t.opts(fe))
        entries = [t.server_entry(n, bk[n].address) if n != "X" else
                   t.server_entry("X", t.addr(H, xport)) for n in servers]
        return (t.global_block(**paths) +
                "frontends = (\n  %s\n);\n" % ",\n  ".join(fes) +
                "backends = ( { %s\n  servers = (\n    %s\n  );\n} );\n"
                % (t.opts({"name": "be", "health_check": hc}), ",\n    ".join(entries)))
    text1 = conf([("fe1", p1), ("fe2", p2)], ["A", "B", "X"])
    d = t.Daemon(text1, [(H, p1), (H, p2)], name="reload-ctl").start()
    tail = StderrTail(d)
    tail.skip()
    down = t.wait_until(lambda: show_servers(d)[1].get("X", {}).get("STATE") == "DOWN", 3, 0.05)
    t.require(down, "X (nothing listening) is DOWN", show_servers(d)[2])
    rc, out, err = d.ctl("drain be/B")
    t.require(rc == 0, "drain be/B", out + err)
    ino1 = listen_inode(p1)
    nhealth = len(d.health_events())

    # A valid file: fe2 removed, fe3 added, C added, fe1's timeout_client 1s.
    write_conf(d, conf([("fe1", p1), ("fe3", p3)], ["A", "B", "X", "C"],
                       fe1={"timeout_client": "1s"}))
    rc, out, err = d.ctl("reload")
    rows = show_servers(d)[1]     # at once, before any new check could finish
    t.log("  lbctl reload -> rc=%s out=%r err=%r" % (rc, out.strip(), err.strip()))
    t.check(rc == 0 and not out.startswith("error"), "lbctl reload: exit 0, no error", out + err)
    kind, line, _, _ = wait_reload(tail, 2)
    t.check(kind == "ok", "the daemon logs the reload", str(line))
    t.log("  show servers right after: %s" % {k: v.get("STATE") for k, v in rows.items()})
    t.check(rows.get("X", {}).get("STATE") == "DOWN",
            "X, kept across the reload, is still DOWN (health state kept)", str(rows.get("X")))
    t.check(rows.get("B", {}).get("STATE") == "DRAIN",
            "B, kept across the reload, is still DRAIN (operator state kept)", str(rows.get("B")))
    t.check(rows.get("C", {}).get("STATE", "").startswith("UP"), "C, added, is there and UP",
            str(rows.get("C")))
    names = [try_session(p1) for _ in range(6)]
    t.log("  6 sessions on fe1 after the reload: %s" % names)
    t.check(set(names) == {"A", "C"}, "new sessions go to A and C only (not B drained, not X down)",
            str(names))
    ev = [e for e in d.health_events()[nhealth:] if e.get("server") in ("X", "B")]
    t.check(not any(e.get("event") in ("up", "ready") for e in ev),
            "no up/ready event for X or B because of the reload", str([e["_line"] for e in ev]))
    t.check(listen_inode(p1) == ino1 and ino1 is not None,
            "fe1's address stayed: same listening socket (inode %s)" % ino1,
            "now %s" % listen_inode(p1))
    e2 = connect_error(p2)
    t.check(e2 == errno.ECONNREFUSED, "fe2, removed, refuses connections",
            errno.errorcode.get(e2, str(e2)) if e2 else "connected")
    n3 = try_session(p3)
    t.check(n3 in ("A", "C"), "fe3, added, serves", str(n3))
    c = t.Client(H, p1, timeout=5)
    c.banner()
    c.cmd("EHLO " + t.CLIENT_HELO)
    t0 = time.monotonic()
    data, eof = c.read_to_eof(4)
    el = time.monotonic() - t0
    c.close()
    s = d.session_for(c.local_port)
    t.log("  idle client on fe1: EOF=%s after %.2fs, session %s" % (eof, el, s))
    t.check(eof and 0.7 <= el <= 2.5 and s is not None and s.get("end") == "client_timeout",
            "fe1's new timeout_client (1s) applies", "EOF=%s %.2fs %s" % (eof, el, s))

    # A broken file: refused, the daemon keeps the running configuration.
    good = conf([("fe1", p1), ("fe3", p3)], ["A", "B", "X", "C"], fe1={"timeout_client": "1s"})
    broken = good.replace('name = "C";', 'name = "C"; weight = 999;')
    t.require(broken != good, "the broken file differs")
    badline = [i for i, ln in enumerate(broken.splitlines(), 1) if "weight = 999;" in ln][0]
    broken = broken.replace('name = "fe3";', 'name = "fe3"; colour = "red";')
    badline2 = [i for i, ln in enumerate(broken.splitlines(), 1) if "colour" in ln][0]
    write_conf(d, broken.replace('"fe3"', '"fe4"').replace('"%s:%d"' % (H, p3), '"%s:%d"' % (H, p2)))
    rc, out, err = d.ctl("reload")
    msg = out + err
    t.log("  lbctl reload (broken file) -> rc=%s out=%r err=%r" % (rc, out.strip(), err.strip()))
    t.check(rc not in (0, None), "lbctl reload of a broken file exits non-zero", "rc=%s" % rc)
    t.check("error" in msg.lower(), "its reply is an error", msg)
    t.check(re.search(r"\b(weight|999|colour)\b", msg) is not None or
            (":%d" % badline) in msg or (":%d" % badline2) in msg,
            "the reply names the problem (the key, value or FILE:LINE)", msg)
    kind, line, lines, _ = wait_reload(tail, 2)
    t.check(kind == "failed", "the daemon logs the failed reload", str(interesting(lines)))
    err_all = d.stderr()
    t.check("%s:%d:" % (d.conf, badline) in err_all and "%s:%d:" % (d.conf, badline2) in err_all,
            "both errors are logged as FILE:LINE", "lines %d, %d" % (badline, badline2))
    t.check(d.alive(), "the daemon is still running")
    t.check(t.is_listening(H, p3) and connect_error(p2) == errno.ECONNREFUSED,
            "the listeners are those of the previous configuration (fe3 yes, fe2/fe4 no)")
    rows = show_servers(d)[1]
    t.check(sorted(rows) == ["A", "B", "C", "X"] and rows["C"].get("WEIGHT") == "1",
            "the servers are those of the previous configuration", str(sorted(rows)))
    names = [try_session(p1) for _ in range(4)]
    t.check(set(names) == {"A", "C"}, "and it keeps serving", str(names))
    d.stop()


# --------------------------------------------------------------------------
# 4. SIGTERM


def in_data(port, name):
    """A session that is in the middle of DATA: returns (Client, body, half)."""
    c = t.Client(H, port, timeout=10)
    b = c.banner()
    t.require(t.banner_name(b) == name, "session on %s" % name, repr(b))
    c.cmd("EHLO " + t.CLIENT_HELO)
    c.cmd("MAIL FROM:<a@stop.lbtest>")
    c.cmd("RCPT TO:<b@stop.lbtest>")
    r = c.cmd("DATA")
    t.require(reply_code(r) == b"354", "DATA -> 354", repr(r))
    body = b"".join(b"line %05d of a message sent while the daemon stops\r\n" % i
                    for i in range(2000))
    half = body.index(b"\r\n", len(body) // 2) + 2
    c.send(body[:half])
    return c, body, half


def test_sigterm_graceful():
    b = t.Backend(t.smtp_handler("S"), name="S")
    port = t.free_port()
    d = t.Daemon(t.make_config("%s:%d" % (H, port), [("S", b.address)], glob={"grace": "10s"}),
                 [(H, port)], name="stop").start()
    c, body, half = in_data(port, "S")
    time.sleep(0.2)
    t_sig = time.monotonic()
    d.signal(signal.SIGTERM)
    closed = t.wait_until(lambda: not t.is_listening(H, port), 1.0, 0.005)
    t_closed = time.monotonic() - t_sig
    t.check(closed, "the listener is closed right after SIGTERM", "%.3fs" % t_closed)
    e = connect_error(port)
    t.log("  listener gone %.0f ms after SIGTERM; a new connect -> %s"
          % (t_closed * 1000, errno.errorcode.get(e, e) if e else "connected"))
    t.check(e == errno.ECONNREFUSED, "a new connection is refused (ECONNREFUSED)")
    t.check(d.alive(), "the daemon waits for the session")
    time.sleep(0.3)
    c.send(body[half:] + b".\r\n")
    r = c.reply()
    t.check(r is not None and r.startswith(b"250 ") and
            hashlib.sha256(body).hexdigest().encode() in r,
            "the message in DATA at SIGTERM is accepted (250, complete)", repr(r))
    q = c.cmd("QUIT")
    t_quit = time.monotonic()
    t.check(q is not None and q.startswith(b"221"), "QUIT gets 221", repr(q))
    c.close()
    try:
        rc = d.proc.wait(timeout=5)
    except Exception:
        rc = None
    el = time.monotonic() - t_quit
    t.log("  daemon exited with %s %.2fs after QUIT (%.2fs after SIGTERM, grace 10s)"
          % (rc, el, time.monotonic() - t_sig))
    t.check(rc == 0, "the daemon exits 0", str(rc))
    t.check(el < 2.0, "as soon as the session ended (well before grace)", "%.2fs" % el)
    s = d.session_for(c.local_port, 1)
    t.check(s is not None and s.get("end") in ("client_close", "server_close"),
            "the session is logged with a normal end", str(s))
    d.stop()

    # A session that does not end: closed at grace (1s), exit 0.
    b2 = t.Backend(t.smtp_handler("S"), name="S")
    port = t.free_port()
    d = t.Daemon(t.make_config("%s:%d" % (H, port), [("S", b2.address)], glob={"grace": "1s"}),
                 [(H, port)], name="stop-grace").start()
    c, body, half = in_data(port, "S")
    srv = b2.conns[-1]
    time.sleep(0.2)
    t_sig = time.monotonic()
    d.signal(signal.SIGTERM)
    data, eof = c.read_to_eof(5)
    el = time.monotonic() - t_sig
    t.log("  stalled session: EOF=%s after %.2fs (got %r)" % (eof, el, data[:80]))
    t.check(eof and 0.8 <= el <= 2.5, "a session that does not end is closed at grace (1s)",
            "EOF=%s after %.2fs" % (eof, el))
    try:
        rc = d.proc.wait(timeout=5)
    except Exception:
        rc = None
    el2 = time.monotonic() - t_sig
    t.check(rc == 0 and el2 <= 3.0, "and the daemon exits 0", "status %s after %.2fs" % (rc, el2))
    t.check(t.wait_until(lambda: srv.eof or srv.closed, 2), "the server side is closed too")
    s = d.session_for(c.local_port, 1)
    t.log("  its session line: %s" % s)
    t.check(s is not None and s.get("end") == "shutdown", "logged end=shutdown", str(s))
    c.close()
    d.stop()


if __name__ == "__main__":
    t.main([test_reload_under_load, test_session_across_reload, test_lbctl_reload,
            test_sigterm_graceful], timeout=90)
