"""A scripted agent for the agent-check tests (load-balancer.conf(5), AGENT
CHECK; the protocol of HAProxy's agent-check): a TCP server on a loopback
port whose answer can be changed at run time, recording every connection.

    a = Agent("50%\\n")          # listening at once on a.port
    a.set("drain\\n")            # the next connections get "drain"
    a.set(mode="silent")         # accept and say nothing until the peer closes
    a.set(mode="close")          # accept and close without a byte
    a.set("up\\n", delay=0.3)    # answer after 0.3 s
    a.close_port()              # stop listening: connection refused
    a.open_port()               # listen again on the same port
    a.count()                   # connections accepted so far
    a.wait_count(n, timeout)    # until at least n were accepted

Each connection is an AgentConn: t_accept, t_end (when it closed), what
was received (agent.send's bytes), what was sent, how it ended.  The
server replies, shuts its side down (FIN), and reads what the peer still
sends until its EOF, so the reply is never lost to a reset.  Everything
is stopped by lbtest's cleanup (the Agent registers itself like a
Backend)."""

import selectors
import socket
import threading
import time

import lbtest as t


class AgentConn:
    def __init__(self, peer, mode, reply):
        self.peer = peer
        self.mode = mode
        self.reply = reply
        self.t_accept = time.monotonic()
        self.t_end = None
        self.received = bytearray()
        self.sent = b""
        self.peer_eof = False


class Agent:
    """The answer is bytes (or str); "\\n" is not added, so that lines
    without an end (the answer ended by the close) can be sent too."""

    def __init__(self, reply=b"", mode="reply", delay=0.0, host="127.0.0.1", port=None,
                 hold=10.0, name="agent"):
        self.host = host
        self.port = port or t.free_port(host)
        self.name = name
        self.hold = hold          # longest wait for the peer's EOF
        self.lock = threading.Lock()
        self.conns = []
        self.errors = []
        self.stopping = False
        self.sock = None
        self.threads = []
        self.t = None
        self.set(reply, mode=mode, delay=delay)
        self.open_port()
        t._servers.append(self)   # stopped by lbtest.cleanup_all()

    # ---- behaviour

    def set(self, reply=None, mode="reply", delay=0.0):
        """mode: "reply" (send reply, possibly after delay), "silent"
        (accept, say nothing, read until the peer closes), "close"
        (accept, close at once)."""
        if isinstance(reply, str):
            reply = reply.encode()
        with self.lock:
            if reply is not None:
                self.reply = reply
            self.mode = mode
            self.delay = delay

    @property
    def address(self):
        return t.addr(self.host, self.port)

    # ---- listening socket

    def open_port(self):
        if self.sock is not None:
            return
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(128)
        self.sock = s
        self.t = threading.Thread(target=self._accept_loop, args=(s,), daemon=True)
        self.t.start()

    def close_port(self):
        """Stop listening (connects are refused from now on)."""
        s, self.sock = self.sock, None
        if s is not None:
            try:
                s.close()
            except OSError:
                pass
        if self.t is not None:
            self.t.join(timeout=2)
            self.t = None

    def _accept_loop(self, lsock):
        sel = selectors.DefaultSelector()
        try:
            sel.register(lsock, selectors.EVENT_READ)
        except (OSError, ValueError):
            return
        while not self.stopping and self.sock is lsock:
            try:
                ev = sel.select(0.1)
            except (OSError, ValueError):
                break
            if not ev or self.sock is not lsock:
                continue
            try:
                c, peer = lsock.accept()
            except OSError:
                continue
            with self.lock:
                rec = AgentConn(peer, self.mode, self.reply)
                delay = self.delay
                self.conns.append(rec)
            th = threading.Thread(target=self._serve, args=(c, rec, delay), daemon=True)
            self.threads.append(th)
            th.start()
        sel.close()

    def _read_until_eof(self, c, rec, limit):
        deadline = time.monotonic() + limit
        while not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            c.settimeout(min(left, 0.2))
            try:
                data = c.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                rec.peer_eof = True
                return
            if not data:
                rec.peer_eof = True
                return
            rec.received += data

    def _serve(self, c, rec, delay):
        try:
            if rec.mode == "close":
                return
            if rec.mode == "silent":
                self._read_until_eof(c, rec, self.hold)
                return
            if delay:
                # What the peer sends meanwhile is kept; a peer that
                # gives up (timeout) ends the wait.
                self._read_until_eof(c, rec, delay)
                if rec.peer_eof:
                    return
            else:
                # agent.send's bytes, when the balancer sends some, come
                # at once: give them a moment, so that they are recorded.
                c.settimeout(0.02)
                try:
                    data = c.recv(65536)
                    if data:
                        rec.received += data
                    else:
                        rec.peer_eof = True
                except (socket.timeout, OSError):
                    pass
            try:
                c.settimeout(5)
                c.sendall(rec.reply)
                rec.sent = rec.reply
                c.shutdown(socket.SHUT_WR)
            except OSError:
                return
            if not rec.peer_eof:
                self._read_until_eof(c, rec, self.hold)
        except Exception as e:   # recorded, shown by the test
            self.errors.append("%s: %r" % (self.name, e))
        finally:
            rec.t_end = time.monotonic()
            try:
                c.close()
            except OSError:
                pass

    # ---- what happened

    def count(self):
        with self.lock:
            return len(self.conns)

    def conns_since(self, t0):
        with self.lock:
            return [r for r in self.conns if r.t_accept >= t0]

    def wait_count(self, n, timeout=5.0):
        return t.wait_until(lambda: self.count() >= n, timeout)

    def stop(self):
        self.stopping = True
        self.close_port()
        for th in self.threads:
            th.join(timeout=2)
