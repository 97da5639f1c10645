#!/usr/bin/env python3
"""SMTP health checks against a real Postfix smtpd (load-balancer.conf(5),
HEALTH CHECKS): a private Postfix instance on loopback ports (REFERENCE.md
section 10, as root), one smtpd without TLS and one with STARTTLS (a
certificate made here with openssl). A plain check (HELO noor.net) and a
STARTTLS check (tls_verify, tls_ca_file, tls_servername) keep both servers
UP, and Postfix logs every check session as a clean one (helo=1 quit=1 /
ehlo=2 starttls=1 quit=1), never "lost connection after ...". A real message
goes through the balancer into Postfix's queue."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest as t  # noqa: E402

from postfix import H, PFX_NAME, Postfix  # noqa: E402  (the private Postfix instance)


def test_postfix_checks():
    ca = t.TestCA()
    crt, key = ca.leaf(PFX_NAME)
    pf = Postfix(crt, key)
    try:
        pf.start()
        run(pf, ca)
    finally:
        pf.stop()
        t.log("  --- postfix log (last 60 lines) ---")
        for ln in pf.text().splitlines()[-60:]:
            t.log("  | " + ln)


def run(pf, ca):
    fp, ft = t.free_port(), t.free_port()
    hc = {"type": "smtp", "helo": "noor.net", "interval": "500ms", "rise": 2, "fall": 3,
          "timeout": "3s"}
    pairs = [
        ({"name": "fe_plain", "bind": "%s:%d" % (H, fp), "backend": "plain", "timeout_client": "30s"},
         {"name": "plain", "health_check": hc, "servers": [("pfx", "%s:%d" % (H, pf.p_plain))]}),
        ({"name": "fe_tls", "bind": "%s:%d" % (H, ft), "backend": "tls", "timeout_client": "30s"},
         {"name": "tls", "health_check": dict(hc, starttls=True, tls_verify=True, tls_ca_file=ca.cert,
                                              tls_servername=PFX_NAME),
          "servers": [("pfxtls", "%s:%d" % (H, pf.p_tls))]}),
    ]
    d = t.Daemon(t.make_config_multi(pairs), [(H, fp), (H, ft)], name="postfix").start()

    def clean(tag, want):
        return [ln for ln in pf.text().splitlines()
                if "%s/smtpd[" % tag in ln and "disconnect from" in ln and want in ln]
    ok = t.wait_until(lambda: len(clean("pfxplain", "helo=1 quit=1 commands=2")) >= 4 and
                      len(clean("pfxtls", "ehlo=2 starttls=1 quit=1 commands=4")) >= 4, 20, 0.2)
    t.check(ok, "Postfix logged at least 4 clean check sessions on each smtpd")

    # A real message through the balancer (accepted into the queue: mynetworks).
    c = t.Client(H, fp, timeout=10)
    ban = c.banner()
    t.check(ban is not None and ban.startswith(b"220 " + PFX_NAME.encode()),
            "the client gets Postfix's banner through the balancer", repr(ban))
    r = c.cmd("EHLO client.lbtest")
    t.check(r and r.startswith(b"250"), "EHLO 250", repr(r))
    r1 = c.cmd("MAIL FROM:<sender@lbtest.example>")
    r2 = c.cmd("RCPT TO:<rcpt@example.com>")
    r3 = c.cmd("DATA")
    t.check(r1 and r1.startswith(b"250") and r2 and r2.startswith(b"250") and r3 and r3.startswith(b"354"),
            "MAIL 250, RCPT 250, DATA 354", repr((r1, r2, r3)))
    r4 = c.cmd("Subject: lbtest\r\nFrom: sender@lbtest.example\r\nTo: rcpt@example.com\r\n\r\n"
               "hello through the balancer\r\n.")
    t.log("  end of DATA: %r" % r4)
    m = re.match(rb"250 2\.0\.0 Ok: queued as (\w+)", r4 or b"")
    t.check(m is not None, "Postfix queues the message (250 2.0.0 Ok: queued as ID)", repr(r4))
    r5 = c.cmd("QUIT")
    t.check(r5 and r5.startswith(b"221"), "QUIT 221", repr(r5))
    c.close()
    if m:
        qid = m.group(1).decode()
        t.wait_until(lambda: "%s: removed" % qid in pf.text(), 10, 0.2)
        t.check(re.search(r"%s: to=<rcpt@example.com>.*status=sent" % qid, pf.text()) is not None,
                "Postfix delivered it (discard transport: status=sent)")
    # A STARTTLS client through the TLS frontend sees Postfix offer STARTTLS.
    c = t.Client(H, ft, timeout=10)
    c.banner()
    r = c.cmd("EHLO client.lbtest")
    t.check(r and b"STARTTLS" in r, "through the balancer, Postfix offers STARTTLS", repr(r))
    c.cmd("QUIT")
    c.close()

    time.sleep(1.2)   # a few more checks
    text = pf.text()
    rc, out, err = d.ctl("show servers")
    t.log("  show servers:\n" + out)
    rows = {r.get("SERVER"): r for r in t.parse_table(out)}
    for n in ("pfx", "pfxtls"):
        r = rows.get(n, {})
        t.check(r.get("STATE") == "UP" and r.get("LAST CHECK", "").startswith("passed"),
                "%s: UP, last check passed" % n, str(r))
    ev = d.health_events()
    for e in ev:
        t.log("  | " + e["_line"])
    bad = [e["_line"] for e in ev if e.get("event") in ("fail", "down")]
    t.check(not bad, "no failed check in the health log", str(bad[:3]))
    ce = [e for e in ev if e.get("event") == "cert_expiry"]
    t.check(not ce, "no cert_expiry for a certificate valid 365 days", str(ce))

    plain = [ln for ln in text.splitlines() if "pfxplain/smtpd[" in ln and "disconnect from" in ln]
    tls = [ln for ln in text.splitlines() if "pfxtls/smtpd[" in ln and "disconnect from" in ln]
    pc = clean("pfxplain", "helo=1 quit=1 commands=2")
    tc = clean("pfxtls", "ehlo=2 starttls=1 quit=1 commands=4")
    t.log("  postfix: plain smtpd %d sessions (%d clean checks), tls smtpd %d sessions (%d clean checks)"
          % (len(plain), len(pc), len(tls), len(tc)))
    t.check(len(pc) >= 5, "plain checks: Postfix logs 'disconnect from ... helo=1 quit=1 commands=2'",
            str(len(pc)))
    t.check(len(tc) >= 5, "STARTTLS checks: 'disconnect from ... ehlo=2 starttls=1 quit=1 commands=4'",
            str(len(tc)))
    others = [ln for ln in plain if ln not in pc]
    t.check(len(others) == 1 and "mail=1 rcpt=1 data=1 quit=1" in others[0],
            "the only other plain session is the message (ehlo mail rcpt data quit)", str(others))
    others = [ln for ln in tls if ln not in tc]
    t.check(len(others) <= 1 and all("ehlo=1 quit=1" in ln for ln in others),
            "the only other TLS-smtpd session is the EHLO/QUIT client", str(others))
    lost = [ln for ln in text.splitlines() if "lost connection" in ln or "improper command pipelining" in ln
            or "timeout after" in ln]
    t.check(not lost, "no 'lost connection after', 'improper command pipelining' or 'timeout after'",
            str(lost[:3]))
    tlsok = [ln for ln in text.splitlines() if "pfxtls/smtpd[" in ln and "TLS connection established" in ln]
    t.check(tlsok, "Postfix logs the checks' TLS connections", str(len(tlsok)))
    errs = [ln for ln in text.splitlines() if re.search(r"(fatal|panic|warning: TLS)", ln)]
    t.check(not errs, "no fatal/panic/TLS warning in Postfix's log", str(errs[:3]))
    d.stop()


if __name__ == "__main__":
    t.main([test_postfix_checks], timeout=70)
