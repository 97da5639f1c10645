#!/usr/bin/env python3
"""An active/passive pair with keepalived (README "More than one machine"),
built for real and failed over twice.

Six network namespaces made here (names carry this PID), all on one
Ethernet segment: a bridge inside a "switch" namespace and one veth pair
from it to each host (created inside the namespaces: the host's own
network is never touched), addresses in 198.18.0.0/15 only:

    lb1 198.18.0.11   lb2 198.18.0.12     balancers: load-balancer and
                                          Debian's keepalived, VIP 198.18.0.10
    client 198.18.0.100                   sends one message per session
    s1 198.18.0.21    s2 198.18.0.22      SMTP sinks (Python, below)

Each balancer host runs the daemon built here (LB_BIN) with its frontend
bound to VIP:2525 before it owns the VIP (net.ipv4.ip_nonlocal_bind = 1 in
its namespace, README's choice), forwarding to both sinks with SMTP health
checks, and keepalived (--dont-fork, its own pid files, VRRP only) with
etc/keepalived.conf.example itself: the same file on both hosts, with only
the virtual address, the lbctl path and the notify line (a recorder
instead of logger) replaced; every replacement must match exactly once,
so a change of the example that this test does not follow fails here.
The example's enable_script_security stays: keepalived refuses a script
under a directory that others than root may write, so the track script is
a copy of the built lbctl in this node's own directory (mode 0755 under
/tmp, whose sticky bit keepalived accepts), wherever the build tree is,
with -s for this node's control socket.  The example's `@lb1`/`@lb2`
lines are selected with keepalived -i lb1 / -i lb2: lb1 has priority 150,
lb2 100; both start BACKUP with nopreempt.

VRRP goes by multicast (224.0.0.18) over the bridge: the example's
default.  224.0.0.0/24 is link-local, which a Linux bridge floods to every
port whatever its multicast snooping (no IGMP needed), so it is as
reliable as unicast here and the example's unicast_peer lines stay a
documented alternative.

The client (ip netns exec, one thread) opens one SMTP session after the
other to VIP:2525 for the whole test (bounded by a count and a time; a
connect gives up after 0.3 s, every reply after 1 s), one message each with
an X-Attempt header, and writes a line per attempt (monotonic start and end,
result, the stage where it failed).  The sinks record every message with
its attempt number and the balancer it came from (getpeername()).

- election: exactly one node holds the VIP, the other is BACKUP.
- scenario A: SIGKILL of the master's load-balancer: its `lbctl check`
  fails (the example's fall 1, interval 1), keepalived goes FAULT and gives
  up the VIP with a priority 0 advert, the peer takes it after its skew
  time ((256 - priority)/256 s).  Measured: kill -> first message accepted
  through the peer (goal: under 3 s with advert_int 1), which a sink
  confirms came from the peer's address while `ip addr` shows the VIP
  there and the peer's daemon logs the client's sessions.  The kill (and
  the link cut of B) comes at a random moment within a second (LB_SEED),
  so that runs meet keepalived's timers at different phases.
- return A: the killed daemon is started again: that node goes BACKUP and,
  nopreempt, the VIP stays where it is (priority 150 notwithstanding) for
  longer than a master-down interval, without a failed session.
- scenario B: the current master's link goes down (its eth0 in its own
  namespace): it cannot say goodbye, so the peer takes over once 3 adverts
  are missed plus the skew (3 x advert_int + (256 - priority)/256 s, about
  3.4-3.6 s; the VRRP minimum, above the 3 s goal by design).
- return B: the link comes back: BACKUP again, the VIP stays.
- every message the client saw accepted is at a sink exactly once; a
  message at a sink that the client did not see accepted is allowed only
  for a session cut after its final dot (SMTP's duplicate window).

Skipped (exit 77) only when network namespaces cannot be created (not
root, no `ip netns`); a missing keepalived fails (tests/deps.sh installs
it).  Everything made here is removed at the end, also on failure, on a
signal or at the time limit: processes by PID (the harness), then what is
left in our namespaces (keepalived's children, scripts) by the PIDs `ip
netns pids` lists, then the namespaces.  Namespaces left by a killed
earlier run (its PID gone) are removed at start the same way.
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402
import netns  # noqa: E402
from netns import (netns_clear, netns_del, netns_list, netns_pids,  # noqa: E402,F401
                   run, skip_reason)

PREFIX = "lbka-"
HOSTS = ("sw", "lb1", "lb2", "cl", "s1", "s2")
NET = "198.18.0.%d/24"
VIP = "198.18.0.10"
ADDR = {"lb1": "198.18.0.11", "lb2": "198.18.0.12", "cl": "198.18.0.100",
        "s1": "198.18.0.21", "s2": "198.18.0.22"}
PRIORITY = {"lb1": 150, "lb2": 100}          # the example's @lb1/@lb2 lines
PORT = 2525                                  # the frontend, on the VIP
SINK_PORT = 2500
ADVERT_INT = 1.0
EXAMPLE = os.path.join(t.SRCDIR, "etc", "keepalived.conf.example")
KEEPALIVED = shutil.which("keepalived") or "/usr/sbin/keepalived"
GOAL_S = 3.0                                 # issue 9: kill -> first success
CLIENT_MAX_ATTEMPTS = 3000
CLIENT_MAX_SECONDS = 95                     # the test's own limit is 100 s
SEED = int(os.environ.get("LB_SEED", "0")) or random.randrange(1, 1 << 30)
RND = random.Random(SEED)

# --------------------------------------------------------------------------
# Helper programs, run inside the namespaces with `ip netns exec`.

CLIENT_PY = r'''
import json, os, socket, sys, time
host, port, outp, stopf, max_n, max_s = sys.argv[1:7]
port, max_n, max_s = int(port), int(max_n), float(max_s)
CONNECT_TIMEOUT, REPLY_TIMEOUT, PAUSE = 0.3, 1.0, 0.05
out = open(outp, "a")
t_end = time.monotonic() + max_s

class Fail(Exception):
    pass

def reply(f, want):
    while True:
        ln = f.readline(4096)
        if not ln:
            raise Fail("connection closed")
        if len(ln) < 4 or ln[3:4] != b"-":
            break
    if not ln.startswith(want):
        raise Fail("reply %r" % ln.strip()[:80])
    return ln.decode(errors="replace").strip()

i = 0
while i < max_n and time.monotonic() < t_end and not os.path.exists(stopf):
    i += 1
    rec = {"i": i, "t0": time.monotonic(), "ok": False, "stage": "connect"}
    s = None
    try:
        s = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
        s.settimeout(REPLY_TIMEOUT)
        f = s.makefile("rb")
        rec["stage"] = "banner"
        rec["banner"] = reply(f, b"220")
        rec["stage"] = "ehlo"
        s.sendall(b"EHLO client.lbtest\r\n")
        reply(f, b"250")
        rec["stage"] = "mail"
        s.sendall(b"MAIL FROM:<sender@example.test>\r\n")
        reply(f, b"250")
        rec["stage"] = "rcpt"
        s.sendall(b"RCPT TO:<rcpt@example.test>\r\n")
        reply(f, b"250")
        rec["stage"] = "data"
        s.sendall(b"DATA\r\n")
        reply(f, b"354")
        s.sendall(b"Subject: failover test\r\nX-Attempt: %d\r\n\r\nattempt %d\r\n" % (i, i))
        rec["stage"] = "dot"
        s.sendall(b".\r\n")
        rec["reply"] = reply(f, b"250")
        rec["ok"] = True             # accepted: the message is the server's now
        rec["stage"] = "quit"
        s.sendall(b"QUIT\r\n")
        reply(f, b"221")
        rec["stage"] = "done"
    except (OSError, Fail) as e:
        rec["error"] = str(e) or repr(e)
    finally:
        if s is not None:
            s.close()
    rec["t1"] = time.monotonic()
    out.write(json.dumps(rec) + "\n")
    out.flush()
    time.sleep(PAUSE)
'''

NOTIFY_SH = r'''#!/bin/sh
# keepalived notify: TYPE NAME STATE PRIORITY (as the example's logger line)
echo "$(date +%%s.%%N) $*" >> '%s'
'''


# --------------------------------------------------------------------------
# Commands


def sweep_stale():
    """Namespaces of killed earlier runs of this test (see netns.py)."""
    netns.sweep_stale(re.escape(PREFIX) + r"(\d+)-(%s)" % "|".join(HOSTS))


# --------------------------------------------------------------------------
# The test bed


class Bed:
    """The switch and five hosts, wired and addressed."""

    def __init__(self):
        self.ns = {h: "%s%d-%s" % (PREFIX, os.getpid(), h) for h in HOSTS}
        self.dir = t.tempdir("lbtest-ka-")
        os.chmod(self.dir, 0o755)
        self.made = []
        t.add_cleanup(self.destroy)
        for h in HOSTS:
            run(["ip", "netns", "add", self.ns[h]])
            self.made.append(self.ns[h])
            self.ip(h, "link set lo up")
        sw = self.ns["sw"]
        self.ip("sw", "link add br0 type bridge")
        self.ip("sw", "link set br0 up")
        for h in HOSTS[1:]:
            # eth0 in the host, port-HOST on the switch's bridge.
            run(["ip", "-n", self.ns[h], "link", "add", "eth0", "type", "veth",
                 "peer", "name", "port-" + h, "netns", sw])
            self.ip("sw", "link set port-%s master br0" % h)
            self.ip("sw", "link set port-%s up" % h)
            self.ip(h, "addr add %s dev eth0" % (NET % int(ADDR[h].rsplit(".", 1)[1])))
            self.ip(h, "link set eth0 up")
        self.ping_ok()

    def ip(self, host, args, check=True):
        return run(["ip", "-n", self.ns[host]] + args.split(), check=check)

    def ns_exec(self, host, cmd, **kw):
        return run(["ip", "netns", "exec", self.ns[host]] + cmd, **kw)

    def popen(self, host, cmd, logname):
        """Start a long-running program in a host's namespace (ip netns
        exec execs it: the PID is the program's), registered for cleanup."""
        errp = open(os.path.join(self.dir, logname), "ab")
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[host]] + cmd,
                             stdin=subprocess.DEVNULL, stdout=errp, stderr=errp,
                             cwd=self.dir)
        errp.close()
        t.register_proc(p, "%s (netns %s)" % (os.path.basename(cmd[0]), self.ns[host]))
        return p

    def ping_ok(self):
        """Every host reaches every other over the bridge (a TCP connect to
        a closed port gives an RST: no ping binary needed)."""
        code = ("import socket,sys\n"
                "for a in sys.argv[1:]:\n"
                "    s=socket.socket(); s.settimeout(3)\n"
                "    try: s.connect((a, 9)); print(a, 'open')\n"
                "    except ConnectionRefusedError: print(a, 'refused')\n"
                "    except OSError as e: print(a, repr(e))\n")
        # The links are up at once (the bridge has STP off).
        _, out = self.ns_exec("cl", [sys.executable, "-c", code] +
                              [ADDR[h] for h in ("lb1", "lb2", "s1", "s2")])
        lines = out.strip().splitlines()
        bad = [ln for ln in lines if not ln.endswith(("refused", "open"))]
        t.require(not bad and len(lines) == 4,
                  "the client reaches both balancers and both servers over the bridge",
                  "; ".join(lines) if bad or len(lines) != 4 else "")

    def vip_holders(self):
        out = []
        for h in ("lb1", "lb2"):
            rc, text = self.ip(h, "-4 -o addr show dev eth0", check=False)
            if re.search(r"\binet %s/" % re.escape(VIP), text):
                out.append(h)
        return out

    def file(self, name):
        try:
            with open(os.path.join(self.dir, name), "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def jsonl(self, name):
        out = []
        for ln in self.file(name).splitlines(True):
            if ln.endswith("\n"):
                try:
                    out.append(json.loads(ln))
                except ValueError:
                    pass
        return out

    def destroy(self):
        for ns in reversed(self.made):
            netns_clear(ns)
        left = [ns for ns in self.made if ns in netns_list()]
        self.made = []
        if left:
            t.log("  WARNING: namespaces not removed: %s" % left)


class Node:
    """A balancer host: load-balancer and keepalived in namespace lbN."""

    def __init__(self, bed, name):
        self.bed, self.name, self.ns = bed, name, bed.ns[name]
        self.addr = ADDR[name]
        self.dir = t.tempdir("lbtest-ka-%s-" % name)
        os.chmod(self.dir, 0o755)
        self.sock = os.path.join(self.dir, "lb.sock")
        self.lb_conf = t.make_config(
            "%s:%d" % (VIP, PORT),
            [("s1", "%s:%d" % (ADDR["s1"], SINK_PORT)),
             ("s2", "%s:%d" % (ADDR["s2"], SINK_PORT))],
            be={"timeout_connect": "1s", "timeout_server": "10m", "retries": 1,
                "health_check": {"type": "smtp", "helo": "%s.lbtest" % name,
                                 "interval": "500ms", "rise": 2, "fall": 2}},
            glob={"control_socket": self.sock,
                  "health_log": os.path.join(self.dir, "health.log"),
                  "stats_listen": ""})
        self.lbs = []
        self.ka = None
        self.notify_log = os.path.join(self.dir, "notify.log")
        self.ka_conf = os.path.join(self.dir, "keepalived.conf")
        notify = os.path.join(self.dir, "notify.sh")
        with open(notify, "w") as f:
            f.write(NOTIFY_SH % self.notify_log)
        os.chmod(notify, 0o755)
        # enable_script_security: a path only root can change.
        self.lbctl = os.path.join(self.dir, "lbctl")
        shutil.copy(t.LBCTL_BIN, self.lbctl)
        os.chmod(self.lbctl, 0o755)
        with open(self.ka_conf, "w") as f:
            f.write(keepalived_conf(self.lbctl, self.sock, notify))
        # The namespace's own sysctl: bind the VIP before owning it.
        bed.ns_exec(name, ["sysctl", "-q", "-w", "net.ipv4.ip_nonlocal_bind=1"])

    @property
    def lb(self):
        return self.lbs[-1]

    def start_lb(self):
        d = t.NsDaemon(self.ns, self.lb_conf, [(VIP, PORT)],
                     name="%s-%d" % (self.name, len(self.lbs) + 1))
        self.lbs.append(d)
        d.start()
        return d

    def lbctl_check(self):
        rc, out = self.bed.ns_exec(self.name, [t.LBCTL_BIN, "-s", self.sock, "check"],
                                   check=False, timeout=15)
        return rc, out.strip()

    def start_keepalived(self):
        d = self.dir
        self.ka = self.bed.popen(self.name, [
            KEEPALIVED, "--dont-fork", "--log-console", "--log-detail", "--no-syslog",
            "--vrrp", "--use-file", self.ka_conf, "--config-id", self.name,
            "--pid", os.path.join(d, "keepalived.pid"),
            "--vrrp_pid", os.path.join(d, "vrrp.pid"),
            "--checkers_pid", os.path.join(d, "checkers.pid")],
            "keepalived-%s.log" % self.name)
        return self.ka

    def ka_log(self):
        return self.bed.file("keepalived-%s.log" % self.name)

    def states(self):
        """[(wall time, state)] from the notify recorder."""
        out = []
        try:
            with open(self.notify_log) as f:
                for ln in f:
                    p = ln.split()
                    if len(p) >= 4 and p[1] == "INSTANCE":
                        out.append((float(p[0]), p[3]))
        except OSError:
            pass
        return out

    def state(self):
        s = self.states()
        return s[-1][1] if s else None


def keepalived_conf(lbctl, sock, notify):
    """etc/keepalived.conf.example with this node's replacements; each must
    match exactly once."""
    with open(EXAMPLE) as f:
        text = f.read()
    subs = [
        (r"\n\s*192\.0\.2\.25/24 dev eth0\n", "\n        %s/24 dev eth0\n" % VIP),
        (r'script "/usr/local/sbin/lbctl check"',
         'script "%s -s %s check"' % (lbctl, sock)),
        (r'\n\s*notify "/usr/bin/logger [^"\n]*"', '\n    notify "%s"' % notify),
    ]
    for pat, rep in subs:
        text, n = re.subn(pat, lambda m: rep, text)
        t.require(n == 1, "%s: /%s/ matches once" % (os.path.basename(EXAMPLE), pat),
                  "%d matches" % n)
    for want in ("nopreempt", "advert_int 1", "state BACKUP", "@lb1 priority 150",
                 "@lb2 priority 100", "track_script"):
        t.require(want in text, "%s says %r (this test relies on it)"
                  % (os.path.basename(EXAMPLE), want))
    return text


# --------------------------------------------------------------------------
# The client's record


def attempts(bed):
    return bed.jsonl("client.jsonl")


def delivered(bed):
    """{attempt: [(server, peer)]} from both sinks."""
    out = {}
    for h in ("s1", "s2"):
        for e in bed.jsonl("sink-%s.jsonl" % h):
            if e.get("event") == "msg":
                out.setdefault(e["attempt"], []).append((e["server"], e["peer"][0]))
    return out


def first_success_after(bed, t_from, via=None, timeout=10.0):
    """The first attempt started after t_from that was accepted (through
    the balancer with address via, when given), waiting up to timeout."""
    def find():
        dl = delivered(bed)
        for a in attempts(bed):
            if a["t0"] >= t_from and a["ok"]:
                if via is None or any(p == via for _, p in dl.get(a["i"], ())):
                    return a
        return None
    return t.wait_until(find, timeout, step=0.05)


def phase_stats(bed, t_from, t_to):
    at = [a for a in attempts(bed) if t_from <= a["t0"] < t_to]
    ok = [a for a in at if a["ok"]]
    dl = delivered(bed)
    return {"attempted": len(at), "failed": len(at) - len(ok),
            "delivered": sum(1 for a in at if a["i"] in dl),
            "accepted": len(ok), "failures": [a for a in at if not a["ok"]]}


def fmt_fail(fs):
    by = {}
    for a in fs:
        k = "%s: %s" % (a["stage"], a.get("error", "?"))
        by[k] = by.get(k, 0) + 1
    return ", ".join("%d x %s" % (n, k) for k, n in sorted(by.items()))


# --------------------------------------------------------------------------
# The test


def scenario(bed, label, master, backup, action, limit):
    """Do action() to the master; measure until the first message accepted
    through the backup.  Returns the figures."""
    # At a random moment within a second: the failure meets keepalived's
    # script run and advertisement timers at any phase, not always the same.
    pause = RND.uniform(0.0, 1.0)
    t.log("  [%s] master %s (VIP, %s), backup %s (%s); failing it in %.2f s"
          % (label, master.name, master.state(), backup.name, backup.state(), pause))
    time.sleep(pause)
    w0 = time.time()
    t0 = time.monotonic()
    action()
    first = first_success_after(bed, t0, via=backup.addr, timeout=limit)
    t.require(first is not None, "[%s] a message is accepted through %s within %.0fs"
              % (label, backup.name, limit))
    dt = first["t1"] - t0
    holders = bed.vip_holders()
    t.check(holders == [backup.name], "[%s] the VIP is on %s alone" % (label, backup.name),
            str(holders))
    mine = t.wait_until(lambda: [x for x in backup.lb.sessions()
                                 if str(x.get("client", "")).startswith(ADDR["cl"] + ":")], 3)
    t.check(mine, "[%s] %s's load-balancer logged the client's sessions"
            % (label, backup.name), "%d session lines" % len(mine))
    to_master = [w - w0 for w, s in backup.states() if s == "MASTER" and w >= w0]
    fault = [w - w0 for w, s in master.states() if s == "FAULT" and w >= w0]
    time.sleep(1.0)                       # sessions after the switch
    st = phase_stats(bed, t0, time.monotonic())
    after = [a for a in st["failures"] if a["t0"] >= first["t1"]]
    t.check(not after, "[%s] no failed session after the first one through %s"
            % (label, backup.name), fmt_fail(after))
    st.update(label=label, switch=dt, first=first["i"],
              master_at=to_master[0] if to_master else None,
              fault_at=fault[0] if fault else None)
    t.log("  [%s] kill/cut -> %s MASTER %s s, -> first message accepted through %s "
          "%.2f s (attempt %d); %s FAULT %s s"
          % (label, backup.name, "%.2f" % st["master_at"] if to_master else "?",
             backup.name, dt, first["i"], master.name,
             "%.2f" % st["fault_at"] if fault else "-"))
    t.log("  [%s] sessions attempted %d, failed %d (%s), delivered %d"
          % (label, st["attempted"], st["failed"], fmt_fail(st["failures"]), st["delivered"]))
    return st


def comeback(bed, label, returning, holder, action, watch):
    """Bring the old master back; with nopreempt it must turn BACKUP and
    the VIP must stay on holder for watch seconds, no session failing."""
    n0 = len(returning.states())
    t0 = time.monotonic()
    action()
    ok = t.wait_until(lambda: any(s == "BACKUP" for _, s in returning.states()[n0:]), 15,
                      step=0.05)
    t.require(ok, "[%s] %s is BACKUP again (notify) within 15 s" % (label, returning.name),
              "" if ok else str(returning.states()[n0:]))
    t_b = time.monotonic()
    moved = []
    while time.monotonic() - t_b < watch:
        h = bed.vip_holders()
        if h != [holder.name]:
            moved.append(h)
        time.sleep(0.1)
    st = phase_stats(bed, t0, time.monotonic())
    later = [s for _, s in returning.states()[n0:]]
    t.log("  [%s] %s back: BACKUP after %.2f s, states %s; watched %.1f s more"
          % (label, returning.name, t_b - t0, later, watch))
    t.check(not moved and "MASTER" not in later,
            "[%s] nopreempt: the VIP stays on %s (priority %d) although %s (priority %d) "
            "is back" % (label, holder.name, PRIORITY[holder.name], returning.name,
                         PRIORITY[returning.name]),
            "" if not moved and "MASTER" not in later else
            "holders seen %s, states %s" % (moved[:3], later))
    t.check(st["failed"] == 0, "[%s] no session failed while %s came back"
            % (label, returning.name), fmt_fail(st["failures"]))
    t.log("  [%s] sessions attempted %d, failed %d, delivered %d"
          % (label, st["attempted"], st["failed"], st["delivered"]))
    return st


def test_failover():
    t.require(os.path.exists(KEEPALIVED),
              "keepalived is installed (%s; tests/deps.sh installs it)" % KEEPALIVED)
    t.require(os.access(t.LBCTL_BIN, os.X_OK), "lbctl is built (%s)" % t.LBCTL_BIN)
    _, ver = run([KEEPALIVED, "--version"], check=False)
    t.log("  %s" % ver.strip().splitlines()[0])
    bed = Bed()
    # The sinks.
    for h in ("s1", "s2"):
        script = os.path.join(bed.dir, "sink.py")
        with open(script, "w") as f:
            f.write(netns.SINK_PY)
        p = bed.popen(h, [sys.executable, script, os.path.join(bed.dir, "sink-%s.jsonl" % h),
                          "%s@%s:%d" % (h, ADDR[h], SINK_PORT)], "sink-%s.err" % h)
        ok = t.wait_until(lambda: p.poll() is not None or
                          any(e.get("event") == "ready" for e in bed.jsonl("sink-%s.jsonl" % h)),
                          10)
        t.require(ok and p.poll() is None, "SMTP sink %s listens on %s:%d"
                  % (h, ADDR[h], SINK_PORT), bed.file("sink-%s.err" % h))
    # The balancers, listening on the VIP they do not own yet.
    nodes = {h: Node(bed, h) for h in ("lb1", "lb2")}
    for n in nodes.values():
        n.start_lb()
    for n in nodes.values():
        ok = t.wait_until(lambda: n.lbctl_check()[0] == 0, 10, step=0.1)
        t.require(ok, "%s: lbctl check exits 0" % n.name, str(n.lbctl_check()))
    # keepalived: the example's configuration passes its own test first.
    rc, out = bed.ns_exec("lb1", [KEEPALIVED, "--config-test", "--use-file",
                                  nodes["lb1"].ka_conf, "--config-id", "lb1"],
                          check=False)
    t.require(rc == 0, "keepalived --config-test accepts the example's configuration",
              out.strip())
    t_start = time.monotonic()
    for n in nodes.values():
        n.start_keepalived()
    ok = t.wait_until(lambda: len(bed.vip_holders()) == 1 and
                      sorted(n.state() or "" for n in nodes.values()) == ["BACKUP", "MASTER"],
                      20, step=0.05)
    t.require(ok, "election: one node MASTER with the VIP, the other BACKUP",
              "" if ok else "holders %s, states %s" % (
                  bed.vip_holders(), {h: n.states() for h, n in nodes.items()}))
    master = nodes[bed.vip_holders()[0]]
    backup = nodes["lb2" if master.name == "lb1" else "lb1"]
    t.log("  election after %.1f s: %s MASTER (priority %d), %s BACKUP"
          % (time.monotonic() - t_start, master.name, PRIORITY[master.name], backup.name))
    t.check(master.state() == "MASTER", "%s says MASTER" % master.name)

    # The client, for the rest of the test.
    script = os.path.join(bed.dir, "client.py")
    with open(script, "w") as f:
        f.write(CLIENT_PY)
    stopf = os.path.join(bed.dir, "client.stop")
    client = bed.popen("cl", [sys.executable, script, VIP, str(PORT),
                              os.path.join(bed.dir, "client.jsonl"), stopf,
                              str(CLIENT_MAX_ATTEMPTS), str(CLIENT_MAX_SECONDS)],
                       "client.err")
    t_client = time.monotonic()
    ok = t.wait_until(lambda: sum(1 for a in attempts(bed) if a["ok"]) >= 5, 10, step=0.05)
    t.require(ok, "the client's first sessions through %s succeed" % master.name,
              "" if ok else "%s %s" % (attempts(bed)[:3], bed.file("client.err")[-500:]))
    base = phase_stats(bed, t_client, time.monotonic())
    dl = delivered(bed)
    via = sorted(set(p for a in attempts(bed) if a["ok"] for _, p in dl.get(a["i"], ())))
    t.check(base["failed"] == 0 and via == [master.addr],
            "before any failure: %d sessions, none failed, all through %s"
            % (base["attempted"], master.name), "failed %d, via %s" % (base["failed"], via))

    # A: the master's balancer dies.
    dead = master.lb
    a = scenario(bed, "A: balancer killed", master, backup,
                 lambda: os.kill(dead.proc.pid, signal.SIGKILL), 10)
    t.check(a["switch"] < GOAL_S, "[A] kill -> first message through %s under %.0f s (goal)"
            % (backup.name, GOAL_S), "%.2f s" % a["switch"])
    t.check(a["fault_at"] is not None, "[A] %s's keepalived went FAULT (track script)"
            % master.name)
    # Return A: the daemon is started again on the old master.
    ra = comeback(bed, "A: return", master, backup, master.start_lb, watch=4.0)

    # B: the current master (the old backup) loses its link.
    master, backup = backup, master
    b = scenario(bed, "B: link down", master, backup,
                 lambda: bed.ip(master.name, "link set eth0 down"), 12)
    limit = 3 * ADVERT_INT + (256 - PRIORITY[backup.name]) / 256.0 * ADVERT_INT + 1.5
    t.check(b["switch"] < limit, "[B] link down -> first message through %s under %.1f s "
            "(master-down interval + 1.5 s)" % (backup.name, limit), "%.2f s" % b["switch"])
    rb = comeback(bed, "B: return", master, backup,
                  lambda: bed.ip(master.name, "link set eth0 up"), watch=4.0)

    # The end: stop the client, compare its record with the sinks'.
    with open(stopf, "w"):
        pass
    t.wait_until(lambda: client.poll() is not None, 5)
    t.check(client.poll() == 0, "the client finished", bed.file("client.err")[-500:])
    at = attempts(bed)
    dl = delivered(bed)
    ok_ids = set(a["i"] for a in at if a["ok"])
    cut_at_dot = set(a["i"] for a in at if not a["ok"] and a["stage"] == "dot")
    missing = sorted(i for i in ok_ids if i not in dl)
    dup = sorted(i for i, v in dl.items() if len(v) > 1)
    extra = sorted(i for i in dl if i not in ok_ids)
    bad_extra = [i for i in extra if i not in cut_at_dot]
    t.log("  client: %d sessions attempted, %d accepted, %d failed; sinks: %d messages "
          "(%d not acknowledged to the client, cut after the final dot)"
          % (len(at), len(ok_ids), len(at) - len(ok_ids), sum(len(v) for v in dl.values()),
             len(extra)))
    t.check(not missing, "every message the client saw accepted is at a sink", str(missing[:5]))
    t.check(not dup, "no message was delivered twice", str(dup[:5]))
    t.check(not bad_extra, "the sinks hold no message the client gave up on before its "
            "final dot", str(bad_extra[:5]))
    t.check(len(ok_ids) + len(extra) == sum(len(v) for v in dl.values()),
            "delivered at the sinks (%d) = accepted sessions (%d) + cut after the dot (%d)"
            % (sum(len(v) for v in dl.values()), len(ok_ids), len(extra)))
    for n in nodes.values():
        for d in n.lbs:
            m = re.search(r"ERROR: (Address|Leak)Sanitizer.*|runtime error:.*", d.stderr())
            t.check(m is None, "%s: no sanitizer report" % d.name, m.group(0) if m else "")

    # Stop keepalived first (it removes the VIP), then the daemons.
    for n in nodes.values():
        rc = t.kill_proc(n.ka, signal.SIGTERM, 5.0)
        t.check(rc == 0, "%s: keepalived exits 0 on SIGTERM" % n.name, "status %s" % rc)
    t.check(bed.vip_holders() == [], "no node holds the VIP after keepalived stopped",
            str(bed.vip_holders()))
    for n in nodes.values():
        n.lb.stop()
    for n in nodes.values():
        if t.VERBOSE or t.failed():
            t.log("  --- keepalived %s (last lines) ---" % n.name)
            for ln in n.ka_log().splitlines()[-30:]:
                t.log("  | " + ln)
    for n in nodes.values():
        log = n.ka_log()
        bad = [ln for ln in log.splitlines()
               if re.search(r"SECURITY VIOLATION|Disabling track script|unsafe|"
                            r"[Ee]rror|WARNING", ln)]
        t.check(not bad, "%s: keepalived logged no error, warning or disabled script"
                % n.name, "; ".join(bad[:3]))
    with open(nodes["lb1"].ka_conf) as f:
        text = f.read()
    knobs = ", ".join("%s %s" % m for m in re.findall(
        r"^\s*(advert_int|interval|timeout|fall|rise)\s+(\S+)", text, re.M))
    t.log("  FIGURES (%s):" % knobs)
    for s in (a, b):
        t.log("    %-20s switch %.2f s (backup MASTER at %s s); attempted %d, failed %d, "
              "delivered %d" % (s["label"], s["switch"],
                                "%.2f" % s["master_at"] if s["master_at"] is not None else "?",
                                s["attempted"], s["failed"], s["delivered"]))
    for s, lab in ((ra, "A: return"), (rb, "B: return")):
        t.log("    %-20s nopreempt held; attempted %d, failed %d, delivered %d"
              % (lab, s["attempted"], s["failed"], s["delivered"]))


if __name__ == "__main__":
    why = skip_reason(PREFIX)
    if why:
        print("SKIP: %s" % why, flush=True)
        sys.exit(t.SKIP)
    t.log("random seed %d (set LB_SEED to repeat)" % SEED)
    sweep_stale()
    t.main([test_failover], timeout=100)
