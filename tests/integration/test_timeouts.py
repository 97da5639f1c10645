#!/usr/bin/env python3
"""Idle timeouts and connect retries (load-balancer.conf(5), FRONTENDS,
BACKENDS and RELAY).

One idle timer per session; timeout_client applies when it is the client's
turn (after the server's data ended a line, or the client sent a partial
line), timeout_server when it is the server's turn (before the banner, after
a complete client command, while the server is mid-line).  Two frontends
make the limits asymmetric so that the wrong limit or the wrong reason shows:
  fe "cl" (timeout_client 1s) -> be "cl" (timeout_server 8s)
  fe "sv" (timeout_client 8s) -> be "sv" (timeout_server 1s)
Connect retries: a refused port is retried on the other server; all refused
-> unavailable_reply, end=connect_failed."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"
SHORT, LONG = 1.0, 8.0


def two_frontends(handler_cl, handler_sv):
    bcl = t.Backend(handler_cl, name="CL")
    bsv = t.Backend(handler_sv, name="SV")
    pcl, psv = t.free_port(), t.free_port()
    text = t.global_block() + """frontends = (
  { name = "cl"; bind = "%s:%d"; backend = "cl"; timeout_client = "1s"; },
  { name = "sv"; bind = "%s:%d"; backend = "sv"; timeout_client = "8s"; }
);
backends = (
  { name = "cl"; timeout_server = "8s"; servers = ( { name = "CL"; address = "%s"; } ); },
  { name = "sv"; timeout_server = "1s"; servers = ( { name = "SV"; address = "%s"; } ); }
);
""" % (H, pcl, H, psv, bcl.address, bsv.address)
    d = t.Daemon(text, [(H, pcl), (H, psv)], name="timeouts").start()
    return d, pcl, psv, bcl, bsv


def closed_after(c, t0, label, want_data=b"", lo=SHORT * 0.85, hi=SHORT + 2.0):
    data, eof = c.read_to_eof(LONG + 4)
    el = time.monotonic() - t0
    c.close()
    t.log("  %s: closed=%s after %.2fs, bytes after the last exchange %r" % (label, eof, el, data))
    t.check(eof, "%s: the balancer closes the connection" % label)
    t.check(lo <= el <= hi, "%s: after about 1s (%.1f..%.1f)" % (label, lo, hi), "%.2fs" % el)
    if want_data is not None:
        t.check(data == want_data, "%s: the client gets %s" % (
            label, "no byte of the balancer's own" if not want_data else "only the server's %r" % want_data),
            repr(data))
    return el


def end_of(d, c, label, want):
    s = d.session_for(c.local_port)
    t.log("  %s: %s" % (label, s))
    if t.check(s is not None, "%s: session logged" % label):
        t.check(s.get("end") == want, "%s: end=%s" % (label, want), str(s.get("end")))
    return s


def test_client_timeout():
    d, pcl, psv, bcl, bsv = two_frontends(t.smtp_handler("CL"), t.smtp_handler("SV"))
    # silent after the banner
    c = t.Client(H, pcl)
    ban = c.banner()
    t0 = time.monotonic()
    t.check(t.banner_name(ban) == "CL", "banner received")
    closed_after(c, t0, "silent client after banner")
    end_of(d, c, "silent client after banner", "client_timeout")
    t.wait_until(lambda: all(x.eof or x.closed for x in bcl.conns), 3)
    t.check(bcl.conns and bcl.conns[-1].eof, "the server side is closed too (server saw EOF)")

    # silent after a reply (not only after the banner)
    c = t.Client(H, pcl)
    c.banner()
    r = c.cmd("EHLO x.example")
    t0 = time.monotonic()
    t.check(r and r.startswith(b"250"), "EHLO answered")
    closed_after(c, t0, "silent client after EHLO reply")
    end_of(d, c, "silent client after EHLO reply", "client_timeout")

    # partial line, then silence: still the client's turn
    c = t.Client(H, pcl)
    c.banner()
    c.send(b"NOO")
    t0 = time.monotonic()
    closed_after(c, t0, "client silent after a partial line")
    end_of(d, c, "client silent after a partial line", "client_timeout")

    # activity resets the idle timer: NOOP every 0.4s for 2.4s
    c = t.Client(H, pcl)
    c.banner()
    ok = True
    for _ in range(6):
        time.sleep(0.4)
        r = c.cmd("NOOP", timeout=3)
        ok = ok and bool(r and r.startswith(b"250"))
    t.check(ok, "a client active every 0.4s is not cut by a 1s timeout_client (2.4s session)")
    r = c.cmd("QUIT")
    t.check(r and r.startswith(b"221"), "it can QUIT normally")
    c.close()

    # with the server's timeout 1s and the client's 8s, a client silent for
    # 2.5s after the banner is NOT cut (the client's turn: timeout_client)
    c = t.Client(H, psv)
    c.banner()
    quiet = c.nothing_for(2.5)
    t.check(quiet, "timeout_server (1s) does not apply while the client is silent after the banner")
    r = c.cmd("QUIT", timeout=3)
    t.check(r and r.startswith(b"221"), "the session is alive after 2.5s of client silence")
    c.close()
    d.stop()


def test_server_timeout():
    # SV backend: one connection never greets, one stalls after MAIL, one
    # stops in the middle of a reply line.  The handler picks by order.
    modes = ["nobanner", "hang_mail", "midline", "slow_mail_cl"]
    seen = []

    def sv_handler(c):
        mode = modes[len(seen)] if len(seen) < len(modes) else "normal"
        seen.append(mode)
        if mode == "nobanner":
            t.smtp_handler("SV", banner=False)(c)
        elif mode == "hang_mail":
            t.smtp_handler("SV", hang_on=b"MAIL")(c)
        elif mode == "midline":
            c.send("220 SV ESMTP\r\n")
            c.readline()
            c.send("250 2.1.0 O")
            c.hang()
        else:
            t.smtp_handler("SV")(c)

    d, pcl, psv, bcl, bsv = two_frontends(t.smtp_handler("CL", reply_delay=(b"MAIL", 2.5)),
                                          sv_handler)
    c = t.Client(H, psv)
    t0 = time.monotonic()
    closed_after(c, t0, "server never sends a banner", want_data=None)
    t.check(c.received in (b"", t.DEFAULT_UNAVAILABLE),
            "no banner: the client gets nothing (or only the unavailable_reply)", repr(bytes(c.received)))
    end_of(d, c, "server never sends a banner", "server_timeout")

    c = t.Client(H, psv)
    c.banner()
    c.cmd("EHLO x.example")
    c.send(b"MAIL FROM:<a@example.com>\r\n")
    t0 = time.monotonic()
    closed_after(c, t0, "server silent after MAIL")
    end_of(d, c, "server silent after MAIL", "server_timeout")

    c = t.Client(H, psv)
    c.banner()
    c.send(b"MAIL FROM:<a@example.com>\r\n")
    t0 = time.monotonic()
    closed_after(c, t0, "server stops in the middle of a reply line", want_data=b"250 2.1.0 O")
    end_of(d, c, "server stops in the middle of a reply line", "server_timeout")

    # With timeout_client 1s and timeout_server 8s, a server taking 2.5s to
    # answer MAIL is waited for (the server's turn: timeout_server).
    c = t.Client(H, pcl)
    c.banner()
    t0 = time.monotonic()
    r = c.cmd("MAIL FROM:<a@example.com>", timeout=6)
    el = time.monotonic() - t0
    t.log("  slow server (2.5s) behind timeout_client 1s: reply %r after %.2fs" % (r, el))
    t.check(r and r.startswith(b"250"), "timeout_client (1s) does not apply while the server works")
    r = c.cmd("QUIT", timeout=3)
    t.check(r and r.startswith(b"221"), "that session ends normally")
    c.close()
    d.stop()


def test_retries():
    good = t.Backend(t.smtp_handler("GOOD"), name="GOOD")
    refused = t.free_port()   # nothing listens there: connection refused
    port = t.free_port()
    text = t.make_config("%s:%d" % (H, port),
                         [("DEAD", "%s:%d" % (H, refused)), ("GOOD", good.address)],
                         be={"retries": 3, "timeout_connect": "2s"})
    d = t.Daemon(text, [(H, port)], name="retries").start()
    got = []
    t0 = time.monotonic()
    for _ in range(10):
        got.append(t.quick_session(H, port, timeout=10))
    el = time.monotonic() - t0
    t.log("  10 sessions with one refused server: %s in %.2fs" % (got, el))
    t.check(got == ["GOOD"] * 10, "every client is served by the working server", str(got))
    sess = d.wait_sessions(10)
    retried = [s for s in sess if s.get("retries", 0) >= 1]
    t.log("  retries per session: %s" % [s.get("retries") for s in sess])
    t.check(retried, "some sessions show retries>=1", "%d of %d" % (len(retried), len(sess)))
    t.check(all(s.get("server") == "GOOD" for s in sess), "every session logged server=GOOD")
    t.check(all(s.get("end") in ("client_close", "server_close") for s in sess),
            "every session ended normally", str([s.get("end") for s in sess]))
    d.stop()

    # retries = 0: one attempt only; the clients that drew the dead server get the 421
    port = t.free_port()
    text = t.make_config("%s:%d" % (H, port),
                         [("DEAD", "%s:%d" % (H, refused)), ("GOOD", good.address)],
                         be={"retries": 0})
    d = t.Daemon(text, [(H, port)], name="retries0").start()
    res = []
    for _ in range(6):
        c = t.Client(H, port)
        b = c.banner(5)
        res.append(b)
        c.close()
    sess = d.wait_sessions(6)
    n421 = sum(1 for b in res if b == t.DEFAULT_UNAVAILABLE)
    ngood = sum(1 for b in res if t.banner_name(b) == "GOOD")
    t.log("  retries=0: %d got the 421, %d served; ends %s" % (n421, ngood, [s.get("end") for s in sess]))
    t.check(n421 >= 1 and ngood >= 1 and n421 + ngood == 6,
            "retries=0: a refused connect is not retried (421), the others are served")
    t.check(all(s.get("retries") == 0 for s in sess), "retries=0 logged")
    t.check(sum(1 for s in sess if s.get("end") == "connect_failed") == n421,
            "each 421 is logged end=connect_failed")
    d.stop()

    # all servers refuse
    port = t.free_port()
    refused2 = t.free_port()
    text = t.make_config("%s:%d" % (H, port),
                         [("DEAD1", "%s:%d" % (H, refused)), ("DEAD2", "%s:%d" % (H, refused2))],
                         be={"retries": 3})
    d = t.Daemon(text, [(H, port)], name="allrefused").start()
    c = t.Client(H, port)
    t0 = time.monotonic()
    data, eof = c.read_to_eof(15)
    el = time.monotonic() - t0
    c.close()
    t.log("  all servers refuse: got %r EOF=%s after %.2fs" % (data, eof, el))
    t.check(data == t.DEFAULT_UNAVAILABLE and eof, "all refused: the 421 line, then close", repr(data))
    s = d.session_for(c.local_port)
    t.log("  session: %s" % s)
    if t.check(s is not None, "all refused: logged"):
        t.check(s.get("end") == "connect_failed", "end=connect_failed", str(s.get("end")))
        t.check(s.get("retries") == 3, "retries=3 (all spent)", str(s.get("retries")))
        t.check(s.get("connect_ms") == -1, "connect_ms=-1 (never connected)", str(s.get("connect_ms")))
    d.stop()


if __name__ == "__main__":
    t.main([test_client_timeout, test_server_timeout, test_retries], timeout=55)
