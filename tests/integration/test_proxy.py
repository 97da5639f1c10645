#!/usr/bin/env python3
"""PROXY protocol v1/v2 (load-balancer.conf(5), BACKENDS proxy_protocol,
RELAY and HEALTH CHECKS) against real peers.

test_wire_headers: Python backends record every byte they receive; the
  header the relay sends for a client (v1/v2, TCP4 and TCP6) must equal,
  byte for byte, one built here from the protocol specification with the
  client's address/port and the frontend's local address/port, followed by
  exactly the client's bytes.  Health-check connections (smtp and tcp)
  must carry a PROXY command (never UNKNOWN/LOCAL) with their own source
  and destination, as the backend sees them (getpeername/getsockname).
  Per-server overrides (v1/v2/none under a backend default) included.
test_postfix_proxy: a private real Postfix (Debian's 3.7) with smtpd
  services `smtpd_upstream_proxy_protocol=haproxy` on 127.0.0.1 and [::1]:
  messages from 127.0.0.7 / 127.0.0.8 / 127.0.0.9 / ::1 with chosen source
  ports go through the balancer (v1, v2, per-server overrides), and
  Postfix logs `connect from unknown[REAL-IP]:REAL-PORT` and writes the
  real address into the Received: header (messages are held in the hold
  queue and read with postcat).  The health checks against the
  PROXY-protocol smtpd keep every server UP and Postfix logs them as clean
  sessions: no "lost connection", no warning, no fatal.
test_postfix_starttls: STARTTLS end to end through the balancer, without
  PROXY and with v1 to a PROXY + TLS smtpd: openssl s_client sees Postfix's
  own certificate (SHA-256 fingerprint and subject compared with the test
  certificate, chain verified with the test CA), swaks --tls and Python's
  smtplib.starttls deliver messages Postfix queues (queue file checked)."""

import hashlib
import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

from postfix import PFX_NAME, Postfix  # noqa: E402

H = "127.0.0.1"
FE4 = "127.0.0.3"       # IPv4 frontends bind here: distinct from the balancer's own source
CHECK_HELO = "check.pp.lbtest"
V2_SIG = bytes([0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A])
SWAKS = "/usr/bin/swaks"


# --------------------------------------------------------------------------
# Headers built from the specification (HAProxy's proxy-protocol.txt)


def _norm(ip):
    fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
    return socket.inet_ntop(fam, socket.inet_pton(fam, ip))


def pp_v1(src, dst):
    """src, dst: (ip, port).  "PROXY TCP4|TCP6 SRC DST SPORT DPORT\\r\\n"."""
    fam = "TCP6" if ":" in src[0] else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, _norm(src[0]), _norm(dst[0]),
                                          src[1], dst[1])).encode()


def pp_v2(src, dst):
    """Signature, 0x21 (version 2, PROXY), 0x11 TCP4 / 0x21 TCP6, the
    big-endian length (12 / 36), src addr, dst addr, src port, dst port."""
    if ":" in src[0]:
        af, fam, length = socket.AF_INET6, 0x21, 36
    else:
        af, fam, length = socket.AF_INET, 0x11, 12
    return (V2_SIG + bytes([0x21, fam]) + struct.pack("!H", length) +
            socket.inet_pton(af, src[0]) + socket.inet_pton(af, dst[0]) +
            struct.pack("!HH", src[1], dst[1]))


def pp_header(version, src, dst):
    """The header of version ("none", "v1", "v2") for src -> dst."""
    if version == "none":
        return b""
    return pp_v1(src, dst) if version == "v1" else pp_v2(src, dst)


def describe(hdr):
    """A readable form of a header for the log."""
    if hdr.startswith(V2_SIG) and len(hdr) >= 16:
        return "v2 ver/cmd=0x%02x fam=0x%02x len=%d body=%s" % (
            hdr[12], hdr[13], struct.unpack("!H", hdr[14:16])[0], hdr[16:].hex())
    return repr(hdr)


# --------------------------------------------------------------------------
# A backend that reads the PROXY header first, then speaks SMTP


def read_pp_header(c, timeout=3.0):
    """Read what should be a PROXY header from Conn c: a v1 line (at most
    107 bytes with its CRLF) or a v2 block (16 + length bytes).  Returns the
    bytes taken: b"" when the first bytes start neither header, or when
    nothing complete came in time; what follows stays in c.buf."""
    deadline = time.monotonic() + timeout
    while True:
        b = bytes(c.buf)
        n = None
        if b.startswith(b"PROXY "):
            i = b.find(b"\r\n")
            if i >= 0:
                n = i + 2 if i + 2 <= 107 else 0
            elif len(b) >= 107:
                n = 0
        elif b.startswith(V2_SIG):
            if len(b) >= 16:
                need = 16 + struct.unpack("!H", b[14:16])[0]
                if len(b) >= need:
                    n = need
        elif not (b"PROXY ".startswith(b) or V2_SIG.startswith(b)):
            n = 0
        if n is not None:
            del c.buf[:n]
            return b[:n]
        left = deadline - time.monotonic()
        if c.eof or left <= 0:
            return b""
        try:
            c._fill(min(left, 0.5))
        except socket.timeout:
            pass


def pp_handler(name, expect):
    """Backend handler.  expect: "none" (greet at once) or "v1"/"v2" (read
    the header first, then greet).  Each Conn gets c.local (getsockname),
    c.remote (getpeername), c.header, c.helo, c.mail (MAIL FROM argument)."""

    def handle(c):
        c.local = c.sock.getsockname()[:2]
        c.remote = c.sock.getpeername()[:2]
        c.helo = None
        c.mail = None
        c.header = read_pp_header(c) if expect != "none" else b""
        c.send("220 %s ESMTP lbtest-pp\r\n" % name)
        while True:
            line = c.readline(timeout=20)
            if not line or not line.endswith(b"\n"):
                c.wait_eof(20)
                return
            words = line.split()
            verb = words[0].upper() if words else b""
            if verb in (b"HELO", b"EHLO"):
                if c.helo is None and len(words) > 1:
                    c.helo = words[1].decode(errors="replace")
                c.send("250 %s\r\n" % name)
            elif verb == b"MAIL":
                c.mail = line.strip().decode(errors="replace")
                c.send("250 2.1.0 Ok\r\n")
            elif verb == b"QUIT":
                c.send("221 2.0.0 Bye %s\r\n" % name)
                c.close()
                return
            else:
                c.send("502 5.5.2 Error: command not recognized\r\n")

    return handle


def src_port(host):
    """A free port on host outside the ephemeral range, to bind a client
    to: it cannot be the balancer's own (ephemeral) source port."""
    return t.free_port(host)


def bound_client(fe, source, timeout=10.0):
    """A t.Client connected to fe=(ip, port) from source=(ip, port)."""
    c = t.Client(fe[0], fe[1], timeout=timeout, connect=False)
    c.sock.bind(source)
    c.sock.settimeout(timeout)
    c.sock.connect(fe)
    c.local_port = c.sock.getsockname()[1]
    return c


def pp_client(fe, source, tag):
    """One client session from source=(ip, port) to the frontend fe:
    banner, EHLO, MAIL FROM:<TAG@...>, QUIT.  Returns (bytes sent, bytes
    received, banner)."""
    c = bound_client(fe, source)
    sent = bytearray()
    banner = c.banner()
    for line in ("EHLO " + t.CLIENT_HELO, "MAIL FROM:<%s@lbtest.example>" % tag, "QUIT"):
        data = (line + "\r\n").encode()
        sent += data
        c.send(data)
        c.reply()
    c.read_to_eof(5)
    c.close()
    return bytes(sent), bytes(c.received), banner


# --------------------------------------------------------------------------


def test_wire_headers():
    v6 = t.have_ipv6()
    if not v6:
        t.log("  NOTE: ::1 cannot be bound here: the TCP6 cases are not run")
    hc_smtp = {"type": "smtp", "helo": CHECK_HELO, "interval": "300ms", "rise": 2, "fall": 3,
               "timeout": "2s"}
    hc_tcp = dict(hc_smtp, type="tcp")
    bk = {}         # server name -> (Backend, expected version)
    check_of = {}   # server name -> its backend's health_check

    def backend(name, expect, host=H):
        b = t.Backend(pp_handler(name, expect), host=host, name=name)
        bk[name] = (b, expect)
        return b

    pairs = []
    fes = {}

    def pair(fe_name, fe_host, be, servers):
        port = t.free_port(fe_host)
        fes[fe_name] = (fe_host, port)
        pairs.append(({"name": fe_name, "bind": t.addr(fe_host, port), "backend": be["name"],
                       "timeout_client": "20s"}, dict(be, servers=servers)))
        for srv in servers:
            check_of[srv[0]] = be["health_check"]

    pair("fe4v1", FE4, {"name": "be4v1", "proxy_protocol": "v1", "health_check": hc_smtp},
         [("s4v1", backend("s4v1", "v1").address)])
    pair("fe4v2", FE4, {"name": "be4v2", "proxy_protocol": "v2",
                        "health_check": dict(hc_smtp, ehlo=True)},
         [("s4v2", backend("s4v2", "v2").address)])
    if v6:
        pair("fe6v1", "::1", {"name": "be6v1", "proxy_protocol": "v1", "health_check": hc_smtp},
             [("s6v1", backend("s6v1", "v1", "::1").address)])
        pair("fe6v2", "::1", {"name": "be6v2", "proxy_protocol": "v2", "health_check": hc_smtp},
             [("s6v2", backend("s6v2", "v2", "::1").address)])
    # Per-server overrides under a v2 backend, checked with type = tcp.
    pair("fetcp", FE4, {"name": "betcp", "proxy_protocol": "v2", "health_check": hc_tcp},
         [("tcp_v2", backend("tcp_v2", "v2").address),
          ("tcp_v1", backend("tcp_v1", "v1").address, {"proxy_protocol": "v1"}),
          ("tcp_none", backend("tcp_none", "none").address, {"proxy_protocol": "none"})])
    # A backend without proxy_protocol (none) and one server with v2.
    pair("feovr", FE4, {"name": "beovr", "health_check": hc_smtp},
         [("ovr_none", backend("ovr_none", "none").address),
          ("ovr_v2", backend("ovr_v2", "v2").address, {"proxy_protocol": "v2"})])

    listen = list(fes.values())
    d = t.Daemon(t.make_config_multi(pairs), listen, name="proxy-wire").start()

    # Client sessions: (frontend, source address); each from its own port.
    plan = [("fe4v1", "127.0.0.7"), ("fe4v2", "127.0.0.8")]
    if v6:
        plan += [("fe6v1", "::1"), ("fe6v2", "::1")]
    plan += [("fetcp", "127.0.0.7"), ("fetcp", "127.0.0.8"), ("fetcp", "127.0.0.9"),
             ("feovr", "127.0.0.7"), ("feovr", "127.0.0.8")]
    clients = {}    # tag -> dict
    for i, (fe, ip) in enumerate(plan):
        src = (ip, src_port(ip))
        tag = "c%d-%d" % (i, src[1])
        sent, got, banner = pp_client(fes[fe], src, tag)
        clients[tag] = {"fe": fe, "src": src, "sent": sent, "got": got, "banner": banner}
        t.check(banner is not None and banner.startswith(b"220 ") and b"lbtest-pp" in banner,
                "client %s from %s via %s gets the backend's banner" % (tag, t.addr(*src), fe),
                repr(banner))

    # Let a few checks of every kind happen.
    def checks_seen():
        for name, (b, _) in bk.items():
            with b.lock:
                conns = list(b.conns)
            n = sum(1 for c in conns if c.closed and getattr(c, "mail", None) is None)
            if n < 3:
                return False
        return True
    t.check(t.wait_until(checks_seen, 10, 0.1), "every backend saw at least 3 finished check connections")
    time.sleep(0.3)

    for name, (b, expect) in sorted(bk.items()):
        with b.lock:
            conns = [c for c in b.conns if c.closed and hasattr(c, "header")]
        cl = [c for c in conns if c.mail is not None]
        ck = [c for c in conns if c.mail is None]
        # Client connections: exactly the expected header, then exactly the client's bytes.
        for c in cl:
            m = re.search(r"<(c\d+-\d+)@", c.mail)
            info = clients.get(m.group(1)) if m else None
            if not t.check(info is not None, "%s: client connection is one of ours" % name, c.mail):
                continue
            fe = fes[info["fe"]]
            want = pp_header(expect, info["src"], fe)
            t.log("  %s (%s): client %s -> frontend %s: header %s" % (
                name, expect, t.addr(*info["src"]), t.addr(*fe), describe(c.header)))
            t.check(c.header == want, "%s: the %s header of client %s is the one built from the spec"
                    % (name, expect, t.addr(*info["src"])),
                    "got %s want %s" % (c.header.hex() or "-", want.hex() or "-"))
            t.check(bytes(c.received) == want + info["sent"],
                    "%s: the backend received the header followed by exactly the client's %d bytes"
                    % (name, len(info["sent"])),
                    "received %r" % bytes(c.received))
            t.check(info["got"] == bytes(c.sent),
                    "%s: the client received exactly what the backend sent" % name,
                    "%r vs %r" % (info["got"], bytes(c.sent)))
        # Check connections: a PROXY command with their own addresses.
        bad = []
        for c in ck:
            want = pp_header(expect, c.remote, c.local)
            if c.header != want:
                bad.append("header %s, want %s (peer %s, local %s)" % (
                    c.header.hex() or "-", want.hex() or "-", c.remote, c.local))
            tail = bytes(c.received[len(c.header):])
            hc = check_of[name]
            if hc["type"] == "tcp":
                if tail:
                    bad.append("tcp check sent %r after the header" % tail)
            else:
                verb = b"EHLO" if hc.get("ehlo") else b"HELO"
                if not tail.startswith(verb + b" " + CHECK_HELO.encode() + b"\r\n") or \
                        not tail.endswith(b"QUIT\r\n"):
                    bad.append("smtp check sent %r after the header" % tail)
        if ck:
            c = ck[-1]
            t.log("  %s (%s): check %s -> %s: header %s" % (
                name, expect, c.remote, c.local, describe(c.header)))
        if expect != "none":
            cmds = sorted(set("ver/cmd=0x%02x" % c.header[12] if c.header.startswith(V2_SIG)
                              else c.header[:11].decode(errors="replace") for c in ck))
            t.log("  %s: check headers seen: %s" % (name, cmds))
        t.check(len(ck) >= 3 and not bad,
                "%s: %d check connections, each with the %s header of its own addresses%s"
                % (name, len(ck), expect, "" if expect != "none" else " (none: no byte before HELO)"),
                "; ".join(bad[:3]))
        t.check(len(cl) >= 1, "%s: got at least one client session" % name, str(len(cl)))

    # The roundrobin override backends: every server took one client.
    for be, names in (("betcp", ("tcp_v2", "tcp_v1", "tcp_none")), ("beovr", ("ovr_none", "ovr_v2"))):
        counts = {n: sum(1 for c in bk[n][0].conns if getattr(c, "mail", None)) for n in names}
        t.check(all(v == 1 for v in counts.values()), "%s: each server took one client" % be,
                str(counts))

    rc, out, err = d.ctl("show servers")
    t.log("  show servers:\n" + out)
    rows = t.parse_table(out)
    t.check(len(rows) == len(bk) and all(r.get("STATE") == "UP" and
                                         r.get("LAST CHECK", "").startswith("passed") for r in rows),
            "every server UP, last check passed", str([(r.get("SERVER"), r.get("STATE"),
                                                         r.get("LAST CHECK")) for r in rows]))
    bad = [e["_line"] for e in d.health_events() if e.get("event") in ("fail", "down")]
    t.check(not bad, "no failed check in the health log", str(bad[:3]))
    d.stop()


# --------------------------------------------------------------------------
# Postfix


PP_OPTS = ["smtpd_upstream_proxy_protocol=haproxy"]
# Every service: log the client port, no reverse DNS for 127.0.0.7 & co
# (no resolver needed), hold every message (to read its Received: header).
COMMON_OPTS = ["smtpd_client_port_logging=yes", "smtpd_peername_lookup=no",
               "smtpd_data_restrictions=check_client_access,static:HOLD",
               "smtpd_tls_received_header=yes"]
NOTLS = ["smtpd_tls_security_level=none"]


def hold_received(pf, qid):
    """The Received: header of held message qid (postcat -h -q), unfolded."""
    rc, out = pf.postcat(["-h", "-q", qid])
    m = re.search(r"^Received: .*(?:\n[ \t].*)*", out, re.M)
    return re.sub(r"\s*\n[ \t]+", " ", m.group(0)) if m else ("(postcat %s: %s)" % (rc, out.strip()))


def smtp_message(fe, source, tag, rcpt="rcpt@example.com"):
    """A real message through the balancer from source=(ip, port): returns
    (queue id or None, transcript)."""
    c = bound_client(fe, source, 15.0)
    tr = [c.banner()]
    tr.append(c.cmd("EHLO " + t.CLIENT_HELO))
    tr.append(c.cmd("MAIL FROM:<%s@lbtest.example>" % tag))
    tr.append(c.cmd("RCPT TO:<%s>" % rcpt))
    tr.append(c.cmd("DATA"))
    tr.append(c.cmd("Subject: %s\r\nFrom: %s@lbtest.example\r\nTo: %s\r\n\r\nthrough the balancer\r\n."
                    % (tag, tag, rcpt)))
    tr.append(c.cmd("QUIT"))
    c.read_to_eof(5)
    c.close()
    m = re.match(rb"250 2\.0\.0 Ok: queued as (\w+)", tr[5] or b"")
    return (m.group(1).decode() if m else None), tr


def start_postfix(services):
    ca = t.TestCA()
    crt, key = ca.leaf(PFX_NAME)
    pf = Postfix(crt, key, services)
    return ca, crt, pf


def dump_log(pf, n=80):
    t.log("  --- postfix log (last %d lines) ---" % n)
    for ln in pf.text().splitlines()[-n:]:
        t.log("  | " + ln)


def postfix_clean(pf, names, allowed):
    """Common assertions on the Postfix log: no lost connection, no
    warning/fatal/panic, every disconnect line of the services names is a
    clean check session or one of the allowed client sessions."""
    text = pf.text()
    bad = [ln for ln in text.splitlines()
           if re.search(r"lost connection|fatal|panic|warning|improper command pipelining|"
                        r"timeout after|haproxy|Server local error|unknown=", ln)]
    t.check(not bad, "Postfix logs no 'lost connection', warning ('haproxy read' & co), fatal, "
            "panic, timeout or unknown command", "\n    ".join(bad[:5]))
    for n in names:
        disc = pf.lines(n, "disconnect from")
        odd = [ln for ln in disc
               if not any(re.search(r"disconnect from \S+ %s$" % re.escape(a), ln) for a in allowed)]
        t.check(disc and not odd, "%s: each of its %d sessions ended cleanly (%s)"
                % (n, len(disc), " | ".join(allowed)), "\n    ".join(odd[:5]))


def test_postfix_proxy():
    v6 = t.have_ipv6()
    services = [("pfxplain", H, NOTLS + COMMON_OPTS), ("pfxpp", H, PP_OPTS + NOTLS + COMMON_OPTS)]
    if v6:
        services.append(("pfxpp6", "::1", PP_OPTS + NOTLS + COMMON_OPTS))
    else:
        t.log("  NOTE: ::1 cannot be bound here: no IPv6 Postfix service, TCP6 cases not run")
    ca, crt, pf = start_postfix(services)
    try:
        pf.start()
        run_postfix_proxy(pf, v6)
    finally:
        pf.stop()
        dump_log(pf)


def run_postfix_proxy(pf, v6):
    hc = {"type": "smtp", "helo": CHECK_HELO, "interval": "400ms", "rise": 2, "fall": 3,
          "timeout": "3s"}
    pp = t.addr(H, pf.ports["pfxpp"])
    plain = t.addr(H, pf.ports["pfxplain"])
    pairs, fes = [], {}

    def pair(fe_name, fe_host, be, servers):
        port = t.free_port(fe_host)
        fes[fe_name] = (fe_host, port)
        pairs.append(({"name": fe_name, "bind": t.addr(fe_host, port), "backend": be["name"],
                       "timeout_client": "30s"}, dict(be, servers=servers)))

    pair("fe_v1", FE4, {"name": "be_v1", "proxy_protocol": "v1", "health_check": hc},
         [("pp_v1", pp)])
    pair("fe_v2", FE4, {"name": "be_v2", "proxy_protocol": "v2", "health_check": dict(hc, ehlo=True)},
         [("pp_v2", pp)])
    pair("fe_ovr", FE4, {"name": "be_ovr", "proxy_protocol": "v1", "health_check": hc},
         [("ovr_pp_v2", pp, {"proxy_protocol": "v2"}),
          ("ovr_plain", plain, {"proxy_protocol": "none"})])
    if v6:
        pp6 = t.addr("::1", pf.ports["pfxpp6"])
        pair("fe_v6v2", "::1", {"name": "be_v6v2", "proxy_protocol": "v2", "health_check": hc},
             [("pp6_v2", pp6)])
        pair("fe_v6v1", "::1", {"name": "be_v6v1", "proxy_protocol": "v1", "health_check": hc},
             [("pp6_v1", pp6)])
        # An IPv6 client through a TCP6 header to the IPv4 smtpd.
        pair("fe_v6x", "::1", {"name": "be_v6x", "proxy_protocol": "v1", "health_check": hc},
             [("pp_v6x", pp)])
    nserv = sum(len(b["servers"]) for _, b in pairs)
    d = t.Daemon(t.make_config_multi(pairs), list(fes.values()), name="proxy-postfix").start()

    # Messages: (frontend, client ip, service expected to log it or None for "see session log").
    plan = [("fe_v1", "127.0.0.7", "pfxpp"), ("fe_v2", "127.0.0.8", "pfxpp"),
            ("fe_ovr", "127.0.0.9", None), ("fe_ovr", "127.0.0.9", None)]
    if v6:
        plan += [("fe_v6v2", "::1", "pfxpp6"), ("fe_v6v1", "::1", "pfxpp6"), ("fe_v6x", "::1", "pfxpp")]
    sent = []
    for i, (fe, ip, svc) in enumerate(plan):
        src = (ip, src_port(ip))
        tag = "m%d" % i
        qid, tr = smtp_message(fes[fe], src, tag)
        t.check(qid is not None, "message %s from %s via %s: Postfix queues it" % (tag, t.addr(*src), fe),
                "queued as %s" % qid if qid else repr(tr))
        sent.append((fe, src, svc, tag, qid))

    def logged(svc, ip, port):
        pat = re.compile(r" %s/smtpd\[\d+\]: connect from unknown\[%s\]:%d$" % (svc, re.escape(ip), port))
        return [ln for ln in pf.text().splitlines() if pat.search(ln)]

    figures = []
    seen_by = {}    # Postfix service -> the client addresses it should have logged
    for fe, src, svc, tag, qid in sent:
        server = None
        if svc is None:
            s = d.session_for(src[1])
            server = s.get("server") if s else None
            svc = {"ovr_pp_v2": "pfxpp", "ovr_plain": "pfxplain"}.get(server)
        seen_by.setdefault(svc, set()).add("unknown[%s]" % src[0])
        if svc == "pfxplain":
            # proxy_protocol = "none" on this server: Postfix sees the balancer.
            lines = [ln for ln in pf.lines("pfxplain", "connect from unknown[127.0.0.1]:")
                     if " connect from " in ln]
            t.check(lines and not logged("pfxplain", src[0], src[1]),
                    "%s (server %s, proxy_protocol none): Postfix sees the balancer's 127.0.0.1, "
                    "not the client" % (tag, server), str(lines[-1:]))
            rec = hold_received(pf, qid) if qid else ""
            t.check("[127.0.0.1]" in rec and src[0] not in rec,
                    "%s: Received: header names the balancer (no PROXY header)" % tag, rec)
            continue
        lines = logged(svc, src[0], src[1])
        t.check(len(lines) == 1, "%s via %s%s: %s logs 'connect from unknown[%s]:%d' (the real client)"
                % (tag, fe, " (server %s)" % server if server else "", svc, src[0], src[1]),
                lines[0] if lines else "not found")
        if lines:
            figures.append(lines[0])
        if qid:
            cl = [ln for ln in pf.text().splitlines()
                  if "%s: client=unknown[%s]:%d" % (qid, src[0], src[1]) in ln]
            t.check(len(cl) == 1, "%s: queue id %s logged with client=unknown[%s]:%d" % (tag, qid, src[0], src[1]),
                    cl[0] if cl else "")
            rec = hold_received(pf, qid)
            want = "(unknown [%s%s])" % ("IPv6:" if ":" in src[0] else "", src[0])
            t.check(rec.startswith("Received: from %s %s" % (t.CLIENT_HELO, want)),
                    "%s: the held message's Received: header names the real client %s" % (tag, want), rec)
            figures.append(rec)
    ovr = sorted(str((d.session_for(src[1]) or {}).get("server")) for fe, src, _, _, _ in sent if fe == "fe_ovr")
    t.check(ovr == ["ovr_plain", "ovr_pp_v2"], "be_ovr: one message went to each server", str(ovr))

    # Health checks stay clean: a few more rounds, then the servers and the log.
    def enough():
        helo = len(pf.lines("pfxpp", "disconnect from unknown[127.0.0.1]:", "helo=1 quit=1 commands=2"))
        ehlo = len(pf.lines("pfxpp", "disconnect from unknown[127.0.0.1]:", "ehlo=1 quit=1 commands=2"))
        pl = len(pf.lines("pfxplain", "disconnect from unknown[127.0.0.1]:", "helo=1 quit=1 commands=2"))
        p6 = len(pf.lines("pfxpp6", "disconnect from unknown[::1]:", "helo=1 quit=1 commands=2")) if v6 else 9
        return helo >= 8 and ehlo >= 4 and pl >= 4 and p6 >= 6
    t.check(t.wait_until(enough, 15, 0.2),
            "Postfix logged clean check sessions on each PROXY smtpd (helo=1 quit=1, ehlo=1 quit=1)")
    time.sleep(0.5)
    rc, out, err = d.ctl("show servers")
    t.log("  show servers:\n" + out)
    rows = t.parse_table(out)
    t.check(len(rows) == nserv and all(r.get("STATE") == "UP" and
                                        r.get("LAST CHECK", "").startswith("passed") for r in rows),
            "every server UP, last check passed (%d servers)" % nserv,
            str([(r.get("SERVER"), r.get("STATE"), r.get("LAST CHECK")) for r in rows]))
    bad = [e["_line"] for e in d.health_events() if e.get("event") in ("fail", "down")]
    t.check(not bad, "no failed check in the health log", str(bad[:3]))
    # The checks' PROXY headers carry their own source: 127.0.0.1 / ::1, never UNKNOWN.
    conn = pf.lines("pfxpp", " connect from ")
    srcs = sorted(set(re.sub(r".*connect from (\S+?):\d+$", r"\1", ln) for ln in conn))
    want = sorted(seen_by.get("pfxpp", set()) | {"unknown[127.0.0.1]"})
    t.check(srcs == want, "pfxpp: the clients Postfix saw are exactly the real clients and the checks' "
            "127.0.0.1", str(srcs))
    allowed = ["helo=1 quit=1 commands=2", "ehlo=1 quit=1 commands=2",
               "ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"]
    postfix_clean(pf, [s[0] for s in pf.services], allowed)
    for f in figures:
        t.log("  FIGURE " + f)
    d.stop()


# --------------------------------------------------------------------------
# STARTTLS end to end


def cert_fp(pem_text):
    der = ssl.PEM_cert_to_DER_cert(pem_text)
    return hashlib.sha256(der).hexdigest().upper()


def run_tool(cmd, data=b"", timeout=30):
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    t._register_proc(p, cmd[0])
    try:
        out, _ = p.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        t.kill_proc(p)
        out, _ = p.communicate()
        return None, out.decode(errors="replace")
    return p.returncode, out.decode(errors="replace")


def test_postfix_starttls():
    services = [("pfxtls", H, COMMON_OPTS), ("pfxpptls", H, PP_OPTS + COMMON_OPTS)]
    ca, crt, pf = start_postfix(services)
    try:
        pf.start()
        run_starttls(pf, ca, crt)
    finally:
        pf.stop()
        dump_log(pf)


def run_starttls(pf, ca, crt):
    with open(crt) as f:
        want_fp = cert_fp(f.read())
    t.log("  test certificate %s: SHA-256 %s" % (PFX_NAME, want_fp))
    hc = {"type": "smtp", "helo": CHECK_HELO, "ehlo": True, "starttls": True, "tls_verify": True,
          "tls_ca_file": ca.cert, "tls_servername": PFX_NAME, "interval": "500ms", "rise": 2,
          "fall": 3, "timeout": "3s"}
    f_tls, f_pp = t.free_port(), t.free_port()
    pairs = [
        ({"name": "fe_tls", "bind": t.addr(H, f_tls), "backend": "be_tls", "timeout_client": "30s"},
         {"name": "be_tls", "health_check": hc, "servers": [("tls", t.addr(H, pf.ports["pfxtls"]))]}),
        ({"name": "fe_pptls", "bind": t.addr(H, f_pp), "backend": "be_pptls", "timeout_client": "30s"},
         {"name": "be_pptls", "proxy_protocol": "v1", "health_check": hc,
          "servers": [("pptls", t.addr(H, pf.ports["pfxpptls"]))]}),
    ]
    d = t.Daemon(t.make_config_multi(pairs), [(H, f_tls), (H, f_pp)], name="proxy-tls").start()
    have_swaks = os.access(SWAKS, os.X_OK)
    if not have_swaks:
        t.log("  NOTE: swaks is not installed: only smtplib delivers")
    elif subprocess.run(["perl", "-MNet::SSLeay", "-e", "1"], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL, timeout=10).returncode != 0:
        t.log("  NOTE: swaks --tls needs Net::SSLeay (libnet-ssleay-perl, see tests/deps.sh): "
              "only smtplib delivers")
        have_swaks = False
    for label, port, svc in (("no PROXY", f_tls, "pfxtls"), ("PROXY v1", f_pp, "pfxpptls")):
        # 1. openssl s_client: the certificate is Postfix's own.
        rc, out = run_tool([t.OPENSSL, "s_client", "-starttls", "smtp", "-name", t.CLIENT_HELO,
                            "-connect", t.addr(H, port), "-servername", PFX_NAME,
                            "-CAfile", ca.cert, "-verify_hostname", PFX_NAME,
                            "-verify_return_error", "-crlf", "-ign_eof"], b"QUIT\n", timeout=20)
        m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
        got_fp = cert_fp(m.group(0)) if m else None
        subj = re.search(r"^subject=(.*)$", out, re.M)
        t.log("  %s: s_client through 127.0.0.1:%d: exit %s, subject %s, SHA-256 %s, %s" % (
            label, port, rc, subj.group(1) if subj else None, got_fp,
            (re.search(r"Verify return code: .*", out) or [None])[0]))
        t.check(got_fp == want_fp, "%s: the certificate s_client sees through the balancer is the test "
                "certificate (SHA-256)" % label, "%s vs %s" % (got_fp, want_fp))
        t.check(subj is not None and "CN = %s" % PFX_NAME in subj.group(1), "%s: subject CN = %s"
                % (label, PFX_NAME), subj.group(1) if subj else out[-500:])
        ok = rc == 0 and "Verify return code: 0 (ok)" in out and "221 2.0.0 Bye" in out
        t.check(ok, "%s: chain and name verified against the test CA, QUIT answered over TLS" % label,
                "" if ok else out[-1500:])
        # 2. swaks --tls from 127.0.0.7: delivers.
        if have_swaks:
            sp = src_port("127.0.0.7")
            peer = os.path.join(pf.dir, "swaks-peer-%d.pem" % port)
            rc, out = run_tool([SWAKS, "--tls", "--server", t.addr(H, port), "--local-interface",
                                "127.0.0.7", "--local-port", str(sp), "--helo", t.CLIENT_HELO,
                                "--from", "swaks@lbtest.example", "--to", "a@example.test",
                                "--tls-get-peer-cert", peer, "--timeout", "15",
                                "--h-Subject", "swaks %s" % label], timeout=30)
            m = re.search(r"<~ +250 2\.0\.0 Ok: queued as (\w+)", out)
            t.check(rc == 0 and m is not None, "%s: swaks --tls from 127.0.0.7:%d delivers through the "
                    "balancer (250 queued, over TLS)" % (label, sp),
                    "queued as %s" % m.group(1) if rc == 0 and m else out[-1500:])
            try:
                with open(peer) as f:
                    sfp = cert_fp(f.read())
            except (OSError, ValueError):
                sfp = None
            t.check(sfp == want_fp, "%s: swaks got the test certificate too" % label, str(sfp))
            if m:
                check_tls_message(pf, svc, m.group(1), ("127.0.0.7", sp), label, "swaks")
        # 3. smtplib.starttls from 127.0.0.8, chain verified with the test CA.
        import smtplib
        sp = src_port("127.0.0.8")
        ctx = ssl.create_default_context(cafile=ca.cert)
        ctx.check_hostname = False   # smtplib names 127.0.0.1; the fingerprint is compared below
        try:
            s = smtplib.SMTP(H, port, source_address=("127.0.0.8", sp), timeout=15)
            s.ehlo(t.CLIENT_HELO)
            code, _ = s.starttls(context=ctx)
            der = s.sock.getpeercert(binary_form=True)
            s.ehlo(t.CLIENT_HELO)
            s.mail("smtplib@lbtest.example")
            s.rcpt("a@example.test")
            code, resp = s.data("Subject: smtplib %s\r\n\r\nover TLS through the balancer\r\n" % label)
            s.quit()
        except (OSError, smtplib.SMTPException, ssl.SSLError) as e:
            t.check(False, "%s: smtplib starttls session" % label, repr(e))
            continue
        fp = hashlib.sha256(der).hexdigest().upper()
        t.check(fp == want_fp, "%s: smtplib's TLS peer certificate is the test certificate" % label, fp)
        m = re.match(rb"2\.0\.0 Ok: queued as (\w+)", resp or b"")
        t.check(code == 250 and m is not None, "%s: smtplib delivers over TLS" % label, repr((code, resp)))
        if m:
            check_tls_message(pf, svc, m.group(1).decode(), ("127.0.0.8", sp), label, "smtplib")

    def enough():
        return all(len(pf.lines(n, "disconnect from", "ehlo=2 starttls=1 quit=1 commands=4")) >= 4
                   for n in ("pfxtls", "pfxpptls"))
    t.check(t.wait_until(enough, 15, 0.2), "Postfix logged >= 4 clean STARTTLS check sessions on each smtpd")
    rc, out, err = d.ctl("show servers")
    t.log("  show servers:\n" + out)
    rows = t.parse_table(out)
    t.check(len(rows) == 2 and all(r.get("STATE") == "UP" and r.get("LAST CHECK", "").startswith("passed")
                                   for r in rows), "both TLS servers UP, last check passed",
            str([(r.get("SERVER"), r.get("STATE"), r.get("LAST CHECK")) for r in rows]))
    bad = [e["_line"] for e in d.health_events() if e.get("event") in ("fail", "down", "cert_expiry")]
    t.check(not bad, "no failed check or cert_expiry in the health log", str(bad[:3]))
    allowed = ["ehlo=2 starttls=1 quit=1 commands=4",                       # checks
               "ehlo=1 starttls=1 quit=1 commands=3",                       # s_client
               "ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7"]  # swaks, smtplib
    postfix_clean(pf, ["pfxtls", "pfxpptls"], allowed)
    # The PROXY+TLS smtpd saw the real clients for its TLS sessions.
    tls_from = sorted(set(re.sub(r".*TLS connection established from (\S+?):\d+: .*", r"\1", ln)
                          for ln in pf.lines("pfxpptls", "TLS connection established from")))
    t.log("  pfxpptls: TLS connections established from %s" % tls_from)
    want = ["unknown[127.0.0.1]", "unknown[127.0.0.8]"] + (["unknown[127.0.0.7]"] if have_swaks else [])
    t.check(tls_from == sorted(want), "pfxpptls: TLS sessions from the checks (127.0.0.1), s_client "
            "(127.0.0.1) and the real clients", str(tls_from))
    d.stop()


def check_tls_message(pf, svc, qid, src, label, who):
    path = os.path.join(pf.spool, "hold", qid)
    t.check(os.path.exists(path), "%s: %s's message %s is in Postfix's hold queue" % (label, who, qid), path)
    rec = hold_received(pf, qid)
    t.log("  %s %s: %s" % (label, who, rec))
    t.check("(using TLS" in rec, "%s: %s's Received: header says TLS" % (label, who), rec)
    if svc == "pfxpptls":
        ln = [x for x in pf.lines(svc, "TLS connection established from unknown[%s]:%d:" % src)]
        t.check(len(ln) == 1, "%s: Postfix logs the TLS connection from the real client %s:%d"
                % (label, src[0], src[1]), ln[0] if ln else "")
        t.check("(unknown [%s])" % src[0] in rec, "%s: Received: names the real client %s" % (label, src[0]),
                rec)
        if ln:
            t.log("  FIGURE " + ln[0])
    else:
        t.check("(unknown [127.0.0.1])" in rec, "%s: without PROXY, Received: names the balancer" % label, rec)


if __name__ == "__main__":
    t.main([test_wire_headers, test_postfix_proxy, test_postfix_starttls], timeout=120)
