#!/usr/bin/python3
"""Writes the seed corpora of fuzz_ads and fuzz_h2.

fuzz_ads seeds are one framing byte (bit 7: 64 KiB message limit instead of
4 KiB; bits 0-6: chunk size, 0 = all at once) followed by the gRPC bytes of
a DiscoveryResponse stream, as the ADS stream's DATA frames carry them.

fuzz_h2 seeds are a chunk-size byte (0 = all at once), a flags byte (see
fuzz_h2.c) and the bytes an HTTP/2 server sends on the connection: its
SETTINGS preface, then frames for the ADS stream (id 1).  Frames are built
by hand; header blocks use HPACK literals without Huffman coding.

With --capture, also records what a real grpcio server sends (Huffman
coded headers, its own SETTINGS, WINDOW_UPDATE and PING) into the
fuzz_h2/grpcio_* seeds.  Those bytes are not deterministic (PING payloads),
so they are only rewritten on request; everything else comes out the same
on every run.  Files named min_* are minimized finds of fuzzing runs, added
by hand and left alone here.  Run with /usr/bin/python3 (protoc's Python output needs
Debian's protobuf): /usr/bin/python3 test/fuzz/make_xds_corpus.py
"""
import os
import socket
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ADS_DIR = os.path.join(HERE, "corpus", "fuzz_ads")
H2_DIR = os.path.join(HERE, "corpus", "fuzz_h2")

# The test control plane compiles nds/proto on import; its constants and
# generated modules are the ones the corpus is built from.
sys.path.insert(0, os.path.join(ROOT, "test", "blackbox"))
from xds_server import ADS_PATH, NDS_TYPE, OTHER_TYPE  # noqa: E402,F401
from envoy.service.discovery.v3 import discovery_pb2  # noqa: E402
from google.protobuf import any_pb2  # noqa: E402
from istio.networking.nds.v1 import nds_pb2  # noqa: E402


# ---- NameTables and DiscoveryResponses ------------------------------------

def table(entries):
    """entries: {host: dict(ips=[...], registry=..., shortname=...,
    namespace=..., alt_hosts=[...])}"""
    t = nds_pb2.NameTable()
    for host, info in entries.items():
        ni = t.table[host]
        ni.ips.extend(info.get("ips", []))
        ni.registry = info.get("registry", "")
        ni.shortname = info.get("shortname", "")
        ni.namespace = info.get("namespace", "")
        ni.alt_hosts.extend(info.get("alt_hosts", []))
    return t.SerializeToString(deterministic=True)


SMALL = {
    "productpage.ns1.svc.cluster.local": dict(
        ips=["10.96.0.10"], registry="Kubernetes", shortname="productpage",
        namespace="ns1"),
    "reviews.ns2.svc.cluster.local": dict(
        ips=["10.96.0.11", "fd00::11"], registry="Kubernetes",
        shortname="reviews", namespace="ns2"),
    "api.example.com": dict(ips=["240.240.0.1", "2001:2::1"],
                            registry="External"),
}
WILDCARD = {
    "*.wild.example.com": dict(ips=["240.240.0.2"], registry="External"),
    "*.ns1.svc.cluster.local": dict(ips=["240.240.0.3"],
                                    registry="External"),
    "exact.wild.example.com": dict(ips=["240.240.0.4"],
                                   registry="External"),
}
HEADLESS = {
    "db.ns1.svc.cluster.local": dict(
        ips=["10.1.0.5", "10.1.0.6", "10.1.0.7"], registry="Kubernetes",
        shortname="db", namespace="ns1"),
    "db-0.db.ns1.svc.cluster.local": dict(
        ips=["10.1.0.5"], registry="Kubernetes", shortname="db-0.db",
        namespace="ns1"),
    "db-1.db.ns1.svc.cluster.local": dict(
        ips=["10.1.0.6"], registry="Kubernetes", shortname="db-1.db",
        namespace="ns1"),
    "legacy.ns1.svc.cluster.local": dict(
        ips=["10.96.0.20"], registry="Kubernetes", shortname="legacy",
        namespace="ns1", alt_hosts=["legacy.ns1", "legacy.old.example"]),
}


def big_table(n):
    return {"svc%03d.ns%d.svc.cluster.local" % (i, i % 3): dict(
        ips=["10.%d.%d.%d" % (i % 7, i // 256, i % 256)],
        registry="Kubernetes", shortname="svc%03d" % i,
        namespace="ns%d" % (i % 3)) for i in range(n)}


def response(resources=(), type_url=NDS_TYPE, version="v1", nonce="n1",
             canary=False):
    r = discovery_pb2.DiscoveryResponse(version_info=version,
                                        type_url=type_url, nonce=nonce,
                                        canary=canary)
    for res in resources:
        if isinstance(res, bytes):
            res = any_pb2.Any(type_url=NDS_TYPE, value=res)
        r.resources.append(res)
    return r.SerializeToString(deterministic=True)


def pbf(num, wt, payload):
    """A raw protobuf field; payload: the value bytes (a varint's encoding
    for wire type 0)."""
    if wt == 2:
        payload = varint(len(payload)) + payload
    return varint(num << 3 | wt) + payload


def varint(v):
    out = b""
    while v >= 0x80:
        out += bytes([v & 0x7f | 0x80])
        v >>= 7
    return out + bytes([v])


def grpc(msg, flag=0, length=None):
    return struct.pack(">BI", flag, len(msg) if length is None else length) \
        + msg


def ads(stream, chunk=0, big=False):
    return bytes([(0x80 if big else 0) | chunk]) + stream


def ads_seeds():
    s = {}
    small = response([table(SMALL)])
    s["ack_small"] = ads(grpc(small))
    s["ack_small_chunk1"] = ads(grpc(small), chunk=1)
    s["ack_small_chunk7"] = ads(grpc(small), chunk=7)
    s["ack_wildcard"] = ads(grpc(response([table(WILDCARD)], version="w")))
    s["ack_headless_alt"] = ads(grpc(response([table(HEADLESS)],
                                              version="2024-05-01T10:00:00Z/7",
                                              nonce="3f2c9b1e")))
    s["ack_empty_table"] = ads(grpc(response([b""])))
    s["ack_untyped_any"] = ads(grpc(response(
        [any_pb2.Any(type_url="", value=table(SMALL))])))
    s["ignore_no_resources"] = ads(grpc(response([], version="v0")))
    s["ignore_other_type"] = ads(grpc(response(
        [any_pb2.Any(type_url=OTHER_TYPE, value=b"\x0a\x03abc")],
        type_url=OTHER_TYPE)))
    s["ignore_empty_message"] = ads(grpc(b""))
    s["nack_any_wrong_type"] = ads(grpc(response(
        [any_pb2.Any(type_url=OTHER_TYPE, value=table(SMALL))])))
    s["nack_garbage_value"] = ads(grpc(response(
        [b"\x0a\x05\x0a\x03a\x00b" + b"\xff" * 6])))
    s["ack_invalid_ip"] = ads(grpc(response([table(
        {"bad.example.com": dict(ips=["10.0.0.300"], registry="External")})])))
    s["nack_not_protobuf"] = ads(grpc(b"\xff\xff\xff\xff\xff"))
    # Unknown fields everywhere: a varint, fixed64 and fixed32 at the top,
    # canary, an unknown field in the Any, in an entry and in a NameInfo.
    info = pbf(1, 2, b"10.0.0.9") + pbf(2, 2, b"External") + \
        pbf(103, 0, b"\x01") + pbf(104, 5, b"\0\0\0\0")
    nt = table(SMALL) + pbf(1, 2, pbf(1, 2, b"x.example.com") +
                            pbf(2, 2, info) + pbf(7, 1, b"\0" * 8))
    a = any_pb2.Any(type_url=NDS_TYPE, value=nt).SerializeToString() + \
        pbf(9, 2, b"extra")
    unk = response([], canary=True) + pbf(2, 2, a) + pbf(103, 0, b"\x2a") + \
        pbf(6, 1, bytes(range(8))) + pbf(7, 5, b"\1\2\3\4")
    s["unknown_fields"] = ads(grpc(unk))
    s["unknown_fields_in_table"] = ads(grpc(response(
        [table(SMALL) + b"\x10\x01\x1a\x02zz"])))
    # Several messages on one stream: ACK, NACK, IGNORE, ACK again.
    multi = grpc(small) + grpc(response([b"\x0a\x02\x12\x00"], version="v2",
                                        nonce="n2")) \
        + grpc(response([], version="v3", nonce="n3")) \
        + grpc(response([table(WILDCARD)], version="v4", nonce="n4"))
    s["multi"] = ads(multi)
    s["multi_chunk13"] = ads(multi, chunk=13)
    # Over 4 KiB: skimmed under the small limit, decoded under 64 KiB.
    big = response([table(big_table(80))], version="big-v9", nonce="big-n9")
    s["oversize_4k"] = ads(grpc(big) + grpc(small), chunk=100)
    s["big_64k"] = ads(grpc(big), big=True)
    # Announces 4 GiB; the stream ends long before.
    s["oversize_header_only"] = ads(grpc(response([], version="huge",
                                                  nonce="h"),
                                         length=0xffffffff))
    s["oversize_long_fields"] = ads(grpc(response(
        [table(SMALL)], version="V" * 300, nonce="N" * 4000,
        type_url=NDS_TYPE)), chunk=64)
    s["compressed_flag"] = ads(grpc(small, flag=1))
    return s


# ---- HTTP/2 frames -----------------------------------------------------------

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED = 0x1, 0x1, 0x4, 0x8


def frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + \
        struct.pack(">BBI", ftype, flags, stream) + payload


def settings(*pairs):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v)
                                          for k, v in pairs))


def hpack_int(value, prefix, first):
    """An HPACK integer with a prefix-bit prefix; first: the high bits."""
    top = (1 << prefix) - 1
    if value < top:
        return bytes([first | value])
    out = [first | top]
    value -= top
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    return bytes(out + [value])


def hpack_str(s):
    b = s.encode()
    return hpack_int(len(b), 7, 0) + b


def literal(name, value, indexing=False):
    """Literal with a new name: without indexing, or added to the table."""
    return (b"\x40" if indexing else b"\x00") + hpack_str(name) + \
        hpack_str(value)


def block(headers):
    return b"".join(literal(n, v) for n, v in headers)


SERVER_SETTINGS = settings((3, 100), (4, 65535), (5, 16384))
SETTINGS_ACK = frame(SETTINGS, ACK, 0, b"")
RESP_HEADERS = frame(HEADERS, END_HEADERS, 1, block(
    [(":status", "200"), ("content-type", "application/grpc")]))
OK_TRAILERS = frame(HEADERS, END_HEADERS | END_STREAM, 1, block(
    [("grpc-status", "0"), ("grpc-message", "")]))


def data(payload, stream=1, flags=0):
    return frame(DATA, flags, stream, payload)


def h2(stream, chunk=0, flags=0):
    return bytes([chunk, flags]) + stream


def h2_seeds():
    s = {}
    msg = grpc(response([table(SMALL)]))
    msg2 = grpc(response([table(WILDCARD)], version="v2", nonce="n2"))
    hello = SERVER_SETTINGS + SETTINGS_ACK
    s["preface_only"] = h2(SERVER_SETTINGS)
    s["preface_empty"] = h2(frame(SETTINGS, 0, 0, b""))
    s["handshake"] = h2(hello)
    s["push_ack"] = h2(hello + RESP_HEADERS + data(msg) +
                       frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 4096)))
    s["push_ack_chunk5"] = h2(hello + RESP_HEADERS + data(msg), chunk=5)
    s["stream_ok_close"] = h2(hello + RESP_HEADERS + data(msg) + data(msg2)
                              + OK_TRAILERS)
    # One message cut over three DATA frames, the middle one padded.
    half = len(msg) // 2
    s["data_split_padded"] = h2(
        hello + RESP_HEADERS + data(msg[:3]) +
        data(bytes([4]) + msg[3:half] + b"\0" * 4, flags=PADDED) +
        data(msg[half:]))
    s["trailers_only_unavailable"] = h2(hello + frame(
        HEADERS, END_HEADERS | END_STREAM, 1, block(
            [(":status", "200"), ("content-type", "application/grpc"),
             ("grpc-status", "14"),
             ("grpc-message", "upstream%20connect%20error")])))
    s["trailers_unauthenticated"] = h2(
        hello + RESP_HEADERS + frame(HEADERS, END_HEADERS | END_STREAM, 1,
                                     block([("grpc-status", "16"),
                                            ("grpc-message",
                                             "token\x01expired")])))
    # :status 200 from the static table (index 8), a table size update.
    s["http_503"] = h2(hello + frame(HEADERS, END_HEADERS | END_STREAM, 1,
                                     b"\x20" + literal(":status", "503")))
    s["indexed_status"] = h2(hello + frame(
        HEADERS, END_HEADERS, 1,
        b"\x88" + literal("content-type", "application/grpc", True)) +
        data(msg) + frame(HEADERS, END_HEADERS | END_STREAM, 1,
                          literal("grpc-status", "0", True) + b"\xbe"))
    hb = block([(":status", "200"), ("content-type", "application/grpc"),
                ("x-envoy-upstream", "istiod-7d9f-abcde")])
    s["continuation"] = h2(hello + frame(HEADERS, 0, 1, hb[:10]) +
                           frame(CONTINUATION, 0, 1, hb[10:30]) +
                           frame(CONTINUATION, END_HEADERS, 1, hb[30:]) +
                           data(msg))
    s["rst_stream"] = h2(hello + RESP_HEADERS +
                         frame(RST_STREAM, 0, 1, struct.pack(">I", 8)))
    s["rst_before_headers"] = h2(hello + frame(RST_STREAM, 0, 1,
                                               struct.pack(">I", 7)))
    s["goaway_no_error"] = h2(hello + RESP_HEADERS + data(msg) +
                              frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0) +
                                    b"server shutting down"))
    s["goaway_calm"] = h2(hello + frame(GOAWAY, 0, 0, struct.pack(
        ">II", 0, 11) + b"too_many_pings"))
    # Their PING (answered), the ACK of ours (8 zero bytes), an ACK for
    # nothing we sent.
    s["ping"] = h2(hello + frame(PING, 0, 0, b"12345678") +
                   frame(PING, ACK, 0, b"\0" * 8) +
                   frame(PING, ACK, 0, b"abcdefgh"), flags=2)
    s["window_updates"] = h2(
        settings((4, 16), (5, 16384)) + SETTINGS_ACK + RESP_HEADERS +
        frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 100)) +
        frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 20)) + data(msg))
    s["deferred_body"] = h2(hello + RESP_HEADERS + data(msg) + data(msg2),
                            flags=1)
    s["writes_fail"] = h2(hello + RESP_HEADERS + data(msg), flags=4)
    s["window_overflow"] = h2(hello + frame(
        WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7fffffff)))
    s["settings_table_size"] = h2(settings((1, 0), (2, 0), (6, 8192)) +
                                  SETTINGS_ACK + RESP_HEADERS + data(msg))
    s["priority_unknown_frame"] = h2(
        hello + frame(PRIORITY, 0, 1, struct.pack(">IB", 0, 15)) +
        frame(0x20, 0xff, 0, b"extension") + RESP_HEADERS + data(msg))
    s["push_promise"] = h2(hello + RESP_HEADERS + frame(
        PUSH_PROMISE, END_HEADERS, 1, struct.pack(">I", 2) +
        block([(":method", "GET"), (":path", "/")])))
    s["data_stream0"] = h2(hello + data(msg, stream=0))
    s["data_unknown_stream"] = h2(hello + RESP_HEADERS + data(msg, stream=3))
    s["compressed_message"] = h2(hello + RESP_HEADERS +
                                 data(grpc(b"\x1f\x8b", flag=1)))
    s["no_settings_first"] = h2(RESP_HEADERS + data(msg))
    return s


# ---- a real grpcio server -------------------------------------------------------

CLIENT_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def capture(reply_status):
    """What a grpcio server sends for one ADS stream that pushes SMALL.
    reply_status: None to keep the stream open, else abort with it."""
    import grpc as grpcio
    from concurrent import futures

    def ads_handler(request_iterator, context):
        next(request_iterator)
        yield discovery_pb2.DiscoveryResponse(
            version_info="v1", type_url=NDS_TYPE, nonce="n1",
            resources=[any_pb2.Any(type_url=NDS_TYPE, value=table(SMALL))])
        if reply_status is not None:
            context.abort(reply_status, "going away")
        time.sleep(3)   # past the capture: the stream stays open

    handler = grpcio.method_handlers_generic_handler(
        "envoy.service.discovery.v3.AggregatedDiscoveryService",
        {"StreamAggregatedResources": grpcio.stream_stream_rpc_method_handler(
            ads_handler,
            request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
            response_serializer=lambda m: m.SerializeToString())})
    server = grpcio.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    req = discovery_pb2.DiscoveryRequest(type_url=NDS_TYPE).SerializeToString()
    out = b""
    try:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(CLIENT_PREFACE + settings((2, 0)) + frame(
            HEADERS, END_HEADERS, 1, block(
                [(":method", "POST"), (":scheme", "http"),
                 (":authority", "istiod:15010"), (":path", ADS_PATH),
                 ("content-type", "application/grpc"), ("te", "trailers")]))
            + data(grpc(req)) + SETTINGS_ACK)
        sock.settimeout(1.0)
        deadline = time.time() + 2
        while time.time() < deadline:
            try:
                b = sock.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            out += b
        sock.close()
    finally:
        server.stop(0)
    return out


def write(dirname, seeds, keep_prefix=None):
    os.makedirs(dirname, exist_ok=True)
    for f in os.listdir(dirname):
        if keep_prefix is not None and f.startswith(keep_prefix):
            continue
        if f.startswith("min_"):
            continue
        os.unlink(os.path.join(dirname, f))
    for name, blob in sorted(seeds.items()):
        with open(os.path.join(dirname, name), "wb") as f:
            f.write(blob)


def main():
    write(ADS_DIR, ads_seeds())
    h = h2_seeds()
    if "--capture" in sys.argv[1:]:
        import grpc as grpcio
        h["grpcio_open"] = h2(capture(None))
        h["grpcio_abort"] = h2(capture(grpcio.StatusCode.UNAVAILABLE),
                               chunk=9)
        write(H2_DIR, h)
    else:
        write(H2_DIR, h, keep_prefix="grpcio_")
    return 0


if __name__ == "__main__":
    sys.exit(main())
