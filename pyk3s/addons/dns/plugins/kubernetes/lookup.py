"""Pure lookups of the kubernetes plugin: (index, options, question) -> Outcome (spec dns.md section 2).

Name shape (P2): `<zone>` <- `svc|pod` <- namespace <- service|pod <- [endpoint | protocol <- port].
Structural names (apex, `svc.<zone>`, `<ns>.svc.<zone>`) exist without data: NODATA, except TXT which
is NXDOMAIN there (P26). Reverse names resolve ClusterIPs first, then ready endpoints (P21, P22).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype as T
import dns.rrset
from dns.rdata import Rdata
from dns.rdatatype import RdataType
from dns.rdtypes.ANY.CNAME import CNAME
from dns.rdtypes.ANY.NS import NS
from dns.rdtypes.ANY.PTR import PTR
from dns.rdtypes.ANY.TXT import TXT
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA
from dns.rdtypes.IN.SRV import SRV

from .config import KubeOptions
from .index import KubeIndex, Port, ServiceRecord

__all__ = ["Outcome", "decode_pod_ip", "lookup", "reverse_ip"]

IN = dns.rdataclass.IN
DNS_SCHEMA_VERSION = b"1.1.0"


@dataclass(slots=True)
class Outcome:
    rcode: int = dns.rcode.NOERROR
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    why: str = ""
    external: str | None = None    # ExternalName A/AAAA: target still to resolve (P11)

    @classmethod
    def nx(cls, why: str) -> Outcome:
        return cls(dns.rcode.NXDOMAIN, why=why)


def _rrset(owner: dns.name.Name | str, rdtype: RdataType, ttl: int, rdatas: Sequence[Rdata]) -> dns.rrset.RRset:
    name = owner if isinstance(owner, dns.name.Name) else dns.name.from_text(owner)
    rr = dns.rrset.RRset(name, IN, rdtype)
    for rd in rdatas:
        rr.add(rd, ttl)
    return rr


def _addr_rrsets(owner: dns.name.Name | str, addrs: list[str], qtype: RdataType, ttl: int) -> list[dns.rrset.RRset]:
    want6 = qtype == T.AAAA
    rds = [(AAAA(IN, T.AAAA, a) if want6 else A(IN, T.A, a)) for a in addrs if (":" in a) == want6]
    return [_rrset(owner, qtype, ttl, rds)] if rds else []


def decode_pod_ip(label: str) -> str | None:
    """P32: three dashes and no `--` is IPv4, anything else is tried as IPv6."""
    text = label.replace("-", ".") if label.count("-") == 3 and "--" not in label else label.replace("-", ":")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def reverse_ip(labels_rev: list[str], zone: str) -> str | None:
    """P20: exactly 4 labels under in-addr.arpa, exactly 32 nibbles under ip6.arpa."""
    if zone == "in-addr.arpa." and len(labels_rev) == 4:
        if all(x.isdigit() and len(x) <= 3 and int(x) <= 255 for x in labels_rev):
            return ".".join(str(int(x)) for x in labels_rev)
    elif zone == "ip6.arpa." and len(labels_rev) == 32:
        if all(len(x) == 1 and x in "0123456789abcdef" for x in labels_rev):
            h = "".join(labels_rev)
            return str(ipaddress.IPv6Address(":".join(h[i:i + 4] for i in range(0, 32, 4))))
    return None


def _match(p: Port, port: str | None, proto: str | None) -> bool:
    if port is None:
        return True
    return p.name == _strip(port) and p.protocol == _strip(proto or "")


def _strip(label: str) -> str:
    return label[1:] if label.startswith("_") else label


def lookup(idx: KubeIndex, opts: KubeOptions, qname: dns.name.Name, name: str, qtype: RdataType,
           zone: str) -> Outcome:
    left = name[: len(name) - len(zone)].rstrip(".") if name != zone else ""
    labels = left.split(".")[::-1] if left else []
    if zone.endswith(".arpa.") and zone in ("in-addr.arpa.", "ip6.arpa."):
        return _reverse(idx, opts, qname, labels, zone, qtype)
    return _forward(idx, opts, qname, labels, zone, qtype)


def _forward(idx: KubeIndex, opts: KubeOptions, qname: dns.name.Name, labels: list[str], zone: str,
             qtype: RdataType) -> Outcome:
    ttl = opts.ttl
    n = len(labels)
    if n == 0:
        if qtype == T.NS:
            rd = NS(IN, T.NS, dns.name.from_text("ns.dns." + zone))
            return Outcome(answer=[_rrset(qname, T.NS, ttl, [rd])], why="zone apex NS")
        if qtype == T.TXT:
            return Outcome.nx("TXT at the zone apex is NXDOMAIN (P26)")
        return Outcome(why="zone apex: no records of this type (SOA is answered by the handler)")
    if n == 1 and labels[0] == "dns-version" and qtype == T.TXT:
        return Outcome(answer=[_rrset(qname, T.TXT, 28800, [TXT(IN, T.TXT, [DNS_SCHEMA_VERSION])])],
                       why="dns-version TXT (schema 1.1.0)")
    kind = labels[0]
    if kind not in ("svc", "pod"):
        return Outcome.nx(f"label {kind!r} next to the zone is neither svc nor pod")
    if n == 1:
        return Outcome.nx("TXT on a structural name") if qtype == T.TXT else Outcome(why=f"{kind}.{zone} exists")
    ns = labels[1]
    if ns not in idx.namespaces:
        return Outcome.nx(f"namespace {ns!r} not found (or not exposed)")
    if n == 2:
        return Outcome.nx("TXT on a structural name") if qtype == T.TXT else \
            Outcome(why=f"namespace {ns} exists, no records at this name")
    if kind == "pod":
        return _pod(idx, opts, qname, labels, zone, qtype)
    rest = labels[3:]
    if len(rest) > 2:
        return Outcome.nx("too many labels left of the service name")
    svc = idx.services.get((ns, labels[2]))
    if svc is None:
        return Outcome.nx(f"Service {ns}/{labels[2]} not found")
    endpoint = rest[0] if len(rest) == 1 else None
    proto, port = (rest[0], rest[1]) if len(rest) == 2 else (None, None)
    src = f"Service {ns}/{svc.name}"
    if svc.kind == "external":
        if rest:
            return Outcome.nx(f"{src} is ExternalName: nothing below it")
        cname = _rrset(qname, T.CNAME, ttl, [CNAME(IN, T.CNAME, dns.name.from_text(svc.external))])
        if qtype == T.CNAME:
            return Outcome(answer=[cname], why=f"{src} ExternalName -> {svc.external}")
        if qtype in (T.A, T.AAAA):
            return Outcome(answer=[cname], why=f"{src} ExternalName -> {svc.external}", external=svc.external)
        return Outcome(why=f"{src} is ExternalName: only CNAME/A/AAAA have data")
    entries: list[tuple[str, Port, str | None]] = []
    if svc.kind == "clusterip" and endpoint is None:
        if opts.ignore_empty_service and not svc.endpoints:
            return Outcome.nx(f"{src} has no ready endpoints (ignore empty_service)")
        entries = [(ip, p, None) for ip in svc.cluster_ips for p in svc.ports if _match(p, port, proto)]
    else:
        for ep in svc.endpoints:
            if endpoint is not None and ep.label != endpoint:
                continue
            entries.extend((ep.address, p, ep.label) for p in ep.ports if _match(p, port, proto))
    if not entries:
        what = f"endpoint {endpoint!r} of " if endpoint else (f"port {port}/{proto} of " if port else "ready endpoints of ")
        return Outcome.nx(f"no {what}{src}")
    how = f"{src} ({svc.kind})"
    if svc.kind != "clusterip" or endpoint is not None:
        how += " via " + ", ".join(sorted({e.source for e in svc.endpoints
                                           if endpoint is None or e.label == endpoint}))
    if qtype in (T.A, T.AAAA):
        addrs = list(dict.fromkeys(a for a, _, _ in entries))
        rr = _addr_rrsets(qname, addrs, qtype, ttl)
        return Outcome(answer=rr, why=how if rr else f"{how}: no {T.to_text(qtype)} address")
    if qtype == T.SRV:
        return _srv(qname, svc, entries, zone, ttl, how)
    return Outcome(why=f"{how}: name exists, no {T.to_text(qtype)} records")


def _srv(qname: dns.name.Name, svc: ServiceRecord, entries: list[tuple[str, Port, str | None]], zone: str, ttl: int,
         how: str) -> Outcome:
    weight = max(1, 100 // len(entries))           # P14: counted before de-duplication
    base = f"{svc.name}.{svc.namespace}.svc.{zone}"
    seen: dict[tuple[str, int], None] = {}
    extra: dict[tuple[str, str], None] = {}
    for addr, p, label in entries:
        if p.port < 0:
            continue
        target = f"{label}.{base}" if label else base
        seen[(target, p.port)] = None
        extra[(target, addr)] = None
    if not seen:
        return Outcome(why=f"{how}: no ports")
    rds = [SRV(IN, T.SRV, 0, weight, port, dns.name.from_text(t)) for t, port in seen]
    additional = []
    for (target, addr) in extra:
        additional.extend(_addr_rrsets(target, [addr], T.AAAA if ":" in addr else T.A, ttl))
    return Outcome(answer=[_rrset(qname, T.SRV, ttl, rds)], additional=additional, why=how)


def _pod(idx: KubeIndex, opts: KubeOptions, qname: dns.name.Name, labels: list[str], zone: str,
         qtype: RdataType) -> Outcome:
    if opts.pods == "disabled":
        return Outcome.nx("pods disabled")
    label = labels[2]
    ip = decode_pod_ip(label)
    if ip is None:
        return Outcome.nx(f"{label!r} is not a dashed IP address")
    ns = labels[1]
    if opts.pods == "verified" and ip not in idx.pod_ips.get(ns, ()):
        return Outcome.nx(f"no pod in namespace {ns} with IP {ip} (pods verified)")
    how = f"pod {ip} in {ns} (pods {opts.pods})"
    if qtype in (T.A, T.AAAA):
        rr = _addr_rrsets(qname, [ip], qtype, opts.ttl)
        return Outcome(answer=rr, why=how if rr else f"{how}: other address family")
    if qtype == T.SRV:
        target = f"{label}.{ns}.pod.{zone}"
        rds = [SRV(IN, T.SRV, 0, 100, 0, dns.name.from_text(target))]
        return Outcome(answer=[_rrset(qname, T.SRV, opts.ttl, rds)], additional=_addr_rrsets(
            target, [ip], T.AAAA if ":" in ip else T.A, opts.ttl), why=how)
    return Outcome(why=f"{how}: no {T.to_text(qtype)} records")


def _reverse(idx: KubeIndex, opts: KubeOptions, qname: dns.name.Name, labels: list[str], zone: str, qtype: RdataType) -> Outcome:
    ip = reverse_ip(labels, zone)
    if ip is None:
        return Outcome.nx("not a complete reverse name")
    primary = opts.primary_zone
    targets: list[str] = []
    svc = idx.by_cluster_ip.get(ip)
    if svc is not None:
        targets = [f"{svc.name}.{svc.namespace}.svc.{primary}"]
        why = f"ClusterIP of Service {svc.namespace}/{svc.name}"
    else:
        pairs = idx.by_endpoint_ip.get(ip, ())
        targets = list(dict.fromkeys(f"{ep.label}.{r.name}.{r.namespace}.svc.{primary}" for r, ep in pairs))
        why = "endpoint of " + ", ".join(f"Service {r.namespace}/{r.name} ({ep.source})" for r, ep in pairs)
    if not targets:
        return Outcome.nx(f"{ip} is no ClusterIP and no ready endpoint")
    if qtype != T.PTR:
        return Outcome(why=f"{why}: only PTR has data")
    rds = [PTR(IN, T.PTR, dns.name.from_text(t)) for t in targets]
    return Outcome(answer=[_rrset(qname, T.PTR, opts.ttl, rds)], why=why)
