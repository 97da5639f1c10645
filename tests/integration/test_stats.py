#!/usr/bin/env python3
"""The status HTTP server (global.stats_listen; load-balancer.conf(5),
GLOBAL):

- /metrics after known traffic: sessions, bytes in and out per frontend
  and per server, unavailable replies, connect retries and failures,
  queue length while a client waits, check failures by step, all equal
  to what the test sent and saw; `promtool check metrics` accepts the
  text (Debian package prometheus); label values are escaped;
- /health: 200 while every backend has a server UP, 503 naming the
  backend once all its servers fail their checks, 200 again after;
- / and /timeline: HTML and SVG that parse, names escaped, the DOWN
  server's failure reason in the page and in the timeline; the same
  reason in `lbctl health-report --format svg`; ?since= checked; 404,
  405; a reload's new server appears (nothing cached across requests);
- stats_auth: 401 with WWW-Authenticate without or with wrong
  credentials, 200 with the right ones; a reload changes them at once;
- a non-loopback stats_listen without stats_auth is a configuration
  error; a busy stats_listen written in the file stops the start (exit 3,
  one line), the busy default only warns."""

import base64
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"
SVG_NS = "{http://www.w3.org/2000/svg}"
ODD = 'o<"x">\\&'   # a server name needing every kind of escaping


def http_get(port, path, auth=None, method="GET", timeout=10.0):
    """(status, headers {lower name: value}, body bytes)."""
    c = http.client.HTTPConnection(H, port, timeout=timeout)
    try:
        hdr = {}
        if auth is not None:
            hdr["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
        c.request(method, path, headers=hdr)
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        c.close()




def metric(ms, name, **labels):
    return ms.get((name, frozenset(labels.items())))


def metrics_now(port):
    """The parsed metrics, without recording checks (for polling)."""
    st, _, body = http_get(port, "/metrics")
    return t.parse_metrics(body.decode()) if st == 200 else {}


def scrape(port, auth=None):
    st, hdr, body = http_get(port, "/metrics", auth)
    t.require(st == 200, "GET /metrics: 200", "status %s" % st)
    t.check(hdr.get("content-type", "").startswith("text/plain; version=0.0.4"),
            "/metrics Content-Type is the Prometheus text format",
            hdr.get("content-type", ""))
    return body.decode(), t.parse_metrics(body.decode())


def promtool_check(text, what):
    tool = shutil.which("promtool")
    if tool is None:
        raise t.Skip("promtool is not installed (Debian package prometheus; "
                     "tests/deps.sh installs it)")
    p = subprocess.Popen([tool, "check", "metrics"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    t.register_proc(p, "promtool")
    try:
        out, _ = p.communicate(text.encode(), timeout=30)
    except subprocess.TimeoutExpired:
        t.kill_proc(p)
        out = b"(timed out)"
    t.check(p.returncode == 0, "promtool check metrics accepts %s" % what,
            out.decode(errors="replace").strip())


class Session:
    """One SMTP client session through the balancer, counting bytes both
    ways: banner, EHLO, QUIT, then the rest until EOF."""

    def __init__(self, port, quit=True):
        self.sent = 0
        self.c = t.Client(H, port, timeout=10)
        self.banner = self.c.banner()
        self.name = t.banner_name(self.banner)
        if quit:
            self.finish()

    def cmd(self, line):
        self.sent += len(line) + 2
        return self.c.cmd(line)

    def finish(self):
        if self.name is not None:
            self.cmd("EHLO " + t.CLIENT_HELO)
            self.cmd("QUIT")
        self.c.read_to_eof(10)
        self.c.close()
        self.received = len(self.c.received)


def wait_session_lines(d, n, timeout=10.0):
    got = t.wait_until(lambda: len(d.sessions()) >= n, timeout)
    return d.sessions() if got else d.sessions()


# --------------------------------------------------------------------------


def test_metrics_after_traffic():
    beh = {n: t.SmtpBehavior(n) for n in ("m1", "m2", "bad")}
    beh["bad"].mode = "greet554"
    bk = {n: t.Backend(t.health_handler(beh[n]), name=n) for n in beh}
    good = t.Backend(t.health_handler(t.SmtpBehavior("good")), name="good")
    one = t.Backend(t.health_handler(t.SmtpBehavior("one")), name="one")
    closed = [t.free_port(), t.free_port()]    # nothing listens there
    ports = {k: t.free_port() for k in ("main", "dead", "mixed", "q", "odd")}
    sport = t.free_port()
    hc = {"type": "smtp", "helo": "noor.net", "interval": "300ms", "rise": 1, "fall": 1}

    def fe(name):
        return {"name": "fe_" + name, "bind": "%s:%d" % (H, ports[name]),
                "backend": name, "timeout_client": "30s"}

    pairs = [
        (fe("main"), {"name": "main", "timeout_server": "30s", "health_check": hc,
                      "servers": [("m1", bk["m1"].address), ("m2", bk["m2"].address),
                                  ("bad", bk["bad"].address, {"backup": True}),
                                  ("refused", "%s:%d" % (H, closed[0]), {"backup": True})]}),
        (fe("dead"), {"name": "dead", "retries": 0, "timeout_server": "30s",
                      "servers": [("gone", "%s:%d" % (H, closed[1]))]}),
        (fe("mixed"), {"name": "mixed", "retries": 3, "timeout_server": "30s",
                       "servers": [("gone", "%s:%d" % (H, closed[1])),
                                   ("good", good.address)]}),
        (fe("q"), {"name": "q", "timeout_server": "30s", "timeout_queue": "20s",
                   "servers": [("one", one.address, {"maxconn": 1})]}),
        (fe("odd"), {"name": "odd", "servers": [(ODD, "%s:%d" % (H, closed[0]))]}),
    ]
    text = t.make_config_multi(pairs, glob={"stats_listen": "%s:%d" % (H, sport)})
    d = t.Daemon(text, [(H, p) for p in list(ports.values()) + [sport]], name="metrics").start()
    # Let the checks settle: m1, m2 UP; bad (greeting 554) and refused DOWN.
    t.require(d.wait_event(lambda e: e.get("event") == "down" and e.get("server") == "bad", 5)
              and d.wait_event(lambda e: e.get("event") == "down" and
                               e.get("server") == "refused", 5),
              "bad and refused go DOWN at their first check")

    # 6 sessions on main, 3 turned away by dead, 4 on mixed.
    main = [Session(ports["main"]) for _ in range(6)]
    dead = [Session(ports["dead"]) for _ in range(3)]
    mixed = [Session(ports["mixed"]) for _ in range(4)]
    t.check(all(s.name in ("m1", "m2") for s in main), "main sessions went to m1 and m2",
            str([s.name for s in main]))
    t.check(all(s.banner == t.DEFAULT_UNAVAILABLE for s in dead),
            "dead: each client got the 421", str([s.banner for s in dead]))
    t.check(all(s.name == "good" for s in mixed), "mixed: every session ended on good")
    lines = wait_session_lines(d, 13)
    t.require(len(lines) >= 13, "13 session lines logged", "%d" % len(lines))

    # One client waits in q's queue while another holds its only slot.
    holder = Session(ports["q"], quit=False)
    t.require(holder.name == "one", "q: the first client is served")
    waiter = t.Client(H, ports["q"], timeout=10)
    queued = t.wait_until(lambda: metric(metrics_now(sport), "load_balancer_backend_queue_length",
                                         backend="q") == 1, 5, 0.1)
    t.check(queued, "load_balancer_backend_queue_length{backend=q} is 1 while a client waits")
    raw, ms = scrape(sport)
    t.check(metric(ms, "load_balancer_server_sessions_current", backend="q", server="one") == 1,
            "server one: sessions_current 1")
    t.check(metric(ms, "load_balancer_sessions_current") == 2,
            "two client sessions open (holder and waiter)",
            str(metric(ms, "load_balancer_sessions_current")))
    holder.finish()
    t.check(t.banner_name(waiter.banner(10)) == "one", "the waiter is served once the slot frees")
    waiter.cmd("QUIT")
    waiter.read_to_eof(10)
    waiter.close()
    wait_session_lines(d, 15)
    t.wait_until(lambda: metric(metrics_now(sport), "load_balancer_sessions_current") == 0, 5, 0.1)

    raw, ms = scrape(sport)
    promtool_ok = True
    try:
        promtool_check(raw, "the scraped /metrics")
    except t.Skip as e:
        promtool_ok = False
        t.log("  SKIP promtool: %s" % e)

    def eq(name, want, **labels):
        got = metric(ms, name, **labels)
        t.check(got == want, "%s%s == %s" % (name, labels or "", want), "got %s" % got)

    # Totals.
    eq("load_balancer_sessions_total", 15)
    eq("load_balancer_sessions_current", 0)
    eq("load_balancer_frontend_sessions_total", 6, frontend="fe_main")
    eq("load_balancer_frontend_bytes_in_total", sum(s.sent for s in main), frontend="fe_main")
    eq("load_balancer_frontend_bytes_out_total", sum(s.received for s in main),
       frontend="fe_main")
    eq("load_balancer_frontend_unavailable_replies_total", 0, frontend="fe_main")
    for name in ("m1", "m2"):
        ss = [s for s in main if s.name == name]
        eq("load_balancer_server_sessions_total", len(ss), backend="main", server=name)
        eq("load_balancer_server_bytes_in_total", sum(s.sent for s in ss),
           backend="main", server=name)
        eq("load_balancer_server_bytes_out_total", sum(s.received for s in ss),
           backend="main", server=name)
        eq("load_balancer_server_up", 1, backend="main", server=name)
        eq("load_balancer_server_state", 1, backend="main", server=name, state="UP")
        eq("load_balancer_server_state", 0, backend="main", server=name, state="DOWN")
    eq("load_balancer_server_sessions_max", 1, backend="main", server="m1")
    # Unavailable replies: counted, and their bytes are bytes out.
    eq("load_balancer_frontend_unavailable_replies_total", 3, frontend="fe_dead")
    eq("load_balancer_frontend_bytes_out_total", 3 * len(t.DEFAULT_UNAVAILABLE),
       frontend="fe_dead")
    eq("load_balancer_server_connect_failures_total", 3, backend="dead", server="gone")
    eq("load_balancer_backend_connect_retries_total", 0, backend="dead")
    # Retries: what the session lines say.
    retries = sum(int(s.get("retries", 0)) for s in lines if s.get("backend") == "mixed")
    t.check(retries >= 1, "mixed: some session was retried (round robin starts on gone "
            "half the time)", "%d" % retries)
    eq("load_balancer_backend_connect_retries_total", retries, backend="mixed")
    eq("load_balancer_server_connect_failures_total", retries, backend="mixed", server="gone")
    eq("load_balancer_server_sessions_total", 4, backend="mixed", server="good")
    eq("load_balancer_frontend_bytes_in_total", sum(s.sent for s in mixed), frontend="fe_mixed")
    # Health.
    eq("load_balancer_backend_up", 1, backend="main")
    eq("load_balancer_backend_servers_up", 2, backend="main")
    eq("load_balancer_server_up", 0, backend="main", server="bad")
    eq("load_balancer_server_state", 1, backend="main", server="bad", state="DOWN")
    eq("load_balancer_backend_up", 1, backend="dead")   # no check: servers count as UP
    bad_greet = metric(ms, "load_balancer_server_check_failures_total", backend="main",
                       server="bad", step="greeting")
    checks_bad = metric(ms, "load_balancer_server_checks_total", backend="main", server="bad")
    t.check(bad_greet is not None and bad_greet >= 1 and bad_greet == checks_bad,
            "bad: every check failed at step greeting", "%s of %s" % (bad_greet, checks_bad))
    eq("load_balancer_server_check_failures_total", 0, backend="main", server="bad",
       step="connect")
    ref_conn = metric(ms, "load_balancer_server_check_failures_total", backend="main",
                      server="refused", step="connect")
    t.check(ref_conn is not None and ref_conn >= 1, "refused: checks fail at step connect",
            str(ref_conn))
    eq("load_balancer_server_check_failures_total", 0, backend="main", server="m1",
       step="connect")
    dur = metric(ms, "load_balancer_server_check_duration_seconds", backend="main", server="m1")
    t.check(dur is not None and 0 <= dur < 1, "m1: last check duration in seconds", str(dur))
    t.check(metric(ms, "load_balancer_server_checks_total", backend="dead", server="gone") is None
            and metric(ms, "load_balancer_server_check_duration_seconds", backend="dead",
                       server="gone") is None,
            "no checks_total nor check duration for a server that is not checked")
    now = time.time()
    start = metric(ms, "load_balancer_start_time_seconds")
    t.check(start is not None and now - 120 < start <= now, "start time is a Unix time")
    lc = metric(ms, "load_balancer_server_last_change_timestamp_seconds", backend="main",
                server="bad")
    t.check(lc is not None and now - 120 < lc <= now, "last change is a Unix time")
    # Label escaping: the odd name comes back whole.
    t.check(metric(ms, "load_balancer_server_up", backend="odd", server=ODD) == 1,
            "a server name with quotes and backslashes survives label escaping")
    t.check('server="o<\\"x\\">\\\\&"' in raw, "label value escaped as the format says")
    # HELP and TYPE once per family, before its samples.
    fams = re.findall(r"^# TYPE (\S+) (\S+)$", raw, re.M)
    t.check(len(fams) == len(set(f for f, _ in fams)), "one TYPE line per family")
    t.check(all(ty == "counter" for f, ty in fams if f.endswith("_total")) and
            all(ty == "gauge" for f, ty in fams if not f.endswith("_total")),
            "counters end in _total, the rest are gauges")
    if not promtool_ok:
        raise t.Skip("promtool missing: the text format was checked by this test only")
    d.stop()


def test_health_flips():
    beh = {n: t.SmtpBehavior(n) for n in ("h1", "h2")}
    bk = {n: t.Backend(t.health_handler(beh[n]), name=n) for n in beh}
    port, sport = t.free_port(), t.free_port()
    text = t.make_config("%s:%d" % (H, port), [(n, bk[n].address) for n in ("h1", "h2")],
                         be={"timeout_server": "30s",
                             "health_check": {"type": "smtp", "helo": "noor.net",
                                              "interval": "200ms", "rise": 1, "fall": 2}},
                         glob={"stats_listen": "%s:%d" % (H, sport)})
    d = t.Daemon(text, [(H, port), (H, sport)], name="healthflip").start()

    def status():
        st, hdr, body = http_get(sport, "/health")
        return st, body.decode(errors="replace")

    t.require(t.wait_until(lambda: status()[0] == 200, 5, 0.1), "/health 200 with both UP")
    st, body = status()
    t.check(body == "ok\n", "/health says ok", repr(body))
    st, hdr, body = http_get(sport, "/health", method="HEAD")
    t.check(st == 200 and body == b"", "HEAD /health: 200, no body", "%s %r" % (st, body))
    beh["h1"].mode = "helo421"
    time.sleep(1.0)
    t.check(status()[0] == 200, "/health stays 200 while one server is UP")
    beh["h2"].mode = "helo421"
    t0 = time.monotonic()
    flipped = t.wait_until(lambda: status()[0] == 503, 5, 0.05)
    t.check(flipped, "/health 503 once every server failed its checks",
            "after %.2fs" % (time.monotonic() - t0))
    st, body = status()
    t.check(body == "backend be has no server UP\n", "503 names the backend", repr(body))
    ev = d.wait_event(lambda e: e.get("event") == "backend_down", 2)
    t.check(ev is not None, "the health log has backend_down too")
    beh["h2"].mode = "ok"
    t.check(t.wait_until(lambda: status()[0] == 200, 5, 0.05),
            "/health 200 again when a server comes back")
    d.stop()


def svg_lane(root, server):
    for g in root.iter(SVG_NS + "g"):
        if g.get("data-server") == server:
            return g
    return None


def test_page_timeline_and_reload():
    beh = {"ok1": t.SmtpBehavior("ok1"), "sick": t.SmtpBehavior("sick", mode="helo421")}
    bk = {n: t.Backend(t.health_handler(beh[n]), name=n) for n in beh}
    extra = t.Backend(t.health_handler(t.SmtpBehavior("added")), name="added")
    port, sport = t.free_port(), t.free_port()
    hc = {"type": "smtp", "helo": "noor.net", "interval": "300ms", "rise": 1, "fall": 1}
    run = t.tempdir("lbtest-page-")
    odd_addr = "%s:%d" % (H, t.free_port())

    def conf(names):
        servers = [(n, bk[n].address) for n in names if n in bk]
        if "added" in names:
            servers.append(("added", extra.address))
        servers.append((ODD, odd_addr, {"check": False}))
        return t.make_config("%s:%d" % (H, port), servers,
                             be={"timeout_server": "30s", "health_check": hc},
                             glob={"stats_listen": "%s:%d" % (H, sport),
                                   "control_socket": os.path.join(run, "lb.sock"),
                                   "health_log": os.path.join(run, "health.log")})

    d = t.Daemon(conf(["ok1", "sick"]), [(H, port), (H, sport)], name="page").start()
    t.require(d.wait_event(lambda e: e.get("event") == "down" and e.get("server") == "sick", 5),
              "sick goes DOWN")
    reason = "helo: 421 4.7.0 try again later"

    st, hdr, body = http_get(sport, "/")
    page = body.decode()
    t.check(st == 200 and hdr.get("content-type") == "text/html; charset=utf-8",
            "GET /: 200 text/html", "%s %s" % (st, hdr.get("content-type")))
    t.check("default-src 'none'" in hdr.get("content-security-policy", ""),
            "the page forbids external assets (CSP default-src 'none')")
    t.check(re.search(r"<(script|link|img|iframe)\b", page) is None and
            "http://" not in page.replace("http://www.w3.org/2000/svg", ""),
            "no script, link, img or external URL in the page")
    t.check('<meta http-equiv="refresh" content="10">' in page, "the page refreshes itself")
    m = re.search(r'<tr class="server" data-server="sick" data-state="DOWN">(.*?)</tr>', page, re.S)
    t.check(m is not None, "the page has sick's row with data-state DOWN")
    if m:
        t.check('class="st st-down">DOWN<' in m.group(1), "sick's state cell is DOWN, coloured")
        t.check("failed at helo: 421 4.7.0 try again later" in m.group(1),
                "sick's row shows the last check's failure")
    t.check('data-server="ok1" data-state="UP"' in page, "ok1 is UP")
    t.check("o&lt;&quot;x&quot;&gt;\\&amp;" in page and ODD not in page,
            "the odd server name is escaped in the page")
    t.check("<svg" in page and 'data-server="sick"' in page[page.index("<svg"):],
            "the page holds the timeline inline")

    st, hdr, body = http_get(sport, "/timeline")
    t.check(st == 200 and hdr.get("content-type") == "image/svg+xml; charset=utf-8",
            "GET /timeline: 200 image/svg+xml", "%s %s" % (st, hdr.get("content-type")))
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        root = None
        t.check(False, "/timeline is well-formed XML", str(e))
    if root is not None:
        lane = svg_lane(root, "sick")
        t.check(lane is not None and lane.get("data-state") == "DOWN",
                "/timeline: sick's lane, currently DOWN")
        downs = [r for r in (lane.iter(SVG_NS + "rect") if lane is not None else [])
                 if r.get("data-state") == "DOWN"]
        titles = [r.find(SVG_NS + "title").text for r in downs]
        t.check(any(reason in x for x in titles), "a DOWN band's title gives the reason",
                str(titles))
        t.check(svg_lane(root, ODD) is not None, "the odd name's lane, unescaped by the parser")
        ok = svg_lane(root, "ok1")
        t.check(ok is not None and ok.get("data-state") == "UP", "ok1's lane is UP")

    # lbctl draws the same from the log file.
    rc, out, err = t.run_lbctl(["health-report", "--log", d.health_log, "--format", "svg"])
    t.check(rc == 0, "lbctl health-report --format svg exits 0", err)
    try:
        lroot = ET.fromstring(out.encode())
        lane = svg_lane(lroot, "sick")
        titles = [r.find(SVG_NS + "title").text for r in lane.iter(SVG_NS + "rect")
                  if r.get("data-state") == "DOWN"] if lane is not None else []
        t.check(any(reason in x for x in titles),
                "lbctl's picture has the same DOWN band and reason", str(titles))
        t.check(out.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<svg'),
                "lbctl writes a standalone SVG file")
    except ET.ParseError as e:
        t.check(False, "lbctl --format svg is well-formed XML", str(e))
    rc, out, err = t.run_lbctl(["health-report", "--log", d.health_log, "--format", "svg",
                                "--since", "bogus"])
    t.check(rc == 2, "lbctl --format svg --since bogus: usage error (2)", "rc=%s" % rc)

    # Query and routing errors.
    st, _, body = http_get(sport, "/timeline?since=bogus")
    t.check(st == 400 and b"since" in body, "?since=bogus: 400", "%s %r" % (st, body))
    st, _, body = http_get(sport, "/timeline?since=7d")
    t.check(st == 200 and b"(7d00h)" in body, "?since=7d: a week's picture", str(st))
    st, _, _ = http_get(sport, "/?since=90m")
    t.check(st == 200, "/?since=90m: 200")
    st, _, _ = http_get(sport, "/nope")
    t.check(st == 404, "unknown path: 404", str(st))
    st, _, _ = http_get(sport, "/metrics", method="POST")
    t.check(st in (405, 501), "POST: refused (405/501)", str(st))

    # A reload adds a server: the next requests show it, and the counters
    # go on.  (Round robin tries the odd server, which refuses: retries.)
    sess = [Session(port) for _ in range(4)]
    t.check(all(x.name == "ok1" for x in sess), "4 sessions on ok1")
    wait_session_lines(d, 4)
    _, before = scrape(sport)
    t.check(metric(before, "load_balancer_backend_connect_retries_total", backend="be") >= 1,
            "some connect retries before the reload")
    with open(d.conf, "w") as f:
        f.write(conf(["ok1", "sick", "added"]))
    rc, out, err = d.ctl("reload")
    t.require(rc == 0, "reload ok", out + err)
    _, ms = scrape(sport)
    for name, labels in (("load_balancer_frontend_sessions_total", {"frontend": "fe"}),
                         ("load_balancer_frontend_bytes_in_total", {"frontend": "fe"}),
                         ("load_balancer_frontend_bytes_out_total", {"frontend": "fe"}),
                         ("load_balancer_backend_connect_retries_total", {"backend": "be"}),
                         ("load_balancer_server_sessions_total",
                          {"backend": "be", "server": "ok1"}),
                         ("load_balancer_server_bytes_in_total",
                          {"backend": "be", "server": "ok1"})):
        b, a = metric(before, name, **labels), metric(ms, name, **labels)
        t.check(b is not None and a == b and b > 0, "%s carries over the reload" % name,
                "%s -> %s" % (b, a))
    t.check(metric(ms, "load_balancer_frontend_bytes_in_total", frontend="fe") ==
            sum(x.sent for x in sess), "frontend bytes in == what the clients sent")
    t.check(metric(ms, "load_balancer_server_weight", backend="be", server="added") == 1,
            "/metrics lists the added server at once")
    t.check(metric(ms, "load_balancer_reloads_total") == 1, "reloads_total 1")
    st, _, body = http_get(sport, "/")
    t.check('data-server="added"' in body.decode(), "the page lists the added server")
    d.stop()


def test_auth():
    port, sport = t.free_port(), t.free_port()
    srv = t.Backend(t.health_handler(t.SmtpBehavior("a1")), name="a1")
    text = t.make_config("%s:%d" % (H, port), [("a1", srv.address)],
                         glob={"stats_listen": "%s:%d" % (H, sport),
                               "stats_auth": "admin:s3cr:et"})
    d = t.Daemon(text, [(H, port), (H, sport)], name="auth").start()
    for path in ("/", "/metrics", "/timeline", "/health"):
        st, hdr, _ = http_get(sport, path)
        t.check(st == 401 and hdr.get("www-authenticate", "").startswith("Basic realm="),
                "%s without credentials: 401 with WWW-Authenticate" % path, str(st))
        st, _, _ = http_get(sport, path, auth="admin:wrong")
        t.check(st == 401, "%s with a wrong password: 401" % path, str(st))
        st, _, _ = http_get(sport, path, auth="admin:s3cr:et")
        t.check(st == 200, "%s with the right credentials: 200" % path, str(st))
    st, _, _ = http_get(sport, "/", auth="admin:s3cr:etX")
    t.check(st == 401, "a longer password: 401")
    # A reload changes the credentials at once.
    with open(d.conf) as f:
        conf = f.read()
    with open(d.conf, "w") as f:
        f.write(conf.replace('"admin:s3cr:et"', '"ops:other"'))
    rc, out, err = d.ctl("reload")
    t.require(rc == 0, "reload with new credentials", out + err)
    st, _, _ = http_get(sport, "/health", auth="admin:s3cr:et")
    t.check(st == 401, "old credentials refused after the reload")
    st, _, _ = http_get(sport, "/health", auth="ops:other")
    t.check(st == 200, "new credentials accepted after the reload")
    d.stop()


def test_config_and_bind():
    # Non-loopback without stats_auth: a configuration error with its line.
    dd = t.tempdir("lbtest-statscfg-")
    path = os.path.join(dd, "s.conf")
    with open(path, "w") as f:
        f.write(t.make_config("%s:%d" % (H, t.free_port()), [("s", "127.0.0.1:9")],
                              glob={"stats_listen": "0.0.0.0:8404"}))
    rc, out, err = t.run_lb(["-c", "-f", path])
    t.check(rc == 1 and re.search(re.escape(path) + r":1: stats_listen: 0\.0\.0\.0:8404 is "
                                  r"not a loopback address", err),
            "-c: non-loopback stats_listen without stats_auth is an error at its line",
            "rc=%s err=%r" % (rc, err))
    with open(path, "w") as f:
        f.write(t.make_config("%s:%d" % (H, t.free_port()), [("s", "127.0.0.1:9")],
                              glob={"stats_listen": "0.0.0.0:8404", "stats_auth": "u:p"}))
    rc, out, err = t.run_lb(["-c", "-f", path])
    t.check(rc == 0 and out.strip() == "configuration OK",
            "-c: non-loopback with stats_auth is fine", err)

    # A busy address written in the file: exit 3, one line naming it.
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind((H, 0))
    busy.listen(1)
    bport = busy.getsockname()[1]
    try:
        port = t.free_port()
        text = t.make_config("%s:%d" % (H, port), [("s", "127.0.0.1:9")],
                             glob={"stats_listen": "%s:%d" % (H, bport)})
        d = t.Daemon(text, [(H, port)], name="statsbusy")
        d.start(wait=False)
        try:
            rc = d.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc = None
        err = d.stderr()
        d.stop()
        lines = [ln for ln in err.splitlines() if "%s:%d" % (H, bport) in ln]
        t.check(rc == 3, "busy stats_listen: exit 3", "rc=%s" % rc)
        t.check(len(lines) == 1 and "in use" in lines[0],
                "one line names the address and says it is in use", repr(lines))
    finally:
        busy.close()

    # The default (127.0.0.1:8404) only warns when it is busy.  Hold it
    # here; if another process already has it, it is busy as well, but it
    # could go away meanwhile: then this part proves nothing and is left out.
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        held.bind((H, 8404))
        held.listen(1)
    except OSError as e:
        held.close()
        t.log("  127.0.0.1:8404 is in use elsewhere (%s): default case not tested" % e)
        return
    try:
        port = t.free_port()
        text = t.make_config("%s:%d" % (H, port), [("s", "127.0.0.1:9")])
        d = t.Daemon(text, [(H, port)], name="statsdefault").start()
        t.check(d.alive(), "busy default stats_listen: the daemon runs")
        t.check(t.wait_until(lambda: "running without the status page" in d.stderr(), 3),
                "and warns that it runs without the status page")
        d.stop()
    finally:
        held.close()


if __name__ == "__main__":
    t.main([test_metrics_after_traffic, test_health_flips, test_page_timeline_and_reload,
            test_auth, test_config_and_bind], timeout=150)
