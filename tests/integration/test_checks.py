#!/usr/bin/env python3
"""Health checks (load-balancer.conf(5), HEALTH CHECKS) and the health log
(load-balancer.conf(5), LOGS), against the switchable Python SMTP server of
lbtest (health_handler):

- every failure mode marks the server DOWN at its first check, with the
  right step= and code=/reply= or reason= in the health log: 554 greeting,
  421 to HELO, silence, close after accept, refused port, a 1 MB line,
  a reply without a numeric code, unasked bytes after the greeting;
  a postscreen-style multi-line 220- banner passes; ehlo = true sends EHLO;
- STARTTLS: not offered, garbage or close instead of a TLS handshake,
  tls_verify with a CA made here: valid certificate (by name and by IP
  address) passes, expired / wrong name / unknown CA fail at step=tls;
  a certificate expiring within cert_expiry_warn logs event=cert_expiry;
- healing: UP again after rise passes (event=up successes=rise downtime_s);
- traffic follows state: no session to a DOWN server, backup servers take
  over, no server UP -> 421 and end=no_server (backend_down/backend_up),
  on_marked_down = "shutdown-sessions" -> end=server_down;
- the acceptance scenario (3 servers, interval 500ms, fall 3, rise 2,
  HELO answered 421) with timings, and lbctl health-report on its log."""

import datetime
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"
TLS_NAME = "mx.lbtest.example"


def fe(name, port):
    return {"name": "fe_" + name, "bind": "%s:%d" % (H, port), "backend": name,
            "timeout_client": "30s"}


def hc(**kw):
    d = {"type": "smtp", "helo": "noor.net", "interval": "400ms", "rise": 2, "fall": 3}
    d.update(kw)
    return d


def events_for(d, server, kind=None):
    return [e for e in d.health_events() if e.get("server") == server and
            (kind is None or e.get("event") == kind)]


def check_conns(b):
    """Connections of backend b that were health checks (HELO noor.net)."""
    return t.conns_of_kind(b, "check")


# --------------------------------------------------------------------------


def test_failure_modes():
    ca = t.TestCA()
    now = datetime.datetime.now(datetime.timezone.utc)
    ctx_ok = ca.server_context(TLS_NAME)
    ctx_expired = ca.server_context(TLS_NAME, start=now - datetime.timedelta(days=60),
                                    end=now - datetime.timedelta(days=2))
    ctx_wrong = ca.server_context("other.lbtest.example")
    ctx_ip = ca.server_context("127.0.0.1", san="IP:127.0.0.1")
    ctx_soon = ca.server_context(TLS_NAME, end=now + datetime.timedelta(days=7, hours=12))
    other_ca = t.TestCA("another CA")
    ctx_unknown = other_ca.server_context(TLS_NAME)

    plain_modes = ["ok", "multiline", "greet554", "helo421", "silent", "close", "refuse",
                   "longline", "nocode", "extra"]
    beh, be = {}, {}
    for m in plain_modes:
        beh[m] = t.SmtpBehavior(m, mode=m)
        be[m] = t.Backend(t.health_handler(beh[m]), name=m)
    # A port that refuses: bind it, then close the listener.
    be["refuse"].stop()
    # A reply text with quotes and backslashes: logfmt escaping.
    beh["quoted"] = t.SmtpBehavior("quoted", mode="heloreply")
    beh["quoted"].helo_reply = '550 5.7.1 "bad" \\ host=x'
    be["quoted"] = t.Backend(t.health_handler(beh["quoted"]), name="quoted")
    plain_modes.append("quoted")
    # type = "tcp": a connect is a pass, whatever the server says.
    for n, m in (("tcp_silent", "silent"), ("tcp_554", "greet554"), ("tcp_refuse", "refuse")):
        beh[n] = t.SmtpBehavior(n, mode=m)
        be[n] = t.Backend(t.health_handler(beh[n]), name=n)
    be["tcp_refuse"].stop()
    ehlo_beh = t.SmtpBehavior("ehlo_ok")
    be["ehlo_ok"] = t.Backend(t.health_handler(ehlo_beh), name="ehlo_ok")
    tls_cases = {  # server -> (mode, context)
        "tls_ok": ("ok", ctx_ok),
        "tls_nostarttls": ("nostarttls", ctx_ok),
        "tls_garbage": ("tlsgarbage", ctx_ok),
        "tls_close": ("tlsclose", ctx_ok),
        "tls_expired": ("ok", ctx_expired),
        "tls_wrongname": ("ok", ctx_wrong),
        "tls_unknownca": ("ok", ctx_unknown),
    }
    for n, (m, ctx) in tls_cases.items():
        beh[n] = t.SmtpBehavior(n, mode=m, tls=ctx)
        be[n] = t.Backend(t.health_handler(beh[n]), name=n)
    for n, ctx in (("ip_ok", ctx_ip), ("ip_dnsonly", ctx_ok), ("soon", ctx_soon)):
        beh[n] = t.SmtpBehavior(n, tls=ctx)
        be[n] = t.Backend(t.health_handler(beh[n]), name=n)

    ports = {n: t.free_port() for n in ("plain", "ehlo", "tls", "tlsip", "warn", "tcp")}
    tls_hc = dict(starttls=True, tls_verify=True, tls_ca_file=ca.cert, tls_servername=TLS_NAME)
    pairs = [
        (fe("plain", ports["plain"]),
         {"name": "plain", "timeout_connect": "2s", "health_check": hc(),
          "servers": [(m, be[m].address) for m in plain_modes]}),
        (fe("tcp", ports["tcp"]),
         {"name": "tcp", "health_check": {"type": "tcp", "interval": "400ms", "rise": 2, "fall": 3},
          "servers": [(n, be[n].address) for n in ("tcp_silent", "tcp_554", "tcp_refuse")]}),
        (fe("ehlo", ports["ehlo"]),
         {"name": "ehlo", "health_check": hc(ehlo=True), "servers": [("ehlo_ok", be["ehlo_ok"].address)]}),
        (fe("tls", ports["tls"]),
         {"name": "tls", "health_check": hc(**tls_hc),
          "servers": [(n, be[n].address) for n in tls_cases]}),
        (fe("tlsip", ports["tlsip"]),
         {"name": "tlsip", "health_check": hc(starttls=True, tls_verify=True, tls_ca_file=ca.cert),
          "servers": [(n, be[n].address) for n in ("ip_ok", "ip_dnsonly")]}),
        (fe("warn", ports["warn"]),
         {"name": "warn", "health_check": hc(cert_expiry_warn="30d", **tls_hc),
          "servers": [("soon", be["soon"].address)]}),
    ]
    text = t.make_config_multi(pairs)
    d = t.Daemon(text, [(H, p) for p in ports.values()], name="modes").start()
    t0 = time.monotonic()

    failing = ["greet554", "helo421", "silent", "close", "refuse", "longline", "nocode", "extra",
               "tls_nostarttls", "tls_garbage", "tls_close", "tls_expired", "tls_wrongname",
               "tls_unknownca", "ip_dnsonly", "quoted", "tcp_refuse"]
    passing = ["ok", "multiline", "ehlo_ok", "tls_ok", "ip_ok", "soon", "tcp_silent", "tcp_554"]

    def all_down():
        downs = {e.get("server") for e in d.health_events() if e.get("event") == "down"}
        return set(failing) <= downs
    t.wait_until(all_down, 8.0, 0.05)
    el = time.monotonic() - t0
    # Let the passing servers run a few more checks.
    time.sleep(max(0, 2.0 - el))
    ev = d.health_events()
    for e in ev:
        t.log("  | " + e["_line"])
    t.check(all(t.HEALTH_TS_RE.match(e["ts"]) for e in ev),
            "every health log line starts with an RFC 3339 UTC timestamp with ms",
            str([e["ts"] for e in ev if not t.HEALTH_TS_RE.match(e["ts"])][:3]))

    def down(server):
        ds = [e for e in ev if e.get("server") == server and e.get("event") == "down"]
        t.check(ds, "%s: marked DOWN at its first check (event=down)" % server)
        return ds[0] if ds else {}

    def expect(server, step, code=None, reply=None, reason=None, reason_any=None):
        e = down(server)
        if not e:
            return e
        t.check(e.get("step") == step, "%s: step=%s" % (server, step), e.get("_line", ""))
        if code is not None:
            t.check(e.get("code") == code, "%s: code=%d" % (server, code), str(e.get("code")))
        if reply is not None:
            t.check(reply in str(e.get("reply", "")), "%s: reply text %r" % (server, reply),
                    repr(e.get("reply")))
        if reason is not None:
            t.check(e.get("reason") == reason, "%s: reason=%r" % (server, reason),
                    repr(e.get("reason")))
        if reason_any is not None:
            r = str(e.get("reason", "")).lower()
            t.check(any(w in r for w in reason_any),
                    "%s: reason mentions %s" % (server, " or ".join(reason_any)), repr(e.get("reason")))
        t.check(e.get("addr") == be[server].address, "%s: addr=%s" % (server, be[server].address),
                str(e.get("addr")))
        want = "tcp" if server.startswith("tcp_") else "smtp"
        t.check(e.get("check") == want, "%s: check=%s" % (server, want), str(e.get("check")))
        t.check(isinstance(e.get("duration_ms"), int), "%s: duration_ms=N" % server,
                str(e.get("duration_ms")))
        t.check(isinstance(e.get("active"), int) and isinstance(e.get("backup"), int),
                "%s: active=N backup=N" % server)
        return e

    expect("greet554", "greeting", code=554, reply="not available")
    expect("helo421", "helo", code=421, reply="4.7.0 try again later")
    expect("silent", "greeting", reason="timeout")
    expect("close", "greeting", reason="connection closed")
    expect("refuse", "connect", reason="connection refused")
    expect("longline", "greeting", reason="reply too long")
    expect("nocode", "greeting", reason="bad reply")
    e = down("extra")
    t.check(e.get("reason") == "bad reply", "extra: unasked bytes after the greeting: reason=\"bad reply\"",
            e.get("_line", ""))
    expect("quoted", "helo", code=550, reply='5.7.1 "bad" \\ host=x')
    expect("tcp_refuse", "connect", reason="connection refused")
    expect("tls_nostarttls", "starttls", reason="STARTTLS not offered")
    expect("tls_garbage", "tls")
    expect("tls_close", "tls")
    expect("tls_expired", "tls", reason_any=["expired"])
    expect("tls_wrongname", "tls", reason_any=["hostname", "mismatch"])
    expect("tls_unknownca", "tls", reason_any=["issuer", "verify", "self-signed", "unknown ca"])
    expect("ip_dnsonly", "tls", reason_any=["mismatch", "ip address", "hostname"])
    for n in ("tls_garbage", "tls_close", "tls_expired", "tls_wrongname"):
        e = events_for(d, n, "down")
        if e:
            t.check("code" not in e[0] and e[0].get("reason"),
                    "%s: a TLS failure has a reason and no code" % n, e[0]["_line"])

    # The first failures above are the first check: failures=1.
    e = events_for(d, "helo421", "down")
    if e:
        t.check(e[0].get("failures") == 1, "helo421: DOWN at once on the first check (failures=1)",
                str(e[0].get("failures")))

    for n in passing:
        bad = [e for e in ev if e.get("server") == n and e.get("event") in ("down", "fail")]
        t.check(not bad, "%s: never fails (stays UP)" % n, bad[0]["_line"] if bad else "")
        if n.startswith("tcp_"):
            nc = len(be[n].conns)
            t.check(nc >= 2 and all(not getattr(c, "verbs", []) for c in be[n].conns),
                    "%s: type=tcp: connects only, sends nothing (%d checks)" % (n, nc),
                    str([getattr(c, "verbs", None) for c in be[n].conns][:3]))
            continue
        nc = len(check_conns(be[n]))
        t.check(nc >= 2, "%s: checked repeatedly (%d check sessions in %.1fs)" % (n, nc, 2.0), str(nc))

    # The dialogue of the good checks: HELO noor.net (EHLO with ehlo=true), QUIT.
    for n in ("ok", "multiline"):
        cs = [c for c in check_conns(be[n]) if c.closed]
        t.check(cs and all(c.verbs[:2] == ["HELO", "QUIT"] and c.helo == "noor.net" for c in cs),
                "%s: checks say HELO noor.net then QUIT" % n, str([c.verbs for c in cs][:3]))
    cs = [c for c in check_conns(be["ehlo_ok"]) if c.closed]
    t.check(cs and all(c.verbs[:2] == ["EHLO", "QUIT"] and c.helo == "noor.net" for c in cs),
            "ehlo = true: checks say EHLO noor.net then QUIT", str([c.verbs for c in cs][:3]))
    for n in ("tls_ok", "ip_ok", "soon"):
        cs = [c for c in check_conns(be[n]) if c.closed]
        t.check(cs and all(c.verbs[:4] == ["EHLO", "STARTTLS", "EHLO", "QUIT"] and c.tls for c in cs),
                "%s: STARTTLS checks: EHLO, STARTTLS, TLS, EHLO, QUIT" % n,
                str([(c.verbs, c.tls) for c in cs][:3]))
    # No check before the greeting: the first verb comes after the 220.
    greet554 = [c for c in be["greet554"].conns]
    t.check(greet554 and all("HELO" not in getattr(c, "verbs", []) for c in greet554),
            "554 greeting: no HELO is sent after it", str([getattr(c, "verbs", None) for c in greet554][:3]))

    # Certificate expiry within cert_expiry_warn = 30d: one cert_expiry event.
    ce = [e for e in ev if e.get("event") == "cert_expiry"]
    ces = [e for e in ce if e.get("server") == "soon"]
    t.check(len(ces) == 1, "cert expiring in 7.5 days, warn 30d: one event=cert_expiry (at most once a day)",
            "%d: %s" % (len(ces), [e["_line"] for e in ce]))
    if ces:
        e = ces[0]
        t.check(e.get("backend") == "warn" and e.get("addr") == be["soon"].address,
                "cert_expiry: backend= and addr=", e["_line"])
        t.check(e.get("days_left") in (7, 8), "cert_expiry: days_left=7 (or 8)", str(e.get("days_left")))
        want = (now + datetime.timedelta(days=7, hours=12)).strftime("%Y-%m-%dT")
        t.check(str(e.get("not_after", "")).startswith(want) and str(e.get("not_after")).endswith("Z"),
                "cert_expiry: not_after=%s...Z" % want, str(e.get("not_after")))
        t.check(TLS_NAME in str(e.get("subject", "")), "cert_expiry: subject names %s" % TLS_NAME,
                str(e.get("subject")))
    t.check(not [e for e in ce if e.get("server") != "soon"],
            "no cert_expiry for certificates valid 365 days (default warn 14d)",
            str([e["_line"] for e in ce if e.get("server") != "soon"]))

    # -F: the same events on stderr, without the timestamp.
    se = d.stderr_events()
    n_file = len([e for e in ev if e.get("event") == "down"])
    n_err = len([e for e in se if e.get("event") == "down"])
    t.check(n_err >= n_file > 0, "-F: the down events also appear on stderr", "%d vs %d" % (n_err, n_file))

    # The daemon survived all that and still serves through the good servers.
    t.check(d.alive(), "the daemon survives (1 MB line, garbage TLS, ...)")
    names = [t.client_session(H, ports["plain"])[0] for _ in range(4)]
    t.log("  4 sessions through the plain backend went to %s" % names)
    t.check(set(names) <= {"ok", "multiline"} and None not in names,
            "sessions go only to the UP servers (ok, multiline)", str(names))
    names = [t.client_session(H, ports["tls"])[0] for _ in range(2)]
    t.check(names == ["tls_ok", "tls_ok"], "TLS backend: sessions go to tls_ok only", str(names))
    d.stop()


# --------------------------------------------------------------------------


def test_healing():
    beh = t.SmtpBehavior("S", mode="helo421")
    b = t.Backend(t.health_handler(beh), name="S")
    port = t.free_port()
    text = t.make_config("%s:%d" % (H, port), [("S", b.address)],
                         be={"health_check": hc(interval="300ms", rise=3, fall=2)})
    d = t.Daemon(text, [(H, port)], name="heal").start()
    e = d.wait_event(lambda e: e.get("event") == "down" and e.get("server") == "S", 4)
    t.check(e is not None, "a server answering 421 from the start is DOWN after its first check")
    e2 = d.wait_event(lambda e: e.get("event") == "backend_down", 2)
    t.check(e2 is not None and e2.get("backend") == "be" and e2.get("active") == 0,
            "event=backend_down backend=be active=0", e2["_line"] if e2 else "")
    # No server: the client gets the 421 unavailable_reply.
    name, ban, c = t.client_session(H, port)
    t.check(ban == t.DEFAULT_UNAVAILABLE, "no server UP: the client gets the 421 unavailable_reply",
            repr(ban))
    s = d.session_for(c.local_port)
    t.check(s is not None and s.get("end") == "no_server", "end=no_server", str(s))

    nchk = len(check_conns(b))
    time.sleep(0.5)
    beh.mode = "ok"
    t_heal = time.monotonic()
    n0 = len(d.health_events())
    up = d.wait_event(lambda e: e.get("event") == "up" and e.get("server") == "S", 5, since=n0)
    el = time.monotonic() - t_heal
    t.log("  healed at +0; event=up seen after %.2fs: %s" % (el, up and up["_line"]))
    if t.check(up is not None, "after healing, event=up"):
        t.check(up.get("successes") == 3, "up: successes=3 (= rise)", str(up.get("successes")))
        t.check(isinstance(up.get("downtime_s"), int) and up["downtime_s"] >= 0,
                "up: downtime_s=N", str(up.get("downtime_s")))
        t.check(up.get("check") == "smtp" and isinstance(up.get("duration_ms"), int),
                "up: check=smtp duration_ms=N", up["_line"])
        t.check(up.get("active") == 1 and up.get("backup") == 0, "up: active=1 backup=0", up["_line"])
        ok_checks = [c for c in check_conns(b)[nchk:] if c.mode == "ok"]
        t.check(len(ok_checks) >= 3, "at least rise=3 passing checks before event=up",
                str(len(ok_checks)))
        t.check(el < 3.0, "UP within 3 passing checks of 300ms (%.2fs)" % el)
    bu = d.wait_event(lambda e: e.get("event") == "backend_up", 2, since=n0)
    t.check(bu is not None and bu.get("backend") == "be" and bu.get("active") == 1,
            "event=backend_up backend=be active=1", bu["_line"] if bu else "")
    name, ban, c = t.client_session(H, port)
    t.check(name == "S", "after event=up sessions reach the server again", repr(ban))
    d.stop()


# --------------------------------------------------------------------------


def test_maintenance_not_checked():
    """A server in maintenance (disabled = true, and kept so by a reload) is
    not checked: no check connection, no health event, until enable, which
    checks it at once."""
    beh = t.SmtpBehavior("M", mode="helo421")   # would go DOWN if checked
    bm = t.Backend(t.health_handler(beh), name="M")
    bo = t.Backend(t.health_handler(t.SmtpBehavior("O")), name="O")
    port = t.free_port()

    def conf():
        return t.make_config("%s:%d" % (H, port),
                             [("M", bm.address, {"disabled": True}), ("O", bo.address)],
                             be={"health_check": hc(interval="200ms")})
    text = conf()
    d = t.Daemon(text, [(H, port)], name="maint").start()
    time.sleep(1.0)
    rc, out, err = d.ctl("reload")
    t.check(rc == 0, "lbctl reload", out + err)
    time.sleep(1.0)
    t.check(len(check_conns(bo)) >= 5, "O (ready) is checked every 200 ms",
            "%d checks" % len(check_conns(bo)))
    t.check(len(check_conns(bm)) == 0,
            "M (disabled) got no check in 2 s, across a reload",
            "%d checks" % len(check_conns(bm)))
    t.check(events_for(d, "M", "down") == [] and events_for(d, "M", "fail") == [],
            "no health event for M", str([e["_line"] for e in events_for(d, "M")]))
    rows = t.parse_table(d.ctl("show servers")[1])
    m = [r for r in rows if r.get("SERVER") == "M"]
    t.check(m and m[0].get("STATE") == "MAINT", "M is MAINT", str(m))
    n0 = len(d.health_events())
    rc, out, err = d.ctl("enable be/M")
    t.check(rc == 0, "lbctl enable be/M", out + err)
    e = d.wait_event(lambda e: e.get("event") == "down" and e.get("server") == "M", 3,
                     since=n0)
    t.check(e is not None and e.get("step") == "helo",
            "after enable M is checked at once (and its 421 to HELO makes it DOWN)",
            e["_line"] if e else "")
    d.stop()


def test_intervals():
    """interval while UP, downinter while DOWN, each plus <= 5% jitter; the
    first checks spread over the first interval, not all at once."""
    names = ["up1", "up2", "up3", "up4", "up5", "down1"]
    beh = {n: t.SmtpBehavior(n) for n in names}
    beh["down1"].mode = "greet554"
    bk = {n: t.Backend(t.health_handler(beh[n]), name=n) for n in names}
    port = t.free_port()
    text = t.make_config("%s:%d" % (H, port), [(n, bk[n].address) for n in names],
                         be={"health_check": hc(interval="600ms", downinter="1500ms")})
    d = t.Daemon(text, [(H, port)], name="intervals")
    t0 = time.monotonic()
    d.start()
    time.sleep(4.2)
    d.stop()

    def times(n):
        with bk[n].lock:
            return [c.t_accept - t0 for c in bk[n].conns]
    first = {n: times(n)[0] for n in names if times(n)}
    t.log("  first check of each server (s after start): %s"
          % " ".join("%s=%.2f" % (n, v) for n, v in sorted(first.items())))
    t.check(len(first) == len(names) and max(first.values()) <= 1.0,
            "every server is checked within the first interval (600ms)", str(first))
    ups = sorted(first[n] for n in names if n.startswith("up") and n in first)
    t.check(len(ups) >= 2 and ups[-1] - ups[0] >= 0.1,
            "the first checks are spread out (not all at once)", "spread %.3fs" % (ups[-1] - ups[0] if ups else 0))
    for n in ("up1", "up2"):
        ts = times(n)
        gaps = [b - a for a, b in zip(ts, ts[1:])]
        t.log("  %s: %d checks, gaps %s" % (n, len(ts), " ".join("%.3f" % g for g in gaps)))
        t.check(gaps and all(0.55 <= g <= 0.8 for g in gaps),
                "%s UP: checks every 600ms (+<=5%% jitter)" % n, str(["%.3f" % g for g in gaps]))
    ts = times("down1")
    gaps = [b - a for a, b in zip(ts, ts[1:])]
    t.log("  down1: %d checks, gaps %s" % (len(ts), " ".join("%.3f" % g for g in gaps)))
    t.check(gaps and all(1.4 <= g <= 1.75 for g in gaps),
            "down1 DOWN: checks every downinter 1500ms", str(["%.3f" % g for g in gaps]))


# --------------------------------------------------------------------------


def test_traffic_follows_state():
    names = ["A", "B", "C", "D"]
    beh = {n: t.SmtpBehavior(n) for n in names}
    be = {n: t.Backend(t.health_handler(beh[n]), name=n) for n in names}
    port = t.free_port()
    text = t.make_config("%s:%d" % (H, port),
                         [("A", be["A"].address), ("B", be["B"].address), ("C", be["C"].address),
                          ("D", be["D"].address, {"backup": True})],
                         be={"on_marked_down": "shutdown-sessions", "timeout_server": "30s",
                             "health_check": hc(interval="300ms", rise=2, fall=1)},
                         fe={"timeout_client": "30s"})
    d = t.Daemon(text, [(H, port)], name="traffic").start()
    time.sleep(0.8)   # first checks done
    got = [t.client_session(H, port)[0] for _ in range(6)]
    t.log("  all UP: 6 sessions -> %s" % got)
    t.check(sorted(got) == ["A", "A", "B", "B", "C", "C"], "all UP: round robin over A B C, not the backup D",
            str(got))

    # Hold one established session on A, then make A fail.
    held = None
    for _ in range(6):
        n, _b, c = t.client_session(H, port, hold=True)
        if n == "A":
            held = c
            break
        c.close()
    t.require(held is not None, "a session held on A")
    n0 = len(d.health_events())
    beh["A"].mode = "helo421"
    t_fail = time.monotonic()
    e = d.wait_event(lambda e: e.get("event") == "down" and e.get("server") == "A", 3, since=n0)
    t.require(e is not None, "A answering 421 goes DOWN (fall=1)")
    t_down = time.monotonic()
    t.log("  A DOWN %.2fs after it started failing: %s" % (t_down - t_fail, e["_line"]))
    t.check(e.get("active") == 2 and e.get("backup") == 1, "down: active=2 backup=1", e["_line"])
    # shutdown-sessions: the held session is closed at once.
    data, eof = held.read_to_eof(3)
    t.check(eof, "on_marked_down=shutdown-sessions: the held session on A is closed",
            "%r eof=%s" % (data, eof))
    held.close()
    s = d.session_for(held.local_port, 3)
    t.check(s is not None and s.get("end") == "server_down", "its session line says end=server_down", str(s))

    got = [t.client_session(H, port)[0] for _ in range(8)]
    t.log("  A DOWN: 8 sessions -> %s" % got)
    t.check(sorted(set(got)) == ["B", "C"], "A DOWN: sessions go to B and C only", str(got))
    late = t.conns_of_kind(be["A"], "client", after=t_down + 0.05)
    t.check(not late, "A receives no client session after it is DOWN", str(len(late)))

    # B and C down too: the backup D takes over.
    beh["B"].mode = "greet554"
    beh["C"].mode = "silent"
    ok = d.wait_event(lambda e: e.get("event") == "down" and e.get("server") == "C", 4, since=n0) and \
        d.wait_event(lambda e: e.get("event") == "down" and e.get("server") == "B", 1, since=n0)
    t.require(ok, "B (554 greeting) and C (silent) go DOWN")
    time.sleep(0.1)
    got = [t.client_session(H, port)[0] for _ in range(4)]
    t.log("  A B C DOWN: 4 sessions -> %s" % got)
    t.check(got == ["D"] * 4, "no active server UP: the backup D takes every session", str(got))

    # D down too: no server; 421 and end=no_server.
    n1 = len(d.health_events())
    beh["D"].mode = "close"
    bd = d.wait_event(lambda e: e.get("event") == "backend_down", 3, since=n1)
    t.check(bd is not None and bd.get("backend") == "be" and bd.get("active") == 0
            and bd.get("backup") == 0, "event=backend_down backend=be active=0 backup=0",
            bd["_line"] if bd else "")
    name, ban, c = t.client_session(H, port)
    t.check(ban == t.DEFAULT_UNAVAILABLE, "no server UP: 421 unavailable_reply", repr(ban))
    s = d.session_for(c.local_port, 3)
    t.check(s is not None and s.get("end") == "no_server", "end=no_server", str(s))
    r = d.ctl("check")
    t.check(r[0] == 1 and "error: backend be has no server UP" in r[2],
            "lbctl check: exit 1, 'error: backend be has no server UP'", repr(r))

    # Heal everything: backend_up, sessions back to the actives.
    n2 = len(d.health_events())
    for n in names:
        beh[n].mode = "ok"
    bu = d.wait_event(lambda e: e.get("event") == "backend_up", 3, since=n2)
    t.check(bu is not None and bu.get("backend") == "be", "event=backend_up after healing",
            bu["_line"] if bu else "")
    t.wait_until(lambda: len([e for e in d.health_events()[n2:] if e.get("event") == "up"]) >= 4, 4)
    got = [t.client_session(H, port)[0] for _ in range(6)]
    t.log("  healed: 6 sessions -> %s" % got)
    t.check(sorted(got) == ["A", "A", "B", "B", "C", "C"], "healed: round robin over A B C again",
            str(got))
    r = d.ctl("check")
    t.check(r[0] == 0 and r[1].strip() == "ok", "lbctl check: ok, exit 0", repr(r))
    d.stop()


# --------------------------------------------------------------------------


def test_acceptance():
    """Acceptance: 3 servers, interval 500ms, fall 3, rise 2; a server
    starting to answer HELO with 421 is DOWN within 2 s, gets no new session
    while DOWN, is UP again within 1.5 s of healing."""
    names = ["f1", "f2", "f3"]
    beh = {n: t.SmtpBehavior(n) for n in names}
    be = {n: t.Backend(t.health_handler(beh[n]), name=n) for n in names}
    port = t.free_port()
    text = t.make_config("%s:%d" % (H, port), [(n, be[n].address) for n in names],
                         be={"health_check": hc(interval="500ms", rise=2, fall=3)})
    d = t.Daemon(text, [(H, port)], name="accept").start()
    time.sleep(1.2)

    stop = threading.Event()
    results = []   # (monotonic time, server name or None)

    def trickle():
        while not stop.is_set():
            try:
                n = t.client_session(H, port, timeout=3)[0]
            except OSError:
                n = None
            results.append((time.monotonic(), n))
            stop.wait(0.03)
    th = threading.Thread(target=trickle, daemon=True)
    th.start()
    time.sleep(0.5)
    n0 = len(d.health_events())
    beh["f2"].mode = "helo421"
    t_fail = time.monotonic()
    e = d.wait_event(lambda e: e.get("event") == "down" and e.get("server") == "f2", 4, since=n0, step=0.01)
    t_down = time.monotonic()
    if not t.check(e is not None, "f2 answering HELO with 421 is marked DOWN"):
        stop.set()
        th.join(5)
        return
    t_detect = t_down - t_fail
    t.log("  DOWN detection: %.2fs  (%s)" % (t_detect, e["_line"]))
    t.check(t_detect <= 2.0, "DOWN within 2 s (%.2fs)" % t_detect)
    t.check(e.get("step") == "helo" and e.get("code") == 421 and
            e.get("reply") == "4.7.0 try again later",
            "event=down ... step=helo code=421 reply=\"4.7.0 try again later\"", e["_line"])
    t.check(e.get("failures") == 3 and e.get("active") == 2 and e.get("backup") == 0,
            "failures=3 active=2 backup=0", e["_line"])
    fails = [x for x in d.health_events()[n0:] if x.get("server") == "f2" and x.get("event") == "fail"]
    t.check([x.get("failures") for x in fails] == [1, 2],
            "two event=fail (failures=1, 2) before the down", str([x["_line"] for x in fails]))
    if fails:
        t.check(fails[0].get("step") == "helo" and fails[0].get("code") == 421,
                "event=fail carries step=helo code=421", fails[0]["_line"])
    rc, out, err = d.ctl("show servers")
    t.log("  show servers while f2 is DOWN:\n" + out)
    rows = {r.get("SERVER"): r for r in t.parse_table(out)}
    if "f2" in rows:
        t.check(rows["f2"].get("STATE", "").startswith("DOWN"), "show servers: f2 DOWN", str(rows["f2"]))
        t.check("421" in rows["f2"].get("LAST CHECK", "") and "helo" in rows["f2"].get("LAST CHECK", ""),
                "show servers: last check 'failed at helo: 421 ...'", str(rows["f2"]))

    time.sleep(1.5)   # DOWN for a while, the trickle goes on
    beh["f2"].mode = "ok"
    t_heal = time.monotonic()
    up = d.wait_event(lambda e: e.get("event") == "up" and e.get("server") == "f2", 4, since=n0, step=0.01)
    t_up = time.monotonic()
    time.sleep(0.6)
    stop.set()
    th.join(5)
    if t.check(up is not None, "f2 UP again after healing"):
        t.log("  UP after healing: %.2fs  (%s)" % (t_up - t_heal, up["_line"]))
        t.check(t_up - t_heal <= 1.5, "UP within 1.5 s of healing (%.2fs)" % (t_up - t_heal))
        t.check(up.get("successes") == 2 and isinstance(up.get("downtime_s"), int),
                "event=up successes=2 downtime_s=N", up["_line"])
        dt = t_up - t_down
        t.check(abs(up.get("downtime_s", -99) - dt) <= 1.5,
                "downtime_s=%s matches the outage (~%.1fs)" % (up.get("downtime_s"), dt))
    # Sessions: none to f2 while it was DOWN.
    t_upm = t_up if up is not None else time.monotonic()
    during = t.conns_of_kind(be["f2"], "client", after=t_down + 0.05)
    during = [c for c in during if c.t_accept < t_upm - 0.6]
    total = len(results)
    failed = [r for r in results if r[1] is None]
    t.log("  trickle: %d client sessions, %d failed; per server %s"
          % (total, len(failed), {n: len(t.conns_of_kind(be[n], "client")) for n in names}))
    t.check(not during, "f2 received no new client session while DOWN", str(len(during)))
    t.check(not failed, "no client session failed during the outage", str(failed[:3]))
    after_up = t.conns_of_kind(be["f2"], "client", after=t_upm)
    t.check(after_up, "f2 receives sessions again after event=up", str(len(after_up)))
    d.stop()

    # lbctl health-report on this log: the outage of f2 is there.
    rc, out, err = t.run_lbctl(["health-report", "--log", d.health_log, "--format", "json"])
    t.log("  health-report json: rc=%s stderr=%r" % (rc, err.strip()[:300]))
    t.check(rc == 0, "health-report --format json exits 0", str(rc))
    try:
        rep = json.loads(out)
    except ValueError as ex:
        t.check(False, "health-report json parses", "%s: %r" % (ex, out[:500]))
        return
    srv = [s for s in rep.get("servers", []) if s.get("server") == "f2"]
    if t.check(srv, "health-report json lists f2", out[:500]):
        s = srv[0]
        t.log("  f2 in the report: %s" % {k: v for k, v in s.items() if k != "outages"})
        t.check(s.get("down_events", 0) >= 1, "f2: down_events >= 1", str(s.get("down_events")))
        dt = s.get("downtime_s")
        t.check(isinstance(dt, (int, float)) and dt > 0, "f2: downtime_s > 0", str(dt))
        av = s.get("availability_pct")
        t.check(isinstance(av, (int, float)) and av < 100, "f2: availability_pct < 100", str(av))
        for o in ("f1", "f3"):
            so = [x for x in rep.get("servers", []) if x.get("server") == o]
            if so:
                t.check(so[0].get("down_events") == 0, "%s: no down events" % o, str(so[0]))
    rc, out, err = t.run_lbctl(["health-report", "--log", d.health_log])
    t.log("  health-report text:\n" + "\n".join("    " + ln for ln in out.splitlines()[:30]))
    t.check(rc == 0 and "f2" in out, "health-report text names f2", "rc=%s" % rc)
    t.check("421" in out or "try again later" in out, "health-report text gives the reason (421 ...)")


if __name__ == "__main__":
    t.main([test_failure_modes, test_healing, test_maintenance_not_checked, test_intervals,
            test_traffic_follows_state, test_acceptance],
           timeout=80)
