#!/usr/bin/env python3
"""A trace recorded from a live pool replays in the simulator with the same
task count and classes (issue 12).

ripen-demo runs its three-class overload with a trace (its fourth
argument); the demo's own table gives the tasks per class; ripen-replay
--format ripen --json reads the file back: the totals per class must be
equal, in sim and, as a smoke run, in live mode. TAP output.

    trace_replay.py RIPEN_DEMO RIPEN_REPLAY
"""
import json
import os
import re
import subprocess
import sys
import tempfile

CLASS_OF = {"VIP": 0, "normal": 1, "batch": 2}


def main(demo, replay):
    n_tasks = 300
    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "demo.trace")
        out = subprocess.run([demo, "2", str(n_tasks), "static", trace],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=120, check=False).stdout.decode()
        print("1..3")
        if not os.path.exists(trace):
            print("not ok 1 - the demo wrote a trace\n# " + out.replace("\n", "\n# "))
            return 1
        want = {}
        for line in out.splitlines():
            m = re.match(r"\s+(VIP|normal|batch)\s+(\d+)\s", line)
            if m:
                want[CLASS_OF[m.group(1)]] = int(m.group(2))
        ok = sum(want.values()) == n_tasks and len(want) == 3
        print("%s 1 - the demo ran %d tasks in 3 classes: %s" % ("ok" if ok else "not ok",
                                                               n_tasks, want))
        failed = not ok
        for k, mode in enumerate(("sim", "live"), start=2):
            js = os.path.join(tmp, mode + ".json")
            p = subprocess.run([replay, "--format", "ripen", "--mode", mode, "--workers", "2",
                                "--policy", "static", "--json", js, trace],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
                               check=False)
            got = {}
            if p.returncode == 0:
                with open(js) as f:
                    for c in json.load(f)["policies"][0]["classes"]:
                        got[int(c["class"])] = int(c["tasks"])
            ok = p.returncode == 0 and got == want
            print("%s %d - %s replay of the recorded trace: %s" % ("ok" if ok else "not ok", k,
                                                                  mode, got))
            if not ok:
                print("# " + p.stdout.decode().replace("\n", "\n# "))
                failed = True
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
