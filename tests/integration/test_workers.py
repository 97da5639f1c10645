#!/usr/bin/env python3
"""global.workers (load-balancer.conf(5), GLOBAL): several event-loop
threads sharing one set of servers.

- workers = 4: the main thread (worker 0) and three lb-worker-N threads
  (/proc/PID/task), `lbctl show info` says so, and a 20000-message smtp-source run through three
  smtp-sinks with weights 3:1:1 is delivered in full with the exact
  round-robin split (the choice is shared, not per thread); every worker
  served sessions (/metrics per worker) and the per-worker totals add up.
- workers = 0 is one per CPU the process may run on: pinned to one CPU
  it runs no extra thread at all; unpinned, one per CPU of its affinity.
- Server maxconn and leastconn hold across threads: three servers with
  maxconn 3 under 40 concurrent sessions never see a fourth session
  (sessions_max), the rest wait in the shared queue and are all served.
- Operations reach sessions of every thread: `lbctl shutdown sessions`
  closes the server's sessions whatever thread they run on and leaves the
  others alone; a reload under load loses nothing; SIGTERM lets sessions
  on every thread finish and refuses new ones; SIGINT closes them all.
"""

import os
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"


def threads_of(d):
    """The daemon's own threads: the main one and its lb-worker-N (not
    a sanitizer's helper thread)."""
    n = 0
    for tid in os.listdir("/proc/%d/task" % d.proc.pid):
        try:
            with open("/proc/%d/task/%s/comm" % (d.proc.pid, tid)) as f:
                comm = f.read().strip()
        except OSError:
            continue
        n += comm.startswith("lb-worker-") or tid == str(d.proc.pid)
    return n


def worker_names(d):
    out = []
    for tid in os.listdir("/proc/%d/task" % d.proc.pid):
        with open("/proc/%d/task/%s/comm" % (d.proc.pid, tid)) as f:
            out.append(f.read().strip())
    return sorted(x for x in out if x.startswith("lb-worker-"))


def metrics(d, port):
    s = socket.create_connection((H, port), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    return data.decode(errors="replace")


def metric_values(text, name):
    """{labels: value} of one metric family."""
    out = {}
    for m in re.finditer(r"^%s(\{[^}]*\})? (\S+)$" % re.escape(name), text, re.M):
        out[m.group(1) or ""] = float(m.group(2))
    return out


def info(d):
    rc, out, err = d.ctl("show info")
    t.require(rc == 0, "lbctl show info answers", err)
    return dict(l.split(": ", 1) for l in out.splitlines() if ": " in l)


def start(servers, workers, balance="roundrobin", name="lb", be=None, glob=None,
          preexec_fn=None):
    port, sport = t.free_port(), t.free_port()
    g = {"maxconn": 2000, "workers": workers, "stats_listen": "%s:%d" % (H, sport)}
    g.update(glob or {})
    text = t.make_config("%s:%d" % (H, port), servers, balance=balance, glob=g,
                         be=be, fe={"timeout_client": "30s"})
    d = t.Daemon(text, [(H, port)], name=name)
    d.start(preexec_fn=preexec_fn)
    return d, port, sport


def test_four_workers_20000():
    sinks = [t.SmtpSink().start() for _ in range(3)]
    d, port, sport = start([("A", sinks[0].address, {"weight": 3}), ("B", sinks[1].address),
                            ("C", sinks[2].address)], 4)
    n = threads_of(d)
    t.log("  threads in /proc/%d/task: %d" % (d.proc.pid, n))
    t.check(n == 4, "workers = 4: the main thread (worker 0) and three more", str(n))
    t.check(worker_names(d) == ["lb-worker-%d" % i for i in range(1, 4)],
            "the threads are named lb-worker-1..3 (top -H)", str(worker_names(d)))
    t.check(info(d).get("workers") == "4", "lbctl show info: workers: 4", str(info(d)))
    r = t.smtp_source("%s:%d" % (H, port), 50, 20000, 4096)
    t.log("  %s: exit %s, %d delivered in %.1fs" % (r["cmd"], r["rc"], r["delivered"], r["elapsed"]))
    t.check(r["rc"] == 0, "smtp-source exits 0", "exit %s: %s" % (r["rc"], r["stderr"][:300]))
    t.check(r["delivered"] == 20000, "20000 DATA completed", str(r["delivered"]))
    t.wait_until(lambda: sum(s.messages() for s in sinks) >= 20000, 5)
    counts = [s.messages() for s in sinks]
    t.log("  sinks A/B/C = %d / %d / %d (ideal 12000 / 4000 / 4000)" % tuple(counts))
    t.check(sum(counts) == 20000, "the sinks received 20000 messages", str(sum(counts)))
    for c, want, nm in zip(counts, (12000, 4000, 4000), "ABC"):
        t.check(abs(c - want) <= 0.02 * want, "server %s got %d, within 2%% of %d" % (nm, c, want))
    sess = d.wait_sessions(20000, timeout=10)
    t.check(len(sess) == 20000, "20000 session lines", str(len(sess)))
    bad = [s for s in sess if s.get("end") not in ("client_close", "server_close")]
    t.check(not bad, "every session ended normally", str(bad[:3]))
    m = metrics(d, sport)
    per = metric_values(m, "load_balancer_worker_sessions_total")
    t.log("  sessions per worker: %s" % sorted(per.items()))
    t.check(len(per) == 4, "/metrics has a total per worker", str(per))
    t.check(sum(per.values()) == 20000, "the per-worker totals add up to 20000", str(per))
    t.check(all(v >= 1000 for v in per.values()), "every worker served a share (>= 1000)", str(per))
    cur = metric_values(m, "load_balancer_worker_sessions_current")
    t.check(sum(cur.values()) == 0, "no session left open on any worker", str(cur))
    d.stop()


def test_zero_is_one_per_cpu():
    sink = t.SmtpSink().start()
    cpus = os.sched_getaffinity(0)
    one = min(cpus)
    d, port, _ = start([("A", sink.address)], 0, name="pinned",
                       preexec_fn=lambda: os.sched_setaffinity(0, {one}))
    n = threads_of(d)
    t.check(n == 1 and info(d).get("workers") == "1",
            "workers = 0 pinned to one CPU: one thread, workers: 1", "%d threads, %s" % (n, info(d)))
    r = t.smtp_source("%s:%d" % (H, port), 5, 200, 1000)
    t.check(r["rc"] == 0 and r["delivered"] == 200, "200 messages through the pinned daemon",
            "rc %s delivered %d" % (r["rc"], r["delivered"]))
    d.stop()
    d, port, _ = start([("A", sink.address)], 0, name="free")
    want = len(cpus)
    n = threads_of(d)
    t.log("  CPUs in the affinity mask: %d; threads: %d" % (want, n))
    t.check(info(d).get("workers") == str(want), "workers = 0: one per CPU (%d)" % want, str(info(d)))
    t.check(n == want, "thread count matches", str(n))
    d.stop()


def test_limits_across_threads():
    sinks = [t.SmtpSink().start() for _ in range(3)]
    d, port, sport = start([(n, s.address, {"maxconn": 3}) for n, s in zip("ABC", sinks)], 4,
                           balance="leastconn", be={"timeout_queue": "30s"})
    r = t.smtp_source("%s:%d" % (H, port), 40, 4000, 2000)
    t.log("  %s: exit %s, %d delivered in %.1fs" % (r["cmd"], r["rc"], r["delivered"], r["elapsed"]))
    t.check(r["rc"] == 0 and r["delivered"] == 4000, "40 concurrent sessions, 4000 messages, all delivered",
            "rc %s delivered %d: %s" % (r["rc"], r["delivered"], r["stderr"][:300]))
    m = metrics(d, sport)
    mx = metric_values(m, "load_balancer_server_sessions_max")
    t.log("  sessions_max per server: %s" % sorted(mx.values()))
    t.check(len(mx) == 3 and all(v == 3 for v in mx.values()),
            "no server ever had more than its maxconn 3 (and each reached it)", str(mx))
    sess = d.wait_sessions(4000, timeout=10)
    queued = [s for s in sess if s.get("queue_ms", 0) > 0]
    t.log("  %d of %d sessions waited in the queue" % (len(queued), len(sess)))
    t.check(len(queued) > 0, "sessions waited in the shared queue")
    bad = [s for s in sess if s.get("end") not in ("client_close", "server_close")]
    t.check(not bad, "every session ended normally (none refused)", str(bad[:3]))
    per = metric_values(m, "load_balancer_worker_sessions_total")
    t.check(sum(1 for v in per.values() if v > 0) == 4, "all four workers took part", str(per))
    d.stop()


def test_maxconn_across_threads():
    """Global maxconn pauses the main thread's listener; a session ending
    on any worker thread resumes it."""
    b = t.Backend(t.smtp_handler("A"), name="A")
    d, port, sport = start([("A", b.address)], 4, glob={"maxconn": 4})
    held = [t.client_session(H, port, hold=True)[2] for _ in range(4)]
    per = metric_values(metrics(d, sport), "load_balancer_worker_sessions_current")
    t.check(sorted(per.values()) == [1, 1, 1, 1], "4 sessions, one on each worker", str(per))
    extra = t.Client(H, port, timeout=5)
    t.check(extra.nothing_for(0.5), "at maxconn 4 the 5th client waits in the backlog (no banner)")
    # The hand-out goes round from the main thread (worker 0) when all
    # have as many: the 4th session runs on lb-worker-3.
    last = held.pop()
    last.cmd("QUIT")
    last.close()
    t0 = time.monotonic()
    bnr = extra.banner(timeout=3)
    t.check(bnr is not None and bnr.startswith(b"220"),
            "a session ending on a worker thread lets the waiting client in", repr(bnr))
    t.log("  banner %.3f s after the QUIT" % (time.monotonic() - t0))
    extra.close()
    for c in held:
        c.close()
    d.stop()


def test_shutdown_sessions_and_reload():
    b = {n: t.Backend(t.smtp_handler(n), name=n) for n in "AB"}
    d, port, sport = start([("A", b["A"].address), ("B", b["B"].address)], 4)
    held = []
    for _ in range(16):
        n, _b, c = t.client_session(H, port, hold=True)
        held.append((n, c))
    ona = [c for n, c in held if n == "A"]
    onb = [c for n, c in held if n == "B"]
    per = metric_values(metrics(d, sport), "load_balancer_worker_sessions_current")
    t.log("  16 held sessions, per worker: %s" % sorted(per.values()))
    t.require(len(ona) == 8 and len(onb) == 8, "8 held on A, 8 on B", str([n for n, _ in held]))
    t.check(sum(1 for v in per.values() if v > 0) == 4, "held sessions spread over the four workers",
            str(per))
    rc, out, err = d.ctl("shutdown sessions be/A")
    t.check(rc == 0 and "closed 8 sessions" in out, "lbctl shutdown sessions be/A: closed 8", out + err)
    for c in ona:
        data, eof = c.read_to_eof(3)
        t.check(eof, "a client of A sees its connection closed", repr(data))
    ends = [d.session_for(c.local_port, 3) for c in ona]
    t.check(all(s is not None and s.get("end") == "shutdown" for s in ends),
            "their session lines say end=shutdown", str(ends[:2]))
    # A reload while sessions on B are open: they go on.
    rc, out, err = d.ctl("reload")
    t.check(rc == 0, "reload with sessions open on every worker", out + err)
    for c in onb:
        r = c.cmd("NOOP")
        t.check(r is not None and r.startswith(b"250"), "a session on B still works after both", repr(r))
        c.close()
    # Reloads under load lose nothing.
    res = {}

    def load():
        res.update(t.smtp_source("%s:%d" % (H, port), 20, 1500, 3000))
    th = threading.Thread(target=load)
    th.start()
    nreload = 0
    while th.is_alive() and nreload < 8:
        time.sleep(0.15)
        rc, out, err = d.ctl("reload")
        nreload += rc == 0
    th.join(60)
    t.log("  %d reloads under load; smtp-source exit %s, %d delivered"
          % (nreload, res.get("rc"), res.get("delivered", 0)))
    t.check(nreload >= 3, "at least 3 reloads happened during the load", str(nreload))
    t.check(res.get("rc") == 0 and res.get("delivered") == 1500, "1500 messages delivered across the reloads",
            str(res))
    d.stop()


def test_stop():
    b = t.Backend(t.smtp_handler("A"), name="A")
    d, port, _ = start([("A", b.address)], 4, glob={"grace": "10s"})
    held = [t.client_session(H, port, hold=True)[2] for _ in range(8)]
    d.signal(signal.SIGTERM)
    t.check(t.wait_until(lambda: not t.is_listening(H, port), 3), "SIGTERM: the listener closes")
    for c in held:
        r = c.cmd("NOOP")
        t.check(r is not None and r.startswith(b"250"), "a held session works after SIGTERM", repr(r))
    t.check(d.alive(), "the daemon waits for its sessions")
    for c in held:
        c.cmd("QUIT")
        c.close()
    t.check(t.wait_until(lambda: not d.alive(), 5), "it exits once the last session on any worker ended")
    t.check(d.proc.returncode == 0, "exit 0", str(d.proc.returncode))
    d.stop()

    d, port, _ = start([("A", b.address)], 4, name="lb-int")
    held = [t.client_session(H, port, hold=True)[2] for _ in range(8)]
    t0 = time.monotonic()
    d.signal(signal.SIGINT)
    eofs = 0
    for c in held:
        _data, eof = c.read_to_eof(3)
        eofs += bool(eof)
    t.check(eofs == 8, "SIGINT: all 8 sessions closed", str(eofs))
    t.check(t.wait_until(lambda: not d.alive(), 5), "and the daemon exits")
    t.log("  SIGINT to exit: %.2fs" % (time.monotonic() - t0))
    t.check(d.proc.returncode == 0, "exit 0", str(d.proc.returncode))
    d.stop()


if __name__ == "__main__":
    t.main([test_four_workers_20000, test_zero_is_one_per_cpu, test_limits_across_threads,
            test_maxconn_across_threads, test_shutdown_sessions_and_reload, test_stop],
           timeout=150)
