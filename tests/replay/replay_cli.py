#!/usr/bin/env python3
"""ripen-replay's command line, end to end (TAP on stdout).

    replay_cli.py RIPEN_REPLAY GEN_TRACE [CASE]

- a schedule computed by hand (one worker, static and FIFO, three classes,
  per-class SLAs) through the csv loader, the table, the best-policy marks
  and --json, and the same trace scaled (--time-scale) and cut (--limit);
- determinism: the same input twice gives identical stdout and JSON;
- error paths: bad policy specs and option values exit 2 naming the option
  and the value; loader errors exit 1 with the loader's PATH:LINE:COL
  message; nothing ever dies of a signal;
- --plot writes the PNGs (skipped without gnuplot);
- --policy adaptive with --slo: on a trace whose classes share one base, the
  static policy serves them FIFO and misses the vip objective; the adaptive
  controller favours the vip class and meets it; objective_met, the
  controller's record and the control log say so; its bad command lines
  exit 2.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

BIN = GEN = TMP = None


def run(*args, check_rc=None):
    r = subprocess.run([BIN] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=300)
    if r.returncode < 0:
        raise AssertionError("%s died of signal %d: %s" % (args, -r.returncode, r.stderr))
    if check_rc is not None and r.returncode != check_rc:
        raise AssertionError("%s: exit %d, expected %d\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(args), r.returncode, check_rc, r.stdout, r.stderr))
    return r


def write_csv(name, rows, header="arrival_s,service_s,base,class"):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(header + "\n")
        for row in rows:
            f.write(",".join("%r" % v if isinstance(v, float) else str(v) for v in row) + "\n")
    return path


def close(a, b):
    return abs(a - b) <= 1e-9


# (arrival s, service s, base, class): the one-worker schedule of
# test_replay_sim.c's one_worker case, classes added:
#   A(0,10,1,c0) B(2,5,2,c0) C(4,5,3,c0) D(10,5,5,c1) I(12,1,2,c1)
#   E(25,1,0,c2) F(25,1,0,c2)
# static: waits A 0, B 18, C 11 | D 0, I 13 | E 1, F 2
#   (at 10 A completes as D arrives: D, the best, starts at 10; at 20 B and
#   I tie at base 2, B arrived first; at 25 E and F arrive as B completes)
# fifo:   waits A 0, B 8, C 11 | D 10, I 13 | E 1, F 2
HAND = [(0, 10, 1, 0), (2, 5, 2, 0), (4, 5, 3, 0), (10, 5, 5, 1), (12, 1, 2, 1),
        (25, 1, 0, 2), (25, 1, 0, 2)]
# SLAs: class 0 10 s, class 1 13 s (a wait of exactly 13 s is within it),
# others (class 2) 0.1 s (starved: wait > 1 s; a wait of exactly 1 s is not)
HAND_SLA = ["--sla", "0.1", "--sla", "0=10", "--sla", "1=13"]
# per policy and class: tasks, p50, p95, p99, max, attainment, starved
# (nearest rank: p50 of 3 sorted waits is the 2nd, p95 and p99 the 3rd;
# of 2 waits the 1st and the 2nd)
HAND_WANT = {
    "static": {0: (3, 11, 18, 18, 18, 1 / 3, 0), 1: (2, 0, 13, 13, 13, 1.0, 0),
               2: (2, 1, 2, 2, 2, 0.0, 1)},
    "fifo": {0: (3, 8, 11, 11, 11, 2 / 3, 0), 1: (2, 10, 13, 13, 13, 1.0, 0),
             2: (2, 1, 2, 2, 2, 0.0, 1)},
}


def check_hand_json(doc, scale=1.0):
    got = {p["policy"]: {c["class"]: c for c in p["classes"]} for p in doc["policies"]}
    assert [p["policy"] for p in doc["policies"]] == ["static", "fifo"], doc
    for pol, classes in HAND_WANT.items():
        for cls, (n, p50, p95, p99, mx, att, starved) in classes.items():
            c = got[pol][cls]
            want = {"tasks": n, "wait_p50_s": p50 * scale, "wait_p95_s": p95 * scale,
                    "wait_p99_s": p99 * scale, "wait_max_s": mx * scale,
                    "sla_attainment": att, "starved": starved}
            for k, v in want.items():
                assert close(c[k], v), "%s class %d %s: got %r, want %r" % (pol, cls, k, c[k], v)


def test_hand_schedule():
    trace = write_csv("hand.csv", HAND)
    js = os.path.join(TMP, "hand.json")
    r = run("--policy", "static", "--policy", "fifo", *HAND_SLA, "--json", js, trace,
            check_rc=0)
    with open(js) as f:
        check_hand_json(json.load(f))
    # the table: best per class is fifo for class 0 (2 of 3 within SLA),
    # static for classes 1 (2 of 2 each) and 2 (0 each): equal p99, the
    # first listed
    best = dict(re.findall(r"^  class (\d+): (\S+) ", r.stdout, re.M))
    assert best == {"0": "fifo", "1": "static", "2": "static"}, r.stdout
    rows = [l for l in r.stdout.splitlines() if l.endswith("*")]
    assert len(rows) == 3, r.stdout
    assert re.search(r"^static\s+0\s+3\s+11\.000000\s+18\.000000\s+18\.000000\s+18\.000000"
                     r"\s+10\s+0\.3333\s+0$", r.stdout, re.M), r.stdout


def test_time_scale_and_limit():
    # the same trace in milliseconds, scaled back to seconds: same result
    ms = write_csv("hand_ms.csv", [(a * 1000, s * 1000, b, c) for a, s, b, c in HAND])
    js = os.path.join(TMP, "scaled.json")
    run("--policy", "static", "--policy", "fifo", *HAND_SLA, "--time-scale", "0.001",
        "--json", js, ms, check_rc=0)
    with open(js) as f:
        check_hand_json(json.load(f))
    # scaled by 2: every wait doubles (the SLAs are in replay time: scale them)
    js2 = os.path.join(TMP, "scaled2.json")
    run("--policy", "static", "--policy", "fifo", "--sla", "0.2", "--sla", "0=20",
        "--sla", "1=26", "--time-scale", "2", "--json", js2,
        os.path.join(TMP, "hand.csv"), check_rc=0)
    with open(js2) as f:
        check_hand_json(json.load(f), scale=2.0)
    # --limit 3: only A, B, C (static: C at 10, B at 15 -> waits 0, 13, 6)
    js3 = os.path.join(TMP, "limit.json")
    run("--policy", "static", "--limit", "3", "--json", js3,
        os.path.join(TMP, "hand.csv"), check_rc=0)
    with open(js3) as f:
        doc = json.load(f)
    c = doc["policies"][0]["classes"]
    assert len(c) == 1 and c[0]["tasks"] == 3, doc
    assert close(c[0]["wait_p50_s"], 6) and close(c[0]["wait_max_s"], 13), doc
    # two files merge; ties keep file order: the second file's A' (0,1,1,c0)
    # arrives with A and B' (its first row) so A runs first under FIFO
    part2 = write_csv("part2.csv", [(0, 1, 1, 0)])
    js4 = os.path.join(TMP, "merge.json")
    run("--policy", "fifo", "--json", js4, os.path.join(TMP, "hand.csv"), part2,
        check_rc=0)
    with open(js4) as f:
        doc = json.load(f)
    c0 = doc["policies"][0]["classes"][0]
    # fifo, class 0 now A 0, A' 10, B 9, C 12 (waits sorted 0 9 10 12)
    assert c0["tasks"] == 4 and close(c0["wait_p50_s"], 9) and close(c0["wait_max_s"], 12), doc


def test_deterministic():
    trace = os.path.join(TMP, "det.csv")
    subprocess.run([sys.executable, GEN, trace, "--tasks", "30000", "--load", "1.05",
                    "--workers", "2", "--service", "0.001", "--seed", "5"], check=True)
    outs = []
    for k in range(2):
        js = os.path.join(TMP, "det%d.json" % k)
        r = run("--workers", "2", "--policy", "fifo", "--policy", "static", "--policy",
                "linear:0.05", "--policy", "additive:0.05", "--policy", "edf",
                "--policy", "weights:1,4:linear:0.1", "--sla", "0.05", "--sla", "1=0.005",
                "--json", js, trace, check_rc=0)
        with open(js, "rb") as f:
            outs.append((r.stdout, f.read()))
    assert outs[0][0] == outs[1][0], "stdout differs"
    assert outs[0][1] == outs[1][1], "JSON differs"
    doc = json.loads(outs[0][1])
    assert len(doc["policies"]) == 6
    for p in doc["policies"]:
        for c in p["classes"]:
            for k in ("class", "tasks", "wait_p50_s", "wait_p95_s", "wait_p99_s",
                      "wait_max_s", "sla_attainment", "starved"):
                assert k in c, (p["policy"], k)
            assert 0 <= c["sla_attainment"] <= 1
            assert c["wait_p50_s"] <= c["wait_p95_s"] <= c["wait_p99_s"] <= c["wait_max_s"]


BAD = [
    # (args, words the message must contain)
    (["--policy", "linear:abc"], ["--policy", "linear:abc"]),
    (["--policy", "linear:-1"], ["--policy", "linear:-1"]),
    (["--policy", "linear:"], ["--policy"]),
    (["--policy", "bogus"], ["--policy", "bogus", "unknown policy"]),
    (["--policy", "weights:1,x:static"], ["--policy", "weights:1,x:static", "'x'"]),
    (["--policy", "weights:1,2"], ["--policy", "inner"]),
    (["--policy", "weights:1:nope"], ["--policy", "weights:1:nope"]),
    (["--policy", "additive:nan"], ["--policy", "additive:nan"]),
    (["--workers", "0"], ["--workers", "'0'"]),
    (["--workers", "abc"], ["--workers", "'abc'"]),
    (["--workers", "2000000"], ["--workers", "'2000000'"]),
    (["--workers", "2000", "--mode", "live"], ["--workers", "'2000'", "live"]),
    (["--workers", "-3"], ["--workers", "'-3'"]),
    (["--time-scale", "0"], ["--time-scale", "'0'"]),
    (["--time-scale", "-2"], ["--time-scale", "'-2'"]),
    (["--time-scale", "inf"], ["--time-scale", "'inf'"]),
    (["--time-scale", "1x"], ["--time-scale", "'1x'"]),
    (["--limit", "0"], ["--limit", "'0'"]),
    (["--limit", "-1"], ["--limit", "'-1'"]),
    (["--sla", "fast"], ["--sla", "'fast'"]),
    (["--sla", "-1"], ["--sla", "'-1'"]),
    (["--sla", "x=1"], ["--sla", "'x'"]),
    (["--sla", "1=y"], ["--sla", "'y'"]),
    (["--sla", "99999999999=1"], ["--sla", "99999999999"]),
    (["--mode", "fast"], ["--mode", "'fast'"]),
    (["--format", "xml"], ["--format", "'xml'"]),
    (["--rekey-period", "0"], ["--rekey-period", "'0'"]),
    (["--bogus"], ["unknown option", "--bogus"]),
    (["-x"], ["unknown option", "-x"]),
]


def test_bad_command_lines():
    trace = write_csv("ok.csv", [(0, 1, 1, 0)])
    for args, words in BAD:
        r = run(*(args + [trace]), check_rc=2)
        for w in words:
            assert w in r.stderr, "%s: %r not in %r" % (args, w, r.stderr)
        assert r.stdout == "", (args, r.stdout)
    r = run(trace, "--workers", check_rc=2)
    assert "--workers" in r.stderr and "needs a value" in r.stderr, r.stderr
    r = run(check_rc=2)
    assert "no TRACE" in r.stderr, r.stderr
    r = run("--help", check_rc=0)
    assert "--policy" in r.stdout


def test_loader_errors():
    # a bad number on line 3, column 3 (the loader's message, exit 1)
    path = os.path.join(TMP, "bad.csv")
    with open(path, "w") as f:
        f.write("arrival_s,service_s,base,class\n0,1,1,0\n1,x,1,0\n")
    r = run(path, check_rc=1)
    assert re.match(re.escape(path) + r":3:3: ", r.stderr), r.stderr
    # an unknown column in the header
    path2 = os.path.join(TMP, "badhdr.csv")
    with open(path2, "w") as f:
        f.write("arrival_s,service_s,priority,class\n0,1,1,0\n")
    r = run(path2, check_rc=1)
    assert re.match(re.escape(path2) + r":1:\d+: ", r.stderr), r.stderr
    # a missing file, an empty trace, a file in another format
    r = run(os.path.join(TMP, "missing.csv"), check_rc=1)
    assert "missing.csv" in r.stderr, r.stderr
    empty = os.path.join(TMP, "empty.csv")
    with open(empty, "w") as f:
        f.write("arrival_s,service_s,base,class\n")
    r = run(empty, check_rc=1)
    assert "empty trace" in r.stderr, r.stderr
    r = run("--format", "ripen", os.path.join(TMP, "ok.csv"), check_rc=1)
    assert "ok.csv" in r.stderr, r.stderr
    # unwritable outputs: exit 1, never a crash
    r = run("--json", os.path.join(TMP, "no", "such", "dir.json"),
            os.path.join(TMP, "ok.csv"), check_rc=1)
    assert "--json" in r.stderr, r.stderr


def test_plot():
    if shutil.which("gnuplot") is None:
        return "SKIP no gnuplot"
    d = os.path.join(TMP, "plots")
    run("--policy", "static", "--policy", "fifo", *HAND_SLA, "--plot", d,
        os.path.join(TMP, "hand.csv"), check_rc=0)
    for name in ("wait_cdf_class0.png", "wait_cdf_class1.png", "wait_cdf_class2.png",
                 "attainment.png"):
        with open(os.path.join(d, name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", name
    return None


CASES = [test_hand_schedule, test_time_scale_and_limit, test_deterministic,
         test_bad_command_lines, test_loader_errors, test_plot]


def test_adaptive():
    import random
    rng = random.Random(3)
    rows, t = [], 0.0
    while t < 60:  # offered load 0.97, 10% vip (class 1), one base for all
        t += rng.expovariate(0.97 / 0.002)
        rows.append((round(t, 6), round(rng.expovariate(1 / 0.002), 6), 1, 1 if rng.random() < 0.1 else 2))
    trace = write_csv("eq.csv", rows)
    js, log = os.path.join(TMP, "ad.json"), os.path.join(TMP, "ad.csv")
    r = run("--policy", "static", "--policy", "adaptive", "--slo", "1=0.95:0.02", "--slo", "2=0.95:1",
            "--json", js, "--control-log", log, trace, check_rc=0)
    doc = json.load(open(js))
    met = {p["policy"]: {c["class"]: c["objective_met"] for c in p["classes"]} for p in doc["policies"]}
    assert met["static"] == {1: False, 2: True}, met
    assert met["adaptive"] == {1: True, 2: True}, met
    ctl = doc["policies"][1]["controller"]
    w = {x["class"]: x["weight"] for x in ctl["final_weights"]}
    assert w[1] == 1.0 and w[2] < 1.0, ctl
    assert ctl["steps"] == 121 and ctl["infeasible_steps"] == 0, ctl  # 0..60 s every 0.5 s
    lines = open(log).read().splitlines()
    assert lines[0].startswith("t_s,tau_s,w_class1,measured_class1_s,w_class2"), lines[0]
    assert len(lines) == 1 + ctl["steps"], len(lines)
    for line in lines[1:]:
        f = line.split(",")
        assert 1 / 64 <= float(f[2]) <= 1 and 1 / 64 <= float(f[4]) <= 1, line
    assert "class 1 p95 <= 0.02 s:  static" in r.stdout and "adaptive 0.0" in r.stdout, r.stdout
    for args, words in ((["--policy", "adaptive"], "needs at least one --slo"),
                        (["--policy", "adaptive", "--slo", "1=0.95:1", "--mode", "live"], "sim only"),
                        (["--slo", "1=1.5:1"], "bad quantile"),
                        (["--slo", "x=0.5:1"], "bad class"),
                        (["--slo", "1=0.5:0"], "bad target"),
                        (["--slo", "1=0.5"], "bad objective"),
                        (["--slo", "1=0.5:1", "--slo", "1=0.9:2"], "has an objective already"),
                        (["--control-period", "0"], "--control-period"),
                        (["--control-window", "0"], "--control-window"),
                        (["--control-tau", "5:1"], "--control-tau"),
                        (["--control-tau", "0:1"], "--control-tau")):
        e = run(*(args + [trace]), check_rc=2)
        assert words in e.stderr, (args, e.stderr)


def test_adaptive_sees_starving_class():
    """A 20 s burst of high-base work at 120% load blocks a low-base class,
    whose objective the user put first, completely: no starts, so nothing to
    measure in its windows. The controller sees it by the age of its oldest
    queued task, lifts it and meets its objective; static misses it by far. (A controller blind to
    queued tasks misses it too: mutant adaptive-blind-to-queued.)"""
    import random
    rng = random.Random(9)
    rows = []
    for cls, base, load, t0, t1 in ((1, 3, 1.2, 0, 20), (1, 3, 0.5, 20, 40), (2, 1, 0.03, 0, 40)):
        t = t0
        while True:
            t += rng.expovariate(load / 0.002)
            if t >= t1:
                break
            rows.append((round(t, 6), round(rng.expovariate(1 / 0.002), 6), base, cls))
    rows.sort()
    trace = write_csv("starve.csv", rows)
    js = os.path.join(TMP, "starve.json")
    run("--policy", "static", "--policy", "adaptive", "--slo", "2=0.95:1", "--slo", "1=0.95:10",
        "--json", js, trace, check_rc=0)
    doc = json.load(open(js))
    met = {p["policy"]: {c["class"]: c["objective_met"] for c in p["classes"]} for p in doc["policies"]}
    assert met["static"] == {1: True, 2: False}, met
    assert met["adaptive"] == {1: True, 2: True}, met


def test_adaptive_additive_form():
    """Class 1's tasks have base 0, under a stream of class-2 tasks of base 1
    at 98% load, with tau held at 0.1 s (--control-tau 0.1:0.1). Linear
    aging can never lift a base of 0 (w * 0 * (1 + wait/tau) = 0), so
    adaptive (linear) misses class 1's objective however it moves the
    weights, as static does; adaptive:additive (w * (base + wait/tau))
    meets it. Both forms run in one invocation, and scaled: specs parse. (A
    simulator that ignores the form: mutants sim-form-not-passed, adapt-policy-form-ignored.)"""
    import random
    rng = random.Random(11)
    rows, t = [], 0.0
    while t < 40:
        t += rng.expovariate(0.98 / 0.002)
        cls = 1 if rng.random() < 0.05 else 2
        rows.append((round(t, 6), round(rng.expovariate(1 / 0.002), 6), 0 if cls == 1 else 1, cls))
    trace = write_csv("zero.csv", rows)
    js = os.path.join(TMP, "zero.json")
    r = run("--policy", "adaptive", "--policy", "adaptive:additive", "--policy",
            "scaled:1,1,0.5:additive:1", "--slo", "2=0.95:2", "--slo", "1=0.95:1",
            "--control-tau", "0.1:0.1", "--json", js, trace, check_rc=0)
    doc = json.load(open(js))
    met = {p["policy"]: {c["class"]: c["objective_met"] for c in p["classes"]} for p in doc["policies"]}
    assert met["adaptive"][1] is False, met
    assert met["adaptive:additive"] == {1: True, 2: True}, met
    assert "adaptive:additive: " in r.stdout and "control steps" in r.stdout, r.stdout
    for args, words in ((["--policy", "adaptive", "--policy", "adaptive:linear"], "at most once"),
                        (["--policy", "adaptive", "--policy", "adaptive:additive",
                          "--control-log", os.path.join(TMP, "x.csv")], "one --policy adaptive"),
                        (["--policy", "adaptive:quadratic"], "bad spec"),
                        (["--policy", "scaled:1,2:fifo"], "scales a score"),
                        (["--policy", "scaled:1,x:static"], "not a finite number")):
        e = run(*(args + ["--slo", "1=0.5:1", trace]), check_rc=2)
        assert words in e.stderr, (args, e.stderr)


CASES.append(test_adaptive)
CASES.append(test_adaptive_sees_starving_class)
CASES.append(test_adaptive_additive_form)


def main():
    global BIN, GEN, TMP
    BIN, GEN = sys.argv[1], sys.argv[2]
    cases = [c for c in CASES if len(sys.argv) < 4 or c.__name__ == sys.argv[3]]
    print("1..%d" % len(cases))
    failed = 0
    with tempfile.TemporaryDirectory() as TMP:
        for i, c in enumerate(cases, 1):
            try:
                res = c()
                if isinstance(res, str) and res.startswith("SKIP"):
                    print("ok %d - %s # %s" % (i, c.__name__, res))
                else:
                    print("ok %d - %s" % (i, c.__name__))
            except Exception as e:  # report and go on
                failed += 1
                print("not ok %d - %s" % (i, c.__name__))
                for line in str(e).splitlines() or [repr(e)]:
                    print("# " + line)
            sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
