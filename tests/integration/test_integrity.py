#!/usr/bin/env python3
"""Message integrity (load-balancer.conf(5), RELAY): bytes are relayed
unchanged in both directions, over IPv4 and IPv6, for messages up to 1 MB,
sequentially and concurrently; a raw session's transcript is identical on
both sides."""

import hashlib
import os
import random
import re
import smtplib
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

SEED = int(os.environ.get("LB_SEED", "0")) or random.randrange(1, 1 << 30)
RND = random.Random(SEED)
# Bytes allowed inside an SMTP line (8BITMIME): anything but NUL, CR, LF.
LINE_BYTES = bytes(b for b in range(1, 256) if b not in (10, 13))


def make_message(size, rnd):
    """About size bytes of CRLF-terminated lines (0..998 bytes each) of random
    8-bit bytes, with lines starting with "." and lone "." lines so that
    dot-stuffing is exercised.  Ends with CRLF (so smtplib sends it as is)."""
    out = bytearray(b"Subject: lbtest %d bytes\r\n\r\n" % size)
    while len(out) < size:
        kind = rnd.random()
        if kind < 0.05:
            line = b"."
        elif kind < 0.10:
            line = b".." + bytes(rnd.choice(LINE_BYTES) for _ in range(rnd.randint(0, 20)))
        elif kind < 0.15:
            line = b""
        else:
            n = rnd.choice((rnd.randint(1, 80), rnd.randint(1, 998)))
            line = rnd.randbytes(n).translate(TRANS)
        out += line + b"\r\n"
    return bytes(out)


# Map NUL, CR, LF to other bytes.
TRANS = bytes.maketrans(b"\x00\r\n", b"x.y")


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = 0
        self.ok = 0
        self.bad = []
        self.combos = set()
        self.bytes = 0


def send_messages(host, port, sizes, rnd, tally, client_family):
    """One SMTP session sending len(sizes) messages; checks each 250 reply's
    sha256 and length against what was sent."""
    s = smtplib.SMTP(host, port, local_hostname="client.example", timeout=60)
    try:
        code, msg = s.ehlo()
        server = msg.split(b"\n")[0].decode(errors="replace").strip()
        for size in sizes:
            body = make_message(size, rnd)
            want = hashlib.sha256(body).hexdigest()
            s.mail("sender@example.com", ["BODY=8BITMIME"])
            s.rcpt("rcpt@example.com")
            code, reply = s.data(body)
            reply = reply.decode(errors="replace")
            m = re.search(r"len=(\d+) sha256=([0-9a-f]{64})", reply)
            with tally.lock:
                tally.sent += 1
                tally.bytes += len(body)
                if code == 250 and m and m.group(2) == want and int(m.group(1)) == len(body):
                    tally.ok += 1
                    tally.combos.add((client_family, "v6" if server.startswith("six") else "v4"))
                else:
                    tally.bad.append("%d bytes via %s: %d %s (want len=%d sha256=%s)"
                                     % (size, server, code, reply[:120], len(body), want))
        s.quit()
    finally:
        s.close()


def sizes_for(n, rnd):
    fixed = [0, 1, 2, 997, 998, 999, 1000, 65535, 65536, 65537, 1 << 20]
    out = []
    for i in range(n):
        out.append(fixed[i] if i < len(fixed) and rnd.random() < 0.5 else rnd.randint(0, 1 << 20))
    return out


V6 = t.have_ipv6()


def setup():
    """One frontend bound to 127.0.0.1 and [::1], round robin over an IPv4
    server "four" and an IPv6 server "six".  Without IPv6 on this machine
    (noted in the output) everything runs over IPv4 and the family checks
    are left out."""
    h6 = "::1" if V6 else "127.0.0.1"
    b4 = t.Backend(t.smtp_handler("four"), host="127.0.0.1", name="four")
    b6 = t.Backend(t.smtp_handler("six"), host=h6, name="six")
    p4, p6 = t.free_port("127.0.0.1"), t.free_port(h6)
    text = t.make_config(["127.0.0.1:%d" % p4, t.addr(h6, p6)],
                         [("four", b4.address), ("six", b6.address)])
    d = t.Daemon(text, [("127.0.0.1", p4), (h6, p6)], name="integrity").start()
    return d, b4, b6, p4, p6


H6 = "::1" if V6 else "127.0.0.1"


def test_sequential_v4_v6():
    t.log("  random seed %d (set LB_SEED to repeat)" % SEED)
    if not V6:
        t.log("  NOTE: ::1 cannot be bound on this machine: IPv6 is not tested")
    d, b4, b6, p4, p6 = setup()
    tally = Tally()
    # Client families v4 v4 v6 v6 ... against round robin four/six: every
    # combination of client and server family occurs.
    plan = ["v4", "v4", "v6", "v6"] * 3
    n_msgs = 30
    per = [n_msgs // len(plan) + (1 if i < n_msgs % len(plan) else 0) for i in range(len(plan))]
    sizes = sizes_for(n_msgs, RND)
    k = 0
    for fam, cnt in zip(plan, per):
        host, port = ("127.0.0.1", p4) if fam == "v4" else (H6, p6)
        send_messages(host, port, sizes[k:k + cnt], RND, tally, fam)
        k += cnt
    t.log("  %d messages, %d bytes; combinations (client, server) seen: %s"
          % (tally.sent, tally.bytes, sorted(tally.combos)))
    t.check(tally.sent == n_msgs, "all %d messages sent" % n_msgs, "sent %d" % tally.sent)
    t.check(tally.ok == tally.sent and not tally.bad,
            "every message arrived byte for byte (length and SHA-256 match)",
            "; ".join(tally.bad[:5]))
    t.check(len(tally.combos) == 4 or not V6, "IPv4 and IPv6 clients both reached IPv4 and IPv6 servers",
            str(sorted(tally.combos)))
    sess = d.wait_sessions(len(plan))
    t.check(len(sess) >= len(plan), "one session line per session", "%d lines" % len(sess))
    v6 = [s for s in sess if str(s["client"]).startswith("[") or str(s["client"]).count(":") > 1]
    t.log("  session lines with an IPv6 client: %d, e.g. %s" % (len(v6), v6[0]["client"] if v6 else "-"))
    t.check(len(v6) == plan.count("v6") or not V6, "IPv6 clients are logged with their IPv6 address")
    if sess:
        total_in = sum(s.get("bytes_in", 0) for s in sess)
        t.log("  bytes_in summed over sessions: %d (message bytes %d)" % (total_in, tally.bytes))
        t.check(total_in >= tally.bytes, "bytes_in counts at least the message bytes")
        t.check(all(s.get("end") in ("client_close", "server_close") for s in sess),
                "sessions ended by QUIT end with client_close/server_close",
                str(sorted(set(s.get("end") for s in sess))))
    d.stop()


def test_concurrent():
    d, b4, b6, p4, p6 = setup()
    tally = Tally()
    threads = []
    errors = []

    def worker(i):
        rnd = random.Random(SEED + i)
        fam = "v4" if i % 2 == 0 else "v6"
        host, port = ("127.0.0.1", p4) if fam == "v4" else (H6, p6)
        try:
            send_messages(host, port, [rnd.randint(0, 1 << 20) for _ in range(3)], rnd, tally, fam)
        except Exception as e:
            errors.append("worker %d: %r" % (i, e))

    for i in range(6):
        th = threading.Thread(target=worker, args=(i,), daemon=True)
        th.start()
        threads.append(th)
    for th in threads:
        th.join(timeout=45)
    t.log("  6 concurrent sessions x 3 messages: sent %d, ok %d, %d bytes"
          % (tally.sent, tally.ok, tally.bytes))
    t.check(not errors, "no client errors", "; ".join(errors[:3]))
    t.check(tally.sent == 18 and tally.ok == 18,
            "18 concurrent messages arrived byte for byte", "; ".join(tally.bad[:3]))
    d.stop()


def test_raw_transcript():
    """A raw session in random-sized chunks, including a 2 MB server reply:
    what the server received equals what the client sent, and what the client
    received equals what the server sent."""
    d, b4, b6, p4, p6 = setup()
    rnd = random.Random(SEED ^ 0x5A5A)
    for host, port in (("127.0.0.1", p4), (H6, p6)):
        n_before = b4.count() + b6.count()
        c = t.Client(host, port, timeout=20)
        banner = c.banner()
        body = make_message(300000, rnd)
        stuffed = b"".join((b"." + ln if ln.startswith(b".") else ln)
                           for ln in body.splitlines(keepends=True))
        script = (b"EHLO raw.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n",
                  b"DATA\r\n", stuffed + b".\r\n", b"XBIG 2000000\r\n", b"QUIT\r\n")
        sent = bytearray()
        replies = []
        for part in script:
            i = 0
            while i < len(part):
                n = rnd.choice((1, 7, 100, 1400, 8192, 65536))
                c.send(part[i:i + n])
                sent += part[i:i + n]
                i += n
            # read what this part triggers
            if part.startswith(b"EHLO"):
                replies += [c.reply(), c.reply(), c.reply()]
            else:
                replies.append(c.reply(20))
        rest, eof = c.read_to_eof(10)
        c.close()
        want_hash = hashlib.sha256(body).hexdigest()
        t.check(banner and banner.startswith(b"220 "), "[%s] banner received" % host)
        t.check(any(r and want_hash.encode() in r for r in replies),
                "[%s] the DATA reply carries the body's SHA-256" % host)
        t.check(eof, "[%s] EOF after QUIT" % host)
        ok = t.wait_until(lambda: b4.count() + b6.count() > n_before, 2)
        conns = (b4.conns + b6.conns)[n_before:] if ok else []
        if not t.check(len(conns) == 1, "[%s] one backend connection" % host):
            continue
        sc = conns[0]
        t.wait_until(lambda: sc.closed, 3)
        t.check(bytes(sc.received) == bytes(sent),
                "[%s] the server received exactly the %d bytes the client sent" % (host, len(sent)),
                "server got %d bytes" % len(sc.received))
        t.check(bytes(c.received) == bytes(sc.sent),
                "[%s] the client received exactly the %d bytes the server sent" % (host, len(sc.sent)),
                "client got %d bytes" % len(c.received))
        s = d.session_for(c.local_port)
        t.log("  [%s] session line: %s" % (host, s))
        if t.check(s is not None, "[%s] the session is logged" % host):
            t.check(s.get("bytes_in") == len(sent), "[%s] bytes_in = %d" % (host, len(sent)),
                    "logged %s" % s.get("bytes_in"))
            t.check(s.get("bytes_out") == len(sc.sent), "[%s] bytes_out = %d" % (host, len(sc.sent)),
                    "logged %s" % s.get("bytes_out"))
            t.check(s.get("retries") == 0 and s.get("server") in ("four", "six"),
                    "[%s] server named, retries=0" % host)
    d.stop()


if __name__ == "__main__":
    t.main([test_sequential_v4_v6, test_concurrent, test_raw_transcript], timeout=55)
