#!/bin/sh
# Run the benchmark (bench/README.md): installs what is missing (the
# packages of tests/deps.sh, then haproxy), then runs bench/bench.py with
# the arguments given here, e.g.  bash bench/run.sh --quick
#                                 bash bench/run.sh --rounds 5 --update-readme
set -e
here=$(cd "$(dirname "$0")" && pwd)
sh "$here/../tests/deps.sh"
exec /usr/bin/python3 "$here/bench.py" "$@"
