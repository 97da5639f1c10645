#!/usr/bin/env python3
"""lbctl and the control socket (lbctl(8), COMMANDS): show servers / info /
health, drain under a running smtp-source load (no failed session, the
drained server gets no new session, enable brings it back), disable = MAINT
and no checks, set weight, shutdown sessions, exit codes 0/1/2, socket mode
0600, garbage on the control socket, SIGUSR1 reopening the health log."""

import os
import re
import signal
import socket
import stat
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"
HEADER = ["BACKEND", "SERVER", "ADDRESS", "STATE", "WEIGHT", "CUR", "TOTAL", "ERRORS", "LAST CHECK"]


def start_py(names, name, hc=None, be=None, **kw):
    beh = {n: t.SmtpBehavior(n) for n in names}
    bk = {n: t.Backend(t.health_handler(beh[n]), name=n) for n in names}
    port = t.free_port()
    bed = {"timeout_server": "30s",
           "health_check": dict({"type": "smtp", "helo": "noor.net", "interval": "200ms",
                                 "rise": 2, "fall": 2}, **(hc or {}))}
    bed.update(be or {})
    text = t.make_config("%s:%d" % (H, port), [(n, bk[n].address) for n in names],
                         be=bed, fe={"timeout_client": "30s"}, **kw)
    d = t.Daemon(text, [(H, port)], name=name).start()
    return d, port, beh, bk


def rows_of(d):
    rc, out, err = d.ctl("show servers")
    return rc, out, {r.get("SERVER"): r for r in t.parse_table(out)}


def ctl_ok(d, cmd, want):
    rc, out, err = d.ctl(cmd)
    t.check(rc == 0 and out.strip() == want, "lbctl %s -> %r, exit 0" % (cmd, want),
            "rc=%s out=%r err=%r" % (rc, out, err))
    return rc, out, err


def wait_state(d, server, pred, timeout=3.0):
    def f():
        _, _, rows = rows_of(d)
        r = rows.get(server)
        return r if r is not None and pred(r.get("STATE", "")) else None
    return t.wait_until(f, timeout, 0.05)


# --------------------------------------------------------------------------


def test_show():
    # fastinter 1s: the "UP 1/2" and "DOWN 1/2" states last about 1 s.
    d, port, beh, bk = start_py(["A", "B", "C"], "show", hc={"fastinter": "1s"})
    time.sleep(0.7)
    for _ in range(3):
        t.client_session(H, port)
    held, name = t.hold_session(H, port)

    def cur_total():
        _, _, rows = rows_of(d)
        return sum(int(r.get("CUR", "0")) for r in rows.values() if r.get("CUR", "").isdigit()) == 1
    t.wait_until(cur_total, 3, 0.05)   # the finished sessions are closed
    rc, out, err = d.ctl("show servers")
    t.log("  show servers:\n" + out)
    t.check(rc == 0, "show servers: exit 0", "rc=%s err=%r" % (rc, err))
    lines = out.splitlines()
    t.check(lines and re.split(r"\s{2,}", lines[0].strip()) == HEADER,
            "show servers: header BACKEND SERVER ADDRESS STATE WEIGHT CUR TOTAL ERRORS LAST CHECK",
            repr(lines[:1]))
    rows = {r.get("SERVER"): r for r in t.parse_table(out)}
    t.check(sorted(rows) == ["A", "B", "C"], "one row per server", str(sorted(rows)))
    # Columns are aligned: every header word starts at the same column in each row.
    if lines:
        cols = [lines[0].index(h) for h in HEADER]
        aligned = all(all(ln[c - 2:c] == "  " and ln[c] != " " for c in cols[1:])
                      for ln in lines[1:] if ln.strip() and len(ln) > cols[-1])
        t.check(aligned, "columns aligned under the header (2+ spaces between)")
    for n in "ABC":
        r = rows.get(n, {})
        t.check(r.get("BACKEND") == "be" and r.get("ADDRESS") == bk[n].address and
                r.get("STATE") == "UP" and r.get("WEIGHT") == "1",
                "%s: be, its address, UP, weight 1" % n, str(r))
        t.check(re.fullmatch(r"passed \(\d+ ms\)", r.get("LAST CHECK", "")) is not None,
                "%s: LAST CHECK 'passed (N ms)'" % n, repr(r.get("LAST CHECK")))
    tot = {n: int(rows[n]["TOTAL"]) for n in rows if rows[n].get("TOTAL", "").isdigit()}
    cur = {n: int(rows[n]["CUR"]) for n in rows if rows[n].get("CUR", "").isdigit()}
    t.check(sum(tot.values()) == 4 and sorted(tot.values()) == [1, 1, 2],
            "TOTAL counts the 4 sessions (2/1/1)", str(tot))
    t.check(cur.get(name) == 1 and sum(cur.values()) == 1, "CUR: the held session on %s" % name, str(cur))
    held.close()

    # Going down: "UP 1/2" with fall 2.
    beh["C"].mode = "helo421"
    r = wait_state(d, "C", lambda s: s != "UP", 2)
    t.log("  C after its first failure: %s" % (r and r.get("STATE")))
    t.check(r is not None and r.get("STATE") == "UP 1/2", "first failure of C (fall 2): STATE 'UP 1/2'",
            str(r))
    if r:
        t.check(r.get("LAST CHECK", "").startswith("failed at helo: 421 4.7.0 try again later ("),
                "LAST CHECK 'failed at helo: 421 4.7.0 try again later (N ms)'", repr(r.get("LAST CHECK")))
    r = wait_state(d, "C", lambda s: s == "DOWN", 3)
    t.check(r is not None, "then DOWN")
    ce = [e for e in d.health_events() if e.get("server") == "C"]
    ts = [(e.get("event"), e.get("ts")) for e in ce]
    if len(ce) >= 2 and ce[0].get("event") == "fail" and ce[1].get("event") == "down":
        import datetime
        f = [datetime.datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ") for e in ce[:2]]
        gap = (f[1] - f[0]).total_seconds()
        t.log("  fail -> down gap with fastinter 1s: %.3fs" % gap)
        t.check(0.9 <= gap <= 1.5, "going down, the next check follows fastinter (1s)", "%.3fs" % gap)
    else:
        t.check(False, "C: event=fail then event=down", str(ts))
    beh["C"].mode = "ok"
    r = wait_state(d, "C", lambda s: s != "DOWN", 2)
    t.check(r is not None and r.get("STATE") == "DOWN 1/2", "first pass of C (rise 2): STATE 'DOWN 1/2'",
            str(r))
    r = wait_state(d, "C", lambda s: s == "UP", 3)
    t.check(r is not None, "then UP")

    rc, out, err = d.ctl("show info")
    t.log("  show info:\n" + "\n".join("    " + ln for ln in out.splitlines()))
    t.check(rc == 0 and out.strip(), "show info: exit 0, some text", "rc=%s err=%r" % (rc, err))
    t.check(str(d.proc.pid) in out, "show info mentions the daemon's pid %d" % d.proc.pid)

    ev = d.health_events()
    rc, out, err = d.ctl("show health 3")
    t.log("  show health 3:\n" + out)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    t.check(rc == 0 and len(lines) == 3 and all("event=" in ln for ln in lines),
            "show health 3: exit 0, the last 3 events", "rc=%s %r" % (rc, lines))
    tail = [e["_line"] for e in ev[-3:]]
    t.check(lines == tail, "show health 3 = the last 3 lines of the health log", "%r vs %r" % (lines, tail))
    rc, out, err = d.ctl("show health")
    lines = [ln for ln in out.splitlines() if ln.strip()]
    t.check(rc == 0 and len(lines) == min(len(ev), 20) and lines == [e["_line"] for e in ev[-20:]],
            "show health: the last events (%d)" % len(ev), "%d lines" % len(lines))
    # The raw protocol: the reply ends with an empty line.
    data, eof = d.ctl_raw(b"show servers\n")
    t.check(data.endswith(b"\n\n") and data.startswith(b"BACKEND"),
            "raw 'show servers': table then an empty line", repr(data[-40:]))
    data, eof = d.ctl_raw(b"show info\r\n")
    t.check(data.endswith(b"\n\n") and not data.startswith(b"error"), "raw 'show info' with CRLF works",
            repr(data[:60]))
    d.stop()


# --------------------------------------------------------------------------


def test_drain_under_load():
    sinks = {n: t.SmtpSink().start() for n in "ABC"}
    port = t.free_port()
    text = t.make_config("%s:%d" % (H, port), [(n, sinks[n].address) for n in "ABC"],
                         be={"health_check": {"type": "smtp", "helo": "noor.net", "interval": "500ms"}},
                         glob={"maxconn": 1000})
    d = t.Daemon(text, [(H, port)], name="drain").start()
    time.sleep(0.3)
    res = {}
    th = threading.Thread(target=lambda: res.update(
        t.smtp_source("%s:%d" % (H, port), 10, 3000, 2048, timeout=60)), daemon=True)
    th.start()

    def total():
        return sum(s.messages() for s in sinks.values())
    B = sinks["B"]
    ok = t.wait_until(lambda: total() >= 300, 20, 0.005)
    t.require(ok, "the load is running (300 messages delivered)", str(total()))
    rc, out, err = d.ctl("drain be/B")
    t_drain = total()
    b_drain = B.messages()
    t.check(rc == 0 and out.strip() == "ok: be/B is DRAIN", "drain be/B -> 'ok: be/B is DRAIN'",
            "rc=%s %r %r" % (rc, out, err))
    # Shortly after: the sessions already on B (at most 10 in parallel) finish.
    t.wait_until(lambda: total() >= t_drain + 100, 20, 0.005)
    b_short = B.messages()
    _, _, rows = rows_of(d)
    t.check(rows.get("B", {}).get("STATE") == "DRAIN", "show servers: B DRAIN", str(rows.get("B")))
    t.wait_until(lambda: total() >= t_drain + 900 or not th.is_alive(), 20, 0.005)
    b_enable = B.messages()
    t_enable = total()
    rc, out, err = d.ctl("enable be/B")
    t.check(rc == 0 and out.strip() == "ok: be/B is READY", "enable be/B -> 'ok: be/B is READY'",
            "rc=%s %r %r" % (rc, out, err))
    th.join(70)
    t.wait_until(lambda: total() >= 3000, 5)
    final = {n: s.messages() for n, s in sinks.items()}
    t.log("  smtp-source: rc=%s delivered=%s in %.1fs" % (res.get("rc"), res.get("delivered"),
                                                        res.get("elapsed", 0)))
    t.log("  B: %d at drain (total %d), %d shortly after, %d at enable (total %d), %d at the end"
          % (b_drain, t_drain, b_short, b_enable, t_enable, final["B"]))
    t.log("  final per sink: %s" % final)
    t.check(res.get("rc") == 0, "smtp-source exits 0 (no failed session)", str(res.get("stderr", ""))[:300])
    t.check(res.get("delivered") == 3000, "smtp-source delivered 3000", str(res.get("delivered")))
    t.check(sum(final.values()) == 3000, "the sinks got 3000 messages", str(final))
    t.check(b_short - b_drain <= 10, "after the drain B only finishes the sessions it had (<= 10)",
            "%d -> %d" % (b_drain, b_short))
    t.check(b_enable == b_short, "B's count stops growing while drained (%d messages went elsewhere)"
            % (t_enable - t_drain - (b_enable - b_drain)), "%d -> %d" % (b_short, b_enable))
    t.check(t_enable - t_drain >= 500, "the drain window saw real traffic", str(t_enable - t_drain))
    t.check(final["B"] > b_enable, "after enable B grows again", "%d -> %d" % (b_enable, final["B"]))
    sess = d.wait_sessions(3000, 5)
    bad = [s for s in sess if s.get("end") not in ("client_close", "server_close")]
    t.check(len(sess) == 3000 and not bad, "3000 sessions logged, all ended normally",
            "%d, bad %s" % (len(sess), bad[:2]))
    ev = [e for e in d.health_events() if e.get("event") in ("drain", "ready")]
    t.check([e.get("event") for e in ev] == ["drain", "ready"],
            "health log: event=drain then event=ready", str([e["_line"] for e in ev]))
    if ev:
        e = ev[0]
        # load-balancer.conf(5), LOGS does not say whether a drained (UP)
        # server counts in active=; accept both readings.
        t.check(e.get("backend") == "be" and e.get("server") == "B" and
                e.get("addr") == sinks["B"].address and e.get("active") in (2, 3) and
                e.get("backup") == 0,
                "drain event: backend=be server=B addr=... active=N backup=0", e["_line"])
        if len(ev) > 1:
            t.check(ev[1].get("active") == 3, "ready event: active=3", ev[1]["_line"])
    d.stop()


# --------------------------------------------------------------------------


def test_disable_weight_shutdown():
    d, port, beh, bk = start_py(["A", "B"], "disable")
    time.sleep(0.6)
    B = bk["B"]
    # drain: checks go on.
    ctl_ok(d, "drain be/B", "ok: be/B is DRAIN")
    n0 = len(t.conns_of_kind(B, "check"))
    time.sleep(0.8)
    n1 = len(t.conns_of_kind(B, "check"))
    t.check(n1 - n0 >= 2, "while DRAIN the checks go on", "%d new checks in 0.8s" % (n1 - n0))
    got = [t.client_session(H, port)[0] for _ in range(4)]
    t.check(got == ["A"] * 4, "DRAIN: new sessions go to A only", str(got))

    # disable: MAINT, no checks.
    ctl_ok(d, "disable be/B", "ok: be/B is MAINT")
    _, out, rows = rows_of(d)
    t.check(rows.get("B", {}).get("STATE") == "MAINT", "show servers: B MAINT", str(rows.get("B")))
    time.sleep(0.4)   # a check in progress may finish
    n0 = len(B.conns)
    time.sleep(1.2)
    n1 = len(B.conns)
    t.check(n1 == n0, "MAINT: no check connection reaches B (interval 200ms, 1.2s)", "%d new" % (n1 - n0))
    got = [t.client_session(H, port)[0] for _ in range(4)]
    t.check(got == ["A"] * 4, "MAINT: new sessions go to A only", str(got))
    ctl_ok(d, "enable be/B", "ok: be/B is READY")
    t.wait_until(lambda: len(B.conns) > n1, 2)
    t.check(len(B.conns) > n1, "after enable the checks resume")
    r = wait_state(d, "B", lambda s: s == "UP", 2)
    t.check(r is not None, "after enable B is UP", str(rows_of(d)[2].get("B")))
    got = sorted(t.client_session(H, port)[0] for _ in range(4))
    t.check(got == ["A", "A", "B", "B"], "after enable sessions alternate A B", str(got))
    ev = [e.get("event") for e in d.health_events() if e.get("event") in ("drain", "maint", "ready")]
    t.check(ev == ["drain", "maint", "ready"], "health log: drain, maint, ready", str(ev))
    me = [e for e in d.health_events() if e.get("event") == "maint"]
    if me:
        t.check(me[0].get("backend") == "be" and me[0].get("server") == "B" and
                me[0].get("addr") == B.address and me[0].get("active") == 1 and me[0].get("backup") == 0,
                "maint event: backend=be server=B addr=... active=1 backup=0 (B in MAINT is not counted)",
                me[0]["_line"])

    # set weight
    ctl_ok(d, "set weight be/B 0", "ok: be/B weight 0 (was 1)")
    got = [t.client_session(H, port)[0] for _ in range(4)]
    t.check(got == ["A"] * 4, "weight 0: no new session to B", str(got))
    _, _, rows = rows_of(d)
    t.check(rows.get("B", {}).get("WEIGHT") == "0", "show servers: WEIGHT 0", str(rows.get("B")))
    ctl_ok(d, "set weight be/B 3", "ok: be/B weight 3 (was 0)")
    got = [t.client_session(H, port)[0] for _ in range(8)]
    t.check(5 <= got.count("B") <= 7 and "AA" not in "".join(got),
            "weight 3:1: B gets about 6 of 8 sessions, A never twice in a row", str(got))
    ctl_ok(d, "set weight be/B 1", "ok: be/B weight 1 (was 3)")
    for bad in ("set weight be/B 257", "set weight be/B -1", "set weight be/B x", "set weight be/Z 1"):
        rc, out, err = d.ctl(bad)
        t.check(rc == 1 and err.startswith("error: "), "lbctl %s: exit 1, 'error: ...' on stderr" % bad,
                "rc=%s out=%r err=%r" % (rc, out, err))

    # shutdown sessions
    held = []
    for _ in range(4):
        n, _b, c = t.client_session(H, port, hold=True)
        held.append((n, c))
    onb = [c for n, c in held if n == "B"]
    ona = [c for n, c in held if n == "A"]
    t.require(len(onb) == 2, "two sessions held on B", str([n for n, _ in held]))
    ctl_ok(d, "shutdown sessions be/B", "ok: closed 2 sessions of be/B")
    for c in onb:
        data, eof = c.read_to_eof(3)
        t.check(eof, "shutdown sessions: the client on B sees its connection closed", repr(data))
        s = d.session_for(c.local_port, 3)
        t.check(s is not None and s.get("end") == "shutdown", "its session line says end=shutdown", str(s))
    for c in ona:
        t.check(c.nothing_for(0.3), "the session on A is untouched")
        r = c.cmd("NOOP")
        t.check(r is not None and r.startswith(b"250"), "the session on A still works", repr(r))
        c.close()
    ctl_ok(d, "shutdown sessions be/B", "ok: closed 0 sessions of be/B")
    d.stop()


# --------------------------------------------------------------------------


def test_exit_codes_and_socket():
    d, port, beh, bk = start_py(["A"], "codes")
    st = os.stat(d.control_socket)
    t.check(stat.S_ISSOCK(st.st_mode), "the control socket is a Unix socket", d.control_socket)
    t.check(stat.S_IMODE(st.st_mode) == 0o600, "its mode is 0600", oct(stat.S_IMODE(st.st_mode)))
    rc, out, err = d.ctl("check")
    t.check(rc == 0 and out.strip() == "ok", "check: ok, exit 0", "rc=%s %r %r" % (rc, out, err))
    # A drained (or disabled) server takes no new session: with every
    # server of a backend drained, clients get the 421, so check fails.
    t.require(d.ctl("drain be/A")[0] == 0, "drain be/A")
    rc, out, err = d.ctl("check")
    t.check(rc == 1 and err.strip() == "error: backend be has no server UP",
            "check with the only server drained: exit 1, names the backend", "rc=%s %r %r" % (rc, out, err))
    t.require(d.ctl("enable be/A")[0] == 0, "enable be/A")
    rc, out, err = d.ctl("check")
    t.check(rc == 0, "check: ok again after enable", "rc=%s %r %r" % (rc, out, err))
    rc, out, err = d.ctl("reload")
    t.check(rc == 0 and out.startswith("ok: reloaded "), "reload: 'ok: reloaded ...', exit 0",
            "rc=%s out=%r err=%r" % (rc, out, err))
    for cmd, words in (("frobnicate", "error: unknown command"),
                       ("drain be/nosuch", "error: "), ("drain nosuch/A", "error: "),
                       ("drain A", "error: "), ("show", "error: ")):
        rc, out, err = d.ctl(cmd)
        t.check(rc == 1 and err.startswith(words), "lbctl %s: exit 1, stderr '%s...'" % (cmd, words),
                "rc=%s out=%r err=%r" % (rc, out, err))
    rc, out, err = t.run_lbctl(["-s", os.path.join(d.dir, "nosuch.sock"), "show", "servers"])
    t.check(rc == 2 and err.strip(), "lbctl -s WRONG: exit 2 with a message", "rc=%s err=%r" % (rc, err))
    # A socket file nobody listens on.
    dead = os.path.join(d.dir, "dead.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(dead)
    s.close()
    rc, out, err = t.run_lbctl(["-s", dead, "show", "info"])
    t.check(rc == 2, "lbctl on a dead socket: exit 2", "rc=%s err=%r" % (rc, err))
    rc, out, err = t.run_lbctl(["-s", d.control_socket])
    t.check(rc not in (0, None), "lbctl without a command: non-zero exit", "rc=%s" % rc)
    sock = d.control_socket
    d.stop()
    t.check(not os.path.exists(sock), "the socket file is removed on exit")
    rc, out, err = t.run_lbctl(["-s", sock, "check"])
    t.check(rc == 2, "lbctl check with the daemon stopped: exit 2", "rc=%s" % rc)


# --------------------------------------------------------------------------


def test_garbage():
    d, port, beh, bk = start_py(["A"], "garbage")

    def still_ok(label, settle=0.0):
        """settle: time allowed for the daemon to see the closes of a burst
        of connections (it serves a bounded number of control clients)."""
        res = {}

        def ok():
            res["r"] = d.ctl("show servers")
            return res["r"][0] == 0 and "BACKEND" in res["r"][1]
        t.wait_until(ok, settle, 0.1)
        rc, out, err = res["r"]
        t.check(d.alive() and rc == 0 and "BACKEND" in out,
                "after %s the daemon answers show servers" % label, "rc=%s err=%r" % (rc, err))

    cases = [
        ("binary bytes", bytes(range(256)) * 4 + b"\n"),
        ("a 100 KB line", b"A" * 100000 + b"\n"),
        ("a 100 KB line without newline", b"show " * 20000),
        ("NUL bytes", b"show\x00servers\n"),
        ("only a newline", b"\n"),
        ("CR LF only", b"\r\n"),
        ("high bytes", b"\xff\xfe\xfd show servers\n"),
        ("very long argument", b"drain " + b"x" * 5000 + b"/" + b"y" * 5000 + b"\n"),
        ("many words", b"show " + b"a " * 5000 + b"\n"),
        ("set weight huge", b"set weight be/A 99999999999999999999999\n"),
    ]
    for label, data in cases:
        got, eof = d.ctl_raw(data, timeout=3)
        t.log("  %s -> %r eof=%s" % (label, got[:80], eof))
        t.check(got.startswith(b"error: ") or (got == b"" and eof),
                "%s: an error reply or a close" % label, repr(got[:80]))
        still_ok(label)
    # Half a command, then close.
    refused = 0
    for i in range(20):
        try:
            t.ctl_raw(d.control_socket, b"show serv", close_after_send=True)
        except OSError:   # a full backlog (EAGAIN) under a burst is fine
            refused += 1
    t.log("  20 half commands closed at once: %d connects refused by a full backlog" % refused)
    still_ok("20 half commands closed at once", settle=3.0)
    # Clients that connect and say nothing: others are still served.
    idle = []
    for _ in range(5):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.control_socket)
        idle.append(s)
    still_ok("5 idle control connections")
    for s in idle:
        s.close()
    # A command split across writes still works.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(3)
    s.connect(d.control_socket)
    s.sendall(b"show ")
    time.sleep(0.1)
    s.sendall(b"info\n")
    got = b""
    try:
        while not got.endswith(b"\n\n"):
            b = s.recv(4096)
            if not b:
                break
            got += b
    except socket.timeout:
        pass
    s.close()
    t.check(got.endswith(b"\n\n") and not got.startswith(b"error"),
            "a command split over two writes gets its reply", repr(got[:60]))
    # The data path was not disturbed.
    name, ban, c = t.client_session(H, port)
    t.check(name == "A", "clients are still served", repr(ban))
    d.stop()


# --------------------------------------------------------------------------


def test_sigusr1_reopen():
    d, port, beh, bk = start_py(["A", "B"], "reopen")
    time.sleep(0.5)
    ctl_ok(d, "drain be/B", "ok: be/B is DRAIN")
    t.check(d.wait_event(lambda e: e.get("event") == "drain", 2) is not None, "event=drain in the log")
    old = d.health_log + ".1"
    os.rename(d.health_log, old)
    d.signal(signal.SIGUSR1)
    t.wait_until(lambda: os.path.exists(d.health_log), 3)
    t.check(os.path.exists(d.health_log), "SIGUSR1: the health log is created again at its path")
    ctl_ok(d, "enable be/B", "ok: be/B is READY")
    e = d.wait_event(lambda e: e.get("event") == "ready", 3)
    t.check(e is not None and e.get("server") == "B", "the next event (ready) is in the new file",
            str(d.health_events()))
    oldev = [x.get("event") for x in t.read_health_log(old)]
    t.check("drain" in oldev and "ready" not in oldev, "the rotated file keeps the old events only",
            str(oldev))
    t.check(d.alive(), "the daemon is still running after SIGUSR1")
    d.stop()


def test_check_while_stopping():
    """After SIGTERM the daemon refuses new clients while its sessions
    finish: a keepalived track script must see it fail at once."""
    d, port, beh, bk = start_py(["A"], "stopping", glob={"grace": "10s"})
    n, _b, c = t.client_session(H, port, hold=True)
    t.require(n == "A", "a session held through the daemon")
    d.signal(signal.SIGTERM)
    t.require(t.wait_until(lambda: not t.is_listening(H, port), 3), "SIGTERM closed the listener")
    rc, out, err = d.ctl("check")
    t.check(rc == 1 and err.strip() == "error: the daemon is stopping",
            "check while stopping: exit 1, 'error: the daemon is stopping'", "rc=%s %r %r" % (rc, out, err))
    r = c.cmd("NOOP")
    t.check(r is not None and r.startswith(b"250"), "the held session still works", repr(r))
    c.cmd("QUIT")
    c.close()
    t.check(t.wait_until(lambda: not d.alive(), 5), "the daemon exits after its last session")
    d.stop()


if __name__ == "__main__":
    t.main([test_show, test_drain_under_load, test_disable_weight_shutdown,
            test_exit_codes_and_socket, test_garbage, test_sigusr1_reopen,
            test_check_while_stopping], timeout=90)
