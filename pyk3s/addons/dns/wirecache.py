"""Wire-level cache entries: a cached reply kept as bytes, served without dnspython.

Rules:
- A template is the reply written once (ID 0, no EDNS, no RD/CD) for the question that filled the entry;
  what follows the question section is the stored tail. Owner names are compression pointers into the
  question, so the client's own question bytes (same length, any case) can be put in front of it.
- Every RR's TTL offset in the tail is found once; on a hit the remaining TTL is written there. The
  patched tails are kept for the current second, so most hits are a dictionary lookup and a join.
- A chain whose replies change per query (loadbalance) gives its variants (`Plugin.variants`); they are
  all stored and cycled through.
- Anything unusual (reply bigger than the client's buffer, expired entry, prefetch configured) is left
  to the dnspython path in the cache plugin, which stays the reference behaviour.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset
from dns.rdatatype import RdataType

__all__ = ["WireEntry", "WireStore", "build_wire_entry", "name_wire", "ttl_offsets", "wire_key"]

_TTL = struct.Struct(">I")


def wire_key(name: str, qtype: int, do: bool, cd: bool) -> bytes:
    """The key the socket path computes from a query: lower-case qname wire, type, class IN, DO/CD."""
    return name_wire(name) + struct.pack(">HHB", qtype, 1, (do << 1) | cd)


def name_wire(name: str) -> bytes:
    """The uncompressed wire form of a domain name as written (no case change)."""
    wire = dns.name.from_text(name).to_wire()
    assert wire is not None         # None only when writing into a file
    return wire


def _skip_name(buf: bytes, i: int) -> int:
    while True:
        ln = buf[i]
        if ln == 0:
            return i + 1
        if ln & 0xC0 == 0xC0:
            return i + 2
        i += ln + 1


def ttl_offsets(wire: bytes, start: int, count: int) -> tuple[int, ...]:
    """Offsets (in `wire`) of the TTL field of `count` RRs starting at `start`."""
    out = []
    i = start
    for _ in range(count):
        i = _skip_name(wire, i)
        out.append(i + 4)
        rdlen = (wire[i + 8] << 8) | wire[i + 9]
        i += 10 + rdlen
    return tuple(out)


@dataclass(slots=True)
class WireEntry:
    flags: int                       # QR, AA, RA and rcode; RD/CD come from each query
    counts: tuple[int, int, int]     # ANCOUNT, NSCOUNT, ARCOUNT (no OPT)
    qlen: int                        # question section length (name + type + class)
    tails: tuple[bytes, ...]
    offsets: tuple[tuple[int, ...], ...]   # TTL offsets inside each tail
    expires: float                   # monotonic time the TTL reaches 0
    kind: str = "success"            # "success" | "denial", for the hit counters
    patched_for: int = -1            # remaining TTL the patched tails carry
    patched: tuple[bytes, ...] = ()
    rr: itertools.count = field(default_factory=itertools.count)

    def tail(self, now: float, keep: bool) -> bytes | None:
        left = int(self.expires - now)
        if left <= 0:
            return None
        if keep:
            tails = self.tails
        else:
            if left != self.patched_for:
                ttl = _TTL.pack(left)
                patched = []
                for t, offs in zip(self.tails, self.offsets, strict=True):
                    b = bytearray(t)
                    for off in offs:
                        b[off:off + 4] = ttl
                    patched.append(bytes(b))
                self.patched, self.patched_for = tuple(patched), left
            tails = self.patched
        return tails[0] if len(tails) == 1 else tails[next(self.rr) % len(tails)]


class WireStore:
    """A cache plugin's replies kept as bytes, keyed as `wire_key` (the socket path's key for a query); the
    fast table answers from it and counts its hits per kind."""

    __slots__ = ("counts", "entries", "keepttl")

    def __init__(self, keepttl: bool = False) -> None:
        self.entries: dict[bytes, WireEntry] = {}
        self.keepttl = keepttl              # replies carry the stored TTLs, not the remaining ones
        self.counts = {"success": 0, "denial": 0}


def build_wire_entry(msg: dns.message.Message, qname: dns.name.Name, qtype: RdataType, expires: float,
                     forms: list[tuple[list[dns.rrset.RRset], list[dns.rrset.RRset]]],
                     kind: str = "success") -> WireEntry | None:
    """The wire form of a cached reply (`msg` holds the RRs with their stored TTLs); `forms`: its answer
    and additional sections in each form the chain gives them per query (one form when it never varies)."""
    flags = int(dns.flags.QR | dns.flags.AA) | (int(msg.flags) & int(dns.flags.RA))
    rcode = msg.rcode()
    if rcode > 15:
        return None
    q = dns.message.make_query(qname, qtype, use_edns=False)
    qlen = len(q.to_wire()) - 12
    tails = []
    offsets = []
    counts = (0, 0, 0)
    for answer, additional in forms:
        m = dns.message.Message(0)
        m.flags = flags
        m.set_rcode(rcode)
        m.question = list(q.question)
        m.answer = list(answer)
        m.authority = list(msg.authority)
        m.additional = list(additional)
        w = m.to_wire(want_shuffle=False)
        an, ns, ar = struct.unpack_from(">HHH", w, 6)
        offsets.append(tuple(o - 12 - qlen for o in ttl_offsets(w, 12 + qlen, an + ns + ar)))
        counts = (an, ns, ar)
        tails.append(w[12 + qlen:])
    return WireEntry(flags | rcode, counts, qlen, tuple(tails), tuple(offsets), expires, kind)
