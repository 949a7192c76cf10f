#!/usr/bin/python3
"""dnsproxy --dump-table (SPEC §6, §0.1): the offline expansion of the SPEC §8
fixture against golden files (test/golden/dump-table/; regenerate only with
DNSPROXY_UPDATE_GOLDEN=1 and review the diff), the NAME filter, the online
mode against fake agents (HTTP answers good and bad, silence) and against a
real proxy's admin server, the no-agent error path and usage errors."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "golden", "dump-table")
FIXTURE = os.path.join(harness.FIXTURES, "spec8.json")
UPDATE = os.environ.get("DNSPROXY_UPDATE_GOLDEN") == "1"
WAIT = 3.0            # the no-agent deadline of --dump-table
SLACK = 2.0           # allowed factor over it (ASan, a loaded machine)
EXIT_TIMEOUT = 20.0 * harness.SLOW


def run(args, env=None, timeout=EXIT_TIMEOUT):
    """(rc, stdout, stderr, seconds); rc None if it had to be killed."""
    t0 = time.monotonic()
    p = subprocess.Popen(harness.command(args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=harness.base_env(env))
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        rc = None
    return (rc, out.decode(errors="replace"), err.decode(errors="replace"),
            time.monotonic() - t0)


class Scratch:
    """A temp dir with the SPEC §8 resolv.conf."""

    def __init__(self, tc):
        self.dir = tempfile.mkdtemp(prefix="dnsproxy-dump-")
        tc.addCleanup(lambda: __import__("shutil").rmtree(self.dir, True))
        self.resolv = self.write("resolv.conf", "nameserver 192.0.2.53\n"
                                 "search %s\n" % " ".join(
                                     harness.SPEC8_SEARCH))

    def write(self, name, text):
        p = os.path.join(self.dir, name)
        with open(p, "w") as f:
            f.write(text)
        return p


def offline_args(s, *extra):
    return ["--dump-table", "--table", FIXTURE, "--namespace", "ns1",
            "--resolv-conf", s.resolv] + list(extra)


def golden(tc, name, got):
    path = os.path.join(GOLDEN, name)
    if UPDATE:
        os.makedirs(GOLDEN, exist_ok=True)
        with open(path, "w") as f:
            f.write(got)
    with open(path) as f:
        want = f.read()
    tc.assertEqual(got, want, "differs from %s (DNSPROXY_UPDATE_GOLDEN=1 "
                   "rewrites it; review the diff)" % path)


def read_golden(name):
    with open(os.path.join(GOLDEN, name)) as f:
        return f.read()


def rows(text):
    """The column lines of a text dump: [[NAME, TYPE, TTL, DATA, ORIGIN]]
    without the '#' line and the header."""
    lines = text.splitlines()
    assert lines[0].startswith("# "), lines[:1]
    assert lines[1].split() == ["NAME", "TYPE", "TTL", "DATA", "ORIGIN"], \
        lines[1]
    return [ln.split() for ln in lines[2:]]


class FakeAgent:
    """A TCP server on 127.0.0.1 that answers every request with the given
    bytes (mode "answer"), accepts and says nothing ("silent"), or never
    accepts at all ("backlog").  Requests are kept in .requests."""

    def __init__(self, answer=b"", mode="answer", drip=None):
        self.answer, self.mode, self.drip = answer, mode, drip
        self.requests = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = None
        if mode != "backlog":
            self.thread = threading.Thread(target=self._serve, daemon=True)
            self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with c:
                c.settimeout(5)
                req = b""
                try:
                    while b"\r\n\r\n" not in req:
                        b = c.recv(4096)
                        if not b:
                            break
                        req += b
                except OSError:
                    pass
                self.requests.append(req.decode(errors="replace"))
                if self.mode == "silent":
                    self.stop.wait(30)
                    continue
                try:
                    if self.drip is None:
                        c.sendall(self.answer)
                    else:
                        for part in self.drip:
                            c.sendall(part[0])
                            time.sleep(part[1])
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.sock.close()
        if self.thread:
            self.thread.join(5)


def http(body, status="200 OK", headers=None, length=True, version="1.1"):
    if isinstance(body, str):
        body = body.encode()
    h = ["HTTP/%s %s" % (version, status), "Content-Type: application/json"]
    if length:
        h.append("Content-Length: %d" % len(body))
    h += headers or []
    return ("\r\n".join(h) + "\r\n\r\n").encode() + body


class Offline(unittest.TestCase):
    def test_text_matches_golden(self):
        rc, out, err, _ = run(offline_args(Scratch(self)))
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, "")
        golden(self, "spec8.txt", out)

    def test_json_matches_golden(self):
        rc, out, err, _ = run(offline_args(Scratch(self), "--json"))
        self.assertEqual(rc, 0, err)
        golden(self, "spec8.json", out)

    def test_text_is_the_json_in_columns(self):
        s = Scratch(self)
        _, text, _, _ = run(offline_args(s))
        rc, out, err, _ = run(offline_args(s, "--json"))
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc["entries"], 12)
        self.assertEqual(doc["version"], "")
        self.assertIsNone(doc["updated"])
        self.assertEqual(text.splitlines()[0],
                         "# table version -, updated never, 12 entries")
        want = [[r["name"], r["type"], str(r["ttl"]), r["data"], r["origin"]]
                for r in doc["records"]]
        self.assertEqual(rows(text), want)
        keys = [(r[0], ["A", "AAAA", "CNAME"].index(r[1])) for r in want]
        self.assertEqual(keys, sorted(keys))

    def test_columns_are_aligned(self):
        _, out, _, _ = run(offline_args(Scratch(self)))
        lines = out.splitlines()[1:]
        for col in ("TYPE", "TTL", "DATA", "ORIGIN"):
            at = lines[0].index(col)
            for ln in lines[1:]:
                self.assertNotEqual(ln[at - 1:at], "", ln)
                self.assertEqual(ln[at - 2:at], "  ", (col, ln))
                self.assertNotEqual(ln[at], " ", (col, ln))

    def test_filter_exact_case_insensitive_trailing_dot_optional(self):
        s = Scratch(self)
        rc, want, err, _ = run(offline_args(s, "productpage.ns1."))
        self.assertEqual(rc, 0, err)
        self.assertEqual(rows(want), [["productpage.ns1.", "A", "30",
                                       "9.9.9.9",
                                       "productpage.ns1.svc.cluster.local"]])
        for name in ("productpage.ns1", "PRODUCTPAGE.Ns1.", "ProductPage.NS1"):
            with self.subTest(name=name):
                rc, out, err, _ = run(offline_args(s, name))
                self.assertEqual((rc, out, err), (0, want, ""))
        rc, out, err, _ = run(offline_args(s, "DUAL.localhost"))
        self.assertEqual(rc, 0, err)
        self.assertEqual([r[1] for r in rows(out)], ["A", "AAAA"])
        # The positional NAME may come anywhere after --dump-table.
        rc, out, err, _ = run(["--dump-table", "productpage.ns1", "--table",
                               FIXTURE, "--namespace", "ns1",
                               "--resolv-conf", s.resolv])
        self.assertEqual((rc, out), (0, want), err)

    def test_filter_json(self):
        rc, out, err, _ = run(offline_args(Scratch(self), "--json",
                                           "www.google.com.NS1.svc.cluster."
                                           "local"))
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc["records"], [{
            "name": "www.google.com.ns1.svc.cluster.local.", "type": "CNAME",
            "ttl": 30, "data": "www.google.com.", "origin": "www.google.com"}])

    def test_filter_without_match_prints_header_and_says_so(self):
        s = Scratch(self)
        for name in ("foo.wildcard.", "nothing.example", "productpage.ns"):
            with self.subTest(name=name):
                rc, out, err, _ = run(offline_args(s, name))
                self.assertEqual(rc, 0, err)
                self.assertEqual(len(out.splitlines()), 2, out)
                self.assertEqual(rows(out), [])
                self.assertIn("no records for %s" % name, err)
        rc, out, err, _ = run(offline_args(s, "nothing.example", "--json"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["records"], [])
        self.assertIn("no records for nothing.example", err)

    def test_ttl_and_namespace_follow_the_server_flags(self):
        s = Scratch(self)
        rc, out, err, _ = run(["--dump-table", "--table", FIXTURE,
                               "--namespace", "ns2", "--ttl", "7",
                               "--resolv-conf", s.resolv, "example."])
        self.assertEqual(rc, 0, err)
        self.assertEqual(rows(out), [["example.", "A", "7", "10.10.10.10",
                                      "example.ns2.svc.cluster.local"]])
        # POD_NAMESPACE counts as the flag does; no namespace, no short
        # names.
        rc, out, err, _ = run(["--dump-table", "--table", FIXTURE,
                               "--resolv-conf", s.resolv, "example."],
                              env={"POD_NAMESPACE": "ns2"})
        self.assertEqual((rc, len(rows(out))), (0, 1), err)
        rc, out, err, _ = run(["--dump-table", "--table", FIXTURE,
                               "--resolv-conf", s.resolv, "productpage."])
        self.assertEqual((rc, rows(out)), (0, []), err)

    def test_search0_comes_from_resolv_conf(self):
        s = Scratch(self)
        rc_path = s.write("other.conf", "search corp.example\n")
        rc, out, err, _ = run(["--dump-table", "--table", FIXTURE,
                               "--namespace", "ns1", "--resolv-conf",
                               rc_path, "www.google.com.corp.example"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(rows(out), [["www.google.com.corp.example.",
                                      "CNAME", "30", "www.google.com.",
                                      "www.google.com"]])

    def test_missing_table_file_exit_1_names_it(self):
        s = Scratch(self)
        missing = os.path.join(s.dir, "no-such-table.json")
        rc, out, err, _ = run(["--dump-table", "--table", missing,
                               "--resolv-conf", s.resolv])
        self.assertEqual(rc, 1, err)
        self.assertIn(missing, err)
        self.assertEqual(out, "")

    def test_bad_table_file_exit_1_names_it(self):
        s = Scratch(self)
        bad = s.write("bad.json", '{"table": {"a.example": {"ips": 5}}}')
        rc, out, err, _ = run(["--dump-table", "--table", bad,
                               "--resolv-conf", s.resolv])
        self.assertEqual(rc, 1, err)
        self.assertIn(bad, err)

    def test_missing_resolv_conf_exit_1_names_it(self):
        s = Scratch(self)
        missing = os.path.join(s.dir, "no-resolv.conf")
        rc, out, err, _ = run(["--dump-table", "--table", FIXTURE,
                               "--resolv-conf", missing])
        self.assertEqual(rc, 1, err)
        self.assertIn(missing, err)


class Usage(unittest.TestCase):
    def test_usage_errors_exit_2(self):
        s = Scratch(self)
        cases = [
            ["--dump-table", "a.example", "b.example"],
            ["--json"],
            ["a.example"],
            ["--dump-table", "--no-such-flag"],
            ["--dump-table", "--admin"],
            ["--dump-table", "--admin", "nonsense"],
            ["--dump-table", "--admin", "127.0.0.1:99999"],
            ["--dump-table", "--admin", "off"],
            ["--dump-table", "x" * 300, "--table", FIXTURE, "--resolv-conf",
             s.resolv],
        ]
        for args in cases:
            with self.subTest(args=args[:4]):
                rc, out, err, _ = run(args)
                self.assertEqual(rc, 2, "rc=%r stderr=%r" % (rc, err))
                self.assertTrue(err.startswith("dnsproxy: "), err)
                self.assertEqual(out, "")

    def test_help_mentions_dump_table(self):
        rc, out, err, _ = run(["--help"])
        self.assertEqual(rc, 0, err)
        for flag in ("--dump-table", "--admin", "--json"):
            self.assertIn(flag, out)


class NoAgent(unittest.TestCase):
    def check_no_agent(self, addr, args, why):
        rc, out, err, secs = run(["--dump-table"] + args)
        self.assertEqual(rc, 1, err)
        self.assertLess(secs, WAIT * SLACK, err)
        self.assertEqual(out, "")
        self.assertIn(addr, err)
        self.assertIn(why, err)
        self.assertIn("--admin ADDR", err)
        self.assertIn("--table FILE", err)
        return secs

    def test_nobody_listening_fails_at_once(self):
        port = harness.free_port()
        addr = "127.0.0.1:%d" % port
        secs = self.check_no_agent(addr, ["--admin", addr],
                                   "connection refused")
        self.assertLess(secs, WAIT)

    @unittest.skipUnless(harness.have_ipv6_loopback(), "no IPv6 loopback")
    def test_nobody_listening_ipv6(self):
        addr = "[::1]:%d" % harness.free_port(v6=True)
        self.check_no_agent(addr, ["--admin", addr], "connection refused")

    def test_silent_agent_gives_up_after_3s(self):
        a = FakeAgent(mode="silent")
        self.addCleanup(a.close)
        secs = self.check_no_agent(a.addr, ["--admin", a.addr],
                                   "no answer within 3 s")
        self.assertGreaterEqual(secs, WAIT * 0.9)

    def test_agent_that_never_accepts_gives_up_after_3s(self):
        a = FakeAgent(mode="backlog")
        self.addCleanup(a.close)
        secs = self.check_no_agent(a.addr, ["--admin", a.addr],
                                   "no answer within 3 s")
        self.assertGreaterEqual(secs, WAIT * 0.9)


class FakeAgentAnswers(unittest.TestCase):
    """The online path against canned HTTP answers."""

    def agent(self, answer=b"", **kw):
        a = FakeAgent(answer, **kw)
        self.addCleanup(a.close)
        return a

    def test_content_length_answer_prints_like_offline(self):
        a = self.agent(http(read_golden("spec8.json")))
        rc, out, err, _ = run(["--dump-table", "--admin", a.addr])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, read_golden("spec8.txt"))
        req = a.requests[0].split("\r\n")
        self.assertEqual(req[0], "GET /debug/table HTTP/1.1")
        self.assertIn("Host: %s" % a.addr, req)

    def test_close_delimited_answer(self):
        a = self.agent(http(read_golden("spec8.json"), length=False,
                            version="1.0"))
        rc, out, err, _ = run(["--dump-table", "--admin", a.addr])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, read_golden("spec8.txt"))

    def test_json_is_printed_raw(self):
        body = read_golden("spec8.json")
        a = self.agent(http(body))
        rc, out, err, _ = run(["--dump-table", "--json", "--admin", a.addr])
        self.assertEqual((rc, out), (0, body), err)

    def test_header_line_shows_version_update_and_entries(self):
        body = json.dumps({"version": "2026-11-26T11:59:00Z/42",
                           "updated": "2026-11-26T12:00:00Z",
                           "entries": 3, "records": []})
        a = self.agent(http(body))
        rc, out, err, _ = run(["--dump-table", "--admin", a.addr])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines()[0],
                         "# table version 2026-11-26T11:59:00Z/42, updated "
                         "2026-11-26T12:00:00Z, 3 entries")

    def test_name_is_sent_percent_encoded(self):
        a = self.agent(http('{"records":[]}'))
        rc, out, err, _ = run(["--dump-table", "*.Wild card&x=1",
                               "--admin", a.addr])
        self.assertEqual(rc, 0, err)
        self.assertEqual(a.requests[0].split("\r\n")[0],
                         "GET /debug/table?name=%2A.Wild%20card%26x%3D1 "
                         "HTTP/1.1")
        self.assertIn("no records for *.Wild card&x=1", err)

    def test_answers_that_are_not_http_exit_1(self):
        big = "Content-Length: %d" % (300 << 20)
        cases = {
            "garbage": b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
            "bad status": b"HTTP/1.1 2000 OK\r\n\r\n{}",
            "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                       b"\r\n2\r\n{}\r\n0\r\n\r\n",
            "too large": http("", headers=[big], length=False),
            "bad length": http("{}", headers=["Content-Length: 2x"],
                               length=False),
            "two lengths": http("{}", headers=["Content-Length: 3"]),
            "truncated": http("{}", headers=["Content-Length: 50"],
                              length=False),
            "head without end": b"HTTP/1.1 200 OK\r\nX: y\r\n",
            "head too long": b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 4000,
            "not json": http("<html>hello</html>"),
            "wrong json": http('{"records": {"name": 1}}'),
            "record without data": http(
                '{"records": [{"name": "a.", "type": "A", "ttl": 30}]}'),
            "trailing garbage": http('{"records": []} {}'),
        }
        for what, answer in cases.items():
            with self.subTest(what=what):
                a = FakeAgent(answer)
                try:
                    rc, out, err, secs = run(["--dump-table", "--admin",
                                              a.addr])
                finally:
                    a.close()
                self.assertEqual(rc, 1, "%s: %s" % (what, err))
                self.assertEqual(out, "", what)
                self.assertIn(a.addr, err, what)
                self.assertLess(secs, WAIT * SLACK, what)

    def test_http_error_status_is_reported(self):
        a = self.agent(http('{"error": "no table yet"}',
                            status="503 Service Unavailable"))
        rc, out, err, _ = run(["--dump-table", "--admin", a.addr])
        self.assertEqual(rc, 1, err)
        self.assertIn("HTTP 503", err)
        self.assertIn("no table yet", err)

    def test_slow_but_flowing_body_is_read(self):
        body = read_golden("spec8.json").encode()
        head = http(body)[:-len(body)]
        parts = [(head, 0.5)] + [(body[i:i + 1024], 0.4)
                                 for i in range(0, len(body), 1024)]
        a = self.agent(drip=parts)
        rc, out, err, secs = run(["--dump-table", "--admin", a.addr])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, read_golden("spec8.txt"))

    def test_body_that_stalls_fails_after_3s(self):
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"
        a = self.agent(drip=[(head, 30)])
        rc, out, err, secs = run(["--dump-table", "--admin", a.addr])
        self.assertEqual(rc, 1, err)
        self.assertIn(a.addr, err)
        self.assertGreaterEqual(secs, WAIT * 0.9)
        self.assertLess(secs, WAIT * SLACK)


class Online(unittest.TestCase):
    """Against a real proxy's admin server (--admin, GET /debug/table)."""

    @classmethod
    def setUpClass(cls):
        cls.admin = "127.0.0.1:%d" % harness.free_port()
        cls.proxy = harness.Proxy(table=harness.load_fixture("spec8.json"),
                                  args=["--admin", cls.admin])
        cls.proxy.start()
        cls.addClassCleanup(cls.proxy.close)

    def test_dump_lists_what_the_proxy_answers(self):
        rc, out, err, _ = run(["--dump-table", "--admin", self.admin])
        self.assertEqual(rc, 0, err)
        head = out.splitlines()[0]
        self.assertRegex(head, r"^# table version \S+, updated "
                         r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, 12 entries$")
        self.assertEqual(rows(out), rows(read_golden("spec8.txt")))

    def test_json_and_filter(self):
        rc, out, err, _ = run(["--dump-table", "--json", "--admin",
                               self.admin, "PRODUCTPAGE.ns1"])
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc["entries"], 12)
        self.assertEqual(doc["records"], [{
            "name": "productpage.ns1.", "type": "A", "ttl": 30,
            "data": "9.9.9.9",
            "origin": "productpage.ns1.svc.cluster.local"}])
        rc, out, err, _ = run(["--dump-table", "--admin", self.admin,
                               "nothing.example."])
        self.assertEqual((rc, rows(out)), (0, []), err)
        self.assertIn("no records for nothing.example.", err)

    def test_answers_match_the_dump(self):
        # Every A record listed is what the proxy answers.
        rc, out, err, _ = run(["--dump-table", "--admin", self.admin])
        self.assertEqual(rc, 0, err)
        for name, rtype, ttl, data, origin in rows(out):
            if rtype != "A" or name.startswith("*"):
                continue
            r = self.proxy.ask(name, "A", proto="udp")
            got = [rr.data for rr in r.sections[0] if rr.type == "A"]
            self.assertIn(data, got, name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
