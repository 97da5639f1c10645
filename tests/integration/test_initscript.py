#!/usr/bin/env python3
"""The init script (load-balancer(8), SIGNALS and FILES; issue 5), run
against a `make install` into a temporary prefix: start, status, a second
start, reload, configtest on a broken file, restart refusing it, restart,
stop, status, stale pidfiles, make uninstall.  Two decoys whose names and
command lines say "load-balancer" (a copy of sleep called load-balancer, and
a sleep whose command line is the daemon's own) must survive every command:
the script finds the daemon by pidfile and executable, never by name.

The build directory is the one of LB_BIN; `make install prefix=TMP
initdir=TMP/etc/init.d` runs there."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"
BUILDDIR = os.path.dirname(os.path.abspath(t.LB_BIN))
SCRIPT_TIMEOUT = 60     # any one init-script command (stop waits up to 10 + 5 s)

CONFIG_TEXT = """global = {
  grace = "2s";
  control_socket = "%(run)s/lb.sock";
  health_log = "%(run)s/health.log";
  log = { syslog = false; };
};
frontends = ( { name = "fe"; bind = "%(bind)s"; backend = "be"; } );
backends = ( { name = "be"; timeout_server = "10m";
  servers = ( { name = "s1"; address = "%(server)s"; } ); } );
"""
BROKEN_LINE = 2         # "no_such_key" goes on the grace line


def make(args, timeout=180):
    """make -C BUILDDIR ARGS, without the calling make's flags (its
    jobserver descriptors are not passed on)."""
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "DESTDIR"):
        env.pop(k, None)
    p = subprocess.run(["make", "-s", "-C", BUILDDIR] + args, env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace")




class Install:
    def __init__(self):
        self.top = t.tempdir("lbtest-init-")
        os.chmod(self.top, 0o755)
        self.prefix = os.path.join(self.top, "inst")
        self.initdir = os.path.join(self.prefix, "etc", "init.d")
        self.script = os.path.join(self.initdir, "load-balancer")
        self.daemon = os.path.join(self.prefix, "sbin", "load-balancer")
        self.example = os.path.join(self.prefix, "etc", "load-balancer.conf")
        self.run = os.path.join(self.top, "run")
        os.mkdir(self.run)
        self.conf = os.path.join(self.top, "lb.conf")
        self.pidfile = os.path.join(self.run, "load-balancer.pid")
        self.defaults = os.path.join(self.top, "default-load-balancer")
        with open(self.defaults, "w") as f:
            f.write("# test settings\nCONFIG=%s\nPIDFILE=%s\nSTOP_TIMEOUT=10\n"
                    % (self.conf, self.pidfile))
        self.pids = set()   # every daemon pid seen, stopped at the end
        t.add_cleanup(self.kill_daemons)

    def make_args(self):
        return ["prefix=" + self.prefix, "initdir=" + self.initdir]

    def kill_daemons(self):
        """Stop by PID every daemon this test saw that still runs the
        installed program (SIGTERM, then SIGKILL)."""
        t.stop_pids(self.pids, self.daemon)

    def daemons(self):
        """Pids of the processes running the installed program."""
        real = os.path.realpath(self.daemon)
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                e = t.exe_of(int(d))
                if e in (self.daemon, real) and t.pid_alive(int(d)):
                    out.append(int(d))
        self.pids.update(out)
        return out

    def pid(self):
        pid = t.read_pidfile(self.pidfile)
        if pid is not None:
            self.pids.add(pid)
        return pid

    def sh(self, cmd, script=None, timeout=SCRIPT_TIMEOUT):
        """Run the init script (executed directly: mode and #! are part of
        the test) with LB_DEFAULTS; returns (rc, stdout, stderr)."""
        env = dict(os.environ, LB_DEFAULTS=self.defaults)
        t0 = time.monotonic()
        p = subprocess.Popen([script or self.script, cmd], env=env, cwd=self.top,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        t.register_proc(p, "init script " + cmd)
        try:
            out, err = p.communicate(timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            t.kill_proc(p, signal.SIGKILL)
            out, err = p.communicate()
            rc = None
        out, err = out.decode(errors="replace"), err.decode(errors="replace")
        t.log("  $ %s %s  -> exit %s (%.2fs)" % (os.path.basename(script or self.script),
                                                 cmd, rc, time.monotonic() - t0))
        for line in (out + err).splitlines():
            t.log("  | " + line)
        self.daemons()
        return rc, out, err


def start_decoys(inst):
    """Two processes that a stop by name would hit: a copy of sleep named
    load-balancer, and a sleep whose command line is the daemon's own."""
    sleep = shutil.which("sleep") or "/bin/sleep"
    ddir = os.path.join(inst.top, "decoy")
    os.mkdir(ddir)
    named = os.path.join(ddir, "load-balancer")
    shutil.copy(sleep, named)
    argv0 = "%s -f %s -p %s" % (inst.daemon, inst.conf, inst.pidfile)
    decoys = []
    for args, exe in (([named, "600"], named), ([argv0, "600"], sleep)):
        p = subprocess.Popen(args, executable=exe, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t.register_proc(p, "decoy")
        decoys.append(p)
    time.sleep(0.1)
    with open("/proc/%d/comm" % decoys[0].pid) as f:
        comm = f.read().strip()
    with open("/proc/%d/cmdline" % decoys[1].pid, "rb") as f:
        cmdline = f.read().replace(b"\0", b" ").decode()
    t.require(comm == "load-balancer" and all(p.poll() is None for p in decoys),
              "decoy 1 runs with the name load-balancer", comm)
    t.require(argv0 in cmdline, "decoy 2 runs with the daemon's command line", cmdline)
    return decoys


def test_initscript():
    if not os.path.exists(os.path.join(BUILDDIR, "Makefile")):
        raise t.Skip("no Makefile beside LB_BIN (%s): nothing to install" % BUILDDIR)
    if not shutil.which("make"):
        raise t.Skip("make is not installed")
    if not shutil.which("start-stop-daemon", path="/sbin:/usr/sbin:/bin:/usr/bin"):
        raise t.Skip("start-stop-daemon (dpkg) is not installed")
    inst = Install()

    # ---- make install into a temporary prefix
    t0 = time.monotonic()
    rc, out = make(["install"] + inst.make_args())
    t.require(rc == 0, "make install prefix=TMP initdir=TMP/etc/init.d",
              "%.1fs" % (time.monotonic() - t0) if rc == 0 else out[-3000:])
    for f in (inst.daemon, os.path.join(inst.prefix, "sbin", "lbctl"), inst.script):
        t.check(os.path.isfile(f) and os.access(f, os.X_OK), "installed: %s" % f)
    t.check(os.path.isfile(inst.example), "installed: the example configuration")
    mode = os.stat(inst.script).st_mode & 0o7777 if os.path.exists(inst.script) else None
    t.check(mode == 0o755, "the init script has mode 0755", oct(mode or 0))
    with open(inst.script) as f:
        text = f.read()
    t.check("DAEMON=%s\n" % inst.daemon in text and "CONFIG=%s\n" % inst.example in text,
            "paths filled in: DAEMON and CONFIG under the install prefix")
    t.check("@" not in re.sub(r"#.*", "", text), "no @variable@ left in the script")
    t.check(re.search(r"^# Provides: +load-balancer$", text, re.M) is not None and
            "### END INIT INFO" in text, "LSB header")
    t.check(not re.search(r"\b(pkill|killall|pidof|pgrep)\b", re.sub(r"#.*", "", text)),
            "no pkill/killall/pidof/pgrep in the script")

    # The installed example, once changed, survives a second make install.
    with open(inst.example, "a") as f:
        f.write("# changed by the administrator\n")
    with open(inst.example) as f:
        before = f.read()
    rc, out = make(["install"] + inst.make_args())
    with open(inst.example) as f:
        kept = rc == 0 and f.read() == before
    t.check(kept, "a second make install keeps a changed configuration",
            "" if kept else out[-2000:])

    # ---- the service
    bk = t.Backend(t.smtp_handler("s1"), name="s1")
    port = t.free_port()
    good = CONFIG_TEXT % {"run": inst.run, "bind": t.addr(H, port), "server": bk.address}
    broken = good.replace('grace = "2s";', 'grace = "2s"; no_such_key = 1;')
    assert broken.splitlines()[BROKEN_LINE - 1].count("no_such_key") == 1
    with open(inst.conf, "w") as f:
        f.write(good)
    decoys = start_decoys(inst)

    def decoys_alive(after):
        t.check(all(p.poll() is None for p in decoys),
                "after %s: both decoys still run" % after)

    def serving(what):
        try:
            name = t.client_session(H, port)[0]
        except OSError as e:
            name = "error: %s" % e
        t.check(name == "s1", "%s: a client session is relayed to s1" % what, str(name))

    rc, out, err = inst.sh("configtest")
    t.check(rc == 0 and "configuration OK" in out, "configtest on a valid file: exit 0, OK")

    rc, out, err = inst.sh("start")
    pid1 = inst.pid()
    t.require(rc == 0, "start: exit 0", "" if rc == 0 else err[-500:])
    t.check(pid1 is not None and t.exe_of(pid1) == inst.daemon,
            "start: the pidfile names a process running %s" % inst.daemon, str(pid1))
    t.check(t.wait_until(lambda: t.is_listening(H, port), 5), "start: listening")
    serving("start")
    decoys_alive("start")

    rc, out, err = inst.sh("status")
    t.check(rc == 0, "status while running: exit 0", "exit %s" % rc)
    decoys_alive("status")

    rc, out, err = inst.sh("start")
    t.check(rc == 0, "second start: exit 0 (LSB)", "exit %s" % rc)
    t.check("already running" in out + err, "second start: says it is already running")
    t.check(inst.pid() == pid1 and inst.daemons() == [pid1],
            "second start: no second daemon, the pidfile unchanged",
            "pidfile %s, daemons %s" % (inst.pid(), inst.daemons()))
    decoys_alive("second start")

    rc, out, err = inst.sh("reload")
    t.check(rc == 0, "reload: exit 0", "exit %s" % rc)
    time.sleep(0.3)
    t.check(t.pid_alive(pid1) and inst.pid() == pid1 and inst.daemons() == [pid1],
            "reload: the same daemon runs on")
    serving("reload")
    decoys_alive("reload")

    # ---- a broken file
    with open(inst.conf, "w") as f:
        f.write(broken)
    rc, out, err = inst.sh("configtest")
    want = "%s:%d:" % (inst.conf, BROKEN_LINE)
    t.check(rc not in (0, None), "configtest on a broken file: non-zero exit", "exit %s" % rc)
    t.check(want in err and "no_such_key" in err,
            "configtest on a broken file: shows %s ... no_such_key" % want, err[-500:])
    decoys_alive("configtest")

    for cmd in ("reload", "force-reload", "restart"):
        rc, out, err = inst.sh(cmd)
        t.check(rc == 6, "%s with a broken file: refused, exit 6" % cmd, "exit %s" % rc)
        t.check(want in err, "%s with a broken file: shows the error" % cmd)
        t.check(t.pid_alive(pid1) and inst.pid() == pid1 and inst.daemons() == [pid1],
                "%s with a broken file: the daemon untouched (pid %s)" % (cmd, pid1))
        decoys_alive(cmd + " (broken file)")
    serving("after the refused commands")

    # ---- fixed: restart
    with open(inst.conf, "w") as f:
        f.write(good)
    rc, out, err = inst.sh("restart")
    pid2 = inst.pid()
    t.check(rc == 0, "restart: exit 0", "exit %s" % rc)
    # The old daemon hands its sockets over and exits once its sessions
    # are done (load-balancer(8), RESTART): here at once, none are left.
    t.check(pid2 is not None and pid2 != pid1 and
            t.wait_until(lambda: not t.pid_alive(pid1) and inst.daemons() == [pid2], 10),
            "restart: a new daemon (pid %s -> %s), the old one gone" % (pid1, pid2))
    serving("restart")
    decoys_alive("restart")

    # The program replaced under the running daemon (make install over
    # it, an upgrade): the daemon is still found.
    tmp = inst.daemon + ".new"
    shutil.copy2(inst.daemon, tmp)
    os.replace(tmp, inst.daemon)
    rc, out, err = inst.sh("status")
    t.check(rc == 0, "status after the program was replaced on disk: exit 0", "exit %s" % rc)

    rc, out, err = inst.sh("stop")
    t.check(rc == 0, "stop: exit 0", "exit %s" % rc)
    t.check(not t.pid_alive(pid2) and inst.daemons() == [], "stop: the daemon is gone when stop returns")
    t.check(not os.path.exists(inst.pidfile), "stop: no pidfile left")
    t.check(not t.is_listening(H, port), "stop: nothing listens on the port")
    decoys_alive("stop")

    rc, out, err = inst.sh("status")
    t.check(rc == 3, "status when stopped: exit 3", "exit %s" % rc)
    rc, out, err = inst.sh("stop")
    t.check(rc == 0, "stop when stopped: exit 0", "exit %s" % rc)
    rc, out, err = inst.sh("reload")
    t.check(rc == 7, "reload when stopped: exit 7", "exit %s" % rc)
    decoys_alive("status, stop, reload when stopped")

    # ---- a stale pidfile naming an unrelated live process (pid reuse)
    for d in decoys:
        with open(inst.pidfile, "w") as f:
            f.write("%d\n" % d.pid)
        rc, out, err = inst.sh("status")
        t.check(rc == 1, "status, pidfile naming a decoy: exit 1 (dead, pidfile exists)",
                "exit %s" % rc)
        rc, out, err = inst.sh("stop")
        t.check(rc == 0 and d.poll() is None and not os.path.exists(inst.pidfile),
                "stop, pidfile naming a decoy: exit 0, decoy alive, stale pidfile removed",
                "exit %s" % rc)
    with open(inst.pidfile, "w") as f:
        f.write("%d\n" % decoys[0].pid)
    rc, out, err = inst.sh("start")
    pid3 = inst.pid()
    t.check(rc == 0 and pid3 not in (None, decoys[0].pid) and inst.daemons() == [pid3],
            "start over a stale pidfile: a daemon starts and replaces it",
            "exit %s, pidfile %s" % (rc, pid3))
    serving("start over a stale pidfile")
    rc, out, err = inst.sh("stop")
    t.check(rc == 0 and inst.daemons() == [], "stop: exit 0, no daemon left")
    decoys_alive("the stale pidfile commands")

    # ---- the same script without /lib/lsb/init-functions
    plain = os.path.join(inst.top, "load-balancer.nolsb")
    with open(plain, "w") as f:
        f.write(text.replace("/lib/lsb/init-functions", "/nonexistent/init-functions"))
    os.chmod(plain, 0o755)
    seq = [("start", 0), ("status", 0), ("start", 0), ("stop", 0), ("status", 3)]
    got = []
    for cmd, want_rc in seq:
        rc, out, err = inst.sh(cmd, script=plain)
        got.append(rc)
    t.check(got == [w for _, w in seq] and inst.daemons() == [],
            "without the LSB functions: start, status, start, stop, status exit 0 0 0 0 3",
            str(got))
    decoys_alive("the commands without LSB functions")

    rc, out, err = inst.sh("frobnicate")
    t.check(rc == 2 and "Usage:" in err, "an unknown command: usage, exit 2", "exit %s" % rc)

    # ---- make uninstall
    rc, out = make(["uninstall"] + inst.make_args())
    left = sorted(os.path.relpath(os.path.join(d, f), inst.prefix)
                  for d, _, fs in os.walk(inst.prefix) for f in fs)
    t.check(rc == 0 and left == ["etc/load-balancer.conf"],
            "make uninstall removes the programs and the init script, keeps the "
            "changed configuration", "exit %s, left %s" % (rc, left))
    decoys_alive("everything")


if __name__ == "__main__":
    t.main([test_initscript], timeout=200)
