#!/usr/bin/env python3
"""logrotate and the health log (load-balancer(8), SIGNALS: SIGUSR1 reopens
the health log; load-balancer.conf(5), LOGS).  The file tested is
etc/load-balancer.logrotate itself, the one the Debian package installs as
/etc/logrotate.d/load-balancer: its paths are replaced by the test's
(/var/log/load-balancer/ by a temporary directory, /run/load-balancer.pid by
the daemon's pidfile, /usr/sbin/load-balancer by LB_BIN, the `create` owner
by the user running the test), every directive is kept.

test_rotate_under_events: the daemon runs with its health log in a
  temporary directory; a thread numbers health events and makes them one
  after the other on the control socket (`set weight be/sK W`: event=weight,
  event n is server s(n mod 16) with weight 1 + n div 16), about 1000 a
  second,
  while `logrotate -f` runs 6 times.  After each run: logrotate exits 0,
  health.log.1 is the old file, and the next event lands in the new
  health.log, mode 0640 (the daemon reopened it on the postrotate's
  SIGUSR1; its log says so each time).  At the end, the files read oldest
  first (health.log.6.gz ... health.log.2.gz, health.log.1, health.log)
  hold exactly the acknowledged events, each once, in order: none lost,
  none doubled; the older ones are gzip files, health.log.1 is not
  (delaycompress).
test_stale_pidfile: a pidfile naming a live process that is not the
  daemon (a sleep): the postrotate sends it nothing (start-stop-daemon
  --exec) and logrotate still exits 0; the sleep is alive afterwards.

logrotate and start-stop-daemon (the postrotate's) are needed: without
them the test is skipped, or fails when CI=true."""

import gzip
import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"
NSERVERS = 16
ROTATIONS = 6
PACKAGED = os.path.join(t.SRCDIR, "etc", "load-balancer.logrotate")
LOGROTATE = "logrotate"


def need_tools():
    """logrotate and start-stop-daemon, or skip (fail under CI=true)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    for what in ("logrotate", "start-stop-daemon"):
        if shutil.which(what, path=path) is None:
            if os.environ.get("CI") == "true":
                t.require(False, "%s is installed (CI=true: the logrotate test must run)" % what)
            raise t.Skip("%s is not installed" % what)
    if t.LB_WRAPPER:
        raise t.Skip("under LB_WRAPPER the daemon's /proc/PID/exe is not LB_BIN: "
                     "the postrotate (start-stop-daemon --exec) would not signal it")


def packaged_config(logdir, pidfile):
    """etc/load-balancer.logrotate with the test's paths and owner."""
    with open(PACKAGED) as f:
        text = f.read()
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    subs = [
        ("/var/log/load-balancer/", logdir + "/"),
        ("/run/load-balancer.pid", pidfile),
        ("/usr/sbin/load-balancer", os.path.realpath(t.LB_BIN)),
    ]
    for old, new in subs:
        t.require(old in text, "the packaged logrotate file names %s" % old)
        text = text.replace(old, new)
    text, n = re.subn(r"(?m)^(\s*create\s+0?[0-7]{3,4})\s+\S+\s+\S+\s*$",
                      r"\1 %s %s" % (user, group), text)
    t.require(n == 1, "the packaged logrotate file has one `create MODE USER GROUP` line")
    return text


def run_logrotate(conf, state, timeout=30):
    env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    p = subprocess.run([LOGROTATE, "-f", "-s", state, conf], stdin=subprocess.DEVNULL, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace")


def weight_events(lines):
    """(server index, weight) of every event=weight line of our servers."""
    out = []
    for line in lines:
        e = t.parse_health_line(line)
        if e is None or e.get("event") != "weight":
            continue
        m = re.fullmatch(r"s(\d+)", str(e.get("server", "")))
        if m:
            out.append((int(m.group(1)), int(e.get("weight", -1))))
    return out


def read_lines(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read().decode(errors="replace").splitlines()


def event_of(n):
    """Event number n: (server, weight); weights 1..255 never repeat the
    configured 256, so every command changes the weight and logs once."""
    return n % NSERVERS, 1 + n // NSERVERS


def start_daemon(logdir):
    port = t.free_port()
    servers = [("s%d" % i, "127.0.0.1:9", {"weight": 256}) for i in range(NSERVERS)]
    text = t.make_config(t.addr(H, port), servers,
                         glob={"health_log": os.path.join(logdir, "health.log")})
    return t.Daemon(text, [(H, port)], name="logrotate").start()


def test_rotate_under_events():
    need_tools()
    logdir = t.tempdir("lbtest-logrotate-")
    d = start_daemon(logdir)
    log = os.path.join(logdir, "health.log")
    t.require(d.health_log == log, "the daemon's health log is %s" % log, d.health_log)
    conf = os.path.join(d.dir, "logrotate.conf")
    with open(conf, "w") as f:
        f.write(packaged_config(logdir, d.pidfile))
    state = os.path.join(d.dir, "logrotate.state")

    acked = []          # event numbers acknowledged with "ok:", in order
    errors = []
    stop = threading.Event()
    limit = NSERVERS * 255

    def writer():
        for n in range(limit):
            if stop.is_set():
                return
            s, w = event_of(n)
            try:
                got, _ = t.ctl_raw(d.control_socket, b"set weight be/s%d %d\n" % (s, w))
            except OSError as e:
                errors.append("event %d: %s" % (n, e))
                return
            if not got.startswith(b"ok:"):
                errors.append("event %d: %r" % (n, got[:200]))
                return
            acked.append(n)
            time.sleep(0.0005)

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    t.require(t.wait_until(lambda: len(acked) >= 20, 10), "events flow (20 acknowledged)",
              str(errors))
    new_file_ok = 0
    for i in range(1, ROTATIONS + 1):
        before = len(acked)
        rc, out = run_logrotate(conf, state)
        t.check(rc == 0 and out.strip() == "",
                "rotation %d: logrotate -f exits 0, says nothing" % i,
                "rc=%s %s" % (rc, out.strip()[:500]))
        t.check(os.path.exists(log + ".1"), "rotation %d: health.log.1 is the old file" % i)
        # The postrotate's SIGUSR1 is handled asynchronously: the new
        # file gets an event once the daemon reopened it.
        got = t.wait_until(
            lambda: weight_events(read_lines(log)) if os.path.exists(log) else [], 5.0)
        if t.check(got, "rotation %d: the next events land in the new health.log" % i,
                   "%d events acknowledged since the rotation" % (len(acked) - before)):
            new_file_ok += 1
        mode = os.stat(log).st_mode & 0o777 if os.path.exists(log) else None
        t.check(mode == 0o640, "rotation %d: the new health.log has mode 0640 (create)" % i,
                oct(mode) if mode is not None else "missing")
        time.sleep(0.2)
    # Events keep flowing into the last file for a moment.
    time.sleep(0.3)
    t.check(th.is_alive(), "events were still flowing after the last rotation",
            "the writer ran out of event numbers (%d)" % limit)
    stop.set()
    th.join(10)
    t.require(not th.is_alive(), "the event writer stopped")
    t.check(not errors, "every command was acknowledged", "; ".join(errors[:3]))
    reopened = t.wait_until(
        lambda: d.stderr().count("SIGUSR1: health log reopened") >= ROTATIONS, 5.0)
    t.check(reopened, "the daemon reopened the health log %d times (its log says so)" % ROTATIONS,
            "%d times" % d.stderr().count("SIGUSR1: health log reopened"))

    files = [log + ".%d.gz" % k for k in range(ROTATIONS, 1, -1)] + [log + ".1", log]
    present = [f for f in files if os.path.exists(f)]
    listing = sorted(os.listdir(logdir))
    t.check(present == files, "after %d rotations: health.log.%d.gz ... .2.gz, health.log.1, "
            "health.log" % (ROTATIONS, ROTATIONS), " ".join(listing))
    t.check(len(listing) == len(files), "nothing else in the log directory", " ".join(listing))
    seq = []
    per_file = []
    for f in present:
        try:
            evs = weight_events(read_lines(f))
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            t.check(False, "%s can be read" % os.path.basename(f), str(e))
            evs = []
        per_file.append("%s: %d" % (os.path.basename(f), len(evs)))
        seq.extend(evs)
    t.log("  %d events acknowledged; per file: %s" % (len(acked), ", ".join(per_file)))
    want = [event_of(n) for n in acked]
    lost = set(want) - set(seq)
    extra = [e for e in seq if e not in set(want)]
    doubled = len(seq) - len(set(seq))
    t.check(len(acked) >= 100, "a real stream of events (%d)" % len(acked))
    t.check(not lost, "no event lost across %d rotations" % ROTATIONS,
            "%d lost, e.g. %s" % (len(lost), sorted(lost)[:5]))
    t.check(doubled == 0, "no event written twice", "%d doubled" % doubled)
    t.check(not extra, "no event that was not asked for", str(extra[:5]))
    t.check(seq == want, "the files, oldest first, hold the events in order")
    t.check(all(len(read_lines(f)) > 0 for f in present[:-1]),
            "every rotated file holds events (notifempty never had to skip)")
    with open(log + ".1", "rb") as f:
        head = f.read(2)
    t.check(head != b"\x1f\x8b", "health.log.1 is not compressed (delaycompress)")
    d.stop()


def test_stale_pidfile():
    need_tools()
    logdir = t.tempdir("lbtest-logrotate-stale-")
    log = os.path.join(logdir, "health.log")
    with open(log, "w") as f:
        f.write("2026-01-01T00:00:00.000Z event=start version=x pid=1 backends=0 servers=0\n")
    sleeper = subprocess.Popen(["sleep", "30"])
    t.register_proc(sleeper, "sleep")
    pidfile = os.path.join(logdir, "stale.pid")
    with open(pidfile, "w") as f:
        f.write("%d\n" % sleeper.pid)
    conf = os.path.join(logdir, "logrotate.conf")
    with open(conf, "w") as f:
        f.write(packaged_config(logdir, pidfile))
    rc, out = run_logrotate(conf, os.path.join(logdir, "state"))
    t.check(rc == 0, "logrotate -f with a pidfile naming a sleep: exit 0", out.strip()[:500])
    t.check(os.path.exists(log + ".1") and os.path.exists(log), "the log was rotated")
    time.sleep(0.2)
    t.check(sleeper.poll() is None,
            "the process in the pidfile, not the daemon, got no signal (still alive)",
            "exit %s" % sleeper.poll())
    t.kill_proc(sleeper, signal.SIGTERM)


if __name__ == "__main__":
    t.main([test_rotate_under_events, test_stale_pidfile], timeout=90)
