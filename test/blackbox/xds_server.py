"""A control plane for the black-box tests of NDS over xDS (SPEC §5).

ControlPlane serves Envoy's Aggregated Discovery Service
(/envoy.service.discovery.v3.AggregatedDiscoveryService/
StreamAggregatedResources, SotW) with grpcio, on 127.0.0.1:<free port>, in
plaintext (the 15010 style) or TLS (15012 style).  It records every stream
(its request headers) and every DiscoveryRequest, and pushes what a test
asks for: NameTables, garbage, empty responses, other type URLs, raw bytes.

    cp = xds_server.ControlPlane()           # or tls=xds_server.Certs()
    cp.start()
    proxy = harness.Proxy(table=None,
                          args=["--xds", cp.target, "--xds-plaintext"])
    proxy.start()
    first = cp.wait_for_subscription()      # the stream's first request
    nonce = cp.push({"a.example": {"ips": ["10.0.0.1"]}}, version="v1")
    ack = cp.wait_for_ack(nonce)            # a Request (ack.msg, .stream)

The messages come from the project's own field-compatible protos
(nds/proto/), compiled with protoc into a temporary directory at import
(no grpc_tools: the method is registered with a generic handler).

Certs (openssl) makes a test CA and an istiod certificate signed by it,
SAN DNS:istiod.istio-system.svc and IP:127.0.0.1 (PLATFORM.md), plus other
CAs and certificates for the failure tests.  SniProbe is a bare TLS server
that records the SNI and ALPN a client sends, then hangs up.
"""

import atexit
import itertools
import os
import queue
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

# The TLS failure tests make grpc's core log every failed handshake on
# stderr; those are expected.  GRPC_VERBOSITY=ERROR (or DEBUG) shows them.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import grpc  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PROTO_DIR = os.path.join(ROOT, "nds", "proto")
PROTOS = ["envoy/service/discovery/v3/discovery.proto",
          "envoy/config/core/v3/base.proto",
          "google/rpc/status.proto",
          "istio/networking/nds/v1/nds.proto"]

NDS_TYPE = "type.googleapis.com/istio.networking.nds.v1.NameTable"
OTHER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
METHOD = "StreamAggregatedResources"
ADS_PATH = "/%s/%s" % (SERVICE, METHOD)
INTERNAL = 13   # google.rpc.Code INTERNAL: the NACK code (SPEC §5)


def _compile_protos():
    out = tempfile.mkdtemp(prefix="dnsproxy-xds-pb-")
    atexit.register(shutil.rmtree, out, True)
    subprocess.run(["protoc", "-I/usr/include", "-I" + PROTO_DIR,
                    "--python_out=" + out] + PROTOS, check=True)
    sys.path.append(out)
    # google.rpc lives in `out`, google.protobuf in dist-packages: both are
    # portions of the `google` namespace package (Debian ships no
    # google/__init__.py), but make sure of it if one was imported before.
    import google
    gpath = getattr(google, "__path__", None)
    if gpath is not None and os.path.join(out, "google") not in list(gpath):
        try:
            gpath.append(os.path.join(out, "google"))
        except AttributeError:   # a _NamespacePath recomputes itself
            pass
    return out


PB_DIR = _compile_protos()

from envoy.service.discovery.v3 import discovery_pb2  # noqa: E402
from istio.networking.nds.v1 import nds_pb2  # noqa: E402
from google.protobuf import any_pb2  # noqa: E402
from google.protobuf import json_format  # noqa: E402

DiscoveryRequest = discovery_pb2.DiscoveryRequest
DiscoveryResponse = discovery_pb2.DiscoveryResponse
NameTable = nds_pb2.NameTable


# ---------------------------------------------------------------------------
# Tables


def name_table(table):
    """A NameTable message from the JSON form: {"host": {"ips": [...],
    "registry": ..., "shortname": ..., "namespace": ..., "altHosts": [...]}}
    (a {"table": {...}} wrapper is accepted too).  A NameTable passes
    through."""
    if isinstance(table, NameTable):
        return table
    if isinstance(table.get("table"), dict) and "ips" not in table["table"]:
        table = table["table"]
    nt = NameTable()
    for host, info in table.items():
        e = nt.table[host]
        e.ips.extend(info.get("ips") or [])
        e.registry = info.get("registry") or ""
        e.shortname = info.get("shortname") or ""
        e.namespace = info.get("namespace") or ""
        e.alt_hosts.extend(info.get("altHosts") or info.get("alt_hosts")
                           or [])
    return nt


def table_bytes(table):
    """The NameTable (dict, NameTable or bytes) in protobuf binary form."""
    if isinstance(table, (bytes, bytearray)):
        return bytes(table)
    return name_table(table).SerializeToString()


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def padded(data, size, field=15):
    """data (a serialized message) followed by one unknown length-delimited
    field (number `field`) so that the result is at least size bytes: still
    a valid message for a decoder that skips unknown fields."""
    n = max(0, size - len(data) - 1 - 5)
    tag = _varint((field << 3) | 2)
    return data + tag + _varint(n) + b"\0" * n


def table_dict(nt):
    """{host: {"ips": [...], "registry": ..., ...}} of a NameTable (for
    comparisons; empty fields left out)."""
    return {k: json_format.MessageToDict(v) for k, v in nt.table.items()}


def parse_table(data):
    """NameTable from protobuf bytes (raises DecodeError)."""
    nt = NameTable()
    nt.ParseFromString(data)
    return nt


# ---------------------------------------------------------------------------
# The server


class Stream:
    """One ADS stream as the control plane saw it.

    headers: the request metadata, {lower-case key: value} (last wins);
    metadata: the same as a list of (key, value); requests: the
    DiscoveryRequests received on it, in order; active: not ended yet."""

    def __init__(self, sid, metadata, peer):
        self.id = sid
        self.metadata = list(metadata)
        self.headers = {k.lower(): v for k, v in self.metadata}
        self.peer = peer
        self.requests = []
        self.queue = queue.Queue()
        self.active = True
        self.opened = time.monotonic()
        self.closed = None
        self.end_reason = None

    def __repr__(self):
        return "Stream(%d, %s, %d requests, %s)" % (
            self.id, self.peer, len(self.requests),
            "active" if self.active else "ended: %s" % self.end_reason)


class Request:
    """A recorded DiscoveryRequest: msg (the message), stream (Stream),
    index on the stream (0 = the first), time (monotonic)."""

    def __init__(self, msg, stream, index):
        self.msg, self.stream, self.index = msg, stream, index
        self.time = time.monotonic()

    def __getattr__(self, name):   # req.version_info, req.node, ...
        return getattr(self.msg, name)

    @property
    def is_nack(self):
        return self.msg.HasField("error_detail")

    def metadata(self):
        """The node metadata Struct as a dict."""
        return json_format.MessageToDict(self.msg.node.metadata)

    def __repr__(self):
        ed = ""
        if self.is_nack:
            ed = " error_detail={code=%d, message=%r}" % (
                self.msg.error_detail.code, self.msg.error_detail.message)
        return "Request(stream %d #%d, version=%r, nonce=%r, type=%r%s%s)" % (
            self.stream.id, self.index, self.msg.version_info,
            self.msg.response_nonce, self.msg.type_url, ed,
            ", node=%r" % self.msg.node.id if self.msg.HasField("node")
            else "")


class _Abort:
    def __init__(self, code, details):
        self.code, self.details = code, details


_END = object()


def _serialize(msg):
    """DiscoveryResponse or raw bytes (sent as they are)."""
    if isinstance(msg, (bytes, bytearray, memoryview)):
        return bytes(msg)
    return msg.SerializeToString()


class ControlPlane:
    """An ADS server for one test (class).

    tls: None for plaintext (h2c), else a Certs (its istiod key and
    certificate are served) or a (key_pem, cert_pem) pair of bytes.
    push_on_connect: after the first request of each new stream, send it the
    current table (the last pushed or set_table()), as istiod does.
    host: "127.0.0.1" (default), "::1", or "localhost" (both when the
    machine has IPv6 loopback).  port: default a free one; stays the same
    over stop()/restart()."""

    def __init__(self, tls=None, push_on_connect=True, host="127.0.0.1",
                 port=None, max_send=100 << 20):
        import harness   # free_port() shared with the proxies' ports
        self.tls = tls
        self.push_on_connect = push_on_connect
        self.host = host
        self.port = port or harness.free_port(v6=(host == "::1"))
        self.max_send = max_send
        self.server = None
        self._cond = threading.Condition()
        self.streams = []
        self.requests = []
        self.pushes = []      # (nonce, version, kind, [stream ids])
        self._current = None  # (version, Any) for push_on_connect
        self._nonce = itertools.count(1)
        self._sid = itertools.count(1)
        self._version = itertools.count(1)

    # -- lifecycle --

    @property
    def target(self):
        """The --xds argument for this server."""
        if self.host == "::1":
            return "[::1]:%d" % self.port
        return "%s:%d" % (self.host, self.port)

    def _credentials(self):
        if self.tls is None:
            return None
        if isinstance(self.tls, Certs):
            key, cert = self.tls.server_pair()
        else:
            key, cert = self.tls
        return grpc.ssl_server_credentials([(key, cert)])

    def start(self):
        handler = grpc.method_handlers_generic_handler(SERVICE, {
            METHOD: grpc.stream_stream_rpc_method_handler(
                self._handle,
                request_deserializer=DiscoveryRequest.FromString,
                response_serializer=_serialize)})
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=32),
            handlers=[handler],
            options=[("grpc.max_send_message_length", self.max_send),
                     ("grpc.max_receive_message_length", 16 << 20),
                     ("grpc.so_reuseport", 1),
                     # istiod allows client keepalive pings every 15 s
                     ("grpc.http2.min_recv_ping_interval_without_data_ms",
                      15000),
                     ("grpc.keepalive_permit_without_calls", 1)])
        creds = self._credentials()
        hosts = [self.host]
        if self.host == "localhost":
            import harness
            hosts = ["127.0.0.1"] + (["::1"] if harness.have_ipv6_loopback()
                                     else [])
        for h in hosts:
            addr = ("[%s]:%d" if ":" in h else "%s:%d") % (h, self.port)
            if creds is None:
                bound = self.server.add_insecure_port(addr)
            else:
                bound = self.server.add_secure_port(addr, creds)
            if bound != self.port:
                raise RuntimeError("control plane could not bind %s" % addr)
        self.server.start()
        return self

    def stop(self, grace=None):
        """Stops the server: every stream ends (cancelled), the port
        closes."""
        if self.server is None:
            return
        self.server.stop(grace).wait(10)
        self.server = None
        with self._cond:
            for st in self.streams:
                if st.active:
                    st.queue.put(_END)
            self._cond.notify_all()

    def restart(self):
        """stop() if running, then start() on the same port (recorded
        streams and requests are kept)."""
        self.stop()
        deadline = time.monotonic() + 5
        while True:
            try:
                return self.start()
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    close = stop

    # -- the RPC --

    def _handle(self, request_iterator, context):
        with self._cond:
            st = Stream(next(self._sid), context.invocation_metadata(),
                        context.peer())
            self.streams.append(st)
            self._cond.notify_all()

        def done():
            with self._cond:
                st.active = False
                st.closed = time.monotonic()
                self._cond.notify_all()
            st.queue.put(_END)
        context.add_callback(done)

        def reader():
            try:
                for req in request_iterator:
                    with self._cond:
                        r = Request(req, st, len(st.requests))
                        st.requests.append(r)
                        self.requests.append(r)
                        first = r.index == 0
                        cur = self._current
                        self._cond.notify_all()
                    if first and self.push_on_connect and cur is not None:
                        self._send(st, cur[0], [cur[1]], NDS_TYPE,
                                   "connect")
                st.end_reason = "client closed"
            except Exception as e:  # noqa: BLE001 - cancelled, reset...
                st.end_reason = "error: %s" % e
            finally:
                st.queue.put(_END)
        threading.Thread(target=reader, daemon=True).start()

        while True:
            item = st.queue.get()
            if item is _END:
                return
            if isinstance(item, _Abort):
                context.abort(item.code, item.details)
            yield item

    def _send(self, st, version, resources, type_url, kind, nonce=None):
        nonce = nonce or "n%d" % next(self._nonce)
        resp = DiscoveryResponse(version_info=version, type_url=type_url,
                                 nonce=nonce)
        resp.resources.extend(resources)
        with self._cond:
            self.pushes.append((nonce, version, kind, [st.id]))
        st.queue.put(resp)
        return nonce

    # -- pushing --

    def active_streams(self):
        with self._cond:
            return [s for s in self.streams if s.active]

    def _push(self, make, kind, streams=None):
        """Sends make(nonce) to the given (default: every active) stream;
        returns the nonce."""
        nonce = "n%d" % next(self._nonce)
        msg = make(nonce)
        with self._cond:
            targets = streams if streams is not None else \
                [s for s in self.streams if s.active]
            self.pushes.append((nonce, getattr(msg, "version_info", None),
                                kind, [s.id for s in targets]))
        for s in targets:
            s.queue.put(msg)
        return nonce

    def next_version(self):
        return "v%d" % next(self._version)

    def set_table(self, table, version=None):
        """Makes table the current one (pushed on connect) without pushing
        it now; returns the version."""
        version = version or self.next_version()
        a = any_pb2.Any(type_url=NDS_TYPE, value=table_bytes(table))
        with self._cond:
            self._current = (version, a)
        return version

    def push(self, table, version=None, streams=None):
        """Pushes a NameTable (dict, NameTable or its bytes) to every active
        stream and makes it current; returns the nonce."""
        version = version or self.next_version()
        a = any_pb2.Any(type_url=NDS_TYPE, value=table_bytes(table))
        with self._cond:
            self._current = (version, a)
        return self.push_any([a], version, streams=streams, kind="table")

    def push_any(self, resources, version=None, type_url=NDS_TYPE,
                 streams=None, kind="any"):
        """A DiscoveryResponse with these Any resources (current table not
        changed); returns the nonce."""
        version = version or self.next_version()

        def make(nonce):
            r = DiscoveryResponse(version_info=version, type_url=type_url,
                                  nonce=nonce)
            r.resources.extend(resources)
            return r
        return self._push(make, kind, streams)

    def push_raw(self, value, version=None, type_url=NDS_TYPE,
                 streams=None):
        """A response whose resources[0] is Any{NDS, value} with value
        arbitrary bytes (garbage for the NameTable decoder)."""
        return self.push_any([any_pb2.Any(type_url=NDS_TYPE, value=value)],
                             version, type_url, streams, kind="raw")

    def push_empty(self, version=None, streams=None):
        """An NDS response without resources (must get no ACK)."""
        return self.push_any([], version, streams=streams, kind="empty")

    def push_other_type(self, version=None, streams=None):
        """A response of another type URL (Cluster), to be ignored."""
        return self.push_any([any_pb2.Any(type_url=OTHER_TYPE,
                                          value=b"\x0a\x03foo")],
                             version, OTHER_TYPE, streams, kind="other")

    def push_message(self, data, streams=None):
        """Sends data (bytes) as the whole gRPC message, unchanged (e.g.
        something that is no DiscoveryResponse at all)."""
        return self._push(lambda nonce: bytes(data), "message", streams)

    def close_streams(self, code=grpc.StatusCode.UNAVAILABLE,
                      details="test control plane closed the stream"):
        """Ends every active stream with a gRPC error status (the client
        must reconnect); returns how many were closed."""
        sts = self.active_streams()
        for s in sts:
            s.queue.put(_Abort(code, details))
        return len(sts)

    # -- waiting --

    def wait_for(self, pred, timeout=10.0, what="condition"):
        """Waits until pred() (called under the lock) is truthy; returns
        its value or raises AssertionError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                v = pred()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "control plane: no %s within %.1f s; streams %r, "
                        "requests %r" % (what, timeout, self.streams,
                                         self.requests[-10:]))
                self._cond.wait(min(left, 0.5))

    def wait_for_stream(self, n=1, timeout=10.0):
        """Waits until n streams have been opened in total (counting the
        ended ones); returns the n-th."""
        return self.wait_for(lambda: len(self.streams) >= n and
                             self.streams[n - 1], timeout,
                             "stream #%d" % n)

    def wait_for_request(self, pred, timeout=10.0, after=0,
                         what="matching request"):
        """The first recorded Request r (from index `after` of
        self.requests on) with pred(r); waits for it."""
        def find():
            for r in self.requests[after:]:
                if pred(r):
                    return r
            return None
        return self.wait_for(find, timeout, what)

    def wait_for_subscription(self, stream_n=1, timeout=10.0):
        """The first request of the stream_n-th stream (waits for it)."""
        st = self.wait_for_stream(stream_n, timeout)
        self.wait_for(lambda: st.requests, timeout,
                      "first request on stream %d" % st.id)
        return st.requests[0]

    def wait_for_ack(self, nonce, timeout=10.0):
        """The request echoing nonce without error_detail."""
        return self.wait_for_request(
            lambda r: r.response_nonce == nonce and not r.is_nack, timeout,
            what="ACK of %s" % nonce)

    def wait_for_nack(self, nonce, timeout=10.0):
        """The request echoing nonce with error_detail."""
        return self.wait_for_request(
            lambda r: r.response_nonce == nonce and r.is_nack, timeout,
            what="NACK of %s" % nonce)

    def wait_for_version_ack(self, version, timeout=10.0, after=0):
        """An ACK (on any stream) accepting version_info version."""
        return self.wait_for_request(
            lambda r: r.version_info == version and r.response_nonce and
            not r.is_nack, timeout, after, what="ACK of version %s" % version)

    def replies_to(self, nonce):
        """Every recorded request echoing nonce."""
        with self._cond:
            return [r for r in self.requests if r.response_nonce == nonce]


# ---------------------------------------------------------------------------
# Certificates


def _openssl(*args, cwd=None):
    subprocess.run(["openssl"] + list(args), check=True, cwd=cwd,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Certs:
    """Test PKI in a directory: a CA (ca.pem, what the proxy trusts) and
    an istiod certificate it signed (key.pem, cert.pem) with SAN
    DNS:istiod.istio-system.svc and IP:127.0.0.1.  other_ca() and
    server_cert() make more for the failure tests.  All EC P-256, 1 day."""

    ISTIOD_SANS = ("DNS:istiod.istio-system.svc", "IP:127.0.0.1")

    def __init__(self, directory=None, sans=ISTIOD_SANS):
        self.dir = directory or tempfile.mkdtemp(prefix="dnsproxy-xds-pki-")
        self._own_dir = directory is None
        os.makedirs(self.dir, exist_ok=True)
        self.ca_key, self.ca = self.make_ca("ca", "dnsproxy test CA")
        self.key, self.cert = self.server_cert("istiod", sans)

    def path(self, name):
        return os.path.join(self.dir, name)

    def make_ca(self, name, cn):
        """A self-signed CA; returns (key path, cert path)."""
        key, cert = self.path(name + ".key"), self.path(name + ".pem")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                 "-subj", "/O=dnsproxy test/CN=" + cn,
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-keyout", key, "-out", cert)
        return key, cert

    def other_ca(self, name="other-ca"):
        """Path of an unrelated CA certificate (the wrong root)."""
        return self.make_ca(name, "unrelated CA " + name)[1]

    def server_cert(self, name, sans, ca=None):
        """A server certificate signed by ca ((key, cert) paths; default
        the test CA) with the given SANs; returns (key path, cert path)."""
        ca_key, ca_cert = ca or (self.ca_key, self.ca)
        key, csr, cert = (self.path(name + ".key"), self.path(name + ".csr"),
                          self.path(name + ".pem"))
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectAltName=%s\n" % ",".join(sans))
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-subj",
                 "/O=dnsproxy test/CN=" + name, "-keyout", key, "-out", csr)
        _openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
                 "-CAcreateserial", "-days", "1", "-sha256",
                 "-extfile", ext, "-out", cert)
        return key, cert

    def server_pair(self, key=None, cert=None):
        """(key bytes, cert bytes) for grpc.ssl_server_credentials."""
        with open(key or self.key, "rb") as k, open(cert or self.cert,
                                                    "rb") as c:
            return k.read(), c.read()

    def close(self):
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


class SniProbe:
    """A bare TLS server (Python ssl) that records every ClientHello's SNI
    (names: None when the client sent none) and, for each completed
    handshake, a dict with server_name, alpn (the protocol chosen from the
    client's offer; only h2 is accepted) and version.  It then reads the
    first bytes (the HTTP/2 preface, kept as "data") and hangs up, so a
    client keeps reconnecting.  host "localhost" listens on 127.0.0.1 and
    ::1."""

    def __init__(self, certs, host="127.0.0.1", key=None, cert=None):
        import harness
        self.port = harness.free_port(v6=(host != "127.0.0.1"))
        self.target = ("[%s]:%d" if host == "::1" else "%s:%d") % (
            host, self.port)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert or certs.cert, key or certs.key)
        self.ctx.set_alpn_protocols(["h2"])
        self.names = []
        self.handshakes = []
        self.errors = []
        self._cond = threading.Condition()

        def sni(sslobj, name, ctx):
            with self._cond:
                self.names.append(name)
                self._cond.notify_all()
            return None
        self.ctx.sni_callback = sni
        hosts = [host]
        if host == "localhost":
            hosts = ["127.0.0.1"] + (["::1"] if harness.have_ipv6_loopback()
                                     else [])
        self.socks = []
        for h in hosts:
            fam = socket.AF_INET6 if ":" in h else socket.AF_INET
            sk = socket.socket(fam, socket.SOCK_STREAM)
            sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fam == socket.AF_INET6:
                sk.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sk.bind((h, self.port))
            sk.listen(16)
            sk.settimeout(0.2)
            self.socks.append(sk)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve, args=(sk,),
                                          daemon=True) for sk in self.socks]
        for t in self._threads:
            t.start()

    def _serve(self, sk):
        while not self._stop.is_set():
            try:
                c, _ = sk.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._conn, args=(c,),
                             daemon=True).start()

    def _conn(self, c):
        c.settimeout(5)
        try:
            s = self.ctx.wrap_socket(c, server_side=True)
        except (ssl.SSLError, OSError) as e:
            with self._cond:
                self.errors.append(repr(e))
                self._cond.notify_all()
            c.close()
            return
        try:
            with self._cond:
                hs = {"server_name": self.names[-1] if self.names else None,
                      "alpn": s.selected_alpn_protocol(),
                      "version": s.version()}
            s.settimeout(1.0)
            data = b""
            try:
                while len(data) < 24:
                    chunk = s.recv(24 - len(data))
                    if not chunk:
                        break
                    data += chunk
            except (OSError, ssl.SSLError):
                pass
            hs["data"] = data
            with self._cond:
                self.handshakes.append(hs)
                self._cond.notify_all()
        finally:
            s.close()

    def _wait(self, what, timeout):
        deadline = time.monotonic() + timeout
        with self._cond:
            while not what():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "TLS probe: nothing within %.1f s (SNIs %r, "
                        "handshakes %r, errors %r)" % (
                            timeout, self.names, self.handshakes,
                            self.errors))
                self._cond.wait(left)
            return what()

    def wait_sni(self, timeout=10.0):
        """[the SNI of the first ClientHello] (a list, so that None is a
        value)."""
        return self._wait(lambda: self.names[:1], timeout)

    def wait_handshake(self, timeout=10.0):
        """The first completed handshake."""
        return self._wait(lambda: self.handshakes[:1], timeout)[0]

    def close(self):
        self._stop.set()
        for t in self._threads:
            t.join(5)
        for sk in self.socks:
            sk.close()


# ---------------------------------------------------------------------------
# A minimal ADS client, for self-testing this module without dnsproxy.


class AdsClient:
    """grpcio client: requests go through send(), responses arrive in
    self.responses (queue)."""

    def __init__(self, target, root_cert=None, sni=None, metadata=()):
        if root_cert is None:
            self.channel = grpc.insecure_channel(target)
        else:
            with open(root_cert, "rb") as f:
                creds = grpc.ssl_channel_credentials(f.read())
            opts = []
            if sni:
                opts.append(("grpc.ssl_target_name_override", sni))
            self.channel = grpc.secure_channel(target, creds, opts)
        self._q = queue.Queue()
        call = self.channel.stream_stream(
            ADS_PATH, request_serializer=DiscoveryRequest.SerializeToString,
            response_deserializer=lambda b: b)
        self.call = call(iter(self._q.get, None), metadata=list(metadata))
        self.responses = queue.Queue()
        self.error = None

        def read():
            try:
                for r in self.call:
                    self.responses.put(r)
            except grpc.RpcError as e:
                self.error = e
                self.responses.put(e)
        self._t = threading.Thread(target=read, daemon=True)
        self._t.start()

    def send(self, req):
        self._q.put(req)

    def recv(self, timeout=5.0):
        """The next response: DiscoveryResponse, raw bytes if it does not
        parse, or the grpc.RpcError that ended the call."""
        x = self.responses.get(timeout=timeout)
        if isinstance(x, bytes):
            try:
                return DiscoveryResponse.FromString(x)
            except Exception:  # noqa: BLE001
                return x
        return x

    def close(self):
        self._q.put(None)
        self.call.cancel()
        self.channel.close()
