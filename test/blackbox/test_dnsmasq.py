#!/usr/bin/python3
"""A real upstream: dnsmasq (SPEC §4 Relay; issue 4 acceptance "dig
example.org TXT through the proxy returns exactly what the upstream
returns, over UDP and TCP").  Every question is asked of dnsmasq directly
and through the proxy; the two replies must carry the same rcode, flags
and sections (owners, TTLs, order, rdata, OPT), differing only in the ID.

Skipped only when dnsmasq is not installed.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DNSMASQ_OPTIONS = ["--address=/example.org/198.51.100.7",
                   "--txt-record=example.org,hello",
                   "--txt-record=multi.example.org,first,second"]

# Questions without EDNS come first: dnsmasq 2.90 remembers EDNS per TCP
# connection (after one query with an OPT it adds an OPT to every later
# reply on that connection, also to queries without one), and the proxy
# rightly keeps its upstream TCP connection open, while each direct
# exchange here uses a fresh one.
QUESTIONS = [
    ("example.org.", "TXT", None),
    ("example.org.", "A", None),
    ("multi.example.org.", "TXT", None),
    # dnsmasq has no upstream for these: REFUSED, relayed after failover
    ("example.org.", "AAAA", None),
    ("Example.ORG.", "TXT", 1232),
    ("www.example.org.", "A", 1232),
    ("nothere.test.", "A", 1232),
]


@unittest.skipIf(harness.Dnsmasq.path() is None,
                 "dnsmasq is not installed (apt-get install -y dnsmasq)")
class RealUpstream(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dnsmasq = harness.Dnsmasq(DNSMASQ_OPTIONS)
        cls.addClassCleanup(cls.dnsmasq.close)
        cls.proxy = harness.Proxy(table=harness.load_fixture("spec8.json"),
                                  upstream=cls.dnsmasq.spec,
                                  args=["--forward-timeout", "1s"])
        cls.addClassCleanup(cls.proxy.close)
        cls.proxy.start()

    def direct(self, wire, proto):
        ex = harness.udp_exchange if proto == "udp" else harness.tcp_exchange
        data = ex(self.dnsmasq.addr, wire)
        self.assertIsNotNone(data, "dnsmasq did not answer:\n%s"
                             % self.dnsmasq.log())
        return harness.parse_reply(data)

    def test_replies_equal_direct_answers(self):
        for proto in ("udp", "tcp"):
            for name, qtype, edns in QUESTIONS:
                with self.subTest(name=name, qtype=qtype, edns=edns,
                                  proto=proto):
                    w = harness.build_query(name, qtype, edns=edns)
                    want = self.direct(w, proto)
                    r = self.proxy.exchange(w, proto)
                    harness.assert_relayed(self, r, want, w)

    def test_acceptance_example_org_txt(self):
        for proto in ("udp", "tcp"):
            r = self.proxy.ask("example.org.", "TXT", proto=proto)
            self.assertEqual((r.rcode, [x.rdata for x in r.answer]),
                             (harness.NOERROR, [b"\x05hello"]))
            self.assertTrue(r.aa, "dnsmasq's AA=1 relayed: %r" % r)

    def test_table_names_still_local(self):
        harness.assert_local(self, self.proxy.ask("www.google.com."),
                             [("www.google.com.", "A", "1.1.1.1")])


if __name__ == "__main__":
    unittest.main()
