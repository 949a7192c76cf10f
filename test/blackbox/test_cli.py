#!/usr/bin/python3
"""Command line, environment, files and signals (SPEC §0.1, §4 resolv.conf,
§1 JSON tables): exit codes 0/1/2, DNS_PROXY_ADDR and POD_NAMESPACE (a flag
wins), --domain, the resolv.conf search list, SIGHUP reloads, SIGTERM and
SIGINT."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import assert_local, assert_forwarded  # noqa: E402

IPV6 = harness.have_ipv6_loopback()
NO_V6 = "this machine has no IPv6 loopback (::1 cannot be bound)"
S0 = "ns1.svc.cluster.local."
EXIT_TIMEOUT = 10.0 * harness.SLOW


class Files:
    """A temp dir with a valid table and resolv.conf for one-shot runs."""

    def __init__(self, tc):
        self.dir = tempfile.mkdtemp(prefix="dnsproxy-cli-")
        tc.addCleanup(lambda: __import__("shutil").rmtree(self.dir, True))
        self.table = self.write("table.json",
                                '{"table": {"a.example": {"ips": '
                                '["1.2.3.4"], "registry": "External"}}}')
        self.resolv = self.write("resolv.conf",
                                 "search ns1.svc.cluster.local\n")

    def write(self, name, text):
        p = os.path.join(self.dir, name)
        with open(p, "w") as f:
            f.write(text)
        return p


def run(args, env=None, timeout=EXIT_TIMEOUT):
    """Runs dnsproxy to completion: (rc, stdout, stderr).  A process that
    does not exit by itself is killed and reported as rc None."""
    p = subprocess.Popen(harness.command(args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=harness.base_env(env))
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out.decode(errors="replace"), \
            err.decode(errors="replace")
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, out.decode(errors="replace"), \
            err.decode(errors="replace")


def port_is_free(port, host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    for st in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(fam, st)
        try:
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


class Usage(unittest.TestCase):
    def test_help_exits_0_and_prints_usage_to_stdout(self):
        rc, out, err = run(["--help"])
        self.assertEqual(rc, 0, err)
        for flag in ("--listen", "--table", "--namespace", "--resolv-conf",
                     "--ttl", "--cache-size", "--cache-max-bytes",
                     "--cache-max-ttl", "--cache-max-negative-ttl",
                     "--cache-max-stale", "--stale-answer-client-timeout"):
            self.assertIn(flag, out, "usage does not mention " + flag)

    def test_version_exits_0(self):
        rc, out, err = run(["--version"])
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"\d+\.\d+")

    def test_unknown_flag_exit_2_names_flag(self):
        f = Files(self)
        rc, out, err = run(["--listen", "127.0.0.1:%d" % harness.free_port(),
                            "--table", f.table, "--resolv-conf", f.resolv,
                            "--no-such-flag"])
        self.assertEqual(rc, 2, err)
        self.assertIn("no-such-flag", err)

    def test_bad_values_exit_2_naming_the_flag(self):
        f = Files(self)
        bad = [("--ttl", "abc"), ("--ttl", "-1"), ("--ttl", "30s"),
               ("--listen", "nonsense"), ("--listen", "127.0.0.1:99999"),
               ("--listen", "300.1.1.1:5353"), ("--listen", "127.0.0.1:x"),
               ("--log-level", "loud"), ("--cache-size", "-5"),
               ("--cache-max-stale", "forever"),
               ("--stale-answer-client-timeout", "1.8")]
        for flag, value in bad:
            with self.subTest(flag=flag, value=value):
                args = ["--table", f.table, "--resolv-conf", f.resolv]
                if flag != "--listen":
                    args += ["--listen", "127.0.0.1:%d" % harness.free_port()]
                rc, out, err = run(args + [flag, value])
                self.assertEqual(rc, 2, "rc=%r stderr=%r" % (rc, err))
                self.assertIn(flag.lstrip("-"), err)

    def test_bad_dns_proxy_addr_env_exit_2_names_variable(self):
        f = Files(self)
        rc, out, err = run(["--table", f.table, "--resolv-conf", f.resolv],
                           env={"DNS_PROXY_ADDR": "nonsense"})
        self.assertEqual(rc, 2, err)
        self.assertIn("DNS_PROXY_ADDR", err)

    def test_flag_without_value_exit_2(self):
        f = Files(self)
        for flag in ("--table", "--ttl", "--listen"):
            with self.subTest(flag=flag):
                rc, out, err = run(["--resolv-conf", f.resolv, flag])
                self.assertEqual(rc, 2, "rc=%r stderr=%r" % (rc, err))
                self.assertIn(flag.lstrip("-"), err)


class FileErrors(unittest.TestCase):
    def start_args(self, f, **kw):
        port = harness.free_port()
        args = ["--listen", "127.0.0.1:%d" % port,
                "--table", kw.get("table", f.table),
                "--resolv-conf", kw.get("resolv", f.resolv),
                "--namespace", "ns1"]
        return args

    def test_missing_table_file_exit_1_names_path(self):
        f = Files(self)
        path = os.path.join(f.dir, "does-not-exist.json")
        rc, out, err = run(self.start_args(f, table=path))
        self.assertEqual(rc, 1, err)
        self.assertIn(path, err)

    def test_invalid_json_table_exit_1_names_path(self):
        f = Files(self)
        path = f.write("broken.json", '{"table": {"a.example": {"ips": [')
        rc, out, err = run(self.start_args(f, table=path))
        self.assertEqual(rc, 1, err)
        self.assertIn(path, err)

    def test_wrong_type_in_table_exit_1_names_entry(self):
        f = Files(self)
        path = f.write("wrongtype.json",
                       '{"table": {"ok.example": {"ips": ["1.1.1.1"]}, '
                       '"bad-entry.example": {"ips": "1.2.3.4"}}}')
        rc, out, err = run(self.start_args(f, table=path))
        self.assertEqual(rc, 1, err)
        self.assertIn("bad-entry.example", err)

    def test_unreadable_table_exit_1(self):
        f = Files(self)
        # a directory cannot be read as a table, even by root
        rc, out, err = run(self.start_args(f, table=f.dir))
        self.assertEqual(rc, 1, err)
        self.assertIn(f.dir, err)

    def test_missing_resolv_conf_exit_1_names_path(self):
        f = Files(self)
        path = os.path.join(f.dir, "no-resolv.conf")
        rc, out, err = run(self.start_args(f, resolv=path))
        self.assertEqual(rc, 1, err)
        self.assertIn(path, err)

    def check_port_in_use(self, sock_type):
        f = Files(self)
        occupier = socket.socket(socket.AF_INET, sock_type)
        self.addCleanup(occupier.close)
        port = harness.free_port()
        occupier.bind(("127.0.0.1", port))
        if sock_type == socket.SOCK_STREAM:
            occupier.listen(1)
        rc, out, err = run(["--listen", "127.0.0.1:%d" % port, "--table",
                            f.table, "--resolv-conf", f.resolv])
        self.assertEqual(rc, 1, err)
        self.assertIn("127.0.0.1", err)
        self.assertIn(str(port), err)

    def test_udp_port_in_use_exit_1_names_address(self):
        self.check_port_in_use(socket.SOCK_DGRAM)

    def test_tcp_port_in_use_exit_1_names_address(self):
        self.check_port_in_use(socket.SOCK_STREAM)


class Env(unittest.TestCase):
    def start(self, **kw):
        p = harness.Proxy(**kw)
        self.addCleanup(p.close)
        return p

    def test_dns_proxy_addr_env(self):
        port = harness.free_port()
        p = self.start(table=harness.load_fixture("spec8.json"), listen=[],
                       env={"DNS_PROXY_ADDR": "127.0.0.1:%d" % port})
        p.addr4 = ("127.0.0.1", port)
        p.start()
        for proto in ("udp", "tcp"):
            assert_local(self, p.ask("www.google.com.", proto=proto),
                         [("www.google.com.", "A", "1.1.1.1")])

    @unittest.skipUnless(IPV6, NO_V6)
    def test_dns_proxy_addr_env_list_and_localhost(self):
        p1, p2 = harness.free_port(v6=True), harness.free_port(v6=True)
        env = {"DNS_PROXY_ADDR": "127.0.0.1:%d,[::1]:%d,localhost:%d"
               % (p1, p1, p2)}
        p = self.start(table=harness.load_fixture("spec8.json"), listen=[],
                       env=env)
        p.addr4 = ("127.0.0.1", p1)
        p.start()
        for addr in (("127.0.0.1", p1), ("::1", p1), ("127.0.0.1", p2),
                     ("::1", p2)):
            for proto in ("udp", "tcp"):
                with self.subTest(addr=addr, proto=proto):
                    p.addr4 = addr
                    r = p.ask("www.google.com.", proto=proto)
                    assert_local(self, r, [("www.google.com.", "A",
                                            "1.1.1.1")])

    def test_listen_flag_wins_over_env(self):
        env_port = harness.free_port()
        p = self.start(table=harness.load_fixture("spec8.json"),
                       env={"DNS_PROXY_ADDR": "127.0.0.1:%d" % env_port})
        p.start()
        assert_local(self, p.ask("www.google.com."),
                     [("www.google.com.", "A", "1.1.1.1")])
        self.assertTrue(port_is_free(env_port),
                        "DNS_PROXY_ADDR used although --listen was given")

    @unittest.skipUnless(IPV6, NO_V6)
    def test_localhost_listens_on_both_families(self):
        port = harness.free_port(v6=True)
        p = self.start(table=harness.load_fixture("spec8.json"),
                       listen=["localhost:%d" % port])
        p.addr4, p.addr6 = ("127.0.0.1", port), ("::1", port)
        p.start()
        for v6 in (False, True):
            for proto in ("udp", "tcp"):
                with self.subTest(v6=v6, proto=proto):
                    r = p.ask("dual.localhost.", "AAAA", proto=proto, v6=v6)
                    assert_local(self, r, [("dual.localhost.", "AAAA",
                                            "2001:db8::ff00:42:8329")])

    @unittest.skipUnless(IPV6, NO_V6)
    def test_listen_ipv6_only(self):
        port = harness.free_port(v6=True)
        p = self.start(table=harness.load_fixture("spec8.json"),
                       listen=["[::1]:%d" % port])
        p.addr6 = ("::1", port)
        p.start(wait=False)
        p.wait_ready(addr=p.addr6)
        for proto in ("udp", "tcp"):
            r = p.ask("www.google.com.", proto=proto, v6=True)
            assert_local(self, r, [("www.google.com.", "A", "1.1.1.1")])
        self.assertTrue(port_is_free(port, "127.0.0.1"),
                        "bound 127.0.0.1 although only [::1] was asked")

    def test_pod_namespace_env(self):
        p = self.start(table=harness.load_fixture("spec8.json"),
                       namespace=None, env={"POD_NAMESPACE": "ns1"})
        p.start()
        assert_local(self, p.ask("productpage."),
                     [("productpage.", "A", "9.9.9.9")])
        assert_forwarded(self, p.ask("example."))

    def test_namespace_flag_wins_over_env(self):
        p = self.start(table=harness.load_fixture("spec8.json"),
                       namespace="ns1", env={"POD_NAMESPACE": "ns2"})
        p.start()
        assert_local(self, p.ask("productpage."),
                     [("productpage.", "A", "9.9.9.9")])
        assert_forwarded(self, p.ask("example."))

    def test_no_namespace_fqdns_only(self):
        p = self.start(table=harness.load_fixture("spec8.json"),
                       namespace=None)
        p.start()
        assert_local(self, p.ask("productpage.ns1.svc.cluster.local."),
                     [("productpage.ns1.svc.cluster.local.", "A",
                       "9.9.9.9")])
        assert_local(self, p.ask("www.google.com."),
                     [("www.google.com.", "A", "1.1.1.1")])
        for name in ("productpage.", "productpage.ns1.",
                     "productpage.ns1.svc.", "example.ns2."):
            with self.subTest(name=name):
                assert_forwarded(self, p.ask(name))

    def test_domain_flag_sets_proxy_domain(self):
        table = {"table": {"web.ns1.svc.corp.local": {
            "ips": ["7.7.7.7"], "registry": "Kubernetes",
            "shortname": "web", "namespace": "ns1"}}}
        p = self.start(table=table, namespace="ns1",
                       domain="ns1.svc.corp.local",
                       search=["ns1.svc.corp.local", "svc.corp.local"])
        p.start()
        for name in ("web.", "web.ns1.", "web.ns1.svc.",
                     "web.ns1.svc.corp.local."):
            with self.subTest(name=name):
                assert_local(self, p.ask(name), [(name, "A", "7.7.7.7")])
        assert_local(self, p.ask("web.ns1.ns1.svc.corp.local."),
                     [("web.ns1.ns1.svc.corp.local.", "CNAME",
                       "web.ns1.svc.corp.local."),
                      ("web.ns1.svc.corp.local.", "A", "7.7.7.7")])
        # with the default domain (ns1.svc.cluster.local) only the FQDN
        q = self.start(table=table, namespace="ns1")
        q.start()
        assert_local(self, q.ask("web.ns1.svc.corp.local."),
                     [("web.ns1.svc.corp.local.", "A", "7.7.7.7")])
        for name in ("web.", "web.ns1."):
            with self.subTest(default_domain=name):
                assert_forwarded(self, q.ask(name))

    def test_domain_whose_first_label_is_not_the_namespace(self):
        """proxyDomain loses its first label only when that label is the
        namespace; parts[0] gives the name.ns.<parts[0]>. form (SPEC §2)."""
        table = harness.load_fixture("spec8.json")
        p = self.start(table=table, namespace="ns1", domain="cluster.local")
        p.start()
        for name in ("productpage.", "productpage.ns1.",
                     "productpage.ns1.cluster."):
            with self.subTest(name=name):
                assert_local(self, p.ask(name), [(name, "A", "9.9.9.9")])
        assert_forwarded(self, p.ask("productpage.ns1.svc."))


class ResolvConf(unittest.TestCase):
    TABLE = {"table": {"www.google.com": {"ips": ["1.1.1.1"],
                                          "registry": "External"}}}

    def proxy(self, text):
        p = harness.Proxy(table=self.TABLE, resolv_text=text)
        self.addCleanup(p.close)
        p.start()
        return p

    def cname_ok(self, p, suffix):
        q = "www.google.com." + suffix
        assert_local(self, p.ask(q), [(q, "CNAME", "www.google.com."),
                                      ("www.google.com.", "A", "1.1.1.1")])

    def test_search_first_domain_drives_cnames(self):
        p = self.proxy("# comment\nsearch foo.example. bar.example\n"
                       "options ndots:5\n")
        self.cname_ok(p, "foo.example.")
        assert_forwarded(self, p.ask("www.google.com.bar.example."))

    def test_last_search_or_domain_line_wins(self):
        p = self.proxy("search foo.example\ndomain ns1.svc.cluster.local\n")
        self.cname_ok(p, S0)
        assert_forwarded(self, p.ask("www.google.com.foo.example."))
        p = self.proxy("domain ns1.svc.cluster.local\n"
                       "search bar.example baz.example ; comment\n")
        self.cname_ok(p, "bar.example.")
        assert_forwarded(self, p.ask("www.google.com." + S0))

    def test_no_search_line_no_cnames(self):
        p = self.proxy("options ndots:5\n")
        assert_local(self, p.ask("www.google.com."),
                     [("www.google.com.", "A", "1.1.1.1")])
        assert_forwarded(self, p.ask("www.google.com." + S0))


T1 = {"table": {
    "keep.example": {"ips": ["1.1.1.1"], "registry": "External"},
    "old.example": {"ips": ["2.2.2.2"], "registry": "External"}}}
T2 = {"table": {
    "keep.example": {"ips": ["3.3.3.3"], "registry": "External"},
    "new.example": {"ips": ["4.4.4.4"], "registry": "External"}}}
T3 = {"table": {
    "third.example": {"ips": ["5.5.5.5"], "registry": "External"}}}


class Signals(unittest.TestCase):
    def start(self, table=T1, **kw):
        p = harness.Proxy(table=table, **kw)
        self.addCleanup(p.close)
        p.start()
        return p

    def wait_answer(self, p, name, timeout=10.0 * harness.SLOW):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = p.ask(name)
            if r.rcode == harness.NOERROR and r.answer:
                return r
            time.sleep(0.1)
        self.fail("%s not answered %.0f s after SIGHUP\nstderr:\n%s"
                  % (name, timeout, p.stderr()[-3000:]))

    def test_sighup_reloads_table(self):
        p = self.start()
        assert_local(self, p.ask("old.example."),
                     [("old.example.", "A", "2.2.2.2")])
        p.reload(T2)
        r = self.wait_answer(p, "new.example.")
        assert_local(self, r, [("new.example.", "A", "4.4.4.4")])
        for proto in ("udp", "tcp"):
            assert_local(self, p.ask("keep.example.", proto=proto),
                         [("keep.example.", "A", "3.3.3.3")])
            assert_forwarded(self, p.ask("old.example.", proto=proto))
        p.assert_alive()

    def test_sighup_bad_file_keeps_old_table(self):
        p = self.start()
        before = len(p.stderr())
        bad_files = [b'{"table": {"x": {"ips": [', b"\x0a\xff\xff\xff\xff\x0f",
                     b'{"table": {"keep.example": {"ips": 42}}}']
        for bad in bad_files:
            with self.subTest(bad=bad):
                p.reload(bad)
                time.sleep(1.0)
                p.assert_alive()
                for proto in ("udp", "tcp"):
                    assert_local(self, p.ask("old.example.", proto=proto),
                                 [("old.example.", "A", "2.2.2.2")])
                    assert_local(self, p.ask("keep.example.", proto=proto),
                                 [("keep.example.", "A", "1.1.1.1")])
        self.assertGreater(len(p.stderr()), before,
                           "a rejected table must be logged")
        # a missing file is also rejected
        os.unlink(p.table_path)
        p.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        p.assert_alive()
        assert_local(self, p.ask("old.example."),
                     [("old.example.", "A", "2.2.2.2")])
        # and a good file afterwards loads
        p.reload(T3)
        r = self.wait_answer(p, "third.example.")
        assert_local(self, r, [("third.example.", "A", "5.5.5.5")])
        assert_forwarded(self, p.ask("old.example."))

    def test_repeated_sighup_under_load_swaps_atomically(self):
        """While tables are swapped, every query sees one whole table:
        keep.example is always answered, with T1's or T2's address."""
        p = self.start()
        stop = threading.Event()
        seen, bad = [], []

        def hammer(proto):
            while not stop.is_set():
                try:
                    r = p.ask("keep.example.", proto=proto)
                except AssertionError as e:
                    bad.append(e)
                    return
                if r.rcode != harness.NOERROR or len(r.answer) != 1 or \
                        r.answer[0].data not in ("1.1.1.1", "3.3.3.3"):
                    bad.append(r)
                else:
                    seen.append(r.answer[0].data)

        ts = [threading.Thread(target=hammer, args=(proto,))
              for proto in ("udp", "udp", "tcp")]
        for t in ts:
            t.start()
        try:
            for i in range(30):
                p.reload(T2 if i % 2 == 0 else T1)
                time.sleep(0.05)
            p.reload(T2)
            time.sleep(0.5)
        finally:
            stop.set()
            for t in ts:
                t.join(10)
        self.assertEqual(bad, [])
        self.assertGreater(len(seen), 50)
        self.assertEqual(set(seen), {"1.1.1.1", "3.3.3.3"},
                         "the reloads were not all visible")
        assert_local(self, self.wait_answer(p, "new.example."),
                     [("new.example.", "A", "4.4.4.4")])
        p.assert_alive()

    def check_exit(self, sig):
        p = self.start()
        p.ask("keep.example.")
        t0 = time.monotonic()
        rc = p.stop(sig)
        dt = time.monotonic() - t0
        self.assertEqual(rc, 0, "exit status after %s\nstderr:\n%s"
                         % (sig, p.stderr()[-3000:]))
        self.assertLess(dt, 5.0 * harness.SLOW, "took %.1f s to exit" % dt)

    def test_sigterm_exits_0_promptly(self):
        self.check_exit(signal.SIGTERM)

    def test_sigint_exits_0_promptly(self):
        self.check_exit(signal.SIGINT)

    def test_sigterm_with_open_tcp_connection(self):
        p = self.start()
        s = harness.tcp_connect(p.addr4)
        self.addCleanup(s.close)
        s.sendall(harness.frame(harness.build_query("keep.example.")))
        harness.recv_frame(s)
        t0 = time.monotonic()
        rc = p.stop(signal.SIGTERM)
        self.assertEqual(rc, 0)
        self.assertLess(time.monotonic() - t0, 5.0 * harness.SLOW)

    def test_log_format_json_one_object_per_line(self):
        p = self.start(log_level="debug", args=["--log-format", "json"])
        p.ask("keep.example.")
        p.ask("unknown.example.", proto="tcp")
        p.reload(b"{bad")
        time.sleep(0.5)
        self.assertEqual(p.stop(), 0)
        lines = [l for l in p.stderr().splitlines() if l.strip()]
        self.assertTrue(lines, "nothing logged at debug level")
        for line in lines:
            try:
                obj = json.loads(line)
            except ValueError:
                self.fail("not a JSON log line: %r" % line)
            self.assertIsInstance(obj, dict)
        self.assertIn(os.path.basename(p.table_path), p.stderr())

    def test_log_format_bad_value_exit_2(self):
        f = Files(self)
        rc, out, err = run(["--listen", "127.0.0.1:%d" % harness.free_port(),
                            "--table", f.table, "--resolv-conf", f.resolv,
                            "--log-format", "xml"])
        self.assertEqual(rc, 2, err)
        self.assertIn("log-format", err)

    def test_logs_go_to_stderr_not_stdout(self):
        for level in ("debug", "info", "warn", "error"):
            with self.subTest(level=level):
                p = self.start(log_level=level)
                for proto in ("udp", "tcp"):
                    p.ask("keep.example.", proto=proto)
                    p.ask("unknown.example.", proto=proto)
                p.reload(b"{bad")
                time.sleep(0.5)
                p.assert_alive()
                self.assertEqual(p.stop(), 0)
                self.assertEqual(p.stdout(), "",
                                 "logs must go to stderr, not stdout")
                if level in ("debug", "info", "warn"):
                    self.assertIn(os.path.basename(p.table_path),
                                  p.stderr(),
                                  "the rejected table file is not named "
                                  "in the log")


if __name__ == "__main__":
    unittest.main()
