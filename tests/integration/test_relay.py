#!/usr/bin/env python3
"""The relay's edge cases (relay.c): TCP urgent data in the middle of a
spliced transfer, an upload blocked by a slow server judged by the
server's limit, and a queued client that sent early bytes then hung up."""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"
MB = 1024 * 1024


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return int(v[11]) + int(v[12])


def sink_handler(got, delay=0.0, rate=None):
    """Banner, then read everything to EOF (after delay; at rate bytes/s
    when given), recording the byte count and whether EOF came."""
    def handler(c):
        c.sock.sendall(b"220 sink\r\n")
        time.sleep(delay)
        c.sock.settimeout(20)
        n = 0
        t0 = time.monotonic()
        while True:
            try:
                b = c.sock.recv(65536 if rate is None else 16384)
            except OSError:
                got["error"] = True
                break
            if not b:
                got["eof"] = True
                break
            n += len(b)
            got["bytes"] = n
            if rate is not None:
                ahead = n / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        c.close()
    return handler


def start(name, servers, be=None, fe=None, env=None):
    port = t.free_port()
    text = t.make_config("%s:%d" % (H, port), servers, be=be, fe=fe)
    d = t.Daemon(text, [(H, port)], name=name)
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        d.start()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return d, port


def test_urgent_data_while_splicing():
    got = {}
    bk = t.Backend(sink_handler(got, delay=1.0), name="late")
    d, port = start("urgent", [("late", bk.address)])
    c = socket.create_connection((H, port))
    c.settimeout(10)
    t.check(c.recv(100).startswith(b"220"), "banner through the balancer")
    c0 = cpu_ticks(d.proc.pid)
    block = b"x" * MB
    c.sendall(block * 2)                  # bulk: splicing starts
    c.send(b"!", socket.MSG_OOB)          # urgent byte: splice stops at it
    c.sendall(block * 2)
    c.shutdown(socket.SHUT_WR)
    ok = t.wait_until(lambda: got.get("eof"), 15)
    used = cpu_ticks(d.proc.pid) - c0
    t.log("  server got %s bytes, eof=%s; balancer CPU %d ticks"
          % (got.get("bytes"), got.get("eof"), used))
    t.check(ok and got.get("bytes", 0) >= 4 * MB,
            "every byte after the urgent one arrives, then the EOF", str(got))
    t.check(used < 150, "no busy loop (CPU ticks < 150 for 4 MB)", str(used))
    c.close()
    s = d.wait_sessions(1, 5)
    t.check(s and s[-1].get("end") == "client_close", "session ends normally",
            str(s[-1] if s else None))
    d.stop()
    bk.stop()


def test_blocked_upload_uses_server_limit():
    for splice in ("0", "1"):
        got = {}
        bk = t.Backend(sink_handler(got, rate=800 * 1000), name="slow")
        d, port = start("upload" + splice, [("slow", bk.address)],
                        be={"timeout_server": "5s"}, fe={"timeout_client": "1s"},
                        env={"LB_SPLICE": splice})
        c = socket.create_connection((H, port))
        c.settimeout(30)
        c.recv(100)
        payload = b"y" * (4 * MB)     # about 5 s at 800 KB/s
        err = None
        try:
            c.sendall(payload)
            c.shutdown(socket.SHUT_WR)
        except OSError as e:
            err = e
        t.wait_until(lambda: got.get("eof") or got.get("error"), 20)
        t.log("  LB_SPLICE=%s: server got %s bytes, eof=%s, client error %r"
              % (splice, got.get("bytes"), got.get("eof"), err))
        t.check(err is None and got.get("eof") and got.get("bytes") == len(payload),
                "LB_SPLICE=%s: a 4 MB upload to a slow reader (5 s) is not cut by "
                "timeout_client 1s" % splice, str(got))
        c.close()
        s = d.wait_sessions(1, 5)
        t.check(s and s[-1].get("end") != "client_timeout",
                "LB_SPLICE=%s: not logged as client_timeout" % splice,
                str(s[-1] if s else None))
        d.stop()
        bk.stop()


def test_queued_client_hangs_up_after_early_bytes():
    hold = threading.Event()

    def handler(c):
        c.sock.sendall(b"220 one\r\n")
        hold.wait(10)
        c.close()
    bk = t.Backend(handler, name="one")
    d, port = start("queue", [("one", bk.address, {"maxconn": 1})],
                    be={"timeout_queue": "20s"})
    first = socket.create_connection((H, port))
    first.recv(100)
    second = socket.create_connection((H, port))
    time.sleep(0.3)                      # queued behind the first
    second.sendall(b"EHLO early\r\n")    # early bytes, then gone
    time.sleep(0.2)
    t0 = time.monotonic()
    second.close()

    def gone():
        return [s for s in d.sessions() if s.get("end") == "client_close"]
    ok = t.wait_until(gone, 3)
    el = time.monotonic() - t0
    t.log("  queued client's hang-up noticed after %.2fs: %s" % (el, ok))
    t.check(ok and el < 1.5, "the hang-up of a queued client that sent early bytes "
            "is noticed at once (not when a slot frees)", "%.2fs" % el)
    t.check(bk.count() == 1, "it never reached the server", str(bk.count()))
    hold.set()
    first.close()
    d.stop()
    bk.stop()


if __name__ == "__main__":
    t.main([test_urgent_data_while_splicing, test_blocked_upload_uses_server_limit,
            test_queued_client_hangs_up_after_early_bytes], timeout=90)
