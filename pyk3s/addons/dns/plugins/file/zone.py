"""One zone read from an RFC 1035 master file, and CoreDNS file's lookup over it.

`load_zone` reads the file with dnspython (`$ORIGIN`, `$TTL`, `$INCLUDE`), requires a SOA at the origin
and refuses records outside the zone. `ZoneData.lookup` walks the name from the apex down as CoreDNS's
file plugin does: a zone cut (NS below the apex) gives a referral with glue, a DNAME synthesises a
CNAME, the whole name gives its records (a CNAME is chased inside the zone, the rest through the
block's chain), a missing name is answered from the closest wildcard (RFC 4592), an empty non-terminal
is NOERROR/NODATA and anything else NXDOMAIN, both with the SOA in authority. Positive answers carry the
apex NS in authority and the in-zone addresses of MX/SRV/SVCB/HTTPS targets in additional.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype as T
import dns.rrset
import dns.tokenizer
import dns.zonefile
from dns.rdatatype import RdataType

__all__ = ["Lookup", "LookupResult", "ZoneData", "load_zone"]

IN = dns.rdataclass.IN
MAX_CHASE = 8
ADDITIONAL_TYPES = (T.MX, T.SRV, T.SVCB, T.HTTPS)
# `lookup` asks the block's chain for names outside the zone: (name, type) -> (rcode, answer records)
Upstream = Callable[[dns.name.Name, RdataType], Awaitable[tuple[int, list[dns.rrset.RRset]]]]


class LookupResult(enum.Enum):
    SUCCESS = "success"
    NAME_ERROR = "nxdomain"
    DELEGATION = "delegation"
    NO_DATA = "nodata"
    SERVER_FAILURE = "servfail"


@dataclass(slots=True)
class Lookup:
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    result: LookupResult = LookupResult.SUCCESS


@dataclass(frozen=True, slots=True)
class ZoneData:
    origin: dns.name.Name
    nodes: dict[dns.name.Name, dict[RdataType, dns.rrset.RRset]]
    ents: frozenset[dns.name.Name]        # names that have a name below them (empty non-terminals among them)
    soa: dns.rrset.RRset
    ns: dns.rrset.RRset | None
    serial: int
    stamp: tuple[float, int]              # mtime, size of the file it came from

    def rrset(self, name: dns.name.Name, rdtype: RdataType, owner: dns.name.Name | None = None
              ) -> dns.rrset.RRset | None:
        rr = self.nodes.get(name, {}).get(rdtype)
        if rr is None or owner is None:
            return rr
        out = dns.rrset.RRset(owner, IN, rdtype)
        out.update(rr)
        return out

    def _found(self, name: dns.name.Name) -> bool:
        """The name holds records (the apex only when it has more than its SOA and NS, as CoreDNS's tree)."""
        node = self.nodes.get(name)
        if node is None:
            return False
        if name == self.origin:
            return any(t not in (T.SOA, T.NS) for t in node)
        return bool(node)

    def _apex_ns(self) -> list[dns.rrset.RRset]:
        return [self.ns] if self.ns is not None else []

    def _glue(self, ns: dns.rrset.RRset) -> list[dns.rrset.RRset]:
        out = []
        for rd in ns:
            if rd.target.is_subdomain(ns.name):
                out += [rr for t in (T.A, T.AAAA) if (rr := self.rrset(rd.target, t)) is not None]
        return out

    def _additional(self, answer: list[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
        out: list[dns.rrset.RRset] = []
        seen: set[dns.name.Name] = set()
        for rr in answer:
            if rr.rdtype not in ADDITIONAL_TYPES:
                continue
            for rd in rr:
                target = rd.exchange if rr.rdtype == T.MX else rd.target
                if target in seen or not target.is_subdomain(self.origin):
                    continue
                seen.add(target)
                out += [a for t in (T.A, T.AAAA) if (a := self.rrset(target, t)) is not None]
        return out

    def _delegation(self, name: dns.name.Name, qname: dns.name.Name, qtype: RdataType) -> Lookup | None:
        if name == self.origin:
            return None
        ns = self.rrset(name, T.NS)
        if ns is None or (qtype == T.DS and name == qname):
            return None
        return Lookup([], [ns], self._glue(ns), LookupResult.DELEGATION)

    def _cut_above(self, target: dns.name.Name, qtype: RdataType) -> Lookup | None:
        """The first zone cut between the apex and `target` (inclusive)."""
        if not target.is_subdomain(self.origin):
            return None
        for depth in range(len(self.origin.labels) + 1, len(target.labels) + 1):
            name = dns.name.Name(target.labels[len(target.labels) - depth:])
            if name in self.nodes and (cut := self._delegation(name, target, qtype)) is not None:
                return cut
        return None

    async def lookup(self, qname: dns.name.Name, qtype: RdataType, upstream: Upstream) -> Lookup:
        qname = qname.canonicalize()
        if qname == self.origin and qtype == T.SOA:
            return Lookup([self.soa], self._apex_ns())
        if qname == self.origin and qtype == T.NS:
            ns = self._apex_ns()
            return Lookup(ns, [], self._glue(ns[0]) if ns else [])
        wild: dns.name.Name | None = None
        found = False
        for depth in range(len(self.origin.labels), len(qname.labels) + 1):
            name = dns.name.Name(qname.labels[len(qname.labels) - depth:])
            found = self._found(name)
            if not found:
                if depth > len(self.origin.labels):
                    star = dns.name.Name((b"*", *name.labels[1:]))
                    if star in self.nodes or star in self.ents:
                        wild = star
                continue
            dname = self.rrset(name, T.DNAME)
            if dname is not None and qname != name:
                return await self._dname(qname, qtype, dname, upstream)
            if (cut := self._delegation(name, qname, qtype)) is not None:
                return cut
        if found:
            return await self._records(qname, qname, qtype, upstream)
        if wild is not None and not self._closer_ent(qname, wild):
            if wild not in self.nodes:
                return Lookup([], [self.soa], [], LookupResult.NO_DATA)
            return await self._records(wild, qname, qtype, upstream)
        if qname in self.ents:
            return Lookup([], [self.soa], [], LookupResult.SUCCESS)
        return Lookup([], [self.soa], [], LookupResult.NAME_ERROR)

    def _closer_ent(self, qname: dns.name.Name, wild: dns.name.Name) -> bool:
        """An empty non-terminal between the wildcard's parent and qname is the closest encloser (RFC 4592)."""
        parent = wild.parent()
        name = qname.parent()
        while name != parent and name.is_subdomain(parent):
            if name in self.ents:
                return True
            name = name.parent()
        return False

    async def _records(self, source: dns.name.Name, qname: dns.name.Name, qtype: RdataType,
                       upstream: Upstream) -> Lookup:
        """The records of `source` (the name itself or its wildcard) under the owner `qname`."""
        cname = self.rrset(source, T.CNAME, qname)
        if cname is not None and qtype != T.CNAME:
            return await self._chase([cname], qtype, upstream)
        rr = self.rrset(source, qtype, qname)
        if rr is None:
            return Lookup([], [self.soa], [], LookupResult.NO_DATA)
        return Lookup([rr], self._apex_ns(), self._additional([rr]))

    async def _dname(self, qname: dns.name.Name, qtype: RdataType, dname: dns.rrset.RRset,
                     upstream: Upstream) -> Lookup:
        target = dns.name.Name(qname.labels[:len(qname.labels) - len(dname.name.labels)]
                               + dname[0].target.labels)
        if target == qname:
            return Lookup(result=LookupResult.SERVER_FAILURE)
        synth = dns.rrset.from_text(qname, dname.ttl, IN, T.CNAME, target.to_text())
        if qtype == T.CNAME:
            return Lookup([dname, synth], self._apex_ns())
        out = await self._chase([synth], qtype, upstream)
        out.answer.insert(0, dname)
        return out

    async def _chase(self, answer: list[dns.rrset.RRset], qtype: RdataType, upstream: Upstream) -> Lookup:
        """Follow CNAMEs inside the zone; a target outside it (or not in it) is asked of the chain."""
        for _ in range(MAX_CHASE + 1):
            target: dns.name.Name = answer[-1][0].target
            if (cut := self._cut_above(target, qtype)) is not None:
                return Lookup(answer, cut.authority, cut.additional, LookupResult.DELEGATION)
            if not self._found(target) or qtype in (T.NS, T.SOA) and target == self.origin:
                rcode, records = await upstream(target, qtype)
                answer += records
                result = LookupResult.SUCCESS
                if rcode == 3:
                    result = LookupResult.NAME_ERROR
                elif rcode == 2:
                    result = LookupResult.SERVER_FAILURE
                elif rcode == 0 and not records:
                    result = LookupResult.NO_DATA
                negative = result in (LookupResult.NAME_ERROR, LookupResult.NO_DATA)
                return Lookup(answer, [self.soa] if negative else self._apex_ns(), self._additional(answer),
                              result)
            more = self.rrset(target, T.CNAME)
            if more is None:
                rr = self.rrset(target, qtype)
                if rr is not None:
                    answer.append(rr)
                return Lookup(answer, self._apex_ns(), self._additional(answer))
            answer.append(more)
        return Lookup(answer, self._apex_ns(), self._additional(answer))


# a relative $INCLUDE names a file beside the zone file (miekg/dns), not one in the working directory
_INCLUDE = re.compile(r"^(\$INCLUDE[ \t]+)([^/\s\"][^\s]*)", re.MULTILINE | re.IGNORECASE)


class _Manager(dns.zonefile.RRSetsReaderManager):
    """Collects a file's RRsets: the reader sees the root as its zone, so that records outside the origin
    reach `load_zone` (which refuses them) instead of being skipped; a SOA must be at the origin."""

    def __init__(self, origin: dns.name.Name) -> None:
        super().__init__(dns.name.root, False, IN)
        self.zone_origin = origin

    def origin_information(self) -> tuple[dns.name.Name, bool, dns.name.Name]:
        return dns.name.root, False, self.zone_origin


def load_zone(path: str, origin: str) -> ZoneData:
    """Read `path` as the zone `origin` (a record without TTL and no $TTL gets 3600, as miekg/dns);
    ValueError (file, reason) when it cannot serve."""
    st = os.stat(path)
    origin_name = dns.name.from_text(origin)
    with open(path, encoding="utf-8") as f:
        text = _INCLUDE.sub(lambda m: m.group(1) + os.path.join(os.path.dirname(path), m.group(2)), f.read())
    manager = _Manager(origin_name)
    try:
        with manager.writer(True) as txn:
            tok = dns.tokenizer.Tokenizer(text, path)
            reader = dns.zonefile.Reader(tok, IN, txn, allow_include=True, default_ttl=3600)
            reader.current_origin = reader.last_name = origin_name
            reader.read()
    except (dns.exception.DNSException, UnicodeError, OSError, ValueError) as err:
        raise ValueError(f"failed to parse file {path!r} for origin {origin}: {err}") from None
    nodes: dict[dns.name.Name, dict[RdataType, dns.rrset.RRset]] = {}
    ents: set[dns.name.Name] = set()
    for rr in manager.rrsets:
        name = rr.name.canonicalize()
        if not name.is_subdomain(origin_name):
            raise ValueError(f"failed to parse file {path!r} for origin {origin}: {name} is out of zone data")
        if rr.rdclass != IN:
            raise ValueError(f"file {path!r}: {name} {dns.rdataclass.to_text(rr.rdclass)}: only class IN is served")
        have = nodes.setdefault(name, {}).get(rr.rdtype)
        if have is not None:
            have.update(rr)
        else:
            nodes[name][rr.rdtype] = dns.rrset.RRset(name, IN, rr.rdtype)
            nodes[name][rr.rdtype].update(rr)
        while name != origin_name:
            name = name.parent()
            ents.add(name)
    soa = nodes.get(origin_name, {}).get(T.SOA)
    if soa is None:
        raise ValueError(f"file {path!r} has no SOA record for origin {origin}")
    return ZoneData(origin_name, nodes, frozenset(ents), soa, nodes[origin_name].get(T.NS), soa[0].serial,
                    (st.st_mtime, st.st_size))
