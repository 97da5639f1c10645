#!/usr/bin/env python3
"""Transparent mode (load-balancer.conf(5), TRANSPARENT MODE), on a real
routed test bed.

Three network namespaces made here (names carry this PID), connected by
veth pairs created directly inside them (the host's own network is never
touched), addresses in 198.18.0.0/15 only:

    client ns               balancer ns                   server ns
    198.18.1.2/24 --- 198.18.1.1/24   198.18.2.1/24 --- 198.18.2.2/24, .3/24
    default via .1.1        ip_forward=1                  default via 198.18.2.1

In the balancer namespace, the routing of the kernel's tproxy documentation:
a mangle DIVERT chain marking packets that belong to a local socket
(`-m socket`), `ip rule add fwmark 1 lookup 100` and
`ip route add local 0.0.0.0/0 dev lo table 100`, so that the servers'
replies to the client's address (they route them back through the
balancer) are delivered to the balancer's transparent socket.

The servers are a small Python SMTP sink (started with ip netns exec) that
records getpeername() of every connection and the length and SHA-256 of
every message; the client (ip netns exec too) sends 100 messages with known
contents over 10 sessions and checks every DATA reply.

- control: source = "" (kernel default): the servers see the balancer's
  198.18.2.1, so the test can tell the difference.
- clientip (a): frontend on the balancer's own 198.18.1.1, source =
  "clientip": every server session comes from 198.18.1.2, all 100
  messages intact.
- nonlocal (b): transparent = true on 198.18.9.9, an address of no
  interface anywhere, reached through a TPROXY rule, with source =
  "clientip" (the seed's transparent setup).  Without `transparent` the
  same bind fails; TPROXY only hands connections to IP_TRANSPARENT sockets.
  (`ip route add local 198.18.9.9/32 dev lo` would make the address local
  and need no IP_TRANSPARENT at all, so it is not used.)
- rule-only: the servers have no default route, only README's policy rule
  for the replies from their port 25.
- without CAP_NET_ADMIN/CAP_NET_RAW (setpriv): transparent = true and
  source = "clientip" both stop the start with exit 3 and one line naming
  IP_TRANSPARENT and the errno text.
- global.user = "nobody" with source = "clientip": must either keep
  working or refuse to start, not 421 every client.
- README's setcap recipe: a copy of the program with file capabilities,
  run as nobody, connects from the client's IP.
- source = "ADDR": sessions and health checks come from that address; an
  address the balancer does not have stops the start.

Skipped (exit 77) only when network namespaces cannot be created (not
root, no `ip netns`).  Everything made here (processes by PID, namespaces)
is removed at the end of each sub-test, also on failure, on a signal or at
the time limit; namespaces left by a killed earlier run (its PID gone) are
removed at start.
"""

import json
import os
import random
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402
import netns  # noqa: E402
from netns import (netns_clear, netns_del, netns_list, netns_pids,  # noqa: E402,F401
                   run, skip_reason)

PREFIX = "lbtp-"
CLIENT_IP = "198.18.1.2"
LB_CLIENT_SIDE = "198.18.1.1"
LB_SERVER_SIDE = "198.18.2.1"
SERVER_IPS = ("198.18.2.2", "198.18.2.3")
NONLOCAL_IP = "198.18.9.9"       # on no interface in any namespace
PORT = 25                        # our own namespaces: port 25 is free
SERVER_PORT = 25
SESSIONS = 10
PER_SESSION = 10                 # 100 messages in all
SEED = int(os.environ.get("LB_SEED", "0")) or random.randrange(1, 1 << 30)
EPERM_TEXT = os.strerror(1)      # "Operation not permitted"
# Drop exactly the two capabilities IP_TRANSPARENT accepts (REFERENCE 5);
# root keeps the others (port 25, files).
NOCAPS = ["setpriv", "--inh-caps=-net_admin,-net_raw",
          "--bounding-set=-net_admin,-net_raw", "--"]

_seq = [0]


# --------------------------------------------------------------------------
# Helper programs, run inside the namespaces with `ip netns exec`.

CLIENT_PY = r'''
import hashlib, json, random, smtplib, sys, time
host, port, sessions, per, seed, outp = sys.argv[1:7]
port, sessions, per, seed = int(port), int(sessions), int(per), int(seed)
TRANS = bytes.maketrans(b"\x00\r\n", b"x.y")

def message(rnd, i):
    """CRLF lines of random 8-bit bytes (never NUL, CR, LF), with lines
    starting with "." and lone "." lines, so dot-stuffing is exercised."""
    size = rnd.choice((rnd.randint(0, 2000), rnd.randint(0, 70000), rnd.randint(0, 300000)))
    out = bytearray(b"Subject: transparent test message %d\r\n\r\n" % i)
    while len(out) < size:
        k = rnd.random()
        if k < 0.05:
            line = b"."
        elif k < 0.10:
            line = b".." + rnd.randbytes(rnd.randint(0, 20)).translate(TRANS)
        else:
            line = rnd.randbytes(rnd.choice((rnd.randint(0, 80), rnd.randint(0, 998)))).translate(TRANS)
        out += line + b"\r\n"
    return bytes(out)

res = {"sessions": [], "messages": [], "errors": []}
rnd = random.Random(seed)
k = 0
for s_i in range(sessions):
    sess = {"index": s_i}
    res["sessions"].append(sess)
    try:
        s = smtplib.SMTP(host, port, local_hostname="client.example", timeout=30)
        sess["local"] = list(s.sock.getsockname()[:2])
        sess["peer"] = list(s.sock.getpeername()[:2])
        code, banner = s.ehlo()
        sess["ehlo"] = code
        for _ in range(per):
            body = message(rnd, k)
            want = hashlib.sha256(body).hexdigest()
            s.mail("sender@example.test", ["BODY=8BITMIME"])
            s.rcpt("rcpt@example.test")
            code, reply = s.data(body)
            res["messages"].append({"n": k, "session": s_i, "len": len(body), "sha256": want,
                                    "code": code, "reply": reply.decode(errors="replace")})
            k += 1
        s.quit()
    except Exception as e:
        res["errors"].append("session %d: %r" % (s_i, e))
with open(outp, "w") as f:
    json.dump(res, f)
'''

RAW_CLIENT_PY = r'''
import json, socket, sys, time
host, port, outp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
res = {"data": "", "eof": False, "error": None}
try:
    s = socket.create_connection((host, port), timeout=10)
    res["local"] = list(s.getsockname()[:2])
    got = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        b = s.recv(4096)
        if not b:
            res["eof"] = True
            break
        got += b
    res["data"] = got.decode(errors="replace")
    s.close()
except Exception as e:
    res["error"] = repr(e)
with open(outp, "w") as f:
    json.dump(res, f)
'''


# --------------------------------------------------------------------------
# Commands


def sweep_stale():
    """Namespaces of killed earlier runs of this test (see netns.py)."""
    netns.sweep_stale(re.escape(PREFIX) + r"(\d+)-\d+[cbs]")


# --------------------------------------------------------------------------
# The test bed


class Bed:
    """Client, balancer and server namespaces, wired and routed."""

    def __init__(self, tproxy_to=None, servers_rule_only=False):
        _seq[0] += 1
        base = "%s%d-%d" % (PREFIX, os.getpid(), _seq[0])
        self.c, self.b, self.s = base + "c", base + "b", base + "s"
        self.dir = t.tempdir("lbtest-tp-")
        self.made = []
        t.add_cleanup(self.destroy)
        for ns in (self.c, self.b, self.s):
            run(["ip", "netns", "add", ns])
            self.made.append(ns)
        # veth pairs made inside the namespaces: nothing in the host's.
        run(["ip", "-n", self.c, "link", "add", "to-lb", "type", "veth",
             "peer", "name", "to-client", "netns", self.b])
        run(["ip", "-n", self.s, "link", "add", "to-lb", "type", "veth",
             "peer", "name", "to-servers", "netns", self.b])
        for ns in (self.c, self.b, self.s):
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        self.ip(self.c, "addr add %s/24 dev to-lb" % CLIENT_IP)
        self.ip(self.c, "link set to-lb up")
        self.ip(self.c, "route add default via %s" % LB_CLIENT_SIDE)
        self.ip(self.b, "addr add %s/24 dev to-client" % LB_CLIENT_SIDE)
        self.ip(self.b, "addr add %s/24 dev to-servers" % LB_SERVER_SIDE)
        self.ip(self.b, "link set to-client up")
        self.ip(self.b, "link set to-servers up")
        for a in SERVER_IPS:
            self.ip(self.s, "addr add %s/24 dev to-lb" % a)
        self.ip(self.s, "link set to-lb up")
        # Transparent mode: the servers answer the client's address, so
        # their replies must go back through the balancer: a default route
        # through it, or (a server that keeps another default gateway) only
        # the replies from its SMTP port, by policy routing (README).
        if servers_rule_only:
            for a in SERVER_IPS:
                self.ip(self.s, "rule add from %s ipproto tcp sport %d lookup 25"
                        % (a, SERVER_PORT))
            self.ip(self.s, "route add default via %s table 25" % LB_SERVER_SIDE)
        else:
            self.ip(self.s, "route add default via %s" % LB_SERVER_SIDE)
        self.route_balancer(tproxy_to)
        self.ping_ok()

    def ip(self, ns, args):
        return run(["ip", "-n", ns] + args.split())

    def ns_exec(self, ns, cmd, **kw):
        return run(["ip", "netns", "exec", ns] + cmd, **kw)

    def route_balancer(self, tproxy_to):
        """The kernel's tproxy.txt recipe (REFERENCE 5) in the balancer's
        namespace; tproxy_to=(addr, port) adds the TPROXY rule that hands
        connections for that non-local address to the transparent listener."""
        ipt = shutil.which("iptables")
        t.require(ipt is not None, "iptables is installed (tests/deps.sh installs it)")
        # Not needed by the packets of this test (all of them end at the
        # balancer: its own address, TPROXY, or the socket match), but part of
        # the seed's sysctl lines: the balancer is the servers' gateway.
        self.ns_exec(self.b, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        rules = [
            "-t mangle -N DIVERT",
            "-t mangle -A PREROUTING -p tcp -m socket -j DIVERT",
            "-t mangle -A DIVERT -j MARK --set-mark 1",
            "-t mangle -A DIVERT -j ACCEPT",
        ]
        if tproxy_to:
            rules.append("-t mangle -A PREROUTING -p tcp -d %s --dport %d -j TPROXY "
                         "--tproxy-mark 0x1/0x1 --on-ip %s --on-port %d"
                         % (tproxy_to[0], tproxy_to[1], tproxy_to[0], tproxy_to[1]))
        for r in rules:
            self.ns_exec(self.b, [ipt] + r.split())
        self.ip(self.b, "rule add fwmark 1 lookup 100")
        self.ip(self.b, "route add local 0.0.0.0/0 dev lo table 100")
        _, out = self.ns_exec(self.b, [ipt, "-t", "mangle", "-S"])
        if _seq[0] == 1 or tproxy_to or t.VERBOSE:
            t.log("  balancer mangle table (%s):\n    %s" % (
                subprocess.run([ipt, "--version"], stdout=subprocess.PIPE).stdout.decode().strip(),
                "\n    ".join(ln for ln in out.strip().splitlines()
                               if not ln.startswith("-P"))))

    def ping_ok(self):
        """Both links carry packets (a TCP connect to a closed port gives
        an RST: no ping binary needed)."""
        code = ("import socket,sys\n"
                "s=socket.socket(); s.settimeout(3)\n"
                "try: s.connect((sys.argv[1], 9)); print('open')\n"
                "except ConnectionRefusedError: print('refused')\n"
                "except OSError as e: print(repr(e))\n")
        for ns, dst in ((self.c, LB_CLIENT_SIDE), (self.s, LB_SERVER_SIDE)):
            _, out = self.ns_exec(ns, [sys.executable, "-c", code, dst])
            t.require(out.strip() in ("refused", "open"), "link %s -> %s works" % (ns, dst),
                      out.strip())

    def start_servers(self):
        self.obs = os.path.join(self.dir, "servers.jsonl")
        script = os.path.join(self.dir, "sink.py")
        with open(script, "w") as f:
            f.write(netns.SINK_PY)
        errp = open(os.path.join(self.dir, "sink.err"), "wb")
        p = subprocess.Popen(["ip", "netns", "exec", self.s, sys.executable, script, self.obs]
                             + ["%s:%d" % (a, SERVER_PORT) for a in SERVER_IPS],
                             stdin=subprocess.DEVNULL, stdout=errp, stderr=errp)
        errp.close()
        t.register_proc(p, "sink (netns %s)" % self.s)
        ok = t.wait_until(lambda: p.poll() is not None or
                          any(e.get("event") == "ready" for e in self.observations()), 10)
        t.require(ok and p.poll() is None, "SMTP sinks listen on %s port %d" % (
            " and ".join(SERVER_IPS), SERVER_PORT), self.file("sink.err"))
        return p

    def observations(self):
        out = []
        try:
            with open(self.obs) as f:
                for ln in f:
                    if ln.endswith("\n"):
                        out.append(json.loads(ln))
        except OSError:
            pass
        return out

    def file(self, name):
        try:
            with open(os.path.join(self.dir, name), "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def run_client(self, host, port, sessions=SESSIONS, per=PER_SESSION, seed=SEED):
        script = os.path.join(self.dir, "client.py")
        outp = os.path.join(self.dir, "client-%d.json" % seed)
        with open(script, "w") as f:
            f.write(CLIENT_PY)
        rc, out = self.ns_exec(self.c, [sys.executable, script, host, str(port), str(sessions),
                                        str(per), str(seed), outp], timeout=90, check=False)
        t.require(rc == 0 and os.path.exists(outp), "client ran", "status %s: %s" % (rc, out))
        with open(outp) as f:
            return json.load(f)

    def raw_client(self, host, port):
        script = os.path.join(self.dir, "raw.py")
        outp = os.path.join(self.dir, "raw.json")
        with open(script, "w") as f:
            f.write(RAW_CLIENT_PY)
        rc, out = self.ns_exec(self.c, [sys.executable, script, host, str(port), outp],
                               timeout=30, check=False)
        t.require(rc == 0 and os.path.exists(outp), "raw client ran", "status %s: %s" % (rc, out))
        with open(outp) as f:
            return json.load(f)

    def destroy(self):
        for ns in reversed(self.made):
            netns_del(ns)
        left = [ns for ns in self.made if ns in netns_list()]
        self.made = []
        if left:
            t.log("  WARNING: namespaces not removed: %s" % left)


def config(bind, fe=None, be=None, glob=None):
    return t.make_config(
        bind, [("filter%d" % (i + 1), "%s:%d" % (a, SERVER_PORT), {"weight": 100})
               for i, a in enumerate(SERVER_IPS)],
        fe=fe, be=dict({"timeout_server": "10m", "timeout_connect": "3s", "retries": 1},
                       **(be or {})), glob=glob)


# --------------------------------------------------------------------------
# Checks


def check_delivery(label, bed, d, res, want_peer, want_target):
    """100 messages intact, every server session from want_peer."""
    msgs = res["messages"]
    t.log("  [%s] client: %d sessions, %d messages, %d bytes, errors %s"
          % (label, len(res["sessions"]), len(msgs), sum(m["len"] for m in msgs),
             res["errors"][:3]))
    t.check(not res["errors"], "[%s] no client errors" % label, "; ".join(res["errors"][:3]))
    targets = sorted(set(tuple(s.get("peer", ())) for s in res["sessions"]))
    t.check(targets == [(want_target[0], want_target[1])],
            "[%s] the client talked to %s:%d" % (label, want_target[0], want_target[1]),
            str(targets))
    n_want = SESSIONS * PER_SESSION
    bad = [m for m in msgs if not (m["code"] == 250 and
                                   ("len=%d sha256=%s" % (m["len"], m["sha256"])) in m["reply"])]
    t.check(len(msgs) == n_want and not bad,
            "[%s] %d messages, each DATA reply carries its length and SHA-256" % (label, n_want),
            "%d sent, %d bad, e.g. %s" % (len(msgs), len(bad), bad[:1]))
    # What the servers recorded.
    t.wait_until(lambda: sum(1 for e in bed.observations() if e["event"] == "close")
                 >= len(res["sessions"]), 5)
    obs = bed.observations()
    conns = [e for e in obs if e["event"] == "conn"]
    got = [e for e in obs if e["event"] == "msg"]
    errs = [e for e in obs if e["event"] == "error"]
    peers = sorted(set(e["peer"][0] for e in conns))
    per_server = {}
    for e in conns:
        per_server[e["server"]] = per_server.get(e["server"], 0) + 1
    t.log("  [%s] servers: %d sessions %s, getpeername() hosts %s, %d messages, errors %s"
          % (label, len(conns), per_server, peers, len(got), errs[:2]))
    t.check(len(conns) == SESSIONS, "[%s] the servers saw %d sessions" % (label, SESSIONS),
            "saw %d" % len(conns))
    t.check(conns and all(e["peer"][0] == want_peer for e in conns),
            "[%s] getpeername() on the server is %s for every session" % (label, want_peer),
            str(peers))
    t.check(len(per_server) == len(SERVER_IPS),
            "[%s] round robin used both servers" % label, str(per_server))
    sent = sorted((m["len"], m["sha256"]) for m in msgs)
    recv = sorted((e["len"], e["sha256"]) for e in got)
    t.check(sent == recv and len(recv) == n_want,
            "[%s] the servers received the %d messages intact (length and SHA-256)"
            % (label, n_want), "%d received" % len(recv))
    t.check(not errs, "[%s] no server-side errors" % label, str(errs[:3]))
    sess = d.wait_sessions(SESSIONS)
    clients = sorted(set(str(s.get("client", "")).rsplit(":", 1)[0] for s in sess))
    t.log("  [%s] session lines: %d, client hosts %s, ends %s" % (
        label, len(sess), clients, sorted(set(s.get("end") for s in sess))))
    t.check(len(sess) == SESSIONS and clients == [CLIENT_IP],
            "[%s] %d session lines with client=%s:PORT" % (label, SESSIONS, CLIENT_IP))
    t.check(all(s.get("retries") == 0 for s in sess), "[%s] no connect retries" % label)


# --------------------------------------------------------------------------
# Sub-tests


def test_control_kernel_source():
    """source = "" (the default): the servers see the balancer's own
    address.  Shows that the test bed tells the two apart."""
    bed = Bed()
    bed.start_servers()
    d = t.NsDaemon(bed.b, config("%s:%d" % (LB_CLIENT_SIDE, PORT)),
                 [(LB_CLIENT_SIDE, PORT)], name="tp-control").start()
    res = bed.run_client(LB_CLIENT_SIDE, PORT, sessions=2, per=3, seed=SEED + 1)
    t.check(not res["errors"] and len(res["messages"]) == 6 and
            all(m["code"] == 250 for m in res["messages"]),
            "[control] 6 messages accepted", str(res["errors"][:2]))
    t.wait_until(lambda: len([e for e in bed.observations() if e["event"] == "conn"]) >= 2, 5)
    peers = sorted(set(e["peer"][0] for e in bed.observations() if e["event"] == "conn"))
    t.log("  [control] server getpeername() hosts: %s" % peers)
    t.check(peers == [LB_SERVER_SIDE], "[control] without source, the servers see the "
            "balancer's %s" % LB_SERVER_SIDE, str(peers))
    d.stop()


def test_clientip_own_address():
    """(a) The balancer listens on its own 198.18.1.1:25 (no transparent
    listener) with source = "clientip": each server connection is bound to
    the client's IP (IP_TRANSPARENT, port 0); the servers' replies come
    back through the socket match and table 100."""
    bed = Bed()
    bed.start_servers()
    t0 = time.monotonic()
    d = t.NsDaemon(bed.b, config("%s:%d" % (LB_CLIENT_SIDE, PORT), be={"source": "clientip"}),
                 [(LB_CLIENT_SIDE, PORT)], name="tp-clientip").start()
    res = bed.run_client(LB_CLIENT_SIDE, PORT)
    t.log("  [clientip] %d messages in %.1fs" % (len(res["messages"]), time.monotonic() - t0))
    check_delivery("clientip", bed, d, res, CLIENT_IP, (LB_CLIENT_SIDE, PORT))
    d.stop()


def test_transparent_nonlocal():
    """(b) The seed's transparent setup: the listener binds 198.18.9.9:25,
    an address of no interface (bind ... transparent), and a TPROXY rule
    hands the client's connections for it to that listener; source =
    "clientip".  TPROXY only delivers to sockets with IP_TRANSPARENT, and
    without it the bind itself fails (checked first), so this is the real
    IP_TRANSPARENT path, not a local route for 198.18.9.9."""
    bed = Bed(tproxy_to=(NONLOCAL_IP, PORT))
    bind = "%s:%d" % (NONLOCAL_IP, PORT)
    # Without transparent = true: exit 3, "Cannot assign requested address".
    d0 = t.NsDaemon(bed.b, config(bind), [(NONLOCAL_IP, PORT)],
                  name="tp-nonlocal-plain")
    d0.start(wait=False)
    rc = d0.wait_exit(10)
    err = d0.stderr().strip()
    t.log("  [nonlocal] without transparent: status %s, stderr %r" % (rc, err[-300:]))
    t.check(rc == 3 and os.strerror(99) in err,
            "[nonlocal] without transparent = true the bind of %s fails (exit 3, %s)"
            % (bind, os.strerror(99)))
    bed.start_servers()
    t0 = time.monotonic()
    d = t.NsDaemon(bed.b, config(bind, fe={"transparent": True}, be={"source": "clientip"}),
                 [(NONLOCAL_IP, PORT)], name="tp-nonlocal").start()
    res = bed.run_client(NONLOCAL_IP, PORT, seed=SEED + 2)
    t.log("  [nonlocal] %d messages in %.1fs" % (len(res["messages"]), time.monotonic() - t0))
    check_delivery("nonlocal", bed, d, res, CLIENT_IP, (NONLOCAL_IP, PORT))
    d.stop()


def start_refused(label, ns, text, prefix):
    """Start the daemon and expect it to stop at start-up: exit 3 and
    exactly one line naming IP_TRANSPARENT with the errno text."""
    d = t.NsDaemon(ns, text, [(LB_CLIENT_SIDE, PORT)], name="tp-" + label, prefix=prefix)
    d.start(wait=False)
    rc = d.wait_exit(10)
    err = d.stderr()
    lines = [ln for ln in err.splitlines() if "IP_TRANSPARENT" in ln]
    t.log("  [%s] status %s, stderr:\n    %s"
          % (label, rc, "\n    ".join(err.strip().splitlines()[-5:])))
    t.check(rc == 3, "[%s] exits 3 (start-up failure)" % label, "status %s" % rc)
    t.check(len(lines) == 1 and EPERM_TEXT in lines[0],
            "[%s] one line names IP_TRANSPARENT and '%s'" % (label, EPERM_TEXT), repr(lines))
    return d


def test_servers_policy_rule():
    """The servers have no default route at all, only README's policy rule
    sending the replies from their port 25 through the balancer (table 25):
    enough for source = "clientip"."""
    bed = Bed(servers_rule_only=True)
    _, rules = bed.ip(bed.s, "rule show")
    t.log("  [rule-only] server rules:\n    %s" % "\n    ".join(rules.strip().splitlines()))
    bed.start_servers()
    d = t.NsDaemon(bed.b, config("%s:%d" % (LB_CLIENT_SIDE, PORT), be={"source": "clientip"}),
                 [(LB_CLIENT_SIDE, PORT)], name="tp-rule-only").start()
    res = bed.run_client(LB_CLIENT_SIDE, PORT, seed=SEED + 5)
    check_delivery("rule-only", bed, d, res, CLIENT_IP, (LB_CLIENT_SIDE, PORT))
    d.stop()


def test_no_capability():
    """Without CAP_NET_ADMIN and CAP_NET_RAW (setpriv drops both from the
    bounding set; root keeps the rest): transparent = true fails when the
    listener is made, and source = "clientip" is tried at start-up too
    (an IP_TRANSPARENT socket is made and closed), so neither starts:
    exit 3 and one line naming IP_TRANSPARENT and the errno text."""
    if shutil.which("setpriv") is None:
        raise t.Skip("no setpriv (util-linux)")
    bed = Bed()
    own = "%s:%d" % (LB_CLIENT_SIDE, PORT)
    start_refused("nocap-transparent", bed.b, config(own, fe={"transparent": True}), NOCAPS)
    start_refused("nocap-clientip", bed.b, config(own, be={"source": "clientip"}), NOCAPS)
    # The same without setpriv starts: the capability was the reason.
    d = t.NsDaemon(bed.b, config(own, fe={"transparent": True}, be={"source": "clientip"}),
                 [(LB_CLIENT_SIDE, PORT)], name="tp-withcap").start()
    t.check(d.alive(), "[withcap] with the capabilities the same configuration starts")
    d.stop()


def test_clientip_after_user_drop():
    """source = "clientip" with global.user = "nobody": the start-up probe
    runs as root, but every server connection is made after the switch to
    the user.  Either the daemon keeps what IP_TRANSPARENT needs (the
    servers see the client's address) or it refuses to start (exit 3, one
    line); it must not start and then answer every client with the
    unavailable_reply."""
    bed = Bed()
    bed.start_servers()
    own = "%s:%d" % (LB_CLIENT_SIDE, PORT)
    d = t.NsDaemon(bed.b, config(own, be={"source": "clientip"}, glob={"user": "nobody"}),
        [(LB_CLIENT_SIDE, PORT)], name="tp-user")
    d.start(wait=False)
    t.wait_until(lambda: not d.alive() or PORT in d.listening_ports(), 5)
    if not d.alive():
        err = d.stderr()
        lines = [ln for ln in err.splitlines() if "IP_TRANSPARENT" in ln]
        t.log("  [user] refused at start: status %s, %s" % (d.proc.returncode, err.strip()[-300:]))
        t.check(d.proc.returncode == 3 and len(lines) == 1,
                "[user] refused at start-up: exit 3, one line naming IP_TRANSPARENT")
        return
    res = bed.run_client(LB_CLIENT_SIDE, PORT, sessions=2, per=3, seed=SEED + 3)
    conns = [e for e in bed.observations() if e["event"] == "conn"]
    peers = sorted(set(e["peer"][0] for e in conns))
    lines = [ln for ln in d.stderr().splitlines() if "IP_TRANSPARENT" in ln]
    t.log("  [user] client errors %s; server sessions %d from %s; IP_TRANSPARENT lines %s"
          % (res["errors"][:2], len(conns), peers, lines[:2]))
    if lines:
        # The connect-time failure, at least, is handled as load-balancer.conf(5),
        # RELAY says.
        raw = bed.raw_client(LB_CLIENT_SIDE, PORT)
        t.check(raw["data"].encode() == t.DEFAULT_UNAVAILABLE and raw["eof"],
                "[user] a failed connect gives the client the unavailable_reply",
                repr(raw["data"][:100]))
        t.check(all(EPERM_TEXT in ln for ln in lines),
                "[user] the log names IP_TRANSPARENT and '%s'" % EPERM_TEXT)
    t.check(not res["errors"] and len(conns) == 2 and peers == [CLIENT_IP],
            "[user] after the switch to user nobody the servers still see %s" % CLIENT_IP,
            "client errors %s, server sessions from %s" % (res["errors"][:1], peers))
    d.stop()


def test_file_capabilities_as_user():
    """README's way to run as an ordinary user: a copy of the program with
    `setcap cap_net_admin,cap_net_bind_service+ep`, started as nobody
    (setpriv), listens on port 25 and connects from the client's IP."""
    setcap = shutil.which("setcap")
    if setcap is None or shutil.which("setpriv") is None:
        raise t.Skip("no setcap (libcap2-bin) or setpriv (util-linux)")
    bed = Bed()
    bed.start_servers()
    work = t.tempdir("lbtest-tp-cap-")
    os.chmod(work, 0o755)
    binary = os.path.join(work, "load-balancer")
    shutil.copy(t.LB_BIN, binary)
    os.chmod(binary, 0o755)
    rc, out = run([setcap, "cap_net_admin,cap_net_bind_service+ep", binary], check=False)
    if rc != 0:
        raise t.Skip("setcap failed here (file system without extended attributes?): "
                     + out.strip())
    run_dir = os.path.join(work, "run")
    os.mkdir(run_dir)
    os.chown(run_dir, 65534, 65534)      # nobody: pidfile, control socket, health log
    text = config("%s:%d" % (LB_CLIENT_SIDE, PORT), be={"source": "clientip"},
                  glob={"control_socket": run_dir + "/lb.sock",
                        "health_log": run_dir + "/health.log"})
    d = t.NsDaemon(bed.b, text, [(LB_CLIENT_SIDE, PORT)], name="tp-setcap", binary=binary,
                 workdir=run_dir,
                 prefix=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"])
    os.chmod(d.conf, 0o644)
    d.start()
    with open("/proc/%d/status" % d.proc.pid) as f:
        ids = [ln.split()[1] for ln in f if ln.startswith(("Uid:", "CapEff:"))]
    t.log("  [setcap] daemon uid %s, CapEff %s" % (ids[0], ids[1]))
    t.check(ids[0] == "65534", "[setcap] the daemon runs as nobody", ids[0])
    res = bed.run_client(LB_CLIENT_SIDE, PORT, sessions=2, per=3, seed=SEED + 6)
    conns = [e for e in bed.observations() if e["event"] == "conn"]
    peers = sorted(set(e["peer"][0] for e in conns))
    t.check(not res["errors"] and len(res["messages"]) == 6 and
            all(m["code"] == 250 for m in res["messages"]) and len(conns) == 2 and
            peers == [CLIENT_IP],
            "[setcap] 6 messages, the servers see %s" % CLIENT_IP,
            "client errors %s, server sessions from %s" % (res["errors"][:1], peers))
    d.stop()


def test_source_addr():
    """source = "ADDR": server connections and health checks leave from
    that address of the balancer (a second address on its server side);
    an address the balancer does not have stops start-up (exit 3)."""
    bed = Bed()
    extra = "198.18.2.9"
    bed.ip(bed.b, "addr add %s/24 dev to-servers" % extra)
    own = "%s:%d" % (LB_CLIENT_SIDE, PORT)
    bad = t.NsDaemon(bed.b, config(own, be={"source": "198.18.7.7"}), [(LB_CLIENT_SIDE, PORT)],
                   name="tp-addr-bad")
    bad.start(wait=False)
    rc = bad.wait_exit(10)
    t.log("  [addr] source 198.18.7.7: status %s, %r" % (rc, bad.stderr().strip()[-200:]))
    t.check(rc == 3 and os.strerror(99) in bad.stderr(),
            "[addr] a source address that is not the balancer's: exit 3, '%s'"
            % os.strerror(99))
    bed.start_servers()
    d = t.NsDaemon(bed.b, config(own, be={"source": extra, "health_check": {
        "type": "smtp", "helo": "lbtest.example", "interval": "300ms"}}),
        [(LB_CLIENT_SIDE, PORT)], name="tp-addr").start()
    res = bed.run_client(LB_CLIENT_SIDE, PORT, sessions=2, per=3, seed=SEED + 4)
    t.check(not res["errors"] and len(res["messages"]) == 6 and
            all(m["code"] == 250 for m in res["messages"]),
            "[addr] 6 messages accepted", str(res["errors"][:2]))
    # Sessions (2) and at least one check per server.
    t.wait_until(lambda: len([e for e in bed.observations() if e["event"] == "conn"]) >= 4, 5)
    conns = [e for e in bed.observations() if e["event"] == "conn"]
    peers = sorted(set(e["peer"][0] for e in conns))
    t.log("  [addr] %d server connections (sessions and checks) from %s" % (len(conns), peers))
    t.check(len(conns) >= 4 and peers == [extra],
            "[addr] sessions and health checks come from %s" % extra, str(peers))
    d.stop()


if __name__ == "__main__":
    why = skip_reason(PREFIX)
    if why:
        print("SKIP: %s" % why, flush=True)
        sys.exit(t.SKIP)
    t.log("random seed %d (set LB_SEED to repeat)" % SEED)
    sweep_stale()
    t.main([test_control_kernel_source, test_clientip_own_address, test_transparent_nonlocal,
            test_servers_policy_rule, test_no_capability, test_clientip_after_user_drop,
            test_file_capabilities_as_user, test_source_addr],
           timeout=150, per_test=60)
