#!/usr/bin/env bash
# Scaling sweep for a bare many-core machine (the 16-core device).
#
#   bench/scaling.sh build            here: builds out/scaling/ with ripen,
#                                     liburcu and jemalloc linked statically and
#                                     the C++ runtime and Google Benchmark
#                                     libraries copied beside the binaries
#   bench/scaling.sh run DIR OUT      there: runs the sweep from DIR (= the
#                                     carried out/scaling) and writes OUT/
#
# The sweep: bench_submit (workloads 1 and 3: submit+run of empty and of
# prioritised tasks, rank error) for W = 1, 2, 4, 8, 16 (what the machine
# has), ripen against the strict global pool, GLib's GThreadPool and oneTBB
# (when they were found at build time) in the same process; then bench_sssp
# (workload 4) on the graph in $RIPEN_SSSP_GRAPH if set (a generated grid
# otherwise), the spawn tree and wake-up from bench_workloads, and the
# steady-state (monotonic) priority quality from bench_quality. Results:
# OUT/*.json (Google Benchmark's format), OUT/table.txt, and OUT/summary.md
# when python3 is there.
set -eu
cmd=${1:-}
case "$cmd" in
build)
	cd "$(dirname "$0")/.."
	[ -f build-scaling/build.ninja ] ||
		CC=gcc meson setup build-scaling --buildtype=release -Ddefault_library=static \
			-Dprefer_static=true -Dtests=false
	ninja -C build-scaling bench/bench_submit bench/bench_workloads bench/bench_sssp \
		bench/bench_quality
	rm -rf out/scaling
	mkdir -p out/scaling/lib
	cp build-scaling/bench/bench_submit build-scaling/bench/bench_workloads \
		build-scaling/bench/bench_sssp build-scaling/bench/bench_quality out/scaling/
	for b in out/scaling/bench_*; do
		# everything but glibc itself, which the target machine has
		ldd "$b" | awk '/=> \// { print $3 }' |
			grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so' |
			xargs -r -I{} cp -L {} out/scaling/lib/
	done
	cp bench/scaling.sh bench/summarize.py out/scaling/
	du -sh out/scaling
	;;
run)
	dir=$2
	out=$3
	mkdir -p "$out"
	export LD_LIBRARY_PATH="$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	{
		echo "# $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
		"$dir/bench_submit" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
			--benchmark_out="$out/submit.json" --benchmark_out_format=json
		"$dir/bench_sssp" --benchmark_out="$out/sssp.json" --benchmark_out_format=json
		"$dir/bench_workloads" --benchmark_filter='SpawnTree|WakeUp' \
			--benchmark_out="$out/workloads.json" --benchmark_out_format=json
		"$dir/bench_quality" --benchmark_filter='Monotonic' \
			--benchmark_out="$out/quality.json" --benchmark_out_format=json
	} 2>&1 | tee "$out/table.txt"
	if command -v python3 >/dev/null; then
		python3 "$dir/summarize.py" "$out" "$out"/*.json >/dev/null || true
	fi
	;;
*)
	echo "usage: $0 build | run DIR OUT" >&2
	exit 2
	;;
esac
