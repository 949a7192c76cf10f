#!/usr/bin/env bash
# The whole test suite (README's second command; .ci/run calls it):
#   1. Release build with -Werror: cmocka unit tests, fuzz corpus replays,
#      black-box tests against the real binary (ctest);
#   2. the same suite under ASan+UBSan (build-asan/);
#   3. every libFuzzer target for FUZZ_SECONDS (default 30) (build-fuzz/);
#   4. a clang build of everything with -Werror (gcc builds the rest),
#      clang-format and module-layer checks.
# DNSPROXY_SLOW=1 adds the slow tier: one hour per fuzz target and the
# black-box suite under valgrind.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash .ci/deps.sh || exit 1

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
if [ "${DNSPROXY_SLOW:-0}" = 1 ]; then
	FUZZ_SECONDS=${FUZZ_SLOW_SECONDS:-3600}
fi
JOBS=$(nproc)
passed=0
failed=0
failures=""

step() { # step NAME COMMAND...: runs one step, counts it
	local name=$1
	shift
	echo "=== $name"
	if "$@"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures="$failures $name"
		echo "=== FAILED: $name"
	fi
}

build() { # build DIR CMAKE-ARGS...
	local dir=$1
	shift
	cmake -S "$ROOT" -B "$ROOT/$dir" -DDNSPROXY_WERROR=ON "$@" >/dev/null &&
		cmake --build "$ROOT/$dir" -j"$JOBS"
}

build_clang() { # the gcc trees above, once more with clang: warning-free on both
	CC=clang build build-clang -DCMAKE_BUILD_TYPE=Release
}

build_fuzz() { # libFuzzer needs clang
	CC=clang build build-fuzz -DDNSPROXY_FUZZ=ON
}

suite() { # suite DIR: ctest over one build tree
	ctest --test-dir "$ROOT/$1" --output-on-failure --timeout 600 -j"$JOBS"
}

fuzz_one() { # fuzz_one BIN: FUZZ_SECONDS of one target; prints a summary
	local bin=$1 corpus work rc=0
	corpus="$ROOT/test/fuzz/corpus/$(basename "$bin")"
	work=$(mktemp -d)
	# New inputs go to a scratch copy; the tree's corpus stays as is.
	if ! "$bin" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
		-artifact_prefix="$work/" "$work" "$corpus" \
		>"$work/log" 2>&1; then
		echo "--- $(basename "$bin"): FAILED"
		tail -50 "$work/log"
		rc=1
	else
		echo "--- $(basename "$bin"): ${FUZZ_SECONDS}s," \
			"$(grep -E "stat::number_of_executed_units" "$work/log" |
				tail -1 | awk '{print $2}') runs"
	fi
	rm -rf "$work"
	return $rc
}

# One fuzzer per core: each is single-threaded, and the suite's time
# budget would not hold the targets one after the other.
fuzz_all() {
	local bin rc=0 pids=() logs=() i=0 log
	for bin in "$ROOT"/build-fuzz/test/fuzz/fuzz_*; do
		[ -x "$bin" ] || continue
		log=$(mktemp)
		fuzz_one "$bin" >"$log" 2>&1 &
		pids+=($!)
		logs+=("$log")
		if [ ${#pids[@]} -ge "$JOBS" ]; then
			wait "${pids[0]}" || rc=1
			cat "${logs[0]}"
			rm -f "${logs[0]}"
			pids=("${pids[@]:1}")
			logs=("${logs[@]:1}")
		fi
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || rc=1
		cat "${logs[$i]}"
		rm -f "${logs[$i]}"
	done
	return $rc
}

format_check() {
	git -C "$ROOT" ls-files '*.[ch]' | (cd "$ROOT" && xargs clang-format --dry-run --Werror)
}

layer_check() {
	if [ -x "$ROOT/../shared/tools/check-layers" ]; then
		"$ROOT/../shared/tools/check-layers"
	else
		echo "check-layers not found beside the tree; skipped"
	fi
}

valgrind_suite() {
	DNSPROXY_VALGRIND=1 ctest --test-dir "$ROOT/build" -R blackbox \
		--output-on-failure --timeout 1800
}

step "build (Release, -Werror)" build build -DCMAKE_BUILD_TYPE=Release
step "tests (Release)" suite build
step "build (ASan+UBSan)" build build-asan -DCMAKE_BUILD_TYPE=Debug -DDNSPROXY_SANITIZE=ON
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	step "tests (ASan+UBSan)" suite build-asan
step "build (clang, -Werror)" build_clang
step "build (libFuzzer)" build_fuzz
step "fuzz (${FUZZ_SECONDS}s per target)" fuzz_all
step "format (clang-format)" format_check
step "module layers" layer_check
if [ "${DNSPROXY_SLOW:-0}" = 1 ]; then
	step "black-box under valgrind" valgrind_suite
fi

echo
[ -n "$failures" ] && echo "failed steps:$failures"
echo "steps: $passed passed, $failed failed"
[ "$failed" = 0 ]
