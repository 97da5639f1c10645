#!/bin/sh
# Run one libFuzzer target for a while (fuzz/README.md).
#   fuzz/run.sh TARGET SECONDS [libFuzzer options...]
#   fuzz/run.sh list                      the targets
# TARGET is one of: smtp_reply proxy cfg ctl haproxy_import parse report
# cidr.
# Installs clang when it is missing (apt-get), configures and builds
# FUZZ_BUILD (default: _build-fuzz beside this script's tree, with
# CC=clang --enable-fuzzing) when needed, then fuzzes with the seed corpus
# fuzz/corpus/TARGET and the regression inputs fuzz/regressions/TARGET.
# New inputs go to FUZZ_WORK/TARGET (default FUZZ_BUILD/fuzz-work), never
# into the source tree; a crash is written to FUZZ_WORK/TARGET-crash-...
# and makes this script exit non-zero.  The full libFuzzer output is in
# FUZZ_WORK/TARGET.log; the last status line and the final statistics are
# printed at the end (cov: ft: exec/s).
# FUZZ_JOBS=N (default 1) runs N processes in libFuzzer's fork mode.
set -e
src=$(cd "$(dirname "$0")/.." && pwd)
targets="smtp_reply proxy cfg ctl haproxy_import parse report cidr"

usage() {
	echo "usage: fuzz/run.sh TARGET SECONDS [libFuzzer options...]" >&2
	echo "targets: $targets" >&2
	exit 2
}
[ "$1" = list ] && { echo "$targets"; exit 0; }
[ $# -ge 2 ] || usage
target=$1
seconds=$2
shift 2
case " $targets " in
*" $target "*) ;;
*) echo "fuzz/run.sh: unknown target '$target'" >&2; usage ;;
esac
case $seconds in
'' | *[!0-9]*) echo "fuzz/run.sh: SECONDS must be a number" >&2; usage ;;
esac

build=${FUZZ_BUILD:-$src/_build-fuzz}
work=${FUZZ_WORK:-$build/fuzz-work}
jobs=${FUZZ_JOBS:-1}
bin=$build/fuzz/fuzz_$target

if ! command -v clang >/dev/null 2>&1; then
	echo "fuzz/run.sh: installing clang"
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends clang
fi
if [ ! -f "$build/Makefile" ]; then
	[ -x "$src/configure" ] || (cd "$src" && ./autogen.sh)
	mkdir -p "$build"
	echo "fuzz/run.sh: configuring $build (CC=clang --enable-fuzzing)"
	(cd "$build" && CC=clang "$src/configure" --enable-fuzzing \
		>configure.out 2>&1) || {
		tail -n 20 "$build/configure.out" >&2
		exit 1
	}
fi
# One make at a time in the build (two targets may start together).
flock "$build/.fuzz-make.lock" make -C "$build" -j"$(nproc)" "fuzz/fuzz_$target" \
	>"$build/fuzz-make-$target.out" 2>&1 || {
	tail -n 30 "$build/fuzz-make-$target.out" >&2
	exit 1
}

mkdir -p "$work/$target"
set -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="$work/$target-" "$@"
[ -f "$src/fuzz/dict/$target.dict" ] && set -- -dict="$src/fuzz/dict/$target.dict" "$@"
[ "$jobs" -gt 1 ] && set -- -fork="$jobs" -ignore_crashes=0 "$@"
dirs="$work/$target $src/fuzz/corpus/$target"
[ -d "$src/fuzz/regressions/$target" ] && dirs="$dirs $src/fuzz/regressions/$target"

# A leak inside libconfig (fuzz/lsan.supp) is not ours to fix.
LSAN_OPTIONS="suppressions=$src/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS
echo "fuzz/run.sh: $target for ${seconds}s ($jobs process(es)), log $work/$target.log"
status=0
# shellcheck disable=SC2086
"$bin" "$@" $dirs >"$work/$target.log" 2>&1 || status=$?
# The last status line (#N ... cov: ft: ... exec/s:) and the statistics.
grep -E '^#[0-9]+[[:space:]]' "$work/$target.log" | tail -n 1
grep -E '^stat::' "$work/$target.log" || true
if [ "$status" != 0 ]; then
	echo "fuzz/run.sh: $target FAILED (status $status); end of the log:" >&2
	tail -n 40 "$work/$target.log" >&2
	ls "$work/$target"-* 2>/dev/null >&2 || true
	exit 1
fi
echo "fuzz/run.sh: $target: no crash in ${seconds}s"
