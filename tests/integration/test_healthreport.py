#!/usr/bin/env python3
"""lbctl health-report lists every server of the configuration (lbctl(8),
HEALTH REPORT): right after a start, with no server event in the health log,
the three servers of a running daemon are in the text report ("Now: 3 UP"),
the JSON and the SVG timeline; -f FILE names the configuration, whose
health_log is the log read unless --log says otherwise; a server disabled in
the file is MAINT; a configuration that cannot be read is said in one line
on stderr and the report lists the log's servers alone, as before; events
then change the servers' rows as they always did."""

import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

H = "127.0.0.1"
NAMES = ["s1", "s2", "s3"]


def start(name, extra=()):
    """Three smtp-sinks behind a daemon checking them (smtp, 200 ms);
    extra: more (name, address, kwargs) servers."""
    sinks = {n: t.SmtpSink().start() for n in NAMES}
    port = t.free_port()
    servers = [(n, sinks[n].address) for n in NAMES] + list(extra)
    text = t.make_config("%s:%d" % (H, port), servers,
                         be={"health_check": {"type": "smtp", "helo": "noor.net",
                                              "interval": "200ms", "rise": 2, "fall": 2}})
    d = t.Daemon(text, [(H, port)], name=name).start()
    return d, sinks


def wait_checked(d, names):
    """Until every server in names has passed a check (show servers)."""
    def f():
        rc, out, _ = d.ctl("show servers")
        rows = {r.get("SERVER"): r for r in t.parse_table(out)} if rc == 0 else {}
        return all(rows.get(n, {}).get("LAST CHECK", "").startswith("passed") for n in names)
    ok = t.wait_until(f, 5, 0.05)
    t.require(ok, "every server passed a health check")


def report(args):
    rc, out, err = t.run_lbctl(["health-report"] + list(args))
    return rc, out, err


def server_rows(text):
    """The server table of the text report: {SERVER: row}."""
    lines = text.splitlines()
    for i, ln in enumerate(lines):
        if ln.startswith("BACKEND  SERVER"):
            block = []
            for row in lines[i:]:
                if not row.strip():
                    break
                block.append(row)
            return {r.get("SERVER"): r for r in t.parse_table("\n".join(block))}
    return {}


def svg_lanes(svg):
    """{server: data-state} of the timeline's lanes."""
    return {m.group(2): m.group(3) for m in re.finditer(
        r'<g class="tl-lane" data-backend="([^"]*)" data-server="([^"]*)" '
        r'data-state="([^"]*)"', svg)}


def test_fresh_start():
    d, sinks = start("fresh")
    wait_checked(d, NAMES)
    time.sleep(0.5)  # a few more checks: none may log anything
    ev = [e.get("event") for e in d.health_events()]
    t.require(ev == ["start"], "the health log holds the start line alone", str(ev))

    # -f alone: the configuration's health_log is the log read.
    rc, out, err = report(["-f", d.conf])
    t.log("  health-report -f CONF:\n" + out)
    t.check(rc == 0 and err == "", "health-report -f CONF: exit 0, nothing on stderr",
            "rc=%s err=%r" % (rc, err))
    t.check("Log %s: 1 event\n" % d.health_log in out,
            "the log read is the configuration's health_log", out[:300])
    t.check("Configuration %s: 3 servers\n" % d.conf in out,
            "the header names the configuration and its 3 servers", out[:300])
    t.check("Now: 3 UP, 0 DOWN, 0 drained or disabled.\n" in out, "Now: 3 UP, 0 DOWN", out[:400])
    rows = server_rows(out)
    t.check(sorted(rows) == NAMES, "one row per configured server", str(sorted(rows)))
    for n in NAMES:
        r = rows.get(n, {})
        t.check(r.get("BACKEND") == "be" and r.get("ADDRESS") == sinks[n].address and
                r.get("NOW") == "UP" and r.get("AVAIL") == "100.000%" and
                r.get("DOWNS") == "0" and r.get("DOWNTIME") == "0s" and r.get("MAINT") == "0s",
                "%s: be, its address, UP, 100.000%%, 0 downs" % n, str(r))
    t.check(re.search(r"^be\s+0\s+0s\s+0s\s+ok$", out, re.M) is not None,
            "the backend table lists be, ok", out)

    # --log given as well: the same servers.
    rc, out2, err = report(["-f", d.conf, "--log", d.health_log, "--since", "1h"])
    t.check(rc == 0 and "Now: 3 UP, 0 DOWN" in out2 and sorted(server_rows(out2)) == NAMES,
            "-f CONF --log LOG --since 1h: the three servers, 3 UP", "rc=%s err=%r" % (rc, err))

    rc, out, err = report(["--config", d.conf, "--format", "json"])
    try:
        j = json.loads(out)
    except ValueError as e:
        j = {}
        t.check(False, "--format json: valid JSON", "%s: %r" % (e, out[:300]))
    srv = {s.get("server"): s for s in j.get("servers", [])}
    t.check(rc == 0 and sorted(srv) == NAMES, "json: the three servers", "rc=%s %s" % (rc, sorted(srv)))
    for n in NAMES:
        s = srv.get(n, {})
        t.check(s.get("backend") == "be" and s.get("addr") == sinks[n].address and
                s.get("state") == "UP" and s.get("configured") is True and
                s.get("availability_pct") == 100.0 and s.get("down_events") == 0 and
                s.get("outages") == [],
                "json %s: UP, configured, 100 %%, no outage" % n, str(s))
    t.check(j.get("configuration") == {"file": d.conf, "servers": 3},
            "json: configuration {file, servers: 3}", str(j.get("configuration")))
    t.check([b.get("backend") for b in j.get("backends", [])] == ["be"],
            "json: backend be listed", str(j.get("backends")))

    rc, svg, err = report(["-f", d.conf, "--format", "svg"])
    lanes = svg_lanes(svg)
    t.check(rc == 0 and svg.startswith("<?xml") and lanes == {n: "UP" for n in NAMES},
            "svg: one UP lane per configured server", "rc=%s lanes=%s err=%r" % (rc, lanes, err))
    for n in NAMES:
        t.check(re.search(r'class="tl-up"[^>]*><title>be/%s: UP from' % n, svg) is not None,
                "svg %s: an UP band from the start" % n)

    # A configuration that cannot be read: one line on stderr, and the
    # log's servers alone (none here), as without -f.
    bad = os.path.join(d.dir, "nosuch.conf")
    rc, out, err = report(["-f", bad, "--log", d.health_log])
    t.check(rc == 0 and len(err.splitlines()) == 1 and bad in err and
            "cannot use the configuration" in err,
            "unreadable configuration: exit 0, one line on stderr naming it", "rc=%s err=%r" % (rc, err))
    t.check("Now: 3 UP" not in out and "No server events in this window" in out and
            "Configuration" not in out,
            "unreadable configuration: only the log's servers (none)", out[:400])
    rc, svg, err = report(["-f", bad, "--log", d.health_log, "--format", "svg"])
    t.check(rc == 0 and svg_lanes(svg) == {} and len(err.splitlines()) == 1,
            "unreadable configuration: svg without lanes, one line on stderr",
            "rc=%s err=%r" % (rc, err))
    d.stop()


def test_disabled_and_events():
    spare = t.SmtpSink().start()
    d, sinks = start("events", extra=[("s4", spare.address, {"disabled": True})])
    wait_checked(d, NAMES)
    rc, out, err = report(["-f", d.conf])
    rows = server_rows(out)
    t.check(rc == 0 and "Now: 3 UP, 0 DOWN, 1 drained or disabled.\n" in out,
            "disabled s4: Now: 3 UP, 1 drained or disabled", "rc=%s err=%r\n%s" % (rc, err, out[:400]))
    t.check(rows.get("s4", {}).get("NOW") == "MAINT" and rows.get("s4", {}).get("AVAIL") == "100.000%",
            "disabled s4: MAINT, 100.000%", str(rows.get("s4")))
    rc, svg, err = report(["-f", d.conf, "--format", "svg"])
    lanes = svg_lanes(svg)
    t.check(lanes.get("s4") == "MAINT" and [lanes.get(n) for n in NAMES] == ["UP"] * 3,
            "svg: s4 MAINT, the others UP", str(lanes))

    # Events: s2 drained, s3's sink stopped (DOWN after 2 failed checks).
    t.check(d.ctl("drain be/s2")[0] == 0, "lbctl drain be/s2")
    sinks["s3"].stop()
    down = d.wait_event(lambda e: e.get("event") == "down" and e.get("server") == "s3", 5)
    t.require(down is not None, "s3 goes DOWN once its sink is stopped")
    rc, out, err = report(["-f", d.conf])
    rows = server_rows(out)
    t.log("  health-report after the events:\n" + out)
    t.check("Now: 1 UP, 1 DOWN (be/s3), 2 drained or disabled.\n" in out,
            "Now: 1 UP, 1 DOWN (be/s3), 2 drained or disabled", out[:400])
    t.check([rows.get(n, {}).get("NOW") for n in ["s1", "s2", "s3", "s4"]] ==
            ["UP", "DRAIN", "DOWN", "MAINT"] and rows.get("s3", {}).get("DOWNS") == "1",
            "rows: s1 UP, s2 DRAIN, s3 DOWN (1 down), s4 MAINT", str(rows))
    rc, out, err = report(["-f", d.conf, "--format", "json"])
    srv = {s.get("server"): s for s in json.loads(out).get("servers", [])} if rc == 0 else {}
    t.check({n: s.get("state") for n, s in srv.items()} ==
            {"s1": "UP", "s2": "DRAIN", "s3": "DOWN", "s4": "MAINT"},
            "json: the four states", str({n: s.get("state") for n, s in srv.items()}))
    d.stop()


if __name__ == "__main__":
    t.main([test_fresh_start, test_disabled_and_events], timeout=60)
