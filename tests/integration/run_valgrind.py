#!/usr/bin/env python3
"""Integration tests with the daemon under valgrind memcheck (issue 7).

    python3 tests/integration/run_valgrind.py [TEST.py ...]

Runs the given integration test scripts (default: DEFAULT below) with
LB_WRAPPER set, so that lbtest.Daemon
starts every daemon as

    valgrind --leak-check=full --errors-for-leak-kinds=definite
             --error-exitcode=99 --log-file=DIR/vg.%p.log load-balancer ...

A daemon with a memory error or a definite leak exits 99 instead of 0 on
SIGTERM, which the test sees; on top of that every valgrind log is read
here: each must say "ERROR SUMMARY: 0 errors" and report no definitely
lost bytes.  Exit status 0 when every script passed and every log is clean,
1 otherwise, 77 (skip) when valgrind is missing or LB_BIN is built with
AddressSanitizer (the two do not mix).  LB_BIN, LB_SRCDIR as for the
tests; LB_KEEP=1 keeps the valgrind logs.  tests/check.sh runs it after
the _build make check."""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# Not test_checks.py: its 400 ms check timeouts do not survive memcheck's
# slowdown of the TLS handshakes.
DEFAULT = ["test_integrity.py", "test_faults.py", "test_lbctl.py", "test_reload.py",
           "test_proxy.py", "test_sickservers.py"]


def main(args):
    scripts = args or DEFAULT
    lb = os.environ.get("LB_BIN") or os.path.join(os.path.dirname(os.path.dirname(HERE)),
                                                  "load-balancer")
    vg = shutil.which("valgrind")
    if vg is None:
        print("run_valgrind: SKIP: valgrind is not installed (apt-get install valgrind)")
        return 77
    if not os.access(lb, os.X_OK):
        print("run_valgrind: FAIL: LB_BIN %s is not an executable" % lb)
        return 1
    with open(lb, "rb") as f:
        if b"__asan_init" in f.read():
            print("run_valgrind: SKIP: %s is built with AddressSanitizer" % lb)
            return 77
    logdir = tempfile.mkdtemp(prefix="lbtest-valgrind-")
    wrapper = ("%s --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite "
               "--error-exitcode=99 --track-fds=no --num-callers=30 --log-file=%s/vg.%%p.log"
               % (vg, logdir))
    env = dict(os.environ, LB_BIN=lb, LB_WRAPPER=wrapper)
    print("run_valgrind: LB_BIN=%s\nrun_valgrind: LB_WRAPPER=%s" % (lb, wrapper), flush=True)
    failed = []
    t_all = time.monotonic()
    for name in scripts:
        path = name if os.path.isabs(name) else os.path.join(HERE, name)
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, path], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
        out = p.stdout.decode(errors="replace")
        summary = [ln for ln in out.splitlines() if re.search(r"\d+ checks, \d+ failed", ln)]
        status = "PASS" if p.returncode == 0 else ("SKIP" if p.returncode == 77 else "FAIL")
        print("run_valgrind: %s %s (%.0fs) %s" % (status, name, time.monotonic() - t0,
                                                  summary[-1] if summary else ""), flush=True)
        if p.returncode not in (0, 77):
            failed.append(name)
            print("\n".join("  | " + ln for ln in out.splitlines()[-60:]))

    logs = sorted(glob.glob(os.path.join(logdir, "vg.*.log")))
    errors = definite = indirect = possible = 0
    dirty = []
    for path in logs:
        with open(path, errors="replace") as f:
            text = f.read()
        m = re.search(r"ERROR SUMMARY: ([\d,]+) errors", text)
        n_err = int(m.group(1).replace(",", "")) if m else None

        def lost(kind):
            m = re.search(r"%s lost: ([\d,]+) bytes" % kind, text)
            return int(m.group(1).replace(",", "")) if m else 0
        d, i, p_ = lost("definitely"), lost("indirectly"), lost("possibly")
        definite += d
        indirect += i
        possible += p_
        if n_err is None:
            # A log without a summary: the daemon was killed (SIGKILL) or
            # only valgrind's own start; nothing to judge.
            continue
        errors += n_err
        if n_err or d:
            dirty.append(path)
    print("run_valgrind: %d daemon runs under memcheck: %d errors, definitely lost %d bytes, "
          "indirectly lost %d bytes, possibly lost %d bytes (%.0fs in all)"
          % (len(logs), errors, definite, indirect, possible, time.monotonic() - t_all))
    for path in dirty[:5]:
        print("===== %s" % path)
        with open(path, errors="replace") as f:
            print(f.read()[-6000:])
    ok = not failed and not dirty and len(logs) > 0
    if not logs:
        print("run_valgrind: FAIL: no valgrind log: no daemon ran under valgrind")
    if os.environ.get("LB_KEEP") == "1" or not ok:
        print("run_valgrind: logs kept in %s" % logdir)
    else:
        shutil.rmtree(logdir, ignore_errors=True)
    print("run_valgrind: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
