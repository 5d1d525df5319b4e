#!/usr/bin/env bash
# Per-class latency of examples/httpd under open-loop load, per backend and
# policy, at 80%, 100% and 150% of the measured capacity; and the peak
# throughput of empty requests under wrk (closed loop).
#
#   examples/httpd/load.sh [BUILD_DIR] [OUT_DIR]
#
# BUILD_DIR (default build) holds examples/httpd/{httpd,loadgen} and
# tools/ripen-replay; OUT_DIR (default /tmp/httpd-load) receives:
#   capacity.txt   wrk's closed-loop rate for the class mix at US us a request
#   results.tsv    backend policy load class sent ok p50 p99 max unfinished
#                  (client, ms, from the scheduled send) and the server's wait
#                  p50 p99 max (ms, /metrics httpd_wait_seconds), and for the
#                  aging rows the simulator's predicted wait p99 (ms): ripen-replay
#                  on the run's own arrivals, each costing WORKERS/capacity
#   results.md     the same as a table
#   peak.tsv       backend, round, requests/s of GET /work?us=0 under wrk
#   latency.png    p99 latency against load, a panel per class
#   run-*/         each run's loadgen per-request log and /metrics
#
# Knobs (environment): WORKERS (default 1: on a 2-vCPU machine the event loop
# and the load generator need the other CPU, or every latency measures CPU
# contention), US (2000: each request's spin), DURATION (5 s a run), LOADS
# ("0.8 1.0 1.5"), CONFIGS (the backend:policy list below), PEAK_ROUNDS (2),
# SLOS (the objectives of ripen:adaptive and of objectives.md, on the
# server's wait p99: "vip=0.99:0.005 normal=0.99:0.05 batch=0.99:2"),
# CONTROL_PERIOD (0.1 s).
#
# Everything listens on 127.0.0.1 only, on ports the kernel picks; each
# server runs under --max-seconds as a backstop, and the EXIT trap stops
# every process this script started, also on failure.
set -euo pipefail

BUILD=${1:-build}
OUT=${2:-/tmp/httpd-load}
WORKERS=${WORKERS:-1}
US=${US:-2000}
DURATION=${DURATION:-5}
LOADS=${LOADS:-"0.8 1.0 1.5"}
CONFIGS=${CONFIGS:-"ripen:static ripen:linear:1 ripen:linear:10 ripen:additive:1 ripen:fifo glib:static glib:fifo fifo:fifo"}
PEAK_ROUNDS=${PEAK_ROUNDS:-2}
SLOS=${SLOS:-"vip=0.99:0.005 normal=0.99:0.05 batch=0.99:2"}
CONTROL_PERIOD=${CONTROL_PERIOD:-0.1}
HTTPD=$BUILD/examples/httpd/httpd
LOADGEN=$BUILD/examples/httpd/loadgen
REPLAY=$BUILD/tools/ripen-replay
HERE=$(cd "$(dirname "$0")" && pwd)

for b in "$HTTPD" "$LOADGEN" "$REPLAY"; do
	[ -x "$b" ] || { echo "load.sh: $b is missing: build first (ninja -C $BUILD)" >&2; exit 2; }
done
for t in wrk gnuplot curl python3; do
	command -v "$t" >/dev/null || { echo "load.sh: needs $t (apt-get install wrk gnuplot-nox curl python3)" >&2; exit 2; }
done
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

SERVER_PID=""
cleanup() {
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$SERVER_PID" 2>/dev/null || true
	fi
	SERVER_PID=""
}
trap cleanup EXIT INT TERM

PORT=""
start_server() { # dir, httpd args...
	local dir=$1
	shift
	rm -f "$dir/port"
	"$HTTPD" --port 0 --port-file "$dir/port" --workers "$WORKERS" --max-seconds 600 --grace 30 \
		"$@" >"$dir/httpd.out" 2>"$dir/httpd.err" &
	SERVER_PID=$!
	for _ in $(seq 100); do
		[ -s "$dir/port" ] && break
		kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir/httpd.err" >&2; exit 1; }
		sleep 0.05
	done
	PORT=$(cat "$dir/port")
}

stop_server() {
	kill -TERM "$SERVER_PID"
	wait "$SERVER_PID" || { echo "load.sh: httpd exited with $?" >&2; exit 1; }
	SERVER_PID=""
}

# the wrk script: the class mix by a counter (10 vip, 30 normal, 60 batch)
cat >"$OUT/mix.lua" <<'EOF'
local n = 0
local order = {}
for i = 1, 10 do order[#order + 1] = "vip" end
for i = 1, 30 do order[#order + 1] = "normal" end
for i = 1, 60 do order[#order + 1] = "batch" end
request = function()
	n = n % 100 + 1
	return wrk.format("GET", "/work?us=" .. os.getenv("LOAD_US") .. "&class=" .. order[n])
end
EOF

wrk_rate() { # url-us, connections, seconds
	LOAD_US=$1 wrk -t1 -c"$2" -d"$3"s -s "$OUT/mix.lua" "http://127.0.0.1:$PORT/" |
		awk '/^Requests\/sec:/ { print $2 }'
}

# ---------------------------------------------------------------- capacity
mkdir -p "$OUT/capacity"
start_server "$OUT/capacity" --backend fifo
CAP=$(wrk_rate "$US" 32 5)
stop_server
echo "capacity: $CAP requests/s (wrk -c32 -d5s, fifo backend, $WORKERS workers, $US us a request)" |
	tee "$OUT/capacity.txt"

# ------------------------------------------------------------- open loop
metric() { # file, name, class, quantile -> ms
	awk -v want="$2{class=\"$3\",quantile=\"$4\"}" '$1 == want { printf "%.3f", $2 * 1000 }' "$1"
}

printf "backend\tpolicy\tload\tclass\tsent\tok\tp50_ms\tp99_ms\tmax_ms\tunfinished\tsrv_wait_p50_ms\tsrv_wait_p99_ms\tsrv_wait_max_ms\tsim_wait_p99_ms\n" >"$OUT/results.tsv"
for cfgspec in $CONFIGS; do
	backend=${cfgspec%%:*}
	policy=${cfgspec#*:}
	for load in $LOADS; do
		rate=$(python3 -c "print(round($CAP * $load, 1))")
		dir="$OUT/run-$backend-${policy//:/_}-$load"
		mkdir -p "$dir"
		extra=()
		if [ "${policy%%:*}" = adaptive ]; then
			for o in $SLOS; do extra+=(--slo "$o"); done
			extra+=(--control-period "$CONTROL_PERIOD")
		fi
		start_server "$dir" --backend "$backend" --policy "$policy" "${extra[@]}"
		"$LOADGEN" --port "$PORT" --rate "$rate" --duration "$DURATION" --us "$US" \
			--max-conns 16000 --drain 60 --out "$dir/requests.tsv" >"$dir/loadgen.tsv"
		# every request answered: the server's counters are final
		curl -sf --max-time 10 "http://127.0.0.1:$PORT/metrics" >"$dir/metrics.txt"
		stop_server
		# the simulator's prediction for a time-varying policy: the same
		# arrivals (scheduled times), classes, bases and service time
		sim=""
		case $policy in
		linear:* | additive:*)
			# service: what a request costs the measured server (WORKERS /
			# capacity), the spin plus its share of the HTTP overhead
			python3 - "$dir/requests.tsv" "$WORKERS" "$CAP" >"$dir/trace.csv" <<'PY'
import sys
cls = {"vip": (1, 3.0), "normal": (2, 2.0), "batch": (3, 1.0)}
service = float(sys.argv[2]) / float(sys.argv[3])
print("arrival_s,class,base,service_s")
for line in open(sys.argv[1]):
    c, sched_us, _lat, _st = line.split("\t")
    cid, base = cls[c]
    print(f"{float(sched_us) / 1e6:.6f},{cid},{base},{service:.9f}")
PY
			"$REPLAY" --policy "$policy" --workers "$WORKERS" --json "$dir/sim.json" "$dir/trace.csv" >"$dir/sim.txt"
			;;
		esac
		for c in vip normal batch; do
			row=$(awk -v c="$c" -F'\t' '$1 == c { print $2 "\t" $4 "\t" $5 "\t" $6 "\t" $7 "\t" $8 }' "$dir/loadgen.tsv")
			sim="-"
			if [ -f "$dir/sim.json" ]; then
				id=$(case $c in vip) echo 1 ;; normal) echo 2 ;; batch) echo 3 ;; esac)
				sim=$(python3 -c "
import json, sys
j = json.load(open('$dir/sim.json'))
for k in j['policies'][0]['classes']:
    if k['class'] == $id: print('%.3f' % (k['wait_p99_s'] * 1000))")
			fi
			printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$backend" "$policy" "$load" "$c" "$row" \
				"$(metric "$dir/metrics.txt" httpd_wait_seconds "$c" 0.5)" \
				"$(metric "$dir/metrics.txt" httpd_wait_seconds "$c" 0.99)" \
				"$(metric "$dir/metrics.txt" httpd_wait_seconds "$c" 1)" "$sim" >>"$OUT/results.tsv"
		done
		rm -f "$dir/sim.json"
		tail -n 3 "$OUT/results.tsv"
	done
done

# ------------------------------------------------------------------ peak
printf "backend\tround\trequests_per_s\n" >"$OUT/peak.tsv"
for round in $(seq "$PEAK_ROUNDS"); do
	for backend in ripen fifo glib; do
		mkdir -p "$OUT/peak-$backend"
		start_server "$OUT/peak-$backend" --backend "$backend" --policy "$( [ $backend = fifo ] && echo fifo || echo static)"
		printf "%s\t%s\t%s\n" "$backend" "$round" "$(wrk_rate 0 32 5)" | tee -a "$OUT/peak.tsv"
		stop_server
	done
done

# -------------------------------------------------------- table and plot
SLOS="$SLOS" python3 - "$OUT" <<'PY'
import sys
out = sys.argv[1]
rows = [l.rstrip("\n").split("\t") for l in open(f"{out}/results.tsv")]
head, rows = rows[0], rows[1:]
with open(f"{out}/results.md", "w") as f:
    f.write("| backend | policy | load | class | p50 ms | p99 ms | max ms | server wait p99 ms | sim wait p99 ms |\n")
    f.write("|---|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        d = dict(zip(head, r))
        f.write(f"| {d['backend']} | {d['policy']} | {d['load']} | {d['class']} | {d['p50_ms']} | "
                f"{d['p99_ms']} | {d['max_ms']} | {d['srv_wait_p99_ms']} | {d['sim_wait_p99_ms']} |\n")
# the objectives (SLOS, on the server's wait p99) per policy and load
import os
slos = {}
for o in os.environ.get("SLOS", "").split():
    c, rest = o.split("=")
    q, t = rest.split(":")
    slos[c] = (float(q), float(t))
if slos:
    with open(f"{out}/objectives.md", "w") as f:
        f.write("| backend, policy | load | " + " | ".join(
            f"{c} wait p{q * 100:g} <= {t * 1000:g} ms" for c, (q, t) in slos.items()) + " | met |\n")
        f.write("|---|---|" + "---|" * len(slos) + "---|\n")
        groups = {}
        for r in rows:
            d = dict(zip(head, r))
            groups.setdefault((d["backend"], d["policy"], d["load"]), {})[d["class"]] = d
        for (b, p, l), cs in groups.items():
            cells, met = [], 0
            for c, (q, t) in slos.items():
                v = float(cs[c]["srv_wait_p99_ms"])
                ok = v <= t * 1000
                met += ok
                cells.append(f"{v:.1f} {'met' if ok else '**missed**'}")
            f.write(f"| {b}, {p} | {float(l) * 100:.0f}% | " + " | ".join(cells) + f" | {met} of {len(slos)} |\n")
# one data block per class and config for gnuplot: load, p99
with open(f"{out}/plot.dat", "w") as f:
    for c in ("vip", "normal", "batch"):
        for cfg in dict.fromkeys((r[0], r[1]) for r in rows):
            f.write(f"# {c} {cfg[0]}:{cfg[1]}\n")
            for r in rows:
                if (r[0], r[1]) == cfg and r[3] == c:
                    f.write(f"{float(r[2]) * 100:.0f} {r[7]}\n")
            f.write("\n\n")
PY
ncfg=$(echo $CONFIGS | wc -w)
{
	echo "set terminal pngcairo size 1500,500 font ',10'"
	echo "set output '$OUT/latency.png'"
	echo "set multiplot layout 1,3 title 'examples/httpd: client p99 latency, open loop, $WORKERS worker(s), $US us a request (capacity $CAP/s)'"
	echo "set logscale y; set xlabel 'load, % of capacity'; set ylabel 'p99 latency, ms'; set key top left; set grid"
	for ci in 0 1 2; do
		c=$(echo vip normal batch | cut -d' ' -f$((ci + 1)))
		echo "set title '$c'"
		printf "plot "
		i=0
		for cfgspec in $CONFIGS; do
			[ $i -gt 0 ] && printf ", "
			printf "'%s' index %d using 1:2 with linespoints title '%s'" "$OUT/plot.dat" $((ci * ncfg + i)) "$cfgspec"
			i=$((i + 1))
		done
		echo
	done
	echo "unset multiplot"
} >"$OUT/latency.gp"
gnuplot "$OUT/latency.gp"
echo "load.sh: wrote $OUT/results.md, $OUT/peak.tsv and $OUT/latency.png"
