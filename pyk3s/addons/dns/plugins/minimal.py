"""minimal — writes only the answer section of successful replies, as CoreDNS's plugin/minimal.

A reply is left whole when it is a denial (NXDOMAIN, or NOERROR with an SOA in authority), an error
(SERVFAIL, NOTIMP, REFUSED and the rest, an NXDOMAIN with answers), a delegation (NOERROR, no answer, NS
in authority), a zone transfer, or — for a DNSSEC (DO) query — holds an RRSIG outside its validity
period; any other NOERROR reply loses its authority and additional sections (the OPT is written from the
client's query anyway).

The outcome depends on the reply alone, so precomputed and cached replies (made by running the chain,
this plugin included) are already minimal: the fast table keeps serving. On the forward lane a reply
with authority or additional records is minimized as a message.
"""

from __future__ import annotations

import time

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype as T

from ..corefile import Directive
from ..plugin import BlockContext, DnsRequest, Handler, Plugin, WireHop
from ..wire import WireQuery, WireReply

__all__ = ["MinimalPlugin", "minimize"]

_YEAR68 = 1 << 31


def _toward_zero(a: int) -> int:
    return a // _YEAR68 if a >= 0 else -(-a // _YEAR68)


def _valid_now(inception: int, expiration: int, now: int) -> bool:
    """RFC 4034 3.1.5 serial-number arithmetic on the RRSIG's times, as miekg/dns's ValidityPeriod."""
    ti = inception + _toward_zero(inception - now) * _YEAR68
    te = expiration + _toward_zero(expiration - now) * _YEAR68
    return ti <= now <= te


def _expired_signature(m: dns.message.Message) -> bool:
    now = int(time.time())
    return any(not _valid_now(rd.inception, rd.expiration, now)
               for sec in (m.answer, m.authority, m.additional) for rr in sec if rr.rdtype == T.RRSIG
               for rd in rr)


def minimize(m: dns.message.Message, qtype: int, do: bool) -> bool:
    """Strip `m` to its answer when it is a plain successful reply; whether it did."""
    if not m.authority and not m.additional:
        return False
    if m.rcode() != dns.rcode.NOERROR or qtype in (T.AXFR, T.IXFR):
        return False
    if do and _expired_signature(m):
        return False
    if not m.answer and any(rr.rdtype in (T.SOA, T.NS) for rr in m.authority):
        return False                    # NODATA (SOA) or a delegation (NS)
    m.authority = []
    m.additional = []
    return True


class MinimalPlugin(Plugin):
    name = "minimal"

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> MinimalPlugin:
        if d.args or d.block:
            raise d.error("Wrong argument count or unexpected line ending after 'minimal'", cls.name)
        return cls()

    def wire_hop(self) -> WireHop:
        return WireHop(leave=_lane_leave)

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        reply = await next_(req)
        if minimize(reply, int(req.qtype), bool(req.query.ednsflags & dns.flags.DO)):
            req.note("minimal: authority and additional sections left out")
        return reply


def _lane_leave(q: WireQuery, r: WireReply) -> None:
    if r.msg is None and (r.ns == 0 and r.ar == 0 or r.rcode != 0):
        return
    minimize(r.to_message(), q.qtype, q.do)
