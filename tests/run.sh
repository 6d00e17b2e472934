#!/usr/bin/env bash
# tests/run.sh: install what the tests need, then run every check.
#
#   1. packages: docker/deps.sh build run test ha; where clients/js or
#      tests/browser has a package.json, also Node.js (and Chromium for the
#      browser tests) and `npm ci` there, for the ctest labels js, browser;
#      with clients/python, also python and drf (labels python, django)
#   2. format:   clang-format --dry-run --Werror on every .c/.h in src/, tests/
#   3. build/:   -DMQLOCK_WERROR=ON, a check that every label has tests,
#      then ctest with every label: the browser-labelled tests one at a
#      time (headless Chromium and Node are heavy and their timing suffers
#      under load), all others two at a time but the plain chaos test
#      (chaos.loaded runs it with busy loops beside it)
#   4. build-asan/: -DMQLOCK_SANITIZE=ON -DMQLOCK_WERROR=ON, then ctest -L
#      'unit|integration|^ha$' (AddressSanitizer + UndefinedBehaviorSanitizer)
#   memcheck: mqlockd from build/ under valgrind in three integration tests
#   fuzz:     both libFuzzer targets side by side, MQLOCK_FUZZ_SECONDS each
#
# A failing step does not stop the later ones (except the tests of a build
# that failed); a summary is printed at the end and the exit status is 1 if
# anything failed. Run as root on Debian 12 the first time (to install
# packages); works from any current directory.
#
# Environment: MQLOCK_TEST_JOBS (default 2) runs that many non-browser
# tests at once; integration tests pick their own ports, so they can.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

jobs=${MQLOCK_TEST_JOBS:-2}
summary=()
failures=0
tests_passed=0
tests_failed=0
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT

banner() {
	echo
	echo "==== $* ===="
}

# record NAME STATUS SECONDS: one line of the summary.
record() {
	local word=PASS
	if [ "$2" -ne 0 ]; then
		word=FAIL
		failures=$((failures + 1))
	fi
	summary+=("$(printf '%-4s %-44s %4d s' "$word" "$1" "$3")")
}

# step NAME COMMAND...: run one step, record its outcome; returns its status.
step() {
	local name=$1 start=$SECONDS status=0
	shift
	banner "$name"
	"$@" || status=$?
	record "$name" "$status" $((SECONDS - start))
	return "$status"
}

# Called as `step ... || ...`, where set -e does not apply: every command
# that can fail is checked by hand.
install_deps() {
	"$root/docker/deps.sh" build run test ha || return
	if [ -d clients/python ]; then
		"$root/docker/deps.sh" python drf || return
	fi
	if [ -f clients/js/package.json ]; then
		"$root/docker/deps.sh" node || return
		npm_ci clients/js || return
	fi
	if [ -f tests/browser/package.json ]; then
		"$root/docker/deps.sh" browser || return
		npm_ci tests/browser || return
	fi
}

# npm_ci DIR: the exact modules of DIR's package-lock.json.
npm_ci() {
	echo "npm ci in $1"
	(cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
}

check_format() {
	local files=()
	while IFS= read -r -d '' f; do
		files+=("$f")
	done < <(find src tests -type f \( -name '*.c' -o -name '*.h' \) \
		-not -path '*/node_modules/*' -print0 2>/dev/null | sort -z)
	for f in ./*.c ./*.h; do
		[ -f "$f" ] && files+=("$f")
	done
	if [ "${#files[@]}" -eq 0 ]; then
		echo "no C files to check"
		return 0
	fi
	echo "clang-format $(clang-format --version | sed 's/.*version //')," \
		"${#files[@]} files"
	if ! clang-format --dry-run --Werror "${files[@]}"; then
		echo "fix: clang-format -i FILE... (style in .clang-format)"
		return 1
	fi
}

# run_ctest LOG JOBS ARGS...: ctest with output on failure; adds its counts
# to the totals from its closing "N% tests passed, F tests failed out of T".
run_ctest() {
	local log=$1 j=$2 status=0 line failed total
	shift 2
	ctest --output-on-failure --no-tests=error --timeout 300 -j "$j" \
		"$@" 2>&1 | tee "$log" || status=$?
	line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' \
		"$log" | tail -n 1 || true)
	if [ -n "$line" ]; then
		failed=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/')
		total=$(echo "$line" | sed -E 's/.*out of ([0-9]+).*/\1/')
		tests_failed=$((tests_failed + failed))
		tests_passed=$((tests_passed + total - failed))
	fi
	return "$status"
}

# chaos_figures: what the chaos tests of the last build/ ctest run measured
# (a passing test's output is only in ctest's own log).
chaos_figures() {
	grep -hE '^(recovery after|worst time|serving again|terms seen|grants( checked)?:|commands run|mqlock exits|check: |chaos(_ha)?: passed)' \
		build/Testing/Temporary/LastTest.log
}

# check_labels DIR: a label whose tests were left unregistered (a missing
# package: tests/*/CMakeLists.txt skip them with a message) fails here
# rather than passing by running nothing.
check_labels() {
	local dir=$1 label n status=0
	for label in unit build integration security chaos fuzz bench ha \
		python django js browser; do
		n=$(ctest --test-dir "$dir" -N -L "^$label\$" |
			sed -nE 's/^Total Tests: ([0-9]+)/\1/p')
		echo "label $label: ${n:-0} tests"
		[ "${n:-0}" -gt 0 ] || status=1
	done
	return "$status"
}

configure_build() {
	local dir=$1
	shift
	cmake -S . -B "$dir" "$@" && cmake --build "$dir" -j2
}

start_all=$SECONDS

if ! step "install packages" install_deps; then
	# Nothing below can work without the compiler and libraries.
	echo "tests/run.sh: could not install packages" >&2
	exit 1
fi

step "clang-format check" check_format || true

# Release, like docker/run-local.sh, which shares build/: the tests run the
# binaries people run, and neither script makes the other rebuild everything.
if step "build/ configure + build (Release, -Werror)" \
	configure_build build -DCMAKE_BUILD_TYPE=Release -DMQLOCK_WERROR=ON; then
	step "build/ every test label has tests" check_labels build || true
	# The plain chaos run is left to people: chaos.loaded is the same
	# test with busy loops beside it, and CI's time is better spent there.
	step "build/ ctest -LE browser, all but plain chaos (-j$jobs)" \
		run_ctest "$logdir/ctest.log" "$jobs" --test-dir build \
		-LE browser -E '^chaos$' || true
	step "build/ figures of the chaos tests" chaos_figures || true
	# --no-tests=ignore: no browser tests are registered where Node.js
	# is missing (tests/browser/CMakeLists.txt says so).
	step "build/ ctest -L browser (one at a time)" \
		run_ctest "$logdir/ctest-browser.log" 1 --test-dir build \
		-L browser --no-tests=ignore || true
fi

# A sanitizer report goes to stderr and fails the test (the build uses
# -fno-sanitize-recover=all); a stack trace makes UBSan's reports usable.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
# Known leaks of a library, not ours: tests/lsan.supp says which and why.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp}
if step "build-asan/ configure + build (ASan+UBSan)" \
	configure_build build-asan -DMQLOCK_SANITIZE=ON -DMQLOCK_WERROR=ON; then
	# The HA chaos test and the browser failover run in build/ only: the
	# first repeats under faults what ha.failover covers, the second is
	# Chromium's time more than mqlockd's.
	step "build-asan/ ctest -L 'unit|integration|^ha$' -LE 'chaos|browser'" \
		run_ctest "$logdir/ctest-asan.log" "$jobs" \
		--test-dir build-asan -L 'unit|integration|^ha$' \
		-LE 'chaos|browser' || true
fi

# ---- memcheck ----
# mqlockd from build/ under valgrind in a few integration tests (rr,
# input, wills: a few minutes; valgrind is slow). The harness runs it
# behind MQLOCK_IT_WRAPPER, stops it with SIGTERM at the end of each test
# and fails the test unless valgrind exits 0: no invalid read or write, no
# use of uninitialised memory, no definitely lost block.
run_memcheck() {
	"$root/docker/deps.sh" security || return
	[ -x build/mqlockd ] || { echo "build/ has no mqlockd"; return 1; }
	MQLOCK_IT_WRAPPER="$(command -v valgrind) -q --error-exitcode=99 \
--leak-check=full --errors-for-leak-kinds=definite \
--show-leak-kinds=definite --num-callers=30" \
		run_ctest "$logdir/ctest-memcheck.log" "$jobs" --test-dir build \
		-R '^integration\.(rr|input|wills)$'
}
step "build/ valgrind memcheck of mqlockd (3 integration tests)" \
	run_memcheck || true

# ---- fuzzing (tests/fuzz/README.md) ----
# build-fuzz/: clang's libFuzzer targets, side by side. Each runs MQLOCK_FUZZ_SECONDS
# (default 55) on a scratch copy of its seed corpus, so nothing is written
# into the tree; the kept crash inputs must pass too. A crash fails the
# step; its input is left in test-artifacts/fuzz/ (add it to
# tests/fuzz/crashes/NAME/ once the bug is understood).
# fuzz_one NAME BIN SECS WORK ART LOG: the kept crash inputs of NAME, then
# SECS of fuzzing on a copy of its corpus in WORK/NAME.
fuzz_one() {
	local name=$1 bin=$2 secs=$3 work=$4 art=$5 log=$6 max=6000 status=0
	[ "$name" != locktab ] || max=1024
	mkdir "$work/$name"
	cp tests/fuzz/corpus/$name/* "$work/$name/"
	if [ -d tests/fuzz/crashes/$name ] &&
		! "$bin" tests/fuzz/crashes/$name/* >"$log" 2>&1; then
		tail -n 40 "$log"
		echo "fuzz_$name: a kept crash input still fails"
		status=1
	fi
	if "$bin" -max_total_time="$secs" -rss_limit_mb=1024 \
		-max_len="$max" -timeout=25 -print_final_stats=1 \
		-artifact_prefix="$art/$name-" "$work/$name" >"$log" 2>&1; then
		echo "fuzz_$name: $(grep -E '^#[0-9]+ +DONE' "$log" | tail -n 1)"
		grep -E '^stat::(number_of_executed_units|peak_rss)' "$log" |
			sed "s/^/fuzz_$name: /"
	else
		tail -n 60 "$log"
		echo "fuzz_$name: failed; input in $art/"
		status=1
	fi
	return "$status"
}

# Both targets at once, one a core (each is single-threaded).
run_fuzz() {
	local dir=build-fuzz secs=${MQLOCK_FUZZ_SECONDS:-55} status=0
	local art=$root/test-artifacts/fuzz work name pids=()
	"$root/docker/deps.sh" fuzz || return
	CC=clang cmake -S . -B "$dir" -DMQLOCK_FUZZ=ON -DMQLOCK_WERROR=ON &&
		cmake --build "$dir" -j2 --target fuzz_codec fuzz_locktab ||
		return
	mkdir -p "$art"
	work=$(mktemp -d)
	for name in codec locktab; do
		fuzz_one "$name" "$root/$dir/tests/fuzz/fuzz_$name" "$secs" \
			"$work" "$art" "$logdir/fuzz-$name.log" &
		pids+=($!)
	done
	for pid in "${pids[@]}"; do
		wait "$pid" || status=1
	done
	rm -rf "$work"
	return "$status"
}
step "build-fuzz/ libFuzzer, ${MQLOCK_FUZZ_SECONDS:-55} s per target" \
	run_fuzz || true

banner "summary"
printf '%s\n' "${summary[@]}"
echo "total time $((SECONDS - start_all)) s; $failures step(s) failed"
echo "tests: $tests_passed passed, $tests_failed failed"
[ "$failures" -eq 0 ]
