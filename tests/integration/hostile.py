"""Helpers of the fault suite (test_hostile.py, test_fdlimit.py,
test_sickservers.py): what a process uses (/proc), descriptor limits, and a
one-thread epoll SMTP server and client pool for thousands of connections
(lbtest.Backend runs a thread per connection)."""

import errno
import os
import resource
import selectors
import socket
import threading
import time

import lbtest as t

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_status(pid):
    """VmRSS, VmHWM (peak RSS), VmSize in KiB and Threads from
    /proc/PID/status; {} when the process is gone."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "VmSize", "Threads"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def cpu_seconds(pid):
    """User + system CPU time of a process (all its threads), seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_over(pid, seconds):
    """CPU seconds a process used over the next `seconds` of wall time."""
    c0 = cpu_seconds(pid)
    time.sleep(seconds)
    return cpu_seconds(pid) - c0


def nfds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def raise_nofile(want):
    """Raise this process's RLIMIT_NOFILE to want if the hard limit allows
    (raising the hard limit needs CAP_SYS_RESOURCE); returns the soft
    limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    else:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def nofile_limit(n):
    """A preexec_fn for Daemon.start: RLIMIT_NOFILE soft = hard = n (at
    most the current hard limit)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY:
        n = min(n, hard)

    def fn():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return fn


def show_info(d):
    """`lbctl show info` as a dict (values as text); {} when it fails."""
    rc, out, _ = d.ctl("show info")
    if rc != 0:
        return {}
    info = {}
    for line in out.splitlines():
        k, sep, v = line.partition(": ")
        if sep:
            info[k.strip()] = v.strip()
    return info


class EpollSmtp:
    """An SMTP server in one thread (epoll), for thousands of connections:
    greets "220 NAME ESMTP", answers QUIT with 221 and closes, anything
    else with "250 2.0.0 ok NAME"; counts what it saw."""

    def __init__(self, name="E", host="127.0.0.1", backlog=8192):
        self.name = name
        self.host = host
        self.port = t.free_port(host)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, self.port))
        self.lsock.listen(backlog)
        self.lsock.setblocking(False)
        self.sel = selectors.EpollSelector()
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        self.accepted = 0
        self.open = 0
        self.lines = 0
        self.stopping = False
        self.lock = threading.Lock()
        self.th = threading.Thread(target=self._loop, daemon=True)
        t.add_cleanup(self.stop)
        self.th.start()

    @property
    def address(self):
        return t.addr(self.host, self.port)

    def _close(self, s):
        try:
            self.sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()
        with self.lock:
            self.open -= 1

    def _loop(self):
        greet = ("220 %s ESMTP\r\n" % self.name).encode()
        ok = ("250 2.0.0 ok %s\r\n" % self.name).encode()
        while not self.stopping:
            try:
                events = self.sel.select(0.2)
            except (OSError, ValueError):
                break
            for key, _ in events:
                if key.data is None:
                    for _ in range(256):
                        try:
                            s, _ = self.lsock.accept()
                        except (BlockingIOError, InterruptedError):
                            break
                        except OSError:
                            break
                        s.setblocking(False)
                        with self.lock:
                            self.accepted += 1
                            self.open += 1
                        try:
                            s.send(greet)
                        except OSError:
                            self._close(s)
                            continue
                        self.sel.register(s, selectors.EVENT_READ, bytearray())
                    continue
                s, buf = key.fileobj, key.data
                try:
                    data = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    self._close(s)
                    continue
                buf += data
                quit_ = False
                while b"\n" in buf:
                    line, _, rest = bytes(buf).partition(b"\n")
                    buf[:] = rest
                    with self.lock:
                        self.lines += 1
                    try:
                        if line.strip().upper() == b"QUIT":
                            s.send(b"221 2.0.0 bye\r\n")
                            quit_ = True
                            break
                        s.send(ok)
                    except OSError:
                        quit_ = True
                        break
                if quit_:
                    self._close(s)
        for key in list(self.sel.get_map().values()):
            try:
                key.fileobj.close()
            except OSError:
                pass
        self.sel.close()

    def stop(self):
        if not self.stopping:
            self.stopping = True
            self.th.join(timeout=5)


class ClientPool:
    """Many client connections driven from one thread: connect in batches,
    wait for a line on each, send to all, close or reset all."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.socks = []
        self.bufs = {}

    def connect(self, n, batch=500, timeout=30.0):
        """Open n more connections (non-blocking connects, at most batch
        in flight); returns how many connected within the timeout."""
        deadline = time.monotonic() + timeout
        done = 0
        while done < n and time.monotonic() < deadline:
            k = min(batch, n - done)
            sel = selectors.EpollSelector()
            pending = []
            for _ in range(k):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                rc = s.connect_ex((self.host, self.port))
                if rc not in (0, errno.EINPROGRESS):
                    s.close()
                    continue
                sel.register(s, selectors.EVENT_WRITE)
                pending.append(s)
            left = set(pending)
            while left and time.monotonic() < deadline:
                for key, _ in sel.select(0.5):
                    s = key.fileobj
                    sel.unregister(s)
                    left.discard(s)
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                        self.socks.append(s)
                        self.bufs[s] = bytearray()
                        done += 1
                    else:
                        s.close()
            for s in left:
                sel.unregister(s)
                s.close()
            sel.close()
        return done

    def read_lines(self, socks=None, timeout=30.0, want=b"\n"):
        """Read until every socket of socks (default: all) has a complete
        line; returns {sock: first line} for those that got one (a socket
        closed before a line maps to b"" plus what it had)."""
        socks = list(self.socks if socks is None else socks)
        got = {}
        sel = selectors.EpollSelector()
        for s in socks:
            if want in self.bufs[s]:
                line, _, rest = bytes(self.bufs[s]).partition(want)
                self.bufs[s][:] = rest
                got[s] = line + want
            else:
                sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while len(got) < len(socks) and time.monotonic() < deadline:
            for key, _ in sel.select(0.5):
                s = key.fileobj
                try:
                    data = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    got[s] = bytes(self.bufs[s])
                    self.bufs[s].clear()
                    sel.unregister(s)
                    continue
                self.bufs[s] += data
                if want in self.bufs[s]:
                    line, _, rest = bytes(self.bufs[s]).partition(want)
                    self.bufs[s][:] = rest
                    got[s] = line + want
                    sel.unregister(s)
        sel.close()
        return got

    def send_all(self, data, socks=None):
        n = 0
        for s in (self.socks if socks is None else socks):
            try:
                s.send(data)
                n += 1
            except OSError:
                pass
        return n

    def close(self, socks=None, reset=False):
        socks = list(self.socks if socks is None else socks)
        for s in socks:
            if reset:
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
                except OSError:
                    pass
            try:
                s.close()
            except OSError:
                pass
            self.bufs.pop(s, None)
        gone = set(socks)
        self.socks = [s for s in self.socks if s not in gone]
