#!/usr/bin/env python3
"""The agent check (load-balancer.conf(5), AGENT CHECK: backend `agent`,
server `agent_port`; health log `by=agent`), against a scripted agent
(agentsrv.Agent) whose answer the test changes at run time, and the same
agent against HAProxy 2.6's agent-check.  Two equal servers A and B (weight
100); B has the agent (agent_port), A none; agent interval 200 ms, timeout
500 ms; SMTP health checks every 200 ms (rise 2, fall 2) unless said
otherwise.  Sessions are counted per server from the banner of the server
that answered.

test_percent: `50%` gives B a third of 300 sessions (+-5 points), WEIGHT
  50, load_balancer_server_weight 50, event=weight ... weight=50 by=agent;
  agent.send's bytes reach the agent as written; words in any order,
  case, commas, unknown words beside known ones; `100%` gives 50/50 back;
  one weight event per change; the agent's pace follows its interval.
test_drain_maint: `drain`: no new session for B while its health checks
  go on (check connections counted on B), event=drain by=agent; `ready`
  back; `maint`: MAINT, the health checks stop but not the agent; `ready`
  resumes them.
test_down_up: `down#disk full`: DOWN at once, event=down ... by=agent
  reason="disk full"; passing health checks cannot bring it UP; `up`:
  event=up by=agent, UP at once, and with slowstart the ramp starts;
  `stopped` and `fail` without a reason: reason="stopped"/"fail"; `up`
  while the health checks fail: UP only when they pass again.
test_failures: an unreachable agent (port closed), one that times out
  (accepts, says nothing: closed by the balancer after agent.timeout), one
  that closes without a line, and garbage ("hello world", binary, a
  5000-byte line starting with "drain", "150%", an empty line, a word
  ended by the close) change nothing (B stays UP with its weight, shares
  unchanged, no health event) and are counted:
  load_balancer_server_agent_failures_total grows, show servers' LAST CHECK
  says "agent: failed: ..." with the count.
test_operator: an lbctl drain is not undone by the agent's `ready`; after
  `lbctl enable` the agent's words apply again (its `drain` drains);
  `lbctl set weight` wins over the agent's `50%` until enable (event=weight
  without by); `lbctl disable` stops the agent, enable resumes it; a
  server `disabled = true` in the configuration is never asked.
test_maxconn: `maxconn:1` limits B to one concurrent session;
  `maxconn:0` lifts the limit.
test_backend_port: the backend's agent.port applies to every server, a
  server's agent_port overrides it.
test_haproxy: the same agent behind /usr/sbin/haproxy (server B ...
  agent-check agent-port P agent-inter 200ms) and behind the balancer at
  the same time: B's shares under `50%`, `drain`, `ready` and `100%`,
  side by side; the two agree within 5 points.

Figures are printed as "FIGURE" lines."""

import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402
from agentsrv import Agent  # noqa: E402

H = "127.0.0.1"
HAPROXY = "/usr/sbin/haproxy"
W = 100


# --------------------------------------------------------------------------
# Helpers


def start(name, agents, be=None, agent=None, hc=True, stats=False, extra_servers=(),
          server_kw=None):
    """Servers A and B (weight 100) behind SmtpBehavior backends; agents:
    {server name: Agent} (that server's agent_port).  Returns (daemon,
    port, behaviours, backends, stats port)."""
    beh = {n: t.SmtpBehavior(n) for n in "AB"}
    bk = {n: t.Backend(t.health_handler(beh[n]), name=n) for n in "AB"}
    port = t.free_port()
    sport = t.free_port() if stats else None
    bed = {"timeout_server": "30s",
           "agent": dict({"interval": "200ms", "timeout": "500ms"}, **(agent or {}))}
    if hc:
        bed["health_check"] = {"type": "smtp", "helo": "noor.net", "interval": "200ms",
                               "rise": 2, "fall": 2}
    bed.update(be or {})
    servers = []
    for n in "AB":
        kw = {"weight": W}
        if n in agents:
            kw["agent_port"] = agents[n].port
        kw.update((server_kw or {}).get(n, {}))
        servers.append((n, bk[n].address, kw))
    servers += list(extra_servers)
    glob = {"stats_listen": "%s:%d" % (H, sport)} if stats else None
    text = t.make_config("%s:%d" % (H, port), servers, be=bed, fe={"timeout_client": "30s"},
                         glob=glob)
    d = t.Daemon(text, [(H, port)], name=name).start()
    return d, port, beh, bk, sport


def rows_of(d):
    rc, out, err = d.ctl("show servers")
    return {r.get("SERVER"): r for r in t.parse_table(out)} if rc == 0 else {}


def row(d, server):
    return rows_of(d).get(server, {})


def wait_row(d, server, pred, timeout=3.0):
    """Wait until pred(row of server); returns the row (or the last one)."""
    res = {}

    def f():
        res["r"] = row(d, server)
        return pred(res["r"])
    t.wait_until(f, timeout, 0.05)
    return res.get("r", {})


def shares(port, n):
    return t.share_counts(H, port, n)


def pct(counts, name="B"):
    tot = sum(counts.values())
    return 100.0 * counts.get(name, 0) / tot if tot else float("nan")


def metrics(sport):
    """{(name, frozenset of labels)}: value."""
    with urllib.request.urlopen("http://%s:%d/metrics" % (H, sport), timeout=5) as r:
        return t.parse_metrics(r.read().decode(errors="replace"))


def metric(sport, name, server, backend="be"):
    try:
        ms = metrics(sport)
    except OSError:
        return None
    return ms.get((name, frozenset({("backend", backend), ("server", server)})))


def agent_failures(sport, server="B"):
    return metric(sport, "load_balancer_server_agent_failures_total", server)


def agent_checks(sport, server="B"):
    return metric(sport, "load_balancer_server_agent_checks_total", server)


def ev_pred(event, server="B", **kw):
    def p(e):
        return e.get("event") == event and e.get("server") == server and \
            all(e.get(k) == v for k, v in kw.items())
    return p


def agent_events(d, since, server="B"):
    return [e for e in d.health_events()[since:] if e.get("server") == server]


def failed_count(last_check):
    m = re.search(r"(\d+) failed\s*$", last_check or "")
    return int(m.group(1)) if m else None


# --------------------------------------------------------------------------


def test_percent():
    ag = Agent("50%\n", name="agent-B")
    d, port, beh, bk, sport = start("ag-pct", {"B": ag}, agent={"send": "ping me"}, stats=True)
    e = d.wait_event(ev_pred("weight", by="agent"), 3)
    t.require(e is not None, "event=weight ... by=agent in the health log",
              str([x["_line"] for x in d.health_events()]))
    t.log("  " + e["_line"])
    t.check(e.get("weight") == 50 and e.get("backend") == "be" and e.get("addr") == bk["B"].address
            and e.get("active") == 2 and e.get("backup") == 0,
            "event=weight backend=be server=B addr=... weight=50 by=agent active=2 backup=0",
            e["_line"])
    # (Right after the start a server is "UP 1/2" until its first check.)
    r = wait_row(d, "B", lambda r: r.get("WEIGHT") == "50" and r.get("STATE") == "UP", 2)
    t.check(r.get("WEIGHT") == "50" and r.get("STATE") == "UP", "show servers: B UP, WEIGHT 50",
            str(r))
    ra = row(d, "A")
    t.check(ra.get("WEIGHT") == "100", "show servers: A WEIGHT 100", str(ra))
    t.check(re.search(r"; agent: .*\b50%.*\(\d+ ms\), 0 failed\s*$", r.get("LAST CHECK", "")),
            "LAST CHECK ends with '; agent: 50% ... (N ms), 0 failed'", r.get("LAST CHECK"))
    t.check("agent" not in ra.get("LAST CHECK", ""), "A (no agent) has no agent part in LAST CHECK",
            ra.get("LAST CHECK"))
    t.check(metric(sport, "load_balancer_server_weight", "B") == 50,
            "load_balancer_server_weight{server=B} 50", str(metric(sport, "load_balancer_server_weight", "B")))
    t.check((agent_checks(sport) or 0) >= 1 and agent_failures(sport) == 0,
            "agent_checks_total >= 1 and agent_failures_total 0 for B",
            "%s / %s" % (agent_checks(sport), agent_failures(sport)))
    counts, _ = shares(port, 300)
    p = pct(counts)
    t.log("FIGURE agent 50%% on B: A %d, B %d of 300 (B %.1f %%)" % (counts.get("A", 0),
                                                                   counts.get("B", 0), p))
    t.check(abs(p - 100.0 / 3) <= 5, "50% on B: B gets a third of 300 sessions (+-5 points)",
            "%.1f %%" % p)
    got = {bytes(c.received) for c in ag.conns[:5]}
    t.check(got == {b"ping me"}, "agent.send 'ping me' reaches the agent as written (no newline)",
            str(got))
    n0, t0 = ag.count(), time.monotonic()
    time.sleep(2.0)
    n = ag.count() - n0
    t.log("FIGURE agent connections in 2.0 s at interval 200 ms: %d" % n)
    t.check(6 <= n <= 13, "the agent is asked about every 200 ms", "%d in %.1fs" % (n, time.monotonic() - t0))

    for line, want in (("READY,75%\n", "75"), ("foo 60% bar\n", "60"), ("100%\n", "100")):
        ag.set(line)
        r = wait_row(d, "B", lambda r: r.get("WEIGHT") == want, 2)
        t.check(r.get("WEIGHT") == want and r.get("STATE") == "UP",
                "agent says %r: WEIGHT %s, UP" % (line.strip(), want), str(r))
    counts, _ = shares(port, 100)
    t.check(abs(pct(counts) - 50) <= 3, "100%: back to 50/50", str(counts))
    wev = [e for e in d.health_events() if e.get("event") == "weight" and e.get("server") == "B"]
    t.check([e.get("weight") for e in wev] == [50, 75, 60, 100] and
            all(e.get("by") == "agent" for e in wev),
            "one event=weight by=agent per change: 50 75 60 100", str([e["_line"] for e in wev]))
    d.stop()


def test_drain_maint():
    ag = Agent("ready\n", name="agent-B")
    d, port, beh, bk, _ = start("ag-drain", {"B": ag})
    t.require(ag.wait_count(2, 3), "the agent is asked")
    time.sleep(0.5)
    nev = len(d.health_events())
    ag.set("drain\n")
    e = d.wait_event(ev_pred("drain", by="agent"), 2, nev)
    t.check(e is not None, "agent 'drain': event=drain ... by=agent", str(agent_events(d, nev)))
    r = wait_row(d, "B", lambda r: r.get("STATE") == "DRAIN", 2)
    t.check(r.get("STATE") == "DRAIN", "show servers: B DRAIN", str(r))
    t0 = time.monotonic()
    counts, got = shares(port, 40)
    time.sleep(max(0.0, 1.2 - (time.monotonic() - t0)))
    checks = len(t.conns_of_kind(bk["B"], "check", after=t0))
    t.log("FIGURE agent drain: A %d, B %d of 40; %d health checks reached B in %.1f s"
          % (counts.get("A", 0), counts.get("B", 0), checks, time.monotonic() - t0))
    t.check(counts.get("B", 0) == 0, "drain: B gets 0 new sessions", str(counts))
    t.check(checks >= 3, "drain: B's health checks go on", "%d checks" % checks)

    nev = len(d.health_events())
    ag.set("ready\n")
    e = d.wait_event(ev_pred("ready", by="agent"), 2, nev)
    t.check(e is not None, "agent 'ready': event=ready ... by=agent", str(agent_events(d, nev)))
    r = wait_row(d, "B", lambda r: r.get("STATE") == "UP", 2)
    counts, _ = shares(port, 40)
    t.check(r.get("STATE") == "UP" and abs(pct(counts) - 50) <= 5, "ready: B UP, 50/50 again",
            "%s %s" % (r.get("STATE"), counts))

    nev = len(d.health_events())
    ag.set("maint\n")
    e = d.wait_event(ev_pred("maint", by="agent"), 2, nev)
    t.check(e is not None, "agent 'maint': event=maint ... by=agent", str(agent_events(d, nev)))
    r = wait_row(d, "B", lambda r: r.get("STATE") == "MAINT", 2)
    t.check(r.get("STATE") == "MAINT", "show servers: B MAINT", str(r))
    time.sleep(0.5)            # a check under way may finish
    t0 = time.monotonic()
    a0 = ag.count()
    counts, _ = shares(port, 20)
    time.sleep(max(0.0, 1.2 - (time.monotonic() - t0)))
    n_checks = len([c for c in bk["B"].conns if c.t_accept >= t0 and getattr(c, "kind", None) != "client"])
    n_agent = ag.count() - a0
    t.log("FIGURE agent maint: %d connections to B's server and %d to its agent in 1.2 s"
          % (n_checks, n_agent))
    t.check(counts.get("B", 0) == 0, "maint: B gets 0 new sessions", str(counts))
    t.check(n_checks == 0, "maint: B's health checks stop", "%d connections" % n_checks)
    t.check(n_agent >= 3, "maint: the agent is still asked", "%d" % n_agent)

    nev = len(d.health_events())
    t0 = time.monotonic()
    ag.set("ready\n")
    e = d.wait_event(ev_pred("ready", by="agent"), 2, nev)
    t.check(e is not None, "agent 'ready' after maint: event=ready by=agent", str(agent_events(d, nev)))
    t.wait_until(lambda: len(t.conns_of_kind(bk["B"], "check", after=t0)) >= 2, 2)
    t.check(len(t.conns_of_kind(bk["B"], "check", after=t0)) >= 2, "ready: the health checks resume")
    r = wait_row(d, "B", lambda r: r.get("STATE") == "UP", 2)
    counts, _ = shares(port, 20)
    t.check(r.get("STATE") == "UP" and counts.get("B", 0) == 10, "ready: B UP, 10 of 20 sessions",
            "%s %s" % (r.get("STATE"), counts))
    d.stop()


def test_down_up():
    ag = Agent("up\n", name="agent-B")
    d, port, beh, bk, _ = start("ag-down", {"B": ag}, be={"slowstart": "4s"})
    t.require(ag.wait_count(2, 3), "the agent is asked")
    time.sleep(0.5)
    nev = len(d.health_events())
    ag.set("down#disk full\n")
    e = d.wait_event(ev_pred("down", by="agent"), 2, nev)
    t.require(e is not None, "agent 'down#disk full': event=down ... by=agent",
              str(agent_events(d, nev)))
    t.log("  " + e["_line"])
    t.check(e.get("reason") == "disk full" and e.get("backend") == "be" and
            e.get("addr") == bk["B"].address and isinstance(e.get("duration_ms"), int) and
            e.get("active") == 1 and e.get("backup") == 0,
            'event=down ... by=agent reason="disk full" duration_ms=N active=1 backup=0', e["_line"])
    r = wait_row(d, "B", lambda r: r.get("STATE") == "DOWN", 1)
    t.check(r.get("STATE") == "DOWN", "show servers: B DOWN", str(r))
    t0 = time.monotonic()
    counts, _ = shares(port, 20)
    time.sleep(max(0.0, 1.5 - (time.monotonic() - t0)))
    checks = t.conns_of_kind(bk["B"], "check", after=t0)
    r = row(d, "B")
    t.log("FIGURE agent down: A %d, B %d of 20; %d passing health checks in 1.5 s; B %s"
          % (counts.get("A", 0), counts.get("B", 0), len(checks), r.get("STATE")))
    t.check(counts.get("B", 0) == 0, "down: B gets 0 sessions", str(counts))
    t.check(len(checks) >= 3, "down: the health checks go on", str(len(checks)))
    t.check(r.get("STATE") == "DOWN", "down: passing health checks (rise 2) do not bring B UP",
            str(r))

    nev = len(d.health_events())
    ag.set("up\n")
    e = d.wait_event(ev_pred("up", by="agent"), 2, nev)
    t.check(e is not None, "agent 'up': event=up ... by=agent", str(agent_events(d, nev)))
    r = wait_row(d, "B", lambda r: r.get("STATE") == "UP", 1)
    w = r.get("WEIGHT", "")
    t.log("FIGURE agent up with slowstart 4s: B %s, WEIGHT %s right after" % (r.get("STATE"), w))
    t.check(r.get("STATE") == "UP", "up: B UP at once (its checks pass)", str(r))
    t.check(w.isdigit() and 7 <= int(w) < 60, "up after an agent down starts the slow-start ramp",
            "WEIGHT %s" % w)
    time.sleep(4.3)
    r = row(d, "B")
    counts, _ = shares(port, 40)
    t.check(r.get("WEIGHT") == "100" and counts.get("B", 0) == 20,
            "after the ramp: WEIGHT 100, 20 of 40 sessions", "%s %s" % (r.get("WEIGHT"), counts))

    for word in ("stopped", "fail"):
        nev = len(d.health_events())
        ag.set(word + "\n")
        e = d.wait_event(ev_pred("down", by="agent"), 2, nev)
        t.check(e is not None and e.get("reason") == word,
                "agent '%s': event=down by=agent reason=\"%s\"" % (word, word),
                str(e and e["_line"]))
        nev = len(d.health_events())
        ag.set("up\n")
        e = d.wait_event(ev_pred("up", by="agent"), 2, nev)
        t.check(e is not None, "agent 'up' after '%s': event=up by=agent" % word,
                str(agent_events(d, nev)))

    # up while the health checks fail: UP only when they pass again.
    nev = len(d.health_events())
    ag.set("down#maintenance window\n")
    t.require(d.wait_event(ev_pred("down", by="agent"), 2, nev) is not None, "agent down again")
    beh["B"].mode = "close"
    time.sleep(0.6)
    nev = len(d.health_events())
    ag.set("up\n")
    time.sleep(1.0)
    r = row(d, "B")
    ups = [e["_line"] for e in agent_events(d, nev) if e.get("event") == "up"]
    t.check(not r.get("STATE", "").startswith("UP") and not ups,
            "agent 'up' while the health checks fail: B stays DOWN", "%s %s" % (r, ups))
    beh["B"].mode = "ok"
    e = d.wait_event(ev_pred("up"), 2, nev)
    t.check(e is not None and e.get("by") != "agent" and e.get("check") == "smtp",
            "once the checks pass (rise 2) B is UP: event=up check=smtp (not by=agent)",
            str(e and e["_line"]))
    d.stop()


def test_failures():
    ag = Agent("50%\n", name="agent-B")
    d, port, beh, bk, sport = start("ag-fail", {"B": ag}, stats=True)
    r = wait_row(d, "B", lambda r: r.get("WEIGHT") == "50", 3)
    t.require(r.get("WEIGHT") == "50", "the agent's 50% applies", str(r))

    # Unreachable: the last good answer stays.
    f0 = agent_failures(sport) or 0
    nev = len(d.health_events())
    ag.close_port()
    t.wait_until(lambda: (agent_failures(sport) or 0) >= f0 + 3, 3, 0.1)
    f1 = agent_failures(sport) or 0
    r = row(d, "B")
    counts, _ = shares(port, 60)
    t.log("FIGURE agent unreachable: failures %d -> %d; B %s WEIGHT %s; LAST CHECK %r; B got %d of 60"
          % (f0, f1, r.get("STATE"), r.get("WEIGHT"), r.get("LAST CHECK"), counts.get("B", 0)))
    t.check(f1 >= f0 + 3, "unreachable: load_balancer_server_agent_failures_total grows",
            "%d -> %d" % (f0, f1))
    t.check(r.get("STATE") == "UP" and r.get("WEIGHT") == "50",
            "unreachable: B stays UP with the agent's last weight 50", str(r))
    t.check(abs(counts.get("B", 0) - 20) <= 3, "unreachable: B still gets a third", str(counts))
    lc = r.get("LAST CHECK", "")
    t.check("agent: failed: connection refused" in lc and (failed_count(lc) or 0) >= 3,
            "LAST CHECK says 'agent: failed: connection refused (...), N failed'", lc)
    t.check(not agent_events(d, nev), "unreachable: no health event", str(agent_events(d, nev)))
    ag.open_port()
    ag.set("100%\n")
    r = wait_row(d, "B", lambda r: r.get("WEIGHT") == "100", 3)
    t.require(r.get("WEIGHT") == "100", "the agent answers 100% again", str(r))

    bin_line = bytes(b for b in range(32) if b != 10) + b"\xff\xfe\x80\x7f" + b"\n"
    long_line = b"drain " + b"x" * 4993 + b"\n"
    assert len(long_line) == 5000
    cases = [
        ("timeout (accepts, says nothing)", dict(mode="silent"), "timeout"),
        ("closed without a line", dict(mode="close"), None),
        ("'hello world'", dict(reply=b"hello world\n"), None),
        ("binary bytes", dict(reply=bin_line), None),
        ("a 5000-byte line starting with 'drain'", dict(reply=long_line), None),
        ("'150%'", dict(reply=b"150%\n"), None),
        ("an empty line", dict(reply=b"\n"), None),
        ("a line of no known word ended by the close", dict(reply=b"bogus"), None),
    ]
    for label, kw, reason in cases:
        f0 = agent_failures(sport) or 0
        c0 = agent_checks(sport) or 0
        nev = len(d.health_events())
        t0 = time.monotonic()
        ag.set(**kw)
        t.wait_until(lambda: (agent_failures(sport) or 0) >= f0 + 2, 4, 0.1)
        f1 = agent_failures(sport) or 0
        c1 = agent_checks(sport) or 0
        r = row(d, "B")
        counts, _ = shares(port, 40)
        lc = r.get("LAST CHECK", "")
        t.log("FIGURE agent %s: failures %d -> %d, checks %d -> %d; B %s WEIGHT %s; B got %d of 40;"
              " LAST CHECK %r" % (label, f0, f1, c0, c1, r.get("STATE"), r.get("WEIGHT"),
                                  counts.get("B", 0), lc))
        t.check(f1 >= f0 + 2 and c1 >= c0 + 2, "%s: counted as failed agent checks" % label,
                "failures %d -> %d, checks %d -> %d" % (f0, f1, c0, c1))
        t.check(r.get("STATE") == "UP" and r.get("WEIGHT") == "100",
                "%s: B stays UP, WEIGHT 100" % label, str(r))
        t.check(abs(counts.get("B", 0) - 20) <= 2, "%s: shares stay 50/50" % label, str(counts))
        t.check(re.search(r"agent: failed", lc) and (failed_count(lc) or 0) >= f0 + 2 and
                (reason is None or reason in lc),
                "%s: LAST CHECK says 'agent: failed%s', with the count" %
                (label, ": " + reason if reason else ""), lc)
        t.check(not agent_events(d, nev), "%s: no health event" % label,
                str([e["_line"] for e in agent_events(d, nev)]))
        if kw.get("mode") == "silent":
            ended = [c.t_end - c.t_accept for c in ag.conns_since(t0) if c.t_end is not None]
            t.log("FIGURE agent silent: the balancer closed after %s s"
                  % ", ".join("%.2f" % x for x in ended[:5]))
            t.check(ended and all(0.35 <= x <= 1.5 for x in ended),
                    "timeout: the balancer gives up after about agent.timeout (500 ms)",
                    str(ended[:5]))
    ag.set("100%\n")
    t.wait_until(lambda: row(d, "B").get("LAST CHECK", "").find("agent: 100%") >= 0, 2)
    f1 = agent_failures(sport) or 0
    time.sleep(0.8)
    f2 = agent_failures(sport) or 0
    lc = row(d, "B").get("LAST CHECK", "")
    t.check(f2 == f1 and "agent: failed" not in lc,
            "a good answer again: no new failure, LAST CHECK shows the answer", "%d -> %d %r"
            % (f1, f2, lc))
    t.check(not ag.errors, "the scripted agent saw no error", str(ag.errors[:3]))
    d.stop()


def test_operator():
    ag = Agent("ready\n", name="agent-B")
    agc = Agent("drain\n", name="agent-C")
    cb = t.Backend(t.smtp_handler("C"), name="C")
    d, port, beh, bk, _ = start("ag-op", {"B": ag},
                                extra_servers=[("C", cb.address, {"weight": W, "disabled": True,
                                                                  "agent_port": agc.port})])
    t.require(ag.wait_count(2, 3), "the agent is asked")
    time.sleep(0.3)

    rc, out, err = d.ctl("drain be/B")
    t.require(rc == 0, "lbctl drain be/B", out + err)
    nev = len(d.health_events())
    a0 = ag.count()
    time.sleep(1.2)
    r = row(d, "B")
    counts, _ = shares(port, 20)
    t.log("FIGURE lbctl drain while the agent says ready (%d answers): B %s, %d of 20 sessions"
          % (ag.count() - a0, r.get("STATE"), counts.get("B", 0)))
    t.check(ag.count() - a0 >= 3, "the agent is still asked while drained by lbctl",
            str(ag.count() - a0))
    t.check(r.get("STATE") == "DRAIN" and counts.get("B", 0) == 0,
            "an lbctl drain is not undone by the agent's 'ready'", "%s %s" % (r, counts))
    t.check(not [e for e in agent_events(d, nev) if e.get("event") == "ready"],
            "no ready event while the operator's drain is in force",
            str([e["_line"] for e in agent_events(d, nev)]))

    ag.set("drain\n")
    time.sleep(0.6)
    nev = len(d.health_events())
    rc, out, err = d.ctl("enable be/B")
    t.check(rc == 0 and out.strip() == "ok: be/B is READY", "lbctl enable be/B", out + err)
    e = d.wait_event(ev_pred("drain", by="agent"), 2, nev)
    r = wait_row(d, "B", lambda r: r.get("STATE") == "DRAIN", 1)
    t.check(e is not None and r.get("STATE") == "DRAIN",
            "after enable the agent's words apply again: its 'drain' drains (event=drain by=agent)",
            "%s %s" % (r, [x["_line"] for x in agent_events(d, nev)]))
    ag.set("ready\n")
    r = wait_row(d, "B", lambda r: r.get("STATE") == "UP", 2)
    counts, _ = shares(port, 20)
    t.check(r.get("STATE") == "UP" and counts.get("B", 0) == 10, "agent 'ready': B UP, 10 of 20",
            "%s %s" % (r.get("STATE"), counts))

    # set weight wins over the agent's percentage until enable.
    ag.set("50%\n")
    r = wait_row(d, "B", lambda r: r.get("WEIGHT") == "50", 2)
    t.require(r.get("WEIGHT") == "50", "agent 50%: WEIGHT 50", str(r))
    nev = len(d.health_events())
    rc, out, err = d.ctl("set weight be/B 100")
    t.check(rc == 0 and out.strip().startswith("ok: be/B weight 100"), "lbctl set weight be/B 100",
            out + err)
    time.sleep(1.0)
    r = row(d, "B")
    counts, _ = shares(port, 60)
    t.log("FIGURE lbctl set weight 100 while the agent says 50%%: WEIGHT %s, B got %d of 60"
          % (r.get("WEIGHT"), counts.get("B", 0)))
    t.check(r.get("WEIGHT") == "100" and abs(counts.get("B", 0) - 30) <= 3,
            "an operator's set weight wins over the agent's 50%", "%s %s" % (r, counts))
    we = [e for e in agent_events(d, nev) if e.get("event") == "weight"]
    t.check(len(we) == 1 and we[0].get("weight") == 100 and "by" not in we[0],
            "set weight: event=weight ... weight=100 without by=", str([e["_line"] for e in we]))
    rc, out, err = d.ctl("enable be/B")
    t.check(rc == 0, "lbctl enable be/B", out + err)
    r = wait_row(d, "B", lambda r: r.get("WEIGHT") == "50", 1.5)
    counts, _ = shares(port, 60)
    t.check(r.get("WEIGHT") == "50" and abs(counts.get("B", 0) - 20) <= 3,
            "after enable: the configured weight times the agent's 50% again", "%s %s" % (r, counts))

    # disable stops the agent, enable resumes it.
    ag.set("ready\n")
    rc, out, err = d.ctl("disable be/B")
    t.require(rc == 0, "lbctl disable be/B", out + err)
    time.sleep(0.7)
    a0 = ag.count()
    time.sleep(1.2)
    a1 = ag.count()
    t.check(a1 == a0, "lbctl disable (MAINT): the agent is not asked", "%d connections" % (a1 - a0))
    rc, out, err = d.ctl("enable be/B")
    t.check(rc == 0, "lbctl enable be/B", out + err)
    t.check(ag.wait_count(a1 + 2, 2), "after enable the agent is asked again", str(ag.count() - a1))
    t.check(agc.count() == 0, "a server disabled = true in the configuration: its agent is never asked",
            str(agc.count()))
    d.stop()


def test_maxconn():
    ag = Agent("100%\n", name="agent-B")
    d, port, beh, bk, _ = start("ag-maxconn", {"B": ag}, be={"timeout_queue": "1s"})
    t.require(ag.wait_count(2, 3), "the agent is asked")

    def hold(n):
        held = []
        for _ in range(n):
            try:
                c, who = t.hold_session(H, port, timeout=3)
            except OSError:
                c, who = None, None
            held.append((c, who))
        names = [w for _, w in held]
        cur = row(d, "B").get("CUR")
        for c, _ in held:
            if c is not None:
                try:
                    c.send(b"QUIT\r\n")
                    c.read_to_eof(2)
                except OSError:
                    pass
                c.close()
        t.wait_until(lambda: row(d, "B").get("CUR") == "0", 2)
        return names, cur

    names, cur = hold(6)
    t.check(names.count("B") == 3, "without maxconn: 3 of 6 held sessions on B", str(names))
    ag.set("maxconn:1\n")
    n0 = ag.count()
    ag.wait_count(n0 + 3, 2)
    names, cur = hold(6)
    t.log("FIGURE agent maxconn:1: 6 held sessions went to %s; B's CUR %s" % (names, cur))
    t.check(names.count("B") == 1 and cur == "1", "maxconn:1: B holds exactly one session at a time",
            "%s CUR %s" % (names, cur))
    ag.set("maxconn:0\n")
    n0 = ag.count()
    ag.wait_count(n0 + 3, 2)
    names, cur = hold(6)
    t.check(names.count("B") == 3, "maxconn:0 lifts the limit: 3 of 6 on B", str(names))
    d.stop()


def test_backend_port():
    agp = Agent("50%\n", name="agent-backend")
    agq = Agent("drain\n", name="agent-B")
    d, port, beh, bk, _ = start("ag-port", {"B": agq}, agent={"port": agp.port})
    ra = wait_row(d, "A", lambda r: r.get("WEIGHT") == "50", 3)
    rb = wait_row(d, "B", lambda r: r.get("STATE") == "DRAIN", 3)
    counts, _ = shares(port, 20)
    t.log("FIGURE backend agent.port (50%%) and B's agent_port (drain): A %s/%s, B %s/%s, "
          "sessions %s; %d and %d agent connections" % (ra.get("STATE"), ra.get("WEIGHT"),
                                                       rb.get("STATE"), rb.get("WEIGHT"), counts,
                                                       agp.count(), agq.count()))
    t.check(ra.get("WEIGHT") == "50" and ra.get("STATE") == "UP",
            "A without agent_port is asked on the backend's agent.port (50%)", str(ra))
    t.check(rb.get("STATE") == "DRAIN", "B's agent_port overrides the backend's (its agent: drain)",
            str(rb))
    t.check(counts.get("A", 0) == 20, "all sessions to A", str(counts))
    d.stop()


# --------------------------------------------------------------------------
# HAProxy 2.6, the reference

HAPROXY_CFG = """global
  maxconn 1000
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind %(bind)s
  default_backend be
backend be
  balance roundrobin
  server A %(a)s weight 100
  server B %(b)s weight 100 agent-check agent-port %(agent)d agent-inter 200ms
"""


def test_haproxy():
    if not os.access(HAPROXY, os.X_OK):
        raise t.Skip("%s is not installed" % HAPROXY)
    ver = subprocess.run([HAPROXY, "-v"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=10).stdout.decode(errors="replace").splitlines()
    t.log("  %s" % (ver[0] if ver else "haproxy -v: nothing"))
    ag = Agent("50%\n", name="agent-B")
    bk = {n: t.Backend(t.smtp_handler(n), name=n) for n in "AB"}
    hport, lport = t.free_port(), t.free_port()
    hdir = t.tempdir("lbtest-haproxy-")
    cfg = os.path.join(hdir, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(HAPROXY_CFG % {"bind": t.addr(H, hport), "a": bk["A"].address,
                               "b": bk["B"].address, "agent": ag.port})
    herr = open(os.path.join(hdir, "haproxy.out"), "wb")
    hp = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdin=subprocess.DEVNULL,
                          stdout=herr, stderr=subprocess.STDOUT, cwd=hdir)
    t.register_proc(hp, "haproxy")
    # The balancer: no health check (the agent runs without one).
    text = t.make_config("%s:%d" % (H, lport),
                         [("A", bk["A"].address, {"weight": W}),
                          ("B", bk["B"].address, {"weight": W, "agent_port": ag.port})],
                         be={"agent": {"interval": "200ms", "timeout": "500ms"}})
    d = t.Daemon(text, [(H, lport)], name="ag-vs-haproxy").start()
    t.require(t.wait_until(lambda: hp.poll() is not None or t.is_listening(H, hport), 5) and
              hp.poll() is None, "haproxy runs and listens",
              open(os.path.join(hdir, "haproxy.out"), errors="replace").read()[-2000:])

    table = []
    for word, n, want in (("50%", 300, 100.0 / 3), ("drain", 100, 0.0), ("ready", 150, 100.0 / 3),
                          ("100%", 100, 50.0)):
        ag.set(word + "\n")
        n0 = ag.count()
        ag.wait_count(n0 + 8, 4)     # both balancers asked a few times
        time.sleep(0.3)
        ours, _ = shares(lport, n)
        theirs, _ = shares(hport, n)
        table.append((word, n, pct(ours), pct(theirs), want, row(d, "B")))
    t.log("FIGURE B's share of new sessions, the same scripted agent behind both balancers:")
    t.log("FIGURE   %-8s %9s  %14s  %14s  %s" % ("agent", "sessions", "load-balancer", "HAProxy 2.6",
                                                "expected"))
    for word, n, po, ph, want, r in table:
        t.log("FIGURE   %-8s %9d  %13.1f%%  %13.1f%%  %.1f%%" % (word, n, po, ph, want))
    for word, n, po, ph, want, r in table:
        t.check(abs(po - want) <= 5, "load-balancer, agent '%s': B gets %.0f %% (+-5)" % (word, want),
                "%.1f %% (B: %s)" % (po, r))
        t.check(abs(ph - want) <= 5, "HAProxy, agent '%s': B gets %.0f %% (+-5)" % (word, want),
                "%.1f %%" % ph)
        t.check(abs(po - ph) <= 5, "agent '%s': the balancer and HAProxy agree within 5 points" % word,
                "%.1f %% vs %.1f %%" % (po, ph))
    t.kill_proc(hp)
    herr.close()
    with open(os.path.join(hdir, "haproxy.out"), errors="replace") as f:
        for line in f.read().splitlines()[-10:]:
            t.log("  haproxy| " + line)
    d.stop()


ALL = [test_percent, test_drain_maint, test_down_up, test_failures, test_operator,
       test_maxconn, test_backend_port, test_haproxy]

if __name__ == "__main__":
    # Arguments: names of sub-tests to run (default: all).
    t.main([f for f in ALL if not sys.argv[1:] or f.__name__ in sys.argv[1:]], timeout=170)
