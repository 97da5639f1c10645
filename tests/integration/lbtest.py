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

Environment: LB_BIN (the daemon), LB_SRCDIR (the source tree),
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
        for p, _ in reversed(procs):
            kill_proc(p, signal.SIGTERM, 3.0)
        for s in servers:
            try:
                s.stop()
            except Exception:
                pass
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
    return '"%s"' % str(v).replace("\\", "\\\\").replace('"', '\\"')


def opts(d):
    return " ".join("%s = %s;" % (k, _val(v)) for k, v in (d or {}).items())


def server_entry(name, address, **kw):
    d = {"name": name, "address": address}
    d.update(kw)
    return "{ %s }" % opts(d)


def global_block(**kw):
    g = {"daemon": False, "grace": "2s"}
    g.update(kw)
    return "global = { %s log = { syslog = false; }; };\n" % opts(g)


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
        with open(self.conf, "w") as f:
            f.write(config)
        _daemons.append(self)

    def start(self, wait=True, timeout=5.0):
        self._err = open(self.errpath, "ab")
        self._out = open(self.outpath, "ab")
        self.proc = subprocess.Popen(
            [LB_BIN, "-F", "-f", self.conf, "-p", self.pidfile],
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
            cwd=self.dir)
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
            if all(is_listening(h, p) for h, p in self.listen):
                return
            if time.monotonic() > deadline:
                raise DaemonError("daemon not listening on %s after %.1fs; stderr:\n%s"
                                  % (self.listen, timeout, self.stderr()[-3000:]))
            time.sleep(0.02)

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

    def session_for(self, client_port, timeout=5.0):
        """The session line of the client using local port client_port."""
        def find():
            for s in self.sessions():
                c = str(s.get("client", ""))
                if c.rsplit(":", 1)[-1] == str(client_port):
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
        self.returncode = kill_proc(self.proc, signal.SIGTERM, timeout)
        for f in (self._err, self._out):
            try:
                f.close()
            except Exception:
                pass
        if not getattr(self, "_stop_checked", False):
            self._stop_checked = True
            err = self.stderr()
            m = re.search(r"ERROR: (Address|Leak)Sanitizer.*|runtime error:.*", err)
            check(m is None, "%s: no sanitizer report" % self.name,
                  m.group(0) if m else "")
            if was_running:
                check(self.returncode == 0, "%s: exits 0 on SIGTERM" % self.name,
                      "status %s" % self.returncode)
        return self.returncode

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


_daemons = []


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
