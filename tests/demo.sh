#!/bin/bash
# The demo: install what is missing (sh tests/deps.sh demo), build the
# balancer and lbctl, start three local SMTP servers (Postfix's smtp-sink on
# 127.0.0.1:10025-10027) and the balancer on 127.0.0.1:2525 with
# etc/demo.conf, send one message through it, and print the commands to try.
#   bash tests/demo.sh        start (everything keeps running)
#   bash tests/demo.sh stop   stop what the demo started
set -e
HERE=$(pwd -P)
cd "$(dirname "$0")/.."
ROOT=$(pwd -P)
RUN=.demo
CONF=etc/demo.conf
stop() {
	for f in "$RUN"/*.pid; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		kill "$pid" 2>/dev/null && echo "stopped $(basename "$f" .pid) (pid $pid)"
		rm -f "$f"
	done
}
if [ "${1:-}" = stop ]; then
	stop
	exit 0
fi
if [ -n "${1:-}" ]; then
	echo "usage: bash tests/demo.sh [stop]" >&2
	exit 2
fi
# The paths the hints print: relative to the directory the demo was started
# from when that is the clone's top, else absolute.
P=""
[ "$HERE" = "$ROOT" ] || P="$ROOT/"
# The control socket and the health log etc/demo.conf names.
conf_value() {
	sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"\([^\"]*\)\".*/\1/p" "$CONF" | head -n 1
}
SOCK=$(conf_value control_socket)
HLOG=$(conf_value health_log)
if [ -z "$SOCK" ] || [ -z "$HLOG" ]; then
	echo "demo: $CONF names no control_socket or health_log" >&2
	exit 1
fi

sh tests/deps.sh demo
LB=_build/load-balancer
LBCTL=_build/lbctl
if [ ! -f _build/Makefile ]; then
	[ -f config.status ] && make distclean >/dev/null 2>&1
	./autogen.sh >/dev/null 2>&1
	mkdir -p _build
	(cd _build && ../configure >/dev/null)
fi
make -C _build -j"$(nproc)" load-balancer lbctl >/dev/null
mkdir -p "$RUN"
stop
# Another program on one of the demo's ports would answer in its place.
for port in 2525 10025 10026 10027; do
	if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
		echo "demo: 127.0.0.1:$port is already in use (ss -ltnp | grep :$port" \
			"tells by what); stop that first" >&2
		exit 1
	fi
done
SINKUSER=""
[ "$(id -u)" = 0 ] && SINKUSER="-u nobody"
for port in 10025 10026 10027; do
	# shellcheck disable=SC2086
	/usr/sbin/smtp-sink $SINKUSER -c 127.0.0.1:$port 100 >"$RUN/sink$port.log" 2>&1 &
	echo $! >"$RUN/sink$port.pid"
done
"$LB" -F -f "$CONF" >"$RUN/load-balancer.log" 2>&1 &
echo $! >"$RUN/load-balancer.pid"
i=0
until (exec 3<>/dev/tcp/127.0.0.1/2525) 2>/dev/null; do
	i=$((i + 1))
	if [ $i -gt 50 ] || ! kill -0 "$(cat "$RUN/load-balancer.pid")" 2>/dev/null; then
		echo "demo: the balancer did not start; its log:" >&2
		cat "$RUN/load-balancer.log" >&2
		stop
		exit 1
	fi
	sleep 0.1
done
echo "demo: load-balancer listening on 127.0.0.1:2525 (pid $(cat $RUN/load-balancer.pid)),"
echo "      backends smtp-sink on 127.0.0.1:10025 10026 10027 (weights 3:1:1)"
swaks --server 127.0.0.1:2525 --to a@example.test --from demo@example.test \
	--header "Subject: load-balancer demo" --body "Hello through the balancer." \
	| sed 's/^/  /'
sleep 0.2
echo "demo: session log:"
sed 's/^/  /' "$RUN/load-balancer.log"
# The hints below must work as printed: lbctl answers on the socket.
if ! "$LBCTL" -s "$SOCK" show servers >/dev/null; then
	echo "demo: $LBCTL -s $SOCK show servers failed" >&2
	stop
	exit 1
fi
echo "demo: still running.  Try:"
echo "  swaks --server 127.0.0.1:2525 --to a@example.test"
echo "  ${P}$LBCTL -s $SOCK show servers"
echo "  ${P}$LBCTL -s $SOCK drain sinks/sink1"
echo "  ${P}$LBCTL -s $SOCK enable sinks/sink1"
echo "  ${P}$LBCTL health-report -f ${P}$CONF     # reads $HLOG"
# The status page (global.stats_listen, 127.0.0.1:8404 by default), when
# the balancer could listen there (another program may hold the port).
URL=$(sed -n 's/.*status page on \(http[^ ]*\).*/\1/p' "$RUN/load-balancer.log" | head -n 1)
[ -n "$URL" ] && echo "  status page: $URL  (also ${URL}metrics, ${URL}timeline)"
echo "  session log: ${P}$RUN/load-balancer.log    stop: bash ${P}tests/demo.sh stop"
