#!/usr/bin/python3
"""Table swaps under load (issue 8): how a 100k-service xDS push affects
queries in flight.

dnsproxy (pinned to CPU 0) gets its table from a control plane of our own
(test/blackbox/xds_server.py, in this process, on CPU 1), which pushes two
alternating versions of a large table (same names, other addresses) every
--interval seconds, --pushes times, while dnsperf (CPU 1) sends --rate q/s
of A queries for names of the table (hits in every version).  Reported:
queries sent and lost, SERVFAIL and other non-NOERROR replies, p50/p99/max
latency overall and in the second after each push, and the time the proxy
spent on each push: the delay from sending the push to receiving its ACK as
the control plane sees it (the proxy ACKs after building the new table
aside and swapping it in), and what the proxy logs for it ("table from xds
(version V): ... built in W ms after the last byte: X ms of work, the
compile in K slices, queries waited at most S ms (E ms of decoding as it
arrived)"): W, X, K, S and E.

    test/bench/swap.py                      # 100k services, 10 pushes 2 s apart, 20k q/s
    test/bench/swap.py --services 10000 --pushes 4 --out swap.json

A benchmark, not a test: ctest does not run it.  Needs dnsperf, taskset
and 2 CPUs; loopback only, free ports.  See test/bench/README.md.
"""

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BLACKBOX = os.path.join(ROOT, "test", "blackbox")
sys.path.insert(0, BLACKBOX)

NS = "ns-0"
NUM = r"([0-9]+(?:\.[0-9]+)?)"
BUILD = re.compile(r"table from xds \(version ([^)]+)\).*? built in " +
                   NUM + r" ms after the last byte: " + NUM +
                   r" ms of work, the compile in ([0-9]+) slices, queries "
                   r"waited at most " + NUM + r" ms \(" + NUM +
                   r" ms of decoding as it arrived\); the old table "
                   r"freed in " + NUM + r" ms")


def die(msg):
    sys.stderr.write("swap.py: %s\n" % msg)
    sys.exit(2)


def service(i):
    """(FQDN, namespace, shortname) of service i: 50 namespaces."""
    ns = "ns-%d" % (i % 50)
    short = "svc-%d" % i
    return "%s.%s.svc.cluster.local" % (short, ns), ns, short


def service_ip(version, i):
    """Version 0 in 10.96.0.0/12, version 1 in 10.112.0.0/12."""
    n = (96 + 16 * version) << 16 | (i + 1)
    return "10.%d.%d.%d" % (n >> 16, (n >> 8) & 255, n & 255)


def table_bytes(xds_server, n, version):
    nt = xds_server.NameTable()
    for i in range(n):
        name, ns, short = service(i)
        e = nt.table[name]
        e.ips.append(service_ip(version, i))
        e.registry = "Kubernetes"
        e.shortname, e.namespace = short, ns
    return nt.SerializeToString()


def pct(sorted_vals, q):
    if not sorted_vals:
        return None
    return sorted_vals[min(len(sorted_vals) - 1, int(q * len(sorted_vals)))]


def ms(v):
    return "-" if v is None else "%.2f" % (v * 1e3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, default=100000)
    ap.add_argument("--pushes", type=int, default=10)
    ap.add_argument("--interval", type=float, default=2.0,
                    help="seconds between pushes")
    ap.add_argument("--rate", type=int, default=20000, help="dnsperf -Q")
    ap.add_argument("--lead", type=float, default=2.0,
                    help="load before the first push and after the last")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="write the results as JSON")
    ap.add_argument("--dnsproxy-bin",
                    default=os.environ.get("DNSPROXY_BIN") or
                    os.path.join(ROOT, "build", "dnsproxy"))
    ap.add_argument("--snapshot", action="store_true",
                    help="run dnsproxy with --snapshot (in the temp dir): "
                    "every push is also written to disk")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temp dir (logs, dnsperf output)")
    a = ap.parse_args()

    for tool in ("dnsperf", "taskset"):
        if shutil.which(tool) is None:
            die("%s not found (apt-get install -y dnsperf; taskset is in "
                "util-linux)" % tool)
    if len(os.sched_getaffinity(0)) < 2 or os.cpu_count() < 2:
        die("needs 2 CPUs (dnsproxy on CPU 0, the load on CPU 1)")
    if not os.access(a.dnsproxy_bin, os.X_OK):
        die("no dnsproxy binary at %s (build it, or --dnsproxy-bin)"
            % a.dnsproxy_bin)
    a.dnsproxy_bin = os.path.abspath(a.dnsproxy_bin)
    # This process (the control plane's grpc threads, created later,
    # inherit it) and dnsperf on CPU 1; dnsproxy alone on CPU 0.
    os.sched_setaffinity(0, {1})
    os.environ["DNSPROXY_BIN"] = a.dnsproxy_bin
    import harness      # noqa: E402 (test/blackbox)
    import xds_server   # noqa: E402

    tmp = tempfile.mkdtemp(prefix="dnsproxy-swap-")
    cp = proxy = perf = None
    try:
        t = time.monotonic()
        tables = [table_bytes(xds_server, a.services, v) for v in (0, 1)]
        sys.stderr.write("tables: 2 x %d services, %.1f MB each, built in "
                         "%.1f s\n" % (a.services, len(tables[0]) / 1e6,
                                       time.monotonic() - t))
        duration = int(a.lead * 2 + a.pushes * a.interval + 0.999)
        rnd = random.Random(a.seed)
        # Line k asks for service perm[k mod N]: the name of a reply tells
        # k mod N, and its place in dnsperf's output the rest (below).
        perm = list(range(a.services))
        rnd.shuffle(perm)
        slot = {service(j)[0]: k for k, j in enumerate(perm)}
        data = os.path.join(tmp, "queries")
        with open(data, "w") as f:
            f.write("".join("%s A\n" % service(perm[k % a.services])[0]
                            for k in range(int(a.rate * duration * 1.1))))

        cp = xds_server.ControlPlane(push_on_connect=True).start()
        cp.set_table(tables[0], "swap-0")
        port, admin = harness.free_port(), harness.free_port()
        resolv = os.path.join(tmp, "resolv.conf")
        with open(resolv, "w") as f:
            f.write("search %s.svc.cluster.local svc.cluster.local "
                    "cluster.local\n" % NS)
        err_path = os.path.join(tmp, "dnsproxy.err")
        cmd = ["taskset", "-c", "0", a.dnsproxy_bin,
               "--listen", "127.0.0.1:%d" % port, "--namespace", NS,
               "--resolv-conf", resolv, "--admin", "127.0.0.1:%d" % admin,
               "--xds", cp.target, "--xds-plaintext"]
        if a.snapshot:
            cmd += ["--snapshot", os.path.join(tmp, "snapshot.pb")]
        with open(err_path, "wb") as err:
            proxy = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=err, stderr=err, cwd=tmp)
        t = time.monotonic()
        while True:
            try:
                first = cp.wait_for_version_ack("swap-0", 0.5)
                break
            except AssertionError:
                with open(err_path, errors="replace") as f:
                    log = f.read()
                if proxy.poll() is not None:
                    die("dnsproxy exited with %s:\n%s" % (proxy.returncode,
                                                           log[-3000:]))
                if time.monotonic() - t > 120:
                    die("no ACK of the first table within 120 s:\n%s"
                        % log[-3000:])
        initial = first.time - t
        addr = ("127.0.0.1", port)
        # correctness gate: version 0 answers
        for i in rnd.sample(range(a.services), 20):
            name = service(i)[0] + "."
            r = harness.parse_reply(harness.udp_exchange(
                addr, harness.build_query(name)))
            got = [x.data for x in r.answer if x.type == "A"]
            if got != [service_ip(0, i)]:
                die("%s answered %s, not %s" % (name, r.summary(),
                                                service_ip(0, i)))

        out_path = os.path.join(tmp, "dnsperf.out")
        perf_cmd = ["taskset", "-c", "1", "dnsperf", "-s", "127.0.0.1",
                    "-p", str(port), "-d", data, "-Q", str(a.rate),
                    "-l", str(duration), "-v", "-c", "8", "-q", "40000",
                    "-b", "4096"]
        pushes = []   # (version, nonce, send time)
        with open(out_path, "wb") as out:
            t0 = time.monotonic()
            perf = subprocess.Popen(perf_cmd, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT)
            for k in range(a.pushes):
                at = t0 + a.lead + k * a.interval
                time.sleep(max(0.0, at - time.monotonic()))
                v = (k + 1) % 2
                version = "swap-%d" % (k + 1)
                pt = time.monotonic()
                pushes.append((version, cp.push(tables[v], version), pt))
            perf.wait(duration + 60)
        acks = {}
        for version, nonce, pt in pushes:
            acks[nonce] = cp.wait_for_ack(nonce, 120).time
        nacks = [r for r in cp.requests if r.is_nack]

        # the last version answers
        last_v = a.pushes % 2
        wrong = 0
        for i in rnd.sample(range(a.services), 20):
            r = harness.parse_reply(harness.udp_exchange(
                addr, harness.build_query(service(i)[0] + ".")))
            if [x.data for x in r.answer if x.type == "A"] != \
                    [service_ip(last_v, i)]:
                wrong += 1
        with open("/proc/%d/status" % proxy.pid) as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        hwm_kib = int(status["VmHWM"].split()[0])
        rss_kib = int(status["VmRSS"].split()[0])
        with open(err_path, errors="replace") as f:
            log = f.read()
        logged = {m.group(1): {"wall_ms": float(m.group(2)),
                               "work_ms": float(m.group(3)),
                               "slices": int(m.group(4)),
                               "stall_ms": float(m.group(5)),
                               "early_ms": float(m.group(6)),
                               "free_ms": float(m.group(7))}
                  for m in BUILD.finditer(log)}

        replies, summary = harness.parse_dnsperf(out_path)
        sent = harness.leading_int(summary.get("Queries sent"))
        lost = harness.leading_int(summary.get("Queries lost"))
        if sent is None:
            die("no dnsperf summary; see %s" % out_path)
        rcodes = {}
        for rc, _, _ in replies:
            if rc != "T":   # T: timed out, i.e. lost
                rcodes[rc] = rcodes.get(rc, 0) + 1
        # Send times: the reply printed i-th asks for perm[k mod N]; its
        # line k is the one of that residue nearest to i (replies come
        # back in about send order; a lost query's T line is printed
        # dnsperf's 5 s timeout later).  dnsperf paces line k to t0 +
        # k / rate while it has room for outstanding queries (-q).
        n = a.services
        sends = []   # (send time, rcode, latency)
        for i, (rc, name, lat) in enumerate(replies):
            r = slot.get(name)
            if r is None:
                continue
            near = i - (5 * a.rate if rc == "T" else 0)
            k = r + n * int(round((near - r) / float(n)))
            sends.append((t0 + k / float(a.rate), rc, lat))
        achieved = sent / float(duration)
        lat_all = sorted(x[2] for x in replies if x[0] != "T")
        rows = []
        for version, nonce, pt in pushes:
            win = [x for x in sends if pt <= x[0] < pt + 1.0]
            lw = sorted(x[2] for x in win if x[1] != "T")
            rows.append({
                "version": version,
                "ack_delay_s": round(acks[nonce] - pt, 4),
                "logged": logged.get(version),
                "queries": len(win),
                "lost": sum(1 for x in win if x[1] == "T"),
                "servfail": sum(1 for x in win if x[1] == "SERVFAIL"),
                "p99_ms": None if not lw else round(pct(lw, 0.99) * 1e3, 3),
                "max_ms": None if not lw else round(lw[-1] * 1e3, 3)})
        res = {
            "services": a.services, "table_bytes": len(tables[0]),
            "pushes": a.pushes, "interval_s": a.interval, "rate": a.rate,
            "snapshot": a.snapshot,
            "duration_s": duration, "initial_ack_s": round(initial, 3),
            "sent": sent, "lost": lost, "rcodes": rcodes,
            "servfail": rcodes.get("SERVFAIL", 0),
            "not_noerror": sum(v for k, v in rcodes.items()
                               if k != "NOERROR"),
            "nacks": len(nacks), "wrong_after_last_push": wrong,
            "p50_ms": round(pct(lat_all, 0.5) * 1e3, 3),
            "p99_ms": round(pct(lat_all, 0.99) * 1e3, 3),
            "max_ms": round(lat_all[-1] * 1e3, 3),
            "achieved_qps": round(achieved),
            "vm_hwm_kib": hwm_kib, "vm_rss_kib": rss_kib,
            "listener_drops": harness.udp_socket_drops(local_port=port),
            "compile_source": "logged" if logged else
            "ack delay (control plane: push sent -> ACK received)",
            "per_push": rows}
        print_table(res)
        if a.out:
            with open(a.out, "w") as f:
                json.dump(res, f, indent=1)
        bad = lost or res["not_noerror"] or nacks or wrong
        return 1 if bad else 0
    finally:
        if perf is not None and perf.poll() is None:
            perf.kill()
            perf.wait()
        if proxy is not None and proxy.poll() is None:
            proxy.terminate()
            try:
                proxy.wait(10)
            except subprocess.TimeoutExpired:
                proxy.kill()
                proxy.wait()
        if cp is not None:
            cp.stop()
        if a.keep:
            sys.stderr.write("kept %s\n" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def print_table(r):
    print("swap under load: %d services (%.1f MB NameTable), %d pushes "
          "every %.1f s, dnsperf %d q/s for %d s (achieved %d q/s)" % (
              r["services"], r["table_bytes"] / 1e6, r["pushes"],
              r["interval_s"], r["rate"], r["duration_s"],
              r["achieved_qps"]))
    print("first table (cold): ACK %.3f s after the proxy started"
          % r["initial_ack_s"])
    print("queries sent %d, lost %s, SERVFAIL %d, other non-NOERROR %d, "
          "NACKs %d, wrong answers after the last push %d/20" % (
              r["sent"], r["lost"], r["servfail"],
              r["not_noerror"] - r["servfail"], r["nacks"],
              r["wrong_after_last_push"]))
    print("latency overall: p50 %.2f ms, p99 %.2f ms, max %.2f ms" % (
        r["p50_ms"], r["p99_ms"], r["max_ms"]))
    print("proxy memory: VmHWM %d KiB, VmRSS %d KiB at the end; queries "
          "dropped by its full UDP receive buffer: %s" % (
              r["vm_hwm_kib"], r["vm_rss_kib"], r["listener_drops"]))
    print("time spent on a push: %s" % r["compile_source"])
    print("%-8s %8s %8s %8s %6s %8s %8s %7s %8s %6s %8s %9s %9s" % (
        "push", "ACK (s)", "wall ms", "work ms", "slices", "stall ms",
        "early ms", "free ms", "queries", "lost", "SERVFAIL", "p99 (ms)",
        "max (ms)"))
    for row in r["per_push"]:
        lg = row["logged"] or {}

        def f(k, fmt="%.1f"):
            return "-" if k not in lg else fmt % lg[k]
        print("%-8s %8.3f %8s %8s %6s %8s %8s %7s %8d %6d %8d %9s %9s" % (
            row["version"], row["ack_delay_s"], f("wall_ms"), f("work_ms"),
            f("slices", "%d"), f("stall_ms"), f("early_ms"), f("free_ms"),
            row["queries"], row["lost"], row["servfail"],
            "-" if row["p99_ms"] is None else "%.2f" % row["p99_ms"],
            "-" if row["max_ms"] is None else "%.2f" % row["max_ms"]))
    print("(wall ms: the proxy's time from the push's last byte to the "
          "swap; work ms: what it spent on the push in that time (the rest "
          "of the decode, then the compile in slices, the loop answering "
          "queries between them); stall ms: the longest of those runs; "
          "early ms: its decoding while the push arrived, in steps between "
          "reads; free ms: the swap, the old table freed)")
    print("(per push: the queries sent in the 1 s after the push; send "
          "times from each reply's name and place in dnsperf's output)")


if __name__ == "__main__":
    sys.exit(main())
