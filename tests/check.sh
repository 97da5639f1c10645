#!/bin/sh
# The test command: install what is missing, then build and run the unit
# and integration tests three times, out of tree: _build (-Werror),
# _build-asan (-Werror, AddressSanitizer + UBSan) and _build-tsan
# (-Werror, ThreadSanitizer); after _build, make distcheck (the tarball
# builds, passes DISTCHECK_TESTS from a read-only source tree, installs and
# uninstalls cleanly); then the Debian package is built, installed,
# upgraded and purged (tests/package/test_package.sh).
#   bash tests/check.sh              the three builds and the distcheck
#   LB_SANITIZE=0 bash tests/check.sh   no ASan build
#   LB_TSAN=0 bash tests/check.sh       no ThreadSanitizer build
#   LB_DISTCHECK=0 bash tests/check.sh  no distcheck
#   LB_VALGRIND=0 bash tests/check.sh   no valgrind run
#   LB_PACKAGE=0 bash tests/check.sh    no Debian package test
# make check sees LB_SANITIZER=asan or tsan in the sanitizer builds (a
# test may scale its time limits by it).
# After _build's make check, tests/integration/run_valgrind.py runs a few
# integration tests with the _build daemon under valgrind memcheck (zero
# errors, zero definite leaks).
set -e
cd "$(dirname "$0")/.."
sh tests/deps.sh
# An in-tree configure would stop the out-of-tree builds.
if [ -f config.status ]; then
	make distclean >/dev/null 2>&1 || true
fi
./autogen.sh >/dev/null 2>&1
jobs=$(nproc)

show_failures() {
	for trs in $(find "$1/tests" -name '*.trs' 2>/dev/null); do
		grep -q '^:test-result: FAIL\|^:test-result: ERROR' "$trs" || continue
		echo "===== ${trs%.trs}.log"
		tail -n 80 "${trs%.trs}.log"
	done
}

run_build() {
	dir=$1
	shift
	echo "== $dir: configure $*"
	mkdir -p "$dir"
	(cd "$dir" && ../configure "$@" >configure.out 2>&1) || {
		tail -n 30 "$dir/configure.out"
		return 1
	}
	make -C "$dir" -j"$jobs" >"$dir/make.out" 2>&1 || {
		tail -n 40 "$dir/make.out"
		return 1
	}
	built="$built $dir"
	start=$(date +%s)
	if ! make -C "$dir" -j"$jobs" check; then
		show_failures "$dir"
		return 1
	fi
	echo "== $dir: make check took $(($(date +%s) - start)) s"
}

# The distcheck builds the tarball, builds that from a read-only source
# tree, runs DISTCHECK_TESTS there (Makefile.am: the unit tests, the man
# pages, the layers, and two integration tests that use most of the files
# the others do: the whole suite already ran in _build, and running it
# again here took 3.5 of CI's 20 minutes), installs and uninstalls.  It
# counts as one test program in the closing line.
run_distcheck() {
	dir=$1
	echo "== $dir: make distcheck"
	start=$(date +%s)
	if ! make -C "$dir" -j"$jobs" distcheck 'TESTS=$(DISTCHECK_TESTS)' \
		>"$dir/distcheck.out" 2>&1; then
		tail -n 40 "$dir/distcheck.out"
		for sub in "$dir"/load-balancer-*/_build/sub; do
			if [ -d "$sub" ]; then show_failures "$sub"; fi
		done
		return 1
	fi
	echo "== $dir: make distcheck took $(($(date +%s) - start)) s"
}

# A few integration tests with the daemon under valgrind memcheck; counts
# as one test program in the closing line.
run_valgrind() {
	echo "== $1: integration tests under valgrind memcheck"
	start=$(date +%s)
	rc=0
	LB_BIN="$PWD/$1/load-balancer" LB_SRCDIR="$PWD" \
		python3 tests/integration/run_valgrind.py || rc=$?
	echo "== $1: valgrind run took $(($(date +%s) - start)) s"
	return $rc
}

# The Debian package (tests/package/test_package.sh): built with
# dpkg-buildpackage, lintian, installed, run through the init script,
# upgraded under load, removed and purged; the machine is restored.  One
# test program in the closing line.
run_package() {
	echo "== the Debian package"
	start=$(date +%s)
	rc=0
	bash tests/package/test_package.sh || rc=$?
	echo "== the Debian package took $(($(date +%s) - start)) s"
	return $rc
}

built=""
run_build _build --enable-werror
valgrind=skipped
if [ "${LB_VALGRIND:-1}" != 0 ]; then
	rc=0
	run_valgrind _build || rc=$?
	case $rc in
	0) valgrind=passed ;;
	77) valgrind=skipped ;;
	*) valgrind=failed ;;
	esac
fi
distcheck=skipped
if [ "${LB_DISTCHECK:-1}" != 0 ]; then
	if run_distcheck _build; then distcheck=passed; else distcheck=failed; fi
fi
package=skipped
if [ "${LB_PACKAGE:-1}" != 0 ]; then
	rc=0
	run_package || rc=$?
	case $rc in
	0) package=passed ;;
	77) package=skipped ;;
	*) package=failed ;;
	esac
fi
if [ "${LB_SANITIZE:-1}" != 0 ]; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 LB_SANITIZER=asan \
		run_build _build-asan --enable-werror --enable-sanitizers
fi
# ThreadSanitizer: the whole make check once more, the daemon with its
# worker threads.  libevent and OpenSSL are not instrumented, hence
# ignore_noninstrumented_modules=1 (README, "Threads").  A report does not
# stop the program (halt_on_error=0) but makes it exit 66 at the end, and
# lbtest.Daemon.stop fails the test on it; second_deadlock_stack and a
# longer history (4: 512K accesses per thread) give both stacks of a race.
# Not fatal here: a failure still ends in the closing line.
tsan=skipped
if [ "${LB_TSAN:-1}" != 0 ]; then
	tsan_start=$(date +%s)
	if TSAN_OPTIONS=ignore_noninstrumented_modules=1:halt_on_error=0:exitcode=66:second_deadlock_stack=1:history_size=4 \
		LB_SANITIZER=tsan run_build _build-tsan --enable-werror --enable-tsan; then
		tsan=passed
	else
		tsan=failed
	fi
	echo "== _build-tsan: ThreadSanitizer stage (configure, make, make check) took $(($(date +%s) - tsan_start)) s"
fi

# One closing line for CI: test programs passed and failed, every build.
passed=0
failed=0
for dir in $built; do
	find "$dir/tests" -name '*.trs'
done >.check-results
for trs in $(cat .check-results); do
	if grep -q '^:test-result: PASS' "$trs"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
done
rm -f .check-results
case $distcheck in
passed) passed=$((passed + 1)) ;;
failed) failed=$((failed + 1)) ;;
esac
# A TSan build that did not get as far as make check counts as one failure.
if [ "$tsan" = failed ]; then
	case " $built " in
	*" _build-tsan "*) ;;
	*) failed=$((failed + 1)) ;;
	esac
fi
case $valgrind in
passed) passed=$((passed + 1)) ;;
failed) failed=$((failed + 1)) ;;
esac
case $package in
passed) passed=$((passed + 1)) ;;
failed) failed=$((failed + 1)) ;;
esac
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
