#!/usr/bin/env python3
"""ripen-replay: the simulator against the live pool (TAP).

A generated two-class trace (class 1: base 10, 20% of the tasks; class 0:
base 1), Poisson arrivals at 110% of one worker's capacity, exponential
service times of mean 5 ms, 4 s long (880 tasks), is replayed by
`--mode sim` and by `--mode live` on one worker, under static priority, FIFO
and linear aging (tau 20 ms: class 0 work waiting over ~0.18 s overtakes
fresh class 1 work, so the re-key period matters). Per policy and class,
the SLA attainment (SLAs 0.25 s and 20 ms) must agree within ATT_MARGIN
(absolute) and the p95 wait within P95_MARGIN (relative) or P95_FLOOR_S
(absolute, for class 1's p95 of a few service times, where which class 0
task happens to be running when a class 1 task arrives decides its wait,
and one shifted task moves the p95 by milliseconds).

Measured (20 runs under `stress-ng --cpu 2` on the 2-vCPU machine, every
policy agreeing at its first attempt): attainment within 0.031; class 0
p95 +0.1..+5.4% (live later: the time it lost); class 1 p95 -18.5..-5.1%
under static (at most 3.3 ms) and +3.7..+17.3% under linear aging (at most
7.9 ms: one or two service times, the quantum of which task a class 1 task
waits behind). So ATT_MARGIN 0.05, P95_MARGIN 20% with a 4 ms floor.

What remains different, and why the service time is 5 ms, not 1 ms: at
110% load the backlog grows by (load - 1) of the elapsed time, so class 0's
waits scale with (effective load - 1): every 1% of capacity the live worker
loses (its vCPU descheduled past the end of a task, dispatch cost,
wake-ups) moves them by ~10%, and the live run is late, never early. A task
spins on the wall clock, so an outage shorter than its remaining time costs
nothing: 5 ms tasks absorb the 1-5 ms outages of this VM, 1 ms tasks mostly
do not (measured +4.5..+13.6% on class 0's p95 under stress-ng, +22..+79%
while other sessions' fuzzers ran). Linear aging also differs by the
rebalancer's timing: the simulator re-keys at reference times on an exact
2 ms grid, the pool when its rebalancer thread wakes (later under load)
and its worker reaches its next scheduling step. One worker keeps
the order exact in both modes (no relaxed order across workers); the
producer's lateness counts as wait (waits are measured from the scheduled
arrival). The live run asks for nice -20 where the OS lets it (root):
under `stress-ng --cpu 2` a worker at nice 0 gets about half a CPU and no
margin could hold. Each policy's live run is tried up to three times and
passes when one attempt agrees (a vCPU stall of tens of ms in one attempt
is not the simulator's fault).

The makespan keeps that honest. One work-conserving worker ends at the same
time whatever the order, so the simulator's makespan must equal the one
computed here from the trace (exactly: a simulator that loses or invents
work fails), and the live makespan's excess over it is the share of the
worker's time the live run lost (0.03-0.7% measured, under stress-ng too).
An attempt that lost over LOST_MAX (1.5%) is inconclusive; a policy whose
every attempt was inconclusive is reported as SKIP (the host was too busy
to compare), one that disagreed in an attempt that kept its CPU fails.

    replay_live.py RIPEN_REPLAY GEN_TRACE [--smoke]     (TAP on stdout)
--smoke (sanitizer and yield-point builds): only checks that the live mode
runs every task. REPLAY_LIVE_VERBOSE=1 prints the tables; REPLAY_LIVE_SERVICE,
_DURATION, _LOAD, _SLA and _POLICIES change the experiment.
"""
import json
import os
import subprocess
import sys
import tempfile

ATT_MARGIN = 0.05      # SLA attainment, absolute
P95_MARGIN = 0.20      # p95 wait, relative
P95_FLOOR_S = 0.004    # ... or this much, for p95 waits of a few service times
ATTEMPTS = 3
LOST_MAX = 0.015       # an attempt whose live worker lost more time is inconclusive

SERVICE = float(os.environ.get("REPLAY_LIVE_SERVICE", "0.005"))
DURATION = float(os.environ.get("REPLAY_LIVE_DURATION", "4"))
LOAD = float(os.environ.get("REPLAY_LIVE_LOAD", "1.1"))
SLA = os.environ.get("REPLAY_LIVE_SLA", "0=0.25,1=0.02").split(",")
POLICIES = os.environ.get("REPLAY_LIVE_POLICIES", "static,fifo,linear:0.02").split(",")


def run(binary, trace, mode, policies, out_json):
    cmd = [binary, "--mode", mode, "--workers", "1", trace, "--json", out_json]
    for p in policies:
        cmd += ["--policy", p]
    for s in SLA:
        cmd += ["--sla", s]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=120)
    if r.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(cmd), r.returncode, r.stderr))
    with open(out_json) as f:
        return json.load(f), r.stdout


def reference_makespan(trace):
    """One work-conserving worker ends at the same time whatever the order:
    the simulator must find exactly this, and the live pool's excess over it
    is the share of the worker's time it lost (descheduled, dispatching)."""
    end, first = 0.0, None
    with open(trace) as f:
        cols = f.readline().strip().split(",")
        ia, isv = cols.index("arrival_s"), cols.index("service_s")
        for line in f:
            v = line.split(",")
            a = float(v[ia])
            first = a if first is None else first  # the loader starts time there
            end = max(end, a - first) + float(v[isv])
    return end


def compare(ps, pl):
    """(agree?, one line per class) for one policy's sim and live results"""
    lines, ok = [], True
    for cs, cl in zip(ps["classes"], pl["classes"]):
        da = abs(cs["sla_attainment"] - cl["sla_attainment"])
        tol = max(P95_MARGIN * cs["wait_p95_s"], P95_FLOOR_S)
        dp = abs(cs["wait_p95_s"] - cl["wait_p95_s"])
        good = da <= ATT_MARGIN and dp <= tol
        ok &= good
        lines.append("%s class %d: attainment sim %.4f live %.4f (diff %.4f), "
                     "p95 sim %.6f live %.6f (diff %+.1f%%)%s" % (
                         ps["policy"], cs["class"], cs["sla_attainment"],
                         cl["sla_attainment"], da, cs["wait_p95_s"], cl["wait_p95_s"],
                         100.0 * (cl["wait_p95_s"] - cs["wait_p95_s"]) /
                         max(cs["wait_p95_s"], 1e-9), "" if good else "  <-- outside"))
    return ok, lines


def smoke(binary, gen):
    """Sanitizer and yield-point builds: timing means nothing there, so the
    live mode only has to run every task once, for every policy."""
    print("1..1")
    with tempfile.TemporaryDirectory() as d:
        trace = os.path.join(d, "two_class.csv")
        subprocess.run([sys.executable, gen, trace, "--duration", "0.5", "--load", "0.8",
                        "--workers", "2", "--service", "0.002", "--seed", "3"], check=True)
        sim, _ = run(binary, trace, "sim", POLICIES, os.path.join(d, "sim.json"))
        live, _ = run(binary, trace, "live", POLICIES, os.path.join(d, "live.json"))
        for ps, pl in zip(sim["policies"], live["policies"]):
            for cs, cl in zip(ps["classes"], pl["classes"]):
                if cs["tasks"] != cl["tasks"] or cl["wait_p50_s"] < 0:
                    print("not ok 1 - live run of %s: %r vs %r" % (ps["policy"], cl, cs))
                    return 1
    print("ok 1 - live mode runs every task (smoke: timing not compared in this build)")
    return 0


def main():
    binary, gen = sys.argv[1], sys.argv[2]
    if "--smoke" in sys.argv[3:]:
        return smoke(binary, gen)
    try:
        os.nice(-20)
    except OSError:
        pass  # not allowed: run at the inherited priority
    verbose = os.environ.get("REPLAY_LIVE_VERBOSE") == "1"
    print("1..%d" % len(POLICIES))
    failed = 0
    with tempfile.TemporaryDirectory() as d:
        trace = os.path.join(d, "two_class.csv")
        subprocess.run([sys.executable, gen, trace, "--duration", str(DURATION), "--load",
                        str(LOAD), "--workers", "1", "--service", str(SERVICE), "--vip",
                        "0.2", "--seed", "11"], check=True)
        sim, sim_out = run(binary, trace, "sim", POLICIES, os.path.join(d, "sim.json"))
        ref = reference_makespan(trace)
        if verbose:
            sys.stderr.write(sim_out)
        for i, pol in enumerate(POLICIES):
            mk = sim["policies"][i]["makespan_s"]
            if abs(mk - ref) > 1e-6:
                failed += 1
                print("not ok %d - %s: simulated makespan %.9f s, a work-conserving "
                      "worker ends at %.9f s" % (i + 1, pol, mk, ref))
                continue
            verdict = "noisy"
            for attempt in range(1, ATTEMPTS + 1):
                live, live_out = run(binary, trace, "live", [pol],
                                     os.path.join(d, "live.json"))
                lost = (live["policies"][0]["makespan_s"] - ref) / ref
                ok, lines = compare(sim["policies"][i], live["policies"][0])
                for l in lines:
                    print("# attempt %d: %s" % (attempt, l))
                print("# attempt %d: %s live makespan %.6f s, %+.2f%% over the "
                      "work-conserving %.6f s" % (attempt, pol, ref * (1 + lost),
                                                   100 * lost, ref))
                if verbose:
                    sys.stderr.write(live_out)
                if ok:
                    verdict = "ok"
                    break
                if lost <= LOST_MAX:
                    verdict = "bad"  # the worker had its CPU and still disagrees
            if verdict == "ok":
                print("ok %d - %s: sim and live agree (attempt %d of %d)" % (
                    i + 1, pol, attempt, ATTEMPTS))
            elif verdict == "noisy":
                print("ok %d - %s # SKIP the live worker lost over %.1f%% of its time in "
                      "every attempt (host too busy to compare)" % (
                          i + 1, pol, 100 * LOST_MAX))
            else:
                failed += 1
                print("not ok %d - %s: sim and live disagree in %d attempts" % (
                    i + 1, pol, ATTEMPTS))
            sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
