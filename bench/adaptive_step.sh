#!/usr/bin/env bash
# The adaptive controller after a step change of load, in ripen-replay's
# simulator: a three-class trace (10% vip base 3, 30% normal base 2, 60%
# batch base 1; Poisson arrivals, exponential 2 ms services, 1 worker) at
# 80% load for 60 s, 130% for 60 s, then 80% for 180 s, against the
# objectives vip p95 <= 10 ms, normal p95 <= 100 ms, batch p99 <= 5 s.
#
#   bench/adaptive_step.sh [BUILD_DIR] [OUT_DIR]
#
# Writes OUT_DIR (default /tmp/adaptive-step): trace.csv, control.csv (the
# controller's log: one line per 0.5 s step), result.txt (the replay's table
# with fixed policies beside the controller), summary.txt (time to meet
# every objective again after each step, the worst measured/target ratio,
# the last change of weights and tau) and convergence.png (weights, tau and
# measured/target per class against time).
set -euo pipefail
BUILD=${1:-build}
OUT=${2:-/tmp/adaptive-step}
REPLAY=$BUILD/tools/ripen-replay
[ -x "$REPLAY" ] || { echo "adaptive_step.sh: $REPLAY is missing" >&2; exit 2; }
mkdir -p "$OUT"
python3 - >"$OUT/trace.csv" <<'PY'
import random
r = random.Random(2026)
print("arrival_s,class,base,service_s")
t = 0.0
for load, end in ((0.8, 60.0), (1.3, 120.0), (0.8, 300.0)):
    while True:
        t += r.expovariate(load / 0.002)
        if t >= end:
            t = end
            break
        u = r.random()
        c, b = (1, 3) if u < 0.1 else ((2, 2) if u < 0.4 else (3, 1))
        print(f"{t:.6f},{c},{b},{r.expovariate(1 / 0.002):.6f}")
PY
"$REPLAY" --policy fifo --policy static --policy linear:1 --policy linear:10 --policy additive:1 \
	--policy adaptive --slo 1=0.95:0.01 --slo 2=0.95:0.1 --slo 3=0.99:5 \
	--control-log "$OUT/control.csv" --json "$OUT/result.json" "$OUT/trace.csv" >"$OUT/result.txt"
python3 - "$OUT" <<'PY'
import csv, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(f"{out}/control.csv")))
targets = {"1": 0.01, "2": 0.1, "3": 5.0}
def ratio(r, c):
    v = float(r[f"measured_class{c}_s"])
    return v / targets[c] if v == v else float("nan")
lines = []
def met_all(r):
    return all(not (ratio(r, c) > 1) for c in targets) and r["infeasible"] == "0"
up = [r for r in rows if 60.0 <= float(r["t_s"]) < 120.0]
first_miss = next((float(r["t_s"]) for r in up if not met_all(r)), None)
worst = {c: max((ratio(r, c) for r in up if ratio(r, c) == ratio(r, c)), default=float("nan")) for c in targets}
lines.append("80% -> 130% at 60 s: first miss at "
             + (f"{first_miss:.1f} s" if first_miss is not None else "none")
             + "; worst measured/target while at 130%: "
             + ", ".join(f"class {c} {worst[c]:.2f}" for c in targets))
down = [r for r in rows if float(r["t_s"]) >= 120.0]
met_at = next((float(r["t_s"]) for r in down if met_all(r)), None)
worst = {c: max((ratio(r, c) for r in down if ratio(r, c) == ratio(r, c)), default=float("nan")) for c in targets}
lines.append("130% -> 80% at 120 s: every objective met again, nothing given up, at "
             + (f"{met_at:.1f} s ({met_at - 120:.1f} s after)" if met_at is not None else "never")
             + " (the backlog, 60 s x 30% of work drained by 20% spare capacity, takes 90 s)"
             + "; worst measured/target after the step: "
             + ", ".join(f"class {c} {worst[c]:.2f}" for c in targets))
last = None
for a, b in zip(rows, rows[1:]):
    if any(a[k] != b[k] for k in ("tau_s", "w_class1", "w_class2", "w_class3")):
        last = float(b["t_s"])
lines.append(f"last change of a weight or tau at {last} s (of {rows[-1]['t_s']} s)")
events = [f"{r['t_s']} s {r['event']}" for r in rows if r["event"]]
lines.append("events: " + ("; ".join(events) if events else "none"))
open(f"{out}/summary.txt", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
if command -v gnuplot >/dev/null; then
	gnuplot <<EOF
set terminal pngcairo size 1200,800 font ',10'
set output '$OUT/convergence.png'
set datafile separator ','
set multiplot layout 2,1 title 'adaptive controller, load 80% -> 130% (60 s) -> 80% (120 s), simulator, 1 worker'
set xlabel 'time, s'; set grid; set key outside right
set arrow from 60, graph 0 to 60, graph 1 nohead dt 2
set arrow from 120, graph 0 to 120, graph 1 nohead dt 2
set logscale y
set ylabel 'weight, tau (s)'
plot '$OUT/control.csv' every ::1 using 1:3 with steps title 'w vip', '' every ::1 using 1:5 with steps title 'w normal', \
     '' every ::1 using 1:7 with steps title 'w batch', '' every ::1 using 1:2 with steps title 'tau, s'
set ylabel 'measured / target'
plot '$OUT/control.csv' every ::1 using 1:(\$4/0.01) with lines title 'vip p95 / 10 ms', \
     '' every ::1 using 1:(\$6/0.1) with lines title 'normal p95 / 100 ms', \
     '' every ::1 using 1:(\$8/5) with lines title 'batch p99 / 5 s', 1 with lines dt 3 title 'target'
unset multiplot
EOF
fi
echo "adaptive_step.sh: wrote $OUT/summary.txt, $OUT/result.txt and $OUT/convergence.png"
