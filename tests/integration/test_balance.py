#!/usr/bin/env python3
"""Balancing (load-balancer.conf(5), BALANCING): smooth weighted round robin
(order and a 20000 message smtp-source run over three smtp-sinks),
leastconn, source hash stickiness and minimal movement, backup servers,
weight 0."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"


def backends(names, host=H):
    return {n: t.Backend(t.smtp_handler(n), host=host, name=n) for n in names}


def start(servers, balance="roundrobin", name="lb", **kw):
    port = t.free_port()
    text = t.make_config("%s:%d" % (H, port), servers, balance=balance, **kw)
    d = t.Daemon(text, [(H, port)], name=name).start()
    return d, port


def test_roundrobin_order():
    b = backends(["A", "B", "C"])
    d, port = start([("A", b["A"].address, {"weight": 3}), ("B", b["B"].address),
                     ("C", b["C"].address)])
    seq = "".join(t.quick_session(H, port) or "?" for _ in range(15))
    t.log("  15 sequential sessions with weights A=3 B=1 C=1: %s" % seq)
    rotations = {("ABACA" * 4)[i:i + 15] for i in range(5)}
    t.check(seq == "ABACAABACAABACA", "order is A B A C A repeated (load-balancer.conf(5), BALANCING)", seq)
    t.check(seq in rotations, "order is a rotation of A B A C A (smooth, interleaved)", seq)
    t.check("AAA" not in seq, "never three A in a row")
    d.stop()


def test_roundrobin_20000():
    sinks = [t.SmtpSink().start() for _ in range(3)]
    d, port = start([("A", sinks[0].address, {"weight": 3}), ("B", sinks[1].address),
                     ("C", sinks[2].address)], glob={"maxconn": 1000})
    r = t.smtp_source("%s:%d" % (H, port), 50, 20000, 4096)
    t.log("  %s: exit %s, %d delivered in %.1fs" % (r["cmd"], r["rc"], r["delivered"], r["elapsed"]))
    if r["stderr"].strip():
        t.log("  smtp-source stderr: %s" % r["stderr"].strip()[:500])
    t.check(r["rc"] == 0, "smtp-source exits 0 (every message accepted)", "exit %s" % r["rc"])
    t.check(r["delivered"] == 20000, "smtp-source completed 20000 DATA", str(r["delivered"]))
    counts = []
    for s in sinks:
        t.wait_until(lambda: sum(x.messages() for x in sinks) >= 20000, 5)
    counts = [s.messages() for s in sinks]
    t.log("  sink message counts A/B/C = %d / %d / %d (total %d; ideal 12000 / 4000 / 4000)"
          % (counts[0], counts[1], counts[2], sum(counts)))
    t.check(sum(counts) == 20000, "the sinks received 20000 messages in all", str(sum(counts)))
    for c, want, n in zip(counts, (12000, 4000, 4000), "ABC"):
        t.check(abs(c - want) <= 0.02 * want, "server %s got %d, within 2%% of %d" % (n, c, want))
    sess = d.wait_sessions(20000, timeout=10)
    t.check(len(sess) == 20000, "20000 session lines logged", str(len(sess)))
    bad = [s for s in sess if s.get("end") not in ("client_close", "server_close")]
    t.check(not bad, "every session ended normally", str(bad[:3]))
    d.stop()


def test_leastconn():
    b = backends(["A", "B", "C"])
    d, port = start([("A", b["A"].address), ("B", b["B"].address), ("C", b["C"].address)],
                    balance="leastconn")
    held = [t.hold_session(H, port) for _ in range(6)]
    names = [n for _, n in held]
    dist = {n: names.count(n) for n in "ABC"}
    t.log("  6 held sessions: %s -> %s" % ("".join(n or "?" for n in names), dist))
    t.check(dist == {"A": 2, "B": 2, "C": 2}, "6 long sessions spread 2/2/2", str(dist))
    # End both sessions of B: the next two new sessions must go to B.
    nlog = len(d.sessions())
    for c, n in held:
        if n == "B":
            c.cmd("QUIT")
            c.close()
    d.wait_sessions(nlog + 2)
    t.wait_until(lambda: len(b["B"].open_conns()) == 0, 3)
    new = [t.hold_session(H, port) for _ in range(2)]
    got = "".join(n or "?" for _, n in new)
    t.log("  after closing B's two sessions, two new sessions went to: %s" % got)
    t.check(got == "BB", "new sessions go to the least loaded server (B)", got)
    # Now 2/2/2 again: one more goes anywhere; then close one of A's: next -> A
    nlog = len(d.sessions())
    for c, n in held:
        if n == "A":
            c.cmd("QUIT")
            c.close()
            break
    d.wait_sessions(nlog + 1)
    t.wait_until(lambda: len(b["A"].open_conns()) == 1, 3)
    c, n = t.hold_session(H, port)
    t.check(n == "A", "after closing one of A's sessions the next one goes to A", str(n))
    for cc, _ in held + new + [(c, n)]:
        cc.close()
    d.stop()
    # Weighted: A weight 2, B weight 1: 6 held sessions -> 4 / 2.
    b2 = backends(["P", "Q"])
    d, port = start([("P", b2["P"].address, {"weight": 2}), ("Q", b2["Q"].address)],
                    balance="leastconn", name="lb-w")
    held = [t.hold_session(H, port) for _ in range(6)]
    names = [n for _, n in held]
    t.log("  weights P=2 Q=1, 6 held sessions: %s" % "".join(n or "?" for n in names))
    t.check(names.count("P") == 4 and names.count("Q") == 2,
            "leastconn relative to weight: P gets 4, Q gets 2")
    for c, _ in held:
        c.close()
    d.stop()


def mapping(port, ips):
    out = {}
    for ip in ips:
        got = {t.quick_session(H, port, source=ip) for _ in range(3)}
        out[ip] = got.pop() if len(got) == 1 else "inconsistent:" + ",".join(sorted(map(str, got)))
    return out


def test_source():
    ips = ["127.0.0.%d" % i for i in range(2, 42)]
    b = backends(["A", "B", "C"])
    full = [("A", b["A"].address), ("B", b["B"].address), ("C", b["C"].address)]
    d, port = start(full, balance="source", name="lb-src1")
    m1 = mapping(port, ips)
    d.stop()
    dist = {n: list(m1.values()).count(n) for n in "ABC"}
    t.log("  40 client addresses x 3 sessions each -> %s" % dist)
    t.check(all(not str(v).startswith("inconsistent") for v in m1.values()),
            "each client address always reaches the same server",
            str({k: v for k, v in m1.items() if str(v).startswith("inconsistent")}))
    t.check(all(dist[n] >= 3 for n in "ABC"), "every server gets a share of the clients", str(dist))

    d, port = start(full, balance="source", name="lb-src2")
    m2 = mapping(port, ips)
    d.stop()
    same = sum(1 for ip in ips if m1[ip] == m2[ip])
    t.check(same == len(ips), "after a restart with the same servers every client keeps its server",
            "%d of %d kept" % (same, len(ips)))

    for label, servers in (("C disabled", full[:2] + [("C", b["C"].address, {"disabled": True})]),
                           ("C removed", full[:2])):
        d, port = start(servers, balance="source", name="lb-src3")
        m3 = mapping(port, ips)
        d.stop()
        moved_ab = [ip for ip in ips if m1[ip] in ("A", "B") and m3[ip] != m1[ip]]
        c_clients = [ip for ip in ips if m1[ip] == "C"]
        c_dest = {m3[ip] for ip in c_clients}
        t.log("  %s: clients of A/B that moved: %d; C's %d clients now on %s"
              % (label, len(moved_ab), len(c_clients), sorted(map(str, c_dest))))
        t.check(not moved_ab, "%s: only C's clients move" % label, str(moved_ab[:5]))
        t.check(c_dest <= {"A", "B"}, "%s: C's clients go to A or B" % label)
        if len(c_clients) >= 4:
            t.check(c_dest == {"A", "B"}, "%s: C's clients spread over both A and B" % label)

    # An IPv6 client is hashed too (one address only on loopback).
    if not t.have_ipv6():
        t.log("  NOTE: ::1 cannot be bound on this machine: IPv6 source hashing not tested")
        return
    b6 = t.Backend(t.smtp_handler("V6A"), host="::1", name="V6A")
    b6b = t.Backend(t.smtp_handler("V6B"), host="::1", name="V6B")
    p6 = t.free_port("::1")
    text = t.make_config("[::1]:%d" % p6, [("V6A", b6.address), ("V6B", b6b.address)], balance="source")
    d = t.Daemon(text, [("::1", p6)], name="lb-src6").start()
    got = [t.quick_session("::1", p6) for _ in range(6)]
    t.log("  IPv6 client ::1, 6 sessions: %s" % got)
    t.check(len(set(got)) == 1 and got[0] in ("V6A", "V6B"), "an IPv6 client always reaches the same server")
    d.stop()


def test_backup_and_weight0():
    b = backends(["A", "B", "K"])

    def run(label, servers, n=10):
        d, port = start(servers, name="lb-" + label.replace(" ", "-"))
        got = [t.quick_session(H, port) for _ in range(n)]
        d.stop()
        s = "".join(x[0] if x else "?" for x in got)
        t.log("  %s: %d sessions -> %s" % (label, n, s))
        return s

    s = run("A B active, K backup", [("A", b["A"].address), ("B", b["B"].address),
                                     ("K", b["K"].address, {"backup": True})])
    t.check("K" not in s and "?" not in s, "the backup server gets nothing while actives are usable", s)
    t.check(s.count("A") == 5 and s.count("B") == 5, "actives share the sessions 5/5", s)
    s = run("A B disabled, K backup", [("A", b["A"].address, {"disabled": True}),
                                       ("B", b["B"].address, {"disabled": True}),
                                       ("K", b["K"].address, {"backup": True})])
    t.check(s == "K" * 10, "with every active disabled the backup takes all sessions", s)
    s = run("A disabled, B active, K backup", [("A", b["A"].address, {"disabled": True}),
                                               ("B", b["B"].address),
                                               ("K", b["K"].address, {"backup": True})])
    t.check(s == "B" * 10, "one usable active left: it takes all, backup none; disabled none", s)
    s = run("A B weight 0, K backup", [("A", b["A"].address, {"weight": 0}),
                                       ("B", b["B"].address, {"weight": 0}),
                                       ("K", b["K"].address, {"backup": True})])
    t.check(s == "K" * 10, "with every active at weight 0 the backup takes all sessions", s)
    s = run("A weight 0, B weight 1", [("A", b["A"].address, {"weight": 0}), ("B", b["B"].address)])
    t.check(s == "B" * 10, "a weight 0 server gets no session", s)
    for bal in ("leastconn", "source"):
        port = t.free_port()
        text = t.make_config("%s:%d" % (H, port), [("A", b["A"].address, {"weight": 0}),
                                                   ("B", b["B"].address)], balance=bal)
        d = t.Daemon(text, [(H, port)], name="lb-w0-" + bal).start()
        got = "".join((t.quick_session(H, port, source="127.0.0.%d" % (i + 2)) or "?")[0]
                      for i in range(10))
        d.stop()
        t.log("  %s, A weight 0: %s" % (bal, got))
        t.check(got == "B" * 10, "%s: a weight 0 server gets no session" % bal, got)


if __name__ == "__main__":
    t.main([test_roundrobin_order, test_leastconn, test_source, test_backup_and_weight0,
            test_roundrobin_20000], timeout=150)
