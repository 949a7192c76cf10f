#!/usr/bin/python3
"""Turn bench.sh's raw files into the side-by-side tables and the JSON result.

Reads, for each size N, server S and round R, in TMP/N/:
  S.rR.max    dnsperf output of the unthrottled (throughput) phase, S alone
  S.rR.proc   key=value: its CPU ticks and run-queue wait, VmHWM, VmRSS
  S.lI.lat    dnsperf -v output of steady-rate (latency) run I, all servers
              up at once, runs alternating between them
  S.lI.proc   key=value: CPU ticks and run-queue wait of S during run I
  S.startup.json  start-to-first-answer samples: wall, CPU and run-queue ms
  dnsproxy-pb.startup.json  the same for dnsproxy with the protobuf table
and, with --forward, the same S.rR.* files of the forwarding run in TMP/fwd/
(plus the upstream's CPU ticks in S.rR.proc), and with --cache those of the
cache run (repeated forwarded names, both caches on) in TMP/cache/.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

# (key, label, unit format, which direction is better or None for info)
METRICS = [
    ("qps", "throughput, unthrottled (queries/s)", "{:,.0f}", "higher"),
    ("q_per_cpu_s", "queries per server CPU-second", "{:,.0f}", "higher"),
    ("lat_p50_us", "p50 latency at {rate} qps (us)", "{:,.0f}", "lower"),
    ("lat_p99_us", "p99 latency at {rate} qps (us)", "{:,.0f}", "lower"),
    ("lat_p999_us", "p99.9 latency at {rate} qps (us)", "{:,.0f}", "lower"),
    ("cpu_util_lat", "server CPU at {rate} qps (% of a core)", "{:.1f}", "lower"),
    ("vmhwm_mib", "peak RSS, VmHWM (MiB)", "{:,.1f}", "lower"),
    ("vmrss_after_mib", "RSS after the load, VmRSS (MiB)", "{:,.1f}", "lower"),
    ("startup_ms", "start to first answer, median (ms)", "{:,.1f}", "lower"),
    ("startup_cpu_ms", "server CPU time until first answer, median (ms)", "{:,.1f}", "lower"),
    # dnsproxy with table.pb; dnsmasq's column repeats its hosts-file figure.
    ("startup_pb_ms", "start to first answer, protobuf table, median (ms)", "{:,.1f}",
     "lower"),
    ("startup_pb_cpu_ms", "server CPU until first answer, protobuf table (ms)", "{:,.1f}",
     "lower"),
    # Context, not scores: how much of CPU 0 the server got.
    ("cpu_util_max", "server CPU, throughput phase (% of a core)", "{:.0f}", None),
    ("rqwait_max_pct", "server run-queue wait, throughput (% of time)", "{:.0f}", None),
    ("rqwait_lat_pct", "server run-queue wait, latency (% of time)", "{:.1f}", None),
    ("startup_rqwait_ms", "server run-queue wait until first answer (ms)", "{:,.1f}", None),
]


def dnsperf_summary(path):
    text = open(path, errors="replace").read()
    out = {}
    pats = {
        "sent": r"Queries sent:\s+(\d+)",
        "completed": r"Queries completed:\s+(\d+)",
        "lost": r"Queries lost:\s+(\d+)",
        "runtime_s": r"Run time \(s\):\s+([\d.]+)",
        "qps": r"Queries per second:\s+([\d.]+)",
        "avg_latency_s": r"Average Latency \(s\):\s+([\d.]+)",
    }
    for k, p in pats.items():
        m = re.search(p, text)
        if m:
            out[k] = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
    m = re.search(r"Average packet size:\s+request (\d+), response (\d+)", text)
    if m:
        out["avg_request_bytes"] = int(m.group(1))
        out["avg_response_bytes"] = int(m.group(2))
    m = re.search(r"Response codes:\s+(.*)", text)
    codes = {}
    if m:
        for code, cnt in re.findall(r"([A-Z]+) (\d+) \(", m.group(1)):
            codes[code] = int(cnt)
    out["rcodes"] = codes
    return out, text


def percentile(sorted_vals, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def latency_stats(text):
    lats = []
    timeouts = 0
    for line in text.splitlines():
        if not line.startswith("> "):
            continue
        parts = line.split()
        if parts[1] == "T":
            timeouts += 1
            continue
        try:
            lats.append(float(parts[-1]))
        except ValueError:
            continue
    lats.sort()
    us = [x * 1e6 for x in lats]
    return {
        "samples": len(us),
        "timeouts": timeouts,
        "lat_p50_us": percentile(us, 50),
        "lat_p90_us": percentile(us, 90),
        "lat_p99_us": percentile(us, 99),
        "lat_p999_us": percentile(us, 99.9),
        "lat_max_us": us[-1] if us else None,
        "lat_mean_us": statistics.fmean(us) if us else None,
    }


def read_kv(path):
    out = {}
    for line in open(path):
        if "=" in line:
            k, v = line.strip().split("=", 1)
            out[k] = int(v) if v.isdigit() else v
    return out


def one_round(d, server, r, clk):
    """One throughput phase (the server alone)."""
    base = os.path.join(d, "%s.r%d" % (server, r))
    proc = read_kv(base + ".proc")
    mx, _ = dnsperf_summary(base + ".max")
    res = {"throughput_phase": mx}
    cpu_max = proc["max_cpu_ticks"] / clk
    res["qps"] = mx.get("qps")
    res["server_cpu_s_throughput"] = cpu_max
    res["q_per_cpu_s"] = mx["completed"] / cpu_max if cpu_max > 0 else None
    res["cpu_util_max"] = 100.0 * cpu_max / mx["runtime_s"] if mx.get("runtime_s") else None
    if mx.get("runtime_s"):
        res["rqwait_max_pct"] = 100.0 * proc.get("max_rq_wait_ns", 0) / 1e9 / mx["runtime_s"]
    if "up_max_cpu_ticks" in proc and mx.get("runtime_s"):
        res["up_cpu_util_max"] = 100.0 * proc["up_max_cpu_ticks"] / clk / mx["runtime_s"]
    res["vmhwm_mib"] = proc["vmhwm_kb"] / 1024.0
    res["vmrss_after_mib"] = proc["vmrss_kb"] / 1024.0
    return res


def one_lat_run(d, server, i, clk):
    """One interleaved latency run: its percentiles, CPU and run-queue wait."""
    base = os.path.join(d, "%s.l%d" % (server, i))
    proc = read_kv(base + ".proc")
    lat, lat_text = dnsperf_summary(base + ".lat")
    res = {"latency_phase": lat}
    res["server_cpu_s_latency"] = proc["lat_cpu_ticks"] / clk
    res["rq_wait_s_latency"] = proc.get("lat_rq_wait_ns", 0) / 1e9
    res.update(latency_stats(lat_text))
    return res


LAT_KEYS = ("lat_p50_us", "lat_p90_us", "lat_p99_us", "lat_p999_us", "lat_max_us",
            "lat_mean_us")


def server_entry(d, s, args):
    """rounds (throughput), latency_runs, and the metrics: medians over the
    rounds, each latency percentile the median over the latency runs, CPU
    and run-queue wait at RATE summed over the server's runs / their time."""
    rounds = [one_round(d, s, r, args.clk_tck) for r in range(args.rounds)]
    runs = [one_lat_run(d, s, i, args.clk_tck) for i in range(args.latency_runs)]
    metrics = {k: median_of(rounds, k) for k, *_ in METRICS
               if not k.startswith("startup_") and k not in LAT_KEYS
               and k not in ("cpu_util_lat", "rqwait_lat_pct")}
    metrics["up_cpu_util_max"] = median_of(rounds, "up_cpu_util_max")
    for k in LAT_KEYS:
        metrics[k] = median_of(runs, k)
    t = sum(r["latency_phase"].get("runtime_s") or 0 for r in runs)
    if t > 0:
        metrics["cpu_util_lat"] = 100.0 * sum(r["server_cpu_s_latency"] for r in runs) / t
        metrics["rqwait_lat_pct"] = 100.0 * sum(r["rq_wait_s_latency"] for r in runs) / t
    return {"metrics": metrics, "rounds": rounds, "latency_runs": runs}


# The forwarding table: the load metrics (no start-up), then context.
FWD_METRICS = [m for m in METRICS if not m[0].startswith("startup")
               and m[0] not in ("vmrss_after_mib",)]
FWD_METRICS.insert(FWD_METRICS.index(next(m for m in FWD_METRICS
                                          if m[0] == "cpu_util_max")) + 1,
                   ("up_cpu_util_max", "upstream CPU, throughput phase (% of a core)",
                    "{:.0f}", None))


def median_of(rounds, key):
    vals = [r[key] for r in rounds if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def run_pairs(runs_a, runs_b, key):
    """(run k of a, run k of b) values of key, where both runs have one."""
    return [(x, y) for x, y in zip((r.get(key) for r in runs_a),
                                   (r.get(key) for r in runs_b)) if x and y]


def paired(runs_a, runs_b, key):
    """Run k of one server against run k of another (adjacent in time, the
    order flipped every alternation), so that a drift of the host's noise
    hits both alike: (median of the per-pair ratios a/b, pairs where a is
    lower, pairs, two-sided sign-test p), or None."""
    pairs = run_pairs(runs_a, runs_b, key)
    if not pairs:
        return None
    ratios = [x / y for x, y in pairs]
    lower = sum(1 for x, y in pairs if x < y)
    n = sum(1 for x, y in pairs if x != y)
    k = min(lower, n - lower)
    tail = sum(binom(n, i) for i in range(k + 1)) / 2 ** n if n else 1.0
    return statistics.median(ratios), lower, len(pairs), min(1.0, 2 * tail)


# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom.
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def paired_diff(runs_a, runs_b, key):
    """Mean of the per-pair differences a - b and its 95% t-interval:
    (mean, low, high), or None with fewer than 2 pairs. How large a
    difference the run could have missed."""
    d = [x - y for x, y in run_pairs(runs_a, runs_b, key)]
    if len(d) < 2:
        return None
    m = statistics.mean(d)
    t = T975[len(d) - 2] if len(d) - 1 <= len(T975) else 1.96
    h = t * statistics.stdev(d) / len(d) ** 0.5
    return m, m - h, m + h


def binom(n, k):
    r = 1
    for i in range(k):
        r = r * (n - i) // (i + 1)
    return r


def fmt(fmtstr, v):
    return "-" if v is None else fmtstr.format(v)


def verdict(ratio, better):
    if ratio is None or better is None:
        return ""
    if 0.95 <= ratio <= 1.05:
        return "about equal"
    good = ratio > 1 if better == "higher" else ratio < 1
    return "dnsproxy better" if good else "dnsproxy worse"


def cmd_out(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except Exception:  # noqa: BLE001 - best-effort metadata
        return None


def version_line(cmd, prefix):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    for line in (p.stdout + p.stderr).splitlines():
        if line.startswith(prefix):
            return line.strip()
    return None


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def print_table(entry, cols, both, title, metrics, rate, forward=False,
                cache_names=None):
    """One side-by-side table and its notes."""
    print()
    if both:
        title += ": dnsproxy vs dnsmasq, same run"
    print("== " + title + " ==")
    head = "%-50s" % "metric" + "".join("%13s" % c for c in cols)
    if both:
        head += "%9s  %-7s %s" % ("ratio", "better", "")
    print(head)
    print("-" * len(head.rstrip()) + ("-" * 16 if both else ""))
    for key, label, f, better in metrics:
        if key == "cpu_util_max":
            print("context (not scores):")
        label = label.format(rate="{:,}".format(rate))
        row = "%-50s" % label
        for c in cols:
            row += "%13s" % fmt(f, entry["servers"][c]["metrics"].get(key))
        if both:
            ratio = entry["ratio_dnsproxy_over_dnsmasq"].get(key)
            if better is not None:
                row += "%9s  %-7s %s" % (fmt("{:.2f}", ratio), better,
                                         verdict(ratio, better))
        print(row.rstrip())
    notes = []
    notes.append("latency rows: all servers up at once on CPU 0, alternating %s s "
                 "runs at %s qps; each percentile is the median over a server's runs; "
                 "CPU at that rate is over all its runs" % (
                     entry["latency_run_s"], "{:,}".format(rate)))
    for c in cols:
        runs = entry["servers"][c]["latency_runs"]
        for label, phase, lst in (("round", "throughput_phase",
                                   entry["servers"][c]["rounds"]),
                                  ("latency run", "latency_phase", runs)):
            for r, rd in enumerate(lst):
                ph = rd[phase]
                codes = ph.get("rcodes", {})
                other = {k: v for k, v in codes.items() if k != "NOERROR"}
                if ph.get("lost") or other:
                    notes.append("%s %s %d: %d lost, other rcodes %s"
                                 % (c, label, r + 1, ph.get("lost", 0), other or "none"))
        for r, rd in enumerate(runs):
            got = rd["latency_phase"].get("qps")
            if got is not None and got < 0.95 * rate:
                notes.append("%s latency run %d reached only %.0f of %d qps"
                             % (c, r + 1, got, rate))
        notes.append("%s p50/p99/p99.9 per latency run (us): %s" % (c, ", ".join(
            "/".join(fmt("{:.0f}", rd.get(k)) for k in ("lat_p50_us", "lat_p99_us",
                                                          "lat_p999_us"))
            for rd in runs)))
        shares = [rd.get("cpu_util_max") for rd in entry["servers"][c]["rounds"]]
        share = entry["servers"][c]["metrics"].get("cpu_util_max")
        if share is not None and round(share) < 90:
            notes.append("%s got %s%% of its core under unthrottled load (per round): "
                         "below 90%%, so its throughput was capped by the client%s or by "
                         "other load on CPU 0 (see run-queue wait); trust queries per "
                         "CPU-second more" % (c, "/".join("%.0f" % x for x in shares
                                                          if x is not None),
                                              ", the upstream" if forward else ""))
        sizes_seen = sorted({rd["throughput_phase"].get("avg_response_bytes")
                             for rd in entry["servers"][c]["rounds"]} - {None})
        notes.append("%s average response size (bytes): %s"
                     % (c, ", ".join(str(x) for x in sizes_seen) or "-"))
        st = entry["servers"][c].get("startup_samples")
        if st:
            notes.append("%s start-up samples, wall/CPU ms: %s" % (c, ", ".join(
                "%.1f/%.1f" % xy for xy in zip(st["wall_ms"], st["cpu_ms"]))))
        st = entry["servers"][c].get("startup_pb_samples")
        if st:
            notes.append("%s start-up samples with the protobuf table (table.pb), "
                         "wall/CPU ms: %s" % (c, ", ".join(
                             "%.1f/%.1f" % xy for xy in zip(st["wall_ms"], st["cpu_ms"]))))
    fl = entry.get("floor")
    if fl:
        fm = fl["metrics"]
        notes.append("latency floor (floor.c: one blocking recvfrom() and sendto() per "
                     "query, sent back with QR set, no lookup), in the same alternation: "
                     "medians p50/p99/p99.9 %s us; per run: %s" % (
                         "/".join(fmt("{:.0f}", fm.get(k)) for k in
                                  ("lat_p50_us", "lat_p99_us", "lat_p999_us")),
                         ", ".join("/".join(fmt("{:.0f}", rd.get(k)) for k in
                                            ("lat_p50_us", "lat_p99_us", "lat_p999_us"))
                                   for rd in fl["latency_runs"])))
        above = []
        for c in cols:
            m = entry["servers"][c]["metrics"]
            if m.get("lat_p50_us") is not None and fm.get("lat_p50_us") is not None:
                above.append("%s %+.0f/%+.0f us" % (
                    c, m["lat_p50_us"] - fm["lat_p50_us"],
                    (m.get("lat_p99_us") or 0) - (fm.get("lat_p99_us") or 0)))
        notes.append("p50/p99 above the floor (medians of runs): " + ", ".join(above))
    if any(entry["servers"][c].get("startup_pb_samples") for c in cols) and \
            "dnsmasq" in cols:
        notes.append("the protobuf start-up rows: dnsproxy reading table.pb (the same "
                     "NameTable as table.json); dnsmasq's column repeats its hosts-file "
                     "figure, the only format it has")
    if forward and cache_names is None:
        notes.insert(0, "every query is a distinct name neither server knows; both forward "
                        "it to the same dnsmasq (--address=/miss.example/, cache off) on "
                        "CPU 1, which dnsperf shares; the server under test is alone on "
                        "CPU 0 in the throughput phase; qps counts forwarded queries "
                        "answered")
    elif forward:
        notes.insert(0, "%s distinct names neither server knows, repeated; both forward "
                        "them to the same dnsmasq (--address=/miss.example/, TTL 3600, "
                        "cache off) on CPU 1 and cache the answers (dnsproxy --cache-size "
                        "10000 capped at 300 s, dnsmasq --cache-size=10000); the warm-up "
                        "fills both caches, so the measured phases are cache hits; the "
                        "server under test is alone on CPU 0 in the throughput phase"
                        % "{:,}".format(cache_names))
    if both:
        notes.insert(0, "ratio = dnsproxy / dnsmasq; 'better' says which direction wins "
                        "(above 1 for 'higher', below 1 for 'lower'); within 5% = about equal")
    for line in notes:
        print("  * " + line)


# Issue 8's targets, checked against this run (ratios from the same run).
RSS_TARGETS = {1000: 4.0, 100000: 16.0}  # services: peak RSS goal in MiB
STARTUP_TARGET_SERVICES = 100000
STARTUP_TARGET_MS = 100.0


def targets(result, sizes, args):
    """[{what, value (text), number, goal, met (None: unknown)}] for issue 8."""
    out = []

    def ratio(entry, key):
        return entry["ratio_dnsproxy_over_dnsmasq"].get(key)

    if sizes:
        n = max(sizes)
        e = result["sizes"][str(n)]
        r = ratio(e, "q_per_cpu_s")
        out.append(("table hits per server CPU-second, %s services" % "{:,}".format(n),
                    fmt("{:.2f}x dnsmasq", r), ">= 1.5x", None if r is None else r >= 1.5, r))
        r = ratio(e, "lat_p99_us")
        out.append(("p99 latency at %s qps, %s services" % ("{:,}".format(args.rate),
                                                          "{:,}".format(n)),
                    fmt("{:.2f}x dnsmasq", r), "<= 1.0x", None if r is None else r <= 1.0, r))
        masq = e["servers"]["dnsmasq"]["latency_runs"]
        pr = paired(e["servers"]["dnsproxy"]["latency_runs"], masq, "lat_p99_us")
        if pr is not None:
            out.append(("  the same, run by run (adjacent runs paired)",
                        "%.2fx, lower in %d/%d" % pr[:3], "-", None, pr[0]))
            out.append(("  sign test: chance of a split this uneven if equal",
                        "p = %.2f" % pr[3], "-", None, pr[3]))
        pd = paired_diff(e["servers"]["dnsproxy"]["latency_runs"], masq, "lat_p99_us")
        if pd is not None:
            out.append(("  mean difference per pair, 95% interval",
                        "%+.0f us [%+.0f, %+.0f]" % pd, "-", None, pd[0]))
        fl = e.get("floor")
        pf = paired(fl["latency_runs"], masq, "lat_p99_us") if fl else None
        if pf is not None:
            # The same statistic for a server that does nothing: if it
            # cannot beat dnsmasq clearly either, the run cannot resolve
            # a server's p99 at all.
            out.append(("  floor (bare responder) vs dnsmasq, paired",
                        "%.2fx, lower in %d/%d" % pf[:3], "-", None, pf[0]))
            out.append(("  sign test, floor vs dnsmasq", "p = %.2f" % pf[3], "-", None,
                        pf[3]))
            pd = paired_diff(fl["latency_runs"], masq, "lat_p99_us")
            if pd is not None:
                out.append(("  floor - dnsmasq per pair, 95% interval",
                            "%+.0f us [%+.0f, %+.0f]" % pd, "-", None, pd[0]))
    for n, goal in sorted(RSS_TARGETS.items()):
        if n not in sizes:
            continue
        e = result["sizes"][str(n)]
        v = e["servers"]["dnsproxy"]["metrics"].get("vmhwm_mib")
        out.append(("peak RSS (VmHWM), %s services" % "{:,}".format(n),
                    fmt("{:.1f} MiB", v), "<= %.0f MiB" % goal,
                    None if v is None else v <= goal, v))
    if STARTUP_TARGET_SERVICES in sizes:
        m = result["sizes"][str(STARTUP_TARGET_SERVICES)]["servers"]["dnsproxy"]["metrics"]
        for key, form in (("startup_pb_ms", "protobuf (snapshot)"), ("startup_ms", "JSON")):
            v = m.get(key)
            out.append(("start to first answer, %s services, %s"
                        % ("{:,}".format(STARTUP_TARGET_SERVICES), form),
                        fmt("{:.0f} ms", v), "<= %.0f ms" % STARTUP_TARGET_MS,
                        None if v is None else v <= STARTUP_TARGET_MS, v))
    if "forward" in result:
        r = ratio(result["forward"], "q_per_cpu_s")
        out.append(("forwarded unique misses per server CPU-second",
                    fmt("{:.2f}x dnsmasq", r), ">= 1.0x", None if r is None else r >= 1.0, r))
    if "cache" in result:
        r = ratio(result["cache"], "q_per_cpu_s")
        out.append(("cache hits per server CPU-second",
                    fmt("{:.2f}x dnsmasq", r), ">= 1.0x", None if r is None else r >= 1.0, r))
    return [{"what": w, "value": v, "number": x, "goal": g, "met": m}
            for w, v, g, m, x in out]


def print_targets(rows):
    if not rows:
        return
    print()
    print("== Targets (issue 8; from the tables above) ==")
    for t in rows:
        met = {True: "met", False: "NOT met", None: ""}[t["met"]]
        print("%-52s %16s  goal %-9s %s" % (t["what"], t["value"], t["goal"], met))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--sizes", required=True)
    ap.add_argument("--servers", required=True)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--duration", type=int, required=True)
    ap.add_argument("--rate", type=int, required=True)
    ap.add_argument("--latency-runs", type=int, required=True)
    ap.add_argument("--latency-duration", type=int, required=True)
    ap.add_argument("--clients", type=int, required=True)
    ap.add_argument("--outstanding", type=int, required=True)
    ap.add_argument("--clk-tck", type=int, default=100)
    ap.add_argument("--dnsproxy-bin")
    ap.add_argument("--out")
    ap.add_argument("--forward", action="store_true",
                    help="also report the forwarding run (TMP/fwd)")
    ap.add_argument("--forward-rate", type=int)
    ap.add_argument("--cache", action="store_true",
                    help="also report the cache run (TMP/cache)")
    ap.add_argument("--cache-rate", type=int)
    ap.add_argument("--cache-names", type=int)
    ap.add_argument("--floor", action="store_true",
                    help="the table runs' latency phase had the floor (floor.c)")
    args = ap.parse_args()

    servers = args.servers.split(",")
    sizes = [] if args.sizes == "none" else [int(s) for s in args.sizes.split(",")]
    both = servers == ["dnsproxy", "dnsmasq"] or servers == ["dnsmasq", "dnsproxy"]

    meta = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": platform.node(),
        "kernel": platform.release(),
        "cpu": cpu_model(),
        "ncpu": os.cpu_count(),
        "loadavg_at_report": open("/proc/loadavg").read().split()[:3],
        "dnsperf": version_line(["dnsperf", "-h"], "Version"),
        "dnsmasq": cmd_out(["dnsmasq", "--version"]),
        "dnsproxy_bin": args.dnsproxy_bin,
        "dnsproxy_version": cmd_out([args.dnsproxy_bin, "--version"]) if args.dnsproxy_bin else None,
        "duration_s": args.duration,
        "rate_qps": args.rate,
        "rounds": args.rounds,
        "latency_runs": args.latency_runs,
        "latency_run_s": args.latency_duration,
        "latency_method": "all servers up at once, each pinned to CPU 0; alternating "
                          "latency runs; per-server median of each percentile over its runs",
        "dnsperf_clients": args.clients,
        "dnsperf_outstanding": args.outstanding,
        "pinning": "servers on CPU 0 (alone in the throughput phase, together in the "
                   "latency runs), dnsperf and probes on CPU 1 (and the forwarding "
                   "run's upstream dnsmasq)",
        "forward_rate_qps": args.forward_rate,
        "cache_rate_qps": args.cache_rate,
        "cache_names": args.cache_names,
    }
    result = {"meta": meta, "sizes": {}}

    for n in sizes:
        d = os.path.join(args.tmp, str(n))
        entry = {"table": json.load(open(os.path.join(d, "meta.json"))), "servers": {}}
        entry["latency_run_s"] = args.latency_duration
        for s in servers:
            se = server_entry(d, s, args)
            metrics = se["metrics"]
            metrics.pop("up_cpu_util_max", None)
            startup = json.load(open(os.path.join(d, "%s.startup.json" % s)))
            for k, src in (("startup_ms", "wall_ms"), ("startup_cpu_ms", "cpu_ms"),
                           ("startup_rqwait_ms", "rqwait_ms")):
                metrics[k] = statistics.median(startup[src]) if startup[src] else None
            pb = None
            pb_path = os.path.join(d, "dnsproxy-pb.startup.json")
            if s == "dnsproxy" and os.path.exists(pb_path):
                pb = json.load(open(pb_path))
                for k, src in (("startup_pb_ms", "wall_ms"),
                               ("startup_pb_cpu_ms", "cpu_ms")):
                    metrics[k] = statistics.median(pb[src]) if pb[src] else None
            elif s == "dnsmasq":
                # dnsmasq has one table format: compare with its hosts file
                metrics["startup_pb_ms"] = metrics["startup_ms"]
                metrics["startup_pb_cpu_ms"] = metrics["startup_cpu_ms"]
            entry["servers"][s] = {"metrics": metrics, "startup_samples": startup,
                                   "rounds": se["rounds"],
                                   "latency_runs": se["latency_runs"]}
            if pb is not None:
                entry["servers"][s]["startup_pb_samples"] = pb
        if args.floor:
            runs = [one_lat_run(d, "floor", i, args.clk_tck)
                    for i in range(args.latency_runs)]
            entry["floor"] = {"metrics": {k: median_of(runs, k) for k in LAT_KEYS},
                              "latency_runs": runs}
        if both:
            a = entry["servers"]["dnsproxy"]["metrics"]
            b = entry["servers"]["dnsmasq"]["metrics"]
            entry["ratio_dnsproxy_over_dnsmasq"] = {
                k: (a[k] / b[k] if a.get(k) is not None and b.get(k) else None)
                for k, _, _, better in METRICS if better is not None
            }
        result["sizes"][str(n)] = entry

    for run, dirname, wanted in (("forward", "fwd", args.forward),
                                 ("cache", "cache", args.cache)):
        if not wanted:
            continue
        d = os.path.join(args.tmp, dirname)
        entry = {"inputs": json.load(open(os.path.join(d, "meta.json"))),
                 "latency_run_s": args.latency_duration, "servers": {}}
        for s in servers:
            entry["servers"][s] = server_entry(d, s, args)
        if both:
            a = entry["servers"]["dnsproxy"]["metrics"]
            b = entry["servers"]["dnsmasq"]["metrics"]
            entry["ratio_dnsproxy_over_dnsmasq"] = {
                k: (a[k] / b[k] if a.get(k) is not None and b.get(k) else None)
                for k, _, _, better in FWD_METRICS if better is not None
            }
        result[run] = entry

    # ---- print ----
    cols = servers if not both else ["dnsproxy", "dnsmasq"]
    for n in sizes:
        entry = result["sizes"][str(n)]
        g = entry["table"]
        title = "%s Kubernetes services in %d namespaces + %d ServiceEntries" % (
            "{:,}".format(g["services"]), g["namespaces"], g["externals"])
        print_table(entry, cols, both, title, METRICS, args.rate)
    if args.forward:
        print_table(result["forward"], cols, both,
                    "Forwarding unique misses to one dnsmasq upstream (no cache anywhere)",
                    FWD_METRICS, args.forward_rate,
                    forward=True)
    if args.cache:
        print_table(result["cache"], cols, both,
                    "Repeated forwarded names, both caches on (%s names)"
                    % "{:,}".format(args.cache_names),
                    FWD_METRICS, args.cache_rate, forward=True,
                    cache_names=args.cache_names)
    if both:
        result["targets"] = targets(result, sizes, args)
        print_targets(result["targets"])
    print()
    print("  load average now: %s; noisy shared host: compare ratios within one run only"
          % " ".join(meta["loadavg_at_report"]))

    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2, sort_keys=False)
            f.write("\n")
        print("  results written to %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
