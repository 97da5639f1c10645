"""Network namespaces for the tests that build a routed test bed
(test_transparent.py, test_keepalived.py): commands run to completion
under the harness's time limit, namespaces listed, cleared (what still
runs in them killed by PID, then deleted), and the ones a killed earlier
run left behind swept at start; and the SMTP sink both run in them."""

import os
import re
import shutil
import signal
import subprocess
import time

import lbtest as t


def run(cmd, timeout=15, check=True):
    """Run a command to completion (registered, so a time limit or signal
    stops it by PID); returns (rc, stdout+stderr text)."""
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    t.register_proc(p, " ".join(cmd))
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        t.kill_proc(p)
        out, _ = p.communicate()
        raise AssertionError("%s: no end within %ds" % (" ".join(cmd), timeout))
    out = out.decode(errors="replace")
    if check and p.returncode != 0:
        t.require(False, "command succeeds: %s" % " ".join(cmd),
                  "status %s: %s" % (p.returncode, out.strip()))
    return p.returncode, out


def netns_list():
    try:
        out = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=10).stdout.decode()
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [ln.split()[0] for ln in out.splitlines() if ln.strip()]


def netns_pids(name):
    try:
        out = subprocess.run(["ip", "netns", "pids", name], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=10).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [int(p) for p in out if p.isdigit()]


def netns_del(name):
    subprocess.run(["ip", "netns", "del", name], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)


def netns_clear(name):
    """SIGKILL what still runs in one of our namespaces (by the PIDs the
    kernel lists for it), then delete the namespace."""
    for _ in range(3):
        pids = netns_pids(name)
        if not pids:
            break
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    netns_del(name)


def sweep_stale(pattern):
    """Remove namespaces a killed earlier run left behind (SIGKILL skips
    every cleanup), with what still runs in them.  pattern: a regular
    expression for our names whose group 1 is the creating run's PID; a
    namespace of a run still going is left alone."""
    for name in netns_list():
        m = re.fullmatch(pattern, name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue                     # that run is still going
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        t.log("  removing namespace %s left by a killed earlier run (processes %s)"
              % (name, netns_pids(name)))
        netns_clear(name)


def skip_reason(prefix):
    """Why network namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "not root: network namespaces need root"
    if shutil.which("ip") is None:
        return "no ip command (iproute2)"
    probe = "%s%d-probe" % (prefix, os.getpid())
    try:
        r = subprocess.run(["ip", "netns", "add", probe], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "ip netns add failed: %r" % e
    if r.returncode != 0:
        return "ip netns add failed: %s" % r.stdout.decode(errors="replace").strip()
    netns_del(probe)
    return None


# An SMTP sink for the test beds, written to a file and run inside a
# namespace with `ip netns exec`:  python3 sink.py OUT [NAME@]HOST:PORT ...
# One listener per argument (NAME defaults to HOST).  It appends JSON lines
# to OUT: "ready" once all listen; per session "conn" (server, peer and
# local [ip, port]), "msg" per message (server, peer, len and sha256 of
# the dot-unstuffed body, attempt from an "X-Attempt: N" header or null,
# t = monotonic time), "error" and "close" (messages).  The DATA reply
# carries the length and SHA-256, so a client can check them too.
SINK_PY = r'''
import hashlib, json, re, signal, socket, sys, threading, time
out = open(sys.argv[1], "a")
lock = threading.Lock()

def note(**kw):
    with lock:
        out.write(json.dumps(kw) + "\n")
        out.flush()

def serve(c, name):
    peer = list(c.getpeername()[:2])
    note(event="conn", server=name, peer=peer, local=list(c.getsockname()[:2]))
    c.settimeout(60)
    f = c.makefile("rb")
    n = 0
    try:
        c.sendall(b"220 " + name.encode() + b" ESMTP lbtest sink\r\n")
        while True:
            line = f.readline(65536)
            if not line:
                break
            verb = line[:4].upper()
            if verb == b"EHLO":
                c.sendall(b"250-" + name.encode() + b"\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
            elif verb == b"DATA":
                c.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                h = hashlib.sha256()
                size = 0
                attempt = None
                while True:
                    ln = f.readline(65536)
                    if not ln:
                        raise EOFError("EOF in DATA")
                    if ln == b".\r\n":
                        break
                    if ln.startswith(b"."):
                        ln = ln[1:]
                    m = re.match(rb"X-Attempt: (\d+)", ln)
                    if m and attempt is None:
                        attempt = int(m.group(1))
                    h.update(ln)
                    size += len(ln)
                n += 1
                note(event="msg", server=name, peer=peer, len=size, sha256=h.hexdigest(),
                     attempt=attempt, t=time.monotonic())
                c.sendall(b"250 2.0.0 Ok len=%d sha256=%s\r\n" % (size, h.hexdigest().encode()))
            elif verb == b"QUIT":
                c.sendall(b"221 2.0.0 Bye\r\n")
                break
            else:
                c.sendall(b"250 2.0.0 Ok\r\n")
    except Exception as e:
        note(event="error", server=name, peer=peer, error=repr(e))
    finally:
        note(event="close", server=name, peer=peer, messages=n)
        c.close()

def accept_loop(s, name):
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c, name), daemon=True).start()

for spec in sys.argv[2:]:
    name, _, addr = spec.rpartition("@")
    host, port = addr.rsplit(":", 1)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(128)
    threading.Thread(target=accept_loop, args=(s, name or host), daemon=True).start()
note(event="ready")
while True:
    signal.pause()
'''
