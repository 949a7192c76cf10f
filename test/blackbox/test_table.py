#!/usr/bin/python3
"""Table semantics seen through DNS (SPEC §1 JSON/protobuf tables, §2 name
expansion and collisions, D5, D12-D15, D17, D18, §10.1): what a --table
file makes the proxy answer."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import assert_local, assert_forwarded  # noqa: E402

S0 = "ns1.svc.cluster.local."


def k8s(ips, short, ns, alt=None, **extra):
    e = {"ips": ips, "registry": "Kubernetes", "shortname": short,
         "namespace": ns}
    if alt is not None:
        e["altHosts"] = alt
    e.update(extra)
    return e


def ext(ips, **extra):
    e = {"ips": ips, "registry": "External"}
    e.update(extra)
    return e


TABLE = {
    "unknownTopLevelKey": {"ignored": True},
    "table": {
        # D5: Kubernetes beats non-Kubernetes, whichever comes first.
        "shared.ns1.svc.cluster.local": k8s(["20.0.0.1"], "shared", "ns1"),
        "shared.ns1.svc.cluster.local.": ext(["20.0.0.2"]),
        "ext.example": ext(["20.0.0.4"]),
        "zz.ns1.svc.cluster.local": k8s(["20.0.0.3"], "zz", "ns1",
                                        alt=["ext.example"]),
        # non-Kubernetes duplicates append their IPs, per family.
        "dup.example": ext(["30.0.0.1"]),
        "dup.example.": ext(["30.0.0.2", "2001:db8::30"]),
        # D13: Kubernetes + Kubernetes: the later key (sorted) replaces.
        "k1.ns1.svc.cluster.local": k8s(["40.0.0.1"], "k1", "ns1",
                                        alt=["kk.example"]),
        "k2.ns1.svc.cluster.local": k8s(["40.0.0.2"], "k2", "ns1",
                                        alt=["kk.example"]),
        # D14: an address name never takes another entry's CNAME.
        "a.example": ext(["50.0.0.1"]),
        "a.example.ns1.svc.cluster.local": ext(["50.0.0.2"]),
        "c.example.ns1.svc.cluster.local": ext(["50.0.0.3"]),
        "zzz.ns1.svc.cluster.local": k8s(["50.0.0.4"], "zzz", "ns1",
                                         alt=["c.example"]),
        # D12: the domain suffix test respects label boundaries.
        "a.bsvc.cluster.local": k8s(["60.0.0.1"], "a", "bsvc"),
        # D15: no short forms without shortname or namespace.
        "noshort.ns1.svc.cluster.local": k8s(["61.0.0.1"], "", "ns1"),
        "nons.ns1.svc.cluster.local": k8s(["61.0.0.2"], "nons", ""),
        # only the exact string "Kubernetes" is the Kubernetes registry.
        "lower.ns1.svc.cluster.local": {"ips": ["62.0.0.1"],
                                        "registry": "kubernetes",
                                        "shortname": "lower",
                                        "namespace": "ns1"},
        # a Kubernetes key ending in "." produces no names.
        "dotted.ns1.svc.cluster.local.": k8s(["63.0.0.1"], "dotted", "ns1"),
        # IP parsing: strict, invalid dropped, order and duplicates kept,
        # ::ffff:a.b.c.d is IPv6.
        "mixed.example": ext(["1.2.3.4", "not-an-ip", "1.2.3", "10.0.0.1/24",
                              "2001:db8::1", "::ffff:5.6.7.8", "",
                              "1.2.3.4.5", "2001:db8::zz"]),
        "order.example": ext(["9.0.0.1", "9.0.0.1", "9.0.0.2"]),
        "noip.example": ext(["bogus", "300.1.1.1"]),
        "empty.example": ext([]),
        "noipk.ns1.svc.cluster.local": k8s(["x"], "noipk", "ns1"),
        # JSON: alt_hosts accepted too, unknown keys ignored, null =
        # default, alt hosts of non-Kubernetes entries ignored.
        "alt2.ns1.svc.cluster.local": {"ips": ["64.0.0.1"],
                                       "registry": "Kubernetes",
                                       "shortname": "alt2",
                                       "namespace": "ns1",
                                       "alt_hosts": ["alt2.other.example"],
                                       "somethingNew": [1, 2]},
        "nullreg.example": {"ips": ["65.0.0.1"], "registry": None,
                            "shortname": None, "altHosts": None},
        "ext-alt.example": ext(["66.0.0.1"], altHosts=["ignored.example"]),
        # keys are matched case-insensitively, owners are lower case.
        "UPPER.Example": ext(["67.0.0.1"]),
        # per-pod headless names and the headless service.
        "mysql-0.mysql.ns1.svc.cluster.local": k8s(["68.0.0.1"],
                                                   "mysql-0.mysql", "ns1"),
        "mysql.ns1.svc.cluster.local": k8s(["68.0.0.1", "68.0.0.2",
                                            "68.0.0.3"], "mysql", "ns1"),
    }}


def A(owner, *ips):
    return [(owner, "A", ip) for ip in ips]


class Table(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proxy = harness.Proxy(table=TABLE, namespace="ns1")
        cls.addClassCleanup(cls.proxy.close)
        cls.proxy.start()

    def setUp(self):
        self.proxy.assert_alive()

    def local(self, name, answer, qtype="A", ordered=True):
        for proto in ("udp", "tcp"):
            with self.subTest(name=name, qtype=qtype, proto=proto):
                r = self.proxy.ask(name, qtype, proto=proto)
                assert_local(self, r, answer, ordered=ordered)

    def fwd(self, name, qtype="A"):
        with self.subTest(name=name, qtype=qtype):
            assert_forwarded(self, self.proxy.ask(name, qtype))

    def test_d5_kubernetes_beats_external_key_order_k8s_first(self):
        self.local("shared.ns1.svc.cluster.local.",
                   A("shared.ns1.svc.cluster.local.", "20.0.0.1"))
        self.local("shared.", A("shared.", "20.0.0.1"))

    def test_d5_kubernetes_beats_external_key_order_external_first(self):
        self.local("ext.example.", A("ext.example.", "20.0.0.3"))

    def test_external_duplicates_append_ips_per_family(self):
        self.local("dup.example.", A("dup.example.", "30.0.0.1", "30.0.0.2"),
                   ordered=False)
        self.local("dup.example.", [("dup.example.", "AAAA",
                                     "2001:db8::30")], qtype="AAAA")

    def test_d13_kubernetes_collision_later_key_wins(self):
        self.local("kk.example.", A("kk.example.", "40.0.0.2"))
        self.local("k1.", A("k1.", "40.0.0.1"))

    def test_d14_address_name_never_takes_a_cname(self):
        self.local("a.example.", A("a.example.", "50.0.0.1"))
        self.local("a.example." + S0, A("a.example." + S0, "50.0.0.2"))
        self.local("c.example." + S0, A("c.example." + S0, "50.0.0.3"))
        self.local("c.example.", A("c.example.", "50.0.0.4"))

    def test_d12_domain_suffix_respects_label_boundaries(self):
        self.local("a.bsvc.cluster.local.",
                   A("a.bsvc.cluster.local.", "60.0.0.1"))
        for name in ("a.bsvc.", "a.bsvc.svc.", "a."):
            self.fwd(name)

    def test_d15_no_short_forms_without_shortname_or_namespace(self):
        self.local("noshort.ns1.svc.cluster.local.",
                   A("noshort.ns1.svc.cluster.local.", "61.0.0.1"))
        self.local("nons.ns1.svc.cluster.local.",
                   A("nons.ns1.svc.cluster.local.", "61.0.0.2"))
        for name in (".", "ns1.", "ns1.svc.", "nons.", "nons.svc."):
            self.fwd(name)

    def test_only_exact_kubernetes_registry_gets_short_forms(self):
        self.local("lower.ns1.svc.cluster.local.",
                   A("lower.ns1.svc.cluster.local.", "62.0.0.1"))
        for name in ("lower.", "lower.ns1.", "lower.ns1.svc."):
            self.fwd(name)

    def test_kubernetes_key_with_trailing_dot_produces_no_names(self):
        for name in ("dotted.ns1.svc.cluster.local.", "dotted.",
                     "dotted.ns1."):
            self.fwd(name)

    def test_ips_parsed_strictly_invalid_dropped(self):
        self.local("mixed.example.", A("mixed.example.", "1.2.3.4"))
        self.local("mixed.example.",
                   [("mixed.example.", "AAAA", "2001:db8::1"),
                    ("mixed.example.", "AAAA", "::ffff:5.6.7.8")],
                   qtype="AAAA", ordered=False)

    def test_duplicate_ips_kept(self):
        self.local("order.example.",
                   A("order.example.", "9.0.0.1", "9.0.0.1", "9.0.0.2"),
                   ordered=False)

    def test_entry_without_valid_ip_is_skipped(self):
        for name in ("noip.example.", "noip.example." + S0, "empty.example.",
                     "noipk.", "noipk.ns1.svc.cluster.local."):
            for qtype in ("A", "AAAA"):
                self.fwd(name, qtype)

    def test_json_alt_hosts_spelling_unknown_keys_and_nulls(self):
        self.local("alt2.other.example.", A("alt2.other.example.",
                                            "64.0.0.1"))
        self.local("alt2.", A("alt2.", "64.0.0.1"))
        self.local("nullreg.example.", A("nullreg.example.", "65.0.0.1"))

    def test_alt_hosts_of_external_entries_ignored(self):
        self.local("ext-alt.example.", A("ext-alt.example.", "66.0.0.1"))
        self.fwd("ignored.example.")

    def test_keys_lowercased(self):
        self.local("upper.example.", A("upper.example.", "67.0.0.1"))
        r = self.proxy.ask("UPPER.EXAMPLE.")
        assert_local(self, r, A("upper.example.", "67.0.0.1"))
        self.assertEqual(r.question[0][0], "UPPER.EXAMPLE.")

    def test_per_pod_headless_names(self):
        for name in ("mysql-0.mysql.ns1.svc.cluster.local.",
                     "mysql-0.mysql.ns1.", "mysql-0.mysql.ns1.svc.",
                     "mysql-0.mysql."):
            self.local(name, A(name, "68.0.0.1"))
        self.local("mysql-0.mysql.ns1." + S0,
                   [("mysql-0.mysql.ns1." + S0, "CNAME",
                     "mysql-0.mysql.ns1.svc.cluster.local.")] +
                   A("mysql-0.mysql.ns1.svc.cluster.local.", "68.0.0.1"))
        self.local("mysql.", A("mysql.", "68.0.0.1", "68.0.0.2",
                               "68.0.0.3"), ordered=False)


BOOKINFO = {"table": {
    "reviews.bookinfo.svc.cluster.local": k8s(["10.0.0.9"], "reviews",
                                              "bookinfo"),
    "api.example.com": ext(["10.0.0.10"]),
    "*.example.com": ext(["10.0.0.11"]),
}}
FQDN = "reviews.bookinfo.svc.cluster.local."


class WorkedExample(unittest.TestCase):
    """SPEC §2 worked example and its variations."""

    def proxy(self, ns):
        p = harness.Proxy(table=BOOKINFO, namespace=ns,
                          search=["%s.svc.cluster.local" % ns,
                                  "svc.cluster.local", "cluster.local"])
        self.addCleanup(p.close)
        p.start()
        return p

    def test_proxy_in_default(self):
        p = self.proxy("default")
        s0 = "default.svc.cluster.local."
        for name in (FQDN, "reviews.bookinfo.", "reviews.bookinfo.svc."):
            with self.subTest(name=name):
                assert_local(self, p.ask(name), A(name, "10.0.0.9"))
        for name in (FQDN + s0, "reviews.bookinfo." + s0,
                     "reviews.bookinfo.svc." + s0):
            with self.subTest(name=name):
                assert_local(self, p.ask(name), [(name, "CNAME", FQDN)] +
                             A(FQDN, "10.0.0.9"))
        for name in ("reviews.", "reviews." + s0,
                     "reviews.bookinfo.svc.cluster."):
            with self.subTest(name=name):
                assert_forwarded(self, p.ask(name))
        assert_local(self, p.ask("api.example.com."),
                     A("api.example.com.", "10.0.0.10"))
        assert_local(self, p.ask("api.example.com." + s0),
                     [("api.example.com." + s0, "CNAME", "api.example.com.")]
                     + A("api.example.com.", "10.0.0.10"))
        # D17: a wildcard reached through the search CNAME
        assert_local(self, p.ask("x.example.com." + s0),
                     [("x.example.com." + s0, "CNAME", "x.example.com.")] +
                     A("x.example.com.", "10.0.0.11"))
        assert_local(self, p.ask("x.y.example.com."),
                     A("x.y.example.com.", "10.0.0.11"))
        assert_forwarded(self, p.ask("example.com."))

    def test_proxy_in_bookinfo(self):
        p = self.proxy("bookinfo")
        s0 = "bookinfo.svc.cluster.local."
        for name in (FQDN, "reviews.", "reviews.bookinfo.",
                     "reviews.bookinfo.svc."):
            with self.subTest(name=name):
                assert_local(self, p.ask(name), A(name, "10.0.0.9"))
        # reviews. expands to the FQDN, which ends with search[0]: no CNAME
        assert_forwarded(self, p.ask(FQDN + s0))
        assert_local(self, p.ask("reviews.bookinfo." + s0),
                     [("reviews.bookinfo." + s0, "CNAME", FQDN)] +
                     A(FQDN, "10.0.0.9"))


def pb_varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def pb_bytes(field, data):
    if isinstance(data, str):
        data = data.encode()
    return pb_varint(field << 3 | 2) + pb_varint(len(data)) + data


def pb_table(table):
    """NameTable in protobuf binary form (SPEC §1 wire form)."""
    out = b""
    for key, info in table.items():
        v = b"".join(pb_bytes(1, ip) for ip in info.get("ips", []))
        for field, name in ((2, "registry"), (3, "shortname"),
                            (4, "namespace")):
            if info.get(name):
                v += pb_bytes(field, info[name])
        v += b"".join(pb_bytes(5, h) for h in info.get("altHosts", []))
        out += pb_bytes(1, pb_bytes(1, key) + pb_bytes(2, v))
    return out


class Formats(unittest.TestCase):
    """§10.1: JSON or protobuf binary, told apart by the first non-space
    byte; a 0-byte file and a JSON file without "table" are empty
    tables."""

    def start(self, table):
        p = harness.Proxy(table=table, namespace="ns1")
        self.addCleanup(p.close)
        p.start()
        return p

    def test_protobuf_binary_table(self):
        t = {"pb.ns1.svc.cluster.local": k8s(["70.0.0.1", "2001:db8::70"],
                                             "pb", "ns1",
                                             alt=["pb.alt.example"]),
             "pbext.example": ext(["70.0.0.2"])}
        p = self.start(pb_table(t))
        for name in ("pb.ns1.svc.cluster.local.", "pb.", "pb.alt.example."):
            with self.subTest(name=name):
                assert_local(self, p.ask(name), A(name, "70.0.0.1"))
        assert_local(self, p.ask("pb.", "AAAA"),
                     [("pb.", "AAAA", "2001:db8::70")])
        assert_local(self, p.ask("pbext.example."),
                     A("pbext.example.", "70.0.0.2"))

    def test_protobuf_duplicate_keys_last_wins_unknown_fields_skipped(self):
        blob = (pb_table({"dk.example": ext(["71.0.0.1"])}) +
                pb_varint(9 << 3 | 0) + pb_varint(12345) +
                pb_table({"dk.example": ext(["71.0.0.2"])}))
        p = self.start(blob)
        assert_local(self, p.ask("dk.example."), A("dk.example.", "71.0.0.2"))

    def test_json_with_leading_whitespace(self):
        p = self.start(" \n\t" + __import__("json").dumps(
            {"table": {"ws.example": ext(["72.0.0.1"])}}))
        assert_local(self, p.ask("ws.example."), A("ws.example.", "72.0.0.1"))

    def test_empty_file_and_missing_table_key_are_empty_tables(self):
        for content in (b"", b"{}", b'{"table": {}}', b'{"table": null}'):
            with self.subTest(content=content):
                p = self.start(content)
                assert_forwarded(self, p.ask("ws.example."))
                # a later good table loads on SIGHUP
                p.reload({"table": {"ws.example": ext(["72.0.0.2"])}})
                for _ in range(int(100 * harness.SLOW)):
                    r = p.ask("ws.example.")
                    if r.answer:
                        break
                    __import__("time").sleep(0.1)
                assert_local(self, r, A("ws.example.", "72.0.0.2"))
                self.assertEqual(p.stop(), 0)


if __name__ == "__main__":
    unittest.main()
