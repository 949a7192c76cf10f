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

Forwarding: every proxy started here forwards (`--upstream`) to a
FakeUpstream of its own unless the test passes other upstreams (or False for
none); assert_forwarded() checks that a reply is that upstream's answer,
relayed unchanged (for an unknown name: NXDOMAIN with an SOA).
DNSPROXY_BB_UPSTREAM=0 starts proxies without any server instead, and
assert_forwarded() then expects SERVFAIL (SPEC §4 "Zero servers").
FakeUpstream has fault modes per server or per name (FAULTS) and records
every query it receives (bytes, transport, time).

Replies are decoded by parse_reply() (a strict decoder written here, which
keeps wire order, owner case and duplicates) and cross-checked with
dnspython's decoder (check_dnspython()).
"""

import collections
import concurrent.futures
import heapq
import http.client
import json
import os
import random
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import zlib

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
                "--child-silent-after-fork=yes",
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


def udp_burst(addr, wires, timeout=QUERY_TIMEOUT, nsocks=8):
    """Sends all queries at once over nsocks UDP sockets (wires must have
    distinct IDs) and collects the replies; returns {id: reply bytes} for
    the IDs answered within timeout of the last send."""
    socks = []
    for _ in range(nsocks):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.connect(addr)
        s.setblocking(False)
        socks.append(s)
    want = {query_id(w) for w in wires}
    assert len(want) == len(wires), "udp_burst needs distinct IDs"
    got = {}
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)

    def drain(wait):
        for key, _ in sel.select(wait):
            while True:
                try:
                    d = key.fileobj.recv(65535)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                if len(d) >= 2 and query_id(d) in want:
                    got.setdefault(query_id(d), d)
    try:
        for i, w in enumerate(wires):
            while True:
                try:
                    socks[i % nsocks].send(w)
                    break
                except BlockingIOError:
                    drain(0.001)
            if i % 64 == 63:
                drain(0.002)   # ~30k queries/s: no drops at the proxy
        deadline = time.monotonic() + timeout
        while len(got) < len(want) and time.monotonic() < deadline:
            drain(min(0.05, max(0, deadline - time.monotonic())))
        return got
    finally:
        sel.close()
        for s in socks:
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
# Every Proxy forwards to its own FakeUpstream (`--upstream`) unless a test
# says otherwise, and assert_forwarded() checks that the reply is the one
# that upstream gives (an NXDOMAIN with its SOA by default).
# DNSPROXY_BB_UPSTREAM=0 goes back to proxies without any server (a
# forwarded query then gets SERVFAIL, SPEC §4 "Zero servers").

FORWARD_TO_FAKE_UPSTREAM = os.environ.get("DNSPROXY_BB_UPSTREAM", "1") != "0"

GIANT_OWNER = "aaaaaaaaaaaa.aaaaaa."
SYNTH_SUFFIX = ".synth."
SOA_TTL = 60
SERVER_COOKIE = b"\x5e\x5e\xc0\x0c\x1e\x5e\xc0\x0c"

# Fault modes (FakeUpstream.mode for the whole server, faults[name] for
# one name; "*.zone." keys match every name below zone.):
#   silent     never answers (the query is still recorded)
#   servfail   SERVFAIL; refused: REFUSED (both with a TXT "tag" record in
#              the additional section naming the server)
#   slow       the normal answer after `delay` seconds (("slow", 0.5) for
#              one name)
#   big        NOERROR with `big_count` A records whatever the query's
#              EDNS size, over UDP too (("big", 300) for one name)
#   tc         over UDP an empty TC=1 reply; over TCP the normal answer
#   garbage    right ID and question, then a cut answer (unparsable)
#   wrong_id   a NOERROR (A 6.6.6.6) whose ID is not the query's
#   close      TCP: the connection is closed once the query is read;
#              UDP: the normal answer
#   formerr    FORMERR without an OPT (a server that does not speak EDNS)
FAULTS = ("silent", "servfail", "refused", "slow", "big", "tc", "garbage",
          "wrong_id", "close", "formerr")
WRONG_ID_IP = "6.6.6.6"


def synth_ip(name):
    """The A record the fake upstream gives for a name under synth."""
    h = zlib.crc32(name.lower().encode())
    return "10.%d.%d.%d" % ((h >> 16) & 255, (h >> 8) & 255, h & 255)


class Received(collections.namedtuple(
        "Received", "transport name qtype id wire time")):
    """One query as a FakeUpstream received it."""

    @property
    def opt(self):
        """The query's OPT (an Opt), or None."""
        return parse_query_opt(self.wire)


def parse_query_opt(wire):
    """The OPT of a query (Opt) or None; the query must be well formed."""
    if struct.unpack("!H", wire[10:12])[0] == 0:
        return None
    return Reply(wire).opt


def edns_options(opt_rdata):
    """[(code, data)] of an OPT's rdata."""
    out, off = [], 0
    while off + 4 <= len(opt_rdata):
        code, n = struct.unpack("!HH", opt_rdata[off:off + 4])
        out.append((code, opt_rdata[off + 4:off + 4 + n]))
        off += 4 + n
    return out


class Answer:
    """A canned upstream answer.  Records are (owner, type, rdata bytes) or
    (owner, type, rdata bytes, ttl); ttl defaults to 30."""

    def __init__(self, rcode=NOERROR, answer=(), authority=(), additional=(),
                 tc=False, aa=False, ad=False):
        self.rcode, self.tc, self.aa, self.ad = rcode, tc, aa, ad
        self.sections = (list(answer), list(authority), list(additional))


def _soa_rdata():
    return (name_to_wire("ns.fake-upstream.") +
            name_to_wire("hostmaster.fake-upstream.") +
            struct.pack("!IIIII", 2024010101, 1800, 900, 604800, SOA_TTL))


class FakeLogic:
    """What a FakeUpstream answers (no sockets: assert_forwarded() asks a
    default one what the proxy should have relayed).  SPEC §8: NXDOMAIN
    (RA=1, AA=0, with an SOA in the authority section) by default, except
      www.bing.com.  A 1.1.1.1
      giant.         64 A RRs owned by aaaaaaaaaaaa.aaaaaa. (240.0.0.0-63),
                     never truncated
      giant-tc.      the same, truncated by the upstream itself to 512 B
                     (29 RRs, TC=1)
      *.synth.       A synth_ip(name)
    plus whatever answers[(name, qtype)] holds: an Answer or (rcode,
    [(owner, type, rdata)]).  A query with an OPT gets an OPT (4096) back,
    which echoes a client cookie with SERVER_COOKIE appended."""

    def __init__(self, mode=None, tag="up", delay=1.0, big_count=300):
        self.answers = {}
        self.faults = {}
        self.mode = mode
        self.tag = tag
        self.delay = delay
        self.big_count = big_count

    def fault_for(self, name):
        """(mode, arg) for a lowercased name, or (None, None)."""
        spec = self.faults.get(name)
        if spec is None:
            labels = name.split(".")
            for i in range(1, len(labels) - 1):
                spec = self.faults.get("*." + ".".join(labels[i:]))
                if spec is not None:
                    break
        if spec is None:
            spec = self.mode
        if spec is None:
            return None, None
        if isinstance(spec, str):
            spec = (spec, None)
        assert spec[0] in FAULTS, spec
        return spec

    def lookup(self, name, qtype):
        """The Answer for a question (name as sent, any case)."""
        lname = name.lower()
        a = self.answers.get((lname, qtype))
        if isinstance(a, tuple):
            a = Answer(a[0], a[1])
        if a is not None:
            return a
        if lname == "www.bing.com." and qtype == 1:
            return Answer(NOERROR, [(name, 1, socket.inet_aton("1.1.1.1"))])
        if lname in ("giant.", "giant-tc.") and qtype == 1:
            recs = [(GIANT_OWNER, 1, bytes([240, 0, 0, i]))
                    for i in range(64)]
            if lname == "giant-tc.":
                return Answer(NOERROR, recs[:29], tc=True)
            return Answer(NOERROR, recs)
        if lname.endswith(SYNTH_SUFFIX) and qtype == 1:
            return Answer(NOERROR, [(name, 1, socket.inet_aton(
                synth_ip(lname)))])
        return Answer(NXDOMAIN, authority=[(None, TYPES["SOA"],
                                            _soa_rdata(), SOA_TTL)])

    def build(self, wire, a, qid=None):
        """The reply to query wire carrying Answer a.  An owner None is the
        zone: a compression pointer to the question's last label."""
        q = parse_query(wire)
        qend = read_name(wire, 12)[1] + 4
        labels, off = [], 12
        while wire[off]:
            labels.append(off)
            off += 1 + wire[off]
        zone_ptr = (struct.pack("!H", 0xC000 | labels[-1]) if labels
                    else b"\x00")
        flags = F_QR | F_RA | (q.flags & (F_RD | F_CD)) | (q.opcode << 11)
        flags |= (F_TC if a.tc else 0) | (F_AA if a.aa else 0) | \
            (F_AD if a.ad else 0) | (a.rcode & 0xF)
        out = bytearray(wire[12:qend])
        comp = {}
        counts = []
        for sec in a.sections:
            for rec in sec:
                owner, rtype, rdata = rec[:3]
                ttl = rec[3] if len(rec) > 3 else 30
                if owner is None:
                    ow = zone_ptr
                elif owner in comp:
                    ow = struct.pack("!H", 0xC000 | comp[owner])
                else:
                    comp[owner] = 12 + len(out)
                    ow = name_to_wire(owner)
                out += ow + struct.pack("!HHIH", rtype, CLASS_IN, ttl,
                                        len(rdata)) + rdata
            counts.append(len(sec))
        qopt = parse_query_opt(wire)
        if qopt is not None:
            opts = b""
            for code, data in edns_options(qopt.options):
                if code == 10 and len(data) == 8:
                    opts += edns_option(10, data + SERVER_COOKIE)
            out += opt_rr(4096, do=qopt.do, options=opts)
            counts[2] += 1
        if qid is None:
            qid = q.id
        return struct.pack("!HHHHHH", qid, flags, 1, *counts) + bytes(out)

    def plan(self, wire, transport):
        """(reply bytes or None, delay seconds, close TCP?) for a query;
        None for a message that is not a query at all."""
        try:
            q = parse_query(wire)
            qend = read_name(wire, 12)[1] + 4
        except Exception:  # noqa: BLE001
            return None
        if len(wire) < 12 or q.flags & F_QR or len(q.question) != 1 or \
                qend > len(wire):
            return None
        name, qtype, _ = q.question[0]
        mode, arg = self.fault_for(name.lower())
        a = self.lookup(name, qtype)
        if mode == "silent":
            return None, 0, False
        if mode == "close":
            return (None, 0, True) if transport == "tcp" else \
                (self.build(wire, a), 0, False)
        if mode == "formerr":
            r = self.build(wire, Answer(FORMERR))
            ar = struct.unpack("!H", r[10:12])[0]
            if ar:      # drop our OPT: the last 11 bytes
                r = r[:10] + struct.pack("!H", ar - 1) + r[12:-11]
            return r, 0, False
        if mode in ("servfail", "refused"):
            tag = (("tag.fake-upstream.", TYPES["TXT"],
                    bytes([len(self.tag)]) + self.tag.encode()),)
            return self.build(wire, Answer(
                SERVFAIL if mode == "servfail" else REFUSED,
                additional=tag)), 0, False
        if mode == "slow":
            return self.build(wire, a), (self.delay if arg is None
                                         else arg), False
        if mode == "big":
            n = self.big_count if arg is None else arg
            return self.build(wire, Answer(NOERROR, [
                (GIANT_OWNER, 1, struct.pack("!I", 0xF0000000 + i))
                for i in range(n)])), 0, False
        if mode == "tc" and transport == "udp":
            return self.build(wire, Answer(a.rcode, tc=True)), 0, False
        if mode == "garbage":
            return (struct.pack("!HHHHHH", q.id, F_QR | F_RA | F_RD, 1, 3,
                                0, 0) + wire[12:qend] +
                    b"\xc0\x0c\x00\x01\x00\x01\x00\x00"), 0, False
        if mode == "wrong_id":
            marker = Answer(NOERROR, [(name, 1,
                                       socket.inet_aton(WRONG_ID_IP))])
            return self.build(wire, marker, qid=q.id ^ 0x5A5A), 0, False
        return self.build(wire, a), 0, False


class FakeUpstream(FakeLogic):
    """FakeLogic served on 127.0.0.1, or ::1 with v6=True (UDP and TCP, one
    free port).

    queries: a Received for every query, in arrival order."""

    def __init__(self, mode=None, tag=None, delay=1.0, big_count=300,
                 v6=False):
        self.port = free_port(v6=v6)
        self.addr = ("::1" if v6 else "127.0.0.1", self.port)
        fam = socket.AF_INET6 if v6 else socket.AF_INET
        super().__init__(mode, tag or "up-%d" % self.port, delay, big_count)
        self.queries = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns = set()
        self._timers = []  # heap of (when, seq, send, data)
        self._seq = 0
        self._cond = threading.Condition(self._lock)
        self.udp = socket.socket(fam, socket.SOCK_DGRAM)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            self.udp.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
        self.udp.bind(self.addr)
        self.udp.settimeout(0.2)
        self.tcp = socket.socket(fam, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(self.addr)
        self.tcp.listen(256)
        self.tcp.settimeout(0.2)
        self._threads = [threading.Thread(target=f, daemon=True) for f in
                         (self._serve_udp, self._serve_tcp, self._timer)]
        for t in self._threads:
            t.start()

    @property
    def spec(self):
        """The --upstream argument for this server."""
        return ("[%s]:%d" if ":" in self.addr[0] else "%s:%d") % self.addr

    def close(self):
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            t.join(5)
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.udp.close()
        self.tcp.close()

    # -- what was asked --

    def received(self, name=None, transport=None):
        """The Received queries, optionally only for one name (any case)
        and/or transport."""
        with self._lock:
            qs = list(self.queries)
        return [q for q in qs
                if (name is None or q.name.lower() == name.lower()) and
                (transport is None or q.transport == transport)]

    def count(self, name=None, transport=None):
        return len(self.received(name, transport))

    def wait_count(self, n, name=None, timeout=QUERY_TIMEOUT):
        """Waits until at least n matching queries arrived; returns the
        count."""
        deadline = time.monotonic() + timeout
        while True:
            c = self.count(name)
            if c >= n or time.monotonic() > deadline:
                return c
            time.sleep(0.01)

    def clear(self):
        with self._lock:
            del self.queries[:]

    # -- serving --

    def _handle(self, wire, transport, send):
        """Records and answers one query; returns True to close (TCP)."""
        p = self.plan(wire, transport)
        if p is None:
            return False
        q = parse_query(wire)
        with self._lock:
            self.queries.append(Received(transport, q.question[0][0],
                                         q.question[0][1], q.id,
                                         bytes(wire), time.monotonic()))
        reply, delay, close = p
        if reply is not None:
            if delay > 0:
                with self._cond:
                    self._seq += 1
                    heapq.heappush(self._timers, (time.monotonic() + delay,
                                                  self._seq, send, reply))
                    self._cond.notify()
            else:
                send(reply)
        return close

    def _timer(self):
        while not self._stop.is_set():
            with self._cond:
                now = time.monotonic()
                if not self._timers:
                    self._cond.wait(0.2)
                    continue
                when = self._timers[0][0]
                if when > now:
                    self._cond.wait(min(0.2, when - now))
                    continue
                _, _, send, reply = heapq.heappop(self._timers)
            send(reply)

    def _serve_udp(self):
        while not self._stop.is_set():
            try:
                data, peer = self.udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return

            def send(r, peer=peer):
                try:
                    self.udp.sendto(r, peer)
                except OSError:
                    pass
            self._handle(data, "udp", send)

    def _serve_tcp(self):
        while not self._stop.is_set():
            try:
                c, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.add(c)
            threading.Thread(target=self._serve_conn, args=(c,),
                             daemon=True).start()

    def _serve_conn(self, c):
        lock = threading.Lock()

        def send(r):
            with lock:
                try:
                    c.sendall(frame(r))
                except OSError:
                    pass
        c.settimeout(10)
        try:
            while not self._stop.is_set():
                if self._handle(recv_frame(c), "tcp", send):
                    break
        except (OSError, EOFError):
            pass
        finally:
            with self._lock:
                self._conns.discard(c)
            with lock:
                c.close()


class Dnsmasq:
    """A real dnsmasq on 127.0.0.1:<free port> (no config file, no
    resolv.conf, no hosts file, no cache), with extra options; for tests
    that need a real upstream.  Dnsmasq.path() is None when dnsmasq is not
    installed."""

    @staticmethod
    def path():
        return shutil.which("dnsmasq") or next(
            (p for p in ("/usr/sbin/dnsmasq", "/sbin/dnsmasq")
             if os.access(p, os.X_OK)), None)

    def __init__(self, options=()):
        self.port = free_port()
        self.addr = ("127.0.0.1", self.port)
        self.spec = "127.0.0.1:%d" % self.port
        self.dir = tempfile.mkdtemp(prefix="dnsproxy-bb-dnsmasq-")
        self.log_path = os.path.join(self.dir, "log")
        cmd = [self.path(), "--keep-in-foreground", "--conf-file=/dev/null",
               "--no-resolv", "--no-hosts", "--cache-size=0",
               "--port=%d" % self.port, "--listen-address=127.0.0.1",
               "--bind-interfaces", "--pid-file=",
               "--log-facility=" + self.log_path]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        self._log = open(os.path.join(self.dir, "stderr"), "wb")
        self.proc = subprocess.Popen(cmd + list(options),
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + READY_TIMEOUT
        probe = build_query("ready.probe.invalid.", "A")
        while udp_exchange(self.addr, probe, timeout=0.2) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.log()
                self.close()
                raise RuntimeError("dnsmasq did not start: %s" % err)

    def log(self):
        out = ""
        for f in ("stderr", "log"):
            try:
                with open(os.path.join(self.dir, f), "rb") as fh:
                    out += fh.read().decode("utf-8", "replace")
            except OSError:
                pass
        return out

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


DEFAULT_UPSTREAM = FakeLogic()


def upstream_reply(query_wire, transport="udp"):
    """The Reply a default FakeUpstream gives to query_wire."""
    return parse_reply(DEFAULT_UPSTREAM.plan(query_wire, transport)[0])


def record_tuples(rrs):
    """Comparable form of a section: (owner, type, class, ttl, rdata); an
    OPT as ("OPT", size, flags+version+ext_rcode, options)."""
    out = []
    for x in rrs:
        if isinstance(x, Opt):
            out.append(("OPT", x.owner, x.udp_size, x.ext_rcode, x.version,
                        x.flags, x.options))
        else:
            out.append((x.owner, x.rtype, x.rclass, x.ttl, x.rdata))
    return out


def assert_relayed(tc, r, upstream_r, query_wire=None, tc_bit=None):
    """r is upstream_r as relayed to the client (SPEC §4 Relay): the same
    rcode, flags and sections (owners, TTLs, order, rdata, OPT and its
    options); only the ID is the client's (and the question as the client
    sent it when query_wire is given).  tc_bit: expected TC when it is not
    the upstream's."""
    want_flags = upstream_r.flags
    if tc_bit is not None:
        want_flags = (want_flags & ~F_TC) | (F_TC if tc_bit else 0)
    tc.assertEqual(r.rcode, upstream_r.rcode, "rcode: %r" % r)
    tc.assertEqual("%#06x" % r.flags, "%#06x" % want_flags,
                   "flags not relayed: got %r, upstream %r" % (r, upstream_r))
    for i, sec in enumerate(("answer", "authority", "additional")):
        tc.assertEqual(record_tuples(r.sections[i]),
                       record_tuples(upstream_r.sections[i]),
                       "%s section not relayed unchanged:\n got %r\n "
                       "upstream %r" % (sec, r, upstream_r))
    if query_wire is not None:
        assert_reply_to(tc, r, query_wire)


def assert_forwarded(tc, r, query_wire=None):
    """The query was not answered locally but forwarded.

    With the proxy forwarding to its own FakeUpstream (the default), r must
    be that upstream's answer, relayed unchanged (assert_relayed): for an
    unknown name an NXDOMAIN with its SOA, RA=1, AA=0.  Without an upstream
    (DNSPROXY_BB_UPSTREAM=0), a forwarded query gets SERVFAIL (SPEC §4
    "Zero servers")."""
    query_wire = query_wire or getattr(r, "query", None)
    if FORWARD_TO_FAKE_UPSTREAM:
        tc.assertIsNotNone(query_wire, "assert_forwarded needs the query")
        assert_relayed(tc, r, upstream_reply(query_wire), query_wire)
        return
    tc.assertEqual(r.rcode, SERVFAIL,
                   "expected a forwarded query (SERVFAIL without "
                   "upstream), got %r" % r)
    tc.assertFalse(r.aa, "AA must be 0: not a local answer: %r" % r)
    tc.assertEqual(r.answer, [], "no local records expected: %r" % r)
    tc.assertEqual(r.authority, [], "%r" % r)
    tc.assertEqual(r.additional, [], "%r" % r)


def assert_servfail(tc, r, query_wire):
    """The proxy's own SERVFAIL for a forward that failed (SPEC §4 All
    fail / Zero servers): ID, opcode, RD, CD copied, question echoed, AA=0,
    no records, an OPT only if the query had one."""
    tc.assertEqual(r.rcode, SERVFAIL, "rcode: %r" % r)
    tc.assertFalse(r.aa, "AA must be 0: %r" % r)
    tc.assertFalse(r.tc, "TC must be 0: %r" % r)
    assert_reply_to(tc, r, query_wire)
    tc.assertEqual((r.answer, r.authority), ([], []), "no records: %r" % r)
    if parse_query_opt(query_wire) is None:
        tc.assertEqual(r.additional, [], "no OPT: the query had none: %r"
                       % r)
    else:
        tc.assertIsNotNone(r.opt, "the query had an OPT: %r" % r)
        tc.assertEqual([x for x in r.additional if x is not r.opt], [],
                       "only the OPT: %r" % r)


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
    upstream: what to forward to (one `--upstream` each): a FakeUpstream,
    an "IP:PORT" string, or a list of these; False for no --upstream at
    all; None (default) for a FakeUpstream of the proxy's own (closed with
    it), or none when DNSPROXY_BB_UPSTREAM=0.
    cache_size: `--cache-size`; 0 (default) turns the forwarded-answer
    cache off, so that tests counting upstream queries see every one
    (SPEC §10.1); None leaves the flag out (the proxy's default, on).
    """

    def __init__(self, table=None, namespace="ns1", domain=None,
                 search=SPEC8_SEARCH, resolv_text=None, nameservers=(),
                 ttl=None, listen=None, args=(), env=None, v6=False,
                 log_level=None, pass_resolv_conf=True, upstream=None,
                 cache_size=0):
        self.dir = tempfile.mkdtemp(prefix="dnsproxy-bb-")
        self._own_upstream = False
        if upstream is None:
            upstream = False
            if FORWARD_TO_FAKE_UPSTREAM:
                upstream = FakeUpstream()
                self._own_upstream = True
        if upstream is False:
            upstream = []
        elif not isinstance(upstream, (list, tuple)):
            upstream = [upstream]
        self.upstreams = list(upstream)
        # the first FakeUpstream, if any
        self.upstream = next((u for u in self.upstreams
                              if isinstance(u, FakeUpstream)), None)
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
        for u in self.upstreams:
            cmd += ["--upstream", u if isinstance(u, str) else u.spec]
        if cache_size is not None:
            cmd += ["--cache-size", str(cache_size)]
        # The admin server defaults to 127.0.0.1:15020, which concurrent
        # proxies would fight over: each gets its own port (a test that
        # passes --admin itself wins, being later on the command line).
        self.admin_port = free_port()
        self.admin_addr = ("127.0.0.1", self.admin_port)
        cmd += ["--admin", "127.0.0.1:%d" % self.admin_port]
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
        """Polls with a UDP query until any reply arrives.  The probe is a
        STATUS (opcode 2) query, which the proxy answers NOTIMP before any
        lookup: it never reaches an upstream, whatever state that is in,
        and never shows up in a FakeUpstream's queries."""
        addr = addr or self.addr4
        deadline = time.monotonic() + timeout
        probe = build_query("ready.probe.invalid.", "A", opcode=2)
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
            self._own_upstream = False
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

    def fd_count(self):
        """How many descriptors the proxy has open (/proc/PID/fd)."""
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def rss_kib(self):
        """The proxy's resident set size in KiB (VmRSS)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS for pid %d" % self.proc.pid)

    # -- admin port (SPEC §6) --

    def admin_get(self, path, timeout=5.0):
        """(status, body text) of GET path on the proxy's admin port."""
        c = http.client.HTTPConnection(*self.admin_addr, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read().decode("utf-8", "replace")
        finally:
            c.close()

    def ready_status(self):
        """The HTTP status of /healthz/ready (200 once a table is loaded,
        503 before)."""
        return self.admin_get("/healthz/ready")[0]

    def metrics(self):
        """{(name, labels text): value} of one /stats/prometheus scrape
        (labels text as exposed, e.g. '{version="v1"}', or '')."""
        status, body = self.admin_get("/stats/prometheus")
        if status != 200:
            raise AssertionError("/stats/prometheus answered %d" % status)
        out = {}
        for line in body.splitlines():
            if not line or line.startswith("#"):
                continue
            m = _PROM_SAMPLE.match(line)
            if m:
                out[(m.group(1), m.group(2) or "")] = float(m.group(3))
        return out

    def metric(self, name, labels="", default=0.0):
        """One sample of metrics(); default when absent."""
        return self.metrics().get((name, labels), default)

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

    def timed_ask(self, name, qtype="A", proto="udp", **kw):
        """ask(), and the seconds the reply took."""
        t0 = time.monotonic()
        r = self.ask(name, qtype, proto, **kw)
        return r, time.monotonic() - t0


_PROM_SAMPLE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def wait_until(fn, timeout=READY_TIMEOUT, interval=0.05, what=None):
    """Calls fn() until it returns something truthy (returned) or timeout
    seconds pass (AssertionError naming what, with fn's last value)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s "
                                 "(last value %r)" % (
                                     timeout, what or getattr(
                                         fn, "__name__", "a condition"), v))
        time.sleep(interval)


def ask_all(proxy, names, qtype="A", proto="udp", **kw):
    """Asks for every name at once (one thread each); returns [(Reply,
    seconds)] in the order of names."""
    with concurrent.futures.ThreadPoolExecutor(min(64, len(names))) as ex:
        futs = [ex.submit(proxy.timed_ask, n, qtype, proto, **kw)
                for n in names]
        return [f.result() for f in futs]


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


# ---------------------------------------------------------------------------
# Resource checks (test_abuse.py)


def sanitized_binary():
    """True when the binary under test is an ASan build: its allocator
    quarantine and shadow memory make RSS larger and grow without a leak,
    so RSS bounds need more room (LeakSanitizer reports real leaks at
    exit, which Proxy.close() turns into a failure)."""
    try:
        with open(binary(), "rb") as f:
            return b"__asan_init" in f.read()
    except (OSError, RuntimeError):
        return False


def raise_nofile(want):
    """Raises this process's soft RLIMIT_NOFILE to want (at most the hard
    limit; proxies started afterwards inherit it); returns the new soft
    limit."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


class RssPeak:
    """Samples a proxy's RSS (KiB) every interval seconds in a thread
    until stop(), which returns the largest sample."""

    def __init__(self, proxy, interval=0.05):
        self.proxy = proxy
        self.interval = interval
        self.peak = proxy.rss_kib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(self.interval):
            try:
                self.peak = max(self.peak, self.proxy.rss_kib())
            except (OSError, RuntimeError):
                return   # the proxy is gone; the test will say why

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        return self.peak


# ---- dnsperf output and socket drops (test_load_fault.py, bench/swap.py)

def udp_socket_drops(local_port=None, remote_port=None):
    """Drops (receive buffer full) summed over the IPv4 UDP sockets bound
    to local_port or connected to remote_port (/proc/net/udp)."""
    total = 0
    try:
        with open("/proc/net/udp") as f:
            next(f)
            for line in f:
                c = line.split()
                lp = int(c[1].split(":")[1], 16)
                rp = int(c[2].split(":")[1], 16)
                if lp == local_port or rp == remote_port:
                    total += int(c[-1])
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return total


DNSPERF_LINE = re.compile(r"^> (\S+) (\S+) (\S+)(?: ([0-9.]+))?$")


def parse_dnsperf(path):
    """(per-reply [(rcode, name, latency)], summary {key: text}) of dnsperf
    -v output."""
    replies = []
    summary = {}
    with open(path, "r", errors="replace") as f:
        for line in f:
            if line.startswith("> "):
                m = DNSPERF_LINE.match(line.rstrip("\n"))
                if m:
                    replies.append((m.group(1), m.group(2).rstrip("."),
                                    float(m.group(4) or 0)))
                else:
                    replies.append(("?", line.strip(), 0.0))
                continue
            if ":" in line and line.startswith("  "):
                k, v = line.split(":", 1)
                summary[k.strip()] = v.strip()
    return replies, summary


def leading_int(text):
    m = re.match(r"\s*(\d+)", text or "")
    return int(m.group(1)) if m else None
