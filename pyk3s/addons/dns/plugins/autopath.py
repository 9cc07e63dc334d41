"""autopath [ZONES...] RESOLV-CONF — server-side search path completion, as CoreDNS's plugin/autopath.

RESOLV-CONF is a resolv.conf-like file (its last `search` or `domain` line gives the search path), or
`@kubernetes`: then the path is the client pod's own, `<namespace>.svc.<zone> svc.<zone> <zone>` and the
search domains of this server's /etc/resolv.conf, for questions in the kubernetes plugin's zones from
the address of a running pod it knows (`pods verified`); other clients get no autopath.

A question in ZONES (the server block's when none are given) whose name is below the path's first
element is asked again, by the plugins after this one, with each element in turn in place of the first
and finally bare: the first reply that is neither NXDOMAIN nor an error (SERVFAIL, REFUSED, FORMERR,
NOTIMP) goes back, with a CNAME from the name asked to the owner of its first record when that differs
(counted in coredns_autopath_success_total). When none is, the first reply goes back as it was. A
plugin that fails (raises) ends the walk, as an error does in CoreDNS; an element that would make the
name longer than 255 bytes is skipped. A question for the first element itself goes on down the chain
(CoreDNS answers it SERVFAIL).

Refused with a CorefileError: no RESOLV-CONF, a file that cannot be read or has no search path,
`@NAME` for a plugin that is not in the block or cannot give a search path (only kubernetes can), and
`@kubernetes` without `pods verified` (CoreDNS would then silently do nothing). Answers depend on the
client's address, so a block with autopath keeps its queries on the chain.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import replace
from typing import ClassVar

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype as T
import dns.rrset
from dns.rdtypes.ANY.CNAME import CNAME

from ..corefile import Directive
from ..plugin import BlockContext, ChainInfo, DnsRequest, Handler, Host, Plugin
from .kubernetes import KubernetesPlugin

__all__ = ["AutopathPlugin", "read_search"]

_ERRORS = frozenset({dns.rcode.SERVFAIL, dns.rcode.REFUSED, dns.rcode.FORMERR, dns.rcode.NOTIMP})


def _fqdn(z: str) -> str:
    return z.lower() if z.endswith(".") else z.lower() + "."


def read_search(path: str) -> list[str]:
    """The search path of a resolv.conf file: its last `search` (all domains) or `domain` line."""
    search: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.split()
            if not fields or fields[0][0] in "#;":
                continue
            if fields[0] == "search":
                search = [_fqdn(x) for x in fields[1:]]
            elif fields[0] == "domain":
                search = [_fqdn(fields[1])] if len(fields) > 1 else []
    return search


def _client_ip(addr: object) -> str | None:
    if not isinstance(addr, tuple) or not addr or not isinstance(addr[0], str):
        return None
    try:
        ip = ipaddress.ip_address(addr[0].split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _below(name: str, zone: str) -> bool:
    return zone == "." or name == zone or name.endswith("." + zone)


class AutopathPlugin(Plugin):
    name = "autopath"
    fast_safe = False
    host_resolv_conf: ClassVar[str] = "/etc/resolv.conf"   # where `@kubernetes` finds the host's search domains

    def __init__(self, zones: tuple[str, ...], search: tuple[str, ...] | None, source: str,
                 directive: Directive) -> None:
        self.zones = zones
        self.search = search                    # the file's path (no sentinel), or None with @source
        self.source = source                    # "kubernetes" for @kubernetes, "" for a file
        self.directive = directive
        self.kube: KubernetesPlugin | None = None
        self.host_search: tuple[str, ...] = ()
        self.host: Host | None = None

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> AutopathPlugin:
        if d.block:
            raise d.error(f"unknown property '{d.block[0].name}'", cls.name)
        if not d.args:
            raise d.error("no resolv-conf specified", cls.name)
        zones = tuple(_fqdn(z) for z in d.args[:-1]) or ctx.zones
        resolv = d.args[-1]
        if resolv.startswith("@"):
            return cls(zones, None, resolv[1:], d)
        path = resolv if os.path.isabs(resolv) or not ctx.corefile else \
            os.path.join(os.path.dirname(ctx.corefile), resolv)
        try:
            search = read_search(path)
        except OSError as err:
            raise d.error(f"failed to parse {resolv!r}: {err.strerror}", cls.name) from None
        if not search:
            raise d.error(f"{resolv!r} has no search path (a `search` or `domain` line)", cls.name)
        return cls(zones, tuple(search), "", d)

    def chained(self, chain: ChainInfo) -> None:
        if not self.source:
            return
        other = next((p for p in chain.plugins if p.name == self.source), None)
        if other is None:
            raise self.directive.error(f"@{self.source}: no such plugin in this server block", self.name)
        if not isinstance(other, KubernetesPlugin):
            raise self.directive.error(f"{self.source} does not implement the AutoPather interface", self.name)
        if other.opts.pods != "verified":
            raise self.directive.error("@kubernetes needs `pods verified` in the kubernetes plugin (the client "
                                       "pod's namespace gives the search path)", self.name)
        self.kube = other

    async def start(self, host: Host) -> None:
        self.host = host
        if self.kube is not None:
            try:
                self.host_search = tuple(read_search(self.host_resolv_conf))
            except OSError:
                self.host_search = ()

    def search_for(self, req: DnsRequest) -> list[str] | None:
        """The client's search path ("" last for the bare name), None for no autopath."""
        if self.kube is None:
            return [*self.search, ""] if self.search else None
        zone = self.kube.zone_of(req.name)
        ip = _client_ip(req.addr)
        ns = self.kube.pod_namespace(ip) if zone is not None and ip is not None else None
        if ns is None or zone is None:
            return None
        if zone == ".":
            first = [f"{ns}.svc.", "svc.", "."]
        else:
            first = [f"{ns}.svc.{zone}", f"svc.{zone}", zone]
        return [*first, *self.host_search, ""]

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        if not any(_below(req.name, z) for z in self.zones):
            return await next_(req)
        search = self.search_for(req)
        if not search or req.name == search[0] or not _below(req.name, search[0]):
            return await next_(req)
        cut = len(dns.name.from_text(search[0]).labels)
        base = req.qname.labels[:len(req.qname.labels) - cut]
        query = req.query
        first: dns.message.Message | None = None
        for i, suffix in enumerate(search):
            try:
                qname = dns.name.Name(base + dns.name.from_text(suffix).labels) if suffix else \
                    dns.name.Name((*base, b""))
            except dns.name.NameTooLong:
                continue
            if i == 0:
                reply = await next_(req)
            else:
                q2 = dns.message.make_query(qname, req.qtype, query.question[0].rdclass, use_edns=query.edns,
                                            payload=query.payload,
                                            want_dnssec=bool(query.ednsflags & dns.flags.DO))
                q2.id, q2.flags = query.id, query.flags
                reply = await next_(replace(req, query=q2, qname=qname, name=qname.to_text().lower()))
            if first is None:
                first = reply
            rcode = reply.rcode()
            if rcode == dns.rcode.NXDOMAIN or rcode in _ERRORS:
                req.note(f"autopath: {qname} gave {dns.rcode.to_text(rcode)}")
                continue
            if i > 0:
                self._cname(reply, req)
            if self.host is not None:
                self.host.metrics.inc("coredns_autopath_success_total", 1, server=req.server)
            req.note(f"autopath: answered for {qname} (search path element {i})")
            return reply
        assert first is not None
        req.note("autopath: no search path element answered: the first reply")
        first.question = list(query.question)
        return first

    @staticmethod
    def _cname(reply: dns.message.Message, req: DnsRequest) -> None:
        """A CNAME from the name asked to the owner of the first record that has another owner."""
        asked = req.qname
        target = next((rr for rr in reply.answer if rr.name != asked), None)
        if target is not None:
            rr = dns.rrset.RRset(asked, dns.rdataclass.IN, T.CNAME)
            rr.add(CNAME(dns.rdataclass.IN, T.CNAME, target.name), target.ttl)
            reply.answer.insert(0, rr)
        reply.question = list(req.query.question)
