#!/usr/bin/python3
"""Checks of the test harness itself (no dnsproxy needed): the strict reply
decoder agrees with dnspython, rejects malformed messages, and the
FakeUpstream answers as SPEC §8 describes."""

import os
import sys
import time
import unittest

import dns.flags
import dns.message
import dns.rrset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class Decoder(unittest.TestCase):
    def test_matches_dnspython_with_compression(self):
        q = dns.message.make_query("foo.example.", "A", use_edns=0,
                                   payload=1232, want_dnssec=True)
        r = dns.message.make_response(q)
        r.flags |= 0x0400
        r.use_edns(0, dns.flags.DO, 1232)
        r.answer.append(dns.rrset.from_text("foo.example.", 30, "IN",
                                            "CNAME", "bar.example."))
        r.answer.append(dns.rrset.from_text("bar.example.", 30, "IN", "A",
                                            "1.2.3.4", "5.6.7.8"))
        r.answer.append(dns.rrset.from_text("bar.example.", 30, "IN", "AAAA",
                                            "2001:db8::1"))
        wire = r.to_wire()
        d = harness.parse_reply(wire)
        self.assertEqual(d.id, q.id)
        self.assertTrue(d.qr and d.aa)
        self.assertEqual(d.question, [("foo.example.", 1, 1)])
        got = [(x.owner, x.type, x.data) for x in d.answer]
        # (dnspython does not keep the order within an rdataset)
        self.assertEqual(got[0], ("foo.example.", "CNAME", "bar.example."))
        self.assertEqual(sorted(got[1:3]), [("bar.example.", "A", "1.2.3.4"),
                                            ("bar.example.", "A", "5.6.7.8")])
        self.assertEqual(got[3], ("bar.example.", "AAAA", "2001:db8::1"))
        self.assertIsNotNone(d.opt)
        self.assertEqual(d.opt.udp_size, 1232)
        self.assertTrue(d.opt.do)
        self.assertLess(len(wire), 12 + 17 + 4 * 30, "dnspython compressed")

    def test_extended_rcode(self):
        q = dns.message.make_query("x.", "A", use_edns=0)
        r = dns.message.make_response(q)
        r.set_rcode(16)
        d = harness.parse_reply(r.to_wire())
        self.assertEqual(d.rcode, 16)
        self.assertEqual(d.opt.ext_rcode, 1)

    def test_rejects_malformed(self):
        good = harness.build_query("a.example.", "A", qid=1)
        bad = [good[:11], good[:-1], good + b"\x00",
               harness.header(1) + b"\xc0\x0c\x00\x01\x00\x01",
               harness.header(1, ar=2) + harness.question("a.") +
               harness.opt_rr() + harness.opt_rr()]
        for w in bad:
            with self.subTest(w=w):
                with self.assertRaises(harness.WireError):
                    harness.parse_reply(w)

    def test_build_query_roundtrip_dnspython(self):
        w = harness.build_query("WWW.Example.", "AAAA", qid=77, edns=4096,
                                do=True, opcode=4,
                                options=harness.padding_option(5))
        m = dns.message.from_wire(w)
        self.assertEqual(m.id, 77)
        self.assertEqual(str(m.question[0].name), "WWW.Example.")
        self.assertEqual(m.payload, 4096)
        self.assertEqual(m.opcode(), 4)
        self.assertEqual(len(w), 12 + 13 + 4 + 11 + 4 + 5)

    def test_free_ports_distinct_and_bindable(self):
        ports = {harness.free_port() for _ in range(20)}
        self.assertEqual(len(ports), 20)


class Upstream(unittest.TestCase):
    def setUp(self):
        self.up = harness.FakeUpstream()
        self.addCleanup(self.up.close)

    def test_default_nxdomain_and_bing(self):
        for proto in ("udp", "tcp"):
            ex = harness.udp_exchange if proto == "udp" else \
                harness.tcp_exchange
            w = harness.build_query("Nope.Example.", "A")
            r = harness.parse_reply(ex(self.up.addr, w))
            self.assertEqual(r.rcode, harness.NXDOMAIN)
            self.assertTrue(r.ra)
            self.assertFalse(r.aa)
            self.assertEqual(r.question, [("Nope.Example.", 1, 1)])
            r = harness.parse_reply(ex(self.up.addr, harness.build_query(
                "www.bing.com.", "A", edns=1232)))
            self.assertEqual([x.data for x in r.answer], ["1.1.1.1"])
            self.assertEqual(r.opt.udp_size, 4096)
        self.assertEqual(len(self.up.queries), 4)

    def test_giant(self):
        r = harness.parse_reply(harness.udp_exchange(
            self.up.addr, harness.build_query("giant.", "A")))
        self.assertEqual(len(r.answer), 64)
        self.assertFalse(r.tc)
        self.assertEqual(r.answer[0].owner, harness.GIANT_OWNER)
        r = harness.parse_reply(harness.udp_exchange(
            self.up.addr, harness.build_query("giant-tc.", "A")))
        self.assertEqual(len(r.answer), 29)
        self.assertTrue(r.tc)
        self.assertLessEqual(len(r.wire), 512)
        harness.check_dnspython(r.wire)

    def test_custom_answer(self):
        self.up.answers[("x.example.", 16)] = (
            harness.NOERROR, [("x.example.", 16, b"\x02hi")])
        r = harness.parse_reply(harness.tcp_exchange(
            self.up.addr, harness.build_query("X.example.", "TXT",
                                              qid=4321)))
        self.assertEqual(r.rcode, 0)
        self.assertEqual(r.id, 4321)
        self.assertEqual(r.answer[0].rdata, b"\x02hi")

    def ex(self, wire, proto="udp", timeout=harness.QUERY_TIMEOUT):
        if proto == "udp":
            return harness.udp_exchange(self.up.addr, wire, timeout)
        return harness.tcp_exchange(self.up.addr, wire, timeout)

    def test_nxdomain_has_soa_of_the_last_label(self):
        r = harness.parse_reply(self.ex(harness.build_query("a.B.example.")))
        self.assertEqual([(x.owner, x.type, x.ttl) for x in r.authority],
                         [("example.", "SOA", harness.SOA_TTL)])
        w = harness.build_query("x.synth.", edns=1232,
                                options=harness.edns_option(10, b"c" * 8))
        r = harness.parse_reply(self.ex(w))
        self.assertEqual([x.data for x in r.answer],
                         [harness.synth_ip("x.synth.")])
        self.assertEqual(harness.edns_options(r.opt.options),
                         [(10, b"c" * 8 + harness.SERVER_COOKIE)])
        self.assertEqual(r.wire[2:], harness.upstream_reply(w).wire[2:])

    def test_fault_modes(self):
        up = self.up
        for n in ("sf", "rf", "tc", "gb", "wi", "cl", "fe", "big", "quiet"):
            up.faults[n + ".synth."] = {
                "sf": "servfail", "rf": "refused", "tc": "tc",
                "gb": "garbage", "wi": "wrong_id", "cl": "close",
                "fe": "formerr", "big": ("big", 300), "quiet": "silent"}[n]
        q = harness.build_query
        r = harness.parse_reply(self.ex(q("sf.synth.")))
        self.assertEqual(r.rcode, harness.SERVFAIL)
        self.assertEqual(r.additional[0].rdata[1:], up.tag.encode())
        self.assertEqual(harness.parse_reply(self.ex(q("rf.synth."))).rcode,
                         harness.REFUSED)
        r = harness.parse_reply(self.ex(q("tc.synth.")))
        self.assertEqual((r.tc, r.answer), (True, []))
        r = harness.parse_reply(self.ex(q("tc.synth."), "tcp"))
        self.assertEqual((r.tc, len(r.answer)), (False, 1))
        with self.assertRaises(harness.WireError):
            harness.parse_reply(self.ex(q("gb.synth.")))
        self.assertIsNone(self.ex(q("wi.synth."), timeout=0.3))
        with self.assertRaises(EOFError):
            self.ex(q("cl.synth."), "tcp")
        r = harness.parse_reply(self.ex(q("fe.synth.", edns=1232)))
        self.assertEqual((r.rcode, r.opt), (harness.FORMERR, None))
        d = self.ex(q("big.synth."))
        self.assertGreater(len(d), 4096)
        self.assertEqual(len(harness.parse_reply(d).answer), 300)
        self.assertIsNone(self.ex(q("quiet.synth."), timeout=0.3))
        self.assertEqual(up.count("quiet.synth."), 1)
        up.faults["slow.synth."] = ("slow", 0.3)
        t0 = time.monotonic()
        self.ex(q("slow.synth."))
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        self.assertEqual({x.transport for x in up.received("tc.synth.")},
                         {"udp", "tcp"})


if __name__ == "__main__":
    unittest.main()
