"""k8s_external: Services' external addresses under zones of their own (CoreDNS plugin/k8s_external).

    k8s_external [ZONES...] { apex APEX  ttl TTL  headless  fallthrough [ZONES...] }

Names are `SERVICE.NAMESPACE.ZONE` (A, AAAA), `[_PORT._PROTO.]SERVICE.NAMESPACE.ZONE` (SRV) and, with
`headless`, `ENDPOINT.SERVICE.NAMESPACE.ZONE` for headless Services without external IPs. A Service's
external addresses are its spec.externalIPs and its status.loadBalancer.ingress IPs; an ingress given
as a hostname is a CNAME to it (resolved through the block's chain). PTR for an external IP answers
`SERVICE.NAMESPACE.<first zone>` when the reverse zone is one of ZONES. The zone apex answers SOA and NS
(`ns1.APEX.ZONE`), and `ns1.APEX.ZONE` answers the external IPs of the Service in front of this server
(the one whose endpoints hold an address this server listens on), else those addresses themselves.
Everything has TTL `ttl` (default 5, 0..3600); the SOA serial is the kubernetes index's.

The data is the kubernetes plugin's index (it must be in the same server block: a Corefile error
otherwise, as CoreDNS refuses to start). A missing name is NXDOMAIN with the zone's SOA, or goes to the
next plugin with `fallthrough`; a name that exists without records of the type asked is NODATA.
"""

from __future__ import annotations

import array
import fcntl
import ipaddress
import math
import socket
import struct
from dataclasses import dataclass, replace

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype as T
import dns.rrset
from dns.rdtypes.ANY.NS import NS
from dns.rdtypes.ANY.SOA import SOA

from ..corefile import Directive
from ..options import Fallthrough, int_arg, zone_test
from ..plugin import BlockContext, ChainInfo, DnsRequest, Handler, NotFast, Plugin, WireHop
from .kubernetes import KubernetesPlugin
from .kubernetes.index import KubeIndex, ServiceRecord

__all__ = ["ExternalOptions", "K8sExternalPlugin"]

NAME = "k8s_external"
IN = dns.rdataclass.IN
MAX_DEPTH = 10
_WILDCARD = ("", "0.0.0.0", "::")


@dataclass(frozen=True, slots=True)
class ExternalOptions:
    zones: tuple[str, ...]
    apex: str = "dns"
    ttl: int = 5
    headless: bool = False
    fall: Fallthrough = Fallthrough()


@dataclass(frozen=True, slots=True)
class _Item:
    """One address (or hostname) of a Service with one port: CoreDNS's msg.Service."""

    host: str               # an IP, or an FQDN (load balancer hostname)
    port: int               # -1: the Service has no port
    target: str             # the SRV target when `host` is an IP: SERVICE.NS.ZONE or ENDPOINT.SERVICE.NS.ZONE


def _norm(z: str) -> str:
    z = z.lower()
    return z if z.endswith(".") else z + "."


def parse_options(d: Directive, ctx: BlockContext) -> ExternalOptions:
    opts = ExternalOptions(zones=tuple(_norm(z) for z in d.args) or ctx.zones)
    for sub in d.block:
        a = sub.args
        match sub.name:
            case "ttl":
                if not a:
                    raise sub.error("ttl needs a number", NAME)
                opts = replace(opts, ttl=int_arg(sub, NAME, 0, 3600))
            case "apex":
                if not a:
                    raise sub.error("apex needs a name", NAME)
                opts = replace(opts, apex=a[0].lower().strip("."))
            case "headless":
                opts = replace(opts, headless=True)
            case "fallthrough":
                opts = replace(opts, fall=Fallthrough.parse(a))
            case _:
                raise sub.error(f"unknown property '{sub.name}'", NAME)
    return opts


def _reverse_ip(name: str) -> str | None:
    """The address of an in-addr.arpa./ip6.arpa. name, or None."""
    labels = name.rstrip(".").split(".")
    try:
        if name.endswith(".in-addr.arpa.") and len(labels) == 6:
            return str(ipaddress.IPv4Address(".".join(reversed(labels[:4]))))
        if name.endswith(".ip6.arpa.") and len(labels) == 34:
            digits = "".join(reversed(labels[:32]))
            return str(ipaddress.IPv6Address(":".join(digits[i:i + 4] for i in range(0, 32, 4))))
    except ValueError:
        return None
    return None


def _local_ips() -> list[str]:
    """This host's interface addresses (for a server listening on every address), without any traffic."""
    out: list[str] = []
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        buf = array.array("B", b"\0" * 40 * 128)
        addr, _ = buf.buffer_info()
        n = struct.unpack("iL", fcntl.ioctl(s.fileno(), 0x8912, struct.pack("iL", len(buf), addr)))[0]  # SIOCGIFCONF
        raw = buf.tobytes()[:n]
        out.extend(socket.inet_ntoa(raw[i + 20:i + 24]) for i in range(0, len(raw), 40))
    except OSError:
        pass
    finally:
        s.close()
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as f:
            for line in f:
                h = line.split()[0]
                out.append(str(ipaddress.IPv6Address(":".join(h[i:i + 4] for i in range(0, 32, 4)))))
    except OSError:
        pass
    return [ip for ip in out if not ipaddress.ip_address(ip).is_loopback]


class K8sExternalPlugin(Plugin):
    name = NAME

    def __init__(self, opts: ExternalOptions, where: Directive | None = None) -> None:
        self.opts = opts
        self._where = where
        self._mine = zone_test(opts.zones)
        self.kube: KubernetesPlugin | None = None
        self.listen: list[str] = []

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> K8sExternalPlugin:
        return cls(parse_options(d, ctx), d)

    def chained(self, chain: ChainInfo) -> None:
        self.kube = next((p for p in chain.plugins if isinstance(p, KubernetesPlugin)), None)
        if self.kube is None:
            err = "kubernetes plugin not loaded"
            raise self._where.error(err, NAME) if self._where is not None else ValueError(err)

    def listening(self, addr: tuple[str, int]) -> None:
        if addr[0] not in self.listen:
            self.listen.append(addr[0])

    def wire_hop(self) -> WireHop:
        mine = self._mine
        return WireHop(admit=lambda q: not mine(q.name))

    def _zone(self, name: str) -> str | None:
        best = None
        for z in self.opts.zones:
            if (z == "." or name == z or name.endswith("." + z)) and (best is None or len(z) > len(best)):
                best = z
        return best

    # -- records -------------------------------------------------------------------------------
    def _rr(self, owner: dns.name.Name | str, rdtype: T.RdataType, *texts: str) -> dns.rrset.RRset:
        return dns.rrset.from_text(owner, self.opts.ttl, IN, rdtype, *texts)

    def _soa(self, zone: str, idx: KubeIndex) -> dns.rrset.RRset:
        rr = dns.rrset.RRset(dns.name.from_text(zone), IN, T.SOA)
        apex = f"{self.opts.apex}.{zone}"
        rr.add(SOA(IN, T.SOA, dns.name.from_text("ns1." + apex), dns.name.from_text("hostmaster." + apex),
                   idx.serial & 0xFFFFFFFF, 7200, 1800, 86400, self.opts.ttl), self.opts.ttl)
        return rr

    def _reply(self, req: DnsRequest, zone: str, idx: KubeIndex, rcode: dns.rcode.Rcode = dns.rcode.NOERROR,
               answer: list[dns.rrset.RRset] | None = None) -> dns.message.Message:
        m = req.reply(rcode, aa=True)
        if answer:
            m.answer.extend(answer)
        else:
            m.authority.append(self._soa(zone, idx))
        return m

    def _ns_addresses(self, idx: KubeIndex) -> list[str]:
        """The external IPs of the Services in front of this server, else its own addresses."""
        local = [a for a in self.listen if a not in _WILDCARD]
        if len(local) < len(self.listen):
            local += _local_ips()
        out: list[str] = []
        found = False
        for ip in local:
            for svc, _ in idx.by_endpoint_ip.get(ip, ()):
                found = True
                out.extend(x for x in svc.external_ips if not x.endswith("."))
        return list(dict.fromkeys(out if found else local))

    def _glue(self, owner: dns.name.Name, qtypes: tuple[T.RdataType, ...], idx: KubeIndex) -> list[dns.rrset.RRset]:
        addrs = self._ns_addresses(idx)
        v4 = [a for a in addrs if ":" not in a]
        v6 = [a for a in addrs if ":" in a]
        out = []
        if T.A in qtypes and v4:
            out.append(self._rr(owner, T.A, *v4))
        if T.AAAA in qtypes and v6:
            out.append(self._rr(owner, T.AAAA, *v6))
        return out

    # -- serving -------------------------------------------------------------------------------
    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        zone = self._zone(req.name)
        if zone is None or self.kube is None:
            return await next_(req)
        if req.precompute:
            raise NotFast(NAME)
        idx = self.kube.index_for(req)
        if req.name == zone:
            return self._apex(req, zone, idx)
        apex = f"{self.opts.apex}.{zone}"
        if req.name == apex or req.name.endswith("." + apex):
            return self._sub_apex(req, zone, apex, idx)
        items, rcode = self._external(req, zone, idx)
        if not items:
            if rcode == dns.rcode.NXDOMAIN and self.opts.fall.through(req.name):
                req.note(f"k8s_external: {req.name} not found; fallthrough to the next plugin")
                return await next_(req)
            req.note(f"k8s_external: {dns.rcode.to_text(rcode)} for {req.name} (no external address)")
            return self._reply(req, zone, idx, rcode)
        m = req.reply(aa=True)
        if req.qtype in (T.A, T.AAAA):
            m.answer.extend(await self._addresses(req, items))
        elif req.qtype == T.SRV:
            answer, extra = await self._srv(req, items)
            m.answer.extend(answer)
            m.additional.extend(extra)
        elif req.qtype == T.PTR:
            m.answer.append(self._rr(req.qname, T.PTR, *dict.fromkeys(f"{i.host}{self.opts.zones[0]}" for i in items)))
        if not m.answer:
            m.authority.append(self._soa(zone, idx))
        req.note(f"k8s_external: {len(m.answer)} record set(s) for {req.name}")
        return m

    def _apex(self, req: DnsRequest, zone: str, idx: KubeIndex) -> dns.message.Message:
        m = req.reply(aa=True)
        if req.qtype == T.SOA:
            m.answer.append(self._soa(zone, idx))
        elif req.qtype == T.NS:
            ns = dns.name.from_text(f"ns1.{self.opts.apex}.{zone}")
            rr = dns.rrset.RRset(dns.name.from_text(zone), IN, T.NS)
            rr.add(NS(IN, T.NS, ns), self.opts.ttl)
            m.answer.append(rr)
            m.additional.extend(self._glue(ns, (T.A, T.AAAA), idx))
        else:
            m.authority.append(self._soa(zone, idx))
        req.note(f"k8s_external: apex of {zone}")
        return m

    def _sub_apex(self, req: DnsRequest, zone: str, apex: str, idx: KubeIndex) -> dns.message.Message:
        if req.name == apex:                                   # the apex label exists, with no records
            return self._reply(req, zone, idx)
        if req.name != "ns1." + apex:
            return self._reply(req, zone, idx, dns.rcode.NXDOMAIN)
        return self._reply(req, zone, idx, answer=self._glue(req.qname, (req.qtype,), idx))

    def _external(self, req: DnsRequest, zone: str, idx: KubeIndex) -> tuple[list[_Item], dns.rcode.Rcode]:
        """CoreDNS's Kubernetes.External: the Service's addresses with the ports the name selects."""
        if req.qtype == T.PTR:
            ip = _reverse_ip(req.name)
            if ip is not None:
                found = [_Item(f"{s.name}.{s.namespace}.", -1, "") for s in idx.services.values()
                         if ip in s.external_ips and s.namespace in idx.namespaces]
                return found, dns.rcode.NOERROR if found else dns.rcode.NXDOMAIN
        base = req.name[: len(req.name) - len(zone)].rstrip(".")
        segs = base.split(".") if base else []
        if not segs:
            return [], dns.rcode.SERVFAIL
        namespace = segs[-1]
        if namespace not in idx.namespaces:
            return [], dns.rcode.NXDOMAIN
        if len(segs) == 1:
            return [], dns.rcode.NOERROR
        service = segs[-2]
        port = proto = endpoint = ""
        rest = segs[:-2]
        if len(rest) == 1:
            endpoint = rest[0].removeprefix("_")
        elif len(rest) == 2:
            port, proto = rest[0].removeprefix("_"), rest[1].removeprefix("_")
        elif rest:
            return [], dns.rcode.NXDOMAIN
        svc = idx.services.get((namespace, service))
        if svc is None:
            return [], dns.rcode.NXDOMAIN
        items = self._items(svc, zone, port, proto, endpoint)
        rcode = dns.rcode.NOERROR if items else dns.rcode.NXDOMAIN
        return ([] if req.qtype == T.PTR else items), rcode

    def _items(self, svc: ServiceRecord, zone: str, port: str, proto: str, endpoint: str) -> list[_Item]:
        def wanted(name: str, protocol: str) -> bool:
            return (not port or port == name.lower()) and (not proto or proto == protocol.lower())

        base = f"{svc.name}.{svc.namespace}.{zone}"
        if self.opts.headless and not svc.external_ips and (svc.kind == "headless" or endpoint):
            return [_Item(ep.address, p.port, f"{ep.label}.{base}") for ep in svc.endpoints
                    if not endpoint or endpoint == ep.label for p in ep.ports if wanted(p.name, p.protocol)]
        return [_Item(ip, p.port, base) for ip in svc.external_ips for p in svc.ports if wanted(p.name, p.protocol)]

    async def _addresses(self, req: DnsRequest, items: list[_Item]) -> list[dns.rrset.RRset]:
        v6 = req.qtype == T.AAAA
        ips = [i.host for i in items if not i.host.endswith(".") and (":" in i.host) == v6]
        out = [self._rr(req.qname, req.qtype, *dict.fromkeys(ips))] if ips else []
        for host in dict.fromkeys(i.host for i in items if i.host.endswith(".")):
            out.append(self._rr(req.qname, T.CNAME, host))
            out.extend(await self._lookup(req, host, req.qtype))
        return out

    async def _lookup(self, req: DnsRequest, name: str, qtype: T.RdataType) -> list[dns.rrset.RRset]:
        """A load balancer hostname's addresses, through the block's whole chain (CoreDNS's upstream)."""
        if req.root is None or req.depth >= MAX_DEPTH:
            return []
        reply = await req.root(req.derive(name, qtype))
        return list(reply.answer)

    async def _srv(self, req: DnsRequest, items: list[_Item]) -> tuple[list[dns.rrset.RRset], list[dns.rrset.RRset]]:
        # every item has priority 0 and weight 0 (counted as 100), as CoreDNS builds them
        weight = max(1, math.floor(100.0 / (100 * len(items)) * 100))
        srv = dns.rrset.RRset(req.qname, IN, T.SRV)
        extra: list[dns.rrset.RRset] = []
        seen: set[tuple[str, str, int]] = set()
        for i in items:
            if i.port == -1:
                continue
            target = i.host if i.host.endswith(".") else i.target
            if (target, "", i.port) not in seen:
                seen.add((target, "", i.port))
                srv.update(self._rr(req.qname, T.SRV, f"0 {weight} {i.port} {target}"))
            if (target, i.host, 0) in seen:
                continue
            seen.add((target, i.host, 0))
            if i.host.endswith("."):
                extra.extend(await self._lookup(req, i.host, T.A))
                extra.extend(await self._lookup(req, i.host, T.AAAA))
            else:
                extra.append(self._rr(target, T.AAAA if ":" in i.host else T.A, i.host))
        return ([srv] if srv else []), _merge(extra)


def _merge(rrsets: list[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
    """Records of one owner and type in one RRset."""
    out: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}
    for rr in rrsets:
        key = (rr.name, rr.rdtype)
        if key in out:
            out[key].update(rr)
        else:
            out[key] = rr
    return list(out.values())
