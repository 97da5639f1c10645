#!/usr/bin/env python3
"""The status page in a real browser: headless Chromium (Debian package
chromium) loads / and /timeline from a running daemon with one server
DOWN (its port refuses connections), the test checks the DOM that
Chromium built (the server's row says DOWN, with the check's failure;
its timeline lane is DOWN with the reason in the band's title) and
saves screenshots under the build tree:

    tests/integration/screenshots/status.png     the page, 1200x900
    tests/integration/screenshots/timeline.png   /timeline alone

and checks that the page's picture shows the state colours (the red of
DOWN and the green of UP), decoding the PNG itself.

Skips (77) only when Chromium is missing or cannot start at all
(LB_CHROMIUM names another binary)."""

import html.parser
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"
BUILD = os.path.dirname(os.path.abspath(t.LB_BIN))
SHOTS = os.path.join(BUILD, "tests", "integration", "screenshots")
RUN_TIMEOUT = 60
REASON = "failed at connect: connection refused"
DOWN_RGB = (0xd2, 0x3c, 0x32)   # .st-down in src/stats.c
UP_RGB = (0x3a, 0x9a, 0x4f)     # .st-up


def chromium_binary():
    for c in (os.environ.get("LB_CHROMIUM"), "chromium", "chromium-browser",
              "google-chrome"):
        if c and shutil.which(c):
            return shutil.which(c)
    return None


class Chromium:
    """Runs headless Chromium to completion, each time with a fresh user
    data directory, in its own process group so that the helpers it forks
    are stopped with it."""

    def __init__(self, binary):
        self.binary = binary
        self.home = t.tempdir("lbtest-chromium-")

    def run(self, args, timeout=RUN_TIMEOUT):
        profile = t.tempdir("lbtest-chromium-profile-")
        cmd = [self.binary, "--headless", "--no-sandbox", "--disable-gpu",
               "--user-data-dir=" + profile, "--no-first-run",
               "--no-default-browser-check", "--disable-extensions",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--disable-dev-shm-usage",
               "--hide-scrollbars"] + list(args)
        env = dict(os.environ, HOME=self.home, XDG_CONFIG_HOME=self.home,
                   XDG_CACHE_HOME=self.home)
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, start_new_session=True)
        t.register_proc(p, "chromium")
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill_group(p.pid)
            out, err = p.communicate()
            return None, out.decode(errors="replace"), err.decode(errors="replace")
        finally:
            self._kill_group(p.pid)
        return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    @staticmethod
    def _kill_group(pgid):
        """Whatever is left of the group this run created (its leader's
        PID is the group id): SIGTERM, then SIGKILL."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)


class DomScan(html.parser.HTMLParser):
    """Elements with their attributes and text, from a DOM dump."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []
        self.elements = []   # [tag, attrs dict, text, parent index]

    def handle_starttag(self, tag, attrs):
        parent = self.stack[-1] if self.stack else None
        self.elements.append([tag, dict(attrs), "", parent])
        if tag not in ("meta", "br", "link", "img", "input"):
            self.stack.append(len(self.elements) - 1)

    def handle_startendtag(self, tag, attrs):
        parent = self.stack[-1] if self.stack else None
        self.elements.append([tag, dict(attrs), "", parent])

    def handle_endtag(self, tag):
        while self.stack:
            i = self.stack.pop()
            if self.elements[i][0] == tag:
                break

    def handle_data(self, data):
        for i in self.stack:
            self.elements[i][2] += data

    def find(self, tag, **attrs):
        return [e for e in self.elements if e[0] == tag and
                all(e[1].get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def inside(self, e, tag):
        """Descendants of element e with that tag."""
        idx = self.elements.index(e)
        out = []
        for j, f in enumerate(self.elements):
            p = f[3]
            while p is not None and p != idx:
                p = self.elements[p][3]
            if p == idx and f[0] == tag:
                out.append(f)
        return out


def png_pixels(path):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB or RGBA
    PNG, as Chromium writes them."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace != 0:
        raise ValueError("unsupported PNG: depth %d colour type %d" % (depth, ctype))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ft == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(w)])
        prev = line
    return w, h, rows


def count_colour(rows, rgb, tol=6):
    n = 0
    for row in rows:
        for p in row:
            if all(abs(p[i] - rgb[i]) <= tol for i in range(3)):
                n += 1
    return n


# --------------------------------------------------------------------------


def test_browser():
    binary = chromium_binary()
    if binary is None:
        raise t.Skip("chromium is not installed (Debian package chromium; "
                     "tests/deps.sh installs it)")
    chrome = Chromium(binary)
    rc, out, err = chrome.run(["--dump-dom", "about:blank"])
    if rc != 0 or "<html" not in out:
        raise t.Skip("chromium cannot run here: status %s, %s" %
                     (rc, (err.strip().splitlines() or ["no output"])[-1]))

    up = t.Backend(t.health_handler(t.SmtpBehavior("web1")), name="web1")
    down_port = t.free_port()   # nothing listens: connection refused
    port, sport = t.free_port(), t.free_port()
    text = t.make_config("%s:%d" % (H, port),
                         [("web1", up.address), ("web2", "%s:%d" % (H, down_port))],
                         be={"timeout_server": "30s",
                             "health_check": {"type": "smtp", "helo": "noor.net",
                                              "interval": "500ms", "rise": 2, "fall": 2}},
                         glob={"stats_listen": "%s:%d" % (H, sport)})
    d = t.Daemon(text, [(H, port), (H, sport)], name="browser").start()
    t.require(d.wait_event(lambda e: e.get("event") == "down" and
                           e.get("server") == "web2", 5), "web2 goes DOWN")
    # Some traffic, so that the counters are not all zero.
    for _ in range(3):
        t.client_session(H, port)
    url = "http://%s:%d/" % (H, sport)

    # The DOM Chromium built from the page.
    rc, dom, err = chrome.run(["--dump-dom", url])
    t.require(rc == 0 and "</html>" in dom, "chromium --dump-dom %s" % url,
              "" if rc == 0 else "status %s: %s" % (rc, err.strip()[-300:]))
    scan = DomScan()
    scan.feed(dom)
    rows = scan.find("tr", data_server="web2")
    t.require(len(rows) == 1, "the page has one row for web2", str(len(rows)))
    row = rows[0]
    t.check(row[1].get("data-state") == "DOWN", "web2's row: data-state DOWN",
            str(row[1]))
    cells = scan.inside(row, "td")
    state = [c for c in cells if "st" in c[1].get("class", "").split()]
    t.check(len(state) == 1 and state[0][2].strip() == "DOWN" and
            "st-down" in state[0][1].get("class", ""),
            "web2's state cell reads DOWN (class st-down)", str(state))
    t.check(any(REASON in c[2] for c in cells),
            "web2's row shows the reason: %s" % REASON, str([c[2] for c in cells]))
    ok = scan.find("tr", data_server="web1")
    t.check(len(ok) == 1 and ok[0][1].get("data-state") == "UP", "web1's row: UP")
    lanes = scan.find("g", data_server="web2")
    t.check(len(lanes) == 1 and lanes[0][1].get("data-state") == "DOWN",
            "the inline timeline has web2's lane, DOWN")
    if lanes:
        downs = [r for r in scan.inside(lanes[0], "rect") if r[1].get("data-state") == "DOWN"]
        titles = [tt[2] for r in downs for tt in scan.inside(r, "title")]
        t.check(any("connect: connection refused" in x for x in titles),
                "a DOWN band of web2 has the reason in its title", str(titles))

    # The page as a person sees it.
    os.makedirs(SHOTS, exist_ok=True)
    shot = os.path.join(SHOTS, "status.png")
    if os.path.exists(shot):
        os.unlink(shot)
    rc, out, err = chrome.run(["--screenshot=" + shot, "--window-size=1200,900", url])
    t.require(rc == 0 and os.path.exists(shot), "chromium --screenshot of the page",
              "" if rc == 0 else "status %s: %s" % (rc, err.strip()[-300:]))
    w, h, pix = png_pixels(shot)
    t.check((w, h) == (1200, 900), "the screenshot is 1200x900", "%dx%d" % (w, h))
    red, green = count_colour(pix, DOWN_RGB), count_colour(pix, UP_RGB)
    t.check(red > 500, "the screenshot shows DOWN's red (state cell, timeline band)",
            "%d pixels" % red)
    t.check(green > 500, "and UP's green", "%d pixels" % green)
    t.log("  screenshot: %s (%d bytes)" % (shot, os.path.getsize(shot)))

    # /timeline alone.
    turl = url + "timeline"
    rc, dom, err = chrome.run(["--dump-dom", turl])
    t.require(rc == 0 and "<svg" in dom, "chromium loads /timeline",
              "" if rc == 0 else "status %s: %s" % (rc, err.strip()[-300:]))
    scan = DomScan()
    scan.feed(dom)
    lanes = scan.find("g", data_server="web2")
    t.check(len(lanes) == 1 and lanes[0][1].get("data-state") == "DOWN",
            "/timeline in the browser: web2's lane is DOWN")
    if lanes:
        titles = [tt[2] for r in scan.inside(lanes[0], "rect")
                  if r[1].get("data-state") == "DOWN" for tt in scan.inside(r, "title")]
        t.check(any("connect: connection refused" in x for x in titles),
                "/timeline: the DOWN band's title gives the reason", str(titles))
    tshot = os.path.join(SHOTS, "timeline.png")
    if os.path.exists(tshot):
        os.unlink(tshot)
    rc, out, err = chrome.run(["--screenshot=" + tshot, "--window-size=1000,300", turl])
    t.check(rc == 0 and os.path.exists(tshot) and
            count_colour(png_pixels(tshot)[2], (0xd2, 0x3c, 0x32)) > 0,
            "screenshot of /timeline with a red DOWN band", "status %s" % rc)
    d.stop()


if __name__ == "__main__":
    t.main([test_browser], timeout=240)
