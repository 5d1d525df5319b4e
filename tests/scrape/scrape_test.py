#!/usr/bin/env python3
"""End-to-end metrics test: ripen-exporter scraped by a real Prometheus.

    scrape_test.py EXPORTER DASHBOARD_JSON

EXPORTER is the ripen-exporter binary ("none" when it was not built),
DASHBOARD_JSON contrib/grafana/ripen.json. prometheus and promtool are looked
up on PATH; without them (or without the exporter) the test prints a SKIP
line and exits 77.

Steps: start the exporter (traffic begins after 2 requests of /metrics) and a
Prometheus scraping it every second; lint /metrics with `promtool check
metrics`; once the exporter reports quiesced and Prometheus has scraped it
twice more, compare every per-class counter at one evaluation time T with the
pool's own /stats (exactly), the p95 of the wait and run histograms from
histogram_quantile() with the pool's p95 (same `le` bucket, give or take the
12.5% fine-bucket error), and run every PromQL expression of the Grafana
dashboard. RIPEN_PLOT_DIR=dir also draws dir/wait-quantiles.png (gnuplot).
RIPEN_TEST_SCALE (sanitizer setups) scales the task rate.
"""
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

SKIP = 77
JOB = "ripen"
POOL = "exporter"
DEADLINE_S = 85.0  # the whole test, every wait included
COUNTERS = ["submitted", "started", "cancelled", "rejected", "shed"]
GRAFANA_VARS = {  # what the dashboard's variables stand for here
    "__rate_interval": "30s",
    "__interval": "5s",
    "__range": "1m",
    "pool": POOL,
}

T0 = time.monotonic()
failures = []
notes = []  # what was not checked, and why: printed with the verdict


def log(*a):
    print(*a, flush=True)


def fail(msg):
    failures.append(msg)
    log("FAIL: " + msg)


class Abort(Exception):
    """A step cannot go on: report it and clean up."""


def time_left():
    return DEADLINE_S - (time.monotonic() - T0)


def wait_for(what, pred, limit_s, interval_s=0.2):
    """Poll pred() until it returns a true value; bounded in time and count."""
    end = time.monotonic() + min(limit_s, max(time_left(), 0))
    tries = int(limit_s / interval_s) + 2
    for _ in range(tries):
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            break
        time.sleep(interval_s)
    raise Abort("timed out waiting for " + what)


def http_get(url, timeout=5):
    """(status, headers, body); HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers, r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode("utf-8", "replace")


def die_with_parent():
    """preexec_fn: the child gets SIGKILL should this test die first (Linux
    prctl PR_SET_PDEATHSIG; best effort, the finally block is the real
    clean-up)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


# --------------------------------------------------------------- Prometheus

class Prom:
    def __init__(self, base):
        self.base = base

    def api(self, path, params):
        url = self.base + path + "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.loads(r.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            try:
                body = json.loads(e.read().decode("utf-8"))
            except ValueError:
                raise Abort("%s: HTTP %d" % (url, e.code))
        if body.get("status") != "success":
            return None, "%s: %s" % (body.get("errorType"), body.get("error"))
        return body["data"], None

    def query(self, expr, t=None):
        """Instant query: (list of (labels, float)), error text or None."""
        params = {"query": expr}
        if t is not None:
            params["time"] = "%.3f" % t
        data, err = self.api("/api/v1/query", params)
        if err:
            return None, err
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))], None
        if data["resultType"] != "vector":
            return None, "result type " + data["resultType"]
        return [(r["metric"], float(r["value"][1])) for r in data["result"]], None

    def query_ok(self, expr, t=None):
        res, err = self.query(expr, t)
        if err:
            raise Abort("query %s: %s" % (expr, err))
        return res

    def scalar(self, expr, t=None):
        res = self.query_ok(expr, t)
        return res[0][1] if res else None


# ----------------------------------------------------- the exposition format

LINE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$")
LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_labels(s):
    out, pos = {}, 0
    while pos < len(s):
        m = LABEL_RE.match(s, pos)
        if not m:
            raise ValueError("bad labels: " + s)
        v = m.group(2).replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        out[m.group(1)] = v
        pos = m.end()
    return out


def parse_exposition(text):
    """[(name, labels, value)] of every sample line."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE_RE.match(line)
        if not m:
            raise ValueError("bad sample line: " + line)
        samples.append((m.group(1), parse_labels(m.group(3) or ""), float(m.group(4))))
    return samples


def le_edges(samples, family):
    """Sorted le edges of family's buckets (the same for every class)."""
    per_class = {}
    for name, labels, _ in samples:
        if name == family + "_bucket":
            per_class.setdefault(labels.get("class"), set()).add(float(labels["le"]))
    if not per_class:
        return None
    sets = list(per_class.values())
    for s in sets[1:]:
        if s != sets[0]:
            fail("%s: le edges differ between classes" % family)
    return sorted(sets[0])


def promtool_check(promtool, text, when):
    p = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    out = p.stdout.decode("utf-8", "replace").strip()
    log("promtool check metrics (%s): rc %d, %d bytes of metrics, %d output lines"
        % (when, p.returncode, len(text), len(out.splitlines()) if out else 0))
    for line in out.splitlines():
        log("  promtool: " + line)
    if p.returncode != 0 or out:
        fail("promtool check metrics (%s) complained" % when)


# --------------------------------------------------------------- the checks

def bucket_of(edges, x):
    """(lower, upper) of the exported bucket holding x: lower < x <= upper."""
    lo = 0.0
    for e in edges:
        if x <= e:
            return lo, e
        lo = e
    return lo, math.inf


def quantile_window(edges, x):
    """Where histogram_quantile may land for a pool quantile x: the exported
    buckets touched by [x / 1.125, x * 1.125]. An exported edge E counts the
    samples below the fine bucket that holds E (within 12.5% below E), and the
    pool reports the midpoint of the fine bucket that holds the quantile, so
    the quantile's exported bucket is the one holding x or, within 12.5% of
    an edge, its neighbour."""
    lo = bucket_of(edges, x / 1.125)[0]
    hi = bucket_of(edges, x * 1.125)[1]
    if hi == math.inf:  # Prometheus answers the largest finite edge there
        hi = max(e for e in edges if e != math.inf)
    return lo, hi


def check_exposition(samples, stats):
    """The histograms as written: cumulative, +Inf = _count, the mean and the
    max agree with /stats (max and mean are exact there)."""
    log("\n== histograms in /metrics against /stats")
    for kind in ("wait", "run"):
        family = "ripen_task_%s_seconds" % kind
        for cl, st in stats["classes"].items():
            buckets, total, ssum = [], None, None
            for name, labels, v in samples:
                if labels.get("class") != cl:
                    continue
                if name == family + "_bucket":
                    buckets.append((float(labels["le"]), v))
                elif name == family + "_count":
                    total = v
                elif name == family + "_sum":
                    ssum = v
            where = "%s{class=%r}" % (family, cl)
            if not buckets or total is None or ssum is None:
                fail(where + ": bucket, _sum or _count missing")
                continue
            buckets.sort()
            if any(b[1] > a[1] for b, a in zip(buckets, buckets[1:])):
                fail(where + ": buckets not cumulative")
            if buckets[-1] != (math.inf, total):
                fail(where + ": le=+Inf %r != _count %r" % (buckets[-1], total))
            if total != st["started"]:
                fail(where + "_count %r != started %d" % (total, st["started"]))
            qs = [st["%s_%s_s" % (kind, q)] for q in ("p50", "p95", "p99", "max")]
            if total and not all(a <= b for a, b in zip(qs, qs[1:])):
                fail("/stats class %s: %s p50 <= p95 <= p99 <= max does not hold: %r"
                     % (cl, kind, qs))
            if not total:
                continue
            mean, vmax = ssum / total, st["%s_max_s" % kind]
            if abs(mean - st["%s_mean_s" % kind]) > 1e-6 * mean + 1e-9:
                fail(where + ": _sum/_count %.9g, /stats mean %.9g" % (mean, st["%s_mean_s" % kind]))
            for le, v in buckets:
                # below the max: the max itself is not counted; well above
                # it (past the 12.5% fuzz): everything is
                if le < vmax and v >= total:
                    fail(where + ": le=%g counts all %d samples, but max is %.9g" % (le, total, vmax))
                if le / 1.125 > vmax * 1.0001 and v != total:
                    fail(where + ": le=%g counts %d of %d, but max is %.9g" % (le, v, total, vmax))
            log("%-28s %6d samples, mean %.6g s (= /stats), max %.6g s within the buckets"
                % (where, total, mean, vmax))


def check_counters(prom, stats, t):
    log("\n== counters at T = %.3f against /stats" % t)
    classes = stats["classes"]
    series = {}
    for c in COUNTERS:
        series[c] = "ripen_tasks_%s_total" % c
    series["queued"] = "ripen_tasks_queued"
    series["wait_count"] = "ripen_task_wait_seconds_count"
    series["run_count"] = "ripen_task_run_seconds_count"
    got = {}
    for key, name in series.items():
        res = prom.query_ok('%s{job="%s"}' % (name, JOB), t)
        if not res:
            fail("%s: no series at T" % name)
        by_class = {}
        for labels, v in res:
            if labels.get("pool") != POOL:
                fail("%s%s: pool label is not %r" % (name, labels, POOL))
            cl = labels.get("class")
            if cl is None:
                fail("%s%s: no class label" % (name, labels))
                continue
            if cl in by_class:
                fail("%s: two series for class %s" % (name, cl))
            by_class[cl] = v
        got[key] = by_class
    log("%-6s %10s %10s %10s %9s %5s %7s   (Prometheus, /stats where they differ)"
        % ("class", "submitted", "started", "cancelled", "rejected", "shed", "queued"))
    for cl, st in classes.items():
        want = {c: st[c] for c in COUNTERS}
        want["queued"] = st["queued"]
        want["wait_count"] = st["started"]
        want["run_count"] = st["started"]
        row = []
        for key, w in want.items():
            v = got[key].get(cl)
            if v is None:
                fail("%s{class=%r}: no series at T" % (series[key], cl))
                cell = "-/%d" % w
            elif v != w:
                fail("%s{class=%r} = %r at T, /stats says %d" % (series[key], cl, v, w))
                cell = "%d/%d" % (v, w)
            else:
                cell = "%d" % v
            row.append(cell)
        log("%-6s %10s %10s %10s %9s %5s %7s  wait_count %s run_count %s"
            % (cl, row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7]))
        if st["submitted"] != st["started"] + st["cancelled"] + st["queued"]:
            fail("/stats class %s: submitted != started + cancelled + queued" % cl)
    for key, by_class in got.items():
        for cl, v in by_class.items():
            if cl not in classes and v != 0:
                fail("%s{class=%r} = %r: a class the exporter never used" % (series[key], cl, v))
    # a series that appears with its first scrape has no earlier sample to
    # rate() against: what that first sample holds is never an increase
    res = prom.query_ok('min_over_time(ripen_tasks_started_total{job="%s"}[30s])' % JOB, t)
    unseen = {labels.get("class"): v for labels, v in res if v > 0}
    if unseen:
        fail("classes whose series appeared only with traffic (no zero sample before it;"
             " starts in their first sample are invisible to rate()): "
             + ", ".join("%s %d" % kv for kv in sorted(unseen.items())))


def check_quantiles(prom, stats, samples, t, figures):
    classes = stats["classes"]
    for kind in ("wait", "run"):
        family = "ripen_task_%s_seconds" % kind
        edges = le_edges(samples, family)
        if not edges:
            fail(family + ": no buckets in /metrics")
            continue
        if edges[-1] != math.inf:
            fail(family + ": no le=+Inf bucket")
        expr = ('histogram_quantile(0.95, sum by (le, class) (rate(%s_bucket{job="%s"}[30s])))'
                % (family, JOB))
        log("\n== %s p95: %s at T" % (kind, expr))
        log("le edges: " + " ".join("%g" % e for e in edges))
        res = prom.query_ok(expr, t)
        prom_q = {labels.get("class"): v for labels, v in res}
        # rate() takes a series' first sample in the window as its baseline:
        # a class whose series only appeared with its traffic (unnamed ones
        # are shown once they count something) has samples the window
        # cannot see, and its Prometheus quantile is not over the pool's
        # samples
        res = prom.query_ok('min_over_time(%s_count{job="%s"}[30s])' % (family, JOB), t)
        unseen = {labels.get("class"): v for labels, v in res}
        log("%-6s %8s %14s %14s   %-26s %s" % ("class", "started", "pool p95 s",
                                              "Prometheus s", "allowed", "verdict"))
        for cl, st in classes.items():
            mine = st["%s_p95_s" % kind]
            theirs = prom_q.get(cl)
            if st["started"] < 20:
                log("%-6s %8d %14.6g %14s   (fewer than 20 starts: not checked)"
                    % (cl, st["started"], mine, theirs))
                continue
            if unseen.get(cl, 0) > 0:
                # every class the exporter uses is named, or is 0 or
                # "other", which the library always shows: its series must
                # exist before its first task
                fail("%s class %s: the series appeared with the traffic, %d starts before its"
                     " first sample (invisible to rate())" % (kind, cl, unseen[cl]))
                continue
            lo, hi = quantile_window(edges, mine)
            ok = theirs is not None and not math.isnan(theirs) and lo <= theirs <= hi
            log("%-6s %8d %14.6g %14.6g   [%-10.6g, %-10.6g]  %s"
                % (cl, st["started"], mine, theirs if theirs is not None else math.nan,
                   lo, hi, "ok" if ok else "OUT"))
            figures.append((kind, cl, st["started"], mine, theirs, lo, hi, ok))
            if not ok:
                fail("%s p95 of class %s: Prometheus %r, pool %r, allowed [%g, %g]"
                     % (kind, cl, theirs, mine, lo, hi))


def grafana_exprs(dash):
    """Every PromQL expr of the dashboard's panels (rows' nested ones too)."""
    out = []

    def walk(panels, where):
        for p in panels or []:
            title = p.get("title", "?")
            for tg in p.get("targets", []) or []:
                if tg.get("expr"):
                    out.append((where + title, tg.get("refId", "?"), tg["expr"]))
            walk(p.get("panels"), where + title + " / ")

    walk(dash.get("panels"), "")
    return out


def substitute(expr):
    def rep(m):
        name = m.group(1) or m.group(2)
        return GRAFANA_VARS.get(name, m.group(0))
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", rep, expr)


def check_dashboard(prom, path, t):
    log("\n== Grafana dashboard %s at T" % path)
    try:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        fail("dashboard: %s" % e)
        return
    tvars = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    if "pool" not in tvars:
        fail("dashboard: no `pool` template variable")
    exprs = grafana_exprs(dash)
    if not exprs:
        fail("dashboard: no PromQL expressions")
    for title, ref, expr in exprs:
        q = substitute(expr)
        if "$" in q:
            fail("dashboard %s/%s: unknown variable left in %s" % (title, ref, q))
            continue
        res, err = prom.query(q, t)
        if err:
            fail("dashboard %s/%s: %s: %s" % (title, ref, q, err))
            continue
        nan = sum(1 for _, v in res if math.isnan(v))
        log("%3d series%s  [%s/%s] %s" % (len(res), " (%d NaN)" % nan if nan else "",
                                          title, ref, q))
        if not res:
            fail("dashboard %s/%s: no series: %s" % (title, ref, q))


def plot(prom, plot_dir, t_start, t_end, gnuplot):
    """wait-quantiles.png: p50, p95 and p99 of the wait per class over the
    run, one panel per quantile (Prometheus, rate over 2 s; x from t_start)."""
    os.makedirs(plot_dir, exist_ok=True)
    qs = ("0.5", "0.95", "0.99")
    data_by_q = {}
    for q in qs:
        expr = ('histogram_quantile(%s, sum by (le, class) (rate(ripen_task_wait_seconds_bucket'
                '{job="%s"}[2s])))' % (q, JOB))
        data, err = prom.api("/api/v1/query_range", {"query": expr, "start": "%.3f" % t_start,
                                                    "end": "%.3f" % t_end, "step": "0.5"})
        if err:
            log("plot: %s: %s" % (expr, err))
            return
        for r in data["result"]:
            pts = [(float(ts) - t_start, float(v)) for ts, v in r["values"]
                   if not math.isnan(float(v))]
            if pts:
                data_by_q.setdefault(q, {})[r["metric"].get("class", "?")] = pts
    classes = sorted({c for d in data_by_q.values() for c in d})
    if not classes:
        log("plot: no data")
        return
    dat = os.path.join(plot_dir, "wait-quantiles.dat")
    blocks = []  # (index, quantile, class)
    with open(dat, "w") as f:
        for q in qs:
            for c in classes:
                pts = data_by_q.get(q, {}).get(c)
                if not pts:
                    continue
                f.write("# p%g %s\n" % (float(q) * 100, c))
                for x, y in pts:
                    f.write("%.3f %.9g\n" % (x, y * 1e3))
                f.write("\n\n")
                blocks.append((len(blocks), q, c))
    png = os.path.join(plot_dir, "wait-quantiles.png")
    term = ("pngcairo size 1500,520 noenhanced font ',10'" if gnuplot_has(gnuplot, "pngcairo")
            else "png size 1500,520 noenhanced")
    lines = ["set terminal " + term, "set output '%s'" % png,
             "set multiplot layout 1,3 title 'ripen-exporter: wait per class, from "
             "ripen_task_wait_seconds (histogram_quantile over rate[2s])'",
             "set logscale y", "set grid", "set key top left", "set xlabel 'seconds'",
             "set ylabel 'wait, ms'"]
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"]
    for q in qs:
        mine = [(i, c) for i, qq, c in blocks if qq == q]
        if not mine:
            continue
        lines.append("set title 'p%g'" % (float(q) * 100))
        lines.append("plot " + ", ".join(
            "'%s' index %d using 1:2 with linespoints lw 2 pt 7 ps 0.5 lc rgb '%s' title '%s'"
            % (dat, i, colors[classes.index(c) % len(colors)], c) for i, c in mine))
    lines += ["unset multiplot", ""]
    p = subprocess.run([gnuplot], input="\n".join(lines).encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    log("plot: %s (gnuplot rc %d) %s" % (png, p.returncode, p.stdout.decode().strip()))


def gnuplot_has(gnuplot, term):
    p = subprocess.run([gnuplot, "-e", "set terminal"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    return term in p.stdout.decode("utf-8", "replace")


# --------------------------------------------------------------------- main

def run(exporter, dashboard, prometheus, promtool, tmp, procs):
    scale = float(os.environ.get("RIPEN_TEST_SCALE", "1") or 1)
    rate = max(200, int(3000 * min(scale, 1.0)))
    port_file = os.path.join(tmp, "exporter.port")
    exp_log = open(os.path.join(tmp, "exporter.log"), "w+")
    exp = subprocess.Popen([exporter, "--port", "0", "--port-file", port_file,
                            "--wait-scrapes", "2", "--duration", "6", "--workers", "2",
                            "--rate", str(rate)],
                           stdin=subprocess.DEVNULL, stdout=exp_log, stderr=subprocess.STDOUT,
                           preexec_fn=die_with_parent)
    procs.append(("exporter", exp, exp_log))

    def port_ready():
        if exp.poll() is not None:
            raise Abort("exporter exited with %d before listening" % exp.returncode)
        try:
            with open(port_file) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0
    port = wait_for("the exporter's port file", port_ready, 10, 0.05)
    ebase = "http://127.0.0.1:%d" % port
    log("exporter: pid %d, %s, %d tasks/s" % (exp.pid, ebase, rate))

    cfg = os.path.join(tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: %s\n    scrape_timeout: 1s\n"
                "    metrics_path: /metrics\n    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % (JOB, port))
    for attempt in range(3):  # the free port may be taken before it binds
        pport = free_port()
        prom_log = open(os.path.join(tmp, "prometheus-%d.log" % attempt), "w+")
        pp = subprocess.Popen([prometheus, "--config.file=" + cfg,
                               "--storage.tsdb.path=" + os.path.join(tmp, "tsdb"),
                               "--web.listen-address=127.0.0.1:%d" % pport, "--log.level=warn"],
                              stdin=subprocess.DEVNULL, stdout=prom_log,
                              stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        procs.append(("prometheus", pp, prom_log))
        pbase = "http://127.0.0.1:%d" % pport

        def prom_ready():
            if pp.poll() is not None:
                return "exited"
            try:
                return http_get(pbase + "/-/ready", 2)[0] == 200
            except OSError:  # URLError included
                return False
        if wait_for("prometheus /-/ready", prom_ready, 30, 0.2) is True:
            break
        log("prometheus exited with %d (port %d taken?), again" % (pp.returncode, pport))
    else:
        raise Abort("prometheus did not start")
    prom = Prom(pbase)
    log("prometheus: pid %d, %s ready after %.1f s" % (pp.pid, pbase, time.monotonic() - T0))

    # b. the exposition, linted (again below, once it holds data)
    status, headers, text = http_get(ebase + "/metrics")
    ctype = headers.get("Content-Type", "")
    if status != 200 or ctype != "text/plain; version=0.0.4; charset=utf-8":
        raise Abort("/metrics: HTTP %d, Content-Type %r: %s" % (status, ctype, text[:200]))
    promtool_check(promtool, text, "before traffic")

    # c. Prometheus scrapes
    up_count = 'count_over_time(up{job="%s"}[5m])' % JOB
    wait_for(">= 3 scrapes", lambda: (prom.scalar(up_count) or 0) >= 3, 60, 0.25)
    if prom.scalar('up{job="%s"}' % JOB) != 1:
        fail("up{job=%r} is not 1" % JOB)
    log("prometheus: 3 scrapes after %.1f s" % (time.monotonic() - T0))

    # d. quiesced, then two scrapes that surely began after it
    wait_for("/quiesced", lambda: json.loads(http_get(ebase + "/quiesced")[2])["quiesced"],
             60, 0.2)
    t_quiet = time.time()
    n0 = prom.scalar(up_count) or 0
    log("exporter quiesced after %.1f s (%d scrapes so far)" % (time.monotonic() - T0, n0))

    def two_more():
        last = prom.scalar('timestamp(up{job="%s"})' % JOB)
        n = prom.scalar(up_count) or 0
        return last if n >= n0 + 2 and last is not None and last > t_quiet else None
    last_scrape = wait_for("2 scrapes after quiescence", two_more, 20, 0.2)
    t_eval = last_scrape + 0.05
    stats = json.loads(http_get(ebase + "/stats")[2])
    if not stats.get("quiesced"):
        fail("/stats: quiesced is false after /quiesced said true")
    status, headers, text = http_get(ebase + "/metrics")
    if status != 200:
        raise Abort("/metrics after traffic: HTTP %d: %s" % (status, text[:200]))
    promtool_check(promtool, text, "after traffic")
    try:
        samples = parse_exposition(text)
    except ValueError as e:
        fail("/metrics: %s" % e)
        samples = []

    # the series the contract promises
    names = {n for n, _, _ in samples}
    want = ["ripen_task_wait_seconds_bucket", "ripen_task_wait_seconds_sum",
            "ripen_task_wait_seconds_count", "ripen_task_run_seconds_bucket",
            "ripen_task_run_seconds_sum", "ripen_task_run_seconds_count",
            "ripen_tasks_queued", "ripen_steals_total", "ripen_stolen_tasks_total",
            "ripen_inbox_steals_total", "ripen_stale_dropped_total", "ripen_parks_total",
            "ripen_rekeys_total", "ripen_rekeyed_entries_total", "ripen_rekey_seconds_total",
            "ripen_rebalances_total", "ripen_merged_total", "ripen_rescued_total",
            "ripen_bad_scores_total", "ripen_workers", "ripen_tasks_delayed",
            "ripen_recording_clock_tsc",
            "ripen_heap_depth", "ripen_inbox_depth", "ripen_rebalancer_lateness_seconds_bucket",
            "ripen_watch_firing", "ripen_watch_firings_total", "ripen_watch_value"]
    want += ["ripen_tasks_%s_total" % c for c in COUNTERS]
    missing = [n for n in want if n not in names]
    if missing:
        fail("/metrics lacks " + ", ".join(missing))
    for n, labels, _ in samples:
        if labels.get("pool") != POOL:
            fail("/metrics: %s%s without pool=%r" % (n, labels, POOL))
            break
    workers = [v for n, _, v in samples if n == "ripen_workers"]
    if workers and workers[0] != 2:
        fail("ripen_workers = %r, the exporter runs 2" % workers[0])
    clock = [v for n, _, v in samples if n == "ripen_recording_clock_tsc"]
    if clock and clock[0] not in (0, 1):
        fail("ripen_recording_clock_tsc = %r, not 0 or 1" % clock[0])
    log("recording clock: ripen_recording_clock_tsc %s" % clock)
    firings = [v for n, _, v in samples if n == "ripen_watch_firings_total"]
    log("watcher: ripen_watch_firings_total %s; the exporter's callback saw %d firings, %d clears"
        % (firings, stats.get("watch_firings", -1), stats.get("watch_clears", -1)))
    # the exporter's QUEUED watcher on "bulk" (threshold -1) fires at its
    # first evaluation whatever the load; the wait-mean one only on a busy
    # machine, which is not asserted
    if not firings or sum(firings) < 1:
        fail("no watcher fired (the always-true QUEUED watcher must)")

    check_exposition(samples, stats)
    check_counters(prom, stats, t_eval)
    figures = []
    check_quantiles(prom, stats, samples, t_eval, figures)
    check_dashboard(prom, dashboard, t_eval)

    plot_dir = os.environ.get("RIPEN_PLOT_DIR")
    if plot_dir:
        gnuplot = shutil.which("gnuplot")
        if gnuplot:
            plot(prom, plot_dir, t_quiet - 8, t_eval, gnuplot)
        else:
            log("plot: gnuplot not installed")

    # the exporter must exit cleanly on SIGTERM
    exp.send_signal(signal.SIGTERM)
    try:
        rc = exp.wait(15)
    except subprocess.TimeoutExpired:
        rc = None
    if rc != 0:
        fail("exporter did not exit cleanly on SIGTERM (rc %r)" % rc)
    log("\n== figures: p95 per class, the pool's own against Prometheus's histogram_quantile")
    for kind, cl, n, mine, theirs, lo, hi, ok in figures:
        verdict = ("not checked" if ok is None else "ok" if ok
                   else "OUT of [%g, %g] ms" % (lo * 1e3, hi * 1e3))
        log("%-4s %-6s %6d starts  pool %9.3f ms  Prometheus %9.3f ms  (%s)"
            % (kind, cl, n, mine * 1e3, (theirs if theirs is not None else math.nan) * 1e3,
               verdict))
    prom_log.seek(0)
    warn = [line for line in prom_log.read().splitlines() if "level=" in line]
    for line in warn:
        log("prometheus said: " + line)
    exp_log.seek(0)
    log("\n== exporter's log")
    for line in exp_log.read().splitlines()[-20:]:
        log("  " + line)


def main(argv):
    if len(argv) != 3:
        print("usage: scrape_test.py EXPORTER DASHBOARD_JSON", file=sys.stderr)
        return 2
    exporter, dashboard = argv[1], argv[2]
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prometheus or not promtool:
        print("SKIP: prometheus not installed (need prometheus and promtool on PATH;"
              " Debian: apt-get install --no-install-recommends prometheus)", flush=True)
        return SKIP
    if exporter == "none" or not os.access(exporter, os.X_OK):
        print("SKIP: ripen-exporter not built (libmicrohttpd-dev missing at meson setup)",
              flush=True)
        return SKIP

    def on_term(signum, frame):
        raise Abort("killed by signal %d" % signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    tmp = tempfile.mkdtemp(prefix="ripen-scrape-")
    procs = []
    try:
        run(exporter, dashboard, prometheus, promtool, tmp, procs)
    except Abort as e:
        fail(str(e))
    except Exception as e:  # a bug here must still clean up and fail
        fail("%s: %s" % (type(e).__name__, e))
        import traceback
        traceback.print_exc()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for name, p, f in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
        if failures:
            for name, p, f in procs:
                f.seek(0)
                lines = f.read().splitlines()
                log("\n== %s log (rc %r), last %d lines" % (name, p.returncode,
                                                           min(len(lines), 40)))
                for line in lines[-40:]:
                    log("  " + line)
        for _, _, f in procs:
            f.close()
        shutil.rmtree(tmp, ignore_errors=True)
    took = time.monotonic() - T0
    if failures:
        for m in notes:
            log("note: " + m)
        log("\nFAIL: %d check(s) failed in %.1f s:" % (len(failures), took))
        for m in failures:
            log("  - " + m)
        return 1
    for m in notes:
        log("note: " + m)
    log("\nPASS: counters exact, p95s within their buckets%s, promtool clean,"
        " every dashboard query answered (%.1f s)"
        % (" (%d not checked, see the notes)" % len(notes) if notes else "", took))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
