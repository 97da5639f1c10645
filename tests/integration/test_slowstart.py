#!/usr/bin/env python3
"""Slow start (load-balancer.conf(5), SLOW START; backend `slowstart`):
after a server goes from DOWN to UP its effective weight rises linearly from
1/16 of its weight to the full weight over `slowstart`; there is no ramp at
start-up, at a reload, or at `lbctl enable`.  Two equal servers A and B
(weight 100), SMTP health checks every 200 ms with rise 1 and fall 1; B is
taken DOWN by making its checks fail (its server closes every connection at
once) and brought back.  Sessions are driven one after the other at a steady
rate and counted per server from the banner of the server that answered.
The time of B's UP is the timestamp of its event=up in the health log.

test_startup: a fresh daemon shares 50/50 from its first second, and
  `show servers` shows the full weights.
test_ramp_roundrobin: slowstart 10 s: B's share of new sessions in the
  first 2 s after UP is under 25 %; between 10 and 12 s within 10 points
  of 50 %.  `show servers` WEIGHT and the metric load_balancer_server_weight,
  sampled during the ramp, start at 7 (100/16 rounded up), follow the
  linear ramp, never go down, and are 100 after it.
test_ramp_leastconn: slowstart 6 s, balance leastconn, 20 sessions held
  open at all times (the oldest closed, a new one opened every 25 ms): B's
  share of new sessions in the first 1.5 s is under 30 % (without slow
  start leastconn would give the empty B most of them); between 6 and
  7.5 s within 12 points of 50 %.
test_ramp_source: slowstart 6 s, balance source, clients from 200
  addresses 127.0.0.x: first where each address goes at full weight; after
  B's UP, B's share in the first 1.5 s is under 30 % and no client of A
  moves to B; between 6 and 7.5 s every client is back on its server and
  B's share is within 15 points of 50 %.
test_no_ramp_after_enable: slowstart 10 s: after `lbctl drain` + `lbctl
  enable`, and after `lbctl disable` + `lbctl enable`, B has its full
  weight at once (WEIGHT 100, 50 % of the sessions in the next second);
  the same after a reload (SIGHUP).

Figures (shares per window, the weights seen during the ramp) are printed
as "FIGURE" lines."""

import datetime
import math
import os
import re
import signal
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"
W = 100     # the configured weight of both servers


# --------------------------------------------------------------------------
# Helpers


def start(name, slowstart, balance="roundrobin", stats=False, extra_be=None):
    """Daemon with servers A and B (weight 100) behind SmtpBehavior
    backends; returns (daemon, port, behaviours, backends, stats port)."""
    beh = {n: t.SmtpBehavior(n) for n in "AB"}
    bk = {n: t.Backend(t.health_handler(beh[n]), name=n) for n in "AB"}
    port = t.free_port()
    sport = t.free_port() if stats else None
    be = {"timeout_server": "30s", "slowstart": slowstart,
          "health_check": {"type": "smtp", "helo": "noor.net", "interval": "200ms",
                           "rise": 1, "fall": 1}}
    be.update(extra_be or {})
    glob = {"stats_listen": "%s:%d" % (H, sport)} if stats else None
    text = t.make_config("%s:%d" % (H, port), [(n, bk[n].address, {"weight": W}) for n in "AB"],
                         balance=balance, be=be, fe={"timeout_client": "30s"}, glob=glob)
    d = t.Daemon(text, [(H, port)], name=name).start()
    return d, port, beh, bk, sport


def rows_of(d):
    rc, out, err = d.ctl("show servers")
    return {r.get("SERVER"): r for r in t.parse_table(out)} if rc == 0 else {}


def weight_shown(d, server):
    r = rows_of(d).get(server, {})
    w = r.get("WEIGHT", "")
    return int(w) if w.isdigit() else None


def metric_weight(sport, server):
    try:
        with urllib.request.urlopen("http://%s:%d/metrics" % (H, sport), timeout=5) as r:
            text = r.read().decode(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("load_balancer_server_weight{") and \
                'server="%s"' % server in line and 'backend="be"' in line:
            try:
                return float(line.rsplit(None, 1)[1])
            except ValueError:
                return None
    return None


def ts_of(e):
    """The health event's timestamp (RFC 3339 UTC, ms) as Unix time."""
    try:
        return datetime.datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except (KeyError, ValueError):
        return None


def session(port, source=None):
    try:
        return t.quick_session(H, port, source=source, timeout=5)
    except OSError:
        return None


def drive(port, duration, period=0.02, sources=None):
    """Sessions one after the other, one every period, for duration
    seconds: [(Unix time at the start of the session, server name)]."""
    out = []
    t0 = time.monotonic()
    i = 0
    while True:
        due = t0 + i * period
        now = time.monotonic()
        if now - t0 >= duration:
            break
        if due > now:
            time.sleep(due - now)
        src = sources[i % len(sources)] if sources else None
        wall = time.time()
        out.append((wall, session(port, src), src))
        i += 1
    return out


def share(recs, t_from, t_to, name="B"):
    """(share of name in percent, count of name, total) over the sessions
    started in [t_from, t_to)."""
    sel = [r for r in recs if t_from <= r[0] < t_to]
    n = sum(1 for r in sel if r[1] == name)
    return (100.0 * n / len(sel) if sel else float("nan")), n, len(sel)


def take_down(d, beh, server="B", timeout=3.0):
    """Make server's checks fail; return its event=down (or None)."""
    since = len(d.health_events())
    beh[server].mode = "close"
    return d.wait_event(lambda e: e.get("event") == "down" and e.get("server") == server,
                        timeout, since)


def per_second(recs, t_up, seconds):
    parts = []
    for s in range(seconds):
        p, n, tot = share(recs, t_up + s, t_up + s + 1)
        parts.append("%d-%ds %s" % (s, s + 1, "-" if tot == 0 else "%.0f%%" % p))
    return ", ".join(parts)


def expected_weight(elapsed, slowstart):
    if elapsed >= slowstart:
        return W
    return math.ceil(W * (1.0 / 16 + 15.0 / 16 * max(elapsed, 0.0) / slowstart))


# --------------------------------------------------------------------------


def test_startup():
    d, port, beh, bk, _ = start("ss-start", "10s")
    recs = drive(port, 1.0)
    p, n, tot = share(recs, 0, float("inf"))
    t.log("FIGURE fresh daemon, first second: B got %d of %d sessions (%.1f %%)" % (n, tot, p))
    t.check(tot >= 20, "at least 20 sessions in the first second (one every 20 ms)", str(tot))
    t.check(abs(p - 50) <= 5, "at start-up B gets 50 % from the first second (no ramp)", "%.1f %%" % p)
    t.check(all(r[1] in ("A", "B") for r in recs), "every session reached A or B",
            str([r[1] for r in recs if r[1] not in ("A", "B")][:5]))
    rows = rows_of(d)
    t.check(rows.get("A", {}).get("WEIGHT") == "100" and rows.get("B", {}).get("WEIGHT") == "100",
            "show servers at start-up: WEIGHT 100 for both",
            "%s / %s" % (rows.get("A"), rows.get("B")))
    d.stop()


def test_ramp_roundrobin():
    slow = 10.0
    d, port, beh, bk, sport = start("ss-rr", "10s", stats=True)
    time.sleep(0.5)
    down = take_down(d, beh)
    t.require(down is not None, "B's failing checks make it DOWN (event=down)")
    t.log("  %s" % down["_line"])
    nhealth = len(d.health_events())
    t.check(weight_shown(d, "A") == W, "A keeps WEIGHT 100 while B is DOWN")

    samples = []
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            t0 = time.time()
            w = weight_shown(d, "B")
            t1 = time.time()
            m = metric_weight(sport, "B")
            samples.append(((t0 + t1) / 2, w, m))
            stop.wait(0.5)

    beh["B"].mode = "ok"
    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    recs = drive(port, 12.6)
    stop.set()
    th.join(5)
    up = d.wait_event(lambda e: e.get("event") == "up" and e.get("server") == "B", 1, nhealth)
    t.require(up is not None, "B came back UP (event=up in the health log)")
    t.log("  %s" % up["_line"])
    t_up = ts_of(up)
    t.require(t_up is not None, "the up event's timestamp parses", up["ts"])
    first = share(recs, t_up, t_up + 2)
    late = share(recs, t_up + 10, t_up + 12)
    t.log("FIGURE roundrobin slowstart 10s: B's share per second after UP: %s"
          % per_second(recs, t_up, 12))
    t.log("FIGURE roundrobin: B got %.1f %% (%d of %d) in 0-2 s after UP, %.1f %% (%d of %d) "
          "in 10-12 s" % (first + late))
    t.check(first[2] >= 40, "at least 40 sessions in the first 2 s", str(first[2]))
    t.check(late[2] >= 40, "at least 40 sessions between 10 and 12 s", str(late[2]))
    t.check(first[0] < 25, "first 2 s after UP: B's share under 25 %", "%.1f %%" % first[0])
    t.check(first[1] > 0, "first 2 s after UP: B gets some sessions (it is UP, ramping)",
            str(first[1]))
    t.check(abs(late[0] - 50) <= 10, "10-12 s after UP: B's share within 10 points of 50 %",
            "%.1f %%" % late[0])
    t.check(not [r for r in recs if r[1] not in ("A", "B")], "every session reached A or B",
            str([r for r in recs if r[1] not in ("A", "B")][:3]))

    # The weight shown during the ramp.
    rel = [(s - t_up, w, m) for s, w, m in samples if s >= t_up + 0.02]
    t.log("FIGURE WEIGHT of B (show servers / metric) at seconds after UP: %s"
          % ", ".join("%.1fs %s/%s" % (e, w, "-" if m is None else "%g" % m) for e, w, m in rel))
    early = [(e, w) for e, w, m in rel if e <= 1.5]
    t.check(early and all(w is not None and 7 <= w < W for e, w in early),
            "show servers in the first 1.5 s of the ramp: WEIGHT between 7 and 99", str(early))
    mid = [(e, w, expected_weight(e, slow)) for e, w, m in rel if 0.2 <= e <= slow - 0.5]
    bad = [x for x in mid if x[1] is None or abs(x[1] - x[2]) > 5]
    t.check(len(mid) >= 10 and not bad,
            "WEIGHT follows the linear ramp 100 x (1/16 + 15/16 x elapsed/10 s) within 5",
            "%d samples, off: %s" % (len(mid), bad[:5]))
    ws = [w for e, w, m in rel if w is not None]
    t.check(all(a <= b for a, b in zip(ws, ws[1:])), "WEIGHT never goes down during the ramp", str(ws))
    after = [(e, w) for e, w, m in rel if e >= slow + 0.3]
    t.check(after and all(w == W for e, w in after), "after 10 s WEIGHT is the full 100", str(after))
    mism = [(round(e, 1), w, m) for e, w, m in rel
            if w is not None and (m is None or abs(m - w) > 3)]
    t.check(not mism, "the metric load_balancer_server_weight shows the same effective weight",
            str(mism[:5]))
    d.stop()


def held_pool_ramp(name, slowstart, n_hold=20, period=0.025, duration=7.5):
    d, port, beh, bk, _ = start(name, slowstart, balance="leastconn")
    time.sleep(0.5)
    pool = []

    def open_one():
        try:
            c, who = t.hold_session(H, port, timeout=5)
        except OSError:
            return None
        pool.append((c, who))
        return who

    def close_oldest():
        c, who = pool.pop(0)
        try:
            c.send(b"QUIT\r\n")
            c.read_to_eof(2)      # the balancer closes: the session has ended there
        except OSError:
            pass
        c.close()

    for _ in range(n_hold):
        open_one()
    first_names = [w for _, w in pool]
    t.log("  %d held sessions at start: A %d, B %d" % (n_hold, first_names.count("A"),
                                                     first_names.count("B")))
    t.check(abs(first_names.count("B") - n_hold / 2) <= 1,
            "leastconn at start-up: the held sessions are shared evenly (no ramp)",
            str(first_names))
    down = take_down(d, beh)
    t.require(down is not None, "B's failing checks make it DOWN")
    nhealth = len(d.health_events())
    # Renew the whole pool while B is DOWN: every held session on A.
    for _ in range(n_hold):
        close_oldest()
        open_one()
    t.require(all(w == "A" for _, w in pool), "while B is DOWN the held sessions are all on A",
              str([w for _, w in pool]))
    beh["B"].mode = "ok"
    recs = []
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < duration:
        due = t0 + i * period
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        close_oldest()
        wall = time.time()
        recs.append((wall, open_one(), None))
        i += 1
    up = d.wait_event(lambda e: e.get("event") == "up" and e.get("server") == "B", 1, nhealth)
    t.require(up is not None, "B came back UP (event=up)")
    t_up = ts_of(up)
    slow = float(slowstart.rstrip("s"))
    first = share(recs, t_up, t_up + 1.5)
    late = share(recs, t_up + slow, t_up + slow + 1.5)
    held_b = sum(1 for _, w in pool if w == "B")
    t.log("FIGURE leastconn slowstart %s, %d held: B's share per second after UP: %s"
          % (slowstart, n_hold, per_second(recs, t_up, int(slow) + 2)))
    t.log("FIGURE leastconn: B got %.1f %% (%d of %d) in 0-1.5 s, %.1f %% (%d of %d) in "
          "%g-%g s; B holds %d of %d at the end" % (first + late + (slow, slow + 1.5, held_b, n_hold)))
    t.check(first[2] >= 25 and late[2] >= 25, "at least 25 sessions in both windows",
            "%d / %d" % (first[2], late[2]))
    t.check(first[0] < 30, "leastconn, first 1.5 s after UP: B's share under 30 %",
            "%.1f %%" % first[0])
    t.check(first[1] > 0, "leastconn, first 1.5 s: B gets some sessions", str(first[1]))
    t.check(abs(late[0] - 50) <= 12, "leastconn, after the ramp: B's share within 12 points of 50 %",
            "%.1f %%" % late[0])
    t.check(abs(held_b - n_hold / 2) <= 3, "leastconn, after the ramp: the held sessions about even",
            "%d of %d on B" % (held_b, n_hold))
    while pool:
        close_oldest()
    d.stop()


def test_ramp_leastconn():
    held_pool_ramp("ss-lc", "6s")


def test_ramp_source():
    slow = 6.0
    d, port, beh, bk, _ = start("ss-src", "6s", balance="source")
    time.sleep(0.5)
    ips = ["127.0.0.%d" % i for i in range(2, 202)]
    base = {ip: session(port, ip) for ip in ips}
    nb = sum(1 for v in base.values() if v == "B")
    t.log("FIGURE source: at full weight %d of %d client addresses go to B" % (nb, len(ips)))
    t.require(all(v in ("A", "B") for v in base.values()), "every client address is served",
              str([k for k, v in base.items() if v not in ("A", "B")][:5]))
    t.check(60 <= nb <= 140, "at full weight B has about half of the client addresses", str(nb))
    down = take_down(d, beh)
    t.require(down is not None, "B's failing checks make it DOWN")
    nhealth = len(d.health_events())
    beh["B"].mode = "ok"
    recs = drive(port, slow + 1.6, sources=ips)
    up = d.wait_event(lambda e: e.get("event") == "up" and e.get("server") == "B", 1, nhealth)
    t.require(up is not None, "B came back UP (event=up)")
    t_up = ts_of(up)
    first = share(recs, t_up, t_up + 1.5)
    late = share(recs, t_up + slow, t_up + slow + 1.5)
    a_to_b = [ip for w, who, ip in recs if w >= t_up and base[ip] == "A" and who == "B"]
    late_recs = [r for r in recs if t_up + slow + 0.3 <= r[0] < t_up + slow + 1.5]
    home = sum(1 for w, who, ip in late_recs if who == base[ip])
    # B's share among the sampled addresses at full weight, for comparison.
    ref = share([(w, base[ip], ip) for w, who, ip in recs], t_up, t_up + 1.5)
    t.log("FIGURE source slowstart 6s: B's share per second after UP: %s"
          % per_second(recs, t_up, int(slow) + 2))
    t.log("FIGURE source: B got %.1f %% (%d of %d) in 0-1.5 s after UP (%.1f %% of those clients "
          "are B's at full weight), %.1f %% (%d of %d) in 6-7.5 s"
          % (first + (ref[0],) + late))
    t.check(first[2] >= 25 and late[2] >= 25, "at least 25 sessions in both windows",
            "%d / %d" % (first[2], late[2]))
    t.check(first[0] < 30 and first[0] < ref[0] * 0.6,
            "source, first 1.5 s after UP: B's share under 30 % and well under its full-weight share",
            "%.1f %% (full weight %.1f %%)" % (first[0], ref[0]))
    t.check(not a_to_b, "source: during the ramp no client of A moves to B", str(a_to_b[:5]))
    t.check(late_recs and home == len(late_recs),
            "source, after the ramp: every client is back on its full-weight server",
            "%d of %d" % (home, len(late_recs)))
    t.check(abs(late[0] - 50) <= 15, "source, after the ramp: B's share within 15 points of 50 %",
            "%.1f %%" % late[0])
    d.stop()


def test_no_ramp_after_enable():
    d, port, beh, bk, _ = start("ss-enable", "10s")
    time.sleep(0.5)
    nhealth = len(d.health_events())
    for off in ("drain", "disable"):
        rc, out, err = d.ctl("%s be/B" % off)
        t.require(rc == 0, "lbctl %s be/B" % off, out + err)
        got = [session(port) for _ in range(10)]
        t.check(got == ["A"] * 10, "after %s: B gets no new session" % off, str(got))
        time.sleep(0.5)
        rc, out, err = d.ctl("enable be/B")
        t.require(rc == 0, "lbctl enable be/B", out + err)
        # From MAINT the server may be checked again before it is UP.
        ok = t.wait_until(lambda: rows_of(d).get("B", {}).get("STATE") == "UP", 2, 0.02)
        t.check(ok, "after %s + enable B is UP" % off, str(rows_of(d).get("B")))
        w = weight_shown(d, "B")
        recs = drive(port, 1.0)
        p, n, tot = share(recs, 0, float("inf"))
        t.log("FIGURE %s + enable: B's WEIGHT %s, B got %d of %d sessions in the next second"
              % (off, w, n, tot))
        t.check(w == W, "%s + enable: WEIGHT 100 at once (no ramp)" % off, str(w))
        t.check(tot >= 20 and abs(p - 50) <= 5, "%s + enable: 50 %% of the sessions at once" % off,
                "%.1f %% of %d" % (p, tot))
    ups = [e["_line"] for e in d.health_events()[nhealth:] if e.get("event") in ("up", "down")]
    t.check(not ups, "no down/up event around drain, disable and enable", str(ups))

    # A reload does not start a ramp either.
    d.signal(signal.SIGHUP)
    t.check(t.wait_until(lambda: re.search(r"\breloaded\b", d.stderr(), re.I), 3),
            "SIGHUP: the daemon reloads")
    w = weight_shown(d, "B")
    recs = drive(port, 1.0)
    p, n, tot = share(recs, 0, float("inf"))
    t.log("FIGURE after a reload: B's WEIGHT %s, B got %d of %d sessions in the next second"
          % (w, n, tot))
    t.check(w == W and abs(p - 50) <= 5, "after a reload: WEIGHT 100 and 50 % at once",
            "WEIGHT %s, %.1f %%" % (w, p))
    d.stop()


ALL = [test_startup, test_ramp_roundrobin, test_ramp_leastconn, test_ramp_source,
       test_no_ramp_after_enable]

if __name__ == "__main__":
    # Arguments: names of sub-tests to run (default: all).
    t.main([f for f in ALL if not sys.argv[1:] or f.__name__ in sys.argv[1:]], timeout=170)
