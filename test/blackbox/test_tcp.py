#!/usr/bin/python3
"""TCP transport (SPEC §3 "TCP and limits", D10): 2-byte framing,
pipelining, split frames, 128 queries per connection, the 8 s idle timeout,
slow or stuck clients not blocking others, many connections at once."""

import os
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (build_query, frame, recv_frame, parse_reply,  # noqa
                     tcp_connect, closed_by_peer, assert_local, NOERROR)

BIG6 = ["2001:db8::%x" % (i + 1) for i in range(1000)]
TABLE = harness.load_fixture("spec8.json")
TABLE["table"]["big6.example"] = {"ips": BIG6, "registry": "External"}

# (name, qtype) -> expected answer as a sorted list of (owner, type, data)
EXPECT = {
    ("www.google.com.", "A"): [("www.google.com.", "A", "1.1.1.1")],
    ("productpage.", "A"): [("productpage.", "A", "9.9.9.9")],
    ("dual.localhost.", "AAAA"): [("dual.localhost.", "AAAA",
                                   "2001:db8::ff00:42:8329")],
    ("ipv4.localhost.", "AAAA"): [],
    ("foo.wildcard.", "A"): [("foo.wildcard.", "A", "10.10.10.10")],
    ("details.ns2.svc.cluster.remote.", "A"): sorted(
        ("details.ns2.svc.cluster.remote.", "A", ip) for ip in
        ("11.11.11.11", "12.12.12.12", "13.13.13.13", "14.14.14.14")),
}
KEYS = sorted(EXPECT)


def mkqueries(n, id_base=1000):
    """n queries with distinct IDs cycling through EXPECT."""
    out = []
    for i in range(n):
        name, qt = KEYS[i % len(KEYS)]
        out.append((build_query(name, qt, qid=(id_base + i) & 0xFFFF),
                    (name, qt)))
    return out


class Tcp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proxy = harness.Proxy(table=TABLE, namespace="ns1")
        cls.addClassCleanup(cls.proxy.close)
        cls.proxy.start()

    def setUp(self):
        self.proxy.assert_alive()

    def connect(self, timeout=harness.QUERY_TIMEOUT):
        s = tcp_connect(self.proxy.addr4, timeout)
        self.addCleanup(s.close)
        return s

    def check(self, wire, key, r):
        self.assertEqual(r.id, harness.query_id(wire))
        harness.assert_reply_to(self, r, wire)
        assert_local(self, r, EXPECT[key], ordered=False)

    def read_replies(self, s, queries):
        """Reads len(queries) frames from s, in any order; checks each."""
        byid = {harness.query_id(w): (w, k) for w, k in queries}
        self.assertEqual(len(byid), len(queries))
        seen = set()
        for _ in queries:
            r = parse_reply(recv_frame(s))
            self.assertIn(r.id, byid, "reply with an unknown ID")
            self.assertNotIn(r.id, seen, "two replies for one query")
            seen.add(r.id)
            w, k = byid[r.id]
            self.check(w, k, r)

    def test_framing_and_connection_reuse(self):
        s = self.connect()
        for w, k in mkqueries(10):
            s.sendall(frame(w))
            data = recv_frame(s)
            self.check(w, k, parse_reply(data))

    def test_pipelined_queries_in_one_write_all_answered(self):
        s = self.connect()
        qs = mkqueries(40)
        s.sendall(b"".join(frame(w) for w, _ in qs))
        self.read_replies(s, qs)

    def test_frame_split_byte_by_byte(self):
        s = self.connect()
        qs = mkqueries(2)
        data = b"".join(frame(w) for w, _ in qs)
        for i in range(len(data)):
            s.send(data[i:i + 1])
            time.sleep(0.005)
        self.read_replies(s, qs)

    def test_frame_boundaries_inside_writes(self):
        s = self.connect()
        qs = mkqueries(3)
        data = b"".join(frame(w) for w, _ in qs)
        cuts = [1, len(frame(qs[0][0])) + 1, len(data) - 3]
        prev = 0
        for c in cuts + [len(data)]:
            s.send(data[prev:c])
            prev = c
            time.sleep(0.05)
        self.read_replies(s, qs)

    def test_128_queries_then_server_closes(self):
        s = self.connect()
        for w, k in mkqueries(128):
            s.sendall(frame(w))
            self.check(w, k, parse_reply(recv_frame(s)))
        # the 129th query is not answered: the connection is closed
        w129 = build_query("www.google.com.", "A", qid=129)
        try:
            s.sendall(frame(w129))
        except (BrokenPipeError, ConnectionResetError):
            return
        self.assertTrue(closed_by_peer(s, 5.0 * harness.SLOW),
                        "connection still open after 128 queries")

    def test_128_pipelined_queries_answered_then_closed(self):
        s = self.connect()
        qs = mkqueries(128)
        s.sendall(b"".join(frame(w) for w, _ in qs))
        self.read_replies(s, qs)
        self.assertTrue(closed_by_peer(s, 5.0 * harness.SLOW),
                        "connection still open after 128 queries")

    def test_idle_connections_closed_after_about_8s(self):
        """D10: idle 8 s (asserted between 6 and 20 s)."""
        results = {}

        def idle(kind):
            s = tcp_connect(self.proxy.addr4)
            try:
                if kind == "after_query":
                    w, k = mkqueries(1)[0]
                    s.sendall(frame(w))
                    recv_frame(s)
                t0 = time.monotonic()
                closed = closed_by_peer(s, 20.0 * harness.SLOW)
                results[kind] = (closed, time.monotonic() - t0)
            finally:
                s.close()

        ts = [threading.Thread(target=idle, args=(k,))
              for k in ("silent", "after_query")]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30 * harness.SLOW)
        for kind in ("silent", "after_query"):
            with self.subTest(kind=kind):
                closed, dt = results[kind]
                self.assertTrue(closed, "idle connection not closed in 20 s")
                self.assertGreaterEqual(dt, 6.0, "closed too early: %.1f s"
                                        % dt)
                self.assertLessEqual(dt, 20.0 * harness.SLOW)

    def test_stuck_clients_do_not_block_others(self):
        stuck = []
        # a length prefix and nothing else
        s = self.connect(); s.sendall(b"\x00\x40"); stuck.append(s)  # noqa
        # half a length prefix
        s = self.connect(); s.sendall(b"\x00"); stuck.append(s)  # noqa
        # a prefix and part of the body
        w = build_query("www.google.com.", "A")
        s = self.connect(); s.sendall(frame(w)[:9]); stuck.append(s)  # noqa
        # the largest prefix and a little garbage
        s = self.connect(); s.sendall(b"\xff\xff" + os.urandom(100))  # noqa
        stuck.append(s)
        # meanwhile everybody else is served promptly, over both transports
        for i, (w, k) in enumerate(mkqueries(30)):
            t0 = time.monotonic()
            r = self.proxy.exchange(w, "tcp" if i % 2 else "udp")
            self.check(w, k, r)
            self.assertLess(time.monotonic() - t0, 2.0 * harness.SLOW)
        self.proxy.assert_alive()

    def test_client_that_never_reads_does_not_block_others(self):
        """Replies to a client that does not read pile up in bounded buffers;
        other clients are still served."""
        hogs = []
        q = build_query("big6.example.", "AAAA")
        for i in range(4):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(harness.QUERY_TIMEOUT)
            s.connect(self.proxy.addr4)
            self.addCleanup(s.close)
            hogs.append(s)
            s.sendall(b"".join(frame(q) for _ in range(100)))
        time.sleep(0.5)
        for i, (w, k) in enumerate(mkqueries(20)):
            t0 = time.monotonic()
            r = self.proxy.exchange(w, "tcp" if i % 2 else "udp")
            self.check(w, k, r)
            self.assertLess(time.monotonic() - t0, 2.0 * harness.SLOW)
        # a hog that finally reads gets well-formed replies
        s = hogs[0]
        s.settimeout(10 * harness.SLOW)
        r = parse_reply(recv_frame(s))
        self.assertEqual(len(r.answer), 1000)
        for s in hogs:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
            s.close()
        w, k = mkqueries(1)[0]
        self.check(w, k, self.proxy.exchange(w, "tcp"))

    def test_many_connections_at_once(self):
        n = 300
        socks = []
        qs = mkqueries(n)
        for i in range(n):
            socks.append(self.connect(10 * harness.SLOW))
        for s, (w, _) in zip(socks, qs):
            s.sendall(frame(w))
        for s, (w, k) in zip(socks, qs):
            self.check(w, k, parse_reply(recv_frame(s)))
        for s in socks:
            s.close()
        w, k = mkqueries(1)[0]
        self.check(w, k, self.proxy.exchange(w, "tcp"))

    def test_concurrent_clients_threads(self):
        errors = []

        def worker(seed):
            try:
                s = tcp_connect(self.proxy.addr4, 10 * harness.SLOW)
                try:
                    qs = mkqueries(50, id_base=seed * 100)
                    for w, k in qs:
                        s.sendall(frame(w))
                        r = parse_reply(recv_frame(s))
                        if r.id != harness.query_id(w) or r.rcode != NOERROR:
                            errors.append((seed, r))
                finally:
                    s.close()
            except Exception as e:  # noqa: BLE001
                errors.append((seed, e))

        ts = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60 * harness.SLOW)
        self.assertEqual(errors, [])


if __name__ == "__main__":
    unittest.main()
