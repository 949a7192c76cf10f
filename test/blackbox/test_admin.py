#!/usr/bin/python3
"""The admin HTTP surface (SPEC §6): Prometheus metrics with exact counter
deltas after scripted queries, health and debug endpoints before and after
a table, and bounds (methods, sizes, connection cap) that never stall DNS."""

import http.client
import json
import re
import socket
import time
import unittest

import harness

TABLE = harness.load_fixture("spec8.json")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def get(proxy, path, timeout=5.0):
    c = http.client.HTTPConnection(*proxy.admin_addr, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode()
    finally:
        c.close()


def scrape(proxy):
    """{(name, labels): value} of one Prometheus text-format scrape; fails
    on any line that is neither a comment nor a sample."""
    status, headers, body = get(proxy, "/stats/prometheus")
    assert status == 200, status
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("# HELP ") or \
                line.startswith("# TYPE "):
            continue
        m = SAMPLE.match(line)
        assert m, "not a Prometheus sample: %r" % line
        out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


class Metrics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proxy = harness.Proxy(table=TABLE)
        cls.proxy.start()
        cls.addClassCleanup(cls.proxy.close)

    def test_counters_move_exactly_with_the_queries(self):
        before = scrape(self.proxy)
        for name in ("www.google.com.", "productpage.", "dual.localhost."):
            self.proxy.ask(name, "A")                      # 3 local, udp A
        self.proxy.ask("dual.localhost.", "AAAA", proto="tcp")  # local tcp
        self.proxy.ask("unknown.example.", "A")            # forwarded
        self.proxy.ask("www.google.com.", "MX")            # forwarded, other
        harness.udp_exchange(self.proxy.addr4,             # FORMERR
                             harness.header(7, qd=0), timeout=2)
        after = scrape(self.proxy)

        def delta(name, labels=""):
            return after.get((name, labels), 0) - before.get((name, labels),
                                                             0)
        self.assertEqual(delta("istio_agent_dns_requests_total"), 6)
        self.assertEqual(delta("istio_agent_dns_upstream_requests_total"), 2)
        self.assertEqual(delta("istio_agent_dns_upstream_failures_total"), 0)
        self.assertEqual(delta(
            "istio_agent_dns_upstream_request_duration_seconds_count"), 2)
        self.assertEqual(delta("dnsproxy_responses_total",
                               '{rcode="NOERROR",source="local"}'), 4)
        self.assertEqual(delta("dnsproxy_responses_total",
                               '{rcode="NXDOMAIN",source="forwarded"}'), 2)
        self.assertEqual(delta("dnsproxy_responses_total",
                               '{rcode="FORMERR",source="error"}'), 1)
        self.assertEqual(delta("dnsproxy_queries_total",
                               '{protocol="udp",qtype="A"}'), 4)
        self.assertEqual(delta("dnsproxy_queries_total",
                               '{protocol="udp",qtype="other"}'), 1)
        self.assertEqual(delta("dnsproxy_queries_total",
                               '{protocol="tcp",qtype="AAAA"}'), 1)
        self.assertEqual(delta("dnsproxy_local_answer_duration_seconds_count"),
                         4)
        self.assertEqual(delta("dnsproxy_malformed_queries_total"), 1)

    def test_istio_histogram_buckets_and_gauges(self):
        m = scrape(self.proxy)
        for le in ("0.001", "0.005", "0.01", "0.1", "1", "5", "+Inf"):
            self.assertIn(("istio_agent_dns_upstream_request_duration_seconds"
                           "_bucket", '{le="%s"}' % le), m)
        self.assertEqual(m[("dnsproxy_table_entries", "")],
                         len(TABLE["table"]))
        self.assertGreater(m[("dnsproxy_table_names", "")],
                           len(TABLE["table"]))
        self.assertEqual(m[("dnsproxy_table_version_info",
                            '{version="file-1"}')], 1)
        self.assertGreater(m[("dnsproxy_table_last_update_timestamp_seconds",
                              "")], time.time() - 3600)
        self.assertGreater(m[("dnsproxy_table_build_seconds", "")], 0)
        self.assertLess(m[("dnsproxy_table_build_seconds", "")], 5)
        self.assertEqual(m[("dnsproxy_xds_connected", "")], 0)
        self.assertEqual(m[("dnsproxy_forwards_inflight", "")], 0)
        self.assertIn(("dnsproxy_upstream_failures_total",
                       '{upstream="%s"}' % self.proxy.upstream.spec), m)
        self.assertTrue(any(k[0] == "dnsproxy_build_info" for k in m))
        self.assertEqual(get(self.proxy, "/metrics")[0], 200)

    def test_ready_live_and_debug_endpoints(self):
        self.assertEqual(get(self.proxy, "/healthz/ready")[0], 200)
        self.assertEqual(get(self.proxy, "/healthz/live")[0], 200)
        status, headers, body = get(self.proxy, "/debug/ndsz")
        self.assertEqual(status, 200)
        ndsz = json.loads(body)
        self.assertIn("productpage.ns1.svc.cluster.local", ndsz["table"])
        self.assertIn("productpage.", ndsz["table"])  # generated names too
        status, _, body = get(self.proxy, "/debug/table?name=PRODUCTPAGE")
        self.assertEqual(status, 200)
        recs = json.loads(body)["records"]
        self.assertEqual([(r["name"], r["type"], r["data"]) for r in recs],
                         [("productpage.", "A", "9.9.9.9")])
        self.assertEqual(get(self.proxy, "/nope")[0], 404)


class NoTable(unittest.TestCase):
    def test_not_ready_until_a_table_loads(self):
        p = harness.Proxy(table=None)
        p.start()
        self.addCleanup(p.close)
        status, _, body = get(p, "/healthz/ready")
        self.assertEqual(status, 503)
        self.assertIn("DNS lookup table is not ready yet", body)
        self.assertEqual(get(p, "/debug/ndsz")[:3:2], (404, "{}\n"))
        self.assertEqual(get(p, "/healthz/live")[0], 200)


class Bounds(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proxy = harness.Proxy(table=TABLE)
        cls.proxy.start()
        cls.addClassCleanup(cls.proxy.close)

    def dns_ok(self):
        r = self.proxy.ask("www.google.com.")
        harness.assert_local(self, r, [("www.google.com.", "A", "1.1.1.1")])

    def test_other_methods_are_refused(self):
        c = http.client.HTTPConnection(*self.proxy.admin_addr, timeout=5)
        c.request("POST", "/stats/prometheus", body=b"x")
        # POST is taken for /cache/flush only: 405 elsewhere.
        r = c.getresponse()
        self.assertEqual(r.status, 405)
        self.assertEqual(r.getheader("Allow"), "GET")
        r.read()
        # Methods outside GET/POST: evhttp answers them itself, 501.
        c.request("PUT", "/stats/prometheus", body=b"x")
        self.assertEqual(c.getresponse().status, 501)
        c.close()

    def test_oversized_and_garbage_requests_leave_dns_alone(self):
        for junk in (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
                     b"GET / HTTP/1.1\r\nX: " + b"b" * 20000 + b"\r\n\r\n",
                     b"\x00\xff garbage\r\n\r\n", b"GET"):
            s = socket.create_connection(self.proxy.admin_addr, timeout=5)
            try:
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
                s.recv(65536)  # an error reply or EOF, not a hang
            except (ConnectionResetError, socket.timeout):
                pass
            finally:
                s.close()
            self.dns_ok()
        self.assertEqual(get(self.proxy, "/healthz/live")[0], 200)
        self.proxy.assert_alive()

    def test_idle_connections_beyond_the_cap_are_closed(self):
        socks = [socket.create_connection(self.proxy.admin_addr, timeout=5)
                 for _ in range(80)]
        try:
            time.sleep(0.5)
            closed = sum(1 for s in socks[64:]
                         if harness.closed_by_peer(s, 2.0))
            self.assertEqual(closed, 16, "connections beyond 64 stay open")
            self.dns_ok()  # DNS never waits on the admin side
        finally:
            for s in socks:
                s.close()
        deadline = time.monotonic() + 5
        while True:  # the slots come back
            try:
                self.assertEqual(get(self.proxy, "/healthz/live",
                                     timeout=2)[0], 200)
                break
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


class Flags(unittest.TestCase):
    def test_bad_admin_address_is_a_usage_error(self):
        for bad in ("nonsense", "127.0.0.1", "127.0.0.1:0", "[::1]"):
            p = harness.Proxy(table=TABLE, args=["--admin", bad])
            self.addCleanup(p.close)
            p.start(wait=False)
            self.assertEqual(p.proc.wait(10), 2, bad)
            p.stopped_by_us = True
            p._stop_expect_zero = False
            self.assertIn("--admin", p.stderr())

    def test_admin_off(self):
        p = harness.Proxy(table=TABLE, args=["--admin", "off"])
        p.start()
        self.addCleanup(p.close)
        with self.assertRaises(OSError):
            socket.create_connection(p.admin_addr, timeout=1).close()


if __name__ == "__main__":
    unittest.main()
