#!/bin/bash
# The Debian package, end to end, on this machine (run by .ci/run through
# tests/check.sh, not by make check):
#   1. builds it with `dpkg-buildpackage -us -uc -b` in a copy of the tree
#      (the checkout stays clean) and checks that debian/changelog's
#      version is configure.ac's;
#   2. lintian on the .changes (the .deb and its dbgsym): any E: fails,
#      W: lines are printed;
#   3. apt-get install ./load-balancer_*.deb; the files, the user and the
#      directories are there; systemd-analyze verify on the installed
#      unit; /etc/init.d/load-balancer start, status, reload (a changed
#      weight is applied), restart, stop, status; lbctl answers the daemon,
#      which runs as the user load-balancer; logrotate with the installed
#      file rotates the health log and the daemon writes the next event to
#      the new file; the unit's CapabilityBoundingSet is enough for a start
#      (and without CAP_DAC_OVERRIDE it is not);
#   4. dpkg -r stops the daemon and keeps the conffiles; dpkg -P removes
#      the rest;
#   5. the upgrade: version V installed and serving (smtp-sink filters on
#      127.0.0.1:10025 and :10026), tests/package/smtp_load.py opening
#      SMTP sessions as fast as it can, apt-get install of version V+pkgtest1
#      (built from the same tree with a new changelog entry): the
#      package's postinst restarts the daemon with
#      `/etc/init.d/load-balancer restart`; no connection may be refused
#      or reset, and the sessions held in DATA across it must finish.
# The machine is restored in every case (trap): the package purged, every
# process the test started killed by its PID, the user load-balancer
# removed when it did not exist before, the temporary directory removed.
#
# Usage: bash tests/package/test_package.sh      (as root)
# Exit status: 0 passed, 1 failed, 77 skipped (not root, or a tool missing,
# and CI is not "true"; under CI=true those fail).
# Environment: LB_PKG_KEEP=1 keeps the temporary directory (the builds,
# lintian's output); LB_PKG_UPGRADE=0 leaves out part 5.
# Needs: dpkg-dev, debhelper, lintian, the Build-Depends of debian/control,
# apt, systemd (systemd-analyze), logrotate, postfix (smtp-sink),
# python3, util-linux (unshare, setpriv, flock), git (optional: without it
# the tree is copied with tar).
#
# The machine may forbid maintainer scripts to start services
# (/usr/sbin/policy-rc.d exiting 101, as in Docker images).  Then dpkg and
# apt-get run in a private mount namespace where policy-rc.d is replaced
# by `exit 0`, so that the package's own start, restart and stop run as
# they would on a real host; the machine's file is never changed.

# shellcheck disable=SC2016,SC2034,SC2317
# (SC2016: the single-quoted conditions given to holds are evaluated
# later on purpose; SC2034 and SC2317: variables and functions used
# there, in eval or in the trap, which shellcheck does not follow.)
set -u
export LC_ALL=C
SRC=$(cd "$(dirname "$0")/../.." && pwd)
PKG=load-balancer
DAEMON=/usr/sbin/load-balancer
INIT=/etc/init.d/load-balancer
PIDFILE=/run/load-balancer.pid
UNIT=/lib/systemd/system/load-balancer.service
PY=/usr/bin/python3
T0=$(date +%s)

checks=0
failures=0
ok() { checks=$((checks + 1)); echo "  ok   $*"; }
bad() {
	checks=$((checks + 1))
	failures=$((failures + 1))
	echo "  FAIL $*"
}
# check DESCRIPTION COMMAND...: ok when COMMAND succeeds.
check() {
	what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
# holds 'SHELL CONDITION': for check, a condition with && or ||.
holds() { eval "$1"; }
note() { echo "== $*"; }
# A missing tool or right: skip, but fail under CI.
cannot() {
	if [ "${CI:-}" = true ]; then
		echo "FAIL: $* (CI=true: the package test must run)"
		exit 1
	fi
	echo "SKIP: $*"
	exit 77
}

[ "$(id -u)" = 0 ] || cannot "needs root (it installs a package)"
for tool in dpkg-buildpackage dpkg-parsechangelog dh lintian apt-get \
	systemd-analyze logrotate start-stop-daemon unshare setpriv flock \
	/usr/sbin/smtp-sink "$PY"; do
	command -v "$tool" >/dev/null 2>&1 || cannot "$tool is not installed"
done
if dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null |
	grep -qv '^not-installed$'; then
	echo "FAIL: the package $PKG is installed here (or its conffiles are):" \
		"the test would replace it; dpkg -P $PKG first"
	exit 1
fi
if [ -e "$DAEMON" ]; then
	echo "FAIL: $DAEMON exists (not from the package): the test would overwrite it"
	exit 1
fi
for port in 2525 10025 10026; do
	if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
		echo "FAIL: TCP port $port is in use here: the packaged configuration and" \
			"the upgrade's filters need it"
		exit 1
	fi
done
had_user=no
getent passwd load-balancer >/dev/null && had_user=yes
had_group=no
getent group load-balancer >/dev/null && had_group=yes

WORK=$(mktemp -d /tmp/lb-package-test.XXXXXX) || exit 1
chmod 0755 "$WORK"
BG_PIDS=""
POLICY_MODE=none # none | ns | moved
POLICY=/usr/sbin/policy-rc.d

# Every process running the packaged daemon: /proc/PID/exe is $DAEMON
# (" (deleted)" after an upgrade replaced it).  The test refuses to start
# when $DAEMON exists, so each one is the test's.
daemon_pids() {
	for d in /proc/[0-9]*; do
		exe=$(readlink "$d/exe" 2>/dev/null) || continue
		case $exe in
		"$DAEMON" | "$DAEMON (deleted)") echo "${d#/proc/}" ;;
		esac
	done
}

# no_daemon_left WHAT: check that no daemon runs; those that do are
# killed, so that the next steps start from a clean state.
no_daemon_left() {
	left=$(daemon_pids | tr '\n' ' ')
	check "$1: no daemon left ($left)" [ -z "$left" ]
	for p in $left; do
		kill -9 "$p" 2>/dev/null
	done
	[ -z "$left" ] || rm -f "$PIDFILE" /run/load-balancer.sock
}

cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	note "cleanup"
	for p in $BG_PIDS; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	if dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null |
		grep -qv '^not-installed$'; then
		pkg_run dpkg -P "$PKG" >"$WORK/cleanup-purge.log" 2>&1 ||
			cat "$WORK/cleanup-purge.log"
	fi
	for p in $(daemon_pids); do
		echo "  killing leftover daemon pid $p"
		kill -9 "$p" 2>/dev/null
	done
	rm -f "$PIDFILE" /run/load-balancer.sock
	if [ "$POLICY_MODE" = moved ] && [ -e "$POLICY.lb-package-test" ]; then
		mv -f "$POLICY.lb-package-test" "$POLICY"
	fi
	if [ "$had_user" = no ] && getent passwd load-balancer >/dev/null; then
		deluser --quiet --system load-balancer >/dev/null 2>&1 ||
			userdel load-balancer
	fi
	if [ "$had_group" = no ] && getent group load-balancer >/dev/null; then
		delgroup --quiet --system load-balancer >/dev/null 2>&1 ||
			groupdel load-balancer
	fi
	if [ "${LB_PKG_KEEP:-0}" = 1 ]; then
		echo "  kept $WORK"
	else
		rm -rf "$WORK"
	fi
	echo "test_package.sh: $checks checks, $failures failed, $(($(date +%s) - T0)) s"
	if [ "$rc" = 0 ] && [ "$failures" != 0 ]; then rc=1; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# dpkg and apt-get, with the package's maintainer scripts allowed to
# start and stop the daemon (see the top of the file).
printf '#!/bin/sh\nexit 0\n' >"$WORK/policy-allow"
chmod 0755 "$WORK/policy-allow"
if [ -x "$POLICY" ]; then
	if unshare -m true 2>/dev/null; then
		POLICY_MODE=ns
	else
		# No mount namespace here: the file is moved aside for the
		# test (the trap puts it back).
		mv "$POLICY" "$POLICY.lb-package-test" && POLICY_MODE=moved
	fi
	echo "  ($POLICY forbids services to start here: overridden for the package's scripts, mode $POLICY_MODE)"
fi
pkg_run() {
	if [ "$POLICY_MODE" = ns ]; then
		unshare -m sh -c 'mount --bind "$0" /usr/sbin/policy-rc.d && exec "$@"' \
			"$WORK/policy-allow" "$@" </dev/null
	else
		"$@" </dev/null
	fi
}
apt_install() {
	pkg_run env DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}

# ---------------------------------------------------------------------
note "1. build (dpkg-buildpackage -us -uc -b in a copy of $SRC)"
BUILD=$WORK/build
mkdir -p "$BUILD/src"
if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# The working tree: tracked and new files, not what .gitignore
	# names (builds, generated autotools files).  On CI that is HEAD.
	(cd "$SRC" && git ls-files -z -c -o --exclude-standard |
		tar --null -T - -cf -) | tar -C "$BUILD/src" -xf - ||
		{ bad "copy of the tree"; exit 1; }
else
	(cd "$SRC" && tar --exclude='./_build*' --exclude='./.git' -cf - .) |
		tar -C "$BUILD/src" -xf - || { bad "copy of the tree"; exit 1; }
fi
[ -d "$BUILD/src/debian" ] || { bad "debian/ is in the tree"; exit 1; }
V1=$(cd "$BUILD/src" && dpkg-parsechangelog -S Version)
UPSTREAM=$(sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' "$SRC/configure.ac")
check "debian/changelog's version ($V1) is configure.ac's AC_INIT version ($UPSTREAM)" \
	[ "$V1" = "$UPSTREAM" ]
ARCH=$(dpkg --print-architecture)

# build VERSION_DIR: dpkg-buildpackage in $BUILD/src, the results moved
# to $WORK/VERSION_DIR.
build() {
	t=$(date +%s)
	if ! (cd "$BUILD/src" && timeout 900 dpkg-buildpackage -us -uc -b) \
		>"$WORK/$1-build.log" 2>&1; then
		tail -n 40 "$WORK/$1-build.log"
		return 1
	fi
	mkdir -p "$WORK/$1"
	mv "$BUILD"/*.deb "$BUILD"/*.changes "$BUILD"/*.buildinfo "$WORK/$1/" ||
		return 1
	echo "  (built in $(($(date +%s) - t)) s)"
}
build v1 || { bad "dpkg-buildpackage -us -uc -b"; exit 1; }
DEB1=$WORK/v1/${PKG}_${V1}_$ARCH.deb
check "dpkg-buildpackage made ${PKG}_${V1}_$ARCH.deb" [ -s "$DEB1" ]
[ -s "$DEB1" ] || exit 1

# ---------------------------------------------------------------------
note "2. lintian"
timeout 900 lintian --pedantic -I "$WORK/v1/${PKG}_${V1}_$ARCH.changes" \
	>"$WORK/lintian.out" 2>&1
grep -v '^running with root privileges' "$WORK/lintian.out" | sed 's/^/  | /'
nerr=$(grep -c '^E: ' "$WORK/lintian.out")
nwarn=$(grep -c '^W: ' "$WORK/lintian.out")
check "lintian: no error ($nerr E:, $nwarn W:)" [ "$nerr" = 0 ]

# ---------------------------------------------------------------------
note "3. install, files, the init script, lbctl, logrotate, capabilities"
if apt_install "$DEB1" >"$WORK/install.log" 2>&1; then
	ok "apt-get install ./${DEB1##*/}"
else
	bad "apt-get install ./${DEB1##*/}"
	tail -n 30 "$WORK/install.log"
	exit 1
fi
grep -i 'error\|warning' "$WORK/install.log" | grep -v '^debconf' | sed 's/^/  | /'

UID_LB=$(id -u load-balancer 2>/dev/null)
check "the system user load-balancer exists ($(getent passwd load-balancer))" \
	[ -n "$UID_LB" ]
for f in "$DAEMON" /usr/sbin/lbctl /usr/sbin/lb-postfix-agent; do
	check "$f is installed, executable" [ -x "$f" ]
done
for f in /usr/share/man/man8/load-balancer.8.gz /usr/share/man/man5/load-balancer.conf.5.gz \
	/usr/share/man/man8/lbctl.8.gz /usr/share/man/man8/lb-postfix-agent.8.gz \
	"$UNIT" /etc/default/load-balancer /etc/logrotate.d/load-balancer \
	/etc/load-balancer.conf /usr/share/doc/load-balancer/copyright \
	/usr/share/doc/load-balancer/README.Debian \
	/usr/share/doc/load-balancer/examples/load-balancer.conf \
	/usr/share/doc/load-balancer/examples/transparent.conf \
	/usr/share/doc/load-balancer/examples/keepalived.conf.example \
	/usr/share/doc/load-balancer/examples/lb-postfix-agent.init \
	/usr/share/doc/load-balancer/examples/lb-postfix-agent.socket \
	/usr/share/doc/load-balancer/examples/lb-postfix-agent@.service; do
	check "$f is installed" [ -s "$f" ]
done
check "$INIT is installed, executable, made with /usr/sbin/load-balancer" \
	grep -q "^DAEMON=$DAEMON\$" "$INIT"
check "$INIT has every @...@ filled in" sh -c "! grep -q '@[a-z]*@' '$INIT'"
check "/etc/load-balancer.conf listens on 127.0.0.1:2525, not on port 25" \
	sh -c "grep -q '^ *bind = \"127.0.0.1:2525\"' /etc/load-balancer.conf &&
		! grep -q '^ *bind = \"[^\"]*:25\"' /etc/load-balancer.conf"
check "load-balancer -c accepts /etc/load-balancer.conf" \
	sh -c "$DAEMON -c -f /etc/load-balancer.conf >/dev/null"
for d in /var/log/load-balancer /var/lib/load-balancer; do
	check "$d belongs to load-balancer ($(stat -c '%U:%G %a' "$d" 2>/dev/null))" \
		[ "$(stat -c %U "$d" 2>/dev/null)" = load-balancer ]
done
check "the init script is linked for boot (/etc/rc2.d/S*load-balancer)" \
	sh -c 'ls /etc/rc2.d/S*load-balancer >/dev/null 2>&1'

# systemd-analyze verify: no word about the unit.  With man(1) present it
# also checks the Documentation= pages.
man_opt=--man=no
command -v man >/dev/null 2>&1 && man_opt=--man=yes
systemd-analyze verify "$man_opt" "$UNIT" >"$WORK/verify.out" 2>&1
vrc=$?
sed 's/^/  | /' "$WORK/verify.out"
check "systemd-analyze verify $man_opt $UNIT: exit 0, nothing said" \
	holds '[ "$vrc" = 0 ] && [ ! -s "$WORK/verify.out" ]'

# running_daemon: the pid in the pidfile, when that process runs $DAEMON.
running_daemon() {
	p=$(cat "$PIDFILE" 2>/dev/null)
	case $p in '' | *[!0-9]*) return 1 ;; esac
	exe=$(readlink "/proc/$p/exe" 2>/dev/null) || return 1
	case $exe in "$DAEMON" | "$DAEMON (deleted)") echo "$p" ;; *) return 1 ;; esac
}
uid_of() { awk '/^Uid:/ { print $3 }' "/proc/$1/status" 2>/dev/null; }

# The postinst started it (policy-rc.d allowed it): start says so.
pid0=$(running_daemon)
check "apt-get install started the daemon (pid ${pid0:-none})" [ -n "$pid0" ]
"$INIT" start >"$WORK/init.out" 2>&1
rc=$?
check "$INIT start: exit 0 ($(tr '\n' ' ' <"$WORK/init.out"))" [ $rc = 0 ]
"$INIT" status >/dev/null 2>&1
check "$INIT status: exit 0 (running)" [ $? = 0 ]
pid=$(running_daemon)
check "the daemon (pid ${pid:-none}) runs as load-balancer (uid $(uid_of "${pid:-0}"))" \
	holds '[ -n "$pid" ] && [ "$(uid_of "$pid")" = "$UID_LB" ]'
out=$(timeout 10 lbctl show servers 2>&1)
check "lbctl show servers answers: filter1 and filter2" \
	sh -c "printf '%s\n' \"\$1\" | grep -q 'FILTERS  *filter1' &&
		printf '%s\n' \"\$1\" | grep -q 'FILTERS  *filter2'" sh "$out"
printf '%s\n' "$out" | sed 's/^/  | /'

# reload: a changed weight is applied; the file is then put back.
cp -p /etc/load-balancer.conf "$WORK/conf.orig"
sed -i 's/name = "filter1"; address = "127.0.0.1:10025"; weight = 100;/name = "filter1"; address = "127.0.0.1:10025"; weight = 37;/' \
	/etc/load-balancer.conf
"$INIT" reload >"$WORK/init.out" 2>&1
rc=$?
check "$INIT reload: exit 0" [ $rc = 0 ]
n=0
until timeout 10 lbctl show servers 2>/dev/null | grep -q 'filter1 .* 37 '; do
	n=$((n + 1))
	[ $n -gt 50 ] && break
	sleep 0.1
done
check "the reload applied the new weight of filter1 (37)" [ $n -le 50 ]
check "the reload kept the daemon (pid $pid)" [ "$(running_daemon)" = "$pid" ]
cp -p "$WORK/conf.orig" /etc/load-balancer.conf
"$INIT" reload >/dev/null 2>&1

"$INIT" restart >"$WORK/init.out" 2>&1
rc=$?
sed 's/^/  | /' "$WORK/init.out"
check "$INIT restart: exit 0" [ $rc = 0 ]
pid2=$(running_daemon)
check "after restart a new daemon (pid ${pid2:-none}, was $pid) is in the pidfile" \
	holds '[ -n "$pid2" ] && [ "$pid2" != "$pid" ]'
n=0
while [ -d "/proc/$pid" ] && [ $n -lt 150 ]; do n=$((n + 1)); sleep 0.1; done
check "the old daemon (pid $pid) is gone" [ ! -d "/proc/$pid" ]
check "only one daemon runs ($(daemon_pids | tr '\n' ' '))" \
	[ "$(daemon_pids | wc -l)" = 1 ]
check "lbctl answers the restarted daemon" sh -c 'timeout 10 lbctl show info >/dev/null'

# logrotate with the installed file: the daemon (as load-balancer) writes
# the next event into the new file.
LOG=/var/log/load-balancer/health.log
check "$LOG exists" [ -s "$LOG" ]
timeout 60 logrotate -f -s "$WORK/logrotate.state" /etc/logrotate.d/load-balancer \
	>"$WORK/logrotate.out" 2>&1
rc=$?
sed 's/^/  | /' "$WORK/logrotate.out"
check "logrotate -f /etc/logrotate.d/load-balancer: exit 0" [ $rc = 0 ]
check "$LOG.1 is the old log, $LOG a new one ($(stat -c '%U:%G %a' "$LOG" 2>/dev/null))" \
	holds '[ -s "$LOG.1" ] && [ "$(stat -c %U "$LOG" 2>/dev/null)" = load-balancer ]'
sleep 0.5 # SIGUSR1 is handled at once, but asynchronously
timeout 10 lbctl drain FILTERS/filter2 >/dev/null 2>&1
n=0
until grep -q 'event=drain .*server=filter2' "$LOG" 2>/dev/null; do
	n=$((n + 1))
	[ $n -gt 50 ] && break
	sleep 0.1
done
check "after the rotation the next event (drain) is in the new $LOG" [ $n -le 50 ]
check "... and not in $LOG.1" sh -c "! grep -q 'event=drain' '$LOG.1'"
timeout 10 lbctl enable FILTERS/filter2 >/dev/null 2>&1

"$INIT" stop >"$WORK/init.out" 2>&1
rc=$?
check "$INIT stop: exit 0" [ $rc = 0 ]
no_daemon_left "after stop"
"$INIT" status >/dev/null 2>&1
rc=$?
check "$INIT status: exit 3 (not running)" [ $rc = 3 ]

# The unit's ExecStart, as systemd would run it: its
# CapabilityBoundingSet and NoNewPrivileges (setpriv), in the foreground.
# It starts and serves as load-balancer (the health log is the user's
# now, after logrotate's create); without CAP_DAC_OVERRIDE it cannot open
# it: the set is enough, and that capability is needed.  (systemd's
# namespaces, ProtectSystem= and the like, cannot be tried here.)
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT" | tr '[:upper:]' '[:lower:]' |
	sed 's/cap_/+/g; s/ /,/g')
check "the unit has a CapabilityBoundingSet ($caps)" [ -n "$caps" ]
# shellcheck disable=SC2016
execstart=$(sed -n 's/^ExecStart=//p' "$UNIT" |
	sed 's|${CONFIG}|/etc/load-balancer.conf|g; s|\$DAEMON_OPTS||g')
check "the unit's ExecStart runs $DAEMON -F ($execstart)" \
	holds 'case $execstart in "$DAEMON -F "*) true ;; *) false ;; esac'
# unit_start CAPS: the ExecStart under the bounding set CAPS; sets upid.
unit_start() {
	# shellcheck disable=SC2086
	setpriv --bounding-set "-all,$1" --no-new-privs --inh-caps=-all \
		$execstart >"$WORK/unit.out" 2>&1 </dev/null &
	upid=$!
	BG_PIDS="$BG_PIDS $upid"
	n=0
	until timeout 5 lbctl show info >/dev/null 2>&1; do
		n=$((n + 1))
		if [ $n -gt 50 ] || [ ! -d "/proc/$upid" ]; then break; fi
		sleep 0.1
	done
}
# unit_stop: SIGTERM to the daemon (systemd's KillMode=mixed), then wait.
unit_stop() {
	kill -TERM "$upid" 2>/dev/null
	wait "$upid"
	urc=$?
	BG_PIDS=${BG_PIDS// $upid/}
}
if [ -n "$caps" ]; then
	unit_start "$caps"
	check "the unit's ExecStart with its capabilities only: serves, lbctl answers" \
		sh -c 'timeout 10 lbctl show info >/dev/null'
	check "... as load-balancer (uid $(uid_of "$upid"))" [ "$(uid_of "$upid")" = "$UID_LB" ]
	echo "  (CapBnd of the daemon: $(awk '/^CapBnd:/ { print $2 }' "/proc/$upid/status" 2>/dev/null))"
	unit_stop
	check "... and exits 0 on SIGTERM" [ "$urc" = 0 ]
	sed 's/^/  | /' "$WORK/unit.out" | tail -n 5
	nodac=$(printf '%s' "$caps" | sed 's/,+dac_override//; s/+dac_override,//')
	unit_start "$nodac"
	n=0
	while [ -d "/proc/$upid" ] && [ $n -lt 50 ]; do n=$((n + 1)); sleep 0.1; done
	unit_stop
	check "... without CAP_DAC_OVERRIDE it cannot start (exit $urc: $(grep -m1 -i 'denied' "$WORK/unit.out"))" \
		holds '[ "$urc" = 3 ] && grep -qi "permission denied" "$WORK/unit.out"'
	no_daemon_left "after the unit's ExecStart"
fi

# ---------------------------------------------------------------------
note "4. dpkg -r, dpkg -P"
"$INIT" start >/dev/null 2>&1
pid=$(running_daemon)
check "started again (pid ${pid:-none})" [ -n "$pid" ]
pkg_run dpkg -r "$PKG" >"$WORK/remove.log" 2>&1
rc=$?
sed 's/^/  | /' "$WORK/remove.log"
check "dpkg -r $PKG: exit 0" [ $rc = 0 ]
n=0
while [ -n "$pid" ] && [ -d "/proc/$pid" ] && [ $n -lt 50 ]; do n=$((n + 1)); sleep 0.1; done
check "dpkg -r stopped the daemon (pid ${pid:-none} gone)" \
	holds '[ -n "$pid" ] && [ ! -d "/proc/$pid" ]'
no_daemon_left "after dpkg -r"
check "dpkg -r removed $DAEMON" [ ! -e "$DAEMON" ]
for f in /etc/load-balancer.conf /etc/default/load-balancer /etc/logrotate.d/load-balancer "$INIT"; do
	check "dpkg -r kept the conffile $f" [ -e "$f" ]
done
check "dpkg -r left no socket or pidfile in /run" \
	holds '[ ! -e /run/load-balancer.sock ] && [ ! -e "$PIDFILE" ]'
pkg_run dpkg -P "$PKG" >"$WORK/purge.log" 2>&1
rc=$?
sed 's/^/  | /' "$WORK/purge.log"
check "dpkg -P $PKG: exit 0" [ $rc = 0 ]
for f in /etc/load-balancer.conf /etc/default/load-balancer /etc/logrotate.d/load-balancer \
	"$INIT" /var/log/load-balancer /var/lib/load-balancer "$UNIT" /usr/share/doc/load-balancer \
	/etc/systemd/system/multi-user.target.wants/load-balancer.service; do
	check "dpkg -P removed $f" [ ! -e "$f" ]
done
check "dpkg -P removed the boot links" sh -c '! ls /etc/rc?.d/*load-balancer >/dev/null 2>&1'
check "dpkg knows nothing of $PKG any more" \
	sh -c "! dpkg-query -W -f='\${db:Status-Status}' $PKG 2>/dev/null | grep -qv '^not-installed\$'"

# ---------------------------------------------------------------------
if [ "${LB_PKG_UPGRADE:-1}" = 0 ]; then
	note "5. upgrade: left out (LB_PKG_UPGRADE=0)"
	exit 0
fi
note "5. upgrade under load"
V2="$V1+pkgtest1"
{
	printf '%s (%s) unstable; urgency=medium\n\n' "$PKG" "$V2"
	printf '  * Upgrade test of tests/package/test_package.sh.\n\n'
	printf ' -- %s  %s\n\n' "$(cd "$BUILD/src" && dpkg-parsechangelog -S Maintainer)" "$(date -R)"
	cat "$BUILD/src/debian/changelog"
} >"$WORK/changelog" && cp "$WORK/changelog" "$BUILD/src/debian/changelog"
build v2 || { bad "dpkg-buildpackage of $V2"; exit 1; }
DEB2=$WORK/v2/${PKG}_${V2}_$ARCH.deb
check "built ${DEB2##*/}" [ -s "$DEB2" ]
[ -s "$DEB2" ] || exit 1

no_daemon_left "before the upgrade"
for port in 10025 10026; do
	/usr/sbin/smtp-sink -u nobody "127.0.0.1:$port" 256 >/dev/null 2>&1 &
	BG_PIDS="$BG_PIDS $!"
done
apt_install "$DEB1" >"$WORK/install1.log" 2>&1 || {
	bad "apt-get install ./${DEB1##*/}"
	tail -n 30 "$WORK/install1.log"
	exit 1
}
pid=$(running_daemon)
check "version $V1 installed and running (pid ${pid:-none})" [ -n "$pid" ]
n=0
until [ "$(timeout 10 lbctl show servers 2>/dev/null | grep -c 'filter[12] .* UP  ')" = 2 ]; do
	n=$((n + 1))
	[ $n -gt 150 ] && break
	sleep 0.1
done
timeout 10 lbctl show servers 2>&1 | sed 's/^/  | /'
check "both smtp-sink filters are UP" [ $n -le 150 ]

STOP=$WORK/load.stop
"$PY" "$SRC/tests/package/smtp_load.py" 127.0.0.1 2525 "$STOP" 120 8 2 2.0 \
	>"$WORK/load.json" 2>"$WORK/load.err" &
LOADPID=$!
BG_PIDS="$BG_PIDS $LOADPID"
sleep 2
t=$(date +%s%N)
apt_install "$DEB2" >"$WORK/install2.log" 2>&1
rc=$?
took=$((($(date +%s%N) - t) / 1000000))
sed 's/^/  | /' "$WORK/install2.log" | grep -v 'Reading database'
check "apt-get install ./${DEB2##*/} (the upgrade, $took ms): exit 0" [ $rc = 0 ]
sleep 3
touch "$STOP"
wait "$LOADPID"
BG_PIDS=${BG_PIDS// $LOADPID/}
cat "$WORK/load.err"
pid2=$(running_daemon)
check "the upgrade restarted the daemon (pid ${pid2:-none}, was ${pid:-none})" \
	holds '[ -n "$pid2" ] && [ "$pid2" != "$pid" ]'
check "the new daemon runs the new program (not a deleted one)" \
	[ "$(readlink "/proc/${pid2:-0}/exe" 2>/dev/null)" = "$DAEMON" ]
check "dpkg says $V2 is installed" \
	[ "$(dpkg-query -W -f='${Version}' "$PKG" 2>/dev/null)" = "$V2" ]
check "the postinst used restart (invoke-rc.d ... restart)" \
	grep -q 'invoke-rc.d --skip-systemd-native load-balancer \$_dh_action' /var/lib/dpkg/info/load-balancer.postinst
check "after the upgrade lbctl answers, /var/log/load-balancer is still load-balancer's" \
	holds 'timeout 10 lbctl show info >/dev/null &&
		[ "$(stat -c %U:%a /var/log/load-balancer)" = load-balancer:2750 ]'
check "the new daemon's start is in the health log (pid ${pid2:-none})" \
	grep -q "event=start .*pid=${pid2:-none} " /var/log/load-balancer/health.log
# The client loop's figures.
"$PY" - "$WORK/load.json" <<'EOF'
import json, sys
try:
    c = json.load(open(sys.argv[1]))
except Exception as e:
    print("  FIGURES: no result from smtp_load.py (%s)" % e)
    sys.exit(1)
print("  FIGURES: %(sessions)d sessions in %(seconds)ss (%(rate)s/s): %(ok)d acknowledged,"
      " %(refused)d refused, %(reset)d reset, %(timeout)d timed out,"
      " %(unavailable)d 4xx/5xx, %(other)d other; held in DATA: %(slow_ok)d of %(slow)d finished" % c)
if c["first_failure"] is not None:
    print("  FIGURES: failures from %.3f s to %.3f s of the run (apt-get began at about 2 s)"
          % (c["first_failure"], c["last_failure"]))
for e in c["errors"]:
    print("  | " + e)
open(sys.argv[1] + ".sh", "w").write(
    "L_SESSIONS=%d L_OK=%d L_REFUSED=%d L_RESET=%d L_BAD=%d L_SLOW=%d L_SLOW_OK=%d L_RATE=%d\n"
    % (c["sessions"], c["ok"], c["refused"], c["reset"],
       c["timeout"] + c["unavailable"] + c["other"], c["slow"], c["slow_ok"], int(c["rate"])))
EOF
L_SESSIONS=0 L_OK=0 L_REFUSED=-1 L_RESET=-1 L_BAD=-1 L_SLOW=0 L_SLOW_OK=-1 L_RATE=0
# shellcheck disable=SC1091
[ -s "$WORK/load.json.sh" ] && . "$WORK/load.json.sh"
check "the client loop ran ($L_SESSIONS sessions, $L_RATE/s, $L_OK acknowledged)" \
	[ "$L_SESSIONS" -gt 100 ]
check "no connection refused during the upgrade ($L_REFUSED)" [ "$L_REFUSED" = 0 ]
check "no connection reset during the upgrade ($L_RESET)" [ "$L_RESET" = 0 ]
check "no session failed otherwise ($L_BAD)" [ "$L_BAD" = 0 ]
check "every session held in DATA finished ($L_SLOW_OK of $L_SLOW)" \
	holds '[ "$L_SLOW" -gt 0 ] && [ "$L_SLOW_OK" = "$L_SLOW" ]'
exit 0
