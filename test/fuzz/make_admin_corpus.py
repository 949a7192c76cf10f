#!/usr/bin/python3
"""Writes the seed corpus of fuzz_admin (test/fuzz/corpus/fuzz_admin/).

Each seed is one flag byte (bit 0: no table; bits 1-7: write chunk size,
0 = all at once) followed by what an HTTP client sends to the admin port:
every endpoint, POST /cache/flush, methods evhttp refuses, chunked and
oversized bodies, long and many headers, pipelined and HTTP/1.0 requests,
and garbage.
Run from anywhere: /usr/bin/python3 test/fuzz/make_admin_corpus.py
Deterministic: the same files come out on every run.
"""
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
DIR = os.path.join(HERE, "corpus", "fuzz_admin")

PATHS = ("/metrics", "/stats/prometheus", "/healthz/live", "/healthz/ready",
         "/debug/ndsz", "/debug/table", "/debug/table?name=www.google.com",
         "/debug/table?name=*.wildcard", "/debug/table?name=%zz&name=x",
         "/debug/cache", "/cache/flush", "/", "/nope", "/metrics?x=1#frag",
         "//metrics", "/debug/../metrics")


def flags(notable=False, chunk=0):
    return bytes([(1 if notable else 0) | (chunk << 1)])


def get(path, extra=b"", version=b"HTTP/1.1", method=b"GET"):
    return (method + b" " + path.encode() + b" " + version +
            b"\r\nHost: 127.0.0.1:15020\r\n" + extra + b"\r\n")


def seeds():
    out = {}
    for i, p in enumerate(PATHS):
        out["get_%02d" % i] = flags() + get(p)
        out["get_notable_%02d" % i] = flags(True) + get(p)
    out["post_flush"] = flags() + get("/cache/flush",
                                      b"Content-Length: 0\r\n",
                                      method=b"POST")
    out["post_flush_body"] = flags() + get(
        "/cache/flush", b"Content-Length: 5\r\n", method=b"POST") + b"hello"
    out["post_metrics"] = flags() + get("/metrics", b"Content-Length: 0\r\n",
                                        method=b"POST")
    for m in (b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE", b"CONNECT",
              b"PATCH", b"BREW"):
        out["method_" + m.decode().lower()] = flags() + get(
            "/metrics", method=m)
    out["chunked"] = flags() + get(
        "/cache/flush", b"Transfer-Encoding: chunked\r\n",
        method=b"POST") + b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
    out["chunked_plain"] = flags() + get(
        "/cache/flush", b"Transfer-Encoding: chunked\r\n",
        method=b"POST") + b"5\r\nhello\r\n0\r\n\r\n" + get("/debug/cache")
    out["chunked_bad"] = flags() + get(
        "/cache/flush", b"Transfer-Encoding: chunked\r\n",
        method=b"POST") + b"fffffffffffffffff\r\nx\r\n"
    out["chunked_big"] = flags() + get(
        "/cache/flush", b"Transfer-Encoding: chunked\r\n",
        method=b"POST") + b"800\r\n" + b"b" * 2048 + b"\r\n0\r\n\r\n"
    out["body_too_big"] = flags() + get(
        "/cache/flush", b"Content-Length: 2000\r\n",
        method=b"POST") + b"a" * 2000
    out["content_length_bad"] = flags() + get(
        "/cache/flush", b"Content-Length: -1\r\nContent-Length: 3\r\n",
        method=b"POST") + b"abc"
    out["long_header"] = flags() + get(
        "/metrics", b"X-Long: " + b"h" * 9000 + b"\r\n")
    out["many_headers"] = flags() + get(
        "/healthz/live", b"".join(b"X-H%d: v\r\n" % i for i in range(300)))
    out["folded_header"] = flags() + get(
        "/healthz/live", b"X-A: one\r\n two\r\n\tthree\r\n")
    out["long_uri"] = flags() + get("/debug/table?name=" + "a" * 5000)
    out["pipelined"] = flags() + b"".join(
        get(p) for p in ("/healthz/live", "/metrics", "/debug/table",
                         "/debug/cache", "/nope"))
    out["pipelined_flush"] = flags() + get("/debug/cache") + get(
        "/cache/flush", b"Content-Length: 0\r\n", method=b"POST") + get(
        "/debug/cache")
    out["pipelined_chunk7"] = flags(chunk=7) + get("/healthz/ready") + get(
        "/debug/ndsz", b"Connection: close\r\n")
    out["bytewise"] = flags(chunk=1) + get("/healthz/live")
    out["http10"] = flags() + get("/metrics", version=b"HTTP/1.0")
    out["http10_keepalive"] = flags() + get(
        "/healthz/live", b"Connection: keep-alive\r\n",
        version=b"HTTP/1.0") + get("/healthz/ready", version=b"HTTP/1.0")
    out["http09"] = flags() + b"GET /metrics\r\n\r\n"
    out["http2_preface"] = flags() + b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    out["absolute_uri"] = flags() + get("http://127.0.0.1:15020/metrics")
    out["no_host"] = flags() + b"GET /metrics HTTP/1.1\r\n\r\n"
    out["bad_version"] = flags() + get("/metrics", version=b"HTTP/9.9")
    out["expect_continue"] = flags() + get(
        "/cache/flush", b"Expect: 100-continue\r\nContent-Length: 4\r\n",
        method=b"POST") + b"abcd"
    out["crlf_only"] = flags() + b"\r\n\r\n\r\n"
    out["lf_only"] = flags() + b"GET /healthz/live HTTP/1.1\nHost: x\n\n"
    out["empty"] = flags()
    out["nul_in_path"] = flags() + get("/metrics\x00/x")
    rnd = random.Random(8)
    out["garbage"] = flags() + bytes(rnd.randrange(256) for _ in range(600))
    out["garbage_after_get"] = flags() + get("/healthz/live") + bytes(
        rnd.randrange(256) for _ in range(200))
    return out


def main():
    os.makedirs(DIR, exist_ok=True)
    for name, data in sorted(seeds().items()):
        with open(os.path.join(DIR, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
