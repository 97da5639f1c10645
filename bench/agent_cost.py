#!/usr/bin/env python3
"""What agent checks cost the balancer (issue: "agent checks on 50 servers
every second cost under 1 % of a core"): one load-balancer with N servers
(default 50), each with an agent check every INTERVAL (default 1s), against
a scripted agent that answers "ready 100%" at once; the daemon's CPU time
(utime + stime from /proc/PID/stat) over SECONDS of steady state, next to
the same configuration without agents, in the same run.

    /usr/bin/python3 bench/agent_cost.py [--lb-bin PATH] [--servers 50]
        [--interval 1s] [--seconds 60] [--haproxy]

With --haproxy, HAProxy 2.6 runs the same agent checks (agent-check
agent-inter) for a side-by-side figure.

Loopback only; every process it starts is stopped."""

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class PfAgent:
    """The project's lb-postfix-agent in -l mode over an empty queue
    directory: the agent a site runs on its filters.  It counts no
    connections: the daemon's agent_checks_total is not read here, so n
    is estimated from the interval."""

    def __init__(self, path, tmp):
        q = os.path.join(tmp, "queue")
        for d in ("incoming", "active", "deferred"):
            os.makedirs(os.path.join(q, d))
        self.port = free_port()
        self.proc = subprocess.Popen([path, "-l", "127.0.0.1:%d" % self.port, "-q", q, "-c", "0"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        self.n = 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)


class Agent(threading.Thread):
    """asyncio responder: one line per connection, then close."""

    def __init__(self, line=b"ready 100%\n"):
        super().__init__(daemon=True)
        self.line, self.port, self.n = line, free_port(), 0
        self.ready = threading.Event()

    async def handle(self, r, w):
        self.n += 1
        w.write(self.line)
        try:
            await w.drain()
        finally:
            w.close()

    async def main(self):
        srv = await asyncio.start_server(self.handle, "127.0.0.1", self.port)
        self.ready.set()
        async with srv:
            await srv.serve_forever()

    def run(self):
        asyncio.run(self.main())


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def cpu_share(p, seconds):
    """p's CPU time over seconds of wall time: a fraction of a core."""
    c0, t0 = cpu_seconds(p.pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu_seconds(p.pid), time.monotonic()
    return (c1 - c0) / (t1 - t0)


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def run_one(lb, n, interval, seconds, agent_port, tmp, tag):
    listen = free_port()
    servers = ",\n".join(
        '{ name = "s%d"; address = "127.0.0.1:%d"; }' % (i, 20000 + i) for i in range(n))
    agent = 'agent = { port = %d; interval = "%s"; timeout = "1s"; };' % (agent_port, interval) \
        if agent_port else ""
    conf = os.path.join(tmp, tag + ".conf")
    with open(conf, "w") as f:
        f.write('global = { daemon = false; control_socket = "%s/%s.sock"; health_log = "%s/%s.log";'
                ' state_file = ""; stats_listen = ""; workers = 1; log = { syslog = false; }; };\n'
                'frontends = ( { name = "f"; bind = "127.0.0.1:%d"; backend = "b"; } );\n'
                'backends = ( { name = "b"; %s servers = (\n%s\n); } );\n'
                % (tmp, tag, tmp, tag, listen, agent, servers))
    p = subprocess.Popen([lb, "-F", "-f", conf], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(tmp, tag + ".err"), "w"))
    try:
        time.sleep(3)  # past the first interval (checks spread over it)
        if p.poll() is not None:
            sys.exit("%s: load-balancer exited: see %s.err" % (tag, tag))
        return cpu_share(p, seconds)
    finally:
        stop(p)


def run_haproxy(n, interval, seconds, agent_port, tmp):
    """HAProxy 2.6 with the same servers and agent checks (no health
    checks: agent-check alone), for comparison."""
    listen = free_port()
    conf = os.path.join(tmp, "haproxy.cfg")
    servers = "\n".join("    server s%d 127.0.0.1:%d agent-check agent-port %d agent-inter %s"
                         % (i, 20000 + i, agent_port, interval) for i in range(n))
    with open(conf, "w") as f:
        f.write("global\n    nbthread 1\ndefaults\n    mode tcp\n    timeout connect 5s\n"
                "    timeout client 1m\n    timeout server 1m\n    timeout check 1s\n"
                "frontend f\n    bind 127.0.0.1:%d\n    default_backend b\n"
                "backend b\n%s\n" % (listen, servers))
    p = subprocess.Popen(["haproxy", "-db", "-f", conf], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(tmp, "haproxy.err"), "w"))
    try:
        time.sleep(3)
        if p.poll() is not None:
            sys.exit("haproxy exited: see haproxy.err")
        return cpu_share(p, seconds)
    finally:
        stop(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lb-bin", default=os.path.join(HERE, "..", "_build", "load-balancer"))
    ap.add_argument("--servers", type=int, default=50)
    ap.add_argument("--interval", default="1s")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--haproxy", action="store_true",
                    help="also HAProxy 2.6 with the same agent checks")
    ap.add_argument("--pfagent", metavar="PATH",
                    help="answer with this lb-postfix-agent (-l, an empty queue) "
                         "instead of the scripted asyncio agent")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentcost-") as tmp:
        if a.pfagent:
            agent = PfAgent(a.pfagent, tmp)
        else:
            agent = Agent()
            agent.start()
            agent.ready.wait(5)
        base = run_one(a.lb_bin, a.servers, a.interval, a.seconds, 0, tmp, "base")
        n0 = agent.n
        t0 = time.monotonic()
        with_agent = run_one(a.lb_bin, a.servers, a.interval, a.seconds, agent.port, tmp, "agent")
        checks = agent.n - n0
        wall = time.monotonic() - t0
        hap = run_haproxy(a.servers, a.interval, a.seconds, agent.port, tmp) \
            if a.haproxy else None
        if a.pfagent:
            agent.stop()
    print("servers %d, agent interval %s, %.0f s measured" % (a.servers, a.interval, a.seconds))
    print("agent: %s" % (a.pfagent or "scripted (asyncio)"))
    if not a.pfagent:
        print("agent checks answered: %d (%.1f/s over the run)" % (checks, checks / wall))
    print("daemon CPU without agents: %.3f %% of a core" % (100 * base))
    print("daemon CPU with agents:    %.3f %% of a core" % (100 * with_agent))
    print("agent checks cost:         %.3f %% of a core (criterion: under 1 %%)"
          % (100 * (with_agent - base)))
    if hap is not None:
        print("HAProxy 2.6, same agents:  %.3f %% of a core (ours/HAProxy %.2f)"
              % (100 * hap, (with_agent - base) / hap if hap > 0 else float("nan")))
    print("PASS" if with_agent - base < 0.01 else "FAIL")


if __name__ == "__main__":
    main()
