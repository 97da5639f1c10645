#!/usr/bin/python3
"""Benchmark: direct vs HAProxy vs load-balancer, in one run, on loopback.

    /usr/bin/python3 bench/bench.py [--rounds N] [--quick] [--scenarios LIST]
                                    [--paths LIST] [--lb-bin PATH] [...]

Three Postfix smtp-sink backends, Postfix smtp-source as load, and three
paths to them: `direct` (no balancer), `haproxy` (Debian's HAProxy with a
generated equivalent configuration) and `load-balancer` (this project's
daemon).  Scenarios: smtp, bulk, connrate, idle.  See bench/README.md.

Every process is started by this script, pinned with taskset and stopped
by PID (try/finally); every wait is bounded.  With --shared-cpus every
process may run on all CPUs and --lb-workers / --haproxy-threads can be
lists (multi-core scaling: paths load-balancer-wN, haproxy-tN).  Every run checks that the
sinks received exactly the messages that were sent, and the whole
benchmark fails (exit 1) otherwise."""

import argparse
import datetime
import fcntl
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"
HAPROXY = "/usr/sbin/haproxy"
IDLE_CLIENT = os.path.join(HERE, "idle_client.py")
LOCK_FILE = "/tmp/lb-bench.lock"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PATHS = ("direct", "haproxy", "load-balancer")
# the second build of the daemon (--lb-base-bin): same configuration, same
# rounds, its own path
BASE = "load-balancer-base"
ALL_PATHS = PATHS + (BASE,)


def path_kind(path):
    """direct, haproxy or load-balancer: the kind of a path, whose name may
    carry a thread count (haproxy-t2, load-balancer-w2; --shared-cpus with
    a list of --haproxy-threads / --lb-workers).  load-balancer-base (and
    load-balancer-base-wN) is of kind load-balancer: it runs the binary of
    --lb-base-bin with the same configuration."""
    for k in ("haproxy", "load-balancer"):
        if path == k or path.startswith(k + "-"):
            return k
    return path


def is_base(path):
    """A path that runs the base build (--lb-base-bin)."""
    return path == BASE or path.startswith(BASE + "-")
H = "127.0.0.1"

# Scenario parameters (full run; --quick divides them, see quick_scenarios()).
#   sessions: smtp-source -s;  messages: -m;  length: -l;  reuse: -d (send
#   every message of a session over the same connection).
SCENARIOS = {
    "smtp": dict(sessions=50, messages=20000, length=4096, reuse=True),
    "bulk": dict(sessions=10, messages=500, length=1048576, reuse=True),
    "connrate": dict(sessions=50, messages=20000, length=512, reuse=False),
    "idle": dict(conns=6000, hold=10.0),
}
SCENARIO_ORDER = ("smtp", "bulk", "connrate", "idle")


class BenchError(Exception):
    pass


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------
# processes


_procs = []   # every Popen we started, stopped in stop_all()


def spawn(cmd, out, err, stdin=subprocess.DEVNULL):
    p = subprocess.Popen(cmd, stdin=stdin, stdout=out, stderr=err, close_fds=True)
    _procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM, wait=5.0):
    """Stop one process we started, by PID; SIGKILL after `wait` seconds."""
    if p is None:
        return None
    if p.poll() is None:
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log("warning: pid %d does not die" % p.pid)
    if p in _procs:
        _procs.remove(p)
    return p.returncode


def stop_all():
    for p in list(_procs):
        stop(p, signal.SIGTERM, 3.0)


def wait_until(pred, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def listening_ports(proc_net="/proc/net"):
    """TCP ports in LISTEN state (from PROC_NET/tcp: /proc/PID/net for
    another network namespace)."""
    ports = set()
    try:
        with open(proc_net + "/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "0A":
                    ports.add(int(fields[1].split(":")[1], 16))
    except OSError:
        pass
    return ports


_next_port = [0]


def pick_ports(n, lo, hi):
    """n free loopback ports in [lo, hi) (below the ephemeral range), each
    tested by binding without SO_REUSEADDR; a new set for every run."""
    found = []
    tries = 0
    span = hi - lo
    while len(found) < n:
        tries += 1
        if tries > span:
            raise BenchError("no free port in %d..%d" % (lo, hi))
        port = lo + _next_port[0] % span
        _next_port[0] += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((H, port))
            found.append(port)
        except OSError:
            pass
        finally:
            s.close()
    return found


def time_wait_count(proc_net="/proc/net"):
    """TIME_WAIT sockets of a network namespace (PROC_NET/sockstat)."""
    try:
        with open(proc_net + "/sockstat") as f:
            m = re.search(r"^TCP:.* tw (\d+)", f.read(), re.M)
            return int(m.group(1)) if m else 0
    except OSError:
        return 0


_ns_counter = [0]


class Net:
    """Where one run happens.  By default a network namespace of its own
    (`ip netns add`, loopback up): every process of the run is started in
    it with `ip netns exec`, so runs cannot disturb each other or be
    disturbed by other loopback users, and the TIME_WAIT sockets a run
    leaves (40 000 after a connrate run through a balancer) disappear with
    the namespace instead of slowing the next runs down.  With --no-netns:
    the host's loopback, fresh ports below the ephemeral range for every
    run, and a wait (bounded) until the host's TIME_WAIT sockets have
    expired."""

    def __init__(self, a, wd):
        self.a = a
        self.ns = None
        self.sleeper = None
        self.proc_net = "/proc/net"
        if a.netns:
            _ns_counter[0] += 1
            self.ns = "lbbench-%d-%d" % (os.getpid(), _ns_counter[0])
            self.ports = [20000, 20001, 20002, 20003]
        else:
            self.ports = pick_ports(4, a.port_lo, a.port_hi)

    def prefix(self):
        return ["ip", "netns", "exec", self.ns] if self.ns else []

    def setup(self):
        if not self.ns:
            tw = time_wait_count()
            if tw > self.a.max_time_wait:
                ok = wait_until(lambda: time_wait_count() <= self.a.max_time_wait, 75, 1.0)
                log("  waited for TIME_WAIT sockets to expire: %d -> %d%s"
                    % (tw, time_wait_count(), "" if ok else " (still too many)"))
            return
        subprocess.run(["ip", "netns", "add", self.ns], check=True, timeout=20)
        subprocess.run(["ip", "-n", self.ns, "link", "set", "lo", "up"], check=True, timeout=20)
        # a process inside, to read the namespace's /proc/net through
        self.sleeper = spawn(self.prefix() + ["sleep", "86400"], subprocess.DEVNULL,
                             subprocess.DEVNULL)
        pid = self.sleeper.pid
        if not wait_until(lambda: self._comm(pid) == "sleep", 10, 0.01):
            raise BenchError("cannot start a process in network namespace %s" % self.ns)
        self.proc_net = "/proc/%d/net" % pid

    @staticmethod
    def _comm(pid):
        try:
            with open("/proc/%d/comm" % pid) as f:
                return f.read().strip()
        except OSError:
            return None

    def listening(self):
        return listening_ports(self.proc_net)

    def tcp_counters(self):
        """The non-zero Tcp and TcpExt counters of the run's namespace
        (they start at 0 with it): retransmissions, listen overflows,
        resets... for the JSON.  None on the host's loopback."""
        if not self.ns:
            return None
        out = {}
        for fn in ("snmp", "netstat"):
            try:
                with open("%s/%s" % (self.proc_net, fn)) as f:
                    lines = f.read().splitlines()
            except OSError:
                continue
            for i in range(0, len(lines) - 1, 2):
                names, vals = lines[i].split(), lines[i + 1].split()
                if names[0] not in ("Tcp:", "TcpExt:") or names[0] != vals[0]:
                    continue
                for n, v in zip(names[1:], vals[1:]):
                    if n in ("RtoAlgorithm", "RtoMin", "RtoMax", "MaxConn", "CurrEstab"):
                        continue
                    try:
                        if int(v):
                            out[n] = int(v)
                    except ValueError:
                        pass
        return out

    def cleanup(self):
        if self.sleeper is not None:
            stop(self.sleeper, signal.SIGKILL, 5.0)
        if self.ns:
            subprocess.run(["ip", "netns", "del", self.ns], timeout=30,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def netns_works():
    name = "lbbench-probe-%d" % os.getpid()
    try:
        r = subprocess.run(["ip", "netns", "add", name], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=20)
        if r.returncode != 0:
            return False
        subprocess.run(["ip", "netns", "del", name], timeout=20)
        return True
    except (OSError, subprocess.TimeoutExpired):
        return False


def cpu_snap():
    """(total, idle, task) jiffies of every CPU (/proc/stat); task =
    user + nice + system, the time charged to processes."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                v = [int(x) for x in line.split()[1:]]
                idle = v[3] + (v[4] if len(v) > 4 else 0)
                out[line.split()[0]] = (sum(v), idle, v[0] + v[1] + v[2])
    return out


def foreign_cpu(s0, s1, ours):
    """CPU seconds spent during the run by processes that are not ours
    (other users of the machine): the time the kernel charged to
    processes on all CPUs, minus what our processes used."""
    task = sum(s1[k][2] - s0[k][2] for k in s1 if k in s0) / CLK_TCK
    return max(0.0, task - ours)


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    me = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime + me.ru_utime + me.ru_stime


def cpu_busy_between(s0, s1):
    busy = {}
    for k in s1:
        tot = s1[k][0] - s0[k][0]
        idle = s1[k][1] - s0[k][1]
        busy[k] = (tot - idle) / tot if tot > 0 else 0.0
    return busy


def cpu_busy(sample=0.5):
    """Busy fraction (0..1) of every CPU over `sample` seconds."""
    s0 = cpu_snap()
    time.sleep(sample)
    return cpu_busy_between(s0, cpu_snap())


def wait_quiet(a, tag):
    """Wait (bounded by --quiet-wait) until no CPU is busier than
    --quiet-pct: another benchmark, a build or a test suite on the same
    two cores would skew the figures.  Returns the last busy figure (%)."""
    end = time.monotonic() + a.quiet_wait
    warned = False
    while True:
        b = cpu_busy()
        worst = max(b.values()) * 100 if b else 0.0
        if worst <= a.quiet_pct:
            return worst
        if time.monotonic() >= end:
            log("  WARNING %s: the machine stays busy (%.0f%% on a CPU): running anyway, "
                "the figures of this run are suspect" % (tag, worst))
            return worst
        if not warned:
            log("  %s: the machine is busy (%.0f%% on a CPU, not us): waiting up to %.0f s"
                % (tag, worst, a.quiet_wait))
            warned = True
        time.sleep(1.0)


# --------------------------------------------------------------------------
# /proc figures of the balancer


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status(pid, key):
    """A kB figure of /proc/PID/status (VmHWM, VmRSS), in kB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def ctx_switches(pid):
    """voluntary + involuntary context switches of the whole process (all
    its threads): about one per wake-up of an event loop."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:",
                                        "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpus_allowed(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    return "?"


# --------------------------------------------------------------------------
# smtp-sink backends


class Sink:
    def __init__(self, wd, port, load_cpus, prefix=()):
        self.port = port
        self.out = os.path.join(wd, "sink-%d.out" % port)
        self.err = os.path.join(wd, "sink-%d.err" % port)
        # -c: counters on stdout; -m: up to 8192 simultaneous sessions (the
        # default 256 would leave the idle scenario's sessions in the
        # backlog); -t 300: idle sessions are not dropped after 100 s.
        self.cmd = list(prefix) + ["taskset", "-c", load_cpus, SINK, "-c", "-u", "nobody", "-m", "8192",
                    "-t", "300", "%s:%d" % (H, port), "4096"]
        self.proc = None

    def start(self):
        self._o = open(self.out, "wb")
        self._e = open(self.err, "wb")
        self.proc = spawn(self.cmd, self._o, self._e)

    def counters(self):
        try:
            with open(self.out, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 300))
                data = f.read().decode(errors="replace")
        except OSError:
            data = ""
        last = re.findall(r"sess=(\d+) quit=(\d+) mesg=(\d+)", data)
        if not last:
            return {"sess": 0, "quit": 0, "mesg": 0}
        s, q, m = last[-1]
        return {"sess": int(s), "quit": int(q), "mesg": int(m)}

    def stop(self):
        stop(self.proc)
        for f in (getattr(self, "_o", None), getattr(self, "_e", None)):
            if f is not None:
                f.close()


def sinks_total(sinks, key):
    return sum(s.counters()[key] for s in sinks)


# --------------------------------------------------------------------------
# balancers


def haproxy_config(a, port, sink_ports, wd, threads=1):
    servers = "".join("    server s%d %s:%d check inter 2s\n" % (i + 1, H, p)
                      for i, p in enumerate(sink_ports))
    return """# generated by bench/bench.py: equivalent of the load-balancer configuration
global
    nbthread %(threads)d
    maxconn %(maxconn)d
    # no "log" line: HAProxy logs nothing, as load-balancer here
    # (log.syslog = false, log.sessions = false)

defaults
    mode tcp
    timeout connect 5s
    timeout client 1m
    timeout server 1m
    timeout queue 5s
    retries 3
%(splice)s
frontend bench
    bind %(h)s:%(port)d
    maxconn %(maxconn)d
    backlog 1024
    default_backend sinks

backend sinks
    balance roundrobin
%(servers)s""" % {"maxconn": a.maxconn, "h": H, "port": port, "servers": servers,
                  "threads": threads,
                  "splice": "    option splice-auto\n" if a.haproxy_splice else ""}


def lb_config(a, port, sink_ports, wd, workers=1, base=False):
    servers = ",\n".join('      { name = "s%d"; address = "%s:%d"; }' % (i + 1, H, p)
                         for i, p in enumerate(sink_ports))
    return """# generated by bench/bench.py: equivalent of the HAProxy configuration
global = {
  maxconn = %(maxconn)d;
  daemon = false;
  workers = %(workers)d;
  grace = "2s";
  log = { syslog = false; sessions = false; };
  control_socket = "%(wd)s/lb.sock";
  health_log = "%(wd)s/lb-health.log";
%(extra)s};

frontends = (
  { name = "bench"; bind = "%(h)s:%(port)d"; backend = "sinks";
    timeout_client = "1m"; backlog = 1024;
%(fe_extra)s  }
);

backends = (
  { name = "sinks"; balance = "roundrobin";
    timeout_connect = "5s"; timeout_server = "1m"; timeout_queue = "5s"; retries = 3;
    health_check = { type = "tcp"; interval = "2s"; };
%(be_extra)s    servers = (
%(servers)s
    );
  }
);
""" % {"maxconn": a.maxconn, "workers": workers, "wd": wd, "h": H, "port": port,
       "servers": servers, "extra": "".join("  %s\n" % x for x in a.lb_global),
       "fe_extra": "".join("    %s\n" % x for x in (a.lb_base_frontend if base else a.lb_frontend)),
       "be_extra": "".join("    %s\n" % x for x in (a.lb_base_backend if base else a.lb_backend))}


class Balancer:
    def __init__(self, a, path, wd, tag, port, sink_ports, net):
        self.path = path
        self.port = port
        kind = path_kind(path)
        self.conf = os.path.join(wd, "%s.%s" % (tag, "cfg" if kind == "haproxy" else "conf"))
        self.logf = os.path.join(wd, "%s.log" % tag)
        # the thread count of this path: HAProxy nbthread, load-balancer
        # global.workers
        self.threads = a.path_threads[path]
        if kind == "haproxy":
            text = haproxy_config(a, port, sink_ports, wd, self.threads)
            # -db: foreground, one process (no master-worker): the PID we
            # measure is the one relaying.
            cmd = [HAPROXY, "-db", "-f", self.conf]
        else:
            text = lb_config(a, port, sink_ports, wd, self.threads, base=is_base(path))
            # the same generated configuration for both builds; only the
            # binary differs
            cmd = [a.lb_base_run_bin if is_base(path) else a.lb_run_bin, "-F", "-f", self.conf]
        with open(self.conf, "w") as f:
            f.write(text)
        self.cmd = net.prefix() + ["taskset", "-c", a.balancer_cpus] + cmd
        self.net = net
        self.proc = None
        self.cpu_list = None

    def start(self, timeout=10.0):
        self._l = open(self.logf, "wb")
        self.proc = spawn(self.cmd, self._l, subprocess.STDOUT)
        ok = wait_until(lambda: self.proc.poll() is not None or
                        self.port in self.net.listening(), timeout)
        if self.proc.poll() is not None or not ok:
            raise BenchError("%s did not start (status %s): %s"
                             % (self.path, self.proc.poll(), self.log_text()[-2000:]))
        self.cpu_list = cpus_allowed(self.proc.pid)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def log_text(self):
        try:
            with open(self.logf, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        rc = stop(self.proc, signal.SIGTERM, 8.0)
        if getattr(self, "_l", None) is not None:
            self._l.close()
        return rc


# --------------------------------------------------------------------------
# one run


def split(n, k):
    """n split into k near-equal integer parts (largest first)."""
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def run_source(a, sc, targets, wd, tag, net):
    """smtp-source against the targets (one process per target, the
    sessions and messages split evenly); returns (wall seconds, [rc])."""
    k = len(targets)
    sess = split(sc["sessions"], k)
    msgs = split(sc["messages"], k)
    procs = []
    t0 = time.monotonic()
    for i, (host, port) in enumerate(targets):
        cmd = net.prefix() + ["taskset", "-c", a.load_cpus, SOURCE, "-M", "bench.example",
               "-s", str(sess[i]), "-m", str(msgs[i]), "-l", str(sc["length"])]
        if sc["reuse"]:
            cmd.append("-d")
        cmd.append("%s:%d" % (host, port))
        out = open(os.path.join(wd, "%s-source%d.out" % (tag, i)), "wb")
        procs.append((spawn(cmd, out, subprocess.STDOUT), out, cmd))
    end = t0 + a.run_timeout
    rcs = []
    for p, out, cmd in procs:
        try:
            rc = p.wait(timeout=max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            stop(p, signal.SIGTERM, 3.0)
            rc = "timeout"
        if p in _procs:
            _procs.remove(p)
        rcs.append(rc)
        out.close()
    wall = time.monotonic() - t0
    for i, rc in enumerate(rcs):
        if rc != 0:
            with open(os.path.join(wd, "%s-source%d.out" % (tag, i)), "rb") as f:
                txt = f.read().decode(errors="replace")[-1500:]
            raise BenchError("%s: smtp-source %s exited %s: %s"
                             % (tag, " ".join(procs[i][2]), rc, txt))
    return wall, rcs


def run_idle(a, sc, targets, wd, tag, bal, net):
    """Open sc['conns'] idle sessions through the path, hold them
    sc['hold'] seconds, sample the balancer, close them."""
    outp = os.path.join(wd, "%s-idle.out" % tag)
    out = open(outp, "wb")
    cmd = net.prefix() + ["taskset", "-c", a.load_cpus, sys.executable, IDLE_CLIENT,
           "--count", str(sc["conns"]), "--timeout", str(a.run_timeout)] + \
        ["%s:%d" % t for t in targets]
    t0 = time.monotonic()
    p = spawn(cmd, out, subprocess.STDOUT, stdin=subprocess.PIPE)
    res = {}
    try:
        def ready():
            with open(outp, "rb") as f:
                return b"READY" in f.read()
        if not wait_until(lambda: p.poll() is not None or ready(), a.run_timeout + 5, 0.05):
            raise BenchError("%s: idle client did not get its sessions in time" % tag)
        with open(outp, "rb") as f:
            txt = f.read().decode(errors="replace")
        m = re.search(r"READY ok=(\d+) failed=(\d+) setup_s=([\d.]+)", txt)
        if not m:
            raise BenchError("%s: idle client failed: %s" % (tag, txt[-1000:]))
        res["conns_ok"] = int(m.group(1))
        res["conns_failed"] = int(m.group(2))
        res["setup_s"] = float(m.group(3))
        if res["conns_ok"] != sc["conns"]:
            raise BenchError("%s: only %d of %d idle sessions got a greeting"
                             % (tag, res["conns_ok"], sc["conns"]))
        if bal is not None:
            cpu_h0 = cpu_seconds(bal.pid)
        time.sleep(sc["hold"])
        if bal is not None:
            res["cpu_hold_s"] = cpu_seconds(bal.pid) - cpu_h0
            res["rss_held_kb"] = proc_status(bal.pid, "VmRSS")
        p.stdin.close()
        p.stdin = None
        rc = p.wait(timeout=60)
        _procs.remove(p)
        if rc != 0:
            raise BenchError("%s: idle client exited %s" % (tag, rc))
    finally:
        if p.poll() is None:
            stop(p)
        out.close()
    res["wall_s"] = time.monotonic() - t0
    return res


def one_run(a, scen, path, rnd, wd, perf=False):
    sc = a.scen[scen]
    tag = "r%d-%s-%s" % (rnd, scen, path) + ("-perf" if perf else "")
    r = {"round": rnd, "scenario": scen, "path": path}
    r["busy_pct_before"] = wait_quiet(a, tag)
    net = Net(a, wd)
    ports = net.ports
    sinks = [Sink(wd, p, a.load_cpus, net.prefix()) for p in ports[1:]]
    bal = None
    perfp = None
    try:
        net.setup()
        for s in sinks:
            s.start()
        if not wait_until(lambda: all(s.port in net.listening() or s.proc.poll() is not None
                                      for s in sinks), 10):
            raise BenchError("%s: smtp-sink did not start" % tag)
        for s in sinks:
            if s.proc.poll() is not None:
                raise BenchError("%s: smtp-sink exited: %s" % (tag, open(s.err).read()))
        if path == "direct":
            targets = [(H, s.port) for s in sinks]
        else:
            bal = Balancer(a, path, wd, tag, ports[0], [s.port for s in sinks], net)
            bal.start()
            r["balancer_cpus"] = bal.cpu_list
            r["threads"] = bal.threads
            time.sleep(a.settle)   # first health checks
            targets = [(H, ports[0])]
        if perf and bal is not None:
            perf_data = os.path.join(wd, "%s.perf.data" % tag)
            perfp = spawn(["perf", "record", "-g", "-o", perf_data, "-p", str(bal.pid)],
                          subprocess.DEVNULL, open(os.path.join(wd, "%s.perf.log" % tag), "wb"))
            time.sleep(1.0)
        mesg0 = sinks_total(sinks, "mesg")
        sess0 = sinks_total(sinks, "sess")
        cpu0 = cpu_seconds(bal.pid) if bal else None
        ctx0 = ctx_switches(bal.pid) if bal else None
        snap0 = cpu_snap()
        # our own CPU: the balancer, the sinks, and the reaped children
        # (smtp-source, idle client) plus this script
        ours0 = (cpu0 or 0) + sum(cpu_seconds(s.proc.pid) for s in sinks) + children_cpu()
        if scen == "idle":
            res = run_idle(a, sc, targets, wd, tag, bal, net)
            r.update(res)
            r["wall_s"] = res["wall_s"]
            want = sc["conns"]
            # every idle session must have reached a sink and ended there
            ok = wait_until(lambda: sinks_total(sinks, "sess") - sess0 >= want, 20, 0.1)
            r["sink_sessions"] = sinks_total(sinks, "sess") - sess0
            if not ok:
                raise BenchError("%s: the sinks saw %d of %d idle sessions"
                                 % (tag, r["sink_sessions"], want))
            r["sent"] = r["delivered"] = 0
        else:
            wall, _ = run_source(a, sc, targets, wd, tag, net)
            sent = sc["messages"]
            ok = wait_until(lambda: sinks_total(sinks, "mesg") - mesg0 >= sent, 10, 0.02)
            delivered = sinks_total(sinks, "mesg") - mesg0
            r.update({"wall_s": wall, "sent": sent, "delivered": delivered,
                      "length": sc["length"],
                      "msgs_per_s": delivered / wall,
                      "mb_per_s": delivered * sc["length"] / wall / 1e6})
            if not ok or delivered != sent:
                raise BenchError("%s: DELIVERED %d != SENT %d" % (tag, delivered, sent))
        snap1 = cpu_snap()
        busy = cpu_busy_between(snap0, snap1)
        ours1 = (cpu_seconds(bal.pid) if bal and bal.alive() else (cpu0 or 0)) + \
            sum(cpu_seconds(s.proc.pid) for s in sinks) + children_cpu()
        r["foreign_cpu_s"] = foreign_cpu(snap0, snap1, ours1 - ours0)
        r["foreign_pct"] = r["foreign_cpu_s"] / r["wall_s"] * 100 if r.get("wall_s") else 0.0
        # how busy each core was during the load (whole core, everyone)
        if a.shared_cpus:
            # no core belongs to anyone: every core, and their sum (out of
            # ncpu x 100 %)
            r["cpu_busy_pct"] = {k: v * 100 for k, v in
                                 sorted(busy.items(), key=lambda kv: int(kv[0][3:]))}
            r["all_cpus_busy_pct"] = sum(busy.values()) * 100
        else:
            r["load_cpu_busy_pct"] = busy.get("cpu%d" % a.load_cpu, 0) * 100
            r["balancer_cpu_busy_pct"] = busy.get("cpu%d" % a.balancer_cpu, 0) * 100
        if bal is not None:
            if not bal.alive():
                raise BenchError("%s: %s died during the run: %s"
                                 % (tag, path, bal.log_text()[-2000:]))
            cpu = cpu_seconds(bal.pid) - cpu0
            r["cpu_s"] = cpu
            if a.shared_cpus and r.get("wall_s"):
                # the balancer's CPU during the load in % of one CPU: above
                # 100 % only when its threads ran on several cores at once
                r["balancer_cpu_pct"] = cpu / r["wall_s"] * 100
            r["ctx_switches"] = ctx_switches(bal.pid) - ctx0
            if r.get("delivered"):
                r["ctx_per_msg"] = r["ctx_switches"] / r["delivered"]
            r["rss_peak_kb"] = proc_status(bal.pid, "VmHWM")
            # its threads (to see that nbthread / workers took effect)
            r["balancer_threads_seen"] = len(os.listdir("/proc/%d/task" % bal.pid))
            if scen in ("smtp", "connrate"):
                r["cpu_per_10k"] = cpu / r["delivered"] * 10000
            elif scen == "bulk":
                r["cpu_per_gb"] = cpu / (r["delivered"] * sc["length"] / 1e9)
        if perfp is not None:
            stop(perfp, signal.SIGINT, 30.0)
            r["perf_data"] = perf_data
        r["tcp"] = net.tcp_counters()
    finally:
        if perfp is not None:
            stop(perfp, signal.SIGINT, 30.0)
        if bal is not None:
            bal.stop()
        for s in sinks:
            s.stop()
        net.cleanup()
    return r


# --------------------------------------------------------------------------
# report


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


METRICS = ("msgs_per_s", "mb_per_s", "wall_s", "cpu_s", "cpu_per_10k", "cpu_per_gb",
           "rss_peak_kb", "rss_held_kb", "setup_s", "cpu_hold_s", "delivered", "sent",
           "load_cpu_busy_pct", "balancer_cpu_busy_pct", "ctx_per_msg",
           "balancer_cpu_pct", "all_cpus_busy_pct")


def medians(runs):
    med = {}
    for r in runs:
        med.setdefault(r["scenario"], {}).setdefault(r["path"], [])
    for scen, by in med.items():
        for path in list(by):
            rs = [r for r in runs if r["scenario"] == scen and r["path"] == path]
            by[path] = {m: median([r.get(m) for r in rs]) for m in METRICS}
            by[path]["runs"] = len(rs)
    return med


def ratio(x, y):
    if x is None or y is None or y == 0:
        return None
    return x / y


def ratios(med):
    """Ratios of the medians: lb/haproxy, lb/direct and, with the base
    build (--lb-base-bin), lb/base = load-balancer / load-balancer-base."""
    out = {}
    for scen, by in med.items():
        lb, hap, d = by.get("load-balancer"), by.get("haproxy"), by.get("direct")
        base = by.get(BASE)
        if not lb:
            continue
        o = {}
        for m in ("msgs_per_s", "mb_per_s", "cpu_per_10k", "cpu_per_gb", "cpu_s",
                  "rss_peak_kb", "rss_held_kb", "setup_s", "ctx_per_msg"):
            if lb.get(m) is None:
                continue
            if hap and m != "ctx_per_msg":
                o.setdefault("lb/haproxy", {})[m] = ratio(lb[m], hap.get(m))
            if d and m in ("msgs_per_s", "mb_per_s", "setup_s"):
                o.setdefault("lb/direct", {})[m] = ratio(lb[m], d.get(m))
            if base:
                o.setdefault("lb/base", {})[m] = ratio(lb[m], base.get(m))
        out[scen] = o
    return out


def round_ratios(runs, num="load-balancer", den="haproxy"):
    """Per round, NUM / DEN of the same round (load-balancer / HAProxy by
    default; load-balancer / load-balancer-base for two builds): msgs/s,
    MB/s and CPU per unit.  Their spread is the machine's run-to-run noise,
    which the ratio of the medians hides."""
    out = {}
    for scen in SCENARIO_ORDER:
        unit = "cpu_per_gb" if scen == "bulk" else "cpu_per_10k"
        rounds = sorted({r["round"] for r in runs if r["scenario"] == scen})
        for rnd in rounds:
            by = {r["path"]: r for r in runs if r["scenario"] == scen and r["round"] == rnd}
            x, y = by.get(num), by.get(den)
            if not x or not y:
                continue
            for m in ("msgs_per_s", "mb_per_s", unit):
                v = ratio(x.get(m), y.get(m))
                if v is not None:
                    out.setdefault(scen, {}).setdefault(m, []).append(v)
    return out


BASE_CPU_FACTOR = 1.05   # "CPU per message within 5 % of the base or better"


def base_acceptance(med):
    """Two builds (--lb-base-bin), on the medians: CPU per message of the
    new build (load-balancer) within 5 % of the base (load-balancer-base)
    or better, in smtp and connrate.  Rows (what, PASS/FAIL/n/a, ratio)."""
    rows = []
    for scen in ("smtp", "connrate"):
        what = "%s: load-balancer CPU/10k <= %.2f x load-balancer-base" % (scen, BASE_CPU_FACTOR)
        if scen not in med:
            continue
        x = med[scen].get("load-balancer", {}).get("cpu_per_10k")
        y = med[scen].get(BASE, {}).get("cpu_per_10k")
        if x is None or not y:
            rows.append((what, "n/a", None))
        else:
            rows.append((what, "PASS" if x <= BASE_CPU_FACTOR * y else "FAIL", x / y))
    return rows


def base_verdict(rows):
    """PASS when every row passes and both smtp and connrate were judged,
    FAIL when one fails, otherwise n/a (a scenario was not run)."""
    res = [r for _, r, _ in rows]
    if "FAIL" in res:
        return "FAIL"
    if len(res) == 2 and all(r == "PASS" for r in res):
        return "PASS"
    return "n/a"


def acceptance(med):
    """The issue's acceptance criteria, on the medians."""
    rows = []

    def g(scen, path, m):
        return med.get(scen, {}).get(path, {}).get(m)

    def add(what, lhs, rhs, factor, op):
        if lhs is None or rhs is None:
            rows.append((what, "n/a", None))
            return
        ok = lhs >= factor * rhs if op == ">=" else lhs <= factor * rhs
        rows.append((what, "PASS" if ok else "FAIL", lhs / rhs if rhs else None))

    for scen in ("smtp", "connrate"):
        add("%s: load-balancer msgs/s >= HAProxy" % scen,
            g(scen, "load-balancer", "msgs_per_s"), g(scen, "haproxy", "msgs_per_s"), 1.0, ">=")
        add("%s: load-balancer CPU/10k <= 0.8 x HAProxy" % scen,
            g(scen, "load-balancer", "cpu_per_10k"), g(scen, "haproxy", "cpu_per_10k"), 0.8, "<=")
    add("bulk: load-balancer MB/s >= 0.95 x direct",
        g("bulk", "load-balancer", "mb_per_s"), g("bulk", "direct", "mb_per_s"), 0.95, ">=")
    add("bulk: load-balancer CPU/GB <= HAProxy",
        g("bulk", "load-balancer", "cpu_per_gb"), g("bulk", "haproxy", "cpu_per_gb"), 1.0, "<=")
    add("idle: load-balancer RSS (held) <= HAProxy",
        g("idle", "load-balancer", "rss_held_kb"), g("idle", "haproxy", "rss_held_kb"), 1.0, "<=")
    return rows


def fmt(v, nd=2):
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return "%.0f" % v
        return ("%%.%df" % nd) % v
    return str(v)


def mib(kb):
    return None if kb is None else kb / 1024.0


def md_header(meta):
    """The first lines of a report: date, machine, versions."""
    L = ["Date: %s; rounds: %d%s; kernel %s; CPU %s (%d cores)"
         % (meta["date"], meta["rounds"], " (QUICK smoke run)" if meta["quick"] else "",
            meta["kernel"], meta["cpu_model"], meta["ncpu"]),
         "",
         "Versions: %s; %s (binary `%s` built %s, sha256 %s..., tree %s); "
         "Postfix smtp-source/smtp-sink %s"
         % (meta["haproxy_version"], meta["lb_version"], meta["lb_bin"],
            meta["lb_bin_mtime"], meta["lb_bin_sha256"], meta["lb_git"],
            meta["postfix_version"]),
         ""]
    if meta.get("lb_base_bin"):
        L += ["Base build (path `%s`, --lb-base-bin): %s (binary `%s` built %s, sha256 %s..., "
              "tree %s), run with the same generated configuration as `load-balancer`."
              % (BASE, meta["lb_base_version"], meta["lb_base_bin"], meta["lb_base_bin_mtime"],
                 meta["lb_base_bin_sha256"], meta["lb_base_git"]),
              ""]
    return L


def md_base(meta, rat, spread, rows):
    """The section load-balancer / load-balancer-base (two builds, same
    configuration, same rounds): ratios of the medians, per-round ratios,
    and whether CPU per message stayed within 5 % of the base."""
    L = ["### load-balancer / load-balancer-base", ""]
    L.append("Two builds of the daemon with the same generated configuration, alternating "
             "in the same rounds: `load-balancer` = `%s` (sha256 %s...), `load-balancer-base` "
             "= `%s` (sha256 %s...). Ratios new / base of the medians (msgs/s, MB/s: above 1 "
             "is faster; CPU/unit, ctx/msg, RSS: below 1 is leaner):"
             % (meta["lb_bin"], meta["lb_bin_sha256"], meta["lb_base_bin"],
                meta["lb_base_bin_sha256"]))
    L.append("")
    L.append("| scenario | lb/base msgs/s | lb/base MB/s | lb/base CPU/unit | lb/base ctx/msg "
             "| lb/base peak RSS | lb/base held RSS | lb/base idle setup |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for scen in SCENARIO_ORDER:
        b = rat.get(scen, {}).get("lb/base")
        if not b:
            continue
        unit = b.get("cpu_per_gb") if scen == "bulk" else b.get("cpu_per_10k")
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            scen,
            fmt(b.get("msgs_per_s"), 3) if scen != "idle" else "-",
            fmt(b.get("mb_per_s"), 3) if scen != "idle" else "-",
            fmt(unit, 3), fmt(b.get("ctx_per_msg"), 3),
            fmt(b.get("rss_peak_kb"), 3), fmt(b.get("rss_held_kb"), 3),
            fmt(b.get("setup_s"), 3) if scen == "idle" else "-"))
    L.append("")
    if spread:
        L.append("Per-round ratios (each round's load-balancer run against the same round's "
                 "load-balancer-base run, in round order, then their median; their spread is "
                 "this machine's run-to-run noise):")
        L.append("")
        L.append("| scenario | lb/base msgs/s per round | median | lb/base CPU/unit per round "
                 "| median |")
        L.append("|---|---|---:|---|---:|")
        for scen in SCENARIO_ORDER:
            sp = spread.get(scen)
            if not sp:
                continue
            unit = "cpu_per_gb" if scen == "bulk" else "cpu_per_10k"
            L.append("| %s | %s | %s | %s | %s |" % (
                scen,
                " ".join(fmt(v, 3) for v in sp.get("msgs_per_s", [])) or "-",
                fmt(median(sp.get("msgs_per_s", [])), 3),
                " ".join(fmt(v, 3) for v in sp.get(unit, [])) or "-",
                fmt(median(sp.get(unit, [])), 3)))
        L.append("")
    if rows:
        L.append("| criterion (on the medians) | result | ratio |")
        L.append("|---|---|---:|")
        for what, res, rv in rows:
            L.append("| %s | %s | %s |" % (what, res, fmt(rv, 3)))
        L.append("")
    L.append("CPU per message within 5 %% of the base or better (smtp and connrate, "
             "lb/base CPU/10k <= %.2f): **%s**." % (BASE_CPU_FACTOR, base_verdict(rows)))
    L.append("")
    return L


def md_isolation(meta, of_cpu):
    """The isolation sentence; of_cpu qualifies "of a CPU"."""
    return ("Isolation: %s; each run starts once no CPU is above %.0f%% busy, and a run "
            "during which other processes took more than %.0f%% of a CPU%s is done again "
            "(%d runs were redone)%s."
            % ("one network namespace per run (own loopback, its TIME_WAIT sockets "
               "dropped with it)" if meta["netns"] else "host loopback, waiting for "
               "TIME_WAIT sockets to expire between runs", meta["quiet_pct"],
               meta["disturb_pct"], of_cpu, meta["retried_runs"],
               "" if not meta["disturbed_runs"] else
               "; still disturbed after the retries, kept: %s"
               % ", ".join(meta["disturbed_runs"])))


def md_unit(scen, m):
    """CPU per unit of a median: per GB (bulk) or per 10 000 messages."""
    unit = m.get("cpu_per_10k") if scen != "bulk" else m.get("cpu_per_gb")
    return "-" if unit is None else fmt(unit, 3) + (" /GB" if scen == "bulk" else " /10k")


def markdown(meta, med, rat, acc, spread=None, base=None):
    """The pinned report.  base: (per-round lb/base ratios, base criteria
    rows) when the run had the path load-balancer-base."""
    L = md_header(meta)
    # the HAProxy / direct comparison only when one of them ran (a run of
    # --paths load-balancer,load-balancer-base compares the two builds only)
    ref = any(p in meta["paths"] for p in ("haproxy", "direct"))
    L.append("Pinning: balancer (haproxy / load-balancer) on CPU %d (taskset -c %d, seen as "
             "Cpus_allowed_list %s); smtp-source, smtp-sink x3, idle client and this script "
             "on CPU %d. Splice in HAProxy: %s. load-balancer workers = %d."
             % (meta["balancer_cpu"], meta["balancer_cpu"], meta["balancer_cpus_seen"],
                meta["load_cpu"], "on (option splice-auto)" if meta["haproxy_splice"] else "off",
                meta["lb_workers"])
             + ("" if "haproxy_threads" not in meta else
                " HAProxy nbthread = %d." % meta["haproxy_threads"]))
    L.append("")
    L.append(md_isolation(meta, ""))
    L.append("")
    L.append("Medians of %d alternating rounds. msgs/s and MB/s (10^6 bytes of message "
             "payload per second) are end-to-end; CPU s is the balancer's utime+stime "
             "during the run; CPU/unit is CPU s per 10 000 messages (smtp, connrate: in "
             "connrate one message = one session) or per GB of payload (bulk); RSS is "
             "VmHWM (peak) and, for idle, VmRSS while the sessions are held."
             % meta["rounds"])
    L.append("")
    L.append("| scenario | path | msgs/s | MB/s | wall s | CPU s | CPU/unit | peak RSS MiB "
             "| held RSS MiB | idle setup s | delivered/sent |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for scen in SCENARIO_ORDER:
        if scen not in med:
            continue
        for path in ALL_PATHS:
            m = med[scen].get(path)
            if not m:
                continue
            unit_s = md_unit(scen, m)
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                scen, path,
                fmt(m["msgs_per_s"], 1) if scen != "idle" else "-",
                fmt(m["mb_per_s"], 2) if scen != "idle" else "-",
                fmt(m["wall_s"], 2), fmt(m["cpu_s"], 2), unit_s,
                fmt(mib(m["rss_peak_kb"]), 1), fmt(mib(m["rss_held_kb"]), 1),
                fmt(m["setup_s"], 2) if scen == "idle" else "-",
                ("%d/%d" % (m["delivered"], m["sent"])) if scen != "idle" else
                "%d sessions" % meta["scenarios"]["idle"]["conns"]))
    L.append("")
    if ref:
        L += md_haproxy(meta, rat, acc, spread)
    if base is not None:
        L += md_base(meta, rat, base[0], base[1])
    if not ref:
        L.append("Every run: messages delivered = messages sent: PASS.")
        L.append("")
    L.append("Full run time: %s s. Files: `results-%s.md`, `results-%s.json` (every run's "
             "figures, the namespace's TCP counters, context switches per message and the "
             "perf top functions are in the JSON)."
             % (fmt(meta["elapsed_s"], 0), meta["stamp"], meta["stamp"]))
    return "\n".join(L) + "\n"


def md_haproxy(meta, rat, acc, spread):
    """The ratios against HAProxy and direct, and issue 6's criteria."""
    L = []
    L.append("Ratios (of the medians):")
    L.append("")
    L.append("| scenario | lb/haproxy msgs/s | lb/haproxy MB/s | lb/haproxy CPU/unit "
             "| lb/haproxy peak RSS | lb/haproxy held RSS | lb/direct msgs/s | lb/direct MB/s "
             "| lb/direct idle setup |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for scen in SCENARIO_ORDER:
        if scen not in rat:
            continue
        h = rat[scen].get("lb/haproxy", {})
        d = rat[scen].get("lb/direct", {})
        unit = h.get("cpu_per_gb") if scen == "bulk" else h.get("cpu_per_10k")
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            scen,
            fmt(h.get("msgs_per_s")) if scen != "idle" else "-",
            fmt(h.get("mb_per_s")) if scen != "idle" else "-",
            fmt(unit),
            fmt(h.get("rss_peak_kb")), fmt(h.get("rss_held_kb")),
            fmt(d.get("msgs_per_s")) if scen != "idle" else "-",
            fmt(d.get("mb_per_s")) if scen != "idle" else "-",
            fmt(d.get("setup_s")) if scen == "idle" else "-"))
    L.append("")
    if spread:
        L.append("Per-round ratios (each round's load-balancer run against the same round's "
                 "HAProxy run, in round order; their spread is this machine's run-to-run "
                 "noise, which the ratio of the medians above smooths):")
        L.append("")
        L.append("| scenario | lb/haproxy msgs/s per round | lb/haproxy CPU/unit per round |")
        L.append("|---|---|---|")
        for scen in SCENARIO_ORDER:
            sp = spread.get(scen)
            if not sp:
                continue
            unit = "cpu_per_gb" if scen == "bulk" else "cpu_per_10k"
            L.append("| %s | %s | %s |" % (
                scen,
                " ".join(fmt(v) for v in sp.get("msgs_per_s", [])) or "-",
                " ".join(fmt(v) for v in sp.get(unit, [])) or "-"))
        L.append("")
    L.append("Acceptance criteria of issue 6 (on these medians):")
    L.append("")
    L.append("| criterion | result | ratio |")
    L.append("|---|---|---:|")
    for what, res, rv in acc:
        L.append("| %s | %s | %s |" % (what, res, fmt(rv)))
    L.append("| every run: messages delivered = messages sent | PASS | - |")
    L.append("")
    return L


# --------------------------------------------------------------------------
# report of --shared-cpus (multi-core scaling)


def scaling_pairs(a):
    """The comparisons of the scaling report: (label, numerator path,
    denominator path).  Every load-balancer path against the HAProxy path
    with the same thread count (or against the one HAProxy path when both
    have a single value), every load-balancer-wN against load-balancer-w1,
    and, for reference, every haproxy-tN against haproxy-t1.  With the base
    build (--lb-base-bin): every load-balancer path against the base path
    with the same worker count, and load-balancer-base-wN against
    load-balancer-base-w1."""
    lbs = [p for p in a.path_list if path_kind(p) == "load-balancer" and not is_base(p)]
    bases = [p for p in a.path_list if is_base(p)]
    haps = [p for p in a.path_list if path_kind(p) == "haproxy"]
    n = a.path_threads
    pairs = []
    for lb in lbs:
        same = [h for h in haps if n[h] == n[lb]]
        if same:
            pairs.append(("%s / %s" % (lb, same[0]), lb, same[0]))
        elif len(lbs) == 1 and len(haps) == 1:
            pairs.append(("%s (workers %d) / %s (nbthread %d)"
                          % (lb, n[lb], haps[0], n[haps[0]]), lb, haps[0]))
    for lb in lbs:
        for b in bases:
            if n[b] == n[lb]:
                pairs.append(("%s / %s" % (lb, b), lb, b))
    for group in (lbs, bases, haps):
        one = [p for p in group if n[p] == 1]
        if one:
            for p in group:
                if p != one[0]:
                    pairs.append(("%s / %s" % (p, one[0]), p, one[0]))
    return pairs


def scaling_ratios(a, med):
    out = {}
    for scen, by in med.items():
        rows = []
        for label, num, den in scaling_pairs(a):
            x, y = by.get(num), by.get(den)
            if not x or not y:
                continue
            rows.append({"comparison": label, "num": num, "den": den,
                         "ratios": {m: ratio(x.get(m), y.get(m))
                                    for m in ("msgs_per_s", "mb_per_s", "cpu_per_10k",
                                              "cpu_per_gb", "ctx_per_msg", "rss_peak_kb",
                                              "rss_held_kb", "setup_s")}})
        out[scen] = rows
    return out


def markdown_shared(meta, med, srat, path_list, base=None):
    L = md_header(meta)
    L.append("CPUs shared (--shared-cpus): no pinning to separate cores; the balancer, "
             "smtp-source, smtp-sink x3, the idle client and this script may all run on "
             "every CPU (taskset -c %s; the balancer seen as Cpus_allowed_list %s). "
             "load-balancer global.workers: %s; HAProxy nbthread: %s. Splice in HAProxy: %s."
             % (meta["cpus_spec"], meta["balancer_cpus_seen"],
                ", ".join(str(x) for x in meta["lb_workers_list"]),
                ", ".join(str(x) for x in meta["haproxy_threads_list"]),
                "on (option splice-auto)" if meta["haproxy_splice"] else "off"))
    L.append("")
    L.append(md_isolation(meta, " (summed over all CPUs)"))
    L.append("")
    L.append("Scaling: medians of %d rounds (path order rotated every round). threads = "
             "load-balancer global.workers or HAProxy nbthread. CPU s is the balancer's "
             "utime+stime (all threads) during the load, CPU/unit that per 10 000 messages "
             "(smtp, connrate) or per GB of payload (bulk); bal CPU %% = CPU s / wall "
             "(100 = one core; above 100 only when its threads ran on several cores at "
             "once); ctx/msg = the balancer's context switches (voluntary + involuntary, "
             "all threads) per message; all CPUs %% = how busy all %d CPUs were together "
             "during the load, everyone (at most %d); RSS is VmHWM (peak) and, for idle, "
             "VmRSS while the sessions are held."
             % (meta["rounds"], meta["ncpu"], meta["ncpu"] * 100))
    L.append("")
    L.append("| scenario | path | threads | msgs/s | MB/s | wall s | CPU s | CPU/unit "
             "| bal CPU % | ctx/msg | peak RSS MiB | held RSS MiB | idle setup s "
             "| all CPUs % | delivered/sent |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for scen in SCENARIO_ORDER:
        if scen not in med:
            continue
        for path in path_list:
            m = med[scen].get(path)
            if not m:
                continue
            unit_s = md_unit(scen, m)
            thr = meta["path_threads"].get(path)
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |"
                     % (scen, path, "-" if thr is None else thr,
                        fmt(m["msgs_per_s"], 1) if scen != "idle" else "-",
                        fmt(m["mb_per_s"], 2) if scen != "idle" else "-",
                        fmt(m["wall_s"], 2), fmt(m["cpu_s"], 2), unit_s,
                        fmt(m.get("balancer_cpu_pct"), 0), fmt(m.get("ctx_per_msg"), 2),
                        fmt(mib(m["rss_peak_kb"]), 1), fmt(mib(m["rss_held_kb"]), 1),
                        fmt(m["setup_s"], 2) if scen == "idle" else "-",
                        fmt(m.get("all_cpus_busy_pct"), 0),
                        ("%d/%d" % (m["delivered"], m["sent"])) if scen != "idle" else
                        "%d sessions" % meta["scenarios"]["idle"]["conns"]))
    L.append("")
    L.append("Scaling ratios (of the medians; msgs/s and MB/s: higher is faster, the rest: "
             "lower is leaner):")
    L.append("")
    L.append("| scenario | comparison | msgs/s | MB/s | CPU/unit | ctx/msg | peak RSS "
             "| held RSS | idle setup |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for scen in SCENARIO_ORDER:
        for row in srat.get(scen, []):
            q = row["ratios"]
            unit = q.get("cpu_per_gb") if scen == "bulk" else q.get("cpu_per_10k")
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                scen, row["comparison"],
                fmt(q.get("msgs_per_s")) if scen != "idle" else "-",
                fmt(q.get("mb_per_s")) if scen != "idle" else "-",
                fmt(unit), fmt(q.get("ctx_per_msg")),
                fmt(q.get("rss_peak_kb")), fmt(q.get("rss_held_kb")),
                fmt(q.get("setup_s")) if scen == "idle" else "-"))
    L.append("")
    if base is not None:
        L += md_base(meta, base[2], base[0], base[1])
    L.append("(The acceptance criteria of issue 6 are judged in the default pinned mode "
             "only; they are not evaluated here.)")
    L.append("")
    L.append("Full run time: %s s. Files: `results-%s.md`, `results-%s.json` (every run's "
             "figures, the busy share of each CPU, the namespace's TCP counters and the "
             "perf top functions are in the JSON)."
             % (fmt(meta["elapsed_s"], 0), meta["stamp"], meta["stamp"]))
    return "\n".join(L) + "\n"


README_BEGIN = "<!-- BEGIN LATEST RESULTS (written by bench.py --update-readme) -->"
README_END = "<!-- END LATEST RESULTS -->"


def update_readme(md):
    path = os.path.join(HERE, "README.md")
    with open(path) as f:
        text = f.read()
    i, j = text.find(README_BEGIN), text.find(README_END)
    if i < 0 or j < i:
        log("warning: %s has no results markers; not updated" % path)
        return
    text = text[:i + len(README_BEGIN)] + "\n\n" + md + "\n" + text[j:]
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    log("updated %s" % path)


# --------------------------------------------------------------------------
# set-up


def sh(cmd, timeout=30):
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        return r.stdout.decode(errors="replace").strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return "? (%s)" % e


def installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    return b"ok installed" in r.stdout


def ensure_deps(a):
    if a.no_install:
        return
    # the common packages (postfix preseeded "No configuration", python3,
    # util-linux for taskset...), as the tests install them
    r = subprocess.run(["sh", os.path.join(TOP, "tests", "deps.sh")], timeout=1800)
    if r.returncode != 0:
        raise BenchError("tests/deps.sh failed")
    if not installed("haproxy"):
        log("bench: installing haproxy")
        pre = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run(pre + ["apt-get", "update", "-qq"], timeout=900, check=True)
        subprocess.run(pre + ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install",
                              "-y", "-qq", "--no-install-recommends", "haproxy"],
                       timeout=1800, check=True)


def quick_scenarios():
    s = json.loads(json.dumps(SCENARIOS))
    s["smtp"]["messages"] = 2000
    s["bulk"]["messages"] = 50
    s["connrate"]["messages"] = 2000
    s["idle"]["conns"] = 1000
    s["idle"]["hold"] = 2.0
    return s


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def int_list(text):
    """argparse type: N or a comma list N,M,... of integers >= 0."""
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("not an integer or a comma list of integers: %r"
                                         % text)
    if not vals or min(vals) < 0 or len(set(vals)) != len(vals):
        raise argparse.ArgumentTypeError("want distinct integers >= 0: %r" % text)
    return vals


def expand_paths(kinds, lb_workers, haproxy_threads):
    """The paths of the run and the thread count of each balancer path.
    One value: the path keeps its plain name (haproxy, load-balancer,
    load-balancer-base); several: one path per value, haproxy-tN /
    load-balancer-wN / load-balancer-base-wN, in the order direct, then for
    each N haproxy-tN next to load-balancer-wN and load-balancer-base-wN
    (the paths compared with each other run next to each other in time).
    The base build (load-balancer-base) gets the same worker counts as
    load-balancer: the same configuration."""
    threads = {}
    groups = {"haproxy": [], "load-balancer": [], BASE: []}
    if "haproxy" in kinds:
        for n in haproxy_threads:
            p = "haproxy" if len(haproxy_threads) == 1 else "haproxy-t%d" % n
            groups["haproxy"].append((n, p))
            threads[p] = n
    for k in ("load-balancer", BASE):
        if k in kinds:
            for n in lb_workers:
                p = k if len(lb_workers) == 1 else "%s-w%d" % (k, n)
                groups[k].append((n, p))
                threads[p] = n
    if len(haproxy_threads) == 1 and len(lb_workers) == 1:
        # exactly today's order: the --paths order
        out = [p for k in kinds for p in ([k] if k == "direct" else
                                          [q for _, q in groups[k]])]
        return out, threads
    out = ["direct"] if "direct" in kinds else []
    for n in sorted(set(x for g in groups.values() for x, _ in g)):
        for k in ("haproxy", "load-balancer", BASE):
            out += [q for x, q in groups[k] if x == n]
    return out, threads


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=None,
                    help="alternating rounds (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 round, scenarios scaled down ~10x")
    ap.add_argument("--scenarios", default=",".join(SCENARIO_ORDER),
                    help="comma-separated subset of %s" % ",".join(SCENARIO_ORDER))
    ap.add_argument("--paths", default=None,
                    help="comma-separated subset of %s (default: all of them; %s only "
                         "with --lb-base-bin, which adds it)" % (",".join(ALL_PATHS), BASE))
    ap.add_argument("--lb-bin", default=os.environ.get("LB_BENCH_BIN"),
                    help="load-balancer binary (default $LB_BENCH_BIN, else "
                         "$LB_BUILD_DIR/load-balancer, else _build/load-balancer)")
    ap.add_argument("--lb-base-bin", default=os.environ.get("LB_BENCH_BASE_BIN") or None,
                    metavar="PATH",
                    help="a second load-balancer binary (e.g. the old main; default "
                         "$LB_BENCH_BASE_BIN): runs as the path %s with the same generated "
                         "configuration, in the same rounds; the report gives load-balancer "
                         "/ %s and whether CPU per message stayed within 5 %%%% of it"
                         % (BASE, BASE))
    ap.add_argument("--lb-workers", type=int_list, default=[1], metavar="N[,N...]",
                    help="load-balancer's global.workers (default 1); a comma list (with "
                         "--shared-cpus) runs one path load-balancer-wN per value")
    ap.add_argument("--haproxy-threads", type=int_list, default=[1], metavar="N[,N...]",
                    help="HAProxy's nbthread (default 1); a comma list (with --shared-cpus) "
                         "runs one path haproxy-tN per value")
    ap.add_argument("--shared-cpus", action="store_true",
                    help="no pinning: the balancer and the load (smtp-source, sinks, idle "
                         "client, this script) may all use every CPU (taskset -c 0-(ncpu-1)); "
                         "reports a scaling table instead of issue 6's acceptance criteria")
    ap.add_argument("--lb-global", action="append", default=[], metavar="'KEY = VALUE;'",
                    help="extra line for load-balancer's global group (repeatable)")
    for grp in ("frontend", "backend"):
        ap.add_argument("--lb-%s" % grp, action="append", default=[], metavar="'KEY = VALUE;'",
                        help="extra line for load-balancer's %s group (repeatable)" % grp)
        ap.add_argument("--lb-base-%s" % grp, action="append", default=[], metavar="'KEY = VALUE;'",
                        help="the same for the base build's path (--lb-base-bin), so that one "
                             "binary can run with two configurations side by side" )
    ap.add_argument("--haproxy-splice", action="store_true",
                    help="add 'option splice-auto' to HAProxy's defaults (off by default)")
    ap.add_argument("--balancer-cpu", type=int, default=1)
    ap.add_argument("--load-cpu", type=int, default=0)
    ap.add_argument("--maxconn", type=int, default=8000,
                    help="maxconn of both balancers (>= idle sessions; default 8000: "
                         "HAProxy needs 2 x maxconn + a few descriptors)")
    ap.add_argument("--settle", type=float, default=0.5,
                    help="seconds between a balancer's start and the load")
    ap.add_argument("--run-timeout", type=float, default=300.0,
                    help="bound on one run's load (seconds)")
    ap.add_argument("--no-netns", dest="netns", action="store_false",
                    help="run on the host's loopback instead of one network namespace per run")
    ap.add_argument("--port-lo", type=int, default=20000, help="with --no-netns")
    ap.add_argument("--port-hi", type=int, default=32000, help="with --no-netns")
    ap.add_argument("--max-time-wait", type=int, default=2000,
                    help="with --no-netns: wait (up to 75 s) before a run until the host "
                         "has at most this many TIME_WAIT sockets")
    ap.add_argument("--quiet-pct", type=float, default=15.0,
                    help="before each run, wait until no CPU is busier than this (percent)")
    ap.add_argument("--quiet-wait", type=float, default=120.0,
                    help="bound on that wait (seconds); the run goes on with a warning")
    ap.add_argument("--disturb-pct", type=float, default=10.0,
                    help="a run during which other processes used more than this percentage "
                         "of a CPU is done again (default 10)")
    ap.add_argument("--retries", type=int, default=2,
                    help="how many times a disturbed run is done again (default 2)")
    ap.add_argument("--lock-wait", type=float, default=3600.0,
                    help="how long to wait for another bench.py on this machine to finish")
    ap.add_argument("--perf", default="", metavar="SCENARIOS",
                    help="after the rounds, one extra load-balancer run per listed scenario "
                         "under perf record -g; prints its top functions")
    ap.add_argument("--perf-paths", default="load-balancer",
                    help="the paths --perf profiles (default load-balancer; "
                         "e.g. load-balancer,haproxy)")
    ap.add_argument("--out-dir", default=HERE, help="where results-DATE.{md,json} go")
    ap.add_argument("--update-readme", action="store_true",
                    help="write the table into bench/README.md (between its markers)")
    ap.add_argument("--no-install", action="store_true", help="do not run apt-get")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()

    scen_list = [s for s in a.scenarios.split(",") if s]
    if a.paths is None:
        # by default every path, and the base build next to load-balancer
        # when there is one
        path_list = list(PATHS) + ([BASE] if a.lb_base_bin else [])
    else:
        path_list = [p for p in a.paths.split(",") if p]
    for s in scen_list:
        if s not in SCENARIOS:
            ap.error("unknown scenario %s" % s)
    for p in path_list:
        if p not in ALL_PATHS:
            ap.error("unknown path %s" % p)
    if len(set(path_list)) != len(path_list):
        ap.error("--paths names a path twice")
    if BASE in path_list and not a.lb_base_bin:
        ap.error("the path %s needs --lb-base-bin PATH (or LB_BENCH_BASE_BIN)" % BASE)
    if a.lb_base_bin and BASE not in path_list:
        # asked for a base build but --paths does not name it: run it right
        # after load-balancer (or at the end)
        i = path_list.index("load-balancer") + 1 if "load-balancer" in path_list \
            else len(path_list)
        path_list.insert(i, BASE)
        log("bench: --lb-base-bin given: path %s added (--paths %s)"
            % (BASE, ",".join(path_list)))
    if not a.shared_cpus and (len(a.lb_workers) > 1 or len(a.haproxy_threads) > 1):
        ap.error("lists of --lb-workers / --haproxy-threads need --shared-cpus (pinned, "
                 "the balancer has one CPU: more threads cannot scale there)")
    if min(a.haproxy_threads) < 1:
        ap.error("--haproxy-threads: nbthread must be >= 1")
    if a.shared_cpus and a.update_readme:
        ap.error("--update-readme writes the pinned acceptance table: not with --shared-cpus "
                 "(copy the scaling table from results-*.md)")
    path_list, a.path_threads = expand_paths(path_list, a.lb_workers, a.haproxy_threads)
    a.path_list = path_list
    if a.rounds is None:
        a.rounds = 1 if a.quick else 3
    if a.rounds < 1:
        ap.error("--rounds must be >= 1")
    a.scen = quick_scenarios() if a.quick else json.loads(json.dumps(SCENARIOS))
    if a.scen["idle"]["conns"] > a.maxconn:
        ap.error("--maxconn must be >= the idle sessions")
    if not a.lb_bin:
        bdir = os.environ.get("LB_BUILD_DIR", os.path.join(TOP, "_build"))
        a.lb_bin = os.path.join(bdir, "load-balancer")
    a.lb_bin = os.path.abspath(a.lb_bin)
    if a.lb_base_bin:
        a.lb_base_bin = os.path.abspath(a.lb_base_bin)

    ensure_deps(a)
    # one benchmark at a time on a machine: two would share the two cores
    lock = open(LOCK_FILE, "a")
    end = time.monotonic() + a.lock_wait
    waited = False
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= end:
                raise BenchError("another bench.py holds %s (waited %.0f s)"
                                 % (LOCK_FILE, a.lock_wait))
            if not waited:
                log("bench: another bench.py runs on this machine (%s): waiting for it"
                    % LOCK_FILE)
                waited = True
            time.sleep(2)
    if a.netns and not netns_works():
        log("bench: cannot create a network namespace (ip netns add): using the host's "
            "loopback (--no-netns)")
        a.netns = False
    ncpu = os.cpu_count()
    kinds = set(path_kind(p) for p in path_list)
    if a.shared_cpus:
        # every process on every CPU of the machine: taskset -c 0-(ncpu-1)
        # (explicit rather than inherited, so that the affinity of whoever
        # started this script does not matter)
        a.balancer_cpus = a.load_cpus = "0-%d" % (ncpu - 1) if ncpu > 1 else "0"
    else:
        if max(a.balancer_cpu, a.load_cpu) >= ncpu or a.balancer_cpu == a.load_cpu:
            raise BenchError("need two distinct CPUs < %d (--balancer-cpu, --load-cpu)" % ncpu)
        a.balancer_cpus, a.load_cpus = str(a.balancer_cpu), str(a.load_cpu)
    for prog in (SINK, SOURCE) + ((HAPROXY,) if "haproxy" in kinds else ()):
        if not os.access(prog, os.X_OK):
            raise BenchError("%s is missing" % prog)
    if any(path_kind(p) == "load-balancer" and not is_base(p) for p in path_list) \
            and not os.access(a.lb_bin, os.X_OK):
        raise BenchError("%s is missing: build it, e.g. mkdir -p _build-bench && cd "
                         "_build-bench && ../configure -q && make -j2 load-balancer; then "
                         "--lb-bin _build-bench/load-balancer (or LB_BUILD_DIR=_build-bench)"
                         % a.lb_bin)
    if any(is_base(p) for p in path_list) and not os.access(a.lb_base_bin, os.X_OK):
        raise BenchError("%s (--lb-base-bin) is missing or not executable" % a.lb_base_bin)

    # descriptors for 6000 idle sessions (x2 in a balancer, +pipes) for
    # every child; the orchestrator itself stays on the load CPU.
    want = 65536
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    if nofile[0] < 2 * a.maxconn + 100:
        raise BenchError("RLIMIT_NOFILE is %d (cannot raise it): HAProxy and load-balancer "
                         "need 2 x maxconn + 100; lower --maxconn" % nofile[0])
    if a.shared_cpus:
        try:
            os.sched_setaffinity(0, set(range(ncpu)))
        except OSError as e:
            raise BenchError("--shared-cpus: cannot run on all %d CPUs: %s" % (ncpu, e))
    else:
        os.sched_setaffinity(0, {a.load_cpu})

    wd = tempfile.mkdtemp(prefix="lb-bench-")
    # a private copy: a rebuild of the tree during the run cannot change it
    a.lb_run_bin = os.path.join(wd, "load-balancer")
    if os.access(a.lb_bin, os.X_OK):
        shutil.copy2(a.lb_bin, a.lb_run_bin)
    # the same for the base build (--lb-base-bin), under its own name
    a.lb_base_run_bin = os.path.join(wd, BASE)
    if a.lb_base_bin:
        shutil.copy2(a.lb_base_bin, a.lb_base_run_bin)
    started = time.time()
    t_start = time.monotonic()
    now = datetime.datetime.now(datetime.timezone.utc)
    meta = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "rounds": a.rounds, "quick": a.quick,
        "kernel": platform.release(), "cpu_model": cpu_model(), "ncpu": ncpu,
        "haproxy_version": sh([HAPROXY, "-v"]).splitlines()[0].split(" - http")[0]
        if os.access(HAPROXY, os.X_OK) else "-",
        "lb_version": sh([a.lb_run_bin, "-V"]) if os.access(a.lb_run_bin, os.X_OK) else "-",
        "lb_bin": os.path.relpath(a.lb_bin, TOP) if a.lb_bin.startswith(TOP) else a.lb_bin,
        # the state of this tree, which is what the binary was built from
        # only when it is one of its build directories
        "lb_git": sh(["git", "-C", TOP, "describe", "--always", "--dirty"])
        if a.lb_bin.startswith(TOP + os.sep) else "-",
        "lb_bin_sha256": sh(["sha256sum", a.lb_run_bin]).split()[0][:16]
        if os.access(a.lb_run_bin, os.R_OK) else "-",
        "lb_bin_mtime": datetime.datetime.fromtimestamp(
            os.stat(a.lb_bin).st_mtime, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        if os.access(a.lb_bin, os.R_OK) else "-",
        "postfix_version": sh(["/usr/sbin/postconf", "-dh", "mail_version"]),
        "balancer_cpu": a.balancer_cpu, "load_cpu": a.load_cpu,
        "haproxy_splice": a.haproxy_splice, "lb_workers": a.lb_workers[0],
        "nofile": nofile[0], "scenarios": {s: a.scen[s] for s in scen_list},
        "netns": a.netns, "quiet_pct": a.quiet_pct,
        "paths": path_list, "workdir": wd,
    }
    if a.lb_base_bin:
        meta.update({
            "lb_base_version": sh([a.lb_base_run_bin, "-V"]),
            "lb_base_bin": os.path.relpath(a.lb_base_bin, TOP)
            if a.lb_base_bin.startswith(TOP + os.sep) else a.lb_base_bin,
            "lb_base_git": sh(["git", "-C", TOP, "describe", "--always", "--dirty"])
            if a.lb_base_bin.startswith(TOP + os.sep) else "-",
            "lb_base_bin_sha256": sh(["sha256sum", a.lb_base_run_bin]).split()[0][:16],
            "lb_base_bin_mtime": datetime.datetime.fromtimestamp(
                os.stat(a.lb_base_bin).st_mtime, datetime.timezone.utc).strftime(
                    "%Y-%m-%d %H:%M UTC"),
        })
        if meta["lb_base_bin_sha256"] == meta["lb_bin_sha256"]:
            log("bench: note: --lb-bin and --lb-base-bin are the same binary (sha256 %s...)"
                % meta["lb_bin_sha256"])
    if a.haproxy_threads != [1]:
        meta["haproxy_threads"] = a.haproxy_threads[0]
    if a.shared_cpus:
        meta.update({"shared_cpus": True, "cpus_spec": a.load_cpus,
                     "lb_workers_list": a.lb_workers,
                     "haproxy_threads_list": a.haproxy_threads,
                     "path_threads": a.path_threads})
        for k in ("balancer_cpu", "load_cpu", "lb_workers", "haproxy_threads"):
            meta.pop(k, None)
        log("bench: work directory %s; %s; %s; CPUs shared: every process on CPUs %s; "
            "paths %s" % (wd, meta["haproxy_version"], meta["lb_version"], a.load_cpus,
                          ", ".join(path_list)))
    else:
        log("bench: work directory %s; %s; %s; pinning: balancer CPU %d, load CPU %d"
            % (wd, meta["haproxy_version"], meta["lb_version"], a.balancer_cpu, a.load_cpu))
    if a.lb_base_bin:
        log("bench: base build (path %s): %s, %s" % (BASE, a.lb_base_bin,
                                                     meta["lb_base_version"]))
    runs = []
    seen_cpus = set()

    def handler(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, handler)
    ok = False
    pw = max([13] + [len(p) for p in path_list])   # the log's path column
    try:
        for rnd in range(1, a.rounds + 1):
            for scen in scen_list:
                k = (rnd - 1) % len(path_list)
                order = path_list[k:] + path_list[:k]
                for path in order:
                    r = one_run(a, scen, path, rnd, wd)
                    tries = 1
                    # another user of the machine took CPU during the run:
                    # do it again (bounded), keep the least disturbed one
                    while r["foreign_pct"] > a.disturb_pct and tries <= a.retries:
                        log("  r%d %s %s: disturbed (others used %.0f%% of a CPU during "
                            "the run): again" % (rnd, scen, path, r["foreign_pct"]))
                        r2 = one_run(a, scen, path, rnd, wd)
                        tries += 1
                        if r2["foreign_pct"] < r["foreign_pct"]:
                            r = r2
                    r["attempts"] = tries
                    runs.append(r)
                    if r.get("balancer_cpus"):
                        seen_cpus.add(r["balancer_cpus"])
                    if a.shared_cpus:
                        # every core, their sum, and the balancer's share
                        cores = "cores %s=%3.0f%% bal %4s%%" % (
                            "+".join("%.0f" % v for v in r["cpu_busy_pct"].values()),
                            r["all_cpus_busy_pct"], fmt(r.get("balancer_cpu_pct"), 0))
                    else:
                        cores = "cores %3.0f%%/%3.0f%%" % (r["load_cpu_busy_pct"],
                                                         r["balancer_cpu_busy_pct"])
                    log("round %d %-8s %-*s wall %6.2fs  msgs/s %8s  MB/s %7s  CPU %6s s  "
                        "peakRSS %6s MiB  held %6s MiB  %s others %2.0f%%  %s" % (
                            rnd, scen, pw, path, r["wall_s"], fmt(r.get("msgs_per_s"), 1),
                            fmt(r.get("mb_per_s")), fmt(r.get("cpu_s")),
                            fmt(mib(r.get("rss_peak_kb")), 1), fmt(mib(r.get("rss_held_kb")), 1),
                            cores, r["foreign_pct"],
                            ("delivered %d/%d" % (r["delivered"], r["sent"])) if scen != "idle"
                            else "sessions %d/%d setup %.2fs" % (r["conns_ok"],
                                                                  a.scen["idle"]["conns"],
                                                                  r["setup_s"])))
        profiles = {}
        perf_paths = []
        for q in [p for p in a.perf_paths.split(",") if p]:
            # a kind (load-balancer) stands for all its paths (-w1, -w2...)
            perf_paths += [q] if q in path_list else \
                [p for p in path_list if path_kind(p) == q and p not in perf_paths]
        for scen in [s for s in a.perf.split(",") if s]:
            for path in perf_paths:
                r = one_run(a, scen, path, 0, wd, perf=True)
                text = []
                for sort, limit in (("dso", "1"), ("dso,symbol", "0.7")):
                    out = sh(["perf", "report", "-i", r["perf_data"], "--no-children",
                              "--stdio", "--sort", sort, "--percent-limit", limit, "-g", "none"],
                             300)
                    text += [ln.rstrip() for ln in out.splitlines()
                             if ln.strip() and not ln.startswith("#")]
                    text.append("")
                profiles["%s/%s" % (scen, path)] = "\n".join(text)
                log("perf record -g (%s, %s; %.1f msgs/s, CPU %.2f s; not counted in the "
                    "medians):\n%s" % (scen, path, r.get("msgs_per_s") or 0, r.get("cpu_s") or 0,
                                       "\n".join(text)))
        ok = True
    finally:
        stop_all()
        if not ok:
            log("bench: FAILED; work directory kept: %s" % wd)
    meta["elapsed_s"] = time.monotonic() - t_start
    meta["balancer_cpus_seen"] = ",".join(sorted(seen_cpus)) or "-"
    meta["disturb_pct"] = a.disturb_pct
    meta["disturbed_runs"] = ["r%d %s %s (%.0f%%)" % (r["round"], r["scenario"], r["path"],
                                                      r["foreign_pct"])
                              for r in runs if r["foreign_pct"] > a.disturb_pct]
    meta["retried_runs"] = sum(r["attempts"] - 1 for r in runs)
    med = medians(runs)
    stamp = datetime.datetime.fromtimestamp(started, datetime.timezone.utc).strftime(
        "%Y%m%d-%H%M%S")
    meta["stamp"] = stamp
    # two builds (--lb-base-bin): load-balancer / load-balancer-base, when
    # both ran under their plain names (one --lb-workers value)
    base = None
    base_json = None
    if "load-balancer" in path_list and BASE in path_list:
        brat = ratios(med)
        bspread = round_ratios(runs, "load-balancer", BASE)
        brows = base_acceptance(med)
        base = (bspread, brows, brat)
        base_json = {
            "ratios": {scen: o["lb/base"] for scen, o in brat.items() if "lb/base" in o},
            "round_ratios": bspread,
            "criteria": [{"criterion": w, "result": r, "ratio": v} for w, r, v in brows],
            "cpu_per_msg_within_5pct": base_verdict(brows),
        }
    if a.shared_cpus:
        rat = scaling_ratios(a, med)
        acc = []
        spread = None
        md = markdown_shared(meta, med, rat, path_list, base)
    else:
        rat = ratios(med)
        acc = acceptance(med)
        spread = round_ratios(runs)
        md = markdown(meta, med, rat, acc, spread, base)
    sys.stdout.write(md)
    os.makedirs(a.out_dir, exist_ok=True)
    mdp = os.path.join(a.out_dir, "results-%s.md" % stamp)
    jsp = os.path.join(a.out_dir, "results-%s.json" % stamp)
    with open(mdp, "w") as f:
        f.write(md)
    with open(jsp, "w") as f:
        doc = {"meta": meta, "runs": runs, "medians": med, "ratios": rat,
               "acceptance": [{"criterion": w, "result": r, "ratio": v} for w, r, v in acc],
               "profiles": profiles}
        if spread:
            doc["round_ratios"] = {"lb/haproxy": spread}
        if base_json is not None:
            # load-balancer / load-balancer-base: ratios of the medians,
            # per-round ratios, the 5 % criterion on CPU per message
            doc["base_comparison"] = base_json
        json.dump(doc, f, indent=1, sort_keys=True)
    log("bench: wrote %s and %s" % (mdp, jsp))
    if a.update_readme:
        update_readme(md)
    if not a.keep:
        shutil.rmtree(wd, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        stop_all()
        log("bench: FAILED: %s" % e)
        sys.exit(1)
    except KeyboardInterrupt as e:
        stop_all()
        log("bench: interrupted (%s)" % e)
        sys.exit(130)
