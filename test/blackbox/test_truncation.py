#!/usr/bin/python3
"""Size limits, truncation and shuffling of local answers (SPEC §3 "Size and
truncation", "Shuffling", D2, D6): an entry with 100 IPv4 and 50 IPv6
addresses, over UDP with and without EDNS and over TCP."""

import collections
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import NOERROR  # noqa: E402

S0 = "ns1.svc.cluster.local."
V4 = ["10.0.%d.%d" % (i // 250, i % 250 + 1) for i in range(100)]
V6 = ["2001:db8::%x" % (i + 1) for i in range(50)]
TABLE = {"table": {
    "big.example": {"ips": V4 + V6, "registry": "External"},
    "four.example": {"ips": ["11.11.11.11", "12.12.12.12", "13.13.13.13",
                             "14.14.14.14"], "registry": "External"},
}}
OPT_LEN = 11
RR_A = 16      # compressed owner (2) + type/class/ttl/rdlen (10) + 4
RR_AAAA = 28   # 2 + 10 + 16


def wire_len(name):
    return len(harness.name_to_wire(name))


def fit(limit, base, first, per, total, opt=False):
    """How many RRs fit: miekg Truncate over a compressed message."""
    budget = limit - (OPT_LEN if opt else 0)
    size, n = base, 0
    while n < total:
        cost = first if n == 0 else per
        if size + cost > budget:
            break
        size += cost
        n += 1
    return n


def base_len(qname):
    return 12 + wire_len(qname) + 4


class Truncation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proxy = harness.Proxy(table=TABLE, namespace="ns1")
        cls.addClassCleanup(cls.proxy.close)
        cls.proxy.start()

    def setUp(self):
        self.proxy.assert_alive()

    def check_partial(self, r, qtype, owner, allowed, expect_n, limit,
                      opt=None):
        self.assertEqual(r.rcode, NOERROR, r)
        self.assertTrue(r.aa, r)
        self.assertFalse(r.ra, r)
        self.assertLessEqual(len(r.wire), limit, "reply exceeds the limit")
        recs = r.records(qtype)
        self.assertEqual(len(recs), expect_n,
                         "expected exactly %d %s RRs to fit in %d B, got %d "
                         "(%d B)" % (expect_n, qtype, limit, len(recs),
                                     len(r.wire)))
        for x in recs:
            self.assertEqual(x.owner, owner)
            self.assertEqual(x.ttl, 30)
            self.assertEqual(x.rclass, harness.CLASS_IN)
        data = [x.data for x in recs]
        self.assertEqual(len(set(data)), len(data), "duplicate RRs")
        self.assertLessEqual(set(data), set(allowed))
        self.assertEqual(r.authority, [])
        self.assertEqual(r.additional, [])
        if expect_n < len(allowed):
            self.assertTrue(r.tc, "TC must be set when RRs were dropped")
        else:
            self.assertFalse(r.tc, "TC set although everything fit")
            self.assertEqual(set(data), set(allowed))
        harness.assert_opt(self, r, opt)
        harness.assert_reply_to(self, r, r.query)

    def test_udp_no_edns_a_truncated_to_512(self):
        q = "big.example."
        n = fit(512, base_len(q), RR_A, RR_A, 100)
        self.assertEqual(n, 30)  # 12 + 17 + 30*16 = 509
        r = self.proxy.ask(q, "A")
        self.check_partial(r, "A", q, V4, n, 512)

    def test_udp_no_edns_mixed_case_query_truncated_to_512(self):
        # the lower-case owner cannot point into the mixed-case question,
        # so the first RR carries the full owner (13 B).
        q = "BIG.Example."
        n = fit(512, base_len(q), wire_len(q) + 14, RR_A, 100)
        self.assertEqual(n, 29)
        r = self.proxy.ask(q, "A")
        self.assertEqual(r.question, [(q, 1, 1)])
        self.check_partial(r, "A", "big.example.", V4, n, 512)

    def test_udp_no_edns_aaaa_truncated_to_512(self):
        q = "big.example."
        n = fit(512, base_len(q), RR_AAAA, RR_AAAA, 50)
        self.assertEqual(n, 17)
        r = self.proxy.ask(q, "AAAA")
        self.check_partial(r, "AAAA", q, V6, n, 512)

    def test_udp_no_edns_cname_then_as_truncated(self):
        q = "big.example." + S0
        # CNAME: owner = pointer to the question, target "big.example." in
        # full (no earlier suffix matches); the A owners point at it.
        cname = 2 + 10 + wire_len("big.example.")
        n = fit(512 - cname, base_len(q), RR_A, RR_A, 100)
        self.assertEqual(n, 27)
        r = self.proxy.ask(q, "A")
        self.assertLessEqual(len(r.wire), 512)
        self.assertTrue(r.tc)
        self.assertEqual((r.answer[0].owner, r.answer[0].type,
                          r.answer[0].data), (q, "CNAME", "big.example."))
        self.assertEqual(r.answer[0].ttl, 30)
        self.check_partial(r, "A", "big.example.", V4, n, 512)

    def test_udp_edns_sizes(self):
        q = "big.example."
        for size, limit in ((512, 512), (100, 512), (0, 512), (1000, 1000),
                            (1232, 1232), (1500, 1500)):
            with self.subTest(edns=size):
                n = fit(limit, base_len(q), RR_A, RR_A, 100, opt=True)
                r = self.proxy.ask(q, "A", edns=size)
                self.check_partial(r, "A", q, V4, n, limit,
                                   opt=(1232, False))
                self.assertTrue(r.tc)

    def test_udp_edns_4096_all_100_no_tc(self):
        r = self.proxy.ask("big.example.", "A", edns=4096, do=True)
        self.check_partial(r, "A", "big.example.", V4, 100, 4096,
                           opt=(1232, True))
        r = self.proxy.ask("big.example.", "AAAA", edns=4096)
        self.check_partial(r, "AAAA", "big.example.", V6, 50, 4096,
                           opt=(1232, False))

    def test_tcp_all_records(self):
        for edns in (None, 512):
            with self.subTest(edns=edns):
                opt = None if edns is None else (1232, False)
                r = self.proxy.ask("big.example.", "A", proto="tcp",
                                   edns=edns)
                self.check_partial(r, "A", "big.example.", V4, 100, 65535,
                                   opt=opt)
                r = self.proxy.ask("big.example.", "AAAA", proto="tcp",
                                   edns=edns)
                self.check_partial(r, "AAAA", "big.example.", V6, 50, 65535,
                                   opt=opt)

    def test_shuffled_order_varies_set_constant(self):
        orders = set()
        for i in range(50):
            r = self.proxy.ask("big.example.", "A",
                               proto="tcp" if i % 2 else "udp", edns=4096)
            data = tuple(x.data for x in r.records("A"))
            self.assertEqual(sorted(data), sorted(V4))
            orders.add(data)
        self.assertGreater(len(orders), 10,
                           "100 records in only %d orders over 50 queries: "
                           "not shuffled" % len(orders))

    def test_shuffle_every_record_comes_first(self):
        """Loose unbiasedness check of D6 on four records."""
        first = collections.Counter()
        ips = TABLE["table"]["four.example"]["ips"]
        for _ in range(80):
            r = self.proxy.ask("four.example.", "A")
            data = [x.data for x in r.answer]
            self.assertEqual(sorted(data), sorted(ips))
            first[data[0]] += 1
        self.assertEqual(set(first), set(ips),
                         "some record never came first in 80 queries: %r"
                         % first)

    def test_shuffle_before_truncation(self):
        """The 30 records kept over UDP are a varying subset."""
        subsets = set()
        for _ in range(12):
            r = self.proxy.ask("big.example.", "A")
            self.assertTrue(r.tc)
            subsets.add(frozenset(x.data for x in r.answer))
        self.assertGreater(len(subsets), 1,
                           "always the same subset: shuffling must happen "
                           "before truncation")


if __name__ == "__main__":
    unittest.main()
