#!/bin/sh
# The test command: install what is missing, build with -Werror, run the
# unit and integration tests.  Usage: bash tests/check.sh
set -e
cd "$(dirname "$0")/.."
sh tests/deps.sh
./autogen.sh >/dev/null
./configure --enable-werror >/dev/null
make -j"$(nproc)" >/dev/null
if ! make -j"$(nproc)" check; then
	for f in tests/unit/*.log tests/integration/*.log; do
		[ -f "$f" ] || continue
		grep -q '^FAIL' "${f%.log}.trs" 2>/dev/null || continue
		echo "===== $f"
		tail -n 60 "$f"
	done
	exit 1
fi
