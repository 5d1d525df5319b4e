#!/usr/bin/env python3
"""Write a synthetic two-class trace for ripen-replay's tests and benchmarks.

Open-loop Poisson arrivals at `load` times what `workers` workers can serve,
exponential service times (mean `service` seconds); a fraction `vip` of the
tasks is class 1 with base 10, the rest class 0 with base 1. Deterministic
for a given seed (Python's Mersenne Twister, exact decimal output).

    gen_trace.py OUT [--tasks N] [--load L] [--workers W] [--service S]
                     [--vip F] [--seed K] [--duration D]

--duration D sets the task count from the arrival rate (D seconds long).
"""
import argparse
import random


def generate(tasks, load, workers, service, vip, seed):
    rng = random.Random(seed)
    rate = load * workers / service  # arrivals per second
    t = 0.0
    rows = []
    for _ in range(tasks):
        t += rng.expovariate(rate)
        s = rng.expovariate(1.0 / service)
        cls = 1 if rng.random() < vip else 0
        rows.append((t, s, 10.0 if cls else 1.0, cls))
    return rows


def write_csv(path, rows):
    with open(path, "w") as f:
        f.write("arrival_s,service_s,base,class\n")
        for a, s, b, c in rows:
            f.write("%.9f,%.9f,%g,%d\n" % (a, s, b, c))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--tasks", type=int, default=10000)
    ap.add_argument("--duration", type=float, default=0)
    ap.add_argument("--load", type=float, default=0.9)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--service", type=float, default=0.001)
    ap.add_argument("--vip", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    n = a.tasks
    if a.duration > 0:
        n = int(a.duration * a.load * a.workers / a.service)
    write_csv(a.out, generate(n, a.load, a.workers, a.service, a.vip, a.seed))


if __name__ == "__main__":
    main()
