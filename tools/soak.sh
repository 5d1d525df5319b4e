#!/usr/bin/env bash
# The long stress tier, for soak runs before a release: every stress program
# in a loop with fresh seeds, in the TSan and the ASan builds, for HOURS
# (default 2). Stops at the first failure and prints its seed.
#
#   tools/soak.sh [hours]
set -u
cd "$(dirname "$0")/.."
hours=${1:-2}
end=$(( $(date +%s) + hours * 3600 ))
[ -f build-test-tsan/build.ninja ] || CC=clang meson setup build-test-tsan -Db_sanitize=thread -Db_lundef=false
[ -f build-test-fault/build.ninja ] || CC=clang meson setup build-test-fault -Dfault_injection=true -Dtiny=true -Dfuzz=true -Dyield_points=true -Db_sanitize=address,undefined -Db_lundef=false
ninja -C build-test-tsan && ninja -C build-test-fault || exit 1
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=5 suppressions=$PWD/stress/tsan.supp"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
seed=$(date +%s)
runs=0
while [ "$(date +%s)" -lt "$end" ]; do
	seed=$((seed + 1))
	for b in build-test-tsan build-test-fault; do
		"$b/stress/stress_ledger" -w 4 -p 4 -s 60 -n 2000000 -S "$seed" >/tmp/soak.log 2>&1 &&
		"$b/stress/stress_lifecycle" -w 6 -p 4 -s 30 -S "$seed" >>/tmp/soak.log 2>&1 ||
		{ echo "FAILED in $b with seed $seed:"; tail -20 /tmp/soak.log; exit 1; }
	done
	build-test-fault/stress/stress_fault -n 60 -s 30 -S "$seed" >>/tmp/soak.log 2>&1 ||
		{ echo "FAILED stress_fault with seed $seed:"; tail -20 /tmp/soak.log; exit 1; }
	build-test-fault/fuzz/fuzz_api -max_total_time=60 -seed="$seed" >>/tmp/soak.log 2>&1 ||
		{ echo "FAILED fuzz_api with seed $seed"; exit 1; }
	runs=$((runs + 1))
	echo "soak: round $runs ok (seed $seed)"
done
echo "soak: $runs rounds, no failure"
