#!/usr/bin/python3
"""make check: the architecture test.

Runs tests/arch/check_layers.py on the source tree (LB_SRCDIR, set by
make check, else the tree this file is in) and check_layers.py --selftest
(synthetic trees in a temporary directory: the checker still catches an
upward include and an include cycle).  Prints both outputs; exit 0 when
both pass, 1 otherwise.  Never writes into the source tree.
"""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CHECK = os.path.join(HERE, "check_layers.py")
SRCDIR = os.environ.get("LB_SRCDIR") or os.path.dirname(os.path.dirname(HERE))


def run(title, args):
    print("== %s: check_layers.py %s" % (title, " ".join(args)))
    sys.stdout.flush()
    p = subprocess.run([sys.executable, CHECK] + args,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    sys.stdout.write(p.stdout)
    print("== %s: %s (exit %d)" % (title, "pass" if p.returncode == 0
                                   else "FAIL", p.returncode))
    print()
    return p.returncode == 0


def main():
    ok_tree = run("layers of %s" % SRCDIR, ["--top", SRCDIR, "--graph"])
    ok_self = run("self-test", ["--selftest"])
    print("test_layers: %s" % ("PASS" if ok_tree and ok_self else
                               "FAIL (%s)" % ", ".join(
                                   w for w, ok in (("source tree", ok_tree),
                                                   ("self-test", ok_self))
                                   if not ok)))
    return 0 if ok_tree and ok_self else 1


if __name__ == "__main__":
    sys.exit(main())
