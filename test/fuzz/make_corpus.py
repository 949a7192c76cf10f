#!/usr/bin/python3
"""Writes the seed corpora of fuzz_wire, fuzz_truncate and fuzz_cache.

fuzz_wire seeds are queries (valid, and one broken thing each);
fuzz_truncate and fuzz_cache seeds are a 2-byte big-endian size limit
followed by a reply.
Run from anywhere: /usr/bin/python3 test/fuzz/make_corpus.py
Deterministic: the same files come out on every run.
"""
import os
import struct
import sys
import time

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.tsigkeyring

HERE = os.path.dirname(os.path.abspath(__file__))
WIRE_DIR = os.path.join(HERE, "corpus", "fuzz_wire")
TRUNC_DIR = os.path.join(HERE, "corpus", "fuzz_truncate")
CACHE_DIR = os.path.join(HERE, "corpus", "fuzz_cache")

KEYRING = dns.tsigkeyring.from_text({"key.example.": "c2VjcmV0c2VjcmV0c2VjcmV0"})


def query(name, rdtype="A", qid=0x1234, **kw):
    q = dns.message.make_query(name, rdtype, **kw)
    q.id = qid
    return q


def hdr(qid=0x1234, flags=0x0100, qd=1, an=0, ns=0, ar=0):
    return struct.pack(">HHHHHH", qid, flags, qd, an, ns, ar)


def wname(text):
    out = b""
    for label in text.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def question(text, qtype=1, qclass=1):
    return wname(text) + struct.pack(">HH", qtype, qclass)


def opt_rr(size=1232, version=0, flags=0, rdata=b""):
    return b"\0" + struct.pack(">HHBBHH", 41, size, 0, version, flags,
                               len(rdata)) + rdata


def a_rr(owner_wire, ip, ttl=30):
    return owner_wire + struct.pack(">HHIH", 1, 1, ttl, 4) + bytes(ip)


def wire_seeds():
    s = {}
    s["a"] = query("example.com.", "A").to_wire()
    s["aaaa_mixed_case"] = query("WwW.ExAmple.CoM.", "AAAA").to_wire()
    s["mx"] = query("example.org.", "MX").to_wire()
    s["txt_no_rd"] = query("t.example.", "TXT", flags=0).to_wire()
    s["srv"] = query("_http._tcp.svc.cluster.local.", "SRV").to_wire()
    s["ptr"] = query("1.0.0.10.in-addr.arpa.", "PTR").to_wire()
    s["any"] = query("example.com.", "ANY").to_wire()
    s["root"] = query(".", "NS").to_wire()
    s["edns_1232"] = query("example.com.", "A", use_edns=0,
                           payload=1232).to_wire()
    s["edns_do_4096"] = query("example.com.", "AAAA", use_edns=0,
                              payload=4096, want_dnssec=True).to_wire()
    s["edns_small"] = query("example.com.", "A", use_edns=0,
                            payload=100).to_wire()
    s["edns_cookie_ecs"] = query(
        "example.com.", "A", use_edns=0, payload=1232,
        options=[dns.edns.GenericOption(10, b"\x01" * 8),
                 dns.edns.ECSOption("192.0.2.0", 24)]).to_wire()
    q = query("tsig.example.", "A")
    q.use_tsig(KEYRING, keyname="key.example.")
    s["tsig"] = q.to_wire()
    q = query("tsig.example.", "A", use_edns=0)
    q.use_tsig(KEYRING, keyname="key.example.")
    s["edns_tsig"] = q.to_wire()
    # NOTIFY with an SOA in the answer section (compressed owner)
    n = dns.message.make_query("example.com.", "SOA")
    n.set_opcode(dns.opcode.NOTIFY)
    n.id = 7
    n.answer.append(dns.rrset.from_text(
        "example.com.", 60, "IN", "SOA",
        "ns1.example.com. hostmaster.example.com. 1 2 3 4 5"))
    s["notify_soa"] = n.to_wire()
    q = query("example.com.", "A")
    q.set_opcode(dns.opcode.UPDATE)
    s["opcode_update"] = q.to_wire()
    s["qr_set"] = hdr(flags=0x8100) + question("example.com.")
    s["short"] = hdr()[:11]
    s["header_only"] = hdr()
    s["qdcount_2"] = hdr(qd=2) + question("a.") + question("b.")
    s["arcount_3"] = hdr(ar=3) + question("a.") + opt_rr() * 3
    s["edns_version_1"] = hdr(ar=1) + question("a.example.") + opt_rr(
        version=1, flags=0x8000)
    s["two_opts"] = hdr(ar=2) + question("a.example.") + opt_rr() * 2
    s["opt_in_answer"] = hdr(an=1) + question("a.example.") + opt_rr()
    s["opt_bad_option"] = hdr(ar=1) + question("a.example.") + opt_rr(
        rdata=b"\x00\x0a\x00\x08\x00")
    s["pointer_loop"] = hdr() + b"\xc0\x0c" + struct.pack(">HH", 1, 1)
    s["forward_pointer"] = (hdr() + b"\xc0\x12" + struct.pack(">HH", 1, 1) +
                            wname("a."))
    s["label_64"] = hdr() + b"\x40" + b"a" * 64 + b"\0\0\1\0\1"
    s["name_255"] = hdr() + (b"\x3f" + b"x" * 63) * 3 + b"\x3d" + \
        b"x" * 61 + b"\0\0\1\0\1"
    s["name_256"] = hdr() + (b"\x3f" + b"x" * 63) * 3 + b"\x3e" + \
        b"x" * 62 + b"\0\0\1\0\1"
    s["trailing_byte"] = query("example.com.").to_wire() + b"\0"
    s["label_type_40"] = hdr() + b"\x41a\0\0\1\0\1"
    # an answer RR whose owner points at the question
    s["answer_compressed"] = hdr(an=1) + question("a.example.") + a_rr(
        b"\xc0\x0c", (10, 0, 0, 1))
    return s


def reply(q, *rrsets, section="answer", flags=None):
    r = dns.message.make_response(q)
    for rr in rrsets:
        getattr(r, section).append(rr)
    if flags is not None:
        r.flags = flags
    return r


def rrset(name, rdtype, *texts, ttl=30):
    return dns.rrset.from_text(name, ttl, "IN", rdtype, *texts)


def giant(qname, with_opt):
    owner = wname("aaaaaaaaaaaa.aaaaaa.")
    body = question(qname)
    for i in range(64):
        body += a_rr(owner, (10, 0, i // 256, i % 256))
    ar = 0
    if with_opt:
        body += opt_rr(size=4096, flags=0x8000)
        ar = 1
    return hdr(flags=0x8580, an=64, ar=ar) + body


def trunc_seeds():
    s = {}
    lim = lambda n, msg: struct.pack(">H", n) + msg
    g = giant("giant-tc.", False)
    s["giant_512"] = lim(512, g)
    s["giant_1232"] = lim(1232, g)
    s["giant_fits"] = lim(65535, g)
    s["giant_tiny_limit"] = lim(20, g)
    s["giant_opt_512"] = lim(512, giant("giant.", True))
    s["giant_opt_0"] = lim(0, giant("giant.", True))

    q = query("example.com.", "MX", use_edns=0, payload=1232)
    r = reply(q, rrset("example.com.", "MX",
                       *["%d mx%d.example.com." % (i, i) for i in range(40)]))
    r.additional.append(rrset("mx1.example.com.", "A", "192.0.2.1"))
    s["mx_40_512"] = lim(512, r.to_wire(max_size=65535))
    s["mx_40_300"] = lim(300, r.to_wire(max_size=65535))

    q = query("www.example.com.", "A")
    r = reply(q,
              rrset("www.example.com.", "CNAME", "web.example.com."),
              rrset("web.example.com.", "CNAME", "lb.example.net."),
              rrset("lb.example.net.", "A",
                    *["198.51.100.%d" % i for i in range(1, 60)]))
    r.authority.append(rrset("example.net.", "NS", "ns1.example.net.",
                             "ns2.example.net."))
    r.additional.append(rrset("ns1.example.net.", "A", "203.0.113.1"))
    s["cname_chain_512"] = lim(512, r.to_wire(max_size=65535))
    s["cname_chain_200"] = lim(200, r.to_wire(max_size=65535))

    q = query("nx.example.com.", "A", use_edns=0)
    r = reply(q)
    r.set_rcode(dns.rcode.NXDOMAIN)
    r.authority.append(rrset(
        "example.com.", "SOA",
        "ns1.example.com. hostmaster.example.com. 2024 3600 600 86400 60"))
    s["nxdomain_soa"] = lim(512, r.to_wire(max_size=65535))
    s["nxdomain_soa_60"] = lim(60, r.to_wire(max_size=65535))

    q = query("_dns._udp.svc.cluster.local.", "SRV")
    r = reply(q, rrset("_dns._udp.svc.cluster.local.", "SRV",
                       *["0 %d 53 srv%d.svc.cluster.local." % (i, i)
                         for i in range(30)]))
    s["srv_30_512"] = lim(512, r.to_wire(max_size=65535))

    q = query("1.0.0.10.in-addr.arpa.", "PTR")
    r = reply(q, rrset("1.0.0.10.in-addr.arpa.", "PTR",
                       *["host%d.example." % i for i in range(50)]))
    s["ptr_50_512"] = lim(512, r.to_wire(max_size=65535))

    q = query("big.example.", "TXT", use_edns=0, payload=4096)
    r = reply(q, rrset("big.example.", "TXT",
                       *['"%d%s"' % (i, "t" * 200) for i in range(6)]))
    s["txt_big_1232"] = lim(1232, r.to_wire(max_size=65535))
    s["txt_big_512"] = lim(512, r.to_wire(max_size=65535))

    q = query("v6.example.", "AAAA", use_edns=0, payload=1232,
              options=[dns.edns.GenericOption(10, b"\x02" * 16)])
    r = reply(q, rrset("v6.example.", "AAAA",
                       *["2001:db8::%x" % i for i in range(1, 80)]))
    s["aaaa_cookie_1232"] = lim(1232, r.to_wire(max_size=65535))
    s["aaaa_cookie_512"] = lim(512, r.to_wire(max_size=65535))

    q = query("tsig.example.", "A")
    q.use_tsig(KEYRING, keyname="key.example.")
    r = dns.message.make_response(q)
    r.answer.append(rrset("tsig.example.", "A",
                          *["192.0.2.%d" % i for i in range(1, 60)]))
    w = r.to_wire(max_size=65535)
    s["tsig_512"] = lim(512, w)
    s["tsig_fits"] = lim(65535, w)

    q = query("mixed.example.", "A")
    r = reply(q, rrset("MiXeD.example.", "A", "192.0.2.1"),
              rrset("mixed.example.", "A",
                    *["192.0.2.%d" % i for i in range(2, 40)]))
    s["case_512"] = lim(512, r.to_wire(max_size=65535))

    tc = giant("giant-tc.", False)
    tc = tc[:2] + struct.pack(">H", 0x8780) + tc[4:]
    s["tc_already_set"] = lim(1024, tc)
    s["cut_last_rr"] = lim(512, g[:-1])
    s["trailing_byte"] = lim(512, g + b"\0")
    s["empty"] = lim(512, b"")
    s["compression_work_64k"] = lim(65000, compression_worst())
    return s


def compression_worst():
    """A 64 KiB reply whose owners make every compression search walk deep:
    the question is 100 labels "a", each owner "x" + a pointer to its 36-label
    suffix, which is not among the remembered targets."""
    q = b"\x01a" * 100 + b"\0" + struct.pack(">HH", 1, 1)
    owner = b"\x01x" + struct.pack(">H", 0xC000 | (12 + 2 * (100 - 36)))
    rr = owner + struct.pack(">HHIH", 16, 1, 0, 0)
    n = (65535 - 12 - len(q)) // len(rr)
    return hdr(flags=0x8180, an=n) + q + rr * n


def cache_seeds():
    """Replies as the cache sees them: a few of the truncation seeds, plus
    NODATA, a zero TTL, an OPT with COOKIE/NSID/PADDING (taken out or
    kept), a SERVFAIL and a CNAME chain ending in NXDOMAIN."""
    t = trunc_seeds()
    s = {k: t[k] for k in ("giant_512", "giant_opt_512", "cname_chain_512",
                           "nxdomain_soa", "aaaa_cookie_512", "tsig_512",
                           "case_512", "tc_already_set", "cut_last_rr")}
    lim = lambda n, msg: struct.pack(">H", n) + msg
    soa = rrset("example.com.", "SOA",
                "ns1.example.com. hostmaster.example.com. 1 3600 600 86400 5",
                ttl=3600)

    q = query("nodata.example.com.", "AAAA")
    r = reply(q)
    r.authority.append(soa)
    s["nodata_soa"] = lim(512, r.to_wire())

    q = query("zero.example.com.", "A")
    s["ttl_zero"] = lim(512, reply(q, rrset("zero.example.com.", "A",
                                            "192.0.2.1", ttl=0)).to_wire())

    q = query("opts.example.com.", "A", use_edns=0, payload=1232)
    r = reply(q, rrset("opts.example.com.", "A", "192.0.2.2"))
    r.use_edns(0, 0, 4096, options=[
        dns.edns.GenericOption(10, b"\x01" * 8 + b"\x02" * 16),
        dns.edns.GenericOption(3, b"ns1"),
        dns.edns.GenericOption(12, b"\0" * 20)])
    s["opt_cookie_nsid_padding"] = lim(1232, r.to_wire())

    q = query("fail.example.com.", "A")
    r = reply(q)
    r.set_rcode(dns.rcode.SERVFAIL)
    s["servfail"] = lim(512, r.to_wire())

    q = query("alias.example.com.", "A")
    r = reply(q, rrset("alias.example.com.", "CNAME", "gone.example.com."))
    r.set_rcode(dns.rcode.NXDOMAIN)
    r.authority.append(soa)
    s["cname_nxdomain"] = lim(512, r.to_wire())
    return s


def write(dirname, seeds):
    """Writes the seeds; other files (regression inputs) are kept."""
    os.makedirs(dirname, exist_ok=True)
    if os.path.exists(os.path.join(dirname, "placeholder")):
        os.unlink(os.path.join(dirname, "placeholder"))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(dirname, name), "wb") as f:
            f.write(data)


def main():
    time.time = lambda: 1700000000.0  # fixed TSIG time: same bytes each run
    write(WIRE_DIR, wire_seeds())
    write(TRUNC_DIR, trunc_seeds())
    write(CACHE_DIR, cache_seeds())
    return 0


if __name__ == "__main__":
    sys.exit(main())
