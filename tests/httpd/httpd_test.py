#!/usr/bin/env python3
"""Integration test of examples/httpd: a real server on loopback.

    httpd_test.py HTTPD [--no-glib]

HTTPD is the examples/httpd binary ("none" when it was not built: SKIP, exit
77). promtool, when on PATH, lints /metrics. --no-glib leaves the glib
backend out (the TSan build: GLib's futex-based GMutex is invisible to
ThreadSanitizer, so its hand-offs would be reported as races).

1. Order: a paused ripen pool (--start-paused, 1 worker, --policy static)
   receives a burst of batch, then normal, then vip requests, all at once
   from concurrent clients; once the server has accepted every one
   (httpd_work_accepted_total), /admin/resume starts the pool. Every request
   must be answered 200, and the start order the server reports (seq=)
   must put every vip before every normal before every batch: with one
   worker and everything queued before the resume, the static policy's
   order is exact, by construction, not by timing.
2. Counts: /metrics must count exactly the requests sent, per class, in the
   server's own series and in ripen's (submitted, started), and pass
   `promtool check metrics`.
3. Hostile input: bad requests get 400 with the reason (unknown class,
   negative, huge or malformed costs, conflicting class, a body on a GET,
   bad dist), malformed HTTP gets libmicrohttpd's 4xx/5xx or a closed
   connection, and the server keeps serving after each one; its 400 count
   must match.
4. The glib and fifo backends answer a mixed burst too, and bad command
   lines exit 2 with a message.
Every server is started on 127.0.0.1 with --port 0, under --max-seconds, and
is stopped (SIGTERM, then SIGKILL) also when a check fails; the whole test
has a deadline.
"""
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77
DEADLINE_S = 100.0
T0 = time.monotonic()
failures = []
procs = []


def log(*a):
    print(*a, flush=True)


def fail(msg):
    failures.append(msg)
    log("FAIL: " + msg)


def check(cond, msg):
    if not cond:
        fail(msg)
    return cond


def left():
    return DEADLINE_S - (time.monotonic() - T0)


errs = {}


def start(httpd, tmp, *args):
    port_file = os.path.join(tmp, "port%d" % len(procs))
    err = open(os.path.join(tmp, "httpd%d.err" % len(procs)), "w+")
    p = subprocess.Popen([httpd, "--port", "0", "--port-file", port_file,
                          "--max-seconds", "120"] + list(args),
                         stdout=subprocess.DEVNULL, stderr=err)
    procs.append(p)
    errs[p.pid] = err
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if os.path.exists(port_file):
            with open(port_file) as f:
                return p, int(f.read())
        if p.poll() is not None:
            err.seek(0)
            raise RuntimeError("httpd exited %d: %s" % (p.returncode, err.read()))
        time.sleep(0.02)
    raise RuntimeError("httpd did not listen within 10 s")


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            fail("httpd did not stop within 15 s of SIGTERM")
            return
    if not check(p.returncode == 0, "httpd exited with %d" % p.returncode):
        errs[p.pid].seek(0)
        log("its stderr ends:\n" + errs[p.pid].read()[-3000:])


def get(port, path, headers=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def metrics(port):
    status, text = get(port, "/metrics", timeout=10)
    if status != 200:
        raise RuntimeError("/metrics answered %d" % status)
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        out[name] = float(value)
    return out, text


def burst(port, plan):
    """plan: list of (class, via_header). Send all at once; return results."""
    results = [None] * len(plan)

    def one(i, cls, via_header):
        try:
            if via_header:
                results[i] = get(port, "/work?us=200", {"X-Class": cls})
            else:
                results[i] = get(port, "/work?us=200&class=" + cls)
        except Exception as e:  # noqa: BLE001 - any failure is a failed request
            results[i] = (0, repr(e))

    threads = [threading.Thread(target=one, args=(i, c, h)) for i, (c, h) in enumerate(plan)]
    for t in threads:
        t.start()
    return threads, results


def order_and_counts(httpd, promtool, tmp):
    n = 20
    p, port = start(httpd, tmp, "--backend", "ripen", "--policy", "static", "--workers", "1",
                    "--start-paused")
    try:
        plan = [("batch", False)] * n + [("normal", True)] * n + [("vip", True)] * n
        threads, results = burst(port, plan)
        # every request accepted (queued in the paused pool) before the resume
        end = time.monotonic() + min(20, left())
        accepted = 0
        while time.monotonic() < end:
            m, _ = metrics(port)
            accepted = sum(m.get('httpd_work_accepted_total{class="%s"}' % c, 0)
                           for c in ("vip", "normal", "batch"))
            if accepted == 3 * n:
                break
            time.sleep(0.05)
        if not check(accepted == 3 * n, "only %d of %d requests accepted in 20 s" % (accepted, 3 * n)):
            return
        status, body = get(port, "/admin/resume")
        check(status == 200, "/admin/resume answered %d %s" % (status, body))
        for t in threads:
            t.join(timeout=max(1, left()))
        seqs = {"vip": [], "normal": [], "batch": []}
        for (cls, _), res in zip(plan, results):
            if res is None or res[0] != 200:
                fail("a %s request was not answered 200: %r" % (cls, res))
                continue
            mo = re.search(r"class=(\w+) us=200 seq=(\d+) ", res[1])
            if check(mo is not None and mo.group(1) == cls, "bad answer %r for %s" % (res[1], cls)):
                seqs[cls].append(int(mo.group(2)))
        if all(len(v) == n for v in seqs.values()):
            log("start order: vip %s, normal %s, batch %s" % (
                (min(seqs["vip"]), max(seqs["vip"])), (min(seqs["normal"]), max(seqs["normal"])),
                (min(seqs["batch"]), max(seqs["batch"]))))
            check(max(seqs["vip"]) < min(seqs["normal"]), "a normal request started before a vip one")
            check(max(seqs["normal"]) < min(seqs["batch"]), "a batch request started before a normal one")
            check(sorted(sum(seqs.values(), [])) == list(range(3 * n)), "start numbers are not 0..%d" % (3 * n - 1))
        m, text = metrics(port)
        for c in ("vip", "normal", "batch"):
            for name in ('httpd_work_accepted_total{class="%s"}', 'httpd_work_answered_total{class="%s"}',
                         'httpd_wait_seconds_count{class="%s"}',
                         'ripen_tasks_submitted_total{pool="httpd",class="%s"}',
                         'ripen_tasks_started_total{pool="httpd",class="%s"}'):
                key = name % c
                check(m.get(key) == n, "%s is %s, want %d" % (key, m.get(key), n))
        check(m.get("httpd_inflight") == 0, "httpd_inflight is %s" % m.get("httpd_inflight"))
        if promtool:
            r = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                               capture_output=True, timeout=30)
            check(r.returncode == 0, "promtool check metrics: %s" % (r.stdout + r.stderr).decode())
        else:
            log("note: promtool not found, /metrics not linted")
    finally:
        stop(p)


def raw(port, data, timeout=2.0):
    """Send raw bytes; the status line's code, or 0 when the server closed
    or said nothing within the timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        mo = re.match(rb"HTTP/1\.[01] (\d{3}) ", buf)
        return (int(mo.group(1)) if mo else 0), buf
    finally:
        s.close()


def hostile(httpd, tmp):
    p, port = start(httpd, tmp, "--backend", "ripen", "--workers", "1")
    ours = [  # (request line's target, headers, the reason's words): our 400s
        ("/work?us=10&class=gold", {}, "unknown class"),
        ("/work?us=10", {"X-Class": "platinum"}, "unknown class"),
        ("/work?us=10", {"X-Class": "vip\x01\x7f"}, "unknown class"),
        ("/work?us=10&class=%00vip", {}, "unknown class"),
        ("/work?us=10&class=" + "v" * 3000, {}, "unknown class"),
        ("/work?us=-1", {}, "whole number"),
        ("/work?us=10000001", {}, "whole number"),
        ("/work?us=99999999999999999999999", {}, "whole number"),
        ("/work?us=1e3", {}, "whole number"),
        ("/work?us=", {}, "whole number"),
        ("/work?us=%2B5", {}, "whole number"),
        ("/work?us= 5", {}, None),  # a raw space breaks the request line
        ("/work", {}, "missing us"),
        ("/work?class=vip", {}, "missing us"),
        ("/work?us=5&class=vip", {"X-Class": "batch"}, "disagree"),
        ("/work?us=5&dist=cauchy", {}, "unknown dist"),
    ]
    try:
        bad = 0
        for target, headers, words in ours:
            head = "".join("%s: %s\r\n" % kv for kv in headers.items())
            status, buf = raw(port, ("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (target, head)).encode("latin-1"))
            if words is None:
                check(400 <= status < 600 or status == 0, "%r: answered %d" % (target, status))
                bad += status == 400 and b"bad request: " in buf  # ours, not libmicrohttpd's
            elif check(status == 400, "%r %r: answered %d, want 400" % (target, headers, status)):
                bad += 1
                check(words.encode() in buf, "%r: the 400 does not say %r: %r" % (target, words, buf[-200:]))
            st, _ = get(port, "/work?us=1&class=vip", timeout=10)
            check(st == 200, "after %r the server answered %d" % (target, st))
        # a body on a GET (ours), other methods, unknown paths
        status, buf = raw(port, b"GET /work?us=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        if check(status == 400 and b"no body" in buf, "GET with a body: %d %r" % (status, buf[-100:])):
            bad += 1
        status, _ = raw(port, b"POST /work?us=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        check(status == 405, "POST answered %d" % status)
        status, _ = raw(port, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        check(status == 404, "/nope answered %d" % status)
        # malformed HTTP: libmicrohttpd's own answer or a close; then still serving
        for data in (b"GET /work?us=1 HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
                     b"GARBAGE\r\n\r\n",
                     b"\x00\x01\x02\xff\r\n\r\n",
                     b"GET /work?us=1 HTTP/9.9\r\nHost: x\r\n\r\n",
                     b"GET /work?us=1 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n",
                     b"GET /work?us=1 HTTP/1.1\r\nHost: x\r\n" + b"X-H: 1\r\n" * 5000 + b"\r\n",
                     b"GET /work?us=1 HTTP/1.1\r\nHost: x\r\nX-Class: vip\r\nX-Class: batch\r\n\r\n"):
            status, _ = raw(port, data)
            check(status == 0 or 200 <= status < 600, "%r...: answered %d" % (data[:30], status))
            st, _ = get(port, "/work?us=1&class=vip", timeout=10)
            check(st == 200, "after %r... the server answered %d" % (data[:30], st))
        m, _ = metrics(port)
        check(m.get("httpd_bad_requests_total") == bad,
              "httpd_bad_requests_total is %s, the test sent %d bad requests" % (m.get("httpd_bad_requests_total"), bad))
        log("hostile: %d bad requests answered 400, the server kept serving" % bad)
    finally:
        stop(p)


def other_backends(httpd, tmp, glib):
    for backend, policy in (("glib", "static"), ("glib", "fifo"), ("fifo", "fifo")):
        if backend == "glib" and not glib:
            continue
        try:
            p, port = start(httpd, tmp, "--backend", backend, "--policy", policy, "--workers", "2")
        except RuntimeError as e:
            if backend == "glib" and "without GLib" in str(e):
                log("note: built without GLib, --backend glib not tested")
                continue
            raise
        try:
            plan = [("vip", True), ("normal", False), ("batch", True)] * 10
            threads, results = burst(port, plan)
            for t in threads:
                t.join(timeout=max(1, left()))
            ok = sum(1 for r in results if r is not None and r[0] == 200)
            check(ok == len(plan), "%s/%s: %d of %d answered 200" % (backend, policy, ok, len(plan)))
            m, _ = metrics(port)
            got = sum(m.get('httpd_work_answered_total{class="%s"}' % c, 0) for c in ("vip", "normal", "batch"))
            check(got == len(plan), "%s/%s: /metrics counts %d answers" % (backend, policy, got))
        finally:
            stop(p)


def adaptive(httpd, tmp, spec="adaptive"):
    """--policy adaptive (and adaptive:additive): the controller runs (its
    steps count) and its series are in /metrics, which promtool accepts."""
    p, port = start(httpd, tmp, "--backend", "ripen", "--workers", "1", "--policy", spec,
                    "--slo", "vip=0.99:0.005", "--slo", "batch=0.99:2", "--control-period", "0.05")
    try:
        threads, results = burst(port, [("vip", True), ("batch", False)] * 10)
        for t in threads:
            t.join(timeout=max(1, left()))
        check(all(r is not None and r[0] == 200 for r in results), "adaptive: not all answered 200")
        end = time.monotonic() + min(20, left())
        steps = 0
        while time.monotonic() < end:
            m, text = metrics(port)
            steps = m.get('ripen_adaptive_steps_total{pool="httpd"}', 0)
            if steps >= 3:
                break
            time.sleep(0.05)
        check(steps >= 3, "adaptive: %s control steps in 20 s" % steps)
        check('ripen_adaptive_objective_seconds{pool="httpd",class="vip"}' in m, "adaptive: no objective series")
        if shutil.which("promtool"):
            r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
            check(r.returncode == 0, "adaptive: promtool: %s" % (r.stdout + r.stderr).decode())
    finally:
        stop(p)


def bad_command_lines(httpd):
    for args, words in ((["--backend", "glib", "--policy", "linear:1"], "cannot age"),
                        (["--policy", "sometimes"], "unknown policy"),
                        (["--port", "70000"], "--port"),
                        (["--workers", "0"], "--workers"),
                        (["--backend", "tokio"], "--backend"),
                        (["--start-paused", "--backend", "fifo"], "--start-paused"),
                        (["--listen", "localhost"], "numeric"),
                        (["--policy", "adaptive"], "go together"),
                        (["--slo", "vip=0.99:0.005"], "go together"),
                        (["--policy", "adaptive", "--slo", "gold=0.9:1"], "unknown class"),
                        (["--policy", "adaptive", "--slo", "vip=1.5:1"], "quantile"),
                        (["--policy", "adaptive", "--slo", "vip=0.9:1", "--slo", "vip=0.5:2"], "already")):
        r = subprocess.run([httpd] + args + ["--port", "0", "--max-seconds", "5"],
                           capture_output=True, timeout=20)
        check(r.returncode == 2 and words.encode() in r.stderr,
              "%s: exit %d, %r" % (args, r.returncode, r.stderr[-200:]))


def main():
    if len(sys.argv) < 2 or sys.argv[1] == "none":
        log("SKIP: examples/httpd was not built (libmicrohttpd-dev missing)")
        return SKIP
    httpd = sys.argv[1]
    glib = "--no-glib" not in sys.argv[2:]
    promtool = shutil.which("promtool")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            order_and_counts(httpd, promtool, tmp)
            hostile(httpd, tmp)
            other_backends(httpd, tmp, glib)
            adaptive(httpd, tmp)
            adaptive(httpd, tmp, "adaptive:additive")
            bad_command_lines(httpd)
        except Exception as e:  # noqa: BLE001
            fail("%s: %s" % (type(e).__name__, e))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    log("%s (%.1f s)" % ("FAIL: %d checks failed" % len(failures) if failures else "PASS",
                        time.monotonic() - T0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
