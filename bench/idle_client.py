#!/usr/bin/python3
"""Idle-session helper for bench/bench.py (scenario `idle`).

    idle_client.py [--count N] [--inflight K] [--timeout S] HOST:PORT [HOST:PORT...]

Opens N TCP connections (spread round robin over the targets), reads the
SMTP greeting ("220 ...") on each and keeps them all open, idle.  At most K
connections are being set up at a time.  Then it prints one line

    READY ok=N failed=F setup_s=SECONDS

on stdout and waits until stdin is closed (or a line is written to it, or
the timeout passes), closes every connection and prints `CLOSED` before
exiting.  Exit status 0 when every connection got its greeting, 1 otherwise.
It never sends anything: the sessions stay idle on the whole path."""

import argparse
import errno
import selectors
import socket
import sys
import time


def parse_target(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=6000)
    ap.add_argument("--inflight", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="bound on the set-up phase and on the hold (seconds)")
    ap.add_argument("targets", nargs="+")
    a = ap.parse_args()
    targets = [parse_target(t) for t in a.targets]

    sel = selectors.DefaultSelector()
    held = []          # sockets that got their greeting
    failed = 0
    started = 0
    pending = {}       # socket -> bytearray of what was read so far
    t0 = time.monotonic()
    deadline = t0 + a.timeout

    def start_one(i):
        host, port = targets[i % len(targets)]
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect((host, port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            return False
        pending[s] = bytearray()
        sel.register(s, selectors.EVENT_READ)
        return True

    while (started < a.count or pending) and time.monotonic() < deadline:
        while started < a.count and len(pending) < a.inflight:
            if not start_one(started):
                failed += 1
            started += 1
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                s.close()
                del pending[s]
                failed += 1
                continue
            buf = pending[s]
            buf += data
            if b"\n" in buf:
                sel.unregister(s)
                del pending[s]
                if buf.startswith(b"220"):
                    held.append(s)
                else:
                    s.close()
                    failed += 1
    for s in list(pending):
        sel.unregister(s)
        s.close()
        failed += 1
    failed += a.count - started
    setup = time.monotonic() - t0
    sys.stdout.write("READY ok=%d failed=%d setup_s=%.3f\n" % (len(held), failed, setup))
    sys.stdout.flush()

    # Hold: wait for stdin to be closed or written to, bounded in time.
    sel.register(sys.stdin, selectors.EVENT_READ)
    end = time.monotonic() + a.timeout
    while time.monotonic() < end:
        if sel.select(timeout=0.5):
            break
    for s in held:
        try:
            s.close()
        except OSError as e:
            if e.errno != errno.EBADF:
                raise
    sys.stdout.write("CLOSED\n")
    sys.stdout.flush()
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
