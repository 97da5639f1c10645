#!/usr/bin/env python3
"""Faults (load-balancer.conf(5), RELAY): a server dying mid-session never
turns into a reply of the balancer's own (no 250, no 421): the client's
connection is closed; half-closes are propagated both ways; clients that
reset at once do not disturb the daemon, which keeps serving and leaks no
server connection."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"
ENDS = {"client_close", "server_close", "client_timeout", "server_timeout", "server_down",
        "no_server", "queue_timeout", "connect_failed", "shutdown"}


def start(handler, name, **kw):
    b = t.Backend(handler, name="S")
    port = t.free_port()
    text = t.make_config("%s:%d" % (H, port), [("S", b.address)],
                         fe={"timeout_client": "30s"}, be={"timeout_server": "30s"}, **kw)
    d = t.Daemon(text, [(H, port)], name=name).start()
    return d, port, b


def data_session(port, body_size, label):
    """EHLO/MAIL/RCPT/DATA, then a body of body_size bytes and the final dot,
    ignoring send errors; returns (bytes received after the 354, closed, seconds)."""
    c = t.Client(H, port, timeout=10)
    c.banner()
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<a@example.com>")
    c.cmd("RCPT TO:<b@example.com>")
    r = c.cmd("DATA")
    t.check(r and r.startswith(b"354"), "%s: DATA accepted (354)" % label, repr(r))
    line = b"x" * 998 + b"\r\n"
    body = line * (body_size // len(line) + 1)
    t0 = time.monotonic()
    send_error = None
    try:
        for i in range(0, len(body), 16384):
            c.send(body[i:i + 16384])
        c.send(b".\r\n")
    except OSError as e:
        send_error = e
    data, eof = c.read_to_eof(10)
    el = time.monotonic() - t0
    c.close()
    t.log("  %s: send error %r; after the 354 the client got %r, closed=%s (error %r) in %.2fs"
          % (label, send_error, data[:200], eof, c.error, el))
    return c, data, eof, el


def no_fabricated_reply(data):
    """No complete 250 or 421 reply line (the server's own partial bytes,
    relayed before it died, are not a reply)."""
    return not re.search(rb"(^|\n)(250|421)[ -][^\n]*\n", data)


def test_server_dies_in_data():
    for how in ("reset", "close", "partial"):
        label = "server %s after 64 KiB of DATA" % {"reset": "resets", "close": "closes",
                                                     "partial": "sends '250 2.0' then resets"}[how]
        d, port, b = start(t.smtp_handler("S", die_in_data_after=65536, die_how=how), "die-" + how)
        c, data, eof, el = data_session(port, 1 << 20, label)
        t.check(eof, "%s: the client's connection is closed" % label)
        t.check(el < 8, "%s: promptly (not by a timeout)" % label, "%.2fs" % el)
        if how == "partial":
            t.check(data in (b"", b"250 2.0"),
                    "%s: the client gets at most the server's own partial bytes" % label, repr(data))
        else:
            t.check(data == b"", "%s: the client gets no byte after the 354" % label, repr(data))
        t.check(no_fabricated_reply(data), "%s: no 250 and no 421 reach the client" % label)
        s = d.session_for(c.local_port)
        t.log("  session: %s" % s)
        if t.check(s is not None, "%s: logged" % label):
            t.check(s.get("end") in ENDS and s.get("end") in ("server_close", "server_down"),
                    "%s: end=server_close (or server_down)" % label, str(s.get("end")))
        r = t.quick_session(H, port)
        t.check(r == "S", "%s: the daemon serves the next client" % label, str(r))
        d.stop()

    # The worst moment: the whole message and the dot went through, the
    # server dies before answering.  The client must not believe it was accepted.
    label = "server resets after the final dot"
    d, port, b = start(t.smtp_handler("S", die_after_dot=True), "die-dot")
    c, data, eof, el = data_session(port, 200000, label)
    t.check(eof and data == b"", "%s: the client sees the close, no reply at all" % label, repr(data))
    t.check(no_fabricated_reply(data), "%s: no 250 and no 421" % label)
    t.check(d.alive(), "%s: daemon alive" % label)
    d.stop()

    label = "server closes after EHLO, no reply"
    d, port, b = start(t.smtp_handler("S", close_on=b"EHLO"), "close-ehlo")
    c = t.Client(H, port)
    c.banner()
    c.send(b"EHLO client.example\r\n")
    data, eof = c.read_to_eof(5)
    c.close()
    t.log("  %s: got %r closed=%s" % (label, data, eof))
    t.check(eof and data == b"", "%s: the client sees EOF and nothing else" % label, repr(data))
    s = d.session_for(c.local_port)
    t.check(s is not None and s.get("end") == "server_close", "%s: end=server_close" % label, str(s))
    d.stop()


def test_half_close():
    # 1. the client shuts down its sending side right after QUIT; the server
    #    answers 0.3 s later: the 221 must still reach the client, then EOF.
    d, port, b = start(t.smtp_handler("S", quit_delay=0.3), "halfclose1")
    c = t.Client(H, port)
    c.banner()
    c.send(b"QUIT\r\n")
    c.shutdown_wr()
    data, eof = c.read_to_eof(5)
    c.close()
    t.log("  QUIT + SHUT_WR, server answers after 0.3s: got %r EOF=%s" % (data, eof))
    t.check(data.startswith(b"221 ") and eof, "client half-close: the 221 still arrives, then EOF",
            repr(data))
    d.stop()

    # 2. the server answers only when it has seen EOF: the balancer must
    #    pass the client's half-close on to the server.
    d, port, b = start(t.smtp_handler("S", quit_wait_eof=True), "halfclose2")
    c = t.Client(H, port)
    c.banner()
    c.send(b"QUIT\r\n")
    c.shutdown_wr()
    data, eof = c.read_to_eof(8)
    c.close()
    t.log("  QUIT + SHUT_WR, server waits for EOF before its 221: got %r EOF=%s" % (data, eof))
    t.check(data.startswith(b"221 2.0.0 saw-eof") and eof,
            "the client's half-close is propagated to the server (server saw EOF, its 221 arrived)",
            repr(data))
    s = d.session_for(c.local_port)
    t.log("  session: %s" % s)
    t.check(s is not None and s.get("end") in ("client_close", "server_close"),
            "logged as a normal end", str(s))

    # 3. server-side half-close: the server shuts down its sending side after
    #    its 221 but keeps reading; the client sees EOF, and can still send.
    def srv(c):
        c.send("220 S ESMTP\r\n")
        c.readline()
        c.send("221 2.0.0 Bye\r\n")
        c.shutdown_wr()
        line = c.readline(timeout=5)
        c.note("after shutdown got %r" % line)
        c.late = line
        c.wait_eof(5)

    b2 = t.Backend(srv, name="S2")
    port2 = t.free_port()
    text = t.make_config("%s:%d" % (H, port2), [("S2", b2.address)])
    d2 = t.Daemon(text, [(H, port2)], name="halfclose3").start()
    c = t.Client(H, port2)
    c.banner()
    c.send(b"QUIT\r\n")
    r = c.reply(5)
    line = c.readline(3)
    t.log("  server SHUT_WR after 221: client got %r then %r" % (r, line))
    t.check(r and r.startswith(b"221") and line == b"", "server half-close: the client sees EOF after the 221")
    try:
        c.send(b"NOOP after server EOF\r\n")
    except OSError:
        pass
    t.wait_until(lambda: b2.conns and getattr(b2.conns[0], "late", None) is not None, 5)
    late = getattr(b2.conns[0], "late", None) if b2.conns else None
    t.log("  the server received after its own shutdown: %r" % late)
    t.check(late == b"NOOP after server EOF\r\n",
            "server half-close: client data still reaches the server afterwards", repr(late))
    c.shutdown_wr()
    c.read_to_eof(3)
    c.close()
    d2.stop()
    d.stop()


def test_resets():
    d, port, b = start(t.smtp_handler("S"), "resets")
    n_log = len(d.sessions())
    t0 = time.monotonic()
    errors = 0
    for i in range(100):
        try:
            c = t.Client(H, port, timeout=5)
            if i % 2 == 1:
                c.banner(2)      # half of them read the banner first
            c.reset()
        except OSError:
            errors += 1
    el = time.monotonic() - t0
    t.log("  100 clients connected and reset (SO_LINGER 0) in %.2fs, %d connect errors" % (el, errors))
    t.check(errors == 0, "all 100 connects succeeded")
    t.check(d.alive(), "the daemon is still running")
    got = [t.quick_session(H, port) for _ in range(5)]
    t.check(got == ["S"] * 5, "five normal sessions afterwards are served", str(got))
    t.wait_until(lambda: not b.open_conns(), 5)
    still = b.open_conns()
    t.log("  server connections: %d accepted, %d still open" % (b.count(), len(still)))
    t.check(not still, "no server connection is left open", "%d open" % len(still))
    sess = d.wait_sessions(n_log + 105, timeout=5)
    t.log("  session lines: %d; ends %s" % (len(sess) - n_log,
                                            sorted({s.get('end') for s in sess[n_log:]})))
    t.check(len(sess) - n_log >= 100, "the reset sessions are logged too", str(len(sess) - n_log))
    t.check(all(s.get("end") in ENDS for s in sess), "every end reason is one load-balancer.conf(5), LOGS lists")

    # A burst of resets from parallel threads while a long session runs.
    import threading
    keep = t.Client(H, port)
    keep.banner()
    stop = []

    def burst():
        for _ in range(50):
            try:
                c = t.Client(H, port, timeout=5)
                c.reset()
            except OSError:
                pass
    ths = [threading.Thread(target=burst, daemon=True) for _ in range(4)]
    for th in ths:
        th.start()
    ok = True
    for _ in range(10):
        r = keep.cmd("NOOP", timeout=5)
        ok = ok and bool(r and r.startswith(b"250"))
    for th in ths:
        th.join(timeout=20)
    del stop
    t.check(ok, "an established session keeps working during 200 parallel resets")
    r = keep.cmd("QUIT")
    keep.close()
    t.check(r and r.startswith(b"221"), "and ends normally")
    t.check(d.alive(), "the daemon is still running")
    rc = d.stop()
    t.log("  SIGTERM -> exit status %s" % rc)
    t.check(rc == 0, "SIGTERM: the daemon exits 0", str(rc))


if __name__ == "__main__":
    t.main([test_server_dies_in_data, test_half_close, test_resets], timeout=55)
