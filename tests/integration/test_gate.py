#!/usr/bin/env python3
"""Greeting gate and passive health (load-balancer.conf(5), GREETING GATE;
the session log and the health log: LOGS), against scripted servers and a
private real Postfix.

test_postscreen_pregreet: a real Postfix postscreen (pregreet test on,
  postscreen_greet_action = enforce, 2 s wait) behind the gate: a client
  that sends EHLO before the banner is still logged as PREGREET by
  postscreen (and refused at RCPT), then a normal client (smtplib, waits
  for the multi-line 220- banner) delivers a message.
test_pool_retries: servers "busy" (421 All server ports are busy, close),
  "closer" (accept, close) and "good" in a backend without health_check:
  200 sessions all reach "good", no client sees a 421, the session log
  shows retries with greeting=421 and greeting=eof, and the ERRORS column
  and the traffic-errors metric add up to the retries.
test_passive_down: the same pool with a tcp health_check of interval 1m and
  error_limit = 3: traffic marks busy and closer DOWN (event=down
  by=traffic step=greeting) long before any check could; a server failing
  every other session (committed sessions reset its count) stays UP.
  A refused connect counts as well (step=connect).
test_all_bad: every server fails its greeting: the client gets the
  frontend's unavailable_reply, the session log end=greeting_failed.
test_greeting_554: a 554 greeting is relayed, never retried.
test_greeting_timeout: a silent server is left after timeout_greeting; it
  receives QUIT; the session log greeting=timeout.
test_client_first: a client that talks before a slow server's banner
  commits to it at once (no retry although the banner takes longer than
  timeout_greeting); a client that waits is retried.
test_multiline_banner: a "220-" first line commits: the rest of the banner
  may come after timeout_greeting (postscreen's pregreet wait).
test_reset_and_leave: a server that resets instead of greeting is left
  (greeting=eof); a client that leaves during the wait ends the attempt at
  once, without a retry and without a failure counted against the server.
test_gate_off: greeting_gate = false is pure layer 4: the 421 reaches the
  client.
test_postfix_proxy_v2: PROXY v2 to a real Postfix smtpd
  (smtpd_upstream_proxy_protocol = haproxy) behind a 421 server: messages
  from 127.0.0.7/8/9 are delivered and Postfix logs the true client.

Figures (sessions served/retried/refused, sessions until DOWN) are printed
as "FIGURE ..." lines."""

import os
import re
import smtplib
import socket
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

from postfix import PFX_NAME, Postfix  # noqa: E402  (the private Postfix instance)

H = "127.0.0.1"
BUSY = b"421 4.3.2 All server ports are busy\r\n"

# --------------------------------------------------------------------------
# Scripted servers (lbtest.Backend handlers)


def busy_handler(c):
    """Postfix's answer when every smtpd is taken: 421, then close.  What
    arrived in the next 50 ms (a PROXY header, the balancer's QUIT) is
    read first, so that the close is a FIN, not a reset for unread data."""
    c.send(BUSY)
    deadline = time.monotonic() + 0.05
    try:
        while time.monotonic() < deadline and c._fill(max(0.001, deadline - time.monotonic())):
            pass
    except (socket.timeout, OSError):
        pass
    c.close()


def closer_handler(c):
    """Accept, then close at once without a byte."""
    c.close()


def silent_handler(c):
    """Accept and say nothing; keep what arrives until EOF."""
    c.hang(30)


def slow_handler(name, delay):
    """Greet only after delay seconds; c.early: the bytes that had arrived
    by then (peeked, still read by the SMTP dialogue that follows)."""
    inner = t.smtp_handler(name=name)

    def handle(c):
        time.sleep(delay)
        c.early = b""
        try:
            c.sock.setblocking(False)
            c.early = c.sock.recv(65536, socket.MSG_PEEK)
        except (BlockingIOError, OSError):
            pass
        c.sock.setblocking(True)
        c.note("greeting after %.1fs, early=%r" % (delay, c.early))
        inner(c)
    return handle


def flaky_handler(name):
    """Every other connection (1st, 3rd, ...) gets the 421 of busy_handler,
    the others a normal SMTP server: never three failures in a row."""
    inner = t.smtp_handler(name=name)
    state = {"n": 0}
    lock = threading.Lock()

    def handle(c):
        with lock:
            state["n"] += 1
            n = state["n"]
        c.failed = n % 2 == 1
        if c.failed:
            busy_handler(c)
        else:
            inner(c)
    return handle


# --------------------------------------------------------------------------
# Clients, session log, show servers, metrics


def client(port, timeout=10.0):
    """A t.Client connected to the frontend on H:port from a source port
    of its own (lbtest.free_port: never the same twice in this run, so a
    client port names one session line)."""
    c = t.Client(H, port, timeout=timeout, connect=False)
    c.sock.bind((H, t.free_port()))
    c.sock.settimeout(timeout)
    c.sock.connect((H, port))
    c.local_port = c.sock.getsockname()[1]
    return c


def session(port, early=None, timeout=5.0):
    """One client session (see client()): send early at once when given,
    read the banner; QUIT after any banner; read to EOF.
    Returns dict(banner, data (every byte received), port, t_banner)."""
    t0 = time.monotonic()
    c = client(port, timeout)
    try:
        if early:
            c.send(early)
        b = c.banner()
        tb = time.monotonic() - t0
        if b:
            try:
                c.send(b"QUIT\r\n")
            except OSError:
                pass
        c.read_to_eof(timeout)
    finally:
        c.close()
    return {"banner": b or b"", "data": bytes(c.received), "port": c.local_port, "t_banner": tb}


def sessions(d):
    """The daemon's session lines (load-balancer.conf(5), LOGS), each with "greeting" (a
    string: 421, eof, timeout; None when absent) and "_line"."""
    out = []
    for line in d.stderr().splitlines():
        s = t.parse_session_line(line)
        if s is None:
            continue
        m = re.search(r"\bgreeting=(\S+)", line)
        s["greeting"] = m.group(1) if m else None
        s["_line"] = line[line.find("client="):]
        out.append(s)
    return out


def session_of(d, port, timeout=5.0):
    def find():
        for s in sessions(d):
            if str(s.get("client", "")).rsplit(":", 1)[-1] == str(port):
                return s
        return None
    return t.wait_until(find, timeout)


def wait_sessions(d, n, timeout=10.0):
    t.wait_until(lambda: len(sessions(d)) >= n, timeout)
    return sessions(d)


def servers_table(d):
    rc, out, err = d.ctl("show servers")
    t.log("  show servers:\n" + "\n".join("    " + ln for ln in out.splitlines()))
    return {r.get("SERVER"): r for r in t.parse_table(out)}


def errors_col(row):
    try:
        return int(row.get("ERRORS", ""))
    except ValueError:
        return None


def traffic_errors(stats_port, backend):
    """{server: value} of load_balancer_server_traffic_errors_total."""
    with urllib.request.urlopen("http://%s:%d/metrics" % (H, stats_port), timeout=10) as r:
        text = r.read().decode()
    out = {}
    for m in re.finditer(r'^load_balancer_server_traffic_errors_total\{([^}]*)\}\s+(\S+)$', text, re.M):
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1)))
        if labels.get("backend") == backend:
            out[labels.get("server")] = float(m.group(2))
    return out


def fe_opts(**kw):
    d = {"timeout_client": "30s"}
    d.update(kw)
    return d


# --------------------------------------------------------------------------
# 1. Real postscreen behind the gate


def test_postscreen_pregreet():
    ca = t.TestCA()
    crt, key = ca.leaf(PFX_NAME)
    pf = Postfix(crt, key, services=[], postscreen=[("ps", H, ["smtpd_tls_security_level=none"])])
    try:
        pf.start()
        run_postscreen(pf)
    finally:
        pf.stop()
        t.log("  --- postfix log (last 30 lines) ---")
        for ln in pf.text().splitlines()[-30:]:
            t.log("  | " + ln)


def run_postscreen(pf):
    fp = t.free_port()
    # No health_check: a check waits for the whole banner, so postscreen
    # would cache a pass for 127.0.0.1 and skip the pregreet test.
    d = t.Daemon(t.make_config("%s:%d" % (H, fp), [("ps", t.addr(H, pf.ports["ps"]))],
                               fe=fe_opts(), be=dict(greeting_gate=True, timeout_greeting="5s")),
                 [(H, fp)], name="gate-postscreen").start()
    # The pregreet client first: once a client passed, postscreen lets
    # 127.0.0.1 (every client here, as seen through the balancer) skip it.
    c = client(fp)
    c.send(b"EHLO x\r\n")
    r = c.reply(8)
    t.log("  pregreet client got %r" % r)
    t.check(r is not None and r.startswith(b"220-"),
            "the pregreet client gets postscreen's 220- banner through the balancer", repr(r))
    r1 = c.cmd("MAIL FROM:<pregreet@lbtest.example>", 8)
    r2 = c.cmd("RCPT TO:<rcpt@example.com>", 8)
    t.log("  pregreet client: MAIL %r RCPT %r" % (r1, r2))
    t.check(r2 is not None and r2.startswith(b"550"),
            "postscreen (greet_action enforce) refuses the pregreet client's RCPT with 550", repr(r2))
    try:
        c.cmd("QUIT", 5)
    except OSError:
        pass
    c.read_to_eof(5)
    c.close()
    pre = t.wait_until(lambda: pf.lines("ps", "PREGREET", prog="postscreen"), 5, 0.1)
    t.check(pre, "Postfix logs PREGREET for the client that talked first through the balancer",
            pre[0] if pre else "no PREGREET line")
    s1 = session_of(d, c.local_port)
    t.log("  session: %s" % (s1 or {}).get("_line"))
    t.check(s1 is not None and s1.get("retries") == 0 and s1.get("greeting") is None,
            "its session: one attempt, no greeting failure", (s1 or {}).get("_line", "none"))

    # A normal client waits for the banner (postscreen: 220- at once, the
    # last 220 line after postscreen_greet_wait) and delivers.
    t0 = time.monotonic()
    sm = smtplib.SMTP(H, fp, local_hostname=t.CLIENT_HELO, timeout=20)
    code, ehlo = sm.ehlo()
    sm.mail("sender@lbtest.example")
    sm.rcpt("rcpt@example.com")
    code, msg = sm.data(b"Subject: gate\r\nFrom: sender@lbtest.example\r\nTo: rcpt@example.com\r\n\r\n"
                        b"through postscreen behind the greeting gate\r\n")
    sm.quit()
    t.log("  smtplib: end of DATA %d %r after %.1fs" % (code, msg, time.monotonic() - t0))
    m = re.search(rb"queued as (\w+)", msg)
    t.check(code == 250 and m is not None, "a normal client (smtplib) gets its message queued",
            "%d %r" % (code, msg))
    passed = t.wait_until(lambda: pf.lines("ps", "PASS NEW", prog="postscreen"), 5, 0.1)
    t.check(passed, "postscreen logs PASS NEW for the normal client", str(passed[:1]))
    if m:
        qid = m.group(1).decode()
        t.wait_until(lambda: "%s: removed" % qid in pf.text(), 10, 0.2)
        t.check(re.search(r"%s: to=<rcpt@example.com>.*status=sent" % qid, pf.text()) is not None,
                "Postfix delivered it (discard transport: status=sent)")
    ss = wait_sessions(d, 2)
    t.log("  sessions:\n" + "\n".join("    " + s["_line"] for s in ss))
    t.check(len(ss) == 2 and all(s.get("retries") == 0 for s in ss), "two sessions, no retry")
    d.stop()


# --------------------------------------------------------------------------
# 2. 200 sessions over a pool with a 421 server and a closing server


def bad_pool():
    busy = t.Backend(busy_handler, name="busy")
    closer = t.Backend(closer_handler, name="closer")
    good = t.Backend(t.smtp_handler(name="good"), name="good")
    return busy, closer, good


def run_parallel(port, n, workers=4):
    """n sessions, workers at a time; returns the list of results."""
    res = []
    lock = threading.Lock()
    todo = list(range(n))

    def work():
        while True:
            with lock:
                if not todo:
                    return
                todo.pop()
            try:
                r = session(port)
            except OSError as e:
                r = {"banner": b"", "data": b"", "error": str(e)}
            with lock:
                res.append(r)
    ths = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(60)
    return res


def test_pool_retries():
    # No health_check: its servers are unchecked, so passive health only
    # counts their failures and busy/closer stay in the rotation for all
    # 200 sessions (with a smtp check they would fail the check; error_limit
    # = 0 would do too, but then the check would take them out anyway).
    busy, closer, good = bad_pool()
    fp, sp = t.free_port(), t.free_port()
    d = t.Daemon(t.make_config("%s:%d" % (H, fp),
                               [("busy", busy.address), ("closer", closer.address), ("good", good.address)],
                               fe=fe_opts(), be=dict(timeout_greeting="5s", retries=3),
                               glob={"stats_listen": "%s:%d" % (H, sp)}),
                 [(H, fp)], name="gate-pool").start()
    n = 200
    t0 = time.monotonic()
    res = run_parallel(fp, n)
    el = time.monotonic() - t0
    served = [r for r in res if r["banner"].startswith(b"220 good ")]
    saw421 = [r for r in res if b"421" in r["data"]]
    t.check(len(res) == n and len(served) == n, "all %d sessions get good's banner" % n,
            "%d of %d; others: %r" % (len(served), len(res),
                                      [r["data"][:60] for r in res if r not in served][:3]))
    t.check(not saw421, "no client ever sees a 421", repr([r["data"][:80] for r in saw421[:3]]))
    ss = wait_sessions(d, n)
    by_server = {}
    for s in ss:
        by_server[s.get("server")] = by_server.get(s.get("server"), 0) + 1
    retried = [s for s in ss if s.get("retries", 0) > 0]
    g421 = [s for s in ss if s["greeting"] == "421"]
    geof = [s for s in ss if s["greeting"] == "eof"]
    t.check(len(ss) == n and by_server == {"good": n}, "session log: %d sessions, all server=good" % n,
            str(by_server))
    t.check(g421 and geof, "session log: retried sessions carry greeting=421 and greeting=eof",
            "%d with 421, %d with eof" % (len(g421), len(geof)))
    odd = [s["_line"] for s in ss if (s.get("retries", 0) > 0) != (s["greeting"] is not None) or
           s["greeting"] not in (None, "421", "eof")]
    t.check(not odd, "greeting= appears exactly on the retried sessions, only 421 or eof", str(odd[:3]))
    if retried:
        t.log("  e.g. " + retried[0]["_line"])
    total_retries = sum(s.get("retries", 0) for s in ss)
    hist = {}
    for s in ss:
        hist[s.get("retries", 0)] = hist.get(s.get("retries", 0), 0) + 1
    t.log("  FIGURE pool busy/closer/good, no health_check, %d sessions (4 at a time) in %.1fs: served %d, "
          "retried %d (retries histogram %s, %d retries in all: %d greeting=421, %d greeting=eof as last "
          "failure), refused 0; attempts seen: busy %d, closer %d, good %d"
          % (n, el, len(served), len(retried), dict(sorted(hist.items())), total_retries, len(g421), len(geof),
             busy.count(), closer.count(), good.count()))
    rows = servers_table(d)
    eb, ec, eg = (errors_col(rows.get(x, {})) for x in ("busy", "closer", "good"))
    t.check(eb is not None and ec is not None and eg == 0,
            "show servers has an ERRORS column: busy %s, closer %s, good %s" % (eb, ec, eg))
    t.check(eb == busy.count() and ec == closer.count(),
            "ERRORS counts every failed attempt (busy %s = %d attempts, closer %s = %d attempts)"
            % (eb, busy.count(), ec, closer.count()))
    t.check(eb is not None and ec is not None and eb + ec == total_retries,
            "ERRORS of busy + closer = the retries of the session log (%d)" % total_retries)
    te = traffic_errors(sp, "be")
    t.check(te.get("busy") == busy.count() and te.get("closer") == closer.count() and te.get("good") == 0,
            "load_balancer_server_traffic_errors_total: busy %s, closer %s, good %s"
            % (te.get("busy"), te.get("closer"), te.get("good")))
    t.check(all(r.get("STATE") == "UP" for r in rows.values()),
            "unchecked servers stay UP whatever their failures", str({k: r.get("STATE") for k, r in rows.items()}))
    t.check(not [e for e in d.health_events() if e.get("event") == "down"], "no down event")
    d.stop()


# --------------------------------------------------------------------------
# 3. Passive health: traffic marks checked servers DOWN


def test_passive_down():
    busy, closer, good = bad_pool()
    flaky = t.Backend(flaky_handler("flaky"), name="flaky")
    good2 = t.Backend(t.smtp_handler(name="good2"), name="good2")
    good3 = t.Backend(t.smtp_handler(name="good3"), name="good3")
    fp, fp2, fp3, sp = t.free_port(), t.free_port(), t.free_port(), t.free_port()
    refused = t.addr(H, t.free_port())   # nothing listens there
    # tcp checks (busy and closer would pass them) with a long interval:
    # a server's first check falls anywhere in the first minute, so what
    # marks them DOWN within the first few sessions is the traffic.
    hc = {"type": "tcp", "interval": "1m", "rise": 2, "fall": 3}
    pairs = [
        ({"name": "fe", "bind": "%s:%d" % (H, fp), "backend": "be", "timeout_client": "30s"},
         dict(dict(error_limit=3, timeout_greeting="5s"), name="be", health_check=hc,
              servers=[("busy", busy.address), ("closer", closer.address), ("good", good.address)])),
        ({"name": "fe2", "bind": "%s:%d" % (H, fp2), "backend": "be2", "timeout_client": "30s"},
         dict(dict(error_limit=3, timeout_greeting="5s"), name="be2", health_check=hc,
              servers=[("flaky", flaky.address), ("good2", good2.address)])),
        # A refused connect counts too; its tcp check would fail as well,
        # so its first check is spread over an hour instead.
        ({"name": "fe3", "bind": "%s:%d" % (H, fp3), "backend": "be3", "timeout_client": "30s"},
         dict(dict(error_limit=3, timeout_greeting="5s"), name="be3", health_check=dict(hc, interval="1h"),
              servers=[("refused", refused), ("good3", good3.address)])),
    ]
    d = t.Daemon(t.make_config_multi(pairs, glob={"stats_listen": "%s:%d" % (H, sp)}),
                 [(H, fp), (H, fp2), (H, fp3)], name="gate-passive").start()

    def down_of(name):
        for e in d.health_events():
            if e.get("event") == "down" and e.get("server") == name:
                return e
        return None

    until = {}
    waited = set()
    results = []
    for i in range(1, 31):
        r = session(fp)
        results.append(r)
        for name, b in (("busy", busy), ("closer", closer)):
            if name not in until and b.count() >= 3:
                # The third failure is behind us: the down event is written
                # at once (before the session reached good).
                if t.wait_until(lambda: down_of(name), 0 if name in waited else 1.0):
                    until[name] = (i, b.count())
                waited.add(name)
        if len(until) == 2:
            break
    t.check(all(r["banner"].startswith(b"220 good ") for r in results),
            "every client was served by good meanwhile", repr([r["banner"][:40] for r in results]))
    for name in ("busy", "closer"):
        e = down_of(name)
        t.check(name in until, "%s: marked DOWN by traffic" % name, "within %d sessions" % len(results))
        if e:
            t.log("  " + e["_line"])
        want = ({"code": 421} if name == "busy" else {"reason": "connection closed"})
        t.check(e is not None and e.get("by") == "traffic" and e.get("step") == "greeting" and
                all(e.get(k) == v for k, v in want.items()),
                "%s: event=down by=traffic step=greeting %s" % (name, " ".join("%s=%s" % kv for kv in want.items())),
                e["_line"] if e else "none")
    t.log("  FIGURE error_limit=3, tcp check every 1m: busy DOWN after session %s (its attempts %s), closer DOWN "
          "after session %s (its attempts %s); session log retries %s"
          % (until.get("busy", ("-", "-"))[0], until.get("busy", ("-", "-"))[1],
             until.get("closer", ("-", "-"))[0], until.get("closer", ("-", "-"))[1],
             [(session_of(d, r["port"]) or {}).get("retries") for r in results]))
    evs = [e for e in d.health_events() if e.get("server") in ("busy", "closer", "good")]
    early = [e["_line"] for e in evs if e.get("event") in ("fail", "up") or
             (e.get("event") == "down" and e.get("by") != "traffic")]
    t.check(not early, "no check had a say (no fail/up, no down other than by=traffic)", str(early[:3]))

    # Now DOWN: nobody tries them any more.
    nb, nc = busy.count(), closer.count()
    more = [session(fp) for _ in range(5)]
    t.check(all(r["banner"].startswith(b"220 good ") for r in more) and busy.count() == nb and
            closer.count() == nc, "5 more sessions go straight to good",
            "busy %d->%d closer %d->%d" % (nb, busy.count(), nc, closer.count()))
    last = [session_of(d, r["port"]) or {"_line": "none", "greeting": "?"} for r in more]
    t.check(all(s.get("retries") == 0 and s["greeting"] is None for s in last),
            "their session lines: retries=0, no greeting=", str([s["_line"] for s in last]))

    # A committed session resets the count: flaky fails every other time.
    res2 = [session(fp2) for _ in range(30)]
    fl_fail = sum(1 for c in flaky.conns if getattr(c, "failed", False))
    t.check(all(r["banner"].startswith(b"220 ") for r in res2) and not any(b"421" in r["data"] for r in res2),
            "be2: 30 sessions served, no 421 seen")
    t.check(fl_fail >= 4 and down_of("flaky") is None,
            "flaky (421 every other connection) failed %d times in all but never 3 in a row: stays UP "
            "(a committed session resets the count)" % fl_fail,
            down_of("flaky")["_line"] if down_of("flaky") else "")
    t.log("  FIGURE be2 flaky/good2, 30 sessions: flaky %d connections, %d of them 421; %d sessions retried"
          % (flaky.count(), fl_fail, sum(1 for s in sessions(d) if s.get("backend") == "be2" and s.get("retries"))))

    # Connection refused: step=connect, and no greeting= in the session log.
    res3 = []
    for _ in range(12):
        res3.append(session(fp3))
        if down_of("refused"):
            break
    e = t.wait_until(lambda: down_of("refused"), 1.0)
    if e:
        t.log("  " + e["_line"])
    t.check(e is not None and e.get("by") == "traffic" and e.get("step") == "connect" and
            e.get("reason") == "connection refused",
            "refused: event=down by=traffic step=connect reason=\"connection refused\" (after %d sessions)"
            % len(res3), e["_line"] if e else "none")
    t.log("  FIGURE error_limit=3, connection refused (tcp check every 1h): DOWN after session %d" % len(res3))
    s3 = [session_of(d, r["port"]) or {"_line": "none", "greeting": "?"} for r in res3]
    t.check(all(r["banner"].startswith(b"220 good3 ") for r in res3) and s3 and
            all(s["greeting"] is None for s in s3) and sum(s.get("retries", 0) for s in s3) == 3,
            "be3: every client served by good3; 3 retries past the refused connects, none with greeting=",
            str([x["_line"] for x in s3]))

    rows = servers_table(d)
    t.check(rows.get("refused", {}).get("STATE", "").startswith("DOWN") and errors_col(rows.get("refused", {})) == 3,
            "show servers: refused DOWN, ERRORS 3", str(rows.get("refused")))
    for name in ("busy", "closer"):
        r = rows.get(name, {})
        t.check(r.get("STATE", "").startswith("DOWN") and errors_col(r) == 3,
                "show servers: %s DOWN, ERRORS 3" % name, "%s %s" % (r.get("STATE"), r.get("ERRORS")))
    t.check(errors_col(rows.get("good", {})) == 0 and rows.get("good", {}).get("STATE", "").startswith("UP"),
            "show servers: good UP, ERRORS 0", str(rows.get("good")))
    r = rows.get("flaky", {})
    t.check(r.get("STATE", "").startswith("UP") and errors_col(r) is not None and errors_col(r) >= 4,
            "show servers: flaky UP, ERRORS counts its failures (%s)" % r.get("ERRORS"))
    te = traffic_errors(sp, "be")
    t.check(te.get("busy") == 3 and te.get("closer") == 3 and te.get("good") == 0,
            "load_balancer_server_traffic_errors_total{backend=\"be\"}: busy 3, closer 3, good 0", str(te))
    te2 = traffic_errors(sp, "be2")
    t.check(te2.get("flaky") == errors_col(r), "the metric agrees for flaky", "%s vs %s" % (te2, r.get("ERRORS")))
    d.stop()


# --------------------------------------------------------------------------
# 4. Every server fails its greeting


def test_all_bad():
    busy = t.Backend(busy_handler, name="busy")
    closer = t.Backend(closer_handler, name="closer")
    silent = t.Backend(silent_handler, name="silent")
    fp = t.free_port()
    reply = "451 4.3.0 lbtest: no server greeted, try later"
    d = t.Daemon(t.make_config("%s:%d" % (H, fp),
                               [("busy", busy.address), ("closer", closer.address), ("silent", silent.address)],
                               fe=fe_opts(unavailable_reply=reply),
                               be=dict(timeout_greeting="300ms", retries=2)),
                 [(H, fp)], name="gate-allbad").start()
    n = 3
    res = [session(fp) for _ in range(n)]
    for r in res:
        t.check(r["data"] == reply.encode() + b"\r\n",
                "client %d gets exactly the unavailable_reply, then EOF" % r["port"], repr(r["data"]))
    ss = wait_sessions(d, n)
    for s in ss:
        t.log("  " + s["_line"])
    t.check(len(ss) == n and all(s.get("end") == "greeting_failed" and s.get("retries") == 2 and
                                  s["greeting"] in ("421", "eof", "timeout") for s in ss),
            "session log: end=greeting_failed retries=2 greeting=421|eof|timeout", str([s["_line"] for s in ss]))
    t.check(busy.count() == n and closer.count() == n and silent.count() == n,
            "each session tried each server once (retries avoid a failed server)",
            "busy %d closer %d silent %d" % (busy.count(), closer.count(), silent.count()))
    t.log("  FIGURE all bad: %d sessions, %d refused with the unavailable_reply" % (
        n, sum(1 for r in res if r["data"].startswith(reply.encode()))))
    d.stop()


# --------------------------------------------------------------------------
# 5. A 554 greeting is the server's answer: relayed


def test_greeting_554():
    rej = t.Backend(t.health_handler(t.SmtpBehavior("rejecter", "greet554")), name="rejecter")
    good = t.Backend(t.smtp_handler(name="good"), name="good")
    fp = t.free_port()
    d = t.Daemon(t.make_config("%s:%d" % (H, fp), [("rejecter", rej.address), ("good", good.address)],
                               fe=fe_opts(), be=dict(timeout_greeting="5s")),
                 [(H, fp)], name="gate-554").start()
    res = [session(fp) for _ in range(6)]
    got554 = [r for r in res if r["banner"].startswith(b"554 5.3.2 rejecter not available")]
    got220 = [r for r in res if r["banner"].startswith(b"220 good ")]
    t.check(got554 and got220 and len(got554) + len(got220) == 6,
            "6 sessions: %d get the 554 greeting, %d good's banner" % (len(got554), len(got220)),
            repr([r["banner"] for r in res]))
    for r in got554:
        s = session_of(d, r["port"])
        t.check(s is not None and s.get("server") == "rejecter" and s.get("retries") == 0 and
                s["greeting"] is None, "the 554 session: server=rejecter retries=0, no greeting=",
                (s or {}).get("_line", "none"))
    t.check(rej.count() == len(got554), "the rejecter had exactly the sessions that saw its 554 (no retry)",
            "%d connections, %d clients" % (rej.count(), len(got554)))
    d.stop()


# --------------------------------------------------------------------------
# 6. timeout_greeting


def test_greeting_timeout():
    silent = t.Backend(silent_handler, name="silent")
    good = t.Backend(t.smtp_handler(name="good"), name="good")
    fp = t.free_port()
    d = t.Daemon(t.make_config("%s:%d" % (H, fp), [("silent", silent.address), ("good", good.address)],
                               fe=fe_opts(), be=dict(timeout_greeting="500ms")),
                 [(H, fp)], name="gate-timeout").start()
    res = [session(fp) for _ in range(4)]
    t.check(all(r["banner"].startswith(b"220 good ") for r in res), "4 sessions, all served by good",
            repr([r["banner"] for r in res]))
    timed = []
    for r in res:
        s = session_of(d, r["port"])
        if s and s["greeting"] == "timeout":
            timed.append((r, s))
    t.check(timed, "sessions that met the silent server first: greeting=timeout",
            str([(session_of(d, r["port"]) or {}).get("_line") for r in res]))
    for r, s in timed:
        t.log("  %s (banner after %.2fs)" % (s["_line"], r["t_banner"]))
        t.check(s.get("server") == "good" and s.get("retries") == 1 and 0.45 <= r["t_banner"] < 3.0,
                "server=good retries=1, banner after ~timeout_greeting (%.2fs)" % r["t_banner"])
    t.wait_until(lambda: all(c.eof for c in silent.conns), 3)
    got = [bytes(c.received) for c in silent.conns]
    t.check(silent.count() == len(timed) and all(g == b"QUIT\r\n" for g in got) and
            all(c.eof for c in silent.conns),
            "the silent server received QUIT, then the balancer closed (%d connections)" % silent.count(),
            repr(got))
    d.stop()


# --------------------------------------------------------------------------
# 7. The client talks first


def test_client_first():
    slow = t.Backend(slow_handler("slow", 1.0), name="slow")
    fp = t.free_port()
    pairs = [
        ({"name": "fe", "bind": "%s:%d" % (H, fp), "backend": "be", "timeout_client": "30s"},
         dict(dict(timeout_greeting="500ms", retries=1), name="be", servers=[("slow", slow.address)])),
    ]
    d = t.Daemon(t.make_config_multi(pairs), [(H, fp)], name="gate-clientfirst").start()
    c = client(fp)
    t0 = time.monotonic()
    c.send(b"EHLO early.lbtest\r\n")
    b = c.banner()
    tb = time.monotonic() - t0
    r = c.reply()
    c.cmd("QUIT")
    c.read_to_eof(5)
    c.close()
    t.check(b is not None and b.startswith(b"220 slow ") and r is not None and r.startswith(b"250-slow"),
            "the client that talked first gets slow's banner (after %.1fs) and its EHLO answered" % tb,
            repr((b, r)))
    t.check(slow.count() == 1, "one connection to slow: no retry", "%d connections" % slow.count())
    early = getattr(slow.conns[0], "early", None) if slow.conns else None
    t.check(early == b"EHLO early.lbtest\r\n", "its bytes reached slow before slow's banner", repr(early))
    s = session_of(d, c.local_port)
    t.check(s is not None and s.get("server") == "slow" and s.get("retries") == 0 and s["greeting"] is None,
            "session log: server=slow retries=0, no greeting=", (s or {}).get("_line", "none"))
    # The same server with a client that waits: two attempts time out.
    r2 = session(fp)
    s2 = session_of(d, r2["port"])
    t.log("  waiting client: %r after %.2fs; %s" % (r2["data"], r2["t_banner"], (s2 or {}).get("_line")))
    t.check(r2["data"] == t.DEFAULT_UNAVAILABLE and s2 is not None and s2.get("end") == "greeting_failed" and
            s2["greeting"] == "timeout" and s2.get("retries") == 1,
            "a client that waits: two attempts time out, unavailable_reply, greeting=timeout",
            repr(r2["data"]) + " " + (s2 or {}).get("_line", "none"))
    d.stop()


# --------------------------------------------------------------------------
# 7b. A multi-line banner commits on its first line


def multiline_handler(name, delay):
    """postscreen's way: "220-" at once, the last line delay seconds later."""
    inner = t.smtp_handler(name=name, greeting="220 %s ESMTP lbtest\r\n" % name)

    def handle(c):
        c.send("220-%s first line\r\n" % name)
        time.sleep(delay)
        inner(c)
    return handle


def test_multiline_banner():
    multi = t.Backend(multiline_handler("multi", 1.5), name="multi")
    fp = t.free_port()
    d = t.Daemon(t.make_config("%s:%d" % (H, fp), [("multi", multi.address)], fe=fe_opts(),
                               be=dict(timeout_greeting="500ms", retries=1)),
                 [(H, fp)], name="gate-multiline").start()
    c = client(fp)
    t0 = time.monotonic()
    first = c.readline(5)
    t1 = time.monotonic() - t0
    rest = c.reply(5)
    t2 = time.monotonic() - t0
    c.cmd("QUIT")
    c.read_to_eof(5)
    c.close()
    t.check(first == b"220-multi first line\r\n" and t1 < 1.0,
            "the first line of a 220- banner reaches the client at once (%.2fs)" % t1, repr(first))
    t.check(rest == b"220 multi ESMTP lbtest\r\n" and t2 >= 1.4,
            "the last line follows %.1fs later, past timeout_greeting (500ms): the session had committed" % t2,
            repr(rest))
    s = session_of(d, c.local_port)
    t.check(multi.count() == 1 and s is not None and s.get("retries") == 0 and s["greeting"] is None,
            "one connection, session log retries=0, no greeting=", (s or {}).get("_line", "none"))
    d.stop()


# --------------------------------------------------------------------------
# 7c. A reset instead of a greeting; a client that leaves during the wait


def reset_handler(c):
    c.reset()


def test_reset_and_leave():
    rst = t.Backend(reset_handler, name="rst")
    good = t.Backend(t.smtp_handler(name="good"), name="good")
    silent = t.Backend(silent_handler, name="silent")
    fp, fp2, sp = t.free_port(), t.free_port(), t.free_port()
    pairs = [
        ({"name": "fe", "bind": "%s:%d" % (H, fp), "backend": "be", "timeout_client": "30s"},
         dict(dict(timeout_greeting="5s"), name="be", servers=[("rst", rst.address), ("good", good.address)])),
        ({"name": "fe2", "bind": "%s:%d" % (H, fp2), "backend": "be2", "timeout_client": "30s"},
         dict(dict(timeout_greeting="1s", retries=1), name="be2", servers=[("silent", silent.address)])),
    ]
    d = t.Daemon(t.make_config_multi(pairs, glob={"stats_listen": "%s:%d" % (H, sp)}),
                 [(H, fp), (H, fp2)], name="gate-reset").start()
    # A server that resets the connection instead of greeting.
    res = [session(fp) for _ in range(4)]
    t.check(all(r["banner"].startswith(b"220 good ") for r in res), "4 sessions past the resetting server, all "
            "served by good", repr([r["data"][:40] for r in res]))
    ss = [session_of(d, r["port"]) or {"_line": "none", "greeting": "?"} for r in res]
    # The reset may also land before the balancer saw its connect complete
    # (a slow build): then it is a failed connect, without greeting=.
    hit = [s for s in ss if s.get("retries") == 1]
    t.check(hit and all(s["greeting"] in ("eof", None) for s in hit) and
            all(s["greeting"] is None for s in ss if s not in hit),
            "the sessions that met the reset: retries=1 and greeting=eof (%d of %d) or none (a failed connect)"
            % (sum(1 for s in hit if s["greeting"] == "eof"), len(hit)), str([s["_line"] for s in ss]))

    # A client that gives up while the balancer waits for the greeting.
    c = client(fp2, 5)
    time.sleep(0.3)
    c.close()
    t0 = time.monotonic()
    gone = t.wait_until(lambda: silent.conns and silent.conns[0].eof, 3, 0.01)
    el = time.monotonic() - t0
    got = bytes(silent.conns[0].received) if silent.conns else None
    t.check(gone and el < 0.6, "the client left after 0.3s: the balancer closes the server connection at once "
            "(%.2fs later), not at timeout_greeting (1s)" % el, repr(got))
    t.check(got in (b"", b"QUIT\r\n"), "the server got nothing or QUIT", repr(got))
    time.sleep(1.2)   # past timeout_greeting: no second attempt may follow
    s = session_of(d, c.local_port)
    t.check(silent.count() == 1 and s is not None and s["greeting"] is None and s.get("retries") == 0,
            "no retry for a client that left; session line without greeting=", (s or {}).get("_line", "none"))
    te = traffic_errors(sp, "be2")
    t.check(te.get("silent") == 0, "a client leaving is not the server's failure (traffic errors 0)", str(te))
    d.stop()


# --------------------------------------------------------------------------
# 8. greeting_gate = false


def test_gate_off():
    busy = t.Backend(busy_handler, name="busy")
    fp = t.free_port()
    d = t.Daemon(t.make_config("%s:%d" % (H, fp), [("busy", busy.address)], fe=fe_opts(),
                               be={"greeting_gate": False}),
                 [(H, fp)], name="gate-off").start()
    res = [session(fp) for _ in range(3)]
    t.check(all(r["data"] == BUSY for r in res), "every client gets the server's 421 unchanged (layer 4)",
            repr([r["data"] for r in res]))
    ss = wait_sessions(d, 3)
    t.check(len(ss) == 3 and all(s.get("retries") == 0 and s["greeting"] is None and s.get("server") == "busy"
                                 for s in ss),
            "session log: server=busy retries=0, no greeting=", str([s["_line"] for s in ss]))
    t.check(busy.count() == 3, "one connection per client", str(busy.count()))
    d.stop()


# --------------------------------------------------------------------------
# 9. PROXY v2 to a real Postfix behind the gate


PP_OPTS = ["smtpd_upstream_proxy_protocol=haproxy", "smtpd_client_port_logging=yes",
           "smtpd_peername_lookup=no", "smtpd_tls_security_level=none"]


def test_postfix_proxy_v2():
    ca = t.TestCA()
    crt, key = ca.leaf(PFX_NAME)
    pf = Postfix(crt, key, services=[("pfxpp", H, PP_OPTS)])
    try:
        pf.start()
        run_postfix_proxy_v2(pf)
    finally:
        pf.stop()
        t.log("  --- postfix log (last 30 lines) ---")
        for ln in pf.text().splitlines()[-30:]:
            t.log("  | " + ln)


def run_postfix_proxy_v2(pf):
    busy = t.Backend(busy_handler, name="busy")
    fe_host = "127.0.0.3"
    fp = t.free_port(fe_host)
    d = t.Daemon(t.make_config("%s:%d" % (fe_host, fp),
                               [("busy", busy.address), ("pfx", t.addr(H, pf.ports["pfxpp"]))],
                               fe=fe_opts(), be=dict(timeout_greeting="5s", proxy_protocol="v2")),
                 [(fe_host, fp)], name="gate-proxy").start()
    sent = []
    for i, ip in enumerate(("127.0.0.7", "127.0.0.8", "127.0.0.9", "127.0.0.7")):
        sport = t.free_port(ip)
        c = t.Client(fe_host, fp, timeout=15, connect=False)
        c.sock.bind((ip, sport))
        c.sock.settimeout(15)
        c.sock.connect((fe_host, fp))
        c.local_port = sport
        tr = [c.banner()]
        try:
            for cmd in ("EHLO " + t.CLIENT_HELO, "MAIL FROM:<m%d@lbtest.example>" % i,
                        "RCPT TO:<rcpt@example.com>", "DATA",
                        "Subject: m%d\r\n\r\nproxy v2 behind the gate\r\n." % i, "QUIT"):
                tr.append(c.cmd(cmd))
            c.read_to_eof(5)
        except OSError as e:
            tr.append(repr(e))
        c.close()
        m = re.match(rb"250 2\.0\.0 Ok: queued as (\w+)", tr[5] if len(tr) > 5 and tr[5] else b"")
        t.check(m is not None and b"421" not in c.received,
                "message m%d from %s:%d: queued by Postfix, no 421 seen" % (i, ip, sport), repr(tr))
        sent.append((ip, sport, m.group(1).decode() if m else None))
    # Postfix logs through postlogd: give the last lines a moment.
    want = ["%s: client=unknown[%s]:%d" % (qid, ip, sport) for ip, sport, qid in sent if qid]
    t.wait_until(lambda: all(w in pf.text() for w in want), 5, 0.1)
    for ip, sport, qid in sent:
        pat = re.compile(r" pfxpp/smtpd\[\d+\]: connect from unknown\[%s\]:%d$" % (re.escape(ip), sport))
        lines = [ln for ln in pf.text().splitlines() if pat.search(ln)]
        t.check(len(lines) == 1, "Postfix logs 'connect from unknown[%s]:%d' (the true client)" % (ip, sport),
                lines[0] if lines else "not found")
        if qid:
            t.check(("%s: client=unknown[%s]:%d" % (qid, ip, sport)) in pf.text(),
                    "queue id %s logged with client=unknown[%s]:%d" % (qid, ip, sport))
    bal = pf.lines("pfxpp", "connect from unknown[127.0.0.1]")
    t.check(not bal, "Postfix never saw the balancer's own address as a client", str(bal[:2]))
    ss = wait_sessions(d, len(sent))
    for s in ss:
        t.log("  " + s["_line"])
    retried = [s for s in ss if s.get("retries") == 1 and s["greeting"] == "421"]
    t.check(all(s.get("server") == "pfx" for s in ss) and retried,
            "every session ends on pfx; %d of them after busy's 421 (retries=1 greeting=421)" % len(retried))
    # (cleanup's "file system clock is N seconds ahead" and "resetting
    # file time stamps" are about this machine's clocks under load, not
    # about the sessions.)
    bad = [ln for ln in pf.text().splitlines()
           if re.search(r"lost connection|warning|fatal|panic", ln)
           and not re.search(r"file system clock is|resetting file time stamps", ln)]
    t.check(not bad, "Postfix logs no lost connection, warning, fatal or panic", str(bad[:3]))
    d.stop()


# --------------------------------------------------------------------------
# A retry that has to queue (review finding: the greeting's client watch
# must not outlive its attempt)


def test_retry_queued():
    """busy answers 421; good takes one session at a time (maxconn = 1).
    While a first client holds good, a second one gets busy's 421, is
    retried, finds good full and waits in the queue.  Hanging up there
    (or talking there) must not commit it to anything: the daemon lives,
    the queued client that talked gets good once the holder leaves."""
    busy = t.Backend(busy_handler, name="busy")
    good = t.Backend(t.smtp_handler(name="good"), name="good")
    fp = t.free_port()
    d = t.Daemon(t.make_config("%s:%d" % (H, fp),
                               [("busy", busy.address), ("good", good.address, dict(maxconn=1))],
                               fe=fe_opts(), be=dict(timeout_greeting="5s", timeout_queue="5s")),
                 [(H, fp)], name="gate-queue").start()
    holder = client(fp)
    t.check(holder.readline(timeout=5).startswith(b"220 good "), "the holder is served by good")
    # A client that hangs up while queued after busy's 421.
    leaver = client(fp)
    t.wait_until(lambda: busy.count() >= 1, 5)
    time.sleep(0.3)
    leaver.close()
    time.sleep(0.3)
    t.check(d.alive(), "the daemon lives after a client left the queue it reached past a 421")
    # A client that talks while queued: it waits for good, unchanged.
    talker = client(fp)
    t.wait_until(lambda: busy.count() >= 2, 5)
    time.sleep(0.3)
    talker.send(b"EHLO early.example\r\n")
    time.sleep(0.3)
    t.check(d.alive(), "the daemon lives after a queued client talked")
    holder.send(b"QUIT\r\n")
    holder.read_to_eof(timeout=5)
    holder.close()
    line = talker.readline(timeout=6)
    t.check(line.startswith(b"220 good "), "the queued client gets good once the holder left", repr(line))
    talker.close()
    s = session_of(d, talker.local_port)
    t.check(s is not None and s.get("server") == "good" and s.get("retries") == 1 and
            s["greeting"] == "421", "its session line: server=good retries=1 greeting=421",
            (s or {}).get("_line", "none"))
    d.stop()


ALL = [test_postscreen_pregreet, test_pool_retries, test_passive_down, test_all_bad,
       test_greeting_554, test_greeting_timeout, test_client_first, test_multiline_banner,
       test_reset_and_leave, test_gate_off, test_retry_queued,
       test_postfix_proxy_v2]

if __name__ == "__main__":
    # Arguments: names of sub-tests to run (default: all).
    t.main([f for f in ALL if not sys.argv[1:] or f.__name__ in sys.argv[1:]], timeout=90)
