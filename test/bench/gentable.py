#!/usr/bin/python3
"""Generate the benchmark inputs for one table size, or (--misses) for the
forwarding run.

Writes into OUTDIR:
  table.json   NameTable JSON for dnsproxy (SPEC §1): N Kubernetes services
               spread over ~50 namespaces, plus a few External ServiceEntries
  table.pb     the same NameTable in protobuf binary form
               (nds/proto/istio/networking/nds/v1/nds.proto), which
               dnsproxy's --table detects; written by hand, so no protoc
  hosts        the same FQDNs -> IPs as a hosts file for dnsmasq --addn-hosts
  queries.txt  dnsperf input: A queries for a random sample of FQDNs that both
               servers know (Kubernetes services and non-wildcard externals)
  probe.txt    "<fqdn> <ip>" lines: a sample used to check answers are correct

With --misses (forwarding run; no table, every name unique and unknown to
the server under test, answered by the upstream's --address=/miss.example/):
  queries.txt  "q<i>.miss.example A" for the measured phases
  warm.txt     "w<i>.miss.example A" for the warm-up
  probe.txt    "check<i>.miss.example 198.51.100.1" lines for the check
  meta.json    what was generated

Deterministic for a given --seed.
"""

import argparse
import ipaddress
import json
import os
import random

# Non-wildcard externals are written to the hosts file and queried; the
# wildcard is only in the NameTable (dnsmasq's hosts file cannot express it).
EXTERNALS = [
    ("api.example.com", ["240.240.0.1"]),
    ("db.example.org", ["240.240.0.2", "240.240.0.3"]),
    ("payments.partner.example.net", ["240.240.0.4"]),
    ("storage.example.com", ["240.240.0.5"]),
    ("auth.example.io", ["240.240.0.6"]),
]
WILDCARD_EXTERNALS = [("*.wildcard.example.com", ["240.240.1.1"])]


def cluster_ips(rng, n):
    """n distinct ClusterIPs from 10.96.0.0/12, skipping .0, .1 and .10."""
    net = ipaddress.IPv4Network("10.96.0.0/12")
    base = int(net.network_address)
    reserved = {0, 1, 10, net.num_addresses - 1}
    # sample() on a range does not materialise it.
    picks = rng.sample(range(net.num_addresses), n + len(reserved))
    out = [p for p in picks if p not in reserved][:n]
    return [str(ipaddress.IPv4Address(base + p)) for p in out]


MISS_ZONE = "miss.example"
MISS_IP = "198.51.100.1"


def write_misses(args):
    """Inputs of the forwarding run: unique names below MISS_ZONE."""
    def lines(path, prefix, n):
        with open(os.path.join(args.outdir, path), "w") as f:
            for i in range(n):
                f.write("%s%d.%s A\n" % (prefix, i, MISS_ZONE))
    lines("queries.txt", "q", args.queries)
    lines("warm.txt", "w", min(args.queries, 200000))
    with open(os.path.join(args.outdir, "probe.txt"), "w") as f:
        for i in range(args.probe):
            f.write("check%d.%s %s\n" % (i, MISS_ZONE, MISS_IP))
    with open(os.path.join(args.outdir, "meta.json"), "w") as f:
        json.dump({"kind": "forward", "zone": MISS_ZONE, "ip": MISS_IP,
                   "query_lines": args.queries}, f)
        f.write("\n")


# The NameTable protobuf (nds.proto), encoded by hand (standard library
# only):  message NameTable { map<string, NameInfo> table = 1; }
#         message NameInfo { repeated string ips = 1; string registry = 2;
#                            string shortname = 3; string namespace = 4; }
# A map entry is a nested message {string key = 1; NameInfo value = 2;}.
def pb_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_bytes(field, data):
    """A length-delimited field (wire type 2)."""
    return pb_varint(field << 3 | 2) + pb_varint(len(data)) + data


def pb_name_table(table):
    """NameTable bytes of {host: {"ips", "registry", "shortname",
    "namespace"}}; empty strings are left out, as proto3 does."""
    out = bytearray()
    for host, info in table.items():
        v = b"".join(pb_bytes(1, ip.encode()) for ip in info["ips"])
        for field, key in ((2, "registry"), (3, "shortname"),
                           (4, "namespace")):
            if info.get(key):
                v += pb_bytes(field, info[key].encode())
        out += pb_bytes(1, pb_bytes(1, host.encode()) + pb_bytes(2, v))
    return bytes(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int)
    ap.add_argument("--misses", action="store_true",
                    help="write the forwarding run's inputs instead")
    ap.add_argument("--namespaces", type=int, default=50)
    ap.add_argument("--queries", type=int, default=100000)
    ap.add_argument("--probe", type=int, default=200,
                    help="names written to probe.txt for the correctness check")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--outdir", required=True)
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    if args.misses:
        write_misses(args)
        return
    if args.services is None:
        ap.error("--services or --misses is required")

    n = args.services
    nns = max(1, min(args.namespaces, n))
    rng = random.Random(args.seed)
    os.makedirs(args.outdir, exist_ok=True)

    table = {}
    answers = []  # (fqdn, [ips]) known to both servers
    # Services are numbered globally and laid out in contiguous blocks per
    # namespace, so svc-0 .. svc-(n/nns - 1) live in ns-0.
    per_ns = -(-n // nns)
    ips = cluster_ips(rng, n)
    for i in range(n):
        ns = "ns-%d" % (i // per_ns)
        short = "svc-%d" % i
        host = "%s.%s.svc.cluster.local" % (short, ns)
        table[host] = {"ips": [ips[i]], "registry": "Kubernetes",
                       "shortname": short, "namespace": ns}
        answers.append((host, [ips[i]]))
    for host, hips in EXTERNALS:
        table[host] = {"ips": hips, "registry": "External"}
        answers.append((host, hips))
    for host, hips in WILDCARD_EXTERNALS:
        table[host] = {"ips": hips, "registry": "External"}

    with open(os.path.join(args.outdir, "table.json"), "w") as f:
        json.dump({"table": table}, f, separators=(",", ":"))
        f.write("\n")

    with open(os.path.join(args.outdir, "table.pb"), "wb") as f:
        f.write(pb_name_table(table))

    with open(os.path.join(args.outdir, "hosts"), "w") as f:
        for host, hips in answers:
            for ip in hips:
                f.write("%s %s\n" % (ip, host))

    with open(os.path.join(args.outdir, "queries.txt"), "w") as f:
        names = [h for h, _ in answers]
        for _ in range(args.queries):
            f.write("%s A\n" % rng.choice(names))

    with open(os.path.join(args.outdir, "meta.json"), "w") as f:
        json.dump({"services": n, "namespaces": len({v["namespace"] for v in table.values()
                                                     if "namespace" in v}),
                   "externals": len(EXTERNALS) + len(WILDCARD_EXTERNALS),
                   "queried_names": len(answers), "query_lines": args.queries,
                   "seed": args.seed}, f)
        f.write("\n")

    with open(os.path.join(args.outdir, "probe.txt"), "w") as f:
        # The first line is the start-up probe name; the brief's dig example.
        first = answers[1] if n > 1 else answers[0]
        f.write("%s %s\n" % (first[0], " ".join(first[1])))
        for host, hips in rng.sample(answers, min(args.probe, len(answers))):
            f.write("%s %s\n" % (host, " ".join(hips)))


if __name__ == "__main__":
    main()
