#!/usr/bin/python3
"""SPEC §8 reference cases (Istio's dns_test.go, restated) against the real
binary: every locally answered case over UDP and TCP, sequentially and in
parallel, plus §2-derived forms of the same fixture.

Fixture: fixtures/spec8.json, proxy namespace ns1, domain
ns1.svc.cluster.local, search ns1.svc.cluster.local svc.cluster.local
cluster.local.  Forwarded cases (5, 13, 21, unknown names) must carry the
fake upstream's answer, relayed unchanged (harness.assert_forwarded);
test_forward.py covers forwarding itself.
"""

import concurrent.futures
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import assert_local, assert_forwarded  # noqa: E402

S0 = "ns1.svc.cluster.local."
V6 = "2001:db8::ff00:42:8329"
PP = "productpage.ns1.svc.cluster.local."
DETAILS = [("details.ns2.svc.cluster.remote.", "A", ip) for ip in
           ("11.11.11.11", "12.12.12.12", "13.13.13.13", "14.14.14.14")]


def A(owner, *ips):
    return [(owner, "A", ip) for ip in ips]


def CNAME(owner, target):
    return [(owner, "CNAME", target)]


# (label, qname, qtype, expected).  expected: "fwd", or (answer, ordered).
# ordered=False: the address records are shuffled (D6): compare as a set.
CASES = [
    ("01", "www.google.com.", "A", (A("www.google.com.", "1.1.1.1"), True)),
    ("02", "www.google.com." + S0, "A",
     (CNAME("www.google.com." + S0, "www.google.com.") +
      A("www.google.com.", "1.1.1.1"), True)),
    ("04", PP, "A", (A(PP, "9.9.9.9"), True)),
    ("05", "productpage.ns1.svc.cluster.local." + S0, "A", "fwd"),
    ("06", "productpage.ns1.", "A", (A("productpage.ns1.", "9.9.9.9"), True)),
    ("07", "productpage.", "A", (A("productpage.", "9.9.9.9"), True)),
    # D18: the search CNAME of a Kubernetes short form points at the FQDN.
    ("08", "productpage.ns1." + S0, "A",
     (CNAME("productpage.ns1." + S0, PP) + A(PP, "9.9.9.9"), True)),
    ("09", "productpage.ns1." + S0, "AAAA", ([], True)),
    ("10", "example.ns2.", "A", (A("example.ns2.", "10.10.10.10"), True)),
    ("11", "example.ns2.svc.cluster.local.", "A",
     (A("example.ns2.svc.cluster.local.", "10.10.10.10"), True)),
    ("12", "example.ns2.svc.", "A",
     (A("example.ns2.svc.", "10.10.10.10"), True)),
    ("13", "example.", "A", "fwd"),
    ("14", "svc-with-alt.", "A", (A("svc-with-alt.", "15.15.15.15"), True)),
    ("15", "svc-with-alt.ns1.", "A",
     (A("svc-with-alt.ns1.", "15.15.15.15"), True)),
    ("16", "svc-with-alt.ns1.svc.", "A",
     (A("svc-with-alt.ns1.svc.", "15.15.15.15"), True)),
    ("17", "svc-with-alt.ns1.svc.cluster.local.", "A",
     (A("svc-with-alt.ns1.svc.cluster.local.", "15.15.15.15"), True)),
    ("18", "svc-with-alt.ns1.svc.clusterset.local.", "A",
     (A("svc-with-alt.ns1.svc.clusterset.local.", "15.15.15.15"), True)),
    # 19, 20: D6, the set of four; the order is unit-tested.
    ("19_20", "details.ns2.svc.cluster.remote.", "A", (DETAILS, False)),
    ("21", "details.ns2.", "A", "fwd"),
    ("22", "dual.localhost.", "A", (A("dual.localhost.", "2.2.2.2"), True)),
    ("23", "foo.wildcard.", "A", (A("foo.wildcard.", "10.10.10.10"), True)),
    ("24", "a.b.wildcard.", "A", (A("a.b.wildcard.", "11.11.11.11"), True)),
    # D17: concrete owner, never "*.wildcard.".
    ("25", "foo.wildcard." + S0, "A",
     (CNAME("foo.wildcard." + S0, "foo.wildcard.") +
      A("foo.wildcard.", "10.10.10.10"), True)),
    ("26", "foo.svc.mesh.company.net.", "A",
     (A("foo.svc.mesh.company.net.", "10.1.2.3"), True)),
    ("27", "foo.foons.svc.mesh.company.net.", "A",
     (A("foo.foons.svc.mesh.company.net.", "10.1.2.3"), True)),
    ("28", "foo.svc.mesh.company.net." + S0, "A",
     (CNAME("foo.svc.mesh.company.net." + S0, "foo.svc.mesh.company.net.") +
      A("foo.svc.mesh.company.net.", "10.1.2.3"), True)),
    ("29", "dual.localhost.", "AAAA",
     ([("dual.localhost.", "AAAA", V6)], True)),
    ("30", "ipv6.localhost.", "A", ([], True)),
    ("31", "ipv4.localhost.", "AAAA", ([], True)),
    ("36", "example.localhost.", "A",
     (A("example.localhost.", "3.3.3.3"), True)),
]

# Forms SPEC §2 generates from the same fixture (and some it must not).
DERIVED = [
    # name.ns.svc. and its search CNAME (D18 -> FQDN).
    ("pp_ns_svc", "productpage.ns1.svc.", "A",
     (A("productpage.ns1.svc.", "9.9.9.9"), True)),
    ("pp_ns_svc_search", "productpage.ns1.svc." + S0, "A",
     (CNAME("productpage.ns1.svc." + S0, PP) + A(PP, "9.9.9.9"), True)),
    ("pp_short_aaaa_empty", "productpage.", "AAAA", ([], True)),
    # never name.ns.svc.cluster.
    ("pp_ns_svc_cluster", "productpage.ns1.svc.cluster.", "A", "fwd"),
    # another namespace's short forms get a CNAME to the FQDN (D18).
    ("example_ns_search", "example.ns2." + S0, "A",
     (CNAME("example.ns2." + S0, "example.ns2.svc.cluster.local.") +
      A("example.ns2.svc.cluster.local.", "10.10.10.10"), True)),
    ("example_ns_svc_search", "example.ns2.svc." + S0, "A",
     (CNAME("example.ns2.svc." + S0, "example.ns2.svc.cluster.local.") +
      A("example.ns2.svc.cluster.local.", "10.10.10.10"), True)),
    ("example_fqdn_search", "example.ns2.svc.cluster.local." + S0, "A",
     (CNAME("example.ns2.svc.cluster.local." + S0,
            "example.ns2.svc.cluster.local.") +
      A("example.ns2.svc.cluster.local.", "10.10.10.10"), True)),
    # a remote-domain Kubernetes entry: FQDN only, plus its search CNAME.
    ("details_search", "details.ns2.svc.cluster.remote." + S0, "A",
     (CNAME("details.ns2.svc.cluster.remote." + S0,
            "details.ns2.svc.cluster.remote.") + DETAILS, False)),
    ("details_short", "details.", "A", "fwd"),
    ("details_ns_svc", "details.ns2.svc.", "A", "fwd"),
    # alt hosts CNAME to themselves (D18 applies to short forms only).
    ("alt_search", "svc-with-alt.ns1.svc.clusterset.local." + S0, "A",
     (CNAME("svc-with-alt.ns1.svc.clusterset.local." + S0,
            "svc-with-alt.ns1.svc.clusterset.local.") +
      A("svc-with-alt.ns1.svc.clusterset.local.", "15.15.15.15"), True)),
    # search CNAME + AAAA: CNAME and AAAA for dual, nothing for v4-only.
    ("dual_search_aaaa", "dual.localhost." + S0, "AAAA",
     (CNAME("dual.localhost." + S0, "dual.localhost.") +
      [("dual.localhost.", "AAAA", V6)], True)),
    ("ipv4_search_aaaa_empty_no_cname", "ipv4.localhost." + S0, "AAAA",
     ([], True)),
    ("ipv6_search_a_empty_no_cname", "ipv6.localhost." + S0, "A",
     ([], True)),
    ("ipv6_aaaa", "ipv6.localhost.", "AAAA",
     ([("ipv6.localhost.", "AAAA", V6)], True)),
    # trailing-dot key: the name is example.localhost. (no double dot).
    ("trailing_dot_search", "example.localhost." + S0, "A",
     (CNAME("example.localhost." + S0, "example.localhost.") +
      A("example.localhost.", "3.3.3.3"), True)),
    # wildcards: most specific first at any depth; apex never matched.
    ("wildcard_deep", "x.y.z.wildcard.", "A",
     (A("x.y.z.wildcard.", "10.10.10.10"), True)),
    ("wildcard_deep_specific", "x.a.b.wildcard.", "A",
     (A("x.a.b.wildcard.", "11.11.11.11"), True)),
    ("wildcard_apex", "wildcard.", "A", "fwd"),
    ("wildcard_b_apex", "b.wildcard.", "A",
     (A("b.wildcard.", "10.10.10.10"), True)),
    ("wildcard_specific_search", "a.b.wildcard." + S0, "A",
     (CNAME("a.b.wildcard." + S0, "a.b.wildcard.") +
      A("a.b.wildcard.", "11.11.11.11"), True)),
    ("wildcard_aaaa_empty", "foo.wildcard.", "AAAA", ([], True)),
    ("wildcard_search_aaaa_empty_no_cname", "foo.wildcard." + S0, "AAAA",
     ([], True)),
    ("mesh_apex", "svc.mesh.company.net.", "A", "fwd"),
    # only search[0] gets search CNAMEs (D9).
    ("search1_no_cname", "www.google.com.svc.cluster.local.", "A", "fwd"),
    ("search2_no_cname", "www.google.com.cluster.local.", "A", "fwd"),
    # unknown names.
    ("unknown", "www.bing.com.", "A", "fwd"),
    ("unknown_aaaa", "nothere.ns1.svc.cluster.local.", "AAAA", "fwd"),
    ("unknown_sub_of_known", "x.www.google.com.", "A", "fwd"),
    ("root", ".", "A", "fwd"),
]


def check(tc, r, expected):
    if expected == "fwd":
        assert_forwarded(tc, r)
    else:
        answer, ordered = expected
        assert_local(tc, r, answer, ttl=30, ordered=ordered)
    harness.assert_reply_to(tc, r, r.query)


class Spec8(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proxy = harness.Proxy(table=harness.load_fixture("spec8.json"),
                                  namespace="ns1",
                                  domain="ns1.svc.cluster.local",
                                  search=harness.SPEC8_SEARCH)
        cls.addClassCleanup(cls.proxy.close)
        cls.proxy.start()

    def setUp(self):
        self.proxy.assert_alive()

    def run_case(self, name, qtype, expected, proto):
        r = self.proxy.ask(name, qtype, proto=proto)
        check(self, r, expected)

    def test_parallel_all_cases_both_transports(self):
        """§8: every case also runs in parallel mode."""
        jobs = []
        for rep in range(3):
            for label, name, qtype, expected in CASES + DERIVED:
                for proto in ("udp", "tcp"):
                    jobs.append((label, name, qtype, expected, proto))

        def one(job):
            label, name, qtype, expected, proto = job
            r = self.proxy.ask(name, qtype, proto=proto)
            return job, r

        with concurrent.futures.ThreadPoolExecutor(32) as ex:
            results = list(ex.map(one, jobs))
        self.assertEqual(len(results), len(jobs))
        for (label, name, qtype, expected, proto), r in results:
            with self.subTest(case=label, proto=proto):
                check(self, r, expected)

    def test_edns_local_answer_case01(self):
        r = self.proxy.ask("www.google.com.", "A", edns=1232)
        assert_local(self, r, A("www.google.com.", "1.1.1.1"),
                     opt=(1232, False))


def _add(label, name, qtype, expected, proto):
    def t(self):
        self.run_case(name, qtype, expected, proto)
    kind = "forwarded" if expected == "fwd" else "local"
    t.__name__ = "test_%s_%s_%s_%s" % (
        "case" + label if label[0].isdigit() else label, kind, qtype, proto)
    t.__doc__ = "%s %s over %s -> %s" % (name, qtype, proto, kind)
    setattr(Spec8, t.__name__, t)


for _c in CASES + DERIVED:
    for _p in ("udp", "tcp"):
        _add(*_c, _p)


if __name__ == "__main__":
    unittest.main()
