#!/usr/bin/env bash
# Build ripen and run its tests: the normal build (gcc, jemalloc) and the
# ThreadSanitizer build (clang), each running the unit suite and the short
# stress tier. Installs the Debian 12 packages it needs when run as root (or
# with sudo). The last line is the summary "N passed, N failed" over every
# test of every build.
#
#   tools/run-tests.sh                normal + TSan builds
#   (the scrape test needs prometheus and libmicrohttpd-dev: installed here)
#   RIPEN_ASAN=1 tools/run-tests.sh   adds ASan+UBSan+LSan, and a build with
#                                     tiny capacities, random yields and fault
#                                     injection (under ASan) that runs the
#                                     fault sweep and the fuzzer; then CI's
#                                     longer stress tier (about 8 minutes;
#                                     RIPEN_QUICK=1 skips it)
set -u
cd "$(dirname "$0")/.."

pkgs=(meson ninja-build pkg-config gcc g++ libc6-dev clang libclang-rt-14-dev
      liburcu-dev libjemalloc-dev libbenchmark-dev python3 prometheus libmicrohttpd-dev
      zlib1g-dev gnuplot-nox libglib2.0-dev)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	echo "installing: ${missing[*]}"
	$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

passed=0
failed=0
run_suite() { # name, builddir, meson-setup-args..., -- test-args...
	local name=$1 dir=$2
	shift 2
	local setup=() targs=()
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do setup+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	targs=("$@")
	echo "=== $name build ($dir)"
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "${setup[@]}" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; failed=$((failed + 1)); return; }
	fi
	if ! ninja -C "$dir" >"$dir.build.log" 2>&1; then
		tail -40 "$dir.build.log"
		failed=$((failed + 1))
		return
	fi
	rm -f "$dir"/meson-logs/testlog*.json
	meson test -C "$dir" --print-errorlogs "${targs[@]}"
	local counts log
	log=$(ls "$dir"/meson-logs/testlog*.json 2>/dev/null | head -n 1)
	if [ -z "$log" ]; then
		failed=$((failed + 1))
		return
	fi
	counts=$(python3 - "$log" <<'PY'
import json, sys
ok = bad = 0
for line in open(sys.argv[1]):
    r = json.loads(line).get("result")
    if r in ("OK", "EXPECTEDFAIL", "SKIP"):
        ok += 1
    else:
        bad += 1
print(ok, bad)
PY
)
	passed=$((passed + ${counts% *}))
	failed=$((failed + ${counts#* }))
}

run_suite normal build-test --buildtype=debugoptimized
CC=clang run_suite tsan build-test-tsan -Db_sanitize=thread -Db_lundef=false -- --setup tsan
if [ "${RIPEN_ASAN:-0}" = 1 ]; then
	CC=clang run_suite asan build-test-asan -Db_sanitize=address,undefined -Db_lundef=false -- --setup asan
	CC=clang run_suite fault build-test-fault -Dfault_injection=true -Dtiny=true -Dfuzz=true -Dyield_points=true \
		-Db_sanitize=address,undefined -Db_lundef=false -- --setup asan
fi
# CI's longer stress tier: a minute per program and flavour, the fault sweep
# deeper, more fuzzer inputs. Each run counts as one test.
run_one() { # name, command...
	local name=$1
	shift
	echo "=== $name"
	if "$@" >"/tmp/ripen-$name.log" 2>&1; then
		tail -n 4 "/tmp/ripen-$name.log"
		passed=$((passed + 1))
	else
		tail -n 30 "/tmp/ripen-$name.log"
		failed=$((failed + 1))
	fi
}
if [ "${RIPEN_ASAN:-0}" = 1 ] && [ "${RIPEN_QUICK:-0}" != 1 ]; then
	export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=5 suppressions=$PWD/stress/tsan.supp"
	export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
	run_one tsan-ledger build-test-tsan/stress/stress_ledger -w 4 -p 4 -s 60 -n 1500000 -S 11
	run_one tsan-lifecycle build-test-tsan/stress/stress_lifecycle -w 6 -p 4 -s 60 -S 12
	run_one asan-ledger build-test-fault/stress/stress_ledger -w 4 -p 4 -s 60 -n 1500000 -S 13
	run_one asan-lifecycle build-test-fault/stress/stress_lifecycle -w 6 -p 4 -s 60 -S 14
	run_one fault-sweep build-test-fault/stress/stress_fault -n 80 -s 60 -S 15
	run_one fuzz build-test-fault/fuzz/fuzz_api -runs=300000 -seed=16 -max_len=512
	run_one fuzz-parse build-test-fault/fuzz/fuzz_parse -runs=1000000 -seed=17 -max_len=4096
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
