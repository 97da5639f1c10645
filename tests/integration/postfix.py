"""A private, real Postfix instance on loopback ports for the integration
tests (REFERENCE.md section 10; needs root): its own main.cf/master.cf in
a temporary directory, Debian's master.cf without its inet services and
without chroot, plus one smtpd per entry of `services`, each logging under
its own syslog_name (its log lines read "NAME/smtpd[PID]: ..."), and
optionally postscreen services in front of their own smtpd.  The log
goes to DIR/postfix.log (maillog_file = /dev/stdout of `start-fg`).  Every
process it starts is stopped by `postfix -c DIR/etc stop`, then by PID."""

import os
import shutil
import signal
import subprocess

import lbtest as t

H = "127.0.0.1"
PFX_NAME = "pfx.test.local"
POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
POSTCAT = shutil.which("postcat") or "/usr/sbin/postcat"

# postscreen services (see Postfix.__init__): the settings every one gets first.
POSTSCREEN_DEFAULTS = ["postscreen_access_list=", "postscreen_greet_wait=2s",
                       "postscreen_greet_action=enforce", "postscreen_dnsbl_sites="]

# (syslog_name, listen host, extra "-o name=value" settings)
DEFAULT_SERVICES = [
    ("pfxplain", H, ["smtpd_tls_security_level=none"]),
    ("pfxtls", H, []),
]


class Postfix:
    """services: list of (name, host, [name=value, ...]); each gets a free
    port: self.ports[name] (and self.p_plain / self.p_tls for the default
    services).  A host with a colon is IPv6 (inet_protocols = all).

    postscreen: list of (name, host, [name=value, ...]) run as postscreen
    on their own free port (self.ports[name]), each handing the clients it
    lets through to its own `NAME_smtpd pass` smtpd (both log under
    syslog_name NAME: "NAME/postscreen[PID]" and "NAME/smtpd[PID]"), with
    the dnsblog and tlsproxy services postscreen needs, as Debian's
    master.cf has them (commented out).  POSTSCREEN_DEFAULTS come first:
    no permit_mynetworks (every test client is on 127.0.0.0/8) and a short
    pregreet wait."""

    def __init__(self, tls_cert, tls_key, services=None, postscreen=None):
        self.services = list(DEFAULT_SERVICES if services is None else services)
        self.postscreen = list(postscreen or [])
        self.dir = t.tempdir("lbtest-postfix-")
        os.chmod(self.dir, 0o755)   # the postfix user walks into spool/
        self.etc = os.path.join(self.dir, "etc")
        self.spool = os.path.join(self.dir, "spool")
        self.data = os.path.join(self.dir, "data")
        for d in (self.etc, self.spool, self.data):
            os.makedirs(d)
        shutil.chown(self.data, "postfix")
        self.log = os.path.join(self.dir, "postfix.log")
        self.ports = {}
        self.hosts = {}
        for name, host, _ in self.services + self.postscreen:
            self.ports[name] = t.free_port(host)
            self.hosts[name] = host
        self.p_plain = self.ports.get("pfxplain")
        self.p_tls = self.ports.get("pfxtls")
        ipv6 = any(":" in h for h in self.hosts.values())
        self.proc = None
        self._log = None
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("""compatibility_level = 3.6
queue_directory = %(spool)s
data_directory = %(data)s
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = %(name)s
inet_interfaces = loopback-only
inet_protocols = %(proto)s
mynetworks = %(nets)s
maillog_file = /dev/stdout
alias_maps =
alias_database =
local_recipient_maps =
default_transport = discard
relay_transport = discard
local_transport = discard
smtpd_tls_cert_file = %(cert)s
smtpd_tls_key_file = %(key)s
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
""" % {"spool": self.spool, "data": self.data, "name": PFX_NAME, "cert": tls_cert, "key": tls_key,
                "proto": "all" if ipv6 else "ipv4",
                "nets": "127.0.0.0/8 [::1]/128" if ipv6 else "127.0.0.0/8"})
        # Debian's master.cf without its inet services and without chroot.
        out = []
        with open("/etc/postfix/master.cf") as f:
            for line in f:
                fields = line.split()
                if line[:1].isspace() or line.startswith("#") or len(fields) < 8:
                    out.append(line)
                    continue
                if fields[1] == "inet":
                    out.append("#" + line)
                    continue
                fields[4] = "n"
                out.append("  ".join(fields[:8]) + ((" " + " ".join(fields[8:])) if fields[8:] else "")
                           + "\n")
        for name, host, settings in self.services:
            out.append("%s inet n - n - - smtpd -o syslog_name=%s%s\n"
                       % (t.addr(host, self.ports[name]), name,
                          "".join(" -o " + s for s in settings)))
        if self.postscreen:
            out.append("dnsblog unix - - n - 0 dnsblog\n"
                       "tlsproxy unix - - n - 0 tlsproxy\n")
        for name, host, settings in self.postscreen:
            sets = POSTSCREEN_DEFAULTS + list(settings)
            out.append("%s inet n - n - 1 postscreen -o syslog_name=%s -o smtpd_service_name=%s_smtpd%s\n"
                       % (t.addr(host, self.ports[name]), name, name,
                          "".join(" -o " + s for s in sets)))
            out.append("%s_smtpd pass - - n - - smtpd -o syslog_name=%s\n" % (name, name))
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write("".join(out))

    def start(self):
        if not os.access(POSTFIX, os.X_OK):
            raise t.Skip("postfix is not installed")
        if os.geteuid() != 0:
            raise t.Skip("a private Postfix needs root")
        r = subprocess.run([POSTFIX, "-c", self.etc, "check"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        if r.returncode != 0:
            t.log("  postfix check: " + r.stdout.decode(errors="replace"))
        self._log = open(self.log, "wb")
        self.proc = subprocess.Popen([POSTFIX, "-c", self.etc, "start-fg"], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        t._register_proc(self.proc, "postfix master")
        ok = t.wait_until(lambda: self.proc.poll() is not None or
                          all(t.is_listening(self.hosts[n], p) for n, p in self.ports.items()),
                          20, 0.1)
        if self.proc.poll() is not None or not ok:
            t.log("  postfix did not start (status %s); its log:" % self.proc.poll())
            for ln in self.text().splitlines()[-40:]:
                t.log("  | " + ln)
            raise t.DaemonError("postfix did not start")
        return self

    def text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def lines(self, name=None, *words, prog="smtpd"):
        """Log lines of smtpd service name (all lines when None) that
        contain every one of words; prog="postscreen": the lines of the
        postscreen service name."""
        tag = "%s/%s[" % (name, prog) if name else ""
        return [ln for ln in self.text().splitlines()
                if tag in ln and all(w in ln for w in words)]

    def postcat(self, args, timeout=10):
        """postcat -c ETC ARGS...: (returncode, output text)."""
        r = subprocess.run([POSTCAT, "-c", self.etc] + list(args), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        return r.returncode, r.stdout.decode(errors="replace")

    def own_pids(self):
        """PIDs of the processes of this instance (MAIL_CONFIG=our etc)."""
        pids = []
        key = ("MAIL_CONFIG=" + self.etc).encode()
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open("/proc/%s/environ" % p, "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            if key in env:
                pids.append(int(p))
        return pids

    def stop(self):
        try:
            subprocess.run([POSTFIX, "-c", self.etc, "stop"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=20)
        except Exception:
            pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                t.kill_proc(self.proc, signal.SIGTERM, 3)
        left = [p for p in self.own_pids() if p != os.getpid()]
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if left:
            t.log("  killed leftover postfix processes %s" % left)
        try:
            if self._log is not None:
                self._log.close()
        except Exception:
            pass
