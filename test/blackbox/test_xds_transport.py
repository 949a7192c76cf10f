#!/usr/bin/python3
"""NDS over xDS, the transport (SPEC §5 Transport and Outages): the proxy
against small hand-rolled servers (raw sockets, HTTP/2 frames built here)
that misbehave in ways grpcio will not.

Dial timeout (5 s) against a server that accepts and stays silent, in
plaintext and over TLS; GOAWAY refusing the stream, a graceful GOAWAY
then a hang-up, a hang-up right after SETTINGS; an HTTP error status and
a trailers-only gRPC error with a percent-encoded grpc-message, each with
and without a RST_STREAM after the END_STREAM; the back-off growing
between attempts (1 s -> 30 s with jitter); keepalive (PING every 30 s,
drop when not acked within 10 s) in the slow tier (DNSPROXY_SLOW=1).

test_xds.py covers what a well-behaved control plane (grpcio) sees:
pushes, NACKs, TLS, closed streams, restarts, snapshots."""

import os
import re
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import xds_server  # noqa: E402
from harness import SLOW, assert_local  # noqa: E402
from xds_server import NDS_TYPE  # noqa: E402

SLOW_TIER = os.environ.get("DNSPROXY_SLOW") == "1"

# SPEC §5 figures, and the slack the tests allow on them (>= 2x, for the
# ASan+UBSan binary and a loaded machine; SLOW stretches it under
# valgrind).
DIAL_TIMEOUT = 5.0
KEEPALIVE = 30.0
PING_TIMEOUT = 10.0
BACKOFF_MIN = 1.0


def slack(seconds):
    return seconds * 2.0 * SLOW


# ---------------------------------------------------------------------------
# HTTP/2 by hand (RFC 9113): frames, and HPACK literals without indexing.

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
FRAME_NAMES = {DATA: "DATA", HEADERS: "HEADERS", PRIORITY: "PRIORITY",
               RST_STREAM: "RST_STREAM", SETTINGS: "SETTINGS",
               PUSH_PROMISE: "PUSH_PROMISE", PING: "PING", GOAWAY: "GOAWAY",
               WINDOW_UPDATE: "WINDOW_UPDATE", CONTINUATION: "CONTINUATION"}
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
NO_ERROR = 0


def frame(ftype, flags=0, stream=0, payload=b""):
    """One frame: 24-bit length, type, flags, 31-bit stream id, payload."""
    return (struct.pack("!I", len(payload))[1:] + bytes([ftype, flags]) +
            struct.pack("!I", stream & 0x7FFFFFFF) + payload)


def hpack_literal(name, value):
    """A header as "literal header field without indexing, new name" (RFC
    7541 §6.2.2: prefix 0x00), both strings raw with a 7-bit length."""
    n, v = name.encode(), value.encode()
    assert len(n) < 127 and len(v) < 127, (name, value)
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


def headers_frame(stream, headers, end_stream=False):
    block = b"".join(hpack_literal(k, v) for k, v in headers)
    return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0),
                 stream, block)


def goaway_frame(last_stream, code=NO_ERROR, debug=b""):
    return frame(GOAWAY, 0, 0, struct.pack("!II", last_stream & 0x7FFFFFFF,
                                            code) + debug)


def rst_frame(stream, code=NO_ERROR):
    return frame(RST_STREAM, 0, stream, struct.pack("!I", code))


def window_update(stream, n):
    return frame(WINDOW_UPDATE, 0, stream, struct.pack("!I", n))


def grpc_frame(msg):
    """A gRPC length-prefixed message: flag 0, 4-byte big-endian length."""
    return b"\x00" + struct.pack("!I", len(msg)) + msg


def nds_response(table, version="v1", nonce="n1"):
    """A serialized DiscoveryResponse carrying one NameTable."""
    r = xds_server.DiscoveryResponse(version_info=version, type_url=NDS_TYPE,
                                     nonce=nonce)
    r.resources.add(type_url=NDS_TYPE, value=xds_server.table_bytes(table))
    return r.SerializeToString()


def grpc_ok_headers(stream):
    return headers_frame(stream, [(":status", "200"),
                                  ("content-type", "application/grpc")])


# ---------------------------------------------------------------------------
# Servers


class Peer:
    """One accepted connection: the socket, when it was accepted, what the
    client sent (events: (monotonic time, kind, detail)), the
    DiscoveryRequests it carried, and when the client closed it (eof)."""

    def __init__(self, sock, index):
        self.sock = sock
        self.index = index
        self.accepted = time.monotonic()
        self.events = []
        self.requests = []
        self.first_bytes = b""
        self.eof = None
        self.error = None
        self._grpc = b""

    def times(self, kind):
        return [t for t, k, _ in self.events if k == kind]

    def __repr__(self):
        return "Peer(#%d, %s%s)" % (
            self.index, [(round(t - self.accepted, 2), k, d)
                         for t, k, d in self.events][:20],
            ", eof after %.2f s" % (self.eof - self.accepted)
            if self.eof else "")


class RawServer:
    """A TCP listener on 127.0.0.1:<free port>.  Every accepted connection
    gets a Peer and a thread running self.session(peer); the base session
    reads and discards everything, never sending a byte (a server that
    accepts and then hangs).  close() shuts every socket and joins every
    thread."""

    def __init__(self):
        self.port = harness.free_port()
        self.target = "127.0.0.1:%d" % self.port
        self.peers = []
        self.cond = threading.Condition()
        self._stop = threading.Event()
        self._threads = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        t = threading.Thread(target=self._accept, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.cond:
                if self._stop.is_set():
                    c.close()
                    return
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                peer = Peer(c, len(self.peers))
                self.peers.append(peer)
                t = threading.Thread(target=self._run, args=(peer,),
                                     daemon=True)
                self._threads.append(t)
                self.cond.notify_all()
            t.start()

    def _run(self, peer):
        try:
            self.session(peer)
        except (OSError, EOFError) as e:
            if not self._stop.is_set():
                peer.error = repr(e)
        finally:
            self.note(peer, "closed")

    def note(self, peer, kind, detail=None):
        with self.cond:
            peer.events.append((time.monotonic(), kind, detail))
            self.cond.notify_all()

    def recv(self, peer, n=65536):
        """Bytes from the client, b"" once it closed (eof recorded)."""
        try:
            data = peer.sock.recv(n)
        except ConnectionResetError:
            data = b""
        if not data:
            with self.cond:
                if peer.eof is None:
                    peer.eof = time.monotonic()
                self.cond.notify_all()
        return data

    def drain(self, peer):
        """Reads until the client closes."""
        while self.recv(peer):
            pass

    def session(self, peer):
        while True:
            data = self.recv(peer)
            if not data:
                return
            if len(peer.first_bytes) < 64:
                peer.first_bytes += data[:64 - len(peer.first_bytes)]

    # -- waiting --

    def wait_for(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                v = pred()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "server: no %s within %.1f s; connections %r" % (
                            what, timeout, self.peers))
                self.cond.wait(min(left, 0.2))

    def wait_peers(self, n, timeout):
        """Waits for the n-th connection; returns the first n Peers."""
        return self.wait_for(lambda: len(self.peers) >= n and
                             list(self.peers[:n]), timeout,
                             "connection #%d" % n)

    def accept_times(self):
        with self.cond:
            return [p.accepted for p in self.peers]

    def close(self):
        self._stop.set()
        with self.cond:
            peers = list(self.peers)
        for p in peers:
            try:
                p.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in list(self._threads):
            t.join(5)
        for p in peers:
            p.sock.close()
        self.sock.close()


class HangUpServer(RawServer):
    """Accepts and hangs up at once (a clean FIN, then waits for the
    client's): every attempt fails after the TCP handshake."""

    def session(self, peer):
        peer.sock.shutdown(socket.SHUT_WR)
        self.drain(peer)


class H2Server(RawServer):
    """A minimal h2c server for one ADS stream.

    It checks the client preface, sends an empty SETTINGS, ACKs the
    client's SETTINGS, gives back flow-control credit for what it reads,
    records PINGs (and ACKs them only if ack_pings), GOAWAY and RST_STREAM,
    and parses the gRPC messages of the request body as DiscoveryRequests
    (peer.requests).  What happens next is up to the hooks:

    on_settings(peer): after the client's SETTINGS was ACKed; return True
        to end the session (the server then hangs up).
    on_request(peer, stream): the request HEADERS arrived; returns the
        bytes to send (response headers, data, trailers) or None.
    """

    def __init__(self, ack_pings=True):
        self.ack_pings = ack_pings
        super().__init__()

    def send(self, peer, data):
        peer.sock.sendall(data)

    def read_exact(self, peer, buf, n):
        while len(buf) < n:
            data = self.recv(peer)
            if not data:
                raise EOFError("client closed")
            buf += data
        return buf

    def session(self, peer):
        buf = self.read_exact(peer, b"", len(PREFACE))
        if buf[:len(PREFACE)] != PREFACE:
            self.note(peer, "bad preface", buf[:len(PREFACE)])
            return
        buf = buf[len(PREFACE):]
        self.send(peer, frame(SETTINGS))
        while True:
            buf = self.read_exact(peer, buf, 9)
            length = struct.unpack("!I", b"\0" + buf[:3])[0]
            ftype, flags = buf[3], buf[4]
            stream = struct.unpack("!I", buf[5:9])[0] & 0x7FFFFFFF
            buf = self.read_exact(peer, buf, 9 + length)
            payload, buf = buf[9:9 + length], buf[9 + length:]
            if not self.on_frame(peer, ftype, flags, stream, payload):
                return

    def on_frame(self, peer, ftype, flags, stream, payload):
        """Handles one client frame; False ends the session."""
        name = FRAME_NAMES.get(ftype, str(ftype))
        if ftype == SETTINGS and not flags & ACK:
            self.note(peer, "SETTINGS")
            self.send(peer, frame(SETTINGS, ACK))
            if self.on_settings(peer):
                peer.sock.shutdown(socket.SHUT_WR)
                self.drain(peer)
                return False
        elif ftype == HEADERS:
            self.note(peer, "HEADERS", stream)
            out = self.on_request(peer, stream)
            if out:
                self.send(peer, out)
        elif ftype == DATA:
            self.note(peer, "DATA", len(payload))
            if payload:
                self.send(peer, window_update(0, len(payload)) +
                          window_update(stream, len(payload)))
            self.grpc_in(peer, payload)
        elif ftype == PING and not flags & ACK:
            self.note(peer, "PING", payload)
            if self.ack_pings:
                self.send(peer, frame(PING, ACK, 0, payload))
        elif ftype == GOAWAY:
            self.note(peer, "GOAWAY", struct.unpack("!II", payload[:8]))
        elif ftype == RST_STREAM:
            self.note(peer, "RST_STREAM", struct.unpack("!I", payload[:4]))
        else:
            self.note(peer, name, flags)
        return True

    def grpc_in(self, peer, data):
        peer._grpc += data
        while len(peer._grpc) >= 5:
            n = struct.unpack("!I", peer._grpc[1:5])[0]
            if len(peer._grpc) < 5 + n:
                return
            msg, peer._grpc = peer._grpc[5:5 + n], peer._grpc[5 + n:]
            req = xds_server.DiscoveryRequest.FromString(msg)
            with self.cond:
                peer.requests.append((time.monotonic(), req))
                self.cond.notify_all()

    def on_settings(self, peer):
        return False

    def on_request(self, peer, stream):
        return None


class GoawayServer(H2Server):
    """Answers the request with GOAWAY(last stream 0, NO_ERROR): the ADS
    stream is refused, and the server keeps the connection open (the
    client must leave on its own)."""

    def on_request(self, peer, stream):
        return goaway_frame(0, NO_ERROR, b"test server going away")


class CloseAfterSettingsServer(H2Server):
    """Completes the SETTINGS exchange, then hangs up."""

    def on_settings(self, peer):
        return True


class StatusServer(H2Server):
    """Answers the request HEADERS with :status only, END_STREAM; with
    rst, a RST_STREAM(NO_ERROR) follows (RFC 9113 §8.1 allows both)."""

    def __init__(self, status, rst=False):
        self.status, self.rst = status, rst
        super().__init__()

    def on_request(self, peer, stream):
        out = headers_frame(stream, [(":status", str(self.status)),
                                     ("content-type", "text/plain")],
                            end_stream=True)
        return out + (rst_frame(stream) if self.rst else b"")


class TrailersOnlyServer(H2Server):
    """A trailers-only gRPC error (gRPC PROTOCOL-HTTP2 "Trailers-Only"):
    one HEADERS with :status 200, content-type, grpc-status and a
    percent-encoded grpc-message, END_STREAM; with rst, a
    RST_STREAM(NO_ERROR) follows, as grpc-go sends when the client has not
    half-closed."""

    def __init__(self, code, message, rst=False):
        self.code, self.message, self.rst = code, message, rst
        super().__init__()

    def on_request(self, peer, stream):
        out = headers_frame(stream, [(":status", "200"),
                                     ("content-type", "application/grpc"),
                                     ("grpc-status", str(self.code)),
                                     ("grpc-message", self.message)],
                            end_stream=True)
        return out + (rst_frame(stream) if self.rst else b"")


class AdsServer(H2Server):
    """Answers the request with :status 200 and content-type
    application/grpc and keeps the stream open; pushes `table` (one
    DiscoveryResponse in one DATA frame) on the first connection only, so
    anything answered later comes from the table the proxy kept."""

    def __init__(self, table=None, ack_pings=True):
        self.table = table
        super().__init__(ack_pings=ack_pings)

    def on_request(self, peer, stream):
        out = grpc_ok_headers(stream)
        if self.table is not None and peer.index == 0:
            out += frame(DATA, 0, stream,
                         grpc_frame(nds_response(self.table, "v1", "n1")))
        return out


class DrainingServer(AdsServer):
    """The graceful shutdown of a gRPC server (istiod's
    MaxServerConnectionAge): on the first connection it answers the
    request, sends GOAWAY(last stream = the ADS stream, NO_ERROR), which
    lets that stream go on, then pushes the table on it and, once the
    table is ACKed, hangs up (the grace period is over)."""

    def on_request(self, peer, stream):
        if peer.index != 0:
            return grpc_ok_headers(stream)
        return (grpc_ok_headers(stream) + goaway_frame(stream, NO_ERROR) +
                frame(DATA, 0, stream,
                      grpc_frame(nds_response(self.table, "v1", "n1"))))

    def grpc_in(self, peer, data):
        super().grpc_in(peer, data)
        if peer.index == 0 and any(r.response_nonce == "n1"
                                   for _, r in peer.requests):
            self.note(peer, "hang up")
            peer.sock.shutdown(socket.SHUT_WR)


# ---------------------------------------------------------------------------
# Test helpers


def xds_proxy(target, plaintext=True, args=()):
    """A Proxy (not started, no --table) pointed at target."""
    a = ["--xds", target] + (["--xds-plaintext"] if plaintext else [])
    return harness.Proxy(table=None, args=a + list(args))


TABLE = {"alpha.ns2.svc.cluster.local": {
    "ips": ["10.0.1.1"], "registry": "Kubernetes", "shortname": "alpha",
    "namespace": "ns2"}}
ALPHA = "alpha.ns2.svc.cluster.local."


class TransportCase(unittest.TestCase):

    def server(self, srv):
        self.addCleanup(srv.close)
        return srv

    def start(self, proxy):
        self.addCleanup(proxy.close)
        proxy.start()
        return proxy

    def log_lines(self, proxy, *regexes):
        """Every stderr line matching all regexes (case-insensitive)."""
        rxs = [re.compile(x, re.I) for x in regexes]
        return [line for line in proxy.stderr().splitlines()
                if all(rx.search(line) for rx in rxs)]

    def wait_log(self, proxy, *regexes, timeout=10.0 * SLOW):
        """The first stderr line matching every regex (waits for it)."""
        try:
            return harness.wait_until(
                lambda: (self.log_lines(proxy, *regexes) or [None])[0],
                timeout, 0.05)
        except AssertionError:
            raise AssertionError("no log line matching all of %r within "
                                 "%.0f s; stderr:\n%s" % (
                                     regexes, timeout,
                                     proxy.stderr()[-4000:]))

    def assert_not_ready(self, proxy, connected=True):
        """Alive, no table (SERVFAIL, readiness 503); with connected, also
        dnsproxy_xds_connected 0 (only where no attempt ever gets the
        server's SETTINGS: the gauge turns 1 on SETTINGS, so it blinks
        during each attempt against a server that answers them)."""
        proxy.assert_alive()
        r = proxy.ask(ALPHA)
        harness.assert_servfail(self, r, r.query)
        self.assertEqual(proxy.ready_status(), 503)
        if connected:
            self.assertEqual(proxy.metric("dnsproxy_xds_connected"), 0)

    def assert_reconnects_after_failure(self, srv, proxy, *why):
        """The proxy drops the first connection (the server sees it
        close), logs a line with `why`, and dials again within the first
        back-off step (<= 1 s, with slack); returns the log line."""
        first, = srv.wait_peers(1, slack(5))
        try:
            line = self.wait_log(proxy, r"xds:", *why, timeout=slack(3))
        except AssertionError as e:
            raise AssertionError("%s\nthe server saw: %r" % (e, srv.peers))
        second = srv.wait_peers(2, slack(BACKOFF_MIN) + 2 * SLOW)[1]
        srv.wait_for(lambda: first.eof, slack(2),
                     "the proxy closing the first connection")
        self.assertLessEqual(first.eof, second.accepted + 0.05,
                             "the old connection must be closed before "
                             "(or as) the new one is dialled: %r" % first)
        # the retry waits for the back-off (>= half of 1 s), it does not
        # spin
        self.assertGreaterEqual(second.accepted - first.eof, 0.4,
                                "retry too early: %r %r" % (first, second))
        self.assertTrue(self.log_lines(proxy, r"xds:", r"reconnecting in"),
                        proxy.stderr()[-2000:])
        proxy.assert_alive()
        self.assertGreaterEqual(proxy.metric(
            "dnsproxy_xds_reconnects_total"), 1)
        return line


# ---------------------------------------------------------------------------
# Dial timeout


class DialTimeout(TransportCase):
    """A server that accepts the TCP connection and then never sends a
    byte: the attempt is abandoned after the 5 s dial timeout with a log
    line saying so, the socket is closed, and the proxy dials again after
    the back-off; it never counts as connected."""

    @classmethod
    def setUpClass(cls):
        cls.certs = xds_server.Certs()
        cls.addClassCleanup(cls.certs.close)

    def dial_times_out(self, plaintext):
        srv = self.server(RawServer())
        args = [] if plaintext else ["--xds-root-cert", self.certs.ca]
        p = self.start(xds_proxy(srv.target, plaintext, args))
        first, = srv.wait_peers(1, slack(5))
        # nothing is ever connected meanwhile
        connected = []

        def sample():
            connected.append(p.metric("dnsproxy_xds_connected"))
            return len(srv.peers) >= 2
        harness.wait_until(sample, DIAL_TIMEOUT + slack(BACKOFF_MIN) +
                           6 * SLOW, 0.2, "a second connection attempt")
        second = srv.peers[1]
        line = self.wait_log(p, r"xds:", r"timed out", timeout=1 * SLOW)
        self.assertIn(srv.target, line)
        self.assertEqual(set(connected), {0}, "dnsproxy_xds_connected "
                         "must stay 0: %r" % connected)
        gap = second.accepted - first.accepted
        # 5 s of dial timeout plus >= 0.5 s of back-off, not earlier; the
        # line appears within 12 s of the dial (2x slack)
        self.assertGreaterEqual(gap, DIAL_TIMEOUT + 0.3, (first, second))
        self.assertLessEqual(gap, 12.0 * SLOW, (first, second))
        self.assertIsNotNone(first.eof, "the abandoned connection must be "
                             "closed by the proxy: %r" % first)
        self.assertGreaterEqual(first.eof - first.accepted,
                                DIAL_TIMEOUT - 0.2)
        self.assertLessEqual(first.eof - first.accepted, 12.0 * SLOW)
        self.assertTrue(self.log_lines(p, r"xds:", r"reconnecting in"))
        self.assertGreaterEqual(p.metric("dnsproxy_xds_reconnects_total"), 1)
        self.assert_not_ready(p)
        return first

    def test_plaintext_server_that_never_answers(self):
        first = self.dial_times_out(plaintext=True)
        # the client did its part: the HTTP/2 preface went out
        self.assertTrue(first.first_bytes.startswith(PREFACE),
                        first.first_bytes)

    def test_tls_server_that_never_answers_the_client_hello(self):
        first = self.dial_times_out(plaintext=False)
        # a TLS record of type handshake (the ClientHello) went out
        self.assertEqual(first.first_bytes[:2], b"\x16\x03",
                         first.first_bytes)


# ---------------------------------------------------------------------------
# The server ends the connection or the stream


class ServerHangsUp(TransportCase):

    def test_goaway_refusing_the_stream_makes_the_proxy_reconnect(self):
        """GOAWAY(last stream 0) with the socket left open: the proxy must
        not wait for the TCP close; it leaves and dials again."""
        srv = self.server(GoawayServer())
        p = self.start(xds_proxy(srv.target))
        self.assert_reconnects_after_failure(
            srv, p, r"goaway|refused|reset")
        self.assertTrue(srv.peers[0].times("HEADERS"), srv.peers[0])
        self.assert_not_ready(p, connected=False)

    def test_graceful_goaway_then_close(self):
        """GOAWAY naming the ADS stream as the last one lets it go on: a
        table pushed after it is taken and ACKed; when the server then
        hangs up, the proxy keeps the table and reconnects within the
        first back-off step (a response arrived, so the back-off starts
        over)."""
        srv = self.server(DrainingServer(TABLE))
        p = self.start(xds_proxy(srv.target))
        first, = srv.wait_peers(1, slack(5))
        srv.wait_for(lambda: first.times("hang up"), slack(5),
                     "the ACK of the table pushed after GOAWAY")
        self.assert_reconnects_after_failure(
            srv, p, re.escape(srv.target), r"closed|reset|goaway")
        second = srv.peers[1]
        srv.wait_for(lambda: second.requests, slack(5),
                     "the subscription on the new connection")
        req = second.requests[0][1]
        self.assertEqual((req.version_info, req.response_nonce), ("", ""))
        harness.wait_until(lambda: p.metric("dnsproxy_xds_connected") == 1,
                           slack(2), what="connected again")
        assert_local(self, p.ask(ALPHA), [(ALPHA, "A", "10.0.1.1")])
        self.assertEqual(p.ready_status(), 200)
        self.assertEqual(p.metric("dnsproxy_xds_acks_total"), 1)

    def test_close_right_after_settings(self):
        srv = self.server(CloseAfterSettingsServer())
        p = self.start(xds_proxy(srv.target))
        self.assert_reconnects_after_failure(
            srv, p, re.escape(srv.target), r"closed|reset|goaway")
        self.assertTrue(srv.peers[0].times("SETTINGS"), srv.peers[0])


class ErrorResponses(TransportCase):
    """The ADS request refused at the HTTP level, or ended at once with a
    gRPC error: the reason is logged (with the status) and the proxy
    reconnects."""

    def test_http_status_403(self):
        srv = self.server(StatusServer(403))
        p = self.start(xds_proxy(srv.target))
        self.assert_reconnects_after_failure(srv, p, r"HTTP status 403")
        self.assert_not_ready(p, connected=False)

    def test_http_status_403_followed_by_rst_stream(self):
        srv = self.server(StatusServer(403, rst=True))
        p = self.start(xds_proxy(srv.target))
        self.assert_reconnects_after_failure(srv, p, r"HTTP status 403")

    def trailers_only(self, rst):
        srv = self.server(TrailersOnlyServer(
            16, "token%20expired%2C%20100%25%20sure", rst))
        p = self.start(xds_proxy(srv.target))
        line = self.assert_reconnects_after_failure(
            srv, p, r"grpc-status 16\b")
        self.assertIn("token expired, 100% sure", line,
                      "grpc-message must be percent-decoded")
        self.assertNotIn("%20", line)
        self.assert_not_ready(p, connected=False)

    def test_trailers_only_grpc_error(self):
        self.trailers_only(rst=False)

    def test_trailers_only_grpc_error_followed_by_rst_stream(self):
        self.trailers_only(rst=True)


# ---------------------------------------------------------------------------
# Back-off


class Backoff(TransportCase):
    def test_backoff_grows_between_failed_attempts(self):
        """Every attempt fails right after the TCP handshake: the waits
        between attempts follow 1 s -> 2 s -> 4 s (each drawn from
        [d/2, d]), so the first is at most ~1 s and they grow."""
        srv = self.server(HangUpServer())
        p = self.start(xds_proxy(srv.target))
        srv.wait_peers(2, slack(5))
        early = p.metric("dnsproxy_xds_reconnects_total")
        self.assertGreaterEqual(early, 1)
        # attempts at 0, then after [0.5,1], [1,2], [2,4] s: <= 7 s
        srv.wait_peers(4, 7.0 + slack(2))
        times = srv.accept_times()[:4]
        gaps = [b - a for a, b in zip(times, times[1:])]
        why = "gaps between attempts %r" % [round(g, 2) for g in gaps]
        self.assertGreaterEqual(gaps[0], 0.4, why)
        self.assertLessEqual(gaps[0], 1.5 * SLOW, why)
        self.assertGreaterEqual(gaps[1], 0.9 * BACKOFF_MIN, why)
        self.assertGreaterEqual(gaps[1], 0.9 * gaps[0], why)
        self.assertGreaterEqual(gaps[2], 1.8 * BACKOFF_MIN, why)
        self.assertGreater(gaps[2], gaps[0], why)
        # no hot loop: nothing more than the schedule allows so far
        self.assertLessEqual(len(srv.accept_times()), 5, why)
        late = p.metric("dnsproxy_xds_reconnects_total")
        self.assertGreaterEqual(late, 3)
        self.assertGreater(late, early)
        self.assertGreaterEqual(len(self.log_lines(p, r"xds:",
                                                   r"reconnecting in")), 3)
        self.assertTrue(self.log_lines(p, r"xds:", re.escape(srv.target),
                                       r"closed|reset"),
                        p.stderr()[-2000:])
        self.assert_not_ready(p)


# ---------------------------------------------------------------------------
# Keepalive (slow tier: ~45 s)


@unittest.skipUnless(SLOW_TIER, "keepalive takes 30 s + 10 s of real time; "
                     "slow tier only (DNSPROXY_SLOW=1)")
class Keepalive(TransportCase):
    """Two proxies at once, each on its own hand-rolled h2 server that
    pushed one table: one server never ACKs PINGs (the proxy must PING
    ~30 s after connecting, drop the connection ~10 s later and reconnect,
    answering from its table all along), the other does (the connection
    must survive past the 40 s mark)."""

    @classmethod
    def setUpClass(cls):
        cls.deaf = AdsServer(TABLE, ack_pings=False)
        cls.addClassCleanup(cls.deaf.close)
        cls.live = AdsServer(TABLE, ack_pings=True)
        cls.addClassCleanup(cls.live.close)
        cls.p_deaf = xds_proxy(cls.deaf.target)
        cls.addClassCleanup(cls.p_deaf.close)
        cls.p_live = xds_proxy(cls.live.target)
        cls.addClassCleanup(cls.p_live.close)
        cls.p_deaf.start()
        cls.p_live.start()

    def wait_acked(self, srv):
        """The first connection, once the proxy ACKed version v1 on it."""
        return srv.wait_for(
            lambda: srv.peers and any(
                r.version_info == "v1" and r.response_nonce == "n1" and
                not r.HasField("error_detail")
                for _, r in srv.peers[0].requests) and srv.peers[0],
            slack(10), "the ACK of v1")

    def assert_answers(self, p):
        r = p.ask(ALPHA)
        assert_local(self, r, [(ALPHA, "A", "10.0.1.1")])

    def test_unacked_ping_drops_the_connection(self):
        srv, p = self.deaf, self.p_deaf
        first = self.wait_acked(srv)
        self.assert_answers(p)
        ready = first.times("SETTINGS")[0]   # the proxy's connected mark
        srv.wait_for(lambda: first.times("PING"), KEEPALIVE + slack(5),
                     "a keepalive PING")
        ping = first.times("PING")[0]
        self.assertGreaterEqual(ping - ready, KEEPALIVE - 1.5, first)
        self.assertLessEqual(ping - ready, KEEPALIVE + 5 * SLOW, first)
        payload = [d for _, k, d in first.events if k == "PING"][0]
        self.assertEqual(len(payload), 8, "PING carries 8 bytes")
        srv.wait_for(lambda: first.eof, PING_TIMEOUT + slack(5),
                     "the proxy dropping the connection")
        self.assertGreaterEqual(first.eof - ping, PING_TIMEOUT - 1.0, first)
        self.assertLessEqual(first.eof - ping, PING_TIMEOUT + 5 * SLOW,
                             first)
        self.assertEqual(len(first.times("PING")), 1,
                         "one PING in flight at a time: %r" % first)
        self.wait_log(p, r"xds:", r"keepalive PING not acknowledged")
        # the table stays while the proxy is away and after it is back
        self.assert_answers(p)
        self.assertEqual(p.ready_status(), 200)
        second = srv.wait_peers(2, slack(BACKOFF_MIN) + 2 * SLOW)[1]
        self.assertGreaterEqual(second.accepted - first.eof, 0.4)
        srv.wait_for(lambda: second.requests, slack(5),
                     "the subscription on the new connection")
        req = second.requests[0][1]
        self.assertEqual((req.version_info, req.response_nonce), ("", ""))
        harness.wait_until(lambda: p.metric("dnsproxy_xds_connected") == 1,
                           slack(2), what="connected again")
        self.assert_answers(p)
        self.assertEqual(p.ready_status(), 200)
        self.assertEqual(p.metric("dnsproxy_xds_acks_total"), 1)

    def test_acked_ping_keeps_the_connection(self):
        srv, p = self.live, self.p_live
        first = self.wait_acked(srv)
        ready = first.times("SETTINGS")[0]
        # past the first PING and its 10 s deadline, with margin
        deadline = ready + KEEPALIVE + PING_TIMEOUT + 3.0
        while time.monotonic() < deadline:
            self.assertEqual(p.metric("dnsproxy_xds_connected"), 1,
                             p.stderr()[-2000:])
            time.sleep(0.5)
        self.assertTrue(first.times("PING"), first)
        self.assertIsNone(first.eof, first)
        self.assertEqual(len(srv.peers), 1, srv.peers)
        self.assertFalse(self.log_lines(p, r"keepalive"), p.stderr())
        self.assert_answers(p)


if __name__ == "__main__":
    unittest.main(verbosity=2)
