#!/usr/bin/python3
"""Architecture check: the #include "..." lines of src/ and include/ keep
to the layers declared in src/LAYERS.

A module NAME is src/NAME.c and include/NAME.h together (either may be
missing).  The check fails (exit 1, one line per problem) on:

  - an include that climbs a layer:
      FILE:LINE: module X (layer L1) includes Y (layer L2 above it)
  - an include cycle between modules, within one layer too:
      FILE:LINE: include cycle: a -> b -> c -> a (where each step is)
  - a module of src/*.c or include/*.h that src/LAYERS does not declare;
  - an #include "x.h" with no include/x.h (a typo, a removed header);
  - a src/LAYERS that does not parse, or declares a module twice.

A module declared in src/LAYERS with no file is only a warning.
#include <...> and "config.h" are not checked; a directory part in an
include ("../include/log.h") is ignored.

Usage: check_layers.py [--top DIR] [--layers FILE] [--graph]
       check_layers.py --selftest

The top directory defaults to $LB_SRCDIR when set (make check sets it),
else to the directory two levels above this script.  The check only reads
the tree; --selftest works in a temporary directory.
Exit status: 0 pass, 1 fail, 2 usage error.
Python 3 standard library only.
"""

import argparse
import collections
import glob
import os
import re
import subprocess
import sys
import tempfile

PROG = "check_layers"
LAYERS_REL = os.path.join("src", "LAYERS")
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]*)"')
IGNORED_HEADERS = {"config.h"}


# ---------------------------------------------------------------- LAYERS

class Layers:
    """The parsed declaration: layers lowest first, module -> layer."""

    def __init__(self):
        self.names = []          # layer names, lowest first
        self.line_of_layer = {}  # layer -> line number in the file
        self.index = {}          # module -> layer index
        self.line_of = {}        # module -> line number in the file
        self.modules = {}        # layer -> [modules] in declared order
        self.errors = []         # problem lines

    def layer_of(self, module):
        i = self.index.get(module)
        return None if i is None else self.names[i]


def parse_layers(path, shown):
    """Parse the LAYERS file at path; shown is its name in messages."""
    lay = Layers()
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        lay.errors.append("%s: cannot read: %s" % (shown, e.strerror))
        return lay
    current = None
    for n, raw in enumerate(lines, 1):
        text = raw.split("#", 1)[0]
        if not text.strip():
            continue
        if text[0] in " \t":
            # Continuation of the layer above.
            if current == "":
                continue  # the layer line above was already reported
            if current is None:
                lay.errors.append("%s:%d: a continuation line (starting with "
                                  "a blank) before any layer" % (shown, n))
                continue
            words = text.split()
        else:
            head, colon, rest = text.partition(":")
            current = head.strip()
            if not colon or not NAME_RE.match(current):
                lay.errors.append("%s:%d: cannot parse %r: expected "
                                  "'LAYER: module module ...'"
                                  % (shown, n, raw.strip()))
                current = ""
                continue
            if current in lay.line_of_layer:
                lay.errors.append("%s:%d: layer %s declared twice (first at "
                                  "line %d)" % (shown, n, current,
                                                lay.line_of_layer[current]))
                current = ""
                continue
            lay.line_of_layer[current] = n
            lay.names.append(current)
            lay.modules[current] = []
            words = rest.split()
        for m in words:
            if not NAME_RE.match(m):
                lay.errors.append("%s:%d: %r is not a module name"
                                  % (shown, n, m))
                continue
            if m in lay.index:
                lay.errors.append(
                    "%s:%d: module %s declared twice (layer %s at line %d, "
                    "layer %s here)" % (shown, n, m, lay.layer_of(m),
                                        lay.line_of[m], current))
                continue
            lay.index[m] = len(lay.names) - 1
            lay.line_of[m] = n
            lay.modules[current].append(m)
    if not lay.names and not lay.errors:
        lay.errors.append("%s: declares no layer" % shown)
    return lay


# ---------------------------------------------------------------- sources

def blank_comments(text):
    """The text with C and C++ comments replaced by blanks (newlines kept,
    so line numbers stay), string and character literals left alone."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif c == "/" and text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(text[i:j])
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


Include = collections.namedtuple(
    "Include", "file line module spelled header target")
# file: path relative to top; module: the including module; spelled: as
# written; header: its base name; target: the included module, or None
# when include/HEADER does not exist.


def module_of(path):
    return os.path.splitext(os.path.basename(path))[0]


def scan(top):
    """Modules found in the tree (module -> [relative files]) and the
    #include "..." lines of those files."""
    files = sorted(glob.glob(os.path.join(top, "src", "*.c"))) + \
        sorted(glob.glob(os.path.join(top, "include", "*.h")))
    modules = collections.OrderedDict()
    for path in files:
        rel = os.path.relpath(path, top)
        modules.setdefault(module_of(path), []).append(rel)
    incdir = os.path.join(top, "include")
    includes = []
    for path in files:
        rel = os.path.relpath(path, top)
        with open(path, encoding="utf-8", errors="replace") as f:
            text = blank_comments(f.read())
        for n, line in enumerate(text.split("\n"), 1):
            m = INCLUDE_RE.match(line)
            if not m:
                continue
            spelled = m.group(1)
            header = spelled.replace("\\", "/").rsplit("/", 1)[-1]
            if header in IGNORED_HEADERS:
                continue
            exists = os.path.isfile(os.path.join(incdir, header))
            includes.append(Include(rel, n, module_of(path), spelled, header,
                                    module_of(header) if exists else None))
    return modules, includes


# ---------------------------------------------------------------- cycles

def strongly_connected(graph):
    """Tarjan's algorithm (iterative); graph: node -> sorted successors."""
    index, low, on_stack, stack, sccs = {}, {}, set(), [], []
    counter = [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, succ = work[-1]
            advanced = False
            for nxt in succ:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph.get(nxt, ()))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                scc = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    scc.append(w)
                    if w == node:
                        break
                sccs.append(sorted(scc))
    return sccs


def find_cycles(graph):
    """For each module caught in a cycle, the shortest cycle through it;
    duplicates removed, each rotated to start at its smallest name."""
    cycles = set()
    for scc in strongly_connected(graph):
        if len(scc) < 2:
            continue
        members = set(scc)
        for start in scc:
            # Breadth-first from start back to start, inside the component.
            parent = {start: None}
            queue = collections.deque([start])
            found = None
            while queue and found is None:
                node = queue.popleft()
                for nxt in graph[node]:
                    if nxt not in members:
                        continue
                    if nxt == start:
                        found = node
                        break
                    if nxt not in parent:
                        parent[nxt] = node
                        queue.append(nxt)
            path = []
            node = found
            while node is not None:
                path.append(node)
                node = parent[node]
            path.reverse()  # start ... found; found includes start
            k = path.index(min(path))
            cycles.add(tuple(path[k:] + path[:k]))
    return sorted(cycles, key=lambda c: (len(c), c))


# ---------------------------------------------------------------- check

def check(top, layers_path, show_graph, out):
    shown_layers = os.path.relpath(layers_path, top) \
        if os.path.abspath(layers_path).startswith(os.path.abspath(top) + os.sep) \
        else layers_path
    lay = parse_layers(layers_path, shown_layers)
    for d in ("src", "include"):
        if not os.path.isdir(os.path.join(top, d)):
            lay.errors.append("%s: no directory %s/ (use --top)"
                              % (os.path.join(top, d), d))
    if lay.errors:
        for e in lay.errors:
            print(e, file=out)
        print("%s: FAILED: %s is not usable (%d problem%s)"
              % (PROG, shown_layers, len(lay.errors),
                 "" if len(lay.errors) == 1 else "s"), file=out)
        return 1
    modules, includes = scan(top)

    undeclared, missing, upward, cycle_lines, warnings = [], [], [], [], []

    for m, files in modules.items():
        if m not in lay.index:
            undeclared.append("%s: module %s is not declared in %s (%s)"
                              % (files[0], m, shown_layers, " ".join(files)))

    for name in lay.names:
        for m in lay.modules[name]:
            if m not in modules:
                warnings.append(
                    "%s:%d: warning: module %s (layer %s) is declared but "
                    "neither src/%s.c nor include/%s.h exists"
                    % (shown_layers, lay.line_of[m], m, name, m, m))

    edges = collections.OrderedDict()  # (from, to) -> [Include]
    for inc in includes:
        if inc.target is None:
            missing.append('%s:%d: #include "%s": there is no include/%s'
                           % (inc.file, inc.line, inc.spelled, inc.header))
            continue
        if inc.target == inc.module:
            continue
        edges.setdefault((inc.module, inc.target), []).append(inc)
        a, b = lay.index.get(inc.module), lay.index.get(inc.target)
        if a is not None and b is not None and b > a:
            upward.append("%s:%d: module %s (layer %s) includes %s "
                          "(layer %s above it)"
                          % (inc.file, inc.line, inc.module, lay.names[a],
                             inc.target, lay.names[b]))

    graph = {m: [] for m in set(modules) | {t for _, t in edges}}
    for (a, b) in sorted(edges):
        graph[a].append(b)
    for cyc in find_cycles(graph):
        steps = list(zip(cyc, cyc[1:] + cyc[:1]))
        where = ["%s:%d \"%s\"" % (edges[s][0].file, edges[s][0].line,
                                   edges[s][0].spelled) for s in steps]
        first = edges[steps[0]][0]
        cycle_lines.append("%s:%d: include cycle: %s (%s)"
                           % (first.file, first.line,
                              " -> ".join(cyc + (cyc[0],)), ", ".join(where)))

    problems = undeclared + missing + upward + cycle_lines
    for line in problems + warnings:
        print(line, file=out)

    if show_graph:
        print_graph(lay, modules, graph, out)

    counts = "%d modules in %d layers, %d include edges" % (
        len(modules), len(lay.names), len(edges))
    warn = ""
    if warnings:
        warn = ", %d warning%s" % (len(warnings),
                                   "" if len(warnings) == 1 else "s")
    if problems:
        parts = []
        for what, lst in (("undeclared module", undeclared),
                          ("missing header", missing),
                          ("upward include", upward),
                          ("include cycle", cycle_lines)):
            if lst:
                parts.append("%d %s%s" % (len(lst), what,
                                          "" if len(lst) == 1 else "s"))
        print("%s: FAILED: %s (%s%s; %s)"
              % (PROG, ", ".join(parts), counts, warn, shown_layers), file=out)
        return 1
    print("%s: OK: %s%s (%s)" % (PROG, counts, warn, shown_layers), file=out)
    return 0


def print_graph(lay, modules, graph, out):
    """Modules by layer, lowest first, each with the modules it includes.
    A mark after an included module: ^ it is in a layer above (a
    violation), ? it is not declared in LAYERS."""
    print("module graph, lowest layer first "
          "(^ = climbs a layer, ? = undeclared, - = declared, no file):",
          file=out)

    def deps(m):
        marks = []
        for t in graph.get(m, ()):
            i, j = lay.index.get(m), lay.index.get(t)
            if j is None:
                marks.append(t + "?")
            elif i is not None and j > i:
                marks.append(t + "^")
            else:
                marks.append(t)
        return (" -> " + " ".join(marks)) if marks else ""

    width = max([len(m) for m in list(lay.index) + list(modules)] or [1])
    for i, name in enumerate(lay.names):
        print("  %d %s:" % (i, name), file=out)
        for m in lay.modules[name]:
            if m in modules:
                print(("      %-*s%s" % (width, m, deps(m))).rstrip(),
                      file=out)
            else:
                print("      %-*s (-)" % (width, m), file=out)
    extra = [m for m in modules if m not in lay.index]
    if extra:
        print("  (not declared):", file=out)
        for m in extra:
            print(("      %-*s%s" % (width, m, deps(m))).rstrip(), file=out)


# ---------------------------------------------------------------- selftest

SYNTH_LAYERS = """\
# Synthetic tree of the self-test: three layers, five modules.
base: clock util
mid: queue      # continued below
     store
top: app
"""

SYNTH_FILES = {
    "include/clock.h": "#ifndef CLOCK_H\n#define CLOCK_H\n"
                       "long clock_now(void);\n#endif\n",
    "src/clock.c": '#include "config.h"\n#include <time.h>\n'
                   '#include "clock.h"\n'
                   "long clock_now(void) { return (long)time(0); }\n",
    "include/util.h": "#ifndef UTIL_H\n#define UTIL_H\n"
                      "int util_max(int, int);\n#endif\n",
    "src/util.c": '#include "config.h"\n#include "util.h"\n'
                  "int util_max(int a, int b) { return a > b ? a : b; }\n",
    "include/queue.h": '#ifndef QUEUE_H\n#define QUEUE_H\n#include "util.h"\n'
                       "int queue_len(void);\n#endif\n",
    "src/queue.c": '#include "config.h"\n#include "queue.h"\n'
                   '#include "util.h"\n'
                   "int queue_len(void) { return util_max(0, 1); }\n",
    "include/store.h": '#ifndef STORE_H\n#define STORE_H\n'
                       '#include "queue.h"\nint store_get(void);\n#endif\n',
    # Comments and strings that look like includes are not includes.
    "src/store.c": '#include "config.h"\n#include "store.h"\n'
                   '#include "../include/util.h"\n'
                   '/* Not an include:\n#include "app.h"\n */\n'
                   '// #include "app.h"\n'
                   'static const char *s = "/* not a comment";\n'
                   "int store_get(void) { return queue_len() + !s; }\n",
    "include/app.h": "#ifndef APP_H\n#define APP_H\n"
                     "int app_run(void);\n#endif\n",
    "src/app.c": '#include "config.h"\n#include <stdio.h>\n#include "app.h"\n'
                 '#include "store.h"\n#include "queue.h"\n'
                 "int app_run(void) { return store_get(); }\n",
}
# Module edges: queue -> util, store -> queue, store -> util,
# app -> store, app -> queue.
SYNTH_SUMMARY = "OK: 5 modules in 3 layers, 5 include edges"


def write_tree(root, files, layers):
    for rel, text in list(files.items()) + [(LAYERS_REL, layers)]:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def append_line(files, rel, line):
    """A copy of files with line appended to rel; and that line's number."""
    files = dict(files)
    text = files.get(rel, "")
    files[rel] = text + line + "\n"
    return files, text.count("\n") + 1


def selftest():
    me = os.path.abspath(__file__)
    env = dict(os.environ)
    env.pop("LB_SRCDIR", None)

    cases = []
    # (name, files, layers, expected status, must contain, must not contain)
    cases.append(("the clean synthetic tree passes", SYNTH_FILES,
                  SYNTH_LAYERS, 0, [SYNTH_SUMMARY], ["FAILED"]))

    files, n = append_line(SYNTH_FILES, "src/clock.c", '#include "app.h"')
    cases.append(("(a) an upward include (base module clock includes top "
                  "module app) fails", files, SYNTH_LAYERS, 1,
                  ["src/clock.c:%d: module clock (layer base) includes app "
                   "(layer top above it)" % n, "1 upward include"],
                  ["include cycle"]))

    files, n = append_line(SYNTH_FILES, "include/queue.h", '#include "store.h"')
    cases.append(("(b) a same-layer cycle (queue <-> store, layer mid) fails",
                  files, SYNTH_LAYERS, 1,
                  ["include/queue.h:%d: include cycle: queue -> store -> queue"
                   % n, "1 include cycle"],
                  ["above it"]))

    # Beyond the three required cases: the other rules.
    files = dict(SYNTH_FILES)
    files["src/extra.c"] = '#include "util.h"\n'
    cases.append(("(c) a module not declared in src/LAYERS fails", files,
                  SYNTH_LAYERS, 1,
                  ["src/extra.c: module extra is not declared in src/LAYERS"],
                  []))

    files, n = append_line(SYNTH_FILES, "src/util.c", '#include "utill.h"')
    cases.append(("(d) an include of a header missing from include/ fails",
                  files, SYNTH_LAYERS, 1,
                  ['src/util.c:%d: #include "utill.h": there is no '
                   'include/utill.h' % n], []))

    cases.append(("(e) a declared module with no file only warns",
                  SYNTH_FILES, SYNTH_LAYERS.replace("top: app",
                                                    "top: app gone"), 0,
                  ["src/LAYERS:5: warning: module gone (layer top) is "
                   "declared but", "1 warning"], ["FAILED"]))

    failed = 0
    with tempfile.TemporaryDirectory(prefix="check_layers.") as tmp:
        for i, (name, files, layers, want_rc, want, unwanted) in \
                enumerate(cases):
            root = os.path.join(tmp, "t%d" % i)
            write_tree(root, files, layers)
            p = subprocess.run([sys.executable, me, "--top", root],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT,
                               universal_newlines=True, env=env)
            output = p.stdout.replace(root + os.sep, "")
            why = []
            if p.returncode != want_rc:
                why.append("exit %d, expected %d" % (p.returncode, want_rc))
            why += ["missing %r" % w for w in want if w not in output]
            why += ["unexpected %r" % u for u in unwanted if u in output]
            print("selftest: %s: %s" % (name, "FAIL: " + "; ".join(why)
                                         if why else "ok"))
            for line in output.splitlines():
                print("    | " + line)
            failed += bool(why)
    print("selftest: %s (%d of %d cases as expected)"
          % ("FAILED" if failed else "OK", len(cases) - failed, len(cases)))
    return 1 if failed else 0


# ---------------------------------------------------------------- main

def default_top():
    return os.environ.get("LB_SRCDIR") or os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv):
    ap = argparse.ArgumentParser(
        prog="check_layers.py",
        description="Check that the includes of src/ and include/ keep to "
                    "the layers declared in src/LAYERS.")
    ap.add_argument("--top", metavar="DIR",
                    help="the source tree (default: $LB_SRCDIR, else two "
                         "levels above this script)")
    ap.add_argument("--layers", metavar="FILE",
                    help="the layer declaration (default: TOP/src/LAYERS)")
    ap.add_argument("--graph", action="store_true",
                    help="also print the module graph by layer")
    ap.add_argument("--selftest", action="store_true",
                    help="check the checker on synthetic trees in a "
                         "temporary directory")
    args = ap.parse_args(argv)
    if args.selftest:
        if args.top or args.layers or args.graph:
            ap.error("--selftest takes no other option")
        return selftest()
    top = args.top or default_top()
    layers = args.layers or os.path.join(top, LAYERS_REL)
    return check(top, layers, args.graph, sys.stdout)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
