#!/usr/bin/env python3
"""The systemd unit etc/load-balancer.service (the Debian package's
load-balancer.service; load-balancer(8), SYSTEMD), without systemd as PID 1:

test_verify: `systemd-analyze verify --man=no` on the unit, with
  /usr/sbin/load-balancer replaced by LB_BIN (verify wants the programs to
  exist): exit 0 and not a word.  Type=notify, NotifyAccess=main,
  KillMode=mixed, a FileDescriptorStoreMax= (load-balancer(8), SYSTEMD:
  the listening sockets wait there across a restart) and a TimeoutStopSec
  above global.grace's default.  The man pages are not installed here
  (the package test verifies the installed unit with them).  The same
  check on a copy with a misspelt key and a bad KillMode must complain:
  the verify is not a no-op here.
test_execstart_caps (root): the unit's ExecStartPre, ExecStart and
  ExecReload lines run as systemd would run them, with
  CONFIG from the unit's Environment= and DAEMON_OPTS empty (as
  debian/load-balancer.default leaves it), under the unit's
  CapabilityBoundingSet and NoNewPrivileges (setpriv), for a configuration
  with user = "nobody" whose health log and state file directories belong
  to nobody (mode 0750, as the package makes /var/log/load-balancer and
  /var/lib/load-balancer for its user) and whose health log is nobody's
  already (mode 0640, as after a rotation):
  - ExecStartPre (-c) exits 0;
  - ExecStart starts, serves sessions, answers lbctl, runs as nobody;
  - SIGUSR1 after the log was renamed: the daemon, now nobody, makes the
    new file in its directory and the next event lands there;
  - lbctl drain writes the state file there;
  - ExecReload: the -c line exits 0 and SIGHUP reloads (a new weight);
  - SIGTERM (KillMode=mixed sends it to the daemon): exit 0;
  - the same ExecStart without CAP_DAC_OVERRIDE in the set cannot open
    the health log: exit 3, "Permission denied" (so the unit's comment is
    right that it needs it).
  Port 25 (CAP_NET_BIND_SERVICE) and systemd's namespaces (ProtectSystem=
  and the like) cannot be tried here.
systemd-analyze (package systemd) and setpriv (util-linux) are needed:
without them the test is skipped, or fails when CI=true."""

import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"
UNIT = os.path.join(t.SRCDIR, "etc", "load-balancer.service")


def need(prog):
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin:/bin"
    p = shutil.which(prog, path=path)
    if p is None:
        if os.environ.get("CI") == "true":
            t.require(False, "%s is installed (CI=true: the unit test must run)" % prog)
        raise t.Skip("%s is not installed" % prog)
    return p


def unit_text():
    with open(UNIT) as f:
        return f.read()


def service_values(text, key):
    """Every value of KEY= in [Service] (several lines: in order)."""
    out, section = [], None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            section = s
        elif section == "[Service]" and s.startswith(key + "="):
            out.append(s[len(key) + 1:])
    return out


def verify(analyze, path):
    p = subprocess.run([analyze, "verify", "--man=no", path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace").strip()


def test_verify():
    analyze = need("systemd-analyze")
    d = t.tempdir("lbtest-unit-")
    text = unit_text().replace("/usr/sbin/load-balancer", os.path.realpath(t.LB_BIN))
    path = os.path.join(d, "load-balancer.service")
    with open(path, "w") as f:
        f.write(text)
    rc, out = verify(analyze, path)
    t.check(rc == 0 and out == "", "systemd-analyze verify: exit 0, nothing said",
            "rc=%s %s" % (rc, out[:1000]))
    # What load-balancer(8), SYSTEMD says of the unit.
    for key, want in (("Type", ["notify"]), ("NotifyAccess", ["main"]),
                      ("KillMode", ["mixed"])):
        got = service_values(text, key)
        t.check(got == want, "%s=%s" % (key, want[0]), str(got))
    store = service_values(text, "FileDescriptorStoreMax")
    t.check(len(store) == 1 and store[0].isdigit() and int(store[0]) > 0,
            "FileDescriptorStoreMax= keeps the listening sockets across a restart", str(store))
    stop = service_values(text, "TimeoutStopSec")
    t.check(len(stop) == 1 and stop[0].isdigit() and int(stop[0]) > 10,
            "TimeoutStopSec (%s s) is above global.grace's default (10 s)"
            % (stop[0] if stop else "none"))
    bad = os.path.join(d, "bad", "load-balancer.service")
    os.mkdir(os.path.dirname(bad))
    with open(bad, "w") as f:
        f.write(text.replace("Type=notify", "Tpye=notify").replace("KillMode=mixed", "KillMode=x"))
    rc, out = verify(analyze, bad)
    ok = "Tpye" in out and "kill mode" in out
    t.check(ok, "... and it complains about a misspelt key and a bad value (rc=%s)" % rc,
            "" if ok else out[:500])


def caps_of(text):
    caps = service_values(text, "CapabilityBoundingSet")
    t.require(len(caps) == 1, "the unit has one CapabilityBoundingSet line", str(caps))
    return [c.lower().replace("cap_", "") for c in caps[0].split()]


def command(line, conf):
    """A unit Exec line as argv: ${CONFIG} is our file, $DAEMON_OPTS empty,
    the program LB_BIN."""
    line = line.replace("${CONFIG}", conf).replace("$DAEMON_OPTS", "")
    argv = shlex.split(line)
    if argv and argv[0] == "/usr/sbin/load-balancer":
        argv[0] = t.LB_BIN
    return argv


def test_execstart_caps():
    need("setpriv")
    if os.geteuid() != 0:
        raise t.Skip("needs root: the daemon starts as root and drops to nobody")
    if t.LB_WRAPPER:
        raise t.Skip("not under LB_WRAPPER: the unit's command line is run as it is")
    text = unit_text()
    t.check(service_values(text, "NoNewPrivileges") == ["yes"], "the unit sets NoNewPrivileges=yes")
    env = [v for v in service_values(text, "Environment") if v.startswith("CONFIG=")]
    t.check(env == ["CONFIG=/etc/load-balancer.conf"],
            "the unit's default CONFIG is /etc/load-balancer.conf", str(env))
    caps = caps_of(text)
    t.log("  CapabilityBoundingSet: %s" % " ".join(caps))
    for c in ("net_bind_service", "setuid", "setgid", "dac_override"):
        t.check(c in caps, "the bounding set has CAP_%s" % c.upper())
    nobody = pwd.getpwnam("nobody")

    run = t.tempdir("lbtest-unit-run-")
    os.chmod(run, 0o755)
    logdir = os.path.join(run, "log")
    libdir = os.path.join(run, "lib")
    for dd in (logdir, libdir):
        os.mkdir(dd, 0o750)
        os.chown(dd, nobody.pw_uid, nobody.pw_gid)
    log = os.path.join(logdir, "health.log")
    with open(log, "w") as f:
        f.write("")
    os.chmod(log, 0o640)
    os.chown(log, nobody.pw_uid, nobody.pw_gid)
    bk = t.Backend(t.smtp_handler("s1"), name="s1")
    port = t.free_port()
    sock = os.path.join(run, "lb.sock")
    conf = os.path.join(run, "lb.conf")
    with open(conf, "w") as f:
        f.write(t.make_config(t.addr(H, port), [("s1", bk.address, {"weight": 10})],
                              glob={"user": "nobody", "control_socket": sock,
                                    "stats_listen": "",
                                    "health_log": log,
                                    "state_file": os.path.join(libdir, "state")}))
    pre = service_values(text, "ExecStartPre")
    t.require(len(pre) == 1, "one ExecStartPre", str(pre))
    p = subprocess.run(command(pre[0], conf), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    t.check(p.returncode == 0, "ExecStartPre (%s): exit 0" % pre[0],
            "" if p.returncode == 0 else p.stdout.decode(errors="replace").strip())
    start = service_values(text, "ExecStart")
    t.require(len(start) == 1, "one ExecStart", str(start))
    argv = command(start[0], conf)
    t.require("-F" in argv, "ExecStart runs the daemon in the foreground (-F)", start[0])
    # The pidfile: the test's, not /run/load-balancer.pid.
    i = argv.index("-p")
    argv[i + 1] = os.path.join(run, "lb.pid")

    def run_unit(capset, name):
        errpath = os.path.join(run, name + ".stderr")
        err = open(errpath, "wb")
        bset = "-all," + ",".join("+" + c for c in capset)
        p = subprocess.Popen(["setpriv", "--bounding-set", bset,
                              "--no-new-privs", "--inh-caps=-all"] + argv,
                             stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        t.register_proc(p, "load-balancer (unit %s)" % name)
        err.close()
        return p, errpath

    def stderr_of(path):
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")

    p, errpath = run_unit(caps, "caps")
    up = t.wait_until(lambda: p.poll() is not None or t.is_listening(H, port), 10)
    ok = p.poll() is None and up
    t.require(ok, "ExecStart under the unit's capabilities: serves",
              "" if ok else stderr_of(errpath)[-1500:])
    with open("/proc/%d/status" % p.pid) as f:
        st = f.read()
    uid = re.search(r"^Uid:\s+(\d+)", st, re.M).group(1)
    t.check(int(uid) == nobody.pw_uid, "runs as nobody (uid %s)" % uid)
    t.check(t.session_server(H, port) == "s1", "a session is relayed to s1")
    rc, out, err = t.run_lbctl(["-s", sock, "show", "servers"])
    t.check(rc == 0 and "s1" in out, "lbctl answers", err)

    # A rotation: the file renamed, SIGUSR1, the next event in a new
    # file that the daemon (nobody) makes in its own directory.
    os.rename(log, log + ".1")
    os.kill(p.pid, signal.SIGUSR1)
    t.wait_until(lambda: "health log reopened" in stderr_of(errpath), 5)
    rc, out, err = t.run_lbctl(["-s", sock, "drain", "be/s1"])
    t.check(rc == 0, "lbctl drain be/s1", "" if rc == 0 else out + err)
    got = t.wait_until(lambda: os.path.exists(log) and "event=drain" in open(log).read(), 5)
    t.check(got, "after SIGUSR1 the daemon (nobody) made a new health log; the drain is there",
            "" if got else stderr_of(errpath)[-800:])
    if os.path.exists(log):
        st = os.stat(log)
        t.check(st.st_uid == nobody.pw_uid and st.st_mode & 0o777 == 0o640,
                "the new health log is nobody's, mode 0640",
                "uid %d mode %o" % (st.st_uid, st.st_mode & 0o777))
    state = os.path.join(libdir, "state")
    t.check(t.wait_until(lambda: os.path.exists(state) and "drain" in open(state).read(), 5),
            "the drain is in the state file, in nobody's directory")

    # ExecReload: the check, then SIGHUP ($MAINPID).
    reload = service_values(text, "ExecReload")
    t.require(len(reload) == 2 and reload[1] == "/bin/kill -HUP $MAINPID",
              "ExecReload: the check, then /bin/kill -HUP $MAINPID", str(reload))
    with open(conf) as f:
        ctext = f.read()
    with open(conf, "w") as f:
        f.write(ctext.replace("weight = 10;", "weight = 7;"))
    r = subprocess.run(command(reload[0], conf), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    t.check(r.returncode == 0, "ExecReload's check (%s): exit 0" % reload[0],
            "" if r.returncode == 0 else r.stdout.decode(errors="replace").strip())
    r = subprocess.run(command(reload[1].replace("$MAINPID", str(p.pid)), conf),
                       stdin=subprocess.DEVNULL, timeout=30)
    t.check(r.returncode == 0, "ExecReload's kill -HUP: exit 0")
    rows = []

    def weight7():
        rc, out, _ = t.run_lbctl(["-s", sock, "show", "servers"])
        rows[:] = t.parse_table(out) if rc == 0 else []
        return any(r.get("SERVER") == "s1" and r.get("WEIGHT") == "7" for r in rows)
    ok = t.wait_until(weight7, 5, 0.1)
    t.check(ok, "the reload applied weight 7", "" if ok else str(rows))

    rc = t.kill_proc(p, signal.SIGTERM, 10)
    t.check(rc == 0, "SIGTERM: exit 0", "status %s" % rc)
    err = stderr_of(errpath)
    m = re.search(r"ERROR: (Address|Leak)Sanitizer.*|runtime error:.*|ThreadSanitizer.*", err)
    t.check(m is None, "no sanitizer report", err[m.start():m.start() + 3000] if m else "")

    # Without CAP_DAC_OVERRIDE root cannot open nobody's files.
    p, errpath = run_unit([c for c in caps if c != "dac_override"], "nodac")
    try:
        rc = p.wait(10)
    except subprocess.TimeoutExpired:
        rc = t.kill_proc(p, signal.SIGKILL)
    err = stderr_of(errpath)
    denied = [ln for ln in err.splitlines() if "Permission denied" in ln]
    t.check(rc == 3 and denied,
            "without CAP_DAC_OVERRIDE: exit 3, Permission denied (the unit needs it)",
            "rc=%s %s" % (rc, denied[0] if denied else err.strip()[-300:]))


if __name__ == "__main__":
    t.main([test_verify, test_execstart_caps], timeout=90)
