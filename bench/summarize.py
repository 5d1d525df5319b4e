#!/usr/bin/env python3
"""Turn Google Benchmark JSON files into a summary table and PNG plots.

    bench/summarize.py OUTDIR file.json [file.json ...]

Writes OUTDIR/summary.md (one row per benchmark: tasks/s, rank error and
the other counters; ripen's ratio against each baseline at the same worker
count; the priority-quality table (rank error and delay, mean and p99); the
latency-under-load table per policy and load) and, when gnuplot is
installed, OUTDIR/throughput_<workload>.png
(tasks/s against workers, one line per runtime) and
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
        bench = data.get("benchmarks", [])
        # repeated runs: keep the median only
        aggregated = {b.get("run_name") for b in bench if b.get("run_type") == "aggregate"}
        for b in bench:
            if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
                continue
            if b.get("run_type") != "aggregate" and b.get("run_name") in aggregated:
                continue
            name = re.sub(r"/min_time:[0-9.]+|/real_time|/iterations:\d+|/repeats:\d+|_median$",
                          "", b["name"])
            rows.append((name, b))
    return rows


def parse(name):
    # BM_<Runtime>_<Workload>/<workers or args>, or BM_<Runtime>/<Workload>/<workers>
    m = re.match(r"BM_([A-Za-z]+)[_/]([A-Za-z]+)/?([0-9/]*)$", name)
    if not m:
        return None, None, None
    return m.group(1), m.group(2), m.group(3)


def quality_table(rows):
    lines = ["", "Priority quality (bench_quality; bench_submit's prio has the backlog run):", "",
             "| runtime | workload | workers | rank error mean | p99 | delay mean | p99 |",
             "|---|---|---|---|---|---|---|"]
    n = 0
    for name, b in rows:
        rt, wl, arg = parse(name)
        if rt is None or "rank_mean" not in b:
            continue
        lines.append(f"| {rt} | {wl} | {arg} | {b['rank_mean']:.2f} | {b['rank_p99']:.0f} | "
                     f"{b['delay_mean']:.2f} | {b['delay_p99']:.0f} |")
        n += 1
    return lines if n else []


def sssp_table(rows):
    seq = [b for name, b in rows if name.startswith("BM_Dijkstra_Sequential")]
    if not seq:
        return []
    t0 = seq[0]["real_time"]
    lines = ["", f"SSSP ({seq[0].get('label', '')}): sequential Dijkstra {t0:.1f} ms", "",
             "| workers | ripen (ms) | speed-up over sequential | work ratio | stale pops |",
             "|---|---|---|---|---|"]
    for name, b in rows:
        rt, wl, arg = parse(name)
        if rt == "Ripen" and wl == "SSSP":
            lines.append(f"| {arg} | {b['real_time']:.1f} | {t0 / b['real_time']:.2f}x | "
                         f"{b.get('work_ratio', 0):.5f} | {b.get('stale_pops', 0):.0f} |")
    return lines


def latency_table(rows):
    lines = ["", "Latency under load (bench_latency; waits in us, mean service 50 us):", "",
             "| policy | load | VIP p50 | VIP p99 | VIP p99 / service (floor) | VIP max | normal p50 | "
             "normal p99 | normal max | overtaken (ms) | aging bound (ms) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    n = 0
    for name, b in rows:
        if not name.startswith("BM_LatencyUnderLoad"):
            continue
        load_pct = name.rstrip("/").split("/")[-1]
        bound = b.get("aging_bound_ms", 0)
        cells = [b.get("label", ""), f"{load_pct}%"]
        cells += [f"{b.get(k, 0):.0f}" for k in ("vip_p50_us", "vip_p99_us")]
        cells += [f"{b.get('vip_p99_svc', 0):.1f} ({b.get('vip_floor_svc', 0):.1f})"]
        cells += [f"{b.get(k, 0):.0f}" for k in ("vip_max_us", "norm_p50_us", "norm_p99_us",
                                                 "norm_max_us")]
        cells += [f"{b.get('norm_overtaken_ms', 0):.1f}", f"{bound:.1f}" if bound else "-"]
        lines.append("| " + " | ".join(cells) + " |")
        n += 1
    return lines if n else []


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
    lines += quality_table(rows) + sssp_table(rows) + latency_table(rows)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))

    if shutil.which("gnuplot") is None:
        return
    # one plot per workload: tasks/s against workers, a line per runtime
    by_wl = {}
    for (rt, wl, w), ips in rate.items():
        by_wl.setdefault(wl, {}).setdefault(rt, []).append((w, ips / 1e6))
    for wl, series in sorted(by_wl.items()):
        files = []
        for rt, pts in sorted(series.items()):
            fn = os.path.join(out, f"tp_{wl}_{rt}.dat")
            with open(fn, "w") as f:
                for w, v in sorted(pts):
                    f.write(f"{w} {v}\n")
            files.append((fn, rt))
        plot = ", ".join(f"'{fn}' using 1:2 with linespoints title '{lab}'" for fn, lab in files)
        script = (f"set terminal png size 800,500 noenhanced; set output '{out}/throughput_{wl}.png';"
                  f"set title '{wl}: tasks/s against workers (same run)';"
                  "set logscale x 2; set xlabel 'workers'; set ylabel 'M tasks/s'; set yrange [0:*];"
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
        script = (f"set terminal png size 1000,600 noenhanced; set output '{out}/latency.png';"
                  "set style data histograms; set style fill solid; set logscale y;"
                  "set ylabel 'p99 wait (ms)'; set xtics rotate by -45;"
                  f"plot '{fn}' using 2:xtic(1) title 'VIP p99', '' using 3 title 'normal p99'")
        subprocess.run(["gnuplot", "-e", script], check=False)


if __name__ == "__main__":
    main()
