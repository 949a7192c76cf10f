#!/usr/bin/python3
"""Raw-socket DNS probes for the benchmark (no third-party modules).

  probe.py check   --port P --names FILE
      Ask for the A record of every "<fqdn> <ip>..." line of FILE and check the
      answer holds exactly those IPs. Exit 1 if any answer is wrong or missing.

  probe.py wait    --port P --name FQDN --ip IP [--timeout S] [--pid PID]
      Poll every millisecond until a correct A answer arrives. Exit 1 on
      timeout or as soon as process PID has exited.

  probe.py startup --port P --name FQDN --ip IP --repeat K --pidfile F
                   [--cpu N] [--log FILE] -- CMD ARGS...
      K times: exec CMD (pinned to CPU N), poll every ~1 ms for a correct A
      answer, record the time from just before fork/exec until that answer,
      then stop the server (SIGTERM, SIGKILL after 3 s). Prints JSON:
      {"wall_ms": [...], "cpu_ms": [...], "rqwait_ms": [...]}, the last two
      being the server's CPU time and run-queue wait (/proc/PID/task/*/schedstat)
      read just after its first correct answer. The child's PID is kept in F while it runs so
      that bench.sh's exit trap can kill it.
"""

import argparse
import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import time


def build_query(qid, name, qtype=1):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        b = label.encode()
        q += bytes([len(b)]) + b
    return q + b"\x00" + struct.pack("!HH", qtype, 1)


def skip_name(msg, off):
    while True:
        if off >= len(msg):
            raise ValueError("name runs past the message")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            return off + 2
        if n == 0:
            return off + 1
        off += 1 + n


def parse_a(msg):
    """(id, rcode, [IPv4 strings from the answer section])."""
    if len(msg) < 12:
        raise ValueError("short message")
    qid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", msg[:12])
    off = 12
    for _ in range(qd):
        off = skip_name(msg, off) + 4
    ips = []
    for _ in range(an):
        off = skip_name(msg, off)
        rtype, _, _, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        if rtype == 1 and rdlen == 4:
            ips.append(socket.inet_ntoa(msg[off:off + 4]))
        off += rdlen
    return qid, flags & 0xF, ips


def new_socket(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    return s


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    # A zombie still answers kill(0); look at its state too.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def schedstat(pid):
    """(CPU time, run-queue wait) in ns, summed over the threads of pid."""
    cpu = wait = 0
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return None
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                fields = f.read().split()
            cpu += int(fields[0])
            wait += int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    return cpu, wait


def poll_answer(sock, name, want, deadline, interval=0.001, alive=None):
    """Send a query every `interval` s until a correct answer or deadline.

    Returns the monotonic time of the first correct answer, or None (also
    as soon as alive() says the server has gone). With no `want`, any
    reply to one of the queries sent counts."""
    sent = set()
    want = set(want) if want else None
    n = 0
    while True:
        now = time.monotonic()
        if now >= deadline:
            return None
        n += 1
        if alive is not None and n % 20 == 0 and not alive():
            return None
        qid = random.randrange(65536)
        sent.add(qid)
        try:
            sock.send(build_query(qid, name))
        except (ConnectionRefusedError, BlockingIOError):
            pass
        until = min(now + interval, deadline)
        while True:
            left = until - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([sock], [], [], left)
            if not r:
                break
            try:
                msg = sock.recv(65535)
            except ConnectionRefusedError:
                # ICMP port unreachable: nothing bound yet.
                continue
            except BlockingIOError:
                continue
            t = time.monotonic()
            try:
                rid, rcode, ips = parse_a(msg)
            except (ValueError, struct.error):
                continue
            if rid in sent and (want is None or (rcode == 0 and set(ips) == want)):
                return t


def cmd_check(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", args.port))
    sock.settimeout(1.0)
    bad = 0
    total = 0
    with open(args.names) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            name, want = parts[0], set(parts[1:])
            total += 1
            got = None
            for _ in range(3):
                qid = random.randrange(65536)
                sock.send(build_query(qid, name))
                try:
                    while True:
                        rid, rcode, ips = parse_a(sock.recv(65535))
                        if rid == qid:
                            got = (rcode, set(ips))
                            break
                except socket.timeout:
                    continue
                break
            if got is None or got[0] != 0 or got[1] != want:
                bad += 1
                if bad <= 5:
                    print("probe: wrong answer for %s: got %s, want %s"
                          % (name, got, sorted(want)), file=sys.stderr)
    print("probe: %d/%d names answered correctly" % (total - bad, total),
          file=sys.stderr)
    return 1 if bad else 0


def cmd_wait(args):
    sock = new_socket(args.port)
    alive = (lambda: pid_alive(args.pid)) if args.pid else None
    t = poll_answer(sock, args.name, args.ip, time.monotonic() + args.timeout,
                    alive=alive)
    if t is None:
        print("probe: no correct answer for %s on port %d within %.0f s%s"
              % (args.name, args.port, args.timeout,
                 " (server exited)" if alive and not alive() else ""),
              file=sys.stderr)
        return 1
    return 0


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cmd_startup(args):
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    if not cmd:
        print("probe: startup needs a command after --", file=sys.stderr)
        return 2
    cpu = args.cpu
    log = open(args.log, "ab") if args.log else subprocess.DEVNULL
    times, cpus, waits = [], [], []
    for _ in range(args.repeat):
        sock = new_socket(args.port)
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log,
                                preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
        try:
            with open(args.pidfile, "w") as pf:
                pf.write("%d\n" % proc.pid)
            t = poll_answer(sock, args.name, args.ip, t0 + args.timeout,
                            alive=lambda: proc.poll() is None)
            if t is None:
                rc = proc.poll()
                print("probe: %s gave no correct answer%s" % (
                    cmd[0], " within %.0f s" % args.timeout if rc is None
                    else " before it exited with status %d" % rc), file=sys.stderr)
                return 1
            times.append((t - t0) * 1000.0)
            st = schedstat(proc.pid)
            if st is not None:
                cpus.append(st[0] / 1e6)
                waits.append(st[1] / 1e6)
        finally:
            stop(proc)
            sock.close()
            try:
                os.unlink(args.pidfile)
            except FileNotFoundError:
                pass
        time.sleep(0.2)
    print(json.dumps({"wall_ms": times, "cpu_ms": cpus, "rqwait_ms": waits}))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd_name", required=True)
    c = sub.add_parser("check")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--names", required=True)
    w = sub.add_parser("wait")
    w.add_argument("--port", type=int, required=True)
    w.add_argument("--name", required=True)
    w.add_argument("--ip", action="append",
                   help="an expected A record (repeat for each); none: any reply")
    w.add_argument("--timeout", type=float, default=30)
    w.add_argument("--pid", type=int, help="give up early if this process exits")
    s = sub.add_parser("startup")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--name", required=True)
    s.add_argument("--ip", action="append", required=True)
    s.add_argument("--repeat", type=int, default=5)
    s.add_argument("--cpu", type=int, default=0)
    s.add_argument("--timeout", type=float, default=30)
    s.add_argument("--pidfile", required=True)
    s.add_argument("--log")
    s.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    # Keep the probe itself off the server's core.
    try:
        os.sched_setaffinity(0, {1})
    except OSError:
        pass
    if args.cmd_name == "check":
        return cmd_check(args)
    if args.cmd_name == "wait":
        return cmd_wait(args)
    return cmd_startup(args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
