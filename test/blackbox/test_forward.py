#!/usr/bin/python3
"""Forwarding (SPEC §4, D3, D4, D10) against the real binary and fake
upstreams (harness.FakeUpstream): relaying, transports, IDs/case/EDNS
options, failover and its time bounds, parallel mode, sizes and TC, the
§8 forwarded cases and timeout test, load, the in-flight cap and
descriptor leaks.

Time bounds are checked with at least 2x slack (ASan builds).
"""

import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Answer, FakeUpstream, TYPES, NOERROR, SERVFAIL,  # noqa
                     NXDOMAIN, REFUSED, F_RD, F_CD, F_AD, assert_relayed,
                     assert_servfail, assert_local, build_query,
                     parse_reply, synth_ip)

SPEC8 = harness.load_fixture("spec8.json")
S0 = "ns1.svc.cluster.local."
SLACK = 2.0 * harness.SLOW
# "Faster than a protocol timer" bounds are a fixed fraction of it: the
# timer runs in real time whatever the build, so valgrind's slowness must
# not shrink them the way dividing by SLACK would.
BELOW = 2.0
LONG = 15.0 * harness.SLOW     # client timeout where a reply may be slow


def fwd_args(timeout=None, attempts=None, parallel=False, max_forwards=None):
    args = []
    if timeout is not None:
        args += ["--forward-timeout", timeout]
    if attempts is not None:
        args += ["--forward-attempts", str(attempts)]
    if parallel:
        args.append("--forward-parallel")
    if max_forwards is not None:
        args += ["--max-forwards", str(max_forwards)]
    return args


def synth_names(n, tag):
    return ["q%d.%s%s" % (i, tag, harness.SYNTH_SUFFIX) for i in range(n)]


class Base(unittest.TestCase):
    """Helpers: upstreams and proxies that are stopped after the test."""

    def upstream(self, mode=None, **kw):
        u = FakeUpstream(mode, **kw)
        self.addCleanup(u.close)
        return u

    def proxy(self, upstream, table=SPEC8, args=(), **kw):
        p = harness.Proxy(table=table, upstream=upstream, args=list(args),
                          **kw)
        self.addCleanup(p.close)
        p.start()
        return p

    def expected(self, up, r, transport="udp"):
        """What up answers to the query behind reply r."""
        return parse_reply(up.plan(r.query, transport)[0])

    def assert_synth(self, r, up=None):
        """r is the upstream's A synth_ip(name) answer, relayed."""
        name = r.question[0][0]
        self.assertEqual([(x.type, x.data) for x in r.answer],
                         [("A", synth_ip(name))], "%r" % r)
        assert_relayed(self, r, self.expected(up or harness.DEFAULT_UPSTREAM,
                                              r), r.query)

    def assert_answered_within(self, results, bound):
        for r, dt in results:
            self.assertLess(dt, bound, "%s took %.2f s (bound %.2f s)" % (
                r.question, dt, bound))


# ---------------------------------------------------------------------------


MX = TYPES["MX"]
TXT = TYPES["TXT"]
SRV = TYPES["SRV"]
HTTPS = TYPES["HTTPS"]
PTR = TYPES["PTR"]
NS = TYPES["NS"]
PP = "productpage.ns1.svc.cluster.local."

# Answers for qtypes the table does not answer, for names it knows.
CANNED = {
    ("www.google.com.", MX): Answer(
        NOERROR,
        [("www.google.com.", MX, b"\x00\x14" +
          harness.name_to_wire("mx2.google.com."), 300),
         ("www.google.com.", MX, b"\x00\x0a" +
          harness.name_to_wire("mx1.google.com."), 299)],
        [("google.com.", NS, harness.name_to_wire("ns1.google.com."), 1000)],
        [("mx1.google.com.", 1, socket.inet_aton("192.0.2.1"), 77),
         ("mx2.google.com.", 1, socket.inet_aton("192.0.2.2"), 78)]),
    ("www.google.com.", TXT): Answer(
        NOERROR, [("www.google.com.", TXT, b"\x05hello\x05world", 45),
                  ("www.google.com.", TXT, b"\x03v=1", 44)],
        aa=True, ad=True),
    (PP, SRV): Answer(NOERROR, [(PP, SRV, struct.pack("!HHH", 10, 60, 9080) +
                                 harness.name_to_wire(PP), 5)]),
    ("www.google.com.", HTTPS): Answer(
        NOERROR, [("www.google.com.", HTTPS,
                   b"\x00\x01\x00" + b"\x00\x01\x00\x03\x02h2", 120)]),
    ("productpage.", PTR): Answer(
        NOERROR, [("productpage.", PTR, harness.name_to_wire(PP), 7)]),
    ("9.9.9.9.in-addr.arpa.", PTR): Answer(
        NOERROR, [("9.9.9.9.in-addr.arpa.", PTR, harness.name_to_wire(PP),
                   7)]),
    ("dual.localhost.", TXT): Answer(NOERROR, []),   # NODATA, no SOA
}


class Relay(Base):
    """One proxy (the §8 fixture) forwarding to one fake upstream."""

    @classmethod
    def setUpClass(cls):
        cls.up = FakeUpstream()
        cls.addClassCleanup(cls.up.close)
        cls.up.answers.update(CANNED)
        cls.up.faults["huge."] = ("big", 300)      # > 4096 B over UDP
        cls.up.faults["big1k."] = ("big", 100)     # ~1.6 KB
        cls.up.faults["tc.synth."] = "tc"
        cls.up.faults["*.slow.synth."] = ("slow", 0.3)
        cls.proxy = harness.Proxy(table=SPEC8, upstream=cls.up)
        cls.addClassCleanup(cls.proxy.close)
        cls.proxy.start()

    def setUp(self):
        self.proxy.assert_alive()

    def ask(self, name, qtype="A", proto="udp", **kw):
        return self.proxy.ask(name, qtype, proto, **kw)

    def check_relayed(self, r, transport):
        assert_relayed(self, r, self.expected(self.up, r, transport),
                       r.query)

    def test_unknown_name_udp_and_tcp(self):
        for proto in ("udp", "tcp"):
            with self.subTest(proto=proto):
                n = self.up.count("www.bing.com.", proto)
                r = self.ask("www.bing.com.", proto=proto)
                self.check_relayed(r, proto)
                self.assertEqual([(x.owner, x.ttl, x.data) for x in r.answer],
                                 [("www.bing.com.", 30, "1.1.1.1")])
                self.assertFalse(r.aa)
                self.assertTrue(r.ra)
                self.assertEqual(self.up.count("www.bing.com.", proto), n + 1)

    def test_nxdomain_relayed_with_soa(self):
        for proto in ("udp", "tcp"):
            for edns in (None, 1232):
                with self.subTest(proto=proto, edns=edns):
                    r = self.ask("nothere.example.", proto=proto, edns=edns)
                    self.assertEqual(r.rcode, NXDOMAIN)
                    self.assertEqual([(x.owner, x.type, x.ttl)
                                      for x in r.authority],
                                     [("example.", "SOA", harness.SOA_TTL)])
                    self.check_relayed(r, proto)
                    if edns:
                        # the upstream's OPT (4096), not a local one (1232)
                        self.assertEqual(r.opt.udp_size, 4096)

    def test_other_qtypes_for_known_names_forwarded(self):
        for (name, qtype) in CANNED:
            for proto in ("udp", "tcp"):
                with self.subTest(name=name, qtype=qtype, proto=proto):
                    n = self.up.count(name)
                    r = self.ask(name, qtype, proto=proto)
                    self.check_relayed(r, proto)
                    self.assertEqual(self.up.count(name), n + 1)
        # ... while A for the same names stays local and is not forwarded
        n = self.up.count("www.google.com.")
        assert_local(self, self.ask("www.google.com."),
                     [("www.google.com.", "A", "1.1.1.1")])
        self.assertEqual(self.up.count("www.google.com."), n)

    def test_spec8_forwarded_cases(self):
        """§8 cases 3, 5, 13, 21: the upstream's answer, relayed."""
        cases = [("03", "www.bing.com.", NOERROR),
                 ("05", PP + S0, NXDOMAIN),
                 ("13", "example.", NXDOMAIN),
                 ("21", "details.ns2.", NXDOMAIN)]
        for label, name, rcode in cases:
            for proto in ("udp", "tcp"):
                with self.subTest(case=label, proto=proto):
                    n = self.up.count(name, proto)
                    r = self.ask(name, proto=proto)
                    self.assertEqual(r.rcode, rcode, r)
                    self.check_relayed(r, proto)
                    self.assertEqual(self.up.count(name, proto), n + 1)

    def test_transport_follows_the_client(self):
        for proto, name in (("udp", "viaudp.synth."),
                            ("tcp", "viatcp.synth.")):
            with self.subTest(proto=proto):
                self.assert_synth(self.ask(name, proto=proto))
                self.assertEqual([q.transport for q in self.up.received(name)],
                                 [proto])

    def test_udp_query_over_512_bytes_is_answered(self):
        """c-ares sends a query over 512 bytes from its UDP channel over
        TCP; the proxy's socket hooks must leave that stream intact (it
        used to lose the reply and answer SERVFAIL after both attempts)."""
        name = "big-query.synth."
        w = build_query(name, "A", edns=1232,
                        options=harness.edns_option(65001, b"x" * 600))
        self.assertGreater(len(w), 512)
        r = self.proxy.exchange(w, "udp")
        r.query = w
        self.assert_synth(r)
        self.assertEqual(len(self.up.received(name)), 1)

    def test_query_forwarded_as_received_and_reply_restored(self):
        """ID, flags, question case, OPT (size, DO) and options (cookie,
        ECS, an unknown one) reach the upstream as sent; the reply has the
        client's ID and question, and the upstream's OPT options."""
        cookie = bytes(range(1, 9))
        ecs = struct.pack("!HBB", 1, 24, 0) + bytes([192, 0, 2])
        opts = (harness.edns_option(10, cookie) + harness.edns_option(8, ecs)
                + harness.edns_option(65001, b"xyz"))
        for proto in ("udp", "tcp"):
            name = "WwW.MiXeD-%s.SyNtH." % proto.upper()
            with self.subTest(proto=proto):
                w = build_query(name, "A", qid=0xBEEF,
                                flags=F_RD | F_CD | F_AD, edns=1400, do=True,
                                options=opts)
                r = self.proxy.exchange(w, proto)
                r.query = w
                got = self.up.received(name)
                self.assertEqual(len(got), 1, got)
                q = got[0]
                self.assertEqual(q.transport, proto)
                self.assertEqual(q.wire[2:4], w[2:4], "flags changed")
                self.assertEqual(q.wire[4:12], w[4:12], "counts changed")
                qend = harness.read_name(w, 12)[1] + 4
                self.assertEqual(q.wire[12:qend], w[12:qend],
                                 "question (case) changed")
                o = q.opt
                self.assertIsNotNone(o, "OPT dropped")
                self.assertEqual((o.udp_size, o.version, o.flags, o.options),
                                 (1400, 0, 0x8000, opts), "OPT changed")
                self.assertEqual(len(q.wire), len(w))
                # the reply
                self.assertEqual(r.id, 0xBEEF)
                self.assertEqual(r.question, [(name, 1, 1)])
                self.assertEqual([x.data for x in r.answer],
                                 [synth_ip(name)])
                self.assertEqual(harness.edns_options(r.opt.options),
                                 [(10, cookie + harness.SERVER_COOKIE)])
                self.check_relayed(r, proto)

    def test_same_client_id_from_two_clients_in_flight(self):
        """Two clients, one ID, different names, both in flight upstream
        at once: each gets its own answer (SPEC §4 IDs row)."""
        names = ["a.slow.synth.", "b.slow.synth."]
        res = harness.ask_all(self.proxy, names, qid=0x4242)
        for name, (r, _) in zip(names, res):
            self.assertEqual(r.id, 0x4242)
            self.assertEqual(r.question[0][0], name)
            self.assertEqual([x.data for x in r.answer], [synth_ip(name)])
        ids = [q.id for n in names for q in self.up.received(n)]
        self.assertEqual(len(set(ids)), 2,
                         "in-flight queries to one server need distinct IDs:"
                         " %r" % ids)

    # -- sizes (SPEC §8 cases 32-35, D3) --

    def assert_giant(self, r, n, tc, limit=None):
        self.assertEqual(r.rcode, NOERROR, r)
        self.assertEqual(r.tc, tc, r)
        self.assertEqual([x.data for x in r.answer],
                         ["240.0.0.%d" % i for i in range(n)],
                         "the upstream's first %d RRs, in order" % n)
        self.assertTrue(all(x.owner == harness.GIANT_OWNER and x.ttl == 30
                            for x in r.answer))
        if limit:
            self.assertLessEqual(len(r.wire), limit)

    def test_case32_giant_udp_no_edns_tc_then_tcp_gets_64(self):
        r = self.ask("giant.", proto="udp")
        self.assert_giant(r, 29, True, 512)
        self.assertIsNone(r.opt)
        r = self.ask("giant.", proto="tcp")
        self.assert_giant(r, 64, False)
        self.check_relayed(r, "tcp")
        self.assertIn("tcp", [q.transport
                              for q in self.up.received("giant.")])

    def test_case33_giant_tcp(self):
        r = self.ask("giant.", proto="tcp", edns=1232)
        self.assert_giant(r, 64, False)
        self.check_relayed(r, "tcp")

    def test_case34_giant_edns_65535(self):
        r = self.ask("giant.", proto="udp", edns=65535)
        self.assert_giant(r, 64, False)
        self.assertEqual(r.opt.udp_size, 4096, "upstream OPT relayed")
        self.check_relayed(r, "udp")

    def test_giant_edns_512_truncated_to_the_clients_size(self):
        r = self.ask("giant.", proto="udp", edns=512)
        self.assert_giant(r, 28, True, 512)
        self.assertIsNotNone(r.opt, "the OPT survives truncation")

    def test_case35_giant_tc_relayed_without_own_tcp_retry(self):
        n_tcp = self.up.count("giant-tc.", "tcp")
        for edns in (None, 4096):
            r = self.ask("giant-tc.", proto="udp", edns=edns)
            self.assert_giant(r, 29, True)
            self.check_relayed(r, "udp")
        time.sleep(0.3)
        self.assertEqual(self.up.count("giant-tc.", "tcp"), n_tcp,
                         "the proxy must not retry over TCP itself")
        r = self.ask("giant-tc.", proto="tcp")
        self.assert_giant(r, 29, True)

    def test_upstream_tc_reply_relayed_client_retries_over_tcp(self):
        r = self.ask("tc.synth.", proto="udp")
        self.assertEqual((r.rcode, r.tc, r.answer), (NOERROR, True, []))
        self.check_relayed(r, "udp")
        self.assertEqual([q.transport for q in self.up.received("tc.synth.")],
                         ["udp"])
        r = self.ask("tc.synth.", proto="tcp")
        self.assertFalse(r.tc)
        self.assert_synth(r)

    def test_oversized_udp_reply_to_non_edns_client_is_tc_not_servfail(self):
        """D3: a 1.6 KB and a 4.8 KB upstream UDP reply to a non-EDNS
        client: NOERROR, TC=1, within 512 bytes, a prefix of the upstream's
        records; the TCP retry gets them all."""
        for name, n in (("big1k.", 100), ("huge.", 300)):
            with self.subTest(name=name):
                r = self.ask(name, proto="udp")
                self.assertEqual(r.rcode, NOERROR, r)
                self.assertTrue(r.tc, r)
                self.assertLessEqual(len(r.wire), 512)
                full = self.expected(self.up, r, "tcp")
                self.assertEqual(harness.record_tuples(r.answer),
                                 harness.record_tuples(
                                     full.answer[:len(r.answer)]))
                r = self.ask(name, proto="tcp")
                self.assertEqual(len(r.answer), n)
                self.check_relayed(r, "tcp")

    def test_oversized_udp_reply_to_edns_client(self):
        """EDNS 4096: the 1.6 KB reply whole; EDNS 65535: the 4.8 KB reply
        whole, or (c-ares 1.18.1 reads at most 4096 B) TC=1 — never
        SERVFAIL."""
        r = self.ask("big1k.", proto="udp", edns=4096)
        self.assertEqual((r.rcode, r.tc, len(r.answer)), (NOERROR, False, 100))
        self.check_relayed(r, "udp")
        r = self.ask("huge.", proto="udp", edns=65535)
        self.assertEqual(r.rcode, NOERROR, r)
        if not r.tc:
            self.assertEqual(len(r.answer), 300)
            self.check_relayed(r, "udp")


# ---------------------------------------------------------------------------


class Failover(Base):
    """D4: failover, attempts and the all-fail rule; each test its own
    servers."""

    def test_dead_first_server_costs_one_timeout(self):
        dead, good = self.upstream("silent"), self.upstream()
        p = self.proxy([dead, good], args=fwd_args("1s"))
        names = synth_names(16, "deadfirst")
        res = harness.ask_all(p, names, timeout=LONG)
        for r, _ in res:
            self.assert_synth(r, good)
        self.assert_answered_within(res, 1.0 * SLACK)
        # random order: some queries met the dead server first (p = 2^-16
        # that none did)
        self.assertGreater(dead.count(), 0)
        self.assertEqual(good.count(), 16)
        res = harness.ask_all(p, synth_names(4, "deadfirsttcp"), proto="tcp",
                              timeout=LONG)
        for r, _ in res:
            self.assert_synth(r, good)
        self.assert_answered_within(res, 1.0 * SLACK)

    def test_closed_port_fails_over(self):
        """A server with nothing listening (ICMP port unreachable, TCP
        RST) is a network error: the next server answers."""
        good = self.upstream()
        closed = "127.0.0.1:%d" % harness.free_port()
        p = self.proxy([closed, good], args=fwd_args("1s"))
        for proto in ("udp", "tcp"):
            res = harness.ask_all(p, synth_names(8, "closed" + proto),
                                  proto=proto, timeout=LONG)
            for r, _ in res:
                self.assert_synth(r, good)
            self.assert_answered_within(res, 1.0 * SLACK)

    def test_servfail_or_refused_then_next_servers_answer(self):
        """Failover on SERVFAIL/REFUSED is immediate: no timeout is spent
        (the per-try timeout here is 5 s)."""
        for mode in ("servfail", "refused"):
            with self.subTest(mode=mode):
                bad, good = self.upstream(mode), self.upstream()
                p = self.proxy([bad, good], args=fwd_args("5s"))
                for proto in ("udp", "tcp"):
                    res = harness.ask_all(p, synth_names(12, mode + proto),
                                          proto=proto, timeout=LONG)
                    for r, _ in res:
                        self.assert_synth(r, good)
                    self.assert_answered_within(res, 5.0 / BELOW)
                self.assertGreater(bad.count(), 0)

    def test_all_refused_or_servfail_last_answer_relayed(self):
        """Every attempt (2 x 2 servers) answered REFUSED (SERVFAIL): the
        client gets the last one, the upstream's own message."""
        for mode, rcode in (("refused", REFUSED), ("servfail", SERVFAIL)):
            with self.subTest(mode=mode):
                a = self.upstream(mode, tag="server-a")
                b = self.upstream(mode, tag="server-b")
                p = self.proxy([a, b], args=fwd_args("5s"))
                for proto in ("udp", "tcp"):
                    a.clear()
                    b.clear()
                    r, dt = p.timed_ask("x.example.", proto=proto, edns=1232)
                    self.assertEqual(r.rcode, rcode, r)
                    self.assertLess(dt, 5.0 / BELOW)
                    self.assertEqual((a.count(), b.count()), (2, 2),
                                     "every server once, then one more round")
                    last = max(a.received() + b.received(),
                               key=lambda q: q.time)
                    tag = "server-a" if last in a.received() else "server-b"
                    self.assertEqual(
                        [x.rdata for x in r.additional if x is not r.opt],
                        [bytes([len(tag)]) + tag.encode()],
                        "not the last upstream answer (%s's)" % tag)
                    up = a if tag == "server-a" else b
                    assert_relayed(self, r, self.expected(up, r, proto),
                                   r.query)

    def test_no_server_answers_servfail_within_the_bound(self):
        """Two silent servers, 300 ms per attempt, 4 attempts: SERVFAIL
        after about 1.2 s, over UDP and TCP, with and without EDNS."""
        a, b = self.upstream("silent"), self.upstream("silent")
        p = self.proxy([a, b], args=fwd_args("300ms"))
        for proto in ("udp", "tcp"):
            for edns in (None, 1232):
                with self.subTest(proto=proto, edns=edns):
                    a.clear()
                    b.clear()
                    r, dt = p.timed_ask("www.bing.com.", proto=proto,
                                        edns=edns, flags=F_RD | F_CD,
                                        timeout=LONG)
                    assert_servfail(self, r, r.query)
                    self.assertGreaterEqual(dt, 1.2 * 0.9)
                    self.assertLess(dt, 1.2 * SLACK)
                    self.assertEqual((a.count(), b.count()), (2, 2))

    def test_forward_attempts_is_the_total(self):
        a, b = self.upstream("silent"), self.upstream("silent")
        p = self.proxy([a, b], args=fwd_args("200ms", attempts=3))
        r, dt = p.timed_ask("www.bing.com.", timeout=LONG)
        assert_servfail(self, r, r.query)
        self.assertEqual(a.count() + b.count(), 3)
        self.assertGreaterEqual(dt, 0.6 * 0.9)
        self.assertLess(dt, 0.6 * SLACK)

    def test_spec8_timeout_100ms_gives_about_200ms(self):
        """§8 timeout test: one silent UDP server, 100 ms: SERVFAIL after
        two attempts, 180-400 ms (upper bound with 2x slack); the flag and
        DNS_FORWARD_TIMEOUT alike."""
        for how in ("flag", "env"):
            with self.subTest(how=how):
                dead = self.upstream("silent")
                if how == "flag":
                    p = self.proxy(dead, args=fwd_args("100ms"))
                else:
                    p = self.proxy(dead, env={"DNS_FORWARD_TIMEOUT": "100ms"})
                r, dt = p.timed_ask("www.bing.com.", timeout=LONG)
                assert_servfail(self, r, r.query)
                self.assertGreaterEqual(dt, 0.18, "gave up early")
                self.assertLess(dt, 0.4 * SLACK)
                self.assertEqual(dead.count(), 2)

    def test_zero_servers_immediate_servfail(self):
        """No --upstream, no nameserver in resolv.conf: SERVFAIL at once;
        the table still answers."""
        p = self.proxy(False)
        for proto in ("udp", "tcp"):
            for edns in (None, 1232):
                with self.subTest(proto=proto, edns=edns):
                    r, dt = p.timed_ask("www.bing.com.", proto=proto,
                                        edns=edns, qid=0x7777)
                    assert_servfail(self, r, r.query)
                    self.assertLess(dt, 0.5 * SLACK)
            assert_local(self, p.ask("www.google.com.", proto=proto),
                         [("www.google.com.", "A", "1.1.1.1")])

    @unittest.skipUnless(harness.have_ipv6_loopback(), "no IPv6 loopback")
    def test_ipv6_upstream(self):
        """--upstream [::1]:PORT; a dead IPv4 server next to it."""
        up6 = self.upstream(v6=True)
        p = self.proxy(["127.0.0.1:%d" % harness.free_port(), up6],
                       args=fwd_args("1s"))
        for proto in ("udp", "tcp"):
            for r, _ in harness.ask_all(p, synth_names(4, "v6" + proto),
                                        proto=proto, timeout=LONG):
                self.assert_synth(r, up6)
        self.assertEqual({q.transport for q in up6.received()},
                         {"udp", "tcp"})

    def test_upstream_flag_replaces_resolv_conf_nameservers(self):
        """resolv.conf names two black-hole servers; --upstream replaces
        them, so no query waits for a timeout (2 s)."""
        good = self.upstream()
        p = self.proxy(good, nameservers=("192.0.2.1", "192.0.2.2"))
        res = harness.ask_all(p, synth_names(8, "replaces"))
        for r, _ in res:
            self.assert_synth(r, good)
        self.assert_answered_within(res, 1.0)

    def test_wrong_id_reply_is_not_relayed(self):
        bad, good = self.upstream("wrong_id"), self.upstream()
        p = self.proxy([bad, good], args=fwd_args("500ms"))
        res = harness.ask_all(p, synth_names(8, "wrongid"), timeout=LONG)
        for r, _ in res:
            self.assert_synth(r, good)
        self.assert_answered_within(res, 0.5 * SLACK)
        self.assertGreater(bad.count(), 0)
        # alone: SERVFAIL after its attempts, never its A 6.6.6.6
        p = self.proxy(self.upstream("wrong_id"), args=fwd_args("300ms"))
        for proto in ("udp", "tcp"):
            r, dt = p.timed_ask("www.bing.com.", proto=proto, timeout=LONG)
            assert_servfail(self, r, r.query)
            self.assertLess(dt, 0.6 * SLACK)

    def test_garbage_reply_is_not_relayed(self):
        bad, good = self.upstream("garbage"), self.upstream()
        p = self.proxy([bad, good], args=fwd_args("500ms"))
        for proto in ("udp", "tcp"):
            res = harness.ask_all(p, synth_names(8, "garbage" + proto),
                                  proto=proto, timeout=LONG)
            for r, _ in res:
                self.assert_synth(r, good)
            self.assert_answered_within(res, 0.5 * SLACK)
        self.assertGreater(bad.count(), 0)
        p = self.proxy(self.upstream("garbage"), args=fwd_args("300ms"))
        for proto in ("udp", "tcp"):
            r, dt = p.timed_ask("www.bing.com.", proto=proto, timeout=LONG)
            assert_servfail(self, r, r.query)
            self.assertLess(dt, 0.6 * SLACK)

    def test_formerr_without_opt_is_relayed_once(self):
        """FORMERR is a final answer (SPEC §4): relayed, not retried; the
        query is never re-sent in another form (c-ares' EDNS fallback
        strips an OPT from the query and resends it)."""
        up = self.upstream("formerr")
        p = self.proxy(up, args=fwd_args("1s"))
        for proto in ("udp", "tcp"):
            for edns in (None, 1232):
                with self.subTest(proto=proto, edns=edns):
                    up.clear()
                    r, dt = p.timed_ask("www.bing.com.", proto=proto,
                                        edns=edns, timeout=LONG)
                    self.assertEqual(r.rcode, harness.FORMERR, r)
                    assert_relayed(self, r, self.expected(up, r, proto),
                                   r.query)
                    self.assertLess(dt, 1.0 / BELOW)
                    time.sleep(0.2)
                    self.assertEqual([q.wire[2:] for q in up.received()],
                                     [r.query[2:]])

    def test_tcp_connection_closed_by_upstream_fails_over(self):
        bad, good = self.upstream("close"), self.upstream()
        p = self.proxy([bad, good], args=fwd_args("1s"))
        res = harness.ask_all(p, synth_names(8, "closes"), proto="tcp",
                              timeout=LONG)
        for r, _ in res:
            self.assert_synth(r, good)
        self.assert_answered_within(res, 1.0 * SLACK)
        self.assertGreater(bad.count(transport="tcp"), 0)


class Parallel(Base):
    """--forward-parallel / DNS_FORWARD_PARALLEL: every server at once,
    the first good answer wins."""

    def check_fast_wins(self, **kw):
        slow, fast = self.upstream("slow", delay=1.5), self.upstream()
        slow.answers.update({(n, 1): Answer(NOERROR, [(n, 1, b"\x07" * 4)])
                             for n in synth_names(8, "par")})
        p = self.proxy([slow, fast], **kw)
        res = harness.ask_all(p, synth_names(8, "par"), timeout=LONG)
        for r, _ in res:
            self.assert_synth(r, fast)
        self.assert_answered_within(res, 1.5 / BELOW)
        self.assertEqual(fast.count(), 8)
        self.assertEqual(slow.wait_count(8, timeout=0.5), 8,
                         "every server is asked at once")

    def test_parallel_flag_first_good_answer_wins(self):
        self.check_fast_wins(args=fwd_args("3s", parallel=True))

    def test_parallel_env(self):
        for v in ("true", "1"):
            with self.subTest(value=v):
                self.check_fast_wins(args=fwd_args("3s"),
                                     env={"DNS_FORWARD_PARALLEL": v})

    def test_parallel_servfail_and_refused_are_not_good_answers(self):
        ups = [self.upstream("servfail"), self.upstream("refused"),
               self.upstream()]
        p = self.proxy(ups, args=fwd_args("3s", parallel=True))
        for proto in ("udp", "tcp"):
            for r, _ in harness.ask_all(p, synth_names(8, "pbad" + proto),
                                        proto=proto, timeout=LONG):
                self.assert_synth(r, ups[2])

    def test_parallel_all_fail(self):
        ref = [self.upstream("refused", tag="r1"),
               self.upstream("refused", tag="r2")]
        p = self.proxy(ref, args=fwd_args("3s", parallel=True))
        r, dt = p.timed_ask("www.bing.com.", timeout=LONG)
        self.assertEqual(r.rcode, REFUSED, "the last REFUSED relayed: %r" % r)
        self.assertLess(dt, 3.0 / BELOW)
        dead = [self.upstream("silent"), self.upstream("silent")]
        p = self.proxy(dead, args=fwd_args("300ms", parallel=True))
        r, dt = p.timed_ask("www.bing.com.", timeout=LONG)
        assert_servfail(self, r, r.query)
        self.assertLess(dt, 1.2 * SLACK)


# ---------------------------------------------------------------------------


class Load(Base):
    """Many forwards at once, the in-flight cap (D10), descriptors."""

    @unittest.skipIf(harness.VALGRIND, "a capacity test: under valgrind "
                     "the proxy reads too slowly for a 2000-datagram burst")
    def test_2000_concurrent_distinct_forwards_all_answered(self):
        """2,000 distinct names over UDP, all in flight at once (the
        upstream holds each reply 1 s), all answered correctly."""
        up = self.upstream("slow", delay=1.0)
        p = self.proxy(up)
        names = synth_names(2000, "load")
        wires = [build_query(n, "A", qid=i + 1) for i, n in enumerate(names)]
        got = harness.udp_burst(p.addr4, wires, timeout=10.0 * harness.SLOW)
        missing = [names[i] for i in range(len(names)) if i + 1 not in got]
        self.assertEqual(missing[:5], [], "%d of 2000 unanswered"
                         % len(missing))
        for i, n in enumerate(names):
            r = parse_reply(got[i + 1])
            self.assertEqual((r.rcode, r.question[0][0],
                              [x.data for x in r.answer]),
                             (NOERROR, n, [synth_ip(n)]))
        recv = up.received()
        self.assertEqual(len({q.name for q in recv}), 2000)
        spread = max(q.time for q in recv) - min(q.time for q in recv)
        self.assertLess(spread, 1.0, "the forwards were not all in flight "
                        "at once (arrivals spread over %.2f s)" % spread)
        p.assert_alive()

    def test_tcp_pipelined_forwards(self):
        """100 forwards pipelined on each of 4 TCP connections, held 0.5 s
        upstream: all answered, over TCP upstream."""
        up = self.upstream("slow", delay=0.5)
        p = self.proxy(up)
        conns = [harness.tcp_connect(p.addr4, LONG) for _ in range(4)]
        try:
            sent = {}
            for c, conn in enumerate(conns):
                buf = b""
                for i in range(100):
                    n = "t%d.c%d.pipe%s" % (i, c, harness.SYNTH_SUFFIX)
                    qid = c * 1000 + i
                    sent[qid] = n
                    buf += harness.frame(build_query(n, "A", qid=qid))
                conn.sendall(buf)
            for conn in conns:
                for _ in range(100):
                    r = parse_reply(harness.recv_frame(conn))
                    n = sent.pop(r.id)
                    self.assertEqual([x.data for x in r.answer],
                                     [synth_ip(n)])
        finally:
            for conn in conns:
                conn.close()
        self.assertEqual(sent, {})
        self.assertEqual({q.transport for q in up.received()}, {"tcp"})

    def test_in_flight_cap(self):
        """--max-forwards 10 and a slow upstream: the 11th concurrent
        forward gets SERVFAIL at once and is never sent; table names are
        still answered; the 10 get their answers; then forwarding works
        again."""
        up = self.upstream()
        up.faults["*.slow.test."] = ("slow", 2.0)
        p = self.proxy(up, args=fwd_args("5s", max_forwards=10))
        held = []
        try:
            for i in range(10):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(s)
                s.connect(p.addr4)
                s.send(build_query("h%d.slow.test." % i, "A", qid=100 + i))
            self.assertEqual(up.wait_count(10), 10)
            t0 = time.monotonic()
            for proto in ("udp", "tcp"):
                for name in ("over.slow.test.", "www.bing.com."):
                    with self.subTest(proto=proto, name=name):
                        r, dt = p.timed_ask(name, proto=proto)
                        assert_servfail(self, r, r.query)
                        self.assertLess(dt, 0.5 * SLACK)
                        self.assertEqual(up.count(name), 0,
                                         "a query over the cap was sent")
                assert_local(self, p.ask("www.google.com.", proto=proto),
                             [("www.google.com.", "A", "1.1.1.1")])
            self.assertLess(time.monotonic() - t0, 2.0,
                            "the held forwards ended before the checks")
            for i, s in enumerate(held):
                s.settimeout(LONG)
                r = parse_reply(s.recv(65535))
                self.assertEqual((r.id, r.rcode), (100 + i, NXDOMAIN), r)
        finally:
            for s in held:
                s.close()
        r = p.ask("www.bing.com.")
        self.assertEqual([x.data for x in r.answer], ["1.1.1.1"])

    def test_no_descriptor_leak(self):
        """A burst of forwards over UDP and TCP, with answers, timeouts,
        refusals, garbage and closed connections, leaves the proxy with
        the descriptors it had after a warm-up (+ a small constant)."""
        up = self.upstream()
        for zone, fault in (("silent", "silent"), ("refused", "refused"),
                            ("garbage", "garbage"), ("close", "close")):
            up.faults["*.%s.test." % zone] = fault
        good = self.upstream()
        p = self.proxy([up, good], args=fwd_args("200ms"))
        zones = ["synth", "silent.test", "refused.test", "garbage.test",
                 "close.test"]

        def burst(tag, n):
            names = ["%s%d.%s.%s." % (tag, i, tag, z)
                     for i in range(n) for z in zones]
            for proto in ("udp", "tcp"):
                for r, _ in harness.ask_all(p, names, proto=proto,
                                            timeout=LONG):
                    self.assertIn(r.rcode, (NOERROR, NXDOMAIN, REFUSED,
                                            SERVFAIL), r)
        burst("warm", 4)
        time.sleep(1.0)
        before = p.fd_count()
        burst("burst", 40)
        deadline = time.monotonic() + 5.0 * harness.SLOW
        while p.fd_count() > before + 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        after = p.fd_count()
        self.assertLessEqual(after, before + 4,
                             "descriptors: %d after warm-up, %d after the "
                             "burst: %s" % (before, after, sorted(
                                 os.readlink("/proc/%d/fd/%s" % (
                                     p.proc.pid, f)) for f in os.listdir(
                                     "/proc/%d/fd" % p.proc.pid))))
        p.assert_alive()


if __name__ == "__main__":
    unittest.main()
