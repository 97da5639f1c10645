#!/bin/sh
# Install the Debian packages needed to build, test and run the demo.
# Postfix is preseeded to "No configuration": it installs smtp-sink and
# smtp-source without starting a mail system or touching port 25.
set -e
# libnet-ssleay-perl: swaks --tls (only a Recommends of swaks).
# chromium: the status page's browser test; prometheus: for promtool,
# which checks /metrics.  valgrind: tests/integration/run_valgrind.py.
# keepalived: tests/integration/test_keepalived.py runs its own instances in
# network namespaces; the packaged service does not start without
# /etc/keepalived/keepalived.conf, which the package does not install.
PKGS="build-essential autoconf automake libtool pkg-config libevent-dev
libssl-dev libconfig-dev check postfix swaks python3 iproute2 procps
iptables util-linux libcap2-bin libnet-ssleay-perl chromium prometheus
valgrind keepalived"

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
