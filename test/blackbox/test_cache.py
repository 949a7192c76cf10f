#!/usr/bin/python3
"""The forwarded-answer cache against the real binary and a counting fake
upstream: on by default, repeated names reach the upstream once, TTL
countdown and expiry, negative caching (RFC 2308), serve-stale (RFC 8767)
with a silent or killed upstream, prefetch before expiry, coalescing of 100
concurrent identical queries, ID and case restoration, truncation of a
cached reply for a smaller client, what is never cached, flush (POST
/cache/flush, SIGHUP), /debug/cache and the metrics.

Short TTLs keep the file quick; deadlines keep at least 2x slack."""

import http.client
import json
import os
import random
import signal
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Answer, FakeUpstream, TYPES, NOERROR, NXDOMAIN,  # noqa
                     F_RD, F_TC, build_query, parse_reply, synth_ip)

SPEC8 = harness.load_fixture("spec8.json")
SLACK = 2.0 * harness.SLOW


def http_req(proxy, method, path):
    c = http.client.HTTPConnection(*proxy.admin_addr, timeout=5)
    try:
        c.request(method, path, body=b"" if method == "POST" else None)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def metrics(proxy):
    status, body = http_req(proxy, "GET", "/stats/prometheus")
    assert status == 200, status
    out = {}
    for line in body.splitlines():
        if line.startswith("dnsproxy_cache_"):
            k, v = line.split(" ")
            out[k] = float(v)
    return out


def a_answer(name, ip, ttl):
    return Answer(NOERROR, [(name, TYPES["A"], socket.inet_aton(ip), ttl)])


def soa_rdata(minimum):
    return (harness.name_to_wire("ns.example.") +
            harness.name_to_wire("host.example.") +
            struct.pack("!IIIII", 1, 3600, 600, 86400, minimum))


def mixed_case(name, rng):
    return "".join(c.upper() if rng.random() < 0.5 else c for c in name)


class Base(unittest.TestCase):
    def upstream(self, mode=None, **kw):
        u = FakeUpstream(mode, **kw)
        self.addCleanup(u.close)
        return u

    def proxy(self, upstream, args=(), cache_size=10000, **kw):
        p = harness.Proxy(table=SPEC8, upstream=upstream, args=list(args),
                          cache_size=cache_size, **kw)
        self.addCleanup(p.close)
        p.start()
        return p

    def assert_a(self, r, name, ip, rcode=NOERROR):
        self.assertEqual(r.rcode, rcode, "%r" % r)
        self.assertEqual([(x.owner.lower(), x.type, x.data)
                          for x in r.answer], [(name, "A", ip)], "%r" % r)


class Basics(Base):
    def test_on_by_default_twice_asked_once_forwarded(self):
        up = self.upstream()
        p = self.proxy(up, cache_size=None)   # no --cache-size at all
        for _ in range(3):
            self.assert_a(p.ask("www.bing.com."), "www.bing.com.", "1.1.1.1")
        self.assertEqual(up.count("www.bing.com."), 1)
        m = metrics(p)
        self.assertEqual(m["dnsproxy_cache_hits_total"], 2)
        self.assertEqual(m["dnsproxy_cache_misses_total"], 1)
        self.assertEqual(m["dnsproxy_cache_entries"], 1)
        self.assertGreater(m["dnsproxy_cache_bytes"], 0)
        for k in ("stale_served", "prefetches", "evictions"):
            self.assertEqual(m["dnsproxy_cache_%s_total" % k], 0)

    def test_repeated_names_reach_the_upstream_once(self):
        up = self.upstream()
        p = self.proxy(up)
        names = ["r%d.rep%s" % (i, harness.SYNTH_SUFFIX) for i in range(20)]
        for rnd in range(4):
            for n in names:
                # both transports share the cache
                r = p.ask(n, proto="tcp" if rnd == 3 else "udp")
                self.assert_a(r, n, synth_ip(n))
        for n in names:
            self.assertEqual(up.count(n), 1, n)

    def test_case_and_id_restored(self):
        up = self.upstream()
        p = self.proxy(up)
        rng = random.Random(7)
        name = "case.test%s" % harness.SYNTH_SUFFIX
        p.ask(name)
        for _ in range(10):
            spelled = mixed_case(name, rng)
            qid = rng.randrange(65536)
            for proto in ("udp", "tcp"):
                r = p.ask(spelled, proto=proto, qid=qid)
                self.assertEqual(r.id, qid)
                self.assertEqual(r.question, [(spelled, 1, 1)])
                self.assertTrue(r.flags & F_RD)
                self.assertEqual(r.answer[0].data, synth_ip(name))
        r = p.ask(name, flags=0)              # RD follows the client
        self.assertFalse(r.flags & F_RD)
        self.assertEqual(up.count(name), 1)

    def test_ttl_counts_down_capped_then_expires(self):
        up = self.upstream()
        up.answers[("ttl.example.", 1)] = a_answer("ttl.example.",
                                                   "192.0.2.7", 3600)
        p = self.proxy(up, ["--cache-max-ttl", "2"])
        r0 = p.ask("ttl.example.")
        self.assertEqual(r0.answer[0].ttl, 3600)   # the relayed reply
        r1 = p.ask("ttl.example.")
        self.assertEqual(r1.answer[0].ttl, 2)      # capped in the cache
        time.sleep(1.2)
        r2 = p.ask("ttl.example.")
        self.assertEqual(r2.answer[0].ttl, 1)
        self.assertEqual(up.count("ttl.example."), 1)
        time.sleep(1.0)                            # 2.2 s: expired
        r3 = p.ask("ttl.example.")
        self.assertEqual(r3.answer[0].ttl, 3600)   # fetched again
        self.assertEqual(up.count("ttl.example."), 2)

    def test_negative_answers_cached_for_the_soa_minimum(self):
        up = self.upstream()
        # NXDOMAIN: SOA TTL 60, MINIMUM 1 -> cached 1 s
        up.answers[("nx1.example.", 1)] = Answer(
            NXDOMAIN, authority=[("example.", TYPES["SOA"], soa_rdata(1),
                                  60)])
        # NODATA: SOA TTL 3600, MINIMUM 3600 -> capped at 2 s
        up.answers[("nodata.example.", TYPES["AAAA"])] = Answer(
            NOERROR, authority=[("example.", TYPES["SOA"], soa_rdata(3600),
                                 3600)])
        p = self.proxy(up, ["--cache-max-negative-ttl", "2"])
        for _ in range(3):
            self.assertEqual(p.ask("nx1.example.").rcode, NXDOMAIN)
            r = p.ask("nodata.example.", "AAAA")
            self.assertEqual((r.rcode, r.answer), (NOERROR, []))
        self.assertLessEqual(r.authority[0].ttl, 2)
        self.assertEqual(up.count("nx1.example."), 1)
        self.assertEqual(up.count("nodata.example."), 1)
        time.sleep(1.2)
        self.assertEqual(p.ask("nx1.example.").rcode, NXDOMAIN)
        self.assertEqual(up.count("nx1.example."), 2)
        p.ask("nodata.example.", "AAAA")
        self.assertEqual(up.count("nodata.example."), 1)
        time.sleep(1.0)
        p.ask("nodata.example.", "AAAA")
        self.assertEqual(up.count("nodata.example."), 2)

    def test_never_cached(self):
        up = self.upstream()
        up.faults["fail.example."] = "servfail"
        p = self.proxy(up, ["--forward-attempts", "1"])
        up.answers[("zero.example.", 1)] = a_answer("zero.example.",
                                                    "192.0.2.9", 0)
        ecs = harness.edns_option(8, b"\x00\x01\x18\x00\xc0\x00\x02")
        for _ in range(3):
            p.ask("fail.example.")                       # SERVFAIL
            p.ask("giant-tc.")                           # TC from upstream
            p.ask("ecs.test.synth.", edns=1232, options=ecs)  # ECS
            p.ask("zero.example.")                       # TTL 0
        self.assertEqual(up.count("fail.example."), 3)
        self.assertEqual(up.count("giant-tc."), 3)
        self.assertEqual(up.count("ecs.test.synth."), 3)
        self.assertEqual(up.count("zero.example."), 3)

    def test_cached_reply_truncated_for_a_smaller_client(self):
        up = self.upstream()
        p = self.proxy(up)
        whole = p.ask("giant.", proto="tcp")              # 64 RRs, cached
        self.assertEqual(len(whole.answer), 64)
        r = p.ask("GIANT.", proto="udp", qid=4242)        # no EDNS: 512
        self.assertTrue(r.flags & F_TC)
        self.assertLessEqual(len(r.wire), 512)
        self.assertEqual(len(r.answer), 29)
        self.assertEqual((r.id, r.question), (4242, [("GIANT.", 1, 1)]))
        self.assertEqual([x.data for x in r.answer],
                         [x.data for x in whole.answer[:29]])
        self.assertEqual(up.count("giant."), 1)
        # EDNS: a key of its own; a 65535 client caches it whole, then
        # a 512-byte EDNS client gets it cut, OPT kept
        big = p.ask("giant.", edns=65535)
        self.assertEqual(len(big.answer), 64)
        small = p.ask("giant.", edns=512)
        self.assertTrue(small.flags & F_TC)
        self.assertLessEqual(len(small.wire), 512)
        self.assertIsNotNone(small.opt)
        self.assertEqual(up.count("giant."), 2)

    def test_cookie_of_one_client_never_goes_to_another(self):
        up = self.upstream()
        p = self.proxy(up)
        name = "cookie.test%s" % harness.SYNTH_SUFFIX
        c1 = harness.edns_option(10, b"11111111")
        r1 = p.ask(name, edns=1232, options=c1)
        self.assertIn(10, [c for c, _ in harness.edns_options(
            r1.opt.options)])                          # relayed as is
        r2 = p.ask(name, edns=1232,
                   options=harness.edns_option(10, b"22222222"))
        self.assertEqual(up.count(name), 1)
        self.assertEqual(r2.opt.options, b"")          # not 1's cookie
        self.assertEqual(r2.answer[0].data, synth_ip(name))


class Coalescing(Base):
    def test_100_identical_concurrent_queries_one_upstream_query(self):
        up = self.upstream()
        name = "coal.test%s" % harness.SYNTH_SUFFIX
        up.faults[name] = ("slow", 0.5)
        p = self.proxy(up)
        rng = random.Random(100)
        ids = rng.sample(range(65536), 100)
        spelled = {i: mixed_case(name, rng) for i in ids}
        wires = [build_query(spelled[i], "A", qid=i) for i in ids]
        got = harness.udp_burst(p.addr4, wires, timeout=3 * SLACK)
        self.assertEqual(sorted(got), sorted(ids))
        for i, wire in got.items():
            r = parse_reply(wire)
            self.assertEqual(r.id, i)
            self.assertEqual(r.question, [(spelled[i], 1, 1)])
            self.assertEqual(r.rcode, NOERROR)
            self.assertEqual(r.answer[0].data, synth_ip(name))
        self.assertEqual(up.count(name), 1)
        m = metrics(p)
        self.assertEqual(m["dnsproxy_cache_misses_total"], 100)

    def test_coalesced_failure_reaches_every_client(self):
        up = self.upstream()
        name = "coalfail.example."
        up.faults[name] = "silent"
        p = self.proxy(up, ["--forward-timeout", "300ms",
                            "--forward-attempts", "1"])
        wires = [build_query(name, "A", qid=i) for i in range(20)]
        got = harness.udp_burst(p.addr4, wires, timeout=3 * SLACK)
        self.assertEqual(len(got), 20)
        self.assertTrue(all(parse_reply(w).rcode == harness.SERVFAIL
                            for w in got.values()))
        self.assertEqual(up.count(name), 1)


class Stale(Base):
    def test_silent_upstream_gets_stale_answer_then_refresh(self):
        up = self.upstream()
        name = "stale.example."
        up.answers[(name, 1)] = a_answer(name, "192.0.2.44", 1)
        p = self.proxy(up, ["--stale-answer-client-timeout", "300ms",
                            "--forward-timeout", "800ms",
                            "--forward-attempts", "1"])
        self.assert_a(p.ask(name), name, "192.0.2.44")
        time.sleep(1.2)                          # expired
        up.faults[name] = "silent"
        r, dt = p.timed_ask(name)
        self.assert_a(r, name, "192.0.2.44")
        self.assertEqual(r.answer[0].ttl, 30)    # RFC 8767 stale TTL
        self.assertGreaterEqual(dt, 0.25)        # it waited ~300 ms
        self.assertLess(dt, 0.3 * SLACK + 0.5)
        self.assertEqual(up.wait_count(2, name), 2)
        time.sleep(0.8)                          # the refresh failed
        r, dt = p.timed_ask(name)                # stale at once now
        self.assertEqual(r.answer[0].ttl, 30)
        self.assertLess(dt, 0.25 * SLACK)
        self.assertEqual(up.wait_count(3, name), 3)   # refresh behind it
        # the upstream is back: the background refresh stores the answer
        del up.faults[name]
        up.answers[(name, 1)] = a_answer(name, "192.0.2.45", 60)
        time.sleep(1.0)
        p.ask(name)
        deadline = time.monotonic() + 2 * SLACK
        while time.monotonic() < deadline:
            r = p.ask(name)
            if r.answer[0].data == "192.0.2.45":
                break
            time.sleep(0.05)
        self.assert_a(r, name, "192.0.2.45")
        self.assertGreater(r.answer[0].ttl, 30)
        self.assertGreaterEqual(metrics(p)[
            "dnsproxy_cache_stale_served_total"], 2)

    def test_killed_upstream_is_invisible_for_names_seen_recently(self):
        up = FakeUpstream()
        self.addCleanup(up.close)
        names = ["k%d.kill%s" % (i, harness.SYNTH_SUFFIX) for i in range(5)]
        for n in names:
            up.answers[(n, 1)] = a_answer(n, synth_ip(n), 1)
        p = self.proxy(up)                        # default stale settings
        for n in names:
            self.assert_a(p.ask(n), n, synth_ip(n))
        time.sleep(1.2)                           # all expired
        up.close()                                # and the upstream gone
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            for n in names:
                r = p.ask(n, timeout=5 * SLACK)
                self.assert_a(r, n, synth_ip(n))
                self.assertEqual(r.answer[0].ttl, 30)
        # a name never seen gets SERVFAIL, as before
        r = p.ask("never.seen.example.", timeout=10 * SLACK)
        self.assertEqual(r.rcode, harness.SERVFAIL)

    def test_no_stale_past_max_stale(self):
        up = self.upstream()
        name = "old.example."
        up.answers[(name, 1)] = a_answer(name, "192.0.2.46", 1)
        p = self.proxy(up, ["--cache-max-stale", "1s",
                            "--forward-timeout", "300ms",
                            "--forward-attempts", "1"])
        p.ask(name)
        time.sleep(2.3)                           # 1 s TTL + 1 s stale
        up.faults[name] = "silent"
        self.assertEqual(p.ask(name).rcode, harness.SERVFAIL)


class Prefetch(Base):
    def test_popular_entry_refreshed_before_expiry(self):
        up = self.upstream()
        name = "pre.example."
        up.answers[(name, 1)] = a_answer(name, "192.0.2.50", 6)
        p = self.proxy(up)
        t0 = time.monotonic()
        p.ask(name)
        # the last 10% of 6 s: from 5.4 s on; two hits there refresh it
        time.sleep(max(0, t0 + 5.5 - time.monotonic()))
        p.ask(name)
        p.ask(name)
        self.assertEqual(up.wait_count(2, name), 2)
        self.assertLess(up.received(name)[1].time - t0, 6.0,
                        "refreshed only after expiry")
        time.sleep(max(0, t0 + 6.5 - time.monotonic()))
        r = p.ask(name)                           # the prefetched entry
        self.assertEqual(up.count(name), 2)
        self.assertGreaterEqual(r.answer[0].ttl, 4)
        m = metrics(p)
        self.assertEqual(m["dnsproxy_cache_prefetches_total"], 1)
        self.assertEqual(m["dnsproxy_cache_stale_served_total"], 0)


class Admin(Base):
    def test_debug_cache_flush_and_sighup(self):
        up = self.upstream()
        p = self.proxy(up)
        p.ask("www.bing.com.")
        p.ask("nx.example.")
        status, body = http_req(p, "GET", "/debug/cache")
        self.assertEqual(status, 200)
        doc = json.loads(body)
        self.assertEqual(doc["entries"], 2)
        recs = {r["name"]: r for r in doc["records"]}
        self.assertEqual(set(recs), {"www.bing.com.", "nx.example."})
        self.assertEqual(recs["www.bing.com."]["type"], "A")
        self.assertEqual(recs["nx.example."]["rcode"], "NXDOMAIN")
        self.assertTrue(0 < recs["www.bing.com."]["ttl"] <= 30)
        self.assertGreater(recs["www.bing.com."]["size"], 0)
        self.assertEqual(http_req(p, "GET", "/cache/flush")[0], 405)
        self.assertEqual(http_req(p, "POST", "/cache/flush")[0], 200)
        self.assertEqual(json.loads(http_req(p, "GET", "/debug/cache")[1])[
            "entries"], 0)
        p.ask("www.bing.com.")
        self.assertEqual(up.count("www.bing.com."), 2)
        p.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 2 * SLACK
        while metrics(p)["dnsproxy_cache_entries"] != 0:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        p.ask("www.bing.com.")
        self.assertEqual(up.count("www.bing.com."), 3)

    def test_cache_size_bound_and_evictions(self):
        up = self.upstream()
        p = self.proxy(up, cache_size=50)
        names = ["e%d.evict%s" % (i, harness.SYNTH_SUFFIX)
                 for i in range(200)]
        for n in names:
            p.ask(n)
        m = metrics(p)
        self.assertEqual(m["dnsproxy_cache_entries"], 50)
        self.assertEqual(m["dnsproxy_cache_evictions_total"], 150)
        p.ask(names[-1])
        p.ask(names[0])
        self.assertEqual(up.count(names[-1]), 1)
        self.assertEqual(up.count(names[0]), 2)

    def test_cache_off(self):
        up = self.upstream()
        p = self.proxy(up, cache_size=0)
        for _ in range(3):
            p.ask("www.bing.com.")
        self.assertEqual(up.count("www.bing.com."), 3)
        self.assertEqual(metrics(p)["dnsproxy_cache_entries"], 0)
        self.assertEqual(json.loads(http_req(p, "GET", "/debug/cache")[1]),
                         {"entries": 0, "bytes": 0, "records": []})


if __name__ == "__main__":
    unittest.main()
