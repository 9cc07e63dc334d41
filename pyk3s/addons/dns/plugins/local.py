"""local [{ localhost_prefix on|off }] — answers for the local names, as CoreDNS's plugin/local.

The zones `localhost.`, `0.in-addr.arpa.`, `127.in-addr.arpa.` and `255.in-addr.arpa.` (RFC 6761 and
the IPv4 ones of RFC 6303) never leave the server:
- `localhost.`: A 127.0.0.1, AAAA ::1, its SOA and NS; other types NODATA. The other apexes: SOA, NS,
  NODATA for the rest. `1.0.0.127.in-addr.arpa.`: PTR localhost., NODATA for the rest. Any other name
  in these zones is NXDOMAIN with the zone's SOA (owner as spelled in the query).
- A name below `localhost.` (RFC 6761), and with `localhost_prefix on` (the default, kept for
  compatibility) a name that starts with `localhost.` (`localhost.example.org.`, and so the first
  search-path form of `localhost` a pod asks), gets A 127.0.0.1 / AAAA ::1, other types NODATA with
  an SOA owned by the name itself; each is counted in coredns_local_localhost_requests_total.
Records have TTL 604800; replies are not authoritative (as CoreDNS's). `ip6.arpa.` is not intercepted
(as in CoreDNS). Questions of another class than IN go on down the chain.

The `localhost.` prefix covers names the fast table answers negatively for the whole cluster zone
(kubernetes' search-path rule), and the counter counts each query, so a block with `local` keeps its
queries on the chain; the forward lane still takes every name `local` leaves alone.
"""

from __future__ import annotations

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype as T
import dns.rrset
from dns.rdtypes.ANY.NS import NS
from dns.rdtypes.ANY.PTR import PTR
from dns.rdtypes.ANY.SOA import SOA
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA

from ..corefile import Directive
from ..plugin import BlockContext, DnsRequest, Handler, Host, Plugin, WireHop
from ..wire import WireQuery

__all__ = ["LocalPlugin"]

IN = dns.rdataclass.IN
TTL = 604800
ZONES = ("localhost.", "0.in-addr.arpa.", "127.in-addr.arpa.", "255.in-addr.arpa.")
_ZONE_SUFFIXES = tuple("." + z for z in ZONES)
LOCALHOST = dns.name.from_text("localhost.")
_ROOT_LOCALHOST = dns.name.from_text("root.localhost.")


def _soa(owner: dns.name.Name) -> dns.rrset.RRset:
    rr = dns.rrset.RRset(owner, IN, T.SOA)
    rr.add(SOA(IN, T.SOA, LOCALHOST, _ROOT_LOCALHOST, 1, 0, 0, 0, TTL), TTL)
    return rr


def _one(owner: dns.name.Name, rdtype: T.RdataType, rd: object) -> dns.rrset.RRset:
    rr = dns.rrset.RRset(owner, IN, rdtype)
    rr.add(rd, TTL)  # type: ignore[arg-type]
    return rr


def _loopback(owner: dns.name.Name, qtype: T.RdataType) -> dns.rrset.RRset | None:
    if qtype == T.A:
        return _one(owner, T.A, A(IN, T.A, "127.0.0.1"))
    if qtype == T.AAAA:
        return _one(owner, T.AAAA, AAAA(IN, T.AAAA, "::1"))
    return None


class LocalPlugin(Plugin):
    name = "local"
    fast_safe = False

    def __init__(self, localhost_prefix: bool = True) -> None:
        self.localhost_prefix = localhost_prefix
        self.host: Host | None = None

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> LocalPlugin:
        if d.args:
            raise d.error("Wrong argument count or unexpected line ending after 'local'", cls.name)
        prefix = True
        for sub in d.block:
            if sub.name != "localhost_prefix":
                raise sub.error(f"unknown property '{sub.name}'", cls.name)
            if len(sub.args) != 1:
                raise sub.error("Wrong argument count or unexpected line ending after 'localhost_prefix'",
                                cls.name)
            if sub.args[0] not in ("on", "off"):
                raise sub.error(f"localhost_prefix expects 'on' or 'off', got {sub.args[0]!r}", cls.name)
            prefix = sub.args[0] == "on"
        return cls(prefix)

    async def start(self, host: Host) -> None:
        self.host = host

    def _special(self, name: str) -> bool:
        """A name below localhost., or (prefix on) one that starts with localhost."""
        return len(name) > 10 and (name.endswith(".localhost.") or
                                   self.localhost_prefix and name.startswith("localhost."))

    def answers(self, name: str) -> bool:
        return self._special(name) or name in ZONES or name.endswith(_ZONE_SUFFIXES)

    def wire_hop(self) -> WireHop:
        return WireHop(admit=self._lane_admit)

    def _lane_admit(self, q: WireQuery) -> bool:
        return not self.answers(q.name)

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        name = req.name
        if req.query.question[0].rdclass != IN or not self.answers(name):
            return await next_(req)
        qname, qtype = req.qname, req.qtype
        m = req.reply()
        if self._special(name):
            if self.host is not None and not req.precompute:
                self.host.metrics.inc("coredns_local_localhost_requests_total")
            rr = _loopback(qname, qtype)
            if rr is not None:
                m.answer.append(rr)
            else:
                m.authority.append(_soa(qname))
            req.note("local: a localhost name")
            return m
        zone_len = len(next(z for z in ZONES if name == z or name.endswith("." + z)).rstrip(".").split("."))
        zone = dns.name.Name(qname.labels[len(qname.labels) - zone_len - 1:])   # as spelled, with the root
        if name in ZONES:
            rr = _loopback(qname, qtype) if name == "localhost." else None
            if rr is not None:
                m.answer.append(rr)
            elif qtype == T.SOA:
                m.answer.append(_soa(qname))
            elif qtype == T.NS:
                m.answer.append(_one(qname, T.NS, NS(IN, T.NS, LOCALHOST)))
            else:
                m.authority.append(_soa(qname))
        elif name == "1.0.0.127.in-addr.arpa.":
            if qtype == T.PTR:
                m.answer.append(_one(qname, T.PTR, PTR(IN, T.PTR, LOCALHOST)))
            else:
                m.authority.append(_soa(zone))
        else:
            m.set_rcode(dns.rcode.NXDOMAIN)
            m.authority.append(_soa(zone))
        req.note(f"local: in the local zone {zone.to_text().lower()}")
        return m
