#!/usr/bin/env python3
"""Turn Google Benchmark JSON files into a summary table and PNG plots.

    bench/summarize.py OUTDIR file.json [file.json ...]

Writes OUTDIR/summary.md (one row per benchmark: tasks/s, rank error and
the other counters, plus ripen's ratio against each baseline at the same
worker count) and, when gnuplot is installed, OUTDIR/throughput.png
(tasks/s against workers, one line per runtime and workload) and
OUTDIR/latency.png (per-class p99 wait under load, per policy).
"""
import json
import os
import re
import shutil
import subprocess
import sys


def load(paths):
    rows = []
    for p in paths:
        with open(p) as f:
            data = json.load(f)
        for b in data.get("benchmarks", []):
            if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
                continue
            name = re.sub(r"/min_time:[0-9.]+|/real_time|/iterations:\d+|_median$", "", b["name"])
            rows.append((name, b))
    return rows


def parse(name):
    # BM_<Runtime>_<Workload>/<workers or args>
    m = re.match(r"BM_([A-Za-z]+)_([A-Za-z]+)/?([0-9/]*)", name)
    if not m:
        return None, None, None
    return m.group(1), m.group(2), m.group(3)


def main():
    out, paths = sys.argv[1], sys.argv[2:]
    os.makedirs(out, exist_ok=True)
    rows = load(paths)
    rate = {}
    lines = ["| benchmark | tasks/s | counters |", "|---|---|---|"]
    for name, b in rows:
        ips = b.get("items_per_second")
        counters = {k: v for k, v in b.items()
                    if k not in ("name", "run_name", "run_type", "repetitions", "repetition_index",
                                 "threads", "iterations", "real_time", "cpu_time", "time_unit",
                                 "items_per_second", "family_index", "per_family_instance_index",
                                 "aggregate_name", "aggregate_unit", "label")
                    and isinstance(v, (int, float))}
        cs = ", ".join(f"{k}={v:.3g}" for k, v in sorted(counters.items()))
        if b.get("label"):
            cs = (b["label"] + "; " + cs) if cs else b["label"]
        lines.append(f"| {name} | {ips / 1e6:.2f} M/s | {cs} |" if ips else f"| {name} | - | {cs} |")
        rt, wl, arg = parse(name)
        if ips and rt and arg and arg.isdigit():
            rate[(rt, wl, int(arg))] = ips
    lines += ["", "| workload | workers | ripen vs each baseline (same run) |", "|---|---|---|"]
    for (rt, wl, w), ips in sorted(rate.items()):
        if rt != "Ripen":
            continue
        ratios = [f"{o}: {ips / v:.2f}x" for (o, wl2, w2), v in sorted(rate.items())
                  if wl2 == wl and w2 == w and o != "Ripen"]
        if ratios:
            lines.append(f"| {wl} | {w} | {', '.join(ratios)} |")
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))

    if shutil.which("gnuplot") is None:
        return
    series = {}
    for (rt, wl, w), ips in rate.items():
        series.setdefault(f"{rt} {wl}", []).append((w, ips / 1e6))
    if series:
        files = []
        for i, (label, pts) in enumerate(sorted(series.items())):
            fn = os.path.join(out, f"tp_{i}.dat")
            with open(fn, "w") as f:
                for w, v in sorted(pts):
                    f.write(f"{w} {v}\n")
            files.append((fn, label))
        plot = ", ".join(f"'{fn}' using 1:2 with linespoints title '{lab}'" for fn, lab in files)
        script = (f"set terminal png size 900,600; set output '{out}/throughput.png';"
                  "set logscale x 2; set xlabel 'workers'; set ylabel 'M tasks/s';"
                  "set key outside right; set grid;"
                  f"plot {plot}")
        subprocess.run(["gnuplot", "-e", script], check=False)
    lat = [(b.get("label"), name, b) for name, b in rows if name.startswith("BM_LatencyUnderLoad")]
    if lat:
        fn = os.path.join(out, "latency.dat")
        with open(fn, "w") as f:
            for label, name, b in lat:
                load_pct = name.split("/")[-1] or name.split("/")[-2]
                f.write(f"\"{label} {load_pct}%\" {b.get('vip_p99_us', 0) / 1e3} "
                        f"{b.get('norm_p99_us', 0) / 1e3}\n")
        script = (f"set terminal png size 1000,600; set output '{out}/latency.png';"
                  "set style data histograms; set style fill solid; set logscale y;"
                  "set ylabel 'p99 wait (ms)'; set xtics rotate by -45;"
                  f"plot '{fn}' using 2:xtic(1) title 'VIP p99', '' using 3 title 'normal p99'")
        subprocess.run(["gnuplot", "-e", script], check=False)


if __name__ == "__main__":
    main()
