"""loadbalance [round_robin] — rotates A, AAAA and MX records of NOERROR replies (spec dns.md O12).

CNAMEs stay first, other types keep their place. Replies served as bytes (fast table, cache) cycle
through the same rotations (`rotations`, offered as the chain's `variants`; `wire_rotations` on bytes).
On the forward lane a reply is rotated as bytes when its sets allow it (WireReply.groups), else as a
message.
"""

from __future__ import annotations

import itertools

import dns.message
import dns.rcode
import dns.rdatatype as T
import dns.rrset

from ..corefile import Directive
from ..plugin import BlockContext, DnsRequest, Handler, Plugin, Records, Variants, WireHop, WireVariants
from ..wire import WireQuery, WireReply

__all__ = ["LoadbalancePlugin", "rotate", "rotations"]

SHUFFLED = (T.A, T.AAAA, T.MX)
MAX_ROTATIONS = 8       # forms kept of one reply served as bytes


def rotate(rrsets: Records, shift: int) -> Records:
    out = []
    for rr in rrsets:
        if rr.rdtype in SHUFFLED and len(rr) > 1:
            items = list(rr)
            k = shift % len(items)
            new = dns.rrset.RRset(rr.name, rr.rdclass, rr.rdtype)
            for rd in items[k:] + items[:k]:
                new.add(rd, rr.ttl)
            out.append(new)
        else:
            out.append(rr)
    return out


def rotations(reply: dns.message.Message) -> list[tuple[Records, Records]]:
    """The answer and additional sections of `reply` as successive queries get them: rotated by 0, 1, ...
    (as many as the largest rotated set has records, at most MAX_ROTATIONS); NOERROR replies only."""
    forms = [(reply.answer, reply.additional)]
    if reply.rcode() == dns.rcode.NOERROR:
        width = max([len(rr) for rr in reply.answer if rr.rdtype in SHUFFLED] or [1])
        forms += [(rotate(reply.answer, k), rotate(reply.additional, k)) for k in range(1, min(width, MAX_ROTATIONS))]
    return forms


def wire_rotations(r: WireReply) -> list[bytes] | None:
    """`rotations` on the bytes of a reply's body; None when its sets cannot be rotated as bytes."""
    body = bytes(r.body)
    if r.rcode != dns.rcode.NOERROR:
        return [body]
    groups = r.groups(_SHUFFLED_TYPES)
    if groups is None:
        return None
    width = max([j - i for i, j in groups if i < r.an] or [1])
    return [body] + [r.rotated(groups, k) for k in range(1, min(width, MAX_ROTATIONS))]


_SHUFFLED_TYPES = frozenset(int(t) for t in SHUFFLED)
_NOERROR = int(dns.rcode.NOERROR)
_TRANSFERS = (int(T.AXFR), int(T.IXFR))


class LoadbalancePlugin(Plugin):
    name = "loadbalance"

    def __init__(self) -> None:
        self.counter = itertools.count()

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> LoadbalancePlugin:
        if d.args not in ((), ("round_robin",)) or d.block:
            raise d.error("unknown policy; only round_robin is supported", cls.name)
        return cls()

    def variants(self) -> Variants:
        return rotations

    def wire_variants(self) -> WireVariants:
        return wire_rotations

    def wire_hop(self) -> WireHop:
        return WireHop(leave=self._lane_leave)

    def _lane_leave(self, q: WireQuery, r: WireReply) -> None:
        if r.rcode != _NOERROR or q.qtype in _TRANSFERS:
            return
        shift = next(self.counter)
        groups = r.groups(_SHUFFLED_TYPES) if r.msg is None else None
        if groups is not None:
            if groups:
                r.body = r.rotated(groups, shift)
            return
        m = r.to_message()
        m.answer = rotate(m.answer, shift)
        m.additional = rotate(m.additional, shift)

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        reply = await next_(req)
        if req.precompute or reply.rcode() != dns.rcode.NOERROR or req.qtype in (T.AXFR, T.IXFR):
            return reply
        shift = next(self.counter)
        reply.answer = rotate(reply.answer, shift)
        reply.additional = rotate(reply.additional, shift)
        return reply
