"""Connectivity probes run inside one pod's network namespace (``ip netns exec pk-... python3 THIS``).

Reads a JSON list of ``[address, protocol, port]`` on stdin and prints a JSON list of booleans: TCP is
connected when the handshake completes, UDP when the echo server answers, ICMP when an echo reply
comes back. A refused or administratively prohibited attempt fails at once; silence fails after
``--timeout`` seconds. All probes run at the same time.

``--watch SECONDS``: probe the targets again and again (every ``--interval``) for that long, printing a
JSON line ``{"t": wall-clock time, "i": target index, "ok": bool}`` whenever a target's result changes
(and once at the start), then exit.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def tcp(addr: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((addr, port), timeout=timeout):
            return True
    except OSError:
        return False


def udp(addr: str, port: int, timeout: float) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.connect((addr, port))
            s.send(b"probe")
            return bool(s.recv(2048))
        except OSError:
            return False


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def icmp6(addr: str, ident: int, timeout: float) -> bool:
    """ICMPv6 echo (the kernel fills in the checksum of raw ICMPv6 sockets)."""
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as s:
        s.sendto(struct.pack("!BBHHH", 128, 0, 0, ident, 1) + b"pyk3s-probe", (addr, 0))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([s], [], [], left)
            if not ready:
                return False
            data, src = s.recvfrom(2048)  # raw ICMPv6 sockets return the ICMPv6 message alone
            typ, _code, _sum, rid, _seq = struct.unpack("!BBHHH", data[:8])
            if typ == 129 and rid == ident and socket.inet_pton(socket.AF_INET6, src[0]) == \
                    socket.inet_pton(socket.AF_INET6, addr):
                return True
            if typ == 1 and len(data) >= 8 + 40 + 8 and data[8 + 40 + 4:8 + 40 + 6] == struct.pack("!H", ident):
                return False
        return False


def icmp(addr: str, ident: int, timeout: float) -> bool:
    if ":" in addr:
        return icmp6(addr, ident, timeout)
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
        header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
        payload = b"pyk3s-probe"
        packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, 1) + payload
        s.sendto(packet, (addr, 0))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([s], [], [], left)
            if not ready:
                return False
            data, (src, _) = s.recvfrom(2048)
            ihl = (data[0] & 0x0F) * 4
            typ, _code, _sum, rid, _seq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
            if typ == 0 and rid == ident and src == addr:
                return True
            if typ == 3 and len(data) >= ihl + 8 + 20 + 8:
                inner = data[ihl + 8:]
                inner_ihl = (inner[0] & 0x0F) * 4
                if socket.inet_ntoa(inner[16:20]) == addr and struct.unpack("!H", inner[inner_ihl + 4:inner_ihl + 6])[0] == ident:
                    return False
        return False


def probe(target: list, timeout: float, index: int) -> bool:
    addr, proto, port = target
    if proto == "TCP":
        return tcp(addr, int(port), timeout)
    if proto == "UDP":
        return udp(addr, int(port), timeout)
    return icmp(addr, (os.getpid() * 64 + index) & 0xFFFF, timeout)


def watch(targets: list, timeout: float, seconds: float, interval: float) -> int:
    last: dict[int, bool] = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for i, target in enumerate(targets):
            ok = probe(target, timeout, i)
            if last.get(i) != ok:
                last[i] = ok
                print(json.dumps({"t": time.time(), "i": i, "ok": ok}), flush=True)
        time.sleep(interval)
    return 0


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--watch", type=float, default=0.0)
    p.add_argument("--interval", type=float, default=0.02)
    a = p.parse_args()
    targets = json.load(sys.stdin)
    if a.watch:
        return watch(targets, a.timeout, a.watch, a.interval)
    with ThreadPoolExecutor(max_workers=max(1, min(64, len(targets)))) as pool:
        results = list(pool.map(lambda it: probe(it[1], a.timeout, it[0]), enumerate(targets)))
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
