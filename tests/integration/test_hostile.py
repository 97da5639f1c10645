#!/usr/bin/env python3
"""Hostile clients (issue 7, fault suite), each with its figures (t.log):

- 6000 concurrent sessions at global maxconn = 6000 (RLIMIT_NOFILE raised
  for the test and the daemon): all 6000 get the banner and answer a
  command; a 6001st connection waits in the kernel backlog (no banner, no
  server connection) and is served as soon as one session closes;
  afterwards no session and no descriptor is left;
- slow clients (one byte per second) and silent clients against
  timeout_client, while normal clients keep being served;
- 1000 connections opened at once, then reset at once (SO_LINGER 0);
- the control socket under garbage, very long lines, half-written commands,
  a client that pipelines without reading, and more clients than it takes.

Related tests not repeated here: test_faults (100 + 200 resets, servers
dying in DATA), test_limits (maxconn 2, queue), test_timeouts (idle
timers), test_lbctl.test_garbage (control socket one-liners)."""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402
import hostile as h  # noqa: E402

H = "127.0.0.1"


def test_6000_sessions():
    N = 6000
    # client sockets + daemon (2 per session) + epoll server, in this
    # process: the clients (N + 1) and the server side (N + 1).
    have = h.raise_nofile(2 * N + 1000)
    if have < 2 * N + 500:
        raise t.Skip("RLIMIT_NOFILE %d: cannot hold %d sessions here" % (have, N))
    srv = h.EpollSmtp("big")
    port = t.free_port()
    text = t.make_config("%s:%d" % (H, port), [("big", srv.address)],
                         fe={"timeout_client": "2m", "backlog": 1024},
                         be={"timeout_server": "2m"},
                         glob={"maxconn": N})
    d = t.Daemon(text, [(H, port)], name="c6000")
    d.start(preexec_fn=h.nofile_limit(2 * N + 1000))
    pid = d.proc.pid
    fd0 = h.nfds(pid)
    rss0 = h.proc_status(pid).get("VmRSS", 0)
    info = h.show_info(d)
    t.check(info.get("maxconn") == str(N), "the daemon runs with maxconn %d" % N,
            "show info maxconn=%s" % info.get("maxconn"))

    pool = h.ClientPool(H, port)
    t0 = time.monotonic()
    n = pool.connect(N, batch=500, timeout=60)
    banners = pool.read_lines(timeout=60)
    el = time.monotonic() - t0
    ok = sum(1 for b in banners.values() if b == b"220 big ESMTP\r\n")
    t.log("  %d connected, %d banners in %.1fs" % (n, ok, el))
    t.check(n == N, "%d clients connected" % N, str(n))
    t.check(ok == N, "all %d got the server's banner through the balancer" % N, str(ok))
    info = h.show_info(d)
    st = h.proc_status(pid)
    fd1 = h.nfds(pid)
    t.log("  sessions held: %s (show info sessions_current); server sees %d open; "
          "daemon fds %d -> %d, VmRSS %d -> %d KiB"
          % (info.get("sessions_current"), srv.open, fd0, fd1, rss0, st.get("VmRSS", 0)))
    t.check(info.get("sessions_current") == str(N), "the daemon holds %d sessions" % N,
            str(info.get("sessions_current")))

    # Every session is live: a command each, a reply each.
    pool.send_all(b"NOOP\r\n")
    replies = pool.read_lines(timeout=60)
    r250 = sum(1 for b in replies.values() if b.startswith(b"250 2.0.0 ok big"))
    t.log("  NOOP on all %d sessions: %d replies 250" % (N, r250))
    t.check(r250 == N, "every one of the %d sessions relays a command and its reply" % N,
            str(r250))

    # The 6001st: accepted by the kernel, not by the daemon.
    extra = socket.create_connection((H, port), timeout=5)
    extra.settimeout(1.5)
    try:
        early = extra.recv(100)
    except socket.timeout:
        early = None
    t.check(early is None, "connection %d gets no banner while %d sessions are open" % (N + 1, N),
            repr(early))
    t.check(srv.accepted == N, "the server saw %d connections only" % N, str(srv.accepted))
    # One session ends: the waiting one is served.
    t0 = time.monotonic()
    first = pool.socks[0]
    first.send(b"QUIT\r\n")
    pool.close([first])
    extra.settimeout(5)
    try:
        ban = extra.recv(100)
    except socket.timeout:
        ban = b"(nothing within 5s)"
    el = time.monotonic() - t0
    t.log("  connection %d: %r %.2fs after one session closed" % (N + 1, ban, el))
    t.check(ban == b"220 big ESMTP\r\n" and el < 3,
            "connection %d is served once a session closes" % (N + 1), "%r after %.2fs" % (ban, el))
    extra.send(b"QUIT\r\n")
    extra.close()

    # All close: nothing left behind.
    t0 = time.monotonic()
    pool.send_all(b"QUIT\r\n")
    pool.read_lines(timeout=30)
    pool.close()
    drained = t.wait_until(lambda: h.show_info(d).get("sessions_current") == "0", 30, 0.2)
    el = time.monotonic() - t0
    t.wait_until(lambda: h.nfds(pid) <= fd0, 10, 0.1)
    st = h.proc_status(pid)
    fd2 = h.nfds(pid)
    t.log("  all closed in %.1fs; daemon fds %d (start %d); peak RSS (VmHWM) %d KiB, "
          "VmRSS now %d KiB" % (el, fd2, fd0, st.get("VmHWM", 0), st.get("VmRSS", 0)))
    t.check(drained, "no session left after the clients quit")
    t.check(fd2 <= fd0, "no descriptor left behind", "%d > %d" % (fd2, fd0))
    t.check(t.wait_until(lambda: srv.open == 0, 10, 0.1), "no server connection left open",
            str(srv.open))
    sess = d.wait_sessions(N + 1, timeout=20)
    t.check(len(sess) == N + 1, "%d session lines logged" % (N + 1), str(len(sess)))
    t.check(all(s.get("end") in ("client_close", "server_close") for s in sess),
            "every session ended normally",
            str(sorted({s.get("end") for s in sess})))
    c = t.Client(H, port)
    ban = c.banner(5)
    c.close()
    t.check(ban == b"220 big ESMTP\r\n", "the daemon serves a new client afterwards", repr(ban))
    d.stop()


def test_slow_and_silent_clients():
    """Two frontends: "trickle" (timeout_client 3s): a client sending one
    byte per second is not idle and keeps its session, then is cut 3s after
    it stops; "strict" (timeout_client 700ms): one byte per second is too
    slow, cut at the first gap.  Silent clients are cut on both.  Normal
    clients are served throughout."""
    b = t.Backend(t.smtp_handler("S", idle=30), name="S")
    p_tr, p_st = t.free_port(), t.free_port()
    text = t.global_block() + """frontends = (
  { name = "trickle"; bind = "%s:%d"; backend = "be"; timeout_client = "3s"; },
  { name = "strict"; bind = "%s:%d"; backend = "be"; timeout_client = "700ms"; }
);
backends = ( { name = "be"; timeout_server = "30s"; servers = ( { name = "S"; address = "%s"; } ); } );
""" % (H, p_tr, H, p_st, b.address)
    d = t.Daemon(text, [(H, p_tr), (H, p_st)], name="slow").start()
    K = 20
    results = {}
    lock = threading.Lock()

    def slow(port, key, nbytes):
        """Read the banner, then send "NOOP\\r\\n"... one byte per
        second, nbytes in all; record when the balancer closed."""
        c = t.Client(H, port, timeout=20)
        c.banner(5)
        t0 = time.monotonic()
        sent = 0
        closed_at = None
        msg = b"NOOP\r\n" * 10
        while sent < nbytes:
            try:
                c.send(msg[sent:sent + 1])
                sent += 1
            except OSError:
                pass
            data, eof = c.read_to_eof(1.0)
            if eof:
                closed_at = time.monotonic() - t0
                break
        if closed_at is None:
            data, eof = c.read_to_eof(10)
            closed_at = time.monotonic() - t0 if eof else None
        c.close()
        with lock:
            results[key] = (sent, closed_at, bytes(c.received))

    def silent(port, key):
        c = t.Client(H, port, timeout=20)
        c.banner(5)
        t0 = time.monotonic()
        data, eof = c.read_to_eof(10)
        c.close()
        with lock:
            results[key] = (0, time.monotonic() - t0 if eof else None, data)

    ths = []
    for i in range(K):
        ths.append(threading.Thread(target=slow, args=(p_tr, ("trickle-slow", i), 5)))
        ths.append(threading.Thread(target=silent, args=(p_tr, ("trickle-silent", i))))
        ths.append(threading.Thread(target=slow, args=(p_st, ("strict-slow", i), 5)))
        ths.append(threading.Thread(target=silent, args=(p_st, ("strict-silent", i))))
    t0 = time.monotonic()
    for th in ths:
        th.daemon = True
        th.start()
    # Normal clients meanwhile.
    served, lat = 0, []
    while time.monotonic() - t0 < 4:
        c0 = time.monotonic()
        if t.quick_session(H, p_tr) == "S":
            served += 1
            lat.append(time.monotonic() - c0)
        time.sleep(0.1)
    for th in ths:
        th.join(timeout=25)

    def closes(kind):
        return sorted(v[1] for k, v in results.items() if k[0] == kind and v[1] is not None)

    for kind in ("trickle-slow", "trickle-silent", "strict-slow", "strict-silent"):
        cl = closes(kind)
        t.log("  %-15s %d clients, closed by the balancer: %d, after %s s (min/max)"
              % (kind, K, len(cl), "%.2f/%.2f" % (cl[0], cl[-1]) if cl else "-"))
    t.log("  meanwhile %d normal sessions served, max %.0f ms" % (served, 1000 * max(lat or [0])))
    cl = closes("trickle-silent")
    t.check(len(cl) == K and 2.6 <= cl[0] and cl[-1] <= 5.0,
            "trickle (timeout_client 3s): silent clients are cut after about 3s", str(cl[:3]))
    sl = [v for k, v in results.items() if k[0] == "trickle-slow"]
    t.check(len(sl) == K and all(v[0] == 5 for v in sl),
            "trickle: clients sending one byte per second are not cut while they send",
            str([v[0] for v in sl][:5]))
    t.check(all(v[1] is not None and 4.0 + 2.6 <= v[1] <= 4.0 + 5.0 for v in sl),
            "trickle: ... and are cut about 3s after their last byte",
            str(sorted(v[1] for v in sl if v[1] is not None)[:3]))
    for kind in ("strict-slow", "strict-silent"):
        cl = closes(kind)
        t.check(len(cl) == K and 0.5 <= cl[0] and cl[-1] <= 2.5,
                "strict (timeout_client 700ms): %s clients are cut within 2.5s" % kind.split("-")[1],
                str(cl[:3] + cl[-1:]))
    st = [v for k, v in results.items() if k[0] == "strict-slow"]
    t.check(all(v[0] <= 2 for v in st), "strict: a slow client gets at most 2 bytes in",
            str([v[0] for v in st][:5]))
    t.check(all(b"250" not in v[2] and b"421" not in v[2] for v in results.values()),
            "the cut clients get no reply of the balancer's own")
    t.check(served >= 10, "normal clients are served meanwhile", str(served))
    sess = d.wait_sessions(4 * K + served, timeout=10)
    ends = {}
    for s in sess:
        ends[s.get("end")] = ends.get(s.get("end"), 0) + 1
    t.log("  session ends: %s" % ends)
    t.check(ends.get("client_timeout", 0) == 4 * K,
            "%d sessions logged end=client_timeout" % (4 * K), str(ends))
    t.check(t.quick_session(H, p_st) == "S", "the daemon serves a new client afterwards")
    d.stop()


def test_reset_storm():
    N = 1000
    h.raise_nofile(3 * N)
    srv = h.EpollSmtp("rs")
    port = t.free_port()
    text = t.make_config("%s:%d" % (H, port), [("rs", srv.address)],
                         fe={"backlog": 2048})
    d = t.Daemon(text, [(H, port)], name="resets")
    d.start(preexec_fn=h.nofile_limit(3 * N))
    pid = d.proc.pid
    fd0 = h.nfds(pid)
    keep = t.Client(H, port)
    keep.banner()
    pool = h.ClientPool(H, port)
    t0 = time.monotonic()
    n = pool.connect(N, batch=N, timeout=30)
    # Half of them wait for the banner (the server side is connected), the
    # other half reset while the daemon may still be connecting.
    half = pool.socks[: N // 2]
    got = pool.read_lines(half, timeout=20)
    t1 = time.monotonic()
    pool.close(reset=True)
    el = time.monotonic() - t1
    t.log("  %d connections opened in %.2fs (%d banners read on half of them), "
          "all reset (SO_LINGER 0) in %.3fs" % (n, t1 - t0, len(got), el))
    t.check(n == N, "%d connections opened at once" % N, str(n))
    r = keep.cmd("NOOP", timeout=5)
    t.check(r and r.startswith(b"250"), "an established session keeps working through the storm",
            repr(r))
    sess = d.wait_sessions(N, timeout=20)
    ends = {}
    for s in sess:
        ends[s.get("end")] = ends.get(s.get("end"), 0) + 1
    t.log("  session lines %d, ends %s" % (len(sess), ends))
    t.check(len(sess) == N, "%d sessions logged" % N, str(len(sess)))
    t.check(t.wait_until(lambda: srv.open == 1, 10, 0.1),
            "no server connection left open (only the established session's)", str(srv.open))
    t.check(t.wait_until(lambda: h.nfds(pid) <= fd0 + 2, 10, 0.1),
            "the daemon's descriptors are back (+2 for the established session)",
            "%d vs %d" % (h.nfds(pid), fd0))
    info = h.show_info(d)
    t.check(info.get("sessions_current") == "1", "one session left: the established one",
            str(info.get("sessions_current")))
    r = keep.cmd("QUIT")
    keep.close()
    got = [t.quick_session(H, port) for _ in range(3)]
    t.check(got == ["rs"] * 3, "new clients are served afterwards", str(got))
    d.stop()


def test_control_socket_abuse():
    b = t.Backend(t.smtp_handler("S"), name="S")
    port = t.free_port()
    text = t.make_config("%s:%d" % (H, port), [("S", b.address)])
    d = t.Daemon(text, [(H, port)], name="ctlabuse").start()
    pid = d.proc.pid
    rss0 = h.proc_status(pid).get("VmRSS", 0)

    def ctl_ok(label):
        rc, out, err = d.ctl("show info")
        t.check(rc == 0 and "sessions_current" in out, "after %s the control socket answers" % label,
                "rc=%s %r" % (rc, err))
        t.check(t.quick_session(H, port) == "S", "after %s clients are served" % label)

    # 1. 10 MB without a newline: refused, the connection closed, memory bounded.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(d.control_socket)
    sent = 0
    chunk = b"show " * 13107
    try:
        while sent < 10 << 20:
            s.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass
    data = b""
    try:
        while True:
            x = s.recv(4096)
            if not x:
                break
            data += x
    except OSError:
        pass
    s.close()
    st = h.proc_status(pid)
    t.log("  a line of %d bytes without newline: %d bytes accepted, reply %r; VmRSS %d -> %d KiB"
          % (10 << 20, sent, data[:60], rss0, st.get("VmRSS", 0)))
    t.check(data.startswith(b"error: command longer than"), "a 10 MB line: an error reply", repr(data[:60]))
    t.check(sent < 10 << 20, "a 10 MB line: the daemon stops reading it (closes)", str(sent))
    t.check(st.get("VmRSS", 0) - rss0 < 16 * 1024, "a 10 MB line: RSS grows by less than 16 MiB")
    ctl_ok("a 10 MB line")

    # 2. Pipelined commands, read only at the end: every reply arrives.
    M = 20000
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(d.control_socket)
    w = threading.Thread(target=lambda: s.sendall(b"show servers\n" * M), daemon=True)
    w.start()
    time.sleep(1.0)
    st = h.proc_status(pid)
    got = bytearray()
    try:
        while got.count(b"\n\n") < M:
            x = s.recv(1 << 20)
            if not x:
                break
            got += x
    except OSError:
        pass
    w.join(10)
    s.close()
    t.log("  %d pipelined 'show servers' (the client reads only after 1s): %d replies, "
          "%d bytes; VmRSS while unread %d KiB (start %d)"
          % (M, got.count(b"\n\n"), len(got), st.get("VmRSS", 0), rss0))
    t.check(got.count(b"\n\n") == M, "%d pipelined commands: %d replies" % (M, M),
            str(got.count(b"\n\n")))
    t.check(st.get("VmRSS", 0) - rss0 < 16 * 1024,
            "a client that does not read: RSS grows by less than 16 MiB")

    # 3. More clients than the socket takes, each with half a command.
    half = []
    for _ in range(40):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect(d.control_socket)
            s.sendall(b"show serv")
            half.append(s)
        except OSError:
            s.close()
    time.sleep(0.5)
    cpu = h.cpu_over(pid, 1.0)
    t.log("  40 clients with half a command (%d connected): daemon CPU %.2fs over 1s" % (len(half), cpu))
    t.check(cpu < 0.3, "40 half commands: no busy loop", "%.2fs" % cpu)
    t.check(t.quick_session(H, port) == "S", "with the control socket full, clients are served")
    # Completing the halves: those the daemon took get their reply.
    answered = 0
    for s in half:
        try:
            s.sendall(b"ers\n")
            x = s.recv(65536)
            if x.startswith(b"BACKEND"):
                answered += 1
        except OSError:
            pass
        s.close()
    t.log("  completed: %d of %d got the 'show servers' reply (the socket takes 16 at once)"
          % (answered, len(half)))
    t.check(answered >= 1, "the half commands, once completed, are answered", str(answered))
    t.wait_until(lambda: h.show_info(d) != {}, 5, 0.2)
    ctl_ok("40 half commands")

    # 4. Binary garbage with newlines, 1 MB: one error per line, no crash.
    import random
    rnd = random.Random(7)
    junk = bytes(rnd.getrandbits(8) for _ in range(1 << 20))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(d.control_socket)
    def feed():
        try:
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass   # the daemon closes at the first line over 1024 bytes
    w = threading.Thread(target=feed, daemon=True)
    w.start()
    got = bytearray()
    try:
        while True:
            x = s.recv(1 << 20)
            if not x:
                break
            got += x
    except OSError:
        pass
    w.join(10)
    s.close()
    replies = [r for r in bytes(got).split(b"\n\n") if r]
    bad = [r for r in replies if not r.startswith(b"error: ")]
    t.log("  1 MiB of random bytes (%d newlines): %d replies before the daemon closed "
          "(at the first line over 1024 bytes), %d not errors"
          % (junk.count(b"\n"), len(replies), len(bad)))
    t.check(replies and not bad, "random bytes: only error replies", repr(bad[:2]))
    ctl_ok("1 MiB of random bytes")
    t.check(d.alive(), "the daemon is alive")
    d.stop()


if __name__ == "__main__":
    t.main([test_6000_sessions, test_slow_and_silent_clients, test_reset_storm,
            test_control_socket_abuse], timeout=150)
