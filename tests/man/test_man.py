#!/usr/bin/python3
"""make check: the man pages (man/*.5, man/*.8).

For each page:
- `mandoc -Tlint -Wwarning PAGE` prints nothing and exits 0;
- `groff -ww -mandoc -z PAGE` and `groff -ww -mandoc -Tutf8 PAGE` print no
  warning;
- its sections (.Sh) are the ones the project cites: the list below;
- it never names the product contract, a document outside the
  repository (the pages are the reference themselves).
Then every citation of a page's section, `load-balancer.conf(5), LOGS`
in the source tree (one line of C, Python, shell or text) or an `.Xr`
followed by `.Sx` in a page, must name a section that page has.

The pages are read from the source tree: LB_SRCDIR (make check sets it;
make distcheck points it at the read-only copy), else the tree this file
is in.  Nothing is written.

mandoc or groff missing: exit 77 (skipped), but exit 1 under CI=true,
where tests/deps.sh installs them.  The keys of load-balancer.conf(5) are
compared with the parser's by tests/unit/check_cfgkeys.c.
"""

import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("LB_SRCDIR") or os.path.dirname(os.path.dirname(HERE))

# The pages and their sections; code and documents cite them as
# "PAGE(N), SECTION".
PAGES = {
    "load-balancer(8)": ("man/load-balancer.8", [
        "NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SIGNALS",
        "EXIT STATUS", "RESTART", "SYSTEMD", "FILES", "ENVIRONMENT",
        "SEE ALSO"]),
    "load-balancer.conf(5)": ("man/load-balancer.conf.5", [
        "NAME", "DESCRIPTION", "SYNTAX", "GLOBAL", "FRONTENDS",
        "CLIENT LIMITS", "BACKENDS", "HEALTH CHECKS", "AGENT CHECK",
        "SERVERS", "RELAY", "BALANCING", "SLOW START", "GREETING GATE",
        "TRANSPARENT MODE", "OPERATOR STATE", "LOGS", "EXAMPLES",
        "SEE ALSO"]),
    "lbctl(8)": ("man/lbctl.8", [
        "NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "HEALTH REPORT",
        "EXIT STATUS", "FILES", "SEE ALSO"]),
    "lb-postfix-agent(8)": ("man/lb-postfix-agent.8", [
        "NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "ANSWERS", "FILES",
        "EXAMPLES", "SEE ALSO"]),
}

# Where citations are looked for, and in which files.
CITE_DIRS = ["src", "include", "tests", "fuzz", "bench", "etc", "init.d",
             "debian", "man", ".ci"]
CITE_TOP = ["README.md", "NEWS", "Makefile.am", "configure.ac"]
CITE_EXT = (".c", ".h", ".py", ".sh", ".md", ".in", ".am", ".ac", ".5",
            ".8", ".service", ".socket", ".conf", ".logrotate", ".default",
            ".postinst", ".postrm", ".prerm", ".preinst", ".txt")
# "PAGE(N), SECTION": the section in capitals, on the same line.
CITE_RE = re.compile(r"(?<![\w.-])(load-balancer\.conf\(5\)|load-balancer\(8\)"
                     r"|lbctl\(8\)|lb-postfix-agent\(8\)),[ \t]+"
                     r"([A-Z][A-Z]+(?: [A-Z][A-Z]+)*)\b")

# The rest of a wrapped section name: the next line's first capitals,
# after a comment leader or the quote of a continued C string.
CONT_RE = re.compile(r"[ \t]*(?:\*|#|//|;|\.\\\"|\")?[ \t]*"
                     r"([A-Z][A-Z]+(?: [A-Z][A-Z]+)*)\b")

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def run(args):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    return p.returncode, p.stdout, p.stderr


def sections(path):
    with open(path, encoding="utf-8") as f:
        return [l[4:].strip().strip('"') for l in f if l.startswith(".Sh ")]


def check_page(name, path, expected):
    full = os.path.join(SRCDIR, path)
    if not os.path.isfile(full):
        fail("%s: %s is missing" % (name, full))
        return []
    rc, out, err = run(["mandoc", "-Tlint", "-Wwarning", full])
    if rc != 0 or out or err:
        fail("%s: mandoc -Tlint -Wwarning (exit %d):\n%s%s"
             % (path, rc, out, err))
    for dev in (["-z"], ["-Tutf8"]):
        rc, out, err = run(["groff", "-ww", "-mandoc"] + dev + [full])
        if rc != 0 or err:
            fail("%s: groff -ww -mandoc %s (exit %d):\n%s"
                 % (path, dev[0], rc, err))
        elif dev == ["-Tutf8"] and len(out) < 1000:
            fail("%s: groff -Tutf8 rendered only %d bytes" % (path, len(out)))
    have = sections(full)
    for s in expected:
        if s not in have:
            fail("%s: no section %s (cited as %s, %s)" % (path, s, name, s))
    for s in have:
        if s not in expected:
            fail("%s: section %s is not in this test's list of %s's "
                 "sections: add it here if it is meant" % (path, s, name))
    if len(have) != len(set(have)):
        fail("%s: a section appears twice: %s" % (path, have))
    with open(full, encoding="utf-8") as f:
        text = f.read()
    for n, line in enumerate(text.split("\n"), 1):
        # (The pattern is written so that this file does not name the
        # document either.)
        if re.search(r"\bS[P]EC\b", line):
            fail("%s:%d: names the contract document: %s" % (path, n, line))
    print("%s: checked, %d sections" % (path, len(have)))
    return have


def cited_files():
    for top in CITE_TOP:
        p = os.path.join(SRCDIR, top)
        if os.path.isfile(p):
            yield p
    for d in CITE_DIRS:
        base = os.path.join(SRCDIR, d)
        for root, dirs, files in os.walk(base):
            dirs[:] = [x for x in dirs if not x.startswith("_build")
                       and x not in ("corpus", "regressions", "data")]
            for fn in files:
                if fn.endswith(CITE_EXT) or fn in ("run", "rules"):
                    yield os.path.join(root, fn)


def check_citations(have):
    n = 0
    for path in sorted(cited_files()):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().split("\n")
        except OSError as e:
            fail("%s: %s" % (path, e))
            continue
        rel = os.path.relpath(path, SRCDIR)
        for i, line in enumerate(lines, 1):
            for m in CITE_RE.finditer(line):
                n += 1
                page, sec = m.group(1), m.group(2)
                # A section name wrapped onto the next comment line.
                if not line[m.end():].strip(' \t"') and i < len(lines):
                    c = CONT_RE.match(lines[i])
                    if c and sec not in have[page]:
                        sec += " " + c.group(1)
                if sec not in have[page]:
                    fail("%s:%d: cites %s, %s: %s has no such section"
                         % (rel, i, page, sec, PAGES[page][0]))
        # In the pages: .Xr PAGE N , then .Sx SECTION on the next line.
        if path.endswith((".5", ".8")) and os.path.dirname(path).endswith("man"):
            for i in range(len(lines) - 1):
                m = re.match(r"\.Xr (\S+) (\d) ,?$", lines[i])
                s = re.match(r"\.Sx (.+?)(?: [.,;:)])?$", lines[i + 1])
                if not m or not s:
                    continue
                page = "%s(%s)" % (m.group(1), m.group(2))
                if page not in have:
                    continue
                n += 1
                sec = s.group(1).strip('"')
                if sec not in have[page]:
                    fail("%s:%d: refers to %s, %s: no such section"
                         % (rel, i + 2, page, sec))
    print("citations of a page's section checked: %d" % n)


def main():
    missing = [t for t in ("mandoc", "groff") if shutil.which(t) is None]
    if missing:
        msg = "%s not installed (Debian packages mandoc, groff)" % \
            " and ".join(missing)
        if os.environ.get("CI") == "true":
            print("FAIL: " + msg + "; CI=true: tests/deps.sh installs them")
            return 1
        print("SKIP: " + msg)
        return 77
    print("source tree: " + SRCDIR)
    have = {}
    for name, (path, expected) in PAGES.items():
        have[name] = check_page(name, path, expected)
    check_citations(have)
    if failures:
        print("%d failures" % len(failures))
        return 1
    print("all man page checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
