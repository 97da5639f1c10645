#!/bin/sh
# Install the Debian packages that are missing, for the demo or the tests:
#   sh tests/deps.sh demo   what tests/demo.sh needs: the build tools and
#                           libraries, Postfix (for smtp-sink) and swaks
#   sh tests/deps.sh [test] all of that and what the tests need (the
#                           default: tests/check.sh and .ci/run call it so)
# Postfix is preseeded to "No configuration": it installs smtp-sink and
# smtp-source without starting a mail system or touching port 25.
set -e

# The demo: autogen.sh, configure and make (check: configure requires
# it), smtp-sink (postfix) for the three servers, swaks for the message.
DEMO="build-essential autoconf automake libtool pkg-config libevent-dev
libssl-dev libconfig-dev check postfix swaks"

# The tests, on top of the demo's.
# python3: the integration tests; iproute2, procps, iptables, util-linux,
# libcap2-bin: the transparent mode, privileges and netns tests.
# libnet-ssleay-perl: swaks --tls (only a Recommends of swaks).
# chromium: the status page's browser test; prometheus: for promtool,
# which checks /metrics.  valgrind: tests/integration/run_valgrind.py.
# keepalived: tests/integration/test_keepalived.py runs its own instances in
# network namespaces; the packaged service does not start without
# /etc/keepalived/keepalived.conf, which the package does not install.
# mandoc, groff-base: the man pages' lint (mandoc -Tlint, groff -ww).
# lintian, debhelper, fakeroot, dpkg-dev: the Debian package built and
# checked in CI (dpkg-buildpackage -us -uc -b).  logrotate: the logrotate
# test.  systemd: systemd-analyze verify on the unit (systemd need not run).
TEST="python3 iproute2 procps iptables util-linux libcap2-bin
libnet-ssleay-perl chromium prometheus valgrind keepalived mandoc groff-base
lintian debhelper fakeroot dpkg-dev logrotate systemd"

case "${1:-test}" in
demo) PKGS=$DEMO ;;
test) PKGS="$DEMO $TEST" ;;
*)
	echo "usage: sh tests/deps.sh [demo|test]  (default: test)" >&2
	exit 2
	;;
esac

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null 2>&1 || {
		echo "deps.sh: need root (or sudo) to install:$missing" >&2
		exit 1
	}
	SUDO=sudo
fi
echo "deps.sh: installing:$missing"
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
echo "postfix postfix/mailname string localhost" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
