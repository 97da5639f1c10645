"""Shared harness for the load-balancer integration tests.

Standard library only.  Each test script does

    import lbtest as t
    def test_something(): ...
    if __name__ == "__main__":
        t.main([test_something], timeout=60)

and exits 0 (pass), 77 (skip) or 1 (fail).  Everything a test starts (the
daemon, smtp-sink, smtp-source, Python backends) is registered here and
stopped by PID when the sub-test ends, when the script exits, or when the
script is killed with SIGTERM/SIGINT/SIGHUP or hits its time limit.

Environment: LB_BIN (the daemon), LBCTL_BIN (default: lbctl beside LB_BIN),
LB_SRCDIR (the source tree),
LB_KEEP=1 keeps the temporary directories, LB_VERBOSE=1 prints more.
"""

import atexit
import os
import random
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("LB_SRCDIR") or os.path.dirname(os.path.dirname(HERE))
LB_BIN = os.environ.get("LB_BIN") or os.path.join(SRCDIR, "load-balancer")
# LB_WRAPPER: a command put before the daemon's (e.g. "valgrind -q ..."),
# see tests/integration/run_valgrind.py; it slows the start down.
LB_WRAPPER = os.environ.get("LB_WRAPPER", "").split()
LBCTL_BIN = os.environ.get("LBCTL_BIN") or os.path.join(os.path.dirname(LB_BIN), "lbctl")
SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"
SKIP = 77
VERBOSE = os.environ.get("LB_VERBOSE") == "1"

DEFAULT_UNAVAILABLE = b"421 4.3.2 Service not available, closing transmission channel\r\n"

# --------------------------------------------------------------------------
# Results


class Skip(Exception):
    pass


class TestTimeout(Exception):
    pass


_failures = []
_checks = 0


def log(*args):
    print(*args, flush=True)


def check(cond, what, detail=""):
    """Record one assertion; never raises."""
    global _checks
    _checks += 1
    if cond:
        log("  ok   %s%s" % (what, (": " + detail) if detail else ""))
    else:
        log("  FAIL %s%s" % (what, (": " + detail) if detail else ""))
        _failures.append(what + ((": " + detail) if detail else ""))
    return bool(cond)


def require(cond, what, detail=""):
    """Like check() but stops the current sub-test when it fails."""
    if not check(cond, what, detail):
        raise AssertionError(what + ((": " + detail) if detail else ""))


def failed():
    return bool(_failures)


# --------------------------------------------------------------------------
# Process registry and cleanup

_procs = []          # (Popen, description)
_servers = []        # Backend objects
_tmpdirs = []
_lock = threading.Lock()
_cleaning = False


def _register_proc(p, desc):
    with _lock:
        _procs.append((p, desc))


register_proc = _register_proc   # for tests that start processes themselves

_cleanups = []       # callables run (last first) after the processes stop


def add_cleanup(fn):
    """Run fn() at the next cleanup_all() (end of the sub-test, exit, signal
    or time limit), after every registered process was stopped: for what a
    test creates besides processes, e.g. network namespaces."""
    with _lock:
        _cleanups.append(fn)


def kill_proc(p, sig=signal.SIGTERM, timeout=5.0):
    """Stop one process by PID: sig, then SIGKILL after timeout."""
    if p.poll() is not None:
        return p.returncode
    try:
        os.kill(p.pid, sig)
    except ProcessLookupError:
        pass
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            return p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None


def cleanup_all():
    global _cleaning
    if _cleaning:
        return
    _cleaning = True
    try:
        with _lock:
            procs = list(_procs)
            servers = list(_servers)
            _procs.clear()
            _servers.clear()
            cleanups = list(_cleanups)
            _cleanups.clear()
        for p, _ in reversed(procs):
            kill_proc(p, signal.SIGTERM, 3.0)
        for s in servers:
            try:
                s.stop()
            except Exception:
                pass
        for fn in reversed(cleanups):
            try:
                fn()
            except Exception:
                log("cleanup %r failed:\n%s" % (fn, traceback.format_exc()))
    finally:
        _cleaning = False


def _remove_tmpdirs():
    if os.environ.get("LB_KEEP") == "1":
        for d in _tmpdirs:
            log("kept %s" % d)
        return
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_remove_tmpdirs)
atexit.register(cleanup_all)


def _on_signal(signum, frame):
    log("caught signal %d: stopping everything" % signum)
    cleanup_all()
    _remove_tmpdirs()
    os._exit(1)


for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_s, _on_signal)


def tempdir(prefix="lbtest-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.append(d)
    return d


# --------------------------------------------------------------------------
# Ports and addresses

_used_ports = set()


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = f.read().split()
            return int(lo), int(hi)
    except Exception:
        return 32768, 60999


def free_port(host="127.0.0.1"):
    """A free TCP port on host, chosen outside the kernel's ephemeral range
    (so that the many outgoing connections of a test cannot take it between
    this call and the bind of the daemon), checked by binding it (without
    SO_REUSEADDR, so ports in TIME_WAIT are avoided too)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    lo, hi = _ephemeral_range()
    ranges = []
    if lo > 11000:
        ranges.append((10000, lo - 1))
    if hi < 64000:
        ranges.append((hi + 1, 65000))
    if not ranges:
        ranges.append((1024, 65000))
    rnd = random.Random(os.getpid() * 7919 + time.monotonic_ns())
    for _ in range(500):
        a, b = rnd.choice(ranges)
        port = rnd.randint(a, b)
        if port in _used_ports:
            continue
        s = socket.socket(fam, socket.SOCK_STREAM)
        try:
            s.bind((host, port))
        except OSError:
            continue
        finally:
            s.close()
        _used_ports.add(port)
        return port
    # Fall back on the kernel's choice.
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    _used_ports.add(port)
    return port


def have_ipv6():
    """True when a socket can be bound on ::1."""
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        s.bind(("::1", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


def addr(host, port):
    """The configuration spelling of an address."""
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def _listening_ports():
    """Ports in LISTEN state, from /proc/net/tcp{,6}: {(family, port)}."""
    out = set()
    for fam, path in (("4", "/proc/net/tcp"), ("6", "/proc/net/tcp6")):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if len(parts) > 3 and parts[3] == "0A":
                        out.add((fam, int(parts[1].rsplit(":", 1)[1], 16)))
        except OSError:
            return None
    return out


def is_listening(host, port):
    ports = _listening_ports()
    if ports is None:
        # No /proc: a connect is the only way to know.
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(0.5)
        try:
            s.connect((host, port))
            return True
        except OSError:
            return False
        finally:
            s.close()
    fam = "6" if ":" in host else "4"
    return (fam, port) in ports


def wait_until(pred, timeout, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(step)


# --------------------------------------------------------------------------
# Configuration text


def _val(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[ " + ", ".join(_val(x) for x in v) + " ]"
    if isinstance(v, dict):
        return "{ " + opts(v) + " }"
    return '"%s"' % str(v).replace("\\", "\\\\").replace('"', '\\"')


def opts(d):
    return " ".join("%s = %s;" % (k, _val(v)) for k, v in (d or {}).items())


def server_entry(name, address, **kw):
    d = {"name": name, "address": address}
    d.update(kw)
    return "{ %s }" % opts(d)


def global_block(**kw):
    """The global group.  Unless given, control_socket, health_log and
    state_file are put in a fresh temporary directory (never the system
    defaults /run/load-balancer.sock, /var/log/load-balancer/health.log and
    /var/lib/load-balancer/state)."""
    g = {"daemon": False, "grace": "2s"}
    if "control_socket" not in kw or "health_log" not in kw or "state_file" not in kw:
        run = tempdir("lbtest-run-")
        g["control_socket"] = os.path.join(run, "lb.sock")
        g["health_log"] = os.path.join(run, "health.log")
        g["state_file"] = os.path.join(run, "state")
    g.update(kw)
    return "global = { %s log = { syslog = false; }; };\n" % opts(g)


def make_config_multi(pairs, glob=None):
    """Several frontend/backend pairs.  pairs: list of (fe dict, be dict)
    where fe holds at least name, bind, backend and be holds name and
    "servers": a list of server_entry() strings or (name, address, kwargs)."""
    fes, bes = [], []
    for fe, be in pairs:
        fes.append("{ %s }" % opts(fe))
        be = dict(be)
        srv = []
        for s in be.pop("servers"):
            if isinstance(s, str):
                srv.append(s)
            else:
                srv.append(server_entry(s[0], s[1], **(s[2] if len(s) > 2 else {})))
        bes.append("{ %s\n  servers = (\n    %s\n  );\n}" % (opts(be), ",\n    ".join(srv)))
    return (global_block(**(glob or {})) +
            "frontends = (\n  %s\n);\n" % ",\n  ".join(fes) +
            "backends = (\n  %s\n);\n" % ",\n  ".join(bes))


def make_config(bind, servers, balance="roundrobin", fe=None, be=None,
                glob=None):
    """One frontend "fe" (bind: a string or a list) feeding one backend "be".
    servers: list of server_entry() strings or (name, address, kwargs)."""
    srv = []
    for s in servers:
        if isinstance(s, str):
            srv.append(s)
        else:
            name, address = s[0], s[1]
            kw = s[2] if len(s) > 2 else {}
            srv.append(server_entry(name, address, **kw))
    fed = {"name": "fe", "bind": bind, "backend": "be"}
    fed.update(fe or {})
    bed = {"name": "be", "balance": balance}
    bed.update(be or {})
    return (global_block(**(glob or {})) +
            "frontends = ( { %s } );\n" % opts(fed) +
            "backends = ( { %s\n  servers = (\n    %s\n  );\n} );\n"
            % (opts(bed), ",\n    ".join(srv)))


# --------------------------------------------------------------------------
# The daemon

SESSION_RE = re.compile(r"client=\S+ frontend=\S+ backend=\S+ server=\S+ .*?end=\S+")


def parse_session_line(line):
    m = SESSION_RE.search(line)
    if not m:
        return None
    d = {}
    for k, v in re.findall(r"(\w+)=(\S+)", m.group(0)):
        if re.fullmatch(r"-?\d+", v):
            v = int(v)
        d[k] = v
    return d


class DaemonError(Exception):
    pass


# --------------------------------------------------------------------------
# Health log (load-balancer.conf(5), LOGS) and lbctl

_LOGFMT_RE = re.compile(r'([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_logfmt(text):
    """key=value pairs; double-quoted values with \\" and \\\\ escapes.
    Integers become int."""
    d = {}
    for k, v in _LOGFMT_RE.findall(text):
        if v.startswith('"') and v.endswith('"') and len(v) >= 2:
            v = re.sub(r'\\(.)', r'\1', v[1:-1])
        elif re.fullmatch(r"-?\d+", v):
            v = int(v)
        d[k] = v
    return d


def parse_health_line(line):
    """One health log line: {"ts": first field, key: value...}, or None."""
    line = line.rstrip("\r\n")
    if not line.strip():
        return None
    ts, _, rest = line.partition(" ")
    d = parse_logfmt(rest)
    d["ts"] = ts
    d["_line"] = line
    return d


HEALTH_TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def read_health_log(path):
    try:
        with open(path, "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return []
    out = []
    for line in data.splitlines():
        d = parse_health_line(line)
        if d is not None:
            out.append(d)
    return out


def run_lbctl(args, timeout=10.0):
    """Run lbctl to completion: (returncode, stdout, stderr) as text;
    returncode None when it had to be killed."""
    if not os.access(LBCTL_BIN, os.X_OK):
        raise DaemonError("%s is not an executable (build lbctl first)" % LBCTL_BIN)
    p = subprocess.Popen([LBCTL_BIN] + list(args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _register_proc(p, "lbctl " + " ".join(args))
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_proc(p, signal.SIGKILL)
        out, err = p.communicate()
        return None, out.decode(errors="replace"), err.decode(errors="replace")
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def ctl_raw(path, data, timeout=5.0, close_after_send=False):
    """Connect to a control socket, send data, read until the empty line
    that ends a reply (or EOF/timeout).  Returns (bytes, eof)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    got = bytearray()
    eof = False
    try:
        s.connect(path)
        if data:
            try:
                s.sendall(data)
            except OSError:
                pass
        if close_after_send:
            return bytes(got), True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if got.endswith(b"\n\n") or got == b"\n":
                break
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                eof = True
                break
            if not b:
                eof = True
                break
            got += b
    finally:
        s.close()
    return bytes(got), eof


def parse_table(text):
    """An aligned table (header line, then rows; columns separated by two
    or more spaces) to a list of dicts keyed by the header words."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    head = re.split(r"\s{2,}", lines[0].strip())
    rows = []
    for ln in lines[1:]:
        cells = re.split(r"\s{2,}", ln.strip())
        rows.append(dict(zip(head, cells + [""] * (len(head) - len(cells)))))
    return rows


def run_lb(args, timeout=10, cwd=None):
    """Run the binary to completion: (returncode, stdout, stderr) as text."""
    p = subprocess.Popen([LB_BIN] + list(args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=cwd)
    _register_proc(p, "load-balancer " + " ".join(args))
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_proc(p, signal.SIGKILL)
        out, err = p.communicate()
        return None, out.decode(errors="replace"), err.decode(errors="replace")
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


class Daemon:
    """load-balancer -F -f CONFIG, stderr captured to a file."""

    def __init__(self, config, listen, name="lb", workdir=None):
        self.dir = workdir or tempdir("lbtest-%s-" % name)
        self.name = name
        self.conf = os.path.join(self.dir, name + ".conf")
        self.errpath = os.path.join(self.dir, name + ".stderr")
        self.outpath = os.path.join(self.dir, name + ".stdout")
        self.pidfile = os.path.join(self.dir, name + ".pid")
        self.listen = list(listen)
        self.proc = None
        self.returncode = None
        config = self._runtime_paths(config)
        with open(self.conf, "w") as f:
            f.write(config)
        _daemons.append(self)

    def _runtime_paths(self, config):
        """Find global.control_socket, global.health_log and
        global.state_file in the text; when the global group lacks them,
        add them (in this daemon's directory) so that no test touches the
        system defaults, nor another test's operator state."""
        add = []
        for key, default in (("control_socket", "lb.sock"), ("health_log", "health.log"),
                             ("state_file", "state")):
            m = re.search(r"\b%s\s*[=:]\s*\"((?:[^\"\\]|\\.)*)\"" % key, config)
            if m:
                setattr(self, key, m.group(1))
            else:
                path = os.path.join(self.dir, default)
                setattr(self, key, path)
                add.append('%s = "%s"; ' % (key, path))
        if add:
            m = re.search(r"\bglobal\s*[=:]\s*\{", config)
            if m:
                config = config[:m.end()] + " " + "".join(add) + config[m.end():]
            else:
                config = "global = { %s};\n" % "".join(add) + config
        return config

    # ---- control socket (lbctl) and health log

    def ctl(self, cmd, timeout=10.0, sock=None):
        """Run LBCTL_BIN -s SOCK CMD...; returns (rc, stdout, stderr)."""
        args = cmd.split() if isinstance(cmd, str) else list(cmd)
        return run_lbctl(["-s", sock or self.control_socket] + args, timeout)

    def ctl_raw(self, data, timeout=5.0):
        """Send raw bytes on the control socket; returns the bytes read
        until the empty line ending a reply, EOF or timeout."""
        return ctl_raw(self.control_socket, data, timeout)

    def health_events(self, path=None):
        return read_health_log(path or self.health_log)

    def wait_event(self, pred, timeout=5.0, since=0, step=0.02):
        """Wait until an event e (in the health log, index >= since)
        with pred(e) appears; returns it, or None."""
        def find():
            for e in self.health_events()[since:]:
                if pred(e):
                    return e
            return None
        return wait_until(find, timeout, step)

    def stderr_events(self):
        """The health events echoed on stderr (-F): no timestamp."""
        out = []
        for line in self.stderr().splitlines():
            i = line.find("event=")
            if i >= 0:
                d = parse_logfmt(line[i:])
                if "event" in d:
                    out.append(d)
        return out

    def start(self, wait=True, timeout=5.0, preexec_fn=None):
        """preexec_fn: run in the child before the exec (e.g. setrlimit)."""
        self._err = open(self.errpath, "ab")
        self._out = open(self.outpath, "ab")
        if LB_WRAPPER:
            timeout *= 6
        self.proc = subprocess.Popen(
            LB_WRAPPER + [LB_BIN, "-F", "-f", self.conf, "-p", self.pidfile],
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
            cwd=self.dir, preexec_fn=preexec_fn)
        _register_proc(self.proc, "load-balancer")
        if wait:
            self.wait_listening(timeout)
        return self

    def wait_listening(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise DaemonError("daemon exited with status %s before listening; stderr:\n%s"
                                  % (self.proc.returncode, self.stderr()[-3000:]))
            if self.listening():
                return
            if time.monotonic() > deadline:
                raise DaemonError("daemon not listening on %s after %.1fs; stderr:\n%s"
                                  % (self.listen, timeout, self.stderr()[-3000:]))
            time.sleep(0.02)

    def listening(self):
        """Every address of self.listen is in LISTEN state."""
        return all(is_listening(h, p) for h, p in self.listen)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self):
        try:
            with open(self.errpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def sessions(self):
        out = []
        for line in self.stderr().splitlines():
            d = parse_session_line(line)
            if d is not None:
                out.append(d)
        return out

    def wait_sessions(self, n, timeout=5.0):
        """Wait until at least n session lines were logged; return them all."""
        wait_until(lambda: len(self.sessions()) >= n, timeout)
        return self.sessions()

    def session_for(self, client_port, timeout=5.0, pred=None):
        """The session line of the client using local port client_port (and
        matching pred, when given: under load a port is used again by
        other sessions)."""
        def find():
            for s in self.sessions():
                c = str(s.get("client", ""))
                if c.rsplit(":", 1)[-1] == str(client_port) and \
                        (pred is None or pred(s)):
                    return s
            return None
        return wait_until(find, timeout)

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def stop(self, timeout=5.0):
        """SIGTERM (then SIGKILL); the first stop also checks that a daemon
        still running exits 0 and that no sanitizer reported anything."""
        if self.proc is None:
            return None
        was_running = self.alive()
        self.returncode = kill_proc(self.proc, signal.SIGTERM,
                                    timeout * (6 if LB_WRAPPER else 1))
        for f in (self._err, self._out):
            try:
                f.close()
            except Exception:
                pass
        if not getattr(self, "_stop_checked", False):
            self._stop_checked = True
            err = self.stderr()
            m = re.search(r"ERROR: (Address|Leak)Sanitizer.*|runtime error:.*|"
                          r"(WARNING: |FATAL: )?ThreadSanitizer.*", err)
            check(m is None, "%s: no sanitizer report" % self.name,
                  err[m.start():m.start() + 4000] if m else "")
            if was_running:
                check(self.returncode == 0, "%s: exits 0 on SIGTERM" % self.name,
                      "status %s" % self.returncode)
        return self.returncode

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


_daemons = []


class NsDaemon(Daemon):
    """The daemon (LB_BIN -F) run with `ip netns exec NS [prefix...]`:
    ip netns exec and setpriv exec the next program, so the PID is the
    daemon's own and the harness stops it by PID."""

    def __init__(self, ns, config, listen, name, prefix=(), binary=None, workdir=None):
        Daemon.__init__(self, config, listen, name=name, workdir=workdir)
        self.ns = ns
        self.prefix = list(prefix)
        self.binary = binary or LB_BIN

    def start(self, wait=True, timeout=5.0):
        self._err = open(self.errpath, "ab")
        self._out = open(self.outpath, "ab")
        if LB_WRAPPER:
            timeout *= 6
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns] + self.prefix + LB_WRAPPER +
            [self.binary, "-F", "-f", self.conf, "-p", self.pidfile],
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err, cwd=self.dir)
        register_proc(self.proc, "load-balancer (netns %s)" % self.ns)
        if wait:
            self.wait_listening(timeout)
        return self

    def listening_ports(self):
        """LISTEN ports in the daemon's namespace: /proc/PID/net/tcp."""
        out = set()
        try:
            with open("/proc/%d/net/tcp" % self.proc.pid) as f:
                next(f)
                for ln in f:
                    parts = ln.split()
                    if len(parts) > 3 and parts[3] == "0A":
                        out.add(int(parts[1].rsplit(":", 1)[1], 16))
        except (OSError, StopIteration):
            pass
        return out

    def listening(self):
        """Seen from here, in another namespace: by port."""
        ports = self.listening_ports()
        return all(p in ports for _, p in self.listen)

    def wait_exit(self, timeout=10.0):
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.returncode = None
        return self.returncode


# --------------------------------------------------------------------------
# Postfix smtp-sink and smtp-source


class SmtpSink:
    """/usr/sbin/smtp-sink with -c: its stdout carries running counters
    "sess=N quit=N mesg=N" (separated by CR), updated when a session ends, a
    QUIT is executed or a "." is received; messages() reads the last one."""

    def __init__(self, host="127.0.0.1", port=None, args=(), backlog=1024):
        self.host = host
        self.port = port or free_port(host)
        self.args = list(args)
        self.backlog = backlog
        self.dir = tempdir("lbtest-sink-")
        self.outpath = os.path.join(self.dir, "sink.out")
        self.errpath = os.path.join(self.dir, "sink.err")
        self.proc = None

    @property
    def address(self):
        return addr(self.host, self.port)

    def start(self, timeout=5.0):
        if not os.access(SINK, os.X_OK):
            raise Skip("%s is not installed" % SINK)
        cmd = [SINK, "-c"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        cmd += self.args + ["%s:%d" % ("[%s]" % self.host if ":" in self.host else self.host, self.port),
                            str(self.backlog)]
        self._out = open(self.outpath, "wb")
        self._err = open(self.errpath, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err)
        _register_proc(self.proc, "smtp-sink")
        ok = wait_until(lambda: self.proc.poll() is not None or
                        is_listening(self.host, self.port), timeout)
        if self.proc.poll() is not None or not ok:
            raise DaemonError("smtp-sink did not start: %s" % self.err())
        return self

    def err(self):
        try:
            with open(self.errpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def counters(self):
        try:
            with open(self.outpath, "rb") as f:
                data = f.read().decode(errors="replace")
        except OSError:
            return {"sess": 0, "quit": 0, "mesg": 0}
        last = re.findall(r"sess=(\d+) quit=(\d+) mesg=(\d+)", data)
        if not last:
            return {"sess": 0, "quit": 0, "mesg": 0}
        s, q, m = last[-1]
        return {"sess": int(s), "quit": int(q), "mesg": int(m)}

    def messages(self):
        return self.counters()["mesg"]

    def stop(self):
        if self.proc is not None:
            kill_proc(self.proc, signal.SIGTERM, 3.0)
            for f in (self._out, self._err):
                try:
                    f.close()
                except Exception:
                    pass


def smtp_source(target, sessions, messages, length, args=(), timeout=85.0):
    """Run smtp-source -c; returns dict(rc, delivered, elapsed, stderr).
    delivered is the last value of its -c counter (DATA completed)."""
    if not os.access(SOURCE, os.X_OK):
        raise Skip("%s is not installed" % SOURCE)
    d = tempdir("lbtest-source-")
    outp, errp = os.path.join(d, "out"), os.path.join(d, "err")
    cmd = [SOURCE, "-c", "-M", "lbtest.example", "-s", str(sessions),
           "-m", str(messages), "-l", str(length)] + list(args) + [target]
    t0 = time.monotonic()
    with open(outp, "wb") as o, open(errp, "wb") as e:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=o, stderr=e)
        _register_proc(p, "smtp-source")
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_proc(p, signal.SIGTERM, 3.0)
            rc = None
    elapsed = time.monotonic() - t0
    with open(outp, "rb") as f:
        out = f.read().decode(errors="replace")
    with open(errp, "rb") as f:
        err = f.read().decode(errors="replace")
    nums = re.findall(r"(\d+)", out)
    return {"rc": rc, "delivered": int(nums[-1]) if nums else 0,
            "elapsed": elapsed, "stderr": err, "cmd": " ".join(cmd)}


# --------------------------------------------------------------------------
# Scriptable Python backend


class Conn:
    """One accepted connection on a Backend, seen from the server side.
    received/sent record every byte moved; events records what happened."""

    def __init__(self, sock, peer, backend):
        self.sock = sock
        self.peer = peer
        self.backend = backend
        self.received = bytearray()
        self.sent = bytearray()
        self.buf = bytearray()
        self.eof = False
        self.closed = False
        self.error = None
        self.events = []
        self.t_accept = time.monotonic()
        self.t_eof = None
        self.t_close = None
        self.lock = threading.Lock()

    def note(self, what):
        self.events.append((time.monotonic(), what))

    def _fill(self, timeout):
        if self.eof:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise
        except OSError as e:
            self.error = e
            data = b""
        if not data:
            self.eof = True
            self.t_eof = time.monotonic()
            self.note("eof")
            return False
        self.received += data
        self.buf += data
        return True

    def readline(self, timeout=60.0):
        """A line with its CRLF; at EOF what is left (possibly b"")."""
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if self.eof or self.backend.stopping:
                line = bytes(self.buf)
                self.buf.clear()
                return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("readline")
            try:
                self._fill(min(left, 0.5))
            except socket.timeout:
                continue

    def wait_eof(self, timeout=30.0):
        """Read and discard until EOF; True when EOF came."""
        deadline = time.monotonic() + timeout
        while not self.eof and not self.backend.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self._fill(min(left, 0.5))
            except socket.timeout:
                continue
            self.buf.clear()
        return self.eof

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        try:
            self.sock.settimeout(30)
            self.sock.sendall(data)
            self.sent += data
            return True
        except OSError as e:
            self.error = e
            return False

    def shutdown_wr(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
            self.note("shutdown_wr")
        except OSError:
            pass

    def close(self):
        if not self.closed:
            self.closed = True
            self.t_close = time.monotonic()
            self.note("close")
            try:
                self.sock.close()
            except OSError:
                pass

    def reset(self):
        """Close with an RST (SO_LINGER 0)."""
        if not self.closed:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except OSError:
                pass
            self.closed = True
            self.t_close = time.monotonic()
            self.note("reset")
            try:
                self.sock.close()
            except OSError:
                pass

    def hang(self, timeout=60.0):
        """Stop answering: read and keep everything until EOF or stop."""
        self.note("hang")
        self.wait_eof(timeout)


class Backend:
    """A threaded TCP server; handler(conn) runs in its own thread per
    connection.  conns lists every connection in accept order."""

    def __init__(self, handler, host="127.0.0.1", port=None, name=None):
        self.handler = handler
        self.host = host
        self.name = name
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = port or free_port(host)
        self.sock.bind((host, self.port))
        self.sock.listen(512)
        self.conns = []
        self.stopping = False
        self.threads = []
        self.lock = threading.Lock()
        self.accepted = 0
        self.errors = []
        self.t = threading.Thread(target=self._accept_loop, daemon=True)
        _servers.append(self)
        self.t.start()

    @property
    def address(self):
        return addr(self.host, self.port)

    def _accept_loop(self):
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        while not self.stopping:
            try:
                ev = sel.select(0.2)
            except (OSError, ValueError):
                break
            if not ev or self.stopping:
                continue
            try:
                s, peer = self.sock.accept()
            except OSError:
                continue
            c = Conn(s, peer, self)
            with self.lock:
                self.conns.append(c)
                self.accepted += 1
            th = threading.Thread(target=self._run, args=(c,), daemon=True)
            self.threads.append(th)
            th.start()
        sel.close()

    def _run(self, c):
        try:
            self.handler(c)
        except Exception as e:
            if not self.stopping and not isinstance(e, (OSError, socket.timeout)):
                self.errors.append(traceback.format_exc())
            c.error = c.error or e
        finally:
            if not c.closed:
                c.close()

    def count(self):
        with self.lock:
            return len(self.conns)

    def open_conns(self):
        with self.lock:
            return [c for c in self.conns if not c.closed]

    def wait_conns(self, n, timeout=5.0):
        return wait_until(lambda: self.count() >= n, timeout)

    def stop(self):
        if self.stopping:
            return
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            c.close()
        for th in self.threads + [self.t]:
            th.join(timeout=2)


PRINTABLE = bytes(0x21 + (b % 94) for b in range(256))


def dot_unstuff(line):
    return line[1:] if line.startswith(b".") else line


def smtp_handler(name="backend", banner=True, greeting=None, hang_on=None,
                 reply_delay=None, die_in_data_after=None, die_after_dot=False,
                 die_how="reset", quit_wait_eof=False, quit_delay=0.0,
                 close_on=None, idle=60.0):
    """A small SMTP server for Backend.

    banner=False: never greet (stay silent, read until EOF).
    hang_on=b"MAIL": stop answering once that verb is received.
    reply_delay=(b"MAIL", 2.0): answer that verb only after a delay.
    die_in_data_after=N: during DATA, once N body bytes arrived, die
      (die_how "reset": RST, "close": close(), "partial": half a reply then RST).
    die_after_dot=True: die once the final "." arrived, before replying.
    quit_delay: wait before answering QUIT.  quit_wait_eof: after QUIT, wait
      for EOF from the balancer (the client's half-close propagated) and
      only then send "221 2.0.0 saw-eof" and close.
    close_on=b"EHLO": close right after receiving that verb, no reply.
    After DATA the reply is "250 2.0.0 Ok: NAME n=K len=L sha256=HEX" where
    HEX is the SHA-256 of the dot-unstuffed body (with its final CRLF).
    XBIG N: a multi-line 250 reply of about N bytes of random text.
    """
    import hashlib

    def die(c):
        if die_how == "close":
            c.close()
        else:
            c.reset()

    def handle(c):
        c.messages = []
        if not banner:
            c.hang(idle)
            return
        c.send(greeting if greeting is not None else "220 %s ESMTP lbtest\r\n" % name)
        while True:
            line = c.readline(timeout=idle)
            if not line:
                return
            if not line.endswith(b"\n"):
                # EOF in the middle of a line
                c.wait_eof(idle)
                return
            verb = line.split()[0].upper() if line.split() else b""
            if close_on is not None and verb == close_on:
                c.close()
                return
            if hang_on is not None and verb == hang_on:
                c.hang(idle)
                return
            if reply_delay is not None and verb == reply_delay[0]:
                time.sleep(reply_delay[1])
            if verb == b"EHLO":
                c.send("250-%s\r\n250-PIPELINING\r\n250-SIZE 20480000\r\n"
                       "250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n" % name)
            elif verb in (b"HELO", b"LHLO"):
                c.send("250 %s\r\n" % name)
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP", b"VRFY"):
                c.send("250 2.0.0 Ok %s\r\n" % name)
            elif verb == b"DATA":
                c.send("354 End data with <CR><LF>.<CR><LF>\r\n")
                h = hashlib.sha256()
                n = 0
                died = False
                while True:
                    l2 = c.readline(timeout=idle)
                    if not l2 or not l2.endswith(b"\n"):
                        return
                    if l2 == b".\r\n":
                        break
                    body = dot_unstuff(l2)
                    h.update(body)
                    n += len(body)
                    if die_in_data_after is not None and n >= die_in_data_after:
                        c.note("die in data at %d" % n)
                        if die_how == "partial":
                            c.send("250 2.0")
                            c.reset()
                        else:
                            die(c)
                        died = True
                        break
                if died:
                    return
                if die_after_dot:
                    c.note("die after dot")
                    die(c)
                    return
                c.messages.append((n, h.hexdigest()))
                c.send("250 2.0.0 Ok: %s n=%d len=%d sha256=%s\r\n"
                       % (name, len(c.messages), n, h.hexdigest()))
            elif verb == b"XBIG":
                want = int(line.split()[1])
                rnd = random.Random(want)
                out = []
                total = 0
                while total < want:
                    txt = rnd.randbytes(rnd.randint(1, 200)).translate(PRINTABLE)
                    out.append(b"250-" + txt + b"\r\n")
                    total += len(out[-1])
                out.append(b"250 end of big reply\r\n")
                c.send(b"".join(out))
            elif verb == b"QUIT":
                if quit_wait_eof:
                    got = c.wait_eof(30)
                    c.note("quit_wait_eof=%s" % got)
                    if got:
                        c.send("221 2.0.0 saw-eof %s\r\n" % name)
                    c.close()
                    return
                if quit_delay:
                    time.sleep(quit_delay)
                c.send("221 2.0.0 Bye %s\r\n" % name)
                c.close()
                return
            else:
                c.send("502 5.5.2 Error: command not recognized\r\n")

    return handle


# --------------------------------------------------------------------------
# A switchable SMTP server for health checks (and the sessions beside them)

CLIENT_HELO = "client.lbtest"   # clients of the tests say EHLO client.lbtest


class SmtpBehavior:
    """The shared, mutable behaviour of health_handler(); a test switches
    it at run time (beh.mode = "helo421") and every new connection, check
    or client session alike, gets the new behaviour.

    Modes:
      ok          220 greeting, 250 to HELO/EHLO (STARTTLS offered when
                  tls is set), 221 to QUIT
      multiline   a postscreen-style "220-" multi-line greeting, then ok
      greet554    "554 5.3.2 NAME not available" greeting
      helo421     "421 4.7.0 try again later" to HELO/EHLO, then close
      heloreply   beh.helo_reply (a str, CRLF added) to HELO/EHLO, then close
      silent      accept and say nothing
      close       accept and close at once
      longline    a greeting line of 1 MB (+ CRLF)
      nocode      greeting "hello there" (no numeric code)
      extra       greeting followed by unasked bytes ("250 surprise")
      refuse      (the test closes the port itself; here: like close)
      nostarttls  ok, but EHLO does not list STARTTLS
      tlsgarbage  220 to STARTTLS, then (after the ClientHello) garbage and close
      tlsclose    220 to STARTTLS, then (after the ClientHello) close
    tls: a server-side ssl.SSLContext used after "220 Ready to start TLS".
    """

    def __init__(self, name, mode="ok", tls=None):
        self.name = name
        self.mode = mode
        self.tls = tls
        self.helo_reply = "554 5.7.1 no"
        self.lock = threading.Lock()

    def snapshot(self):
        with self.lock:
            return self.mode, self.tls


def health_handler(beh, idle=30.0):
    """Backend handler following the SmtpBehavior beh.  Each Conn gets:
    c.helo (the argument of its first HELO/EHLO), c.verbs (commands seen),
    c.kind ("client" when the HELO name is CLIENT_HELO, "check" when
    another name was given, None before any HELO), c.tls (TLS done)."""

    def handle(c):
        mode, tls = beh.snapshot()
        c.helo = None
        c.kind = None
        c.verbs = []
        c.tls = False
        c.mode = mode
        name = beh.name
        if mode in ("close", "refuse"):
            c.close()
            return
        if mode == "silent":
            c.hang(idle)
            return
        if mode == "longline":
            c.send(b"220 " + b"x" * (1 << 20) + b"\r\n")
            c.wait_eof(idle)
            return
        if mode == "nocode":
            c.send(b"hello there\r\n")
            c.wait_eof(idle)
            return
        if mode == "greet554":
            c.send("554 5.3.2 %s not available\r\n" % name)
        elif mode == "multiline":
            c.send("220-%s ESMTP postscreen-style banner\r\n220-please wait\r\n"
                   "220 %s ESMTP lbtest\r\n" % (name, name))
        elif mode == "extra":
            c.send("220 %s ESMTP lbtest\r\n250 surprise\r\n" % name)
        else:
            c.send("220 %s ESMTP lbtest\r\n" % name)
        while True:
            line = c.readline(timeout=idle)
            if not line or not line.endswith(b"\n"):
                c.wait_eof(idle)
                return
            words = line.split()
            verb = words[0].upper() if words else b""
            c.verbs.append(verb.decode(errors="replace"))
            if verb in (b"HELO", b"EHLO") and c.helo is None:
                c.helo = words[1].decode(errors="replace") if len(words) > 1 else ""
                c.kind = "client" if c.helo == CLIENT_HELO else "check"
            if mode == "greet554":
                if verb == b"QUIT":
                    c.send("221 2.0.0 Bye\r\n")
                    c.close()
                    return
                c.send("503 5.5.1 Error: no service\r\n")
                continue
            if verb in (b"HELO", b"EHLO") and mode in ("helo421", "heloreply"):
                c.send("421 4.7.0 try again later\r\n" if mode == "helo421"
                       else beh.helo_reply + "\r\n")
                c.close()
                return
            if verb == b"EHLO":
                ext = ["PIPELINING", "SIZE 20480000"]
                if tls is not None and mode != "nostarttls" and not c.tls:
                    ext.append("STARTTLS")
                ext.append("8BITMIME")
                c.send("".join("250-%s\r\n" % x for x in [name] + ext[:-1]) +
                       "250 %s\r\n" % ext[-1])
            elif verb == b"HELO":
                c.send("250 %s\r\n" % name)
            elif verb == b"STARTTLS" and not c.tls and (tls is not None or
                                                        mode in ("tlsgarbage", "tlsclose")):
                c.send("220 2.0.0 Ready to start TLS\r\n")
                if mode in ("tlsclose", "tlsgarbage"):
                    # Wait for the ClientHello, so that the close or the
                    # garbage answers it (the handshake is under way).
                    try:
                        c.sock.settimeout(5)
                        c.received += c.sock.recv(65536)
                    except OSError:
                        pass
                if mode == "tlsclose":
                    c.close()
                    return
                if mode == "tlsgarbage":
                    c.send(b"this is not TLS at all\r\n" * 20)
                    c.close()
                    return
                try:
                    c.sock.settimeout(10)
                    c.sock = tls.wrap_socket(c.sock, server_side=True)
                    c.tls = True
                    c.note("tls")
                except (OSError, ValueError) as e:
                    c.note("tls failed: %s" % e)
                    c.tls_error = str(e)
                    c.close()
                    return
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                c.send("250 2.0.0 Ok %s\r\n" % name)
            elif verb == b"QUIT":
                c.send("221 2.0.0 Bye %s\r\n" % name)
                c.close()
                return
            else:
                c.send("502 5.5.2 Error: command not recognized\r\n")

    return handle


def conns_of_kind(backend, kind, after=None):
    """The Conns of backend of that kind (see health_handler), optionally
    only those accepted at or after the monotonic time after."""
    with backend.lock:
        conns = list(backend.conns)
    return [c for c in conns if getattr(c, "kind", None) == kind and
            (after is None or c.t_accept >= after)]


def client_session(host, port, timeout=5.0, hold=False):
    """Connect, read the banner, EHLO client.lbtest (so the backend can tell
    clients from checks), QUIT.  Returns (server name or None, banner
    bytes, Client).  hold=True: stop after the EHLO and leave it open."""
    c = Client(host, port, timeout=timeout)
    b = c.banner()
    name = banner_name(b)
    if name and b.startswith(b"220"):
        c.cmd("EHLO " + CLIENT_HELO)
        if not hold:
            try:
                c.cmd("QUIT")
            except OSError:
                pass
    if not hold:
        c.close()
    return name, b, c


# --------------------------------------------------------------------------
# Certificates (openssl command line)

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def _openssl(args, cwd):
    p = subprocess.run([OPENSSL] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if p.returncode != 0:
        raise DaemonError("openssl %s failed: %s" % (" ".join(args),
                                                      p.stderr.decode(errors="replace")))
    return p.stdout.decode(errors="replace")


class TestCA:
    """A throw-away CA made with `openssl`; leaf() issues certificates
    with explicit start/end dates (openssl ca -startdate/-enddate, so
    expired ones can be made too)."""

    def __init__(self, name="lbtest CA"):
        if not os.access(OPENSSL, os.X_OK):
            raise Skip("openssl is not installed")
        self.dir = tempdir("lbtest-ca-")
        d = self.dir
        os.mkdir(os.path.join(d, "newcerts"))
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "serial"), "w") as f:
            f.write("%04X\n" % random.randint(0x1000, 0xFFFF))
        self.key = os.path.join(d, "ca.key")
        self.cert = os.path.join(d, "ca.crt")
        _openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                  "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "3650",
                  "-subj", "/CN=" + name, "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
        self.cnf = os.path.join(d, "ca.cnf")
        with open(self.cnf, "w") as f:
            f.write("""[ ca ]
default_ca = CA_default
[ CA_default ]
dir = %(d)s
database = %(d)s/index.txt
new_certs_dir = %(d)s/newcerts
certificate = %(d)s/ca.crt
private_key = %(d)s/ca.key
serial = %(d)s/serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none
[ policy_any ]
commonName = supplied
""" % {"d": d})
        self.n = 0

    def leaf(self, cn, san=None, start=None, end=None, days=365):
        """Issue a certificate for cn (SAN: san, default DNS:cn).  start/end:
        datetime.datetime in UTC; default now - 1 day .. now + days.
        Returns (cert path, key path)."""
        import datetime
        now = datetime.datetime.now(datetime.timezone.utc)
        start = start or now - datetime.timedelta(days=1)
        end = end or now + datetime.timedelta(days=days)
        self.n += 1
        base = os.path.join(self.dir, "leaf%d" % self.n)
        ext = base + ".ext"
        with open(ext, "w") as f:
            f.write("basicConstraints = CA:FALSE\n"
                    "keyUsage = critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage = serverAuth\n"
                    "subjectAltName = %s\n" % (san or "DNS:" + cn))
        _openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                  "-nodes", "-keyout", base + ".key", "-out", base + ".csr",
                  "-subj", "/CN=" + cn], self.dir)
        _openssl(["ca", "-batch", "-config", self.cnf, "-in", base + ".csr",
                  "-out", base + ".crt", "-notext", "-extfile", ext,
                  "-startdate", start.strftime("%Y%m%d%H%M%SZ"),
                  "-enddate", end.strftime("%Y%m%d%H%M%SZ")], self.dir)
        return base + ".crt", base + ".key"

    def server_context(self, cn, **kw):
        """A server-side SSLContext presenting a new leaf for cn."""
        import ssl
        crt, key = self.leaf(cn, **kw)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        ctx.crt, ctx.key = crt, key
        return ctx


# --------------------------------------------------------------------------
# Raw SMTP client


class Client:
    """A raw TCP client: connect (optionally from a given source address),
    read SMTP replies, record every byte received."""

    def __init__(self, host, port, source=None, timeout=10.0, connect=True):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        if source is not None:
            self.sock.bind((source, 0))
        self.host, self.port = host, port
        self.timeout = timeout
        self.buf = bytearray()
        self.received = bytearray()
        self.eof = False
        self.error = None
        self.t_eof = None
        if connect:
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
        self.local_port = self.sock.getsockname()[1]

    def _fill(self, timeout):
        if self.eof:
            return False
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return None
        except OSError as e:
            self.error = e
            data = b""
        if not data:
            self.eof = True
            self.t_eof = time.monotonic()
            return False
        self.received += data
        self.buf += data
        return True

    def readline(self, timeout=None):
        """A line with CRLF; b"" on EOF; None on timeout (partial data stays buffered)."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if self.eof:
                return b""
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._fill(left)

    def reply(self, timeout=None):
        """One SMTP reply (all lines); returns bytes, b"" on EOF before any line,
        None on timeout."""
        out = bytearray()
        while True:
            line = self.readline(timeout)
            if line is None:
                return None if not out else bytes(out)
            if line == b"":
                return bytes(out)
            out += line
            if len(line) < 4 or line[3:4] != b"-":
                return bytes(out)

    def banner(self, timeout=None):
        return self.reply(timeout)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def cmd(self, line, timeout=None):
        self.send(line.encode() + b"\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply(timeout)

    def read_to_eof(self, timeout=None):
        """Read until EOF/reset; returns (bytes read here, True if EOF came)."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._fill(left)
        data = bytes(self.buf)
        self.buf.clear()
        return data, self.eof

    def nothing_for(self, seconds):
        """True when no byte and no EOF arrive within seconds."""
        if self.buf or self.eof:
            return False
        r = self._fill(seconds)
        return r is None

    def shutdown_wr(self):
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def reset(self):
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        self.close()


def banner_name(banner):
    """The server name in a "220 NAME ESMTP ..." banner (or None)."""
    if not banner:
        return None
    m = re.match(rb"220[ -](\S+)", banner)
    return m.group(1).decode() if m else None


def quick_session(host, port, source=None, timeout=5.0):
    """Connect, read the banner, QUIT; returns the server name (or None)."""
    c = Client(host, port, source=source, timeout=timeout)
    try:
        b = c.banner()
        name = banner_name(b)
        if name:
            c.cmd("QUIT")
        return name
    finally:
        c.close()



def session_server(host, port, timeout=5.0):
    """quick_session's server name, or None when the session failed."""
    try:
        return quick_session(host, port, timeout=timeout)
    except OSError:
        return None


def share_counts(host, port, n):
    """n sessions one after the other: ({server: count}, [server, ...])."""
    got = [session_server(host, port) for _ in range(n)]
    return {k: got.count(k) for k in set(got)}, got


def exe_of(pid):
    """/proc/PID/exe without a " (deleted)" suffix, or None."""
    try:
        link = os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None
    return link[:-len(" (deleted)")] if link.endswith(" (deleted)") else link


def pid_alive(pid):
    """The process exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


_METRIC_LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, frozenset of (label, value)): float}; label values
    unescaped."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][\w:]*)(\{.*\})?\s+(\S+)$", line)
        if not m:
            raise AssertionError("unparsable metrics line %r" % line)
        labels = {}
        if m.group(2):
            for k, v in _METRIC_LABEL_RE.findall(m.group(2)):
                labels[k] = re.sub(r"\\(.)", lambda x: "\n" if x.group(1) == "n" else x.group(1), v)
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return out


def read_pidfile(path):
    """The pid written in path, or None."""
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def stop_pids(pids, program, timeout=5.0):
    """Stop by PID (SIGTERM, then SIGKILL after timeout) each process of
    pids that still runs program (its path or the real path): a pid that
    was reused by another program is left alone."""
    names = (program, os.path.realpath(program))
    for pid in pids:
        if exe_of(pid) not in names:
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            continue
        if not wait_until(lambda: not pid_alive(pid), timeout):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def hold_session(host, port, source=None, timeout=5.0):
    """Connect and read the banner; returns (Client, server name)."""
    c = Client(host, port, source=source, timeout=timeout)
    return c, banner_name(c.banner())


# --------------------------------------------------------------------------
# Runner


def _watchdog(limit):
    def fire():
        log("FAIL: hard time limit of %ds reached; killing everything" % limit)
        cleanup_all()
        _remove_tmpdirs()
        os._exit(1)
    t = threading.Timer(limit, fire)
    t.daemon = True
    t.start()


def _alarm(signum, frame):
    raise TestTimeout("time limit reached")


def main(tests, timeout=60, per_test=None):
    """Run the sub-tests in order; exit 0/1/77."""
    name = os.path.basename(sys.argv[0])
    log("%s: LB_BIN=%s LB_SRCDIR=%s" % (name, LB_BIN, SRCDIR))
    if not os.access(LB_BIN, os.X_OK):
        log("FAIL: %s is not an executable (build the daemon first)" % LB_BIN)
        sys.exit(1)
    _watchdog(timeout + 20)
    signal.signal(signal.SIGALRM, _alarm)
    t_start = time.monotonic()
    skipped = 0
    for fn in tests:
        left = timeout - (time.monotonic() - t_start)
        if left <= 1:
            check(False, "%s: not run, time limit of %ds reached" % (fn.__name__, timeout))
            continue
        limit = int(min(left, per_test or left))
        log("== %s" % fn.__name__)
        nfail = len(_failures)
        n_daemons = len(_daemons)
        t0 = time.monotonic()
        signal.alarm(max(limit, 1))
        try:
            fn()
        except Skip as e:
            log("  SKIP %s: %s" % (fn.__name__, e))
            skipped += 1
        except AssertionError:
            pass
        except TestTimeout:
            check(False, "%s finished within %ds" % (fn.__name__, limit))
        except DaemonError as e:
            check(False, "%s: %s" % (fn.__name__, e))
        except Exception:
            check(False, "%s raised" % fn.__name__, traceback.format_exc())
        finally:
            signal.alarm(0)
            if len(_failures) > nfail:
                for d in _daemons[n_daemons:]:
                    log("  --- last lines of %s stderr (%s) ---" % (d.name, d.errpath))
                    for line in d.stderr().splitlines()[-25:]:
                        log("  | " + line)
                    if d.proc is not None and d.proc.poll() is not None:
                        log("  | (daemon exited with status %s)" % d.proc.returncode)
            for s in list(_servers):
                for e in s.errors:
                    log("  backend handler error:\n" + e)
            cleanup_all()
        log("   (%s: %.1fs)" % (fn.__name__, time.monotonic() - t0))
    log("%s: %d checks, %d failed, %.1fs" % (name, _checks, len(_failures),
                                              time.monotonic() - t_start))
    if _failures:
        for f in _failures:
            log("FAILED: " + f.splitlines()[0])
        sys.exit(1)
    if skipped == len(tests):
        sys.exit(SKIP)
    sys.exit(0)
