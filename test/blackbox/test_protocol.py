#!/usr/bin/python3
"""Wire-protocol behaviour of local answers (SPEC §3): header copying, case
(D9), the pre-handler rules, EDNS (D1, D2, D11), qtypes that must not be
answered locally, --ttl (D8) and the no-table state (D7)."""

import os
import socket
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (build_query, header, question, opt_rr, rr,  # noqa
                     assert_local, assert_forwarded, assert_error_reply,
                     assert_reply_to, F_RD, F_CD, F_AD,
                     FORMERR, SERVFAIL, NOTIMP, REFUSED, BADVERS)

S0 = "ns1.svc.cluster.local."
GOOGLE = [("www.google.com.", "A", "1.1.1.1")]
IPV6 = harness.have_ipv6_loopback()


class Protocol(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proxy = harness.Proxy(table=harness.load_fixture("spec8.json"),
                                  namespace="ns1", v6=IPV6)
        cls.addClassCleanup(cls.proxy.close)
        cls.proxy.start()

    def setUp(self):
        self.proxy.assert_alive()

    def ex(self, wire, proto="udp"):
        r = self.proxy.exchange(wire, proto)
        r.query = wire
        return r

    # -- D9: case --

    def test_question_echoed_in_client_case_owner_lowercase(self):
        for proto in ("udp", "tcp"):
            with self.subTest(proto=proto):
                r = self.proxy.ask("WWW.Google.COM.", "A", proto=proto)
                self.assertEqual(r.question,
                                 [("WWW.Google.COM.", 1, 1)])
                assert_local(self, r, GOOGLE)
                # the echoed question must be the exact bytes sent
                qlen = len(harness.question("WWW.Google.COM."))
                self.assertEqual(r.wire[12:12 + qlen], r.query[12:12 + qlen])

    def test_mixed_case_search_cname_owner_is_lowercased_query(self):
        q = "WWW.Google.COM.NS1.Svc.Cluster.Local."
        r = self.proxy.ask(q, "A")
        self.assertEqual(r.question, [(q, 1, 1)])
        assert_local(self, r, [("www.google.com." + S0, "CNAME",
                                "www.google.com."),
                               ("www.google.com.", "A", "1.1.1.1")])

    def test_mixed_case_kubernetes_short_name(self):
        r = self.proxy.ask("ProductPage.", "A")
        self.assertEqual(r.question, [("ProductPage.", 1, 1)])
        assert_local(self, r, [("productpage.", "A", "9.9.9.9")])

    def test_mixed_case_wildcard_owner_is_lowercased_query(self):
        r = self.proxy.ask("FOO.WildCard.", "A")
        self.assertEqual(r.question, [("FOO.WildCard.", 1, 1)])
        assert_local(self, r, [("foo.wildcard.", "A", "10.10.10.10")])

    def test_mixed_case_wildcard_via_search_cname(self):
        q = "FOO.WildCard.NS1.svc.Cluster.local."
        r = self.proxy.ask(q, "A")
        self.assertEqual(r.question, [(q, 1, 1)])
        assert_local(self, r, [("foo.wildcard." + S0, "CNAME",
                                "foo.wildcard."),
                               ("foo.wildcard.", "A", "10.10.10.10")])

    def test_label_with_embedded_dot_or_odd_bytes_never_matches(self):
        """A label holding '.', a NUL or a space is not the dotted name it
        resembles: it must not be answered from the table."""
        for labels in ([b"www.google", b"com"], [b"www", b"google.com"],
                       [b"www\x00", b"google", b"com"],
                       [b"www", b"google", b"com\x00"],
                       [b"www ", b"google", b"com"],
                       [b"productpage\\", b"ns1"]):
            qname = b"".join(bytes([len(l)]) + l for l in labels) + b"\x00"
            w = header(0x2222) + qname + struct.pack("!HH", 1, 1)
            with self.subTest(labels=labels):
                r = self.ex(w)
                assert_forwarded(self, r)
                self.assertEqual(r.wire[12:12 + len(qname) + 4],
                                 w[12:], "question not echoed as sent")

    # -- header copying --

    def test_id_rd_cd_copied(self):
        combos = [(0, 0), (0xFFFF, F_RD), (0x1234, F_CD),
                  (0xBEEF, F_RD | F_CD), (7, F_RD | F_AD)]
        for proto in ("udp", "tcp"):
            for qid, flags in combos:
                with self.subTest(proto=proto, id=qid, flags=hex(flags)):
                    w = build_query("www.google.com.", "A", qid=qid,
                                    flags=flags)
                    r = self.ex(w, proto)
                    assert_reply_to(self, r, w)
                    assert_local(self, r, GOOGLE)

    def test_notify_treated_as_query_opcode_echoed(self):
        for proto in ("udp", "tcp"):
            with self.subTest(proto=proto):
                w = build_query("www.google.com.", "A", opcode=4)
                r = self.ex(w, proto)
                self.assertEqual(r.opcode, 4)
                assert_reply_to(self, r, w)
                assert_local(self, r, GOOGLE)

    def test_qclass_ignored_answers_are_in(self):
        w = build_query("www.google.com.", "A", qclass=harness.CLASS_CH)
        r = self.ex(w)
        self.assertEqual(r.question, [("www.google.com.", 1, 3)])
        assert_local(self, r, GOOGLE)

    def test_two_queries_one_socket_different_ids_both_answered(self):
        """glibc sends A and AAAA from one socket (SPEC §3 Listeners)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect(self.proxy.addr4)
            qa = build_query("dual.localhost.", "A", qid=100)
            qaaaa = build_query("dual.localhost.", "AAAA", qid=101)
            qsame = build_query("ipv4.localhost.", "A", qid=101)
            s.send(qa)
            s.send(qaaaa)
            s.send(qsame)
            s.settimeout(harness.QUERY_TIMEOUT)
            got = [harness.parse_reply(s.recv(65535)) for _ in range(3)]
        finally:
            s.close()
        byq = {(r.id, r.question[0][1], r.question[0][0]): r for r in got}
        self.assertEqual(len(byq), 3)
        self.assertEqual(byq[(100, 1, "dual.localhost.")].answer[0].data,
                         "2.2.2.2")
        self.assertEqual(byq[(101, 28, "dual.localhost.")].answer[0].data,
                         "2001:db8::ff00:42:8329")
        self.assertEqual(byq[(101, 1, "ipv4.localhost.")].answer[0].data,
                         "2.2.2.2")

    # -- pre-handler: dropped --

    def test_empty_datagram_dropped(self):
        harness.expect_silence(self, self.proxy.addr4, b"")

    def test_short_datagram_dropped(self):
        w = build_query("www.google.com.", "A")
        for n in (1, 2, 11):
            with self.subTest(len=n):
                harness.expect_silence(self, self.proxy.addr4, w[:n])

    def test_qr_set_dropped(self):
        w = bytearray(build_query("www.google.com.", "A"))
        w[2] |= 0x80
        harness.expect_silence(self, self.proxy.addr4, bytes(w))

    def test_reply_looking_message_dropped(self):
        r = self.proxy.ask("www.google.com.", "A")
        harness.expect_silence(self, self.proxy.addr4, r.wire)

    # -- pre-handler: NOTIMP --

    def test_unknown_opcodes_notimp_opcode_echoed(self):
        for opcode in (1, 2, 3, 5, 6, 15):
            for proto in ("udp", "tcp"):
                with self.subTest(opcode=opcode, proto=proto):
                    w = build_query("www.google.com.", "A", opcode=opcode)
                    r = self.ex(w, proto)
                    assert_error_reply(self, r, w, NOTIMP)
                    self.assertEqual(r.opcode, opcode)

    # -- pre-handler: FORMERR / REFUSED --

    def test_qdcount_zero_formerr(self):
        w = header(0x4242, qd=0)
        r = self.ex(w)
        assert_error_reply(self, r, w, FORMERR, echo_question=False)
        self.assertEqual(r.question, [])

    def test_qdcount_two_formerr(self):
        w = (header(0x4343, qd=2) + question("www.google.com.") +
             question("productpage."))
        for proto in ("udp", "tcp"):
            with self.subTest(proto=proto):
                r = self.ex(w, proto)
                assert_error_reply(self, r, w, FORMERR, echo_question=False)
                # "keep the question": nothing but the query's first
                # question(s) may be echoed
                self.assertLessEqual(len(r.question), 2)
                if r.question:
                    self.assertEqual(r.question[0],
                                     ("www.google.com.", 1, 1))

    def _count_case(self, an=0, ns=0, ar=0, with_opt=False):
        recs = b"".join(rr("x.example.", "A", b"\x01\x02\x03\x04")
                        for _ in range(an + ns + ar - (1 if with_opt else 0)))
        if with_opt:
            recs += opt_rr(1232)
        return (header(0x5151, an=an, ns=ns, ar=ar) +
                question("www.google.com.") + recs)

    def test_ancount_two_formerr(self):
        w = self._count_case(an=2)
        assert_error_reply(self, self.ex(w), w, FORMERR)

    def test_nscount_two_formerr(self):
        w = self._count_case(ns=2)
        assert_error_reply(self, self.ex(w), w, FORMERR)

    def test_arcount_three_formerr_and_no_opt_in_error(self):
        w = self._count_case(ar=3, with_opt=True)
        for proto in ("udp", "tcp"):
            with self.subTest(proto=proto):
                assert_error_reply(self, self.ex(w, proto), w, FORMERR)

    def test_ancount_one_nscount_one_arcount_two_accepted(self):
        """Limits are >1, >1, >2: one of each still gets an answer."""
        for an, ns, ar, opt in ((1, 0, 0, False), (0, 1, 0, False),
                                (0, 0, 2, True), (1, 1, 2, True)):
            with self.subTest(an=an, ns=ns, ar=ar):
                w = self._count_case(an, ns, ar, opt)
                r = self.ex(w)
                assert_reply_to(self, r, w)
                assert_local(self, r, GOOGLE,
                             opt=(1232, False) if opt else None)

    def test_qdcount_one_without_body_refused(self):
        w = header(0x6161, qd=1)
        for proto in ("udp", "tcp"):
            with self.subTest(proto=proto):
                r = self.ex(w, proto)
                assert_error_reply(self, r, w, REFUSED, echo_question=False)
                self.assertEqual(r.question, [])

    def test_two_opts_formerr(self):
        w = (header(0x7171, ar=2) + question("www.google.com.") +
             opt_rr(1232) + opt_rr(4096))
        r = self.ex(w)
        assert_error_reply(self, r, w, FORMERR)

    def test_unparsable_bodies_formerr(self):
        q = question("www.google.com.")
        bad = {
            "cut_question": header(1) + q[:-3],
            "cut_qname": header(2) + q[:5],
            "pointer_loop": header(3) + b"\xc0\x0c" + b"\x00\x01\x00\x01",
            "reserved_label_type": header(5) + b"\x41abc\x00\x00\x01\x00\x01",
            "label_too_long": header(6) + b"\x40" + b"a" * 64 +
            b"\x00\x00\x01\x00\x01",
            "name_too_long": header(7) + (b"\x3f" + b"a" * 63) * 4 +
            b"\x00\x00\x01\x00\x01",
            "cut_rr": header(8, ar=1) + q + opt_rr(1232)[:-3],
            "rdlen_past_end": header(9, ar=1) + q +
            b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x10",
        }
        for what, w in bad.items():
            for proto in ("udp", "tcp"):
                with self.subTest(what=what, proto=proto):
                    r = self.ex(w, proto)
                    assert_error_reply(self, r, w, FORMERR,
                                       echo_question=False)
                    self.assertEqual(r.id, harness.query_id(w))

    # -- EDNS --

    def test_edns_version_1_badvers_with_opt_version_0(self):
        for proto in ("udp", "tcp"):
            with self.subTest(proto=proto):
                w = build_query("www.google.com.", "A", edns=4096,
                                edns_version=1)
                r = self.ex(w, proto)
                assert_error_reply(self, r, w, BADVERS, opt=True)
                self.assertEqual(r.rcode, 16)
                self.assertEqual(r.flags & 0xF, 0, "BADVERS lower bits")
                self.assertEqual(r.opt.ext_rcode, 1)
                self.assertEqual(r.opt.version, 0)

    def test_edns_do_echoed_payload_1232(self):
        """D2: A with OPT 4096 + DO -> OPT{1232, DO}, no options."""
        for proto in ("udp", "tcp"):
            for size, do in ((4096, True), (512, False), (1232, True),
                             (65535, False)):
                with self.subTest(proto=proto, size=size, do=do):
                    w = build_query("www.google.com.", "A", edns=size, do=do)
                    r = self.ex(w, proto)
                    assert_local(self, r, GOOGLE, opt=(1232, do))
                    self.assertEqual(r.opt.options, b"")
                    self.assertEqual(r.opt.ext_rcode, 0)
                    # the OPT is exactly 11 bytes at the end
                    self.assertEqual(r.wire[-11:], opt_rr(1232, do))

    def test_edns_client_options_not_echoed_locally(self):
        cookie = harness.edns_option(10, bytes(range(8)))
        w = build_query("www.google.com.", "A", edns=1232, options=cookie)
        r = self.ex(w)
        assert_local(self, r, GOOGLE, opt=(1232, False))
        self.assertEqual(r.opt.options, b"")

    def test_edns_on_nodata_and_cname_answers(self):
        w = build_query("ipv4.localhost.", "AAAA", edns=1232, do=True)
        assert_local(self, self.ex(w), [], opt=(1232, True))
        w = build_query("www.google.com." + S0, "A", edns=4096)
        assert_local(self, self.ex(w),
                     [("www.google.com." + S0, "CNAME", "www.google.com.")]
                     + GOOGLE, opt=(1232, False))

    def test_no_opt_in_reply_without_opt_in_query(self):
        for name, qtype in (("www.google.com.", "A"),
                            ("dual.localhost.", "AAAA"),
                            ("ipv4.localhost.", "AAAA")):
            for proto in ("udp", "tcp"):
                with self.subTest(name=name, qtype=qtype, proto=proto):
                    r = self.proxy.ask(name, qtype, proto=proto)
                    self.assertIsNone(r.opt)
                    self.assertEqual(r.counts[3], 0)

    def test_large_udp_queries_answered(self):
        """D1: UDP queries up to 65535 B are read whole."""
        for total in (600, 1500, 4000, 20000, 60000):
            with self.subTest(size=total):
                base = build_query("www.google.com.", "A", edns=1232,
                                   options=harness.padding_option(0))
                w = build_query("www.google.com.", "A", edns=1232,
                                options=harness.padding_option(
                                    total - len(base)))
                self.assertEqual(len(w), total)
                r = self.ex(w, "udp")
                assert_reply_to(self, r, w)
                assert_local(self, r, GOOGLE, opt=(1232, False))

    def test_large_tcp_query_answered(self):
        base = build_query("www.google.com.", "A", edns=1232,
                           options=harness.padding_option(0))
        w = build_query("www.google.com.", "A", edns=1232,
                        options=harness.padding_option(65535 - len(base)))
        self.assertEqual(len(w), 65535)
        r = self.ex(w, "tcp")
        assert_local(self, r, GOOGLE, opt=(1232, False))

    # -- qtypes --

    def test_other_qtypes_for_known_names_not_answered_locally(self):
        names = ["www.google.com.", "productpage.", PP_FQDN, "foo.wildcard.",
                 "www.google.com." + S0, "dual.localhost."]
        qtypes = ["MX", "TXT", "SRV", "ANY", "CNAME", "PTR", "NS", "SOA",
                  "HTTPS", "SVCB", 99, 65280]
        for name in names:
            for qt in qtypes:
                with self.subTest(name=name, qtype=qt):
                    r = self.proxy.ask(name, qt)
                    assert_forwarded(self, r)
                    assert_reply_to(self, r, r.query)
        r = self.proxy.ask("www.google.com.", "MX", proto="tcp")
        assert_forwarded(self, r)

    # -- IPv6 listener --

    @unittest.skipUnless(IPV6, "this machine has no IPv6 loopback (::1)")
    def test_ipv6_listener_answers_udp_and_tcp(self):
        for proto in ("udp", "tcp"):
            with self.subTest(proto=proto):
                r = self.proxy.ask("dual.localhost.", "AAAA", proto=proto,
                                   v6=True)
                assert_local(self, r, [("dual.localhost.", "AAAA",
                                        "2001:db8::ff00:42:8329")])


PP_FQDN = "productpage.ns1.svc.cluster.local."


class Ttl(unittest.TestCase):
    """D8: --ttl changes the synthesized TTL (addresses and CNAMEs)."""

    def test_ttl_flag_sets_ttl_of_every_record(self):
        p = harness.Proxy(table=harness.load_fixture("spec8.json"),
                          namespace="ns1", ttl=5)
        self.addCleanup(p.close)
        p.start()
        for proto in ("udp", "tcp"):
            with self.subTest(proto=proto):
                r = p.ask("www.google.com." + S0, "A", proto=proto)
                assert_local(self, r, [("www.google.com." + S0, "CNAME",
                                        "www.google.com."),
                                       ("www.google.com.", "A", "1.1.1.1")],
                             ttl=5)
                r = p.ask("details.ns2.svc.cluster.remote.", "A",
                          proto=proto)
                self.assertEqual(len(r.answer), 4)
                self.assertEqual({x.ttl for x in r.answer}, {5})


class NoTable(unittest.TestCase):
    """D7: without a table every query gets SERVFAIL."""

    def test_no_table_servfail(self):
        p = harness.Proxy(table=None, namespace="ns1")
        self.addCleanup(p.close)
        p.start()
        for name, qtype in (("www.google.com.", "A"), ("productpage.", "A"),
                            ("dual.localhost.", "AAAA"),
                            ("www.bing.com.", "A"), ("www.google.com.", "MX")):
            for proto in ("udp", "tcp"):
                with self.subTest(name=name, qtype=qtype, proto=proto):
                    r = p.ask(name, qtype, proto=proto)
                    self.assertEqual(r.rcode, SERVFAIL, r)
                    self.assertFalse(r.aa)
                    self.assertEqual(r.answer, [])
                    self.assertEqual(r.authority, [])
                    assert_reply_to(self, r, r.query)


if __name__ == "__main__":
    unittest.main()
