"""Is a connection allowed, and why: NetworkPolicy semantics applied to one (source, destination,
protocol, port), with the policies and rules that decide each side (pure).

A connection passes when the source's egress allows it (or the source is not an isolated pod) *and*
the destination's ingress allows it (or the destination is not an isolated pod). Two exceptions, as
the data path has them: a pod reaches itself, and a node reaches the pods it runs (kubelet probes).
The agent's compiler (:mod:`pyk3s.netpol.index`) is built from the same predicates defined here:
:func:`selects`, :func:`peer_matches` and :func:`rule_ports`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .model import (
    EGRESS,
    INGRESS,
    PROTOCOLS,
    NamespaceInfo,
    PodInfo,
    Policy,
    PolicyPeer,
    TrafficRule,
    parse_ip,
)
from .ports import ICMP, PortSet, resolve_ports

__all__ = ["ClusterView", "ConnectionEnd", "RuleMatch", "Side", "Verdict", "evaluate", "peer_matches", "rule_ports",
           "selects"]


@dataclass(frozen=True, slots=True)
class ConnectionEnd:
    """One end of a connection: a pod (with the address used) or a bare address."""
    ip: str
    pod: PodInfo | None = None

    def __str__(self) -> str:
        return f"{self.pod.key} ({self.ip})" if self.pod is not None else self.ip


def selects(policy: Policy, pod: PodInfo) -> bool:
    return pod.namespace == policy.namespace and not pod.host_network and policy.pod_selector.matches(pod.labels)


def peer_matches(policy: Policy, peer: PolicyPeer, ep: ConnectionEnd, ns_labels: Mapping[str, Mapping[str, str]]) -> bool:
    """Does ``peer`` of ``policy`` match endpoint ``ep``? Selectors match pods, ipBlocks addresses."""
    if peer.ip_block is not None:
        ip = parse_ip(ep.ip)
        return ip is not None and peer.ip_block.contains(ip)
    pod = ep.pod
    if pod is None or pod.host_network:
        return False
    if peer.namespace_selector is None:
        if pod.namespace != policy.namespace:
            return False
    elif not peer.namespace_selector.matches(ns_labels.get(pod.namespace, {})):
        return False
    return peer.pod_selector is None or peer.pod_selector.matches(pod.labels)


def rule_ports(rule: TrafficRule, direction: str, src: ConnectionEnd, dst: ConnectionEnd) -> PortSet:
    """Ports a rule opens for this pair: named ports take their numbers from the destination pod."""
    del direction, src  # named ports always resolve on the destination, whichever side enforces
    return resolve_ports(rule.ports, dst.pod)


@dataclass(frozen=True, slots=True)
class RuleMatch:
    policy: str
    direction: str
    index: int
    peer: str  # which peer matched ("any peer" for a rule without peers)
    ports: str  # what the rule opens for this pair

    def __str__(self) -> str:
        where = "ingress" if self.direction == INGRESS else "egress"
        return f"{self.policy} {where}[{self.index}] ({self.peer}; ports {self.ports})"


@dataclass(frozen=True, slots=True)
class Side:
    direction: str
    pod: str = ""  # the pod this side concerns ("" for a bare address: nothing to enforce)
    isolated: bool = False
    policies: tuple[str, ...] = ()  # policies selecting the pod for this direction
    allowed_by: tuple[RuleMatch, ...] = ()
    near_misses: tuple[str, ...] = ()  # rules whose peer matched but not the port
    failed: tuple[str, ...] = ()  # isolating policies that could not be read (they allow nothing)

    @property
    def allowed(self) -> bool:
        return not self.isolated or bool(self.allowed_by)


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    src: ConnectionEnd
    dst: ConnectionEnd
    protocol: str
    port: int
    egress: Side
    ingress: Side
    note: str = ""

    def lines(self) -> list[str]:
        what = "ICMP" if self.protocol == "ICMP" else f"{self.port}/{self.protocol}"
        head = f"{self.src} -> {self.dst} {what}: {'ALLOWED' if self.allowed else 'DENIED'}"
        out = [head]
        if self.note:
            out.append(f"  {self.note}")
            return out
        for side, who in ((self.egress, "egress of the source"), (self.ingress, "ingress of the destination")):
            if not side.pod:
                out.append(f"  {who}: not a pod, nothing to enforce")
                continue
            if not side.isolated:
                out.append(f"  {who} ({side.pod}): not isolated (no policy with {side.direction} selects it)")
                continue
            out.append(f"  {who} ({side.pod}): isolated by {', '.join(side.policies)}")
            for m in side.allowed_by:
                out.append(f"    allowed by {m}")
            if not side.allowed_by:
                out.append("    no rule allows it")
                out.extend(f"    {n}" for n in side.near_misses)
            out.extend(f"    {f} (cannot be read: allows nothing)" for f in side.failed)
        return out


@dataclass
class ClusterView:
    """What evaluation reads: pods, namespaces' labels, policies, and the nodes' addresses."""
    pods: list[PodInfo] = field(default_factory=list)
    namespaces: list[NamespaceInfo] = field(default_factory=list)
    policies: list[Policy] = field(default_factory=list)
    node_ips: Mapping[str, str] = field(default_factory=dict)  # address -> node name

    def __post_init__(self) -> None:
        self.ns_labels: dict[str, Mapping[str, str]] = {n.name: n.labels for n in self.namespaces}
        self.by_ip: dict[str, PodInfo] = {}
        for pod in sorted(self.pods, key=lambda p: (not p.terminating, p.creation, p.key)):
            if not pod.host_network:
                for ip in pod.ips:
                    self.by_ip[ip] = pod  # the newest live claimant of an address owns it

    def pod(self, key: str) -> PodInfo | None:
        for p in self.pods:
            if p.key == key:
                return p
        return None

    def endpoint(self, text: str) -> ConnectionEnd:
        """``ns/name`` (first address) or an IP (a pod's when a pod has it)."""
        if "/" in text and parse_ip(text) is None:
            pod = self.pod(text)
            if pod is None:
                raise KeyError(f"pod {text} not found (or it has no address yet)")
            return ConnectionEnd(pod.ips[0], pod)
        ip = parse_ip(text)
        if ip is None:
            raise KeyError(f"{text!r} is neither ns/name nor an IP address")
        return ConnectionEnd(str(ip), self.by_ip.get(str(ip)))


def _side(cluster: ClusterView, direction: str, pod: PodInfo | None, src: ConnectionEnd, dst: ConnectionEnd,
          protocol: int, port: int) -> Side:
    if pod is None or pod.host_network:
        return Side(direction)
    mine = [p for p in cluster.policies if p.isolates(direction) and selects(p, pod)]
    if not mine:
        return Side(direction, pod.key)
    other = dst if direction == EGRESS else src
    allowed: list[RuleMatch] = []
    misses: list[str] = []
    for pol in sorted(mine, key=lambda p: p.key):
        for i, rule in enumerate(pol.rules(direction)):
            peer_text = "any peer" if rule.any_peer else next(
                (str(peer) for peer in rule.peers if peer_matches(pol, peer, other, cluster.ns_labels)), "")
            if not peer_text:
                continue
            ports = rule_ports(rule, direction, src, dst)
            if ports.contains(protocol, port):
                allowed.append(RuleMatch(pol.key, direction, i, peer_text, str(ports)))
            else:
                where = "ingress" if direction == INGRESS else "egress"
                misses.append(f"{pol.key} {where}[{i}] matches the peer ({peer_text}) but opens only {ports}")
    return Side(direction, pod.key, True, tuple(p.key for p in sorted(mine, key=lambda p: p.key)), tuple(allowed),
                tuple(misses), tuple(p.key for p in mine if p.error))


def evaluate(cluster: ClusterView, src: ConnectionEnd, dst: ConnectionEnd, protocol: str, port: int) -> Verdict:
    protocol = protocol.upper()
    proto = PROTOCOLS.get(protocol, ICMP if protocol == "ICMP" else None)
    if proto is None:
        raise ValueError(f"protocol {protocol!r}: expected TCP, UDP, SCTP or ICMP")
    if src.pod is not None and dst.pod is not None and src.pod.key == dst.pod.key:
        empty = Side(EGRESS)
        return Verdict(True, src, dst, protocol, port, empty, Side(INGRESS),
                       "a pod always reaches itself")
    if dst.pod is not None and cluster.node_ips.get(src.ip) and cluster.node_ips[src.ip] == dst.pod.node:
        return Verdict(True, src, dst, protocol, port, Side(EGRESS), Side(INGRESS),
                       f"the node {dst.pod.node} always reaches its own pods")
    egress = _side(cluster, EGRESS, src.pod, src, dst, proto, port)
    ingress = _side(cluster, INGRESS, dst.pod, src, dst, proto, port)
    return Verdict(egress.allowed and ingress.allowed, src, dst, protocol, port, egress, ingress)


def policies_selecting(policies: Iterable[Policy], pod: PodInfo, direction: str) -> list[Policy]:
    return [p for p in policies if p.isolates(direction) and selects(p, pod)]
