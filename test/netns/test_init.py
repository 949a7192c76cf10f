#!/usr/bin/python3
"""dnsproxy-init end to end, inside network namespaces this test creates.

Topology (documentation addresses only, veth only):

    pod netns  eth0 198.51.100.2/24 2001:db8::2/64   app (uid 0), dnsproxy
        |                                            (uid/gid 1337)
    peer netns eth0 198.51.100.1/24 2001:db8::1/64   fake cluster resolver

The pod's resolv.conf (/etc/netns/<pod>/resolv.conf, which `ip netns exec`
bind-mounts over /etc/resolv.conf) names 198.51.100.1 and 2001:db8::1 with
a kube-dns search list and ndots:5.  After dnsproxy-init, the application's
unmodified queries to the nameserver must be answered by dnsproxy for table
names (AA=1, the table's IP) and by the fake resolver, through dnsproxy,
for anything else, without the proxy's own upstream query being captured.

Skips (exit 77, reason printed) only when not root or when `ip netns` is
unavailable.  Every wait is bounded; namespaces, /etc/netns/<pod> and the
scratch directory are removed in every case.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROXY = os.environ.get("DNSPROXY_BIN", os.path.join(ROOT, "build", "dnsproxy"))
INIT = os.environ.get("DNSPROXY_INIT_BIN",
                      os.path.join(ROOT, "build", "dnsproxy-init"))

TAG = "%d" % os.getpid()
POD = "dpi-pod-" + TAG
PEER = "dpi-peer-" + TAG
POD4, PEER4 = "198.51.100.2", "198.51.100.1"
POD6, PEER6 = "2001:db8::2", "2001:db8::1"
TABLE_NAME = "productpage.demo.svc.cluster.local"
TABLE_IP4, TABLE_IP6 = "198.51.100.10", "2001:db8::10"
UPSTREAM_IP4 = "198.51.100.77"  # what the fake resolver answers

FAKE_RESOLVER = r'''
import json, socket, struct, sys, threading
import dns.message, dns.rdatatype, dns.rrset

log = open(sys.argv[1], "a", buffering=1)
lock = threading.Lock()

def answer(wire, src, proto):
    q = dns.message.from_wire(wire)
    name = q.question[0].name
    qtype = q.question[0].rdtype
    with lock:
        log.write(json.dumps({"src": src, "proto": proto,
                              "qname": name.to_text(),
                              "qtype": dns.rdatatype.to_text(qtype)}) + "\n")
    r = dns.message.make_response(q)
    if qtype == dns.rdatatype.A:
        r.answer.append(dns.rrset.from_text(name, 60, "IN", "A",
                                            "198.51.100.77"))
    elif qtype == dns.rdatatype.AAAA:
        r.answer.append(dns.rrset.from_text(name, 60, "IN", "AAAA",
                                            "2001:db8::77"))
    return r.to_wire()

def udp(fam, addr):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    def loop():
        while True:
            data, peer = s.recvfrom(65535)
            try:
                s.sendto(answer(data, peer[0], "udp"), peer)
            except Exception as e:
                print("fake resolver:", e, file=sys.stderr)
    threading.Thread(target=loop, daemon=True).start()

def recv_exact(c, n):
    b = b""
    while len(b) < n:
        chunk = c.recv(n - len(b))
        if not chunk:
            return None
        b += chunk
    return b

def tcp(fam, addr):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 53))
    s.listen(16)
    def serve(c, peer):
        c.settimeout(5)
        try:
            while True:
                h = recv_exact(c, 2)
                if h is None:
                    break
                data = recv_exact(c, struct.unpack("!H", h)[0])
                if data is None:
                    break
                out = answer(data, peer[0], "tcp")
                c.sendall(struct.pack("!H", len(out)) + out)
        except Exception:
            pass
        c.close()
    def loop():
        while True:
            c, peer = s.accept()
            threading.Thread(target=serve, args=(c, peer), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()

for fam, addr in ((socket.AF_INET, "198.51.100.1"),
                  (socket.AF_INET6, "2001:db8::1")):
    udp(fam, addr)
    tcp(fam, addr)
print("ready", flush=True)
threading.Event().wait()
'''

TABLE = {"table": {TABLE_NAME: {
    "ips": [TABLE_IP4, TABLE_IP6], "registry": "Kubernetes",
    "shortname": "productpage", "namespace": "demo"}}}

RESOLV_CONF = """nameserver 198.51.100.1
nameserver 2001:db8::1
search demo.svc.cluster.local svc.cluster.local cluster.local
options ndots:5
"""


class Failed(Exception):
    pass


def sh(args, ns=None, timeout=15, check=True, env=None, input=None):
    """Runs argv (in namespace ns); returns CompletedProcess."""
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout, env=env, input=input)
    except subprocess.TimeoutExpired:
        if check:
            raise
        return subprocess.CompletedProcess(cmd, -1, "", "timed out after "
                                           "%d s" % timeout)
    if check and p.returncode != 0:
        raise Failed("%s: exit %d: %s" % (" ".join(cmd), p.returncode,
                                          (p.stderr or p.stdout).strip()))
    return p


def dig(server, name, qtype="A", tcp=False, port=None):
    """dig from the application (uid 0 in the pod): rcode, flags, answers."""
    args = ["dig", "@" + server, name, qtype, "+time=2", "+tries=1"]
    if tcp:
        args.append("+tcp")
    if port:
        args += ["-p", str(port)]
    out = sh(args, ns=POD, check=False, timeout=10).stdout
    res = {"status": None, "flags": [], "answers": [], "raw": out}
    m = re.search(r"status: (\w+)", out)
    if m:
        res["status"] = m.group(1)
    m = re.search(r";; flags: ([a-z ]+);", out)
    if m:
        res["flags"] = m.group(1).split()
    sect = re.search(r";; ANSWER SECTION:\n(.*?)\n\n", out, re.S)
    if sect:
        for line in sect.group(1).splitlines():
            f = line.split()
            if len(f) >= 5:
                res["answers"].append((f[3], f[4]))
    return res


def saves():
    """iptables-save + ip6tables-save, without comments and counters."""
    text = ""
    for cmd in ("iptables-save", "ip6tables-save"):
        out = sh([cmd], ns=POD).stdout
        lines = [re.sub(r"\[\d+:\d+\]", "[0:0]", l)
                 for l in out.splitlines() if not l.startswith("#")]
        text += "## %s\n%s\n" % (cmd, "\n".join(lines))
    return text


def init(*args, path=None, check=True):
    """Runs dnsproxy-init in the pod, optionally with its own PATH."""
    pre = ["/usr/bin/env", "PATH=" + path] if path is not None else []
    return sh(pre + [INIT] + list(args), ns=POD, check=check)


class Suite:
    def __init__(self):
        self.failures = []
        self.passed = 0
        self.procs = []
        self.tmp = tempfile.mkdtemp(prefix="dnsproxy-netns-")
        os.chmod(self.tmp, 0o755)
        self.fake_log = os.path.join(self.tmp, "fake.log")

    def check(self, what, cond, detail=""):
        if cond:
            self.passed += 1
            print("ok   %s" % what)
        else:
            self.failures.append(what)
            print("FAIL %s%s" % (what, ("\n     " + detail) if detail else ""))

    # -- setup / teardown ------------------------------------------------
    def setup(self):
        for ns in (POD, PEER):
            sh(["ip", "netns", "add", ns])
        sh(["ip", "-n", POD, "link", "add", "eth0", "type", "veth", "peer",
            "name", "eth0", "netns", PEER])
        for ns, a4, a6 in ((POD, POD4, POD6), (PEER, PEER4, PEER6)):
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            sh(["ip", "-n", ns, "addr", "add", a4 + "/24", "dev", "eth0"])
            sh(["ip", "-n", ns, "addr", "add", a6 + "/64", "dev", "eth0",
                "nodad"])
            sh(["ip", "-n", ns, "link", "set", "eth0", "up"])
        os.makedirs("/etc/netns/" + POD, exist_ok=True)
        os.chmod("/etc/netns/" + POD, 0o755)
        with open("/etc/netns/%s/resolv.conf" % POD, "w") as f:
            f.write(RESOLV_CONF)
        os.chmod("/etc/netns/%s/resolv.conf" % POD, 0o644)
        self.table = os.path.join(self.tmp, "table.json")
        with open(self.table, "w") as f:
            json.dump(TABLE, f)
        os.chmod(self.table, 0o644)
        # Tables with unrelated rules of the pod's own: --noflush must keep
        # them and --cleanup must leave them (and the tables) as they were.
        for cmd in ("iptables", "ip6tables"):
            sh([cmd, "-t", "nat", "-A", "POSTROUTING", "-p", "tcp",
                "--dport", "9", "-j", "RETURN"], ns=POD)
            sh([cmd, "-t", "raw", "-A", "PREROUTING", "-p", "tcp",
                "--dport", "9", "-j", "ACCEPT"], ns=POD)

    def spawn(self, args, ns, ready):
        p = subprocess.Popen(["ip", "netns", "exec", ns] + args,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
        self.procs.append(p)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise Failed("%s exited %d: %s" % (args[0], p.returncode,
                                                   p.stderr.read()))
            if ready():
                return p
            time.sleep(0.1)
        raise Failed("%s not ready within 10 s" % " ".join(args))

    def start_fake_resolver(self):
        script = os.path.join(self.tmp, "fake_resolver.py")
        with open(script, "w") as f:
            f.write(FAKE_RESOLVER)
        open(self.fake_log, "w").close()

        def ready():
            r = sh(["dig", "@" + PEER4, "probe.example.", "+time=1",
                    "+tries=1", "+short"], ns=POD, check=False)
            return UPSTREAM_IP4 in r.stdout
        self.spawn(["/usr/bin/python3", script, self.fake_log], PEER, ready)

    def start_proxy(self):
        def ready():
            r = dig("127.0.0.1", TABLE_NAME, port=15053)
            return (TABLE_IP4, ) in [(a[1],) for a in r["answers"]]
        self.spawn(["setpriv", "--reuid=1337", "--regid=1337",
                    "--clear-groups", PROXY, "--table", self.table,
                    "--namespace", "demo", "--resolv-conf",
                    "/etc/resolv.conf"], POD, ready)

    def teardown(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(timeout=3)
                except Exception:
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                        p.wait(timeout=3)
                    except Exception:
                        pass
        for ns in (POD, PEER):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True,
                           timeout=10)
        shutil.rmtree("/etc/netns/" + POD, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- checks ------------------------------------------------------------
    def fake_queries(self, name):
        with open(self.fake_log) as f:
            rows = [json.loads(l) for l in f if l.strip()]
        return [r for r in rows if r["qname"].rstrip(".") == name]

    def expect_proxy_answer(self, label, server, tcp=False):
        r = dig(server, TABLE_NAME, tcp=tcp)
        ips = [a[1] for a in r["answers"] if a[0] == "A"]
        self.check("%s: dig @%s %s%s answered by dnsproxy (AA=1, %s)"
                   % (label, server, TABLE_NAME, " +tcp" if tcp else "",
                      TABLE_IP4),
                   r["status"] == "NOERROR" and "aa" in r["flags"] and
                   ips == [TABLE_IP4], r["raw"])

    def expect_upstream_answer(self, label, server, tcp=False):
        r = dig(server, TABLE_NAME, tcp=tcp)
        ips = [a[1] for a in r["answers"] if a[0] == "A"]
        self.check("%s: dig @%s answered by the fake resolver itself"
                   % (label, server),
                   r["status"] == "NOERROR" and "aa" not in r["flags"] and
                   ips == [UPSTREAM_IP4], r["raw"])

    def expect_forwarded(self, label, server, tcp=False):
        """An unknown name reaches the fake resolver once, via the proxy."""
        name = "unknown-%s.example.org" % uuid.uuid4().hex[:8]
        r = dig(server, name, tcp=tcp)
        ips = [a[1] for a in r["answers"] if a[0] == "A"]
        time.sleep(0.2)
        seen = self.fake_queries(name)
        srcs = sorted({q["src"] for q in seen})
        self.check("%s: unknown name via @%s%s answered by the cluster "
                   "resolver through dnsproxy" % (label, server,
                                                  " +tcp" if tcp else ""),
                   r["status"] == "NOERROR" and ips == [UPSTREAM_IP4] and
                   "aa" not in r["flags"],
                   "status=%s flags=%s answers=%s (forwarding needed)"
                   % (r["status"], r["flags"], r["answers"]))
        self.check("%s: the resolver saw exactly one query for it, from the "
                   "pod (proxy's own query not captured)" % label,
                   len(seen) == 1 and srcs[0] in (POD4, POD6),
                   "queries seen: %s" % seen)

    def run(self):
        self.setup()
        baseline = saves()
        self.start_fake_resolver()
        self.expect_upstream_answer("before capture", PEER4)
        self.start_proxy()

        # -- dry run and the no-op cases change nothing ------------------
        p = init("--dry-run")
        self.check("--dry-run prints IPv4 then IPv6 restore input",
                   p.stdout.startswith("# iptables-restore --noflush\n* nat\n")
                   and "\n# ip6tables-restore --noflush\n" in p.stdout,
                   p.stdout[:200])
        empty = os.path.join(self.tmp, "empty-resolv.conf")
        with open(empty, "w") as f:
            f.write("search demo.svc.cluster.local\noptions ndots:5\n")
        p = init("--resolv-conf", empty, check=False)
        self.check("no nameservers: warning, exit 0",
                   p.returncode == 0 and "nothing installed" in p.stderr,
                   p.stderr)
        self.check("dry run and no-nameserver run installed nothing",
                   saves() == baseline)

        # -- iptables backend --------------------------------------------
        p = init(check=False)
        self.check("dnsproxy-init (iptables) exits 0", p.returncode == 0,
                   p.stderr)
        self.expect_proxy_answer("iptables", PEER4)
        self.expect_proxy_answer("iptables", PEER4, tcp=True)
        self.expect_proxy_answer("ip6tables", PEER6)
        self.expect_proxy_answer("ip6tables", PEER6, tcp=True)
        g = sh(["getent", "ahosts", "productpage"], ns=POD, check=False,
               timeout=10)
        self.check("getent ahosts productpage (search list, ndots:5) "
                   "answers from the table",
                   g.returncode == 0 and TABLE_IP4 in g.stdout and
                   UPSTREAM_IP4 not in g.stdout, g.stdout + g.stderr)
        self.expect_forwarded("iptables", PEER4)
        self.expect_forwarded("iptables", PEER4, tcp=True)
        self.expect_forwarded("ip6tables", PEER6)

        applied = saves()
        self.check("unrelated rules kept (--noflush)",
                   "--dport 9 -j RETURN" in applied and
                   "--dport 9 -j ACCEPT" in applied)
        p = init(check=False)
        self.check("second apply exits 0", p.returncode == 0, p.stderr)
        again = saves()
        self.check("applying twice leaves identical iptables-save output",
                   again == applied, diff_text(applied, again))
        self.expect_proxy_answer("after re-apply", PEER4)

        p = init("--cleanup", check=False)
        self.check("--cleanup exits 0", p.returncode == 0, p.stderr)
        after = saves()
        self.check("--cleanup leaves iptables-save as before",
                   after == baseline, diff_text(baseline, after))
        self.expect_upstream_answer("after cleanup", PEER4)
        p = init("--cleanup", check=False)
        self.check("--cleanup twice is fine", p.returncode == 0 and
                   saves() == baseline, p.stderr)

        # -- failures: nothing half-applied --------------------------------
        p = init(path="/nonexistent", check=False)
        self.check("missing iptables: exit 1 naming the command",
                   p.returncode == 1 and "iptables-save: not found" in p.stderr,
                   p.stderr)
        p = sh(["setpriv", "--reuid=1337", "--regid=1337", "--clear-groups",
                INIT], ns=POD, check=False)
        self.check("without privilege: exit 1 with the command's message",
                   p.returncode == 1 and "iptables" in p.stderr and
                   saves() == baseline, p.stderr)
        self.v6_failure_rolls_back(baseline)

        # -- nft backend ----------------------------------------------------
        p = init("--backend", "nft", check=False)
        self.check("dnsproxy-init --backend nft exits 0", p.returncode == 0,
                   p.stderr)
        ruleset = sh(["nft", "list", "ruleset"], ns=POD).stdout
        self.check("nft tables inet istio-proxy-nat/raw exist",
                   "table inet istio-proxy-nat" in ruleset and
                   "table inet istio-proxy-raw" in ruleset, ruleset)
        self.expect_proxy_answer("nft", PEER4)
        self.expect_proxy_answer("nft", PEER4, tcp=True)
        self.expect_proxy_answer("nft", PEER6)
        self.expect_forwarded("nft", PEER4)
        p = init("--backend", "nft", check=False)
        again = sh(["nft", "list", "ruleset"], ns=POD).stdout
        self.check("nft: applying twice leaves the same ruleset",
                   p.returncode == 0 and again == ruleset,
                   diff_text(ruleset, again))
        p = init("--backend", "nft", "--cleanup", check=False)
        left = sh(["nft", "list", "ruleset"], ns=POD).stdout
        self.check("nft --cleanup removes both tables",
                   p.returncode == 0 and "istio-proxy" not in left, left)
        self.check("nft run left iptables-save as before",
                   saves() == baseline)
        self.expect_upstream_answer("after nft cleanup", PEER4)

    def v6_failure_rolls_back(self, baseline):
        """ip6tables-restore rejecting the rules: IPv4 removed, exit 1."""
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir, exist_ok=True)
        for tool in ("iptables-save", "iptables-restore", "ip6tables-save"):
            os.symlink(shutil.which(tool), os.path.join(bindir, tool))
        fake = os.path.join(bindir, "ip6tables-restore")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\ncat >/dev/null\n"
                    "echo 'ip6tables-restore: line 3 failed' >&2\nexit 2\n")
        os.chmod(fake, 0o755)
        p = init(path=bindir, check=False)
        self.check("IPv6 restore fails: exit 1, IPv4 rules removed again",
                   p.returncode == 1 and "line 3 failed" in p.stderr and
                   saves() == baseline, p.stderr)


def diff_text(a, b):
    import difflib
    return "\n     ".join(difflib.unified_diff(a.splitlines(), b.splitlines(),
                                                 "before", "after",
                                                 lineterm=""))


def main():
    if os.geteuid() != 0:
        print("SKIP: netns tests need root (uid %d)" % os.geteuid())
        return 77
    probe = subprocess.run(["ip", "netns", "add", "dpi-probe-" + TAG],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        print("SKIP: ip netns unavailable: %s" % probe.stderr.strip())
        return 77
    subprocess.run(["ip", "netns", "del", "dpi-probe-" + TAG],
                   capture_output=True)
    for binary in (PROXY, INIT):
        if not os.access(binary, os.X_OK):
            print("FAIL: %s not built" % binary)
            return 1
    s = Suite()
    started = time.monotonic()
    try:
        s.run()
    except Exception as e:  # reported as a failure, after the teardown
        s.failures.append("setup/run aborted: %s" % e)
        print("FAIL %s" % e)
    finally:
        s.teardown()
    print("%d passed, %d failed in %.1f s" % (s.passed, len(s.failures),
                                             time.monotonic() - started))
    for f in s.failures:
        print("  failed: %s" % f)
    return 1 if s.failures else 0


if __name__ == "__main__":
    sys.exit(main())
