#!/usr/bin/env python3
"""Operator state across restarts (load-balancer.conf(5), OPERATOR STATE;
global.state_file): lbctl drain, disable and set weight are written to the
state file at once (a temporary file BASE.tmp renamed over it), `lbctl
enable` removes the server's line, and the file is read at start and after
every reload.  Sessions are counted per server from the banner of the server
that answered.

test_restart_initscript: the init script (the build's init.d/load-balancer
  with its own CONFIG, PIDFILE and DAEMON, as in test_initscript.py) runs
  the daemon.  filter2 drained with lbctl: the file holds `server
  backend="TO-FILTER-CLUSTER" name=filter2 admin=drain`; after `restart`
  filter2 is still DRAIN and gets 0 sessions, and the health log has the
  restored drain right after the new start line (lbctl health-report reads
  it);
  `lbctl enable` gives it 50 % again and its line is gone.  A weight set
  with lbctl (`weight=50`) survives a restart (show servers and shares);
  drain + weight make one line with both.
test_reload: a reload (SIGHUP, lbctl reload) keeps the drain and the
  weight; a server removed by a reload and added back by the next one gets
  its state back from the file (logged "state_file: restored be/B: drain",
  and the health log's drain event for B); the reloads that only keep a
  state write no health event.
test_sigkill_burst: 5 rounds of up to 1000 state changes (drain, disable,
  enable, set weight on 3 servers, sent one after the other on the control
  socket), the daemon killed with SIGKILL partway: the file parses and
  holds the state after the last acknowledged change (or the one in
  flight); the next start gives no warning about it and restores exactly
  that state (show servers, and no session reaches a drained or disabled
  server); a BASE.tmp left behind (by the kill, or a junk one put there by
  the test) is not read and is gone after the next change.
test_garbage_file: binary junk: a warning and a normal start; a file with
  good and bad lines: a warning naming each bad line's number, the good
  lines used (drain and weight), the bad ones ignored; a directory at the
  state file's path: a warning and a normal start.
test_missing_dir: a state_file in a directory that does not exist: a
  warning and a normal start, and lbctl drain still works.
test_quoting: names with a space or a double quote: a hand-written
  file with quoted values (logfmt) is restored, the daemon's own file
  quotes them and is read back at the next start."""

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"
BUILDDIR = os.path.dirname(os.path.abspath(t.LB_BIN))
W = 100
FIELD_SEQ_RE = re.compile(r'(?:\s*[A-Za-z_][\w.-]*=(?:"(?:[^"\\]|\\.)*"|[^\s"]*))+\s*')


# --------------------------------------------------------------------------
# Helpers


def read_state(path):
    """The state file: ({(backend, name): {"admin": str|None, "weight":
    int|None}}, [(line number, bad line)], raw text).  A missing file is
    empty."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return {}, [], ""
    text = raw.decode("utf-8", errors="replace")
    entries, bad = {}, []
    for i, line in enumerate(text.split("\n"), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = re.match(r"server\s+(.*)$", s)
        if not m or not FIELD_SEQ_RE.fullmatch(m.group(1)):
            bad.append((i, line))
            continue
        kv = t.parse_logfmt(m.group(1))
        keys = set(kv)
        admin, weight = kv.get("admin"), kv.get("weight")
        if not {"backend", "name"} <= keys or keys == {"backend", "name"} or \
                not keys <= {"backend", "name", "admin", "weight"} or \
                (admin is not None and admin not in ("ready", "drain", "maint")) or \
                (weight is not None and not (isinstance(weight, int) and 0 <= weight <= 256)):
            bad.append((i, line))
            continue
        key = (str(kv["backend"]), str(kv["name"]))
        if key in entries:
            bad.append((i, line))
            continue
        entries[key] = {"admin": admin, "weight": weight}
    return entries, bad, text


def rows_of(d, sock=None):
    rc, out, err = d.ctl("show servers", sock=sock) if d is not None else \
        t.run_lbctl(["-s", sock, "show", "servers"])
    return {r.get("SERVER"): r for r in t.parse_table(out)} if rc == 0 else {}


def shares(port, n):
    return t.share_counts(H, port, n)[0]


def warnings_about_state(err, path):
    """Lines of the daemon's log that warn about the state file: they
    name it (its path, or "state_file"), and are not the restore lines
    ("state_file: restored BACKEND/SERVER: ...").  The daemon's stderr
    carries no level: a warning is told by what it says."""
    out = []
    for ln in err.splitlines():
        if "event=" in ln or "client=" in ln:
            continue
        if (path in ln or re.search(r"state[ _]file", ln, re.I)) and \
                not re.search(r"state_file: restored ", ln):
            out.append(ln)
    return out


def run_paths():
    run = t.tempdir("lbtest-run-")
    return run, {"control_socket": os.path.join(run, "lb.sock"),
                 "health_log": os.path.join(run, "health.log"),
                 "state_file": os.path.join(run, "state")}


def write_conf(path, text):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


# --------------------------------------------------------------------------
# The init script, run from the build tree with its own paths




class InitScript:
    def __init__(self, conf_text):
        self.top = t.tempdir("lbtest-initsf-")
        self.script = os.path.join(BUILDDIR, "init.d", "load-balancer")
        if not os.path.exists(self.script):
            env = dict(os.environ)
            for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
                env.pop(k, None)
            subprocess.run(["make", "-s", "-C", BUILDDIR, "init.d/load-balancer"], env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        if not os.path.isfile(self.script):
            raise t.Skip("no init script in %s (init.d/load-balancer)" % BUILDDIR)
        self.conf = os.path.join(self.top, "lb.conf")
        with open(self.conf, "w") as f:
            f.write(conf_text)
        self.pidfile = os.path.join(self.top, "load-balancer.pid")
        self.defaults = os.path.join(self.top, "default-load-balancer")
        self.daemon = os.path.abspath(t.LB_BIN)
        with open(self.defaults, "w") as f:
            f.write("# test settings\nDAEMON=%s\nCONFIG=%s\nPIDFILE=%s\nSTOP_TIMEOUT=10\n"
                    % (self.daemon, self.conf, self.pidfile))
        self.pids = set()
        t.add_cleanup(self.kill_daemons)

    def pid(self):
        pid = t.read_pidfile(self.pidfile)
        if pid is not None:
            self.pids.add(pid)
        return pid

    def kill_daemons(self):
        t.stop_pids(self.pids, self.daemon)

    def sh(self, cmd, timeout=60):
        env = dict(os.environ, LB_DEFAULTS=self.defaults)
        t0 = time.monotonic()
        p = subprocess.Popen(["sh", self.script, cmd], env=env, cwd=self.top,
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
        t.log("  $ init.d/load-balancer %s -> exit %s (%.2fs)" % (cmd, rc, time.monotonic() - t0))
        for line in (out + err).splitlines():
            t.log("  | " + line)
        self.pid()
        return rc, out, err


def test_restart_initscript():
    bk = {n: t.Backend(t.smtp_handler(n), name=n) for n in ("filter1", "filter2")}
    port = t.free_port()
    run, paths = run_paths()
    be = "TO-FILTER-CLUSTER"
    text = t.make_config_multi(
        [({"name": "FRONT-FACING", "bind": t.addr(H, port), "backend": be},
          {"name": be, "timeout_server": "10m",
           "servers": [(n, bk[n].address, {"weight": W}) for n in ("filter1", "filter2")]})],
        glob=dict(paths, daemon=True))
    inst = InitScript(text)
    sock, sf, hl = paths["control_socket"], paths["state_file"], paths["health_log"]

    def ctl(*args):
        rc, out, err = t.run_lbctl(["-s", sock] + list(args))
        t.check(rc == 0 and out.startswith("ok"), "lbctl %s" % " ".join(args),
                "rc=%s %r %r" % (rc, out, err))

    def restart():
        old = inst.pid()
        rc, out, err = inst.sh("restart")
        new = inst.pid()
        # The old daemon exits once its sessions are done (none here).
        t.require(rc == 0 and new is not None and new != old and
                  t.wait_until(lambda: not t.pid_alive(old or 0), 10),
                  "init script restart: a new daemon (pid %s -> %s), the old one gone"
                  % (old, new), "exit %s" % rc)
        t.require(t.wait_until(lambda: t.is_listening(H, port), 5), "the new daemon listens")

    rc, out, err = inst.sh("start")
    t.require(rc == 0 and t.wait_until(lambda: t.is_listening(H, port), 5),
              "init script start", "exit %s %s" % (rc, err[-500:]))
    counts = shares(port, 20)
    t.check(counts == {"filter1": 10, "filter2": 10}, "before: 10 and 10 of 20 sessions", str(counts))

    ctl("drain", be + "/filter2")
    entries, bad, raw = read_state(sf)
    t.log("  state file after drain:\n" + "\n".join("  | " + ln for ln in raw.splitlines()))
    t.check(entries == {(be, "filter2"): {"admin": "drain", "weight": None}} and not bad,
            "the state file holds filter2 admin=drain, nothing else", "%s bad %s" % (entries, bad))
    lines = [ln for ln in raw.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    t.check(lines and re.fullmatch(r'server backend="?%s"? name=filter2 admin=drain' % be, lines[0]),
            'its line: server backend="TO-FILTER-CLUSTER" name=filter2 admin=drain', str(lines))
    t.check(not os.path.exists(sf + ".tmp"), "no state.tmp left after the write")

    def restore_events(nev, what, want):
        """The restore's events, right after the start line: the
        operator's state again, for lbctl health-report."""
        ev = t.read_health_log(hl)[nev:]
        kinds = [(e.get("event"), e.get("server"), e.get("weight")) for e in ev]
        t.check(kinds == want, "%s: the health log has %s" % (what, want),
                str([e["_line"] for e in ev]))
        t.check(all(e.get("by") is None for e in ev), "%s: no by= (the operator's state)" % what,
                str([e["_line"] for e in ev]))

    nev = len(t.read_health_log(hl))
    restart()
    r = rows_of(None, sock).get("filter2", {})
    counts = shares(port, 20)
    t.log("FIGURE after restart with filter2 drained: %s, sessions %s" % (r.get("STATE"), counts))
    t.check(r.get("STATE") == "DRAIN", "after restart: filter2 is still DRAIN", str(r))
    t.check(counts == {"filter1": 20}, "after restart: filter2 gets 0 of 20 sessions", str(counts))
    restore_events(nev, "restart with filter2 drained",
                   [("start", None, None), ("drain", "filter2", None)])

    ctl("enable", be + "/filter2")
    counts = shares(port, 20)
    entries, bad, raw = read_state(sf)
    t.check(counts == {"filter1": 10, "filter2": 10}, "after enable: 10 and 10 of 20", str(counts))
    t.check(entries == {} and not bad, "after enable the file no longer has filter2's line", raw)

    ctl("set", "weight", be + "/filter2", "50")
    entries, bad, raw = read_state(sf)
    t.check(entries == {(be, "filter2"): {"admin": None, "weight": 50}} and not bad,
            "after set weight: the file holds filter2 weight=50", raw)
    nev = len(t.read_health_log(hl))
    restart()
    r = rows_of(None, sock).get("filter2", {})
    counts = shares(port, 60)
    t.log("FIGURE after restart with filter2 at weight 50: WEIGHT %s, sessions %s"
          % (r.get("WEIGHT"), counts))
    t.check(r.get("WEIGHT") == "50" and r.get("STATE") == "UP",
            "after restart: filter2 UP with WEIGHT 50", str(r))
    t.check(abs(counts.get("filter2", 0) - 20) <= 2, "after restart: filter2 gets a third (20 of 60)",
            str(counts))
    restore_events(nev, "restart with filter2 at weight 50",
                   [("start", None, None), ("weight", "filter2", 50)])

    ctl("drain", be + "/filter2")
    entries, bad, raw = read_state(sf)
    t.check(entries == {(be, "filter2"): {"admin": "drain", "weight": 50}} and not bad,
            "drain + weight: one line with admin=drain weight=50", raw)
    ctl("enable", be + "/filter2")
    entries, bad, raw = read_state(sf)
    r = rows_of(None, sock).get("filter2", {})
    counts = shares(port, 20)
    t.check(entries == {} and not bad, "enable removes the line (drain and weight)", raw)
    t.check(r.get("WEIGHT") == "100" and counts == {"filter1": 10, "filter2": 10},
            "enable: the configured weight 100 again, 10 and 10 of 20", "%s %s" % (r, counts))
    rc, out, err = inst.sh("stop")
    t.check(rc == 0, "init script stop", "exit %s" % rc)


# --------------------------------------------------------------------------


def conf3(port, paths, names, bk):
    return t.make_config("%s:%d" % (H, port), [(n, bk[n].address, {"weight": W}) for n in names],
                         glob=paths)


def test_reload():
    bk = {n: t.Backend(t.smtp_handler(n), name=n) for n in "ABC"}
    port = t.free_port()
    run, paths = run_paths()
    d = t.Daemon(conf3(port, paths, "ABC", bk), [(H, port)], name="sf-reload").start()
    for cmd in ("drain be/B", "set weight be/C 50"):
        rc, out, err = d.ctl(cmd)
        t.require(rc == 0, "lbctl " + cmd, out + err)
    nev = len(d.health_events())

    def reloads():
        return len(re.findall(r"\breloaded\b", d.stderr(), re.I))

    for how in ("SIGHUP", "lbctl reload"):
        n0 = reloads()
        if how == "SIGHUP":
            d.signal(signal.SIGHUP)
        else:
            rc, out, err = d.ctl("reload")
            t.check(rc == 0, "lbctl reload", out + err)
        t.check(t.wait_until(lambda: reloads() > n0, 3), "%s: the daemon reloads" % how)
        rows = rows_of(d)
        counts = shares(port, 30)
        t.log("FIGURE after %s: B %s, C WEIGHT %s, sessions %s"
              % (how, rows.get("B", {}).get("STATE"), rows.get("C", {}).get("WEIGHT"), counts))
        t.check(rows.get("B", {}).get("STATE") == "DRAIN" and rows.get("C", {}).get("WEIGHT") == "50",
                "%s keeps B DRAIN and C's weight 50" % how, str(rows))
        t.check(counts == {"A": 20, "C": 10}, "%s: sessions A 20, C 10, B 0" % how, str(counts))

    n0 = reloads()
    write_conf(d.conf, conf3(port, paths, "AC", bk))
    rc, out, err = d.ctl("reload")
    t.check(rc == 0 and t.wait_until(lambda: reloads() > n0, 3), "reload without B", out + err)
    t.check("B" not in rows_of(d), "B is gone")
    n0 = reloads()
    err0 = len(d.stderr())
    write_conf(d.conf, conf3(port, paths, "ABC", bk))
    rc, out, err = d.ctl("reload")
    t.check(rc == 0 and t.wait_until(lambda: reloads() > n0, 3), "reload with B again", out + err)
    rows = rows_of(d)
    counts = shares(port, 30)
    t.check(rows.get("B", {}).get("STATE") == "DRAIN" and rows.get("C", {}).get("WEIGHT") == "50",
            "B, added back by a reload, gets its drain back from the file; C keeps weight 50",
            str(rows))
    t.check(counts == {"A": 20, "C": 10}, "sessions A 20, C 10, B 0", str(counts))
    t.check(t.wait_until(lambda: "state_file: restored be/B: drain" in d.stderr()[err0:], 1),
            "the daemon logs 'state_file: restored be/B: drain'",
            "\n".join(ln for ln in d.stderr()[err0:].splitlines() if "state" in ln)[-800:])
    ev = [(e.get("event"), e.get("server")) for e in d.health_events()[nev:]
          if e.get("server") in ("B", "C")]
    t.check(ev == [("drain", "B")],
            "health events for B and C over the reloads: only B's restored drain", str(ev))
    d.stop()


# --------------------------------------------------------------------------


SERVERS = ("A", "B", "C")
ROUNDS = 5


def model_lines(model):
    return {("be", n): {"admin": s["admin"], "weight": s["weight"]}
            for n, s in model.items() if s["admin"] is not None or s["weight"] is not None}


def apply(model, cmd):
    m = {n: dict(s) for n, s in model.items()}
    w = cmd.split()
    if w[0] == "set":
        m[w[2].split("/")[1]]["weight"] = int(w[3])
    else:
        n = w[1].split("/")[1]
        if w[0] == "enable":
            m[n] = {"admin": None, "weight": None}
        else:
            m[n]["admin"] = "drain" if w[0] == "drain" else "maint"
    return m


def commands(rng, n):
    out = []
    for _ in range(n):
        s = rng.choice(SERVERS)
        op = rng.choice(("drain", "disable", "enable", "weight", "weight"))
        if op == "weight":
            wv = rng.randint(0, 256)
            if wv == W:
                wv = 7
            out.append("set weight be/%s %d" % (s, wv))
        else:
            out.append("%s be/%s" % (op, s))
    return out


def expect_rows(model):
    out = {}
    for n, s in model.items():
        state = {"drain": "DRAIN", "maint": "MAINT"}.get(s["admin"], "UP")
        out[n] = (state, str(s["weight"] if s["weight"] is not None else W))
    return out


def test_sigkill_burst():
    bk = {n: t.Backend(t.smtp_handler(n), name=n) for n in SERVERS}
    port = t.free_port()
    run, paths = run_paths()
    sf = paths["state_file"]
    text = conf3(port, paths, SERVERS, bk)
    model = {n: {"admin": None, "weight": None} for n in SERVERS}
    rng = random.Random(1600)
    for rnd in range(ROUNDS):
        d = t.Daemon(text, [(H, port)], name="sf-kill%d" % rnd).start()
        if rnd > 0:
            err = d.stderr()
            warns = warnings_about_state(err, sf)
            t.check(not warns, "round %d: the start after SIGKILL gives no warning about the file" % rnd,
                    "\n".join(warns[:5]))
            rows = rows_of(d)
            got = {n: (rows.get(n, {}).get("STATE"), rows.get(n, {}).get("WEIGHT")) for n in SERVERS}
            want = expect_rows(model)
            t.check(got == want, "round %d: show servers restores the state the file holds" % rnd,
                    "got %s want %s" % (got, want))
            for n, s in model.items():
                if s["admin"] is not None or s["weight"] is not None:
                    t.check(re.search(r"state_file: restored be/%s\b" % n, err),
                            "round %d: the daemon logs 'state_file: restored be/%s'" % (rnd, n))
            usable = {n for n, s in model.items() if s["admin"] is None and s["weight"] != 0}
            got_s = [t.session_server(H, port) for _ in range(12)]
            if usable:
                t.check(set(got_s) <= usable,
                        "round %d: sessions only reach the servers neither drained, disabled nor "
                        "at weight 0 (%s)" % (rnd, "".join(sorted(usable))), str(got_s))
            else:
                t.check(not any(got_s), "round %d: no usable server: no session served" % rnd,
                        str(got_s))
            # One change: the file is written again, the .tmp is gone.
            cmd = "drain be/A"
            rc, out, e2 = d.ctl(cmd)
            t.check(rc == 0, "round %d: lbctl %s after the restart" % (rnd, cmd), out + e2)
            model = apply(model, cmd)
            entries, bad, raw = read_state(sf)
            t.check(entries == model_lines(model) and not bad,
                    "round %d: the next change writes a good file" % rnd, raw[:500])
            t.check(not os.path.exists(sf + ".tmp"), "round %d: no state.tmp after that write" % rnd)
        cmds = commands(rng, 1000)
        states = [model]
        for c in cmds:
            states.append(apply(states[-1], c))
        kill_at = rng.randint(250, 700)
        acked = [0]
        errors = []
        stop = threading.Event()

        def burst():
            for c in cmds:
                if stop.is_set():
                    return
                try:
                    got, eof = t.ctl_raw(d.control_socket, (c + "\n").encode(), timeout=5)
                except OSError:
                    return
                if not got.startswith(b"ok"):
                    if got or not eof:
                        errors.append((c, got[:100]))
                    return
                acked[0] += 1

        th = threading.Thread(target=burst, daemon=True)
        t0 = time.monotonic()
        th.start()
        t.wait_until(lambda: acked[0] >= kill_at or not th.is_alive(), 60, 0.001)
        d.signal(signal.SIGKILL)
        n_acked = acked[0]
        stop.set()
        th.join(10)
        el = time.monotonic() - t0
        t.wait_until(lambda: not d.alive(), 5)
        d.stop()
        n_final = acked[0]
        t.log("FIGURE round %d: %d changes acknowledged in %.2f s (%.1f ms each), SIGKILL after %d"
              % (rnd, n_final, el, 1000.0 * el / max(n_final, 1), n_acked))
        t.check(not errors, "round %d: every change before the kill answered ok" % rnd, str(errors[:3]))
        t.check(n_final >= 200, "round %d: the burst ran (%d changes)" % (rnd, n_final))
        entries, bad, raw = read_state(sf)
        tmp_present = os.path.exists(sf + ".tmp")
        t.check(not bad, "round %d: the file left by SIGKILL parses" % rnd, str(bad[:3]))
        match = [k for k in (n_final, n_final + 1) if k < len(states) and
                 model_lines(states[k]) == entries]
        t.check(match, "round %d: it holds the state after the last acknowledged change "
                "(%d) or the one in flight" % (rnd, n_final),
                "file %s; after %d: %s" % (entries, n_final, model_lines(states[n_final])))
        model = states[match[0]] if match else states[n_final]
        t.log("  round %d: file %s; %s" % (rnd, entries,
                                          "state.tmp left (%d bytes)" % os.path.getsize(sf + ".tmp")
                                          if tmp_present else "no state.tmp left"))
        if not tmp_present:
            # What a kill in the middle of a write leaves: a partial
            # temporary file.  It must not be read, and the next write
            # replaces it.
            with open(sf + ".tmp", "wb") as f:
                f.write(b"server backend=be name=A admin=maint\nserver backend=be name=B wei")
    # Last start: the state of the last round.
    d = t.Daemon(text, [(H, port)], name="sf-kill-last").start()
    rows = rows_of(d)
    got = {n: (rows.get(n, {}).get("STATE"), rows.get(n, {}).get("WEIGHT")) for n in SERVERS}
    t.check(got == expect_rows(model), "last start: show servers restores the file's state",
            "got %s want %s" % (got, expect_rows(model)))
    t.check(not warnings_about_state(d.stderr(), sf), "last start: no warning about the file",
            "\n".join(warnings_about_state(d.stderr(), sf)[:5]))
    for n in SERVERS:
        rc, out, err = d.ctl("enable be/%s" % n)
        t.check(rc == 0, "lbctl enable be/%s" % n, out + err)
    entries, bad, raw = read_state(sf)
    counts = shares(port, 30)
    t.check(entries == {} and not bad and not os.path.exists(sf + ".tmp"),
            "after enabling all: an empty state, no state.tmp", raw[:300])
    t.check(counts == {"A": 10, "B": 10, "C": 10}, "after enabling all: 10 sessions each", str(counts))
    d.stop()


# --------------------------------------------------------------------------


def test_garbage_file():
    bk = {n: t.Backend(t.smtp_handler(n), name=n) for n in "ABC"}

    def start_with(name, content=None, make=None):
        port = t.free_port()
        run, paths = run_paths()
        sf = paths["state_file"]
        if content is not None:
            with open(sf, "wb") as f:
                f.write(content)
        if make is not None:
            make(sf)
        d = t.Daemon(conf3(port, paths, "ABC", bk), [(H, port)], name=name).start()
        return d, port, sf

    # Binary junk.
    junk = random.Random(16).randbytes(4096)
    d, port, sf = start_with("sf-junk", junk)
    warns = warnings_about_state(d.stderr(), sf)
    rows = rows_of(d)
    counts = shares(port, 30)
    t.log("  junk file: %d warning lines, first: %r" % (len(warns), warns[:1]))
    t.check(d.alive() and warns, "binary junk: a warning about the state file, the daemon runs",
            d.stderr()[-1000:])
    t.check(all(rows.get(n, {}).get("STATE") == "UP" and rows.get(n, {}).get("WEIGHT") == "100"
                for n in "ABC") and counts == {"A": 10, "B": 10, "C": 10},
            "binary junk: a normal start (all UP at weight 100, 10 sessions each)",
            "%s %s" % ({n: r.get("STATE") for n, r in rows.items()}, counts))
    d.stop()

    # Good and bad lines.
    lines = [
        "# operator state",                                   # 1
        "server backend=be name=B admin=drain",               # 2 good
        "this is not a state line",                           # 3 bad
        "server backend=be name=C weight=50",                 # 4 good
        "server backend=be name=A admin=sideways",            # 5 bad
        "server backend=be name=A weight=999",                # 6 bad
        "server backend=be admin=drain",                      # 7 bad: no name
        "server backend=be name=A",                           # 8 bad: nothing to restore
        "\x00\xff\xfe garbage \x01",                          # 9 bad
        "",                                                   # 10 blank
        "server backend=be name=A weight=abc",                # 11 bad
    ]
    bad_lines = [3, 5, 6, 7, 8, 9, 11]
    d, port, sf = start_with("sf-mixed", "\n".join(lines).encode("latin-1") + b"\n")
    err = d.stderr()
    warns = warnings_about_state(err, sf)
    t.log("  mixed file warnings:\n" + "\n".join("  | " + w for w in warns))
    for n in bad_lines:
        t.check([w for w in warns if re.search(r"(?<![\d.])%d(?![\d.])" % n, w.replace(sf, ""))],
                "mixed file: a warning names bad line %d (%r)" % (n, lines[n - 1]))
    for n in (2, 4):
        t.check(not [w for w in warns if re.search(r"(?<![\d.])%d(?![\d.])" % n, w.replace(sf, ""))],
                "mixed file: no warning names the good line %d" % n)
    rows = rows_of(d)
    counts = shares(port, 30)
    t.log("FIGURE mixed file: A %s/%s, B %s/%s, C %s/%s; sessions %s"
          % tuple([rows.get(n, {}).get(k) for n in "ABC" for k in ("STATE", "WEIGHT")] + [counts]))
    t.check(d.alive() and rows.get("B", {}).get("STATE") == "DRAIN",
            "mixed file: the good line drains B", str(rows.get("B")))
    t.check(rows.get("C", {}).get("WEIGHT") == "50" and rows.get("C", {}).get("STATE") == "UP",
            "mixed file: the good line sets C's weight 50", str(rows.get("C")))
    t.check(rows.get("A", {}).get("STATE") == "UP" and rows.get("A", {}).get("WEIGHT") == "100",
            "mixed file: A, named only by bad lines, is untouched", str(rows.get("A")))
    t.check(counts == {"A": 20, "C": 10}, "mixed file: sessions A 20, C 10, B 0", str(counts))
    rc, out, e2 = d.ctl("enable be/B")
    entries, bad, raw = read_state(sf)
    t.check(rc == 0 and entries == {("be", "C"): {"admin": None, "weight": 50}} and not bad,
            "after enable be/B the file is written whole again: only C's weight", raw[:500])
    d.stop()

    # A directory where the file should be: unreadable as a file.
    d, port, sf = start_with("sf-dir", make=os.mkdir)
    warns = warnings_about_state(d.stderr(), sf)
    counts = shares(port, 30)
    t.check(d.alive() and warns and counts == {"A": 10, "B": 10, "C": 10},
            "a directory at the state file's path: a warning and a normal start",
            "%s %s" % (warns[:2], counts))
    d.stop()


def test_missing_dir():
    bk = {n: t.Backend(t.smtp_handler(n), name=n) for n in "AB"}
    port = t.free_port()
    run, paths = run_paths()
    sf = os.path.join(run, "no-such-dir", "state")
    paths["state_file"] = sf
    d = t.Daemon(t.make_config("%s:%d" % (H, port), [(n, bk[n].address) for n in "AB"], glob=paths),
                 [(H, port)], name="sf-nodir").start()
    warns = warnings_about_state(d.stderr(), sf)
    t.log("  warnings: %s" % warns)
    counts = shares(port, 20)
    t.check(warns, "a state_file in a missing directory: a warning", d.stderr()[-800:])
    t.check(d.alive() and counts == {"A": 10, "B": 10}, "... and a normal start (10 and 10 of 20)",
            str(counts))
    rc, out, err = d.ctl("drain be/B")
    t.log("  lbctl drain be/B with the directory missing -> rc=%s %r %r" % (rc, out.strip(), err.strip()))
    r = rows_of(d).get("B", {})
    t.check(d.alive() and r.get("STATE") == "DRAIN", "lbctl drain still drains B", str(r))
    t.check(not os.path.exists(os.path.dirname(sf)), "the directory is not created")
    d.stop()


def test_quoting():
    bk = {n: t.Backend(t.smtp_handler(n.replace(" ", "_").replace('"', "Q")), name=n)
          for n in ("f 1", 'q"x', "s")}
    p1, p2 = t.free_port(), t.free_port()
    run, paths = run_paths()
    sf = paths["state_file"]
    mx = "MX filters"
    text = t.make_config_multi(
        [({"name": "fe1", "bind": t.addr(H, p1), "backend": mx},
          {"name": mx, "servers": [(n, bk[n].address, {"weight": W}) for n in ("f 1", 'q"x')]}),
         ({"name": "fe2", "bind": t.addr(H, p2), "backend": "simple"},
          {"name": "simple", "servers": [("s", bk["s"].address, {"weight": W})]})],
        glob=paths)
    with open(sf, "w") as f:
        f.write('server backend="MX filters" name="f 1" admin=drain\n'
                'server backend="MX filters" name="q\\"x" weight=50\n')
    want = {(mx, "f 1"): {"admin": "drain", "weight": None},
            (mx, 'q"x'): {"admin": None, "weight": 50}}
    t.require(read_state(sf)[0] == want, "the hand-written file reads back (test's own parser)")
    d = t.Daemon(text, [(H, p1), (H, p2)], name="sf-quote").start()
    rows = {(r.get("BACKEND"), r.get("SERVER")): r
            for r in t.parse_table(d.ctl("show servers")[1])}
    t.check(rows.get((mx, "f 1"), {}).get("STATE") == "DRAIN" and
            rows.get((mx, 'q"x'), {}).get("WEIGHT") == "50",
            'quoted names in the file ("MX filters", "f 1", "q\\"x") are restored',
            str({k: (r.get("STATE"), r.get("WEIGHT")) for k, r in rows.items()}))
    t.check(not warnings_about_state(d.stderr(), sf), "no warning about the quoted lines",
            "\n".join(warnings_about_state(d.stderr(), sf)))
    rc, out, err = d.ctl("drain simple/s")
    t.check(rc == 0, "lbctl drain simple/s", out + err)
    entries, bad, raw = read_state(sf)
    t.log("  the file written by the daemon:\n" + "\n".join("  | " + ln for ln in raw.splitlines()))
    want[("simple", "s")] = {"admin": "drain", "weight": None}
    t.check(entries == want and not bad,
            "the file written whole again quotes the names with a space or a quote (logfmt)",
            "%s bad %s" % (entries, bad))
    d.stop()
    d = t.Daemon(text, [(H, p1), (H, p2)], name="sf-quote2").start()
    rows = {(r.get("BACKEND"), r.get("SERVER")): r
            for r in t.parse_table(d.ctl("show servers")[1])}
    got = {k: (r.get("STATE"), r.get("WEIGHT")) for k, r in rows.items()}
    t.check(got == {(mx, "f 1"): ("DRAIN", "100"), (mx, 'q"x'): ("UP", "50"),
                    ("simple", "s"): ("DRAIN", "100")},
            "the daemon's own file restores all three at the next start", str(got))
    d.stop()


ALL = [test_restart_initscript, test_reload, test_sigkill_burst, test_garbage_file,
       test_missing_dir, test_quoting]

if __name__ == "__main__":
    # Arguments: names of sub-tests to run (default: all).
    t.main([f for f in ALL if not sys.argv[1:] or f.__name__ in sys.argv[1:]], timeout=170)
