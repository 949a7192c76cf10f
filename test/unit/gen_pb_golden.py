#!/usr/bin/python3
"""Writes the protobuf NameTable vectors of test/unit/golden/ with the
reference protobuf library (SPEC §1), for test_pb.c and the fuzz corpus.

    /usr/bin/python3 test/unit/gen_pb_golden.py [--big N OUT]

compiles nds/proto/istio/networking/nds/v1/nds.proto with protoc into a temporary directory and
writes:
  spec8_nametable.pb   the SPEC §8 fixture table, deterministic
                       serialization (map keys sorted), so nds_pb_build()
                       must reproduce it byte for byte;
  spec8_unknown.pb     the same table with unknown fields added by hand at
                       every level (NameTable, map entry, NameInfo), of
                       wire types 0, 1, 2 and 5; decodes to the same table.
With --big N OUT it writes a table of N Kubernetes services to OUT instead
(for timing the decoder).
"""

import importlib
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROTO_DIR = os.path.join(ROOT, "nds", "proto")
GOLDEN = os.path.join(HERE, "golden")

# SPEC §8 "Fixture" (same as test/blackbox/fixtures/spec8.json).
SPEC8 = {
    "www.google.com": (["1.1.1.1"], "External", "", "", []),
    "productpage.ns1.svc.cluster.local":
        (["9.9.9.9"], "Kubernetes", "productpage", "ns1", []),
    "example.ns2.svc.cluster.local":
        (["10.10.10.10"], "Kubernetes", "example", "ns2", []),
    "details.ns2.svc.cluster.remote":
        (["11.11.11.11", "12.12.12.12", "13.13.13.13", "14.14.14.14"],
         "Kubernetes", "details", "ns2", []),
    "svc-with-alt.ns1.svc.cluster.local":
        (["15.15.15.15"], "Kubernetes", "svc-with-alt", "ns1",
         ["svc-with-alt.ns1.svc.clusterset.local"]),
    "ipv6.localhost": (["2001:db8::ff00:42:8329"], "External", "", "", []),
    "dual.localhost":
        (["2.2.2.2", "2001:db8::ff00:42:8329"], "External", "", "", []),
    "ipv4.localhost": (["2.2.2.2"], "External", "", "", []),
    "*.b.wildcard": (["11.11.11.11"], "External", "", "", []),
    "*.wildcard": (["10.10.10.10"], "External", "", "", []),
    "*.svc.mesh.company.net": (["10.1.2.3"], "External", "", "", []),
    "example.localhost.": (["3.3.3.3"], "External", "", "", []),
}


def load_module(tmp):
    subprocess.run(["protoc", "-I", PROTO_DIR, "--python_out", tmp,
                    os.path.join(PROTO_DIR, "istio/networking/nds/v1/nds.proto")],
                   check=True)
    sys.path.insert(0, tmp)
    return importlib.import_module("istio.networking.nds.v1.nds_pb2")


def fill(nt, table):
    for key, (ips, reg, short, ns, alt) in table.items():
        info = nt.table[key]
        info.ips.extend(ips)
        info.registry = reg
        info.shortname = short
        info.namespace = ns
        info.alt_hosts.extend(alt)


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if not n:
            return out + bytes([b])
        out += bytes([b | 0x80])


def field(num, wt, payload):
    return varint(num << 3 | wt) + payload


def unknowns(base):
    """Unknown fields numbered from base: varint, fixed64, bytes, fixed32."""
    return (field(base, 0, varint(300)) +
            field(base + 1, 1, b"\x01" * 8) +
            field(base + 2, 2, varint(3) + b"xyz") +
            field(base + 3, 5, b"\x02" * 4))


def with_unknowns(pb2, table):
    """The table, one entry at a time, with unknown fields at each level
    (hand-built around protobuf's own encoding of each NameInfo)."""
    out = unknowns(100)
    for key in sorted(table):
        one = pb2.NameTable()
        fill(one, {key: table[key]})
        info = one.table[key].SerializeToString(deterministic=True)
        info = unknowns(6) + info + unknowns(1000)
        k = key.encode()
        entry = (unknowns(3) + field(1, 2, varint(len(k)) + k) +
                 unknowns(20) + field(2, 2, varint(len(info)) + info) +
                 unknowns(536870900))
        out += field(1, 2, varint(len(entry)) + entry) + unknowns(2)
    return out


def big(pb2, n):
    nt = pb2.NameTable()
    for i in range(n):
        ns = "ns%d" % (i % 50)
        name = "svc-%d" % i
        info = nt.table["%s.%s.svc.cluster.local" % (name, ns)]
        info.ips.append("10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255,
                                         i & 255))
        info.registry = "Kubernetes"
        info.shortname = name
        info.namespace = ns
    return nt.SerializeToString(deterministic=True)


def fields(info):
    return (list(info.ips), info.registry, info.shortname, info.namespace,
            list(info.alt_hosts))


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    print("%s: %d bytes" % (path, len(data)))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        pb2 = load_module(tmp)
        if len(sys.argv) == 4 and sys.argv[1] == "--big":
            write(sys.argv[3], big(pb2, int(sys.argv[2])))
            return
        nt = pb2.NameTable()
        fill(nt, SPEC8)
        write(os.path.join(GOLDEN, "spec8_nametable.pb"),
              nt.SerializeToString(deterministic=True))
        data = with_unknowns(pb2, SPEC8)
        check = pb2.NameTable()
        check.ParseFromString(data)
        assert {k: fields(check.table[k]) for k in check.table} == \
            {k: fields(nt.table[k]) for k in nt.table}, \
            "unknown-field vector decodes wrong"
        write(os.path.join(GOLDEN, "spec8_unknown.pb"), data)


if __name__ == "__main__":
    main()
