#!/usr/bin/python3
"""Garbage in (SPEC §3 pre-handler rules, D10 "No input can exhaust
memory"): 10k random and mutated datagrams, random TCP garbage and abrupt
closes.  Afterwards the proxy is alive and still answers correctly; every
reply it sent meanwhile was a well-formed response."""

import os
import random
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import build_query, frame, assert_local  # noqa: E402

S0 = "ns1.svc.cluster.local."
SEED = int(os.environ.get("DNSPROXY_BB_SEED", "20240611"))

VALID = [
    build_query("www.google.com.", "A"),
    build_query("WWW.Google.COM." + S0, "A", edns=4096, do=True),
    build_query("details.ns2.svc.cluster.remote.", "A"),
    build_query("dual.localhost.", "AAAA", edns=1232),
    build_query("foo.wildcard.", "A", opcode=4),
    build_query("productpage.", "MX"),
    build_query("unknown.example.", "A",
                options=harness.padding_option(40), edns=512),
]


def mutate(rng, w):
    w = bytearray(w)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if op == 0 and w:                      # flip a bit
            i = rng.randrange(len(w))
            w[i] ^= 1 << rng.randrange(8)
        elif op == 1 and w:                    # random byte
            w[rng.randrange(len(w))] = rng.randrange(256)
        elif op == 2:                          # truncate
            w = w[:rng.randrange(len(w) + 1)]
        elif op == 3:                          # append garbage
            w += bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        elif op == 4 and len(w) >= 12:         # random header count
            i = 4 + 2 * rng.randrange(4)
            w[i:i + 2] = struct.pack("!H", rng.choice(
                [0, 1, 2, 3, 0xFFFF, rng.randrange(65536)]))
        elif op == 5 and len(w) > 13:          # compression pointer
            i = rng.randrange(12, len(w) - 1)
            w[i] = 0xC0 | rng.randrange(64)
            w[i + 1] = rng.randrange(256)
        elif op == 6 and len(w) >= 4:          # flags / opcode
            w[2] = rng.randrange(256) & 0x7F   # keep QR=0 mostly
            w[3] = rng.randrange(256)
    return bytes(w)


class Robustness(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proxy = harness.Proxy(table=harness.load_fixture("spec8.json"),
                                  namespace="ns1")
        cls.addClassCleanup(cls.proxy.close)
        cls.proxy.start()

    def setUp(self):
        self.proxy.assert_alive()

    def still_answers(self):
        for proto in ("udp", "tcp"):
            r = self.proxy.ask("www.google.com." + S0, "A", proto=proto)
            assert_local(self, r, [("www.google.com." + S0, "CNAME",
                                    "www.google.com."),
                                   ("www.google.com.", "A", "1.1.1.1")])
            r = self.proxy.ask("details.ns2.svc.cluster.remote.", "A",
                               proto=proto, edns=1232)
            self.assertEqual(len(r.answer), 4)
        self.proxy.assert_alive()

    def test_10k_garbage_datagrams(self):
        rng = random.Random(SEED)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.connect(self.proxy.addr4)
        replies = []
        bad = []
        stop = threading.Event()

        def reader():
            s.settimeout(0.2)
            while not stop.is_set():
                try:
                    d = s.recv(65535)
                except socket.timeout:
                    continue
                except ConnectionRefusedError:
                    bad.append("ICMP port unreachable: proxy gone?")
                    continue
                except OSError:
                    return
                replies.append(d)

        t = threading.Thread(target=reader)
        t.start()
        sent = 0
        try:
            for i in range(10000):
                if i % 2:
                    n = rng.randrange(0, 1501)
                    d = rng.randbytes(n)
                else:
                    d = mutate(rng, rng.choice(VALID))
                try:
                    s.send(d)
                    sent += 1
                except (ConnectionRefusedError, BlockingIOError):
                    pass
                if i % 500 == 499:
                    time.sleep(0.02)    # let the proxy breathe a little
        finally:
            time.sleep(1.0)
            stop.set()
            t.join(5)
        self.assertGreater(sent, 9000)
        self.assertEqual(bad, [])
        # every reply is a well-formed response
        for d in replies:
            self.assertGreaterEqual(len(d), 12)
            self.assertTrue(d[2] & 0x80, "reply without QR=1")
            try:
                r = harness.parse_reply(d)
                harness.check_dnspython(d)
            except Exception as e:  # noqa: BLE001
                self.fail("malformed reply %r: %r" % (d[:64], e))
            # the proxy makes no authority records; forwarded replies
            # carry the fake upstream's SOA (NXDOMAIN)
            self.assertEqual([x.type for x in r.authority
                              if not (x.type == "SOA" and r.rcode ==
                                      harness.NXDOMAIN)], [], "%r" % r)
        self.assertGreater(len(replies), 100,
                           "hardly anything answered: %d" % len(replies))
        self.still_answers()

    def test_udp_clients_that_vanish(self):
        """Replies to closed client sockets (ICMP port unreachable) are
        write errors the proxy ignores (SPEC §3 Handler 7)."""
        for i in range(300):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.connect(self.proxy.addr4)
            s.send(VALID[i % len(VALID)])
            s.close()
        time.sleep(0.5)
        self.still_answers()

    def test_tcp_garbage_and_abrupt_closes(self):
        rng = random.Random(SEED + 1)
        addr = self.proxy.addr4
        for i in range(150):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(2)
            try:
                s.connect(addr)
                kind = i % 6
                if kind == 0:      # random bytes
                    s.sendall(rng.randbytes(rng.randrange(1, 3000)))
                elif kind == 1:    # valid prefix, garbage body
                    body = rng.randbytes(rng.randrange(0, 600))
                    s.sendall(frame(body))
                elif kind == 2:    # mutated query, framed
                    s.sendall(frame(mutate(rng, rng.choice(VALID))))
                elif kind == 3:    # prefix larger than the body, then close
                    s.sendall(b"\x10\x00" + b"\x00" * 50)
                elif kind == 4:    # valid queries, then close before reading
                    s.sendall(b"".join(frame(w) for w in VALID) * 5)
                else:              # zero-length frames and half a query
                    s.sendall(b"\x00\x00" * 3 + frame(VALID[0])[:7])
                if rng.random() < 0.5:
                    # RST instead of FIN
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
            except OSError:
                pass
            finally:
                s.close()
        time.sleep(0.5)
        self.proxy.assert_alive()
        self.still_answers()

    def test_tcp_replies_to_garbage_are_well_formed(self):
        """Any frame the proxy sends back over TCP is a valid response."""
        rng = random.Random(SEED + 2)
        for i in range(60):
            s = harness.tcp_connect(self.proxy.addr4, 1 * harness.SLOW)
            try:
                w = mutate(rng, rng.choice(VALID))
                if len(w) < 12:
                    w += b"\x00" * (12 - len(w))
                s.sendall(frame(w))
                try:
                    d = harness.recv_frame(s)
                except (socket.timeout, EOFError, ConnectionResetError):
                    continue
                self.assertTrue(d[2] & 0x80)
                self.assertEqual(d[:2], w[:2], "ID not kept")
                harness.parse_reply(d)
                harness.check_dnspython(d)
            finally:
                s.close()
        self.still_answers()


if __name__ == "__main__":
    unittest.main()
