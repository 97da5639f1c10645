#!/usr/bin/env python3
"""Limits (load-balancer.conf(5), BACKENDS, SERVERS and RELAY): server
maxconn and the backend queue (FIFO, timeout_queue -> unavailable_reply), no
usable server, an empty unavailable_reply, global and frontend maxconn (stop
accepting)."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"


def start(servers, name, **kw):
    port = t.free_port()
    text = t.make_config("%s:%d" % (H, port), servers, **kw)
    d = t.Daemon(text, [(H, port)], name=name).start()
    return d, port


def test_queue_wait():
    b = t.Backend(t.smtp_handler("S"), name="S")
    d, port = start([("S", b.address, {"maxconn": 1})], "queue",
                    be={"timeout_queue": "10s"})
    c1, n1 = t.hold_session(H, port)
    t.check(n1 == "S", "first client served")
    c2 = t.Client(H, port)
    quiet = c2.nothing_for(1.0)
    t.check(quiet, "second client waits in the queue (no banner within 1s)")
    t.check(b.count() == 1, "the server has one connection only while the second client waits",
            "%d" % b.count())
    t0 = time.monotonic()
    r = c1.cmd("QUIT")
    c1.close()
    ban = c2.banner(5)
    waited = time.monotonic() - t0
    t.log("  first QUIT -> %r; second client's banner %r %.2fs later" % (r, ban, waited))
    t.check(t.banner_name(ban) == "S" and waited < 2.0,
            "second client is served as soon as the first ends", "%.2fs" % waited)
    c2.cmd("QUIT")
    c2.close()
    s2 = d.session_for(c2.local_port)
    t.log("  second session: %s" % s2)
    if t.check(s2 is not None, "second session logged"):
        t.check(s2.get("queue_ms", 0) >= 900, "its queue_ms shows the wait (>= 900)",
                str(s2.get("queue_ms")))
        t.check(s2.get("end") in ("client_close", "server_close"), "it ended normally",
                str(s2.get("end")))
    s1 = d.session_for(c1.local_port)
    if s1:
        t.check(s1.get("queue_ms", 99) < 200, "first session's queue_ms is small",
                str(s1.get("queue_ms")))

    # FIFO: c3 then c4 queue behind c5 ... order of service follows arrival.
    c1, _ = t.hold_session(H, port)
    c2 = t.Client(H, port)
    time.sleep(0.3)
    # a queued client that gives up must not take a slot
    cx = t.Client(H, port)
    time.sleep(0.2)
    cx.close()
    time.sleep(0.2)
    c3 = t.Client(H, port)
    time.sleep(0.3)
    c1.cmd("QUIT")
    c1.close()
    b2 = c2.banner(3)
    t.check(t.banner_name(b2) == "S", "FIFO: the oldest waiting client is served first")
    t.check(c3.nothing_for(0.5), "FIFO: the next one still waits")
    c2.cmd("QUIT")
    c2.close()
    b3 = c3.banner(3)
    t.check(t.banner_name(b3) == "S",
            "FIFO: then the next (a client that left the queue took no slot)")
    c3.cmd("QUIT")
    c3.close()
    d.stop()


def test_queue_timeout():
    b = t.Backend(t.smtp_handler("S"), name="S")
    d, port = start([("S", b.address, {"maxconn": 1})], "qtimeout",
                    be={"timeout_queue": "1s"})
    c1, _ = t.hold_session(H, port)
    c2 = t.Client(H, port)
    t0 = time.monotonic()
    data, eof = c2.read_to_eof(6)
    el = time.monotonic() - t0
    c2.close()
    t.log("  waiting client got %r and EOF=%s after %.2fs" % (data, eof, el))
    t.check(data == t.DEFAULT_UNAVAILABLE, "waiting client gets exactly the default 421 line + CRLF",
            repr(data))
    t.check(eof, "and the connection is closed")
    t.check(0.8 <= el <= 3.0, "after about timeout_queue (1s)", "%.2fs" % el)
    s = d.session_for(c2.local_port)
    t.log("  session: %s" % s)
    if t.check(s is not None, "queue timeout logged"):
        t.check(s.get("end") == "queue_timeout", "end=queue_timeout", str(s.get("end")))
        t.check(s.get("server") == "-", "server=-", str(s.get("server")))
        t.check(s.get("connect_ms") == -1, "connect_ms=-1", str(s.get("connect_ms")))
        t.check(s.get("bytes_out") == len(t.DEFAULT_UNAVAILABLE), "bytes_out counts the 421 line",
                str(s.get("bytes_out")))
    t.check(b.count() == 1, "the server never saw the second client", str(b.count()))
    r = c1.cmd("QUIT")
    t.check(r and r.startswith(b"221"), "the first client's session is unaffected")
    c1.close()
    d.stop()


def test_no_server():
    b = t.Backend(t.smtp_handler("S"), name="S")
    d, port = start([("S", b.address, {"disabled": True}),
                     ("T", b.address, {"disabled": True})], "noserver")
    c = t.Client(H, port)
    t0 = time.monotonic()
    data, eof = c.read_to_eof(5)
    el = time.monotonic() - t0
    c.close()
    t.log("  got %r EOF=%s after %.2fs" % (data, eof, el))
    t.check(data == t.DEFAULT_UNAVAILABLE, "no usable server: the 421 line", repr(data))
    t.check(eof and el < 1.0, "immediately followed by close", "%.2fs" % el)
    s = d.session_for(c.local_port)
    t.log("  session: %s" % s)
    if t.check(s is not None, "logged"):
        t.check(s.get("end") == "no_server", "end=no_server", str(s.get("end")))
        t.check(s.get("server") == "-" and s.get("connect_ms") == -1, "server=- connect_ms=-1")
        t.check(s.get("bytes_out") == len(t.DEFAULT_UNAVAILABLE), "bytes_out counts the 421 line",
                str(s.get("bytes_out")))
    t.check(b.count() == 0, "the disabled server got no connection")
    # A client that sends first (before reading) still gets the line and close.
    c = t.Client(H, port)
    try:
        c.send(b"EHLO early.example\r\n")
    except OSError:
        pass
    data, eof = c.read_to_eof(5)
    c.close()
    t.log("  a client that talks before the banner got %r EOF=%s error=%r (not checked)"
          % (data, eof, c.error))
    d.stop()

    # A custom reply and an empty reply.
    d, port = start([("S", b.address, {"disabled": True})], "custom",
                    fe={"unavailable_reply": "421 4.7.0 lbtest says come back later"})
    c = t.Client(H, port)
    data, eof = c.read_to_eof(5)
    c.close()
    t.check(data == b"421 4.7.0 lbtest says come back later\r\n" and eof,
            "unavailable_reply is sent as configured + CRLF", repr(data))
    d.stop()
    d, port = start([("S", b.address, {"disabled": True})], "empty", fe={"unavailable_reply": ""})
    c = t.Client(H, port)
    t0 = time.monotonic()
    data, eof = c.read_to_eof(5)
    el = time.monotonic() - t0
    c.close()
    t.log("  unavailable_reply = \"\": got %r EOF=%s after %.2fs" % (data, eof, el))
    t.check(data == b"" and eof and el < 1.0, 'unavailable_reply = "": close without a byte')
    s = d.session_for(c.local_port)
    t.check(s is not None and s.get("end") == "no_server" and s.get("bytes_out") == 0,
            "logged end=no_server bytes_out=0", str(s))
    d.stop()


def maxconn_case(label, glob, fe):
    b = t.Backend(t.smtp_handler("S"), name="S")
    d, port = start([("S", b.address)], label, glob=glob, fe=fe)
    c1, n1 = t.hold_session(H, port)
    c2, n2 = t.hold_session(H, port)
    t.check(n1 == "S" and n2 == "S", "%s: two clients served" % label)
    try:
        c3 = t.Client(H, port, timeout=3)
        connected = True
    except OSError as e:
        connected = False
        t.log("  third connect failed: %r" % e)
    t.check(connected, "%s: third client's connect succeeds (kernel backlog)" % label)
    if not connected:
        d.stop()
        return
    quiet = c3.nothing_for(1.5)
    t.check(quiet, "%s: third client gets no banner while two sessions are open" % label)
    t.check(b.count() == 2, "%s: the server saw two connections only" % label, str(b.count()))
    t0 = time.monotonic()
    c1.cmd("QUIT")
    c1.close()
    ban = c3.banner(5)
    el = time.monotonic() - t0
    t.log("  %s: third client's banner %r %.2fs after the first closed" % (label, ban, el))
    t.check(t.banner_name(ban) == "S" and el < 2.0,
            "%s: third client is served once a slot frees" % label, "%.2fs" % el)
    for c in (c2, c3):
        c.cmd("QUIT")
        c.close()
    # after all that, the daemon still takes new clients normally
    got = [t.quick_session(H, port) for _ in range(3)]
    t.check(got == ["S"] * 3, "%s: later clients are served" % label, str(got))
    d.stop()


def test_global_maxconn():
    maxconn_case("global-maxconn", {"maxconn": 2}, None)


def test_frontend_maxconn():
    maxconn_case("frontend-maxconn", {"maxconn": 100}, {"maxconn": 2})


if __name__ == "__main__":
    t.main([test_queue_wait, test_queue_timeout, test_no_server, test_global_maxconn,
            test_frontend_maxconn], timeout=55)
