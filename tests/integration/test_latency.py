#!/usr/bin/env python3
"""Relay latency while the main thread works (the locking re-architecture).

The daemon runs with global.workers = 1, so every session lives on the main
thread, which also serves the status page and applies reloads: the worst
case of a design where that work stops the relay.  A measuring client, in
a process of its own (Python threads of one process disturb each other's
timing through the GIL), holds one session through the balancer to a small
echo server (another process) and sends it one byte every 2 ms, timing each
echo; every 20 ms it also opens a new session and times connect -> first
byte of the greeting.  Three phases:

  (a) quiet;
  (b) a process fetching GET /timeline back to back, with a synthetic
      health log of about 1 MB that each picture has to parse (events of
      the 201 servers of the configuration, the measured one and a
      backend "filters" of 200 unchecked servers, over the last 24 hours:
      about 10-15 ms of work per picture here, 5 ms with 8 servers, too
      close to the 5 ms criterion to tell the designs apart);
  (c) ten reloads (lbctl reload) of a configuration with a backend of
      2000 servers (no health checks), two variants alternating (the
      weights of those servers), each reload checked.

Figures per phase (count, median, p99, max in ms of the echo round trip
and of the new session's first byte) are logged in a table.  Checks, in
one run (the machine is shared): in (b) and (c) both p99 below 5 ms, and
both maxima within 10 ms of the quiet phase's; plus sanity (enough
samples at the cadence, every new session greeted, the held session up
with every byte echoed in order, /timeline answered 200 with a big SVG,
ten reloads applied).  Under a sanitizer build (LB_SANITIZER=asan|tsan in
the environment) the two thresholds are multiplied by LB_LATENCY_SCALE
(default 4; 1 without a sanitizer).  Because the machine is shared, a
measurement that misses a latency criterion is taken once more
(LB_LATENCY_ATTEMPTS, default 2, 1 = a single measurement) and the
criteria are judged on the last one; every attempt's table is logged.
The old design misses them every time (its stalls are structural).

The same file is the child processes: `test_latency.py --role echo|probe|
fetch ...` (standard library only, no lbtest import there)."""

import collections
import errno
import gc
import json
import os
import selectors
import socket
import sys
import time

H = "127.0.0.1"
ECHO_EVERY = 0.002       # one byte on the held session every 2 ms
NEW_EVERY = 0.020        # one new session every 20 ms
GREETING = b"220 echo\r\n"


# --------------------------------------------------------------------------
# Child processes (run as `python3 test_latency.py --role NAME ARGS...`).
# Each prints "ready ..." on stdout when it works, stops on "stop" on stdin
# (or EOF, or SIGTERM), and writes its results as JSON to a file.


def _nodelay(s):
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


def role_echo(port):
    """For each connection: "220 echo\\r\\n" at once, then echo every byte."""
    gc.disable()                 # no collector pauses in a measured path
    sel = selectors.DefaultSelector()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((H, int(port)))
    ls.listen(1024)
    ls.setblocking(False)
    sel.register(ls, selectors.EVENT_READ, "listen")
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "ctl")
    print("ready %d" % os.getpid(), flush=True)
    accepted = 0
    while True:
        for key, _ in sel.select(1.0):
            if key.data == "ctl":
                if not os.read(key.fd, 4096):
                    return 0
                continue
            if key.data == "listen":
                for _ in range(256):
                    try:
                        c, _peer = ls.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    accepted += 1
                    _nodelay(c)
                    try:
                        c.send(GREETING)
                    except OSError:
                        c.close()
                        continue
                    c.setblocking(False)
                    sel.register(c, selectors.EVENT_READ, "conn")
                continue
            c = key.fileobj
            try:
                data = c.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if data:
                try:
                    n = c.send(data)
                    if n < len(data):
                        c.setblocking(True)
                        c.settimeout(5)
                        c.sendall(data[n:])
                        c.setblocking(False)
                    continue
                except OSError:
                    pass
            sel.unregister(c)
            c.close()


def role_probe(port, out):
    """The measuring client, one thread, one epoll loop: the held session
    (a byte every 2 ms, each echo timed) and a new session every 20 ms
    (connect start -> first byte of the greeting).  Times are
    time.perf_counter() (CLOCK_MONOTONIC: the parent's clock too)."""
    gc.disable()                 # the samples are acyclic: no collector pauses
    port = int(port)
    pc = time.perf_counter
    sel = selectors.DefaultSelector()
    ctl = sys.stdin.fileno()
    sel.register(ctl, selectors.EVENT_READ, ("ctl", None))

    held = socket.create_connection((H, port), timeout=5)
    _nodelay(held)
    g = b""
    while not g.endswith(b"\r\n") and len(g) < 200:
        b = held.recv(200)
        if not b:
            break
        g += b
    if g != GREETING:
        print("error held session greeting %r" % g, flush=True)
        return 1
    held.setblocking(False)
    sel.register(held, selectors.EVENT_READ, ("held", None))

    echo = []            # [t_send, rtt_ms, send lateness ms]
    pending = collections.deque()   # (t_send, byte, lateness)
    news = []            # [t_start, first_byte_ms, greeting_ms]
    new_fail = []        # [t_start, reason]
    opened = 0
    mismatch = 0
    held_eof = None
    seq = 0
    t0 = pc()
    next_echo = t0 + 0.05
    next_new = t0 + 0.05
    stopping = None
    print("ready %.6f" % pc(), flush=True)
    while True:
        now = pc()
        if stopping is None:
            if now >= next_echo and held_eof is None:
                b = bytes([0x61 + seq % 26])
                ts = pc()
                try:
                    n = held.send(b)
                except (BlockingIOError, InterruptedError):
                    n = -1                  # a full socket buffer: next slot
                except OSError:
                    n = 0
                if n == 1:
                    pending.append((ts, b[0], (ts - next_echo) * 1000.0))
                    seq += 1
                elif n == 0:
                    held_eof = held_eof or ts
                next_echo += ECHO_EVERY
                if next_echo < now:         # late: skip the missed slots
                    next_echo = now + ECHO_EVERY
            if now >= next_new:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                ts = pc()
                err = s.connect_ex((H, port))
                opened += 1
                if err not in (0, errno.EINPROGRESS):
                    new_fail.append([ts, "connect: %s" % errno.errorcode.get(err, err)])
                    s.close()
                else:
                    sel.register(s, selectors.EVENT_READ, ("new", [ts, None, b""]))
                next_new += NEW_EVERY
                if next_new < now:
                    next_new = now + NEW_EVERY
        else:
            open_new = [k for k in sel.get_map().values() if k.data[0] == "new"]
            if (not pending and not open_new) or now - stopping > 2.0:
                break
        if stopping is None:
            timeout = max(0.0, min(next_echo, next_new) - pc())
        else:
            timeout = 0.02
        for key, _ in sel.select(timeout):
            kind, st = key.data
            if kind == "ctl":
                data = os.read(ctl, 4096)
                if not data or b"stop" in data:
                    stopping = pc()
                    sel.unregister(ctl)
                continue
            if kind == "held":
                try:
                    data = held.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                tr = pc()
                if not data:
                    held_eof = tr
                    sel.unregister(held)
                    continue
                for byte in data:
                    if not pending:
                        mismatch += 1
                        continue
                    ts, want, late = pending.popleft()
                    if byte != want:
                        mismatch += 1
                    echo.append([ts, (tr - ts) * 1000.0, late])
                continue
            s = key.fileobj
            try:
                data = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                new_fail.append([st[0], "recv: %s" % e])
                sel.unregister(s)
                s.close()
                continue
            tr = pc()
            if not data:
                new_fail.append([st[0], "closed after %r" % st[2]])
                sel.unregister(s)
                s.close()
                continue
            if st[1] is None:
                st[1] = tr
            st[2] += data
            if st[2].endswith(b"\r\n") or len(st[2]) >= len(GREETING):
                if st[2] == GREETING:
                    news.append([st[0], (st[1] - st[0]) * 1000.0, (tr - st[0]) * 1000.0])
                else:
                    new_fail.append([st[0], "greeting %r" % st[2]])
                sel.unregister(s)
                s.close()
        # New sessions without a greeting after 3 s fail.
        now = pc()
        for key in list(sel.get_map().values()):
            if key.data[0] == "new" and now - key.data[1][0] > 3.0:
                new_fail.append([key.data[1][0], "no greeting within 3 s (got %r)"
                                 % key.data[1][2]])
                sel.unregister(key.fileobj)
                key.fileobj.close()
    for key in list(sel.get_map().values()):
        if key.data[0] == "new":
            new_fail.append([key.data[1][0], "still open at the end"])
            key.fileobj.close()
    try:
        held.close()
    except OSError:
        pass
    res = {"t0": t0, "echo": echo, "new": news, "new_fail": new_fail, "opened": opened,
           "sent": seq, "lost": len(pending), "mismatch": mismatch, "held_eof": held_eof}
    with open(out + ".tmp", "w") as f:
        json.dump(res, f)
    os.rename(out + ".tmp", out)
    return 0


def role_fetch(port, seconds, maxcount, out):
    """GET /timeline back to back (one keep-alive connection, reopened when
    needed) for `seconds` or `maxcount` fetches: [start, end, status, bytes,
    content type] each, and the first body's start."""
    import http.client
    port, seconds, maxcount = int(port), float(seconds), int(maxcount)
    # The load generator yields the CPU to the measuring processes (the
    # daemon's work is what is measured, not this client's).
    try:
        os.nice(5)
    except OSError:
        pass
    pc = time.perf_counter
    recs = []
    head = ""
    conn = None
    print("ready %.6f" % pc(), flush=True)
    end = pc() + seconds
    while pc() < end and len(recs) < maxcount:
        t0 = pc()
        try:
            if conn is None:
                conn = http.client.HTTPConnection(H, port, timeout=10)
            conn.request("GET", "/timeline")
            r = conn.getresponse()
            body = r.read()
            st, ctype = r.status, r.getheader("Content-Type", "")
            if r.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            st, ctype, body = "error: %s" % e, "", b""
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.01)
        recs.append([t0, pc(), st, len(body), ctype])
        if not head:
            head = body[:200].decode(errors="replace")
    if conn is not None:
        conn.close()
    with open(out + ".tmp", "w") as f:
        json.dump({"fetches": recs, "head": head}, f)
    os.rename(out + ".tmp", out)
    return 0


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--role":
    _roles = {"echo": role_echo, "probe": role_probe, "fetch": role_fetch}
    sys.exit(_roles[sys.argv[2]](*sys.argv[3:]))


# --------------------------------------------------------------------------
# The test (parent process)

import datetime  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import urllib.request  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

QUIET_S = 4.0            # phase (a)
LOAD_S = 5.0             # phase (b)
RELOADS = 10             # phase (c)
RELOAD_GAP = 0.25        # between two reloads
BIG = 2000               # servers of the reloaded backend
FILTERS = 200            # servers of the backend the health log is about (lanes)
LOG_BYTES = 1000000      # the synthetic health log (the daemon reads 1 MiB)
P99_MS = 5.0
MAX_OVER_QUIET_MS = 10.0
SAMPLE_SHARE = 0.6       # at least this share of the cadence's samples
PHASES = ("a quiet", "b /timeline", "c reloads")
BUSY = PHASES[1:]


def scale():
    """(factor, why): LB_LATENCY_SCALE, default 4 under a sanitizer."""
    san = os.environ.get("LB_SANITIZER", "").strip()
    default = 4.0 if san else 1.0
    try:
        f = float(os.environ.get("LB_LATENCY_SCALE", "") or default)
    except ValueError:
        f = default
    if f <= 0:
        f = default
    why = []
    if san:
        why.append("LB_SANITIZER=%s" % san)
    if os.environ.get("LB_LATENCY_SCALE"):
        why.append("LB_LATENCY_SCALE=%s" % os.environ["LB_LATENCY_SCALE"])
    return f, ", ".join(why) or "no sanitizer"


def attempts_allowed():
    try:
        return max(1, min(3, int(os.environ.get("LB_LATENCY_ATTEMPTS", "2"))))
    except ValueError:
        return 2


def spawn(work, role, *args):
    """Start `python3 THIS --role ROLE ARGS` (registered, stopped by PID at
    the end; its stderr in work/ROLE.stderr) and wait for its "ready" line;
    returns (Popen, ready line)."""
    errpath = os.path.join(work, role + ".stderr")
    with open(errpath, "ab") as err:
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--role", role] +
                             [str(a) for a in args],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
    t.register_proc(p, "latency " + role)
    line = read_line(p, 10.0)
    if not line.startswith("ready"):
        t.kill_proc(p)
        raise t.DaemonError("the %s process did not start: %r, stderr: %s"
                            % (role, line, tail_file(errpath)))
    return p, line


def read_line(p, timeout):
    """One line of p's stdout within timeout ("" when none)."""
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    buf = b""
    deadline = time.monotonic() + timeout
    try:
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                break
            b = os.read(p.stdout.fileno(), 1)
            if not b:
                break
            buf += b
    finally:
        sel.close()
    return buf.decode(errors="replace").strip()


def tail_file(path, n=2000):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode(errors="replace")
    except OSError:
        return ""


def stop_child(p, timeout):
    """Ask a child to finish ("stop" on stdin), wait for it; kill it by PID
    when it does not.  Returns its exit status (None when killed)."""
    try:
        p.stdin.write(b"stop\n")
        p.stdin.flush()
        p.stdin.close()
    except OSError:
        pass
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        t.kill_proc(p)
        return None


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# ---- the synthetic health log


def ts_text(epoch):
    d = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (d.microsecond // 1000)


def write_health_log(path, servers, nbytes):
    """About nbytes of valid health events over the last 24 hours, in the
    daemon's format: per server fail, fail, down (a reason), up (its
    downtime), now and then drain/ready, and a few daemon starts.
    servers: [(backend, name, address)].  Returns (lines, bytes)."""
    rnd = random.Random(20261123)
    state = {s: {"fails": 0, "down": False, "drain": False} for s in servers}
    reasons = ['step=helo code=421 reply="4.7.0 try again later"',
               'step=connect reason="connection refused"',
               'step=greeting code=554 reply="5.3.2 busy, \\"retry\\" later"',
               'step=greeting reason="timeout"',
               'step=starttls reason="STARTTLS not offered"']
    nsrv = len(servers)
    bodies = []
    size = 0
    idx = 0
    while size < nbytes:
        if idx % 1500 == 0:
            body = ("event=start version=0.1.0 pid=%d backends=2 servers=%d"
                    % (1000 + idx, nsrv))
            for st in state.values():      # servers start UP
                st.update(fails=0, down=False, drain=False)
            bodies.append((None, body))
        else:
            srv = servers[rnd.randrange(nsrv)]
            st = state[srv]
            head = "backend=%s server=%s addr=%s" % srv
            active = sum(1 for x in state.values() if not x["down"])
            if st["drain"]:
                st["drain"] = False
                body = "event=ready %s active=%d backup=0" % (head, active)
            elif not st["down"] and rnd.random() < 0.05:
                st["drain"] = True
                body = "event=drain %s active=%d backup=0" % (head, active)
            elif st["down"]:
                st["down"] = False
                st["fails"] = 0
                body = ("event=up %s check=smtp duration_ms=%d successes=2 "
                        "downtime_s=@DOWNTIME@ active=%d backup=0"
                        % (head, rnd.randint(1, 9), active + 1))
            else:
                st["fails"] += 1
                why = rnd.choice(reasons)
                if st["fails"] >= 3:
                    st["down"] = True
                    body = ("event=down %s check=smtp %s duration_ms=%d failures=3 "
                            "active=%d backup=0" % (head, why, rnd.randint(0, 30), active - 1))
                else:
                    body = ("event=fail %s check=smtp %s duration_ms=%d failures=%d "
                            "active=%d backup=0" % (head, why, rnd.randint(0, 30),
                                                     st["fails"], active))
            bodies.append((srv, body))
        size += len(bodies[-1][1]) + 26
        idx += 1
    now = time.time()
    t0 = now - 86400 + 120
    step = (86400 - 240) / len(bodies)
    last_down = {}
    lines = []
    for i, (srv, body) in enumerate(bodies):
        tt = t0 + i * step + rnd.uniform(0, step * 0.5)
        if body.startswith("event=down"):
            last_down[srv] = tt
        if "@DOWNTIME@" in body:
            body = body.replace("@DOWNTIME@", str(int(tt - last_down.get(srv, tt))))
        lines.append("%s %s\n" % (ts_text(tt), body))
    data = "".join(lines).encode()
    with open(path, "wb") as f:
        f.write(data)
    return len(lines), len(data)


# ---- statistics


def pct(sorted_vals, p):
    """Nearest-rank percentile of a sorted list (None when empty)."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def summary(vals):
    v = sorted(vals)
    return {"n": len(v), "med": pct(v, 50), "p99": pct(v, 99), "max": v[-1] if v else None}


def fmt(x):
    return "-" if x is None else "%.2f" % x


def in_window(samples, w):
    return [s for s in samples if w[0] <= s[0] < w[1]]


# ---- configuration


def config(paths, fe_port, echo_addr, filters, big=None):
    """The measured backend "be" (frontend "fe"), the backend "filters"
    the health log is about, and with big = (weight, addresses) the
    backend "big" of BIG servers.  No health checks anywhere."""
    pairs = [("be", [t.server_entry("echo", echo_addr)]),
             ("filters", [t.server_entry(n, a) for n, a in filters])]
    if big is not None:
        w, addrs = big
        pairs.append(("big", [t.server_entry("b%04d" % i, a, weight=w)
                              for i, a in enumerate(addrs)]))
    bes = ["{ %s\n  servers = (\n    %s\n  );\n}" % (t.opts({"name": name}), ",\n    ".join(srv))
           for name, srv in pairs]
    fe = {"name": "fe", "bind": t.addr(H, fe_port), "backend": "be"}
    return (t.global_block(**paths) +
            "frontends = ( { %s } );\n" % t.opts(fe) +
            "backends = (\n  %s\n);\n" % ",\n  ".join(bes))


def write_conf(d, text):
    """Replace the daemon's file atomically (a reload never reads half)."""
    tmp = d.conf + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, d.conf)


def unused_ports(n, avoid):
    """n distinct loopback ports nothing listens on, none in avoid (nothing
    connects to them either: no checks, no frontend)."""
    listening = set()
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if len(parts) > 3 and parts[3] == "0A":
                    listening.add(int(parts[1].rsplit(":", 1)[1], 16))
    except (OSError, StopIteration):
        pass
    out = []
    port = 20000 + random.Random(os.getpid()).randrange(0, 20000)
    while len(out) < n:
        port = 20000 + (port - 20000 + 1) % 40000
        if port not in listening and port not in avoid:
            out.append(port)
    return out


# ---- one measurement: the three phases


class Bed:
    """What the attempts share: the daemon, the echo server, the files."""


def measure(bed, n):
    """Phases (a), (b), (c) with a fresh probe; returns the figures."""
    d, work = bed.d, bed.work
    if n > 1:
        # Back to the configuration of phases (a) and (b).
        write_conf(d, bed.base)
        rc, out, err = d.ctl("reload", timeout=30)
        t.require(rc == 0, "attempt %d: back to the first configuration" % n, out + err)
    probe_out = os.path.join(work, "probe%d.json" % n)
    probe_p, ready = spawn(work, "probe", bed.fe_port, probe_out)
    t_ready, t_now = float(ready.split()[1]), time.perf_counter()
    t.require(abs(t_now - t_ready) < 5.0,
              "the probe and the test share one clock (perf_counter, CLOCK_MONOTONIC)",
              "probe %.3f here %.3f" % (t_ready, t_now))
    time.sleep(0.5)                      # warm-up, not measured

    windows = {}
    # (a) quiet
    a0 = time.perf_counter()
    time.sleep(QUIET_S)
    windows[PHASES[0]] = (a0, time.perf_counter())

    # (b) /timeline back to back, from another process
    fetch_out = os.path.join(work, "fetch%d.json" % n)
    fetch_p, _ = spawn(work, "fetch", bed.stats_port, LOAD_S, 100000, fetch_out)
    try:
        fetch_rc = fetch_p.wait(timeout=LOAD_S + 30)
    except subprocess.TimeoutExpired:
        t.kill_proc(fetch_p)
        fetch_rc = None
    fetch = read_json(fetch_out) or {"fetches": [], "head": ""}
    recs = fetch["fetches"]
    t.check(fetch_rc == 0, "attempt %d: the /timeline loop finished" % n, "status %s, stderr %s"
            % (fetch_rc, tail_file(os.path.join(work, "fetch.stderr"))))
    if recs:
        windows[PHASES[1]] = (recs[0][0], recs[-1][1])
    else:
        windows[PHASES[1]] = (time.perf_counter() - LOAD_S, time.perf_counter())
    time.sleep(0.3)

    # (c) ten reloads of a configuration with 2000 servers, two variants
    logged_before = d.stderr().count("reloaded")
    reloads = []
    c0 = time.perf_counter()
    for i in range(RELOADS):
        write_conf(d, bed.variants[i % 2])
        r0 = time.perf_counter()
        rc, out, err = d.ctl("reload", timeout=20)
        reloads.append(((time.perf_counter() - r0) * 1000, rc, (out + err).strip()))
        if time.perf_counter() - c0 > 40:
            break
        time.sleep(RELOAD_GAP)
    windows[PHASES[2]] = (c0, time.perf_counter())
    logged = d.stderr().count("reloaded") - logged_before
    time.sleep(0.3)

    rc = stop_child(probe_p, 10)
    probe = read_json(probe_out)
    t.require(rc == 0 and probe is not None, "attempt %d: the probe finished and reported" % n,
              "status %s, stderr %s" % (rc, tail_file(os.path.join(work, "probe.stderr"))))
    res = {}
    for k, w in windows.items():
        res[k] = {"secs": w[1] - w[0],
                  "echo": summary([s[1] for s in in_window(probe["echo"], w)]),
                  "new": summary([s[1] for s in in_window(probe["new"], w)]),
                  "late": summary([s[2] for s in in_window(probe["echo"], w)])}
    return {"res": res, "probe": probe, "fetch": fetch, "reloads": reloads,
            "logged": logged}


def report(m, n):
    """The figures of one measurement, as a table."""
    res, recs = m["res"], m["fetch"]["fetches"]
    t.log("")
    t.log("  attempt %d: latency through the balancer, workers = 1, %s (ms)"
          % (n, t.LB_BIN))
    t.log("  %-12s %5s | %6s %6s %6s %7s | %5s %6s %6s %7s | %s"
          % ("phase", "secs", "echo n", "median", "p99", "max",
             "new n", "median", "p99", "max", "probe's own lateness p99/max"))
    for k in PHASES:
        e, s, la = res[k]["echo"], res[k]["new"], res[k]["late"]
        t.log("  %-12s %5.1f | %6d %6s %6s %7s | %5d %6s %6s %7s | %s / %s"
              % (k, res[k]["secs"], e["n"], fmt(e["med"]), fmt(e["p99"]), fmt(e["max"]),
                 s["n"], fmt(s["med"]), fmt(s["p99"]), fmt(s["max"]),
                 fmt(la["p99"]), fmt(la["max"])))
    ok200 = [r for r in recs if r[2] == 200]
    sizes = sorted(r[3] for r in ok200)
    fms = sorted((r[1] - r[0]) * 1000 for r in recs)
    t.log("  (b) GET /timeline: %d fetches in %.1f s, %d answered 200, %s bytes each, "
          "%s ms per fetch at the median, %s at most"
          % (len(recs), res[PHASES[1]]["secs"], len(ok200),
             "-" if not sizes else "%d" % sizes[0] if sizes[0] == sizes[-1]
             else "%d..%d" % (sizes[0], sizes[-1]),
             fmt(pct(fms, 50)), fmt(fms[-1] if fms else None)))
    t.log("  (c) lbctl reload, %d servers: %s ms"
          % (BIG + FILTERS + 1, " ".join("%.0f" % r[0] for r in m["reloads"])))
    t.log("")


def sanity(m, n, factor):
    """Checks that the measurement itself worked (recorded every attempt)."""
    res, probe, recs = m["res"], m["probe"], m["fetch"]["fetches"]
    pre = "attempt %d: " % n
    for k in PHASES:
        want_e = res[k]["secs"] / ECHO_EVERY * SAMPLE_SHARE
        want_n = res[k]["secs"] / NEW_EVERY * SAMPLE_SHARE
        t.check(res[k]["echo"]["n"] >= want_e and res[k]["new"]["n"] >= want_n,
                pre + "phase %s: enough samples (a byte every 2 ms, a session every 20 ms)"
                % k, "echo %d (>= %d), new sessions %d (>= %d)"
                % (res[k]["echo"]["n"], want_e, res[k]["new"]["n"], want_n))
    fails = probe["new_fail"]
    t.check(not fails and len(probe["new"]) == probe["opened"],
            pre + "every new session got its greeting",
            "%d opened, %d greeted, failures: %s" % (probe["opened"], len(probe["new"]),
                                                     fails[:5]))
    t.check(probe["held_eof"] is None and probe["lost"] == 0 and probe["mismatch"] == 0 and
            len(probe["echo"]) == probe["sent"],
            pre + "the held session stayed up and echoed every byte, in order",
            "sent %d, echoed %d, lost %d, wrong %d, closed %s"
            % (probe["sent"], len(probe["echo"]), probe["lost"], probe["mismatch"],
               probe["held_eof"] is not None))
    ok200 = [r for r in recs if r[2] == 200 and "svg" in r[4] and r[3] > 100000]
    head = m["fetch"].get("head", "")
    t.check(len(recs) >= 20 and len(ok200) == len(recs) and ("<svg" in head or "<?xml" in head),
            pre + "the /timeline loop ran: at least 20 fetches, each 200 with an SVG over 100 KB",
            "%d fetches, %d good, statuses %s" % (len(recs), len(ok200),
                                                  sorted(set(str(r[2]) for r in recs))[:5]))
    bad = [r for r in m["reloads"] if r[1] != 0 or not r[2].startswith("ok")]
    t.check(len(m["reloads"]) == RELOADS and not bad and m["logged"] >= RELOADS,
            pre + "ten reloads of %d servers, each applied (lbctl: ok; the daemon: reloaded)"
            % (BIG + FILTERS + 1),
            "%d run, %d logged; %s" % (len(m["reloads"]), m["logged"],
                                       "; ".join("rc=%s %s" % (r[1], r[2][:120]) for r in bad)))
    q = res[PHASES[0]]
    t.check(q["echo"]["med"] is not None and q["echo"]["med"] < 1.0 * factor and
            q["new"]["med"] is not None and q["new"]["med"] < 1.0 * factor,
            pre + "the quiet phase is sane: both medians below %.1f ms" % (1.0 * factor),
            "echo %s ms, new session %s ms" % (fmt(q["echo"]["med"]), fmt(q["new"]["med"])))


def criteria(m, p99_ms, max_ms):
    """The acceptance, as [(ok, what, detail)], not recorded yet."""
    res = m["res"]
    q = res[PHASES[0]]
    out = []
    for k in BUSY:
        for key, what in (("echo", "held session's echo round trip"),
                          ("new", "new session's first byte")):
            s, qs = res[k][key], q[key]
            out.append((s["p99"] is not None and s["p99"] < p99_ms,
                        "phase %s: %s p99 < %g ms" % (k, what, p99_ms),
                        "%s ms (median %s; quiet phase p99 %s)"
                        % (fmt(s["p99"]), fmt(s["med"]), fmt(qs["p99"]))))
            out.append((s["max"] is not None and qs["max"] is not None and
                        s["max"] <= qs["max"] + max_ms,
                        "phase %s: %s max within %g ms of the quiet phase's" % (k, what, max_ms),
                        "%s ms, quiet %s ms" % (fmt(s["max"]), fmt(qs["max"]))))
    return out


# --------------------------------------------------------------------------


def test_latency():
    if t.LB_WRAPPER:
        raise t.Skip("latency means nothing under LB_WRAPPER (%s)" % " ".join(t.LB_WRAPPER))
    t_start = time.monotonic()
    factor, why = scale()
    p99_ms, max_ms = P99_MS * factor, MAX_OVER_QUIET_MS * factor
    t.log("  thresholds%s: p99 < %g ms, max within %g ms of the quiet phase's"
          % (" scaled by %g (%s)" % (factor, why) if factor != 1 else "", p99_ms, max_ms))
    bed = Bed()
    bed.work = work = t.tempdir("lbtest-latency-")
    bed.fe_port, bed.stats_port, echo_port = t.free_port(), t.free_port(), t.free_port()
    paths = {"workers": 1, "stats_listen": t.addr(H, bed.stats_port),
             "control_socket": os.path.join(work, "lb.sock"),
             "health_log": os.path.join(work, "health.log")}
    echo_addr = t.addr(H, echo_port)
    ports = unused_ports(FILTERS + BIG, {bed.fe_port, bed.stats_port, echo_port})
    filters = [("f%d" % (i + 1), t.addr(H, p)) for i, p in enumerate(ports[:FILTERS])]
    big_addrs = [t.addr(H, p) for p in ports[FILTERS:]]

    servers = [("be", "echo", echo_addr)] + [("filters", n, a) for n, a in filters]
    nlines, nbytes = write_health_log(paths["health_log"], servers, LOG_BYTES)
    t.log("  synthetic health log: %d lines, %d bytes over the last 24 h, %d servers"
          % (nlines, nbytes, len(servers)))
    t.require(nbytes >= 900000, "the health log is about 1 MB", "%d bytes" % nbytes)

    echo_p, _ = spawn(work, "echo", echo_port)
    t.require(t.wait_until(lambda: t.is_listening(H, echo_port), 5), "the echo server listens")

    bed.base = config(paths, bed.fe_port, echo_addr, filters)
    bed.variants = [config(paths, bed.fe_port, echo_addr, filters, big=(w, big_addrs))
                    for w in (1, 2)]
    bed.d = d = t.Daemon(bed.base, [(H, bed.fe_port), (H, bed.stats_port)],
                         name="latency").start()

    # One picture first: the load is real (200, a big SVG).
    t0 = time.perf_counter()
    with urllib.request.urlopen("http://%s:%d/timeline" % (H, bed.stats_port), timeout=30) as r:
        st, body, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
    t.log("  one GET /timeline: %s, %s, %d bytes in %.1f ms"
          % (st, ctype, len(body), (time.perf_counter() - t0) * 1000))
    t.require(st == 200 and b"<svg" in body[:4000] and len(body) > 100000,
              "GET /timeline: 200 with an SVG of more than 100 KB",
              "%s, %d bytes" % (st, len(body)))

    # The machine is shared: when a measurement misses a latency criterion
    # it is taken once more (LB_LATENCY_ATTEMPTS, default 2), and the
    # criteria are judged on the last one.  Every attempt is logged.
    allowed = attempts_allowed()
    n = 0
    while True:
        n += 1
        m = measure(bed, n)
        report(m, n)
        sanity(m, n, factor)
        crit = criteria(m, p99_ms, max_ms)
        missed = [c for c in crit if not c[0]]
        if not missed or n >= allowed or time.monotonic() - t_start > 40:
            break
        t.log("  attempt %d missed %d of %d latency criteria (below); measuring again"
              % (n, len(missed), len(crit)))
        for _, what, detail in missed:
            t.log("    missed: %s: %s" % (what, detail))
    for ok, what, detail in crit:
        t.check(ok, what + (" (attempt %d)" % n if n > 1 else ""), detail)
    stop_child(echo_p, 5)
    d.stop()


if __name__ == "__main__":
    t.main([test_latency], timeout=90)
