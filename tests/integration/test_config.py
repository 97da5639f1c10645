#!/usr/bin/env python3
"""Command line and configuration checking (load-balancer(8), OPTIONS and
EXIT STATUS; load-balancer.conf(5)):
-c on the shipped configurations, FILE:LINE: diagnostics for bad files,
exit codes 0/1/2/3, and a bind failure at start."""

import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

WORK = t.tempdir("lbtest-config-")


def write(name, text):
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def markers(text):
    """{marker: line number} for every "#Ex" comment in text."""
    out = {}
    for i, line in enumerate(text.splitlines(), 1):
        for m in re.findall(r"#(E\d+)", line):
            out[m] = i
    return out


def error_lines(path, err):
    """[(line, message)] of the "FILE:LINE: message" errors (not warnings)."""
    out = []
    for line in err.splitlines():
        m = re.search(re.escape(path) + r":(\d+): (.*)", line)
        if m and not m.group(2).startswith("warning:"):
            out.append((int(m.group(1)), m.group(2)))
    return out


GLOBAL = 'global = { daemon = false; log = { syslog = false; }; };\n'

# A valid base: every test below changes one thing.
BASE = GLOBAL + """frontends = (
  { name = "fe";
    bind = "127.0.0.1:10025";
    backend = "be";
    timeout_client = "30s"; }
);
backends = (
  { name = "be";
    timeout_server = "11m";
    servers = (
      { name = "s1"; address = "127.0.0.1:10026"; weight = 3; },
      { name = "s2"; address = "127.0.0.1:10027"; }
    ); }
);
"""


def run_check(name, text):
    path = write(name, text)
    rc, out, err = t.run_lb(["-c", "-f", path])
    return path, rc, out, err


def expect_error(label, text, marker, words):
    """-c must exit 1, not print "configuration OK", and report an error at
    the marker's line whose message mentions one of words."""
    lines = markers(text)
    path, rc, out, err = run_check(label + ".conf", text)
    want = lines[marker]
    errs = error_lines(path, err)
    t.log("  [%s] rc=%s stderr=%r" % (label, rc, err.strip()[:400]))
    t.check(rc == 1, "%s: exit status 1" % label, "got %s" % rc)
    t.check("configuration OK" not in out, "%s: no 'configuration OK'" % label)
    at_line = [m for (ln, m) in errs if ln == want]
    t.check(at_line, "%s: an error reported as %s:%d: ..." % (label, os.path.basename(path), want),
            "errors seen at lines %s" % [ln for ln, _ in errs])
    if at_line and words:
        t.check(any(w.lower() in m.lower() for m in at_line for w in words),
                "%s: message names %s" % (label, " or ".join(words)), repr(at_line))
    return errs


def test_shipped_configs():
    found = False
    for name in ("load-balancer.conf", "demo.conf", "transparent.conf"):
        path = os.path.join(t.SRCDIR, "etc", name)
        if not os.path.exists(path):
            t.log("  note: %s does not exist yet; not checked" % path)
            continue
        found = True
        rc, out, err = t.run_lb(["-c", "-f", path])
        t.log("  %s: rc=%s stdout=%r stderr=%r" % (name, rc, out.strip(), err.strip()[:300]))
        t.check(rc == 0, "-c etc/%s exits 0" % name, "got %s" % rc)
        t.check("configuration OK" in out, "-c etc/%s prints 'configuration OK' on stdout" % name)
        bad = [ln for ln in err.splitlines() if ln.strip() and ": warning: " not in ln]
        t.check(not bad, "-c etc/%s: stderr holds warnings only" % name, repr(bad))
    if not found:
        raise t.Skip("etc/load-balancer.conf and etc/demo.conf do not exist yet")


def test_valid_full():
    """Every key implemented in this version, durations in every unit."""
    text = """global = {
  daemon = false;
  maxconn = 100;
  grace = "1500ms";
  workers = 1;
  pidfile = "%s/x.pid";
  log = { syslog = false; facility = "local3"; ident = "lbtest"; level = "debug"; sessions = true; };
};
frontends = (
  { name = "fe1"; bind = [ "127.0.0.1:10025", "[::1]:10025" ]; backend = "be1";
    timeout_client = "1m"; maxconn = 10; backlog = 64; transparent = false;
    unavailable_reply = "421 4.3.2 Try again later"; },
  { name = "fe2"; bind = ( "127.0.0.1:10125" ); backend = "be2"; unavailable_reply = ""; },
  { name = "fe3"; bind = "127.0.0.1:10225"; backend = "be3"; timeout_client = 30000; }
);
backends = (
  { name = "be1"; balance = "roundrobin"; timeout_connect = "5s"; timeout_server = "1h";
    timeout_queue = "250ms"; retries = 0; fullconn = 20; source = ""; proxy_protocol = "none";
    on_marked_down = "none";
    servers = (
      { name = "a"; address = "127.0.0.1:10026"; weight = 256; maxconn = 5; minconn = 2; check = false; },
      { name = "b"; address = "[::1]:10026"; weight = 0; backup = true; },
      { name = "c"; address = "localhost:10027"; disabled = true; }
    ); },
  { name = "be2"; balance = "leastconn"; timeout_server = "14d";
    servers = ( { name = "a"; address = "127.0.0.1:10028"; } ); },
  { name = "be3"; balance = "source"; timeout_server = 600000;
    servers = ( { name = "a"; address = "127.0.0.1:10029"; weight = 1; } ); }
);
""" % WORK
    path, rc, out, err = run_check("full.conf", text)
    t.log("  rc=%s stdout=%r stderr=%r" % (rc, out.strip(), err.strip()[:500]))
    t.check(rc == 0, "-c on a file using every implemented key exits 0", "got %s" % rc)
    t.check("configuration OK" in out, "it prints 'configuration OK'")
    t.check(not error_lines(path, err), "no error lines", err.strip()[:300])


def test_unknown_key():
    text = BASE.replace('timeout_client = "30s"; }',
                        'timeout_client = "30s";\n    frobnicate = 1; }  #E1')
    expect_error("unknown-key", text, "E1", ["frobnicate"])
    text = BASE.replace('weight = 3; },', 'weight = 3; colour = "blue"; },  #E1')
    expect_error("unknown-server-key", text, "E1", ["colour"])
    text = BASE.replace("global = { daemon = false;", "global = { daemon = false; shiny = true;  #E1\n")
    expect_error("unknown-global-key", text, "E1", ["shiny"])


def test_bad_duration():
    text = BASE.replace('timeout_client = "30s"; }', 'timeout_client = "30 parsecs"; }  #E1')
    expect_error("bad-duration", text, "E1", ["timeout_client", "parsecs", "duration"])
    text = BASE.replace('timeout_server = "11m";', 'timeout_server = "10x";  #E1')
    expect_error("bad-duration-unit", text, "E1", ["timeout_server", "10x", "duration"])
    text = BASE.replace('timeout_server = "11m";', 'timeout_server = "-5s";  #E1')
    expect_error("negative-duration", text, "E1", ["timeout_server", "-5s", "duration"])


def test_weight_range():
    text = BASE.replace("weight = 3;", "weight = 257;").replace(
        '"127.0.0.1:10026"; weight = 257; },', '"127.0.0.1:10026"; weight = 257; },  #E1')
    expect_error("weight-257", text, "E1", ["weight", "257"])
    text = BASE.replace("weight = 3;", "weight = -1;").replace(
        '"127.0.0.1:10026"; weight = -1; },', '"127.0.0.1:10026"; weight = -1; },  #E1')
    expect_error("weight-negative", text, "E1", ["weight", "-1"])
    text = BASE.replace("weight = 3;", "weight = 256;")
    path, rc, out, err = run_check("weight-256.conf", text)
    t.check(rc == 0 and "configuration OK" in out, "weight = 256 is accepted",
            "rc=%s %s" % (rc, err.strip()[:200]))


def test_missing_backend():
    text = BASE.replace('backend = "be";', 'backend = "NOPE";  #E1')
    expect_error("missing-backend", text, "E1", ["NOPE"])


def test_duplicate_server():
    text = BASE.replace('{ name = "s2"; address = "127.0.0.1:10027"; }',
                        '{ name = "s1"; address = "127.0.0.1:10027"; }  #E1')
    expect_error("duplicate-server", text, "E1", ["s1", "duplicate"])


def test_bad_address():
    for label, a in (("no-port", "127.0.0.1"), ("port-range", "127.0.0.1:99999"),
                     ("bad-ipv6", "[::1:10026"), ("garbage", "not an address")):
        text = BASE.replace('address = "127.0.0.1:10026"; weight = 3; },',
                            'address = "%s"; weight = 3; },  #E1' % a)
        expect_error("address-" + label, text, "E1", ["address", a])
    text = BASE.replace('bind = "127.0.0.1:10025";', 'bind = "127.0.0.1:";  #E1')
    expect_error("bind-no-port", text, "E1", ["bind", "127.0.0.1:"])


def test_missing_required():
    # A frontend group without bind: the error points at the group's line.
    text = BASE.replace('  { name = "fe";\n    bind = "127.0.0.1:10025";\n',
                        '  { name = "fe";  #E1\n')
    expect_error("missing-bind", text, "E1", ["bind"])
    # A server without address, the whole group on one line.
    text = BASE.replace('{ name = "s2"; address = "127.0.0.1:10027"; }',
                        '{ name = "s2"; weight = 2; }  #E1')
    expect_error("missing-address", text, "E1", ["address"])
    # A backend without name (the frontend's reference then fails too).
    text = BASE.replace('  { name = "be";\n    timeout_server', '  {  #E1\n    timeout_server')
    expect_error("missing-name", text, "E1", ["name"])


def test_several_errors():
    text = BASE.replace('timeout_client = "30s"; }', 'timeout_client = "3 fortnights"; }  #E1')
    text = text.replace('timeout_server = "11m";', 'timeout_server = "11m"; bogus_key = 7;  #E2')
    text = text.replace('"127.0.0.1:10026"; weight = 3; },', '"127.0.0.1:10026"; weight = 1000; },  #E3')
    text = text.replace('address = "127.0.0.1:10027";', 'address = "127.0.0.1:port";') \
        .replace('"127.0.0.1:port"; }', '"127.0.0.1:port"; }  #E4')
    lines = markers(text)
    path, rc, out, err = run_check("several.conf", text)
    errs = error_lines(path, err)
    t.log("  rc=%s errors=%s" % (rc, errs))
    t.check(rc == 1, "several errors: exit 1", "got %s" % rc)
    for mk, label in (("E1", "bad duration"), ("E2", "unknown key"), ("E3", "weight range"),
                      ("E4", "bad address")):
        t.check(any(ln == lines[mk] for ln, _ in errs),
                "several errors: the %s at line %d is reported" % (label, lines[mk]))


def test_syntax_error():
    text = BASE.replace('timeout_client = "30s"; }', 'timeout_client = "30s" }\n  garbage garbage;  #E1')
    lines = markers(text)
    path, rc, out, err = run_check("syntax.conf", text)
    errs = error_lines(path, err)
    t.log("  rc=%s stderr=%r" % (rc, err.strip()))
    t.check(rc == 1, "syntax error: exit 1", "got %s" % rc)
    t.check(any(abs(ln - lines["E1"]) <= 1 for ln, _ in errs),
            "syntax error: reported as FILE:LINE: near line %d" % lines["E1"], repr(errs))
    missing = os.path.join(WORK, "does-not-exist.conf")
    rc, out, err = t.run_lb(["-c", "-f", missing])
    t.log("  missing file: rc=%s stderr=%r" % (rc, err.strip()))
    t.check(rc == 1, "a missing configuration file: exit 1", "got %s" % rc)
    t.check(missing in err, "a missing configuration file: stderr names the file")


def test_port25_warning():
    text = BASE.replace('bind = "127.0.0.1:10025";', 'bind = "127.0.0.1:25";') \
        .replace('timeout_server = "11m";', 'timeout_server = "1m";')
    path, rc, out, err = run_check("warn.conf", text)
    t.log("  rc=%s stdout=%r stderr=%r" % (rc, out.strip(), err.strip()))
    t.check(rc == 0, "port 25 with timeout_server 1m: -c still exits 0", "got %s" % rc)
    t.check("configuration OK" in out, "it prints 'configuration OK'")
    t.check(re.search(re.escape(path) + r":\d+: warning: ", err),
            "it prints FILE:LINE: warning: ...")
    # 11 minutes: no warning.
    text = BASE.replace('bind = "127.0.0.1:10025";', 'bind = "127.0.0.1:25";')
    path, rc, out, err = run_check("nowarn.conf", text)
    t.check(rc == 0 and "warning" not in err, "port 25 with timeout_server 11m: no warning",
            "rc=%s %r" % (rc, err.strip()))


def test_usage():
    rc, out, err = t.run_lb(["-h"])
    t.log("  -h: rc=%s out=%r" % (rc, (out + err).strip()[:200]))
    t.check(rc == 0, "-h exits 0", "got %s" % rc)
    t.check(("-f" in out + err) and ("-c" in out + err), "-h prints the usage with -f and -c")
    rc, out, err = t.run_lb(["-Z"])
    t.log("  -Z: rc=%s err=%r" % (rc, err.strip()[:200]))
    t.check(rc == 2, "an unknown flag (-Z) exits 2", "got %s" % rc)
    t.check(err.strip() != "", "an unknown flag prints something on stderr")
    rc, out, err = t.run_lb(["-c", "-f"])
    t.check(rc == 2, "-f without its argument exits 2", "got %s" % rc)
    rc, out, err = t.run_lb(["-V"])
    t.log("  -V: rc=%s out=%r" % (rc, (out + err).strip()[:200]))
    t.check(rc == 0 and (out + err).strip() != "", "-V exits 0 and prints the version")


def test_bind_failure():
    port = t.free_port()
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", port))
    busy.listen(5)
    try:
        srv = t.free_port()
        text = t.make_config("127.0.0.1:%d" % port, [("s1", "127.0.0.1:%d" % srv)])
        d = t.Daemon(text, [("127.0.0.1", port)], name="bindfail")
        d.start(wait=False)
        t0 = time.monotonic()
        try:
            rc = d.proc.wait(timeout=5)
        except Exception:
            rc = None
        elapsed = time.monotonic() - t0
        err = d.stderr()
        d.stop()
        t.log("  rc=%s after %.2fs, stderr=%r" % (rc, elapsed, err.strip()))
        t.check(rc == 3, "bind on a port in use: exit status 3", "got %s" % rc)
        mention = [ln for ln in err.splitlines() if "127.0.0.1:%d" % port in ln]
        t.check(len(mention) == 1, "exactly one stderr line names 127.0.0.1:%d" % port,
                "%d lines" % len(mention))
        t.check(any(re.search(r"in use", ln, re.I) for ln in mention),
                "that line gives the reason (Address already in use)")
        # The same with a list of binds where only the second one is busy.
        good = t.free_port()
        text = t.make_config(["127.0.0.1:%d" % good, "127.0.0.1:%d" % port],
                             [("s1", "127.0.0.1:%d" % srv)])
        d = t.Daemon(text, [("127.0.0.1", good)], name="bindfail2")
        d.start(wait=False)
        try:
            rc = d.proc.wait(timeout=5)
        except Exception:
            rc = None
        err = d.stderr()
        d.stop()
        t.check(rc == 3, "bind list with one busy address: exit status 3", "got %s, %r" % (rc, err.strip()))
    finally:
        busy.close()


def test_import_haproxy():
    """--import-haproxy on the seed's two HAProxy configurations
    (load-balancer(8), OPTIONS):
    exit 0, one untranslatable directive on stderr (the second log line),
    the same translation as the unit test's golden files, and an output
    that -c accepts."""
    data = os.path.join(t.SRCDIR, "tests", "unit", "data")
    for mode in ("nontransparent", "transparent"):
        src = os.path.join(data, "haproxy-seed-%s.cfg" % mode)
        rc, out, err = t.run_lb(["--import-haproxy", src])
        t.log("  %s: rc=%s stderr=%r" % (mode, rc, err.strip()))
        t.check(rc == 0, "%s: --import-haproxy exits 0" % mode, "got %s" % rc)
        want = ['%s:4: cannot translate: log 127.0.0.1 local1 notice (one log target '
                'here: global.log takes the first "log" line)' % src]
        t.check(err.splitlines() == want, "%s: stderr is the one untranslatable line" % mode,
                repr(err.splitlines()))
        t.check(out.startswith("# Translated by load-balancer --import-haproxy from %s\n" % src),
                "%s: the header comment names the file" % mode, repr(out[:120]))
        with open(os.path.join(data, "haproxy-seed-%s.conf" % mode)) as f:
            golden = f.read()
        t.check(out.split("\n", 1)[1:] == golden.split("\n", 1)[1:],
                "%s: the translation is the golden file's" % mode)
        t.check("# option smtpchk HELO noor.net" in out or mode == "nontransparent",
                "%s: the commented-out smtpchk stays a comment" % mode)
        t.check('type = "tcp";' in out, "%s: check alone is a TCP check" % mode)
        if mode == "transparent":
            for key in ('transparent = true;', 'source = "clientip";', 'proxy_protocol = "v1";'):
                t.check(key in out, "transparent: the output has %s" % key)
        conf = write("imported-%s.conf" % mode, out)
        rc, cout, cerr = t.run_lb(["-c", "-f", conf])
        t.log("  -c: rc=%s stdout=%r stderr=%r" % (rc, cout.strip(), cerr.strip()[:300]))
        t.check(rc == 0 and cout.strip() == "configuration OK",
                "%s: -c on the translation prints 'configuration OK'" % mode,
                "rc=%s %r" % (rc, cerr.strip()[:300]))
        bad = [ln for ln in cerr.splitlines() if ": warning: " not in ln]
        t.check(not bad, "%s: -c prints warnings only" % mode, repr(bad))

    # Input that cannot be parsed: exit 1, nothing on stdout.
    bad = write("bad-haproxy.cfg", "frontend f\n  bind :25\n  server s1 10.0.0.1:25\n")
    rc, out, err = t.run_lb(["--import-haproxy", bad])
    t.log("  server in a frontend: rc=%s stderr=%r" % (rc, err.strip()))
    t.check(rc == 1 and out == "", "a server line in a frontend: exit 1, no output",
            "rc=%s out=%r" % (rc, out[:100]))
    t.check(err.startswith("%s:3: server: not allowed in a frontend" % bad),
            "it is reported as FILE:3:", repr(err))
    missing = os.path.join(WORK, "no-such-haproxy.cfg")
    rc, out, err = t.run_lb(["--import-haproxy", missing])
    t.check(rc == 1 and missing in err and out == "", "a missing file: exit 1, named on stderr",
            "rc=%s %r" % (rc, err.strip()))
    rc, out, err = t.run_lb(["--import-haproxy"])
    t.check(rc == 2, "--import-haproxy without a file: exit 2", "got %s" % rc)
    rc, out, err = t.run_lb(["-c", "--import-haproxy", bad])
    t.check(rc == 2, "--import-haproxy with -c: exit 2", "got %s" % rc)


if __name__ == "__main__":
    t.main([test_shipped_configs, test_valid_full, test_unknown_key, test_bad_duration,
            test_weight_range, test_missing_backend, test_duplicate_server, test_bad_address,
            test_missing_required, test_several_errors, test_syntax_error,
            test_port25_warning, test_usage, test_bind_failure, test_import_haproxy],
           timeout=50)
