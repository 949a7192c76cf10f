"""A UDP load loop for the black-box tests: keeps a window of A queries in
flight against one address and checks every reply against the address
expected for its name, until stopped.

    load = UdpLoad(proxy.addr4, [("a.example.", "10.0.0.1"), ...])
    load.start()
    ...                       # swap the table meanwhile
    stats = load.stop()       # waits for the queries still in flight
    assert stats.lost == 0 and stats.bad == []

A query counts as lost when no reply with its ID arrives within `timeout`
seconds (no client retry).  A reply is good when it is NOERROR, echoes the
question and carries exactly one answer, an A record whose address is the
expected one.  Anything else is kept in stats.bad (first 20) with the
rcode.
"""

import collections
import selectors
import socket
import struct
import threading
import time

import harness


class Stats:
    def __init__(self):
        self.sent = 0
        self.good = 0
        self.lost = 0
        self.rcodes = collections.Counter()
        self.bad = []          # (name, expected ip, rcode, reply summary)
        self.lost_names = []   # first 20
        self.send_times = []   # monotonic time of every send
        self.max_latency = 0.0

    def sent_between(self, t0, t1):
        """How many queries were sent in [t0, t1]."""
        return sum(1 for t in self.send_times if t0 <= t <= t1)

    def __repr__(self):
        return ("sent=%d good=%d lost=%d rcodes=%s max_latency=%.3fs "
                "bad=%r lost_names=%r" % (
                    self.sent, self.good, self.lost, dict(self.rcodes),
                    self.max_latency, self.bad[:5], self.lost_names[:5]))


class UdpLoad:
    """Runs in a thread of its own from start() to stop()."""

    def __init__(self, addr, queries, window=64, timeout=2.0, nsocks=4):
        self.addr = addr
        self.queries = [(n if n.endswith(".") else n + ".",
                         socket.inet_aton(ip)) for n, ip in queries]
        self.wires = [harness.question(n, "A") for n, _ in self.queries]
        self.window = window
        self.timeout = timeout
        self.nsocks = nsocks
        self.stats = Stats()
        self._stop = threading.Event()
        self._thread = None
        self.error = None

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops sending, waits for the queries in flight (at most
        timeout), returns the Stats."""
        self._stop.set()
        self._thread.join(self.timeout + 30)
        if self.error:
            raise self.error
        return self.stats

    def _run(self):
        try:
            self._loop()
        except Exception as e:  # noqa: BLE001 - re-raised by stop()
            self.error = e

    def _loop(self):
        st = self.stats
        sel = selectors.DefaultSelector()
        socks = []
        for _ in range(self.nsocks):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.connect(self.addr)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            socks.append(s)
        # outstanding[(sock index, id)] = (query index, send time)
        outstanding = {}
        next_id = [1] * self.nsocks
        qi = 0
        si = 0
        last_sweep = time.monotonic()
        try:
            while True:
                stopping = self._stop.is_set()
                if stopping and not outstanding:
                    break
                while not stopping and len(outstanding) < self.window:
                    k = qi % len(self.queries)
                    qi += 1
                    si = (si + 1) % self.nsocks
                    qid = next_id[si]
                    next_id[si] = (qid + 1) & 0xFFFF or 1
                    if (si, qid) in outstanding:   # ID still in use: skip
                        continue
                    wire = harness.header(qid) + self.wires[k]
                    try:
                        socks[si].send(wire)
                    except BlockingIOError:
                        break
                    now = time.monotonic()
                    outstanding[(si, qid)] = (k, now)
                    st.sent += 1
                    st.send_times.append(now)
                for key, _ in sel.select(0.02):
                    s = key.fileobj
                    idx = socks.index(s)
                    while True:
                        try:
                            d = s.recv(65535)
                        except (BlockingIOError, ConnectionRefusedError):
                            break
                        if len(d) < 12:
                            continue
                        qid = struct.unpack("!H", d[:2])[0]
                        ent = outstanding.pop((idx, qid), None)
                        if ent is None:
                            continue   # late reply to a lost query
                        k, t0 = ent
                        st.max_latency = max(st.max_latency,
                                             time.monotonic() - t0)
                        self._check(k, d)
                now = time.monotonic()
                if now - last_sweep > 0.1 or stopping:
                    last_sweep = now
                    for key in [x for x, (k, t0) in outstanding.items()
                                if now - t0 > self.timeout]:
                        k, _ = outstanding.pop(key)
                        st.lost += 1
                        if len(st.lost_names) < 20:
                            st.lost_names.append(self.queries[k][0])
        finally:
            sel.close()
            for s in socks:
                s.close()

    def _check(self, k, d):
        st = self.stats
        name, ip = self.queries[k]
        flags, qd, an = struct.unpack("!HHH", d[2:8])
        rcode = flags & 0xF
        st.rcodes[rcode] += 1
        q = self.wires[k]
        ok = (rcode == 0 and qd == 1 and an == 1 and
              d[12:12 + len(q)] == q and d[-4:] == ip and
              d[-6:-4] == b"\x00\x04")
        if ok:
            st.good += 1
        elif len(st.bad) < 20:
            try:
                summary = harness.parse_reply(d).summary()
            except Exception as e:  # noqa: BLE001
                summary = "undecodable: %r" % e
            st.bad.append((name, socket.inet_ntoa(ip), rcode, summary))
