"""Services + EndpointSlices + this node's pods -> the text of one nftables ruleset (pure, no I/O).

One ``inet`` table serves both address families: every Service of a family the cluster has (its
``spec.ipFamilies``) gets that family's ClusterIP, externalIP, LoadBalancer and NodePort rules, balanced
over the EndpointSlices of that address type; IPv6 chains carry an ``/ipv6`` suffix. Pod traffic leaving
the cluster is masqueraded for IPv4, and for IPv6 only with ``--flannel-ipv6-masq`` (K3s's default).

Rules (kube-proxy's nftables mode, trimmed to what pyk3s needs):
- ``services`` (jumped from nat prerouting and output) DNATs ClusterIPs, externalIPs and LoadBalancer
  ingress IPs; NodePorts match on ``fib daddr type local`` (any node address, 127.0.0.1 included: the
  agent turns on route_localnet on its pods' veths only); hostPorts likewise, like CNI portmap.
- Several pyk3s nodes can share one network namespace (test clusters on one machine, each node address
  on a link of its own), where every node's address is local to every other. Each table publishes its
  node's addresses in ``node-addresses`` (``node-addresses-v6``); the addresses other tables publish
  (``foreign``, read by the proxier) are left out of this node's NodePort and hostPort rules, so one
  node never answers, or rejects, a connection to another node's address. A node alone in its
  namespace gets exactly kube-proxy's and portmap's any-local-address rules.
- A service port with endpoints gets ``svc-…`` (random ``numgen`` over its endpoints, ClientIP affinity
  via dynamic sets) and one ``sep-…`` chain per endpoint. Only ready endpoints; if none is ready the
  serving+terminating ones.
- Traffic arriving from outside (NodePort, externalIP, LB IP) gets ``ext-…``: marked for masquerade with
  externalTrafficPolicy Cluster; with Local only local endpoints and no SNAT (except from the host itself
  or from pods, which take the cluster path). That masquerade keeps TCP source ports (nat-postrouting).
- Hairpin (pod reaching itself through a Service) is marked for masquerade in its ``sep-…`` chain.
- Services with no usable endpoints are rejected (filter hooks), and any other packet still addressed to
  the service CIDR is rejected too, so unknown ClusterIPs never leave the node.
- This node's pod traffic leaving the cluster CIDR is masqueraded. Its pods' veths are routed links in
  one interface group (``iifgroup``/``oifgroup``, :func:`pyk3s.agent.cni.bridge.pod_link_group`), not
  ports of the bridge: a node's pods are told apart from another node's in the same namespace by it.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pyk3s.agent.cni.bridge import pod_link_group
from pyk3s.k3s.names import SERVICE_NAME_LABEL

__all__ = ["FAMILY", "MASQ_MARK", "NODE_ADDRESS_SETS", "TABLE", "ProxyConfig", "compile_ruleset", "table_names"]

TABLE = "pyk3s"
NODE_ADDRESS_SETS = ("node-addresses", "node-addresses-v6")  # published by every table, IPv4 and IPv6
FAMILY = "inet"
MASQ_MARK = 0x4000
_DEFAULT_AFFINITY = 10800


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    node_name: str
    cluster_cidrs: tuple[str, ...] = ("10.42.0.0/16",)
    service_cidrs: tuple[str, ...] = ("10.43.0.0/16",)
    bridge_name: str = "pyk3s0"
    table: str = TABLE
    masquerade_ipv6: bool = False     # --flannel-ipv6-masq
    node_addresses: tuple[str, ...] = ()  # this node's addresses (node IPs, external IPs), published
    pod_gateways: tuple[str, ...] = ()    # the gateway address of each of this node's pod CIDRs

    def families(self) -> tuple[_Fam, ...]:
        versions = {ipaddress.ip_network(c, strict=False).version for c in self.cluster_cidrs + self.service_cidrs}
        return tuple(_Fam(v) for v in sorted(versions))


@dataclass(frozen=True, slots=True)
class _Fam:
    """How one address family is spelled in an inet table."""

    version: int

    @property
    def addr(self) -> str:
        return "ip" if self.version == 4 else "ip6"

    @property
    def nfproto(self) -> str:
        return "ipv4" if self.version == 4 else "ipv6"

    @property
    def set_type(self) -> str:
        return "ipv4_addr" if self.version == 4 else "ipv6_addr"

    @property
    def name(self) -> str:
        return f"IPv{self.version}"

    @property
    def suffix(self) -> str:
        return "" if self.version == 4 else "-v6"

    def target(self, ip: str, port: int) -> str:
        return f"{ip}:{port}" if self.version == 4 else f"[{ip}]:{port}"


@dataclass(slots=True)
class _Out:
    sets: list[str] = field(default_factory=list)
    chains: dict[str, list[str]] = field(default_factory=dict)
    no_endpoint: dict[int, list[str]] = field(default_factory=lambda: {4: [], 6: []})
    no_endpoint_nodeports: dict[int, list[str]] = field(default_factory=lambda: {4: [], 6: []})

    def chain(self, name: str) -> list[str]:
        return self.chains.setdefault(name, [])


def table_names(config: ProxyConfig) -> tuple[str, ...]:
    return (f"{FAMILY} {config.table}",)


def _of(version: int, addrs: Iterable[str]) -> list[str]:
    out = []
    for a in addrs:
        try:
            if ipaddress.ip_address(a).version == version:
                out.append(a)
        except ValueError:
            continue
    return out


def _nets_of(version: int, cidrs: Iterable[str]) -> list[str]:
    return [c for c in cidrs if ipaddress.ip_network(c, strict=False).version == version]


def _valid_nets(cidrs: Iterable[str]) -> list[str]:
    out = []
    for c in cidrs:
        try:
            out.append(str(ipaddress.ip_network(c, strict=False)))
        except ValueError:
            continue
    return out


def _set_expr(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _chain_id(kind: str, *parts: str) -> str:
    text = "/".join(parts)
    digest = hashlib.sha256(f"{kind}:{text}".encode()).hexdigest()[:8]
    return f"{kind}-{digest}-{text}"


def _endpoints_for(slices: Sequence[Mapping], port_name: str, protocol: str, fam: _Fam,
                   ) -> list[tuple[str, int, str, bool, bool]]:
    """(ip, port, nodeName, ready, serving_terminating) for one service port, deduplicated."""
    seen: dict[tuple[str, int], tuple[str, int, str, bool, bool]] = {}
    for sl in slices:
        if sl.get("addressType", "IPv4") != fam.name:
            continue
        port = None
        for p in sl.get("ports") or []:
            if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP") == protocol:
                port = p.get("port")
        if port is None:
            continue
        for ep in sl.get("endpoints") or []:
            cond = ep.get("conditions") or {}
            ready = cond.get("ready") is not False
            serving = cond.get("serving", cond.get("ready")) is not False
            terminating = cond.get("terminating") is True
            for addr in _of(fam.version, ep.get("addresses") or []):
                seen.setdefault((addr, int(port)), (addr, int(port), ep.get("nodeName") or "",
                                                    ready and not terminating, serving and terminating))
    return sorted(seen.values())


def _usable(eps: list[tuple[str, int, str, bool, bool]]) -> list[tuple[str, int, str]]:
    ready = [(a, p, n) for a, p, n, r, _ in eps if r]
    if ready:
        return ready
    return [(a, p, n) for a, p, n, _, st in eps if st]


def _balance(out: _Out, chain: str, targets: list[str], affinity: int | None, fam: _Fam) -> None:
    rules = out.chain(chain)
    if affinity:
        for t in targets:
            rules.append(f"{fam.addr} saddr @{_aff_set(t)} goto {t}")
    if len(targets) == 1:
        rules.append(f"goto {targets[0]}")
    else:
        vmap = ", ".join(f"{i} : goto {t}" for i, t in enumerate(targets))
        rules.append(f"numgen random mod {len(targets)} vmap {{ {vmap} }}")


def _aff_set(sep_chain: str) -> str:
    return "aff-" + hashlib.sha256(sep_chain.encode()).hexdigest()[:12]


def _service(out: _Out, svc: Mapping, slices: Sequence[Mapping], config: ProxyConfig, fam: _Fam) -> None:
    meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
    ns, name = meta.get("namespace", "default"), meta.get("name", "")
    stype = spec.get("type") or "ClusterIP"
    if stype == "ExternalName" or fam.name not in (spec.get("ipFamilies") or ["IPv4"]):
        return
    v, a = fam.version, fam.addr
    cluster_nets = _nets_of(v, config.cluster_cidrs)
    cluster_ips = _of(v, [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP") or ""]) if ip != "None"])
    external = _of(v, spec.get("externalIPs") or [])
    lb_ips: list[str] = []
    if stype == "LoadBalancer":
        lb_ips = _of(v, (i.get("ip", "") for i in ((svc.get("status") or {}).get("loadBalancer") or {})
                         .get("ingress") or []))
        external += lb_ips
    # loadBalancerSourceRanges guard the LB IPs (like kube-proxy's firewall chain); the LB IPs
    # themselves stay allowed so the node can still reach its own load balancer.
    source_ranges = [r.strip() for r in spec.get("loadBalancerSourceRanges") or [] if r.strip()]
    allowed = _set_expr(_nets_of(v, _valid_nets(source_ranges)) + lb_ips) if source_ranges and lb_ips else ""
    local_policy = (spec.get("externalTrafficPolicy") or "Cluster") == "Local"
    affinity = None
    if spec.get("sessionAffinity") == "ClientIP":
        affinity = int(((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
                       .get("timeoutSeconds") or _DEFAULT_AFFINITY)
    only = "" if len(config.families()) == 1 else f"meta nfproto {fam.nfproto} "
    for port in spec.get("ports") or []:
        proto = (port.get("protocol") or "TCP").upper()
        if proto not in ("TCP", "UDP"):
            continue
        l4 = proto.lower()
        pname = port.get("name") or ""
        sport = int(port["port"])
        node_port = int(port.get("nodePort") or 0) if stype in ("NodePort", "LoadBalancer") else 0
        ident = (ns, name, l4, pname or str(sport)) + (("ipv6",) if v == 6 else ())
        eps = _usable(_endpoints_for(slices, pname, proto, fam))
        if not eps:
            for ip in cluster_ips + external:
                out.no_endpoint[v].append(f"{ip} . {l4} . {sport}")
            if node_port:
                out.no_endpoint_nodeports[v].append(f"{l4} . {node_port}")
            continue
        svc_chain = _chain_id("svc", *ident)
        seps = []
        for addr, eport, _node in eps:
            sep = _chain_id("sep", *ident, f"{addr.replace(':', '.')}_{eport}")
            seps.append(sep)
            rules = out.chain(sep)
            rules.append(f"{a} saddr {addr} meta mark set meta mark | {MASQ_MARK:#x}")
            if affinity:
                out.sets.append(f"set {_aff_set(sep)} {{ type {fam.set_type}; flags dynamic,timeout; "
                                f"timeout {affinity}s; }}")
                rules.append(f"update @{_aff_set(sep)} {{ {a} saddr }}")
            rules.append(f"meta l4proto {l4} dnat {a} to {fam.target(addr, eport)}")
        _balance(out, svc_chain, seps, affinity, fam)
        services = out.chain("services")
        for ip in cluster_ips:
            services.append(f"{a} daddr {ip} {l4} dport {sport} goto {svc_chain}")
        if not (external or node_port):
            continue
        ext = _chain_id("ext", *ident)
        rules = out.chain(ext)
        if local_policy:
            rules.append(f"fib saddr type local meta mark set meta mark | {MASQ_MARK:#x} goto {svc_chain}")
            if cluster_nets:
                rules.append(f"{a} saddr {_set_expr(cluster_nets)} goto {svc_chain}")
            local = [s for s, (_a, _p, n) in zip(seps, eps, strict=True) if n == config.node_name]
            if local:
                _balance(out, _chain_id("svl", *ident), local, None, fam)
                rules.append(f"goto {_chain_id('svl', *ident)}")
            else:
                rules.append("drop")
        else:
            rules.append(f"meta mark set meta mark | {MASQ_MARK:#x}")
            rules.append(f"goto {svc_chain}")
        for ip in external:
            if allowed and ip in lb_ips:
                services.append(f"{a} daddr {ip} {l4} dport {sport} {a} saddr != {allowed} drop")
            services.append(f"{a} daddr {ip} {l4} dport {sport} goto {ext}")
        if node_port:
            out.chain("nodeports").append(f"{only}{l4} dport {node_port} goto {ext}")


def _host_ports(out: _Out, pods: Iterable[Mapping], config: ProxyConfig) -> None:
    rules = out.chain("hostports")
    seen: set[tuple[str, str, int, int]] = set()
    fams = config.families()
    for pod in sorted(pods, key=lambda p: ((p.get("metadata") or {}).get("namespace", ""),
                                            (p.get("metadata") or {}).get("name", ""))):
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        if spec.get("nodeName") != config.node_name or spec.get("hostNetwork"):
            continue
        if status.get("phase") in ("Succeeded", "Failed") or (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        all_ips = [i.get("ip", "") for i in status.get("podIPs") or []] or [status.get("podIP") or ""]
        for fam in fams:
            pod_ips = _of(fam.version, all_ips)
            if not pod_ips:
                continue
            only = "" if len(fams) == 1 else f"meta nfproto {fam.nfproto} "
            for c in spec.get("containers") or []:
                for p in c.get("ports") or []:
                    hp = int(p.get("hostPort") or 0)
                    if not hp:
                        continue
                    l4 = (p.get("protocol") or "TCP").lower()
                    host_ip = p.get("hostIP") or ""
                    if host_ip in ("0.0.0.0", "::"):
                        host_ip = ""
                    if host_ip and not _of(fam.version, [host_ip]):
                        continue
                    key = (l4, host_ip, hp, fam.version)
                    if key in seen or l4 not in ("tcp", "udp"):
                        continue
                    seen.add(key)
                    match = f"{fam.addr} daddr {host_ip} " if host_ip else only
                    rules.append(f"{match}{l4} dport {hp} meta mark set meta mark | {MASQ_MARK:#x} "
                                 f"dnat {fam.addr} to {fam.target(pod_ips[0], int(p['containerPort']))}")


def _address_set(name: str, fam: _Fam, addrs: Sequence[str]) -> str:
    elements = f"elements = {{ {', '.join(sorted(set(addrs)))} }}; " if addrs else ""
    return f"  set {name} {{ type {fam.set_type}; {elements}}}"


def compile_ruleset(config: ProxyConfig, services: Iterable[Mapping], slices: Iterable[Mapping],
                    pods: Iterable[Mapping] = (), foreign: Iterable[str] = ()) -> str:
    """The full ``nft -f`` input: (re)create table ``inet <config.table>`` with every rule; ``foreign``
    are addresses other pyk3s nodes of this network namespace publish (left to their own rules)."""
    by_service: dict[tuple[str, str], list[Mapping]] = {}
    for sl in slices:
        meta = sl.get("metadata") or {}
        svc_name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if svc_name:
            by_service.setdefault((meta.get("namespace", "default"), svc_name), []).append(sl)
    fams = config.families()
    foreign = sorted(set(foreign) - set(config.node_addresses))
    out = _Out()
    out.chain("services")
    out.chain("nodeports")
    for fam in fams:
        if _of(fam.version, foreign):
            for chain in ("nodeports", "hostports"):
                out.chain(chain).append(f"{fam.addr} daddr @foreign-addresses{fam.suffix} return")
    for svc in sorted(services, key=lambda s: (s["metadata"].get("namespace", ""), s["metadata"]["name"])):
        meta = svc.get("metadata") or {}
        for fam in fams:
            _service(out, svc, by_service.get((meta.get("namespace", "default"), meta.get("name", "")), []),
                     config, fam)
    _host_ports(out, pods, config)
    out.chain("services").append("fib daddr type local jump nodeports")

    t = config.table
    lines = [f"table {FAMILY} {t}", f"delete table {FAMILY} {t}", f"table {FAMILY} {t} {{"]
    for fam in fams:
        v, sx = fam.version, fam.suffix
        lines.append(f"  set no-endpoint-services{sx} {{ type {fam.set_type} . inet_proto . inet_service; "
                     + (f"elements = {{ {', '.join(sorted(set(out.no_endpoint[v])))} }}; " if out.no_endpoint[v]
                        else "")
                     + "}")
        lines.append(f"  set no-endpoint-nodeports{sx} {{ type inet_proto . inet_service; "
                     + (f"elements = {{ {', '.join(sorted(set(out.no_endpoint_nodeports[v])))} }}; "
                        if out.no_endpoint_nodeports[v] else "")
                     + "}")
    for fam, name in zip((_Fam(4), _Fam(6)), NODE_ADDRESS_SETS, strict=True):
        lines.append(_address_set(name, fam, _of(fam.version, config.node_addresses)))
    for fam in fams:
        if _of(fam.version, foreign):
            lines.append(_address_set(f"foreign-addresses{fam.suffix}", fam, _of(fam.version, foreign)))
    for s in sorted(set(out.sets)):
        lines.append(f"  {s}")
    lines.append("  chain nat-prerouting { type nat hook prerouting priority -100; policy accept;\n"
                 "    jump services\n    fib daddr type local jump hostports\n  }")
    lines.append("  chain nat-output { type nat hook output priority -100; policy accept;\n"
                 "    jump services\n    fib daddr type local jump hostports\n  }")
    # TCP masquerade keeps the client's source port where it is free, so a client reusing a port reaches
    # the endpoint on the same 4-tuple as before. With fully-random a reused client tuple gets a new port
    # while the endpoint still holds TIME_WAIT for the old one, and later connections land on such
    # tuples; as Linux derives the TCP timestamp offset from each connection's own 4-tuple, PAWS then
    # refuses their SYN and the client waits a 1 s retransmit. UDP has no TIME_WAIT and keeps
    # fully-random against conntrack insert races.
    marked = f"meta mark & {MASQ_MARK:#x} == {MASQ_MARK:#x}"
    # A pod's veth has no address of its own, so masquerading into it would take whichever address the
    # kernel finds first on another link: the pod sees the node's gateway address instead, as on a bridge
    links = pod_link_group(config.bridge_name)
    post: list[str] = []
    for gw in config.pod_gateways:
        fam = _Fam(6 if ":" in gw else 4)
        into_pods = f"oifgroup {links:#x} meta nfproto {fam.nfproto} {marked}"
        post += [f"{into_pods} meta l4proto tcp snat {fam.addr} to {gw}",
                 f"{into_pods} snat {fam.addr} to {gw} fully-random"]
    post += [f"{marked} meta l4proto tcp masquerade", f"{marked} masquerade fully-random"]
    for fam in fams:
        cluster_nets = _nets_of(fam.version, config.cluster_cidrs)
        if cluster_nets and (fam.version == 4 or config.masquerade_ipv6):
            nets = _set_expr(cluster_nets)
            # only this node's pods (they arrive from its pod links): traffic of another cluster on the
            # machine that shares the address range, or a link it crosses, is not ours to rewrite
            post.append(f'iifgroup {links:#x} {fam.addr} saddr {nets} {fam.addr} daddr != {nets} '
                        f'oifgroup != {links:#x} masquerade fully-random')
    lines.append("  chain nat-postrouting { type nat hook postrouting priority 100; policy accept;\n"
                 + "".join(f"    {r}\n" for r in post) + "  }")
    checks = []
    for fam in fams:
        only = "" if len(fams) == 1 else f"meta nfproto {fam.nfproto} "
        checks.append(f"{fam.addr} daddr . meta l4proto . th dport @no-endpoint-services{fam.suffix} reject")
        if _of(fam.version, foreign):
            only = f"{fam.addr} daddr != @foreign-addresses{fam.suffix} "
        checks.append(f"{only}fib daddr type local meta l4proto . th dport @no-endpoint-nodeports{fam.suffix} reject")
    for fam in fams:
        service_nets = _nets_of(fam.version, config.service_cidrs)
        if service_nets:
            checks.append(f"{fam.addr} daddr {_set_expr(service_nets)} reject")
    lines.append("  chain reject-checks {\n" + "".join(f"    {r}\n" for r in checks) + "  }")
    for hook in ("input", "forward", "output"):
        lines.append(f"  chain filter-{hook} {{ type filter hook {hook} priority 0; policy accept;\n"
                     "    ct state new jump reject-checks\n  }")
    for name, rules in out.chains.items():
        body = "".join(f"    {r}\n" for r in rules)
        lines.append(f"  chain {name} {{\n{body}  }}")
    lines.append("}")
    return "\n".join(lines) + "\n"
