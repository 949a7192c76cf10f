#!/usr/bin/python3
"""UDP batching (agent/listen.c): datagrams are read up to 32 at a time
with recvmmsg() and the replies served meanwhile leave together by
sendmmsg(); forwarded replies go later, one by one.  Per datagram nothing
may change: every reply goes to the socket (source address and port) its
query came from, with its ID and the right content, over IPv4 and IPv6.

The proxy is stopped (SIGSTOP) while a burst is sent, so that on SIGCONT
its sockets hold more than one batch: table hits, forwarded names (the
harness's fake upstream), malformed datagrams, EDNS and non-EDNS sizes,
truncation, datagrams longer than the 512-byte head of a receive slot, all
mixed in one queue.  On wildcard binds each reply must leave from the
address its query was sent to (pktinfo), checked in a private network
namespace."""

import os
import random
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (build_query, header, NOERROR,  # noqa: E402
                     FORMERR, NOTIMP, F_RD)

IPV6 = harness.have_ipv6_loopback()
SEED = int(os.environ.get("DNSPROXY_BB_SEED", "8"))
NSVC = 50
SVC_IP = ["10.1.%d.%d" % (i // 200, i % 200 + 1) for i in range(NSVC)]
BIG_IPS = ["10.2.%d.%d" % (i // 250, i % 250 + 1) for i in range(100)]
V6_IP = "2001:db8::42"
TABLE = {"table": dict(
    [("svc%d.example" % i, {"ips": [SVC_IP[i]], "registry": "External"})
     for i in range(NSVC)] +
    [("big.example", {"ips": BIG_IPS, "registry": "External"}),
     ("six.example", {"ips": [V6_IP], "registry": "External"})])}
WAIT = 10.0 * harness.SLOW   # for every reply of a burst


def long_query(name, qid, size):
    """A query of size (>= 524) bytes whose OPT holds three options, with
    headers at bytes 508-511 (the end of the receive slot's 512-byte head)
    and 520-523 (in the rest of the slot).  The data bytes (0xab) read as a
    header make a bad length, so if the two parts were not joined back
    exactly the proxy would answer FORMERR."""
    base = len(build_query(name, "A", qid=qid, edns=1232))
    opts = (harness.edns_option(65001, b"\xab" * (508 - base - 4)) +
            harness.edns_option(65002, b"\xab" * 8) +
            harness.edns_option(65003, b"\xab" * (size - 524)))
    wire = build_query(name, "A", qid=qid, edns=1232, options=opts)
    assert len(wire) == size, len(wire)
    assert wire[508:512] == b"\xfd\xea\x00\x08", wire[500:530]
    assert wire[520:522] == b"\xfd\xeb", wire[500:530]
    return wire


class Case:
    """One datagram of a burst and what must come back for it."""

    def __init__(self, kind, wire, check):
        self.kind, self.wire, self.check = kind, wire, check


def edns_opt(tc, r, edns):
    if edns is None:
        tc.assertIsNone(r.opt, "no OPT in the query, none in the reply")
    else:
        tc.assertIsNotNone(r.opt, "OPT expected: %r" % r)
        tc.assertEqual(r.opt.udp_size, 1232)


def make_case(rng, qid):
    """A random datagram with ID qid, and the check of its reply (None:
    it must be dropped)."""
    kind = rng.choice(["hit", "hit", "hit", "hit6", "big", "fwd", "fwd",
                       "long", "formerr", "notimp", "qr", "short"])
    edns = rng.choice([None, 1232, 4096])
    if kind == "hit":
        i = rng.randrange(NSVC)
        name = "svc%d.example." % i
        wire = build_query(name, "A", qid=qid, edns=edns)

        def check(tc, r):
            tc.assertEqual((r.rcode, r.aa, r.tc), (NOERROR, True, False))
            tc.assertEqual(r.question, [(name, 1, 1)])
            tc.assertEqual([(x.owner, x.data) for x in r.answer],
                           [(name, SVC_IP[i])])
            edns_opt(tc, r, edns)
    elif kind == "hit6":
        wire = build_query("six.example.", "AAAA", qid=qid, edns=edns)

        def check(tc, r):
            tc.assertEqual((r.rcode, r.aa), (NOERROR, True))
            tc.assertEqual([x.data for x in r.answer], [V6_IP])
            edns_opt(tc, r, edns)
    elif kind == "big":
        wire = build_query("big.example.", "A", qid=qid, edns=edns)
        limit = 512 if edns is None else edns

        def check(tc, r):
            tc.assertEqual((r.rcode, r.aa), (NOERROR, True))
            tc.assertLessEqual(len(r.wire), limit)
            got = [x.data for x in r.answer]
            tc.assertEqual(len(set(got)), len(got))
            tc.assertTrue(set(got) <= set(BIG_IPS))
            # header 12, question 17, 16 per A record, OPT 11
            fit = (limit - 29 - (0 if edns is None else 11)) // 16
            tc.assertEqual(len(got), min(100, fit))
            tc.assertEqual(r.tc, fit < 100)
            edns_opt(tc, r, edns)
    elif kind == "fwd":
        name = "b%d%s" % (qid, harness.SYNTH_SUFFIX)
        wire = build_query(name, "A", qid=qid, edns=edns)

        def check(tc, r):
            tc.assertEqual(r.rcode, NOERROR)
            tc.assertEqual(r.question, [(name, 1, 1)])
            tc.assertEqual([x.data for x in r.answer],
                           [harness.synth_ip(name)])
    elif kind == "long":
        # longer than the receive slot's 512-byte head: read in two parts
        i = rng.randrange(NSVC)
        name = "svc%d.example." % i
        wire = long_query(name, qid, rng.choice([524, 600, 1500, 3000]))

        def check(tc, r):
            tc.assertEqual((r.rcode, r.aa), (NOERROR, True))
            tc.assertEqual([(x.owner, x.data) for x in r.answer],
                           [(name, SVC_IP[i])])
            edns_opt(tc, r, 1232)
    elif kind == "formerr":
        wire = header(qid, qd=0)

        def check(tc, r):
            tc.assertEqual((r.rcode, r.question), (FORMERR, []))
    elif kind == "notimp":
        wire = build_query("svc1.example.", "A", qid=qid, opcode=2)

        def check(tc, r):
            tc.assertEqual((r.rcode, r.opcode), (NOTIMP, 2))
    elif kind == "qr":
        wire = bytearray(build_query("svc2.example.", "A", qid=qid))
        wire[2] |= 0x80
        wire, check = bytes(wire), None
    else:  # "short": a header cut short
        wire, check = header(qid)[:rng.choice([2, 5, 11])], None
    return Case(kind, wire, check)


class Clients:
    """n UDP sockets per family, each connected to the proxy (so each has
    its own source port and takes replies from the proxy's address only)."""

    def __init__(self, proxy, n, families):
        self.socks = []
        for fam in families:
            addr = proxy.addr6 if fam == socket.AF_INET6 else proxy.addr4
            for _ in range(n):
                s = socket.socket(fam, socket.SOCK_DGRAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
                s.connect(addr)
                s.setblocking(False)
                self.socks.append(s)

    def close(self):
        for s in self.socks:
            s.close()

    def collect(self, want, timeout):
        """{socket index: [reply bytes]} until every ID in want came (or
        timeout), then a short grace for strays."""
        got = {i: [] for i in range(len(self.socks))}
        seen = set()
        sel = selectors.DefaultSelector()
        for i, s in enumerate(self.socks):
            sel.register(s, selectors.EVENT_READ, i)
        deadline = time.monotonic() + timeout
        grace = None
        try:
            while True:
                now = time.monotonic()
                if grace is None and (want <= seen or now > deadline):
                    grace = now + 0.3
                if grace is not None and now > grace:
                    return got
                end = grace if grace is not None else deadline
                for key, _ in sel.select(max(0.0, min(0.05, end - now))):
                    while True:
                        try:
                            d = key.fileobj.recv(65535)
                        except (BlockingIOError, ConnectionRefusedError):
                            break
                        got[key.data].append(d)
                        if len(d) >= 2:
                            seen.add(harness.query_id(d))
        finally:
            sel.close()


class UdpBatch(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proxy = harness.Proxy(table=TABLE, v6=IPV6)
        cls.addClassCleanup(cls.proxy.close)
        cls.proxy.start()

    def setUp(self):
        self.proxy.assert_alive()

    def families(self):
        return [socket.AF_INET] + ([socket.AF_INET6] if IPV6 else [])

    def burst(self, clients, cases):
        """Sends cases[k] on socket k % len(socks) while the proxy is
        stopped, resumes it, and returns what each socket got."""
        pid = self.proxy.proc.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            for k, c in enumerate(cases):
                clients.socks[k % len(clients.socks)].send(c.wire)
        finally:
            os.kill(pid, signal.SIGCONT)
        want = {harness.query_id(c.wire) for c in cases
                if c.check is not None}
        return clients.collect(want, WAIT)

    def verify(self, clients, cases, got):
        """Every reply on the socket its query came from, once, with its ID
        and content; nothing for the dropped ones."""
        nsock = len(clients.socks)
        by_id = {harness.query_id(c.wire): (k, c)
                 for k, c in enumerate(cases) if len(c.wire) >= 2}
        answered = set()
        for i, replies in got.items():
            for d in replies:
                r = harness.parse_reply(d)
                self.assertIn(r.id, by_id, "a reply to no query: %r" % r)
                k, c = by_id[r.id]
                self.assertEqual(k % nsock, i, "reply to %s query %d came "
                                 "to socket %d, sent from %d"
                                 % (c.kind, r.id, i, k % nsock))
                self.assertIsNotNone(c.check, "a reply to a %s datagram "
                                     "that must be dropped: %r" % (c.kind, r))
                self.assertNotIn(r.id, answered, "two replies: %r" % r)
                answered.add(r.id)
                self.assertTrue(r.qr)
                with self.subTest(kind=c.kind, id=r.id):
                    c.check(self, r)
        missing = sorted((c.kind, harness.query_id(c.wire)) for c in cases
                         if c.check is not None and
                         harness.query_id(c.wire) not in answered)
        self.assertEqual(missing, [], "%d unanswered" % len(missing))

    def test_mixed_burst_bigger_than_a_batch(self):
        """240 datagrams from 24 sockets per family, queued while the
        proxy is stopped: every reply right, on the right socket."""
        rng = random.Random(SEED)
        cases = [make_case(rng, qid) for qid in range(1, 241)]
        kinds = {c.kind for c in cases}
        self.assertTrue({"hit", "fwd", "long", "formerr", "qr", "short",
                         "big"} <= kinds, kinds)
        before = self.proxy.metrics()
        clients = Clients(self.proxy, 24, self.families())
        try:
            got = self.burst(clients, cases)
            self.verify(clients, cases, got)
        finally:
            clients.close()
        after = self.proxy.metrics()
        # every malformed datagram was counted once (dropped or answered)
        bad = sum(1 for c in cases
                  if c.kind in ("formerr", "notimp", "qr", "short"))
        self.assertEqual(sum_metric(after, "dnsproxy_malformed_queries_total")
                         - sum_metric(before,
                                      "dnsproxy_malformed_queries_total"),
                         bad)
        self.proxy.assert_alive()

    def test_one_query_from_each_of_many_sockets(self):
        """150 sockets per family, one table hit each, all queued at once:
        each socket gets exactly its own answer."""
        rng = random.Random(SEED + 1)
        clients = Clients(self.proxy, 150, self.families())
        cases = []
        for qid in range(1, len(clients.socks) + 1):
            i = rng.randrange(NSVC)
            name = "svc%d.example." % i
            wire = build_query(name, "A", qid=qid, flags=F_RD)

            def check(tc, r, name=name, i=i):
                tc.assertEqual(r.rcode, NOERROR)
                tc.assertEqual([(x.owner, x.data) for x in r.answer],
                               [(name, SVC_IP[i])])
            cases.append(Case("hit", wire, check))
        try:
            got = self.burst(clients, cases)
            self.verify(clients, cases, got)
            for i, replies in got.items():
                self.assertEqual(len(replies), 1, "socket %d" % i)
        finally:
            clients.close()

    def test_many_queries_from_one_socket(self):
        """100 queries from one socket (one source port), queued: 100
        replies, each ID once, forwarded ones among them."""
        rng = random.Random(SEED + 2)
        clients = Clients(self.proxy, 1, [socket.AF_INET])
        cases = []
        for qid in range(1000, 1100):
            if qid % 3 == 0:
                name = "s%d%s" % (qid, harness.SYNTH_SUFFIX)

                def check(tc, r, name=name):
                    tc.assertEqual([x.data for x in r.answer],
                                   [harness.synth_ip(name)])
            else:
                i = rng.randrange(NSVC)
                name = "svc%d.example." % i

                def check(tc, r, name=name, i=i):
                    tc.assertEqual([(x.owner, x.data) for x in r.answer],
                                   [(name, SVC_IP[i])])
            cases.append(Case("mixed", build_query(name, "A", qid=qid),
                              check))
        try:
            got = self.burst(clients, cases)
            self.verify(clients, cases, got)
            self.assertEqual(len(got[0]), 100)
        finally:
            clients.close()


IN_NETNS = os.environ.get("DNSPROXY_BB_IN_NETNS") == "1"


class Wildcard(unittest.TestCase):
    """On a wildcard bind (0.0.0.0, [::]) the proxy learns each datagram's
    destination from IP_PKTINFO / IPV6_PKTINFO and must answer from it,
    batch or not.  Binding the wildcard would open the proxy beyond
    loopback, so this runs in a network namespace of its own (unshare -n,
    loopback only): the test re-runs this file there."""

    @unittest.skipIf(IN_NETNS, "the inner run")
    def test_replies_leave_from_the_queried_address(self):
        if os.geteuid() != 0 or shutil.which("unshare") is None or \
                shutil.which("ip") is None:
            self.skipTest("needs root, unshare and ip")
        env = dict(os.environ, DNSPROXY_BB_IN_NETNS="1")
        p = subprocess.run(
            ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"',
             "sh", sys.executable, os.path.abspath(__file__),
             "Wildcard.inner"], env=env, capture_output=True, text=True,
            timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stderr, r"Ran 1 test", p.stderr)

    @unittest.skipUnless(IN_NETNS, "runs in a private network namespace")
    def inner(self):
        v6 = harness.have_ipv6_loopback()
        port = harness.free_port(v6=v6)
        listen = ["0.0.0.0:%d" % port] + (["[::]:%d" % port] if v6 else [])
        p = harness.Proxy(table=TABLE, listen=listen)
        p.port, p.addr4, p.addr6 = port, ("127.0.0.1", port), ("::1", port)
        self.addCleanup(p.close)
        p.start()
        # 127.0.0.0/8 is all local: each address is a distinct destination
        dests = [("127.0.0.1", socket.AF_INET), ("127.0.0.2", socket.AF_INET),
                 ("127.3.4.5", socket.AF_INET)]
        if v6:
            dests.append(("::1", socket.AF_INET6))
        socks = []
        for addr, fam in dests:
            for _ in range(10):
                s = socket.socket(fam, socket.SOCK_DGRAM)
                s.settimeout(WAIT)
                # connected: only replies from exactly addr are received
                s.connect((addr, port))
                socks.append((s, addr))
                self.addCleanup(s.close)
        sent = {}
        os.kill(p.proc.pid, signal.SIGSTOP)
        try:
            for k, (s, addr) in enumerate(socks):
                for j in range(4):   # 4 x 30 v4 datagrams: several batches
                    qid = k * 4 + j
                    i = qid % NSVC
                    s.send(build_query("svc%d.example." % i, "A", qid=qid))
                    sent[qid] = (k, SVC_IP[i])
        finally:
            os.kill(p.proc.pid, signal.SIGCONT)
        for k, (s, addr) in enumerate(socks):
            for _ in range(4):
                d, src = s.recvfrom(65535)
                self.assertEqual(src[0], addr)
                r = harness.parse_reply(d)
                self.assertEqual(sent.pop(r.id),
                                 (k, [x.data for x in r.answer][0]))
        self.assertEqual(sent, {})


def sum_metric(m, name):
    return sum(v for (n, _), v in m.items() if n == name)


if __name__ == "__main__":
    unittest.main()
