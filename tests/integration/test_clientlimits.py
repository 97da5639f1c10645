#!/usr/bin/env python3
"""Client limits and deny lists (load-balancer.conf(5), CLIENT LIMITS and
FRONTENDS: client_limits, allow, deny, deny_reply; LOGS: end=client_limit
and end=denied; GLOBAL, stats_listen: load_balancer_frontend_refused_total;
lbctl(8), COMMANDS: show clients).

Every test of a limit sets client_limits.exempt (to [] or to a few
addresses): the default exempts 127.0.0.0/8 and ::1, so loopback clients would never be
limited.  Clients pick their source address (127.0.0.2, 127.0.0.3, ...) by
binding before the connect.

- -c accepts the keys and rejects bad CIDRs and values with FILE:LINE;
- maxconn = 3: 10 concurrent sessions from one address, exactly 3 served,
  7 get the reply line then EOF (end=client_limit, metric reason=maxconn),
  another address is served meanwhile, a slot frees when a session ends;
- a refused connection takes no place in the backend queue;
- the default exempt list (loopback never limited) and an explicit exempt;
- deny (deny_reply, end=denied, reason=deny, before the exempt list) and
  allow (only the listed networks are served);
- rate = 5 per 2 s: a sliding window; refused attempts do not count;
- prefix4 = 24: two addresses of one /24 share the count;
- lbctl show clients N: the busiest networks first, with their counts;
- table_size = 4: the network idle the longest is evicted (and starts
  from zero when it comes back), one holding a session is kept;
- 12 networks holding long sessions while 4 x table_size new networks pass
  through the table: none of the 12 is evicted (maxconn stays exact);
- a flood from 50 000 distinct addresses with table_size = 10000: the
  daemon's memory stays bounded, early flood networks were evicted and
  late ones are still counted, 16 networks with a session open through
  the flood are not evicted, legitimate clients are served during the
  flood (figures printed);
- reload: a new deny list applies to new connections, an established
  session from that address goes on; a lower maxconn applies to the counts
  kept across the reload; a new prefix4 (a new table) leaves no stale
  count once the old sessions end;
- workers = 2, maxconn = 2: a burst of 20 connections, exactly 2 served.

LB_CLIMITS_HARNESS=1: only the flood, against a daemon without any client
limit (for a daemon that does not know the keys yet): checks the flood
generator and the figures, not the limits.
"""

import collections
import errno
import http.client
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"
HARNESS = os.environ.get("LB_CLIMITS_HARNESS") == "1"
REPLY = "421 4.7.0 lbtest: too many sessions from your network"
DENY = "554 5.7.1 lbtest: your address is not welcome here"
REFUSED_METRIC = "load_balancer_frontend_refused_total"

# --------------------------------------------------------------------------
# Helpers


def start(name, servers, cl=None, fe=None, glob=None, be=None, stats=False):
    """One frontend "fe" on H:port with client_limits cl (a dict, or None
    for no client_limits group).  Returns (daemon, port, stats port)."""
    port = t.free_port()
    fed = dict(fe or {})
    if cl is not None:
        fed["client_limits"] = cl
    g = dict(glob or {})
    sport = None
    if stats:
        sport = t.free_port()
        g["stats_listen"] = "%s:%d" % (H, sport)
    text = t.make_config("%s:%d" % (H, port), servers, fe=fed, be=be, glob=g)
    d = t.Daemon(text, [(H, port)], name=name).start()
    return d, port, sport


def attempt(port, source, timeout=3.0):
    """Connect from source and read the first line.  Returns (kind, Client,
    data): kind "served" (a 220 line; the client stays open), "refused" (a
    line that is not 220, then EOF: data is everything received), "eof"
    (closed without a byte) or "silent" (nothing within timeout)."""
    c = t.Client(H, port, source=source, timeout=timeout)
    line = c.readline(timeout)
    if line is None:
        return "silent", c, bytes(c.received)
    if line.startswith(b"220"):
        return "served", c, line
    rest, eof = c.read_to_eof(timeout)
    data = line + rest
    c.close()
    if not data:
        return "eof", c, data
    return ("refused" if eof else "silent"), c, data


def one_session(port, source, timeout=3.0):
    """A whole session: banner, QUIT, close.  Returns (kind, data)."""
    kind, c, data = attempt(port, source, timeout)
    if kind == "served":
        try:
            c.cmd("QUIT", timeout)
        except OSError:
            pass
        c.close()
    return kind, data


def quit_all(clients):
    for c in clients:
        try:
            c.cmd("QUIT", 2)
        except OSError:
            pass
        c.close()


def client_ip(s):
    c = str(s.get("client", ""))
    return c.rsplit(":", 1)[0].strip("[]")


def sessions_of(d, ip, end=None):
    return [s for s in d.sessions()
            if client_ip(s) == ip and (end is None or s.get("end") == end)]


def wait_ends(d, ip, end, n, timeout=5.0):
    """Wait until at least n sessions of ip ended with end; return them."""
    t.wait_until(lambda: len(sessions_of(d, ip, end)) >= n, timeout, 0.05)
    return sessions_of(d, ip, end)


_LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metrics(sport):
    """/metrics as {(name, frozenset(labels)): value}; {} on failure."""
    try:
        c = http.client.HTTPConnection(H, sport, timeout=5)
        c.request("GET", "/metrics")
        r = c.getresponse()
        body = r.read().decode(errors="replace")
        c.close()
        if r.status != 200:
            return {}
    except OSError:
        return {}
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][\w:]*)(\{.*\})?\s+(\S+)$", line)
        if not m:
            continue
        labels = frozenset(_LABEL_RE.findall(m.group(2) or ""))
        try:
            out[(m.group(1), labels)] = float(m.group(3))
        except ValueError:
            pass
    return out


def refused_metric(sport, reason, frontend="fe"):
    ms = metrics(sport)
    return ms.get((REFUSED_METRIC, frozenset({"frontend": frontend, "reason": reason}.items())))


def wait_metric(sport, reason, want, timeout=3.0):
    """Poll the refused counter until it equals want; returns the last value."""
    v = t.wait_until(lambda: refused_metric(sport, reason) == want and want, timeout, 0.05)
    return refused_metric(sport, reason) if not v else want


def show_clients(d, n=None):
    """`lbctl show clients [N]`: (rc, rows keyed by the header, raw text)."""
    rc, out, err = d.ctl("show clients" + ("" if n is None else " %d" % n))
    rows = t.parse_table(out) if rc == 0 else []
    return rc, rows, out + err


def num(row, key):
    try:
        return int(str(row.get(key, "")).split()[0])
    except (ValueError, IndexError):
        return None


def client_row(d, network):
    _, rows, _ = show_clients(d, 1000)
    for r in rows:
        if r.get("NETWORK") == network:
            return r
    return None


def wait_cur(d, network, want, timeout=3.0):
    """Wait until show clients gives network CUR == want (a missing row
    counts as 0)."""
    def cur():
        r = client_row(d, network)
        return (num(r, "CUR") if r else 0) == want
    return t.wait_until(cur, timeout, 0.05)


def check_refused_lines(label, results, want_data):
    """results: [(kind, data)]; every refused one got exactly want_data."""
    refused = [data for kind, data in results if kind == "refused"]
    bad = [data for data in refused if data != want_data]
    t.check(not bad, "%s: every refused client got exactly %r then EOF" % (label, want_data),
            "others: %r" % bad[:3])


# --------------------------------------------------------------------------
# 1. maxconn


def test_maxconn():
    b = t.Backend(t.smtp_handler("S"), name="S")
    d, port, sport = start("maxconn", [("S", b.address)],
                           cl={"maxconn": 3, "exempt": [], "reply": REPLY}, stats=True)
    clients = [t.Client(H, port, source="127.0.0.2", timeout=5) for _ in range(10)]
    res = []
    for c in clients:
        line = c.readline(3)
        if line is not None and line.startswith(b"220"):
            res.append(("served", c, line))
        else:
            rest, eof = c.read_to_eof(3)
            data = (line or b"") + rest
            res.append(("refused" if eof and data else "silent" if not eof else "eof", c, data))
    kinds = collections.Counter(k for k, _, _ in res)
    t.log("  10 concurrent from 127.0.0.2: %s" % dict(kinds))
    t.check(kinds["served"] == 3, "maxconn 3: exactly 3 of 10 served", str(dict(kinds)))
    t.check(kinds["refused"] == 7, "maxconn 3: 7 refused", str(dict(kinds)))
    check_refused_lines("maxconn", [(k, dt) for k, _, dt in res], REPLY.encode() + b"\r\n")
    served = [c for k, c, _ in res if k == "served"]
    for c in served:
        r = c.cmd("NOOP", 3)
        t.check(r is not None and r.startswith(b"250"), "a served session stays open and relays",
                repr(r))
    t.check(b.count() == 3, "the server saw 3 connections only (refused ones cost none)",
            str(b.count()))

    # Another address is not affected.
    k3, c3, d3 = attempt(port, "127.0.0.3")
    t.check(k3 == "served", "127.0.0.3 is served meanwhile", "%s %r" % (k3, d3))
    quit_all([c3])

    ends = wait_ends(d, "127.0.0.2", "client_limit", 7)
    t.log("  session log, 127.0.0.2 end=client_limit: %d; e.g. %s" % (len(ends), ends[:1]))
    t.check(len(ends) == 7, "7 session lines end=client_limit", str(len(ends)))
    t.check(all(s.get("server") == "-" and s.get("frontend") == "fe" for s in ends),
            "they carry frontend=fe server=-", str(ends[:2]))
    v = wait_metric(sport, "maxconn", 7)
    t.log("  %s{reason=maxconn} = %s" % (REFUSED_METRIC, v))
    t.check(v == 7, '%s{frontend="fe",reason="maxconn"} = 7' % REFUSED_METRIC, str(v))
    rt = refused_metric(sport, "rate")
    t.check(rt in (0, None), "reason=rate stays 0", str(rt))

    row = client_row(d, "127.0.0.2/32")
    t.log("  show clients row: %s" % row)
    if t.check(row is not None, "show clients lists 127.0.0.2/32"):
        t.check(num(row, "CUR") == 3 and num(row, "REFUSED") == 7,
                "127.0.0.2/32: CUR 3, REFUSED 7", str(row))

    # Closing the 3 frees the slots.
    quit_all(served)
    wait_ends(d, "127.0.0.2", None, 10)
    freed = wait_cur(d, "127.0.0.2/32", 0)
    t.check(freed, "after the 3 close, show clients gives CUR 0",
            str(client_row(d, "127.0.0.2/32")))
    k, data = one_session(port, "127.0.0.2")
    t.check(k == "served", "then a new session from 127.0.0.2 is served", "%s %r" % (k, data))
    # (a client that got 221 may reconnect before the balancer has seen the
    # server close: wait until that session is released)
    wait_cur(d, "127.0.0.2/32", 0)
    # And the limit still holds at 3 (nothing leaked by the refusals).
    res2 = [attempt(port, "127.0.0.2") for _ in range(4)]
    kinds2 = collections.Counter(k for k, _, _ in res2)
    t.check(kinds2["served"] == 3 and kinds2["refused"] == 1,
            "again 3 of 4 concurrent served, 1 refused", str(dict(kinds2)))
    quit_all([c for k, c, _ in res2 if k == "served"])
    d.stop()


def test_no_queue_place():
    """A refused connection takes no place in the backend queue: with the
    server at its maxconn, a limited network's second connection gets the
    reply at once instead of waiting for timeout_queue."""
    b = t.Backend(t.smtp_handler("S"), name="S")
    d, port, sport = start("noqueue", [("S", b.address, {"maxconn": 1})],
                           cl={"maxconn": 1, "exempt": [], "reply": REPLY},
                           be={"timeout_queue": "5s"}, stats=True)
    ka, ca, _ = attempt(port, "127.0.0.3")
    t.require(ka == "served", "127.0.0.3 takes the server's only slot", ka)
    cb = t.Client(H, port, source="127.0.0.2", timeout=5)
    t.check(cb.nothing_for(0.5), "127.0.0.2's first session waits in the queue")
    t0 = time.monotonic()
    res = [attempt(port, "127.0.0.2", timeout=6) for _ in range(3)]
    el = time.monotonic() - t0
    kinds = [k for k, _, _ in res]
    t.log("  3 more from 127.0.0.2 while its first one is queued: %s in %.2fs" % (kinds, el))
    t.check(kinds == ["refused"] * 3 and el < 1.0,
            "they are refused at once (not queued until timeout_queue)", "%s %.2fs" % (kinds, el))
    ms = metrics(sport)
    q = ms.get(("load_balancer_backend_queue_length", frozenset({"backend": "be"}.items())))
    t.check(q in (1, None), "the backend queue holds the one waiting session", str(q))
    quit_all([ca])
    ban = cb.banner(3)
    t.check(t.banner_name(ban) == "S", "the queued session is served when the slot frees",
            repr(ban))
    quit_all([cb])
    t.check(b.count() == 2, "the server saw 2 connections", str(b.count()))
    d.stop()


def test_config_check():
    """-c: the new keys are accepted, bad values are errors with FILE:LINE."""
    srv = [("S", "127.0.0.1:%d" % t.free_port())]
    good = t.make_config("127.0.0.1:%d" % t.free_port(), srv, fe={
        "client_limits": {"maxconn": 10, "rate": 20, "period": "30s", "prefix4": 24,
                          "prefix6": 48, "reply": REPLY, "exempt": ["192.0.2.0/24", "::1"],
                          "table_size": 1000},
        "allow": ["10.0.0.0/8", "2001:db8::/32"], "deny": ["10.1.2.3"], "deny_reply": DENY})
    dd = t.tempdir("lbtest-climits-conf-")

    def check_conf(text):
        path = os.path.join(dd, "c%d.conf" % len(os.listdir(dd)))
        with open(path, "w") as f:
            f.write(text)
        rc, out, err = t.run_lb(["-c", "-f", path])
        return rc, out, err, path

    rc, out, err, _ = check_conf(good)
    t.check(rc == 0 and "configuration OK" in out, "-c accepts every client_limits key, allow, "
            "deny and deny_reply", "rc=%s %s" % (rc, (out + err).strip()))
    bad = [("deny", {"deny": ["127.0.0.300"]}),
           ("allow", {"allow": ["10.0.0.0/33"]}),
           ("exempt", {"client_limits": {"exempt": ["::1/129"]}}),
           ("prefix4", {"client_limits": {"prefix4": 33}}),
           ("colour", {"client_limits": {"colour": 1}})]
    for what, fe in bad:
        rc, out, err, path = check_conf(t.make_config("127.0.0.1:%d" % t.free_port(), srv, fe=fe))
        first = (err.strip().splitlines() or [""])[0]
        t.check(rc == 1 and re.search(re.escape(path) + r":\d+: ", err) is not None,
                "-c rejects a bad %s with FILE:LINE" % what, "rc=%s %r" % (rc, first))


# --------------------------------------------------------------------------
# 2. exempt


def test_exempt():
    b = t.Backend(t.smtp_handler("S"), name="S")
    # The default exempt list: every loopback client is exempt.
    p6 = None
    cl = {"maxconn": 1, "reply": REPLY}
    port = t.free_port()
    binds = ["%s:%d" % (H, port)]
    listen = [(H, port)]
    if t.have_ipv6():
        p6 = t.free_port("::1")
        binds.append("[::1]:%d" % p6)
        listen.append(("::1", p6))
    text = t.make_config(binds, [("S", b.address)], fe={"client_limits": cl})
    d = t.Daemon(text, listen, name="exempt-default").start()
    res = [attempt(port, "127.0.0.2") for _ in range(5)]
    kinds = collections.Counter(k for k, _, _ in res)
    t.log("  default exempt, maxconn 1, 5 concurrent from 127.0.0.2: %s" % dict(kinds))
    t.check(kinds["served"] == 5, "default exempt (127.0.0.0/8): all 5 served", str(dict(kinds)))
    quit_all([c for _, c, _ in res])
    if p6:
        cs = []
        for _ in range(3):
            c = t.Client("::1", p6, timeout=3)
            cs.append((c, c.readline(3)))
        ok = sum(1 for _, ln in cs if ln and ln.startswith(b"220"))
        t.check(ok == 3, "default exempt (::1/128): 3 concurrent from ::1 all served", str(ok))
        quit_all([c for c, _ in cs])
    d.stop()

    # An explicit exempt address (the default list is then replaced).
    b2 = t.Backend(t.smtp_handler("S"), name="S")
    d, port, sport = start("exempt", [("S", b2.address)],
                           cl={"maxconn": 3, "exempt": ["127.0.0.4", "127.0.3.0/24"],
                               "reply": REPLY},
                           stats=True)
    res = [attempt(port, "127.0.0.4") for _ in range(10)]
    kinds = collections.Counter(k for k, _, _ in res)
    t.log("  exempt 127.0.0.4, maxconn 3, 10 concurrent: %s" % dict(kinds))
    t.check(kinds["served"] == 10, "exempt 127.0.0.4: all 10 concurrent served", str(dict(kinds)))
    res3 = [attempt(port, "127.0.3.9") for _ in range(5)]
    kinds3 = collections.Counter(k for k, _, _ in res3)
    t.check(kinds3["served"] == 5, "exempt 127.0.3.0/24: 5 concurrent from 127.0.3.9 served",
            str(dict(kinds3)))
    res2 = [attempt(port, "127.0.0.2") for _ in range(4)]
    kinds2 = collections.Counter(k for k, _, _ in res2)
    t.check(kinds2["served"] == 3 and kinds2["refused"] == 1,
            "127.0.0.2 (not exempt) meanwhile: 3 served, the 4th refused", str(dict(kinds2)))
    quit_all([c for _, c, _ in res + res3] + [c for k, c, _ in res2 if k == "served"])
    v = wait_metric(sport, "maxconn", 1)
    t.check(v == 1, "reason=maxconn counts the one refusal only", str(v))
    d.stop()


# --------------------------------------------------------------------------
# 3. deny and allow


def test_deny_allow():
    b = t.Backend(t.smtp_handler("S"), name="S")
    # No exempt key: 127.0.0.5 is exempt from limits by default, yet deny
    # comes first.
    d, port, sport = start("deny", [("S", b.address)],
                           fe={"deny": ["127.0.0.5", "127.0.2.0/24"], "deny_reply": DENY},
                           stats=True)
    want = DENY.encode() + b"\r\n"
    k, c, data = attempt(port, "127.0.0.5")
    t.log("  127.0.0.5 (denied): %s %r" % (k, data))
    t.check(k == "refused" and data == want,
            "denied address gets exactly deny_reply + CRLF, then EOF",
            "%s %r" % (k, data))
    k2, c2, data2 = attempt(port, "127.0.2.77")
    t.check(k2 == "refused" and data2 == want, "an address in a denied CIDR (127.0.2.0/24) too",
            "%s %r" % (k2, data2))
    k3, data3 = one_session(port, "127.0.0.1")
    t.check(k3 == "served", "127.0.0.1 is served", "%s %r" % (k3, data3))
    k4, data4 = one_session(port, "127.0.1.5")
    t.check(k4 == "served", "127.0.1.5 (outside the denied CIDR) is served", "%s %r" % (k4, data4))
    ends = wait_ends(d, "127.0.0.5", "denied", 1)
    t.log("  session log: %s" % ends)
    if t.check(len(ends) == 1, "one session line end=denied for 127.0.0.5",
               str(sessions_of(d, "127.0.0.5"))):
        t.check(ends[0].get("server") == "-", "server=-", str(ends[0]))
    t.check(len(wait_ends(d, "127.0.2.77", "denied", 1)) == 1, "end=denied for 127.0.2.77")
    v = wait_metric(sport, "deny", 2)
    t.check(v == 2, '%s{frontend="fe",reason="deny"} = 2' % REFUSED_METRIC, str(v))
    t.check(b.count() == 2, "the server saw only the 2 served clients", str(b.count()))
    d.stop()

    # allow: only the listed network is served.
    b2 = t.Backend(t.smtp_handler("S"), name="S")
    d, port, sport = start("allow", [("S", b2.address)],
                           fe={"allow": ["127.0.0.6/32"], "deny_reply": DENY}, stats=True)
    k, c, data = attempt(port, "127.0.0.7")
    t.check(k == "refused" and data == want, "allow = [127.0.0.6/32]: 127.0.0.7 gets deny_reply",
            "%s %r" % (k, data))
    k1, c1, data1 = attempt(port, "127.0.0.1")
    t.check(k1 == "refused" and data1 == want, "allow: 127.0.0.1 gets deny_reply too",
            "%s %r" % (k1, data1))
    k2, data2 = one_session(port, "127.0.0.6")
    t.check(k2 == "served", "allow: 127.0.0.6 is served", "%s %r" % (k2, data2))
    t.check(len(wait_ends(d, "127.0.0.7", "denied", 1)) == 1, "end=denied for 127.0.0.7")
    v = wait_metric(sport, "deny", 2)
    t.check(v == 2, "reason=deny = 2", str(v))
    t.check(b2.count() == 1, "the server saw only 127.0.0.6", str(b2.count()))
    d.stop()


# --------------------------------------------------------------------------
# 4. rate


def test_rate():
    b = t.Backend(t.smtp_handler("S"), name="S")
    d, port, sport = start("rate", [("S", b.address)],
                           cl={"rate": 5, "period": "2s", "exempt": [], "reply": REPLY}, stats=True)
    want = REPLY.encode() + b"\r\n"
    t0 = time.monotonic()
    first = [one_session(port, "127.0.0.2") for _ in range(5)]
    t5 = time.monotonic() - t0
    t.log("  5 sequential sessions in %.3fs: %s" % (t5, [k for k, _ in first]))
    t.check(all(k == "served" for k, _ in first), "rate 5/2s: 5 sequential sessions served",
            str(first))
    k6, d6 = one_session(port, "127.0.0.2")
    t.check(k6 == "refused" and d6 == want, "the 6th within the window gets the reply, then EOF",
            "%s %r" % (k6, d6))
    # Refused attempts well inside the window; if they counted toward the
    # rate, the window would still be full at t0 + 2.2s.
    late = []
    for i in range(5):
        at = t0 + 0.5 + 0.1 * i
        time.sleep(max(0.0, at - time.monotonic()))
        late.append(one_session(port, "127.0.0.2"))
    t.check(all(k == "refused" and dt == want for k, dt in late),
            "5 more attempts at t0+0.5..0.9s are refused", str(late))
    at = t0 + 1.6
    time.sleep(max(0.0, at - time.monotonic()))
    el = time.monotonic() - t0
    nref = 1 + sum(1 for k, _ in late if k == "refused")
    nserved = 5
    if el < 1.8:    # the window may forget up to period / 16 = 125 ms early
        k, dt = one_session(port, "127.0.0.2")
        t.check(k == "refused", "still refused at t0+%.2fs (the first session is in the window)"
                % el, "%s %r" % (k, dt))
        nref += k == "refused"
        nserved += k == "served"
    else:
        t.log("  (this machine is slow: it is t0+%.2fs instead of t0+1.6s, one attempt skipped)"
              % el)
    k3, dt3 = one_session(port, "127.0.0.3")
    t.check(k3 == "served", "127.0.0.3 is served meanwhile", "%s %r" % (k3, dt3))
    at = t0 + 2.2
    time.sleep(max(0.0, at - time.monotonic()))
    k, dt = one_session(port, "127.0.0.2")
    el = time.monotonic() - t0
    t.log("  at t0+%.2fs: %s %r" % (el, k, dt))
    t.check(k == "served", "served at t0+%.2fs, past the window of the first session "
            "(refused attempts did not count)" % el, "%s %r" % (k, dt))
    nserved += k == "served"
    ends = wait_ends(d, "127.0.0.2", "client_limit", nref)
    t.check(len(ends) == nref, "%d session lines end=client_limit" % nref, str(len(ends)))
    v = wait_metric(sport, "rate", nref)
    t.log("  %s{reason=rate} = %s" % (REFUSED_METRIC, v))
    t.check(v == nref, 'reason="rate" = %d' % nref, str(v))
    mc = refused_metric(sport, "maxconn")
    t.check(mc in (0, None), "reason=maxconn stays 0", str(mc))
    row = client_row(d, "127.0.0.2/32")
    t.log("  show clients row: %s" % row)
    t.check(row is not None and num(row, "REFUSED") == nref,
            "show clients: 127.0.0.2/32 REFUSED %d" % nref, str(row))
    t.check(b.count() == nserved + 1, "the server saw the %d served sessions only" % (nserved + 1),
            str(b.count()))
    d.stop()


# --------------------------------------------------------------------------
# 5. prefix4


def test_prefix():
    b = t.Backend(t.smtp_handler("S"), name="S")
    d, port, sport = start("prefix", [("S", b.address)],
                           cl={"maxconn": 2, "prefix4": 24, "exempt": [], "reply": REPLY},
                           stats=True)
    ka, ca, _ = attempt(port, "127.0.0.2")
    kb, cb, _ = attempt(port, "127.0.0.2")
    t.check(ka == kb == "served", "prefix4 24: 2 sessions from 127.0.0.2 served")
    k, c, data = attempt(port, "127.0.0.3")
    t.check(k == "refused" and data == REPLY.encode() + b"\r\n",
            "127.0.0.3, same /24, is refused (one count for the network)", "%s %r" % (k, data))
    k2, c2, data2 = attempt(port, "127.0.1.3")
    t.check(k2 == "served", "127.0.1.3, another /24, is served", "%s %r" % (k2, data2))
    _, rows, raw = show_clients(d)
    t.log("  show clients:\n" + "\n".join("    " + ln for ln in raw.splitlines()))
    row = client_row(d, "127.0.0.0/24")
    t.check(row is not None and num(row, "CUR") == 2 and num(row, "REFUSED") == 1,
            "show clients: 127.0.0.0/24 CUR 2 REFUSED 1", str(row))
    quit_all([ca, cb, c2] if k2 == "served" else [ca, cb])
    t.check(wait_cur(d, "127.0.0.0/24", 0), "the network's count falls to 0")
    k3, data3 = one_session(port, "127.0.0.3")
    t.check(k3 == "served", "then 127.0.0.3 is served", "%s %r" % (k3, data3))
    d.stop()


# --------------------------------------------------------------------------
# 6. show clients


def test_show_clients():
    b = t.Backend(t.smtp_handler("S"), name="S")
    d, port, _ = start("show", [("S", b.address)],
                       cl={"maxconn": 3, "rate": 100, "period": "1m", "exempt": [],
                           "reply": REPLY})
    held = []

    def closed_session(ip):
        one_session(port, ip)
        wait_cur(d, ip + "/32", 0)

    # 127.0.0.2: 1 closed + 3 open + 1 refused -> CUR 3 PERIOD 4 REFUSED 1
    closed_session("127.0.0.2")
    for _ in range(3):
        k, c, _ = attempt(port, "127.0.0.2")
        held.append(c)
    k, _, _ = attempt(port, "127.0.0.2")
    t.check(k == "refused", "127.0.0.2: the 4th concurrent is refused", k)
    # 127.0.0.3: 1 closed + 2 open -> CUR 2 PERIOD 3
    closed_session("127.0.0.3")
    for _ in range(2):
        held.append(attempt(port, "127.0.0.3")[1])
    # 127.0.0.4: 1 closed + 1 open -> CUR 1 PERIOD 2
    closed_session("127.0.0.4")
    held.append(attempt(port, "127.0.0.4")[1])
    # 127.0.0.10 .. 13: 1 closed each -> CUR 0 PERIOD 1
    for i in range(10, 14):
        closed_session("127.0.0.%d" % i)

    rc, rows, raw = show_clients(d, 5)
    t.log("  lbctl show clients 5 (rc %s):\n%s"
          % (rc, "\n".join("    " + ln for ln in raw.splitlines())))
    t.require(rc == 0, "show clients 5: exit 0", raw)
    head = raw.splitlines()[0].split() if raw.strip() else []
    t.check(head[:4] == ["NETWORK", "CUR", "PERIOD", "REFUSED"],
            "header NETWORK CUR PERIOD REFUSED", str(head))
    t.check(len(rows) == 5, "show clients 5: 5 rows", str(len(rows)))
    nets = [r.get("NETWORK") for r in rows]
    t.check(nets[:3] == ["127.0.0.2/32", "127.0.0.3/32", "127.0.0.4/32"],
            "busiest first: 127.0.0.2, 127.0.0.3, 127.0.0.4", str(nets))
    want = {"127.0.0.2/32": (3, 4, 1), "127.0.0.3/32": (2, 3, 0), "127.0.0.4/32": (1, 2, 0)}
    for r in rows:
        net = r.get("NETWORK")
        got = (num(r, "CUR"), num(r, "PERIOD"), num(r, "REFUSED"))
        if net in want:
            t.check(got == want[net], "%s: CUR PERIOD REFUSED = %s" % (net, want[net]), str(got))
        else:
            t.check(net in ["127.0.0.%d/32" % i for i in range(10, 14)] and got == (0, 1, 0),
                    "%s (one closed session): 0 1 0" % net, str(got))
    rc, rows, raw = show_clients(d)
    nets = sorted(r.get("NETWORK") for r in rows)
    t.check(rc == 0 and len(rows) == 7, "show clients (default 20): all 7 networks", str(nets))
    rc, rows, raw = show_clients(d, 2)
    t.check(rc == 0 and [r.get("NETWORK") for r in rows] == ["127.0.0.2/32", "127.0.0.3/32"],
            "show clients 2: the two busiest", raw)
    rc, out, err = d.ctl("show clients x")
    t.log("  show clients x -> rc=%s %r" % (rc, (out + err).strip()))
    t.check(rc == 1 and "error" in (out + err), "show clients x: an error reply, exit 1",
            "rc=%s %r" % (rc, out + err))
    quit_all(held)
    d.stop()


# --------------------------------------------------------------------------
# 7. flood from 50 000 addresses


# Under a wrapper (valgrind: tests/integration/run_valgrind.py) the daemon
# is some 50 times slower: the flood is 5 times the table there too, but
# smaller, and the legitimate clients' bound is wider.
SLOW = bool(t.LB_WRAPPER)
FLOOD_N = 6000 if SLOW else 50000
FLOOD_BASE = "127.1.0.0"      # 127.1.0.0 .. 127.1.195.79
FLOOD_INFLIGHT = 300
FLOOD_LIMIT = 45.0            # seconds of flooding at most
TABLE_SIZE = 1200 if SLOW else 10000
# Long sessions from these networks last through the flood.
FLOOD_HELD = ["127.0.0.8"] + ["127.0.8.%d" % i for i in range(1, 16)]
# Seconds to the banner during the flood: 95 % of the legitimate sessions
# within LEGIT_BOUND, every one within twice that (the machine is shared).
LEGIT_BOUND = 5.0 if SLOW else 1.0


def flood_main(argv):
    """Child process: connect from FLOOD_N distinct source addresses (one
    connection each), at most `inflight` at a time, non-blocking (epoll).
    Connection i: i % 4 == 0 reset at once (SO_LINGER 0), 1 closed at once,
    2 and 3 wait for the first line (3 s at most) then close (2) or reset (3).
    Prints a JSON summary on stdout."""
    host, port, n, base, inflight, limit, reply = (
        argv[0], int(argv[1]), int(argv[2]), argv[3], int(argv[4]), float(argv[5]),
        argv[6].encode())
    base_i = struct.unpack("!I", socket.inet_aton(base))[0]
    linger0 = struct.pack("ii", 1, 0)
    ep = select.epoll()
    socks = {}      # fd -> [sock, state, deadline, index, buf]
    st = collections.Counter()
    samples = []
    i = 0
    t0 = time.monotonic()
    end = t0 + limit
    last_sweep = t0

    def finish(fd, rst):
        ent = socks.pop(fd)
        s = ent[0]
        try:
            ep.unregister(fd)
        except (OSError, ValueError):
            pass
        if rst:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
            except OSError:
                pass
        s.close()

    while (i < n or socks) and time.monotonic() < end:
        now = time.monotonic()
        while i < n and len(socks) < inflight:
            a = socket.inet_ntoa(struct.pack("!I", base_i + i))
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            k = i
            i += 1
            try:
                s.bind((a, 0))
            except OSError as e:
                st["bind_error"] += 1
                st["err_" + errno.errorcode.get(e.errno, str(e.errno))] += 1
                s.close()
                continue
            rc = s.connect_ex((host, port))
            if rc not in (0, errno.EINPROGRESS):
                st["connect_error"] += 1
                st["err_" + errno.errorcode.get(rc, str(rc))] += 1
                s.close()
                continue
            st["started"] += 1
            ep.register(s.fileno(), select.EPOLLOUT)
            socks[s.fileno()] = [s, "conn", now + 5.0, k, bytearray()]
        for fd, ev in ep.poll(0.02):
            ent = socks.get(fd)
            if ent is None:
                continue
            s, state, _, k, buf = ent
            if state == "conn":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    st["connect_failed"] += 1
                    st["err_" + errno.errorcode.get(err, str(err))] += 1
                    finish(fd, False)
                    continue
                st["connected"] += 1
                mode = k % 4
                if mode == 0:
                    st["reset_at_once"] += 1
                    finish(fd, True)
                elif mode == 1:
                    st["closed_at_once"] += 1
                    finish(fd, False)
                else:
                    st["reading"] += 1
                    ent[1] = "read"
                    ent[2] = time.monotonic() + 3.0
                    ep.modify(fd, select.EPOLLIN)
                continue
            try:
                data = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            buf += data
            if data and b"\n" not in buf:
                continue
            line = bytes(buf).split(b"\n", 1)[0] + (b"\n" if b"\n" in buf else b"")
            if line.startswith(b"220"):
                st["banner"] += 1
            elif line.rstrip(b"\r\n") == reply:
                st["reply"] += 1
            elif not line:
                st["eof_before_line"] += 1
            else:
                st["other_line"] += 1
                if len(samples) < 5:
                    samples.append(line.decode(errors="replace"))
            finish(fd, k % 4 == 3)
        now = time.monotonic()
        if now - last_sweep > 0.2:
            last_sweep = now
            for fd, ent in list(socks.items()):
                if now > ent[2]:
                    st["timeout_" + ent[1]] += 1
                    finish(fd, True)
    for fd in list(socks):
        st["left_at_limit"] += 1
        finish(fd, True)
    ep.close()
    out = dict(st)
    out["attempted"] = i
    out["elapsed"] = round(time.monotonic() - t0, 3)
    out["samples"] = samples
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def hwm_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def nfds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def instrumented():
    """Why RSS means little for this daemon ("" when it does): a sanitizer
    build (its allocator keeps freed memory in quarantine) or a wrapper."""
    if os.environ.get("LB_SANITIZER", "").strip():
        return "LB_SANITIZER=" + os.environ["LB_SANITIZER"].strip()
    if t.LB_WRAPPER:
        return "LB_WRAPPER"
    try:
        with open(t.LB_BIN, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    for sym in (b"__asan_init", b"__tsan_init", b"__msan_init"):
        if sym in data:
            return "built with " + sym.decode()
    return ""


def sessions_current(d):
    rc, out, _ = d.ctl("show info")
    m = re.search(r"^sessions_current:\s*(\d+)", out, re.M)
    return int(m.group(1)) if rc == 0 and m else None


def test_flood():
    sink = t.SmtpSink(backlog=4096).start()
    # rate 1 per minute changes nothing for the flood (one connection per
    # address) but makes the eviction visible afterwards: an early flood
    # address evicted from the table starts from zero again, a late one is
    # still refused.  127.0.0.9, the legitimate client, is exempt (it
    # reconnects at once after a QUIT, its last session may still be open).
    cl = {"maxconn": 1, "rate": 1, "period": "1m", "exempt": ["127.0.0.9"],
          "table_size": TABLE_SIZE, "reply": REPLY}
    d, port, sport = start("flood", [("sink", sink.address)],
                           cl=None if HARNESS else cl,
                           fe={"backlog": 2048, "timeout_client": "30s"},
                           glob={"workers": 2}, stats=True)
    pid = d.proc.pid
    # warm up, then hold sessions from FLOOD_HELD networks through the flood
    for _ in range(5):
        one_session(port, "127.0.0.9")
    held = []
    for ip in FLOOD_HELD:
        kh, c, _ = attempt(port, ip)
        t.require(kh == "served", "a session from %s is held open through the flood" % ip, kh)
        held.append(c)
    time.sleep(0.3)
    rss0, fd0 = rss_kb(pid), nfds(pid)

    fdir = t.tempdir("lbtest-flood-")
    outp = os.path.join(fdir, "out")
    errp = os.path.join(fdir, "err")
    with open(outp, "wb") as o, open(errp, "wb") as e:
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--flood", H, str(port),
                              str(FLOOD_N), FLOOD_BASE, str(FLOOD_INFLIGHT), str(FLOOD_LIMIT),
                              REPLY], stdin=subprocess.DEVNULL, stdout=o, stderr=e)
    t.register_proc(p, "flood generator")

    # Legitimate sessions from 127.0.0.9 during the flood, in a thread.
    legit = []
    stop = threading.Event()

    def legit_loop():
        while not stop.is_set():
            t1 = time.monotonic()
            try:
                c = t.Client(H, port, source="127.0.0.9", timeout=3)
                b = c.banner(3)
                lat = time.monotonic() - t1
                if b and b.startswith(b"220"):
                    c.cmd("QUIT", 3)
                c.close()
                legit.append((b is not None and b.startswith(b"220"), lat, b, c.local_port))
            except OSError as ex:
                legit.append((False, time.monotonic() - t1, repr(ex)))
            stop.wait(0.2)

    th = threading.Thread(target=legit_loop, daemon=True)
    t_start = time.monotonic()
    th.start()
    peak, samples = rss0, 0
    while p.poll() is None and time.monotonic() - t_start < FLOOD_LIMIT + 15:
        r = rss_kb(pid)
        peak = max(peak, r)
        samples += 1
        time.sleep(0.1)
    stop.set()
    th.join(timeout=5)
    if p.poll() is None:
        t.kill_proc(p)
    flood_el = time.monotonic() - t_start
    try:
        with open(outp) as f:
            res = json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        with open(errp, "rb") as f:
            res = {"error": f.read().decode(errors="replace")[-2000:]}
    t.log("  flood: %s" % json.dumps(res, sort_keys=True))
    t.require("error" not in res, "the flood generator reported", str(res.get("error")))
    connected = res.get("connected", 0)
    rate = connected / res["elapsed"] if res.get("elapsed") else 0
    t.log("  flood: %d distinct addresses attempted, %d connected in %.1fs (%.0f/s); "
          "%d read a first line: %d banners, %d replies, %d other, %d eof, %d timeouts"
          % (res.get("attempted", 0), connected, res.get("elapsed", 0), rate,
             res.get("reading", 0), res.get("banner", 0), res.get("reply", 0),
             res.get("other_line", 0), res.get("eof_before_line", 0),
             res.get("timeout_read", 0)))

    # Let the daemon finish every flood session.
    t.wait_until(lambda: sessions_current(d) == len(FLOOD_HELD), 15, 0.2)
    time.sleep(0.5)
    rss1, fd1, hwm = rss_kb(pid), nfds(pid), hwm_kb(pid)
    t.log("  daemon RSS: before %d KiB, peak (sampled %d times) %d KiB (+%.1f MB), "
          "after %d KiB (+%.1f MB), VmHWM %d KiB; fds before %d after %d"
          % (rss0, samples, peak, (peak - rss0) / 1024.0, rss1, (rss1 - rss0) / 1024.0,
             hwm, fd0, fd1))
    t.check(connected >= min(20000, FLOOD_N) and connected >= 2 * TABLE_SIZE,
            "the flood connected from at least %d distinct addresses "
            "(and 2 x table_size)" % min(20000, FLOOD_N), str(connected))
    t.check(res.get("connect_failed", 0) + res.get("connect_error", 0) +
            res.get("bind_error", 0) + res.get("timeout_conn", 0) <= connected // 100,
            "flood: under 1% of connects failed",
            "failed %s error %s bind %s timeout %s" % (
                res.get("connect_failed", 0), res.get("connect_error", 0),
                res.get("bind_error", 0), res.get("timeout_conn", 0)))
    rd = res.get("reading", 0)
    t.check(rd and res.get("banner", 0) >= 0.95 * rd,
            "flood: clients that waited got the banner (at most 1 client per network, "
            "never the limit reply)", "%s of %s, reply %s" % (res.get("banner"), rd,
                                                             res.get("reply", 0)))
    why = instrumented()
    if why:
        t.log("  peak RSS growth %.1f MB: not checked (%s)" % ((peak - rss0) / 1024.0, why))
    else:
        t.check(peak - rss0 < 64 * 1024, "peak RSS growth under 64 MB",
                "%.1f MB" % ((peak - rss0) / 1024.0))
    t.check(fd1 <= fd0 + 2, "no descriptor left behind by the flood", "%d -> %d" % (fd0, fd1))
    ok = [x for x in legit if x[0]]
    lat = sorted(x[1] for x in legit)
    worst = lat[-1] if lat else None
    t.log("  legitimate sessions from 127.0.0.9 during the flood: %d of %d served; banner "
          "latency median %.3fs max %.3fs" % (len(ok), len(legit),
                                              lat[len(lat) // 2] if lat else -1, worst or -1))
    for x in sorted(legit, key=lambda x: -x[1])[:3]:
        if x[1] > LEGIT_BOUND / 2 and len(x) > 3:
            t.log("  slow legitimate session (%.3fs): %s" % (x[1], d.session_for(
                x[3], 1, lambda s: client_ip(s) == "127.0.0.9")))
    t.check(len(legit) >= 3 and len(ok) == len(legit),
            "every legitimate session during the flood is served",
            str([x for x in legit if not x[0]][:3]))
    slow = [x for x in lat if x >= LEGIT_BOUND]
    t.check(lat and len(slow) <= 0.05 * len(lat) and worst < 2 * LEGIT_BOUND,
            "each got its banner within %gs (95 %%; all within %gs)"
            % (LEGIT_BOUND, 2 * LEGIT_BOUND),
            "max %.3fs, %d of %d over %gs" % (worst or -1, len(slow), len(lat), LEGIT_BOUND))

    if not HARNESS:
        mc, rt = refused_metric(sport, "maxconn"), refused_metric(sport, "rate")
        t.log("  refused after the flood: maxconn %s, rate %s" % (mc, rt))
        t.check(mc == 0 and rt == 0, "no flood connection was refused (one per address)",
                "maxconn %s rate %s" % (mc, rt))
        rc, rows, raw = show_clients(d, 1000)
        t.log("  show clients 1000 after the flood: rc %s, %d rows, first %s"
              % (rc, len(rows), rows[:1]))
        top = sorted(r.get("NETWORK") for r in rows[:len(FLOOD_HELD)])
        want = sorted(ip + "/32" for ip in FLOOD_HELD)
        t.check(rc == 0 and len(rows) == 1000 and top == want,
                "show clients 1000: 1000 rows, the %d networks holding a session first"
                % len(FLOOD_HELD), "%d rows, first %s" % (len(rows), top))
        # Bounded table: the first flood addresses (idle the longest) were
        # evicted and start from zero; the last ones are still counted.
        k, data = one_session(port, "127.1.0.1")
        t.check(k == "served", "127.1.0.1 (early in the flood, evicted) is served again "
                "despite rate 1/min", "%s %r" % (k, data))
        last = socket.inet_ntoa(struct.pack(
            "!I", struct.unpack("!I", socket.inet_aton(FLOOD_BASE))[0] +
            max(0, res.get("attempted", 0) - 10)))
        k, data = one_session(port, last)
        t.check(k == "refused" and data == REPLY.encode() + b"\r\n",
                "%s (late in the flood, still in the table) is refused: rate 1/min" % last,
                "%s %r" % (k, data))
        rt = wait_metric(sport, "rate", 1)
        t.check(rt == 1, "reason=rate counts that one", str(rt))
        # The held networks are not idle: none may have been evicted.
        second = [attempt(port, ip) for ip in FLOOD_HELD]
        served = [ip for ip, (k, _, _) in zip(FLOOD_HELD, second) if k == "served"]
        bad = [dx for k, _, dx in second if k != "served" and dx != REPLY.encode() + b"\r\n"]
        t.log("  a second session from each of the %d held networks: %d refused, served: %s"
              % (len(FLOOD_HELD), len(FLOOD_HELD) - len(served), served))
        t.check(not served and not bad,
                "the %d networks with a session held through the flood: a second one is "
                "still refused (a busy network is not evicted)" % len(FLOOD_HELD),
                "served a second time: %s; other answers %r" % (served, bad[:2]))
        quit_all([c for k, c, _ in second if k == "served"])
    replies = [c.cmd("NOOP", 3) for c in held]
    t.check(all(r is not None and r.startswith(b"250") for r in replies),
            "the held sessions still relay", str(replies[:3]))
    quit_all(held)
    k, data = one_session(port, "127.2.0.1")
    t.check(k == "served", "a new address after the flood is served", "%s %r" % (k, data))
    info = {}
    rc, out, _ = d.ctl("show info")
    for line in out.splitlines():
        a, s, v = line.partition(": ")
        if s and "client" in a:
            info[a] = v
    if info:
        t.log("  show info (client lines): %s" % info)
    d.stop()


# --------------------------------------------------------------------------
# 7b. a small table: the network idle the longest is evicted


def test_table_eviction():
    b = t.Backend(t.smtp_handler("S"), name="S")
    d, port, sport = start("table", [("S", b.address)],
                           cl={"rate": 1, "period": "1m", "maxconn": 5, "exempt": [],
                               "table_size": 4, "reply": REPLY}, stats=True)

    def nets():
        rc, rows, raw = show_clients(d, 100)
        return {r.get("NETWORK"): r for r in rows}

    def session(ip):
        k, data = one_session(port, ip)
        wait_cur(d, ip + "/32", 0)
        return k, data

    got = [session("127.0.0.%d" % i)[0] for i in (11, 12, 13, 14)]
    t.check(got == ["served"] * 4, "table_size 4: 4 networks served once each", str(got))
    n = nets()
    t.check(sorted(n) == ["127.0.0.%d/32" % i for i in (11, 12, 13, 14)],
            "show clients: the 4 networks", str(sorted(n)))
    k, _ = session("127.0.0.11")
    t.check(k == "refused", "127.0.0.11 again: refused (rate 1/min; this touches it)", k)
    k, _ = session("127.0.0.15")
    t.check(k == "served", "a 5th network is served", k)
    n = nets()
    t.log("  after the 5th network: %s" % sorted(n))
    t.check(len(n) == 4 and "127.0.0.12/32" not in n and "127.0.0.11/32" in n,
            "the table still holds 4: 127.0.0.12 (idle the longest) was evicted, "
            "127.0.0.11 (refused since) kept", str(sorted(n)))
    k, _ = session("127.0.0.12")
    t.check(k == "served", "127.0.0.12, evicted, starts from zero: served", k)
    n = nets()
    t.check(len(n) == 4 and "127.0.0.13/32" not in n, "then 127.0.0.13 was evicted",
            str(sorted(n)))
    # A network with a session open is not evicted while idle ones exist.
    k, held, _ = attempt(port, "127.0.0.20")
    t.check(k == "served", "127.0.0.20 served and held", k)
    for i in (21, 22, 23, 24, 25):
        session("127.0.0.%d" % i)
    n = nets()
    t.log("  after 5 more networks: %s"
          % {k: (num(v, "CUR"), num(v, "PERIOD")) for k, v in n.items()})
    row = n.get("127.0.0.20/32")
    t.check(len(n) == 4 and row is not None and num(row, "CUR") == 1,
            "the network holding a session stays in the table (CUR 1)", str(sorted(n)))
    k = attempt(port, "127.0.0.20")[0]
    t.check(k == "refused", "and its rate still counts: a second session refused", k)
    quit_all([held])
    t.check(wait_cur(d, "127.0.0.20/32", 0), "its count falls to 0 when it ends")
    d.stop()


def test_busy_not_evicted():
    """Networks holding sessions stay counted while a crowd of new networks
    passes through a full table: a long session's network is not touched
    while it lasts, so it sinks to the idle end of the table, among other
    long sessions; those must not be evicted while networks without a
    session exist (maxconn stays exact)."""
    b = t.Backend(t.smtp_handler("S"), name="S")
    nheld, table = 12, 50
    d, port, sport = start("busy", [("S", b.address)],
                           cl={"maxconn": 1, "exempt": [], "table_size": table,
                               "reply": REPLY}, stats=True)
    held_ips = ["127.0.4.%d" % i for i in range(1, nheld + 1)]
    held = []
    for ip in held_ips:
        k, c, _ = attempt(port, ip)
        t.require(k == "served", "%s served and held" % ip, k)
        held.append(c)
    # 4 x table_size networks, one closed session each
    ok = 0
    for i in range(4 * table):
        k, _ = one_session(port, "127.0.5.%d" % (i + 1))
        ok += k == "served"
    t.check(ok == 4 * table, "%d one-off networks served" % (4 * table), str(ok))
    _, rows, raw = show_clients(d, 100)
    t.check(len(rows) <= table, "the table holds at most table_size (%d) networks" % table,
            "%d rows" % len(rows))
    listed = {r.get("NETWORK"): num(r, "CUR") for r in rows}
    missing = [ip for ip in held_ips if listed.get(ip + "/32") != 1]
    t.check(not missing, "the %d networks holding a session are still listed with CUR 1"
            % nheld, "missing or wrong: %s" % missing)
    second = [attempt(port, ip) for ip in held_ips]
    served = [ip for ip, (k, _, _) in zip(held_ips, second) if k == "served"]
    t.log("  second session from the %d held networks: %d refused, served: %s"
          % (nheld, nheld - len(served), served))
    t.check(not served, "maxconn 1 still holds for every network with a session open "
            "(none was evicted)", "served a second time: %s" % served)
    quit_all([c for k, c, _ in second if k == "served"] + held)
    d.stop()


# --------------------------------------------------------------------------
# 8. reload


RELOADED_RE = re.compile(r"\breloaded\b", re.I)


def test_reload():
    b = t.Backend(t.smtp_handler("S"), name="S")
    run = t.tempdir("lbtest-run-")
    paths = {"control_socket": os.path.join(run, "lb.sock"),
             "health_log": os.path.join(run, "health.log")}
    port = t.free_port()

    def conf(deny):
        return t.make_config("%s:%d" % (H, port), [("S", b.address)],
                             fe={"deny": deny, "deny_reply": DENY}, glob=paths)

    def write(text):
        tmp = d.conf + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, d.conf)

    d = t.Daemon(conf([]), [(H, port)], name="reload").start()
    k, held, ban = attempt(port, "127.0.0.8")
    t.require(k == "served", "deny = []: 127.0.0.8 served", "%s %r" % (k, ban))
    r = held.cmd("EHLO " + t.CLIENT_HELO, 3)
    t.check(r is not None and r.startswith(b"250"), "EHLO on the held session", repr(r))

    write(conf(["127.0.0.8"]))
    rc, out, err = d.ctl("reload")
    t.log("  lbctl reload -> rc=%s %r" % (rc, (out + err).strip()))
    t.require(rc == 0, "lbctl reload (deny = [127.0.0.8]): exit 0", out + err)
    k, c, data = attempt(port, "127.0.0.8")
    t.check(k == "refused" and data == DENY.encode() + b"\r\n",
            "after the reload a new session from 127.0.0.8 is denied", "%s %r" % (k, data))
    t.check(len(wait_ends(d, "127.0.0.8", "denied", 1)) == 1, "logged end=denied")
    k2, data2 = one_session(port, "127.0.0.1")
    t.check(k2 == "served", "127.0.0.1 still served", "%s %r" % (k2, data2))
    r = held.cmd("NOOP", 3)
    t.check(r is not None and r.startswith(b"250"),
            "the established session from 127.0.0.8 still relays (NOOP -> 250)", repr(r))

    # SIGHUP back to deny = []: 127.0.0.8 served again.
    n0 = len(RELOADED_RE.findall(d.stderr()))
    write(conf([]))
    d.signal(signal.SIGHUP)
    ok = t.wait_until(lambda: len(RELOADED_RE.findall(d.stderr())) > n0, 5, 0.05)
    t.check(ok, "SIGHUP: the daemon logs the reload")
    k, data = one_session(port, "127.0.0.8")
    t.check(k == "served", "after SIGHUP with deny = [] 127.0.0.8 is served again",
            "%s %r" % (k, data))
    r = held.cmd("NOOP", 3)
    t.check(r is not None and r.startswith(b"250"), "the held session survived both reloads",
            repr(r))
    r = held.cmd("QUIT", 3)
    t.check(r is not None and r.startswith(b"221"), "and ends normally", repr(r))
    held.close()
    d.stop()


def test_reload_limits():
    """client_limits changed by a reload: a lower maxconn applies at once
    to the sessions already counted; a new prefix4 (a new table) while
    sessions are open leaves no stale count behind once they end."""
    b = t.Backend(t.smtp_handler("S"), name="S")
    run = t.tempdir("lbtest-run-")
    paths = {"control_socket": os.path.join(run, "lb.sock"),
             "health_log": os.path.join(run, "health.log")}
    port = t.free_port()

    def conf(**cl):
        c = {"maxconn": 3, "exempt": [], "reply": REPLY}
        c.update(cl)
        return t.make_config("%s:%d" % (H, port), [("S", b.address)],
                             fe={"client_limits": c}, glob=paths)

    def reload(text, what):
        tmp = d.conf + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, d.conf)
        rc, out, err = d.ctl("reload")
        t.require(rc == 0, "lbctl reload (%s): exit 0" % what, out + err)

    d = t.Daemon(conf(), [(H, port)], name="reload-limits").start()
    held = [attempt(port, "127.0.0.2") for _ in range(2)]
    t.require([k for k, _, _ in held] == ["served"] * 2, "2 sessions from 127.0.0.2 held")
    reload(conf(maxconn=2), "maxconn 3 -> 2")
    k, c, data = attempt(port, "127.0.0.2")
    t.check(k == "refused", "after maxconn 3 -> 2 the 3rd session from 127.0.0.2 is refused "
            "(the counts survive the reload)", "%s %r" % (k, data))
    if k == "served":
        quit_all([c])
    row = client_row(d, "127.0.0.2/32")
    t.check(row is not None and num(row, "CUR") == 2, "show clients: 127.0.0.2/32 CUR 2",
            str(row))
    reload(conf(maxconn=2, prefix4=24), "prefix4 24")
    quit_all([c for _, c, _ in held])
    wait_ends(d, "127.0.0.2", "server_close", 2)
    time.sleep(0.2)
    _, rows, raw = show_clients(d)
    t.log("  after the prefix4 reload and the old sessions' end:\n" +
          "\n".join("    " + ln for ln in raw.splitlines()))
    t.check(all(num(r, "CUR") == 0 for r in rows), "no current session left in the table",
            raw)
    res = [attempt(port, ip) for ip in ("127.0.0.3", "127.0.0.4", "127.0.0.2")]
    kinds = [k for k, _, _ in res]
    t.check(kinds == ["served", "served", "refused"],
            "prefix4 24, maxconn 2: .3 and .4 served, .2 (same /24) refused", str(kinds))
    row = client_row(d, "127.0.0.0/24")
    t.check(row is not None and num(row, "CUR") == 2, "show clients: 127.0.0.0/24 CUR 2",
            str(row))
    quit_all([c for k, c, _ in res if k == "served"])
    t.check(wait_cur(d, "127.0.0.0/24", 0), "its count falls to 0 when they end")
    d.stop()


# --------------------------------------------------------------------------
# 9. exact across worker threads


def test_workers_burst():
    b = t.Backend(t.smtp_handler("S"), name="S")
    d, port, sport = start("burst", [("S", b.address)],
                           cl={"maxconn": 2, "exempt": [], "reply": REPLY},
                           glob={"workers": 2}, stats=True)
    want = REPLY.encode() + b"\r\n"
    rounds = 5
    total_refused = 0
    for rnd in range(rounds):
        n0 = b.count()
        socks = []
        for _ in range(20):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.2", 0))
            s.setblocking(False)
            s.connect_ex((H, port))
            socks.append(s)
        # every connect completed in the kernel: now read them all
        got = {}
        deadline = time.monotonic() + 5
        bufs = {s: bytearray() for s in socks}
        while len(got) < len(socks) and time.monotonic() < deadline:
            rl = [s for s in socks if s not in got]
            r, _, _ = select.select(rl, [], [], 0.2)
            for s in r:
                try:
                    data = s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                bufs[s] += data
                if bufs[s].startswith(b"220") and b"\n" in bufs[s]:
                    got[s] = ("served", bytes(bufs[s]))
                elif not data:
                    got[s] = ("refused", bytes(bufs[s]))
        kinds = collections.Counter(k for k, _ in got.values())
        kinds["no answer"] = len(socks) - len(got)
        t.log("  round %d: 20 at once from 127.0.0.2: %s" % (rnd + 1, dict(kinds)))
        t.check(kinds["served"] == 2 and kinds["refused"] == 18,
                "round %d: exactly 2 served, 18 refused" % (rnd + 1), str(dict(kinds)))
        bad = [v for k, v in got.values() if k == "refused" and v != want]
        t.check(not bad, "round %d: each refused one got the reply line" % (rnd + 1), str(bad[:3]))
        t.check(b.count() - n0 == 2, "round %d: 2 server connections" % (rnd + 1),
                str(b.count() - n0))
        total_refused += kinds["refused"]
        for s in socks:
            s.close()
        t.check(wait_cur(d, "127.0.0.2/32", 0), "round %d: count back to 0" % (rnd + 1),
                str(client_row(d, "127.0.0.2/32")))
    v = wait_metric(sport, "maxconn", total_refused)
    t.log("  refused{reason=maxconn} = %s (refusals seen %d)" % (v, total_refused))
    t.check(v == total_refused, "the metric counts every refusal", "%s != %d" % (v, total_refused))
    d.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--flood":
        flood_main(sys.argv[2:])
        sys.exit(0)
    if HARNESS:
        t.main([test_flood], timeout=90)
    t.main([test_config_check, test_maxconn, test_no_queue_place, test_exempt, test_deny_allow,
            test_rate, test_prefix, test_show_clients, test_workers_burst, test_table_eviction,
            test_busy_not_evicted,
            test_reload, test_reload_limits, test_flood], timeout=120)
