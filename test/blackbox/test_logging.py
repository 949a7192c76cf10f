#!/usr/bin/python3
"""--log-queries: one line per reply, with client, protocol, name, type,
rcode, source and latency, as text key=value or as JSON fields."""

import json
import time
import unittest

import harness

TABLE = harness.load_fixture("spec8.json")


def query_lines(proxy, n, timeout=5.0):
    """The first n 'query' lines of the proxy's stderr (waits for them)."""
    deadline = time.monotonic() + timeout * harness.SLOW
    while True:
        lines = [l for l in proxy.stderr().splitlines()
                 if " query client=" in l or '"msg":"query"' in l]
        if len(lines) >= n or time.monotonic() > deadline:
            return lines


class LogQueries(unittest.TestCase):
    def test_text_lines_name_every_field(self):
        p = harness.Proxy(table=TABLE, args=["--log-queries"])
        p.start()
        self.addCleanup(p.close)
        before = len(query_lines(p, 0))  # the readiness probe's line
        p.ask("WWW.Google.COM.", "A")
        p.ask("dual.localhost.", "AAAA", proto="tcp")
        p.ask("nothing.example.", "TXT")
        lines = query_lines(p, before + 3)[before:]
        self.assertEqual(len(lines), 3, lines)
        fields = [dict(kv.split("=", 1) for kv in l.split(" query ", 1)[1]
                       .split()) for l in lines]
        self.assertEqual(fields[0]["name"], "WWW.Google.COM.")
        self.assertEqual((fields[0]["proto"], fields[0]["type"],
                          fields[0]["rcode"], fields[0]["source"]),
                         ("udp", "A", "NOERROR", "local"))
        self.assertTrue(fields[0]["client"].startswith("127.0.0.1:"))
        self.assertEqual((fields[1]["proto"], fields[1]["type"],
                          fields[1]["source"]), ("tcp", "AAAA", "local"))
        self.assertEqual((fields[2]["type"], fields[2]["rcode"],
                          fields[2]["source"]),
                         ("TXT", "NXDOMAIN", "forwarded"))
        for f in fields:
            self.assertGreaterEqual(float(f["latency_ms"]), 0)

    def test_json_lines_carry_fields(self):
        p = harness.Proxy(table=TABLE, args=["--log-queries",
                                             "--log-format", "json"])
        p.start()
        self.addCleanup(p.close)
        before = len(query_lines(p, 0))
        p.ask("productpage.", "A")
        line = query_lines(p, before + 1)[before]
        obj = json.loads(line)
        self.assertEqual(obj["msg"], "query")
        self.assertEqual((obj["name"], obj["type"], obj["rcode"],
                          obj["source"], obj["proto"]),
                         ("productpage.", "A", "NOERROR", "local", "udp"))

    def test_no_query_lines_without_the_flag(self):
        p = harness.Proxy(table=TABLE)
        p.start()
        self.addCleanup(p.close)
        p.ask("productpage.", "A")
        time.sleep(0.2)
        self.assertEqual(query_lines(p, 1, timeout=0.1), [])



class Warnings(unittest.TestCase):
    def test_a_flood_of_rejected_queries_is_rate_limited(self):
        p = harness.Proxy(table=TABLE)
        p.start()
        self.addCleanup(p.close)
        wires = [harness.header(1000 + i, qd=0) for i in range(50)]
        for w in wires:  # FORMERR, one by one so none is lost
            harness.udp_exchange(p.addr4, w, timeout=2)
        p.assert_alive()
        # (The harness's readiness probe, a STATUS query, is rejected
        # with NOTIMP and takes one of the ten lines.)
        lines = [l for l in p.stderr().splitlines()
                 if "rejected query from 127.0.0.1:" in l]
        self.assertEqual(len(lines), 10, lines)
        self.assertIn("FORMERR", lines[-1])

    def test_servfail_is_explained(self):
        p = harness.Proxy(table=None)  # no table: SERVFAIL (D7)
        p.start()
        self.addCleanup(p.close)
        p.ask("www.google.com.", "A")
        self.assertTrue(any("SERVFAIL for www.google.com. A from 127.0.0.1:"
                            in l for l in p.stderr().splitlines()),
                        p.stderr())


if __name__ == "__main__":
    unittest.main()
