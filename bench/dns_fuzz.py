#!/usr/bin/env python3
"""Throw >= 1,000,000 malformed and mutated DNS packets at the DNS core (fast and slow path) and at the
forward lane's readers (wire.py).

    python bench/dns_fuzz.py [--count 1000000] [--seed 1]

Prints the rate and every input that raised (none expected). Inputs: random bytes, truncated valid
queries, bit flips, bad label lengths, compression loops, wrong section counts, bogus OPT records. Every
query also goes through the lane's query reader, and as many damaged upstream replies (several record
types, EDNS) through its reply reader: a reply it keeps as bytes must be one dnspython parses too (the
slow path's verdict), or it counts as a crash.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import struct
import sys
import time
import traceback

import dns.exception
import dns.message
import dns.rrset

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "unit", "addons", "dns"))

from conftest import DEFAULT_BODY, NAMESPACES, PODS, SERVICES, SLICES  # noqa: E402

from pyk3s.addons.dns.config import build_blocks  # noqa: E402
from pyk3s.addons.dns.core import DnsCore, Routing  # noqa: E402
from pyk3s.addons.dns.corefile import parse_corefile  # noqa: E402
from pyk3s.addons.dns.plugins.kubernetes import KubernetesPlugin  # noqa: E402
from pyk3s.addons.dns.precompute import build_fast  # noqa: E402
from pyk3s.addons.dns.wire import WireQuery, WireReply  # noqa: E402

SEEDS = [dns.message.make_query(n, t, **kw).to_wire() for n, t in [
    ("web.apps.svc.cluster.local", "A"), ("_http._tcp.web.apps.svc.cluster.local", "SRV"),
    ("10.1.43.10.in-addr.arpa", "PTR"), ("x.apps.svc.cluster.local.svc.cluster.local", "A"),
    ("db.apps.svc.cluster.local", "AAAA"), ("ext-in.apps.svc.cluster.local", "A")]
    for kw in ({}, {"use_edns": 0, "payload": 1232})]


def mutate(rnd: random.Random) -> bytes:
    kind = rnd.randrange(8)
    base = bytearray(rnd.choice(SEEDS))
    if kind == 0:
        return rnd.randbytes(rnd.randrange(0, 80))
    if kind == 1:
        return bytes(base[: rnd.randrange(len(base))])
    if kind == 2:
        for _ in range(rnd.randrange(1, 4)):
            i = rnd.randrange(len(base))
            base[i] ^= 1 << rnd.randrange(8)
        return bytes(base)
    if kind == 3:
        base[12 + rnd.randrange(0, 4)] = rnd.choice([64, 127, 192, 255, 0])
        return bytes(base)
    if kind == 4:                                   # compression pointer loops / forward pointers
        return bytes(base[:12]) + struct.pack(">H", 0xC000 | rnd.choice([12, 14, 0, 500])) + bytes(base[-4:])
    if kind == 5:                                   # wrong counts
        struct.pack_into(">HHHH", base, 4, *(rnd.randrange(0, 4) for _ in range(4)))
        return bytes(base)
    if kind == 6:                                   # bogus OPT tail
        return bytes(base) + b"\x00\x00\x29" + rnd.randbytes(rnd.randrange(0, 12))
    return bytes(base) + rnd.randbytes(rnd.randrange(1, 20))


SOA = "ns.example.test. h.example.test. 1 7200 1800 86400 60"
REPLIES = [  # (query type, answer, authority, additional): (owner, type, rdatas)
    ("MX", [("www", "MX", ["10 a.mx.example.test.", "20 b.mx.example.test."])], [("example.test", "SOA", [SOA])],
     [("a.mx.example.test", "A", ["10.99.0.1"])]),
    ("A", [("www", "CNAME", ["t.example.test."]), ("t.example.test", "A", ["10.1.1.1", "10.1.1.2"])], [], []),
    ("TXT", [("www", "TXT", ['"abc" "de"', '""'])], [], []),
    ("SRV", [("www", "SRV", ["0 5 80 a.example.test."])], [], [("a.example.test", "AAAA", ["fd00::1"])]),
    ("A", [], [("example.test", "SOA", [SOA])], []),
]


def reply_seeds() -> list[tuple[WireQuery, bytes]]:
    out = []
    for qtype, answer, authority, additional in REPLIES:
        for edns in (False, True):
            m = dns.message.make_query("www.example.test", qtype, use_edns=0 if edns else False)
            r = dns.message.make_response(m)
            for section, rrs in ((r.answer, answer), (r.authority, authority), (r.additional, additional)):
                for owner, rdtype, rdatas in rrs:
                    name = "www.example.test." if owner == "www" else owner + "."
                    section.append(dns.rrset.from_text(name, 300, "IN", rdtype, *rdatas))
            q = WireQuery.parse(m.to_wire())
            assert q is not None
            out.append((q, r.to_wire()))
    return out


def lane_reply(rnd: random.Random, seeds: list[tuple[WireQuery, bytes]]) -> None:
    """One damaged upstream reply through the lane's reader; raises when it keeps one dnspython refuses."""
    q, good = rnd.choice(seeds)
    data = bytearray(good)
    for _ in range(rnd.randrange(1, 4)):
        data[rnd.randrange(q.qend, len(data))] = rnd.randrange(256)
    if rnd.random() < 0.1:
        data = data[:rnd.randrange(len(data))]
    try:
        got = WireReply.read(bytes(data), q)
    except dns.exception.DNSException:
        return                          # an unusual reply dnspython refused: the slow path's outcome
    if isinstance(got, WireReply) and got.msg is None:
        dns.message.from_wire(got.wire(), ignore_trailing=True)
        got.groups(frozenset({1, 28, 15}))
        got.set_ttl(5)
        got.render()


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    blocks = build_blocks(parse_corefile(".:53 {\n" + DEFAULT_BODY + "}\n"), "Corefile")
    kube = next(p for p in blocks[0].plugins if isinstance(p, KubernetesPlugin))
    kube.load(SERVICES, SLICES, PODS, NAMESPACES)
    core = DnsCore(await build_fast(Routing.of(blocks)))
    rnd = random.Random(a.seed)
    seeds = reply_seeds()
    crashes = 0
    fast = slow = 0
    start = time.perf_counter()
    for i in range(a.count):
        pkt = mutate(rnd)
        try:
            WireQuery.parse(pkt)
            lane_reply(rnd, seeds)
            if core.fast_answer(pkt) is not None:
                fast += 1
                continue
            slow += 1
            out = await asyncio.wait_for(core.slow_answer(pkt, "udp", ("127.0.0.1", 1)), 1.0)
            if out is not None and len(out) < 12:
                raise AssertionError("reply shorter than a header")
        except Exception:
            crashes += 1
            if crashes <= 20:
                print(f"CRASH on input {pkt.hex()}:\n{traceback.format_exc()}")
        if (i + 1) % 200_000 == 0:
            el = time.perf_counter() - start
            print(f"{i + 1} inputs, {(i + 1) / el:,.0f}/s, fast {fast}, slow {slow}, crashes {crashes}", flush=True)
    el = time.perf_counter() - start
    print(f"done: {a.count} inputs in {el:.1f}s ({a.count / el:,.0f}/s); fast-path {fast}, slow-path {slow}; "
          f"crashes {crashes}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
