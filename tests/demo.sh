#!/bin/sh
# The demo: install what is missing, build, start three local SMTP servers
# (Postfix's smtp-sink on 127.0.0.1:10025-10027) and the balancer on
# 127.0.0.1:2525 with etc/demo.conf, then send one message through it.
#   bash tests/demo.sh        start (everything keeps running)
#   bash tests/demo.sh stop   stop what the demo started
set -e
cd "$(dirname "$0")/.."
RUN=.demo
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
sh tests/deps.sh
LB=_build/load-balancer
if [ ! -f _build/Makefile ]; then
	[ -f config.status ] && make distclean >/dev/null 2>&1
	./autogen.sh >/dev/null 2>&1
	mkdir -p _build
	(cd _build && ../configure >/dev/null)
fi
make -C _build -j"$(nproc)" load-balancer >/dev/null
mkdir -p "$RUN"
stop
SINKUSER=""
[ "$(id -u)" = 0 ] && SINKUSER="-u nobody"
for port in 10025 10026 10027; do
	# shellcheck disable=SC2086
	/usr/sbin/smtp-sink $SINKUSER -c 127.0.0.1:$port 100 >"$RUN/sink$port.log" 2>&1 &
	echo $! >"$RUN/sink$port.pid"
done
"$LB" -F -f etc/demo.conf >"$RUN/load-balancer.log" 2>&1 &
echo $! >"$RUN/load-balancer.pid"
i=0
until (exec 3<>/dev/tcp/127.0.0.1/2525) 2>/dev/null; do
	i=$((i + 1))
	if [ $i -gt 50 ]; then
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
echo "demo: still running.  Try: swaks --server 127.0.0.1:2525 --to a@example.test"
echo "      session log: $RUN/load-balancer.log    stop: bash tests/demo.sh stop"
