#!/usr/bin/python3
"""SMTP client load for tests/package/test_package.sh: new sessions to
HOST:PORT as fast as THREADS threads can open them, one message each,
until STOPFILE exists or SECONDS have passed (a bound either way), plus
SLOW threads whose sessions sit in DATA for about HOLD seconds (the body
sent in pieces), so that a restart in between finds sessions in DATA.

    smtp_load.py HOST PORT STOPFILE SECONDS [THREADS SLOW HOLD]

At the end, one line of JSON on stdout with the counts:
  sessions     sessions begun
  ok           messages acknowledged with 250 after DATA
  refused      connect() refused (ECONNREFUSED): nothing listening
  reset        connection reset, or closed before the session ended
  timeout      no answer within 10 s
  unavailable  a 4xx/5xx greeting or reply (e.g. 421 when no filter is UP)
  other        any other error (the first few are listed in "errors")
  slow         sessions that went into DATA to be held there
  slow_ok      of those, the ones acknowledged with 250
  rate         sessions per second over the run
  first_failure, last_failure  seconds from the start to the first and
               the last failed session (null when none failed)
Exit status 0 (the counts say how it went), 2 on a usage error.
"""

import json
import os
import socket
import sys
import threading
import time

TIMEOUT = 10.0


class Failure(Exception):
    def __init__(self, kind, detail=""):
        Exception.__init__(self, kind)
        self.kind = kind
        self.detail = detail


def reply(f):
    """One SMTP reply (multi-line too): its code as an int."""
    while True:
        line = f.readline(1024)
        if not line:
            raise Failure("reset", "connection closed")
        if len(line) < 4 or not line[:3].isdigit():
            raise Failure("other", "bad reply %r" % line)
        if line[3:4] != b"-":
            return int(line[:3])


def expect(f, want, what):
    code = reply(f)
    if code // 100 != want:
        raise Failure("unavailable", "%s: %d" % (what, code))


def session(host, port, n, hold, in_data):
    """One SMTP session with one message; in_data() is called once the
    DATA command was accepted."""
    s = socket.create_connection((host, port), timeout=TIMEOUT)
    try:
        # Commands go out one write each: no Nagle wait behind a delayed
        # ACK (40 ms a session).
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(TIMEOUT)
        f = s.makefile("rb")
        expect(f, 2, "greeting")
        s.sendall(b"EHLO load.test\r\n")
        expect(f, 2, "EHLO")
        s.sendall(b"MAIL FROM:<sender@load.test>\r\n")
        expect(f, 2, "MAIL")
        s.sendall(b"RCPT TO:<rcpt@load.test>\r\n")
        expect(f, 2, "RCPT")
        s.sendall(b"DATA\r\n")
        expect(f, 3, "DATA")
        in_data()
        if hold > 0:
            s.sendall(b"Subject: load %d\r\n\r\n" % n)
            pieces = 10
            for i in range(pieces):
                s.sendall(b"line %d of message %d\r\n" % (i, n))
                time.sleep(hold / pieces)
            s.sendall(b"message %d\r\n.\r\n" % n)
        else:
            s.sendall(b"Subject: load %d\r\n\r\nmessage %d\r\n.\r\n" % (n, n))
        expect(f, 2, "end of DATA")
        s.sendall(b"QUIT\r\n")
        try:
            reply(f)
        except Failure:
            pass  # the message is in: a close instead of 221 is no loss
    finally:
        s.close()


def main(argv):
    if len(argv) not in (5, 8):
        sys.stderr.write(__doc__)
        return 2
    host, port, stopfile, seconds = argv[1], int(argv[2]), argv[3], float(argv[4])
    threads, slow, hold = (int(argv[5]), int(argv[6]), float(argv[7])) if len(argv) == 8 \
        else (8, 2, 2.0)
    lock = threading.Lock()
    counts = {k: 0 for k in ("sessions", "ok", "refused", "reset", "timeout",
                             "unavailable", "other", "slow", "slow_ok")}
    failed_at = []
    errors = []
    seq = [0]
    start = time.monotonic()
    deadline = start + seconds

    def note(key, detail=None):
        with lock:
            counts[key] += 1
            if detail is not None:
                now = time.monotonic() - start
                failed_at.append(now)
                if len(errors) < 20:
                    errors.append("%.3fs %s: %s" % (now, key, detail))

    def run(is_slow):
        while time.monotonic() < deadline and not os.path.exists(stopfile):
            with lock:
                seq[0] += 1
                n = seq[0]
                counts["sessions"] += 1
            try:
                session(host, port, n, hold if is_slow else 0,
                        (lambda: note("slow")) if is_slow else (lambda: None))
                note("slow_ok" if is_slow else "ok")
                if is_slow:
                    note("ok")
            except ConnectionRefusedError as e:
                note("refused", str(e))
                time.sleep(0.001)
            except (ConnectionResetError, BrokenPipeError) as e:
                note("reset", str(e))
            except socket.timeout as e:
                note("timeout", str(e) or "timed out")
            except Failure as e:
                note(e.kind, e.detail)
            except OSError as e:
                note("other", repr(e))

    ts = [threading.Thread(target=run, args=(i < slow,), daemon=True)
          for i in range(threads + slow)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 2 * TIMEOUT + hold)
    took = time.monotonic() - start
    counts["seconds"] = round(took, 2)
    counts["rate"] = round(counts["sessions"] / took, 1) if took > 0 else 0
    counts["first_failure"] = round(min(failed_at), 3) if failed_at else None
    counts["last_failure"] = round(max(failed_at), 3) if failed_at else None
    counts["errors"] = errors
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
