"""Shared code for the black-box tests (test/blackbox/test_*.py).

Every test file starts the real `dnsproxy` binary ($DNSPROXY_BIN, else
build/dnsproxy) on loopback ports it allocated itself, talks DNS to it over
UDP and TCP, and stops it again, also when a test fails.

    class T(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            cls.proxy = harness.Proxy(table=harness.load_fixture("spec8.json"))
            cls.proxy.start()
            cls.addClassCleanup(cls.proxy.close)

        def test_x(self):
            r = self.proxy.ask("www.google.com.", "A", proto="udp")
            harness.assert_local(self, r, ...)

Forwarding: the proxies started here get a resolv.conf without nameservers
(unless a test passes some), so a forwarded query ends in an immediate
SERVFAIL (SPEC §4 "Zero servers"), with AA=0 and no answer.  The single
place that knows this is assert_forwarded(); when tests run against a fake
upstream, that is the one helper to change.

Replies are decoded by parse_reply() (a strict decoder written here, which
keeps wire order, owner case and duplicates) and cross-checked with
dnspython's decoder (check_dnspython()).
"""

import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import dns.message  # dnspython 2.3 (Debian's /usr/bin/python3)
import dns.exception

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")

# Types and classes used by the tests.
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15,
         "TXT": 16, "AAAA": 28, "SRV": 33, "OPT": 41, "SVCB": 64,
         "HTTPS": 65, "ANY": 255}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
CLASS_IN, CLASS_CH = 1, 3

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, BADVERS = \
    0, 1, 2, 3, 4, 5, 16

F_QR, F_AA, F_TC, F_RD, F_RA, F_AD, F_CD = \
    0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0020, 0x0010

SPEC8_SEARCH = ["ns1.svc.cluster.local", "svc.cluster.local", "cluster.local"]

# DNSPROXY_VALGRIND=1 (the slow tier, test/run.sh) runs every proxy under
# valgrind (memcheck; an error or a definite leak makes the exit status 99)
# and stretches every deadline by SLOW.
VALGRIND = os.environ.get("DNSPROXY_VALGRIND") == "1"
SLOW = 10.0 if VALGRIND else 1.0
VALGRIND_CMD = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                "--errors-for-leak-kinds=definite", "--track-fds=no"]

# Deadlines: the suite must also pass with an ASan+UBSan binary, so waits
# are generous (>= 2x what a release build needs).
READY_TIMEOUT = 20.0 * SLOW
QUERY_TIMEOUT = 3.0 * SLOW
STOP_TIMEOUT = 10.0 * SLOW

_ENV_SCRUB = ("DNS_PROXY_ADDR", "POD_NAMESPACE", "CLUSTER_ID",
              "DNS_FORWARD_TIMEOUT", "DNS_FORWARD_PARALLEL", "INSTANCE_IP",
              "POD_NAME")


def binary():
    """Path of the dnsproxy under test."""
    b = os.environ.get("DNSPROXY_BIN")
    if not b:
        b = os.path.join(HERE, "..", "..", "build", "dnsproxy")
    b = os.path.abspath(b)
    if not os.access(b, os.X_OK):
        raise RuntimeError("dnsproxy binary not found or not executable: %s "
                           "(set DNSPROXY_BIN)" % b)
    return b


def command(args):
    """argv running dnsproxy with args (under valgrind when VALGRIND)."""
    return (VALGRIND_CMD if VALGRIND else []) + [binary()] + list(args)


def base_env(extra=None):
    """The environment for a proxy: ours minus the variables it reads."""
    env = {k: v for k, v in os.environ.items() if k not in _ENV_SCRUB
           and not k.startswith("ISTIO_META_")
           and not k.startswith("XDS_")}
    if extra:
        env.update(extra)
    return env


def load_fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


# ---------------------------------------------------------------------------
# Ports

_used_ports = set()
_port_lock = threading.Lock()
_rng = random.Random()


def have_ipv6_loopback():
    """True when a socket can be bound to ::1."""
    if not socket.has_ipv6:
        return False
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    except OSError:
        return False
    try:
        s.bind(("::1", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _bindable(port, families):
    socks = []
    try:
        for fam, host in families:
            for st in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(fam, st)
                socks.append(s)
                if fam == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_port(v6=False):
    """A port free for UDP and TCP on 127.0.0.1 (and ::1 when v6).

    Picked below the kernel's ephemeral range (32768+) so client sockets
    never take it meanwhile, and never handed out twice in one process.
    """
    fams = [(socket.AF_INET, "127.0.0.1")]
    if v6:
        fams.append((socket.AF_INET6, "::1"))
    with _port_lock:
        for _ in range(2000):
            p = _rng.randrange(20000, 32000)
            if p in _used_ports:
                continue
            if _bindable(p, fams):
                _used_ports.add(p)
                return p
    raise RuntimeError("no free port found")


# ---------------------------------------------------------------------------
# Building queries


def name_to_wire(name):
    """Dotted text (trailing dot optional) to wire form; case kept."""
    if name in (".", ""):
        return b"\x00"
    out = b""
    for label in name.rstrip(".").split("."):
        lb = label.encode("ascii")
        assert 0 < len(lb) <= 63, name
        out += bytes([len(lb)]) + lb
    return out + b"\x00"


def opt_rr(payload=1232, do=False, version=0, ext_rcode=0, options=b""):
    """An OPT pseudo-RR (RFC 6891); options are raw option bytes."""
    ttl = (ext_rcode << 24) | (version << 16) | (0x8000 if do else 0)
    return (b"\x00" + struct.pack("!HHIH", TYPES["OPT"], payload, ttl,
                                  len(options)) + options)


def edns_option(code, data):
    return struct.pack("!HH", code, len(data)) + data


def padding_option(n):
    """An EDNS padding option (code 12) carrying n zero bytes."""
    return edns_option(12, b"\x00" * n)


def rr(name, rtype, rdata, ttl=30, rclass=CLASS_IN):
    if isinstance(rtype, str):
        rtype = TYPES[rtype]
    return (name_to_wire(name) + struct.pack("!HHIH", rtype, rclass, ttl,
                                             len(rdata)) + rdata)


def header(qid, flags=F_RD, qd=1, an=0, ns=0, ar=0, opcode=0):
    flags = (flags & ~0x7800) | ((opcode & 0xF) << 11)
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def question(name, qtype="A", qclass=CLASS_IN):
    if isinstance(qtype, str):
        qtype = TYPES[qtype]
    return name_to_wire(name) + struct.pack("!HH", qtype, qclass)


def build_query(name, qtype="A", qid=None, flags=F_RD, opcode=0,
                qclass=CLASS_IN, edns=None, do=False, edns_version=0,
                options=b""):
    """A one-question query.  edns=None: no OPT; else its UDP payload."""
    if qid is None:
        qid = _rng.randrange(0, 65536)
    ar = 0 if edns is None else 1
    msg = header(qid, flags, 1, 0, 0, ar, opcode) + question(
        name, qtype, qclass)
    if edns is not None:
        msg += opt_rr(edns, do, edns_version, options=options)
    return msg


def query_id(wire):
    return struct.unpack("!H", wire[:2])[0]


# ---------------------------------------------------------------------------
# Decoding replies


class WireError(Exception):
    pass


class RR:
    __slots__ = ("owner", "rtype", "rclass", "ttl", "rdata", "data")

    def __init__(self, owner, rtype, rclass, ttl, rdata, data):
        self.owner, self.rtype, self.rclass = owner, rtype, rclass
        self.ttl, self.rdata, self.data = ttl, rdata, data

    @property
    def type(self):
        return TYPE_NAMES.get(self.rtype, str(self.rtype))

    def __repr__(self):
        return "%s %d %s %s %s" % (self.owner, self.ttl,
                                   "IN" if self.rclass == 1 else self.rclass,
                                   self.type, self.data)


class Opt:
    __slots__ = ("udp_size", "ext_rcode", "version", "flags", "options",
                 "owner")

    def __init__(self, owner, udp_size, ttl, options):
        self.owner = owner
        self.udp_size = udp_size
        self.ext_rcode = ttl >> 24
        self.version = (ttl >> 16) & 0xFF
        self.flags = ttl & 0xFFFF
        self.options = options

    @property
    def do(self):
        return bool(self.flags & 0x8000)

    def __repr__(self):
        return "OPT(size=%d, ext_rcode=%d, version=%d, flags=%#x, opts=%r)" \
            % (self.udp_size, self.ext_rcode, self.version, self.flags,
               self.options)


def _label_text(lb):
    out = []
    for c in lb:
        ch = chr(c)
        if ch in ".\\":
            out.append("\\" + ch)
        elif 0x21 <= c <= 0x7E:
            out.append(ch)
        else:
            out.append("\\%03d" % c)
    return "".join(out)


def read_name(wire, off):
    """(text, next_offset) of the name at off; pointers followed."""
    labels = []
    end = None
    jumps = 0
    total = 1
    while True:
        if off >= len(wire):
            raise WireError("name runs past the message")
        n = wire[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(wire):
                raise WireError("cut compression pointer")
            ptr = ((n & 0x3F) << 8) | wire[off + 1]
            if end is None:
                end = off + 2
            jumps += 1
            if jumps > 128 or ptr >= len(wire):
                raise WireError("bad compression pointer")
            off = ptr
            continue
        if n & 0xC0:
            raise WireError("reserved label type")
        if n == 0:
            off += 1
            break
        if off + 1 + n > len(wire):
            raise WireError("label runs past the message")
        labels.append(_label_text(wire[off + 1:off + 1 + n]))
        total += n + 1
        off += 1 + n
    if total > 255:
        raise WireError("name longer than 255 bytes")
    text = ".".join(labels) + "." if labels else "."
    return text, (end if end is not None else off)


def _rdata_text(wire, off, rtype, rdlen):
    rd = wire[off:off + rdlen]
    if rtype == 1 and rdlen == 4:
        return socket.inet_ntop(socket.AF_INET, rd)
    if rtype == 28 and rdlen == 16:
        return socket.inet_ntop(socket.AF_INET6, rd)
    if rtype in (2, 5, 12):
        name, end = read_name(wire, off)
        if end != off + rdlen:
            raise WireError("name rdata length mismatch")
        return name
    return rd.hex()


class Reply:
    """A decoded DNS message, in wire order."""

    def __init__(self, wire):
        self.wire = bytes(wire)
        if len(wire) < 12:
            raise WireError("short message (%d bytes)" % len(wire))
        (self.id, self.flags, qd, an, ns, ar) = struct.unpack(
            "!HHHHHH", wire[:12])
        self.counts = (qd, an, ns, ar)
        off = 12
        self.question = []
        for _ in range(qd):
            name, off = read_name(wire, off)
            if off + 4 > len(wire):
                raise WireError("cut question")
            qt, qc = struct.unpack("!HH", wire[off:off + 4])
            off += 4
            self.question.append((name, qt, qc))
        self.opt = None
        self.sections = []
        for count in (an, ns, ar):
            sec = []
            for _ in range(count):
                owner, off = read_name(wire, off)
                if off + 10 > len(wire):
                    raise WireError("cut RR header")
                t, c, ttl, rdlen = struct.unpack("!HHIH", wire[off:off + 10])
                off += 10
                if off + rdlen > len(wire):
                    raise WireError("cut rdata")
                if t == 41:
                    if self.opt is not None:
                        raise WireError("two OPT RRs")
                    self.opt = Opt(owner, c, ttl, wire[off:off + rdlen])
                    sec.append(self.opt)
                else:
                    sec.append(RR(owner, t, c, ttl, wire[off:off + rdlen],
                                  _rdata_text(wire, off, t, rdlen)))
                off += rdlen
            self.sections.append(sec)
        if off != len(wire):
            raise WireError("%d trailing bytes" % (len(wire) - off))
        self.answer, self.authority = self.sections[0], self.sections[1]
        self.additional = [r for r in self.sections[2]
                           if not isinstance(r, Opt)]

    qr = property(lambda s: bool(s.flags & F_QR))
    aa = property(lambda s: bool(s.flags & F_AA))
    tc = property(lambda s: bool(s.flags & F_TC))
    rd = property(lambda s: bool(s.flags & F_RD))
    ra = property(lambda s: bool(s.flags & F_RA))
    ad = property(lambda s: bool(s.flags & F_AD))
    cd = property(lambda s: bool(s.flags & F_CD))
    opcode = property(lambda s: (s.flags >> 11) & 0xF)

    @property
    def rcode(self):
        rc = self.flags & 0xF
        if self.opt is not None:
            rc |= self.opt.ext_rcode << 4
        return rc

    def records(self, rtype=None):
        return [r for r in self.answer
                if rtype is None or r.type == rtype]

    def summary(self):
        return ("id=%d rcode=%d flags=%#06x q=%r an=%r ns=%r ar=%r opt=%r "
                "(%d bytes)" % (self.id, self.rcode, self.flags, self.question,
                                self.answer, self.authority, self.additional,
                                self.opt, len(self.wire)))

    __repr__ = summary


def parse_reply(wire):
    return Reply(wire)


DNSPYTHON_OPCODES = (0, 1, 2, 4, 5)


def check_dnspython(wire):
    """dnspython must decode every reply as well (interoperability).
    dnspython 2.3 cannot represent unassigned opcodes (3, 6-15): those
    replies are checked by parse_reply() only.  Nor can it read an UPDATE
    (opcode 5) whose zone section is not type SOA (RFC 2136 §2.3), which
    is what a NOTIMP reply echoing a garbage UPDATE's question is."""
    if len(wire) >= 3 and (wire[2] >> 3) & 0xF not in DNSPYTHON_OPCODES:
        return None
    if len(wire) >= 3 and (wire[2] >> 3) & 0xF == 5:
        try:
            name, off = read_name(wire, 12)
            zone_type = struct.unpack("!H", wire[off:off + 2])[0]
        except Exception:  # noqa: BLE001 - no readable zone: let it fail
            zone_type = TYPES["SOA"]
        if zone_type != TYPES["SOA"]:
            return None
    return dns.message.from_wire(wire, ignore_trailing=False,
                                 raise_on_truncation=False)


# ---------------------------------------------------------------------------
# Transports


def udp_exchange(addr, wire, timeout=QUERY_TIMEOUT, family=None):
    """Sends one datagram from a fresh connected socket; returns the reply
    bytes with the same ID, or None on timeout."""
    host, port = addr
    if family is None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        s.connect((host, port))
        s.send(wire)
        deadline = time.monotonic() + timeout
        want = query_id(wire) if len(wire) >= 2 else None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            s.settimeout(left)
            try:
                data = s.recv(65535)
            except socket.timeout:
                return None
            except ConnectionRefusedError:
                return None
            if want is None or (len(data) >= 2 and query_id(data) == want):
                return data
    finally:
        s.close()


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes"
                           % (len(buf), n))
        buf += chunk
    return buf


def recv_frame(s):
    (n,) = struct.unpack("!H", recv_exact(s, 2))
    return recv_exact(s, n)


def frame(wire):
    return struct.pack("!H", len(wire)) + wire


def tcp_connect(addr, timeout=QUERY_TIMEOUT):
    host, port = addr
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.connect((host, port))
    return s


def tcp_exchange(addr, wire, timeout=QUERY_TIMEOUT):
    s = tcp_connect(addr, timeout)
    try:
        s.sendall(frame(wire))
        return recv_frame(s)
    finally:
        s.close()


def closed_by_peer(s, timeout):
    """Waits up to timeout for the peer to close s; True if it did
    (EOF or reset).  Any data read meanwhile is discarded."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        s.settimeout(left)
        try:
            d = s.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not d:
            return True


# ---------------------------------------------------------------------------
# Forwarding
#
# The one switch for the day forwarding lands: with
# FORWARD_TO_FAKE_UPSTREAM every Proxy gets `--upstream` pointing at its own
# FakeUpstream, and assert_forwarded() expects that upstream's answer
# (NXDOMAIN, RA=1) instead of SERVFAIL.  DNSPROXY_BB_UPSTREAM=1 turns it on
# without editing this file.

FORWARD_TO_FAKE_UPSTREAM = os.environ.get("DNSPROXY_BB_UPSTREAM") == "1"

GIANT_OWNER = "aaaaaaaaaaaa.aaaaaa."


class FakeUpstream:
    """A DNS server on 127.0.0.1 (UDP and TCP, one free port), the SPEC §8
    fake upstream: NXDOMAIN (RA=1, AA=0) by default, except
      www.bing.com.  A 1.1.1.1
      giant.         64 A RRs owned by aaaaaaaaaaaa.aaaaaa. (240.0.0.0-63),
                     never truncated
      giant-tc.      the same, truncated by the upstream itself to 512 B
                     (29 RRs, TC=1)
    plus whatever answers[(name, qtype)] = (rcode, [(owner, type, rdata
    bytes)]) holds.  A query with an OPT gets an OPT (4096) back.
    queries: (transport, qname as sent, qtype) of every query received."""

    def __init__(self):
        self.port = free_port()
        self.addr = ("127.0.0.1", self.port)
        self.answers = {}
        self.queries = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(self.addr)
        self.udp.settimeout(0.2)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(self.addr)
        self.tcp.listen(64)
        self.tcp.settimeout(0.2)
        self._threads = [threading.Thread(target=self._serve_udp,
                                          daemon=True),
                         threading.Thread(target=self._serve_tcp,
                                          daemon=True)]
        for t in self._threads:
            t.start()

    def close(self):
        self._stop.set()
        for t in self._threads:
            t.join(5)
        self.udp.close()
        self.tcp.close()

    def _lookup(self, name, qtype):
        lname = name.lower()
        if (lname, qtype) in self.answers:
            return self.answers[(lname, qtype)], False
        if lname == "www.bing.com." and qtype == 1:
            return (NOERROR, [(name, 1, socket.inet_aton("1.1.1.1"))]), False
        if lname in ("giant.", "giant-tc.") and qtype == 1:
            recs = [(GIANT_OWNER, 1, bytes([240, 0, 0, i]))
                    for i in range(64)]
            if lname == "giant-tc.":
                return (NOERROR, recs[:29]), True
            return (NOERROR, recs), False
        return (NXDOMAIN, []), False

    def reply(self, wire, transport):
        """The reply to one query, or None to stay silent."""
        try:
            q = parse_query(wire)
        except Exception:  # noqa: BLE001
            return None
        if len(wire) < 12 or q.flags & F_QR or len(q.question) != 1:
            return None
        name, qtype, qclass = q.question[0]
        with self._lock:
            self.queries.append((transport, name, qtype))
        (rcode, recs), tc = self._lookup(name, qtype)
        has_opt = struct.unpack("!H", wire[10:12])[0] > 0
        flags = F_QR | F_RA | (q.flags & (F_RD | F_CD)) | rcode
        if tc:
            flags |= F_TC
        qend = read_name(wire, 12)[1] + 4
        out = wire[12:qend]
        comp = {}
        for owner, rtype, rdata in recs:
            if owner in comp:
                out_owner = struct.pack("!H", 0xC000 | comp[owner])
            else:
                comp[owner] = 12 + len(out)
                out_owner = name_to_wire(owner)
            out += out_owner + struct.pack("!HHIH", rtype, CLASS_IN, 30,
                                           len(rdata)) + rdata
        if has_opt:
            out += opt_rr(4096)
        return struct.pack("!HHHHHH", q.id, flags, 1, len(recs), 0,
                           1 if has_opt else 0) + out

    def _serve_udp(self):
        while not self._stop.is_set():
            try:
                data, peer = self.udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            r = self.reply(data, "udp")
            if r is not None:
                try:
                    self.udp.sendto(r, peer)
                except OSError:
                    pass

    def _serve_tcp(self):
        while not self._stop.is_set():
            try:
                c, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve_conn, args=(c,),
                             daemon=True).start()

    def _serve_conn(self, c):
        c.settimeout(10)
        try:
            while not self._stop.is_set():
                r = self.reply(recv_frame(c), "tcp")
                if r is not None:
                    c.sendall(frame(r))
        except (OSError, EOFError):
            pass
        finally:
            c.close()


# ---------------------------------------------------------------------------
# The proxy process


class ProxyError(AssertionError):
    pass


class Proxy:
    """One dnsproxy process with its own temp dir, table and resolv.conf.

    table: a dict (written as JSON), bytes/str (written verbatim), or None
    for no --table at all.  search: the resolv.conf search list.
    listen: list of --listen values; default 127.0.0.1:<free port>.
    args: extra command-line arguments.  env: extra environment.
    """

    def __init__(self, table=None, namespace="ns1", domain=None,
                 search=SPEC8_SEARCH, resolv_text=None, nameservers=(),
                 ttl=None, listen=None, args=(), env=None, v6=False,
                 log_level=None, pass_resolv_conf=True, upstream=None):
        self.dir = tempfile.mkdtemp(prefix="dnsproxy-bb-")
        # upstream: a FakeUpstream to forward to (--upstream); None = one
        # of our own when FORWARD_TO_FAKE_UPSTREAM, else no server at all.
        self.upstream = None
        self._own_upstream = False
        if upstream is None and FORWARD_TO_FAKE_UPSTREAM:
            upstream = FakeUpstream()
            self._own_upstream = True
        self.upstream = upstream
        self.port = free_port(v6=v6)
        self.v6 = v6
        self.table_path = None
        if table is not None:
            self.table_path = os.path.join(self.dir, "table.json")
            self.write_table(table)
        self.resolv_path = os.path.join(self.dir, "resolv.conf")
        if resolv_text is None:
            resolv_text = "".join("nameserver %s\n" % n for n in nameservers)
            if search:
                resolv_text += "search %s\n" % " ".join(search)
        with open(self.resolv_path, "w") as f:
            f.write(resolv_text)
        if listen is None:
            listen = ["127.0.0.1:%d" % self.port]
            if v6:
                listen.append("[::1]:%d" % self.port)
        self.listen = list(listen)
        cmd = []
        for l in self.listen:
            cmd += ["--listen", l]
        if self.table_path:
            cmd += ["--table", self.table_path]
        if namespace is not None:
            cmd += ["--namespace", namespace]
        if domain is not None:
            cmd += ["--domain", domain]
        if pass_resolv_conf:
            cmd += ["--resolv-conf", self.resolv_path]
        if ttl is not None:
            cmd += ["--ttl", str(ttl)]
        if log_level is not None:
            cmd += ["--log-level", log_level]
        if self.upstream is not None:
            cmd += ["--upstream", "%s:%d" % self.upstream.addr]
        cmd += list(args)
        self.cmd = command(cmd)
        self.env = base_env(env)
        self.proc = None
        self.stopped_by_us = False
        self.addr4 = ("127.0.0.1", self.port)
        self.addr6 = ("::1", self.port)

    # -- lifecycle --

    def write_table(self, table):
        tmp = self.table_path + ".tmp"
        with open(tmp, "wb") as f:
            if isinstance(table, dict):
                f.write(json.dumps(table, indent=1).encode())
            elif isinstance(table, str):
                f.write(table.encode())
            else:
                f.write(table)
        os.rename(tmp, self.table_path)

    def start(self, wait=True):
        self.out_path = os.path.join(self.dir, "stdout")
        self.err_path = os.path.join(self.dir, "stderr")
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err,
                                     env=self.env, cwd=self.dir)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, addr=None, timeout=READY_TIMEOUT):
        """Polls with a UDP query until any reply arrives."""
        addr = addr or self.addr4
        deadline = time.monotonic() + timeout
        probe = build_query("ready.probe.invalid.", "A")
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stopped_by_us = True   # reported here, not in close()
                self._stop_expect_zero = False
                raise ProxyError("dnsproxy exited with %s before it was "
                                 "ready\ncmd: %s\nstderr:\n%s" % (
                                     self.proc.returncode,
                                     " ".join(self.cmd), self.stderr()))
            if udp_exchange(addr, probe, timeout=0.2) is not None:
                return
        raise ProxyError("dnsproxy not answering on %s after %.0f s\n"
                         "stderr:\n%s" % (addr, timeout, self.stderr()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        if not self.alive():
            raise ProxyError("dnsproxy died (exit %s)\nstderr:\n%s" % (
                self.proc.returncode if self.proc else None,
                self.stderr()[-6000:]))

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, table):
        """Rewrites the table file and sends SIGHUP."""
        self.write_table(table)
        self.send_signal(signal.SIGHUP)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Sends sig and waits; returns the exit status (None if it had to
        be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.stopped_by_us = True
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def close(self):
        """Stops the proxy (SIGTERM) and removes its files.  Raises if it
        had crashed, or if SIGTERM did not give exit 0 (SPEC §0.1)."""
        problem = None
        if self.proc is not None:
            crashed = self.proc.poll() is not None and not self.stopped_by_us
            rc = self.stop()
            if crashed:
                problem = "dnsproxy exited on its own with %s" % rc
            elif rc != 0 and self.stopped_by_us and rc is not None \
                    and self._stop_expect_zero:
                problem = "dnsproxy exited with %s after SIGTERM" % rc
            elif rc is None:
                problem = "dnsproxy ignored SIGTERM for %.0f s" % STOP_TIMEOUT
            for f in (self._out, self._err):
                f.close()
        err = self.stderr() if self.proc is not None else ""
        shutil.rmtree(self.dir, ignore_errors=True)
        if self._own_upstream:
            self.upstream.close()
        if problem:
            raise ProxyError("%s\ncmd: %s\nstderr (tail):\n%s" % (
                problem, " ".join(self.cmd), err[-6000:]))

    _stop_expect_zero = True

    def stderr(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, AttributeError):
            return ""

    def stdout(self):
        try:
            with open(self.out_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, AttributeError):
            return ""

    # -- queries --

    def udp_raw(self, wire, timeout=QUERY_TIMEOUT, v6=False):
        return udp_exchange(self.addr6 if v6 else self.addr4, wire, timeout)

    def tcp_raw(self, wire, timeout=QUERY_TIMEOUT, v6=False):
        return tcp_exchange(self.addr6 if v6 else self.addr4, wire, timeout)

    def exchange(self, wire, proto="udp", timeout=QUERY_TIMEOUT, v6=False):
        """Sends wire, returns the decoded Reply (also checked with
        dnspython).  Fails if no reply arrives."""
        if proto == "udp":
            data = self.udp_raw(wire, timeout, v6)
            if data is None:
                self.assert_alive()
                raise AssertionError("no UDP reply within %.1f s to %s" % (
                    timeout, _describe(wire)))
        elif proto == "tcp":
            try:
                data = self.tcp_raw(wire, timeout, v6)
            except (OSError, EOFError) as e:
                self.assert_alive()
                raise AssertionError("TCP exchange failed (%r) for %s" % (
                    e, _describe(wire)))
        else:
            raise ValueError(proto)
        r = parse_reply(data)
        try:
            check_dnspython(data)
        except dns.exception.DNSException as e:
            raise AssertionError("dnspython cannot decode the reply (%r): %r"
                                 % (e, r))
        return r

    def ask(self, name, qtype="A", proto="udp", **kw):
        """build_query(name, qtype, **kw) then exchange()."""
        timeout = kw.pop("timeout", QUERY_TIMEOUT)
        v6 = kw.pop("v6", False)
        wire = build_query(name, qtype, **kw)
        r = self.exchange(wire, proto, timeout, v6)
        r.query = wire
        return r


def _describe(wire):
    try:
        q = dns.message.from_wire(wire)
        return "%s %s" % (q.question[0].name, q.question[0].rdtype) \
            if q.question else repr(wire[:32])
    except Exception:
        return repr(wire[:32])


# ---------------------------------------------------------------------------
# Assertions


def assert_reply_to(tc, r, query_wire):
    """ID and question echoed (question bytes as sent: D9), QR=1, and
    opcode, RD and CD copied."""
    q = parse_query(query_wire)
    tc.assertTrue(r.qr, "QR must be 1: %r" % r)
    tc.assertEqual(r.id, q.id, "ID not copied")
    tc.assertEqual(r.opcode, q.opcode, "opcode not copied")
    tc.assertEqual(r.rd, q.rd, "RD not copied")
    tc.assertEqual(r.cd, q.cd, "CD not copied")
    tc.assertEqual(r.question, q.question[:1],
                   "question not echoed as sent")


class _Query:
    pass


def parse_query(wire):
    """Header and question section of a query we built (the rest of the
    query may be deliberately malformed)."""
    q = _Query()
    q.id, q.flags = struct.unpack("!HH", wire[:4])
    q.opcode = (q.flags >> 11) & 0xF
    q.rd, q.cd = bool(q.flags & F_RD), bool(q.flags & F_CD)
    (qd,) = struct.unpack("!H", wire[4:6])
    q.question = []
    off = 12
    for _ in range(qd):
        name, off = read_name(wire, off)
        qt, qc = struct.unpack("!HH", wire[off:off + 4])
        off += 4
        q.question.append((name, qt, qc))
    return q


def assert_local(tc, r, answer, ttl=30, ordered=True, opt=None):
    """A local NOERROR answer (SPEC §3 Local reply).

    answer: list of (owner, type, data) expected in the answer section.
    ordered=False compares the address records as a set but still requires
    CNAMEs first.  opt: None = the reply must carry no OPT; else
    (payload, do) expected."""
    tc.assertEqual(r.rcode, NOERROR, "rcode: %r" % r)
    tc.assertTrue(r.qr, "QR=0: %r" % r)
    tc.assertTrue(r.aa, "AA must be 1 on local answers: %r" % r)
    tc.assertFalse(r.ra, "RA must be 0 on local answers: %r" % r)
    tc.assertFalse(r.tc, "unexpected TC: %r" % r)
    tc.assertEqual(r.authority, [], "no authority RRs (no SOA): %r" % r)
    tc.assertEqual(r.additional, [], "no additional RRs: %r" % r)
    got = [(x.owner, x.type, x.data) for x in r.answer]
    for x in r.answer:
        tc.assertEqual(x.rclass, CLASS_IN, "class must be IN: %r" % x)
        tc.assertEqual(x.ttl, ttl, "TTL must be %d: %r" % (ttl, x))
    if ordered:
        tc.assertEqual(got, list(answer), "answer: %r" % r)
    else:
        ncn = len([a for a in answer if a[1] == "CNAME"])
        tc.assertEqual(got[:ncn], [a for a in answer if a[1] == "CNAME"],
                       "CNAMEs must come first: %r" % r)
        tc.assertEqual(sorted(got[ncn:]),
                       sorted(a for a in answer if a[1] != "CNAME"),
                       "answer set: %r" % r)
    assert_opt(tc, r, opt)


def assert_opt(tc, r, opt):
    if opt is None:
        tc.assertIsNone(r.opt, "no OPT expected (query had none, D2): %r"
                        % r)
    else:
        tc.assertIsNotNone(r.opt, "OPT expected (D2): %r" % r)
        payload, do = opt
        tc.assertEqual(r.opt.udp_size, payload, "OPT payload: %r" % r.opt)
        tc.assertEqual(r.opt.version, 0, "OPT version: %r" % r.opt)
        tc.assertEqual(r.opt.do, do, "OPT DO bit: %r" % r.opt)
        tc.assertEqual(r.opt.owner, ".", "OPT owner must be the root")


def assert_forwarded(tc, r):
    """The query was not answered locally.

    Until forwarding exists (and, afterwards, with the zero-nameserver
    resolv.conf these tests use: SPEC §4 "Zero servers"), a forwarded query
    gets SERVFAIL, AA=0, no records.  With a fake upstream this becomes the
    check for the upstream's answer."""
    if FORWARD_TO_FAKE_UPSTREAM:
        # FakeUpstream's default answer; the proxy itself never makes
        # NXDOMAIN (SPEC §3), so this one came from upstream.
        tc.assertEqual(r.rcode, NXDOMAIN,
                       "expected the fake upstream's NXDOMAIN, got %r" % r)
        tc.assertTrue(r.ra, "upstream's RA=1 must be relayed: %r" % r)
    else:
        tc.assertEqual(r.rcode, SERVFAIL,
                       "expected a forwarded query (SERVFAIL without "
                       "upstream), got %r" % r)
    tc.assertFalse(r.aa, "AA must be 0: not a local answer: %r" % r)
    tc.assertEqual(r.answer, [], "no local records expected: %r" % r)
    tc.assertEqual(r.authority, [], "%r" % r)
    tc.assertEqual(r.additional, [], "%r" % r)


def assert_error_reply(tc, r, query_wire, rcode, echo_question=True,
                       opt=False):
    """An error reply (SPEC §3): ID kept, QR=1, AA=0, the question kept, no
    RRs (no OPT unless opt=True, as for BADVERS)."""
    tc.assertEqual(r.rcode, rcode, "rcode: %r" % r)
    tc.assertTrue(r.qr, "QR must be 1: %r" % r)
    tc.assertFalse(r.aa, "AA must be 0: %r" % r)
    tc.assertEqual(r.id, query_id(query_wire), "ID not kept")
    tc.assertEqual(r.answer, [], "no answer RRs: %r" % r)
    tc.assertEqual(r.authority, [], "no authority RRs: %r" % r)
    tc.assertEqual(r.additional, [], "no additional RRs: %r" % r)
    if opt:
        tc.assertIsNotNone(r.opt, "OPT expected: %r" % r)
    else:
        tc.assertIsNone(r.opt, "error replies carry no OPT: %r" % r)
    if echo_question:
        q = parse_query(query_wire)
        tc.assertEqual(r.question, q.question[:1],
                       "question must be echoed: %r" % r)


def expect_silence(tc, addr, bad, timeout=1.0):
    """Sends bad then a valid query from one socket; the only reply must be
    the valid one's (bad was dropped)."""
    fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        s.connect(addr)
        bad_id = query_id(bad) if len(bad) >= 2 else 0
        good = build_query("www.google.com.", "A", qid=bad_id ^ 0x5A5A)
        s.send(bad)
        s.send(good)
        s.settimeout(QUERY_TIMEOUT)
        got = []
        try:
            got.append(s.recv(65535))
            s.settimeout(timeout)
            while True:
                got.append(s.recv(65535))
        except socket.timeout:
            pass
        tc.assertEqual([query_id(g) for g in got if len(g) >= 2],
                       [query_id(good)],
                       "only the valid query may be answered; got %d "
                       "replies" % len(got))
    finally:
        s.close()
