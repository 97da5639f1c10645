#!/usr/bin/env python3
"""Sick and hostile servers (issue 7, fault suite), each with its figures:

- a server that accepts and never reads while the client sends a 100 MB
  message: the client is held back (back-pressure), the balancer's RSS
  stays bounded (VmRSS sampled, VmHWM), and once the server reads, the
  whole message arrives intact (SHA-256);
- a server process killed (SIGKILL) in the middle of DATA while clients
  send messages through two servers: the client of the message in flight
  sees its connection closed and no 250; every message a client got a 250
  for was received whole by a server (messages sent / accepted /
  delivered); the daemon goes on with the other server;
- a server that blackholes SYNs (a listening socket whose accept queue is
  full: the kernel drops the SYNs): timeout_connect, then the connection
  is retried on the other server;
- hostile health-check replies (an endless multi-line greeting, binary
  junk, a greeting trickled one byte per 100 ms past the check timeout):
  each server goes DOWN with its reason, the health log stays one line per
  event, and the daemon stays responsive.  The 1 MB line is in
  test_checks.test_failure_modes ("longline")."""

import hashlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402
import hostile as h  # noqa: E402

H = "127.0.0.1"


def test_never_reads():
    MB = 1 << 20
    TOTAL = 100 * MB
    release = threading.Event()
    result = {}

    def handler(c):
        c.send("220 NR ESMTP lbtest\r\n")
        while True:
            line = c.readline(timeout=30)
            if not line:
                return
            verb = line.split()[0].upper() if line.split() else b""
            if verb == b"DATA":
                c.send("354 go ahead\r\n")
                break
            if verb == b"QUIT":
                c.send("221 bye\r\n")
                return
            c.send("250 ok\r\n")
        release.wait(30)            # accepts, never reads ... until released
        sha = hashlib.sha256()
        n = 0
        tail = bytes(c.buf)
        c.buf.clear()
        c.sock.settimeout(30)
        while True:
            if tail.endswith(b"\r\n.\r\n") or tail == b".\r\n":
                break
            data = c.sock.recv(1 << 20)
            if not data:
                result["eof"] = True
                return
            tail += data
            # keep 5 bytes back: the terminator may straddle two reads
            sha.update(tail[:-5])
            n += len(tail) - 5
            tail = tail[-5:]
        body = tail[:-3]               # what precedes ".\r\n"
        sha.update(body)
        n += len(body)
        result["len"], result["sha"] = n, sha.hexdigest()
        c.send("250 2.0.0 got len=%d sha256=%s\r\n" % (n, result["sha"]))
        line = c.readline(timeout=10)
        if line.upper().startswith(b"QUIT"):
            c.send("221 bye\r\n")

    b = t.Backend(handler, name="NR")
    port = t.free_port()
    text = t.make_config("%s:%d" % (H, port), [("NR", b.address)],
                         fe={"timeout_client": "1m"}, be={"timeout_server": "1m"})
    d = t.Daemon(text, [(H, port)], name="neverreads").start()
    pid = d.proc.pid
    st0 = h.proc_status(pid)
    c = t.Client(H, port, timeout=30)
    c.banner()
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<a@example.com>")
    c.cmd("RCPT TO:<b@example.com>")
    r = c.cmd("DATA")
    t.require(r and r.startswith(b"354"), "DATA accepted", repr(r))
    block = (b"x" * 998 + b"\r\n") * (MB // 1000) + b"y" * (MB - 1000 * (MB // 1000) - 2) + b"\r\n"
    assert len(block) == MB
    want = hashlib.sha256()
    for _ in range(TOTAL // MB):
        want.update(block)

    # The server does not read for 3 s: the client pushes what it can.
    c.sock.setblocking(False)
    sent = 0
    rss_max = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3.0:
        off = sent % MB
        try:
            sent += c.sock.send(block[off:])
        except BlockingIOError:
            time.sleep(0.05)
        rss_max = max(rss_max, h.proc_status(pid).get("VmRSS", 0))
    st1 = h.proc_status(pid)
    t.log("  server not reading for 3s: the client got %.1f MB of 100 MB out; balancer VmRSS "
          "%d KiB at start, at most %d KiB meanwhile (+%d KiB)"
          % (sent / MB, st0.get("VmRSS", 0), rss_max, rss_max - st0.get("VmRSS", 0)))
    t.check(sent < 64 * MB, "back-pressure: the client is held back (less than 64 MB out)",
            "%.1f MB" % (sent / MB))
    t.check(rss_max - st0.get("VmRSS", 0) < 16 * 1024,
            "the balancer's RSS grows by less than 16 MiB while the server does not read",
            "+%d KiB" % (rss_max - st0.get("VmRSS", 0)))

    # The server reads: everything arrives.
    release.set()
    c.sock.setblocking(True)
    c.sock.settimeout(60)
    t1 = time.monotonic()
    while sent < TOTAL:
        off = sent % MB
        n = c.sock.send(block[off:min(MB, off + (TOTAL - sent))])
        sent += n
        if (sent >> 20) % 10 == 0:
            rss_max = max(rss_max, h.proc_status(pid).get("VmRSS", 0))
    c.sock.sendall(b".\r\n")
    rep = c.reply(60)
    el = time.monotonic() - t1
    st2 = h.proc_status(pid)
    t.log("  released: 100 MB through in %.1fs (%.0f MB/s); reply %r; balancer VmHWM %d KiB, "
          "VmRSS %d KiB" % (el, TOTAL / MB / max(el, 1e-3), rep, st2.get("VmHWM", 0),
                            st2.get("VmRSS", 0)))
    t.check(rep is not None and rep.startswith(b"250"), "the server's 250 reaches the client", repr(rep))
    t.check(result.get("len") == TOTAL and result.get("sha") == want.hexdigest(),
            "the 100 MB arrive intact (length and SHA-256)",
            "len %s" % result.get("len"))
    t.check(st2.get("VmHWM", 0) - st0.get("VmRSS", 0) < 32 * 1024,
            "the balancer's peak RSS stays within 32 MiB of its start",
            "VmHWM %d KiB, start %d KiB" % (st2.get("VmHWM", 0), st0.get("VmRSS", 0)))
    c.cmd("QUIT")
    c.close()
    d.stop()
    del st1


# A server in its own process, so that it can be SIGKILLed: the reply to
# DATA carries the SHA-256 of the message, and every message is written to
# the delivery log before the 250; "mid-data" is printed on stdout once a
# message body passed 256 KiB.
SERVER_PROC = r'''
import hashlib, socket, sys, threading
port, logpath = int(sys.argv[1]), sys.argv[2]
log = open(logpath, "a")
lock = threading.Lock()
def serve(s):
    f = s.makefile("rb")
    s.sendall(b"220 A ESMTP lbtest\r\n")
    while True:
        line = f.readline()
        if not line:
            return
        verb = line.split()[0].upper() if line.split() else b""
        if verb == b"DATA":
            s.sendall(b"354 go\r\n")
            h, n, said = hashlib.sha256(), 0, False
            while True:
                l2 = f.readline()
                if not l2:
                    return
                if l2 == b".\r\n":
                    break
                h.update(l2)
                n += len(l2)
                if n > 262144 and not said:
                    said = True
                    with lock:
                        sys.stdout.write("mid-data\n")
                        sys.stdout.flush()
            with lock:
                log.write("%s %d\n" % (h.hexdigest(), n))
                log.flush()
            s.sendall(("250 2.0.0 Ok: A len=%d sha256=%s\r\n" % (n, h.hexdigest())).encode())
        elif verb == b"QUIT":
            s.sendall(b"221 bye\r\n")
            return
        else:
            s.sendall(b"250 ok\r\n")
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(128)
sys.stdout.write("ready\n")
sys.stdout.flush()
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'''


def test_server_killed_in_data():
    tmp = t.tempdir("lbtest-killed-")
    script = os.path.join(tmp, "server_a.py")
    with open(script, "w") as f:
        f.write(SERVER_PROC)
    alog = os.path.join(tmp, "a.delivered")
    aport = t.free_port()
    a = subprocess.Popen([sys.executable, script, str(aport), alog], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    t.register_proc(a, "server A")
    t.require(a.stdout.readline().strip() == b"ready", "server A started")
    bsrv = t.Backend(t.smtp_handler("B"), name="B")
    port = t.free_port()
    text = t.make_config("%s:%d" % (H, port), [("A", "%s:%d" % (H, aport)), ("B", bsrv.address)],
                         fe={"timeout_client": "30s"},
                         be={"timeout_server": "30s", "retries": 3,
                             "health_check": {"type": "smtp", "helo": "check.lbtest",
                                              "interval": "300ms", "rise": 2, "fall": 1}})
    d = t.Daemon(text, [(H, port)], name="killed").start()

    rnd = random.Random(5)
    stats = {"attempts": 0, "accepted": 0, "cut": 0, "refused": 0, "bad_ack": 0}
    accepted = []        # (sha, len) the clients got a matching 250 for
    lock = threading.Lock()
    cut_in_data = []     # what the clients cut during DATA received after the body

    def one(msg, sha):
        """One session, one message; True when a 250 for it came back."""
        c = t.Client(H, port, timeout=15)
        try:
            ban = c.banner(10)
            if not ban or not ban.startswith(b"220"):
                with lock:
                    stats["refused"] += 1
                return False
            c.cmd("EHLO client.lbtest")
            c.cmd("MAIL FROM:<a@example.com>")
            c.cmd("RCPT TO:<b@example.com>")
            r = c.cmd("DATA")
            if not r or not r.startswith(b"354"):
                return False
            try:
                for i in range(0, len(msg), 32768):
                    c.send(msg[i:i + 32768])
                    time.sleep(0.002)
                c.send(b".\r\n")
            except OSError:
                pass
            r = c.reply(15)
            if r and r.startswith(b"250"):
                ok = ("sha256=%s" % sha).encode() in r
                with lock:
                    if not ok:
                        stats["bad_ack"] += 1
                return ok
            data, eof = c.read_to_eof(2)
            with lock:
                stats["cut"] += 1
                cut_in_data.append((r, data, eof))
            return False
        except OSError:
            with lock:
                stats["cut"] += 1
            return False
        finally:
            try:
                c.cmd("QUIT", timeout=2)
            except OSError:
                pass
            c.close()

    def client(k, count):
        for j in range(count):
            body = b"".join(b"%d-%d-%06d %s\r\n" % (k, j, i, rnd.randbytes(60).translate(t.PRINTABLE))
                            for i in range(8000))
            sha = hashlib.sha256(body).hexdigest()
            for attempt in range(5):      # like an MTA: try again later
                with lock:
                    stats["attempts"] += 1
                if one(body, sha):
                    with lock:
                        stats["accepted"] += 1
                        accepted.append((sha, len(body)))
                    break
                time.sleep(0.2)

    K, M = 4, 6
    ths = [threading.Thread(target=client, args=(k, M), daemon=True) for k in range(K)]
    for th in ths:
        th.start()
    # Kill A while it receives its third message (it delivered some).
    killed_at = None
    seen = 0
    while seen < 3:
        line = a.stdout.readline()
        if line.strip() != b"mid-data":
            break
        seen += 1
    if seen == 3:
        a.send_signal(signal.SIGKILL)
        a.wait(5)
        killed_at = time.monotonic()
    for th in ths:
        th.join(timeout=60)
    t.check(killed_at is not None, "server A was killed in the middle of DATA")
    down = d.wait_event(lambda e: e.get("server") == "A" and e.get("event") == "down", 5)

    with open(alog) as f:
        a_got = {tuple(ln.split()[:1]) + (int(ln.split()[1]),) for ln in f if ln.strip()}
    b_got = set()
    for c in bsrv.conns:
        for n, sha in getattr(c, "messages", []):
            b_got.add((sha, n))
    delivered = a_got | b_got
    missing = [m for m in accepted if m not in delivered]
    t.log("  %d clients x %d messages of %d KiB: %d attempts, %d accepted (250 with the "
          "message's SHA-256), %d cut, %d refused; delivered: A %d, B %d"
          % (K, M, 8000 * 74 // 1024, stats["attempts"], stats["accepted"], stats["cut"],
             stats["refused"], len(a_got), len(b_got)))
    t.log("  the cut sessions saw after their body: %s"
          % [(r, data[:40], eof) for r, data, eof in cut_in_data])
    t.check(stats["cut"] >= 1, "a session was cut by the kill", str(stats))
    t.check(all(r in (b"", None) and not re.search(rb"(^|\n)250", data) for r, data, eof in cut_in_data),
            "the client of a message in flight sees its connection closed, never a 250",
            str(cut_in_data))
    t.check(stats["bad_ack"] == 0, "no 250 for another message's content", str(stats["bad_ack"]))
    t.check(not missing, "every message a client got a 250 for was received whole by a server",
            "%d missing" % len(missing))
    t.check(stats["accepted"] == K * M, "every message is accepted in the end (retried on B)",
            "%d of %d" % (stats["accepted"], K * M))
    t.check(down is not None, "server A is marked DOWN", str(down and down.get("_line")))
    name = t.client_session(H, port)[0]
    t.check(name == "B", "the daemon keeps serving, through B", str(name))
    d.stop()


def blackhole():
    """A port whose SYNs are dropped: a listener with backlog 0 whose
    accept queue this test fills and never accepts.  Returns (port,
    sockets to close)."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind((H, 0))
    ls.listen(0)
    port = ls.getsockname()[1]
    keep = [ls]
    for _ in range(8):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.5)
        try:
            s.connect((H, port))
            keep.append(s)
        except (socket.timeout, OSError):
            s.close()
            break
    return port, keep


def test_blackhole_syn():
    port_bh, keep = blackhole()
    try:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        t0 = time.monotonic()
        try:
            probe.connect((H, port_bh))
            blackholed = False
        except socket.timeout:
            blackholed = True
        except OSError:
            blackholed = False
        probe.close()
        t.log("  port %d with a full accept queue (%d connections queued): a connect %s"
              % (port_bh, len(keep) - 1, "times out after %.1fs" % (time.monotonic() - t0)
                 if blackholed else "does not time out"))
        if not blackholed:
            raise t.Skip("the kernel does not drop SYNs to a full accept queue here")
        good = t.Backend(t.smtp_handler("GOOD"), name="GOOD")
        port = t.free_port()
        text = t.make_config("%s:%d" % (H, port), [("BH", "%s:%d" % (H, port_bh)), ("GOOD", good.address)],
                             be={"timeout_connect": "1s", "retries": 2})
        d = t.Daemon(text, [(H, port)], name="blackhole").start()
        times, names = [], []
        for _ in range(6):
            t0 = time.monotonic()
            names.append(t.quick_session(H, port, timeout=10))
            times.append(time.monotonic() - t0)
        sess = d.wait_sessions(6)
        t.log("  6 sessions: %s, times %s s; retries %s, connect_ms %s"
              % (names, ["%.2f" % x for x in times], [s.get("retries") for s in sess],
                 [s.get("connect_ms") for s in sess]))
        t.check(names == ["GOOD"] * 6, "every client is served by the reachable server", str(names))
        slow = [x for x in times if x >= 0.9]
        t.check(slow and all(x < 3.0 for x in slow),
                "a client that drew the blackholed server waits about timeout_connect (1s), then is served",
                str(times))
        t.check(any(s.get("retries", 0) >= 1 for s in sess), "those sessions are logged with retries=1")
        t.check(all(s.get("end") in ("client_close", "server_close") for s in sess),
                "every session ends normally", str([s.get("end") for s in sess]))
        d.stop()
    finally:
        for s in keep:
            s.close()


def test_hostile_check_replies():
    stop = threading.Event()

    def endless(c):
        n = 0
        while not stop.is_set() and c.send("220-%d endless greeting line\r\n" % n):
            n += 1
        c.note("sent %d lines" % n)

    def junk(c):
        rnd = random.Random(3)
        c.send(bytes(rnd.getrandbits(8) for _ in range(4096)) + b"\x00\r\n\x1b[2J")
        c.wait_eof(10)

    def trickle(c):
        for ch in b"220 trickle.lbtest ESMTP\r\n":
            if stop.is_set() or not c.send(bytes([ch])):
                return
            time.sleep(0.1)
        c.wait_eof(10)

    servers = {"endless": endless, "junk": junk, "trickle": trickle,
               "ok": t.health_handler(t.SmtpBehavior("ok"))}
    be = {n: t.Backend(fn, name=n) for n, fn in servers.items()}
    port = t.free_port()
    text = t.make_config("%s:%d" % (H, port), [(n, be[n].address) for n in servers],
                         be={"health_check": {"type": "smtp", "helo": "check.lbtest",
                                              "interval": "500ms", "timeout": "1s",
                                              "rise": 2, "fall": 3}})
    d = t.Daemon(text, [(H, port)], name="hostilechecks").start()
    pid = d.proc.pid
    want = {"endless": "reply too long", "junk": "bad reply", "trickle": "timeout"}
    got = {}
    t0 = time.monotonic()
    for n in want:
        e = d.wait_event(lambda e, n=n: e.get("server") == n and e.get("event") == "down",
                         max(0.5, 8 - (time.monotonic() - t0)))
        got[n] = e
    cpu = h.cpu_over(pid, 2.0)
    t0 = time.monotonic()
    rc, out, err = d.ctl("show servers")
    ctl_ms = 1000 * (time.monotonic() - t0)
    rows = {r.get("SERVER"): r for r in t.parse_table(out)} if rc == 0 else {}
    for n, e in got.items():
        t.log("  %-8s %s" % (n, e["_line"] if e else "(no down event)"))
        t.check(e is not None, "%s: the server goes DOWN" % n)
        if e is None:
            continue
        t.check(e.get("step") == "greeting" and e.get("reason") == want[n],
                "%s: step=greeting reason=%r" % (n, want[n]),
                "step=%s reason=%r" % (e.get("step"), e.get("reason")))
        if n == "trickle":
            t.check(900 <= int(e.get("duration_ms", 0)) <= 1600,
                    "trickle: the check stops at its 1s timeout, not when the reply ends (2.6s)",
                    str(e.get("duration_ms")))
        t.check(rows.get(n, {}).get("STATE", "").startswith("DOWN"),
                "%s: show servers says DOWN" % n, str(rows.get(n, {}).get("STATE")))
    t.log("  while the hostile servers are checked every 500ms: daemon CPU %.2fs over 2s, "
          "show servers answered in %.0f ms" % (cpu, ctl_ms))
    t.check(cpu < 0.5, "checking hostile servers costs little CPU", "%.2fs" % cpu)
    t.check(rc == 0 and ctl_ms < 1000, "the control socket stays responsive",
            "rc=%s %.0f ms" % (rc, ctl_ms))
    with open(d.health_log, "rb") as f:
        raw = f.read()
    lines = raw.split(b"\n")
    bad = [ln for ln in lines if any(ch < 0x20 and ch != 0x09 for ch in ln)]
    t.check(not bad, "the health log has no control character inside a line (junk is escaped)",
            repr(bad[:1]))
    names = [t.client_session(H, port)[0] for _ in range(4)]
    t.check(names == ["ok"] * 4, "clients go to the healthy server", str(names))
    stop.set()
    d.stop()


if __name__ == "__main__":
    t.main([test_never_reads, test_server_killed_in_data, test_blackhole_syn,
            test_hostile_check_replies], timeout=100)
