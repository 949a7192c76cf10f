#!/usr/bin/python3
"""TCP resource limits (SPEC §3 "TCP and limits", D10): the connection cap
and the accept back-off when the process runs out of descriptors.  In both
cases the proxy keeps answering everyone else."""

import os
import resource
import socket
import time
import unittest

import harness

TABLE = {"table": {"www.google.com": {"ips": ["1.1.1.1"],
                                      "registry": "External"}}}
ANSWER = [("www.google.com.", "A", "1.1.1.1")]


def tcp_query(sock, qid):
    wire = harness.build_query("www.google.com.", "A", qid=qid)
    sock.sendall(harness.frame(wire))
    return harness.parse_reply(harness.recv_frame(sock))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ConnectionCap(unittest.TestCase):
    def setUp(self):
        self.proxy = harness.Proxy(table=TABLE,
                                   args=["--max-tcp-connections", "4"])
        self.proxy.start()
        self.addCleanup(self.proxy.close)
        self.socks = []
        self.addCleanup(lambda: [s.close() for s in self.socks])

    def connect(self):
        s = harness.tcp_connect(self.proxy.addr4)
        self.socks.append(s)
        return s

    def test_connection_beyond_cap_is_closed_others_keep_working(self):
        held = [self.connect() for _ in range(4)]
        for i, s in enumerate(held):  # all four are really being served
            harness.assert_local(self, tcp_query(s, 100 + i), ANSWER)
        extra = self.connect()
        self.assertTrue(harness.closed_by_peer(extra, 5.0),
                        "the fifth connection must be closed at accept")
        for i, s in enumerate(held):
            harness.assert_local(self, tcp_query(s, 200 + i), ANSWER)
        harness.assert_local(self, self.proxy.ask("www.google.com."), ANSWER)
        # A slot freed is a slot usable again.
        held[0].close()
        deadline = time.monotonic() + 5
        while True:
            s = self.connect()
            try:
                r = tcp_query(s, 300)
                break
            except (OSError, EOFError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        harness.assert_local(self, r, ANSWER)

    def test_bad_cap_is_a_usage_error(self):
        for bad in ("0", "-1", "x", "1000001"):
            p = harness.Proxy(table=TABLE,
                              args=["--max-tcp-connections", bad])
            self.addCleanup(p.close)
            p.start(wait=False)
            self.assertEqual(p.proc.wait(10), 2, bad)
            p.stopped_by_us = True  # exiting was the point
            p._stop_expect_zero = False
            self.assertIn("--max-tcp-connections", p.stderr())


class OutOfDescriptors(unittest.TestCase):
    @unittest.skipIf(harness.VALGRIND, "valgrind keeps descriptors of its "
                     "own below the limit the test sets")
    def test_accept_pauses_and_resumes_without_spinning(self):
        proxy = harness.Proxy(table=TABLE)
        proxy.start()
        self.addCleanup(proxy.close)
        pid = proxy.proc.pid
        used = len(os.listdir("/proc/%d/fd" % pid))
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        # Room for three more descriptors, then accept() gets EMFILE.
        # (Only the soft limit moves: raising it back needs no privilege.)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (used + 3, hard))
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        for _ in range(8):
            socks.append(harness.tcp_connect(proxy.addr4))
        time.sleep(0.5)
        # Out of descriptors: the listener must not spin on accept().
        before = cpu_seconds(pid)
        time.sleep(1.5)
        self.assertLess(cpu_seconds(pid) - before, 0.75,
                        "proxy burns CPU while out of descriptors")
        # UDP is unaffected.
        harness.assert_local(self, proxy.ask("www.google.com."), ANSWER)
        self.assertIn("accept", proxy.stderr())
        # Give the descriptors back; TCP is served again after the pause.
        for s in socks:
            s.close()
        socks.clear()
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
        deadline = time.monotonic() + 10
        while True:
            try:
                r = proxy.ask("www.google.com.", proto="tcp", timeout=2)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        harness.assert_local(self, r, ANSWER)
        proxy.assert_alive()


if __name__ == "__main__":
    unittest.main()
